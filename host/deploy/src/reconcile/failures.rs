//! Turning the lattice's events into the reconciler's memory: failed starts and crashed
//! providers become reasons and back-offs, stopped hosts are lost at once.

use super::{Key, Kind, Reconciler};
use crate::journal::Failure;
use crate::names::{ANNOTATION_APP, ANNOTATION_COMPONENT};
use crate::observe::Observation;

impl Reconciler {
    /// Applies what the events since the last round said.
    pub(crate) fn absorb_journal(&mut self, observation: &mut Observation) {
        let journal = self.journal.take();
        for host in journal.stopped_hosts {
            observation.hosts.remove(&host);
            if let Some(view) = self.observer.stopped(&host) {
                tracing::info!(host = %host, "host stopped; re-placing its share");
                observation.lost.push((host, view));
            }
        }
        for (app, component, failure) in journal.actor_failures {
            let keys: Vec<Key> = self
                .in_flight
                .keys()
                .filter(|k| {
                    k.kind == Kind::Actor
                        && k.app == app
                        && k.component == component
                        && k.host == failure.host_id
                })
                .cloned()
                .collect();
            for key in keys {
                self.in_flight.remove(&key);
                self.backoff.failed(key);
            }
            self.failures.insert((app, Kind::Actor, component), failure);
        }
        for (host, provider_ref, link_name, error) in journal.provider_failures {
            let keys: Vec<Key> = self
                .in_flight
                .iter()
                .filter(|(k, f)| {
                    k.host == host
                        && f.provider.as_ref() == Some(&(provider_ref.clone(), link_name.clone()))
                })
                .map(|(k, _)| k.clone())
                .collect();
            for key in keys {
                self.in_flight.remove(&key);
                self.failures.insert(
                    (key.app.clone(), Kind::Provider, key.component.clone()),
                    Failure {
                        host_id: host.clone(),
                        message: error.clone(),
                    },
                );
                self.backoff.failed(key);
            }
        }
        for exit in journal.provider_exits {
            // Whose provider it was: its annotations say, or else the one the last rounds
            // saw there (it is gone from the inventories by now).
            let seen = self
                .providers_seen
                .get(&(exit.host_id.clone(), exit.provider_id, exit.link_name))
                .cloned();
            let key = match (exit.owner, seen) {
                (_, Some(key)) => key,
                (Some((app, component)), None) => {
                    let reference = self
                        .in_flight
                        .iter()
                        .find(|(k, _)| {
                            k.app == app && k.component == component && k.host == exit.host_id
                        })
                        .map(|(k, _)| k.id.clone())
                        .unwrap_or_default();
                    Key {
                        app,
                        kind: Kind::Provider,
                        component,
                        host: exit.host_id.clone(),
                        id: reference,
                    }
                }
                (None, None) => continue,
            };
            let (host, reason) = (exit.host_id, exit.reason);
            self.in_flight.remove(&key);
            self.backoff.failed(key.clone());
            self.failures.insert(
                (key.app.clone(), Kind::Provider, key.component.clone()),
                Failure {
                    host_id: host,
                    message: format!("provider stopped: {reason}"),
                },
            );
        }
    }

    /// Remembers which app's provider runs where, to attribute a provider's exit.
    pub(crate) fn remember_providers(&mut self, observation: &Observation) {
        for (host, view) in &observation.hosts {
            for p in &view.inventory.providers {
                if let (Some(app), Some(component)) = (
                    p.annotations.get(ANNOTATION_APP),
                    p.annotations.get(ANNOTATION_COMPONENT),
                ) {
                    self.providers_seen.insert(
                        (host.clone(), p.id.clone(), p.link_name.clone()),
                        Key {
                            app: app.clone(),
                            kind: Kind::Provider,
                            component: component.clone(),
                            host: host.clone(),
                            id: p.image_ref.clone().unwrap_or_default(),
                        },
                    );
                }
            }
        }
    }
}
