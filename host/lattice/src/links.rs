//! Links: writing them to the lattice store, following the store's changes, and telling
//! everyone concerned when a link appears or goes (a `linkdef_set`/`linkdef_deleted`
//! event, the in-process provider, and out-of-process providers on their
//! `...linkdefs.put|del` subjects). Actors need no restart: the router reads the cache.

use std::collections::HashSet;
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use nimbus_core::events::{LinkdefDeleted, LinkdefSet, NO_SOURCE};
use nimbus_core::link::{LinkDefinition, link_id};

use crate::cache::CacheEvent;
use crate::error::HostError;
use crate::inner::HostInner;
use crate::store::{ClaimsRecord, LatticeStore, Snapshot, StoreChange};

/// Pause before watching the store again after its change stream ended.
const REWATCH_DELAY: Duration = Duration::from_millis(500);

impl HostInner {
    /// Validates and stores a link; it takes effect on this host at once and on the
    /// others when their watch sees it.
    pub async fn put_link(self: &Arc<Self>, mut link: LinkDefinition) -> Result<(), HostError> {
        for (field, value) in [
            ("actor_id", &link.actor_id),
            ("provider_id", &link.provider_id),
            ("contract_id", &link.contract_id),
            ("link_name", &link.link_name),
        ] {
            if value.is_empty() {
                return Err(HostError::Config(format!(
                    "link definition without {field}"
                )));
            }
        }
        link.id = link.computed_id();
        let revision = self.store.put_link(&link).await?;
        self.apply_change(StoreChange::LinkPut { link, revision })
            .await;
        Ok(())
    }

    /// Deletes the link of (actor, contract, link name); no error if there is none.
    pub async fn delete_link(
        self: &Arc<Self>,
        actor_id: &str,
        contract_id: &str,
        link_name: &str,
    ) -> Result<(), HostError> {
        let id = link_id(actor_id, contract_id, link_name);
        let revision = self.store.delete_link(&id).await?;
        self.apply_change(StoreChange::LinkDeleted { id, revision })
            .await;
        Ok(())
    }

    /// Applies a store change to the cache and reports what it changed, under
    /// `link_updates`: when this host's own write and the watch's echo of it race, the
    /// second to come waits until the first has told the providers, so a `put_link` that
    /// returned is in effect on this host (an in-process provider has taken the link).
    pub(crate) async fn apply_change(&self, change: StoreChange) {
        let _serial = self.link_updates.lock().await;
        if let Some(event) = self.cache.apply(change) {
            self.on_cache_event(event).await;
        }
    }

    /// Reports a cache change to events, the provider and the lattice.
    pub(crate) async fn on_cache_event(&self, event: CacheEvent) {
        let (link, deleted) = match event {
            CacheEvent::LinkSet(link) => (link, false),
            CacheEvent::LinkDeleted(link) => (link, true),
        };
        tracing::info!(actor = %link.actor_id, provider = %link.provider_id, contract = %link.contract_id, link_name = %link.link_name, deleted, "link changed");
        if deleted {
            self.events
                .publish_from(NO_SOURCE, &LinkdefDeleted(link.clone()))
                .await;
        } else {
            self.events
                .publish_from(NO_SOURCE, &LinkdefSet(link.clone()))
                .await;
        }
        self.notify_provider(&link, deleted).await;
        if let Some(client) = &self.nats {
            let subject = if deleted {
                self.subjects
                    .provider_linkdefs_del(&link.provider_id, &link.link_name)
            } else {
                self.subjects
                    .provider_linkdefs_put(&link.provider_id, &link.link_name)
            };
            match nimbus_core::encoding::to_msgpack(&link) {
                Ok(body) => {
                    if let Err(e) = client.publish(subject, body.into()).await {
                        tracing::warn!(error = %e, "could not tell providers about a link change");
                    }
                }
                Err(e) => tracing::error!(error = %e, "could not encode a link definition"),
            }
        }
    }
}

/// Follows the store's changes for as long as the host lives, watching again (from a
/// fresh snapshot) whenever the change stream ends. When the store lost its data in the
/// meantime (its generation went up), the host first puts back what it owns.
pub(crate) async fn follow_store(
    host: Weak<HostInner>,
    store: Arc<dyn LatticeStore>,
    mut changes: BoxStream<'static, StoreChange>,
) {
    let mut generation = store.generation();
    loop {
        while let Some(change) = changes.next().await {
            let Some(host) = host.upgrade() else { return };
            host.apply_change(change).await;
        }
        loop {
            tokio::time::sleep(REWATCH_DELAY).await;
            let Some(inner) = host.upgrade() else { return };
            if inner.is_stopping() {
                return;
            }
            let watched = match store.watch().await {
                Ok((snapshot, stream)) if store.generation() != generation => {
                    generation = store.generation();
                    inner.restore_lost_data(&snapshot).await;
                    // A snapshot with what was put back.
                    drop(stream);
                    store.watch().await
                }
                watched => watched,
            };
            match watched {
                Ok((snapshot, stream)) => {
                    let serial = inner.link_updates.lock().await;
                    for event in inner.cache.apply_snapshot(snapshot) {
                        inner.on_cache_event(event).await;
                    }
                    drop(serial);
                    changes = stream;
                    break;
                }
                Err(e) => tracing::warn!(error = %e, "cannot watch the lattice data; retrying"),
            }
        }
    }
}

impl HostInner {
    /// After the store lost its data (and started again empty): puts back the claims of
    /// the actors running here, and every link this host knows that the store has no
    /// entry for. A link put or deleted in the new store since is left as it is; so is
    /// one another host put back first.
    async fn restore_lost_data(&self, snapshot: &Snapshot) {
        let mut claims = 0;
        for actor in self.registry.actors() {
            let Some(token) = actor.claims() else {
                continue;
            };
            match self
                .store
                .put_claims(&ClaimsRecord::from_actor_token(&token))
                .await
            {
                Ok(_) => claims += 1,
                Err(e) => {
                    tracing::warn!(actor = %actor.id, error = %e, "could not put back the claims of an actor");
                }
            }
        }
        let present: HashSet<&str> = snapshot.links.iter().map(|(l, _)| l.id.as_str()).collect();
        let mut links = 0;
        for link in self.cache.links() {
            if present.contains(link.id.as_str()) {
                continue;
            }
            match self.store.restore_link(&link).await {
                Ok(Some(_)) => links += 1,
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(link = %link.id, error = %e, "could not put back a link");
                }
            }
        }
        tracing::warn!(
            claims,
            links,
            "the lattice data store lost its data; put back the claims of the actors running here and the links it missed"
        );
    }
}
