//! The body as Nylas meant it: a size cap, and gzip for v3 `compressed_delivery`.
//!
//! With compressed delivery the signature covers the compressed bytes, so the raw body is
//! verified first and inflated after
//! (<https://developer.nylas.com/docs/v3/notifications/webhooks/#compressed-webhook-notifications>).
//! A verified body is gzip when it starts with gzip's magic bytes, whatever `Content-Encoding`
//! says: the header is not signed. Inflating stops at a cap, and a body that would pass it is
//! kept compressed: it is authentic, so it is stored, not refused.

use nylas_sqs_contract::{inflate, DecodeError};
use std::borrow::Cow;

/// Largest raw body accepted: Lambda's limit for a whole synchronous event, 6,291,456 bytes,
/// so every body that reaches the function is taken (docs/http.md, "Body size"). Nylas caps v3
/// payloads at about 1 MB; v2 bodies batch deltas with no documented maximum.
pub const MAX_RAW: usize = 6 * 1024 * 1024;

/// The first two bytes of every gzip stream (RFC 1952).
const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error(
        "the body is {size} bytes, over the {MAX_RAW}-byte limit: refused before any other work"
    )]
    TooLarge { size: usize },
    #[error(
        "Content-Encoding is gzip but the body is not gzip, so no signature can match: either \
         the request is not from the webhook's sender, or API Gateway changed the bytes before \
         the function saw them (a REST API needs */* in binaryMediaTypes and no content \
         encoding: docs/http.md, \"Compressed deliveries\")"
    )]
    Mangled,
}

/// A verified body, ready to split: its bytes, and the gzip they came as. A gzip body that
/// inflates past what Lambda could have carried uncompressed
/// ([`nylas_sqs_contract::MAX_INFLATED`]) is kept as it came: its bytes are the gzip.
#[derive(Debug, PartialEq, Eq)]
pub struct Decoded<'a> {
    pub bytes: Cow<'a, [u8]>,
    pub gzip: Option<&'a [u8]>,
}

/// Refuses a raw body over [`MAX_RAW`].
pub fn check_size(raw: &[u8]) -> Result<(), BodyError> {
    (raw.len() <= MAX_RAW).then_some(()).ok_or(BodyError::TooLarge { size: raw.len() })
}

/// Explains a signature that matched no secret, when the bytes are to blame: the request says
/// gzip, but the body is not gzip (an API Gateway setting converted it to text, where binary
/// bytes become U+FFFD, or inflated it).
pub fn check_intact(raw: &[u8], content_encoding: Option<&[u8]>) -> Result<(), BodyError> {
    let says_gzip = content_encoding.is_some_and(|value| {
        let value = value.trim_ascii();
        value.eq_ignore_ascii_case(b"gzip") || value.eq_ignore_ascii_case(b"x-gzip")
    });
    (!says_gzip || raw.starts_with(GZIP_MAGIC)).then_some(()).ok_or(BodyError::Mangled)
}

/// The verified body to split: inflated when it is gzip and fits the cap; as it came when it
/// only starts like gzip.
pub fn decode(raw: &[u8]) -> Decoded<'_> {
    let (bytes, gzip) = match raw.starts_with(GZIP_MAGIC).then(|| inflate(raw)) {
        Some(Ok(plain)) => (Cow::Owned(plain), Some(raw)),
        Some(Err(DecodeError::TooLarge)) => (Cow::Borrowed(raw), Some(raw)),
        Some(Err(_)) | None => (Cow::Borrowed(raw), None), // not gzip after all
    };
    Decoded { bytes, gzip }
}

/// Compresses as Nylas's `compressed_delivery` does, for tests.
#[cfg(test)]
pub(crate) fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).expect("writing to a Vec cannot fail");
    encoder.finish().expect("writing to a Vec cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_body_is_used_as_it_came() {
        assert_eq!(decode(b"{}"), Decoded { bytes: Cow::Borrowed(b"{}"), gzip: None });
    }

    #[test]
    fn gzip_body_is_inflated_whatever_the_headers_say() {
        let body = br#"{"specversion":"1.0","type":"message.created"}"#;
        let gzip = gzip(body);
        assert_eq!(decode(&gzip), Decoded { bytes: body.to_vec().into(), gzip: Some(&gzip) });
    }

    #[test]
    fn body_that_only_starts_like_gzip_is_kept_as_it_came() {
        let not_gzip = b"\x1f\x8bnot gzip";
        assert_eq!(decode(not_gzip), Decoded { bytes: Cow::Borrowed(not_gzip), gzip: None });
        let truncated = &gzip(b"some body")[..10];
        assert_eq!(decode(truncated), Decoded { bytes: truncated.into(), gzip: None });
    }

    #[test]
    fn gzip_body_inflating_to_6_mib_is_inflated_and_one_byte_more_is_not() {
        let six_mib = 6_291_456;
        let fits = gzip(&vec![b'a'; six_mib]);
        assert_eq!(decode(&fits).bytes.len(), six_mib, "inflated");
        let over = gzip(&vec![b'a'; six_mib + 1]);
        assert_eq!(decode(&over), Decoded { bytes: over.as_slice().into(), gzip: Some(&over) });
    }

    #[test]
    fn decompression_bomb_is_kept_compressed() {
        let bomb = gzip(&vec![0u8; 64 * 1024 * 1024]);
        assert!(bomb.len() < MAX_RAW, "the bomb passes the raw cap");
        assert_eq!(decode(&bomb), Decoded { bytes: bomb.as_slice().into(), gzip: Some(&bomb) });
    }

    #[test]
    fn raw_body_over_lambda_s_6_mib_is_refused() {
        let six_mib = 6_291_456;
        assert_eq!(check_size(&vec![0; six_mib]), Ok(()));
        let over = vec![0; six_mib + 1];
        let refused = BodyError::TooLarge { size: six_mib + 1 };
        assert_eq!(check_size(&over), Err(refused));
    }

    #[test]
    fn body_declared_gzip_that_is_not_gzip_was_mangled() {
        let as_text = "\u{1f}\u{FFFD}\u{8}\u{0}binary".as_bytes();
        for encoding in [&b"gzip"[..], b" GZip ", b"x-gzip"] {
            assert_eq!(check_intact(as_text, Some(encoding)), Err(BodyError::Mangled));
            assert_eq!(check_intact(b"{\"inflated\":1}", Some(encoding)), Err(BodyError::Mangled));
        }
    }

    #[test]
    fn gzip_body_or_one_not_declared_gzip_is_intact() {
        assert_eq!(check_intact(&gzip(b"{}"), Some(b"gzip")), Ok(()));
        assert_eq!(check_intact(b"{}", None), Ok(()));
        assert_eq!(check_intact(b"{}", Some(b"br")), Ok(()));
    }
}
