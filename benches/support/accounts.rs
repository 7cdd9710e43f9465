//! Stores of many judged accounts, for the scale benchmark and the scale load server: `n`
//! accounts, each holding a judged report of `users` generated users, as the refresh loops
//! would leave them after one good round.

use iam_credential_report::account::LiveFacts;
use iam_credential_report::expose::{render_live, render_report, RenderOptions};
use iam_credential_report::judge::{judge, Thresholds};
use iam_credential_report::report::parse;
use iam_credential_report::synthetic;
use iam_credentials_exporter::state::{AccountState, JudgeSettings, JudgedReport, Store};
use std::sync::Arc;

/// When every report is judged: reports are generated relative to it.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    "2026-11-25T00:00:00Z".parse().expect("a timestamp")
}

/// A distinct 12-digit account id per index.
pub fn account_id(i: usize) -> String {
    format!("{:012}", 100_000_000_000 + i)
}

/// One account's state after a good round.
pub fn judged_account(i: usize, users: usize, render: &RenderOptions) -> AccountState {
    let id = account_id(i);
    let csv = synthetic::report(&id, users, now(), i as u64);
    let report = parse(csv.as_bytes()).expect("synthetic reports parse");
    let assessment = judge(&report, now(), &Thresholds::default());
    let bodies = render_report(&id, &report, &assessment, Some(now()), now(), render);
    let live = LiveFacts::default();
    let mut state = AccountState::new(id.clone(), Some(id.clone()), Some(format!("team-{i}")));
    state.live_bodies = render_live(
        &id,
        state.name.as_deref(),
        Some(&live),
        assessment.root.as_ref(),
        &[],
    );
    state.live = Some(live);
    state.report = Some(JudgedReport {
        generated_at: Some(now()),
        evaluated_at: now(),
        users: report.users().count(),
        findings: assessment.findings.len(),
        skipped_rows: report.skipped.len(),
        root: assessment.root,
        muted: Vec::new(),
        bodies: Arc::new(bodies),
    });
    // Kept as the refresh loop keeps it, to judge the unchanged report again.
    state.parsed = Some(Arc::new(report));
    state
}

/// A store of `accounts` accounts of `users` users each, published once.
pub fn store(accounts: usize, users: usize, per_user: bool) -> Arc<Store> {
    let render = RenderOptions {
        per_user,
        ..RenderOptions::default()
    };
    let states = (0..accounts)
        .map(|i| judged_account(i, users, &render))
        .collect();
    Store::new(
        JudgeSettings {
            thresholds: Thresholds::default(),
            render,
            exceptions: Vec::new(),
        },
        states,
    )
}
