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
    assert!(bob.contains("CIS 1.10, IAM.5"), "{bob}");
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
        vec!["check", "controls", "user", "arn", "key", "since", "detail"]
    );
    let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 24);
    // A user name with a comma survives the round trip.
    assert!(rows.iter().any(|r| &r[2] == "reports,etl"));
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

#[test]
fn skipped_rows_are_warned_about() {
    let mut csv = std::fs::read_to_string(sample_report()).unwrap();
    csv.push_str("\nbroken,row\n");
    let (code, _, err) = check(&["-", AT], Some(csv.as_bytes()));
    assert_eq!(code, 1);
    assert!(
        err.contains("line 12 skipped: 2 fields where the header has 23"),
        "{err}"
    );
}
