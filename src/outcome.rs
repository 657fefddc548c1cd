//! Every answer the function gives, and the one place status codes are decided.
//!
//! Every failure an operator can fix gets [`RETRY`], the answer the sender retries: a queue
//! that fails, a secret not stored yet or rotated (a signature
//! that matches no secret looks the same), a missing setting, an API Gateway setting that
//! changes the bytes. Only requests that are not from the sender, or that can never be
//! stored, get a 4xx.

use crate::body::BodyError;
use crate::breaker::Open;
use crate::config::ConfigError;
use crate::log::Answer;
use crate::queue::QueueError;
use crate::secret::SecretError;
use crate::signature::SignatureError;
use lambda_http::http::{header, HeaderValue, StatusCode};
use lambda_http::{Body, Response};
use std::time::Duration;

/// The answer to every failure an operator can fix, so that the sender delivers again:
/// Nylas retries 408, 429, 502, 503, 504 and 507 and drops a notification on a 500 or any
/// other 4xx (<https://developer.nylas.com/docs/v3/notifications/webhooks/#retry-attempts>).
pub const RETRY: StatusCode = StatusCode::SERVICE_UNAVAILABLE;

/// How a request ended.
#[derive(Debug)]
pub enum Outcome {
    /// A `GET ?challenge=`, answered with the value.
    Challenged(String),
    /// Every notification of a verified POST is in the queue.
    Forwarded,
    Rejected(Rejection),
}

/// Why a request was not answered with 200.
#[derive(Debug, thiserror::Error)]
pub enum Rejection {
    #[error(
        "GET without the challenge query parameter: the sender sends GET only to verify the URL"
    )]
    MissingChallenge,
    /// The methods the function answers: POST, and GET when the sender sends a challenge.
    #[error("method not allowed: the function answers {0}")]
    MethodNotAllowed(&'static str),
    #[error(transparent)]
    Body(#[from] BodyError),
    #[error("{0}: the request is not from the sender")]
    Signature(#[from] SignatureError),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("not configured, so the sender will retry: {0}")]
    NotConfigured(ConfigError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error(transparent)]
    QueueDown(#[from] Open),
    #[error("the queue did not take every notification within {0:?}, so the sender will retry")]
    QueueTimedOut(Duration),
}

impl Rejection {
    /// A short, stable name for logs and metrics, and its status. The name is also the body of
    /// the response.
    pub fn reason(&self) -> (&'static str, StatusCode) {
        use StatusCode as S;
        match self {
            Rejection::MissingChallenge => ("missing_challenge", S::BAD_REQUEST),
            Rejection::MethodNotAllowed(_) => ("method_not_allowed", S::METHOD_NOT_ALLOWED),
            Rejection::Body(BodyError::TooLarge { .. }) => ("body_too_large", S::PAYLOAD_TOO_LARGE),
            Rejection::Body(BodyError::Mangled) => ("body_mangled", RETRY),
            Rejection::Signature(SignatureError::Missing) => ("missing_signature", S::UNAUTHORIZED),
            Rejection::Signature(SignatureError::Malformed) => {
                ("malformed_signature", S::FORBIDDEN)
            }
            Rejection::Secret(SecretError::Mismatch) => ("signature_mismatch", RETRY),
            Rejection::Secret(SecretError::Unavailable(_)) => ("secret_unavailable", RETRY),
            Rejection::NotConfigured(_) => ("not_configured", RETRY),
            Rejection::Queue(QueueError::TooLarge { .. }) => {
                ("notification_too_large", S::PAYLOAD_TOO_LARGE)
            }
            Rejection::Queue(QueueError::Refused(_)) => ("queue_refused", RETRY),
            Rejection::Queue(_) => ("queue_failed", RETRY),
            Rejection::QueueTimedOut(_) => ("queue_timed_out", RETRY),
            Rejection::QueueDown(_) => ("queue_down", RETRY),
        }
    }
}

impl Outcome {
    pub fn status(&self) -> StatusCode {
        match self {
            Outcome::Challenged(_) | Outcome::Forwarded => StatusCode::OK,
            Outcome::Rejected(rejection) => rejection.reason().1,
        }
    }

    /// What the log line says of it; `sender` names who sent the request.
    pub fn answer(&self, sender: &'static str) -> Answer {
        let (outcome, message, rejection) = match self {
            Outcome::Challenged(_) => ("challenged", "challenged".to_owned(), None),
            Outcome::Forwarded => ("forwarded", "forwarded".to_owned(), None),
            Outcome::Rejected(rejection) => ("rejected", rejection.to_string(), Some(rejection)),
        };
        Answer {
            status: self.status().as_u16(),
            outcome,
            reason: rejection.map(|r| r.reason().0),
            message,
            // Whatever the reason says: a body API Gateway mangled is found only after a
            // mismatch. A stale secret makes every POST one; the `SignatureMismatch` alarm counts.
            signature_mismatch: matches!(
                rejection,
                Some(
                    Rejection::Secret(SecretError::Mismatch) | Rejection::Body(BodyError::Mangled)
                )
            ),
            sender,
        }
    }

    /// The HTTP answer. The challenge is echoed exactly: the whole body, as plain text.
    pub fn into_response(self) -> Response<Body> {
        let status = self.status();
        let allow = match &self {
            Outcome::Rejected(Rejection::MethodNotAllowed(allow)) => Some(*allow),
            _ => None,
        };
        let body = match self {
            Outcome::Challenged(value) => Body::Text(value),
            Outcome::Forwarded => Body::Empty,
            Outcome::Rejected(rejection) => Body::Text(rejection.reason().0.to_owned()),
        };
        let mut response = Response::new(body);
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        if let Some(allow) = allow {
            headers.insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::SecretError;

    /// docs/http.md's contract: every refusal's reason and status. Each failure an operator can
    /// fix is a 503, which Nylas retries; a 500 or another 4xx would lose the notification.
    #[test]
    fn every_refusal_has_the_status_the_readme_states() {
        let contract = [
            (Rejection::MissingChallenge, "missing_challenge", 400),
            (Rejection::MethodNotAllowed("GET, POST"), "method_not_allowed", 405),
            (BodyError::TooLarge { size: 1 }.into(), "body_too_large", 413),
            (BodyError::Mangled.into(), "body_mangled", 503),
            (SignatureError::Missing.into(), "missing_signature", 401),
            (SignatureError::Malformed.into(), "malformed_signature", 403),
            (SecretError::Mismatch.into(), "signature_mismatch", 503),
            (SecretError::Unavailable("x".to_owned()).into(), "secret_unavailable", 503),
            (Rejection::NotConfigured(ConfigError::TwoSecrets), "not_configured", 503),
            (QueueError::Unavailable("x".to_owned()).into(), "queue_failed", 503),
            (QueueError::StillRefused { failed: 1, attempts: 3 }.into(), "queue_failed", 503),
            (QueueError::Refused("x".to_owned()).into(), "queue_refused", 503),
            (
                QueueError::TooLarge { index: 0, size: 2, limit: 1 }.into(),
                "notification_too_large",
                413,
            ),
            (Rejection::QueueTimedOut(Duration::from_secs(6)), "queue_timed_out", 503),
            (crate::breaker::Open { since: Duration::from_secs(1) }.into(), "queue_down", 503),
        ];
        for (rejection, reason, status) in contract {
            let response = Outcome::Rejected(rejection).into_response();
            assert_eq!(response.status().as_u16(), status, "{reason}");
            assert_eq!(response.body().as_ref(), reason.as_bytes());
        }
    }

    #[test]
    fn a_405_allows_what_the_sender_sends() {
        for allow in ["GET, POST", "POST"] {
            let response = Outcome::Rejected(Rejection::MethodNotAllowed(allow)).into_response();
            assert_eq!(response.headers()[header::ALLOW], allow);
        }
        let response = Outcome::Forwarded.into_response();
        assert!(!response.headers().contains_key(header::ALLOW));
    }

    /// A signature that matched no secret is counted so, whatever the reason logged; nothing
    /// else is.
    #[test]
    fn the_answer_counts_a_signature_mismatch_whatever_its_reason() {
        let mismatches = [SecretError::Mismatch.into(), BodyError::Mangled.into()];
        for rejection in mismatches {
            assert!(Outcome::Rejected(rejection).answer("Nylas").signature_mismatch);
        }
        let others: [Rejection; 3] = [
            SignatureError::Malformed.into(),
            SecretError::Unavailable("down".to_owned()).into(),
            BodyError::TooLarge { size: 1 }.into(),
        ];
        for rejection in others {
            assert!(!Outcome::Rejected(rejection).answer("Nylas").signature_mismatch);
        }
        assert!(!Outcome::Forwarded.answer("Nylas").signature_mismatch);
    }

    #[test]
    fn the_answer_to_a_challenge_never_holds_its_value() {
        let answer = Outcome::Challenged("challenge-value-9d1c".to_owned()).answer("Nylas");
        assert_eq!((answer.outcome, answer.message.as_str()), ("challenged", "challenged"));
        let rejected = Outcome::Rejected(SignatureError::Missing.into()).answer("Nylas");
        assert_eq!((rejected.reason, rejected.sender), (Some("missing_signature"), "Nylas"));
        assert_eq!(rejected.message, "no signature header: the request is not from the sender");
    }
}
