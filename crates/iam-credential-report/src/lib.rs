//! The AWS IAM credential report: parse it, judge it against the CIS AWS Foundations
//! Benchmark and AWS Security Hub checks, and render the verdict as Prometheus exposition text.
//!
//! Pure: bytes and `now` in, values out. No I/O, no clock, no async runtime, no AWS SDK, so
//! the same code serves a long-running exporter, an offline `check` and a fuzzer.
//!
//! Module map, in the order data flows:
//! - [`report`]: the CSV parser (every layout AWS has written, sentinels, both timestamp
//!   styles); rows it cannot read are counted and skipped, never fatal.
//! - [`arn`]: IAM ARNs, and the account id they carry.
//! - [`account`]: what is known of an account besides its report (the live facts read on
//!   every refresh) and the bounded reasons a refresh fails.
//! - [`catalogue`]: every check's id, title, severity, Security Hub, AWS Config and CIS ids
//!   (each benchmark version) and remediation: the one list that names checks.
//! - [`judge`]: the checks, their thresholds, the account-level verdicts (password policy,
//!   root's MFA kind) and whether the report can be vouched for.
//! - [`diff`]: what changed between two reports of an account, as change events, and the
//!   digest of a report that the comparison needs (small enough to keep and to store).
//! - [`exceptions`]: findings accepted on purpose, with reason, owner and expiry: which
//!   exception mutes a finding at a given time.
//! - [`expose`]: the metrics contract (every family's name, type and help) and the rendering
//!   of verdicts and facts into exposition text.
//! - `synthetic` (feature `synthetic`): generated reports for benchmarks and property tests.
#![forbid(unsafe_code)]

pub mod account;
pub mod arn;
pub mod catalogue;
pub mod diff;
pub mod exceptions;
pub mod expose;
pub mod judge;
pub mod report;
pub mod stream;
#[cfg(any(test, feature = "synthetic"))]
pub mod synthetic;
