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
//! The table's partition key is `id` (a string): the notification's `nylas-id` after a prefix
//! that names the consumer, by default the function's name (`<function>#<nylas-id>`), as
//! Powertools puts the function's name in its keys; so two consumers that share a table each
//! run every notification. `expiration` is its TTL attribute.
//!
//! Records written before the prefix (version 0.1, bare `nylas-id` keys) are not read: a
//! notification completed under one and delivered again afterwards runs once more. Nylas
//! retries within 20 minutes, so only what is in flight during the upgrade can; set the prefix
//! to `""` ([`Idempotency::with_key_prefix`]) to keep reading them.

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
    prefix: String,
}

impl Idempotency {
    /// Records in `table`, kept [`DEFAULT_TTL`], keyed `<function name>#<nylas-id>`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        let function = nylas_sqs_contract::emf::function_name();
        Self { client, table: table.into(), ttl: DEFAULT_TTL, prefix: format!("{function}#") }
    }

    /// Keys records `<prefix>#<nylas-id>` instead of with the function's name; `""` keys them
    /// with the bare `nylas-id`, as version 0.1 did.
    pub fn with_key_prefix(mut self, prefix: impl Into<String>) -> Self {
        let prefix = prefix.into();
        self.prefix = match prefix.is_empty() {
            true => prefix,
            false => format!("{prefix}#"),
        };
        self
    }

    /// The table's key for notification `id`.
    pub fn key(&self, id: &str) -> String {
        format!("{}{id}", self.prefix)
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
            ("id".to_owned(), AttributeValue::S(self.key(id))),
            ("status".to_owned(), AttributeValue::S(IN_PROGRESS.to_owned())),
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
                    let completed =
                        status.and_then(|s| s.as_s().ok()).is_some_and(|s| s == COMPLETED);
                    // A record that vanished between the write and its answer: try later.
                    Ok(if completed { Begin::Completed } else { Begin::InProgress })
                }
                other => Err(StoreError(DisplayErrorContext(&other).to_string())),
            },
        }
    }

    /// Records `id` as processed, for the TTL from `now`.
    pub async fn complete(&self, id: &str, now: SystemTime) -> Result<(), StoreError> {
        let item = HashMap::from([
            ("id".to_owned(), AttributeValue::S(self.key(id))),
            ("status".to_owned(), AttributeValue::S(COMPLETED.to_owned())),
            ("expiration".to_owned(), seconds(now + self.ttl)),
        ]);
        let put = self.client.put_item().table_name(&self.table).set_item(Some(item));
        put.send().await.map(drop).map_err(|e| StoreError(DisplayErrorContext(&e).to_string()))
    }

    /// Deletes the in-progress record of an attempt that failed, so that its retry runs.
    pub async fn release(&self, id: &str) -> Result<(), StoreError> {
        let delete = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("id", AttributeValue::S(self.key(id)))
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use aws_sdk_dynamodb::config::retry::RetryConfig;
    use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
    use aws_sdk_dynamodb::operation::delete_item::{DeleteItemError, DeleteItemOutput};
    use aws_sdk_dynamodb::operation::put_item::{PutItemInput, PutItemOutput};
    use aws_sdk_dynamodb::types::error::{ConditionalCheckFailedException, InternalServerError};
    use aws_smithy_mocks::{mock, MockResponse, MockResponseInterceptor, Rule, RuleMode};
    use std::sync::{Arc, Mutex};

    const NOW: Duration = Duration::from_secs(1_700_000_000);

    fn at(since_epoch: Duration) -> SystemTime {
        UNIX_EPOCH + since_epoch
    }

    pub(crate) fn store(rules: &[&Rule]) -> Idempotency {
        let mut interceptor = MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny);
        for rule in rules {
            interceptor = interceptor.with_rule(rule);
        }
        let config = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "test"))
            .http_client(aws_smithy_mocks::create_mock_http_client())
            .interceptor(interceptor)
            .retry_config(RetryConfig::disabled())
            .build();
        Idempotency::new(Client::from_conf(config), "records").with_key_prefix("consumer")
    }

    /// A `PutItem` rule that keeps what it was sent and answers with `answer`.
    pub(crate) fn put(
        sent: &Arc<Mutex<Vec<PutItemInput>>>,
        answer: impl Fn() -> Answer + Send + Sync + 'static,
    ) -> Rule {
        let sent = Arc::clone(sent);
        mock!(Client::put_item).then_compute_response(move |input| {
            sent.lock().unwrap().push(input.clone());
            answer()
        })
    }

    pub(crate) type Answer = MockResponse<PutItemOutput, PutItemError>;

    pub(crate) fn stored() -> Answer {
        MockResponse::Output(PutItemOutput::builder().build())
    }

    fn down() -> Answer {
        let error = InternalServerError::builder().message("down").build();
        MockResponse::Error(PutItemError::InternalServerError(error))
    }

    fn held(status: Option<&str>) -> Answer {
        let item =
            status.map(|s| HashMap::from([("status".to_owned(), AttributeValue::S(s.to_owned()))]));
        let failed = ConditionalCheckFailedException::builder().set_item(item).build();
        MockResponse::Error(PutItemError::ConditionalCheckFailedException(failed))
    }

    fn number(item: &HashMap<String, AttributeValue>, name: &str) -> u128 {
        item[name].as_n().unwrap().parse().unwrap()
    }

    #[tokio::test]
    async fn begin_takes_the_id_until_the_invocation_ends_unless_a_live_record_holds_it() {
        let sent = Arc::new(Mutex::new(Vec::new()));
        let rule = put(&sent, stored);
        let until = at(NOW + Duration::from_secs(30));
        let begun = store(&[&rule]).begin("n-1", at(NOW), until).await;
        assert_eq!(begun, Ok(Begin::Run));
        let input = sent.lock().unwrap().remove(0);
        assert_eq!(input.table_name(), Some("records"));
        let item = input.item().unwrap();
        assert_eq!(item["id"].as_s(), Ok(&"consumer#n-1".to_owned()));
        assert_eq!(item["status"].as_s(), Ok(&IN_PROGRESS.to_owned()));
        assert_eq!(number(item, "expiration"), (NOW + DEFAULT_TTL).as_secs().into());
        assert_eq!(number(item, "in_progress_expiration"), (NOW.as_millis() + 30_000));
        let condition = input.condition_expression().unwrap();
        let clauses = [
            "attribute_not_exists(#id)",
            "#expiration < :now",
            "(#status = :in_progress AND #in_progress_expiration < :now_ms)",
        ];
        assert_eq!(condition.split(" OR ").collect::<Vec<_>>(), clauses);
        let values = input.expression_attribute_values().unwrap();
        assert_eq!(values[":now"].as_n(), Ok(&NOW.as_secs().to_string()));
        assert_eq!(values[":now_ms"].as_n(), Ok(&NOW.as_millis().to_string()));
        assert_eq!(values[":in_progress"].as_s(), Ok(&IN_PROGRESS.to_owned()));
        let names = input.expression_attribute_names().unwrap();
        for (name, attribute) in
            [("#id", "id"), ("#status", "status"), ("#expiration", "expiration")]
        {
            assert_eq!(names[name], attribute);
        }
        assert_eq!(names["#in_progress_expiration"], "in_progress_expiration");
        let asks = input.return_values_on_condition_check_failure();
        assert_eq!(asks, Some(&ReturnValuesOnConditionCheckFailure::AllOld));
    }

    #[tokio::test]
    async fn a_held_record_says_whether_its_notification_completed() {
        let sent = Arc::new(Mutex::new(Vec::new()));
        let cases = [
            (Some(COMPLETED), Begin::Completed),
            (Some(IN_PROGRESS), Begin::InProgress),
            (None, Begin::InProgress),
        ];
        for (status, expected) in cases {
            let rule = put(&sent, move || held(status));
            let begun = store(&[&rule]).begin("n-1", at(NOW), at(NOW)).await;
            assert_eq!(begun, Ok(expected), "{status:?}");
        }
        let failing = put(&sent, down);
        let begun = store(&[&failing]).begin("n-1", at(NOW), at(NOW)).await;
        assert!(begun.unwrap_err().to_string().starts_with("the idempotency table did not answer"));
    }

    #[tokio::test]
    async fn complete_keeps_the_record_for_the_ttl() {
        let sent = Arc::new(Mutex::new(Vec::new()));
        let rule = put(&sent, stored);
        let hour = Duration::from_secs(3600);
        let store = store(&[&rule]).with_ttl(hour);
        assert_eq!(store.table(), "records");
        assert_eq!(store.complete("n-1", at(NOW)).await, Ok(()));
        let input = sent.lock().unwrap().remove(0);
        let item = input.item().unwrap();
        assert_eq!(item["status"].as_s(), Ok(&COMPLETED.to_owned()));
        assert_eq!(item["id"].as_s(), Ok(&"consumer#n-1".to_owned()));
        assert_eq!(number(item, "expiration"), (NOW + hour).as_secs().into());
        let failing = put(&sent, down);
        let store = self::store(&[&failing]);
        assert!(store.complete("n-1", at(NOW)).await.is_err());
    }

    #[tokio::test]
    async fn release_deletes_only_a_record_still_in_progress() {
        let deleted = mock!(Client::delete_item)
            .match_requests(|input| {
                input.key().and_then(|k| k.get("id"))
                    == Some(&AttributeValue::S("consumer#n-1".to_owned()))
                    && input.condition_expression() == Some("#status = :in_progress")
                    && input.table_name() == Some("records")
            })
            .then_output(|| DeleteItemOutput::builder().build());
        assert_eq!(store(&[&deleted]).release("n-1").await, Ok(()));
        assert_eq!(deleted.num_calls(), 1);
        let completed_meanwhile = mock!(Client::delete_item).then_error(|| {
            let failed = ConditionalCheckFailedException::builder().build();
            DeleteItemError::ConditionalCheckFailedException(failed)
        });
        assert_eq!(store(&[&completed_meanwhile]).release("n-1").await, Ok(()));
        let failing = mock!(Client::delete_item).then_error(|| {
            let error = InternalServerError::builder().message("down").build();
            DeleteItemError::InternalServerError(error)
        });
        assert!(store(&[&failing]).release("n-1").await.is_err());
    }

    /// Two consumers that share a table each run every notification: a key names its
    /// function by default; a prefix of `""` reads version 0.1's bare keys.
    #[test]
    fn keys_name_the_function_unless_told_otherwise() {
        let client = store(&[]).client;
        let default = Idempotency::new(client.clone(), "records");
        let function = nylas_sqs_contract::emf::function_name();
        assert_eq!(default.key("n-1"), format!("{function}#n-1"));
        let other = default.clone().with_key_prefix("billing");
        assert_eq!(other.key("n-1"), "billing#n-1");
        assert_eq!(default.with_key_prefix("").key("n-1"), "n-1");
    }
}
