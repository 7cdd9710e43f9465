//! The log format of today's Prometheus ecosystem (prometheus/common's promslog, as Prometheus
//! 3 and node_exporter 1.9+ write it), so that one log pipeline reads them all:
//!
//! ```text
//! time=2026-11-30T12:41:15.816Z level=INFO source=refresh.rs:123 msg="Credential change" user=alice change=mfa_disabled
//! ```
//!
//! and JSON with the same keys. Written here rather than with a logfmt crate because none
//! writes promslog's keys (`time`, upper-case `level`, `source` as file:line, `msg`).

use chrono::{SecondsFormat, Utc};
use std::fmt::{self, Write as _};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// A value as logged: numbers and booleans stay such in JSON.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Text(String),
    Int(i128),
    Float(f64),
    Bool(bool),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Text(s) => f.write_str(s),
            Value::Int(n) => write!(f, "{n}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Bool(b) => write!(f, "{b}"),
        }
    }
}

/// The event's message and fields, in the order they were written.
#[derive(Default)]
struct Fields {
    message: String,
    pairs: Vec<(&'static str, Value)>,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `%x` fields arrive here as Display wrapped in Debug, so they print as Display.
        let text = format!("{value:?}");
        if field.name() == "message" {
            self.message = text;
        } else {
            self.pairs.push((field.name(), Value::Text(text)));
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_owned();
        } else {
            self.pairs
                .push((field.name(), Value::Text(value.to_owned())));
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.pairs.push((field.name(), Value::Int(value.into())));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.pairs.push((field.name(), Value::Int(value.into())));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.pairs.push((field.name(), Value::Float(value)));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.pairs.push((field.name(), Value::Bool(value)));
    }
}

/// promslog's level names.
fn level(l: &Level) -> &'static str {
    match *l {
        Level::ERROR => "ERROR",
        Level::WARN => "WARN",
        Level::INFO => "INFO",
        _ => "DEBUG",
    }
}

/// A logfmt value: bare when it can be, else quoted with `\"`, `\\`, `\n`, `\r`, `\t` escaped.
fn logfmt_value(out: &mut String, v: &str) {
    let bare = !v.is_empty()
        && v.chars()
            .all(|c| c > ' ' && c != '"' && c != '=' && c != '\\' && c != '\u{7f}');
    if bare {
        out.push_str(v);
        return;
    }
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The line for one event: `time`, `level`, `source`, `msg`, then the event's fields.
fn line(json: bool, time: &str, level: &str, source: &str, f: &Fields) -> String {
    if json {
        let mut map = serde_json::Map::new();
        map.insert("time".into(), time.into());
        map.insert("level".into(), level.into());
        map.insert("source".into(), source.into());
        map.insert("msg".into(), f.message.clone().into());
        for (k, v) in &f.pairs {
            let v = match v {
                Value::Text(s) => serde_json::Value::from(s.clone()),
                Value::Int(n) => i64::try_from(*n)
                    .map(serde_json::Value::from)
                    .unwrap_or_else(|_| n.to_string().into()),
                Value::Float(x) => serde_json::Number::from_f64(*x)
                    .map(serde_json::Value::Number)
                    .unwrap_or_else(|| x.to_string().into()),
                Value::Bool(b) => (*b).into(),
            };
            map.insert((*k).to_owned(), v);
        }
        return serde_json::Value::Object(map).to_string();
    }
    let mut out = String::with_capacity(96 + f.message.len());
    for (k, v) in [("time", time), ("level", level), ("source", source)] {
        out.push_str(k);
        out.push('=');
        logfmt_value(&mut out, v);
        out.push(' ');
    }
    out.push_str("msg=");
    logfmt_value(&mut out, &f.message);
    for (k, v) in &f.pairs {
        out.push(' ');
        out.push_str(k);
        out.push('=');
        logfmt_value(&mut out, &v.to_string());
    }
    out
}

/// Formats events as promslog does: logfmt, or JSON with the same keys.
#[derive(Debug, Clone, Copy)]
pub struct Promslog {
    /// JSON instead of logfmt.
    pub json: bool,
}

impl<S, N> FormatEvent<S, N> for Promslog
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut fields = Fields::default();
        event.record(&mut fields);
        let file = meta.file().unwrap_or(meta.target());
        let file = file.rsplit(['/', '\\']).next().unwrap_or(file);
        let source = match meta.line() {
            Some(n) => format!("{file}:{n}"),
            None => file.to_owned(),
        };
        let time = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
        writeln!(
            writer,
            "{}",
            line(self.json, &time, level(meta.level()), &source, &fields)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(message: &str, pairs: Vec<(&'static str, Value)>) -> Fields {
        Fields {
            message: message.to_owned(),
            pairs,
        }
    }

    #[test]
    fn logfmt_has_promslogs_keys_in_order_and_quotes_what_needs_it() {
        let f = fields(
            "Credential change",
            vec![
                ("user", Value::Text("alice".into())),
                ("before", Value::Text("a \"b\"\nc=d".into())),
                ("empty", Value::Text(String::new())),
                ("slot", Value::Int(2)),
                ("ok", Value::Bool(true)),
            ],
        );
        assert_eq!(
            line(
                false,
                "2026-11-30T12:00:00.000Z",
                "INFO",
                "refresh.rs:10",
                &f
            ),
            r#"time=2026-11-30T12:00:00.000Z level=INFO source=refresh.rs:10 msg="Credential change" user=alice before="a \"b\"\nc=d" empty="" slot=2 ok=true"#
        );
    }

    #[test]
    fn json_has_the_same_keys_and_typed_values() {
        let f = fields(
            "Refresh failed",
            vec![
                ("reason", Value::Text("read_error".into())),
                ("duration_seconds", Value::Float(0.5)),
                ("users", Value::Int(9)),
            ],
        );
        let v: serde_json::Value = serde_json::from_str(&line(
            true,
            "2026-11-30T12:00:00.000Z",
            "WARN",
            "refresh.rs:10",
            &f,
        ))
        .unwrap();
        assert_eq!(v["time"], "2026-11-30T12:00:00.000Z");
        assert_eq!(v["level"], "WARN");
        assert_eq!(v["source"], "refresh.rs:10");
        assert_eq!(v["msg"], "Refresh failed");
        assert_eq!(v["reason"], "read_error");
        assert_eq!(v["duration_seconds"], 0.5);
        assert_eq!(v["users"], 9);
    }
}
