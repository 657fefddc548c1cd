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
//! 2. [`signature`]: verify `X-Nylas-Signature` over the raw bytes against the secrets
//!    [`secret`] keeps (current and previous, from Secrets Manager).
//! 3. [`body`]: inflate a gzip delivery under a cap, once it is verified.
//! 4. [`notification`]: split the body: v3 is the body; v2 each delta's exact bytes.
//! 5. [`breaker`]: answer at once while the queue is down, trying it every few seconds.
//! 6. [`queue`]: deliver every notification, or fail as a whole; [`sqs`] implements it.
//! 7. [`outcome`]: every status and reason, decided in one place.
//! 8. [`log`]: one JSON line per request, also a CloudWatch metrics record.
//!
//! [`config`] reads the environment once; `main.rs` builds the clients and runs the handler.
//! To send elsewhere than SQS, implement [`Queue`] and build it in `main.rs`. What is Nylas's
//! (the signature header, the challenge, how a body splits, the answer it retries) is in
//! [`nylas`]; what a message holds is the `nylas-sqs-contract` crate, which the consumer
//! reads with.

mod body;
mod breaker;
mod config;
mod event;
mod handler;
mod log;
mod notification;
mod nylas;
mod outcome;
mod queue;
mod secret;
mod signature;
mod sqs;

// What `main.rs` wires, and what a queue of one's own implements (`Queue`).
pub use config::{Config, ConfigError, SecretSource};
pub use event::Event;
pub use handler::Receiver;
pub use log::init as init_logging;
pub use notification::{ApiVersion, Notification};
pub use queue::{Calls, Delivered, Queue, QueueError};
pub use secret::Secrets;
pub use signature::sign;
pub use sqs::SqsQueue;

/// The core's steps, for the property tests, the benchmarks and the fuzz target: not an API.
#[doc(hidden)]
pub mod core {
    pub use crate::body::{check_intact, check_size, decode, Decoded};
    pub use crate::notification::{split, split_decoded};
    pub use crate::nylas::SIGNATURE_HEADER;
    pub use crate::signature::{parse, Secret, SignatureError, Verifier};
    pub use crate::sqs::{plan, Message, MAX_BYTES, MAX_ENTRIES};
}
