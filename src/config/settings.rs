//! The settings that are both a flag and a config file key, in one table ([`SETTINGS`]) that
//! drives both which flags were given explicitly and what a config file may change.
//!
//! Precedence, one rule for all of them: a flag given explicitly (on the command line or in
//! its environment variable) wins; otherwise the config file's value; otherwise the flag's
//! default.

use super::{Config, ConfigError, PerUserMetrics, Shard, UserTagKeys};
use iam_credential_report::judge::Thresholds;
use std::collections::BTreeSet;
use std::time::Duration;

/// The settings in force: flags and config file combined.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Time between two refreshes of an account (and between two organization listings).
    pub refresh_interval: Duration,
    /// Refreshes that may run at once.
    pub refresh_concurrency: usize,
    pub thresholds: Thresholds,
    /// Which users get per-user series.
    pub per_user_metrics: PerUserMetrics,
    /// This replica's shard.
    pub shard: Shard,
    /// IAM user tag keys to read for `aws_iam_user_info` (empty: none, and no call).
    pub user_tags: UserTagKeys,
}

/// One setting that is both a flag and a config file key.
pub struct Setting {
    /// The config file key, as logs and errors name it.
    pub key: &'static str,
    /// The ids (clap's) of the flags that set it.
    pub flags: &'static [&'static str],
    /// Copies the file's value into the settings; false when the file does not set it.
    apply: fn(&Config, &mut Settings) -> bool,
}

fn take<T: Copy>(from: Option<T>, to: &mut T) -> bool {
    if let Some(v) = from {
        *to = v;
    }
    from.is_some()
}

/// Every setting that is both a flag and a config file key.
pub const SETTINGS: &[Setting] = &[
    Setting {
        key: "refresh.interval",
        flags: &["refresh_interval"],
        apply: |c, s| take(c.refresh_interval, &mut s.refresh_interval),
    },
    Setting {
        key: "refresh.concurrency",
        flags: &["refresh_concurrency"],
        apply: |c, s| take(c.refresh_concurrency, &mut s.refresh_concurrency),
    },
    Setting {
        key: "thresholds.access_key_max_age",
        flags: &["access_key_max_age"],
        apply: |c, s| {
            take(
                c.thresholds.access_key_max_age,
                &mut s.thresholds.access_key_max_age,
            )
        },
    },
    Setting {
        key: "thresholds.unused_credentials",
        flags: &["unused_credentials"],
        apply: |c, s| {
            take(
                c.thresholds.unused_credentials,
                &mut s.thresholds.unused_credentials,
            )
        },
    },
    Setting {
        key: "thresholds.password_max_age",
        flags: &["password_max_age"],
        apply: |c, s| {
            take(
                c.thresholds.password_max_age,
                &mut s.thresholds.password_max_age,
            )
        },
    },
    Setting {
        key: "thresholds.inactive_user",
        flags: &["inactive_user"],
        apply: |c, s| take(c.thresholds.inactive_user, &mut s.thresholds.inactive_user),
    },
    Setting {
        key: "thresholds.root_recent_use",
        flags: &["root_recent_use"],
        apply: |c, s| {
            take(
                c.thresholds.root_recent_use,
                &mut s.thresholds.root_recent_use,
            )
        },
    },
    Setting {
        key: "per_user_metrics",
        flags: &["per_user"],
        apply: |c, s| take(c.per_user_metrics, &mut s.per_user_metrics),
    },
    Setting {
        key: "shard",
        flags: &["shard_index", "shard_count"],
        apply: |c, s| take(c.shard, &mut s.shard),
    },
    Setting {
        key: "aws.user_tags",
        flags: &["aws_user_tags"],
        apply: |c, s| match &c.aws.user_tags {
            Some(keys) => {
                s.user_tags = keys.clone();
                true
            }
            None => false,
        },
    },
];

impl Settings {
    /// `flags` overlaid with what `config` sets, except the settings named in `explicit`
    /// (keys of [`SETTINGS`]), which keep the flag's value. Also returns the keys the config
    /// sets but a flag overrode, for the log. Fails when the result cannot be (a shard index
    /// not below the count).
    pub fn resolve(
        flags: &Settings,
        explicit: &BTreeSet<String>,
        config: &Config,
    ) -> Result<(Settings, Vec<&'static str>), ConfigError> {
        let mut settings = flags.clone();
        let mut overridden = Vec::new();
        for setting in SETTINGS {
            if explicit.contains(setting.key) {
                if (setting.apply)(config, &mut flags.clone()) {
                    overridden.push(setting.key);
                }
            } else {
                (setting.apply)(config, &mut settings);
            }
        }
        settings.shard.validate()?;
        Ok((settings, overridden))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_flags_win_over_the_file() {
        let flags = Settings {
            refresh_interval: Duration::from_secs(900),
            refresh_concurrency: 8,
            thresholds: Thresholds::default(),
            per_user_metrics: PerUserMetrics::All,
            shard: Shard::default(),
            user_tags: UserTagKeys::default(),
        };
        let c = super::super::parse("refresh: { interval: 1m, concurrency: 2 }\nper_user_metrics: false\nshard: { index: 1, count: 2 }", chrono::NaiveDate::MIN).unwrap();
        let explicit: BTreeSet<String> =
            ["refresh.concurrency".to_owned(), "shard".to_owned()].into();
        let (s, overridden) = Settings::resolve(&flags, &explicit, &c).unwrap();
        assert_eq!(s.refresh_interval, Duration::from_secs(60));
        assert_eq!(s.refresh_concurrency, 8);
        assert_eq!(s.per_user_metrics, PerUserMetrics::Off);
        assert_eq!(s.shard, Shard::default());
        assert_eq!(overridden, ["refresh.concurrency", "shard"]);
    }

    #[test]
    fn user_tags_follow_the_rule_of_every_setting() {
        let flags = |keys: &str| Settings {
            refresh_interval: Duration::from_secs(900),
            refresh_concurrency: 8,
            thresholds: Thresholds::default(),
            per_user_metrics: PerUserMetrics::All,
            shard: Shard::default(),
            user_tags: UserTagKeys::parse_flag(keys).unwrap(),
        };
        let file = super::super::parse("aws: { user_tags: [owner, team] }", chrono::NaiveDate::MIN)
            .unwrap();
        let keys = |s: &Settings| s.user_tags.keys().to_vec();
        // The file's keys replace the flag's default...
        let (s, overridden) = Settings::resolve(&flags(""), &BTreeSet::new(), &file).unwrap();
        assert_eq!(keys(&s), ["owner", "team"]);
        assert!(overridden.is_empty());
        // ...but not a flag given explicitly, even an empty one.
        let explicit: BTreeSet<String> = ["aws.user_tags".to_owned()].into();
        let (s, overridden) = Settings::resolve(&flags("cost-center"), &explicit, &file).unwrap();
        assert_eq!(keys(&s), ["cost-center"]);
        assert_eq!(overridden, ["aws.user_tags"]);
        let (s, _) = Settings::resolve(&flags(""), &explicit, &file).unwrap();
        assert!(s.user_tags.is_empty());
        // A file without the key keeps the flag's.
        let (s, _) =
            Settings::resolve(&flags("owner"), &BTreeSet::new(), &Config::default()).unwrap();
        assert_eq!(keys(&s), ["owner"]);
    }

    #[test]
    fn a_shard_beyond_the_count_is_refused() {
        let flags = Settings {
            refresh_interval: Duration::from_secs(900),
            refresh_concurrency: 8,
            thresholds: Thresholds::default(),
            per_user_metrics: PerUserMetrics::All,
            shard: Shard { index: 3, count: 3 },
            user_tags: UserTagKeys::default(),
        };
        let c =
            super::super::parse("shard: { index: 0, count: 2 }", chrono::NaiveDate::MIN).unwrap();
        let e = Settings::resolve(&flags, &["shard".to_owned()].into(), &c).unwrap_err();
        assert_eq!(
            e.to_string(),
            "--shard.index/--shard.count (or shard in the config file): index 3 is not below count 3 (shards are numbered from 0)"
        );
    }
}
