//! Exceptions: findings accepted on purpose, with a reason, an owner and an expiry date.
//!
//! Pure: the exceptions, the account, the finding and `now` in; which exception mutes it out.
//! Validation (ids, known checks, the one-year limit) belongs to the config file's reader;
//! here an [`Exception`] is taken as given.
//!
//! Rules:
//! - An exception is active through its `expires` day (UTC) and inactive from the next
//!   midnight UTC, [`Exception::ends_at`], so it stops muting by itself.
//! - `users` lists names, or regular expressions when they start with `^`; empty, every IAM
//!   user (and the account-level checks, which have no user). Root's checks are excepted only
//!   by a literal `<root_account>`: no pattern and no empty list reaches root.
//! - `accounts` lists account ids or display names; empty, every account.
//! - When several active exceptions cover a finding, the first in the file names it.

use crate::report::ROOT_USER;
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use regex::Regex;

/// Who an exception covers.
#[derive(Debug, Clone)]
pub enum UserMatch {
    /// Exactly this user name.
    Name(String),
    /// Names this regular expression matches (written starting with `^`).
    Pattern(Regex),
}

impl PartialEq for UserMatch {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (UserMatch::Name(a), UserMatch::Name(b)) => a == b,
            (UserMatch::Pattern(a), UserMatch::Pattern(b)) => a.as_str() == b.as_str(),
            _ => false,
        }
    }
}

impl UserMatch {
    /// A pattern when `text` starts with `^` (compiled as written), else a name.
    pub fn parse(text: &str) -> Result<UserMatch, regex::Error> {
        if text.starts_with('^') {
            Regex::new(text).map(UserMatch::Pattern)
        } else {
            Ok(UserMatch::Name(text.to_owned()))
        }
    }
}

/// One accepted finding (or set of findings).
#[derive(Debug, Clone, PartialEq)]
pub struct Exception {
    /// The `exception` label value: unique, `[a-z0-9-]+`.
    pub id: String,
    /// The check ids it covers.
    pub checks: Vec<String>,
    /// The users it covers; empty, every IAM user (never root).
    pub users: Vec<UserMatch>,
    /// The accounts (ids or display names) it covers; empty, all.
    pub accounts: Vec<String>,
    /// Why the finding is accepted.
    pub reason: String,
    /// Who answers for it.
    pub owner: String,
    /// The last day (UTC) it mutes.
    pub expires: NaiveDate,
}

impl Exception {
    /// The first moment it no longer mutes: midnight UTC after its `expires` day.
    pub fn ends_at(&self) -> DateTime<Utc> {
        (self.expires + TimeDelta::days(1))
            .and_hms_opt(0, 0, 0)
            .expect("midnight exists")
            .and_utc()
    }

    /// Whether it mutes at `now`.
    pub fn active(&self, now: DateTime<Utc>) -> bool {
        now < self.ends_at()
    }

    /// Whether it covers the account with this id and display name.
    pub fn covers_account(&self, account_id: &str, name: Option<&str>) -> bool {
        self.accounts.is_empty()
            || self
                .accounts
                .iter()
                .any(|a| a == account_id || Some(a.as_str()) == name)
    }

    /// Whether it covers `user` (`None`: an account-level check, which has no user).
    pub fn covers_user(&self, user: Option<&str>) -> bool {
        match user {
            None => self.users.is_empty(),
            Some(ROOT_USER) => self
                .users
                .iter()
                .any(|u| matches!(u, UserMatch::Name(n) if n == ROOT_USER)),
            Some(user) => {
                self.users.is_empty()
                    || self.users.iter().any(|u| match u {
                        UserMatch::Name(n) => n == user,
                        UserMatch::Pattern(p) => p.is_match(user),
                    })
            }
        }
    }

    /// Whether it covers `check` for `user` in the account.
    pub fn covers(&self, account: &Account<'_>, check: &str, user: Option<&str>) -> bool {
        self.checks.iter().any(|c| c == check)
            && self.covers_account(account.id, account.name)
            && self.covers_user(user)
    }
}

/// The account a finding is in.
#[derive(Debug, Clone, Copy)]
pub struct Account<'a> {
    /// Its id.
    pub id: &'a str,
    /// Its configured display name.
    pub name: Option<&'a str>,
}

/// The first exception active at `now` that covers `check` for `user` in `account`, by its
/// position in `exceptions`.
pub fn covering(
    exceptions: &[Exception],
    now: DateTime<Utc>,
    account: &Account<'_>,
    check: &str,
    user: Option<&str>,
) -> Option<usize> {
    exceptions
        .iter()
        .position(|e| e.active(now) && e.covers(account, check, user))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exception(id: &str, checks: &[&str], users: &[&str], accounts: &[&str]) -> Exception {
        Exception {
            id: id.into(),
            checks: checks.iter().map(|c| (*c).to_owned()).collect(),
            users: users.iter().map(|u| UserMatch::parse(u).unwrap()).collect(),
            accounts: accounts.iter().map(|a| (*a).to_owned()).collect(),
            reason: "why".into(),
            owner: "team".into(),
            expires: "2027-03-01".parse().unwrap(),
        }
    }

    const ACCOUNT: Account<'static> = Account {
        id: "123456789012",
        name: Some("payments-prod"),
    };

    fn at(t: &str) -> DateTime<Utc> {
        t.parse().unwrap()
    }

    #[test]
    fn active_through_its_expiry_day_inactive_from_the_next_midnight() {
        let e = exception("x", &["user_without_mfa"], &[], &[]);
        assert_eq!(e.ends_at(), at("2027-03-02T00:00:00Z"));
        assert!(e.active(at("2027-03-01T23:59:59Z")));
        assert!(!e.active(at("2027-03-02T00:00:00Z")));
    }

    #[test]
    fn users_names_and_patterns_never_root_by_pattern() {
        let e = exception(
            "x",
            &["user_without_mfa", "root_without_mfa"],
            &["break-glass", "^legacy-.*"],
            &[],
        );
        assert!(e.covers_user(Some("break-glass")));
        assert!(!e.covers_user(Some("break-glass-2")));
        assert!(e.covers_user(Some("legacy-etl")));
        assert!(!e.covers_user(Some("a-legacy-etl")));
        assert!(!e.covers_user(Some(ROOT_USER)));
        assert!(!e.covers_user(None));
        let everyone = exception("y", &["user_without_mfa"], &[], &[]);
        assert!(everyone.covers_user(Some("anyone")));
        assert!(everyone.covers_user(None));
        assert!(!everyone.covers_user(Some(ROOT_USER)));
        let any_pattern = exception("z", &["root_without_mfa"], &["^.*"], &[]);
        assert!(!any_pattern.covers_user(Some(ROOT_USER)));
        let root = exception("r", &["root_without_mfa"], &[ROOT_USER], &[]);
        assert!(root.covers_user(Some(ROOT_USER)));
    }

    #[test]
    fn accounts_by_id_or_name() {
        let by_id = exception("a", &["user_without_mfa"], &[], &["123456789012"]);
        let by_name = exception("b", &["user_without_mfa"], &[], &["payments-prod"]);
        let other = exception("c", &["user_without_mfa"], &[], &["210987654321"]);
        for e in [&by_id, &by_name] {
            assert!(e.covers(&ACCOUNT, "user_without_mfa", Some("bob")));
        }
        assert!(!other.covers(&ACCOUNT, "user_without_mfa", Some("bob")));
        assert!(!by_id.covers(&ACCOUNT, "console_user_without_mfa", Some("bob")));
    }

    #[test]
    fn the_first_active_covering_exception_names_the_finding() {
        let list = [
            exception("expired", &["user_without_mfa"], &["bob"], &[]),
            exception("first", &["user_without_mfa"], &["^b"], &[]),
            exception("second", &["user_without_mfa"], &["bob"], &[]),
        ];
        let mut list = list.to_vec();
        list[0].expires = "2026-01-01".parse().unwrap();
        let now = at("2026-11-30T00:00:00Z");
        assert_eq!(
            covering(&list, now, &ACCOUNT, "user_without_mfa", Some("bob")),
            Some(1)
        );
        assert_eq!(
            covering(&list, now, &ACCOUNT, "user_without_mfa", Some("alice")),
            None
        );
        // After every expiry, nothing mutes.
        assert_eq!(
            covering(
                &list,
                at("2027-03-02T00:00:00Z"),
                &ACCOUNT,
                "user_without_mfa",
                Some("bob")
            ),
            None
        );
    }
}
