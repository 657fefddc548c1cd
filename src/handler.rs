//! The HTTP edge: a `lambda_http` request in, a response out, one log line per request.
//!
//! The order is the contract: an oversized body is refused before any work; the signature is
//! checked over the raw body before anything reads it; only a verified body is inflated and
//! split; while the queue is down a verified POST gets 503 without trying it (the breaker);
//! the answer is 200 only once every notification is in the queue. The handler never fails:
//! every path ends in an [`Outcome`].

use crate::body;
use crate::breaker::Breaker;
use crate::config::ConfigError;
use crate::log::{self, Delivery};
use crate::outcome::{Outcome, Rejection};
use crate::queue::{Calls, Origin, Queue};
use crate::secret::{SecretError, Secrets};
use crate::sender::Sender;
use crate::signature;
use lambda_http::http::{header, Method};
use lambda_http::{Body, Request, RequestExt, Response};
use nylas_sqs_contract::emf;
use std::time::{Duration, Instant};

/// Time allowed for the queue to take a request's notifications. Nylas gives up after 10 s;
/// answering 503 well before that means Nylas retries instead of timing out.
pub const QUEUE_BUDGET: Duration = Duration::from_secs(6);

/// The webhook receiver: verifies, splits and forwards what `sender` signs.
#[derive(Debug)]
pub struct Receiver<Q> {
    sender: Sender,
    /// What a POST needs, or why the function does not have it.
    ready: Result<(Secrets, Q), ConfigError>,
    /// Open while the queue is down: POSTs are answered 503 at once.
    breaker: Breaker,
    budget: Duration,
}

impl<Q: Queue + Sync> Receiver<Q> {
    pub fn new(sender: Sender, secrets: Secrets, queue: Q) -> Self {
        Self {
            sender,
            ready: Ok((secrets, queue)),
            breaker: Breaker::default(),
            budget: QUEUE_BUDGET,
        }
    }

    /// A receiver that answers the challenge, and every POST with 503 until `error` is fixed
    /// and the function restarted (a deploy does both).
    pub fn not_configured(sender: Sender, error: ConfigError) -> Self {
        Self { sender, ready: Err(error), breaker: Breaker::default(), budget: QUEUE_BUDGET }
    }

    /// Answers one request and logs one line about it.
    pub async fn handle(&self, request: Request) -> Response<Body> {
        let started = Instant::now();
        let request_id = request.lambda_context_ref().map(|c| c.request_id.clone());
        let mut delivery = Delivery { request_id, ..Delivery::default() };
        let outcome = match *request.method() {
            Method::GET => self.challenge(&request),
            Method::POST => match self.receive(&request, &mut delivery).await {
                Ok(()) => Outcome::Forwarded,
                Err(rejection) => Outcome::Rejected(rejection),
            },
            _ => Outcome::Rejected(Rejection::MethodNotAllowed(self.sender.allow())),
        };
        log::request(&outcome.answer(self.sender.name), &delivery, started.elapsed());
        outcome.into_response()
    }

    async fn receive(&self, request: &Request, delivery: &mut Delivery) -> Result<(), Rejection> {
        let raw: &[u8] = request.body().as_ref();
        body::check_size(raw)?;
        let header_value = |name: &str| request.headers().get(name).map(|v| v.as_bytes());
        let sender = &self.sender;
        let signature = header_value(sender.signature_header);
        let signature = signature::parse(signature, sender.signature_prefix)?;
        let (secrets, queue) =
            self.ready.as_ref().map_err(|error| Rejection::NotConfigured(error.clone()))?;
        let (verified, reading) = secrets.verify(raw, &signature).await;
        delivery.secret_read = reading;
        if let Err(error) = verified {
            // A body API Gateway changed on the way explains a mismatch better than a secret.
            if error == SecretError::Mismatch {
                body::check_intact(raw, header_value(header::CONTENT_ENCODING.as_str()))?;
            }
            return Err(error.into());
        }
        let decoded = body::decode(raw);
        let notifications = (sender.split)(&decoded.bytes, decoded.gzip, request.headers());
        delivery.describe(&notifications);
        self.breaker.admit()?;
        let (calls, context) = (Calls::default(), request.lambda_context_ref());
        let origin = Origin {
            request_id: delivery.request_id.clone(),
            trace_header: context.and_then(|c| c.xray_trace_id.clone()),
            received_ms: emf::now_ms(),
        };
        let delivering = queue.deliver(&notifications, &origin, &calls);
        let delivered = tokio::time::timeout(self.budget, delivering)
            .await
            .map_err(|_elapsed| Rejection::QueueTimedOut(self.budget))
            .and_then(|result| result.map_err(Rejection::Queue));
        // Only the queue's calls say whether it is down: not a slow POST, nor one with none.
        if let Some(healthy) = calls.healthy() {
            self.breaker.record(healthy);
        }
        let delivered = delivered?;
        (delivery.retried, delivery.unarchived) = (delivered.retried, delivered.unarchived);
        Ok(())
    }

    /// `GET ?challenge=<value>`: the sender verifies the URL by expecting the value back.
    fn challenge(&self, request: &Request) -> Outcome {
        let Some(parameter) = self.sender.challenge else {
            return Outcome::Rejected(Rejection::MethodNotAllowed(self.sender.allow()));
        };
        let value = request
            .query_string_parameters_ref()
            .and_then(|query| query.first(parameter))
            .filter(|value| !value.is_empty());
        match value {
            Some(value) => Outcome::Challenged(value.to_owned()),
            None => Outcome::Rejected(Rejection::MissingChallenge),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::gzip;
    use crate::nylas::NYLAS;
    use crate::queue::memory::{MemoryQueue, Reply};
    use crate::queue::QueueError;
    use crate::signature::{sign, Secret, Verifier};
    use lambda_http::http::StatusCode;
    use std::collections::HashMap;

    const SECRET: &[u8] = b"nylas-sample-secret";
    const V3: &str = r#"{"specversion":"1.0","type":"message.created","id":"n-1","time":1717162394,"data":{"object":{"grant_id":"g-1"}}}"#;
    const V2: &str = r#"{"deltas": [{"type": "message.created", "object_data": {"account_id": "a-1"}}, {"type": "thread.replied", "object_data": {"account_id": "a-2"}}]}"#;

    fn receiver(queue: MemoryQueue) -> Receiver<MemoryQueue> {
        let secrets = Secrets::Fixed(Verifier::new(Secret::new(SECRET), None));
        Receiver::new(NYLAS, secrets, queue)
    }

    fn post(body: Body, signature: Option<&str>) -> Request {
        let mut request = Request::new(body);
        *request.method_mut() = Method::POST;
        if let Some(signature) = signature {
            let value = signature.parse().expect("hex is a valid header value");
            request.headers_mut().insert(NYLAS.signature_header, value);
        }
        request
    }

    fn signed(body: &str) -> Request {
        post(Body::Text(body.to_owned()), Some(&sign(SECRET, body.as_bytes())))
    }

    /// A POST of `bytes` signed over `signed_over`, saying `Content-Encoding: gzip`.
    fn gzip_post(bytes: Vec<u8>, signed_over: &[u8]) -> Request {
        let mut request = post(Body::Binary(bytes), Some(&sign(SECRET, signed_over)));
        let gzip = "gzip".parse().expect("a valid value");
        request.headers_mut().insert(header::CONTENT_ENCODING, gzip);
        request
    }

    fn get(query: &[(&str, &str)]) -> Request {
        let query: HashMap<String, String> =
            query.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Request::default().with_query_string_parameters(query)
    }

    /// The status, body and queue after `request`.
    async fn answer(queue: MemoryQueue, request: Request) -> (StatusCode, String, MemoryQueue) {
        answer_by(receiver(queue), request).await
    }

    async fn answer_by(
        receiver: Receiver<MemoryQueue>,
        request: Request,
    ) -> (StatusCode, String, MemoryQueue) {
        let response = receiver.handle(request).await;
        let body = String::from_utf8_lossy(response.body().as_ref()).into_owned();
        let queue = receiver.ready.map(|(_, queue)| queue).unwrap_or_default();
        (response.status(), body, queue)
    }

    /// Expects `request` refused with `status` and `reason`, and nothing stored.
    async fn assert_refused(request: Request, status: StatusCode, reason: &str) {
        let (got, body, queue) = answer(MemoryQueue::default(), request).await;
        assert_eq!((got, body.as_str()), (status, reason));
        assert!(queue.stored().is_empty());
    }

    #[tokio::test]
    async fn challenge_is_echoed_exactly_as_plain_text() {
        let value = "a1B2-c3_d4 + %20 \"quoted\"";
        let response = receiver(MemoryQueue::default()).handle(get(&[("challenge", value)])).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.body().as_ref(), value.as_bytes());
        assert_eq!(response.headers()[header::CONTENT_TYPE], "text/plain");
    }

    #[tokio::test]
    async fn get_without_a_challenge_or_with_an_empty_one_is_a_bad_request() {
        for query in [&[("other", "x")][..], &[("challenge", "")]] {
            assert_refused(get(query), StatusCode::BAD_REQUEST, "missing_challenge").await;
        }
    }

    #[tokio::test]
    async fn other_methods_are_not_allowed() {
        for method in [Method::PUT, Method::DELETE, Method::PATCH, Method::HEAD, Method::OPTIONS] {
            let mut request = signed(V3);
            *request.method_mut() = method;
            let response = receiver(MemoryQueue::default()).handle(request).await;
            assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
            assert_eq!(response.body().as_ref(), b"method_not_allowed");
            assert_eq!(response.headers()[header::ALLOW], "GET, POST");
        }
        let others = [signed(V3), get(&[("challenge", "c")]), get(&[])];
        for request in others {
            let response = receiver(MemoryQueue::default()).handle(request).await;
            assert!(!response.headers().contains_key(header::ALLOW));
        }
    }

    #[tokio::test]
    async fn signed_v3_notification_is_forwarded_with_its_fields() {
        let (status, _, queue) = answer(MemoryQueue::default(), signed(V3)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(queue.bodies(), [V3]);
        let stored = &queue.stored()[0];
        assert_eq!(stored.id, "n-1");
        assert_eq!(stored.grant_id.as_deref(), Some("g-1"));
    }

    #[tokio::test]
    async fn signed_v2_body_is_forwarded_one_notification_per_delta() {
        let (status, _, queue) = answer(MemoryQueue::default(), signed(V2)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            queue.bodies(),
            [
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
        assert_eq!(queue.bodies(), [body]);
    }

    #[tokio::test]
    async fn binary_body_is_verified_over_its_bytes() {
        let bytes = b"\x00binary\xff".to_vec();
        let request = post(Body::Binary(bytes.clone()), Some(&sign(SECRET, &bytes)));
        let (status, _, queue) = answer(MemoryQueue::default(), request).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(queue.stored()[0].bytes, bytes);
    }

    #[tokio::test]
    async fn gzip_body_verified_over_compressed_bytes_is_forwarded_inflated() {
        let compressed = gzip(V3.as_bytes());
        let request = gzip_post(compressed.clone(), &compressed);
        let (status, _, queue) = answer(MemoryQueue::default(), request).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(queue.bodies(), [V3]);
    }

    #[tokio::test]
    async fn gzip_body_without_content_encoding_is_inflated_too() {
        let compressed = gzip(V3.as_bytes());
        let request = post(Body::Binary(compressed.clone()), Some(&sign(SECRET, &compressed)));
        let (status, _, queue) = answer(MemoryQueue::default(), request).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(queue.bodies(), [V3]);
    }

    #[tokio::test]
    async fn gzip_body_signed_over_inflated_bytes_matches_no_secret() {
        let request = gzip_post(gzip(V3.as_bytes()), V3.as_bytes());
        let unavailable = StatusCode::SERVICE_UNAVAILABLE;
        assert_refused(request, unavailable, "signature_mismatch").await;
    }

    #[tokio::test]
    async fn gzip_body_api_gateway_turned_into_text_is_503_body_mangled() {
        let compressed = gzip(V3.as_bytes());
        let as_text = String::from_utf8_lossy(&compressed).into_owned().into_bytes();
        let request = gzip_post(as_text, &compressed);
        assert_refused(request, StatusCode::SERVICE_UNAVAILABLE, "body_mangled").await;
    }

    #[tokio::test]
    async fn decompression_bomb_is_stored_as_it_came() {
        let bomb = gzip(&vec![b' '; 32 * 1024 * 1024]);
        let request = gzip_post(bomb.clone(), &bomb);
        let (status, _, queue) = answer(MemoryQueue::default(), request).await;
        assert_eq!(status, StatusCode::OK);
        assert!(queue.stored()[0].bytes == bomb, "stored compressed");
    }

    #[tokio::test]
    async fn body_over_the_cap_is_413_before_the_signature_is_checked() {
        let huge = Body::Text("x".repeat(body::MAX_RAW + 1));
        assert_refused(post(huge, None), StatusCode::PAYLOAD_TOO_LARGE, "body_too_large").await;
    }

    #[tokio::test]
    async fn missing_signature_is_unauthorized_and_forwards_nothing() {
        let request = post(Body::Text(V3.to_owned()), None);
        assert_refused(request, StatusCode::UNAUTHORIZED, "missing_signature").await;
    }

    #[tokio::test]
    async fn malformed_signature_is_forbidden() {
        let request = post(Body::Text(V3.to_owned()), Some("abc"));
        assert_refused(request, StatusCode::FORBIDDEN, "malformed_signature").await;
    }

    #[tokio::test]
    async fn signature_matching_no_secret_is_503_so_nylas_retries_once_it_is_stored() {
        let signature = sign(SECRET, V3.as_bytes());
        let tampered = Body::Text(V3.replace("n-1", "n-2"));
        let request = post(tampered, Some(&signature));
        assert_refused(request, StatusCode::SERVICE_UNAVAILABLE, "signature_mismatch").await;
    }

    #[tokio::test]
    async fn not_configured_function_answers_the_challenge_and_503_to_a_post() {
        let error = ConfigError::Missing("QUEUE_URL", "a URL");
        let receiver = || Receiver::<MemoryQueue>::not_configured(NYLAS, error.clone());
        let (status, body, _) = answer_by(receiver(), get(&[("challenge", "c-1")])).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "c-1"));
        let (status, body, _) = answer_by(receiver(), signed(V3)).await;
        assert_eq!((status, body.as_str()), (StatusCode::SERVICE_UNAVAILABLE, "not_configured"));
        let unsigned = post(Body::Text(V3.to_owned()), None);
        let (status, _, _) = answer_by(receiver(), unsigned).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }

    #[tokio::test]
    async fn queue_failures_are_503_so_nylas_retries() {
        let failures = [
            (QueueError::Unavailable("down".to_owned()), "queue_failed"),
            (QueueError::StillRefused { failed: 1, attempts: 3 }, "queue_failed"),
            (QueueError::Refused("KMS.DisabledException".to_owned()), "queue_refused"),
        ];
        for (error, reason) in failures {
            let queue = MemoryQueue::replying([Reply::Fail(error)]);
            let (status, body, _) = answer(queue, signed(V3)).await;
            assert_eq!((status, body.as_str()), (StatusCode::SERVICE_UNAVAILABLE, reason));
        }
    }

    #[tokio::test]
    async fn notification_the_queue_can_never_take_is_413() {
        let too_large = QueueError::TooLarge { index: 1, size: 2_000_000, limit: 1_048_576 };
        let queue = MemoryQueue::replying([Reply::Fail(too_large)]);
        let (status, body, _) = answer(queue, signed(V2)).await;
        let expected = (StatusCode::PAYLOAD_TOO_LARGE, "notification_too_large");
        assert_eq!((status, body.as_str()), expected);
    }

    #[tokio::test]
    async fn queue_that_never_answers_is_503_within_the_budget() {
        let mut receiver = receiver(MemoryQueue::replying([Reply::Hang]));
        receiver.budget = Duration::from_millis(20);
        let response = receiver.handle(signed(V3)).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.body().as_ref(), b"queue_timed_out");
    }

    /// The receiver's answers to `requests`, one after another, as (status, body).
    async fn answers(
        receiver: &Receiver<MemoryQueue>,
        requests: Vec<Request>,
    ) -> Vec<(u16, String)> {
        let mut answers = Vec::new();
        for request in requests {
            let response = receiver.handle(request).await;
            let body = String::from_utf8_lossy(response.body().as_ref()).into_owned();
            answers.push((response.status().as_u16(), body));
        }
        answers
    }

    fn stored_ids(receiver: &Receiver<MemoryQueue>) -> Vec<String> {
        let (_, queue) = receiver.ready.as_ref().expect("configured");
        queue.stored().into_iter().map(|s| s.id).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn while_the_queue_is_down_posts_get_503_without_trying_it_until_a_probe_succeeds() {
        let down = || Reply::Fail(QueueError::Unavailable("down".to_owned()));
        let receiver = receiver(MemoryQueue::replying([down(), down()]));
        let failed = (503, "queue_failed".to_owned());
        let refused = (503, "queue_down".to_owned());
        let first = answers(&receiver, vec![signed(V3), signed(V3), signed(V3)]).await;
        assert_eq!(first, [failed.clone(), refused.clone(), refused.clone()]);
        tokio::time::advance(crate::breaker::PROBE_EVERY).await;
        let probe = answers(&receiver, vec![signed(V3), signed(V3)]).await;
        assert_eq!(probe, [failed, refused], "one probe, which fails");
        tokio::time::advance(crate::breaker::PROBE_EVERY).await;
        let back = answers(&receiver, vec![signed(V3), signed(V3)]).await;
        assert_eq!(back, [(200, String::new()), (200, String::new())]);
        assert_eq!(stored_ids(&receiver), ["n-1", "n-1"], "stored once per 200");
    }

    #[tokio::test(start_paused = true)]
    async fn a_post_that_runs_out_of_time_while_every_call_succeeds_leaves_the_breaker_closed() {
        let mut receiver = receiver(MemoryQueue::replying([Reply::Hang]));
        receiver.budget = Duration::from_millis(20);
        let got = answers(&receiver, vec![signed(V3), signed(V3)]).await;
        let expected = [(503, "queue_timed_out"), (200, "")];
        assert_eq!(got, expected.map(|(s, b)| (s, b.to_owned())));
    }

    /// 200 deltas of one account through a queue taking 0.45 s a batch of 10 (a FIFO group's
    /// batches go one after another): past the 6 s budget, so 503, with 130 stored. Every call
    /// succeeded, so the breaker stays closed: another POST 1 s later is stored, and the POST
    /// sent again is tried, not refused as if the queue were down.
    #[tokio::test(start_paused = true)]
    async fn a_slow_post_whose_calls_all_succeed_is_tried_again_not_refused() {
        let deltas: Vec<String> = (0..200)
            .map(|i| format!(r#"{{"type": "message.created", "n": {i}, "object_data": {{"account_id": "a-1"}}}}"#))
            .collect();
        let body = format!(r#"{{"deltas": [{}]}}"#, deltas.join(", "));
        let slow = || Reply::Slow(Duration::from_millis(450));
        let receiver = receiver(MemoryQueue::replying([slow(), slow(), slow()]));
        let first = answers(&receiver, vec![signed(&body)]).await;
        assert_eq!(first, [(503, "queue_timed_out".to_owned())]);
        assert_eq!(stored_ids(&receiver).len(), 130);
        tokio::time::advance(Duration::from_secs(1)).await;
        let other = answers(&receiver, vec![signed(V3)]).await;
        assert_eq!(other, [(200, String::new())], "not refused");
        tokio::time::advance(Duration::from_secs(1)).await;
        let again = answers(&receiver, vec![signed(&body)]).await;
        assert_eq!(again, [(503, "queue_timed_out".to_owned())], "tried again");
        tokio::time::advance(Duration::from_secs(1)).await;
        let third = answers(&receiver, vec![signed(&body)]).await;
        assert_eq!(third, [(200, String::new())]);
        let (_, queue) = receiver.ready.as_ref().expect("configured");
        let bodies = queue.bodies();
        assert_eq!(bodies[bodies.len() - 200..], deltas, "every delta, in order");
    }

    #[tokio::test(start_paused = true)]
    async fn a_probe_that_makes_no_call_leaves_the_breaker_open() {
        let down = Reply::Fail(QueueError::Unavailable("down".to_owned()));
        let receiver = receiver(MemoryQueue::replying([down]));
        let got = answers(&receiver, vec![signed(V3)]).await;
        assert_eq!(got, [(503, "queue_failed".to_owned())]);
        tokio::time::advance(crate::breaker::PROBE_EVERY).await;
        let empty = answers(&receiver, vec![signed(r#"{"deltas": []}"#), signed(V3)]).await;
        let expected = [(200, ""), (503, "queue_down")];
        assert_eq!(empty, expected.map(|(s, b)| (s, b.to_owned())));
    }

    #[tokio::test(start_paused = true)]
    async fn an_open_breaker_still_checks_the_signature_first() {
        let down = Reply::Fail(QueueError::Refused("KMS.DisabledException".to_owned()));
        let receiver = receiver(MemoryQueue::replying([down]));
        let unsigned = post(Body::Text(V3.to_owned()), None);
        let got = answers(&receiver, vec![signed(V3), unsigned, signed(V3)]).await;
        let expected = [(503, "queue_refused"), (401, "missing_signature"), (503, "queue_down")];
        assert_eq!(got, expected.map(|(s, b)| (s, b.to_owned())));
    }

    #[tokio::test(start_paused = true)]
    async fn a_notification_too_large_for_the_queue_leaves_the_breaker_closed() {
        let too_large = QueueError::TooLarge { index: 0, size: 2_000_000, limit: 1_048_576 };
        let receiver = receiver(MemoryQueue::replying([Reply::Fail(too_large)]));
        let got = answers(&receiver, vec![signed(V3), signed(V3)]).await;
        let expected = [(413, "notification_too_large"), (200, "")];
        assert_eq!(got, expected.map(|(s, b)| (s, b.to_owned())));
    }

    #[tokio::test]
    async fn empty_v2_body_is_answered_200_with_nothing_to_forward() {
        let (status, _, queue) = answer(MemoryQueue::default(), signed(r#"{"deltas":[]}"#)).await;
        assert_eq!(status, StatusCode::OK);
        assert!(queue.stored().is_empty());
    }
}
