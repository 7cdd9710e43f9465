//! `iam-credentials-exporter check`: judge a report offline and print the findings as a
//! table fitted to the terminal, JSON, CSV or ASFF ([`crate::cli::asff`]). The formatting is
//! pure (the table takes its width as an argument); [`run`] does the reading, the asking for
//! the terminal's width and the printing.
//!
//! Fail closed: a verdict with skipped rows is incomplete (the users in them are not judged),
//! so it exits 2 unless `--allow-skipped-rows`; a report of which no row could be read exits 2
//! whatever the flags; a report without a root row says root was not judged.

use crate::cli::{asff, CheckArgs, CheckFormat, Cli, Say};
use crate::config::{self, Settings};
use chrono::{DateTime, Utc};
use iam_credential_report::exceptions::{Account, Exception};
use iam_credential_report::judge::{judge, Assessment, Check, Finding, Thresholds};
use iam_credential_report::report::{self, CredentialReport, SkipReason, Stamp};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{IsTerminal, Read};
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
pub fn skip_warnings(report: &CredentialReport, name: &str) -> Vec<String> {
    let mut out: Vec<String> = report
        .skipped
        .iter()
        .take(NAMED_SKIPPED_ROWS)
        .map(|s| format!("{name}: line {} skipped: {}", s.line, s.reason))
        .collect();
    let rest = report.skipped.len().saturating_sub(NAMED_SKIPPED_ROWS);
    if rest > 0 {
        out.push(format!(
            "{name}: {rest} more row(s) skipped, {} in all",
            report.skipped.len()
        ));
    }
    out
}

/// The width `check` fits its table to when standard output is not a terminal and COLUMNS
/// is not set.
pub const DEFAULT_WIDTH: usize = 100;

/// The narrowest width the table is laid out for (a narrower one is taken as this).
pub const MIN_WIDTH: usize = 40;

/// The narrowest detail column beside the row; below it, details go under the row.
const MIN_DETAIL: usize = 40;

/// The width to fit the table to: `columns` (the COLUMNS variable) when it is a positive
/// number, else `terminal` (the terminal's width, when standard output is one), else
/// [`DEFAULT_WIDTH`]; never below [`MIN_WIDTH`].
pub fn table_width(columns: Option<&str>, terminal: Option<usize>) -> usize {
    columns
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|&c| c > 0)
        .or(terminal.filter(|&t| t > 0))
        .unwrap_or(DEFAULT_WIDTH)
        .max(MIN_WIDTH)
}

/// What `check` says on standard error when it is to read the report from a terminal, so
/// that it does not seem to hang.
pub fn stdin_notice() -> &'static str {
    "reading the credential report from standard input (end with Ctrl-D); see --help"
}

/// The longest parenthesised group that [`wrap`] keeps on one line (`(1027 days ago)`).
const KEEP_TOGETHER: usize = 20;

/// The words of `text`, with a short parenthesised group as one word.
fn wrap_units(text: &str) -> Vec<String> {
    let mut units: Vec<String> = Vec::new();
    let mut group: Option<String> = None;
    for word in text.split_whitespace() {
        match group.as_mut() {
            Some(g) => {
                g.push(' ');
                g.push_str(word);
            }
            None if word.starts_with('(') => group = Some(word.to_owned()),
            None => {
                units.push(word.to_owned());
                continue;
            }
        }
        let g = group.as_ref().expect("a group is open");
        if g.ends_with(')') || g.ends_with("),") || g.ends_with(");") {
            units.push(group.take().expect("a group is open"));
        } else if g.chars().count() > KEEP_TOGETHER {
            units.extend(
                group
                    .take()
                    .expect("a group is open")
                    .split(' ')
                    .map(str::to_owned),
            );
        }
    }
    if let Some(g) = group {
        units.extend(g.split(' ').map(str::to_owned));
    }
    units
}

/// Wraps `text` at spaces into lines of at most `width` characters, keeping a short
/// parenthesised group together; a word longer than `width` alone is cut.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines = Vec::new();
    let mut line = String::new();
    let mut len = 0;
    for unit in wrap_units(text) {
        let mut word: Vec<char> = unit.chars().collect();
        while word.len() > width {
            if len > 0 {
                lines.push(std::mem::take(&mut line));
                len = 0;
            }
            lines.push(word.drain(..width).collect());
        }
        if word.is_empty() {
            continue;
        }
        if len > 0 && len + 1 + word.len() > width {
            lines.push(std::mem::take(&mut line));
            len = 0;
        }
        if len > 0 {
            line.push(' ');
            len += 1;
        }
        line.extend(word.iter());
        len += word.len();
    }
    if len > 0 || lines.is_empty() {
        lines.push(line);
    }
    lines
}

/// Lays out rows whose last cell is long text: the other columns aligned and the last
/// wrapped at word boundaries in the room left, or, when that is under `min_last`
/// characters, on lines of its own under the row, indented by `indent`. Columns flagged in
/// `right` are right-aligned. Every line is at most `width` characters, but for a word
/// longer than the line.
pub(crate) fn layout(
    header: &[&str],
    rows: &[Vec<String>],
    right: &[bool],
    width: usize,
    min_last: usize,
    indent: usize,
) -> String {
    let n = header.len();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, cell) in widths.iter_mut().zip(&r[..n - 1]) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let lead: usize = widths[..n - 1].iter().map(|w| w + 2).sum();
    let beside = width >= lead + min_last;
    let cells = |r: &[&str]| -> String {
        let mut line = String::new();
        for (i, cell) in r[..n - 1].iter().enumerate() {
            let pad = widths[i].saturating_sub(cell.chars().count());
            if right.get(i).copied().unwrap_or(false) {
                line.push_str(&" ".repeat(pad));
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.push_str(&" ".repeat(pad));
            }
            line.push_str("  ");
        }
        line
    };
    let mut out = String::new();
    let mut push = |line: &str| {
        out.push_str(line.trim_end());
        out.push('\n');
    };
    let header_line = cells(header);
    if beside {
        push(&format!("{header_line}{}", header[n - 1]));
    } else {
        push_fitted(&mut push, &header_line, width);
        push(&format!(
            "{}{}",
            " ".repeat(indent.min(width / 2)),
            header[n - 1]
        ));
    }
    for r in rows {
        let r: Vec<&str> = r.iter().map(String::as_str).collect();
        let front = cells(&r);
        if beside {
            let text = wrap(r[n - 1], width - lead);
            push(&format!("{front}{}", text[0]));
            for l in &text[1..] {
                push(&format!("{}{l}", " ".repeat(lead)));
            }
        } else {
            push_fitted(&mut push, &front, width);
            let indent = indent.min(width / 2);
            for l in wrap(r[n - 1], width - indent) {
                push(&format!("{}{l}", " ".repeat(indent)));
            }
        }
    }
    out
}

/// Pushes `line` as it is when it fits in `width` (trailing spaces aside), else wrapped.
fn push_fitted(push: &mut impl FnMut(&str), line: &str, width: usize) {
    if line.trim_end().chars().count() <= width {
        push(line);
    } else {
        for l in wrap(line, width) {
            push(&l);
        }
    }
}

/// The summary: how many findings for how many of the principals judged (IAM users, and
/// root when the report has its row: `3 of 3 principal(s) (2 user(s) and root)`), the
/// account and the rows skipped.
pub fn summary(v: &Verdict) -> String {
    let failing: std::collections::BTreeSet<&str> =
        v.findings.iter().map(|f| f.user.as_str()).collect();
    let judged = if v.root_in_report {
        format!(
            "{} principal(s) ({} user(s) and root)",
            v.users + 1,
            v.users
        )
    } else {
        format!("{} user(s) (root not in report)", v.users)
    };
    let account = v.account_id.as_deref().unwrap_or("unknown");
    let found = if v.findings.is_empty() {
        format!("No findings for {judged}")
    } else {
        format!(
            "{} finding(s) for {} of {judged}",
            v.findings.len(),
            failing.len()
        )
    };
    match v.rows_skipped {
        0 => format!("{found} in account {account}."),
        n => format!("{found} in account {account}; {n} row(s) skipped, their users not judged."),
    }
}

/// Formats the verdict for people, fitted to `width` columns: the findings (severity, check,
/// user, detail; most severe first), failures per check with its controls, the remediation
/// of each failing check, the summary, the muted findings and whether root was judged.
pub fn table(v: &Verdict, width: usize) -> String {
    let width = width.max(MIN_WIDTH);
    let mut out = String::new();
    let para = |out: &mut String, text: &str| {
        for l in wrap(text, width) {
            out.push_str(&l);
            out.push('\n');
        }
    };
    if !v.findings.is_empty() {
        let mut findings: Vec<&FindingRecord> = v.findings.iter().collect();
        findings.sort_by_key(|f| severity_rank(f.check));
        let rows: Vec<Vec<String>> = findings
            .iter()
            .map(|f| {
                vec![
                    f.severity.to_owned(),
                    f.check.to_owned(),
                    f.user.clone(),
                    f.detail.clone(),
                ]
            })
            .collect();
        out.push_str(&layout(
            &["SEVERITY", "CHECK", "USER", "DETAIL"],
            &rows,
            &[],
            width,
            MIN_DETAIL,
            "SEVERITY".len() + 2,
        ));
        // Failures per check, most severe first, with the controls they fail.
        let mut failing: Vec<(Check, u64)> = v
            .failures
            .iter()
            .filter_map(|c| Some((Check::from_name(c.check)?, c.failures?)))
            .filter(|(_, n)| *n > 0)
            .collect();
        failing.sort_by_key(|(c, _)| c.entry().severity);
        let rows: Vec<Vec<String>> = failing
            .iter()
            .map(|(c, n)| {
                vec![
                    c.name().to_owned(),
                    c.entry().severity.as_str().to_owned(),
                    n.to_string(),
                    c.controls(),
                ]
            })
            .collect();
        out.push('\n');
        out.push_str(&layout(
            &["CHECK", "SEVERITY", "FAILING", "CONTROLS"],
            &rows,
            &[false, false, true],
            width,
            12,
            4,
        ));
        out.push('\n');
        para(
            &mut out,
            "To fix (USER, KEY_ID and the like are placeholders):",
        );
        for (c, _) in &failing {
            out.push_str(&format!("{}:\n", c.name()));
            for l in wrap(c.entry().remediation, width - 4) {
                out.push_str(&format!("    {l}\n"));
            }
        }
        out.push('\n');
    }
    para(&mut out, &summary(v));
    if !v.muted.is_empty() {
        para(
            &mut out,
            &format!(
                "{} finding(s) muted by exceptions, not counted:",
                v.muted.len()
            ),
        );
        for m in &v.muted {
            let key = m.key.map(|k| format!(" key {k}")).unwrap_or_default();
            let text = format!(
                "{} {}{}: {} (owner {}, until {}): {}",
                m.check, m.user, key, m.exception, m.owner, m.expires, m.reason
            );
            for (i, l) in wrap(&text, width - 4).iter().enumerate() {
                let indent = if i == 0 { "  " } else { "    " };
                out.push_str(&format!("{indent}{l}\n"));
            }
        }
    }
    if !v.root_in_report {
        let root_checks: Vec<&str> = Check::ALL
            .iter()
            .filter(|c| c.is_root())
            .map(|c| c.name())
            .collect();
        para(
            &mut out,
            &format!(
                "root not in report, not judged: {}.",
                root_checks.join(", ")
            ),
        );
    }
    out
}

/// Orders findings most severe first (a check not in the catalogue last).
fn severity_rank(check: &str) -> (usize, usize) {
    match Check::from_name(check) {
        Some(c) => (c.entry().severity as usize, c as usize),
        None => (usize::MAX, usize::MAX),
    }
}

/// Formats the findings as CSV with a header row.
pub fn csv(v: &Verdict) -> String {
    let mut w = ::csv::Writer::from_writer(Vec::new());
    w.write_record([
        "account_id",
        "check",
        "severity",
        "controls",
        "user",
        "arn",
        "key",
        "since",
        "detail",
    ])
    .expect("writing CSV to memory");
    let account = v.account_id.as_deref().unwrap_or("");
    for f in &v.findings {
        w.write_record([
            account,
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
    say: Say,
    now: DateTime<Utc>,
) -> anyhow::Result<(Thresholds, Vec<Exception>)> {
    let Some(path) = &args.config_file else {
        return Ok((cli.thresholds.thresholds(), Vec::new()));
    };
    let config = config::load(path, now.date_naive())?;
    let (settings, _) = Settings::resolve(&cli.flag_settings(), &cli.explicit, &config)?;
    for e in config.exceptions.iter().filter(|e| !e.active(now)) {
        say.warn(&format!(
            "{}: exceptions[{}] expired on {}: it no longer mutes its findings; renew it (with a new reason) or remove it",
            path.display(),
            e.id,
            e.expires
        ));
    }
    Ok((settings.thresholds, config.exceptions))
}

/// Runs `check`: 0 when clean, 1 when a check fails, 2 when the report cannot be read or the
/// verdict is incomplete (rows skipped, unless `--allow-skipped-rows`; no row read at all).
pub fn run(args: &CheckArgs, cli: &Cli) -> ExitCode {
    let now = args.at.unwrap_or_else(Utc::now);
    let say = Say::new(cli);
    let (thresholds, exceptions) = match judging(args, cli, say, now) {
        Ok(v) => v,
        Err(e) => {
            say.error(&format!("{e:#}"));
            return ExitCode::from(2);
        }
    };
    let input = if args.file == "-" {
        if std::io::stdin().is_terminal() {
            eprintln!("{}", stdin_notice());
        }
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
            say.error(&format!("reading {name}: {e}"));
            return ExitCode::from(2);
        }
    };
    let report = match report::parse(&bytes) {
        Ok(r) => r,
        Err(e) => {
            say.error(&format!("{name}: {e}"));
            return ExitCode::from(2);
        }
    };
    drop(bytes);
    for w in skip_warnings(&report, name) {
        say.warn(&w);
    }
    let mut assessment = judge(&report, now, &thresholds);
    let account = Account {
        id: report.account_id.as_deref().unwrap_or(""),
        name: None,
    };
    assessment.mute(&report, &exceptions, &account, now);
    let v = verdict(&report, &assessment, &exceptions, now);
    let text = match args.output {
        CheckFormat::Table => {
            let columns = std::env::var("COLUMNS").ok();
            let terminal = std::io::stdout()
                .is_terminal()
                .then(|| terminal_size::terminal_size().map(|(w, _)| usize::from(w.0)))
                .flatten();
            table(&v, table_width(columns.as_deref(), terminal))
        }
        CheckFormat::Json => {
            serde_json::to_string_pretty(&v).expect("serialising the verdict") + "\n"
        }
        CheckFormat::Csv => csv(&v),
        CheckFormat::Asff => {
            let region = args
                .aws_region
                .as_deref()
                .or(cli.serve.aws_region.as_deref())
                .unwrap_or(asff::DEFAULT_REGION);
            match asff::render(&v, region) {
                Ok(text) => text,
                Err(e) => {
                    say.error(&format!("{name}: {e}"));
                    return ExitCode::from(2);
                }
            }
        }
    };
    if !crate::cli::print(&text) {
        return ExitCode::from(2);
    }
    if let Some(why) = report.doubt(None) {
        say.error(&format!("{name}: {why}; nothing was judged"));
        return ExitCode::from(2);
    }
    if !report.skipped.is_empty() {
        let summary = skip_summary(&report);
        if !args.allow_skipped_rows {
            say.error(&format!(
                "{name}: the verdict is incomplete: {} row(s) skipped ({summary}), and the users in them are not judged; --allow-skipped-rows accepts it",
                report.skipped.len()
            ));
            return ExitCode::from(2);
        }
        say.warn(&format!(
            "{name}: {} row(s) skipped ({summary}); their users are not judged",
            report.skipped.len()
        ));
    }
    if assessment.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn the_width_is_columns_else_the_terminals_else_100() {
        assert_eq!(table_width(Some("80"), Some(132)), 80);
        assert_eq!(table_width(Some(" 120 "), None), 120);
        assert_eq!(table_width(Some("wide"), Some(132)), 132);
        assert_eq!(table_width(Some("0"), None), DEFAULT_WIDTH);
        assert_eq!(table_width(None, Some(90)), 90);
        assert_eq!(table_width(None, Some(0)), DEFAULT_WIDTH);
        assert_eq!(table_width(None, None), 100);
        assert_eq!(table_width(Some("10"), None), MIN_WIDTH);
    }

    #[test]
    fn wrapping_breaks_at_spaces_and_cuts_only_overlong_words() {
        assert_eq!(
            wrap("access key 1 last rotated 2024-02-01 (1027 days ago)", 20),
            ["access key 1 last", "rotated 2024-02-01", "(1027 days ago)"]
        );
        assert_eq!(
            wrap("access key 1 last rotated 2024-02-01 (1027 days ago)", 44),
            ["access key 1 last rotated 2024-02-01", "(1027 days ago)"]
        );
        assert_eq!(
            wrap("a (group far too long to keep together) b", 12),
            ["a (group far", "too long to", "keep", "together) b"]
        );
        assert_eq!(wrap("", 10), [""]);
        assert_eq!(wrap("ab abcdefghij c", 4), ["ab", "abcd", "efgh", "ij c"]);
    }

    #[test]
    fn the_stdin_notice_says_what_is_awaited_and_how_to_end_it() {
        let notice = stdin_notice();
        assert!(notice.contains("standard input") && notice.contains("Ctrl-D"));
        assert!(notice.contains("--help"));
    }

    fn normalized(text: &str) -> String {
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    fn record(check: Check, user: &str, detail: &str) -> FindingRecord {
        FindingRecord {
            check: check.name(),
            severity: check.entry().severity.as_str(),
            controls: check.controls(),
            user: user.to_owned(),
            arn: format!("arn:aws:iam::123456789012:user/{user}"),
            key: None,
            since: None,
            detail: detail.to_owned(),
        }
    }

    fn verdict(users: usize, root: bool, findings: Vec<FindingRecord>) -> Verdict {
        let mut failures: BTreeMap<&str, u64> = BTreeMap::new();
        for f in &findings {
            *failures.entry(f.check).or_default() += 1;
        }
        Verdict {
            account_id: Some("123456789012".to_owned()),
            evaluated_at: Utc.with_ymd_and_hms(2026, 11, 25, 6, 0, 0).unwrap(),
            users,
            root_in_report: root,
            rows_skipped: 0,
            skipped_rows: vec![],
            failures: Check::ALL
                .iter()
                .map(|c| CheckCount {
                    check: c.name(),
                    controls: c.controls(),
                    failures: (root || !c.is_root())
                        .then(|| failures.get(c.name()).copied().unwrap_or(0)),
                })
                .collect(),
            findings,
            muted: vec![],
        }
    }

    #[test]
    fn the_summary_counts_root_among_the_principals() {
        let root = record(
            Check::RootAccessKey,
            "<root_account>",
            "root access key 1 is active",
        );
        let v = verdict(0, true, vec![root.clone()]);
        assert_eq!(
            summary(&v),
            "1 finding(s) for 1 of 1 principal(s) (0 user(s) and root) in account 123456789012."
        );
        let bob = record(Check::UserWithoutMfa, "bob", "no MFA device");
        let v = verdict(2, true, vec![root, bob.clone(), bob]);
        assert!(
            summary(&v).starts_with("3 finding(s) for 2 of 3 principal(s) (2 user(s) and root)")
        );
        let v = verdict(2, false, vec![]);
        assert_eq!(
            summary(&v),
            "No findings for 2 user(s) (root not in report) in account 123456789012."
        );
    }

    #[test]
    fn the_table_fits_any_width_and_names_each_remediation_once() {
        let long = "a detail long enough to need wrapping in every layout the table has, \
                    twice over for the narrow ones";
        let mut v = verdict(
            3,
            true,
            vec![
                record(Check::UserWithoutMfa, "bob", long),
                record(Check::UserWithoutMfa, "a-rather-long-user-name", long),
                record(Check::InactiveUser, "carol", "no credential ever used"),
            ],
        );
        v.muted.push(MutedRecord {
            check: Check::ConsoleUserWithoutMfa.name(),
            user: "break-glass".to_owned(),
            key: None,
            exception: "break-glass-mfa".to_owned(),
            reason: "Break-glass user; the hardware token is in the safe (SEC-123)".to_owned(),
            owner: "security-team".to_owned(),
            expires: "2027-01-15".parse().unwrap(),
        });
        for width in [40, 60, 80, 100, 132] {
            let t = table(&v, width);
            for l in t.lines() {
                assert!(l.chars().count() <= width, "{width}: {l:?}\n{t}");
            }
            let remediation = Check::UserWithoutMfa.entry().remediation;
            let first_words: String = remediation.split(' ').take(3).collect::<Vec<_>>().join(" ");
            assert_eq!(t.matches(&first_words).count(), 1, "{width}:\n{t}");
            assert!(t.contains("user_without_mfa  medium"), "{width}:\n{t}");
            assert!(
                normalized(&t).contains("1 finding(s) muted by exceptions, not counted: console_user_without_mfa break-glass: break-glass-mfa (owner security-team, until 2027-01-15): Break-glass user; the hardware token is in the safe (SEC-123)"),
                "{width}:\n{t}"
            );
        }
        let empty = table(&verdict(3, true, vec![]), 80);
        assert_eq!(
            empty,
            "No findings for 4 principal(s) (3 user(s) and root) in account 123456789012.\n"
        );
    }
}
