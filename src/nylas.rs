//! Nylas, as a [`Sender`]: the `X-Nylas-Signature` header, the `challenge` query, and how a
//! verified body splits into notifications, each with the exact bytes Nylas sent
//! (<https://developer.nylas.com/docs/v3/notifications/webhooks/>).
//!
//! - v3 (`specversion` present): the body is one notification.
//! - v2 (`{"deltas": [...]}`): one notification per delta, its exact slice of the body
//!   (serde_json's `RawValue`). Re-serialising would change the bytes consumers see: v2
//!   writes `", "` and `": "` separators.
//! - Anything else that was signed (another shape, invalid JSON, bytes that are not UTF-8, a v2
//!   POST of more than [`MAX_DELTAS`] deltas, gzip too large to inflate) is still a
//!   notification: it is forwarded whole and marked [`ApiVersion::Unknown`].
//!
//! Every notification has an id to deduplicate on, stable across Nylas's retries: the v3 `id`,
//! or else the hex SHA-256 of its exact bytes (a retried v2 POST resends the same deltas), with
//! a counter on a repeat of the same bytes within the POST (`-2`, `-3`...), so that SQS's FIFO
//! deduplication and the consumer never take two deltas of one POST for one. Its FIFO group is
//! its grant (v3) or account (v2). The few members read are read leniently: a member of an
//! unexpected type reads as absent, never as a reason to lose the others.

use crate::sender::{Notification, Sender};
use lambda_http::http::HeaderMap;
use nylas_sqs_contract::{id, repeat, ApiVersion, IdRule};
use serde::de::{IgnoredAny, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

/// Nylas: the bare hex in `X-Nylas-Signature`; GET only for the challenge.
pub const NYLAS: Sender = Sender {
    name: "Nylas",
    signature_header: "X-Nylas-Signature",
    signature_prefix: "",
    challenge: Some("challenge"),
    split: split_with,
};

/// Most v2 deltas forwarded one message each. A POST that carries more is forwarded whole, as
/// one notification, so that memory and the time to send stay bounded.
pub const MAX_DELTAS: usize = 1_000;

/// Splits a verified plain body into its notifications, in the order they appear (none for a
/// v2 body with an empty `deltas` array).
pub fn split(body: &[u8]) -> Vec<Notification<'_>> {
    split_with(body, None, &HeaderMap::new())
}

/// [`split`], for a body Nylas sent as `gzip`: a notification that is the whole body keeps it.
/// A gzip body too large to inflate is not JSON: one notification of unknown shape.
pub fn split_with<'a>(
    body: &'a [u8],
    gzip: Option<&'a [u8]>,
    _: &HeaderMap,
) -> Vec<Notification<'a>> {
    let envelope = std::str::from_utf8(body).ok().and_then(object::<Envelope>);
    match envelope {
        Some(v3) if v3.specversion.is_some() => vec![Notification {
            bytes: body,
            gzip,
            api_version: ApiVersion::V3,
            kind: v3.kind,
            id: id(v3.id.as_deref(), body),
            id_rule: IdRule::of(v3.id.as_deref()),
            group: v3.data.and_then(|d| d.object.and_then(|o| o.grant_id).or(d.grant_id)),
            delivery_attempt: v3.webhook_delivery_attempt,
        }],
        Some(Envelope { deltas: Some(Deltas::Each(deltas)), .. }) => {
            let mut copies = std::collections::HashMap::new();
            let mut deltas: Vec<_> = deltas.into_iter().map(delta).collect();
            for delta in &mut deltas {
                let copy = copies.entry(delta.id.clone()).or_insert(0);
                *copy += 1;
                delta.id = repeat(std::mem::take(&mut delta.id), *copy);
            }
            deltas
        }
        _ => vec![Notification::unknown(body, gzip)],
    }
}

/// A v2 delta: its bytes, and its `type` and `object_data.account_id` when it is an object
/// that has them.
fn delta(raw: &RawValue) -> Notification<'_> {
    let fields = object::<Delta>(raw.get()).unwrap_or_default();
    Notification {
        api_version: ApiVersion::V2,
        kind: fields.kind,
        group: fields.object_data.and_then(|o| o.account_id),
        ..Notification::unknown(raw.get().as_bytes(), None)
    }
}

/// The top level of either shape. A member named twice makes the body another shape (serde
/// refuses it): either value could be the one Nylas meant.
#[derive(Deserialize)]
struct Envelope<'a> {
    specversion: Option<IgnoredAny>,
    #[serde(default, borrow, deserialize_with = "lenient")]
    deltas: Option<Deltas<'a>>,
    #[serde(default, rename = "type", deserialize_with = "lenient")]
    kind: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    id: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    webhook_delivery_attempt: Option<u64>,
    #[serde(default, deserialize_with = "lenient_object")]
    data: Option<Data>,
}

/// A v2 `deltas` array, read without building more than [`MAX_DELTAS`] slices: past that the
/// rest is only skipped over, so that a body of millions of tiny deltas costs no memory for
/// them.
enum Deltas<'a> {
    Each(Vec<&'a RawValue>),
    TooMany,
}

impl<'de> Deserialize<'de> for Deltas<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Counting;
        impl<'de> Visitor<'de> for Counting {
            type Value = Deltas<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an array of deltas")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut deltas = Vec::new();
                while let Some(delta) = seq.next_element()? {
                    if deltas.len() == MAX_DELTAS {
                        while seq.next_element::<IgnoredAny>()?.is_some() {}
                        return Ok(Deltas::TooMany);
                    }
                    deltas.push(delta);
                }
                Ok(Deltas::Each(deltas))
            }
        }
        deserializer.deserialize_seq(Counting)
    }
}

/// v3 `data`: `grant_id` is at `data.object.grant_id`, and for tracking types at
/// `data.grant_id`. `object`, usually most of the body, is read in the same pass (a second
/// raw pass would double the time), so an `object` that is a string or a number makes all of
/// `data` read as absent.
#[derive(Deserialize)]
struct Data {
    #[serde(default, deserialize_with = "lenient")]
    grant_id: Option<String>,
    object: Option<Object>,
}

#[derive(Deserialize)]
struct Object {
    #[serde(default, deserialize_with = "lenient")]
    grant_id: Option<String>,
}

#[derive(Deserialize, Default)]
struct Delta {
    #[serde(default, rename = "type", deserialize_with = "lenient")]
    kind: Option<String>,
    #[serde(default, deserialize_with = "lenient_object")]
    object_data: Option<ObjectData>,
}

#[derive(Deserialize)]
struct ObjectData {
    #[serde(default, deserialize_with = "lenient")]
    account_id: Option<String>,
}

/// Reads JSON text as `T` when it is an object. (serde would also read a struct from an array,
/// by position.)
fn object<'a, T: Deserialize<'a>>(text: &'a str) -> Option<T> {
    let is_object = text.trim_start().starts_with('{');
    is_object.then(|| serde_json::from_str(text).ok()).flatten()
}

/// Reads a member as `T`, or as `None` when it holds something else: the member is taken as
/// raw JSON first, so a surprise inside it stays inside it.
fn lenient<'de, D: Deserializer<'de>, T: Deserialize<'de>>(raw: D) -> Result<Option<T>, D::Error> {
    Ok(serde_json::from_str(<&'de RawValue>::deserialize(raw)?.get()).ok())
}

/// [`lenient`], for a member that should be an object.
fn lenient_object<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    raw: D,
) -> Result<Option<T>, D::Error> {
    Ok(object(<&'de RawValue>::deserialize(raw)?.get()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::Decoded;

    /// What the handler splits of a body as `body.rs` decoded it.
    fn split_decoded<'a>(decoded: &'a Decoded<'_>) -> Vec<Notification<'a>> {
        split_with(&decoded.bytes, decoded.gzip, &HeaderMap::new())
    }
    use sha2::{Digest, Sha256};

    /// What `split` gives for a body it forwards whole, marked unknown.
    fn whole(body: &[u8]) -> Vec<Notification<'_>> {
        vec![Notification::unknown(body, None)]
    }

    fn sha256(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }

    fn text<'a>(n: &Notification<'a>) -> &'a str {
        std::str::from_utf8(n.bytes).expect("test bodies are UTF-8")
    }

    const V3_MESSAGE: &str = r#"{"specversion":"1.0","type":"message.created","source":"/google/emails/realtime","id":"Kkx2ZTZ0","time":1717162394,"webhook_delivery_attempt":2,"data":{"application_id":"a796","object":{"grant_id":"4c22","id":"m1","subject":"Hello"}}}"#;

    #[test]
    fn v3_body_is_one_notification_with_its_exact_bytes() {
        let found = split(V3_MESSAGE.as_bytes());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].bytes, V3_MESSAGE.as_bytes());
        assert_eq!(found[0].api_version, ApiVersion::V3);
    }

    #[test]
    fn v3_attributes_are_read() {
        let n = &split(V3_MESSAGE.as_bytes())[0];
        assert_eq!(n.kind.as_deref(), Some("message.created"));
        assert_eq!(n.id, "Kkx2ZTZ0");
        assert_eq!(n.group.as_deref(), Some("4c22"));
        assert_eq!(n.delivery_attempt, Some(2));
    }

    #[test]
    fn v3_id_that_sqs_could_not_take_is_replaced_by_the_hash() {
        for id in ["", "with space", "été"] {
            let body = format!(r#"{{"specversion":"1.0","id":"{id}"}}"#);
            assert_eq!(split(body.as_bytes())[0].id, sha256(body.as_bytes()), "{id}");
        }
        let longest = "n".repeat(128);
        let body = format!(r#"{{"specversion":"1.0","id":"{longest}"}}"#);
        assert_eq!(split(body.as_bytes())[0].id, longest);
        let body = format!(r#"{{"specversion":"1.0","id":"{longest}n"}}"#);
        assert_eq!(split(body.as_bytes())[0].id, sha256(body.as_bytes()));
    }

    #[test]
    fn v2_delta_retried_keeps_its_id_and_two_deltas_differ() {
        let body = br#"{"deltas": [{"type": "a", "date": 1}, {"type": "a", "date": 2}]}"#;
        let first = split(body);
        let again = split(body);
        assert_eq!(first[0].id, again[0].id);
        assert_ne!(first[0].id, first[1].id);
    }

    #[test]
    fn v3_tracking_grant_id_is_read_from_data() {
        let body = r#"{"specversion":"1.0","type":"message.opened.legacy","id":"t1","data":{"grant_id":"g9","object":{"deltas":[]}}}"#;
        let n = &split(body.as_bytes())[0];
        assert_eq!(n.group.as_deref(), Some("g9"));
        assert_eq!(n.kind.as_deref(), Some("message.opened.legacy"));
    }

    #[test]
    fn v3_object_grant_id_wins_over_data_grant_id() {
        let body =
            r#"{"specversion":"1.0","data":{"grant_id":"outer","object":{"grant_id":"inner"}}}"#;
        assert_eq!(split(body.as_bytes())[0].group.as_deref(), Some("inner"));
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
        assert_eq!(n.kind, None);
        assert_eq!(n.id, sha256(body.as_bytes()), "no usable id: the hash");
        assert_eq!((n.group.as_deref(), n.delivery_attempt), (None, None));
    }

    #[test]
    fn v3_unexpected_type_deep_inside_keeps_the_other_attributes() {
        let body =
            r#"{"specversion":"1.0","type":"t","id":"n","data":{"object":{"grant_id":["g"]}}}"#;
        let n = &split(body.as_bytes())[0];
        assert_eq!((n.kind.as_deref(), n.id.as_str()), (Some("t"), "n"));
        assert_eq!(n.group, None);
    }

    #[test]
    fn v3_data_whose_object_is_a_string_reads_as_absent() {
        let body = r#"{"specversion":"1.0","id":"n","data":{"grant_id":"g","object":"text"}}"#;
        let n = &split(body.as_bytes())[0];
        assert_eq!((n.id.as_str(), n.group.as_deref()), ("n", None));
    }

    #[test]
    fn v3_escaped_strings_are_unescaped_in_attributes() {
        let body = r#"{"specversion":"1.0","type":"grant.\u0064eleted","id":"a\"b"}"#;
        let n = &split(body.as_bytes())[0];
        assert_eq!(n.kind.as_deref(), Some("grant.deleted"));
        assert_eq!(n.id, "a\"b");
    }

    #[test]
    fn v3_nested_deeper_than_serde_json_recurses_is_still_v3() {
        let deep = "[".repeat(10_000) + &"]".repeat(10_000);
        let body = format!(r#"{{"specversion":"1.0","type":"t","data":{deep}}}"#);
        let found = split(body.as_bytes());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].bytes.as_ptr_range(), body.as_bytes().as_ptr_range());
        assert_eq!(found[0].kind.as_deref(), Some("t"));
    }

    #[test]
    fn v2_deltas_are_split_with_their_exact_bytes() {
        let first = r#"{"date": 1669655971, "object": "message", "type": "message.created", "object_data": {"namespace_id": "n1", "account_id": "acc1", "object": "message", "attributes": {"thread_id": "t1", "received_date": 1669655961}, "id": "m1", "metadata": null}}"#;
        let second = "{ \"type\" :\"thread.replied\",\n\t\"object_data\":{\"account_id\":\"acc\\u00e9\"} , \"note\": \"caf\u{e9} \\ud83d\\ude00 \\\"q\\\"\" }";
        let body = format!("{{\"deltas\": [{first},\r\n  {second}  ]}}");
        let found = split(body.as_bytes());
        assert_eq!(found.len(), 2);
        assert_eq!(text(&found[0]), first);
        assert_eq!(text(&found[1]), second);
        assert!(found.iter().all(|n| n.api_version == ApiVersion::V2));
        assert_eq!(found[0].kind.as_deref(), Some("message.created"));
        assert_eq!(found[0].group.as_deref(), Some("acc1"));
        assert_eq!(found[1].kind.as_deref(), Some("thread.replied"));
        assert_eq!(found[1].group.as_deref(), Some("acc\u{e9}"));
        assert_eq!(found[0].id, sha256(first.as_bytes()));
        assert_eq!(found[1].id, sha256(second.as_bytes()));
    }

    /// Two deltas of one POST never share an id; the same POST again gives the same ids.
    #[test]
    fn repeats_of_one_delta_in_a_post_get_a_counter_and_others_keep_their_hash() {
        let (a, b) = (r#"{"type": "message.opened"}"#, r#"{"type": "thread.replied"}"#);
        let body = format!(r#"{{"deltas": [{a}, {b}, {a}, {a}]}}"#);
        let ids = |body: &str| -> Vec<String> {
            split(body.as_bytes()).into_iter().map(|n| n.id).collect()
        };
        let (ha, hb) = (sha256(a.as_bytes()), sha256(b.as_bytes()));
        let expected = [ha.clone(), hb, format!("{ha}-2"), format!("{ha}-3")];
        assert_eq!(ids(&body), expected);
        assert_eq!(ids(&body), expected, "the same POST again: the same ids");
    }

    #[test]
    fn v2_delta_of_any_json_type_is_still_forwarded() {
        let body = r#"{"deltas":[1,"two",null,{"type":{"x":1}},["t",{"account_id":"a"}]]}"#;
        let found = split(body.as_bytes());
        let raws: Vec<_> = found.iter().map(text).collect();
        let array = r#"["t",{"account_id":"a"}]"#;
        assert_eq!(raws, ["1", "\"two\"", "null", r#"{"type":{"x":1}}"#, array]);
        assert!(found.iter().all(|n| n.kind.is_none()));
    }

    #[test]
    fn v2_delta_with_duplicate_keys_is_forwarded_without_attributes() {
        let body = r#"{"deltas":[{"type":"a","type":"b"}]}"#;
        let found = split(body.as_bytes());
        assert_eq!(found.len(), 1);
        assert_eq!(text(&found[0]), r#"{"type":"a","type":"b"}"#);
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
            br#"{"deltas":[1],"deltas":[2]}"#,
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
    fn deeply_nested_body_is_forwarded_whole_as_unknown() {
        let arrays = "[".repeat(10_000) + &"]".repeat(10_000);
        let objects = r#"{"a":"#.repeat(10_000) + "1" + &"}".repeat(10_000);
        for body in [arrays, objects] {
            let found = split(body.as_bytes());
            assert_eq!(found.len(), 1);
            assert_eq!(found[0].api_version, ApiVersion::Unknown);
            assert_eq!(found[0].bytes.as_ptr_range(), body.as_bytes().as_ptr_range());
        }
    }

    #[test]
    fn v2_post_of_more_deltas_than_the_limit_is_forwarded_whole() {
        let deltas = vec!["{}"; MAX_DELTAS + 1].join(",");
        let body = format!(r#"{{"deltas":[{deltas}]}}"#);
        assert_eq!(split(body.as_bytes()), whole(body.as_bytes()));
        let at_the_limit = format!(r#"{{"deltas":[{}]}}"#, vec!["{}"; MAX_DELTAS].join(","));
        assert_eq!(split(at_the_limit.as_bytes()).len(), MAX_DELTAS);
    }

    #[test]
    fn deltas_past_the_limit_are_skipped_over_but_must_still_be_json() {
        let many = |last: &str| {
            let deltas = vec!["1"; 3 * MAX_DELTAS].join(",");
            format!(r#"{{"deltas":[{deltas},{last}],"n":1}}"#)
        };
        let body = many(r#"{"deep":[[{"a":"b"}]]}"#);
        assert_eq!(split(body.as_bytes()), whole(body.as_bytes()));
        let broken = many(r#"{"deep":"#);
        assert_eq!(split(broken.as_bytes()), whole(broken.as_bytes()));
        let twice = format!(r#"{{"deltas":[1],{}"#, &many("1")[1..]);
        assert_eq!(split(twice.as_bytes()), whole(twice.as_bytes()), "named twice");
    }

    #[test]
    fn compressed_v3_delivery_keeps_nylas_gzip() {
        let gzip = crate::body::gzip(V3_MESSAGE.as_bytes());
        let decoded = crate::body::decode(&gzip);
        let found = split_decoded(&decoded);
        assert_eq!((found[0].bytes, found[0].gzip), (V3_MESSAGE.as_bytes(), Some(&gzip[..])));
        assert_eq!(found[0].api_version, ApiVersion::V3);
    }

    #[test]
    fn compressed_v2_delivery_splits_into_deltas_of_their_own() {
        let gzip = crate::body::gzip(br#"{"deltas":[{"type":"a"},{"type":"b"}]}"#);
        let decoded = crate::body::decode(&gzip);
        let found = split_decoded(&decoded);
        let bytes: Vec<_> = found.iter().map(|n| (n.bytes, n.gzip)).collect();
        assert_eq!(bytes, [(&br#"{"type":"a"}"#[..], None), (br#"{"type":"b"}"#, None)]);
    }

    #[test]
    fn gzip_too_large_to_inflate_is_one_notification_of_its_gzip() {
        let found = split_with(b"\x1f\x8b...", Some(b"\x1f\x8b..."), &HeaderMap::new());
        assert_eq!(found, [Notification::unknown(b"\x1f\x8b...", Some(b"\x1f\x8b..."))]);
    }

    #[test]
    fn empty_body_is_forwarded_whole_as_unknown() {
        assert_eq!(split(b""), whole(b""));
    }
}
