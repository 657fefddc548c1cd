//! A circuit breaker in front of the queue, one per instance: while the queue is down, every
//! POST gets 503 at once instead of spending seconds on a send that will fail.
//!
//! - Closed: every delivery goes to the queue.
//! - A delivery fails (the queue errs, refuses, or times out): open.
//! - Open: a delivery is refused at once, except one probe every [`PROBE_EVERY`].
//! - The probe succeeds: closed. It fails: open for another [`PROBE_EVERY`].
//!
//! Nothing is kept or sent again here: a refused delivery is answered 503 and Nylas sends it
//! again, so the breaker cannot store a notification twice.

use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

/// How long the breaker stays open before it lets one delivery through to try the queue.
pub const PROBE_EVERY: Duration = Duration::from_secs(5);

/// Refused without trying: the queue failed `since` ago and no probe has succeeded since.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the queue failed {since:?} ago: answered without trying it (one delivery every \
     {PROBE_EVERY:?} tries the queue)"
)]
pub struct Open {
    pub since: Duration,
}

#[derive(Debug, Default)]
pub struct Breaker {
    /// When the queue first failed, and when the next probe may go; `None` while closed.
    open: Mutex<Option<(Instant, Instant)>>,
}

impl Breaker {
    /// Whether a delivery may go to the queue now: always while closed; while open, the first
    /// delivery once the probe time has come, and that one pushes the next probe time on (so
    /// a probe that never reports does not hold the breaker open for ever).
    pub fn admit(&self) -> Result<(), Open> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        match open.as_mut() {
            None => Ok(()),
            Some((_, probe_at)) if now >= *probe_at => {
                *probe_at = now + PROBE_EVERY;
                Ok(())
            }
            Some((failed_at, _)) => Err(Open { since: now - *failed_at }),
        }
    }

    /// What an admitted delivery came to: a success closes the breaker, a failure opens it.
    pub fn record(&self, delivered: bool) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        *open = match (delivered, *open) {
            (true, _) => None,
            (false, Some((failed_at, _))) => Some((failed_at, now + PROBE_EVERY)),
            (false, None) => Some((now, now + PROBE_EVERY)),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// A breaker whose queue has just failed.
    fn opened() -> Breaker {
        let breaker = Breaker::default();
        breaker.record(false);
        breaker
    }

    /// A breaker that has just let its first probe through.
    async fn probing() -> Breaker {
        let breaker = opened();
        tokio::time::advance(PROBE_EVERY).await;
        assert_eq!(breaker.admit(), Ok(()), "the probe");
        breaker
    }

    #[tokio::test(start_paused = true)]
    async fn closed_breaker_admits_every_delivery() {
        let breaker = Breaker::default();
        for _ in 0..3 {
            assert_eq!(breaker.admit(), Ok(()));
            breaker.record(true);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_opens_it_until_the_probe_time() {
        let breaker = opened();
        tokio::time::advance(PROBE_EVERY - MS).await;
        assert_eq!(breaker.admit(), Err(Open { since: PROBE_EVERY - MS }));
        tokio::time::advance(MS).await;
        assert_eq!(breaker.admit(), Ok(()), "the probe");
        assert!(breaker.admit().is_err(), "one probe at a time");
    }

    #[tokio::test(start_paused = true)]
    async fn a_probe_that_succeeds_closes_it() {
        let breaker = probing().await;
        breaker.record(true);
        assert_eq!(breaker.admit(), Ok(()));
        assert_eq!(breaker.admit(), Ok(()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_probe_that_fails_keeps_it_open_and_counts_from_the_first_failure() {
        let breaker = probing().await;
        tokio::time::advance(2 * MS).await;
        breaker.record(false);
        tokio::time::advance(PROBE_EVERY - MS).await;
        let since = PROBE_EVERY * 2 + MS;
        assert_eq!(breaker.admit(), Err(Open { since }));
        tokio::time::advance(MS).await;
        assert_eq!(breaker.admit(), Ok(()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_probe_that_never_reports_lets_another_through_later() {
        let breaker = probing().await;
        tokio::time::advance(PROBE_EVERY - MS).await;
        assert!(breaker.admit().is_err());
        tokio::time::advance(MS).await;
        assert_eq!(breaker.admit(), Ok(()));
    }
}
