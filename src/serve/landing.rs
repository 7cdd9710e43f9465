//! The landing page at `/` (under the route prefix): what this is, links, and for each account
//! its state (ok, failed, pending, coloured), the last error's text, the last success, the next
//! refresh, where its reports come from (a file, the exporter's own credentials, a role's ARN)
//! and the report's age; then the thresholds and exceptions in effect and the recent changes.
//!
//! **Error text.** The page shows each failed account's error message, not only its reason
//! (`read_error`, `credentials`): an operator looking at a failed account needs to see the
//! misspelt path or the role that was refused, without going to the log. Messages can carry
//! file paths, role ARNs and account ids, never a credential (the sources word them; AWS error
//! messages name no secret). That is acceptable here because this page is for operators: it
//! shows nothing an operator who can read `/metrics` (account ids, user names) or the log
//! could not already see, and the web configuration's basic authentication
//! (`--web.config.file`, `basic_auth_users`) guards it like `/metrics`; only the health
//! endpoints are left open. Every text is HTML-escaped, so a message cannot inject markup.
//!
//! **Links** are relative to the page (`./metrics`, `./-/healthy`), so they resolve behind a
//! reverse proxy that serves the exporter under a path (`--web.route-prefix`,
//! `--web.external-url`). The page is served at the prefix followed by `/`.

use crate::state::{AccountState, JudgeSettings};
use chrono::{DateTime, Utc};
use std::fmt::Write;

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A duration for people: to the second under an hour, to the minute beyond.
fn human(secs: u64) -> String {
    let rounded = if secs > 3600 { secs / 60 * 60 } else { secs };
    humantime::format_duration(std::time::Duration::from_secs(rounded)).to_string()
}

fn ago(t: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    match t {
        None => "never".to_owned(),
        Some(t) => {
            let secs = now.signed_duration_since(t).num_seconds().max(0) as u64;
            format!("{} ({} ago)", t.format("%Y-%m-%d %H:%M:%SZ"), human(secs))
        }
    }
}

/// When the next refresh is due: a time ahead, or now (running, or waiting for a slot).
fn due(t: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    match t {
        None => "not scheduled".to_owned(),
        Some(t) if t <= now => "now (running or waiting for a refresh slot)".to_owned(),
        Some(t) => {
            let secs = t.signed_duration_since(now).num_seconds().max(0) as u64;
            format!("{} (in {})", t.format("%Y-%m-%d %H:%M:%SZ"), human(secs))
        }
    }
}

/// An account's state: the CSS class and the word shown.
fn state_of(a: &AccountState) -> (&'static str, String) {
    match (&a.stats.last_ok, &a.last_error) {
        (None, _) => ("pending", "pending".to_owned()),
        (Some(true), _) => ("ok", "ok".to_owned()),
        (Some(false), Some(e)) => ("failed", format!("failed: {}", e.reason)),
        (Some(false), None) => ("failed", "failed".to_owned()),
    }
}

/// A path of the server as a link relative to the landing page (which is at the route
/// prefix followed by `/`): `./metrics`. The `./` keeps a `:` in it from reading as a scheme.
fn relative(path: &str) -> String {
    format!("./{}", path.trim_start_matches('/'))
}

/// The columns of the accounts table; a failed account's error spans all but the first.
const COLUMNS: usize = 10;

/// `day time (relative)` as three short lines (day, time, relative), escaped, so that the
/// time columns stay narrow.
fn stacked(text: &str) -> String {
    match text.split_once(" (") {
        Some((time, rest)) => format!(
            "{}<br><small>({}</small>",
            escape(time).replacen(' ', "<br>", 1),
            escape(rest)
        ),
        None => escape(text),
    }
}

fn accounts_table(accounts: &[AccountState], now: DateTime<Utc>) -> String {
    let mut rows = String::new();
    for a in accounts {
        let (class, state) = state_of(a);
        let (generated, users, findings) = match &a.report {
            Some(r) => (
                ago(r.generated_at, now),
                r.users.to_string(),
                r.findings.to_string(),
            ),
            None => ("no report yet".to_owned(), "-".to_owned(), "-".to_owned()),
        };
        let alias = a
            .live
            .as_ref()
            .and_then(|l| l.alias.clone())
            .unwrap_or_default();
        let _ = writeln!(
            rows,
            "<tr class=\"account {class}\" data-account=\"{key}\"><td>{id}</td><td>{name}</td>\
             <td>{state}</td><td class=\"t\">{success}</td><td class=\"t\">{attempt}</td>\
             <td class=\"t\">{next}</td><td class=\"source\">{source}</td>\
             <td class=\"t\">{generated}</td><td>{users}</td>\
             <td>{findings}</td></tr>",
            key = escape(&a.key),
            id = escape(a.label()),
            name = escape(a.name.as_deref().unwrap_or(&alias)),
            state = escape(&state),
            success = stacked(&ago(a.stats.last_success, now)),
            attempt = stacked(&ago(a.last_attempt, now)),
            next = stacked(&due(a.next_refresh, now)),
            source = escape(a.source.as_deref().unwrap_or("-")),
            generated = stacked(&generated),
        );
        if let Some(e) = &a.last_error {
            let _ = writeln!(
                rows,
                "<tr class=\"last-error\"><td></td><td colspan=\"{}\">Last error: \
                 <span class=\"error\">{}</span></td></tr>",
                COLUMNS - 1,
                escape(&e.message)
            );
        }
    }
    let count = |c: &str| accounts.iter().filter(|a| state_of(a).0 == c).count();
    format!(
        "<p>{} accounts: {} ok, {} failed, {} pending (an account is pending until its first refresh ends).</p>\n\
         <table>\n<tr><th>Account</th><th>Name</th><th>State</th><th>Last success</th><th>Last refresh</th><th>Next refresh</th><th>Source</th>\
         <th>Report generated</th><th>Users</th><th>Findings</th></tr>\n{rows}</table>\n",
        accounts.len(),
        count("ok"),
        count("failed"),
        count("pending"),
    )
}

fn settings_section(
    settings: &JudgeSettings,
    accounts: &[AccountState],
    now: DateTime<Utc>,
) -> String {
    let t = &settings.thresholds;
    // As the config file writes them: whole days as `90d`.
    let days = |d: std::time::Duration| match d.as_secs() {
        secs if secs > 0 && secs % 86_400 == 0 => format!("{}d", secs / 86_400),
        secs => humantime::format_duration(std::time::Duration::from_secs(secs)).to_string(),
    };
    let mut out = String::from("<table>\n<tr><th>Setting</th><th>In effect</th></tr>\n");
    for (name, value) in [
        ("access_key_max_age", days(t.access_key_max_age)),
        ("unused_credentials", days(t.unused_credentials)),
        ("password_max_age", days(t.password_max_age)),
        ("inactive_user", days(t.inactive_user)),
        ("root_recent_use", days(t.root_recent_use)),
        (
            "per_user_metrics",
            match (settings.render.per_user, settings.render.only_failing) {
                (false, _) => "off",
                (true, false) => "on",
                (true, true) => "failing users only",
            }
            .to_owned(),
        ),
        (
            "user include",
            settings
                .render
                .user_include
                .as_ref()
                .map_or("-".to_owned(), |r| r.as_str().to_owned()),
        ),
        (
            "user exclude",
            settings
                .render
                .user_exclude
                .as_ref()
                .map_or("-".to_owned(), |r| r.as_str().to_owned()),
        ),
    ] {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td></tr>",
            escape(name),
            escape(&value)
        );
    }
    out.push_str("</table>\n<h3>Exceptions</h3>\n");
    if settings.exceptions.is_empty() {
        out.push_str("<p>None.</p>\n");
        return out;
    }
    out.push_str(
        "<table>\n<tr><th>Exception</th><th>Checks</th><th>Owner</th><th>Expires</th>\
         <th>Findings muted now</th></tr>\n",
    );
    for e in &settings.exceptions {
        let per_account: Vec<(String, u64)> = accounts
            .iter()
            .filter_map(|a| {
                a.exception_matches
                    .iter()
                    .find(|(id, _)| *id == e.id)
                    .map(|(_, n)| (a.label().to_owned(), *n))
            })
            .filter(|(_, n)| *n > 0)
            .collect();
        let total: u64 = per_account.iter().map(|(_, n)| n).sum();
        let matches = if per_account.is_empty() {
            total.to_string()
        } else {
            let each: Vec<String> = per_account
                .iter()
                .map(|(a, n)| format!("{a}: {n}"))
                .collect();
            format!("{total} ({})", each.join(", "))
        };
        let expires = if e.active(now) {
            e.expires.to_string()
        } else {
            format!("{} (expired)", e.expires)
        };
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&e.id),
            escape(&e.checks.join(", ")),
            escape(&e.owner),
            escape(&expires),
            escape(&matches),
        );
    }
    out.push_str("</table>\n");
    out
}

/// Renders the landing page.
pub fn render(
    accounts: &[AccountState],
    settings: &JudgeSettings,
    telemetry_path: &str,
    now: DateTime<Utc>,
) -> String {
    let rows = accounts_table(accounts, now);
    let in_effect = settings_section(settings, accounts, now);
    let mut changes = String::new();
    for a in accounts.iter().filter(|a| !a.recent_changes.is_empty()) {
        let _ = writeln!(
            changes,
            "<h3>{}</h3>\n<table>\n<tr><th>Seen</th><th>User</th><th>Change</th><th>Key</th></tr>",
            escape(a.label())
        );
        for c in a.recent_changes.iter().rev() {
            let _ = writeln!(
                changes,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&ago(Some(c.at), now)),
                escape(&c.user),
                c.change.name(),
                c.slot.map(|s| s.to_string()).unwrap_or_default(),
            );
        }
        changes.push_str("</table>\n");
    }
    if changes.is_empty() {
        changes.push_str(
            "<p>None since start (the first report of each account is the baseline).</p>\n",
        );
    }
    let metrics = escape(&relative(telemetry_path));
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>IAM credentials exporter</title>
<style>body{{font-family:sans-serif;margin:1.5em}}table{{border-collapse:collapse;margin-bottom:1em}}td,th{{border:1px solid #ccc;padding:.3em .45em;text-align:left;vertical-align:top}}
tr.account>td:nth-child(3){{font-weight:bold;white-space:nowrap}}tr.ok>td:nth-child(3){{background:#dafbe1;color:#116329}}tr.failed>td:nth-child(3){{background:#ffebe9;color:#a40e26}}tr.pending>td:nth-child(3){{background:#fff8c5;color:#7d4e00}}
tr.account>td:first-child{{white-space:nowrap}}td.source{{overflow-wrap:anywhere;min-width:10em;max-width:18em}}tr.last-error>td{{border-top:none}}td.t{{white-space:nowrap}}td.t small{{white-space:normal}}
.error{{font-family:monospace;color:#a40e26;overflow-wrap:anywhere}}</style>
</head>
<body>
<h1>IAM credentials exporter</h1>
<p>Exports the AWS IAM credential report as Prometheus metrics: MFA coverage, access key age and use,
password age and root account safety, judged against the CIS AWS Foundations Benchmark and
AWS Security Hub checks. AWS regenerates the report at most every 4 hours, so report data can be
up to 4 hours old. Version {version} ({revision}).</p>
<ul>
<li><a href="{metrics}">Metrics</a></li>
<li><a href="./-/healthy">Health</a></li>
<li><a href="./-/ready">Readiness</a></li>
</ul>
<h2>Accounts</h2>
{rows}<h2>Thresholds and exceptions in effect</h2>
{in_effect}<h2>Recent changes</h2>
<p>The last {recent} changes per account between consecutive credential reports, newest first.</p>
{changes}</body>
</html>
"#,
        recent = crate::state::RECENT_CHANGES,
        version = crate::VERSION,
        revision = escape(crate::REVISION),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped() {
        let a = AccountState::new("k".into(), Some("1".into()), Some("<script>".into()));
        let html = render(&[a], &JudgeSettings::default(), "/metrics", Utc::now());
        assert!(html.contains("&lt;script&gt;"));
        assert!(!html.contains("<script>"));
        assert!(html.contains("pending"));
        assert!(html.contains("None since start"));
    }

    #[test]
    fn states_errors_sources_and_settings_are_shown_escaped_with_relative_links() {
        use iam_credential_report::account::{FailureReason, SourceError};
        let now: DateTime<Utc> = "2026-11-30T12:00:00Z".parse().unwrap();
        let mut failed = AccountState::new("k1".into(), Some("111".into()), None);
        failed.stats.last_ok = Some(false);
        failed.last_error = Some(SourceError::new(
            FailureReason::ReadError,
            "reading /etc/<typo>.csv: No such file",
        ));
        failed.source = Some("file /etc/<typo>.csv".into());
        failed.next_refresh = Some(now + chrono::TimeDelta::minutes(5));
        let mut ok = AccountState::new("k2".into(), Some("222".into()), None);
        ok.stats.last_ok = Some(true);
        ok.stats.last_success = Some(now - chrono::TimeDelta::seconds(30));
        let pending = AccountState::new("k3".into(), Some("333".into()), None);
        let html = render(
            &[failed, ok, pending],
            &JudgeSettings::default(),
            "/probe",
            now,
        );
        assert!(html.contains("<tr class=\"account failed\" data-account=\"k1\">"));
        assert!(html.contains("<td>failed: read_error</td>"), "{html}");
        assert!(html.contains("reading /etc/&lt;typo&gt;.csv: No such file"));
        assert!(html.contains("file /etc/&lt;typo&gt;.csv"));
        assert!(!html.contains("<typo>"));
        assert!(
            html.contains("2026-11-30<br>12:05:00Z<br><small>(in 5m)</small>"),
            "{html}"
        );
        assert!(html.contains("<tr class=\"account ok\""));
        assert!(html.contains("2026-11-30<br>11:59:30Z<br><small>(30s ago)</small>"));
        assert!(html.contains("<tr class=\"account pending\""));
        assert!(html.contains("3 accounts: 1 ok, 1 failed, 1 pending"));
        assert!(
            html.contains("<td>access_key_max_age</td><td>90d</td>"),
            "{html}"
        );
        assert!(html.contains("<td>per_user_metrics</td><td>off</td>"));
        assert!(html.contains("<h3>Exceptions</h3>\n<p>None.</p>"));
        for link in ["./probe", "./-/healthy", "./-/ready"] {
            assert!(html.contains(&format!("href=\"{link}\"")), "{link}");
        }
        assert!(!html.contains("href=\"/"));
    }

    #[test]
    fn recent_changes_are_listed_newest_first_and_escaped() {
        use crate::state::RecentChange;
        use iam_credential_report::diff::Change;
        let now: DateTime<Utc> = "2026-11-30T12:00:00Z".parse().unwrap();
        let mut a = AccountState::new("k".into(), Some("111122223333".into()), None);
        for (user, change, slot) in [
            ("alice", Change::MfaDisabled, None),
            ("<b>", Change::AccessKeyCreated, Some(2)),
        ] {
            a.recent_changes.push_back(RecentChange {
                at: now,
                user: user.into(),
                change,
                slot,
            });
        }
        let html = render(&[a], &JudgeSettings::default(), "/metrics", now);
        let newest = html.find("access_key_created").unwrap();
        let oldest = html.find("mfa_disabled").unwrap();
        assert!(newest < oldest, "{html}");
        assert!(html.contains("<td>&lt;b&gt;</td><td>access_key_created</td><td>2</td>"));
        assert!(html.contains("<h3>111122223333</h3>"));
    }
}
