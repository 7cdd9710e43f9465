//! Writes a synthetic credential report to standard output, for load tests and demos:
//! `cargo run --release --example generate_report -- USERS [ACCOUNT_ID] [SEED]`
use std::io::Write;

fn main() {
    let mut args = std::env::args().skip(1);
    let users = args.next().and_then(|a| a.parse().ok()).unwrap_or(5_000);
    let account = args.next().unwrap_or_else(|| "123456789012".to_owned());
    let seed = args.next().and_then(|a| a.parse().ok()).unwrap_or(42);
    let report =
        iam_credential_report::synthetic::report(&account, users, chrono::Utc::now(), seed);
    std::io::stdout()
        .write_all(report.as_bytes())
        .expect("writing to standard output");
}
