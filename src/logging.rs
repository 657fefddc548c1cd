//! Logs and metrics: one JSON line per request, which is also a CloudWatch embedded metric
//! format (EMF) record, so CloudWatch turns it into metrics with no API call and no extra
//! permission (<https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>).
//!
//! A line says what happened (outcome, status, reason), to how many notifications, and
//! which (type and Nylas id of the first), never what they contained. Secrets never reach
//! a log: [`crate::signature::Secret`] cannot be printed.

use crate::notification::Notification;
use crate::outcome::{Outcome, Rejection};
use serde_json::{json, Value};
use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tracing::Level;

/// The CloudWatch namespace of the function's metrics.
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
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub notifications: usize,
    pub api_version: Option<&'static str>,
    /// Type of the first notification.
    pub kind: Option<String>,
    /// Nylas id of the first notification (v3).
    pub id: Option<String>,
    /// Entries SQS refused once and took on a later attempt.
    pub retried: usize,
}

impl Delivery {
    pub fn of(notifications: &[Notification<'_>]) -> Self {
        let first = notifications.first();
        Self {
            notifications: notifications.len(),
            api_version: first.map(|n| n.api_version.as_str()),
            kind: first.and_then(|n| n.kind.as_deref().map(str::to_owned)),
            id: first.and_then(|n| n.id.as_deref().map(str::to_owned)),
            retried: 0,
        }
    }
}

/// Writes the line for one request to standard output, where Lambda sends it to CloudWatch.
pub fn request(outcome: &Outcome, delivery: &Delivery, elapsed: Duration) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let line = line(outcome, delivery, elapsed, now.as_millis() as u64);
    // A log that cannot be written must not fail the request.
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

/// The line for one request: level INFO when answered 200, WARN for a rejected request,
/// ERROR when the queue failed; metrics Received, Challenged, Forwarded (notifications),
/// EnqueueRetries, ServiceUnavailable (503s), and Rejected by `reason`.
pub fn line(outcome: &Outcome, delivery: &Delivery, elapsed: Duration, timestamp_ms: u64) -> Value {
    let status = outcome.status();
    let rejection = match outcome {
        Outcome::Rejected(rejection) => Some(rejection),
        Outcome::Challenged(_) | Outcome::Forwarded => None,
    };
    let (label, level) = match outcome {
        Outcome::Challenged(_) => ("challenged", "INFO"),
        Outcome::Forwarded => ("forwarded", "INFO"),
        Outcome::Rejected(_) if status.is_server_error() => ("rejected", "ERROR"),
        Outcome::Rejected(_) => ("rejected", "WARN"),
    };
    let count = |metric: &str| json!({ "Name": metric, "Unit": "Count" });
    let mut directives = vec![json!({
        "Namespace": NAMESPACE,
        "Dimensions": [[]],
        "Metrics": [
            count("Received"),
            count("Challenged"),
            count("Forwarded"),
            count("EnqueueRetries"),
            count("ServiceUnavailable"),
        ],
    })];
    if rejection.is_some() {
        directives.push(json!({
            "Namespace": NAMESPACE,
            "Dimensions": [["reason"]],
            "Metrics": [count("Rejected")],
        }));
    }
    let forwarded = match outcome {
        Outcome::Forwarded => delivery.notifications,
        Outcome::Challenged(_) | Outcome::Rejected(_) => 0,
    };
    let mut line = json!({
        "level": level,
        "message": rejection.map_or_else(|| label.to_owned(), Rejection::to_string),
        "outcome": label,
        "status": status.as_u16(),
        "notifications": delivery.notifications,
        "retried": delivery.retried,
        "duration_ms": elapsed.as_micros() as f64 / 1000.0,
        "_aws": { "Timestamp": timestamp_ms, "CloudWatchMetrics": directives },
        "Received": 1,
        "Challenged": u8::from(matches!(outcome, Outcome::Challenged(_))),
        "Forwarded": forwarded,
        "EnqueueRetries": delivery.retried,
        "ServiceUnavailable": u8::from(status.as_u16() == 503),
    });
    let optional = [
        ("reason", rejection.map(Rejection::reason)),
        ("api_version", delivery.api_version),
        ("nylas_type", delivery.kind.as_deref()),
        ("nylas_id", delivery.id.as_deref()),
    ];
    for (key, value) in optional {
        if let Some(value) = value {
            line[key] = json!(value);
        }
    }
    if rejection.is_some() {
        line["Rejected"] = json!(1);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forward::ForwardError;
    use crate::queue::QueueError;
    use crate::signature::SignatureError;

    const ELAPSED: Duration = Duration::from_micros(1_500);

    fn delivery() -> Delivery {
        Delivery {
            notifications: 3,
            api_version: Some("v2"),
            kind: Some("message.created".to_owned()),
            id: None,
            retried: 1,
        }
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
        let line = line(&Outcome::Forwarded, &delivery(), ELAPSED, 1_700_000_000_000);
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["status"], 200);
        assert_eq!(line["Forwarded"], 3);
        assert_eq!(line["EnqueueRetries"], 1);
        assert_eq!(line["duration_ms"], 1.5);
        assert_eq!(line["nylas_type"], "message.created");
        assert_eq!(line["_aws"]["Timestamp"], 1_700_000_000_000u64);
        assert!(line.get("reason").is_none() && line.get("nylas_id").is_none());
        assert_eq!(
            metric_names(&line),
            [
                "Received",
                "Challenged",
                "Forwarded",
                "EnqueueRetries",
                "ServiceUnavailable"
            ]
        );
    }

    #[test]
    fn rejection_is_a_metric_by_reason() {
        let outcome = Outcome::Rejected(SignatureError::Mismatch.into());
        let line = line(&outcome, &Delivery::default(), ELAPSED, 0);
        assert_eq!(line["level"], "WARN");
        assert_eq!(line["reason"], "invalid_signature");
        assert_eq!(line["Rejected"], 1);
        assert_eq!(line["Forwarded"], 0);
        let directives = line["_aws"]["CloudWatchMetrics"]
            .as_array()
            .expect("directives");
        assert_eq!(directives[1]["Dimensions"], json!([["reason"]]));
    }

    #[test]
    fn queue_failure_is_an_error_and_a_503_metric() {
        let failed = ForwardError::Queue(QueueError("QueueDoesNotExist".to_owned()));
        let line = line(&Outcome::Rejected(failed.into()), &delivery(), ELAPSED, 0);
        assert_eq!(line["level"], "ERROR");
        assert_eq!(line["ServiceUnavailable"], 1);
        assert_eq!(line["Forwarded"], 0);
    }

    #[test]
    fn challenge_line_never_holds_the_challenge_value() {
        let outcome = Outcome::Challenged("challenge-value-9d1c".to_owned());
        let line = line(&outcome, &Delivery::default(), ELAPSED, 0);
        assert_eq!(line["Challenged"], 1);
        assert!(!line.to_string().contains("challenge-value-9d1c"));
    }
}
