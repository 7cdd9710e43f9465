//! Helpers shared by the integration tests: start the real binary on 127.0.0.1:0, talk HTTP
//! to it, and poll for conditions against a deadline.
#![allow(dead_code)]

// examples/fake_iam.rs includes this file by its path too.
#[path = "../../common/aws_query.rs"]
pub mod aws_query;
pub mod moto;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub mod prometheus;
pub mod tools;

pub use tools::{repo, tool};

/// The exporter binary cargo built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_iam-credentials-exporter");

/// The bundled sample report.
pub fn sample_report() -> PathBuf {
    repo().join("examples/credential-report.csv")
}

/// The moment the bundled sample report describes: its findings (root used within a day, keys
/// just past 90 days...) hold when it is judged at this time.
pub const SAMPLE_AS_OF: &str = "2026-11-25T06:00:00Z";

/// Writes the sample report to `dest` with every timestamp moved forward by the time since
/// [`SAMPLE_AS_OF`], so that the daemon, which judges at the wall clock, finds what the sample
/// was written to show whatever day the tests run.
pub fn write_fresh_sample_report(dest: &Path) {
    let as_of = chrono::DateTime::parse_from_rfc3339(SAMPLE_AS_OF).unwrap();
    let shift = chrono::Utc::now().signed_duration_since(as_of);
    let timestamp = regex::Regex::new(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(Z|\+00:00)").unwrap();
    let csv = std::fs::read_to_string(sample_report()).unwrap();
    let shifted = timestamp.replace_all(&csv, |c: &regex::Captures| {
        let t = chrono::DateTime::parse_from_rfc3339(&c[0]).unwrap() + shift;
        let text = t.format("%Y-%m-%dT%H:%M:%S").to_string();
        format!("{text}{}", &c[1])
    });
    assert_ne!(shifted, csv, "the sample report has timestamps to move");
    std::fs::write(dest, shifted.as_bytes()).unwrap();
}

/// Polls `probe` until it returns `Some`, or panics naming `what` after `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// A running exporter process, killed on drop.
pub struct Exporter {
    child: Child,
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
            child,
            addr: "127.0.0.1:1".parse().unwrap(),
            logs,
        };
        exporter.addr = wait_for(
            "the exporter to log its address",
            Duration::from_secs(20),
            || {
                if let Ok(Some(status)) = exporter.child.try_wait() {
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
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .expect("running kill");
        assert!(status.success());
        let status = wait_for("the exporter to exit", Duration::from_secs(20), || {
            self.child.try_wait().unwrap()
        });
        status.code()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP response.
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Headers, lower-cased names.
    pub headers: HashMap<String, String>,
    /// Raw body bytes.
    pub body: Vec<u8>,
}

impl Reply {
    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// Sends a request with any method and headers; never fails on a status code.
pub fn request(method: &str, url: &str, headers: &[(&str, &str)]) -> Reply {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let mut req = ureq::http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = agent
        .run(req.body(()).unwrap())
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let body = resp
        .into_body()
        .with_config()
        .limit(256 * 1024 * 1024)
        .read_to_vec()
        .unwrap_or_default();
    Reply {
        status,
        headers,
        body,
    }
}

/// GET.
pub fn get(url: &str) -> Reply {
    request("GET", url, &[])
}

/// The value of the sample line that starts with `series ` exactly (name and labels as
/// written in the exposition).
pub fn sample(exposition: &str, series: &str) -> Option<f64> {
    exposition.lines().find_map(|l| {
        let rest = l.strip_prefix(series)?.strip_prefix(' ')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// Lines that start with `prefix`.
pub fn lines_with<'a>(exposition: &'a str, prefix: &str) -> Vec<&'a str> {
    exposition
        .lines()
        .filter(|l| l.starts_with(prefix))
        .collect()
}

/// Copies `src` to `dst` atomically (write then rename), as a deploy would.
pub fn replace_file(dst: &Path, contents: &[u8]) {
    let tmp = dst.with_extension("tmp");
    std::fs::write(&tmp, contents).unwrap();
    std::fs::rename(&tmp, dst).unwrap();
}
