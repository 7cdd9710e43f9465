//! `iam-credentials-exporter diff OLD NEW`: the change events between two reports of one
//! account, offline, on third-party fixtures of one account (644160558196, from Cloud
//! Custodian's tests) and on copies of them edited here. Exit codes: 0 nothing changed, 1
//! something did, 2 a report cannot be read, the two are of different accounts, or rows were
//! skipped (unless `--allow-skipped-rows`).
use crate::support::tools::{run, run_with_input, Output};
use crate::support::{repo, BIN};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The whole account's report: root and 19 users (christopher's row is there twice).
const ACCOUNT: &str = "cloud-custodian__cloud-custodian__account-credential-report.csv";
/// The same account later, with one user left: test_user, who was not there before.
const ONE_NEW_USER: &str = "cloud-custodian__cloud-custodian__delete-options-no-information.csv";
/// The same account later, with kapil alone: a new password and a new key.
const KAPIL_ALONE: &str = "cloud-custodian__cloud-custodian__multi-delete-single-user.csv";
/// Another account (123456789012).
const OTHER_ACCOUNT: &str = "duo-labs__cloudmapper__demo-3users.csv";

fn fixtures() -> PathBuf {
    repo().join("tests/fixtures/third-party")
}

fn fixture(name: &str) -> String {
    fixtures().join(name).to_str().unwrap().to_owned()
}

/// Runs `diff ARGS` in the fixtures' directory.
fn diff(args: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.arg("diff").args(args);
    run(cmd, &fixtures(), Duration::from_secs(30))
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("diff exited, not killed")
}

/// The JSON events of `diff OLD NEW -o json`, checking that it exits 1 and that each event has
/// exactly the six documented keys.
fn json_events(old: &str, new: &str) -> Vec<Value> {
    let out = diff(&[old, new, "--output", "json"]);
    assert_eq!(code(&out), 1, "{}", out.both());
    let events: Vec<Value> = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: not a JSON array\n{}", out.both()));
    for e in &events {
        let mut keys: Vec<&str> = e.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(
            keys,
            ["after", "arn", "before", "change", "slot", "user"],
            "{e}"
        );
    }
    events
}

/// Writes `csv` to `dir/name` and returns the path.
fn write(dir: &Path, name: &str, csv: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, csv).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn table_lists_each_change_and_exits_one() {
    let out = diff(&[ACCOUNT, ONE_NEW_USER]);
    assert_eq!(code(&out), 1, "{}", out.both());
    eprintln!(
        "$ iam-credentials-exporter diff {ACCOUNT} {ONE_NEW_USER}\n{}",
        out.stdout
    );
    let lines: Vec<&str> = out.stdout.lines().collect();
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(header, ["CHANGE", "USER", "KEY", "BEFORE", "AFTER"]);
    // The new user first, then the deleted ones in the old report's order, root among them;
    // christopher's duplicated row is one user, deleted once.
    let rows: Vec<Vec<&str>> = lines[1..]
        .iter()
        .take_while(|l| !l.is_empty())
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 21, "{}", out.stdout);
    assert_eq!(
        rows[0],
        ["user_created", "test_user", "2018-05-30T19:46:19Z"]
    );
    assert_eq!(
        rows[1],
        ["user_deleted", "<root_account>", "2016-05-16T18:13:11Z"]
    );
    assert_eq!(rows[20], ["user_deleted", "steven", "2016-09-07T21:38:22Z"]);
    assert!(rows[1..].iter().all(|r| r[0] == "user_deleted"));
    assert_eq!(
        rows.iter().filter(|r| r[1] == "christopher").count(),
        1,
        "{}",
        out.stdout
    );
    // BEFORE and AFTER are columns: the created user's time is under AFTER, the deleted
    // user's under BEFORE.
    let after_at = lines[0].find("AFTER").unwrap();
    let before_at = lines[0].find("BEFORE").unwrap();
    assert_eq!(lines[1].find("2018-05-30T19:46:19Z"), Some(after_at));
    assert_eq!(lines[2].find("2016-05-16T18:13:11Z"), Some(before_at));
    assert_eq!(
        lines.last().unwrap(),
        &format!("21 change(s) from {ACCOUNT} to {ONE_NEW_USER}.")
    );

    // Key events name their slot. kapil's old key moved from slot 1 to slot 2 (the same
    // last_rotated): it is the same key; the key now in slot 1 is the one new key.
    let out = diff(&[ACCOUNT, KAPIL_ALONE]);
    assert_eq!(code(&out), 1, "{}", out.both());
    let key_rows: Vec<Vec<&str>> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("access_key_created"))
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        key_rows,
        [vec![
            "access_key_created",
            "kapil",
            "1",
            "2019-12-14T10:26:37Z"
        ]],
        "{}",
        out.stdout
    );
}

#[test]
fn json_gives_change_user_arn_slot_before_after() {
    let events = json_events(ACCOUNT, KAPIL_ALONE);
    assert_eq!(events.len(), 21, "{events:#?}");
    // kapil, still there: his password changed, and one new key (his old one moved from
    // slot 1 to slot 2, the same key).
    assert_eq!(
        &events[..2],
        [
            json!({"change": "password_changed", "user": "kapil",
                   "arn": "arn:aws:iam::644160558196:user/kapil", "slot": null,
                   "before": "2016-10-07T17:05:28Z", "after": "2018-09-12T13:53:09Z"}),
            json!({"change": "access_key_created", "user": "kapil",
                   "arn": "arn:aws:iam::644160558196:user/kapil", "slot": 1,
                   "before": null, "after": "2019-12-14T10:26:37Z"}),
        ]
    );
    // Everyone else is deleted, once each, root included; nobody is also "created".
    let deleted: Vec<&str> = events[2..]
        .iter()
        .map(|e| {
            assert_eq!(e["change"], "user_deleted", "{e}");
            assert_eq!(e["after"], Value::Null, "{e}");
            assert_eq!(e["slot"], Value::Null, "{e}");
            e["user"].as_str().unwrap()
        })
        .collect();
    assert_eq!(deleted.len(), 19);
    assert!(!deleted.contains(&"kapil"));
    assert_eq!(
        events[2],
        json!({"change": "user_deleted", "user": "<root_account>",
               "arn": "arn:aws:iam::644160558196:root", "slot": null,
               "before": "2016-05-16T18:13:11Z", "after": null})
    );

    // The other way round: all of them created, kapil's key and password the other way.
    let back = json_events(KAPIL_ALONE, ACCOUNT);
    let kinds =
        |events: &[Value], change: &str| events.iter().filter(|e| e["change"] == change).count();
    assert_eq!(kinds(&back, "user_created"), 19, "{back:#?}");
    assert_eq!(kinds(&back, "user_deleted"), 0, "{back:#?}");
    // The 2019 key is gone; the 2016 key moved back to slot 1 and is no event.
    assert_eq!(kinds(&back, "access_key_deleted"), 1, "{back:#?}");
    assert_eq!(kinds(&back, "access_key_created"), 0, "{back:#?}");
    assert_eq!(kinds(&back, "password_changed"), 1, "{back:#?}");
}

#[test]
fn csv_has_a_header_row_and_one_row_per_event() {
    let out = diff(&[ACCOUNT, KAPIL_ALONE, "-o", "csv"]);
    assert_eq!(code(&out), 1, "{}", out.both());
    let mut reader = csv::Reader::from_reader(out.stdout.as_bytes());
    assert_eq!(
        reader.headers().unwrap(),
        vec!["change", "user", "arn", "slot", "before", "after"]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 21, "{}", out.stdout);
    assert_eq!(
        rows[1],
        vec![
            "access_key_created",
            "kapil",
            "arn:aws:iam::644160558196:user/kapil",
            "1",
            "",
            "2019-12-14T10:26:37Z"
        ]
    );
    assert_eq!(
        rows[2],
        vec![
            "user_deleted",
            "<root_account>",
            "arn:aws:iam::644160558196:root",
            "",
            "2016-05-16T18:13:11Z",
            ""
        ]
    );
}

#[test]
fn a_report_against_itself_has_no_changes_and_exits_zero() {
    let out = diff(&[ACCOUNT, ACCOUNT]);
    assert_eq!(code(&out), 0, "{}", out.both());
    assert_eq!(
        out.stdout,
        format!("no changes from {ACCOUNT} to {ACCOUNT}\n")
    );
    let out = diff(&[ACCOUNT, ACCOUNT, "-o", "json"]);
    assert_eq!(code(&out), 0, "{}", out.both());
    assert_eq!(
        serde_json::from_str::<Value>(&out.stdout).unwrap(),
        json!([])
    );
    let out = diff(&[ACCOUNT, ACCOUNT, "-o", "csv"]);
    assert_eq!(code(&out), 0, "{}", out.both());
    assert_eq!(out.stdout, "change,user,arn,slot,before,after\n");

    // The new report from standard input.
    let bytes = std::fs::read(fixtures().join(ACCOUNT)).unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args(["diff", ACCOUNT, "-"]);
    let out = run_with_input(cmd, &fixtures(), Some(&bytes), Duration::from_secs(30));
    assert_eq!(code(&out), 0, "{}", out.both());
    assert_eq!(
        out.stdout,
        format!("no changes from {ACCOUNT} to standard input\n")
    );
}

#[test]
fn reports_of_different_accounts_exit_two() {
    let out = diff(&[ACCOUNT, OTHER_ACCOUNT]);
    assert_eq!(code(&out), 2, "{}", out.both());
    assert_eq!(out.stdout, "", "nothing compared");
    assert!(
        out.stderr.contains("account 644160558196") && out.stderr.contains("account 123456789012"),
        "{}",
        out.both()
    );
}

#[test]
fn an_unreadable_report_exits_two() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.csv");
    let missing = missing.to_str().unwrap();
    let html = write(dir.path(), "page.html", "<html>not a report</html>\n");
    let empty = write(dir.path(), "empty.csv", "");
    let new = fixture(ONE_NEW_USER);
    for (old, new, says) in [
        (missing, new.as_str(), format!("reading {missing}")),
        (new.as_str(), missing, format!("reading {missing}")),
        (
            html.as_str(),
            new.as_str(),
            "lacks required column".to_owned(),
        ),
        (new.as_str(), empty.as_str(), "empty".to_owned()),
    ] {
        let out = diff(&[old, new]);
        assert_eq!(code(&out), 2, "{}", out.both());
        assert_eq!(out.stdout, "", "{}", out.both());
        assert!(
            out.stderr.starts_with("error: ") && out.stderr.contains(&says),
            "{says}: {}",
            out.both()
        );
    }
}

#[test]
fn skipped_rows_exit_two_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    // The fixture has no final newline.
    let good = std::fs::read_to_string(fixtures().join(ONE_NEW_USER))
        .unwrap()
        .trim_end()
        .to_owned()
        + "\n";
    // A row of the wrong width (line 3): its user would read as deleted if it were taken as
    // no user at all.
    let skipped = write(
        dir.path(),
        "skipped.csv",
        &format!("{good}broken,arn:aws:iam::644160558196:user/broken,2018-05-30T19:46:19+00:00\n"),
    );
    // test_user turns MFA on, in a report with the same broken row.
    let mfa = good.replacen(
        "2018-08-30T00:02:54+00:00,false,",
        "2018-08-30T00:02:54+00:00,true,",
        1,
    );
    assert_ne!(mfa, good);
    let mfa_skipped = write(
        dir.path(),
        "mfa-skipped.csv",
        &format!("{mfa}broken,arn:aws:iam::644160558196:user/broken\n"),
    );
    let good = fixture(ONE_NEW_USER);

    for (old, new) in [(&good, &skipped), (&skipped, &good)] {
        let out = diff(&[old, new]);
        assert_eq!(code(&out), 2, "{}", out.both());
        assert_eq!(out.stdout, "");
        assert!(
            out.stderr.contains("line 3 skipped") && out.stderr.contains("--allow-skipped-rows"),
            "{}",
            out.both()
        );
    }

    // Allowed: the warnings stay, and the exit code is the comparison's.
    let out = diff(&[&good, &skipped, "--allow-skipped-rows"]);
    assert_eq!(code(&out), 0, "{}", out.both());
    assert!(out.stdout.starts_with("no changes"), "{}", out.both());
    assert!(out.stderr.contains("line 3 skipped"), "{}", out.both());
    let out = diff(&[&good, &mfa_skipped, "--allow-skipped-rows", "-o", "json"]);
    assert_eq!(code(&out), 1, "{}", out.both());
    let events: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        events,
        json!([{"change": "mfa_enabled", "user": "test_user",
                "arn": "arn:aws:iam::644160558196:user/test_user", "slot": null,
                "before": "false", "after": "true"}])
    );
}

#[test]
fn a_user_deleted_and_created_again_under_the_same_name_is_two_events() {
    let dir = tempfile::tempdir().unwrap();
    let old = std::fs::read_to_string(fixtures().join(ONE_NEW_USER)).unwrap();
    let again = old.replacen(
        "user/test_user,2018-05-30T19:46:19+00:00,",
        "user/test_user,2018-07-01T08:00:00+00:00,",
        1,
    );
    assert_ne!(again, old);
    let again = write(dir.path(), "again.csv", &again);
    let events = json_events(&fixture(ONE_NEW_USER), &again);
    let arn = "arn:aws:iam::644160558196:user/test_user";
    assert_eq!(
        events,
        [
            json!({"change": "user_created", "user": "test_user", "arn": arn, "slot": null,
                   "before": null, "after": "2018-07-01T08:00:00Z"}),
            json!({"change": "user_deleted", "user": "test_user", "arn": arn, "slot": null,
                   "before": "2018-05-30T19:46:19Z", "after": null}),
        ]
    );
}
