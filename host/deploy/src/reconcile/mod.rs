//! The reconciler: one round compares every app's desired state with what the hosts run
//! and sends the control commands that close the gap (start, scale, update, stop, link),
//! then writes each app's status with a reason for everything not running.
//!
//! Commands are acknowledged before the host has done the work, so every start or stop
//! is remembered as *in flight* until the inventories show its result (or a failure event
//! arrives, or it times out); while in flight, nothing more is sent for that entity on that
//! host. That is what keeps a slow host from receiving the same start twice, and a second
//! stop from stopping someone else's instances.

mod actors;
mod failures;
mod links;
mod providers;
mod removal;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use nimbus_core::ctl::StringMap;
use nimbus_ctl::CtlClient;
use tokio::time::Instant;

use crate::error::DeployError;
use crate::journal::{Backoff, Failure, JournalListener};
use crate::lease::LeaseGuard;
use crate::model::{
    AppRecord, AppStatus, AppVersion, Desired, EntityStatus, LinkStatus, State, now_unix,
};
use crate::names::{ANNOTATION_APP, ANNOTATION_COMPONENT, ANNOTATION_VERSION};
use crate::observe::{HostView, Observation, Observer};
use crate::store::AppStore;

/// How long a lost host is mentioned in the reasons of what it ran.
const LOSS_MEMORY: Duration = Duration::from_secs(120);

/// Actor or provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Kind {
    Actor,
    Provider,
}

/// One entity of one app on one host; `id` is the actor key or the provider reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Key {
    pub app: String,
    pub kind: Kind,
    pub component: String,
    pub host: String,
    pub id: String,
}

/// A command sent and not yet seen done.
#[derive(Debug, Clone)]
pub(crate) struct InFlight {
    /// How many instances of ours the host should report once it is done (0: stopped).
    pub expected: u32,
    pub deadline: Instant,
    /// For provider starts: (provider reference, link name), to match failure events.
    pub provider: Option<(String, String)>,
}

/// A host lost recently: its id, when, and the (app, component) pairs it ran.
type Loss = (String, Instant, BTreeSet<(String, String)>);

/// Settings of the reconciler's rounds.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// How long a start or stop may take before it counts as failed.
    pub command_timeout: Duration,
    /// First back-off after a failed start on a host.
    pub backoff_base: Duration,
}

/// The reconciler's memory across rounds (reset when it loses the lease).
pub(crate) struct Reconciler {
    pub(crate) ctl: CtlClient,
    store: AppStore,
    holder: String,
    observer: Observer,
    journal: JournalListener,
    settings: Settings,
    pub(crate) in_flight: HashMap<Key, InFlight>,
    pub(crate) backoff: Backoff<Key>,
    /// The last failure of each (app, kind, component).
    pub(crate) failures: HashMap<(String, Kind, String), Failure>,
    /// Hosts lost recently: (host, when, the (app, component) pairs it ran).
    losses: Vec<Loss>,
    versions: HashMap<(String, String), AppVersion>,
    written: HashMap<String, AppStatus>,
    /// Providers of apps seen running: (host, provider key, link name) to whose they are.
    providers_seen: HashMap<(String, String, String), Key>,
}

/// The annotations of what a deployment starts.
pub(crate) fn annotations(app: &str, component: &str, version: &str) -> StringMap {
    StringMap::from([
        (ANNOTATION_APP.to_string(), app.to_string()),
        (ANNOTATION_COMPONENT.to_string(), component.to_string()),
        (ANNOTATION_VERSION.to_string(), version.to_string()),
    ])
}

/// Whether annotations mark something `app` started (for `component`, when given).
pub(crate) fn owned(annotations: &StringMap, app: &str, component: Option<&str>) -> bool {
    annotations.get(ANNOTATION_APP).map(String::as_str) == Some(app)
        && component
            .is_none_or(|c| annotations.get(ANNOTATION_COMPONENT).map(String::as_str) == Some(c))
}

/// The worst of several states (for an app: the worst of its parts).
pub(crate) fn worst(states: impl IntoIterator<Item = State>) -> State {
    states.into_iter().max().unwrap_or(State::Running)
}

impl Reconciler {
    pub(crate) fn new(
        ctl: CtlClient,
        store: AppStore,
        holder: String,
        observer: Observer,
        journal: JournalListener,
        settings: Settings,
    ) -> Self {
        let backoff = Backoff::new(settings.backoff_base, Duration::from_secs(60));
        Reconciler {
            ctl,
            store,
            holder,
            observer,
            journal,
            settings,
            in_flight: HashMap::new(),
            backoff,
            failures: HashMap::new(),
            losses: Vec::new(),
            versions: HashMap::new(),
            written: HashMap::new(),
            providers_seen: HashMap::new(),
        }
    }

    /// Forgets the memory of an earlier term: a new leader starts from what it sees.
    pub(crate) fn reset(&mut self) {
        self.observer.reset();
        self.in_flight.clear();
        self.written.clear();
        let _ = self.journal.take();
    }

    /// Whether commands are in flight (their results show in the next inventories).
    pub(crate) fn busy(&self) -> bool {
        !self.in_flight.is_empty()
    }

    /// One round over every app.
    pub(crate) async fn round(&mut self, lease: &LeaseGuard) -> Result<(), DeployError> {
        let mut observation = self.observer.observe().await?;
        self.absorb_journal(&mut observation);
        self.remember_providers(&observation);
        let now = Instant::now();
        for (host, view) in std::mem::take(&mut observation.lost) {
            self.losses.push((host, now, components_of(&view)));
        }
        self.losses
            .retain(|(_, at, _)| now.duration_since(*at) < LOSS_MEMORY);
        let records = self.store.records().await?;
        let mut deployed = Vec::new();
        for record in &records {
            let version = match record.desired.version() {
                Some(v) => self.version(&record.app, v).await?,
                None => None,
            };
            deployed.push((record, version));
        }
        let claimed_links =
            links::claimed(deployed.iter().filter_map(|(_, version)| version.as_ref()));
        for (record, version) in &deployed {
            if !lease.held() {
                break;
            }
            let status = self
                .reconcile_app(
                    record,
                    version.as_ref(),
                    &observation,
                    &claimed_links,
                    lease,
                )
                .await;
            self.write_status(status).await?;
        }
        Ok(())
    }

    async fn version(
        &mut self,
        app: &str,
        version: &str,
    ) -> Result<Option<AppVersion>, DeployError> {
        let key = (app.to_string(), version.to_string());
        if let Some(v) = self.versions.get(&key) {
            return Ok(Some(v.clone()));
        }
        let stored = self.store.version(app, version).await?;
        if let Some(v) = &stored {
            self.versions.insert(key, v.clone());
        }
        Ok(stored)
    }

    async fn reconcile_app(
        &mut self,
        record: &AppRecord,
        version: Option<&AppVersion>,
        observation: &Observation,
        claimed_links: &BTreeSet<(String, String, String)>,
        lease: &LeaseGuard,
    ) -> AppStatus {
        match (&record.desired, version) {
            (Desired::Deployed { .. }, Some(version)) => {
                let status = self.converge(version, observation, lease).await;
                // Links of earlier versions that this one (and no other app) defines no more.
                for earlier in earlier_versions(record, &version.version) {
                    if let Ok(Some(old)) = self.version(&record.app, &earlier).await {
                        self.remove_links(&old, observation, claimed_links, lease)
                            .await;
                    }
                }
                status
            }
            (Desired::Deployed { version }, None) => AppStatus {
                app: record.app.clone(),
                version: Some(version.clone()),
                state: State::Failed,
                reason: Some(format!(
                    "version {version} is not in the apps bucket; deploy it again or roll back (`wash app history {}`)",
                    record.app
                )),
                actors: Vec::new(),
                providers: Vec::new(),
                links: Vec::new(),
                reconciler: self.holder.clone(),
                since: now_unix(),
            },
            (Desired::Undeployed { last_version }, _) => {
                let last = match last_version {
                    Some(v) => self.version(&record.app, v).await.ok().flatten(),
                    None => None,
                };
                self.remove(
                    &record.app,
                    last.as_ref(),
                    observation,
                    claimed_links,
                    lease,
                )
                .await
            }
        }
    }

    /// Drives one deployed version towards running.
    async fn converge(
        &mut self,
        version: &AppVersion,
        observation: &Observation,
        lease: &LeaseGuard,
    ) -> AppStatus {
        let mut load = app_load(&version.app, observation);
        let mut actors = Vec::new();
        for spec in &version.manifest.actors {
            actors.push(
                self.converge_actor(version, spec, observation, &mut load, lease)
                    .await,
            );
        }
        let mut providers = Vec::new();
        for spec in &version.manifest.providers {
            providers.push(
                self.converge_provider(version, spec, observation, &mut load, lease)
                    .await,
            );
        }
        let links = self
            .converge_links(version, &providers, observation, lease)
            .await;
        self.stop_orphans(version, observation, lease).await;
        let state = worst(
            actors
                .iter()
                .chain(&providers)
                .map(|e| e.state)
                .chain(links.iter().map(|l| l.state)),
        );
        let reason = summary(&actors, &providers, &links);
        AppStatus {
            app: version.app.clone(),
            version: Some(version.version.clone()),
            state,
            reason,
            actors,
            providers,
            links,
            reconciler: self.holder.clone(),
            since: now_unix(),
        }
    }

    /// Settles the in-flight commands of one component of `app` against what the
    /// observation shows (`observed`: instances of ours for that command's host and
    /// target) and forgets those of hosts that are gone. Returns the commands still
    /// running, each with whether it expects instances (a start, not a stop).
    pub(crate) fn settle_component(
        &mut self,
        app: &str,
        kind: Kind,
        component: &str,
        observation: &Observation,
        observed: impl Fn(&Key) -> u32,
    ) -> Vec<(Key, bool)> {
        let flying: Vec<Key> = self
            .in_flight
            .keys()
            .filter(|k| k.app == app && k.kind == kind && k.component == component)
            .cloned()
            .collect();
        let mut running = Vec::new();
        for k in flying {
            if !observation.hosts.contains_key(&k.host) {
                self.in_flight.remove(&k);
                continue;
            }
            if self.settle(&k, observed(&k)) {
                let starting = self.in_flight.get(&k).is_some_and(|f| f.expected > 0);
                running.push((k, starting));
            }
        }
        running
    }

    /// Settles in-flight commands against `observed` (instances of ours on the host):
    /// done, timed out (a failure), or still running. Returns whether it is still running.
    pub(crate) fn settle(&mut self, key: &Key, observed: u32) -> bool {
        let Some(flight) = self.in_flight.get(key) else {
            return false;
        };
        let (expected, deadline) = (flight.expected, flight.deadline);
        if observed == expected {
            self.in_flight.remove(key);
            if observed > 0 {
                self.backoff.succeeded(key);
            }
            return false;
        }
        if Instant::now() < deadline {
            return true;
        }
        let timeout = self.settings.command_timeout;
        self.in_flight.remove(key);
        self.backoff.failed(key.clone());
        self.failures.insert(
            (key.app.clone(), key.kind, key.component.clone()),
            Failure {
                host_id: key.host.clone(),
                message: format!(
                    "the host did not finish within {timeout:?} (expected {expected} instance(s) of ours, saw {observed}); check its log"
                ),
            },
        );
        false
    }

    pub(crate) fn fly(&mut self, key: Key, expected: u32, provider: Option<(String, String)>) {
        self.in_flight.insert(
            key,
            InFlight {
                expected,
                deadline: Instant::now() + self.settings.command_timeout,
                provider,
            },
        );
    }

    /// Records a command the host refused (or that could not be sent).
    pub(crate) fn refused(&mut self, key: Key, message: String) {
        self.backoff.failed(key.clone());
        self.failures.insert(
            (key.app.clone(), key.kind, key.component.clone()),
            Failure {
                host_id: key.host,
                message,
            },
        );
    }

    /// What recent host losses say about an entity that is not running as desired.
    pub(crate) fn loss_reason(&self, app: &str, component: &str) -> Option<String> {
        let lost: Vec<&str> = self
            .losses
            .iter()
            .filter(|(_, _, ran)| ran.contains(&(app.to_string(), component.to_string())))
            .map(|(host, _, _)| host.as_str())
            .collect();
        (!lost.is_empty()).then(|| format!("host {} lost; re-placing its share", lost.join(", ")))
    }

    /// The last failure of an entity, as a reason.
    pub(crate) fn failure_reason(&self, app: &str, kind: Kind, component: &str) -> Option<String> {
        self.failures
            .get(&(app.to_string(), kind, component.to_string()))
            .map(|f| format!("last start failed on host {}: {}", f.host_id, f.message))
    }

    /// Writes a status when it differs from the last one written (ignoring `since`).
    async fn write_status(&mut self, mut status: AppStatus) -> Result<(), DeployError> {
        if let Some(last) = self.written.get(&status.app) {
            let mut same = status.clone();
            same.since = last.since;
            if &same == last {
                return Ok(());
            }
        }
        status.since = now_unix();
        self.store.put_status(&status).await?;
        tracing::info!(app = %status.app, state = status.state.as_str(), reason = ?status.reason, "app status");
        self.written.insert(status.app.clone(), status);
        Ok(())
    }
}

/// The versions the history names other than `current`, each once.
fn earlier_versions(record: &AppRecord, current: &str) -> BTreeSet<String> {
    record
        .history
        .iter()
        .filter_map(|h| h.version.clone())
        .filter(|v| v != current)
        .collect()
}

/// How many entities of `app` each host runs (placement prefers the least loaded).
/// Hosts for the replicas of one component that are not placed yet: responsive hosts, not
/// in `placed`, that pass `eligible` (labels, back-off, starts under way), chosen by the
/// component's spread and the app's load per host. Actors and providers place alike.
fn choose_new_hosts(
    observation: &Observation,
    placed: &BTreeSet<&str>,
    replicas: u32,
    spread: &[nimbus_app::Spread],
    load: &BTreeMap<String, usize>,
    eligible: impl Fn(&str, &HostView) -> bool,
) -> Vec<String> {
    let placed_labels: Vec<&_> = placed
        .iter()
        .filter_map(|h| observation.hosts.get(*h))
        .map(|v| &v.inventory.labels)
        .collect();
    let candidates: Vec<crate::placement::Candidate<'_>> = observation
        .hosts
        .iter()
        .filter(|(id, v)| v.responsive && !placed.contains(id.as_str()) && eligible(id, v))
        .map(|(id, v)| crate::placement::Candidate {
            id,
            labels: &v.inventory.labels,
            load: load.get(id).copied().unwrap_or(0),
        })
        .collect();
    crate::placement::choose(replicas, spread, &placed_labels, &candidates)
}

fn app_load(app: &str, observation: &Observation) -> BTreeMap<String, usize> {
    observation
        .hosts
        .iter()
        .map(|(id, view)| {
            let actors = view
                .inventory
                .actors
                .iter()
                .filter(|a| a.instances.iter().any(|i| owned(&i.annotations, app, None)))
                .count();
            let providers = view
                .inventory
                .providers
                .iter()
                .filter(|p| owned(&p.annotations, app, None))
                .count();
            (id.clone(), actors + providers)
        })
        .collect()
}

/// The (app, component) pairs a host ran.
fn components_of(view: &HostView) -> BTreeSet<(String, String)> {
    let actor_annotations = view
        .inventory
        .actors
        .iter()
        .flat_map(|a| a.instances.iter().map(|i| &i.annotations));
    let provider_annotations = view.inventory.providers.iter().map(|p| &p.annotations);
    actor_annotations
        .chain(provider_annotations)
        .filter_map(|a| {
            Some((
                a.get(ANNOTATION_APP)?.clone(),
                a.get(ANNOTATION_COMPONENT)?.clone(),
            ))
        })
        .collect()
}

/// One line for the app: the first entity that is not running, and why.
fn summary(
    actors: &[EntityStatus],
    providers: &[EntityStatus],
    links: &[LinkStatus],
) -> Option<String> {
    let entity = actors
        .iter()
        .map(|a| ("actor", a))
        .chain(providers.iter().map(|p| ("provider", p)))
        .filter(|(_, e)| e.state != State::Running)
        .max_by_key(|(_, e)| e.state);
    if let Some((kind, e)) = entity {
        return Some(format!(
            "{kind} {} is {}: {}",
            e.name,
            e.state.as_str(),
            e.reason.as_deref().unwrap_or("no reason known")
        ));
    }
    links.iter().find(|l| l.state != State::Running).map(|l| {
        format!(
            "link {} -> {} is {}: {}",
            l.actor,
            l.provider,
            l.state.as_str(),
            l.reason.as_deref().unwrap_or("no reason known")
        )
    })
}
