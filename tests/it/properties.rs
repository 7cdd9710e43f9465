//! Property tests: generated credential reports (every sentinel, 16/22/23 columns in any order,
//! rows of the wrong width, quoting, BOM, CRLF, invalid UTF-8, huge fields) go through parse,
//! judge and render. Nothing may panic, and what the metrics say must agree with the rows the
//! report holds. Case counts are capped so the file runs in seconds in a debug build.

mod common_exposition {
    //! A small exposition-format checker, independent of the renderer it checks.

    use std::collections::HashSet;

    fn is_name(s: &str) -> bool {
        let mut chars = s.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    }

    /// Splits `name{labels} value` and checks label syntax; returns (name, labels, value).
    fn sample(line: &str) -> Result<(&str, String, &str), String> {
        let (name, rest) = match line.find(['{', ' ']) {
            Some(i) => line.split_at(i),
            None => return Err(format!("no value: {line:?}")),
        };
        if !is_name(name) {
            return Err(format!("bad metric name {name:?}"));
        }
        let mut labels = String::new();
        let mut rest = rest;
        if let Some(body) = rest.strip_prefix('{') {
            // label="value",... with \\, \" and \n the only escapes.
            let mut chars = body.char_indices().peekable();
            let mut names = HashSet::new();
            loop {
                let start = chars.peek().map(|&(i, _)| i).ok_or("open labels")?;
                if body[start..].starts_with('}') {
                    rest = &body[start + 1..];
                    break;
                }
                let eq = body[start..].find("=\"").ok_or("label without =\"")? + start;
                let label = &body[start..eq];
                if !is_name(label) || label.starts_with("__") || !names.insert(label) {
                    return Err(format!("bad or repeated label name {label:?}"));
                }
                while chars.peek().is_some_and(|&(i, _)| i < eq + 2) {
                    chars.next();
                }
                let mut closed = false;
                while let Some((_, c)) = chars.next() {
                    match c {
                        '\\' => match chars.next() {
                            Some((_, '\\' | '"' | 'n')) => {}
                            other => return Err(format!("bad escape {other:?} in {line:?}")),
                        },
                        '"' => {
                            closed = true;
                            break;
                        }
                        '\n' => return Err("raw newline in a label value".into()),
                        _ => {}
                    }
                }
                if !closed {
                    return Err(format!("unterminated label value in {line:?}"));
                }
                match chars.next() {
                    Some((_, ',')) => {}
                    Some((i, '}')) => {
                        rest = &body[i + 1..];
                        break;
                    }
                    other => return Err(format!("unexpected {other:?} after a label value")),
                }
            }
            labels = line[name.len()..line.len() - rest.len()].to_owned();
        }
        let value = rest
            .strip_prefix(' ')
            .ok_or_else(|| format!("no space before the value: {line:?}"))?;
        let ok = matches!(value, "+Inf" | "-Inf" | "NaN") || value.parse::<f64>().is_ok();
        if !ok {
            return Err(format!("bad value {value:?}"));
        }
        Ok((name, labels, value))
    }

    /// Checks text exposition: every family declared once with HELP then TYPE, its samples
    /// right after it and named after it, valid labels and values, and no series twice.
    pub fn check(text: &str) -> Result<(), String> {
        if !text.is_empty() && !text.ends_with('\n') {
            return Err("no final newline".into());
        }
        let mut families = HashSet::new();
        let mut series = HashSet::new();
        let mut current: Option<(String, String)> = None;
        let mut help_for: Option<String> = None;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let name = rest.split(' ').next().unwrap_or_default();
                if !is_name(name) || !families.insert(name.to_owned()) {
                    return Err(format!("bad or repeated family {name:?}"));
                }
                help_for = Some(name.to_owned());
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut parts = rest.split(' ');
                let (name, kind) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                if help_for.as_deref() != Some(name) {
                    return Err(format!("TYPE {name} without its HELP just before"));
                }
                if !matches!(kind, "gauge" | "counter" | "histogram") {
                    return Err(format!("unexpected type {kind:?}"));
                }
                current = Some((name.to_owned(), kind.to_owned()));
            } else if line.starts_with('#') {
                return Err(format!("unexpected comment {line:?}"));
            } else {
                let (name, labels, _) = sample(line)?;
                let (family, kind) = current.as_ref().ok_or("a sample before any TYPE")?;
                let belongs = name == family
                    || (kind == "histogram"
                        && [
                            format!("{family}_bucket"),
                            format!("{family}_sum"),
                            format!("{family}_count"),
                        ]
                        .iter()
                        .any(|n| n == name));
                if !belongs {
                    return Err(format!("sample {name} under family {family}"));
                }
                if !series.insert(format!("{name}{labels}")) {
                    return Err(format!("series twice: {name}{labels}"));
                }
            }
        }
        Ok(())
    }
}

use chrono::{DateTime, TimeZone, Utc};
use iam_credential_report::expose::{compose, render_report, RenderOptions};
use iam_credential_report::judge::{judge, Assessment, Check, Thresholds};
use iam_credential_report::report::{parse, CredentialReport, ReportError, REQUIRED_COLUMNS};
use iam_credential_report::synthetic;
use proptest::prelude::*;
use std::collections::HashSet;

const ACCOUNT: &str = "123456789012";

/// Every column of a current report, in AWS's order.
const ALL_COLUMNS: [&str; 23] = [
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
    "access_key_1_last_used_date",
    "access_key_1_last_used_region",
    "access_key_1_last_used_service",
    "access_key_2_active",
    "access_key_2_last_rotated",
    "access_key_2_last_used_date",
    "access_key_2_last_used_region",
    "access_key_2_last_used_service",
    "cert_1_active",
    "cert_1_last_rotated",
    "cert_2_active",
    "cert_2_last_rotated",
    "additional_credentials_info",
];

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 0, 0, 0).unwrap()
}

/// A generated field: its text and whether the parser must accept it in its column.
#[derive(Clone)]
struct Field {
    text: Vec<u8>,
    valid: bool,
}

impl std::fmt::Debug for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mark = if self.valid { "" } else { " (invalid)" };
        write!(f, "{:?}{mark}", String::from_utf8_lossy(&self.text))
    }
}

fn field(text: impl Into<Vec<u8>>, valid: bool) -> Field {
    Field {
        text: text.into(),
        valid,
    }
}

/// A date column: a timestamp in either AWS style (or another RFC 3339 offset, or at the
/// edges of the calendar), a sentinel, an empty field, or something no date column allows.
fn date() -> impl Strategy<Value = Field> {
    let stamp = (0i64..4_102_444_800, 0u8..4).prop_map(|(secs, style)| {
        let t = Utc.timestamp_opt(secs, 0).unwrap();
        let text = match style {
            0 => t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
            1 => t.format("%Y-%m-%dT%H:%M:%S+00:00").to_string(),
            2 => t.format("%Y-%m-%dT%H:%M:%S%.3f-07:30").to_string(),
            _ => t.format(" %Y-%m-%dT%H:%M:%SZ ").to_string(),
        };
        field(text, true)
    });
    prop_oneof![
        6 => stamp,
        2 => Just(field("N/A", true)),
        1 => Just(field("no_information", true)),
        1 => Just(field("not_supported", true)),
        1 => Just(field("", true)),
        1 => prop_oneof![
            Just(field("9999-12-31T23:59:59Z", true)),
            Just(field("0000-01-01T00:00:00Z", true)),
            Just(field("1970-01-01T00:00:00+14:00", true)),
        ],
        1 => prop_oneof![
            Just(field("n/a", false)),
            Just(field("2026-13-01T00:00:00Z", false)),
            Just(field("2026-02-30T00:00:00+00:00", false)),
            Just(field("2026-11-25T24:00:00Z", false)),
            Just(field("yesterday", false)),
            Just(field(&b"2026-11-25T00:00:0\xff+00:00"[..], false)),
        ],
    ]
}

/// A strict boolean column (`mfa_active`, `access_key_N_active`).
fn boolean() -> impl Strategy<Value = Field> {
    prop_oneof![
        4 => Just(field("true", true)),
        4 => Just(field("false", true)),
        1 => Just(field("TRUE", true)),
        1 => Just(field(" False ", true)),
        1 => Just(field("not_supported", false)),
        1 => Just(field("yes", false)),
        1 => Just(field("", false)),
    ]
}

/// `password_enabled`, where root's `not_supported` is allowed.
fn password_enabled() -> impl Strategy<Value = Field> {
    boolean().prop_map(|f| {
        let valid = f.valid || f.text == b"not_supported";
        Field { valid, ..f }
    })
}

/// A column the parser does not read: anything goes.
fn free() -> impl Strategy<Value = Field> {
    prop_oneof![
        Just(field("N/A", true)),
        Just(field("us-east-1", true)),
        "[ -~]{0,12}".prop_map(|s| field(s, true)),
    ]
}

/// User names: IAM's allowed characters (commas included), plus what a hostile or broken
/// report could hold (quotes, newlines, backslashes, non-ASCII), which the parser skips. Never
/// whitespace at the ends: the parser trims fields, and names must stay distinct after
/// trimming.
fn user_name() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "[a-zA-Z0-9+=,.@_-]{1,20}",
        1 => "[a-z]{1,4}[\"\\\\\n\r{}=é☃ ]{1,3}[a-z]{1,4}",
        1 => Just("kyle_root".to_owned()),
    ]
}

/// One generated row, by column name, and whether the parser must keep it.
#[derive(Debug, Clone)]
struct Row {
    is_root: bool,
    values: Vec<(&'static str, Field)>,
    /// `None`: the right width; `Some(true)`: one field more; `Some(false)`: one fewer.
    width_error: Option<bool>,
    /// Replace a byte of the user name with invalid UTF-8.
    mangle_user: bool,
    /// Quote every field, not only those that need it.
    quote_all: bool,
}

fn row() -> impl Strategy<Value = Row> {
    let dates = proptest::collection::vec(date(), 6);
    let bools = proptest::collection::vec(boolean(), 3);
    let frees = proptest::collection::vec(free(), 10);
    (
        (user_name(), prop::bool::weighted(0.08)),
        dates,
        bools,
        password_enabled(),
        frees,
        prop_oneof![8 => Just(None), 1 => Just(Some(true)), 1 => Just(Some(false))],
        prop::bool::weighted(0.05),
        any::<bool>(),
    )
        .prop_map(
            |((name, root), d, b, pw, fr, width_error, mangle_user, quote_all)| {
                let (user, arn, valid) = if root {
                    (
                        "<root_account>".to_owned(),
                        format!("arn:aws:iam::{ACCOUNT}:root"),
                        true,
                    )
                } else {
                    let arn = format!("arn:aws:iam::{ACCOUNT}:user/{name}");
                    // Names IAM could not have written cost the row (a 20 MB field, a shifted
                    // row); the parser skips and counts it.
                    let valid = name.len() <= 64
                        && name
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b));
                    (name, arn, valid)
                };
                let mut fr = fr.into_iter();
                let mut free = || fr.next().unwrap();
                let values = vec![
                    ("user", field(user, valid)),
                    ("arn", field(arn, true)),
                    ("user_creation_time", d[0].clone()),
                    ("password_enabled", pw),
                    ("password_last_used", d[1].clone()),
                    ("password_last_changed", d[2].clone()),
                    ("password_next_rotation", free()),
                    ("mfa_active", b[0].clone()),
                    ("access_key_1_active", b[1].clone()),
                    ("access_key_1_last_rotated", d[3].clone()),
                    ("access_key_1_last_used_date", d[4].clone()),
                    ("access_key_1_last_used_region", free()),
                    ("access_key_1_last_used_service", free()),
                    ("access_key_2_active", b[2].clone()),
                    ("access_key_2_last_rotated", d[5].clone()),
                    ("access_key_2_last_used_date", d[0].clone()),
                    ("access_key_2_last_used_region", free()),
                    ("access_key_2_last_used_service", free()),
                    ("cert_1_active", free()),
                    ("cert_1_last_rotated", free()),
                    ("cert_2_active", free()),
                    ("cert_2_last_rotated", free()),
                    ("additional_credentials_info", free()),
                ];
                Row {
                    is_root: root,
                    values,
                    width_error,
                    mangle_user,
                    quote_all,
                }
            },
        )
}

/// How the whole file is laid out.
#[derive(Debug, Clone)]
struct Layout {
    columns: Vec<&'static str>,
    bom: bool,
    crlf: bool,
    final_newline: bool,
    blank_lines: bool,
}

fn layout() -> impl Strategy<Value = Layout> {
    let widths = prop_oneof![Just(16usize), Just(22), Just(23)];
    (
        widths,
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_flat_map(|(width, shuffle, bom, crlf, final_newline, blank_lines)| {
            let columns: Vec<&'static str> = match width {
                16 => REQUIRED_COLUMNS.to_vec(),
                22 => ALL_COLUMNS[..22].to_vec(),
                _ => ALL_COLUMNS.to_vec(),
            };
            let columns = if shuffle {
                Just(columns).prop_shuffle().boxed()
            } else {
                Just(columns).boxed()
            };
            columns.prop_map(move |columns| Layout {
                columns,
                bom,
                crlf,
                final_newline,
                blank_lines,
            })
        })
}

fn write_field(out: &mut Vec<u8>, text: &[u8], quote: bool) {
    let needs = text
        .iter()
        .any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r'))
        || text.first().is_some_and(u8::is_ascii_whitespace);
    if quote || needs {
        out.push(b'"');
        for &b in text {
            if b == b'"' {
                out.push(b'"');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(text);
    }
}

/// The report's bytes, and for each row whether the parser must keep it.
fn render_csv(layout: &Layout, rows: &[Row]) -> (Vec<u8>, Vec<bool>) {
    let eol: &[u8] = if layout.crlf { b"\r\n" } else { b"\n" };
    let mut out = Vec::new();
    if layout.bom {
        out.extend_from_slice(b"\xEF\xBB\xBF");
    }
    out.extend_from_slice(layout.columns.join(",").as_bytes());
    let mut kept = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        out.extend_from_slice(eol);
        if layout.blank_lines && i % 3 == 1 {
            out.extend_from_slice(eol);
        }
        let mut fields: Vec<Field> = layout
            .columns
            .iter()
            .map(|c| {
                let (_, f) = row.values.iter().find(|(name, _)| name == c).unwrap();
                f.clone()
            })
            .collect();
        if row.mangle_user {
            let at = layout.columns.iter().position(|c| *c == "user").unwrap();
            fields[at].text.push(0xFF);
            // Not a name IAM allows: the row is skipped.
            fields[at].valid = false;
        }
        match row.width_error {
            Some(true) => fields.push(field("extra", true)),
            Some(false) => {
                fields.pop();
            }
            None => {}
        }
        kept.push(row.width_error.is_none() && fields.iter().all(|f| f.valid));
        for (j, f) in fields.iter().enumerate() {
            if j > 0 {
                out.push(b',');
            }
            write_field(&mut out, &f.text, row.quote_all);
        }
    }
    if layout.final_newline {
        out.extend_from_slice(eol);
    }
    (out, kept)
}

/// Judges and renders a parsed report and checks what holds for every report.
fn judge_and_render(report: &CredentialReport) -> Result<(Assessment, String), TestCaseError> {
    let assessment = judge(report, now(), &Thresholds::default());
    for &check in Check::ALL {
        let findings = assessment
            .findings
            .iter()
            .filter(|f| f.check == check)
            .count();
        prop_assert_eq!(assessment.count(check), findings as u64, "{}", check.name());
    }
    for f in &assessment.findings {
        let row = &report.rows[f.row];
        let root_check = matches!(
            f.check,
            Check::RootWithoutMfa | Check::RootAccessKey | Check::RootUsedRecently
        );
        prop_assert_eq!(row.is_root, root_check, "{:?} on {}", f.check, row.user);
        prop_assert_eq!(f.key.is_some(), f.check.counts_keys(), "{:?}", f);
        if let Some(k) = f.key {
            prop_assert!(report.rows[f.row].keys[usize::from(k) - 1].is_active());
        }
    }

    let users = report.users().count();
    let per_user = compose([&render_report(
        ACCOUNT,
        report,
        &assessment,
        Some(now()),
        now(),
        &RenderOptions::all_users(),
    )]);
    let aggregate = compose([&render_report(
        ACCOUNT,
        report,
        &assessment,
        Some(now()),
        now(),
        &RenderOptions::default(),
    )]);
    for text in [&per_user, &aggregate] {
        if let Err(e) = common_exposition::check(text) {
            return Err(TestCaseError::fail(format!("{e}\n{text}")));
        }
        let users_line = format!("aws_iam_users{{account_id=\"{ACCOUNT}\"}} {users}\n");
        prop_assert!(text.contains(&users_line), "no {users_line:?}");
        for &check in Check::ALL {
            let series = format!(
                "aws_iam_check_failures{{account_id=\"{ACCOUNT}\",check=\"{}\"}} ",
                check.name(),
            );
            let line = format!("{series}{}\n", assessment.count(check));
            // Root checks are unknown, not passing, without a root row.
            if check.is_root() && report.root().is_none() {
                prop_assert!(!text.contains(&series), "{series:?} without a root row");
            } else {
                prop_assert!(text.contains(&line), "no {line:?}");
            }
        }
        let root_present = format!(
            "aws_iam_credential_report_root_present{{account_id=\"{ACCOUNT}\"}} {}\n",
            u8::from(report.root().is_some())
        );
        prop_assert!(text.contains(&root_present), "no {root_present:?}");
    }
    prop_assert!(!aggregate.contains("user=\""), "per-user series while off");
    let pairs: HashSet<(usize, Check)> = assessment
        .findings
        .iter()
        .map(|f| (f.row, f.check))
        .collect();
    let failed_series = per_user
        .lines()
        .filter(|l| l.starts_with("aws_iam_user_check_failed{"))
        .count();
    prop_assert_eq!(failed_series, pairs.len());
    Ok((assessment, per_user))
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        // Shrinking a failure of a 40-row report can take long; a few hundred steps find a
        // small enough one.
        max_shrink_iters: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(128))]

    /// Well-formed and broken rows in every layout: the rows the parser keeps, skips and
    /// merges are exactly the generated ones, and the judged, rendered result is consistent.
    #[test]
    fn generated_reports_parse_judge_and_render(
        layout in layout(),
        rows in proptest::collection::vec(row(), 0..40),
    ) {
        let (csv, kept) = render_csv(&layout, &rows);
        let report = match parse(&csv) {
            Ok(r) => r,
            Err(e) => return Err(TestCaseError::fail(format!("{e}"))),
        };
        prop_assert_eq!(report.columns, layout.columns.len());
        prop_assert_eq!(report.has_key_last_used, layout.columns.len() > 16);

        // Kept rows, minus later duplicates of an ARN.
        // A duplicated ARN keeps its last row; a root row with a mangled name is a user.
        let mut last_by_arn = std::collections::HashMap::new();
        for (row, keep) in rows.iter().zip(&kept) {
            if *keep {
                last_by_arn.insert(row.values[1].1.text.clone(), row.is_root && !row.mangle_user);
            }
        }
        let expected_rows = last_by_arn.len();
        let expected_users = last_by_arn.values().filter(|root| !**root).count();
        let skipped = kept.iter().filter(|k| !**k).count();
        prop_assert_eq!(report.skipped.len(), skipped, "{:?}", report.skipped);
        prop_assert_eq!(report.rows.len(), expected_rows);
        prop_assert_eq!(report.rows.len() + report.duplicates + skipped, rows.len());
        prop_assert_eq!(report.users().count(), expected_users);
        prop_assert!(report.rows.iter().all(|r| r.is_root == (r.user == "<root_account>")));
        let account = (!report.rows.is_empty()).then_some(ACCOUNT);
        prop_assert_eq!(report.account_id.as_deref(), account);
        judge_and_render(&report)?;
    }

    /// Arbitrary bytes after a valid header, and arbitrary bytes alone: no panic, and a
    /// usable header always gives a report.
    #[test]
    fn arbitrary_bytes_never_panic(
        width in prop_oneof![Just(16usize), Just(22), Just(23)],
        body in proptest::collection::vec(
            prop_oneof![
                4 => any::<u8>(),
                2 => Just(b','),
                1 => Just(b'"'),
                1 => Just(b'\n'),
                1 => Just(b'\r'),
            ],
            0..2048,
        ),
        with_header in any::<bool>(),
    ) {
        let mut csv = Vec::new();
        if with_header {
            let cols: &[&str] = match width {
                16 => &REQUIRED_COLUMNS,
                22 => &ALL_COLUMNS[..22],
                _ => &ALL_COLUMNS,
            };
            csv.extend_from_slice(cols.join(",").as_bytes());
            csv.push(b'\n');
        }
        csv.extend_from_slice(&body);
        match parse(&csv) {
            Ok(report) => {
                judge_and_render(&report)?;
            }
            Err(e) => prop_assert!(!with_header, "a valid header was refused: {}", e),
        }
    }

    /// Synthetic reports of any size and seed parse completely.
    #[test]
    fn synthetic_reports_are_read_completely(users in 0usize..300, seed in any::<u64>()) {
        let text = synthetic::report(ACCOUNT, users, now(), seed);
        let report = parse(text.as_bytes()).unwrap();
        prop_assert!(report.skipped.is_empty());
        prop_assert_eq!(report.users().count(), users);
        prop_assert!(report.root().is_some());
        judge_and_render(&report)?;
    }
}

proptest! {
    #![proptest_config(config(12))]

    /// Fields of hundreds of kilobytes, in a column the parser reads or one it does not.
    #[test]
    fn huge_fields_are_handled(
        size in 64usize * 1024..512 * 1024,
        column in 0usize..23,
        byte in prop_oneof![Just(b'a'), Just(b','), Just(b'"'), Just(b'\n'), Just(0xFFu8)],
    ) {
        let csv = synthetic::report(ACCOUNT, 3, now(), 1);
        let mut lines: Vec<Vec<u8>> = csv.lines().map(|l| l.as_bytes().to_vec()).collect();
        let huge = vec![byte; size];
        let mut fields: Vec<Vec<u8>> = lines[2].split(|b| *b == b',').map(<[u8]>::to_vec).collect();
        fields[column] = Vec::new();
        write_field(&mut fields[column], &huge, false);
        lines[2] = fields.join(&b","[..]);
        let input = lines.join(&b"\n"[..]);
        let report = parse(&input).unwrap();
        // The three other rows are untouched; the huge one is kept or skipped, never split.
        prop_assert_eq!(report.rows.len() + report.skipped.len(), 4);
        judge_and_render(&report)?;
    }
}

#[test]
fn reports_without_a_usable_header_are_errors() {
    assert_eq!(parse(b""), Err(ReportError::Empty));
    assert_eq!(parse(b"\xEF\xBB\xBF\r\n \r\n"), Err(ReportError::Empty));
    assert!(matches!(
        parse(b"user,arn\nalice,arn:aws:iam::1:user/alice\n"),
        Err(ReportError::MissingColumns { .. })
    ));
}
