//! The body as Nylas meant it: size caps, and gzip for v3 `compressed_delivery`.
//!
//! With `Content-Encoding: gzip` the signature covers the compressed bytes, so the raw body
//! is verified first and decompressed after
//! (<https://developer.nylas.com/docs/v3/notifications/webhooks/#compressed-webhook-notifications>).
//! Decompression stops at a hard cap: a decompression bomb costs at most that much memory.
//! A signed body that does not decompress is still Nylas's: it is forwarded as it came.

use flate2::read::MultiGzDecoder;
use std::borrow::Cow;
use std::io::Read;

/// Largest raw body accepted. Nylas caps v3 payloads at about 1 MB (it truncates bigger
/// objects); v2 bodies batch deltas with no documented maximum. Lambda itself refuses events
/// over 6 MB. 4 MiB leaves a wide margin above Nylas and below Lambda.
pub const MAX_RAW: usize = 4 * 1024 * 1024;

/// Largest body a gzip delivery may decompress to.
pub const MAX_DECOMPRESSED: usize = 4 * 1024 * 1024;

/// A body over a cap: refused with 413 before any more work is spent on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("the body is {size} bytes, over the {MAX_RAW}-byte limit")]
    RawTooLarge { size: usize },
    #[error("the gzip body decompresses to more than {MAX_DECOMPRESSED} bytes")]
    DecompressedTooLarge,
}

/// Refuses a raw body over [`MAX_RAW`].
pub fn check_size(raw: &[u8]) -> Result<(), BodyError> {
    if raw.len() > MAX_RAW {
        return Err(BodyError::RawTooLarge { size: raw.len() });
    }
    Ok(())
}

/// Whether the `Content-Encoding` header value says gzip.
pub fn is_gzip(content_encoding: Option<&[u8]>) -> bool {
    content_encoding.is_some_and(|value| {
        let value = value.trim_ascii();
        value.eq_ignore_ascii_case(b"gzip") || value.eq_ignore_ascii_case(b"x-gzip")
    })
}

/// The bytes to split into notifications: `raw` decompressed when it is gzip, as it came
/// otherwise (including gzip that does not decompress: it is forwarded, not dropped).
pub fn decode(raw: &[u8], gzip: bool) -> Result<Cow<'_, [u8]>, BodyError> {
    if !gzip {
        return Ok(Cow::Borrowed(raw));
    }
    let mut decompressed = Vec::with_capacity(raw.len().saturating_mul(4).min(MAX_DECOMPRESSED));
    let limit = MAX_DECOMPRESSED as u64 + 1;
    match MultiGzDecoder::new(raw)
        .take(limit)
        .read_to_end(&mut decompressed)
    {
        Ok(_) if decompressed.len() > MAX_DECOMPRESSED => Err(BodyError::DecompressedTooLarge),
        Ok(_) => Ok(Cow::Owned(decompressed)),
        Err(_) => Ok(Cow::Borrowed(raw)),
    }
}

/// Compresses as Nylas's `compressed_delivery` does, for tests.
#[cfg(test)]
pub(crate) fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder
        .write_all(bytes)
        .expect("writing to a Vec cannot fail");
    encoder.finish().expect("writing to a Vec cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_body_is_used_as_it_came() {
        assert_eq!(decode(b"{}", false), Ok(Cow::Borrowed(&b"{}"[..])));
    }

    #[test]
    fn gzip_body_is_decompressed() {
        let body = br#"{"specversion":"1.0","type":"message.created"}"#;
        assert_eq!(decode(&gzip(body), true).as_deref(), Ok(&body[..]));
    }

    #[test]
    fn body_that_is_not_gzip_after_all_is_kept_as_it_came() {
        assert_eq!(decode(b"not gzip", true).as_deref(), Ok(&b"not gzip"[..]));
        let truncated = &gzip(b"some body")[..10];
        assert_eq!(decode(truncated, true).as_deref(), Ok(truncated));
    }

    #[test]
    fn gzip_body_at_the_cap_is_accepted() {
        let body = vec![b'a'; MAX_DECOMPRESSED];
        assert_eq!(
            decode(&gzip(&body), true).map(|b| b.len()),
            Ok(MAX_DECOMPRESSED)
        );
    }

    #[test]
    fn decompression_bomb_is_refused_at_the_cap() {
        let bomb = gzip(&vec![0u8; 64 * 1024 * 1024]);
        assert!(bomb.len() < MAX_RAW, "the bomb passes the raw cap");
        assert_eq!(decode(&bomb, true), Err(BodyError::DecompressedTooLarge));
    }

    #[test]
    fn raw_body_over_the_cap_is_refused() {
        assert_eq!(check_size(&vec![0; MAX_RAW]), Ok(()));
        let over = vec![0; MAX_RAW + 1];
        assert_eq!(
            check_size(&over),
            Err(BodyError::RawTooLarge { size: MAX_RAW + 1 })
        );
    }

    #[test]
    fn content_encoding_gzip_is_recognised_in_any_case() {
        assert!(is_gzip(Some(b"gzip")));
        assert!(is_gzip(Some(b" GZip ")));
        assert!(is_gzip(Some(b"x-gzip")));
        assert!(!is_gzip(Some(b"br")));
        assert!(!is_gzip(None));
    }
}
