//! `iam-credentials-exporter check`: judge a report offline and print the findings as a
//! table, JSON or CSV. The formatting is pure; [`run`] does the reading and printing.
//!
//! Fail closed: a verdict with skipped rows is incomplete (the users in them are not judged),
//! so it exits 2 unless `--allow-skipped-rows`; a report of which no row could be read exits 2
//! whatever the flags; a report without a root row says root was not judged.

use crate::cli::{CheckArgs, Cli, OutputFormat};
use crate::config::{self, Settings};
use chrono::{DateTime, Utc};
use iam_credential_report::exceptions::{Account, Exception};
use iam_credential_report::judge::{judge, Assessment, Check, Finding, Thresholds};
use iam_credential_report::report::{self, CredentialReport, SkipReason, Stamp};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::process::ExitCode;

/// One finding, flattened for output.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FindingRecord {
    /// The check's name.
    pub check: &'static str,
    /// The check's severity (from the catalogue).
    pub severity: &'static str,
    /// Security Hub ids and the newest CIS id.
    pub controls: String,
    /// The user.
    pub user: String,
    /// The user's ARN.
    pub arn: String,
    /// The key slot, for key checks.
    pub key: Option<u8>,
    /// The timestamp the finding rests on.
    pub since: Option<DateTime<Utc>>,
    /// A sentence for people.
    pub detail: String,
}

/// The whole verdict, as `--output json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    /// The account the report belongs to.
    pub account_id: Option<String>,
    /// When the report was judged ("now").
    pub evaluated_at: DateTime<Utc>,
    /// IAM users judged (root excluded).
    pub users: usize,
    /// Whether the report has a root row (without one the root checks are not judged).
    pub root_in_report: bool,
    /// Rows skipped as invalid: the verdict leaves their users out.
    pub rows_skipped: usize,
    /// The first [`NAMED_SKIPPED_ROWS`] skipped rows, with why.
    pub skipped_rows: Vec<SkippedRecord>,
    /// Failures per check (every report check listed; `null` when not judged).
    pub failures: Vec<CheckCount>,
    /// The findings.
    pub findings: Vec<FindingRecord>,
    /// Findings an exception (from `--config.file`) mutes: listed apart, not counted for the
    /// exit code.
    pub muted: Vec<MutedRecord>,
}

/// A muted finding.
#[derive(Debug, Clone, Serialize)]
pub struct MutedRecord {
    /// The check's name.
    pub check: &'static str,
    /// The user.
    pub user: String,
    /// The key slot, for key checks.
    pub key: Option<u8>,
    /// The exception's id.
    pub exception: String,
    /// Why it is accepted.
    pub reason: String,
    /// Who answers for it.
    pub owner: String,
    /// Its last day.
    pub expires: chrono::NaiveDate,
}

/// A skipped row.
#[derive(Debug, Clone, Serialize)]
pub struct SkippedRecord {
    /// 1-based line.
    pub line: u64,
    /// Why.
    pub reason: String,
}

/// A check and how many fail it.
#[derive(Debug, Clone, Serialize)]
pub struct CheckCount {
    /// The check's name.
    pub check: &'static str,
    /// Security Hub ids and the newest CIS id.
    pub controls: String,
    /// Users (or keys) failing; `None` when the check was not judged (a root check of a
    /// report without a root row).
    pub failures: Option<u64>,
}

/// How many skipped rows the warnings and the verdict name one by one; the rest are counted.
pub const NAMED_SKIPPED_ROWS: usize = 10;

fn days(since: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let d = now.signed_duration_since(since).num_days();
    match d {
        i64::MIN..=-1 => "in the future".to_owned(),
        0 => "less than a day ago".to_owned(),
        1 => "1 day ago".to_owned(),
        d => format!("{d} days ago"),
    }
}

fn date(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d").to_string()
}

/// A sentence saying why the finding failed.
pub fn describe(f: &Finding, report: &CredentialReport, now: DateTime<Utc>) -> String {
    let row = &report.rows[f.row];
    let when = |t: Option<DateTime<Utc>>| match t {
        Some(t) => format!("{} ({})", date(t), days(t, now)),
        None => "unknown".to_owned(),
    };
    let key = f.key.unwrap_or(0);
    match f.check {
        Check::ConsoleUserWithoutMfa => "console password enabled, no MFA device".to_owned(),
        Check::UserWithoutMfa => "no MFA device".to_owned(),
        Check::RootWithoutMfa => "the root user has no MFA device".to_owned(),
        Check::RootAccessKey => match f.since {
            Some(_) => format!("root access key {key} is active, created {}", when(f.since)),
            None => format!(
                "root access key {key} is active; the report gives no creation date, so its age cannot be judged"
            ),
        },
        Check::RootUsedRecently => format!("root last used {}", when(f.since)),
        Check::AccessKeyNotRotated => format!("access key {key} last rotated {}", when(f.since)),
        Check::UnusedAccessKey => {
            let slot = &row.keys[usize::from(key.max(1)) - 1];
            match slot.last_used {
                Stamp::At(_) => format!("access key {key} last used {}", when(f.since)),
                _ => format!("access key {key} never used, created {}", when(f.since)),
            }
        }
        Check::UnusedPassword => match row.password_last_used {
            Stamp::At(_) => format!("password last used {}", when(f.since)),
            _ => format!("password never used, set {}", when(f.since)),
        },
        Check::TwoActiveAccessKeys => {
            let dateless: Vec<String> = (1..=2)
                .filter(|&slot| row.keys[slot - 1].last_rotated.at().is_none())
                .map(|slot| slot.to_string())
                .collect();
            match dateless.as_slice() {
                [] => "both access keys are active".to_owned(),
                [one] => format!(
                    "both access keys are active; key {one} has no date in the report, so its age cannot be judged"
                ),
                _ => "both access keys are active; neither has a date in the report, so their age cannot be judged".to_owned(),
            }
        }
        Check::AccessKeyAtSetup => "console user with an active access key never used".to_owned(),
        Check::PasswordNotRotated => format!("password last changed {}", when(f.since)),
        Check::InactiveUser => match f.since {
            Some(t) => format!("no credential used since {} ({})", date(t), days(t, now)),
            None => format!(
                "no credential ever used; user created {}",
                when(row.created.at())
            ),
        },
    }
}

/// Builds the verdict for a parsed report; `exceptions` are the list the assessment was muted
/// with.
pub fn verdict(
    report: &CredentialReport,
    assessment: &Assessment,
    exceptions: &[Exception],
    now: DateTime<Utc>,
) -> Verdict {
    Verdict {
        muted: assessment
            .muted
            .iter()
            .map(|m| {
                let e = &exceptions[m.exception];
                MutedRecord {
                    check: m.finding.check.name(),
                    user: report.rows[m.finding.row].user.clone(),
                    key: m.finding.key,
                    exception: e.id.clone(),
                    reason: e.reason.clone(),
                    owner: e.owner.clone(),
                    expires: e.expires,
                }
            })
            .collect(),
        account_id: report.account_id.clone(),
        evaluated_at: now,
        users: report.users().count(),
        root_in_report: report.root().is_some(),
        rows_skipped: report.skipped.len(),
        skipped_rows: report
            .skipped
            .iter()
            .take(NAMED_SKIPPED_ROWS)
            .map(|s| SkippedRecord {
                line: s.line,
                reason: s.reason.to_string(),
            })
            .collect(),
        failures: Check::ALL
            .iter()
            .map(|&c| CheckCount {
                check: c.name(),
                controls: c.controls(),
                failures: assessment.judged(c).then(|| assessment.count(c)),
            })
            .collect(),
        findings: assessment
            .findings
            .iter()
            .map(|f| {
                let row = &report.rows[f.row];
                FindingRecord {
                    check: f.check.name(),
                    severity: f.check.entry().severity.as_str(),
                    controls: f.check.controls(),
                    user: row.user.clone(),
                    arn: row.arn.clone(),
                    key: f.key,
                    since: f.since,
                    detail: describe(f, report, now),
                }
            })
            .collect(),
    }
}

/// Why rows were skipped, most common first: `5 with the wrong number of fields, 1 with an
/// invalid mfa_active`.
pub fn skip_summary(report: &CredentialReport) -> String {
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for s in &report.skipped {
        let kind = match &s.reason {
            SkipReason::WrongWidth { .. } => "with the wrong number of fields".to_owned(),
            SkipReason::InvalidValue { column, .. } => format!("with an invalid {column}"),
        };
        *kinds.entry(kind).or_default() += 1;
    }
    let mut kinds: Vec<(String, usize)> = kinds.into_iter().collect();
    kinds.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    kinds
        .iter()
        .map(|(kind, n)| format!("{n} {kind}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The warnings for skipped rows: the first [`NAMED_SKIPPED_ROWS`] by line, then one line
/// with the rest, so that a report of a million bad rows is answered in a few lines.
pub fn skip_warnings(report: &CredentialReport, name: &str) -> String {
    let mut out = String::new();
    for s in report.skipped.iter().take(NAMED_SKIPPED_ROWS) {
        out.push_str(&format!(
            "warning: {name}: line {} skipped: {}\n",
            s.line, s.reason
        ));
    }
    let rest = report.skipped.len().saturating_sub(NAMED_SKIPPED_ROWS);
    if rest > 0 {
        out.push_str(&format!(
            "warning: {name}: {rest} more row(s) skipped, {} in all\n",
            report.skipped.len()
        ));
    }
    out
}

/// Formats the verdict as an aligned table with a summary line.
pub fn table(v: &Verdict) -> String {
    let header = ["CHECK", "CONTROLS", "USER", "DETAIL"];
    let rows: Vec<[&str; 4]> = v
        .findings
        .iter()
        .map(|f| {
            [
                f.check,
                f.controls.as_str(),
                f.user.as_str(),
                f.detail.as_str(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for r in std::iter::once(&header).chain(rows.iter()) {
        let line = format!(
            "{:<w0$}  {:<w1$}  {:<w2$}  {}",
            r[0],
            r[1],
            r[2],
            r[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    let failing_users: std::collections::BTreeSet<&str> =
        v.findings.iter().map(|f| f.user.as_str()).collect();
    out.push_str(&format!(
        "\n{} finding(s) for {} of {} user(s){} in account {}; {} row(s) skipped.\n",
        v.findings.len(),
        failing_users.len(),
        v.users,
        if v.root_in_report { " and root" } else { "" },
        v.account_id.as_deref().unwrap_or("unknown"),
        v.rows_skipped,
    ));
    if !v.muted.is_empty() {
        out.push_str(&format!(
            "{} finding(s) muted by exceptions, not counted:\n",
            v.muted.len()
        ));
        for m in &v.muted {
            let key = m.key.map(|k| format!(" key {k}")).unwrap_or_default();
            out.push_str(&format!(
                "  {} {}{}: {} (owner {}, until {}): {}\n",
                m.check, m.user, key, m.exception, m.owner, m.expires, m.reason
            ));
        }
    }
    if !v.root_in_report {
        let root_checks: Vec<&str> = Check::ALL
            .iter()
            .filter(|c| c.is_root())
            .map(|c| c.name())
            .collect();
        out.push_str(&format!(
            "root not in report, not judged: {}.\n",
            root_checks.join(", ")
        ));
    }
    out
}

/// Formats the findings as CSV with a header row.
pub fn csv(v: &Verdict) -> String {
    let mut w = ::csv::Writer::from_writer(Vec::new());
    w.write_record([
        "check", "severity", "controls", "user", "arn", "key", "since", "detail",
    ])
    .expect("writing CSV to memory");
    for f in &v.findings {
        w.write_record([
            f.check,
            f.severity,
            &f.controls,
            &f.user,
            &f.arn,
            &f.key.map(|k| k.to_string()).unwrap_or_default(),
            &f.since.map(|t| t.to_rfc3339()).unwrap_or_default(),
            &f.detail,
        ])
        .expect("writing CSV to memory");
    }
    String::from_utf8(w.into_inner().expect("flushing CSV to memory"))
        .expect("CSV of UTF-8 is UTF-8")
}

/// The thresholds (flags, or `--config.file`'s where no flag was given) and exceptions to
/// judge with. The config file is validated as of `now`'s day (`--at`).
fn judging(
    args: &CheckArgs,
    cli: &Cli,
    now: DateTime<Utc>,
) -> anyhow::Result<(Thresholds, Vec<Exception>)> {
    let Some(path) = &args.config_file else {
        return Ok((cli.thresholds.thresholds(), Vec::new()));
    };
    let config = config::load(path, now.date_naive())?;
    let (settings, _) = Settings::resolve(&cli.flag_settings(), &cli.explicit, &config)?;
    for e in config.exceptions.iter().filter(|e| !e.active(now)) {
        eprintln!(
            "warning: {}: exceptions[{}] expired on {}: it no longer mutes its findings",
            path.display(),
            e.id,
            e.expires
        );
    }
    Ok((settings.thresholds, config.exceptions))
}

/// Runs `check`: 0 when clean, 1 when a check fails, 2 when the report cannot be read or the
/// verdict is incomplete (rows skipped, unless `--allow-skipped-rows`; no row read at all).
pub fn run(args: &CheckArgs, cli: &Cli) -> ExitCode {
    let now = args.at.unwrap_or_else(Utc::now);
    let (thresholds, exceptions) = match judging(args, cli, now) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    let input = if args.file == "-" {
        let mut buf = Vec::new();
        std::io::stdin().read_to_end(&mut buf).map(|_| buf)
    } else {
        std::fs::read(&args.file)
    };
    let name = if args.file == "-" {
        "standard input"
    } else {
        args.file.as_str()
    };
    let bytes = match input {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: reading {name}: {e}");
            return ExitCode::from(2);
        }
    };
    let report = match report::parse(&bytes) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {name}: {e}");
            return ExitCode::from(2);
        }
    };
    drop(bytes);
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(skip_warnings(&report, name).as_bytes());
    let mut assessment = judge(&report, now, &thresholds);
    let account = Account {
        id: report.account_id.as_deref().unwrap_or(""),
        name: None,
    };
    assessment.mute(&report, &exceptions, &account, now);
    let v = verdict(&report, &assessment, &exceptions, now);
    let text = match args.output {
        OutputFormat::Table => table(&v),
        OutputFormat::Json => {
            serde_json::to_string_pretty(&v).expect("serialising the verdict") + "\n"
        }
        OutputFormat::Csv => csv(&v),
    };
    if !crate::cli::print(&text) {
        return ExitCode::from(2);
    }
    if let Some(why) = report.doubt(None) {
        let _ = writeln!(stderr, "error: {name}: {why}; nothing was judged");
        return ExitCode::from(2);
    }
    if !report.skipped.is_empty() {
        let summary = skip_summary(&report);
        if !args.allow_skipped_rows {
            let _ = writeln!(
                stderr,
                "error: {name}: the verdict is incomplete: {} row(s) skipped ({summary}), and the users in them are not judged; --allow-skipped-rows accepts it",
                report.skipped.len()
            );
            return ExitCode::from(2);
        }
        let _ = writeln!(
            stderr,
            "warning: {name}: {} row(s) skipped ({summary}); their users are not judged",
            report.skipped.len()
        );
    }
    if assessment.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
