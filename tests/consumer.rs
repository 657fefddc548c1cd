//! The consumer (`consumer/`) against a real SQS-compatible server and DynamoDB (moto), with
//! Lambda's SQS event source played by [`EventSource`]: receive a batch, hand it to the
//! consumer, delete what it processed, make what it returned visible again.
//!
//! Run as the integration tests are (`make test`; `CI=true` fails when a tool is missing). The
//! end-to-end test also runs the receiver under the Lambda emulator.

// Shared with tests/integration.rs; these tests use part of it.
#[allow(dead_code)]
mod support;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use aws_sdk_sqs::types::{MessageAttributeValue, MessageSystemAttributeName, QueueAttributeName};
use nylas_sqs_contract::attribute;
use nylas_webhook_consumer::{
    Consumer, Context, DeadLetter, Idempotency, LambdaEvent, Notification, Outcome, Report,
    SqsEvent,
};
use nylas_webhook_sqs::core::split;
use nylas_webhook_sqs::{
    sign, Archive, Calls, IdRule, Notification as Received, Origin, Queue, Receiver, Secrets,
    Sender, SqsQueue, SENDER,
};
use serde_json::json;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use support::proxy::{Fault, FaultyProxy};
use support::{LocalSqs, Stack, SAMPLE_SECRET};

const TESTS: &[(&str, support::Test)] = tests![
    a_notification_delivered_again_after_it_completed_is_handled_once,
    a_notification_delivered_again_25_minutes_later_is_handled_once,
    two_deliveries_at_the_same_time_run_the_handler_once,
    two_copies_in_one_batch_run_the_handler_once,
    one_failure_in_ten_returns_only_it_and_the_redelivery_runs_only_it,
    a_killed_attempt_is_processed_after_its_in_progress_record_expires,
    fifo_failure_returns_its_groups_later_messages_and_none_of_another_group,
    receiver_output_reaches_the_handler_as_the_exact_bytes_nylas_sent,
    bad_messages_are_logged_failures_that_reach_the_dead_letter_queue,
    without_idempotency_each_delivery_runs_the_handler,
    a_fifo_poison_message_goes_to_the_dead_letter_queue_alone_on_its_last_receive,
    two_member_gzip_over_one_mebibyte_reaches_the_handler_exactly,
    identical_deltas_of_one_post_each_reach_the_handler_once,
    a_fork_for_another_sender_passes_from_the_webhook_to_the_handler,
    an_archived_notification_comes_back_byte_exact_through_a_replay_once_per_replay,
    a_replay_of_a_range_sends_exactly_the_notifications_received_in_it,
    a_replayed_fifo_message_keeps_its_group_and_is_not_swallowed_by_the_original,
    the_function_archives_what_it_stores_and_a_failing_archive_still_answers_200,
];

/// The invocation's time left, as Lambda's context gives it: the in-progress records' life.
const REMAINING: Duration = Duration::from_secs(60);
/// The invocation's request id, which every handler gets with its notification.
const REQUEST_ID: &str = "req-8f1c";
/// What the crash test's child process is told to do.
const CHILD: &str = "CONSUMER_TEST_CHILD";

fn main() -> ExitCode {
    if let Ok(event) = std::env::var(CHILD) {
        crashing_child(&event);
    }
    support::run("consumer", TESTS)
}

/// The invocation's context, as Lambda gives it: its request id, and a deadline [`REMAINING`]
/// away.
fn context() -> Context {
    let deadline = SystemTime::now() + REMAINING;
    let mut context = Context::default();
    context.request_id = REQUEST_ID.to_owned();
    context.deadline = deadline.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
    context
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime")
}

/// A DynamoDB table of its own for one test, shaped as `template.yaml` makes it, and the
/// proxy its records go through (`Fault::OneAtATime`: moto applies conditional writes that
/// arrive together without DynamoDB's atomicity).
fn table(sqs: &LocalSqs) -> (Idempotency, FaultyProxy) {
    static TABLES: AtomicUsize = AtomicUsize::new(0);
    let name = format!("idempotency-{}", TABLES.fetch_add(1, Ordering::Relaxed));
    let client = aws_sdk_dynamodb::Client::new(&sqs.config);
    let create = client
        .create_table()
        .table_name(&name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("a definition"),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("id")
                .key_type(KeyType::Hash)
                .build()
                .expect("a key"),
        );
    runtime().block_on(create.send()).expect("moto creates tables");
    let proxy = FaultyProxy::start(&sqs.endpoint, Fault::OneAtATime);
    let config = support::sdk_config(&proxy.endpoint);
    let store = Idempotency::new(aws_sdk_dynamodb::Client::new(&config), name);
    (store, proxy)
}

/// Lambda's SQS event source, played against one queue.
struct EventSource {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

impl EventSource {
    fn new(sqs: &LocalSqs, queue_url: String) -> Self {
        let client = aws_sdk_sqs::Client::new(&sqs.config);
        Self { client, queue_url }
    }

    /// Sends `body` as the receiver does: its notifications, one message each, through the
    /// receiver's own `SqsQueue`.
    async fn send_as_receiver(&self, body: &[u8]) {
        let queue = SqsQueue::new(self.client.clone(), self.queue_url.clone());
        let delivered = queue.deliver(&split(body), &Origin::default(), &Calls::default()).await;
        delivered.expect("moto stores the notifications");
    }

    /// Sends a message that did not come from the receiver.
    async fn send_raw(&self, body: &str, attributes: &[(&str, &str)]) {
        let mut send = self.client.send_message().queue_url(&self.queue_url).message_body(body);
        for (name, value) in attributes {
            let value = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(*value)
                .build()
                .expect("an attribute");
            send = send.message_attributes(*name, value);
        }
        send.send().await.expect("moto stores the message");
    }

    /// Receives a batch of up to 10 messages, as Lambda hands it to the function.
    async fn poll(&self) -> SqsEvent {
        let received = self
            .client
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .visibility_timeout(30)
            .send()
            .await
            .expect("moto answers ReceiveMessage");
        let records = received.messages().iter().map(|m| {
            let attributes: serde_json::Map<_, _> = m
                .attributes()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.as_str().to_owned(), json!(v)))
                .collect();
            let message_attributes: serde_json::Map<_, _> = m
                .message_attributes()
                .into_iter()
                .flatten()
                .map(|(k, v)| {
                    (k.clone(), json!({"stringValue": v.string_value(), "dataType": v.data_type()}))
                })
                .collect();
            json!({
                "messageId": m.message_id(),
                "receiptHandle": m.receipt_handle(),
                "body": m.body(),
                "attributes": attributes,
                "messageAttributes": message_attributes,
                "eventSource": "aws:sqs",
            })
        });
        let event = json!({ "Records": records.collect::<Vec<_>>() });
        serde_json::from_value(event).expect("an SQS event")
    }

    /// What Lambda does with the function's answer: deletes what it processed, and makes what
    /// it returned visible again at once (a real queue waits out the visibility timeout).
    async fn settle(&self, batch: &SqsEvent, report: &Report) {
        for (message, (_, outcome)) in batch.records.iter().zip(&report.outcomes) {
            let handle = message.receipt_handle.clone().unwrap_or_default();
            if outcome.returns() {
                let visible = self
                    .client
                    .change_message_visibility()
                    .queue_url(&self.queue_url)
                    .receipt_handle(handle)
                    .visibility_timeout(0);
                visible.send().await.expect("moto changes visibility");
            } else {
                let delete = self.client.delete_message().queue_url(&self.queue_url);
                delete.receipt_handle(handle).send().await.expect("moto deletes");
            }
        }
    }

    /// Polls, handles and settles until the queue holds nothing visible; every report.
    async fn drain<H, F>(&self, consumer: &Consumer<H>) -> Vec<Report>
    where
        H: Fn(LambdaEvent<Notification>) -> F,
        F: std::future::Future<Output = Result<(), String>>,
    {
        let mut reports = Vec::new();
        for _ in 0..20 {
            let batch = self.poll().await;
            if batch.records.is_empty() {
                return reports;
            }
            let report = consumer.handle(&batch, &context()).await;
            self.settle(&batch, &report).await;
            reports.push(report);
        }
        panic!("the queue did not drain in 20 batches");
    }
}

/// A handler that records each notification it runs, and fails those `failing` says.
#[derive(Clone, Default)]
struct Recorder {
    seen: Arc<Mutex<Vec<Notification>>>,
    failing: Arc<Mutex<Vec<String>>>,
}

impl Recorder {
    fn handler(
        &self,
    ) -> impl Fn(LambdaEvent<Notification>) -> std::future::Ready<Result<(), String>> {
        let recorder = self.clone();
        move |event: LambdaEvent<Notification>| {
            assert_eq!(event.context.request_id, REQUEST_ID, "the invocation's context");
            let n = event.payload;
            let failed = recorder.failing.lock().unwrap().contains(&n.id);
            recorder.seen.lock().unwrap().push(n);
            std::future::ready(if failed { Err("refused".to_owned()) } else { Ok(()) })
        }
    }

    fn ids(&self) -> Vec<String> {
        self.seen.lock().unwrap().iter().map(|n| n.id.clone()).collect()
    }

    fn fail(&self, ids: &[&str]) {
        *self.failing.lock().unwrap() = ids.iter().map(|s| s.to_string()).collect();
    }
}

fn v3(id: &str, grant: &str, attempt: u32) -> Vec<u8> {
    json!({"specversion": "1.0", "type": "message.created", "source": "/google/emails/realtime",
        "id": id, "time": 1_700_000_000, "webhook_delivery_attempt": attempt,
        "data": {"application_id": "app", "object": {"id": "m", "grant_id": grant}}})
    .to_string()
    .into_bytes()
}

fn count(reports: &[Report], like: fn(&Outcome) -> bool) -> usize {
    reports.iter().map(|r| r.count(like)).sum()
}

/// A clock a test moves on.
fn movable_clock() -> (Arc<AtomicU64>, impl Fn() -> SystemTime + Send + Sync + 'static) {
    let offset = Arc::new(AtomicU64::new(0));
    let read = Arc::clone(&offset);
    let clock = move || SystemTime::now() + Duration::from_secs(read.load(Ordering::Relaxed));
    (offset, clock)
}

fn delivered_twice_is_handled_once(sqs: &LocalSqs, later: Duration) {
    let source = EventSource::new(sqs, sqs.create_queue());
    let recorder = Recorder::default();
    let (offset, clock) = movable_clock();
    let (store, _one_at_a_time) = table(sqs);
    let consumer = Consumer::new(recorder.handler(), Some(store)).with_clock(clock);
    runtime().block_on(async {
        // Nylas's retry of the same notification: the same id, another attempt number.
        source.send_as_receiver(&v3("n-1", "g-1", 1)).await;
        let first = source.drain(&consumer).await;
        offset.store(later.as_secs(), Ordering::Relaxed);
        source.send_as_receiver(&v3("n-1", "g-1", 2)).await;
        let second = source.drain(&consumer).await;
        assert_eq!(recorder.ids(), ["n-1"]);
        assert_eq!(count(&first, |o| *o == Outcome::Processed), 1);
        assert_eq!(count(&second, |o| *o == Outcome::Duplicate), 1);
        assert_eq!(count(&second, Outcome::returns), 0, "acknowledged, not returned");
    });
}

fn a_notification_delivered_again_after_it_completed_is_handled_once(sqs: &LocalSqs) {
    delivered_twice_is_handled_once(sqs, Duration::ZERO);
}

fn a_notification_delivered_again_25_minutes_later_is_handled_once(sqs: &LocalSqs) {
    // Past FIFO's 5-minute deduplication and Nylas's 10-to-20-minute retry window.
    delivered_twice_is_handled_once(sqs, Duration::from_secs(25 * 60));
}

fn two_deliveries_at_the_same_time_run_the_handler_once(sqs: &LocalSqs) {
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&runs);
    let handler = move |_: LambdaEvent<Notification>| {
        counted.fetch_add(1, Ordering::SeqCst);
        async {
            tokio::time::sleep(Duration::from_millis(500)).await;
            Ok::<(), String>(())
        }
    };
    let (store, _one_at_a_time) = table(sqs);
    let consumer = Consumer::new(handler, Some(store));
    let source = EventSource::new(sqs, sqs.create_queue());
    runtime().block_on(async {
        source.send_as_receiver(&v3("n-1", "g-1", 1)).await;
        source.send_as_receiver(&v3("n-1", "g-1", 2)).await;
        let mut records = source.poll().await.records;
        records.extend(source.poll().await.records);
        assert_eq!(records.len(), 2);
        // Two instances at once, a batch of one delivery each, side by side.
        let both: Vec<SqsEvent> = records
            .into_iter()
            .map(|record| serde_json::from_value(json!({ "Records": [record] })).expect("an event"))
            .collect();
        let context = context();
        let reports =
            futures_util::future::join_all(both.iter().map(|b| consumer.handle(b, &context))).await;
        assert_eq!(runs.load(Ordering::SeqCst), 1, "the handler ran once");
        assert_eq!(count(&reports, |o| *o == Outcome::Processed), 1);
        assert_eq!(count(&reports, |o| *o == Outcome::InProgress), 1, "{reports:?}");
        for (batch, report) in both.iter().zip(&reports) {
            source.settle(batch, report).await;
        }
        // The one returned comes back, finds the notification completed, and is dropped.
        let again = source.drain(&consumer).await;
        assert_eq!(count(&again, |o| *o == Outcome::Duplicate), 1);
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    });
}

fn two_copies_in_one_batch_run_the_handler_once(sqs: &LocalSqs) {
    let source = EventSource::new(sqs, sqs.create_queue());
    let recorder = Recorder::default();
    let (store, _one_at_a_time) = table(sqs);
    let consumer = Consumer::new(recorder.handler(), Some(store));
    runtime().block_on(async {
        source.send_as_receiver(&v3("n-1", "g-1", 1)).await;
        source.send_as_receiver(&v3("n-1", "g-1", 2)).await;
        let mut records = source.poll().await.records;
        records.extend(source.poll().await.records);
        let batch: SqsEvent =
            serde_json::from_value(json!({ "Records": records })).expect("an event");
        let report = consumer.handle(&batch, &context()).await;
        let outcomes: Vec<_> = report.outcomes.iter().map(|(_, o)| o.clone()).collect();
        assert_eq!(outcomes, [Outcome::Processed, Outcome::Duplicate]);
        assert!(report.response().batch_item_failures.is_empty(), "both acknowledged");
    });
    assert_eq!(recorder.ids(), ["n-1"]);
}

fn one_failure_in_ten_returns_only_it_and_the_redelivery_runs_only_it(sqs: &LocalSqs) {
    let source = EventSource::new(sqs, sqs.create_queue());
    let recorder = Recorder::default();
    recorder.fail(&["n-6"]);
    let (store, _one_at_a_time) = table(sqs);
    let consumer = Consumer::new(recorder.handler(), Some(store));
    runtime().block_on(async {
        for i in 0..10 {
            source.send_as_receiver(&v3(&format!("n-{i}"), "g-1", 1)).await;
        }
        let batch = source.poll().await;
        assert_eq!(batch.records.len(), 10, "one batch of ten");
        let report = consumer.handle(&batch, &context()).await;
        let returned = report.response().batch_item_failures;
        assert_eq!(returned.len(), 1);
        let failed = batch
            .records
            .iter()
            .position(|m| Some(returned[0].item_identifier.as_str()) == m.message_id.as_deref());
        let failed = &batch.records[failed.expect("a message of the batch")];
        let id = &failed.message_attributes["nylas-id"].string_value;
        assert_eq!(id.as_deref(), Some("n-6"));
        // Every message delivered again (SQS delivers at least once): only n-6 runs, now
        // succeeding; the nine are acknowledged as duplicates.
        recorder.fail(&[]);
        let again = consumer.handle(&batch, &context()).await;
        assert_eq!(again.count(|o| *o == Outcome::Duplicate), 9);
        assert_eq!(again.count(|o| *o == Outcome::Processed), 1);
        assert_eq!(recorder.ids().len(), 11);
        assert_eq!(recorder.ids().iter().filter(|id| *id == "n-6").count(), 2);
    });
}

/// The crash test's child: handles the batch in `event` with a handler that says it started
/// and then never returns, until the parent kills the process.
fn crashing_child(event: &str) -> ! {
    let endpoint = std::env::var("CONSUMER_TEST_ENDPOINT").expect("the endpoint");
    let table = std::env::var("CONSUMER_TEST_TABLE").expect("the table");
    let client = aws_sdk_dynamodb::Client::new(&support::sdk_config(&endpoint));
    let handler = |_: LambdaEvent<Notification>| async {
        let mut out = std::io::stdout().lock();
        writeln!(out, "handler started").and_then(|()| out.flush()).expect("stdout");
        drop(out);
        std::future::pending::<Result<(), String>>().await
    };
    let consumer = Consumer::new(handler, Some(Idempotency::new(client, table)));
    let batch: SqsEvent = serde_json::from_str(event).expect("an SQS event");
    runtime().block_on(consumer.handle(&batch, &context()));
    unreachable!("the handler never returns");
}

fn a_killed_attempt_is_processed_after_its_in_progress_record_expires(sqs: &LocalSqs) {
    let source = EventSource::new(sqs, sqs.create_queue());
    let (store, _one_at_a_time) = table(sqs);
    let table_name = store.table().to_owned();
    runtime().block_on(async {
        source.send_as_receiver(&v3("n-1", "g-1", 1)).await;
        let batch = source.poll().await;
        let event = serde_json::to_string(&batch).expect("an event");
        let mut child = Command::new(std::env::current_exe().expect("this test binary"))
            .env(CHILD, event)
            .env("CONSUMER_TEST_ENDPOINT", &sqs.endpoint)
            .env("CONSUMER_TEST_TABLE", table_name)
            .stdout(Stdio::piped())
            .spawn()
            .expect("the child starts");
        let mut lines = BufReader::new(child.stdout.take().expect("its stdout")).lines();
        let started = lines.find(|l| l.as_ref().is_ok_and(|l| l == "handler started"));
        assert!(started.is_some(), "the child's handler started");
        child.kill().expect("the child is killed");
        child.wait().expect("the child is gone");

        let recorder = Recorder::default();
        let (offset, clock) = movable_clock();
        let consumer = Consumer::new(recorder.handler(), Some(store)).with_clock(clock);
        let report = consumer.handle(&batch, &context()).await;
        assert_eq!(report.outcomes[0].1, Outcome::InProgress, "before the expiry");
        assert!(recorder.ids().is_empty());
        offset.store(REMAINING.as_secs() + 1, Ordering::Relaxed);
        let report = consumer.handle(&batch, &context()).await;
        assert_eq!(report.outcomes[0].1, Outcome::Processed, "after it");
        assert_eq!(recorder.ids(), ["n-1"]);
    });
}

fn fifo_failure_returns_its_groups_later_messages_and_none_of_another_group(sqs: &LocalSqs) {
    let source = EventSource::new(sqs, sqs.create_fifo_queue());
    let recorder = Recorder::default();
    recorder.fail(&["a-2"]);
    let (store, _one_at_a_time) = table(sqs);
    let consumer = Consumer::new(recorder.handler(), Some(store));
    runtime().block_on(async {
        for (id, grant) in [("a-1", "A"), ("b-1", "B"), ("a-2", "A"), ("b-2", "B"), ("a-3", "A")] {
            source.send_as_receiver(&v3(id, grant, 1)).await;
        }
        let batch = source.poll().await;
        assert_eq!(batch.records.len(), 5);
        let report = consumer.handle(&batch, &context()).await;
        let returned: Vec<_> = batch
            .records
            .iter()
            .zip(&report.outcomes)
            .filter(|(_, (_, o))| o.returns())
            .map(|(m, _)| m.message_attributes["nylas-id"].string_value.clone().unwrap())
            .collect();
        assert_eq!(returned, ["a-2", "a-3"]);
        let mut ran = recorder.ids();
        ran.sort();
        assert_eq!(ran, ["a-1", "a-2", "b-1", "b-2"], "a-3 not run behind a-2");
        source.settle(&batch, &report).await;
        recorder.fail(&[]);
        source.drain(&consumer).await;
        let ids = recorder.ids();
        let a: Vec<_> = ids.iter().filter(|id| id.starts_with("a-")).collect();
        assert_eq!(a, ["a-1", "a-2", "a-2", "a-3"], "group A in order, a-2 tried twice");
        assert_eq!(ids.iter().filter(|id| id.starts_with("b-")).count(), 2);
    });
}

const FIRST_DELTA: &str = r#"{"date": 1, "object": "message", "type": "message.created", "object_data": {"account_id": "a1"}}"#;
const SECOND_DELTA: &str = r#"{"date": 2, "object": "event", "type": "event.updated", "object_data": {"account_id": "a2"}}"#;

/// A body of each encoding the receiver writes: text, one that is not SQS text (a control
/// byte: base64), one over SQS's 1 MiB (gzip+base64), and a v2 POST of two deltas with v2's
/// separators; and the exact bytes of the five notifications they hold.
fn every_encoding() -> ([Vec<u8>; 4], [Vec<u8>; 5]) {
    let text = v3("n-text", "g-1", 1);
    let binary = format!("{{\"note\":\"\u{1}\",\"n\":{}}}", "1".repeat(10)).into_bytes();
    let large = json!({"specversion": "1.0", "type": "message.created", "id": "n-large",
        "time": 1, "data": {"object": {"body": "x".repeat(1_200_000)}}})
    .to_string()
    .into_bytes();
    let v2 = format!(r#"{{"deltas": [{FIRST_DELTA}, {SECOND_DELTA}]}}"#).into_bytes();
    let (first, second) = (FIRST_DELTA.as_bytes().to_vec(), SECOND_DELTA.as_bytes().to_vec());
    ([text.clone(), binary.clone(), large.clone(), v2], [text, binary, large, first, second])
}

fn receiver_output_reaches_the_handler_as_the_exact_bytes_nylas_sent(sqs: &LocalSqs) {
    let queue_url = sqs.create_queue();
    let stack = Stack::forwarding_to(sqs, queue_url.clone());
    let (bodies, notifications) = every_encoding();
    for body in &bodies {
        let signature = sign(SAMPLE_SECRET.as_bytes(), body);
        let headers = [("content-type", "application/json"), (SENDER.signature_header, &signature)];
        assert_eq!(stack.send("POST", &headers, body).status, 200);
    }
    let source = EventSource::new(sqs, queue_url);
    let recorder = Recorder::default();
    let (store, _one_at_a_time) = table(sqs);
    let consumer = Consumer::new(recorder.handler(), Some(store));
    let reports = runtime().block_on(source.drain(&consumer));
    assert_eq!(count(&reports, |o| *o == Outcome::Processed), 5);
    let seen = recorder.seen.lock().unwrap();
    let bytes_of = |wanted: &[u8]| seen.iter().filter(|n| n.bytes == wanted).count();
    for expected in &notifications {
        assert_eq!(bytes_of(expected), 1, "a notification of {} bytes", expected.len());
    }
    let large = seen.iter().find(|n| n.id == "n-large").expect("the large one");
    let envelope = large.v3().expect("a v3 envelope");
    assert_eq!(envelope.kind.trigger, "message.created");
    let v2 = seen.iter().find(|n| n.bytes == SECOND_DELTA.as_bytes()).expect("the second delta");
    let delta = v2.v2().expect("a v2 delta");
    assert_eq!(delta.object_data.and_then(|d| d.account_id).as_deref(), Some("a2"));
}

fn bad_messages_are_logged_failures_that_reach_the_dead_letter_queue(sqs: &LocalSqs) {
    let dead = sqs.create_queue();
    let queue_url = sqs.create_queue();
    let client = aws_sdk_sqs::Client::new(&sqs.config);
    let rt = runtime();
    let dead_arn = rt
        .block_on(
            client
                .get_queue_attributes()
                .queue_url(&dead)
                .attribute_names(QueueAttributeName::QueueArn)
                .send(),
        )
        .expect("the dead-letter queue's ARN");
    let dead_arn = dead_arn.attributes().and_then(|a| a.get(&QueueAttributeName::QueueArn));
    let redrive = json!({"deadLetterTargetArn": dead_arn, "maxReceiveCount": 3}).to_string();
    let set = client
        .set_queue_attributes()
        .queue_url(&queue_url)
        .attributes(QueueAttributeName::RedrivePolicy, redrive);
    rt.block_on(set.send()).expect("a redrive policy");
    let source = EventSource::new(sqs, queue_url);
    let recorder = Recorder::default();
    let (store, _one_at_a_time) = table(sqs);
    let consumer = Consumer::new(recorder.handler(), Some(store));
    rt.block_on(async {
        source.send_raw("{\"hello\": 1}", &[]).await;
        source.send_raw("{not json", &[("nylas-id", "n-1"), ("nylas-api-version", "v3")]).await;
        let unknown =
            [("nylas-id", "n-2"), ("nylas-api-version", "v3"), ("nylas-encoding", "zstd")];
        source.send_raw("KLUv/QQA", &unknown).await;
        source.send_as_receiver(&v3("n-good", "g-1", 1)).await;
        let reports = source.drain(&consumer).await;
        assert_eq!(recorder.ids(), ["n-good"], "the handler saw only the good one");
        let failed: Vec<String> = reports
            .iter()
            .flat_map(|r| &r.outcomes)
            .filter_map(|(_, o)| match o {
                Outcome::Failed(why) => Some(why.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(failed.len(), 9, "three receives each: {failed:?}");
        for why in ["nylas-id attribute", "not valid JSON", "does not know"] {
            assert!(failed.iter().any(|f| f.contains(why)), "{why}: {failed:?}");
        }
    });
    let in_dead_letter_queue = sqs.receive_all(&dead);
    assert_eq!(in_dead_letter_queue.len(), 3);
}

fn without_idempotency_each_delivery_runs_the_handler(sqs: &LocalSqs) {
    let source = EventSource::new(sqs, sqs.create_queue());
    let recorder = Recorder::default();
    let consumer = Consumer::new(recorder.handler(), None);
    runtime().block_on(async {
        source.send_as_receiver(&v3("n-1", "g-1", 1)).await;
        source.send_as_receiver(&v3("n-1", "g-1", 2)).await;
        let reports = source.drain(&consumer).await;
        assert_eq!(count(&reports, |o| *o == Outcome::Processed), 2);
    });
    assert_eq!(recorder.ids(), ["n-1", "n-1"]);
}

/// docs/consumer.md, "What it guarantees": on FIFO, a message that fails on its last
/// receive goes to the dead-letter queue alone, sent there by the consumer, and its group's
/// later messages run. Before its last receive, it goes back with them behind it. The receive
/// counts are set on the events: moto does not hold a group's order across receives as SQS.
fn a_fifo_poison_message_goes_to_the_dead_letter_queue_alone_on_its_last_receive(sqs: &LocalSqs) {
    let source = EventSource::new(sqs, sqs.create_fifo_queue());
    let dead_letters = sqs.create_fifo_queue();
    let recorder = Recorder::default();
    recorder.fail(&["a-2"]);
    let client = aws_sdk_sqs::Client::new(&sqs.config);
    let dead = DeadLetter::new(client, dead_letters.clone(), 5);
    let consumer = Consumer::new(recorder.handler(), None).with_dead_letter(Some(dead));
    let batch = runtime().block_on(async {
        for id in ["a-1", "a-2", "a-3"] {
            source.send_as_receiver(&v3(id, "A", 1)).await;
        }
        let mut batch = source.poll().await;
        let outcomes = |report: &Report| -> Vec<String> {
            let label = |o: &Outcome| format!("{o:?}").split('(').next().unwrap_or("").to_owned();
            report.outcomes.iter().map(|(_, o)| label(o)).collect()
        };
        for (count, expected) in [
            ("4", ["Processed", "Failed", "Behind"]),
            ("5", ["Processed", "DeadLettered", "Processed"]),
        ] {
            for record in &mut batch.records {
                record.attributes.insert("ApproximateReceiveCount".to_owned(), count.to_owned());
            }
            let report = consumer.handle(&batch, &context()).await;
            assert_eq!(outcomes(&report), expected, "receive {count}");
        }
        let report = consumer.handle(&batch, &context()).await;
        assert!(report.response().batch_item_failures.is_empty(), "nothing goes back");
        batch
    });
    let moved = sqs.receive_all(&dead_letters);
    assert_eq!(moved.len(), 1, "a-2 alone, once: moved twice, deduplicated on its message id");
    let original = &batch.records[1];
    assert_eq!(Some(moved[0].body.as_str()), original.body.as_deref());
    assert_eq!(moved[0].attributes.get("nylas-id").map(String::as_str), Some("a-2"));
    assert_eq!(moved[0].group_id.as_deref(), Some("A"));
    let ran = recorder.ids();
    assert_eq!(ran.iter().filter(|id| *id == "a-3").count(), 2, "a-3 runs once a-2 is gone");
}

/// Nylas's gzip of several members, inflating past 1 MiB: the receiver stores it as Nylas sent
/// it (gzip+base64), and the consumer inflates every member to the exact bytes.
fn two_member_gzip_over_one_mebibyte_reaches_the_handler_exactly(sqs: &LocalSqs) {
    use base64::Engine;
    use std::io::Write;
    let plain = json!({"specversion": "1.0", "type": "message.created", "id": "n-members",
        "time": 1, "data": {"object": {"body": "y".repeat(1_300_000)}}})
    .to_string()
    .into_bytes();
    let (head, tail) = plain.split_at(plain.len() / 2);
    let member = |bytes: &[u8]| {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(bytes).expect("a Vec");
        encoder.finish().expect("a Vec")
    };
    let gzip = [member(head), member(tail)].concat();
    let queue_url = sqs.create_queue();
    let stack = Stack::forwarding_to(sqs, queue_url.clone());
    let path = support::project_dir().join("events/v3-message-created.json");
    let mut event: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("the sample")).expect("JSON");
    event["body"] = base64::engine::general_purpose::STANDARD.encode(&gzip).into();
    event["isBase64Encoded"] = true.into();
    event["headers"]["content-encoding"] = "gzip".into();
    event["headers"]["x-nylas-signature"] = sign(SAMPLE_SECRET.as_bytes(), &gzip).into();
    assert_eq!(stack.invoke_event(&event).status, 200);
    let source = EventSource::new(sqs, queue_url);
    let recorder = Recorder::default();
    let reports = runtime().block_on(source.drain(&Consumer::new(recorder.handler(), None)));
    assert_eq!(count(&reports, |o| *o == Outcome::Processed), 1, "{reports:?}");
    let seen = recorder.seen.lock().unwrap();
    assert!(seen[0].bytes == plain, "the exact bytes, both members");
}

/// Two identical deltas of one POST reach the handler as two notifications, once each, on a
/// standard queue and on FIFO, however often the POST is sent.
fn identical_deltas_of_one_post_each_reach_the_handler_once(sqs: &LocalSqs) {
    let delta = r#"{"date": 1, "object": "message", "type": "message.opened", "object_data": {"account_id": "a-1"}}"#;
    let body = format!(r#"{{"deltas": [{delta}, {delta}]}}"#);
    for queue_url in [sqs.create_queue(), sqs.create_fifo_queue()] {
        let stack = Stack::forwarding_to(sqs, queue_url.clone());
        let signature = sign(SAMPLE_SECRET.as_bytes(), body.as_bytes());
        for _ in 0..2 {
            let reply =
                stack.send("POST", &[(SENDER.signature_header, &signature)], body.as_bytes());
            assert_eq!(reply.status, 200);
        }
        let source = EventSource::new(sqs, queue_url);
        let recorder = Recorder::default();
        let (store, _one_at_a_time) = table(sqs);
        let consumer = Consumer::new(recorder.handler(), Some(store));
        runtime().block_on(source.drain(&consumer));
        let mut ids = recorder.ids();
        ids.sort();
        assert_eq!(ids.len(), 2, "{ids:?}");
        assert_eq!(ids[1], format!("{}-2", ids[0]));
    }
}

/// A fork's sender, as docs/forking.md's "Another HMAC sender" defines one: GitHub's webhooks. Its id is
/// a header (`X-GitHub-Delivery`), it sends no challenge, it signs in `X-Hub-Signature-256`,
/// and a repository's events stay in order. Nothing else of the function differs.
const GITHUB: Sender = Sender {
    name: "GitHub",
    signature_header: "X-Hub-Signature-256",
    signature_prefix: "sha256=",
    challenge: None,
    split: github,
};

fn github<'a>(
    bytes: &'a [u8],
    gzip: Option<&'a [u8]>,
    headers: &lambda_http::http::HeaderMap,
) -> Vec<Received<'a>> {
    let header = |name: &str| headers.get(name)?.to_str().ok().map(str::to_owned);
    let body: serde_json::Value = serde_json::from_slice(bytes).unwrap_or_default();
    let mut notification = Received::unknown(bytes, gzip);
    if let Some(id) = header("X-GitHub-Delivery") {
        (notification.id, notification.id_rule) = (id, IdRule::Given);
    }
    notification.kind = header("X-GitHub-Event");
    notification.group = body["repository"]["full_name"].as_str().map(str::to_owned);
    vec![notification]
}

/// The receiver and the consumer built for a second sender pass its notification end to end
/// through moto's SQS (FIFO, grouped by repository) and DynamoDB: the consumer takes the id the
/// sender gave, and the handler gets the exact bytes, once, however often they are delivered.
fn a_fork_for_another_sender_passes_from_the_webhook_to_the_handler(sqs: &LocalSqs) {
    use lambda_http::http::{header, Method};
    use lambda_http::{Body, Request};
    let queue_url = sqs.create_fifo_queue();
    let client = aws_sdk_sqs::Client::new(&sqs.config);
    let queue = SqsQueue::new(client.clone(), queue_url.clone());
    let receiver = Receiver::new(GITHUB, Secrets::fixed("github-secret", None), queue);
    let body = r#"{"action":"opened","repository":{"full_name":"acme/api"},"number":7}"#;
    let signature = format!("sha256={}", sign(b"github-secret", body.as_bytes()));
    let post = || {
        let mut request = Request::new(Body::Text(body.to_owned()));
        *request.method_mut() = Method::POST;
        let headers = request.headers_mut();
        headers.insert("X-Hub-Signature-256", signature.parse().unwrap());
        headers.insert("X-GitHub-Delivery", "72d3162e-cc78-11e3".parse().unwrap());
        headers.insert("X-GitHub-Event", "pull_request".parse().unwrap());
        request
    };
    let recorder = Recorder::default();
    let (store, _one_at_a_time) = table(sqs);
    runtime().block_on(async {
        let get = receiver.handle(Request::default()).await;
        assert_eq!(get.status(), 405, "no challenge: GET is not answered");
        assert_eq!(get.headers()[header::ALLOW], "POST");
        let mut unsigned = post();
        unsigned.headers_mut().remove("X-Hub-Signature-256");
        assert_eq!(receiver.handle(unsigned).await.status(), 401);
        assert_eq!(receiver.handle(post()).await.status(), 200);
        let source = EventSource::new(sqs, queue_url.clone());
        let batch = source.poll().await;
        assert_eq!(batch.records.len(), 1);
        let group = batch.records[0].attributes.get("MessageGroupId");
        assert_eq!(group.map(String::as_str), Some("acme/api"));
        let consumer = Consumer::new(recorder.handler(), Some(store));
        let report = consumer.handle(&batch, &context()).await;
        source.settle(&batch, &report).await;
        assert_eq!(report.outcomes[0].1, Outcome::Processed, "{report:?}");
        // The sender delivers it again: stored once more or deduplicated, it runs once.
        assert_eq!(receiver.handle(post()).await.status(), 200);
        source.drain(&consumer).await;
        let seen = recorder.seen.lock().unwrap();
        assert_eq!(seen.len(), 1, "the handler ran once");
        assert_eq!(seen[0].id, "72d3162e-cc78-11e3");
        assert_eq!(seen[0].kind.as_ref().map(|k| k.name.as_str()), Some("pull_request"));
        assert_eq!(seen[0].grant_id.as_deref(), Some("acme/api"));
        assert!(seen[0].bytes == body.as_bytes(), "the exact bytes");
    });
}

/// The receiver's `SqsQueue` for `queue_url`, archiving to an archive of its own: (the queue,
/// the archive's bucket).
fn archiving(sqs: &LocalSqs, queue_url: &str) -> (SqsQueue, String) {
    let (bucket, stream) = sqs.create_archive();
    let archive = Archive::new(aws_sdk_firehose::Client::new(&sqs.config), stream);
    let client = aws_sdk_sqs::Client::new(&sqs.config);
    (SqsQueue::new(client, queue_url.to_owned()).with_archive(Some(archive)), bucket)
}

/// Delivers `body` through `queue` as received at `received_ms`; every notification must be
/// archived.
fn deliver_at(queue: &SqsQueue, body: &[u8], received_ms: u64) {
    let origin = Origin { request_id: Some("req-a1".into()), trace_header: None, received_ms };
    let delivered = runtime().block_on(queue.deliver(&split(body), &origin, &Calls::default()));
    let delivered = delivered.expect("moto stores the notifications");
    assert_eq!(delivered.unarchived, Default::default(), "all archived");
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

/// A replay of `[from_ms, to_ms)` from `bucket` into `queue_url`.
fn replay(bucket: &str, queue_url: &str, from_ms: u64, to_ms: u64) -> nylas_replay::Options {
    nylas_replay::Options {
        bucket: bucket.to_owned(),
        prefix: "notifications/".to_owned(),
        queue_url: queue_url.to_owned(),
        from_ms,
        to_ms,
        kind: None,
        grant: None,
        dry_run: false,
        rate: 1_000,
        replay_id: nylas_replay::Options::default_replay_id(from_ms, to_ms, None, None),
    }
}

fn run_replay(sqs: &LocalSqs, options: &nylas_replay::Options) -> nylas_replay::Summary {
    let (s3, client) =
        (aws_sdk_s3::Client::new(&sqs.config), aws_sdk_sqs::Client::new(&sqs.config));
    let ran = runtime().block_on(nylas_replay::run(&s3, &client, options, |_| {}));
    ran.expect("the replay reads moto's S3 and sends to its SQS")
}

fn an_archived_notification_comes_back_byte_exact_through_a_replay_once_per_replay(sqs: &LocalSqs) {
    let queue_url = sqs.create_queue();
    let (queue, bucket) = archiving(sqs, &queue_url);
    let started = now_ms();
    let (bodies, notifications) = every_encoding();
    for body in &bodies {
        deliver_at(&queue, body, now_ms());
    }
    let source = EventSource::new(sqs, queue_url.clone());
    let recorder = Recorder::default();
    let (store, _one_at_a_time) = table(sqs);
    let consumer = Consumer::new(recorder.handler(), Some(store));
    let reports = runtime().block_on(source.drain(&consumer));
    assert_eq!(count(&reports, |o| *o == Outcome::Processed), 5, "the original deliveries");
    // The consumer shipped a bug: replay the range, twice.
    let options = replay(&bucket, &queue_url, started, now_ms() + 1);
    for run in 0..2 {
        let summary = run_replay(sqs, &options);
        assert_eq!((summary.found, summary.sent, summary.skipped), (5, 5, 0), "run {run}");
        let reports = runtime().block_on(source.drain(&consumer));
        let expected = if run == 0 { (5, 0) } else { (0, 5) };
        let processed = count(&reports, |o| *o == Outcome::Processed);
        assert_eq!(
            (processed, count(&reports, |o| *o == Outcome::Duplicate)),
            expected,
            "run {run}"
        );
    }
    let seen = recorder.seen.lock().unwrap();
    assert_eq!(seen.len(), 10, "each notification twice: delivered, then replayed once");
    for expected in &notifications {
        let runs: Vec<_> =
            seen.iter().filter(|n| &n.bytes == expected).map(|n| n.replay_id.clone()).collect();
        assert_eq!(runs, [None, Some(options.replay_id.clone())], "{} bytes", expected.len());
    }
}

fn a_replay_of_a_range_sends_exactly_the_notifications_received_in_it(sqs: &LocalSqs) {
    let queue_url = sqs.create_queue();
    let (queue, bucket) = archiving(sqs, &queue_url);
    let base = now_ms() - 60_000;
    let kinds =
        ["message.created", "message.created.truncated", "grant.created", "message.created"];
    for (i, kind) in kinds.iter().enumerate() {
        let body = json!({"specversion": "1.0", "type": kind, "id": format!("n-{i}"),
            "data": {"object": {"grant_id": format!("g-{}", i % 2)}}});
        deliver_at(&queue, body.to_string().as_bytes(), base + i as u64 * 10_000);
    }
    sqs.receive_all(&queue_url);
    // Received at base+10 s, +20 s: n-1 and n-2; +30 s is the end, not in it.
    let mut options = replay(&bucket, &sqs.create_queue(), base + 10_000, base + 30_000);
    options.dry_run = true;
    let dry = run_replay(sqs, &options);
    assert_eq!((dry.found, dry.sent, dry.skipped), (2, 2, 0));
    assert!(sqs.receive_all(&options.queue_url).is_empty(), "a dry run sends nothing");
    options.dry_run = false;
    run_replay(sqs, &options);
    let ids = |queue: &str| -> Vec<String> {
        let received = sqs.receive_all(queue);
        let mut ids: Vec<String> =
            received.iter().map(|r| r.attributes[attribute::ID].clone()).collect();
        ids.sort();
        ids
    };
    assert_eq!(ids(&options.queue_url), ["n-1", "n-2"]);
    // By type (its suffixes included) and by grant.
    let mut by_type = replay(&bucket, &sqs.create_queue(), base, base + 40_000);
    by_type.kind = Some("message.created".to_owned());
    let summary = run_replay(sqs, &by_type);
    assert_eq!((summary.found, summary.sent, summary.skipped), (4, 3, 1));
    assert_eq!(ids(&by_type.queue_url), ["n-0", "n-1", "n-3"]);
    let mut by_grant = replay(&bucket, &sqs.create_queue(), base, base + 40_000);
    by_grant.grant = Some("g-1".to_owned());
    run_replay(sqs, &by_grant);
    assert_eq!(ids(&by_grant.queue_url), ["n-1", "n-3"]);
}

fn a_replayed_fifo_message_keeps_its_group_and_is_not_swallowed_by_the_original(sqs: &LocalSqs) {
    let queue_url = sqs.create_fifo_queue();
    let (queue, bucket) = archiving(sqs, &queue_url);
    let started = now_ms();
    for id in ["n-1", "n-2", "n-3"] {
        deliver_at(&queue, &v3(id, "g-1", 1), now_ms());
    }
    let options = replay(&bucket, &queue_url, started, now_ms() + 1);
    // Within the original's 5-minute deduplication window, and a second run within the
    // replay's own.
    run_replay(sqs, &options);
    run_replay(sqs, &options);
    let received = sqs.receive_all(&queue_url);
    let order: Vec<(&str, Option<&str>)> = received
        .iter()
        .map(|r| {
            (
                r.attributes[attribute::ID].as_str(),
                r.attributes.get(attribute::REPLAY_ID).map(String::as_str),
            )
        })
        .collect();
    let replayed = Some(options.replay_id.as_str());
    let expected = [
        ("n-1", None),
        ("n-2", None),
        ("n-3", None),
        ("n-1", replayed),
        ("n-2", replayed),
        ("n-3", replayed),
    ];
    assert_eq!(order, expected, "each grant's order, the replay stored once");
    assert!(received.iter().all(|r| r.group_id.as_deref() == Some("g-1")));
}

fn the_function_archives_what_it_stores_and_a_failing_archive_still_answers_200(sqs: &LocalSqs) {
    let (bucket, stream) = sqs.create_archive();
    let post = |stack: &Stack<'_>, id: &str| {
        let body = v3(id, "g-1", 1);
        let signature = sign(SAMPLE_SECRET.as_bytes(), &body);
        let headers = [("content-type", "application/json"), (SENDER.signature_header, &signature)];
        stack.send("POST", &headers, &body).status
    };
    let stack = Stack::with_env(sqs, &[("ARCHIVE_STREAM", &stream)]);
    assert_eq!(post(&stack, "n-kept"), 200);
    let stored = stack.received();
    let request_id = stored[0].attributes[attribute::REQUEST_ID].clone();
    assert!(
        stack.logs().contains(&format!("\"request_id\":\"{request_id}\"")),
        "the log line names it"
    );
    let s3 = aws_sdk_s3::Client::new(&sqs.config);
    let listed =
        runtime().block_on(s3.list_objects_v2().bucket(&bucket).send()).expect("moto lists");
    let key = listed.contents()[0].key().expect("a key").to_owned();
    assert!(key.starts_with("notifications/"), "{key}");
    // The body streams on the connection of the runtime that sent the request: one runtime.
    let bytes = runtime().block_on(async {
        let object = s3.get_object().bucket(&bucket).key(&key).send().await.expect("moto reads");
        object.body.collect().await.expect("the object").into_bytes()
    });
    let record: nylas_sqs_contract::archive::Record =
        serde_json::from_slice(&bytes).expect("a record");
    assert_eq!(record.body, stored[0].body);
    assert_eq!(record.attributes, stored[0].attributes, "what the queue got");
    // A stream that is not there: the queue still takes the notification, and it is counted.
    let failing = Stack::with_env(sqs, &[("ARCHIVE_STREAM", "no-such-stream")]);
    assert_eq!(post(&failing, "n-unarchived"), 200);
    assert_eq!(failing.received().len(), 1);
    let logs = failing.logs();
    assert!(logs.contains("\"ArchiveFailed\":1"), "{logs}");
    assert!(logs.contains("\"archive_missing\":[\"n-unarchived\"]"), "{logs}");
    assert!(logs.contains("ResourceNotFoundException"), "{logs}");
}
