//! Judging a credential report: the checks security teams already hold IAM to.
//!
//! Pure: a report, `now` and thresholds in; findings out. Each check follows the AWS Config
//! rule, Security Hub control or CIS AWS Foundations recommendation it names. Where tools
//! disagree the choice is written on the check.
//!
//! Written rules that apply to several checks:
//! - Ages are compared strictly: a credential exactly as old as the threshold passes.
//! - A never-used credential counts by its age: a key never used counts from its last
//!   rotation, a password never used (`N/A` or `no_information`) from its last change, else
//!   from the user's creation. So a credential younger than the threshold is in its grace
//!   period, and one older fails (as Steampipe and AWS Config judge it; Prowler lets
//!   never-used keys pass, which hides keys nobody needs).
//! - Root is exactly the `<root_account>` row. User and key checks judge IAM users only;
//!   root has its own checks.

use crate::account::{AccountSummary, LiveFacts, PasswordPolicy};
use crate::catalogue::{Entry, CATALOGUE};
use crate::exceptions::{covering, Account as ExceptionAccount, Exception};
use crate::report::{AccessKey, CredentialReport, Stamp, UserRow};
use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;
use std::time::Duration;
use strum::{IntoStaticStr, VariantArray};

/// One check of the brief's table. The snake_case name is the `check` label value.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, IntoStaticStr, VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum Check {
    /// An IAM user with a console password and no MFA device.
    ConsoleUserWithoutMfa,
    /// An IAM user without MFA, console or not.
    UserWithoutMfa,
    /// The root user without MFA.
    RootWithoutMfa,
    /// The root user has an active access key.
    RootAccessKey,
    /// The root user signed in or used a key within the window.
    RootUsedRecently,
    /// An active key not rotated within the maximum age.
    AccessKeyNotRotated,
    /// An active key not used within the unused-credentials window.
    UnusedAccessKey,
    /// A console password not used within the unused-credentials window.
    UnusedPassword,
    /// Both key slots hold active keys.
    TwoActiveAccessKeys,
    /// A console user with an active key that was never used: a key handed out at setup.
    AccessKeyAtSetup,
    /// A console password older than the maximum age.
    PasswordNotRotated,
    /// A user with no credential used within the inactivity window.
    InactiveUser,
}

impl Check {
    /// Every check, in the order they are reported.
    pub const ALL: &'static [Check] = Self::VARIANTS;

    /// The `check` label value.
    pub fn name(self) -> &'static str {
        self.into()
    }

    /// The check's catalogue entry: title, severity, controls, remediation.
    pub fn entry(self) -> &'static Entry {
        &CATALOGUE[self.index()]
    }

    /// Security Hub ids and the newest CIS id, e.g. `IAM.5, CIS v7.0 2.10`.
    pub fn controls(self) -> String {
        self.entry().controls()
    }

    /// A check of the root user: judged only when the report has a root row (without one its
    /// verdict is unknown, not a pass).
    pub fn is_root(self) -> bool {
        matches!(
            self,
            Check::RootWithoutMfa | Check::RootAccessKey | Check::RootUsedRecently
        )
    }

    /// Whether the check counts keys (true) or users (false) in `aws_iam_check_failures`.
    pub fn counts_keys(self) -> bool {
        matches!(
            self,
            Check::RootAccessKey | Check::AccessKeyNotRotated | Check::UnusedAccessKey
        )
    }

    /// Looks a check up by its label value.
    pub fn from_name(name: &str) -> Option<Check> {
        Check::ALL.iter().copied().find(|c| c.name() == name)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// An account-level check, judged from live calls (the password policy, the MFA devices),
/// not from the report. Exported in `aws_iam_check_failures{check}` as 1 (fails) or 0 per
/// account, only where its live call was answered (AWS sources; never in file mode).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, IntoStaticStr, VariantArray,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum AccountCheck {
    /// The account has no IAM password policy.
    PasswordPolicyMissing,
    /// The minimum password length is below [`CIS_MIN_PASSWORD_LENGTH`].
    PasswordPolicyWeakLength,
    /// Password reuse prevention is below [`CIS_PASSWORD_REUSE_PREVENTION`].
    PasswordPolicyWeakReuse,
    /// The policy does not require uppercase, lowercase, numbers and symbols (IAM.7).
    PasswordPolicyWeakComplexity,
    /// Passwords never expire, or live longer than [`MAX_PASSWORD_AGE_DAYS`] (IAM.17).
    PasswordPolicyNoExpiry,
    /// The root user's MFA is a virtual device, not a hardware one (IAM.6).
    RootVirtualMfa,
}

/// CIS 1.8 (v1.4-v4.0), Security Hub IAM.15: passwords of at least 14 characters.
pub const CIS_MIN_PASSWORD_LENGTH: u32 = 14;

/// CIS 1.9 (v1.4-v4.0), Security Hub IAM.16: the last 24 passwords cannot be reused.
pub const CIS_PASSWORD_REUSE_PREVENTION: u32 = 24;

/// Security Hub IAM.17: passwords expire within 90 days.
pub const MAX_PASSWORD_AGE_DAYS: u32 = 90;

impl AccountCheck {
    /// Every account check, in the order they are reported.
    pub const ALL: &'static [AccountCheck] = Self::VARIANTS;

    /// The checks judged from the password policy.
    pub const PASSWORD_POLICY: [AccountCheck; 5] = [
        AccountCheck::PasswordPolicyMissing,
        AccountCheck::PasswordPolicyWeakLength,
        AccountCheck::PasswordPolicyWeakReuse,
        AccountCheck::PasswordPolicyWeakComplexity,
        AccountCheck::PasswordPolicyNoExpiry,
    ];

    /// The `check` label value.
    pub fn name(self) -> &'static str {
        self.into()
    }

    /// The check's catalogue entry.
    pub fn entry(self) -> &'static Entry {
        &CATALOGUE[Check::ALL.len() + self as usize]
    }

    /// Security Hub ids and the newest CIS id.
    pub fn controls(self) -> String {
        self.entry().controls()
    }
}

/// Judges the account's password policy (`None`: the account has none) against CIS and
/// Security Hub, and returns the policy checks that fail. Without a policy AWS applies its
/// default (8 characters, reuse allowed, no expiry, no character classes), so a missing
/// policy fails every policy check: an alert on any one fires for an account without one.
pub fn judge_password_policy(policy: Option<&PasswordPolicy>) -> Vec<AccountCheck> {
    let Some(p) = policy else {
        return AccountCheck::PASSWORD_POLICY.to_vec();
    };
    let mut failing = Vec::new();
    if p.minimum_length < CIS_MIN_PASSWORD_LENGTH {
        failing.push(AccountCheck::PasswordPolicyWeakLength);
    }
    if p.reuse_prevention < CIS_PASSWORD_REUSE_PREVENTION {
        failing.push(AccountCheck::PasswordPolicyWeakReuse);
    }
    if !(p.require_uppercase && p.require_lowercase && p.require_numbers && p.require_symbols) {
        failing.push(AccountCheck::PasswordPolicyWeakComplexity);
    }
    // `MaxPasswordAge` absent or 0: passwords never expire.
    if p.max_age_days == 0 || p.max_age_days > MAX_PASSWORD_AGE_DAYS {
        failing.push(AccountCheck::PasswordPolicyNoExpiry);
    }
    failing
}

/// Whether the root user has credentials: from the report's root row (`None` without one),
/// plus live `AccountAccessKeysPresent`, which can only add keys (the report can be 4 hours
/// old, the summary is not).
pub fn root_credentials_present(
    root: Option<&RootFacts>,
    summary: Option<&AccountSummary>,
) -> Option<bool> {
    root.map(|r| r.credentials_present || summary.is_some_and(|s| s.root_access_keys_present))
}

/// The account checks that fail and that an exception active at `now` mutes, with the
/// exception's position: `judge_account`'s failures, filtered.
pub fn muted_account_checks(
    verdicts: &[(AccountCheck, bool)],
    exceptions: &[Exception],
    account: &ExceptionAccount<'_>,
    now: DateTime<Utc>,
) -> Vec<(AccountCheck, usize)> {
    verdicts
        .iter()
        .filter(|(_, fails)| *fails)
        .filter_map(|&(c, _)| covering(exceptions, now, account, c.name(), None).map(|i| (c, i)))
        .collect()
}

/// Judges the account checks whose live calls were answered: `(check, fails)` for each, in
/// [`AccountCheck::ALL`] order. `root` is what the last good report says of root.
pub fn judge_account(live: &LiveFacts, root: Option<&RootFacts>) -> Vec<(AccountCheck, bool)> {
    let mut out = Vec::new();
    if let Some(policy) = &live.password_policy {
        let failing = judge_password_policy(policy.as_ref());
        for c in AccountCheck::PASSWORD_POLICY {
            out.push((c, failing.contains(&c)));
        }
    }
    // Security Hub IAM.6 passes when root credentials are absent; without a root row in the
    // report the verdict is unknown and there is none.
    if let (Some(is_virtual), Some(present)) = (
        live.root_virtual_mfa,
        root_credentials_present(root, live.summary.as_ref()),
    ) {
        out.push((AccountCheck::RootVirtualMfa, present && is_virtual));
    }
    out
}

/// Thresholds of the age-based checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// `access_key_not_rotated`: maximum age of an active key since its last rotation.
    pub access_key_max_age: Duration,
    /// `unused_access_key` and `unused_password`: how long a credential may go unused
    /// (90 days per AWS Config; CIS 1.12 and Security Hub IAM.22 use 45).
    pub unused_credentials: Duration,
    /// `password_not_rotated`: maximum age of a console password.
    pub password_max_age: Duration,
    /// `inactive_user`: how long a user may go without using any credential.
    pub inactive_user: Duration,
    /// `root_used_recently`: the window in which any root use is a finding.
    pub root_recent_use: Duration,
}

const DAY: u64 = 24 * 60 * 60;

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            access_key_max_age: Duration::from_secs(90 * DAY),
            unused_credentials: Duration::from_secs(90 * DAY),
            password_max_age: Duration::from_secs(90 * DAY),
            inactive_user: Duration::from_secs(90 * DAY),
            root_recent_use: Duration::from_secs(DAY),
        }
    }
}

/// One failing user (or key) and check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finding {
    /// The check that failed.
    pub check: Check,
    /// Index of the user's row in [`CredentialReport::rows`].
    pub row: usize,
    /// The key slot (1 or 2) for key checks.
    pub key: Option<u8>,
    /// The timestamp the finding rests on (last rotation, last use...), when there is one.
    pub since: Option<DateTime<Utc>>,
}

impl Finding {
    /// Which exception active at `now` mutes this finding of `user`'s in `account`: the
    /// first in the list that covers it, by its position. [`Assessment::mute`] and the
    /// streaming judge both ask this.
    pub fn muted_by(
        &self,
        user: &str,
        exceptions: &[Exception],
        account: &ExceptionAccount<'_>,
        now: DateTime<Utc>,
    ) -> Option<usize> {
        covering(exceptions, now, account, self.check.name(), Some(user))
    }
}

/// A finding an exception mutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MutedFinding {
    /// The finding.
    pub finding: Finding,
    /// The exception that mutes it, by its position in the list.
    pub exception: usize,
}

/// What the report's root row says about the root user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RootFacts {
    /// Root has a console password (`not_supported`, as older reports write for root,
    /// counts as one), an active access key or an active certificate. False once AWS
    /// Organizations removed the member account's root credentials (centralized root
    /// access), which Security Hub IAM.6 and IAM.9 treat as passing.
    pub credentials_present: bool,
    /// `mfa_active`.
    pub mfa_active: bool,
}

impl RootFacts {
    /// The facts of a root row.
    pub fn of(row: &UserRow) -> RootFacts {
        RootFacts {
            credentials_present: row.password_enabled != Some(false)
                || row.keys.iter().any(AccessKey::is_active)
                || row.certs_active.iter().any(|&c| c),
            mfa_active: row.mfa_active,
        }
    }
}

/// The judged report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assessment {
    /// Every finding, grouped by row in report order.
    pub findings: Vec<Finding>,
    /// The root user, when the report has its row; without one the root checks are not
    /// judged (unknown, not passing).
    pub root: Option<RootFacts>,
    /// Findings an active exception covers: out of `findings` and the counts.
    pub muted: Vec<MutedFinding>,
    /// Muted findings per check, indexed like [`Check::ALL`].
    muted_counts: [u64; Check::VARIANTS.len()],
    /// The ids of the exceptions [`MutedFinding::exception`] points into.
    pub exception_ids: Vec<String>,
    /// Failures per check, indexed like [`Check::ALL`].
    counts: [u64; Check::VARIANTS.len()],
}

impl Assessment {
    /// How many users (or keys, for key checks) fail `check`.
    pub fn count(&self, check: Check) -> u64 {
        self.counts[check.index()]
    }

    /// How many users (or keys) failing `check` an exception mutes.
    pub fn muted_count(&self, check: Check) -> u64 {
        self.muted_counts[check.index()]
    }

    /// Moves each finding an exception active at `now` covers (the first in the list names
    /// it) from the findings to [`Assessment::muted`].
    pub fn mute(
        &mut self,
        report: &CredentialReport,
        exceptions: &[Exception],
        account: &ExceptionAccount<'_>,
        now: DateTime<Utc>,
    ) {
        if exceptions.is_empty() {
            return;
        }
        self.exception_ids = exceptions.iter().map(|e| e.id.clone()).collect();
        let findings = std::mem::take(&mut self.findings);
        for f in findings {
            let user = report.rows[f.row].user.as_str();
            match f.muted_by(user, exceptions, account, now) {
                Some(i) => {
                    self.counts[f.check.index()] -= 1;
                    self.muted_counts[f.check.index()] += 1;
                    self.muted.push(MutedFinding {
                        finding: f,
                        exception: i,
                    });
                }
                None => self.findings.push(f),
            }
        }
    }

    /// Whether `check` was judged: every check is, but the root checks only when the report
    /// has a root row.
    pub fn judged(&self, check: Check) -> bool {
        !check.is_root() || self.root.is_some()
    }

    /// Whether anything failed.
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }

    fn push(&mut self, f: Finding) {
        self.counts[f.check.index()] += 1;
        self.findings.push(f);
    }
}

/// `now - t > limit`: strictly older than the threshold.
fn older_than(t: DateTime<Utc>, now: DateTime<Utc>, limit: Duration) -> bool {
    let limit = TimeDelta::from_std(limit).unwrap_or(TimeDelta::MAX);
    now.signed_duration_since(t) > limit
}

/// A key's last activity: its last use, or (never used, or use unknown) its last rotation.
pub fn key_last_activity(key: &AccessKey) -> Option<DateTime<Utc>> {
    key.last_used.at().or(key.last_rotated.at())
}

/// A password's last activity: its last use, or (never used) its last change, else the
/// user's creation.
pub fn password_last_activity(row: &UserRow) -> Option<DateTime<Utc>> {
    row.password_last_used
        .at()
        .or(row.password_last_changed.at())
        .or(row.created.at())
}

/// Judges every row of `report` as of `now`: [`judge_row`] for each.
pub fn judge(report: &CredentialReport, now: DateTime<Utc>, t: &Thresholds) -> Assessment {
    let mut out = Assessment::default();
    for (i, row) in report.rows.iter().enumerate() {
        if row.is_root {
            out.root = Some(RootFacts::of(row));
        }
        judge_row(i, row, now, t, &mut |f| out.push(f));
    }
    out
}

/// Judges one row as of `now`, handing each finding to `found` in the order [`judge`] lists
/// them; `i` is the row's index, which the findings carry. [`judge`] is this for each row of
/// a parsed report; the streaming judge ([`crate::stream`]) calls it row by row.
pub fn judge_row(
    i: usize,
    row: &UserRow,
    now: DateTime<Utc>,
    t: &Thresholds,
    found: &mut impl FnMut(Finding),
) {
    if row.is_root {
        judge_root(found, i, row, now, t);
    } else {
        judge_user(found, i, row, now, t);
    }
}

fn judge_root(
    out: &mut impl FnMut(Finding),
    i: usize,
    row: &UserRow,
    now: DateTime<Utc>,
    t: &Thresholds,
) {
    let finding = |check, key, since| Finding {
        check,
        row: i,
        key,
        since,
    };
    // A root without credentials cannot sign in: nothing for MFA to protect (IAM.9).
    if RootFacts::of(row).credentials_present && !row.mfa_active {
        out(finding(Check::RootWithoutMfa, None, None));
    }
    for (slot, key) in row.keys.iter().enumerate() {
        if key.is_active() {
            out(finding(
                Check::RootAccessKey,
                Some(slot as u8 + 1),
                key.last_rotated.at(),
            ));
        }
    }
    // Any use within the window, by password or by either key (active or not: a key
    // deactivated after use was still used).
    let window = TimeDelta::from_std(t.root_recent_use).unwrap_or(TimeDelta::MAX);
    let last_use = [
        row.password_last_used.at(),
        row.keys[0].last_used.at(),
        row.keys[1].last_used.at(),
    ]
    .into_iter()
    .flatten()
    .max();
    if let Some(used) = last_use {
        if now.signed_duration_since(used) <= window {
            out(finding(Check::RootUsedRecently, None, Some(used)));
        }
    }
}

fn judge_user(
    out: &mut impl FnMut(Finding),
    i: usize,
    row: &UserRow,
    now: DateTime<Utc>,
    t: &Thresholds,
) {
    let finding = |check, key, since| Finding {
        check,
        row: i,
        key,
        since,
    };
    let console = row.has_password();

    if console && !row.mfa_active {
        out(finding(Check::ConsoleUserWithoutMfa, None, None));
    }
    if !row.mfa_active {
        out(finding(Check::UserWithoutMfa, None, None));
    }

    let mut active_keys = 0;
    let mut never_used_active_key = false;
    let mut every_active_key_idle = true;
    for (slot, key) in row.keys.iter().enumerate() {
        if !key.is_active() {
            continue;
        }
        active_keys += 1;
        let slot = Some(slot as u8 + 1);
        let rotated = key.last_rotated.at();
        if let Some(rotated) = rotated {
            if older_than(rotated, now, t.access_key_max_age) {
                out(finding(Check::AccessKeyNotRotated, slot, Some(rotated)));
            }
        }
        let activity = key_last_activity(key);
        if activity.is_some_and(|a| older_than(a, now, t.unused_credentials)) {
            out(finding(Check::UnusedAccessKey, slot, activity));
        }
        if !activity.is_some_and(|a| older_than(a, now, t.inactive_user)) {
            every_active_key_idle = false;
        }
        // `N/A` is "never used"; a report without last-use columns cannot say.
        if key.last_used == Stamp::NotApplicable {
            never_used_active_key = true;
        }
    }

    let password_activity = password_last_activity(row);
    if console && password_activity.is_some_and(|a| older_than(a, now, t.unused_credentials)) {
        out(finding(Check::UnusedPassword, None, password_activity));
    }
    if active_keys == 2 {
        out(finding(Check::TwoActiveAccessKeys, None, None));
    }
    if console && never_used_active_key {
        out(finding(Check::AccessKeyAtSetup, None, None));
    }
    if console {
        if let Some(changed) = row.password_last_changed.at() {
            if older_than(changed, now, t.password_max_age) {
                out(finding(Check::PasswordNotRotated, None, Some(changed)));
            }
        }
    }

    // Inactive: the user is past its own grace period, its password is disabled or idle,
    // and every active key is idle.
    let past_grace = row
        .created
        .at()
        .is_none_or(|c| older_than(c, now, t.inactive_user));
    let password_idle =
        !console || password_activity.is_some_and(|a| older_than(a, now, t.inactive_user));
    if past_grace && password_idle && every_active_key_idle {
        let last = [
            password_activity.filter(|_| console),
            row.keys[0].last_used.at(),
            row.keys[1].last_used.at(),
        ]
        .into_iter()
        .flatten()
        .max();
        out(finding(Check::InactiveUser, None, last));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{AccessKey, Stamp, UserRow, ROOT_USER};

    fn now() -> DateTime<Utc> {
        "2026-06-01T00:00:00Z".parse().unwrap()
    }

    fn days_ago(d: i64) -> Stamp {
        Stamp::At(now() - TimeDelta::days(d))
    }

    fn no_key() -> AccessKey {
        AccessKey {
            active: false,
            last_rotated: Stamp::NotApplicable,
            last_used: Stamp::NotApplicable,
        }
    }

    fn key(rotated: i64, used: Option<i64>) -> AccessKey {
        AccessKey {
            active: true,
            last_rotated: days_ago(rotated),
            last_used: used.map_or(Stamp::NotApplicable, days_ago),
        }
    }

    /// A healthy console user: MFA on, password used today, changed 10 days ago, no keys.
    fn user(name: &str) -> UserRow {
        UserRow {
            user: name.into(),
            arn: format!("arn:aws:iam::111122223333:user/{name}"),
            is_root: false,
            created: days_ago(400),
            password_enabled: Some(true),
            password_last_used: days_ago(0),
            password_last_changed: days_ago(10),
            mfa_active: true,
            keys: [no_key(), no_key()],
            certs_active: [false, false],
        }
    }

    fn root() -> UserRow {
        UserRow {
            user: ROOT_USER.into(),
            arn: "arn:aws:iam::111122223333:root".into(),
            is_root: true,
            created: days_ago(2000),
            password_enabled: None,
            password_last_used: days_ago(300),
            password_last_changed: Stamp::NotSupported,
            mfa_active: true,
            keys: [no_key(), no_key()],
            certs_active: [false, false],
        }
    }

    fn judged(rows: Vec<UserRow>) -> Assessment {
        let report = CredentialReport {
            rows,
            ..Default::default()
        };
        judge(&report, now(), &Thresholds::default())
    }

    fn failing(rows: Vec<UserRow>) -> Vec<&'static str> {
        judged(rows)
            .findings
            .iter()
            .map(|f| f.check.name())
            .collect()
    }

    #[test]
    fn a_healthy_account_is_clean() {
        let a = judged(vec![root(), user("alice")]);
        assert!(a.is_clean(), "{:?}", a.findings);
        for &c in Check::ALL {
            assert_eq!(a.count(c), 0);
        }
    }

    #[test]
    fn check_names_round_trip_and_are_unique() {
        for &c in Check::ALL {
            assert_eq!(Check::from_name(c.name()), Some(c));
            assert_eq!(
                serde_json::to_string(&c).unwrap(),
                format!("\"{}\"", c.name())
            );
        }
    }

    #[test]
    fn mfa_checks_separate_console_users() {
        let mut console = user("console");
        console.mfa_active = false;
        let mut api_only = user("api");
        api_only.mfa_active = false;
        api_only.password_enabled = Some(false);
        let a = judged(vec![console, api_only]);
        assert_eq!(a.count(Check::ConsoleUserWithoutMfa), 1);
        assert_eq!(a.count(Check::UserWithoutMfa), 2);
    }

    #[test]
    fn root_checks_apply_to_root_only_not_to_names_containing_root() {
        let mut r = root();
        r.mfa_active = false;
        r.keys[0] = key(10, Some(0));
        let mut kyle = user("kyle_root");
        kyle.mfa_active = false;
        kyle.keys[0] = key(10, Some(0));
        let a = judged(vec![r, kyle]);
        assert_eq!(a.count(Check::RootWithoutMfa), 1);
        assert_eq!(a.count(Check::RootAccessKey), 1);
        assert_eq!(a.count(Check::RootUsedRecently), 1);
        // kyle_root fails the user checks, root does not.
        assert_eq!(a.count(Check::UserWithoutMfa), 1);
        assert!(a
            .findings
            .iter()
            .filter(|f| f.check == Check::UserWithoutMfa)
            .all(|f| f.row == 1));
    }

    #[test]
    fn root_inactive_key_with_a_date_is_not_an_active_root_key() {
        let mut r = root();
        r.keys[1] = AccessKey {
            active: false,
            last_rotated: days_ago(5000),
            last_used: Stamp::NotApplicable,
        };
        assert!(failing(vec![r]).is_empty());
    }

    #[test]
    fn root_used_recently_is_inclusive_at_the_window() {
        let mut r = root();
        r.password_last_used = Stamp::At(now() - TimeDelta::days(1));
        assert_eq!(failing(vec![r.clone()]), ["root_used_recently"]);
        r.password_last_used = Stamp::At(now() - TimeDelta::days(1) - TimeDelta::seconds(1));
        assert!(failing(vec![r.clone()]).is_empty());
        r.password_last_used = Stamp::NoInformation;
        r.keys[0] = AccessKey {
            active: false,
            last_rotated: days_ago(100),
            last_used: Stamp::At(now() - TimeDelta::hours(2)),
        };
        assert_eq!(failing(vec![r]), ["root_used_recently"]);
    }

    #[test]
    fn key_rotation_passes_exactly_at_the_threshold() {
        let mut u = user("u");
        u.keys[0] = key(90, Some(0));
        assert!(failing(vec![u.clone()]).is_empty());
        u.keys[0].last_rotated = Stamp::At(now() - TimeDelta::days(90) - TimeDelta::seconds(1));
        assert_eq!(failing(vec![u]), ["access_key_not_rotated"]);
    }

    #[test]
    fn inactive_keys_are_not_judged_for_age_or_use() {
        let mut u = user("u");
        u.keys[0] = AccessKey {
            active: false,
            last_rotated: days_ago(1000),
            last_used: days_ago(900),
        };
        assert!(failing(vec![u]).is_empty());
    }

    #[test]
    fn never_used_keys_have_a_grace_period_then_fail() {
        let mut u = user("u");
        u.password_enabled = Some(false);
        u.password_last_used = Stamp::NotApplicable;
        u.password_last_changed = Stamp::NotApplicable;
        u.keys[0] = key(30, None);
        u.created = days_ago(30);
        assert!(failing(vec![u.clone()]).is_empty());
        u.keys[0] = key(91, None);
        u.created = days_ago(91);
        let f = failing(vec![u]);
        assert!(f.contains(&"unused_access_key"), "{f:?}");
        assert!(f.contains(&"access_key_not_rotated"), "{f:?}");
        assert!(f.contains(&"inactive_user"), "{f:?}");
    }

    #[test]
    fn unused_key_judged_by_last_use_when_used() {
        let mut u = user("u");
        u.keys[0] = key(10, Some(91));
        // Rotated 10 days ago but "used 91 days ago" cannot happen in AWS; the last use decides.
        assert_eq!(failing(vec![u.clone()]), ["unused_access_key"]);
        u.keys[0] = key(10, Some(90));
        assert!(failing(vec![u]).is_empty());
    }

    #[test]
    fn unused_password_falls_back_to_change_then_creation() {
        let mut u = user("u");
        u.password_last_used = Stamp::NoInformation;
        u.password_last_changed = days_ago(50);
        assert!(failing(vec![u.clone()]).is_empty());
        u.password_last_changed = days_ago(95);
        let f = failing(vec![u.clone()]);
        assert!(f.contains(&"unused_password"), "{f:?}");
        assert!(f.contains(&"password_not_rotated"), "{f:?}");
        u.password_last_used = Stamp::NotApplicable;
        u.password_last_changed = Stamp::NotApplicable;
        u.created = days_ago(100);
        assert_eq!(failing(vec![u]), ["unused_password", "inactive_user"]);
    }

    #[test]
    fn password_checks_ignore_users_without_a_password() {
        let mut u = user("u");
        u.password_enabled = Some(false);
        u.password_last_changed = days_ago(500);
        u.password_last_used = days_ago(500);
        u.keys[0] = key(10, Some(1));
        assert!(failing(vec![u]).is_empty());
    }

    #[test]
    fn two_active_keys_and_key_at_setup() {
        let mut u = user("u");
        u.keys = [key(10, Some(1)), key(5, None)];
        let f = failing(vec![u.clone()]);
        assert_eq!(f, ["two_active_access_keys", "access_key_at_setup"]);
        // Without a console password a never-used key is not a setup key.
        u.password_enabled = Some(false);
        assert_eq!(failing(vec![u.clone()]), ["two_active_access_keys"]);
        // A legacy report (no last-use column) cannot say a key was never used.
        u.password_enabled = Some(true);
        u.keys[1].last_used = Stamp::Missing;
        assert_eq!(failing(vec![u]), ["two_active_access_keys"]);
    }

    #[test]
    fn inactive_user_needs_every_credential_idle_and_past_grace() {
        let mut u = user("u");
        u.password_last_used = days_ago(200);
        u.keys[0] = key(300, Some(100));
        let f = failing(vec![u.clone()]);
        assert!(f.contains(&"inactive_user"), "{f:?}");
        // One recently used key makes the user active.
        u.keys[1] = key(10, Some(2));
        let f = failing(vec![u.clone()]);
        assert!(!f.contains(&"inactive_user"), "{f:?}");
        // A brand-new user without credentials is in its grace period.
        let mut fresh = user("fresh");
        fresh.password_enabled = Some(false);
        fresh.created = days_ago(3);
        assert!(failing(vec![fresh.clone()]).is_empty());
        fresh.created = days_ago(120);
        assert_eq!(failing(vec![fresh]), ["inactive_user"]);
    }

    #[test]
    fn key_checks_count_keys_user_checks_count_users() {
        let mut u = user("u");
        u.keys = [key(200, Some(1)), key(300, Some(1))];
        let a = judged(vec![u]);
        assert_eq!(a.count(Check::AccessKeyNotRotated), 2);
        assert_eq!(a.count(Check::TwoActiveAccessKeys), 1);
        assert!(Check::AccessKeyNotRotated.counts_keys());
        assert!(!Check::TwoActiveAccessKeys.counts_keys());
    }

    fn strong_policy() -> PasswordPolicy {
        PasswordPolicy {
            minimum_length: 14,
            reuse_prevention: 24,
            max_age_days: 90,
            require_symbols: true,
            require_numbers: true,
            require_uppercase: true,
            require_lowercase: true,
        }
    }

    #[test]
    fn password_policy_is_judged_against_cis_and_security_hub() {
        let strong = strong_policy();
        assert!(judge_password_policy(Some(&strong)).is_empty());
        let one_off = |p: PasswordPolicy| judge_password_policy(Some(&p));
        assert_eq!(
            one_off(PasswordPolicy {
                minimum_length: 13,
                ..strong
            }),
            [AccountCheck::PasswordPolicyWeakLength]
        );
        assert_eq!(
            one_off(PasswordPolicy {
                reuse_prevention: 23,
                ..strong
            }),
            [AccountCheck::PasswordPolicyWeakReuse]
        );
        for p in [
            PasswordPolicy {
                require_symbols: false,
                ..strong
            },
            PasswordPolicy {
                require_numbers: false,
                ..strong
            },
            PasswordPolicy {
                require_uppercase: false,
                ..strong
            },
            PasswordPolicy {
                require_lowercase: false,
                ..strong
            },
        ] {
            assert_eq!(one_off(p), [AccountCheck::PasswordPolicyWeakComplexity]);
        }
        // MaxPasswordAge absent (read as 0) or above 90 days: no expiry; 1..=90 passes.
        for days in [0, 91, 365] {
            assert_eq!(
                one_off(PasswordPolicy {
                    max_age_days: days,
                    ..strong
                }),
                [AccountCheck::PasswordPolicyNoExpiry],
                "{days}"
            );
        }
        assert!(one_off(PasswordPolicy {
            max_age_days: 1,
            ..strong
        })
        .is_empty());
        // A policy with nothing set fails all but "missing".
        assert_eq!(
            one_off(PasswordPolicy::default()),
            &AccountCheck::PASSWORD_POLICY[1..]
        );
    }

    #[test]
    fn no_password_policy_fails_every_policy_check_and_nothing_else() {
        assert_eq!(judge_password_policy(None), AccountCheck::PASSWORD_POLICY);
        assert!(!judge_password_policy(None).contains(&AccountCheck::RootVirtualMfa));
    }

    #[test]
    fn account_check_names_are_distinct_from_report_checks() {
        for c in AccountCheck::ALL {
            assert!(Check::from_name(c.name()).is_none());
            assert_eq!(
                serde_json::to_string(&c).unwrap(),
                format!("\"{}\"", c.name())
            );
        }
    }

    #[test]
    fn every_check_has_its_catalogue_entry_and_every_entry_a_check() {
        let names: Vec<&str> = Check::ALL
            .iter()
            .map(|c| c.name())
            .chain(AccountCheck::ALL.iter().map(|c| c.name()))
            .collect();
        let ids: Vec<&str> = crate::catalogue::ids().collect();
        assert_eq!(names, ids);
        for &c in Check::ALL {
            assert_eq!(c.entry().id, c.name());
            assert_eq!(c.entry().basis, crate::catalogue::Basis::Report);
        }
        for &c in AccountCheck::ALL {
            assert_eq!(c.entry().id, c.name());
            assert_eq!(c.entry().basis, crate::catalogue::Basis::Live);
        }
    }

    /// Root after AWS Organizations removed its credentials (centralized root access).
    fn root_without_credentials() -> UserRow {
        UserRow {
            password_enabled: Some(false),
            password_last_used: Stamp::NotApplicable,
            password_last_changed: Stamp::NotApplicable,
            mfa_active: false,
            ..root()
        }
    }

    #[test]
    fn a_root_without_credentials_passes_the_mfa_check() {
        let r = root_without_credentials();
        let a = judged(vec![r.clone()]);
        assert!(a.is_clean(), "{:?}", a.findings);
        assert_eq!(
            a.root,
            Some(RootFacts {
                credentials_present: false,
                mfa_active: false
            })
        );
        // Any credential brings the check back: a password, an active key (with or without
        // a date), an active certificate, or `not_supported` (older reports' root password).
        let mut with_password = r.clone();
        with_password.password_enabled = Some(true);
        let mut unknown_password = r.clone();
        unknown_password.password_enabled = None;
        let mut with_key = r.clone();
        with_key.keys[1] = AccessKey {
            active: true,
            last_rotated: Stamp::NotApplicable,
            last_used: Stamp::NotApplicable,
        };
        let mut with_cert = r.clone();
        with_cert.certs_active[0] = true;
        for row in [with_password, unknown_password, with_key, with_cert] {
            let a = judged(vec![row.clone()]);
            assert_eq!(a.count(Check::RootWithoutMfa), 1, "{row:?}");
            assert!(a.root.unwrap().credentials_present);
        }
    }

    #[test]
    fn without_a_root_row_the_root_checks_are_not_judged() {
        let a = judged(vec![user("alice")]);
        assert_eq!(a.root, None);
        for &c in Check::ALL {
            assert_eq!(a.judged(c), !c.is_root(), "{}", c.name());
        }
        let a = judged(vec![root(), user("alice")]);
        assert!(Check::ALL.iter().all(|&c| a.judged(c)));
    }

    #[test]
    fn an_active_key_without_dates_is_an_active_key_of_unknown_age() {
        let dateless = AccessKey {
            active: true,
            last_rotated: Stamp::NotApplicable,
            last_used: Stamp::NotApplicable,
        };
        assert!(dateless.exists() && dateless.is_active());
        let empty = AccessKey {
            active: false,
            last_rotated: Stamp::Missing,
            last_used: Stamp::NotApplicable,
        };
        assert!(!empty.exists() && !empty.is_active());
        let mut r = root();
        r.keys[0] = dateless.clone();
        let a = judged(vec![r]);
        assert_eq!(a.count(Check::RootAccessKey), 1);
        assert_eq!(a.findings[0].since, None);
        let mut u = user("u");
        u.keys = [dateless.clone(), key(10, Some(1))];
        let f = failing(vec![u]);
        // Two active keys; no age, so no rotation or use verdict on the dateless one.
        assert_eq!(f, ["two_active_access_keys", "access_key_at_setup"]);
    }

    fn live(policy: Option<Option<PasswordPolicy>>, virtual_mfa: Option<bool>) -> LiveFacts {
        LiveFacts {
            password_policy: policy,
            root_virtual_mfa: virtual_mfa,
            ..LiveFacts::default()
        }
    }

    #[test]
    fn account_checks_are_judged_only_where_their_calls_answered() {
        let present = RootFacts {
            credentials_present: true,
            mfa_active: true,
        };
        assert!(judge_account(&LiveFacts::default(), Some(&present)).is_empty());
        let verdicts = judge_account(&live(Some(Some(strong_policy())), None), Some(&present));
        assert_eq!(verdicts, AccountCheck::PASSWORD_POLICY.map(|c| (c, false)));
        // root_virtual_mfa: fails only for a root with credentials and a virtual device.
        let rv = |virtual_mfa, root: Option<&RootFacts>| {
            judge_account(&live(None, Some(virtual_mfa)), root)
        };
        assert_eq!(
            rv(true, Some(&present)),
            [(AccountCheck::RootVirtualMfa, true)]
        );
        assert_eq!(
            rv(false, Some(&present)),
            [(AccountCheck::RootVirtualMfa, false)]
        );
        let removed = RootFacts {
            credentials_present: false,
            mfa_active: false,
        };
        assert_eq!(
            rv(true, Some(&removed)),
            [(AccountCheck::RootVirtualMfa, false)]
        );
        // No root row: unknown, no verdict.
        assert!(rv(true, None).is_empty());
    }

    #[test]
    fn live_root_keys_can_only_add_credentials() {
        let removed = RootFacts {
            credentials_present: false,
            mfa_active: false,
        };
        let keys = AccountSummary {
            root_access_keys_present: true,
            ..AccountSummary::default()
        };
        let none = AccountSummary::default();
        assert_eq!(root_credentials_present(Some(&removed), None), Some(false));
        assert_eq!(
            root_credentials_present(Some(&removed), Some(&keys)),
            Some(true)
        );
        let present = RootFacts {
            credentials_present: true,
            ..removed
        };
        assert_eq!(
            root_credentials_present(Some(&present), Some(&none)),
            Some(true)
        );
        assert_eq!(root_credentials_present(None, Some(&keys)), None);
    }

    #[test]
    fn future_dates_are_not_old() {
        let mut u = user("u");
        u.keys[0] = AccessKey {
            active: true,
            last_rotated: Stamp::At(now() + TimeDelta::days(365 * 70)),
            last_used: Stamp::NotApplicable,
        };
        u.password_enabled = Some(false);
        let f = failing(vec![u]);
        assert!(!f.contains(&"access_key_not_rotated"), "{f:?}");
        assert!(!f.contains(&"unused_access_key"), "{f:?}");
    }
}
