//! Where the dashboard's data comes from, behind one trait ([`Source`]): a host in this
//! process ([`LocalSource`], for a standalone `wash up`) or a whole lattice over NATS
//! ([`NatsSource`]: `ping.hosts`, inventories, `get.links`, the `get.{id}.stats`
//! extension and the lattice event subject).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, future::join_all};
use nimbus_core::ctl::HostInventory;
use nimbus_core::events::CloudEvent;
use nimbus_core::link::LinkDefinition;
use nimbus_core::stats::HostStats;
use nimbus_ctl::{CtlClient, CtlError};
use nimbus_lattice::Host;

/// One host as a source sees it at one moment.
#[derive(Debug, Clone)]
pub struct HostReport {
    /// What runs on it (its id, labels and name too).
    pub inventory: HostInventory,
    /// Seconds since it started, when known.
    pub uptime_seconds: Option<u64>,
    /// Its software version, when known.
    pub version: Option<String>,
    /// Its statistics, or why there are none (a host that does not answer the stats
    /// query, or answers garbage): the rest of the host is shown either way.
    pub stats: Result<HostStats, String>,
}

/// Everything a source collected in one round.
#[derive(Debug, Clone, Default)]
pub struct Collected {
    /// The hosts that answered.
    pub hosts: Vec<HostReport>,
    /// The lattice's links.
    pub links: Vec<LinkDefinition>,
    /// Problems of this round that are not one host's (no hosts, links unavailable).
    pub problems: Vec<String>,
}

/// What a dashboard reads: a snapshot per round, and a stream of lattice events.
#[async_trait]
pub trait Source: Send + Sync + 'static {
    /// `standalone` or `lattice`, shown in the page's header.
    fn mode(&self) -> &'static str;
    /// The lattice prefix.
    fn lattice(&self) -> String;
    /// One round of hosts, inventories, statistics and links. Never fails as a whole:
    /// what could not be read is in [`Collected::problems`] or a host's `stats`.
    async fn collect(&self) -> Collected;
    /// The lattice's events from now on (the stream ends when the source goes away).
    async fn events(&self) -> Result<BoxStream<'static, CloudEvent>, String>;
}

/// A host in this process (standalone `wash up`, `wash dev`): no NATS needed.
pub struct LocalSource {
    host: Arc<Host>,
}

impl LocalSource {
    /// Reads `host` directly (its inventory, links, [`Host::stats`] and events).
    pub fn new(host: Arc<Host>) -> Self {
        Self { host }
    }
}

#[async_trait]
impl Source for LocalSource {
    fn mode(&self) -> &'static str {
        if self.host.nats().is_some() {
            "lattice"
        } else {
            "standalone"
        }
    }

    fn lattice(&self) -> String {
        self.host.lattice().to_string()
    }

    async fn collect(&self) -> Collected {
        Collected {
            hosts: vec![HostReport {
                inventory: self.host.inventory(),
                uptime_seconds: Some(self.host.uptime().as_secs()),
                version: Some(env!("CARGO_PKG_VERSION").to_string()),
                stats: Ok(self.host.stats()),
            }],
            links: self.host.links(),
            problems: Vec::new(),
        }
    }

    async fn events(&self) -> Result<BoxStream<'static, CloudEvent>, String> {
        let receiver = self.host.events();
        Ok(
            futures_util::stream::unfold(receiver, |mut receiver| async move {
                loop {
                    match receiver.recv().await {
                        Ok(event) => return Some((event, receiver)),
                        // A slow dashboard misses some events; it carries on with the next.
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                    }
                }
            })
            .boxed(),
        )
    }
}

/// How long [`NatsSource`] collects `ping.hosts` replies, and waits for each reply, by
/// default: hosts on one network answer within milliseconds.
pub const DEFAULT_NATS_TIMEOUT: Duration = Duration::from_millis(700);

/// A lattice over NATS, through the control interface: works with every host that
/// answers it (hosts without the stats extension are shown without call figures).
pub struct NatsSource {
    client: async_nats::Client,
    ctl: CtlClient,
}

impl NatsSource {
    /// Reads lattice `lattice` on `client` with [`DEFAULT_NATS_TIMEOUT`].
    pub fn new(client: async_nats::Client, lattice: impl Into<String>) -> Self {
        let ctl = CtlClient::new(client.clone(), lattice).with_timeout(DEFAULT_NATS_TIMEOUT);
        Self { client, ctl }
    }

    /// Sets the ping gather time and the per-request timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.ctl = self.ctl.with_timeout(timeout);
        self
    }

    /// Names the server in messages as the user typed it.
    pub fn with_nats_url(mut self, url: impl Into<String>) -> Self {
        self.ctl = self.ctl.with_nats_url(url);
        self
    }
}

/// A host's stats error as the page shows it.
fn stats_problem(error: &CtlError) -> String {
    match error {
        CtlError::NotFound { .. } => {
            "no statistics: the host does not answer the stats query (another version?)".into()
        }
        other => format!("no statistics: {other}"),
    }
}

#[async_trait]
impl Source for NatsSource {
    fn mode(&self) -> &'static str {
        "lattice"
    }

    fn lattice(&self) -> String {
        self.ctl.lattice().to_string()
    }

    async fn collect(&self) -> Collected {
        let mut collected = Collected::default();
        let (hosts, links) = tokio::join!(self.ctl.get_hosts(), self.ctl.get_links());
        match links {
            Ok(list) => collected.links = list.links,
            Err(CtlError::NoHosts { .. }) => {}
            Err(e) => collected.problems.push(format!("links unavailable: {e}")),
        }
        let hosts = match hosts {
            Ok(hosts) => hosts,
            Err(e) => {
                collected.problems.push(e.to_string());
                return collected;
            }
        };
        let reports = join_all(hosts.into_iter().map(|host| async move {
            let (inventory, stats) = tokio::join!(
                self.ctl.get_inventory(&host.id),
                self.ctl.get_stats(&host.id)
            );
            (host, inventory, stats)
        }))
        .await;
        for (host, inventory, stats) in reports {
            let inventory = match inventory {
                Ok(inventory) => inventory,
                Err(e) => {
                    collected
                        .problems
                        .push(format!("host {}: inventory unavailable: {e}", host.id));
                    HostInventory {
                        host_id: host.id.clone(),
                        issuer: host.issuer.clone(),
                        labels: host.labels.clone(),
                        friendly_name: host.friendly_name.clone(),
                        actors: Vec::new(),
                        providers: Vec::new(),
                    }
                }
            };
            collected.hosts.push(HostReport {
                inventory,
                uptime_seconds: Some(host.uptime_seconds),
                version: host.version.clone(),
                stats: stats.map_err(|e| stats_problem(&e)),
            });
        }
        collected
    }

    async fn events(&self) -> Result<BoxStream<'static, CloudEvent>, String> {
        let subject = self.ctl.subjects().events();
        let subscriber = self
            .client
            .subscribe(subject.clone())
            .await
            .map_err(|e| format!("cannot subscribe to the lattice events on {subject}: {e}"))?;
        Ok(subscriber
            .filter_map(|message| async move {
                serde_json::from_slice::<CloudEvent>(&message.payload).ok()
            })
            .boxed())
    }
}
