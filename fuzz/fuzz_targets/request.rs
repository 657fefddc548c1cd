//! From a raw request body to planned SQS batches: size cap, signature, gzip, splitting,
//! messages and batch planning. The first input byte picks the options; the rest is the body.
//! Nothing may panic, and every plan must stay within SQS's limits.

#![no_main]

use libfuzzer_sys::fuzz_target;
use nylas_webhook_sqs::core::{
    check_intact, check_size, decode, parse, plan, split_with, Message, Secret, Verifier,
    MAX_BYTES, MAX_ENTRIES,
};
use nylas_webhook_sqs::sign;
use std::io::Write;

const SECRET: &[u8] = b"fuzz-secret";
const SIGNED: u8 = 1;
const GZIP: u8 = 2;
const FIFO: u8 = 4;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, body)) = data.split_first() else {
        return;
    };
    let raw = if flags & GZIP != 0 {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(body).expect("a Vec takes every write");
        encoder.finish().expect("a Vec takes every write")
    } else {
        body.to_vec()
    };
    if check_size(&raw).is_err() {
        return;
    }
    let header = if flags & SIGNED != 0 {
        sign(SECRET, &raw).into_bytes()
    } else {
        raw.iter().copied().take(70).collect()
    };
    let verifier = Verifier::new(Secret::new(SECRET), None);
    let verified = parse(Some(&header), "").is_ok_and(|signature| verifier.matches(&raw, &signature));
    assert_eq!(verified, flags & SIGNED != 0, "only the right signature verifies");
    if !verified {
        let _ = check_intact(&raw, Some(b"gzip"));
        return;
    }
    let decoded = decode(&raw);
    let notifications = split_with(&decoded.bytes, decoded.gzip, &Default::default());
    let range = decoded.bytes.as_ptr_range();
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
