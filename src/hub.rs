//! The shared state between collection and serving.
//!
//! Refresh loops write each account's outcome here; every change re-renders the exposition
//! once (plain and gzip) and the landing page, and swaps them in atomically. The HTTP server
//! only reads the last published [`Published`]: a scrape never parses, judges or calls AWS.

use crate::checks::Thresholds;
use crate::landing;
use crate::metrics::{self, Bodies, RefreshStats, RenderOptions};
use crate::source::{LiveFacts, SourceError};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use flate2::write::GzEncoder;
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex, RwLock};

/// How reports are judged and rendered.
#[derive(Debug, Clone, Default)]
pub struct JudgeSettings {
    /// Check thresholds.
    pub thresholds: Thresholds,
    /// Per-user series and filters.
    pub render: RenderOptions,
}

/// What the landing page and logs say about the last judged report of an account.
#[derive(Debug, Clone, PartialEq)]
pub struct JudgedReport {
    /// When AWS generated it.
    pub generated_at: Option<DateTime<Utc>>,
    /// The `now` it was judged at.
    pub evaluated_at: DateTime<Utc>,
    /// IAM users (root excluded).
    pub users: usize,
    /// Findings across all checks.
    pub findings: usize,
    /// Rows skipped as invalid.
    pub skipped_rows: usize,
    /// The rendered report series.
    pub bodies: Arc<Bodies>,
}

/// One watched account.
#[derive(Debug, Clone)]
pub struct AccountState {
    /// A stable key for logs and the landing page: the account id when known up front,
    /// else what the source reads (a file path).
    pub key: String,
    /// The configured display name.
    pub name: Option<String>,
    /// The account id (configured, told by the source, or read from the report's ARNs).
    pub account_id: Option<String>,
    /// The account id given in the configuration, which wins over what reports say.
    pub configured_id: Option<String>,
    /// The last good report, served until a newer one is judged.
    pub report: Option<JudgedReport>,
    /// The last live facts and their rendering.
    pub live: Option<LiveFacts>,
    /// Rendered live facts and account info.
    pub live_bodies: Bodies,
    /// Refresh counters.
    pub stats: RefreshStats,
    /// The last refresh's error, if it failed.
    pub last_error: Option<SourceError>,
    /// When the last refresh attempt started.
    pub last_attempt: Option<DateTime<Utc>>,
    /// Identifies the report behind `report`, to skip re-judging an unchanged one.
    pub(crate) fingerprint: Option<(Option<DateTime<Utc>>, u64)>,
}

impl AccountState {
    /// A fresh account that has not been refreshed yet.
    pub fn new(key: String, account_id: Option<String>, name: Option<String>) -> AccountState {
        AccountState {
            key,
            name,
            configured_id: account_id.clone(),
            account_id,
            report: None,
            live: None,
            live_bodies: Bodies::default(),
            stats: RefreshStats::default(),
            last_error: None,
            last_attempt: None,
            fingerprint: None,
        }
    }

    /// The `account_id` label value.
    pub fn label(&self) -> &str {
        self.account_id.as_deref().unwrap_or("unknown")
    }
}

/// What the server hands out, rendered once per change.
#[derive(Debug, Clone, Default)]
pub struct Published {
    /// The exposition text.
    pub metrics: Bytes,
    /// The same, gzip-compressed.
    pub metrics_gzip: Bytes,
    /// The landing page.
    pub landing: Bytes,
    /// Whether a first report has been judged.
    pub ready: bool,
}

/// The shared state. Accounts are kept by [`AccountState::key`], so that accounts can come
/// and go (a reload, an organization listing) while the others keep their last good data.
#[derive(Debug)]
pub struct Hub {
    /// How to judge and render.
    pub settings: RwLock<Arc<JudgeSettings>>,
    accounts: Mutex<BTreeMap<String, AccountState>>,
    /// Exporter-wide series (configuration reloads, discovery), rendered by their owner.
    exporter: Mutex<Bodies>,
    published: RwLock<Arc<Published>>,
    build: Bodies,
    telemetry_path: String,
}

impl Hub {
    /// A hub watching `accounts` (a later one with the same key replaces an earlier one).
    pub fn new(
        settings: JudgeSettings,
        accounts: Vec<AccountState>,
        telemetry_path: &str,
    ) -> Arc<Hub> {
        let hub = Arc::new(Hub {
            settings: RwLock::new(Arc::new(settings)),
            accounts: Mutex::new(accounts.into_iter().map(|a| (a.key.clone(), a)).collect()),
            exporter: Mutex::new(Bodies::default()),
            published: RwLock::new(Arc::new(Published::default())),
            build: metrics::render_build_info(crate::VERSION, crate::REVISION),
            telemetry_path: telemetry_path.to_owned(),
        });
        hub.publish();
        hub
    }

    /// Starts watching an account, or, when one with its key is already watched, updates its
    /// configured id and name and keeps its data. Republishes.
    pub fn insert(&self, state: AccountState) {
        let mut accounts = self.accounts.lock().expect("accounts lock");
        match accounts.get_mut(&state.key) {
            Some(a) => {
                if a.configured_id != state.configured_id && state.configured_id.is_some() {
                    a.account_id = state.configured_id.clone();
                    a.fingerprint = None;
                }
                a.configured_id = state.configured_id;
                if a.name != state.name {
                    a.name = state.name;
                    a.live_bodies =
                        metrics::render_live(a.label(), a.name.as_deref(), a.live.as_ref());
                }
            }
            None => {
                accounts.insert(state.key.clone(), state);
            }
        }
        self.publish_from(&accounts);
    }

    /// Stops watching an account: its series go. Republishes.
    pub fn remove(&self, key: &str) {
        let mut accounts = self.accounts.lock().expect("accounts lock");
        if accounts.remove(key).is_some() {
            self.publish_from(&accounts);
        }
    }

    /// The keys of the watched accounts, in order.
    pub fn keys(&self) -> Vec<String> {
        self.accounts
            .lock()
            .expect("accounts lock")
            .keys()
            .cloned()
            .collect()
    }

    /// Replaces the judge settings. Every account's next report is judged again (even when
    /// unchanged), so new thresholds or per-user settings show within one refresh.
    pub fn set_judge_settings(&self, settings: JudgeSettings) {
        *self.settings.write().expect("settings lock") = Arc::new(settings);
        let mut accounts = self.accounts.lock().expect("accounts lock");
        for a in accounts.values_mut() {
            a.fingerprint = None;
        }
    }

    /// Replaces the exporter-wide series and republishes.
    pub fn set_exporter_series(&self, bodies: Bodies) {
        *self.exporter.lock().expect("exporter series lock") = bodies;
        self.publish();
    }

    /// The last published state.
    pub fn published(&self) -> Arc<Published> {
        self.published.read().expect("published lock").clone()
    }

    /// The current judge settings.
    pub fn judge_settings(&self) -> Arc<JudgeSettings> {
        self.settings.read().expect("settings lock").clone()
    }

    /// Reads one account's state; `None` when it is no longer watched.
    pub fn account<T>(&self, key: &str, f: impl FnOnce(&AccountState) -> T) -> Option<T> {
        self.accounts.lock().expect("accounts lock").get(key).map(f)
    }

    /// Changes one account's state and republishes; nothing when it is no longer watched (a
    /// refresh that ends after its account was removed).
    pub fn update(&self, key: &str, f: impl FnOnce(&mut AccountState)) {
        let mut accounts = self.accounts.lock().expect("accounts lock");
        if let Some(a) = accounts.get_mut(key) {
            f(a);
            self.publish_from(&accounts);
        }
    }

    /// A copy of every account's state, in key order.
    pub fn accounts(&self) -> Vec<AccountState> {
        self.accounts
            .lock()
            .expect("accounts lock")
            .values()
            .cloned()
            .collect()
    }

    /// Re-renders everything from the current state.
    pub fn publish(&self) {
        let accounts = self.accounts.lock().expect("accounts lock");
        self.publish_from(&accounts);
    }

    fn publish_from(&self, accounts: &BTreeMap<String, AccountState>) {
        let accounts: Vec<&AccountState> = accounts.values().collect();
        let stats: Vec<Bodies> = accounts
            .iter()
            .map(|a| metrics::render_refresh_stats(a.label(), &a.stats))
            .collect();
        let exporter = self.exporter.lock().expect("exporter series lock").clone();
        let mut parts: Vec<&Bodies> = vec![&self.build, &exporter];
        for (a, s) in accounts.iter().zip(&stats) {
            if let Some(r) = &a.report {
                parts.push(r.bodies.as_ref());
            }
            parts.push(&a.live_bodies);
            parts.push(s);
        }
        let text = metrics::compose(parts.iter().copied());
        let mut gz = GzEncoder::new(
            Vec::with_capacity(text.len() / 8),
            flate2::Compression::default(),
        );
        gz.write_all(text.as_bytes())
            .and_then(|_| gz.finish())
            .map(|gzip| {
                let published = Published {
                    metrics_gzip: Bytes::from(gzip),
                    metrics: Bytes::from(text),
                    landing: Bytes::from(landing::render(
                        &accounts,
                        &self.telemetry_path,
                        Utc::now(),
                    )),
                    ready: accounts.iter().any(|a| a.report.is_some()),
                };
                *self.published.write().expect("published lock") = Arc::new(published);
            })
            .expect("gzip into memory cannot fail");
    }
}
