//! Where notifications go, as one small trait: deliver these notifications, all of them or
//! fail. [`crate::sqs::SqsQueue`] is the implementation the function runs with; to send
//! somewhere else, implement [`Queue`] for it and build it in `main.rs`.

use crate::notification::Notification;
use std::future::Future;

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
    TooLarge {
        index: usize,
        size: usize,
        limit: usize,
    },
}

/// What delivering took, for the log line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delivered {
    /// Notifications the queue refused at first and took on a later attempt.
    pub retried: usize,
}

/// Something that stores notifications.
pub trait Queue {
    /// Stores every notification, or fails: `Ok` means all of them are in the queue.
    fn deliver(
        &self,
        notifications: &[Notification<'_>],
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
            Self {
                replies: Mutex::new(replies.into_iter().collect()),
                ..Self::default()
            }
        }

        pub fn stored(&self) -> Vec<Stored> {
            self.stored
                .lock()
                .expect("no test panics holding it")
                .clone()
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
        ) -> Result<Delivered, QueueError> {
            let reply = self.replies.lock().expect("no panics").pop_front();
            match reply.unwrap_or(Reply::Accept) {
                Reply::Accept => {}
                Reply::Fail(error) => return Err(error),
                Reply::Hang => std::future::pending().await,
            }
            let mut stored = self.stored.lock().expect("no panics");
            stored.extend(notifications.iter().map(|n| Stored {
                bytes: n.bytes.to_vec(),
                kind: n.kind.clone(),
                id: n.id.clone(),
                grant_id: n.grant_id.clone(),
            }));
            Ok(Delivered::default())
        }
    }
}
