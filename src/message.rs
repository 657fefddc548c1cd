//! One SQS message per notification: its body (the exact bytes, as text when SQS takes them,
//! else encoded: the contract's `encode`), its attributes, its FIFO keys, and its size as SQS
//! counts it against 1 MiB
//! (<https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html>).

use crate::sender::Notification;
use nylas_sqs_contract::{attribute, encode, is_attribute_value, FifoKeys, STRING};
use std::borrow::Cow;

/// Most bytes, attributes included, in one message or one `SendMessageBatch` call.
pub const MAX_BYTES: usize = 1_048_576;

/// One SQS message, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message<'a> {
    pub body: Cow<'a, str>,
    pub attributes: Vec<(&'static str, Cow<'a, str>)>,
    pub fifo: Option<FifoKeys>,
    /// What SQS counts against its 1 MiB: the body and each attribute's name, type and value.
    pub size: usize,
}

impl<'a> Message<'a> {
    /// The message for `notification`, with no request id.
    pub fn new(notification: &'a Notification<'a>, fifo: bool) -> Self {
        Self::for_request(notification, fifo, None)
    }

    /// The message for `notification`. Its body is the notification's text when SQS takes it
    /// and it fits; otherwise its bytes base64-encoded (`nylas-encoding: base64`), or, when
    /// that does not fit either, gzip-compressed and base64-encoded (`gzip+base64`): Nylas's
    /// own gzip when it sent one. Only a message that does not fit even so is over
    /// [`MAX_BYTES`]. The receiver's `request_id` goes in [`attribute::REQUEST_ID`].
    pub fn for_request(n: &'a Notification<'a>, fifo: bool, request_id: Option<&'a str>) -> Self {
        let attempt = n.delivery_attempt.map(|a| a.to_string());
        let attributes = [
            (attribute::API_VERSION, Some(n.api_version.as_str().into())),
            (attribute::TYPE, n.kind.as_deref().map(Cow::Borrowed)),
            (attribute::ID, Some(Cow::Borrowed(n.id.as_str()))),
            (attribute::ID_RULE, Some(n.id_rule.as_str().into())),
            (attribute::GRANT_ID, n.group.as_deref().map(Cow::Borrowed)),
            (attribute::DELIVERY_ATTEMPT, attempt.map(Cow::Owned)),
            (attribute::REQUEST_ID, request_id.map(Cow::Borrowed)),
        ];
        let mut attributes: Vec<_> = attributes
            .into_iter()
            .filter_map(|(name, value)| Some((name, value.filter(|v| is_attribute_value(v))?)))
            .collect();
        let size = |each: &[(&str, Cow<'_, str>)]| -> usize {
            each.iter().map(|(n, v)| n.len() + STRING.len() + v.len()).sum()
        };
        let room = MAX_BYTES - size(&attributes);
        let encoded =
            |e: Option<&str>| e.map_or(0, |e| attribute::ENCODING.len() + STRING.len() + e.len());
        let (body, encoding) =
            encode(n.bytes, n.gzip, |body, e| body + encoded(e.attribute()) <= room);
        attributes.extend(encoding.attribute().map(|e| (attribute::ENCODING, Cow::Borrowed(e))));
        Self {
            size: body.len() + size(&attributes),
            body,
            attributes,
            fifo: fifo.then(|| FifoKeys::new(&n.id, n.group.as_deref())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nylas::split;
    use base64::Engine;
    use nylas_sqs_contract::{MAX_ATTRIBUTE_VALUE, NO_GRANT_GROUP};
    use std::io::Read;

    fn message<'a>(notification: &'a Notification<'a>) -> Message<'a> {
        Message::new(notification, false)
    }

    fn attribute<'a>(message: &'a Message<'_>, name: &str) -> Option<&'a str> {
        let found = message.attributes.iter().find(|(n, _)| *n == name);
        found.map(|(_, value)| value.as_ref())
    }

    fn notification(bytes: &[u8]) -> Notification<'_> {
        split(bytes).remove(0)
    }

    #[test]
    fn v3_message_carries_the_body_unchanged_and_every_attribute() {
        let body = br#"{"specversion":"1.0","type":"grant.created","id":"n1","webhook_delivery_attempt":1,"data":{"object":{"grant_id":"g1"}}}"#;
        let n = notification(body);
        let m = message(&n);
        assert_eq!(m.body.as_bytes(), body);
        assert!(matches!(m.body, Cow::Borrowed(_)));
        let attributes: Vec<_> = m.attributes.iter().map(|(k, v)| (*k, v.as_ref())).collect();
        assert_eq!(
            attributes,
            [
                (attribute::API_VERSION, "v3"),
                (attribute::TYPE, "grant.created"),
                (attribute::ID, "n1"),
                (attribute::ID_RULE, "member"),
                (attribute::GRANT_ID, "g1"),
                (attribute::DELIVERY_ATTEMPT, "1"),
            ]
        );
    }

    #[test]
    fn unknown_body_is_marked_unknown_and_carries_its_id() {
        let n = notification(b"plain text");
        let m = message(&n);
        assert_eq!(m.body, "plain text");
        let id = n.id.as_str().into();
        let expected = [
            (attribute::API_VERSION, "unknown".into()),
            (attribute::ID, id),
            (attribute::ID_RULE, "sha256".into()),
        ];
        assert_eq!(m.attributes, expected);
    }

    #[test]
    fn binary_body_is_base64_encoded_and_marked() {
        let n = notification(b"\x1f\x8b\x08\x00\xff");
        let m = message(&n);
        assert_eq!(m.body, "H4sIAP8=");
        assert_eq!(attribute(&m, attribute::ENCODING), Some("base64"));
    }

    #[test]
    fn text_sqs_refuses_is_base64_encoded() {
        for body in [
            &b"a\x00b"[..],
            b"a\x1bb",
            b"two controls \x00\x01",
            "a\u{FFFF}b".as_bytes(),
            "\u{FFFE}".as_bytes(),
        ] {
            let n = notification(body);
            let m = message(&n);
            assert_eq!(attribute(&m, attribute::ENCODING), Some("base64"));
            let decoded = base64::engine::general_purpose::STANDARD.decode(m.body.as_bytes());
            assert_eq!(decoded.as_deref(), Ok(body));
        }
    }

    #[test]
    fn binary_notification_is_base64_while_it_fits_and_gzip_and_base64_past_it() {
        // Room for the body: 1 MiB less nylas-api-version (17 + 6 + 7), nylas-id (8 + 6 + 64),
        // nylas-id-rule (13 + 6 + 6) and nylas-encoding (14 + 6 + 6): 1,048,417 bytes, the
        // base64 of 786,312 bytes.
        let largest = vec![0xff; 786_312];
        let n = notification(&largest);
        let m = message(&n);
        assert_eq!(attribute(&m, attribute::ENCODING), Some("base64"));
        assert_eq!(m.size, 1_048_575);
        let over = vec![0xff; 786_313];
        let n = notification(&over);
        let m = message(&n);
        assert_eq!(attribute(&m, attribute::ENCODING), Some("gzip+base64"));
        let gzip = base64::engine::general_purpose::STANDARD.decode(m.body.as_bytes());
        let mut inflated = Vec::new();
        let read =
            flate2::read::GzDecoder::new(&gzip.expect("base64")[..]).read_to_end(&mut inflated);
        assert_eq!((read.ok(), inflated == over), (Some(over.len()), true));
    }

    #[test]
    fn tabs_newlines_and_unicode_are_sent_as_text() {
        let body = "{\"type\":\t\"caf\u{e9} \u{1F600} \u{FFFD} \u{E000}\"\r\n}";
        let n = notification(body.as_bytes());
        let m = message(&n);
        assert_eq!(m.body, body);
        assert_eq!(attribute(&m, attribute::ENCODING), None);
    }

    #[test]
    fn empty_control_or_overlong_attribute_values_are_left_out() {
        let long = "x".repeat(MAX_ATTRIBUTE_VALUE + 1);
        let body = format!(
            r#"{{"specversion":"1.0","type":"","id":"a\u0000b","data":{{"grant_id":"{long}"}}}}"#
        );
        let n = notification(body.as_bytes());
        let id = n.id.as_str().into();
        let expected = [
            (attribute::API_VERSION, "v3".into()),
            (attribute::ID, id),
            (attribute::ID_RULE, "sha256".into()),
        ];
        assert_eq!(message(&n).attributes, expected);
    }

    #[test]
    fn size_counts_the_body_and_each_attribute_name_type_and_value() {
        let n = notification(br#"{"deltas":[{"type":"abc"}]}"#);
        // {"type":"abc"}: 14 bytes; nylas-api-version, String, v2: 17 + 6 + 2;
        // nylas-type, String, abc: 10 + 6 + 3; nylas-id, String, a SHA-256 in hex: 8 + 6 + 64;
        // nylas-id-rule, String, sha256: 13 + 6 + 6.
        assert_eq!(message(&n).size, 14 + 25 + 19 + 78 + 25);
    }

    #[test]
    fn size_of_an_encoded_body_is_its_encoded_length() {
        let n = notification(b"\x00\x01\x02");
        // AAEC: 4 bytes; the api version 17 + 6 + 7; the id 8 + 6 + 64; its rule 13 + 6 + 6;
        // nylas-encoding, String, base64: 14 + 6 + 6.
        assert_eq!(message(&n).size, 4 + 30 + 78 + 25 + 26);
    }

    fn fifo_keys(body: &[u8]) -> Vec<FifoKeys> {
        let notifications = split(body);
        let keys = notifications.iter().map(|n| Message::new(n, true).fifo);
        keys.map(|k| k.expect("a FIFO message has keys")).collect()
    }

    #[test]
    fn standard_queue_messages_have_no_fifo_keys() {
        assert_eq!(message(&notification(b"{}")).fifo, None);
    }

    #[test]
    fn fifo_v3_groups_by_grant_and_deduplicates_on_the_notification_id() {
        let body =
            br#"{"specversion":"1.0","type":"t","id":"n-1","data":{"object":{"grant_id":"g-1"}}}"#;
        let keys = FifoKeys { group_id: "g-1".to_owned(), deduplication_id: "n-1".to_owned() };
        assert_eq!(fifo_keys(body), vec![keys]);
    }

    #[test]
    fn fifo_v2_groups_by_account_and_deduplicates_on_the_delta_hash() {
        let keys = fifo_keys(br#"{"deltas": [{"object_data": {"account_id": "a-1"}}, {"x": 1}]}"#);
        assert_eq!(keys[0].group_id, "a-1");
        assert_eq!(
            keys[0].deduplication_id,
            split(br#"{"deltas": [{"object_data": {"account_id": "a-1"}}]}"#)[0].id
        );
        assert_eq!(keys[1].group_id, NO_GRANT_GROUP);
        assert_ne!(keys[0].deduplication_id, keys[1].deduplication_id);
    }

    #[test]
    fn fifo_ids_sqs_would_refuse_are_replaced() {
        let long = "n".repeat(129);
        let body = format!(r#"{{"specversion":"1.0","id":"{long}","data":{{"grant_id":"g 1"}}}}"#);
        let keys = &fifo_keys(body.as_bytes())[0];
        assert_eq!(keys.group_id, NO_GRANT_GROUP);
        assert_eq!(keys.deduplication_id, notification(body.as_bytes()).id);
        assert_eq!(keys.deduplication_id.len(), 64, "a SHA-256 in hex");
    }
}
