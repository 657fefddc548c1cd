//! The archive: a copy of every message the queue takes, as Amazon Data Firehose records (the
//! contract's `archive::Record`, one JSON line each), put side by side with the SQS batches.
//! The answer never depends on it: a record it could not put (a failed call, a record Firehose
//! refused, one over its 1,000 KiB) is named in the log line and counted (`ArchiveFailed`).

use aws_sdk_firehose::error::DisplayErrorContext;
use aws_sdk_firehose::primitives::Blob;
use aws_sdk_firehose::types::Record as FirehoseRecord;
use aws_sdk_firehose::Client;
use nylas_sqs_contract::archive::{Record, Unarchived, MAX_RECORD};

/// Most records, and most bytes, in one `PutRecordBatch` call
/// (<https://docs.aws.amazon.com/firehose/latest/APIReference/API_PutRecordBatch.html>).
const MAX_RECORDS: usize = 500;
const MAX_CALL: usize = 4 * 1024 * 1024;

/// A Firehose delivery stream, by name.
#[derive(Debug, Clone)]
pub struct Archive {
    client: Client,
    stream: String,
}

impl Archive {
    pub fn new(client: Client, stream: String) -> Self {
        Self { client, stream }
    }

    /// Puts each record, by its notification's id; returns what it did not archive.
    pub async fn put(&self, records: Vec<(String, Record)>) -> Unarchived {
        let mut missing = Unarchived::default();
        let (mut batch, mut bytes) = (Vec::new(), 0);
        for (id, record) in records {
            let line = record.line();
            if line.len() > MAX_RECORD {
                missing.add(vec![id], format!("a record over Firehose's {MAX_RECORD} bytes"));
                continue;
            }
            if batch.len() == MAX_RECORDS || bytes + line.len() > MAX_CALL {
                self.put_batch(std::mem::take(&mut batch), &mut missing).await;
                bytes = 0;
            }
            bytes += line.len();
            batch.push((id, line));
        }
        if !batch.is_empty() {
            self.put_batch(batch, &mut missing).await;
        }
        missing
    }

    /// One `PutRecordBatch` call; what it did not put goes in `missing`.
    async fn put_batch(&self, batch: Vec<(String, Vec<u8>)>, missing: &mut Unarchived) {
        let (ids, lines): (Vec<String>, Vec<Vec<u8>>) = batch.into_iter().unzip();
        let records = lines.into_iter().map(|line| FirehoseRecord::builder().data(Blob::new(line)));
        let records: Result<Vec<_>, _> = records.map(|record| record.build()).collect();
        let sent = match records {
            Ok(records) => {
                let call = self.client.put_record_batch().delivery_stream_name(&self.stream);
                call.set_records(Some(records)).send().await
            }
            Err(error) => return missing.add(ids, error.to_string()),
        };
        let output = match sent {
            Ok(output) => output,
            Err(error) => return missing.add(ids, DisplayErrorContext(&error).to_string()),
        };
        // Firehose answers 200 even when some records failed; one it did not answer for failed.
        let responses = output.request_responses();
        let failed =
            |position: &usize| responses.get(*position).is_none_or(|r| r.error_code().is_some());
        let code = responses.iter().find_map(|r| r.error_code()).unwrap_or("NotListed");
        let refused: Vec<String> =
            ids.into_iter().enumerate().filter(|(p, _)| failed(p)).map(|(_, id)| id).collect();
        if !refused.is_empty() {
            missing.add(refused, format!("Firehose refused records: {code}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_firehose::operation::put_record_batch::{
        PutRecordBatchError, PutRecordBatchOutput,
    };
    use aws_sdk_firehose::types::error::ResourceNotFoundException;
    use aws_sdk_firehose::types::PutRecordBatchResponseEntry;
    use nylas_sqs_contract::attribute;
    use std::sync::{Arc, Mutex};

    type Calls = Arc<Mutex<Vec<Vec<Vec<u8>>>>>;

    /// An archive over `rule`'s answers, recording the lines of each call.
    fn mocked(rule: aws_smithy_mocks::Rule) -> Archive {
        let config = aws_sdk_firehose::Config::builder()
            .behavior_version(aws_sdk_firehose::config::BehaviorVersion::latest())
            .region(aws_sdk_firehose::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_firehose::config::Credentials::for_tests())
            .http_client(aws_smithy_mocks::create_mock_http_client())
            .interceptor(aws_smithy_mocks::MockResponseInterceptor::new().with_rule(&rule))
            .retry_config(aws_sdk_firehose::config::retry::RetryConfig::disabled())
            .build();
        Archive::new(Client::from_conf(config), "archive".into())
    }

    /// Firehose answering each call with a response per record: refused when `refuse` says.
    fn answering(refuse: fn(usize) -> bool) -> (Archive, Calls) {
        let calls = Calls::default();
        let seen = calls.clone();
        let rule =
            aws_smithy_mocks::mock!(Client::put_record_batch).then_compute_output(move |input| {
                let lines = input.records().iter().map(|r| r.data().as_ref().to_vec());
                seen.lock().expect("no panics").push(lines.collect());
                let entry = |position| match refuse(position) {
                    true => PutRecordBatchResponseEntry::builder().error_code("InternalFailure"),
                    false => PutRecordBatchResponseEntry::builder().record_id("r"),
                };
                let entries: Vec<_> =
                    (0..input.records().len()).map(|p| entry(p).build()).collect();
                let failed = (0..entries.len()).filter(|p| refuse(*p)).count() as i32;
                let output = PutRecordBatchOutput::builder().failed_put_count(failed);
                output.set_request_responses(Some(entries)).build().expect("both set")
            });
        (mocked(rule), calls)
    }

    /// `count` records of `size` bytes of body, ids `n-0`, `n-1`...
    fn records(count: usize, size: usize) -> Vec<(String, Record)> {
        let record = |i: usize| Record {
            received_ms: 1_700_000_000_123,
            attributes: [(attribute::ID.to_owned(), format!("n-{i}"))].into(),
            body: "x".repeat(size),
        };
        (0..count).map(|i| (format!("n-{i}"), record(i))).collect()
    }

    #[tokio::test]
    async fn each_record_is_one_json_line() {
        let (archive, calls) = answering(|_| false);
        let sent = records(1, 20);
        assert_eq!(archive.put(sent.clone()).await, Unarchived::default());
        let calls = calls.lock().unwrap();
        assert_eq!(calls[0][0], sent[0].1.line());
        assert!(calls[0][0].ends_with(b"\n"));
    }

    #[tokio::test]
    async fn calls_hold_at_most_500_records_and_4_mib() {
        let (archive, calls) = answering(|_| false);
        assert_eq!(archive.put(records(1_000, 10)).await.ids, Vec::<String>::new());
        let sizes: Vec<usize> = calls.lock().unwrap().iter().map(Vec::len).collect();
        assert_eq!(sizes, [500, 500]);
        let (archive, calls) = answering(|_| false);
        assert_eq!(archive.put(records(9, 600_000)).await.ids, Vec::<String>::new());
        let calls = calls.lock().unwrap();
        assert_eq!(calls.iter().map(Vec::len).collect::<Vec<_>>(), [6, 3]);
        assert!(calls.iter().all(|c| c.iter().map(Vec::len).sum::<usize>() <= MAX_CALL));
    }

    /// A record whose line is exactly `size` bytes.
    fn sized(id: &str, size: usize) -> (String, Record) {
        let (_, mut record) = records(1, 0).remove(0);
        record.body = "x".repeat(size - record.line().len());
        (id.to_owned(), record)
    }

    #[tokio::test]
    async fn a_record_of_exactly_the_limit_and_a_call_of_exactly_4_mib_are_taken() {
        let (archive, calls) = answering(|_| false);
        assert_eq!(archive.put(vec![sized("n-limit", MAX_RECORD)]).await, Unarchived::default());
        let (archive, calls_of_4_mib) = answering(|_| false);
        let eighths: Vec<_> = (0..8).map(|i| sized(&format!("n-{i}"), MAX_CALL / 8)).collect();
        assert_eq!(archive.put(eighths).await, Unarchived::default());
        assert_eq!(calls.lock().unwrap()[0][0].len(), MAX_RECORD);
        let sizes: Vec<usize> = calls_of_4_mib.lock().unwrap().iter().map(Vec::len).collect();
        assert_eq!(sizes, [8], "4 MiB in one call");
    }

    #[tokio::test]
    async fn a_record_over_firehose_s_limit_and_records_refused_are_named_not_retried() {
        let (archive, calls) = answering(|position| position == 1);
        let mut sent = records(3, 10);
        let mut big = records(1, MAX_RECORD);
        big[0].0 = "n-big".into();
        // The limit counts the whole line: a body of MAX_RECORD bytes is over it.
        sent.insert(1, big.remove(0));
        let unarchived = archive.put(sent).await;
        assert_eq!(unarchived.ids, ["n-big", "n-1"], "the large one, then the one refused");
        assert_eq!(unarchived.reason.as_deref(), Some("Firehose refused records: InternalFailure"));
        let calls = calls.lock().unwrap();
        assert_eq!((calls.len(), calls[0].len()), (1, 3), "the large record never sent");
    }

    #[tokio::test]
    async fn a_failed_call_leaves_each_of_its_records_unarchived_with_the_service_s_reason() {
        let rule = aws_smithy_mocks::mock!(Client::put_record_batch).then_error(|| {
            PutRecordBatchError::ResourceNotFoundException(
                ResourceNotFoundException::builder().message("no stream").build(),
            )
        });
        let unarchived = mocked(rule).put(records(2, 10)).await;
        assert_eq!(unarchived.ids, ["n-0", "n-1"]);
        assert!(unarchived.reason.unwrap().contains("ResourceNotFoundException"));
    }
}
