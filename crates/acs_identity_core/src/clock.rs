//! Time as an input.

use std::fmt;
use std::sync::Mutex;

use time::{Duration, OffsetDateTime};

/// The source of "now" for every time-dependent rule.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current UTC time.
    fn now(&self) -> OffsetDateTime;
}

/// The operating system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one place allowed to read the system clock
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that moves only when told to; for tests.
#[derive(Debug)]
pub struct ManualClock(Mutex<OffsetDateTime>);

impl ManualClock {
    /// A clock stopped at `at`.
    pub fn new(at: OffsetDateTime) -> Self {
        ManualClock(Mutex::new(at))
    }

    /// Moves the clock forward (or back, with a negative duration).
    pub fn advance(&self, by: Duration) {
        let mut now = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *now += by;
    }

    /// Sets the clock to `at`.
    pub fn set(&self, at: OffsetDateTime) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = at;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(datetime!(2024-01-01 0:00 UTC));
        assert_eq!(clock.now(), datetime!(2024-01-01 0:00 UTC));
        clock.advance(Duration::minutes(5));
        assert_eq!(clock.now(), datetime!(2024-01-01 0:05 UTC));
        clock.set(datetime!(2030-01-01 0:00 UTC));
        assert_eq!(clock.now(), datetime!(2030-01-01 0:00 UTC));
    }
}
