//! A Prometheus exporter for the AWS IAM credential report.
//!
//! Parsing, judging and rendering live in the `iam-credential-report` crate, which is pure;
//! this crate does the I/O around it. Module map, from the outside in, with the only
//! direction dependencies take:
//!
//! ```text
//! daemon ──> cli, config, collect, logging, serve, state
//! collect ──> state ──> iam_credential_report (core)
//! serve ──> state (read-only)
//! ```
//!
//! - [`cli`]: command-line flags, validated into settings; the `check`, `checks` and `diff`
//!   subcommands.
//! - [`config`]: the config file, validated; the one table of settings that are both flags
//!   and keys; which accounts to read. Pure.
//! - [`collect`]: where reports come from (a file, AWS behind its fence in `collect::aws`),
//!   the refresh loops, the supervisor of the set of accounts, and the report digests kept
//!   across restarts (`collect::history`).
//! - [`state`]: the store between collection and serving; one publish path.
//! - [`serve`]: the HTTP server, its routes and landing page, web config, TLS, basic auth.
//!   It reads what [`state`] published and never reaches into collection: a reload is asked
//!   through the [`serve::Reload`] trait that [`daemon`] hands in.
//! - [`logging`]: the log line format (promslog's keys, logfmt or JSON).
//! - [`daemon`]: wiring only.
#![forbid(unsafe_code)]

pub mod cli;
pub mod collect;
pub mod config;
pub mod daemon;
pub mod logging;
pub mod serve;
pub mod state;

/// A boxed future, so that the seams between modules (`collect::ReportSource`,
/// `serve::Reload`) can be held as trait objects.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// The crate version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The source revision the binary was built from (`unknown` outside a git checkout), as
/// `build.rs` found it.
pub const REVISION: &str = env!("IAM_CREDENTIALS_EXPORTER_BUILD_REVISION");

/// `--version` output: version and revision.
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (revision ",
    env!("IAM_CREDENTIALS_EXPORTER_BUILD_REVISION"),
    ")"
);
