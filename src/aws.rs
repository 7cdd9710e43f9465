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
//! 3. GetAccountSummary, ListAccountAliases and GetAccountPasswordPolicy, concurrently. Their
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

use crate::source::{
    AccountSummary, BoxFuture, FailureReason, Fetched, LiveFacts, PasswordPolicy, ReportSource,
    SourceError,
};
use aws_config::meta::region::RegionProviderChain;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_iam::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_iam::operation::get_account_summary::GetAccountSummaryOutput;
use aws_sdk_iam::operation::get_credential_report::GetCredentialReportOutput;
use aws_sdk_iam::types::{ReportFormatType, ReportStateType, SummaryKeyType};
use chrono::{DateTime, Utc};
use rand::Rng;
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often one round may ask AWS for a new report after GetCredentialReport answered
/// `ReportNotPresent` or `ReportExpired`.
pub const MAX_REGENERATIONS: u32 = 2;

/// The region IAM calls are signed for when neither `--aws.region` nor the credential chain
/// names one. IAM is a global service: only the partition matters.
pub const DEFAULT_REGION: &str = "us-east-1";

/// Exponential backoff bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The cap of the first delay.
    pub base: Duration,
    /// The largest cap: delays stop doubling here.
    pub max: Duration,
}

impl Backoff {
    /// The delay before retry number `attempt` (0 for the first retry), with "full jitter"
    /// (AWS Architecture Blog, "Exponential Backoff And Jitter"): uniform between zero and
    /// `min(max, base * 2^attempt)`. `unit` is the random draw, in `[0, 1]`; 1 gives the cap.
    pub fn delay(&self, attempt: u32, unit: f64) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        let cap = self.base.saturating_mul(factor).min(self.max);
        cap.mul_f64(unit.clamp(0.0, 1.0))
    }

    /// The delay before poll number `attempt` while AWS generates a report: the same, but
    /// never shorter than `base`, so a poll never follows the last one at once.
    pub fn poll_delay(&self, attempt: u32, unit: f64) -> Duration {
        self.delay(attempt, unit).max(self.base)
    }
}

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
#[derive(Debug, Clone)]
pub struct AwsEnv {
    config: SdkConfig,
    /// The role whose credentials `config` carries, when assumed.
    role: Option<String>,
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
        AwsEnv {
            config: loader.load().await,
            role: None,
        }
    }

    /// The same configuration with the credentials of `role`, assumed with this
    /// configuration's credentials (STS at the same endpoint: `AWS_ENDPOINT_URL`, or
    /// `AWS_ENDPOINT_URL_STS`). Nothing is called here: the first call assumes the role, the
    /// credentials are cached and renewed before they expire, and a refused AssumeRole fails
    /// that round with the reason `credentials`.
    pub async fn assume(&self, role: &AssumeRole) -> AwsEnv {
        let mut builder = aws_config::sts::AssumeRoleProvider::builder(role.arn.clone())
            .session_name(role.session_name.clone())
            .configure(&self.config);
        if let Some(id) = &role.external_id {
            builder = builder.external_id(id.clone());
        }
        let provider = builder.build().await;
        AwsEnv {
            config: self
                .config
                .to_builder()
                .credentials_provider(
                    aws_credential_types::provider::SharedCredentialsProvider::new(provider),
                )
                .build(),
            role: Some(role.arn.clone()),
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
}

/// The IAM calls a round makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Api {
    GenerateCredentialReport,
    GetCredentialReport,
    GetAccountSummary,
    ListAccountAliases,
    GetAccountPasswordPolicy,
    /// Organizations, for discovery.
    ListAccounts,
}

impl Api {
    /// The `api` label value.
    fn name(self) -> &'static str {
        match self {
            Api::GenerateCredentialReport => "GenerateCredentialReport",
            Api::GetCredentialReport => "GetCredentialReport",
            Api::GetAccountSummary => "GetAccountSummary",
            Api::ListAccountAliases => "ListAccountAliases",
            Api::GetAccountPasswordPolicy => "GetAccountPasswordPolicy",
            Api::ListAccounts => "ListAccounts",
        }
    }

    /// The policy file that grants the call's permission.
    fn policy_file(self) -> &'static str {
        match self {
            Api::ListAccounts => "docs/iam-policy-organization.json",
            _ => "docs/iam-policy.json",
        }
    }

    /// The permission the call needs (docs/iam-policy.json grants the IAM ones,
    /// docs/iam-policy-organization.json the others).
    fn permission(self) -> &'static str {
        match self {
            Api::GenerateCredentialReport => "iam:GenerateCredentialReport",
            Api::GetCredentialReport => "iam:GetCredentialReport",
            Api::GetAccountSummary => "iam:GetAccountSummary",
            Api::ListAccountAliases => "iam:ListAccountAliases",
            Api::GetAccountPasswordPolicy => "iam:GetAccountPasswordPolicy",
            Api::ListAccounts => "organizations:ListAccounts",
        }
    }
}

/// Why a call was made again: the bounded `cause` label of
/// `iam_credentials_exporter_aws_retries_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryCause {
    /// `Throttling`, `LimitExceeded` or HTTP 429.
    Throttled,
    /// `ServiceFailure` or another 5xx.
    ServiceError,
    /// The call did not answer within its timeout.
    Timeout,
    /// The connection failed.
    Network,
    /// A poll while the report is generated (`STARTED`, `INPROGRESS`, `ReportInProgress`).
    ReportNotReady,
    /// A new generation after `ReportNotPresent` or `ReportExpired`.
    ReportMissing,
}

impl RetryCause {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            RetryCause::Throttled => "throttled",
            RetryCause::ServiceError => "service_error",
            RetryCause::Timeout => "timeout",
            RetryCause::Network => "network",
            RetryCause::ReportNotReady => "report_not_ready",
            RetryCause::ReportMissing => "report_missing",
        }
    }
}

/// What kind of SDK error a call ended in, before its code is looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// AWS answered with an error (or a body that could not be read as the answer).
    Service,
    /// The response could not be read at all.
    Response,
    /// The call timed out.
    Timeout,
    /// The connection failed with an I/O error.
    Network,
    /// No credentials could be obtained from the chain.
    Credentials,
    /// The request could not be built or sent for another reason.
    Other,
}

/// What to do about a failed call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// Back off and try again, within the bounds; fail with the reason when they run out.
    Retry(RetryCause, FailureReason),
    /// `ReportNotPresent` or `ReportExpired`: generate a report, then get it again.
    Regenerate,
    /// `ReportInProgress`: poll again later.
    NotReady,
    /// `NoSuchEntity`: the thing asked for does not exist (no password policy).
    NoSuchEntity,
    /// Give up at once.
    Fail(FailureReason),
}

impl Verdict {
    fn reason(self) -> FailureReason {
        match self {
            Verdict::Retry(_, r) | Verdict::Fail(r) => r,
            Verdict::Regenerate | Verdict::NotReady => FailureReason::ReportNotReady,
            Verdict::NoSuchEntity => FailureReason::Other,
        }
    }
}

/// Judges a failed call by its shape, its AWS error code and its HTTP status. Pure.
fn classify(shape: Shape, code: Option<&str>, status: Option<u16>) -> Verdict {
    use FailureReason as R;
    match shape {
        Shape::Credentials => return Verdict::Fail(R::Credentials),
        Shape::Timeout => return Verdict::Retry(RetryCause::Timeout, R::Timeout),
        Shape::Network => return Verdict::Retry(RetryCause::Network, R::Other),
        Shape::Response => return Verdict::Fail(R::InvalidResponse),
        Shape::Other => return Verdict::Fail(R::Other),
        Shape::Service => {}
    }
    match code {
        Some("ReportNotPresent" | "ReportExpired") => Verdict::Regenerate,
        Some("ReportInProgress") => Verdict::NotReady,
        Some("NoSuchEntity") => Verdict::NoSuchEntity,
        Some(
            "Throttling"
            | "ThrottlingException"
            | "LimitExceeded"
            | "RequestLimitExceeded"
            | "TooManyRequestsException"
            | "RequestThrottled",
        ) => Verdict::Retry(RetryCause::Throttled, R::Throttled),
        Some("ServiceFailure" | "ServiceUnavailable" | "InternalFailure" | "InternalError") => {
            Verdict::Retry(RetryCause::ServiceError, R::ServiceError)
        }
        Some("AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation") => {
            Verdict::Fail(R::AccessDenied)
        }
        Some(
            "InvalidClientTokenId"
            | "UnrecognizedClientException"
            | "InvalidAccessKeyId"
            | "SignatureDoesNotMatch"
            | "IncompleteSignature"
            | "MissingAuthenticationToken"
            | "ExpiredToken"
            | "ExpiredTokenException",
        ) => Verdict::Fail(R::Credentials),
        _ => match status {
            Some(429) => Verdict::Retry(RetryCause::Throttled, R::Throttled),
            Some(500..=599) => Verdict::Retry(RetryCause::ServiceError, R::ServiceError),
            // A body that is neither the answer nor an AWS error.
            _ if code.is_none() => Verdict::Fail(R::InvalidResponse),
            _ => Verdict::Fail(R::Other),
        },
    }
}

/// A call that failed for good (or needs its caller's attention).
#[derive(Debug)]
struct Failure {
    verdict: Verdict,
    message: String,
}

impl Failure {
    fn into_error(self) -> SourceError {
        SourceError::new(self.verdict.reason(), self.message)
    }

    /// Whether the call ran into the round's deadline rather than its own timeout: after a
    /// wait for the report, that means the round ran out waiting for the report.
    fn cut_by_deadline(&self, deadline: Instant) -> bool {
        matches!(self.verdict, Verdict::Retry(RetryCause::Timeout, _)) && Instant::now() >= deadline
    }
}

/// Whether a credential provider's error sits anywhere in the error's chain.
fn is_credentials_error(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(e) = next {
        if e.is::<CredentialsError>() {
            return true;
        }
        next = e.source();
    }
    false
}

/// An error and its causes, `outer: inner: innermost`, each told once.
fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        let text = e.to_string();
        if !parts.last().is_some_and(|last| last.ends_with(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

/// Reads an SDK error: its shape, code and status, and a message for the log.
fn examine<E>(api: Api, role: Option<&str>, err: &SdkError<E>) -> Failure
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let shape = if is_credentials_error(err) {
        Shape::Credentials
    } else {
        match err {
            SdkError::ServiceError(_) => Shape::Service,
            SdkError::ResponseError(_) => Shape::Response,
            SdkError::TimeoutError(_) => Shape::Timeout,
            SdkError::DispatchFailure(d) if d.is_timeout() => Shape::Timeout,
            SdkError::DispatchFailure(d) if d.is_io() => Shape::Network,
            _ => Shape::Other,
        }
    };
    let status = err.raw_response().map(|r| r.status().as_u16());
    let code = err.code();
    let verdict = classify(shape, code, status);
    let detail = match (shape, code) {
        (Shape::Service, Some(code)) => {
            format!(
                "{code} (HTTP {}): {}",
                status.unwrap_or(0),
                err.message().unwrap_or("")
            )
        }
        (Shape::Service, None) => format!(
            "an answer that is neither the result nor an AWS error (HTTP {}): {}",
            status.unwrap_or(0),
            chain(err)
        ),
        _ => chain(err),
    };
    let message = match verdict {
        Verdict::Fail(FailureReason::AccessDenied) => format!(
            "{} was denied: the exporter's credentials lack {} ({} lists what it needs): {detail}",
            api.name(),
            api.permission(),
            api.policy_file()
        ),
        Verdict::Fail(FailureReason::Credentials) => match role {
            Some(role) => format!(
                "{}: assuming role {role} failed (sts:AssumeRole: the role must exist, trust the exporter's credentials and match the external id): {detail}",
                api.name()
            ),
            None => format!(
                "{}: no usable AWS credentials (the default chain reads the environment, the shared profile, SSO, web identity, container and instance metadata): {detail}",
                api.name()
            ),
        },
        _ => format!("{}: {detail}", api.name()),
    };
    Failure { verdict, message }
}

/// Repeated calls so far, by (API, cause).
type RetryCounts = Vec<((&'static str, &'static str), u64)>;

/// Bounded, counted retries around SDK calls: the IAM source's and the organization
/// listing's.
#[derive(Debug)]
struct Caller {
    settings: AwsSettings,
    retries: Mutex<RetryCounts>,
    /// The role the calls are made as, for error messages.
    role: Option<String>,
}

/// One account's credential report and live facts, read from IAM.
#[derive(Debug)]
pub struct AwsSource {
    client: aws_sdk_iam::Client,
    caller: Caller,
}

impl AwsSource {
    /// A source calling IAM with `env`'s configuration (and credentials: its own, or a
    /// role's from [`AwsEnv::assume`]). The client is built once and kept: it caches the
    /// assumed role's credentials and renews them before they expire.
    pub fn new(env: &AwsEnv, settings: AwsSettings) -> AwsSource {
        AwsSource {
            client: aws_sdk_iam::Client::new(&env.config),
            caller: Caller {
                settings,
                retries: Mutex::new(Vec::new()),
                role: env.role.clone(),
            },
        }
    }
}

impl Caller {
    fn count(&self, api: Api, cause: RetryCause) {
        let mut counts = self.retries.lock().expect("retry counter lock");
        let key = (api.name(), cause.as_str());
        match counts.iter_mut().find(|(k, _)| *k == key) {
            Some((_, n)) => *n += 1,
            None => counts.push((key, 1)),
        }
    }

    fn unit(&self) -> f64 {
        if self.settings.jitter {
            rand::rng().random::<f64>()
        } else {
            1.0
        }
    }

    /// One call, retried while its failures are transient and the bounds allow.
    async fn call<T, E, Fut>(
        &self,
        api: Api,
        deadline: Instant,
        send: impl Fn() -> Fut,
    ) -> Result<T, Failure>
    where
        Fut: Future<Output = Result<T, SdkError<E>>>,
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let mut attempt = 0;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let limit = self.settings.call_timeout.min(left);
            let failure = match tokio::time::timeout(limit, send()).await {
                Ok(Ok(out)) => return Ok(out),
                Ok(Err(e)) => examine(api, self.role.as_deref(), &e),
                Err(_) => Failure {
                    verdict: Verdict::Retry(RetryCause::Timeout, FailureReason::Timeout),
                    message: format!(
                        "{}: no answer within {}",
                        api.name(),
                        humantime::format_duration(limit)
                    ),
                },
            };
            if failure.verdict == Verdict::Fail(FailureReason::AccessDenied) {
                tracing::warn!(
                    api = api.name(),
                    permission = api.permission(),
                    policy = api.policy_file(),
                    "AWS denied a call: grant this permission to the exporter's credentials"
                );
            }
            let Verdict::Retry(cause, _) = failure.verdict else {
                return Err(failure);
            };
            attempt += 1;
            if attempt >= self.settings.max_attempts {
                return Err(Failure {
                    message: format!("{} (gave up after {attempt} tries)", failure.message),
                    ..failure
                });
            }
            let delay = self.settings.backoff.delay(attempt - 1, self.unit());
            if Instant::now() + delay >= deadline {
                return Err(Failure {
                    message: format!(
                        "{} (gave up after {attempt} tries: the round's deadline came)",
                        failure.message
                    ),
                    ..failure
                });
            }
            tracing::debug!(
                api = api.name(),
                cause = cause.as_str(),
                attempt,
                delay_ms = delay.as_millis() as u64,
                error = %failure.message,
                "Backing off before trying again"
            );
            self.count(api, cause);
            tokio::time::sleep(delay).await;
        }
    }

    /// Waits before poll number `poll` while the report is generated; false when the wait
    /// would pass the deadline.
    async fn wait_for_report(&self, api: Api, poll: u32, deadline: Instant) -> bool {
        let delay = self.settings.backoff.poll_delay(poll, self.unit());
        if Instant::now() + delay >= deadline {
            return false;
        }
        self.count(api, RetryCause::ReportNotReady);
        tokio::time::sleep(delay).await;
        true
    }

    fn not_ready(&self, api: Api, state: &str) -> SourceError {
        SourceError::new(
            FailureReason::ReportNotReady,
            format!(
                "{}: the credential report was still being generated ({state}) when the round's {} deadline came",
                api.name(),
                humantime::format_duration(self.settings.round_timeout)
            ),
        )
    }
}

impl AwsSource {
    /// GenerateCredentialReport until `COMPLETE`.
    async fn generate(&self, deadline: Instant) -> Result<(), SourceError> {
        let api = Api::GenerateCredentialReport;
        let mut poll = 0;
        let mut last_state = ReportStateType::Started;
        loop {
            let out = match self
                .caller
                .call(api, deadline, || {
                    self.client.generate_credential_report().send()
                })
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
        deadline: Instant,
    ) -> Result<(Vec<u8>, Option<DateTime<Utc>>), SourceError> {
        let api = Api::GetCredentialReport;
        let mut regenerations = 0;
        'generate: loop {
            self.generate(deadline).await?;
            let mut poll = 0;
            loop {
                let failure = match self
                    .caller
                    .call(api, deadline, || self.client.get_credential_report().send())
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
    async fn live_facts(&self, deadline: Instant) -> LiveFacts {
        // Each call gets at least one try even when the report used the round up.
        let deadline = deadline.max(Instant::now() + self.caller.settings.call_timeout);
        let (summary, aliases, policy) = tokio::join!(
            self.caller.call(Api::GetAccountSummary, deadline, || {
                self.client.get_account_summary().send()
            }),
            self.caller.call(Api::ListAccountAliases, deadline, || {
                self.client.list_account_aliases().send()
            }),
            self.caller
                .call(Api::GetAccountPasswordPolicy, deadline, || {
                    self.client.get_account_password_policy().send()
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
        facts.alias = alias.flatten();
        facts.password_policy = password_policy;
        facts
    }
}

fn non_negative(v: Option<i32>) -> u32 {
    v.map_or(0, |v| v.max(0) as u32)
}

fn invalid(api: Api, what: &str) -> SourceError {
    SourceError::new(
        FailureReason::InvalidResponse,
        format!("{}: {what}", api.name()),
    )
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
        users: get(SummaryKeyType::Users),
    })
}

impl ReportSource for AwsSource {
    fn fetch(&self) -> BoxFuture<'_, Result<Fetched, SourceError>> {
        Box::pin(async move {
            let deadline = Instant::now() + self.caller.settings.round_timeout;
            let (csv, generated_at) = self.report(deadline).await?;
            let live = self.live_facts(deadline).await;
            Ok(Fetched {
                csv,
                generated_at,
                account_id: None,
                live: Some(live),
            })
        })
    }

    fn retries(&self) -> Vec<((&'static str, &'static str), u64)> {
        self.caller
            .retries
            .lock()
            .expect("retry counter lock")
            .clone()
    }
}

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
    /// A lister calling Organizations with `env`'s configuration.
    pub fn new(env: &AwsEnv, settings: AwsSettings) -> OrganizationLister {
        OrganizationLister {
            client: aws_sdk_organizations::Client::new(&env.config),
            caller: Caller {
                settings,
                retries: Mutex::new(Vec::new()),
                role: env.role.clone(),
            },
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

#[cfg(test)]
mod tests {
    use super::*;
    use FailureReason as R;

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
    fn polls_never_follow_at_once() {
        let b = backoff();
        assert_eq!(b.poll_delay(0, 0.0), 100 * MS);
        assert_eq!(b.poll_delay(3, 0.0), 100 * MS);
        assert_eq!(b.poll_delay(3, 0.5), 400 * MS);
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

    const APIS: [Api; 5] = [
        Api::GenerateCredentialReport,
        Api::GetCredentialReport,
        Api::GetAccountSummary,
        Api::ListAccountAliases,
        Api::GetAccountPasswordPolicy,
    ];

    #[test]
    fn every_api_names_its_permission() {
        for api in APIS {
            assert_eq!(api.permission(), format!("iam:{}", api.name()));
        }
    }

    #[test]
    fn the_documented_policy_grants_exactly_what_the_calls_need() {
        let policy: serde_json::Value =
            serde_json::from_str(include_str!("../docs/iam-policy.json")).unwrap();
        let mut granted: Vec<&str> = policy["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .inspect(|s| {
                assert_eq!(s["Effect"], "Allow");
                assert_eq!(s["Resource"], "*");
            })
            .flat_map(|s| s["Action"].as_array().unwrap())
            .map(|a| a.as_str().unwrap())
            .collect();
        granted.sort_unstable();
        let mut needed: Vec<&str> = APIS.iter().map(|a| a.permission()).collect();
        needed.sort_unstable();
        assert_eq!(granted, needed);
    }

    #[test]
    fn the_many_accounts_policy_grants_what_discovery_and_roles_need() {
        let policy: serde_json::Value =
            serde_json::from_str(include_str!("../docs/iam-policy-organization.json")).unwrap();
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
