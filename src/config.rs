//! The function's own settings, read once at start from the environment. The AWS ones
//! (region, credentials, `AWS_ENDPOINT_URL_SQS`) are read by aws-config in `main.rs`.
//!
//! A setting that is missing or invalid does not stop the function: it answers the challenge,
//! and every POST with 503 so that Nylas retries once the setting is fixed (`handler.rs`).

use std::fmt;
use std::time::Duration;

pub const QUEUE_URL: &str = "QUEUE_URL";
pub const SECRET_ARN: &str = "NYLAS_WEBHOOK_SECRET_ARN";
pub const SECRET: &str = "NYLAS_WEBHOOK_SECRET";
pub const PREVIOUS_SECRET: &str = "NYLAS_WEBHOOK_SECRET_PREVIOUS";
pub const PREVIOUS_SECRET_TTL: &str = "PREVIOUS_SECRET_TTL_SECONDS";
pub const SECRET_KEEP: &str = "SECRET_KEEP_SECONDS";
pub const ARCHIVE_STREAM: &str = "ARCHIVE_STREAM";

/// How long `AWSPREVIOUS` verifies after `AWSCURRENT` was stored, unless configured: Nylas
/// retries for 20 minutes, and storing the new secret takes some minutes.
pub const PREVIOUS_SECRET_TTL_DEFAULT: Duration = Duration::from_secs(1800);

/// How long secrets read before keep verifying while every read fails for a passing reason,
/// unless configured: an hour of Secrets Manager trouble costs no notification.
pub const SECRET_KEEP_DEFAULT: Duration = Duration::from_secs(3600);

/// What a missing or invalid setting should hold.
const QUEUE_URL_IS: &str = "the URL of the SQS queue notifications go to (https://...)";
const SECRET_ARN_IS: &str = "the ARN of the Secrets Manager secret that holds the webhook \
    secret (arn:aws:secretsmanager:...), or set NYLAS_WEBHOOK_SECRET instead to run without \
    Secrets Manager";
const SECONDS_IS: &str = "a whole number of seconds (docs/operations.md, \"Configuration\")";

/// Why the function is not configured: the variable, and what to put in it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is not set: set it to {1}")]
    Missing(&'static str, &'static str),
    #[error("{0} is not valid: set it to {1}")]
    Invalid(&'static str, &'static str),
    #[error("both {SECRET_ARN} and {SECRET} are set: keep one")]
    TwoSecrets,
}

/// The function's settings.
#[derive(Debug)]
pub struct Config {
    /// The SQS queue every notification goes to.
    pub queue_url: String,
    pub secrets: SecretSource,
    /// The Firehose stream that archives each message, when the archive is on.
    pub archive_stream: Option<String>,
}

/// Where the webhook secrets come from (`secret.rs`). `Debug` never shows a secret.
pub enum SecretSource {
    /// A Secrets Manager secret, by ARN: the deployed way; how long its previous version
    /// verifies after a new one is stored, and how long what was read is kept while reads
    /// fail for a passing reason.
    Stored { arn: String, previous_ttl: Duration, keep: Duration },
    /// The current and, while rotating, the previous secret, given in the environment.
    Fixed { current: String, previous: Option<String> },
}

impl fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::Stored { arn, .. } => write!(f, "Stored({arn})"),
            SecretSource::Fixed { .. } => f.write_str("Fixed(<redacted>)"),
        }
    }
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var_os(name))
    }

    /// Reads settings through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<std::ffi::OsString>,
    ) -> Result<Self, ConfigError> {
        let read = |name, what, valid: fn(&str) -> bool| match lookup(name).map(|v| v.into_string())
        {
            Some(Ok(value)) if value.is_empty() => Ok(None),
            Some(Ok(value)) if valid(&value) => Ok(Some(value)),
            Some(_) => Err(ConfigError::Invalid(name, what)),
            None => Ok(None),
        };
        let url = |url: &str| url.starts_with("https://") || url.starts_with("http://");
        let queue_url = read(QUEUE_URL, QUEUE_URL_IS, url)?;
        let queue_url = queue_url.ok_or(ConfigError::Missing(QUEUE_URL, QUEUE_URL_IS))?;
        let arn = read(SECRET_ARN, SECRET_ARN_IS, |arn| {
            arn.starts_with("arn:") && arn.contains(":secretsmanager:")
        })?;
        let secret = read(SECRET, "the webhook secret", |_| true)?;
        let previous = read(PREVIOUS_SECRET, "the secret being rotated out", |_| true)?;
        let seconds = |name, default| -> Result<Duration, ConfigError> {
            let value = read(name, SECONDS_IS, |n| n.parse::<u64>().is_ok())?;
            Ok(value.map_or(default, |n| Duration::from_secs(n.parse().unwrap_or_default())))
        };
        let previous_ttl = seconds(PREVIOUS_SECRET_TTL, PREVIOUS_SECRET_TTL_DEFAULT)?;
        let keep = seconds(SECRET_KEEP, SECRET_KEEP_DEFAULT)?;
        let secrets = match (arn, secret) {
            (Some(_), Some(_)) => return Err(ConfigError::TwoSecrets),
            (Some(arn), None) => SecretSource::Stored { arn, previous_ttl, keep },
            (None, Some(current)) => SecretSource::Fixed { current, previous },
            (None, None) => return Err(ConfigError::Missing(SECRET_ARN, SECRET_ARN_IS)),
        };
        let archive_stream = read(ARCHIVE_STREAM, "a Firehose delivery stream's name", |_| true)?;
        Ok(Self { queue_url, secrets, archive_stream })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::ffi::OsString;

    const URL: &str = "https://sqs.us-east-1.amazonaws.com/123456789012/nylas";
    const ARN: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:nylas-AbCdEf";

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: HashMap<String, OsString> =
            vars.iter().map(|(k, v)| (k.to_string(), OsString::from(v))).collect();
        Config::from_lookup(|name| vars.get(name).cloned())
    }

    fn error(vars: &[(&str, &str)]) -> String {
        config(vars).expect_err("not configured").to_string()
    }

    #[test]
    fn queue_url_and_secret_arn_are_enough() {
        let config = config(&[(QUEUE_URL, URL), (SECRET_ARN, ARN)]).expect("complete");
        assert_eq!(config.queue_url, URL);
        let SecretSource::Stored { arn, previous_ttl, .. } = config.secrets else {
            panic!("a stored secret");
        };
        assert_eq!((arn.as_str(), previous_ttl), (ARN, PREVIOUS_SECRET_TTL_DEFAULT));
    }

    #[test]
    fn previous_secret_ttl_is_read_in_seconds() {
        let vars = [(QUEUE_URL, URL), (SECRET_ARN, ARN), (PREVIOUS_SECRET_TTL, "0")];
        let SecretSource::Stored { previous_ttl, .. } = config(&vars).expect("complete").secrets
        else {
            panic!("a stored secret");
        };
        assert_eq!(previous_ttl, Duration::ZERO);
        let shown = error(&[(QUEUE_URL, URL), (SECRET_ARN, ARN), (PREVIOUS_SECRET_TTL, "1h")]);
        assert!(shown.starts_with("PREVIOUS_SECRET_TTL_SECONDS is not valid"), "{shown}");
    }

    #[test]
    fn missing_queue_url_names_the_variable() {
        let shown = error(&[(SECRET_ARN, ARN)]);
        assert!(shown.starts_with("QUEUE_URL is not set"), "{shown}");
    }

    #[test]
    fn queue_url_that_is_not_a_url_is_invalid() {
        let shown = error(&[(QUEUE_URL, "nylas-notifications"), (SECRET_ARN, ARN)]);
        assert!(shown.starts_with("QUEUE_URL is not valid"), "{shown}");
    }

    #[test]
    fn secret_arn_that_is_not_a_secrets_manager_arn_is_invalid() {
        for arn in ["nylas-secret", "arn:aws:ssm:us-east-1:1:parameter/x"] {
            let shown = error(&[(QUEUE_URL, URL), (SECRET_ARN, arn)]);
            assert!(shown.starts_with("NYLAS_WEBHOOK_SECRET_ARN is not valid"), "{shown}");
        }
    }

    #[test]
    fn no_secret_at_all_names_the_arn_variable() {
        let shown = error(&[(QUEUE_URL, URL), (SECRET, "")]);
        assert!(shown.starts_with("NYLAS_WEBHOOK_SECRET_ARN is not set"), "{shown}");
    }

    #[test]
    fn a_secret_given_twice_is_refused() {
        let shown = error(&[(QUEUE_URL, URL), (SECRET_ARN, ARN), (SECRET, "s")]);
        assert!(shown.contains("keep one"), "{shown}");
    }

    #[test]
    fn secrets_in_the_environment_are_current_and_previous() {
        let vars = [(QUEUE_URL, URL), (SECRET, "new"), (PREVIOUS_SECRET, "old")];
        let SecretSource::Fixed { current, previous } = config(&vars).expect("complete").secrets
        else {
            panic!("secrets from the environment");
        };
        assert_eq!((current.as_str(), previous.as_deref()), ("new", Some("old")));
    }

    #[test]
    fn config_and_its_errors_never_show_the_secret() {
        let config = config(&[(QUEUE_URL, URL), (SECRET, "hunter2-secret")]).expect("complete");
        assert!(!format!("{config:?}").contains("hunter2"));
        assert_eq!(format!("{:?}", config.secrets), "Fixed(<redacted>)");
        let stored =
            self::config(&[(QUEUE_URL, URL), (SECRET_ARN, ARN)]).expect("complete").secrets;
        assert_eq!(format!("{stored:?}"), format!("Stored({ARN})"), "the ARN is no secret");
        let invalid = error(&[(QUEUE_URL, "hunter2"), (SECRET, "hunter2-secret")]);
        assert!(!invalid.contains("hunter2"), "{invalid}");
    }
}
