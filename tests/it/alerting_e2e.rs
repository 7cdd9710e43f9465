//! The whole path to a page, on loopback: moto's IAM, the exporter reading it through the AWS
//! SDK, a real Prometheus scraping the exporter with the bundled rules, a real Alertmanager
//! routed as the README shows, and a webhook receiver standing in for the pager.
//!
//! A console user's MFA device is removed in moto: the webhook must receive the MFA alert that
//! names the user and the account. MFA is restored: the same alert must arrive resolved.
//!
//! Before that, the path itself is proven with an alert that fires at once and that nothing
//! later waits for: IamCredentialsRootMfaDisabled (critical, `for: 0m`). It pages only where
//! the report has a root row saying root has credentials, and moto writes none, so moto gets
//! one ([`Moto::add_root_row`]: a `<root_account>` user with a password and no MFA), while
//! its live summary says AccountMFAEnabled=0. The MFA regressions cannot serve as the proof:
//! the test waits for them after the removal, and an alert already firing would send no new
//! notification then.
use crate::support::http::probe;
use crate::support::moto::Moto;
use crate::support::prometheus::{Prometheus, Scrape};
use crate::support::server::ServerProcess;
use crate::support::{repo, tool, wait_for, Exporter};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// moto's default account.
const ACCOUNT: &str = "123456789012";

/// How long each step of the path may take on a slow, busy machine.
const STEP: Duration = Duration::from_secs(120);

/// A webhook receiver: an HTTP/1.1 server on 127.0.0.1 that keeps every JSON body posted to it,
/// with the moment it arrived.
struct Webhook {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<(Instant, Value)>>>,
}

impl Webhook {
    fn start() -> Webhook {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let sink = received.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let sink = sink.clone();
                std::thread::spawn(move || serve_connection(stream, &sink));
            }
        });
        Webhook { addr, received }
    }

    /// Every alert received so far, with the moment its notification arrived.
    fn alerts(&self) -> Vec<(Instant, Value)> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .flat_map(|(at, body)| {
                body["alerts"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .map(move |a| (*at, a))
            })
            .collect()
    }

    /// Polls until an alert named `name` with `status` and `user` arrives after `since`.
    fn wait_for_alert(
        &self,
        name: &str,
        status: &str,
        user: Option<&str>,
        since: Instant,
    ) -> (Instant, Value) {
        wait_for(
            &format!("{name} ({status}, user {user:?}) at the webhook"),
            STEP,
            || {
                self.alerts().into_iter().find(|(at, a)| {
                    *at >= since
                        && a["status"] == status
                        && a["labels"]["alertname"] == name
                        && a["labels"]["account_id"] == ACCOUNT
                        && user.is_none_or(|u| a["labels"]["user"] == u)
                })
            },
        )
    }
}

/// Reads requests off one keep-alive connection, answering each with 200.
fn serve_connection(stream: TcpStream, sink: &Mutex<Vec<(Instant, Value)>>) {
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    loop {
        let mut length = 0usize;
        let mut line = String::new();
        // The request line, then headers up to the empty line.
        let mut first = true;
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let l = line.trim_end();
            if l.is_empty() {
                if first {
                    continue;
                }
                break;
            }
            first = false;
            if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        if let Ok(v) = serde_json::from_slice(&body) {
            sink.lock().unwrap().push((Instant::now(), v));
        }
        if writer
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            .is_err()
        {
            return;
        }
    }
}

/// A real Alertmanager (Debian's `prometheus-alertmanager`) on a private loopback address,
/// ready when its own `/-/ready` answers 200 while it runs; killed on drop.
struct Alertmanager {
    addr: SocketAddr,
    /// Dropped (killed) before its directory is removed.
    _server: ServerProcess,
    _dir: tempfile::TempDir,
}

impl Alertmanager {
    /// Starts it with the README's paging routes, both delivering to `webhook`, and waits
    /// until it is ready.
    fn start(webhook: SocketAddr) -> Alertmanager {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("alertmanager.yml");
        std::fs::write(
            &config,
            format!(
                r#"route:
  receiver: ignore
  group_by: [alertname, account_id, user]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
  routes:
    - matchers: ['alertname=~"IamCredentials.+"', 'severity="critical"']
      receiver: pager
    - matchers: ['alertname=~"IamCredentials.+"', 'page="true"']
      receiver: pager
receivers:
  - name: ignore
  - name: pager
    webhook_configs:
      - url: http://{webhook}/
        send_resolved: true
"#
            ),
        )
        .unwrap();
        let data = dir.path().join("data");
        let server = ServerProcess::start(
            "prometheus-alertmanager",
            STEP,
            |addr| {
                let mut cmd = tool("prometheus-alertmanager");
                cmd.arg(format!("--config.file={}", config.display()))
                    .arg(format!("--storage.path={}", data.display()))
                    .arg(format!("--web.listen-address={addr}"))
                    .arg("--cluster.listen-address=");
                cmd
            },
            |addr| probe(&format!("http://{addr}/-/ready")) == Some(200),
        );
        Alertmanager {
            addr: server.addr,
            _server: server,
            _dir: dir,
        }
    }
}

#[test]
fn a_removed_mfa_device_pages_and_its_restoration_resolves() {
    let moto = Moto::start();
    moto.iam(&["seed"]);
    moto.add_root_row();
    let env = moto.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let exporter = Exporter::start_with_env(&["--refresh.interval=1s"], &env);
    let webhook = Webhook::start();
    let alertmanager = Alertmanager::start(webhook.addr);
    let prom = Prometheus::start_alerting(
        &[Scrape {
            job: "iam-credentials-exporter",
            target: exporter.addr,
        }],
        &[repo().join("prometheus/alerts.yml")],
        Some(alertmanager.addr),
    );

    // Prometheus has seen alice with MFA, and the path works: root has a password and no MFA
    // in moto, a critical alert that must reach the pager by itself.
    prom.wait_for_data(
        &format!(r#"aws_iam_user_mfa_active{{account_id="{ACCOUNT}",user="alice"}} == 1"#),
        STEP,
    );
    prom.wait_for_data(
        &format!(r#"aws_iam_root_credentials_present{{account_id="{ACCOUNT}"}} == 1"#),
        STEP,
    );
    webhook.wait_for_alert(
        "IamCredentialsRootMfaDisabled",
        "firing",
        None,
        Instant::now() - STEP,
    );
    assert!(
        !webhook
            .alerts()
            .iter()
            .any(|(_, a)| a["labels"]["alertname"] == "IamCredentialsConsoleUserMfaRemoved"),
        "no MFA was removed yet: {:?}",
        webhook.alerts()
    );

    // alice loses her MFA device.
    let removed = Instant::now();
    moto.iam(&["deactivate-mfa", "alice"]);
    let (at, alert) = webhook.wait_for_alert(
        "IamCredentialsConsoleUserMfaRemoved",
        "firing",
        Some("alice"),
        removed,
    );
    let description = alert["annotations"]["description"]
        .as_str()
        .unwrap_or_default();
    assert!(
        description.contains("alice") && description.contains(ACCOUNT),
        "the page must name the user and the account: {alert}"
    );
    assert_eq!(alert["labels"]["page"], "true", "{alert}");
    assert!(
        alert["annotations"]["runbook_url"]
            .as_str()
            .is_some_and(|u| u.ends_with("#iamcredentialsconsoleusermfaremoved")),
        "{alert}"
    );
    println!(
        "MFA removed in moto -> IamCredentialsConsoleUserMfaRemoved at the webhook: {:.1} s",
        (at - removed).as_secs_f64()
    );
    // The live account summary pages too, and so does the rising count.
    webhook.wait_for_alert("IamCredentialsMfaDevicesDecreased", "firing", None, removed);
    webhook.wait_for_alert(
        "IamCredentialsConsoleUsersWithoutMfaIncreased",
        "firing",
        None,
        removed,
    );

    // alice gets an MFA device again: the page resolves.
    let restored = Instant::now();
    moto.iam(&["enable-mfa", "alice"]);
    let (at, _) = webhook.wait_for_alert(
        "IamCredentialsConsoleUserMfaRemoved",
        "resolved",
        Some("alice"),
        restored,
    );
    println!(
        "MFA restored in moto -> IamCredentialsConsoleUserMfaRemoved resolved at the webhook: {:.1} s",
        (at - restored).as_secs_f64()
    );
    webhook.wait_for_alert(
        "IamCredentialsMfaDevicesDecreased",
        "resolved",
        None,
        restored,
    );
}
