//! Live AWS: an account's credential report and live account facts, read from IAM.
//!
//! This is the only module that imports the AWS SDK (`aws_config`, `aws_sdk_iam`,
//! `aws_credential_types`), fenced the way yet-another-cloudwatch-exporter fences its clients:
//! the rest of the exporter sees [`AwsSource`] through the [`ReportSource`] seam and plain
//! settings structs, never an SDK type. Further AWS calls (STS, Organizations) belong here too.
//!
//! One [`ReportSource::fetch`] is one round:
//! 1. GenerateCredentialReport until it answers `COMPLETE` (`STARTED` and `INPROGRESS`: poll
//!    again after a backoff). AWS builds a new report only when the current one is older than
//!    4 hours, so this usually answers `COMPLETE` at once.
//! 2. GetCredentialReport. `ReportNotPresent` or `ReportExpired`: generate again (at most
//!    [`MAX_REGENERATIONS`] times a round); `ReportInProgress`: poll again after a backoff.
//! 3. GetAccountSummary, ListAccountAliases, GetAccountPasswordPolicy and ListVirtualMFADevices
//!    (is root's MFA a virtual device?), concurrently, and, when user tag keys are configured,
//!    GetAccountAuthorizationDetails at most hourly (the users' paths and tags: see [`users`]
//!    for why this call and how often). Their
//!    failures go into [`LiveFacts::failures`] and never fail the round; a missing password
//!    policy (`NoSuchEntity`) is a finding, not a failure.
//!
//! Retries are this module's, not the SDK's (its retry strategy is switched off), so that each
//! is bounded and counted (`iam_credentials_exporter_aws_retries_total`): throttling
//! (`Throttling`, `LimitExceeded`, HTTP 429), server errors (`ServiceFailure`, any 5xx),
//! timeouts and network errors back off exponentially with full jitter ([`Backoff::delay`]),
//! at most [`AwsSettings::max_attempts`] tries per call and never past the round's deadline.
//! `AccessDenied` fails at once, with a log line naming the missing permission; other client
//! errors fail at once too. Every call has a timeout. The failure's reason is the one the last
//! try met, from [`FailureReason`]'s bounded set.

mod iam;
mod organizations;
mod retry;
#[cfg(test)]
mod roles_tests;
pub mod users;

pub use iam::{AwsSource, MAX_REGENERATIONS};
pub use organizations::{OrgAccount, OrganizationLister};
pub use retry::{Backoff, RetryCause};
pub use users::{UserTags, UserTagsHandle, USER_TAGS_INTERVAL, USER_TAGS_KEEP};

use aws_config::identity::IdentityCache;
use aws_config::meta::region::RegionProviderChain;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::provider::{self as credentials, ProvideCredentials};
use aws_sdk_iam::config::SharedHttpClient;
use std::sync::Arc;
use std::time::Duration;

/// The region IAM calls are signed for when neither `--aws.region` nor the credential chain
/// names one. IAM is a global service: only the partition matters.
pub const DEFAULT_REGION: &str = "us-east-1";

/// How AWS calls are bounded and retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AwsSettings {
    /// The timeout of each API call (one try).
    pub call_timeout: Duration,
    /// Tries per call when AWS throttles or fails on its side, a call times out or the
    /// network fails (1: never retry).
    pub max_attempts: u32,
    /// Backoff between tries, and between polls while a report is generated.
    pub backoff: Backoff,
    /// A round (waiting for the report and backing off included) gives up after this long;
    /// the live account calls after the report still get one try each.
    pub round_timeout: Duration,
    /// Randomise delays (full jitter). Off, every delay is its cap.
    pub jitter: bool,
}

impl Default for AwsSettings {
    fn default() -> Self {
        AwsSettings {
            call_timeout: Duration::from_secs(30),
            max_attempts: 6,
            backoff: Backoff {
                base: Duration::from_secs(1),
                max: Duration::from_secs(30),
            },
            round_timeout: Duration::from_secs(5 * 60),
            jitter: true,
        }
    }
}

/// Fixed credentials instead of the default chain (tests and stand-ins).
#[derive(Clone, PartialEq, Eq)]
pub struct StaticCredentials {
    /// The access key id.
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: String,
}

impl std::fmt::Debug for StaticCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"** redacted **")
            .finish()
    }
}

/// Where and as whom to call AWS. The default is the default credential chain (environment,
/// shared profile, SSO, web identity, container and instance metadata), the chain's region or
/// [`DEFAULT_REGION`], and the endpoint from `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT_URL_IAM`)
/// when set, else AWS's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Connect {
    /// Sign calls for this region instead of the chain's.
    pub region: Option<String>,
    /// Send calls here instead of AWS's endpoint (a stand-in such as moto).
    pub endpoint_url: Option<String>,
    /// Use these credentials instead of the default chain.
    pub credentials: Option<StaticCredentials>,
}

/// A loaded AWS configuration: region, endpoint, credential provider, timeouts, retries off.
/// Cheap to clone; one is loaded at start-up and shared by every source built from it.
///
/// What the SDK builds is kept once for the process, not once per account: the configuration,
/// and with it one HTTP client (one connection pool, one TLS configuration with its parsed
/// root certificates) that every IAM, STS and Organizations client shares. An account keeps
/// only a copy of the configuration with its role's credentials, in a cache of its own; its
/// IAM client is built for each round and dropped after it, its STS client for each
/// AssumeRole.
#[derive(Debug, Clone)]
pub struct AwsEnv {
    /// With an assumed role, its credentials ([`AssumeRoleOnDemand`]) and this account's own
    /// credentials cache: the role's credentials until shortly before they expire. Not the
    /// loaded configuration's cache, which every account would share: that one holds 64
    /// providers' credentials at most and evicts one to make room for another, so beyond 64
    /// accounts they would push each other's out and assume their roles again.
    config: Arc<SdkConfig>,
    /// The ARN of the role whose credentials calls carry, when assumed, for error messages.
    role_arn: Option<String>,
}

/// A role to assume: ARN, optional external id, session name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssumeRole {
    /// The role's ARN.
    pub arn: String,
    /// The `sts:ExternalId`.
    pub external_id: Option<String>,
    /// The role session name.
    pub session_name: String,
}

impl AwsEnv {
    /// Loads the configuration. Credentials are not resolved here: the first call does it,
    /// and a missing credential fails that round with the reason `credentials`.
    pub async fn load(connect: &Connect, settings: &AwsSettings) -> AwsEnv {
        let region = match &connect.region {
            Some(r) => RegionProviderChain::first_try(Region::new(r.clone())),
            None => RegionProviderChain::default_provider().or_else(DEFAULT_REGION),
        };
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .region(region)
            // Our loop owns retries, so they are counted and bounded per round.
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(settings.call_timeout.min(Duration::from_millis(3100)))
                    .operation_attempt_timeout(settings.call_timeout)
                    .operation_timeout(settings.call_timeout)
                    .build(),
            );
        if let Some(url) = &connect.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        if let Some(c) = &connect.credentials {
            loader = loader.credentials_provider(aws_sdk_iam::config::Credentials::new(
                &c.access_key_id,
                &c.secret_access_key,
                None,
                None,
                "static",
            ));
        }
        let config = loader.http_client(default_http_client()).load().await;
        AwsEnv {
            config: Arc::new(config),
            role_arn: None,
        }
    }

    /// The same configuration with the credentials of `role`, assumed with this
    /// configuration's credentials (STS at the same endpoint: `AWS_ENDPOINT_URL`, or
    /// `AWS_ENDPOINT_URL_STS`). Nothing is called here: the first call assumes the role, the
    /// credentials are cached and renewed before they expire, and a refused AssumeRole fails
    /// that round with the reason `credentials`.
    pub async fn assume(&self, role: &AssumeRole) -> AwsEnv {
        // STS is called with this configuration's credentials: the default chain's, or, when
        // this configuration is itself a role's, that role's (a chain of roles).
        let credentials = SharedCredentialsProvider::new(AssumeRoleOnDemand {
            role: role.clone(),
            base: self.config.clone(),
        });
        // The provider itself, which the clients built from this configuration take as it is
        // (a service config builder's `credentials_provider` would wrap it in a new one, of a
        // new cache partition: every round would assume the role again).
        let config = self
            .config
            .to_builder()
            .credentials_provider(credentials)
            .identity_cache(IdentityCache::lazy().build())
            .build();
        AwsEnv {
            config: Arc::new(config),
            role_arn: Some(role.arn.clone()),
        }
    }

    /// The region calls are signed for.
    pub fn region(&self) -> Option<&str> {
        self.config.region().map(|r| r.as_ref())
    }

    /// The endpoint override, if any (`AWS_ENDPOINT_URL` or [`Connect::endpoint_url`]).
    pub fn endpoint_url(&self) -> Option<&str> {
        self.config.endpoint_url()
    }

    /// The ARN of the role whose credentials calls carry, when assumed.
    fn role_arn(&self) -> Option<&str> {
        self.role_arn.as_deref()
    }

    /// An IAM client with this configuration and credentials. Cheap enough to build for each
    /// round: it shares the configuration's HTTP client, and a role's credentials stay in the
    /// account's cache.
    fn iam_client(&self) -> aws_sdk_iam::Client {
        aws_sdk_iam::Client::new(&self.config)
    }

    /// An Organizations client with this configuration and credentials.
    fn organizations_client(&self) -> aws_sdk_organizations::Client {
        aws_sdk_organizations::Client::new(&self.config)
    }
}

/// A role's credentials, assumed when the account's credentials cache asks for them: on the
/// first call, then shortly before they expire. The SDK's `AssumeRoleProvider` keeps an STS
/// client (its configuration and runtime plugins) for as long as it lives; this builds one
/// for each AssumeRole and drops it, so an account keeps only its role between renewals.
#[derive(Debug)]
struct AssumeRoleOnDemand {
    role: AssumeRole,
    /// The configuration STS is called with (its credentials, endpoint and HTTP client).
    base: Arc<SdkConfig>,
}

impl ProvideCredentials for AssumeRoleOnDemand {
    fn provide_credentials<'a>(&'a self) -> credentials::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        credentials::future::ProvideCredentials::new(async move {
            let mut builder = aws_config::sts::AssumeRoleProvider::builder(self.role.arn.clone())
                .session_name(self.role.session_name.clone())
                .configure(&self.base);
            if let Some(id) = &self.role.external_id {
                builder = builder.external_id(id.clone());
            }
            builder.build().await.provide_credentials().await
        })
    }
}

/// The HTTP client the SDK builds for a client by default (hyper with rustls on aws-lc, the
/// proxy from the environment, as aws-smithy-runtime's `default_https_client` makes it), built
/// once to share. Each client would otherwise build its own: its own TLS configuration (the
/// parsed root certificates, some 80 KiB) and its own connection pool, whose idle connections
/// keep their buffers for 90 s. With an IAM and an STS client for each account, that was most
/// of an account's memory (some 300 KiB of 450), and every account opened connections of its
/// own.
fn default_http_client() -> SharedHttpClient {
    use aws_smithy_http_client::{proxy::ProxyConfig, tls, Builder, ConnectorBuilder};
    Builder::new().build_with_connector_fn(|settings, runtime_components| {
        let mut connector = ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ));
        connector.set_connector_settings(settings.cloned());
        if let Some(components) = runtime_components {
            connector.set_sleep_impl(components.sleep_impl());
        }
        connector.set_proxy_config(Some(ProxyConfig::from_env()));
        connector.build()
    })
}

#[cfg(test)]
mod tests {
    use super::retry::*;
    use super::*;
    use aws_credential_types::provider::error::CredentialsError;
    use iam_credential_report::account::FailureReason as R;
    use strum::VariantArray;

    const MS: Duration = Duration::from_millis(1);

    fn backoff() -> Backoff {
        Backoff {
            base: 100 * MS,
            max: 1000 * MS,
        }
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let b = backoff();
        let caps: Vec<_> = (0..6).map(|a| b.delay(a, 1.0)).collect();
        assert_eq!(
            caps,
            [100 * MS, 200 * MS, 400 * MS, 800 * MS, 1000 * MS, 1000 * MS]
        );
        // Far attempts neither overflow nor pass the cap.
        assert_eq!(b.delay(40, 1.0), 1000 * MS);
        assert_eq!(b.delay(u32::MAX, 1.0), 1000 * MS);
    }

    #[test]
    fn full_jitter_spreads_delays_from_zero_to_the_cap() {
        let b = backoff();
        assert_eq!(b.delay(2, 0.0), Duration::ZERO);
        assert_eq!(b.delay(2, 0.5), 200 * MS);
        assert_eq!(b.delay(2, 0.25), 100 * MS);
        // Out-of-range draws are clamped, never negative or past the cap.
        assert_eq!(b.delay(2, -1.0), Duration::ZERO);
        assert_eq!(b.delay(2, 7.0), 400 * MS);
    }

    #[test]
    fn polls_start_at_a_tenth_of_the_backoff_and_never_follow_at_once() {
        let b = backoff();
        assert_eq!(b.poll_delay(0, 0.0), 10 * MS);
        assert_eq!(b.poll_delay(0, 1.0), 10 * MS);
        assert_eq!(b.poll_delay(1, 1.0), 20 * MS);
        assert_eq!(b.poll_delay(3, 0.0), 10 * MS);
        assert_eq!(b.poll_delay(3, 0.5), 40 * MS);
        assert_eq!(b.poll_delay(10, 1.0), 1000 * MS);
    }

    #[test]
    fn report_errors_lead_to_regenerating_or_waiting() {
        let service = |code| classify(Shape::Service, Some(code), Some(410));
        assert_eq!(service("ReportNotPresent"), Verdict::Regenerate);
        assert_eq!(service("ReportExpired"), Verdict::Regenerate);
        assert_eq!(
            classify(Shape::Service, Some("ReportInProgress"), Some(404)),
            Verdict::NotReady
        );
        assert_eq!(
            classify(Shape::Service, Some("NoSuchEntity"), Some(404)),
            Verdict::NoSuchEntity
        );
    }

    /// An IAM call that failed because its credentials could not be fetched: the provider's
    /// error, as the SDK reports it (a construction failure of the call).
    fn without_credentials(
        cause: CredentialsError,
    ) -> aws_sdk_iam::error::SdkError<
        aws_sdk_iam::operation::get_account_summary::GetAccountSummaryError,
    > {
        aws_sdk_iam::error::SdkError::construction_failure(cause)
    }

    #[test]
    fn sts_out_of_reach_is_a_network_failure_not_refused_credentials() {
        use aws_sdk_iam::error::ConnectorError;
        let refused = examine(
            Api::GetAccountSummary,
            Some("arn:aws:iam::111111111111:role/r"),
            &without_credentials(CredentialsError::provider_error(
                "AccessDenied: not authorized",
            )),
        );
        assert_eq!(refused.verdict, Verdict::Fail(R::Credentials));
        // STS could not be reached: connection refused, somewhere down the chain.
        let io = ConnectorError::io("connection refused".into());
        let unreachable = examine(
            Api::GetAccountSummary,
            Some("arn:aws:iam::111111111111:role/r"),
            &without_credentials(CredentialsError::provider_error(io)),
        );
        assert_eq!(
            unreachable.verdict,
            Verdict::Retry(RetryCause::Network, R::Other)
        );
        let slow = ConnectorError::timeout("no answer".into());
        let timed_out = examine(
            Api::GetAccountSummary,
            None,
            &without_credentials(CredentialsError::provider_error(slow)),
        );
        assert_eq!(
            timed_out.verdict,
            Verdict::Retry(RetryCause::Timeout, R::Timeout)
        );
        let provider_slow = examine(
            Api::GetAccountSummary,
            None,
            &without_credentials(CredentialsError::provider_timed_out(
                std::time::Duration::from_secs(5),
            )),
        );
        assert_eq!(
            provider_slow.verdict,
            Verdict::Retry(RetryCause::Timeout, R::Timeout)
        );
    }

    #[test]
    fn throttling_and_server_errors_are_retried() {
        for code in ["Throttling", "LimitExceeded", "ThrottlingException"] {
            assert_eq!(
                classify(Shape::Service, Some(code), Some(400)),
                Verdict::Retry(RetryCause::Throttled, R::Throttled),
                "{code}"
            );
        }
        assert_eq!(
            classify(Shape::Service, Some("ServiceFailure"), Some(500)),
            Verdict::Retry(RetryCause::ServiceError, R::ServiceError)
        );
        // A 5xx or 429 whatever its body says.
        assert_eq!(
            classify(Shape::Service, None, Some(503)),
            Verdict::Retry(RetryCause::ServiceError, R::ServiceError)
        );
        assert_eq!(
            classify(Shape::Service, Some("Whatever"), Some(429)),
            Verdict::Retry(RetryCause::Throttled, R::Throttled)
        );
        assert_eq!(
            classify(Shape::Timeout, None, None),
            Verdict::Retry(RetryCause::Timeout, R::Timeout)
        );
        assert_eq!(
            classify(Shape::Network, None, None),
            Verdict::Retry(RetryCause::Network, R::Other)
        );
    }

    #[test]
    fn client_errors_fail_at_once() {
        assert_eq!(
            classify(Shape::Service, Some("AccessDenied"), Some(403)),
            Verdict::Fail(R::AccessDenied)
        );
        for code in [
            "InvalidClientTokenId",
            "SignatureDoesNotMatch",
            "ExpiredToken",
        ] {
            assert_eq!(
                classify(Shape::Service, Some(code), Some(403)),
                Verdict::Fail(R::Credentials),
                "{code}"
            );
        }
        assert_eq!(
            classify(Shape::Service, Some("ValidationError"), Some(400)),
            Verdict::Fail(R::Other)
        );
        assert_eq!(
            classify(Shape::Credentials, None, None),
            Verdict::Fail(R::Credentials)
        );
        assert_eq!(classify(Shape::Other, None, None), Verdict::Fail(R::Other));
    }

    #[test]
    fn garbage_is_an_invalid_response() {
        // A 200 whose body is not the answer, or any unreadable response.
        assert_eq!(
            classify(Shape::Service, None, Some(200)),
            Verdict::Fail(R::InvalidResponse)
        );
        assert_eq!(
            classify(Shape::Service, None, Some(404)),
            Verdict::Fail(R::InvalidResponse)
        );
        assert_eq!(
            classify(Shape::Response, None, Some(200)),
            Verdict::Fail(R::InvalidResponse)
        );
    }

    #[test]
    fn verdicts_map_to_bounded_reasons() {
        assert_eq!(Verdict::NotReady.reason(), R::ReportNotReady);
        assert_eq!(Verdict::Regenerate.reason(), R::ReportNotReady);
        assert_eq!(
            Verdict::Retry(RetryCause::Throttled, R::Throttled).reason(),
            R::Throttled
        );
    }

    /// The calls docs/iam-policy.json grants.
    fn iam_apis() -> impl Iterator<Item = &'static Api> {
        Api::VARIANTS
            .iter()
            .filter(|a| a.policy_file() == "docs/iam-policy.json")
    }

    #[test]
    fn every_api_names_its_permission() {
        assert_eq!(iam_apis().count(), 7);
        assert_eq!(iam_apis().filter(|a| a.only_with_user_tags()).count(), 1);
        for api in iam_apis() {
            assert_eq!(api.permission(), format!("iam:{}", api.name()));
        }
    }

    /// The statement of docs/iam-policy.json whose permissions are needed only with user tag
    /// keys configured: its `Sid` says so, since JSON has no comments.
    const USER_TAGS_SID: &str = "UserTagsOnlyWithAwsUserTags";

    #[test]
    fn the_documented_policy_grants_exactly_what_the_calls_need() {
        let policy: serde_json::Value =
            serde_json::from_str(include_str!("../../../docs/iam-policy.json")).unwrap();
        // (always needed, needed only with user tags)
        let (mut always, mut with_tags): (Vec<&str>, Vec<&str>) = (Vec::new(), Vec::new());
        for s in policy["Statement"].as_array().unwrap() {
            assert_eq!(s["Effect"], "Allow");
            assert_eq!(s["Resource"], "*");
            let actions = s["Action"].as_array().unwrap().iter();
            let actions = actions.map(|a| a.as_str().unwrap());
            if s["Sid"] == USER_TAGS_SID {
                with_tags.extend(actions);
            } else {
                always.extend(actions);
            }
        }
        always.sort_unstable();
        with_tags.sort_unstable();
        let needed = |only_with_tags: bool| {
            let mut v: Vec<&str> = iam_apis()
                .filter(|a| a.only_with_user_tags() == only_with_tags)
                .map(|a| a.permission())
                .collect();
            v.sort_unstable();
            v
        };
        // Every call a default configuration makes is granted outside the user tags
        // statement, and that statement grants exactly what tags add: an operator who does not
        // configure tags can leave it out.
        assert_eq!(always, needed(false));
        assert_eq!(with_tags, needed(true));
        assert_eq!(with_tags, ["iam:GetAccountAuthorizationDetails"]);
    }

    #[test]
    fn the_many_accounts_policy_grants_what_discovery_and_roles_need() {
        let policy: serde_json::Value =
            serde_json::from_str(include_str!("../../../docs/iam-policy-organization.json"))
                .unwrap();
        let mut granted: Vec<&str> = policy["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .inspect(|s| assert_eq!(s["Effect"], "Allow"))
            .flat_map(|s| s["Action"].as_array().unwrap())
            .map(|a| a.as_str().unwrap())
            .collect();
        granted.sort_unstable();
        // Discovery calls ListAccounts; the assume-role provider calls sts:AssumeRole.
        assert_eq!(granted, [Api::ListAccounts.permission(), "sts:AssumeRole"]);
    }

    #[test]
    fn error_chains_are_told_once_each() {
        #[derive(Debug)]
        struct E(&'static str, Option<Box<E>>);
        impl std::fmt::Display for E {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.0)
            }
        }
        impl std::error::Error for E {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                self.1.as_deref().map(|e| e as _)
            }
        }
        let e = E(
            "dispatch failure",
            Some(Box::new(E(
                "io error: refused",
                Some(Box::new(E("refused", None))),
            ))),
        );
        assert_eq!(chain(&e), "dispatch failure: io error: refused");
    }

    #[test]
    fn static_credentials_do_not_print_the_secret() {
        let c = StaticCredentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI".into(),
        };
        let text = format!("{c:?}");
        assert!(text.contains("AKIDEXAMPLE") && !text.contains("wJalrXUtnFEMI"));
    }
}
