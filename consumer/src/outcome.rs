//! What became of each message of a batch, and the partial batch response made of it
//! (<https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html>).

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse};

/// What became of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The handler ran and succeeded.
    Processed,
    /// Processed before: acknowledged without running the handler.
    Duplicate,
    /// Another attempt holds the notification now: returned, to be tried again.
    InProgress,
    /// An earlier message of its group (its FIFO group, or another copy of its notification)
    /// was returned: returned too, not run, so that the group's order holds.
    Behind,
    /// Not decodable, the handler failed, or the idempotency table did not answer: returned.
    Failed(String),
    /// Failed on its last receive, on a FIFO queue: sent to the dead-letter queue by the
    /// consumer, so that its group's later messages run (`dead_letter.rs`).
    DeadLettered(String),
}

impl Outcome {
    /// Whether SQS must deliver the message again.
    pub fn returns(&self) -> bool {
        !matches!(self, Outcome::Processed | Outcome::Duplicate | Outcome::DeadLettered(_))
    }
}

/// What became of each message of a batch, in the batch's order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Report {
    pub outcomes: Vec<(String, Outcome)>,
}

impl Report {
    /// The partial batch response: the messages to deliver again.
    pub fn response(&self) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        for (message_id, _) in self.outcomes.iter().filter(|(_, o)| o.returns()) {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = message_id.clone();
            response.batch_item_failures.push(failure);
        }
        response
    }

    /// How many messages had an outcome `like` this one.
    pub fn count(&self, like: fn(&Outcome) -> bool) -> usize {
        self.outcomes.iter().filter(|(_, o)| like(o)).count()
    }
}
