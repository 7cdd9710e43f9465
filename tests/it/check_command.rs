//! `iam-credentials-exporter check`: the offline judge, its outputs and exit codes.
use crate::support::*;
use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};

fn check(args: &[&str], stdin: Option<&[u8]>) -> (i32, String, String) {
    check_env(args, stdin, &[])
}

/// Runs `check` with `env` set (COLUMNS unset unless `env` sets it: the table is 100 columns
/// wide when piped without it).
fn check_env(args: &[&str], stdin: Option<&[u8]>, env: &[(&str, &str)]) -> (i32, String, String) {
    let mut child = Command::new(BIN)
        .arg("check")
        .args(args)
        .env_remove("COLUMNS")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let input = child.stdin.take().unwrap();
    if let Some(bytes) = stdin {
        let mut input = input;
        input.write_all(bytes).unwrap();
    } else {
        drop(input);
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The text with every run of whitespace (line breaks too) made one space.
fn normalized(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A finding as the table shows it, its detail's wrapped lines joined with spaces (a word
/// split across lines would not join back).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Row {
    severity: String,
    check: String,
    user: String,
    detail: String,
}

/// The findings section of a table: the rows until the first empty line. With `DETAIL` in
/// the header, details start in that column; without, they are on lines of their own under
/// each row.
fn table_findings(out: &str) -> Vec<Row> {
    let mut lines = out.lines();
    let header = lines.next().unwrap();
    assert!(
        header.starts_with("SEVERITY") && header.contains("CHECK") && header.contains("USER"),
        "{out}"
    );
    let detail_at = header.find("DETAIL");
    let mut rows: Vec<Row> = Vec::new();
    for l in lines {
        if l.is_empty() {
            break;
        }
        if l.starts_with(' ') {
            if rows.is_empty() {
                assert_eq!((detail_at, l.trim()), (None, "DETAIL"), "{out}");
                continue;
            }
            let r = rows.last_mut().unwrap();
            if !r.detail.is_empty() {
                r.detail.push(' ');
            }
            r.detail.push_str(l.trim());
        } else {
            let (front, detail) = match detail_at {
                Some(at) => (&l[..at], l[at..].to_owned()),
                None => (l, String::new()),
            };
            let cells: Vec<&str> = front.split_whitespace().collect();
            assert_eq!(cells.len(), 3, "{l}");
            rows.push(Row {
                severity: cells[0].to_owned(),
                check: cells[1].to_owned(),
                user: cells[2].to_owned(),
                detail,
            });
        }
    }
    rows
}

/// The failures-per-check section: check, severity, count and controls (wrapped lines
/// joined).
fn table_counts(out: &str) -> Vec<(String, String, u64, String)> {
    let section = out.split("\n\n").nth(1).unwrap_or_else(|| panic!("{out}"));
    let mut lines = section.lines();
    let header = lines.next().unwrap();
    assert!(header.starts_with("CHECK  "), "{out}");
    let controls_at = header.find("CONTROLS").unwrap_or_else(|| panic!("{out}"));
    let mut rows: Vec<(String, String, u64, String)> = Vec::new();
    for l in lines {
        if l.starts_with(' ') {
            let r = rows.last_mut().unwrap();
            r.3.push(' ');
            r.3.push_str(l.trim());
            continue;
        }
        let cells: Vec<&str> = l[..controls_at].split_whitespace().collect();
        rows.push((
            cells[0].to_owned(),
            cells[1].to_owned(),
            cells[2].parse().unwrap(),
            l[controls_at..].to_owned(),
        ));
    }
    rows
}

/// The remediation section: each check named once, its remediation's wrapped lines joined.
fn table_remediations(out: &str) -> Vec<(String, String)> {
    let (_, after) = out
        .split_once("To fix (USER, KEY_ID and the like are placeholders):\n")
        .unwrap_or_else(|| panic!("{out}"));
    let mut blocks: Vec<(String, String)> = Vec::new();
    for l in after.lines().take_while(|l| !l.is_empty()) {
        match l.strip_prefix("    ") {
            Some(text) => {
                let b = blocks.last_mut().unwrap();
                if !b.1.is_empty() {
                    b.1.push(' ');
                }
                b.1.push_str(text);
            }
            None => blocks.push((l.strip_suffix(':').unwrap().to_owned(), String::new())),
        }
    }
    blocks
}

/// The catalogue, as `checks --output json` prints it.
fn catalogue() -> Vec<serde_json::Value> {
    let out = Command::new(BIN)
        .args(["checks", "--output", "json"])
        .output()
        .unwrap();
    serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

const AT: &str = "--at=2026-11-25T06:00:00Z";

#[test]
fn the_table_fits_the_width_with_severity_counts_and_remediation_once_per_check() {
    let sample = sample_report();
    let sample = sample.to_str().unwrap();
    let (_, json, _) = check(&[sample, AT, "-o", "json"], None);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let mut expected: Vec<Row> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| Row {
            severity: f["severity"].as_str().unwrap().to_owned(),
            check: f["check"].as_str().unwrap().to_owned(),
            user: f["user"].as_str().unwrap().to_owned(),
            detail: f["detail"].as_str().unwrap().to_owned(),
        })
        .collect();
    expected.sort();
    let catalogue = catalogue();
    let entry = |check: &str| catalogue.iter().find(|c| c["id"] == check).unwrap().clone();
    let rank = |severity: &str| {
        ["critical", "high", "medium", "low", "informational"]
            .iter()
            .position(|s| *s == severity)
            .unwrap()
    };
    let failing: Vec<(String, u64)> = v["failures"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["failures"].as_u64().is_some_and(|n| n > 0))
        .map(|f| {
            (
                f["check"].as_str().unwrap().to_owned(),
                f["failures"].as_u64().unwrap(),
            )
        })
        .collect();

    for width in [80, 100] {
        let columns = width.to_string();
        let (code, out, _) = check_env(&[sample, AT], None, &[("COLUMNS", &columns)]);
        assert_eq!(code, 1, "findings mean exit 1");
        eprintln!("--- check {AT} examples/credential-report.csv, COLUMNS={width} ---\n{out}");
        for l in out.lines() {
            assert!(l.chars().count() <= width, "{width}: {l:?} is too long");
        }
        // Every finding, with its severity, and its detail unbroken; most severe first.
        let rows = table_findings(&out);
        let severities: Vec<usize> = rows.iter().map(|r| rank(&r.severity)).collect();
        assert!(severities.is_sorted(), "most severe first: {severities:?}");
        let mut sorted = rows.clone();
        sorted.sort();
        assert_eq!(sorted, expected, "{width}:\n{out}");
        // The failures per check, with severity and controls.
        let counts = table_counts(&out);
        assert_eq!(
            counts
                .iter()
                .map(|c| (c.0.clone(), c.2))
                .collect::<BTreeSet<_>>(),
            failing.iter().cloned().collect::<BTreeSet<_>>(),
            "{out}"
        );
        for (check, severity, _, controls) in &counts {
            let e = entry(check);
            assert_eq!(severity, e["severity"].as_str().unwrap());
            let hub: Vec<String> = serde_json::from_value(e["security_hub"].clone()).unwrap();
            for id in hub {
                assert!(controls.contains(&id), "{check}: {controls}");
            }
        }
        // The remediation of each failing check, once, as the catalogue has it.
        let fixes = table_remediations(&out);
        assert_eq!(
            fixes.iter().map(|f| f.0.clone()).collect::<Vec<_>>(),
            counts.iter().map(|c| c.0.clone()).collect::<Vec<_>>()
        );
        for (check, text) in &fixes {
            assert_eq!(
                text,
                entry(check)["remediation"].as_str().unwrap(),
                "{check}"
            );
        }
        assert!(
            normalized(&out).contains(
                "24 finding(s) for 8 of 10 principal(s) (9 user(s) and root) in account 123456789012."
            ),
            "{out}"
        );
        let header = out.lines().next().unwrap();
        assert_eq!(
            header.contains("DETAIL"),
            width == 100,
            "details beside the row at 100 columns, under it at 80: {header}"
        );
    }
    // Piped without COLUMNS: 100 columns.
    let (_, piped, _) = check(&[sample, AT], None);
    let (_, hundred, _) = check_env(&[sample, AT], None, &[("COLUMNS", "100")]);
    assert_eq!(piped, hundred);
}

/// The summary counts root among the principals, with the IAM users, so the failing ones
/// never outnumber the judged ones (cloudmapper's fixtures read "3 of 2" and "1 of 0").
#[test]
fn the_summary_counts_users_and_root_consistently() {
    for (fixture, summary, failing, principals) in [
        (
            "duo-labs__cloudmapper__demo-3users.csv",
            "15 finding(s) for 3 of 3 principal(s) (2 user(s) and root) in account 123456789012.",
            3,
            3,
        ),
        (
            "duo-labs__cloudmapper__demo-root-only.csv",
            "1 finding(s) for 1 of 1 principal(s) (0 user(s) and root) in account 653711331788.",
            1,
            1,
        ),
        (
            "cloud-custodian__cloud-custodian__unused-keys-root-keys-certs.csv",
            "34 finding(s) for 8 of 8 principal(s) (7 user(s) and root) in account 619193117841.",
            8,
            8,
        ),
    ] {
        let path = repo().join("tests/fixtures/third-party").join(fixture);
        let path = path.to_str().unwrap();
        let (code, out, err) = check(&[path, AT], None);
        assert_eq!(code, 1, "{fixture}: {err}");
        assert!(normalized(&out).contains(summary), "{fixture}:\n{out}");
        let (_, json, _) = check(&[path, AT, "-o", "json"], None);
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        let users: BTreeSet<&str> = v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["user"].as_str().unwrap())
            .collect();
        assert_eq!(users.len(), failing, "{fixture}");
        let judged = v["users"].as_u64().unwrap() + u64::from(v["root_in_report"] == true);
        assert_eq!(judged, principals, "{fixture}");
    }
}

#[test]
fn json_and_csv_outputs() {
    let sample = sample_report();
    let (code, out, _) = check(&[sample.to_str().unwrap(), AT, "--output", "json"], None);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["account_id"], "123456789012");
    assert_eq!(v["users"], 9);
    assert_eq!(v["findings"].as_array().unwrap().len(), 24);
    assert_eq!(v["failures"].as_array().unwrap().len(), 12);
    let rotated = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"] == "access_key_not_rotated" && f["user"] == "bob")
        .unwrap();
    assert_eq!(rotated["key"], 1);
    assert_eq!(rotated["since"], "2024-02-01T10:11:12Z");

    let (code, out, _) = check(&[sample.to_str().unwrap(), AT, "-o", "csv"], None);
    assert_eq!(code, 1);
    let mut r = csv::Reader::from_reader(out.as_bytes());
    assert_eq!(
        r.headers().unwrap(),
        vec![
            "account_id",
            "check",
            "severity",
            "controls",
            "user",
            "arn",
            "key",
            "since",
            "detail"
        ]
    );
    let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 24);
    assert!(rows.iter().all(|r| &r[0] == "123456789012"));
    // A user name with a comma survives the round trip.
    assert!(rows.iter().any(|r| &r[4] == "reports,etl"));
    assert!(rows
        .iter()
        .any(|r| &r[1] == "root_access_key" && &r[2] == "critical"));
}

#[test]
fn clean_reports_exit_zero_and_read_stdin() {
    let clean = "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_2_active,access_key_2_last_rotated,cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated\n\
alice,arn:aws:iam::111122223333:user/alice,2026-01-01T00:00:00Z,true,2026-11-24T00:00:00Z,2026-11-01T00:00:00Z,N/A,true,false,N/A,false,N/A,false,N/A,false,N/A\n";
    let (code, out, err) = check(&["-", AT], Some(clean.as_bytes()));
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(
        out,
        "No findings for 1 user(s) (root not in report) in account 111122223333.\n\
         root not in report, not judged: root_without_mfa, root_access_key, root_used_recently.\n",
        "no bare header"
    );
    let (code, _, err) = check(&[AT], Some(clean.as_bytes()));
    assert_eq!(code, 0, "stdin is the default");
    assert!(
        !err.contains("reading the credential report"),
        "no notice when standard input is not a terminal: {err}"
    );
}

#[test]
fn thresholds_change_the_verdict() {
    let sample = sample_report();
    let (_, strict, _) = check(
        &[
            sample.to_str().unwrap(),
            AT,
            "-o",
            "json",
            "--check.unused-credentials",
            "45d",
        ],
        None,
    );
    let (_, lax, _) = check(&[sample.to_str().unwrap(), AT, "-o", "json"], None);
    let count = |s: &str, c: &str| {
        let v: serde_json::Value = serde_json::from_str(s).unwrap();
        v["failures"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["check"] == c)
            .unwrap()["failures"]
            .as_u64()
            .unwrap()
    };
    assert!(count(&strict, "unused_password") >= count(&lax, "unused_password"));
    // With a 30-day key age, alice's key (rotated 2026-09-15), bob's second key (2026-10-01)
    // and ci-runner's (2026-10-20) fail too; frank's (2026-11-20) does not.
    let (_, short, _) = check(
        &[
            sample.to_str().unwrap(),
            AT,
            "-o",
            "json",
            "--check.access-key-max-age",
            "30d",
        ],
        None,
    );
    assert_eq!(
        count(&short, "access_key_not_rotated"),
        count(&lax, "access_key_not_rotated") + 3
    );
}

#[test]
fn unreadable_reports_exit_two_with_the_reason() {
    let (code, _, err) = check(&["/nonexistent/report.csv"], None);
    assert_eq!(code, 2);
    assert!(err.contains("reading /nonexistent/report.csv"), "{err}");
    let (code, _, err) = check(&["-"], Some(b"not,a,report\n1,2,3\n"));
    assert_eq!(code, 2);
    assert!(err.contains("lacks required column(s)"), "{err}");
    let (code, _, err) = check(&["-"], Some(b""));
    assert_eq!(code, 2);
    assert!(err.contains("empty"), "{err}");
}

/// The sample report's header, for reports built in the tests.
fn header() -> String {
    std::fs::read_to_string(sample_report())
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_owned()
}

#[test]
fn skipped_rows_make_the_verdict_incomplete_unless_allowed() {
    let mut csv = std::fs::read_to_string(sample_report()).unwrap();
    csv.push_str("\nbroken,row\n");
    let (code, out, err) = check(&["-", AT], Some(csv.as_bytes()));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("line 12 skipped: 2 fields where the header has 23"),
        "{err}"
    );
    assert!(
        err.contains(
            "the verdict is incomplete: 1 row(s) skipped (1 with the wrong number of fields)"
        ),
        "{err}"
    );
    // The findings are still printed.
    assert!(out.contains("24 finding(s)"), "{out}");
    let (code, _, err) = check(&["-", AT, "--allow-skipped-rows"], Some(csv.as_bytes()));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("1 row(s) skipped"), "{err}");
}

#[test]
fn a_report_of_which_no_row_can_be_read_exits_two_even_when_skipped_rows_are_allowed() {
    let wrong_width = format!("{}\na,b,c\nd,e,f\ng,h,i\nj,k,l\nm,n,o\n", header());
    // One row of the right width whose user field is 20 MB: not a user AWS could write.
    let sample = std::fs::read_to_string(sample_report()).unwrap();
    let alice = sample.lines().find(|l| l.starts_with("alice,")).unwrap();
    let huge = format!("{}\n{}{}\n", header(), "x".repeat(20 << 20), &alice[5..]);
    for (name, csv) in [("wrong width", wrong_width), ("20 MB field", huge)] {
        for extra in [&[][..], &["--allow-skipped-rows"][..]] {
            let mut args = vec!["-", AT];
            args.extend_from_slice(extra);
            let (code, out, err) = check(&args, Some(csv.as_bytes()));
            assert_eq!(code, 2, "{name} {extra:?}: {out}{err}");
            assert!(
                err.contains("no row of the credential report could be read"),
                "{name}: {err}"
            );
            assert!(err.len() < 4096, "{name}: the warnings are capped");
        }
    }
}

#[test]
fn warnings_for_skipped_rows_are_capped() {
    let mut csv = header();
    csv.push('\n');
    for _ in 0..100_000 {
        csv.push_str("a,b,c\n");
    }
    let (code, _, err) = check(&["-", AT], Some(csv.as_bytes()));
    assert_eq!(code, 2);
    let named = err.lines().filter(|l| l.contains(" skipped: ")).count();
    assert_eq!(named, 10, "{err}");
    assert!(err.contains("line 2 skipped") && err.contains("line 11 skipped"));
    assert!(!err.contains("line 12 skipped"));
    assert!(
        err.contains("99990 more row(s) skipped, 100000 in all"),
        "{err}"
    );
    assert!(err.lines().count() <= 13, "{err}");
}

#[test]
fn a_report_without_the_root_row_does_not_judge_root() {
    let sample = std::fs::read_to_string(sample_report()).unwrap();
    let without_root: String = sample
        .lines()
        .filter(|l| !l.starts_with("<root_account>,"))
        .map(|l| format!("{l}\n"))
        .collect();
    let (code, out, _) = check(&["-", AT], Some(without_root.as_bytes()));
    assert_eq!(code, 1);
    assert!(
        out.contains(
            "root not in report, not judged: root_without_mfa, root_access_key, root_used_recently"
        ),
        "{out}"
    );
    assert!(!out.contains("<root_account>"), "{out}");
    let (_, out, _) = check(&["-", AT, "-o", "json"], Some(without_root.as_bytes()));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["root_in_report"], false);
    for f in v["failures"].as_array().unwrap() {
        let root = f["check"].as_str().unwrap().starts_with("root_");
        assert_eq!(f["failures"].is_null(), root, "{f}");
    }
}

#[test]
fn root_credentials_removed_centrally_pass_and_a_dateless_active_key_counts() {
    let user = "alice,arn:aws:iam::111122223333:user/alice,2026-11-01T00:00:00Z,false,N/A,N/A,N/A,true,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A,0";
    // Root after centralized root access: no password, keys, certificates or MFA.
    let removed = format!(
        "{}\n<root_account>,arn:aws:iam::111122223333:root,2020-01-01T00:00:00Z,false,N/A,N/A,not_supported,false,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A,0\n{user}\n",
        header()
    );
    let (code, out, err) = check(&["-", AT], Some(removed.as_bytes()));
    assert_eq!(code, 0, "{out}{err}");
    // Root with an active key whose dates are N/A (the shape of Prowler's fixtures).
    let dateless = format!(
        "{}\n<root_account>,arn:aws:iam::111122223333:root,2020-01-01T00:00:00Z,false,N/A,N/A,not_supported,true,true,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A,0\n{user}\n",
        header()
    );
    let (code, out, _) = check(&["-", AT], Some(dateless.as_bytes()));
    assert_eq!(code, 1, "{out}");
    let row = table_findings(&out)
        .into_iter()
        .find(|r| r.check == "root_access_key")
        .unwrap_or_else(|| panic!("{out}"));
    assert_eq!(
        row.detail,
        "root access key 1 is active; the report gives no creation date, so its age cannot be judged"
    );
    assert_eq!(row.severity, "critical");
}

#[test]
fn the_checks_subcommand_prints_the_catalogue() {
    let out = Command::new(BIN)
        .args(["checks", "--output", "json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let checks = v.as_array().unwrap();
    assert_eq!(checks.len(), 18);
    let root_key = checks
        .iter()
        .find(|c| c["id"] == "root_access_key")
        .unwrap();
    assert_eq!(root_key["severity"], "critical");
    assert_eq!(root_key["security_hub"], serde_json::json!(["IAM.4"]));
    assert_eq!(
        root_key["cis"],
        serde_json::json!({"1.4": "1.4", "1.5": "1.4", "2.0": "1.4", "3.0": "1.4", "4.0": "1.4", "5.0": "1.3", "6.0": "2.3", "7.0": "2.4"})
    );
    assert_eq!(root_key["config_rule"], "iam-root-access-key-check");
    let one_key = checks
        .iter()
        .find(|c| c["id"] == "two_active_access_keys")
        .unwrap();
    assert!(one_key["cis"].get("7.0").is_none(), "absent from v7.0");
    assert_eq!(one_key["cis"]["5.0"], "1.12");
    for c in checks {
        for field in ["id", "title", "severity", "remediation"] {
            assert!(c[field].as_str().is_some_and(|s| !s.is_empty()), "{c}");
        }
        assert!(c["security_hub"].is_array() && c["cis"].is_object(), "{c}");
    }
    let table = Command::new(BIN).arg("checks").output().unwrap();
    let table = String::from_utf8(table.stdout).unwrap();
    assert!(table.contains("root_virtual_mfa\n  title"), "{table}");
}

/// The README's table of checks is the catalogue's, word for word.
#[test]
fn the_readme_lists_the_catalogue() {
    let out = Command::new(BIN)
        .args(["checks", "--output", "markdown"])
        .output()
        .unwrap();
    let table = String::from_utf8(out.stdout).unwrap();
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    assert!(
        readme.contains(&table),
        "README.md's table of checks differs from `iam-credentials-exporter checks --output markdown`; paste that output into the README:\n{table}"
    );
}

/// `script` (util-linux, in Debian's essential bsdutils) runs `command` on a pseudo-terminal,
/// with `input` typed into it; what the terminal showed (standard output and error, with
/// CR LF line ends) and the command's exit code.
fn on_a_terminal(command: &str, input: &[u8]) -> (i32, String) {
    let mut child = Command::new("script")
        .args(["-qec", command, "/dev/null"])
        .env_remove("COLUMNS")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script(1) from util-linux");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n"),
    )
}

/// With no FILE and a terminal on standard input, `check` says what it waits for instead of
/// waiting silently; Ctrl-D ends the (here empty) input.
#[test]
fn reading_from_a_terminal_says_so() {
    let (code, out) = on_a_terminal(&format!("'{BIN}' check {AT}"), b"\x04");
    assert_eq!(code, 2, "an empty report: {out}");
    assert!(
        out.starts_with(
            "reading the credential report from standard input (end with Ctrl-D); see --help\n"
        ),
        "{out}"
    );
    assert!(
        out.contains("error: standard input: the credential report is empty"),
        "{out}"
    );
}

/// On a terminal without COLUMNS, the table fits the terminal's width.
#[test]
fn the_table_fits_the_terminal() {
    let sample = sample_report();
    let (code, out) = on_a_terminal(
        &format!(
            "stty rows 24 cols 72 && '{BIN}' check '{}' {AT}",
            sample.display()
        ),
        b"",
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("24 finding(s)"), "{out}");
    for l in out.lines() {
        assert!(l.chars().count() <= 72, "{l:?}\n{out}");
    }
}

/// `check` honours `--log.format` and `--log.level`: given either, its warnings and errors are
/// log lines in that format, filtered by that level; without them, plain lines for people.
#[test]
fn check_logs_its_warnings_in_the_chosen_format_and_level() {
    let mut csv = std::fs::read_to_string(sample_report()).unwrap();
    csv.push_str("\nbroken,row\n");
    let (code, _, err) = check(&["-", AT, "--log.format=json"], Some(csv.as_bytes()));
    assert_eq!(code, 2, "{err}");
    let lines: Vec<serde_json::Value> = err
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(
        lines.iter().any(|v| v["level"] == "WARN"
            && v["msg"]
                .as_str()
                .is_some_and(|m| m.contains("line 12 skipped: 2 fields where the header has 23"))),
        "{err}"
    );
    assert!(
        lines.iter().any(|v| v["level"] == "ERROR"
            && v["msg"]
                .as_str()
                .is_some_and(|m| m.contains("the verdict is incomplete"))),
        "{err}"
    );
    // Errors only: the warnings go, the error stays, in logfmt.
    let (code, _, err) = check(&["-", AT, "--log.level=error"], Some(csv.as_bytes()));
    assert_eq!(code, 2, "{err}");
    assert!(!err.contains("line 12 skipped"), "{err}");
    assert!(
        err.contains("level=ERROR") && err.contains("the verdict is incomplete"),
        "{err}"
    );
    // Neither flag: plain lines.
    let (_, _, err) = check(&["-", AT], Some(csv.as_bytes()));
    assert!(
        err.lines()
            .any(|l| l.starts_with("warning: standard input: line 12 skipped")),
        "{err}"
    );
}

/// A console user of account 123456789012 who signed in the day before [`AT`]: clean with an
/// MFA device, failing `console_user_without_mfa` and `user_without_mfa` without one.
fn console_user(name: &str, mfa: bool) -> String {
    format!("{name},arn:aws:iam::123456789012:user/{name},2020-01-01T00:00:00Z,true,2026-11-24T00:00:00Z,2026-11-01T00:00:00Z,N/A,{mfa},false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A,0")
}

/// `check` reads a report row by row and writes findings as it judges them, so a user's rows
/// far apart (more than its read-ahead apart) must still be judged as `report::parse` keeps
/// them: the last row of a user wins, at the place of the first. A first row failing and a
/// last passing gives no finding, the reverse gives the last row's findings, in the first
/// row's place; every output says the same as for the report with only those rows, and the
/// counts before the findings match the findings after them.
#[test]
fn a_users_last_row_wins_at_the_place_of_its_first_however_far_apart() {
    let root = "<root_account>,arn:aws:iam::123456789012:root,2017-03-14T09:12:44+00:00,not_supported,2026-01-01T00:00:00Z,not_supported,not_supported,true,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A,0";
    // Fillers between the rows of a user; every hundredth fails, to show the order.
    let fillers: Vec<String> = (0..3000)
        .map(|i| console_user(&format!("filler-{i:04}"), i % 100 != 0))
        .collect();
    let mut with_duplicates = vec![
        root.to_owned(),
        console_user("alice", false), // fails first...
        console_user("bob", true),    // passes first...
        console_user("carol", false),
    ];
    with_duplicates.extend(fillers[..1500].iter().cloned());
    with_duplicates.push(console_user("alice", true)); // ...passes last: no finding
    with_duplicates.push(console_user("carol", true));
    with_duplicates.extend(fillers[1500..].iter().cloned());
    with_duplicates.push(console_user("bob", false)); // ...fails last: bob fails, first
    with_duplicates.push(console_user("carol", false)); // fails, passes, fails: fails

    // What parse keeps: each user's last row, at the place of its first.
    let mut kept = vec![
        root.to_owned(),
        console_user("alice", true),
        console_user("bob", false),
        console_user("carol", false),
    ];
    kept.extend(fillers.iter().cloned());
    let report = |rows: &[String]| format!("{}\n{}\n", header(), rows.join("\n"));
    let (with_duplicates, kept) = (report(&with_duplicates), report(&kept));

    for output in ["json", "csv", "table", "asff"] {
        let (code, out, err) = check(&["-", AT, "-o", output], Some(with_duplicates.as_bytes()));
        assert_eq!(code, 1, "{output}: {err}");
        let (_, expected, _) = check(&["-", AT, "-o", output], Some(kept.as_bytes()));
        assert!(
            out == expected,
            "{output}: the duplicates changed the verdict"
        );
    }
    let (_, json, _) = check(&["-", AT, "-o", "json"], Some(with_duplicates.as_bytes()));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        v["users"], 3003,
        "alice, bob, carol and the fillers, once each"
    );
    let findings = v["findings"].as_array().unwrap();
    let users: Vec<&str> = findings
        .iter()
        .map(|f| f["user"].as_str().unwrap())
        .collect();
    let mut expected: Vec<String> = ["bob", "bob", "carol", "carol"].map(String::from).to_vec();
    for i in (0..3000).step_by(100) {
        let name = format!("filler-{i:04}");
        expected.extend([name.clone(), name]);
    }
    assert_eq!(
        users, expected,
        "bob and carol in their first rows' places, alice clean"
    );
    // The failures per check, counted before the findings are written, are the findings'.
    for c in v["failures"].as_array().unwrap() {
        let listed = findings.iter().filter(|f| f["check"] == c["check"]).count();
        assert_eq!(c["failures"].as_u64(), Some(listed as u64), "{c}");
    }
    let (_, table, _) = check(&["-", AT], Some(with_duplicates.as_bytes()));
    assert!(
        normalized(&table).contains(
            "64 finding(s) for 32 of 3004 principal(s) (3003 user(s) and root) in account 123456789012."
        ),
        "{table}"
    );
}
