//! The real exporter binary against moto's IAM over real HTTP, through the same code path as
//! AWS (`AWS_ENDPOINT_URL`, the default credential chain): users seeded with boto3, /metrics
//! scraped, values asserted; then an MFA device is deactivated in moto and the next refresh
//! must show the regression, in the report series and in the live summary.
//!
//! moto's quirks, checked against moto 5 before asserting: its report's GeneratedTime is
//! fixed in 2015 (so only the content hash tells a new report from the last one), it writes
//! no `<root_account>` row, `password_last_used` reads `no_information`, never-used keys read
//! `N/A`, and GenerateCredentialReport answers STARTED once, then COMPLETE.
use crate::support::loopback::Loopback;
use crate::support::moto::Moto;
use crate::support::{get, sample, wait_for, Exporter};
use std::time::Duration;

/// moto's default account.
const ACCOUNT: &str = "123456789012";

/// `name{account_id="123456789012"<labels>}`.
fn series(name: &str, labels: &str) -> String {
    format!("{name}{{account_id=\"{ACCOUNT}\"{labels}}}")
}

fn check(name: &str) -> String {
    series("aws_iam_check_failures", &format!(",check=\"{name}\""))
}

fn user(name: &str, user: &str) -> String {
    series(name, &format!(",user=\"{user}\""))
}

fn expect(m: &str, series: &str, value: f64) {
    assert_eq!(
        sample(m, series),
        Some(value),
        "{series}\n--- exposition ---\n{m}"
    );
}

fn env_refs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[test]
fn reads_moto_and_shows_an_mfa_regression_at_the_next_refresh() {
    let moto = Moto::start();
    moto.iam(&["seed"]);
    let env = moto.env();
    let exporter = Exporter::start_with_env(&["--refresh.interval=1s"], &env_refs(&env));

    let m = exporter.wait_for_sample(&series("iam_credentials_exporter_refresh_success", ""), 1.0);
    assert_eq!(get(&exporter.url("/-/ready")).status, 200);

    // The report: four users, three with a console password; keys as seeded.
    expect(&m, &series("aws_iam_users", ""), 4.0);
    expect(&m, &series("aws_iam_console_users", ""), 3.0);
    expect(&m, &series("aws_iam_access_keys", ",state=\"active\""), 3.0);
    expect(
        &m,
        &series("aws_iam_access_keys", ",state=\"inactive\""),
        1.0,
    );
    // moto's fixed GeneratedTime, 2015-02-02T20:02:02Z.
    expect(
        &m,
        &series("aws_iam_credential_report_generated_timestamp_seconds", ""),
        1_422_907_322.0,
    );

    // The checks: bob is a console user without MFA, carol has two active keys, alice's
    // key was never used and she has a console password.
    expect(&m, &check("console_user_without_mfa"), 1.0);
    expect(&m, &check("user_without_mfa"), 2.0);
    expect(&m, &check("two_active_access_keys"), 1.0);
    expect(&m, &check("access_key_at_setup"), 1.0);
    // moto writes no root row: the report's root checks are clean...
    expect(&m, &check("root_without_mfa"), 0.0);
    // ...while the live summary says root has no MFA: alerts combine the two.
    expect(&m, &series("aws_iam_root_mfa_enabled", ""), 0.0);
    expect(&m, &series("aws_iam_root_access_keys_present", ""), 0.0);
    expect(&m, &series("aws_iam_mfa_devices_in_use", ""), 2.0);

    // Per-user series.
    expect(&m, &user("aws_iam_user_mfa_active", "alice"), 1.0);
    expect(&m, &user("aws_iam_user_mfa_active", "bob"), 0.0);
    expect(&m, &user("aws_iam_user_password_enabled", "carol"), 0.0);
    expect(
        &m,
        &series(
            "aws_iam_user_check_failed",
            ",check=\"console_user_without_mfa\",user=\"bob\"",
        ),
        1.0,
    );
    expect(
        &m,
        &series(
            "aws_iam_user_check_failed",
            ",check=\"two_active_access_keys\",user=\"carol\"",
        ),
        1.0,
    );
    expect(
        &m,
        &series("aws_iam_access_key_active", ",key=\"1\",user=\"dave\""),
        0.0,
    );
    expect(
        &m,
        &series("aws_iam_access_key_active", ",key=\"2\",user=\"carol\""),
        1.0,
    );

    // Live account facts: the alias and the password policy (14 characters, reuse of 5).
    expect(
        &m,
        &series("aws_iam_account_info", ",alias=\"moto-example\",name=\"\""),
        1.0,
    );
    expect(
        &m,
        &series("aws_iam_password_policy_minimum_length", ""),
        14.0,
    );
    expect(
        &m,
        &series("aws_iam_password_policy_reuse_prevention", ""),
        5.0,
    );
    expect(&m, &check("password_policy_missing"), 0.0);
    expect(&m, &check("password_policy_weak_length"), 0.0);
    expect(&m, &check("password_policy_weak_reuse"), 1.0);

    // moto answered STARTED once: the exporter polled again, and counted it.
    expect(
        &m,
        &series(
            "iam_credentials_exporter_aws_retries_total",
            ",api=\"GenerateCredentialReport\",cause=\"report_not_ready\"",
        ),
        1.0,
    );

    // The landing page names the account, its alias and the outcome.
    let landing = get(&exporter.url("/")).text();
    for needle in [
        ACCOUNT,
        "moto-example",
        "<td>ok</td>",
        "2015-02-02 20:02:02Z",
    ] {
        assert!(landing.contains(needle), "{needle} not on:\n{landing}");
    }

    // The regression: alice's MFA device is deactivated. moto's GeneratedTime does not move,
    // so only the content hash tells the exporter that the report changed.
    let serial = moto.iam(&["deactivate-mfa", "alice"]);
    assert!(serial.contains("alice-mfa"), "{serial}");
    let m = exporter.wait_for_sample(&check("console_user_without_mfa"), 2.0);
    expect(&m, &check("user_without_mfa"), 3.0);
    expect(&m, &user("aws_iam_user_mfa_active", "alice"), 0.0);
    expect(
        &m,
        &series(
            "aws_iam_user_check_failed",
            ",check=\"console_user_without_mfa\",user=\"alice\"",
        ),
        1.0,
    );
    expect(&m, &series("aws_iam_mfa_devices_in_use", ""), 1.0);
    expect(
        &m,
        &series("aws_iam_credential_report_generated_timestamp_seconds", ""),
        1_422_907_322.0,
    );
    assert!(
        exporter
            .logs()
            .matches("Judged a new credential report")
            .count()
            >= 2,
        "{}",
        exporter.logs()
    );
}

#[test]
fn without_credentials_a_round_fails_as_credentials() {
    // Nothing listens there (the address is this test's alone); the call must not get that
    // far anyway.
    let nowhere = Loopback::claim();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let missing = missing.to_str().unwrap();
    let endpoint = format!("http://{}", nowhere.free_addr());
    let exporter = Exporter::start_with_env(
        &["--refresh.interval=1s"],
        &[
            ("AWS_ENDPOINT_URL", &endpoint),
            ("AWS_REGION", "us-east-1"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("AWS_ACCESS_KEY_ID", ""),
            ("AWS_SECRET_ACCESS_KEY", ""),
            ("AWS_CONFIG_FILE", missing),
            ("AWS_SHARED_CREDENTIALS_FILE", missing),
        ],
    );
    let failures = "iam_credentials_exporter_refresh_failures_total{account_id=\"unknown\",reason=\"credentials\"}";
    let m = wait_for(
        "a round to fail for want of credentials",
        Duration::from_secs(20),
        || {
            let m = exporter.metrics();
            sample(&m, failures).is_some_and(|n| n >= 1.0).then_some(m)
        },
    );
    assert_eq!(
        sample(
            &m,
            "iam_credentials_exporter_refresh_success{account_id=\"unknown\"}"
        ),
        Some(0.0)
    );
    assert!(!m.contains("aws_iam_users"), "{m}");
    assert_eq!(get(&exporter.url("/-/ready")).status, 503);
    assert!(get(&exporter.url("/"))
        .text()
        .contains("failed: credentials"));
    assert!(
        exporter.logs().contains("no usable AWS credentials"),
        "{}",
        exporter.logs()
    );
}
