//! Splitting a verified body into notifications, each with the exact bytes Nylas sent.
//!
//! - v3 (`specversion` present): the body is one notification
//!   (<https://developer.nylas.com/docs/v3/notifications/webhooks/>).
//! - v2 (`{"deltas": [...]}`): one notification per delta, sliced out of the body as it was.
//!   Re-serialising would change the bytes consumers see (v2 uses `", "` separators), so
//!   deltas are borrowed as [`RawValue`]s.
//! - Anything else that was signed is still a notification: it is forwarded whole and marked
//!   [`ApiVersion::Unknown`], never dropped.
//!
//! The body is parsed once. The fields read for message attributes are lenient: a field of an
//! unexpected type is ignored, never a reason to lose the notification.

use serde::de::{
    self, value::MapAccessDeserializer, value::SeqAccessDeserializer, IgnoredAny, IntoDeserializer,
    MapAccess, SeqAccess, Visitor,
};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use std::fmt;
use std::marker::PhantomData;

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

/// One notification: its exact bytes and what the message attributes are made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification<'a> {
    /// The bytes as they stood in the body: the whole body (v3, unknown) or one delta (v2).
    pub raw: &'a [u8],
    pub api_version: ApiVersion,
    /// The trigger, suffixes included (`message.created.truncated`).
    pub kind: Option<String>,
    /// The v3 notification id, the deduplication key. v2 deltas have none.
    pub id: Option<String>,
    /// The v3 `grant_id` or the v2 `account_id`.
    pub grant_id: Option<String>,
    /// The v3 `webhook_delivery_attempt` (1 to 3).
    pub delivery_attempt: Option<u64>,
}

impl<'a> Notification<'a> {
    fn unknown(raw: &'a [u8]) -> Self {
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
        return vec![Notification::unknown(body)];
    };
    let Ok(Lenient(Some(envelope))) = serde_json::from_str::<Object<Envelope<'_>>>(text) else {
        return vec![Notification::unknown(body)];
    };
    if envelope.specversion.is_some() {
        let data = envelope.data.0;
        let grant_id =
            data.and_then(|data| data.object.0.and_then(|o| o.grant_id.0).or(data.grant_id.0));
        return vec![Notification {
            raw: body,
            api_version: ApiVersion::V3,
            kind: envelope.kind.0,
            id: envelope.id.0,
            grant_id,
            delivery_attempt: envelope.webhook_delivery_attempt.0,
        }];
    }
    match envelope.deltas.0 {
        Some(deltas) => deltas.into_iter().map(delta).collect(),
        None => vec![Notification::unknown(body)],
    }
}

fn delta(raw: &RawValue) -> Notification<'_> {
    let text = raw.get();
    let fields = match serde_json::from_str::<Object<Delta>>(text) {
        Ok(Lenient(Some(fields))) => fields,
        _ => Delta::default(),
    };
    Notification {
        raw: text.as_bytes(),
        api_version: ApiVersion::V2,
        kind: fields.kind.0,
        id: None,
        grant_id: fields.object_data.0.and_then(|o| o.account_id.0),
        delivery_attempt: None,
    }
}

/// The top level of either shape, read in one pass.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(default)]
    specversion: Option<IgnoredAny>,
    #[serde(default, borrow)]
    deltas: Lenient<Vec<&'a RawValue>>,
    #[serde(default, rename = "type")]
    kind: Lenient<String>,
    #[serde(default)]
    id: Lenient<String>,
    #[serde(default)]
    webhook_delivery_attempt: Lenient<u64>,
    #[serde(default)]
    data: Object<V3Data>,
}

/// v3 `data`: `grant_id` is at `data.object.grant_id`, and for tracking types at `data.grant_id`.
#[derive(Deserialize)]
struct V3Data {
    #[serde(default)]
    grant_id: Lenient<String>,
    #[serde(default)]
    object: Object<V3Object>,
}

#[derive(Deserialize)]
struct V3Object {
    #[serde(default)]
    grant_id: Lenient<String>,
}

#[derive(Deserialize, Default)]
struct Delta {
    #[serde(default, rename = "type")]
    kind: Lenient<String>,
    #[serde(default)]
    object_data: Object<V2ObjectData>,
}

#[derive(Deserialize)]
struct V2ObjectData {
    #[serde(default)]
    account_id: Lenient<String>,
}

/// A field that is `Some` when its value has the expected type and `None` otherwise.
/// Values of another type are consumed and ignored rather than failing the whole parse.
/// `ARRAYS` says whether a JSON array may fill `T`: see [`Object`].
struct Lenient<T, const ARRAYS: bool = true>(Option<T>);

/// [`Lenient`], for structs: only a JSON object fills it. (A derived struct would also
/// accept an array, reading its fields by position.)
type Object<T> = Lenient<T, false>;

impl<T, const ARRAYS: bool> Default for Lenient<T, ARRAYS> {
    fn default() -> Self {
        Self(None)
    }
}

impl<'de, T: Deserialize<'de>, const ARRAYS: bool> Deserialize<'de> for Lenient<T, ARRAYS> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let visitor = LenientVisitor {
            arrays: ARRAYS,
            marker: PhantomData,
        };
        deserializer.deserialize_any(visitor).map(Lenient)
    }
}

struct LenientVisitor<T> {
    /// Whether a JSON array may fill `T`.
    arrays: bool,
    marker: PhantomData<T>,
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for LenientVisitor<T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        Ok(scalar::<T, E, _>(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(scalar::<T, E, _>(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(scalar::<T, E, _>(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Ok(scalar::<T, E, _>(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(scalar::<T, E, _>(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    // For containers, whatever `T` did not read is skipped so the parse can go on. If `T`
    // failed half-way through a value (a duplicate key), the skip meets the parser mid-value
    // and reports a syntax error: the body is then forwarded whole as unknown.
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let value = if self.arrays {
            T::deserialize(SeqAccessDeserializer::new(&mut seq)).ok()
        } else {
            None
        };
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(value)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let value = T::deserialize(MapAccessDeserializer::new(&mut map)).ok();
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(value)
    }
}

fn scalar<'de, T, E, V>(value: V) -> Option<T>
where
    T: Deserialize<'de>,
    E: de::Error,
    V: IntoDeserializer<'de, E>,
{
    T::deserialize(value.into_deserializer()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw_str<'a>(n: &Notification<'a>) -> &'a str {
        std::str::from_utf8(n.raw).expect("test bodies are UTF-8")
    }

    const V3_MESSAGE: &str = r#"{"specversion":"1.0","type":"message.created","source":"/google/emails/realtime","id":"Kkx2ZTZ0","time":1717162394,"webhook_delivery_attempt":2,"data":{"application_id":"a796","object":{"grant_id":"4c22","id":"m1","subject":"Hello"}}}"#;

    #[test]
    fn v3_body_is_one_notification_with_its_exact_bytes() {
        let found = split(V3_MESSAGE.as_bytes());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].raw, V3_MESSAGE.as_bytes());
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
        assert_eq!(split(body), vec![Notification::unknown(body)]);
    }

    #[test]
    fn body_that_is_not_utf8_is_forwarded_whole_as_unknown() {
        let body = b"\xff\xfe\x00binary";
        assert_eq!(split(body), vec![Notification::unknown(body)]);
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
            assert_eq!(split(body), vec![Notification::unknown(body)]);
        }
    }

    #[test]
    fn truncated_json_is_forwarded_whole_as_unknown() {
        let body = &V3_MESSAGE.as_bytes()[..40];
        assert_eq!(split(body), vec![Notification::unknown(body)]);
    }

    #[test]
    fn empty_body_is_forwarded_whole_as_unknown() {
        assert_eq!(split(b""), vec![Notification::unknown(b"")]);
    }
}
