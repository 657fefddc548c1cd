//! # nylas-webhook-consumer
//!
//! The other end of `nylas-webhook-sqs`'s queue: an SQS-triggered Lambda handler that hands
//! each Nylas notification to a team's code once, across Nylas's retry window, and never
//! loses one.
//!
//! ```no_run
//! # async fn example() -> Result<(), lambda_runtime::Error> {
//! nylas_webhook_consumer::run(|notification| async move {
//!     // The team's code: `notification.v3()` or `.v2()` for typed access.
//!     println!("{} {:?}", notification.id, notification.kind);
//!     Ok::<(), std::io::Error>(())
//! })
//! .await
//! # }
//! ```
//!
//! ## One batch, start to end ([`batch`])
//!
//! 1. [`notification`]: decode each message with the receiver's own contract
//!    (`nylas-sqs-contract`): the exact bytes Nylas sent, checked against `nylas-id`.
//! 2. [`idempotency`]: take the `nylas-id` in DynamoDB with a conditional write; a notification
//!    completed before is acknowledged without running the handler.
//! 3. The team's handler; then the record is completed, or deleted when the handler failed.
//! 4. A partial batch response: only the messages to try again go back to the queue; on a
//!    FIFO queue, a group's first failure takes the group's later messages with it.
//! 5. [`log`]: one JSON line per message, also an EMF metrics record.

pub mod batch;
pub mod idempotency;
pub mod log;
pub mod notification;

pub use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
pub use batch::{Consumer, Outcome, Report};
pub use idempotency::Idempotency;
pub use notification::{Delta, Envelope, MessageError, Notification, Type};
pub use nylas_sqs_contract::ApiVersion;

use lambda_runtime::{service_fn, Error, LambdaEvent};
use std::fmt::Display;
use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Runs `handler` as the Lambda function, on each notification once. Reads the environment:
/// `IDEMPOTENCY_TABLE`, the DynamoDB table of records (or `IDEMPOTENCY=off` for a handler that
/// is idempotent on its own), and `IDEMPOTENCY_TTL_SECONDS` (default 86400).
pub async fn run<H, F, E>(handler: H) -> Result<(), Error>
where
    H: Fn(Notification) -> F,
    F: Future<Output = Result<(), E>>,
    E: Display,
{
    let idempotency = match (std::env::var("IDEMPOTENCY_TABLE"), std::env::var("IDEMPOTENCY")) {
        (Ok(table), _) if !table.is_empty() => {
            let config = aws_config::load_from_env().await;
            let store = Idempotency::new(aws_sdk_dynamodb::Client::new(&config), table);
            Some(match std::env::var("IDEMPOTENCY_TTL_SECONDS") {
                Ok(ttl) => store.with_ttl(Duration::from_secs(ttl.parse().map_err(|_| {
                    "IDEMPOTENCY_TTL_SECONDS must be a whole number of seconds"
                })?)),
                Err(_) => store,
            })
        }
        (_, Ok(off)) if off == "off" => None,
        _ => return Err("set IDEMPOTENCY_TABLE to the idempotency table's name, or IDEMPOTENCY=off for a handler that is idempotent on its own".into()),
    };
    serve(Consumer::new(handler, idempotency)).await
}

/// Runs `consumer` as the Lambda function: each batch within the invocation's time.
pub async fn serve<H, F, E>(consumer: Consumer<H>) -> Result<(), Error>
where
    H: Fn(Notification) -> F,
    F: Future<Output = Result<(), E>>,
    E: Display,
{
    let consumer = &consumer;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let deadline = UNIX_EPOCH + Duration::from_millis(event.context.deadline);
        let remaining = deadline
            .duration_since(SystemTime::now())
            .unwrap_or_default();
        let report = consumer.handle(&event.payload, remaining).await;
        Ok::<_, Error>(report.response())
    }))
    .await
}
