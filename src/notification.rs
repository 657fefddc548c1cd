//! Splitting a verified body into notifications, each with the exact bytes Nylas sent.
//!
//! - v3 (`specversion` present): the body is one notification
//!   (<https://developer.nylas.com/docs/v3/notifications/webhooks/>).
//! - v2 (`{"deltas": [...]}`): one notification per delta, sliced out of the body as it was.
//!   Re-serialising would change the bytes consumers see (v2 uses `", "` separators), so
//!   each delta is its exact slice of the body.
//! - Anything else that was signed is still a notification: it is forwarded whole and marked
//!   [`ApiVersion::Unknown`], never dropped.
//!
//! The body is read once, with [`crate::json::Reader`]. The fields read for message attributes
//! are lenient: a field of an unexpected type, or written twice, is ignored, never a reason to
//! lose the notification.

use crate::json::{Invalid, Reader};
use std::borrow::Cow;

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
}

/// A notification's exact bytes: text when the body is UTF-8, which [`split`] checks once for
/// the whole body, and bytes otherwise (only ever a whole body, marked unknown).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Raw<'a> {
    Text(&'a str),
    Binary(&'a [u8]),
}

impl<'a> Raw<'a> {
    /// `bytes` as text if they are UTF-8.
    pub fn of(bytes: &'a [u8]) -> Self {
        match std::str::from_utf8(bytes) {
            Ok(text) => Raw::Text(text),
            Err(_) => Raw::Binary(bytes),
        }
    }

    pub fn as_bytes(self) -> &'a [u8] {
        match self {
            Raw::Text(text) => text.as_bytes(),
            Raw::Binary(bytes) => bytes,
        }
    }
}

/// One notification: its exact bytes and what the message attributes are made of. The
/// attribute values borrow from the body unless they were written with escapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification<'a> {
    /// The bytes as they stood in the body: the whole body (v3, unknown) or one delta (v2).
    pub raw: Raw<'a>,
    pub api_version: ApiVersion,
    /// The trigger, suffixes included (`message.created.truncated`).
    pub kind: Option<Cow<'a, str>>,
    /// The v3 notification id, the deduplication key. v2 deltas have none.
    pub id: Option<Cow<'a, str>>,
    /// The v3 `grant_id` or the v2 `account_id`.
    pub grant_id: Option<Cow<'a, str>>,
    /// The v3 `webhook_delivery_attempt` (1 to 3).
    pub delivery_attempt: Option<u64>,
}

impl<'a> Notification<'a> {
    fn unknown(raw: Raw<'a>) -> Self {
        Self {
            raw,
            api_version: ApiVersion::Unknown,
            kind: None,
            id: None,
            grant_id: None,
            delivery_attempt: None,
        }
    }
}

/// Splits a verified body into its notifications, in the order they appear.
///
/// A v2 body with an empty `deltas` array holds no notification and yields none.
pub fn split(body: &[u8]) -> Vec<Notification<'_>> {
    let Ok(text) = std::str::from_utf8(body) else {
        return vec![Notification::unknown(Raw::Binary(body))];
    };
    match read_envelope(text) {
        Ok(Some(notifications)) => notifications,
        Ok(None) | Err(Invalid) => vec![Notification::unknown(Raw::Text(text))],
    }
}

/// Reads the top level of either shape in one pass; `None` when it is neither.
fn read_envelope(text: &str) -> Result<Option<Vec<Notification<'_>>>, Invalid> {
    let mut reader = Reader::new(text);
    if reader.peek() != Some(b'{') {
        return Ok(None);
    }
    let mut v3 = false;
    let mut deltas = Field::Missing;
    let mut kind = Field::Missing;
    let mut id = Field::Missing;
    let mut delivery_attempt = Field::Missing;
    let mut grant_id = Field::Missing;
    let mut object_grant_id = Field::Missing;
    reader.object(|reader, key| {
        match key.decode().as_deref() {
            Some("specversion") => {
                v3 = true;
                reader.skip()?;
            }
            Some("deltas") => deltas.set(read_deltas(reader)?),
            Some("type") => kind.set(reader.text()?),
            Some("id") => id.set(reader.text()?),
            Some("webhook_delivery_attempt") => delivery_attempt.set(reader.unsigned()?),
            Some("data") => {
                // `grant_id` is at `data.object.grant_id`, and for tracking types at
                // `data.grant_id`.
                reader.nested(|reader, key| {
                    if key.is("grant_id") {
                        grant_id.set(reader.text()?);
                        Ok(())
                    } else if key.is("object") {
                        read_text_member(reader, "grant_id", &mut object_grant_id)
                    } else {
                        reader.skip()
                    }
                })?;
            }
            _ => reader.skip()?,
        }
        Ok(())
    })?;
    reader.finish()?;
    if v3 {
        return Ok(Some(vec![Notification {
            raw: Raw::Text(text),
            api_version: ApiVersion::V3,
            kind: kind.value(),
            id: id.value(),
            grant_id: object_grant_id.value().or(grant_id.value()),
            delivery_attempt: delivery_attempt.value(),
        }]));
    }
    // A second `deltas` array would leave it unclear which holds the notifications: the
    // body is then forwarded whole.
    Ok(deltas.value())
}

/// Reads `deltas`: `Some` notifications if it is an array, `None` otherwise.
fn read_deltas<'a>(reader: &mut Reader<'a>) -> Result<Option<Vec<Notification<'a>>>, Invalid> {
    if reader.peek() != Some(b'[') {
        return reader.skip().map(|()| None);
    }
    let mut deltas = Vec::new();
    reader.array(|reader| {
        let (raw, (kind, account_id)) = reader.spanned(read_delta)?;
        deltas.push(Notification {
            raw: Raw::Text(raw),
            api_version: ApiVersion::V2,
            kind,
            id: None,
            grant_id: account_id,
            delivery_attempt: None,
        });
        Ok(())
    })?;
    Ok(Some(deltas))
}

type Text<'a> = Option<Cow<'a, str>>;

/// Reads one delta's `type` and `object_data.account_id`. A delta of any JSON type is still a
/// notification; it just has no attributes.
fn read_delta<'a>(reader: &mut Reader<'a>) -> Result<(Text<'a>, Text<'a>), Invalid> {
    let mut kind = Field::Missing;
    let mut account_id = Field::Missing;
    reader.nested(|reader, key| {
        if key.is("type") {
            kind.set(reader.text()?);
            Ok(())
        } else if key.is("object_data") {
            read_text_member(reader, "account_id", &mut account_id)
        } else {
            reader.skip()
        }
    })?;
    Ok((kind.value(), account_id.value()))
}

/// Reads a value that, when it is an object, may hold the text member `name`: into `field`.
fn read_text_member<'a>(
    reader: &mut Reader<'a>,
    name: &str,
    field: &mut Field<Cow<'a, str>>,
) -> Result<(), Invalid> {
    reader.nested(|reader, key| {
        if key.is(name) {
            field.set(reader.text()?);
            Ok(())
        } else {
            reader.skip()
        }
    })
}

/// A field read leniently: a value of an unexpected type reads as `None`, and so does a key
/// written twice, since either value could be the one Nylas meant.
enum Field<T> {
    Missing,
    Found(Option<T>),
    Repeated,
}

impl<T> Field<T> {
    fn set(&mut self, value: Option<T>) {
        *self = match self {
            Field::Missing => Field::Found(value),
            Field::Found(_) | Field::Repeated => Field::Repeated,
        };
    }

    fn value(self) -> Option<T> {
        match self {
            Field::Found(value) => value,
            Field::Missing | Field::Repeated => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw_str<'a>(n: &Notification<'a>) -> &'a str {
        match n.raw {
            Raw::Text(text) => text,
            Raw::Binary(_) => panic!("test bodies are UTF-8"),
        }
    }

    /// What `split` gives for a body it forwards whole, marked unknown.
    fn whole(body: &[u8]) -> Vec<Notification<'_>> {
        vec![Notification::unknown(Raw::of(body))]
    }

    const V3_MESSAGE: &str = r#"{"specversion":"1.0","type":"message.created","source":"/google/emails/realtime","id":"Kkx2ZTZ0","time":1717162394,"webhook_delivery_attempt":2,"data":{"application_id":"a796","object":{"grant_id":"4c22","id":"m1","subject":"Hello"}}}"#;

    #[test]
    fn v3_body_is_one_notification_with_its_exact_bytes() {
        let found = split(V3_MESSAGE.as_bytes());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].raw.as_bytes(), V3_MESSAGE.as_bytes());
        assert_eq!(found[0].api_version, ApiVersion::V3);
    }

    #[test]
    fn v3_attributes_are_read() {
        let n = &split(V3_MESSAGE.as_bytes())[0];
        assert_eq!(n.kind.as_deref(), Some("message.created"));
        assert_eq!(n.id.as_deref(), Some("Kkx2ZTZ0"));
        assert_eq!(n.grant_id.as_deref(), Some("4c22"));
        assert_eq!(n.delivery_attempt, Some(2));
    }

    #[test]
    fn v3_tracking_grant_id_is_read_from_data() {
        let body = r#"{"specversion":"1.0","type":"message.opened.legacy","id":"t1","data":{"grant_id":"g9","object":{"deltas":[]}}}"#;
        let n = &split(body.as_bytes())[0];
        assert_eq!(n.grant_id.as_deref(), Some("g9"));
        assert_eq!(n.kind.as_deref(), Some("message.opened.legacy"));
    }

    #[test]
    fn v3_unknown_suffixes_are_kept() {
        let body = r#"{"specversion":"1.0","type":"message.created.cleaned.truncated","id":"x"}"#;
        let n = &split(body.as_bytes())[0];
        assert_eq!(n.api_version, ApiVersion::V3);
        assert_eq!(n.kind.as_deref(), Some("message.created.cleaned.truncated"));
    }

    #[test]
    fn v3_fields_of_unexpected_types_are_ignored_not_fatal() {
        let body = r#"{"specversion":"1.0","type":7,"id":{"a":[1,2]},"webhook_delivery_attempt":"2","data":["g1",{"x":null}]}"#;
        let found = split(body.as_bytes());
        assert_eq!(found.len(), 1);
        let n = &found[0];
        assert_eq!(n.api_version, ApiVersion::V3);
        assert_eq!((n.kind.as_deref(), n.id.as_deref()), (None, None));
        assert_eq!((n.grant_id.as_deref(), n.delivery_attempt), (None, None));
    }

    #[test]
    fn v3_escaped_strings_are_unescaped_in_attributes() {
        let body = r#"{"specversion":"1.0","type":"grant.\u0064eleted","id":"a\"b"}"#;
        let n = &split(body.as_bytes())[0];
        assert_eq!(n.kind.as_deref(), Some("grant.deleted"));
        assert_eq!(n.id.as_deref(), Some("a\"b"));
    }

    #[test]
    fn v2_deltas_are_split_with_their_exact_bytes() {
        let first = r#"{"date": 1669655971, "object": "message", "type": "message.created", "object_data": {"namespace_id": "n1", "account_id": "acc1", "object": "message", "attributes": {"thread_id": "t1", "received_date": 1669655961}, "id": "m1", "metadata": null}}"#;
        let second = "{ \"type\" :\"thread.replied\",\n\t\"object_data\":{\"account_id\":\"acc\\u00e9\"} , \"note\": \"caf\u{e9} \\ud83d\\ude00 \\\"q\\\"\" }";
        let body = format!("{{\"deltas\": [{first},\r\n  {second}  ]}}");
        let found = split(body.as_bytes());
        assert_eq!(found.len(), 2);
        assert_eq!(raw_str(&found[0]), first);
        assert_eq!(raw_str(&found[1]), second);
        assert!(found.iter().all(|n| n.api_version == ApiVersion::V2));
        assert_eq!(found[0].kind.as_deref(), Some("message.created"));
        assert_eq!(found[0].grant_id.as_deref(), Some("acc1"));
        assert_eq!(found[1].kind.as_deref(), Some("thread.replied"));
        assert_eq!(found[1].grant_id.as_deref(), Some("acc\u{e9}"));
        assert_eq!(found[1].id, None);
    }

    #[test]
    fn v2_delta_of_any_json_type_is_still_forwarded() {
        let body = r#"{"deltas":[1,"two",null,{"type":{"x":1}}]}"#;
        let found = split(body.as_bytes());
        let raws: Vec<_> = found.iter().map(raw_str).collect();
        assert_eq!(raws, ["1", "\"two\"", "null", r#"{"type":{"x":1}}"#]);
        assert!(found.iter().all(|n| n.kind.is_none()));
    }

    #[test]
    fn v2_delta_with_duplicate_keys_is_forwarded_without_attributes() {
        let body = r#"{"deltas":[{"type":"a","type":"b"}]}"#;
        let found = split(body.as_bytes());
        assert_eq!(found.len(), 1);
        assert_eq!(raw_str(&found[0]), r#"{"type":"a","type":"b"}"#);
        assert_eq!(found[0].kind, None);
    }

    #[test]
    fn v2_empty_deltas_hold_no_notification() {
        assert!(split(br#"{"deltas": []}"#).is_empty());
    }

    #[test]
    fn body_that_is_not_json_is_forwarded_whole_as_unknown() {
        let body = b"not json at all";
        assert_eq!(split(body), whole(body));
    }

    #[test]
    fn body_that_is_not_utf8_is_forwarded_whole_as_unknown() {
        let body = b"\xff\xfe\x00binary";
        assert_eq!(split(body), whole(body));
    }

    #[test]
    fn json_of_another_shape_is_forwarded_whole_as_unknown() {
        for body in [
            &br#"{"hello":"world"}"#[..],
            b"[1,2,3]",
            b"\"text\"",
            b"{\"deltas\":{}}",
            b"{}",
        ] {
            assert_eq!(split(body), whole(body));
        }
    }

    #[test]
    fn truncated_json_is_forwarded_whole_as_unknown() {
        let body = &V3_MESSAGE.as_bytes()[..40];
        assert_eq!(split(body), whole(body));
    }

    #[test]
    fn body_nested_past_the_reader_limit_is_forwarded_whole_as_unknown() {
        let deep = "[".repeat(10_000) + &"]".repeat(10_000);
        let body = format!(r#"{{"specversion":"1.0","type":"t","data":{deep}}}"#);
        let found = split(body.as_bytes());
        assert_eq!(found, whole(body.as_bytes()));
    }

    #[test]
    fn empty_body_is_forwarded_whole_as_unknown() {
        assert_eq!(split(b""), whole(b""));
    }
}
