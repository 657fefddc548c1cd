//! Integration tests: the function binary under the Lambda Runtime API emulator
//! (`cargo lambda watch --only-lambda-apis`), forwarding to a real SQS-compatible server
//! (moto) over HTTP, driven by the sample events in `events/` and by plain HTTP requests.
//!
//! They run under `make test` (which sets `NYLAS_INTEGRATION=1` and installs both tools into
//! `.venv`) and in CI (`CI=true`); when a tool is missing there, the run fails and names it.
//! A plain `cargo test` skips them and says how to run them. Each test gets its own emulator,
//! function process and queue, so tests run in parallel without seeing each other's messages.

mod nylas;
mod support;

use nylas_webhook_sqs::{sign, SENDER};
use sha2::{Digest, Sha256};
use std::process::{Command, ExitCode};
use std::time::Duration;
use support::proxy::{Fault, FaultyProxy};
use support::{tool, LocalSqs, Received, Stack, SAMPLE_SECRET};

const TESTS: &[(&str, support::Test)] = tests![
    signature_header_and_hex_in_any_case_verify,
    tampered_event_is_503_and_forwards_nothing,
    unsigned_event_is_401_and_forwards_nothing,
    wrong_but_well_formed_mac_is_503_and_malformed_one_403,
    missing_queue_answers_503,
    sqs_certificate_outside_the_platform_store_is_trusted_through_ssl_cert_file,
    fifo_queue_collapses_a_retried_delivery,
    logs_hold_neither_secret_nor_content,
    missing_queue_url_answers_the_challenge_and_503_to_a_post,
    sqs_that_never_answers_gets_503,
    sqs_answering_500_gets_503,
    entry_failing_every_time_gets_503,
    entry_failing_once_is_retried_and_answered_200,
    burst_through_flaky_sqs_loses_nothing_that_got_200,
    gzip_event_is_verified_then_decompressed,
    gzip_bomb_event_is_stored_compressed,
    gzip_event_without_content_encoding_is_inflated,
    gzip_event_api_gateway_turned_into_text_is_503_body_mangled,
    notification_over_one_mebibyte_is_stored_gzip_compressed,
    compressed_delivery_over_one_mebibyte_is_stored_as_nylas_compressed_it,
    entry_refused_as_the_senders_fault_gets_503_at_once,
    three_hundred_deltas_through_a_slow_sqs_answer_within_the_budget,
    stored_secret_is_used_within_a_minute_and_the_previous_one_still_verifies,
    secret_that_does_not_exist_yet_answers_the_challenge_and_503_to_a_post,
    rotation_in_a_stream_of_nylas_deliveries_loses_nothing,
    binary_event_is_forwarded_base64_encoded,
    hostile_query_strings_get_an_answer_not_a_failed_invocation,
    public_test_secret_left_as_previous_stops_verifying_after_its_time_to_live,
    revoked_previous_secret_verifies_nothing,
    secret_stored_as_json_is_read_from_webhook_secret,
    fifo_queue_keeps_each_account_s_order,
    sqs_outage_is_answered_at_once_and_nothing_is_lost_or_stored_twice_after_it,
    six_mebibyte_v2_body_of_many_deltas_is_stored_whole_and_exact,
    deleted_secret_stops_verifying_at_the_next_read,
    hostile_hosts_and_header_values_get_an_answer_and_a_signed_post_is_stored,
    two_identical_deltas_are_two_messages_and_a_resend_adds_nothing_on_fifo,
    slow_fifo_post_is_stored_whole_on_a_resend_and_refuses_no_other,
];

fn main() -> ExitCode {
    let tests: Vec<_> = TESTS.iter().chain(nylas::TESTS).copied().collect();
    support::run("integration", tests.leak())
}

/// A sample event from `events/`.
fn sample_event(event: &str) -> serde_json::Value {
    let path = support::project_dir().join("events").join(event);
    let text = std::fs::read_to_string(path).expect("the sample event exists");
    serde_json::from_str(&text).expect("the sample event is JSON")
}

/// The body of a sample event, as the function sees it (decoded if base64).
fn event_body(event: &str) -> String {
    let event = sample_event(event);
    let body = event["body"].as_str().expect("the sample event has a body");
    if event["isBase64Encoded"] == true {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD.decode(body).expect("a base64 body");
        String::from_utf8(bytes).expect("the sample body is UTF-8")
    } else {
        body.to_owned()
    }
}

fn signed_post(stack: &Stack, body: &str) -> support::Reply {
    let signature = sign(SAMPLE_SECRET.as_bytes(), body.as_bytes());
    stack.send(
        "POST",
        &[("content-type", "application/json"), (SENDER.signature_header, &signature)],
        body.as_bytes(),
    )
}

/// The three deltas of `events/v2-deltas.json`, each queued once, in the body's order.
fn v2_sample_queued_once(stack: &Stack) -> Vec<Received> {
    let body = event_body("v2-deltas.json");
    let mut received = stack.received();
    received.sort_by_key(|m| body.find(&m.body));
    let types: Vec<_> = received.iter().map(|m| attribute(m, "nylas-type")).collect();
    let expected = ["message.created", "message.opened", "thread.replied"].map(Some);
    assert_eq!(types, expected, "each delta exactly once");
    received
}

fn attribute<'a>(message: &'a Received, name: &str) -> Option<&'a str> {
    message.attributes.get(name).map(String::as_str)
}

fn signature_header_and_hex_in_any_case_verify(sqs: &LocalSqs) {
    let stack = Stack::start(sqs);
    let body = event_body("v3-grant-created.json");
    let signature = sign(SAMPLE_SECRET.as_bytes(), body.as_bytes()).to_uppercase();
    let reply = stack.send("POST", &[("X-NYLAS-SIGNATURE", &signature)], body.as_bytes());
    assert_eq!(reply.status, 200);
    assert_eq!(stack.received().len(), 1);
}

/// Invokes `event`, expects it refused with `status` and `reason`, and nothing queued.
fn assert_refused(sqs: &LocalSqs, event: &str, status: u16, reason: &str) {
    let stack = Stack::start(sqs);
    let reply = stack.invoke(event);
    assert_eq!((reply.status, reply.body.as_str()), (status, reason));
    assert!(stack.received().is_empty());
}

fn tampered_event_is_503_and_forwards_nothing(sqs: &LocalSqs) {
    assert_refused(sqs, "v3-tampered.json", 503, "signature_mismatch");
}

fn unsigned_event_is_401_and_forwards_nothing(sqs: &LocalSqs) {
    assert_refused(sqs, "v3-unsigned.json", 401, "missing_signature");
}

fn wrong_but_well_formed_mac_is_503_and_malformed_one_403(sqs: &LocalSqs) {
    let stack = Stack::start(sqs);
    let body = event_body("v3-message-created.json");
    let signature = sign(b"some-other-secret", body.as_bytes());
    let reply = stack.send("POST", &[(SENDER.signature_header, &signature)], body.as_bytes());
    assert_eq!((reply.status, reply.body.as_str()), (503, "signature_mismatch"));
    let truncated = &sign(SAMPLE_SECRET.as_bytes(), body.as_bytes())[..40];
    let reply = stack.send("POST", &[(SENDER.signature_header, truncated)], body.as_bytes());
    assert_eq!((reply.status, reply.body.as_str()), (403, "malformed_signature"));
    assert!(stack.received().is_empty());
}

fn missing_queue_answers_503(sqs: &LocalSqs) {
    let stack = Stack::forwarding_to(sqs, sqs.missing_queue_url());
    let reply = stack.invoke("v3-message-created.json");
    assert_eq!((reply.status, reply.body.as_str()), (503, "queue_failed"));
    let logs = stack.logs();
    assert!(logs.contains(r#""reason":"queue_failed""#), "{logs}");
}

/// The function trusts the platform's root store, or the one `SSL_CERT_FILE` names, as the
/// AWS SDK does. A moto with a self-signed certificate stands in for an endpoint no public CA
/// certified: refused by default, trusted once `SSL_CERT_FILE` names its certificate.
fn sqs_certificate_outside_the_platform_store_is_trusted_through_ssl_cert_file(_: &LocalSqs) {
    let (tls_sqs, certificate) = LocalSqs::start_tls().expect("moto serves HTTPS");
    let queue_url = tls_sqs.create_queue();
    let refused = Stack::forwarding_to(&tls_sqs, queue_url.clone());
    let reply = refused.invoke("v3-message-created.json");
    assert_eq!((reply.status, reply.body.as_str()), (503, "queue_failed"));
    assert!(tls_sqs.receive_all(&queue_url).is_empty());
    drop(refused);
    let trusting = Stack::trusting(&tls_sqs, queue_url.clone(), &certificate);
    assert_eq!(trusting.invoke("v3-message-created.json").status, 200);
    assert_eq!(tls_sqs.receive_all(&queue_url).len(), 1);
}

fn fifo_queue_collapses_a_retried_delivery(sqs: &LocalSqs) {
    let stack = Stack::forwarding_to(sqs, sqs.create_fifo_queue());
    assert_eq!(stack.invoke("v3-message-created.json").status, 200);
    assert_eq!(stack.invoke("v3-message-created.json").status, 200);
    assert_eq!(stack.invoke("v2-deltas.json").status, 200);
    assert_eq!(stack.invoke("v2-deltas.json").status, 200);
    let received = stack.received();
    // Groups go side by side: only each group's own order is kept.
    let mut groups: Vec<_> = received.iter().map(|m| m.group_id.as_deref()).collect();
    groups.sort();
    assert_eq!(
        groups,
        [
            Some("4c22d8e1-7a0b-4f3e-9c1d-5b6a7e8f9a0b"),
            Some("7c1a3e5g7i9k"),
            Some("92e2b4e1c3d5f7a9"),
            Some("92e2b4e1c3d5f7a9"),
        ],
        "one message per notification, once each, grouped by grant or account"
    );
}

/// A stack whose SQS requests go through a proxy injecting `fault`.
fn faulty(sqs: &LocalSqs, fault: Fault) -> (Stack<'_>, FaultyProxy) {
    let proxy = FaultyProxy::start(&sqs.endpoint, fault);
    (Stack::through(sqs, sqs.create_queue(), &proxy.endpoint, 1), proxy)
}

fn sqs_that_never_answers_gets_503(sqs: &LocalSqs) {
    let (stack, _proxy) = faulty(sqs, Fault::Hang);
    let reply = stack.invoke("v3-message-created.json");
    assert_eq!(reply.status, 503, "{reply:?}");
    assert!(stack.received().is_empty());
}

fn sqs_answering_500_gets_503(sqs: &LocalSqs) {
    let (stack, _proxy) = faulty(sqs, Fault::ServerError);
    let reply = stack.invoke("v2-deltas.json");
    assert_eq!((reply.status, reply.body.as_str()), (503, "queue_failed"));
    assert!(stack.received().is_empty());
}

fn entry_failing_every_time_gets_503(sqs: &LocalSqs) {
    let (stack, proxy) = faulty(sqs, Fault::FailFirstEntryAlways);
    let reply = stack.invoke("v2-deltas.json");
    assert_eq!((reply.status, reply.body.as_str()), (503, "queue_failed"));
    assert_eq!(proxy.batches(), 3, "the refused entry is sent three times in all");
}

fn entry_failing_once_is_retried_and_answered_200(sqs: &LocalSqs) {
    let (stack, proxy) = faulty(sqs, Fault::FailFirstEntryOnce);
    let reply = stack.invoke("v2-deltas.json");
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(proxy.batches(), 2);
    v2_sample_queued_once(&stack);
    assert!(stack.logs().contains(r#""retried":1"#), "{}", stack.logs());
}

/// The burst: this many v3 POSTs, and v2 POSTs of ten deltas each, spread over several
/// stacks (emulator, instances, queue). Several queues, because moto's cost per call grows
/// with the messages a queue holds.
const BURST_V3: usize = 600;
const BURST_V2: usize = 40;
const STACKS: usize = 5;
const INSTANCES_PER_STACK: usize = 2;
const SENDERS: usize = 16;
/// Nylas's v3 attempts per notification.
const ATTEMPTS: usize = 3;

/// One POST of the burst: the stack it goes to, its body, and the ids of its notifications.
struct Post {
    stack: usize,
    body: String,
    ids: Vec<String>,
}

fn burst_posts() -> Vec<Post> {
    let v3 = (0..BURST_V3).map(|i| {
        let id = format!("burst-v3-{i}");
        let body = format!(
            r#"{{"specversion":"1.0","type":"message.created","id":"{id}","data":{{"object":{{"grant_id":"g-{}"}}}}}}"#,
            i % 7
        );
        Post { stack: i % STACKS, body, ids: vec![id] }
    });
    let v2 = (0..BURST_V2).map(|i| {
        let ids: Vec<String> = (0..10).map(|j| format!("burst-v2-{i}-{j}")).collect();
        let deltas: Vec<String> = ids
            .iter()
            .map(|id| format!(r#"{{"id": "{id}", "type": "message.created", "object_data": {{"account_id": "a-{i}"}}}}"#))
            .collect();
        let body = format!(r#"{{"deltas": [{}]}}"#, deltas.join(", "));
        Post { stack: i % STACKS, body, ids }
    });
    v3.chain(v2).collect()
}

/// Sends `post` as Nylas would: up to three attempts while the answer is 503.
/// Returns the last status and the attempts made.
fn deliver(stack: &Stack, post: &Post) -> (u16, usize) {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let status = signed_post(stack, &post.body).status;
        if status != 503 || attempts == ATTEMPTS {
            return (status, attempts);
        }
        // Nylas backs off between attempts (minutes; here, moments).
        std::thread::sleep(Duration::from_millis(250 << attempts));
    }
}

fn burst_through_flaky_sqs_loses_nothing_that_got_200(sqs: &LocalSqs) {
    let proxy = FaultyProxy::start(&sqs.endpoint, Fault::Flaky);
    let stacks: Vec<Stack> = (0..STACKS)
        .map(|_| Stack::through(sqs, sqs.create_queue(), &proxy.endpoint, INSTANCES_PER_STACK))
        .collect();
    let posts = burst_posts();
    let sent: usize = posts.iter().map(|p| p.ids.len()).sum();
    let work = std::sync::Mutex::new(posts.iter());
    let started = std::time::Instant::now();
    let results: Vec<(&Post, u16, usize)> = std::thread::scope(|scope| {
        let senders: Vec<_> = (0..SENDERS)
            .map(|_| {
                scope.spawn(|| {
                    let mut results = Vec::new();
                    while let Some(post) = work.lock().expect("no panics").next() {
                        let (status, attempts) = deliver(&stacks[post.stack], post);
                        results.push((post, status, attempts));
                    }
                    results
                })
            })
            .collect();
        senders.into_iter().flat_map(|s| s.join().expect("a sender finished")).collect()
    });
    let seconds = started.elapsed().as_secs_f64();
    let received: Vec<Received> = stacks.iter().flat_map(|stack| stack.received()).collect();
    let mut in_queue = std::collections::HashMap::<String, usize>::new();
    for message in &received {
        let body: serde_json::Value = serde_json::from_str(&message.body).expect("JSON bodies");
        let id = body["id"].as_str().expect("an id").to_owned();
        *in_queue.entry(id).or_default() += 1;
    }
    let accepted = results.iter().filter(|r| r.1 == 200).flat_map(|r| &r.0.ids);
    let lost: Vec<&String> = accepted.filter(|id| !in_queue.contains_key(*id)).collect();
    let retried: usize = results.iter().map(|r| r.2 - 1).sum();
    let given_up: usize = results.iter().filter(|r| r.1 != 200).map(|r| r.0.ids.len()).sum();
    let duplicates = received.len() - in_queue.len();
    println!(
        "burst: {sent} notifications in {} POSTs from {SENDERS} senders to {} instances in \
         {seconds:.1} s; {} SendMessageBatch calls through the flaky proxy; {retried} POSTs \
         retried after a 503; {given_up} notifications still 503 after {ATTEMPTS} attempts; \
         {duplicates} duplicates in the queues; {} lost",
        results.len(),
        STACKS * INSTANCES_PER_STACK,
        proxy.batches(),
        lost.len()
    );
    assert!(lost.is_empty(), "answered 200 but not in the queue: {lost:?}");
    assert_eq!(results.len(), BURST_V3 + BURST_V2);
    assert!(results.iter().all(|r| r.1 == 200 || r.1 == 503), "only 200 or 503");
    assert!(sent >= 1_000);
}

/// An HTTP API event carrying `bytes` base64-encoded, as API Gateway hands binary bodies over.
fn binary_event(bytes: &[u8], signature: &str, gzip: bool) -> serde_json::Value {
    use base64::Engine;
    let mut event = sample_event("v3-message-created.json");
    event["body"] = base64::engine::general_purpose::STANDARD.encode(bytes).into();
    event["isBase64Encoded"] = true.into();
    event["headers"][SENDER.signature_header.to_ascii_lowercase()] = signature.into();
    if gzip {
        event["headers"]["content-encoding"] = "gzip".into();
    }
    event
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).expect("writing to a Vec cannot fail");
    encoder.finish().expect("writing to a Vec cannot fail")
}

/// Invokes a stack of its own with `bytes` as a binary body signed with the sample secret
/// (and `Content-Encoding: gzip` if `says_gzip`); expects 200 and one message, and returns it.
fn stored_from_binary(sqs: &LocalSqs, bytes: &[u8], says_gzip: bool) -> Received {
    let stack = Stack::start(sqs);
    let signature = sign(SAMPLE_SECRET.as_bytes(), bytes);
    let reply = stack.invoke_event(&binary_event(bytes, &signature, says_gzip));
    assert_eq!(reply.status, 200, "{reply:?}");
    let mut received = stack.received();
    assert_eq!(received.len(), 1);
    received.remove(0)
}

fn gzip_event_is_verified_then_decompressed(sqs: &LocalSqs) {
    let body = event_body("v3-message-created.json");
    assert_eq!(stored_from_binary(sqs, &gzip(body.as_bytes()), true).body, body);
}

fn gzip_bomb_event_is_stored_compressed(sqs: &LocalSqs) {
    let bomb = gzip(&vec![b'{'; 64 * 1024 * 1024]);
    let message = stored_from_binary(sqs, &bomb, true);
    assert_eq!(attribute(&message, "nylas-encoding"), Some("gzip+base64"));
    assert!(decode_base64(&message.body) == bomb, "Nylas's gzip, as it came");
}

fn gzip_event_without_content_encoding_is_inflated(sqs: &LocalSqs) {
    let body = event_body("v3-message-created.json");
    assert_eq!(stored_from_binary(sqs, &gzip(body.as_bytes()), false).body, body);
}

/// An API Gateway that treats a gzip body as text hands the function its bytes with every
/// invalid sequence replaced by U+FFFD: the signature cannot match, and the log line says
/// which setting to fix.
fn gzip_event_api_gateway_turned_into_text_is_503_body_mangled(sqs: &LocalSqs) {
    let stack = Stack::start(sqs);
    let compressed = gzip(event_body("v3-message-created.json").as_bytes());
    let signature = sign(SAMPLE_SECRET.as_bytes(), &compressed);
    let mut event = binary_event(&compressed, &signature, true);
    event["body"] = String::from_utf8_lossy(&compressed).into_owned().into();
    event["isBase64Encoded"] = false.into();
    let reply = stack.invoke_event(&event);
    assert_eq!((reply.status, reply.body.as_str()), (503, "body_mangled"));
    assert!(stack.received().is_empty());
    assert!(stack.logs().contains("binaryMediaTypes"), "{}", stack.logs());
}

/// A v3 `message.created` of at least `size` bytes, as text.
fn large_v3(size: usize) -> String {
    let filler = "<p>caf\u{e9}, the report is attached</p>".repeat(size / 36 + 1);
    format!(
        r#"{{"specversion":"1.0","type":"message.created","id":"large-1","data":{{"object":{{"grant_id":"g-1","body":"{filler}"}}}}}}"#
    )
}

fn decode_base64(text: &str) -> Vec<u8> {
    use base64::Engine;
    let decoded = base64::engine::general_purpose::STANDARD.decode(text);
    decoded.expect("a base64 body")
}

fn inflate(bytes: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut inflated = Vec::new();
    let mut decoder = flate2::read::GzDecoder::new(bytes);
    decoder.read_to_end(&mut inflated).expect("gzip");
    inflated
}

fn notification_over_one_mebibyte_is_stored_gzip_compressed(sqs: &LocalSqs) {
    let stack = Stack::start(sqs);
    let body = large_v3(1_536 * 1024);
    let reply = signed_post(&stack, &body);
    assert_eq!(reply.status, 200, "{reply:?}");
    let received = stack.received();
    assert_eq!(received.len(), 1);
    assert_eq!(attribute(&received[0], "nylas-encoding"), Some("gzip+base64"));
    assert_eq!(attribute(&received[0], "nylas-id"), Some("large-1"));
    assert_eq!(attribute(&received[0], "nylas-grant-id"), Some("g-1"));
    assert!(inflate(&decode_base64(&received[0].body)) == body.as_bytes());
}

fn compressed_delivery_over_one_mebibyte_is_stored_as_nylas_compressed_it(sqs: &LocalSqs) {
    let compressed = gzip(large_v3(1_536 * 1024).as_bytes());
    let message = stored_from_binary(sqs, &compressed, true);
    assert_eq!(attribute(&message, "nylas-encoding"), Some("gzip+base64"));
    assert_eq!(attribute(&message, "nylas-type"), Some("message.created"));
    assert!(decode_base64(&message.body) == compressed, "Nylas's own gzip bytes");
}

fn binary_event_is_forwarded_base64_encoded(sqs: &LocalSqs) {
    let bytes = b"\x00\xff\xfe binary \x01";
    let message = stored_from_binary(sqs, bytes, false);
    assert_eq!(attribute(&message, "nylas-encoding"), Some("base64"));
    assert_eq!(attribute(&message, "nylas-api-version"), Some("unknown"));
    assert_eq!(decode_base64(&message.body), bytes);
}

fn logs_hold_neither_secret_nor_content(sqs: &LocalSqs) {
    let stack = Stack::start(sqs);
    let body = r#"{"specversion":"1.0","type":"message.created","id":"log-check","data":{"object":{"grant_id":"g","subject":"CONTENT-MARKER-7f3a"}}}"#;
    assert_eq!(signed_post(&stack, body).status, 200);
    let tampered = body.replace("log-check", "log-check-2");
    let signature = sign(SAMPLE_SECRET.as_bytes(), body.as_bytes());
    let reply = stack.send("POST", &[(SENDER.signature_header, &signature)], tampered.as_bytes());
    assert_eq!((reply.status, reply.body.as_str()), (503, "signature_mismatch"));
    let logs = stack.logs();
    assert_eq!(logs.lines().count(), 2, "one line per request: {logs}");
    assert!(logs.contains(r#""nylas_id":"log-check""#), "{logs}");
    assert!(!logs.contains(SAMPLE_SECRET));
    assert!(!logs.contains("CONTENT-MARKER"));
    assert!(!logs.contains(&signature));
}

fn missing_queue_url_answers_the_challenge_and_503_to_a_post(sqs: &LocalSqs) {
    let mut stack = Stack::with_env(sqs, &[("QUEUE_URL", "")]);
    assert_eq!(stack.invoke("challenge.json").status, 200);
    let reply = stack.invoke("v3-message-created.json");
    assert_eq!((reply.status, reply.body.as_str()), (503, "not_configured"));
    assert!(stack.functions_running());
    let logs = stack.logs();
    let naming = logs.lines().filter(|l| l.contains("QUEUE_URL is not set"));
    assert_eq!(naming.count(), 2, "one line at start, and the POST's: {logs}");
    assert!(!logs.contains("panicked"), "{logs}");
}

fn entry_refused_as_the_senders_fault_gets_503_at_once(sqs: &LocalSqs) {
    let (stack, proxy) = faulty(sqs, Fault::SenderFaultFirstEntry);
    let reply = stack.invoke("v2-deltas.json");
    assert_eq!((reply.status, reply.body.as_str()), (503, "queue_refused"));
    assert_eq!(proxy.batches(), 1, "not sent again: sending cannot fix it");
    assert!(stack.logs().contains("InvalidParameterValue"), "{}", stack.logs());
}

/// Nylas waits 10 s and the function gives the queue 6: a v2 POST of 300 deltas (30 batches)
/// over an SQS that takes 0.4 s a call answers in time only with batches sent side by side.
fn three_hundred_deltas_through_a_slow_sqs_answer_within_the_budget(sqs: &LocalSqs) {
    let (stack, proxy) = faulty(sqs, Fault::Delay(Duration::from_millis(400)));
    let deltas: Vec<String> = (0..300)
        .map(|i| {
            format!(r#"{{"type": "message.created", "object_data": {{"account_id": "a-{i}"}}}}"#)
        })
        .collect();
    let body = format!(r#"{{"deltas": [{}]}}"#, deltas.join(", "));
    let started = std::time::Instant::now();
    let reply = signed_post(&stack, &body);
    let took = started.elapsed();
    assert_eq!(reply.status, 200, "{reply:?} after {took:?}");
    assert_eq!(proxy.batches(), 30);
    assert_eq!(stack.received().len(), 300);
}

/// POSTs `body` signed with `secret`; the status and the reason.
fn post_signed_with(stack: &Stack, secret: &str, body: &str) -> (u16, String) {
    let signature = sign(secret.as_bytes(), body.as_bytes());
    let reply = stack.send("POST", &[(SENDER.signature_header, &signature)], body.as_bytes());
    (reply.status, reply.body)
}

/// `make secret` after a rotation: the function reads the new secret on its own, within a
/// minute, and deliveries still signed with the old one verify against `AWSPREVIOUS`.
fn stored_secret_is_used_within_a_minute_and_the_previous_one_still_verifies(sqs: &LocalSqs) {
    let arn = sqs.create_secret("first-webhook-secret");
    let stack = Stack::with_secret(sqs, &arn);
    let body = event_body("v3-grant-created.json");
    assert_eq!(post_signed_with(&stack, "first-webhook-secret", &body).0, 200);
    sqs.put_secret(&arn, "rotated-webhook-secret");
    let stored = std::time::Instant::now();
    let mut answers = Vec::new();
    loop {
        let (status, reason) = post_signed_with(&stack, "rotated-webhook-secret", &body);
        if status == 200 {
            break;
        }
        answers.push((status, reason));
        assert!(stored.elapsed() < Duration::from_secs(60), "still refused: {answers:?}");
        std::thread::sleep(Duration::from_secs(2));
    }
    assert!(
        answers.iter().all(|(status, reason)| *status == 503 && reason == "signature_mismatch"),
        "every answer before is one Nylas retries: {answers:?}"
    );
    assert_eq!(post_signed_with(&stack, "first-webhook-secret", &body).0, 200);
    assert_eq!(post_signed_with(&stack, "never-stored", &body).0, 503);
}

fn secret_that_does_not_exist_yet_answers_the_challenge_and_503_to_a_post(sqs: &LocalSqs) {
    let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:not-stored-yet-AbCdEf";
    let stack = Stack::with_secret(sqs, arn);
    assert_eq!(stack.invoke("challenge.json").status, 200);
    let reply = stack.invoke("v3-message-created.json");
    assert_eq!((reply.status, reply.body.as_str()), (503, "secret_unavailable"));
    assert!(stack.received().is_empty());
}

/// Nylas's side of a rotation: deliveries every second, each tried up to three times while
/// the answer is one Nylas retries (408, 429, 502, 503, 504, 507), at 0, +20 s and +50 s (a
/// scaled-down 10 to 20 minutes). Nylas switches to the new secret 5 s in; the operator stores
/// it 7 s later. Every notification must reach the queue.
fn rotation_in_a_stream_of_nylas_deliveries_loses_nothing(sqs: &LocalSqs) {
    const DELIVERIES: usize = 20;
    const RETRIES_AT: [u64; 3] = [0, 20, 50];
    let arn = sqs.create_secret("old-webhook-secret");
    let stack = Stack::with_secret(sqs, &arn);
    let started = std::time::Instant::now();
    let secret_at = |at: Duration| {
        if at < Duration::from_secs(5) {
            "old-webhook-secret"
        } else {
            "new-webhook-secret"
        }
    };
    let outcomes: Vec<(String, Vec<u16>)> = std::thread::scope(|scope| {
        let operator = scope.spawn(|| {
            std::thread::sleep(Duration::from_secs(12));
            sqs.put_secret(&arn, "new-webhook-secret");
        });
        let deliveries: Vec<_> = (0..DELIVERIES)
            .map(|i| {
                let (stack, started) = (&stack, started);
                scope.spawn(move || {
                    let id = format!("rotation-{i}");
                    let body =
                        format!(r#"{{"specversion":"1.0","type":"grant.updated","id":"{id}"}}"#);
                    let first = Duration::from_secs(i as u64);
                    let mut statuses = Vec::new();
                    for retry_at in RETRIES_AT {
                        let at = first + Duration::from_secs(retry_at);
                        std::thread::sleep(at.saturating_sub(started.elapsed()));
                        let (status, _) =
                            post_signed_with(stack, secret_at(started.elapsed()), &body);
                        statuses.push(status);
                        if ![408, 429, 502, 503, 504, 507].contains(&status) {
                            break;
                        }
                    }
                    (id, statuses)
                })
            })
            .collect();
        operator.join().expect("the operator stored the secret");
        deliveries.into_iter().map(|d| d.join().expect("a delivery ran")).collect()
    });
    let stored: Vec<String> =
        stack.received().iter().filter_map(|m| m.attributes.get("nylas-id").cloned()).collect();
    for (id, statuses) in &outcomes {
        assert_eq!(statuses.last(), Some(&200), "{id} was answered {statuses:?}");
        assert!(stored.contains(id), "{id} is not in the queue");
    }
    let retried = outcomes.iter().filter(|(_, s)| s.len() > 1).count();
    println!(
        "rotation: {DELIVERIES} deliveries, {retried} answered 503 at first and retried, 0 lost"
    );
}

/// lambda_http panics while it builds a request whose raw query string holds a space, a
/// quote, `<`, `>` or a tab: the raw events, as API Gateway hands them over, still get an
/// HTTP answer (src/event.rs), and a signed POST is stored on its body.
fn hostile_query_strings_get_an_answer_not_a_failed_invocation(sqs: &LocalSqs) {
    let mut stack = Stack::start(sqs);
    let with_query = |event: &str, query: &str| {
        let mut event = sample_event(event);
        event["rawQueryString"] = query.into();
        stack.invoke_event(&event)
    };
    let echoed = with_query("challenge.json", "challenge=a b\"<c>\t");
    assert_eq!((echoed.status, echoed.body.as_str()), (200, "a b\"<c>\t"));
    assert_eq!(with_query("challenge.json", "x=\"<>\"").status, 400);
    let stored = with_query("v3-message-created.json", "a b=\"<>\"\t");
    assert_eq!(stored.status, 200);
    assert_eq!(stack.received().len(), 1);
    assert!(stack.functions_running());
}

/// A v3 notification Nylas never sent: what a forger signs with a key it knows.
const FORGED: &str = r#"{"specversion":"1.0","type":"grant.deleted","source":"/nylas/system","id":"forged","time":1717162394,"data":{"application_id":"a","object":{"grant_id":"g-1"}}}"#;

/// README's trial: Nylas's public test secret stored first, then the real one. The test
/// secret, now `AWSPREVIOUS`, verifies only for `PREVIOUS_SECRET_TTL_SECONDS` (here 5 s) after
/// the real one was stored, even on an instance that never reads the secret again.
fn public_test_secret_left_as_previous_stops_verifying_after_its_time_to_live(sqs: &LocalSqs) {
    let arn = sqs.create_secret("mock-webhook-secret");
    sqs.put_secret(&arn, "real-webhook-secret");
    let stack = Stack::with_env(
        sqs,
        &[
            ("NYLAS_WEBHOOK_SECRET", ""),
            ("NYLAS_WEBHOOK_SECRET_ARN", &arn),
            ("PREVIOUS_SECRET_TTL_SECONDS", "5"),
        ],
    );
    let body = event_body("v3-grant-created.json");
    assert_eq!(post_signed_with(&stack, "mock-webhook-secret", &body).0, 200);
    std::thread::sleep(Duration::from_secs(6));
    let refused = post_signed_with(&stack, "mock-webhook-secret", FORGED);
    assert_eq!(refused, (503, "signature_mismatch".to_owned()));
    assert_eq!(post_signed_with(&stack, "real-webhook-secret", &body).0, 200);
    let ids: Vec<_> = stack.received().iter().map(|m| m.attributes["nylas-id"].clone()).collect();
    assert!(!ids.contains(&"forged".to_owned()), "{ids:?}");
    assert_eq!(ids.len(), 2);
}

/// `make revoke-previous`: the secret stored before the current one stops verifying.
fn revoked_previous_secret_verifies_nothing(sqs: &LocalSqs) {
    let arn = sqs.create_secret("mock-webhook-secret");
    sqs.put_secret(&arn, "real-webhook-secret");
    let revoke = Command::new(tool("python3").expect("the virtualenv's python"))
        .arg(support::project_dir().join("scripts/secret.py"))
        .arg("revoke-previous")
        .env("LOCAL", "1")
        .env("SECRET_ARN", &arn)
        .env("SQS_ENDPOINT", &sqs.endpoint)
        .output()
        .expect("scripts/secret.py runs");
    let said = String::from_utf8_lossy(&revoke.stdout);
    assert!(revoke.status.success(), "{said} {}", String::from_utf8_lossy(&revoke.stderr));
    assert!(said.starts_with("revoked version "), "{said}");
    let stack = Stack::with_secret(sqs, &arn);
    let refused = post_signed_with(&stack, "mock-webhook-secret", FORGED);
    assert_eq!(refused, (503, "signature_mismatch".to_owned()));
    let body = event_body("v3-grant-created.json");
    assert_eq!(post_signed_with(&stack, "real-webhook-secret", &body).0, 200);
    assert_eq!(stack.received().len(), 1);
}

/// The Secrets Manager console's key/value form, with Nylas's field name.
fn secret_stored_as_json_is_read_from_webhook_secret(sqs: &LocalSqs) {
    let arn = sqs.create_secret(r#"{"webhook_secret": "json-webhook-secret"}"#);
    let stack = Stack::with_secret(sqs, &arn);
    let body = event_body("v3-grant-created.json");
    assert_eq!(post_signed_with(&stack, "json-webhook-secret", &body).0, 200);
    let arn_other = sqs.create_secret(r#"{"secret": "json-webhook-secret"}"#);
    let other = Stack::with_secret(sqs, &arn_other);
    let refused = post_signed_with(&other, "json-webhook-secret", &body);
    assert_eq!(refused, (503, "secret_unavailable".to_owned()));
    assert!(other.logs().contains(r#"{\"webhook_secret\": \"...\"}"#), "the log names the forms");
}

/// A FIFO queue receives each account's deltas in the order they had in the body: 200 of
/// one account, then 210 of three accounts taking turns.
fn fifo_queue_keeps_each_account_s_order(sqs: &LocalSqs) {
    let stack = Stack::forwarding_to(sqs, sqs.create_fifo_queue());
    for (count, accounts) in [(200, 1), (210, 3)] {
        let deltas: Vec<String> = (0..count)
            .map(|i| {
                format!(r#"{{"n": {i}, "object_data": {{"account_id": "a-{}"}}}}"#, i % accounts)
            })
            .collect();
        let body = format!(r#"{{"deltas": [{}]}}"#, deltas.join(", "));
        assert_eq!(signed_post(&stack, &body).status, 200);
        let received = stack.received();
        assert_eq!(received.len(), count);
        for account in 0..accounts {
            let group = format!("a-{account}");
            let order: Vec<&str> = received
                .iter()
                .filter(|m| m.group_id.as_deref() == Some(group.as_str()))
                .map(|m| m.body.as_str())
                .collect();
            let sent: Vec<&str> =
                deltas.iter().skip(account).step_by(accounts).map(String::as_str).collect();
            assert_eq!(order, sent, "{group}");
        }
    }
}

/// A v3 body of its own for notification `id`.
fn v3_body(id: &str) -> String {
    format!(
        r#"{{"specversion":"1.0","type":"message.created","id":"{id}","data":{{"object":{{"grant_id":"g-1"}}}}}}"#
    )
}

const OUTAGE: Duration = Duration::from_secs(16);

fn sqs_outage_is_answered_at_once_and_nothing_is_lost_or_stored_twice_after_it(sqs: &LocalSqs) {
    let proxy = FaultyProxy::start(&sqs.endpoint, Fault::DownFor(OUTAGE));
    let stack = Stack::through(sqs, sqs.create_queue(), &proxy.endpoint, 1);
    let started = proxy.started;
    // One sender, one POST after another, for as long as SQS is down and until it stores again.
    let mut answers = Vec::new();
    let mut back = None;
    while back.is_none() && started.elapsed() < OUTAGE + Duration::from_secs(90) {
        let id = format!("outage-{}", answers.len());
        let sent = std::time::Instant::now();
        let reply = signed_post(&stack, &v3_body(&id));
        let at = sent.duration_since(started);
        if reply.status == 200 && at >= OUTAGE {
            back = Some(at - OUTAGE + sent.elapsed());
        }
        answers.push((id, reply.status, reply.body, at, sent.elapsed()));
        // About 40 POSTs a second: enough to see the breaker, few enough to resend below.
        std::thread::sleep(Duration::from_millis(25));
    }
    let back = back.expect("stored again within 90 s of SQS's return");
    let during: Vec<_> = answers.iter().filter(|a| a.3 + a.4 < OUTAGE).collect();
    let tried = during.iter().filter(|a| a.2 != "queue_down").count();
    let mut times: Vec<Duration> = during.iter().map(|a| a.4).collect();
    times.sort();
    let slow = times.iter().filter(|t| **t > Duration::from_millis(500)).count();
    println!(
        "outage: {} POSTs answered while SQS never answered, {tried} of them tried SQS (the \
         first and one probe every 5 s), {} answered queue_down; answer time median {:?}, \
         p90 {:?}, max {:?}; {slow} over 500 ms; stored again {:.1} s after SQS returned",
        during.len(),
        during.len() - tried,
        times[times.len() / 2],
        times[times.len() * 9 / 10],
        times[times.len() - 1],
        back.as_secs_f64()
    );
    assert!(during.iter().all(|a| a.1 == 503), "every answer during the outage is 503");
    assert!(during.len() > 20, "the breaker answers at once: {}", during.len());
    let probes_at_most = 2 + OUTAGE.as_secs() as usize / 5;
    assert!((1..=probes_at_most).contains(&tried), "{tried} tries of SQS");
    assert!(back <= Duration::from_secs(90));
    // Nylas sends each 503 again once SQS is back: every notification ends up in the queue, and
    // those the breaker answered (which never reached SQS) exactly once. One that tried SQS as
    // it came back may be stored and still time out: that is the retry's duplicate, which
    // consumers drop on `nylas-id`, not the breaker's.
    for (id, status, ..) in &answers {
        if *status == 503 {
            assert_eq!(signed_post(&stack, &v3_body(id)).status, 200, "{id}");
        }
    }
    let mut stored = std::collections::HashMap::<String, usize>::new();
    for message in stack.received() {
        let id = attribute(&message, "nylas-id").expect("an id").to_owned();
        *stored.entry(id).or_default() += 1;
    }
    for (id, _, body, ..) in &answers {
        let copies = stored.get(id).copied().unwrap_or(0);
        match body.as_str() {
            "queue_down" => assert_eq!(copies, 1, "{id}, answered queue_down"),
            _ => assert!((1..=2).contains(&copies), "{id}: {copies} copies"),
        }
    }
    assert_eq!(stored.len(), answers.len(), "nothing else stored");
}

fn six_mebibyte_v2_body_of_many_deltas_is_stored_whole_and_exact(sqs: &LocalSqs) {
    let stack = Stack::start(sqs);
    let delta = |i: usize| {
        format!(
            r#"{{"date": {i}, "object": "message", "type": "message.created", "object_data": {{"account_id": "acc-{}", "id": "m-{i}", "namespace_id": "ns-{}", "attributes": {{"thread_id": "t-{}", "received_date": {}}}}}}}"#,
            i % 50,
            i % 50,
            i / 3,
            1_700_000_000 + i
        )
    };
    let mut deltas = Vec::new();
    let mut size = 0;
    // Up to about 6,000,000 bytes: a text body Lambda can carry, with room for the event.
    while size < 6_000_000 {
        deltas.push(delta(deltas.len()));
        size += deltas.last().map_or(0, |d| d.len() + 2);
    }
    let body = format!(r#"{{"deltas": [{}]}}"#, deltas.join(", "));
    assert!(body.len() > 5_900_000 && deltas.len() > 1_000, "{}", body.len());
    let reply = signed_post(&stack, &body);
    assert_eq!(reply.status, 200, "{reply:?}");
    let received = stack.received();
    assert_eq!(received.len(), 1, "past 1,000 deltas the POST is one message");
    assert_eq!(attribute(&received[0], "nylas-encoding"), Some("gzip+base64"));
    let stored = inflate(&decode_base64(&received[0].body));
    assert!(stored == body.as_bytes(), "the exact bytes");
}

/// docs/operations.md, "A leaked key": deleting a leaked secret (at once, or with a recovery window)
/// stops it verifying at the next read, which any mismatch forces after 30 s.
fn deleted_secret_stops_verifying_at_the_next_read(sqs: &LocalSqs) {
    let body = event_body("v3-grant-created.json");
    let stacks: Vec<_> = [true, false]
        .into_iter()
        .map(|force| {
            let arn = sqs.create_secret("leaked-webhook-secret");
            let stack = Stack::with_secret(sqs, &arn);
            assert_eq!(post_signed_with(&stack, "leaked-webhook-secret", &body).0, 200);
            sqs.delete_secret(&arn, force);
            stack
        })
        .collect();
    std::thread::sleep(Duration::from_secs(31));
    for stack in &stacks {
        assert_eq!(post_signed_with(stack, "forged", &body).0, 503);
        let after = post_signed_with(stack, "leaked-webhook-secret", &body);
        assert_eq!(after, (503, "secret_unavailable".to_owned()));
        assert_eq!(stack.received().len(), 1, "only the POST before the delete");
        assert!(stack.logs().contains("failed, secrets dropped"), "{}", stack.logs());
    }
}

/// lambda_http fails on a Host that is no host and on a header value with a control byte:
/// raw events as API Gateway passes them on still get an HTTP answer (src/event.rs), and a
/// signed POST is stored whatever its headers say.
fn hostile_hosts_and_header_values_get_an_answer_and_a_signed_post_is_stored(sqs: &LocalSqs) {
    let mut stack = Stack::start(sqs);
    let hostile = |event: &str, header: &str, value: &str| {
        let mut event = sample_event(event);
        event["headers"][header] = value.into();
        stack.invoke_event(&event)
    };
    for (header, value) in [
        ("host", "a b"),
        ("host", "x.example.com:99999"),
        ("x-odd", "a\u{1}b\u{7f}"),
        ("user-agent", "\u{0}\n"),
    ] {
        let echoed = hostile("challenge.json", header, value);
        assert_eq!(echoed.status, 200, "{header}: {value:?}: {echoed:?}");
        let stored = hostile("v3-message-created.json", header, value);
        assert_eq!(stored.status, 200, "{header}: {value:?}: {stored:?}");
    }
    assert_eq!(stack.received().len(), 4);
    let forged = hostile("v3-message-created.json", "x-nylas-signature", "ab\u{1}");
    assert_eq!((forged.status, forged.body.as_str()), (403, "malformed_signature"));
    assert!(stack.functions_running());
}

/// Two identical deltas in one POST are two notifications: two messages with distinct ids,
/// on a standard queue and on FIFO, where the same POST sent again adds nothing.
fn two_identical_deltas_are_two_messages_and_a_resend_adds_nothing_on_fifo(sqs: &LocalSqs) {
    let delta = r#"{"date": 1, "object": "message", "type": "message.opened", "object_data": {"account_id": "a-1"}}"#;
    let body = format!(r#"{{"deltas": [{delta}, {delta}]}}"#);
    let hash = hex::encode(Sha256::digest(delta.as_bytes()));
    for queue in [sqs.create_queue(), sqs.create_fifo_queue()] {
        let fifo = queue.ends_with(".fifo");
        let stack = Stack::forwarding_to(sqs, queue);
        assert_eq!(signed_post(&stack, &body).status, 200);
        if fifo {
            assert_eq!(signed_post(&stack, &body).status, 200);
        }
        let received = stack.received();
        let mut ids: Vec<_> = received.iter().filter_map(|m| attribute(m, "nylas-id")).collect();
        ids.sort();
        assert_eq!(ids, [hash.clone(), format!("{hash}-2")], "fifo: {fifo}");
        assert!(received.iter().all(|m| m.body == delta));
    }
}

/// 120 deltas of one account on FIFO through an SQS taking 0.15 s a call: the group's 12
/// batches go one after another, and on a loaded machine may run past the 6 s budget (503). Every call succeeds,
/// so the breaker stays closed: another POST meanwhile is stored, and the POST sent again 1 s
/// later is tried, until every delta is stored, once, in order.
fn slow_fifo_post_is_stored_whole_on_a_resend_and_refuses_no_other(sqs: &LocalSqs) {
    let proxy = FaultyProxy::start(&sqs.endpoint, Fault::Delay(Duration::from_millis(150)));
    let stack = Stack::through(sqs, sqs.create_fifo_queue(), &proxy.endpoint, 1);
    let deltas: Vec<String> = (0..120)
        .map(|i| {
            format!(
                r#"{{"type": "message.created", "n": {i}, "object_data": {{"account_id": "a-1"}}}}"#
            )
        })
        .collect();
    let body = format!(r#"{{"deltas": [{}]}}"#, deltas.join(", "));
    let mut answers = Vec::new();
    for _ in 0..3 {
        let reply = signed_post(&stack, &body);
        answers.push(reply.status);
        let other = signed_post(&stack, &v3_body(&format!("other-{}", answers.len())));
        assert_eq!(other.status, 200, "{other:?}: no other POST is refused");
        if reply.status == 200 {
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    assert_eq!(answers.last(), Some(&200), "{answers:?}");
    assert!(!stack.logs().contains("queue_down"), "the breaker never opened");
    let stored: Vec<String> = stack
        .received()
        .into_iter()
        .filter(|m| attribute(m, "nylas-grant-id") == Some("a-1"))
        .map(|m| m.body)
        .collect();
    assert_eq!(stored, deltas, "every delta once, in order");
}
