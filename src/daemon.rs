//! Wiring the long-running exporter: logging, the listener, the fleet of refresh loops,
//! signals.

use crate::cli::{listen_target, Cli, LogArgs, LogFormat, LogLevel};
use crate::collect::aws;
use crate::collect::fleet::{Fleet, FleetOptions, ReloadHandle};
use crate::collect::history::History;
use crate::config::{self, Settings};
use crate::logging::Promslog;
use crate::serve::web_config::{self, WebState};
use crate::serve::{self, RefusedReload, Reload, ServerSettings};
use crate::BoxFuture;
use anyhow::Context;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Sets up logging to standard error in the chosen format (promslog's keys either way).
pub fn init_logging(log: &LogArgs) {
    let level = match log.level {
        LogLevel::Debug => "debug",
        LogLevel::Info => "info",
        LogLevel::Warn => "warn",
        LogLevel::Error => "error",
    };
    // Our own crate at the chosen level; chatty dependencies one notch quieter.
    let filter = tracing_subscriber::EnvFilter::new(format!(
        "warn,iam_credentials_exporter={level},iam_credentials_exporter::aws={level}"
    ));
    tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .event_format(Promslog {
                    json: matches!(log.format, LogFormat::Json),
                })
                .with_writer(std::io::stderr),
        )
        .init();
}

/// What the fleet starts from: the command line.
pub fn fleet_options(cli: &Cli, history: Option<Arc<History>>) -> FleetOptions {
    let serve = &cli.serve;
    FleetOptions {
        history,
        config_file: serve.config_file.clone(),
        report_file: serve.report_file.clone(),
        flags: cli.flag_settings(),
        explicit: cli.explicit.clone(),
        render: serve.render_options(),
        aws_settings: aws::AwsSettings {
            call_timeout: serve.aws_call_timeout,
            max_attempts: serve.aws_max_attempts,
            round_timeout: serve.refresh_timeout,
            ..aws::AwsSettings::default()
        },
        connect: aws::Connect {
            region: serve.aws_region.clone(),
            ..aws::Connect::default()
        },
    }
}

/// `--config.check`: validates the config file (with the flags, as a start would) and the
/// web config file, and says what start-up would read.
pub fn check_config(cli: &Cli) -> anyhow::Result<String> {
    let Some(path) = &cli.serve.config_file else {
        anyhow::bail!("--config.check needs --config.file");
    };
    let config = config::load(path, chrono::Utc::now().date_naive())?;
    Settings::resolve(&cli.flag_settings(), &cli.explicit, &config)?;
    if let Some(web) = &cli.serve.web_config_file {
        WebState::load(web)?;
    }
    let now = chrono::Utc::now();
    let mut summary = format!(
        "{}: valid ({} listed accounts, organization discovery {}, {} exception(s))",
        path.display(),
        config.accounts.len(),
        if config.organization.is_some() {
            "on"
        } else {
            "off"
        },
        config.exceptions.len(),
    );
    for e in config.exceptions.iter().filter(|e| !e.active(now)) {
        summary.push_str(&format!(
            "\nwarning: exceptions[{}] expired on {}: it no longer mutes its findings; renew it (with a new reason) or remove it",
            e.id, e.expires
        ));
    }
    Ok(summary)
}

/// Reloads both configuration files, for SIGHUP and `POST /-/reload`: the web config here,
/// the config file through the fleet's supervisor. Either refused is a refused reload (the
/// answer names what is wrong, and the reload status goes 0 until a reload succeeds).
#[derive(Clone)]
struct Reloader {
    fleet: ReloadHandle,
    web: Arc<WebState>,
    store: Arc<crate::state::Store>,
}

impl Reload for Reloader {
    fn reload(&self) -> BoxFuture<'_, Result<(), RefusedReload>> {
        Box::pin(async move {
            let web = self.web.clone();
            let mut refused: Vec<String> = Vec::new();
            match tokio::task::spawn_blocking(move || {
                let outcome = web.reload(true);
                web_config::report(&outcome, &web);
                outcome
            })
            .await
            {
                Ok(web_config::Reload::Refused(e)) => refused.push(format!("web config: {e}")),
                Ok(_) => {}
                Err(e) => refused.push(format!("web config: the reload task failed: {e}")),
            }
            if let Err(e) = self.fleet.reload().await {
                refused.push(e.to_string());
            }
            let store = self.store.clone();
            let ok = refused.is_empty();
            if let Err(e) = tokio::task::spawn_blocking(move || store.record_reload(ok)).await {
                tracing::error!(error = %e, "Publishing the reload status failed");
            }
            if refused.is_empty() {
                Ok(())
            } else {
                Err(refused.join("; ").into())
            }
        })
    }
}

/// Runs the exporter until SIGINT or SIGTERM.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let serve = &cli.serve;
    let shutdown = CancellationToken::new();
    let history = match &serve.storage_path {
        Some(dir) => Some(Arc::new(
            History::open(dir).map_err(|e| anyhow::anyhow!("--storage.path: {e}"))?,
        )),
        None => None,
    };
    let fleet = Fleet::new(fleet_options(&cli, history), shutdown.clone())?;
    let web = Arc::new(match &serve.web_config_file {
        Some(path) => WebState::load(path)?,
        None => WebState::plain(),
    });
    // One reload of both files for SIGHUP and POST /-/reload; the web config is also re-read
    // when it changes. Every outcome sets the reload status.
    let store = fleet.store();
    if serve.config_file.is_some() || serve.web_config_file.is_some() {
        store.track_reloads();
    }
    let (reload_tx, reload_rx) = mpsc::channel(4);
    let reloads = Reloader {
        fleet: ReloadHandle::new(reload_tx),
        web: web.clone(),
        store: store.clone(),
    };
    let reloader =
        web_config::spawn_reloader(web.clone(), serve.web_config_reload_interval, store.clone());
    let hangups = spawn_hangup_handler(reloads.clone());
    let address = listen_target(&serve.listen_address);
    let listener = TcpListener::bind(&address)
        .await
        .with_context(|| format!("listening on --web.listen-address={}", serve.listen_address))?;
    let bound = listener.local_addr().context("reading the bound address")?;
    let settings = fleet.settings().clone();
    tracing::info!(
        version = crate::VERSION,
        revision = crate::REVISION,
        address = %bound,
        tls = web.current().tls.is_some(),
        telemetry_path = %serve.telemetry_path,
        config_file = serve.config_file.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
        refresh_interval = %humantime::format_duration(settings.refresh_interval),
        refresh_concurrency = settings.refresh_concurrency,
        shard_index = settings.shard.index,
        shard_count = settings.shard.count,
        "Listening"
    );

    let publisher = store.spawn_publisher(shutdown.clone());
    let supervisor = tokio::spawn(fleet.run(reload_rx));
    let server_settings = ServerSettings {
        telemetry_path: serve.telemetry_path.clone(),
        route_prefix: serve.effective_route_prefix(),
        max_connections: serve.max_connections,
        header_read_timeout: serve.header_read_timeout,
        web,
        reload: Some(Arc::new(reloads)),
        ..ServerSettings::default()
    };
    let server = tokio::spawn(serve::serve(
        listener,
        store,
        server_settings,
        shutdown.clone(),
    ));
    wait_for_signal().await;
    tracing::info!("Shutting down");
    shutdown.cancel();
    hangups.abort();
    supervisor.await.context("the supervisor task failed")?;
    publisher.await.context("the publisher task failed")?;
    server.await.context("the server task failed")??;
    reloader.abort();
    Ok(())
}

/// Turns each SIGHUP into a reload of both configuration files. SIGHUP is handled (and no
/// longer terminates the process) from the moment this returns.
fn spawn_hangup_handler(reloads: Reloader) -> tokio::task::JoinHandle<()> {
    #[cfg(unix)]
    let mut hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "Cannot listen for SIGHUP");
            None
        }
    };
    tokio::spawn(async move {
        #[cfg(unix)]
        while let Some(h) = hangup.as_mut() {
            if h.recv().await.is_none() {
                break;
            }
            tracing::info!("SIGHUP: reloading the configuration files");
            // Each part logs its outcome.
            let _ = Reload::reload(&reloads).await;
        }
        #[cfg(not(unix))]
        let _ = reloads;
    })
}

async fn wait_for_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "Cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "Cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_flags_give_the_default_aws_settings() {
        let cli = Cli::try_parse_args(["x"]).unwrap();
        assert_eq!(
            fleet_options(&cli, None).aws_settings,
            aws::AwsSettings::default()
        );
    }
}
