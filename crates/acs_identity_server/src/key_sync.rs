//! Key changes that take effect at once: how a node keeps the resource's keys current,
//! and how `acs-identity keys regenerate` (or `signing-keys rotate`) waits for the nodes.
//!
//! - **SQLite**: the store has a [`KeysProbe`]; before authenticating each request the
//!   node reads the keys' version on the probe's own connection and reloads the keys when
//!   it changed. A change committed by another process is seen by the next request, so the
//!   command need not wait for anything.
//! - **PostgreSQL**: the changing transaction sends `NOTIFY acsid_keys`; each node listens
//!   (and polls every [`KEY_POLL_INTERVAL`] besides, since a notification is lost while its
//!   connection is down), reloads, and writes its row in `nodes` with the version it now
//!   holds, and every [`HEARTBEAT_INTERVAL`] anyway. The command waits until every node
//!   seen within [`KEY_LEASE`] holds the new version. A node that cannot write its row for
//!   [`KEY_LEASE`] refuses requests (503) until it can: so a node the command stopped
//!   waiting for (its row too old) is one that no longer authenticates with old keys.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use acs_identity_core::store::{KeysProbe, Store, StoreResult};
use acs_identity_store::{AnyStore, KeyChanges};
use tokio::sync::watch;

use crate::error::ApiError;
use crate::AppState;

/// How often a PostgreSQL node reads the keys' version besides the notifications.
pub const KEY_POLL_INTERVAL: Duration = Duration::from_millis(250);
/// How often a PostgreSQL node writes its row in `nodes` when nothing changed.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);
/// A PostgreSQL node whose row was last written longer ago than this is not waited for;
/// a node that has not written it for this long refuses requests until it has.
pub const KEY_LEASE: Duration = Duration::from_secs(5);
/// How long `keys regenerate` and `signing-keys rotate` wait for the nodes by default.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(15);

/// How a node makes sure its keys are current before it authenticates a request.
#[derive(Debug)]
pub(crate) enum Freshness {
    /// Read the keys' version before every request.
    Probe(Arc<dyn KeysProbe>),
    /// Kept current by [`watch_nodes_keys`]; valid while confirmed within [`KEY_LEASE`].
    Lease(Lease),
}

/// When the node last confirmed (and reported) that its keys are current.
#[derive(Debug)]
pub(crate) struct Lease {
    origin: Instant,
    /// Milliseconds after `origin`.
    confirmed: AtomicU64,
}

impl Lease {
    fn confirm(&self, at: Instant) {
        let ms = u64::try_from(at.saturating_duration_since(self.origin).as_millis())
            .unwrap_or(u64::MAX);
        self.confirmed.fetch_max(ms, Ordering::SeqCst);
    }

    fn expired(&self) -> bool {
        let confirmed = Duration::from_millis(self.confirmed.load(Ordering::SeqCst));
        self.origin.elapsed().saturating_sub(confirmed) > KEY_LEASE
    }
}

impl Freshness {
    /// The way for `store`: its probe if it has one, else a lease confirmed from now.
    pub(crate) fn of(store: &dyn Store) -> Freshness {
        match store.keys_probe() {
            Some(probe) => Freshness::Probe(probe),
            None => {
                Freshness::Lease(Lease { origin: Instant::now(), confirmed: AtomicU64::new(0) })
            }
        }
    }

    /// The keys' version as this node compares it: the probe's reading, or the store's.
    pub(crate) async fn reading(&self, store: &dyn Store) -> StoreResult<u64> {
        match self {
            Freshness::Probe(probe) => probe.keys_version(),
            Freshness::Lease(_) => store.keys_version().await,
        }
    }

    /// Before a request: the probe's reading (to compare with the keys held), or `None`
    /// when the lease holds; 503 when the probe fails or the lease ran out.
    pub(crate) fn check(&self) -> Result<Option<u64>, ApiError> {
        match self {
            Freshness::Probe(probe) => probe.keys_version().map(Some).map_err(ApiError::from),
            Freshness::Lease(lease) if lease.expired() => {
                tracing::warn!("keys not confirmed current within the lease; refusing requests");
                Err(ApiError::unavailable())
            }
            Freshness::Lease(_) => Ok(None),
        }
    }
}

/// Keeps a PostgreSQL node's keys current until `shutdown`: listens for announcements,
/// polls, reloads, reports its version in `nodes` and confirms its lease; removes its row
/// at the end.
pub async fn watch_nodes_keys(
    state: AppState,
    store: AnyStore,
    node: uuid::Uuid,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut changes = None;
    let mut listen_tried: Option<Instant> = None;
    let mut reported: Option<(u64, Instant)> = None;
    let mut tick = tokio::time::interval(KEY_POLL_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        if changes.is_none() && listen_tried.is_none_or(|t| t.elapsed() >= HEARTBEAT_INTERVAL) {
            listen_tried = Some(Instant::now());
            match store.listen_keys().await {
                Ok(c) => changes = c,
                Err(e) => tracing::warn!(error = %e, "cannot listen for key changes; polling"),
            }
        }
        tokio::select! {
            _ = tick.tick() => {}
            announced = next_change(&mut changes) => {
                if let Err(e) = announced {
                    tracing::warn!(error = %e, "lost the key change notifications; polling");
                    changes = None;
                }
            }
            _ = shutdown.changed() => break,
        }
        let started = Instant::now();
        if let Err(e) = state.reload_keys().await {
            tracing::warn!(error = %e, "cannot reload keys");
            continue;
        }
        let held = state.keys_version();
        let due = reported.is_none_or(|(v, at)| v != held || at.elapsed() >= HEARTBEAT_INTERVAL);
        if !due {
            continue;
        }
        match store.report_node(node, held).await {
            Ok(()) => {
                reported = Some((held, started));
                if let Freshness::Lease(lease) = state.freshness() {
                    lease.confirm(started);
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot report this node's keys version"),
        }
    }
    drop(changes);
    if let Err(e) = store.remove_node(node).await {
        tracing::warn!(error = %e, "cannot remove this node's row");
    }
}

async fn next_change(changes: &mut Option<KeyChanges>) -> StoreResult<()> {
    match changes {
        Some(c) => c.next().await,
        None => std::future::pending().await,
    }
}

/// What [`await_nodes`] found.
#[derive(Debug, Default)]
pub struct NodesWait {
    /// Nodes that confirmed the version.
    pub confirmed: usize,
    /// Nodes seen within [`KEY_LEASE`] that had not confirmed it when the wait ended.
    pub lagging: Vec<String>,
}

/// After a change to the keys: waits until every node on `store` holds at least the
/// store's current keys' version, at most `timeout`. SQLite nodes check before every
/// request, so there is nothing to wait for.
pub async fn await_nodes(store: &AnyStore, timeout: Duration) -> anyhow::Result<NodesWait> {
    let version = store.shared().keys_version().await?;
    let deadline = Instant::now() + timeout;
    loop {
        let nodes = store.live_nodes(KEY_LEASE).await?;
        let lagging: Vec<String> =
            nodes.iter().filter(|(_, v)| *v < version).map(|(n, _)| n.to_string()).collect();
        if lagging.is_empty() || Instant::now() >= deadline {
            return Ok(NodesWait { confirmed: nodes.len() - lagging.len(), lagging });
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
