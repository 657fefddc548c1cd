//! What one notification becomes on the queue: a body SQS accepts and its string attributes.
//!
//! SQS message bodies may hold only XML characters
//! (<https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html>):
//! a notification whose bytes are not such text is sent base64-encoded with
//! `nylas-encoding: base64`, so that it is never dropped or mangled.

use crate::notification::{ApiVersion, Notification, Raw};
use base64::Engine;
use sha2::{Digest, Sha256};
use std::borrow::Cow;

/// Message attribute names. Consumers filter and deduplicate on these.
pub mod attribute {
    pub const TYPE: &str = "nylas-type";
    pub const API_VERSION: &str = "nylas-api-version";
    pub const ID: &str = "nylas-id";
    pub const GRANT_ID: &str = "nylas-grant-id";
    pub const DELIVERY_ATTEMPT: &str = "nylas-delivery-attempt";
    pub const ENCODING: &str = "nylas-encoding";
}

/// The SQS data type of every attribute this function sets.
pub const ATTRIBUTE_DATA_TYPE: &str = "String";

/// Longest attribute value copied from a notification; a longer one is left out (the body
/// still carries it) so attributes never crowd the body out of SQS's 1 MiB.
const MAX_ATTRIBUTE_VALUE: usize = 256;

/// Longest `MessageGroupId` or `MessageDeduplicationId` SQS accepts.
const MAX_FIFO_ID: usize = 128;

/// `MessageGroupId` of notifications that name no grant or account.
const NO_GRANT_GROUP: &str = "no-grant";

/// A message's string attributes, one field per name in [`attribute`]. Values borrow from the
/// notification; only the delivery attempt is written out, once, when the message is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attributes<'a> {
    api_version: ApiVersion,
    kind: Option<Cow<'a, str>>,
    id: Option<Cow<'a, str>>,
    grant_id: Option<Cow<'a, str>>,
    delivery_attempt: Option<String>,
    base64: bool,
}

impl Attributes<'_> {
    /// The attributes that are set, as (name, value), in a fixed order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            (attribute::API_VERSION, Some(self.api_version.as_str())),
            (attribute::TYPE, self.kind.as_deref()),
            (attribute::ID, self.id.as_deref()),
            (attribute::GRANT_ID, self.grant_id.as_deref()),
            (
                attribute::DELIVERY_ATTEMPT,
                self.delivery_attempt.as_deref(),
            ),
            (attribute::ENCODING, self.base64.then_some("base64")),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.map(|value| (name, value)))
    }

    /// The value of attribute `name`, if set.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, value)| value)
    }

    /// What the attributes count against SQS's 1 MiB: each one's name, data type and value.
    fn size(&self) -> usize {
        self.iter()
            .map(|(name, value)| name.len() + ATTRIBUTE_DATA_TYPE.len() + value.len())
            .sum()
    }
}

/// Whether the queue is standard or FIFO. SQS requires FIFO queue names to end in `.fifo`,
/// so the queue URL says which.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueKind {
    Standard,
    Fifo,
}

impl QueueKind {
    pub fn of_url(queue_url: &str) -> Self {
        if queue_url.ends_with(".fifo") {
            QueueKind::Fifo
        } else {
            QueueKind::Standard
        }
    }
}

/// What a FIFO queue needs on every message
/// (<https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/FIFO-queues-exactly-once-processing.html>).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FifoKeys {
    /// The grant (v3) or account (v2): notifications of one mailbox stay in order.
    pub group_id: String,
    /// The v3 notification id, or the SHA-256 of the notification's bytes: a retried
    /// delivery within SQS's 5-minute window is stored once.
    pub deduplication_id: String,
}

impl FifoKeys {
    fn of(notification: &Notification<'_>) -> Self {
        let group_id = notification
            .grant_id
            .as_deref()
            .filter(|id| is_fifo_id(id))
            .unwrap_or(NO_GRANT_GROUP)
            .to_owned();
        let v3_id = match notification.api_version {
            ApiVersion::V3 => notification.id.as_deref().filter(|id| is_fifo_id(id)),
            ApiVersion::V2 | ApiVersion::Unknown => None,
        };
        let deduplication_id = match v3_id {
            Some(id) => id.to_owned(),
            None => hex::encode(Sha256::digest(notification.raw.as_bytes())),
        };
        Self {
            group_id,
            deduplication_id,
        }
    }
}

/// One SQS message, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message<'a> {
    pub body: Cow<'a, str>,
    pub attributes: Attributes<'a>,
    /// Set when the queue is FIFO.
    pub fifo: Option<FifoKeys>,
}

impl<'a> Message<'a> {
    /// Builds the message for `notification`, for a queue of the given kind.
    pub fn new(notification: &Notification<'a>, kind: QueueKind) -> Self {
        let (body, base64) = match notification.raw {
            Raw::Text(text) if is_sqs_text(text) => (Cow::Borrowed(text), false),
            raw => (
                Cow::Owned(base64::engine::general_purpose::STANDARD.encode(raw.as_bytes())),
                true,
            ),
        };
        let copied = |value: &Option<Cow<'a, str>>| value.clone().filter(|v| is_attribute_value(v));
        let attributes = Attributes {
            api_version: notification.api_version,
            kind: copied(&notification.kind),
            id: copied(&notification.id),
            grant_id: copied(&notification.grant_id),
            delivery_attempt: notification.delivery_attempt.map(|n| n.to_string()),
            base64,
        };
        let fifo = match kind {
            QueueKind::Fifo => Some(FifoKeys::of(notification)),
            QueueKind::Standard => None,
        };
        Self {
            body,
            attributes,
            fifo,
        }
    }

    /// The size SQS counts against its 1 MiB limit: the body plus, for each attribute, its
    /// name, data type and value.
    pub fn size(&self) -> usize {
        self.body.len() + self.attributes.size()
    }
}

/// Whether SQS accepts `text` as is: `#x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD |
/// #x10000-#x10FFFF`. Valid UTF-8 has no surrogates, so only ASCII controls and the two
/// non-characters U+FFFE and U+FFFF are left to refuse.
fn is_sqs_text(text: &str) -> bool {
    const CHUNK: usize = 64;
    let bytes = text.as_bytes();
    // A branch-free fold flags a chunk that holds any control byte or any 0xEF (the lead byte
    // of U+FFFE and U+FFFF, EF BF BE and EF BF BF), so the compiler checks many bytes at once;
    // only a flagged chunk is looked at byte by byte.
    bytes.chunks(CHUNK).enumerate().all(|(index, chunk)| {
        let flagged = chunk
            .iter()
            .fold(false, |f, &b| f | (b < 0x20) | (b == 0xEF));
        !flagged || (index * CHUNK..index * CHUNK + chunk.len()).all(|at| sqs_char_at(bytes, at))
    })
}

/// Whether the byte at `at` neither is nor starts a character SQS refuses.
fn sqs_char_at(bytes: &[u8], at: usize) -> bool {
    match bytes[at] {
        b'\t' | b'\n' | b'\r' => true,
        0xEF => bytes.get(at + 1) != Some(&0xBF) || bytes.get(at + 2).is_some_and(|&b| b < 0xBE),
        b => b >= 0x20,
    }
}

/// SQS takes 1 to 128 of the ASCII letters, digits and punctuation.
fn is_fifo_id(id: &str) -> bool {
    (1..=MAX_FIFO_ID).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic())
}

/// SQS refuses empty string attributes, and they must be valid text like bodies.
fn is_attribute_value(value: &str) -> bool {
    !value.is_empty() && value.len() <= MAX_ATTRIBUTE_VALUE && is_sqs_text(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notification::{split, ApiVersion};

    fn message(body: &[u8]) -> Message<'_> {
        Message::new(&split(body)[0], QueueKind::Standard)
    }

    fn fifo(body: &[u8]) -> Vec<FifoKeys> {
        let notifications = split(body);
        let messages = notifications
            .iter()
            .map(|n| Message::new(n, QueueKind::Fifo));
        messages
            .map(|m| m.fifo.expect("a FIFO message has keys"))
            .collect()
    }

    #[test]
    fn queue_kind_follows_the_fifo_suffix() {
        let url = "https://sqs.us-east-1.amazonaws.com/123456789012/nylas";
        assert_eq!(QueueKind::of_url(url), QueueKind::Standard);
        assert_eq!(QueueKind::of_url(&format!("{url}.fifo")), QueueKind::Fifo);
    }

    #[test]
    fn standard_queue_messages_have_no_fifo_keys() {
        assert_eq!(message(b"{}").fifo, None);
    }

    #[test]
    fn fifo_v3_groups_by_grant_and_deduplicates_on_the_notification_id() {
        let body =
            br#"{"specversion":"1.0","type":"t","id":"n-1","data":{"object":{"grant_id":"g-1"}}}"#;
        let keys = FifoKeys {
            group_id: "g-1".to_owned(),
            deduplication_id: "n-1".to_owned(),
        };
        assert_eq!(fifo(body), vec![keys]);
    }

    #[test]
    fn fifo_v2_groups_by_account_and_deduplicates_on_the_delta_hash() {
        let body = br#"{"deltas": [{"object_data": {"account_id": "a-1"}}, {"x": 1}]}"#;
        let keys = fifo(body);
        assert_eq!(keys[0].group_id, "a-1");
        assert_eq!(
            keys[0].deduplication_id,
            hex::encode(Sha256::digest(br#"{"object_data": {"account_id": "a-1"}}"#))
        );
        assert_eq!(keys[1].group_id, NO_GRANT_GROUP);
        assert_ne!(keys[0].deduplication_id, keys[1].deduplication_id);
    }

    #[test]
    fn fifo_ids_sqs_would_refuse_are_replaced() {
        let long = "n".repeat(MAX_FIFO_ID + 1);
        let body = format!(r#"{{"specversion":"1.0","id":"{long}","data":{{"grant_id":"g 1"}}}}"#);
        let keys = &fifo(body.as_bytes())[0];
        assert_eq!(keys.group_id, NO_GRANT_GROUP);
        assert_eq!(
            keys.deduplication_id,
            hex::encode(Sha256::digest(body.as_bytes()))
        );
    }

    #[test]
    fn v3_message_carries_body_unchanged_and_all_attributes() {
        let body = br#"{"specversion":"1.0","type":"grant.created","id":"n1","webhook_delivery_attempt":1,"data":{"object":{"grant_id":"g1"}}}"#;
        let m = message(body);
        assert_eq!(m.body.as_bytes(), body);
        assert!(matches!(m.body, Cow::Borrowed(_)));
        assert_eq!(m.attributes.get(attribute::API_VERSION), Some("v3"));
        assert_eq!(m.attributes.get(attribute::TYPE), Some("grant.created"));
        assert_eq!(m.attributes.get(attribute::ID), Some("n1"));
        assert_eq!(m.attributes.get(attribute::GRANT_ID), Some("g1"));
        assert_eq!(m.attributes.get(attribute::DELIVERY_ATTEMPT), Some("1"));
        assert_eq!(m.attributes.get(attribute::ENCODING), None);
    }

    #[test]
    fn unknown_body_is_marked_unknown() {
        let m = message(b"plain text");
        assert_eq!(m.body, "plain text");
        let attributes: Vec<_> = m.attributes.iter().collect();
        assert_eq!(attributes, [(attribute::API_VERSION, "unknown")]);
    }

    #[test]
    fn binary_body_is_base64_encoded_and_marked() {
        let body = b"\x1f\x8b\x08\x00\xff";
        let m = message(body);
        assert_eq!(m.body, "H4sIAP8=");
        assert_eq!(m.attributes.get(attribute::ENCODING), Some("base64"));
    }

    #[test]
    fn control_characters_are_base64_encoded() {
        for body in [&b"a\x00b"[..], b"a\x1bb", "a\u{FFFF}b".as_bytes()] {
            let m = message(body);
            assert_eq!(m.attributes.get(attribute::ENCODING), Some("base64"));
            let decoded = base64::engine::general_purpose::STANDARD.decode(m.body.as_bytes());
            assert_eq!(decoded.as_deref(), Ok(body));
        }
    }

    #[test]
    fn tabs_newlines_and_unicode_are_sent_as_text() {
        let body = "{\"deltas\": [{\"type\":\t\"caf\u{e9} \u{1F600}\"\r\n}]}";
        let m = message(body.as_bytes());
        assert_eq!(m.body, "{\"type\":\t\"caf\u{e9} \u{1F600}\"\r\n}");
        assert_eq!(m.attributes.get(attribute::ENCODING), None);
    }

    #[test]
    fn empty_control_or_overlong_attribute_values_are_left_out() {
        let long = "x".repeat(MAX_ATTRIBUTE_VALUE + 1);
        let body = format!(
            r#"{{"specversion":"1.0","type":"","id":"a\u0000b","data":{{"grant_id":"{long}"}}}}"#
        );
        let m = message(body.as_bytes());
        let attributes: Vec<_> = m.attributes.iter().collect();
        assert_eq!(attributes, [(attribute::API_VERSION, "v3")]);
    }

    #[test]
    fn size_counts_body_and_attribute_names_types_and_values() {
        let n = Notification {
            raw: Raw::Text("12345"),
            api_version: ApiVersion::V2,
            kind: Some(Cow::Borrowed("abc")),
            id: None,
            grant_id: None,
            delivery_attempt: None,
        };
        let expected = 5 + ("nylas-api-version".len() + 6 + 2) + ("nylas-type".len() + 6 + 3);
        assert_eq!(Message::new(&n, QueueKind::Standard).size(), expected);
    }

    #[test]
    fn size_counts_every_attribute_as_it_is_sent() {
        for attempt in [0, 9, 10, 12_345, u64::MAX] {
            let n = Notification {
                raw: Raw::of(b"\x00binary"),
                api_version: ApiVersion::V3,
                kind: Some(Cow::Borrowed("message.created")),
                id: Some(Cow::Borrowed("n-1")),
                grant_id: Some(Cow::Borrowed("g-1")),
                delivery_attempt: Some(attempt),
            };
            let m = Message::new(&n, QueueKind::Standard);
            let sent: usize = m
                .attributes
                .iter()
                .map(|(name, value)| name.len() + ATTRIBUTE_DATA_TYPE.len() + value.len())
                .sum();
            assert_eq!(m.attributes.iter().count(), 6);
            assert_eq!(m.size(), m.body.len() + sent, "attempt {attempt}");
        }
    }
}
