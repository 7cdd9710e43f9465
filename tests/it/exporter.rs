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

    // Failing users only: the users with a failing check keep every per-user series, the
    // others (alice passes every check) have none, and the counts still cover everyone.
    let (_d3, _p3, failing) = start_on_copy(&["--metrics.per-user=failing"]);
    let m = failing.wait_for_sample(r#"aws_iam_users{account_id="123456789012"}"#, 9.0);
    let (_d4, _p4, all) = start_on_copy(&[]);
    let full = all.wait_for_sample(r#"aws_iam_users{account_id="123456789012"}"#, 9.0);
    let user_of = |line: &str| {
        line.split("user=\"")
            .nth(1)
            .map(|r| r[..r.find('"').unwrap()].to_owned())
    };
    let failing_users: std::collections::BTreeSet<String> =
        (lines_with(&full, "aws_iam_user_check_failed{").iter())
            .filter_map(|l| user_of(l))
            .collect();
    assert!(failing_users.len() >= 3, "{full}");
    assert!(!failing_users.contains("alice"), "{full}");
    for line in lines_with(&full, "aws_iam_user_mfa_active{") {
        let user = user_of(line).unwrap();
        let kept = m.lines().any(|l| l == line);
        assert_eq!(kept, failing_users.contains(&user), "{user}: {m}");
    }
    assert!(!m.contains(r#"user="alice""#), "{m}");
    assert_eq!(
        lines_with(&m, "aws_iam_check_failures{"),
        lines_with(&full, "aws_iam_check_failures{")
    );
    assert_eq!(
        lines_with(&m, "aws_iam_user_check_failed{"),
        lines_with(&full, "aws_iam_user_check_failed{")
    );
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
    // Links are relative to the page, so that they work behind a path-prefix proxy.
    assert!(landing.text().contains(r#"href="./probe""#));
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
    // The snapshot, then the process series in a gzip member of their own: read them all, as
    // Prometheus's reader does.
    let mut unzipped = String::new();
    flate2::read::MultiGzDecoder::new(&gz.body[..])
        .read_to_string(&mut unzipped)
        .unwrap();
    // The process series are read at each scrape, so their values may differ between the two.
    let snapshot = |text: &str| -> String {
        text.lines()
            .filter(|l| !l.starts_with("process_"))
            .map(|l| format!("{l}\n"))
            .collect()
    };
    assert_eq!(snapshot(&unzipped), snapshot(&plain.text()));
    for text in [&unzipped, &plain.text()] {
        assert!(
            text.contains("\n# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total "),
            "{text}"
        );
        assert!(text.contains("\nprocess_resident_memory_bytes "), "{text}");
    }
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

/// A reload (SIGHUP, POST /-/reload) reads report files again at once, an hour before
/// their next refresh is due.
#[test]
fn a_reload_reads_the_report_file_again_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.csv");
    write_fresh_sample_report(&path);
    let exporter = Exporter::start(&[
        "--report.file",
        path.to_str().unwrap(),
        "--refresh.interval",
        "1h",
    ]);
    let users = r#"aws_iam_users{account_id="123456789012"}"#;
    exporter.wait_for_sample(users, 9.0);
    let drop_last_user = |path: &std::path::Path| {
        let csv = std::fs::read_to_string(path).unwrap();
        let mut lines: Vec<&str> = csv.lines().collect();
        lines.pop();
        std::fs::write(path, lines.join("\n") + "\n").unwrap();
    };
    drop_last_user(&path);
    let status = std::process::Command::new("kill")
        .args(["-HUP", &exporter.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    exporter.wait_for_sample(users, 8.0);

    drop_last_user(&path);
    let r = request("POST", &exporter.url("/-/reload"), &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    exporter.wait_for_sample(users, 7.0);
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

// --- Change events between consecutive reports (issue 14) ------------------------------------

/// Every `change` label of `aws_iam_credential_changes_total`, in the order they are exported.
pub(crate) const CHANGES: [&str; 12] = [
    "user_created",
    "user_deleted",
    "mfa_enabled",
    "mfa_disabled",
    "password_enabled",
    "password_disabled",
    "password_changed",
    "access_key_created",
    "access_key_deleted",
    "access_key_activated",
    "access_key_deactivated",
    "root_used",
];

/// The key of a log line's message in logfmt, as the README, the counter's HELP text and the
/// alert rules (`prometheus/alerts.yml`) name it: `msg="Credential change"`.
pub(crate) const MSG_KEY: &str = "msg";

/// The message of each change event's log line.
pub(crate) const CHANGE_MSG: &str = "Credential change";

/// The message of the line that says the first report is the baseline.
pub(crate) const BASELINE_MSG: &str =
    "Took the first credential report as the baseline; changes are counted from the next one";

/// The message logged once per newly judged report, after that report's change lines.
pub(crate) const JUDGED_MSG: &str = "Judged a new credential report";

/// `aws_iam_credential_changes_total{account_id="ACCOUNT",change="CHANGE"}`.
pub(crate) fn change_series(account: &str, change: &str) -> String {
    format!(r#"aws_iam_credential_changes_total{{account_id="{account}",change="{change}"}}"#)
}

/// Each change's counter as exported (`None`: no sample).
pub(crate) fn change_counters(m: &str, account: &str) -> Vec<(&'static str, Option<f64>)> {
    CHANGES
        .iter()
        .map(|c| (*c, sample(m, &change_series(account, c))))
        .collect()
}

/// What [`change_counters`] must give: `counted` at their values, every other change at 0.
pub(crate) fn expected_counters(counted: &[(&str, f64)]) -> Vec<(&'static str, Option<f64>)> {
    CHANGES
        .iter()
        .map(|c| {
            let n = counted
                .iter()
                .find(|(name, _)| name == c)
                .map_or(0.0, |(_, n)| *n);
            (*c, Some(n))
        })
        .collect()
}

/// The fields of a logfmt line: `key=value` and `key="quoted \"value\""`.
pub(crate) fn logfmt(line: &str) -> std::collections::BTreeMap<String, String> {
    let mut fields = std::collections::BTreeMap::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek() == Some(&' ') {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            return fields;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = chars.by_ref().take_while(|c| *c != ' ').collect();
        }
        fields.insert(key, value);
    }
}

/// The log lines whose message (under [`MSG_KEY`]) is `msg`, as fields.
pub(crate) fn log_lines(logs: &str, msg: &str) -> Vec<std::collections::BTreeMap<String, String>> {
    logs.lines()
        .map(logfmt)
        .filter(|f| f.get(MSG_KEY).map(String::as_str) == Some(msg))
        .collect()
}

/// How many lines carry the message `msg` under any key (`msg` or `message`): for waiting on
/// a line without depending on the key's name.
pub(crate) fn count_messages(logs: &str, msg: &str) -> usize {
    logs.lines()
        .map(logfmt)
        .filter(|f| {
            f.get("msg")
                .or_else(|| f.get("message"))
                .map(String::as_str)
                == Some(msg)
        })
        .count()
}

/// One change event's log line as expected: `(user, change, key_slot, before, after)`.
pub(crate) type ExpectedLine<'a> = (
    &'a str,
    &'a str,
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
);

/// Asserts the `Credential change` lines in `logs`: exactly `expected`, in that order, each
/// with `account_id` and without the fields it should not have (`key_slot` on a user event,
/// `before` on a new key...).
pub(crate) fn assert_change_lines(logs: &str, account: &str, expected: &[ExpectedLine]) {
    let lines = log_lines(logs, CHANGE_MSG);
    if lines.is_empty() && count_messages(logs, CHANGE_MSG) > 0 {
        panic!(
            "the change events are logged, but not as {MSG_KEY}=\"{CHANGE_MSG}\" (the key the \
             README, the counter's HELP and alerts.yml name):\n{logs}"
        );
    }
    let got: Vec<ExpectedLine> = lines
        .iter()
        .map(|f| {
            (
                f.get("user").map_or("", String::as_str),
                f.get("change").map_or("", String::as_str),
                f.get("key_slot").map(String::as_str),
                f.get("before").map(String::as_str),
                f.get("after").map(String::as_str),
            )
        })
        .collect();
    assert_eq!(got, expected, "--- the log ---\n{logs}");
    for f in &lines {
        assert_eq!(
            f.get("account_id").map(String::as_str),
            Some(account),
            "{f:?}"
        );
        // promslog's levels, upper case.
        assert_eq!(f.get("level").map(String::as_str), Some("INFO"), "{f:?}");
    }
}

/// The landing page's "Recent changes" rows as `(user, change, key)`, in page order, and the
/// account heading they are under.
pub(crate) fn recent_changes(landing: &str) -> (Vec<String>, Vec<(String, String, String)>) {
    let section = landing
        .split("<h2>Recent changes</h2>")
        .nth(1)
        .unwrap_or_else(|| panic!("no Recent changes section on:\n{landing}"));
    let heading = regex::Regex::new(r"<h3>([^<]*)</h3>").unwrap();
    let row = regex::Regex::new(
        r"<tr><td>[^<]*</td><td>([^<]*)</td><td>([^<]*)</td><td>([^<]*)</td></tr>",
    )
    .unwrap();
    (
        heading
            .captures_iter(section)
            .map(|c| c[1].to_owned())
            .collect(),
        row.captures_iter(section)
            .map(|c| (c[1].to_owned(), c[2].to_owned(), c[3].to_owned()))
            .collect(),
    )
}

/// The sample's account.
const ACCT: &str = "123456789012";

/// A time of the report as the change events write it: RFC 3339, seconds, `Z`.
fn as_event_time(report_time: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(report_time)
        .unwrap_or_else(|e| panic!("{report_time}: {e}"))
        .to_utc()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The issue's edits to a (fresh) copy of the sample report, and the events they must give.
struct Edited {
    csv: String,
    /// bob's `user_creation_time`, as the `user_deleted` event's `before`.
    bob_created: String,
    /// The new key's `last_rotated`, as the `access_key_created` event's `after`.
    carol_key: String,
}

impl Edited {
    /// alice's MFA turned off, bob's row removed, a new active key in carol's slot 1.
    ///
    /// Checked on the sample first, so that each edit is one event and nothing else: alice
    /// has MFA, bob is in the report, and both of carol's key slots are empty (`false` and
    /// `N/A`), so a key in slot 1 is `access_key_created` and not a rotation or activation.
    fn of(fresh: &str) -> Edited {
        let mut lines = fresh.lines();
        let header: Vec<&str> = lines.next().unwrap().split(',').collect();
        let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
        let (mfa, key1, key1_rotated, key2, key2_rotated, created) = (
            col("mfa_active"),
            col("access_key_1_active"),
            col("access_key_1_last_rotated"),
            col("access_key_2_active"),
            col("access_key_2_last_rotated"),
            col("user_creation_time"),
        );
        let carol_key = (chrono::Utc::now() - chrono::TimeDelta::minutes(1))
            .format("%Y-%m-%dT%H:%M:%S+00:00")
            .to_string();
        let mut bob_created = None;
        let mut seen = (false, false);
        let mut out = vec![header.join(",")];
        for line in lines {
            let mut f: Vec<String> = line.split(',').map(str::to_owned).collect();
            match f[0].as_str() {
                "alice" => {
                    assert_eq!(f.len(), header.len(), "{line}");
                    assert_eq!(f[mfa], "true", "the sample's alice has MFA: {line}");
                    f[mfa] = "false".into();
                    seen.0 = true;
                }
                "bob" => {
                    assert_eq!(f.len(), header.len(), "{line}");
                    bob_created = Some(as_event_time(&f[created]));
                    continue;
                }
                "carol" => {
                    assert_eq!(f.len(), header.len(), "{line}");
                    assert_eq!(
                        [&f[key1], &f[key1_rotated], &f[key2], &f[key2_rotated]],
                        ["false", "N/A", "false", "N/A"],
                        "the sample's carol has two empty key slots: {line}"
                    );
                    f[key1] = "true".into();
                    f[key1_rotated] = carol_key.clone();
                    seen.1 = true;
                }
                _ => {}
            }
            out.push(f.join(","));
        }
        assert_eq!(seen, (true, true), "alice and carol are in the sample");
        Edited {
            csv: out.join("\n") + "\n",
            bob_created: bob_created.expect("bob is in the sample"),
            carol_key: as_event_time(&carol_key),
        }
    }

    /// The events' log lines, in the order the exporter logs them: users of the new report in
    /// its order, then the deleted ones.
    fn lines(&self) -> Vec<ExpectedLine<'_>> {
        vec![
            ("alice", "mfa_disabled", None, Some("true"), Some("false")),
            (
                "carol",
                "access_key_created",
                Some("1"),
                None,
                Some(self.carol_key.as_str()),
            ),
            (
                "bob",
                "user_deleted",
                None,
                Some(self.bob_created.as_str()),
                None,
            ),
        ]
    }
}

/// The counters after the edits.
fn edited_counters() -> Vec<(&'static str, Option<f64>)> {
    expected_counters(&[
        ("mfa_disabled", 1.0),
        ("user_deleted", 1.0),
        ("access_key_created", 1.0),
    ])
}

/// The landing page's rows after the edits, as a sorted set (one refresh saw all three, so
/// they are equally recent).
fn edited_rows() -> Vec<(String, String, String)> {
    let mut rows: Vec<(String, String, String)> = [
        ("alice", "mfa_disabled", ""),
        ("bob", "user_deleted", ""),
        ("carol", "access_key_created", "1"),
    ]
    .iter()
    .map(|(u, c, k)| (u.to_string(), c.to_string(), k.to_string()))
    .collect();
    rows.sort();
    rows
}

fn refresh_success(m: &str) -> Option<f64> {
    sample(
        m,
        &format!(r#"iam_credentials_exporter_refresh_success{{account_id="{ACCT}"}}"#),
    )
}

/// The refresh failure counters above 0.
fn refresh_failures(m: &str) -> Vec<&str> {
    lines_with(m, "iam_credentials_exporter_refresh_failures_total{")
        .into_iter()
        .filter(|l| !l.ends_with(" 0"))
        .collect()
}

/// Waits until the exporter has logged `n` newly judged reports (each after its change lines).
fn wait_for_judged(exporter: &Exporter, n: usize) -> String {
    wait_for(
        &format!("{n} judged report(s) in the log"),
        Duration::from_secs(20),
        || {
            let logs = exporter.logs();
            (count_messages(&logs, JUDGED_MSG) >= n).then_some(logs)
        },
    )
}

/// The issue's end-to-end measurement in file mode: the first report is the baseline (every
/// counter at 0, a log line, no events), then one rewrite of the file gives one event per
/// edit, in the counters, the log and the landing page; the next refreshes of the same file
/// add nothing.
#[test]
fn file_mode_counts_logs_and_lists_the_changes_between_two_reports() {
    let (_dir, path, exporter) = start_on_copy(&[]);
    let m = exporter.wait_for_sample(
        &format!(r#"iam_credentials_exporter_refresh_success{{account_id="{ACCT}"}}"#),
        1.0,
    );
    assert_eq!(
        change_counters(&m, ACCT),
        expected_counters(&[]),
        "every change at 0 from the baseline\n{m}"
    );
    let logs = wait_for_judged(&exporter, 1);
    assert_eq!(count_messages(&logs, BASELINE_MSG), 1, "{logs}");
    assert_eq!(count_messages(&logs, CHANGE_MSG), 0, "{logs}");
    let landing = get(&exporter.url("/")).text();
    assert_eq!(recent_changes(&landing), (vec![], vec![]), "{landing}");
    assert!(landing.contains("None since start"), "{landing}");

    let edited = Edited::of(&std::fs::read_to_string(&path).unwrap());
    replace_file(&path, edited.csv.as_bytes());
    let m = exporter.wait_for_sample(&change_series(ACCT, "mfa_disabled"), 1.0);
    let counters = change_counters(&m, ACCT);
    assert_eq!(counters, edited_counters(), "{m}");
    assert_eq!(
        sample(&m, &format!(r#"aws_iam_users{{account_id="{ACCT}"}}"#)),
        Some(8.0)
    );
    let logs = wait_for_judged(&exporter, 2);
    assert_change_lines(&logs, ACCT, &edited.lines());
    assert_eq!(count_messages(&logs, BASELINE_MSG), 1, "{logs}");

    let landing = get(&exporter.url("/")).text();
    let (headings, mut rows) = recent_changes(&landing);
    assert_eq!(headings, [ACCT], "{landing}");
    rows.sort();
    assert_eq!(rows, edited_rows(), "{landing}");

    // More refreshes of the same file change nothing.
    let refreshes = format!(r#"iam_credentials_exporter_refreshes_total{{account_id="{ACCT}"}}"#);
    let seen = sample(&m, &refreshes).unwrap();
    let m = wait_for("three more refreshes", Duration::from_secs(20), || {
        let m = exporter.metrics();
        (sample(&m, &refreshes).unwrap() >= seen + 3.0).then_some(m)
    });
    assert_eq!(change_counters(&m, ACCT), edited_counters(), "{m}");
    assert_eq!(refresh_failures(&m), Vec::<&str>::new(), "{m}");
    assert_eq!(count_messages(&exporter.logs(), CHANGE_MSG), 3);

    eprintln!("--- counters after the edits ---");
    for l in lines_with(&m, "aws_iam_credential_changes_total{") {
        eprintln!("{l}");
    }
    eprintln!("--- log lines ---");
    for l in exporter
        .logs()
        .lines()
        .filter(|l| l.contains(CHANGE_MSG) || l.contains(BASELINE_MSG) || l.contains(JUDGED_MSG))
    {
        eprintln!("{l}");
    }
    eprintln!("--- landing page, Recent changes ---");
    let section = landing.split("<h2>Recent changes</h2>").nth(1).unwrap();
    eprintln!(
        "<h2>Recent changes</h2>{}",
        section.split("</body>").next().unwrap()
    );
}

/// The files in `dir`.
fn files_in(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

/// `--storage.path`: a restart compares its first report with the digest the last run kept
/// (events, no baseline); a corrupt digest is a new baseline and a warning, never a failed
/// refresh.
#[test]
fn storage_path_compares_across_a_restart_and_survives_a_corrupt_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.csv");
    write_fresh_sample_report(&path);
    // Not there yet: the exporter makes it.
    let storage = dir.path().join("state");
    let args = [
        "--report.file",
        path.to_str().unwrap(),
        "--refresh.interval",
        "100ms",
        "--storage.path",
        storage.to_str().unwrap(),
    ];

    // First run: the baseline, kept in one file.
    let first = Exporter::start(&args);
    let m = first.wait_for_sample(&change_series(ACCT, "user_deleted"), 0.0);
    assert_eq!(change_counters(&m, ACCT), expected_counters(&[]), "{m}");
    let logs = wait_for_judged(&first, 1);
    assert_eq!(count_messages(&logs, BASELINE_MSG), 1, "{logs}");
    let files = files_in(&storage);
    assert_eq!(files.len(), 1, "one digest per account: {files:?}");
    let digest = files[0].clone();
    assert_eq!(digest.extension().and_then(|e| e.to_str()), Some("json"));
    assert!(
        std::fs::read_to_string(&digest).unwrap().contains("alice"),
        "the digest names the users"
    );
    assert_eq!(first.signal_and_wait("TERM"), Some(0));

    // The report changes while the exporter is down; the next run counts the changes.
    let edited = Edited::of(&std::fs::read_to_string(&path).unwrap());
    replace_file(&path, edited.csv.as_bytes());
    let second = Exporter::start(&args);
    let m = second.wait_for_sample(&change_series(ACCT, "mfa_disabled"), 1.0);
    assert_eq!(change_counters(&m, ACCT), edited_counters(), "{m}");
    assert_eq!(refresh_success(&m), Some(1.0));
    let logs = wait_for_judged(&second, 1);
    assert_eq!(
        count_messages(&logs, BASELINE_MSG),
        0,
        "a restart with a stored digest takes no baseline:\n{logs}"
    );
    assert!(!logs.contains("level=WARN"), "{logs}");
    assert_change_lines(&logs, ACCT, &edited.lines());
    let (_, mut rows) = recent_changes(&get(&second.url("/")).text());
    rows.sort();
    assert_eq!(rows, edited_rows());
    assert_eq!(second.signal_and_wait("TERM"), Some(0));
    assert_eq!(files_in(&storage), std::slice::from_ref(&digest));

    // A corrupt digest: a new baseline and a warning naming the file, never a failed refresh.
    std::fs::write(&digest, b"{ this is not a digest").unwrap();
    let third = Exporter::start(&args);
    let m = third.wait_for_sample(
        &format!(r#"iam_credentials_exporter_refresh_success{{account_id="{ACCT}"}}"#),
        1.0,
    );
    assert_eq!(change_counters(&m, ACCT), expected_counters(&[]), "{m}");
    assert_eq!(refresh_failures(&m), Vec::<&str>::new(), "{m}");
    let logs = wait_for_judged(&third, 1);
    assert_eq!(count_messages(&logs, BASELINE_MSG), 1, "{logs}");
    assert_eq!(count_messages(&logs, CHANGE_MSG), 0, "{logs}");
    let warning = logs
        .lines()
        .map(logfmt)
        .find(|f| f.get("level").map(String::as_str) == Some("WARN"))
        .unwrap_or_else(|| panic!("no warning about the corrupt digest:\n{logs}"));
    let text = format!("{warning:?}");
    assert!(
        text.contains("cannot be read") && text.contains(digest.to_str().unwrap()),
        "{text}"
    );
    // The good digest replaced the corrupt one.
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&digest).unwrap()).unwrap();
    assert_eq!(saved["version"], 1, "{saved}");
    eprintln!("--- the corrupt digest's warning ---");
    for l in logs.lines().filter(|l| l.contains("level=WARN")) {
        eprintln!("{l}");
    }
}

/// `--storage.path` where no directory can be: the exporter does not start, and says which
/// flag and path.
#[test]
fn storage_path_that_cannot_be_a_directory_fails_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.csv");
    write_fresh_sample_report(&report);
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"keep me").unwrap();
    for storage in [file.clone(), file.join("below")] {
        let mut cmd = std::process::Command::new(BIN);
        cmd.args([
            "--web.listen-address=127.0.0.1:0",
            "--report.file",
            report.to_str().unwrap(),
            "--storage.path",
            storage.to_str().unwrap(),
        ]);
        let out = crate::support::tools::run(cmd, dir.path(), Duration::from_secs(20));
        assert_eq!(out.status.code(), Some(1), "{}", out.both());
        // The fatal error is printed once, as a log line.
        let err = out.stderr.lines().last().unwrap_or_default();
        assert!(
            err.contains("level=ERROR")
                && err.contains("msg=Exiting")
                && err.contains("error=\"--storage.path: ")
                && err.contains(storage.to_str().unwrap()),
            "{}",
            out.both()
        );
        assert_eq!(
            out.stderr.matches("--storage.path: ").count(),
            1,
            "{}",
            out.both()
        );
        assert!(!out.stderr.contains("Listening"), "{}", out.both());
        eprintln!("{}", err);
    }
    assert_eq!(std::fs::read(&file).unwrap(), b"keep me");
}

/// A report of another account where the last one was (the file replaced by another
/// account's report, or a `--storage.path` digest kept from another account) is no change of
/// users: `diff` refuses to compare two accounts' reports (exit 2), and the daemon must not
/// count every user of the one as deleted and every user of the other as created.
#[test]
fn a_report_of_another_account_is_not_compared_with_the_last_one() {
    let other = "644160558196";
    let other_report = std::fs::read(
        repo().join(
            "tests/fixtures/third-party/cloud-custodian__cloud-custodian__account-credential-report.csv",
        ),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.csv");
    write_fresh_sample_report(&path);
    let storage = dir.path().join("state");
    let args = [
        "--report.file",
        path.to_str().unwrap(),
        "--refresh.interval",
        "100ms",
        "--storage.path",
        storage.to_str().unwrap(),
    ];

    // In memory: the sample's account, then another account's report in the same file.
    let exporter = Exporter::start(&args);
    exporter.wait_for_sample(&change_series(ACCT, "user_deleted"), 0.0);
    wait_for_judged(&exporter, 1);
    replace_file(&path, &other_report);
    let m = exporter.wait_for_sample(
        &format!(r#"iam_credentials_exporter_refresh_success{{account_id="{other}"}}"#),
        1.0,
    );
    let logs = wait_for_judged(&exporter, 2);
    assert_eq!(
        count_messages(&logs, CHANGE_MSG),
        0,
        "a report of account {other} compared with one of {ACCT}:\n{logs}"
    );
    assert_eq!(change_counters(&m, other), expected_counters(&[]), "{m}");
    assert_eq!(exporter.signal_and_wait("TERM"), Some(0));

    // Across a restart: the kept digest is of the other account.
    write_fresh_sample_report(&path);
    let exporter = Exporter::start(&args);
    let m = exporter.wait_for_sample(
        &format!(r#"iam_credentials_exporter_refresh_success{{account_id="{ACCT}"}}"#),
        1.0,
    );
    let logs = wait_for_judged(&exporter, 1);
    assert_eq!(count_messages(&logs, CHANGE_MSG), 0, "{logs}");
    assert_eq!(change_counters(&m, ACCT), expected_counters(&[]), "{m}");
}
