//! The real exporter binary against moto's IAM over real HTTP, through the same code path as
//! AWS (`AWS_ENDPOINT_URL`, the default credential chain): users seeded with boto3, /metrics
//! scraped, values asserted; then an MFA device is deactivated in moto and the next refresh
//! must show the regression, in the report series and in the live summary.
//!
//! moto's quirks, checked against moto 5 before asserting: its report's GeneratedTime is
//! fixed in 2015 (so only the content hash tells a new report from the last one), it writes
//! no `<root_account>` row, `password_last_used` reads `no_information`, never-used keys read
//! `N/A`, and GenerateCredentialReport answers STARTED once, then COMPLETE. It has no root
//! user to give an MFA device or keys to (AccountMFAEnabled and AccountAccessKeysPresent are
//! always 0); it does accept an IAM user named `<root_account>`, which AWS would refuse, and
//! writes that user's row as the report's root row. What moto cannot produce (a device
//! assigned to root itself, centralized root access) is tested against the fake endpoint in
//! `aws_faults`.
use crate::support::loopback::Loopback;
use crate::support::moto::{Moto, MotoSdk, ROOT_ROW};
use crate::support::{get, lines_with, sample, wait_for, Exporter};
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

fn absent(m: &str, series: &str) {
    assert_eq!(
        sample(m, series),
        None,
        "{series} should have no sample\n--- exposition ---\n{m}"
    );
}

/// The checks of the root user: without a root row in the report they have no sample.
const ROOT_CHECKS: [&str; 4] = [
    "root_without_mfa",
    "root_access_key",
    "root_used_recently",
    "root_virtual_mfa",
];

/// The live calls that failed for the account (`api reason count` lines with a count above
/// 0), to assert that there are none.
fn live_call_failures(m: &str) -> Vec<&str> {
    lines_with(
        m,
        &format!("iam_credentials_exporter_live_call_failures_total{{account_id=\"{ACCOUNT}\""),
    )
    .into_iter()
    .filter(|l| !l.ends_with(" 0"))
    .collect()
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
    // moto writes no root row: nothing vouches for root, so the root checks have no sample
    // (unknown, not passing) and whether root has credentials is not told...
    expect(
        &m,
        &series("aws_iam_credential_report_root_present", ""),
        0.0,
    );
    for c in ROOT_CHECKS {
        absent(&m, &check(c));
    }
    absent(&m, &series("aws_iam_root_credentials_present", ""));
    // ...while the live summary says root has no MFA: alerts combine the two, and page only
    // where root has credentials.
    expect(&m, &series("aws_iam_root_mfa_enabled", ""), 0.0);
    expect(&m, &series("aws_iam_root_access_keys_present", ""), 0.0);
    expect(&m, &series("aws_iam_mfa_devices_in_use", ""), 2.0);
    // Every live call answered, ListVirtualMFADevices (alice's and dave's devices) among them.
    assert_eq!(live_call_failures(&m), Vec::<&str>::new(), "{m}");

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
    // All four character classes and a 90-day expiry, as seeded.
    expect(&m, &check("password_policy_weak_complexity"), 0.0);
    expect(&m, &check("password_policy_no_expiry"), 0.0);

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

/// The exporter against seeded moto, refreshing every second, after its first good round.
fn exporter_on(moto: &Moto) -> (Exporter, String) {
    let env = moto.env();
    let exporter = Exporter::start_with_env(&["--refresh.interval=1s"], &env_refs(&env));
    let m = exporter.wait_for_sample(&series("iam_credentials_exporter_refresh_success", ""), 1.0);
    (exporter, m)
}

/// UpdateAccountPasswordPolicy in moto: length and reuse prevention, whether symbols are
/// required (upper and lower case and numbers always are), and the maximum age if any.
fn set_password_policy(
    sdk: &MotoSdk,
    length: i32,
    reuse: Option<i32>,
    symbols: bool,
    max_age: Option<i32>,
) {
    sdk.run(async |iam| {
        iam.update_account_password_policy()
            .minimum_password_length(length)
            .set_password_reuse_prevention(reuse)
            .require_uppercase_characters(true)
            .require_lowercase_characters(true)
            .require_numbers(true)
            .require_symbols(symbols)
            .set_max_password_age(max_age)
            .send()
            .await
    })
    .expect("UpdateAccountPasswordPolicy in moto");
}

/// The password policy checks, as (check, value) where they have a sample.
fn policy_checks(m: &str) -> Vec<(&'static str, Option<f64>)> {
    [
        "password_policy_missing",
        "password_policy_weak_length",
        "password_policy_weak_reuse",
        "password_policy_weak_complexity",
        "password_policy_no_expiry",
    ]
    .into_iter()
    .map(|c| (c, sample(m, &check(c))))
    .collect()
}

#[test]
fn password_policy_changes_in_moto_show_at_the_next_refresh() {
    let moto = Moto::start();
    moto.iam(&["seed"]);
    let sdk = moto.sdk();
    let (exporter, m) = exporter_on(&moto);
    expect(&m, &check("password_policy_no_expiry"), 0.0);

    // A weak policy: 8 characters, no symbols, reuse allowed, passwords that never expire.
    set_password_policy(&sdk, 8, None, false, None);
    let m = exporter.wait_for_sample(&check("password_policy_no_expiry"), 1.0);
    assert_eq!(
        policy_checks(&m),
        [
            ("password_policy_missing", Some(0.0)),
            ("password_policy_weak_length", Some(1.0)),
            ("password_policy_weak_reuse", Some(1.0)),
            ("password_policy_weak_complexity", Some(1.0)),
            ("password_policy_no_expiry", Some(1.0)),
        ],
        "{m}"
    );
    expect(
        &m,
        &series("aws_iam_password_policy_minimum_length", ""),
        8.0,
    );

    // The policy CIS and Security Hub ask for: 14 characters, 24 remembered, all four
    // classes, 90 days.
    set_password_policy(&sdk, 14, Some(24), true, Some(90));
    let m = exporter.wait_for_sample(&check("password_policy_no_expiry"), 0.0);
    assert_eq!(
        policy_checks(&m),
        [
            ("password_policy_missing", Some(0.0)),
            ("password_policy_weak_length", Some(0.0)),
            ("password_policy_weak_reuse", Some(0.0)),
            ("password_policy_weak_complexity", Some(0.0)),
            ("password_policy_no_expiry", Some(0.0)),
        ],
        "{m}"
    );

    // No policy at all (moto answers NoSuchEntity): AWS's defaults fail every policy check,
    // and the missing policy is a finding, not a failed call.
    sdk.run(async |iam| iam.delete_account_password_policy().send().await)
        .expect("DeleteAccountPasswordPolicy in moto");
    let m = exporter.wait_for_sample(&check("password_policy_missing"), 1.0);
    assert!(
        policy_checks(&m).iter().all(|(_, v)| *v == Some(1.0)),
        "{m}"
    );
    expect(&m, &series("aws_iam_password_policy_present", ""), 0.0);
    assert_eq!(live_call_failures(&m), Vec::<&str>::new(), "{m}");
}

#[test]
fn a_root_row_seeded_into_moto_is_judged_with_moto_s_device_list() {
    let moto = Moto::start();
    moto.iam(&["seed"]);
    // moto's only way to a root row: a user named `<root_account>` with a password (see
    // Moto::add_root_row). Its ARN stays arn:aws:iam::123456789012:user/<root_account>.
    moto.add_root_row();
    let sdk = moto.sdk();
    let (exporter, m) = exporter_on(&moto);

    // Root has a password and no MFA, in the report and in the live summary.
    expect(
        &m,
        &series("aws_iam_credential_report_root_present", ""),
        1.0,
    );
    expect(&m, &series("aws_iam_root_credentials_present", ""), 1.0);
    expect(&m, &check("root_without_mfa"), 1.0);
    expect(&m, &check("root_access_key"), 0.0);
    expect(&m, &series("aws_iam_root_mfa_enabled", ""), 0.0);
    // The virtual devices moto lists are alice's and dave's: judged, and not root's. The
    // sample is there because the call answered and the report has a root row.
    expect(&m, &check("root_virtual_mfa"), 0.0);
    // Still four IAM users: the root row is not one.
    expect(&m, &series("aws_iam_users", ""), 4.0);

    // The `<root_account>` user gets a virtual device in moto: the report's root row now has
    // MFA, and the device moto lists is a user's (by its ARN), so root_virtual_mfa still
    // passes.
    sdk.run(async |iam| {
        let device = iam
            .create_virtual_mfa_device()
            .virtual_mfa_device_name("root-lookalike-mfa")
            .send()
            .await?;
        let serial = device
            .virtual_mfa_device()
            .map(|d| d.serial_number().to_owned())
            .unwrap_or_default();
        iam.enable_mfa_device()
            .user_name(ROOT_ROW)
            .serial_number(serial)
            .authentication_code1("123456")
            .authentication_code2("654321")
            .send()
            .await?;
        Ok::<_, aws_sdk_iam::Error>(())
    })
    .expect("a virtual MFA device for the <root_account> user in moto");
    let m = exporter.wait_for_sample(&check("root_without_mfa"), 0.0);
    expect(&m, &series("aws_iam_mfa_devices_in_use", ""), 3.0);
    expect(&m, &check("root_virtual_mfa"), 0.0);
    assert_eq!(live_call_failures(&m), Vec::<&str>::new(), "{m}");
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
