//! The background refresh loops: one per account, never overlapping itself, bounded in
//! concurrency across accounts. A failed round keeps the last good report served and records
//! why. Every round judges as of its own `now`, so verdicts age with the clock; only the parse
//! is skipped when the report's bytes are unchanged.

use crate::collect::{FailureReason, Fetched, ReportSource, SourceError};
use crate::state::{Fingerprint, JudgedReport, Store};
use chrono::Utc;
use iam_credential_report::expose;
use iam_credential_report::judge;
use iam_credential_report::report;
use rand::Rng;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// How a refresh loop is paced.
#[derive(Debug, Clone, Copy)]
pub struct Pacing {
    /// Time between the starts of two refreshes.
    pub interval: Duration,
    /// Spread refreshes by up to a tenth of the interval (at most 60 s), so many accounts
    /// or replicas do not call AWS in lockstep.
    pub jitter: bool,
}

/// Runs one account's refreshes until `shutdown` is cancelled. The first refresh starts at
/// once (after a jittered delay when jitter is on).
pub async fn run(
    store: Arc<Store>,
    key: String,
    source: Arc<dyn ReportSource>,
    pacing: Pacing,
    limit: Arc<Semaphore>,
    shutdown: CancellationToken,
) {
    let spread = |d: Duration| -> Duration {
        if !pacing.jitter || d.is_zero() {
            return Duration::ZERO;
        }
        let max = (d / 10).min(Duration::from_secs(60));
        rand::rng().random_range(Duration::ZERO..=max)
    };
    let mut delay = spread(pacing.interval);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
        let started = Instant::now();
        {
            let _permit = tokio::select! {
                _ = shutdown.cancelled() => return,
                p = limit.clone().acquire_owned() => p.expect("the refresh semaphore is never closed"),
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = refresh_once(&store, &key, source.as_ref()) => {}
            }
        }
        delay = pacing.interval.saturating_sub(started.elapsed()) + spread(pacing.interval);
    }
}

/// One refresh of the account `key`: fetch; parse when the bytes changed; vouch for the report;
/// judge it as of now (verdicts age with the clock, so an unchanged report is judged again);
/// publish. An account removed meanwhile is left alone.
pub async fn refresh_once(store: &Store, key: &str, source: &dyn ReportSource) {
    let attempt = Utc::now();
    let started = Instant::now();
    let fetched = source.fetch().await;
    let retries = source.retries();
    let outcome = match fetched {
        Ok(f) => judge_fetched(store, key, f).await,
        Err(e) => Err(e),
    };
    let duration = started.elapsed().as_secs_f64();
    store.update(key, |a| {
        a.last_attempt = Some(attempt);
        a.stats.refreshes += 1;
        a.stats.last_duration = Some(duration);
        a.stats.retries = retries;
        match outcome {
            Ok(Judged {
                report,
                parsed,
                new_bytes,
                live,
                fingerprint,
                account_id,
            }) => {
                a.account_id = Some(account_id);
                if new_bytes {
                    tracing::info!(
                        account = %a.key,
                        account_id = a.label(),
                        users = report.users,
                        findings = report.findings,
                        skipped_rows = report.skipped_rows,
                        root_in_report = report.root.is_some(),
                        generated_at = ?report.generated_at,
                        duration_seconds = duration,
                        "Judged a new credential report"
                    );
                    if let Some(first) = parsed.skipped.first() {
                        tracing::warn!(
                            account = %a.key,
                            account_id = a.label(),
                            skipped_rows = parsed.skipped.len(),
                            first_line = first.line,
                            first_reason = %first.reason,
                            "Rows of the credential report were skipped; the users in them are not judged"
                        );
                    }
                } else {
                    tracing::debug!(account = %a.key, findings = report.findings, "Judged the unchanged credential report again");
                }
                a.root = report.root;
                a.report = Some(report);
                a.parsed = Some(parsed);
                a.fingerprint = Some(fingerprint);
                if let Some(live) = live {
                    for (api, reason) in &live.failures {
                        tracing::warn!(account = %a.key, api, %reason, "A live account call failed; the report is unaffected");
                        match a.stats.live_failures.iter_mut().find(|(k, _)| *k == (*api, *reason)) {
                            Some((_, n)) => *n += 1,
                            None => a.stats.live_failures.push(((*api, *reason), 1)),
                        }
                    }
                    a.live = Some(live);
                }
                a.live_bodies = expose::render_live(
                    a.label(),
                    a.name.as_deref(),
                    a.live.as_ref(),
                    a.root.as_ref(),
                );
                a.stats.last_ok = Some(true);
                a.stats.last_success = Some(Utc::now());
                a.last_error = None;
            }
            Err(e) => {
                tracing::warn!(
                    account = %a.key,
                    reason = %e.reason,
                    error = %e.message,
                    serving_last_good = a.report.is_some(),
                    "Refresh failed"
                );
                a.stats.failures[e.reason.index()] += 1;
                a.stats.last_ok = Some(false);
                a.last_error = Some(e);
            }
        }
    });
}

struct Judged {
    report: JudgedReport,
    /// The parsed report, kept so that unchanged bytes are not parsed again.
    parsed: Arc<report::CredentialReport>,
    /// Whether the bytes differ from the last good report's.
    new_bytes: bool,
    live: Option<crate::collect::LiveFacts>,
    fingerprint: Fingerprint,
    account_id: String,
}

async fn judge_fetched(store: &Store, key: &str, f: Fetched) -> Result<Judged, SourceError> {
    let fingerprint = (f.generated_at, content_hash(&f.csv));
    let (previous, configured_id, last_good_users) = store
        .account(key, |a| {
            (
                a.fingerprint.zip(a.parsed.clone()),
                a.configured_id.clone(),
                a.report.as_ref().map(|r| r.users),
            )
        })
        .unwrap_or_default();
    let settings = store.judge_settings();
    let generated_at = f.generated_at;
    let source_id = f.account_id;
    let live = f.live;
    // Parsing and judging a large report is CPU work: keep it off the async workers.
    tokio::task::spawn_blocking(move || {
        let (parsed, new_bytes) = match previous {
            Some((fp, parsed)) if fp == fingerprint => (parsed, false),
            _ => {
                let parsed = report::parse(&f.csv).map_err(|e| {
                    SourceError::new(
                        FailureReason::ParseError,
                        format!("parsing the credential report: {e}"),
                    )
                })?;
                (Arc::new(parsed), true)
            }
        };
        // Fail closed: a report that lost its rows is no verdict; the last good one stays.
        if let Some(why) = parsed.doubt(last_good_users) {
            return Err(SourceError::new(FailureReason::InvalidReport, why));
        }
        let account_id = configured_id
            .or(source_id)
            .or(parsed.account_id.clone())
            .unwrap_or_else(|| "unknown".to_owned());
        let now = Utc::now();
        let assessment = judge::judge(&parsed, now, &settings.thresholds);
        let bodies = expose::render_report(
            &account_id,
            &parsed,
            &assessment,
            generated_at,
            now,
            &settings.render,
        );
        Ok(Judged {
            report: JudgedReport {
                generated_at,
                evaluated_at: now,
                users: parsed.users().count(),
                findings: assessment.findings.len(),
                skipped_rows: parsed.skipped.len(),
                root: assessment.root,
                bodies: Arc::new(bodies),
            },
            parsed,
            new_bytes,
            live,
            fingerprint,
            account_id,
        })
    })
    .await
    .map_err(|e| SourceError::new(FailureReason::Other, format!("judging task failed: {e}")))?
}

fn content_hash(bytes: &[u8]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}
