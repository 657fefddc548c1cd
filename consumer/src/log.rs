//! One JSON line per message, which is also a CloudWatch embedded metric format (EMF) record,
//! written with the contract's `emf` as the receiver writes its own: the outcome, `nylas-id`
//! and type, the replay that sent it, and what finds it in the receiver's log (its request id)
//! and in X-Ray (the trace header), never the content. Metrics `Processed`, `Duplicate`, `Failed`, `DeadLettered` and
//! `Returned` (in progress elsewhere, or behind a FIFO group's failure), with the function's
//! name as their dimension.

use crate::notification::attribute_of;
use crate::outcome::Outcome;
use aws_lambda_events::event::sqs::SqsMessage;
use nylas_sqs_contract::{attribute, emf};
use serde_json::{json, Value};
use std::time::Duration;

/// The line for one message. Its `nylas-id` and type are the receiver's attributes, which the
/// notification is checked against when it decodes.
pub fn line(message: &SqsMessage, outcome: &Outcome, elapsed: Duration) -> Value {
    let (label, metric, level) = match outcome {
        Outcome::Processed => ("processed", "Processed", "INFO"),
        Outcome::Duplicate => ("duplicate", "Duplicate", "INFO"),
        Outcome::InProgress => ("in_progress", "Returned", "WARN"),
        Outcome::Behind => ("behind_failure", "Returned", "WARN"),
        Outcome::Failed(_) => ("failed", "Failed", "ERROR"),
        Outcome::DeadLettered(_) => ("dead_lettered", "DeadLettered", "ERROR"),
    };
    let id = attribute_of(message, attribute::ID);
    let kind = attribute_of(message, attribute::TYPE);
    // One metric per function, so that two stacks' consumers never share one.
    let metrics = emf::metadata(emf::now_ms(), &[(&["FunctionName"], &[metric])]);
    let mut line = json!({
        "level": level,
        "message": match outcome { Outcome::Failed(why) | Outcome::DeadLettered(why) => why.as_str(), _ => label },
        "outcome": label,
        "nylas_id": id,
        "nylas_type": kind,
        "replay_id": attribute_of(message, attribute::REPLAY_ID),
        "request_id": attribute_of(message, attribute::REQUEST_ID),
        "trace_header": message.attributes.get(attribute::TRACE_HEADER),
        "message_id": message.message_id,
        "receive_count": message.attributes.get("ApproximateReceiveCount"),
        "duration_ms": elapsed.as_micros() as f64 / 1000.0,
        "FunctionName": emf::function_name(),
        "_aws": metrics,
    });
    line[metric] = json!(1);
    line
}

/// Writes the line for one message to standard output, where Lambda sends it to CloudWatch.
pub fn message(message: &SqsMessage, outcome: &Outcome, elapsed: Duration) {
    write(&line(message, outcome, elapsed));
}

/// A notification processed whose completion the table did not take: a later delivery may
/// run it again once its in-progress record expires.
pub fn unrecorded(id: &str, error: &dyn std::fmt::Display) {
    write(
        &json!({"level": "WARN", "message": format!("processed but not recorded as completed: {error}"),
        "outcome": "unrecorded", "nylas_id": id}),
    );
}

/// The invocation's deadline was no time (`lib.rs`, `remaining`); said once per process.
pub fn no_deadline(deadline_ms: u64, instead: Duration) {
    write(
        &json!({"level": "WARN", "message": format!("the invocation's deadline ({deadline_ms} ms) \
        is not a time within Lambda's 15 minutes: in-progress records expire {instead:?} after \
        they are taken"), "outcome": "no_deadline"}),
    );
}

fn write(line: &Value) {
    emf::write(&line.to_string(), cfg!(test));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message() -> SqsMessage {
        let text = |v: &str| json!({"stringValue": v, "dataType": "String"});
        serde_json::from_value(json!({
            "messageId": "m-1",
            "body": "secret content",
            "attributes": {"ApproximateReceiveCount": "2"},
            "messageAttributes": {attribute::ID: text("n-1"), attribute::TYPE: text("message.created")},
        }))
        .unwrap()
    }

    #[test]
    fn each_outcome_is_a_metric_and_a_level() {
        let cases = [
            (Outcome::Processed, "Processed", "INFO", "processed"),
            (Outcome::Duplicate, "Duplicate", "INFO", "duplicate"),
            (Outcome::InProgress, "Returned", "WARN", "in_progress"),
            (Outcome::Behind, "Returned", "WARN", "behind_failure"),
            (Outcome::Failed("bad".into()), "Failed", "ERROR", "failed"),
        ];
        for (outcome, metric, level, label) in cases {
            let line = line(&message(), &outcome, Duration::from_millis(2));
            assert_eq!(line[metric], 1, "{line}");
            assert_eq!(
                (line["level"].as_str(), line["outcome"].as_str()),
                (Some(level), Some(label))
            );
            let declared = &line["_aws"]["CloudWatchMetrics"][0];
            assert_eq!(declared["Metrics"][0]["Name"], metric);
            assert_eq!(declared["Namespace"], emf::NAMESPACE);
            assert_eq!(declared["Dimensions"], json!([["FunctionName"]]));
            assert_eq!(line["FunctionName"], emf::function_name());
        }
    }

    #[test]
    fn a_line_names_the_notification_never_its_content() {
        let line = line(&message(), &Outcome::Failed("not JSON".into()), Duration::ZERO);
        assert_eq!(
            (line["nylas_id"].as_str(), line["nylas_type"].as_str()),
            (Some("n-1"), Some("message.created"))
        );
        assert_eq!(
            (line["message"].as_str(), line["receive_count"].as_str()),
            (Some("not JSON"), Some("2"))
        );
        assert!(!line.to_string().contains("secret content"));
    }

    #[test]
    fn a_line_names_the_replay_the_receiver_s_request_and_the_trace() {
        let text = |v: &str| json!({"stringValue": v, "dataType": "String"});
        let replayed: SqsMessage = serde_json::from_value(json!({
            "messageId": "m-2",
            "attributes": {attribute::TRACE_HEADER: "Root=1-a-b;Sampled=1"},
            "messageAttributes": {
                attribute::ID: text("n-1"), attribute::REPLAY_ID: text("r-1"),
                attribute::REQUEST_ID: text("req-1"),
            },
        }))
        .unwrap();
        let line = line(&replayed, &Outcome::Processed, Duration::ZERO);
        assert_eq!(
            (line["replay_id"].as_str(), line["request_id"].as_str()),
            (Some("r-1"), Some("req-1"))
        );
        assert_eq!(line["trace_header"], "Root=1-a-b;Sampled=1");
        let line = super::line(&message(), &Outcome::Processed, Duration::ZERO);
        assert!(line["replay_id"].is_null() && line["trace_header"].is_null());
    }
}
