//! Logs and metrics: one JSON line per request, which is also a CloudWatch embedded metric
//! format (EMF) record, written with the contract's `emf`, as the consumer writes its own.
//! A line says what happened, to how many notifications and which (the first's type and id),
//! never what they contained; [`crate::signature::Secret`] cannot be printed.

use crate::sender::Notification;
use nylas_sqs_contract::archive::Unarchived;
use nylas_sqs_contract::emf;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;
use tracing::Level;

/// Installs a JSON subscriber for what is not a request line (start-up errors, the Lambda
/// runtime's warnings): this crate's events at INFO and above, the libraries' at WARN.
pub fn init() {
    use tracing_subscriber::{filter::Targets, layer::SubscriberExt, util::SubscriberInitExt};
    let filter =
        Targets::new().with_default(Level::WARN).with_target(env!("CARGO_CRATE_NAME"), Level::INFO);
    let json = tracing_subscriber::fmt::layer()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false);
    tracing_subscriber::registry().with(filter).with(json).init();
}

/// How a request was answered, as the handler decided it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Answer {
    pub status: u16,
    /// `challenged`, `forwarded` or `rejected`.
    pub outcome: &'static str,
    /// Why it was rejected: a short, stable name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    pub message: String,
    /// The signature matched no secret, whatever the reason says.
    #[serde(skip)]
    pub signature_mismatch: bool,
    /// Who the webhook's sender is.
    pub sender: &'static str,
}

/// What a verified POST carried, for the log line.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Delivery {
    /// The invocation's request id, which each message carries (`nylas-request-id`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    pub notifications: usize,
    pub retried: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_version: Option<&'static str>,
    #[serde(rename = "nylas_type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(rename = "nylas_id", skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// What verifying asked of Secrets Manager (`Secrets::verify`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_read: Option<String>,
    /// The notifications stored in the queue but not in the archive, and why.
    #[serde(flatten)]
    pub unarchived: Unarchived,
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
pub fn request(answer: &Answer, delivery: &Delivery, elapsed: Duration) {
    let line = Line::new(answer, delivery, elapsed, emf::now_ms());
    if let Ok(line) = serde_json::to_string(&line) {
        emf::write(&line, cfg!(test));
    }
}

/// One request's line. Level INFO when answered 200, WARN for a request refused with a 4xx,
/// ERROR for a 503; metrics `Received`, `Challenged`, `Forwarded` (notifications),
/// `EnqueueRetries`, `ServiceUnavailable` (503s), `SignatureMismatch` (a signature that
/// matched no secret, whatever the reason logged), `ArchiveFailed` (notifications in the
/// queue but not in the archive), and `Rejected` by `reason`.
#[derive(Debug, Serialize)]
pub struct Line<'a> {
    level: &'static str,
    #[serde(flatten)]
    answer: &'a Answer,
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
    pub fn new(answer: &'a Answer, delivery: &'a Delivery, elapsed: Duration, at_ms: u64) -> Self {
        let (status, outcome) = (answer.status, answer.outcome);
        let forwarded = if outcome == "forwarded" { delivery.notifications } else { 0 };
        let counts = [
            ("Received", 1),
            ("Challenged", usize::from(outcome == "challenged")),
            ("Forwarded", forwarded),
            ("EnqueueRetries", delivery.retried),
            ("ServiceUnavailable", usize::from(status == 503)),
            ("SignatureMismatch", usize::from(answer.signature_mismatch)),
            ("ArchiveFailed", delivery.unarchived.ids.len()),
        ];
        let names = counts.map(|(name, _)| name);
        let mut directives = vec![(&["FunctionName"][..], &names[..])];
        let mut metrics: BTreeMap<_, _> = counts.into_iter().collect();
        if answer.reason.is_some() {
            directives.push((&["FunctionName", "reason"], &["Rejected"]));
            metrics.insert("Rejected", 1);
        }
        Self {
            level: match status {
                200 => "INFO",
                500.. => "ERROR",
                _ => "WARN",
            },
            answer,
            duration_ms: elapsed.as_micros() as f64 / 1000.0,
            delivery,
            function: emf::function_name(),
            aws: emf::metadata(at_ms, &directives),
            metrics,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ELAPSED: Duration = Duration::from_micros(1_500);

    fn delivery() -> Delivery {
        Delivery {
            notifications: 3,
            api_version: Some("v2"),
            kind: Some("message.created".to_owned()),
            id: None,
            retried: 1,
            ..Delivery::default()
        }
    }

    fn answer(status: u16, reason: Option<&'static str>) -> Answer {
        let outcome = match reason {
            Some(_) => "rejected",
            None => "forwarded",
        };
        Answer {
            status,
            outcome,
            reason,
            message: reason.unwrap_or(outcome).to_owned(),
            signature_mismatch: false,
            sender: "Nylas",
        }
    }

    fn line(answer: &Answer, delivery: &Delivery, timestamp: u64) -> Value {
        serde_json::to_value(Line::new(answer, delivery, ELAPSED, timestamp))
            .expect("a line is JSON")
    }

    fn metric_names(line: &Value) -> Vec<&str> {
        let directives = line["_aws"]["CloudWatchMetrics"].as_array().expect("directives");
        let metrics = directives.iter().flat_map(|d| d["Metrics"].as_array().expect("metrics"));
        metrics.map(|m| m["Name"].as_str().expect("a name")).collect()
    }

    #[test]
    fn forwarded_line_counts_notifications_and_retries() {
        let line = line(&answer(200, None), &delivery(), 1_700_000_000_000);
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["status"], 200);
        assert_eq!(line["Forwarded"], 3);
        assert_eq!(line["EnqueueRetries"], 1);
        assert_eq!(line["duration_ms"], 1.5);
        assert_eq!(line["nylas_type"], "message.created");
        assert_eq!(line["sender"], "Nylas");
        assert_eq!(line["_aws"]["Timestamp"], 1_700_000_000_000u64);
        assert!(line.get("reason").is_none() && line.get("nylas_id").is_none());
        let names = [
            "Received",
            "Challenged",
            "Forwarded",
            "EnqueueRetries",
            "ServiceUnavailable",
            "SignatureMismatch",
            "ArchiveFailed",
        ];
        assert_eq!(metric_names(&line), names);
        assert!(names.iter().all(|name| line[name].is_u64()), "every metric has a value");
        assert_eq!(line["ArchiveFailed"], 0);
        assert!(line.get("archive_missing").is_none() && line.get("archive_error").is_none());
    }

    #[test]
    fn notifications_the_archive_missed_are_named_and_counted() {
        let ids = vec!["n-1".to_owned(), "n-2".to_owned()];
        let reason = Some("ResourceNotFoundException".to_owned());
        let delivery = Delivery { unarchived: Unarchived { ids, reason }, ..delivery() };
        let line = line(&answer(200, None), &delivery, 0);
        assert_eq!((line["status"].as_u64(), line["ArchiveFailed"].as_u64()), (Some(200), Some(2)));
        assert_eq!(line["archive_missing"], json!(["n-1", "n-2"]));
        assert_eq!(line["archive_error"], "ResourceNotFoundException");
    }

    #[test]
    fn rejection_is_a_metric_by_reason() {
        let line = line(&answer(403, Some("malformed_signature")), &delivery(), 0);
        assert_eq!(line["level"], "WARN");
        assert_eq!(line["reason"], "malformed_signature");
        assert_eq!(line["Rejected"], 1);
        assert_eq!(line["Forwarded"], 0, "only a forwarded POST counts");
        let directives = line["_aws"]["CloudWatchMetrics"].as_array().expect("directives");
        assert_eq!(directives[1]["Dimensions"], json!([["FunctionName", "reason"]]));
        assert_eq!(directives[1]["Metrics"], json!([{"Name": "Rejected", "Unit": "Count"}]));
        assert!(directives.iter().all(|d| d["Namespace"] == emf::NAMESPACE));
    }

    /// Two stacks in one account write two metrics: every metric carries the function's name,
    /// and the line holds its value (Lambda's `AWS_LAMBDA_FUNCTION_NAME`; `local` without).
    #[test]
    fn every_metric_carries_the_function_name() {
        let line = line(&answer(403, Some("malformed_signature")), &delivery(), 0);
        let directives = line["_aws"]["CloudWatchMetrics"].as_array().expect("directives");
        for directive in directives {
            let sets = directive["Dimensions"].as_array().expect("dimension sets");
            assert!(sets.iter().all(|set| set[0] == "FunctionName"), "{directive}");
        }
        let expected = std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or("local".to_owned());
        assert_eq!(line["FunctionName"], expected);
    }

    #[test]
    fn a_503_is_an_error_and_a_metric() {
        let line = line(&answer(503, Some("queue_failed")), &delivery(), 0);
        assert_eq!(line["level"], "ERROR");
        assert_eq!(line["ServiceUnavailable"], 1);
        assert_eq!(line["Forwarded"], 0);
    }

    #[test]
    fn a_signature_mismatch_is_counted_whatever_the_reason() {
        let mut mismatch = answer(503, Some("body_mangled"));
        mismatch.signature_mismatch = true;
        assert_eq!(line(&mismatch, &delivery(), 0)["SignatureMismatch"], 1);
        let other = answer(503, Some("secret_unavailable"));
        assert_eq!(line(&other, &delivery(), 0)["SignatureMismatch"], 0);
    }

    #[test]
    fn a_challenge_is_counted_as_one() {
        let mut challenged = answer(200, None);
        challenged.outcome = "challenged";
        let line = line(&challenged, &Delivery::default(), 0);
        assert_eq!((line["Challenged"].as_u64(), line["Forwarded"].as_u64()), (Some(1), Some(0)));
    }
}
