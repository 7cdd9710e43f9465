//! The configuration file (`--config.file`): which accounts to watch, and settings that can
//! also be flags. Pure: text in, validated [`Config`] out; plans of what to watch are computed
//! here from the config, the accounts an organization lists and the shard, without I/O.
//!
//! Precedence, one rule for every setting that is both a flag and a key: a flag given
//! explicitly (on the command line or in its environment variable) wins; otherwise the config
//! file's value; otherwise the flag's default. So a bare command line keeps its defaults, the
//! config file changes them, and an operator can still override one setting by hand. A reload
//! re-reads the file and applies the same rule.
//!
//! Errors name the key (`accounts[1].role_arn: ...`), as serde_yaml_ng does for unknown keys and
//! malformed values; every key is checked (`deny_unknown_fields`), so a typo is an error rather
//! than a silently ignored setting.

pub mod duration;
pub mod exceptions;
pub mod settings;

pub use settings::{Setting, Settings, SETTINGS};

use chrono::NaiveDate;
use iam_credential_report::arn::{is_account_id, is_iam_name_char, role_account};
use iam_credential_report::exceptions::Exception;
use iam_credential_report::expose::{user_tag_label, RenderOptions};
use regex::Regex;
use serde::de::{self, Deserializer};
use serde::Deserialize;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The role session name used when none is configured: it shows in CloudTrail.
pub const DEFAULT_SESSION_NAME: &str = "iam-credentials-exporter";

/// The most refreshes that may run at once.
pub const MAX_CONCURRENCY: usize = 1024;

/// A config file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file was read but is not a valid configuration.
    #[error("config file {path}: {error}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, naming the key.
        error: InvalidConfig,
    },
    /// The flags and the file together give a shard that cannot be.
    #[error("--shard.index/--shard.count (or shard in the config file): {0}")]
    Shard(#[from] ShardError),
}

/// What is wrong with a configuration: `key: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidConfig(String);

impl InvalidConfig {
    /// A message about the whole file.
    pub fn new(message: impl Into<String>) -> InvalidConfig {
        InvalidConfig(message.into())
    }

    fn at(key: &str, message: impl std::fmt::Display) -> InvalidConfig {
        InvalidConfig(format!("{key}: {message}"))
    }
}

/// A shard that cannot be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ShardError {
    #[error("count must be at least 1")]
    NoShards,
    #[error("index {index} is not below count {count} (shards are numbered from 0)")]
    IndexOutOfRange { index: u32, count: u32 },
}

/// Which part of the accounts this replica watches: those whose id hashes to `index` modulo
/// `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shard {
    /// This replica's shard, from 0.
    pub index: u32,
    /// How many replicas share the accounts.
    pub count: u32,
}

impl Default for Shard {
    fn default() -> Self {
        Shard { index: 0, count: 1 }
    }
}

impl Shard {
    /// Checks that `index` is below `count` and `count` is at least 1.
    pub fn validate(self) -> Result<Shard, ShardError> {
        if self.count == 0 {
            return Err(ShardError::NoShards);
        }
        if self.index >= self.count {
            return Err(ShardError::IndexOutOfRange {
                index: self.index,
                count: self.count,
            });
        }
        Ok(self)
    }

    /// Whether this shard watches `account_id`. FNV-1a (64-bit) is fixed across builds,
    /// platforms and processes, unlike std's randomly seeded hasher, so every replica agrees on
    /// where each account belongs.
    pub fn owns(self, account_id: &str) -> bool {
        self.count <= 1
            || fnv1a(account_id.as_bytes()) % u64::from(self.count) == u64::from(self.index)
    }
}

/// 64-bit FNV-1a.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// A role to assume in an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    /// The role's ARN.
    pub arn: String,
    /// The account it is in (from the ARN).
    pub account_id: String,
    /// The `sts:ExternalId` the role's trust policy asks for.
    pub external_id: Option<String>,
    /// The role session name (CloudTrail shows it).
    pub session_name: String,
}

/// An account listed in `accounts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountEntry {
    /// The role to assume; `None` reads the account of the exporter's own credentials.
    pub role: Option<Role>,
    /// The display name (`aws_iam_account_info{name}`).
    pub name: Option<String>,
}

/// AWS Organizations discovery: every ACTIVE account, one role name assumed in each.
#[derive(Debug, Clone)]
pub struct Organization {
    /// The role's name (with its path, if any) in every account.
    pub role_name: String,
    /// The `sts:ExternalId` for every account's role.
    pub external_id: Option<String>,
    /// The role session name.
    pub session_name: String,
    /// Only these account ids (empty: all).
    pub include_accounts: BTreeSet<String>,
    /// Never these account ids.
    pub exclude_accounts: BTreeSet<String>,
    /// Only accounts whose name matches one of these (empty: all).
    pub include_names: Vec<Regex>,
    /// Never accounts whose name matches one of these.
    pub exclude_names: Vec<Regex>,
}

impl Organization {
    /// Whether the filters let the account through. Exclusions win over inclusions.
    pub fn wants(&self, id: &str, name: &str) -> bool {
        (self.include_accounts.is_empty() || self.include_accounts.contains(id))
            && !self.exclude_accounts.contains(id)
            && (self.include_names.is_empty()
                || self.include_names.iter().any(|r| r.is_match(name)))
            && !self.exclude_names.iter().any(|r| r.is_match(name))
    }
}

impl PartialEq for Organization {
    fn eq(&self, other: &Self) -> bool {
        let patterns = |v: &[Regex]| v.iter().map(|r| r.as_str().to_owned()).collect::<Vec<_>>();
        self.role_name == other.role_name
            && self.external_id == other.external_id
            && self.session_name == other.session_name
            && self.include_accounts == other.include_accounts
            && self.exclude_accounts == other.exclude_accounts
            && patterns(&self.include_names) == patterns(&other.include_names)
            && patterns(&self.exclude_names) == patterns(&other.exclude_names)
    }
}

/// Threshold keys; each one left out keeps the flag's value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdKeys {
    /// `access_key_not_rotated`.
    #[serde(default, deserialize_with = "duration")]
    pub access_key_max_age: Option<Duration>,
    /// `unused_access_key`, `unused_password`.
    #[serde(default, deserialize_with = "duration")]
    pub unused_credentials: Option<Duration>,
    /// `password_not_rotated`.
    #[serde(default, deserialize_with = "duration")]
    pub password_max_age: Option<Duration>,
    /// `inactive_user`.
    #[serde(default, deserialize_with = "duration")]
    pub inactive_user: Option<Duration>,
    /// `root_used_recently`.
    #[serde(default, deserialize_with = "duration")]
    pub root_recent_use: Option<Duration>,
}

/// A validated configuration file. Keys left out are `None` (or empty).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config {
    /// `refresh.interval`.
    pub refresh_interval: Option<Duration>,
    /// `refresh.concurrency`.
    pub refresh_concurrency: Option<usize>,
    /// `thresholds`.
    pub thresholds: ThresholdKeys,
    /// `per_user_metrics`.
    pub per_user_metrics: Option<PerUserMetrics>,
    /// `accounts`.
    pub accounts: Vec<AccountEntry>,
    /// `organization`.
    pub organization: Option<Organization>,
    /// `shard`.
    pub shard: Option<Shard>,
    /// `exceptions`, in file order (the first that covers a finding names it).
    pub exceptions: Vec<Exception>,
    /// `aws`.
    pub aws: AwsKeys,
}

/// The `aws` section; each key left out keeps the flag's value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwsKeys {
    /// `aws.user_tags`.
    pub user_tags: Option<UserTagKeys>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAws {
    #[serde(default)]
    user_tags: Option<Vec<String>>,
}

/// The IAM user tag keys whose values label `aws_iam_user_info` (`aws.user_tags`,
/// `--aws.user-tags`), checked: each is an IAM tag key (1 to 128 letters, digits, spaces and
/// `_.:/=+-@`), and no two make the same label ([`user_tag_label`]: `tag_` and the key
/// lower-cased, other characters than ASCII letters, digits and `_` as `_`). Empty: no tags
/// are read, and no call is made for them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserTagKeys(Vec<String>);

impl UserTagKeys {
    /// Checks `keys`; the error names the first bad one by its position.
    pub fn new(keys: Vec<String>) -> Result<UserTagKeys, UserTagKeyError> {
        let mut labels: Vec<String> = Vec::with_capacity(keys.len());
        for (i, key) in keys.iter().enumerate() {
            let chars = key.chars().count();
            if chars == 0 || chars > 128 || !key.chars().all(is_tag_key_char) {
                return Err(UserTagKeyError::Invalid {
                    index: i,
                    key: key.clone(),
                });
            }
            let label = user_tag_label(key);
            if let Some(first) = labels.iter().position(|l| *l == label) {
                return Err(UserTagKeyError::SameLabel {
                    index: i,
                    key: key.clone(),
                    first,
                    first_key: keys[first].clone(),
                    label,
                });
            }
            labels.push(label);
        }
        Ok(UserTagKeys(keys))
    }

    /// `--aws.user-tags`: keys separated by commas, spaces around each dropped (a key that
    /// starts or ends with a space needs the config file); empty: none.
    pub fn parse_flag(text: &str) -> Result<UserTagKeys, UserTagKeyError> {
        if text.trim().is_empty() {
            return Ok(UserTagKeys::default());
        }
        UserTagKeys::new(text.split(',').map(|k| k.trim().to_owned()).collect())
    }

    /// The keys, in the order given.
    pub fn keys(&self) -> &[String] {
        &self.0
    }

    /// Whether no key is configured.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A tag key list that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserTagKeyError {
    /// Not an IAM tag key.
    #[error("{key:?} is not an IAM tag key (1 to 128 letters, digits, spaces and _.:/=+-@)")]
    Invalid {
        /// Its position.
        index: usize,
        /// The key.
        key: String,
    },
    /// Two keys make the same label.
    #[error("{key:?} and {first_key:?} both make the label {label}; keep one")]
    SameLabel {
        /// The position of the second key.
        index: usize,
        /// The second key.
        key: String,
        /// The position of the first.
        first: usize,
        /// The first key.
        first_key: String,
        /// The label both make.
        label: String,
    },
}

impl UserTagKeyError {
    /// The position of the bad key.
    pub fn index(&self) -> usize {
        match self {
            UserTagKeyError::Invalid { index, .. } | UserTagKeyError::SameLabel { index, .. } => {
                *index
            }
        }
    }
}

/// A character IAM allows in a tag key: a letter, a digit (any script's), a space separator
/// or one of `_.:/=+-@` (IAM's pattern `[\p{L}\p{Z}\p{N}_.:/=+\-@]+`).
fn is_tag_key_char(c: char) -> bool {
    c.is_alphabetic()
        || c.is_numeric()
        || (c.is_whitespace() && !c.is_control())
        || "_.:/=+-@".contains(c)
}

/// Which users get per-user series (`per_user_metrics`, `--metrics.per-user`): `true` for
/// all, `failing` for those who fail or are muted for at least one check (counts and
/// histograms still cover everyone), `false` for none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PerUserMetrics {
    /// Every user (the include and exclude filters aside).
    All,
    /// Users with a finding or a muted finding.
    Failing,
    /// No user.
    Off,
}

impl PerUserMetrics {
    /// `render` (the flags' user filters) with this choice applied.
    pub fn apply(self, render: &RenderOptions) -> RenderOptions {
        RenderOptions {
            per_user: self != PerUserMetrics::Off,
            only_failing: self == PerUserMetrics::Failing,
            ..render.clone()
        }
    }
}

impl std::str::FromStr for PerUserMetrics {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "true" => Ok(PerUserMetrics::All),
            "failing" => Ok(PerUserMetrics::Failing),
            "false" => Ok(PerUserMetrics::Off),
            _ => Err(format!("{s:?}: expected true, false or failing")),
        }
    }
}

impl std::fmt::Display for PerUserMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PerUserMetrics::All => "true",
            PerUserMetrics::Failing => "failing",
            PerUserMetrics::Off => "false",
        })
    }
}

impl<'de> Deserialize<'de> for PerUserMetrics {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // A visitor, so that errors name the key and line.
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = PerUserMetrics;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("true, false or failing")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<PerUserMetrics, E> {
                Ok(if v {
                    PerUserMetrics::All
                } else {
                    PerUserMetrics::Off
                })
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<PerUserMetrics, E> {
                text.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(Visitor)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    refresh: RawRefresh,
    #[serde(default)]
    thresholds: ThresholdKeys,
    #[serde(default)]
    per_user_metrics: Option<PerUserMetrics>,
    #[serde(default)]
    accounts: Vec<RawAccount>,
    #[serde(default)]
    organization: Option<RawOrganization>,
    #[serde(default)]
    shard: Option<Shard>,
    #[serde(default)]
    exceptions: Vec<exceptions::RawException>,
    #[serde(default)]
    aws: RawAws,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRefresh {
    #[serde(default, deserialize_with = "duration")]
    interval: Option<Duration>,
    #[serde(default)]
    concurrency: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAccount {
    #[serde(default)]
    role_arn: Option<String>,
    #[serde(default)]
    external_id: Option<String>,
    #[serde(default)]
    session_name: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOrganization {
    role_name: String,
    #[serde(default)]
    external_id: Option<String>,
    #[serde(default)]
    session_name: Option<String>,
    #[serde(default)]
    include_accounts: Vec<AccountId>,
    #[serde(default)]
    exclude_accounts: Vec<AccountId>,
    #[serde(default)]
    include_names: Vec<Pattern>,
    #[serde(default)]
    exclude_names: Vec<Pattern>,
}

/// A duration ([`duration`]), greater than zero. Checked inside the scalar's visitor, so that
/// serde_yaml_ng names the key in the error.
fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    struct Visitor;
    impl de::Visitor<'_> for Visitor {
        type Value = Duration;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a duration such as 90d, 15m or 1h30m")
        }
        fn visit_str<E: de::Error>(self, text: &str) -> Result<Duration, E> {
            duration::parse_positive(text).map_err(E::custom)
        }
    }
    d.deserialize_str(Visitor).map(Some)
}

/// A 12-digit account id, written as a string or (unquoted) as a number.
#[derive(Debug)]
struct AccountId(String);

impl<'de> Deserialize<'de> for AccountId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<AccountId, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = AccountId;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a 12-digit AWS account id")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<AccountId, E> {
                if is_account_id(v) {
                    Ok(AccountId(v.to_owned()))
                } else {
                    Err(E::custom(format!("{v:?} is not a 12-digit AWS account id")))
                }
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<AccountId, E> {
                // Unquoted, YAML reads an id as a number and drops its leading zeros.
                self.visit_str(&format!("{v:012}"))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<AccountId, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::custom(format!("{v} is not a 12-digit AWS account id"))),
                }
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// A regular expression.
#[derive(Debug)]
struct Pattern(Regex);

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Pattern, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = Pattern;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a regular expression")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Pattern, E> {
                Regex::new(text).map(Pattern).map_err(|e| {
                    // The regex crate draws a caret under the error over several lines: keep
                    // the verdict, on one line.
                    let text_error = e.to_string();
                    let why = text_error
                        .lines()
                        .last()
                        .unwrap_or_default()
                        .trim_start_matches("error: ");
                    E::custom(format!("invalid regular expression {text:?}: {why}"))
                })
            }
        }
        d.deserialize_str(Visitor)
    }
}

fn check_session_name(key: &str, name: Option<String>) -> Result<String, InvalidConfig> {
    let name = name.unwrap_or_else(|| DEFAULT_SESSION_NAME.to_owned());
    if !(2..=64).contains(&name.len()) || !name.chars().all(is_iam_name_char) {
        return Err(InvalidConfig::at(
            key,
            format!("{name:?} is not a role session name (2 to 64 of A-Z a-z 0-9 _+=,.@-)"),
        ));
    }
    Ok(name)
}

fn check_external_id(key: &str, id: Option<String>) -> Result<Option<String>, InvalidConfig> {
    match id {
        Some(id)
            if !(2..=1224).contains(&id.len())
                || !id
                    .chars()
                    .all(|c| is_iam_name_char(c) || c == ':' || c == '/') =>
        {
            Err(InvalidConfig::at(
                key,
                "not an external id (2 to 1224 of A-Z a-z 0-9 _+=,.@:/-)",
            ))
        }
        id => Ok(id),
    }
}

/// Parses and validates a configuration loaded on `today` (exceptions may run at most a year
/// from the day they are loaded).
pub fn parse(text: &str, today: NaiveDate) -> Result<Config, InvalidConfig> {
    let raw: Option<RawConfig> =
        serde_yaml_ng::from_str(text).map_err(|e| InvalidConfig(e.to_string()))?;
    let raw = raw.unwrap_or_default();

    if let Some(c) = raw.refresh.concurrency {
        if !(1..=MAX_CONCURRENCY).contains(&c) {
            return Err(InvalidConfig::at(
                "refresh.concurrency",
                format!("{c} is not between 1 and {MAX_CONCURRENCY}"),
            ));
        }
    }
    if let Some(shard) = raw.shard {
        shard
            .validate()
            .map_err(|e| InvalidConfig::at("shard", e))?;
    }

    let mut accounts = Vec::with_capacity(raw.accounts.len());
    let mut seen: Vec<(String, usize)> = Vec::new();
    for (i, a) in raw.accounts.into_iter().enumerate() {
        let key = |k: &str| format!("accounts[{i}].{k}");
        let role = match a.role_arn {
            None => {
                if a.external_id.is_some() || a.session_name.is_some() {
                    return Err(InvalidConfig::at(
                        &format!("accounts[{i}]"),
                        "external_id and session_name need a role_arn",
                    ));
                }
                None
            }
            Some(arn) => {
                let account_id = role_account(&arn)
                    .ok_or_else(|| {
                        InvalidConfig::at(
                            &key("role_arn"),
                            format!(
                                "{arn:?} is not an IAM role ARN (arn:aws:iam::123456789012:role/NAME)"
                            ),
                        )
                    })?
                    .to_owned();
                Some(Role {
                    account_id,
                    arn,
                    external_id: check_external_id(&key("external_id"), a.external_id)?,
                    session_name: check_session_name(&key("session_name"), a.session_name)?,
                })
            }
        };
        let id = role
            .as_ref()
            .map_or("the exporter's own account", |r| r.account_id.as_str())
            .to_owned();
        if let Some((_, first)) = seen.iter().find(|(s, _)| *s == id) {
            let what = if role.is_some() {
                format!("account {id} is already listed")
            } else {
                "only one entry may leave out role_arn (the exporter's own account)".to_owned()
            };
            return Err(InvalidConfig::at(
                &format!("accounts[{i}]"),
                format!("{what} (accounts[{first}])"),
            ));
        }
        seen.push((id, i));
        accounts.push(AccountEntry { role, name: a.name });
    }

    let organization = match raw.organization {
        None => None,
        Some(o) => {
            let name = o.role_name.as_str();
            if name.is_empty()
                || name.len() > 512
                || name.starts_with('/')
                || name.ends_with('/')
                || !name.chars().all(|c| is_iam_name_char(c) || c == '/')
            {
                return Err(InvalidConfig::at(
                    "organization.role_name",
                    format!("{name:?} is not an IAM role name (A-Z a-z 0-9 _+=,.@- and an optional path/)"),
                ));
            }
            Some(Organization {
                external_id: check_external_id("organization.external_id", o.external_id)?,
                session_name: check_session_name("organization.session_name", o.session_name)?,
                role_name: o.role_name,
                include_accounts: o.include_accounts.into_iter().map(|a| a.0).collect(),
                exclude_accounts: o.exclude_accounts.into_iter().map(|a| a.0).collect(),
                include_names: o.include_names.into_iter().map(|p| p.0).collect(),
                exclude_names: o.exclude_names.into_iter().map(|p| p.0).collect(),
            })
        }
    };

    let exceptions = exceptions::validate(raw.exceptions, today)?;

    let user_tags = match raw.aws.user_tags {
        None => None,
        Some(keys) => Some(UserTagKeys::new(keys).map_err(|e| match e {
            UserTagKeyError::SameLabel {
                index,
                key,
                first,
                first_key,
                label,
            } => InvalidConfig::at(
                &format!("aws.user_tags[{index}]"),
                format!("{key:?} and {first_key:?} (aws.user_tags[{first}]) both make the label {label}; keep one"),
            ),
            e => InvalidConfig::at(&format!("aws.user_tags[{}]", e.index()), e),
        })?),
    };

    Ok(Config {
        exceptions,
        aws: AwsKeys { user_tags },
        refresh_interval: raw.refresh.interval,
        refresh_concurrency: raw.refresh.concurrency,
        thresholds: raw.thresholds,
        per_user_metrics: raw.per_user_metrics,
        accounts,
        organization,
        shard: raw.shard,
    })
}

/// Reads and validates the file at `path`, loaded on `today`.
pub fn load(path: &Path, today: NaiveDate) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(&text, today).map_err(|error| ConfigError::Invalid {
        path: path.to_owned(),
        error,
    })
}

/// An account an organization lists (ACTIVE ones only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgAccount {
    /// The account id.
    pub id: String,
    /// The account's name in the organization.
    pub name: String,
}

/// One account to watch, and how to read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Watch {
    /// The account of the exporter's own credentials.
    Own {
        /// The display name.
        name: Option<String>,
    },
    /// An account read through a role.
    Role {
        /// The role.
        role: Role,
        /// The display name.
        name: Option<String>,
    },
    /// A report file.
    File {
        /// The file.
        path: PathBuf,
    },
}

/// The key of the account of the exporter's own credentials, before its id is known.
pub const OWN_KEY: &str = "aws";

impl Watch {
    /// A stable key: the account id, [`OWN_KEY`], or the file's path.
    pub fn key(&self) -> String {
        match self {
            Watch::Own { .. } => OWN_KEY.to_owned(),
            Watch::Role { role, .. } => role.account_id.clone(),
            Watch::File { path } => path.display().to_string(),
        }
    }

    /// The account id, when known up front.
    pub fn account_id(&self) -> Option<&str> {
        match self {
            Watch::Role { role, .. } => Some(&role.account_id),
            _ => None,
        }
    }

    /// The display name.
    pub fn name(&self) -> Option<&str> {
        match self {
            Watch::Own { name } | Watch::Role { name, .. } => name.as_deref(),
            Watch::File { .. } => None,
        }
    }
}

/// The ARN partition of a region: `aws-us-gov` for GovCloud, `aws-cn` for China, else `aws`.
pub fn partition(region: Option<&str>) -> &'static str {
    match region {
        Some(r) if r.starts_with("us-gov-") => "aws-us-gov",
        Some(r) if r.starts_with("cn-") => "aws-cn",
        Some(r) if r.starts_with("us-iso-") => "aws-iso",
        Some(r) if r.starts_with("us-isob-") => "aws-iso-b",
        _ => "aws",
    }
}

/// What this replica watches: the listed accounts, then the organization's accounts its
/// filters let through (a listed account keeps its own role and name), all cut down to
/// `shard`. No accounts and no organization means the exporter's own account. The own
/// account's id is not known up front, so shard 0 alone watches it. Sorted by key.
pub fn plan(
    config: &Config,
    discovered: &[OrgAccount],
    shard: Shard,
    partition: &str,
) -> Vec<Watch> {
    let mut out: Vec<Watch> = Vec::new();
    if config.accounts.is_empty() && config.organization.is_none() {
        if shard.index == 0 {
            out.push(Watch::Own { name: None });
        }
        return out;
    }
    for a in &config.accounts {
        match &a.role {
            None if shard.index == 0 => out.push(Watch::Own {
                name: a.name.clone(),
            }),
            None => {}
            Some(role) if shard.owns(&role.account_id) => out.push(Watch::Role {
                role: role.clone(),
                name: a.name.clone(),
            }),
            Some(_) => {}
        }
    }
    if let Some(org) = &config.organization {
        let listed: BTreeSet<&str> = config
            .accounts
            .iter()
            .filter_map(|a| a.role.as_ref().map(|r| r.account_id.as_str()))
            .collect();
        for acct in discovered {
            if listed.contains(acct.id.as_str())
                || !org.wants(&acct.id, &acct.name)
                || !shard.owns(&acct.id)
            {
                continue;
            }
            out.push(Watch::Role {
                role: Role {
                    arn: format!("arn:{partition}:iam::{}:role/{}", acct.id, org.role_name),
                    account_id: acct.id.clone(),
                    external_id: org.external_id.clone(),
                    session_name: org.session_name.clone(),
                },
                name: Some(acct.name.clone()),
            });
        }
    }
    out.sort_by_key(Watch::key);
    out.dedup_by_key(|w| w.key());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        "2026-11-30".parse().unwrap()
    }

    fn parse_today(text: &str) -> Result<Config, InvalidConfig> {
        parse(text, today())
    }

    fn err(text: &str) -> String {
        parse(text, today()).unwrap_err().to_string()
    }

    #[test]
    fn an_empty_file_sets_nothing() {
        for text in ["", "# nothing\n", "{}\n"] {
            assert_eq!(parse(text, today()).unwrap(), Config::default(), "{text:?}");
        }
    }

    #[test]
    fn the_full_shape_parses() {
        let c = parse_today(
            r#"
refresh: { interval: 30m, concurrency: 4 }
thresholds: { access_key_max_age: 45d, root_recent_use: 12h }
per_user_metrics: false
accounts:
  - role_arn: arn:aws:iam::111111111111:role/x
    external_id: ext-1
    session_name: sess
    name: payments-prod
  - name: home
organization:
  role_name: path/iam-credentials-exporter
  include_accounts: ["222222222222", 012345678901]
  exclude_names: ["^sandbox-"]
shard: { index: 1, count: 3 }
"#,
        )
        .unwrap();
        assert_eq!(c.refresh_interval, Some(Duration::from_secs(1800)));
        assert_eq!(c.refresh_concurrency, Some(4));
        assert_eq!(
            c.thresholds.access_key_max_age,
            Some(Duration::from_secs(45 * 86400))
        );
        assert_eq!(c.thresholds.unused_credentials, None);
        assert_eq!(c.per_user_metrics, Some(PerUserMetrics::Off));
        let role = c.accounts[0].role.as_ref().unwrap();
        assert_eq!(role.account_id, "111111111111");
        assert_eq!(role.external_id.as_deref(), Some("ext-1"));
        assert_eq!(role.session_name, "sess");
        assert_eq!(c.accounts[1].role, None);
        let org = c.organization.unwrap();
        // An unquoted id keeps its leading zero.
        assert!(org.include_accounts.contains("012345678901"));
        assert_eq!(org.session_name, DEFAULT_SESSION_NAME);
        assert_eq!(c.shard, Some(Shard { index: 1, count: 3 }));
    }

    #[test]
    fn errors_name_the_key() {
        assert!(err("refresh: { intervall: 1m }").starts_with("refresh: unknown field `intervall`"));
        assert!(err("accounts:\n  - role_arn: arn:aws:iam::1:role/x\n")
            .starts_with("accounts[0].role_arn: \"arn:aws:iam::1:role/x\" is not an IAM role ARN"));
        assert!(err("thresholds: { inactive_user: soon }")
            .starts_with("thresholds.inactive_user: invalid duration \"soon\""));
        assert!(err("organization: { role_name: r, exclude_names: ['('] }")
            .starts_with("organization.exclude_names[0]: invalid regular expression"));
        assert!(
            err("shard: { index: 3, count: 3 }").starts_with("shard: index 3 is not below count 3")
        );
        assert!(
            err("refresh: { concurrency: 0 }").starts_with("refresh.concurrency: 0 is not between")
        );
    }

    #[test]
    fn per_user_metrics_is_true_false_or_failing() {
        for (text, want) in [
            ("true", PerUserMetrics::All),
            ("false", PerUserMetrics::Off),
            ("failing", PerUserMetrics::Failing),
        ] {
            let c = parse_today(&format!("per_user_metrics: {text}")).unwrap();
            assert_eq!(c.per_user_metrics, Some(want), "{text}");
            assert_eq!(want.to_string().parse::<PerUserMetrics>(), Ok(want));
        }
        let e = err("per_user_metrics: fail");
        assert!(
            e.starts_with("per_user_metrics: \"fail\": expected true, false or failing"),
            "{e}"
        );
        let failing = PerUserMetrics::Failing.apply(&RenderOptions::default());
        assert!(failing.per_user && failing.only_failing);
        assert!(
            !PerUserMetrics::Off
                .apply(&RenderOptions::all_users())
                .per_user
        );
    }

    #[test]
    fn user_tag_keys_are_read_from_the_aws_section() {
        let c = parse_today(
            "aws: { user_tags: [owner, team, cost-center, 'Kosten stelle:ä/x=y+z@w.v'] }",
        )
        .unwrap();
        let keys = c.aws.user_tags.unwrap();
        assert_eq!(
            keys.keys(),
            ["owner", "team", "cost-center", "Kosten stelle:ä/x=y+z@w.v"]
        );
        // An empty list reads no tags (and overrides a flag's list); leaving the key out
        // keeps the flag's.
        assert_eq!(
            parse_today("aws: { user_tags: [] }").unwrap().aws.user_tags,
            Some(UserTagKeys::default())
        );
        assert_eq!(parse_today("aws: {}").unwrap().aws.user_tags, None);
        assert_eq!(parse_today("").unwrap().aws, AwsKeys::default());
    }

    #[test]
    fn bad_user_tag_keys_are_refused_with_their_position() {
        assert_eq!(
            err("aws: { user_tags: [owner, 'team!'] }"),
            "aws.user_tags[1]: \"team!\" is not an IAM tag key (1 to 128 letters, digits, spaces and _.:/=+-@)"
        );
        assert!(err("aws: { user_tags: [''] }").starts_with("aws.user_tags[0]: \"\" is not"));
        let long = "k".repeat(129);
        assert!(
            err(&format!("aws: {{ user_tags: [{long}] }}")).starts_with("aws.user_tags[0]: \"kkk")
        );
        assert!(parse_today(&format!("aws: {{ user_tags: [{}] }}", "k".repeat(128))).is_ok());
        // Control characters are not spaces.
        assert!(err("aws: { user_tags: [\"a\\tb\"] }").starts_with("aws.user_tags[0]:"));
        // Two keys, one label.
        assert_eq!(
            err("aws: { user_tags: [cost-center, team, cost_center] }"),
            "aws.user_tags[2]: \"cost_center\" and \"cost-center\" (aws.user_tags[0]) both make the label tag_cost_center; keep one"
        );
        // IAM user tag keys are case-insensitive: Owner and owner are one key.
        assert!(err("aws: { user_tags: [owner, Owner] }")
            .starts_with("aws.user_tags[1]: \"Owner\" and \"owner\""));
        assert!(err("aws: { user_tag: [owner] }").starts_with("aws: unknown field `user_tag`"));
    }

    #[test]
    fn the_user_tags_flag_is_a_comma_separated_list() {
        let keys = |t: &str| UserTagKeys::parse_flag(t).map(|k| k.keys().to_vec());
        assert_eq!(keys(""), Ok(vec![]));
        assert_eq!(keys("  "), Ok(vec![]));
        assert_eq!(keys("owner"), Ok(vec!["owner".to_owned()]));
        assert_eq!(
            keys("owner, team ,cost center"),
            Ok(vec!["owner".into(), "team".into(), "cost center".into()])
        );
        assert_eq!(
            UserTagKeys::parse_flag("owner,,team")
                .unwrap_err()
                .to_string(),
            "\"\" is not an IAM tag key (1 to 128 letters, digits, spaces and _.:/=+-@)"
        );
        assert_eq!(
            UserTagKeys::parse_flag("team,Team")
                .unwrap_err()
                .to_string(),
            "\"Team\" and \"team\" both make the label tag_team; keep one"
        );
    }

    #[test]
    fn fnv1a_is_the_published_function() {
        // Test vectors from the FNV reference (draft-eastlake-fnv).
        assert_eq!(fnv1a(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x85944171f73967e8);
    }

    #[test]
    fn shards_partition_the_accounts_exactly_once() {
        let ids: Vec<String> = (0..1000u64)
            .map(|i| format!("{:012}", 100_000_000_000 + i * 7919))
            .collect();
        for count in 1..=7u32 {
            let mut per_shard = vec![0usize; count as usize];
            for id in &ids {
                let owners: Vec<u32> = (0..count)
                    .filter(|&index| Shard { index, count }.owns(id))
                    .collect();
                assert_eq!(owners.len(), 1, "{id} in {owners:?} of {count}");
                per_shard[owners[0] as usize] += 1;
            }
            // Roughly even: no shard gets less than half its fair share.
            let fair = ids.len() / count as usize;
            assert!(
                per_shard.iter().all(|&n| n * 2 >= fair),
                "{count}: {per_shard:?}"
            );
        }
    }

    fn org_accounts() -> Vec<OrgAccount> {
        [
            ("111111111111", "payments"),
            ("222222222222", "sandbox-1"),
            ("333333333333", "data"),
        ]
        .iter()
        .map(|(id, name)| OrgAccount {
            id: (*id).into(),
            name: (*name).into(),
        })
        .collect()
    }

    #[test]
    fn plans_combine_listed_and_discovered_accounts() {
        let c = parse_today(
            "accounts:\n  - role_arn: arn:aws:iam::333333333333:role/special\n    name: mine\n\
             organization: { role_name: reader, exclude_names: ['^sandbox-'] }\n",
        )
        .unwrap();
        let plan = plan(&c, &org_accounts(), Shard::default(), "aws");
        let arns: Vec<(String, Option<&str>)> = plan
            .iter()
            .map(|w| match w {
                Watch::Role { role, name } => (role.arn.clone(), name.as_deref()),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            arns,
            [
                (
                    "arn:aws:iam::111111111111:role/reader".to_owned(),
                    Some("payments")
                ),
                (
                    "arn:aws:iam::333333333333:role/special".to_owned(),
                    Some("mine")
                ),
            ]
        );
    }

    #[test]
    fn organization_filters() {
        let c = parse_today(
            "organization:\n  role_name: r\n  include_accounts: ['111111111111', '222222222222']\n  \
             exclude_accounts: ['222222222222']\n  include_names: ['^pay', '^sand']\n",
        )
        .unwrap();
        let keys: Vec<String> = plan(&c, &org_accounts(), Shard::default(), "aws-cn")
            .iter()
            .map(Watch::key)
            .collect();
        assert_eq!(keys, ["111111111111"]);
    }

    #[test]
    fn without_accounts_the_own_account_is_watched_by_shard_zero() {
        let c = Config::default();
        assert_eq!(
            plan(&c, &[], Shard::default(), "aws"),
            [Watch::Own { name: None }]
        );
        assert_eq!(plan(&c, &[], Shard { index: 1, count: 2 }, "aws"), []);
    }

    #[test]
    fn partitions() {
        assert_eq!(partition(Some("us-gov-west-1")), "aws-us-gov");
        assert_eq!(partition(Some("cn-north-1")), "aws-cn");
        assert_eq!(partition(Some("eu-west-1")), "aws");
        assert_eq!(partition(None), "aws");
    }
}
