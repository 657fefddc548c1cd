//! Who signs the webhooks, as one value the handler holds ([`Sender`]), and what a verified body
//! becomes ([`Notification`]). `nylas.rs` defines Nylas; a fork defines its own sender
//! (docs/forking.md, "Another HMAC sender"). The rest of the function serves every sender alike.

use lambda_http::http::HeaderMap;
use nylas_sqs_contract::{id, ApiVersion, IdRule};

/// A webhook sender: its name, how it signs, how it checks the URL, how its bodies split.
#[derive(Debug, Clone, Copy)]
pub struct Sender {
    /// Who sends the webhooks, as log lines name it.
    pub name: &'static str,
    /// The header that carries the hex HMAC-SHA256 of the raw body; lookups ignore case.
    pub signature_header: &'static str,
    /// What the sender writes before the hex in the header (`sha256=` is always accepted).
    pub signature_prefix: &'static str,
    /// The query parameter of `GET ?<challenge>=<value>`, whose value is answered back exactly:
    /// how the sender checks the URL. `None` for a sender that checks none (GET is then 405).
    pub challenge: Option<&'static str>,
    /// A verified body's notifications, in order, each with its id, the rule that made it, and
    /// its FIFO group.
    pub split: Split,
}

/// A sender's `split`: the body's bytes (inflated, unless too large), the gzip they came as, and
/// the request's headers (for a sender that puts the id in one); the notifications.
pub type Split = for<'a> fn(&'a [u8], Option<&'a [u8]>, &HeaderMap) -> Vec<Notification<'a>>;

impl Sender {
    /// The methods the function answers, for a 405's `Allow`.
    pub fn allow(&self) -> &'static str {
        self.challenge.map_or("POST", |_| "GET, POST")
    }
}

/// One notification: its exact bytes and what its message's attributes and keys are made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification<'a> {
    /// The bytes as they stood in the body: the whole body, or one part of it (a v2 delta).
    pub bytes: &'a [u8],
    /// The sender's gzip of `bytes`, when it sent them compressed. For gzip too large to
    /// inflate, `bytes` are this gzip too.
    pub gzip: Option<&'a [u8]>,
    pub api_version: ApiVersion,
    /// The type, as the sender names it (Nylas: `message.created.truncated`).
    pub kind: Option<String>,
    /// The deduplication key, the same on every retry of the notification.
    pub id: String,
    /// How `id` was made: the consumer checks the bytes against this rule only.
    pub id_rule: IdRule,
    /// The FIFO group: notifications of one group stay in order (Nylas: the grant, or the v2
    /// account). Also the `nylas-grant-id` attribute.
    pub group: Option<String>,
    /// The sender's count of attempts at this notification (Nylas v3: 1 to 3).
    pub delivery_attempt: Option<u64>,
}

impl<'a> Notification<'a> {
    /// A notification of unknown shape: the bytes whole, their SHA-256 as the id, no group.
    pub fn unknown(bytes: &'a [u8], gzip: Option<&'a [u8]>) -> Self {
        Self {
            bytes,
            gzip,
            api_version: ApiVersion::Unknown,
            kind: None,
            id: id(None, bytes),
            id_rule: IdRule::Sha256,
            group: None,
            delivery_attempt: None,
        }
    }
}
