//! Collection: where reports come from and the loops that keep each account's snapshot fresh.
//!
//! A [`ReportSource`] fetches a report's bytes (and, from live AWS, the account facts that are
//! not 4 hours old): [`file`] reads a CSV, [`aws`] calls IAM (the only module that imports the
//! AWS SDK). [`refresh`] runs one loop per account, parses and judges with the core crate and
//! hands the result to [`crate::state`]; [`fleet`] decides which accounts are read and
//! restarts loops when that changes. Collection writes to the state; it never serves.

pub mod aws;
pub mod file;
pub mod fleet;
pub mod history;
pub mod refresh;

use chrono::{DateTime, Utc};
pub use iam_credential_report::account::{FailureReason, LiveFacts, SourceError};

pub use crate::BoxFuture;

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
