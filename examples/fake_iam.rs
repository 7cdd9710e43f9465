//! A fake IAM endpoint for soak tests and organization-scale simulations.
//!
//! **One account** (the default): answers the six read-only calls the exporter makes
//! (awsQuery over HTTP, as `tests/it/aws_faults.rs` scripts them) with a synthetic report of
//! `USERS` users that it generates again every second, so every refresh of the exporter parses,
//! judges and renders a new report. ListVirtualMFADevices lists a virtual device for 7 users
//! in 10 (none for root), 100 a page as IAM does by default, so a refresh also pages through
//! the device list.
//!
//! **An organization** (`--accounts N`): N member accounts (ids `100000000000` and up) of
//! `USERS` users each, read as the exporter reads real ones:
//! - Organizations `ListAccounts` (awsJson 1.1) lists them all, ACTIVE, `--page-size` a page
//!   (20, ListAccounts' maximum), so `organization: { role_name: ANY }` discovers them;
//! - STS `AssumeRole` into `arn:aws:iam::ACCOUNT:role/ANY` (any role name, any session name)
//!   hands out temporary credentials, valid for an hour, whose access key id carries the
//!   account: `ASIA` + the 12 digits + `FAKE`. An account that is not a member is refused
//!   (`AccessDenied`);
//! - an IAM call signed with such a key (read from the SigV4 `Authorization` header's
//!   `Credential=AKID/...`; signatures are not checked) answers for that account: its own
//!   report, generated once at start and never again, so a thousand accounts cost no CPU per
//!   request (the exporter sees an unchanged report after the first). Calls signed with any
//!   other key answer for the management account, `123456789012`, which has a static report
//!   too and is not listed;
//! - STS `GetCallerIdentity` names the key's account.
//!
//! Faults on demand, for a share of requests picked at random (IAM and STS calls; never
//! ListAccounts): `Throttling` (HTTP 400), a `ServiceFailure` (500), a bare 503, or an answer
//! held for `--slow` (past the exporter's `--aws.call-timeout`). Control and counts over the
//! same listener:
//!
//! ```sh
//! cargo run --release --example fake_iam -- [--users 5000] [--slow 3s] [--listen 127.0.0.1:0]
//! cargo run --release --example fake_iam -- --accounts 1000 --users 50   # an organization
//! curl -s 'http://ADDR/fake/faults?percent=50'   # fail half the requests from now on
//! curl -s 'http://ADDR/fake/stats'               # requests per action and outcome
//! AWS_ENDPOINT_URL=http://ADDR AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x iam-credentials-exporter
//! ```
//!
//! `/fake/stats` also counts, in organization mode, the accounts that have fetched a credential
//! report at least once (`accounts_read N`). It prints `listening on ADDR` on stdout once
//! bound (after the reports are generated). Loopback only.

use base64::Engine;
use bytes::Bytes;
use chrono::{SecondsFormat, Utc};
use http_body_util::BodyExt;
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
use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::net::TcpListener;

const ACCOUNT: &str = "123456789012";

struct Options {
    users: usize,
    slow: Duration,
    listen: SocketAddr,
    /// Member accounts to simulate; 0: one account, its report renewed every second.
    accounts: usize,
    /// Accounts per ListAccounts page.
    page_size: usize,
}

fn options() -> Options {
    let mut o = Options {
        users: 5_000,
        slow: Duration::from_secs(3),
        listen: "127.0.0.1:0".parse().expect("a socket address"),
        accounts: 0,
        page_size: 20,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    for pair in args.chunks(2) {
        let value = pair.get(1).map(String::as_str).unwrap_or_default();
        match pair[0].as_str() {
            "--users" => o.users = value.parse().expect("--users takes a number"),
            "--slow" => o.slow = humantime::parse_duration(value).expect("--slow takes a duration"),
            "--listen" => o.listen = value.parse().expect("--listen takes an address"),
            "--accounts" => o.accounts = value.parse().expect("--accounts takes a number"),
            "--page-size" => {
                o.page_size = value.parse().expect("--page-size takes a number");
                assert!(o.page_size > 0, "--page-size takes a positive number");
            }
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
    /// The `<GetCredentialReportResult>` body of the current report of the management
    /// account (the only account without `--accounts`).
    report: RwLock<Arc<String>>,
    /// With `--accounts`: each member account's static `<GetCredentialReportResult>` body, by
    /// account id.
    members: HashMap<String, Member>,
    /// The member account ids, in the order ListAccounts lists them.
    member_ids: Vec<String>,
    page_size: usize,
    /// When the organization was created (the members' JoinedTimestamp).
    joined: f64,
    /// Users with a virtual MFA device.
    virtual_mfa_users: usize,
    /// Share of requests, in percent, answered with a fault.
    fault_percent: AtomicU32,
    slow: Duration,
    /// Requests per "action outcome".
    counts: Mutex<BTreeMap<String, u64>>,
}

/// One simulated member account.
struct Member {
    /// Its static `<GetCredentialReportResult>` body.
    report: String,
    /// Set once it has fetched its report.
    read: AtomicBool,
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

fn report_body(account: &str, users: usize, seed: u64) -> String {
    let now = Utc::now();
    let csv = synthetic::report(account, users, now, seed);
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
fn virtual_mfa_page(account: &str, users: usize, marker: Option<&str>) -> Option<String> {
    let start = match marker {
        Some(m) => m.parse::<usize>().ok().filter(|&i| i < users)?,
        None => 0,
    };
    let end = users.min(start + DEVICES_PER_PAGE);
    let names: Vec<String> = (start..end).map(|i| format!("soak-user-{i}")).collect();
    let holders: Vec<&str> = names.iter().map(String::as_str).collect();
    let next = (end < users).then(|| end.to_string());
    Some(aws_query::virtual_mfa_devices(
        account,
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
            let mut text: String = counts.iter().map(|(k, v)| format!("{k} {v}\n")).collect();
            if !state.members.is_empty() {
                let read = state
                    .members
                    .values()
                    .filter(|m| m.read.load(Ordering::Relaxed))
                    .count();
                text.push_str(&format!("accounts_read {read}\n"));
            }
            text
        }
    };
    Response::new(Full::new(Bytes::from(text)))
}

/// The access key id of temporary credentials for `account`.
fn access_key_of(account: &str) -> String {
    format!("ASIA{account}FAKE")
}

/// The account a request signed with SigV4 acts in: the one its access key id carries, else
/// the management account.
fn account_of(req: &Request<Incoming>) -> String {
    req.headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split("Credential=").nth(1))
        .and_then(|c| c.split('/').next())
        .and_then(|akid| {
            akid.strip_prefix("ASIA")?
                .strip_suffix("FAKE")
                .map(str::to_owned)
        })
        .filter(|a| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()))
        .unwrap_or_else(|| ACCOUNT.to_owned())
}

/// STS's answers (awsQuery, like IAM's, in STS's namespace): `None` for another action.
fn sts(
    state: &State,
    action: &str,
    account: &str,
    param: &dyn Fn(&str) -> Option<String>,
) -> Option<Response<Full<Bytes>>> {
    const STS_XMLNS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";
    let document = |inner: String| {
        xml(
            200,
            format!(
                "<{action}Response xmlns=\"{STS_XMLNS}\"><{action}Result>{inner}</{action}Result>\
                 <ResponseMetadata><RequestId>fake</RequestId></ResponseMetadata></{action}Response>"
            ),
        )
    };
    match action {
        "AssumeRole" => {
            let arn = param("RoleArn").unwrap_or_default();
            let session = param("RoleSessionName").unwrap_or_else(|| "session".to_owned());
            // arn:PARTITION:iam::ACCOUNT:role/PATH/NAME
            let parts: Vec<&str> = arn.splitn(6, ':').collect();
            let target = match parts.as_slice() {
                ["arn", partition, "iam", "", account, resource]
                    if resource.starts_with("role/")
                        && (state.members.contains_key(*account) || *account == ACCOUNT) =>
                {
                    Some((
                        partition.to_string(),
                        account.to_string(),
                        resource["role/".len()..].to_owned(),
                    ))
                }
                _ => None,
            };
            let Some((partition, target, role)) = target else {
                return Some(error(403, "AccessDenied"));
            };
            let name = role.rsplit('/').next().unwrap_or_default().to_owned();
            let expiration = (Utc::now() + chrono::TimeDelta::hours(1))
                .to_rfc3339_opts(SecondsFormat::Secs, true);
            Some(document(format!(
                "<Credentials><AccessKeyId>{key}</AccessKeyId>\
                 <SecretAccessKey>fake-secret-{target}</SecretAccessKey>\
                 <SessionToken>fake-session-{target}</SessionToken>\
                 <Expiration>{expiration}</Expiration></Credentials>\
                 <AssumedRoleUser><AssumedRoleId>AROAFAKE{target}:{session}</AssumedRoleId>\
                 <Arn>arn:{partition}:sts::{target}:assumed-role/{name}/{session}</Arn></AssumedRoleUser>",
                key = access_key_of(&target),
                session = aws_query::escape(&session),
                name = aws_query::escape(&name),
            )))
        }
        "GetCallerIdentity" => Some(document(format!(
            "<Arn>arn:aws:sts::{account}:assumed-role/fake/fake</Arn>\
             <UserId>AROAFAKE{account}:fake</UserId><Account>{account}</Account>"
        ))),
        _ => None,
    }
}

/// Organizations' ListAccounts (awsJson 1.1): every member, ACTIVE, a page of
/// `state.page_size` from the index `NextToken` carries.
fn list_accounts(state: &State, body: &[u8]) -> Response<Full<Bytes>> {
    let json = |status: u16, value: serde_json::Value| {
        Response::builder()
            .status(status)
            .header("content-type", "application/x-amz-json-1.1")
            .body(Full::new(Bytes::from(value.to_string())))
            .expect("a valid response")
    };
    let request: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let start = match request.get("NextToken").and_then(|t| t.as_str()) {
        None => 0,
        Some(t) => match t.parse::<usize>() {
            Ok(i) if i < state.member_ids.len() => i,
            _ => {
                return json(
                    400,
                    serde_json::json!({"__type": "InvalidInputException", "Message": "bad NextToken (fake)"}),
                )
            }
        },
    };
    let size = request
        .get("MaxResults")
        .and_then(|m| m.as_u64())
        .map_or(state.page_size, |m| (m as usize).clamp(1, state.page_size));
    let end = state.member_ids.len().min(start + size);
    let accounts: Vec<serde_json::Value> = state.member_ids[start..end]
        .iter()
        .enumerate()
        .map(|(i, id)| {
            serde_json::json!({
                "Id": id,
                "Arn": format!("arn:aws:organizations::{ACCOUNT}:account/o-fake/{id}"),
                "Email": format!("member-{:05}@example.com", start + i),
                "Name": format!("member-{:05}", start + i),
                "Status": "ACTIVE",
                "State": "ACTIVE",
                "JoinedMethod": "CREATED",
                "JoinedTimestamp": state.joined,
            })
        })
        .collect();
    let mut page = serde_json::json!({ "Accounts": accounts });
    if end < state.member_ids.len() {
        page["NextToken"] = serde_json::Value::String(end.to_string());
    }
    json(200, page)
}

async fn answer(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.uri().path().starts_with("/fake/") {
        return Ok(control(&state, &req));
    }
    let account = account_of(&req);
    let target = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();

    // Organizations (awsJson 1.1: the action is in X-Amz-Target).
    if let Some(target) = target {
        let action = target.rsplit('.').next().unwrap_or_default().to_owned();
        let response = match action.as_str() {
            "ListAccounts" => list_accounts(&state, &body),
            _ => Response::builder()
                .status(400)
                .header("content-type", "application/x-amz-json-1.1")
                .body(Full::new(Bytes::from(format!(
                    "{{\"__type\":\"UnknownOperationException\",\"Message\":\"{action} (fake)\"}}"
                ))))
                .expect("a valid response"),
        };
        *state
            .counts
            .lock()
            .expect("counts lock")
            .entry(format!("{action} ok"))
            .or_default() += 1;
        return Ok(response);
    }

    let form = aws_query::parse_form(&body);
    let param = |name: &str| {
        form.iter()
            .find_map(|(k, v)| (k == name).then(|| v.clone()))
    };
    let action = param("Action").unwrap_or_default();

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
            if let Some(response) = sts(&state, &action, &account, &param) {
                return Ok(response);
            }
            let inner = match action.as_str() {
                "GetCredentialReport" => Some(match state.members.get(&account) {
                    Some(member) => {
                        member.read.store(true, Ordering::Relaxed);
                        member.report.clone()
                    }
                    None => state
                        .report
                        .read()
                        .expect("report lock")
                        .as_str()
                        .to_owned(),
                }),
                "ListVirtualMFADevices" => {
                    let marker = param("Marker");
                    match virtual_mfa_page(&account, state.virtual_mfa_users, marker.as_deref()) {
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
    // An organization's members: ids from 100000000000, reports generated once, on every core.
    let member_ids: Vec<String> = (0..o.accounts)
        .map(|i| format!("{:012}", 100_000_000_000u64 + i as u64))
        .collect();
    let members: HashMap<String, Member> = {
        let users = o.users;
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let chunk = member_ids.len().div_ceil(threads).max(1);
        std::thread::scope(|s| {
            let workers: Vec<_> = member_ids
                .chunks(chunk)
                .map(|ids| {
                    s.spawn(move || {
                        ids.iter()
                            .enumerate()
                            .map(|(i, id)| {
                                let member = Member {
                                    report: report_body(id, users, i as u64),
                                    read: AtomicBool::new(false),
                                };
                                (id.clone(), member)
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().expect("report generation"))
                .collect()
        })
    };
    let organization = o.accounts > 0;
    let state = Arc::new(State {
        report: RwLock::new(Arc::new(report_body(ACCOUNT, o.users, 0))),
        members,
        member_ids,
        page_size: o.page_size,
        joined: Utc::now().timestamp() as f64,
        virtual_mfa_users: o.users * 7 / 10,
        fault_percent: AtomicU32::new(0),
        slow: o.slow,
        counts: Mutex::new(BTreeMap::new()),
    });

    // One account: a new report every second, new users' dates and a new GeneratedTime, so
    // the exporter never skips one as unchanged. An organization's reports stay as they are.
    if !organization {
        let regen = state.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            for seed in 1u64.. {
                tick.tick().await;
                let users = o.users;
                let body = tokio::task::spawn_blocking(move || report_body(ACCOUNT, users, seed))
                    .await
                    .expect("report generation");
                *regen.report.write().expect("report lock") = Arc::new(body);
            }
        });
    }

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
