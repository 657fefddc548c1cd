//! # nylas-webhook-sqs
//!
//! An AWS Lambda function that receives Nylas webhooks behind API Gateway, verifies them, and
//! forwards every notification to Amazon SQS, one message each.
//!
//! ## How the pieces fit
//!
//! A pure core, with no AWS types in it:
//! - [`body`]: size caps, and gzip decompression (after verification) under a hard cap.
//! - [`signature`]: `X-Nylas-Signature`, HMAC-SHA256 over the raw body, constant-time,
//!   with an optional previous secret for rotation.
//! - [`json`]: reads JSON in one validating pass, without building it.
//! - [`notification`]: splits a verified body into notifications (v3: the body; v2: each
//!   delta, byte for byte; anything else: the body, marked unknown).
//! - [`message`]: turns a notification into an SQS message body and attributes.
//! - [`batch`]: plans `SendMessageBatch` calls within 10 entries and 1 MiB.
//! - [`forward`]: sends the planned batches and retries the entries SQS refused.
//!
//! Thin edges around it:
//! - [`handler`]: a `lambda_http` request in, a response out.
//! - [`outcome`]: every answer and its status code, in one place.
//! - [`queue`]: the small trait the handler forwards through; [`sqs`] implements it.
//! - [`config`] and [`logging`]: the environment in, JSON log lines out.
//!
//! `main.rs` reads the configuration, builds the SQS client once and runs the handler.

pub mod batch;
pub mod body;
pub mod config;
pub mod forward;
pub mod handler;
pub mod json;
pub mod logging;
pub mod message;
pub mod notification;
pub mod outcome;
pub mod queue;
pub mod signature;
pub mod sqs;
