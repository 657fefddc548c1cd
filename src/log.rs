//! Logs and metrics: one JSON line per request, which is also a CloudWatch embedded metric
//! format (EMF) record, so CloudWatch turns it into metrics with no API call and no extra
//! permission (<https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>).
//! A line says what happened, to how many notifications and which (the first's type and id),
//! never what they contained; [`crate::signature::Secret`] cannot be printed.

use crate::notification::Notification;
use crate::outcome::Outcome;
use lambda_http::http::StatusCode;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tracing::Level;

/// The CloudWatch namespace of the function's metrics; the template's alarms use it too.
pub const NAMESPACE: &str = "NylasWebhookSqs";

/// Installs a JSON subscriber for what is not a request line (start-up errors, the Lambda
/// runtime's warnings): this crate's events at INFO and above, the libraries' at WARN.
pub fn init() {
    use tracing_subscriber::{filter::Targets, layer::SubscriberExt, util::SubscriberInitExt};
    let filter = Targets::new()
        .with_default(Level::WARN)
        .with_target(env!("CARGO_CRATE_NAME"), Level::INFO);
    let json = tracing_subscriber::fmt::layer()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false);
    tracing_subscriber::registry()
        .with(filter)
        .with(json)
        .init();
}

/// What a verified POST carried, for the log line.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Delivery {
    pub notifications: usize,
    pub retried: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_version: Option<&'static str>,
    #[serde(rename = "nylas_type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(rename = "nylas_id", skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// What verifying asked of Secrets Manager (`secret.rs`, `Reading`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_read: Option<String>,
}

impl Delivery {
    pub fn describe(&mut self, notifications: &[Notification<'_>]) {
        let first = notifications.first();
        self.notifications = notifications.len();
        self.api_version = first.map(|n| n.api_version.as_str());
        self.kind = first.and_then(|n| n.kind.clone());
        self.id = first.map(|n| n.id.clone());
    }
}

/// Writes the line for one request to standard output, where Lambda sends it to CloudWatch.
pub fn request(outcome: &Outcome, delivery: &Delivery, elapsed: Duration) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let line = Line::new(outcome, delivery, elapsed, now.as_millis() as u64);
    let Ok(line) = serde_json::to_string(&line) else {
        return;
    };
    // The test harness shows a test's output only when it fails. A log that cannot be written
    // must not fail the request, and `println!` would panic.
    if cfg!(test) {
        println!("{line}");
    } else {
        let _ = writeln!(std::io::stdout().lock(), "{line}");
    }
}

/// One request's line. Level INFO when answered 200, WARN for a request refused with a 4xx,
/// ERROR for a 503; metrics `Received`, `Challenged`, `Forwarded` (notifications),
/// `EnqueueRetries`, `ServiceUnavailable` (503s), `SignatureMismatch` (a signature that
/// matched no secret, whatever the reason logged), and `Rejected` by `reason`.
#[derive(Debug, Serialize)]
pub struct Line<'a> {
    level: &'static str,
    message: String,
    outcome: &'static str,
    status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    duration_ms: f64,
    #[serde(flatten)]
    delivery: &'a Delivery,
    #[serde(rename = "FunctionName")]
    function: &'static str,
    /// EMF's metadata: which members are metrics, in which namespace, by which dimensions.
    #[serde(rename = "_aws")]
    aws: Value,
    /// The metric values, as top-level members named after the metrics.
    #[serde(flatten)]
    metrics: BTreeMap<&'static str, usize>,
}

impl<'a> Line<'a> {
    pub fn new(
        outcome: &Outcome,
        delivery: &'a Delivery,
        elapsed: Duration,
        timestamp_ms: u64,
    ) -> Self {
        let status = outcome.status();
        let (label, message, rejection) = match outcome {
            Outcome::Challenged(_) => ("challenged", "challenged".to_owned(), None),
            Outcome::Forwarded => ("forwarded", "forwarded".to_owned(), None),
            Outcome::Rejected(rejection) => ("rejected", rejection.to_string(), Some(rejection)),
        };
        let level = match status.as_u16() {
            200 => "INFO",
            500.. => "ERROR",
            _ => "WARN",
        };
        let forwarded = match outcome {
            Outcome::Forwarded => delivery.notifications,
            Outcome::Challenged(_) | Outcome::Rejected(_) => 0,
        };
        let counts = [
            ("Received", 1),
            ("Challenged", usize::from(label == "challenged")),
            ("Forwarded", forwarded),
            ("EnqueueRetries", delivery.retried),
            (
                "ServiceUnavailable",
                usize::from(status == StatusCode::SERVICE_UNAVAILABLE),
            ),
            (
                "SignatureMismatch",
                usize::from(rejection.is_some_and(|r| r.is_signature_mismatch())),
            ),
        ];
        let directive = |dimensions: &[&str], names: &[&str]| {
            let metrics: Vec<Value> = names
                .iter()
                .map(|n| json!({"Name": n, "Unit": "Count"}))
                .collect();
            json!({"Namespace": NAMESPACE, "Dimensions": [dimensions], "Metrics": metrics})
        };
        let mut directives = vec![directive(&["FunctionName"], &counts.map(|(name, _)| name))];
        let mut metrics: BTreeMap<_, _> = counts.into_iter().collect();
        if rejection.is_some() {
            directives.push(directive(&["FunctionName", "reason"], &["Rejected"]));
            metrics.insert("Rejected", 1);
        }
        Self {
            level,
            message,
            outcome: label,
            status: status.as_u16(),
            reason: rejection.map(|r| r.reason().0),
            duration_ms: elapsed.as_micros() as f64 / 1000.0,
            delivery,
            function: nylas_sqs_contract::function_name(),
            aws: json!({"Timestamp": timestamp_ms, "CloudWatchMetrics": directives}),
            metrics,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::BodyError;
    use crate::queue::QueueError;
    use crate::secret::SecretError;
    use crate::signature::SignatureError;

    const ELAPSED: Duration = Duration::from_micros(1_500);

    fn delivery() -> Delivery {
        Delivery {
            notifications: 3,
            api_version: Some("v2"),
            kind: Some("message.created".to_owned()),
            id: None,
            retried: 1,
            secret_read: None,
        }
    }

    fn line(outcome: &Outcome, delivery: &Delivery, timestamp: u64) -> Value {
        serde_json::to_value(Line::new(outcome, delivery, ELAPSED, timestamp))
            .expect("a line is JSON")
    }

    fn metric_names(line: &Value) -> Vec<&str> {
        let directives = line["_aws"]["CloudWatchMetrics"]
            .as_array()
            .expect("directives");
        let metrics = directives
            .iter()
            .flat_map(|d| d["Metrics"].as_array().expect("metrics"));
        metrics
            .map(|m| m["Name"].as_str().expect("a name"))
            .collect()
    }

    #[test]
    fn forwarded_line_counts_notifications_and_retries() {
        let line = line(&Outcome::Forwarded, &delivery(), 1_700_000_000_000);
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["status"], 200);
        assert_eq!(line["Forwarded"], 3);
        assert_eq!(line["EnqueueRetries"], 1);
        assert_eq!(line["duration_ms"], 1.5);
        assert_eq!(line["nylas_type"], "message.created");
        assert_eq!(line["_aws"]["Timestamp"], 1_700_000_000_000u64);
        assert!(line.get("reason").is_none() && line.get("nylas_id").is_none());
        let names = [
            "Received",
            "Challenged",
            "Forwarded",
            "EnqueueRetries",
            "ServiceUnavailable",
            "SignatureMismatch",
        ];
        assert_eq!(metric_names(&line), names);
        assert!(
            names.iter().all(|name| line[name].is_u64()),
            "every metric has a value"
        );
    }

    #[test]
    fn rejection_is_a_metric_by_reason() {
        let outcome = Outcome::Rejected(SignatureError::Malformed.into());
        let line = line(&outcome, &Delivery::default(), 0);
        assert_eq!(line["level"], "WARN");
        assert_eq!(line["reason"], "malformed_signature");
        assert_eq!(line["Rejected"], 1);
        assert_eq!(line["Forwarded"], 0);
        let directives = line["_aws"]["CloudWatchMetrics"]
            .as_array()
            .expect("directives");
        assert_eq!(
            directives[1]["Dimensions"],
            json!([["FunctionName", "reason"]])
        );
        assert_eq!(
            directives[1]["Metrics"],
            json!([{"Name": "Rejected", "Unit": "Count"}])
        );
        assert!(directives.iter().all(|d| d["Namespace"] == NAMESPACE));
    }

    /// Two stacks in one account write two metrics: every metric carries the function's name,
    /// and the line holds its value (Lambda's `AWS_LAMBDA_FUNCTION_NAME`; `local` without).
    #[test]
    fn every_metric_carries_the_function_name() {
        let outcome = Outcome::Rejected(SignatureError::Malformed.into());
        let line = line(&outcome, &Delivery::default(), 0);
        let directives = line["_aws"]["CloudWatchMetrics"]
            .as_array()
            .expect("directives");
        for directive in directives {
            let sets = directive["Dimensions"].as_array().expect("dimension sets");
            assert!(
                sets.iter().all(|set| set[0] == "FunctionName"),
                "{directive}"
            );
        }
        let expected = std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or("local".to_owned());
        assert_eq!(line["FunctionName"], expected);
    }

    #[test]
    fn queue_failure_is_an_error_and_a_503_metric() {
        let failed = QueueError::Unavailable("QueueDoesNotExist".to_owned());
        let line = line(&Outcome::Rejected(failed.into()), &delivery(), 0);
        assert_eq!(line["level"], "ERROR");
        assert_eq!(line["ServiceUnavailable"], 1);
        assert_eq!(line["Forwarded"], 0);
    }

    #[test]
    fn signature_matching_no_secret_is_counted_by_its_reason() {
        let outcome = Outcome::Rejected(SecretError::Mismatch.into());
        let line = line(&outcome, &Delivery::default(), 0);
        assert_eq!(
            (line["reason"].as_str(), line["Rejected"].as_u64()),
            (Some("signature_mismatch"), Some(1))
        );
        assert_eq!(line["ServiceUnavailable"], 1);
        assert_eq!(line["SignatureMismatch"], 1);
    }

    #[test]
    fn a_mangled_body_counts_as_a_signature_mismatch_and_nothing_else_does() {
        let mangled = Outcome::Rejected(BodyError::Mangled.into());
        assert_eq!(
            line(&mangled, &Delivery::default(), 0)["SignatureMismatch"],
            1
        );
        let others = [
            Outcome::Forwarded,
            Outcome::Rejected(SignatureError::Malformed.into()),
            Outcome::Rejected(SecretError::Unavailable("down".to_owned()).into()),
            Outcome::Rejected(BodyError::TooLarge { size: 1 }.into()),
        ];
        for outcome in others {
            assert_eq!(line(&outcome, &delivery(), 0)["SignatureMismatch"], 0);
        }
    }

    #[test]
    fn challenge_line_never_holds_the_challenge_value() {
        let outcome = Outcome::Challenged("challenge-value-9d1c".to_owned());
        let line = line(&outcome, &Delivery::default(), 0);
        assert_eq!(line["Challenged"], 1);
        assert!(!line.to_string().contains("challenge-value-9d1c"));
    }
}
