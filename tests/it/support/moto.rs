//! moto's server (PyPI `moto[server]`) as the stand-in for AWS IAM, STS and Organizations:
//! started on a free loopback port, polled until it answers, killed on drop. Tests seed and
//! change it with boto3 through `tests/moto/iam.py`, run by the Python next to `moto_server`.

use super::tools::{tool, which};
use super::wait_for;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running moto server, killed on drop.
pub struct Moto {
    child: Child,
    /// The port it listens on, on 127.0.0.1.
    pub port: u16,
    python: PathBuf,
}

impl Moto {
    /// Starts `moto_server` from PATH (installed by scripts/install-test-tools) on a free port
    /// and waits until it accepts connections. Fails the test when moto is missing.
    pub fn start() -> Moto {
        // A port picked by binding :0 can be taken before moto binds it: try a few.
        for _ in 0..3 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("picking a free port")
                .port();
            let mut cmd = tool("moto_server");
            let python = which("moto_server")
                .parent()
                .expect("moto_server lives in a directory")
                .join("python");
            let child = cmd
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("starting moto_server");
            let mut moto = Moto {
                child,
                port,
                python,
            };
            let up = wait_for("moto_server to listen", Duration::from_secs(30), || {
                if let Ok(Some(_)) = moto.child.try_wait() {
                    return Some(false);
                }
                TcpStream::connect(("127.0.0.1", port)).ok().map(|_| true)
            });
            if up {
                return moto;
            }
        }
        panic!("moto_server exited three times at start-up");
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
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
        let script = super::repo().join("tests/moto").join(name);
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
            "{name} {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
