//! Command-line flags in the Prometheus exporter convention (`--web.listen-address`,
//! `--log.level`...). Every flag can also be set from the environment: `--a.b-c` is
//! `IAM_CREDENTIALS_EXPORTER_A_B_C`. Raw flags are turned into validated settings here;
//! nothing else parses strings from the user.

pub mod asff;
pub mod check;
pub mod checks;
pub mod diff;

use crate::config::duration::{self, DurationError};
use crate::config::{PerUserMetrics, Settings, Shard, UserTagKeyError, UserTagKeys, SETTINGS};
use clap::builder::TypedValueParser;
use clap::parser::ValueSource;
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use iam_credential_report::expose::RenderOptions;
use iam_credential_report::judge::Thresholds;
use regex::Regex;
use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

const ABOUT: &str = "Prometheus exporter for the AWS IAM credential report";

const LONG_ABOUT: &str = "\
Prometheus exporter for the AWS IAM credential report.

Refreshes each account's credential report in the background, judges it against the CIS AWS
Foundations Benchmark and AWS Security Hub checks (MFA, access key age and use, password age,
root account safety) and serves the result on /metrics. Scrapes never call AWS.

Run it against the AWS account of the default credential chain (environment, shared profile,
SSO, web identity, container or instance role); AWS_ENDPOINT_URL is honoured:
    iam-credentials-exporter

Watch many accounts (roles to assume, AWS Organizations discovery) from a config file, and
check one without starting:
    iam-credentials-exporter --config.file config.yml
    iam-credentials-exporter --config.file config.yml --config.check

Run it on a report file (no AWS account needed):
    iam-credentials-exporter --report.file credential-report.csv

Judge a report offline and print the findings:
    iam-credentials-exporter check credential-report.csv

Every flag can also be set from the environment: --web.listen-address is
IAM_CREDENTIALS_EXPORTER_WEB_LISTEN_ADDRESS, and so on. A setting that is both a flag and a
config file key takes the flag when the flag is given, else the file's value, else the flag's
default.";

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "iam-credentials-exporter",
    version = crate::LONG_VERSION,
    about = ABOUT,
    long_about = LONG_ABOUT
)]
pub struct Cli {
    /// What to do; without a command, run the exporter.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Exporter flags.
    #[command(flatten)]
    pub serve: ServeArgs,

    /// Check thresholds (for the exporter and `check`).
    #[command(flatten)]
    pub thresholds: ThresholdArgs,

    /// Logging.
    #[command(flatten)]
    pub log: LogArgs,

    /// The config file keys ([`crate::config::SETTINGS`]) whose flag was given explicitly,
    /// on the command line or in the environment: those flags win over the file.
    #[arg(skip)]
    pub explicit: BTreeSet<String>,
}

impl Cli {
    /// Parses `args` (the program name first), noting which settings were given explicitly.
    pub fn try_parse_args<I, T>(args: I) -> Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let matches = Cli::command().try_get_matches_from(args)?;
        let mut cli = Cli::from_arg_matches(&matches)?;
        let given = |id: &&str| {
            matches!(
                matches.value_source(id),
                Some(ValueSource::CommandLine | ValueSource::EnvVariable)
            )
        };
        cli.explicit = SETTINGS
            .iter()
            .filter(|s| s.flags.iter().any(given))
            .map(|s| s.key.to_owned())
            .collect();
        cli.log.explicit = given(&"level") || given(&"format");
        Ok(cli)
    }

    /// Parses the process's arguments; prints help, the version or an error and exits as clap
    /// does.
    pub fn parse_args() -> Cli {
        Cli::try_parse_args(std::env::args_os()).unwrap_or_else(|e| e.exit())
    }

    /// The flags' settings, before a config file is applied.
    pub fn flag_settings(&self) -> Settings {
        Settings {
            refresh_interval: self.serve.refresh_interval,
            refresh_concurrency: self.serve.refresh_concurrency,
            thresholds: self.thresholds.thresholds(),
            per_user_metrics: self.serve.per_user,
            shard: Shard {
                index: self.serve.shard_index,
                count: self.serve.shard_count,
            },
            user_tags: self.serve.aws_user_tags.clone().unwrap_or_default(),
        }
    }
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Judge a credential report offline and print the findings.
    ///
    /// Exits 0 when every check passes, 1 when any fails, 2 when the report cannot be read
    /// or the verdict is incomplete (rows skipped; see --allow-skipped-rows).
    Check(CheckArgs),
    /// Print the catalogue of checks: severity, Security Hub, CIS (each benchmark version)
    /// and AWS Config ids, and the remediation.
    Checks(ChecksArgs),
    /// Compare two credential reports of one account and print what changed.
    ///
    /// Exits 0 when nothing changed, 1 when something did, 2 when either report cannot be
    /// read (or rows were skipped; see --allow-skipped-rows).
    Diff(DiffArgs),
}

/// Flags of the long-running exporter.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on: `:PORT` for every interface, or `HOST:PORT`.
    #[arg(
        long = "web.listen-address",
        env = "IAM_CREDENTIALS_EXPORTER_WEB_LISTEN_ADDRESS",
        default_value = ":10461",
        value_name = "ADDRESS"
    )]
    pub listen_address: String,

    /// Path under which to expose metrics.
    #[arg(
        long = "web.telemetry-path",
        env = "IAM_CREDENTIALS_EXPORTER_WEB_TELEMETRY_PATH",
        default_value = "/metrics",
        value_name = "PATH",
        value_parser = telemetry_path
    )]
    pub telemetry_path: String,

    /// The URL under which the exporter is reachable from outside (behind a reverse proxy,
    /// e.g. `https://example.com/iam/`). When it has a path and --web.route-prefix is not
    /// given, that path prefixes every route, as in Prometheus.
    #[arg(
        long = "web.external-url",
        env = "IAM_CREDENTIALS_EXPORTER_WEB_EXTERNAL_URL",
        value_name = "URL",
        value_parser = external_url
    )]
    pub external_url: Option<String>,

    /// Prefix of every route (the landing page, the telemetry path, /-/healthy, /-/ready,
    /// /-/reload), e.g. `/iam`. Defaults to the path of --web.external-url, else none.
    #[arg(
        long = "web.route-prefix",
        env = "IAM_CREDENTIALS_EXPORTER_WEB_ROUTE_PREFIX",
        value_name = "PATH",
        value_parser = route_prefix
    )]
    pub route_prefix: Option<String>,

    /// Serve the credential report in this CSV file instead of calling AWS (re-read every
    /// refresh interval). With --config.file, the file then supplies thresholds, metric
    /// options and exceptions, and must name no accounts or organization.
    #[arg(
        long = "report.file",
        env = "IAM_CREDENTIALS_EXPORTER_REPORT_FILE",
        value_name = "PATH"
    )]
    pub report_file: Option<PathBuf>,

    /// Keep each account's last report digest in this directory, so that a restart compares
    /// the first report with the one before it (change events) instead of taking a new
    /// baseline. Off by default: nothing is written.
    #[arg(
        long = "storage.path",
        env = "IAM_CREDENTIALS_EXPORTER_STORAGE_PATH",
        value_name = "DIR"
    )]
    pub storage_path: Option<PathBuf>,

    /// Configuration file (YAML): accounts to read through roles, AWS Organizations
    /// discovery, refresh, thresholds, per-user metrics, shard. Without it, the exporter reads
    /// the account of its own credentials. Re-read on SIGHUP and POST /-/reload; a bad file is
    /// refused and the running configuration kept.
    #[arg(
        long = "config.file",
        env = "IAM_CREDENTIALS_EXPORTER_CONFIG_FILE",
        value_name = "PATH"
    )]
    pub config_file: Option<PathBuf>,

    /// Validate --config.file (and --web.config.file) and exit: 0 when valid, 1 with the bad
    /// key named when not.
    #[arg(long = "config.check", requires = "config_file")]
    pub config_check: bool,

    /// How many account refreshes may run at once.
    #[arg(
        long = "refresh.concurrency",
        env = "IAM_CREDENTIALS_EXPORTER_REFRESH_CONCURRENCY",
        default_value_t = 8,
        value_name = "N",
        value_parser = clap::value_parser!(u16).range(1..=1024).map(usize::from)
    )]
    pub refresh_concurrency: usize,

    /// This replica's shard, from 0: it reads only the accounts whose id hashes (FNV-1a) to
    /// this index modulo --shard.count, so N replicas read every account exactly once.
    #[arg(
        long = "shard.index",
        env = "IAM_CREDENTIALS_EXPORTER_SHARD_INDEX",
        default_value_t = 0,
        value_name = "I"
    )]
    pub shard_index: u32,

    /// How many replicas share the accounts.
    #[arg(
        long = "shard.count",
        env = "IAM_CREDENTIALS_EXPORTER_SHARD_COUNT",
        default_value_t = 1,
        value_name = "N",
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub shard_count: u32,

    /// How often to refresh each account's report (e.g. 15m, 1h). AWS regenerates a report
    /// at most every 4 hours, but the live account facts (root MFA, root keys, MFA devices in
    /// use, the password policy) are read on every refresh: 15m shows an MFA regression within
    /// 15 minutes and asks for a new report at most 15 minutes after the old one turns 4
    /// hours old, for 5 or 6 cheap IAM calls per account per refresh.
    #[arg(
        long = "refresh.interval",
        env = "IAM_CREDENTIALS_EXPORTER_REFRESH_INTERVAL",
        default_value = "15m",
        value_name = "DURATION",
        value_parser = positive_duration
    )]
    pub refresh_interval: Duration,

    /// Give up a refresh round after this long (AWS: waiting for the report to be generated
    /// and backing off from throttling included); the last good report stays served.
    #[arg(
        long = "refresh.timeout",
        env = "IAM_CREDENTIALS_EXPORTER_REFRESH_TIMEOUT",
        default_value = "5m",
        value_name = "DURATION",
        value_parser = positive_duration
    )]
    pub refresh_timeout: Duration,

    /// AWS region to sign IAM calls for. IAM is global, so only the partition matters (e.g.
    /// us-gov-west-1 for GovCloud). Default: the credential chain's region (AWS_REGION, the
    /// profile), else us-east-1.
    #[arg(
        long = "aws.region",
        env = "IAM_CREDENTIALS_EXPORTER_AWS_REGION",
        value_name = "REGION"
    )]
    pub aws_region: Option<String>,

    /// Timeout of each AWS API call.
    #[arg(
        long = "aws.call-timeout",
        env = "IAM_CREDENTIALS_EXPORTER_AWS_CALL_TIMEOUT",
        default_value = "30s",
        value_name = "DURATION",
        value_parser = positive_duration
    )]
    pub aws_call_timeout: Duration,

    /// Tries per AWS call when AWS throttles (Throttling, LimitExceeded), fails on its side
    /// (5xx), or the call times out, with exponential backoff and full jitter between them
    /// (1s doubling to 30s at most); 1 never retries.
    #[arg(
        long = "aws.max-attempts",
        env = "IAM_CREDENTIALS_EXPORTER_AWS_MAX_ATTEMPTS",
        default_value_t = 6,
        value_name = "N",
        value_parser = clap::value_parser!(u32).range(1..=20)
    )]
    pub aws_max_attempts: u32,

    /// IAM user tag keys to read, comma-separated (e.g. owner,team): each user's value
    /// labels aws_iam_user_info{user,path,tag_owner,tag_team} (empty when the user lacks the
    /// tag), for alerts to carry owners. Read with GetAccountAuthorizationDetails at most
    /// hourly (iam:GetAccountAuthorizationDetails, needed only then). Empty (the default):
    /// no tags, no call. Config file: aws.user_tags.
    #[arg(
        long = "aws.user-tags",
        env = "IAM_CREDENTIALS_EXPORTER_AWS_USER_TAGS",
        value_name = "KEYS",
        value_parser = user_tag_keys
    )]
    pub aws_user_tags: Option<UserTagKeys>,

    /// Per-user series (they let alerts name the user, at a cost in cardinality): true for
    /// every user, failing for users who fail or are muted for at least one check (counts
    /// and histograms still cover everyone), false for none.
    #[arg(
        long = "metrics.per-user",
        env = "IAM_CREDENTIALS_EXPORTER_METRICS_PER_USER",
        default_value = "true",
        value_name = "true|failing|false"
    )]
    pub per_user: PerUserMetrics,

    /// Export per-user series only for users whose name matches this regular expression.
    #[arg(
        long = "metrics.user-include",
        env = "IAM_CREDENTIALS_EXPORTER_METRICS_USER_INCLUDE",
        value_name = "REGEX"
    )]
    pub user_include: Option<Regex>,

    /// Never export per-user series for users whose name matches this regular expression.
    #[arg(
        long = "metrics.user-exclude",
        env = "IAM_CREDENTIALS_EXPORTER_METRICS_USER_EXCLUDE",
        value_name = "REGEX"
    )]
    pub user_exclude: Option<Regex>,

    /// Keep at most this many connections open; when all are taken, a new one closes the
    /// connection that has been quiet the longest.
    #[arg(
        long = "web.max-connections",
        env = "IAM_CREDENTIALS_EXPORTER_WEB_MAX_CONNECTIONS",
        default_value_t = 256,
        value_name = "N"
    )]
    pub max_connections: usize,

    /// Web configuration file (exporter-toolkit format) for TLS, basic authentication and
    /// response headers. Re-read when it or a file it names changes, and on SIGHUP.
    #[arg(
        long = "web.config.file",
        env = "IAM_CREDENTIALS_EXPORTER_WEB_CONFIG_FILE",
        value_name = "PATH"
    )]
    pub web_config_file: Option<PathBuf>,

    /// How often to check the web configuration file (and its certificates) for changes.
    #[arg(
        long = "web.config.reload-interval",
        env = "IAM_CREDENTIALS_EXPORTER_WEB_CONFIG_RELOAD_INTERVAL",
        default_value = "5s",
        value_name = "DURATION",
        value_parser = positive_duration
    )]
    pub web_config_reload_interval: Duration,

    /// How long a client may take for the TLS handshake, and then for each request's headers
    /// (also how long an idle keep-alive connection stays open).
    #[arg(
        long = "web.header-read-timeout",
        env = "IAM_CREDENTIALS_EXPORTER_WEB_HEADER_READ_TIMEOUT",
        default_value = "10s",
        value_name = "DURATION",
        value_parser = positive_duration
    )]
    pub header_read_timeout: Duration,
}

impl ServeArgs {
    /// The prefix every route is served under: --web.route-prefix, else the path of
    /// --web.external-url; `""` for none, else `/` and segments without a trailing `/`.
    pub fn effective_route_prefix(&self) -> String {
        match (&self.route_prefix, &self.external_url) {
            (Some(prefix), _) => prefix.clone(),
            (None, Some(url)) => normalise_prefix(url_path(url)),
            (None, None) => String::new(),
        }
    }

    /// Which per-user series to render.
    pub fn render_options(&self) -> RenderOptions {
        self.per_user.apply(&RenderOptions {
            user_include: self.user_include.clone(),
            user_exclude: self.user_exclude.clone(),
            ..RenderOptions::default()
        })
    }
}

/// Thresholds of the age-based checks, as humantime durations (`90d`, `45days`, `12h`).
#[derive(Debug, Args, Clone)]
pub struct ThresholdArgs {
    /// access_key_not_rotated: maximum age of an active access key.
    #[arg(long = "check.access-key-max-age", env = "IAM_CREDENTIALS_EXPORTER_CHECK_ACCESS_KEY_MAX_AGE",
          default_value = "90d", value_name = "DURATION", value_parser = positive_duration, global = true)]
    pub access_key_max_age: Duration,

    /// unused_access_key and unused_password: how long a credential may go unused (AWS Config
    /// uses 90 days; CIS 1.12 and Security Hub IAM.22 use 45).
    #[arg(long = "check.unused-credentials", env = "IAM_CREDENTIALS_EXPORTER_CHECK_UNUSED_CREDENTIALS",
          default_value = "90d", value_name = "DURATION", value_parser = positive_duration, global = true)]
    pub unused_credentials: Duration,

    /// password_not_rotated: maximum age of a console password.
    #[arg(long = "check.password-max-age", env = "IAM_CREDENTIALS_EXPORTER_CHECK_PASSWORD_MAX_AGE",
          default_value = "90d", value_name = "DURATION", value_parser = positive_duration, global = true)]
    pub password_max_age: Duration,

    /// inactive_user: how long a user may go without using any credential.
    #[arg(long = "check.inactive-user", env = "IAM_CREDENTIALS_EXPORTER_CHECK_INACTIVE_USER",
          default_value = "90d", value_name = "DURATION", value_parser = positive_duration, global = true)]
    pub inactive_user: Duration,

    /// root_used_recently: any root sign-in or key use within this window is a finding.
    #[arg(long = "check.root-recent-use", env = "IAM_CREDENTIALS_EXPORTER_CHECK_ROOT_RECENT_USE",
          default_value = "1d", value_name = "DURATION", value_parser = positive_duration, global = true)]
    pub root_recent_use: Duration,
}

impl ThresholdArgs {
    /// The thresholds.
    pub fn thresholds(&self) -> Thresholds {
        Thresholds {
            access_key_max_age: self.access_key_max_age,
            unused_credentials: self.unused_credentials,
            password_max_age: self.password_max_age,
            inactive_user: self.inactive_user,
            root_recent_use: self.root_recent_use,
        }
    }
}

/// Log level.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum LogLevel {
    /// Everything, including each unchanged refresh.
    Debug,
    /// Refresh outcomes and start-up.
    Info,
    /// Failures only.
    Warn,
    /// Errors only.
    Error,
}

/// Log format.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    /// `key=value` pairs, as Prometheus components log.
    Logfmt,
    /// One JSON object per line.
    Json,
}

/// Logging flags.
#[derive(Debug, Args, Clone)]
pub struct LogArgs {
    /// Only log messages with the given severity or above.
    #[arg(
        long = "log.level",
        env = "IAM_CREDENTIALS_EXPORTER_LOG_LEVEL",
        value_enum,
        default_value = "info",
        global = true
    )]
    pub level: LogLevel,

    /// Output format of log messages (written to standard error).
    #[arg(
        long = "log.format",
        env = "IAM_CREDENTIALS_EXPORTER_LOG_FORMAT",
        value_enum,
        default_value = "logfmt",
        global = true
    )]
    pub format: LogFormat,

    /// Whether `--log.level` or `--log.format` was given (on the command line or in the
    /// environment): the offline subcommands then log their warnings and errors in that
    /// format and level instead of writing plain lines for people.
    #[arg(skip)]
    pub explicit: bool,
}

/// Output format of `diff` (and, with ASFF besides, of `check`: [`CheckFormat`]).
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum OutputFormat {
    /// An aligned table for people.
    Table,
    /// One JSON document.
    Json,
    /// CSV, for spreadsheets.
    Csv,
}

/// Output format of `check`: [`OutputFormat`]'s, and ASFF (which only `check` has findings
/// for, so `diff` does not take it).
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum CheckFormat {
    /// A table for people, fitted to the terminal's width (COLUMNS, else the terminal's,
    /// else 100 columns).
    Table,
    /// One JSON document.
    Json,
    /// CSV, for spreadsheets (account_id first).
    Csv,
    /// Findings in the AWS Security Finding Format, a JSON array for
    /// `aws securityhub batch-import-findings --findings file://FILE` (at most 100 findings a
    /// call: split longer arrays). Muted findings are left out.
    Asff,
}

/// Flags of `check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The report: a CSV file, or `-` (the default) for standard input.
    #[arg(value_name = "FILE", default_value = "-")]
    pub file: String,

    /// Output format.
    #[arg(long, short, value_enum, default_value = "table")]
    pub output: CheckFormat,

    /// Judge as of this time (RFC 3339, e.g. 2026-01-31T00:00:00Z) instead of now.
    #[arg(long, value_name = "TIME", value_parser = rfc3339)]
    pub at: Option<chrono::DateTime<chrono::Utc>>,

    /// Accept a verdict with skipped rows: exit 0 or 1 on the rows that could be read,
    /// instead of 2 (the skipped users are not judged either way).
    #[arg(long = "allow-skipped-rows")]
    pub allow_skipped_rows: bool,

    /// The exporter's config file: its thresholds and exceptions apply (flags given
    /// explicitly still win); its accounts and organization are ignored.
    #[arg(long = "config.file", value_name = "PATH")]
    pub config_file: Option<PathBuf>,

    /// --output asff: the region of the Security Hub the findings are imported into (its
    /// partition goes into the ARNs). Default: the exporter's --aws.region (given before
    /// `check`, or IAM_CREDENTIALS_EXPORTER_AWS_REGION), else us-east-1.
    #[arg(long = "aws.region", value_name = "REGION")]
    pub aws_region: Option<String>,
}

/// Flags of `diff`.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The earlier report (a CSV file).
    #[arg(value_name = "OLD")]
    pub old: String,

    /// The later report (a CSV file, or `-` for standard input).
    #[arg(value_name = "NEW")]
    pub new: String,

    /// Output format.
    #[arg(long, short, value_enum, default_value = "table")]
    pub output: OutputFormat,

    /// Compare reports with skipped rows anyway (a skipped row can read as a deleted or
    /// created user), instead of exiting 2.
    #[arg(long = "allow-skipped-rows")]
    pub allow_skipped_rows: bool,
}

/// Output format of `checks`.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum CatalogueFormat {
    /// An aligned table for people.
    Table,
    /// A JSON list, one object per check.
    Json,
    /// The Markdown table the README carries.
    Markdown,
}

/// Flags of `checks`.
#[derive(Debug, Args)]
pub struct ChecksArgs {
    /// Output format.
    #[arg(long, short, value_enum, default_value = "table")]
    pub output: CatalogueFormat,
}

fn user_tag_keys(s: &str) -> Result<UserTagKeys, UserTagKeyError> {
    UserTagKeys::parse_flag(s)
}

fn positive_duration(s: &str) -> Result<Duration, DurationError> {
    duration::parse_positive(s)
}

/// A telemetry path that cannot be served.
#[derive(Debug, thiserror::Error)]
#[error("must start with / and not be / or under /-/")]
pub struct TelemetryPathError;

fn telemetry_path(s: &str) -> Result<String, TelemetryPathError> {
    if !s.starts_with('/') || s.len() < 2 || s.starts_with("/-/") {
        return Err(TelemetryPathError);
    }
    Ok(s.to_owned())
}

/// A --web.external-url that is not an absolute http(s) URL.
#[derive(Debug, thiserror::Error)]
#[error("expected an absolute http:// or https:// URL, e.g. https://example.com/iam/")]
pub struct ExternalUrlError;

fn external_url(s: &str) -> Result<String, ExternalUrlError> {
    let rest = s
        .strip_prefix("http://")
        .or_else(|| s.strip_prefix("https://"))
        .ok_or(ExternalUrlError)?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || s.chars().any(char::is_whitespace) {
        return Err(ExternalUrlError);
    }
    route_prefix(url_path(s)).map_err(|_| ExternalUrlError)?;
    Ok(s.to_owned())
}

/// The path of an absolute URL that [`external_url`] accepted (`""` when it has none).
fn url_path(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.split(['?', '#']).next().unwrap_or("");
    rest.find('/').map_or("", |i| &rest[i..])
}

/// `/a/b/` and `a/b` become `/a/b`; `/` and `` become `` (no prefix), as Prometheus trims
/// the route prefix.
fn normalise_prefix(path: &str) -> String {
    let trimmed = path.trim_matches('/');
    if trimmed.is_empty() {
        String::new()
    } else {
        format!("/{trimmed}")
    }
}

/// A --web.route-prefix that cannot be a URL path.
#[derive(Debug, thiserror::Error)]
#[error(
    "expected a URL path such as /iam, without `?`, `#`, `//`, `.` or `..` segments, or spaces"
)]
pub struct RoutePrefixError;

fn route_prefix(s: &str) -> Result<String, RoutePrefixError> {
    let prefix = normalise_prefix(s);
    let bad = prefix.contains(['?', '#', '%'])
        || prefix.chars().any(|c| c.is_whitespace() || c.is_control())
        || prefix
            .split('/')
            .skip(1)
            .any(|seg| seg.is_empty() || seg == "." || seg == "..");
    if bad {
        return Err(RoutePrefixError);
    }
    Ok(prefix)
}

/// A time that is not RFC 3339.
#[derive(Debug, thiserror::Error)]
#[error("{0} (expected e.g. 2026-01-31T00:00:00Z)")]
pub struct TimeError(#[from] chrono::ParseError);

fn rfc3339(s: &str) -> Result<chrono::DateTime<chrono::Utc>, TimeError> {
    Ok(chrono::DateTime::parse_from_rfc3339(s)?.with_timezone(&chrono::Utc))
}

/// Where an offline subcommand's warnings and errors go: plain `warning: ...` and `error: ...`
/// lines for people, or, when `--log.level` or `--log.format` was given, log lines in that
/// format, filtered by that level.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Say {
    logged: bool,
}

impl Say {
    /// Sets up logging when the log flags were given.
    pub(crate) fn new(cli: &Cli) -> Say {
        if cli.log.explicit {
            crate::daemon::init_logging(&cli.log);
        }
        Say {
            logged: cli.log.explicit,
        }
    }

    /// A warning: the verdict stands, with a caveat.
    pub(crate) fn warn(&self, message: &str) {
        if self.logged {
            tracing::warn!("{message}");
        } else {
            eprintln!("warning: {message}");
        }
    }

    /// An error: the subcommand gives up or the verdict is incomplete.
    pub(crate) fn error(&self, message: &str) {
        if self.logged {
            tracing::error!("{message}");
        } else {
            eprintln!("error: {message}");
        }
    }
}

/// Writes a subcommand's output to standard output; `false` when it could not (a closed
/// pipe), which the subcommands answer with exit code 2.
pub(crate) fn print(text: &str) -> bool {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|_| stdout.flush())
        .is_ok()
}

/// Turns `--web.listen-address` into something to bind: `:PORT` means every interface.
pub fn listen_target(address: &str) -> String {
    match address.strip_prefix(':') {
        Some(port) => format!("0.0.0.0:{port}"),
        None => address.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_follow_the_brief() {
        let cli = Cli::try_parse_args(["x"]).unwrap();
        assert!(cli.explicit.is_empty());
        assert_eq!(cli.serve.refresh_concurrency, 8);
        assert_eq!(cli.flag_settings().shard, Shard::default());
        assert_eq!(cli.serve.listen_address, ":10461");
        assert_eq!(cli.serve.telemetry_path, "/metrics");
        assert_eq!(cli.serve.refresh_interval, Duration::from_secs(900));
        assert_eq!(cli.serve.aws_region, None);
        assert_eq!(cli.serve.per_user, PerUserMetrics::All);
        assert_eq!(cli.thresholds.thresholds(), Thresholds::default());
    }

    #[test]
    fn thresholds_apply_to_check_too() {
        let cli = Cli::try_parse_from(["x", "check", "r.csv", "--check.unused-credentials", "45d"])
            .unwrap();
        assert_eq!(
            cli.thresholds.unused_credentials,
            Duration::from_secs(45 * 86400)
        );
        assert!(matches!(cli.command, Some(Command::Check(ref c)) if c.file == "r.csv"));
    }

    #[test]
    fn bad_values_are_refused_with_the_flag_named() {
        for args in [
            vec!["x", "--refresh.interval", "soon"],
            vec!["x", "--refresh.interval", "0s"],
            vec!["x", "--refresh.timeout", "0s"],
            vec!["x", "--aws.call-timeout", "fast"],
            vec!["x", "--aws.max-attempts", "0"],
            vec!["x", "--web.telemetry-path", "metrics"],
            vec!["x", "--metrics.user-include", "("],
            vec!["x", "--metrics.per-user", "maybe"],
            vec!["x", "--log.level", "loud"],
            vec!["x", "--web.header-read-timeout", "0s"],
            vec!["x", "--web.config.reload-interval", "often"],
            vec!["x", "--refresh.concurrency", "0"],
            vec!["x", "--shard.count", "0"],
            vec!["x", "--aws.user-tags", "owner,team!"],
            vec!["x", "--aws.user-tags", "owner,Owner"],
        ] {
            let err = Cli::try_parse_from(&args).unwrap_err().to_string();
            assert!(err.contains(args[1]), "{args:?}: {err}");
        }
    }

    #[test]
    fn explicit_flags_are_noted_by_their_config_key() {
        let cli = Cli::try_parse_args([
            "x",
            "--shard.index=1",
            "--shard.count=3",
            "--check.unused-credentials=45d",
            "--refresh.interval=1m",
        ])
        .unwrap();
        let keys: Vec<&str> = cli.explicit.iter().map(String::as_str).collect();
        assert_eq!(
            keys,
            ["refresh.interval", "shard", "thresholds.unused_credentials"]
        );
        assert_eq!(cli.flag_settings().shard, Shard { index: 1, count: 3 });
    }

    #[test]
    fn user_tags_are_a_setting_of_the_config_file_too() {
        let cli = Cli::try_parse_args(["x"]).unwrap();
        assert!(cli.flag_settings().user_tags.is_empty());
        let cli = Cli::try_parse_args(["x", "--aws.user-tags=owner, team"]).unwrap();
        assert_eq!(cli.flag_settings().user_tags.keys(), ["owner", "team"]);
        assert!(cli.explicit.contains("aws.user_tags"));
        // Given empty, it still wins over the file: no tags.
        let cli = Cli::try_parse_args(["x", "--aws.user-tags="]).unwrap();
        assert!(cli.flag_settings().user_tags.is_empty());
        assert!(cli.explicit.contains("aws.user_tags"));
        let err = Cli::try_parse_args(["x", "--aws.user-tags=cost-center,cost_center"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("both make the label tag_cost_center"), "{err}");
    }

    #[test]
    fn flags_that_cannot_go_together() {
        // A config file supplies thresholds and exceptions to a report file.
        assert!(Cli::try_parse_args(["x", "--config.file=c.yml", "--report.file=r.csv"]).is_ok());
        assert!(Cli::try_parse_args(["x", "--config.check"]).is_err());
        assert!(Cli::try_parse_args(["x", "--shard.count=0"]).is_err());
    }

    #[test]
    fn listen_targets() {
        assert_eq!(listen_target(":10461"), "0.0.0.0:10461");
        assert_eq!(listen_target("127.0.0.1:0"), "127.0.0.1:0");
    }

    #[test]
    fn the_route_prefix_is_given_or_the_external_url_path() {
        let prefix = |args: &[&str]| {
            let mut all = vec!["x"];
            all.extend_from_slice(args);
            Cli::try_parse_args(all).map(|c| c.serve.effective_route_prefix())
        };
        assert_eq!(prefix(&[]).unwrap(), "");
        assert_eq!(prefix(&["--web.route-prefix=/iam/"]).unwrap(), "/iam");
        assert_eq!(prefix(&["--web.route-prefix=iam/x"]).unwrap(), "/iam/x");
        assert_eq!(prefix(&["--web.route-prefix=/"]).unwrap(), "");
        let url = "--web.external-url=https://example.com:8443/tools/iam/?x=1";
        assert_eq!(prefix(&[url]).unwrap(), "/tools/iam");
        assert_eq!(
            prefix(&[url, "--web.route-prefix=/other"]).unwrap(),
            "/other"
        );
        assert_eq!(
            prefix(&["--web.external-url=http://example.com"]).unwrap(),
            ""
        );
        for bad in [
            "--web.external-url=example.com/iam",
            "--web.external-url=https:///iam",
            "--web.external-url=https://example.com/a/../b",
            "--web.route-prefix=/a//b",
            "--web.route-prefix=/a?b",
            "--web.route-prefix=/../b",
        ] {
            let e = prefix(&[bad]).unwrap_err().to_string();
            assert!(e.contains(bad.split('=').next().unwrap()), "{bad}: {e}");
        }
    }
}
