//! Many accounts' roles against one fake endpoint (STS AssumeRole and IAM GetAccountSummary,
//! awsQuery over HTTP): each account assumes its role once for as long as its credentials
//! last, its IAM calls carry its own credentials, and every account's clients share one
//! connection pool.

use super::*;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// What the fake endpoint saw.
#[derive(Debug, Default)]
struct Seen {
    /// TCP connections accepted.
    connections: AtomicUsize,
    /// AssumeRole calls, by the account of the role.
    assumed: Mutex<BTreeMap<String, u32>>,
    /// The access keys AssumeRole calls were signed with.
    sts_keys: Mutex<BTreeSet<String>>,
    /// IAM calls, by the access key they were signed with.
    iam_calls: Mutex<BTreeMap<String, u32>>,
}

struct Fake {
    url: String,
    seen: Arc<Seen>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Serves AssumeRole (credentials valid for `lifetime`, whose access key is `ASIA` and the
/// account) and, for any other action, a GetAccountSummary answer.
async fn fake(lifetime: chrono::TimeDelta) -> Fake {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Seen::default());
    let shared = seen.clone();
    let server = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            shared.connections.fetch_add(1, Ordering::SeqCst);
            let seen = shared.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| answer(seen.clone(), lifetime, req));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Fake { url, seen, server }
}

async fn answer(
    seen: Arc<Seen>,
    lifetime: chrono::TimeDelta,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    // `Credential=AKID/DATE/REGION/SERVICE/aws4_request` in the SigV4 Authorization header.
    let key = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|c| c.split('/').next())
        .unwrap_or_default()
        .to_owned();
    let body = req.into_body().collect().await.unwrap().to_bytes();
    let form = String::from_utf8_lossy(&body)
        .replace("%3A", ":")
        .replace("%2F", "/");
    let param = |name: &str| {
        form.split('&')
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .unwrap_or_default()
            .to_owned()
    };
    let xml = if param("Action") == "AssumeRole" {
        // arn:aws:iam::ACCOUNT:role/NAME
        let account = param("RoleArn")
            .split(':')
            .nth(4)
            .unwrap_or_default()
            .to_owned();
        seen.sts_keys.lock().unwrap().insert(key);
        *seen
            .assumed
            .lock()
            .unwrap()
            .entry(account.clone())
            .or_default() += 1;
        let expiration =
            (chrono::Utc::now() + lifetime).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        format!(
            "<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><AssumeRoleResult>\
             <Credentials><AccessKeyId>ASIA{account}</AccessKeyId><SecretAccessKey>secret</SecretAccessKey>\
             <SessionToken>token</SessionToken><Expiration>{expiration}</Expiration></Credentials>\
             <AssumedRoleUser><AssumedRoleId>AROAFAKE:s</AssumedRoleId>\
             <Arn>arn:aws:sts::{account}:assumed-role/r/s</Arn></AssumedRoleUser>\
             </AssumeRoleResult><ResponseMetadata><RequestId>fake</RequestId></ResponseMetadata></AssumeRoleResponse>"
        )
    } else {
        *seen.iam_calls.lock().unwrap().entry(key).or_default() += 1;
        "<GetAccountSummaryResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><GetAccountSummaryResult>\
         <SummaryMap><entry><key>AccountMFAEnabled</key><value>1</value></entry></SummaryMap>\
         </GetAccountSummaryResult><ResponseMetadata><RequestId>fake</RequestId></ResponseMetadata></GetAccountSummaryResponse>"
            .to_owned()
    };
    Ok(Response::builder()
        .header("content-type", "text/xml")
        .body(Full::new(Bytes::from(xml)))
        .unwrap())
}

async fn base_env(url: &str) -> AwsEnv {
    let connect = Connect {
        region: Some("us-east-1".into()),
        endpoint_url: Some(url.to_owned()),
        credentials: Some(StaticCredentials {
            access_key_id: "AKIDBASE".into(),
            secret_access_key: "secret".into(),
        }),
    };
    AwsEnv::load(&connect, &AwsSettings::default()).await
}

fn role(account: usize) -> AssumeRole {
    AssumeRole {
        arn: format!("arn:aws:iam::{account:012}:role/r"),
        external_id: None,
        session_name: "s".into(),
    }
}

/// One round of every account, `concurrency` accounts at a time, as the fleet runs them: each
/// builds its IAM client for the round and makes `calls` calls at once.
async fn round(accounts: &[AwsEnv], concurrency: usize, calls: usize) {
    let limit = Arc::new(Semaphore::new(concurrency));
    let mut rounds = JoinSet::new();
    for account in accounts {
        let (account, limit) = (account.clone(), limit.clone());
        rounds.spawn(async move {
            let _permit = limit.acquire_owned().await.unwrap();
            let client = account.iam_client();
            let mut sends = JoinSet::new();
            for _ in 0..calls {
                let client = client.clone();
                sends.spawn(async move { client.get_account_summary().send().await });
            }
            while let Some(sent) = sends.join_next().await {
                sent.unwrap().expect("GetAccountSummary");
            }
        });
    }
    while let Some(done) = rounds.join_next().await {
        done.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_account_assumes_its_role_once_and_all_share_one_connection_pool() {
    // More accounts than the 64 credential providers the SDK's shared identity cache holds.
    const ACCOUNTS: usize = 100;
    const CALLS: usize = 4;
    let fake = fake(chrono::TimeDelta::hours(1)).await;
    let env = base_env(&fake.url).await;
    let mut accounts = Vec::new();
    for i in 0..ACCOUNTS {
        accounts.push(env.assume(&role(100_000_000_000 + i)).await);
    }
    // Two rounds: the second finds every account's credentials cached.
    round(&accounts, 8, CALLS).await;
    round(&accounts, 8, CALLS).await;

    let assumed = fake.seen.assumed.lock().unwrap().clone();
    assert_eq!(assumed.len(), ACCOUNTS);
    assert!(
        assumed.values().all(|&n| n == 1),
        "AssumeRole calls per account: {assumed:?}"
    );
    // STS is called with the base credentials, IAM with each account's own; loading the
    // configuration sent nothing.
    assert_eq!(
        *fake.seen.sts_keys.lock().unwrap(),
        BTreeSet::from(["AKIDBASE".to_owned()])
    );
    let iam_calls = fake.seen.iam_calls.lock().unwrap().clone();
    let expected: BTreeMap<String, u32> = (0..ACCOUNTS)
        .map(|i| (format!("ASIA{:012}", 100_000_000_000 + i), 2 * CALLS as u32))
        .collect();
    assert_eq!(iam_calls, expected);
    // One pool for every client: connections are reused across accounts (a pool per client
    // would open at least one for each account's STS client and one for its IAM client, and
    // rounds of 8 accounts making 4 calls at once need some 32).
    let connections = fake.seen.connections.load(Ordering::SeqCst);
    assert!(
        connections < ACCOUNTS,
        "{connections} connections for {ACCOUNTS} accounts"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_about_to_expire_are_assumed_again() {
    // Credentials that expire within the cache's buffer (10 s) are renewed at the next call.
    let fake = fake(chrono::TimeDelta::seconds(5)).await;
    let env = base_env(&fake.url).await;
    let account = env.assume(&role(100_000_000_000)).await;
    round(std::slice::from_ref(&account), 1, 1).await;
    round(std::slice::from_ref(&account), 1, 1).await;
    let assumed = fake.seen.assumed.lock().unwrap().clone();
    assert_eq!(assumed.values().copied().collect::<Vec<_>>(), [2]);
}

#[tokio::test]
async fn every_client_shares_the_configurations_http_client() {
    let fake = fake(chrono::TimeDelta::hours(1)).await;
    let env = base_env(&fake.url).await;
    assert!(env.config.http_client().is_some());
    let account = env.assume(&role(100_000_000_000)).await;
    assert!(account.iam_client().config().http_client().is_some());
    assert!(account
        .organizations_client()
        .config()
        .http_client()
        .is_some());
}
