//! Reports read from a CSV file (`--report.file`), re-read on every refresh.

use super::{BoxFuture, Fetched, ReportSource, SourceError};
use chrono::{DateTime, Utc};
use iam_credential_report::account::FailureReason;
use std::path::PathBuf;

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
