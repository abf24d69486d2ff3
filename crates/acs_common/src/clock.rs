//! A source of wall-clock time that tests can replace.
//!
//! Request signing ([`HmacAuthenticationPolicy`](crate::hmac::HmacAuthenticationPolicy)) and token
//! expiry checks ([`CommunicationTokenCredential`](crate::credential::CommunicationTokenCredential))
//! read the current time through [`Clock`], so tests can pin or advance it.

use std::fmt;
use time::OffsetDateTime;

/// A source of the current UTC time.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Returns the current time.
    fn now(&self) -> OffsetDateTime;
}

/// The system clock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one place allowed to read the system clock
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::disallowed_methods)] // the system clock, checked against the wall clock
    fn system_clock_is_utc_and_current() {
        let before = OffsetDateTime::now_utc();
        let now = SystemClock.now();
        let after = OffsetDateTime::now_utc();
        assert!(before <= now && now <= after);
        assert_eq!(now.offset(), time::UtcOffset::UTC);
    }
}
