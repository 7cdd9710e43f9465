//! The whole path to a page, on loopback: moto's IAM, the exporter reading it through the AWS
//! SDK, a real Prometheus scraping the exporter with the bundled rules, a real Alertmanager
//! routed as the README shows (its example's routes, read from the README itself), and webhook
//! receivers standing in for the pager and for a team's channel.
//!
//! A console user's MFA device is removed in moto: the pager's webhook must receive the MFA
//! alert that names the user and the account. MFA is restored: the same alert must arrive
//! resolved. The user is tagged `team=payments` in moto and the exporter reads the tags
//! (`--aws.user-tags=owner,team`), so the alert carries `tag_owner` and `tag_team`, and the
//! README's team route must send it to the payments webhook as well, while it still pages. A
//! second user without tags loses MFA at the same time: that alert pages and must never reach
//! the payments webhook.
//!
//! Before that, the path itself is proven with an alert that fires at once and that nothing
//! later waits for: IamCredentialsRootMfaDisabled (critical, `for: 0m`). It pages only where
//! the report has a root row saying root has credentials, and moto writes none, so moto gets
//! one ([`Moto::add_root_row`]: a `<root_account>` user with a password and no MFA), while
//! its live summary says AccountMFAEnabled=0. The MFA regressions cannot serve as the proof:
//! the test waits for them after the removal, and an alert already firing would send no new
//! notification then.
use crate::support::http::{get, probe};
use crate::support::loopback::Loopback;
use crate::support::moto::Moto;
use crate::support::prometheus::{Prometheus, Scrape};
use crate::support::server::ServerProcess;
use crate::support::tools::run;
use crate::support::{repo, tool, wait_for, Exporter};
use aws_sdk_iam::types::Tag;
use serde_json::Value;
use serde_yaml_ng::{Mapping, Value as Yaml};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// moto's default account.
const ACCOUNT: &str = "123456789012";

/// The `owner` tag of the payments team's user (alice).
const OWNER: &str = "alice@example.com";

/// How long each step of the path may take on a slow, busy machine.
const STEP: Duration = Duration::from_secs(120);

/// A webhook receiver: an HTTP/1.1 server on a private loopback address ([`Loopback`]) that
/// keeps every JSON body posted to it, with the moment it arrived.
struct Webhook {
    /// What it stands for (`pager`, `payments`), for messages.
    name: &'static str,
    addr: SocketAddr,
    received: Arc<Mutex<Vec<(Instant, Value)>>>,
    _address: Loopback,
}

impl Webhook {
    fn start(name: &'static str) -> Webhook {
        let address = Loopback::claim();
        let listener = TcpListener::bind(address.free_addr()).unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let sink = received.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let sink = sink.clone();
                std::thread::spawn(move || serve_connection(stream, &sink));
            }
        });
        Webhook {
            name,
            addr,
            received,
            _address: address,
        }
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
            &format!(
                "{name} ({status}, user {user:?}) at the {} webhook",
                self.name
            ),
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

/// The README's Alertmanager example: the YAML block under "Alerts and dashboards" that starts
/// with `# alertmanager.yml:`, as written.
fn readme_alertmanager_example() -> String {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let fence = "```yaml\n# alertmanager.yml:";
    let start = readme
        .find(fence)
        .unwrap_or_else(|| panic!("README.md has no block that starts with {fence:?}"))
        + "```yaml\n".len();
    let end = start
        + readme[start..]
            .find("\n```")
            .expect("the README's Alertmanager example ends")
        + 1;
    readme[start..end].to_owned()
}

/// The README's Alertmanager example with its route tree as written, notifying within a
/// second (`group_wait`, `group_interval`), and each of its receivers replaced by one of the
/// test's: `default` drops what it gets, `pager` and `payments` post to their webhooks. A
/// receiver the test does not know fails the test, so the README cannot gain one unseen.
fn alertmanager_config(pager: SocketAddr, payments: SocketAddr) -> String {
    let example = readme_alertmanager_example();
    let example: Mapping = serde_yaml_ng::from_str(&example)
        .unwrap_or_else(|e| panic!("the README's Alertmanager example: {e}\n{example}"));
    let names: Vec<&str> = example["receivers"]
        .as_sequence()
        .expect("the README's example has receivers")
        .iter()
        .map(|r| r["name"].as_str().expect("a receiver has a name"))
        .collect();
    assert_eq!(
        names,
        ["default", "pager", "payments"],
        "the README's Alertmanager receivers changed: give the test one for each"
    );
    let mut route = example["route"].clone();
    let timing = route.as_mapping_mut().expect("the README's route");
    for (key, value) in [
        ("group_wait", "1s"),
        ("group_interval", "1s"),
        ("repeat_interval", "1h"),
    ] {
        timing.insert(key.into(), value.into());
    }
    let webhook = |name: &str, addr: SocketAddr| -> Yaml {
        serde_yaml_ng::from_str(&format!(
            "{{ name: {name}, webhook_configs: [{{ url: 'http://{addr}/', send_resolved: true }}] }}"
        ))
        .unwrap()
    };
    let mut config = Mapping::new();
    config.insert("route".into(), route);
    config.insert(
        "receivers".into(),
        Yaml::Sequence(vec![
            serde_yaml_ng::from_str("{ name: default }").unwrap(),
            webhook("pager", pager),
            webhook("payments", payments),
        ]),
    );
    serde_yaml_ng::to_string(&config).unwrap()
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
    /// Starts it with the README's routes ([`alertmanager_config`]), the pager's and the
    /// payments team's receivers delivering to their webhooks, and waits until it is ready.
    fn start(pager: &Webhook, payments: &Webhook) -> Alertmanager {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("alertmanager.yml");
        std::fs::write(&config, alertmanager_config(pager.addr, payments.addr)).unwrap();
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

    /// The receivers Alertmanager routes the active alert `name` of `user` to, sorted, as its
    /// own API says (`GET /api/v2/alerts`: the route tree matched against the alert's labels);
    /// `None` while it has no such alert.
    fn receivers(&self, name: &str, user: &str) -> Option<Vec<String>> {
        let reply = get(&format!("http://{}/api/v2/alerts", self.addr));
        let alerts: Value = serde_json::from_slice(&reply.body)
            .unwrap_or_else(|e| panic!("/api/v2/alerts: {e}: {}", reply.text()));
        let alert = alerts.as_array()?.iter().find(|a| {
            a["labels"]["alertname"] == name
                && a["labels"]["account_id"] == ACCOUNT
                && a["labels"]["user"] == user
        })?;
        let mut names: Vec<String> = alert["receivers"]
            .as_array()?
            .iter()
            .filter_map(|r| r["name"].as_str().map(str::to_owned))
            .collect();
        names.sort();
        Some(names)
    }
}

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build().unwrap()
}

/// The README's example, as written (its receivers too), is a valid Alertmanager config, and
/// its routes, as `amtool config routes test` walks them, send a team's alerts to the team and
/// still page what pages: the team route comes first with `continue: true`.
#[test]
fn the_readme_alertmanager_example_sends_a_team_its_alerts_and_still_pages() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("alertmanager.yml");
    std::fs::write(&config, readme_alertmanager_example()).unwrap();
    let out = run(
        {
            let mut cmd = tool("amtool");
            cmd.arg("check-config").arg(&config);
            cmd
        },
        dir.path(),
        STEP,
    );
    assert!(out.status.success(), "{}", out.both());
    for (labels, receivers) in [
        // The team's page: to the team and to the pager.
        (
            "alertname=IamCredentialsConsoleUserMfaRemoved severity=warning page=true tag_team=payments",
            "payments,pager",
        ),
        (
            "alertname=IamCredentialsRootMfaDisabled severity=critical tag_team=payments",
            "payments,pager",
        ),
        // The team's other alerts: to the team alone.
        (
            "alertname=IamCredentialsConsoleUserWithoutMfa severity=warning tag_team=payments",
            "payments",
        ),
        // Pages without a team, or of another team: to the pager alone.
        (
            "alertname=IamCredentialsConsoleUserMfaRemoved severity=warning page=true",
            "pager",
        ),
        (
            "alertname=IamCredentialsConsoleUserMfaRemoved severity=warning page=true tag_team=platform",
            "pager",
        ),
        ("alertname=IamCredentialsRootMfaDisabled severity=critical", "pager"),
        // The rest: the default receiver.
        (
            "alertname=IamCredentialsConsoleUserWithoutMfa severity=warning tag_team=platform",
            "default",
        ),
        ("alertname=NodeDown severity=critical tag_team=payments", "default"),
    ] {
        let out = run(
            {
                let mut cmd = tool("amtool");
                cmd.arg("config")
                    .arg("routes")
                    .arg("test")
                    .arg(format!("--config.file={}", config.display()))
                    .args(labels.split(' '));
                cmd
            },
            dir.path(),
            STEP,
        );
        assert!(out.status.success(), "{labels}: {}", out.both());
        assert_eq!(out.stdout.trim(), receivers, "{labels}: {}", out.both());
    }
}

#[test]
fn a_removed_mfa_device_pages_and_its_restoration_resolves() {
    let moto = Moto::start();
    moto.iam(&["seed"]);
    moto.add_root_row();
    // alice belongs to the payments team; dave, who loses his MFA device with her, has no tags.
    moto.sdk()
        .run(async |iam| {
            iam.tag_user()
                .user_name("alice")
                .tags(tag("owner", OWNER))
                .tags(tag("team", "payments"))
                .send()
                .await
        })
        .unwrap_or_else(|e| panic!("tagging alice in moto: {e:?}"));
    let env = moto.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let exporter = Exporter::start_with_env(
        &["--refresh.interval=1s", "--aws.user-tags=owner,team"],
        &env,
    );
    let pager = Webhook::start("pager");
    let payments = Webhook::start("payments");
    let alertmanager = Alertmanager::start(&pager, &payments);
    let prom = Prometheus::start_alerting(
        &[Scrape {
            job: "iam-credentials-exporter",
            target: exporter.addr,
        }],
        &[repo().join("prometheus/alerts.yml")],
        Some(alertmanager.addr),
    );

    // Prometheus has seen alice and dave with MFA, and alice's tags; and the path works: root
    // has a password and no MFA in moto, a critical alert that must reach the pager by itself.
    for user in ["alice", "dave"] {
        prom.wait_for_data(
            &format!(r#"aws_iam_user_mfa_active{{account_id="{ACCOUNT}",user="{user}"}} == 1"#),
            STEP,
        );
    }
    prom.wait_for_data(
        &format!(
            r#"aws_iam_user_info{{account_id="{ACCOUNT}",user="alice",tag_owner="{OWNER}",tag_team="payments"}}"#
        ),
        STEP,
    );
    prom.wait_for_data(
        &format!(r#"aws_iam_root_credentials_present{{account_id="{ACCOUNT}"}} == 1"#),
        STEP,
    );
    pager.wait_for_alert(
        "IamCredentialsRootMfaDisabled",
        "firing",
        None,
        Instant::now() - STEP,
    );
    assert!(
        !pager
            .alerts()
            .iter()
            .any(|(_, a)| a["labels"]["alertname"] == "IamCredentialsConsoleUserMfaRemoved"),
        "no MFA was removed yet: {:?}",
        pager.alerts()
    );

    // alice and dave lose their MFA devices.
    let removed = Instant::now();
    moto.iam(&["deactivate-mfa", "alice"]);
    moto.iam(&["deactivate-mfa", "dave"]);
    let (at, alert) = pager.wait_for_alert(
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
    assert_eq!(alert["labels"]["tag_team"], "payments", "{alert}");
    assert_eq!(alert["labels"]["tag_owner"], OWNER, "{alert}");
    println!(
        "MFA removed in moto -> IamCredentialsConsoleUserMfaRemoved at the pager's webhook: {:.1} s",
        (at - removed).as_secs_f64()
    );
    // The same page reaches the payments team, with the owner.
    let (at, team_alert) = payments.wait_for_alert(
        "IamCredentialsConsoleUserMfaRemoved",
        "firing",
        Some("alice"),
        removed,
    );
    eprintln!(
        "the alert the payments webhook received:\n{}",
        serde_json::to_string_pretty(&team_alert).unwrap()
    );
    println!(
        "MFA removed in moto -> IamCredentialsConsoleUserMfaRemoved at the payments webhook: {:.1} s",
        (at - removed).as_secs_f64()
    );
    assert_eq!(team_alert["labels"]["tag_team"], "payments", "{team_alert}");
    assert_eq!(team_alert["labels"]["tag_owner"], OWNER, "{team_alert}");
    assert_eq!(team_alert["labels"]["page"], "true", "{team_alert}");
    assert_eq!(
        team_alert["labels"], alert["labels"],
        "one alert, two receivers"
    );
    // dave's page: no tags, so the pager alone.
    let (_, untagged) = pager.wait_for_alert(
        "IamCredentialsConsoleUserMfaRemoved",
        "firing",
        Some("dave"),
        removed,
    );
    for label in ["tag_owner", "tag_team"] {
        assert!(untagged["labels"].get(label).is_none(), "{untagged}");
    }
    // Alertmanager's own word on the routing of the two.
    let routed = |user: &str| {
        wait_for(
            &format!("{user}'s IamCredentialsConsoleUserMfaRemoved in Alertmanager's API"),
            STEP,
            || alertmanager.receivers("IamCredentialsConsoleUserMfaRemoved", user),
        )
    };
    assert_eq!(routed("alice"), ["pager", "payments"]);
    assert_eq!(routed("dave"), ["pager"]);
    // The live account summary pages too, and so does the rising count.
    pager.wait_for_alert("IamCredentialsMfaDevicesDecreased", "firing", None, removed);
    pager.wait_for_alert(
        "IamCredentialsConsoleUsersWithoutMfaIncreased",
        "firing",
        None,
        removed,
    );

    // alice and dave get an MFA device again: the pages resolve, at the team's webhook too.
    let restored = Instant::now();
    moto.iam(&["enable-mfa", "alice"]);
    moto.iam(&["enable-mfa", "dave"]);
    let (at, _) = pager.wait_for_alert(
        "IamCredentialsConsoleUserMfaRemoved",
        "resolved",
        Some("alice"),
        restored,
    );
    println!(
        "MFA restored in moto -> IamCredentialsConsoleUserMfaRemoved resolved at the pager's webhook: {:.1} s",
        (at - restored).as_secs_f64()
    );
    payments.wait_for_alert(
        "IamCredentialsConsoleUserMfaRemoved",
        "resolved",
        Some("alice"),
        restored,
    );
    pager.wait_for_alert(
        "IamCredentialsConsoleUserMfaRemoved",
        "resolved",
        Some("dave"),
        restored,
    );
    pager.wait_for_alert(
        "IamCredentialsMfaDevicesDecreased",
        "resolved",
        None,
        restored,
    );

    // By now every notification of the firing alerts went out (their groups were flushed
    // before the resolutions above): the payments webhook got alice's alerts and nothing else,
    // neither dave's page nor the account's (root, the counts), which carry no team.
    let stray: Vec<Value> = payments
        .alerts()
        .into_iter()
        .map(|(_, a)| a)
        .filter(|a| a["labels"]["tag_team"] != "payments" || a["labels"]["user"] != "alice")
        .collect();
    assert!(
        stray.is_empty(),
        "alerts without the payments team reached its webhook: {stray:#?}"
    );
    assert!(
        pager
            .alerts()
            .iter()
            .any(|(_, a)| a["labels"]["alertname"] == "IamCredentialsRootMfaDisabled"),
        "{:?}",
        pager.alerts()
    );
}
