//! Bounded, counted retries around SDK calls, and what an SDK error means: which
//! [`FailureReason`] a round ends in, and whether a call is worth making again.

use super::AwsSettings;
use crate::collect::SourceError;
use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_iam::error::{ConnectorError, ProvideErrorMetadata, SdkError};
use iam_credential_report::account::FailureReason;
use rand::Rng;
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use strum::{IntoStaticStr, VariantArray};

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
    /// from a tenth of `base` (100 ms by default: a small account's report is often ready
    /// within a few hundred milliseconds, and the first data should not wait for a whole
    /// backoff; a report that takes seconds costs one poll more than from 250 ms), and never
    /// shorter than that tenth, so a poll never follows the last one at once.
    pub fn poll_delay(&self, attempt: u32, unit: f64) -> Duration {
        let quick = Backoff {
            base: self.base / 10,
            max: self.max,
        };
        quick.delay(attempt, unit).max(quick.base)
    }
}

/// The IAM calls a round makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, IntoStaticStr, VariantArray)]
pub(super) enum Api {
    GenerateCredentialReport,
    GetCredentialReport,
    GetAccountSummary,
    ListAccountAliases,
    GetAccountPasswordPolicy,
    ListVirtualMFADevices,
    /// The users' paths and tags: only with `aws.user_tags`.
    GetAccountAuthorizationDetails,
    /// Organizations, for discovery.
    ListAccounts,
}

impl Api {
    /// The `api` label value.
    pub(super) fn name(self) -> &'static str {
        self.into()
    }

    /// The policy file that grants the call's permission.
    pub(super) fn policy_file(self) -> &'static str {
        match self {
            Api::ListAccounts => "docs/iam-policy-organization.json",
            _ => "docs/iam-policy.json",
        }
    }

    /// Whether the call is made only when user tag keys are configured (`aws.user_tags`,
    /// `--aws.user-tags`): its permission is needed only then.
    pub(super) fn only_with_user_tags(self) -> bool {
        matches!(self, Api::GetAccountAuthorizationDetails)
    }

    /// The permission the call needs (docs/iam-policy.json grants the IAM ones,
    /// docs/iam-policy-organization.json the others).
    pub(super) fn permission(self) -> &'static str {
        match self {
            Api::GenerateCredentialReport => "iam:GenerateCredentialReport",
            Api::GetCredentialReport => "iam:GetCredentialReport",
            Api::GetAccountSummary => "iam:GetAccountSummary",
            Api::ListAccountAliases => "iam:ListAccountAliases",
            Api::GetAccountPasswordPolicy => "iam:GetAccountPasswordPolicy",
            Api::ListVirtualMFADevices => "iam:ListVirtualMFADevices",
            Api::GetAccountAuthorizationDetails => "iam:GetAccountAuthorizationDetails",
            Api::ListAccounts => "organizations:ListAccounts",
        }
    }
}

/// Why a call was made again: the bounded `cause` label of
/// `iam_credentials_exporter_aws_retries_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, IntoStaticStr, VariantArray)]
#[strum(serialize_all = "snake_case")]
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
        self.into()
    }
}

/// What kind of SDK error a call ended in, before its code is looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Shape {
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
pub(super) enum Verdict {
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
    pub(super) fn reason(self) -> FailureReason {
        match self {
            Verdict::Retry(_, r) | Verdict::Fail(r) => r,
            Verdict::Regenerate | Verdict::NotReady => FailureReason::ReportNotReady,
            Verdict::NoSuchEntity => FailureReason::Other,
        }
    }
}

/// Judges a failed call by its shape, its AWS error code and its HTTP status. Pure.
pub(super) fn classify(shape: Shape, code: Option<&str>, status: Option<u16>) -> Verdict {
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
pub(super) struct Failure {
    pub(super) verdict: Verdict,
    pub(super) message: String,
}

impl Failure {
    pub(super) fn into_error(self) -> SourceError {
        SourceError::new(self.verdict.reason(), self.message)
    }

    /// Whether the call ran into the round's deadline rather than its own timeout: after a
    /// wait for the report, that means the round ran out waiting for the report.
    pub(super) fn cut_by_deadline(&self, deadline: Instant) -> bool {
        matches!(self.verdict, Verdict::Retry(RetryCause::Timeout, _)) && Instant::now() >= deadline
    }
}

/// Whether a credential provider's error sits anywhere in the error's chain.
pub(super) fn is_credentials_error(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(e) = next {
        if e.is::<CredentialsError>() {
            return true;
        }
        next = e.source();
    }
    false
}

/// Whether a failure to get credentials was a failure to reach their source: a connection
/// error or a timeout somewhere in the chain (`Network` or `Timeout`), or `None`.
fn unreachable(err: &(dyn std::error::Error + 'static)) -> Option<Shape> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(c) = e.downcast_ref::<ConnectorError>() {
            if c.is_timeout() {
                return Some(Shape::Timeout);
            }
            if c.is_io() {
                return Some(Shape::Network);
            }
        }
        if let Some(CredentialsError::ProviderTimedOut(_)) = e.downcast_ref::<CredentialsError>() {
            return Some(Shape::Timeout);
        }
        next = e.source();
    }
    None
}

/// An error and its causes, `outer: inner: innermost`, each told once.
pub(super) fn chain(err: &(dyn std::error::Error + 'static)) -> String {
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
pub(super) fn examine<E>(api: Api, role: Option<&str>, err: &SdkError<E>) -> Failure
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let shape = if is_credentials_error(err) {
        // Credentials that could not be fetched because STS (or the metadata service) could
        // not be reached are a network failure, retried as one: not refused credentials.
        match unreachable(err) {
            Some(shape) => shape,
            None => Shape::Credentials,
        }
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
            "{} was denied: the exporter's credentials lack {} ({} lists what it needs{}): {detail}",
            api.name(),
            api.permission(),
            api.policy_file(),
            if api.only_with_user_tags() {
                "; it is needed only with aws.user_tags or --aws.user-tags"
            } else {
                ""
            }
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
pub(super) type RetryCounts = Vec<((&'static str, &'static str), u64)>;

/// Bounded, counted retries around SDK calls: the IAM source's and the organization
/// listing's.
#[derive(Debug)]
pub(super) struct Caller {
    pub(super) settings: AwsSettings,
    retries: Mutex<RetryCounts>,
    /// The role the calls are made as, for error messages.
    pub(super) role: Option<String>,
}

impl Caller {
    /// A caller making calls with `env`'s credentials, bounded by `settings`.
    pub(super) fn new(env: &super::AwsEnv, settings: AwsSettings) -> Caller {
        Caller {
            settings,
            retries: Mutex::new(Vec::new()),
            role: env.role_arn().map(str::to_owned),
        }
    }

    /// Calls made again so far, by (API, cause).
    pub(super) fn retries(&self) -> RetryCounts {
        self.retries.lock().expect("retry counter lock").clone()
    }

    pub(super) fn count(&self, api: Api, cause: RetryCause) {
        let mut counts = self.retries.lock().expect("retry counter lock");
        let key = (api.name(), cause.as_str());
        match counts.iter_mut().find(|(k, _)| *k == key) {
            Some((_, n)) => *n += 1,
            None => counts.push((key, 1)),
        }
    }

    pub(super) fn unit(&self) -> f64 {
        if self.settings.jitter {
            rand::rng().random::<f64>()
        } else {
            1.0
        }
    }

    /// One call, retried while its failures are transient and the bounds allow.
    pub(super) async fn call<T, E, Fut>(
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
    pub(super) async fn wait_for_report(&self, api: Api, poll: u32, deadline: Instant) -> bool {
        let delay = self.settings.backoff.poll_delay(poll, self.unit());
        if Instant::now() + delay >= deadline {
            return false;
        }
        self.count(api, RetryCause::ReportNotReady);
        tokio::time::sleep(delay).await;
        true
    }

    pub(super) fn not_ready(&self, api: Api, state: &str) -> SourceError {
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

/// The markers a paginated listing has handed out. A marker met twice would page forever,
/// so the list cannot be read whole: that is an invalid answer, and the listing gives no
/// verdict rather than a partial one.
#[derive(Debug, Default)]
pub(super) struct Markers(std::collections::HashSet<String>);

impl Markers {
    /// The marker to ask the next page with: `None` once the listing is complete.
    pub(super) fn next(
        &mut self,
        api: Api,
        truncated: bool,
        marker: Option<&str>,
    ) -> Result<Option<String>, Failure> {
        match marker {
            Some(next) if truncated => {
                if !self.0.insert(next.to_owned()) {
                    return Err(Failure {
                        verdict: Verdict::Fail(FailureReason::InvalidResponse),
                        message: format!(
                            "{}: the answer repeats a marker it gave before",
                            api.name()
                        ),
                    });
                }
                Ok(Some(next.to_owned()))
            }
            _ => Ok(None),
        }
    }
}

pub(super) fn invalid(api: Api, what: &str) -> SourceError {
    SourceError::new(
        FailureReason::InvalidResponse,
        format!("{}: {what}", api.name()),
    )
}
