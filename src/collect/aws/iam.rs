//! The IAM source: one account's credential report and live facts, read from IAM.

use super::retry::{invalid, Api, Caller, Failure, Markers, RetryCause, Verdict};
use super::users::{self, Directory, UserTagsHandle};
use super::{AwsEnv, AwsSettings};
use crate::collect::{BoxFuture, Fetched, ReportSource, SourceError};
use aws_sdk_iam::operation::get_account_summary::GetAccountSummaryOutput;
use aws_sdk_iam::operation::get_credential_report::GetCredentialReportOutput;
use aws_sdk_iam::types::{AssignmentStatusType, ReportFormatType, ReportStateType, SummaryKeyType};
use chrono::{DateTime, Utc};
use iam_credential_report::account::{AccountSummary, FailureReason, LiveFacts, PasswordPolicy};
use std::time::Instant;

/// How often one round may ask AWS for a new report after GetCredentialReport answered
/// `ReportNotPresent` or `ReportExpired`.
pub const MAX_REGENERATIONS: u32 = 2;

/// One account's credential report and live facts, read from IAM.
#[derive(Debug)]
pub struct AwsSource {
    /// The configuration and credentials calls are made with.
    env: AwsEnv,
    caller: Caller,
    /// The users' paths and tags: which to read, and the last good read.
    users: Directory,
}

impl AwsSource {
    /// A source calling IAM with `env`'s configuration (and credentials: its own, or a
    /// role's from [`AwsEnv::assume`], cached and renewed before they expire). It keeps no
    /// SDK client between rounds: each round builds its IAM client and drops it (see
    /// [`AwsEnv`]).
    pub fn new(env: &AwsEnv, settings: AwsSettings) -> AwsSource {
        AwsSource {
            env: env.clone(),
            caller: Caller::new(env, settings),
            users: Directory::default(),
        }
    }

    /// Reads the users' paths and tags as `tags` says from the next round on (by default no
    /// tag keys: nothing is read). The fleet shares one handle with every source and replaces
    /// its settings on reload.
    pub fn with_user_tags(mut self, tags: UserTagsHandle) -> AwsSource {
        self.users.settings = tags;
        self
    }
}

impl AwsSource {
    /// GenerateCredentialReport until `COMPLETE`.
    async fn generate(
        &self,
        client: &aws_sdk_iam::Client,
        deadline: Instant,
    ) -> Result<(), SourceError> {
        let api = Api::GenerateCredentialReport;
        let mut poll = 0;
        let mut last_state = ReportStateType::Started;
        loop {
            let out = match self
                .caller
                .call(api, deadline, || client.generate_credential_report().send())
                .await
            {
                Ok(out) => out,
                Err(f) if poll > 0 && f.cut_by_deadline(deadline) => {
                    return Err(self.caller.not_ready(api, last_state.as_str()))
                }
                Err(f) => return Err(f.into_error()),
            };
            match out.state() {
                Some(ReportStateType::Complete) => return Ok(()),
                Some(state @ (ReportStateType::Started | ReportStateType::Inprogress)) => {
                    if !self.caller.wait_for_report(api, poll, deadline).await {
                        return Err(self.caller.not_ready(api, state.as_str()));
                    }
                    last_state = state.clone();
                    poll += 1;
                }
                other => {
                    return Err(SourceError::new(
                        FailureReason::InvalidResponse,
                        format!(
                            "{}: unknown report state {:?}",
                            api.name(),
                            other.map(|s| s.as_str())
                        ),
                    ))
                }
            }
        }
    }

    /// Generate, then get, the credential report.
    async fn report(
        &self,
        client: &aws_sdk_iam::Client,
        deadline: Instant,
    ) -> Result<(Vec<u8>, Option<DateTime<Utc>>), SourceError> {
        let api = Api::GetCredentialReport;
        let mut regenerations = 0;
        'generate: loop {
            self.generate(client, deadline).await?;
            let mut poll = 0;
            loop {
                let failure = match self
                    .caller
                    .call(api, deadline, || client.get_credential_report().send())
                    .await
                {
                    Ok(out) => return decode_report(out),
                    Err(f) => f,
                };
                match failure.verdict {
                    _ if poll > 0 && failure.cut_by_deadline(deadline) => {
                        return Err(self.caller.not_ready(api, "ReportInProgress"));
                    }
                    Verdict::NotReady => {
                        if !self.caller.wait_for_report(api, poll, deadline).await {
                            return Err(self.caller.not_ready(api, "ReportInProgress"));
                        }
                        poll += 1;
                    }
                    Verdict::Regenerate if regenerations < MAX_REGENERATIONS => {
                        tracing::debug!(error = %failure.message, "Generating the credential report again");
                        regenerations += 1;
                        self.caller.count(api, RetryCause::ReportMissing);
                        continue 'generate;
                    }
                    _ => return Err(failure.into_error()),
                }
            }
        }
    }

    /// The live account facts; failures are listed, not raised.
    async fn live_facts(&self, client: &aws_sdk_iam::Client, deadline: Instant) -> LiveFacts {
        // Each call gets at least one try even when the report used the round up.
        let deadline = deadline.max(Instant::now() + self.caller.settings.call_timeout);
        let (summary, aliases, policy, root_virtual_mfa, (users, users_failure)) = tokio::join!(
            self.caller.call(Api::GetAccountSummary, deadline, || {
                client.get_account_summary().send()
            }),
            self.caller.call(Api::ListAccountAliases, deadline, || {
                client.list_account_aliases().send()
            }),
            self.caller
                .call(Api::GetAccountPasswordPolicy, deadline, || {
                    client.get_account_password_policy().send()
                }),
            self.root_virtual_mfa(client, deadline),
            self.users.for_round(|keys| async move {
                users::read(client, &self.caller, &keys, deadline).await
            }),
        );
        let mut facts = LiveFacts::default();
        let mut failed = |api: Api, f: Failure| {
            tracing::debug!(api = api.name(), error = %f.message, "A live account call failed");
            facts.failures.push((api.name(), f.verdict.reason()));
        };
        match summary.and_then(decode_summary) {
            Ok(s) => facts.summary = Some(s),
            Err(f) => failed(Api::GetAccountSummary, f),
        }
        let alias = match aliases {
            Ok(out) => Some(out.account_aliases().first().cloned()),
            Err(f) => {
                failed(Api::ListAccountAliases, f);
                None
            }
        };
        let password_policy = match policy {
            Ok(out) => Some(out.password_policy().map(|p| PasswordPolicy {
                minimum_length: non_negative(p.minimum_password_length()),
                reuse_prevention: non_negative(p.password_reuse_prevention()),
                max_age_days: non_negative(p.max_password_age()),
                require_symbols: p.require_symbols(),
                require_numbers: p.require_numbers(),
                require_uppercase: p.require_uppercase_characters(),
                require_lowercase: p.require_lowercase_characters(),
            })),
            Err(f) if f.verdict == Verdict::NoSuchEntity => Some(None),
            Err(f) => {
                failed(Api::GetAccountPasswordPolicy, f);
                None
            }
        };
        match root_virtual_mfa {
            Ok(virtual_mfa) => facts.root_virtual_mfa = Some(virtual_mfa),
            Err(f) => failed(Api::ListVirtualMFADevices, f),
        }
        if let Some(f) = users_failure {
            failed(Api::GetAccountAuthorizationDetails, f);
        }
        facts.users = users;
        facts.alias = alias.flatten();
        facts.password_policy = password_policy;
        facts
    }

    /// Whether a virtual MFA device is assigned to the root user: ListVirtualMFADevices
    /// (assigned devices, every page) names each device's user, and root's ARN is
    /// `arn:aws:iam::ACCOUNT:root`. Security Hub IAM.6 and Prowler's
    /// `iam_root_hardware_mfa_enabled` read the same.
    async fn root_virtual_mfa(
        &self,
        client: &aws_sdk_iam::Client,
        deadline: Instant,
    ) -> Result<bool, Failure> {
        let api = Api::ListVirtualMFADevices;
        let mut marker: Option<String> = None;
        let mut markers = Markers::default();
        loop {
            let page = self
                .caller
                .call(api, deadline, || {
                    client
                        .list_virtual_mfa_devices()
                        .assignment_status(AssignmentStatusType::Assigned)
                        .set_marker(marker.clone())
                        .send()
                })
                .await?;
            let root = page.virtual_mfa_devices().iter().any(|d| match d.user() {
                Some(u) => u.arn().starts_with("arn:") && u.arn().ends_with(":root"),
                // Some answers leave out the user; root's device then still has the name the
                // console gives it (the CIS audit and Steampipe read it the same way).
                None => d.serial_number().ends_with(":mfa/root-account-mfa-device"),
            });
            if root {
                return Ok(true);
            }
            marker = markers.next(api, page.is_truncated(), page.marker())?;
            if marker.is_none() {
                return Ok(false);
            }
        }
    }
}

fn non_negative(v: Option<i32>) -> u32 {
    v.map_or(0, |v| v.max(0) as u32)
}

fn decode_report(
    out: GetCredentialReportOutput,
) -> Result<(Vec<u8>, Option<DateTime<Utc>>), SourceError> {
    let api = Api::GetCredentialReport;
    if let Some(format) = &out.report_format {
        if *format != ReportFormatType::TextCsv {
            return Err(invalid(
                api,
                &format!("the report is in {}, not text/csv", format.as_str()),
            ));
        }
    }
    let generated_at = out
        .generated_time
        .and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos()));
    let csv = out
        .content
        .ok_or_else(|| invalid(api, "the answer has no Content"))?
        .into_inner();
    Ok((csv, generated_at))
}

fn decode_summary(out: GetAccountSummaryOutput) -> Result<AccountSummary, Failure> {
    let map = out.summary_map().ok_or_else(|| Failure {
        verdict: Verdict::Fail(FailureReason::InvalidResponse),
        message: "GetAccountSummary: the answer has no SummaryMap".to_owned(),
    })?;
    let get = |k: SummaryKeyType| map.get(&k).copied().unwrap_or(0).max(0) as u64;
    Ok(AccountSummary {
        root_mfa_enabled: get(SummaryKeyType::AccountMfaEnabled) != 0,
        root_access_keys_present: get(SummaryKeyType::AccountAccessKeysPresent) != 0,
        mfa_devices_in_use: get(SummaryKeyType::MfaDevicesInUse),
    })
}

impl ReportSource for AwsSource {
    fn fetch(&self) -> BoxFuture<'_, Result<Fetched, SourceError>> {
        Box::pin(async move {
            let deadline = Instant::now() + self.caller.settings.round_timeout;
            let client = self.env.iam_client();
            let (csv, generated_at) = self.report(&client, deadline).await?;
            let live = self.live_facts(&client, deadline).await;
            Ok(Fetched {
                csv,
                generated_at,
                account_id: None,
                live: Some(live),
            })
        })
    }

    fn retries(&self) -> Vec<((&'static str, &'static str), u64)> {
        self.caller.retries()
    }
}
