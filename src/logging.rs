//! Logs: one JSON line per request, for CloudWatch Logs Insights and metric filters.
//!
//! A line says what happened (outcome, status, reason), to how many notifications, and
//! which (type and Nylas id of the first), never what they contained. Secrets never reach
//! a log: [`crate::signature::Secret`] cannot be printed.

use crate::notification::Notification;
use crate::outcome::{Outcome, Rejection};
use std::time::Duration;
use tracing::Level;

/// Installs the JSON subscriber: this crate's events at INFO and above, and only WARN and
/// above from the libraries (the AWS SDK is chatty at INFO).
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
            kind: first.and_then(|n| n.kind.clone()),
            id: first.and_then(|n| n.id.clone()),
            retried: 0,
        }
    }
}

/// Logs the line for one request: INFO when answered 200, WARN for a rejected request,
/// ERROR when the queue failed.
pub fn request(outcome: &Outcome, delivery: &Delivery, elapsed: Duration) {
    let status = outcome.status().as_u16();
    let (label, reason) = match outcome {
        Outcome::Challenged(_) => ("challenged", None),
        Outcome::Forwarded => ("forwarded", None),
        Outcome::Rejected(rejection) => ("rejected", Some(rejection)),
    };
    macro_rules! line {
        ($level:expr, $message:expr) => {
            tracing::event!(
                $level,
                outcome = label,
                status,
                reason = reason.map(Rejection::reason),
                notifications = delivery.notifications,
                api_version = delivery.api_version,
                nylas_type = delivery.kind.as_deref(),
                nylas_id = delivery.id.as_deref(),
                retried = delivery.retried,
                duration_ms = elapsed.as_micros() as f64 / 1000.0,
                "{}",
                $message
            )
        };
    }
    match reason {
        None => line!(Level::INFO, label),
        Some(rejection) if status >= 500 => line!(Level::ERROR, rejection),
        Some(rejection) => line!(Level::WARN, rejection),
    }
}
