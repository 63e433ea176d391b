//! Link definitions (the run-time binding of an actor to a provider for one contract and
//! link name) and the keys of the lattice metadata KV bucket that stores them.
//!
//! The same type travels as JSON in the KV bucket and the control interface, and as a
//! MessagePack map to providers (`...linkdefs.put` / `.del`, host data).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::wire::upper_hex;

/// Prefix of the KV keys holding link definitions (`LINKDEF_{id}`).
pub const LINKDEF_KEY_PREFIX: &str = "LINKDEF_";
/// Prefix of the KV keys holding stored claims (`CLAIMS_{public key}`).
pub const CLAIMS_KEY_PREFIX: &str = "CLAIMS_";
/// Prefix of the KV keys holding OCI reference maps (`REFMAP_{base64url(oci ref)}`).
pub const REFMAP_KEY_PREFIX: &str = "REFMAP_";

/// The link name used when none is given.
pub const DEFAULT_LINK_NAME: &str = "default";

/// A link from an actor to a provider for one contract id and link name, with the
/// provider-specific configuration `values`. At most one provider per
/// (actor_id, contract_id, link_name).
///
/// Field order puts `id` last so a positional-array encoding from wasmbus-rpc (which has
/// no `id`) decodes into the right fields. A missing `id` is computed on decode.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "RawLinkDefinition")]
pub struct LinkDefinition {
    /// The actor's `M...` public key.
    pub actor_id: String,
    /// The provider's `V...` public key.
    pub provider_id: String,
    /// The link name (usually `default`).
    pub link_name: String,
    /// The contract id, e.g. `wasmcloud:keyvalue`.
    pub contract_id: String,
    /// Provider-specific settings; always on the wire, possibly `{}`.
    pub values: HashMap<String, String>,
    /// [`link_id`] of the triple; the KV key suffix.
    pub id: String,
}

/// What is accepted on the wire: `values` and `id` may be missing.
#[derive(Deserialize)]
struct RawLinkDefinition {
    actor_id: String,
    provider_id: String,
    link_name: String,
    contract_id: String,
    #[serde(default)]
    values: HashMap<String, String>,
    #[serde(default)]
    id: Option<String>,
}

impl From<RawLinkDefinition> for LinkDefinition {
    fn from(raw: RawLinkDefinition) -> Self {
        let id = match raw.id {
            Some(id) if !id.is_empty() => id,
            _ => link_id(&raw.actor_id, &raw.contract_id, &raw.link_name),
        };
        LinkDefinition {
            actor_id: raw.actor_id,
            provider_id: raw.provider_id,
            link_name: raw.link_name,
            contract_id: raw.contract_id,
            values: raw.values,
            id,
        }
    }
}

impl LinkDefinition {
    /// A link definition with its id computed from the identity triple.
    pub fn new(
        actor_id: impl Into<String>,
        provider_id: impl Into<String>,
        link_name: impl Into<String>,
        contract_id: impl Into<String>,
        values: HashMap<String, String>,
    ) -> Self {
        let actor_id = actor_id.into();
        let link_name = link_name.into();
        let contract_id = contract_id.into();
        let id = link_id(&actor_id, &contract_id, &link_name);
        LinkDefinition {
            actor_id,
            provider_id: provider_id.into(),
            link_name,
            contract_id,
            values,
            id,
        }
    }

    /// The id this link should have, recomputed from its triple (ignores `self.id`).
    pub fn computed_id(&self) -> String {
        link_id(&self.actor_id, &self.contract_id, &self.link_name)
    }

    /// The KV key under which this link is stored.
    pub fn kv_key(&self) -> String {
        linkdef_key(&self.id)
    }
}

/// Link id: uppercase hex SHA-256 of `actor_id ‖ contract_id ‖ link_name`, the identity of
/// a link across hosts and the KV key suffix.
pub fn link_id(actor_id: &str, contract_id: &str, link_name: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(actor_id.as_bytes());
    hasher.update(contract_id.as_bytes());
    hasher.update(link_name.as_bytes());
    upper_hex(&hasher.finalize())
}

/// KV key of a link definition: `LINKDEF_{id}`.
pub fn linkdef_key(id: &str) -> String {
    format!("{LINKDEF_KEY_PREFIX}{id}")
}

/// KV key of an entity's stored claims: `CLAIMS_{public_key}`.
pub fn claims_key(public_key: &str) -> String {
    format!("{CLAIMS_KEY_PREFIX}{public_key}")
}

/// KV key of an OCI reference map: `REFMAP_{base64url without padding of the reference}`.
pub fn refmap_key(oci_ref: &str) -> String {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(oci_ref.as_bytes());
    format!("{REFMAP_KEY_PREFIX}{encoded}")
}

/// A parsed key of the metadata KV bucket, so a bucket watcher can dispatch on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvKey {
    /// `LINKDEF_{id}`.
    LinkDefinition(String),
    /// `CLAIMS_{public_key}`.
    Claims(String),
    /// `REFMAP_{encoded}`; holds the encoded part as found in the key.
    RefMap(String),
}

impl KvKey {
    /// Parses a bucket key; `None` for keys this protocol does not define.
    pub fn parse(key: &str) -> Option<KvKey> {
        if let Some(id) = key.strip_prefix(LINKDEF_KEY_PREFIX) {
            Some(KvKey::LinkDefinition(id.to_string()))
        } else if let Some(pk) = key.strip_prefix(CLAIMS_KEY_PREFIX) {
            Some(KvKey::Claims(pk.to_string()))
        } else {
            key.strip_prefix(REFMAP_KEY_PREFIX)
                .map(|enc| KvKey::RefMap(enc.to_string()))
        }
    }

    /// The bucket key this value stands for.
    pub fn to_key(&self) -> String {
        match self {
            KvKey::LinkDefinition(id) => linkdef_key(id),
            KvKey::Claims(pk) => claims_key(pk),
            KvKey::RefMap(enc) => format!("{REFMAP_KEY_PREFIX}{enc}"),
        }
    }
}

/// The JSON value of a `REFMAP_*` key: which public key an OCI reference resolved to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefMapEntry {
    /// The OCI reference as given by the user.
    pub oci_url: String,
    /// The public key of the actor or provider it resolved to.
    pub public_key: String,
}
