//! One deadline per request. Lambda kills an invocation at its deadline without letting it answer,
//! so each request derives the instant it must have answered by from the runtime's deadline (less
//! a reserve for writing the answer) and passes it down through every store and WeChat call:
//! each call is cut at the deadline, and no retry or wait starts when it cannot finish in time.
//! The caller then gets a clear 503/504 envelope instead of Lambda's bare timeout.

use std::future::Future;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    at: Instant,
}

impl Deadline {
    /// `budget` from now. A budget too large for the clock is capped at a day, which no Lambda
    /// invocation reaches.
    pub fn after(budget: Duration) -> Self {
        let now = Instant::now();
        let at = now
            .checked_add(budget)
            .unwrap_or_else(|| now + Duration::from_secs(86_400));
        Deadline { at }
    }

    /// From Lambda's deadline (Unix ms, `0` when the runtime gave none) and the wall clock (Unix
    /// ms): the time left less `reserve`, or `fallback` when there is no usable deadline:
    /// handlers called directly (tests), or a deadline already past when the request starts,
    /// which Lambda never hands out but emulators do (`cargo lambda watch` sends its timeout,
    /// 600000, instead of an instant).
    pub fn from_lambda(
        deadline_ms: u64,
        now_ms: u64,
        reserve: Duration,
        fallback: Duration,
    ) -> Self {
        if deadline_ms <= now_ms {
            return Deadline::after(fallback);
        }
        let left = Duration::from_millis(deadline_ms.saturating_sub(now_ms));
        Deadline::after(left.saturating_sub(reserve))
    }

    /// This deadline, or `d` from now if that comes first.
    pub fn within(&self, d: Duration) -> Deadline {
        let other = Deadline::after(d);
        if other.at < self.at {
            other
        } else {
            *self
        }
    }

    /// The instant `d` before this deadline: for work that must leave time for a step after it.
    /// (Already past, it allows nothing: `remaining` saturates at zero.)
    pub fn before(&self, d: Duration) -> Deadline {
        Deadline {
            at: self.at.checked_sub(d).unwrap_or_else(Instant::now),
        }
    }

    pub fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    /// Whether something that takes up to `d` can finish before the deadline.
    pub fn allows(&self, d: Duration) -> bool {
        self.remaining() >= d
    }

    /// `d`, or less when the deadline comes first.
    pub fn bound(&self, d: Duration) -> Duration {
        d.min(self.remaining())
    }

    /// Runs `fut` until the deadline; `Err(Expired)` when the deadline cut it.
    pub async fn run<T>(&self, fut: impl Future<Output = T>) -> Result<T, Expired> {
        tokio::time::timeout(self.remaining(), fut)
            .await
            .map_err(|_| Expired)
    }

    /// Sleeps `d`, or returns `false` at once when the deadline does not leave `d` plus `after`
    /// (what must still fit once the pause is over).
    pub async fn pause(&self, d: Duration, after: Duration) -> bool {
        if !self.allows(d + after) {
            return false;
        }
        tokio::time::sleep(d).await;
        true
    }
}

/// The request's deadline was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the request's time ran out")]
pub struct Expired;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambda_deadline_less_the_reserve() {
        let now = 1_000_000;
        let d = Deadline::from_lambda(
            now + 3_000,
            now,
            Duration::from_millis(500),
            Duration::from_secs(60),
        );
        let left = d.remaining();
        assert!(
            left <= Duration::from_millis(2_500) && left > Duration::from_millis(2_400),
            "{left:?}"
        );
        // Past before the request started (an emulator's relative value): the fallback budget.
        let relative = Deadline::from_lambda(
            600_000,
            now,
            Duration::from_millis(500),
            Duration::from_secs(7),
        );
        assert!(relative.remaining() > Duration::from_secs(6));
        // Inside the reserve: nothing left, nothing allowed.
        let past =
            Deadline::from_lambda(now + 100, now, Duration::from_millis(500), Duration::ZERO);
        assert_eq!(past.remaining(), Duration::ZERO);
        assert!(!past.allows(Duration::from_millis(1)));
        assert!(past.allows(Duration::ZERO));
        // No deadline from the runtime: the fallback budget.
        let none =
            Deadline::from_lambda(0, now, Duration::from_millis(500), Duration::from_secs(7));
        assert!(none.remaining() > Duration::from_secs(6));
        // A budget the clock cannot hold does not panic.
        let huge = Deadline::after(Duration::MAX);
        assert!(huge.allows(Duration::from_secs(3600)));
    }

    #[test]
    fn bound_is_the_smaller() {
        let d = Deadline::after(Duration::from_secs(2));
        assert!(d.within(Duration::from_millis(10)).remaining() <= Duration::from_millis(10));
        assert!(d.within(Duration::from_secs(10)).remaining() <= Duration::from_secs(2));
        let early = d.before(Duration::from_millis(500)).remaining();
        assert!(early <= Duration::from_millis(1500) && early > Duration::from_millis(1400));
        assert_eq!(d.before(Duration::from_secs(5)).remaining(), Duration::ZERO);
        assert_eq!(
            d.bound(Duration::from_millis(10)),
            Duration::from_millis(10)
        );
        assert!(d.bound(Duration::from_secs(10)) <= Duration::from_secs(2));
    }

    #[tokio::test]
    async fn run_cuts_at_the_deadline_and_pause_refuses_what_cannot_fit() {
        let d = Deadline::after(Duration::from_millis(50));
        let started = Instant::now();
        let r = d.run(tokio::time::sleep(Duration::from_secs(5))).await;
        assert_eq!(r, Err(Expired));
        assert!(started.elapsed() < Duration::from_secs(1));
        let d = Deadline::after(Duration::from_millis(100));
        assert!(
            !d.pause(Duration::from_millis(80), Duration::from_millis(50))
                .await
        );
        assert!(
            d.pause(Duration::from_millis(10), Duration::from_millis(10))
                .await
        );
    }
}
