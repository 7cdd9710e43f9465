//! Parse, judge and render generated reports of 100, 5,000 (the IAM users-per-account
//! maximum) and 100,000 rows. Throughput is reported in rows per second.
//!
//! `cargo bench -p iam-credential-report --features synthetic --bench pipeline`
//!
//! Rendering a 5,000-user account with per-user series allocates about 9 MB (the bodies, then
//! the composed text) and frees it every iteration. With glibc's default thresholds that memory
//! goes back to the kernel each time, and the next iteration pays some 2,200 page faults for it
//! (about 4.5 ms on a small VM), which swamps the rendering itself. To time the rendering, keep
//! freed memory in the process:
//!
//! `GLIBC_TUNABLES=glibc.malloc.trim_threshold=134217728:glibc.malloc.mmap_threshold=134217728 cargo bench ...`
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use iam_credential_report::expose::{compose, render_report, RenderOptions};
use iam_credential_report::judge::{judge, Thresholds};
use iam_credential_report::report::parse;
use iam_credential_report::synthetic;
use std::hint::black_box;

const SIZES: [usize; 3] = [100, 5_000, 100_000];

fn pipeline(c: &mut Criterion) {
    let now = "2026-11-25T00:00:00Z".parse().unwrap();
    let thresholds = Thresholds::default();
    let per_user = RenderOptions::all_users();
    let aggregate = RenderOptions::default();
    for &rows in &SIZES {
        let csv = synthetic::report("123456789012", rows, now, 42);
        let report = parse(csv.as_bytes()).unwrap();
        let assessment = judge(&report, now, &thresholds);

        let mut g = c.benchmark_group("pipeline");
        g.throughput(Throughput::Elements(rows as u64));
        if rows >= 100_000 {
            g.sample_size(10);
        }
        g.bench_with_input(BenchmarkId::new("parse", rows), &csv, |b, csv| {
            b.iter(|| parse(black_box(csv.as_bytes())).unwrap())
        });
        g.bench_with_input(BenchmarkId::new("judge", rows), &report, |b, r| {
            b.iter(|| judge(black_box(r), now, &thresholds))
        });
        g.bench_with_input(BenchmarkId::new("parse_and_judge", rows), &csv, |b, csv| {
            b.iter(|| {
                let r = parse(black_box(csv.as_bytes())).unwrap();
                judge(&r, now, &thresholds)
            })
        });
        for (name, opts) in [
            ("render_per_user", &per_user),
            ("render_aggregate", &aggregate),
        ] {
            g.bench_with_input(BenchmarkId::new(name, rows), &(), |b, _| {
                b.iter(|| {
                    let bodies =
                        render_report("123456789012", &report, &assessment, Some(now), now, opts);
                    compose([&bodies])
                })
            });
        }
        // What every refresh of an unchanged report costs: the parse is skipped, the verdict
        // is judged again as of the refresh's time and rendered.
        g.bench_with_input(BenchmarkId::new("rejudge_render", rows), &report, |b, r| {
            b.iter(|| {
                let a = judge(black_box(r), now, &thresholds);
                render_report("123456789012", r, &a, Some(now), now, &per_user)
            })
        });
        g.bench_with_input(
            BenchmarkId::new("parse_judge_render", rows),
            &csv,
            |b, csv| {
                b.iter(|| {
                    let r = parse(black_box(csv.as_bytes())).unwrap();
                    let a = judge(&r, now, &thresholds);
                    let bodies = render_report("123456789012", &r, &a, Some(now), now, &per_user);
                    compose([&bodies])
                })
            },
        );
        g.finish();
    }
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
