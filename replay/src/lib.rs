//! # Replay
//!
//! Sends the notifications the receiver archived in a time range back to a queue, exactly as
//! the receiver sent them, with one more attribute: the replay's id
//! ([`nylas_sqs_contract::attribute::REPLAY_ID`]). The consumer runs a notification once per
//! replay, so running the same replay again reaches the handler with nothing twice.
//!
//! It reads only the hours of the archive the range covers (Firehose writes each object under
//! the UTC hour it began buffering, `<prefix>YYYY/MM/DD/HH/`, so the hour before the range is
//! read too when the range starts within [`BUFFERING`] of it), keeps the records received in
//! the range that match the type and grant asked for, and sends them in batches of 10 at a
//! rate of its own, in the order they were received: one hour of the archive at a time (its
//! matching records are held in memory while they are sent).

use aws_sdk_s3::Client as S3;
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};
use aws_sdk_sqs::Client as Sqs;
use aws_smithy_types::date_time::{DateTime, Format};
use nylas_sqs_contract::archive::Record;
use nylas_sqs_contract::{attribute, FifoKeys, STRING};
use sha2::{Digest, Sha256};
use std::time::Duration;
use tokio::time::Instant;

/// Firehose's longest buffering interval (900 s): a record may sit in an object whose hour
/// began this long before the record was received.
pub const BUFFERING: Duration = Duration::from_secs(900);
/// Most entries in one `SendMessageBatch` call.
const BATCH: usize = 10;
/// Attempts at entries SQS refuses for a passing reason.
const ATTEMPTS: u32 = 3;

/// What to replay, and where.
#[derive(Debug, Clone)]
pub struct Options {
    pub bucket: String,
    /// The archive's key prefix in the bucket (`notifications/`).
    pub prefix: String,
    pub queue_url: String,
    /// The range of received times, in milliseconds since the Unix epoch: `from` included,
    /// `to` not.
    pub from_ms: u64,
    pub to_ms: u64,
    /// Only notifications of this type (`message.created` takes its suffixes too:
    /// `message.created.truncated`).
    pub kind: Option<String>,
    pub grant: Option<String>,
    /// Count, send nothing.
    pub dry_run: bool,
    /// Most messages sent a second.
    pub rate: u32,
    pub replay_id: String,
}

impl Options {
    /// The id a replay gets unless given one: the same for the same range and filters, so
    /// that running it again sends nothing the consumer runs twice.
    pub fn default_replay_id(
        from_ms: u64,
        to_ms: u64,
        kind: Option<&str>,
        grant: Option<&str>,
    ) -> String {
        let what = format!("{from_ms}|{to_ms}|{}|{}", kind.unwrap_or(""), grant.unwrap_or(""));
        format!("replay-{}", &hex::encode(Sha256::digest(what))[..16])
    }
}

/// What a replay did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Archive objects read.
    pub objects: usize,
    /// Records received in the range.
    pub found: usize,
    /// Of those, sent (or, with `dry_run`, that would be).
    pub sent: usize,
    /// Of those, left out by the type or grant asked for.
    pub skipped: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("reading the archive failed: {0}")]
    Archive(String),
    #[error("{key} holds a line that is not an archive record: {error}")]
    Record { key: String, error: serde_json::Error },
    #[error("sending to the queue failed: {0}")]
    Queue(String),
    #[error("the queue still refused {0} messages after {ATTEMPTS} attempts")]
    Refused(usize),
}

/// The archive's hour prefixes that may hold records received in `[from_ms, to_ms)`, oldest
/// first.
pub fn hours(prefix: &str, from_ms: u64, to_ms: u64) -> Vec<String> {
    let first = from_ms.saturating_sub(BUFFERING.as_millis() as u64) / 3_600_000;
    let last = to_ms.saturating_sub(1) / 3_600_000;
    (first..=last.max(first))
        .map(|hour| {
            let time = DateTime::from_secs((hour * 3600) as i64).fmt(Format::DateTime);
            let time = time.unwrap_or_default();
            // 2026-12-06T08:00:00Z → 2026/12/06/08/
            format!("{prefix}{}/{}/{}/{}/", &time[0..4], &time[5..7], &time[8..10], &time[11..13])
        })
        .collect()
}

/// Reads a time given as RFC 3339 (`2026-12-06T08:00:00Z`), in milliseconds since the epoch.
pub fn parse_time(text: &str) -> Option<u64> {
    let time = DateTime::from_str(text, Format::DateTime).ok()?;
    u64::try_from(time.to_millis().ok()?).ok()
}

/// Whether `record` is one the options ask for, once its received time is in range.
fn wanted(record: &Record, options: &Options) -> bool {
    let kind = record.attribute(attribute::TYPE).unwrap_or("");
    let kind_matches = options.kind.as_deref().is_none_or(|want| {
        kind == want || kind.strip_prefix(want).is_some_and(|rest| rest.starts_with('.'))
    });
    let grant = record.attribute(attribute::GRANT_ID);
    kind_matches && options.grant.as_deref().is_none_or(|want| grant == Some(want))
}

/// Runs a replay; `progress` is called after each archive object.
pub async fn run(
    s3: &S3,
    sqs: &Sqs,
    options: &Options,
    mut progress: impl FnMut(&Summary),
) -> Result<Summary, ReplayError> {
    let mut summary = Summary::default();
    let mut pacer = Pacer::new(options.rate);
    let fifo = options.queue_url.ends_with(".fifo");
    for hour in hours(&options.prefix, options.from_ms, options.to_ms) {
        // An hour at a time, in the order received: objects named in the same second do not
        // sort by time, and a record keeps its place among those of the same POST.
        let mut records = Vec::new();
        for key in keys(s3, &options.bucket, &hour).await? {
            let read = read(s3, &options.bucket, &key).await?;
            summary.objects += 1;
            let in_range = read
                .into_iter()
                .filter(|r| (options.from_ms..options.to_ms).contains(&r.received_ms));
            for record in in_range {
                summary.found += 1;
                match wanted(&record, options) {
                    true => records.push(record),
                    false => summary.skipped += 1,
                }
            }
            progress(&summary);
        }
        records.sort_by_key(|r| r.received_ms);
        summary.sent += records.len();
        if options.dry_run {
            continue;
        }
        for chunk in records.chunks(BATCH) {
            let entries =
                chunk.iter().enumerate().map(|(i, r)| entry(i, r, &options.replay_id, fifo));
            let entries = entries.collect::<Result<Vec<_>, _>>()?;
            pacer.wait(entries.len()).await;
            send(sqs, &options.queue_url, entries).await?;
        }
        progress(&summary);
    }
    Ok(summary)
}

/// The object keys under `prefix`, in order (Firehose's names sort by time).
async fn keys(s3: &S3, bucket: &str, prefix: &str) -> Result<Vec<String>, ReplayError> {
    let mut keys = Vec::new();
    let mut pages = s3.list_objects_v2().bucket(bucket).prefix(prefix).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            ReplayError::Archive(aws_sdk_s3::error::DisplayErrorContext(e).to_string())
        })?;
        keys.extend(page.contents().iter().filter_map(|o| o.key().map(str::to_owned)));
    }
    keys.sort();
    Ok(keys)
}

/// The records of one archive object, in the order Firehose received them.
async fn read(s3: &S3, bucket: &str, key: &str) -> Result<Vec<Record>, ReplayError> {
    let archive = |e: String| ReplayError::Archive(format!("{key}: {e}"));
    let object = s3.get_object().bucket(bucket).key(key).send().await;
    let object =
        object.map_err(|e| archive(aws_sdk_s3::error::DisplayErrorContext(e).to_string()))?;
    let bytes = object.body.collect().await.map_err(|e| archive(e.to_string()))?.into_bytes();
    let lines = bytes.split(|&b| b == b'\n').filter(|line| !line.is_empty());
    let record = |line: &[u8]| serde_json::from_slice(line);
    lines
        .map(|line| {
            record(line).map_err(|error| ReplayError::Record { key: key.to_owned(), error })
        })
        .collect()
}

/// The message the receiver sent for `record`, with the replay's id, and on FIFO the keys of
/// [`FifoKeys::replayed`].
fn entry(
    position: usize,
    record: &Record,
    replay_id: &str,
    fifo: bool,
) -> Result<SendMessageBatchRequestEntry, ReplayError> {
    let invalid = |e: aws_sdk_sqs::error::BuildError| ReplayError::Queue(e.to_string());
    let value =
        |v: &str| MessageAttributeValue::builder().data_type(STRING).string_value(v).build();
    let mut entry =
        SendMessageBatchRequestEntry::builder().id(position.to_string()).message_body(&record.body);
    for (name, text) in &record.attributes {
        entry = entry.message_attributes(name, value(text).map_err(invalid)?);
    }
    entry = entry.message_attributes(attribute::REPLAY_ID, value(replay_id).map_err(invalid)?);
    if fifo {
        let id = record.attribute(attribute::ID).unwrap_or_default();
        let keys = FifoKeys::replayed(replay_id, id, record.attribute(attribute::GRANT_ID));
        entry =
            entry.message_group_id(keys.group_id).message_deduplication_id(keys.deduplication_id);
    }
    entry.build().map_err(invalid)
}

/// One batch, with what SQS refuses sent again (in order, so that each grant's order holds).
async fn send(
    sqs: &Sqs,
    queue_url: &str,
    mut entries: Vec<SendMessageBatchRequestEntry>,
) -> Result<(), ReplayError> {
    let mut backoff = Duration::from_millis(100);
    for attempt in 1..=ATTEMPTS {
        let call = sqs.send_message_batch().queue_url(queue_url).set_entries(Some(entries.clone()));
        let output = call.send().await.map_err(|e| {
            ReplayError::Queue(aws_sdk_sqs::error::DisplayErrorContext(e).to_string())
        })?;
        let stored: Vec<&str> = output.successful().iter().map(|s| s.id()).collect();
        entries.retain(|e| !stored.contains(&e.id()));
        if entries.is_empty() {
            return Ok(());
        }
        if attempt < ATTEMPTS {
            tokio::time::sleep(backoff).await;
            backoff *= 2;
        }
    }
    Err(ReplayError::Refused(entries.len()))
}

/// Holds sending to `rate` messages a second, so that a replay of millions neither floods the
/// queue nor throttles the consumer.
struct Pacer {
    rate: u32,
    started: Instant,
    sent: u64,
}

impl Pacer {
    fn new(rate: u32) -> Self {
        Self { rate: rate.max(1), started: Instant::now(), sent: 0 }
    }

    async fn wait(&mut self, messages: usize) {
        let due = Duration::from_secs_f64(self.sent as f64 / f64::from(self.rate));
        tokio::time::sleep(due.saturating_sub(self.started.elapsed())).await;
        self.sent += messages as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hours_a_range_covers_and_the_one_before_within_the_buffering() {
        let at = |text: &str| parse_time(text).unwrap();
        let hours = hours("n/", at("2026-12-06T08:30:00Z"), at("2026-12-06T10:00:00Z"));
        assert_eq!(hours, ["n/2026/12/06/08/", "n/2026/12/06/09/"], "10:00 is not in the range");
        let hours = hours_of("2026-12-06T08:10:00Z", "2026-12-06T08:20:00Z");
        assert_eq!(hours, ["n/2026/12/06/07/", "n/2026/12/06/08/"], "an object begun at 07:55");
        let hours = hours_of("2026-12-31T23:30:00Z", "2027-01-01T00:30:00Z");
        assert_eq!(hours, ["n/2026/12/31/23/", "n/2027/01/01/00/"]);
        assert_eq!(hours_of("2026-12-06T08:30:00Z", "2026-12-06T08:30:00Z"), ["n/2026/12/06/08/"]);
    }

    fn hours_of(from: &str, to: &str) -> Vec<String> {
        hours("n/", parse_time(from).unwrap(), parse_time(to).unwrap())
    }

    #[test]
    fn times_are_rfc_3339() {
        assert_eq!(parse_time("1970-01-01T00:00:01Z"), Some(1000));
        assert_eq!(parse_time("2026-12-06T08:30:00.250Z"), Some(1_796_545_800_250));
        assert_eq!(parse_time("yesterday"), None);
    }

    fn record(kind: &str, grant: &str) -> Record {
        let attributes = [(attribute::TYPE, kind), (attribute::GRANT_ID, grant)];
        let attributes = attributes.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned()));
        Record { received_ms: 0, attributes: attributes.collect(), body: String::new() }
    }

    #[test]
    fn a_type_takes_its_suffixes_and_a_grant_only_itself() {
        let options = |kind: Option<&str>, grant: Option<&str>| Options {
            bucket: String::new(),
            prefix: String::new(),
            queue_url: String::new(),
            from_ms: 0,
            to_ms: 1,
            kind: kind.map(str::to_owned),
            grant: grant.map(str::to_owned),
            dry_run: true,
            rate: 1,
            replay_id: String::new(),
        };
        let created = options(Some("message.created"), None);
        assert!(wanted(&record("message.created", "g"), &created));
        assert!(wanted(&record("message.created.truncated", "g"), &created));
        assert!(!wanted(&record("message.created_at", "g"), &created));
        assert!(!wanted(&record("message.updated", "g"), &created));
        let grant = options(None, Some("g-1"));
        assert!(wanted(&record("grant.created", "g-1"), &grant));
        assert!(!wanted(&record("grant.created", "g-12"), &grant));
        assert!(wanted(&record("anything", "any"), &options(None, None)));
    }

    #[test]
    fn a_replay_s_default_id_is_the_same_for_the_same_range_and_filters() {
        let id = Options::default_replay_id(1, 2, Some("message.created"), None);
        assert_eq!(id, Options::default_replay_id(1, 2, Some("message.created"), None));
        assert_ne!(id, Options::default_replay_id(1, 3, Some("message.created"), None));
        assert_ne!(id, Options::default_replay_id(1, 2, None, None));
        assert!(id.starts_with("replay-") && id.len() == 23, "{id}");
    }

    #[test]
    fn a_replayed_entry_is_the_archived_message_with_the_replay_s_id_and_fifo_keys() {
        let mut archived = record("message.created", "g-1");
        archived.attributes.insert(attribute::ID.into(), "n-1".into());
        archived.body = "{\"id\":\"n-1\"}".into();
        let entry = entry(3, &archived, "replay-1", true).unwrap();
        assert_eq!((entry.id(), entry.message_body()), ("3", "{\"id\":\"n-1\"}"));
        let attributes = entry.message_attributes().unwrap();
        let text = |name: &str| attributes.get(name).and_then(|a| a.string_value());
        assert_eq!(
            (text(attribute::ID), text(attribute::REPLAY_ID)),
            (Some("n-1"), Some("replay-1"))
        );
        assert_eq!(attributes.len(), 4);
        let keys = FifoKeys::replayed("replay-1", "n-1", Some("g-1"));
        assert_eq!(entry.message_group_id(), Some(keys.group_id.as_str()));
        assert_eq!(entry.message_deduplication_id(), Some(keys.deduplication_id.as_str()));
        let standard = super::entry(0, &archived, "replay-1", false).unwrap();
        assert_eq!(
            (standard.message_group_id(), standard.message_deduplication_id()),
            (None, None)
        );
    }

    use aws_sdk_s3::operation::get_object::GetObjectOutput;
    use aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output;
    use aws_sdk_s3::primitives::ByteStream;
    use aws_sdk_s3::types::Object;
    use aws_sdk_sqs::operation::send_message_batch::SendMessageBatchOutput;
    use aws_sdk_sqs::types::SendMessageBatchResultEntry;
    use aws_smithy_mocks::{mock, MockResponseInterceptor, Rule, RuleMode};
    use std::sync::{Arc, Mutex};

    const HOUR: u64 = 1_796_544_000_000; // 2026-12-06T08:00:00Z

    fn line(received_ms: u64, kind: &str, id: &str) -> String {
        let mut record = record(kind, "g");
        record.received_ms = received_ms;
        record.attributes.insert(attribute::ID.into(), id.into());
        record.body = format!("{{\"id\":\"{id}\"}}");
        String::from_utf8(record.line()).unwrap()
    }

    /// An S3 that lists `objects` (key, text) under the hour of [`HOUR`] and serves them.
    fn s3(objects: &'static [(&'static str, String)]) -> S3 {
        let list = mock!(S3::list_objects_v2).then_compute_output(move |input| {
            let listed =
                objects.iter().filter(|(key, _)| key.starts_with(input.prefix().unwrap_or("-")));
            let listed = listed.map(|(key, _)| Object::builder().key(*key).build());
            ListObjectsV2Output::builder().set_contents(Some(listed.collect())).build()
        });
        let get = mock!(S3::get_object).then_compute_output(move |input| {
            let text =
                objects.iter().find(|(key, _)| Some(*key) == input.key()).map(|(_, t)| t.clone());
            GetObjectOutput::builder()
                .body(ByteStream::from(text.unwrap_or_default().into_bytes()))
                .build()
        });
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_s3::config::Credentials::for_tests())
            .http_client(aws_smithy_mocks::create_mock_http_client())
            .interceptor(
                MockResponseInterceptor::new()
                    .rule_mode(RuleMode::MatchAny)
                    .with_rule(&list)
                    .with_rule(&get),
            )
            .build();
        S3::from_conf(config)
    }

    type Sent = Arc<Mutex<Vec<Vec<String>>>>;

    /// An SQS that stores every entry but those `refuse` names for the n-th call (by entry
    /// id), recording each call's bodies.
    fn sqs(refuse: fn(usize, &str) -> bool) -> (Sqs, Sent) {
        let sent = Sent::default();
        let seen = sent.clone();
        let rule: Rule = mock!(Sqs::send_message_batch).then_compute_output(move |input| {
            let mut seen = seen.lock().unwrap();
            let call = seen.len();
            seen.push(input.entries().iter().map(|e| e.message_body().to_owned()).collect());
            let stored = input.entries().iter().filter(|e| !refuse(call, e.id()));
            let stored = stored.map(|e| {
                let entry = SendMessageBatchResultEntry::builder().id(e.id()).message_id("m");
                entry.md5_of_message_body("md5").build().unwrap()
            });
            let output = SendMessageBatchOutput::builder().set_successful(Some(stored.collect()));
            output.set_failed(Some(vec![])).build().unwrap()
        });
        let config = aws_sdk_sqs::Config::builder()
            .behavior_version(aws_sdk_sqs::config::BehaviorVersion::latest())
            .region(aws_sdk_sqs::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_sqs::config::Credentials::for_tests())
            .http_client(aws_smithy_mocks::create_mock_http_client())
            .interceptor(
                MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny).with_rule(&rule),
            )
            .build();
        (Sqs::from_conf(config), sent)
    }

    fn options(from_ms: u64, to_ms: u64) -> Options {
        Options {
            bucket: "archive".into(),
            prefix: "n/".into(),
            queue_url: "https://sqs.us-east-1.amazonaws.com/1/q".into(),
            from_ms,
            to_ms,
            kind: Some("message.created".into()),
            grant: None,
            dry_run: false,
            rate: 1_000,
            replay_id: "replay-1".into(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_replay_sends_the_wanted_records_of_its_range_in_the_order_received() {
        static OBJECTS: std::sync::LazyLock<Vec<(&str, String)>> = std::sync::LazyLock::new(|| {
            let at = |minute: u64| HOUR + minute * 60_000;
            vec![
                // Named in the same second, listed out of time order.
                (
                    "n/2026/12/06/08/s-1-2026-12-06-08-30-00-b",
                    format!(
                        "{}{}",
                        line(at(31), "message.created", "c"),
                        line(at(50), "message.created", "late")
                    ),
                ),
                (
                    "n/2026/12/06/08/s-1-2026-12-06-08-30-00-a",
                    format!(
                        "{}\n{}{}",
                        line(at(10), "message.created", "early"),
                        line(at(30), "message.created.truncated", "b"),
                        line(at(20), "message.created", "a")
                    ),
                ),
                ("n/2026/12/06/08/s-1-2026-12-06-08-40-00-c", line(at(35), "grant.created", "g")),
                (
                    "n/2026/12/06/09/s-1-2026-12-06-09-00-00-d",
                    line(at(61), "message.created", "next-hour"),
                ),
            ]
        });
        let (sqs, sent) = sqs(|_, _| false);
        let mut seen = vec![];
        let summary =
            run(&s3(&OBJECTS), &sqs, &options(HOUR + 15 * 60_000, HOUR + 45 * 60_000), |s| {
                seen.push(s.clone())
            })
            .await
            .unwrap();
        assert_eq!(summary, Summary { objects: 3, found: 4, sent: 3, skipped: 1 });
        assert_eq!(seen.len(), 4, "after each object, and after sending the hour");
        let expected = [vec![r#"{"id":"a"}"#, r#"{"id":"b"}"#, r#"{"id":"c"}"#]];
        assert_eq!(*sent.lock().unwrap(), expected);
        let (sqs, sent) = self::sqs(|_, _| false);
        let mut dry = options(HOUR + 15 * 60_000, HOUR + 45 * 60_000);
        dry.dry_run = true;
        assert_eq!(run(&s3(&OBJECTS), &sqs, &dry, |_| {}).await.unwrap().sent, 3);
        assert!(sent.lock().unwrap().is_empty(), "a dry run sends nothing");
    }

    #[tokio::test(start_paused = true)]
    async fn refused_entries_are_sent_again_with_a_growing_wait_then_reported() {
        let entries = |n: usize| -> Vec<SendMessageBatchRequestEntry> {
            let record = |i: usize| {
                let mut r = record("message.created", "g");
                r.body = format!("{i}");
                r
            };
            (0..n).map(|i| entry(i, &record(i), "r", false).unwrap()).collect()
        };
        let (sqs, sent) = sqs(|call, id| call == 0 && id == "1");
        let started = tokio::time::Instant::now();
        send(&sqs, "q", entries(3)).await.unwrap();
        assert_eq!(*sent.lock().unwrap(), [vec!["0", "1", "2"], vec!["1"]]);
        assert_eq!(started.elapsed(), Duration::from_millis(100));
        let (sqs, sent) = self::sqs(|_, id| id == "2");
        let started = tokio::time::Instant::now();
        assert!(matches!(send(&sqs, "q", entries(3)).await, Err(ReplayError::Refused(1))));
        assert_eq!(sent.lock().unwrap().len(), 3);
        assert_eq!(started.elapsed(), Duration::from_millis(100 + 200), "no wait after the last");
    }

    #[tokio::test(start_paused = true)]
    async fn the_pacer_holds_sending_to_the_rate() {
        let mut pacer = Pacer::new(20);
        let started = tokio::time::Instant::now();
        for _ in 0..5 {
            pacer.wait(10).await;
        }
        // 40 messages sent before the fifth batch: 2 s at 20 a second.
        assert_eq!(started.elapsed(), Duration::from_secs(2));
    }
}
