//! moto's server (PyPI `moto[server]`) as the stand-in for AWS IAM, STS and Organizations:
//! started on a private loopback address, ready when its own `/moto-api/` page answers while it
//! runs, killed on drop. Tests seed and change it with boto3 through `tests/moto/*.py`, run by
//! the Python next to `moto_server`, or, for what those scripts have no command for, with the
//! exporter's own AWS SDK for Rust ([`Moto::sdk`]).
//!
//! moto builds its credential report anew from its current users on every
//! GetCredentialReport (GenerateCredentialReport only marks it generated, and GeneratedTime
//! stays in 2015), unlike AWS, which keeps a report for 4 hours: a change made in moto is in
//! the very next report. Several changes made one call after another can therefore be seen
//! half done by a refresh in between; [`Moto::gate`] puts a proxy in front of moto that holds
//! the exporter's calls while a test makes them, so that a refresh sees all or none.

use super::http::probe;
use super::loopback::Loopback;
use super::server::ServerProcess;
use super::tools::{repo, tool, which};
use aws_sdk_iam::config::{BehaviorVersion, Credentials, Region};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::RwLock;

/// The name of the credential report's root row, and of the moto user that stands for it
/// ([`Moto::add_root_row`]).
pub const ROOT_ROW: &str = "<root_account>";

/// How long moto may take to start.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running moto server, killed on drop.
pub struct Moto {
    server: ServerProcess,
    python: PathBuf,
}

impl Moto {
    /// Starts `moto_server` from PATH (installed by scripts/install-test-tools) and waits until
    /// it serves its API page. Fails the test when moto is missing or does not start.
    pub fn start() -> Moto {
        let python = which("moto_server")
            .parent()
            .expect("moto_server lives in a directory")
            .join("python");
        let server = ServerProcess::start(
            "moto_server",
            START_TIMEOUT,
            |addr| {
                let mut cmd = tool("moto_server");
                cmd.args(["-H", &addr.ip().to_string(), "-p", &addr.port().to_string()]);
                cmd
            },
            |addr| probe(&format!("http://{addr}/moto-api/")) == Some(200),
        );
        Moto { server, python }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr
    }

    /// `http://ADDR`.
    pub fn url(&self) -> String {
        self.server.url("")
    }

    /// The environment that points the exporter (or boto3) at moto: its endpoint, dummy
    /// credentials, a region (so nothing asks instance metadata), and instance metadata off.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        env_for(self.url())
    }

    /// A proxy in front of this moto that a test can close while it changes moto: see
    /// [`MotoGate`].
    pub fn gate(&self) -> MotoGate {
        MotoGate::start(self.url())
    }

    /// Runs `tests/moto/iam.py ENDPOINT ARGS...` with moto's Python (it has boto3), failing
    /// the test with the script's output when it fails; returns its standard output.
    pub fn iam(&self, args: &[&str]) -> String {
        self.script("iam.py", args)
    }

    /// Runs `tests/moto/organization.py ENDPOINT ARGS...` (an organization of accounts, each
    /// with its own IAM users), as [`Moto::iam`] does.
    pub fn organization(&self, args: &[&str]) -> String {
        self.script("organization.py", args)
    }

    /// An IAM client of the AWS SDK for Rust (the exporter's) pointed at moto with the same
    /// dummy credentials, and a runtime of its own to drive it from a synchronous test.
    pub fn sdk(&self) -> MotoSdk {
        let config = aws_sdk_iam::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(self.url())
            .credentials_provider(Credentials::new("testing", "testing", None, None, "moto"))
            .build();
        MotoSdk {
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a Tokio runtime"),
            iam: aws_sdk_iam::Client::from_conf(config),
        }
    }

    /// Gives moto's credential report a root row. moto writes none, but it accepts an IAM
    /// user named `<root_account>` (AWS would refuse the name) and writes that user's row,
    /// which the exporter reads as root's: root is the row named `<root_account>`. The user
    /// has a console password, no MFA and no keys, so root has credentials and no MFA. Its
    /// ARN stays a user's (`arn:aws:iam::ACCOUNT:user/<root_account>`): a device moto lists
    /// for it is a user's, never root's.
    pub fn add_root_row(&self) {
        self.sdk()
            .run(async |iam| {
                iam.create_user().user_name(ROOT_ROW).send().await?;
                iam.create_login_profile()
                    .user_name(ROOT_ROW)
                    .password("correct-horse-battery-staple-1A!")
                    .send()
                    .await?;
                Ok::<_, aws_sdk_iam::Error>(())
            })
            .unwrap_or_else(|e| panic!("creating the {ROOT_ROW} user in moto: {e:?}"));
    }

    fn script(&self, name: &str, args: &[&str]) -> String {
        let script = repo().join("tests/moto").join(name);
        let out = Command::new(&self.python)
            .arg(&script)
            .arg(self.url())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "running {} with {}: {e}",
                    script.display(),
                    self.python.display()
                )
            });
        assert!(
            out.status.success(),
            "{name} {args:?} failed:\n{}{}\n--- the end of moto's log ---\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.server.last_logs(40)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// The environment that points the exporter at the endpoint `url` (moto, or a gate in front
/// of it): see [`Moto::env`].
fn env_for(url: String) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", url),
        ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
    ]
}

/// A pass-through HTTP proxy in front of moto, on a private loopback address, that a test
/// closes while it changes moto ([`MotoGate::closed`]): closing waits for the calls under way
/// to be answered and holds new ones until it opens again, so a client of the gate (the
/// exporter) sees moto before the changes or after all of them, never in between. Requests and
/// answers pass unchanged (the `Host` header too: moto does not check signatures). Stops when
/// dropped.
pub struct MotoGate {
    url: String,
    open: Arc<RwLock<()>>,
    forwarded: Arc<AtomicUsize>,
    waiting: Arc<AtomicUsize>,
    /// Serves the proxy on its own thread while the test blocks.
    _runtime: tokio::runtime::Runtime,
    _address: Loopback,
}

impl MotoGate {
    fn start(upstream: String) -> MotoGate {
        let address = Loopback::claim();
        let addr = address.free_addr();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a Tokio runtime for the gate");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(addr))
            .unwrap_or_else(|e| panic!("binding the gate on {addr}: {e}"));
        let open = Arc::new(RwLock::new(()));
        let forwarded = Arc::new(AtomicUsize::new(0));
        let waiting = Arc::new(AtomicUsize::new(0));
        let client: Client<HttpConnector, Full<Bytes>> =
            Client::builder(TokioExecutor::new()).build_http();
        let counts = Counts {
            forwarded: forwarded.clone(),
            waiting: waiting.clone(),
        };
        let gate = open.clone();
        runtime.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (gate, counts, client, upstream) = (
                    gate.clone(),
                    counts.clone(),
                    client.clone(),
                    upstream.clone(),
                );
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        forward(
                            gate.clone(),
                            counts.clone(),
                            client.clone(),
                            upstream.clone(),
                            req,
                        )
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        MotoGate {
            url: format!("http://{addr}"),
            open,
            forwarded,
            waiting,
            _runtime: runtime,
            _address: address,
        }
    }

    /// The environment that points the exporter at moto through this gate.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        env_for(self.url.clone())
    }

    /// Runs `changes` (calls made to moto directly, not through the gate) with the gate
    /// closed: once every call under way through the gate was answered, and before any new
    /// one is.
    pub fn closed<T>(&self, changes: impl FnOnce() -> T) -> T {
        let _closed = self.open.blocking_write();
        changes()
    }

    /// How many requests the gate passed to moto and answered.
    pub fn forwarded(&self) -> usize {
        self.forwarded.load(Ordering::SeqCst)
    }

    /// How many requests wait at the closed gate.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }
}

/// The gate's counters, shared with its connections.
#[derive(Clone)]
struct Counts {
    forwarded: Arc<AtomicUsize>,
    waiting: Arc<AtomicUsize>,
}

/// Passes one request to moto, while the gate is open, and its answer back.
async fn forward(
    gate: Arc<RwLock<()>>,
    counts: Counts,
    client: Client<HttpConnector, Full<Bytes>>,
    upstream: String,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    counts.waiting.fetch_add(1, Ordering::SeqCst);
    let _open = gate.read().await;
    counts.waiting.fetch_sub(1, Ordering::SeqCst);
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut out = Request::builder()
        .method(parts.method)
        .uri(format!("{upstream}{path}"));
    for (name, value) in &parts.headers {
        out = out.header(name, value);
    }
    let answer = match client.request(out.body(Full::new(body)).unwrap()).await {
        Ok(answer) => answer,
        Err(e) => {
            return Ok(Response::builder()
                .status(502)
                .body(Full::new(Bytes::from(format!("the gate to moto: {e}"))))
                .unwrap())
        }
    };
    counts.forwarded.fetch_add(1, Ordering::SeqCst);
    let (mut parts, body) = answer.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    // The body is passed whole: hop-by-hop framing is the gate's own.
    for hop in ["connection", "keep-alive", "transfer-encoding"] {
        parts.headers.remove(hop);
    }
    Ok(Response::from_parts(parts, Full::new(body)))
}

/// An IAM client pointed at moto, see [`Moto::sdk`].
pub struct MotoSdk {
    runtime: tokio::runtime::Runtime,
    iam: aws_sdk_iam::Client,
}

impl MotoSdk {
    /// Runs `calls` against moto to completion and returns what they return.
    pub fn run<T>(&self, calls: impl AsyncFnOnce(&aws_sdk_iam::Client) -> T) -> T {
        self.runtime.block_on(calls(&self.iam))
    }
}
