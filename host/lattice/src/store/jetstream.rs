//! The JetStream KV store: bucket `LATTICEDATA_{lattice}`, JSON values under
//! `LINKDEF_{id}` and `CLAIMS_{pk}`, the layout 0.x hosts and the control-interface client
//! use, so links written by `wash ctl` (or another host) reach every host.
//!
//! A watch replays the bucket from its first message (history is 1, so that is the latest
//! value or delete marker of each key) up to the last one present when the watch began,
//! folds that into the snapshot, and hands on the rest as changes. DEL and PURGE markers
//! both delete.
//!
//! **A bucket that goes away.** A nats-server that comes back without its JetStream
//! store (a temporary store dir, a lost volume) has no bucket, and an operator may delete
//! it. So a put, delete or watch that fails asks the server whether the bucket's stream
//! is there; if it is not, the store creates it again with the configuration of
//! [`JetStreamStore::open`] and tries once more. A watch also ends when the stream it
//! follows is gone or was replaced (checked after every reconnect, or at once when this
//! store created it again), so the host watches again from a fresh snapshot.
//!
//! A new stream numbers its messages from 1 again, while the host's cache orders changes
//! by revision. The revisions this store hands out are therefore the stream's sequence
//! plus a base that grows past every revision handed out before whenever the store meets
//! a new incarnation of the stream (told apart by its creation time): they only increase,
//! across any number of lost buckets. [`LatticeStore::generation`] counts those
//! incarnations, so the host knows to put back what it owns.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_nats::jetstream::{self, kv, stream};
use async_trait::async_trait;
use bytes::Bytes;
use futures_util::stream::{BoxStream, StreamExt};
use nimbus_core::link::{KvKey, LinkDefinition, claims_key, linkdef_key};
use nimbus_core::subjects::Subjects;
use tokio::sync::watch;

use super::{ClaimsRecord, LatticeStore, Snapshot, StoreChange};
use crate::error::StoreError;

/// Longest wait for the replay of the existing entries when a watch starts.
const INITIAL_SYNC_TIMEOUT: Duration = Duration::from_secs(10);

/// How often a watch looks at the connection for a reconnect (a local read; the server
/// is asked about the stream only after a reconnect).
const RECONNECT_CHECK: Duration = Duration::from_millis(250);

/// Links and claims in the lattice's JetStream KV bucket.
pub struct JetStreamStore {
    client: async_nats::Client,
    context: jetstream::Context,
    kv: kv::Store,
    bucket: String,
    incarnations: Arc<Incarnations>,
}

impl std::fmt::Debug for JetStreamStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JetStreamStore")
            .field("bucket", &self.bucket)
            .finish_non_exhaustive()
    }
}

/// The configuration the bucket is created with (at open, and again if it goes away).
fn bucket_config(bucket: &str) -> kv::Config {
    kv::Config {
        bucket: bucket.to_string(),
        history: 1,
        storage: jetstream::stream::StorageType::File,
        num_replicas: 1,
        ..kv::Config::default()
    }
}

/// When a stream was created, as JetStream reports it: what tells two incarnations of a
/// stream of the same name apart.
fn created_at(info: &stream::Info) -> i128 {
    info.created.unix_timestamp_nanos()
}

/// What the server says about the bucket's stream.
enum Probe {
    /// It exists.
    Found(Box<stream::Info>),
    /// JetStream answered that there is no such stream.
    Missing,
    /// No clear answer (no connection, JetStream not ready, a timeout).
    Unknown(String),
}

async fn probe(context: &jetstream::Context, stream_name: &str) -> Probe {
    match context.get_stream(stream_name).await {
        Ok(stream) => Probe::Found(Box::new(stream.cached_info().clone())),
        Err(e) => match e.kind() {
            jetstream::context::GetStreamErrorKind::JetStream(js)
                if js.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND =>
            {
                Probe::Missing
            }
            _ => Probe::Unknown(e.to_string()),
        },
    }
}

/// The incarnations of the bucket's stream this store has met, and how their sequences
/// map to revisions.
#[derive(Debug)]
struct Incarnations {
    state: Mutex<Incarnation>,
    /// The generation, for watches to end when it changes.
    generation: watch::Sender<u64>,
}

#[derive(Debug, Default)]
struct Incarnation {
    /// The creation time of the stream now in use (`None` before the first look).
    created: Option<i128>,
    /// Added to its sequences to make revisions.
    base: u64,
    /// The highest revision handed out so far.
    high: u64,
    /// How many times the stream was found replaced.
    generation: u64,
}

impl Incarnations {
    fn new() -> Self {
        Self {
            state: Mutex::default(),
            generation: watch::channel(0).0,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Incarnation> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Notes the stream seen now; true when it is another one than before (the base then
    /// moves past every revision handed out, and the generation goes up).
    fn observe(&self, created: i128) -> bool {
        let mut state = self.lock();
        let replaced = state.created.is_some_and(|c| c != created);
        if replaced {
            state.base = state.high;
            state.generation += 1;
            self.generation.send_replace(state.generation);
        }
        state.created = Some(created);
        replaced
    }

    /// The stream in use and its base.
    fn current(&self) -> (Option<i128>, u64) {
        let state = self.lock();
        (state.created, state.base)
    }

    /// The revision of sequence `seq` of the stream with `base`, noted as handed out.
    fn revision(&self, seq: u64, base: u64) -> u64 {
        let revision = seq.saturating_add(base);
        let mut state = self.lock();
        state.high = state.high.max(revision);
        revision
    }

    fn high(&self) -> u64 {
        self.lock().high
    }

    fn generation(&self) -> u64 {
        self.lock().generation
    }
}

impl JetStreamStore {
    /// Opens the bucket of `lattice`, creating it (history 1, file storage) if missing.
    pub async fn open(client: async_nats::Client, lattice: &str) -> Result<Self, StoreError> {
        /// Tries at finding or creating the bucket before giving up (about 1.5 s in all).
        const OPEN_ATTEMPTS: u64 = 5;
        let context = jetstream::new(client.clone());
        let bucket = Subjects::for_lattice(lattice).kv_bucket();
        let bucket_error = |reason: String| StoreError::Bucket {
            bucket: bucket.clone(),
            reason,
        };
        // Hosts starting together race to create the bucket: the loser's create fails
        // ("already in use", or "error creating store" while the winner's store is still
        // being made), and the bucket is there a moment later.
        let mut attempt = 0;
        let kv = loop {
            attempt += 1;
            if let Ok(kv) = context.get_key_value(&bucket).await {
                break kv;
            }
            match context.create_key_value(bucket_config(&bucket)).await {
                Ok(kv) => break kv,
                Err(create) if attempt >= OPEN_ATTEMPTS => {
                    return Err(bucket_error(create.to_string()));
                }
                Err(create) => {
                    tracing::debug!(%bucket, error = %create, attempt, "bucket creation lost a race; looking again");
                    tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
                }
            }
        };
        let incarnations = Arc::new(Incarnations::new());
        incarnations.observe(created_at(kv.stream.cached_info()));
        Ok(Self {
            client,
            context,
            kv,
            bucket,
            incarnations,
        })
    }

    fn stream_name(&self) -> String {
        format!("KV_{}", self.bucket)
    }

    /// After an operation failed: whether one more try is worth it, because the bucket's
    /// stream was missing and has been created again, or another client replaced it
    /// meanwhile. False when the stream is the one in use (the failure was something
    /// else) or the server gives no clear answer.
    async fn heal(&self, op: &'static str, error: &str) -> bool {
        let created = match probe(&self.context, &self.stream_name()).await {
            Probe::Found(info) => created_at(&info),
            Probe::Missing => match self.create_bucket().await {
                Some(created) => {
                    tracing::warn!(bucket = %self.bucket, op, %error, "the lattice data bucket was gone (a nats-server without its data?); created it again");
                    created
                }
                None => return false,
            },
            Probe::Unknown(_) => return false,
        };
        self.incarnations.observe(created)
    }

    /// Creates the bucket again; the creation time of the stream now there.
    async fn create_bucket(&self) -> Option<i128> {
        match self
            .context
            .create_key_value(bucket_config(&self.bucket))
            .await
        {
            Ok(kv) => Some(created_at(kv.stream.cached_info())),
            // Another host may have created it at the same moment.
            Err(e) => match probe(&self.context, &self.stream_name()).await {
                Probe::Found(info) => Some(created_at(&info)),
                Probe::Missing | Probe::Unknown(_) => {
                    tracing::warn!(bucket = %self.bucket, error = %e, "cannot create the lattice data bucket again");
                    None
                }
            },
        }
    }

    /// The revision of a write the stream acknowledged with `seq`. A sequence below one
    /// already handed out is either a reordered acknowledgement or the first sign of a
    /// new stream (another host created it again); the server is asked which.
    async fn write_revision(&self, seq: u64) -> u64 {
        let (_, base) = self.incarnations.current();
        if seq.saturating_add(base) < self.incarnations.high()
            && let Probe::Found(info) = probe(&self.context, &self.stream_name()).await
            && self.incarnations.observe(created_at(&info))
        {
            let (_, base) = self.incarnations.current();
            return self.incarnations.revision(seq, base);
        }
        self.incarnations.revision(seq, base)
    }

    async fn put_json(&self, key: &str, value: Vec<u8>) -> Result<u64, StoreError> {
        let value = Bytes::from(value);
        let seq = match self.kv.put(key, value.clone()).await {
            Ok(seq) => seq,
            Err(e) => {
                if !self.heal("put", &e.to_string()).await {
                    return Err(StoreError::op("put", e));
                }
                self.kv
                    .put(key, value)
                    .await
                    .map_err(|e| StoreError::op("put", e))?
            }
        };
        Ok(self.write_revision(seq).await)
    }

    async fn delete_key(&self, key: &str) -> Result<u64, StoreError> {
        // Purge (what the 0.x host does) leaves one marker and drops older revisions.
        if let Err(e) = self.kv.purge(key).await {
            if !self.heal("delete", &e.to_string()).await {
                return Err(StoreError::op("delete", e));
            }
            self.kv
                .purge(key)
                .await
                .map_err(|e| StoreError::op("delete", e))?;
        }
        Ok(0)
    }

    /// Writes `key` only if the bucket has no message for it (no value, no delete marker).
    async fn create_json(&self, key: &str, value: Vec<u8>) -> Result<Option<u64>, StoreError> {
        match self.kv.update(key, Bytes::from(value), 0).await {
            Ok(seq) => Ok(Some(self.write_revision(seq).await)),
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => Ok(None),
            Err(e) => Err(StoreError::op("put", e)),
        }
    }

    /// One attempt at a watch: the stream's state, then a consumer from its start.
    async fn try_watch(&self) -> Result<(Snapshot, BoxStream<'static, StoreChange>), String> {
        let info = match probe(&self.context, &self.stream_name()).await {
            Probe::Found(info) => info,
            Probe::Missing => return Err("no stream found".to_string()),
            Probe::Unknown(e) => return Err(e),
        };
        let created = created_at(&info);
        self.incarnations.observe(created);
        let (_, base) = self.incarnations.current();
        // Subscribed before the consumer exists: a replacement found from now on ends it.
        let generation = self.incarnations.generation.subscribe();
        let last = if info.state.messages == 0 {
            0
        } else {
            info.state.last_sequence
        };
        let watch = self
            .kv
            .watch_all_from_revision(1)
            .await
            .map_err(|e| e.to_string())?;
        // A watcher error ends the stream; the host then watches again.
        let mut entries = watch
            .take_while(|r| std::future::ready(r.is_ok()))
            .filter_map(|r| std::future::ready(r.ok()))
            .boxed();
        let mut fold = Fold::default();
        if last > 0 {
            let incarnations = &self.incarnations;
            let replay = async {
                while let Some(entry) = entries.next().await {
                    let seq = entry.revision;
                    if let Some(change) = decode(&entry, incarnations.revision(seq, base)) {
                        fold.apply(change);
                    }
                    if seq >= last {
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
        let mut tick = tokio::time::interval(RECONNECT_CHECK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let follower = Follower {
            entries,
            incarnations: self.incarnations.clone(),
            base,
            created,
            generation,
            connects: self.client.statistics().connects.load(Ordering::Relaxed),
            client: self.client.clone(),
            context: self.context.clone(),
            stream_name: self.stream_name(),
            bucket: self.bucket.clone(),
            check: false,
            tick,
        };
        let changes = futures_util::stream::unfold(follower, |mut follower| async move {
            let change = follower.next().await?;
            Some((change, follower))
        });
        Ok((snapshot, changes.boxed()))
    }
}

/// The changes of one watch after its snapshot, until the watch's consumer fails or the
/// stream it follows is gone or replaced.
///
/// The consumer alone would not end: after a reconnect, async-nats recreates it from the
/// last sequence it delivered, forever if the stream is gone, and on a stream created
/// again it would skip that stream's first messages. So after every reconnect the
/// follower asks the server whether the stream is still the one it began with.
struct Follower {
    entries: BoxStream<'static, kv::Entry>,
    incarnations: Arc<Incarnations>,
    base: u64,
    created: i128,
    generation: watch::Receiver<u64>,
    client: async_nats::Client,
    connects: u64,
    context: jetstream::Context,
    stream_name: String,
    bucket: String,
    /// A reconnect happened and the stream has not been confirmed since.
    check: bool,
    tick: tokio::time::Interval,
}

impl Follower {
    async fn next(&mut self) -> Option<StoreChange> {
        loop {
            tokio::select! {
                entry = self.entries.next() => {
                    let entry = entry?;
                    if self.generation.has_changed().unwrap_or(true) {
                        // Its revisions would be counted from the old base.
                        return None;
                    }
                    let revision = self.incarnations.revision(entry.revision, self.base);
                    if let Some(change) = decode(&entry, revision) {
                        return Some(change);
                    }
                }
                // This store met a new incarnation of the stream (it created it again).
                _ = self.generation.changed() => return None,
                _ = self.tick.tick() => {
                    let connects = self.client.statistics().connects.load(Ordering::Relaxed);
                    if connects != self.connects {
                        self.connects = connects;
                        self.check = true;
                    }
                    if self.check {
                        match probe(&self.context, &self.stream_name).await {
                            Probe::Found(info) if created_at(&info) == self.created => {
                                self.check = false;
                            }
                            Probe::Found(_) | Probe::Missing => {
                                tracing::warn!(bucket = %self.bucket, "the lattice data bucket is gone or was replaced; watching it again");
                                return None;
                            }
                            // JetStream may not be ready yet after a restart: ask again.
                            Probe::Unknown(_) => {}
                        }
                    }
                }
            }
        }
    }
}

/// Turns a KV entry into a store change with `revision`; `None` for keys and values we
/// do not use.
fn decode(entry: &kv::Entry, revision: u64) -> Option<StoreChange> {
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

fn link_json(link: &LinkDefinition) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(link).map_err(|e| StoreError::Encoding {
        key: link.kv_key(),
        reason: e.to_string(),
    })
}

#[async_trait]
impl LatticeStore for JetStreamStore {
    async fn put_link(&self, link: &LinkDefinition) -> Result<u64, StoreError> {
        self.put_json(&linkdef_key(&link.id), link_json(link)?)
            .await
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

    async fn restore_link(&self, link: &LinkDefinition) -> Result<Option<u64>, StoreError> {
        self.create_json(&linkdef_key(&link.id), link_json(link)?)
            .await
    }

    fn generation(&self) -> u64 {
        self.incarnations.generation()
    }

    async fn watch(&self) -> Result<(Snapshot, BoxStream<'static, StoreChange>), StoreError> {
        match self.try_watch().await {
            Ok(watch) => Ok(watch),
            Err(e) if self.heal("watch", &e).await => self
                .try_watch()
                .await
                .map_err(|e| StoreError::op("watch", e)),
            Err(e) => Err(StoreError::op("watch", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revisions_keep_increasing_across_a_replaced_stream() {
        let incarnations = Incarnations::new();
        let changes = incarnations.generation.subscribe();
        assert!(!incarnations.observe(100), "the first stream seen");
        assert_eq!(incarnations.revision(5, 0), 5);
        assert_eq!(incarnations.revision(20, 0), 20);
        assert!(!incarnations.observe(100), "the same stream");
        assert_eq!(incarnations.generation(), 0);
        assert!(!changes.has_changed().unwrap());

        // A stream created again numbers from 1: its revisions start past 20.
        assert!(incarnations.observe(200));
        assert_eq!(incarnations.generation(), 1);
        assert!(changes.has_changed().unwrap());
        let (created, base) = incarnations.current();
        assert_eq!(created, Some(200));
        assert_eq!(incarnations.revision(1, base), 21);
        assert_eq!(incarnations.revision(2, base), 22);
        // And again.
        assert!(incarnations.observe(300));
        let (_, base) = incarnations.current();
        assert_eq!(incarnations.revision(1, base), 23);
        assert_eq!(incarnations.generation(), 2);
    }
}
