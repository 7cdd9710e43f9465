//! What is known about an account besides its report: the live facts read on every refresh
//! (not subject to the report's 4-hour cache), and why a refresh failed (a bounded reason for
//! metrics, a message for the log).

use std::sync::Arc;
use strum::{EnumCount, IntoStaticStr, VariantArray};

/// Why a refresh failed: the bounded `reason` label of
/// `iam_credentials_exporter_refresh_failures_total`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    IntoStaticStr,
    VariantArray,
    EnumCount,
    strum::Display,
)]
#[strum(serialize_all = "snake_case")]
pub enum FailureReason {
    /// The report file could not be read.
    ReadError,
    /// The report could not be parsed (no header, a required column missing).
    ParseError,
    /// The report parsed but cannot be vouched for: no row could be read, or it has no rows
    /// while the account's last good report had users. The last good snapshot stays served.
    InvalidReport,
    /// AWS refused a call: a permission is missing.
    AccessDenied,
    /// AWS throttled us (`Throttling`, `LimitExceeded`) for longer than the retry bound.
    Throttled,
    /// A call did not answer within its timeout.
    Timeout,
    /// AWS answered with a server error (`ServiceFailure`, 5xx) for longer than the bound.
    ServiceError,
    /// The report was still being generated when the round's wait bound ran out.
    ReportNotReady,
    /// AWS answered something unusable (a garbage body, a report not in CSV).
    InvalidResponse,
    /// No credentials could be obtained (or an assumed role was refused).
    Credentials,
    /// Anything else (network errors, unexpected error codes).
    Other,
}

impl FailureReason {
    /// Every reason, so each can be exported as 0 before it first happens.
    pub const ALL: &'static [FailureReason] = Self::VARIANTS;

    /// The label value.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The position in [`FailureReason::ALL`], for counters kept in an array.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// A failed fetch: a bounded reason for metrics and a message for the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SourceError {
    /// The metric label.
    pub reason: FailureReason,
    /// What failed and where, for the operator.
    pub message: String,
}

impl SourceError {
    /// A new error.
    pub fn new(reason: FailureReason, message: impl Into<String>) -> SourceError {
        SourceError {
            reason,
            message: message.into(),
        }
    }
}

/// The live account summary (`GetAccountSummary`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AccountSummary {
    /// `AccountMFAEnabled`: the root user has MFA.
    pub root_mfa_enabled: bool,
    /// `AccountAccessKeysPresent`: the root user has access keys.
    pub root_access_keys_present: bool,
    /// `MFADevicesInUse`.
    pub mfa_devices_in_use: u64,
}

/// The account password policy (`GetAccountPasswordPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PasswordPolicy {
    /// `MinimumPasswordLength`.
    pub minimum_length: u32,
    /// `PasswordReusePrevention` (0 when unset).
    pub reuse_prevention: u32,
    /// `MaxPasswordAge` in days (0 when passwords never expire).
    pub max_age_days: u32,
    pub require_symbols: bool,
    pub require_numbers: bool,
    pub require_uppercase: bool,
    pub require_lowercase: bool,
}

/// Account facts fetched live on every refresh; each is `None` when its call failed (the
/// failure is reported separately and does not stop the report).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LiveFacts {
    /// `GetAccountSummary`.
    pub summary: Option<AccountSummary>,
    /// `ListAccountAliases` (an account has at most one alias).
    pub alias: Option<String>,
    /// `GetAccountPasswordPolicy`: `Some(None)` is "the account has no policy", a finding.
    pub password_policy: Option<Option<PasswordPolicy>>,
    /// `ListVirtualMFADevices` (assigned devices): whether one of them is assigned to the
    /// root user, i.e. root's MFA is virtual rather than hardware. `None` when not read.
    pub root_virtual_mfa: Option<bool>,
    /// The IAM users' paths and tags (GetAccountAuthorizationDetails), read only when tag
    /// keys are configured (`aws.user_tags`) and per-user series are on. `None` when not read
    /// (or the last good read is too old to keep); it may be older than this round, since
    /// tags change rarely and the source re-reads them at most hourly.
    /// Shared, not copied, wherever the facts are cloned (a directory can hold 5,000 users).
    pub users: Option<Arc<UserDirectory>>,
    /// Calls that failed this round: (API name, reason).
    pub failures: Vec<(&'static str, FailureReason)>,
}

/// IAM users with their path and the values of the configured tag keys, for
/// `aws_iam_user_info`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserDirectory {
    /// The tag keys read, as configured (each becomes a `tag_...` label).
    pub tag_keys: Vec<String>,
    /// The users, in the order IAM listed them.
    pub users: Vec<UserInfo>,
}

/// One IAM user's path and tags.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserInfo {
    /// The user name.
    pub name: String,
    /// The user's path (`/` unless set, e.g. `/engineering/`).
    pub path: String,
    /// The value of each of [`UserDirectory::tag_keys`], in that order; empty when the user
    /// lacks the tag (or its value is empty).
    pub tags: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_snake_case_labels_in_declaration_order() {
        let labels: Vec<&str> = FailureReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(
            labels,
            [
                "read_error",
                "parse_error",
                "invalid_report",
                "access_denied",
                "throttled",
                "timeout",
                "service_error",
                "report_not_ready",
                "invalid_response",
                "credentials",
                "other"
            ]
        );
        assert_eq!(FailureReason::COUNT, FailureReason::ALL.len());
        assert_eq!(FailureReason::Timeout.to_string(), "timeout");
        assert!(FailureReason::ALL
            .iter()
            .enumerate()
            .all(|(i, r)| r.index() == i));
    }
}
