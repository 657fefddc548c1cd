//! The function's own settings, read once at start from the environment. The AWS ones
//! (region, credentials, `AWS_ENDPOINT_URL_SQS`) are read by aws-config in `main.rs`.

use crate::signature::{Secret, Verifier};

pub const QUEUE_URL: &str = "QUEUE_URL";
pub const SECRET: &str = "NYLAS_WEBHOOK_SECRET";
pub const PREVIOUS_SECRET: &str = "NYLAS_WEBHOOK_SECRET_PREVIOUS";

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
        Ok(Self {
            queue_url,
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
    fn queue_url_and_secret_are_enough() {
        let config = config(&[(QUEUE_URL, "http://q"), (SECRET, "s")]).expect("complete");
        assert_eq!(config.queue_url, "http://q");
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
        let shown = error.to_string();
        assert!(
            shown.starts_with("NYLAS_WEBHOOK_SECRET is not set"),
            "{shown}"
        );
    }

    #[test]
    fn previous_secret_is_accepted_too() {
        let vars = [(QUEUE_URL, "q"), (SECRET, "new"), (PREVIOUS_SECRET, "old")];
        let config = config(&vars).expect("complete");
        let old = crate::signature::sign(b"old", b"{}");
        assert_eq!(config.verifier.verify(b"{}", Some(old.as_bytes())), Ok(()));
    }

    #[test]
    fn config_debug_never_shows_the_secret() {
        let config = config(&[(QUEUE_URL, "q"), (SECRET, "hunter2-secret")]).expect("complete");
        assert!(!format!("{config:?}").contains("hunter2"));
    }
}
