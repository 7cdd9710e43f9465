//! Golden exposition files: the metrics contract, byte for byte. Run with
//! `UPDATE_GOLDEN=1 cargo test --test it golden` to rewrite them after an intended change (and
//! say so in CHANGELOG.md). Each golden file must pass `promtool check metrics`.
use chrono::{DateTime, Utc};
use iam_credential_report::account::{
    AccountSummary, FailureReason, LiveFacts, PasswordPolicy, UserDirectory, UserInfo,
};
use iam_credential_report::expose::{
    compose, render_build_info, render_live, render_refresh_stats, render_report, RefreshStats,
    RenderOptions,
};
use iam_credential_report::judge::{judge, Thresholds};
use iam_credential_report::report::parse;
use std::path::PathBuf;
use std::time::Duration;

use crate::support::tools::{repo, run_with_input, tool};

const NOW: &str = "2026-11-25T06:00:00Z";

/// How long `promtool check metrics` may take.
const PROMTOOL: Duration = Duration::from_secs(60);

fn now() -> DateTime<Utc> {
    NOW.parse().unwrap()
}

fn golden_path(name: &str) -> PathBuf {
    repo().join("tests/golden").join(name)
}

fn exposition(
    csv: &[u8],
    live: Option<&LiveFacts>,
    stats: Option<&RefreshStats>,
    opts: &RenderOptions,
) -> String {
    let report = parse(csv).unwrap();
    let account = report.account_id.clone().unwrap();
    let assessment = judge(&report, now(), &Thresholds::default());
    let generated: DateTime<Utc> = "2026-11-25T04:12:00Z".parse().unwrap();
    let bodies = render_report(&account, &report, &assessment, Some(generated), now(), opts);
    let live_bodies = render_live(
        &account,
        Some("payments-prod"),
        live,
        assessment.root.as_ref(),
        &[],
    );
    let build = render_build_info("0.0.0-test", "0000000");
    let stats = render_refresh_stats(&account, stats.unwrap_or(&RefreshStats::default()));
    compose([&build, &bodies, &live_bodies, &stats])
}

fn check_golden(name: &str, actual: &str) {
    let path = golden_path(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with UPDATE_GOLDEN=1 to create it)",
            path.display()
        )
    });
    if expected != actual {
        let diff: Vec<String> = expected
            .lines()
            .zip(actual.lines())
            .enumerate()
            .filter(|(_, (e, a))| e != a)
            .take(10)
            .map(|(i, (e, a))| format!("line {}:\n  expected: {e}\n  actual:   {a}", i + 1))
            .collect();
        panic!(
            "{name} differs from the golden file ({} vs {} lines; UPDATE_GOLDEN=1 rewrites it):\n{}",
            expected.lines().count(),
            actual.lines().count(),
            diff.join("\n")
        );
    }
    promtool_check_metrics(name, actual);
}

fn promtool_check_metrics(name: &str, text: &str) {
    let mut promtool = tool("promtool");
    promtool.args(["check", "metrics"]);
    let out = run_with_input(promtool, &repo(), Some(text.as_bytes()), PROMTOOL);
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics on {name}:\n{}{}",
        out.stdout,
        out.stderr
    );
}

fn sample_csv() -> Vec<u8> {
    std::fs::read(repo().join("examples/credential-report.csv")).unwrap()
}

/// Paths and two tag keys (`--aws.user-tags=owner,cost-center`) for some of the sample's users:
/// one lacks a tag, one has a value to escape.
fn user_directory() -> UserDirectory {
    let user = |name: &str, path: &str, tags: [&str; 2]| UserInfo {
        name: name.into(),
        path: path.into(),
        tags: tags.map(String::from).to_vec(),
    };
    UserDirectory {
        tag_keys: vec!["owner".into(), "cost-center".into()],
        users: vec![
            user("alice", "/engineering/", ["alice@example.com", "cc-1001"]),
            user("bob", "/", ["team-payments", ""]),
            user("deploy-bot", "/service/ci/", ["platform \"ci\"", "cc-2002"]),
        ],
    }
}

#[test]
fn sample_report_with_live_facts_and_refresh_stats() {
    let live = LiveFacts {
        summary: Some(AccountSummary {
            root_mfa_enabled: false,
            root_access_keys_present: true,
            mfa_devices_in_use: 4,
        }),
        alias: Some("example-corp".into()),
        password_policy: Some(Some(PasswordPolicy {
            minimum_length: 8,
            reuse_prevention: 0,
            max_age_days: 90,
            require_symbols: true,
            require_numbers: true,
            require_uppercase: false,
            require_lowercase: true,
        })),
        root_virtual_mfa: Some(true),
        users: Some(std::sync::Arc::new(user_directory())),
        failures: vec![],
    };
    let mut stats = RefreshStats {
        last_ok: Some(true),
        last_success: Some(now()),
        last_duration: Some(1.25),
        refreshes: 7,
        ..RefreshStats::default()
    };
    stats.failures[FailureReason::Throttled as usize] = 2;
    stats
        .live_failures
        .push((("GetAccountPasswordPolicy", FailureReason::AccessDenied), 1));
    stats
        .retries
        .push((("GenerateCredentialReport", "report_not_ready"), 1));
    stats
        .retries
        .push((("GetCredentialReport", "throttled"), 4));
    let text = exposition(
        &sample_csv(),
        Some(&live),
        Some(&stats),
        &RenderOptions::all_users(),
    );
    check_golden("sample.prom", &text);
}

#[test]
fn sample_report_without_per_user_series() {
    let text = exposition(&sample_csv(), None, None, &RenderOptions::default());
    assert!(!text.contains("user=\""));
    check_golden("sample-aggregate-only.prom", &text);
}

/// A report without the root row (moto's, a filtered export): root is unknown, so the root
/// checks and `aws_iam_root_credentials_present` have no sample, even with live facts.
#[test]
fn sample_report_without_the_root_row() {
    let csv: String = String::from_utf8(sample_csv())
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("<root_account>,"))
        .map(|l| format!("{l}\n"))
        .collect();
    let live = LiveFacts {
        summary: Some(AccountSummary {
            root_mfa_enabled: false,
            root_access_keys_present: true,
            mfa_devices_in_use: 4,
        }),
        root_virtual_mfa: Some(true),
        ..LiveFacts::default()
    };
    let text = exposition(csv.as_bytes(), Some(&live), None, &RenderOptions::default());
    assert!(
        text.contains("aws_iam_credential_report_root_present{account_id=\"123456789012\"} 0\n")
    );
    for absent in [
        "aws_iam_root_credentials_present{",
        "root_without_mfa",
        "root_access_key\"",
        "root_used_recently",
        "root_virtual_mfa",
    ] {
        assert!(!text.contains(absent), "{absent}");
    }
    check_golden("sample-without-root.prom", &text);
}

#[test]
fn real_reports() {
    for (fixture, golden) in [
        (
            "cloud-custodian__cloud-custodian__account-credential-report.csv",
            "c7n-account.prom",
        ),
        (
            "cloud-custodian__cloud-custodian__unused-keys-root-keys-certs.csv",
            "c7n-root-keys.prom",
        ),
        (
            "awsdocs__powershell-example__legacy-16col-REPAIRED.csv",
            "legacy-16col.prom",
        ),
    ] {
        let csv = std::fs::read(repo().join("tests/fixtures/third-party").join(fixture)).unwrap();
        let text = exposition(&csv, None, None, &RenderOptions::all_users());
        check_golden(golden, &text);
    }
}

#[test]
fn promtool_rejects_a_broken_exposition() {
    // The lint above can fail: a duplicated family header is an error.
    let mut promtool = tool("promtool");
    promtool.args(["check", "metrics"]);
    let broken = b"# TYPE a gauge\na 1\n# TYPE a gauge\na 2\n";
    let out = run_with_input(promtool, &repo(), Some(broken), PROMTOOL);
    assert!(!out.status.success());
}
