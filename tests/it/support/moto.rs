//! moto's server (PyPI `moto[server]`) as the stand-in for AWS IAM, STS and Organizations:
//! started on a private loopback address, ready when its own `/moto-api/` page answers while it
//! runs, killed on drop. Tests seed and change it with boto3 through `tests/moto/*.py`, run by
//! the Python next to `moto_server`, or, for what those scripts have no command for, with the
//! exporter's own AWS SDK for Rust ([`Moto::sdk`]).

use super::http::probe;
use super::server::ServerProcess;
use super::tools::{repo, tool, which};
use aws_sdk_iam::config::{BehaviorVersion, Credentials, Region};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

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
        vec![
            ("AWS_ENDPOINT_URL", self.url()),
            ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
            ("AWS_REGION", "us-east-1".to_owned()),
            ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
        ]
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
