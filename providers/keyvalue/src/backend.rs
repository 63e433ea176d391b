//! The backend-neutral store API: every operation of the waPC-era `wasmcloud:keyvalue`
//! interface (and of its 0.x successor), with Redis semantics, so that an actor sees the same
//! behaviour whichever backend its link chooses.

use std::time::Duration;

use async_trait::async_trait;

use crate::error::KvError;

/// The most keys or items one batched operation ([`KvBackend::get_many`], `set_many`,
/// `del_many`) takes: the interface's limit, so that actors (whose helpers split larger
/// batches) and the provider agree. Larger batches fail with [`KvError::BatchTooLarge`]
/// before any work is done.
pub use nimbus_interface_keyvalue::batch::MAX_BATCH;

/// Refuses a batch of `len` keys or items for `operation` when it is over [`MAX_BATCH`].
pub(crate) fn check_batch(operation: &'static str, len: usize) -> Result<(), KvError> {
    if len > MAX_BATCH {
        return Err(KvError::BatchTooLarge {
            operation,
            len,
            max: MAX_BATCH,
        });
    }
    Ok(())
}

/// One write of [`KvBackend::set_many`]: what one `set` would take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetItem {
    /// The key to write.
    pub key: String,
    /// The string to store.
    pub value: String,
    /// How long the key lives; `None` means forever.
    pub expires: Option<Duration>,
}

/// Which occurrences of a value [`KvBackend::list_remove`] removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// Every occurrence (`ListItemDelete`, Redis `LREM key 0 value`).
    All,
    /// Only the first occurrence from the head (0.x `ListDel`, Redis `LREM key 1 value`).
    First,
}

/// What a list removal did: the interface versions report different halves of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ListRemoval {
    /// How many elements were removed.
    pub removed: u64,
    /// The list's length afterwards (0 when the key is gone).
    pub len: u64,
}

/// What a set addition or removal did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SetChange {
    /// Whether the member was added (for an add) or removed (for a remove); false when the
    /// set already had it, or did not have it.
    pub changed: bool,
    /// The set's cardinality afterwards (0 when the key is gone).
    pub len: u64,
}

/// A key-value store as the provider uses it, whatever holds the data.
///
/// Semantics follow Redis, the reference backend of the published providers:
/// - a key holds a string, a list or a set; an operation on the wrong kind fails with
///   [`KvError::WrongType`] and changes nothing; `set` replaces whatever was there;
/// - lists and sets that become empty are deleted;
/// - a key with an expiry is absent once it has passed; modifying operations (`add`,
///   `list_push`, ...) keep a key's expiry, `set` replaces it;
/// - set members come back sorted, so results are the same on every backend.
///
/// Every operation on a single key is atomic, including under concurrent callers in other
/// processes sharing the same backend.
///
/// The batched operations (`get_many`, `set_many`, `del_many`; the interface's nimbus
/// extension) mean exactly what the single-key operation run once per key in order would,
/// but cost one backend round trip (or one transaction) where the backend allows, because
/// an actor that reads twenty keys should not pay twenty host calls. Each refuses more than
/// [`MAX_BATCH`] keys with [`KvError::BatchTooLarge`] and does nothing for an empty batch.
#[async_trait]
pub trait KvBackend: Send + Sync + 'static {
    /// The backend's name (`memory`, `file`, `redis`, `nats`) for logs and errors.
    fn kind(&self) -> &'static str;

    /// The string at `key`, or `None` when the key is absent.
    async fn get(&self, key: &str) -> Result<Option<String>, KvError>;

    /// Stores a string at `key`, replacing any value of any kind. `expires` is how long the
    /// key lives; `None` means forever.
    async fn set(&self, key: &str, value: &str, expires: Option<Duration>) -> Result<(), KvError>;

    /// Deletes `key` whatever it holds (this is also `Clear` for lists and sets); returns
    /// whether it existed.
    async fn del(&self, key: &str) -> Result<bool, KvError>;

    /// Whether `key` exists (holding anything).
    async fn exists(&self, key: &str) -> Result<bool, KvError>;

    /// Adds `delta` to the integer at `key` (a missing key counts as 0) and returns the new
    /// value. Atomic: concurrent calls never lose an update.
    async fn add(&self, key: &str, delta: i64) -> Result<i64, KvError>;

    /// Appends `value` to the list at `key` (creating it) and returns the new length.
    async fn list_push(&self, key: &str, value: &str) -> Result<u64, KvError>;

    /// The elements `start..=stop` of the list at `key`, Redis `LRANGE` style: negative
    /// indices count from the end (-1 is the last element), out-of-range bounds are clamped,
    /// and a missing key is an empty list.
    async fn list_range(&self, key: &str, start: i64, stop: i64) -> Result<Vec<String>, KvError>;

    /// Removes `value` from the list at `key`.
    async fn list_remove(
        &self,
        key: &str,
        value: &str,
        which: Removal,
    ) -> Result<ListRemoval, KvError>;

    /// Adds `member` to the set at `key` (creating it).
    async fn set_add(&self, key: &str, member: &str) -> Result<SetChange, KvError>;

    /// Removes `member` from the set at `key`.
    async fn set_remove(&self, key: &str, member: &str) -> Result<SetChange, KvError>;

    /// The members of the set at `key`, sorted; empty for a missing key.
    async fn set_members(&self, key: &str) -> Result<Vec<String>, KvError>;

    /// The union of the sets at `keys` (missing keys are empty sets), sorted.
    async fn set_union(&self, keys: &[String]) -> Result<Vec<String>, KvError>;

    /// The intersection of the sets at `keys` (a missing key makes it empty; no keys gives
    /// an empty result), sorted.
    async fn set_intersection(&self, keys: &[String]) -> Result<Vec<String>, KvError>;

    /// The strings at `keys`, one entry per key in the order given (`None`: absent or
    /// expired; a key given twice is answered twice). A key holding a list or a set fails
    /// the whole call with [`KvError::WrongType`], as `get` would. Memory and file: one
    /// consistent snapshot; Redis: one `MULTI`/`EXEC` of `GET`s; NATS: concurrent reads.
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<String>>, KvError>;

    /// Stores every item as `set` would, in order, so the last of duplicate keys wins.
    /// Memory, file and Redis apply the batch atomically (one lock, one write transaction,
    /// one `MULTI`/`EXEC`); NATS JetStream KV has no multi-key transactions, so there the
    /// writes run concurrently and a failure may leave some of them done.
    async fn set_many(&self, items: &[SetItem]) -> Result<(), KvError>;

    /// Deletes every key, whatever it holds, as `del` would; returns how many of the keys
    /// existed (a key given twice counts once). Atomic where `set_many` is.
    async fn del_many(&self, keys: &[String]) -> Result<u64, KvError>;
}
