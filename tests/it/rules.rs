//! The alerting rules in `prometheus/alerts.yml`: `promtool check rules` and `promtool test
//! rules` pass; every alert follows the conventions (name, severity, annotations, a runbook
//! entry) and is unit-tested both firing and quiet; every check is named in the runbook, in
//! the entry of the alert it raises or among the checks without one; every change alert reads
//! a change the exporter counts and points at the log line that names the user; and, loaded
//! into a real Prometheus scraping the exporter on the bundled sample report, the rules
//! evaluate without error and raise exactly the alerts the sample's findings call for, naming
//! the right users, and no change alert (one report is a baseline, every change at 0) and no
//! exception alert (no exceptions configured). Every exception alert reads the exporter-wide
//! exception series, merged over replicas and never for an expired exception, names the
//! exception and its owner, and has a runbook entry that says how to see the exception; and
//! with exceptions in the exporter's config file, a muted finding raises no alert while an
//! exception ending within 14 days does, and one that mutes nothing goes pending.
//!
//! Needs `promtool` and `prometheus` on PATH (`scripts/test` puts them there); a missing tool
//! fails the test.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use iam_credential_report::diff::Change;
use serde_json::Value as Json;
use serde_yaml_ng::Value as Yaml;

use crate::support::prometheus::{Prometheus, Scrape};
use crate::support::tools::run;
use crate::support::{repo, tool, write_fresh_sample_report, Exporter};

/// Where every `runbook_url` points, followed by `#<alert name in lower case>`.
const RUNBOOK_URL: &str =
    "https://github.com/iam-credentials-exporter/iam-credentials-exporter/blob/main/docs/runbook.md";

/// The alerts that page as `critical`; every other alert is `warning` or `info`.
const CRITICAL: [&str; 3] = [
    "IamCredentialsRootMfaDisabled",
    "IamCredentialsRootAccessKeyPresent",
    "IamCredentialsRootUsed",
];

/// The counter of change events between consecutive reports.
const CHANGES_COUNTER: &str = "aws_iam_credential_changes_total";

/// The alerts on change events, and the `change` each one fires on. The counter names no user:
/// each alert's description and runbook entry point at the exporter's log line instead.
const CHANGE_ALERTS: [(&str, &str); 3] = [
    ("IamCredentialsMfaDisabled", "mfa_disabled"),
    ("IamCredentialsRootUsed", "root_used"),
    ("IamCredentialsAccessKeyCreated", "access_key_created"),
];

/// The message of the exporter's log line for each change event.
const CHANGE_LOG_MSG: &str = r#"msg="Credential change""#;

/// The one alert allowed to select the exporter's scrape job.
const JOB_ALERT: &str = "IamCredentialsExporterDown";

/// Alerts on the exporter as a whole, whose series carry no `account_id` (the description
/// names the instance instead).
const EXPORTER_WIDE_ALERTS: [&str; 2] = [JOB_ALERT, "IamCredentialsExporterConfigReloadFailed"];

/// The alerts on the exceptions of the exporter's config file. They read exporter-wide series
/// (no `account_id`): their descriptions name the exception and its owner instead.
const EXCEPTION_ALERTS: [&str; 2] = [
    "IamCredentialsExceptionExpiring",
    "IamCredentialsExceptionStale",
];

/// The prefix of the exporter-wide exception families.
const EXCEPTION_FAMILIES: &str = "aws_iam_exception_";

/// The runbook's section on exceptions in general.
const EXCEPTIONS_HEADING: &str = "Exceptions";

/// Every `check` label value the exporter exports in `aws_iam_check_failures`: the report's
/// checks, then those judged from live AWS only ([`LIVE_CHECKS`]). The runbook names each.
const CHECKS: [&str; 18] = [
    "console_user_without_mfa",
    "user_without_mfa",
    "root_without_mfa",
    "root_access_key",
    "root_used_recently",
    "access_key_not_rotated",
    "unused_access_key",
    "unused_password",
    "two_active_access_keys",
    "access_key_at_setup",
    "password_not_rotated",
    "inactive_user",
    "password_policy_missing",
    "password_policy_weak_length",
    "password_policy_weak_reuse",
    "password_policy_weak_complexity",
    "password_policy_no_expiry",
    "root_virtual_mfa",
];

/// The checks judged from live AWS only (the password policy, ListVirtualMFADevices): a
/// report file cannot make them fail, and file mode exports none of them. Their alerts are
/// unit-tested with promtool only.
const LIVE_CHECKS: [&str; 6] = [
    "password_policy_missing",
    "password_policy_weak_length",
    "password_policy_weak_reuse",
    "password_policy_weak_complexity",
    "password_policy_no_expiry",
    "root_virtual_mfa",
];

/// Where the runbook lists the checks that raise no alert.
const NO_ALERT_HEADING: &str = "Checks without an alert";

/// Which alert each check's failures raise (checks without an alert are left out).
const ALERT_FOR_CHECK: [(&str, &str); 17] = [
    ("root_without_mfa", "IamCredentialsRootMfaDisabled"),
    ("root_access_key", "IamCredentialsRootAccessKeyPresent"),
    ("root_used_recently", "IamCredentialsRootUsedRecently"),
    ("root_virtual_mfa", "IamCredentialsRootVirtualMfa"),
    (
        "console_user_without_mfa",
        "IamCredentialsConsoleUserWithoutMfa",
    ),
    (
        "access_key_not_rotated",
        "IamCredentialsAccessKeyNotRotated",
    ),
    ("unused_access_key", "IamCredentialsUnusedAccessKey"),
    (
        "two_active_access_keys",
        "IamCredentialsTwoActiveAccessKeys",
    ),
    (
        "access_key_at_setup",
        "IamCredentialsAccessKeyCreatedAtSetup",
    ),
    ("unused_password", "IamCredentialsUnusedPassword"),
    ("password_not_rotated", "IamCredentialsPasswordNotRotated"),
    ("inactive_user", "IamCredentialsInactiveUser"),
    (
        "password_policy_missing",
        "IamCredentialsPasswordPolicyNonCompliant",
    ),
    (
        "password_policy_weak_length",
        "IamCredentialsPasswordPolicyNonCompliant",
    ),
    (
        "password_policy_weak_reuse",
        "IamCredentialsPasswordPolicyNonCompliant",
    ),
    (
        "password_policy_weak_complexity",
        "IamCredentialsPasswordPolicyNonCompliant",
    ),
    (
        "password_policy_no_expiry",
        "IamCredentialsPasswordPolicyNonCompliant",
    ),
];

fn rules_file() -> PathBuf {
    repo().join("prometheus/alerts.yml")
}

/// `prometheus/tests/*.test.yml`, sorted.
fn test_files() -> Vec<PathBuf> {
    let dir = repo().join("prometheus/tests");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".test.yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no prometheus/tests/*.test.yml");
    files
}

fn read_yaml(path: &Path) -> Yaml {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn str_of<'a>(v: &'a Yaml, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Yaml::as_str)
}

/// One alerting rule, as written.
struct Alert {
    name: String,
    expr: String,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    has_for: bool,
}

fn string_map(v: Option<&Yaml>) -> BTreeMap<String, String> {
    v.and_then(Yaml::as_mapping)
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    (
                        k.as_str().unwrap().to_owned(),
                        v.as_str()
                            .unwrap_or_else(|| panic!("{k:?}: not a string"))
                            .to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The rule file's group names and alerting rules, in order.
fn parse_rules() -> (Vec<String>, Vec<Alert>) {
    let doc = read_yaml(&rules_file());
    let groups = doc["groups"].as_sequence().expect("groups: a list");
    let mut names = Vec::new();
    let mut alerts = Vec::new();
    for g in groups {
        names.push(str_of(g, "name").expect("a group name").to_owned());
        for r in g["rules"].as_sequence().expect("rules: a list") {
            let Some(name) = str_of(r, "alert") else {
                continue;
            };
            alerts.push(Alert {
                name: name.to_owned(),
                expr: str_of(r, "expr").expect("an expr").to_owned(),
                labels: string_map(r.get("labels")),
                annotations: string_map(r.get("annotations")),
                has_for: r.get("for").is_some(),
            });
        }
    }
    (names, alerts)
}

#[test]
fn promtool_check_rules_passes() {
    let mut cmd = tool("promtool");
    cmd.args(["check", "rules"]).arg(rules_file());
    let out = run(cmd, &repo(), Duration::from_secs(120));
    assert!(
        out.status.success(),
        "promtool check rules failed:\n{}",
        out.both()
    );
    println!("{}", out.stdout);
}

#[test]
fn promtool_unit_tests_pass() {
    let mut cmd = tool("promtool");
    cmd.args(["test", "rules"]).args(test_files());
    let out = run(cmd, &repo(), Duration::from_secs(300));
    assert!(
        out.status.success(),
        "promtool test rules failed:\n{}",
        out.both()
    );
    println!("{}", out.stdout);
}

#[test]
fn every_alert_follows_the_conventions() {
    let (_, alerts) = parse_rules();
    assert!(!alerts.is_empty(), "no alerts in prometheus/alerts.yml");
    let runbook = fs::read_to_string(repo().join("docs/runbook.md")).expect("docs/runbook.md");
    let headings: BTreeSet<&str> = runbook
        .lines()
        .filter_map(|l| l.strip_prefix("## "))
        .map(str::trim)
        .collect();

    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for a in &alerts {
        let n = &a.name;
        let mut bad = |what: String| problems.push(format!("{n}: {what}"));
        if !seen.insert(n.clone()) {
            bad("defined twice".into());
        }
        if !n.starts_with("IamCredentials") || !n.chars().all(|c| c.is_ascii_alphanumeric()) {
            bad("not CamelCase with the IamCredentials prefix".into());
        }
        match a.labels.get("severity").map(String::as_str) {
            Some("critical") if !CRITICAL.contains(&n.as_str()) => bad(format!(
                "critical, but only {CRITICAL:?} are (root MFA, root access keys, root used)"
            )),
            Some("warning" | "info") if CRITICAL.contains(&n.as_str()) => {
                bad("must be critical".into())
            }
            Some("critical" | "warning" | "info") => {}
            other => bad(format!("severity {other:?}")),
        }
        if let Some(page) = a.labels.get("page") {
            if page != "true" {
                bad(format!("page={page:?}, only \"true\" is used"));
            }
        }
        if !a.has_for {
            bad("no `for:` (write `for: 0m` to fire at once)".into());
        }
        let keys: BTreeSet<&str> = a.annotations.keys().map(String::as_str).collect();
        if keys != BTreeSet::from(["description", "runbook_url", "summary"]) {
            bad(format!(
                "annotations {keys:?}, want description, runbook_url, summary"
            ));
        }
        let summary = a.annotations.get("summary").cloned().unwrap_or_default();
        if summary.contains("{{") || summary.is_empty() {
            bad(format!("summary must be static text: {summary:?}"));
        }
        let description = a
            .annotations
            .get("description")
            .cloned()
            .unwrap_or_default();
        if EXCEPTION_ALERTS.contains(&n.as_str()) {
            for label in ["exception", "owner"] {
                if !description.contains(&format!("{{{{ $labels.{label} }}}}")) {
                    bad(format!(
                        "description does not name {{{{ $labels.{label} }}}}"
                    ));
                }
            }
        } else if !EXPORTER_WIDE_ALERTS.contains(&n.as_str())
            && !description.contains("{{ $labels.account_id }}")
        {
            bad("description does not name {{ $labels.account_id }}".into());
        }
        let per_user =
            a.expr.contains("iam_credentials:finding") || a.expr.contains("aws_iam_user_");
        if per_user && !description.contains("{{ $labels.user }}") {
            bad("description does not name {{ $labels.user }}".into());
        }
        let want = format!("{RUNBOOK_URL}#{}", n.to_lowercase());
        if a.annotations.get("runbook_url") != Some(&want) {
            bad(format!("runbook_url is not {want}"));
        }
        if !headings.contains(n.as_str()) {
            bad("no `## {name}` entry in docs/runbook.md".into());
        }
        if n != JOB_ALERT && a.expr.contains("job") {
            bad(format!(
                "selects a job; only {JOB_ALERT} may (the one place to change it)"
            ));
        }
    }
    for h in headings.iter().filter(|h| h.starts_with("IamCredentials")) {
        if !seen.contains(*h) {
            problems.push(format!(
                "docs/runbook.md: entry `{h}` for an alert that does not exist"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The runbook's `## ` sections: heading, then the text up to the next heading.
fn runbook_sections() -> BTreeMap<String, String> {
    let runbook = fs::read_to_string(repo().join("docs/runbook.md")).expect("docs/runbook.md");
    let mut sections = BTreeMap::new();
    let mut current: Option<(String, String)> = None;
    for line in runbook.lines() {
        if let Some(h) = line.strip_prefix("## ") {
            if let Some((name, text)) = current.take() {
                sections.insert(name, text);
            }
            current = Some((h.trim().to_owned(), String::new()));
        } else if let Some((_, text)) = current.as_mut() {
            text.push_str(line);
            text.push('\n');
        }
    }
    if let Some((name, text)) = current {
        sections.insert(name, text);
    }
    sections
}

#[test]
fn every_check_is_in_the_runbook() {
    let (_, alerts) = parse_rules();
    let names: BTreeSet<&str> = alerts.iter().map(|a| a.name.as_str()).collect();
    let sections = runbook_sections();
    let mut problems = Vec::new();

    // The crate's own lists of checks: a check added there must be added here (and so to the
    // runbook) too.
    let crate_checks = iam_credential_report::judge::Check::ALL
        .iter()
        .map(|c| c.name())
        .chain(
            iam_credential_report::judge::AccountCheck::ALL
                .iter()
                .map(|c| c.name()),
        );
    for c in crate_checks {
        if !CHECKS.contains(&c) {
            problems.push(format!("check {c}: missing from CHECKS"));
        }
    }
    for c in LIVE_CHECKS {
        if !CHECKS.contains(&c) {
            problems.push(format!("LIVE_CHECKS names {c}, which is not in CHECKS"));
        }
    }
    for (c, alert) in ALERT_FOR_CHECK {
        if !CHECKS.contains(&c) {
            problems.push(format!("ALERT_FOR_CHECK names {c}, which is not in CHECKS"));
        }
        if !names.contains(alert) {
            problems.push(format!(
                "ALERT_FOR_CHECK: {c} raises {alert}, which does not exist"
            ));
        }
    }

    // Each check in backticks: in the entry of the alert it raises, else among the checks
    // without an alert.
    for c in CHECKS {
        let section = ALERT_FOR_CHECK
            .iter()
            .find(|(check, _)| *check == c)
            .map_or(NO_ALERT_HEADING, |(_, alert)| *alert);
        match sections.get(section) {
            Some(text) if text.contains(&format!("`{c}`")) => {}
            Some(_) => problems.push(format!(
                "docs/runbook.md: `## {section}` does not name `{c}`"
            )),
            None => problems.push(format!(
                "docs/runbook.md: no `## {section}` section (for `{c}`)"
            )),
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_change_alert_fires_on_a_change_the_exporter_counts() {
    let (_, alerts) = parse_rules();
    let sections = runbook_sections();
    let counted: BTreeSet<&str> = iam_credential_report::diff::Change::ALL
        .iter()
        .map(|c| c.name())
        .collect();
    let mut problems = Vec::new();
    for (alert, change) in CHANGE_ALERTS {
        let Some(a) = alerts.iter().find(|a| a.name == alert) else {
            problems.push(format!("CHANGE_ALERTS names {alert}, which does not exist"));
            continue;
        };
        let mut bad = |what: String| problems.push(format!("{alert}: {what}"));
        if !counted.contains(change) {
            bad(format!(
                "fires on change {change:?}, which the exporter does not count ({counted:?})"
            ));
        }
        // increase(), not the counter's value: a restarted exporter starts again at 0, and
        // counts from before the window are not news.
        let selector = format!(r#"increase({CHANGES_COUNTER}{{change="{change}"}}["#);
        if !a.expr.contains(&selector) {
            bad(format!("expr `{}` does not read `{selector}...`", a.expr));
        }
        let description = a
            .annotations
            .get("description")
            .cloned()
            .unwrap_or_default();
        for needle in [CHANGE_LOG_MSG.to_owned(), format!("change={change}")] {
            if !description.contains(&needle) {
                bad(format!(
                    "description does not point at the log line ({needle}) that names the user"
                ));
            }
        }
        match sections.get(alert) {
            Some(text) => {
                for needle in [
                    CHANGE_LOG_MSG.to_owned(),
                    format!("change={change}"),
                    "--storage.path".to_owned(),
                    "iam-credentials-exporter diff".to_owned(),
                    "Recent changes".to_owned(),
                ] {
                    if !text.contains(&needle) {
                        bad(format!("the runbook entry does not mention {needle}"));
                    }
                }
            }
            None => bad("no runbook entry".into()),
        }
    }
    for a in alerts.iter().filter(|a| a.expr.contains(CHANGES_COUNTER)) {
        if !CHANGE_ALERTS.iter().any(|(n, _)| *n == a.name) {
            problems.push(format!(
                "{}: reads {CHANGES_COUNTER} but is not in CHANGE_ALERTS",
                a.name
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_exception_alert_reads_the_exception_series() {
    let (groups, alerts) = parse_rules();
    let sections = runbook_sections();
    let mut problems = Vec::new();
    if !groups.iter().any(|g| g == "iam-credentials-exceptions") {
        problems.push(format!("no group iam-credentials-exceptions in {groups:?}"));
    }
    for alert in EXCEPTION_ALERTS {
        let Some(a) = alerts.iter().find(|a| a.name == alert) else {
            problems.push(format!(
                "EXCEPTION_ALERTS names {alert}, which does not exist"
            ));
            continue;
        };
        let mut bad = |what: String| problems.push(format!("{alert}: {what}"));
        if !a.expr.contains(EXCEPTION_FAMILIES) {
            bad(format!("expr does not read {EXCEPTION_FAMILIES}*"));
        }
        // Every exporter (every shard) of a deployment exports every exception: merged, they
        // raise one alert, and matches in any shard count.
        if a.expr.matches(EXCEPTION_FAMILIES).count()
            != a.expr.matches("max without (instance, pod) (").count()
        {
            bad("reads an exception series not merged `max without (instance, pod)`".into());
        }
        // An expired exception is neither expiring nor stale: it mutes nothing, and the log
        // warns about it.
        if !a
            .expr
            .contains("aws_iam_exception_expiry_timestamp_seconds) > time()")
        {
            bad("does not leave out expired exceptions (expiry > time())".into());
        }
        if a.labels.get("severity").map(String::as_str) != Some("info") {
            bad(format!(
                "severity {:?}: an exception is a review for its owner (info)",
                a.labels.get("severity")
            ));
        }
        match sections.get(alert) {
            Some(text) => {
                for needle in [
                    "--config.check",
                    "check --config.file",
                    "\"Exceptions\"",
                    "aws_iam_exception_matches",
                    "reason",
                    "remove",
                ] {
                    if !text.contains(needle) {
                        bad(format!("the runbook entry does not mention {needle}"));
                    }
                }
            }
            None => bad("no runbook entry".into()),
        }
    }
    for a in alerts
        .iter()
        .filter(|a| a.expr.contains(EXCEPTION_FAMILIES))
    {
        if !EXCEPTION_ALERTS.contains(&a.name.as_str()) {
            problems.push(format!(
                "{}: reads {EXCEPTION_FAMILIES}* but is not in EXCEPTION_ALERTS",
                a.name
            ));
        }
    }
    // How a muted finding shows, in general.
    match sections.get(EXCEPTIONS_HEADING) {
        Some(text) => {
            for needle in [
                "aws_iam_check_muted",
                "aws_iam_user_check_muted",
                "aws_iam_check_failures",
                "aws_iam_exception_info",
                "aws_iam_exception_expiry_timestamp_seconds",
                "--config.check",
                "check --config.file",
                "/-/reload",
            ] {
                if !text.contains(needle) {
                    problems.push(format!(
                        "docs/runbook.md: `## {EXCEPTIONS_HEADING}` does not mention {needle}"
                    ));
                }
            }
        }
        None => problems.push(format!(
            "docs/runbook.md: no `## {EXCEPTIONS_HEADING}` section"
        )),
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_alert_is_tested_firing_and_quiet() {
    let (groups, alerts) = parse_rules();
    let names: BTreeSet<&str> = alerts.iter().map(|a| a.name.as_str()).collect();
    let mut firing = BTreeSet::new();
    let mut quiet = BTreeSet::new();
    let mut problems = Vec::new();
    for file in test_files() {
        let f = file.file_name().unwrap().to_string_lossy().into_owned();
        let doc = read_yaml(&file);
        // promtool evaluates groups in a random order unless told; the recording rule's group
        // must come first, and a group missing from the list could run before it.
        let order: Vec<&str> = doc["group_eval_order"]
            .as_sequence()
            .map(|s| s.iter().filter_map(Yaml::as_str).collect())
            .unwrap_or_default();
        if order != groups.iter().map(String::as_str).collect::<Vec<_>>() {
            problems.push(format!(
                "{f}: group_eval_order {order:?} is not the rule file's groups {groups:?}"
            ));
        }
        for t in doc["tests"].as_sequence().expect("tests: a list") {
            for case in t
                .get("alert_rule_test")
                .and_then(Yaml::as_sequence)
                .into_iter()
                .flatten()
            {
                let name = str_of(case, "alertname").expect("alertname");
                if !names.contains(name) {
                    problems.push(format!("{f}: tests {name}, which does not exist"));
                }
                let exp = case
                    .get("exp_alerts")
                    .and_then(Yaml::as_sequence)
                    .cloned()
                    .unwrap_or_default();
                if exp.is_empty() {
                    quiet.insert(name.to_owned());
                }
                for e in &exp {
                    firing.insert(name.to_owned());
                    let ann = string_map(e.get("exp_annotations"));
                    for key in ["summary", "description", "runbook_url"] {
                        if !ann.contains_key(key) {
                            problems.push(format!(
                                "{f}: a firing {name} does not assert its {key} annotation"
                            ));
                        }
                    }
                }
            }
        }
    }
    for n in &names {
        if !firing.contains(*n) {
            problems.push(format!("{n}: no test case where it fires"));
        }
        if !quiet.contains(*n) {
            problems.push(format!("{n}: no test case where it stays quiet"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// (alert name, user label) of the alerts that are pending or firing.
fn active_alerts(prom: &Prometheus) -> BTreeSet<(String, Option<String>)> {
    let v = prom.api("/api/v1/alerts");
    v["data"]["alerts"]
        .as_array()
        .expect("data.alerts")
        .iter()
        .map(|a| {
            (
                a["labels"]["alertname"].as_str().unwrap().to_owned(),
                a["labels"]["user"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

fn label(series: &Json, name: &str) -> String {
    series["metric"][name]
        .as_str()
        .unwrap_or_else(|| panic!("no {name} label: {series}"))
        .to_owned()
}

#[test]
fn rules_evaluate_against_the_exporter_on_the_sample_report() {
    // A fresh copy of the sample, its dates moved to today: in file mode the report's
    // generated time is the file's modification time, which must not make the report look
    // stale, and the daemon judges at the wall clock.
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("credential-report.csv");
    write_fresh_sample_report(&report);
    let exporter = Exporter::start(&["--report.file", report.to_str().unwrap()]);
    let prom = Prometheus::start(
        &[Scrape {
            job: "iam-credentials-exporter",
            target: exporter.addr,
        }],
        &[rules_file()],
    );
    prom.wait_for_data(
        r#"aws_iam_check_failures{job="iam-credentials-exporter"}"#,
        Duration::from_secs(30),
    );

    // What the sample's findings call for.
    let failing: BTreeSet<String> = prom
        .query("aws_iam_check_failures > 0")
        .unwrap()
        .iter()
        .map(|s| label(s, "check"))
        .collect();
    let exported: BTreeSet<String> = prom
        .query("aws_iam_check_failures")
        .unwrap()
        .iter()
        .map(|s| label(s, "check"))
        .collect();
    let unknown: Vec<&String> = exported
        .iter()
        .filter(|c| !CHECKS.contains(&c.as_str()))
        .collect();
    assert!(
        unknown.is_empty(),
        "the exporter exports checks {unknown:?} that CHECKS (and so the runbook) does not know"
    );
    let mut expected = BTreeSet::new();
    for (check, alert) in ALERT_FOR_CHECK {
        if LIVE_CHECKS.contains(&check) {
            assert!(
                !exported.contains(check),
                "{check} is judged from live AWS only, yet a report file exports it"
            );
            continue;
        }
        assert!(
            failing.contains(check),
            "the sample report has no failure for {check}, so {alert} goes untested here"
        );
        if check.starts_with("root_") {
            expected.insert((alert.to_owned(), None));
            continue;
        }
        for s in prom
            .query(&format!(
                r#"aws_iam_user_check_failed{{check="{check}"}} == 1"#
            ))
            .unwrap()
        {
            expected.insert((alert.to_owned(), Some(label(&s, "user"))));
        }
    }

    // One report: a baseline, no change events. Every change's counter is there at 0, and
    // once increase() has two samples of each, no change alert's expression returns anything
    // (checked on the expressions themselves, not only on the alerts, so that it does not
    // depend on when the rules last ran).
    let changes = Change::ALL.len();
    prom.wait_for_data(
        &format!(
            r#"count(increase({CHANGES_COUNTER}{{job="iam-credentials-exporter"}}[1h]) == 0) == {changes}"#
        ),
        Duration::from_secs(30),
    );
    let counters: BTreeMap<String, String> = prom
        .query(CHANGES_COUNTER)
        .unwrap()
        .iter()
        .map(|s| {
            (
                label(s, "change"),
                s["value"][1].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let want: BTreeMap<String, String> = Change::ALL
        .iter()
        .map(|c| (c.name().to_owned(), "0".to_owned()))
        .collect();
    assert_eq!(
        counters, want,
        "the first report is a baseline: every change counted at 0"
    );
    let (_, alerts) = parse_rules();
    for (name, _) in CHANGE_ALERTS {
        let a = alerts.iter().find(|a| a.name == name).expect(name);
        let r = prom.query(&a.expr).unwrap();
        assert!(
            r.is_empty(),
            "{name} would fire on a single report without changes: `{}` gives {r:?}",
            a.expr
        );
    }

    // No exceptions configured: no exception series, nothing muted, no exception alert (checked
    // on the expressions too).
    let exception_series = prom
        .query(&format!(r#"{{__name__=~"{EXCEPTION_FAMILIES}.*"}}"#))
        .unwrap();
    assert!(
        exception_series.is_empty(),
        "exception series without exceptions: {exception_series:?}"
    );
    let muted = prom.query("aws_iam_check_muted").unwrap();
    assert_eq!(
        muted.len(),
        exported.len(),
        "aws_iam_check_muted is present for every judged check: {muted:?}"
    );
    assert!(
        muted.iter().all(|s| s["value"][1] == "0"),
        "nothing is muted without exceptions: {muted:?}"
    );
    for name in EXCEPTION_ALERTS {
        let a = alerts.iter().find(|a| a.name == name).expect(name);
        let r = prom.query(&a.expr).unwrap();
        assert!(
            r.is_empty(),
            "{name} would fire without exceptions: `{}` gives {r:?}",
            a.expr
        );
    }

    // Rules run every second; give a slow machine a minute before showing the difference.
    let deadline = Instant::now() + Duration::from_secs(60);
    let got = loop {
        let got = active_alerts(&prom);
        if got == expected || Instant::now() > deadline {
            break got;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let changed: Vec<&(String, Option<String>)> = got
        .iter()
        .filter(|(a, _)| CHANGE_ALERTS.iter().any(|(n, _)| n == a))
        .collect();
    assert!(
        changed.is_empty(),
        "change alerts are active on a single report, which has no changes: {changed:?}"
    );
    assert!(
        got == expected,
        "active alerts differ from the sample's findings\nmissing: {:?}\nunexpected: {:?}\n--- rules ---\n{}",
        expected.difference(&got).collect::<Vec<_>>(),
        got.difference(&expected).collect::<Vec<_>>(),
        prom.api("/api/v1/rules")
    );

    // No rule fails to evaluate, and the alerts that fire at once render their annotations.
    let rules = prom.api("/api/v1/rules");
    let mut problems = Vec::new();
    for g in rules["data"]["groups"].as_array().expect("data.groups") {
        for r in g["rules"].as_array().expect("rules") {
            if r["health"] != "ok" {
                problems.push(format!(
                    "{}: health {} ({})",
                    r["name"], r["health"], r["lastError"]
                ));
            }
            for a in r["alerts"].as_array().into_iter().flatten() {
                let d = a["annotations"]["description"].as_str().unwrap_or_default();
                if d.is_empty() || d.contains("<no value>") || d.contains("error") {
                    problems.push(format!("{}: description {d:?}", r["name"]));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{}\n--- prometheus log ---\n{}",
        problems.join("\n"),
        prom.logs()
    );
}

/// (alert name, `exception` label, state) of the exception alerts that are pending or firing,
/// with each one's description.
fn exception_alerts(prom: &Prometheus) -> BTreeMap<(String, String, String), String> {
    let v = prom.api("/api/v1/alerts");
    v["data"]["alerts"]
        .as_array()
        .expect("data.alerts")
        .iter()
        .filter(|a| {
            EXCEPTION_ALERTS.contains(&a["labels"]["alertname"].as_str().unwrap_or_default())
        })
        .map(|a| {
            (
                (
                    a["labels"]["alertname"].as_str().unwrap().to_owned(),
                    a["labels"]["exception"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    a["state"].as_str().unwrap_or_default().to_owned(),
                ),
                a["annotations"]["description"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect()
}

#[test]
fn a_muted_finding_raises_no_alert_and_exceptions_raise_their_own() {
    // The exporter on the fresh sample with three exceptions, dated from today: bob-mfa mutes
    // bob's two MFA findings and ends in 5 days; nobody names a user the report does not have
    // and ends in 60 days; carol-password ended yesterday (no error: it mutes nothing, and
    // carol's finding counts again).
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("credential-report.csv");
    write_fresh_sample_report(&report);
    let today = chrono::Utc::now().date_naive();
    let soon = today + chrono::Days::new(5);
    let config = dir.path().join("config.yml");
    fs::write(
        &config,
        format!(
            "exceptions:
  - id: bob-mfa
    checks: [console_user_without_mfa, user_without_mfa]
    users: [bob]
    reason: The token is on order
    owner: security-team
    expires: {soon}
  - id: nobody
    checks: [access_key_not_rotated]
    users: [nobody]
    reason: A typo in the user name
    owner: platform
    expires: {later}
  - id: carol-password
    checks: [unused_password]
    users: [carol]
    reason: Ended yesterday
    owner: payments
    expires: {past}
",
            later = today + chrono::Days::new(60),
            past = today - chrono::Days::new(1),
        ),
    )
    .unwrap();
    let exporter = Exporter::start(&[
        "--report.file",
        report.to_str().unwrap(),
        "--config.file",
        config.to_str().unwrap(),
    ]);
    let prom = Prometheus::start(
        &[Scrape {
            job: "iam-credentials-exporter",
            target: exporter.addr,
        }],
        &[rules_file()],
    );
    prom.wait_for_data(
        r#"aws_iam_exception_matches{job="iam-credentials-exporter",exception="bob-mfa"} == 2"#,
        Duration::from_secs(30),
    );

    // The finding alerts the exporter's series call for: bob's muted findings are not among
    // them, carol's (whose exception ended) is.
    let mut expected = BTreeSet::new();
    for (check, alert) in ALERT_FOR_CHECK {
        if LIVE_CHECKS.contains(&check) {
            continue;
        }
        if check.starts_with("root_") {
            if !prom
                .query(&format!(r#"aws_iam_check_failures{{check="{check}"}} > 0"#))
                .unwrap()
                .is_empty()
            {
                expected.insert((alert.to_owned(), None));
            }
            continue;
        }
        for s in prom
            .query(&format!(
                r#"aws_iam_user_check_failed{{check="{check}"}} == 1"#
            ))
            .unwrap()
        {
            expected.insert((alert.to_owned(), Some(label(&s, "user"))));
        }
    }
    let mfa = (
        "IamCredentialsConsoleUserWithoutMfa".to_owned(),
        Some("bob".to_owned()),
    );
    assert!(
        !expected.contains(&mfa),
        "bob's finding is muted: {expected:?}"
    );
    for want in [
        (
            "IamCredentialsConsoleUserWithoutMfa".to_owned(),
            Some("frank".to_owned()),
        ),
        (
            "IamCredentialsUnusedPassword".to_owned(),
            Some("carol".to_owned()),
        ),
    ] {
        assert!(expected.contains(&want), "{want:?} not in {expected:?}");
    }

    // bob-mfa fires at once (for: 0m); nobody is pending (stale, for: 1h); carol-password,
    // expired, is neither.
    let want_exceptions: BTreeSet<(String, String, String)> = [
        ("IamCredentialsExceptionExpiring", "bob-mfa", "firing"),
        ("IamCredentialsExceptionStale", "nobody", "pending"),
    ]
    .iter()
    .map(|(a, e, s)| ((*a).to_owned(), (*e).to_owned(), (*s).to_owned()))
    .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    let (got, got_exceptions) = loop {
        let got: BTreeSet<(String, Option<String>)> = active_alerts(&prom)
            .into_iter()
            .filter(|(a, _)| !EXCEPTION_ALERTS.contains(&a.as_str()))
            .collect();
        let ex = exception_alerts(&prom);
        let keys: BTreeSet<(String, String, String)> = ex.keys().cloned().collect();
        if (got == expected && keys == want_exceptions) || Instant::now() > deadline {
            break (got, ex);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        got == expected,
        "finding alerts differ from the unmuted findings\nmissing: {:?}\nunexpected: {:?}",
        expected.difference(&got).collect::<Vec<_>>(),
        got.difference(&expected).collect::<Vec<_>>(),
    );
    let keys: BTreeSet<(String, String, String)> = got_exceptions.keys().cloned().collect();
    assert_eq!(keys, want_exceptions, "{got_exceptions:?}");
    // The description names the exception, its owner and when it stops muting: the midnight
    // UTC after its expires day.
    let description = &got_exceptions[&(
        "IamCredentialsExceptionExpiring".to_owned(),
        "bob-mfa".to_owned(),
        "firing".to_owned(),
    )];
    let end = format!("{} 00:00:00 +0000 UTC", soon + chrono::Days::new(1));
    for needle in ["bob-mfa", "security-team", end.as_str()] {
        assert!(
            description.contains(needle),
            "{needle:?} not in {description:?}"
        );
    }
}
