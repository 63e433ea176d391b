//! Providers: run `replicas` copies on distinct matching hosts. A provider of the same
//! contract and link name that someone else started on a host serves the app too (a host
//! runs one provider per link name), but is never stopped by it.

use std::collections::{BTreeMap, BTreeSet};

use nimbus_app::ProviderSpec;
use nimbus_core::ctl::ProviderDescription;

use super::actors::{placement_reason, short};
use super::{Key, Kind, Reconciler, annotations, owned};
use crate::lease::LeaseGuard;
use crate::model::{AppVersion, EntityStatus, Placement, State};
use crate::names::ANNOTATION_VERSION;
use crate::observe::{HostView, Observation};
use crate::placement;

/// What `lp` commands name to start the provider of `spec`.
pub(crate) fn provider_ref(spec: &ProviderSpec) -> String {
    match (spec.builtin, &spec.path) {
        (Some(builtin), _) => builtin.provider_ref(),
        (None, Some(path)) => path.display().to_string(),
        (None, None) => String::new(),
    }
}

struct Seen<'a> {
    host: &'a str,
    view: &'a HostView,
    provider: &'a ProviderDescription,
    ours: bool,
}

impl Reconciler {
    pub(crate) async fn converge_provider(
        &mut self,
        version: &AppVersion,
        spec: &ProviderSpec,
        observation: &Observation,
        load: &mut BTreeMap<String, usize>,
        lease: &LeaseGuard,
    ) -> EntityStatus {
        let app = version.app.as_str();
        let reference = provider_ref(spec);
        let contract = spec.contract_id().unwrap_or_default().to_string();
        let key = |host: &str| Key {
            app: app.to_string(),
            kind: Kind::Provider,
            component: spec.name.clone(),
            host: host.to_string(),
            id: reference.clone(),
        };
        let fits = |view: &HostView| placement::matches(&view.inventory.labels, &spec.host_labels);
        let mut seen = Vec::new();
        for (host, view) in &observation.hosts {
            for provider in &view.inventory.providers {
                if provider.contract_id == contract && provider.link_name == spec.link_name {
                    seen.push(Seen {
                        host,
                        view,
                        provider,
                        ours: owned(&provider.annotations, app, Some(&spec.name)),
                    });
                }
            }
        }
        let mut busy = BTreeSet::new();
        let mut starting = BTreeSet::new();
        let running = self.settle_component(app, Kind::Provider, &spec.name, observation, |k| {
            u32::from(seen.iter().any(|s| s.host == k.host && s.ours))
        });
        for (k, start) in running {
            if start {
                starting.insert(k.host.clone());
            }
            busy.insert(k.host);
        }
        let (serving, misplaced): (Vec<&Seen<'_>>, Vec<&Seen<'_>>) =
            seen.iter().partition(|s| fits(s.view));
        let misplaced: Vec<&Seen<'_>> = misplaced.into_iter().filter(|s| s.ours).collect();
        let placed: BTreeSet<&str> = serving
            .iter()
            .map(|s| s.host)
            .chain(starting.iter().map(String::as_str))
            .collect();
        let mut acted = Vec::new();

        if placed.len() < spec.replicas as usize && lease.held() {
            let chosen = super::choose_new_hosts(
                observation,
                &placed,
                spec.replicas,
                &spec.spread,
                load,
                |id, v| fits(v) && !busy.contains(id) && !self.backoff.waiting(&key(id)),
            );
            for host in chosen {
                *load.entry(host.clone()).or_default() += 1;
                let result = self
                    .ctl
                    .start_provider_annotated(
                        &host,
                        &reference,
                        &spec.link_name,
                        spec.config_json(),
                        annotations(app, &spec.name, &version.version),
                    )
                    .await;
                match result {
                    Ok(()) => {
                        tracing::info!(app, provider = %spec.name, host = %host, "starting provider");
                        self.fly(
                            key(&host),
                            1,
                            Some((reference.clone(), spec.link_name.clone())),
                        );
                        acted.push(format!("starting on host {}", short(&host)));
                    }
                    Err(e) => {
                        tracing::warn!(app, provider = %spec.name, host = %host, error = %e, "start provider refused");
                        self.refused(key(&host), e.to_string());
                    }
                }
            }
        }
        if placed.len() > spec.replicas as usize && lease.held() {
            let ours: Vec<(&str, &_, usize)> = serving
                .iter()
                .filter(|s| s.ours && s.view.responsive && !busy.contains(s.host))
                .map(|s| {
                    (
                        s.host,
                        &s.view.inventory.labels,
                        load.get(s.host).copied().unwrap_or(0),
                    )
                })
                .collect();
            let extra = placed.len() - spec.replicas as usize;
            for host in
                placement::surplus(ours.len().saturating_sub(extra) as u32, &spec.spread, &ours)
            {
                if let Some(s) = serving.iter().find(|s| s.host == host) {
                    self.stop_provider(key(s.host), s.provider).await;
                    acted.push(format!(
                        "stopping a surplus replica on host {}",
                        short(s.host)
                    ));
                }
            }
        }
        let live = serving.iter().filter(|s| s.view.responsive).count();
        if live >= spec.replicas as usize && busy.is_empty() && lease.held() {
            for s in misplaced.iter().filter(|s| s.view.responsive) {
                self.stop_provider(key(s.host), s.provider).await;
                acted.push(format!(
                    "retiring the replica on host {} (labels no longer match)",
                    short(s.host)
                ));
            }
        }

        let mut ids: Vec<&str> = serving.iter().map(|s| s.provider.id.as_str()).collect();
        ids.dedup();
        let status_running = seen
            .iter()
            .map(|s| Placement {
                host_id: s.host.to_string(),
                instances: 1,
                id: s.provider.id.clone(),
                version: s.provider.annotations.get(ANNOTATION_VERSION).cloned(),
                current: fits(s.view),
            })
            .collect();
        let any_busy = !busy.is_empty() || !acted.is_empty();
        let state = if live >= spec.replicas as usize && misplaced.is_empty() && !any_busy {
            State::Running
        } else if any_busy {
            State::Reconciling
        } else if live > 0 {
            State::Degraded
        } else {
            State::Failed
        };
        let reason = (state != State::Running).then(|| {
            let mut reasons: Vec<String> = acted;
            if placed.len() < spec.replicas as usize
                && let Some(r) = placement_reason(spec.replicas, &spec.host_labels, observation)
            {
                reasons.push(r);
            }
            reasons.extend(self.failure_reason(app, Kind::Provider, &spec.name));
            reasons.extend(self.loss_reason(app, &spec.name));
            if reasons.is_empty() {
                reasons.push("waiting for hosts to finish starting or stopping".into());
            }
            reasons.join("; ")
        });
        EntityStatus {
            name: spec.name.clone(),
            id: ids.first().map(|s| s.to_string()),
            desired_replicas: spec.replicas,
            desired_instances: 1,
            running: status_running,
            state,
            reason,
        }
    }

    /// Stops a provider we started; it counts as in flight until the host no longer lists it.
    pub(crate) async fn stop_provider(&mut self, key: Key, provider: &ProviderDescription) {
        match self
            .ctl
            .stop_provider(
                &key.host,
                &provider.id,
                &provider.link_name,
                &provider.contract_id,
            )
            .await
        {
            Ok(()) => {
                tracing::info!(app = %key.app, provider = %key.component, host = %key.host, "stopping provider");
                self.fly(key, 0, None);
            }
            Err(e) => {
                tracing::warn!(app = %key.app, provider = %key.component, host = %key.host, error = %e, "stop provider refused");
            }
        }
    }
}
