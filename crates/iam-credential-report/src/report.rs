//! Parsing the IAM credential report CSV into typed rows.
//!
//! Pure: bytes in, rows out; no I/O and no clock. The parser is tolerant where real reports
//! vary (column order and count, boolean casing, two timestamp styles, sentinels in any date
//! column, BOM, CRLF, unquoted commas in user names, duplicate rows) and strict where a report
//! cannot be trusted (no header, a required column missing).
//!
//! Column names and sentinel meanings follow the AWS IAM User Guide, "Getting credential
//! reports for your AWS account".

use crate::arn::account_id_of;
use chrono::{DateTime, NaiveDate, Utc};
use std::collections::HashMap;
use thiserror::Error;

/// The user name AWS gives the account's root user row; only this exact value is root.
pub const ROOT_USER: &str = "<root_account>";

/// Columns every report format has carried since the first one (the 16-column format of
/// reports generated before April 2015). Without any of them the report cannot be judged.
pub const REQUIRED_COLUMNS: [&str; 16] = [
    "user",
    "arn",
    "user_creation_time",
    "password_enabled",
    "password_last_used",
    "password_last_changed",
    "password_next_rotation",
    "mfa_active",
    "access_key_1_active",
    "access_key_1_last_rotated",
    "access_key_2_active",
    "access_key_2_last_rotated",
    "cert_1_active",
    "cert_1_last_rotated",
    "cert_2_active",
    "cert_2_last_rotated",
];

/// Columns added later (key last use in April 2015, `additional_credentials_info` in the
/// current User Guide). Read when present, never required.
pub const OPTIONAL_COLUMNS: [&str; 7] = [
    "access_key_1_last_used_date",
    "access_key_1_last_used_region",
    "access_key_1_last_used_service",
    "access_key_2_last_used_date",
    "access_key_2_last_used_region",
    "access_key_2_last_used_service",
    "additional_credentials_info",
];

/// A date column's value: a timestamp, or one of the sentinels AWS writes instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stamp {
    /// A real timestamp.
    At(DateTime<Utc>),
    /// `N/A`: the thing does not exist, or was never used (or not since April 2015 for keys).
    NotApplicable,
    /// `no_information`: AWS has no data (e.g. a password never used since October 2014).
    NoInformation,
    /// `not_supported`: the column does not apply to this row (root's password rotation).
    NotSupported,
    /// An empty field, or a column the report does not have (16-column reports have no
    /// key last-use columns).
    Missing,
}

impl Stamp {
    /// The timestamp, when there is one.
    pub fn at(&self) -> Option<DateTime<Utc>> {
        match self {
            Stamp::At(t) => Some(*t),
            _ => None,
        }
    }
}

/// One access key slot of a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessKey {
    /// `access_key_N_active`.
    pub active: bool,
    /// `access_key_N_last_rotated`: creation or last rotation. A timestamp here is what
    /// makes the slot hold a key at all.
    pub last_rotated: Stamp,
    /// `access_key_N_last_used_date`; `N/A` for a key never used (or used before April 2015),
    /// and `Missing` in reports without the column.
    pub last_used: Stamp,
}

impl AccessKey {
    /// Whether the slot holds a key (active or inactive): it is active, or it has a
    /// `last_rotated` date. An inactive slot without a date is empty.
    pub fn exists(&self) -> bool {
        self.active || matches!(self.last_rotated, Stamp::At(_))
    }

    /// An active key. `access_key_N_active=true` is an active key even when its
    /// `last_rotated` is `N/A` or empty (published fixtures use that shape for "root has a
    /// key"): it counts for the key checks that need no date, and its age is unknown.
    pub fn is_active(&self) -> bool {
        self.active
    }
}

/// One row of the report: an IAM user, or the root user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    /// The user name (`<root_account>` for root).
    pub user: String,
    /// The user's ARN.
    pub arn: String,
    /// Whether this is the root user's row (the user column is exactly `<root_account>`).
    pub is_root: bool,
    /// `user_creation_time`.
    pub created: Stamp,
    /// `password_enabled`; `None` where AWS writes `not_supported` (root in older reports).
    pub password_enabled: Option<bool>,
    /// `password_last_used`.
    pub password_last_used: Stamp,
    /// `password_last_changed`.
    pub password_last_changed: Stamp,
    /// `mfa_active`.
    pub mfa_active: bool,
    /// Access key slots 1 and 2.
    pub keys: [AccessKey; 2],
    /// `cert_1_active` and `cert_2_active`: active X.509 signing certificates.
    pub certs_active: [bool; 2],
}

impl UserRow {
    /// A console password is set. Root's `not_supported` counts as no (root always has a
    /// password in practice, but the report cannot say).
    pub fn has_password(&self) -> bool {
        self.password_enabled == Some(true)
    }
}

/// Why a row was left out of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// The row's field count differs from the header's and could not be repaired.
    WrongWidth {
        /// Fields in the row.
        found: usize,
        /// Fields in the header.
        expected: usize,
    },
    /// A value that is not what its column allows (a boolean that is not true/false, a date
    /// that is neither a timestamp nor a sentinel).
    InvalidValue {
        /// The column's name.
        column: &'static str,
        /// The offending value, cut to a printable length.
        value: String,
    },
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SkipReason::WrongWidth { found, expected } => {
                write!(f, "{found} fields where the header has {expected}")
            }
            SkipReason::InvalidValue { column, value } => {
                write!(f, "invalid value {value:?} in column {column}")
            }
        }
    }
}

/// A row that was counted and skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedRow {
    /// 1-based line of the row in the report.
    pub line: u64,
    /// What was wrong with it.
    pub reason: SkipReason,
}

/// A parsed credential report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CredentialReport {
    /// The account id, read from the first row whose ARN names one.
    pub account_id: Option<String>,
    /// Rows, one per distinct ARN, in report order (a duplicated user keeps its last row).
    pub rows: Vec<UserRow>,
    /// Rows that were skipped, with why.
    pub skipped: Vec<SkippedRow>,
    /// Rows dropped because a later row had the same ARN.
    pub duplicates: usize,
    /// Number of columns in the header.
    pub columns: usize,
    /// Whether the report has key last-use columns (reports since April 2015 do).
    pub has_key_last_used: bool,
}

impl CredentialReport {
    /// The root user's row, if the report has one.
    pub fn root(&self) -> Option<&UserRow> {
        self.rows.iter().find(|r| r.is_root)
    }

    /// IAM users, root excluded.
    pub fn users(&self) -> impl Iterator<Item = &UserRow> {
        self.rows.iter().filter(|r| !r.is_root)
    }

    /// Why the report cannot be vouched for, if it cannot: no row could be read (every row
    /// was skipped), or it has no rows at all while the account's last good report had
    /// `last_good_users` users. Judging such a report would turn "could not read it" into
    /// "all clear"; a report that merely skipped some rows is judged, and says so.
    pub fn doubt(&self, last_good_users: Option<usize>) -> Option<String> {
        doubt(self.rows.len(), &self.skipped, last_good_users)
    }
}

/// [`CredentialReport::doubt`], for a report of `rows` rows (after duplicates) that skipped
/// `skipped`.
pub(crate) fn doubt(
    rows: usize,
    skipped: &[SkippedRow],
    last_good_users: Option<usize>,
) -> Option<String> {
    if rows > 0 {
        return None;
    }
    if let Some(first) = skipped.first() {
        return Some(format!(
            "no row of the credential report could be read: {} row(s) skipped (line {}: {})",
            skipped.len(),
            first.line,
            first.reason
        ));
    }
    match last_good_users {
        Some(n) if n > 0 => Some(format!(
            "the credential report has no rows, while the last good one had {n} user(s)"
        )),
        _ => None,
    }
}

/// A report that cannot be read at all.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ReportError {
    /// Nothing but whitespace.
    #[error("the credential report is empty")]
    Empty,
    /// The CSV layer failed (e.g. invalid UTF-8 in the header).
    #[error("the credential report is not readable CSV: {0}")]
    Csv(String),
    /// A required column is missing from the header.
    #[error("the credential report header lacks required column(s) {}{}", .missing.join(", "), hint(.unknown))]
    MissingColumns {
        /// Required columns not found.
        missing: Vec<&'static str>,
        /// Header names that are not credential report columns.
        unknown: Vec<String>,
    },
}

fn hint(unknown: &[String]) -> String {
    if unknown.is_empty() {
        return String::new();
    }
    let shown: Vec<String> = unknown.iter().take(5).map(|u| format!("{u:?}")).collect();
    let mut s = format!("; unrecognised header name(s): {}", shown.join(", "));
    if unknown.iter().any(|u| u.ends_with("\\n")) {
        s.push_str(
            " (a literal \\n ends a header name: the file was written with escaped newlines)",
        );
    }
    s
}

/// Column positions, looked up once from the header.
#[derive(Debug, Clone)]
struct Columns {
    user: usize,
    arn: usize,
    created: usize,
    password_enabled: usize,
    password_last_used: usize,
    password_last_changed: usize,
    mfa_active: usize,
    key_active: [usize; 2],
    key_last_rotated: [usize; 2],
    key_last_used: [Option<usize>; 2],
    cert_active: [usize; 2],
}

impl Columns {
    fn from_header(names: &[String]) -> Result<Columns, ReportError> {
        let index: HashMap<&str, usize> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i))
            .collect();
        let missing: Vec<&'static str> = REQUIRED_COLUMNS
            .iter()
            .copied()
            .filter(|c| !index.contains_key(c))
            .collect();
        if !missing.is_empty() {
            let unknown = names
                .iter()
                .filter(|n| {
                    !REQUIRED_COLUMNS.contains(&n.as_str())
                        && !OPTIONAL_COLUMNS.contains(&n.as_str())
                })
                .cloned()
                .collect();
            return Err(ReportError::MissingColumns { missing, unknown });
        }
        let at = |name: &str| index[name];
        Ok(Columns {
            user: at("user"),
            arn: at("arn"),
            created: at("user_creation_time"),
            password_enabled: at("password_enabled"),
            password_last_used: at("password_last_used"),
            password_last_changed: at("password_last_changed"),
            mfa_active: at("mfa_active"),
            key_active: [at("access_key_1_active"), at("access_key_2_active")],
            key_last_rotated: [
                at("access_key_1_last_rotated"),
                at("access_key_2_last_rotated"),
            ],
            key_last_used: [
                index.get("access_key_1_last_used_date").copied(),
                index.get("access_key_2_last_used_date").copied(),
            ],
            cert_active: [at("cert_1_active"), at("cert_2_active")],
        })
    }
}

/// Parses a credential report.
///
/// Rows of the wrong width or with invalid values are skipped and listed in
/// [`CredentialReport::skipped`]; only a report whose header cannot be used is an error.
/// Built on [`Rows`] and [`LastRowWins`], as the streaming judge ([`crate::stream`]) is.
pub fn parse(input: &[u8]) -> Result<CredentialReport, ReportError> {
    let mut rows = Rows::new(input)?;
    let mut report = CredentialReport {
        columns: rows.columns(),
        has_key_last_used: rows.has_key_last_used(),
        ..CredentialReport::default()
    };
    for record in rows.by_ref() {
        match record {
            Record::User(_, row) => report.rows.push(row),
            Record::Skipped(_, s) => report.skipped.push(s),
        }
    }
    report.account_id = rows.account_id().map(str::to_owned);
    report.duplicates = drop_duplicates(&mut report.rows);
    // The exporter keeps each account's report to judge it again, and replaces it at every
    // refresh: without the room the pushes left (5,001 rows in room for 8,192), the heap stays
    // compact. benches/scale, 100 accounts of 5,000 users, once their reports were replaced:
    // 161 MiB with this, 198 without.
    report.rows.shrink_to_fit();
    Ok(report)
}

/// Where a row starts in the report, to read it again ([`Rows::row_at`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowAt {
    /// 1-based line of the row.
    pub line: u64,
    /// Byte offset of the row, after any BOM.
    pub byte: u64,
}

/// One record of a report's body, as [`Rows`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// A row that could be read, and where it starts.
    User(RowAt, UserRow),
    /// A row that was counted and skipped, and where it starts.
    Skipped(RowAt, SkippedRow),
}

impl Record {
    /// Where the record starts.
    pub fn at(&self) -> RowAt {
        match self {
            Record::User(at, _) | Record::Skipped(at, _) => *at,
        }
    }

    /// Counts its line `lines` further on (a reader that started part way counts from 1).
    pub fn add_lines(&mut self, lines: u64) {
        match self {
            Record::User(at, _) => at.line += lines,
            Record::Skipped(at, s) => {
                at.line += lines;
                s.line += lines;
            }
        }
    }
}

/// Reads a report's rows one at a time, in report order, without holding them: what
/// [`parse`] collects, and what [`crate::stream`] judges row by row. Blank lines are passed
/// over; a row that cannot be read is a [`Record::Skipped`]; a CSV-level error mid-file ends
/// the readable part (one skipped row, then the end). Duplicates are not dropped here: that
/// is [`LastRowWins`]'s rule.
pub struct Rows<'a> {
    layout: RowReader<'a>,
    /// Where `reader` starts in the input: its positions are from there.
    base: u64,
    reader: csv::Reader<&'a [u8]>,
    record: csv::ByteRecord,
    repaired: csv::ByteRecord,
    account: AccountOf,
    done: bool,
}

/// What the header says (where each column is), to read a row again at its position.
#[derive(Debug, Clone)]
pub struct RowReader<'a> {
    input: &'a [u8],
    cols: Columns,
    width: usize,
}

impl<'a> RowReader<'a> {
    /// A reader of the rows from byte `at` of the input on, where a record starts (a
    /// position a [`Rows`] gave): its positions are the input's, but its lines are counted
    /// from 1 at `at`, and its [`Rows::account_id`] from its own rows.
    pub fn rows_at(&self, at: u64) -> Rows<'a> {
        let start = usize::try_from(at).map_or(self.input.len(), |a| a.min(self.input.len()));
        Rows {
            layout: self.clone(),
            base: start as u64,
            reader: csv_reader(64 * 1024, &self.input[start..]),
            record: csv::ByteRecord::new(),
            repaired: csv::ByteRecord::new(),
            account: AccountOf::default(),
            done: false,
        }
    }

    /// The input, after any BOM: what positions count bytes of.
    pub fn input(&self) -> &'a [u8] {
        self.input
    }

    /// Number of columns in the header.
    pub fn columns(&self) -> usize {
        self.width
    }

    /// Whether the report has key last-use columns (reports since April 2015 do).
    pub fn has_key_last_used(&self) -> bool {
        self.cols.key_last_used.iter().all(Option::is_some)
    }

    /// Reads again the row that starts at `at`: a position that a [`Record::User`] of a
    /// reader over the same input gave. `None` when no readable row starts there.
    pub fn row_at(&self, at: RowAt) -> Option<UserRow> {
        let start = usize::try_from(at.byte).ok()?;
        let mut reader = csv_reader(4 * 1024, self.input.get(start..)?);
        let mut record = csv::ByteRecord::new();
        let mut repaired = csv::ByteRecord::new();
        match reader.read_byte_record(&mut record) {
            Ok(true) => read_row(&record, self.width, &self.cols, &mut repaired).ok(),
            Ok(false) | Err(_) => None,
        }
    }
}

/// The account a report belongs to: the one the first row whose ARN names one names. Shown
/// the rows in report order.
#[derive(Debug, Clone, Default)]
pub struct AccountOf(Option<String>);

impl AccountOf {
    /// Takes the next row.
    pub fn see(&mut self, row: &UserRow) {
        self.see_arn(&row.arn);
    }

    /// Takes the next row, by its ARN.
    pub fn see_arn(&mut self, arn: &str) {
        if self.0.is_none() {
            self.0 = account_id_of(arn).map(str::to_owned);
        }
    }

    /// The account id, once a row named one.
    pub fn get(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

impl<'a> Rows<'a> {
    /// Reads the header (the first non-blank record; a UTF-8 BOM is passed over). Only a
    /// report whose header cannot be used is an error.
    pub fn new(input: &'a [u8]) -> Result<Rows<'a>, ReportError> {
        let input = input.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(input);
        if input.iter().all(u8::is_ascii_whitespace) {
            return Err(ReportError::Empty);
        }
        let mut reader = csv_reader(64 * 1024, input);
        let mut record = csv::ByteRecord::new();
        // The header is the first non-blank record.
        let header: Vec<String> = loop {
            match reader.read_byte_record(&mut record) {
                Ok(false) => return Err(ReportError::Empty),
                Ok(true) => {
                    if is_blank(&record) {
                        continue;
                    }
                    break record
                        .iter()
                        .map(|f| String::from_utf8_lossy(f).into_owned())
                        .collect();
                }
                Err(e) => return Err(ReportError::Csv(e.to_string())),
            }
        };
        Ok(Rows {
            layout: RowReader {
                input,
                cols: Columns::from_header(&header)?,
                width: header.len(),
            },
            base: 0,
            reader,
            record,
            repaired: csv::ByteRecord::new(),
            account: AccountOf::default(),
            done: false,
        })
    }

    /// Number of columns in the header.
    pub fn columns(&self) -> usize {
        self.layout.columns()
    }

    /// Whether the report has key last-use columns (reports since April 2015 do).
    pub fn has_key_last_used(&self) -> bool {
        self.layout.has_key_last_used()
    }

    /// The account id, from the first row read so far whose ARN names one.
    pub fn account_id(&self) -> Option<&str> {
        self.account.get()
    }

    /// Reads again the row that starts at `at` ([`RowReader::row_at`]).
    pub fn row_at(&self, at: RowAt) -> Option<UserRow> {
        self.layout.row_at(at)
    }

    /// What is needed to read rows again at their positions, apart from this reader.
    pub fn row_reader(&self) -> RowReader<'a> {
        self.layout.clone()
    }

    /// Where the next record starts: the reader's position.
    pub fn position(&self) -> RowAt {
        let p = self.reader.position();
        RowAt {
            line: p.line(),
            byte: self.base + p.byte(),
        }
    }
}

impl Iterator for Rows<'_> {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        while !self.done {
            match self.reader.read_byte_record(&mut self.record) {
                Ok(false) => {
                    self.done = true;
                    break;
                }
                Ok(true) => {}
                Err(e) => {
                    // A CSV-level error mid-file (e.g. bad UTF-8 is not one: we read bytes)
                    // ends the readable part; count it as a skipped row and stop.
                    self.done = true;
                    let at = e.position().map_or(RowAt { line: 0, byte: 0 }, |p| RowAt {
                        line: p.line(),
                        byte: self.base + p.byte(),
                    });
                    return Some(Record::Skipped(
                        at,
                        SkippedRow {
                            line: at.line,
                            reason: SkipReason::InvalidValue {
                                column: "user",
                                value: truncate(&e.to_string()),
                            },
                        },
                    ));
                }
            }
            if is_blank(&self.record) {
                continue; // a blank line
            }
            let at = self
                .record
                .position()
                .map_or(RowAt { line: 0, byte: 0 }, |p| RowAt {
                    line: p.line(),
                    byte: self.base + p.byte(),
                });
            let (width, cols) = (self.layout.width, &self.layout.cols);
            return Some(
                match read_row(&self.record, width, cols, &mut self.repaired) {
                    Ok(row) => {
                        self.account.see(&row);
                        Record::User(at, row)
                    }
                    Err(reason) => Record::Skipped(
                        at,
                        SkippedRow {
                            line: at.line,
                            reason,
                        },
                    ),
                },
            );
        }
        None
    }
}

fn csv_reader(capacity: usize, input: &[u8]) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new()
        .buffer_capacity(capacity)
        .has_headers(false)
        .flexible(true)
        .from_reader(input)
}

/// A line with nothing but whitespace.
fn is_blank(record: &csv::ByteRecord) -> bool {
    record.len() == 1 && record[0].iter().all(u8::is_ascii_whitespace)
}

/// One record as a row: repaired when unquoted commas split its user name, else skipped
/// when its width is not the header's.
fn read_row(
    record: &csv::ByteRecord,
    width: usize,
    cols: &Columns,
    repaired: &mut csv::ByteRecord,
) -> Result<UserRow, SkipReason> {
    let fields = if record.len() == width {
        record
    } else if repair_unquoted_commas(record, width, cols, repaired) {
        repaired
    } else {
        return Err(SkipReason::WrongWidth {
            found: record.len(),
            expected: width,
        });
    };
    parse_row(fields, cols)
}

/// The duplicates rule: one row per ARN, the last one, at the place of the first (real
/// reports have been seen with a user twice). Rows are pushed in report order; each takes a
/// new place or replaces the row of its ARN. [`parse`] keeps rows by it, keyed by the ARN,
/// and the streaming judge ([`crate::stream`]) the positions of rows, keyed by a hash of the
/// ARN ([`LastRowWins::push_with`] tells rows of one key apart).
#[derive(Debug)]
pub struct LastRowWins<K, P, S = std::collections::hash_map::RandomState> {
    place: HashMap<K, usize, S>,
    /// The further places of a key that stands for several ARNs (a hash of them).
    more: HashMap<K, Vec<usize>, S>,
    places: Vec<P>,
    dropped: usize,
}

impl<K: Eq + std::hash::Hash + Clone, P> LastRowWins<K, P> {
    /// Room for `rows` rows.
    pub fn with_capacity(rows: usize) -> Self {
        Self::with_capacity_and_hasher(rows)
    }
}

impl<K, P, S> LastRowWins<K, P, S>
where
    K: Eq + std::hash::Hash + Clone,
    S: std::hash::BuildHasher + Default,
{
    /// Room for `rows` rows, keys hashed by `S`.
    pub fn with_capacity_and_hasher(rows: usize) -> Self {
        LastRowWins {
            place: HashMap::with_capacity_and_hasher(rows, S::default()),
            more: HashMap::default(),
            places: Vec::with_capacity(rows),
            dropped: 0,
        }
    }

    /// Takes the next row, `row`, whose ARN is `arn`: the row it replaces, if its ARN had one.
    pub fn push(&mut self, arn: K, row: P) -> Option<P> {
        self.push_with(arn, row, |_| true)
    }

    /// Takes the next row, `row`, whose ARN's key is `key`, where `same` says whether a row
    /// kept under the key has the same ARN (a key that stands for one ARN: always). The
    /// row it replaces, if its ARN had one.
    pub fn push_with(&mut self, key: K, row: P, mut same: impl FnMut(&P) -> bool) -> Option<P> {
        let entry = match self.place.entry(key) {
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(self.places.len());
                self.places.push(row);
                return None;
            }
            std::collections::hash_map::Entry::Occupied(e) => e,
        };
        let first = *entry.get();
        let others = self.more.get(entry.key()).map_or(&[][..], Vec::as_slice);
        let found = std::iter::once(first)
            .chain(others.iter().copied())
            .find(|&at| same(&self.places[at]));
        match found {
            Some(at) => {
                self.dropped += 1;
                Some(std::mem::replace(&mut self.places[at], row))
            }
            None => {
                let key = entry.key().clone();
                self.more.entry(key).or_default().push(self.places.len());
                self.places.push(row);
                None
            }
        }
    }

    /// The rows kept, one per ARN in the order of their first rows, and how many rows were
    /// dropped because a later row had the same ARN.
    pub fn finish(self) -> (Vec<P>, usize) {
        (self.places, self.dropped)
    }
}

/// Keeps one row per ARN by [`LastRowWins`]. Returns how many rows were dropped.
fn drop_duplicates(rows: &mut Vec<UserRow>) -> usize {
    let mut rule = LastRowWins::with_capacity(rows.len());
    for (i, r) in rows.iter().enumerate() {
        rule.push(r.arn.as_str(), i);
    }
    let (keep, dropped) = rule.finish();
    if dropped == 0 {
        return 0;
    }
    let mut taken: Vec<Option<UserRow>> = std::mem::take(rows).into_iter().map(Some).collect();
    *rows = keep
        .into_iter()
        .map(|i| taken[i].take().expect("each kept row is taken once"))
        .collect();
    dropped
}

/// IAM user names may contain commas; a writer that does not quote them splits both the
/// `user` and the `arn` field. When user and arn are the first two columns and the row has
/// an even surplus of fields, rejoin them and accept the row only if the ARN ends with the
/// rejoined name.
fn repair_unquoted_commas(
    record: &csv::ByteRecord,
    width: usize,
    cols: &Columns,
    out: &mut csv::ByteRecord,
) -> bool {
    if cols.user != 0 || cols.arn != 1 || record.len() <= width {
        return false;
    }
    let surplus = record.len() - width;
    if !surplus.is_multiple_of(2) {
        return false;
    }
    let k = surplus / 2;
    let user = record
        .iter()
        .take(k + 1)
        .collect::<Vec<_>>()
        .join(&b","[..]);
    let arn = record
        .iter()
        .skip(k + 1)
        .take(k + 1)
        .collect::<Vec<_>>()
        .join(&b","[..]);
    if !arn.ends_with(&user) || arn.len() <= user.len() || arn[arn.len() - user.len() - 1] != b'/' {
        return false;
    }
    out.clear();
    out.push_field(&user);
    out.push_field(&arn);
    for f in record.iter().skip(2 * k + 2) {
        out.push_field(f);
    }
    true
}

/// IAM user names are 1 to 64 characters of `[\w+=,.@-]` (IAM API reference, CreateUser);
/// anything else in the `user` column (a 20 MB field, a shifted row) is not a user AWS wrote.
const MAX_USER_NAME: usize = 64;

/// [`crate::arn::is_iam_name_char`] for each byte, looked up rather than asked per byte of
/// every row.
static IAM_NAME_BYTES: std::sync::LazyLock<[bool; 256]> = std::sync::LazyLock::new(|| {
    std::array::from_fn(|b| crate::arn::is_iam_name_char(char::from(b as u8)))
});

/// The longest ARN IAM returns (ARNs are at most 2,048 characters).
const MAX_ARN: usize = 2048;

fn parse_row(f: &csv::ByteRecord, c: &Columns) -> Result<UserRow, SkipReason> {
    let raw_user = f[c.user].trim_ascii();
    if raw_user != ROOT_USER.as_bytes()
        && (raw_user.is_empty()
            || raw_user.len() > MAX_USER_NAME
            || !raw_user.iter().all(|&b| IAM_NAME_BYTES[usize::from(b)]))
    {
        return Err(invalid("user", raw_user));
    }
    let raw_arn = f[c.arn].trim_ascii();
    if !raw_arn.starts_with(b"arn:") || raw_arn.len() > MAX_ARN {
        return Err(invalid("arn", raw_arn));
    }
    let user = text(&f[c.user]);
    let arn = text(&f[c.arn]);
    let key = |slot: usize, names: [&'static str; 3]| -> Result<AccessKey, SkipReason> {
        Ok(AccessKey {
            active: boolean(&f[c.key_active[slot]], names[0])?,
            last_rotated: stamp(&f[c.key_last_rotated[slot]], names[1])?,
            last_used: match c.key_last_used[slot] {
                Some(i) => stamp(&f[i], names[2])?,
                None => Stamp::Missing,
            },
        })
    };
    Ok(UserRow {
        is_root: user == ROOT_USER,
        created: stamp(&f[c.created], "user_creation_time")?,
        password_enabled: optional_boolean(&f[c.password_enabled], "password_enabled")?,
        password_last_used: stamp(&f[c.password_last_used], "password_last_used")?,
        password_last_changed: stamp(&f[c.password_last_changed], "password_last_changed")?,
        mfa_active: boolean(&f[c.mfa_active], "mfa_active")?,
        keys: [
            key(
                0,
                [
                    "access_key_1_active",
                    "access_key_1_last_rotated",
                    "access_key_1_last_used_date",
                ],
            )?,
            key(
                1,
                [
                    "access_key_2_active",
                    "access_key_2_last_rotated",
                    "access_key_2_last_used_date",
                ],
            )?,
        ],
        // Certificates only ever add a root credential, so any value but `true` reads as
        // inactive rather than costing the row.
        certs_active: [
            f[c.cert_active[0]]
                .trim_ascii()
                .eq_ignore_ascii_case(b"true"),
            f[c.cert_active[1]]
                .trim_ascii()
                .eq_ignore_ascii_case(b"true"),
        ],
        user,
        arn,
    })
}

fn text(field: &[u8]) -> String {
    match std::str::from_utf8(field) {
        Ok(s) => s.trim().to_owned(),
        Err(_) => String::from_utf8_lossy(field).trim().to_owned(),
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

fn invalid(column: &'static str, field: &[u8]) -> SkipReason {
    SkipReason::InvalidValue {
        column,
        value: truncate(&String::from_utf8_lossy(field)),
    }
}

fn boolean(field: &[u8], column: &'static str) -> Result<bool, SkipReason> {
    optional_boolean(field, column)?.ok_or_else(|| invalid(column, field))
}

/// `true`/`false` in any casing (real reports write lowercase, the docs uppercase);
/// `not_supported` is `None`.
fn optional_boolean(field: &[u8], column: &'static str) -> Result<Option<bool>, SkipReason> {
    let v = field.trim_ascii();
    if v.eq_ignore_ascii_case(b"true") {
        Ok(Some(true))
    } else if v.eq_ignore_ascii_case(b"false") {
        Ok(Some(false))
    } else if v == b"not_supported" {
        Ok(None)
    } else {
        Err(invalid(column, field))
    }
}

/// A timestamp in either style AWS has written (`+00:00` until mid-2024, `Z` since), any
/// other RFC 3339 offset, or a sentinel.
fn stamp(field: &[u8], column: &'static str) -> Result<Stamp, SkipReason> {
    let v = field.trim_ascii();
    match v {
        b"" => Ok(Stamp::Missing),
        b"N/A" => Ok(Stamp::NotApplicable),
        b"no_information" => Ok(Stamp::NoInformation),
        b"not_supported" => Ok(Stamp::NotSupported),
        _ => parse_timestamp(v)
            .map(Stamp::At)
            .ok_or_else(|| invalid(column, field)),
    }
}

/// Parses an ISO 8601 / RFC 3339 timestamp. The two shapes AWS writes take a fast path;
/// anything else goes through chrono's RFC 3339 parser.
pub fn parse_timestamp(v: &[u8]) -> Option<DateTime<Utc>> {
    let fast = match v.len() {
        20 if v[19] == b'Z' => true,
        25 if &v[19..] == b"+00:00" => true,
        _ => false,
    };
    if fast && v[4] == b'-' && v[7] == b'-' && v[10] == b'T' && v[13] == b':' && v[16] == b':' {
        const DIGITS: [usize; 14] = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18];
        if !DIGITS.iter().all(|&i| v[i].is_ascii_digit()) {
            return None;
        }
        let two = |i: usize| u32::from(v[i] - b'0') * 10 + u32::from(v[i + 1] - b'0');
        let date = NaiveDate::from_ymd_opt((two(0) * 100 + two(2)) as i32, two(5), two(8))?;
        let time = date.and_hms_opt(two(11), two(14), two(17))?;
        return Some(time.and_utc());
    }
    let s = std::str::from_utf8(v).ok()?;
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER_22: &str = "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated";

    fn report(rows: &[&str]) -> String {
        let mut s = HEADER_22.to_owned();
        for r in rows {
            s.push('\n');
            s.push_str(r);
        }
        s
    }

    #[test]
    fn a_report_that_lost_its_rows_is_doubted() {
        let good = "bob,arn:aws:iam::1:user/bob,2020-01-01T00:00:00Z,false,N/A,N/A,N/A,true,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A";
        let parsed = |rows: &[&str]| parse(report(rows).as_bytes()).unwrap();
        // Every row of the wrong width.
        let broken = parsed(&["a,b,c", "d,e,f"]);
        let why = broken.doubt(None).expect("no row read");
        assert!(
            why.contains("2 row(s) skipped") && why.contains("line 2"),
            "{why}"
        );
        // No rows at all: fine for a first report, doubted after one with users.
        let empty = parsed(&[]);
        assert_eq!(empty.doubt(None), None);
        assert_eq!(empty.doubt(Some(0)), None);
        assert!(empty.doubt(Some(9)).unwrap().contains("had 9 user(s)"));
        // Some rows read: judged, skipped rows counted.
        let partly = parsed(&[good, "a,b,c"]);
        assert_eq!(partly.doubt(Some(9)), None);
        assert_eq!(partly.skipped.len(), 1);
    }

    #[test]
    fn a_user_or_arn_aws_could_not_have_written_skips_the_row() {
        let row = |user: &str, arn: &str| {
            format!("{user},{arn},2020-01-01T00:00:00Z,false,N/A,N/A,N/A,true,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A")
        };
        let huge = "x".repeat(20_000_000);
        let long = "a".repeat(65);
        for (user, arn, column) in [
            (huge.as_str(), "arn:aws:iam::1:user/x", "user"),
            (long.as_str(), "arn:aws:iam::1:user/x", "user"),
            ("", "arn:aws:iam::1:user/x", "user"),
            ("b\u{e9}b", "arn:aws:iam::1:user/x", "user"),
            ("bob", "not-an-arn", "arn"),
            ("bob", huge.as_str(), "arn"),
        ] {
            let r = parse(report(&[&row(user, arn)]).as_bytes()).unwrap();
            assert!(r.rows.is_empty(), "{}", &user[..user.len().min(20)]);
            assert!(
                matches!(&r.skipped[0].reason, SkipReason::InvalidValue { column: c, value } if *c == column && value.chars().count() <= 64),
                "{:?}",
                r.skipped[0]
            );
        }
        let ok = parse(
            report(&[&row(
                "\"a.b+c=d,e@f_g-h\"",
                "\"arn:aws:iam::1:user/a.b+c=d,e@f_g-h\"",
            )])
            .as_bytes(),
        )
        .unwrap();
        assert_eq!(ok.rows.len(), 1);
        assert_eq!(ok.rows[0].user, "a.b+c=d,e@f_g-h");
    }

    #[test]
    fn active_certificates_are_read() {
        let row = "bob,arn:aws:iam::1:user/bob,2020-01-01T00:00:00Z,false,N/A,N/A,N/A,true,TRUE,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,true,2021-01-01T00:00:00Z,not_supported,N/A";
        let r = parse(report(&[row]).as_bytes()).unwrap();
        assert_eq!(r.rows[0].certs_active, [true, false]);
        assert!(r.rows[0].keys[0].is_active());
    }

    const ALICE: &str = "alice,arn:aws:iam::111122223333:user/alice,2020-01-01T00:00:00+00:00,true,2024-06-01T10:00:00Z,2020-01-01T00:00:00+00:00,N/A,false,true,2020-01-02T00:00:00+00:00,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A";

    #[test]
    fn both_timestamp_styles_parse_to_the_same_instant() {
        let a = parse_timestamp(b"2019-05-02T21:49:50+00:00").unwrap();
        let b = parse_timestamp(b"2019-05-02T21:49:50Z").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.timestamp(), 1_556_833_790);
        let c = parse_timestamp(b"2019-05-02T23:49:50+02:00").unwrap();
        assert_eq!(a, c);
        assert!(parse_timestamp(b"2019-13-02T21:49:50Z").is_none());
        assert!(parse_timestamp(b"yesterday").is_none());
    }

    #[test]
    fn sentinels_and_empty_fields_are_not_dates() {
        for (v, want) in [
            ("N/A", Stamp::NotApplicable),
            ("no_information", Stamp::NoInformation),
            ("not_supported", Stamp::NotSupported),
            ("", Stamp::Missing),
        ] {
            assert_eq!(stamp(v.as_bytes(), "c").unwrap(), want, "{v:?}");
        }
        assert!(stamp(b"tomorrow", "c").is_err());
    }

    #[test]
    fn booleans_accept_any_casing() {
        assert_eq!(boolean(b"TRUE", "c"), Ok(true));
        assert_eq!(boolean(b"false", "c"), Ok(false));
        assert_eq!(optional_boolean(b"not_supported", "c"), Ok(None));
        assert!(boolean(b"yes", "c").is_err());
    }

    #[test]
    fn bom_crlf_and_missing_final_newline() {
        let text = format!("\u{feff}{}\r\n{}", HEADER_22, ALICE);
        let r = parse(text.as_bytes()).unwrap();
        assert_eq!(r.rows.len(), 1);
        assert_eq!(r.rows[0].user, "alice");
        assert_eq!(r.account_id.as_deref(), Some("111122223333"));
        assert!(r.rows[0].keys[0].is_active());
        assert!(!r.rows[0].keys[1].exists());
    }

    #[test]
    fn columns_are_found_by_name_not_position() {
        let cols: Vec<&str> = HEADER_22.split(',').collect();
        let vals: Vec<&str> = ALICE.split(',').collect();
        let text = format!(
            "{}\n{}",
            cols.iter().rev().cloned().collect::<Vec<_>>().join(","),
            vals.iter().rev().cloned().collect::<Vec<_>>().join(",")
        );
        let r = parse(text.as_bytes()).unwrap();
        assert_eq!(r.rows[0].user, "alice");
        assert_eq!(r.rows[0].password_enabled, Some(true));
    }

    #[test]
    fn a_23rd_column_and_unknown_extras_are_ignored() {
        let text = format!("{HEADER_22},additional_credentials_info,future_column\n{ALICE},0,x");
        let r = parse(text.as_bytes()).unwrap();
        assert_eq!(r.columns, 24);
        assert_eq!(r.rows.len(), 1);
    }

    #[test]
    fn wrong_width_rows_are_counted_and_skipped() {
        let r = parse(report(&[ALICE, "bob,arn:aws:iam::111122223333:user/bob,oops"]).as_bytes())
            .unwrap();
        assert_eq!(r.rows.len(), 1);
        assert_eq!(
            r.skipped,
            vec![SkippedRow {
                line: 3,
                reason: SkipReason::WrongWidth {
                    found: 3,
                    expected: 22
                }
            }]
        );
    }

    #[test]
    fn invalid_values_skip_the_row() {
        let bad = ALICE.replacen(",true,", ",maybe,", 1);
        let r = parse(report(&[&bad]).as_bytes()).unwrap();
        assert!(r.rows.is_empty());
        assert!(matches!(
            r.skipped[0].reason,
            SkipReason::InvalidValue {
                column: "password_enabled",
                ..
            }
        ));
    }

    #[test]
    fn quoted_and_unquoted_commas_in_names() {
        let quoted = ALICE
            .replacen("alice,", "\"al,ice\",", 1)
            .replacen("user/alice,", "\"user/al,ice\",", 1)
            .replacen(
                "arn:aws:iam::111122223333:\"user/al,ice\"",
                "\"arn:aws:iam::111122223333:user/al,ice\"",
                1,
            );
        let unquoted =
            ALICE
                .replacen("alice,", "b,o,b,", 1)
                .replacen("user/alice,", "user/b,o,b,", 1);
        let r = parse(report(&[&quoted, &unquoted]).as_bytes()).unwrap();
        assert!(r.skipped.is_empty(), "{:?}", r.skipped);
        assert_eq!(r.rows[0].user, "al,ice");
        assert_eq!(r.rows[1].user, "b,o,b");
        assert_eq!(r.rows[1].arn, "arn:aws:iam::111122223333:user/b,o,b");
        assert!(r.rows[1].mfa_active == r.rows[0].mfa_active);
    }

    #[test]
    fn duplicate_users_keep_the_last_row() {
        let later = ALICE.replacen(",false,true,", ",true,true,", 1);
        let r = parse(report(&[ALICE, &later]).as_bytes()).unwrap();
        assert_eq!(r.rows.len(), 1);
        assert_eq!(r.duplicates, 1);
        assert!(r.rows[0].mfa_active);
    }

    #[test]
    fn rows_whose_keys_collide_are_told_apart() {
        // Keyed by length, "bb", "cc" and "dd" share a key: the rule must still keep one row
        // per ARN, as keyed by the ARN itself.
        let arns = ["a", "bb", "a", "cc", "bb", "dd", "cc", "a", "dd"];
        let mut exact = LastRowWins::with_capacity(0);
        let mut by_length: LastRowWins<usize, (usize, &str)> = LastRowWins::with_capacity(0);
        for (i, arn) in arns.iter().enumerate() {
            let replaced = exact.push(*arn, i);
            let told = by_length.push_with(arn.len(), (i, *arn), |&(_, kept)| kept == *arn);
            assert_eq!(replaced, told.map(|(j, _)| j), "{i}");
        }
        let (exact, exact_dropped) = exact.finish();
        let (told, told_dropped) = by_length.finish();
        assert_eq!(exact, told.iter().map(|(i, _)| *i).collect::<Vec<_>>());
        assert_eq!((exact, exact_dropped), (vec![7, 4, 6, 8], 5));
        assert_eq!(told_dropped, 5);
    }

    #[test]
    fn root_is_exactly_root_account() {
        let root = ALICE
            .replacen("alice,", "<root_account>,", 1)
            .replacen("user/alice", "root", 1);
        let fake =
            ALICE
                .replacen("alice,", "kyle_root,", 1)
                .replacen("user/alice", "user/kyle_root", 1);
        let r = parse(report(&[&root, &fake]).as_bytes()).unwrap();
        assert!(r.rows[0].is_root);
        assert!(!r.rows[1].is_root);
        assert_eq!(r.root().unwrap().user, ROOT_USER);
        assert_eq!(r.users().count(), 1);
    }

    #[test]
    fn unreadable_reports_are_errors() {
        assert_eq!(parse(b""), Err(ReportError::Empty));
        assert_eq!(parse(b" \n\r\n"), Err(ReportError::Empty));
        let err = parse(b"<html><body>Access denied</body></html>").unwrap_err();
        assert!(
            matches!(err, ReportError::MissingColumns { ref missing, .. } if missing.len() == 16)
        );
        let no_mfa = HEADER_22.replace(",mfa_active", "");
        let err = parse(no_mfa.as_bytes()).unwrap_err().to_string();
        assert!(err.contains("mfa_active"), "{err}");
    }
}
