//! Many accounts, with real parts: moto's server as AWS Organizations, STS and IAM, an
//! organization of member accounts each with its own IAM users (created with credentials from
//! assume_role into each account), and the real exporter binary discovering them from a config
//! file.
//!
//! moto accepts any role in any account, so a refused AssumeRole comes from a gate in front of
//! moto's STS (`AWS_ENDPOINT_URL_STS`): it answers `AccessDenied` for the accounts it is told to
//! refuse and passes everything else through to moto.
use crate::support::moto::Moto;
use crate::support::{get, replace_file, request, sample, wait_for, Exporter};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const LONG: Duration = Duration::from_secs(90);

/// An organization seeded in moto: (id, name, users) per account, the management one first.
fn seed(moto: &Moto, members: usize) -> Vec<(String, String, u32)> {
    moto.organization(&["seed", &members.to_string()])
        .lines()
        .map(|l| {
            let mut f = l.split_whitespace();
            (
                f.next().unwrap().to_owned(),
                f.next().unwrap().to_owned(),
                f.next().unwrap().parse().unwrap(),
            )
        })
        .collect()
}

/// The `account_id` values of the lines of `metric`.
fn accounts_of(m: &str, metric: &str) -> BTreeSet<String> {
    let prefix = format!("{metric}{{account_id=\"");
    m.lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_owned)
        .collect()
}

fn value(m: &str, metric: &str, account: &str) -> Option<f64> {
    sample(m, &format!("{metric}{{account_id=\"{account}\"}}"))
}

fn env_refs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// A gate in front of moto's STS: AssumeRole into a refused account answers AccessDenied,
/// everything else is passed to moto. One request per connection (`Connection: close`).
struct StsGate {
    port: u16,
    refused: Arc<Mutex<BTreeSet<String>>>,
}

impl StsGate {
    fn start(moto: SocketAddr) -> StsGate {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let refused = Arc::new(Mutex::new(BTreeSet::new()));
        let gate = refused.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let refused = gate.clone();
                std::thread::spawn(move || {
                    let _ = pass(conn, moto, &refused);
                });
            }
        });
        StsGate { port, refused }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn refuse(&self, account: &str, on: bool) {
        let mut r = self.refused.lock().unwrap();
        if on {
            r.insert(account.to_owned());
        } else {
            r.remove(account);
        }
    }
}

fn write_message(w: &mut TcpStream, head: &[String], body: &[u8]) -> std::io::Result<()> {
    let mut out = String::new();
    for (i, h) in head.iter().enumerate() {
        let name = h.split(':').next().unwrap_or("").trim();
        if i > 0 && name.eq_ignore_ascii_case("connection") {
            continue;
        }
        out.push_str(h);
        out.push_str("\r\n");
        if i == 0 {
            out.push_str("Connection: close\r\n");
        }
    }
    out.push_str("\r\n");
    w.write_all(out.as_bytes())?;
    w.write_all(body)?;
    w.flush()
}

fn pass(
    client: TcpStream,
    moto: SocketAddr,
    refused: &Mutex<BTreeSet<String>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut client = client;
    let (head, body) = crate::support::http::read_message(&mut reader)?;
    let text = String::from_utf8_lossy(&body);
    let denied = refused.lock().unwrap().iter().any(|id| {
        text.contains("Action=AssumeRole") && text.contains(&format!("iam%3A%3A{id}%3Arole"))
    });
    if denied {
        let xml = "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>not authorized to perform sts:AssumeRole</Message></Error><RequestId>gate</RequestId></ErrorResponse>";
        let head = vec![
            "HTTP/1.1 403 Forbidden".to_owned(),
            "Content-Type: text/xml".to_owned(),
            format!("Content-Length: {}", xml.len()),
        ];
        return write_message(&mut client, &head, xml.as_bytes());
    }
    let mut upstream = TcpStream::connect(moto)?;
    write_message(&mut upstream, &head, &body)?;
    let (rhead, rbody) = crate::support::http::read_message(&mut BufReader::new(upstream))?;
    write_message(&mut client, &rhead, &rbody)
}

fn write_config(path: &Path, text: &str) {
    replace_file(path, text.as_bytes());
}

#[test]
fn discovers_an_organization_and_keeps_reading_when_one_account_fails() {
    let moto = Moto::start();
    // 25 members; every fifth is named sandbox-NN and excluded by the config below.
    let org = seed(&moto, 25);
    let gate = StsGate::start(moto.addr());
    let watched: Vec<&(String, String, u32)> = org
        .iter()
        .filter(|(_, n, _)| !n.starts_with("sandbox-"))
        .collect();
    let sandboxes: Vec<&String> = org
        .iter()
        .filter(|(_, n, _)| n.starts_with("sandbox-"))
        .map(|(id, _, _)| id)
        .collect();
    assert_eq!((watched.len(), sandboxes.len()), (21, 5));
    // This member's role is refused from the start.
    let failing = watched[1].0.clone();
    gate.refuse(&failing, true);

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yml");
    write_config(
        &config,
        "refresh: { interval: 1s, concurrency: 4 }\n\
         organization:\n  role_name: iam-credentials-exporter\n  exclude_names: ['^sandbox-']\n",
    );
    let mut env = moto.env();
    env.push(("AWS_ENDPOINT_URL_STS", gate.url()));
    let exporter = Exporter::start_with_env(
        &["--config.file", config.to_str().unwrap()],
        &env_refs(&env),
    );

    // Every other account is discovered and served with its own user count.
    let m = wait_for("every healthy account to be read", LONG, || {
        let m = exporter.metrics();
        let ok = watched
            .iter()
            .filter(|(id, ..)| *id != failing)
            .all(|(id, _, users)| {
                value(&m, "aws_iam_users", id) == Some(f64::from(*users))
                    && value(&m, "iam_credentials_exporter_refresh_success", id) == Some(1.0)
            });
        let failed = value(&m, "iam_credentials_exporter_refresh_success", &failing) == Some(0.0);
        (ok && failed).then_some(m)
    });
    assert_eq!(sample(&m, "iam_credentials_exporter_accounts"), Some(21.0));
    assert_eq!(
        sample(&m, "iam_credentials_exporter_organization_accounts"),
        Some(org.len() as f64)
    );
    assert_eq!(
        sample(
            &m,
            "iam_credentials_exporter_organization_discovery_success"
        ),
        Some(1.0)
    );
    // The listing's retries, every cause it can meet, from the first listing on.
    for cause in ["throttled", "service_error", "timeout", "network"] {
        assert_eq!(
            sample(
                &m,
                &format!(
                    "iam_credentials_exporter_aws_retries_total{{api=\"ListAccounts\",cause=\"{cause}\"}}"
                )
            ),
            Some(0.0),
            "{cause}"
        );
    }
    assert!(!m.contains("api=\"ListAccounts\",cause=\"report_"));
    assert_eq!(
        sample(&m, "iam_credentials_exporter_config_last_reload_successful"),
        Some(1.0)
    );
    let read: BTreeSet<String> = accounts_of(&m, "iam_credentials_exporter_refresh_success");
    let expected: BTreeSet<String> = watched.iter().map(|(id, ..)| id.clone()).collect();
    assert_eq!(read, expected, "excluded sandboxes must not be read");
    // The failing account: reason credentials, no report series.
    assert!(
        sample(
            &m,
            &format!(
                "iam_credentials_exporter_refresh_failures_total{{account_id=\"{failing}\",reason=\"credentials\"}}"
            )
        )
        .is_some_and(|n| n >= 1.0),
        "{m}"
    );
    assert_eq!(value(&m, "aws_iam_users", &failing), None);
    // Per-user series: every member has an alice with a console password, each her own.
    let alices = m
        .lines()
        .filter(|l| l.starts_with("aws_iam_user_password_enabled{") && l.contains("user=\"alice\""))
        .count();
    // 20 members read, one of them failing: 19 alices, none from the management account.
    assert_eq!(alices, 19, "one alice per healthy member account");
    // Display names come from the organization.
    let (member, name, _) = watched[2];
    assert!(
        m.contains(&format!(
            "aws_iam_account_info{{account_id=\"{member}\",alias=\"\",name=\"{name}\"}} 1"
        )),
        "{m}"
    );
    // The landing page lists every account with its state.
    let landing = get(&exporter.url("/")).text();
    for (id, _, _) in &watched {
        assert!(
            landing.contains(id.as_str()),
            "{id} not on the landing page"
        );
    }
    assert!(landing.contains("failed: credentials"), "{landing}");
    assert!(
        exporter.logs().contains(&format!(
            "assuming role arn:aws:iam::{failing}:role/iam-credentials-exporter failed"
        )),
        "{}",
        exporter.logs()
    );

    // The others keep refreshing while the failing one keeps failing.
    let before: BTreeMap<String, f64> = expected
        .iter()
        .map(|id| {
            (
                id.clone(),
                value(&m, "iam_credentials_exporter_refreshes_total", id).unwrap(),
            )
        })
        .collect();
    let m = wait_for("every account to refresh twice more", LONG, || {
        let m = exporter.metrics();
        before
            .iter()
            .all(|(id, n)| {
                value(&m, "iam_credentials_exporter_refreshes_total", id).unwrap_or(0.0) >= n + 2.0
            })
            .then_some(m)
    });
    assert_eq!(
        value(&m, "iam_credentials_exporter_refresh_success", &failing),
        Some(0.0)
    );
    for (id, ..) in watched.iter().filter(|(id, ..)| *id != failing) {
        assert_eq!(
            value(&m, "iam_credentials_exporter_refresh_success", id),
            Some(1.0),
            "{id}"
        );
    }

    // The role is fixed: the account is read at its next refresh.
    gate.refuse(&failing, false);
    let users = f64::from(watched[1].2);
    let m = wait_for("the failing account to recover", LONG, || {
        let m = exporter.metrics();
        (value(&m, "aws_iam_users", &failing) == Some(users)).then_some(m)
    });
    assert_eq!(
        value(&m, "iam_credentials_exporter_refresh_success", &failing),
        Some(1.0)
    );

    // Rediscovery: a new account appears, a closed one goes away with its series.
    let added = moto.organization(&["add", "member-new", "3"]);
    let new_id = added.split_whitespace().next().unwrap().to_owned();
    let closed = watched[3].0.clone();
    moto.organization(&["close", &closed]);
    let m = wait_for("the organization's changes to show", LONG, || {
        let m = exporter.metrics();
        (value(&m, "aws_iam_users", &new_id) == Some(3.0)
            && value(&m, "iam_credentials_exporter_refresh_success", &closed).is_none())
        .then_some(m)
    });
    assert_eq!(value(&m, "aws_iam_users", &closed), None);
    assert_eq!(sample(&m, "iam_credentials_exporter_accounts"), Some(21.0));
}

#[test]
fn three_shards_read_every_account_exactly_once() {
    let moto = Moto::start();
    let org = seed(&moto, 20);
    let all: BTreeSet<String> = org.iter().map(|(id, ..)| id.clone()).collect();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yml");
    write_config(
        &config,
        "refresh: { interval: 1m }\norganization: { role_name: reader }\n",
    );
    let env = moto.env();
    let shards: Vec<Exporter> = (0..3)
        .map(|i| {
            Exporter::start_with_env(
                &[
                    "--config.file",
                    config.to_str().unwrap(),
                    &format!("--shard.index={i}"),
                    "--shard.count=3",
                ],
                &env_refs(&env),
            )
        })
        .collect();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for (i, shard) in shards.iter().enumerate() {
        // Each of its accounts served once read: a served report stays, so this cannot flap
        // the way "every last refresh succeeded" can when three exporters share one moto.
        let m = wait_for(&format!("shard {i} to read its accounts"), LONG, || {
            let m = shard.metrics();
            let n = sample(&m, "iam_credentials_exporter_accounts")?;
            (sample(
                &m,
                "iam_credentials_exporter_organization_discovery_success",
            ) == Some(1.0)
                && n > 0.0
                && accounts_of(&m, "aws_iam_users").len() == n as usize)
                .then_some(m)
        });
        for id in accounts_of(&m, "aws_iam_users") {
            *seen.entry(id).or_default() += 1;
        }
    }
    let covered: BTreeSet<String> = seen.keys().cloned().collect();
    assert_eq!(
        covered, all,
        "the shards together read the whole organization"
    );
    assert!(
        seen.values().all(|&n| n == 1),
        "an account read twice: {seen:?}"
    );
}

fn role(id: &str, name: &str) -> String {
    format!("  - role_arn: arn:aws:iam::{id}:role/reader\n    name: {name}\n")
}

#[test]
fn reloads_add_and_remove_accounts_and_refuse_a_bad_file() {
    let moto = Moto::start();
    let org = seed(&moto, 4);
    let [a, b, c, d] = [1, 2, 3, 4].map(|i| org[i].0.clone());
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yml");
    let head = "refresh: { interval: 1s }\naccounts:\n";
    write_config(
        &config,
        &format!("{head}{}{}", role(&a, "a"), role(&b, "b")),
    );
    let exporter = Exporter::start_with_env(
        &["--config.file", config.to_str().unwrap()],
        &env_refs(&moto.env()),
    );
    let read = |m: &str| accounts_of(m, "aws_iam_users");
    let set = |ids: &[&String]| ids.iter().map(|s| (*s).clone()).collect::<BTreeSet<_>>();
    let m = wait_for("a and b to be read", LONG, || {
        let m = exporter.metrics();
        (read(&m) == set(&[&a, &b])).then_some(m)
    });
    let first_reload = sample(
        &m,
        "iam_credentials_exporter_config_last_reload_success_timestamp_seconds",
    )
    .unwrap();
    let b_refreshes = value(&m, "iam_credentials_exporter_refreshes_total", &b).unwrap();

    // SIGHUP: a goes, c comes, b keeps its data and its counters.
    write_config(
        &config,
        &format!("{head}{}{}", role(&b, "b"), role(&c, "c")),
    );
    let status = Command::new("kill")
        .args(["-HUP", &exporter.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let m = wait_for("SIGHUP to swap a for c", LONG, || {
        let m = exporter.metrics();
        (read(&m) == set(&[&b, &c])).then_some(m)
    });
    assert!(value(&m, "iam_credentials_exporter_refreshes_total", &b).unwrap() >= b_refreshes);
    assert_eq!(
        value(&m, "iam_credentials_exporter_refresh_success", &a),
        None
    );
    assert!(
        sample(
            &m,
            "iam_credentials_exporter_config_last_reload_success_timestamp_seconds"
        )
        .unwrap()
            > first_reload
    );

    // POST /-/reload: d comes; the answer comes after the reload is applied.
    write_config(
        &config,
        &format!(
            "{head}{}{}{}",
            role(&b, "b"),
            role(&c, "c"),
            role(&d, "renamed-d")
        ),
    );
    let r = request("POST", &exporter.url("/-/reload"), &[]);
    assert_eq!((r.status, r.text().as_str()), (200, "Reloaded\n"));
    assert!(
        exporter.metrics().contains(&format!(
            "iam_credentials_exporter_refreshes_total{{account_id=\"{d}\"}}"
        )),
        "d is watched as soon as the reload answers"
    );
    wait_for("d to be read", LONG, || {
        (read(&exporter.metrics()) == set(&[&b, &c, &d])).then_some(())
    });
    assert_eq!(request("GET", &exporter.url("/-/reload"), &[]).status, 405);

    // A bad file is refused, by POST and by SIGHUP; the running accounts keep refreshing.
    write_config(
        &config,
        &format!("{head}  - role_arn: arn:aws:iam::{a}:role/reader\n    nmae: typo\n"),
    );
    let r = request("POST", &exporter.url("/-/reload"), &[]);
    assert_eq!(r.status, 500);
    assert!(
        r.text().contains("accounts[0]: unknown field `nmae`"),
        "{}",
        r.text()
    );
    let m = exporter.metrics();
    assert_eq!(
        sample(&m, "iam_credentials_exporter_config_last_reload_successful"),
        Some(0.0)
    );
    let c_refreshes = value(&m, "iam_credentials_exporter_refreshes_total", &c).unwrap();
    wait_for(
        "c to keep refreshing under the old configuration",
        LONG,
        || {
            let m = exporter.metrics();
            (value(&m, "iam_credentials_exporter_refreshes_total", &c).unwrap()
                >= c_refreshes + 2.0
                && read(&m) == set(&[&b, &c, &d]))
            .then_some(())
        },
    );
    assert!(
        exporter
            .logs()
            .contains("Config file refused; the running configuration stays in force"),
        "{}",
        exporter.logs()
    );

    // Fixed, and picked up on SIGHUP: the reload metric is 1 again.
    write_config(&config, &format!("{head}{}", role(&a, "a")));
    Command::new("kill")
        .args(["-HUP", &exporter.pid().to_string()])
        .status()
        .unwrap();
    let m = wait_for("the fixed file to be applied", LONG, || {
        let m = exporter.metrics();
        (read(&m) == set(&[&a])
            && sample(&m, "iam_credentials_exporter_config_last_reload_successful") == Some(1.0))
        .then_some(m)
    });
    assert_eq!(sample(&m, "iam_credentials_exporter_accounts"), Some(1.0));
}
