//! Logs and metrics: one JSON line per request, which is also a CloudWatch embedded metric
//! format (EMF) record, so CloudWatch turns it into metrics with no API call and no extra
//! permission (<https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>).
//!
//! A line says what happened (outcome, status, reason), to how many notifications, and
//! which (type and Nylas id of the first), never what they contained. Secrets never reach
//! a log: [`crate::signature::Secret`] cannot be printed.

use crate::notification::Notification;
use crate::outcome::{Outcome, Rejection};
use std::fmt::Write as _;
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

/// The metric directives: the counts every line carries, and `Rejected` by `reason`.
const COUNTS: &str = r#"{"Namespace":"NylasWebhookSqs","Dimensions":[[]],"Metrics":[{"Name":"Received","Unit":"Count"},{"Name":"Challenged","Unit":"Count"},{"Name":"Forwarded","Unit":"Count"},{"Name":"EnqueueRetries","Unit":"Count"},{"Name":"ServiceUnavailable","Unit":"Count"}]}"#;
const REJECTED: &str = r#"{"Namespace":"NylasWebhookSqs","Dimensions":[["reason"]],"Metrics":[{"Name":"Rejected","Unit":"Count"}]}"#;

/// The line for one request: level INFO when answered 200, WARN for a rejected request,
/// ERROR when the queue failed; metrics Received, Challenged, Forwarded (notifications),
/// EnqueueRetries, ServiceUnavailable (503s), and Rejected by `reason`.
///
/// Written straight into a string: building a `serde_json::Value` first cost more CPU than
/// the rest of the handler's own work (callgrind, docs/performance.md).
pub fn line(
    outcome: &Outcome,
    delivery: &Delivery,
    elapsed: Duration,
    timestamp_ms: u64,
) -> String {
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
    let forwarded = match outcome {
        Outcome::Forwarded => delivery.notifications,
        Outcome::Challenged(_) | Outcome::Rejected(_) => 0,
    };
    let directives = match rejection {
        Some(_) => format!("[{COUNTS},{REJECTED}]"),
        None => format!("[{COUNTS}]"),
    };
    let mut line = Line(String::with_capacity(768));
    line.text("level", level);
    match rejection {
        Some(rejection) => line.text("message", &rejection.to_string()),
        None => line.text("message", label),
    }
    line.text("outcome", label);
    line.raw("status", status.as_u16());
    line.raw("notifications", delivery.notifications);
    line.raw("retried", delivery.retried);
    line.raw("duration_ms", elapsed.as_micros() as f64 / 1000.0);
    let aws = format!(r#"{{"Timestamp":{timestamp_ms},"CloudWatchMetrics":{directives}}}"#);
    line.raw("_aws", aws);
    line.raw("Received", 1);
    line.raw(
        "Challenged",
        u8::from(matches!(outcome, Outcome::Challenged(_))),
    );
    line.raw("Forwarded", forwarded);
    line.raw("EnqueueRetries", delivery.retried);
    line.raw("ServiceUnavailable", u8::from(status.as_u16() == 503));
    let optional = [
        ("reason", rejection.map(Rejection::reason)),
        ("api_version", delivery.api_version),
        ("nylas_type", delivery.kind.as_deref()),
        ("nylas_id", delivery.id.as_deref()),
    ];
    for (key, value) in optional {
        if let Some(value) = value {
            line.text(key, value);
        }
    }
    if rejection.is_some() {
        line.raw("Rejected", 1);
    }
    line.0.push('}');
    line.0
}

/// A JSON object being written: each call adds one member. Keys are this module's constants;
/// text values, which may come from a request, are escaped (RFC 8259, section 7).
struct Line(String);

impl Line {
    fn key(&mut self, key: &str) {
        self.0.push(if self.0.is_empty() { '{' } else { ',' });
        self.0.push('"');
        self.0.push_str(key);
        self.0.push_str("\":");
    }

    fn text(&mut self, key: &str, value: &str) {
        self.key(key);
        self.0.push('"');
        for c in value.chars() {
            match c {
                '"' => self.0.push_str("\\\""),
                '\\' => self.0.push_str("\\\\"),
                c if c < ' ' => {
                    let _ = write!(self.0, "\\u{:04x}", u32::from(c));
                }
                c => self.0.push(c),
            }
        }
        self.0.push('"');
    }

    /// A number, or JSON this module wrote itself.
    fn raw(&mut self, key: &str, value: impl std::fmt::Display) {
        self.key(key);
        let _ = write!(self.0, "{value}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forward::ForwardError;
    use crate::queue::QueueError;
    use crate::signature::SignatureError;
    use serde_json::Value;

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

    fn line(outcome: &Outcome, delivery: &Delivery, elapsed: Duration, timestamp: u64) -> Value {
        let text = super::line(outcome, delivery, elapsed, timestamp);
        serde_json::from_str(&text).expect("each line is one JSON object")
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
        assert_eq!(directives[1]["Dimensions"], serde_json::json!([["reason"]]));
        assert!(directives.iter().all(|d| d["Namespace"] == NAMESPACE));
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

    #[test]
    fn text_from_a_request_is_escaped() {
        let delivery = Delivery {
            notifications: 1,
            kind: Some("a\"b\\c\n\u{1}\u{e9}\u{1F600}".to_owned()),
            ..Delivery::default()
        };
        let line = line(&Outcome::Forwarded, &delivery, ELAPSED, 0);
        assert_eq!(line["nylas_type"], "a\"b\\c\n\u{1}\u{e9}\u{1F600}");
    }
}
