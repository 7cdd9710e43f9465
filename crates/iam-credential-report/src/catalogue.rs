//! The catalogue of checks: one entry per check, the single source of everything that names
//! one (the README's table, `check` output, the `checks` subcommand, the runbook's coverage).
//!
//! Facts, with their sources:
//! - Security Hub control ids and severities: the Security Hub CSPM "IAM controls" page. Where a
//!   control exists its severity is the catalogue's; checks no control covers carry ours.
//! - AWS Config managed rules: the AWS Config "List of managed rules" page.
//! - CIS AWS Foundations Benchmark numbering v1.4.0 to v7.0.0: the compliance mappings of
//!   prowler (`prowler/compliance/aws/cis_*_aws.json`), cross-checked with the Steampipe
//!   compliance mod and Security Hub's requirement lists. CIS renumbered its IAM section in
//!   v5.0 (1.x shifted by one) and v6.0 (section 2); v7.0 dropped "no keys at initial setup"
//!   and "one active key". A version without the recommendation is left out of [`Entry::cis`].

use serde::ser::{SerializeMap, SerializeStruct};
use serde::{Serialize, Serializer};

/// The CIS AWS Foundations Benchmark versions the catalogue numbers, oldest first.
pub const CIS_VERSIONS: [&str; 8] = ["1.4", "1.5", "2.0", "3.0", "4.0", "5.0", "6.0", "7.0"];

/// How bad a failure is, in the labels of the AWS Security Finding Format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// `CRITICAL`: whoever finds it owns the account.
    Critical,
    /// `HIGH`
    High,
    /// `MEDIUM`
    Medium,
    /// `LOW`
    Low,
    /// `INFORMATIONAL`
    Informational,
}

impl Severity {
    /// The lower-case name (`critical`...), as `checks` and `check` print it.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
            Severity::Informational => "informational",
        }
    }

    /// The ASFF `Severity.Label` (`CRITICAL`...).
    pub fn asff_label(self) -> &'static str {
        match self {
            Severity::Critical => "CRITICAL",
            Severity::High => "HIGH",
            Severity::Medium => "MEDIUM",
            Severity::Low => "LOW",
            Severity::Informational => "INFORMATIONAL",
        }
    }
}

impl Serialize for Severity {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Where a check's verdict comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// The credential report: judged in file mode and by `check` too.
    Report,
    /// Live account calls (password policy, MFA devices): judged only against AWS.
    Live,
}

impl Basis {
    /// `report` or `live`.
    pub fn as_str(self) -> &'static str {
        match self {
            Basis::Report => "report",
            Basis::Live => "live",
        }
    }
}

/// One check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// The `check` label value.
    pub id: &'static str,
    /// What must hold, in a few words.
    pub title: &'static str,
    /// How bad a failure is.
    pub severity: Severity,
    /// Where the verdict comes from.
    pub basis: Basis,
    /// Security Hub control ids.
    pub security_hub: &'static [&'static str],
    /// The AWS Config managed rule, when one judges the same.
    pub config_rule: Option<&'static str>,
    /// CIS recommendation ids by benchmark version (versions from [`CIS_VERSIONS`]; a
    /// version without the recommendation is absent).
    pub cis: &'static [(&'static str, &'static str)],
    /// When it fails.
    pub fails_when: &'static str,
    /// The default threshold, for checks that have one (a humantime duration).
    pub threshold: Option<&'static str>,
    /// What to run to fix it.
    pub remediation: &'static str,
}

impl Entry {
    /// The CIS id in `version`, if that version has the recommendation.
    pub fn cis_id(&self, version: &str) -> Option<&'static str> {
        self.cis
            .iter()
            .find(|(v, _)| *v == version)
            .map(|(_, id)| *id)
    }

    /// The newest CIS version that has the recommendation, with its id there.
    pub fn latest_cis(&self) -> Option<(&'static str, &'static str)> {
        self.cis.last().copied()
    }

    /// Security Hub ids and the newest CIS id in one short string, e.g.
    /// `IAM.5, CIS v7.0 2.10`.
    pub fn controls(&self) -> String {
        let mut parts: Vec<String> = self.security_hub.iter().map(|s| (*s).to_owned()).collect();
        if let Some((version, id)) = self.latest_cis() {
            parts.push(format!("CIS v{version} {id}"));
        }
        if parts.is_empty() {
            "-".to_owned()
        } else {
            parts.join(", ")
        }
    }
}

/// The `cis` field: an object from version to id.
struct CisMap(&'static [(&'static str, &'static str)]);

impl Serialize for CisMap {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (version, id) in self.0 {
            map.serialize_entry(version, id)?;
        }
        map.end()
    }
}

impl Serialize for Entry {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Entry", 10)?;
        st.serialize_field("id", self.id)?;
        st.serialize_field("title", self.title)?;
        st.serialize_field("severity", &self.severity)?;
        st.serialize_field("basis", self.basis.as_str())?;
        st.serialize_field("security_hub", self.security_hub)?;
        st.serialize_field("cis", &CisMap(self.cis))?;
        st.serialize_field("config_rule", &self.config_rule)?;
        st.serialize_field("fails_when", self.fails_when)?;
        st.serialize_field("threshold", &self.threshold)?;
        st.serialize_field("remediation", self.remediation)?;
        st.end()
    }
}

/// CIS ids of a recommendation numbered `old` in v1.4-v4.0, `v5` in v5.0, `v6` in v6.0 and
/// `v7` in v7.0 (`""`: absent from that version).
macro_rules! cis {
    ($old:literal, $v5:literal, $v6:literal, $v7:literal) => {
        &[
            ("1.4", $old),
            ("1.5", $old),
            ("2.0", $old),
            ("3.0", $old),
            ("4.0", $old),
            ("5.0", $v5),
            ("6.0", $v6),
            ("7.0", $v7),
        ]
    };
    ($old:literal, $v5:literal, $v6:literal) => {
        &[
            ("1.4", $old),
            ("1.5", $old),
            ("2.0", $old),
            ("3.0", $old),
            ("4.0", $old),
            ("5.0", $v5),
            ("6.0", $v6),
        ]
    };
}

const ROTATE_KEY: &str = "aws iam create-access-key --user-name USER; move its callers to the new key; aws iam update-access-key --user-name USER --access-key-id OLD_KEY_ID --status Inactive; then aws iam delete-access-key --user-name USER --access-key-id OLD_KEY_ID";
const DEACTIVATE_KEY: &str =
    "aws iam update-access-key --user-name USER --access-key-id KEY_ID --status Inactive";
const PASSWORD_POLICY: &str = "aws iam update-account-password-policy --minimum-password-length 14 --password-reuse-prevention 24 --require-uppercase-characters --require-lowercase-characters --require-numbers --require-symbols --max-password-age 90";

/// Every check: the report's, in [`crate::judge::Check`] order, then the account's, in
/// [`crate::judge::AccountCheck`] order (the judge looks entries up by that position).
pub static CATALOGUE: [Entry; 18] = [
    Entry {
        id: "console_user_without_mfa",
        title: "MFA for every IAM user with a console password",
        severity: Severity::Medium,
        basis: Basis::Report,
        security_hub: &["IAM.5"],
        config_rule: Some("mfa-enabled-for-iam-console-access"),
        cis: cis!("1.10", "1.9", "2.9", "2.10"),
        fails_when: "an IAM user has a console password and no MFA device",
        threshold: None,
        remediation: "aws iam create-virtual-mfa-device --virtual-mfa-device-name USER --outfile qr.png --bootstrap-method QRCodePNG; aws iam enable-mfa-device --user-name USER --serial-number MFA_ARN --authentication-code1 CODE1 --authentication-code2 CODE2 (or, without console use: aws iam delete-login-profile --user-name USER)",
    },
    Entry {
        id: "user_without_mfa",
        title: "MFA for every IAM user",
        severity: Severity::Medium,
        basis: Basis::Report,
        security_hub: &["IAM.19"],
        config_rule: Some("iam-user-mfa-enabled"),
        cis: &[],
        fails_when: "an IAM user has no MFA device, console password or not",
        threshold: None,
        remediation: "aws iam create-virtual-mfa-device --virtual-mfa-device-name USER --outfile qr.png --bootstrap-method QRCodePNG; aws iam enable-mfa-device --user-name USER --serial-number MFA_ARN --authentication-code1 CODE1 --authentication-code2 CODE2",
    },
    Entry {
        id: "root_without_mfa",
        title: "MFA for the root user",
        severity: Severity::Critical,
        basis: Basis::Report,
        security_hub: &["IAM.9"],
        config_rule: Some("root-account-mfa-enabled"),
        cis: cis!("1.5", "1.4", "2.4", "2.5"),
        fails_when: "the root user has credentials (a password, an active key or certificate) and no MFA device; passes when root credentials were removed (centralized root access)",
        threshold: None,
        remediation: "sign in as the root user and assign an MFA device (Security credentials page), or remove the root credentials: aws iam enable-organizations-root-credentials-management from the organization's management account, then aws sts assume-root --target-principal ACCOUNT_ID --task-policy-arn arn=arn:aws:iam::aws:policy/root-task/IAMDeleteRootUserCredentials and aws iam delete-login-profile",
    },
    Entry {
        id: "root_access_key",
        title: "No access key for the root user",
        severity: Severity::Critical,
        basis: Basis::Report,
        security_hub: &["IAM.4"],
        config_rule: Some("iam-root-access-key-check"),
        cis: cis!("1.4", "1.3", "2.3", "2.4"),
        fails_when: "the root user has an active access key (counts keys)",
        threshold: None,
        remediation: "aws iam delete-access-key --access-key-id KEY_ID, with the root user's credentials or a session from aws sts assume-root --target-principal ACCOUNT_ID --task-policy-arn arn=arn:aws:iam::aws:policy/root-task/IAMDeleteRootUserCredentials",
    },
    Entry {
        id: "root_used_recently",
        title: "No everyday use of the root user",
        severity: Severity::High,
        basis: Basis::Report,
        security_hub: &[],
        config_rule: None,
        cis: cis!("1.7", "1.6", "2.6", "2.7"),
        fails_when: "the root user signed in or used an access key within the window",
        threshold: Some("1d"),
        remediation: "find who used root in CloudTrail (userIdentity.type = Root): aws cloudtrail lookup-events --lookup-attributes AttributeKey=Username,AttributeValue=root; give that task an IAM role instead",
    },
    Entry {
        id: "access_key_not_rotated",
        title: "Active access keys rotated within the maximum age",
        severity: Severity::Medium,
        basis: Basis::Report,
        security_hub: &["IAM.3"],
        config_rule: Some("access-keys-rotated"),
        cis: cis!("1.14", "1.13", "2.13", "2.12"),
        fails_when: "an active access key was created or last rotated longer ago than the maximum age (counts keys)",
        threshold: Some("90d"),
        remediation: ROTATE_KEY,
    },
    Entry {
        id: "unused_access_key",
        title: "No active access key unused for longer than the window",
        severity: Severity::Medium,
        basis: Basis::Report,
        security_hub: &["IAM.8", "IAM.22"],
        config_rule: Some("iam-user-unused-credentials-check"),
        cis: cis!("1.12", "1.11", "2.11", "2.11"),
        fails_when: "an active access key was last used (never used: created) longer ago than the window (counts keys)",
        threshold: Some("90d"),
        remediation: DEACTIVATE_KEY,
    },
    Entry {
        id: "unused_password",
        title: "No console password unused for longer than the window",
        severity: Severity::Medium,
        basis: Basis::Report,
        security_hub: &["IAM.8", "IAM.22"],
        config_rule: Some("iam-user-unused-credentials-check"),
        cis: cis!("1.12", "1.11", "2.11", "2.11"),
        fails_when: "a console password was last used (never used: set) longer ago than the window",
        threshold: Some("90d"),
        remediation: "aws iam delete-login-profile --user-name USER",
    },
    Entry {
        id: "two_active_access_keys",
        title: "At most one active access key per IAM user",
        severity: Severity::Low,
        basis: Basis::Report,
        security_hub: &[],
        config_rule: None,
        cis: cis!("1.13", "1.12", "2.12"),
        fails_when: "both access key slots of an IAM user hold active keys",
        threshold: None,
        remediation: DEACTIVATE_KEY,
    },
    Entry {
        id: "access_key_at_setup",
        title: "No access key handed out with a console password at setup",
        severity: Severity::Low,
        basis: Basis::Report,
        security_hub: &[],
        config_rule: None,
        cis: cis!("1.11", "1.10", "2.10"),
        fails_when: "an IAM user with a console password has an active access key that was never used",
        threshold: None,
        remediation: "aws iam delete-access-key --user-name USER --access-key-id KEY_ID",
    },
    Entry {
        id: "password_not_rotated",
        title: "Console passwords changed within the maximum age",
        severity: Severity::Low,
        basis: Basis::Report,
        security_hub: &[],
        config_rule: None,
        cis: &[],
        fails_when: "a console password was last changed longer ago than the maximum age",
        threshold: Some("90d"),
        remediation: "aws iam update-login-profile --user-name USER --password-reset-required",
    },
    Entry {
        id: "inactive_user",
        title: "No IAM user without recent use of any credential",
        severity: Severity::Low,
        basis: Basis::Report,
        security_hub: &[],
        config_rule: None,
        cis: &[],
        fails_when: "an IAM user past its grace period used no credential within the window: password disabled or unused, every active key unused",
        threshold: Some("90d"),
        remediation: "aws iam delete-login-profile --user-name USER; aws iam delete-access-key --user-name USER --access-key-id KEY_ID (each key); then aws iam delete-user --user-name USER",
    },
    Entry {
        id: "password_policy_missing",
        title: "An IAM password policy",
        severity: Severity::Medium,
        basis: Basis::Live,
        security_hub: &["IAM.7"],
        config_rule: Some("iam-password-policy"),
        cis: &[],
        fails_when: "the account has no IAM password policy (AWS's default then allows 8 characters and reuse, so the other policy checks fail too)",
        threshold: None,
        remediation: PASSWORD_POLICY,
    },
    Entry {
        id: "password_policy_weak_length",
        title: "Passwords of at least 14 characters",
        severity: Severity::Medium,
        basis: Basis::Live,
        security_hub: &["IAM.15"],
        config_rule: Some("iam-password-policy"),
        cis: cis!("1.8", "1.7", "2.7", "2.8"),
        fails_when: "the password policy's minimum length is below 14, or there is no policy",
        threshold: None,
        remediation: PASSWORD_POLICY,
    },
    Entry {
        id: "password_policy_weak_reuse",
        title: "The last 24 passwords cannot be reused",
        severity: Severity::Low,
        basis: Basis::Live,
        security_hub: &["IAM.16"],
        config_rule: Some("iam-password-policy"),
        cis: cis!("1.9", "1.8", "2.8", "2.9"),
        fails_when: "the password policy bars fewer than the last 24 passwords from reuse, or there is no policy",
        threshold: None,
        remediation: PASSWORD_POLICY,
    },
    Entry {
        id: "password_policy_weak_complexity",
        title: "Passwords need upper and lower case letters, numbers and symbols",
        severity: Severity::Medium,
        basis: Basis::Live,
        security_hub: &["IAM.7"],
        config_rule: Some("iam-password-policy"),
        cis: &[],
        fails_when: "the password policy does not require each of uppercase, lowercase, numbers and symbols, or there is no policy",
        threshold: None,
        remediation: PASSWORD_POLICY,
    },
    Entry {
        id: "password_policy_no_expiry",
        title: "Passwords expire within 90 days",
        severity: Severity::Low,
        basis: Basis::Live,
        security_hub: &["IAM.17"],
        config_rule: Some("iam-password-policy"),
        cis: &[],
        fails_when: "the password policy has no maximum password age (0 or unset) or one above 90 days, or there is no policy",
        threshold: None,
        remediation: PASSWORD_POLICY,
    },
    Entry {
        id: "root_virtual_mfa",
        title: "Hardware MFA for the root user",
        severity: Severity::Critical,
        basis: Basis::Live,
        security_hub: &["IAM.6"],
        config_rule: Some("root-account-hardware-mfa-enabled"),
        cis: cis!("1.6", "1.5", "2.5", "2.6"),
        fails_when: "the root user has credentials and its MFA device is a virtual one (ListVirtualMFADevices lists a device assigned to root); passes when root credentials were removed",
        threshold: None,
        remediation: "sign in as the root user, deactivate the virtual MFA device and assign a hardware (FIDO or TOTP token) device; or remove the root credentials centrally (see root_without_mfa)",
    },
];

/// The entry of a check id.
pub fn lookup(id: &str) -> Option<&'static Entry> {
    CATALOGUE.iter().find(|e| e.id == id)
}

/// Every check id, in catalogue order.
pub fn ids() -> impl Iterator<Item = &'static str> {
    CATALOGUE.iter().map(|e| e.id)
}

/// The catalogue as the README's Markdown table: id, what fails, default threshold, Security
/// Hub, CIS ids by version (v1.4-v4.0, v5.0, v6.0, v7.0), AWS Config rule, and basis.
pub fn markdown_table() -> String {
    let mut out = String::from(
        "| check | fails when | default | severity | Security Hub | CIS v1.4-v4.0 | CIS v5.0 | CIS v6.0 | CIS v7.0 | AWS Config rule | from |\n|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let dash = |s: Option<&str>| s.unwrap_or("-").to_owned();
    for e in &CATALOGUE {
        let cells = [
            format!("`{}`", e.id),
            e.fails_when.to_owned(),
            dash(e.threshold),
            e.severity.as_str().to_owned(),
            if e.security_hub.is_empty() {
                "-".to_owned()
            } else {
                e.security_hub.join(", ")
            },
            dash(e.cis_id("1.4")),
            dash(e.cis_id("5.0")),
            dash(e.cis_id("6.0")),
            dash(e.cis_id("7.0")),
            e.config_rule.map_or("-".to_owned(), |r| format!("`{r}`")),
            e.basis.as_str().to_owned(),
        ];
        out.push_str("| ");
        out.push_str(&cells.join(" | "));
        out.push_str(" |\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_snake_case_and_versions_known() {
        let mut seen = std::collections::HashSet::new();
        for e in &CATALOGUE {
            assert!(seen.insert(e.id), "duplicate {}", e.id);
            assert!(e.id.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
            let versions: Vec<&str> = e.cis.iter().map(|(v, _)| *v).collect();
            let mut sorted = versions.clone();
            sorted.sort_by_key(|v| CIS_VERSIONS.iter().position(|k| k == v).unwrap());
            assert_eq!(versions, sorted, "{}", e.id);
            assert!(!e.remediation.is_empty() && !e.title.is_empty());
            assert!(!e.fails_when.contains('|') && !e.remediation.contains('\n'));
        }
    }

    #[test]
    fn cis_renumbering_follows_the_benchmarks() {
        let root_key = lookup("root_access_key").unwrap();
        assert_eq!(root_key.cis_id("1.4"), Some("1.4"));
        assert_eq!(root_key.cis_id("4.0"), Some("1.4"));
        assert_eq!(root_key.cis_id("5.0"), Some("1.3"));
        assert_eq!(root_key.cis_id("6.0"), Some("2.3"));
        assert_eq!(root_key.cis_id("7.0"), Some("2.4"));
        let unused = lookup("unused_access_key").unwrap();
        assert_eq!(
            [
                unused.cis_id("1.4"),
                unused.cis_id("5.0"),
                unused.cis_id("6.0"),
                unused.cis_id("7.0")
            ],
            [Some("1.12"), Some("1.11"), Some("2.11"), Some("2.11")]
        );
        let one_key = lookup("two_active_access_keys").unwrap();
        assert_eq!(
            [
                one_key.cis_id("1.4"),
                one_key.cis_id("5.0"),
                one_key.cis_id("6.0"),
                one_key.cis_id("7.0")
            ],
            [Some("1.13"), Some("1.12"), Some("2.12"), None]
        );
        assert_eq!(lookup("access_key_at_setup").unwrap().cis_id("7.0"), None);
        assert_eq!(
            lookup("console_user_without_mfa").unwrap().controls(),
            "IAM.5, CIS v7.0 2.10"
        );
        assert_eq!(
            lookup("two_active_access_keys").unwrap().controls(),
            "CIS v6.0 2.12"
        );
        assert_eq!(lookup("inactive_user").unwrap().controls(), "-");
    }

    #[test]
    fn json_has_the_documented_fields() {
        let v = serde_json::to_value(lookup("root_access_key").unwrap()).unwrap();
        assert_eq!(v["id"], "root_access_key");
        assert_eq!(v["severity"], "critical");
        assert_eq!(v["security_hub"], serde_json::json!(["IAM.4"]));
        assert_eq!(
            v["cis"],
            serde_json::json!({"1.4": "1.4", "1.5": "1.4", "2.0": "1.4", "3.0": "1.4", "4.0": "1.4", "5.0": "1.3", "6.0": "2.3", "7.0": "2.4"})
        );
        assert_eq!(v["config_rule"], "iam-root-access-key-check");
        assert!(v["remediation"]
            .as_str()
            .unwrap()
            .contains("delete-access-key"));
        let none = serde_json::to_value(lookup("inactive_user").unwrap()).unwrap();
        assert_eq!(none["cis"], serde_json::json!({}));
        assert_eq!(none["config_rule"], serde_json::Value::Null);
    }
}
