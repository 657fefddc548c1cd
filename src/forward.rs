//! Forwarding a request's messages: plan the batches, send them, and send again the entries
//! SQS reported as failed (`SendMessageBatch` answers 200 even when some entries failed).
//! Success means every message is in the queue; anything less is an error, which the
//! handler answers with 503 so that Nylas retries the whole delivery.

use crate::batch::{self, TooLarge};
use crate::message::Message;
use crate::queue::{Queue, QueueError};
use std::time::Duration;

/// How often and how patiently failed entries are sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Attempts per batch, the first included.
    pub attempts: u32,
    /// Wait before the second attempt; it doubles for each one after.
    pub backoff: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Self {
            attempts: 3,
            backoff: Duration::from_millis(50),
        }
    }
}

/// Why not every message reached the queue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ForwardError {
    #[error(transparent)]
    TooLarge(#[from] TooLarge),
    #[error("SendMessageBatch failed: {0}")]
    Queue(#[from] QueueError),
    #[error("{failed} entries were still refused after {attempts} attempts")]
    EntriesFailed { failed: usize, attempts: u32 },
}

/// What forwarding took.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Report {
    pub batches: usize,
    /// Entries sent again after SQS reported them failed.
    pub retried: usize,
}

/// Sends every message, in order. A message that can never fit in SQS is not sent; the others
/// still are, and then it is reported, so that only what cannot be stored is lost.
pub async fn forward<Q: Queue>(
    queue: &Q,
    messages: &[Message<'_>],
    retry: Retry,
) -> Result<Report, ForwardError> {
    let sizes: Vec<usize> = messages.iter().map(Message::size).collect();
    let too_large = sizes
        .iter()
        .position(|&size| size > batch::MAX_BYTES)
        .map(|index| TooLarge {
            index,
            size: sizes[index],
        });
    let (fitting, fitting_sizes): (Vec<&Message<'_>>, Vec<usize>) = messages
        .iter()
        .zip(&sizes)
        .filter(|(_, &size)| size <= batch::MAX_BYTES)
        .unzip();
    let batches = batch::plan(&fitting_sizes)?;
    let mut report = Report {
        batches: batches.len(),
        retried: 0,
    };
    for range in batches {
        let mut pending: Vec<&Message<'_>> = fitting[range].to_vec();
        let mut backoff = retry.backoff;
        for attempt in 1..=retry.attempts {
            let failed = queue.send_batch(&pending).await?;
            if failed.is_empty() {
                break;
            }
            if attempt == retry.attempts {
                return Err(ForwardError::EntriesFailed {
                    failed: failed.len(),
                    attempts: retry.attempts,
                });
            }
            pending = failed
                .iter()
                .filter_map(|&i| pending.get(i).copied())
                .collect();
            report.retried += pending.len();
            tokio::time::sleep(backoff).await;
            backoff *= 2;
        }
    }
    match too_large {
        Some(too_large) => Err(ForwardError::TooLarge(too_large)),
        None => Ok(report),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::QueueKind;
    use crate::notification::split;
    use crate::queue::memory::{MemoryQueue, Reply};

    const RETRY: Retry = Retry {
        attempts: 3,
        backoff: Duration::from_millis(1),
    };

    fn v2_body(deltas: usize) -> String {
        let deltas: Vec<String> = (0..deltas)
            .map(|i| format!(r#"{{"type":"t","n":{i}}}"#))
            .collect();
        format!(r#"{{"deltas":[{}]}}"#, deltas.join(","))
    }

    fn messages(body: &str) -> Vec<Message<'_>> {
        let notifications = split(body.as_bytes());
        notifications
            .iter()
            .map(|n| Message::new(n, QueueKind::Standard))
            .collect()
    }

    #[tokio::test]
    async fn every_message_is_sent_in_order_in_batches_of_ten() {
        let body = v2_body(25);
        let queue = MemoryQueue::default();
        let report = forward(&queue, &messages(&body), RETRY).await;
        assert_eq!(
            report,
            Ok(Report {
                batches: 3,
                retried: 0
            })
        );
        assert_eq!(queue.calls(), vec![10, 10, 5]);
        let expected: Vec<String> = (0..25)
            .map(|i| format!(r#"{{"type":"t","n":{i}}}"#))
            .collect();
        assert_eq!(queue.bodies(), expected);
    }

    #[tokio::test]
    async fn failed_entries_are_sent_again_and_succeed() {
        let body = v2_body(4);
        let queue = MemoryQueue::replying([Reply::FailEntries(vec![1, 3])]);
        let report = forward(&queue, &messages(&body), RETRY).await;
        assert_eq!(
            report,
            Ok(Report {
                batches: 1,
                retried: 2
            })
        );
        assert_eq!(queue.calls(), vec![4, 2]);
        assert_eq!(queue.bodies().len(), 4);
    }

    #[tokio::test]
    async fn entries_failing_every_attempt_are_an_error() {
        let body = v2_body(2);
        let fail_first = || Reply::FailEntries(vec![0]);
        let queue = MemoryQueue::replying([fail_first(), fail_first(), fail_first()]);
        let result = forward(&queue, &messages(&body), RETRY).await;
        assert_eq!(
            result,
            Err(ForwardError::EntriesFailed {
                failed: 1,
                attempts: 3
            })
        );
        assert_eq!(queue.calls(), vec![2, 1, 1]);
    }

    #[tokio::test]
    async fn a_failed_call_is_an_error() {
        let body = v2_body(2);
        let queue = MemoryQueue::replying([Reply::Fail]);
        let result = forward(&queue, &messages(&body), RETRY).await;
        assert!(matches!(result, Err(ForwardError::Queue(_))));
    }

    #[tokio::test]
    async fn a_message_too_large_for_sqs_is_refused_after_the_others_are_sent() {
        let big = format!(r#"{{"deltas":[1,"{}",3]}}"#, "x".repeat(batch::MAX_BYTES));
        let queue = MemoryQueue::default();
        let result = forward(&queue, &messages(&big), RETRY).await;
        assert!(matches!(
            result,
            Err(ForwardError::TooLarge(TooLarge { index: 1, .. }))
        ));
        assert_eq!(queue.bodies(), ["1", "3"]);
    }
}
