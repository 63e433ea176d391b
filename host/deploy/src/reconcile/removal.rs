//! Removing what an app started: everything on undeploy, and what a new version no
//! longer names. Only instances and providers that carry the app's annotations are
//! stopped, so other apps and manual starts are never touched.

use std::collections::{BTreeMap, BTreeSet};

use super::{Key, Kind, Reconciler, owned};
use crate::lease::LeaseGuard;
use crate::model::{AppStatus, AppVersion, State, now_unix};
use crate::names::ANNOTATION_COMPONENT;
use crate::observe::Observation;

impl Reconciler {
    /// Stops everything the app started and deletes its links (those no other deployed
    /// app also defines).
    pub(crate) async fn remove(
        &mut self,
        app: &str,
        last: Option<&AppVersion>,
        observation: &Observation,
        claimed_links: &BTreeSet<(String, String, String)>,
        lease: &LeaseGuard,
    ) -> AppStatus {
        let remaining = self.stop_all_of(app, None, observation, lease).await;
        let links_left = match last {
            Some(version) => {
                self.remove_links(version, observation, claimed_links, lease)
                    .await
            }
            None => 0,
        };
        let (state, reason) = if remaining == 0 && links_left == 0 {
            (State::Undeployed, None)
        } else {
            (
                State::Reconciling,
                Some(format!(
                    "undeploying: {remaining} actor instance(s) or provider(s) and {links_left} link(s) still to remove"
                )),
            )
        };
        AppStatus {
            app: app.to_string(),
            version: None,
            state,
            reason,
            actors: Vec::new(),
            providers: Vec::new(),
            links: Vec::new(),
            reconciler: self.holder.clone(),
            since: now_unix(),
        }
    }

    /// Stops what `app` started and the current version no longer names.
    pub(crate) async fn stop_orphans(
        &mut self,
        version: &AppVersion,
        observation: &Observation,
        lease: &LeaseGuard,
    ) {
        let keep: BTreeSet<(Kind, &str)> = version
            .manifest
            .actors
            .iter()
            .map(|a| (Kind::Actor, a.name.as_str()))
            .chain(
                version
                    .manifest
                    .providers
                    .iter()
                    .map(|p| (Kind::Provider, p.name.as_str())),
            )
            .collect();
        self.stop_all_of(&version.app, Some(&keep), observation, lease)
            .await;
    }

    /// Stops what `app` started (all of it, or what `keep` does not name) on the hosts
    /// that answer; returns how many actor placements and providers of it remain.
    async fn stop_all_of(
        &mut self,
        app: &str,
        keep: Option<&BTreeSet<(Kind, &str)>>,
        observation: &Observation,
        lease: &LeaseGuard,
    ) -> usize {
        let flying: Vec<Key> = self
            .in_flight
            .keys()
            .filter(|k| {
                k.app == app
                    && keep.is_none_or(|keep| !keep.contains(&(k.kind, k.component.as_str())))
            })
            .cloned()
            .collect();
        for k in flying {
            let Some(view) = observation.hosts.get(&k.host) else {
                self.in_flight.remove(&k);
                continue;
            };
            let observed = match k.kind {
                Kind::Actor => view
                    .inventory
                    .actors
                    .iter()
                    .filter(|a| a.id == k.id)
                    .flat_map(|a| &a.instances)
                    .filter(|i| owned(&i.annotations, app, Some(&k.component)))
                    .count() as u32,
                Kind::Provider => u32::from(
                    view.inventory
                        .providers
                        .iter()
                        .any(|p| owned(&p.annotations, app, Some(&k.component))),
                ),
            };
            self.settle(&k, observed);
        }
        let mut remaining = 0;
        for (host_id, view) in &observation.hosts {
            for actor in &view.inventory.actors {
                let mut by_component: BTreeMap<&str, u32> = BTreeMap::new();
                for instance in &actor.instances {
                    if owned(&instance.annotations, app, None)
                        && let Some(c) = instance.annotations.get(ANNOTATION_COMPONENT)
                        && keep.is_none_or(|k| !k.contains(&(Kind::Actor, c.as_str())))
                    {
                        *by_component.entry(c).or_default() += 1;
                    }
                }
                for (component, count) in by_component {
                    remaining += 1;
                    let key = Key {
                        app: app.to_string(),
                        kind: Kind::Actor,
                        component: component.to_string(),
                        host: host_id.clone(),
                        id: actor.id.clone(),
                    };
                    if view.responsive && lease.held() && !self.in_flight.contains_key(&key) {
                        self.stop_actor(key, count, 0).await;
                    }
                }
            }
            for provider in &view.inventory.providers {
                let Some(component) = provider.annotations.get(ANNOTATION_COMPONENT) else {
                    continue;
                };
                if !owned(&provider.annotations, app, None)
                    || keep.is_some_and(|k| k.contains(&(Kind::Provider, component.as_str())))
                {
                    continue;
                }
                remaining += 1;
                let key = Key {
                    app: app.to_string(),
                    kind: Kind::Provider,
                    component: component.clone(),
                    host: host_id.clone(),
                    id: provider.image_ref.clone().unwrap_or_default(),
                };
                let stopping = self.in_flight.keys().any(|k| {
                    k.app == key.app
                        && k.kind == Kind::Provider
                        && k.component == key.component
                        && k.host == key.host
                });
                if view.responsive && lease.held() && !stopping {
                    self.stop_provider(key, provider).await;
                }
            }
        }
        remaining
    }
}
