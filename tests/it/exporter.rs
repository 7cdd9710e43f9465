//! The real binary serving a report file over real HTTP.
use crate::support::*;
use std::io::Read;
use std::time::Duration;

fn start_on_copy(extra: &[&str]) -> (tempfile::TempDir, std::path::PathBuf, Exporter) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.csv");
    write_fresh_sample_report(&path);
    let mut args = vec![
        "--report.file",
        path.to_str().unwrap(),
        "--refresh.interval",
        "100ms",
    ];
    args.extend_from_slice(extra);
    let exporter = Exporter::start(&args);
    (dir, path, exporter)
}

#[test]
fn serves_the_sample_report() {
    let (_dir, _path, exporter) = start_on_copy(&[]);
    let m = exporter.wait_for_sample(
        r#"iam_credentials_exporter_refresh_success{account_id="123456789012"}"#,
        1.0,
    );
    let a = r#"account_id="123456789012""#;
    assert_eq!(sample(&m, &format!("aws_iam_users{{{a}}}")), Some(9.0));
    assert_eq!(
        sample(&m, &format!("aws_iam_console_users{{{a}}}")),
        Some(6.0)
    );
    assert_eq!(
        sample(&m, &format!(r#"aws_iam_access_keys{{{a},state="active"}}"#)),
        Some(7.0)
    );
    assert_eq!(
        sample(
            &m,
            &format!(r#"aws_iam_check_failures{{{a},check="console_user_without_mfa"}}"#)
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &m,
            &format!(
                r#"aws_iam_user_check_failed{{{a},check="console_user_without_mfa",user="bob"}}"#
            )
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &m,
            &format!(r#"aws_iam_user_mfa_active{{{a},user="alice"}}"#)
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &m,
            &format!(r#"aws_iam_access_key_active{{{a},key="2",user="deploy-bot"}}"#)
        ),
        Some(0.0)
    );
    assert_eq!(
        lines_with(&m, "iam_credentials_exporter_build_info{").len(),
        1
    );
    // Every check is present, failing or not.
    assert_eq!(lines_with(&m, "aws_iam_check_failures{").len(), 12);
    // No live-AWS series in file mode.
    assert!(!m.contains("aws_iam_root_mfa_enabled{"));
}

#[test]
fn per_user_series_can_be_switched_off_or_filtered() {
    let (_d, _p, off) = start_on_copy(&["--metrics.per-user=false"]);
    let m = off.wait_for_sample(r#"aws_iam_users{account_id="123456789012"}"#, 9.0);
    assert!(!m.contains("user=\""), "per-user series leaked");
    assert_eq!(lines_with(&m, "aws_iam_check_failures{").len(), 12);

    let (_d2, _p2, filtered) = start_on_copy(&[
        "--metrics.user-include=^(bob|carol)$",
        "--metrics.user-exclude=^carol$",
    ]);
    let m = filtered.wait_for_sample(r#"aws_iam_users{account_id="123456789012"}"#, 9.0);
    assert!(m.contains(r#"user="bob""#));
    assert!(!m.contains(r#"user="carol""#));
    assert!(!m.contains(r#"user="alice""#));
}

#[test]
fn http_surface() {
    let (_dir, _path, exporter) = start_on_copy(&["--web.telemetry-path=/probe"]);
    wait_for("ready", Duration::from_secs(20), || {
        (get(&exporter.url("/-/ready")).status == 200).then_some(())
    });
    assert_eq!(get(&exporter.url("/-/healthy")).status, 200);
    let landing = get(&exporter.url("/"));
    assert_eq!(landing.status, 200);
    assert!(landing
        .header("content-type")
        .unwrap()
        .starts_with("text/html"));
    assert!(landing.text().contains("123456789012"));
    assert!(landing.text().contains(r#"href="/probe""#));
    assert_eq!(get(&exporter.url("/metrics")).status, 404);
    assert_eq!(get(&exporter.url("/nope")).status, 404);

    let plain = get(&exporter.url("/probe"));
    assert_eq!(plain.status, 200);
    assert_eq!(
        plain.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert!(plain.header("content-encoding").is_none());

    let gz = request(
        "GET",
        &exporter.url("/probe"),
        &[("accept-encoding", "gzip, deflate")],
    );
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    let mut unzipped = String::new();
    flate2::read::GzDecoder::new(&gz.body[..])
        .read_to_string(&mut unzipped)
        .unwrap();
    assert_eq!(unzipped, plain.text());
    assert!(
        gz.body.len() * 4 < plain.body.len(),
        "gzip should shrink the exposition"
    );

    let head = request("HEAD", &exporter.url("/probe"), &[]);
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());

    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        let r = request(method, &exporter.url("/probe"), &[]);
        assert_eq!(r.status, 405, "{method}");
        assert_eq!(r.header("allow"), Some("GET, HEAD"));
    }
}

#[test]
fn a_bad_or_missing_file_keeps_the_last_good_report() {
    let (_dir, path, exporter) = start_on_copy(&[]);
    let acct = r#"account_id="123456789012""#;
    exporter.wait_for_sample(
        &format!("iam_credentials_exporter_refresh_success{{{acct}}}"),
        1.0,
    );

    replace_file(&path, b"<html>this is not a credential report</html>");
    let m = exporter.wait_for_sample(
        &format!("iam_credentials_exporter_refresh_success{{{acct}}}"),
        0.0,
    );
    assert!(
        sample(
            &m,
            &format!(
                r#"iam_credentials_exporter_refresh_failures_total{{{acct},reason="parse_error"}}"#
            )
        )
        .unwrap()
            >= 1.0
    );
    assert_eq!(
        sample(&m, &format!("aws_iam_users{{{acct}}}")),
        Some(9.0),
        "last good data must stay"
    );
    assert_eq!(get(&exporter.url("/-/ready")).status, 200);

    std::fs::remove_file(&path).unwrap();
    let m = wait_for("a read_error", Duration::from_secs(20), || {
        let m = exporter.metrics();
        (sample(
            &m,
            &format!(
                r#"iam_credentials_exporter_refresh_failures_total{{{acct},reason="read_error"}}"#
            ),
        )
        .unwrap_or(0.0)
            >= 1.0)
            .then_some(m)
    });
    assert_eq!(sample(&m, &format!("aws_iam_users{{{acct}}}")), Some(9.0));
    let logs = exporter.logs();
    assert!(logs.contains("reason=parse_error"), "{logs}");
    assert!(logs.contains("reason=read_error"), "{logs}");

    // A fixed file recovers, and a report with one user fewer drops that user's series.
    let fewer: String = std::fs::read_to_string(sample_report())
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("carol,"))
        .collect::<Vec<_>>()
        .join("\n");
    replace_file(&path, fewer.as_bytes());
    let m = exporter.wait_for_sample(&format!("aws_iam_users{{{acct}}}"), 8.0);
    assert_eq!(
        sample(
            &m,
            &format!("iam_credentials_exporter_refresh_success{{{acct}}}")
        ),
        Some(1.0)
    );
    assert!(
        !m.contains(r#"user="carol""#),
        "a deleted user's series must vanish"
    );
}

/// The issue's measurement: a good report is served, then the file becomes a header and five
/// rows of the wrong width. The refresh fails as `invalid_report`; the last good snapshot,
/// its account id and its findings stay, and the log says why.
#[test]
fn a_report_that_lost_its_rows_fails_closed() {
    let (_dir, path, exporter) = start_on_copy(&[]);
    let acct = r#"account_id="123456789012""#;
    let console = format!(r#"aws_iam_check_failures{{{acct},check="console_user_without_mfa"}}"#);
    let m = exporter.wait_for_sample(
        &format!("iam_credentials_exporter_refresh_success{{{acct}}}"),
        1.0,
    );
    let findings = sample(&m, &console).unwrap();
    assert!(findings > 0.0, "{m}");

    let header = std::fs::read_to_string(sample_report())
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_owned();
    replace_file(
        &path,
        format!("{header}\na,b,c\nd,e,f\ng,h,i\nj,k,l\nm,n,o\n").as_bytes(),
    );
    let invalid = format!(
        r#"iam_credentials_exporter_refresh_failures_total{{{acct},reason="invalid_report"}}"#
    );
    let m = wait_for("an invalid_report failure", Duration::from_secs(20), || {
        let m = exporter.metrics();
        (sample(&m, &invalid).unwrap_or(0.0) >= 1.0).then_some(m)
    });
    assert_eq!(
        sample(
            &m,
            &format!("iam_credentials_exporter_refresh_success{{{acct}}}")
        ),
        Some(0.0)
    );
    assert_eq!(sample(&m, &format!("aws_iam_users{{{acct}}}")), Some(9.0));
    assert_eq!(sample(&m, &console), Some(findings));
    assert!(!m.contains(r#"account_id="unknown""#), "{m}");
    let logs = exporter.logs();
    assert!(
        logs.contains("reason=invalid_report")
            && logs.contains("no row of the credential report could be read: 5 row(s) skipped"),
        "{logs}"
    );
}

#[test]
fn not_ready_until_a_report_was_judged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("later.csv");
    let exporter = Exporter::start(&[
        "--report.file",
        path.to_str().unwrap(),
        "--refresh.interval",
        "100ms",
    ]);
    let r = get(&exporter.url("/-/ready"));
    assert_eq!(r.status, 503);
    // Self-metrics are served before the first report.
    wait_for("a read_error", Duration::from_secs(20), || {
        let m = exporter.metrics();
        (sample(&m, r#"iam_credentials_exporter_refresh_failures_total{account_id="unknown",reason="read_error"}"#).unwrap_or(0.0) >= 1.0).then_some(())
    });
    write_fresh_sample_report(&path);
    wait_for("ready", Duration::from_secs(20), || {
        (get(&exporter.url("/-/ready")).status == 200).then_some(())
    });
}

#[test]
fn shuts_down_cleanly_on_sigterm_and_sigint() {
    for signal in ["TERM", "INT"] {
        let (_dir, _path, exporter) = start_on_copy(&[]);
        wait_for("ready", Duration::from_secs(20), || {
            (get(&exporter.url("/-/ready")).status == 200).then_some(())
        });
        assert_eq!(exporter.signal_and_wait(signal), Some(0), "SIG{signal}");
    }
}

#[test]
fn bad_flags_fail_with_a_clear_message() {
    let out = std::process::Command::new(BIN)
        .args(["--refresh.interval", "often"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--refresh.interval"), "{err}");

    let out = std::process::Command::new(BIN)
        .args([
            "--report.file",
            "x.csv",
            "--web.listen-address",
            "256.0.0.1:1",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--web.listen-address"), "{err}");

    let out = std::process::Command::new(BIN)
        .env("IAM_CREDENTIALS_EXPORTER_LOG_LEVEL", "loud")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));

    let out = std::process::Command::new(BIN)
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--web.listen-address",
        "--web.telemetry-path",
        "--report.file",
        "--refresh.interval",
        "--log.level",
        "--log.format",
        "IAM_CREDENTIALS_EXPORTER_WEB_LISTEN_ADDRESS",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
}

#[test]
fn json_logs() {
    let (_dir, _path, exporter) = start_on_copy(&["--log.format=json"]);
    exporter.wait_for_sample(r#"aws_iam_users{account_id="123456789012"}"#, 9.0);
    let logs = exporter.logs();
    let first = logs.lines().next().unwrap();
    let v: serde_json::Value =
        serde_json::from_str(first).unwrap_or_else(|e| panic!("{e}: {first}"));
    assert_eq!(v["level"], "INFO");
}
