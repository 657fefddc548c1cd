//! # nylas-webhook-consumer
//!
//! The other end of `nylas-webhook-sqs`'s queue: an SQS-triggered Lambda handler that hands
//! each Nylas notification to a team's code once, across Nylas's retry window, and never
//! loses one. The handler is a Lambda handler as `lambda_runtime` shapes them: it gets a
//! [`LambdaEvent`] of one [`Notification`] (with the invocation's [`Context`]) and returns an
//! error of any type that converts into [`Error`].
//!
//! ```no_run
//! use nylas_webhook_consumer::{aws_config, serve, tokio, Consumer, DynamoDbClient, Error};
//! use nylas_webhook_consumer::{Idempotency, LambdaEvent, Notification};
//!
//! #[tokio::main(flavor = "current_thread", crate = "nylas_webhook_consumer::tokio")]
//! async fn main() -> Result<(), Error> {
//!     let aws = aws_config().await;
//!     let table = Idempotency::new(DynamoDbClient::new(&aws), "idempotency");
//!     let consumer = Consumer::new(
//!         |event: LambdaEvent<Notification>| async move {
//!             // The team's code: `event.payload.v3()` or `.v2()` for typed access.
//!             println!("{} {}", event.payload.id, event.context.request_id);
//!             Ok::<(), Error>(())
//!         },
//!         Some(table),
//!     );
//!     serve(consumer).await
//! }
//! ```
//!
//! [`run`] does the same with the settings in the environment, as `template.yaml` gives them.
//!
//! ## One batch, start to end (`batch.rs`)
//!
//! 1. `notification.rs`: decode each message with the receiver's own contract
//!    (`nylas-sqs-contract`): the exact bytes Nylas sent, checked against `nylas-id` by the
//!    rule the message names (`nylas-id-rule`).
//! 2. [`Idempotency`]: take the id, prefixed with the function's name, in DynamoDB with a
//!    conditional write; a notification completed before is acknowledged without running the
//!    handler.
//! 3. The team's handler; then the record is completed, or deleted when the handler failed.
//! 4. A partial batch response ([`Report`]): only the messages to try again go back to the
//!    queue; on a FIFO queue, a group's first failure takes the group's later messages with it,
//!    and on its last receive a failing one goes to the dead-letter queue alone
//!    ([`DeadLetter`]).
//! 5. `log.rs`: one JSON line per message, also an EMF metrics record.

// The consumer catches a handler's panic to return that message alone and release its record:
// with panic = "abort" the process dies with the whole batch instead. cargo lambda builds
// with abort when the release profile does not say (docs/consumer.md, "Your own crate").
#[cfg(panic = "abort")]
compile_error!(
    "nylas-webhook-consumer needs panics to unwind: add `panic = \"unwind\"` under \
     [profile.release] in your Cargo.toml (cargo lambda builds with panic = \"abort\" when the \
     profile does not say)"
);

mod batch;
mod dead_letter;
mod idempotency;
mod log;
mod notification;
mod outcome;

pub use aws_config::SdkConfig;
pub use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
pub use aws_sdk_dynamodb::Client as DynamoDbClient;
pub use aws_sdk_sqs::Client as SqsClient;
pub use batch::{Consumer, MAX_INVOCATION};
pub use dead_letter::DeadLetter;
pub use idempotency::{Idempotency, DEFAULT_TTL};
use lambda_runtime::service_fn;
/// What a team's `main` needs beside this crate: the runtime's types (the error `run` and
/// `serve` return, the event and context a handler gets), and tokio for `#[tokio::main]`.
pub use lambda_runtime::{self, Context, Error, LambdaEvent};
pub use notification::{Data, Delta, Envelope, MessageError, Notification, ObjectData, Type};
pub use nylas_sqs_contract::{ApiVersion, IdRule};
pub use outcome::{Outcome, Report};
use std::future::Future;
use std::time::Duration;
pub use tokio;

/// Runs `handler` as the Lambda function, on each notification once, with the settings in the
/// environment: `IDEMPOTENCY_TABLE`, the DynamoDB table of records (or `IDEMPOTENCY=off` for a
/// handler that is idempotent on its own), `IDEMPOTENCY_TTL_SECONDS` (default 86400),
/// `IDEMPOTENCY_KEY_PREFIX` (default the function's name), and on a FIFO queue
/// `DEAD_LETTER_QUEUE_URL` with `MAX_RECEIVE_COUNT` (the queue's `maxReceiveCount`).
pub async fn run<H, F, E>(handler: H) -> Result<(), Error>
where
    H: Fn(LambdaEvent<Notification>) -> F,
    F: Future<Output = Result<(), E>>,
    E: Into<Error>,
{
    let var = |name: &str| std::env::var(name).ok();
    let (idempotency, dead_letter) = (idempotency_settings(var)?, dead_letter_settings(var)?);
    let aws = match idempotency.is_some() || dead_letter.is_some() {
        true => Some(aws_config().await),
        false => None,
    };
    let aws = aws.as_ref();
    let idempotency = idempotency.zip(aws).map(|((table, ttl, prefix), aws)| {
        let store = Idempotency::new(DynamoDbClient::new(aws), table).with_ttl(ttl);
        match prefix {
            Some(prefix) => store.with_key_prefix(prefix),
            None => store,
        }
    });
    let dead_letter = dead_letter
        .zip(aws)
        .map(|((url, count), aws)| DeadLetter::new(SqsClient::new(aws), url, count));
    serve(Consumer::new(handler, idempotency).with_dead_letter(dead_letter)).await
}

/// The idempotency table, its TTL and its key prefix (none: the function's name).
type IdempotencySettings = (String, Duration, Option<String>);

/// The idempotency settings the environment (`var`) names, or none when it switches
/// idempotency off. Neither is an error: a consumer that silently ran without idempotency would
/// run retries again.
fn idempotency_settings(
    var: impl Fn(&str) -> Option<String>,
) -> Result<Option<IdempotencySettings>, String> {
    let ttl = match var("IDEMPOTENCY_TTL_SECONDS") {
        None => idempotency::DEFAULT_TTL,
        Some(seconds) => Duration::from_secs(seconds.parse().map_err(|_| {
            format!("IDEMPOTENCY_TTL_SECONDS must be a whole number of seconds, not {seconds:?}")
        })?),
    };
    let prefix = var("IDEMPOTENCY_KEY_PREFIX");
    match (var("IDEMPOTENCY_TABLE"), var("IDEMPOTENCY")) {
        (Some(table), _) if !table.is_empty() => Ok(Some((table, ttl, prefix))),
        (_, Some(off)) if off == "off" => Ok(None),
        _ => Err("IDEMPOTENCY_TABLE is not set: set it to the idempotency table's name, or set \
                  IDEMPOTENCY=off for a handler that is idempotent on its own"
            .to_owned()),
    }
}

/// The dead-letter queue and the queue's `maxReceiveCount` the environment (`var`) names, or
/// none when it names neither. One without the other is an error: the consumer would let a
/// FIFO poison message take its group to the dead-letter queue.
fn dead_letter_settings(
    var: impl Fn(&str) -> Option<String>,
) -> Result<Option<(String, u32)>, String> {
    match (var("DEAD_LETTER_QUEUE_URL"), var("MAX_RECEIVE_COUNT")) {
        (None, None) => Ok(None),
        (Some(url), Some(count)) if !url.is_empty() => match count.parse() {
            Ok(count) if count > 0 => Ok(Some((url, count))),
            _ => Err(format!(
                "MAX_RECEIVE_COUNT must be the queue's maxReceiveCount (a whole number), not \
                 {count:?}"
            )),
        },
        _ => Err("set both DEAD_LETTER_QUEUE_URL and MAX_RECEIVE_COUNT (the queue's redrive \
             policy), or neither"
            .to_owned()),
    }
}

/// aws-config's defaults, with timeouts: a DynamoDB or SQS call that hangs fails its message
/// (which goes back to the queue) instead of holding the batch until the function times out.
pub async fn aws_config() -> SdkConfig {
    use aws_config::timeout::TimeoutConfig;
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(1))
        .operation_attempt_timeout(Duration::from_secs(2))
        .operation_timeout(Duration::from_secs(5))
        .build();
    let defaults = aws_config::defaults(aws_config::BehaviorVersion::latest());
    defaults.timeout_config(timeouts).load().await
}

/// Runs `consumer` as the Lambda function: each batch within the invocation's time.
pub async fn serve<H, F, E>(consumer: Consumer<H>) -> Result<(), Error>
where
    H: Fn(LambdaEvent<Notification>) -> F,
    F: Future<Output = Result<(), E>>,
    E: Into<Error>,
{
    let consumer = &consumer;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let report = consumer.handle(&event.payload, &event.context).await;
        Ok::<_, Error>(report.response())
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn the_time_left_runs_to_lambdas_deadline_or_is_lambdas_longest_invocation() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let deadline = 1_700_000_000_000 + 29_500;
        let remaining = batch::remaining;
        assert_eq!(remaining(deadline, now), Duration::from_millis(29_500));
        assert_eq!(remaining(deadline - 40_000, now), MAX_INVOCATION, "past");
        assert_eq!(remaining(600_000, now), MAX_INVOCATION, "a duration");
        let absurd = 1_700_000_000_000 + 901_000;
        assert_eq!(remaining(absurd, now), MAX_INVOCATION, "past Lambda's longest");
        assert_eq!(remaining(1_700_000_000_000 + 900_000, now), MAX_INVOCATION);
    }

    fn settings(vars: &[(&str, &str)]) -> Result<Option<IdempotencySettings>, String> {
        idempotency_settings(|name| {
            let found = vars.iter().find(|(n, _)| *n == name);
            found.map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn a_table_turns_idempotency_on_for_a_day_unless_told_otherwise() {
        let day = idempotency::DEFAULT_TTL;
        assert_eq!(day, Duration::from_secs(86_400));
        let on = settings(&[("IDEMPOTENCY_TABLE", "t")]);
        assert_eq!(on, Ok(Some(("t".to_owned(), day, None))));
        let hour = settings(&[("IDEMPOTENCY_TABLE", "t"), ("IDEMPOTENCY_TTL_SECONDS", "3600")]);
        assert_eq!(hour, Ok(Some(("t".to_owned(), Duration::from_secs(3600), None))));
        let prefixed = settings(&[("IDEMPOTENCY_TABLE", "t"), ("IDEMPOTENCY_KEY_PREFIX", "p")]);
        assert_eq!(prefixed, Ok(Some(("t".to_owned(), day, Some("p".to_owned())))));
        let bad = settings(&[("IDEMPOTENCY_TABLE", "t"), ("IDEMPOTENCY_TTL_SECONDS", "1h")]);
        assert!(bad.unwrap_err().starts_with("IDEMPOTENCY_TTL_SECONDS must be"));
    }

    #[test]
    fn the_dead_letter_queue_takes_both_settings_or_neither() {
        let settings = |vars: &[(&str, &str)]| {
            dead_letter_settings(|name| {
                let found = vars.iter().find(|(n, _)| *n == name);
                found.map(|(_, v)| v.to_string())
            })
        };
        assert_eq!(settings(&[]), Ok(None));
        let both = [("DEAD_LETTER_QUEUE_URL", "u"), ("MAX_RECEIVE_COUNT", "5")];
        assert_eq!(settings(&both), Ok(Some(("u".to_owned(), 5))));
        for half in [&both[..1], &both[1..], &[("DEAD_LETTER_QUEUE_URL", ""), both[1]]] {
            assert!(settings(half).unwrap_err().starts_with("set both"), "{half:?}");
        }
        for count in ["0", "five", "-1"] {
            let bad = settings(&[both[0], ("MAX_RECEIVE_COUNT", count)]).unwrap_err();
            assert!(bad.starts_with("MAX_RECEIVE_COUNT must be"), "{count}");
        }
    }

    #[test]
    fn idempotency_is_off_only_when_asked() {
        assert_eq!(settings(&[("IDEMPOTENCY", "off")]), Ok(None));
        for vars in [&[][..], &[("IDEMPOTENCY_TABLE", "")], &[("IDEMPOTENCY", "no")]] {
            let refused = settings(vars).unwrap_err();
            assert!(refused.starts_with("IDEMPOTENCY_TABLE is not set"), "{vars:?}");
        }
    }
}
