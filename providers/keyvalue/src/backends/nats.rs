//! The NATS backend: a JetStream key-value bucket (created with history 1 if missing).
//!
//! - **Atomicity.** Modifying operations are optimistic: read the entry and its revision,
//!   apply the operation, write with `update(key, value, revision)`, and start over when
//!   another writer got there first. Writers in this process first queue on a per-key lock
//!   stripe, so a burst of `Add`s from one provider costs one round trip pair each instead
//!   of a storm of conflicts; the compare-and-swap still guards against other processes.
//! - **Lists and sets** are stored as one encoded value under the key (see [`crate::model`]),
//!   updated with the same compare-and-swap. A value is limited by the server's max payload
//!   (1 MiB by default), so this suits lists and sets of modest size.
//! - **Expiry.** JetStream KV only has a bucket-wide `max_age`, and per-message TTLs (server
//!   2.11+) are dropped by a later compare-and-swap update unless every writer repeats them.
//!   So the absolute expiry time (wall clock, Unix milliseconds) is stored with the value,
//!   and an expired value reads as absent everywhere, exactly at its deadline. A read that
//!   finds an expired value purges it in the background (guarded by its revision); one that
//!   is never read again stays in the bucket until it is overwritten. Hosts sharing a bucket
//!   should keep their clocks in sync (NTP), since the deadline is wall-clock time.
//! - **Keys.** NATS keys allow only `A-Za-z0-9-_/=.` with no empty tokens, so other
//!   characters (and `.` and `=`) are escaped as `=XX` (hex of each UTF-8 byte); the empty key
//!   is stored as `=`. Keys made only of `A-Za-z0-9-_/` are stored as they are.
//! - **Multi-key operations.** JetStream KV has no multi-key reads or transactions, so
//!   `GetMany`, `SetUnion` and `SetIntersection` read their keys concurrently (at most
//!   [`CONCURRENCY`] requests in flight: a batch costs about one round trip, not one per key)
//!   and are not a snapshot across keys. `SetMany` and `DelMany` write concurrently the same
//!   way (the last write of a key given twice is the one made); they are not atomic, and a
//!   failure part way may leave some keys written or deleted.

use std::hash::{BuildHasher, RandomState};
use std::time::Duration;

use async_nats::jetstream::{self, kv};
use async_trait::async_trait;
use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use tracing::{debug, warn};

use crate::backend::SetItem;
use crate::config::NatsConfig;
use crate::error::KvError;
use crate::model::{
    Effect, EntryStore, Outcome, Stored, Update, Value, distinct, expiry_from_now, last_writes,
    now_ms,
};

/// Compare-and-swap attempts before giving up with [`KvError::Contention`].
const MAX_ATTEMPTS: u32 = 64;
/// Number of lock stripes for in-process writers.
const STRIPES: usize = 64;
/// Requests one multi-key operation keeps in flight: enough to hide the round trip for a
/// full batch, few enough not to flood the server or the connection's buffers.
pub const CONCURRENCY: usize = 64;

/// A store in a JetStream KV bucket.
pub struct NatsStore {
    kv: kv::Store,
    stripes: Vec<tokio::sync::Mutex<()>>,
    hasher: RandomState,
}

/// Maps a NATS client error: time-outs (which is how requests fail while the server is
/// down or the client reconnects) are [`KvError::Unavailable`], the rest backend errors.
fn nats_err(timed_out: bool, e: impl std::fmt::Display) -> KvError {
    let reason = e.to_string();
    if timed_out || reason.contains("timed out") || reason.contains("no responders") {
        KvError::Unavailable {
            backend: "nats",
            reason,
        }
    } else {
        KvError::Backend {
            backend: "nats",
            reason,
        }
    }
}

fn entry_err(e: kv::EntryError) -> KvError {
    nats_err(e.kind() == kv::EntryErrorKind::TimedOut, e)
}

fn update_err(e: kv::UpdateError) -> KvError {
    nats_err(e.kind() == kv::UpdateErrorKind::TimedOut, e)
}

fn open_err(reason: String) -> KvError {
    KvError::Open {
        backend: "nats",
        reason,
    }
}

/// The NATS key for a store key (see the module docs).
pub fn encode_key(key: &str) -> String {
    if key.is_empty() {
        return "=".to_string();
    }
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'/' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("={b:02X}"));
        }
    }
    out
}

impl NatsStore {
    /// Connects to the servers in `config.url` and opens (or creates) `config.bucket`.
    pub async fn open(config: &NatsConfig) -> Result<Self, KvError> {
        let urls: Vec<&str> = config.url.split(',').map(str::trim).collect();
        let mut options = async_nats::ConnectOptions::new();
        if let Some(path) = &config.creds {
            options = options.credentials_file(path).await.map_err(|e| {
                open_err(format!(
                    "cannot read the credentials file {} (the `creds` link value): {e}",
                    path.display()
                ))
            })?;
        }
        if let Some(ca) = &config.tls_ca {
            options = options.add_root_certificates(ca.clone());
        }
        let hint = if config.creds.is_some() {
            "check the `url` and `creds` link values and that nats-server is running"
        } else {
            "check the `url` link value and that nats-server is running (a server that requires credentials needs a `creds` link value, e.g. the keyvalue.creds of `wash lattice init`)"
        };
        let client = options
            .connection_timeout(config.connect_timeout)
            .connect(urls.as_slice())
            .await
            .map_err(|e| {
                open_err(format!(
                    "cannot connect to NATS at {}: {e}; {hint}",
                    config.url
                ))
            })?;
        let js = jetstream::new(client);
        let kv = match js.get_key_value(config.bucket.as_str()).await {
            Ok(kv) => kv,
            Err(get_err) => {
                debug!(bucket = %config.bucket, error = %get_err, "bucket not found, creating it");
                let created = js
                    .create_key_value(kv::Config {
                        bucket: config.bucket.clone(),
                        description: "nimbus wasmcloud:keyvalue store".to_string(),
                        history: 1,
                        ..Default::default()
                    })
                    .await;
                match created {
                    Ok(kv) => kv,
                    // Another provider may have created it with another configuration.
                    Err(create_err) => js
                        .get_key_value(config.bucket.as_str())
                        .await
                        .map_err(|_| {
                            open_err(format!(
                                "cannot open or create the key-value bucket {:?}: {create_err}; check that JetStream is enabled on the server (nats-server -js)",
                                config.bucket
                            ))
                        })?,
                }
            }
        };
        Ok(Self {
            kv,
            stripes: (0..STRIPES).map(|_| tokio::sync::Mutex::new(())).collect(),
            hasher: RandomState::new(),
        })
    }

    fn stripe(&self, key: &str) -> &tokio::sync::Mutex<()> {
        let i = usize::try_from(self.hasher.hash_one(key) % STRIPES as u64).unwrap_or(0);
        &self.stripes[i]
    }

    /// The entry at `key`: its revision (0 when the key never existed) and its live value.
    async fn read(&self, key: &str, nkey: &str) -> Result<(u64, Option<Stored>), KvError> {
        let Some(entry) = self.kv.entry(nkey).await.map_err(entry_err)? else {
            return Ok((0, None));
        };
        if entry.operation != kv::Operation::Put {
            return Ok((entry.revision, None));
        }
        let stored = Stored::decode(key, &entry.value)?;
        if stored.is_expired(now_ms()) {
            self.purge_expired(nkey, entry.revision);
            return Ok((entry.revision, None));
        }
        Ok((entry.revision, Some(stored)))
    }

    /// Purges an expired value in the background unless it was rewritten meanwhile.
    fn purge_expired(&self, nkey: &str, revision: u64) {
        let kv = self.kv.clone();
        let nkey = nkey.to_string();
        tokio::spawn(async move {
            if let Err(e) = kv.purge_expect_revision(&nkey, Some(revision)).await {
                debug!(key = %nkey, error = %e, "expired value not purged (rewritten meanwhile?)");
            }
        });
    }

    /// A short randomised pause between two compare-and-swap attempts.
    async fn back_off(&self, key: &str, attempt: u32) {
        let cap = 1u64 << attempt.min(6);
        let jitter = self.hasher.hash_one((key, attempt, now_ms())) % cap;
        tokio::time::sleep(Duration::from_millis(jitter + 1)).await;
    }
}

/// Awaits `futures` with at most [`CONCURRENCY`] of them in flight, and returns their
/// results in the order given; the first error ends it (the futures not yet finished are
/// dropped, so their requests may or may not have reached the server).
async fn windowed<R, F: Future<Output = Result<R, KvError>>>(
    futures: Vec<F>,
) -> Result<Vec<R>, KvError> {
    let mut out = Vec::with_capacity(futures.len());
    let mut waiting = futures.into_iter();
    let mut running: FuturesOrdered<F> = waiting.by_ref().take(CONCURRENCY).collect();
    while let Some(result) = running.next().await {
        out.push(result?);
        if let Some(next) = waiting.next() {
            running.push_back(next);
        }
    }
    Ok(out)
}

fn is_conflict(e: &kv::UpdateError) -> bool {
    e.kind() == kv::UpdateErrorKind::WrongLastRevision
}

#[async_trait]
impl EntryStore for NatsStore {
    fn kind(&self) -> &'static str {
        "nats"
    }

    async fn load(&self, key: &str) -> Result<Option<Value>, KvError> {
        let (_, stored) = self.read(key, &encode_key(key)).await?;
        Ok(stored.map(|s| s.value))
    }

    async fn load_many(&self, keys: &[String]) -> Result<Vec<Option<Value>>, KvError> {
        windowed(keys.iter().map(|key| self.load(key)).collect()).await
    }

    async fn store(
        &self,
        key: &str,
        value: Value,
        expires: Option<Duration>,
    ) -> Result<(), KvError> {
        let bytes = Stored {
            value,
            expires_at_ms: expiry_from_now(expires),
        }
        .encode("nats")?;
        self.kv
            .put(encode_key(key), bytes.into())
            .await
            .map_err(|e| nats_err(false, e))?;
        Ok(())
    }

    async fn store_many(&self, items: &[SetItem]) -> Result<(), KvError> {
        // Concurrent puts do not keep their order, so only the last write of each key is
        // made; encode them all first so a bad value writes nothing.
        let writes = last_writes(items)
            .into_iter()
            .map(|item| {
                let bytes = Stored {
                    value: Value::Str(item.value.clone()),
                    expires_at_ms: expiry_from_now(item.expires),
                }
                .encode("nats")?;
                Ok((encode_key(&item.key), bytes))
            })
            .collect::<Result<Vec<_>, KvError>>()?;
        let puts = writes
            .into_iter()
            .map(|(nkey, bytes)| {
                let kv = self.kv.clone();
                async move {
                    kv.put(nkey, bytes.into())
                        .await
                        .map(drop)
                        .map_err(|e| nats_err(false, e))
                }
            })
            .collect();
        windowed(puts).await.map(drop)
    }

    async fn remove_many(&self, keys: &[String]) -> Result<u64, KvError> {
        // Each key with `remove`'s compare-and-swap; a key given twice is removed once.
        let removed =
            windowed(distinct(keys).into_iter().map(|k| self.remove(k)).collect()).await?;
        Ok(removed.into_iter().filter(|r| *r).count() as u64)
    }

    async fn remove(&self, key: &str) -> Result<bool, KvError> {
        let nkey = encode_key(key);
        let _stripe = self.stripe(key).lock().await;
        for attempt in 0..MAX_ATTEMPTS {
            let (revision, live) = self.read(key, &nkey).await?;
            if live.is_none() {
                return Ok(false);
            }
            match self.kv.delete_expect_revision(&nkey, Some(revision)).await {
                Ok(()) => return Ok(true),
                Err(e) if is_conflict(&e) => self.back_off(key, attempt).await,
                Err(e) => return Err(update_err(e)),
            }
        }
        Err(KvError::Contention {
            key: key.to_string(),
            attempts: MAX_ATTEMPTS,
        })
    }

    async fn update(&self, key: &str, update: &Update) -> Result<Outcome, KvError> {
        let nkey = encode_key(key);
        let _stripe = self.stripe(key).lock().await;
        for attempt in 0..MAX_ATTEMPTS {
            let (revision, live) = self.read(key, &nkey).await?;
            let (effect, outcome) = update.apply(key, live.as_ref().map(|s| &s.value))?;
            let written = match effect {
                Effect::Unchanged => return Ok(outcome),
                Effect::Put(value) => {
                    let bytes = Stored {
                        value,
                        expires_at_ms: live.and_then(|s| s.expires_at_ms),
                    }
                    .encode("nats")?;
                    self.kv
                        .update(&nkey, bytes.into(), revision)
                        .await
                        .map(drop)
                }
                Effect::Delete => self.kv.delete_expect_revision(&nkey, Some(revision)).await,
            };
            match written {
                Ok(()) => return Ok(outcome),
                Err(e) if is_conflict(&e) => {
                    if attempt > 8 {
                        warn!(key, attempt, "heavy write contention on a NATS key");
                    }
                    self.back_off(key, attempt).await;
                }
                Err(e) => return Err(update_err(e)),
            }
        }
        Err(KvError::Contention {
            key: key.to_string(),
            attempts: MAX_ATTEMPTS,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::encode_key;

    #[test]
    fn keys_are_escaped_injectively_into_the_nats_alphabet() {
        assert_eq!(encode_key("counter"), "counter");
        assert_eq!(encode_key("a/b-c_D9"), "a/b-c_D9");
        assert_eq!(encode_key(""), "=");
        assert_eq!(encode_key("a.b"), "a=2Eb");
        assert_eq!(encode_key("a=2Eb"), "a=3D2Eb");
        assert_eq!(encode_key("visits:home page"), "visits=3Ahome=20page");
        assert_eq!(encode_key("é"), "=C3=A9");
        assert_eq!(encode_key("."), "=2E");
    }
}
