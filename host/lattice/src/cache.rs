//! A host's in-memory view of the lattice's links and claims, fed by the store's watch
//! and by the host's own writes. Lookups on the invocation path read only this cache.
//!
//! Every key remembers the store revision it was last set at, so a change that arrives
//! late (the echo of the host's own write) never undoes a newer one.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use arc_swap::ArcSwap;
use nimbus_core::link::LinkDefinition;

use crate::store::{ClaimsRecord, Snapshot, StoreChange};

/// What changed in the cache, for notifications (events, providers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CacheEvent {
    /// A link is new or its values changed.
    LinkSet(LinkDefinition),
    /// A link is gone.
    LinkDeleted(LinkDefinition),
}

#[derive(Default)]
struct State {
    links: HashMap<String, (LinkDefinition, u64)>,
    claims: HashMap<String, (ClaimsRecord, u64)>,
    aliases: HashMap<String, String>,
    /// Revisions of deleted keys, so an old put does not resurrect them.
    tombstones: HashMap<String, u64>,
}

/// The cache. All methods take `&self`; reads are concurrent.
///
/// The lookups made on every call (route, grant, alias) read a [`RouteView`] that is
/// rebuilt after each change and swapped in atomically: an atomic load and a few hash
/// probes on `&str` keys, no lock, no hashing of a link id, no clone of a link's values.
/// Changes are rare (a link put, an actor started), so rebuilding costs nothing that
/// matters.
#[derive(Default)]
pub(crate) struct LatticeCache {
    state: RwLock<State>,
    view: ArcSwap<RouteView>,
}

/// One link as the router needs it.
struct Route {
    contract_id: String,
    link_name: String,
    provider_id: Arc<str>,
}

/// What an actor's claims allow.
enum Grants {
    /// Capabilities not declared (0.x claims without `caps`): the link is the grant.
    All,
    /// The declared contracts.
    Only(Vec<String>),
}

/// The read side of the cache for the invocation path.
#[derive(Default)]
struct RouteView {
    /// Per actor, its links; an actor has a handful, so a scan beats a second map.
    routes: HashMap<String, Vec<Route>>,
    grants: HashMap<String, Grants>,
    aliases: HashMap<String, String>,
}

impl RouteView {
    fn of(state: &State) -> Self {
        let mut routes: HashMap<String, Vec<Route>> = HashMap::new();
        for (link, _) in state.links.values() {
            routes
                .entry(link.actor_id.clone())
                .or_default()
                .push(Route {
                    contract_id: link.contract_id.clone(),
                    link_name: link.link_name.clone(),
                    provider_id: link.provider_id.as_str().into(),
                });
        }
        let grants = state
            .claims
            .iter()
            .map(|(pk, (record, _))| {
                let grants = match record.declared_caps() {
                    Some(caps) => Grants::Only(caps.map(String::from).collect()),
                    None => Grants::All,
                };
                (pk.clone(), grants)
            })
            .collect();
        Self {
            routes,
            grants,
            aliases: state.aliases.clone(),
        }
    }
}

fn newer(revision: u64, known: Option<u64>) -> bool {
    revision == 0 || known.is_none_or(|k| revision > k)
}

impl State {
    fn known(&self, key: &str, current: Option<u64>) -> Option<u64> {
        match (current, self.tombstones.get(key).copied()) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    fn apply(&mut self, change: StoreChange) -> Option<CacheEvent> {
        match change {
            StoreChange::LinkPut { link, revision } => {
                let key = format!("L{}", link.id);
                let current = self.links.get(&link.id);
                if !newer(revision, self.known(&key, current.map(|c| c.1))) {
                    return None;
                }
                let changed = current.is_none_or(|(old, _)| *old != link);
                let rev = if revision == 0 {
                    current.map_or(0, |c| c.1)
                } else {
                    revision
                };
                self.tombstones.remove(&key);
                self.links.insert(link.id.clone(), (link.clone(), rev));
                changed.then_some(CacheEvent::LinkSet(link))
            }
            StoreChange::LinkDeleted { id, revision } => {
                let key = format!("L{id}");
                let current = self.links.get(&id).map(|c| c.1);
                if !newer(revision, self.known(&key, current)) {
                    return None;
                }
                if revision > 0 {
                    self.tombstones.insert(key, revision);
                }
                self.links
                    .remove(&id)
                    .map(|(link, _)| CacheEvent::LinkDeleted(link))
            }
            StoreChange::ClaimsPut { claims, revision } => {
                let pk = claims.public_key().to_string();
                let key = format!("C{pk}");
                let current = self.claims.get(&pk).map(|c| c.1);
                if !newer(revision, self.known(&key, current)) {
                    return None;
                }
                self.tombstones.remove(&key);
                self.remove_alias(&pk);
                let alias = claims.stored.call_alias.clone();
                if !alias.is_empty() {
                    self.aliases.insert(alias, pk.clone());
                }
                let rev = if revision == 0 {
                    current.unwrap_or(0)
                } else {
                    revision
                };
                self.claims.insert(pk, (claims, rev));
                None
            }
            StoreChange::ClaimsDeleted {
                public_key,
                revision,
            } => {
                let key = format!("C{public_key}");
                let current = self.claims.get(&public_key).map(|c| c.1);
                if !newer(revision, self.known(&key, current)) {
                    return None;
                }
                if revision > 0 {
                    self.tombstones.insert(key, revision);
                }
                self.remove_alias(&public_key);
                self.claims.remove(&public_key);
                None
            }
        }
    }

    fn remove_alias(&mut self, pk: &str) {
        if let Some((old, _)) = self.claims.get(pk) {
            let alias = &old.stored.call_alias;
            if self.aliases.get(alias).is_some_and(|p| p == pk) {
                self.aliases.remove(alias);
            }
        }
    }
}

impl LatticeCache {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Publishes the read view of `state` (called with the write lock held, so views are
    /// swapped in the order of the changes).
    fn publish(&self, state: &State) {
        self.view.store(Arc::new(RouteView::of(state)));
    }

    /// Applies one change; returns what a notification should report.
    pub fn apply(&self, change: StoreChange) -> Option<CacheEvent> {
        let mut state = self.write();
        let event = state.apply(change);
        self.publish(&state);
        event
    }

    /// Makes the cache equal to `snapshot` (except for entries newer than it), returning
    /// every difference found.
    pub fn apply_snapshot(&self, snapshot: Snapshot) -> Vec<CacheEvent> {
        let mut state = self.write();
        let max = snapshot
            .links
            .iter()
            .map(|l| l.1)
            .chain(snapshot.claims.iter().map(|c| c.1))
            .max()
            .unwrap_or(0);
        let link_ids: std::collections::HashSet<String> =
            snapshot.links.iter().map(|(l, _)| l.id.clone()).collect();
        let claim_keys: std::collections::HashSet<String> = snapshot
            .claims
            .iter()
            .map(|(c, _)| c.public_key().to_string())
            .collect();
        let mut events = Vec::new();
        for (link, revision) in snapshot.links {
            events.extend(state.apply(StoreChange::LinkPut { link, revision }));
        }
        for (claims, revision) in snapshot.claims {
            state.apply(StoreChange::ClaimsPut { claims, revision });
        }
        let stale_links: Vec<String> = state
            .links
            .iter()
            .filter(|(id, (_, rev))| !link_ids.contains(*id) && *rev <= max)
            .map(|(id, _)| id.clone())
            .collect();
        for id in stale_links {
            events.extend(state.apply(StoreChange::LinkDeleted { id, revision: 0 }));
        }
        let stale_claims: Vec<String> = state
            .claims
            .iter()
            .filter(|(pk, (_, rev))| !claim_keys.contains(*pk) && *rev <= max)
            .map(|(pk, _)| pk.clone())
            .collect();
        for public_key in stale_claims {
            state.apply(StoreChange::ClaimsDeleted {
                public_key,
                revision: 0,
            });
        }
        self.publish(&state);
        events
    }

    /// The link of (actor, contract, link name), if any.
    #[cfg(test)]
    pub fn link(
        &self,
        actor_id: &str,
        contract_id: &str,
        link_name: &str,
    ) -> Option<LinkDefinition> {
        let id = nimbus_core::link::link_id(actor_id, contract_id, link_name);
        self.read().links.get(&id).map(|(l, _)| l.clone())
    }

    /// The provider that (actor, contract, link name) is linked to: the router's lookup.
    pub fn provider_for(
        &self,
        actor_id: &str,
        contract_id: &str,
        link_name: &str,
    ) -> Option<Arc<str>> {
        self.view
            .load()
            .routes
            .get(actor_id)?
            .iter()
            .find(|r| r.contract_id == contract_id && r.link_name == link_name)
            .map(|r| r.provider_id.clone())
    }

    /// Every link.
    pub fn links(&self) -> Vec<LinkDefinition> {
        let mut links: Vec<_> = self.read().links.values().map(|(l, _)| l.clone()).collect();
        links.sort_by(|a, b| a.id.cmp(&b.id));
        links
    }

    /// Links served by provider `provider_id` under `link_name`.
    pub fn links_for_provider(&self, provider_id: &str, link_name: &str) -> Vec<LinkDefinition> {
        self.read()
            .links
            .values()
            .filter(|(l, _)| l.provider_id == provider_id && l.link_name == link_name)
            .map(|(l, _)| l.clone())
            .collect()
    }

    /// Whether `actor_id`'s claims grant `contract_id`; `None` when its claims are unknown.
    pub fn grants(&self, actor_id: &str, contract_id: &str) -> Option<bool> {
        self.view.load().grants.get(actor_id).map(|g| match g {
            Grants::All => true,
            Grants::Only(contracts) => contracts.iter().any(|c| c == contract_id),
        })
    }

    /// Every claims record.
    pub fn all_claims(&self) -> Vec<ClaimsRecord> {
        let mut all: Vec<_> = self
            .read()
            .claims
            .values()
            .map(|(c, _)| c.clone())
            .collect();
        all.sort_by(|a, b| a.stored.sub.cmp(&b.stored.sub));
        all
    }

    /// The actor that has `alias` as its call alias.
    pub fn actor_for_alias(&self, alias: &str) -> Option<String> {
        self.view.load().aliases.get(alias).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(values: &[(&str, &str)]) -> LinkDefinition {
        LinkDefinition::new(
            "Mactor",
            "Vprov",
            "default",
            "wasmcloud:keyvalue",
            values
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn late_echo_does_not_undo_a_newer_write() {
        let cache = LatticeCache::default();
        let v1 = link(&[("a", "1")]);
        let v2 = link(&[("a", "2")]);
        assert!(
            cache
                .apply(StoreChange::LinkPut {
                    link: v1.clone(),
                    revision: 1
                })
                .is_some()
        );
        assert!(
            cache
                .apply(StoreChange::LinkPut {
                    link: v2.clone(),
                    revision: 2
                })
                .is_some()
        );
        assert_eq!(
            cache.apply(StoreChange::LinkPut {
                link: v1,
                revision: 1
            }),
            None
        );
        assert_eq!(
            cache.link("Mactor", "wasmcloud:keyvalue", "default"),
            Some(v2.clone())
        );
        // Same value again: no event.
        assert_eq!(
            cache.apply(StoreChange::LinkPut {
                link: v2.clone(),
                revision: 3
            }),
            None
        );
        let deleted = cache.apply(StoreChange::LinkDeleted {
            id: v2.id.clone(),
            revision: 4,
        });
        assert_eq!(deleted, Some(CacheEvent::LinkDeleted(v2.clone())));
        // An old put after the delete does not bring the link back.
        assert_eq!(
            cache.apply(StoreChange::LinkPut {
                link: v2,
                revision: 3
            }),
            None
        );
        assert!(cache.links().is_empty());
    }

    #[test]
    fn snapshot_reports_additions_and_removals() {
        let cache = LatticeCache::default();
        let old = LinkDefinition::new("Mold", "Vp", "default", "c:x", HashMap::new());
        cache.apply(StoreChange::LinkPut {
            link: old.clone(),
            revision: 1,
        });
        let new = link(&[]);
        let events = cache.apply_snapshot(Snapshot {
            links: vec![(new.clone(), 2)],
            claims: vec![],
        });
        assert!(events.contains(&CacheEvent::LinkSet(new)));
        assert!(events.contains(&CacheEvent::LinkDeleted(old)));
    }

    #[test]
    fn aliases_follow_claims() {
        let cache = LatticeCache::default();
        let mut claims = ClaimsRecord::default();
        claims.stored.sub = "Mabc".into();
        claims.stored.call_alias = "greeter".into();
        cache.apply(StoreChange::ClaimsPut {
            claims,
            revision: 1,
        });
        assert_eq!(cache.actor_for_alias("greeter").as_deref(), Some("Mabc"));
        cache.apply(StoreChange::ClaimsDeleted {
            public_key: "Mabc".into(),
            revision: 2,
        });
        assert_eq!(cache.actor_for_alias("greeter"), None);
    }
}
