//! `check --output asff`: the verdict's findings in the AWS Security Finding Format, a JSON
//! array that `aws securityhub batch-import-findings --findings file://FILE` takes (at most
//! 100 findings a call: split longer arrays). Pure: the verdict and the region in, findings
//! out, written one at a time as the verdict's findings are walked.
//!
//! One finding per user, check and key slot (a key check failing on both keys is two
//! findings), with a stable `Id` (`iam-credentials-exporter/ACCOUNT/CHECK/USER[/key-N]`), so
//! the same finding imported again updates itself instead of appearing twice. Muted findings
//! are left out (they are accepted risks). Title, severity and remediation come from the
//! catalogue; `Compliance.RelatedRequirements` carries the Security Hub control ids and the
//! CIS ids of every benchmark version that has the recommendation.

use crate::cli::check::{FindingRecord, Findings, Verdict, Walk};
use crate::config;
use chrono::SecondsFormat;
use iam_credential_report::catalogue::Entry;
use iam_credential_report::judge::Check;
use serde::Serialize;
use std::io::{self, Write};
use std::ops::ControlFlow;

/// The ASFF version every finding declares.
pub const SCHEMA_VERSION: &str = "2018-10-08";

/// The finding type of every finding.
pub const FINDING_TYPE: &str =
    "Software and Configuration Checks/Industry and Regulatory Standards/CIS AWS Foundations Benchmark";

/// The prefix of `Id` and `GeneratorId`.
pub const PRODUCER: &str = "iam-credentials-exporter";

/// How many findings one `batch-import-findings` call takes.
pub const BATCH_LIMIT: usize = 100;

/// The region findings are imported into when none is given.
pub const DEFAULT_REGION: &str = "us-east-1";

/// Why no ASFF findings can be made.
#[derive(Debug, thiserror::Error)]
pub enum AsffError {
    /// ASFF requires the account id, and the report's ARNs name none.
    #[error(
        "the report names no AWS account (no ARN carries one), and ASFF findings need AwsAccountId"
    )]
    NoAccount,
    /// The findings could not be written.
    #[error("writing the findings: {0}")]
    Io(#[from] io::Error),
}

/// One finding, in the fields of ASFF `AwsSecurityFinding` it uses.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct AsffFinding {
    /// Always [`SCHEMA_VERSION`].
    pub schema_version: &'static str,
    /// `iam-credentials-exporter/ACCOUNT/CHECK/USER[/key-N]`.
    pub id: String,
    /// The account's default product (a custom integration).
    pub product_arn: String,
    /// `iam-credentials-exporter/CHECK`.
    pub generator_id: String,
    /// The report's account.
    pub aws_account_id: String,
    /// [`FINDING_TYPE`].
    pub types: Vec<&'static str>,
    /// The judging time (`--at`), RFC 3339.
    pub created_at: String,
    /// The judging time too.
    pub updated_at: String,
    /// The catalogue's severity.
    pub severity: AsffSeverity,
    /// The catalogue's title.
    pub title: &'static str,
    /// The finding's detail sentence.
    pub description: String,
    /// The user (or the account, for root).
    pub resources: Vec<AsffResource>,
    /// FAILED, with the controls and CIS ids.
    pub compliance: AsffCompliance,
    /// The catalogue's remediation.
    pub remediation: AsffRemediation,
}

/// `Severity`.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct AsffSeverity {
    /// `CRITICAL`, `HIGH`, `MEDIUM`, `LOW` or `INFORMATIONAL`.
    pub label: &'static str,
}

/// One of `Resources`.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct AsffResource {
    /// `AwsIamUser`, or `AwsAccount` for root.
    #[serde(rename = "Type")]
    pub kind: &'static str,
    /// The ARN from the report.
    pub id: String,
    /// The partition of the region.
    pub partition: &'static str,
    /// The region findings are imported into (IAM is global).
    pub region: String,
}

/// `Compliance`.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct AsffCompliance {
    /// Always `FAILED`: only failures are findings.
    pub status: &'static str,
    /// Security Hub control ids (`IAM.5`), then `CIS AWS Foundations Benchmark vX.Y.0/ID` for
    /// each version that has the recommendation.
    pub related_requirements: Vec<String>,
}

/// `Remediation`.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct AsffRemediation {
    /// The recommendation.
    pub recommendation: AsffRecommendation,
}

/// `Remediation.Recommendation`.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct AsffRecommendation {
    /// What to run to fix it.
    pub text: &'static str,
}

/// The stable id of a finding.
pub fn finding_id(account: &str, f: &FindingRecord) -> String {
    let mut id = format!("{PRODUCER}/{account}/{}/{}", f.check, f.user);
    if let Some(k) = f.key {
        id.push_str(&format!("/key-{k}"));
    }
    id
}

/// The `Compliance.RelatedRequirements` of a check.
pub fn related_requirements(e: &Entry) -> Vec<String> {
    e.security_hub
        .iter()
        .map(|s| (*s).to_owned())
        .chain(
            e.cis
                .iter()
                .map(|(v, id)| format!("CIS AWS Foundations Benchmark v{v}.0/{id}")),
        )
        .collect()
}

/// What every finding of a verdict shares: its account, partition, region and time.
struct Shared<'a> {
    account: &'a str,
    partition: &'static str,
    region: &'a str,
    at: String,
    product_arn: String,
}

impl<'a> Shared<'a> {
    fn new<F>(v: &'a Verdict<F>, region: &'a str) -> Result<Shared<'a>, AsffError> {
        let account = v.account_id.as_deref().ok_or(AsffError::NoAccount)?;
        let partition = config::partition(Some(region));
        Ok(Shared {
            account,
            partition,
            region,
            at: v.evaluated_at.to_rfc3339_opts(SecondsFormat::Secs, true),
            product_arn: format!(
                "arn:{partition}:securityhub:{region}:{account}:product/{account}/default"
            ),
        })
    }

    /// One finding in ASFF.
    fn finding(&self, f: &FindingRecord) -> AsffFinding {
        let check = Check::from_name(f.check).expect("a finding's check is in the catalogue");
        let e = check.entry();
        AsffFinding {
            schema_version: SCHEMA_VERSION,
            id: finding_id(self.account, f),
            product_arn: self.product_arn.clone(),
            generator_id: format!("{PRODUCER}/{}", f.check),
            aws_account_id: self.account.to_owned(),
            types: vec![FINDING_TYPE],
            created_at: self.at.clone(),
            updated_at: self.at.clone(),
            severity: AsffSeverity {
                label: e.severity.asff_label(),
            },
            title: e.title,
            description: f.detail.clone(),
            resources: vec![AsffResource {
                kind: if check.is_root() {
                    "AwsAccount"
                } else {
                    "AwsIamUser"
                },
                id: f.arn.clone(),
                partition: self.partition,
                region: self.region.to_owned(),
            }],
            compliance: AsffCompliance {
                status: "FAILED",
                related_requirements: related_requirements(e),
            },
            remediation: AsffRemediation {
                recommendation: AsffRecommendation {
                    text: e.remediation,
                },
            },
        }
    }
}

/// The verdict's (unmuted) findings in ASFF, for import into `region`'s Security Hub.
pub fn findings<F: Findings>(v: &Verdict<F>, region: &str) -> Result<Vec<AsffFinding>, AsffError> {
    let shared = Shared::new(v, region)?;
    let mut out = Vec::new();
    v.findings.each(None, &mut |f| {
        out.push(shared.finding(f));
        ControlFlow::Continue(())
    });
    Ok(out)
}

/// Writes the findings as the pretty JSON array `batch-import-findings --findings file://`
/// reads, one finding at a time. Nothing is written when the verdict names no account.
pub fn write<F: Findings>(
    v: &Verdict<F>,
    region: &str,
    out: &mut dyn Write,
) -> Result<(), AsffError> {
    let shared = Shared::new(v, region)?;
    let all = Walk::new(|f: &mut dyn FnMut(&AsffFinding) -> ControlFlow<()>| {
        v.findings.each(None, &mut |r| f(&shared.finding(r)));
    });
    serde_json::to_writer_pretty(&mut *out, &all).map_err(io::Error::from)?;
    out.write_all(b"\n")?;
    Ok(())
}

/// [`write()`] into a string.
pub fn render<F: Findings>(v: &Verdict<F>, region: &str) -> Result<String, AsffError> {
    let mut out = Vec::new();
    write(v, region, &mut out)?;
    Ok(String::from_utf8(out).expect("JSON is UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::check::Listed;
    use chrono::{TimeZone, Utc};
    use iam_credential_report::catalogue::CATALOGUE;

    fn record(check: &'static str, user: &str, key: Option<u8>) -> FindingRecord {
        let arn = if user == "<root_account>" {
            "arn:aws:iam::123456789012:root".to_owned()
        } else {
            format!("arn:aws:iam::123456789012:user/{user}")
        };
        FindingRecord {
            check,
            severity: "medium",
            controls: String::new(),
            user: user.to_owned(),
            arn,
            key,
            since: None,
            detail: format!("{check} of {user}"),
        }
    }

    fn verdict(findings: Vec<FindingRecord>) -> Verdict<Listed> {
        Verdict {
            account_id: Some("123456789012".to_owned()),
            evaluated_at: Utc.with_ymd_and_hms(2026, 11, 25, 6, 0, 0).unwrap(),
            users: 2,
            root_in_report: true,
            rows_skipped: 0,
            skipped_rows: vec![],
            failures: vec![],
            findings: Listed {
                findings,
                muted: vec![],
            },
        }
    }

    #[test]
    fn one_finding_per_user_check_and_key_with_stable_ids() {
        let v = verdict(vec![
            record("access_key_not_rotated", "bob", Some(1)),
            record("access_key_not_rotated", "bob", Some(2)),
            record("root_access_key", "<root_account>", Some(1)),
            record("console_user_without_mfa", "bob", None),
        ]);
        let out = findings(&v, "us-east-1").unwrap();
        let ids: Vec<&str> = out.iter().map(|f| f.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "iam-credentials-exporter/123456789012/access_key_not_rotated/bob/key-1",
                "iam-credentials-exporter/123456789012/access_key_not_rotated/bob/key-2",
                "iam-credentials-exporter/123456789012/root_access_key/<root_account>/key-1",
                "iam-credentials-exporter/123456789012/console_user_without_mfa/bob",
            ]
        );
        assert_eq!(
            out,
            findings(&v, "us-east-1").unwrap(),
            "the same every time"
        );
        let root = &out[2];
        assert_eq!(root.resources[0].kind, "AwsAccount");
        assert_eq!(root.severity.label, "CRITICAL");
        assert_eq!(out[0].resources[0].kind, "AwsIamUser");
        let json = serde_json::to_value(&out[3]).unwrap();
        assert_eq!(json["SchemaVersion"], "2018-10-08");
        assert_eq!(
            json["ProductArn"],
            "arn:aws:securityhub:us-east-1:123456789012:product/123456789012/default"
        );
        assert_eq!(
            json["GeneratorId"],
            "iam-credentials-exporter/console_user_without_mfa"
        );
        assert_eq!(json["CreatedAt"], "2026-11-25T06:00:00Z");
        assert_eq!(json["UpdatedAt"], "2026-11-25T06:00:00Z");
        assert_eq!(json["Types"][0], FINDING_TYPE);
        assert_eq!(json["Severity"]["Label"], "MEDIUM");
        assert_eq!(
            json["Title"],
            "MFA for every IAM user with a console password"
        );
        assert_eq!(json["Description"], "console_user_without_mfa of bob");
        assert_eq!(json["Resources"][0]["Type"], "AwsIamUser");
        assert_eq!(
            json["Resources"][0]["Id"],
            "arn:aws:iam::123456789012:user/bob"
        );
        assert_eq!(json["Compliance"]["Status"], "FAILED");
        let reqs = json["Compliance"]["RelatedRequirements"]
            .as_array()
            .unwrap();
        assert_eq!(reqs[0], "IAM.5");
        assert!(reqs.contains(&"CIS AWS Foundations Benchmark v1.4.0/1.10".into()));
        assert!(reqs.contains(&"CIS AWS Foundations Benchmark v7.0.0/2.10".into()));
        assert!(json["Remediation"]["Recommendation"]["Text"]
            .as_str()
            .unwrap()
            .contains("enable-mfa-device"));
    }

    #[test]
    fn the_partition_follows_the_region() {
        let v = verdict(vec![record("user_without_mfa", "bob", None)]);
        let gov = &findings(&v, "us-gov-west-1").unwrap()[0];
        assert_eq!(
            gov.product_arn,
            "arn:aws-us-gov:securityhub:us-gov-west-1:123456789012:product/123456789012/default"
        );
        assert_eq!(gov.resources[0].partition, "aws-us-gov");
        assert_eq!(gov.resources[0].region, "us-gov-west-1");
    }

    #[test]
    fn without_an_account_there_are_no_findings_to_make() {
        let mut v = verdict(vec![]);
        v.account_id = None;
        assert!(matches!(
            findings(&v, "us-east-1"),
            Err(AsffError::NoAccount)
        ));
        v.account_id = Some("123456789012".to_owned());
        assert_eq!(render(&v, "us-east-1").unwrap(), "[]\n");
    }

    /// Security Hub's limits: Title 256 characters, Description 1024, Recommendation.Text
    /// 512, RelatedRequirements 32 items.
    #[test]
    fn the_catalogue_fits_security_hubs_limits() {
        for e in &CATALOGUE {
            assert!(e.title.chars().count() <= 256, "{}", e.id);
            assert!(e.remediation.chars().count() <= 512, "{}", e.id);
            assert!(related_requirements(e).len() <= 32, "{}", e.id);
        }
    }
}
