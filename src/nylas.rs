//! Nylas's side of the webhook protocol, in one place: what a fork for another sender changes
//! (README, "Forking it"). The rest of the function is the sender's, whoever it is: the size
//! cap, HMAC-SHA256 over the raw body in constant time, secret rotation, the queue.
//!
//! Rules: <https://developer.nylas.com/docs/v3/notifications/webhooks/>.

use lambda_http::http::StatusCode;

/// Who sends the webhooks, as answers' errors and log lines name it.
pub const SENDER: &str = "Nylas";

/// The header that carries the hex HMAC-SHA256 of the raw body. Header lookups ignore case.
pub const SIGNATURE_HEADER: &str = "X-Nylas-Signature";

/// What may stand before the hex in [`SIGNATURE_HEADER`]: Nylas sends none, and its CLI
/// tolerates this one.
pub const SIGNATURE_PREFIX: &str = "sha256=";

/// The query parameter of `GET ?challenge=<value>`, by which Nylas checks the URL: the value
/// is answered back, exactly. `None` for a sender that checks no URL (every GET is then 405).
pub const CHALLENGE: Option<&str> = Some("challenge");

/// The answer to every failure an operator can fix, so that the sender delivers again:
/// Nylas retries 408, 429, 502, 503, 504 and 507 and drops a notification on a 500 or any
/// other 4xx (<https://developer.nylas.com/docs/v3/notifications/webhooks/#retry-attempts>).
pub const RETRY: StatusCode = StatusCode::SERVICE_UNAVAILABLE;

/// How a verified body becomes notifications: Nylas's v3 (one per POST) and v2 (one per
/// delta) shapes, in `notification.rs`; anything else is one notification, forwarded whole.
pub use crate::notification::split_decoded as split;
