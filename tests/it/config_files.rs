//! The config file (`--config.file`): every fixture in `tests/fixtures/config/` is accepted
//! (`*.ok.yml`) or refused with exactly the error next to it (`*.bad.yml` and `*.bad.err`),
//! by the library and by the real binary's `--config.check`; the example config and the
//! `config:` block of every Helm chart values file (the chart renders it verbatim into the
//! exporter's config file) validate.
use crate::support::{repo, BIN};
use iam_credentials_exporter::config;
use std::path::{Path, PathBuf};
use std::process::Command;

fn fixtures(suffix: &str) -> Vec<PathBuf> {
    let dir = repo().join("tests/fixtures/config");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_str().unwrap().ends_with(suffix))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no *{suffix} in {}", dir.display());
    files
}

/// Runs `--config.check` on `path`: (exit code, stdout, stderr).
fn check(path: &Path, extra: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .arg("--config.file")
        .arg(path)
        .arg("--config.check")
        .args(extra)
        .env_remove("IAM_CREDENTIALS_EXPORTER_SHARD_INDEX")
        .env_remove("IAM_CREDENTIALS_EXPORTER_SHARD_COUNT")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn good_configs_are_accepted() {
    for path in fixtures(".ok.yml") {
        let text = std::fs::read_to_string(&path).unwrap();
        if let Err(e) = config::parse(&text, chrono::Utc::now().date_naive()) {
            panic!("{}: {e}", path.display());
        }
        let (code, stdout, stderr) = check(&path, &[]);
        assert_eq!(code, 0, "{}: {stderr}", path.display());
        assert!(stdout.contains("valid"), "{stdout}");
    }
}

#[test]
fn bad_configs_are_refused_with_the_key_named() {
    for path in fixtures(".bad.yml") {
        let text = std::fs::read_to_string(&path).unwrap();
        let expected_path = path.with_extension("err");
        let expected = std::fs::read_to_string(&expected_path)
            .unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()));
        let expected = expected.trim_end();
        let got = config::parse(&text, chrono::Utc::now().date_naive())
            .expect_err(path.to_str().unwrap());
        assert_eq!(got.to_string(), expected, "{}", path.display());
        let (code, stdout, stderr) = check(&path, &[]);
        assert_eq!(code, 1, "{}: {stdout}", path.display());
        assert_eq!(
            stderr.trim_end(),
            format!("error: config file {}: {expected}", path.display()),
        );
    }
}

#[test]
fn a_missing_file_is_named() {
    let (code, _, stderr) = check(Path::new("/nonexistent/config.yml"), &[]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("reading config file /nonexistent/config.yml"),
        "{stderr}"
    );
}

#[test]
fn flags_are_checked_with_the_file() {
    // The file's shard is fine; an explicit flag overrides it and is checked too.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.yml");
    std::fs::write(&path, "shard: { index: 0, count: 2 }\n").unwrap();
    assert_eq!(check(&path, &[]).0, 0);
    let (code, _, stderr) = check(&path, &["--shard.index=4", "--shard.count=3"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("index 4 is not below count 3"), "{stderr}");
}

#[test]
fn the_example_config_is_valid() {
    let path = repo().join("examples/config.yml");
    let c = config::load(&path, chrono::Utc::now().date_naive()).unwrap();
    assert!(c.organization.is_some() && c.accounts.len() == 3);
    assert_eq!(check(&path, &[]).0, 0);
}

#[test]
fn every_helm_values_config_block_is_valid() {
    let chart = repo().join("helm/iam-credentials-exporter");
    let mut files = vec![chart.join("values.yaml")];
    let mut ci: Vec<PathBuf> = std::fs::read_dir(chart.join("ci"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    ci.sort();
    files.extend(ci);
    let mut with_config = 0;
    for path in files {
        let values: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let Some(block) = values.get("config") else {
            continue;
        };
        // The chart writes `toYaml .Values.config` into config.yml: do the same.
        let text = serde_yaml_ng::to_string(block).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.yml");
        std::fs::write(&file, &text).unwrap();
        let (code, _, stderr) = check(&file, &[]);
        assert_eq!(code, 0, "{}: config: {stderr}\n{text}", path.display());
        let parsed = config::parse(&text, chrono::Utc::now().date_naive()).unwrap();
        if parsed != config::Config::default() {
            with_config += 1;
        }
        // The chart sets the shard with flags; its values must leave `shard` out.
        assert_eq!(parsed.shard, None, "{}", path.display());
    }
    // irsa-accounts, sharded-organization and everything set a config at least.
    assert!(with_config >= 3, "{with_config}");
}

#[test]
fn help_explains_the_config_file_and_sharding() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "--config.file <PATH>",
        "--config.check",
        "--shard.index <I>",
        "--shard.count <N>",
        "--refresh.concurrency <N>",
        "takes the flag when the flag is given, else the file's value",
    ] {
        assert!(help.contains(needle), "{needle} not in --help:\n{help}");
    }
}
