//! The metrics contract: every family's name, type and help in one table, and the pure
//! functions that render a judged report, live account facts and the exporter's own state
//! into exposition text.
//!
//! Rendering happens when data changes, never on a scrape: each account's families are
//! rendered into per-family bodies once per new report, and [`compose`] stitches the bodies of
//! all accounts under one `# HELP`/`# TYPE` header per family. A snapshot is rendered afresh
//! from its report, so a user deleted from IAM loses its series at the next report.
//!
//! The text is written by hand, straight into the bodies, by the `text` submodule: see there
//! why, and what it escapes.

use crate::account::{FailureReason, LiveFacts, UserDirectory};
use crate::diff::Change;
use crate::exceptions::Exception;
use crate::judge::{
    judge_account, key_last_activity, root_credentials_present, AccountCheck, Assessment, Check,
    RootFacts,
};
use crate::report::CredentialReport;
use chrono::{DateTime, Utc};
use regex::Regex;
use strum::EnumCount;

pub mod packed;
mod text;

pub use packed::{compose_gzip, Gzipped, Packed, Part};
use text::{Label, Labels, Prefix};

const REPORT_AGE_NOTE: &str = "From the IAM credential report, which AWS regenerates at most every 4 hours: the value can be up to 4 hours old, and is cached by the exporter between refreshes.";

/// A metric family's type, as the `# TYPE` line names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// `gauge`
    Gauge,
    /// `counter`
    Counter,
    /// `histogram`
    Histogram,
}

impl MetricKind {
    /// The name in a `# TYPE` line.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricKind::Gauge => "gauge",
            MetricKind::Counter => "counter",
            MetricKind::Histogram => "histogram",
        }
    }
}

macro_rules! families {
    ($( $variant:ident => ($name:literal, $kind:ident, $help:expr) ),+ $(,)?) => {
        /// Every metric family the exporter can export, in exposition order.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Family { $( #[doc = $name] $variant ),+ }

        impl Family {
            /// All families in exposition order.
            pub const ALL: &'static [Family] = &[ $( Family::$variant ),+ ];

            /// The metric name.
            pub fn name(self) -> &'static str {
                match self { $( Family::$variant => $name ),+ }
            }

            /// The metric type.
            pub fn kind(self) -> MetricKind {
                match self { $( Family::$variant => MetricKind::$kind ),+ }
            }

            /// The HELP text.
            pub fn help(self) -> String {
                match self { $( Family::$variant => $help.to_string() ),+ }
            }
        }
    };
}

families! {
    ReportGenerated => ("aws_iam_credential_report_generated_timestamp_seconds", Gauge,
        "When AWS generated the credential report, as a Unix timestamp (file mode: the file's modification time). AWS regenerates the report at most every 4 hours, so report-derived series can be up to 4 hours old."),
    ReportRowsSkipped => ("aws_iam_credential_report_rows_skipped", Gauge,
        "Rows of the last credential report that were skipped because their field count or a value was invalid."),
    ReportRootPresent => ("aws_iam_credential_report_root_present", Gauge,
        "1 if the credential report has the root user's row (<root_account>), 0 if not (a filtered export, a stand-in). Without it the root checks have no sample: their verdict is unknown, not passing."),
    Users => ("aws_iam_users", Gauge,
        format!("IAM users in the account, root excluded. {REPORT_AGE_NOTE}")),
    ConsoleUsers => ("aws_iam_console_users", Gauge,
        format!("IAM users with a console password enabled, root excluded. {REPORT_AGE_NOTE}")),
    AccessKeys => ("aws_iam_access_keys", Gauge,
        format!("Existing access keys of IAM users (root excluded) by state. {REPORT_AGE_NOTE}")),
    CheckFailures => ("aws_iam_check_failures", Gauge,
        format!("Users (or, for key checks, access keys) failing each check; 0 when clean. {REPORT_AGE_NOTE}")),
    UserCheckFailed => ("aws_iam_user_check_failed", Gauge,
        format!("1 for each user and check the user fails. {REPORT_AGE_NOTE}")),
    CheckMuted => ("aws_iam_check_muted", Gauge,
        "Users (or, for key checks, access keys) failing each check whose finding an active exception mutes; they are left out of aws_iam_check_failures. 0 when none."),
    UserCheckMuted => ("aws_iam_user_check_muted", Gauge,
        "1 for each user and check whose finding an active exception mutes, naming the exception."),
    AccessKeyAge => ("aws_iam_access_key_age_seconds", Histogram,
        format!("Age of active IAM user access keys since their last rotation, in seconds. {REPORT_AGE_NOTE}")),
    AccessKeyIdle => ("aws_iam_access_key_idle_seconds", Histogram,
        format!("Time since active IAM user access keys were last used (never-used keys: since their last rotation), in seconds. {REPORT_AGE_NOTE}")),
    UserMfaActive => ("aws_iam_user_mfa_active", Gauge,
        format!("1 if the user has an MFA device active. {REPORT_AGE_NOTE}")),
    UserPasswordEnabled => ("aws_iam_user_password_enabled", Gauge,
        format!("1 if the user has a console password. {REPORT_AGE_NOTE}")),
    UserPasswordLastUsed => ("aws_iam_user_password_last_used_timestamp_seconds", Gauge,
        format!("When the user's password was last used, as a Unix timestamp; absent when never used or unknown. {REPORT_AGE_NOTE}")),
    AccessKeyActive => ("aws_iam_access_key_active", Gauge,
        format!("1 if the access key in the slot is active, 0 if it exists but is inactive. {REPORT_AGE_NOTE}")),
    AccessKeyLastRotated => ("aws_iam_access_key_last_rotated_timestamp_seconds", Gauge,
        format!("When the access key was created or last rotated, as a Unix timestamp. {REPORT_AGE_NOTE}")),
    AccessKeyLastUsed => ("aws_iam_access_key_last_used_timestamp_seconds", Gauge,
        format!("When the access key was last used, as a Unix timestamp; absent when never used. {REPORT_AGE_NOTE}")),
    RootCredentialsPresent => ("aws_iam_root_credentials_present", Gauge,
        format!("1 if the root user has a password, an active access key or an active certificate (live AccountAccessKeysPresent can add keys), 0 if its credentials were removed (centralized root access); absent when the report has no root row. {REPORT_AGE_NOTE}")),
    RootMfaEnabled => ("aws_iam_root_mfa_enabled", Gauge,
        "1 if the root user has MFA (GetAccountSummary AccountMFAEnabled, live on every refresh, not subject to the report's 4-hour cache)."),
    RootAccessKeysPresent => ("aws_iam_root_access_keys_present", Gauge,
        "1 if the root user has access keys (GetAccountSummary AccountAccessKeysPresent, live on every refresh)."),
    MfaDevicesInUse => ("aws_iam_mfa_devices_in_use", Gauge,
        "MFA devices assigned to users (GetAccountSummary MFADevicesInUse, live on every refresh)."),
    AccountInfo => ("aws_iam_account_info", Gauge,
        "Account metadata: the IAM account alias (empty when none) and the configured display name. Always 1."),
    UserInfo => ("aws_iam_user_info", Gauge,
        "IAM user metadata, one series per user: its path and, for each tag key of aws.user_tags (--aws.user-tags), the tag's value in the label tag_KEY (the key lower-cased, other characters than letters, digits and _ as _), empty when the user lacks the tag. Always 1. From GetAccountAuthorizationDetails, read at most hourly and kept between refreshes (up to an hour old). Join on (account_id, user) to label per-user series with owners."),
    PasswordPolicyPresent => ("aws_iam_password_policy_present", Gauge,
        "1 if the account has an IAM password policy (GetAccountPasswordPolicy, live on every refresh)."),
    PasswordPolicyMinimumLength => ("aws_iam_password_policy_minimum_length", Gauge,
        "The password policy's minimum password length (CIS recommends 14 or more)."),
    PasswordPolicyReusePrevention => ("aws_iam_password_policy_reuse_prevention", Gauge,
        "How many previous passwords the policy forbids reusing (CIS recommends 24); 0 when unset."),
    PasswordPolicyMaxAge => ("aws_iam_password_policy_max_age_seconds", Gauge,
        "The password policy's maximum password age in seconds; 0 when passwords never expire."),
    PasswordPolicyRequirement => ("aws_iam_password_policy_requirement", Gauge,
        "1 if the password policy requires the character class."),
    CredentialChangesTotal => ("aws_iam_credential_changes_total", Counter,
        "Changes between an account's consecutive credential reports, by change (user_created, mfa_disabled, access_key_created, root_used...); every change is present from the first report, at 0. Each change is also logged as msg=\"Credential change\" naming the user."),
    ExceptionInfo => ("aws_iam_exception_info", Gauge,
        "Each configured exception, with its owner and reason. Always 1."),
    ExceptionExpiry => ("aws_iam_exception_expiry_timestamp_seconds", Gauge,
        "When the exception stops muting (midnight UTC after its expires day), as a Unix timestamp."),
    ExceptionMatches => ("aws_iam_exception_matches", Gauge,
        "Findings the exception mutes now, summed over the accounts this exporter reads; 0 once expired."),
    RefreshSuccess => ("iam_credentials_exporter_refresh_success", Gauge,
        "1 if the account's last refresh succeeded, 0 if it failed (the last good data keeps being served)."),
    LastRefreshSuccess => ("iam_credentials_exporter_last_refresh_success_timestamp_seconds", Gauge,
        "When the account's last successful refresh finished, as a Unix timestamp."),
    RefreshDuration => ("iam_credentials_exporter_refresh_duration_seconds", Gauge,
        "How long the account's last refresh took, in seconds."),
    RefreshesTotal => ("iam_credentials_exporter_refreshes_total", Counter,
        "Refresh attempts per account."),
    RefreshFailuresTotal => ("iam_credentials_exporter_refresh_failures_total", Counter,
        "Failed refreshes per account, by reason."),
    LiveCallFailuresTotal => ("iam_credentials_exporter_live_call_failures_total", Counter,
        "Failed live account calls (GetAccountSummary, ListAccountAliases, GetAccountPasswordPolicy, ListVirtualMFADevices and, with user tags, GetAccountAuthorizationDetails) per account, by API and reason; they do not fail the refresh."),
    AwsRetriesTotal => ("iam_credentials_exporter_aws_retries_total", Counter,
        "AWS API calls made again per account, by API and cause: backoffs after throttling, server errors, timeouts and network errors, polls while a report is generated, and new generations after a missing or expired report. The AWS SDK's own retries are off, so these are all of them."),
    BuildInfo => ("iam_credentials_exporter_build_info", Gauge,
        "The exporter's version and source revision. Always 1."),
    Accounts => ("iam_credentials_exporter_accounts", Gauge,
        "Accounts this exporter reads (with sharding: this shard's), from the config file and the organization listing."),
    OrganizationDiscoverySuccess => ("iam_credentials_exporter_organization_discovery_success", Gauge,
        "1 if the last AWS Organizations listing succeeded, 0 if it failed (the accounts of the last good listing keep being read)."),
    OrganizationAccounts => ("iam_credentials_exporter_organization_accounts", Gauge,
        "ACTIVE accounts in the organization's last good listing, before include and exclude filters and sharding."),
    ProcessCpuSeconds => ("process_cpu_seconds_total", Counter,
        "Total user and system CPU time spent in seconds."),
    ProcessOpenFds => ("process_open_fds", Gauge,
        "Number of open file descriptors."),
    ProcessMaxFds => ("process_max_fds", Gauge,
        "Maximum number of open file descriptors."),
    ProcessVirtualMemory => ("process_virtual_memory_bytes", Gauge,
        "Virtual memory size in bytes."),
    ProcessResidentMemory => ("process_resident_memory_bytes", Gauge,
        "Resident memory size in bytes."),
    ProcessStartTime => ("process_start_time_seconds", Gauge,
        "Start time of the process since unix epoch in seconds."),
    ConfigLastReloadSuccessful => ("iam_credentials_exporter_config_last_reload_successful", Gauge,
        "1 if the last reload of the configuration files (--config.file and --web.config.file; on a file change, SIGHUP or POST /-/reload) succeeded, 0 if one was refused (the previous configuration stays in force)."),
    ConfigLastReloadSuccess => ("iam_credentials_exporter_config_last_reload_success_timestamp_seconds", Gauge,
        "When the configuration files were last loaded successfully, as a Unix timestamp."),
}

/// Histogram buckets for key age and idle time: 1, 7, 30, 45, 60, 90, 180, 365, 730, 1,095
/// and 1,825 days (up to five years, so that keys older than two years are told apart; older
/// ones fall in `+Inf` only).
pub const KEY_AGE_BUCKETS_DAYS: [u64; 11] = [1, 7, 30, 45, 60, 90, 180, 365, 730, 1095, 1825];

/// Which per-user series to export.
#[derive(Debug, Clone, Default)]
pub struct RenderOptions {
    /// Export per-user series at all (they name users: alerts can say who, at a cost in
    /// cardinality).
    pub per_user: bool,
    /// Only for users who fail, or are muted for, at least one check
    /// (`--metrics.per-user=failing`): counts and histograms still cover everyone.
    pub only_failing: bool,
    /// Only users whose name matches.
    pub user_include: Option<Regex>,
    /// Never users whose name matches.
    pub user_exclude: Option<Regex>,
}

impl RenderOptions {
    /// Per-user series for every user.
    pub fn all_users() -> RenderOptions {
        RenderOptions {
            per_user: true,
            ..RenderOptions::default()
        }
    }

    /// Whether the user's per-user series are exported.
    pub fn wants(&self, user: &str) -> bool {
        self.per_user
            && self.user_include.as_ref().is_none_or(|r| r.is_match(user))
            && !self.user_exclude.as_ref().is_some_and(|r| r.is_match(user))
    }
}

/// Rendered sample lines, one body per family (without `# HELP`/`# TYPE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bodies(Vec<String>);

impl Default for Bodies {
    fn default() -> Self {
        Bodies(vec![String::new(); Family::ALL.len()])
    }
}

impl Bodies {
    /// The body of one family.
    pub fn get(&self, f: Family) -> &str {
        &self.0[f as usize]
    }

    /// Total bytes held.
    pub fn len(&self) -> usize {
        self.0.iter().map(String::len).sum()
    }

    /// Whether nothing was rendered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn body(&mut self, f: Family) -> &mut String {
        &mut self.0[f as usize]
    }
}

/// Where samples are written: text kept whole ([`Bodies`]) or compressed as it grows
/// ([`Packed`]).
trait Sink {
    /// The family's text buffer, to append lines to.
    fn body(&mut self, f: Family) -> &mut String;

    /// After lines were appended to the family's buffer.
    fn wrote(&mut self, _f: Family) {}

    /// Room for `bytes` more of the family's text.
    fn reserve(&mut self, f: Family, bytes: usize) {
        self.body(f).reserve(bytes);
    }

    /// Appends one gauge or counter sample to the family's body.
    fn sample(&mut self, f: Family, labels: &[(&str, &str)], value: f64) {
        debug_assert_ne!(f.kind(), MetricKind::Histogram, "{}", f.name());
        text::sample(self.body(f), f.name(), labels, value);
        self.wrote(f);
    }

    /// Appends one histogram series of the values, over [`KEY_AGE_BUCKETS_DAYS`].
    fn histogram(&mut self, f: Family, labels: &[(&str, &str)], values: &[f64]) {
        debug_assert_eq!(f.kind(), MetricKind::Histogram, "{}", f.name());
        let bounds = KEY_AGE_BUCKETS_DAYS.map(|d| (d * 86_400) as f64);
        let counts = bounds.map(|upper| values.iter().filter(|&&v| v <= upper).count() as u64);
        text::histogram(
            self.body(f),
            f.name(),
            labels,
            &bounds,
            &counts,
            values.len() as u64,
            values.iter().sum(),
        );
        self.wrote(f);
    }
}

impl Sink for Bodies {
    fn body(&mut self, f: Family) -> &mut String {
        Bodies::body(self, f)
    }
}

impl Sink for Packed {
    fn body(&mut self, f: Family) -> &mut String {
        Packed::body(self, f)
    }

    fn wrote(&mut self, f: Family) {
        Packed::wrote(self, f)
    }

    /// At most a chunk: the text is compressed a chunk at a time.
    fn reserve(&mut self, f: Family, bytes: usize) {
        let body = Packed::body(self, f);
        body.reserve(bytes.min(packed::CHUNK + 1024).saturating_sub(body.len()));
    }
}

fn bool_value(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

fn seconds(t: DateTime<Utc>) -> f64 {
    t.timestamp() as f64
}

/// Renders a judged report for one account, as text.
pub fn render_report(
    account_id: &str,
    report: &CredentialReport,
    assessment: &Assessment,
    generated_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    opts: &RenderOptions,
) -> Bodies {
    let mut out = Bodies::default();
    render_report_into(
        &mut out,
        account_id,
        report,
        assessment,
        generated_at,
        now,
        opts,
    );
    out
}

/// Renders a judged report for one account, compressed as it is written (see [`packed`]): what
/// the exporter keeps, so that the whole text is never held.
pub fn render_report_packed(
    account_id: &str,
    report: &CredentialReport,
    assessment: &Assessment,
    generated_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    opts: &RenderOptions,
) -> Packed {
    let mut out = Packed::new();
    render_report_into(
        &mut out,
        account_id,
        report,
        assessment,
        generated_at,
        now,
        opts,
    );
    out.finish()
}

fn render_report_into(
    out: &mut impl Sink,
    account_id: &str,
    report: &CredentialReport,
    assessment: &Assessment,
    generated_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    opts: &RenderOptions,
) {
    let acct = ("account_id", account_id);

    if let Some(t) = generated_at {
        out.sample(Family::ReportGenerated, &[acct], seconds(t));
    }
    out.sample(
        Family::ReportRowsSkipped,
        &[acct],
        report.skipped.len() as f64,
    );
    out.sample(
        Family::ReportRootPresent,
        &[acct],
        bool_value(assessment.root.is_some()),
    );

    let users = report.users().count();
    let console = report.users().filter(|u| u.has_password()).count();
    let (mut active, mut inactive) = (0u64, 0u64);
    let mut ages = Vec::new();
    let mut idle = Vec::new();
    for key in report.users().flat_map(|u| u.keys.iter()) {
        if !key.exists() {
            continue;
        }
        if !key.active {
            inactive += 1;
            continue;
        }
        active += 1;
        if let Some(rotated) = key.last_rotated.at() {
            ages.push(now.signed_duration_since(rotated).num_seconds().max(0) as f64);
        }
        if let Some(last) = key_last_activity(key) {
            idle.push(now.signed_duration_since(last).num_seconds().max(0) as f64);
        }
    }
    out.sample(Family::Users, &[acct], users as f64);
    out.sample(Family::ConsoleUsers, &[acct], console as f64);
    out.sample(
        Family::AccessKeys,
        &[acct, ("state", "active")],
        active as f64,
    );
    out.sample(
        Family::AccessKeys,
        &[acct, ("state", "inactive")],
        inactive as f64,
    );
    for &c in Check::ALL {
        if assessment.judged(c) {
            out.sample(
                Family::CheckFailures,
                &[acct, ("check", c.name())],
                assessment.count(c) as f64,
            );
            out.sample(
                Family::CheckMuted,
                &[acct, ("check", c.name())],
                assessment.muted_count(c) as f64,
            );
        }
    }
    out.histogram(Family::AccessKeyAge, &[acct], &ages);
    out.histogram(Family::AccessKeyIdle, &[acct], &idle);

    if !opts.per_user {
        return;
    }

    // A family's lines all start with its name and the account label, rendered once, and
    // each user's label is rendered once. The samples are walked twice: to size each body,
    // then to write it without regrowing.
    let per_user = PerUser::new(report, assessment, opts);
    let prefixes: Vec<Prefix> = Family::ALL
        .iter()
        .map(|f| Prefix::new(f.name(), acct))
        .collect();
    let mut room = vec![0; Family::ALL.len()];
    per_user.samples(|f, labels, v| {
        room[f as usize] += prefixes[f as usize].line_len(labels) + text::value_len(v);
    });
    for &f in Family::ALL {
        out.reserve(f, room[f as usize]);
    }
    per_user.samples(|f, labels, v| {
        prefixes[f as usize].sample(out.body(f), labels, v);
        out.wrote(f);
    });
}

/// A report's per-user series, their labels rendered.
struct PerUser<'a> {
    report: &'a CredentialReport,
    /// The failing (row, check) pairs of the wanted users, each once, in finding order.
    failing: Vec<(usize, Check)>,
    /// Per row, its `user` label, or nothing when the user is not wanted.
    users: Labels,
    /// Per check (by discriminant), its `check` label.
    checks: Labels,
    /// Per key slot, its `key` label.
    slots: Labels,
    /// The muted (row, check, exception) triples of the wanted users, each once.
    muted: Vec<(usize, Check, usize)>,
    /// Per exception, its `exception` label.
    exceptions: Labels,
}

impl<'a> PerUser<'a> {
    fn new(report: &'a CredentialReport, assessment: &Assessment, opts: &RenderOptions) -> Self {
        let mut wanted: Vec<bool> = report.rows.iter().map(|r| opts.wants(&r.user)).collect();
        if opts.only_failing {
            let mut flagged = vec![false; report.rows.len()];
            for row in (assessment.findings.iter().map(|f| f.row))
                .chain(assessment.muted.iter().map(|m| m.finding.row))
            {
                flagged[row] = true;
            }
            for (w, f) in wanted.iter_mut().zip(flagged) {
                *w &= f;
            }
        }
        let bytes = (report.rows.iter().zip(&wanted))
            .filter(|(_, w)| **w)
            .map(|(r, _)| r.user.len() + ",user=\"\"".len())
            .sum();
        let mut users = Labels::with_capacity(report.rows.len(), bytes);
        for (row, &w) in report.rows.iter().zip(&wanted) {
            if w {
                users.push("user", &row.user);
            } else {
                users.push_none();
            }
        }
        let mut checks = Labels::default();
        for (i, c) in Check::ALL.iter().enumerate() {
            debug_assert_eq!(*c as usize, i, "Check::ALL in declaration order");
            checks.push("check", c.name());
        }
        let mut slots = Labels::default();
        slots.push("key", "1");
        slots.push("key", "2");

        // Key checks can fail once per key, and a row's findings interleave its keys' checks,
        // so a pair can come back after another check: a bit per check and row says which
        // were seen.
        const _: () = assert!(Check::ALL.len() <= 32);
        let mut seen = vec![0u32; report.rows.len()];
        let failing = assessment
            .findings
            .iter()
            .filter(|f| {
                let bit = 1 << (f.check as u32);
                let first = seen[f.row] & bit == 0;
                seen[f.row] |= bit;
                first && wanted[f.row]
            })
            .map(|f| (f.row, f.check))
            .collect();
        // A key check muted on both keys is one series.
        let mut seen = std::collections::HashSet::new();
        let muted: Vec<(usize, Check, usize)> = assessment
            .muted
            .iter()
            .filter(|m| wanted[m.finding.row])
            .map(|m| (m.finding.row, m.finding.check, m.exception))
            .filter(|t| seen.insert(*t))
            .collect();
        let mut exceptions = Labels::default();
        for id in &assessment.exception_ids {
            exceptions.push("exception", id);
        }
        PerUser {
            report,
            failing,
            users,
            checks,
            slots,
            muted,
            exceptions,
        }
    }

    /// Calls `emit` with each sample: its family, its labels after the account's, its value.
    fn samples(&self, mut emit: impl FnMut(Family, &[Label], f64)) {
        // One series per failing (user, check).
        for &(row, check) in &self.failing {
            let labels = [self.checks.get(check as usize), self.users.get(row)];
            emit(Family::UserCheckFailed, &labels, 1.0);
        }
        for &(row, check, exception) in &self.muted {
            let labels = [
                self.checks.get(check as usize),
                self.exceptions.get(exception),
                self.users.get(row),
            ];
            emit(Family::UserCheckMuted, &labels, 1.0);
        }
        for (i, row) in self.report.rows.iter().enumerate() {
            let user = self.users.get(i);
            if user.is_empty() {
                continue;
            }
            emit(Family::UserMfaActive, &[user], bool_value(row.mfa_active));
            if let Some(enabled) = row.password_enabled {
                emit(Family::UserPasswordEnabled, &[user], bool_value(enabled));
            }
            if let Some(t) = row.password_last_used.at() {
                emit(Family::UserPasswordLastUsed, &[user], seconds(t));
            }
            for (slot, key) in row.keys.iter().enumerate() {
                if !key.exists() {
                    continue;
                }
                let labels = [self.slots.get(slot), user];
                emit(Family::AccessKeyActive, &labels, bool_value(key.active));
                if let Some(t) = key.last_rotated.at() {
                    emit(Family::AccessKeyLastRotated, &labels, seconds(t));
                }
                if let Some(t) = key.last_used.at() {
                    emit(Family::AccessKeyLastUsed, &labels, seconds(t));
                }
            }
        }
    }
}

/// Renders the live account facts, the account's info series, whether root has credentials
/// (`root`: what the last good report says of root, `None` without a root row) and the
/// account checks whose live calls were answered.
pub fn render_live(
    account_id: &str,
    name: Option<&str>,
    live: Option<&LiveFacts>,
    root: Option<&RootFacts>,
    muted: &[(AccountCheck, usize)],
) -> Bodies {
    let acct = ("account_id", account_id);
    let mut out = Bodies::default();
    let alias = live.and_then(|l| l.alias.as_deref());
    if live.is_some() || name.is_some() {
        out.sample(
            Family::AccountInfo,
            &[
                acct,
                ("alias", alias.unwrap_or("")),
                ("name", name.unwrap_or("")),
            ],
            1.0,
        );
    }
    let summary = live.and_then(|l| l.summary.as_ref());
    if let Some(present) = root_credentials_present(root, summary) {
        out.sample(Family::RootCredentialsPresent, &[acct], bool_value(present));
    }
    let Some(live) = live else {
        return out;
    };
    if let Some(s) = live.summary {
        out.sample(
            Family::RootMfaEnabled,
            &[acct],
            bool_value(s.root_mfa_enabled),
        );
        out.sample(
            Family::RootAccessKeysPresent,
            &[acct],
            bool_value(s.root_access_keys_present),
        );
        out.sample(
            Family::MfaDevicesInUse,
            &[acct],
            s.mfa_devices_in_use as f64,
        );
    }
    for (c, fails) in judge_account(live, root) {
        let is_muted = muted.iter().any(|(m, _)| *m == c);
        out.sample(
            Family::CheckFailures,
            &[acct, ("check", c.name())],
            bool_value(fails && !is_muted),
        );
        out.sample(
            Family::CheckMuted,
            &[acct, ("check", c.name())],
            bool_value(fails && is_muted),
        );
    }
    if let Some(users) = &live.users {
        render_user_info(&mut out, acct, users);
    }
    if let Some(policy) = live.password_policy {
        out.sample(
            Family::PasswordPolicyPresent,
            &[acct],
            bool_value(policy.is_some()),
        );
        if let Some(p) = policy {
            out.sample(
                Family::PasswordPolicyMinimumLength,
                &[acct],
                f64::from(p.minimum_length),
            );
            out.sample(
                Family::PasswordPolicyReusePrevention,
                &[acct],
                f64::from(p.reuse_prevention),
            );
            out.sample(
                Family::PasswordPolicyMaxAge,
                &[acct],
                f64::from(p.max_age_days) * 86_400.0,
            );
            for (class, on) in [
                ("lowercase", p.require_lowercase),
                ("numbers", p.require_numbers),
                ("symbols", p.require_symbols),
                ("uppercase", p.require_uppercase),
            ] {
                out.sample(
                    Family::PasswordPolicyRequirement,
                    &[acct, ("requirement", class)],
                    bool_value(on),
                );
            }
        }
    }
    out
}

/// The label of a user tag key in `aws_iam_user_info`: `tag_` and the key lower-cased, every
/// character but ASCII letters, digits and `_` written `_` (`cost-center` is
/// `tag_cost_center`, `Owner` is `tag_owner`). IAM user tag keys are case-insensitive (a user
/// cannot carry both `Owner` and `owner`), so lower-casing loses nothing; two keys that differ
/// otherwise can still meet in one label, which the configuration refuses.
pub fn user_tag_label(key: &str) -> String {
    let mut label = String::with_capacity(4 + key.len());
    label.push_str("tag_");
    label.extend(key.chars().map(|c| match c {
        'a'..='z' | '0'..='9' | '_' => c,
        'A'..='Z' => c.to_ascii_lowercase(),
        _ => '_',
    }));
    label
}

/// Appends `aws_iam_user_info{account_id,path,tag_...,user} 1` for each user of the directory
/// (labels in name order, as the other families write them). Which users the directory holds
/// (the per-user switch and filters) was decided when it was read.
fn render_user_info(out: &mut Bodies, acct: (&str, &str), dir: &UserDirectory) {
    let labels: Vec<String> = dir.tag_keys.iter().map(|k| user_tag_label(k)).collect();
    let mut order: Vec<usize> = (0..labels.len()).collect();
    order.sort_by(|&a, &b| labels[a].cmp(&labels[b]));
    let mut pairs: Vec<(&str, &str)> = Vec::with_capacity(labels.len() + 3);
    for u in &dir.users {
        pairs.clear();
        pairs.push(acct);
        pairs.push(("path", &u.path));
        for &i in &order {
            pairs.push((&labels[i], u.tags.get(i).map_or("", String::as_str)));
        }
        pairs.push(("user", &u.name));
        out.sample(Family::UserInfo, &pairs, 1.0);
    }
}

/// The exporter's own view of one account's refreshes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RefreshStats {
    /// Whether the last refresh succeeded (`None` before the first attempt ends).
    pub last_ok: Option<bool>,
    /// When the last successful refresh finished.
    pub last_success: Option<DateTime<Utc>>,
    /// How long the last refresh took, in seconds.
    pub last_duration: Option<f64>,
    /// Refresh attempts.
    pub refreshes: u64,
    /// Failed refreshes by reason, indexed like [`FailureReason::ALL`].
    pub failures: [u64; FailureReason::ALL.len()],
    /// Failed live calls by (API, reason).
    pub live_failures: Vec<((&'static str, FailureReason), u64)>,
    /// AWS calls made again by (API, cause), as the source counts them.
    pub retries: Vec<((&'static str, &'static str), u64)>,
    /// Change events since start, indexed like [`Change::ALL`]; `None` before the first
    /// report (the baseline) was judged.
    pub changes: Option<[u64; Change::COUNT]>,
}

/// Renders one account's refresh statistics.
pub fn render_refresh_stats(account_id: &str, s: &RefreshStats) -> Bodies {
    let acct = ("account_id", account_id);
    let mut out = Bodies::default();
    if let Some(ok) = s.last_ok {
        out.sample(Family::RefreshSuccess, &[acct], bool_value(ok));
    }
    if let Some(t) = s.last_success {
        out.sample(
            Family::LastRefreshSuccess,
            &[acct],
            t.timestamp_millis() as f64 / 1000.0,
        );
    }
    if let Some(d) = s.last_duration {
        out.sample(Family::RefreshDuration, &[acct], d);
    }
    out.sample(Family::RefreshesTotal, &[acct], s.refreshes as f64);
    for r in FailureReason::ALL {
        out.sample(
            Family::RefreshFailuresTotal,
            &[acct, ("reason", r.as_str())],
            s.failures[r.index()] as f64,
        );
    }
    for ((api, reason), n) in &s.live_failures {
        out.sample(
            Family::LiveCallFailuresTotal,
            &[acct, ("api", api), ("reason", reason.as_str())],
            *n as f64,
        );
    }
    for ((api, cause), n) in &s.retries {
        out.sample(
            Family::AwsRetriesTotal,
            &[acct, ("api", api), ("cause", cause)],
            *n as f64,
        );
    }
    if let Some(changes) = &s.changes {
        for &c in Change::ALL {
            out.sample(
                Family::CredentialChangesTotal,
                &[acct, ("change", c.name())],
                changes[c.index()] as f64,
            );
        }
    }
    out
}

/// The exporter-wide state behind its own series that are not per account.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExporterStats {
    /// Accounts read.
    pub accounts: usize,
    /// With organization discovery: whether the last listing succeeded (`None` before the
    /// first ends), and the ACTIVE accounts of the last good one.
    pub discovery: Option<(Option<bool>, Option<usize>)>,
    /// With organization discovery: ListAccounts calls made again, by cause (every cause,
    /// 0 before it first happens). Exporter-wide: the listing uses the exporter's own
    /// credentials, so these series carry no `account_id`.
    pub discovery_retries: Vec<(&'static str, u64)>,
}

/// Renders the exporter-wide series.
pub fn render_exporter_stats(s: &ExporterStats) -> Bodies {
    let mut out = Bodies::default();
    out.sample(Family::Accounts, &[], s.accounts as f64);
    if let Some((ok, listed)) = s.discovery {
        if let Some(ok) = ok {
            out.sample(Family::OrganizationDiscoverySuccess, &[], bool_value(ok));
        }
        if let Some(n) = listed {
            out.sample(Family::OrganizationAccounts, &[], n as f64);
        }
        for (cause, n) in &s.discovery_retries {
            out.sample(
                Family::AwsRetriesTotal,
                &[("api", "ListAccounts"), ("cause", cause)],
                *n as f64,
            );
        }
    }
    out
}

/// Renders the exporter-wide exception series: info, expiry, and `matches[i]` findings muted
/// by `exceptions[i]` across accounts.
pub fn render_exceptions(exceptions: &[Exception], matches: &[u64]) -> Bodies {
    let mut out = Bodies::default();
    for (i, e) in exceptions.iter().enumerate() {
        let id = ("exception", e.id.as_str());
        out.sample(
            Family::ExceptionInfo,
            &[id, ("owner", &e.owner), ("reason", &e.reason)],
            1.0,
        );
        out.sample(
            Family::ExceptionExpiry,
            &[id, ("owner", &e.owner)],
            e.ends_at().timestamp() as f64,
        );
        out.sample(
            Family::ExceptionMatches,
            &[id],
            matches.get(i).copied().unwrap_or(0) as f64,
        );
    }
    out
}

/// Renders whether the last reload of the configuration files (config file and web config;
/// on a file change, SIGHUP or POST /-/reload) succeeded, and when one last did.
pub fn render_reload_status(ok: bool, last_success: Option<DateTime<Utc>>) -> Bodies {
    let mut out = Bodies::default();
    out.sample(Family::ConfigLastReloadSuccessful, &[], bool_value(ok));
    if let Some(t) = last_success {
        out.sample(
            Family::ConfigLastReloadSuccess,
            &[],
            t.timestamp_millis() as f64 / 1000.0,
        );
    }
    out
}

/// The process's own figures, as every Prometheus client library exports them on Linux.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcessStats {
    /// User and system CPU time, in seconds.
    pub cpu_seconds: f64,
    /// Open file descriptors.
    pub open_fds: Option<u64>,
    /// The soft limit on open file descriptors.
    pub max_fds: Option<u64>,
    /// Virtual memory size, in bytes.
    pub virtual_memory_bytes: Option<u64>,
    /// Resident memory size, in bytes.
    pub resident_memory_bytes: Option<u64>,
    /// When the process started, as a Unix timestamp.
    pub start_time_seconds: Option<f64>,
}

/// Renders the process series (no `account_id`: they are the exporter's).
pub fn render_process(p: &ProcessStats) -> Bodies {
    let mut out = Bodies::default();
    out.sample(Family::ProcessCpuSeconds, &[], p.cpu_seconds);
    for (f, v) in [
        (Family::ProcessOpenFds, p.open_fds),
        (Family::ProcessMaxFds, p.max_fds),
        (Family::ProcessVirtualMemory, p.virtual_memory_bytes),
        (Family::ProcessResidentMemory, p.resident_memory_bytes),
    ] {
        if let Some(v) = v {
            out.sample(f, &[], v as f64);
        }
    }
    if let Some(t) = p.start_time_seconds {
        out.sample(Family::ProcessStartTime, &[], t);
    }
    out
}

/// Renders `iam_credentials_exporter_build_info`.
pub fn render_build_info(version: &str, revision: &str) -> Bodies {
    let mut out = Bodies::default();
    out.sample(
        Family::BuildInfo,
        &[("revision", revision), ("version", version)],
        1.0,
    );
    out
}

/// Stitches bodies together: one header per family, then every part's samples for it, in
/// family order. Families without samples are left out.
pub fn compose<'a>(parts: impl IntoIterator<Item = &'a Bodies> + Clone) -> String {
    let size: usize = parts.clone().into_iter().map(Bodies::len).sum();
    let mut out = String::with_capacity(size + 8 * 1024);
    for &f in Family::ALL {
        let mut header = false;
        for part in parts.clone() {
            let body = part.get(f);
            if body.is_empty() {
                continue;
            }
            if !header {
                write_header(&mut out, f);
                header = true;
            }
            out.push_str(body);
        }
    }
    out
}

/// Appends the family's `# HELP` and `# TYPE` lines.
fn write_header(out: &mut String, f: Family) {
    for part in [
        "# HELP ",
        f.name(),
        " ",
        &f.help(),
        "\n# TYPE ",
        f.name(),
        " ",
        f.kind().as_str(),
        "\n",
    ] {
        out.push_str(part);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn organization_listing_retries_show_only_with_discovery() {
        let mut stats = ExporterStats {
            discovery_retries: vec![("throttled", 2), ("timeout", 0)],
            ..ExporterStats::default()
        };
        let text = compose([&render_exporter_stats(&stats)]);
        assert!(!text.contains("aws_retries_total"), "{text}");
        stats.discovery = Some((Some(true), Some(3)));
        let text = compose([&render_exporter_stats(&stats)]);
        assert!(text.contains(
            "iam_credentials_exporter_aws_retries_total{api=\"ListAccounts\",cause=\"throttled\"} 2\n"
        ));
        assert!(text.contains(
            "iam_credentials_exporter_aws_retries_total{api=\"ListAccounts\",cause=\"timeout\"} 0\n"
        ));
    }

    #[test]
    fn family_names_are_unique_and_follow_conventions() {
        let mut seen = std::collections::HashSet::new();
        for f in Family::ALL {
            assert!(seen.insert(f.name()), "duplicate {}", f.name());
            assert!(
                f.name().starts_with("aws_iam_")
                    || f.name().starts_with("iam_credentials_exporter_")
                    || f.name().starts_with("process_"),
                "{}",
                f.name()
            );
            assert_eq!(
                f.kind() == MetricKind::Counter,
                f.name().ends_with("_total")
            );
            assert!(!f.help().contains('\n') && !f.help().contains('\\'));
        }
    }

    /// The prometheus crate's text encoder, as rendering used it before the direct writer.
    fn old_encoder(f: Family, metrics: Vec<prometheus::proto::Metric>) -> String {
        use prometheus::proto;
        use prometheus::Encoder;
        let mut mf = proto::MetricFamily::default();
        mf.set_name(f.name().to_owned());
        mf.set_field_type(match f.kind() {
            MetricKind::Gauge => proto::MetricType::GAUGE,
            MetricKind::Counter => proto::MetricType::COUNTER,
            MetricKind::Histogram => proto::MetricType::HISTOGRAM,
        });
        mf.set_metric(metrics);
        let mut buf = Vec::new();
        prometheus::TextEncoder::new()
            .encode(&[mf], &mut buf)
            .unwrap();
        let text = String::from_utf8(buf).unwrap();
        text[text.find('\n').unwrap() + 1..].to_owned()
    }

    fn old_labels(pairs: &[(&str, &str)]) -> Vec<prometheus::proto::LabelPair> {
        pairs
            .iter()
            .map(|(k, v)| {
                let mut l = prometheus::proto::LabelPair::default();
                l.set_name((*k).to_owned());
                l.set_value((*v).to_owned());
                l
            })
            .collect()
    }

    #[test]
    fn the_writer_matches_the_old_encoder_byte_for_byte() {
        use prometheus::proto;
        let label_sets: &[&[(&str, &str)]] = &[
            &[],
            &[("account_id", "123456789012")],
            &[("account_id", "1"), ("key", "2"), ("user", "bob")],
            &[("user", "we\"ird\\name\n"), ("alias", "")],
            &[("user", "\\\n\"\"ünï\tcode\\")],
        ];
        let values = [
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.5,
            0.1,
            1e-7,
            1.5e-300,
            1_795_579_920.0,
            1_795_579_920.123,
            86_400.0 * 730.0,
            9_007_199_254_740_991.0,
            9_007_199_254_740_992.0,
            1e16,
            1e21,
            -1e21,
            1.7976931348623157e308,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ];
        for labels in label_sets {
            let mut new = Bodies::default();
            let (mut gauges, mut counters) = (Vec::new(), Vec::new());
            for &v in &values {
                new.sample(Family::Users, labels, v);
                new.sample(Family::RefreshesTotal, labels, v);
                let mut g = proto::Gauge::default();
                g.set_value(v);
                let mut m = proto::Metric::from_gauge(g);
                m.set_label(old_labels(labels));
                gauges.push(m);
                let mut c = proto::Counter::default();
                c.set_value(v);
                let mut m = proto::Metric::default();
                m.set_counter(c);
                m.set_label(old_labels(labels));
                counters.push(m);
            }
            assert_eq!(new.get(Family::Users), old_encoder(Family::Users, gauges));
            assert_eq!(
                new.get(Family::RefreshesTotal),
                old_encoder(Family::RefreshesTotal, counters)
            );

            for series in [
                &[][..],
                &[0.0][..],
                &[3.0, 86_400.0, 86_401.0, 1e9, 63_072_000.0, 63_072_001.0][..],
                &[0.5, 2_592_000.25, 1e300][..],
            ] {
                let mut new = Bodies::default();
                new.histogram(Family::AccessKeyAge, labels, series);
                let buckets = KEY_AGE_BUCKETS_DAYS
                    .iter()
                    .map(|&d| {
                        let upper = (d * 86_400) as f64;
                        let mut b = proto::Bucket::default();
                        b.set_upper_bound(upper);
                        b.set_cumulative_count(
                            series.iter().filter(|&&v| v <= upper).count() as u64
                        );
                        b
                    })
                    .collect();
                let mut h = proto::Histogram::default();
                h.set_bucket(buckets);
                h.set_sample_count(series.len() as u64);
                h.set_sample_sum(series.iter().sum());
                let mut m = proto::Metric::default();
                m.set_histogram(h);
                m.set_label(old_labels(labels));
                assert_eq!(
                    new.get(Family::AccessKeyAge),
                    old_encoder(Family::AccessKeyAge, vec![m])
                );
            }
        }
    }

    #[test]
    fn compose_writes_one_header_per_family_across_accounts() {
        let a = render_live("111", Some("a"), Some(&LiveFacts::default()), None, &[]);
        let b = render_live("222", None, Some(&LiveFacts::default()), None, &[]);
        let text = compose([&a, &b]);
        assert_eq!(text.matches("# TYPE aws_iam_account_info gauge").count(), 1);
        assert!(text.contains("aws_iam_account_info{account_id=\"111\",alias=\"\",name=\"a\"} 1"));
        assert!(text.contains("aws_iam_account_info{account_id=\"222\",alias=\"\",name=\"\"} 1"));
    }

    #[test]
    fn user_tag_labels_are_prometheus_label_names() {
        assert_eq!(user_tag_label("owner"), "tag_owner");
        assert_eq!(user_tag_label("Owner"), "tag_owner");
        assert_eq!(user_tag_label("cost-center"), "tag_cost_center");
        assert_eq!(user_tag_label("team:name/x=y+z@w"), "tag_team_name_x_y_z_w");
        assert_eq!(user_tag_label("Kostenstelle Äb"), "tag_kostenstelle__b");
        assert_eq!(user_tag_label("2fa_exempt"), "tag_2fa_exempt");
    }

    fn directory() -> UserDirectory {
        use crate::account::UserInfo;
        UserDirectory {
            tag_keys: vec!["team".into(), "Owner".into()],
            users: vec![
                UserInfo {
                    name: "alice".into(),
                    path: "/engineering/".into(),
                    tags: vec!["payments".into(), "alice@example.com".into()],
                },
                UserInfo {
                    name: "bob".into(),
                    path: "/".into(),
                    tags: vec![String::new(), "we\"ird".into()],
                },
            ],
        }
    }

    #[test]
    fn user_info_has_one_series_per_user_with_a_label_per_tag_key() {
        let live = LiveFacts {
            users: Some(std::sync::Arc::new(directory())),
            ..LiveFacts::default()
        };
        let text = compose([&render_live("1", None, Some(&live), None, &[])]);
        assert_eq!(text.matches("# TYPE aws_iam_user_info gauge\n").count(), 1);
        assert!(text.contains(
            "aws_iam_user_info{account_id=\"1\",path=\"/engineering/\",tag_owner=\"alice@example.com\",tag_team=\"payments\",user=\"alice\"} 1\n"
        ), "{text}");
        assert!(text.contains(
            "aws_iam_user_info{account_id=\"1\",path=\"/\",tag_owner=\"we\\\"ird\",tag_team=\"\",user=\"bob\"} 1\n"
        ), "{text}");
        // Without a directory (no tag keys, or not read), no series.
        let text = compose([&render_live(
            "1",
            None,
            Some(&LiveFacts::default()),
            None,
            &[],
        )]);
        assert!(!text.contains("aws_iam_user_info"), "{text}");
    }

    #[test]
    fn label_values_are_escaped() {
        let b = render_live("1", Some("we\"ird\\name\n"), None, None, &[]);
        let text = compose([&b]);
        assert!(text.contains(r#"name="we\"ird\\name\n""#), "{text}");
    }

    /// Kept for byte-identity with the old encoder: Rust's `f64` `Sum` starts from `-0.0`, so
    /// the sum of an account without active keys is written `-0` (Prometheus reads it as 0).
    #[test]
    fn an_empty_histogram_sums_to_negative_zero() {
        let csv = format!(
            "{}\nbob,arn:aws:iam::1:user/bob,2020-01-01T00:00:00Z,false,N/A,N/A,N/A,true,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A,0\n",
            crate::synthetic::HEADER
        );
        let report = crate::report::parse(csv.as_bytes()).unwrap();
        let now = "2026-11-25T00:00:00Z".parse().unwrap();
        let assessment = crate::judge::judge(&report, now, &Default::default());
        let bodies = render_report("1", &report, &assessment, None, now, &Default::default());
        let age = bodies.get(Family::AccessKeyAge);
        assert!(
            age.contains("_bucket{account_id=\"1\",le=\"+Inf\"} 0\n"),
            "{age}"
        );
        assert!(
            age.contains("aws_iam_access_key_age_seconds_sum{account_id=\"1\"} -0\n"),
            "{age}"
        );
        assert!(
            age.ends_with("aws_iam_access_key_age_seconds_count{account_id=\"1\"} 0\n"),
            "{age}"
        );
    }

    #[test]
    fn a_user_failing_a_key_check_on_both_keys_has_one_series_per_check() {
        let csv = format!(
            "{}\nbob,arn:aws:iam::1:user/bob,2020-01-01T00:00:00Z,false,N/A,N/A,N/A,true,true,2021-01-01T00:00:00Z,2021-02-01T00:00:00Z,us-east-1,s3,true,2021-01-01T00:00:00Z,2021-02-01T00:00:00Z,us-east-1,s3,false,N/A,false,N/A,0\n",
            crate::synthetic::HEADER
        );
        let report = crate::report::parse(csv.as_bytes()).unwrap();
        let now = "2026-11-25T00:00:00Z".parse().unwrap();
        let assessment = crate::judge::judge(&report, now, &Default::default());
        assert_eq!(assessment.count(Check::AccessKeyNotRotated), 2);
        assert_eq!(assessment.count(Check::UnusedAccessKey), 2);
        let text = compose([&render_report(
            "1",
            &report,
            &assessment,
            None,
            now,
            &RenderOptions::all_users(),
        )]);
        for check in ["access_key_not_rotated", "unused_access_key"] {
            let series = format!(
                "aws_iam_user_check_failed{{account_id=\"1\",check=\"{check}\",user=\"bob\"}} 1\n"
            );
            assert_eq!(text.matches(&series).count(), 1, "{text}");
        }
    }

    #[test]
    fn per_user_bodies_are_sized_exactly_before_they_are_written() {
        let now = "2026-11-25T00:00:00Z".parse().unwrap();
        let csv = crate::synthetic::report("123456789012", 300, now, 7);
        let report = crate::report::parse(csv.as_bytes()).unwrap();
        let assessment = crate::judge::judge(&report, now, &Default::default());
        let opts = RenderOptions::all_users();
        let bodies = render_report("1", &report, &assessment, None, now, &opts);
        for f in [
            Family::UserCheckFailed,
            Family::UserMfaActive,
            Family::UserPasswordEnabled,
            Family::UserPasswordLastUsed,
            Family::AccessKeyActive,
            Family::AccessKeyLastRotated,
            Family::AccessKeyLastUsed,
        ] {
            let body = &bodies.0[f as usize];
            assert!(!body.is_empty(), "{}", f.name());
            assert_eq!(body.capacity(), body.len(), "{}", f.name());
        }
    }

    #[test]
    fn user_filters_apply_to_per_user_series_only() {
        let opts = RenderOptions {
            per_user: true,
            user_include: Some(Regex::new("^a").unwrap()),
            user_exclude: Some(Regex::new("^ab").unwrap()),
            ..RenderOptions::default()
        };
        assert!(opts.wants("alice"));
        assert!(!opts.wants("abe"));
        assert!(!opts.wants("bob"));
        assert!(!RenderOptions::default().wants("alice"));
    }
}
