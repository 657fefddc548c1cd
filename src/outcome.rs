//! Every answer the function gives, and the one place status codes are decided.
//!
//! Nylas retries 408, 429, 502, 503, 504 and 507 and drops a notification on a 500 or any
//! other 4xx (<https://developer.nylas.com/docs/v3/notifications/webhooks/#retry-attempts>),
//! so a failure to store is 503, and only requests that are not from Nylas, or that can
//! never be stored, get a 4xx.

use crate::body::BodyError;
use crate::queue::QueueError;
use crate::signature::SignatureError;
use lambda_http::http::{header, HeaderValue, StatusCode};
use lambda_http::{Body, Response};
use std::time::Duration;

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
    #[error("GET without a challenge query parameter: Nylas sends GET only to verify the URL")]
    MissingChallenge,
    #[error("method not allowed: Nylas sends GET for the challenge and POST for notifications")]
    MethodNotAllowed,
    #[error("{0}: refused before any other work")]
    BodyTooLarge(#[from] BodyError),
    #[error(transparent)]
    Signature(#[from] SignatureError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error("the queue did not take every notification within {0:?}, so Nylas will retry")]
    QueueTimedOut(Duration),
}

impl Rejection {
    /// A short, stable name for logs and metrics; also the body of the response.
    pub fn reason(&self) -> &'static str {
        match self {
            Rejection::MissingChallenge => "missing_challenge",
            Rejection::MethodNotAllowed => "method_not_allowed",
            Rejection::BodyTooLarge(_) => "body_too_large",
            Rejection::Signature(SignatureError::Missing) => "missing_signature",
            Rejection::Signature(_) => "invalid_signature",
            Rejection::Queue(QueueError::TooLarge { .. }) => "notification_too_large",
            Rejection::Queue(QueueError::Refused(_)) => "queue_refused",
            Rejection::Queue(_) => "queue_failed",
            Rejection::QueueTimedOut(_) => "queue_timed_out",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Rejection::MissingChallenge => StatusCode::BAD_REQUEST,
            Rejection::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Rejection::Signature(SignatureError::Missing) => StatusCode::UNAUTHORIZED,
            Rejection::Signature(_) => StatusCode::FORBIDDEN,
            Rejection::BodyTooLarge(_) | Rejection::Queue(QueueError::TooLarge { .. }) => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            Rejection::Queue(_) | Rejection::QueueTimedOut(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl Outcome {
    pub fn status(&self) -> StatusCode {
        match self {
            Outcome::Challenged(_) | Outcome::Forwarded => StatusCode::OK,
            Outcome::Rejected(rejection) => rejection.status(),
        }
    }

    /// The HTTP answer. The challenge is echoed exactly: the whole body, as plain text.
    pub fn into_response(self) -> Response<Body> {
        let status = self.status();
        let body = match self {
            Outcome::Challenged(value) => Body::Text(value),
            Outcome::Forwarded => Body::Empty,
            Outcome::Rejected(rejection) => Body::Text(rejection.reason().to_owned()),
        };
        let mut response = Response::new(body);
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        if status == StatusCode::METHOD_NOT_ALLOWED {
            headers.insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
        }
        response
    }
}
