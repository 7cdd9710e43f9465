//! The landing page as an operator sees it: the real exporter reading three accounts from a
//! config file, one healthy, one failed and one pending, behind `--web.route-prefix=/iam/`,
//! loaded in headless Chromium (Debian's `chromium`, installed by scripts/install-test-tools;
//! a missing one fails the test). The rendered text is asserted, a screenshot is kept under
//! the target directory (`test-artifacts/landing.png`, its path printed), and every link on the
//! page is fetched relative to the page's URL.
//!
//! The three states come from one fake AWS endpoint (IAM and STS over awsQuery, in this
//! process, `AWS_ENDPOINT_URL` pointing at it), which is the cheapest reliable way: no moto
//! process to start, and it can do what moto cannot, refuse one role and hold another
//! account's calls:
//! - **healthy**: the account of the exporter's own credentials (no `role_arn`), whose IAM
//!   calls the fake answers as a healthy account would;
//! - **failed**: a role whose AssumeRole the fake refuses with `AccessDenied` (the SDK gives up
//!   at once: the reason `credentials`, and a message naming the role);
//! - **pending**: a role the fake lets assume, with credentials of its own, and whose IAM calls
//!   signed with them it never answers; with `--aws.call-timeout` and `--refresh.timeout` at
//!   10 minutes, its first refresh cannot end while the test runs. (Holding AssumeRole itself
//!   would not do: the SDK's credentials cache gives up loading after 5 seconds, and the
//!   account turns failed.)
use crate::support::aws_query::{self, error_document, result_document};
use crate::support::tools::{run, tool};
use crate::support::{get, repo, wait_for, Exporter, BIN};
use base64::Engine;
use std::io::{BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

/// The own-credentials account: the report's ARNs say so.
const HEALTHY: &str = "111122223333";
/// Its role is refused.
const FAILED: &str = "222222222222";
/// Its calls are never answered.
const PENDING: &str = "333333333333";
/// The access key the fake hands out for [`PENDING`]'s role, and recognises in signatures.
const PENDING_KEY: &str = "ASIAPENDINGACCOUNT33";

const ROLE: &str = "iam-credentials-exporter";

/// Root (hardware MFA), alice (console, MFA, one key) and bob (console, no MFA).
fn report_csv() -> String {
    format!(
        "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated\n\
         <root_account>,arn:aws:iam::{HEALTHY}:root,2020-01-01T00:00:00+00:00,not_supported,2026-01-01T00:00:00+00:00,not_supported,not_supported,true,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A\n\
         alice,arn:aws:iam::{HEALTHY}:user/alice,2024-01-01T00:00:00+00:00,true,2026-11-01T00:00:00+00:00,2026-10-01T00:00:00+00:00,N/A,true,true,2026-10-01T00:00:00+00:00,2026-11-01T00:00:00+00:00,us-east-1,s3,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A\n\
         bob,arn:aws:iam::{HEALTHY}:user/bob,2024-01-01T00:00:00+00:00,true,2026-11-01T00:00:00+00:00,2026-10-01T00:00:00+00:00,N/A,false,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A\n"
    )
}

/// The fake's answer to one request: status and XML body; `None` to never answer.
fn answer(head: &[String], body: &[u8]) -> Option<(u16, String)> {
    let form = aws_query::parse_form(body);
    let param = |name: &str| {
        form.iter()
            .find_map(|(k, v)| (k == name).then_some(v.as_str()))
            .unwrap_or("")
    };
    let signed_with = |key: &str| {
        head.iter().any(|h| {
            h.to_ascii_lowercase().starts_with("authorization:")
                && h.contains(&format!("Credential={key}/"))
        })
    };
    let action = param("Action");
    if action == "AssumeRole" {
        let arn = param("RoleArn");
        if arn.contains(FAILED) {
            return Some((
                403,
                error_document(
                    "AccessDenied",
                    &format!(
                        "User is not authorized to perform: sts:AssumeRole on resource: {arn}"
                    ),
                ),
            ));
        }
        let expires = (chrono::Utc::now() + chrono::TimeDelta::hours(1))
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string();
        let account = if arn.contains(PENDING) {
            PENDING
        } else {
            "444455556666"
        };
        return Some((
            200,
            format!(
                "<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><AssumeRoleResult>\
                 <Credentials><AccessKeyId>{PENDING_KEY}</AccessKeyId><SecretAccessKey>fake</SecretAccessKey>\
                 <SessionToken>fake</SessionToken><Expiration>{expires}</Expiration></Credentials>\
                 <AssumedRoleUser><AssumedRoleId>AROAFAKE:session</AssumedRoleId>\
                 <Arn>arn:aws:sts::{account}:assumed-role/{ROLE}/session</Arn></AssumedRoleUser>\
                 </AssumeRoleResult><ResponseMetadata><RequestId>fake</RequestId></ResponseMetadata>\
                 </AssumeRoleResponse>"
            ),
        ));
    }
    if signed_with(PENDING_KEY) {
        return None;
    }
    let generated = (chrono::Utc::now() - chrono::TimeDelta::minutes(130))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let inner = match action {
        "GenerateCredentialReport" => "<State>COMPLETE</State>".to_owned(),
        "GetCredentialReport" => format!(
            "<Content>{}</Content><ReportFormat>text/csv</ReportFormat><GeneratedTime>{generated}</GeneratedTime>",
            base64::engine::general_purpose::STANDARD.encode(report_csv())
        ),
        "GetAccountSummary" => "<SummaryMap>\
             <entry><key>Users</key><value>2</value></entry>\
             <entry><key>AccountMFAEnabled</key><value>1</value></entry>\
             <entry><key>AccountAccessKeysPresent</key><value>0</value></entry>\
             <entry><key>MFADevicesInUse</key><value>1</value></entry>\
             </SummaryMap>"
            .to_owned(),
        "ListAccountAliases" => "<IsTruncated>false</IsTruncated><AccountAliases>\
             <member>landing-corp</member></AccountAliases>"
            .to_owned(),
        "GetAccountPasswordPolicy" => {
            return Some((
                404,
                error_document("NoSuchEntity", "The Password Policy cannot be found."),
            ))
        }
        "ListVirtualMFADevices" => aws_query::virtual_mfa_devices(HEALTHY, &["alice"], None),
        other => {
            return Some((
                400,
                error_document("InvalidAction", &format!("not faked: {other}")),
            ))
        }
    };
    Some((200, result_document(action, &inner)))
}

fn serve_one(conn: TcpStream) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut conn = conn;
    let (head, body) = crate::support::http::read_message(&mut reader)?;
    let Some((status, xml)) = answer(&head, &body) else {
        // The pending account: hold the connection, answer nothing.
        std::thread::sleep(Duration::from_secs(900));
        return Ok(());
    };
    write!(
        conn,
        "HTTP/1.1 {status} X\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{xml}",
        xml.len()
    )?;
    conn.flush()
}

/// Starts the fake AWS endpoint on 127.0.0.1 (the listener is held, so no one else can take
/// its port); returns its URL. It lives as long as the test process.
fn fake_aws() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            std::thread::spawn(move || {
                let _ = serve_one(conn);
            });
        }
    });
    url
}

/// Where the test keeps what it makes for people to look at: `test-artifacts` under the
/// target directory (`CARGO_TARGET_DIR`, else the one the test binary was built into).
fn artifacts_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| if p.is_relative() { repo().join(p) } else { p })
        .unwrap_or_else(|| {
            // BIN is TARGET/PROFILE/iam-credentials-exporter.
            PathBuf::from(BIN)
                .parent()
                .and_then(|p| p.parent())
                .expect("the binary lives in TARGET/PROFILE")
                .to_owned()
        });
    let dir = target.join("test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Headless Chromium on `url`, with `args` (`--dump-dom`, `--screenshot=...`), its own empty
/// profile and no background traffic. Fails the test when `chromium` is missing.
fn chromium(url: &str, args: &[&str]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let mut cmd = tool("chromium");
    cmd.args([
        "--headless",
        "--disable-gpu",
        "--no-sandbox",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        "--window-size=1280,1600",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .args(args)
    .arg(url);
    let out = run(cmd, profile.path(), Duration::from_secs(90));
    assert!(out.status.success(), "chromium failed: {}", out.both());
    out.stdout
}

/// The text of the table rows of `account` in the rendered DOM (its row, and its last error's
/// when it has one), cells ended by `|`, other tags dropped.
fn row_text(dom: &str, account: &str) -> String {
    let start = dom
        .find(&format!("<td>{account}</td>"))
        .unwrap_or_else(|| panic!("no row for {account} in:\n{dom}"));
    let row = &dom[start..];
    // The account's row, and its error's row when it has one.
    let end = row[1..]
        .find("<tr class=\"account")
        .map(|i| i + 1)
        .or_else(|| row.find("</table>"))
        .unwrap();
    let row = &row[..end];
    let tags = regex::Regex::new("<[^>]*>").unwrap();
    let cells = row.replace("</td>", " | ");
    let text = tags.replace_all(&cells, " ");
    let text = text
        .replace("&amp;", "&")
        .replace("&#39;", "'")
        .replace("&quot;", "\"");
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `href` resolved against the page URL `base` (which ends in `/`): `./x` and `x` are
/// `base` + `x`, `/x` is the origin's, absolute URLs stay.
fn resolve(base: &str, href: &str) -> String {
    if href.starts_with("http://") || href.starts_with("https://") {
        return href.to_owned();
    }
    if href.starts_with('/') {
        let origin_end = base[7..].find('/').map_or(base.len(), |i| i + 7);
        return format!("{}{href}", &base[..origin_end]);
    }
    format!("{base}{}", href.strip_prefix("./").unwrap_or(href))
}

#[test]
fn an_operator_sees_each_accounts_state_error_and_source_behind_a_route_prefix() {
    let aws = fake_aws();
    // Exceptions run at most a year.
    let expires = (chrono::Utc::now() + chrono::TimeDelta::days(180)).date_naive();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yml");
    std::fs::write(
        &config,
        format!(
            "refresh: {{ interval: 5s }}\n\
             thresholds: {{ access_key_max_age: 30d }}\n\
             accounts:\n\
             \x20 - name: healthy-tooling\n\
             \x20 - role_arn: arn:aws:iam::{FAILED}:role/{ROLE}\n\
             \x20   name: failing-payments\n\
             \x20 - role_arn: arn:aws:iam::{PENDING}:role/{ROLE}\n\
             \x20   name: pending-sandbox\n\
             exceptions:\n\
             \x20 - id: bob-break-glass\n\
             \x20   checks: [console_user_without_mfa]\n\
             \x20   users: [bob]\n\
             \x20   reason: Break-glass user, token in the safe\n\
             \x20   owner: security-team\n\
             \x20   expires: {expires}\n"
        ),
    )
    .unwrap();
    let exporter = Exporter::start_with_env(
        &[
            "--config.file",
            config.to_str().unwrap(),
            "--web.route-prefix=/iam/",
            "--aws.call-timeout=10m",
            "--refresh.timeout=10m",
        ],
        &[
            ("AWS_ENDPOINT_URL", aws.as_str()),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ],
    );
    let page = exporter.url("/iam/");
    // Wait until the healthy and the failed account have finished a refresh.
    wait_for(
        "a healthy and a failed account",
        Duration::from_secs(60),
        || {
            let html = get(&page).text();
            (html.contains("class=\"account ok\"") && html.contains("class=\"account failed\""))
                .then_some(())
        },
    );

    let dom = chromium(&page, &["--dump-dom"]);
    let healthy = row_text(&dom, HEALTHY);
    let failed = row_text(&dom, FAILED);
    let pending = row_text(&dom, PENDING);
    let logs = exporter.logs();
    for (row, want) in [
        (&healthy, "healthy-tooling"),
        (&healthy, "| ok |"),
        (&healthy, "the exporter's own AWS credentials"),
        (&healthy, "(2h 10m ago)"),
        (&healthy, "| 2 | "),
        (&failed, "failing-payments"),
        (&failed, "| failed: credentials |"),
        (
            &failed,
            "assuming role arn:aws:iam::222222222222:role/iam-credentials-exporter failed",
        ),
        (&failed, "AccessDenied"),
        (
            &failed,
            "role arn:aws:iam::222222222222:role/iam-credentials-exporter",
        ),
        (&failed, "| never |"),
        (&pending, "pending-sandbox"),
        (&pending, "| pending |"),
        (&pending, "now (running or waiting for a refresh slot)"),
        (
            &pending,
            "role arn:aws:iam::333333333333:role/iam-credentials-exporter",
        ),
        (&pending, "no report yet"),
    ] {
        assert!(
            row.contains(want),
            "expected {want:?} in the row\n  {row}\nexporter log:\n{logs}"
        );
    }
    for want in [
        "3 accounts: 1 ok, 1 failed, 1 pending",
        "<td>access_key_max_age</td><td>30d</td>",
        "<td>per_user_metrics</td><td>on</td>",
        "<td>bob-break-glass</td><td>console_user_without_mfa</td><td>security-team</td>",
        format!("<td>{expires}</td><td>1 (111122223333: 1)</td>").as_str(),
        "Recent changes",
    ] {
        assert!(dom.contains(want), "expected {want:?} in the page:\n{dom}");
    }

    let shot = artifacts_dir().join("landing.png");
    let _ = std::fs::remove_file(&shot);
    chromium(&page, &[&format!("--screenshot={}", shot.display())]);
    let png = std::fs::read(&shot).expect("chromium wrote the screenshot");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{}",
        png.len()
    );
    println!("landing page screenshot: {}", shot.display());

    // Every link resolves relative to the page, under the prefix.
    let href = regex::Regex::new(r#"href="([^"]+)""#).unwrap();
    let links: Vec<String> = href
        .captures_iter(&dom)
        .map(|c| c[1].replace("&amp;", "&"))
        .collect();
    assert_eq!(links, ["./metrics", "./-/healthy", "./-/ready"]);
    for link in &links {
        let url = resolve(&page, link);
        assert!(url.contains("/iam/"), "{url}");
        let r = get(&url);
        assert_eq!(r.status, 200, "{link} -> {url}: {}", r.text());
    }
    // The prefix alone leads to the page; nothing is served outside it.
    let r = crate::support::request("GET", &exporter.url("/iam"), &[]);
    assert!(
        r.text().contains("<h1>IAM credentials exporter</h1>"),
        "{}",
        r.status
    );
    for outside in ["/", "/metrics", "/-/healthy", "/iamx/metrics"] {
        assert_eq!(get(&exporter.url(outside)).status, 404, "{outside}");
    }
}

#[test]
fn the_external_url_path_becomes_the_route_prefix() {
    let exporter = Exporter::start(&[
        "--report.file",
        crate::support::sample_report().to_str().unwrap(),
        "--web.external-url=https://proxy.example.com/tools/iam/",
    ]);
    let page = get(&exporter.url("/tools/iam/"));
    assert_eq!(page.status, 200);
    assert!(page.text().contains("<a href=\"./metrics\">"));
    assert!(page.text().contains("examples/credential-report.csv"));
    for path in ["/tools/iam/metrics", "/tools/iam/-/healthy"] {
        assert_eq!(get(&exporter.url(path)).status, 200, "{path}");
    }
    assert_eq!(get(&exporter.url("/metrics")).status, 404);
    // --web.route-prefix wins over the external URL's path.
    let exporter = Exporter::start(&[
        "--report.file",
        crate::support::sample_report().to_str().unwrap(),
        "--web.external-url=https://proxy.example.com/tools/iam/",
        "--web.route-prefix=/",
    ]);
    assert_eq!(get(&exporter.url("/metrics")).status, 200);
    assert_eq!(get(&exporter.url("/tools/iam/metrics")).status, 404);
}
