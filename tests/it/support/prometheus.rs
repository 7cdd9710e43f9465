//! A real Prometheus for the tests (Debian's `prometheus` binary, run by hand on a private
//! loopback address): a temporary configuration and TSDB, a 1 s scrape and rule-evaluation
//! interval, queried through its HTTP API. Ready when its own `/-/ready` answers 200 while it
//! runs; killed (and its data directory removed) on drop.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

use super::http::{get, probe};
use super::server::ServerProcess;
use super::tools::tool;
use super::wait_for;

/// How long Prometheus may take to become ready.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A scrape job: its name and one target.
pub struct Scrape<'a> {
    /// `job_name`, which becomes the `job` label.
    pub job: &'a str,
    /// `host:port` of the target.
    pub target: SocketAddr,
}

/// A running Prometheus, killed (and its data directory removed) on drop.
pub struct Prometheus {
    server: ServerProcess,
    /// Where its HTTP API listens.
    pub addr: SocketAddr,
    // Dropped after the server is killed (fields drop in declaration order).
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus scraping `scrapes` every second and evaluating `rule_files` every
    /// second, and waits until it is ready.
    pub fn start(scrapes: &[Scrape], rule_files: &[PathBuf]) -> Prometheus {
        Self::start_alerting(scrapes, rule_files, None)
    }

    /// Like [`Prometheus::start`], sending alerts to the Alertmanager at `alertmanager`.
    pub fn start_alerting(
        scrapes: &[Scrape],
        rule_files: &[PathBuf],
        alertmanager: Option<SocketAddr>,
    ) -> Prometheus {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let config = dir.path().join("prometheus.yml");
        std::fs::write(&config, config_yaml(scrapes, rule_files, alertmanager)).unwrap();
        let data = dir.path().join("data");
        let server = ServerProcess::start(
            "prometheus",
            START_TIMEOUT,
            |addr| {
                let mut cmd = tool("prometheus");
                cmd.arg(format!("--config.file={}", config.display()))
                    .arg(format!("--storage.tsdb.path={}", data.display()))
                    .arg(format!("--web.listen-address={addr}"));
                cmd
            },
            |addr| probe(&format!("http://{addr}/-/ready")) == Some(200),
        );
        Prometheus {
            addr: server.addr,
            server,
            _dir: dir,
        }
    }

    /// `http://ADDR{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Everything Prometheus logged so far.
    pub fn logs(&self) -> String {
        self.server.logs()
    }

    /// GETs an API path (query string already encoded) and returns the JSON document.
    pub fn api(&self, path_and_query: &str) -> Value {
        let r = get(&self.url(path_and_query));
        serde_json::from_slice(&r.body).unwrap_or_else(|e| {
            panic!(
                "GET {path_and_query}: status {}, not JSON ({e}): {}",
                r.status,
                r.text()
            )
        })
    }

    /// Runs an instant query at the current time: the result list, or Prometheus's error
    /// (`errorType: error`) for an expression it refuses.
    pub fn query(&self, expr: &str) -> Result<Vec<Value>, String> {
        let v = self.api(&format!("/api/v1/query?query={}", encode(expr)));
        if v["status"] == "success" {
            match &v["data"]["result"] {
                Value::Array(a) => Ok(a.clone()),
                // Scalars and strings: one value.
                other => Ok(vec![other.clone()]),
            }
        } else {
            Err(format!("{}: {}", v["errorType"], v["error"]))
        }
    }

    /// Polls `expr` until it returns at least one result, panicking after `timeout`.
    pub fn wait_for_data(&self, expr: &str, timeout: Duration) -> Vec<Value> {
        wait_for(&format!("`{expr}` to return data"), timeout, || {
            let r = self.query(expr).unwrap_or_else(|e| panic!("`{expr}`: {e}"));
            (!r.is_empty()).then_some(r)
        })
    }
}

fn config_yaml(
    scrapes: &[Scrape],
    rule_files: &[PathBuf],
    alertmanager: Option<SocketAddr>,
) -> String {
    let mut y = String::from(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n",
    );
    if let Some(am) = alertmanager {
        y.push_str(&format!(
            "alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: [{}]\n",
            yaml_string(&am.to_string())
        ));
    }
    if !rule_files.is_empty() {
        y.push_str("rule_files:\n");
        for f in rule_files {
            y.push_str(&format!("  - {}\n", yaml_string(&f.display().to_string())));
        }
    }
    y.push_str("scrape_configs:\n");
    for s in scrapes {
        y.push_str(&format!(
            "  - job_name: {}\n    static_configs:\n      - targets: [{}]\n",
            yaml_string(s.job),
            yaml_string(&s.target.to_string())
        ));
    }
    y
}

/// A YAML double-quoted scalar (JSON's string syntax is valid YAML).
fn yaml_string(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// Percent-encodes a query-string value (everything but RFC 3986's unreserved characters).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}
