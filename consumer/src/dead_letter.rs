//! On a FIFO queue, a poison message goes to the dead-letter queue alone.
//!
//! A message returned behind a failed one of its group is received again with it, so SQS's
//! own redrive would move the whole group's waiting messages with the poison one, none of them
//! run (`ApproximateReceiveCount` grows on every receive). So on a failed message's last
//! receive (`MAX_RECEIVE_COUNT`, the queue's `maxReceiveCount`), the consumer sends it to the
//! dead-letter queue itself, as it came, and goes on with its group. A standard queue's
//! messages do not wait for each other: SQS's redrive moves them, as it would without this.

use aws_lambda_events::event::sqs::SqsMessage;
use aws_sdk_sqs::types::MessageAttributeValue;

/// The dead-letter queue, and the receive that is a message's last.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    client: aws_sdk_sqs::Client,
    queue_url: String,
    max_receive_count: u32,
}

impl DeadLetter {
    pub fn new(client: aws_sdk_sqs::Client, queue_url: String, max_receive_count: u32) -> Self {
        Self { client, queue_url, max_receive_count }
    }

    /// Whether a failed `message` goes to the dead-letter queue now: a FIFO message on its
    /// last receive.
    pub fn takes(&self, message: &SqsMessage) -> bool {
        let count = message.attributes.get("ApproximateReceiveCount");
        let count = count.and_then(|c| c.parse::<u32>().ok());
        message.attributes.contains_key("MessageGroupId")
            && count.is_some_and(|count| count >= self.max_receive_count)
    }

    /// Sends `message` to the dead-letter queue as it came: body, attributes and group.
    pub async fn send(&self, message: &SqsMessage) -> Result<(), String> {
        let mut request = self
            .client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(message.body.as_deref().unwrap_or_default())
            .set_message_group_id(message.attributes.get("MessageGroupId").cloned())
            .set_message_deduplication_id(message.message_id.clone());
        for (name, value) in &message.message_attributes {
            let value = MessageAttributeValue::builder()
                .data_type(value.data_type.as_deref().unwrap_or("String"))
                .set_string_value(value.string_value.clone())
                .build()
                .map_err(|e| e.to_string())?;
            request = request.message_attributes(name, value);
        }
        let sent = request.send().await;
        sent.map(drop).map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(e).to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
    use aws_sdk_sqs::operation::send_message::{SendMessageError, SendMessageOutput};
    use aws_sdk_sqs::types::error::QueueDoesNotExist;
    use aws_smithy_mocks::{mock, MockResponseInterceptor, Rule};
    use std::sync::{Arc, Mutex};

    fn message(group: Option<&str>, count: &str) -> SqsMessage {
        let mut attributes = serde_json::json!({"ApproximateReceiveCount": count});
        if let Some(group) = group {
            attributes["MessageGroupId"] = group.into();
        }
        let text = |v: &str| serde_json::json!({"stringValue": v, "dataType": "String"});
        serde_json::from_value(serde_json::json!({"messageId": "m-1", "body": "{}",
            "attributes": attributes, "messageAttributes": {"nylas-id": text("n-1")}}))
        .expect("an SQS message")
    }

    /// A dead-letter queue whose SQS answers as `rule` says, taking the 5th receive as the last.
    fn dead_letter(rule: &Rule) -> DeadLetter {
        let config = aws_sdk_sqs::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("test", "test", None, None, "test"))
            .http_client(aws_smithy_mocks::create_mock_http_client())
            .interceptor(MockResponseInterceptor::new().with_rule(rule))
            .build();
        DeadLetter::new(aws_sdk_sqs::Client::from_conf(config), "dlq".to_owned(), 5)
    }

    #[test]
    fn only_a_fifo_message_on_its_last_receive_is_taken() {
        let dead = dead_letter(
            &mock!(aws_sdk_sqs::Client::send_message)
                .then_output(|| SendMessageOutput::builder().build()),
        );
        assert!(dead.takes(&message(Some("g"), "5")));
        assert!(dead.takes(&message(Some("g"), "6")));
        assert!(!dead.takes(&message(Some("g"), "4")), "not its last receive");
        assert!(!dead.takes(&message(None, "5")), "a standard queue's: SQS's redrive");
        assert!(!dead.takes(&message(Some("g"), "x")));
    }

    #[tokio::test]
    async fn a_message_is_sent_as_it_came_and_a_refusal_is_an_error() {
        let sent = Arc::new(Mutex::new(Vec::new()));
        let seen = sent.clone();
        let rule = mock!(aws_sdk_sqs::Client::send_message).then_compute_output(move |input| {
            let attribute = input.message_attributes().and_then(|a| a.get("nylas-id"));
            seen.lock().unwrap().push(format!(
                "{} {} {} {} {}",
                input.queue_url().unwrap_or("-"),
                input.message_body().unwrap_or("-"),
                input.message_group_id().unwrap_or("-"),
                input.message_deduplication_id().unwrap_or("-"),
                attribute.and_then(|a| a.string_value()).unwrap_or("-"),
            ));
            SendMessageOutput::builder().build()
        });
        let fifo = message(Some("g"), "5");
        assert_eq!(dead_letter(&rule).send(&fifo).await, Ok(()));
        assert_eq!(*sent.lock().unwrap(), ["dlq {} g m-1 n-1"]);
        let refused = mock!(aws_sdk_sqs::Client::send_message).then_error(|| {
            SendMessageError::QueueDoesNotExist(
                QueueDoesNotExist::builder().message("no such queue").build(),
            )
        });
        let error = dead_letter(&refused).send(&fifo).await.unwrap_err();
        assert!(error.contains("no such queue"), "{error}");
    }
}
