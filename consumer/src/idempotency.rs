//! Each `nylas-id` processed once, with a record per id in a DynamoDB table, written with
//! conditions, as AWS Powertools' idempotency utility does
//! (<https://docs.powertools.aws.dev/lambda/python/latest/utilities/idempotency/>):
//!
//! - before the handler runs, an `INPROGRESS` record that expires when the invocation's time is
//!   up, so that the attempt of an instance that crashed can be retried after it;
//! - after it succeeded, a `COMPLETED` record kept for [`DEFAULT_TTL`] (24 h: Nylas retries for
//!   10 to 20 minutes);
//! - after it failed, no record, so that the retry runs.
//!
//! The table's partition key is `id` (a string); `expiration` is its TTL attribute.

use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use aws_sdk_dynamodb::Client;
use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long a completed notification is remembered.
pub const DEFAULT_TTL: Duration = Duration::from_secs(24 * 60 * 60);

const IN_PROGRESS: &str = "INPROGRESS";
const COMPLETED: &str = "COMPLETED";

/// What the record of an id says before its handler runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Begin {
    /// No live record: this attempt holds the id now; run the handler.
    Run,
    /// Processed already: acknowledge without running.
    Completed,
    /// Another attempt holds it: return the message, it is tried again later.
    InProgress,
}

/// The idempotency table could not be read or written: the message goes back to the queue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the idempotency table did not answer: {0}")]
pub struct StoreError(String);

/// The idempotency records, in one DynamoDB table.
#[derive(Debug, Clone)]
pub struct Idempotency {
    client: Client,
    table: String,
    ttl: Duration,
}

impl Idempotency {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            ttl: DEFAULT_TTL,
        }
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Remember completed notifications for `ttl` instead of [`DEFAULT_TTL`].
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Takes `id` for an attempt that may run until `until`, unless a completed record or
    /// another attempt's unexpired one holds it. One conditional write.
    pub async fn begin(
        &self,
        id: &str,
        now: SystemTime,
        until: SystemTime,
    ) -> Result<Begin, StoreError> {
        let item = HashMap::from([
            ("id".to_owned(), AttributeValue::S(id.to_owned())),
            (
                "status".to_owned(),
                AttributeValue::S(IN_PROGRESS.to_owned()),
            ),
            ("expiration".to_owned(), seconds(now + self.ttl)),
            ("in_progress_expiration".to_owned(), millis(until)),
        ]);
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(
                "attribute_not_exists(#id) OR #expiration < :now \
                 OR (#status = :in_progress AND #in_progress_expiration < :now_ms)",
            )
            .expression_attribute_names("#id", "id")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#expiration", "expiration")
            .expression_attribute_names("#in_progress_expiration", "in_progress_expiration")
            .expression_attribute_values(":now", seconds(now))
            .expression_attribute_values(":now_ms", millis(now))
            .expression_attribute_values(":in_progress", AttributeValue::S(IN_PROGRESS.to_owned()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        match put.send().await {
            Ok(_) => Ok(Begin::Run),
            Err(error) => match error.into_service_error() {
                PutItemError::ConditionalCheckFailedException(held) => {
                    let status = held.item().and_then(|i| i.get("status"));
                    let completed = status
                        .and_then(|s| s.as_s().ok())
                        .is_some_and(|s| s == COMPLETED);
                    // A record that vanished between the write and its answer: try later.
                    Ok(if completed {
                        Begin::Completed
                    } else {
                        Begin::InProgress
                    })
                }
                other => Err(StoreError(DisplayErrorContext(&other).to_string())),
            },
        }
    }

    /// Records `id` as processed, for the TTL from `now`.
    pub async fn complete(&self, id: &str, now: SystemTime) -> Result<(), StoreError> {
        let item = HashMap::from([
            ("id".to_owned(), AttributeValue::S(id.to_owned())),
            ("status".to_owned(), AttributeValue::S(COMPLETED.to_owned())),
            ("expiration".to_owned(), seconds(now + self.ttl)),
        ]);
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item));
        put.send()
            .await
            .map(drop)
            .map_err(|e| StoreError(DisplayErrorContext(&e).to_string()))
    }

    /// Deletes the in-progress record of an attempt that failed, so that its retry runs.
    pub async fn release(&self, id: &str) -> Result<(), StoreError> {
        let delete = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("id", AttributeValue::S(id.to_owned()))
            .condition_expression("#status = :in_progress")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":in_progress", AttributeValue::S(IN_PROGRESS.to_owned()));
        match delete.send().await {
            Ok(_) => Ok(()),
            Err(error) => {
                let error = error.into_service_error();
                // Completed meanwhile by another attempt (after this one's expiry): keep it.
                if error.is_conditional_check_failed_exception() {
                    return Ok(());
                }
                Err(StoreError(DisplayErrorContext(&error).to_string()))
            }
        }
    }
}

fn since_epoch(time: SystemTime) -> Duration {
    time.duration_since(UNIX_EPOCH).unwrap_or_default()
}

/// Unix seconds: the form DynamoDB's TTL reads.
fn seconds(time: SystemTime) -> AttributeValue {
    AttributeValue::N(since_epoch(time).as_secs().to_string())
}

fn millis(time: SystemTime) -> AttributeValue {
    AttributeValue::N(since_epoch(time).as_millis().to_string())
}
