//! `check --output asff`: findings in the AWS Security Finding Format, imported into moto's
//! Security Hub with boto3 (`tests/moto/securityhub.py`: BatchImportFindings 100 a call,
//! GetFindings page by page) and read back: every finding arrives with its stable id and the
//! catalogue's severity, and importing again updates instead of duplicating. boto3 validates
//! each finding against the API's AwsSecurityFinding shape before sending it.
use crate::support::moto::Moto;
use crate::support::tools::{run, which};
use crate::support::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

const AT: &str = "--at=2026-11-25T06:00:00Z";

/// A report with more than 100 findings (107 at [`AT`]): two import calls, two pages.
const LARGE: &str =
    "tests/fixtures/third-party/cloud-custodian__cloud-custodian__account-credential-report.csv";

/// Runs `check` with `args`; returns the exit code and standard output.
fn check(args: &[&str]) -> (i32, String) {
    let out = Command::new(BIN)
        .arg("check")
        .args(args)
        .env_remove("IAM_CREDENTIALS_EXPORTER_AWS_REGION")
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
    )
}

/// The findings of `report` in ASFF, and the same report's findings as `--output json` has
/// them.
fn asff_and_json(report: &Path) -> (Vec<Value>, Vec<Value>) {
    let report = report.to_str().unwrap();
    let (code, asff) = check(&[report, AT, "--output", "asff"]);
    assert_eq!(code, 1, "findings exit 1, as with the other outputs");
    let (_, json) = check(&[report, AT, "--output", "json"]);
    let asff: Vec<Value> = serde_json::from_str(&asff).unwrap();
    let json: Value = serde_json::from_str(&json).unwrap();
    (asff, json["findings"].as_array().unwrap().clone())
}

/// Runs `tests/moto/securityhub.py ENDPOINT ARGS...` with moto's Python; its JSON answer.
fn hub(moto: &Moto, args: &[&str]) -> Value {
    let python = which("moto_server").parent().unwrap().join("python");
    let mut cmd = Command::new(python);
    cmd.arg(repo().join("tests/moto/securityhub.py"))
        .arg(moto.url())
        .args(args);
    let out = run(cmd, &repo(), Duration::from_secs(120));
    assert!(
        out.status.success(),
        "securityhub.py {args:?}: {}",
        out.both()
    );
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.both()))
}

#[test]
fn findings_import_into_security_hub_and_read_back_with_stable_ids_and_severities() {
    let catalogue: Value = serde_json::from_slice(
        &Command::new(BIN)
            .args(["checks", "--output", "json"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let severity: BTreeMap<&str, String> = catalogue
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap(),
                c["severity"].as_str().unwrap().to_uppercase(),
            )
        })
        .collect();

    let dir = tempfile::tempdir().unwrap();
    let mut expected: BTreeMap<String, String> = BTreeMap::new();
    let mut files = Vec::new();
    for (name, report) in [("sample", sample_report()), ("large", repo().join(LARGE))] {
        let (asff, json) = asff_and_json(&report);
        assert_eq!(
            asff.len(),
            json.len(),
            "{name}: one ASFF finding per finding"
        );
        for (a, f) in asff.iter().zip(&json) {
            let account = a["AwsAccountId"].as_str().unwrap();
            let mut id = format!(
                "iam-credentials-exporter/{account}/{}/{}",
                f["check"].as_str().unwrap(),
                f["user"].as_str().unwrap()
            );
            if let Some(k) = f["key"].as_u64() {
                id.push_str(&format!("/key-{k}"));
            }
            assert_eq!(a["Id"], id.as_str());
            assert_eq!(a["Description"], f["detail"]);
            let check = f["check"].as_str().unwrap();
            assert_eq!(a["Severity"]["Label"], severity[check].as_str(), "{id}");
            assert!(
                expected
                    .insert(id.clone(), severity[check].clone())
                    .is_none(),
                "{id} is not unique"
            );
        }
        let file = dir.path().join(format!("{name}.json"));
        std::fs::write(&file, serde_json::to_string(&asff).unwrap()).unwrap();
        files.push(file);
    }
    // bob's two keys in the sample: two findings of one check and user.
    assert!(expected
        .contains_key("iam-credentials-exporter/123456789012/access_key_not_rotated/bob/key-1"));

    let moto = Moto::start();
    let import = |moto: &Moto| -> (u64, u64) {
        let mut calls_and_imported = (0, 0);
        for file in &files {
            let answer = hub(moto, &["import", file.to_str().unwrap()]);
            assert_eq!(answer["failed"], 0, "{answer}");
            calls_and_imported.0 += answer["calls"].as_u64().unwrap();
            calls_and_imported.1 += answer["imported"].as_u64().unwrap();
        }
        calls_and_imported
    };
    let read_back = |moto: &Moto| -> (u64, Vec<Value>) {
        let answer = hub(moto, &["findings"]);
        (
            answer["pages"].as_u64().unwrap(),
            answer["findings"].as_array().unwrap().clone(),
        )
    };

    let (calls, imported) = import(&moto);
    assert_eq!(imported as usize, expected.len());
    assert_eq!(calls, 1 + 2, "24 findings in one call, 107 in two");
    let (pages, found) = read_back(&moto);
    assert_eq!(found.len(), expected.len());
    assert_eq!(pages, 2, "{} findings in pages of 100", found.len());
    let ids: BTreeSet<&str> = found.iter().map(|f| f["Id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        expected.keys().map(String::as_str).collect::<BTreeSet<_>>()
    );
    for f in &found {
        let id = f["Id"].as_str().unwrap();
        assert_eq!(f["Severity"]["Label"], expected[id].as_str(), "{id}");
        assert_eq!(f["SchemaVersion"], "2018-10-08");
        assert_eq!(f["Compliance"]["Status"], "FAILED");
    }

    // The same findings again: updated in place, not duplicated.
    let (_, imported_again) = import(&moto);
    assert_eq!(imported_again, imported);
    let (_, again) = read_back(&moto);
    assert_eq!(
        again.len(),
        expected.len(),
        "importing twice duplicated findings"
    );

    let sample = found
        .iter()
        .find(|f| {
            f["Id"] == "iam-credentials-exporter/123456789012/access_key_not_rotated/bob/key-1"
        })
        .unwrap();
    eprintln!(
        "ASFF round trip through moto's Security Hub: {imported} finding(s) imported in {calls} \
         call(s) (sample report: 24, {LARGE}: {}), {} read back in {pages} page(s); imported \
         again: {imported_again} updated, {} read back.\nA finding as read back:\n{}",
        expected.len() - 24,
        found.len(),
        again.len(),
        serde_json::to_string_pretty(sample).unwrap()
    );
}

#[test]
fn asff_exit_codes_region_and_muted_findings() {
    let sample = sample_report();
    let sample = sample.to_str().unwrap();
    // The region picks the partition; the flag works after `check` and before it.
    for args in [
        vec![
            "check",
            sample,
            AT,
            "-o",
            "asff",
            "--aws.region",
            "us-gov-west-1",
        ],
        vec![
            "--aws.region=us-gov-west-1",
            "check",
            sample,
            AT,
            "-o",
            "asff",
        ],
    ] {
        let out = Command::new(BIN)
            .args(&args)
            .env_remove("IAM_CREDENTIALS_EXPORTER_AWS_REGION")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let v: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(
            v[0]["ProductArn"],
            "arn:aws-us-gov:securityhub:us-gov-west-1:123456789012:product/123456789012/default",
            "{args:?}"
        );
        assert_eq!(v[0]["Resources"][0]["Partition"], "aws-us-gov");
        assert_eq!(v[0]["Resources"][0]["Region"], "us-gov-west-1");
    }
    let (_, v) = check(&[sample, AT, "-o", "asff"]);
    let v: Vec<Value> = serde_json::from_str(&v).unwrap();
    assert_eq!(
        v[0]["ProductArn"],
        "arn:aws:securityhub:us-east-1:123456789012:product/123456789012/default",
        "us-east-1 by default"
    );
    let root = v
        .iter()
        .find(|f| f["GeneratorId"] == "iam-credentials-exporter/root_access_key")
        .unwrap();
    assert_eq!(root["Resources"][0]["Type"], "AwsAccount");
    assert_eq!(root["Resources"][0]["Id"], "arn:aws:iam::123456789012:root");
    assert_eq!(root["Severity"]["Label"], "CRITICAL");

    // Muted findings are left out.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yml");
    std::fs::write(
        &config,
        "exceptions:\n  - id: bob-mfa\n    checks: [console_user_without_mfa, user_without_mfa]\n    users: [bob]\n    reason: token on order\n    owner: security-team\n    expires: 2027-01-15\n",
    )
    .unwrap();
    let (code, muted) = check(&[
        sample,
        AT,
        "-o",
        "asff",
        "--config.file",
        config.to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    let muted: Vec<Value> = serde_json::from_str(&muted).unwrap();
    assert_eq!(muted.len(), v.len() - 2);
    assert!(!muted
        .iter()
        .any(|f| f["Id"].as_str().unwrap().ends_with("_without_mfa/bob")));

    // A clean report: an empty array, exit 0.
    let clean = "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_2_active,access_key_2_last_rotated,cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated\n\
alice,arn:aws:iam::111122223333:user/alice,2026-01-01T00:00:00Z,true,2026-11-24T00:00:00Z,2026-11-01T00:00:00Z,N/A,true,false,N/A,false,N/A,false,N/A,false,N/A\n";
    let file = dir.path().join("clean.csv");
    std::fs::write(&file, clean).unwrap();
    let (code, out) = check(&[file.to_str().unwrap(), AT, "-o", "asff"]);
    assert_eq!((code, out.as_str()), (0, "[]\n"));
}
