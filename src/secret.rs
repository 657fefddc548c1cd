//! Where the webhook secrets come from, and when they are read again.
//!
//! Deployed, the secret lives in AWS Secrets Manager (`NYLAS_WEBHOOK_SECRET_ARN`). The
//! function reads its `AWSCURRENT` and `AWSPREVIOUS` versions when a POST first needs them,
//! keeps them, and verifies against both: deliveries still signed with a rotated-out secret
//! verify against `AWSPREVIOUS`. A signature that matches neither may mean that a new secret
//! was stored (a first deploy, a rotation): both are read again, at most once every
//! [`REREAD_AFTER`], and the signature checked once more. So a newly stored secret is used
//! within a minute, with no redeploy, and the deliveries refused meanwhile got a 503 that
//! Nylas retries (`outcome.rs`).
//!
//! Without Secrets Manager (tests, other hosting), `NYLAS_WEBHOOK_SECRET` and
//! `NYLAS_WEBHOOK_SECRET_PREVIOUS` give the secrets, and nothing is read again.

use crate::signature::{Secret, Signature, Verifier};
use aws_sdk_secretsmanager::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_secretsmanager::Client;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// Least time between two reads of the secrets.
pub const REREAD_AFTER: Duration = Duration::from_secs(30);

/// Longest a read may take: it is part of Nylas's 10 s, with the queue's budget after it.
const READ_BUDGET: Duration = Duration::from_secs(2);

/// Why a signature did not verify against the secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error(
        "X-Nylas-Signature matches no secret the function has, even read again: the secret \
         stored is not this webhook's (store it: README, \"Store the secret\"), or the request \
         is not from Nylas"
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
    read: Mutex<Read>,
}

#[derive(Debug, Default)]
struct Read {
    verifier: Option<Verifier>,
    at: Option<Instant>,
    /// Why the last read failed, for the log line.
    error: String,
}

impl Secrets {
    pub fn stored(client: Client, arn: String) -> Self {
        Secrets::Stored(Store {
            client,
            arn,
            read: Mutex::default(),
        })
    }

    /// Checks `signature` against the current and the previous secret.
    pub async fn verify(&self, body: &[u8], signature: &Signature) -> Result<(), SecretError> {
        let store = match self {
            Secrets::Fixed(verifier) if verifier.matches(body, signature) => return Ok(()),
            Secrets::Fixed(_) => return Err(SecretError::Mismatch),
            Secrets::Stored(store) => store,
        };
        let mut read = store.read.lock().await;
        let matches = |read: &Read| {
            read.verifier
                .as_ref()
                .is_some_and(|v| v.matches(body, signature))
        };
        if !matches(&read) && read.at.is_none_or(|at| at.elapsed() >= REREAD_AFTER) {
            store.read_into(&mut read).await;
        }
        match &read.verifier {
            _ if matches(&read) => Ok(()),
            Some(_) => Err(SecretError::Mismatch),
            None => Err(SecretError::Unavailable(read.error.clone())),
        }
    }
}

impl Store {
    /// Reads both versions side by side. A failed read keeps what was read before.
    async fn read_into(&self, read: &mut Read) {
        read.at = Some(Instant::now());
        let (current, previous) =
            tokio::join!(self.version("AWSCURRENT"), self.version("AWSPREVIOUS"));
        match current {
            Ok(Some(current)) => {
                read.verifier = Some(Verifier::new(current, previous.ok().flatten()));
            }
            Ok(None) => read.error = "the secret has no current text value".to_owned(),
            Err(error) => read.error = error,
        }
    }

    /// One version's text, trimmed of surrounding whitespace; `None` when the secret has no
    /// version at that stage (`AWSPREVIOUS` before any rotation).
    async fn version(&self, stage: &str) -> Result<Option<Secret>, String> {
        let request = self
            .client
            .get_secret_value()
            .secret_id(&self.arn)
            .version_stage(stage);
        match tokio::time::timeout(READ_BUDGET, request.send()).await {
            Ok(Ok(output)) => Ok(output
                .secret_string()
                .map(|s| Secret::new(s.trim().as_bytes()))),
            Ok(Err(error))
                if error.code() == Some("ResourceNotFoundException") && stage != "AWSCURRENT" =>
            {
                Ok(None)
            }
            Ok(Err(error)) => Err(DisplayErrorContext(&error).to_string()),
            Err(_) => Err(format!(
                "Secrets Manager did not answer within {READ_BUDGET:?}"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signature::{parse, sign};
    use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region};

    fn signature(secret: &[u8], body: &[u8]) -> Signature {
        parse(Some(sign(secret, body).as_bytes())).expect("well formed")
    }

    #[tokio::test]
    async fn secrets_from_the_environment_match_or_mismatch() {
        let secrets = Secrets::Fixed(Verifier::new(Secret::new(b"s"), None));
        assert_eq!(secrets.verify(b"{}", &signature(b"s", b"{}")).await, Ok(()));
        let other = signature(b"other", b"{}");
        assert_eq!(
            secrets.verify(b"{}", &other).await,
            Err(SecretError::Mismatch)
        );
    }

    #[tokio::test]
    async fn secret_store_out_of_reach_is_unavailable_and_says_why() {
        let config = aws_sdk_secretsmanager::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "test"))
            .endpoint_url("http://127.0.0.1:9")
            .build();
        let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:nylas".to_owned();
        let secrets = Secrets::stored(Client::from_conf(config), arn);
        let verdict = secrets.verify(b"{}", &signature(b"s", b"{}")).await;
        let Err(SecretError::Unavailable(why)) = verdict else {
            panic!("not unavailable: {verdict:?}");
        };
        assert!(!why.is_empty());
    }
}
