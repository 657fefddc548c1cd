//! # nylas-webhook-sqs
//!
//! An AWS Lambda function that receives Nylas webhooks behind API Gateway, verifies them, and
//! forwards every notification to Amazon SQS, one message each.
//!
//! ## One request, start to end
//!
//! [`event`] first repairs what would make lambda_http panic while building the request (a
//! hostile query string); then [`handler`] takes each step in this order; nothing flows back
//! up.
//!
//! 1. [`body`]: refuse a body over the size cap before any work.
//! 2. [`signature`]: verify `X-Nylas-Signature` (HMAC-SHA256, constant time) over the raw
//!    bytes, against the secrets [`secret`] keeps: the current and the previous one, from
//!    Secrets Manager (read when first needed, and again when a signature matches neither).
//! 3. [`body`]: inflate a gzip delivery under a cap, only once it is verified.
//! 4. [`notification`]: split the body with serde_json: v3 is the body; v2 is each delta's
//!    exact bytes; anything else is the body, marked unknown.
//! 5. [`queue`]: deliver every notification, or fail as a whole. [`sqs`] is the implementation:
//!    message bodies (text, base64, or gzip and base64 when it would not fit) and attributes,
//!    FIFO keys, batches of 10 entries and 1 MiB sent side by side, refused entries sent again.
//! 6. [`outcome`]: every status and reason, decided in one place.
//! 7. [`log`]: one JSON line per request, also a CloudWatch metrics record.
//!
//! [`config`] reads the environment once (a missing setting leaves the function answering
//! the challenge and 503 to every POST); `main.rs` builds the AWS clients once and runs the
//! handler. To send notifications somewhere other than SQS, implement [`queue::Queue`] and
//! build it in `main.rs`: nothing else changes.

mod body;
mod config;
mod event;
mod handler;
mod log;
mod notification;
mod outcome;
mod queue;
mod secret;
mod signature;
mod sqs;

// What `main.rs` wires, and what a fork builds on: a queue of its own behind [`Queue`].
pub use config::{Config, ConfigError, SecretSource};
pub use event::repair as repair_event;
pub use handler::Receiver;
pub use log::init as init_logging;
pub use notification::{ApiVersion, Notification};
pub use queue::{Delivered, Queue, QueueError};
pub use secret::Secrets;
pub use signature::sign;
pub use sqs::SqsQueue;

/// The core's steps, for the property tests, the benchmarks and the fuzz target: not an API.
#[doc(hidden)]
pub mod core {
    pub use crate::body::{check_intact, check_size, decode, Decoded};
    pub use crate::notification::{split, split_decoded};
    pub use crate::signature::{parse, Secret, SignatureError, Verifier};
    pub use crate::sqs::{plan, Message, MAX_BYTES, MAX_ENTRIES};
}
