//! Property tests of the core: what must hold for every input, not just the examples.

use nylas_webhook_sqs::core::{
    parse, plan, split, Secret, SignatureError, Verifier, MAX_BYTES, MAX_ENTRIES,
};
use nylas_webhook_sqs::{sign, ApiVersion};
use proptest::prelude::*;

/// Whether the header `value` is a signature of `body` under `secret`.
fn verifies(secret: &[u8], body: &[u8], value: &[u8]) -> Result<bool, SignatureError> {
    let verifier = Verifier::new(Secret::new(secret), None);
    parse(Some(value), "").map(|signature| verifier.matches(body, &signature))
}

/// Whitespace JSON allows between tokens.
fn ws() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(vec![" ", "\n", "\t", "\r"]), 0..3)
        .prop_map(|parts| parts.concat())
}

/// A JSON string literal, with some characters written as `\u` escapes.
fn string_literal() -> impl Strategy<Value = String> {
    (any::<String>(), any::<bool>()).prop_map(|(text, escape_all)| {
        let plain = serde_json::to_string(&text).expect("strings serialise");
        if !escape_all {
            return plain;
        }
        let mut escaped = String::from("\"");
        for unit in text.encode_utf16() {
            escaped.push_str(&format!("\\u{unit:04x}"));
        }
        escaped.push('"');
        escaped
    })
}

/// JSON text of any shape, written with odd whitespace and escapes, as Nylas might.
fn json_text() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_owned()),
        any::<bool>().prop_map(|b| b.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        (-1e9f64..1e9).prop_map(|f| serde_json::to_string(&f).expect("finite")),
        string_literal(),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec((ws(), inner.clone(), ws()), 0..6).prop_map(|items| {
                let items: Vec<String> = items.into_iter().map(|(a, v, b)| a + &v + &b).collect();
                format!("[{}]", items.join(","))
            }),
            prop::collection::vec((string_literal(), ws(), inner), 0..6).prop_map(|fields| {
                let fields: Vec<String> =
                    fields.into_iter().map(|(k, w, v)| format!("{k}{w}:{w}{v}")).collect();
                format!("{{{}}}", fields.join(", "))
            }),
        ]
    })
}

proptest! {
    #[test]
    fn v3_attributes_are_read_among_any_other_fields(
        kind in "[a-z]{1,8}(\\.[a-z]{1,8}){0,2}",
        id in "[!-~]{1,128}",
        grant in any::<String>(),
        attempt in any::<u64>(),
        others in prop::collection::vec(("[a-z]{1,6}_x", json_text()), 0..4),
    ) {
        let quoted = |s: &str| serde_json::to_string(s).expect("strings serialise");
        let mut fields = vec![
            "\"specversion\":\"1.0\"".to_owned(),
            format!("\"type\":{}", quoted(&kind)),
            format!("\"id\":{}", quoted(&id)),
            format!("\"webhook_delivery_attempt\":{attempt}"),
            format!("\"data\":{{\"object\":{{\"grant_id\":{}}}}}", quoted(&grant)),
        ];
        fields.extend(others.iter().map(|(key, value)| format!("\"{key}\":{value}")));
        let turn = others.len() % fields.len();
        fields.rotate_left(turn);
        let body = format!("{{{}}}", fields.join(","));
        let found = split(body.as_bytes());
        prop_assert_eq!(found.len(), 1);
        let n = &found[0];
        prop_assert_eq!(n.api_version, ApiVersion::V3);
        prop_assert_eq!(n.kind.as_deref(), Some(kind.as_str()));
        prop_assert_eq!(&n.id, &id);
        prop_assert_eq!(n.group.as_deref(), Some(grant.as_str()));
        prop_assert_eq!(n.delivery_attempt, Some(attempt));
    }

    #[test]
    fn any_change_to_the_body_is_rejected(
        body in prop::collection::vec(any::<u8>(), 1..512),
        secret in prop::collection::vec(any::<u8>(), 1..64),
        index in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let signature = sign(&secret, &body);
        let mut tampered = body.clone();
        tampered[index.index(body.len())] ^= flip;
        prop_assert_eq!(verifies(&secret, &tampered, signature.as_bytes()), Ok(false));
    }

    #[test]
    fn any_change_to_the_signature_is_rejected(
        body in prop::collection::vec(any::<u8>(), 0..512),
        secret in prop::collection::vec(any::<u8>(), 1..64),
        index in any::<prop::sample::Index>(),
        replacement in prop::sample::select(b"0123456789abcdefABCDEFxz =".to_vec()),
    ) {
        let signature = sign(&secret, &body).into_bytes();
        let at = index.index(signature.len());
        let mut changed = signature.clone();
        changed[at] = replacement;
        prop_assume!(!changed[at].eq_ignore_ascii_case(&signature[at]));
        prop_assert_ne!(verifies(&secret, &body, &changed), Ok(true));
    }

    #[test]
    fn any_truncation_of_the_signature_is_rejected(
        body in prop::collection::vec(any::<u8>(), 0..256),
        keep in 0usize..64,
    ) {
        let signature = sign(b"secret", &body);
        let verdict = verifies(b"secret", &body, &signature.as_bytes()[..keep]);
        prop_assert_eq!(verdict, Err(SignatureError::Malformed));
    }

    #[test]
    fn v2_deltas_are_split_byte_for_byte(
        deltas in prop::collection::vec(json_text(), 0..12),
        before in ws(),
        between in ws(),
        after in ws(),
    ) {
        let separator = format!("{between},{between}");
        let body = format!("{{{before}\"deltas\"{before}:{before}[{between}{}{between}]{after}}}{after}", deltas.join(&separator));
        let found = split(body.as_bytes());
        let raws: Vec<&[u8]> = found.iter().map(|n| n.bytes).collect();
        let expected: Vec<&[u8]> = deltas.iter().map(|d| d.as_bytes()).collect();
        prop_assert_eq!(raws, expected);
        prop_assert!(found.iter().all(|n| n.api_version == ApiVersion::V2));
    }

    #[test]
    fn any_body_is_forwarded_whole_or_as_exact_slices_of_its_deltas(
        body in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        let found = split(&body);
        if found.iter().all(|n| n.api_version == ApiVersion::V2) {
            let range = body.as_ptr_range();
            for notification in &found {
                let inside = notification.bytes.as_ptr_range();
                prop_assert!(range.start <= inside.start && inside.end <= range.end);
            }
        } else {
            prop_assert_eq!(found.len(), 1);
            prop_assert_eq!(found[0].bytes, &body[..]);
        }
    }

    #[test]
    fn batch_plans_never_pass_ten_entries_or_one_mebibyte(
        sizes in prop::collection::vec(prop_oneof![1usize..2_000, 1usize..=MAX_BYTES], 0..80),
    ) {
        let mut next = 0;
        for range in plan(&sizes) {
            prop_assert_eq!(range.start, next, "batches cover the messages in order");
            prop_assert!(!range.is_empty() && range.len() <= MAX_ENTRIES);
            prop_assert!(sizes[range.clone()].iter().sum::<usize>() <= MAX_BYTES);
            next = range.end;
        }
        prop_assert_eq!(next, sizes.len());
    }
}
