//! The real exporter binary against moto's IAM over real HTTP, through the same code path as
//! AWS (`AWS_ENDPOINT_URL`, the default credential chain): users seeded with boto3, /metrics
//! scraped, values asserted; then an MFA device is deactivated in moto and the next refresh
//! must show the regression, in the report series and in the live summary.
//!
//! moto's quirks, checked against moto 5 before asserting: its report's GeneratedTime is
//! fixed in 2015 (so only the content hash tells a new report from the last one), it writes
//! no `<root_account>` row, `password_last_used` reads `no_information`, never-used keys read
//! `N/A`, and GenerateCredentialReport answers STARTED once, then COMPLETE; every
//! GetCredentialReport is built anew from moto's current users (AWS keeps a report up to 4
//! hours), so changes made in several calls go through a closed
//! [`MotoGate`](crate::support::moto::MotoGate) to reach the
//! exporter's next report all at once (the change events test). It has no root
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
        // moto's fixed GeneratedTime, date and time stacked in the cell.
        "2015-02-02<br>20:02:02Z",
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

/// A time as moto's answers give it, as the change events write it (RFC 3339, seconds, `Z`):
/// moto writes the report's times to the second.
fn event_time(t: &aws_sdk_iam::primitives::DateTime) -> String {
    chrono::DateTime::from_timestamp(t.secs(), 0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Deletes `user` the way IAM requires: first its login profile, access keys, MFA devices
/// (deactivated, and virtual ones deleted), signing certificates, SSH keys, groups and
/// policies, then the user.
async fn delete_user_as_iam_requires(
    iam: &aws_sdk_iam::Client,
    user: &str,
) -> Result<(), aws_sdk_iam::Error> {
    match iam.delete_login_profile().user_name(user).send().await {
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_no_such_entity_exception()) => {}
        other => {
            other?;
        }
    }
    for key in iam
        .list_access_keys()
        .user_name(user)
        .send()
        .await?
        .access_key_metadata()
    {
        iam.delete_access_key()
            .user_name(user)
            .access_key_id(key.access_key_id().unwrap())
            .send()
            .await?;
    }
    for device in iam
        .list_mfa_devices()
        .user_name(user)
        .send()
        .await?
        .mfa_devices()
    {
        iam.deactivate_mfa_device()
            .user_name(user)
            .serial_number(device.serial_number())
            .send()
            .await?;
        if device.serial_number().starts_with("arn:") {
            iam.delete_virtual_mfa_device()
                .serial_number(device.serial_number())
                .send()
                .await?;
        }
    }
    for cert in iam
        .list_signing_certificates()
        .user_name(user)
        .send()
        .await?
        .certificates()
    {
        iam.delete_signing_certificate()
            .user_name(user)
            .certificate_id(cert.certificate_id())
            .send()
            .await?;
    }
    for key in iam
        .list_ssh_public_keys()
        .user_name(user)
        .send()
        .await?
        .ssh_public_keys()
    {
        iam.delete_ssh_public_key()
            .user_name(user)
            .ssh_public_key_id(key.ssh_public_key_id())
            .send()
            .await?;
    }
    for group in iam
        .list_groups_for_user()
        .user_name(user)
        .send()
        .await?
        .groups()
    {
        iam.remove_user_from_group()
            .user_name(user)
            .group_name(group.group_name())
            .send()
            .await?;
    }
    for policy in iam
        .list_attached_user_policies()
        .user_name(user)
        .send()
        .await?
        .attached_policies()
    {
        iam.detach_user_policy()
            .user_name(user)
            .policy_arn(policy.policy_arn().unwrap())
            .send()
            .await?;
    }
    for name in iam
        .list_user_policies()
        .user_name(user)
        .send()
        .await?
        .policy_names()
    {
        iam.delete_user_policy()
            .user_name(user)
            .policy_name(name)
            .send()
            .await?;
    }
    iam.delete_user().user_name(user).send().await?;
    Ok(())
}

/// What the changes in moto were, for the expected events.
struct Made {
    /// dave's creation time: the `user_deleted` event's `before`.
    dave_created: String,
    /// bob's new key's creation time: the `access_key_created` event's `after`.
    bob_key: String,
}

/// Change events against moto: after the baseline, alice's MFA device is deactivated, dave
/// (console password, MFA device, an inactive key) is deleted as IAM requires, and bob (no
/// key) gets one. moto builds each GetCredentialReport from its current state (checked below),
/// so the changes are made behind a closed [`MotoGate`]: the exporter's next report holds all
/// three or none, never a half-deleted dave (which would add `password_disabled` and
/// `access_key_deleted`).
#[test]
fn change_events_from_moto_after_the_baseline() {
    use crate::exporter::{
        assert_change_lines, change_counters, count_messages, expected_counters, recent_changes,
        BASELINE_MSG, CHANGE_MSG, JUDGED_MSG,
    };
    let moto = Moto::start();
    moto.iam(&["seed"]);
    let gate = moto.gate();
    let sdk = moto.sdk();
    let env = gate.env();
    let exporter = Exporter::start_with_env(&["--refresh.interval=1s"], &env_refs(&env));
    let m = exporter.wait_for_sample(&series("iam_credentials_exporter_refresh_success", ""), 1.0);
    assert_eq!(
        change_counters(&m, ACCOUNT),
        expected_counters(&[]),
        "every change at 0 from the baseline\n{m}"
    );
    let logs = wait_for("the baseline in the log", Duration::from_secs(20), || {
        let logs = exporter.logs();
        (count_messages(&logs, JUDGED_MSG) >= 1).then_some(logs)
    });
    assert_eq!(count_messages(&logs, BASELINE_MSG), 1, "{logs}");
    assert_eq!(count_messages(&logs, CHANGE_MSG), 0, "{logs}");
    assert!(
        gate.forwarded() > 0,
        "the exporter calls moto through the gate"
    );

    let made = gate.closed(|| {
        let forwarded = gate.forwarded();
        let made = sdk
            .run(async |iam| {
                for device in iam
                    .list_mfa_devices()
                    .user_name("alice")
                    .send()
                    .await?
                    .mfa_devices()
                {
                    iam.deactivate_mfa_device()
                        .user_name("alice")
                        .serial_number(device.serial_number())
                        .send()
                        .await?;
                }
                let dave = iam.get_user().user_name("dave").send().await?;
                let dave_created = event_time(dave.user().unwrap().create_date());
                delete_user_as_iam_requires(iam, "dave").await?;
                let key = iam.create_access_key().user_name("bob").send().await?;
                let bob_key = event_time(key.access_key().unwrap().create_date().unwrap());

                // moto's report already holds the changes: no new GenerateCredentialReport is
                // needed (its answer is COMPLETE at once), unlike AWS's 4-hour-old report.
                let generated = iam.generate_credential_report().send().await?;
                assert_eq!(
                    generated.state().map(|s| s.as_str()),
                    Some("COMPLETE"),
                    "{generated:?}"
                );
                let report = iam.get_credential_report().send().await?;
                let csv = String::from_utf8(report.content().unwrap().as_ref().to_vec()).unwrap();
                assert!(!csv.contains("user/dave,"), "{csv}");
                let bob = csv.lines().find(|l| l.starts_with("bob,")).unwrap();
                assert!(bob.contains(",true,"), "bob's new key is active: {bob}");
                Ok::<_, aws_sdk_iam::Error>(Made {
                    dave_created,
                    bob_key,
                })
            })
            .expect("the changes in moto");
        // The exporter's next call waits at the gate, unanswered, until the changes are all
        // made.
        wait_for(
            "the exporter's next call held at the gate",
            Duration::from_secs(20),
            || (gate.waiting() > 0).then_some(()),
        );
        assert_eq!(
            gate.forwarded(),
            forwarded,
            "nothing passed the closed gate"
        );
        made
    });

    let m = exporter.wait_for_sample(&series("aws_iam_users", ""), 3.0);
    let expected = expected_counters(&[
        ("mfa_disabled", 1.0),
        ("user_deleted", 1.0),
        ("access_key_created", 1.0),
    ]);
    assert_eq!(change_counters(&m, ACCOUNT), expected, "{m}");
    let logs = wait_for(
        "the changed report in the log",
        Duration::from_secs(20),
        || {
            let logs = exporter.logs();
            (count_messages(&logs, JUDGED_MSG) >= 2).then_some(logs)
        },
    );
    assert_change_lines(
        &logs,
        ACCOUNT,
        &[
            ("alice", "mfa_disabled", None, Some("true"), Some("false")),
            (
                "bob",
                "access_key_created",
                Some("1"),
                None,
                Some(made.bob_key.as_str()),
            ),
            (
                "dave",
                "user_deleted",
                None,
                Some(made.dave_created.as_str()),
                None,
            ),
        ],
    );
    let (_, mut rows) = recent_changes(&get(&exporter.url("/")).text());
    rows.sort();
    assert_eq!(
        rows,
        [
            ("alice".into(), "mfa_disabled".into(), "".into()),
            ("bob".into(), "access_key_created".into(), "1".into()),
            ("dave".into(), "user_deleted".into(), "".into()),
        ]
    );

    // Later refreshes of the same report add nothing.
    let refreshes = series("iam_credentials_exporter_refreshes_total", "");
    let seen = sample(&m, &refreshes).unwrap();
    let m = wait_for("two more refreshes", Duration::from_secs(20), || {
        let m = exporter.metrics();
        (sample(&m, &refreshes).unwrap() >= seen + 2.0).then_some(m)
    });
    assert_eq!(change_counters(&m, ACCOUNT), expected, "{m}");
    assert_eq!(count_messages(&exporter.logs(), CHANGE_MSG), 3);

    eprintln!("--- counters after the changes in moto ---");
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
}
