//! Where notifications go, as one small trait: deliver these notifications, all of them or
//! fail. [`crate::sqs::SqsQueue`] is the implementation the function runs with; to send
//! somewhere else, implement [`Queue`] for it and build it in `main.rs`.

use crate::sender::Notification;
use nylas_sqs_contract::archive::Unarchived;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};

/// Why not every notification of a request reached the queue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    /// The service failed or could not be reached. The text comes from the service (an error
    /// code and its message), never from the notifications.
    #[error("the queue failed: {0}")]
    Unavailable(String),
    #[error("{failed} notifications were still refused after {attempts} attempts")]
    StillRefused { failed: usize, attempts: u32 },
    /// The queue refused a notification for a reason that sending it again cannot fix.
    #[error(
        "the queue refused a notification ({0}): check the queue's settings and the \
         function's permissions"
    )]
    Refused(String),
    /// A notification over what the queue can ever take; the others were delivered.
    #[error("notification {index} is {size} bytes, over the queue's limit of {limit}")]
    TooLarge { index: usize, size: usize, limit: usize },
}

/// What delivering took, for the log line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delivered {
    /// Notifications the queue refused at first and took on a later attempt.
    pub retried: usize,
    /// What the queue took and the archive did not, and why.
    pub unarchived: Unarchived,
}

/// Where a request's notifications came from, for finding them again: the receiver's request
/// id and X-Ray trace header (Lambda's, for this invocation), and when it was received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    pub request_id: Option<String>,
    pub trace_header: Option<String>,
    pub received_ms: u64,
}

/// Whether any of one delivery's calls to the queue failed (an error, a timeout, nothing
/// stored), and whether any succeeded, recorded as each ends. Only these decide the breaker: a
/// delivery that ran out of time while every call succeeded says nothing about the queue.
#[derive(Debug, Default)]
pub struct Calls {
    failed: AtomicBool,
    succeeded: AtomicBool,
}

impl Calls {
    pub fn record(&self, succeeded: bool) {
        let ended = if succeeded { &self.succeeded } else { &self.failed };
        ended.store(true, Ordering::Relaxed);
    }

    /// `None` when no call ended; else whether none failed.
    pub fn healthy(&self) -> Option<bool> {
        let failed = self.failed.load(Ordering::Relaxed);
        (failed || self.succeeded.load(Ordering::Relaxed)).then_some(!failed)
    }
}

/// Something that stores notifications.
pub trait Queue {
    /// Stores every notification, or fails: `Ok` means all of them are in the queue. Each
    /// call to the service is recorded in `calls` as it ends.
    fn deliver(
        &self,
        notifications: &[Notification<'_>],
        origin: &Origin,
        calls: &Calls,
    ) -> impl Future<Output = Result<Delivered, QueueError>> + Send;
}

#[cfg(test)]
pub mod memory {
    //! An in-memory [`Queue`] whose failures a test scripts.

    use super::*;
    use std::collections::VecDeque;
    use std::sync::Mutex;

    /// What the next call to `deliver` does.
    #[derive(Debug, Clone)]
    pub enum Reply {
        /// Store every notification.
        Accept,
        /// Fail as a whole, storing nothing.
        Fail(QueueError),
        /// Never answer.
        Hang,
        /// Store batches of 10, each taking this long, one after another.
        Slow(std::time::Duration),
    }

    /// A stored notification, owned.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Stored {
        pub bytes: Vec<u8>,
        pub kind: Option<String>,
        pub id: String,
        pub grant_id: Option<String>,
    }

    /// Stores notifications; follows scripted replies, then accepts.
    #[derive(Debug, Default)]
    pub struct MemoryQueue {
        replies: Mutex<VecDeque<Reply>>,
        stored: Mutex<Vec<Stored>>,
    }

    impl MemoryQueue {
        pub fn replying(replies: impl IntoIterator<Item = Reply>) -> Self {
            Self { replies: Mutex::new(replies.into_iter().collect()), ..Self::default() }
        }

        pub fn stored(&self) -> Vec<Stored> {
            self.stored.lock().expect("no test panics holding it").clone()
        }

        /// The stored notifications' bytes, as text.
        pub fn bodies(&self) -> Vec<String> {
            let stored = self.stored();
            let text = |s: &Stored| String::from_utf8_lossy(&s.bytes).into_owned();
            stored.iter().map(text).collect()
        }
    }

    impl Queue for MemoryQueue {
        async fn deliver(
            &self,
            notifications: &[Notification<'_>],
            _origin: &Origin,
            calls: &Calls,
        ) -> Result<Delivered, QueueError> {
            let reply = self.replies.lock().expect("no panics").pop_front();
            let (batch, each) = match reply.unwrap_or(Reply::Accept) {
                Reply::Accept => (notifications.len().max(1), None),
                Reply::Slow(each) => (10, Some(each)),
                Reply::Hang => std::future::pending().await,
                Reply::Fail(error) => {
                    // A notification too large for the queue is never sent: no call.
                    if !matches!(error, QueueError::TooLarge { .. }) {
                        calls.record(false);
                    }
                    return Err(error);
                }
            };
            for chunk in notifications.chunks(batch) {
                if let Some(each) = each {
                    tokio::time::sleep(each).await;
                }
                calls.record(true);
                let mut stored = self.stored.lock().expect("no panics");
                stored.extend(chunk.iter().map(|n| Stored {
                    bytes: n.bytes.to_vec(),
                    kind: n.kind.clone(),
                    id: n.id.clone(),
                    grant_id: n.group.clone(),
                }));
            }
            Ok(Delivered::default())
        }
    }
}
