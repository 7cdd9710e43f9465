//! Helpers shared by the suites.
//!
//! - [`tools`]: `repo()`, programs from PATH, `run(cmd, dir, timeout)` with a kill-on-drop
//!   guard. Only std: the pure suites (golden files) use it and nothing else from here.
//! - [`loopback`]: a private 127.x.y.z address per server child, so no two tests (in this
//!   process or another) can pick the same address and port.
//! - [`server`]: a server child on such an address, ready only when its own probe answers
//!   while it runs; its output in every failure.
//! - [`moto`], [`prometheus`]: the AWS and Prometheus stand-ins, as such children.
//! - [`exporter`]: the real binary on 127.0.0.1:0 (it binds and reports its own port).
//! - [`http`]: a client that returns every status; [`aws_query`]: IAM's wire format for the
//!   in-process fake IAM endpoints (shared with `examples/fake_iam.rs`, hence its place).
//! - Below: polling against a deadline, reading expositions, the bundled sample report.

pub mod aws_query;
pub mod exporter;
pub mod http;
pub mod loopback;
pub mod moto;
pub mod prometheus;
pub mod server;
pub mod tools;

pub use exporter::{Exporter, BIN};
pub use http::{get, request, Reply};
pub use tools::{repo, tool};

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The bundled sample report.
pub fn sample_report() -> PathBuf {
    repo().join("examples/credential-report.csv")
}

/// The moment the bundled sample report describes: its findings (root used within a day, keys
/// just past 90 days...) hold when it is judged at this time.
pub const SAMPLE_AS_OF: &str = "2026-11-25T06:00:00Z";

/// Writes the sample report to `dest` with every timestamp moved forward by the time since
/// [`SAMPLE_AS_OF`], so that the daemon, which judges at the wall clock, finds what the sample
/// was written to show whatever day the tests run.
pub fn write_fresh_sample_report(dest: &Path) {
    let as_of = chrono::DateTime::parse_from_rfc3339(SAMPLE_AS_OF).unwrap();
    let shift = chrono::Utc::now().signed_duration_since(as_of);
    let timestamp = regex::Regex::new(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(Z|\+00:00)").unwrap();
    let csv = std::fs::read_to_string(sample_report()).unwrap();
    let shifted = timestamp.replace_all(&csv, |c: &regex::Captures| {
        let t = chrono::DateTime::parse_from_rfc3339(&c[0]).unwrap() + shift;
        let text = t.format("%Y-%m-%dT%H:%M:%S").to_string();
        format!("{text}{}", &c[1])
    });
    assert_ne!(shifted, csv, "the sample report has timestamps to move");
    std::fs::write(dest, shifted.as_bytes()).unwrap();
}

/// Polls `probe` until it returns `Some`, or panics naming `what` after `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// The value of the sample line that starts with `series ` exactly (name and labels as
/// written in the exposition).
pub fn sample(exposition: &str, series: &str) -> Option<f64> {
    exposition.lines().find_map(|l| {
        let rest = l.strip_prefix(series)?.strip_prefix(' ')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// Lines that start with `prefix`.
pub fn lines_with<'a>(exposition: &'a str, prefix: &str) -> Vec<&'a str> {
    exposition
        .lines()
        .filter(|l| l.starts_with(prefix))
        .collect()
}

/// Copies `src` to `dst` atomically (write then rename), as a deploy would.
pub fn replace_file(dst: &Path, contents: &[u8]) {
    let tmp = dst.with_extension("tmp");
    std::fs::write(&tmp, contents).unwrap();
    std::fs::rename(&tmp, dst).unwrap();
}
