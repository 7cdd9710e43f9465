//! `iam-credentials-exporter check`: judge a report offline and print the findings as a
//! table fitted to the terminal, JSON, CSV or ASFF ([`crate::cli::asff`]). The formatting is
//! pure (the table takes its width as an argument, every output a writer); [`run`] does the
//! reading, the asking for the terminal's width and the printing.
//!
//! It streams: one pass over the report ([`scan`]) finds each user's row by the duplicates
//! rule, the skipped rows, and counts the failures per check as it judges; then each output
//! walks the users again, judging row by row ([`Judged`]), and writes each finding through a
//! buffered writer as it comes. What is held is the report's bytes and a few words per user,
//! never the parsed rows, the findings nor the output. JSON, CSV and ASFF walk once; the
//! table (most severe first, its columns as wide as the widest cell) once for its widths and
//! once per failing check; muted findings, when exceptions are given, once more. Both passes
//! read the report in blocks on two threads (`relay`) and do what must be done in order
//! (remembering users, writing) on this one.
//!
//! Fail closed: a verdict with skipped rows is incomplete (the users in them are not judged),
//! so it exits 2 unless `--allow-skipped-rows`; a report of which no row could be read exits 2
//! whatever the flags; a report without a root row says root was not judged.

use crate::cli::{asff, CheckArgs, CheckFormat, Cli, Say};
use crate::config::{self, Settings};
use chrono::{DateTime, Datelike, Timelike, Utc};
use iam_credential_report::exceptions::Exception;
use iam_credential_report::judge::{Check, Finding, Thresholds};
use iam_credential_report::report::{
    CredentialReport, Record, ReportError, RowAt, SkipReason, SkippedRow, Stamp, UserRow,
};
use iam_credential_report::stream::{Apart, Blocks, Counts, Judging, Scan};
use serde::ser::{SerializeSeq, SerializeStruct, Serializer};
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::io::{self, IsTerminal, Read, Write};
use std::marker::PhantomData;
use std::ops::ControlFlow;
use std::process::ExitCode;

/// One finding, flattened for output.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
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
    #[serde(serialize_with = "serialize_since")]
    pub since: Option<DateTime<Utc>>,
    /// A sentence for people.
    pub detail: String,
}

/// The whole verdict, as `--output json` prints it: what was judged, the failures per check,
/// then the findings and the muted ones, walked from `F` as they are written.
#[derive(Debug, Clone)]
pub struct Verdict<F> {
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
    /// The findings (`findings` in JSON), and those an exception (from `--config.file`)
    /// mutes (`muted`): listed apart, not counted for the exit code.
    pub findings: F,
}

impl<F: Findings> Serialize for Verdict<F> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut v = s.serialize_struct("Verdict", 9)?;
        v.serialize_field("account_id", &self.account_id)?;
        v.serialize_field("evaluated_at", &self.evaluated_at)?;
        v.serialize_field("users", &self.users)?;
        v.serialize_field("root_in_report", &self.root_in_report)?;
        v.serialize_field("rows_skipped", &self.rows_skipped)?;
        v.serialize_field("skipped_rows", &self.skipped_rows)?;
        v.serialize_field("failures", &self.failures)?;
        v.serialize_field("findings", &Walk::new(|f| self.findings.each(None, f)))?;
        v.serialize_field("muted", &Walk::new(|f| self.findings.each_muted(f)))?;
        v.end()
    }
}

/// A sequence serialised as it is walked: `W` hands each item to the function it is given,
/// until that breaks.
pub(crate) struct Walk<T, W>(W, PhantomData<fn(&T)>);

impl<T, W: Fn(&mut dyn FnMut(&T) -> ControlFlow<()>)> Walk<T, W> {
    pub(crate) fn new(walk: W) -> Self {
        Walk(walk, PhantomData)
    }
}

impl<T: Serialize, W: Fn(&mut dyn FnMut(&T) -> ControlFlow<()>)> Serialize for Walk<T, W> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(None)?;
        try_walk(&self.0, |item| seq.serialize_element(item))?;
        seq.end()
    }
}

/// A muted finding.
#[derive(Debug, Clone, Default, Serialize)]
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

/// Appends how long before `now` `since` was: `3 days ago`.
fn push_days(out: &mut String, since: DateTime<Utc>, now: DateTime<Utc>) {
    match now.signed_duration_since(since).num_days() {
        i64::MIN..=-1 => out.push_str("in the future"),
        0 => out.push_str("less than a day ago"),
        1 => out.push_str("1 day ago"),
        d => {
            push_number(out, d.unsigned_abs());
            out.push_str(" days ago");
        }
    }
}

/// Appends `n` in decimal, as the exposition writer does (`itoa`).
fn push_number(out: &mut String, n: u64) {
    out.push_str(itoa::Buffer::new().format(n));
}

/// Writes `n` into `b` in decimal, right-aligned (the digits that do not fit are lost).
fn put_digits(b: &mut [u8], mut n: u64) {
    for d in b.iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

/// Appends `t`'s day, `%Y-%m-%d`.
fn push_date(out: &mut String, t: DateTime<Utc>) {
    if (0..=9999).contains(&t.year()) {
        let mut b = *b"0000-00-00";
        put_digits(&mut b[0..4], u64::from(t.year().unsigned_abs()));
        put_digits(&mut b[5..7], u64::from(t.month()));
        put_digits(&mut b[8..10], u64::from(t.day()));
        out.push_str(std::str::from_utf8(&b).expect("ASCII digits"));
    } else {
        out.push_str(&t.format("%Y-%m-%d").to_string());
    }
}

/// `t` as chrono serialises it (RFC 3339 with `Z`), when it is a whole second of the years
/// 0 to 9999 that reports carry; `None` for the rest, which chrono writes itself.
fn rfc3339_z(t: DateTime<Utc>) -> Option<[u8; 20]> {
    if t.nanosecond() != 0 || !(0..=9999).contains(&t.year()) {
        return None;
    }
    let mut b = *b"0000-00-00T00:00:00Z";
    put_digits(&mut b[0..4], u64::from(t.year().unsigned_abs()));
    for (at, n) in [
        (5, t.month()),
        (8, t.day()),
        (11, t.hour()),
        (14, t.minute()),
        (17, t.second()),
    ] {
        put_digits(&mut b[at..at + 2], u64::from(n));
    }
    Some(b)
}

/// `since` as chrono serialises it (RFC 3339 with `Z`, a fraction only when there is one).
fn serialize_since<S: Serializer>(since: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
    match since {
        Some(t) => match rfc3339_z(*t) {
            Some(b) => s.serialize_str(std::str::from_utf8(&b).expect("ASCII digits")),
            None => s.serialize_some(t),
        },
        None => s.serialize_none(),
    }
}

/// Appends a sentence saying why the finding of `row` failed.
fn describe_into(out: &mut String, f: &Finding, row: &UserRow, now: DateTime<Utc>) {
    let when = |out: &mut String, t: Option<DateTime<Utc>>| match t {
        Some(t) => {
            push_date(out, t);
            out.push_str(" (");
            push_days(out, t, now);
            out.push(')');
        }
        None => out.push_str("unknown"),
    };
    let key = f.key.unwrap_or(0);
    let with_key = |out: &mut String, before: &str, after: &str| {
        out.push_str(before);
        push_number(out, u64::from(key));
        out.push_str(after);
    };
    match f.check {
        Check::ConsoleUserWithoutMfa => out.push_str("console password enabled, no MFA device"),
        Check::UserWithoutMfa => out.push_str("no MFA device"),
        Check::RootWithoutMfa => out.push_str("the root user has no MFA device"),
        Check::RootAccessKey => match f.since {
            Some(_) => {
                with_key(out, "root access key ", " is active, created ");
                when(out, f.since);
            }
            None => with_key(
                out,
                "root access key ",
                " is active; the report gives no creation date, so its age cannot be judged",
            ),
        },
        Check::RootUsedRecently => {
            out.push_str("root last used ");
            when(out, f.since);
        }
        Check::AccessKeyNotRotated => {
            with_key(out, "access key ", " last rotated ");
            when(out, f.since);
        }
        Check::UnusedAccessKey => {
            let slot = &row.keys[usize::from(key.max(1)) - 1];
            match slot.last_used {
                Stamp::At(_) => with_key(out, "access key ", " last used "),
                _ => with_key(out, "access key ", " never used, created "),
            }
            when(out, f.since);
        }
        Check::UnusedPassword => {
            match row.password_last_used {
                Stamp::At(_) => out.push_str("password last used "),
                _ => out.push_str("password never used, set "),
            }
            when(out, f.since);
        }
        Check::TwoActiveAccessKeys => {
            let dateless: Vec<usize> = (1..=2)
                .filter(|&slot| row.keys[slot - 1].last_rotated.at().is_none())
                .collect();
            match dateless.as_slice() {
                [] => out.push_str("both access keys are active"),
                [one] => {
                    out.push_str("both access keys are active; key ");
                    push_number(out, *one as u64);
                    out.push_str(" has no date in the report, so its age cannot be judged");
                }
                _ => out.push_str("both access keys are active; neither has a date in the report, so their age cannot be judged"),
            }
        }
        Check::AccessKeyAtSetup => {
            out.push_str("console user with an active access key never used")
        }
        Check::PasswordNotRotated => {
            out.push_str("password last changed ");
            when(out, f.since);
        }
        Check::InactiveUser => match f.since {
            Some(t) => {
                out.push_str("no credential used since ");
                when(out, Some(t));
            }
            None => {
                out.push_str("no credential ever used; user created ");
                when(out, row.created.at());
            }
        },
    }
}

/// A verdict's findings, walked once for each pass an output makes over them: held
/// ([`Listed`]), or judged again from the report on each walk ([`Judged`]).
pub trait Findings {
    /// Hands `f` each finding that no exception mutes, of `check` or of every check, in
    /// report order (a user's findings in the order of the checks), until `f` breaks.
    fn each(&self, check: Option<Check>, f: &mut dyn FnMut(&FindingRecord) -> ControlFlow<()>);

    /// Hands `f` each muted finding, in report order, until `f` breaks.
    fn each_muted(&self, f: &mut dyn FnMut(&MutedRecord) -> ControlFlow<()>);
}

/// Findings held in memory.
#[derive(Debug, Clone, Default)]
pub struct Listed {
    /// The findings no exception mutes.
    pub findings: Vec<FindingRecord>,
    /// The muted ones.
    pub muted: Vec<MutedRecord>,
}

impl Findings for Listed {
    fn each(&self, check: Option<Check>, f: &mut dyn FnMut(&FindingRecord) -> ControlFlow<()>) {
        let wanted = |r: &&FindingRecord| check.is_none_or(|c| c.name() == r.check);
        let _ = self.findings.iter().filter(wanted).try_for_each(f);
    }

    fn each_muted(&self, f: &mut dyn FnMut(&MutedRecord) -> ControlFlow<()>) {
        let _ = self.muted.iter().try_for_each(f);
    }
}

/// The findings of a scanned report, judged again on each walk, one row at a time.
#[derive(Debug, Clone, Copy)]
pub struct Judged<'a> {
    /// The report.
    pub scan: &'a Scan<'a>,
    /// What it is judged with.
    pub judging: Judging<'a>,
}

/// The threads that read a report's blocks ([`relay`]). Two: with the calling thread, which
/// does what must be done in order, they keep two cores busy; more would take turns.
const READERS: usize = 2;

/// Runs `fill` for blocks `0..blocks`, block `k` on reading thread `k % READERS`, and
/// `read` on this thread for each block in order, at most a few blocks behind the readers;
/// `read` breaking stops them all. One block is filled and read here, without threads.
/// A batch goes back to the thread that filled it, to be filled again (emptied by `fill`,
/// on the thread that made its contents), so that its room is allocated once.
fn relay<B: Default + Send>(
    blocks: usize,
    fill: impl Fn(usize, &mut B) + Sync,
    mut read: impl FnMut(usize, &mut B) -> ControlFlow<()>,
) {
    if blocks <= 1 {
        let mut batch = B::default();
        for k in 0..blocks {
            fill(k, &mut batch);
            let _ = read(k, &mut batch);
        }
        return;
    }
    std::thread::scope(|s| {
        let mut filled = Vec::new();
        let mut back = Vec::new();
        for t in 0..READERS {
            let (full, batches) = std::sync::mpsc::sync_channel::<B>(2);
            let (done, used) = std::sync::mpsc::channel::<B>();
            filled.push(batches);
            back.push(done);
            let fill = &fill;
            s.spawn(move || {
                for k in (t..blocks).step_by(READERS) {
                    let mut batch = used.try_recv().unwrap_or_default();
                    fill(k, &mut batch);
                    if full.send(batch).is_err() {
                        return; // the reading stopped early
                    }
                }
            });
        }
        for k in 0..blocks {
            let Ok(mut batch) = filled[k % READERS].recv() else {
                return;
            };
            if read(k, &mut batch).is_break() {
                return;
            }
            let _ = back[k % READERS].send(batch);
        }
    });
}

/// A record as a reading thread passes it on: a row judged there when it can be
/// ([`Judging::apart`]), else the record itself.
enum Scanned {
    Record(Record),
    Apart(Apart),
}

/// A block of a report's records as one reader read it, and where it stopped
/// ([`Blocks::read`]).
#[derive(Default)]
struct ScannedBlock {
    records: Vec<Scanned>,
    ended: Option<RowAt>,
}

/// Records made on a reading thread: the first `len` of `items`, whose room (and their
/// strings' room) is kept to be filled again.
#[derive(Default)]
struct Made<T> {
    items: Vec<T>,
    len: usize,
}

impl<T: Default> Made<T> {
    /// The next record to fill, kept when `fill` says so.
    fn make(&mut self, fill: impl FnOnce(&mut T) -> bool) {
        if self.len == self.items.len() {
            self.items.push(T::default());
        }
        if fill(&mut self.items[self.len]) {
            self.len += 1;
        }
    }
}

/// How many kept rows a reading thread reads and judges at a time.
const KEPT_BLOCK: usize = 1024;

/// How many bytes of the report a reading thread scans at a time.
const SCAN_BLOCK: usize = 256 * 1024;

impl Judged<'_> {
    /// Reads and judges the rows in blocks on the reading threads ([`relay`]), where `make`
    /// turns each finding (with its row and the exception that mutes it, if one does) into
    /// a record, or passes it over; hands `f` the records here, in report order, until `f`
    /// breaks.
    fn walk<T: Default + Send>(
        &self,
        make: impl Fn(&mut T, &UserRow, &Finding, Option<usize>) -> bool + Sync,
        f: &mut dyn FnMut(&T) -> ControlFlow<()>,
    ) {
        let n = self.scan.row_count();
        let account = self.scan.account_id.as_deref();
        let fill = |k: usize, batch: &mut Made<T>| {
            batch.len = 0;
            let rows = k * KEPT_BLOCK..n.min((k + 1) * KEPT_BLOCK);
            for (i, row) in self.scan.rows_in(rows) {
                self.judging.findings(i, &row, account, &mut |x, muted| {
                    batch.make(|r| make(r, &row, x, muted));
                });
            }
        };
        relay(n.div_ceil(KEPT_BLOCK), fill, |_, batch| {
            batch.items[..batch.len].iter().try_for_each(&mut *f)
        });
    }
}

impl Findings for Judged<'_> {
    fn each(&self, check: Option<Check>, f: &mut dyn FnMut(&FindingRecord) -> ControlFlow<()>) {
        let controls: Vec<String> = Check::ALL.iter().map(|c| c.controls()).collect();
        let make = |r: &mut FindingRecord, row: &UserRow, x: &Finding, muted: Option<usize>| {
            if muted.is_some() || check.is_some_and(|c| c != x.check) {
                return false;
            }
            r.check = x.check.name();
            r.severity = x.check.entry().severity.as_str();
            refill(&mut r.controls, &controls[x.check as usize]);
            refill(&mut r.user, &row.user);
            refill(&mut r.arn, &row.arn);
            r.key = x.key;
            r.since = x.since;
            r.detail.clear();
            describe_into(&mut r.detail, x, row, self.judging.now);
            true
        };
        self.walk(make, f);
    }

    fn each_muted(&self, f: &mut dyn FnMut(&MutedRecord) -> ControlFlow<()>) {
        let exceptions = self.judging.exceptions;
        if exceptions.is_empty() {
            return;
        }
        let make = |m: &mut MutedRecord, row: &UserRow, x: &Finding, muted: Option<usize>| {
            let Some(e) = muted.map(|i| &exceptions[i]) else {
                return false;
            };
            m.check = x.check.name();
            refill(&mut m.user, &row.user);
            m.key = x.key;
            refill(&mut m.exception, &e.id);
            refill(&mut m.reason, &e.reason);
            refill(&mut m.owner, &e.owner);
            m.expires = e.expires;
            true
        };
        self.walk(make, f);
    }
}

/// Scans `input` judging as it reads ([`Scan::judged`]): in blocks on the reading threads
/// (`relay`, [`Blocks`]), which also judge the rows when they can, the rows taken in order
/// here. When the blocks do not meet (a
/// quoted line break across a split), by one reader.
pub fn scan<'a>(input: &'a [u8], judging: Judging<'_>) -> Result<(Scan<'a>, Counts), ReportError> {
    let (mut scanning, rows) = Scan::start(input, Some(judging))?;
    let blocks = Blocks::new(&rows, SCAN_BLOCK);
    if blocks.len() == 1 {
        rows.for_each(|r| scanning.push(r));
    } else {
        let mut lines = blocks.lines_before();
        let mut misread = false;
        let keys = scanning.keys();
        let fill = |k: usize, block: &mut ScannedBlock| {
            block.records.clear();
            block.ended = blocks.read(k, |r| {
                block.records.push(match r {
                    Record::User(at, row) => match judging.apart(&keys, at, &row) {
                        Some(apart) => Scanned::Apart(apart),
                        None => Scanned::Record(Record::User(at, row)),
                    },
                    r => Scanned::Record(r),
                });
            });
        };
        relay(blocks.len(), fill, |k, block| {
            let Ok(lines) = blocks.join(k, block.ended, &mut lines) else {
                misread = true;
                return ControlFlow::Break(());
            };
            for r in block.records.drain(..) {
                match r {
                    Scanned::Record(mut r) => {
                        r.add_lines(lines);
                        scanning.push(r);
                    }
                    Scanned::Apart(mut apart) => {
                        apart.at.line += lines;
                        scanning.push_apart(apart);
                    }
                }
            }
            ControlFlow::Continue(())
        });
        if misread {
            return Scan::judged(input, judging);
        }
    }
    let (scan, counts) = scanning.finish();
    Ok((scan, counts.expect("judged as read")))
}

/// Replaces `s` with `with`, in the room `s` has.
fn refill(s: &mut String, with: &str) {
    s.clear();
    s.push_str(with);
}

/// The verdict on a scanned report whose findings were counted as `counts` ([`Scan::judged`]);
/// they are judged again as they are written.
pub fn verdict<'a>(judged: Judged<'a>, counts: &Counts) -> Verdict<Judged<'a>> {
    let scan = judged.scan;
    Verdict {
        account_id: scan.account_id.clone(),
        evaluated_at: judged.judging.now,
        users: scan.users,
        root_in_report: scan.root_in_report,
        rows_skipped: scan.skipped.len(),
        skipped_rows: scan
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
                // The root checks are judged only when the report has a root row.
                failures: (scan.root_in_report || !c.is_root()).then(|| counts.failing[c as usize]),
            })
            .collect(),
        findings: judged,
    }
}

/// Why rows were skipped, most common first: `5 with the wrong number of fields, 1 with an
/// invalid mfa_active`.
pub fn skip_summary(skipped: &[SkippedRow]) -> String {
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for s in skipped {
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

/// The warnings for a report's skipped rows: [`skipped_warnings`].
pub fn skip_warnings(report: &CredentialReport, name: &str) -> Vec<String> {
    skipped_warnings(&report.skipped, name)
}

/// The warnings for skipped rows: the first [`NAMED_SKIPPED_ROWS`] by line, then one line
/// with the rest, so that a report of a million bad rows is answered in a few lines.
pub fn skipped_warnings(skipped: &[SkippedRow], name: &str) -> Vec<String> {
    let mut out: Vec<String> = skipped
        .iter()
        .take(NAMED_SKIPPED_ROWS)
        .map(|s| format!("{name}: line {} skipped: {}", s.line, s.reason))
        .collect();
    let rest = skipped.len().saturating_sub(NAMED_SKIPPED_ROWS);
    if rest > 0 {
        out.push(format!(
            "{name}: {rest} more row(s) skipped, {} in all",
            skipped.len()
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
/// longer than the line. [`Layout`] does it a row at a time.
pub(crate) fn layout(
    header: &[&str],
    rows: &[Vec<String>],
    right: &[bool],
    width: usize,
    min_last: usize,
    indent: usize,
) -> String {
    let n = header.len();
    let mut widest = vec![0; n - 1];
    for r in rows {
        for (w, cell) in widest.iter_mut().zip(&r[..n - 1]) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let layout = Layout::new(header, &widest, right, width, min_last, indent);
    let mut out = String::new();
    layout.header(&mut out);
    for r in rows {
        let r: Vec<&str> = r.iter().map(String::as_str).collect();
        layout.row(&mut out, &r);
    }
    out
}

/// [`layout`] a row at a time, for rows that are not held: the widths are known first (the
/// widest cell of each column but the last), the rows come after.
pub(crate) struct Layout<'h> {
    header: &'h [&'h str],
    widths: Vec<usize>,
    right: &'h [bool],
    width: usize,
    indent: usize,
    lead: usize,
    beside: bool,
}

impl<'h> Layout<'h> {
    /// The layout of rows whose cells but the last are at most `widest` characters wide.
    pub(crate) fn new(
        header: &'h [&'h str],
        widest: &[usize],
        right: &'h [bool],
        width: usize,
        min_last: usize,
        indent: usize,
    ) -> Layout<'h> {
        let n = header.len();
        let widths: Vec<usize> = header[..n - 1]
            .iter()
            .zip(widest)
            .map(|(h, w)| h.chars().count().max(*w))
            .collect();
        let lead: usize = widths.iter().map(|w| w + 2).sum();
        Layout {
            header,
            widths,
            right,
            width,
            indent: indent.min(width / 2),
            lead,
            beside: width >= lead + min_last,
        }
    }

    /// The cells but the last, aligned.
    fn cells(&self, r: &[&str]) -> String {
        let mut line = String::new();
        for (i, cell) in r[..self.widths.len()].iter().enumerate() {
            let pad = self.widths[i].saturating_sub(cell.chars().count());
            if self.right.get(i).copied().unwrap_or(false) {
                line.push_str(&" ".repeat(pad));
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.push_str(&" ".repeat(pad));
            }
            line.push_str("  ");
        }
        line
    }

    /// Appends the header's lines to `out`.
    pub(crate) fn header(&self, out: &mut String) {
        let mut push = |line: &str| {
            out.push_str(line.trim_end());
            out.push('\n');
        };
        let last = self.header[self.widths.len()];
        let header_line = self.cells(self.header);
        if self.beside {
            push(&format!("{header_line}{last}"));
        } else {
            push_fitted(&mut push, &header_line, self.width);
            push(&format!("{}{last}", " ".repeat(self.indent)));
        }
    }

    /// Appends the lines of row `r` to `out`.
    pub(crate) fn row(&self, out: &mut String, r: &[&str]) {
        let mut push = |line: &str| {
            out.push_str(line.trim_end());
            out.push('\n');
        };
        let last = r[self.widths.len()];
        let front = self.cells(r);
        if self.beside {
            let text = wrap(last, self.width - self.lead);
            push(&format!("{front}{}", text[0]));
            for l in &text[1..] {
                push(&format!("{}{l}", " ".repeat(self.lead)));
            }
        } else {
            push_fitted(&mut push, &front, self.width);
            for l in wrap(last, self.width - self.indent) {
                push(&format!("{}{l}", " ".repeat(self.indent)));
            }
        }
    }
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

/// The summary: how many findings (`findings`, unmuted) for how many of the principals judged
/// (`failing` of the IAM users, and root when the report has its row: `3 of 3 principal(s)
/// (2 user(s) and root)`), the account and the rows skipped.
pub fn summary<F>(v: &Verdict<F>, findings: usize, failing: usize) -> String {
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
    let found = if findings == 0 {
        format!("No findings for {judged}")
    } else {
        format!("{findings} finding(s) for {failing} of {judged}")
    };
    match v.rows_skipped {
        0 => format!("{found} in account {account}."),
        n => format!("{found} in account {account}; {n} row(s) skipped, their users not judged."),
    }
}

/// Hands `f` each item `walk` walks, stopping the walk at `f`'s first error, which it returns.
fn try_walk<T, E>(
    walk: impl FnOnce(&mut dyn FnMut(&T) -> ControlFlow<()>),
    mut f: impl FnMut(&T) -> Result<(), E>,
) -> Result<(), E> {
    let mut failed = None;
    walk(&mut |item| match f(item) {
        Ok(()) => ControlFlow::Continue(()),
        Err(e) => {
            failed = Some(e);
            ControlFlow::Break(())
        }
    });
    failed.map_or(Ok(()), Err)
}

/// Formats the verdict for people, fitted to `width` columns: the findings (severity, check,
/// user, detail; most severe first), failures per check with its controls, the remediation
/// of each failing check, the summary, the muted findings and whether root was judged.
///
/// One walk finds the widest cells and the failing users; then the findings are written a
/// check at a time, most severe first (a walk for each failing check).
pub fn table<F: Findings>(v: &Verdict<F>, width: usize, out: &mut dyn Write) -> io::Result<()> {
    let width = width.max(MIN_WIDTH);
    let mut text = String::new();
    let para = |out: &mut String, text: &str| {
        for l in wrap(text, width) {
            out.push_str(&l);
            out.push('\n');
        }
    };
    let mut findings = 0;
    let mut widest = [0; 3];
    let mut users: HashSet<String> = HashSet::new();
    let mut checks: Vec<Check> = Vec::new();
    v.findings.each(None, &mut |f| {
        findings += 1;
        for (w, cell) in widest.iter_mut().zip([f.severity, f.check, &f.user]) {
            *w = (*w).max(cell.chars().count());
        }
        if !users.contains(&f.user) {
            users.insert(f.user.clone());
        }
        if let Some(c) = Check::from_name(f.check).filter(|c| !checks.contains(c)) {
            checks.push(c);
        }
        ControlFlow::Continue(())
    });
    if findings > 0 {
        let header = ["SEVERITY", "CHECK", "USER", "DETAIL"];
        let findings_layout = Layout::new(
            &header,
            &widest,
            &[],
            width,
            MIN_DETAIL,
            "SEVERITY".len() + 2,
        );
        findings_layout.header(&mut text);
        out.write_all(text.as_bytes())?;
        // Most severe first; within a check, in report order.
        checks.sort_by_key(|&c| (c.entry().severity as usize, c as usize));
        for &c in &checks {
            try_walk(
                |f| v.findings.each(Some(c), f),
                |f| {
                    text.clear();
                    findings_layout.row(&mut text, &[f.severity, f.check, &f.user, &f.detail]);
                    out.write_all(text.as_bytes())
                },
            )?;
        }
        text.clear();
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
        text.push('\n');
        text.push_str(&layout(
            &["CHECK", "SEVERITY", "FAILING", "CONTROLS"],
            &rows,
            &[false, false, true],
            width,
            12,
            4,
        ));
        text.push('\n');
        para(
            &mut text,
            "To fix (USER, KEY_ID and the like are placeholders):",
        );
        for (c, _) in &failing {
            text.push_str(&format!("{}:\n", c.name()));
            for l in wrap(c.entry().remediation, width - 4) {
                text.push_str(&format!("    {l}\n"));
            }
        }
        text.push('\n');
    }
    para(&mut text, &summary(v, findings, users.len()));
    drop(users);
    let mut muted = 0;
    v.findings.each_muted(&mut |_| {
        muted += 1;
        ControlFlow::Continue(())
    });
    if muted > 0 {
        para(
            &mut text,
            &format!("{muted} finding(s) muted by exceptions, not counted:"),
        );
        out.write_all(text.as_bytes())?;
        try_walk(
            |f| v.findings.each_muted(f),
            |m| {
                text.clear();
                let key = m.key.map(|k| format!(" key {k}")).unwrap_or_default();
                let line = format!(
                    "{} {}{}: {} (owner {}, until {}): {}",
                    m.check, m.user, key, m.exception, m.owner, m.expires, m.reason
                );
                for (i, l) in wrap(&line, width - 4).iter().enumerate() {
                    let indent = if i == 0 { "  " } else { "    " };
                    text.push_str(&format!("{indent}{l}\n"));
                }
                out.write_all(text.as_bytes())
            },
        )?;
        text.clear();
    }
    if !v.root_in_report {
        let root_checks: Vec<&str> = Check::ALL
            .iter()
            .filter(|c| c.is_root())
            .map(|c| c.name())
            .collect();
        para(
            &mut text,
            &format!(
                "root not in report, not judged: {}.",
                root_checks.join(", ")
            ),
        );
    }
    out.write_all(text.as_bytes())
}

/// Writes the findings as CSV with a header row, a finding at a time.
pub fn csv<F: Findings>(v: &Verdict<F>, out: &mut dyn Write) -> io::Result<()> {
    let mut w = ::csv::Writer::from_writer(out);
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
    ])?;
    let account = v.account_id.as_deref().unwrap_or("");
    try_walk(
        |f| v.findings.each(None, f),
        |f| {
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
        },
    )?;
    w.flush()
}

/// Writes the verdict as JSON: byte for byte what `serde_json::to_writer_pretty` writes for
/// it (its [`Serialize`]), with a final newline, a finding at a time. The findings, the bulk
/// of it, are written directly rather than through serde's generic pretty printer.
pub fn json<F: Findings>(v: &Verdict<F>, out: &mut dyn Write) -> io::Result<()> {
    let mut b: Vec<u8> = Vec::with_capacity(JSON_BLOCK + 4096);
    b.extend_from_slice(b"{\n  \"account_id\": ");
    serde_json::to_writer(&mut b, &v.account_id)?;
    b.extend_from_slice(b",\n  \"evaluated_at\": ");
    serde_json::to_writer(&mut b, &v.evaluated_at)?;
    b.extend_from_slice(b",\n  \"users\": ");
    serde_json::to_writer(&mut b, &v.users)?;
    b.extend_from_slice(b",\n  \"root_in_report\": ");
    serde_json::to_writer(&mut b, &v.root_in_report)?;
    b.extend_from_slice(b",\n  \"rows_skipped\": ");
    serde_json::to_writer(&mut b, &v.rows_skipped)?;
    b.extend_from_slice(b",\n  \"skipped_rows\": ");
    pretty_at(&mut b, &v.skipped_rows, 1)?;
    b.extend_from_slice(b",\n  \"failures\": ");
    pretty_at(&mut b, &v.failures, 1)?;
    b.extend_from_slice(b",\n  \"findings\": [");
    out.write_all(&b)?;
    b.clear();
    // A finding up to its user, for each check with its own severity and controls.
    let head = |b: &mut Vec<u8>, check: &str, severity: &str, controls: &str| {
        b.extend_from_slice(b"\n    {\n      \"check\": ");
        json_str(b, check);
        b.extend_from_slice(b",\n      \"severity\": ");
        json_str(b, severity);
        b.extend_from_slice(b",\n      \"controls\": ");
        json_str(b, controls);
        b.extend_from_slice(b",\n      \"user\": ");
    };
    let heads: Vec<(&str, &str, String, Vec<u8>)> = Check::ALL
        .iter()
        .map(|c| {
            let (severity, controls) = (c.entry().severity.as_str(), c.controls());
            let mut text = Vec::new();
            head(&mut text, c.name(), severity, &controls);
            (c.name(), severity, controls, text)
        })
        .collect();
    let mut any = false;
    try_walk(
        |f| v.findings.each(None, f),
        |f| -> io::Result<()> {
            if any {
                b.push(b',');
            }
            any = true;
            let known = heads.iter().find(|(check, severity, controls, _)| {
                *check == f.check && *severity == f.severity && *controls == f.controls
            });
            match known {
                Some((.., text)) => b.extend_from_slice(text),
                None => head(&mut b, f.check, f.severity, &f.controls),
            }
            json_str(&mut b, &f.user);
            b.extend_from_slice(b",\n      \"arn\": ");
            json_str(&mut b, &f.arn);
            b.extend_from_slice(b",\n      \"key\": ");
            match f.key {
                Some(k) if k < 10 => b.push(b'0' + k),
                Some(k) => b.extend_from_slice(k.to_string().as_bytes()),
                None => b.extend_from_slice(b"null"),
            }
            b.extend_from_slice(b",\n      \"since\": ");
            match f.since.map(|t| (t, rfc3339_z(t))) {
                None => b.extend_from_slice(b"null"),
                Some((_, Some(z))) => {
                    b.push(b'"');
                    b.extend_from_slice(&z);
                    b.push(b'"');
                }
                Some((t, None)) => serde_json::to_writer(&mut b, &t).expect("writing to memory"),
            }
            b.extend_from_slice(b",\n      \"detail\": ");
            json_str(&mut b, &f.detail);
            b.extend_from_slice(b"\n    }");
            // Written in blocks at least as large as the writer's buffer, which it then passes
            // on without copying.
            if b.len() >= JSON_BLOCK {
                out.write_all(&b)?;
                b.clear();
            }
            Ok(())
        },
    )?;
    b.extend_from_slice(if any { b"\n  ]" } else { b"]" });
    b.extend_from_slice(b",\n  \"muted\": [");
    out.write_all(&b)?;
    let mut any = false;
    try_walk(
        |f| v.findings.each_muted(f),
        |m| {
            b.clear();
            b.extend_from_slice(if any { b",\n    " } else { b"\n    " });
            any = true;
            pretty_at(&mut b, m, 2)?;
            out.write_all(&b)
        },
    )?;
    out.write_all(if any { b"\n  ]\n}\n" } else { b"]\n}\n" })
}

/// How much of the JSON [`json`] gathers before writing it: the size of `run`'s buffered
/// writer.
const JSON_BLOCK: usize = 64 * 1024;

/// Appends `value` as serde_json's pretty printer writes it `depth` levels deep: its own
/// pretty form with every line after the first indented (a JSON string holds no newline).
fn pretty_at(b: &mut Vec<u8>, value: &impl Serialize, depth: usize) -> serde_json::Result<()> {
    let text = serde_json::to_vec_pretty(value)?;
    for (i, line) in text.split(|&c| c == b'\n').enumerate() {
        if i > 0 {
            b.push(b'\n');
            b.resize(b.len() + 2 * depth, b' ');
        }
        b.extend_from_slice(line);
    }
    Ok(())
}

/// Appends `s` as a JSON string, escaped as serde_json escapes it.
fn json_str(b: &mut Vec<u8>, s: &str) {
    if json_plain(s.as_bytes()) {
        b.push(b'"');
        b.extend_from_slice(s.as_bytes());
        b.push(b'"');
    } else {
        serde_json::to_writer(&mut *b, s).expect("writing to memory");
    }
}

/// Whether `s` holds no byte that JSON escapes (`"`, `\` or a control character below 0x20).
/// Eight bytes at a time in one word, because this crate is built for size
/// (`[profile.release]`), where a byte loop is not vectorised; every user, ARN and detail of
/// `check --output json` passes here.
fn json_plain(s: &[u8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    // A byte's high bit is set where it is below n (n at most 0x80): whether any is, is exact.
    let below = |w: u64, n: u8| w.wrapping_sub(ONES * u64::from(n)) & !w & HIGHS;
    let hit = |w: u64| {
        below(w, 0x20)
            | below(w ^ (ONES * u64::from(b'"')), 1)
            | below(w ^ (ONES * u64::from(b'\\')), 1)
    };
    let mut words = s.chunks_exact(8);
    if words
        .by_ref()
        .any(|c| hit(u64::from_ne_bytes(c.try_into().expect("8 bytes"))) != 0)
    {
        return false;
    }
    words
        .remainder()
        .iter()
        .all(|&c| c >= 0x20 && c != b'"' && c != b'\\')
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

/// Reads a file whole, as `std::fs::read` does; a large regular file in two halves at once,
/// since copying it in and faulting its pages in take as long as a good part of judging it.
fn read_file(path: &str) -> io::Result<Vec<u8>> {
    #[cfg(unix)]
    if let Some(bytes) = read_halves(path) {
        return Ok(bytes);
    }
    std::fs::read(path)
}

/// [`read_file`]'s two halves at once; `None` for a small or special file, or when the file
/// changed while read (then it is read again the ordinary way).
#[cfg(unix)]
fn read_halves(path: &str) -> Option<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let file = std::fs::File::open(path).ok()?;
    let meta = file.metadata().ok()?;
    let len = usize::try_from(meta.len()).ok()?;
    if !meta.is_file() || len < 1 << 20 {
        return None;
    }
    let mut bytes = vec![0u8; len];
    let (first, second) = bytes.split_at_mut(len / 2);
    let read = std::thread::scope(|s| {
        let other = s.spawn(|| file.read_exact_at(second, (len / 2) as u64));
        let this = file.read_exact_at(first, 0);
        this.and(
            other
                .join()
                .unwrap_or_else(|_| Err(io::ErrorKind::Other.into())),
        )
    });
    // Nothing more: a file that grew while read is read again.
    let mut probe = [0u8; 1];
    let done = matches!(file.read_at(&mut probe, len as u64), Ok(0));
    (read.is_ok() && done).then_some(bytes)
}

/// Runs `check`: 0 when clean, 1 when a check fails, 2 when the report cannot be read or the
/// verdict is incomplete (rows skipped, unless `--allow-skipped-rows`; no row read at all).
pub fn run(args: &CheckArgs, cli: &Cli) -> ExitCode {
    let now = args.at.unwrap_or_else(Utc::now);
    let say = Say::new(cli);
    let fail = |message: &str| {
        say.error(message);
        ExitCode::from(2)
    };
    let (thresholds, exceptions) = match judging(args, cli, say, now) {
        Ok(v) => v,
        Err(e) => return fail(&format!("{e:#}")),
    };
    let (name, input) = if args.file == "-" {
        if std::io::stdin().is_terminal() {
            eprintln!("{}", stdin_notice());
        }
        let mut buf = Vec::new();
        let read = std::io::stdin().read_to_end(&mut buf).map(|_| buf);
        ("standard input", read)
    } else {
        (args.file.as_str(), read_file(&args.file))
    };
    let bytes = match input {
        Ok(b) => b,
        Err(e) => return fail(&format!("reading {name}: {e}")),
    };
    let judging = Judging {
        now,
        thresholds: &thresholds,
        exceptions: &exceptions,
        account_name: None,
    };
    let (scan, counts) = match scan(&bytes, judging) {
        Ok(r) => r,
        Err(e) => return fail(&format!("{name}: {e}")),
    };
    for w in skipped_warnings(&scan.skipped, name) {
        say.warn(&w);
    }
    let v = verdict(
        Judged {
            scan: &scan,
            judging,
        },
        &counts,
    );
    let terminal = std::io::stdout().is_terminal();
    let mut out = io::BufWriter::with_capacity(JSON_BLOCK, std::io::stdout().lock());
    let written = match args.output {
        CheckFormat::Table => {
            let columns = std::env::var("COLUMNS").ok();
            let terminal = terminal
                .then(|| terminal_size::terminal_size().map(|(w, _)| usize::from(w.0)))
                .flatten();
            table(&v, table_width(columns.as_deref(), terminal), &mut out)
        }
        CheckFormat::Json => json(&v, &mut out),
        CheckFormat::Csv => csv(&v, &mut out),
        CheckFormat::Asff => {
            let region = args
                .aws_region
                .as_deref()
                .or(cli.serve.aws_region.as_deref())
                .unwrap_or(asff::DEFAULT_REGION);
            match asff::write(&v, region, &mut out) {
                Ok(()) => Ok(()),
                Err(asff::AsffError::Io(e)) => Err(e),
                Err(e) => return fail(&format!("{name}: {e}")),
            }
        }
    };
    if written.and_then(|()| out.flush()).is_err() {
        return ExitCode::from(2);
    }
    drop(out);
    if let Some(why) = scan.doubt(None) {
        return fail(&format!("{name}: {why}; nothing was judged"));
    }
    if !scan.skipped.is_empty() {
        let summary = skip_summary(&scan.skipped);
        if !args.allow_skipped_rows {
            return fail(&format!(
                "{name}: the verdict is incomplete: {} row(s) skipped ({summary}), and the users in them are not judged; --allow-skipped-rows accepts it",
                scan.skipped.len()
            ));
        }
        say.warn(&format!(
            "{name}: {} row(s) skipped ({summary}); their users are not judged",
            scan.skipped.len()
        ));
    }
    if counts.total() == 0 {
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

    fn verdict(users: usize, root: bool, findings: Vec<FindingRecord>) -> Verdict<Listed> {
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
            findings: Listed {
                findings,
                muted: vec![],
            },
        }
    }

    /// The summary of a verdict held in memory.
    fn summary_of(v: &Verdict<Listed>) -> String {
        let failing: std::collections::BTreeSet<&str> = v
            .findings
            .findings
            .iter()
            .map(|f| f.user.as_str())
            .collect();
        summary(v, v.findings.findings.len(), failing.len())
    }

    fn table_text(v: &Verdict<Listed>, width: usize) -> String {
        let mut out = Vec::new();
        table(v, width, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn json_strings_are_escaped_as_serde_escapes_them_at_every_place_in_a_word() {
        let specials = ['"', '\\', '\n', '\t', '\u{0}', '\u{1f}'];
        let ordinary = [' ', '~', '\u{7f}', '\u{e9}', '\u{1f600}'];
        for len in 0..20 {
            for at in 0..len {
                for c in specials.iter().chain(&ordinary) {
                    let s: String = (0..len).map(|i| if i == at { *c } else { 'a' }).collect();
                    let mut b = Vec::new();
                    json_str(&mut b, &s);
                    assert_eq!(
                        String::from_utf8(b).unwrap(),
                        serde_json::to_string(&s).unwrap(),
                        "{s:?}"
                    );
                    assert_eq!(json_plain(s.as_bytes()), !specials.contains(c), "{s:?}");
                }
            }
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
            summary_of(&v),
            "1 finding(s) for 1 of 1 principal(s) (0 user(s) and root) in account 123456789012."
        );
        let bob = record(Check::UserWithoutMfa, "bob", "no MFA device");
        let v = verdict(2, true, vec![root, bob.clone(), bob]);
        assert!(
            summary_of(&v).starts_with("3 finding(s) for 2 of 3 principal(s) (2 user(s) and root)")
        );
        let v = verdict(2, false, vec![]);
        assert_eq!(
            summary_of(&v),
            "No findings for 2 user(s) (root not in report) in account 123456789012."
        );
    }

    /// A verdict whose findings are walked serialises as one that holds them in vectors:
    /// what `--output json` printed before it streamed.
    #[test]
    fn a_walked_verdict_serialises_as_a_held_one() {
        #[derive(Serialize)]
        struct Held<'a> {
            account_id: &'a Option<String>,
            evaluated_at: DateTime<Utc>,
            users: usize,
            root_in_report: bool,
            rows_skipped: usize,
            skipped_rows: &'a [SkippedRecord],
            failures: &'a [CheckCount],
            findings: &'a [FindingRecord],
            muted: &'a [MutedRecord],
        }
        let mut bob = record(
            Check::AccessKeyNotRotated,
            "bob",
            "access key 1 last rotated",
        );
        bob.key = Some(1);
        bob.since = Some(Utc.with_ymd_and_hms(2024, 2, 1, 10, 11, 12).unwrap());
        let muted = MutedRecord {
            check: Check::UserWithoutMfa.name(),
            user: "carol".to_owned(),
            key: None,
            exception: "carol-mfa".to_owned(),
            reason: "on \"order\"\n".to_owned(),
            owner: "security".to_owned(),
            expires: "2027-01-15".parse().unwrap(),
        };
        // Values serde escapes, and times chrono writes with a fraction or a long year.
        let mut odd = record(
            Check::RootUsedRecently,
            "o\"d\\d\u{e9}",
            "line\nbreak\ttab \u{1f} end",
        );
        odd.since = Some(
            Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap()
                + chrono::TimeDelta::milliseconds(250),
        );
        let mut far = record(Check::PasswordNotRotated, "far", "far");
        far.since = Some(Utc.with_ymd_and_hms(10000, 1, 1, 0, 0, 0).unwrap());
        far.key = Some(2);
        let bare = verdict(2, false, vec![]);
        let mut full = verdict(
            2,
            true,
            vec![
                bob,
                record(Check::UserWithoutMfa, "dave", "no MFA device"),
                odd,
                far,
            ],
        );
        full.findings.muted.push(muted);
        full.rows_skipped = 1;
        full.skipped_rows.push(SkippedRecord {
            line: 4,
            reason: "2 fields where the header has 23".to_owned(),
        });
        for v in [bare, full] {
            let held = Held {
                account_id: &v.account_id,
                evaluated_at: v.evaluated_at,
                users: v.users,
                root_in_report: v.root_in_report,
                rows_skipped: v.rows_skipped,
                skipped_rows: &v.skipped_rows,
                failures: &v.failures,
                findings: &v.findings.findings,
                muted: &v.findings.muted,
            };
            assert_eq!(
                serde_json::to_string_pretty(&v).unwrap(),
                serde_json::to_string_pretty(&held).unwrap()
            );
            let mut written = Vec::new();
            json(&v, &mut written).unwrap();
            assert_eq!(
                String::from_utf8(written).unwrap(),
                serde_json::to_string_pretty(&held).unwrap() + "\n"
            );
        }
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
        v.findings.muted.push(MutedRecord {
            check: Check::ConsoleUserWithoutMfa.name(),
            user: "break-glass".to_owned(),
            key: None,
            exception: "break-glass-mfa".to_owned(),
            reason: "Break-glass user; the hardware token is in the safe (SEC-123)".to_owned(),
            owner: "security-team".to_owned(),
            expires: "2027-01-15".parse().unwrap(),
        });
        for width in [40, 60, 80, 100, 132] {
            let t = table_text(&v, width);
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
        let empty = table_text(&verdict(3, true, vec![]), 80);
        assert_eq!(
            empty,
            "No findings for 4 principal(s) (3 user(s) and root) in account 123456789012.\n"
        );
    }
}
