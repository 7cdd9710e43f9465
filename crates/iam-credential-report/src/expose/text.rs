//! A direct writer of Prometheus text exposition (format 0.0.4) sample lines.
//!
//! Why by hand: a metrics library's encoder wants one object per series (a label vector, a
//! metric message, a family message) before it writes a byte, and with per-user series an
//! account has tens of thousands of series; building and encoding those objects cost several
//! times the text itself. Here every sample is appended straight into its family's `String`
//! body, with no object and no allocation per sample, in the manner of linkerd2-proxy's
//! `linkerd/metrics/src/fmt.rs`. For per-user series the shared start of a family's lines (name
//! and account label, [`Prefix`]) is rendered once per family and each user's label
//! ([`Labels`]) once per user, so a sample is a few copies and its value.
//!
//! The output is byte for byte what the `prometheus` crate's (0.14) `TextEncoder` wrote before
//! (the golden files pin it, and a unit test compares the two):
//!
//! - `name{label="value",...} value`, labels in the order given, no braces without labels, no
//!   timestamp;
//! - label values escaped: `\` as `\\`, `"` as `\"` and a newline as `\n`; nothing else (tabs,
//!   control characters and non-ASCII text pass as they are), and label names never (they
//!   are constants); HELP texts are written by `compose` as they are, and hold none of these;
//! - values as Rust's `Display` for `f64` writes them: integral values without a fraction or an
//!   exponent (`1`, `1795579920`, `1000000000000000000000` for 1e21), others in their shortest
//!   round-tripping decimal form (`0.5`, `1795579920.123`, `0.0000001`), and `NaN`, `inf`,
//!   `-inf` and `-0` (the format says `+Inf` and `-Inf`; no sample is infinite, and the old
//!   encoder's spelling is kept);
//! - a histogram as cumulative `_bucket` lines with `le` the last label and its bound written
//!   like a value (`le="86400"`), a closing `le="+Inf"` bucket holding the count, then `_sum`
//!   and `_count`.

use std::fmt::Write as _;

/// Integral values below this magnitude are written through the integer fast path: every
/// integer up to 2^53 is exact in an `f64`, so its shortest round-tripping decimal form (what
/// `Display` prints) is the integer's own digits.
const EXACT_INTEGER_LIMIT: f64 = 9_007_199_254_740_992.0;

/// Labels rendered once each as `,name="value"` (the value escaped) into one buffer, to be
/// written into many sample lines after a [`Prefix`]. [`Labels::get`]`(i)` is the `i`-th
/// pushed.
#[derive(Debug, Default)]
pub(super) struct Labels {
    text: String,
    ends: Vec<usize>,
}

impl Labels {
    /// Room for `count` labels of `bytes` bytes in all (each `,name="value"`).
    pub(super) fn with_capacity(count: usize, bytes: usize) -> Labels {
        Labels {
            text: String::with_capacity(bytes),
            ends: Vec::with_capacity(count),
        }
    }

    /// Renders the label `name="value"`.
    pub(super) fn push(&mut self, name: &str, value: &str) {
        self.text.push(',');
        self.text.push_str(name);
        self.text.push_str("=\"");
        escaped(&mut self.text, value);
        self.text.push('"');
        self.ends.push(self.text.len());
    }

    /// An empty entry, which writes nothing: keeps the next label's index.
    pub(super) fn push_none(&mut self) {
        self.ends.push(self.text.len());
    }

    #[inline]
    pub(super) fn get(&self, i: usize) -> Label<'_> {
        let start = i.checked_sub(1).map_or(0, |p| self.ends[p]);
        Label(&self.text[start..self.ends[i]])
    }
}

/// One label of [`Labels`], rendered.
#[derive(Debug, Clone, Copy)]
pub(super) struct Label<'a>(&'a str);

impl Label<'_> {
    /// Whether this is a [`Labels::push_none`] entry.
    #[inline]
    pub(super) fn is_empty(self) -> bool {
        self.0.is_empty()
    }
}

/// The start shared by the sample lines of one family and account, `name{account_id="..."`,
/// rendered once; [`Prefix::sample`] completes a line with further [`Label`]s and a value.
#[derive(Debug)]
pub(super) struct Prefix(String);

impl Prefix {
    /// `name{first="value"`: the family's name and its first label.
    pub(super) fn new(name: &str, first: (&str, &str)) -> Prefix {
        let mut p = String::with_capacity(name.len() + first.0.len() + first.1.len() + 4);
        p.push_str(name);
        p.push('{');
        p.push_str(first.0);
        p.push_str("=\"");
        escaped(&mut p, first.1);
        p.push('"');
        Prefix(p)
    }

    /// The length of a line with these labels, its value aside: to reserve room for lines.
    #[inline]
    pub(super) fn line_len(&self, labels: &[Label]) -> usize {
        self.0.len() + labels.iter().map(|l| l.0.len()).sum::<usize>() + 3
    }

    /// Appends `prefix,label="value",...} value\n`.
    pub(super) fn sample(&self, buf: &mut String, labels: &[Label], v: f64) {
        buf.push_str(&self.0);
        for l in labels {
            buf.push_str(l.0);
        }
        buf.push_str("} ");
        value(buf, v);
        buf.push('\n');
    }
}

/// Appends one sample line: `name{labels} value\n`.
pub(super) fn sample(buf: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    sample_with(buf, name, "", labels, None, value);
}

/// Appends one histogram series: a cumulative `_bucket` line per upper bound (`counts[i]` is
/// the cumulative count at `bounds[i]`), the `+Inf` bucket, `_sum` and `_count`.
pub(super) fn histogram(
    buf: &mut String,
    name: &str,
    labels: &[(&str, &str)],
    bounds: &[f64],
    counts: &[u64],
    count: u64,
    sum: f64,
) {
    debug_assert_eq!(bounds.len(), counts.len());
    // Room for a bound's digits, so no heap string per bucket.
    let mut le = String::with_capacity(24);
    for (&bound, &cumulative) in bounds.iter().zip(counts) {
        le.clear();
        value(&mut le, bound);
        sample_with(
            buf,
            name,
            "_bucket",
            labels,
            Some(("le", &le)),
            cumulative as f64,
        );
    }
    // Left out, as the old encoder did, when a bound is +Inf already.
    if !bounds
        .iter()
        .any(|b| b.is_infinite() && b.is_sign_positive())
    {
        sample_with(
            buf,
            name,
            "_bucket",
            labels,
            Some(("le", "+Inf")),
            count as f64,
        );
    }
    sample_with(buf, name, "_sum", labels, None, sum);
    sample_with(buf, name, "_count", labels, None, count as f64);
}

fn sample_with(
    buf: &mut String,
    name: &str,
    suffix: &str,
    labels: &[(&str, &str)],
    extra: Option<(&str, &str)>,
    v: f64,
) {
    buf.push_str(name);
    buf.push_str(suffix);
    if !labels.is_empty() || extra.is_some() {
        let mut sep = '{';
        for (k, v) in labels.iter().copied().chain(extra) {
            buf.push(sep);
            buf.push_str(k);
            buf.push_str("=\"");
            escaped(buf, v);
            buf.push('"');
            sep = ',';
        }
        buf.push('}');
    }
    buf.push(' ');
    value(buf, v);
    buf.push('\n');
}

/// Appends a label value escaped: `\` → `\\`, `"` → `\"`, newline → `\n`.
pub(super) fn escaped(buf: &mut String, v: &str) {
    let mut rest = v;
    while let Some(i) = rest.bytes().position(|b| matches!(b, b'\\' | b'"' | b'\n')) {
        buf.push_str(&rest[..i]);
        buf.push_str(match rest.as_bytes()[i] {
            b'\\' => "\\\\",
            b'"' => "\\\"",
            _ => "\\n",
        });
        rest = &rest[i + 1..];
    }
    buf.push_str(rest);
}

/// The length of a value as [`value`] writes it, to reserve room: exact for integral values
/// below 2^53 (what samples mostly are), a guess for the rest.
pub(super) fn value_len(v: f64) -> usize {
    let n = v as i64;
    if n as f64 == v && v.abs() < EXACT_INTEGER_LIMIT {
        let digits = n
            .unsigned_abs()
            .checked_ilog10()
            .map_or(1, |d| d as usize + 1);
        digits + usize::from(v.is_sign_negative())
    } else {
        24
    }
}

/// Appends a sample value exactly as `f64`'s `Display` writes it.
pub(super) fn value(buf: &mut String, v: f64) {
    // NaN and the infinities fail the round trip through `i64`; `-0.0` passes it, but
    // `Display` writes it `-0`.
    let n = v as i64;
    if n as f64 == v && v.abs() < EXACT_INTEGER_LIMIT && !(n == 0 && v.is_sign_negative()) {
        match u8::try_from(n) {
            // 0 and 1 above all: the flags.
            Ok(d @ 0..=9) => buf.push(char::from(b'0' + d)),
            _ => buf.push_str(itoa::Buffer::new().format(n)),
        }
    } else {
        write!(buf, "{v}").expect("writing to a String cannot fail");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(x: f64) -> String {
        let mut s = String::new();
        value(&mut s, x);
        s
    }

    #[test]
    fn values_are_written_like_display() {
        let cases: &[(f64, &str)] = &[
            (0.0, "0"),
            (-0.0, "-0"),
            (1.0, "1"),
            (-1.0, "-1"),
            (0.5, "0.5"),
            (-2.25, "-2.25"),
            (0.1, "0.1"),
            (1e-7, "0.0000001"),
            (86_400.0, "86400"),
            (63_072_000.0, "63072000"),
            (1_795_579_920.0, "1795579920"),
            (1_795_579_920.123, "1795579920.123"),
            (1e21, "1000000000000000000000"),
            (-1e21, "-1000000000000000000000"),
            (9_007_199_254_740_991.0, "9007199254740991"),
            (9_007_199_254_740_992.0, "9007199254740992"),
            (f64::MAX, &f64::MAX.to_string()),
            (f64::MIN_POSITIVE, &f64::MIN_POSITIVE.to_string()),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
        ];
        for &(x, want) in cases {
            assert_eq!(v(x), want, "{x:?}");
            assert_eq!(v(x), x.to_string(), "{x:?}");
            if x.fract() == 0.0 && x.abs() < EXACT_INTEGER_LIMIT {
                assert_eq!(value_len(x), want.len(), "{x:?}");
            }
        }
    }

    #[test]
    fn integral_values_match_display_around_the_fast_path_limit() {
        let mut x = 1.0f64;
        while x < 1e30 {
            for y in [x - 1.0, x, x + 1.0, -x, x * 3.0 + 7.0] {
                assert_eq!(v(y), y.to_string(), "{y:?}");
            }
            x *= 2.0;
        }
        // A cheap deterministic spread of timestamps, counts and durations.
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..100_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let y = (seed >> (seed % 40)) as f64;
            assert_eq!(v(y), y.to_string(), "{y:?}");
            let z = y / 1000.0;
            assert_eq!(v(z), z.to_string(), "{z:?}");
        }
    }

    #[test]
    fn label_values_are_escaped() {
        let mut s = String::new();
        escaped(&mut s, "plain");
        escaped(&mut s, "|a\\b\"c\nd|");
        escaped(&mut s, "\\\n\"");
        escaped(&mut s, "tab\tand ünïcode stay");
        assert_eq!(s, "plain|a\\\\b\\\"c\\nd|\\\\\\n\\\"tab\tand ünïcode stay");
    }

    #[test]
    fn samples_have_braces_only_with_labels() {
        let mut s = String::new();
        sample(&mut s, "up", &[], 1.0);
        sample(&mut s, "x", &[("a", "1"), ("b", "q\"")], 0.5);
        assert_eq!(s, "up 1\nx{a=\"1\",b=\"q\\\"\"} 0.5\n");
    }

    #[test]
    fn prefixed_samples_match_plain_ones() {
        let (mut a, mut b) = (String::new(), String::new());
        let p = Prefix::new("m", ("account_id", "1\"2"));
        let mut labels = Labels::with_capacity(0, 0);
        labels.push("key", "2");
        labels.push_none();
        labels.push("user", "alice");
        labels.push("user", "b\\o\nb");
        assert_eq!(labels.get(1).0, "");
        for (i, name, v) in [(2, "alice", 1.0), (3, "b\\o\nb", 0.25)] {
            let line = [labels.get(0), labels.get(1), labels.get(i)];
            let before = a.len();
            p.sample(&mut a, &line, v);
            let value_len = v.to_string().len();
            assert_eq!(a.len() - before, p.line_len(&line) + value_len);
            sample(
                &mut b,
                "m",
                &[("account_id", "1\"2"), ("key", "2"), ("user", name)],
                v,
            );
        }
        assert_eq!(a, b);
        assert!(
            a.starts_with("m{account_id=\"1\\\"2\",key=\"2\",user=\"alice\"} 1\n"),
            "{a}"
        );
    }

    #[test]
    fn histograms_put_le_last_and_close_with_inf() {
        let mut s = String::new();
        histogram(
            &mut s,
            "h",
            &[("account_id", "1")],
            &[86_400.0, 0.5],
            &[1, 2],
            3,
            90_000.5,
        );
        assert_eq!(
            s,
            "h_bucket{account_id=\"1\",le=\"86400\"} 1\n\
             h_bucket{account_id=\"1\",le=\"0.5\"} 2\n\
             h_bucket{account_id=\"1\",le=\"+Inf\"} 3\n\
             h_sum{account_id=\"1\"} 90000.5\n\
             h_count{account_id=\"1\"} 3\n"
        );
        let mut s = String::new();
        histogram(&mut s, "h", &[], &[1.0, f64::INFINITY], &[0, 0], 0, 0.0);
        assert_eq!(
            s,
            "h_bucket{le=\"1\"} 0\nh_bucket{le=\"inf\"} 0\nh_sum 0\nh_count 0\n"
        );
    }
}
