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

// The consumer catches a handler's panic to return that message alone and release its record:
// with panic = "abort" the process dies with the whole batch instead. cargo lambda builds
// with abort when the release profile does not say (README, "Consuming the queue").
#[cfg(panic = "abort")]
compile_error!(
    "nylas-webhook-consumer needs panics to unwind: add `panic = \"unwind\"` under \
     [profile.release] in your Cargo.toml (cargo lambda builds with panic = \"abort\" when the \
     profile does not say)"
);

pub mod batch;
pub mod dead_letter;
pub mod idempotency;
pub mod log;
pub mod notification;

pub use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
pub use batch::{Consumer, Outcome, Report};
pub use dead_letter::DeadLetter;
pub use idempotency::Idempotency;
pub use notification::{Delta, Envelope, MessageError, Notification, Type};
pub use nylas_sqs_contract::ApiVersion;

/// The error `run` and `serve` return: lambda_runtime's, re-exported so that a team's `main`
/// needs no other dependency to name it.
pub use lambda_runtime::Error;
use lambda_runtime::{service_fn, LambdaEvent};
use std::fmt::Display;
use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Runs `handler` as the Lambda function, on each notification once. Reads the environment:
/// `IDEMPOTENCY_TABLE`, the DynamoDB table of records (or `IDEMPOTENCY=off` for a handler that
/// is idempotent on its own), `IDEMPOTENCY_TTL_SECONDS` (default 86400), and on a FIFO queue
/// `DEAD_LETTER_QUEUE_URL` with `MAX_RECEIVE_COUNT` (the queue's `maxReceiveCount`).
pub async fn run<H, F, E>(handler: H) -> Result<(), Error>
where
    H: Fn(Notification) -> F,
    F: Future<Output = Result<(), E>>,
    E: Display,
{
    let var = |name: &str| std::env::var(name).ok();
    let (idempotency, dead_letter) = (idempotency_settings(var)?, dead_letter_settings(var)?);
    let aws = match idempotency.is_some() || dead_letter.is_some() {
        true => Some(aws_settings().load().await),
        false => None,
    };
    let aws = aws.as_ref();
    let idempotency = idempotency.zip(aws).map(|((table, ttl), aws)| {
        Idempotency::new(aws_sdk_dynamodb::Client::new(aws), table).with_ttl(ttl)
    });
    let dead_letter = dead_letter
        .zip(aws)
        .map(|((url, count), aws)| DeadLetter::new(aws_sdk_sqs::Client::new(aws), url, count));
    serve(Consumer::new(handler, idempotency).with_dead_letter(dead_letter)).await
}

/// The idempotency table and TTL the environment (`var`) names, or none when it switches
/// idempotency off. Neither is an error: a consumer that silently ran without idempotency
/// would run retries again.
fn idempotency_settings(
    var: impl Fn(&str) -> Option<String>,
) -> Result<Option<(String, Duration)>, String> {
    let ttl = match var("IDEMPOTENCY_TTL_SECONDS") {
        None => idempotency::DEFAULT_TTL,
        Some(seconds) => Duration::from_secs(seconds.parse().map_err(|_| {
            format!("IDEMPOTENCY_TTL_SECONDS must be a whole number of seconds, not {seconds:?}")
        })?),
    };
    match (var("IDEMPOTENCY_TABLE"), var("IDEMPOTENCY")) {
        (Some(table), _) if !table.is_empty() => Ok(Some((table, ttl))),
        (_, Some(off)) if off == "off" => Ok(None),
        _ => Err(
            "IDEMPOTENCY_TABLE is not set: set it to the idempotency table's name, or set \
                  IDEMPOTENCY=off for a handler that is idempotent on its own"
                .to_owned(),
        ),
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
        _ => Err(
            "set both DEAD_LETTER_QUEUE_URL and MAX_RECEIVE_COUNT (the queue's redrive \
             policy), or neither"
                .to_owned(),
        ),
    }
}

/// aws-config's defaults, with timeouts: a DynamoDB call that hangs fails its message (which
/// goes back to the queue) instead of holding the batch until the function times out.
fn aws_settings() -> aws_config::ConfigLoader {
    use aws_config::timeout::TimeoutConfig;
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(1))
        .operation_attempt_timeout(Duration::from_secs(2))
        .operation_timeout(Duration::from_secs(5))
        .build();
    aws_config::defaults(aws_config::BehaviorVersion::latest()).timeout_config(timeouts)
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
        let remaining = remaining(event.context.deadline, SystemTime::now());
        let report = consumer.handle(&event.payload, remaining).await;
        Ok::<_, Error>(report.response())
    }))
    .await
}

/// Longest a Lambda invocation may run: the in-progress expiry when the deadline is no time.
pub const MAX_INVOCATION: Duration = Duration::from_secs(900);

/// The invocation's time left at `now`, from Lambda's deadline (Unix milliseconds). A deadline
/// already past or more than [`MAX_INVOCATION`] away is no deadline (cargo lambda's emulator
/// sends a duration, 600000): Lambda's longest invocation then, which holds a notification's
/// in-progress record longer, never shorter, than the attempt can run. Said once per process.
fn remaining(deadline_ms: u64, now: SystemTime) -> Duration {
    let deadline = UNIX_EPOCH + Duration::from_millis(deadline_ms);
    match deadline.duration_since(now) {
        Ok(left) if !left.is_zero() && left <= MAX_INVOCATION => left,
        _ => {
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| log::no_deadline(deadline_ms, MAX_INVOCATION));
            MAX_INVOCATION
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_time_left_runs_to_lambdas_deadline_or_is_lambdas_longest_invocation() {
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let deadline = 1_700_000_000_000 + 29_500;
        assert_eq!(remaining(deadline, now), Duration::from_millis(29_500));
        assert_eq!(remaining(deadline - 40_000, now), MAX_INVOCATION, "past");
        assert_eq!(remaining(600_000, now), MAX_INVOCATION, "a duration");
        let absurd = 1_700_000_000_000 + 901_000;
        assert_eq!(
            remaining(absurd, now),
            MAX_INVOCATION,
            "past Lambda's longest"
        );
        assert_eq!(remaining(1_700_000_000_000 + 900_000, now), MAX_INVOCATION);
    }

    fn settings(vars: &[(&str, &str)]) -> Result<Option<(String, Duration)>, String> {
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
        assert_eq!(on, Ok(Some(("t".to_owned(), day))));
        let hour = settings(&[
            ("IDEMPOTENCY_TABLE", "t"),
            ("IDEMPOTENCY_TTL_SECONDS", "3600"),
        ]);
        assert_eq!(hour, Ok(Some(("t".to_owned(), Duration::from_secs(3600)))));
        let bad = settings(&[
            ("IDEMPOTENCY_TABLE", "t"),
            ("IDEMPOTENCY_TTL_SECONDS", "1h"),
        ]);
        assert!(bad
            .unwrap_err()
            .starts_with("IDEMPOTENCY_TTL_SECONDS must be"));
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
        for half in [
            &both[..1],
            &both[1..],
            &[("DEAD_LETTER_QUEUE_URL", ""), both[1]],
        ] {
            assert!(
                settings(half).unwrap_err().starts_with("set both"),
                "{half:?}"
            );
        }
        for count in ["0", "five", "-1"] {
            let bad = settings(&[both[0], ("MAX_RECEIVE_COUNT", count)]).unwrap_err();
            assert!(bad.starts_with("MAX_RECEIVE_COUNT must be"), "{count}");
        }
    }

    #[test]
    fn idempotency_is_off_only_when_asked() {
        assert_eq!(settings(&[("IDEMPOTENCY", "off")]), Ok(None));
        for vars in [
            &[][..],
            &[("IDEMPOTENCY_TABLE", "")],
            &[("IDEMPOTENCY", "no")],
        ] {
            let refused = settings(vars).unwrap_err();
            assert!(
                refused.starts_with("IDEMPOTENCY_TABLE is not set"),
                "{vars:?}"
            );
        }
    }
}
