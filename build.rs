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
    link_compact();
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

/// On glibc, packs the binary's relative relocations (DT_RELR): the dynamic loader reads every
/// relocation at start, and the usual table is some 1 MB of a PIE binary this size, all of it
/// resident from then on. Packed, it is a few kilobytes; the binary stays position-independent.
/// Only where the loader understands them: glibc 2.36 or later (Debian 12, Ubuntu 22.10), read
/// from the machine that builds, so a native build runs where it was built; a cross build is
/// left as it is.
fn link_compact() {
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    if var("CARGO_CFG_TARGET_OS") != "linux"
        || var("CARGO_CFG_TARGET_ENV") != "gnu"
        || var("TARGET") != var("HOST")
    {
        return;
    }
    // "glibc 2.36"
    let version = Command::new("getconf")
        .arg("GNU_LIBC_VERSION")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|v| {
            let (major, minor) = v.trim().strip_prefix("glibc ")?.split_once('.')?;
            let minor = minor.split('.').next()?;
            Some((major.parse::<u32>().ok()?, minor.parse::<u32>().ok()?))
        });
    if version.is_some_and(|v| v >= (2, 36)) {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
