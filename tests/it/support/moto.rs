//! moto's server (PyPI `moto[server]`) as the stand-in for AWS IAM, STS and Organizations:
//! started on a private loopback address, ready when its own `/moto-api/` page answers while it
//! runs, killed on drop. Tests seed and change it with boto3 through `tests/moto/*.py`, run by
//! the Python next to `moto_server`.

use super::http::probe;
use super::server::ServerProcess;
use super::tools::{repo, tool, which};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

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
