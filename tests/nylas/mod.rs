//! Nylas's side of the protocol, end to end through the function as `main.rs` runs it: the
//! challenge, the sample events of `events/`, v3 and v2 bodies and the attributes each gives.
//! A fork for another sender replaces this file and `events/` as one set (README, "Another
//! HMAC sender"); the rest of `tests/integration.rs` tests what every sender shares.

use crate::support::{self, LocalSqs, Received, Stack, SAMPLE_SECRET};
use crate::{attribute, event_body, signed_post, tests, v2_sample_queued_once};
use nylas_webhook_sqs::{sign, SENDER};
use sha2::{Digest, Sha256};

pub const TESTS: &[(&str, support::Test)] = tests![
    challenge_event_is_echoed,
    challenge_over_http_is_echoed_exactly,
    get_without_challenge_is_400,
    other_methods_are_405,
    v3_message_created_event_reaches_the_queue,
    v3_grant_created_event_reaches_the_queue,
    rest_v1_event_reaches_the_queue,
    base64_event_is_verified_over_decoded_bytes,
    v2_event_puts_one_message_per_delta,
    v2_post_with_many_deltas_reaches_the_queue_whole,
];

fn challenge_event_is_echoed(sqs: &LocalSqs) {
    let stack = Stack::start(sqs);
    let reply = stack.invoke("challenge.json");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, "bc609b38-c81f-47fb-a275-1d9bd61be301");
    assert_eq!(reply.content_type.as_deref(), Some("text/plain"));
}

fn challenge_over_http_is_echoed_exactly(sqs: &LocalSqs) {
    let stack = Stack::start(sqs);
    let reply = stack.get("/webhook?challenge=Zm9v-YmFy_0123%2B%2F%3D");
    assert_eq!((reply.status, reply.body.as_str()), (200, "Zm9v-YmFy_0123+/="));
    assert_eq!(reply.content_type.as_deref(), Some("text/plain"));
    assert!(stack.received().is_empty());
}

fn get_without_challenge_is_400(sqs: &LocalSqs) {
    let stack = Stack::start(sqs);
    assert_eq!(stack.get("/webhook").status, 400);
    assert_eq!(stack.get("/webhook?other=1").status, 400);
}

fn other_methods_are_405(sqs: &LocalSqs) {
    let stack = Stack::start(sqs);
    let body = event_body("v3-message-created.json");
    let signature = sign(SAMPLE_SECRET.as_bytes(), body.as_bytes());
    for method in ["PUT", "DELETE", "PATCH"] {
        let reply = stack.send(method, &[(SENDER.signature_header, &signature)], body.as_bytes());
        assert_eq!(reply.status, 405, "{method}");
    }
    assert!(stack.received().is_empty());
}

/// Invokes sample `event` on a stack of its own: expects 200 and, in the queue, exactly one
/// message whose body is the event's body unchanged. Returns that message.
fn forwarded_unchanged(sqs: &LocalSqs, event: &str) -> Received {
    let stack = Stack::start(sqs);
    let reply = stack.invoke(event);
    assert_eq!(reply.status, 200, "{reply:?}");
    let mut received = stack.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].body, event_body(event));
    received.remove(0)
}

fn v3_message_created_event_reaches_the_queue(sqs: &LocalSqs) {
    let mut message = forwarded_unchanged(sqs, "v3-message-created.json");
    // The invocation's request id, as the emulator made it: the receiver's log line names it.
    let request_id = message.attributes.remove("nylas-request-id").expect("the request id");
    assert_eq!(request_id.len(), 36, "a UUID: {request_id}");
    let expected = [
        ("nylas-api-version", "v3"),
        ("nylas-delivery-attempt", "1"),
        ("nylas-grant-id", "4c22d8e1-7a0b-4f3e-9c1d-5b6a7e8f9a0b"),
        ("nylas-id", "5ac1e7c6-4b4f-4f5f-8e61-2f4b0c7e1a01"),
        ("nylas-id-rule", "member"),
        ("nylas-type", "message.created"),
    ];
    let expected = expected.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    assert_eq!(message.attributes, expected);
}

fn v3_grant_created_event_reaches_the_queue(sqs: &LocalSqs) {
    let message = forwarded_unchanged(sqs, "v3-grant-created.json");
    assert_eq!(attribute(&message, "nylas-type"), Some("grant.created"));
    assert_eq!(attribute(&message, "nylas-grant-id"), Some("9e1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"));
}

fn rest_v1_event_reaches_the_queue(sqs: &LocalSqs) {
    forwarded_unchanged(sqs, "rest-v1-grant-created.json");
}

fn base64_event_is_verified_over_decoded_bytes(sqs: &LocalSqs) {
    let message = forwarded_unchanged(sqs, "v3-base64-body.json");
    assert_eq!(attribute(&message, "nylas-type"), Some("message.updated.truncated"));
    assert_eq!(attribute(&message, "nylas-encoding"), None);
}

fn v2_event_puts_one_message_per_delta(sqs: &LocalSqs) {
    let stack = Stack::start(sqs);
    assert_eq!(stack.invoke("v2-deltas.json").status, 200);
    let received = v2_sample_queued_once(&stack);
    let body = event_body("v2-deltas.json");
    for message in &received {
        assert!(body.contains(&message.body), "each delta is forwarded byte for byte");
        assert!(message.body.starts_with("{\"date\": "));
        assert_eq!(attribute(message, "nylas-api-version"), Some("v2"));
        let id = hex::encode(Sha256::digest(message.body.as_bytes()));
        assert_eq!(attribute(message, "nylas-id"), Some(id.as_str()));
    }
    assert_eq!(attribute(&received[2], "nylas-grant-id"), Some("7c1a3e5g7i9k"));
}

fn v2_post_with_many_deltas_reaches_the_queue_whole(sqs: &LocalSqs) {
    let stack = Stack::start(sqs);
    let deltas: Vec<String> = (0..95)
        .map(|i| format!(r#"{{"date": {i}, "object": "message", "type": "message.created", "object_data": {{"account_id": "acc-{i}", "note": "caf\u00e9 \"{i}\""}}}}"#))
        .collect();
    let body = format!(r#"{{"deltas": [{}]}}"#, deltas.join(", "));
    let reply = signed_post(&stack, &body);
    assert_eq!(reply.status, 200, "{reply:?}");
    let mut bodies: Vec<String> = stack.received().into_iter().map(|m| m.body).collect();
    bodies.sort();
    let mut expected = deltas.clone();
    expected.sort();
    assert_eq!(bodies, expected);
}
