//! Where the links and claims of a lattice live, shared by all its hosts: a small trait
//! with an in-memory implementation (standalone hosts, tests, several hosts in one
//! process) and a JetStream KV implementation on bucket `LATTICEDATA_{lattice}`.
//!
//! A host reads a consistent snapshot and then follows a stream of changes, each with a
//! revision, so its cache can ignore changes it already applied (its own writes).
//! Revisions only increase, even across a store that lost its data and started again
//! (see [`LatticeStore::generation`]).

mod jetstream;
mod memory;

pub use jetstream::JetStreamStore;
pub use memory::MemoryStore;

use async_trait::async_trait;
use futures_util::stream::BoxStream;
use nimbus_core::claims::{Actor as ActorMeta, Token};
use nimbus_core::ctl::StoredClaims;
use nimbus_core::link::LinkDefinition;
use serde::{Deserialize, Serialize};

use crate::error::StoreError;

/// The claims record kept per actor (`CLAIMS_{pk}`): the 0.x JSON fields plus one extra
/// key, `caps_declared`, saying whether the token had a `caps` field at all, because a
/// token without one is granted every linked contract while `caps: []` grants none.
///
/// 0.x readers (the 0.28 control-interface client's `get_claims` reads the bucket
/// directly) decode the record as a map of strings and reject the whole record, and with
/// it the whole claims listing, on any other JSON type; so every value is a string and
/// the flag is written as `"true"` / `"false"`, which they keep as one more string entry.
/// Reading accepts that string, the JSON bool earlier versions of this host wrote, and
/// no key at all (a record written by a 0.x host), which counts as declaring its caps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimsRecord {
    /// The 0.x fields.
    #[serde(flatten)]
    pub stored: StoredClaims,
    /// False when the token had no `caps` field (the link is the grant).
    #[serde(default = "yes", with = "string_bool")]
    pub caps_declared: bool,
}

fn yes() -> bool {
    true
}

/// A bool stored as the JSON string `"true"` / `"false"` (see [`ClaimsRecord`]); reads
/// a JSON bool too.
mod string_bool {
    use std::fmt;

    use serde::de::{self, Deserializer, Visitor};
    use serde::ser::Serializer;

    pub fn serialize<S: Serializer>(value: &bool, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(if *value { "true" } else { "false" })
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_any(StringOrBool)
    }

    struct StringOrBool;

    impl Visitor<'_> for StringOrBool {
        type Value = bool;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(r#""true", "false" or a bool"#)
        }

        fn visit_bool<E: de::Error>(self, value: bool) -> Result<bool, E> {
            Ok(value)
        }

        fn visit_str<E: de::Error>(self, value: &str) -> Result<bool, E> {
            match value {
                "true" => Ok(true),
                "false" => Ok(false),
                other => Err(E::invalid_value(de::Unexpected::Str(other), &self)),
            }
        }
    }
}

impl Default for ClaimsRecord {
    /// Empty claims that grant nothing (`caps` declared and empty).
    fn default() -> Self {
        ClaimsRecord {
            stored: StoredClaims::default(),
            caps_declared: true,
        }
    }
}

impl ClaimsRecord {
    /// The record of an actor's verified token.
    pub fn from_actor_token(token: &Token<ActorMeta>) -> Self {
        let c = &token.claims;
        let w = &c.wascap;
        ClaimsRecord {
            stored: StoredClaims {
                call_alias: w.call_alias.clone().unwrap_or_default(),
                iss: c.iss.clone(),
                name: w.name.clone().unwrap_or_default(),
                caps: w.caps.as_ref().map(|c| c.join(",")).unwrap_or_default(),
                rev: w.rev.unwrap_or(0).to_string(),
                tags: w.tags.as_ref().map(|t| t.join(",")).unwrap_or_default(),
                version: w.ver.clone().unwrap_or_default(),
                sub: c.sub.clone(),
                contract_id: String::new(),
                config_schema: None,
            },
            caps_declared: w.caps.is_some(),
        }
    }

    /// The entity's public key.
    pub fn public_key(&self) -> &str {
        &self.stored.sub
    }

    /// The contracts these claims declare; `None` when they declare none (claims without
    /// a `caps` field: the link alone is the grant).
    pub fn declared_caps(&self) -> Option<impl Iterator<Item = &str>> {
        self.caps_declared
            .then(|| self.stored.caps.split(',').map(str::trim))
    }

    /// Whether these claims let the actor use `contract_id` (given a link exists).
    pub fn grants(&self, contract_id: &str) -> bool {
        self.declared_caps()
            .is_none_or(|mut caps| caps.any(|c| c == contract_id))
    }
}

/// One change to the store, with the store's revision of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreChange {
    /// A link was put (created or changed).
    LinkPut {
        /// The link.
        link: LinkDefinition,
        /// Store revision.
        revision: u64,
    },
    /// A link was deleted or purged.
    LinkDeleted {
        /// The link id.
        id: String,
        /// Store revision.
        revision: u64,
    },
    /// Claims were put.
    ClaimsPut {
        /// The claims.
        claims: ClaimsRecord,
        /// Store revision.
        revision: u64,
    },
    /// Claims were deleted or purged.
    ClaimsDeleted {
        /// The entity's public key.
        public_key: String,
        /// Store revision.
        revision: u64,
    },
}

/// The whole content of a store at one point, each entry with its revision.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Every link.
    pub links: Vec<(LinkDefinition, u64)>,
    /// Every claims record.
    pub claims: Vec<(ClaimsRecord, u64)>,
}

/// The lattice's shared links and claims. Writes return the revision they got.
#[async_trait]
pub trait LatticeStore: Send + Sync + 'static {
    /// Creates or replaces the link with `link.id`.
    async fn put_link(&self, link: &LinkDefinition) -> Result<u64, StoreError>;
    /// Removes the link with this id (no error if absent).
    async fn delete_link(&self, id: &str) -> Result<u64, StoreError>;
    /// Creates or replaces the claims of `claims.public_key()`.
    async fn put_claims(&self, claims: &ClaimsRecord) -> Result<u64, StoreError>;
    /// Removes the claims of an entity (no error if absent).
    async fn delete_claims(&self, public_key: &str) -> Result<u64, StoreError>;
    /// A snapshot and every change after it, in order. The stream ends if the store can
    /// no longer follow changes (the caller then watches again).
    async fn watch(&self) -> Result<(Snapshot, BoxStream<'static, StoreChange>), StoreError>;

    /// Writes a link only if the store has no entry for its key, not even a delete
    /// marker: how a host puts back a link it knew after the store lost its data, without
    /// undoing a put or delete made since. `None` when the key was there.
    async fn restore_link(&self, link: &LinkDefinition) -> Result<Option<u64>, StoreError> {
        self.put_link(link).await.map(Some)
    }

    /// How many times the store found its data gone and started again empty (a
    /// nats-server that came back without its JetStream store); 0 for a store that
    /// cannot lose its data. When it goes up, the host puts back what it owns.
    fn generation(&self) -> u64 {
        0
    }

    /// Every link now.
    async fn list_links(&self) -> Result<Vec<LinkDefinition>, StoreError> {
        let (snapshot, _) = self.watch().await?;
        Ok(snapshot.links.into_iter().map(|(l, _)| l).collect())
    }

    /// Every claims record now.
    async fn list_claims(&self) -> Result<Vec<ClaimsRecord>, StoreError> {
        let (snapshot, _) = self.watch().await?;
        Ok(snapshot.claims.into_iter().map(|(c, _)| c).collect())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn caps_field_decides_what_a_link_grants() {
        let mut record = ClaimsRecord::default();
        record.stored.caps = "wasmcloud:keyvalue, wasmcloud:httpserver".into();
        assert!(record.grants("wasmcloud:httpserver"));
        assert!(!record.grants("wasmcloud:messaging"));
        record.stored.caps.clear();
        assert!(
            !record.grants("wasmcloud:keyvalue"),
            "caps: [] grants nothing"
        );
        record.caps_declared = false;
        assert!(
            record.grants("wasmcloud:keyvalue"),
            "no caps field: the link is the grant"
        );
    }

    #[test]
    fn records_read_as_0x_stored_claims_and_back() {
        let mut record = ClaimsRecord::default();
        record.stored.sub = "Mabc".into();
        record.stored.caps = "a:b".into();
        record.caps_declared = false;
        let json = serde_json::to_value(&record).unwrap();
        assert_eq!(json["sub"], "Mabc");
        assert_eq!(json["caps_declared"], "false");
        // A 0.x client reads the record as a map of strings (control-interface 0.28
        // kv.rs): every value must be a string, the extra key is just one more entry.
        let as_0x: HashMap<String, String> = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(as_0x["caps_declared"], "false");
        assert_eq!(StoredClaims::from_map(&as_0x), record.stored);
        let stored: StoredClaims = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(stored, record.stored);
        // A record written by a 0.x host (no extra key) counts as declaring its caps.
        let plain: ClaimsRecord = serde_json::to_value(&stored)
            .and_then(serde_json::from_value)
            .unwrap();
        assert!(plain.caps_declared);
        assert_eq!(
            serde_json::from_value::<ClaimsRecord>(json).unwrap(),
            record
        );
    }

    #[test]
    fn caps_declared_is_a_string_and_old_bool_records_still_read() {
        let mut record = ClaimsRecord::default();
        record.stored.sub = "Mabc".into();
        let json = serde_json::to_value(&record).unwrap();
        assert!(
            json.as_object()
                .unwrap()
                .values()
                .all(serde_json::Value::is_string),
            "every value of a claims record is a string: {json}"
        );
        assert_eq!(json["caps_declared"], "true");
        // Records written by earlier versions of this host carry a JSON bool; read them
        // from bytes, as the JetStream store does.
        for old in [false, true] {
            let mut json = json.clone();
            json["caps_declared"] = serde_json::Value::Bool(old);
            let bytes = serde_json::to_vec(&json).unwrap();
            let read: ClaimsRecord = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(read.caps_declared, old);
            assert_eq!(read.stored.sub, "Mabc");
        }
        let mut bad = json;
        bad["caps_declared"] = "maybe".into();
        let err = serde_json::from_value::<ClaimsRecord>(bad).unwrap_err();
        assert!(err.to_string().contains("maybe"), "{err}");
    }
}
