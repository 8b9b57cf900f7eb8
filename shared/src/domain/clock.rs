//! The gateway's clock: the system clock in Unix milliseconds, with an offset tests move forward
//! together with the simulator's to play out hours of token lifecycle in seconds.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Clone, Default, Debug)]
pub struct Clock {
    offset_ms: Arc<AtomicI64>,
}

impl Clock {
    pub fn now_ms(&self) -> u64 {
        now_ms().saturating_add_signed(self.offset_ms.load(Ordering::Relaxed))
    }

    pub fn advance(&self, d: Duration) {
        self.offset_ms
            .fetch_add(d.as_millis() as i64, Ordering::Relaxed);
    }
}

/// The system clock, Unix milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A duration in whole milliseconds, saturating.
pub fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
