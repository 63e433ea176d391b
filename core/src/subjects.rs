//! NATS subjects, queue groups and JetStream resource names of the 0.x lattice, built from
//! the lattice prefix and the control-interface prefix, so every crate spells them alike.
//!
//! ```
//! use nimbus_core::subjects::Subjects;
//! let s = Subjects::default();
//! assert_eq!(s.rpc_actor("Mabc"), "wasmbus.rpc.default.Mabc");
//! assert_eq!(s.ctl_ping_hosts(), "wasmbus.ctl.default.ping.hosts");
//! ```

use crate::wire::WasmCloudEntity;

/// The lattice prefix used when none is configured.
pub const DEFAULT_LATTICE_PREFIX: &str = "default";
/// The control-interface topic prefix used when none is configured.
pub const DEFAULT_CTL_PREFIX: &str = "wasmbus.ctl";
/// Root of every RPC subject.
pub const RPC_PREFIX: &str = "wasmbus.rpc";
/// Root of the RPC event subject.
pub const RPCEVT_PREFIX: &str = "wasmbus.rpcevt";
/// Root of the lattice event subject.
pub const EVT_PREFIX: &str = "wasmbus.evt";
/// Root of the optional configuration-service subject.
pub const CFG_PREFIX: &str = "wasmbus.cfg";
/// Queue group of every provider's RPC subscription.
pub const PROVIDER_RPC_QUEUE: &str = "rpc";
/// Prefix of the metadata KV bucket name (`LATTICEDATA_{lattice}`).
pub const KV_BUCKET_PREFIX: &str = "LATTICEDATA_";

/// A control-interface command verb (`cmd.{host}.{verb}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CtlCommand {
    /// `la`: launch actor.
    LaunchActor,
    /// `sa`: stop actor.
    StopActor,
    /// `scale`: scale actor.
    ScaleActor,
    /// `upd`: live-update actor.
    UpdateActor,
    /// `lp`: launch provider.
    LaunchProvider,
    /// `sp`: stop provider.
    StopProvider,
    /// `stop`: stop host.
    StopHost,
}

impl CtlCommand {
    /// Every verb, for subscribing or dispatch tables.
    pub const ALL: [CtlCommand; 7] = [
        CtlCommand::LaunchActor,
        CtlCommand::StopActor,
        CtlCommand::ScaleActor,
        CtlCommand::UpdateActor,
        CtlCommand::LaunchProvider,
        CtlCommand::StopProvider,
        CtlCommand::StopHost,
    ];

    /// The subject token of this verb.
    pub fn as_str(self) -> &'static str {
        match self {
            CtlCommand::LaunchActor => "la",
            CtlCommand::StopActor => "sa",
            CtlCommand::ScaleActor => "scale",
            CtlCommand::UpdateActor => "upd",
            CtlCommand::LaunchProvider => "lp",
            CtlCommand::StopProvider => "sp",
            CtlCommand::StopHost => "stop",
        }
    }

    /// Parses a subject token; `None` for unknown verbs.
    pub fn from_token(token: &str) -> Option<Self> {
        CtlCommand::ALL.into_iter().find(|c| c.as_str() == token)
    }
}

impl std::fmt::Display for CtlCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A parsed control-interface subject, so a host can dispatch one subscription's
/// messages without string matching scattered around.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CtlSubject {
    /// `ping.hosts`.
    PingHosts,
    /// `get.claims`.
    GetClaims,
    /// `get.links`.
    GetLinks,
    /// `get.{host_id}.inv`.
    GetInventory {
        /// The host asked.
        host_id: String,
    },
    /// `get.{host_id}.stats`: our extension (see [`crate::stats`]).
    GetStats {
        /// The host asked.
        host_id: String,
    },
    /// `linkdefs.put`.
    LinkdefsPut,
    /// `linkdefs.del`.
    LinkdefsDel,
    /// `auction.actor`.
    AuctionActor,
    /// `auction.provider`.
    AuctionProvider,
    /// `registries.put`.
    RegistriesPut,
    /// `cmd.{host_id}.{verb}`.
    Command {
        /// The host commanded.
        host_id: String,
        /// The verb.
        command: CtlCommand,
    },
}

/// Subject builder for one lattice: holds the lattice prefix and the ctl prefix.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Subjects {
    lattice: String,
    ctl_prefix: String,
}

impl Default for Subjects {
    fn default() -> Self {
        Subjects::new(DEFAULT_LATTICE_PREFIX, DEFAULT_CTL_PREFIX)
    }
}

impl Subjects {
    /// A builder for lattice `lattice` with control prefix `ctl_prefix`.
    pub fn new(lattice: impl Into<String>, ctl_prefix: impl Into<String>) -> Self {
        Subjects {
            lattice: lattice.into(),
            ctl_prefix: ctl_prefix.into(),
        }
    }

    /// A builder for lattice `lattice` with the default control prefix.
    pub fn for_lattice(lattice: impl Into<String>) -> Self {
        Subjects::new(lattice, DEFAULT_CTL_PREFIX)
    }

    /// The lattice prefix.
    pub fn lattice(&self) -> &str {
        &self.lattice
    }

    /// The control-interface topic prefix.
    pub fn ctl_prefix(&self) -> &str {
        &self.ctl_prefix
    }

    // ---- RPC plane -------------------------------------------------------------------

    /// `wasmbus.rpc.{lattice}.{actor_pk}`: an actor's RPC subject.
    pub fn rpc_actor(&self, actor_pk: &str) -> String {
        format!("{RPC_PREFIX}.{}.{actor_pk}", self.lattice)
    }

    /// Queue group of an actor's RPC subscription: the subject itself, so all hosts
    /// running the actor share its load.
    pub fn rpc_actor_queue(&self, actor_pk: &str) -> String {
        self.rpc_actor(actor_pk)
    }

    /// `wasmbus.rpc.{lattice}.{provider_pk}.{link_name}`: a provider's RPC subject
    /// (queue group [`PROVIDER_RPC_QUEUE`]).
    pub fn rpc_provider(&self, provider_pk: &str, link_name: &str) -> String {
        format!("{RPC_PREFIX}.{}.{provider_pk}.{link_name}", self.lattice)
    }

    /// Queue group of a provider's RPC subscription (`rpc`).
    pub fn rpc_provider_queue(&self) -> &'static str {
        PROVIDER_RPC_QUEUE
    }

    /// The RPC subject for an invocation target: the provider subject iff the entity has
    /// a non-empty link name, else the actor subject.
    pub fn rpc_subject_for(&self, target: &WasmCloudEntity) -> String {
        if target.link_name.is_empty() {
            self.rpc_actor(&target.public_key)
        } else {
            self.rpc_provider(&target.public_key, &target.link_name)
        }
    }

    /// `...{provider_pk}.{link_name}.linkdefs.put`: link added, msgpack body.
    pub fn provider_linkdefs_put(&self, provider_pk: &str, link_name: &str) -> String {
        format!("{}.linkdefs.put", self.rpc_provider(provider_pk, link_name))
    }

    /// `...{provider_pk}.{link_name}.linkdefs.del`: link removed, msgpack body.
    pub fn provider_linkdefs_del(&self, provider_pk: &str, link_name: &str) -> String {
        format!("{}.linkdefs.del", self.rpc_provider(provider_pk, link_name))
    }

    /// `...{provider_pk}.{link_name}.health`: health probe (request/reply).
    pub fn provider_health(&self, provider_pk: &str, link_name: &str) -> String {
        format!("{}.health", self.rpc_provider(provider_pk, link_name))
    }

    /// `...{provider_pk}.{link_name}.shutdown`: shutdown request (request/reply).
    pub fn provider_shutdown(&self, provider_pk: &str, link_name: &str) -> String {
        format!("{}.shutdown", self.rpc_provider(provider_pk, link_name))
    }

    /// `wasmbus.rpcevt.{lattice}`: invocation succeeded/failed events.
    pub fn rpc_events(&self) -> String {
        format!("{RPCEVT_PREFIX}.{}", self.lattice)
    }

    // ---- Control interface -----------------------------------------------------------

    /// `{ctl_prefix}.{lattice}`: root of every control subject.
    pub fn ctl_root(&self) -> String {
        format!("{}.{}", self.ctl_prefix, self.lattice)
    }

    /// Queue group of the one-host-answers control subjects (`get.claims`, `get.links`,
    /// `linkdefs.*`): `{ctl_prefix}.{lattice}` (`wasmbus.ctl.{lattice}` by default).
    pub fn ctl_queue(&self) -> String {
        self.ctl_root()
    }

    /// `{ctl}.ping.hosts`: every host replies with its `Host` record.
    pub fn ctl_ping_hosts(&self) -> String {
        format!("{}.ping.hosts", self.ctl_root())
    }

    /// `{ctl}.get.claims` (queue [`Subjects::ctl_queue`]).
    pub fn ctl_get_claims(&self) -> String {
        format!("{}.get.claims", self.ctl_root())
    }

    /// `{ctl}.get.links` (queue [`Subjects::ctl_queue`]).
    pub fn ctl_get_links(&self) -> String {
        format!("{}.get.links", self.ctl_root())
    }

    /// `{ctl}.get.{host_id}.inv`: one host's inventory.
    pub fn ctl_get_inventory(&self, host_id: &str) -> String {
        format!("{}.get.{host_id}.inv", self.ctl_root())
    }

    /// `{ctl}.get.{host_id}.stats`: one host's statistics ([`crate::stats::HostStats`]).
    /// Not in the 0.x protocol: our extension, which 0.x hosts do not answer.
    pub fn ctl_get_stats(&self, host_id: &str) -> String {
        format!("{}.get.{host_id}.stats", self.ctl_root())
    }

    /// `{ctl}.linkdefs.put` (queue [`Subjects::ctl_queue`]).
    pub fn ctl_linkdefs_put(&self) -> String {
        format!("{}.linkdefs.put", self.ctl_root())
    }

    /// `{ctl}.linkdefs.del` (queue [`Subjects::ctl_queue`]).
    pub fn ctl_linkdefs_del(&self) -> String {
        format!("{}.linkdefs.del", self.ctl_root())
    }

    /// `{ctl}.auction.actor`: every matching host bids.
    pub fn ctl_auction_actor(&self) -> String {
        format!("{}.auction.actor", self.ctl_root())
    }

    /// `{ctl}.auction.provider`: every matching host bids.
    pub fn ctl_auction_provider(&self) -> String {
        format!("{}.auction.provider", self.ctl_root())
    }

    /// `{ctl}.registries.put`: every host stores the credentials.
    pub fn ctl_registries_put(&self) -> String {
        format!("{}.registries.put", self.ctl_root())
    }

    /// `{ctl}.cmd.{host_id}.{verb}`: a command to one host.
    pub fn ctl_command(&self, host_id: &str, command: CtlCommand) -> String {
        format!("{}.cmd.{host_id}.{command}", self.ctl_root())
    }

    /// `{ctl}.cmd.{host_id}.*`: what a host subscribes to for its commands.
    pub fn ctl_commands_wildcard(&self, host_id: &str) -> String {
        format!("{}.cmd.{host_id}.*", self.ctl_root())
    }

    /// Parses a subject under this lattice's control root; `None` for anything else.
    pub fn parse_ctl(&self, subject: &str) -> Option<CtlSubject> {
        let rest = subject
            .strip_prefix(self.ctl_prefix.as_str())?
            .strip_prefix('.')?
            .strip_prefix(self.lattice.as_str())?
            .strip_prefix('.')?;
        let tokens: Vec<&str> = rest.split('.').collect();
        let parsed = match tokens.as_slice() {
            ["ping", "hosts"] => CtlSubject::PingHosts,
            ["get", "claims"] => CtlSubject::GetClaims,
            ["get", "links"] => CtlSubject::GetLinks,
            ["get", host, "inv"] if !host.is_empty() => CtlSubject::GetInventory {
                host_id: (*host).to_string(),
            },
            ["get", host, "stats"] if !host.is_empty() => CtlSubject::GetStats {
                host_id: (*host).to_string(),
            },
            ["linkdefs", "put"] => CtlSubject::LinkdefsPut,
            ["linkdefs", "del"] => CtlSubject::LinkdefsDel,
            ["auction", "actor"] => CtlSubject::AuctionActor,
            ["auction", "provider"] => CtlSubject::AuctionProvider,
            ["registries", "put"] => CtlSubject::RegistriesPut,
            ["cmd", host, verb] if !host.is_empty() => CtlSubject::Command {
                host_id: (*host).to_string(),
                command: CtlCommand::from_token(verb)?,
            },
            _ => return None,
        };
        Some(parsed)
    }

    /// The subject a parsed control subject stands for (inverse of [`Subjects::parse_ctl`]).
    pub fn ctl_subject(&self, subject: &CtlSubject) -> String {
        match subject {
            CtlSubject::PingHosts => self.ctl_ping_hosts(),
            CtlSubject::GetClaims => self.ctl_get_claims(),
            CtlSubject::GetLinks => self.ctl_get_links(),
            CtlSubject::GetInventory { host_id } => self.ctl_get_inventory(host_id),
            CtlSubject::GetStats { host_id } => self.ctl_get_stats(host_id),
            CtlSubject::LinkdefsPut => self.ctl_linkdefs_put(),
            CtlSubject::LinkdefsDel => self.ctl_linkdefs_del(),
            CtlSubject::AuctionActor => self.ctl_auction_actor(),
            CtlSubject::AuctionProvider => self.ctl_auction_provider(),
            CtlSubject::RegistriesPut => self.ctl_registries_put(),
            CtlSubject::Command { host_id, command } => self.ctl_command(host_id, *command),
        }
    }

    /// The queue group a responder should use for `subject`: [`Subjects::ctl_queue`] for
    /// `get.claims`, `get.links` and `linkdefs.*`, none for the scatter/gather and
    /// per-host subjects.
    pub fn ctl_queue_for(&self, subject: &CtlSubject) -> Option<String> {
        match subject {
            CtlSubject::GetClaims
            | CtlSubject::GetLinks
            | CtlSubject::LinkdefsPut
            | CtlSubject::LinkdefsDel => Some(self.ctl_queue()),
            _ => None,
        }
    }

    // ---- Events, config, JetStream --------------------------------------------------

    /// `wasmbus.evt.{lattice}`: CloudEvents from hosts.
    pub fn events(&self) -> String {
        format!("{EVT_PREFIX}.{}", self.lattice)
    }

    /// `wasmbus.cfg.{lattice}.req`: the optional configuration service.
    pub fn config_service(&self) -> String {
        format!("{CFG_PREFIX}.{}.req", self.lattice)
    }

    /// `LATTICEDATA_{lattice}`: the metadata KV bucket (links, claims, refmaps).
    pub fn kv_bucket(&self) -> String {
        format!("{KV_BUCKET_PREFIX}{}", self.lattice)
    }

    /// `KV_LATTICEDATA_{lattice}`: the stream behind the KV bucket.
    pub fn kv_stream(&self) -> String {
        format!("KV_{}", self.kv_bucket())
    }

    /// `$KV.LATTICEDATA_{lattice}.>`: the subjects of the KV stream (for watchers).
    pub fn kv_subjects(&self) -> String {
        format!("$KV.{}.>", self.kv_bucket())
    }

    /// `$KV.LATTICEDATA_{lattice}.{key}`: the subject of one KV key.
    pub fn kv_key_subject(&self, key: &str) -> String {
        format!("$KV.{}.{key}", self.kv_bucket())
    }

    /// The object-store bucket used for chunked payloads: named after the lattice.
    pub fn object_store_bucket(&self) -> &str {
        &self.lattice
    }
}

/// Object-store name of a chunked invocation payload: the invocation id.
pub fn chunk_object_request(invocation_id: &str) -> String {
    invocation_id.to_string()
}

/// Object-store name of a chunked response payload: `{invocation id}-r`.
pub fn chunk_object_response(invocation_id: &str) -> String {
    format!("{invocation_id}-r")
}
