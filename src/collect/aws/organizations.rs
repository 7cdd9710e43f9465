//! Organization discovery: the ACTIVE accounts AWS Organizations lists.

use super::retry::{invalid, Api, Caller, Failure, RetryCause};
use super::{AwsEnv, AwsSettings};
use crate::collect::SourceError;
use std::time::Instant;

/// An account that AWS Organizations lists, as the rest of the exporter sees it.
pub use crate::config::OrgAccount;

/// Lists an organization's accounts (Organizations ListAccounts), with the same bounded,
/// counted retries as the IAM calls. Works from the management account or a delegated
/// administrator account.
#[derive(Debug)]
pub struct OrganizationLister {
    client: aws_sdk_organizations::Client,
    caller: Caller,
}

impl OrganizationLister {
    /// ListAccounts calls made again so far, by cause, for
    /// `iam_credentials_exporter_aws_retries_total`: every cause a listing can meet, 0 before
    /// it first happens (the report causes never apply to it).
    pub fn retries(&self) -> Vec<(&'static str, u64)> {
        let counted = self.caller.retries();
        [
            RetryCause::Throttled,
            RetryCause::ServiceError,
            RetryCause::Timeout,
            RetryCause::Network,
        ]
        .iter()
        .map(|cause| {
            let key = (Api::ListAccounts.name(), cause.as_str());
            let n = counted
                .iter()
                .find(|(k, _)| *k == key)
                .map_or(0, |(_, n)| *n);
            (cause.as_str(), n)
        })
        .collect()
    }

    /// A lister calling Organizations with `env`'s configuration.
    pub fn new(env: &AwsEnv, settings: AwsSettings) -> OrganizationLister {
        OrganizationLister {
            client: env.organizations_client(),
            caller: Caller::new(env, settings),
        }
    }

    /// Every ACTIVE account, all pages, in the order AWS lists them. Accounts being closed,
    /// closed, suspended or not yet active are left out: their roles cannot be assumed, or soon
    /// will not be.
    pub async fn active_accounts(&self) -> Result<Vec<OrgAccount>, SourceError> {
        let deadline = Instant::now() + self.caller.settings.round_timeout;
        let mut accounts = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .caller
                .call(Api::ListAccounts, deadline, || {
                    self.client
                        .list_accounts()
                        .set_next_token(token.clone())
                        .send()
                })
                .await
                .map_err(Failure::into_error)?;
            for a in page.accounts() {
                if !is_active(a) {
                    continue;
                }
                let Some(id) = a.id() else {
                    return Err(invalid(Api::ListAccounts, "an account without an Id"));
                };
                accounts.push(OrgAccount {
                    id: id.to_owned(),
                    name: a.name().unwrap_or_default().to_owned(),
                });
            }
            match page.next_token() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => return Ok(accounts),
            }
        }
    }
}

/// `State` when AWS sends it (since 2025), else the older `Status`.
fn is_active(a: &aws_sdk_organizations::types::Account) -> bool {
    use aws_sdk_organizations::types::{AccountState, AccountStatus};
    match (a.state(), a.status()) {
        (Some(state), _) => *state == AccountState::Active,
        (None, Some(status)) => *status == AccountStatus::Active,
        (None, None) => false,
    }
}
