//! A Prometheus exporter for the AWS IAM credential report.
//!
//! Module map, from the outside in:
//! - [`cli`]: command-line flags, validated into settings.
//! - [`config`]: the config file (`--config.file`), validated; which accounts to read, pure.
//! - [`daemon`]: wiring of the long-running exporter (logging, listener, loops, signals).
//! - [`fleet`]: the accounts being read: their refresh loops, organization discovery, reloads.
//! - [`server`]: the HTTP server; it serves only what [`hub`] last published.
//! - [`web_config`]: the `--web.config.file` (exporter-toolkit format), validated and reloaded;
//!   [`tls`] builds its TLS settings, [`basic_auth`] checks its users' passwords.
//! - [`hub`]: shared state between collection and serving; re-renders on every change.
//! - [`refresh`]: the per-account refresh loops.
//! - [`source`]: where reports come from (a file here; AWS behind its own fence).
//! - [`aws`]: the AWS source; the only module that imports the AWS SDK (a fence, as in
//!   yet-another-cloudwatch-exporter): everything else sees it through [`source::ReportSource`].
//! - [`report`]: pure parsing of the credential report CSV.
//! - [`checks`]: pure judging of a report against the CIS / Security Hub checks.
//! - [`metrics`]: the metrics contract and pure rendering into exposition text.
//! - [`landing`]: the landing page.
//! - [`offline`]: the `check` subcommand's output formats.
//! - [`synthetic`]: generated reports for benchmarks, load and property tests.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod aws;
pub mod basic_auth;
pub mod checks;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod fleet;
pub mod hub;
pub mod landing;
pub mod metrics;
pub mod offline;
pub mod refresh;
pub mod report;
pub mod server;
pub mod source;
pub mod synthetic;
pub mod tls;
pub mod web_config;

/// The crate version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The source revision the binary was built from (`unknown` outside a git checkout).
pub const REVISION: &str = match option_env!("IAM_CREDENTIALS_EXPORTER_REVISION") {
    Some(r) => r,
    None => "unknown",
};

/// `--version` output: version and revision.
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (revision ",
    env!("IAM_CREDENTIALS_EXPORTER_REVISION_OR_UNKNOWN"),
    ")"
);
