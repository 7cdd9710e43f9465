//! Every third-party report in tests/fixtures/third-party parses, or fails with the error it
//! deserves. See tests/fixtures/third-party/SOURCES.md for where each comes from.
use iam_credential_report::judge::{judge, Check, Thresholds};
use iam_credential_report::report::{parse, CredentialReport, ReportError};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/third-party/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn parsed(name: &str) -> CredentialReport {
    parse(&fixture(name)).unwrap_or_else(|e| panic!("{name} should parse: {e}"))
}

/// (file, IAM users excluding root, has a root row, account id)
const GOOD: &[(&str, usize, bool, &str)] = &[
    (
        "awsdocs__powershell-example__legacy-16col-REPAIRED.csv",
        2,
        true,
        "123456789012",
    ),
    (
        "cloud-custodian__cloud-custodian__account-credential-report.csv",
        19,
        true,
        "644160558196",
    ),
    (
        "cloud-custodian__cloud-custodian__cel-credential-report.csv",
        2,
        true,
        "012345678910",
    ),
    (
        "cloud-custodian__cloud-custodian__delete-options-no-information.csv",
        1,
        false,
        "644160558196",
    ),
    (
        "cloud-custodian__cloud-custodian__multi-delete-noop-root-no-information.csv",
        1,
        true,
        "644160558196",
    ),
    (
        "cloud-custodian__cloud-custodian__multi-delete-single-user.csv",
        1,
        false,
        "644160558196",
    ),
    (
        "cloud-custodian__cloud-custodian__reverse-filter-uppercase-bools.csv",
        1,
        false,
        "123456789012",
    ),
    (
        "cloud-custodian__cloud-custodian__unused-keys-root-keys-certs.csv",
        7,
        true,
        "619193117841",
    ),
    (
        "duo-labs__cloudmapper__demo-3users.csv",
        2,
        true,
        "123456789012",
    ),
    (
        "duo-labs__cloudmapper__demo-root-only.csv",
        0,
        true,
        "653711331788",
    ),
];

#[test]
fn every_good_fixture_parses_without_skipping_rows() {
    let mut dir: Vec<String> = std::fs::read_dir(format!(
        "{}/tests/fixtures/third-party",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
    .map(|e| e.unwrap().file_name().into_string().unwrap())
    .filter(|n| n.ends_with(".csv"))
    .collect();
    dir.sort();
    for (name, users, root, account) in GOOD {
        let r = parsed(name);
        assert_eq!(r.users().count(), *users, "{name}: users");
        assert_eq!(r.root().is_some(), *root, "{name}: root row");
        assert_eq!(r.account_id.as_deref(), Some(*account), "{name}: account");
        assert!(r.skipped.is_empty(), "{name}: {:?}", r.skipped);
        // Judging never panics and every finding points at a real row.
        let a = judge(
            &r,
            "2026-11-25T00:00:00Z".parse().unwrap(),
            &Thresholds::default(),
        );
        assert!(a.findings.iter().all(|f| f.row < r.rows.len()));
    }
    // Every fixture on disk is covered by this test or the next.
    let covered = GOOD.len() + 2;
    assert_eq!(dir.len(), covered, "a fixture is not covered: {dir:?}");
}

#[test]
fn the_doc_rendering_with_a_merged_header_is_refused() {
    let err = parse(&fixture(
        "awsdocs__powershell-example__legacy-16col-AS-RENDERED.csv",
    ))
    .unwrap_err();
    match &err {
        ReportError::MissingColumns { missing, unknown } => {
            assert_eq!(missing, &["user", "cert_2_last_rotated"]);
            assert!(
                unknown
                    .iter()
                    .any(|u| u == "cert_2_last_rotated root_account"),
                "{unknown:?}"
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err
        .to_string()
        .contains("lacks required column(s) user, cert_2_last_rotated"));
}

#[test]
fn the_literal_backslash_n_file_is_refused_with_a_hint() {
    let err = parse(&fixture(
        "elastic__cloudbeat__user-test-16col-literal-backslash-n.csv",
    ))
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("cert_1_last_rotated, cert_2_active, cert_2_last_rotated"),
        "{msg}"
    );
    assert!(msg.contains("literal \\n"), "{msg}");
}

#[test]
fn the_duplicate_user_is_counted_once() {
    let r = parsed("cloud-custodian__cloud-custodian__account-credential-report.csv");
    assert_eq!(r.duplicates, 1);
    assert_eq!(r.rows.iter().filter(|u| u.user == "christopher").count(), 1);
}

#[test]
fn legacy_16_column_reports_have_no_key_use() {
    let r = parsed("awsdocs__powershell-example__legacy-16col-REPAIRED.csv");
    assert_eq!(r.columns, 16);
    assert!(!r.has_key_last_used);
    let a = judge(
        &r,
        "2015-05-01T00:00:00Z".parse().unwrap(),
        &Thresholds::default(),
    );
    // Administrator has a password and two active keys; without last-use data the keys are
    // not called "never used".
    assert_eq!(a.count(Check::AccessKeyAtSetup), 0);
    assert_eq!(a.count(Check::TwoActiveAccessKeys), 1);
}

#[test]
fn kyle_root_is_a_user_and_root_is_root() {
    let r = parsed("cloud-custodian__cloud-custodian__cel-credential-report.csv");
    let kyle = r.rows.iter().find(|u| u.user == "kyle_root").unwrap();
    assert!(!kyle.is_root);
    assert!(r.root().unwrap().arn.ends_with(":root"));
    let a = judge(
        &r,
        "2020-10-09T12:00:00Z".parse().unwrap(),
        &Thresholds::default(),
    );
    assert_eq!(
        a.count(Check::RootUsedRecently),
        1,
        "root signed in 12 hours earlier"
    );
    assert_eq!(
        a.count(Check::TwoActiveAccessKeys),
        1,
        "kyle_root has two active keys"
    );
    assert_eq!(a.count(Check::RootAccessKey), 0);
}

#[test]
fn uppercase_booleans_and_future_dates() {
    let r = parsed("cloud-custodian__cloud-custodian__reverse-filter-uppercase-bools.csv");
    let u = &r.rows[0];
    assert_eq!(u.password_enabled, Some(false));
    assert!(u.keys[0].is_active() && u.keys[1].is_active());
    let a = judge(
        &r,
        "2026-11-25T00:00:00Z".parse().unwrap(),
        &Thresholds::default(),
    );
    // Key 2 was "rotated" in 2099: not old. Key 1 (2019) is.
    assert_eq!(a.count(Check::AccessKeyNotRotated), 1);
}

#[test]
fn an_old_root_with_an_active_key_and_an_inactive_dated_one() {
    let r = parsed("cloud-custodian__cloud-custodian__unused-keys-root-keys-certs.csv");
    let root = r.root().unwrap();
    assert!(root.keys[0].is_active());
    assert!(root.keys[1].exists() && !root.keys[1].is_active());
    let a = judge(
        &r,
        "2026-11-25T00:00:00Z".parse().unwrap(),
        &Thresholds::default(),
    );
    assert_eq!(a.count(Check::RootAccessKey), 1);
    assert_eq!(a.count(Check::RootWithoutMfa), 1);
}

#[test]
fn no_information_passwords_count_from_their_last_change() {
    let r = parsed("cloud-custodian__cloud-custodian__delete-options-no-information.csv");
    let at = |s: &str| judge(&r, s.parse().unwrap(), &Thresholds::default());
    // Password set 2018-06-01, never used since: unused 90 days later, not before.
    assert_eq!(at("2018-08-15T00:00:00Z").count(Check::UnusedPassword), 0);
    assert_eq!(at("2018-09-15T00:00:00Z").count(Check::UnusedPassword), 1);
}
