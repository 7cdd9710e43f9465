//! The `exceptions:` key: findings accepted on purpose. Each entry is checked here, naming
//! the entry (by id, else by position) and the key; what an exception does is the core
//! crate's (`iam_credential_report::exceptions`).

use super::InvalidConfig;
use chrono::{Months, NaiveDate};
use iam_credential_report::catalogue;
use iam_credential_report::exceptions::{Exception, UserMatch};
use serde::Deserialize;

/// One entry as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawException {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    checks: Option<Vec<String>>,
    #[serde(default)]
    users: Vec<String>,
    #[serde(default)]
    accounts: Vec<serde_yaml_ng::Value>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    owner: Option<String>,
    #[serde(default)]
    expires: Option<serde_yaml_ng::Value>,
}

/// The longest an exception may run: reviewed at least once a year.
pub const MAX_MONTHS: u32 = 12;

fn is_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// A YAML scalar as text: an unquoted account id is a number (its leading zeros lost).
fn scalar(v: &serde_yaml_ng::Value, account: bool) -> Option<String> {
    match v {
        serde_yaml_ng::Value::String(s) => Some(s.clone()),
        serde_yaml_ng::Value::Number(n) if account => n.as_u64().map(|n| format!("{n:012}")),
        serde_yaml_ng::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Checks every entry. `today` is the day the file is loaded (for `check`, `--at`): no
/// exception may expire more than [`MAX_MONTHS`] after it.
pub(super) fn validate(
    raw: Vec<RawException>,
    today: NaiveDate,
) -> Result<Vec<Exception>, InvalidConfig> {
    let latest = today
        .checked_add_months(Months::new(MAX_MONTHS))
        .unwrap_or(NaiveDate::MAX);
    let mut out: Vec<Exception> = Vec::with_capacity(raw.len());
    for (i, e) in raw.into_iter().enumerate() {
        let name = match &e.id {
            Some(id) if !id.is_empty() => format!("exceptions[{id}]"),
            _ => format!("exceptions[{i}]"),
        };
        let at = |key: &str, msg: String| InvalidConfig::at(&format!("{name}.{key}"), msg);
        let required = |key: &str| at(key, "is required".to_owned());
        let id = e.id.ok_or_else(|| required("id"))?;
        if !is_id(&id) {
            return Err(at(
                "id",
                format!("{id:?} must be lower-case letters, digits and dashes ([a-z0-9-]+): it is a label value"),
            ));
        }
        if let Some(first) = out.iter().position(|x| x.id == id) {
            return Err(at(
                "id",
                format!("{id:?} is already the id of exceptions[{first}]"),
            ));
        }
        let checks = e.checks.ok_or_else(|| required("checks"))?;
        if checks.is_empty() {
            return Err(at("checks", "lists no check".to_owned()));
        }
        for c in &checks {
            if catalogue::lookup(c).is_none() {
                return Err(at(
                    "checks",
                    format!("unknown check {c:?} (`iam-credentials-exporter checks` lists them)"),
                ));
            }
        }
        let mut users = Vec::with_capacity(e.users.len());
        for (j, u) in e.users.iter().enumerate() {
            users.push(
                UserMatch::parse(u)
                    .map_err(|err| at(&format!("users[{j}]"), format!("{u:?}: {err}")))?,
            );
        }
        let mut accounts = Vec::with_capacity(e.accounts.len());
        for (j, a) in e.accounts.iter().enumerate() {
            accounts.push(scalar(a, true).ok_or_else(|| {
                at(
                    &format!("accounts[{j}]"),
                    "must be an account id or a display name".to_owned(),
                )
            })?);
        }
        let reason = e
            .reason
            .filter(|r| !r.trim().is_empty())
            .ok_or_else(|| required("reason"))?;
        let owner = e
            .owner
            .filter(|o| !o.trim().is_empty())
            .ok_or_else(|| required("owner"))?;
        let expires = e.expires.ok_or_else(|| required("expires"))?;
        let text = scalar(&expires, false)
            .ok_or_else(|| at("expires", "must be a date such as 2027-03-01".to_owned()))?;
        let expires = NaiveDate::parse_from_str(&text, "%Y-%m-%d").map_err(|err| {
            at(
                "expires",
                format!("{text:?} is not a date such as 2027-03-01: {err}"),
            )
        })?;
        if expires > latest {
            return Err(at(
                "expires",
                format!(
                    "{expires} is more than a year after {today}: an exception runs at most until {latest}, then is reviewed and renewed"
                ),
            ));
        }
        out.push(Exception {
            id,
            checks,
            users,
            accounts,
            reason,
            owner,
            expires,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use crate::config::parse;
    use chrono::NaiveDate;

    fn today() -> NaiveDate {
        "2026-11-30".parse().unwrap()
    }

    fn error(yaml: &str) -> String {
        parse(yaml, today()).unwrap_err().to_string()
    }

    const GOOD: &str = r#"
exceptions:
  - id: break-glass-mfa
    checks: [console_user_without_mfa, user_without_mfa]
    users: ["break-glass", "^legacy-.*"]
    accounts: ["123456789012", payments-prod, 012345678901]
    reason: "Break-glass user; the hardware token is in the safe (SEC-123)"
    owner: security-team
    expires: 2027-03-01
  - id: legacy-key
    checks: [access_key_not_rotated]
    users: [vendor-sync]
    reason: Vendor migration
    owner: payments
    expires: "2026-01-01"
"#;

    #[test]
    fn a_good_list_reads_in_file_order() {
        let c = parse(GOOD, today()).unwrap();
        assert_eq!(c.exceptions.len(), 2);
        let e = &c.exceptions[0];
        assert_eq!(e.id, "break-glass-mfa");
        assert_eq!(e.checks, ["console_user_without_mfa", "user_without_mfa"]);
        assert_eq!(
            e.accounts,
            ["123456789012", "payments-prod", "012345678901"]
        );
        assert_eq!(e.expires, "2027-03-01".parse::<NaiveDate>().unwrap());
        assert!(e.covers_user(Some("legacy-etl")));
        // Already expired: no error (a restart after an expiry must not crash-loop).
        assert_eq!(c.exceptions[1].id, "legacy-key");
    }

    #[test]
    fn each_mistake_names_the_entry_and_the_key() {
        for (yaml, expected) in [
            (
                "exceptions:\n  - checks: [user_without_mfa]\n    reason: r\n    owner: o\n    expires: 2027-01-01\n",
                "exceptions[0].id: is required",
            ),
            (
                "exceptions:\n  - id: Bad_Id\n    checks: [user_without_mfa]\n    reason: r\n    owner: o\n    expires: 2027-01-01\n",
                "exceptions[Bad_Id].id: \"Bad_Id\" must be lower-case",
            ),
            (
                "exceptions:\n  - id: a\n    checks: [no_such_check]\n    reason: r\n    owner: o\n    expires: 2027-01-01\n",
                "exceptions[a].checks: unknown check \"no_such_check\"",
            ),
            (
                "exceptions:\n  - id: a\n    checks: [user_without_mfa]\n    owner: o\n    expires: 2027-01-01\n",
                "exceptions[a].reason: is required",
            ),
            (
                "exceptions:\n  - id: a\n    checks: [user_without_mfa]\n    reason: r\n    expires: 2027-01-01\n",
                "exceptions[a].owner: is required",
            ),
            (
                "exceptions:\n  - id: a\n    checks: [user_without_mfa]\n    reason: r\n    owner: o\n",
                "exceptions[a].expires: is required",
            ),
            (
                "exceptions:\n  - id: a\n    checks: [user_without_mfa]\n    reason: r\n    owner: o\n    expires: 2027-12-01\n",
                "exceptions[a].expires: 2027-12-01 is more than a year after 2026-11-30",
            ),
            (
                "exceptions:\n  - id: a\n    checks: [user_without_mfa]\n    reason: r\n    owner: o\n    expires: soon\n",
                "exceptions[a].expires: \"soon\" is not a date",
            ),
            (
                "exceptions:\n  - id: a\n    checks: [user_without_mfa]\n    users: [\"^(\"]\n    reason: r\n    owner: o\n    expires: 2027-01-01\n",
                "exceptions[a].users[0]:",
            ),
            (
                "exceptions:\n  - id: a\n    checks: [user_without_mfa]\n    reason: r\n    owner: o\n    expires: 2027-01-01\n  - id: a\n    checks: [user_without_mfa]\n    reason: r\n    owner: o\n    expires: 2027-01-01\n",
                "exceptions[a].id: \"a\" is already the id of exceptions[0]",
            ),
            (
                "exceptions:\n  - id: a\n    check: [user_without_mfa]\n",
                "unknown field `check`",
            ),
        ] {
            let e = error(yaml);
            assert!(e.contains(expected), "{expected:?} not in {e:?}");
        }
        // Exactly a year is allowed.
        parse(
            "exceptions:\n  - id: a\n    checks: [user_without_mfa]\n    reason: r\n    owner: o\n    expires: 2027-11-30\n",
            today(),
        )
        .unwrap();
    }
}
