//! Links: put each manifest link with the key of a running provider replica and the
//! manifest's values, and, on undeploy, delete the app's links unless another deployed
//! app defines the same link (actor, contract, link name) too.

use std::collections::{BTreeSet, HashMap};

use nimbus_core::link::LinkDefinition;

use super::Reconciler;
use crate::lease::LeaseGuard;
use crate::model::{AppVersion, EntityStatus, LinkStatus, State};
use crate::observe::Observation;

/// The (actor key, contract, link name) triples the links of `versions` define.
pub(crate) fn claimed<'a>(
    versions: impl Iterator<Item = &'a AppVersion>,
) -> BTreeSet<(String, String, String)> {
    versions.flat_map(triples).collect()
}

fn triples(version: &AppVersion) -> Vec<(String, String, String)> {
    version
        .manifest
        .links
        .iter()
        .filter_map(|link| {
            let actor = version.actors.get(&link.actor)?;
            let provider = version.manifest.provider(&link.provider)?;
            Some((
                actor.actor_id.clone(),
                provider.contract_id()?.to_string(),
                provider.link_name.clone(),
            ))
        })
        .collect()
}

impl Reconciler {
    pub(crate) async fn converge_links(
        &mut self,
        version: &AppVersion,
        providers: &[EntityStatus],
        observation: &Observation,
        lease: &LeaseGuard,
    ) -> Vec<LinkStatus> {
        let mut statuses = Vec::new();
        for link in &version.manifest.links {
            let (Some(actor), Some(spec)) = (
                version.actors.get(&link.actor),
                version.manifest.provider(&link.provider),
            ) else {
                continue;
            };
            let contract = spec.contract_id().unwrap_or_default().to_string();
            let mut status = LinkStatus {
                actor: link.actor.clone(),
                provider: link.provider.clone(),
                contract_id: contract.clone(),
                link_name: spec.link_name.clone(),
                state: State::Running,
                reason: None,
            };
            let provider_id = providers
                .iter()
                .find(|p| p.name == link.provider)
                .and_then(|p| {
                    p.running
                        .iter()
                        .find(|r| r.current)
                        .map(|r| r.id.clone())
                        .or_else(|| p.id.clone())
                });
            let Some(provider_id) = provider_id else {
                status.state = State::Reconciling;
                status.reason = Some(format!(
                    "waiting for provider `{}` to run (the link needs its key)",
                    link.provider
                ));
                statuses.push(status);
                continue;
            };
            let values: HashMap<String, String> = link
                .values
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let desired = LinkDefinition::new(
                actor.actor_id.clone(),
                provider_id,
                spec.link_name.clone(),
                contract,
                values,
            );
            let Some(links) = &observation.links else {
                status.state = State::Reconciling;
                status.reason = Some("no host answered for the lattice's links this round".into());
                statuses.push(status);
                continue;
            };
            let in_place = links.iter().any(|l| {
                l.actor_id == desired.actor_id
                    && l.contract_id == desired.contract_id
                    && l.link_name == desired.link_name
                    && l.provider_id == desired.provider_id
                    && l.values == desired.values
            });
            if !in_place && lease.held() {
                if let Err(e) = self.ctl.put_link(desired).await {
                    status.state = State::Failed;
                    status.reason = Some(format!("putting the link failed: {e}"));
                } else {
                    tracing::info!(app = %version.app, actor = %link.actor, provider = %link.provider, "link put");
                }
            }
            statuses.push(status);
        }
        statuses
    }

    /// Deletes the links of `version` that no deployed app claims; returns how many of
    /// them are still in the lattice.
    pub(crate) async fn remove_links(
        &mut self,
        version: &AppVersion,
        observation: &Observation,
        claimed: &BTreeSet<(String, String, String)>,
        lease: &LeaseGuard,
    ) -> usize {
        let Some(links) = &observation.links else {
            return triples(version).len();
        };
        let mut left = 0;
        for (actor_id, contract, link_name) in triples(version) {
            if claimed.contains(&(actor_id.clone(), contract.clone(), link_name.clone())) {
                continue;
            }
            let present = links.iter().any(|l| {
                l.actor_id == actor_id && l.contract_id == contract && l.link_name == link_name
            });
            if !present {
                continue;
            }
            left += 1;
            if lease.held() {
                match self.ctl.delete_link(&actor_id, &contract, &link_name).await {
                    Ok(()) => left -= 1,
                    Err(e) => {
                        tracing::warn!(app = %version.app, error = %e, "deleting a link failed")
                    }
                }
            }
        }
        left
    }
}
