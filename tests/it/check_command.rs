//! `iam-credentials-exporter check`: the offline judge, its outputs and exit codes.
use crate::support::*;
use std::io::Write;
use std::process::{Command, Stdio};

fn check(args: &[&str], stdin: Option<&[u8]>) -> (i32, String, String) {
    let mut child = Command::new(BIN)
        .arg("check")
        .args(args)
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

const AT: &str = "--at=2026-11-25T06:00:00Z";

#[test]
fn table_names_check_control_user_and_detail() {
    let sample = sample_report();
    let (code, out, _) = check(&[sample.to_str().unwrap(), AT], None);
    assert_eq!(code, 1, "findings mean exit 1");
    let header = out.lines().next().unwrap();
    assert!(
        header.starts_with("CHECK")
            && header.contains("CONTROLS")
            && header.contains("USER")
            && header.contains("DETAIL")
    );
    let bob = out
        .lines()
        .find(|l| l.starts_with("console_user_without_mfa") && l.contains("bob"))
        .unwrap();
    assert!(bob.contains("IAM.5, CIS v7.0 2.10"), "{bob}");
    assert!(
        out.contains("access key 1 last rotated 2024-02-01 (1027 days ago)"),
        "{out}"
    );
    assert!(
        out.contains("24 finding(s) for 8 of 9 user(s) and root in account 123456789012"),
        "{out}"
    );
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
        vec!["check", "severity", "controls", "user", "arn", "key", "since", "detail"]
    );
    let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 24);
    // A user name with a comma survives the round trip.
    assert!(rows.iter().any(|r| &r[3] == "reports,etl"));
    assert!(rows
        .iter()
        .any(|r| &r[0] == "root_access_key" && &r[1] == "critical"));
}

#[test]
fn clean_reports_exit_zero_and_read_stdin() {
    let clean = "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_2_active,access_key_2_last_rotated,cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated\n\
alice,arn:aws:iam::111122223333:user/alice,2026-01-01T00:00:00Z,true,2026-11-24T00:00:00Z,2026-11-01T00:00:00Z,N/A,true,false,N/A,false,N/A,false,N/A,false,N/A\n";
    let (code, out, err) = check(&["-", AT], Some(clean.as_bytes()));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("0 finding(s)"), "{out}");
    let (code, _, _) = check(&[AT], Some(clean.as_bytes()));
    assert_eq!(code, 0, "stdin is the default");
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
    let line = out
        .lines()
        .find(|l| l.starts_with("root_access_key"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        line.contains("root access key 1 is active; the report gives no creation date, so its age cannot be judged"),
        "{line}"
    );
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
