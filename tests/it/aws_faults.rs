//! The faults and account states moto cannot produce, from a fake IAM endpoint over real
//! HTTP: a small hyper server on 127.0.0.1:0 answering the awsQuery protocol (form-encoded
//! POSTs with `Action=...`, XML answers, XML `<ErrorResponse>` errors with AWS's HTTP
//! statuses), scripted per test, counting requests per action and keeping their parameters.
//! moto writes no `<root_account>` row and cannot assign an MFA device to root, so the root
//! checks (root's virtual MFA, centralized root access, no root row) are tested here too.
//!
//! IAM users' paths and tags (GetAccountAuthorizationDetails, for `aws_iam_user_info`) are
//! tested here too: read, paged, missing, denied, and not asked for without tag keys.
//!
//! Driven in-process through the library, the way the daemon drives it: an [`AwsSource`]
//! built from the same configuration loader as production (endpoint override, static
//! credentials, SDK retries off), refreshed by `refresh::refresh_once` into a `state::Store`,
//! and the published exposition read back. Each test asserts the requests made, the reason
//! recorded, and that the previous good snapshot is still served. Backoffs are milliseconds.
use crate::support::aws_query::{self, DetailUser, ROOT};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use iam_credential_report::account::FailureReason;
use iam_credential_report::expose::RenderOptions;
use iam_credential_report::judge::Thresholds;
use iam_credentials_exporter::collect::aws::{
    AwsEnv, AwsSettings, AwsSource, Backoff, Connect, StaticCredentials, UserTags, UserTagsHandle,
};
use iam_credentials_exporter::collect::refresh::refresh_once;
use iam_credentials_exporter::state::{AccountState, JudgeSettings, Store};
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

const ACCOUNT: &str = "111122223333";

const GENERATE: &str = "GenerateCredentialReport";
const GET: &str = "GetCredentialReport";
const SUMMARY: &str = "GetAccountSummary";
const ALIASES: &str = "ListAccountAliases";
const POLICY: &str = "GetAccountPasswordPolicy";
const VMFA: &str = "ListVirtualMFADevices";
const DETAILS: &str = "GetAccountAuthorizationDetails";

/// Root and two users: alice (console, MFA, one key) and bob (console, no MFA).
const REPORT: &str = "\
user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated
<root_account>,arn:aws:iam::111122223333:root,2020-01-01T00:00:00+00:00,not_supported,2026-01-01T00:00:00+00:00,not_supported,not_supported,true,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A
alice,arn:aws:iam::111122223333:user/alice,2024-01-01T00:00:00+00:00,true,2026-11-01T00:00:00+00:00,2026-10-01T00:00:00+00:00,N/A,true,true,2026-10-01T00:00:00+00:00,2026-11-01T00:00:00+00:00,us-east-1,s3,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A
bob,arn:aws:iam::111122223333:user/bob,2024-01-01T00:00:00+00:00,true,2026-11-01T00:00:00+00:00,2026-10-01T00:00:00+00:00,N/A,false,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A
";

/// Root after AWS Organizations removed its credentials (centralized root access): no
/// password, no keys, no certificates, no MFA.
const ROOT_WITHOUT_CREDENTIALS: &str = "<root_account>,arn:aws:iam::111122223333:root,2020-01-01T00:00:00+00:00,false,N/A,N/A,not_supported,false,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A";

/// [`REPORT`] with its root row replaced by `root`, or left out (`None`).
fn report_with_root(root: Option<&str>) -> String {
    REPORT
        .lines()
        .filter_map(|l| match l.starts_with("<root_account>,") {
            true => root,
            false => Some(l),
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

/// One scripted answer.
#[derive(Debug, Clone)]
enum Reply {
    /// HTTP 200 with this inside the action's `<ActionResult>`.
    Result(String),
    /// An AWS error: HTTP status and code, in an `<ErrorResponse>`.
    Error(u16, &'static str),
    /// Any status and body.
    Raw(u16, &'static str),
    /// Another reply, after a delay.
    Slow(Duration, Box<Reply>),
}

fn state(s: &str) -> Reply {
    Reply::Result(format!("<State>{s}</State>"))
}

fn report(csv: &str) -> Reply {
    Reply::Result(format!(
        "<Content>{}</Content><ReportFormat>text/csv</ReportFormat><GeneratedTime>2026-11-25T04:12:00Z</GeneratedTime>",
        base64(csv.as_bytes())
    ))
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// GetAccountSummary: two users, one MFA device in use (alice's), root's MFA and root keys
/// as given.
fn summary(root_mfa: bool, root_keys: bool) -> Reply {
    Reply::Result(format!(
        "<SummaryMap>\
         <entry><key>Users</key><value>2</value></entry>\
         <entry><key>AccountMFAEnabled</key><value>{}</value></entry>\
         <entry><key>AccountAccessKeysPresent</key><value>{}</value></entry>\
         <entry><key>MFADevicesInUse</key><value>1</value></entry>\
         </SummaryMap>",
        u8::from(root_mfa),
        u8::from(root_keys)
    ))
}

/// ListVirtualMFADevices: one assigned virtual device per holder (a user's name or [`ROOT`]),
/// and a marker to the next page when there is one.
fn devices(holders: &[&str], marker: Option<&str>) -> Reply {
    Reply::Result(aws_query::virtual_mfa_devices(ACCOUNT, holders, marker))
}

/// GetAccountPasswordPolicy: the length and reuse prevention, the character classes required
/// (any of `upper`, `lower`, `numbers`, `symbols`) and `MaxPasswordAge` when set.
fn policy(length: u32, reuse: u32, classes: &[&str], max_age: Option<u32>) -> Reply {
    let class = |name: &str| classes.contains(&name);
    let age = max_age.map_or(String::new(), |d| {
        format!("<MaxPasswordAge>{d}</MaxPasswordAge>")
    });
    Reply::Result(format!(
        "<PasswordPolicy><AllowUsersToChangePassword>true</AllowUsersToChangePassword>\
         <RequireLowercaseCharacters>{}</RequireLowercaseCharacters>\
         <RequireUppercaseCharacters>{}</RequireUppercaseCharacters>\
         <MinimumPasswordLength>{length}</MinimumPasswordLength>\
         <RequireNumbers>{}</RequireNumbers>\
         <PasswordReusePrevention>{reuse}</PasswordReusePrevention>\
         <RequireSymbols>{}</RequireSymbols>\
         <ExpirePasswords>{}</ExpirePasswords>{age}</PasswordPolicy>",
        class("lower"),
        class("upper"),
        class("numbers"),
        class("symbols"),
        max_age.is_some_and(|d| d > 0),
    ))
}

/// Every character class a password policy can require.
const ALL_CLASSES: &[&str] = &["upper", "lower", "numbers", "symbols"];

/// Every action answers as a healthy account would: root on a hardware MFA device (the only
/// virtual one is alice's), a password policy that meets CIS and Security Hub.
fn healthy() -> HashMap<&'static str, Reply> {
    HashMap::from([
        (GENERATE, state("COMPLETE")),
        (GET, report(REPORT)),
        (SUMMARY, summary(true, false)),
        (
            ALIASES,
            Reply::Result(
                "<IsTruncated>false</IsTruncated><AccountAliases><member>fake-corp</member></AccountAliases>"
                    .into(),
            ),
        ),
        (POLICY, policy(14, 24, ALL_CLASSES, Some(90))),
        (VMFA, devices(&["alice"], None)),
    ])
}

#[derive(Default)]
struct Script {
    /// Served first, in order, per action.
    queued: HashMap<String, VecDeque<Reply>>,
    /// Served once the queue is empty.
    fallback: HashMap<String, Reply>,
    /// Requests seen per action.
    counts: HashMap<String, usize>,
    /// The parameters of every request, per action, in the order they came.
    requests: HashMap<String, Vec<Vec<(String, String)>>>,
}

/// The fake IAM endpoint. It lives as long as the test's runtime.
struct FakeIam {
    url: String,
    script: Arc<Mutex<Script>>,
}

impl FakeIam {
    async fn start() -> FakeIam {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let script = Arc::new(Mutex::new(Script {
            fallback: healthy()
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
            ..Script::default()
        }));
        let shared = script.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let script = shared.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| answer(script.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        FakeIam { url, script }
    }

    /// Queues replies for `action`, served before its fallback.
    fn then(&self, action: &str, replies: impl IntoIterator<Item = Reply>) {
        self.script
            .lock()
            .unwrap()
            .queued
            .entry(action.to_owned())
            .or_default()
            .extend(replies);
    }

    /// What `action` answers once its queue is empty.
    fn always(&self, action: &str, reply: Reply) {
        self.script
            .lock()
            .unwrap()
            .fallback
            .insert(action.to_owned(), reply);
    }

    /// Requests seen for `action`.
    fn count(&self, action: &str) -> usize {
        *self.script.lock().unwrap().counts.get(action).unwrap_or(&0)
    }

    /// The parameters of each request seen for `action`, in order.
    fn requests(&self, action: &str) -> Vec<Vec<(String, String)>> {
        self.script
            .lock()
            .unwrap()
            .requests
            .get(action)
            .cloned()
            .unwrap_or_default()
    }

    fn reset_counts(&self) {
        let mut s = self.script.lock().unwrap();
        s.counts.clear();
        s.requests.clear();
    }
}

/// The value of a request's parameter `name`.
fn param<'a>(request: &'a [(String, String)], name: &str) -> Option<&'a str> {
    request
        .iter()
        .find_map(|(k, v)| (k == name).then_some(v.as_str()))
}

async fn answer(
    script: Arc<Mutex<Script>>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let form = aws_query::form_of(req).await;
    let action = param(&form, "Action").unwrap_or_default().to_owned();
    let mut reply = {
        let mut s = script.lock().unwrap();
        *s.counts.entry(action.clone()).or_default() += 1;
        s.requests.entry(action.clone()).or_default().push(form);
        let queued = s.queued.get_mut(&action).and_then(VecDeque::pop_front);
        queued
            .or_else(|| s.fallback.get(&action).cloned())
            .unwrap_or(Reply::Error(400, "InvalidAction"))
    };
    while let Reply::Slow(delay, inner) = reply {
        tokio::time::sleep(delay).await;
        reply = *inner;
    }
    let (status, body) = match reply {
        Reply::Result(inner) => (200, aws_query::result_document(&action, &inner)),
        Reply::Error(status, code) => (
            status,
            aws_query::error_document(
                code,
                &format!(
                    "User: arn:aws:iam::{ACCOUNT}:user/exporter is not authorized or was refused: {code}"
                ),
            ),
        ),
        Reply::Raw(status, body) => (status, body.to_owned()),
        Reply::Slow(..) => unreachable!("unwrapped above"),
    };
    Ok(aws_query::xml_response(status, body))
}

/// Millisecond backoffs, three tries per call, a 250 ms call timeout.
fn fast() -> AwsSettings {
    AwsSettings {
        call_timeout: Duration::from_millis(250),
        max_attempts: 3,
        backoff: Backoff {
            base: Duration::from_millis(5),
            max: Duration::from_millis(20),
        },
        round_timeout: Duration::from_secs(5),
        jitter: true,
    }
}

/// The fake endpoint, a hub watching one account, and the AWS source between them.
struct Rig {
    fake: FakeIam,
    hub: Arc<Store>,
    source: AwsSource,
    /// The source's user tag settings (by default no keys: no tags are read).
    tags: UserTagsHandle,
}

impl Rig {
    async fn new(settings: AwsSettings) -> Rig {
        let fake = FakeIam::start().await;
        let connect = Connect {
            region: Some("us-east-1".into()),
            endpoint_url: Some(fake.url.clone()),
            credentials: Some(StaticCredentials {
                access_key_id: "AKIDFAKE".into(),
                secret_access_key: "fake-secret".into(),
            }),
        };
        let env = AwsEnv::load(&connect, &settings).await;
        let hub = Store::new(
            JudgeSettings {
                thresholds: Thresholds::default(),
                render: RenderOptions::all_users(),
                exceptions: Vec::new(),
            },
            vec![AccountState::new("fake".into(), None, None)],
        );
        let tags = UserTagsHandle::default();
        Rig {
            source: AwsSource::new(&env, settings).with_user_tags(tags.clone()),
            tags,
            fake,
            hub,
        }
    }

    async fn refresh(&self) {
        refresh_once(&self.hub, "fake", &self.source).await;
    }

    fn metrics(&self) -> String {
        self.hub.published().text()
    }

    /// The value of `name{account_id="111122223333"<labels>}`, 0 when absent.
    fn value(&self, name: &str, labels: &str) -> f64 {
        self.sample(name, labels).unwrap_or(0.0)
    }

    /// The value of `name{account_id="111122223333"<labels>}`, `None` when absent.
    fn sample(&self, name: &str, labels: &str) -> Option<f64> {
        crate::support::sample(
            &self.metrics(),
            &format!("{name}{{account_id=\"{ACCOUNT}\"{labels}}}"),
        )
    }

    /// `aws_iam_check_failures{check}`, `None` when the check has no sample.
    fn check(&self, check: &str) -> Option<f64> {
        self.sample("aws_iam_check_failures", &format!(",check=\"{check}\""))
    }

    fn live_failures(&self, api: &str, reason: &str) -> f64 {
        self.value(
            "iam_credentials_exporter_live_call_failures_total",
            &format!(",api=\"{api}\",reason=\"{reason}\""),
        )
    }

    fn failures(&self, reason: &str) -> f64 {
        self.value(
            "iam_credentials_exporter_refresh_failures_total",
            &format!(",reason=\"{reason}\""),
        )
    }

    fn retries(&self, api: &str, cause: &str) -> f64 {
        self.value(
            "iam_credentials_exporter_aws_retries_total",
            &format!(",api=\"{api}\",cause=\"{cause}\""),
        )
    }

    fn last_error(&self) -> Option<(FailureReason, String)> {
        self.hub
            .account("fake", |a| {
                a.last_error.as_ref().map(|e| (e.reason, e.message.clone()))
            })
            .flatten()
    }

    fn assert_succeeded(&self) {
        assert_eq!(self.last_error(), None);
        assert_eq!(
            self.value("iam_credentials_exporter_refresh_success", ""),
            1.0,
            "{}",
            self.metrics()
        );
        assert_eq!(self.value("aws_iam_users", ""), 2.0, "{}", self.metrics());
    }

    /// A first good round, then counts start afresh for the fault.
    async fn good_round(&self) {
        self.refresh().await;
        self.assert_succeeded();
        self.fake.reset_counts();
    }

    /// The round failed for `reason`, and the last good snapshot is still served.
    fn assert_failed_keeping_snapshot(&self, reason: FailureReason) {
        let (got, message) = self.last_error().expect("the round should have failed");
        assert_eq!(got, reason, "{message}");
        let m = self.metrics();
        assert_eq!(
            self.value("iam_credentials_exporter_refresh_success", ""),
            0.0,
            "{m}"
        );
        assert_eq!(self.failures(reason.as_str()), 1.0, "{m}");
        let others: f64 = FailureReason::ALL
            .iter()
            .filter(|r| **r != reason)
            .map(|r| self.failures(r.as_str()))
            .sum();
        assert_eq!(others, 0.0, "{m}");
        // The previous report and live facts, untouched.
        assert_eq!(self.value("aws_iam_users", ""), 2.0, "{m}");
        assert_eq!(
            self.value(
                "aws_iam_check_failures",
                ",check=\"console_user_without_mfa\""
            ),
            1.0,
            "{m}"
        );
        assert_eq!(
            self.value("aws_iam_user_mfa_active", ",user=\"alice\""),
            1.0,
            "{m}"
        );
        assert_eq!(self.value("aws_iam_mfa_devices_in_use", ""), 1.0, "{m}");
        assert!(self.hub.published().ready);
    }
}

#[tokio::test]
async fn generation_is_polled_from_started_through_inprogress_to_complete() {
    let rig = Rig::new(fast()).await;
    rig.fake
        .then(GENERATE, [state("STARTED"), state("INPROGRESS")]);
    rig.refresh().await;
    rig.assert_succeeded();
    assert_eq!(rig.fake.count(GENERATE), 3);
    assert_eq!(rig.fake.count(GET), 1);
    assert_eq!(rig.retries(GENERATE, "report_not_ready"), 2.0);
    // The live facts came along.
    assert_eq!(
        rig.value("aws_iam_account_info", ",alias=\"fake-corp\",name=\"\""),
        1.0
    );
    assert_eq!(rig.value("aws_iam_root_mfa_enabled", ""), 1.0);
    assert_eq!(
        rig.value(
            "aws_iam_check_failures",
            ",check=\"password_policy_weak_reuse\""
        ),
        0.0
    );
    assert_eq!(
        rig.value("aws_iam_credential_report_generated_timestamp_seconds", ""),
        1_795_579_920.0
    );
}

#[tokio::test]
async fn report_in_progress_is_waited_for() {
    let rig = Rig::new(fast()).await;
    rig.fake.then(
        GET,
        [
            Reply::Error(404, "ReportInProgress"),
            Reply::Error(404, "ReportInProgress"),
        ],
    );
    rig.refresh().await;
    rig.assert_succeeded();
    assert_eq!(rig.fake.count(GENERATE), 1);
    assert_eq!(rig.fake.count(GET), 3);
    assert_eq!(rig.retries(GET, "report_not_ready"), 2.0);
}

#[tokio::test]
async fn a_missing_or_expired_report_is_generated_again() {
    let rig = Rig::new(fast()).await;
    rig.fake.then(
        GET,
        [
            Reply::Error(410, "ReportNotPresent"),
            Reply::Error(410, "ReportExpired"),
        ],
    );
    rig.refresh().await;
    rig.assert_succeeded();
    assert_eq!(rig.fake.count(GENERATE), 3);
    assert_eq!(rig.fake.count(GET), 3);
    assert_eq!(rig.retries(GET, "report_missing"), 2.0);

    // A report that stays expired: two regenerations, then the round gives up.
    rig.fake.reset_counts();
    rig.fake.always(GET, Reply::Error(410, "ReportExpired"));
    rig.refresh().await;
    rig.assert_failed_keeping_snapshot(FailureReason::ReportNotReady);
    assert_eq!(rig.fake.count(GENERATE), 3);
    assert_eq!(rig.fake.count(GET), 3);
}

#[tokio::test]
async fn limit_exceeded_backs_off_then_succeeds() {
    let rig = Rig::new(fast()).await;
    rig.fake
        .then(GENERATE, [Reply::Error(409, "LimitExceeded")]);
    rig.refresh().await;
    rig.assert_succeeded();
    assert_eq!(rig.fake.count(GENERATE), 2);
    assert_eq!(rig.fake.count(GET), 1);
    assert_eq!(rig.retries(GENERATE, "throttled"), 1.0);
}

#[tokio::test]
async fn throttling_past_the_bound_gives_up_the_round_as_throttled() {
    let rig = Rig::new(fast()).await;
    rig.good_round().await;
    rig.fake.always(GET, Reply::Error(400, "Throttling"));
    rig.refresh().await;
    rig.assert_failed_keeping_snapshot(FailureReason::Throttled);
    // Three tries (the bound), two backoffs between them; nothing after.
    assert_eq!(rig.fake.count(GET), 3);
    assert_eq!(rig.retries(GET, "throttled"), 2.0);
    assert_eq!(rig.fake.count(SUMMARY), 0);
    let (_, message) = rig.last_error().unwrap();
    assert!(message.contains("gave up after 3 tries"), "{message}");
}

#[tokio::test]
async fn server_errors_back_off_and_give_up_as_service_error() {
    let rig = Rig::new(fast()).await;
    rig.good_round().await;
    // A bare 503 with an HTML body, once: retried by its status.
    rig.fake
        .then(GET, [Reply::Raw(503, "<html>Service Unavailable</html>")]);
    rig.refresh().await;
    rig.assert_succeeded();
    assert_eq!(rig.fake.count(GET), 2);
    assert_eq!(rig.retries(GET, "service_error"), 1.0);

    rig.fake.reset_counts();
    rig.fake.always(GET, Reply::Error(500, "ServiceFailure"));
    rig.refresh().await;
    rig.assert_failed_keeping_snapshot(FailureReason::ServiceError);
    assert_eq!(rig.fake.count(GET), 3);
    assert_eq!(rig.retries(GET, "service_error"), 3.0);
}

#[tokio::test]
async fn an_answer_slower_than_the_call_timeout_fails_as_timeout() {
    let rig = Rig::new(fast()).await;
    rig.good_round().await;
    rig.fake.always(
        GET,
        Reply::Slow(Duration::from_secs(3), Box::new(report(REPORT))),
    );
    let started = Instant::now();
    rig.refresh().await;
    let took = started.elapsed();
    rig.assert_failed_keeping_snapshot(FailureReason::Timeout);
    assert_eq!(rig.fake.count(GET), 3);
    assert_eq!(rig.retries(GET, "timeout"), 2.0);
    // Three 250 ms timeouts and two short backoffs, not the 3 s answers.
    assert!(
        took >= Duration::from_millis(750) && took < Duration::from_secs(2),
        "{took:?}"
    );
}

#[tokio::test]
async fn a_garbage_body_is_an_invalid_response_and_not_retried() {
    let rig = Rig::new(fast()).await;
    rig.good_round().await;
    rig.fake
        .always(GET, Reply::Raw(200, "this is not XML <<< \u{0}"));
    rig.refresh().await;
    rig.assert_failed_keeping_snapshot(FailureReason::InvalidResponse);
    assert_eq!(rig.fake.count(GET), 1);

    // Well-formed XML whose Content is not base64 is just as unusable.
    rig.fake.reset_counts();
    rig.fake.always(
        GET,
        Reply::Result("<Content>@@@ not base64 @@@</Content>".into()),
    );
    rig.refresh().await;
    let (reason, message) = rig.last_error().unwrap();
    assert_eq!(reason, FailureReason::InvalidResponse, "{message}");
    assert_eq!(rig.fake.count(GET), 1);
    assert_eq!(rig.failures("invalid_response"), 2.0);
}

#[tokio::test]
async fn access_denied_fails_at_once_and_names_the_permission() {
    let rig = Rig::new(fast()).await;
    rig.good_round().await;
    rig.fake.always(GENERATE, Reply::Error(403, "AccessDenied"));
    rig.refresh().await;
    rig.assert_failed_keeping_snapshot(FailureReason::AccessDenied);
    assert_eq!(rig.fake.count(GENERATE), 1);
    assert_eq!(rig.fake.count(GET), 0);
    let (_, message) = rig.last_error().unwrap();
    assert!(
        message.contains("iam:GenerateCredentialReport"),
        "{message}"
    );
}

#[tokio::test]
async fn live_call_failures_are_reported_without_failing_the_round() {
    let rig = Rig::new(fast()).await;
    rig.fake.always(SUMMARY, Reply::Error(403, "AccessDenied"));
    rig.fake
        .always(ALIASES, Reply::Error(500, "ServiceFailure"));
    rig.fake.always(POLICY, Reply::Error(404, "NoSuchEntity"));
    rig.refresh().await;
    rig.assert_succeeded();
    let m = rig.metrics();
    assert_eq!(rig.live_failures(SUMMARY, "access_denied"), 1.0, "{m}");
    assert_eq!(rig.live_failures(ALIASES, "service_error"), 1.0, "{m}");
    assert_eq!(rig.fake.count(SUMMARY), 1);
    assert_eq!(rig.fake.count(ALIASES), 3);
    // No summary this round: its series are absent, not zero.
    assert!(!m.contains("aws_iam_root_mfa_enabled{"), "{m}");
    // No password policy is a finding, not a failure.
    assert_eq!(rig.live_failures(POLICY, "other"), 0.0, "{m}");
    assert_eq!(rig.value("aws_iam_password_policy_present", ""), 0.0);
    for check in [
        "password_policy_missing",
        "password_policy_weak_length",
        "password_policy_weak_reuse",
        "password_policy_weak_complexity",
        "password_policy_no_expiry",
    ] {
        assert_eq!(
            rig.value("aws_iam_check_failures", &format!(",check=\"{check}\"")),
            1.0,
            "{check}\n{m}"
        );
    }
}

#[tokio::test]
async fn the_round_deadline_bounds_the_wait_for_a_report() {
    let rig = Rig::new(AwsSettings {
        round_timeout: Duration::from_millis(300),
        ..fast()
    })
    .await;
    rig.good_round().await;
    rig.fake.always(GENERATE, state("INPROGRESS"));
    let started = Instant::now();
    rig.refresh().await;
    let took = started.elapsed();
    rig.assert_failed_keeping_snapshot(FailureReason::ReportNotReady);
    // Polls every 5 to 20 ms for 300 ms: bounded, and never a tight loop.
    let polls = rig.fake.count(GENERATE);
    assert!((5..=61).contains(&polls), "{polls} polls");
    assert!(took < Duration::from_secs(1), "{took:?}");
    assert_eq!(rig.fake.count(GET), 0);
}

/// The root checks of a round: (check, sample) for each, `None` where it has none.
fn root_checks(rig: &Rig) -> Vec<(&'static str, Option<f64>)> {
    [
        "root_without_mfa",
        "root_access_key",
        "root_used_recently",
        "root_virtual_mfa",
    ]
    .into_iter()
    .map(|c| (c, rig.check(c)))
    .collect()
}

#[tokio::test]
async fn a_virtual_mfa_device_on_a_root_with_a_password_fails_root_virtual_mfa() {
    let rig = Rig::new(fast()).await;
    // The report's root has a password (`not_supported`, as older reports write it) and MFA;
    // IAM lists root's device among the virtual ones.
    rig.fake.always(VMFA, devices(&["alice", ROOT], None));
    rig.refresh().await;
    rig.assert_succeeded();
    let m = rig.metrics();
    assert_eq!(rig.check("root_virtual_mfa"), Some(1.0), "{m}");
    assert_eq!(
        rig.sample("aws_iam_root_credentials_present", ""),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        rig.sample("aws_iam_credential_report_root_present", ""),
        Some(1.0),
        "{m}"
    );
    assert_eq!(rig.check("root_without_mfa"), Some(0.0), "{m}");
    assert_eq!(rig.sample("aws_iam_root_mfa_enabled", ""), Some(1.0), "{m}");
    assert_eq!(rig.live_failures(VMFA, "access_denied"), 0.0, "{m}");
    // One call, for assigned devices, from the first page.
    let requests = rig.fake.requests(VMFA);
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(param(&requests[0], "AssignmentStatus"), Some("Assigned"));
    assert_eq!(param(&requests[0], "Marker"), None);

    // Root's device listed without its user (as some recorded answers are): known by the
    // serial the console gives root's device.
    rig.fake.always(
        VMFA,
        devices(&["alice", aws_query::ROOT_WITHOUT_USER], None),
    );
    rig.refresh().await;
    rig.assert_succeeded();
    assert_eq!(
        rig.check("root_virtual_mfa"),
        Some(1.0),
        "{}",
        rig.metrics()
    );

    // Root moves to a hardware device: only users' devices are listed, among them one of an
    // IAM user named "root" (arn:...:user/root, not root's arn:...:root).
    rig.fake.always(VMFA, devices(&["alice", "root"], None));
    rig.refresh().await;
    rig.assert_succeeded();
    let m = rig.metrics();
    assert_eq!(rig.check("root_virtual_mfa"), Some(0.0), "{m}");
    assert_eq!(
        rig.sample("aws_iam_root_credentials_present", ""),
        Some(1.0),
        "{m}"
    );

    // No virtual device assigned at all.
    rig.fake.always(VMFA, devices(&[], None));
    rig.refresh().await;
    rig.assert_succeeded();
    assert_eq!(
        rig.check("root_virtual_mfa"),
        Some(0.0),
        "{}",
        rig.metrics()
    );
}

#[tokio::test]
async fn root_virtual_mfa_reads_every_page_of_the_device_list() {
    let rig = Rig::new(fast()).await;
    // Root's device on the second page; the marker has characters that need escaping in the
    // XML and encoding in the form.
    let marker = "page 2/+=&<>";
    rig.fake.then(
        VMFA,
        [devices(&["alice"], Some(marker)), devices(&[ROOT], None)],
    );
    rig.refresh().await;
    rig.assert_succeeded();
    assert_eq!(
        rig.check("root_virtual_mfa"),
        Some(1.0),
        "{}",
        rig.metrics()
    );
    let requests = rig.fake.requests(VMFA);
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(param(&requests[0], "Marker"), None, "{requests:?}");
    assert_eq!(param(&requests[1], "Marker"), Some(marker), "{requests:?}");
    for r in &requests {
        assert_eq!(param(r, "AssignmentStatus"), Some("Assigned"), "{r:?}");
    }

    // Three pages and root on none of them: all three read, then it passes.
    rig.fake.reset_counts();
    rig.fake.then(
        VMFA,
        [
            devices(&["alice"], Some("2")),
            devices(&["bob"], Some("3")),
            devices(&[], None),
        ],
    );
    rig.refresh().await;
    rig.assert_succeeded();
    assert_eq!(
        rig.check("root_virtual_mfa"),
        Some(0.0),
        "{}",
        rig.metrics()
    );
    let markers: Vec<Option<String>> = rig
        .fake
        .requests(VMFA)
        .iter()
        .map(|r| param(r, "Marker").map(str::to_owned))
        .collect();
    assert_eq!(markers, [None, Some("2".into()), Some("3".into())]);

    // A page that hands back the marker it was asked with: the listing stops there instead
    // of asking for the same page forever. The list cannot be read whole, so the call fails
    // as invalid_response and root_virtual_mfa has no verdict; the round still succeeds.
    rig.fake.reset_counts();
    rig.fake.always(VMFA, devices(&["alice"], Some("again")));
    rig.refresh().await;
    rig.assert_succeeded();
    assert_eq!(rig.fake.count(VMFA), 2);
    assert_eq!(rig.live_failures(VMFA, "invalid_response"), 1.0);
    assert_eq!(rig.check("root_virtual_mfa"), None, "{}", rig.metrics());
}

#[tokio::test]
async fn a_root_without_credentials_passes_the_root_mfa_checks() {
    let rig = Rig::new(fast()).await;
    // Centralized root access: AWS Organizations removed root's password, keys and MFA, so
    // GetAccountSummary says AccountMFAEnabled=0; a virtual device still listed for root
    // protects nothing.
    rig.fake.always(
        GET,
        report(&report_with_root(Some(ROOT_WITHOUT_CREDENTIALS))),
    );
    rig.fake.always(SUMMARY, summary(false, false));
    rig.fake.always(VMFA, devices(&["alice", ROOT], None));
    rig.refresh().await;
    rig.assert_succeeded();
    let m = rig.metrics();
    assert_eq!(
        rig.sample("aws_iam_root_credentials_present", ""),
        Some(0.0),
        "{m}"
    );
    assert_eq!(
        rig.sample("aws_iam_credential_report_root_present", ""),
        Some(1.0),
        "{m}"
    );
    assert_eq!(rig.sample("aws_iam_root_mfa_enabled", ""), Some(0.0), "{m}");
    assert_eq!(
        root_checks(&rig),
        [
            ("root_without_mfa", Some(0.0)),
            ("root_access_key", Some(0.0)),
            ("root_used_recently", Some(0.0)),
            ("root_virtual_mfa", Some(0.0)),
        ],
        "{m}"
    );

    // No device listed for root: the same.
    rig.fake.always(VMFA, devices(&["alice"], None));
    rig.refresh().await;
    rig.assert_succeeded();
    let m = rig.metrics();
    assert_eq!(
        rig.sample("aws_iam_root_credentials_present", ""),
        Some(0.0),
        "{m}"
    );
    assert_eq!(rig.check("root_without_mfa"), Some(0.0), "{m}");
    assert_eq!(rig.check("root_virtual_mfa"), Some(0.0), "{m}");

    // The live summary sees a root access key the (older) report does not: root has
    // credentials again, and a virtual device on it fails.
    rig.fake.always(SUMMARY, summary(false, true));
    rig.fake.always(VMFA, devices(&[ROOT], None));
    rig.refresh().await;
    rig.assert_succeeded();
    let m = rig.metrics();
    assert_eq!(
        rig.sample("aws_iam_root_credentials_present", ""),
        Some(1.0),
        "{m}"
    );
    assert_eq!(rig.check("root_virtual_mfa"), Some(1.0), "{m}");
}

#[tokio::test]
async fn without_a_root_row_the_root_checks_have_no_sample() {
    let rig = Rig::new(fast()).await;
    // A report without `<root_account>` (as moto writes it), while IAM lists a device for
    // root: nothing in the report vouches for root, so no verdict on it at all.
    rig.fake.always(GET, report(&report_with_root(None)));
    rig.fake.always(VMFA, devices(&["alice", ROOT], None));
    rig.refresh().await;
    rig.assert_succeeded();
    let m = rig.metrics();
    assert_eq!(
        rig.sample("aws_iam_credential_report_root_present", ""),
        Some(0.0),
        "{m}"
    );
    assert_eq!(
        rig.sample("aws_iam_root_credentials_present", ""),
        None,
        "{m}"
    );
    assert_eq!(
        root_checks(&rig),
        [
            ("root_without_mfa", None),
            ("root_access_key", None),
            ("root_used_recently", None),
            ("root_virtual_mfa", None),
        ],
        "{m}"
    );
    // The call itself answered, and the rest of the account is judged as usual.
    assert_eq!(rig.fake.count(VMFA), 1);
    assert_eq!(rig.live_failures(VMFA, "access_denied"), 0.0, "{m}");
    assert_eq!(rig.sample("aws_iam_root_mfa_enabled", ""), Some(1.0), "{m}");
    assert_eq!(rig.check("console_user_without_mfa"), Some(1.0), "{m}");
    assert_eq!(
        rig.check("password_policy_weak_complexity"),
        Some(0.0),
        "{m}"
    );
}

#[tokio::test]
async fn list_virtual_mfa_devices_denied_fails_the_call_not_the_round() {
    let rig = Rig::new(fast()).await;
    rig.fake.always(VMFA, Reply::Error(403, "AccessDenied"));
    rig.refresh().await;
    rig.assert_succeeded();
    let m = rig.metrics();
    assert_eq!(rig.live_failures(VMFA, "access_denied"), 1.0, "{m}");
    // Not retried: a missing permission does not come back by asking again.
    assert_eq!(rig.fake.count(VMFA), 1);
    // Unknown, so no sample; everything else is there.
    assert_eq!(rig.check("root_virtual_mfa"), None, "{m}");
    assert_eq!(rig.check("root_without_mfa"), Some(0.0), "{m}");
    assert_eq!(
        rig.sample("aws_iam_root_credentials_present", ""),
        Some(1.0),
        "{m}"
    );
    assert_eq!(rig.check("password_policy_missing"), Some(0.0), "{m}");
    assert_eq!(rig.sample("aws_iam_root_mfa_enabled", ""), Some(1.0), "{m}");

    // The permission is granted: the check is back, the failure stays counted.
    rig.fake.always(VMFA, devices(&[ROOT], None));
    rig.refresh().await;
    rig.assert_succeeded();
    let m = rig.metrics();
    assert_eq!(rig.check("root_virtual_mfa"), Some(1.0), "{m}");
    assert_eq!(rig.live_failures(VMFA, "access_denied"), 1.0, "{m}");
}

#[tokio::test]
async fn the_password_policy_is_judged_for_complexity_and_expiry() {
    let rig = Rig::new(fast()).await;
    let policy_checks = |rig: &Rig| -> Vec<(&'static str, Option<f64>)> {
        [
            "password_policy_missing",
            "password_policy_weak_length",
            "password_policy_weak_reuse",
            "password_policy_weak_complexity",
            "password_policy_no_expiry",
        ]
        .into_iter()
        .map(|c| (c, rig.check(c)))
        .collect()
    };
    // Long enough and no reuse, but no symbols required and passwords that never expire.
    rig.fake
        .always(POLICY, policy(14, 24, &["upper", "lower", "numbers"], None));
    rig.refresh().await;
    rig.assert_succeeded();
    assert_eq!(
        policy_checks(&rig),
        [
            ("password_policy_missing", Some(0.0)),
            ("password_policy_weak_length", Some(0.0)),
            ("password_policy_weak_reuse", Some(0.0)),
            ("password_policy_weak_complexity", Some(1.0)),
            ("password_policy_no_expiry", Some(1.0)),
        ],
        "{}",
        rig.metrics()
    );
    assert_eq!(rig.sample("aws_iam_password_policy_present", ""), Some(1.0));

    // The full policy: 14 characters, 24 remembered, all four classes, 90 days.
    rig.fake
        .always(POLICY, policy(14, 24, ALL_CLASSES, Some(90)));
    rig.refresh().await;
    rig.assert_succeeded();
    assert_eq!(
        policy_checks(&rig),
        [
            ("password_policy_missing", Some(0.0)),
            ("password_policy_weak_length", Some(0.0)),
            ("password_policy_weak_reuse", Some(0.0)),
            ("password_policy_weak_complexity", Some(0.0)),
            ("password_policy_no_expiry", Some(0.0)),
        ],
        "{}",
        rig.metrics()
    );

    // Expiry past 90 days fails on its own, as does one class short.
    rig.fake
        .always(POLICY, policy(14, 24, ALL_CLASSES, Some(91)));
    rig.refresh().await;
    assert_eq!(rig.check("password_policy_no_expiry"), Some(1.0));
    assert_eq!(rig.check("password_policy_weak_complexity"), Some(0.0));
    rig.fake.always(
        POLICY,
        policy(14, 24, &["upper", "numbers", "symbols"], Some(90)),
    );
    rig.refresh().await;
    assert_eq!(rig.check("password_policy_no_expiry"), Some(0.0));
    assert_eq!(rig.check("password_policy_weak_complexity"), Some(1.0));
}

/// GetAccountAuthorizationDetails (`Filter=User`) listing `users`, truncated with `marker`.
fn details(users: &[DetailUser], marker: Option<&str>) -> Reply {
    Reply::Result(aws_query::user_details(ACCOUNT, users, marker))
}

/// alice, under /engineering/, with an owner (its key written `Owner`: IAM user tag keys are
/// case-insensitive) and a team; bob, at /, with a team and no owner.
const ALICE: DetailUser = DetailUser {
    name: "alice",
    path: "/engineering/",
    tags: &[
        ("Owner", "alice@example.com"),
        ("team", "payments"),
        ("cost-center", "cc-1"),
    ],
};
const BOB: DetailUser = DetailUser {
    name: "bob",
    path: "/",
    tags: &[("team", "platform \"core\"")],
};

/// `owner` and `team`, read again every refresh (`Duration::ZERO`) or at the hourly default.
fn owner_and_team(reread_after: Option<Duration>) -> UserTags {
    UserTags {
        keys: vec!["owner".into(), "team".into()],
        reread_after: reread_after.unwrap_or(UserTags::default().reread_after),
        ..UserTags::default()
    }
}

impl Rig {
    /// The `aws_iam_user_info` lines of the account.
    fn user_info(&self) -> Vec<String> {
        crate::support::lines_with(&self.metrics(), "aws_iam_user_info{")
            .into_iter()
            .map(str::to_owned)
            .collect()
    }
}

fn info(path: &str, owner: &str, team: &str, user: &str) -> String {
    format!(
        "aws_iam_user_info{{account_id=\"{ACCOUNT}\",path=\"{path}\",tag_owner=\"{owner}\",tag_team=\"{team}\",user=\"{user}\"}} 1"
    )
}

#[tokio::test]
async fn user_tags_label_user_info_and_are_kept_between_refreshes() {
    let rig = Rig::new(fast()).await;
    rig.tags.set(owner_and_team(None));
    rig.fake.always(DETAILS, details(&[ALICE, BOB], None));
    rig.refresh().await;
    rig.assert_succeeded();
    // One series per user, a label per configured key; bob has no owner tag: empty.
    assert_eq!(
        rig.user_info(),
        [
            info("/engineering/", "alice@example.com", "payments", "alice"),
            info("/", "", "platform \\\"core\\\"", "bob"),
        ],
        "{}",
        rig.metrics()
    );
    let requests = rig.fake.requests(DETAILS);
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(param(&requests[0], "Filter.member.1"), Some("User"));
    assert_eq!(param(&requests[0], "Filter.member.2"), None);
    assert_eq!(param(&requests[0], "MaxItems"), Some("1000"));
    assert_eq!(param(&requests[0], "Marker"), None);
    assert_eq!(rig.live_failures(DETAILS, "access_denied"), 0.0);

    // Tags change rarely: the next refreshes within the hour keep the read, and ask nothing.
    rig.fake.always(DETAILS, details(&[BOB], None));
    rig.refresh().await;
    rig.refresh().await;
    rig.assert_succeeded();
    assert_eq!(rig.fake.count(DETAILS), 1);
    assert_eq!(rig.user_info().len(), 2, "{}", rig.metrics());

    // Other keys (a reload) are read at the next refresh: cost-center's label is
    // sanitised.
    rig.tags.set(UserTags {
        keys: vec!["cost-center".into()],
        ..owner_and_team(None)
    });
    rig.fake.always(DETAILS, details(&[ALICE], None));
    rig.refresh().await;
    assert_eq!(rig.fake.count(DETAILS), 2);
    assert_eq!(
        rig.user_info(),
        [format!(
            "aws_iam_user_info{{account_id=\"{ACCOUNT}\",path=\"/engineering/\",tag_cost_center=\"cc-1\",user=\"alice\"}} 1"
        )]
    );
}

#[tokio::test]
async fn user_tags_are_read_from_every_page() {
    let rig = Rig::new(fast()).await;
    rig.tags.set(owner_and_team(Some(Duration::ZERO)));
    let marker = "page 2/+=&<>";
    rig.fake.then(
        DETAILS,
        [details(&[ALICE], Some(marker)), details(&[BOB], None)],
    );
    rig.refresh().await;
    rig.assert_succeeded();
    let markers: Vec<Option<String>> = rig
        .fake
        .requests(DETAILS)
        .iter()
        .map(|r| param(r, "Marker").map(str::to_owned))
        .collect();
    assert_eq!(markers, [None, Some(marker.to_owned())]);
    let read = rig.user_info();
    assert_eq!(
        read,
        [
            info("/engineering/", "alice@example.com", "payments", "alice"),
            info("/", "", "platform \\\"core\\\"", "bob"),
        ]
    );

    // Pages that lead back to a marker already given would page forever: the read stops
    // there as invalid_response, the round succeeds, and the last good read stays served
    // (an alert whose owner label vanished would fire again as another alert).
    rig.fake.reset_counts();
    rig.fake.then(DETAILS, [details(&[BOB], Some("a"))]);
    rig.fake.always(DETAILS, details(&[ALICE], Some("a")));
    rig.refresh().await;
    rig.assert_succeeded();
    assert_eq!(rig.fake.count(DETAILS), 2);
    assert_eq!(rig.live_failures(DETAILS, "invalid_response"), 1.0);
    assert_eq!(rig.user_info(), read, "{}", rig.metrics());
}

#[tokio::test]
async fn user_tags_denied_fail_the_call_not_the_round() {
    let rig = Rig::new(fast()).await;
    rig.tags.set(owner_and_team(None));
    rig.fake.always(DETAILS, Reply::Error(403, "AccessDenied"));
    rig.refresh().await;
    rig.assert_succeeded();
    let m = rig.metrics();
    assert_eq!(rig.live_failures(DETAILS, "access_denied"), 1.0, "{m}");
    // Not retried within the round; no info series; every other live fact is there.
    assert_eq!(rig.fake.count(DETAILS), 1);
    assert!(!m.contains("aws_iam_user_info"), "{m}");
    assert_eq!(rig.check("root_virtual_mfa"), Some(0.0), "{m}");
    assert_eq!(rig.check("password_policy_missing"), Some(0.0), "{m}");
    assert_eq!(rig.sample("aws_iam_root_mfa_enabled", ""), Some(1.0), "{m}");

    // Without a good read, the next refresh asks again (not an hour later), and counts again.
    rig.refresh().await;
    assert_eq!(rig.fake.count(DETAILS), 2);
    assert_eq!(rig.live_failures(DETAILS, "access_denied"), 2.0);

    // The permission is granted: the series come.
    rig.fake.always(DETAILS, details(&[ALICE, BOB], None));
    rig.refresh().await;
    rig.assert_succeeded();
    assert_eq!(rig.user_info().len(), 2, "{}", rig.metrics());
    assert_eq!(rig.live_failures(DETAILS, "access_denied"), 2.0);
}

#[tokio::test]
async fn without_tag_keys_or_per_user_series_no_user_tags_are_read() {
    let rig = Rig::new(fast()).await;
    rig.fake.always(DETAILS, details(&[ALICE, BOB], None));
    // The default: no keys.
    rig.refresh().await;
    rig.assert_succeeded();
    assert_eq!(rig.fake.count(DETAILS), 0);
    assert!(!rig.metrics().contains("aws_iam_user_info"));
    // Keys, but per-user series off (--metrics.per-user=false): nothing to label.
    rig.tags.set(UserTags {
        users: RenderOptions::default(),
        ..owner_and_team(Some(Duration::ZERO))
    });
    rig.refresh().await;
    assert_eq!(rig.fake.count(DETAILS), 0);
    assert!(!rig.metrics().contains("aws_iam_user_info"));
    // The user filters leave users out as they do of every per-user series.
    rig.tags.set(UserTags {
        users: RenderOptions {
            per_user: true,
            user_include: None,
            user_exclude: Some(regex::Regex::new("^b").unwrap()),
            ..RenderOptions::default()
        },
        ..owner_and_team(Some(Duration::ZERO))
    });
    rig.refresh().await;
    assert_eq!(rig.fake.count(DETAILS), 1);
    assert_eq!(
        rig.user_info(),
        [info(
            "/engineering/",
            "alice@example.com",
            "payments",
            "alice"
        )]
    );
}
