//! The in-memory store: one process's links and claims. Standalone hosts use it alone;
//! several hosts in one process (tests) can share one to form a lattice without JetStream.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use futures_util::stream::{self, BoxStream, StreamExt};
use nimbus_core::link::LinkDefinition;
use tokio::sync::broadcast;

use super::{ClaimsRecord, LatticeStore, Snapshot, StoreChange};
use crate::error::StoreError;

/// Changes buffered per watcher before it must resynchronise.
const WATCH_BUFFER: usize = 1024;

/// Links and claims in memory, with change notification. Cheap to share via `Arc`.
#[derive(Debug)]
pub struct MemoryStore {
    state: Mutex<State>,
    changes: broadcast::Sender<StoreChange>,
}

#[derive(Debug, Default)]
struct State {
    revision: u64,
    links: HashMap<String, (LinkDefinition, u64)>,
    claims: HashMap<String, (ClaimsRecord, u64)>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self {
            state: Mutex::default(),
            changes: broadcast::channel(WATCH_BUFFER).0,
        }
    }

    /// A store holding `links` from the start (standalone hosts with links from config).
    pub fn with_links(links: impl IntoIterator<Item = LinkDefinition>) -> Self {
        let store = Self::new();
        {
            let mut state = store.lock();
            for link in links {
                state.revision += 1;
                let revision = state.revision;
                state.links.insert(link.id.clone(), (link, revision));
            }
        }
        store
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Applies a change under the lock and broadcasts it (still under the lock, so the
    /// order of broadcasts is the order of revisions).
    fn write(&self, change: impl FnOnce(&mut State, u64) -> StoreChange) -> u64 {
        let mut state = self.lock();
        state.revision += 1;
        let revision = state.revision;
        let event = change(&mut state, revision);
        // No receiver is fine: nobody watches yet.
        let _ = self.changes.send(event);
        revision
    }
}

#[async_trait]
impl LatticeStore for MemoryStore {
    async fn put_link(&self, link: &LinkDefinition) -> Result<u64, StoreError> {
        Ok(self.write(|state, revision| {
            state
                .links
                .insert(link.id.clone(), (link.clone(), revision));
            StoreChange::LinkPut {
                link: link.clone(),
                revision,
            }
        }))
    }

    async fn delete_link(&self, id: &str) -> Result<u64, StoreError> {
        Ok(self.write(|state, revision| {
            state.links.remove(id);
            StoreChange::LinkDeleted {
                id: id.to_string(),
                revision,
            }
        }))
    }

    async fn put_claims(&self, claims: &ClaimsRecord) -> Result<u64, StoreError> {
        Ok(self.write(|state, revision| {
            state
                .claims
                .insert(claims.public_key().to_string(), (claims.clone(), revision));
            StoreChange::ClaimsPut {
                claims: claims.clone(),
                revision,
            }
        }))
    }

    async fn delete_claims(&self, public_key: &str) -> Result<u64, StoreError> {
        Ok(self.write(|state, revision| {
            state.claims.remove(public_key);
            StoreChange::ClaimsDeleted {
                public_key: public_key.to_string(),
                revision,
            }
        }))
    }

    async fn watch(&self) -> Result<(Snapshot, BoxStream<'static, StoreChange>), StoreError> {
        // Subscribe and copy under one lock: no change is missed or seen twice.
        let state = self.lock();
        let receiver = self.changes.subscribe();
        let snapshot = Snapshot {
            links: state.links.values().cloned().collect(),
            claims: state.claims.values().cloned().collect(),
        };
        drop(state);
        let changes = stream::unfold(receiver, |mut rx| async move {
            match rx.recv().await {
                Ok(change) => Some((change, rx)),
                // Lagged or closed: end the stream so the watcher takes a new snapshot.
                Err(_) => None,
            }
        });
        Ok((snapshot, changes.boxed()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ClaimsRecord;

    #[tokio::test]
    async fn watch_sees_the_snapshot_then_every_later_change_in_order() {
        let link = LinkDefinition::new("Ma", "Vp", "default", "c:x", HashMap::new());
        let store = MemoryStore::with_links([link.clone()]);
        let (snapshot, mut changes) = store.watch().await.unwrap();
        assert_eq!(snapshot.links.len(), 1);
        let mut claims = ClaimsRecord::default();
        claims.stored.sub = "Ma".into();
        let r1 = store.put_claims(&claims).await.unwrap();
        let r2 = store.delete_link(&link.id).await.unwrap();
        assert!(r2 > r1);
        assert_eq!(
            changes.next().await,
            Some(StoreChange::ClaimsPut {
                claims: claims.clone(),
                revision: r1
            })
        );
        assert_eq!(
            changes.next().await,
            Some(StoreChange::LinkDeleted {
                id: link.id.clone(),
                revision: r2
            })
        );
        assert!(store.list_links().await.unwrap().is_empty());
        assert_eq!(store.list_claims().await.unwrap(), vec![claims]);
    }
}
