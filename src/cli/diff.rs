//! `iam-credentials-exporter diff OLD NEW`: the change events between two reports of one
//! account, offline, as the exporter derives them between two refreshes. The formatting is
//! pure; [`run`] does the reading and printing.

use crate::cli::check::{layout, skip_warnings};
use crate::cli::{Cli, DiffArgs, OutputFormat, Say};
use iam_credential_report::diff::{diff, Digest, Event};
use iam_credential_report::report::{self, CredentialReport};
use std::io::Read;
use std::process::ExitCode;

/// The events as an aligned table, then a summary line.
pub fn table(events: &[Event], old: &str, new: &str) -> String {
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|e| {
            vec![
                e.change.name().to_owned(),
                e.user.clone(),
                e.slot.map(|s| s.to_string()).unwrap_or_default(),
                e.before.clone().unwrap_or_default(),
                e.after.clone().unwrap_or_default(),
            ]
        })
        .collect();
    if rows.is_empty() {
        return format!("no changes from {old} to {new}\n");
    }
    // Aligned as `check` aligns its table; values are times and states, so no width to fit.
    let mut out = layout(
        &["CHANGE", "USER", "KEY", "BEFORE", "AFTER"],
        &rows,
        &[],
        usize::MAX / 4,
        0,
        0,
    );
    out.push_str(&format!(
        "\n{} change(s) from {old} to {new}.\n",
        events.len()
    ));
    out
}

/// The events as CSV with a header row.
pub fn csv(events: &[Event]) -> String {
    let mut w = ::csv::Writer::from_writer(Vec::new());
    w.write_record(["change", "user", "arn", "slot", "before", "after"])
        .expect("writing CSV to memory");
    for e in events {
        w.write_record([
            e.change.name(),
            &e.user,
            &e.arn,
            &e.slot.map(|s| s.to_string()).unwrap_or_default(),
            e.before.as_deref().unwrap_or(""),
            e.after.as_deref().unwrap_or(""),
        ])
        .expect("writing CSV to memory");
    }
    String::from_utf8(w.into_inner().expect("flushing CSV to memory"))
        .expect("CSV of UTF-8 is UTF-8")
}

/// Reads and parses one report, or says why not.
fn read(path: &str) -> Result<CredentialReport, String> {
    let bytes = if path == "-" {
        let mut buf = Vec::new();
        std::io::stdin().read_to_end(&mut buf).map(|_| buf)
    } else {
        std::fs::read(path)
    }
    .map_err(|e| format!("reading {path}: {e}"))?;
    report::parse(&bytes).map_err(|e| format!("{path}: {e}"))
}

/// Runs `diff`: 0 when nothing changed, 1 when something did, 2 when a report cannot be read,
/// the two are of different accounts, or rows were skipped (unless `--allow-skipped-rows`).
pub fn run(args: &DiffArgs, cli: &Cli) -> ExitCode {
    let say = Say::new(cli);
    let mut reports = Vec::new();
    for path in [&args.old, &args.new] {
        match read(path) {
            Ok(r) => reports.push(r),
            Err(e) => {
                say.error(&e);
                return ExitCode::from(2);
            }
        }
    }
    let (old, new) = (&reports[0], &reports[1]);
    let name = |p: &str| {
        if p == "-" {
            "standard input".to_owned()
        } else {
            p.to_owned()
        }
    };
    let (old_name, new_name) = (name(&args.old), name(&args.new));
    let mut incomplete = false;
    for (report, name) in [(old, &old_name), (new, &new_name)] {
        for w in skip_warnings(report, name) {
            say.warn(&w);
        }
        if let Some(why) = report.doubt(None) {
            say.error(&format!("{name}: {why}"));
            return ExitCode::from(2);
        }
        incomplete |= !report.skipped.is_empty();
    }
    if let (Some(a), Some(b)) = (&old.account_id, &new.account_id) {
        if a != b {
            say.error(&format!("{old_name} is a report of account {a}, {new_name} of account {b}: nothing to compare"));
            return ExitCode::from(2);
        }
    }
    if incomplete && !args.allow_skipped_rows {
        say.error("rows were skipped, so users in them would read as deleted or created; --allow-skipped-rows compares anyway");
        return ExitCode::from(2);
    }
    let events = diff(&Digest::of(old), &Digest::of(new));
    let text = match args.output {
        OutputFormat::Table => table(&events, &old_name, &new_name),
        OutputFormat::Json => {
            serde_json::to_string_pretty(&events).expect("serialising the events") + "\n"
        }
        OutputFormat::Csv => csv(&events),
    };
    if !crate::cli::print(&text) {
        return ExitCode::from(2);
    }
    if events.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
