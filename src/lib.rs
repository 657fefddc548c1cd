//! # nylas-webhook-sqs
//!
//! An AWS Lambda function that receives Nylas webhooks behind API Gateway, verifies them, and
//! forwards every notification to Amazon SQS, one message each.
//!
//! ## One request, start to end
//!
//! [`event`] repairs what would make lambda_http fail (a hostile query, host or header); then
//! [`handler`] takes each step in this order, and nothing flows back up:
//!
//! 1. [`body`]: refuse a body over the size cap before any work.
//! 2. [`signature`]: verify the [`Sender`]'s signature header over the raw bytes against the
//!    secrets [`secret`] keeps (current and previous, from Secrets Manager).
//! 3. [`body`]: inflate a gzip delivery under a cap, once it is verified.
//! 4. The sender's `split` ([`nylas`] for Nylas): each notification, its id and its group.
//! 5. [`breaker`]: answer at once while the queue is down, trying it every few seconds.
//! 6. [`queue`]: deliver every notification, or fail as a whole; [`sqs`] implements it with
//!    the messages [`message`] builds, and [`archive`] keeps a copy when the archive is on.
//! 7. [`outcome`]: every status and reason, decided in one place.
//! 8. [`log`]: one JSON line per request, also a CloudWatch metrics record.
//!
//! [`config`] reads the environment once; `main.rs` builds the clients and runs the handler.
//! To send elsewhere than SQS, implement [`Queue`]; for another sender, define a [`Sender`].
//! What a message holds is the `nylas-sqs-contract` crate, which the consumer reads with.

mod archive;
mod body;
mod breaker;
mod config;
mod event;
mod handler;
mod log;
mod message;
mod nylas;
mod outcome;
mod queue;
mod secret;
mod sender;
mod signature;
mod sqs;

// What `main.rs` wires, what a queue of one's own implements, what a sender of one's own defines.
pub use archive::Archive;
pub use config::{Config, ConfigError, SecretSource};
pub use event::Event;
pub use handler::Receiver;
pub use log::init as init_logging;
pub use nylas::NYLAS;
pub use nylas_sqs_contract::{ApiVersion, IdRule};
pub use queue::{Calls, Delivered, Origin, Queue, QueueError};
pub use secret::Secrets;
pub use sender::{Notification, Sender};
pub use signature::sign;
pub use sqs::SqsQueue;

/// The sender the function runs with (`main.rs`), and the tests and scripts sign as: a fork
/// for another sender names its own here (docs/forking.md, "Another HMAC sender").
pub const SENDER: Sender = NYLAS;

/// The core's steps, for the property tests, the benchmarks and the fuzz target: not an API.
#[doc(hidden)]
pub mod core {
    pub use crate::body::{check_intact, check_size, decode};
    pub use crate::message::{Message, MAX_BYTES};
    pub use crate::nylas::{split, split_with};
    pub use crate::signature::{parse, Secret, SignatureError, Verifier};
    pub use crate::sqs::{plan, MAX_ENTRIES};
}
