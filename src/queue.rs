//! The queue notifications are forwarded to, as a small trait: SQS in production
//! ([`crate::sqs::SqsQueue`]), an in-memory queue in unit tests.

use crate::message::Message;
use std::future::Future;

/// Why a whole `SendMessageBatch` call failed. The text comes from the queue service (an
/// error code and its message), never from the notifications.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct QueueError(pub String);

/// Something that stores batches of messages.
pub trait Queue {
    /// Sends one batch (at most 10 messages and 1 MiB, as planned by [`crate::batch::plan`]).
    /// Returns the positions in `batch` of the entries that were not stored; an error means
    /// the call failed as a whole.
    fn send_batch(
        &self,
        batch: &[&Message<'_>],
    ) -> impl Future<Output = Result<Vec<usize>, QueueError>> + Send;
}

#[cfg(test)]
pub mod memory {
    //! An in-memory [`Queue`] whose failures a test scripts.

    use super::*;
    use std::collections::VecDeque;
    use std::sync::Mutex;

    /// What the next call to `send_batch` does.
    #[derive(Debug, Clone)]
    pub enum Reply {
        /// Store every entry.
        Accept,
        /// Fail the call as a whole.
        Fail,
        /// Store every entry but those at these positions.
        FailEntries(Vec<usize>),
        /// Never answer.
        Hang,
    }

    /// A stored message's attributes, by name.
    pub type StoredAttributes = Vec<(&'static str, String)>;

    /// Stores message bodies and attributes; follows scripted replies, then accepts.
    #[derive(Debug, Default)]
    pub struct MemoryQueue {
        replies: Mutex<VecDeque<Reply>>,
        stored: Mutex<Vec<(String, StoredAttributes)>>,
        calls: Mutex<Vec<usize>>,
    }

    impl MemoryQueue {
        pub fn replying(replies: impl IntoIterator<Item = Reply>) -> Self {
            Self {
                replies: Mutex::new(replies.into_iter().collect()),
                ..Self::default()
            }
        }

        pub fn bodies(&self) -> Vec<String> {
            let stored = self.stored.lock().expect("no test panics holding the lock");
            stored.iter().map(|(body, _)| body.clone()).collect()
        }

        pub fn attributes(&self) -> Vec<StoredAttributes> {
            let stored = self.stored.lock().expect("no test panics holding the lock");
            stored
                .iter()
                .map(|(_, attributes)| attributes.clone())
                .collect()
        }

        /// The number of entries in each call, in order.
        pub fn calls(&self) -> Vec<usize> {
            self.calls
                .lock()
                .expect("no test panics holding the lock")
                .clone()
        }
    }

    impl Queue for MemoryQueue {
        async fn send_batch(&self, batch: &[&Message<'_>]) -> Result<Vec<usize>, QueueError> {
            self.calls.lock().expect("no panics").push(batch.len());
            let reply = self.replies.lock().expect("no panics").pop_front();
            let failed = match reply.unwrap_or(Reply::Accept) {
                Reply::Accept => vec![],
                Reply::Fail => return Err(QueueError("scripted failure".to_owned())),
                Reply::FailEntries(failed) => failed,
                Reply::Hang => std::future::pending().await,
            };
            let mut stored = self.stored.lock().expect("no panics");
            for (position, message) in batch.iter().enumerate() {
                if !failed.contains(&position) {
                    let attributes = message.attributes.iter();
                    let attributes = attributes.map(|(name, value)| (name, value.to_owned()));
                    stored.push((message.body.to_string(), attributes.collect()));
                }
            }
            Ok(failed)
        }
    }
}
