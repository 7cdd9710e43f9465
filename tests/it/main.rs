//! The exporter's integration tests, in one binary so the crate links once: a module per
//! suite, one helpers module ([`support`]). Run one suite with `cargo test --test it SUITE`
//! (e.g. `cargo test --test it many_accounts`).
//!
//! The pure suites (`properties`, `fuzz_regressions`, `fixtures`, `golden`) test the parser,
//! judge and renderer through the library alone; `golden` also uses `support::tools` to run
//! promtool. The others drive the real binary, moto, Prometheus, Alertmanager and the tools
//! `scripts/install-test-tools` installs.

mod support;

mod alerting_e2e;
mod asff;
mod aws_faults;
mod aws_moto;
mod check_command;
mod config_files;
mod dashboards;
mod diff_command;
mod dockerfile;
mod exceptions;
mod exporter;
mod fixtures;
mod fuzz_regressions;
mod golden;
mod helm;
mod landing;
mod large_snapshot;
mod many_accounts;
mod properties;
mod rules;
mod secure_serving;
mod user_tags;
