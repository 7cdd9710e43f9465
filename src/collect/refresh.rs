//! The background refresh loops: one per account, never overlapping itself, bounded in
//! concurrency across accounts. A failed round keeps the last good report served and records
//! why. Every round judges as of its own `now`, so verdicts age with the clock; only the parse
//! is skipped when the report's bytes are unchanged.

use crate::collect::history::History;
use crate::collect::{FailureReason, Fetched, ReportSource, SourceError};
use crate::state::{
    AccountState, Fingerprint, JudgeSettings, JudgedReport, RecentChange, Store, RECENT_CHANGES,
};
use chrono::{DateTime, Utc};
use iam_credential_report::diff::{diff, Change, Digest, Event};
use iam_credential_report::exceptions::Account as ExceptionAccount;
use strum::EnumCount;

use iam_credential_report::expose;
use iam_credential_report::judge;
use iam_credential_report::report;
use rand::Rng;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{watch, Semaphore};
use tokio_util::sync::CancellationToken;

/// How a refresh loop is paced.
#[derive(Debug, Clone, Copy)]
pub struct Pacing {
    /// Time between the starts of two refreshes.
    pub interval: Duration,
    /// Spread refreshes by up to a tenth of the interval (at most 60 s), so many accounts
    /// or replicas do not call AWS in lockstep.
    pub jitter: bool,
    /// The first refresh starts at a random point of this window: zero (at once) for a
    /// single account, a few seconds for many (the refresh semaphore bounds how many run at
    /// once), so that data comes within seconds of start.
    pub start_window: Duration,
    /// A reload asks this account to refresh at once even when its last refresh succeeded
    /// (report files, cheap to read again); otherwise only a failed or first refresh is
    /// brought forward, so that a reload does not call AWS for every account.
    pub refresh_on_reload: bool,
}

/// The first retry of a failed refresh waits about this long; each further failure doubles
/// it, up to the refresh interval.
pub const RETRY_BASE: Duration = Duration::from_secs(5);

/// The window [`Pacing::start_window`] takes when several accounts start together.
pub const START_WINDOW: Duration = Duration::from_secs(5);

/// The delay before retrying after `failures` failed refreshes in a row (1 for the first):
/// [`RETRY_BASE`] doubling, capped at `interval`, with "equal jitter" (half fixed, half
/// random) so that accounts failing together do not retry in lockstep. `unit` is the random
/// draw in `[0, 1]`.
pub fn retry_delay(failures: u32, interval: Duration, unit: f64) -> Duration {
    let doublings = failures.saturating_sub(1).min(31);
    let cap = RETRY_BASE.saturating_mul(1u32 << doublings).min(interval);
    cap / 2 + (cap / 2).mul_f64(unit.clamp(0.0, 1.0))
}

/// Runs one account's refreshes until `shutdown` is cancelled. The first refresh starts within
/// [`Pacing::start_window`]; a failed one is retried with backoff ([`retry_delay`]). A change
/// of `reloads` (a reload: SIGHUP, `POST /-/reload`, a changed config file) brings the next
/// refresh forward as [`Pacing::refresh_on_reload`] says.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    store: Arc<Store>,
    key: String,
    source: Arc<dyn ReportSource>,
    pacing: Pacing,
    limit: Arc<Semaphore>,
    history: Option<Arc<History>>,
    mut reloads: watch::Receiver<u64>,
    shutdown: CancellationToken,
) {
    let spread = |d: Duration| -> Duration {
        if !pacing.jitter || d.is_zero() {
            return Duration::ZERO;
        }
        let max = (d / 10).min(Duration::from_secs(60));
        rand::rng().random_range(Duration::ZERO..=max)
    };
    let mut delay = if pacing.start_window.is_zero() {
        Duration::ZERO
    } else {
        rand::rng().random_range(Duration::ZERO..=pacing.start_window)
    };
    let mut failures: u32 = 0;
    loop {
        // For the landing page: when this account's next round is due.
        let due = chrono::TimeDelta::from_std(delay)
            .ok()
            .and_then(|d| Utc::now().checked_add_signed(d));
        store.update_unpublished(&key, |a| a.next_refresh = due);
        let deadline = tokio::time::Instant::now() + delay;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep_until(deadline) => break,
                changed = reloads.changed() => {
                    if changed.is_err() {
                        // The fleet is gone; shutdown follows.
                        std::future::pending::<()>().await;
                    }
                    let healthy = store.account(&key, |a| a.stats.last_ok == Some(true));
                    if pacing.refresh_on_reload || healthy != Some(true) {
                        break;
                    }
                }
            }
        }
        let started = Instant::now();
        {
            let _permit = tokio::select! {
                _ = shutdown.cancelled() => return,
                p = limit.clone().acquire_owned() => p.expect("the refresh semaphore is never closed"),
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = refresh(&store, &key, source.as_ref(), history.as_ref()) => {}
            }
        }
        let ok = store.account(&key, |a| a.stats.last_ok == Some(true));
        delay = if ok.unwrap_or(true) {
            failures = 0;
            pacing.interval.saturating_sub(started.elapsed()) + spread(pacing.interval)
        } else {
            // A failed refresh (a file not there yet, credentials not ready, AWS throttling)
            // is tried again soon, backing off, rather than a whole interval later.
            failures = failures.saturating_add(1);
            retry_delay(failures, pacing.interval, rand::rng().random::<f64>())
        };
    }
}

/// One refresh of the account `key`: fetch; parse when the bytes changed; vouch for the report;
/// judge it as of now (verdicts age with the clock, so an unchanged report is judged again);
/// publish. An account removed meanwhile is left alone.
pub async fn refresh_once(store: &Store, key: &str, source: &dyn ReportSource) {
    refresh(store, key, source, None).await
}

/// [`refresh_once`], comparing a new report with the previous one: in memory, or, after a
/// restart, the digest `history` kept (`--storage.path`). Each change event is logged here and
/// counted in the same update, so log and counter cannot drift.
pub async fn refresh(
    store: &Store,
    key: &str,
    source: &dyn ReportSource,
    history: Option<&Arc<History>>,
) {
    let attempt = store.now();
    let started = Instant::now();
    // One read of the settings for the whole refresh: a reload meanwhile applies from the next.
    let settings = store.judge_settings();
    let fetched = source.fetch().await;
    let retries = source.retries();
    let outcome = match fetched {
        Ok(f) => judge_fetched(store, key, f, settings.clone(), history.cloned()).await,
        Err(e) => Err(e),
    };
    if let Ok(judged) = &outcome {
        log_changes(store, key, &judged.account_id, &judged.comparison);
    }
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
                comparison,
                live,
                fingerprint,
                account_id,
            }) => {
                a.account_id = Some(account_id);
                let new_bytes = !matches!(comparison, Comparison::Unchanged);
                count_changes(a, comparison, attempt);
                if new_bytes {
                    tracing::info!(
                        account = %a.key,
                        account_id = a.label(),
                        users = report.users,
                        findings = report.findings,
                        skipped_rows = report.skipped_rows,
                        root_in_report = report.root.is_some(),
                        generated_at = report
                            .generated_at
                            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                            .as_deref(),
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
                judge_live(a, &settings, attempt);
                a.stats.last_ok = Some(true);
                a.stats.last_success = Some(store.now());
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

/// What comparing a report with the previous one gave.
enum Comparison {
    /// The bytes did not change: nothing to compare.
    Unchanged,
    /// A new report, and none before it: the baseline changes are counted from. The
    /// counters' totals (0, or as kept by `--storage.path`).
    Baseline([u64; Change::COUNT]),
    /// A new report, what changed since the previous one, and the counters' new totals.
    Changed(Vec<Event>, [u64; Change::COUNT]),
}

/// Logs each change event, one line each, or that a baseline was taken.
fn log_changes(store: &Store, key: &str, account_id: &str, comparison: &Comparison) {
    match comparison {
        Comparison::Unchanged => {}
        Comparison::Baseline(_) => tracing::info!(
            account = %key,
            account_id,
            "Took the first credential report as the baseline; changes are counted from the next one"
        ),
        Comparison::Changed(events, _) => {
            let name = store.account(key, |a| a.name.clone()).flatten();
            for e in events {
                tracing::info!(
                    account = %key,
                    account_id,
                    account_name = name.as_deref(),
                    user = %e.user,
                    change = e.change.name(),
                    key_slot = e.slot.map(u64::from),
                    before = e.before.as_deref(),
                    after = e.after.as_deref(),
                    "Credential change"
                );
            }
        }
    }
}

/// Sets the account's change counters and adds the events to its recent list. The counters
/// exist from the first judged report on.
fn count_changes(a: &mut AccountState, comparison: Comparison, at: DateTime<Utc>) {
    match comparison {
        Comparison::Unchanged => {
            a.stats.changes.get_or_insert([0; Change::COUNT]);
        }
        Comparison::Baseline(totals) => a.stats.changes = Some(totals),
        Comparison::Changed(events, totals) => {
            a.stats.changes = Some(totals);
            add_recent(a, events, at);
        }
    }
}

/// Adds events to the account's recent list, keeping the last [`RECENT_CHANGES`].
fn add_recent(a: &mut AccountState, events: Vec<Event>, at: DateTime<Utc>) {
    let skip = events.len().saturating_sub(RECENT_CHANGES);
    a.recent_changes
        .extend(events.into_iter().skip(skip).map(|e| RecentChange {
            at,
            user: e.user,
            change: e.change,
            slot: e.slot,
        }));
    while a.recent_changes.len() > RECENT_CHANGES {
        a.recent_changes.pop_front();
    }
}

struct Judged {
    report: JudgedReport,
    /// What changed since the previous report.
    comparison: Comparison,
    /// The parsed report, kept so that unchanged bytes are not parsed again.
    parsed: Arc<report::CredentialReport>,
    live: Option<crate::collect::LiveFacts>,
    fingerprint: Fingerprint,
    account_id: String,
}

async fn judge_fetched(
    store: &Store,
    key: &str,
    f: Fetched,
    settings: Arc<JudgeSettings>,
    history: Option<Arc<History>>,
) -> Result<Judged, SourceError> {
    let fingerprint = (f.generated_at, content_hash(&f.csv));
    let (previous, configured_id, last_good_users, name, counters) = store
        .account(key, |a| {
            (
                (a.fingerprint, a.parsed.clone()),
                a.configured_id.clone(),
                a.report.as_ref().map(|r| r.users),
                a.name.clone(),
                a.stats.changes,
            )
        })
        .unwrap_or_default();
    let key = key.to_owned();
    let generated_at = f.generated_at;
    let source_id = f.account_id;
    let live = f.live;
    let now = store.now();
    // Parsing and judging a large report is CPU work: keep it off the async workers.
    tokio::task::spawn_blocking(move || {
        let (previous_fingerprint, previous_parsed) = previous;
        let (parsed, new_bytes) = match &previous_parsed {
            Some(parsed) if previous_fingerprint == Some(fingerprint) => (parsed.clone(), false),
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
        let comparison = if new_bytes {
            compare(
                &key,
                previous_parsed.as_deref(),
                counters,
                &parsed,
                history.as_deref(),
            )
        } else {
            Comparison::Unchanged
        };
        let account_id = configured_id
            .or(source_id)
            .or(parsed.account_id.clone())
            .unwrap_or_else(|| "unknown".to_owned());
        let report = judge_parsed(
            &parsed,
            &settings,
            &account_id,
            name.as_deref(),
            generated_at,
            now,
        );
        Ok(Judged {
            report,
            parsed,
            comparison,
            live,
            fingerprint,
            account_id,
        })
    })
    .await
    .map_err(|e| SourceError::new(FailureReason::Other, format!("judging task failed: {e}")))?
}

/// Judges a parsed report as of `now` with `settings` (thresholds, exceptions) and renders
/// it: what every refresh does, and what a reload does at once to every account's last
/// report.
fn judge_parsed(
    parsed: &report::CredentialReport,
    settings: &JudgeSettings,
    account_id: &str,
    name: Option<&str>,
    generated_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> JudgedReport {
    let mut assessment = judge::judge(parsed, now, &settings.thresholds);
    let account = ExceptionAccount {
        id: account_id,
        name,
    };
    assessment.mute(parsed, &settings.exceptions, &account, now);
    let mut muted = vec![0u64; settings.exceptions.len()];
    for m in &assessment.muted {
        muted[m.exception] += 1;
    }
    let bodies = expose::render_report_packed(
        account_id,
        parsed,
        &assessment,
        generated_at,
        now,
        &settings.render,
    );
    JudgedReport {
        generated_at,
        evaluated_at: now,
        users: parsed.users().count(),
        findings: assessment.findings.len(),
        skipped_rows: parsed.skipped.len(),
        root: assessment.root,
        muted,
        bodies: Arc::new(bodies),
    }
}

/// Judges the account-level checks from the last live facts with `settings`' exceptions,
/// counts what each exception mutes in the account (report and live), and renders the live
/// series again.
fn judge_live(a: &mut AccountState, settings: &JudgeSettings, now: DateTime<Utc>) {
    let account = ExceptionAccount {
        id: a.account_id.as_deref().unwrap_or("unknown"),
        name: a.name.as_deref(),
    };
    a.live_muted = a.live.as_ref().map_or_else(Vec::new, |live| {
        judge::muted_account_checks(
            &judge::judge_account(live, a.root().as_ref()),
            &settings.exceptions,
            &account,
            now,
        )
    });
    let report_muted = a.report.as_ref().map_or(&[][..], |r| &r.muted[..]);
    a.exception_matches = settings
        .exceptions
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let live = a.live_muted.iter().filter(|(_, j)| *j == i).count() as u64;
            (
                e.id.clone(),
                report_muted.get(i).copied().unwrap_or(0) + live,
            )
        })
        .collect();
    a.render_live();
}

/// Judges every account's last good report again, at once, with the store's current judge
/// settings: after a reload changed thresholds, per-user settings or exceptions, the served
/// verdicts follow without waiting for each account's next refresh. An account refreshed
/// meanwhile keeps its newer verdict.
pub fn rejudge(store: &Store) {
    let settings = store.judge_settings();
    let now = store.now();
    for a in store.accounts() {
        let (Some(parsed), Some(report)) = (&a.parsed, &a.report) else {
            continue;
        };
        let judged = judge_parsed(
            parsed,
            &settings,
            a.label(),
            a.name.as_deref(),
            report.generated_at,
            now,
        );
        store.update(&a.key, |current| {
            if current
                .parsed
                .as_ref()
                .is_some_and(|p| Arc::ptr_eq(p, parsed))
            {
                current.report = Some(judged);
                judge_live(current, &settings, now);
            }
        });
    }
}

/// Compares a new report with the previous one (in memory, else the digest `history` kept),
/// adds the events to the counters' totals (`counters` in memory, else as `history` kept them,
/// so that a restart continues them rather than starting again at 0), and keeps the new
/// digest and totals in `history`. A history that cannot be read or written is logged and
/// worked around: a new baseline, never a failed refresh.
fn compare(
    key: &str,
    previous: Option<&report::CredentialReport>,
    counters: Option<[u64; Change::COUNT]>,
    new: &report::CredentialReport,
    history: Option<&History>,
) -> Comparison {
    let digest = Digest::of(new);
    let stored = match (previous, history) {
        (None, Some(h)) => h.load(key).unwrap_or_else(|e| {
            tracing::warn!(account = %key, error = %e, "The stored digest of the last report cannot be read; taking a new baseline");
            None
        }),
        _ => None,
    };
    let mut totals = counters
        .or(stored.as_ref().map(|s| s.changes))
        .unwrap_or([0; Change::COUNT]);
    let mut before = previous.map(Digest::of).or(stored.map(|s| s.digest));
    // A report of another account (a file replaced, other credentials) is not a change of
    // this one: every user would read as deleted or created.
    if let Some(b) = &before {
        if b.account_id.is_some()
            && digest.account_id.is_some()
            && b.account_id != digest.account_id
        {
            tracing::warn!(
                account = %key,
                previous_account_id = b.account_id.as_deref(),
                account_id = digest.account_id.as_deref(),
                "The report is of another account than the previous one; taking it as a new baseline"
            );
            before = None;
            totals = [0; Change::COUNT];
        }
    }
    let events = before.map(|before| diff(&before, &digest));
    for e in events.iter().flatten() {
        totals[e.change.index()] += 1;
    }
    if let Some(h) = history {
        if let Err(e) = h.save(key, &digest, &totals) {
            tracing::warn!(account = %key, error = %e, "Keeping the report's digest failed; a restart will take a new baseline");
        }
    }
    match events {
        Some(events) => Comparison::Changed(events, totals),
        None => Comparison::Baseline(totals),
    }
}

fn content_hash(bytes: &[u8]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{AccountState, JudgeSettings};
    use chrono::{DateTime, TimeDelta, Utc};
    use std::sync::Mutex;

    const HEADER: &str = "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated";
    const KEY: &str = "acct";

    /// A report of one API user whose only key was rotated on 2026-01-01 and used daily.
    fn good_report() -> String {
        format!(
            "{HEADER}\n\
             <root_account>,arn:aws:iam::111122223333:root,2020-01-01T00:00:00Z,false,N/A,N/A,not_supported,false,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A\n\
             ci,arn:aws:iam::111122223333:user/ci,2025-01-01T00:00:00Z,false,N/A,N/A,N/A,true,true,2026-01-01T00:00:00Z,2026-06-01T00:00:00Z,us-east-1,s3,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A\n"
        )
    }

    /// Hands out the bytes it is given, like a file re-read at every refresh.
    struct Bytes(Mutex<String>);

    impl ReportSource for Bytes {
        fn fetch(&self) -> crate::BoxFuture<'_, Result<Fetched, SourceError>> {
            let csv = self.0.lock().unwrap().clone().into_bytes();
            Box::pin(async move {
                Ok(Fetched {
                    csv,
                    generated_at: None,
                    account_id: None,
                    live: None,
                })
            })
        }
    }

    fn rig(csv: String) -> (Arc<Store>, Bytes, Arc<Mutex<DateTime<Utc>>>) {
        let store = Store::new(
            JudgeSettings::default(),
            vec![AccountState::new(KEY.to_owned(), None, None)],
        );
        let now = Arc::new(Mutex::new("2026-01-02T00:00:00Z".parse().unwrap()));
        let clock = now.clone();
        store.set_clock(Arc::new(move || *clock.lock().unwrap()));
        (store, Bytes(Mutex::new(csv)), now)
    }

    fn metrics(store: &Store) -> String {
        store.published().text()
    }

    fn has(store: &Store, line: &str) -> bool {
        metrics(store).lines().any(|l| l == line)
    }

    #[tokio::test]
    async fn an_unchanged_report_is_judged_again_as_the_clock_moves_but_not_parsed_again() {
        let (store, source, now) = rig(good_report());
        refresh_once(&store, KEY, &source).await;
        let rotation =
            r#"aws_iam_check_failures{account_id="111122223333",check="access_key_not_rotated"}"#;
        assert!(has(&store, &format!("{rotation} 0")), "{}", metrics(&store));
        let first = store.account(KEY, |a| a.parsed.clone()).unwrap().unwrap();

        // The same bytes, 91 days after the key's rotation: the key is now too old.
        *now.lock().unwrap() = "2026-04-02T00:00:01Z".parse().unwrap();
        refresh_once(&store, KEY, &source).await;
        assert!(has(&store, &format!("{rotation} 1")), "{}", metrics(&store));
        let second = store.account(KEY, |a| a.parsed.clone()).unwrap().unwrap();
        assert!(
            Arc::ptr_eq(&first, &second),
            "unchanged bytes were parsed again"
        );
        let evaluated = store.account(KEY, |a| a.report.as_ref().unwrap().evaluated_at);
        assert_eq!(evaluated, Some("2026-04-02T00:00:01Z".parse().unwrap()));
    }

    #[tokio::test]
    async fn a_report_that_lost_its_rows_fails_as_invalid_report_and_the_last_good_one_stays() {
        let (store, source, now) = rig(good_report());
        refresh_once(&store, KEY, &source).await;
        let users = r#"aws_iam_users{account_id="111122223333"} 1"#;
        assert!(has(&store, users));

        for broken in [
            // Every row of the wrong width.
            format!("{HEADER}\na,b,c\nd,e,f\ng,h,i\nj,k,l\nm,n,o\n"),
            // No rows at all, while the last good report had a user.
            format!("{HEADER}\n"),
        ] {
            *source.0.lock().unwrap() = broken;
            *now.lock().unwrap() += TimeDelta::minutes(15);
            refresh_once(&store, KEY, &source).await;
            let (ok, error, failures) = store
                .account(KEY, |a| {
                    (
                        a.stats.last_ok,
                        a.last_error.clone(),
                        a.stats.failures[FailureReason::InvalidReport.index()],
                    )
                })
                .unwrap();
            assert_eq!(ok, Some(false));
            assert_eq!(error.unwrap().reason, FailureReason::InvalidReport);
            assert!(failures >= 1);
            // The last good snapshot is still served, under its account id.
            assert!(has(&store, users), "{}", metrics(&store));
            assert!(has(
                &store,
                r#"iam_credentials_exporter_refresh_success{account_id="111122223333"} 0"#
            ));
            assert!(!metrics(&store).contains("account_id=\"unknown\""));
        }
        assert!(has(
            &store,
            r#"iam_credentials_exporter_refresh_failures_total{account_id="111122223333",reason="invalid_report"} 2"#
        ));

        // A good report again: served, and the failure is over.
        *source.0.lock().unwrap() = good_report();
        refresh_once(&store, KEY, &source).await;
        assert_eq!(store.account(KEY, |a| a.stats.last_ok), Some(Some(true)));
    }

    #[tokio::test]
    async fn root_credentials_and_root_checks_follow_the_root_row() {
        let (store, source, _) = rig(good_report());
        refresh_once(&store, KEY, &source).await;
        // Root without password, keys or certificates: credentials removed, MFA check passes.
        for line in [
            r#"aws_iam_credential_report_root_present{account_id="111122223333"} 1"#,
            r#"aws_iam_root_credentials_present{account_id="111122223333"} 0"#,
            r#"aws_iam_check_failures{account_id="111122223333",check="root_without_mfa"} 0"#,
        ] {
            assert!(has(&store, line), "{line}\n{}", metrics(&store));
        }
        // Without the root row: root is unknown, not passing.
        let without_root: String = good_report()
            .lines()
            .filter(|l| !l.starts_with("<root_account>"))
            .map(|l| format!("{l}\n"))
            .collect();
        *source.0.lock().unwrap() = without_root;
        refresh_once(&store, KEY, &source).await;
        let text = metrics(&store);
        assert!(has(
            &store,
            r#"aws_iam_credential_report_root_present{account_id="111122223333"} 0"#
        ));
        for absent in [
            "aws_iam_root_credentials_present{",
            "check=\"root_without_mfa\"",
            "check=\"root_access_key\"",
            "check=\"root_used_recently\"",
        ] {
            assert!(!text.contains(absent), "{absent}\n{text}");
        }
    }

    fn counter(store: &Store, change: &str) -> Option<u64> {
        let series = format!(
            r#"aws_iam_credential_changes_total{{account_id="111122223333",change="{change}"}} "#
        );
        metrics(store)
            .lines()
            .find_map(|l| l.strip_prefix(&series))
            .map(|v| v.parse().unwrap())
    }

    /// The good report with ci's MFA off and a second key for ci, and a new user dana.
    fn changed_report() -> String {
        let ci = "ci,arn:aws:iam::111122223333:user/ci,2025-01-01T00:00:00Z,false,N/A,N/A,N/A,false,true,2026-01-01T00:00:00Z,2026-06-01T00:00:00Z,us-east-1,s3,true,2026-07-01T00:00:00Z,N/A,N/A,N/A,false,N/A,false,N/A";
        let dana = "dana,arn:aws:iam::111122223333:user/dana,2026-07-01T00:00:00Z,true,N/A,2026-07-01T00:00:00Z,N/A,true,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A";
        good_report()
            .lines()
            .map(|l| if l.starts_with("ci,") { ci } else { l })
            .chain([dana])
            .map(|l| format!("{l}\n"))
            .collect()
    }

    #[tokio::test]
    async fn change_events_are_counted_from_a_baseline() {
        let (store, source, _) = rig(good_report());
        assert_eq!(counter(&store, "mfa_disabled"), None);
        refresh_once(&store, KEY, &source).await;
        // The baseline: every change present, at 0.
        for &c in Change::ALL {
            assert_eq!(counter(&store, c.name()), Some(0), "{}", c.name());
        }
        // The same bytes again: still nothing.
        refresh_once(&store, KEY, &source).await;
        assert_eq!(counter(&store, "mfa_disabled"), Some(0));

        *source.0.lock().unwrap() = changed_report();
        refresh_once(&store, KEY, &source).await;
        assert_eq!(counter(&store, "mfa_disabled"), Some(1));
        assert_eq!(counter(&store, "access_key_created"), Some(1));
        assert_eq!(counter(&store, "user_created"), Some(1));
        assert_eq!(counter(&store, "user_deleted"), Some(0));
        let recent: Vec<(String, Change, Option<u8>)> = store
            .account(KEY, |a| {
                a.recent_changes
                    .iter()
                    .map(|c| (c.user.clone(), c.change, c.slot))
                    .collect()
            })
            .unwrap();
        assert_eq!(
            recent,
            [
                ("ci".to_owned(), Change::MfaDisabled, None),
                ("ci".to_owned(), Change::AccessKeyCreated, Some(2)),
                ("dana".to_owned(), Change::UserCreated, None),
            ]
        );

        // A refused report is no report: no changes from it, and the next good report is
        // compared with the last good one.
        *source.0.lock().unwrap() = format!("{HEADER}\na,b,c\n");
        refresh_once(&store, KEY, &source).await;
        *source.0.lock().unwrap() = good_report();
        refresh_once(&store, KEY, &source).await;
        assert_eq!(counter(&store, "mfa_enabled"), Some(1));
        assert_eq!(counter(&store, "access_key_deleted"), Some(1));
        assert_eq!(counter(&store, "user_deleted"), Some(1));
    }

    #[tokio::test]
    async fn the_recent_list_keeps_the_last_twenty() {
        let (store, source, _) = rig(good_report());
        refresh_once(&store, KEY, &source).await;
        let many: String = std::iter::once(good_report())
            .chain((0..30).map(|i| {
                format!("u{i:02},arn:aws:iam::111122223333:user/u{i:02},2026-07-01T00:00:00Z,false,N/A,N/A,N/A,true,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A\n")
            }))
            .collect();
        *source.0.lock().unwrap() = many;
        refresh_once(&store, KEY, &source).await;
        assert_eq!(counter(&store, "user_created"), Some(30));
        let users: Vec<String> = store
            .account(KEY, |a| {
                a.recent_changes.iter().map(|c| c.user.clone()).collect()
            })
            .unwrap();
        assert_eq!(users.len(), RECENT_CHANGES);
        assert_eq!(users.first().map(String::as_str), Some("u10"));
        assert_eq!(users.last().map(String::as_str), Some("u29"));
    }

    #[tokio::test]
    async fn with_storage_a_restart_compares_with_the_report_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let history = Arc::new(History::open(dir.path()).unwrap());
        let (store, source, _) = rig(good_report());
        refresh(&store, KEY, &source, Some(&history)).await;
        assert!(history.load(KEY).unwrap().is_some());

        // A new process: a new store, the report changed while it was down.
        let (store, source, _) = rig(changed_report());
        refresh(&store, KEY, &source, Some(&history)).await;
        assert_eq!(counter(&store, "mfa_disabled"), Some(1));
        assert_eq!(counter(&store, "user_created"), Some(1));

        // A third process: the counters continue from the stored totals rather than from 0,
        // so Prometheus's increase() sees the step even across the restart.
        let (store, source, _) = rig(good_report());
        refresh(&store, KEY, &source, Some(&history)).await;
        assert_eq!(counter(&store, "mfa_enabled"), Some(1));
        assert_eq!(counter(&store, "mfa_disabled"), Some(1));
        assert_eq!(counter(&store, "user_created"), Some(1));
        assert_eq!(counter(&store, "user_deleted"), Some(1));

        // A corrupt file is a new baseline, not a failure.
        std::fs::write(history.path(KEY), b"\x00garbage").unwrap();
        let (store, source, _) = rig(good_report());
        refresh(&store, KEY, &source, Some(&history)).await;
        assert_eq!(store.account(KEY, |a| a.stats.last_ok), Some(Some(true)));
        assert_eq!(counter(&store, "mfa_enabled"), Some(0));
        // ...and it is replaced by a good one.
        assert!(history.load(KEY).unwrap().is_some());

        // Without storage nothing is written and a restart is a baseline.
        let (store, source, _) = rig(changed_report());
        refresh_once(&store, KEY, &source).await;
        assert_eq!(counter(&store, "mfa_disabled"), Some(0));
    }

    #[tokio::test]
    async fn an_exception_mutes_until_its_expiry_day_ends_then_the_finding_comes_back() {
        use iam_credential_report::exceptions::{Exception, UserMatch};
        let (store, source, now) = rig(good_report());
        store.set_judge_settings(JudgeSettings {
            render: iam_credential_report::expose::RenderOptions::all_users(),
            exceptions: vec![Exception {
                id: "ci-key".into(),
                checks: vec!["access_key_not_rotated".into()],
                users: vec![UserMatch::parse("^c").unwrap()],
                accounts: vec!["111122223333".into()],
                reason: "vendor migration".into(),
                owner: "platform".into(),
                expires: "2026-05-01".parse().unwrap(),
            }],
            ..JudgeSettings::default()
        });
        let rotation = r#"{account_id="111122223333",check="access_key_not_rotated"}"#;
        // 91 days after the key's rotation, within the exception: muted.
        *now.lock().unwrap() = "2026-04-02T00:00:01Z".parse().unwrap();
        refresh_once(&store, KEY, &source).await;
        for line in [
            format!("aws_iam_check_failures{rotation} 0"),
            format!("aws_iam_check_muted{rotation} 1"),
            r#"aws_iam_user_check_muted{account_id="111122223333",check="access_key_not_rotated",exception="ci-key",user="ci"} 1"#.to_owned(),
            r#"aws_iam_exception_matches{exception="ci-key"} 1"#.to_owned(),
            r#"aws_iam_exception_expiry_timestamp_seconds{exception="ci-key",owner="platform"} 1777680000"#.to_owned(),
            r#"aws_iam_exception_info{exception="ci-key",owner="platform",reason="vendor migration"} 1"#.to_owned(),
        ] {
            assert!(has(&store, &line), "{line}\n{}", metrics(&store));
        }
        assert!(!metrics(&store).contains(
            r#"aws_iam_user_check_failed{account_id="111122223333",check="access_key_not_rotated""#
        ));
        // The last second of its expiry day: still muted.
        *now.lock().unwrap() = "2026-05-01T23:59:59Z".parse().unwrap();
        refresh_once(&store, KEY, &source).await;
        assert!(has(&store, &format!("aws_iam_check_muted{rotation} 1")));
        // From the next midnight UTC: the finding is back and the exception matches nothing.
        *now.lock().unwrap() = "2026-05-02T00:00:00Z".parse().unwrap();
        refresh_once(&store, KEY, &source).await;
        for line in [
            format!("aws_iam_check_failures{rotation} 1"),
            format!("aws_iam_check_muted{rotation} 0"),
            r#"aws_iam_user_check_failed{account_id="111122223333",check="access_key_not_rotated",user="ci"} 1"#.to_owned(),
            r#"aws_iam_exception_matches{exception="ci-key"} 0"#.to_owned(),
        ] {
            assert!(has(&store, &line), "{line}\n{}", metrics(&store));
        }
    }

    #[test]
    fn a_failed_refresh_is_retried_from_seconds_doubling_up_to_the_interval() {
        let interval = Duration::from_secs(15 * 60);
        let caps: Vec<u64> = (1..=10)
            .map(|n| retry_delay(n, interval, 1.0).as_secs())
            .collect();
        assert_eq!(caps, [5, 10, 20, 40, 80, 160, 320, 640, 900, 900]);
        // Half of each delay is fixed, half drawn.
        assert_eq!(retry_delay(1, interval, 0.0), Duration::from_millis(2500));
        assert_eq!(retry_delay(u32::MAX, interval, 1.0), interval);
        // A short interval caps even the first retry.
        assert_eq!(
            retry_delay(1, Duration::from_secs(2), 1.0),
            Duration::from_secs(2)
        );
    }
}
