//! Times refreshing many accounts through assumed roles, as the exporter does, at a chosen
//! concurrency: one client per account built once, refreshes gated by a semaphore, each
//! outcome published to the store. Run by `benches/many-accounts.sh` against moto; works
//! against anything `AWS_ENDPOINT_URL` points at.
//!
//! Usage: refresh_many_accounts ACCOUNT_IDS_FILE CONCURRENCY [ROUNDS]
//!
//! Prints one line per round: wall time, accounts refreshed successfully, and the process's
//! peak resident set size so far (VmHWM).

use iam_credentials_exporter::collect::aws::{AssumeRole, AwsEnv, AwsSettings, AwsSource, Connect};
use iam_credentials_exporter::collect::refresh::refresh_once;
use iam_credentials_exporter::collect::ReportSource;
use iam_credentials_exporter::state::{AccountState, JudgeSettings, Store};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::Semaphore;

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(file), Some(concurrency)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: refresh_many_accounts ACCOUNT_IDS_FILE CONCURRENCY [ROUNDS]");
        std::process::exit(2);
    };
    let concurrency: usize = concurrency.parse().expect("CONCURRENCY is a number");
    let rounds: usize = args
        .get(3)
        .map_or(2, |r| r.parse().expect("ROUNDS is a number"));
    let ids: Vec<String> = std::fs::read_to_string(file)
        .expect("reading the account ids")
        .split_whitespace()
        .map(str::to_owned)
        .collect();

    let settings = AwsSettings::default();
    let env = AwsEnv::load(&Connect::default(), &settings).await;
    let mut sources: Vec<(String, Arc<dyn ReportSource>)> = Vec::with_capacity(ids.len());
    for id in &ids {
        let assumed = env
            .assume(&AssumeRole {
                arn: format!("arn:aws:iam::{id}:role/iam-credentials-exporter"),
                external_id: None,
                session_name: "benchmark".to_owned(),
            })
            .await;
        sources.push((id.clone(), Arc::new(AwsSource::new(&assumed, settings))));
    }
    let store = Store::new(
        JudgeSettings::default(),
        ids.iter()
            .map(|id| AccountState::new(id.clone(), Some(id.clone()), None))
            .collect(),
    );
    let limit = Arc::new(Semaphore::new(concurrency));
    for round in 1..=rounds {
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for (key, source) in &sources {
            let (store, key, source, limit) =
                (store.clone(), key.clone(), source.clone(), limit.clone());
            tasks.spawn(async move {
                let _permit = limit.acquire_owned().await.expect("semaphore open");
                refresh_once(&store, &key, source.as_ref()).await;
            });
        }
        while tasks.join_next().await.is_some() {}
        let wall = started.elapsed().as_secs_f64();
        let ok = store
            .accounts()
            .iter()
            .filter(|a| a.stats.last_ok == Some(true))
            .count();
        println!(
            "concurrency={concurrency} round={round} accounts={} ok={ok} wall_seconds={wall:.2} peak_rss_mib={:.1}",
            ids.len(),
            peak_rss_kib() as f64 / 1024.0
        );
    }
}
