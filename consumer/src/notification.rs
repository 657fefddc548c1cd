//! One SQS message of the receiver's into a [`Notification`]: the exact bytes Nylas sent, checked
//! against the message's `nylas-id` by the rule it names, and typed views of them through serde.

use aws_lambda_events::event::sqs::SqsMessage;
use nylas_sqs_contract::{
    attribute, decode, gives_id, is_key, ApiVersion, DecodeError, Encoding, IdRule,
};
use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use std::fmt;

/// One notification, as Nylas sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// `nylas-id`: the v3 `id`, or the SHA-256 of the bytes (with `-2`, `-3`... on a repeat of the
    /// same bytes within one POST), or what the sender gave (a fork's header). The same on
    /// every retry.
    pub id: String,
    pub api_version: ApiVersion,
    /// The trigger with its suffixes parsed; `None` for a notification of unknown shape.
    pub kind: Option<Type>,
    /// The v3 `grant_id` or the v2 `account_id`.
    pub grant_id: Option<String>,
    /// The v3 `webhook_delivery_attempt` (1 to 3).
    pub delivery_attempt: Option<u64>,
    /// The exact bytes Nylas sent: the v3 body, or one v2 delta.
    pub bytes: Vec<u8>,
    /// The replay that sent it again (`nylas-replay-id`), or `None` for the receiver's.
    pub replay_id: Option<String>,
}

impl Notification {
    /// The v3 envelope, with `data.object` left as raw JSON for the team's own types.
    pub fn v3(&self) -> Result<Envelope<'_>, serde_json::Error> {
        serde_json::from_slice(&self.bytes)
    }

    /// The v2 delta, with `object_data.attributes` left as raw JSON.
    pub fn v2(&self) -> Result<Delta<'_>, serde_json::Error> {
        serde_json::from_slice(&self.bytes)
    }
}

/// A Nylas v3 notification (<https://developer.nylas.com/docs/v3/notifications/webhooks/>).
#[derive(Debug, Deserialize)]
pub struct Envelope<'a> {
    #[serde(rename = "type")]
    pub kind: Type,
    pub id: String,
    /// Unix seconds.
    pub time: i64,
    pub webhook_delivery_attempt: Option<u64>,
    pub source: Option<String>,
    #[serde(borrow)]
    pub data: Data<'a>,
}

#[derive(Debug, Deserialize)]
pub struct Data<'a> {
    pub application_id: Option<String>,
    /// The object the notification is about (a message, an event, a grant...), as sent.
    #[serde(borrow)]
    pub object: &'a RawValue,
}

/// A Nylas v2 delta (<https://developer.nylas.com/docs/v2/notifications/webhooks/>).
#[derive(Debug, Deserialize)]
pub struct Delta<'a> {
    #[serde(rename = "type")]
    pub kind: Type,
    /// Unix seconds.
    pub date: Option<i64>,
    pub object: Option<String>,
    #[serde(borrow)]
    pub object_data: Option<ObjectData<'a>>,
}

#[derive(Debug, Deserialize)]
pub struct ObjectData<'a> {
    pub id: Option<String>,
    pub account_id: Option<String>,
    pub namespace_id: Option<String>,
    pub object: Option<String>,
    #[serde(borrow)]
    pub attributes: Option<&'a RawValue>,
    #[serde(borrow)]
    pub metadata: Option<&'a RawValue>,
}

/// A notification type such as `message.created.cleaned.transformed.truncated`: the trigger
/// (`message.created`) and the suffixes Nylas adds when it changed what it sent. A type this
/// crate does not know is kept as it came, never an error.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Type {
    /// The type as Nylas sent it.
    pub name: String,
    /// The trigger without its suffixes.
    pub trigger: String,
    /// The object was over 1 MB: Nylas left out its body; fetch it with the API.
    pub truncated: bool,
    /// Nylas transformed the message (Transform settings).
    pub transformed: bool,
    /// Nylas cleaned the message body (Clean Conversations).
    pub cleaned: bool,
}

impl Type {
    pub fn parse(kind: &str) -> Self {
        let mut parsed = Type {
            name: kind.to_owned(),
            trigger: kind.to_owned(),
            truncated: false,
            transformed: false,
            cleaned: false,
        };
        loop {
            let trigger = parsed.trigger.as_str();
            let (rest, flag) = if let Some(rest) = trigger.strip_suffix(".truncated") {
                (rest, &mut parsed.truncated)
            } else if let Some(rest) = trigger.strip_suffix(".transformed") {
                (rest, &mut parsed.transformed)
            } else if let Some(rest) = trigger.strip_suffix(".cleaned") {
                (rest, &mut parsed.cleaned)
            } else {
                return parsed;
            };
            if *flag || rest.is_empty() {
                return parsed;
            }
            *flag = true;
            parsed.trigger.truncate(rest.len());
        }
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl<'de> Deserialize<'de> for Type {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Type::parse(&String::deserialize(deserializer)?))
    }
}

/// Why a message is not a notification this crate can hand over. Each says what is wrong with
/// the message, never what it holds; such a message goes back to the queue and, after
/// `maxReceiveCount` receives, to the dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("the message has no {0} attribute: it was not written by the receiver")]
    NotFromReceiver(&'static str),
    #[error("the message's body does not decode: {0}")]
    Undecodable(#[from] DecodeError),
    #[error("the notification is not valid JSON")]
    InvalidJson,
    #[error(
        "the notification's bytes do not give its nylas-id: changed after the receiver wrote it"
    )]
    IdMismatch,
    #[error("the nylas-id-rule attribute names a rule this crate does not know")]
    UnknownIdRule,
}

/// The value of `message`'s string attribute `name`.
pub(crate) fn attribute_of<'a>(message: &'a SqsMessage, name: &str) -> Option<&'a str> {
    let attribute = message.message_attributes.get(name);
    attribute.and_then(|a| a.string_value.as_deref())
}

/// The notification in `message`: decoded as its `nylas-encoding` says, and checked: a v3 or
/// v2 notification must be JSON, and the bytes must give the message's `nylas-id` by the rule
/// its `nylas-id-rule` names (Nylas's rule when it names none: messages written before it).
pub fn decode_message(message: &SqsMessage) -> Result<Notification, MessageError> {
    let value = |name: &str| attribute_of(message, name);
    let id = value(attribute::ID).ok_or(MessageError::NotFromReceiver(attribute::ID))?;
    let version = value(attribute::API_VERSION).and_then(ApiVersion::parse);
    let version = version.ok_or(MessageError::NotFromReceiver(attribute::API_VERSION))?;
    let rule = match value(attribute::ID_RULE) {
        None => None,
        Some(rule) => Some(IdRule::parse(rule).ok_or(MessageError::UnknownIdRule)?),
    };
    let body = message.body.as_deref().unwrap_or_default();
    let bytes = decode(body, Encoding::parse(value(attribute::ENCODING))?)?;
    let json = |bytes: &[u8]| -> Result<Option<String>, MessageError> {
        #[derive(Deserialize)]
        struct Id {
            id: Option<serde_json::Value>,
        }
        let id: Id = serde_json::from_slice(bytes).map_err(|_| MessageError::InvalidJson)?;
        Ok(id.id.and_then(|id| id.as_str().map(str::to_owned)))
    };
    let member = match version {
        ApiVersion::Unknown => None,
        ApiVersion::V2 => {
            serde_json::from_slice::<IgnoredAny>(&bytes).map_err(|_| MessageError::InvalidJson)?;
            None
        }
        ApiVersion::V3 => json(&bytes)?,
    };
    let gives = match rule {
        None => gives_id(id, member.as_deref(), &bytes),
        Some(IdRule::Sha256) => gives_id(id, None, &bytes),
        Some(IdRule::Member) => {
            member.or_else(|| json(&bytes).ok().flatten()).as_deref() == Some(id)
        }
        Some(IdRule::Given) => is_key(id),
    };
    if !gives {
        return Err(MessageError::IdMismatch);
    }
    Ok(Notification {
        id: id.to_owned(),
        api_version: version,
        kind: value(attribute::TYPE).map(Type::parse),
        grant_id: value(attribute::GRANT_ID).map(str::to_owned),
        delivery_attempt: value(attribute::DELIVERY_ATTEMPT).and_then(|a| a.parse().ok()),
        bytes: bytes.into_owned(),
        replay_id: value(attribute::REPLAY_ID).map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn message(body: &str, attributes: &[(&str, &str)]) -> SqsMessage {
        let attributes: serde_json::Map<_, _> = attributes
            .iter()
            .map(|(k, v)| (k.to_string(), json!({"stringValue": v, "dataType": "String"})))
            .collect();
        let message = json!({"messageId": "m-1", "body": body, "messageAttributes": attributes});
        serde_json::from_value(message).unwrap()
    }

    const V3: &str = r#"{"specversion":"1.0","type":"message.created.truncated","source":"/google/emails/realtime","id":"n-1","time":1695415185,"webhook_delivery_attempt":2,"data":{"application_id":"app","object":{"id":"m","grant_id":"g"}}}"#;

    fn v3_message() -> SqsMessage {
        let attributes = [
            (attribute::ID, "n-1"),
            (attribute::API_VERSION, "v3"),
            (attribute::TYPE, "message.created.truncated"),
            (attribute::GRANT_ID, "g"),
            (attribute::DELIVERY_ATTEMPT, "2"),
        ];
        message(V3, &attributes)
    }

    #[test]
    fn a_v3_message_gives_its_notification_and_envelope() {
        let n = decode_message(&v3_message()).unwrap();
        assert_eq!((n.id.as_str(), n.api_version), ("n-1", ApiVersion::V3));
        assert_eq!(n.bytes, V3.as_bytes());
        assert_eq!(n.kind, Some(Type::parse("message.created.truncated")));
        assert_eq!((n.grant_id.as_deref(), n.delivery_attempt), (Some("g"), Some(2)));
        let envelope = n.v3().unwrap();
        assert_eq!(envelope.kind.trigger, "message.created");
        assert!(envelope.kind.truncated);
        assert_eq!((envelope.time, envelope.webhook_delivery_attempt), (1695415185, Some(2)));
        assert_eq!(envelope.data.object.get(), r#"{"id":"m","grant_id":"g"}"#);
    }

    #[test]
    fn a_v2_delta_is_checked_against_its_hash() {
        let delta = r#"{"date": 1, "object": "message", "type": "message.created", "object_data": {"account_id": "a", "attributes": {"x": 1}}}"#;
        let id = nylas_sqs_contract::id(None, delta.as_bytes());
        let attributes = [(attribute::ID, id.as_str()), (attribute::API_VERSION, "v2")];
        let n = decode_message(&message(delta, &attributes)).unwrap();
        let parsed = n.v2().unwrap();
        assert_eq!(parsed.kind.trigger, "message.created");
        let data = parsed.object_data.unwrap();
        assert_eq!(data.account_id.as_deref(), Some("a"));
        assert_eq!(data.attributes.unwrap().get(), r#"{"x": 1}"#);
        let changed = delta.replace("\"a\"", "\"b\"");
        let refused = decode_message(&message(&changed, &attributes));
        assert_eq!(refused, Err(MessageError::IdMismatch));
    }

    #[test]
    fn messages_not_from_the_receiver_are_refused_by_name() {
        let refused = decode_message(&message("{}", &[]));
        assert_eq!(refused, Err(MessageError::NotFromReceiver(attribute::ID)));
        let no_version = decode_message(&message("{}", &[(attribute::ID, "x")]));
        let expected = Err(MessageError::NotFromReceiver(attribute::API_VERSION));
        assert_eq!(no_version, expected);
        let v4 = [(attribute::ID, "x"), (attribute::API_VERSION, "v4")];
        assert_eq!(decode_message(&message("{}", &v4)), expected);
    }

    #[test]
    fn invalid_json_and_unknown_encodings_are_refused() {
        let v3 = [(attribute::ID, "n-1"), (attribute::API_VERSION, "v3")];
        let refused = decode_message(&message("{\"id\":\"n-1\"", &v3));
        assert_eq!(refused, Err(MessageError::InvalidJson));
        let id = nylas_sqs_contract::id(None, b"[1,");
        let v2 = [(attribute::ID, id.as_str()), (attribute::API_VERSION, "v2")];
        assert_eq!(decode_message(&message("[1,", &v2)), Err(MessageError::InvalidJson));
        let zstd =
            [(attribute::ID, "n-1"), (attribute::API_VERSION, "v3"), (attribute::ENCODING, "zstd")];
        let refused = decode_message(&message(V3, &zstd));
        assert_eq!(refused, Err(DecodeError::UnknownEncoding.into()));
    }

    #[test]
    fn a_v3_id_that_is_not_the_bodys_is_refused() {
        let other = [(attribute::ID, "n-2"), (attribute::API_VERSION, "v3")];
        assert_eq!(decode_message(&message(V3, &other)), Err(MessageError::IdMismatch));
    }

    #[test]
    fn unknown_shapes_are_handed_over_as_they_came() {
        let bytes = "not json at all";
        let id = nylas_sqs_contract::id(None, bytes.as_bytes());
        let attributes = [(attribute::ID, id.as_str()), (attribute::API_VERSION, "unknown")];
        let n = decode_message(&message(bytes, &attributes)).unwrap();
        assert_eq!((n.bytes.as_slice(), n.kind), (bytes.as_bytes(), None));
    }

    #[test]
    fn suffixes_parse_in_any_combination_and_print_back() {
        let all = Type::parse("message.created.cleaned.transformed.truncated");
        assert_eq!(all.trigger, "message.created");
        assert!(all.cleaned && all.transformed && all.truncated);
        assert_eq!(all.to_string(), "message.created.cleaned.transformed.truncated");
        let one = Type::parse("message.updated.transformed");
        assert!(one.transformed && !one.truncated && !one.cleaned);
        assert_eq!(one.trigger, "message.updated");
        let plain = Type::parse("grant.expired");
        assert!(!plain.truncated && !plain.transformed && !plain.cleaned);
        assert_eq!(plain.to_string(), "grant.expired");
        // Unknown types and odd spellings are kept, never an error.
        assert_eq!(Type::parse("truncated").trigger, "truncated");
        assert_eq!(Type::parse(".truncated").trigger, ".truncated");
        let twice = Type::parse("a.truncated.truncated");
        assert_eq!((twice.trigger.as_str(), twice.truncated), ("a.truncated", true));
        assert_eq!(Type::parse("future.thing.new").trigger, "future.thing.new");
    }

    /// The rule a message names is the one its bytes are checked by: a fork's id given in a
    /// header passes, a hash or a member that the bytes do not give does not.
    #[test]
    fn the_id_is_checked_by_the_rule_the_message_names() {
        let with = |id: &str, rule: &str, body: &str| {
            let attributes = [
                (attribute::ID, id),
                (attribute::API_VERSION, "unknown"),
                (attribute::ID_RULE, rule),
            ];
            decode_message(&message(body, &attributes)).map(|n| n.id)
        };
        let body = r#"{"id":"evt-1","action":"opened"}"#;
        assert_eq!(with("delivery-72d3", "given", body), Ok("delivery-72d3".to_owned()));
        assert_eq!(with("evt-1", "member", body), Ok("evt-1".to_owned()));
        let hash = nylas_sqs_contract::id(None, body.as_bytes());
        assert_eq!(with(&hash, "sha256", body), Ok(hash.clone()));
        assert_eq!(with(&format!("{hash}-2"), "sha256", body), Ok(format!("{hash}-2")));
        for (id, rule) in [("evt-2", "member"), ("evt-1", "sha256"), ("", "given")] {
            assert_eq!(with(id, rule, body), Err(MessageError::IdMismatch), "{rule}");
        }
        assert_eq!(with("evt-1", "crc32", body), Err(MessageError::UnknownIdRule));
        let v3 = [
            (attribute::ID, "n-1"),
            (attribute::API_VERSION, "v3"),
            (attribute::ID_RULE, "member"),
        ];
        assert_eq!(decode_message(&message(V3, &v3)).map(|n| n.id), Ok("n-1".to_owned()));
    }
}
