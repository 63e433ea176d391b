//! Actors: place `replicas` copies (each with `instances`) on distinct matching hosts,
//! keep their instance counts, re-place what lost hosts ran, upgrade modules host by host,
//! and retire replicas of an old key or on hosts that no longer match.

use std::collections::{BTreeMap, BTreeSet};

use nimbus_app::ActorSpec;

use super::{Key, Kind, Reconciler, annotations, owned};
use crate::lease::LeaseGuard;
use crate::model::{AppVersion, EntityStatus, Placement, State};
use crate::names::{ANNOTATION_APP, ANNOTATION_COMPONENT, ANNOTATION_VERSION};
use crate::observe::{HostView, Observation};
use crate::placement;
use nimbus_core::ctl::StringMap;

/// One host's instances of ours of one actor key.
struct Seen<'a> {
    host: &'a str,
    view: &'a HostView,
    id: &'a str,
    ours: u32,
    image: Option<&'a str>,
    version: Option<&'a str>,
}

/// A module reference without its `file://` prefix (hosts report it with one).
pub(crate) fn plain_ref(reference: &str) -> &str {
    reference.strip_prefix("file://").unwrap_or(reference)
}

/// Labels as `k=v, k=v` (or `(none)`).
pub(crate) fn fmt_labels(labels: &BTreeMap<String, String>) -> String {
    if labels.is_empty() {
        return "(none)".to_string();
    }
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why no (or too few) hosts can take replicas, when that is the case.
pub(crate) fn placement_reason(
    wanted: u32,
    host_labels: &BTreeMap<String, String>,
    observation: &Observation,
) -> Option<String> {
    let responsive: Vec<(&String, &HostView)> = observation
        .hosts
        .iter()
        .filter(|(_, v)| v.responsive)
        .collect();
    let eligible = responsive
        .iter()
        .filter(|(_, v)| placement::matches(&v.inventory.labels, host_labels))
        .count();
    if responsive.is_empty() {
        return Some(
            "no host answers in the lattice; start one with `wash up --nats-url ...`".into(),
        );
    }
    if eligible == 0 {
        let seen: Vec<String> = responsive
            .iter()
            .map(|(id, v)| {
                let own: BTreeMap<String, String> = v
                    .inventory
                    .labels
                    .iter()
                    .filter(|(k, _)| !k.starts_with("hostcore."))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                format!("{} has {}", short(id), fmt_labels(&own))
            })
            .collect();
        return Some(format!(
            "no host matches labels {} ({}); start one with `wash up --label ...` or change host_labels",
            fmt_labels(host_labels),
            seen.join("; ")
        ));
    }
    (eligible < wanted as usize).then(|| {
        format!(
            "wants {wanted} replicas on distinct hosts, but only {eligible} host(s) match labels {}",
            fmt_labels(host_labels)
        )
    })
}

/// A host id shortened for reasons (the full id is in `running`).
pub(crate) fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

impl Reconciler {
    pub(crate) async fn converge_actor(
        &mut self,
        version: &AppVersion,
        spec: &ActorSpec,
        observation: &Observation,
        load: &mut BTreeMap<String, usize>,
        lease: &LeaseGuard,
    ) -> EntityStatus {
        let app = version.app.as_str();
        let mut status = EntityStatus {
            name: spec.name.clone(),
            id: None,
            desired_replicas: spec.replicas,
            desired_instances: spec.instances,
            running: Vec::new(),
            state: State::Failed,
            reason: None,
        };
        let Some(artifact) = version.actors.get(&spec.name) else {
            status.reason =
                Some("the stored version has no module for this actor; deploy it again".into());
            return status;
        };
        status.id = Some(artifact.actor_id.clone());
        let desired_ref = plain_ref(&artifact.module_ref);
        let per_host = spec.instances.max(1);
        let key = |host: &str, id: &str| Key {
            app: app.to_string(),
            kind: Kind::Actor,
            component: spec.name.clone(),
            host: host.to_string(),
            id: id.to_string(),
        };

        let mut seen = Vec::new();
        for (host, view) in &observation.hosts {
            for actor in &view.inventory.actors {
                let mine: Vec<_> = actor
                    .instances
                    .iter()
                    .filter(|i| owned(&i.annotations, app, Some(&spec.name)))
                    .collect();
                if mine.is_empty() {
                    continue;
                }
                seen.push(Seen {
                    host,
                    view,
                    id: &actor.id,
                    ours: mine.len() as u32,
                    image: actor.image_ref.as_deref(),
                    version: mine[0]
                        .annotations
                        .get(ANNOTATION_VERSION)
                        .map(String::as_str),
                });
            }
        }
        // Settle what was in flight for this actor.
        let mut starting = BTreeSet::new();
        let mut busy = BTreeSet::new();
        let running = self.settle_component(app, Kind::Actor, &spec.name, observation, |k| {
            seen.iter()
                .find(|s| s.host == k.host && s.id == k.id)
                .map_or(0, |s| s.ours)
        });
        for (k, start) in running {
            if start && k.id == artifact.actor_id {
                starting.insert(k.host.clone());
            }
            busy.insert((k.host, k.id));
        }
        let fits = |view: &HostView| placement::matches(&view.inventory.labels, &spec.host_labels);
        let (current, stale): (Vec<&Seen<'_>>, Vec<&Seen<'_>>) = seen
            .iter()
            .partition(|s| s.id == artifact.actor_id && fits(s.view));
        let placed: BTreeSet<&str> = current
            .iter()
            .map(|s| s.host)
            .chain(starting.iter().map(String::as_str))
            .collect();
        let mut acted: Vec<String> = Vec::new();

        // 1. Keep each replica at `instances`.
        for s in &current {
            if !s.view.responsive
                || busy.contains(&(s.host.to_string(), s.id.to_string()))
                || self.actor_starting_on(s.host, s.id)
                || !lease.held()
            {
                continue;
            }
            if s.ours < per_host {
                self.start_actor(
                    key(s.host, s.id),
                    desired_ref,
                    per_host - s.ours,
                    per_host,
                    version,
                )
                .await;
                acted.push(format!("scaling up on host {}", short(s.host)));
            } else if s.ours > per_host {
                self.stop_actor(key(s.host, s.id), s.ours - per_host, per_host)
                    .await;
                acted.push(format!("scaling down on host {}", short(s.host)));
            }
        }
        // 2. Place missing replicas.
        if placed.len() < spec.replicas as usize && lease.held() {
            let chosen = super::choose_new_hosts(
                observation,
                &placed,
                spec.replicas,
                &spec.spread,
                load,
                |id, v| {
                    fits(v)
                        && !self.backoff.waiting(&key(id, &artifact.actor_id))
                        && !busy.contains(&(id.to_string(), artifact.actor_id.clone()))
                        && !self.actor_starting_on(id, &artifact.actor_id)
                },
            );
            for host in chosen {
                *load.entry(host.clone()).or_default() += 1;
                self.start_actor(
                    key(&host, &artifact.actor_id),
                    desired_ref,
                    per_host,
                    per_host,
                    version,
                )
                .await;
                acted.push(format!("starting on host {}", short(&host)));
            }
        }
        // 3. Retire surplus replicas.
        if placed.len() > spec.replicas as usize && lease.held() {
            let candidates: Vec<(&str, &_, usize)> = current
                .iter()
                .filter(|s| {
                    s.view.responsive && !busy.contains(&(s.host.to_string(), s.id.to_string()))
                })
                .map(|s| {
                    (
                        s.host,
                        &s.view.inventory.labels,
                        load.get(s.host).copied().unwrap_or(0),
                    )
                })
                .collect();
            let keep_at_least = spec.replicas as usize;
            let extra = placed.len() - keep_at_least;
            for host in placement::surplus(
                (candidates.len().saturating_sub(extra)) as u32,
                &spec.spread,
                &candidates,
            ) {
                if let Some(s) = current.iter().find(|s| s.host == host) {
                    self.stop_actor(key(s.host, s.id), s.ours, 0).await;
                    acted.push(format!(
                        "stopping a surplus replica on host {}",
                        short(s.host)
                    ));
                }
            }
        }
        let any_busy = !busy.is_empty() || !acted.is_empty();
        // 4. Rolling upgrade: one host per round, and only while nothing else is in flight.
        let outdated: Vec<&&Seen<'_>> = current
            .iter()
            .filter(|s| s.image.map(plain_ref) != Some(desired_ref))
            .collect();
        if !any_busy
            && lease.held()
            && let Some(s) = outdated.iter().find(|s| s.view.responsive)
        {
            match self.ctl.update_actor(s.host, s.id, desired_ref).await {
                Ok(()) => {
                    tracing::info!(app, actor = %spec.name, host = %s.host, version = %version.version, "upgraded actor module");
                    acted.push(format!(
                        "upgrading host {} to version {}",
                        short(s.host),
                        version.version
                    ));
                }
                Err(e) => {
                    let message = format!("upgrade refused: {e}");
                    self.refused(key(s.host, s.id), message);
                }
            }
        }
        // 5. Retire old replicas once the new ones serve.
        let serving = current
            .iter()
            .filter(|s| {
                s.view.responsive && s.image.map(plain_ref) == Some(desired_ref) && s.ours > 0
            })
            .count();
        let eligible = observation
            .hosts
            .values()
            .filter(|v| v.responsive && fits(v))
            .count();
        let enough = serving >= (spec.replicas as usize).min(eligible).max(1);
        if enough && busy.is_empty() && lease.held() {
            for s in stale.iter().filter(|s| s.view.responsive) {
                self.stop_actor(key(s.host, s.id), s.ours, 0).await;
                acted.push(format!(
                    "retiring the old replica on host {}",
                    short(s.host)
                ));
            }
        }

        status.running = seen
            .iter()
            .map(|s| Placement {
                host_id: s.host.to_string(),
                instances: s.ours,
                id: s.id.to_string(),
                version: s.version.map(str::to_string),
                current: s.id == artifact.actor_id
                    && fits(s.view)
                    && s.image.map(plain_ref) == Some(desired_ref),
            })
            .collect();
        let unresponsive: Vec<&str> = current
            .iter()
            .filter(|s| !s.view.responsive)
            .map(|s| short(s.host))
            .collect();
        status.state = if serving >= spec.replicas as usize
            && stale.is_empty()
            && outdated.is_empty()
            && !any_busy
            && unresponsive.is_empty()
        {
            State::Running
        } else if any_busy || !acted.is_empty() {
            State::Reconciling
        } else if serving > 0 {
            State::Degraded
        } else {
            State::Failed
        };
        if status.state != State::Running {
            let mut reasons: Vec<String> = acted;
            if !unresponsive.is_empty() {
                reasons.push(format!(
                    "host {} does not answer (declared lost if silent for the lost-host time)",
                    unresponsive.join(", ")
                ));
            }
            if placed.len() < spec.replicas as usize
                && let Some(r) = placement_reason(spec.replicas, &spec.host_labels, observation)
            {
                reasons.push(r);
            }
            if let Some(s) = stale
                .iter()
                .find(|s| s.id != artifact.actor_id && s.image.map(plain_ref) == Some(desired_ref))
            {
                reasons.push(format!(
                    "the module at {desired_ref} is signed as actor {}, but the version expects {}; the file changed after the deploy, deploy again",
                    s.id, artifact.actor_id
                ));
            }
            reasons.extend(self.failure_reason(app, Kind::Actor, &spec.name));
            reasons.extend(self.loss_reason(app, &spec.name));
            if reasons.is_empty() && !busy.is_empty() {
                reasons.push("waiting for hosts to finish starting or stopping".into());
            }
            status.reason = (!reasons.is_empty()).then(|| reasons.join("; "));
        }
        status
    }

    /// Whether a start of actor `id` is in flight on `host` for any app. A host that gets
    /// a second start of an actor it is still loading may load it twice, so starts of one
    /// key on one host are sent one at a time.
    fn actor_starting_on(&self, host: &str, id: &str) -> bool {
        self.in_flight
            .iter()
            .any(|(k, f)| k.kind == Kind::Actor && k.host == host && k.id == id && f.expected > 0)
    }

    async fn start_actor(
        &mut self,
        key: Key,
        module_ref: &str,
        count: u32,
        expected: u32,
        version: &AppVersion,
    ) {
        let count16 = u16::try_from(count).unwrap_or(u16::MAX);
        let result = self
            .ctl
            .start_actor_annotated(
                &key.host,
                module_ref,
                count16,
                annotations(&version.app, &key.component, &version.version),
            )
            .await;
        match result {
            Ok(()) => {
                tracing::info!(app = %key.app, actor = %key.component, host = %key.host, count, "starting actor");
                self.fly(key, expected, None);
            }
            Err(e) => {
                tracing::warn!(app = %key.app, actor = %key.component, host = %key.host, error = %e, "start actor refused");
                self.refused(key, e.to_string());
            }
        }
    }

    /// Stops `count` of our instances of `key` on its host; `expected` remain.
    pub(crate) async fn stop_actor(&mut self, key: Key, count: u32, expected: u32) {
        let count16 = u16::try_from(count).unwrap_or(u16::MAX).max(1);
        let ours = StringMap::from([
            (ANNOTATION_APP.to_string(), key.app.clone()),
            (ANNOTATION_COMPONENT.to_string(), key.component.clone()),
        ]);
        match self
            .ctl
            .stop_actor_annotated(&key.host, &key.id, count16, ours)
            .await
        {
            Ok(()) => {
                tracing::info!(app = %key.app, actor = %key.component, host = %key.host, count, "stopping actor instances");
                self.fly(key, expected, None);
            }
            Err(e) => {
                tracing::warn!(app = %key.app, actor = %key.component, host = %key.host, error = %e, "stop actor refused");
            }
        }
    }
}
