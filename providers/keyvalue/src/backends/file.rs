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

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, PoisonError, Weak};
use std::time::Duration;

use async_trait::async_trait;
use redb::{Database, DatabaseError, ReadableDatabase, TableDefinition};
use tracing::debug;

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
        });
        open.insert(canonical, Arc::downgrade(&db));
        debug!(path = %db.path.display(), "opened key-value database");
        Ok(Self { db })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.db.path
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
        let _writer = self.db.writer.lock().await;
        blocking(move || {
            let txn = db.db.begin_write().map_err(db_err)?;
            {
                let mut table = txn.open_table(TABLE).map_err(db_err)?;
                table
                    .insert(key.as_str(), bytes.as_slice())
                    .map_err(db_err)?;
            }
            txn.commit().map_err(db_err)
        })
        .await
    }

    async fn remove(&self, key: &str) -> Result<bool, KvError> {
        let db = self.db.clone();
        let key = key.to_string();
        let _writer = self.db.writer.lock().await;
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
            txn.commit().map_err(db_err)?;
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
        let _writer = self.db.writer.lock().await;
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
            txn.commit().map_err(db_err)
        })
        .await
    }

    async fn remove_many(&self, keys: &[String]) -> Result<u64, KvError> {
        let db = self.db.clone();
        let keys = keys.to_vec();
        let _writer = self.db.writer.lock().await;
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
            txn.commit().map_err(db_err)?;
            Ok(existed)
        })
        .await
    }

    async fn update(&self, key: &str, update: &Update) -> Result<Outcome, KvError> {
        let db = self.db.clone();
        let key = key.to_string();
        let update = update.clone();
        let _writer = self.db.writer.lock().await;
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
                txn.commit().map_err(db_err)?;
            } else {
                txn.abort().map_err(db_err)?;
            }
            Ok(outcome)
        })
        .await
    }
}
