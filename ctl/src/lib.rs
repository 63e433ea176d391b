//! A client of the nimbus control interface (the 0.x `wasmbus.ctl.{lattice}.*` JSON
//! protocol) and of lattice calls, in the style of `wasmcloud-control-interface`: list
//! hosts, read inventories, claims and links, start, stop and scale actors and providers,
//! put and delete links, stop hosts, run auctions and call an actor by key or call alias.
//!
//! Every failure is a [`CtlError`] that tells apart the cases a user handles differently:
//! no host serves the lattice, a host is slow, a host or actor does not exist, a host
//! refused the request, a reply is malformed, or NATS failed.
//!
//! Commands (`la`, `sa`, `scale`, `lp`, `sp`, `stop`) return once the host acknowledged
//! them: the work itself finishes later and is reported by events on
//! `wasmbus.evt.{lattice}` (reference trip-wire 18).
//!
//! Links are written with `linkdefs.put` / `linkdefs.del` on the control subjects (one
//! host answers in the lattice queue group and stores the link in the lattice store),
//! rather than by writing the `LATTICEDATA_{lattice}` KV bucket directly: it works on
//! every host configuration, including hosts without JetStream, and the host validates
//! the link before storing it.

mod error;

use std::collections::HashMap;
use std::time::Duration;

use async_nats::{RequestErrorKind, StatusCode};
use futures_util::StreamExt;
use nimbus_core::claims::normalize_call_alias;
use nimbus_core::ctl::{
    ActorAuctionAck, ActorAuctionRequest, CtlOperationAck, GetClaimsResponse, Host, HostInventory,
    LinkDefinitionList, ProviderAuctionAck, ProviderAuctionRequest, RemoveLinkDefinitionRequest,
    ScaleActorCommand, StartActorCommand, StartProviderCommand, StopActorCommand, StopHostCommand,
    StopProviderCommand, StringMap, UpdateActorCommand,
};
use nimbus_core::keys::{KeyKind, KeyPair, PUBLIC_KEY_LEN};
use nimbus_core::link::LinkDefinition;
use nimbus_core::stats::HostStats;
use nimbus_core::subjects::{CtlCommand, Subjects};
use nimbus_core::wire::WasmCloudEntity;
use nimbus_rpc::{ErrorKind, RpcClient};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use error::CtlError;

/// How long a request waits for its reply, and a scatter/gather for replies, by default
/// (what `wash` uses unless told otherwise).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// A control-interface client bound to one lattice over an existing NATS connection.
///
/// Cloning is cheap (the NATS client is a handle), so one client can serve concurrent
/// requests.
#[derive(Debug, Clone)]
pub struct CtlClient {
    nats: async_nats::Client,
    subjects: Subjects,
    timeout: Duration,
    server: String,
}

impl CtlClient {
    /// A client of lattice `lattice` (the lattice prefix, e.g. `default`) on `client`,
    /// with the default control prefix `wasmbus.ctl` and [`DEFAULT_TIMEOUT`].
    pub fn new(client: async_nats::Client, lattice: impl Into<String>) -> Self {
        let info = client.server_info();
        let server = if info.host.is_empty() {
            "the NATS server".to_string()
        } else {
            format!("nats://{}:{}", info.host, info.port)
        };
        CtlClient {
            nats: client,
            subjects: Subjects::for_lattice(lattice),
            timeout: DEFAULT_TIMEOUT,
            server,
        }
    }

    /// Sets how long a request waits for its reply, and how long a scatter/gather
    /// (`ping.hosts`, auctions) collects replies.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the server URL that error messages show (the one the user typed reads
    /// better than the address the server reports about itself).
    pub fn with_nats_url(mut self, url: impl Into<String>) -> Self {
        self.server = url.into();
        self
    }

    /// Uses a control-interface prefix other than `wasmbus.ctl` (hosts started with a
    /// custom `ctl_topic_prefix`).
    pub fn with_ctl_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.subjects = Subjects::new(self.subjects.lattice().to_string(), prefix);
        self
    }

    /// The lattice this client talks to.
    pub fn lattice(&self) -> &str {
        self.subjects.lattice()
    }

    /// The request and gather timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The subject builder of this client's lattice.
    pub fn subjects(&self) -> &Subjects {
        &self.subjects
    }

    // ---- Queries ---------------------------------------------------------------------

    /// Every host of the lattice: publishes `ping.hosts` and collects replies until the
    /// timeout. No reply at all is [`CtlError::NoHosts`].
    pub async fn get_hosts(&self) -> Result<Vec<Host>, CtlError> {
        let subject = self.subjects.ctl_ping_hosts();
        let mut hosts: Vec<Host> = self.gather(&subject, Vec::new(), "hosts").await?;
        if hosts.is_empty() {
            return Err(self.no_hosts());
        }
        hosts.sort_by(|a, b| a.id.cmp(&b.id));
        hosts.dedup_by(|a, b| a.id == b.id);
        Ok(hosts)
    }

    /// What one host runs. An unknown host id is [`CtlError::NotFound`].
    pub async fn get_inventory(&self, host_id: &str) -> Result<HostInventory, CtlError> {
        check_token("host id", host_id)?;
        let subject = self.subjects.ctl_get_inventory(host_id);
        let what = format!("the inventory of host {host_id}");
        self.request_json(&subject, Vec::new(), &what, || self.host_not_found(host_id))
            .await
    }

    /// One host's statistics: cumulative calls, errors and latency buckets per actor and
    /// operation, provider restarts and actor instances (`{ctl}.get.{host_id}.stats`, our
    /// extension of the 0.x protocol; see [`nimbus_core::stats`]). A host that does not
    /// answer the subject (a 0.x host, or one that is gone) is [`CtlError::NotFound`]; a
    /// reply that is not statistics is [`CtlError::BadReply`].
    pub async fn get_stats(&self, host_id: &str) -> Result<HostStats, CtlError> {
        check_token("host id", host_id)?;
        let subject = self.subjects.ctl_get_stats(host_id);
        let what = format!("the statistics of host {host_id}");
        let reply = self
            .request(&subject, Vec::new(), &what, || CtlError::NotFound {
                what: format!("statistics of host {host_id}"),
                lattice: self.lattice().to_string(),
                hint: "the host does not answer `get.{id}.stats` (a host of another version, or it stopped); list the hosts with `wash ctl get hosts`".to_string(),
            })
            .await?;
        let bad = |detail: String| CtlError::BadReply {
            what: what.clone(),
            subject: subject.clone(),
            detail,
        };
        let value: serde_json::Value = serde_json::from_slice(&reply.payload)
            .map_err(|e| bad(format!("invalid JSON: {e}")))?;
        if value.get("accepted").is_some() {
            let ack: CtlOperationAck = serde_json::from_value(value)
                .map_err(|e| bad(format!("invalid acknowledgement: {e}")))?;
            accepted(ack, &format!("host {host_id}"), "get stats")?;
            return Err(bad("an acknowledgement instead of statistics".to_string()));
        }
        let stats: HostStats =
            serde_json::from_value(value).map_err(|e| bad(format!("not statistics: {e}")))?;
        if stats.host_id != host_id {
            return Err(bad(format!(
                "the statistics are of host {}, not of the host asked",
                stats.host_id
            )));
        }
        Ok(stats)
    }

    /// The inventories of every host that answers a ping (hosts that vanish between the
    /// ping and the inventory request are left out).
    pub async fn get_inventories(&self) -> Result<Vec<HostInventory>, CtlError> {
        let hosts = self.get_hosts().await?;
        let requests = hosts.iter().map(|h| self.get_inventory(&h.id));
        let mut inventories = Vec::with_capacity(hosts.len());
        for result in futures_util::future::join_all(requests).await {
            match result {
                Ok(inventory) => inventories.push(inventory),
                Err(CtlError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(inventories)
    }

    /// The claims of every actor and provider the lattice knows (one host answers).
    pub async fn get_claims(&self) -> Result<GetClaimsResponse, CtlError> {
        let subject = self.subjects.ctl_get_claims();
        self.request_json(&subject, Vec::new(), "the lattice's claims", || {
            self.no_hosts()
        })
        .await
    }

    /// Every link definition of the lattice (one host answers).
    pub async fn get_links(&self) -> Result<LinkDefinitionList, CtlError> {
        let subject = self.subjects.ctl_get_links();
        self.request_json(&subject, Vec::new(), "the lattice's links", || {
            self.no_hosts()
        })
        .await
    }

    /// The hosts running `actor_id` (a public key), with their inventories.
    pub async fn find_actor(&self, actor_id: &str) -> Result<Vec<HostInventory>, CtlError> {
        let mut inventories = self.get_inventories().await?;
        inventories.retain(|inv| inv.actors.iter().any(|a| a.id == actor_id));
        Ok(inventories)
    }

    // ---- Commands --------------------------------------------------------------------

    /// Starts `count` instances of an actor on a host. `actor_ref` is a path (or
    /// `file://` URL) of a signed module as the host sees it. Returns when the host
    /// accepted the command; the start itself is reported by events.
    pub async fn start_actor(
        &self,
        host_id: &str,
        actor_ref: &str,
        count: u16,
    ) -> Result<(), CtlError> {
        self.start_actor_annotated(host_id, actor_ref, count, StringMap::new())
            .await
    }

    /// Starts `count` instances of an actor like [`Self::start_actor`], tagging them with
    /// `annotations`. The host reports the annotations in its inventory and in the start
    /// events (including failures), which is how a deployment tells its own instances
    /// from everyone else's.
    pub async fn start_actor_annotated(
        &self,
        host_id: &str,
        actor_ref: &str,
        count: u16,
        annotations: StringMap,
    ) -> Result<(), CtlError> {
        let command = StartActorCommand {
            actor_ref: actor_ref.to_string(),
            count,
            annotations: (!annotations.is_empty()).then_some(annotations),
            host_id: host_id.to_string(),
        };
        self.command(host_id, CtlCommand::LaunchActor, &command, "start actor")
            .await
    }

    /// Replaces the module of an actor running on a host with the one at `new_actor_ref`
    /// (same public key). The host swaps it in place: calls already running finish on the
    /// old module and the next call runs the new one, so no call fails. Returns once the
    /// host has swapped it (or refused).
    pub async fn update_actor(
        &self,
        host_id: &str,
        actor_id: &str,
        new_actor_ref: &str,
    ) -> Result<(), CtlError> {
        let command = UpdateActorCommand {
            actor_id: actor_id.to_string(),
            new_actor_ref: new_actor_ref.to_string(),
            annotations: None,
            host_id: host_id.to_string(),
        };
        self.command(host_id, CtlCommand::UpdateActor, &command, "update actor")
            .await
    }

    /// Stops `count` instances of an actor (by public key) on a host.
    pub async fn stop_actor(
        &self,
        host_id: &str,
        actor_id: &str,
        count: u16,
    ) -> Result<(), CtlError> {
        self.stop_actor_annotated(host_id, actor_id, count, StringMap::new())
            .await
    }

    /// Stops up to `count` instances of an actor on a host that carry `annotations`
    /// (0: all of those), so one deployment never stops another's instances of the same
    /// actor. Empty annotations stop any instances, like [`Self::stop_actor`].
    pub async fn stop_actor_annotated(
        &self,
        host_id: &str,
        actor_id: &str,
        count: u16,
        annotations: StringMap,
    ) -> Result<(), CtlError> {
        let command = StopActorCommand {
            actor_ref: actor_id.to_string(),
            count,
            annotations: (!annotations.is_empty()).then_some(annotations),
            host_id: host_id.to_string(),
        };
        self.command(host_id, CtlCommand::StopActor, &command, "stop actor")
            .await
    }

    /// Sets the number of instances of an actor on a host (0 stops it). Scaling up an
    /// actor the host does not run yet needs `actor_ref` to load it from.
    pub async fn scale_actor(
        &self,
        host_id: &str,
        actor_id: &str,
        actor_ref: Option<&str>,
        count: u16,
    ) -> Result<(), CtlError> {
        let command = ScaleActorCommand {
            actor_id: actor_id.to_string(),
            actor_ref: actor_ref.unwrap_or_default().to_string(),
            count,
            annotations: None,
            host_id: host_id.to_string(),
        };
        self.command(host_id, CtlCommand::ScaleActor, &command, "scale actor")
            .await
    }

    /// Starts a capability provider on a host under `link_name`, passing `config` as
    /// its `config_json`.
    pub async fn start_provider(
        &self,
        host_id: &str,
        provider_ref: &str,
        link_name: &str,
        config: Option<String>,
    ) -> Result<(), CtlError> {
        self.start_provider_annotated(host_id, provider_ref, link_name, config, StringMap::new())
            .await
    }

    /// Starts a provider like [`Self::start_provider`], tagging it with `annotations`
    /// (reported in the host's inventory and events).
    pub async fn start_provider_annotated(
        &self,
        host_id: &str,
        provider_ref: &str,
        link_name: &str,
        config: Option<String>,
        annotations: StringMap,
    ) -> Result<(), CtlError> {
        let command = StartProviderCommand {
            provider_ref: provider_ref.to_string(),
            link_name: link_name.to_string(),
            configuration: config,
            annotations: (!annotations.is_empty()).then_some(annotations),
            host_id: host_id.to_string(),
        };
        self.command(
            host_id,
            CtlCommand::LaunchProvider,
            &command,
            "start provider",
        )
        .await
    }

    /// Stops a provider, identified by public key and link name, on a host.
    pub async fn stop_provider(
        &self,
        host_id: &str,
        provider_id: &str,
        link_name: &str,
        contract_id: &str,
    ) -> Result<(), CtlError> {
        if provider_id.len() != PUBLIC_KEY_LEN || !provider_id.starts_with('V') {
            return Err(CtlError::InvalidInput(format!(
                "`{provider_id}` is not a provider public key (V..., {PUBLIC_KEY_LEN} characters); \
                 stop takes the key, see `wash ctl get inventory`"
            )));
        }
        let command = StopProviderCommand {
            provider_ref: provider_id.to_string(),
            link_name: link_name.to_string(),
            contract_id: contract_id.to_string(),
            annotations: None,
            host_id: host_id.to_string(),
        };
        self.command(host_id, CtlCommand::StopProvider, &command, "stop provider")
            .await
    }

    /// Stops a whole host, giving its actors and providers `timeout` to finish (the
    /// host's default, 500 ms, when `None`).
    pub async fn stop_host(
        &self,
        host_id: &str,
        timeout: Option<Duration>,
    ) -> Result<(), CtlError> {
        let command = StopHostCommand {
            host_id: host_id.to_string(),
            timeout: timeout.map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
        };
        self.command(host_id, CtlCommand::StopHost, &command, "stop host")
            .await
    }

    /// Adds or replaces a link definition (`linkdefs.put`; one host stores it for the
    /// lattice). The id is recomputed from the identity triple.
    pub async fn put_link(&self, mut link: LinkDefinition) -> Result<(), CtlError> {
        link.id = link.computed_id();
        let subject = self.subjects.ctl_linkdefs_put();
        let body = to_json(&link)?;
        let ack: CtlOperationAck = self
            .request_json(&subject, body, "put link", || self.no_hosts())
            .await?;
        accepted(ack, "the lattice", "put link")
    }

    /// Removes the link of (actor, contract, link name) (`linkdefs.del`).
    pub async fn delete_link(
        &self,
        actor_id: &str,
        contract_id: &str,
        link_name: &str,
    ) -> Result<(), CtlError> {
        let request = RemoveLinkDefinitionRequest {
            actor_id: actor_id.to_string(),
            contract_id: contract_id.to_string(),
            link_name: link_name.to_string(),
        };
        let subject = self.subjects.ctl_linkdefs_del();
        let body = to_json(&request)?;
        let ack: CtlOperationAck = self
            .request_json(&subject, body, "delete link", || self.no_hosts())
            .await?;
        accepted(ack, "the lattice", "delete link")
    }

    /// Asks which hosts could run an actor under the label `constraints`; collects
    /// bids until the timeout. No host on the lattice is [`CtlError::NoHosts`]; hosts
    /// that do not match simply do not bid (an empty list).
    pub async fn auction_actor(
        &self,
        actor_ref: &str,
        constraints: StringMap,
    ) -> Result<Vec<ActorAuctionAck>, CtlError> {
        let request = ActorAuctionRequest {
            actor_ref: actor_ref.to_string(),
            constraints,
        };
        let subject = self.subjects.ctl_auction_actor();
        self.gather(&subject, to_json(&request)?, "actor auction bids")
            .await
    }

    /// Asks which hosts could run a provider (and do not run it yet) under the label
    /// `constraints`; collects bids until the timeout.
    pub async fn auction_provider(
        &self,
        provider_ref: &str,
        link_name: &str,
        constraints: StringMap,
    ) -> Result<Vec<ProviderAuctionAck>, CtlError> {
        let request = ProviderAuctionRequest {
            provider_ref: provider_ref.to_string(),
            link_name: link_name.to_string(),
            constraints,
        };
        let subject = self.subjects.ctl_auction_provider();
        self.gather(&subject, to_json(&request)?, "provider auction bids")
            .await
    }

    // ---- Lattice calls ---------------------------------------------------------------

    /// The public key of the actor `actor` means: itself if it is an actor key, else
    /// the actor whose call alias matches (normalized as wascap writes aliases), looked
    /// up in the lattice's claims.
    pub async fn resolve_actor(&self, actor: &str) -> Result<String, CtlError> {
        if is_actor_key(actor) {
            return Ok(actor.to_string());
        }
        let claims = self.get_claims().await?;
        find_alias(&claims.claims, actor).ok_or_else(|| CtlError::NotFound {
            what: format!("actor or call alias `{actor}`"),
            lattice: self.lattice().to_string(),
            hint: "give the actor's public key (M..., 56 characters) or a call alias listed by \
                   `wash ctl get claims`"
                .to_string(),
        })
    }

    /// Calls `operation` on an actor (public key or call alias) wherever it runs in the
    /// lattice, as `wash call` does: origin and target are the actor itself, and the
    /// invocation is signed with `cluster_seed` (an `SC...` seed the hosts trust). Without
    /// a seed the invocation is unsigned, which only hosts with signing off accept.
    ///
    /// A failure the actor or host reports is [`CtlError::Invocation`]; an actor nobody
    /// runs is [`CtlError::NotFound`].
    pub async fn call_actor(
        &self,
        actor: &str,
        operation: &str,
        payload: Vec<u8>,
        cluster_seed: Option<&str>,
    ) -> Result<Vec<u8>, CtlError> {
        if operation.is_empty() {
            return Err(CtlError::InvalidInput(
                "the operation name is empty".to_string(),
            ));
        }
        let cluster = cluster_seed
            .map(|seed| {
                KeyPair::from_seed_of_kind(seed, KeyKind::Cluster).map_err(|e| {
                    CtlError::InvalidInput(format!(
                        "the cluster seed is not usable: {e}; give the SC... seed the hosts were started with"
                    ))
                })
            })
            .transpose()?;
        let actor_id = self.resolve_actor(actor).await?;
        // Origin and target are the actor itself and the sender is the cluster key
        // (reference trip-wire 19), as `wash call` has always sent it.
        let rpc = RpcClient::new(
            self.nats.clone(),
            self.subjects.clone(),
            cluster
                .as_ref()
                .map(KeyPair::public_key)
                .unwrap_or_default(),
        )
        .with_signer(cluster);
        let entity = WasmCloudEntity::actor(&actor_id);
        rpc.invoke(entity.clone(), entity, operation, payload, self.timeout)
            .await
            .map_err(|e| match e.kind() {
                ErrorKind::NoResponders => CtlError::NotFound {
                    what: format!("actor {actor_id}"),
                    lattice: self.lattice().to_string(),
                    hint: "no host runs it; start it with `wash ctl start actor FILE` and check \
                           `wash ctl get inventory`"
                        .to_string(),
                },
                ErrorKind::TimedOut => CtlError::TimedOut {
                    what: format!("the response of actor {actor_id} to {operation}"),
                    subject: self.subjects.rpc_actor(&actor_id),
                    timeout: self.timeout,
                },
                ErrorKind::Transport => CtlError::Transport {
                    what: format!("the response of actor {actor_id} to {operation}"),
                    server: self.server.clone(),
                    message: e.to_string(),
                },
                _ => CtlError::Invocation {
                    actor: actor_id.clone(),
                    operation: operation.to_string(),
                    message: e.to_string(),
                },
            })
    }

    // ---- Plumbing --------------------------------------------------------------------

    fn no_hosts(&self) -> CtlError {
        CtlError::NoHosts {
            lattice: self.lattice().to_string(),
            server: self.server.clone(),
        }
    }

    fn host_not_found(&self, host_id: &str) -> CtlError {
        CtlError::NotFound {
            what: format!("host {host_id}"),
            lattice: self.lattice().to_string(),
            hint: "nothing answers on its subject; list the hosts with `wash ctl get hosts`"
                .to_string(),
        }
    }

    /// Sends a command to one host and turns a refusal into [`CtlError::Rejected`].
    async fn command<T: Serialize>(
        &self,
        host_id: &str,
        command: CtlCommand,
        body: &T,
        operation: &str,
    ) -> Result<(), CtlError> {
        check_token("host id", host_id)?;
        let subject = self.subjects.ctl_command(host_id, command);
        let what = format!("host {host_id} to acknowledge {operation}");
        let ack: CtlOperationAck = self
            .request_json(&subject, to_json(body)?, &what, || {
                self.host_not_found(host_id)
            })
            .await?;
        accepted(ack, &format!("host {host_id}"), operation)
    }

    /// A request whose reply is JSON of type `T`.
    async fn request_json<T: DeserializeOwned>(
        &self,
        subject: &str,
        body: Vec<u8>,
        what: &str,
        no_responders: impl FnOnce() -> CtlError,
    ) -> Result<T, CtlError> {
        let reply = self.request(subject, body, what, no_responders).await?;
        serde_json::from_slice(&reply.payload).map_err(|e| CtlError::BadReply {
            what: what.to_string(),
            subject: subject.to_string(),
            detail: format!("invalid JSON: {e}"),
        })
    }

    /// One request/reply with this client's timeout; "no responders" becomes whatever
    /// `no_responders` says it means on this subject.
    async fn request(
        &self,
        subject: &str,
        body: Vec<u8>,
        what: &str,
        no_responders: impl FnOnce() -> CtlError,
    ) -> Result<async_nats::Message, CtlError> {
        let request = async_nats::Request::new()
            .payload(body.into())
            .timeout(Some(self.timeout));
        self.nats
            .send_request(subject.to_string(), request)
            .await
            .map_err(|e| match e.kind() {
                RequestErrorKind::NoResponders => no_responders(),
                RequestErrorKind::TimedOut => CtlError::TimedOut {
                    what: what.to_string(),
                    subject: subject.to_string(),
                    timeout: self.timeout,
                },
                RequestErrorKind::InvalidSubject => {
                    CtlError::InvalidInput(format!("`{subject}` is not a valid NATS subject: {e}"))
                }
                RequestErrorKind::MaxPayloadExceeded => CtlError::InvalidInput(format!(
                    "the request is larger than the server accepts: {e}"
                )),
                _ => CtlError::Transport {
                    what: what.to_string(),
                    server: self.server.clone(),
                    message: e.to_string(),
                },
            })
    }

    /// Scatter/gather: publishes once with a private reply inbox and collects every
    /// reply until the timeout. Stops early on a "no responders" status (nobody
    /// listens). Replies that do not parse are skipped, unless all of them fail.
    async fn gather<T: DeserializeOwned>(
        &self,
        subject: &str,
        body: Vec<u8>,
        what: &str,
    ) -> Result<Vec<T>, CtlError> {
        let transport = |e: &dyn std::fmt::Display| CtlError::Transport {
            what: what.to_string(),
            server: self.server.clone(),
            message: e.to_string(),
        };
        let inbox = self.nats.new_inbox();
        let mut replies = self
            .nats
            .subscribe(inbox.clone())
            .await
            .map_err(|e| transport(&e))?;
        self.nats
            .publish_with_reply(subject.to_string(), inbox, body.into())
            .await
            .map_err(|e| transport(&e))?;
        self.nats.flush().await.map_err(|e| transport(&e))?;
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut parsed = Vec::new();
        let mut last_error = None;
        while let Ok(Some(message)) = tokio::time::timeout_at(deadline, replies.next()).await {
            if message.status == Some(StatusCode::NO_RESPONDERS) {
                return Err(self.no_hosts());
            }
            match serde_json::from_slice(&message.payload) {
                Ok(value) => parsed.push(value),
                Err(e) => last_error = Some(e),
            }
        }
        if let (true, Some(e)) = (parsed.is_empty(), last_error) {
            return Err(CtlError::BadReply {
                what: what.to_string(),
                subject: subject.to_string(),
                detail: format!("invalid JSON: {e}"),
            });
        }
        Ok(parsed)
    }
}

/// The actor key whose claims carry call alias `alias` (normalized on both sides).
fn find_alias(claims: &[HashMap<String, String>], alias: &str) -> Option<String> {
    let wanted = normalize_call_alias(alias);
    if wanted.is_empty() {
        return None;
    }
    claims.iter().find_map(|c| {
        let sub = c.get("sub")?;
        let stored = c.get("call_alias")?;
        (is_actor_key(sub) && normalize_call_alias(stored) == wanted).then(|| sub.clone())
    })
}

/// An actor public key: 56 characters starting with `M` (what the hosts accept).
fn is_actor_key(s: &str) -> bool {
    s.len() == PUBLIC_KEY_LEN && s.starts_with('M')
}

/// An id that goes into a subject must be one non-empty token.
fn check_token(what: &str, value: &str) -> Result<(), CtlError> {
    if value.is_empty()
        || value
            .chars()
            .any(|c| c == '.' || c == '*' || c == '>' || c.is_whitespace())
    {
        return Err(CtlError::InvalidInput(format!(
            "`{value}` is not a valid {what} (it must be one non-empty subject token: no spaces, `.`, `*` or `>`)"
        )));
    }
    Ok(())
}

fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>, CtlError> {
    serde_json::to_vec(value)
        .map_err(|e| CtlError::InvalidInput(format!("cannot encode the request as JSON: {e}")))
}

fn accepted(ack: CtlOperationAck, target: &str, operation: &str) -> Result<(), CtlError> {
    if ack.accepted {
        return Ok(());
    }
    let message = if ack.error.is_empty() {
        "no reason given".to_string()
    } else {
        ack.error
    };
    Err(CtlError::Rejected {
        target: target.to_string(),
        operation: operation.to_string(),
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(sub: &str, alias: &str) -> HashMap<String, String> {
        HashMap::from([
            ("sub".to_string(), sub.to_string()),
            ("call_alias".to_string(), alias.to_string()),
        ])
    }

    #[test]
    fn aliases_resolve_to_actor_keys_only() {
        let actor = KeyPair::generate(KeyKind::Module).public_key();
        let provider = KeyPair::generate(KeyKind::Service).public_key();
        let list = vec![claims(&provider, "greeter"), claims(&actor, "my_greeter")];
        assert_eq!(find_alias(&list, "my-greeter"), Some(actor.clone()));
        assert_eq!(find_alias(&list, "My.Greeter"), Some(actor));
        assert_eq!(
            find_alias(&list, "greeter"),
            None,
            "providers have no alias"
        );
        assert_eq!(find_alias(&list, ""), None);
    }

    #[test]
    fn subject_tokens_are_checked() {
        assert!(check_token("host id", "NABC").is_ok());
        for bad in ["", "a.b", "*", ">", "a b"] {
            let err = check_token("host id", bad).unwrap_err();
            assert!(matches!(err, CtlError::InvalidInput(_)), "{bad}: {err}");
        }
    }

    #[test]
    fn refusals_carry_the_host_reason() {
        assert!(accepted(CtlOperationAck::ok(), "host N", "stop").is_ok());
        let err = accepted(CtlOperationAck::failed("busy"), "host N", "stop").unwrap_err();
        assert_eq!(err.to_string(), "host N rejected stop: busy");
        let err = accepted(CtlOperationAck::failed(""), "host N", "stop").unwrap_err();
        assert!(err.to_string().ends_with("no reason given"));
    }
}
