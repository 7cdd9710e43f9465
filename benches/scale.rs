//! What many accounts cost the serving side: 1, 10 and 100 accounts of 5,000 users (the IAM
//! maximum per account), per-user series on and off.
//!
//! - `publish`: one re-render of the whole snapshot (compose every account's bodies, gzip,
//!   landing page). The store does this after every account's refresh, so a round over N
//!   accounts costs N publishes.
//! - `render_account`: judging aside, rendering one account's report after its refresh.
//!
//! Exposition sizes (plain and gzip) and series counts are printed once per configuration.
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

fn scale(c: &mut Criterion) {
    let mut g = c.benchmark_group("scale");
    g.sample_size(10);
    g.warm_up_time(Duration::from_secs(1));
    for n in account_counts() {
        for per_user in [true, false] {
            let mode = if per_user { "per_user" } else { "aggregate" };
            let store = accounts::store(n, USERS, per_user);
            let published = store.published();
            let series = published
                .metrics
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty() && l[0] != b'#')
                .count();
            println!(
                "scale accounts={n} users_each={USERS} {mode}: series={series} plain_bytes={} gzip_bytes={}",
                published.metrics.len(),
                published.metrics_gzip.len()
            );
            drop(published);
            g.measurement_time(Duration::from_secs(if n >= 100 { 60 } else { 10 }));
            g.bench_function(BenchmarkId::new(format!("publish_{mode}"), n), |b| {
                b.iter(|| store.publish())
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
