//! From a raw request body to planned SQS batches: size cap, signature, gzip, splitting,
//! messages and batch planning. The first input byte picks the options; the rest is the body.
//! Nothing may panic, and every plan must stay within SQS's limits.

#![no_main]

use libfuzzer_sys::fuzz_target;
use nylas_webhook_sqs::body;
use nylas_webhook_sqs::notification;
use nylas_webhook_sqs::signature::{sign, Secret, Verifier};
use nylas_webhook_sqs::sqs::{plan, Message, MAX_BYTES, MAX_ENTRIES};

const SECRET: &[u8] = b"fuzz-secret";
const SIGNED: u8 = 1;
const GZIP: u8 = 2;
const FIFO: u8 = 4;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, raw)) = data.split_first() else {
        return;
    };
    if body::check_size(raw).is_err() {
        return;
    }
    let header = if flags & SIGNED != 0 {
        sign(SECRET, raw).into_bytes()
    } else {
        raw.iter().copied().take(70).collect()
    };
    let verified = Verifier::new(Secret::new(SECRET), None).verify(raw, Some(&header));
    assert_eq!(verified.is_ok(), flags & SIGNED != 0, "only the right signature verifies");
    if verified.is_err() {
        return;
    }
    let Ok(decoded) = body::decode(raw, flags & GZIP != 0) else {
        return;
    };
    let notifications = notification::split(&decoded);
    let range = decoded.as_ptr_range();
    for notification in &notifications {
        let inside = notification.bytes.as_ptr_range();
        assert!(range.start <= inside.start && inside.end <= range.end, "a slice of the body");
    }
    let fifo = flags & FIFO != 0;
    let messages: Vec<Message<'_>> = notifications.iter().map(|n| Message::new(n, fifo)).collect();
    let sizes: Vec<usize> = messages.iter().map(|m| m.size).filter(|&s| s <= MAX_BYTES).collect();
    let batches = plan(&sizes);
    assert_eq!(batches.iter().map(|b| b.len()).sum::<usize>(), sizes.len());
    for range in batches {
        assert!(range.len() <= MAX_ENTRIES);
        assert!(sizes[range].iter().sum::<usize>() <= MAX_BYTES);
    }
});
