//! The embedded file backend: one [redb] database (`keyvalue.redb`) in the link's `path`
//! directory. redb commits are copy-on-write with checksummed roots and fsync on commit, so
//! the store survives a crash or a kill at any point with every committed operation intact.
//!
//! Every modifying operation is one write transaction (read, apply, write, commit), which
//! makes `Add` and the list and set operations atomic. The batched operations are one
//! transaction each as well: `GetMany` one read transaction (a consistent snapshot),
//! `SetMany` and `DelMany` one write transaction and one fsync for the whole batch. Writers queue on an async mutex before
//! entering the blocking pool, so a burst of writes occupies one blocking thread, not hundreds;
//! reads run concurrently in read transactions. Values use the encoding in [`crate::model`];
//! expired keys read as absent, are overwritten by later writes and are swept when the
//! database is opened.
//!
//! redb locks its file, so one process owns a directory. Within a process, links naming the
//! same directory share one open database.
//!
//! # A write whose caller gave up is not applied
//!
//! A write can wait: behind other writers on the writer queue, for a blocking thread, for
//! redb's own write lock. If its caller times out meanwhile, the caller has been told the
//! call failed; committing the write anyway would make that error a lie, and a retry of an
//! `Add` would count twice. So every write commits only while its caller still waits
//! (`CallerWaiting`), checked once the transaction is ready, just before the commit:
//!
//! - in process, the host drops an invocation's future when its RPC timeout passes: a write
//!   whose future is gone (while queued, or while its blocking task waits) is rolled back;
//! - out of process, the SDK's runner gives each invocation a deadline
//!   ([`nimbus_provider_sdk::invocation_deadline`]: the caller's RPC timeout from the moment
//!   the invocation was taken, less an allowance for the answer's way back): a write still
//!   uncommitted at the deadline is rolled back and answered with [`KvError::NotApplied`].
//!
//! Such a write is counted ([`FileStore::abandoned_writes`]) and logged. Deadlines rather
//! than idempotency keys, because a retry is a new invocation with a new id (an HTTP
//! client retrying a request, an actor calling again): de-duplicating by invocation id
//! would not stop it counting twice, while not applying what the caller was told had failed
//! does. What is left: a commit that starts before the deadline and whose answer arrives
//! after the caller's timeout (the commit's fsync plus the way back exceeding the
//! allowance), and a remote caller whose own RPC timeout is shorter than the timeout of the
//! host that started the provider (the deadline follows the latter).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use redb::{Database, DatabaseError, ReadableDatabase, TableDefinition, WriteTransaction};
use tracing::{debug, warn};

use crate::backend::SetItem;
use crate::error::KvError;
use crate::model::{Effect, EntryStore, Outcome, Stored, Update, Value, expiry_from_now, now_ms};

/// The database file's name inside the configured directory.
pub const FILE_NAME: &str = "keyvalue.redb";

const TABLE: TableDefinition<&str, &[u8]> = TableDefinition::new("keyvalue");

/// Databases open in this process, by canonical directory.
static OPEN: LazyLock<Mutex<HashMap<PathBuf, Weak<FileDb>>>> = LazyLock::new(Default::default);

struct FileDb {
    db: Database,
    path: PathBuf,
    /// Serialises writers before they take a blocking thread (redb would serialise them
    /// anyway, inside `begin_write`, with the thread held).
    writer: tokio::sync::Mutex<()>,
    /// Writes rolled back because their caller had given up (`CallerWaiting`).
    abandoned: AtomicU64,
}

/// Whether the caller of a write still waits for it; made when the write is asked for, and
/// checked by its blocking task just before the commit. See the module documentation.
struct CallerWaiting {
    /// Alive as long as the write's future: dropped with it when the caller gives up.
    future: Weak<()>,
    /// When the caller gives up, if the SDK's runner knows it.
    deadline: Option<Instant>,
}

impl CallerWaiting {
    /// The token for a write asked for now; the returned `Arc` must live in the write's
    /// future (held across its await points).
    fn now() -> (Arc<()>, CallerWaiting) {
        let alive = Arc::new(());
        let waiting = CallerWaiting {
            future: Arc::downgrade(&alive),
            deadline: nimbus_provider_sdk::invocation_deadline(),
        };
        (alive, waiting)
    }

    /// `None` while the caller still waits; otherwise why it does not.
    fn gone(&self) -> Option<&'static str> {
        if self.future.strong_count() == 0 {
            Some("its caller stopped waiting (the call timed out) before it could commit")
        } else if self.deadline.is_some_and(|d| Instant::now() >= d) {
            Some("its caller's deadline passed before it could commit")
        } else {
            None
        }
    }
}

impl FileDb {
    /// Commits `txn` if the caller still waits; rolls it back and reports
    /// [`KvError::NotApplied`] otherwise.
    fn commit_if_wanted(
        &self,
        txn: WriteTransaction,
        waiting: &CallerWaiting,
        key: &str,
    ) -> Result<(), KvError> {
        if let Some(reason) = waiting.gone() {
            txn.abort().map_err(db_err)?;
            self.abandoned.fetch_add(1, Ordering::Relaxed);
            warn!(path = %self.path.display(), key, reason, "write not applied");
            return Err(KvError::NotApplied {
                key: key.to_string(),
                reason: reason.to_string(),
            });
        }
        txn.commit().map_err(db_err)
    }

    /// [`KvError::NotApplied`] if the caller no longer waits (checked before a write takes
    /// a blocking thread, after it waited its turn).
    fn still_wanted(&self, waiting: &CallerWaiting, key: &str) -> Result<(), KvError> {
        match waiting.gone() {
            None => Ok(()),
            Some(reason) => {
                self.abandoned.fetch_add(1, Ordering::Relaxed);
                warn!(path = %self.path.display(), key, reason, "write not applied");
                Err(KvError::NotApplied {
                    key: key.to_string(),
                    reason: reason.to_string(),
                })
            }
        }
    }
}

impl Drop for FileDb {
    fn drop(&mut self) {
        debug!(path = %self.path.display(), "closing key-value database");
    }
}

/// A store in a redb file; cheap to clone.
#[derive(Clone)]
pub struct FileStore {
    db: Arc<FileDb>,
}

fn db_err(e: impl Into<redb::Error>) -> KvError {
    KvError::Backend {
        backend: "file",
        reason: e.into().to_string(),
    }
}

fn open_err(reason: String) -> KvError {
    KvError::Open {
        backend: "file",
        reason,
    }
}

/// Runs blocking database work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, KvError> + Send + 'static,
) -> Result<T, KvError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| KvError::Backend {
            backend: "file",
            reason: format!("database task failed: {e}"),
        })?
}

impl FileStore {
    /// Opens (creating if needed) the store in directory `dir`, or joins the database
    /// another link in this process already opened there.
    pub async fn open(dir: &Path) -> Result<Self, KvError> {
        let dir = dir.to_path_buf();
        blocking(move || Self::open_blocking(&dir)).await
    }

    fn open_blocking(dir: &Path) -> Result<Self, KvError> {
        std::fs::create_dir_all(dir).map_err(|e| {
            open_err(format!(
                "cannot create directory {}: {e}; check the `path` link value and its permissions",
                dir.display()
            ))
        })?;
        let canonical = dir
            .canonicalize()
            .map_err(|e| open_err(format!("cannot resolve {}: {e}", dir.display())))?;
        let mut open = OPEN.lock().unwrap_or_else(PoisonError::into_inner);
        open.retain(|_, db| db.strong_count() > 0);
        if let Some(db) = open.get(&canonical).and_then(Weak::upgrade) {
            return Ok(Self { db });
        }
        let path = canonical.join(FILE_NAME);
        let db = create_database(&path)?;
        sweep_expired(&db)?;
        let db = Arc::new(FileDb {
            db,
            path,
            writer: tokio::sync::Mutex::new(()),
            abandoned: AtomicU64::new(0),
        });
        open.insert(canonical, Arc::downgrade(&db));
        debug!(path = %db.path.display(), "opened key-value database");
        Ok(Self { db })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.db.path
    }

    /// Writes to this database (by any link sharing it) that were rolled back, not
    /// applied, because their caller had given up waiting (see the module documentation).
    pub fn abandoned_writes(&self) -> u64 {
        self.db.abandoned.load(Ordering::Relaxed)
    }
}

fn create_database(path: &Path) -> Result<Database, KvError> {
    // A database this process just closed may still hold its lock for a moment while the
    // last handle drops on another thread; give it a few tries before blaming another process.
    let mut attempts = 0;
    loop {
        match Database::create(path) {
            Ok(db) => return Ok(db),
            Err(DatabaseError::DatabaseAlreadyOpen) if attempts < 10 => {
                attempts += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(DatabaseError::DatabaseAlreadyOpen) => {
                return Err(open_err(format!(
                    "{} is in use by another process; a file store belongs to one process, so give each its own `path` or share data with backend=redis or backend=nats",
                    path.display()
                )));
            }
            Err(e) => {
                return Err(open_err(format!("cannot open {}: {e}", path.display())));
            }
        }
    }
}

/// Creates the table if needed and removes keys whose expiry has passed.
fn sweep_expired(db: &Database) -> Result<(), KvError> {
    let now = now_ms();
    let txn = db.begin_write().map_err(db_err)?;
    {
        let mut table = txn.open_table(TABLE).map_err(db_err)?;
        table
            .retain(|key, bytes| {
                // Keep what cannot be decoded: it is reported when read, never lost silently.
                Stored::decode(key, bytes).map_or(true, |s| !s.is_expired(now))
            })
            .map_err(db_err)?;
    }
    txn.commit().map_err(db_err)
}

/// Decodes the live value at `key` in `table`.
fn live_value(
    table: &impl redb::ReadableTable<&'static str, &'static [u8]>,
    key: &str,
    now: u64,
) -> Result<Option<Stored>, KvError> {
    let Some(guard) = table.get(key).map_err(db_err)? else {
        return Ok(None);
    };
    let stored = Stored::decode(key, guard.value())?;
    Ok((!stored.is_expired(now)).then_some(stored))
}

#[async_trait]
impl EntryStore for FileStore {
    fn kind(&self) -> &'static str {
        "file"
    }

    async fn load(&self, key: &str) -> Result<Option<Value>, KvError> {
        let db = self.db.clone();
        let key = key.to_string();
        blocking(move || {
            let txn = db.db.begin_read().map_err(db_err)?;
            let table = txn.open_table(TABLE).map_err(db_err)?;
            Ok(live_value(&table, &key, now_ms())?.map(|s| s.value))
        })
        .await
    }

    async fn load_many(&self, keys: &[String]) -> Result<Vec<Option<Value>>, KvError> {
        let db = self.db.clone();
        let keys = keys.to_vec();
        blocking(move || {
            let txn = db.db.begin_read().map_err(db_err)?;
            let table = txn.open_table(TABLE).map_err(db_err)?;
            let now = now_ms();
            keys.iter()
                .map(|k| Ok(live_value(&table, k, now)?.map(|s| s.value)))
                .collect()
        })
        .await
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
        .encode("file")?;
        let db = self.db.clone();
        let key = key.to_string();
        let (_alive, waiting) = CallerWaiting::now();
        let _writer = self.db.writer.lock().await;
        self.db.still_wanted(&waiting, &key)?;
        blocking(move || {
            let txn = db.db.begin_write().map_err(db_err)?;
            {
                let mut table = txn.open_table(TABLE).map_err(db_err)?;
                table
                    .insert(key.as_str(), bytes.as_slice())
                    .map_err(db_err)?;
            }
            db.commit_if_wanted(txn, &waiting, &key)
        })
        .await
    }

    async fn remove(&self, key: &str) -> Result<bool, KvError> {
        let db = self.db.clone();
        let key = key.to_string();
        let (_alive, waiting) = CallerWaiting::now();
        let _writer = self.db.writer.lock().await;
        self.db.still_wanted(&waiting, &key)?;
        blocking(move || {
            let txn = db.db.begin_write().map_err(db_err)?;
            let existed = {
                let mut table = txn.open_table(TABLE).map_err(db_err)?;
                let old = table.remove(key.as_str()).map_err(db_err)?;
                old.is_some_and(|guard| {
                    // Undecodable bytes were there all the same: report them as existing.
                    Stored::decode(&key, guard.value()).map_or(true, |s| !s.is_expired(now_ms()))
                })
            };
            db.commit_if_wanted(txn, &waiting, &key)?;
            Ok(existed)
        })
        .await
    }

    async fn store_many(&self, items: &[SetItem]) -> Result<(), KvError> {
        // Encode everything before the transaction: an encoding failure writes nothing.
        let rows = items
            .iter()
            .map(|item| {
                let bytes = Stored {
                    value: Value::Str(item.value.clone()),
                    expires_at_ms: expiry_from_now(item.expires),
                }
                .encode("file")?;
                Ok((item.key.clone(), bytes))
            })
            .collect::<Result<Vec<_>, KvError>>()?;
        let db = self.db.clone();
        let first = items.first().map(|i| i.key.clone()).unwrap_or_default();
        let (_alive, waiting) = CallerWaiting::now();
        let _writer = self.db.writer.lock().await;
        self.db.still_wanted(&waiting, &first)?;
        blocking(move || {
            let txn = db.db.begin_write().map_err(db_err)?;
            {
                let mut table = txn.open_table(TABLE).map_err(db_err)?;
                for (key, bytes) in &rows {
                    table
                        .insert(key.as_str(), bytes.as_slice())
                        .map_err(db_err)?;
                }
            }
            db.commit_if_wanted(txn, &waiting, &first)
        })
        .await
    }

    async fn remove_many(&self, keys: &[String]) -> Result<u64, KvError> {
        let db = self.db.clone();
        let keys = keys.to_vec();
        let first = keys.first().cloned().unwrap_or_default();
        let (_alive, waiting) = CallerWaiting::now();
        let _writer = self.db.writer.lock().await;
        self.db.still_wanted(&waiting, &first)?;
        blocking(move || {
            let txn = db.db.begin_write().map_err(db_err)?;
            let existed = {
                let mut table = txn.open_table(TABLE).map_err(db_err)?;
                let now = now_ms();
                let mut existed = 0u64;
                for key in &keys {
                    // A key given twice is gone the second time, so it counts once.
                    let old = table.remove(key.as_str()).map_err(db_err)?;
                    let live = old.is_some_and(|guard| {
                        // Undecodable bytes were there all the same, as in `remove`.
                        Stored::decode(key, guard.value()).map_or(true, |s| !s.is_expired(now))
                    });
                    existed += u64::from(live);
                }
                existed
            };
            db.commit_if_wanted(txn, &waiting, &first)?;
            Ok(existed)
        })
        .await
    }

    async fn update(&self, key: &str, update: &Update) -> Result<Outcome, KvError> {
        let db = self.db.clone();
        let key = key.to_string();
        let update = update.clone();
        let (_alive, waiting) = CallerWaiting::now();
        let _writer = self.db.writer.lock().await;
        self.db.still_wanted(&waiting, &key)?;
        blocking(move || {
            let txn = db.db.begin_write().map_err(db_err)?;
            let (outcome, changed) = {
                let mut table = txn.open_table(TABLE).map_err(db_err)?;
                let live = live_value(&table, &key, now_ms())?;
                let (effect, outcome) = update.apply(&key, live.as_ref().map(|s| &s.value))?;
                let changed = match effect {
                    Effect::Unchanged => false,
                    Effect::Put(value) => {
                        let bytes = Stored {
                            value,
                            expires_at_ms: live.and_then(|s| s.expires_at_ms),
                        }
                        .encode("file")?;
                        table
                            .insert(key.as_str(), bytes.as_slice())
                            .map_err(db_err)?;
                        true
                    }
                    Effect::Delete => {
                        table.remove(key.as_str()).map_err(db_err)?;
                        true
                    }
                };
                (outcome, changed)
            };
            if changed {
                db.commit_if_wanted(txn, &waiting, &key)?;
            } else {
                txn.abort().map_err(db_err)?;
            }
            Ok(outcome)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::mpsc;

    use super::*;
    use crate::backend::KvBackend;
    use crate::model::Modeled;

    /// Holds redb's write lock on `store` from another thread until the returned sender is
    /// used (or dropped): every write of the store waits in `begin_write` meanwhile.
    async fn hold_write_lock(store: &FileStore) -> (mpsc::Sender<()>, std::thread::JoinHandle<()>) {
        let (release, released) = mpsc::channel::<()>();
        let (held, is_held) = tokio::sync::oneshot::channel();
        let db = store.db.clone();
        let holder = std::thread::spawn(move || {
            let txn = db.db.begin_write().unwrap();
            held.send(()).unwrap();
            let _ = released.recv();
            txn.abort().unwrap();
        });
        is_held.await.unwrap();
        (release, holder)
    }

    /// Waits (at most 30 s) until `store` has rolled back `n` writes.
    async fn wait_abandoned(store: &FileStore, n: u64) {
        let start = Instant::now();
        while store.abandoned_writes() < n {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "{} writes abandoned, expected {n}",
                store.abandoned_writes()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// In process: the host drops the invocation's future at its timeout. The `Add` was
    /// already on a blocking thread, waiting for the database; it must roll back.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_add_whose_caller_timed_out_is_not_applied_and_its_retry_counts_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::open(dir.path()).await.unwrap();
        let kv = Modeled(store.clone());
        assert_eq!(kv.add("hits", 1).await.unwrap(), 1);

        let (release, holder) = hold_write_lock(&store).await;
        // The first poll queues the write on a blocking thread; then the caller gives up.
        let timed_out = tokio::time::timeout(Duration::from_millis(200), kv.add("hits", 1)).await;
        assert!(
            timed_out.is_err(),
            "the Add finished while the database was locked"
        );
        release.send(()).unwrap();
        holder.join().unwrap();
        wait_abandoned(&store, 1).await;

        assert_eq!(kv.get("hits").await.unwrap().as_deref(), Some("1"));
        // The caller retries: counted once.
        assert_eq!(kv.add("hits", 1).await.unwrap(), 2);
        assert_eq!(store.abandoned_writes(), 1);
    }

    /// Out of process: the runner's deadline passes while the `Add` waits for the database;
    /// it rolls back and says so.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_add_still_waiting_at_its_invocation_deadline_is_not_applied() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::open(dir.path()).await.unwrap();
        let kv = Modeled(store.clone());

        let (release, holder) = hold_write_lock(&store).await;
        let deadline = Instant::now() + Duration::from_millis(200);
        let add = tokio::spawn({
            let kv = Modeled(store.clone());
            nimbus_provider_sdk::nats::with_invocation_deadline(deadline, async move {
                kv.add("hits", 1).await
            })
        });
        // Release the database only once the deadline is behind us.
        while Instant::now() <= deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        release.send(()).unwrap();
        holder.join().unwrap();
        let err = add.await.unwrap().unwrap_err();
        assert!(matches!(err, KvError::NotApplied { .. }), "{err}");
        assert!(err.to_string().contains("deadline passed"), "{err}");
        assert!(err.to_string().contains("safe to retry"), "{err}");
        assert_eq!(store.abandoned_writes(), 1);
        assert_eq!(kv.get("hits").await.unwrap(), None);

        // Within its deadline a write is applied as usual.
        let deadline = Instant::now() + Duration::from_secs(600);
        let added =
            nimbus_provider_sdk::nats::with_invocation_deadline(deadline, kv.add("hits", 1))
                .await
                .unwrap();
        assert_eq!(added, 1);
    }
}
