//! Bounded in-memory caches for the read path of token validation.
//!
//! - verified tokens: SHA-256 of the whole token → its subject and claims, so a token
//!   seen before skips signature verification (expiry is still checked every time);
//! - identity state: user → (revocation generation, deleted), merged monotonically —
//!   the generation only grows and deletion is final — so a stale read can never undo a
//!   newer revoke or delete that raced with it. Issuing a token reads it too, so a token
//!   issued after a revoke's answer must see that revoke: see [`Ticket`] for why eviction
//!   cannot bring back an older state.
//!
//! Both are sharded maps with a fixed capacity; when a shard is full an arbitrary entry
//! is evicted. The identity cache is used only when this node is the store's only writer.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

use acs_identity_core::id::UserId;
use acs_identity_core::token::VerifiedToken;
use aws_lc_rs::digest;

const SHARDS: usize = 16;

/// A bounded, sharded map.
#[derive(Debug)]
struct Bounded<K, V> {
    shards: Vec<Mutex<Shard<K, V>>>,
    per_shard: usize,
}

#[derive(Debug)]
struct Shard<K, V> {
    map: HashMap<K, V>,
    /// Bumped by every eviction and every write observed (see [`Ticket`]).
    epoch: u64,
}

impl<K: Hash + Eq + Clone, V: Clone> Bounded<K, V> {
    fn new(capacity: usize) -> Self {
        let per_shard = capacity.div_ceil(SHARDS).max(1);
        let shards =
            (0..SHARDS).map(|_| Mutex::new(Shard { map: HashMap::new(), epoch: 0 })).collect();
        Bounded { shards, per_shard }
    }

    fn shard(&self, key: &K) -> &Mutex<Shard<K, V>> {
        use std::hash::Hasher as _;
        // A fixed-key hash: the shard of a key must be the same on every thread. Shards
        // only spread lock contention; each shard's map has its own random seed.
        let mut h = std::hash::DefaultHasher::new();
        key.hash(&mut h);
        &self.shards[(h.finish() as usize) % SHARDS]
    }

    fn lock(&self, key: &K) -> std::sync::MutexGuard<'_, Shard<K, V>> {
        self.shard(key).lock().unwrap_or_else(|e| e.into_inner())
    }

    fn get(&self, key: &K) -> Option<V> {
        self.lock(key).map.get(key).cloned()
    }

    fn epoch(&self, key: &K) -> u64 {
        self.lock(key).epoch
    }

    /// Merges into the entry of `key`; when there is none, inserts only if `may_insert`
    /// says so given the shard's epoch. Returns whether the map now holds `key`.
    fn upsert(
        &self,
        key: K,
        write: bool,
        may_insert: impl FnOnce(u64) -> bool,
        merge: impl FnOnce(Option<&V>) -> V,
    ) -> bool {
        let mut shard = self.lock(&key);
        let epoch = shard.epoch;
        if write {
            shard.epoch += 1;
        }
        if !shard.map.contains_key(&key) {
            if !may_insert(epoch) {
                return false;
            }
            if shard.map.len() >= self.per_shard {
                if let Some(victim) = shard.map.keys().next().cloned() {
                    shard.map.remove(&victim);
                    shard.epoch += 1;
                }
            }
        }
        let value = merge(shard.map.get(&key));
        shard.map.insert(key, value);
        true
    }

    fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).map.len()).sum()
    }
}

pub use acs_identity_core::token::IdentityState;

/// Taken before a store call whose answer about an identity will be cached.
///
/// Merging keeps the cached state monotonic only while the entry exists: once evicted, a
/// slow read that began before a revoke (and so saw the older generation) could insert
/// that older state after the revoke was answered, and a token issued next would carry a
/// revoked generation. So each shard counts evictions and writes observed (its epoch), and
/// an answer may create a missing entry only if nothing of either kind happened in its
/// shard since its ticket was taken, i.e. since before its store call began: any write
/// answered earlier committed before that call, so the answer already includes it.
#[derive(Clone, Copy, Debug)]
pub struct Ticket(u64);

impl Ticket {
    /// For an answer whose call began before any ticket was taken: it may only be merged
    /// into an existing entry.
    pub const MERGE_ONLY: Ticket = Ticket(u64::MAX);
}

/// What a store answer about an identity came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Observed {
    /// A read (get, or a create that returned an existing identity).
    Read,
    /// A state change (create, revoke, delete) this node made.
    Write,
}

/// Caches of the validation path.
#[derive(Debug)]
pub struct Caches {
    tokens: Bounded<[u8; 32], VerifiedToken>,
    identities: Option<Bounded<UserId, IdentityState>>,
}

impl Caches {
    /// Caches with room for `tokens` verified tokens and `identities` identity states
    /// (`None`: do not cache identity state, because other nodes write the store too).
    pub fn new(tokens: usize, identities: Option<usize>) -> Self {
        Caches { tokens: Bounded::new(tokens), identities: identities.map(Bounded::new) }
    }

    fn token_key(token: &str) -> [u8; 32] {
        let mut key = [0u8; 32];
        key.copy_from_slice(digest::digest(&digest::SHA256, token.as_bytes()).as_ref());
        key
    }

    /// A token verified before.
    pub fn verified(&self, token: &str) -> Option<VerifiedToken> {
        self.tokens.get(&Self::token_key(token))
    }

    /// Remembers a verified token.
    pub fn remember_verified(&self, token: &str, verified: &VerifiedToken) {
        self.tokens.upsert(Self::token_key(token), false, |_| true, |_| verified.clone());
    }

    /// The cached state of `user`, if any.
    pub fn identity(&self, user: UserId) -> Option<IdentityState> {
        self.identities.as_ref()?.get(&user)
    }

    /// A ticket for a store call about `user` that is about to begin.
    pub fn ticket(&self, user: UserId) -> Ticket {
        Ticket(self.identities.as_ref().map_or(0, |c| c.epoch(&user)))
    }

    /// Records a state a store call (begun after `ticket` was taken) returned for `user`:
    /// merged with what is cached, or cached anew if no eviction or write happened in the
    /// meantime. Returns whether it is cached.
    pub fn observe(
        &self,
        ticket: Ticket,
        user: UserId,
        state: IdentityState,
        how: Observed,
    ) -> bool {
        let Some(c) = &self.identities else { return false };
        c.upsert(
            user,
            how == Observed::Write,
            |epoch| epoch == ticket.0,
            |old| match old {
                Some(o) => IdentityState {
                    generation: o.generation.max(state.generation),
                    deleted: o.deleted || state.deleted,
                },
                None => state,
            },
        )
    }

    /// Entries held (tokens, identities).
    pub fn len(&self) -> (usize, usize) {
        (self.tokens.len(), self.identities.as_ref().map_or(0, Bounded::len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observe(c: &Caches, u: UserId, generation: u64, deleted: bool, how: Observed) -> bool {
        c.observe(c.ticket(u), u, IdentityState { generation, deleted }, how)
    }

    #[test]
    fn identity_state_merges_monotonically() {
        let c = Caches::new(10, Some(10));
        let u = UserId::generate();
        observe(&c, u, 2, false, Observed::Write);
        // A stale read arriving late does not undo the newer revoke.
        observe(&c, u, 1, false, Observed::Read);
        assert_eq!(c.identity(u), Some(IdentityState { generation: 2, deleted: false }));
        observe(&c, u, 2, true, Observed::Write);
        observe(&c, u, 2, false, Observed::Read);
        assert_eq!(c.identity(u).map(|s| s.deleted), Some(true));
    }

    /// The race a cache with eviction must not lose: a read begins, a revoke commits and
    /// is answered, the entry is evicted, then the read's older answer arrives.
    #[test]
    fn an_answer_older_than_an_eviction_or_a_write_is_not_cached_anew() {
        // One entry per shard, so any other key of the shard evicts.
        let c = Caches::new(8, Some(1));
        let u = UserId::generate();
        observe(&c, u, 0, false, Observed::Read);
        let slow_read = c.ticket(u);
        assert!(observe(&c, u, 1, false, Observed::Write), "the revoke is cached");
        // Evict u with another user of its shard.
        let other = loop {
            let o = UserId::generate();
            let map = c.identities.as_ref().unwrap();
            if std::ptr::eq(map.shard(&o), map.shard(&u)) {
                break o;
            }
        };
        observe(&c, other, 0, false, Observed::Read);
        assert_eq!(c.identity(u), None, "evicted");
        let stale = IdentityState { generation: 0, deleted: false };
        assert!(!c.observe(slow_read, u, stale, Observed::Read), "the stale answer is dropped");
        assert_eq!(c.identity(u), None);
        // So is a write's answer that raced with another write and an eviction.
        let revoke_a = c.ticket(u);
        observe(&c, u, 3, false, Observed::Write);
        observe(&c, other, 0, false, Observed::Read);
        assert!(!c.observe(
            revoke_a,
            u,
            IdentityState { generation: 2, deleted: false },
            Observed::Write
        ));
        // A fresh read (its ticket taken after all that) is cached.
        assert!(observe(&c, u, 3, false, Observed::Read));
        assert_eq!(c.identity(u).map(|s| s.generation), Some(3));
    }

    #[test]
    fn caches_stay_bounded() {
        let c = Caches::new(32, Some(32));
        for _ in 0..10_000 {
            observe(&c, UserId::generate(), 0, false, Observed::Read);
        }
        let (_, n) = c.len();
        assert!(n <= 32, "{n}");
        let off = Caches::new(8, None);
        let u = UserId::generate();
        observe(&off, u, 0, false, Observed::Read);
        assert_eq!(off.identity(u), None);
    }
}
