//! The exporter binary cargo built for these tests, started on 127.0.0.1:0: it binds the port
//! itself and logs the address it got, so no other test can hold it; killed on drop.

use super::http::get;
use super::tools::KillOnDrop;
use super::{sample, wait_for};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The exporter binary cargo built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_iam-credentials-exporter");

/// A running exporter process, killed on drop.
pub struct Exporter {
    child: KillOnDrop,
    /// Where it listens.
    pub addr: SocketAddr,
    logs: Arc<Mutex<Vec<String>>>,
}

impl Exporter {
    /// Starts the binary with `args` plus `--web.listen-address=127.0.0.1:0`, and waits until
    /// it logs the address it bound.
    pub fn start(args: &[&str]) -> Exporter {
        Self::start_with_env(args, &[])
    }

    /// Like [`Exporter::start`], with extra environment variables.
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Exporter {
        let mut cmd = Command::new(BIN);
        cmd.arg("--web.listen-address=127.0.0.1:0")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("starting the exporter binary");
        let stderr = child.stderr.take().expect("piped stderr");
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let mut exporter = Exporter {
            child: KillOnDrop(child),
            addr: "127.0.0.1:1".parse().unwrap(),
            logs,
        };
        exporter.addr = wait_for(
            "the exporter to log its address",
            Duration::from_secs(20),
            || {
                if let Ok(Some(status)) = exporter.child.0.try_wait() {
                    panic!("the exporter exited with {status}: {}", exporter.logs());
                }
                exporter.logs.lock().unwrap().iter().find_map(|l| {
                    let rest = l
                        .split("address=")
                        .nth(1)
                        .or_else(|| l.split("\"address\":").nth(1))?;
                    rest.split([' ', ',', '}'])
                        .next()?
                        .trim_matches('"')
                        .parse()
                        .ok()
                })
            },
        );
        exporter
    }

    /// `http://ADDR{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Everything it logged so far.
    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }

    /// GETs the telemetry path and returns the body.
    pub fn metrics(&self) -> String {
        let r = get(&self.url("/metrics"));
        assert_eq!(r.status, 200, "{}", r.text());
        r.text()
    }

    /// Waits for a sample line to have `value`, returning the whole exposition.
    pub fn wait_for_sample(&self, series: &str, value: f64) -> String {
        wait_for(
            &format!("{series} == {value}"),
            Duration::from_secs(20),
            || {
                let m = self.metrics();
                (sample(&m, series) == Some(value)).then_some(m)
            },
        )
    }

    /// Sends a signal and waits for the process to exit, returning its exit status code.
    pub fn signal_and_wait(mut self, signal: &str) -> Option<i32> {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.0.id().to_string()])
            .status()
            .expect("running kill");
        assert!(status.success());
        let status = wait_for("the exporter to exit", Duration::from_secs(20), || {
            self.child.0.try_wait().unwrap()
        });
        status.code()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.0.id()
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        self.child.0.try_wait().unwrap().is_none()
    }
}
