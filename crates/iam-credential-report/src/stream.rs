//! Judging a report of any size without holding it: one pass ([`Scan::new`],
//! [`Scan::judged`]) finds where each user's row is, by the duplicates rule of [`parse`] (the
//! last row of an ARN, at the place of its first), what a verdict says before its findings
//! (the account, the users and root, the skipped rows) and, judging as it reads, the failures
//! per check; each later walk ([`Scan::rows`], [`Scan::judge`]) reads the rows again and
//! hands out the users, or their findings, one at a time, in the order and with the rows
//! `parse` gives, for the caller to write as it goes. What is held is the input and a few
//! words per user, not the parsed rows nor their findings.
//!
//! The pass can be spread over threads without this module running any: [`Scan::start`]
//! gives a [`Scanning`] to feed in report order, [`Blocks`] splits the report into blocks
//! that readers of their own read (and that say when they did not meet where one reader
//! would), and [`Judging::apart`] judges a row away from the others when the verdict cannot
//! depend on the rows before it; [`Scan::rows_in`] reads a range of the users again.
//!
//! Pure: bytes, `now` and thresholds in; rows, findings and counts out; no I/O and no clock.
//! Built on the parser's row reader ([`Rows`]) and duplicates rule ([`LastRowWins`]) and on
//! the per-row judge ([`judge_row`]), so it cannot read or judge a report differently.
//!
//! [`parse`]: crate::report::parse

use crate::exceptions::{Account, Exception};
use crate::judge::{judge_row, Check, Finding, Thresholds};
use crate::report::{
    AccountOf, LastRowWins, Record, ReportError, RowAt, RowReader, Rows, SkippedRow, UserRow,
};
use chrono::{DateTime, Utc};
use std::borrow::Cow;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::ops::ControlFlow;

/// Where one user's rows are: its first row (its place in the report) and its last (the one
/// judged).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Kept {
    first: u64,
    last: RowAt,
}

/// What one pass over a report learns: everything [`crate::report::CredentialReport`] holds
/// but the rows, and where to find them again.
#[derive(Debug)]
pub struct Scan<'a> {
    input: &'a [u8],
    kept: Vec<Kept>,
    /// The account id, read from the first row whose ARN names one.
    pub account_id: Option<String>,
    /// Rows that were skipped, with why.
    pub skipped: Vec<SkippedRow>,
    /// Rows dropped because a later row had the same ARN.
    pub duplicates: usize,
    /// Number of columns in the header.
    pub columns: usize,
    /// Whether the report has key last-use columns (reports since April 2015 do).
    pub has_key_last_used: bool,
    /// IAM users (root excluded), one per ARN.
    pub users: usize,
    /// Whether the report has a root row.
    pub root_in_report: bool,
}

/// What a report is judged with: the time, the thresholds, and the exceptions that mute
/// findings in the account named `account_name` (its id is the report's).
#[derive(Debug, Clone, Copy)]
pub struct Judging<'e> {
    /// When the report is judged.
    pub now: DateTime<Utc>,
    /// The thresholds of the age checks.
    pub thresholds: &'e Thresholds,
    /// Findings accepted on purpose.
    pub exceptions: &'e [Exception],
    /// The account's display name, which exceptions may name.
    pub account_name: Option<&'e str>,
}

impl Judging<'_> {
    /// Judges `row` (index `i`) in the account `account_id`, handing `f` each finding with
    /// the exception that mutes it (its position), if one does, in the order `judge` lists
    /// them: what [`Scan::judge`] does for each row.
    pub fn findings(
        &self,
        i: usize,
        row: &UserRow,
        account_id: Option<&str>,
        f: &mut impl FnMut(&Finding, Option<usize>),
    ) {
        let account = Account {
            id: account_id.unwrap_or(""),
            name: self.account_name,
        };
        judge_row(i, row, self.now, self.thresholds, &mut |x| {
            f(
                &x,
                x.muted_by(&row.user, self.exceptions, &account, self.now),
            );
        });
    }

    /// What [`Scanning::push_apart`] needs of the row `row` that starts at `at`, judged
    /// apart from the rows before it (on another thread): `None` when there are exceptions,
    /// whose verdicts can depend on the account, which only the rows in order tell.
    pub fn apart(&self, keys: &ArnKeys, at: RowAt, row: &UserRow) -> Option<Apart> {
        self.exceptions.is_empty().then(|| Apart {
            at,
            key: keys.key(&row.arn),
            is_root: row.is_root,
            names_account: crate::arn::account_id_of(&row.arn).is_some(),
            counts: self.count(row, None),
        })
    }

    /// The counts of `row`'s findings.
    fn count(&self, row: &UserRow, account_id: Option<&str>) -> Counts {
        let mut c = Counts::default();
        self.findings(0, row, account_id, &mut |x, muted| match muted {
            Some(_) => c.muted += 1,
            None => c.failing[x.check as usize] += 1,
        });
        c
    }
}

/// A row read and judged apart ([`Judging::apart`]), for [`Scanning::push_apart`].
#[derive(Debug, Clone)]
pub struct Apart {
    /// Where the row starts (a reader that started part way counts lines from there:
    /// correct `at.line` before pushing).
    pub at: RowAt,
    key: u64,
    is_root: bool,
    names_account: bool,
    counts: Counts,
}

/// How a scan keys rows by ARN: a hash, keyed at random like the standard library's maps,
/// the same on every thread that reads for one scan ([`Scanning::keys`]).
#[derive(Debug, Clone)]
pub struct ArnKeys(RandomState);

impl ArnKeys {
    /// The key of `arn`.
    pub fn key(&self, arn: &str) -> u64 {
        self.0.hash_one(arn)
    }
}

/// Hashes a key that is a hash already ([`ArnKeys`]) to itself.
#[derive(Debug, Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// A report's findings, counted: what a verdict says before listing them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Findings no exception mutes, per check (indexed like [`Check::ALL`]): users, or keys
    /// for the checks that count keys.
    pub failing: [u64; Check::ALL.len()],
    /// Findings an exception mutes.
    pub muted: u64,
}

impl Counts {
    /// Findings no exception mutes, of every check: 0 when the report is clean.
    pub fn total(&self) -> u64 {
        self.failing.iter().sum()
    }

    /// Adds (`sign` 1) or takes away (-1) `other`. Wrapping: a row taken away as judged
    /// with another account than it was added with leaves counts that are not used.
    fn add(&mut self, other: &Counts, sign: i64) {
        let apply = |a: &mut u64, b: u64| {
            *a = if sign > 0 {
                a.wrapping_add(b)
            } else {
                a.wrapping_sub(b)
            };
        };
        for (a, b) in self.failing.iter_mut().zip(other.failing) {
            apply(a, b);
        }
        apply(&mut self.muted, other.muted);
    }
}

impl<'a> Scan<'a> {
    /// Reads every row of `input` once. Fails as [`crate::report::parse`] does: only when the
    /// header cannot be used.
    pub fn new(input: &'a [u8]) -> Result<Scan<'a>, ReportError> {
        let (mut scanning, rows) = Scan::start(input, None)?;
        rows.for_each(|r| scanning.push(r));
        Ok(scanning.finish().0)
    }

    /// [`Scan::new`], judging each row as it is read: the counts of the findings
    /// [`Scan::judge`] hands out, without a second pass.
    pub fn judged(
        input: &'a [u8],
        judging: Judging<'_>,
    ) -> Result<(Scan<'a>, Counts), ReportError> {
        let (mut scanning, rows) = Scan::start(input, Some(judging))?;
        rows.for_each(|r| scanning.push(r));
        let (scan, counts) = scanning.finish();
        Ok((scan, counts.expect("judged as read")))
    }

    /// A scan to be fed: the rows of `input` to push into it, in order (from another thread,
    /// if the caller likes). With `judging`, the scan counts the findings.
    pub fn start<'j>(
        input: &'a [u8],
        judging: Option<Judging<'j>>,
    ) -> Result<(Scanning<'a, 'j>, Rows<'a>), ReportError> {
        let rows = Rows::new(input)?;
        // Room for the rows of a report of rows of 200 bytes (AWS writes 250 and more), so
        // that the table of ARNs is seldom built again as it grows.
        let rows_expected = input.len() / 200;
        let scanning = Scanning {
            input,
            reader: rows.row_reader(),
            judging,
            rule: LastRowWins::with_capacity_and_hasher(rows_expected),
            keys: ArnKeys(RandomState::new()),
            firsts: Vec::with_capacity(rows_expected),
            skipped: Vec::new(),
            account: AccountOf::default(),
            counts: Counts::default(),
            before_account: false,
        };
        Ok((scanning, rows))
    }

    /// Rows kept: one per ARN (IAM users and root).
    pub fn row_count(&self) -> usize {
        self.kept.len()
    }

    /// Why the report cannot be vouched for, if it cannot: as
    /// [`crate::report::CredentialReport::doubt`].
    pub fn doubt(&self, last_good_users: Option<usize>) -> Option<String> {
        crate::report::doubt(self.kept.len(), &self.skipped, last_good_users)
    }

    /// Reads the rows again: each user's row with its index, as `parse(input).rows` has
    /// them (in the order of each ARN's first row, the last row of the ARN).
    pub fn rows(&self) -> KeptRows<'_> {
        self.rows_in(0..self.kept.len())
    }

    /// [`Scan::rows`] from index `range.start` to before `range.end`: what one thread reads
    /// while others read the rest.
    pub fn rows_in(&self, range: std::ops::Range<usize>) -> KeptRows<'_> {
        let rows = Rows::new(self.input).expect("the header was read once already");
        let kept = &self.kept[range.start.min(range.end)..range.end];
        KeptRows {
            rows: match kept.first() {
                Some(k) if range.start > 0 => rows.row_reader().rows_at(k.first),
                _ => rows,
            },
            kept,
            start: range.start,
            next: 0,
        }
    }

    /// Reads and judges the rows again, in the order of [`Scan::rows`]: hands `f` each
    /// finding, with its row and the exception that mutes it (its position), if one does,
    /// in the order `judge` lists them, until `f` breaks.
    pub fn judge(
        &self,
        judging: &Judging<'_>,
        mut f: impl FnMut(&UserRow, &Finding, Option<usize>) -> ControlFlow<()>,
    ) {
        let account = self.account_id.as_deref();
        let mut found: Vec<(Finding, Option<usize>)> = Vec::new();
        for (i, row) in self.rows() {
            found.clear();
            judging.findings(i, &row, account, &mut |x, muted| found.push((*x, muted)));
            for (x, muted) in &found {
                if f(&row, x, *muted).is_break() {
                    return;
                }
            }
        }
    }

    /// Counts the findings of [`Scan::judge`], judging the rows again.
    pub fn count(&self, judging: &Judging<'_>) -> Counts {
        let account = self.account_id.as_deref();
        let mut c = Counts::default();
        for (_, row) in self.rows() {
            c.add(&judging.count(&row, account), 1);
        }
        c
    }
}

/// A scan being fed the rows of its report ([`Scan::start`]).
pub struct Scanning<'a, 'j> {
    input: &'a [u8],
    reader: RowReader<'a>,
    judging: Option<Judging<'j>>,
    /// Each place's row, and whether that row is root's (a later row of the ARN decides),
    /// by the key of its ARN.
    rule: LastRowWins<u64, (RowAt, bool), BuildHasherDefault<KeyHasher>>,
    keys: ArnKeys,
    firsts: Vec<u64>,
    skipped: Vec<SkippedRow>,
    account: AccountOf,
    counts: Counts,
    /// A row was judged before the account was known, while an exception could mute by it.
    before_account: bool,
}

impl<'a> Scanning<'a, '_> {
    /// Takes the next record of the report.
    pub fn push(&mut self, record: Record) {
        let (at, row) = match record {
            Record::User(at, row) => (at, row),
            Record::Skipped(_, s) => return self.skipped.push(s),
        };
        self.account.see(&row);
        let counts = self.judging.as_ref().map(|judging| {
            let account = self.account.get();
            self.before_account |= account.is_none() && !judging.exceptions.is_empty();
            judging.count(&row, account)
        });
        let key = self.keys.key(&row.arn);
        self.keep(at, key, row.is_root, Some(&row.arn), counts);
    }

    /// How the rows pushed with [`Scanning::push_apart`] are to be keyed.
    pub fn keys(&self) -> ArnKeys {
        self.keys.clone()
    }

    /// Takes the next row of the report, read and judged apart ([`Judging::apart`], with this
    /// scan's judging and [`Scanning::keys`]).
    pub fn push_apart(&mut self, row: Apart) {
        debug_assert!(self.judging.is_some_and(|j| j.exceptions.is_empty()));
        if self.account.get().is_none() && row.names_account {
            let read = self.reader.row_at(row.at);
            self.account
                .see(&read.expect("a row read once reads again"));
        }
        self.keep(row.at, row.key, row.is_root, None, Some(row.counts));
    }

    /// Keeps the row at `at` by the duplicates rule (its ARN `arn`, or read again when
    /// needed), and counts its findings (`counts`), less those of the row it replaces.
    fn keep(
        &mut self,
        at: RowAt,
        key: u64,
        is_root: bool,
        arn: Option<&str>,
        counts: Option<Counts>,
    ) {
        if let Some(counts) = counts {
            self.counts.add(&counts, 1);
        }
        let reader = &self.reader;
        let arn_at = |at: RowAt| {
            let row = reader.row_at(at).expect("a row read once reads again");
            row.arn
        };
        // Rows of one key: the same ARN, or (a hash of two) not.
        let mut this: Option<Cow<'_, str>> = arn.map(Cow::Borrowed);
        let replaced = self.rule.push_with(key, (at, is_root), |&(kept, _)| {
            let this = this.get_or_insert_with(|| Cow::Owned(arn_at(at)));
            arn_at(kept) == **this
        });
        match replaced {
            None => self.firsts.push(at.byte),
            Some((replaced, _)) => {
                if let Some(judging) = &self.judging {
                    let old = self.reader.row_at(replaced);
                    let old = old.expect("a row read once reads again");
                    self.counts
                        .add(&judging.count(&old, self.account.get()), -1);
                }
            }
        }
    }

    /// The scan, and with judging the counts of its findings. Counted as the rows came but
    /// when an exception could mute a row read before the account was known, by that
    /// account: then by a walk.
    pub fn finish(self) -> (Scan<'a>, Option<Counts>) {
        let (places, duplicates) = self.rule.finish();
        let users = places.iter().filter(|(_, root)| !root).count();
        let scan = Scan {
            input: self.input,
            root_in_report: users < places.len(),
            users,
            kept: self
                .firsts
                .into_iter()
                .zip(places)
                .map(|(first, (last, _))| Kept { first, last })
                .collect(),
            account_id: self.account.get().map(str::to_owned),
            skipped: self.skipped,
            duplicates,
            columns: self.reader.columns(),
            has_key_last_used: self.reader.has_key_last_used(),
        };
        let counts = self.judging.map(|judging| {
            if self.before_account && scan.account_id.is_some() {
                scan.count(&judging)
            } else {
                self.counts
            }
        });
        (scan, counts)
    }
}

/// A report's rows split into blocks read on their own (on several threads), for a
/// [`Scanning`] fed them in order. A block starts at a line break, where a record may not
/// start (a quoted field can hold a line break): each block is read from its start by a
/// reader of its own, and [`Blocks::join`] checks that the block before it ended exactly
/// there, as one reader of the whole report would; if not, the split is no good and the
/// report is to be read by one reader. It also counts the lines, which each block's reader
/// counts from its own start.
#[derive(Debug, Clone)]
pub struct Blocks<'a> {
    reader: RowReader<'a>,
    /// Where each block starts; the last ends at the end of the input.
    starts: Vec<u64>,
    /// The line of the first block's start, less one.
    lines_before: u64,
}

/// Blocks read on their own did not meet where one reader would have read on ([`Blocks::join`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Misread;

impl<'a> Blocks<'a> {
    /// The rows after `rows`' position (just after the header) in blocks of about `size`
    /// bytes.
    pub fn new(rows: &Rows<'a>, size: usize) -> Blocks<'a> {
        let reader = rows.row_reader();
        let input = reader.input();
        let body = rows.position();
        let mut starts = vec![body.byte];
        let mut from = body.byte as usize + size.max(1);
        while let Some(nl) = input
            .get(from..)
            .and_then(|r| r.iter().position(|&b| b == b'\n'))
        {
            let nl = from + nl;
            from = nl + 1;
            // One reader stands at the `\n` after a `\r` (it ends the record at the `\r`), and
            // after a bare `\n`: start where it would start reading again. Not next to an
            // empty line, which that reader passes over while reading the next record.
            let crlf = nl > 0 && input[nl - 1] == b'\r';
            let before = if crlf {
                nl.checked_sub(2)
            } else {
                nl.checked_sub(1)
            };
            let empty_before = before.is_none_or(|b| input[b] == b'\n');
            let empty_after = matches!(input.get(nl + 1), None | Some(b'\n' | b'\r'));
            if empty_before || empty_after {
                continue;
            }
            let start = if crlf { nl } else { nl + 1 };
            starts.push(start as u64);
            from = start + size.max(1);
        }
        Blocks {
            reader,
            starts,
            lines_before: body.line.saturating_sub(1),
        }
    }

    /// How many blocks there are.
    pub fn len(&self) -> usize {
        self.starts.len()
    }

    /// Whether there are none (never: an empty body is one empty block).
    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    /// The line of the first block's start, less one: where [`Blocks::join`]'s count of lines
    /// starts.
    pub fn lines_before(&self) -> u64 {
        self.lines_before
    }

    /// Reads block `k`, handing `each` its records, with positions in the input but lines
    /// counted from the block's start. Returns where its reader stood once past the block
    /// (the next block's start, if the split is good), or `None` at the end of the input.
    pub fn read(&self, k: usize, mut each: impl FnMut(Record)) -> Option<RowAt> {
        let end = self.starts.get(k + 1).copied();
        let mut rows = self.reader.rows_at(self.starts[k]);
        loop {
            if let Some(end) = end {
                let at = rows.position();
                if at.byte >= end {
                    return Some(at);
                }
            }
            let record = rows.next()?;
            let at = record.at();
            if end.is_some_and(|end| at.byte >= end) {
                return Some(at);
            }
            each(record);
        }
    }

    /// Takes block `k`, read by [`Blocks::read`] (which returned `ended`), in block order:
    /// the lines to add to its records' ([`Record::add_lines`]) to count from the start of
    /// the input (`lines` holds the lines before the block: [`Blocks::lines_before`] for
    /// the first), or that the block did not end where the next one starts.
    pub fn join(&self, k: usize, ended: Option<RowAt>, lines: &mut u64) -> Result<u64, Misread> {
        let before = *lines;
        match (ended, self.starts.get(k + 1)) {
            (Some(at), Some(&next)) if at.byte == next => {
                *lines += at.line.saturating_sub(1);
                Ok(before)
            }
            (None, None) => Ok(before),
            _ => Err(Misread),
        }
    }
}

/// The rows [`Scan::rows`] reads again.
pub struct KeptRows<'s> {
    kept: &'s [Kept],
    rows: Rows<'s>,
    /// The index of `kept[0]`.
    start: usize,
    next: usize,
}

impl Iterator for KeptRows<'_> {
    type Item = (usize, UserRow);

    fn next(&mut self) -> Option<(usize, UserRow)> {
        let kept = *self.kept.get(self.next)?;
        // First rows come in report order: pass over skipped rows and the rows a later one of
        // the same ARN replaced, up to the next user's first row.
        loop {
            if let Record::User(at, row) = self.rows.next()? {
                if at.byte != kept.first {
                    continue;
                }
                let i = self.start + self.next;
                self.next += 1;
                if kept.last.byte == at.byte {
                    return Some((i, row));
                }
                let last = self.rows.row_at(kept.last);
                return Some((i, last.expect("a row read once reads again")));
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.kept.len() - self.next;
        (left, Some(left))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exceptions::UserMatch;
    use crate::judge::{judge, Thresholds};
    use crate::report::{parse, ROOT_USER};

    const HEADER: &str = "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated";

    fn row(user: &str, mfa: bool) -> String {
        let arn = if user == ROOT_USER {
            "arn:aws:iam::111122223333:root".to_owned()
        } else {
            format!("arn:aws:iam::111122223333:user/{user}")
        };
        format!("{user},{arn},2020-01-01T00:00:00Z,true,2024-06-01T10:00:00Z,2020-01-01T00:00:00+00:00,N/A,{mfa},true,2020-01-02T00:00:00+00:00,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A")
    }

    fn exception(id: &str, check: Check, users: &[&str], accounts: &[&str]) -> Exception {
        Exception {
            id: id.to_owned(),
            checks: vec![check.name().to_owned()],
            users: users.iter().map(|u| UserMatch::parse(u).unwrap()).collect(),
            accounts: accounts.iter().map(|a| (*a).to_owned()).collect(),
            reason: "accepted".to_owned(),
            owner: "security".to_owned(),
            expires: "2026-12-31".parse().unwrap(),
        }
    }

    /// Everything a scan says equals what `parse` says, and judging its rows one by one
    /// (muted or not, counted as read or walked) gives `judge`'s findings.
    fn same_as_parse(input: &str) {
        let now = "2026-06-01T00:00:00Z".parse().unwrap();
        let t = Thresholds::default();
        let parsed = parse(input.as_bytes());
        let scan = Scan::new(input.as_bytes());
        let (parsed, scan) = match (parsed, scan) {
            (Ok(p), Ok(s)) => (p, s),
            (Err(p), Err(s)) => return assert_eq!(p, s),
            (p, s) => panic!("{input:?}: {p:?} against {s:?}"),
        };
        let rows: Vec<(usize, UserRow)> = scan.rows().collect();
        assert_eq!(
            rows,
            parsed.rows.iter().cloned().enumerate().collect::<Vec<_>>(),
            "{input:?}"
        );
        assert_eq!(scan.row_count(), parsed.rows.len());
        assert_eq!(scan.account_id, parsed.account_id);
        assert_eq!(scan.skipped, parsed.skipped);
        assert_eq!(scan.duplicates, parsed.duplicates);
        assert_eq!(scan.columns, parsed.columns);
        assert_eq!(scan.has_key_last_used, parsed.has_key_last_used);
        assert_eq!(scan.users, parsed.users().count());
        assert_eq!(scan.root_in_report, parsed.root().is_some());
        for last_good in [None, Some(0), Some(3)] {
            assert_eq!(scan.doubt(last_good), parsed.doubt(last_good));
        }
        let exceptions = [
            exception("alice-mfa", Check::UserWithoutMfa, &["alice"], &[]),
            exception("here", Check::ConsoleUserWithoutMfa, &[], &["111122223333"]),
            exception("elsewhere", Check::UserWithoutMfa, &[], &["999999999999"]),
            exception("root-key", Check::RootAccessKey, &[ROOT_USER], &[]),
        ];
        for exceptions in [&exceptions[..0], &exceptions[..]] {
            let judging = Judging {
                now,
                thresholds: &t,
                exceptions,
                account_name: None,
            };
            let mut a = judge(&parsed, now, &t);
            let account = Account {
                id: parsed.account_id.as_deref().unwrap_or(""),
                name: None,
            };
            a.mute(&parsed, exceptions, &account, now);
            let (mut findings, mut muted) = (Vec::new(), Vec::new());
            scan.judge(&judging, |row, x, m| {
                assert_eq!(row, &parsed.rows[x.row]);
                match m {
                    Some(e) => muted.push((*x, e)),
                    None => findings.push(*x),
                }
                ControlFlow::Continue(())
            });
            assert_eq!(findings, a.findings, "{input:?}");
            let held: Vec<(Finding, usize)> =
                a.muted.iter().map(|m| (m.finding, m.exception)).collect();
            assert_eq!(muted, held, "{input:?}");
            let (again, counts) = Scan::judged(input.as_bytes(), judging).unwrap();
            assert_eq!(again.kept, scan.kept);
            assert_eq!(counts, scan.count(&judging));
            for &c in Check::ALL {
                assert_eq!(counts.failing[c as usize], a.count(c), "{}", c.name());
            }
            assert_eq!(counts.muted, a.muted.len() as u64);
            assert_eq!(counts.total(), a.findings.len() as u64);
        }
    }

    /// A scan fed block by block ([`Blocks`]), blocks of `size` bytes; `None` when the
    /// blocks did not meet.
    fn scan_in_blocks<'a>(
        input: &'a [u8],
        judging: Judging<'_>,
        size: usize,
    ) -> Option<(Scan<'a>, Counts)> {
        let (mut scanning, rows) = Scan::start(input, Some(judging)).ok()?;
        let blocks = Blocks::new(&rows, size);
        let keys = scanning.keys();
        let mut lines = blocks.lines_before();
        for k in 0..blocks.len() {
            let mut records = Vec::new();
            let ended = blocks.read(k, |r| records.push(r));
            let offset = blocks.join(k, ended, &mut lines).ok()?;
            for mut r in records {
                r.add_lines(offset);
                // Counted apart where it can be, as the threads of `check` do.
                match r {
                    Record::User(at, row) => match judging.apart(&keys, at, &row) {
                        Some(apart) => scanning.push_apart(apart),
                        None => scanning.push(Record::User(at, row)),
                    },
                    r => scanning.push(r),
                }
            }
        }
        let (scan, counts) = scanning.finish();
        Some((scan, counts.unwrap()))
    }

    /// Read in blocks of any size, a report scans as read by one reader, or the blocks say
    /// they did not meet; and the rows read again in ranges are the rows. How many block
    /// sizes did not meet.
    fn same_in_blocks(input: &str) -> usize {
        let now = "2026-06-01T00:00:00Z".parse().unwrap();
        let t = Thresholds::default();
        let judging = Judging {
            now,
            thresholds: &t,
            exceptions: &[],
            account_name: None,
        };
        let Ok((whole, counts)) = Scan::judged(input.as_bytes(), judging) else {
            return 0;
        };
        let mut misread = 0;
        let rows: Vec<(usize, UserRow)> = whole.rows().collect();
        for size in [1, 7, 50, 200, 1000, 1 << 20] {
            let case = format!("blocks of {size} bytes, {} bytes of input", input.len());
            // With exceptions too, which keep rows from being counted apart.
            let exceptions = [
                exception("alice", Check::UserWithoutMfa, &["user-000001"], &[]),
                exception("here", Check::ConsoleUserWithoutMfa, &[], &["111122223333"]),
            ];
            let muting = Judging {
                exceptions: &exceptions,
                ..judging
            };
            let (muted_whole, muted_counts) = Scan::judged(input.as_bytes(), muting).unwrap();
            if let Some((blocks, in_blocks)) = scan_in_blocks(input.as_bytes(), judging, size) {
                assert!(blocks.kept == whole.kept, "{case}");
                assert_eq!(blocks.skipped, whole.skipped, "{case}");
                assert_eq!(blocks.account_id, whole.account_id);
                assert_eq!(blocks.duplicates, whole.duplicates);
                assert_eq!(in_blocks, counts);
                let (muted_blocks, in_blocks) =
                    scan_in_blocks(input.as_bytes(), muting, size).unwrap();
                assert!(muted_blocks.kept == muted_whole.kept, "{case}");
                assert_eq!(in_blocks, muted_counts, "{case}");
            } else {
                assert!(
                    input.contains('"'),
                    "only a quoted line break misleads: {case}"
                );
                misread += 1;
            }
            let n = whole.row_count();
            let step = size.clamp(1, n.max(1));
            let ranged: Vec<(usize, UserRow)> = (0..n)
                .step_by(step)
                .flat_map(|from| whole.rows_in(from..(from + step).min(n)))
                .collect();
            assert!(ranged == rows, "ranges of {step} rows of {n}");
        }
        misread
    }

    #[test]
    fn a_report_read_in_blocks_or_ranges_reads_as_one() {
        let now = "2026-06-01T00:00:00Z".parse().unwrap();
        let generated = crate::synthetic::report("111122223333", 200, now, 3);
        let lines: Vec<&str> = generated.lines().collect();
        let mut odd: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
        odd.insert(5, "broken,row".to_owned());
        odd.insert(9, String::new());
        odd.insert(12, "   ".to_owned());
        odd.push(lines[7].to_owned()); // a duplicate, far from its first row
        odd.insert(40, lines[30].replacen(",true,", ",false,", 1));
        for newline in ["\n", "\r\n"] {
            for bom in ["", "\u{feff}"] {
                let text = format!("{bom}{}", odd.join(newline));
                same_in_blocks(&text);
                same_in_blocks(&(text + newline));
            }
        }
        // A quoted field with a line break in it: the blocks may not meet, and say so.
        let quoted = odd
            .join("\n")
            .replacen("user-000003,", "\"user-\n000003\",", 1);
        assert!(
            same_in_blocks(&quoted) > 0,
            "a split in quotes is found out"
        );
        same_in_blocks(&format!("{HEADER}\n"));
        same_in_blocks(HEADER);
    }

    #[test]
    fn a_scan_reads_and_judges_what_parse_and_judge_do() {
        let root = ROOT_USER;
        let cases: Vec<Vec<String>> = vec![
            vec![],
            vec![row("alice", true), row(root, false), row("bob", false)],
            // The first row of a user fails, the last passes: at the place of the first.
            vec![row("alice", false), row("bob", true), row("alice", true)],
            // And the reverse, three times, around skipped and blank rows.
            vec![
                row("alice", true),
                "broken,row".to_owned(),
                row("bob", true),
                String::new(),
                row("alice", true),
                row("carol", false),
                row("alice", false),
                row("bob", true).replace(",true,true,", ",maybe,true,"),
            ],
            // A duplicate whose last row is the only readable one.
            vec![
                row("alice", true).replace("2020-01-01T00:00:00Z", "yesterday"),
                row("alice", false),
            ],
            // Root twice; a user twice in a row.
            vec![
                row(root, true),
                row("dave", false),
                row("dave", true),
                row(root, false),
            ],
            // Unquoted commas repaired, on a duplicated user.
            vec![row("e,v,e", false), row("frank", true), row("e,v,e", true)],
            // The account known only from the third row on: the rows before it are muted by
            // it all the same (counted by a second walk), also when one comes again.
            vec![
                row("alice", false).replace("111122223333", ""),
                row("bob", false).replace("111122223333", ""),
                row("bob", false),
                row("alice", true).replace("111122223333", ""),
            ],
            // No account at all.
            vec![row("alice", false).replace("111122223333", "")],
            vec!["a,b,c".to_owned(), "d,e,f".to_owned()],
        ];
        for rows in cases {
            for (newline, bom) in [("\n", ""), ("\r\n", "\u{feff}")] {
                let mut text = format!("{bom}{HEADER}");
                for r in &rows {
                    text.push_str(newline);
                    text.push_str(r);
                }
                same_as_parse(&text);
                text.push_str(newline);
                same_as_parse(&text);
            }
        }
        for bad in [
            "",
            " \n",
            "<html></html>",
            "user,arn\nalice,arn:aws:iam::1:user/alice",
        ] {
            same_as_parse(bad);
        }
    }

    #[test]
    fn a_scan_of_a_generated_report_with_duplicates_reads_what_parse_reads() {
        let now = "2026-06-01T00:00:00Z".parse().unwrap();
        let text = crate::synthetic::report("111122223333", 300, now, 7);
        let lines: Vec<&str> = text.lines().collect();
        // Every tenth user again further down (a flag flipped), some twice.
        let mut doubled: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
        for (n, l) in lines.iter().enumerate().skip(1).step_by(10) {
            let flipped = if l.contains(",true,") {
                l.replacen(",true,", ",false,", 1)
            } else {
                l.replacen(",false,", ",true,", 1)
            };
            doubled.insert((n * 3 / 2).min(doubled.len()), flipped.clone());
            if n % 20 == 1 {
                doubled.push(flipped);
            }
        }
        let text = doubled.join("\n");
        let parsed = parse(text.as_bytes()).unwrap();
        assert!(parsed.duplicates > 30, "{}", parsed.duplicates);
        same_as_parse(&text);
    }
}
