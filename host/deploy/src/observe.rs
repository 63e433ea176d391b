//! What runs in the lattice, as the reconciler sees it each round: the hosts that answer
//! a ping (with their inventories), the hosts that stopped answering but are not yet
//! declared lost (their last inventory still counts, so a hiccup does not start a second
//! copy of everything), and the hosts declared lost (no answer for `lost_after`, or a
//! `host_stopped` event), whose share the reconciler places elsewhere.

use std::collections::BTreeMap;
use std::time::Duration;

use nimbus_core::ctl::HostInventory;
use nimbus_core::link::LinkDefinition;
use nimbus_ctl::{CtlClient, CtlError};
use tokio::time::Instant;

/// One host as last seen.
#[derive(Debug, Clone)]
pub struct HostView {
    /// What it runs (from its last inventory).
    pub inventory: HostInventory,
    /// Whether it answered this round (only those get commands and new replicas).
    pub responsive: bool,
    /// When it last answered.
    pub last_seen: Instant,
}

/// One round's view of the lattice.
#[derive(Debug, Clone, Default)]
pub struct Observation {
    /// Live hosts (responsive, or silent for less than `lost_after`), by id.
    pub hosts: BTreeMap<String, HostView>,
    /// Hosts declared lost this round, with what they ran when last seen.
    pub lost: Vec<(String, HostView)>,
    /// The lattice's links (`None` when no host answered for them this round).
    pub links: Option<Vec<LinkDefinition>>,
}

/// Tracks hosts across rounds.
pub struct Observer {
    ping: CtlClient,
    ctl: CtlClient,
    lost_after: Duration,
    hosts: BTreeMap<String, HostView>,
}

impl Observer {
    /// An observer that pings with `ping` (its timeout is how long a ping collects
    /// answers), asks for inventories and links with `ctl`, and declares a host lost after
    /// `lost_after` without an answer.
    pub fn new(ping: CtlClient, ctl: CtlClient, lost_after: Duration) -> Self {
        Observer {
            ping,
            ctl,
            lost_after,
            hosts: BTreeMap::new(),
        }
    }

    /// Forgets everything (a new term as reconciler starts from what answers).
    pub fn reset(&mut self) {
        self.hosts.clear();
    }

    /// Declares `host_id` lost now (it said it stops); returns what it ran.
    pub fn stopped(&mut self, host_id: &str) -> Option<HostView> {
        self.hosts.remove(host_id)
    }

    /// Pings the hosts, reads the inventories of those that answer and the links.
    pub async fn observe(&mut self) -> Result<Observation, CtlError> {
        let now = Instant::now();
        let answered = match self.ping.get_hosts().await {
            Ok(hosts) => hosts,
            Err(CtlError::NoHosts { .. }) => Vec::new(),
            Err(e) => return Err(e),
        };
        let inventories =
            futures_util::future::join_all(answered.iter().map(|h| self.ctl.get_inventory(&h.id)))
                .await;
        for view in self.hosts.values_mut() {
            view.responsive = false;
        }
        for (host, inventory) in answered.iter().zip(inventories) {
            match inventory {
                Ok(mut inventory) => {
                    if inventory.labels.is_empty() {
                        inventory.labels = host.labels.clone();
                    }
                    self.hosts.insert(
                        host.id.clone(),
                        HostView {
                            inventory,
                            responsive: true,
                            last_seen: now,
                        },
                    );
                }
                Err(e) => tracing::debug!(host = %host.id, error = %e, "no inventory this round"),
            }
        }
        let lost_after = self.lost_after;
        let silent: Vec<String> = self
            .hosts
            .iter()
            .filter(|(_, v)| now.duration_since(v.last_seen) >= lost_after)
            .map(|(id, _)| id.clone())
            .collect();
        let mut lost = Vec::new();
        for id in silent {
            tracing::warn!(host = %id, ?lost_after, "host lost: no answer; re-placing its share");
            if let Some(view) = self.hosts.remove(&id) {
                lost.push((id, view));
            }
        }
        let links = self.ctl.get_links().await.map(|l| l.links).ok();
        Ok(Observation {
            hosts: self.hosts.clone(),
            lost,
            links,
        })
    }
}
