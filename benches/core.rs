//! The core path (verify, split, build SQS messages, plan batches) beside its floor: a bare
//! HMAC-SHA256 of the same bytes, which no receiver can go under. `make bench` runs it and
//! checks the budget (core within 2x the floor); `cargo test --benches` runs each once.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use hmac::{Hmac, Mac};
use nylas_webhook_sqs::core::{parse, plan, split, Message, Secret, Verifier};
use nylas_webhook_sqs::sign;
use sha2::Sha256;
use std::hint::black_box;

const SECRET: &[u8] = b"nylas-sample-secret";

/// A v3 `message.created` whose body field brings it to about `size` bytes.
fn v3(size: usize) -> Vec<u8> {
    let head = r#"{"specversion":"1.0","type":"message.created","source":"/google/emails/realtime","id":"5ac1e7c6-4b4f-4f5f-8e61-2f4b0c7e1a01","time":1795755590,"webhook_delivery_attempt":1,"data":{"application_id":"a7967f1e","object":{"id":"18d5b1c2e3f4a5b6","grant_id":"4c22d8e1-7a0b-4f3e-9c1d-5b6a7e8f9a0b","object":"message","subject":"Quarterly report","body":""#;
    let tail = r#""}}}"#;
    let filler = "<p>Hi Ben, the report is attached. \\u00e9t\\u00e9 \\\"quoted\\\"</p>\\n";
    let mut body = String::from(head);
    while body.len() + tail.len() < size {
        body.push_str(filler);
    }
    body.push_str(tail);
    body.into_bytes()
}

/// A v2 body of `count` deltas, as Nylas lays them out.
fn v2(count: usize) -> Vec<u8> {
    let deltas: Vec<String> = (0..count)
        .map(|i| format!(r#"{{"date": 1669655971, "object": "message", "type": "message.created", "object_data": {{"namespace_id": "92e2b4e1c3d5f7a9", "account_id": "92e2b4e1c3d5f7a9", "object": "message", "attributes": {{"thread_id": "b84q2x7c1m3n5p7r", "received_date": 1669655961}}, "id": "4ps7k2m9x1c3v5b{i}", "metadata": null}}}}"#))
        .collect();
    format!(r#"{{"deltas": [{}]}}"#, deltas.join(", ")).into_bytes()
}

/// Everything the function does to a POST before the SQS call.
fn core_path(verifier: &Verifier, body: &[u8], signature: &[u8]) -> usize {
    let signature = parse(Some(signature), "").expect("the bench signs its payloads");
    assert!(verifier.matches(body, &signature));
    let notifications = split(body);
    let messages: Vec<Message<'_>> = notifications.iter().map(|n| Message::new(n, false)).collect();
    let sizes: Vec<usize> = messages.iter().map(|m| m.size).collect();
    plan(&sizes).len()
}

fn hmac_floor(body: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET).expect("any key length");
    mac.update(body);
    mac.finalize().into_bytes().into()
}

fn benches(c: &mut Criterion) {
    let verifier = Verifier::new(Secret::new(SECRET), None);
    let payloads =
        [("v3-2KB", v3(2 * 1024)), ("v3-900KB", v3(900 * 1024)), ("v2-50-deltas", v2(50))];
    for (name, body) in &payloads {
        let signature = sign(SECRET, body);
        let mut group = c.benchmark_group(*name);
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(BenchmarkId::new("hmac-floor", body.len()), |b| {
            b.iter(|| hmac_floor(black_box(body)))
        });
        group.bench_function(BenchmarkId::new("core-path", body.len()), |b| {
            b.iter(|| core_path(&verifier, black_box(body), signature.as_bytes()))
        });
        group.finish();
    }
}

criterion_group!(core, benches);
criterion_main!(core);
