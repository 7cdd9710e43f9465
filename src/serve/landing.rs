//! The landing page at `/`: what this is, each account's state, and links. It shows failure
//! reasons, never error messages (those can carry paths and ARNs; they go to the log).

use crate::state::AccountState;
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

fn ago(t: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    match t {
        None => "never".to_owned(),
        Some(t) => {
            let secs = now.signed_duration_since(t).num_seconds().max(0) as u64;
            let rounded =
                std::time::Duration::from_secs(if secs > 3600 { secs / 60 * 60 } else { secs });
            format!(
                "{} ({} ago)",
                t.format("%Y-%m-%d %H:%M:%SZ"),
                humantime::format_duration(rounded)
            )
        }
    }
}

/// Renders the landing page.
pub fn render(accounts: &[AccountState], telemetry_path: &str, now: DateTime<Utc>) -> String {
    let mut rows = String::new();
    for a in accounts {
        let outcome = match (&a.stats.last_ok, &a.last_error) {
            (None, _) => "pending".to_owned(),
            (Some(true), _) => "ok".to_owned(),
            (Some(false), Some(e)) => format!("failed: {}", e.reason),
            (Some(false), None) => "failed".to_owned(),
        };
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
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(a.label()),
            escape(a.name.as_deref().unwrap_or(&alias)),
            escape(&ago(a.last_attempt, now)),
            escape(&outcome),
            escape(&generated),
            users,
            findings,
        );
    }
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
    let path = escape(telemetry_path);
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>IAM credentials exporter</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:70em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:left}}</style>
</head>
<body>
<h1>IAM credentials exporter</h1>
<p>Exports the AWS IAM credential report as Prometheus metrics: MFA coverage, access key age and use,
password age and root account safety, judged against the CIS AWS Foundations Benchmark and
AWS Security Hub checks. AWS regenerates the report at most every 4 hours, so report data can be
up to 4 hours old. Version {version} ({revision}).</p>
<ul>
<li><a href="{path}">Metrics</a></li>
<li><a href="/-/healthy">Health</a></li>
<li><a href="/-/ready">Readiness</a></li>
</ul>
<h2>Accounts</h2>
<table>
<tr><th>Account</th><th>Name</th><th>Last refresh</th><th>Outcome</th><th>Report generated</th><th>Users</th><th>Findings</th></tr>
{rows}</table>
<h2>Recent changes</h2>
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
        let html = render(&[a], "/metrics", Utc::now());
        assert!(html.contains("&lt;script&gt;"));
        assert!(!html.contains("<script>"));
        assert!(html.contains("pending"));
        assert!(html.contains("None since start"));
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
        let html = render(&[a], "/metrics", now);
        let newest = html.find("access_key_created").unwrap();
        let oldest = html.find("mfa_disabled").unwrap();
        assert!(newest < oldest, "{html}");
        assert!(html.contains("<td>&lt;b&gt;</td><td>access_key_created</td><td>2</td>"));
        assert!(html.contains("<h3>111122223333</h3>"));
    }
}
