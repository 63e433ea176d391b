//! What a host reports about itself: its `ping.hosts` record, its inventory and its
//! heartbeat, all built from the same running-actor and running-provider tables.

use std::collections::BTreeMap;

use nimbus_core::ctl::{ActorDescription, Host, HostInventory, ProviderDescription};
use nimbus_core::events::{HeartbeatProvider, HostHeartbeat};

use crate::inner::HostInner;

/// This crate's version, reported as the host version.
pub(crate) const VERSION: &str = env!("CARGO_PKG_VERSION");

/// `1h 2m 3s` style uptime.
pub(crate) fn human_duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3_600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m {s}s"),
        _ => format!("{d}d {h}h {m}m {s}s"),
    }
}

impl HostInner {
    fn uptime(&self) -> u64 {
        self.started.elapsed().as_secs()
    }

    /// The reply to `ping.hosts`.
    pub fn host_record(&self) -> Host {
        let server = self
            .nats
            .as_ref()
            .map(|c| c.server_info())
            .map(|i| format!("{}:{}", i.host, i.port));
        Host {
            id: self.id.clone(),
            issuer: self.cluster_key.public_key(),
            labels: self.labels.clone(),
            friendly_name: self.friendly_name.clone(),
            uptime_seconds: self.uptime(),
            uptime_human: Some(human_duration(self.uptime())),
            version: Some(VERSION.to_string()),
            cluster_issuers: Some(
                self.cluster_issuers
                    .public_keys()
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            js_domain: None,
            ctl_host: server.clone(),
            prov_rpc_host: server.clone(),
            rpc_host: server,
            lattice_prefix: Some(self.config.lattice.clone()),
        }
    }

    /// What runs here.
    pub fn inventory(&self) -> HostInventory {
        let actors = self
            .registry
            .actors()
            .into_iter()
            .map(|a| ActorDescription {
                id: a.id.clone(),
                image_ref: Some(a.image_ref()).filter(|r| !r.is_empty()),
                name: a.claims().and_then(|t| t.claims.wascap.name),
                instances: a.instances(),
            })
            .collect();
        let providers = self
            .registry
            .providers()
            .into_iter()
            .map(|p| ProviderDescription {
                id: p.provider_id.clone(),
                image_ref: Some(p.image_ref.clone()).filter(|r| !r.is_empty()),
                contract_id: p.contract_id.clone(),
                link_name: p.link_name.clone(),
                name: None,
                instance_id: p.instance_id.clone(),
                annotations: p.annotations.clone(),
                revision: 0,
            })
            .collect();
        HostInventory {
            host_id: self.id.clone(),
            issuer: self.cluster_key.public_key(),
            labels: self.labels.clone(),
            friendly_name: self.friendly_name.clone(),
            actors,
            providers,
        }
    }

    /// The reply to `get.{id}.stats` (our extension): the metrics' counters when they
    /// are kept, and the instances of every running actor.
    pub fn stats(&self) -> nimbus_core::stats::HostStats {
        let mut stats = match &self.metrics {
            Some(metrics) => metrics.snapshot(),
            None => nimbus_core::stats::HostStats::default(),
        };
        stats.host_id = self.id.clone();
        stats.taken_at_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        stats.actors = self
            .registry
            .actors()
            .into_iter()
            .map(|a| {
                let current = a.current();
                nimbus_core::stats::ActorInstances {
                    actor: a.id.clone(),
                    live: current.live_instances() as u64,
                    in_use: current.busy_instances() as u64,
                }
            })
            .collect();
        stats
    }

    /// The `host_heartbeat` event data.
    pub fn heartbeat(&self) -> HostHeartbeat {
        let actors: BTreeMap<String, u64> = self
            .registry
            .actors()
            .into_iter()
            .map(|a| (a.id.clone(), a.instances().len() as u64))
            .collect();
        let providers = self
            .registry
            .providers()
            .into_iter()
            .map(|p| HeartbeatProvider {
                public_key: p.provider_id.clone(),
                link_name: p.link_name.clone(),
                contract_id: p.contract_id.clone(),
            })
            .collect();
        HostHeartbeat {
            actors,
            providers,
            labels: self.labels.clone(),
            friendly_name: self.friendly_name.clone(),
            version: VERSION.to_string(),
            uptime_seconds: self.uptime(),
            uptime_human: human_duration(self.uptime()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::human_duration;

    #[test]
    fn uptime_reads_like_otp() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(65), "1m 5s");
        assert_eq!(human_duration(3_725), "1h 2m 5s");
        assert_eq!(human_duration(90_061), "1d 1h 1m 1s");
    }
}
