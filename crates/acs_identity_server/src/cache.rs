//! Bounded in-memory caches for the read path of token validation.
//!
//! - verified tokens: SHA-256 of the whole token → its subject and claims, so a token
//!   seen before skips signature verification (expiry is still checked every time);
//! - identity state: user → (revocation generation, deleted), merged monotonically —
//!   the generation only grows and deletion is final — so a stale read can never undo a
//!   newer revoke or delete that raced with it.
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
    shards: Vec<Mutex<HashMap<K, V>>>,
    per_shard: usize,
}

impl<K: Hash + Eq + Clone, V: Clone> Bounded<K, V> {
    fn new(capacity: usize) -> Self {
        let per_shard = capacity.div_ceil(SHARDS).max(1);
        Bounded { shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(), per_shard }
    }

    fn shard(&self, key: &K) -> &Mutex<HashMap<K, V>> {
        use std::hash::Hasher as _;
        // A fixed-key hash: the shard of a key must be the same on every thread. Shards
        // only spread lock contention; each shard's map has its own random seed.
        let mut h = std::hash::DefaultHasher::new();
        key.hash(&mut h);
        &self.shards[(h.finish() as usize) % SHARDS]
    }

    fn get(&self, key: &K) -> Option<V> {
        self.shard(key).lock().unwrap_or_else(|e| e.into_inner()).get(key).cloned()
    }

    fn upsert(&self, key: K, merge: impl FnOnce(Option<&V>) -> V) {
        let mut shard = self.shard(&key).lock().unwrap_or_else(|e| e.into_inner());
        let value = merge(shard.get(&key));
        if !shard.contains_key(&key) && shard.len() >= self.per_shard {
            if let Some(victim) = shard.keys().next().cloned() {
                shard.remove(&victim);
            }
        }
        shard.insert(key, value);
    }

    fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).len()).sum()
    }
}

pub use acs_identity_core::token::IdentityState;

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
        self.tokens.upsert(Self::token_key(token), |_| verified.clone());
    }

    /// The cached state of `user`, if any.
    pub fn identity(&self, user: UserId) -> Option<IdentityState> {
        self.identities.as_ref()?.get(&user)
    }

    /// Records a state observed for `user`, merged with what is cached.
    pub fn observe(&self, user: UserId, state: IdentityState) {
        if let Some(c) = &self.identities {
            c.upsert(user, |old| match old {
                Some(o) => IdentityState {
                    generation: o.generation.max(state.generation),
                    deleted: o.deleted || state.deleted,
                },
                None => state,
            });
        }
    }

    /// Entries held (tokens, identities).
    pub fn len(&self) -> (usize, usize) {
        (self.tokens.len(), self.identities.as_ref().map_or(0, Bounded::len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_state_merges_monotonically() {
        let c = Caches::new(10, Some(10));
        let u = UserId::generate();
        c.observe(u, IdentityState { generation: 2, deleted: false });
        // A stale read arriving late does not undo the newer revoke.
        c.observe(u, IdentityState { generation: 1, deleted: false });
        assert_eq!(c.identity(u), Some(IdentityState { generation: 2, deleted: false }));
        c.observe(u, IdentityState { generation: 2, deleted: true });
        c.observe(u, IdentityState { generation: 2, deleted: false });
        assert_eq!(c.identity(u).map(|s| s.deleted), Some(true));
    }

    #[test]
    fn caches_stay_bounded() {
        let c = Caches::new(32, Some(32));
        for _ in 0..10_000 {
            c.observe(UserId::generate(), IdentityState { generation: 0, deleted: false });
        }
        let (_, n) = c.len();
        assert!(n <= 32, "{n}");
        let off = Caches::new(8, None);
        let u = UserId::generate();
        off.observe(u, IdentityState { generation: 0, deleted: false });
        assert_eq!(off.identity(u), None);
    }
}
