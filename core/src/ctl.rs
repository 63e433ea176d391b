//! Control-interface payloads (JSON on `wasmbus.ctl.{lattice}.*`): the commands a client
//! such as `wash ctl` sends to hosts and the replies hosts give, with the exact field names
//! of the 0.x control-interface crate so published clients can drive our hosts.
//!
//! Maps use `BTreeMap` so encoded JSON is deterministic. Optional request fields carry
//! the defaults the OTP host applies.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::link::{DEFAULT_LINK_NAME, LinkDefinition};

/// String-to-string map used for labels, annotations and auction constraints.
pub type StringMap = BTreeMap<String, String>;

/// Default timeout of a stop-host command, in milliseconds.
pub const DEFAULT_STOP_HOST_TIMEOUT_MS: u64 = 500;

fn default_count() -> u16 {
    1
}

fn default_link_name() -> String {
    DEFAULT_LINK_NAME.to_string()
}

fn default_registry_type() -> String {
    "oci".to_string()
}

/// A host's reply to `ping.hosts`: identity, labels, uptime and connection details.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Host {
    /// Host `N...` key.
    pub id: String,
    /// Cluster public key that signs this host's invocations.
    #[serde(default)]
    pub issuer: String,
    /// Host labels.
    #[serde(default)]
    pub labels: StringMap,
    /// Human-friendly generated name.
    #[serde(default)]
    pub friendly_name: String,
    /// Seconds since start.
    #[serde(default)]
    pub uptime_seconds: u64,
    /// Uptime as text, e.g. `1h 2m 3s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uptime_human: Option<String>,
    /// Host software version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Comma-separated cluster issuers accepted by this host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_issuers: Option<String>,
    /// JetStream domain, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub js_domain: Option<String>,
    /// NATS server of the control connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ctl_host: Option<String>,
    /// NATS server handed to providers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prov_rpc_host: Option<String>,
    /// NATS server of the RPC connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpc_host: Option<String>,
    /// Lattice prefix the host serves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lattice_prefix: Option<String>,
}

/// Reply to `get.{host}.inv`: what one host is running.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostInventory {
    /// Host `N...` key.
    pub host_id: String,
    /// Cluster public key of the host.
    #[serde(default)]
    pub issuer: String,
    /// Host labels.
    #[serde(default)]
    pub labels: StringMap,
    /// Human-friendly host name.
    #[serde(default)]
    pub friendly_name: String,
    /// Running actors.
    #[serde(default)]
    pub actors: Vec<ActorDescription>,
    /// Running providers.
    #[serde(default)]
    pub providers: Vec<ProviderDescription>,
}

/// One actor in a host inventory, with its running instances.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActorDescription {
    /// Actor `M...` key.
    pub id: String,
    /// Reference the actor was started from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_ref: Option<String>,
    /// Name from the actor's claims.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Running instances.
    #[serde(default)]
    pub instances: Vec<ActorInstance>,
}

/// One running instance of an actor.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActorInstance {
    /// Annotations given at start.
    #[serde(default)]
    pub annotations: StringMap,
    /// Instance id (UUIDv4).
    pub instance_id: String,
    /// Claims revision of the running module.
    #[serde(default)]
    pub revision: i32,
}

/// One provider in a host inventory.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderDescription {
    /// Provider `V...` key.
    pub id: String,
    /// Reference the provider was started from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_ref: Option<String>,
    /// Contract id the provider implements.
    #[serde(default)]
    pub contract_id: String,
    /// Link name it runs under.
    #[serde(default)]
    pub link_name: String,
    /// Name from the provider's claims.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Instance id (UUIDv4).
    #[serde(default)]
    pub instance_id: String,
    /// Annotations given at start.
    #[serde(default)]
    pub annotations: StringMap,
    /// Claims revision.
    #[serde(default)]
    pub revision: i32,
}

/// Reply to `get.claims`: every stored claims entry as a flat string map (see
/// [`StoredClaims`] for the keys).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetClaimsResponse {
    /// One string map per actor or provider.
    #[serde(default)]
    pub claims: Vec<HashMap<String, String>>,
}

/// The flat claims record kept in the KV bucket (`CLAIMS_{pk}`) and returned by
/// `get.claims`; list values (`caps`, `tags`) are comma-joined, `rev` is a string.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredClaims {
    /// Call alias of an actor (may be empty).
    #[serde(default)]
    pub call_alias: String,
    /// Issuer account `A...` key.
    #[serde(default)]
    pub iss: String,
    /// Entity name.
    #[serde(default)]
    pub name: String,
    /// Comma-joined capability contract ids (actors).
    #[serde(default)]
    pub caps: String,
    /// Revision as a decimal string.
    #[serde(default)]
    pub rev: String,
    /// Comma-joined tags.
    #[serde(default)]
    pub tags: String,
    /// Version string.
    #[serde(default)]
    pub version: String,
    /// Subject: the entity's public key.
    #[serde(default)]
    pub sub: String,
    /// Contract id (providers; empty for actors).
    #[serde(default)]
    pub contract_id: String,
    /// Provider configuration schema, when declared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_schema: Option<String>,
}

impl StoredClaims {
    /// The flat map form used in [`GetClaimsResponse`].
    pub fn to_map(&self) -> HashMap<String, String> {
        let mut map = HashMap::with_capacity(10);
        for (k, v) in [
            ("call_alias", &self.call_alias),
            ("iss", &self.iss),
            ("name", &self.name),
            ("caps", &self.caps),
            ("rev", &self.rev),
            ("tags", &self.tags),
            ("version", &self.version),
            ("sub", &self.sub),
            ("contract_id", &self.contract_id),
        ] {
            map.insert(k.to_string(), v.clone());
        }
        if let Some(schema) = &self.config_schema {
            map.insert("config_schema".to_string(), schema.clone());
        }
        map
    }

    /// Reads the flat map form; missing keys become empty strings.
    pub fn from_map(map: &HashMap<String, String>) -> Self {
        let get = |k: &str| map.get(k).cloned().unwrap_or_default();
        StoredClaims {
            call_alias: get("call_alias"),
            iss: get("iss"),
            name: get("name"),
            caps: get("caps"),
            rev: get("rev"),
            tags: get("tags"),
            version: get("version"),
            sub: get("sub"),
            contract_id: get("contract_id"),
            config_schema: map.get("config_schema").cloned(),
        }
    }
}

/// Reply to `get.links`: every link definition in the lattice.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkDefinitionList {
    /// The links, each including its `id`.
    #[serde(default)]
    pub links: Vec<LinkDefinition>,
}

/// Body of `linkdefs.del`: the identity triple of the link to remove.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoveLinkDefinitionRequest {
    /// Actor `M...` key.
    pub actor_id: String,
    /// Contract id.
    pub contract_id: String,
    /// Link name.
    #[serde(default = "default_link_name")]
    pub link_name: String,
}

/// `cmd.{host}.la`: start `count` instances of an actor from a reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartActorCommand {
    /// OCI, `bindle://` or `file://` reference.
    pub actor_ref: String,
    /// Number of instances (default 1).
    #[serde(default = "default_count")]
    pub count: u16,
    /// Annotations to attach to the instances.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<StringMap>,
    /// Target host (also in the subject).
    #[serde(default)]
    pub host_id: String,
}

/// `cmd.{host}.sa`: stop `count` instances of an actor identified by public key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopActorCommand {
    /// The actor's public key (not an OCI reference).
    pub actor_ref: String,
    /// Number of instances to stop.
    pub count: u16,
    /// Only instances whose annotations include these are stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<StringMap>,
    /// Target host (also in the subject).
    #[serde(default)]
    pub host_id: String,
}

/// `cmd.{host}.scale`: set the number of instances of an actor (0 allowed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScaleActorCommand {
    /// The actor's public key.
    pub actor_id: String,
    /// Reference to start more instances from (needed to scale up).
    #[serde(default)]
    pub actor_ref: String,
    /// Desired number of instances.
    pub count: u16,
    /// Annotations selecting/marking the instances.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<StringMap>,
    /// Target host (also in the subject).
    #[serde(default)]
    pub host_id: String,
}

/// `cmd.{host}.upd`: live-update a running actor to a new module with the same key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateActorCommand {
    /// The actor's public key.
    #[serde(default)]
    pub actor_id: String,
    /// Reference of the new module.
    pub new_actor_ref: String,
    /// Annotations of the instances to update.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<StringMap>,
    /// Target host (also in the subject).
    #[serde(default)]
    pub host_id: String,
}

/// `cmd.{host}.lp`: start a capability provider under a link name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartProviderCommand {
    /// OCI or `file://` reference of the provider archive.
    pub provider_ref: String,
    /// Link name to run under.
    pub link_name: String,
    /// Configuration string passed to the provider as host data `config_json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configuration: Option<String>,
    /// Annotations to attach.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<StringMap>,
    /// Target host (also in the subject).
    #[serde(default)]
    pub host_id: String,
}

/// `cmd.{host}.sp`: stop a provider identified by public key and link name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopProviderCommand {
    /// The provider's public key (exactly 56 characters).
    pub provider_ref: String,
    /// Link name it runs under.
    pub link_name: String,
    /// Contract id it implements.
    #[serde(default)]
    pub contract_id: String,
    /// Annotations selecting the instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<StringMap>,
    /// Target host (also in the subject).
    #[serde(default)]
    pub host_id: String,
}

/// `cmd.{host}.stop`: stop the whole host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopHostCommand {
    /// Target host (also in the subject).
    #[serde(default)]
    pub host_id: String,
    /// Grace period in milliseconds (default [`DEFAULT_STOP_HOST_TIMEOUT_MS`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
}

impl StopHostCommand {
    /// The grace period to apply, with the default filled in.
    pub fn timeout_ms(&self) -> u64 {
        self.timeout.unwrap_or(DEFAULT_STOP_HOST_TIMEOUT_MS)
    }
}

/// Acknowledgement of a command; `accepted` only means the host took the work, the
/// outcome arrives as events. `error` is `""` when accepted (as OTP sends it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CtlOperationAck {
    /// Whether the host accepted the command.
    pub accepted: bool,
    /// Why it was refused; empty when accepted.
    #[serde(default)]
    pub error: String,
}

impl CtlOperationAck {
    /// An acceptance.
    pub fn ok() -> Self {
        CtlOperationAck {
            accepted: true,
            error: String::new(),
        }
    }

    /// A refusal explaining why.
    pub fn failed(error: impl Into<String>) -> Self {
        CtlOperationAck {
            accepted: false,
            error: error.into(),
        }
    }
}

/// `auction.actor`: which hosts could run this actor under these label constraints?
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActorAuctionRequest {
    /// Reference of the actor to place.
    pub actor_ref: String,
    /// Labels a host must have.
    #[serde(default)]
    pub constraints: StringMap,
}

/// A host's bid in an actor auction.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActorAuctionAck {
    /// Reference from the request.
    pub actor_ref: String,
    /// Constraints from the request.
    #[serde(default)]
    pub constraints: StringMap,
    /// The bidding host.
    pub host_id: String,
}

/// `auction.provider`: which hosts could run this provider (not already running it)?
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderAuctionRequest {
    /// Reference of the provider to place.
    pub provider_ref: String,
    /// Link name (default `default`).
    #[serde(default = "default_link_name")]
    pub link_name: String,
    /// Labels a host must have.
    #[serde(default)]
    pub constraints: StringMap,
}

/// A host's bid in a provider auction.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderAuctionAck {
    /// Reference from the request.
    pub provider_ref: String,
    /// Link name from the request.
    #[serde(default = "default_link_name")]
    pub link_name: String,
    /// Constraints from the request.
    #[serde(default)]
    pub constraints: StringMap,
    /// The bidding host.
    pub host_id: String,
}

/// Credentials for one registry server, sent in `registries.put`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryCredential {
    /// `oci` or `bindle` (default `oci`).
    #[serde(rename = "registryType", default = "default_registry_type")]
    pub registry_type: String,
    /// User name for basic auth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Password for basic auth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Bearer token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

impl Default for RegistryCredential {
    fn default() -> Self {
        RegistryCredential {
            registry_type: default_registry_type(),
            username: None,
            password: None,
            token: None,
        }
    }
}

/// Body of `registries.put`: registry server → credentials.
pub type RegistryCredentialMap = BTreeMap<String, RegistryCredential>;
