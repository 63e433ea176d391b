//! The JetStream KV store: bucket `LATTICEDATA_{lattice}`, JSON values under
//! `LINKDEF_{id}` and `CLAIMS_{pk}`, the layout 0.x hosts and the control-interface client
//! use, so links written by `wash ctl` (or another host) reach every host.
//!
//! A watch replays the bucket from its first message (history is 1, so that is the latest
//! value or delete marker of each key) up to the last one present when the watch began,
//! folds that into the snapshot, and hands on the rest as changes. DEL and PURGE markers
//! both delete.

use std::collections::HashMap;
use std::time::Duration;

use async_nats::jetstream::{self, kv};
use async_trait::async_trait;
use bytes::Bytes;
use futures_util::stream::{BoxStream, StreamExt};
use nimbus_core::link::{KvKey, LinkDefinition, claims_key, linkdef_key};
use nimbus_core::subjects::Subjects;

use super::{ClaimsRecord, LatticeStore, Snapshot, StoreChange};
use crate::error::StoreError;

/// Longest wait for the replay of the existing entries when a watch starts.
const INITIAL_SYNC_TIMEOUT: Duration = Duration::from_secs(10);

/// Links and claims in the lattice's JetStream KV bucket.
pub struct JetStreamStore {
    context: jetstream::Context,
    kv: kv::Store,
    bucket: String,
}

impl std::fmt::Debug for JetStreamStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JetStreamStore")
            .field("bucket", &self.bucket)
            .finish_non_exhaustive()
    }
}

impl JetStreamStore {
    /// Opens the bucket of `lattice`, creating it (history 1, file storage) if missing.
    pub async fn open(client: async_nats::Client, lattice: &str) -> Result<Self, StoreError> {
        let context = jetstream::new(client);
        let bucket = Subjects::for_lattice(lattice).kv_bucket();
        let bucket_error = |reason: String| StoreError::Bucket {
            bucket: bucket.clone(),
            reason,
        };
        let kv = match context.get_key_value(&bucket).await {
            Ok(kv) => kv,
            Err(_) => {
                let config = kv::Config {
                    bucket: bucket.clone(),
                    history: 1,
                    storage: jetstream::stream::StorageType::File,
                    num_replicas: 1,
                    ..kv::Config::default()
                };
                match context.create_key_value(config).await {
                    Ok(kv) => kv,
                    // Another host may have created it at the same moment.
                    Err(create) => context
                        .get_key_value(&bucket)
                        .await
                        .map_err(|_| bucket_error(create.to_string()))?,
                }
            }
        };
        Ok(Self {
            context,
            kv,
            bucket,
        })
    }

    async fn put_json(&self, key: &str, value: Vec<u8>) -> Result<u64, StoreError> {
        self.kv
            .put(key, Bytes::from(value))
            .await
            .map_err(|e| StoreError::op("put", e))
    }

    async fn delete_key(&self, key: &str) -> Result<u64, StoreError> {
        // Purge (what the 0.x host does) leaves one marker and drops older revisions.
        self.kv
            .purge(key)
            .await
            .map_err(|e| StoreError::op("delete", e))?;
        Ok(0)
    }

    /// The sequence of the last message now in the bucket's stream, 0 if it is empty.
    async fn last_sequence(&self) -> Result<u64, StoreError> {
        let mut stream = self
            .context
            .get_stream(format!("KV_{}", self.bucket))
            .await
            .map_err(|e| StoreError::op("watch", e))?;
        let info = stream
            .info()
            .await
            .map_err(|e| StoreError::op("watch", e))?;
        Ok(if info.state.messages == 0 {
            0
        } else {
            info.state.last_sequence
        })
    }
}

/// Turns a KV entry into a store change; `None` for keys and values we do not use.
fn decode(entry: &kv::Entry) -> Option<StoreChange> {
    let revision = entry.revision;
    let deleted = matches!(
        entry.operation,
        kv::Operation::Delete | kv::Operation::Purge
    );
    match KvKey::parse(&entry.key)? {
        KvKey::LinkDefinition(id) if deleted => Some(StoreChange::LinkDeleted { id, revision }),
        KvKey::LinkDefinition(id) => match serde_json::from_slice::<LinkDefinition>(&entry.value) {
            Ok(mut link) => {
                if link.id.is_empty() {
                    link.id = id;
                }
                Some(StoreChange::LinkPut { link, revision })
            }
            Err(e) => {
                tracing::warn!(key = %entry.key, error = %e, "ignoring a link definition that is not valid JSON");
                None
            }
        },
        KvKey::Claims(public_key) if deleted => Some(StoreChange::ClaimsDeleted {
            public_key,
            revision,
        }),
        KvKey::Claims(_) => match serde_json::from_slice::<ClaimsRecord>(&entry.value) {
            Ok(claims) => Some(StoreChange::ClaimsPut { claims, revision }),
            Err(e) => {
                tracing::warn!(key = %entry.key, error = %e, "ignoring claims that are not valid JSON");
                None
            }
        },
        KvKey::RefMap(_) => None,
    }
}

#[derive(Default)]
struct Fold {
    links: HashMap<String, (LinkDefinition, u64)>,
    claims: HashMap<String, (ClaimsRecord, u64)>,
}

impl Fold {
    fn apply(&mut self, change: StoreChange) {
        match change {
            StoreChange::LinkPut { link, revision } => {
                self.links.insert(link.id.clone(), (link, revision));
            }
            StoreChange::LinkDeleted { id, .. } => {
                self.links.remove(&id);
            }
            StoreChange::ClaimsPut { claims, revision } => {
                self.claims
                    .insert(claims.public_key().to_string(), (claims, revision));
            }
            StoreChange::ClaimsDeleted { public_key, .. } => {
                self.claims.remove(&public_key);
            }
        }
    }
}

#[async_trait]
impl LatticeStore for JetStreamStore {
    async fn put_link(&self, link: &LinkDefinition) -> Result<u64, StoreError> {
        let json = serde_json::to_vec(link).map_err(|e| StoreError::Encoding {
            key: link.kv_key(),
            reason: e.to_string(),
        })?;
        self.put_json(&linkdef_key(&link.id), json).await
    }

    async fn delete_link(&self, id: &str) -> Result<u64, StoreError> {
        self.delete_key(&linkdef_key(id)).await
    }

    async fn put_claims(&self, claims: &ClaimsRecord) -> Result<u64, StoreError> {
        let key = claims_key(claims.public_key());
        let json = serde_json::to_vec(claims).map_err(|e| StoreError::Encoding {
            key: key.clone(),
            reason: e.to_string(),
        })?;
        self.put_json(&key, json).await
    }

    async fn delete_claims(&self, public_key: &str) -> Result<u64, StoreError> {
        self.delete_key(&claims_key(public_key)).await
    }

    async fn watch(&self) -> Result<(Snapshot, BoxStream<'static, StoreChange>), StoreError> {
        let last = self.last_sequence().await?;
        let watch = self
            .kv
            .watch_all_from_revision(1)
            .await
            .map_err(|e| StoreError::op("watch", e))?;
        // A watcher error ends the stream; the host then watches again.
        let mut entries = watch
            .take_while(|r| std::future::ready(r.is_ok()))
            .filter_map(|r| std::future::ready(r.ok()))
            .boxed();
        let mut fold = Fold::default();
        if last > 0 {
            let replay = async {
                while let Some(entry) = entries.next().await {
                    let revision = entry.revision;
                    if let Some(change) = decode(&entry) {
                        fold.apply(change);
                    }
                    if revision >= last {
                        break;
                    }
                }
            };
            if tokio::time::timeout(INITIAL_SYNC_TIMEOUT, replay)
                .await
                .is_err()
            {
                tracing::warn!(bucket = %self.bucket, "the lattice data replay did not finish in time; continuing with what arrived");
            }
        }
        let snapshot = Snapshot {
            links: fold.links.into_values().collect(),
            claims: fold.claims.into_values().collect(),
        };
        let changes = entries.filter_map(|entry| std::future::ready(decode(&entry)));
        Ok((snapshot, changes.boxed()))
    }
}
