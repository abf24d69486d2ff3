//! The emulator's clock: the system's time plus an offset that only tests move.

use std::sync::Mutex;

use acs_identity_core::clock::SystemClock;
use acs_identity_core::Clock;
use time::{Duration, OffsetDateTime};

/// Real time, shifted by everything [`EmulatorClock::advance`] added; so time still passes
/// between requests, and a test can jump over an hour in an instant.
#[derive(Debug, Default)]
pub(crate) struct EmulatorClock {
    offset: Mutex<Duration>,
}

impl EmulatorClock {
    pub(crate) fn advance(&self, by: Duration) {
        *self.offset.lock().unwrap_or_else(|e| e.into_inner()) += by;
    }
}

impl Clock for EmulatorClock {
    fn now(&self) -> OffsetDateTime {
        SystemClock.now() + *self.offset.lock().unwrap_or_else(|e| e.into_inner())
    }
}
