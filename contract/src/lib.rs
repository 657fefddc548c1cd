//! # The message contract
//!
//! What one SQS message of `nylas-webhook-sqs` holds, defined once for both ends of the queue:
//! the receiver writes messages with this crate and the consumer reads them with it.
//!
//! - The body is one notification, exactly the bytes Nylas sent: as text when SQS takes it,
//!   else [`Encoding::Base64`], else [`Encoding::GzipBase64`] ([`encode`], [`decode`]).
//! - The [`attribute`]s say what the notification is without reading the body.
//! - [`id`] is the deduplication key, stable across Nylas's retries: the v3 `id`, or the hex
//!   SHA-256 of the exact bytes (v2 has no id; a retried v2 POST resends the same deltas).
//!   A repeat of the same bytes within one POST gets a counter ([`repeat`]), so two
//!   notifications of one POST never share an id; [`gives_id`] checks either.
//!   [`IdRule`] says which rule made a message's id ([`attribute::ID_RULE`]), so that a
//!   consumer checks the bytes only against that rule, and a sender whose ids come from
//!   elsewhere (a header) passes through.
//! - [`FifoKeys`]: on a FIFO queue, one group per grant (or account), deduplicated on [`id`].
//! - [`emf`]: the one log line format both functions write metrics with.
//! - [`archive`]: the record the receiver archives for each message, which a replay sends again
//!   with [`attribute::REPLAY_ID`] and [`FifoKeys::replayed`].

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use flate2::bufread::MultiGzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::io::{Read, Write};

/// Message attribute names. Consumers filter and deduplicate on these.
pub mod attribute {
    /// `v3`, `v2` or `unknown` ([`super::ApiVersion`]).
    pub const API_VERSION: &str = "nylas-api-version";
    /// The trigger, suffixes included (`message.created.truncated`); absent when unknown.
    pub const TYPE: &str = "nylas-type";
    /// The deduplication key, [`super::id`].
    pub const ID: &str = "nylas-id";
    /// The v3 `grant_id` or the v2 `account_id`.
    pub const GRANT_ID: &str = "nylas-grant-id";
    /// The v3 `webhook_delivery_attempt` (1 to 3).
    pub const DELIVERY_ATTEMPT: &str = "nylas-delivery-attempt";
    /// `base64` or `gzip+base64` ([`super::Encoding`]); absent when the body is the text.
    pub const ENCODING: &str = "nylas-encoding";
    /// How [`ID`] was made ([`super::IdRule`]); absent on messages written before it was.
    pub const ID_RULE: &str = "nylas-id-rule";
    /// The receiver's Lambda request id: its log line for the POST that stored the message.
    pub const REQUEST_ID: &str = "nylas-request-id";
    /// Only on a message a replay sent: the replay's id. The consumer runs a notification once
    /// per replay, and once outside any.
    pub const REPLAY_ID: &str = "nylas-replay-id";
    /// The SQS system attribute that carries the receiver's X-Ray trace header, which links
    /// the receiver's and the consumer's invocations.
    pub const TRACE_HEADER: &str = "AWSTraceHeader";
}

/// The SQS data type of every attribute.
pub const STRING: &str = "String";
/// Longest attribute value copied from a notification (the body still carries a longer one):
/// attributes never crowd the body out of SQS's 1 MiB.
pub const MAX_ATTRIBUTE_VALUE: usize = 256;
/// `MessageGroupId` of notifications that name no grant or account.
pub const NO_GRANT_GROUP: &str = "no-grant";
/// Most bytes a `gzip+base64` body inflates to when decoded: the most Lambda carries.
pub const MAX_INFLATED: usize = 6 * 1024 * 1024;

/// Which Nylas payload shape a notification came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiVersion {
    V3,
    V2,
    /// Signed by Nylas, but neither a v3 notification nor a v2 `deltas` envelope.
    Unknown,
}

impl ApiVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            ApiVersion::V3 => "v3",
            ApiVersion::V2 => "v2",
            ApiVersion::Unknown => "unknown",
        }
    }

    /// The version an [`attribute::API_VERSION`] value names.
    pub fn parse(value: &str) -> Option<Self> {
        [ApiVersion::V3, ApiVersion::V2, ApiVersion::Unknown]
            .into_iter()
            .find(|v| v.as_str() == value)
    }
}

/// The deduplication key of a notification: `v3_id` when it is a usable key ([`is_key`]), or
/// else the hex SHA-256 of its exact `bytes`.
pub fn id(v3_id: Option<&str>, bytes: &[u8]) -> String {
    match v3_id.filter(|id| is_key(id)) {
        Some(id) => id.to_owned(),
        None => hex::encode(Sha256::digest(bytes)),
    }
}

/// The id of the `copy`-th notification (from 1) of one POST with the same bytes: `id` for the
/// first, `<id>-<copy>` for each repeat. The same POST sent again gives each the same id.
pub fn repeat(id: String, copy: usize) -> String {
    match copy {
        0 | 1 => id,
        copy => format!("{id}-{copy}"),
    }
}

/// Whether `id` is what [`id`] and [`repeat`] give for these bytes: the consumer's check that
/// a message's bytes are the ones the receiver named.
pub fn gives_id(id: &str, v3_id: Option<&str>, bytes: &[u8]) -> bool {
    let copy = |rest: &str| {
        let n = rest.strip_prefix('-').and_then(|n| n.parse::<usize>().ok());
        n.is_some_and(|n| n >= 2 && rest == format!("-{n}"))
    };
    match id.strip_prefix(self::id(v3_id, bytes).as_str()) {
        Some(rest) => rest.is_empty() || copy(rest),
        None => false,
    }
}

/// How a message's [`attribute::ID`] was made, so that the consumer checks the bytes against the
/// rule that made it and no other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdRule {
    /// The hex SHA-256 of the bytes, with [`repeat`]'s counter on a repeat.
    Sha256,
    /// The body's own top-level `id` member (Nylas v3).
    Member,
    /// Given by the sender apart from the bytes (a header): nothing in the bytes to check.
    Given,
}

impl IdRule {
    pub fn as_str(self) -> &'static str {
        match self {
            IdRule::Sha256 => "sha256",
            IdRule::Member => "member",
            IdRule::Given => "given",
        }
    }

    /// The rule an [`attribute::ID_RULE`] value names.
    pub fn parse(value: &str) -> Option<Self> {
        [IdRule::Sha256, IdRule::Member, IdRule::Given].into_iter().find(|r| r.as_str() == value)
    }

    /// The rule [`id`] followed for `v3_id`.
    pub fn of(v3_id: Option<&str>) -> Self {
        match v3_id.is_some_and(is_key) {
            true => IdRule::Member,
            false => IdRule::Sha256,
        }
    }
}

/// Whether `id` is 1 to 128 printable ASCII characters: what SQS takes as FIFO ids.
pub fn is_key(id: &str) -> bool {
    (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic())
}

/// What a FIFO queue needs on every message
/// (<https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/FIFO-queues-exactly-once-processing.html>).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FifoKeys {
    /// The grant (v3) or account (v2): notifications of one mailbox stay in order.
    pub group_id: String,
    /// [`id`]: a delivery retried within SQS's 5-minute window is stored once.
    pub deduplication_id: String,
}

impl FifoKeys {
    pub fn new(id: &str, grant_id: Option<&str>) -> Self {
        let group = grant_id.filter(|g| is_key(g)).unwrap_or(NO_GRANT_GROUP);
        Self { group_id: group.to_owned(), deduplication_id: id.to_owned() }
    }

    /// A replayed message's keys: its grant's group, so each grant's order holds within the
    /// replay, and a deduplication id of the replay and [`id`] (hex SHA-256: within SQS's 128
    /// characters), which the original's 5-minute deduplication does not swallow and a second
    /// run of the same replay within those 5 minutes does not store twice.
    pub fn replayed(replay_id: &str, id: &str, grant_id: Option<&str>) -> Self {
        let key = Sha256::digest(format!("{replay_id}#{id}"));
        Self { deduplication_id: hex::encode(key), ..Self::new(id, grant_id) }
    }
}

/// The archive: one JSON line per message the receiver stored, as Amazon Data Firehose writes
/// them to S3 under `<prefix>YYYY/MM/DD/HH/` (UTC, the hour Firehose received them).
pub mod archive {
    use serde::{Deserialize, Serialize};
    use std::collections::BTreeMap;

    /// Most bytes of one Firehose record, newline included
    /// (<https://docs.aws.amazon.com/firehose/latest/APIReference/API_PutRecordBatch.html>):
    /// a larger one is not archived, and said so.
    pub const MAX_RECORD: usize = 1_000 * 1024;

    /// One archived message: exactly what the queue got (body and attributes), and when the
    /// receiver received it.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct Record {
        /// Milliseconds since the Unix epoch at which the receiver received the POST.
        pub received_ms: u64,
        pub attributes: BTreeMap<String, String>,
        pub body: String,
    }

    impl Record {
        /// The record as one line of the archive, newline included.
        pub fn line(&self) -> Vec<u8> {
            let mut line = serde_json::to_vec(self).expect("strings and numbers serialize");
            line.push(b'\n');
            line
        }

        pub fn attribute(&self, name: &str) -> Option<&str> {
            self.attributes.get(name).map(String::as_str)
        }
    }

    /// The notifications the queue took and the archive did not (their `nylas-id`s), and the
    /// last reason why, as the receiver's log line names them.
    #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
    pub struct Unarchived {
        #[serde(rename = "archive_missing", skip_serializing_if = "Vec::is_empty")]
        pub ids: Vec<String>,
        #[serde(rename = "archive_error", skip_serializing_if = "Option::is_none")]
        pub reason: Option<String>,
    }

    impl Unarchived {
        pub fn add(&mut self, ids: Vec<String>, reason: String) {
            self.ids.extend(ids);
            self.reason = Some(reason);
        }
    }
}

/// How a message body holds the notification's bytes ([`attribute::ENCODING`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// The body is the notification's text.
    Text,
    Base64,
    /// Nylas's own gzip when it sent one, else the receiver's.
    GzipBase64,
}

impl Encoding {
    /// The [`attribute::ENCODING`] value, none for [`Encoding::Text`].
    pub fn attribute(self) -> Option<&'static str> {
        match self {
            Encoding::Text => None,
            Encoding::Base64 => Some("base64"),
            Encoding::GzipBase64 => Some("gzip+base64"),
        }
    }

    /// The encoding an [`attribute::ENCODING`] value (or its absence) names.
    pub fn parse(attribute: Option<&str>) -> Result<Self, DecodeError> {
        match attribute {
            None => Ok(Encoding::Text),
            Some("base64") => Ok(Encoding::Base64),
            Some("gzip+base64") => Ok(Encoding::GzipBase64),
            Some(_) => Err(DecodeError::UnknownEncoding),
        }
    }
}

/// The body for a notification's `bytes` and its encoding: the first that `fits` (a body length
/// and the encoding) of the text, base64, and gzip and base64 (`gzip`, Nylas's own, when it
/// sent one). Only the last is returned without asking `fits`.
pub fn encode<'a>(
    bytes: &'a [u8],
    gzip: Option<&'a [u8]>,
    fits: impl Fn(usize, Encoding) -> bool,
) -> (Cow<'a, str>, Encoding) {
    let text = std::str::from_utf8(bytes).ok().filter(|t| is_sqs_text(t));
    if let Some(text) = text.filter(|t| fits(t.len(), Encoding::Text)) {
        return (Cow::Borrowed(text), Encoding::Text);
    }
    let plain_fits = fits(bytes.len().div_ceil(3) * 4, Encoding::Base64);
    let body = match gzip {
        None if plain_fits => return (Cow::Owned(STANDARD.encode(bytes)), Encoding::Base64),
        Some(gzip) => STANDARD.encode(gzip),
        None => {
            let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
            let gzip = encoder.write_all(bytes).and_then(|()| encoder.finish());
            STANDARD.encode(gzip.expect("writing to a Vec cannot fail"))
        }
    };
    (Cow::Owned(body), Encoding::GzipBase64)
}

/// Why a message body could not be decoded. Says what is wrong, never what the body held.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("the nylas-encoding attribute names an encoding this contract does not know")]
    UnknownEncoding,
    #[error("the body is not canonical base64")]
    NotBase64,
    #[error("the body is not a complete gzip stream")]
    NotGzip,
    #[error("the body inflates to more than {MAX_INFLATED} bytes")]
    TooLarge,
}

/// The exact bytes of the notification in a message `body` written with `encoding`: base64
/// checked strictly (canonical padding and trailing bits), gzip as [`inflate`] reads it.
pub fn decode(body: &str, encoding: Encoding) -> Result<Cow<'_, [u8]>, DecodeError> {
    let base64 = || STANDARD.decode(body).map_err(|_| DecodeError::NotBase64);
    match encoding {
        Encoding::Text => Ok(Cow::Borrowed(body.as_bytes())),
        Encoding::Base64 => Ok(Cow::Owned(base64()?)),
        Encoding::GzipBase64 => Ok(Cow::Owned(inflate(&base64()?)?)),
    }
}

/// `gzip` inflated whole, every member of it (Nylas's gzip may hold several), each with its
/// checksum and length checked: [`DecodeError::NotGzip`] when it is not a complete gzip
/// stream, [`DecodeError::TooLarge`] when it inflates past [`MAX_INFLATED`].
pub fn inflate(gzip: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let mut plain = Vec::new();
    let cap = MAX_INFLATED as u64 + 1;
    match MultiGzDecoder::new(gzip).take(cap).read_to_end(&mut plain) {
        Err(_) => Err(DecodeError::NotGzip),
        Ok(n) if n > MAX_INFLATED => Err(DecodeError::TooLarge),
        Ok(_) => Ok(plain),
    }
}

/// Whether SQS takes `text` as it is: `#x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD |
/// #x10000-#x10FFFF` (<https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessage.html>).
/// Valid UTF-8 holds no surrogates, so control bytes, U+FFFE and U+FFFF are left to refuse.
pub fn is_sqs_text(text: &str) -> bool {
    // A fold, not `any`: with no early exit the compiler checks many bytes at once.
    let control = |b: u8| (b < 0x20) & (b != b'\t') & (b != b'\n') & (b != b'\r');
    let controls = text.bytes().fold(false, |found, b| found | control(b));
    !controls && !text.contains('\u{FFFE}') && !text.contains('\u{FFFF}')
}

/// SQS refuses empty string attributes, and their values must be text as bodies are.
pub fn is_attribute_value(value: &str) -> bool {
    !value.is_empty() && value.len() <= MAX_ATTRIBUTE_VALUE && is_sqs_text(value)
}

/// CloudWatch's embedded metric format (EMF): one JSON log line per request or message is also
/// a metrics record, so CloudWatch makes metrics of it with no API call and no permission
/// (<https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>).
/// Both functions write with this module, in one namespace.
pub mod emf {
    use serde_json::{json, Value};
    use std::io::Write;
    use std::time::{SystemTime, UNIX_EPOCH};

    /// The CloudWatch namespace of both functions' metrics; the template's alarms use it too.
    pub const NAMESPACE: &str = "NylasWebhookSqs";

    /// The value of the `FunctionName` dimension every metric carries, so that two stacks in
    /// one account and region write two metrics and each stack's alarms read their own: the
    /// name Lambda gives the function (`AWS_LAMBDA_FUNCTION_NAME`), `local` elsewhere.
    pub fn function_name() -> &'static str {
        static NAME: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "local".to_owned())
        });
        &NAME
    }

    /// Milliseconds since the Unix epoch, EMF's timestamp.
    pub fn now_ms() -> u64 {
        let now = SystemTime::now().duration_since(UNIX_EPOCH);
        now.unwrap_or_default().as_millis() as u64
    }

    /// A line's `_aws` member: for each directive, the dimensions and the names of the count
    /// metrics the line carries as top-level members.
    pub fn metadata(timestamp_ms: u64, directives: &[(&[&str], &[&str])]) -> Value {
        let directives: Vec<Value> = directives
            .iter()
            .map(|(dimensions, names)| {
                let metrics: Vec<Value> =
                    names.iter().map(|n| json!({"Name": n, "Unit": "Count"})).collect();
                json!({"Namespace": NAMESPACE, "Dimensions": [dimensions], "Metrics": metrics})
            })
            .collect();
        json!({"Timestamp": timestamp_ms, "CloudWatchMetrics": directives})
    }

    /// Writes one line to standard output, where Lambda sends it to CloudWatch. A line that
    /// cannot be written is lost, never a failed request (`println!` would panic); `captured`
    /// (a caller's `cfg!(test)`) writes with `println!`, which the test harness captures.
    pub fn write(line: &str, captured: bool) {
        if captured {
            println!("{line}");
        } else {
            let _ = writeln!(std::io::stdout().lock(), "{line}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replayed_message_keeps_its_group_and_gets_a_key_of_its_replay() {
        let original = FifoKeys::new("n-1", Some("g-1"));
        let first = FifoKeys::replayed("r-1", "n-1", Some("g-1"));
        assert_eq!(first.group_id, "g-1");
        assert_ne!(first.deduplication_id, original.deduplication_id);
        assert_eq!(first, FifoKeys::replayed("r-1", "n-1", Some("g-1")), "the same replay");
        assert_ne!(first, FifoKeys::replayed("r-2", "n-1", Some("g-1")), "another replay");
        assert_ne!(first, FifoKeys::replayed("r-1", "n-2", Some("g-1")));
        assert!(is_key(&first.deduplication_id));
        assert_eq!(FifoKeys::replayed("r", &"x".repeat(128), None).group_id, NO_GRANT_GROUP);
    }

    #[test]
    fn an_archive_record_is_one_json_line_that_reads_back() {
        let attributes = [(attribute::ID.to_owned(), "n-1".to_owned())].into();
        let record = archive::Record { received_ms: 7, attributes, body: "{\"a\":\n1}".into() };
        let line = record.line();
        assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1, "one line");
        assert_eq!(line.last(), Some(&b'\n'));
        let back: archive::Record = serde_json::from_slice(&line).unwrap();
        assert_eq!(
            (back.attribute(attribute::ID), back.body.as_str()),
            (Some("n-1"), "{\"a\":\n1}")
        );
        assert_eq!(back, record);
    }

    fn round_trip(bytes: &[u8], gzip: Option<&[u8]>, room: usize) -> (Vec<u8>, Encoding) {
        let (body, encoding) = encode(bytes, gzip, |len, _| len <= room);
        let attribute = encoding.attribute();
        let decoded = decode(&body, Encoding::parse(attribute).unwrap()).unwrap();
        (decoded.into_owned(), encoding)
    }

    #[test]
    fn every_encoding_gives_back_the_exact_bytes() {
        let text = br#"{"deltas": [{"type": "message.created"}]}"#;
        assert_eq!(round_trip(text, None, 1000), (text.to_vec(), Encoding::Text));
        let binary = b"\x00\x01\xff text with a control byte";
        let expected = (binary.to_vec(), Encoding::Base64);
        assert_eq!(round_trip(binary, None, 1000), expected);
        let large = "a".repeat(3000);
        let expected = (large.as_bytes().to_vec(), Encoding::GzipBase64);
        assert_eq!(round_trip(large.as_bytes(), None, 100), expected);
    }

    #[test]
    fn nylas_gzip_is_kept_and_inflates_to_the_bytes() {
        let plain = b"\x01 not text".repeat(50);
        let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
        encoder.write_all(&plain).unwrap();
        let gzip = encoder.finish().unwrap();
        let (body, encoding) = encode(&plain, Some(&gzip), |len, _| len <= 10);
        assert_eq!(encoding, Encoding::GzipBase64);
        assert_eq!(STANDARD.decode(body.as_bytes()).unwrap(), gzip);
        assert_eq!(decode(&body, encoding).unwrap(), plain.as_slice());
    }

    #[test]
    fn a_body_that_is_not_what_its_encoding_says_is_refused() {
        assert_eq!(decode("a?==", Encoding::Base64), Err(DecodeError::NotBase64));
        // Trailing bits set: another encoder's spelling of the same bytes.
        assert_eq!(decode("QR==", Encoding::Base64), Err(DecodeError::NotBase64));
        let not_gzip = STANDARD.encode("plain");
        let refused = decode(&not_gzip, Encoding::GzipBase64);
        assert_eq!(refused, Err(DecodeError::NotGzip));
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(b"{}").unwrap();
        let mut gzip = encoder.finish().unwrap();
        let truncated = STANDARD.encode(&gzip[..gzip.len() - 1]);
        let refused = decode(&truncated, Encoding::GzipBase64);
        assert_eq!(refused, Err(DecodeError::NotGzip));
        gzip.push(0);
        let trailing = STANDARD.encode(&gzip);
        let refused = decode(&trailing, Encoding::GzipBase64);
        assert_eq!(refused, Err(DecodeError::NotGzip));
    }

    #[test]
    fn id_rules_read_back_what_they_write_and_name_the_rule_id_followed() {
        for rule in [IdRule::Sha256, IdRule::Member, IdRule::Given] {
            assert_eq!(IdRule::parse(rule.as_str()), Some(rule));
        }
        let names = [IdRule::Sha256, IdRule::Member, IdRule::Given].map(IdRule::as_str);
        assert_eq!(names, ["sha256", "member", "given"]);
        assert_eq!(IdRule::parse("crc32"), None);
        assert_eq!(IdRule::of(Some("n-1")), IdRule::Member);
        assert_eq!((IdRule::of(None), IdRule::of(Some("a b"))), (IdRule::Sha256, IdRule::Sha256));
    }

    #[test]
    fn an_emf_record_names_its_metrics_by_their_dimensions_at_its_time() {
        let at = emf::now_ms();
        assert!(at > 1_700_000_000_000, "milliseconds since the epoch, now: {at}");
        let record = emf::metadata(
            at,
            &[(&["FunctionName"], &["A", "B"]), (&["FunctionName", "reason"], &["C"])],
        );
        let directives = &record["CloudWatchMetrics"];
        assert_eq!(record["Timestamp"], at);
        assert_eq!(directives[0]["Namespace"], emf::NAMESPACE);
        assert_eq!(directives[0]["Dimensions"], serde_json::json!([["FunctionName"]]));
        let names = |d: &serde_json::Value| {
            d["Metrics"].as_array().unwrap().iter().map(|m| m["Name"].clone()).collect::<Vec<_>>()
        };
        assert_eq!(names(&directives[0]), ["A", "B"]);
        assert_eq!(directives[1]["Dimensions"], serde_json::json!([["FunctionName", "reason"]]));
        assert_eq!(directives[1]["Metrics"][0], serde_json::json!({"Name": "C", "Unit": "Count"}));
    }

    #[test]
    fn the_function_name_is_lambda_s_or_local() {
        let lambda = std::env::var("AWS_LAMBDA_FUNCTION_NAME");
        assert_eq!(emf::function_name(), lambda.as_deref().unwrap_or("local"));
    }

    #[test]
    fn gzip_of_several_members_inflates_to_all_of_them() {
        let member = |bytes: &[u8]| {
            let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
            encoder.write_all(bytes).unwrap();
            encoder.finish().unwrap()
        };
        let two = [member(b"{\"a\":"), member(b"1}")].concat();
        let body = STANDARD.encode(&two);
        let decoded = decode(&body, Encoding::GzipBase64).unwrap();
        assert_eq!(decoded, b"{\"a\":1}".as_slice());
    }

    #[test]
    fn repeats_of_the_same_bytes_get_distinct_ids_that_still_check() {
        let first = id(None, b"{}");
        assert_eq!(repeat(first.clone(), 1), first);
        let second = repeat(first.clone(), 2);
        assert_eq!(second, format!("{first}-2"));
        assert!(gives_id(&first, None, b"{}") && gives_id(&second, None, b"{}"));
        assert!(gives_id("n-1", Some("n-1"), b"{}") && gives_id("n-1-3", Some("n-1"), b"{}"));
        for wrong in ["-1", "-02", "-0", "-x", "2", "-2-2", "-"] {
            assert!(!gives_id(&format!("{first}{wrong}"), None, b"{}"), "{wrong}");
        }
        assert!(!gives_id(&second, None, b"[]"));
    }

    #[test]
    fn gzip_that_inflates_past_the_cap_is_refused() {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
        encoder.write_all(&vec![b'a'; MAX_INFLATED + 1]).unwrap();
        let body = STANDARD.encode(encoder.finish().unwrap());
        let refused = decode(&body, Encoding::GzipBase64);
        assert_eq!(refused, Err(DecodeError::TooLarge));
        let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
        encoder.write_all(&vec![b'a'; MAX_INFLATED]).unwrap();
        let body = STANDARD.encode(encoder.finish().unwrap());
        assert_eq!(decode(&body, Encoding::GzipBase64).unwrap().len(), MAX_INFLATED);
    }

    #[test]
    fn base64_is_chosen_exactly_while_it_fits() {
        let bytes = b"\x00\x01\x02\x03"; // 8 characters of base64
        let fits =
            |room: usize| move |len: usize, e: Encoding| e == Encoding::Base64 && len <= room;
        assert_eq!(encode(bytes, None, fits(8)).1, Encoding::Base64);
        assert_eq!(encode(bytes, None, fits(7)).1, Encoding::GzipBase64);
    }

    #[test]
    fn text_is_what_sqs_takes() {
        assert!(is_sqs_text("tab\t, newline\n, return\r, é, 😀"));
        for refused in ["\u{1}", "a\u{1}\u{2}", "\u{1f}", "\u{FFFE}", "\u{FFFF}", "a\u{0}"] {
            assert!(!is_sqs_text(refused), "{refused:?}");
        }
        assert!(is_attribute_value("x") && is_attribute_value(&"x".repeat(MAX_ATTRIBUTE_VALUE)));
        for refused in [String::new(), "x".repeat(MAX_ATTRIBUTE_VALUE + 1), "\u{1}".to_owned()] {
            assert!(!is_attribute_value(&refused), "{refused:?}");
        }
    }

    #[test]
    fn the_inflated_cap_is_the_most_lambda_carries() {
        // docs/http.md, "Body size": 6 MiB, the receiver's own cap.
        assert_eq!(MAX_INFLATED, 6_291_456);
    }

    #[test]
    fn unknown_encodings_are_named_as_such() {
        for value in ["gzip", "BASE64", ""] {
            assert_eq!(Encoding::parse(Some(value)), Err(DecodeError::UnknownEncoding));
        }
        assert_eq!(Encoding::parse(None), Ok(Encoding::Text));
    }

    #[test]
    fn the_id_is_the_v3_id_or_the_hash_of_the_bytes() {
        assert_eq!(id(Some("n-1"), b"{}"), "n-1");
        let hash = "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
        assert_eq!(id(None, b"{}"), hash);
        assert_eq!(id(Some("has space"), b"{}"), hash);
        assert_eq!(id(Some(&"x".repeat(129)), b"{}"), hash);
        assert!(is_key(&"x".repeat(128)) && !is_key(""));
    }

    #[test]
    fn fifo_keys_group_by_grant_and_deduplicate_on_the_id() {
        let keys = FifoKeys::new("n-1", Some("grant-1"));
        assert_eq!((keys.group_id.as_str(), keys.deduplication_id.as_str()), ("grant-1", "n-1"));
        assert_eq!(FifoKeys::new("n-1", None).group_id, NO_GRANT_GROUP);
        assert_eq!(FifoKeys::new("n-1", Some("a b")).group_id, NO_GRANT_GROUP);
    }

    #[test]
    fn api_versions_read_back_what_they_write() {
        for v in [ApiVersion::V3, ApiVersion::V2, ApiVersion::Unknown] {
            assert_eq!(ApiVersion::parse(v.as_str()), Some(v));
        }
        assert_eq!(ApiVersion::parse("v4"), None);
    }
}
