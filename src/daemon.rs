//! Wiring the long-running exporter: logging, the listener, the refresh loops, signals.

use crate::aws;
use crate::cli::{listen_target, LogArgs, LogFormat, LogLevel, ServeArgs, ThresholdArgs};
use crate::hub::{AccountState, Hub, JudgeSettings};
use crate::refresh::{self, Pacing};
use crate::server::{self, ServerSettings};
use crate::source::{FileSource, ReportSource};
use crate::web_config::{self, WebState};
use anyhow::Context;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Sets up logging to standard error in the chosen format.
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
    let registry = tracing_subscriber::registry().with(filter);
    match log.format {
        LogFormat::Logfmt => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .event_format(tracing_logfmt::EventsFormatter::default())
                    .fmt_fields(tracing_logfmt::FieldsFormatter::default())
                    .with_writer(std::io::stderr),
            )
            .init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_writer(std::io::stderr),
            )
            .init(),
    }
}

/// One account to watch, with where its reports come from.
pub struct Target {
    /// The account state to start from.
    pub state: AccountState,
    /// Its report source.
    pub source: Arc<dyn ReportSource>,
    /// Whether to spread its refreshes with jitter.
    pub jitter: bool,
}

/// The targets the command line asks for: the report file, or else the account of the
/// default AWS credential chain.
async fn targets(serve: &ServeArgs) -> anyhow::Result<Vec<Target>> {
    match &serve.report_file {
        Some(path) => Ok(vec![Target {
            state: AccountState::new(path.display().to_string(), None, None),
            source: Arc::new(FileSource::new(path)),
            jitter: false,
        }]),
        None => {
            let settings = serve.aws_settings();
            let connect = aws::Connect {
                region: serve.aws_region.clone(),
                ..aws::Connect::default()
            };
            let env = aws::AwsEnv::load(&connect, &settings).await;
            tracing::info!(
                region = env.region().unwrap_or(""),
                endpoint = env.endpoint_url().unwrap_or("default"),
                "Reading the credential report from AWS IAM with the default credential chain"
            );
            Ok(vec![Target {
                state: AccountState::new("aws".to_owned(), None, None),
                source: Arc::new(aws::AwsSource::new(&env, settings)),
                jitter: true,
            }])
        }
    }
}

/// Runs the exporter until SIGINT or SIGTERM.
pub async fn run(serve: ServeArgs, thresholds: ThresholdArgs) -> anyhow::Result<()> {
    let targets = targets(&serve).await?;
    let web = Arc::new(match &serve.web_config_file {
        Some(path) => WebState::load(path)?,
        None => WebState::plain(),
    });
    let reloader = web_config::spawn_reloader(web.clone(), serve.web_config_reload_interval);
    let address = listen_target(&serve.listen_address);
    let listener = TcpListener::bind(&address)
        .await
        .with_context(|| format!("listening on --web.listen-address={}", serve.listen_address))?;
    let bound = listener.local_addr().context("reading the bound address")?;
    tracing::info!(
        version = crate::VERSION,
        revision = crate::REVISION,
        address = %bound,
        tls = web.current().tls.is_some(),
        telemetry_path = %serve.telemetry_path,
        accounts = targets.len(),
        refresh_interval = %humantime::format_duration(serve.refresh_interval),
        "Listening"
    );

    let settings = JudgeSettings {
        thresholds: thresholds.thresholds(),
        render: serve.render_options(),
    };
    let hub = Hub::new(
        settings,
        targets.iter().map(|t| t.state.clone()).collect(),
        &serve.telemetry_path,
    );
    let shutdown = CancellationToken::new();
    let limit = Arc::new(Semaphore::new(8));
    let mut loops = tokio::task::JoinSet::new();
    for (index, target) in targets.into_iter().enumerate() {
        loops.spawn(refresh::run(
            hub.clone(),
            index,
            target.source,
            Pacing {
                interval: serve.refresh_interval,
                jitter: target.jitter,
            },
            limit.clone(),
            shutdown.clone(),
        ));
    }

    let server_settings = ServerSettings {
        telemetry_path: serve.telemetry_path.clone(),
        max_connections: serve.max_connections,
        header_read_timeout: serve.header_read_timeout,
        web,
        ..ServerSettings::default()
    };
    let server = tokio::spawn(server::serve(
        listener,
        hub,
        server_settings,
        shutdown.clone(),
    ));
    wait_for_signal().await;
    tracing::info!("Shutting down");
    shutdown.cancel();
    while loops.join_next().await.is_some() {}
    server.await.context("the server task failed")??;
    reloader.abort();
    Ok(())
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
