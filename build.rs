//! Records the git revision for `--version` and `iam_credentials_exporter_build_info`.
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=IAM_CREDENTIALS_EXPORTER_REVISION");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
    let revision = std::env::var("IAM_CREDENTIALS_EXPORTER_REVISION")
        .ok()
        .filter(|r| !r.is_empty())
        .or_else(|| {
            Command::new("git")
                .args(["rev-parse", "--short=12", "HEAD"])
                .output()
                .ok()
                .filter(|o| o.status.success())
                .and_then(|o| String::from_utf8(o.stdout).ok())
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
        });
    println!(
        "cargo:rustc-env=IAM_CREDENTIALS_EXPORTER_BUILD_REVISION={}",
        revision.as_deref().unwrap_or("unknown")
    );
}
