//! The store between collection and serving.
//!
//! Refresh loops write each account's outcome here; a change composes the exposition again and
//! swaps it in atomically. The HTTP server only reads: the last [`Published`]
//! exposition (a scrape never parses, judges or calls AWS) and, for the landing page, a copy
//! of the accounts' state. Where it stops: no I/O but the publisher's task; what to read and
//! when belongs to `collect`, how to answer HTTP to `serve`.
//!
//! What is kept is what serving needs: each account's report series are rendered once per
//! refresh, compressed as they are written ([`expose::packed`]), and only the compressed form is
//! kept. Publishing lays the accounts' compressed pieces out under one header per family and
//! compresses only the small series (counts, live facts, refresh statistics) again, so it
//! costs little whatever the size of the unchanged accounts. The gzip stream is what
//! Prometheus asks for; plain text is inflated from it as a scrape reads it.
//!
//! While the task of [`Store::spawn_publisher`] runs, changes are coalesced: it publishes at
//! most once per [`MIN_PUBLISH_INTERVAL`], or per twice the last publish's time when that is
//! longer. Without it (tests, benchmarks), every change publishes at once.

use chrono::{DateTime, Utc};
use iam_credential_report::account::{LiveFacts, SourceError};
use iam_credential_report::diff::Change;
use iam_credential_report::exceptions::Exception;
use iam_credential_report::expose::{
    self, Bodies, Gzipped, Packed, Part, RefreshStats, RenderOptions,
};
use iam_credential_report::judge::{AccountCheck, RootFacts, Thresholds};
use iam_credential_report::report::CredentialReport;
use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The shortest time between two publishes while [`Store::spawn_publisher`]'s task runs.
pub const MIN_PUBLISH_INTERVAL: Duration = Duration::from_millis(100);

/// How reports are judged and rendered.
#[derive(Debug, Clone, Default)]
pub struct JudgeSettings {
    /// Check thresholds.
    pub thresholds: Thresholds,
    /// Per-user series and filters.
    pub render: RenderOptions,
    /// Exceptions, in file order.
    pub exceptions: Vec<Exception>,
}

/// What the landing page and logs say about the last judged report of an account.
#[derive(Debug, Clone)]
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
    /// What the report says of root; `None` when it has no root row.
    pub root: Option<RootFacts>,
    /// Findings each exception mutes, by its position in the judge settings' list.
    pub muted: Vec<u64>,
    /// The rendered report series, their big families compressed.
    pub bodies: Arc<Packed>,
}

/// How many change events the landing page shows per account.
pub const RECENT_CHANGES: usize = 20;

/// A change event, as the landing page lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecentChange {
    /// When the refresh that saw it ran.
    pub at: DateTime<Utc>,
    /// The user (`<root_account>` for root).
    pub user: String,
    /// What happened.
    pub change: Change,
    /// The key slot, for key events.
    pub slot: Option<u8>,
}

/// Identifies a report's bytes (its generation time and a hash), to skip parsing an
/// unchanged one.
pub(crate) type Fingerprint = (Option<DateTime<Utc>>, u64);

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
    /// The last good report's verdict, served until a newer one is judged.
    pub report: Option<JudgedReport>,
    /// The last good report, parsed: judged again at every refresh while its bytes stay the
    /// same.
    pub parsed: Option<Arc<CredentialReport>>,
    /// The last [`RECENT_CHANGES`] change events, oldest first.
    pub recent_changes: VecDeque<RecentChange>,
    /// The failing account-level checks an exception mutes, with the exception's position.
    pub live_muted: Vec<(AccountCheck, usize)>,
    /// Findings each exception (by id) mutes in this account now.
    pub exception_matches: Vec<(String, u64)>,
    /// The last live facts and their rendering.
    pub live: Option<LiveFacts>,
    /// Rendered live facts and account info (shared with the published snapshot).
    pub live_bodies: Arc<Bodies>,
    /// Refresh counters.
    pub stats: RefreshStats,
    /// The last refresh's error, if it failed.
    pub last_error: Option<SourceError>,
    /// When the last refresh attempt started.
    pub last_attempt: Option<DateTime<Utc>>,
    /// When the next refresh is due to start, as the account's refresh loop last planned it;
    /// `None` until its loop starts.
    pub next_refresh: Option<DateTime<Utc>>,
    /// What the account is read from, for the landing page: a report file's path, the
    /// exporter's own credentials, or the role's ARN; `None` until the fleet says.
    pub source: Option<String>,
    /// Identifies the bytes behind `parsed`, to skip parsing an unchanged report.
    pub(crate) fingerprint: Option<Fingerprint>,
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
            parsed: None,
            recent_changes: VecDeque::new(),
            live_muted: Vec::new(),
            exception_matches: Vec::new(),
            live: None,
            live_bodies: Arc::default(),
            stats: RefreshStats::default(),
            last_error: None,
            last_attempt: None,
            next_refresh: None,
            source: None,
            fingerprint: None,
        }
    }

    /// The `account_id` label value.
    pub fn label(&self) -> &str {
        self.account_id.as_deref().unwrap_or("unknown")
    }

    /// What the last good report says of root (for the live root series and checks).
    pub fn root(&self) -> Option<RootFacts> {
        self.report.as_ref().and_then(|r| r.root)
    }

    /// Renders the live facts, account info and account-level checks again from the state.
    pub fn render_live(&mut self) {
        self.live_bodies = Arc::new(expose::render_live(
            self.label(),
            self.name.as_deref(),
            self.live.as_ref(),
            self.root().as_ref(),
            &self.live_muted,
        ));
    }
}

/// What the server hands out, composed once per change.
#[derive(Debug, Clone, Default)]
pub struct Published {
    /// The exposition as one gzip member, in pieces shared with the accounts' state.
    pub metrics_gzip: Gzipped,
    /// Whether a first report has been judged.
    pub ready: bool,
    /// How many times the store has published (this one included).
    pub generation: u64,
}

impl Published {
    /// The exposition text, inflated whole: for tests and tools (a scrape streams it).
    pub fn text(&self) -> String {
        let bytes: Vec<u8> = self.metrics_gzip.inflater().flatten().collect();
        String::from_utf8(bytes).expect("the exposition is UTF-8")
    }
}

/// The shared state. Accounts are kept by [`AccountState::key`], so that accounts can come
/// and go (a reload, an organization listing) while the others keep their last good data.
pub struct Store {
    /// How to judge and render.
    settings: RwLock<Arc<JudgeSettings>>,
    accounts: Mutex<BTreeMap<String, AccountState>>,
    /// Exporter-wide series (configuration reloads, discovery), rendered by their owner.
    exporter: Mutex<Bodies>,
    published: RwLock<Arc<Published>>,
    /// Serialises publishes, so that an older snapshot never replaces a newer one.
    publishing: Mutex<()>,
    /// Set while [`Store::spawn_publisher`]'s task runs: changes then wake it instead of publishing.
    deferred: AtomicBool,
    /// Wakes the publisher.
    changed: Notify,
    build: Bodies,
    /// The time refreshes judge at: the system clock, or a test's.
    clock: RwLock<Clock>,
    /// With a config or web config file: whether the last reload succeeded, and when one
    /// last did.
    reloads: Mutex<Option<(bool, Option<DateTime<Utc>>)>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("accounts", &self.accounts)
            .field("published", &self.published)
            .finish_non_exhaustive()
    }
}

/// Where "now" comes from.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

impl Store {
    /// A store watching `accounts` (a later one with the same key replaces an earlier one).
    pub fn new(settings: JudgeSettings, accounts: Vec<AccountState>) -> Arc<Store> {
        let store = Arc::new(Store {
            settings: RwLock::new(Arc::new(settings)),
            accounts: Mutex::new(accounts.into_iter().map(|a| (a.key.clone(), a)).collect()),
            exporter: Mutex::new(Bodies::default()),
            published: RwLock::new(Arc::new(Published::default())),
            publishing: Mutex::new(()),
            deferred: AtomicBool::new(false),
            changed: Notify::new(),
            build: expose::render_build_info(crate::VERSION, crate::REVISION),
            clock: RwLock::new(Arc::new(Utc::now)),
            reloads: Mutex::new(None),
        });
        store.publish();
        store
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
                    a.render_live();
                }
            }
            None => {
                accounts.insert(state.key.clone(), state);
            }
        }
        drop(accounts);
        self.changed();
    }

    /// Stops watching an account: its series go. Republishes.
    pub fn remove(&self, key: &str) {
        let removed = self
            .accounts
            .lock()
            .expect("accounts lock")
            .remove(key)
            .is_some();
        if removed {
            self.changed();
        }
    }

    /// Replaces the judge settings. Every refresh judges with the settings of its time, so
    /// new thresholds or per-user settings show within one refresh.
    pub fn set_judge_settings(&self, settings: JudgeSettings) {
        *self.settings.write().expect("settings lock") = Arc::new(settings);
    }

    /// Replaces the exporter-wide series and republishes.
    pub fn set_exporter_series(&self, bodies: Bodies) {
        *self.exporter.lock().expect("exporter series lock") = bodies;
        self.changed();
    }

    /// The last published state.
    pub fn published(&self) -> Arc<Published> {
        self.published.read().expect("published lock").clone()
    }

    /// Starts exporting the reload status (there are configuration files to reload): loaded
    /// now, successfully.
    pub fn track_reloads(&self) {
        *self.reloads.lock().expect("reloads lock") = Some((true, Some(Utc::now())));
        self.changed();
    }

    /// Records a reload's outcome (config file and web config together): 0 until the next
    /// successful one, as Prometheus and Alertmanager report theirs. Publishes before it
    /// returns, so that the answer to `POST /-/reload` and the metrics agree: blocking, call it
    /// off the async workers.
    pub fn record_reload(&self, ok: bool) {
        {
            let mut status = self.reloads.lock().expect("reloads lock");
            let last = status.and_then(|(_, t)| t);
            *status = Some((ok, if ok { Some(Utc::now()) } else { last }));
        }
        self.publish();
    }

    /// The time to judge at.
    pub fn now(&self) -> DateTime<Utc> {
        (self.clock.read().expect("clock lock"))()
    }

    /// Judges at the times `clock` gives from now on: tests pass time in rather than wait
    /// for the calendar.
    pub fn set_clock(&self, clock: Clock) {
        *self.clock.write().expect("clock lock") = clock;
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
        if self.update_unpublished(key, f) {
            self.changed();
        }
    }

    /// Changes what only the landing page reads (it renders per request from
    /// [`Store::accounts`]), without republishing the exposition; `false` when the account is
    /// no longer watched.
    pub fn update_unpublished(&self, key: &str, f: impl FnOnce(&mut AccountState)) -> bool {
        match self.accounts.lock().expect("accounts lock").get_mut(key) {
            Some(a) => {
                f(a);
                true
            }
            None => false,
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

    /// After a change: wake the publisher, or publish now when none runs.
    fn changed(&self) {
        if self.deferred.load(Ordering::Acquire) {
            self.changed.notify_one();
        } else {
            self.publish();
        }
    }

    /// Starts publishing changes coalesced, on a task, until `shutdown`: it renders once a
    /// change arrives, then waits [`MIN_PUBLISH_INTERVAL`] (or twice the time the render took,
    /// when longer) before the next. Rendering runs on a blocking thread. From the moment
    /// this returns, changes no longer publish by themselves.
    pub fn spawn_publisher(self: &Arc<Self>, shutdown: CancellationToken) -> JoinHandle<()> {
        self.deferred.store(true, Ordering::Release);
        tokio::spawn(self.clone().publish_changes(shutdown))
    }

    async fn publish_changes(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.changed.notified() => {}
            }
            let started = Instant::now();
            let store = self.clone();
            if let Err(e) = tokio::task::spawn_blocking(move || store.publish()).await {
                tracing::error!(error = %e, "Rendering the metrics failed");
            }
            let pause = MIN_PUBLISH_INTERVAL.max(started.elapsed() * 2);
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(pause) => {}
            }
        }
        self.deferred.store(false, Ordering::Release);
    }

    /// Composes the exposition from the current state. What each account contributes is
    /// taken under the lock (its report's pieces are shared, not copied; its statistics
    /// rendered), and composed after, so refreshes are not held up meanwhile.
    pub fn publish(&self) {
        let _one_at_a_time = self.publishing.lock().expect("publishing lock");
        let generation = self.published().generation + 1;
        struct Contribution {
            report: Option<Arc<Packed>>,
            live: Arc<Bodies>,
            stats: Bodies,
        }
        let (accounts, matches): (Vec<Contribution>, BTreeMap<String, u64>) = {
            let accounts = self.accounts.lock().expect("accounts lock");
            let mut matches = BTreeMap::new();
            for (id, n) in accounts.values().flat_map(|a| &a.exception_matches) {
                *matches.entry(id.clone()).or_default() += n;
            }
            let contributions = accounts
                .values()
                .map(|a| Contribution {
                    report: a.report.as_ref().map(|r| r.bodies.clone()),
                    live: a.live_bodies.clone(),
                    stats: expose::render_refresh_stats(a.label(), &a.stats),
                })
                .collect();
            (contributions, matches)
        };
        let exporter = self.exporter.lock().expect("exporter series lock").clone();
        let exceptions = {
            let settings = self.judge_settings();
            let counts: Vec<u64> = (settings.exceptions.iter())
                .map(|e| matches.get(&e.id).copied().unwrap_or(0))
                .collect();
            expose::render_exceptions(&settings.exceptions, &counts)
        };
        let reloads = match *self.reloads.lock().expect("reloads lock") {
            Some((ok, last)) => expose::render_reload_status(ok, last),
            None => Bodies::default(),
        };
        let mut parts: Vec<Part> = [&self.build, &exporter, &reloads, &exceptions]
            .map(Part::Text)
            .to_vec();
        for a in &accounts {
            if let Some(r) = &a.report {
                parts.push(Part::Packed(r));
            }
            parts.push(Part::Text(&a.live));
            parts.push(Part::Text(&a.stats));
        }
        let published = Published {
            metrics_gzip: expose::compose_gzip(&parts),
            ready: accounts.iter().any(|a| a.report.is_some()),
            generation,
        };
        *self.published.write().expect("published lock") = Arc::new(published);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_of(keys: &[&str]) -> Arc<Store> {
        Store::new(
            JudgeSettings::default(),
            keys.iter()
                .map(|k| AccountState::new((*k).to_owned(), Some((*k).to_owned()), None))
                .collect(),
        )
    }

    fn refreshes(store: &Store) -> Vec<u64> {
        store.accounts().iter().map(|a| a.stats.refreshes).collect()
    }

    #[test]
    fn without_a_publisher_every_change_publishes_at_once() {
        let store = store_of(&["111111111111"]);
        let before = store.published().generation;
        store.update("111111111111", |a| a.stats.refreshes += 1);
        let published = store.published();
        assert_eq!(published.generation, before + 1);
        let text = published.text();
        assert!(text
            .contains("iam_credentials_exporter_refreshes_total{account_id=\"111111111111\"} 1"));
    }

    #[tokio::test]
    async fn a_running_publisher_coalesces_a_burst_of_changes() {
        let keys = ["111111111111", "222222222222", "333333333333"];
        let store = store_of(&keys);
        let shutdown = CancellationToken::new();
        let publisher = store.spawn_publisher(shutdown.clone());
        let before = store.published().generation;
        for _ in 0..100 {
            for k in keys {
                store.update(k, |a| a.stats.refreshes += 1);
            }
        }
        assert_eq!(refreshes(&store), vec![100, 100, 100]);
        let deadline = Instant::now() + Duration::from_secs(30);
        let text = loop {
            let text = store.published().text();
            if keys.iter().all(|k| {
                text.contains(&format!(
                    "iam_credentials_exporter_refreshes_total{{account_id=\"{k}\"}} 100"
                ))
            }) {
                break text;
            }
            assert!(
                Instant::now() < deadline,
                "the last change was never published:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let published = store.published().generation - before;
        assert!(
            (1..=3).contains(&published),
            "300 changes took {published} publishes:\n{text}"
        );
        shutdown.cancel();
        publisher.await.unwrap();
        // Stopped: changes publish at once again.
        let before = store.published().generation;
        store.update(keys[0], |a| a.stats.refreshes += 1);
        assert_eq!(store.published().generation, before + 1);
    }
}
