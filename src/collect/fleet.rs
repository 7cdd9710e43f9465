//! The accounts being read, and how that set changes while the exporter runs.
//!
//! One supervisor task owns the set. It starts a refresh loop per account (all sharing one
//! semaphore of `refresh.concurrency` permits), lists the organization every refresh interval
//! when discovery is configured, and re-reads the config file when asked (SIGHUP, POST
//! /-/reload). Each change is a diff: accounts that appear get a loop, accounts that go away
//! lose theirs and their series, and the others keep running untouched, with their last good
//! data. A config file that cannot be used is refused and the running one kept; a failed
//! organization listing keeps the accounts of the last good one.
//!
//! What to read is decided by [`config::plan`], which is pure; this module does the I/O.

use crate::collect::aws::{self, AwsEnv, AwsSettings, OrganizationLister};
use crate::collect::file::FileSource;
use crate::collect::history::History;
use crate::collect::refresh::{self, Pacing};
use crate::collect::ReportSource;
use crate::config::{self, Config, ConfigError, OrgAccount, Settings, Watch};
use crate::state::{AccountState, JudgeSettings, Store};
use chrono::Utc;
use iam_credential_report::expose::{self, ExporterStats, RenderOptions};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, watch, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// What the fleet is started from: the command line, before any config file.
#[derive(Debug, Clone)]
pub struct FleetOptions {
    /// `--config.file`.
    pub config_file: Option<PathBuf>,
    /// `--report.file` (then nothing else is read).
    pub report_file: Option<PathBuf>,
    /// The flags' settings.
    pub flags: Settings,
    /// Config keys whose flags were given explicitly (they win over the file).
    pub explicit: BTreeSet<String>,
    /// Per-user series filters (`per_user` comes from [`Settings`]).
    pub render: RenderOptions,
    /// How AWS calls are bounded.
    pub aws_settings: AwsSettings,
    /// Where and as whom to call AWS.
    pub connect: aws::Connect,
    /// `--storage.path`: where each account's last report digest is kept across restarts.
    pub history: Option<Arc<History>>,
}

/// Why a reload was not applied.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The config file was refused; the running configuration stays in force.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The exporter is stopping and no longer reloads.
    #[error("the exporter is shutting down")]
    ShuttingDown,
}

/// A request to re-read the configuration; the answer says whether it was applied.
pub type ReloadRequest = oneshot::Sender<Result<(), ReloadError>>;

/// How the server and the signal handler ask for a reload: of the config file (through the
/// supervisor, which answers) and of the web configuration (its reloader is woken).
#[derive(Debug, Clone)]
pub struct ReloadHandle {
    requests: mpsc::Sender<ReloadRequest>,
}

impl ReloadHandle {
    /// A handle sending to `requests`.
    pub fn new(requests: mpsc::Sender<ReloadRequest>) -> ReloadHandle {
        ReloadHandle { requests }
    }

    /// Re-reads the config file and waits for the outcome.
    pub async fn reload(&self) -> Result<(), ReloadError> {
        let (tx, rx) = oneshot::channel();
        self.requests
            .send(tx)
            .await
            .map_err(|_| ReloadError::ShuttingDown)?;
        rx.await.map_err(|_| ReloadError::ShuttingDown)?
    }
}

struct Running {
    watch: Watch,
    stop: CancellationToken,
}

/// The set of accounts being read. See the module documentation.
pub struct Fleet {
    store: Arc<Store>,
    options: FleetOptions,
    config: Config,
    settings: Settings,
    aws: Option<AwsEnv>,
    limit: Arc<Semaphore>,
    running: BTreeMap<String, Running>,
    loops: JoinSet<()>,
    shutdown: CancellationToken,
    /// The last good organization listing.
    discovered: Vec<OrgAccount>,
    /// Lists the organization; kept, so that its retries add up across listings.
    lister: Option<OrganizationLister>,
    stats: ExporterStats,
    /// Which users' tags the AWS sources read; replaced on reload.
    user_tags: aws::UserTagsHandle,
    /// Counts reloads: each one tells the refresh loops (see [`refresh::run`]).
    reloads: watch::Sender<u64>,
}

/// What the AWS sources read of the users' tags: the keys, with per-user series as the store
/// renders them (the flags' filters, the settings' switch).
fn user_tags(settings: &Settings, render: &RenderOptions) -> aws::UserTags {
    aws::UserTags {
        keys: settings.user_tags.keys().to_vec(),
        users: settings.per_user_metrics.apply(render),
        ..aws::UserTags::default()
    }
}

fn judge_settings(settings: &Settings, render: &RenderOptions, config: &Config) -> JudgeSettings {
    JudgeSettings {
        exceptions: config.exceptions.clone(),
        thresholds: settings.thresholds,
        render: settings.per_user_metrics.apply(render),
    }
}

/// Logs each exception that has expired: it no longer mutes, and should be renewed (with a
/// new reason) or removed.
fn warn_expired(config: &Config) {
    let now = Utc::now();
    for e in config.exceptions.iter().filter(|e| !e.active(now)) {
        tracing::warn!(
            exception = %e.id,
            owner = %e.owner,
            expired = %e.expires,
            "Exception expired: it no longer mutes its findings; renew it or remove it from the config file"
        );
    }
}

/// Combines the flags with the config file and checks the result.
fn resolve(options: &FleetOptions, config: &Config) -> Result<Settings, ConfigError> {
    if let (Some(report), Some(path)) = (&options.report_file, &options.config_file) {
        if !config.accounts.is_empty() || config.organization.is_some() {
            return Err(ConfigError::Invalid {
                path: path.clone(),
                error: config::InvalidConfig::new(format!(
                    "with --report.file ({}) the config file supplies thresholds, metric options and exceptions only: remove accounts and organization, or --report.file",
                    report.display()
                )),
            });
        }
    }
    let (settings, overridden) = Settings::resolve(&options.flags, &options.explicit, config)?;
    if !overridden.is_empty() {
        tracing::info!(
            keys = overridden.join(","),
            "Flags given on the command line or in the environment override these config file keys"
        );
    }
    Ok(settings)
}

impl Fleet {
    /// Loads the config file (a bad one fails start-up) and sets up the store, without
    /// starting anything.
    pub fn new(options: FleetOptions, shutdown: CancellationToken) -> Result<Fleet, ConfigError> {
        let config = match &options.config_file {
            Some(path) => config::load(path, Utc::now().date_naive())?,
            None => Config::default(),
        };
        let settings = resolve(&options, &config)?;
        warn_expired(&config);
        let store = Store::new(
            judge_settings(&settings, &options.render, &config),
            Vec::new(),
        );
        let stats = ExporterStats {
            discovery: config.organization.as_ref().map(|_| (None, None)),
            ..ExporterStats::default()
        };
        Ok(Fleet {
            user_tags: aws::UserTagsHandle::new(user_tags(&settings, &options.render)),
            reloads: watch::Sender::new(0),
            store,
            limit: Arc::new(Semaphore::new(settings.refresh_concurrency)),
            options,
            config,
            settings,
            aws: None,
            running: BTreeMap::new(),
            loops: JoinSet::new(),
            shutdown,
            discovered: Vec::new(),
            lister: None,
            stats,
        })
    }

    /// The shared state the server reads.
    pub fn store(&self) -> Arc<Store> {
        self.store.clone()
    }

    /// The settings in force.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The base AWS configuration, loaded on first use.
    async fn aws(&mut self) -> AwsEnv {
        if let Some(env) = &self.aws {
            return env.clone();
        }
        let env = AwsEnv::load(&self.options.connect, &self.options.aws_settings).await;
        tracing::info!(
            region = env.region().unwrap_or(""),
            endpoint = env.endpoint_url().unwrap_or("default"),
            "Calling AWS with the default credential chain"
        );
        self.aws = Some(env.clone());
        env
    }

    /// What to read now.
    async fn plan(&mut self) -> Vec<Watch> {
        if let Some(path) = &self.options.report_file {
            return vec![Watch::File { path: path.clone() }];
        }
        let partition = config::partition(self.aws().await.region());
        config::plan(
            &self.config,
            &self.discovered,
            self.settings.shard,
            partition,
        )
    }

    async fn source(&mut self, watch: &Watch) -> Arc<dyn ReportSource> {
        match watch {
            Watch::File { path } => Arc::new(FileSource::new(path)),
            Watch::Own { .. } => {
                let env = self.aws().await;
                Arc::new(
                    aws::AwsSource::new(&env, self.options.aws_settings)
                        .with_user_tags(self.user_tags.clone()),
                )
            }
            Watch::Role { role, .. } => {
                let env = self
                    .aws()
                    .await
                    .assume(&aws::AssumeRole {
                        arn: role.arn.clone(),
                        external_id: role.external_id.clone(),
                        session_name: role.session_name.clone(),
                    })
                    .await;
                Arc::new(
                    aws::AwsSource::new(&env, self.options.aws_settings)
                        .with_user_tags(self.user_tags.clone()),
                )
            }
        }
    }

    fn stop(&mut self, key: &str) {
        if let Some(r) = self.running.remove(key) {
            r.stop.cancel();
        }
    }

    /// Starts and stops loops so that exactly the planned accounts are read.
    async fn apply(&mut self) {
        let planned = self.plan().await;
        let planned_count = planned.len();
        let wanted: BTreeSet<String> = planned.iter().map(Watch::key).collect();
        let gone: Vec<String> = self
            .running
            .keys()
            .filter(|k| !wanted.contains(*k))
            .cloned()
            .collect();
        for key in &gone {
            self.stop(key);
            self.store.remove(key);
        }
        let mut added = 0;
        for watch in planned {
            let key = watch.key();
            let same_source = self.running.get(&key).map(|r| match (&r.watch, &watch) {
                (Watch::Role { role: a, .. }, Watch::Role { role: b, .. }) => a == b,
                (a, b) => std::mem::discriminant(a) == std::mem::discriminant(b),
            });
            // For the landing page: where this account's reports come from.
            let source = match &watch {
                Watch::Own { .. } => "the exporter's own AWS credentials".to_owned(),
                Watch::Role { role, .. } => format!("role {}", role.arn),
                Watch::File { path } => format!("file {}", path.display()),
            };
            let mut state = AccountState::new(
                key.clone(),
                watch.account_id().map(str::to_owned),
                watch.name().map(str::to_owned),
            );
            state.source = Some(source.clone());
            self.store.insert(state);
            if same_source == Some(false) {
                // `insert` keeps a watched account's state: tell it of the new source.
                self.store.update(&key, |a| a.source = Some(source));
            }
            match same_source {
                Some(true) => {
                    // Only the display name may have changed: the store has it.
                    if let Some(r) = self.running.get_mut(&key) {
                        r.watch = watch;
                    }
                    continue;
                }
                Some(false) => self.stop(&key),
                None => added += 1,
            }
            let source = self.source(&watch).await;
            let stop = self.shutdown.child_token();
            self.loops.spawn(refresh::run(
                self.store.clone(),
                key.clone(),
                source,
                Pacing {
                    interval: self.settings.refresh_interval,
                    jitter: !matches!(watch, Watch::File { .. }),
                    refresh_on_reload: matches!(watch, Watch::File { .. }),
                    start_window: if planned_count > 1 {
                        refresh::START_WINDOW.min(self.settings.refresh_interval / 10)
                    } else {
                        std::time::Duration::ZERO
                    },
                },
                self.limit.clone(),
                self.options.history.clone(),
                self.reloads.subscribe(),
                stop.clone(),
            ));
            self.running.insert(key, Running { watch, stop });
        }
        if added > 0 || !gone.is_empty() {
            tracing::info!(
                accounts = self.running.len(),
                added,
                removed = gone.len(),
                shard_index = self.settings.shard.index,
                shard_count = self.settings.shard.count,
                "Accounts to read"
            );
        }
        self.stats.accounts = self.running.len();
        self.publish_stats();
    }

    fn publish_stats(&self) {
        self.store
            .set_exporter_series(expose::render_exporter_stats(&self.stats));
    }

    /// Lists the organization and applies the result; a failed listing keeps the last good
    /// one's accounts.
    async fn discover(&mut self) {
        if self.config.organization.is_none() {
            return;
        }
        if self.lister.is_none() {
            let env = self.aws().await;
            self.lister = Some(OrganizationLister::new(&env, self.options.aws_settings));
        }
        let lister = self.lister.as_ref().expect("the lister was just made");
        let last = self.stats.discovery.and_then(|(_, n)| n);
        let listed = lister.active_accounts().await;
        self.stats.discovery_retries = lister.retries();
        match listed {
            Ok(accounts) => {
                tracing::debug!(
                    accounts = accounts.len(),
                    "Listed the organization's accounts"
                );
                self.stats.discovery = Some((Some(true), Some(accounts.len())));
                self.discovered = accounts;
            }
            Err(e) => {
                tracing::warn!(
                    reason = %e.reason,
                    error = %e.message,
                    keeping = self.discovered.len(),
                    "Listing the organization's accounts failed; reading the accounts of the last good listing"
                );
                self.stats.discovery = Some((Some(false), last));
            }
        }
        self.apply().await;
    }

    /// Re-reads the config file. A bad one is refused (logged, counted in the reload metric)
    /// and the running configuration kept. Returns whether the organization settings changed
    /// (then the caller lists the organization again).
    pub async fn reload(&mut self) -> Result<bool, ConfigError> {
        let Some(path) = self.options.config_file.clone() else {
            tracing::info!("Reload: no --config.file to re-read");
            return Ok(false);
        };
        let loaded = config::load(&path, Utc::now().date_naive())
            .and_then(|c| resolve(&self.options, &c).map(|s| (c, s)));
        let (config, settings) = match loaded {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(error = %e, "Config file refused; the running configuration stays in force");
                return Err(e);
            }
        };
        warn_expired(&config);
        let judge_changed = settings.thresholds != self.settings.thresholds
            || settings.per_user_metrics != self.settings.per_user_metrics
            || config.exceptions != self.config.exceptions;
        if judge_changed {
            self.store
                .set_judge_settings(judge_settings(&settings, &self.options.render, &config));
            // Served verdicts follow the new settings now, not at each account's next refresh.
            let store = self.store.clone();
            if let Err(e) = tokio::task::spawn_blocking(move || refresh::rejudge(&store)).await {
                tracing::error!(error = %e, "Judging the last reports with the reloaded settings failed; each account's next refresh will");
            }
        }
        // Sources read the users' tags as the handle says from their next round.
        self.user_tags
            .set(user_tags(&settings, &self.options.render));
        let pacing_changed = settings.refresh_interval != self.settings.refresh_interval
            || settings.refresh_concurrency != self.settings.refresh_concurrency;
        if pacing_changed {
            // Loops read their pacing and semaphore when they start: restart them all.
            let keys: Vec<String> = self.running.keys().cloned().collect();
            for key in keys {
                self.stop(&key);
            }
            self.limit = Arc::new(Semaphore::new(settings.refresh_concurrency));
        }
        let organization_changed = config.organization != self.config.organization;
        if config.organization.is_none() {
            self.discovered.clear();
            self.stats.discovery = None;
        } else if self.stats.discovery.is_none() {
            self.stats.discovery = Some((None, None));
        }
        self.config = config;
        self.settings = settings;
        self.apply().await;
        tracing::info!(
            accounts = self.running.len(),
            refresh_interval = %humantime::format_duration(self.settings.refresh_interval),
            refresh_concurrency = self.settings.refresh_concurrency,
            "Config file reloaded"
        );
        Ok(organization_changed && self.config.organization.is_some())
    }

    /// Starts the planned accounts, then supervises until `shutdown`: reloads on request,
    /// lists the organization every refresh interval. Stops every loop before returning.
    pub async fn run(mut self, mut requests: mpsc::Receiver<ReloadRequest>) {
        self.apply().await;
        let mut next_discovery = Instant::now();
        let shutdown = self.shutdown.clone();
        loop {
            let discovering = self.config.organization.is_some();
            tokio::select! {
                _ = shutdown.cancelled() => break,
                Some(reply) = requests.recv() => {
                    let outcome = self.reload().await;
                    // Whoever asked is told the outcome once it is served, not at the
                    // publisher's next coalesced turn.
                    let store = self.store.clone();
                    if let Err(e) = tokio::task::spawn_blocking(move || store.publish()).await {
                        tracing::error!(error = %e, "Rendering the metrics failed");
                    }
                    if matches!(outcome, Ok(true)) {
                        next_discovery = Instant::now();
                    }
                    if outcome.is_ok() {
                        // Report files are read again, failed accounts retried, now.
                        self.reloads.send_modify(|n| *n += 1);
                    }
                    let _ = reply.send(outcome.map(|_| ()).map_err(ReloadError::from));
                }
                _ = tokio::time::sleep_until(next_discovery), if discovering => {
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = self.discover() => {}
                    }
                    next_discovery = Instant::now() + self.settings.refresh_interval;
                }
                Some(_) = self.loops.join_next(), if !self.loops.is_empty() => {}
            }
        }
        for r in self.running.values() {
            r.stop.cancel();
        }
        while self.loops.join_next().await.is_some() {}
    }
}
