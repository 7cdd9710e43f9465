//! Serves a store of many judged accounts (5,000 generated users each) with the exporter's own
//! HTTP server, for measuring scrape cost at scale with a load generator
//! (`benches/scale-load.sh`). No refresh runs: the snapshot is published once, as after a
//! round in which every account succeeded.
//!
//! `cargo run --release --example scale_server -- ACCOUNTS PER_USER(true|false) [SECONDS]`
//!
//! Prints `listening on ADDR` once ready; stops by itself after SECONDS (default 600).

use iam_credentials_exporter::serve::{serve, ServerSettings};
use std::io::Write;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[path = "../benches/support/accounts.rs"]
mod accounts;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: usize = args
        .first()
        .map_or(1, |a| a.parse().expect("ACCOUNTS: a number"));
    let per_user: bool = args
        .get(1)
        .is_none_or(|a| a.parse().expect("PER_USER: true or false"));
    let seconds: u64 = args
        .get(2)
        .map_or(600, |a| a.parse().expect("SECONDS: a number"));

    let render = iam_credential_report::expose::RenderOptions {
        per_user,
        ..Default::default()
    };
    let store = tokio::task::spawn_blocking(move || accounts::store(n, 5_000, &render))
        .await
        .expect("building the store");
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    println!("listening on {}", listener.local_addr()?);
    std::io::stdout().flush()?;

    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        stop.cancel();
    });
    serve(listener, store, ServerSettings::default(), shutdown).await
}
