//! Where reports come from: the one seam between the exporter and the outside world.
//!
//! A [`ReportSource`] fetches a report's bytes (and, from live AWS, the account facts that are
//! not 4 hours old). Everything behind the seam (parsing, judging, rendering) is pure. The
//! file source lives here; the AWS source is fenced into its own module, [`crate::aws`].

use chrono::{DateTime, Utc};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

/// A boxed future, so sources can be held as trait objects.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a refresh failed: the bounded `reason` label of
/// `iam_credentials_exporter_refresh_failures_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FailureReason {
    /// The report file could not be read.
    ReadError,
    /// The report could not be parsed (no header, a required column missing).
    ParseError,
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
    pub const ALL: [FailureReason; 10] = [
        FailureReason::ReadError,
        FailureReason::ParseError,
        FailureReason::AccessDenied,
        FailureReason::Throttled,
        FailureReason::Timeout,
        FailureReason::ServiceError,
        FailureReason::ReportNotReady,
        FailureReason::InvalidResponse,
        FailureReason::Credentials,
        FailureReason::Other,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::ReadError => "read_error",
            FailureReason::ParseError => "parse_error",
            FailureReason::AccessDenied => "access_denied",
            FailureReason::Throttled => "throttled",
            FailureReason::Timeout => "timeout",
            FailureReason::ServiceError => "service_error",
            FailureReason::ReportNotReady => "report_not_ready",
            FailureReason::InvalidResponse => "invalid_response",
            FailureReason::Credentials => "credentials",
            FailureReason::Other => "other",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl std::fmt::Display for FailureReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
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

/// The live account summary (`GetAccountSummary`): not subject to the report's 4-hour cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AccountSummary {
    /// `AccountMFAEnabled`: the root user has MFA.
    pub root_mfa_enabled: bool,
    /// `AccountAccessKeysPresent`: the root user has access keys.
    pub root_access_keys_present: bool,
    /// `MFADevicesInUse`.
    pub mfa_devices_in_use: u64,
    /// `Users`.
    pub users: u64,
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
    /// `RequireSymbols`.
    pub require_symbols: bool,
    /// `RequireNumbers`.
    pub require_numbers: bool,
    /// `RequireUppercaseCharacters`.
    pub require_uppercase: bool,
    /// `RequireLowercaseCharacters`.
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
    /// Calls that failed this round: (API name, reason).
    pub failures: Vec<(&'static str, FailureReason)>,
}

/// What one fetch brought back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// The report CSV.
    pub csv: Vec<u8>,
    /// When AWS generated the report (`GeneratedTime`); for a file, its modification time.
    pub generated_at: Option<DateTime<Utc>>,
    /// The account id, when the source knows it (the report's ARNs name it otherwise).
    pub account_id: Option<String>,
    /// Live account facts (AWS sources only).
    pub live: Option<LiveFacts>,
}

/// A source of credential reports for one account.
pub trait ReportSource: Send + Sync + 'static {
    /// Fetches the current report. Called by one refresh loop, never concurrently.
    fn fetch(&self) -> BoxFuture<'_, Result<Fetched, SourceError>>;

    /// Calls made again so far (cumulative, successful rounds or not), by (API, cause), for
    /// `iam_credentials_exporter_aws_retries_total`. Sources that never retry have none.
    fn retries(&self) -> Vec<((&'static str, &'static str), u64)> {
        Vec::new()
    }
}

/// A report read from a file, re-read on every refresh.
#[derive(Debug, Clone)]
pub struct FileSource {
    path: PathBuf,
}

impl FileSource {
    /// A source reading `path`.
    pub fn new(path: impl Into<PathBuf>) -> FileSource {
        FileSource { path: path.into() }
    }
}

impl ReportSource for FileSource {
    fn fetch(&self) -> BoxFuture<'_, Result<Fetched, SourceError>> {
        Box::pin(async move {
            let fail = |e: std::io::Error| {
                SourceError::new(
                    FailureReason::ReadError,
                    format!("reading report file {}: {e}", self.path.display()),
                )
            };
            let csv = tokio::fs::read(&self.path).await.map_err(fail)?;
            let generated_at = tokio::fs::metadata(&self.path)
                .await
                .and_then(|m| m.modified())
                .ok()
                .map(DateTime::<Utc>::from);
            Ok(Fetched {
                csv,
                generated_at,
                account_id: None,
                live: None,
            })
        })
    }
}
