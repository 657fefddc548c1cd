//! Where the webhook secrets come from, and when they are read again.
//!
//! Deployed, the secret lives in AWS Secrets Manager (`NYLAS_WEBHOOK_SECRET_ARN`), as plain
//! text or as `{"webhook_secret": "..."}`. Its `AWSCURRENT` and `AWSPREVIOUS` versions are read
//! when a POST first needs them, and kept. `AWSPREVIOUS` verifies only while `AWSCURRENT` is
//! younger than `PREVIOUS_SECRET_TTL_SECONDS`: long enough for Nylas's retries after a
//! rotation, and no longer, so a leaked key (or Nylas's public test key) stops verifying.
//! Both are read again, at most once every [`REREAD_AFTER`], when a signature matches
//! neither (a new secret may have been stored: it is used within a minute, and what was
//! refused meanwhile got a 503 Nylas retries), and before verifying when they were read more
//! than [`REFRESH_AFTER`] ago (a revoked secret stops verifying on every warm instance).
//! A read whose answer says the secret is gone or unreadable (deleted, marked for deletion,
//! access or key taken away) drops what was kept at once. A read that fails for a passing
//! reason (throttling, a timeout, a 5xx) keeps the secrets last read, unless that was more than
//! `SECRET_KEEP_SECONDS` ago. `NYLAS_WEBHOOK_SECRET` and
//! `NYLAS_WEBHOOK_SECRET_PREVIOUS` give fixed secrets instead (tests, other hosting).

use crate::signature::{Secret, Signature, Verifier};
use aws_sdk_secretsmanager::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueOutput;
use aws_sdk_secretsmanager::Client;
use std::time::{Duration, SystemTime};
use tokio::sync::Mutex;
use tokio::time::Instant;

/// Least time between two reads of the secrets.
pub const REREAD_AFTER: Duration = Duration::from_secs(30);

/// Secrets read longer ago than this are read again before they verify a request.
pub const REFRESH_AFTER: Duration = Duration::from_secs(300);

/// Longest a read may take: it is part of Nylas's 10 s, with the queue's budget after it.
const READ_BUDGET: Duration = Duration::from_secs(2);
/// Where a secret stored as JSON keeps the webhook secret: Nylas's own field name.
const JSON_MEMBER: &str = "webhook_secret";

/// Why a signature did not verify against the secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error(
        "the signature matches no secret the function has: the secret stored is not this \
         webhook's (store it with `make secret`: README, \"Store the webhook secret\"), or the \
         request is not from the sender"
    )]
    Mismatch,
    #[error(
        "no webhook secret could be read ({0}): check that the secret exists and that the \
         function may read it"
    )]
    Unavailable(String),
}

/// The secrets a signature is verified against.
#[derive(Debug)]
pub enum Secrets {
    /// Given once, in the environment.
    Fixed(Verifier),
    /// Read from Secrets Manager, kept, and read again as the module doc says.
    Stored(Store),
}

/// A secret in Secrets Manager, by ARN, and what was last read of it.
#[derive(Debug)]
pub struct Store {
    client: Client,
    arn: String,
    previous_ttl: Duration,
    keep: Duration,
    read: Mutex<Read>,
}

/// What was read: the current secret, the previous one and until when it verifies, when they
/// were read, when a read was last tried, and why it failed.
#[derive(Debug, Default)]
struct Read {
    current: Option<Secret>,
    previous: Option<(Secret, Instant)>,
    read_at: Option<Instant>,
    tried_at: Option<Instant>,
    error: String,
}

impl Read {
    fn matches(&self, body: &[u8], signature: &Signature) -> bool {
        let previous = self.previous.as_ref().filter(|(_, until)| Instant::now() < *until);
        let mut secrets = self.current.iter().chain(previous.map(|(s, _)| s));
        secrets.any(|s| s.matches(body, signature))
    }
}

impl Secrets {
    /// Secrets given once: `current` and, while rotating, `previous`.
    pub fn fixed(current: &str, previous: Option<&str>) -> Self {
        let secret = |s: &str| Secret::new(s.as_bytes());
        Secrets::Fixed(Verifier::new(secret(current), previous.map(secret)))
    }

    pub fn stored(client: Client, arn: String, previous_ttl: Duration, keep: Duration) -> Self {
        Secrets::Stored(Store { client, arn, previous_ttl, keep, read: Mutex::default() })
    }

    /// Checks `signature` against the current and the previous secret; says what it asked
    /// Secrets Manager, for the log line: `read`, `skipped` (a read was due but one was tried
    /// under [`REREAD_AFTER`] ago), `failed, ...`; `None` when nothing.
    pub async fn verify(
        &self,
        body: &[u8],
        signature: &Signature,
    ) -> (Result<(), SecretError>, Option<String>) {
        let store = match self {
            Secrets::Fixed(verifier) => {
                let matched = verifier.matches(body, signature);
                return (matched.then_some(()).ok_or(SecretError::Mismatch), None);
            }
            Secrets::Stored(store) => store,
        };
        let mut read = store.read.lock().await;
        let passed = |at: Option<Instant>, time| at.is_none_or(|at| at.elapsed() >= time);
        let may_read = passed(read.tried_at, REREAD_AFTER);
        // One HMAC per secret, unless a read brings new ones: stale secrets are read first.
        let mut matched =
            !(may_read && passed(read.read_at, REFRESH_AFTER)) && read.matches(body, signature);
        let reading = match (matched, may_read) {
            (true, _) => None,
            (false, true) => {
                let reading = store.read_into(&mut read).await;
                matched = read.matches(body, signature);
                Some(reading)
            }
            (false, false) => Some("skipped".to_owned()),
        };
        let result = match &read.current {
            _ if matched => Ok(()),
            Some(_) => Err(SecretError::Mismatch),
            None => Err(SecretError::Unavailable(read.error.clone())),
        };
        (result, reading)
    }
}

impl Store {
    /// Reads both versions side by side. A failed read drops what was read before when the
    /// secret is gone, or when it was read `keep` ago; else it keeps it.
    async fn read_into(&self, read: &mut Read) -> String {
        read.tried_at = Some(Instant::now());
        let (current, previous) =
            tokio::join!(self.version("AWSCURRENT"), self.version("AWSPREVIOUS"));
        let current = current.and_then(|output| {
            let gone = "Secrets Manager has no such secret, or no AWSCURRENT version of it";
            let output = output.ok_or((true, gone.to_owned()))?;
            let secret = secret_of(&output).map_err(|why| (true, why))?;
            Ok((secret, output.created_date().copied()))
        });
        let (current, created) = match current {
            Ok(read) => read,
            Err((gone, reason)) => {
                let dropped = gone || read.read_at.is_some_and(|at| at.elapsed() >= self.keep);
                if dropped {
                    // Nothing verifies until a read brings them back.
                    (read.current, read.previous, read.read_at) = (None, None, None);
                }
                let kept = if dropped { "dropped" } else { "kept" };
                let said = format!("failed, secrets {kept}: {reason}");
                read.error = reason;
                return said;
            }
        };
        // AWSCURRENT's age, on the wall clock, becomes a deadline on the monotonic one.
        let created = created.and_then(|created| SystemTime::try_from(created).ok());
        let age = created.map(|created| created.elapsed().unwrap_or_default());
        let left = age.map_or(Duration::ZERO, |age| self.previous_ttl.saturating_sub(age));
        let previous = previous.ok().flatten().and_then(|p| secret_of(&p).ok());
        read.current = Some(current);
        read.previous = previous.map(|p| (p, Instant::now() + left));
        read.read_at = read.tried_at;
        "read".to_owned()
    }

    /// One version; `None` when there is no version at that stage (`AWSPREVIOUS` before any
    /// rotation, or any stage of a deleted secret). An error says whether the secret is gone.
    async fn version(&self, stage: &str) -> Result<Option<GetSecretValueOutput>, (bool, String)> {
        let request = self.client.get_secret_value().secret_id(&self.arn).version_stage(stage);
        match tokio::time::timeout(READ_BUDGET, request.send()).await {
            Ok(Ok(output)) => Ok(Some(output)),
            Ok(Err(error)) => {
                // Answers that say the secret is gone or unreadable, not that the service is
                // busy (<https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_GetSecretValue.html>).
                let service = error.as_service_error();
                if service.is_some_and(|e| e.is_resource_not_found_exception()) {
                    return Ok(None);
                }
                let gone = service.is_some_and(|e| {
                    e.is_invalid_request_exception()
                        || e.is_decryption_failure()
                        || e.code() == Some("AccessDeniedException")
                });
                Err((gone, DisplayErrorContext(&error).to_string()))
            }
            Err(_) => {
                Err((false, format!("Secrets Manager did not answer within {READ_BUDGET:?}")))
            }
        }
    }
}

/// The webhook secret a version holds: its text trimmed of surrounding whitespace, or the
/// `webhook_secret` member of a JSON object. Never empty: an empty key is no secret.
fn secret_of(output: &GetSecretValueOutput) -> Result<Secret, String> {
    let text = output.secret_string().unwrap_or_default().trim();
    let object = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(text);
    let value = match &object {
        Ok(object) => object.get(JSON_MEMBER).and_then(|v| v.as_str()).map(str::trim),
        Err(_) => Some(text),
    };
    match value {
        Some(value) if !value.is_empty() => Ok(Secret::new(value.as_bytes())),
        _ => Err(format!(
            "the secret holds no webhook secret: store it as plain text, or as JSON \
             {{\"{JSON_MEMBER}\": \"...\"}}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{
        PREVIOUS_SECRET_TTL_DEFAULT as PREVIOUS_SECRET_TTL, SECRET_KEEP_DEFAULT as KEEP_SECRETS,
    };
    use crate::signature::{parse, sign};
    use aws_sdk_secretsmanager::config::retry::RetryConfig;
    use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region};
    use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;
    use aws_sdk_secretsmanager::primitives::DateTime;
    use aws_sdk_secretsmanager::types::error::{
        DecryptionFailure, InternalServiceError, InvalidRequestException, ResourceNotFoundException,
    };
    use aws_smithy_mocks::{mock, MockResponse, MockResponseInterceptor, Rule, RuleMode};
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex as StdMutex};

    const ARN: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:nylas";
    const BODY: &[u8] = b"{}";
    const MINUTE: Duration = Duration::from_secs(60);

    fn signed_with(secret: &str) -> Signature {
        parse(Some(sign(secret.as_bytes(), BODY).as_bytes()), "").expect("well formed")
    }

    /// A scripted Secrets Manager: what each stage holds now, changed by the test as it goes.
    #[derive(Clone, Default)]
    struct Versions(Arc<StdMutex<HashMap<&'static str, Stage>>>);

    #[derive(Clone)]
    enum Stage {
        /// A version's text, stored this long ago (`None`: no `CreatedDate`).
        Holds(&'static str, Option<Duration>),
        /// Secrets Manager fails for a passing reason.
        Fails,
        /// Secrets Manager answers with this error code: the secret is gone or unreadable.
        Refuses(&'static str),
    }

    impl Versions {
        fn set(&self, stage: &'static str, version: Option<Stage>) {
            let mut stages = self.0.lock().expect("no panics");
            match version {
                Some(version) => stages.insert(stage, version),
                None => stages.remove(stage),
            };
        }

        fn current(&self, text: &'static str, age: Duration) {
            self.set("AWSCURRENT", Some(Stage::Holds(text, Some(age))));
        }

        fn previous(&self, text: &'static str) {
            self.set("AWSPREVIOUS", Some(Stage::Holds(text, Some(MINUTE * 600))));
        }

        /// A rule answering `GetSecretValue` from what the stages hold.
        fn rule(&self) -> Rule {
            let stages = self.0.clone();
            mock!(Client::get_secret_value).then_compute_response(move |input| {
                let stage = input.version_stage().unwrap_or_default();
                match stages.lock().expect("no panics").get(stage).cloned() {
                    Some(Stage::Holds(text, age)) => {
                        let created = age.map(|age| DateTime::from(SystemTime::now() - age));
                        let output = GetSecretValueOutput::builder()
                            .secret_string(text)
                            .set_created_date(created);
                        MockResponse::Output(output.build())
                    }
                    Some(Stage::Refuses(code)) => {
                        let meta = aws_sdk_secretsmanager::error::ErrorMetadata::builder();
                        let meta = meta.code(code).message("refused").build();
                        MockResponse::Error(match code {
                            "InvalidRequestException" => {
                                GetSecretValueError::InvalidRequestException(
                                    InvalidRequestException::builder()
                                        .message("marked for deletion")
                                        .meta(meta)
                                        .build(),
                                )
                            }
                            "DecryptionFailure" => GetSecretValueError::DecryptionFailure(
                                DecryptionFailure::builder().meta(meta).build(),
                            ),
                            _ => GetSecretValueError::generic(meta),
                        })
                    }
                    Some(Stage::Fails) => {
                        MockResponse::Error(GetSecretValueError::InternalServiceError(
                            InternalServiceError::builder().message("the service failed").build(),
                        ))
                    }
                    None => MockResponse::Error(GetSecretValueError::ResourceNotFoundException(
                        ResourceNotFoundException::builder().build(),
                    )),
                }
            })
        }
    }

    /// The function's secrets over `rule`, with the default time to live of the previous one.
    fn stored(rule: &Rule) -> Secrets {
        stored_with_ttl(rule, PREVIOUS_SECRET_TTL)
    }

    fn stored_with_ttl(rule: &Rule, previous_ttl: Duration) -> Secrets {
        stored_with(rule, previous_ttl, KEEP_SECRETS)
    }

    fn stored_with(rule: &Rule, previous_ttl: Duration, keep: Duration) -> Secrets {
        let interceptor =
            MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny).with_rule(rule);
        let config = aws_sdk_secretsmanager::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "test"))
            .http_client(aws_smithy_mocks::create_mock_http_client())
            .interceptor(interceptor)
            .retry_config(RetryConfig::disabled())
            .build();
        Secrets::stored(Client::from_conf(config), ARN.to_owned(), previous_ttl, keep)
    }

    async fn verify(secrets: &Secrets, secret: &str) -> Result<(), SecretError> {
        secrets.verify(BODY, &signed_with(secret)).await.0
    }

    /// What verifying with `secret` said it asked of Secrets Manager.
    async fn reading(secrets: &Secrets, secret: &str) -> String {
        let (_, reading) = secrets.verify(BODY, &signed_with(secret)).await;
        reading.unwrap_or_default()
    }

    #[tokio::test]
    async fn secrets_from_the_environment_match_or_mismatch() {
        let secrets = Secrets::Fixed(Verifier::new(Secret::new(b"s"), None));
        assert_eq!(verify(&secrets, "s").await, Ok(()));
        let mismatch = SecretError::Mismatch;
        assert_eq!(verify(&secrets, "other").await, Err(mismatch));
    }

    #[tokio::test]
    async fn secret_store_out_of_reach_is_unavailable_and_says_why() {
        let config = aws_sdk_secretsmanager::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "test"))
            .endpoint_url("http://127.0.0.1:9")
            .build();
        let client = Client::from_conf(config);
        let secrets = Secrets::stored(client, ARN.to_owned(), MINUTE, KEEP_SECRETS);
        let verdict = verify(&secrets, "s").await;
        let Err(SecretError::Unavailable(why)) = verdict else {
            panic!("not unavailable: {verdict:?}");
        };
        assert!(!why.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn current_and_previous_secrets_both_verify_during_a_rotation() {
        let versions = Versions::default();
        versions.current("new", MINUTE);
        versions.previous("old");
        let rule = versions.rule();
        let secrets = stored(&rule);
        assert_eq!(verify(&secrets, "new").await, Ok(()));
        assert_eq!(verify(&secrets, "old").await, Ok(()));
        assert_eq!(rule.num_calls(), 2, "both stages read once, side by side");
    }

    #[tokio::test(start_paused = true)]
    async fn previous_secret_stops_verifying_once_the_current_one_is_older_than_the_ttl() {
        let versions = Versions::default();
        versions.current("new", PREVIOUS_SECRET_TTL - Duration::from_secs(10));
        versions.previous("old");
        let rule = versions.rule();
        let secrets = stored(&rule);
        assert_eq!(verify(&secrets, "old").await, Ok(()));
        tokio::time::advance(Duration::from_secs(11)).await;
        let mismatch = SecretError::Mismatch;
        assert_eq!(verify(&secrets, "old").await, Err(mismatch));
        assert_eq!(verify(&secrets, "new").await, Ok(()));
    }

    #[tokio::test(start_paused = true)]
    async fn previous_secret_never_verifies_when_the_current_one_is_older_than_the_ttl() {
        let versions = Versions::default();
        versions.current("new", MINUTE * 31);
        versions.previous("mock-webhook-secret");
        let secrets = stored(&versions.rule());
        let mismatch = SecretError::Mismatch;
        assert_eq!(verify(&secrets, "mock-webhook-secret").await, Err(mismatch));
    }

    #[tokio::test(start_paused = true)]
    async fn previous_secret_ttl_is_configurable() {
        let versions = Versions::default();
        versions.current("new", MINUTE * 5);
        versions.previous("old");
        let rule = versions.rule();
        let long = stored_with_ttl(&rule, MINUTE * 6);
        assert_eq!(verify(&long, "old").await, Ok(()));
        let short = stored_with_ttl(&rule, MINUTE * 4);
        assert!(verify(&short, "old").await.is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn previous_secret_never_verifies_when_the_current_one_has_no_date() {
        let versions = Versions::default();
        versions.set("AWSCURRENT", Some(Stage::Holds("new", None)));
        versions.previous("old");
        let secrets = stored(&versions.rule());
        assert!(verify(&secrets, "old").await.is_err());
        assert_eq!(verify(&secrets, "new").await, Ok(()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_mismatch_reads_again_at_most_every_30_seconds() {
        let versions = Versions::default();
        versions.current("first", MINUTE);
        let rule = versions.rule();
        let secrets = stored(&rule);
        assert_eq!(verify(&secrets, "first").await, Ok(()));
        versions.current("second", Duration::ZERO);
        versions.previous("first");
        tokio::time::advance(REREAD_AFTER - Duration::from_secs(1)).await;
        let not_read = SecretError::Mismatch;
        assert_eq!(verify(&secrets, "second").await, Err(not_read));
        assert_eq!(rule.num_calls(), 2, "not read again within 30 s");
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(verify(&secrets, "second").await, Ok(()));
        assert_eq!(rule.num_calls(), 4);
        assert_eq!(verify(&secrets, "first").await, Ok(()), "now the previous one");
    }

    #[tokio::test(start_paused = true)]
    async fn a_match_reads_nothing_until_the_secrets_are_five_minutes_old() {
        let versions = Versions::default();
        versions.current("first", MINUTE);
        let rule = versions.rule();
        let secrets = stored(&rule);
        assert_eq!(verify(&secrets, "first").await, Ok(()));
        tokio::time::advance(REFRESH_AFTER - Duration::from_secs(1)).await;
        assert_eq!(verify(&secrets, "first").await, Ok(()));
        assert_eq!(rule.num_calls(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_revoked_secret_stops_verifying_within_five_minutes_without_a_mismatch() {
        let versions = Versions::default();
        versions.current("leaked", MINUTE);
        let rule = versions.rule();
        let secrets = stored(&rule);
        assert_eq!(verify(&secrets, "leaked").await, Ok(()));
        versions.current("replacement", MINUTE * 31);
        versions.previous("leaked");
        tokio::time::advance(REFRESH_AFTER).await;
        let mismatch = SecretError::Mismatch;
        assert_eq!(verify(&secrets, "leaked").await, Err(mismatch));
        assert_eq!(verify(&secrets, "replacement").await, Ok(()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_read_keeps_the_secrets_read_before() {
        let versions = Versions::default();
        versions.current("kept", MINUTE);
        let rule = versions.rule();
        let secrets = stored(&rule);
        assert_eq!(verify(&secrets, "kept").await, Ok(()));
        versions.set("AWSCURRENT", Some(Stage::Fails));
        tokio::time::advance(REFRESH_AFTER).await;
        assert_eq!(verify(&secrets, "kept").await, Ok(()));
        assert_eq!(rule.num_calls(), 4, "read again, and failed");
        let not_read = SecretError::Mismatch;
        assert_eq!(verify(&secrets, "other").await, Err(not_read));
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_first_read_is_unavailable_and_tried_again_after_30_seconds() {
        let versions = Versions::default();
        versions.set("AWSCURRENT", Some(Stage::Fails));
        let rule = versions.rule();
        let secrets = stored(&rule);
        let verdict = verify(&secrets, "s").await;
        let Err(SecretError::Unavailable(why)) = verdict else {
            panic!("not unavailable: {verdict:?}");
        };
        assert!(why.contains("the service failed"), "the service's own reason: {why}");
        versions.current("s", MINUTE);
        assert!(verify(&secrets, "s").await.is_err(), "not read within 30 s");
        tokio::time::advance(REREAD_AFTER).await;
        assert_eq!(verify(&secrets, "s").await, Ok(()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_secret_with_no_current_version_is_unavailable() {
        let versions = Versions::default();
        versions.previous("old");
        let verdict = verify(&stored(&versions.rule()), "old").await;
        let Err(SecretError::Unavailable(why)) = verdict else {
            panic!("not unavailable: {verdict:?}");
        };
        assert!(why.contains("no AWSCURRENT version"), "{why}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_previous_stage_leaves_the_current_secret_verifying() {
        let versions = Versions::default();
        versions.current("new", MINUTE);
        versions.set("AWSPREVIOUS", Some(Stage::Fails));
        assert_eq!(verify(&stored(&versions.rule()), "new").await, Ok(()));
    }

    /// The verdict for a request signed with `signed_with` when the secret holds `stored`.
    async fn stored_as(stored_text: &'static str, signed: &str) -> Result<(), SecretError> {
        let versions = Versions::default();
        versions.current(stored_text, MINUTE);
        verify(&stored(&versions.rule()), signed).await
    }

    #[tokio::test(start_paused = true)]
    async fn a_secret_stored_as_json_is_read_from_its_webhook_secret_member() {
        let json = r#" {"webhook_secret": " s3cret ", "note": 1} "#;
        assert_eq!(stored_as(json, "s3cret").await, Ok(()));
        assert!(stored_as(json, json.trim()).await.is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn a_secret_stored_as_plain_text_is_trimmed() {
        assert_eq!(stored_as("  plain\n", "plain").await, Ok(()));
        assert_eq!(stored_as("{not json", "{not json").await, Ok(()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_json_object_without_webhook_secret_or_an_empty_secret_is_unavailable() {
        for text in
            [r#"{"secret": "s"}"#, r#"{"webhook_secret": 7}"#, "  ", r#"{"webhook_secret": ""}"#]
        {
            let verdict = stored_as(text, "s").await;
            let Err(SecretError::Unavailable(why)) = verdict else {
                panic!("not unavailable: {verdict:?}");
            };
            assert!(why.contains(r#"plain text, or as JSON {"webhook_secret": "..."}"#), "{why}");
        }
    }

    /// A deleted secret (forced, or within its recovery window), a role without access, a key
    /// it cannot use: the secrets kept are dropped at the next read, and nothing verifies.
    #[tokio::test(start_paused = true)]
    async fn a_secret_that_is_gone_or_unreadable_stops_verifying_at_the_next_read() {
        for code in [
            None,
            Some("InvalidRequestException"),
            Some("AccessDeniedException"),
            Some("DecryptionFailure"),
        ] {
            let versions = Versions::default();
            versions.current("leaked", MINUTE);
            let rule = versions.rule();
            let secrets = stored(&rule);
            assert_eq!(verify(&secrets, "leaked").await, Ok(()));
            versions.set("AWSCURRENT", code.map(Stage::Refuses));
            versions.set("AWSPREVIOUS", code.map(Stage::Refuses));
            tokio::time::advance(REREAD_AFTER).await;
            let said = reading(&secrets, "forged").await;
            assert!(said.starts_with("failed, secrets dropped: "), "{code:?}: {said}");
            let verdict = verify(&secrets, "leaked").await;
            assert!(matches!(verdict, Err(SecretError::Unavailable(_))), "{code:?}: {verdict:?}");
            tokio::time::advance(REFRESH_AFTER).await;
            let verdict = verify(&secrets, "leaked").await;
            assert!(matches!(verdict, Err(SecretError::Unavailable(_))), "{code:?}: {verdict:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn secrets_kept_through_passing_failures_stop_verifying_after_the_keep_time() {
        let versions = Versions::default();
        versions.current("kept", MINUTE);
        let rule = versions.rule();
        let secrets = stored_with(&rule, PREVIOUS_SECRET_TTL, MINUTE * 20);
        assert_eq!(verify(&secrets, "kept").await, Ok(()));
        versions.set("AWSCURRENT", Some(Stage::Fails));
        tokio::time::advance(MINUTE * 19).await;
        assert_eq!(verify(&secrets, "kept").await, Ok(()), "still within 20 minutes");
        tokio::time::advance(MINUTE).await;
        let verdict = verify(&secrets, "kept").await;
        let Err(SecretError::Unavailable(why)) = verdict else {
            panic!("still verifying: {verdict:?}");
        };
        assert!(why.contains("the service failed"), "{why}");
        versions.current("kept", MINUTE);
        tokio::time::advance(REREAD_AFTER).await;
        assert_eq!(verify(&secrets, "kept").await, Ok(()), "read again once it answers");
    }

    #[tokio::test(start_paused = true)]
    async fn the_reading_says_what_verifying_asked_of_secrets_manager() {
        let versions = Versions::default();
        versions.current("s", MINUTE);
        let secrets = stored(&versions.rule());
        assert_eq!(reading(&secrets, "s").await, "read");
        assert_eq!(reading(&secrets, "s").await, "", "kept: nothing asked");
        assert_eq!(reading(&secrets, "other").await, "skipped");
        versions.set("AWSCURRENT", Some(Stage::Fails));
        tokio::time::advance(REREAD_AFTER).await;
        let failed = reading(&secrets, "other").await;
        assert!(failed.starts_with("failed, secrets kept: "), "{failed}");
        assert!(failed.contains("the service failed"), "{failed}");
        let fixed = Secrets::Fixed(Verifier::new(Secret::new(b"s"), None));
        assert_eq!(fixed.verify(BODY, &signed_with("x")).await.1, None);
    }
}
