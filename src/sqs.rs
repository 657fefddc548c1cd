//! The SQS implementation of [`Queue`]: batches of 10 entries and 1 MiB, side by side but in
//! order within a FIFO group, and which refused entries to send again. What a message holds is
//! `message.rs`. A fork that sends elsewhere replaces both. Limits:
//! <https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessageBatch.html>.

use crate::archive::Archive;
use crate::message::{Message, MAX_BYTES};
use crate::queue::{Calls, Delivered, Origin, Queue, QueueError};
use crate::sender::Notification;
use aws_sdk_sqs::error::DisplayErrorContext;
use aws_sdk_sqs::operation::send_message_batch::SendMessageBatchOutput;
use aws_sdk_sqs::types::{MessageAttributeValue, MessageSystemAttributeNameForSends};
use aws_sdk_sqs::types::{MessageSystemAttributeValue, SendMessageBatchRequestEntry};
use aws_sdk_sqs::Client;
use futures_util::{stream, StreamExt, TryStreamExt};
use nylas_sqs_contract::archive::Record;
use nylas_sqs_contract::{attribute, STRING};
use std::collections::HashMap;
use std::future::Future;
use std::ops::Range;
use std::time::Duration;

/// Most entries in one `SendMessageBatch` call; [`MAX_BYTES`] bounds its size too.
pub const MAX_ENTRIES: usize = 10;
/// Most `SendMessageBatch` calls of one request in flight at once: a v2 POST of many deltas
/// answers in time even when each call is slow.
pub const IN_FLIGHT: usize = 8;

/// Groups messages of the given sizes (each within [`MAX_BYTES`]), in order, into batches as
/// full as [`MAX_ENTRIES`] and [`MAX_BYTES`] allow.
pub fn plan(sizes: &[usize]) -> Vec<Range<usize>> {
    let mut batches = Vec::with_capacity(sizes.len().div_ceil(MAX_ENTRIES));
    let (mut start, mut bytes) = (0, 0);
    for (index, &size) in sizes.iter().enumerate() {
        if index - start == MAX_ENTRIES || bytes + size > MAX_BYTES {
            batches.push(start..index);
            (start, bytes) = (index, 0);
        }
        bytes += size;
    }
    if start < sizes.len() {
        batches.push(start..sizes.len());
    }
    batches
}

/// Attempts at a batch's entries, and the wait before the second (doubled for each after).
const ATTEMPTS: u32 = 3;
const BACKOFF: Duration = Duration::from_millis(50);

/// An entry SQS did not store: its position in the batch, whether SQS blames the request
/// (`SenderFault`: sending it again cannot help), and SQS's code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub position: usize,
    pub sender_fault: bool,
    pub code: String,
}

/// Sends `batch` with `send`, then sends again what SQS refused for a passing reason
/// (throttling, an internal error), with backoff. Returns how many entries were sent again.
///
/// SQS enqueues a FIFO batch's entries "in the order they are sent" and reports each one's
/// result "individually" (the link above); it does not say that the entries after a refused
/// one are refused too. So refused entries go again, in order, before the rest of their group
/// ([`send_all`]), but one SQS stored after one it refused in the same call has passed it.
async fn send_with_retries<'m, F, Fut>(
    batch: &[&'m Message<'m>],
    send: &F,
) -> Result<usize, QueueError>
where
    F: Fn(Vec<&'m Message<'m>>) -> Fut,
    Fut: Future<Output = Result<Vec<Refusal>, QueueError>>,
{
    let mut pending = batch.to_vec();
    let (mut retried, mut backoff) = (0, BACKOFF);
    for attempt in 1.. {
        let refused = send(pending.clone()).await?;
        if let Some(fault) = refused.iter().find(|r| r.sender_fault) {
            return Err(QueueError::Refused(fault.code.clone()));
        }
        if refused.is_empty() {
            break;
        }
        if attempt >= ATTEMPTS {
            let (failed, attempts) = (refused.len(), ATTEMPTS);
            return Err(QueueError::StillRefused { failed, attempts });
        }
        pending = refused.iter().filter_map(|r| pending.get(r.position).copied()).collect();
        retried += pending.len();
        tokio::time::sleep(backoff).await;
        backoff *= 2;
    }
    Ok(retried)
}

/// Sends every message in batches of [`plan`], up to [`IN_FLIGHT`] calls side by side; on a
/// FIFO queue, a group's batches one after another, each stored whole before the next
/// ([`lanes`]). Returns how many entries were sent again.
async fn send_all<'m, F, Fut>(messages: &[&'m Message<'m>], send: F) -> Result<usize, QueueError>
where
    F: Fn(Vec<&'m Message<'m>>) -> Fut,
    Fut: Future<Output = Result<Vec<Refusal>, QueueError>>,
{
    let send = &send;
    // Collected, as a lazy map holds a closure the compiler cannot prove `Send`.
    let lanes: Vec<_> = (lanes(messages).into_iter())
        .map(|lane| async move {
            let (sizes, mut retried): (Vec<usize>, _) = (lane.iter().map(|m| m.size).collect(), 0);
            for batch in plan(&sizes) {
                retried += send_with_retries(&lane[batch], send).await?;
            }
            Ok(retried)
        })
        .collect();
    let lanes = stream::iter(lanes).buffer_unordered(IN_FLIGHT);
    lanes.try_fold(0, |sum, retried| async move { Ok(sum + retried) }).await
}

/// What may go side by side: a standard queue's batches; on a FIFO queue, [`IN_FLIGHT`] lanes
/// that each hold some groups whole (the n-th group to appear goes to lane n mod 8), so that a
/// POST of many accounts still fills its batches.
fn lanes<'m>(messages: &[&'m Message<'m>]) -> Vec<Vec<&'m Message<'m>>> {
    let mut groups: HashMap<&str, usize> = HashMap::new();
    let mut lanes: Vec<Vec<&Message<'_>>> = Vec::new();
    for message in messages {
        let Some(fifo) = &message.fifo else {
            let sizes: Vec<usize> = messages.iter().map(|m| m.size).collect();
            return plan(&sizes).into_iter().map(|b| messages[b].to_vec()).collect();
        };
        let seen = groups.len();
        let lane = *groups.entry(fifo.group_id.as_str()).or_insert(seen % IN_FLIGHT);
        if lane == lanes.len() {
            lanes.push(Vec::new());
        }
        lanes[lane].push(message);
    }
    lanes
}

/// An SQS queue, by URL. FIFO when the URL says so: SQS requires FIFO queue names to end
/// in `.fifo`. With an archive, each message the queue takes is archived too.
#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: Client,
    queue_url: String,
    fifo: bool,
    archive: Option<Archive>,
}

impl SqsQueue {
    pub fn new(client: Client, queue_url: String) -> Self {
        Self { client, fifo: queue_url.ends_with(".fifo"), queue_url, archive: None }
    }

    pub fn with_archive(self, archive: Option<Archive>) -> Self {
        Self { archive, ..self }
    }

    /// One `SendMessageBatch` call; an entry's id is its position in the batch.
    async fn send_batch(
        &self,
        batch: Vec<&Message<'_>>,
        trace: Option<&str>,
    ) -> Result<Vec<Refusal>, QueueError> {
        let entries = batch.iter().enumerate().map(|(position, m)| entry(position, m, trace));
        let output = self
            .client
            .send_message_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(entries.collect::<Result<_, _>>()?))
            .send()
            .await
            .map_err(|error| QueueError::Unavailable(DisplayErrorContext(&error).to_string()))?;
        Ok(refusals(batch.len(), &output))
    }
}

/// The entries of a batch of `sent` that SQS did not store, in order: SQS answers 200 even when
/// some failed, and what it did not list as successful is not in the queue.
fn refusals(sent: usize, output: &SendMessageBatchOutput) -> Vec<Refusal> {
    let stored =
        |position: &usize| output.successful().iter().any(|s| s.id() == position.to_string());
    let refusal = |position: usize| {
        let failed = output.failed().iter().find(|f| f.id() == position.to_string());
        let sender_fault = failed.is_some_and(|f| f.sender_fault());
        Refusal {
            position,
            sender_fault,
            code: failed.map_or("NotListed", |f| f.code()).to_owned(),
        }
    };
    (0..sent).filter(|p| !stored(p)).map(refusal).collect()
}

impl Queue for SqsQueue {
    /// Sends every message that fits in SQS, then reports the first that does not.
    async fn deliver(
        &self,
        notifications: &[Notification<'_>],
        origin: &Origin,
        calls: &Calls,
    ) -> Result<Delivered, QueueError> {
        let request_id = origin.request_id.as_deref();
        let messages: Vec<Message<'_>> =
            notifications.iter().map(|n| Message::for_request(n, self.fifo, request_id)).collect();
        let too_large = messages.iter().position(|m| m.size > MAX_BYTES);
        let fitting: Vec<&Message<'_>> = messages.iter().filter(|m| m.size <= MAX_BYTES).collect();
        let trace = origin.trace_header.as_deref();
        let sending = send_all(&fitting, |batch| async move {
            let sent = batch.len();
            let refused = self.send_batch(batch, trace).await;
            // A call that stored nothing failed, whatever SQS blamed.
            calls.record(refused.as_ref().is_ok_and(|refused| refused.len() < sent));
            refused
        });
        // Side by side: the archive adds no wait unless it is slower than the queue.
        let archiving = async {
            match &self.archive {
                Some(archive) => {
                    Some(archive.put(fitting.iter().map(|m| record(m, origin)).collect()).await)
                }
                None => None,
            }
        };
        let (retried, unarchived) = tokio::join!(sending, archiving);
        let (retried, unarchived) = (retried?, unarchived.unwrap_or_default());
        match too_large {
            Some(index) => {
                Err(QueueError::TooLarge { index, size: messages[index].size, limit: MAX_BYTES })
            }
            None => Ok(Delivered { retried, unarchived }),
        }
    }
}

/// What the archive keeps of `message` (by its notification's id): its body and attributes as
/// the queue got them, and when the request was received.
fn record(message: &Message<'_>, origin: &Origin) -> (String, Record) {
    let id = message.attributes.iter().find(|(name, _)| *name == attribute::ID);
    let attributes = message.attributes.iter().map(|(n, v)| ((*n).to_owned(), v.to_string()));
    let record = Record {
        received_ms: origin.received_ms,
        attributes: attributes.collect(),
        body: message.body.to_string(),
    };
    (id.map_or_else(String::new, |(_, id)| id.to_string()), record)
}

fn entry(
    position: usize,
    message: &Message<'_>,
    trace: Option<&str>,
) -> Result<SendMessageBatchRequestEntry, QueueError> {
    let invalid = |error: aws_sdk_sqs::error::BuildError| QueueError::Refused(error.to_string());
    let trace = trace.map(|trace| {
        let value = MessageSystemAttributeValue::builder().data_type(STRING);
        value.string_value(trace).build()
    });
    let mut entry = SendMessageBatchRequestEntry::builder()
        .id(position.to_string())
        .message_body(message.body.as_ref())
        .set_message_group_id(message.fifo.as_ref().map(|f| f.group_id.clone()))
        .set_message_deduplication_id(message.fifo.as_ref().map(|f| f.deduplication_id.clone()));
    for (name, value) in &message.attributes {
        let value = MessageAttributeValue::builder()
            .data_type(STRING)
            .string_value(value.as_ref())
            .build()
            .map_err(invalid)?;
        entry = entry.message_attributes(*name, value);
    }
    if let Some(trace) = trace {
        let name = MessageSystemAttributeNameForSends::from(attribute::TRACE_HEADER);
        entry = entry.message_system_attributes(name, trace.map_err(invalid)?);
    }
    entry.build().map_err(invalid)
}

#[cfg(test)]
#[allow(clippy::single_range_in_vec_init)] // a plan of one batch is a Vec of one range
mod tests {
    use super::*;
    use crate::nylas::split;
    use aws_sdk_sqs::types::{BatchResultErrorEntry, SendMessageBatchResultEntry};
    use std::cell::RefCell;
    use std::collections::VecDeque;

    #[test]
    fn no_messages_plan_no_batch() {
        assert_eq!(plan(&[]), Vec::<Range<usize>>::new());
    }

    #[test]
    fn ten_small_messages_fit_one_batch_and_an_eleventh_starts_another() {
        assert_eq!(plan(&[100; 10]), vec![0..10]);
        assert_eq!(plan(&[100; 11]), vec![0..10, 10..11]);
        assert_eq!(plan(&[1; 25]), vec![0..10, 10..20, 20..25]);
    }

    #[test]
    fn batch_of_exactly_one_mebibyte_is_kept_whole() {
        assert_eq!(plan(&[524_288, 524_288]), vec![0..2]);
    }

    #[test]
    fn one_byte_over_a_mebibyte_splits_the_batch() {
        assert_eq!(plan(&[524_288, 524_289, 1]), vec![0..1, 1..3]);
    }

    #[test]
    fn message_of_exactly_one_mebibyte_is_sent_alone() {
        assert_eq!(plan(&[1, 1_048_576, 1]), vec![0..1, 1..2, 2..3]);
    }

    /// A scripted `SendMessageBatch`: each call takes the next answer and records its size.
    struct Script {
        answers: RefCell<VecDeque<Result<Vec<Refusal>, QueueError>>>,
        calls: RefCell<Vec<usize>>,
    }

    impl Script {
        fn new(answers: impl IntoIterator<Item = Result<Vec<Refusal>, QueueError>>) -> Self {
            Self {
                answers: RefCell::new(answers.into_iter().collect()),
                calls: RefCell::new(vec![]),
            }
        }

        /// Sends the notifications of `body` as one batch.
        async fn run(&self, body: &[u8]) -> Result<usize, QueueError> {
            let notifications = split(body);
            let messages: Vec<Message<'_>> =
                notifications.iter().map(|n| Message::new(n, false)).collect();
            let batch: Vec<&Message<'_>> = messages.iter().collect();
            send_with_retries(&batch, &|sent: Vec<&Message<'_>>| {
                self.calls.borrow_mut().push(sent.len());
                let answer = self.answers.borrow_mut().pop_front();
                std::future::ready(answer.unwrap_or(Ok(vec![])))
            })
            .await
        }
    }

    fn refused(position: usize, sender_fault: bool) -> Refusal {
        let code = if sender_fault { "InvalidParameterValue" } else { "InternalError" };
        Refusal { position, sender_fault, code: code.to_owned() }
    }

    const FOUR: &[u8] = br#"{"deltas":[1,2,3,4]}"#;

    #[tokio::test]
    async fn entries_refused_for_a_passing_reason_are_sent_again() {
        let script = Script::new([Ok(vec![refused(1, false), refused(3, false)])]);
        assert_eq!(script.run(FOUR).await, Ok(2));
        assert_eq!(*script.calls.borrow(), [4, 2]);
    }

    #[tokio::test(start_paused = true)]
    async fn entries_refused_every_time_fail_after_the_last_attempt_and_a_growing_wait() {
        let again = || Ok(vec![refused(0, false)]);
        let script = Script::new([again(), again(), again()]);
        let failed = QueueError::StillRefused { failed: 1, attempts: 3 };
        let started = tokio::time::Instant::now();
        assert_eq!(script.run(FOUR).await, Err(failed));
        assert_eq!(*script.calls.borrow(), [4, 1, 1]);
        // 50 ms before the second attempt, 100 ms before the third.
        assert_eq!(started.elapsed(), Duration::from_millis(150));
    }

    #[tokio::test]
    async fn an_entry_refused_as_the_senders_fault_is_not_sent_again() {
        let script = Script::new([Ok(vec![refused(2, true)])]);
        let refused = QueueError::Refused("InvalidParameterValue".to_owned());
        assert_eq!(script.run(FOUR).await, Err(refused));
        assert_eq!(*script.calls.borrow(), [4]);
    }

    #[tokio::test]
    async fn a_failed_call_fails_the_batch() {
        let down = QueueError::Unavailable("ServiceUnavailable".to_owned());
        let script = Script::new([Err(down.clone())]);
        assert_eq!(script.run(FOUR).await, Err(down));
        assert_eq!(*script.calls.borrow(), [4]);
    }

    /// SQS's reply when it stored every one of `entries`.
    fn all_stored(entries: &[SendMessageBatchRequestEntry]) -> SendMessageBatchOutput {
        let stored = entries.iter().map(|e| stored_entry(e.id()));
        let output = SendMessageBatchOutput::builder()
            .set_successful(Some(stored.collect()))
            .set_failed(Some(vec![]));
        output.build().expect("every required field")
    }

    fn stored_entry(id: &str) -> SendMessageBatchResultEntry {
        let entry = SendMessageBatchResultEntry::builder()
            .id(id)
            .message_id(format!("m-{id}"))
            .md5_of_message_body("md5");
        entry.build().expect("every required field")
    }

    #[test]
    fn entries_not_listed_as_stored_are_refused_whatever_else_the_reply_says() {
        let failed = BatchResultErrorEntry::builder()
            .id("1")
            .sender_fault(true)
            .code("InvalidParameterValue")
            .build()
            .expect("every required field");
        let output = SendMessageBatchOutput::builder()
            .successful(stored_entry("0"))
            .successful(stored_entry("2"))
            .failed(failed)
            .build()
            .expect("every required field");
        let refused = |position, sender_fault, code: &str| Refusal {
            position,
            sender_fault,
            code: code.to_owned(),
        };
        assert_eq!(
            refusals(4, &output),
            [refused(1, true, "InvalidParameterValue"), refused(3, false, "NotListed")]
        );
    }

    /// A v2 body of `count` deltas whose accounts take turns among `accounts`.
    fn deltas(count: usize, accounts: usize) -> String {
        let deltas: Vec<String> = (0..count)
            .map(|i| format!(r#"{{"n":{i},"object_data":{{"account_id":"a-{}"}}}}"#, i % accounts))
            .collect();
        format!(r#"{{"deltas":[{}]}}"#, deltas.join(","))
    }

    /// What a slow SQS stored, in the order it stored it, and the most calls it had at once.
    #[derive(Default)]
    struct Recorded {
        stored: RefCell<Vec<String>>,
        in_flight: RefCell<(usize, usize)>,
    }

    /// Sends `body`'s notifications through `send_all` to an SQS whose every call takes a few
    /// milliseconds (paused time) and which refuses, for a passing reason, the second half of
    /// every third full batch, as SQS would after enqueuing a batch's entries in order.
    async fn through_slow_sqs(body: &str, fifo: bool) -> (Vec<String>, usize, usize) {
        let notifications = split(body.as_bytes());
        let messages: Vec<Message<'_>> =
            notifications.iter().map(|n| Message::new(n, fifo)).collect();
        let messages: Vec<&Message<'_>> = messages.iter().collect();
        let recorded = Recorded::default();
        let calls = RefCell::new(0u64);
        let sent = send_all(&messages, |batch| {
            let (recorded, call) = (&recorded, calls.replace_with(|c| *c + 1));
            async move {
                {
                    let mut in_flight = recorded.in_flight.borrow_mut();
                    in_flight.0 += 1;
                    in_flight.1 = in_flight.1.max(in_flight.0);
                }
                tokio::time::sleep(Duration::from_millis(1 + call * 7 % 13)).await;
                recorded.in_flight.borrow_mut().0 -= 1;
                let kept = if call % 3 == 2 && batch.len() == MAX_ENTRIES {
                    batch.len() / 2
                } else {
                    batch.len()
                };
                let ids = batch[..kept]
                    .iter()
                    .map(|m| m.fifo.as_ref().map_or("", |f| &f.deduplication_id));
                recorded.stored.borrow_mut().extend(ids.map(str::to_owned));
                Ok((kept..batch.len()).map(|p| refused(p, false)).collect())
            }
        });
        let retried = sent.await.expect("all stored");
        let most = recorded.in_flight.borrow().1;
        (recorded.stored.into_inner(), most, retried)
    }

    fn ids_of(body: &str) -> Vec<String> {
        split(body.as_bytes()).iter().map(|n| n.id.clone()).collect()
    }

    /// `ids` of the notifications of `body` whose group is `group`, in `ids`' order.
    fn of_group(body: &str, group: &str, ids: &[String]) -> Vec<String> {
        let notifications = split(body.as_bytes());
        let in_group: Vec<&str> = notifications
            .iter()
            .filter(|n| n.group.as_deref() == Some(group))
            .map(|n| n.id.as_str())
            .collect();
        ids.iter().filter(|id| in_group.contains(&id.as_str())).cloned().collect()
    }

    #[tokio::test(start_paused = true)]
    async fn fifo_group_reaches_the_queue_in_order_through_a_slow_and_refusing_sqs() {
        let body = deltas(200, 1);
        let (stored, most_at_once, retried) = through_slow_sqs(&body, true).await;
        let sent = ids_of(&body);
        assert_eq!(stored, sent);
        assert_eq!(most_at_once, 1, "one group's batches go one after another");
        // Calls 2, 5, 8, ... are the 3rd, 5th, 7th ... 19th batches: 9 refused halves of 5.
        assert_eq!(retried, 45);
    }

    #[tokio::test(start_paused = true)]
    async fn fifo_groups_interleaved_each_keep_their_order_and_go_side_by_side() {
        let body = deltas(210, 3);
        let (stored, most_at_once, _) = through_slow_sqs(&body, true).await;
        let sent = ids_of(&body);
        assert_eq!(stored.len(), 210);
        for group in ["a-0", "a-1", "a-2"] {
            assert_eq!(of_group(&body, group, &stored), of_group(&body, group, &sent), "{group}");
        }
        assert_eq!(most_at_once, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn fifo_post_of_many_accounts_fills_its_batches_side_by_side() {
        let body = deltas(80, 80);
        let (stored, most_at_once, _) = through_slow_sqs(&body, true).await;
        assert_eq!(stored.len(), 80);
        assert_eq!(most_at_once, IN_FLIGHT, "8 lanes of 10 accounts: 8 calls at once");
    }

    #[tokio::test(start_paused = true)]
    async fn standard_queue_batches_go_side_by_side() {
        let (_, most_at_once, _) = through_slow_sqs(&deltas(200, 1), false).await;
        assert_eq!(most_at_once, IN_FLIGHT);
    }

    /// An SqsQueue whose `SendMessageBatch` calls `rule` answers.
    fn mocked(rule: &aws_smithy_mocks::Rule, url: &str) -> SqsQueue {
        let interceptor = aws_smithy_mocks::MockResponseInterceptor::new().with_rule(rule);
        let config = aws_sdk_sqs::Config::builder()
            .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
            .region(aws_sdk_sqs::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_sqs::config::Credentials::for_tests())
            .http_client(aws_smithy_mocks::create_mock_http_client())
            .interceptor(interceptor)
            .retry_config(aws_sdk_sqs::config::retry::RetryConfig::disabled())
            .build();
        SqsQueue::new(Client::from_conf(config), url.to_owned())
    }

    #[tokio::test]
    async fn fifo_queue_entries_carry_the_group_and_the_nylas_id_as_deduplication_id() {
        let entries = std::sync::Arc::new(std::sync::Mutex::new(vec![]));
        let seen = entries.clone();
        let rule =
            aws_smithy_mocks::mock!(Client::send_message_batch).then_compute_output(move |input| {
                let sent = input.entries();
                let mut seen = seen.lock().expect("no panics");
                seen.push(input.queue_url().unwrap_or_default().to_owned());
                seen.extend(sent.iter().map(|e| {
                    let attribute = e
                        .message_attributes()
                        .and_then(|a| a.get(nylas_sqs_contract::attribute::ID));
                    format!(
                        "{} {} {} {}",
                        e.id(),
                        e.message_group_id().unwrap_or("-"),
                        e.message_deduplication_id().unwrap_or("-"),
                        attribute.and_then(|a| a.string_value()).unwrap_or("-"),
                    )
                }));
                all_stored(sent)
            });
        let body = r#"{"specversion":"1.0","id":"n-1","data":{"object":{"grant_id":"g-1"}}}"#;
        let fifo = "https://sqs.us-east-1.amazonaws.com/1/q.fifo";
        let standard = "https://sqs.us-east-1.amazonaws.com/1/q";
        for url in [fifo, standard] {
            let calls = Calls::default();
            let (queue, notifications) = (mocked(&rule, url), split(body.as_bytes()));
            let delivered = queue.deliver(&notifications, &Origin::default(), &calls).await;
            assert_eq!(delivered, Ok(Delivered::default()));
            assert_eq!(calls.healthy(), Some(true));
        }
        let expected = [fifo, "0 g-1 n-1 n-1", standard, "0 - - n-1"];
        assert_eq!(*entries.lock().expect("no panics"), expected);
    }

    #[tokio::test]
    async fn every_entry_carries_the_request_id_and_the_trace_header_for_x_ray() {
        let seen = std::sync::Arc::new(std::sync::Mutex::new(vec![]));
        let entries = seen.clone();
        let rule =
            aws_smithy_mocks::mock!(Client::send_message_batch).then_compute_output(move |input| {
                for entry in input.entries() {
                    let request =
                        entry.message_attributes().and_then(|a| a.get(attribute::REQUEST_ID));
                    let system = entry.message_system_attributes();
                    let name = MessageSystemAttributeNameForSends::from(attribute::TRACE_HEADER);
                    let trace = system.and_then(|s| s.get(&name));
                    let text = (
                        request.and_then(|r| r.string_value()),
                        trace.and_then(|t| t.string_value()),
                    );
                    entries.lock().expect("no panics").push(format!("{text:?}"));
                }
                all_stored(input.entries())
            });
        let origin = Origin {
            request_id: Some("req-1".into()),
            trace_header: Some("Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1".into()),
            received_ms: 0,
        };
        let queue = mocked(&rule, "https://sqs.us-east-1.amazonaws.com/1/q");
        let body = br#"{"deltas":[{"a":1},{"b":2}]}"#;
        let delivered = queue.deliver(&split(body), &origin, &Calls::default()).await;
        assert_eq!(delivered, Ok(Delivered::default()));
        let expected =
            r#"(Some("req-1"), Some("Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1"))"#;
        assert_eq!(*seen.lock().expect("no panics"), [expected, expected]);
        let delivered = queue.deliver(&split(body), &Origin::default(), &Calls::default()).await;
        assert_eq!(delivered, Ok(Delivered::default()));
        assert_eq!(seen.lock().expect("no panics")[2], "(None, None)");
    }

    #[tokio::test]
    async fn a_notification_too_large_even_compressed_is_reported_after_the_others_are_sent() {
        let sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = sent.clone();
        let rule =
            aws_smithy_mocks::mock!(Client::send_message_batch).then_compute_output(move |input| {
                let entries = input.entries();
                counted.fetch_add(entries.len(), std::sync::atomic::Ordering::SeqCst);
                all_stored(entries)
            });
        // 1.5 MB of printable noise: gzip leaves it over 1 MiB once base64-encoded.
        let mut state = 7u64;
        let noise: String = (0..1_500_000)
            .map(|_| {
                state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                char::from(b'!' + ((state >> 33) % 90) as u8)
            })
            .collect();
        let noise = noise.replace(['"', '\\'], "x");
        let body = format!(r#"{{"deltas":[{{"a":1}},{{"x":"{noise}"}},{{"b":2}}]}}"#);
        let queue = mocked(&rule, "https://sqs.us-east-1.amazonaws.com/1/q");
        let delivered =
            queue.deliver(&split(body.as_bytes()), &Origin::default(), &Calls::default()).await;
        let Err(QueueError::TooLarge { index, size, limit }) = delivered else {
            panic!("not too large: {delivered:?}");
        };
        assert_eq!((index, limit), (1, MAX_BYTES));
        assert!(size > MAX_BYTES, "{size}");
        assert_eq!(sent.load(std::sync::atomic::Ordering::SeqCst), 2, "the others are sent");
    }

    #[tokio::test]
    async fn a_message_of_exactly_one_mebibyte_is_sent() {
        let rule = aws_smithy_mocks::mock!(Client::send_message_batch)
            .then_compute_output(|input| all_stored(input.entries()));
        // nylas-api-version, String, unknown: 30 bytes; nylas-id, String, SHA-256: 78;
        // nylas-id-rule, String, sha256: 25.
        let body = "x".repeat(MAX_BYTES - 30 - 78 - 25);
        let notifications = split(body.as_bytes());
        assert_eq!(Message::new(&notifications[0], false).size, MAX_BYTES);
        let queue = mocked(&rule, "https://sqs.us-east-1.amazonaws.com/1/q");
        assert_eq!(
            queue.deliver(&notifications, &Origin::default(), &Calls::default()).await,
            Ok(Delivered::default())
        );
    }

    #[tokio::test]
    async fn an_sqs_error_fails_the_delivery_and_says_which() {
        let rule = aws_smithy_mocks::mock!(Client::send_message_batch).then_error(|| {
            aws_sdk_sqs::operation::send_message_batch::SendMessageBatchError::QueueDoesNotExist(
                aws_sdk_sqs::types::error::QueueDoesNotExist::builder()
                    .message("no such queue")
                    .build(),
            )
        });
        let queue = mocked(&rule, "https://sqs.us-east-1.amazonaws.com/1/q");
        let calls = Calls::default();
        let delivered = queue.deliver(&split(b"{}"), &Origin::default(), &calls).await;
        let Err(QueueError::Unavailable(why)) = delivered else {
            panic!("not unavailable: {delivered:?}");
        };
        assert!(why.contains("no such queue"), "{why}");
        assert_eq!(calls.healthy(), Some(false), "the breaker opens on it");
    }

    #[tokio::test]
    async fn a_call_that_stored_nothing_failed_and_one_that_stored_some_succeeded() {
        for (refused, healthy) in [(2, false), (1, true)] {
            let rule = aws_smithy_mocks::mock!(Client::send_message_batch).then_compute_output(
                move |input| {
                    let entries = input.entries();
                    let (failed, stored) = entries.split_at(refused);
                    let failure = |entry: &SendMessageBatchRequestEntry| {
                        let failure = BatchResultErrorEntry::builder().id(entry.id());
                        let failure = failure.code("KMS.DisabledException").sender_fault(true);
                        failure.build().expect("complete")
                    };
                    SendMessageBatchOutput::builder()
                        .set_successful(Some(stored.iter().map(|e| stored_entry(e.id())).collect()))
                        .set_failed(Some(failed.iter().map(failure).collect()))
                        .build()
                        .expect("complete")
                },
            );
            let queue = mocked(&rule, "https://sqs.us-east-1.amazonaws.com/1/q");
            let calls = Calls::default();
            let body = r#"{"deltas": [{"a": 1}, {"b": 2}]}"#;
            let delivered =
                queue.deliver(&split(body.as_bytes()), &Origin::default(), &calls).await;
            assert!(matches!(delivered, Err(QueueError::Refused(_))), "{delivered:?}");
            assert_eq!(calls.healthy(), Some(healthy), "{refused} of 2 refused");
        }
    }
}
