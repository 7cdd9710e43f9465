//! Stores of many judged accounts, for the scale benchmark and the scale load server: `n`
//! accounts, each holding a judged report of `users` generated users, as the refresh loops
//! would leave them after one good round.

use iam_credential_report::account::LiveFacts;
use iam_credential_report::expose::{render_live, render_report_packed, RenderOptions};
use iam_credential_report::judge::{judge, Thresholds};
use iam_credential_report::report::{parse, CredentialReport};
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

/// One account's state after a good round, its report generated from `seed`.
pub fn judged_account(i: usize, users: usize, render: &RenderOptions, seed: u64) -> AccountState {
    judged(i, report(i, users, seed), render)
}

/// Account `i`'s report of `users` users generated from `seed`, parsed.
pub fn report(i: usize, users: usize, seed: u64) -> CredentialReport {
    let csv = synthetic::report(&account_id(i), users, now(), seed);
    parse(csv.as_bytes()).expect("synthetic reports parse")
}

/// Account `i`'s state after a good round that brought `report`: judged and rendered.
pub fn judged(i: usize, report: CredentialReport, render: &RenderOptions) -> AccountState {
    let id = account_id(i);
    let assessment = judge(&report, now(), &Thresholds::default());
    let bodies = render_report_packed(&id, &report, &assessment, Some(now()), now(), render);
    let live = LiveFacts::default();
    let mut state = AccountState::new(id.clone(), Some(id.clone()), Some(format!("team-{i}")));
    state.live_bodies = Arc::new(render_live(
        &id,
        state.name.as_deref(),
        Some(&live),
        assessment.root.as_ref(),
        &[],
    ));
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
pub fn store(accounts: usize, users: usize, render: &RenderOptions) -> Arc<Store> {
    let states = (0..accounts)
        .map(|i| judged_account(i, users, render, i as u64))
        .collect();
    Store::new(
        JudgeSettings {
            thresholds: Thresholds::default(),
            render: render.clone(),
            exceptions: Vec::new(),
        },
        states,
    )
}
