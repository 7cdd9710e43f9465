//! What many accounts cost the serving side: 1, 10 and 100 accounts of 5,000 users (the IAM
//! maximum per account), per-user series for all users, for failing users only, and off.
//!
//! - `publish`: composing the whole snapshot from the accounts' rendered parts, as the store
//!   does after changes (coalesced to at most once a second while the exporter runs).
//! - `change_one`: one account's refresh brings a new report: render it (compressed as it is
//!   written) and publish. Only that account is rendered; the others' parts are reused.
//! - `render_account`: judging aside, rendering one account's report as text.
//!
//! Exposition sizes (plain and gzip), series counts and the process's resident memory are
//! printed once per configuration.
//!
//! `cargo bench --bench scale` (or `SCALE_ACCOUNTS=1,10 cargo bench --bench scale`)
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use iam_credential_report::expose::{compose, render_report, RenderOptions};
use iam_credential_report::judge::{judge, Thresholds};
use iam_credential_report::report::parse;
use iam_credential_report::synthetic;
use std::hint::black_box;
use std::time::Duration;

#[path = "support/accounts.rs"]
mod accounts;

const USERS: usize = 5_000;

fn account_counts() -> Vec<usize> {
    std::env::var("SCALE_ACCOUNTS")
        .ok()
        .map(|v| {
            v.split(',')
                .map(|n| n.trim().parse().expect("SCALE_ACCOUNTS: numbers"))
                .collect()
        })
        .unwrap_or_else(|| vec![1, 10, 100])
}

/// Resident memory now, in MiB (the peak would carry earlier configurations').
fn rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    kib("VmRSS:") / 1024
}

fn scale(c: &mut Criterion) {
    let mut g = c.benchmark_group("scale");
    g.sample_size(10);
    g.warm_up_time(Duration::from_secs(1));
    for n in account_counts() {
        for mode in ["per_user", "failing", "aggregate"] {
            let render = match mode {
                "per_user" => RenderOptions::all_users(),
                "failing" => RenderOptions {
                    only_failing: true,
                    ..RenderOptions::all_users()
                },
                _ => RenderOptions::default(),
            };
            let store = accounts::store(n, USERS, &render);
            let rss = rss_mib();
            let published = store.published();
            // Counted as a plain scrape reads it, a slice at a time.
            let (mut series, mut line_start) = (0, true);
            for slice in published.metrics_gzip.inflater() {
                for &b in slice.iter() {
                    if line_start && b != b'#' {
                        series += 1;
                    }
                    line_start = b == b'\n';
                }
            }
            println!(
                "scale accounts={n} users_each={USERS} {mode}: series={series} plain_bytes={} gzip_bytes={} rss_mib={rss}",
                published.metrics_gzip.text_len(),
                published.metrics_gzip.len()
            );
            drop(published);
            g.measurement_time(Duration::from_secs(if n >= 100 { 20 } else { 5 }));
            g.bench_function(BenchmarkId::new(format!("publish_{mode}"), n), |b| {
                b.iter(|| store.publish())
            });
            let key = accounts::account_id(0);
            let mut seed = 1_000;
            g.bench_function(BenchmarkId::new(format!("change_one_{mode}"), n), |b| {
                b.iter_batched(
                    || {
                        seed += 1;
                        accounts::report(0, USERS, seed)
                    },
                    |report| {
                        let fresh = accounts::judged(0, report, &render);
                        store.update(&key, |a| *a = fresh)
                    },
                    criterion::BatchSize::LargeInput,
                )
            });
        }
    }
    for per_user in [true, false] {
        let mode = if per_user { "per_user" } else { "aggregate" };
        let opts = RenderOptions {
            per_user,
            ..RenderOptions::default()
        };
        let now = accounts::now();
        let csv = synthetic::report("123456789012", USERS, now, 1);
        let report = parse(csv.as_bytes()).unwrap();
        let assessment = judge(&report, now, &Thresholds::default());
        g.measurement_time(Duration::from_secs(5));
        g.bench_function(
            BenchmarkId::new(format!("render_account_{mode}"), USERS),
            |b| {
                b.iter(|| {
                    let bodies = render_report(
                        "123456789012",
                        black_box(&report),
                        &assessment,
                        Some(now),
                        now,
                        &opts,
                    );
                    compose([&bodies])
                })
            },
        );
    }
    g.finish();
}

criterion_group!(benches, scale);
criterion_main!(benches);
