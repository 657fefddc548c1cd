//! Verifying a signature header: lowercase (or uppercase) hex of HMAC-SHA256 over the exact raw
//! request body, keyed with the webhook secret, as Nylas signs
//! (<https://developer.nylas.com/docs/v3/notifications/webhooks/#verify-nylas-webhooks>).
//! The comparison is constant-time and only a full 32-byte MAC ever verifies: an empty or
//! truncated signature is malformed, never a prefix match (the svix-webhooks regression,
//! CVE-2024-21491, is the cautionary tale).

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;

type HmacSha256 = Hmac<Sha256>;

/// Length of an HMAC-SHA256 output in bytes.
const MAC_LEN: usize = 32;

/// Why a request carries no usable signature: it is not from the sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("no signature header")]
    Missing,
    #[error("the signature header is not 64 hex characters")]
    Malformed,
}

/// The MAC a request claims for its body: 32 bytes, decoded from the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signature([u8; MAC_LEN]);

/// Reads the signature header's raw value, if any. Accepts either hex case, and before it the
/// sender's `prefix` or `sha256=` (which the Nylas CLI tolerates); anything that is not then
/// exactly 32 bytes of hex is malformed.
pub fn parse(header: Option<&[u8]>, prefix: &str) -> Result<Signature, SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?.trim_ascii();
    let hex = header.strip_prefix(prefix.as_bytes()).unwrap_or(header);
    let hex = hex.strip_prefix(b"sha256=").unwrap_or(hex);
    let mut mac = [0u8; MAC_LEN];
    hex::decode_to_slice(hex, &mut mac).map_err(|_| SignatureError::Malformed)?;
    Ok(Signature(mac))
}

/// A webhook secret, keyed once. `Debug` never shows the key.
#[derive(Clone)]
pub struct Secret {
    keyed: HmacSha256,
}

impl Secret {
    /// Keys HMAC-SHA256 with `secret` (the v3 `webhook_secret` or the v2 client secret).
    pub fn new(secret: &[u8]) -> Self {
        let keyed = HmacSha256::new_from_slice(secret).expect("HMAC accepts a key of any length");
        Self { keyed }
    }

    fn mac(&self, body: &[u8]) -> HmacSha256 {
        let mut mac = self.keyed.clone();
        mac.update(body);
        mac
    }

    /// Whether `signature` is the HMAC of `body` under this secret, compared in constant time.
    pub fn matches(&self, body: &[u8], signature: &Signature) -> bool {
        self.mac(body).verify_slice(&signature.0).is_ok()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Checks signatures against the current secret and, during a rotation, the previous one.
#[derive(Debug, Clone)]
pub struct Verifier {
    current: Secret,
    previous: Option<Secret>,
}

impl Verifier {
    pub fn new(current: Secret, previous: Option<Secret>) -> Self {
        Self { current, previous }
    }

    /// Whether `signature` is the HMAC of `body` under either secret, compared in constant
    /// time.
    pub fn matches(&self, body: &[u8], signature: &Signature) -> bool {
        self.current.matches(body, signature)
            || self.previous.as_ref().is_some_and(|s| s.matches(body, signature))
    }
}

/// The lowercase hex signature Nylas would send for `body`: for signing sample events and
/// for tests.
///
/// ```
/// use nylas_webhook_sqs::sign;
///
/// // Nylas's published test vector.
/// let signature = sign(b"myClientSecret", b"test123");
/// assert_eq!(signature, "ddc02f921a4835e310f249dc09770c3fea2cb6fe949adc1887d7adc04a581e1c");
/// ```
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    hex::encode(Secret::new(secret).mac(body).finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"myClientSecret";
    const BODY: &[u8] = b"test123";
    /// Nylas's published vector (nylas-nodejs tests).
    const NYLAS_VECTOR: &str = "ddc02f921a4835e310f249dc09770c3fea2cb6fe949adc1887d7adc04a581e1c";

    fn verifier() -> Verifier {
        Verifier::new(Secret::new(KEY), None)
    }

    /// Whether the header `value` verifies `body` under [`KEY`].
    fn verifies(body: &[u8], value: &str) -> Result<bool, SignatureError> {
        parse(Some(value.as_bytes()), "").map(|mac| verifier().matches(body, &mac))
    }

    #[test]
    fn nylas_published_vector_signs_as_published() {
        assert_eq!(sign(KEY, BODY), NYLAS_VECTOR);
    }

    #[test]
    fn nylas_published_vector_verifies() {
        assert_eq!(verifies(BODY, NYLAS_VECTOR), Ok(true));
    }

    #[test]
    fn uppercase_hex_verifies() {
        assert_eq!(verifies(BODY, &NYLAS_VECTOR.to_uppercase()), Ok(true));
    }

    #[test]
    fn sha256_prefix_and_surrounding_whitespace_verify() {
        assert_eq!(verifies(BODY, &format!(" sha256={NYLAS_VECTOR} ")), Ok(true));
    }

    /// Another sender's prefix is the one stripped before the hex; anything else is malformed.
    #[test]
    fn a_senders_own_prefix_verifies() {
        let value = format!("v1={NYLAS_VECTOR}");
        let verified =
            parse(Some(value.as_bytes()), "v1=").map(|mac| verifier().matches(BODY, &mac));
        assert_eq!(verified, Ok(true));
        assert_eq!(verifies(BODY, &value), Err(SignatureError::Malformed));
    }

    #[test]
    fn missing_signature_is_refused() {
        assert_eq!(parse(None, ""), Err(SignatureError::Missing));
    }

    #[test]
    fn empty_signature_is_malformed() {
        assert_eq!(verifies(BODY, ""), Err(SignatureError::Malformed));
    }

    #[test]
    fn truncated_signature_is_malformed_not_a_prefix_match() {
        assert_eq!(verifies(BODY, &NYLAS_VECTOR[..32]), Err(SignatureError::Malformed));
        assert_eq!(verifies(BODY, &NYLAS_VECTOR[..63]), Err(SignatureError::Malformed));
    }

    #[test]
    fn overlong_signature_is_malformed() {
        let overlong = format!("{NYLAS_VECTOR}00");
        assert_eq!(verifies(BODY, &overlong), Err(SignatureError::Malformed));
    }

    #[test]
    fn non_hex_signature_is_malformed() {
        let not_hex = format!("{}zz", &NYLAS_VECTOR[..62]);
        assert_eq!(verifies(BODY, &not_hex), Err(SignatureError::Malformed));
    }

    #[test]
    fn tampered_body_does_not_match() {
        assert_eq!(verifies(b"test124", NYLAS_VECTOR), Ok(false));
    }

    #[test]
    fn flipped_signature_does_not_match() {
        let flipped = format!("{}d", &NYLAS_VECTOR[..63]);
        assert_eq!(verifies(BODY, &flipped), Ok(false));
    }

    #[test]
    fn wrong_secret_does_not_match() {
        let mac = parse(Some(NYLAS_VECTOR.as_bytes()), "").expect("well formed");
        let other = Verifier::new(Secret::new(b"another secret"), None);
        assert!(!other.matches(BODY, &mac));
    }

    #[test]
    fn either_secret_matches_during_rotation() {
        let mac = parse(Some(NYLAS_VECTOR.as_bytes()), "").expect("well formed");
        let previous = Verifier::new(Secret::new(b"new secret"), Some(Secret::new(KEY)));
        let current = Verifier::new(Secret::new(KEY), Some(Secret::new(b"old secret")));
        assert!(previous.matches(BODY, &mac) && current.matches(BODY, &mac));
    }

    #[test]
    fn signature_of_an_empty_body_matches_only_that_body() {
        let header = sign(KEY, b"");
        assert_eq!(verifies(b"", &header), Ok(true));
        assert_eq!(verifies(BODY, &header), Ok(false));
    }

    #[test]
    fn debug_output_is_redacted() {
        let verifier = Verifier::new(Secret::new(KEY), Some(Secret::new(b"old")));
        assert_eq!(
            format!("{verifier:?}"),
            "Verifier { current: Secret(<redacted>), previous: Some(Secret(<redacted>)) }"
        );
    }
}
