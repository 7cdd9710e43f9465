//! Owners on findings: the real exporter binary reads IAM users' paths and tags from moto
//! (GetAccountAuthorizationDetails, `Filter=User`) and exports
//! `aws_iam_user_info{account_id,path,tag_...,user}`; users are created and tagged with the
//! exporter's own AWS SDK (CreateUser with a path, TagUser). A real Prometheus scraping it
//! then evaluates the join that gives per-user findings their owner labels, as proposed for
//! the bundled alerts: tagged users' findings carry the tags, findings of a user the directory
//! does not know yet still come through, and two scrapes of one exporter (replicas) do not
//! break the join. The fake endpoint (`aws_faults`) covers pages, failures and the calls not
//! made; moto answers GetAccountAuthorizationDetails in one page.
use crate::support::moto::{Moto, MotoSdk};
use crate::support::prometheus::{Prometheus, Scrape};
use crate::support::{lines_with, sample, wait_for, Exporter, BIN};
use aws_sdk_iam::types::Tag;
use serde_json::Value;
use std::process::Command;
use std::time::Duration;

/// moto's default account.
const ACCOUNT: &str = "123456789012";

fn env_refs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

fn tag(key: &str, value: &str) -> Tag {
    Tag::builder().key(key).value(value).build().unwrap()
}

/// alice under /engineering/ tagged `Owner` (IAM user tag keys are case-insensitive) and
/// `team`; bob at / with a team, no owner, and a console password; carol under
/// /contractors/ with no tags, only one that is not asked for.
fn seed(sdk: &MotoSdk) {
    sdk.run(async |iam| {
        for (name, path) in [
            ("alice", "/engineering/"),
            ("bob", "/"),
            ("carol", "/contractors/"),
        ] {
            iam.create_user().user_name(name).path(path).send().await?;
        }
        iam.tag_user()
            .user_name("alice")
            .tags(tag("Owner", "alice@example.com"))
            .tags(tag("team", "payments"))
            .tags(tag("cost-center", "cc-1"))
            .send()
            .await?;
        iam.tag_user()
            .user_name("bob")
            .tags(tag("team", "platform"))
            .send()
            .await?;
        iam.tag_user()
            .user_name("carol")
            .tags(tag("project", "audit"))
            .send()
            .await?;
        iam.create_login_profile()
            .user_name("bob")
            .password("correct-horse-battery-staple-1A!")
            .send()
            .await?;
        Ok::<_, aws_sdk_iam::Error>(())
    })
    .unwrap_or_else(|e| panic!("seeding moto: {e:?}"));
}

fn info_lines(m: &str) -> Vec<&str> {
    lines_with(m, "aws_iam_user_info{")
}

fn live_call_failures(m: &str) -> Vec<&str> {
    lines_with(m, "iam_credentials_exporter_live_call_failures_total{")
        .into_iter()
        .filter(|l| !l.ends_with(" 0"))
        .collect()
}

/// The proposed `iam_credentials:finding`: per-user findings joined with the user's tags
/// (one info series per account and user, whatever the replicas), the findings of users
/// without an info series as they are, and the per-account counts without per-user series.
const FINDING: &str = r#"
(aws_iam_user_check_failed == 1)
  * on (account_id, user) group_left (tag_owner, tag_team)
    topk by (account_id, user) (1, aws_iam_user_info)
or
(aws_iam_user_check_failed == 1 unless on (account_id, user) aws_iam_user_info)
or
(aws_iam_check_failures > 0 unless on (account_id) aws_iam_user_mfa_active)
"#;

/// (job, user, tag_owner, tag_team) of each result; absent labels as "".
fn labelled(results: &[Value]) -> Vec<(String, String, String, String)> {
    let label = |s: &Value, name: &str| s["metric"][name].as_str().unwrap_or("").to_owned();
    let mut v: Vec<_> = results
        .iter()
        .map(|s| {
            (
                label(s, "job"),
                label(s, "user"),
                label(s, "tag_owner"),
                label(s, "tag_team"),
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
fn the_exporter_labels_users_with_their_tags_and_alerts_can_carry_them() {
    let moto = Moto::start();
    let sdk = moto.sdk();
    seed(&sdk);
    let env = moto.env();
    let exporter = Exporter::start_with_env(
        &["--refresh.interval=1s", "--aws.user-tags=owner,team"],
        &env_refs(&env),
    );
    let m = exporter.wait_for_sample(
        &format!("iam_credentials_exporter_refresh_success{{account_id=\"{ACCOUNT}\"}}"),
        1.0,
    );
    // One series per user, a label per configured key, empty where the user lacks the tag.
    assert_eq!(
        info_lines(&m),
        [
            format!("aws_iam_user_info{{account_id=\"{ACCOUNT}\",path=\"/engineering/\",tag_owner=\"alice@example.com\",tag_team=\"payments\",user=\"alice\"}} 1"),
            format!("aws_iam_user_info{{account_id=\"{ACCOUNT}\",path=\"/\",tag_owner=\"\",tag_team=\"platform\",user=\"bob\"}} 1"),
            format!("aws_iam_user_info{{account_id=\"{ACCOUNT}\",path=\"/contractors/\",tag_owner=\"\",tag_team=\"\",user=\"carol\"}} 1"),
        ],
        "{m}"
    );
    assert_eq!(live_call_failures(&m), Vec::<&str>::new(), "{m}");
    assert!(m.contains("# HELP aws_iam_user_info "), "{m}");

    // dave arrives after the directory was read: the next reports have him, the directory
    // (read hourly) does not yet.
    sdk.run(async |iam| iam.create_user().user_name("dave").send().await)
        .unwrap_or_else(|e| panic!("creating dave: {e:?}"));
    let users = format!("aws_iam_users{{account_id=\"{ACCOUNT}\"}}");
    let m = wait_for("dave in the report", Duration::from_secs(20), || {
        let m = exporter.metrics();
        (sample(&m, &users) == Some(4.0)).then_some(m)
    });
    assert_eq!(info_lines(&m).len(), 3, "{m}");
    assert!(
        info_lines(&m).iter().all(|l| !l.contains("user=\"dave\"")),
        "{m}"
    );

    // Prometheus scrapes the exporter twice, as two replicas would be.
    let prom = Prometheus::start(
        &[
            Scrape {
                job: "replica-a",
                target: exporter.addr,
            },
            Scrape {
                job: "replica-b",
                target: exporter.addr,
            },
        ],
        &[],
    );
    let selector = r#"aws_iam_user_check_failed{check="user_without_mfa"}"#;
    wait_for(
        "both replicas scraped with dave's finding",
        Duration::from_secs(60),
        || {
            let r = prom.query(selector).unwrap();
            (r.len() == 8).then_some(())
        },
    );
    let all = prom
        .query(FINDING)
        .unwrap_or_else(|e| panic!("{FINDING}: {e}"));
    let of_check = |check: &str| -> Vec<Value> {
        all.iter()
            .filter(|s| s["metric"]["check"] == check)
            .cloned()
            .collect()
    };
    let findings = of_check("user_without_mfa");
    let mut expected = Vec::new();
    for job in ["replica-a", "replica-b"] {
        for (user, owner, team) in [
            ("alice", "alice@example.com", "payments"),
            ("bob", "", "platform"),
            ("carol", "", ""),
            ("dave", "", ""),
        ] {
            expected.push((job.into(), user.into(), owner.into(), team.into()));
        }
    }
    expected.sort();
    // Every user once per replica: with the tags of its info series, or (dave) as it is.
    assert_eq!(labelled(&findings), expected, "{findings:#?}");
    for f in &findings {
        assert_eq!(f["value"][1], "1", "{f}");
    }
    // bob's console finding carries his team.
    assert_eq!(
        labelled(&of_check("console_user_without_mfa")),
        [
            (
                "replica-a".into(),
                "bob".into(),
                "".into(),
                "platform".into()
            ),
            (
                "replica-b".into(),
                "bob".into(),
                "".into(),
                "platform".into()
            ),
        ]
    );
    // Without topk, two scrapes of one exporter give each user two info series: the plain
    // join is refused, which would drop every finding of the rule.
    let plain = r#"(aws_iam_user_check_failed == 1) * on (account_id, user) group_left (tag_owner, tag_team) aws_iam_user_info"#;
    let refused = prom.query(plain).unwrap_err();
    assert!(
        refused.contains("many-to-many") || refused.contains("duplicate"),
        "{refused}"
    );
}

#[test]
fn user_tags_from_the_config_file_follow_the_user_filters() {
    let moto = Moto::start();
    seed(&moto.sdk());
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yml");
    std::fs::write(&config, "aws:\n  user_tags: [team, cost-center]\n").unwrap();
    let env = moto.env();
    let exporter = Exporter::start_with_env(
        &[
            "--refresh.interval=1s",
            "--config.file",
            config.to_str().unwrap(),
            "--metrics.user-exclude=^carol$",
        ],
        &env_refs(&env),
    );
    let m = exporter.wait_for_sample(
        &format!("iam_credentials_exporter_refresh_success{{account_id=\"{ACCOUNT}\"}}"),
        1.0,
    );
    // Labels in name order, cost-center's sanitised; carol has no per-user series, so no
    // info series either.
    assert_eq!(
        info_lines(&m),
        [
            format!("aws_iam_user_info{{account_id=\"{ACCOUNT}\",path=\"/engineering/\",tag_cost_center=\"cc-1\",tag_team=\"payments\",user=\"alice\"}} 1"),
            format!("aws_iam_user_info{{account_id=\"{ACCOUNT}\",path=\"/\",tag_cost_center=\"\",tag_team=\"platform\",user=\"bob\"}} 1"),
        ],
        "{m}"
    );
    assert_eq!(live_call_failures(&m), Vec::<&str>::new(), "{m}");
}

#[test]
fn without_tag_keys_there_is_no_user_info() {
    let moto = Moto::start();
    seed(&moto.sdk());
    let env = moto.env();
    let exporter = Exporter::start_with_env(&["--refresh.interval=1s"], &env_refs(&env));
    let m = exporter.wait_for_sample(
        &format!("iam_credentials_exporter_refresh_success{{account_id=\"{ACCOUNT}\"}}"),
        1.0,
    );
    assert!(!m.contains("aws_iam_user_info"), "{m}");
    assert!(!m.contains("GetAccountAuthorizationDetails"), "{m}");
}

#[test]
fn bad_user_tag_keys_are_refused_with_the_key_named() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yml");
    std::fs::write(
        &config,
        "aws:\n  user_tags: [owner, cost_center, cost-center]\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .arg("--config.file")
        .arg(&config)
        .arg("--config.check")
        .env_remove("IAM_CREDENTIALS_EXPORTER_AWS_USER_TAGS")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("aws.user_tags[2]: \"cost-center\" and \"cost_center\" (aws.user_tags[1]) both make the label tag_cost_center"),
        "{stderr}"
    );
    // The flag, from the environment, is checked as the flag.
    let out = Command::new(BIN)
        .arg("--config.file")
        .arg(&config)
        .arg("--config.check")
        .env("IAM_CREDENTIALS_EXPORTER_AWS_USER_TAGS", "owner,te@m!")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--aws.user-tags") && stderr.contains("\"te@m!\" is not an IAM tag key"),
        "{stderr}"
    );
}
