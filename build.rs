//! Records the git revision for `--version` and `iam_credentials_exporter_build_info`.
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    Command::new("git")
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

fn main() {
    println!("cargo:rerun-if-env-changed=IAM_CREDENTIALS_EXPORTER_REVISION");
    // Where HEAD and the branch refs live: `.git/` in a clone, elsewhere in a worktree (where
    // `.git` is a file). Naming a file that does not exist would rerun this on every build.
    for file in ["HEAD", "refs/heads", "packed-refs"] {
        if let Some(path) = git(&["rev-parse", "--git-path", file]) {
            if std::path::Path::new(&path).exists() {
                println!("cargo:rerun-if-changed={path}");
            }
        }
    }
    let revision = std::env::var("IAM_CREDENTIALS_EXPORTER_REVISION")
        .ok()
        .filter(|r| !r.is_empty())
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]));
    println!(
        "cargo:rustc-env=IAM_CREDENTIALS_EXPORTER_BUILD_REVISION={}",
        revision.as_deref().unwrap_or("unknown")
    );
}
