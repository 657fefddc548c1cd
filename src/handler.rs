//! The HTTP edge: a `lambda_http` request in, a response out, one log line per request.
//!
//! The order is the contract: an oversized body is refused before any work; the signature is
//! checked over the raw body before anything reads it; only a verified body is decompressed
//! and split; the answer is 200 only once every notification is in the queue. The handler
//! never fails: every path ends in an [`Outcome`].

use crate::body;
use crate::forward::{self, Retry};
use crate::logging::{self, Delivery};
use crate::message::{Message, QueueKind};
use crate::notification;
use crate::outcome::{Outcome, Rejection};
use crate::queue::Queue;
use crate::signature::Verifier;
use lambda_http::http::{header, Method};
use lambda_http::{Body, Request, RequestExt, Response};
use std::time::{Duration, Instant};

/// Header carrying the HMAC-SHA256 of the body. `HeaderMap` lookups ignore case.
const SIGNATURE_HEADER: &str = "x-nylas-signature";

/// Time allowed for the queue to take a request's notifications. Nylas gives up after 10 s;
/// answering 503 well before that means Nylas retries instead of timing out.
pub const QUEUE_BUDGET: Duration = Duration::from_secs(6);

/// The webhook receiver: verifies, splits and forwards.
#[derive(Debug)]
pub struct Receiver<Q> {
    verifier: Verifier,
    queue: Q,
    kind: QueueKind,
    retry: Retry,
    budget: Duration,
}

impl<Q: Queue + Sync> Receiver<Q> {
    pub fn new(verifier: Verifier, queue: Q, kind: QueueKind) -> Self {
        Self {
            verifier,
            queue,
            kind,
            retry: Retry::default(),
            budget: QUEUE_BUDGET,
        }
    }

    /// Overrides the retry policy and the queue budget (tests use short ones).
    pub fn with_limits(mut self, retry: Retry, budget: Duration) -> Self {
        self.retry = retry;
        self.budget = budget;
        self
    }

    /// Answers one request and logs one line about it.
    pub async fn handle(&self, request: Request) -> Response<Body> {
        let started = Instant::now();
        let mut delivery = Delivery::default();
        let outcome = match *request.method() {
            Method::GET => challenge(&request),
            Method::POST => self.receive(&request, &mut delivery).await,
            _ => Outcome::Rejected(Rejection::MethodNotAllowed),
        };
        logging::request(&outcome, &delivery, started.elapsed());
        outcome.into_response()
    }

    async fn receive(&self, request: &Request, delivery: &mut Delivery) -> Outcome {
        let raw: &[u8] = request.body().as_ref();
        if let Err(error) = body::check_size(raw) {
            return Outcome::Rejected(error.into());
        }
        let header_value = |name: &str| request.headers().get(name).map(|v| v.as_bytes());
        if let Err(error) = self.verifier.verify(raw, header_value(SIGNATURE_HEADER)) {
            return Outcome::Rejected(error.into());
        }
        let gzip = body::is_gzip(header_value(header::CONTENT_ENCODING.as_str()));
        let decoded = match body::decode(raw, gzip) {
            Ok(decoded) => decoded,
            Err(error) => return Outcome::Rejected(error.into()),
        };
        let notifications = notification::split(&decoded);
        *delivery = Delivery::of(&notifications);
        let messages: Vec<Message<'_>> = notifications
            .iter()
            .map(|notification| Message::new(notification, self.kind))
            .collect();
        let forwarding = forward::forward(&self.queue, &messages, self.retry);
        match tokio::time::timeout(self.budget, forwarding).await {
            Ok(Ok(report)) => {
                delivery.retried = report.retried;
                Outcome::Forwarded
            }
            Ok(Err(error)) => Outcome::Rejected(error.into()),
            Err(_elapsed) => Outcome::Rejected(Rejection::QueueTimedOut(self.budget)),
        }
    }
}

/// `GET ?challenge=<value>`: Nylas verifies the URL by expecting the value back, exactly.
fn challenge(request: &Request) -> Outcome {
    let value = request
        .query_string_parameters_ref()
        .and_then(|query| query.first("challenge"))
        .filter(|value| !value.is_empty());
    match value {
        Some(value) => Outcome::Challenged(value.to_owned()),
        None => Outcome::Rejected(Rejection::MissingChallenge),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::gzip;
    use crate::message::attribute;
    use crate::queue::memory::{MemoryQueue, Reply};
    use crate::signature::{sign, Secret};
    use lambda_http::http::{header, StatusCode};
    use std::collections::HashMap;

    const SECRET: &[u8] = b"nylas-sample-secret";
    const V3: &str = r#"{"specversion":"1.0","type":"message.created","id":"n-1","time":1717162394,"data":{"object":{"grant_id":"g-1"}}}"#;
    const V2: &str = r#"{"deltas": [{"type": "message.created", "object_data": {"account_id": "a-1"}}, {"type": "thread.replied", "object_data": {"account_id": "a-2"}}]}"#;

    fn receiver(queue: MemoryQueue) -> Receiver<MemoryQueue> {
        let retry = Retry {
            attempts: 2,
            backoff: Duration::from_millis(1),
        };
        let verifier = Verifier::new(Secret::new(SECRET), None);
        Receiver::new(verifier, queue, QueueKind::Standard)
            .with_limits(retry, Duration::from_secs(1))
    }

    fn post(body: &str, signature: Option<&str>) -> Request {
        post_body(Body::Text(body.to_owned()), signature)
    }

    fn post_body(body: Body, signature: Option<&str>) -> Request {
        let mut request = Request::new(body);
        *request.method_mut() = Method::POST;
        if let Some(signature) = signature {
            let value = signature.parse().expect("hex is a valid header value");
            request.headers_mut().insert(SIGNATURE_HEADER, value);
        }
        request
    }

    fn signed(body: &str) -> Request {
        post(body, Some(&sign(SECRET, body.as_bytes())))
    }

    fn get(query: &[(&str, &str)]) -> Request {
        let query: HashMap<String, String> = query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Request::default().with_query_string_parameters(query)
    }

    async fn answer(queue: MemoryQueue, request: Request) -> (StatusCode, String, MemoryQueue) {
        let receiver = receiver(queue);
        let response = receiver.handle(request).await;
        let body = String::from_utf8_lossy(response.body().as_ref()).into_owned();
        (response.status(), body, receiver.queue)
    }

    #[tokio::test]
    async fn challenge_is_echoed_exactly_as_plain_text() {
        let receiver = receiver(MemoryQueue::default());
        let value = "a1B2-c3_d4 + %20 \"quoted\"";
        let response = receiver.handle(get(&[("challenge", value)])).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.body().as_ref(), value.as_bytes());
        assert_eq!(response.headers()[header::CONTENT_TYPE], "text/plain");
    }

    #[tokio::test]
    async fn get_without_challenge_is_a_bad_request() {
        let (status, _, _) = answer(MemoryQueue::default(), get(&[("other", "x")])).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn get_with_empty_challenge_is_a_bad_request() {
        let (status, _, _) = answer(MemoryQueue::default(), get(&[("challenge", "")])).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn other_methods_are_not_allowed() {
        for method in [
            Method::PUT,
            Method::DELETE,
            Method::PATCH,
            Method::HEAD,
            Method::OPTIONS,
        ] {
            let mut request = signed(V3);
            *request.method_mut() = method;
            let (status, _, queue) = answer(MemoryQueue::default(), request).await;
            assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
            assert!(queue.calls().is_empty());
        }
    }

    #[tokio::test]
    async fn signed_v3_notification_is_forwarded_with_attributes() {
        let (status, _, queue) = answer(MemoryQueue::default(), signed(V3)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(queue.bodies(), vec![V3.to_owned()]);
        let attributes = &queue.attributes()[0];
        assert!(attributes.contains(&(attribute::ID, "n-1".to_owned())));
        assert!(attributes.contains(&(attribute::GRANT_ID, "g-1".to_owned())));
    }

    #[tokio::test]
    async fn signed_v2_body_is_forwarded_one_message_per_delta() {
        let (status, _, queue) = answer(MemoryQueue::default(), signed(V2)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            queue.bodies(),
            vec![
                r#"{"type": "message.created", "object_data": {"account_id": "a-1"}}"#,
                r#"{"type": "thread.replied", "object_data": {"account_id": "a-2"}}"#,
            ]
        );
    }

    #[tokio::test]
    async fn signed_body_of_unknown_shape_is_forwarded_whole() {
        let body = r#"{"surprise": true}"#;
        let (status, _, queue) = answer(MemoryQueue::default(), signed(body)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(queue.bodies(), vec![body.to_owned()]);
    }

    #[tokio::test]
    async fn binary_body_is_verified_over_its_bytes() {
        let bytes = b"\x1f\x8b\x08\x00binary\xff".to_vec();
        let signature = sign(SECRET, &bytes);
        let request = post_body(Body::Binary(bytes), Some(&signature));
        let (status, _, queue) = answer(MemoryQueue::default(), request).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            queue.attributes()[0].last(),
            Some(&(attribute::ENCODING, "base64".to_owned()))
        );
    }

    fn gzip_post(compressed: Vec<u8>, signed_over: &[u8]) -> Request {
        let signature = sign(SECRET, signed_over);
        let mut request = post_body(Body::Binary(compressed), Some(&signature));
        request.headers_mut().insert(
            header::CONTENT_ENCODING,
            "gzip".parse().expect("a valid value"),
        );
        request
    }

    #[tokio::test]
    async fn gzip_body_verified_over_compressed_bytes_is_forwarded_decompressed() {
        let compressed = gzip(V3.as_bytes());
        let request = gzip_post(compressed.clone(), &compressed);
        let (status, _, queue) = answer(MemoryQueue::default(), request).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(queue.bodies(), vec![V3.to_owned()]);
    }

    #[tokio::test]
    async fn gzip_body_signed_over_decompressed_bytes_is_forbidden() {
        let request = gzip_post(gzip(V3.as_bytes()), V3.as_bytes());
        let (status, _, queue) = answer(MemoryQueue::default(), request).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(queue.calls().is_empty());
    }

    #[tokio::test]
    async fn decompression_bomb_is_413_and_forwards_nothing() {
        let bomb = gzip(&vec![b' '; 32 * 1024 * 1024]);
        let request = gzip_post(bomb.clone(), &bomb);
        let (status, body, queue) = answer(MemoryQueue::default(), request).await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large")
        );
        assert!(queue.calls().is_empty());
    }

    #[tokio::test]
    async fn body_over_the_cap_is_413_before_the_signature_is_checked() {
        let huge = "x".repeat(body::MAX_RAW + 1);
        let (status, body, queue) = answer(MemoryQueue::default(), post(&huge, None)).await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large")
        );
        assert!(queue.calls().is_empty());
    }

    #[tokio::test]
    async fn notification_too_large_for_sqs_is_413_once_the_others_are_stored() {
        let big = "x".repeat(crate::batch::MAX_BYTES);
        let body = format!(r#"{{"deltas": [{{"type": "a"}}, "{big}"]}}"#);
        let (status, reason, queue) = answer(MemoryQueue::default(), signed(&body)).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(reason, "notification_too_large");
        assert_eq!(
            queue.bodies(),
            [r#"{"type": "a"}"#],
            "the delta that fits is stored"
        );
    }

    #[tokio::test]
    async fn missing_signature_is_unauthorized_and_forwards_nothing() {
        let (status, body, queue) = answer(MemoryQueue::default(), post(V3, None)).await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::UNAUTHORIZED, "missing_signature")
        );
        assert!(queue.calls().is_empty());
    }

    #[tokio::test]
    async fn tampered_body_is_forbidden_and_forwards_nothing() {
        let signature = sign(SECRET, V3.as_bytes());
        let tampered = V3.replace("n-1", "n-2");
        let (status, body, queue) =
            answer(MemoryQueue::default(), post(&tampered, Some(&signature))).await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::FORBIDDEN, "invalid_signature")
        );
        assert!(queue.calls().is_empty());
    }

    #[tokio::test]
    async fn malformed_signature_is_forbidden() {
        let (status, _, queue) = answer(MemoryQueue::default(), post(V3, Some("abc"))).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(queue.calls().is_empty());
    }

    #[tokio::test]
    async fn queue_failure_is_503_so_nylas_retries() {
        let (status, body, _) = answer(MemoryQueue::replying([Reply::Fail]), signed(V3)).await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, "queue_failed")
        );
    }

    #[tokio::test]
    async fn queue_that_never_answers_is_503_within_the_budget() {
        let receiver = receiver(MemoryQueue::replying([Reply::Hang]))
            .with_limits(Retry::default(), Duration::from_millis(20));
        let response = receiver.handle(signed(V3)).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.body().as_ref(), b"queue_timed_out");
    }

    #[tokio::test]
    async fn entries_failing_every_retry_are_503() {
        let fail = || Reply::FailEntries(vec![1]);
        let (status, _, _) = answer(MemoryQueue::replying([fail(), fail()]), signed(V2)).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    }

    #[tokio::test]
    async fn entry_failing_once_is_retried_and_answered_200() {
        let queue = MemoryQueue::replying([Reply::FailEntries(vec![1])]);
        let (status, _, queue) = answer(queue, signed(V2)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(queue.bodies().len(), 2);
    }

    #[tokio::test]
    async fn empty_v2_body_is_answered_200_with_nothing_to_forward() {
        let (status, _, queue) = answer(MemoryQueue::default(), signed(r#"{"deltas":[]}"#)).await;
        assert_eq!(status, StatusCode::OK);
        assert!(queue.calls().is_empty());
    }
}
