//! `lastTokenIssuedAt`, written behind the requests.
//!
//! Issuing a token changes no state a security decision reads: a token is valid by its
//! signature, its expiry and the identity's generation, which issuing leaves alone. The
//! time a token was last issued is informational (only the preview `GET /identities/{id}`
//! shows it), so issue-token answers without waiting for a store write: each issue is
//! recorded here, coalesced per identity (the latest time wins), and a background task
//! writes everything pending in one batched store call every `last_token_flush_ms`, and
//! once more at graceful shutdown. A failed flush puts its times back to be retried with
//! the next one; no request ever waits for or fails with it. A crash loses at most the
//! times of the last interval (plus a flush in progress).
//!
//! The map is bounded: at [`TokenMarks::CAPACITY`] identities pending, the flusher is woken
//! at once and times for further identities are dropped (counted, logged with the next
//! flush) until it has taken the batch.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use acs_identity_core::id::UserId;
use acs_identity_core::store::{Store, StoreResult};
use time::OffsetDateTime;
use tokio::sync::{watch, Notify};

/// Pending token times, one per identity.
#[derive(Debug)]
pub struct TokenMarks {
    pending: Mutex<HashMap<UserId, OffsetDateTime>>,
    capacity: usize,
    full: Notify,
    dropped: AtomicU64,
}

impl Default for TokenMarks {
    fn default() -> Self {
        TokenMarks::new(Self::CAPACITY)
    }
}

impl TokenMarks {
    /// Identities pending at most (about 10 MiB of map).
    pub const CAPACITY: usize = 200_000;

    /// An empty map with room for `capacity` identities.
    pub fn new(capacity: usize) -> Self {
        TokenMarks {
            pending: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
            full: Notify::new(),
            dropped: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<UserId, OffsetDateTime>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Notes that a token was issued for `user` at `at`.
    pub fn record(&self, user: UserId, at: OffsetDateTime) {
        let mut pending = self.lock();
        if let Some(t) = pending.get_mut(&user) {
            *t = (*t).max(at);
            return;
        }
        if pending.len() < self.capacity {
            pending.insert(user, at);
        } else {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        if pending.len() >= self.capacity {
            self.full.notify_one();
        }
    }

    /// The time pending for `user`, not yet written.
    pub fn pending(&self, user: UserId) -> Option<OffsetDateTime> {
        self.lock().get(&user).copied()
    }

    /// Identities pending.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes everything pending in one store call; returns how many identities it named.
    /// On failure the times go back into the map (merged with newer ones, within its bound)
    /// for the next flush.
    pub async fn flush(&self, store: &dyn Store) -> StoreResult<usize> {
        let batch = std::mem::take(&mut *self.lock());
        let dropped = self.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            tracing::warn!(dropped, "token times dropped: too many identities pending");
        }
        if batch.is_empty() {
            return Ok(0);
        }
        let marks: Vec<(UserId, OffsetDateTime)> = batch.into_iter().collect();
        match store.record_tokens_issued(&marks).await {
            Ok(_) => Ok(marks.len()),
            Err(e) => {
                let mut pending = self.lock();
                for (user, at) in marks {
                    if let Some(t) = pending.get_mut(&user) {
                        *t = (*t).max(at);
                    } else if pending.len() < self.capacity {
                        pending.insert(user, at);
                    }
                }
                Err(e)
            }
        }
    }

    /// Flushes every `interval`, and at once when the map is full, until `shutdown`
    /// turns true. The last flush is the caller's, after requests have drained.
    pub async fn run(
        &self,
        store: &dyn Store,
        interval: Duration,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            if *shutdown.borrow() {
                return;
            }
            tokio::select! {
                _ = ticks.tick() => {}
                _ = self.full.notified() => {}
                r = shutdown.changed() => {
                    if r.is_err() {
                        return;
                    }
                    continue;
                }
            }
            if let Err(e) = self.flush(store).await {
                tracing::warn!(error = %e, pending = self.len(), "writing token times failed; retrying with the next flush");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(s).unwrap()
    }

    #[test]
    fn coalesces_per_identity_and_stays_bounded() {
        let m = TokenMarks::new(2);
        let (a, b, c) = (UserId::generate(), UserId::generate(), UserId::generate());
        m.record(a, at(5));
        m.record(a, at(3));
        assert_eq!(m.pending(a), Some(at(5)), "the latest time wins");
        m.record(b, at(1));
        m.record(c, at(1));
        assert_eq!(m.len(), 2);
        assert_eq!(m.pending(c), None, "beyond the bound, new identities wait for a flush");
        m.record(b, at(2));
        assert_eq!(m.pending(b), Some(at(2)), "known identities are still updated");
    }

    /// A flush that fails keeps its times for the next one; one that succeeds writes them.
    #[tokio::test]
    async fn a_failed_flush_keeps_the_times_for_the_next() {
        use acs_identity_core::store::{IdentityStore as _, NewIdentity};
        use acs_identity_store::SqliteStore;

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("marks.db");
        let store = SqliteStore::open(&path).await.unwrap();
        let user = UserId::generate();
        let new = NewIdentity { user, custom_id: None, created_at: at(1), token_issued_at: None };
        store.create_identity(new).await.unwrap();
        let m = TokenMarks::new(10);
        m.record(user, at(5));
        // A closed store fails every write.
        store.close().await;
        assert!(m.flush(&store).await.is_err());
        assert_eq!(m.pending(user), Some(at(5)), "kept for the next flush");
        m.record(user, at(4));
        assert_eq!(m.pending(user), Some(at(5)), "merged with newer times");

        let store = SqliteStore::open(&path).await.unwrap();
        assert_eq!(m.flush(&store).await.unwrap(), 1);
        assert!(m.is_empty());
        let stored = store.get_identity(user).await.unwrap().unwrap();
        assert_eq!(stored.last_token_issued_at, Some(at(5)));
        store.close().await;
    }
}
