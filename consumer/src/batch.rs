//! One SQS batch, start to end: each message decoded, taken in the idempotency table, handed to
//! the team's handler, recorded, and logged; what must be tried again reported back as a
//! partial batch response (<https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html>).

use crate::dead_letter::DeadLetter;
use crate::idempotency::{Begin, Idempotency};
use crate::log;
use crate::notification::{attribute_of, decode_message, Notification};
use crate::outcome::{Outcome, Report};
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use futures_util::{stream, FutureExt, StreamExt};
use lambda_runtime::{Context, Error, LambdaEvent};
use nylas_sqs_contract::attribute;
use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Most messages (standard queue) or FIFO groups processed side by side in one invocation.
pub const CONCURRENCY: usize = 10;

/// The team's handler with what it needs around it: the idempotency table (or none, for a
/// handler that is idempotent on its own) and a clock.
pub struct Consumer<H> {
    handler: H,
    idempotency: Option<Idempotency>,
    dead_letter: Option<DeadLetter>,
    clock: Arc<dyn Fn() -> SystemTime + Send + Sync>,
}

impl<H, F, E> Consumer<H>
where
    H: Fn(LambdaEvent<Notification>) -> F,
    F: Future<Output = Result<(), E>>,
    E: Into<Error>,
{
    /// A consumer that runs `handler` once per notification, as `idempotency` records them;
    /// with `None`, once per delivery of a message.
    pub fn new(handler: H, idempotency: Option<Idempotency>) -> Self {
        Self { handler, idempotency, dead_letter: None, clock: Arc::new(SystemTime::now) }
    }

    /// Sends a FIFO message that fails on its last receive to `dead_letter` itself, and goes
    /// on with its group. Without it, SQS's redrive moves the group's waiting messages too.
    pub fn with_dead_letter(mut self, dead_letter: Option<DeadLetter>) -> Self {
        self.dead_letter = dead_letter;
        self
    }

    /// Reads the time from `clock`, for tests that move it on.
    pub fn with_clock(mut self, clock: impl Fn() -> SystemTime + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Processes `batch` within the invocation's time left (`context`'s deadline): a FIFO
    /// group's messages one after another, stopping at the first that must be tried again;
    /// other messages and groups side by side. The handler gets each notification with
    /// `context`.
    pub async fn handle(&self, batch: &SqsEvent, context: &Context) -> Report {
        // The deadline is read against the wall clock; `until` is on `clock`, which tests move.
        let until = (self.clock)() + remaining(context.deadline, SystemTime::now());
        let outcomes = stream::iter(groups(&batch.records))
            .map(|group| self.group(group, context, until))
            .buffer_unordered(CONCURRENCY)
            .collect::<Vec<_>>()
            .await;
        let mut outcomes: Vec<(usize, Outcome)> = outcomes.into_iter().flatten().collect();
        outcomes.sort_by_key(|(position, _)| *position);
        let outcomes = outcomes
            .into_iter()
            .map(|(position, outcome)| (message_id(&batch.records[position]).to_owned(), outcome));
        Report { outcomes: outcomes.collect() }
    }

    async fn group(
        &self,
        group: Vec<(usize, &SqsMessage)>,
        context: &Context,
        until: SystemTime,
    ) -> Vec<(usize, Outcome)> {
        let mut outcomes = Vec::with_capacity(group.len());
        let mut returned = false;
        for (position, message) in group {
            let outcome = if returned {
                log::message(message, &Outcome::Behind, Duration::ZERO);
                Outcome::Behind
            } else {
                self.one(message, context, until).await
            };
            returned = outcome.returns();
            outcomes.push((position, outcome));
        }
        outcomes
    }

    async fn one(&self, message: &SqsMessage, context: &Context, until: SystemTime) -> Outcome {
        let started = Instant::now();
        let mut outcome = match decode_message(message) {
            Err(error) => Outcome::Failed(error.to_string()),
            Ok(notification) => self.once(notification, context, until).await,
        };
        if let (Outcome::Failed(why), Some(dead)) = (&outcome, &self.dead_letter) {
            if dead.takes(message) {
                outcome = match dead.send(message).await {
                    Ok(()) => Outcome::DeadLettered(why.clone()),
                    Err(error) => Outcome::Failed(format!("{why}; not dead-lettered: {error}")),
                };
            }
        }
        log::message(message, &outcome, started.elapsed());
        outcome
    }

    /// Runs the handler on `notification` unless the idempotency table says not to.
    async fn once(
        &self,
        notification: Notification,
        context: &Context,
        until: SystemTime,
    ) -> Outcome {
        // Once per replay, and once outside any: a replay's run is a run of its own.
        let id = match &notification.replay_id {
            Some(replay) => format!("{replay}#{}", notification.id),
            None => notification.id.clone(),
        };
        if let Some(store) = &self.idempotency {
            match store.begin(&id, (self.clock)(), until).await {
                Ok(Begin::Run) => {}
                Ok(Begin::Completed) => return Outcome::Duplicate,
                Ok(Begin::InProgress) => return Outcome::InProgress,
                Err(error) => return Outcome::Failed(error.to_string()),
            }
        }
        // A panicking handler fails its message, not the batch.
        let event = LambdaEvent::new(notification, context.clone());
        let ran = AssertUnwindSafe(async { (self.handler)(event).await }).catch_unwind().await;
        let failed = match ran {
            Ok(Ok(())) => None,
            Ok(Err(error)) => Some(format!("the handler failed: {}", error.into())),
            Err(_) => Some("the handler panicked".to_owned()),
        };
        let Some(store) = &self.idempotency else {
            return failed.map_or(Outcome::Processed, Outcome::Failed);
        };
        match failed {
            // Not recorded: a later delivery runs it again after the in-progress record
            // expires. Returning the message would make that certain.
            None => match store.complete(&id, (self.clock)()).await {
                Ok(()) => Outcome::Processed,
                Err(error) => {
                    log::unrecorded(&id, &error);
                    Outcome::Processed
                }
            },
            // Not released: the in-progress record holds the retry off until it expires.
            Some(failed) => match store.release(&id).await {
                Ok(()) => Outcome::Failed(failed),
                Err(error) => Outcome::Failed(format!("{failed}; {error}")),
            },
        }
    }
}

fn message_id(message: &SqsMessage) -> &str {
    message.message_id.as_deref().unwrap_or_default()
}

/// Longest a Lambda invocation may run: the in-progress expiry when the deadline is no time.
pub const MAX_INVOCATION: Duration = Duration::from_secs(900);

/// The invocation's time left at `now`, from Lambda's deadline (Unix milliseconds). A deadline
/// already past or more than [`MAX_INVOCATION`] away is no deadline (cargo lambda's emulator
/// sends a duration, 600000): Lambda's longest invocation then, which holds a notification's
/// in-progress record longer, never shorter, than the attempt can run. Said once per process.
pub(crate) fn remaining(deadline_ms: u64, now: SystemTime) -> Duration {
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

/// The batch's messages, by position, in the groups that run side by side, each group's in
/// order: on a FIFO queue, its groups; on a standard queue, the messages of one `nylas-id`
/// (a notification delivered twice in one batch runs once, then finds itself completed).
fn groups(messages: &[SqsMessage]) -> Vec<Vec<(usize, &SqsMessage)>> {
    let mut groups: Vec<Vec<(usize, &SqsMessage)>> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (position, message) in messages.iter().enumerate() {
        let key = match message.attributes.get("MessageGroupId") {
            Some(group) => Some(group.as_str()),
            None => attribute_of(message, attribute::ID),
        };
        let Some(key) = key else {
            groups.push(vec![(position, message)]);
            continue;
        };
        let at = *index.entry(key).or_insert(groups.len());
        if at == groups.len() {
            groups.push(Vec::new());
        }
        groups[at].push((position, message));
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Mutex;

    /// A v3 message of the receiver's for notification `id`, in FIFO `group` if any.
    pub fn message(id: &str, group: Option<&str>) -> serde_json::Value {
        let body = json!({"specversion": "1.0", "type": "message.created", "id": id, "time": 1,
            "data": {"object": {}}})
        .to_string();
        let text = |v: &str| json!({"stringValue": v, "dataType": "String"});
        let mut attributes = json!({});
        if let Some(group) = group {
            attributes = json!({ "MessageGroupId": group });
        }
        json!({
            "messageId": format!("m-{id}"),
            "body": body,
            "attributes": attributes,
            "messageAttributes": {
                attribute::ID: text(id),
                attribute::API_VERSION: text("v3"),
                attribute::TYPE: text("message.created"),
            },
        })
    }

    fn batch(messages: Vec<serde_json::Value>) -> SqsEvent {
        serde_json::from_value(json!({ "Records": messages })).unwrap()
    }

    /// A handler that records the ids it sees and fails those listed.
    fn recording<'a>(
        seen: &'a Mutex<Vec<String>>,
        failing: &'static [&'static str],
    ) -> impl Fn(LambdaEvent<Notification>) -> std::future::Ready<Result<(), String>> + 'a {
        move |event: LambdaEvent<Notification>| {
            let n = event.payload;
            seen.lock().unwrap().push(n.id.clone());
            let failed = failing.contains(&n.id.as_str());
            std::future::ready(if failed { Err("refused".to_owned()) } else { Ok(()) })
        }
    }

    fn returned(report: &Report) -> Vec<String> {
        let response = report.response();
        response.batch_item_failures.into_iter().map(|f| f.item_identifier).collect()
    }

    const TIME: Duration = Duration::from_secs(30);

    /// An invocation's context whose deadline is `left` away.
    fn within(left: Duration) -> Context {
        let deadline = SystemTime::now() + left;
        let mut context = Context::default();
        context.deadline = deadline.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
        context
    }

    #[tokio::test]
    async fn only_the_message_whose_handler_failed_is_returned() {
        let seen = Mutex::new(Vec::new());
        let consumer = Consumer::new(recording(&seen, &["n-3"]), None);
        let messages = (0..10).map(|i| message(&format!("n-{i}"), None)).collect();
        let report = consumer.handle(&batch(messages), &within(TIME)).await;
        assert_eq!(returned(&report), ["m-n-3"]);
        assert_eq!(seen.lock().unwrap().len(), 10);
        assert_eq!(report.count(|o| *o == Outcome::Processed), 9);
        let failed = &report.outcomes[3].1;
        assert_eq!(failed, &Outcome::Failed("the handler failed: refused".to_owned()));
    }

    #[tokio::test]
    async fn a_fifo_failure_returns_its_groups_later_messages_only() {
        let seen = Mutex::new(Vec::new());
        let consumer = Consumer::new(recording(&seen, &["a-2"]), None);
        let ids = [("a-1", "A"), ("b-1", "B"), ("a-2", "A"), ("b-2", "B"), ("a-3", "A")];
        let messages = ids.iter().map(|(id, g)| message(id, Some(g))).collect();
        let report = consumer.handle(&batch(messages), &within(TIME)).await;
        assert_eq!(returned(&report), ["m-a-2", "m-a-3"]);
        let seen = seen.lock().unwrap();
        assert!(!seen.contains(&"a-3".to_owned()), "behind a failure: not run");
        assert_eq!(seen.len(), 4);
        assert_eq!(report.outcomes[4].1, Outcome::Behind);
    }

    #[tokio::test]
    async fn a_notification_is_held_until_the_invocation_ends_then_kept_a_day() {
        use crate::idempotency::tests::{put, store, stored};
        let sent = Arc::new(Mutex::new(Vec::new()));
        let rule = put(&sent, stored);
        let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let handler = |_: LambdaEvent<Notification>| async { Ok::<(), String>(()) };
        let consumer = Consumer::new(handler, Some(store(&[&rule]))).with_clock(move || now);
        let report = consumer.handle(&batch(vec![message("n-1", None)]), &within(TIME)).await;
        assert_eq!(report.outcomes[0].1, Outcome::Processed);
        let sent = sent.lock().unwrap();
        let number = |i: usize, name: &str| -> u128 {
            let item = sent[i].item().unwrap();
            item[name].as_n().unwrap().parse().unwrap()
        };
        let since = |t: SystemTime| t.duration_since(UNIX_EPOCH).unwrap();
        // The deadline is read in milliseconds, against the wall clock, a moment later.
        let held = number(0, "in_progress_expiration");
        let until = since(now + TIME).as_millis();
        assert!((until - 1000..=until).contains(&held), "{held} {until}");
        let day = crate::idempotency::DEFAULT_TTL;
        assert_eq!(number(1, "expiration"), since(now + day).as_secs().into());
    }

    #[tokio::test]
    async fn a_notification_twice_in_one_batch_runs_once_after_the_other() {
        let seen = Mutex::new(Vec::new());
        let consumer = Consumer::new(recording(&seen, &["n-2"]), None);
        let mut again = message("n-1", None);
        again["messageId"] = json!("m-n-1-again");
        let mut failed_again = message("n-2", None);
        failed_again["messageId"] = json!("m-n-2-again");
        let messages = vec![message("n-1", None), message("n-2", None), again, failed_again];
        let report = consumer.handle(&batch(messages), &within(TIME)).await;
        // Without a table both copies of n-1 run, one after the other; n-2's copy waits
        // behind its failure.
        let mut seen = seen.lock().unwrap().clone();
        seen.sort();
        assert_eq!(seen, ["n-1", "n-1", "n-2"]);
        assert_eq!(returned(&report), ["m-n-2", "m-n-2-again"]);
        assert_eq!(report.outcomes[3].1, Outcome::Behind);
    }

    #[tokio::test]
    async fn undecodable_messages_are_returned_and_the_rest_run() {
        let seen = Mutex::new(Vec::new());
        let consumer = Consumer::new(recording(&seen, &[]), None);
        let mut stranger = message("n-2", None);
        stranger["messageAttributes"] = json!({});
        let report =
            consumer.handle(&batch(vec![message("n-1", None), stranger]), &within(TIME)).await;
        assert_eq!(returned(&report), ["m-n-2"]);
        assert!(matches!(&report.outcomes[1].1, Outcome::Failed(e) if e.contains("nylas-id")));
        assert_eq!(*seen.lock().unwrap(), ["n-1"]);
    }

    #[tokio::test]
    async fn a_panicking_handler_fails_its_message_not_the_batch() {
        let consumer = Consumer::new(
            |event: LambdaEvent<Notification>| async move {
                assert_ne!(event.payload.id, "n-2", "a bug in the team's code");
                Ok::<(), String>(())
            },
            None,
        );
        let messages = vec![message("n-1", None), message("n-2", None)];
        let report = consumer.handle(&batch(messages), &within(TIME)).await;
        assert_eq!(returned(&report), ["m-n-2"]);
        assert_eq!(report.outcomes[1].1, Outcome::Failed("the handler panicked".to_owned()));
    }

    #[test]
    fn outcomes_that_return_the_message() {
        assert!(!Outcome::Processed.returns() && !Outcome::Duplicate.returns());
        assert!(Outcome::InProgress.returns() && Outcome::Behind.returns());
        assert!(Outcome::Failed(String::new()).returns());
    }
}
