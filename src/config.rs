//! Configuration, read once at start from the environment.
//!
//! Besides the function's own settings, it reads the two AWS ones the SQS client needs:
//! the region and an optional endpoint (a local SQS-compatible server). Credentials come
//! from the environment too, as Lambda provides them, read by the SDK ([`crate::sqs`]).
//! Nothing else is probed: no profile files, no instance metadata, which keeps start-up short.

use crate::signature::{Secret, Verifier};

pub const QUEUE_URL: &str = "QUEUE_URL";
pub const SECRET: &str = "NYLAS_WEBHOOK_SECRET";
pub const PREVIOUS_SECRET: &str = "NYLAS_WEBHOOK_SECRET_PREVIOUS";
pub const REGION: &str = "AWS_REGION";
pub const SQS_ENDPOINT: &str = "AWS_ENDPOINT_URL_SQS";
pub const ENDPOINT: &str = "AWS_ENDPOINT_URL";
/// Either of these, the variables OpenSSL and rustls read, trusts the system's roots (or the
/// ones they name) instead of Amazon's: see [`crate::sqs`].
pub const TRUST_FILE: &str = "SSL_CERT_FILE";
pub const TRUST_DIR: &str = "SSL_CERT_DIR";

/// Why the function cannot start. Each message names the variable and what to put in it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{name} is not set: set it to {what}")]
    Missing {
        name: &'static str,
        what: &'static str,
    },
    #[error("{name} is not valid UTF-8: set it to {what}")]
    NotUnicode {
        name: &'static str,
        what: &'static str,
    },
}

/// The function's settings.
#[derive(Debug)]
pub struct Config {
    /// The SQS queue every notification goes to.
    pub queue_url: String,
    /// Checks `X-Nylas-Signature` with the current and, while rotating, the previous secret.
    pub verifier: Verifier,
    /// The queue's region.
    pub region: String,
    /// Where SQS requests go instead of the regional endpoint.
    pub sqs_endpoint: Option<String>,
    /// Whether TLS trusts the system's root certificates rather than only Amazon's.
    pub system_roots: bool,
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
        let read =
            |name: &'static str, what: &'static str| -> Result<Option<String>, ConfigError> {
                match lookup(name) {
                    None => Ok(None),
                    Some(value) if value.is_empty() => Ok(None),
                    Some(value) => value
                        .into_string()
                        .map(Some)
                        .map_err(|_| ConfigError::NotUnicode { name, what }),
                }
            };
        let require = |name: &'static str, what: &'static str| {
            read(name, what)?.ok_or(ConfigError::Missing { name, what })
        };
        let queue_url = require(QUEUE_URL, "the URL of the SQS queue notifications go to")?;
        let secret = require(
            SECRET,
            "the webhook_secret of the Nylas v3 webhook (v2: the application's client secret)",
        )?;
        let previous = read(
            PREVIOUS_SECRET,
            "the secret being rotated out, or leave it empty",
        )?;
        let region = require(REGION, "the queue's AWS region (Lambda sets it)")?;
        let sqs_endpoint = match read(SQS_ENDPOINT, "an SQS endpoint URL, or leave it unset")? {
            Some(endpoint) => Some(endpoint),
            None => read(ENDPOINT, "an AWS endpoint URL, or leave it unset")?,
        };
        let system_roots = lookup(TRUST_FILE).is_some() || lookup(TRUST_DIR).is_some();
        Ok(Self {
            queue_url,
            region,
            sqs_endpoint,
            system_roots,
            verifier: Verifier::new(
                Secret::new(secret.as_bytes()),
                previous.map(|p| Secret::new(p.as_bytes())),
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::ffi::OsString;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: HashMap<String, OsString> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        Config::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn queue_url_secret_and_region_are_enough() {
        let vars = [
            (QUEUE_URL, "http://q"),
            (SECRET, "s"),
            (REGION, "eu-west-1"),
        ];
        let config = config(&vars).expect("complete");
        assert_eq!(config.queue_url, "http://q");
        assert_eq!(config.region, "eu-west-1");
        assert_eq!(config.sqs_endpoint, None);
        assert!(!config.system_roots);
    }

    #[test]
    fn a_trust_store_variable_selects_the_system_roots() {
        for name in [TRUST_FILE, TRUST_DIR] {
            let vars = [
                (QUEUE_URL, "http://q"),
                (SECRET, "s"),
                (REGION, "eu-west-1"),
                (name, "/etc/ssl/certs/ca-certificates.crt"),
            ];
            assert!(config(&vars).expect("complete").system_roots, "{name}");
        }
    }

    #[test]
    fn missing_region_names_the_variable() {
        let error = config(&[(QUEUE_URL, "q"), (SECRET, "s")]).expect_err("incomplete");
        assert!(
            error.to_string().starts_with("AWS_REGION is not set"),
            "{error}"
        );
    }

    #[test]
    fn sqs_endpoint_overrides_the_general_one() {
        let mut vars = vec![(QUEUE_URL, "q"), (SECRET, "s"), (REGION, "r")];
        vars.push((ENDPOINT, "http://general"));
        assert_eq!(
            config(&vars).map(|c| c.sqs_endpoint),
            Ok(Some("http://general".into()))
        );
        vars.push((SQS_ENDPOINT, "http://sqs"));
        assert_eq!(
            config(&vars).map(|c| c.sqs_endpoint),
            Ok(Some("http://sqs".into()))
        );
    }

    #[test]
    fn missing_queue_url_names_the_variable() {
        let error = config(&[(SECRET, "s")]).expect_err("incomplete");
        assert!(
            error.to_string().starts_with("QUEUE_URL is not set"),
            "{error}"
        );
    }

    #[test]
    fn empty_secret_counts_as_missing() {
        let error = config(&[(QUEUE_URL, "http://q"), (SECRET, "")]).expect_err("incomplete");
        assert!(
            error
                .to_string()
                .starts_with("NYLAS_WEBHOOK_SECRET is not set"),
            "{error}"
        );
    }

    #[test]
    fn previous_secret_is_accepted_too() {
        let vars = [
            (QUEUE_URL, "q"),
            (SECRET, "new"),
            (PREVIOUS_SECRET, "old"),
            (REGION, "r"),
        ];
        let config = config(&vars).expect("complete");
        let body = b"{}";
        let old = crate::signature::sign(b"old", body);
        assert_eq!(config.verifier.verify(body, Some(old.as_bytes())), Ok(()));
    }

    #[test]
    fn config_debug_never_shows_the_secret() {
        let vars = [(QUEUE_URL, "q"), (SECRET, "hunter2-secret"), (REGION, "r")];
        let config = config(&vars).expect("complete");
        assert!(!format!("{config:?}").contains("hunter2"));
    }
}
