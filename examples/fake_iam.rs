//! A fake IAM endpoint for soak tests: answers the six read-only calls the exporter makes
//! (awsQuery over HTTP, as `tests/it/aws_faults.rs` scripts them) with a synthetic report of
//! `USERS` users that it generates again every second, so every refresh of the exporter parses,
//! judges and renders a new report. ListVirtualMFADevices lists a virtual device for 7 users
//! in 10 (none for root), 100 a page as IAM does by default, so a refresh also pages through
//! the device list.
//!
//! Faults on demand, for a share of requests picked at random: `Throttling` (HTTP 400), a
//! `ServiceFailure` (500), a bare 503, or an answer held for `--slow` (past the exporter's
//! `--aws.call-timeout`). Control and counts over the same listener:
//!
//! ```sh
//! cargo run --release --example fake_iam -- [--users 5000] [--slow 3s] [--listen 127.0.0.1:0]
//! curl -s 'http://ADDR/fake/faults?percent=50'   # fail half the requests from now on
//! curl -s 'http://ADDR/fake/stats'               # requests per action and outcome
//! AWS_ENDPOINT_URL=http://ADDR AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x iam-credentials-exporter
//! ```
//!
//! It prints `listening on ADDR` on stdout once bound. Loopback only.

use base64::Engine;
use bytes::Bytes;
use chrono::{SecondsFormat, Utc};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use iam_credential_report::synthetic;

/// The awsQuery wire format, shared with the fake IAM endpoint of the tests.
#[path = "../tests/it/support/aws_query.rs"]
mod aws_query;
use aws_query::xml_response as xml;
use rand::Rng;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::net::TcpListener;

const ACCOUNT: &str = "123456789012";

struct Options {
    users: usize,
    slow: Duration,
    listen: SocketAddr,
}

fn options() -> Options {
    let mut o = Options {
        users: 5_000,
        slow: Duration::from_secs(3),
        listen: "127.0.0.1:0".parse().expect("a socket address"),
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let value = pair.get(1).map(String::as_str).unwrap_or_default();
        match pair[0].as_str() {
            "--users" => o.users = value.parse().expect("--users takes a number"),
            "--slow" => o.slow = humantime::parse_duration(value).expect("--slow takes a duration"),
            "--listen" => o.listen = value.parse().expect("--listen takes an address"),
            other => {
                panic!("unknown argument {other}; see the doc comment of examples/fake_iam.rs")
            }
        }
    }
    assert!(
        o.listen.ip().is_loopback(),
        "the fake endpoint listens on loopback only"
    );
    o
}

/// What the endpoint serves and counts.
struct State {
    /// The `<GetCredentialReportResult>` body of the current report.
    report: RwLock<Arc<String>>,
    /// Users with a virtual MFA device.
    virtual_mfa_users: usize,
    /// Share of requests, in percent, answered with a fault.
    fault_percent: AtomicU32,
    slow: Duration,
    /// Requests per "action outcome".
    counts: Mutex<BTreeMap<String, u64>>,
}

#[derive(Debug, Clone, Copy)]
enum Fault {
    Throttling,
    ServiceFailure,
    Unavailable,
    Slow,
}

impl Fault {
    fn name(self) -> &'static str {
        match self {
            Fault::Throttling => "throttling",
            Fault::ServiceFailure => "service_failure",
            Fault::Unavailable => "unavailable",
            Fault::Slow => "slow",
        }
    }
}

fn report_body(users: usize, seed: u64) -> String {
    let now = Utc::now();
    let csv = synthetic::report(ACCOUNT, users, now, seed);
    format!(
        "<Content>{}</Content><ReportFormat>text/csv</ReportFormat><GeneratedTime>{}</GeneratedTime>",
        base64::engine::general_purpose::STANDARD.encode(csv),
        now.to_rfc3339_opts(SecondsFormat::Secs, true)
    )
}

fn result(action: &str) -> Option<String> {
    Some(match action {
        "GenerateCredentialReport" => "<State>COMPLETE</State>".to_owned(),
        "GetAccountSummary" => "<SummaryMap>\
             <entry><key>Users</key><value>5000</value></entry>\
             <entry><key>AccountMFAEnabled</key><value>1</value></entry>\
             <entry><key>AccountAccessKeysPresent</key><value>0</value></entry>\
             <entry><key>MFADevicesInUse</key><value>3500</value></entry>\
             </SummaryMap>"
            .to_owned(),
        "ListAccountAliases" => {
            "<IsTruncated>false</IsTruncated><AccountAliases><member>soak</member></AccountAliases>"
                .to_owned()
        }
        "GetAccountPasswordPolicy" => "<PasswordPolicy>\
             <MinimumPasswordLength>14</MinimumPasswordLength>\
             <PasswordReusePrevention>24</PasswordReusePrevention>\
             <AllowUsersToChangePassword>true</AllowUsersToChangePassword>\
             <ExpirePasswords>false</ExpirePasswords></PasswordPolicy>"
            .to_owned(),
        _ => return None,
    })
}

/// IAM's page size for ListVirtualMFADevices when the request sets no `MaxItems`.
const DEVICES_PER_PAGE: usize = 100;

/// The `<ListVirtualMFADevicesResult>` body of the page that starts at `marker` (a device
/// index; the first page without one).
fn virtual_mfa_page(users: usize, marker: Option<&str>) -> Option<String> {
    let start = match marker {
        Some(m) => m.parse::<usize>().ok().filter(|&i| i < users)?,
        None => 0,
    };
    let end = users.min(start + DEVICES_PER_PAGE);
    let names: Vec<String> = (start..end).map(|i| format!("soak-user-{i}")).collect();
    let holders: Vec<&str> = names.iter().map(String::as_str).collect();
    let next = (end < users).then(|| end.to_string());
    Some(aws_query::virtual_mfa_devices(
        ACCOUNT,
        &holders,
        next.as_deref(),
    ))
}

fn error(status: u16, code: &str) -> Response<Full<Bytes>> {
    xml(
        status,
        aws_query::error_document(code, &format!("{code} (fake)")),
    )
}

/// The control routes: `/fake/faults?percent=N` and `/fake/stats`.
fn control(state: &State, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let text = match req.uri().path() {
        "/fake/faults" => {
            let percent = req
                .uri()
                .query()
                .and_then(|q| q.strip_prefix("percent="))
                .and_then(|p| p.parse::<u32>().ok())
                .filter(|p| *p <= 100);
            match percent {
                Some(p) => {
                    state.fault_percent.store(p, Ordering::Relaxed);
                    format!("faults {p}%\n")
                }
                None => return xml(400, "percent=0..100\n".into()),
            }
        }
        _ => {
            let counts = state.counts.lock().expect("counts lock");
            counts.iter().map(|(k, v)| format!("{k} {v}\n")).collect()
        }
    };
    Response::new(Full::new(Bytes::from(text)))
}

async fn answer(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.uri().path().starts_with("/fake/") {
        return Ok(control(&state, &req));
    }
    let form = aws_query::form_of(req).await;
    let param = |name: &str| {
        form.iter()
            .find_map(|(k, v)| (k == name).then_some(v.as_str()))
    };
    let action = param("Action").unwrap_or_default().to_owned();

    let fault = {
        let mut rng = rand::rng();
        (rng.random_range(0..100) < state.fault_percent.load(Ordering::Relaxed)).then(|| match rng
            .random_range(0..4)
        {
            0 => Fault::Throttling,
            1 => Fault::ServiceFailure,
            2 => Fault::Unavailable,
            _ => Fault::Slow,
        })
    };
    let outcome = fault.map_or("ok", Fault::name);
    *state
        .counts
        .lock()
        .expect("counts lock")
        .entry(format!("{action} {outcome}"))
        .or_default() += 1;

    let response = match fault {
        Some(Fault::Throttling) => error(400, "Throttling"),
        Some(Fault::ServiceFailure) => error(500, "ServiceFailure"),
        Some(Fault::Unavailable) => xml(503, "Service Unavailable".into()),
        Some(Fault::Slow) | None => {
            if matches!(fault, Some(Fault::Slow)) {
                tokio::time::sleep(state.slow).await;
            }
            let inner = match action.as_str() {
                "GetCredentialReport" => Some(
                    state
                        .report
                        .read()
                        .expect("report lock")
                        .as_str()
                        .to_owned(),
                ),
                "ListVirtualMFADevices" => {
                    match virtual_mfa_page(state.virtual_mfa_users, param("Marker")) {
                        Some(page) => Some(page),
                        None => return Ok(error(400, "InvalidInput")),
                    }
                }
                _ => result(&action),
            };
            match inner {
                Some(inner) => xml(200, aws_query::result_document(&action, &inner)),
                None => error(400, "InvalidAction"),
            }
        }
    };
    Ok(response)
}

#[tokio::main]
async fn main() {
    let o = options();
    let state = Arc::new(State {
        report: RwLock::new(Arc::new(report_body(o.users, 0))),
        virtual_mfa_users: o.users * 7 / 10,
        fault_percent: AtomicU32::new(0),
        slow: o.slow,
        counts: Mutex::new(BTreeMap::new()),
    });

    // A new report every second: new users' dates and a new GeneratedTime, so the exporter
    // never skips one as unchanged.
    let regen = state.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        for seed in 1u64.. {
            tick.tick().await;
            let users = o.users;
            let body = tokio::task::spawn_blocking(move || report_body(users, seed))
                .await
                .expect("report generation");
            *regen.report.write().expect("report lock") = Arc::new(body);
        }
    });

    let listener = TcpListener::bind(o.listen).await.expect("binding");
    println!(
        "listening on {}",
        listener.local_addr().expect("bound address")
    );
    let _ = std::io::stdout().flush();
    while let Ok((stream, _)) = listener.accept().await {
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| answer(state.clone(), req));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
