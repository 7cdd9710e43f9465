//! A snapshot large enough to be composed of many compressed pieces (see the core crate's
//! `expose::packed`): the real Prometheus, whose scraper reads gzip with Go's reader, takes
//! every sample of it; the gzip body is one member (which `curl --compressed` reads whole) with
//! the same text as the plain body; a plain scrape arrives whole with its `Content-Length`.
use crate::support::prometheus::{Prometheus, Scrape};
use crate::support::*;
use iam_credential_report::synthetic;
use std::io::Read;
use std::time::Duration;

const USERS: usize = 3_000;

/// The sample lines, process series aside (they are read at each scrape).
fn samples(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("process_"))
        .collect()
}

#[test]
fn prometheus_reads_every_sample_of_a_snapshot_in_many_pieces() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.csv");
    let csv = synthetic::report("123456789012", USERS, chrono::Utc::now(), 7);
    std::fs::write(&report, csv).unwrap();
    let exporter = Exporter::start(&["--report.file", report.to_str().unwrap()]);
    let users = r#"aws_iam_users{account_id="123456789012"}"#;
    let plain = exporter.wait_for_sample(users, USERS as f64);

    let gzip = request(
        "GET",
        &exporter.url("/metrics"),
        &[("Accept-Encoding", "gzip")],
    );
    assert_eq!(gzip.status, 200);
    assert_eq!(
        gzip.headers.get("content-encoding").map(String::as_str),
        Some("gzip")
    );
    // One gzip member, nothing after it.
    let mut text = String::new();
    let mut decoder = flate2::read::GzDecoder::new(&gzip.body[..]);
    decoder.read_to_string(&mut text).unwrap();
    let mut rest = Vec::new();
    decoder.into_inner().read_to_end(&mut rest).unwrap();
    assert!(
        rest.is_empty(),
        "{} bytes after the gzip member",
        rest.len()
    );
    assert!(plain.len() > 1_000_000, "{} bytes", plain.len());
    assert!(
        gzip.body.len() * 5 < plain.len(),
        "{} bytes gzip",
        gzip.body.len()
    );
    assert!(
        samples(&text) == samples(&plain),
        "gzip and plain bodies differ"
    );

    // curl, as an operator debugging a scrape would run it.
    let curl = std::process::Command::new("curl")
        .args(["-sS", "--fail", "--compressed", &exporter.url("/metrics")])
        .output()
        .unwrap();
    assert!(
        curl.status.success(),
        "curl --compressed: {}",
        String::from_utf8_lossy(&curl.stderr)
    );
    let curled = String::from_utf8(curl.stdout).unwrap();
    assert!(
        samples(&curled) == samples(&plain),
        "curl --compressed read another text"
    );

    let plain_reply = get(&exporter.url("/metrics"));
    assert_eq!(
        plain_reply
            .headers
            .get("content-length")
            .map(String::as_str),
        Some(plain_reply.body.len().to_string().as_str())
    );

    let prom = Prometheus::start(
        &[Scrape {
            job: "big",
            target: exporter.addr,
        }],
        &[],
    );
    let series = plain.lines().filter(|l| !l.starts_with('#')).count();
    // Every sample of the scrape, process series included, as Prometheus counts them.
    prom.wait_for_data(
        &format!(r#"scrape_samples_scraped{{job="big"}} == {series}"#),
        Duration::from_secs(60),
    );
    let mfa = prom.wait_for_data(
        r#"count(aws_iam_user_mfa_active{job="big"})"#,
        Duration::from_secs(30),
    );
    // Every user and root.
    assert_eq!(mfa[0]["value"][1], (USERS + 1).to_string(), "{mfa:?}");
}
