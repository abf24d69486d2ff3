//! Request throttling per operation, as ACS publishes it: a number of requests per window
//! for the whole resource. Off by default; the `acs` profile applies ACS's published limits.
//!
//! Limits are counted per node: with several nodes behind a load balancer, the effective
//! limit of the resource is the sum over nodes.

use std::collections::HashMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::error::ApiError;

/// A limit that operations count against: the keys of `[throttle.limits]`. Each operation
/// names its class in the operation table (`crate::operation`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ThrottleClass {
    /// `POST /identities` without scopes.
    CreateIdentity,
    /// `POST /identities` with scopes.
    CreateUserAndToken,
    /// `DELETE /identities/{id}`.
    DeleteIdentity,
    /// `POST /identities/{id}/:issueAccessToken`.
    IssueAccessToken,
    /// `POST /identities/{id}/:revokeAccessTokens`.
    RevokeAccessTokens,
    /// The token exchanges.
    ExchangeTokens,
}

/// One limit: at most `max_requests` per `window_seconds`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    /// Window length.
    pub window_seconds: u32,
    /// Requests allowed per window.
    pub max_requests: u32,
}

/// `[throttle]` in the configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ThrottleConfig {
    /// `off` (default) or `acs`.
    pub profile: ThrottleProfile,
    /// Limits that replace or add to the profile's, by operation.
    pub limits: HashMap<ThrottleClass, Limit>,
}

/// A named set of limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ThrottleProfile {
    /// No limits besides `limits`.
    #[default]
    Off,
    /// ACS's published Identity limits (per 30 s: create 1000, delete 500, issue 1000,
    /// revoke 500, create-user-and-token 1000, exchange 500).
    Acs,
}

impl ThrottleConfig {
    /// The limits in force.
    pub fn effective(&self) -> HashMap<ThrottleClass, Limit> {
        let mut limits = HashMap::new();
        if self.profile == ThrottleProfile::Acs {
            let l = |max| Limit { window_seconds: 30, max_requests: max };
            limits.insert(ThrottleClass::CreateIdentity, l(1000));
            limits.insert(ThrottleClass::DeleteIdentity, l(500));
            limits.insert(ThrottleClass::IssueAccessToken, l(1000));
            limits.insert(ThrottleClass::RevokeAccessTokens, l(500));
            limits.insert(ThrottleClass::CreateUserAndToken, l(1000));
            limits.insert(ThrottleClass::ExchangeTokens, l(500));
        }
        limits.extend(self.limits.iter().map(|(k, v)| (*k, *v)));
        limits
    }
}

#[derive(Debug)]
struct Window {
    start: OffsetDateTime,
    count: u32,
}

/// Fixed-window counters, one per limited operation.
#[derive(Debug, Default)]
pub struct Throttle {
    limits: HashMap<ThrottleClass, Limit>,
    windows: Mutex<HashMap<ThrottleClass, Window>>,
}

impl Throttle {
    /// Counters for `limits`.
    pub fn new(limits: HashMap<ThrottleClass, Limit>) -> Self {
        Throttle { limits, windows: Mutex::new(HashMap::new()) }
    }

    /// Counts one request; `Err` is the 429 to answer.
    pub fn check(&self, op: ThrottleClass, now: OffsetDateTime) -> Result<(), ApiError> {
        let Some(limit) = self.limits.get(&op) else { return Ok(()) };
        let window = Duration::seconds(i64::from(limit.window_seconds.max(1)));
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        let w = windows.entry(op).or_insert(Window { start: now, count: 0 });
        if now - w.start >= window || now < w.start {
            *w = Window { start: now, count: 0 };
        }
        if w.count >= limit.max_requests {
            let retry = (w.start + window - now).whole_seconds().max(1);
            return Err(ApiError::too_many_requests(u32::try_from(retry).unwrap_or(u32::MAX)));
        }
        w.count += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn limits_per_window_and_resets() {
        let mut limits = HashMap::new();
        limits
            .insert(ThrottleClass::IssueAccessToken, Limit { window_seconds: 30, max_requests: 2 });
        let t = Throttle::new(limits);
        let t0 = datetime!(2026-01-01 0:00 UTC);
        assert!(t.check(ThrottleClass::IssueAccessToken, t0).is_ok());
        assert!(t.check(ThrottleClass::IssueAccessToken, t0 + Duration::seconds(1)).is_ok());
        let e = t.check(ThrottleClass::IssueAccessToken, t0 + Duration::seconds(10)).unwrap_err();
        assert_eq!(e.status().as_u16(), 429);
        assert_eq!(e.retry_after(), Some(20));
        // Other operations are not limited.
        assert!(t.check(ThrottleClass::CreateIdentity, t0).is_ok());
        // A new window.
        assert!(t.check(ThrottleClass::IssueAccessToken, t0 + Duration::seconds(30)).is_ok());
    }

    #[test]
    fn acs_profile_has_the_published_limits() {
        let c = ThrottleConfig { profile: ThrottleProfile::Acs, limits: HashMap::new() };
        let l = c.effective();
        assert_eq!(
            l[&ThrottleClass::RevokeAccessTokens],
            Limit { window_seconds: 30, max_requests: 500 }
        );
        assert_eq!(l.len(), 6);
        assert!(ThrottleConfig::default().effective().is_empty());
    }
}
