//! The petclinic's key-value helper over the generated `wasmcloud:keyvalue` sender
//! ([`nimbus_interface_keyvalue::Host`]): what the generated code cannot know, namely that
//! a failed host call is a [`ServiceError::Unavailable`] (the store may come back) and an
//! unreadable reply a [`ServiceError::Internal`], that values are JSON documents, and that
//! ids come from KV counters incremented with the atomic `Add` (so concurrent creates on
//! any number of instances and hosts never get the same id).
//!
//! Reads of many documents (a page of owners, an owner's pets, a pet's visits) use the
//! batched `GetMany` of the nimbus extension ([`Kv::get_many`]): one host call, which on a
//! lattice is one NATS round trip, instead of one per document. With a provider that
//! predates the extension the same call falls back to one `Get` per key.

use nimbus_actor::{HandlerResult, HostCall, HostError};
use nimbus_interface_keyvalue as kv;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{ServiceError, ServiceResult};
use crate::types::Id;
use crate::wire::batch;

/// The link name of the key-value link every petclinic actor uses.
pub const LINK_NAME: &str = "default";

/// Key-value operations of one actor, through its `default` link.
pub struct Kv<'h, H: HostCall + ?Sized> {
    store: kv::Host<&'h H>,
}

/// Maps an error of the generated sender for `op`: the host's refusal is
/// [`ServiceError::Unavailable`], anything else (an undecodable reply) is
/// [`ServiceError::Internal`].
fn store_error(op: &str) -> impl FnOnce(Box<dyn std::error::Error + Send + Sync>) -> ServiceError {
    move |e| match e.downcast_ref::<HostError>() {
        Some(host) => ServiceError::unavailable(format!("key-value {op} failed: {host}")),
        None => ServiceError::internal(format!("key-value reply: {e}")),
    }
}

fn mapped<T>(op: &str, result: HandlerResult<T>) -> ServiceResult<T> {
    result.map_err(store_error(op))
}

impl<'h, H: HostCall + ?Sized> Kv<'h, H> {
    /// A client that calls through `host`.
    pub fn new(host: &'h H) -> Self {
        Kv {
            store: kv::Host::with_host(LINK_NAME, host),
        }
    }

    /// The string at `key`, if present.
    pub fn get(&self, key: &str) -> ServiceResult<Option<String>> {
        let r = mapped(kv::OP_GET, self.store.get(key.into()))?;
        Ok(r.exists.then_some(r.value))
    }

    /// Stores `value` at `key`, with no expiry.
    pub fn set(&self, key: &str, value: &str) -> ServiceResult<()> {
        mapped(kv::OP_SET, self.store.set(key.into(), value.into(), 0))?;
        Ok(())
    }

    /// Deletes `key` (absent keys are fine).
    pub fn del(&self, key: &str) -> ServiceResult<()> {
        mapped(kv::OP_DEL, self.store.del(key.into()))?;
        Ok(())
    }

    /// Atomically adds `delta` to the counter at `key` (absent counts as 0); the new value.
    pub fn add(&self, key: &str, delta: i32) -> ServiceResult<i32> {
        Ok(mapped(kv::OP_ADD, self.store.add(key.into(), delta))?.value)
    }

    /// Whether `key` exists.
    pub fn exists(&self, key: &str) -> ServiceResult<bool> {
        Ok(mapped(kv::OP_KEY_EXISTS, self.store.key_exists(key.into()))?.exists)
    }

    /// Adds `member` to the set at `key`; whether it was new.
    pub fn set_add(&self, key: &str, member: &str) -> ServiceResult<bool> {
        let r = mapped(
            kv::OP_SET_ADD,
            self.store.set_add(key.into(), member.into()),
        )?;
        Ok(r.new_count > 0)
    }

    /// Removes `member` from the set at `key`; whether it was there.
    pub fn set_remove(&self, key: &str, member: &str) -> ServiceResult<bool> {
        let r = mapped(
            kv::OP_SET_REMOVE,
            self.store.set_remove(key.into(), member.into()),
        )?;
        Ok(r.new_count > 0)
    }

    /// The members of the set at `key` (empty when absent).
    pub fn set_query(&self, key: &str) -> ServiceResult<Vec<String>> {
        Ok(mapped(kv::OP_SET_QUERY, self.store.set_query(key.into()))?.values)
    }

    /// The union of the sets at `keys`.
    pub fn set_union(&self, keys: &[String]) -> ServiceResult<Vec<String>> {
        Ok(mapped(kv::OP_SET_UNION, self.store.set_union(keys.to_vec()))?.values)
    }

    /// The strings at `keys`, in the order of `keys` (`None`: absent). One `GetMany` per
    /// [`batch::MAX_BATCH`] keys; with a provider without the batched operations, one `Get`
    /// per key (see [`batch::get_many_via`]). No keys, no call. Failures map as for the
    /// single operations, naming the operation that failed.
    pub fn get_many(&self, keys: &[String]) -> ServiceResult<Vec<Option<String>>> {
        let values = batch::get_many_via(keys, |op, payload| self.store.raw_call(op, payload))
            .map_err(|e| match e {
                batch::BatchError::Call { operation, error } => {
                    ServiceError::unavailable(format!("key-value {operation} failed: {error}"))
                }
                batch::BatchError::Encode { reason, .. } => ServiceError::internal(reason),
                batch::BatchError::Reply { reason, .. } => {
                    ServiceError::internal(format!("key-value reply: {reason}"))
                }
            })?;
        Ok(values
            .into_iter()
            .map(|r| r.exists.then_some(r.value))
            .collect())
    }

    /// The JSON document at `key`, if present. A document that does not parse is
    /// [`ServiceError::Internal`]: the key holds data some other writer put there.
    pub fn get_json<T: DeserializeOwned>(&self, key: &str) -> ServiceResult<Option<T>> {
        parse_json(key, self.get(key)?)
    }

    /// The JSON documents at `keys`, in order, read with one [`Kv::get_many`]; each as
    /// [`Kv::get_json`] would return it (the first unreadable one is the error).
    pub fn get_json_many<T: DeserializeOwned>(
        &self,
        keys: &[String],
    ) -> ServiceResult<Vec<Option<T>>> {
        let texts = self.get_many(keys)?;
        keys.iter()
            .zip(texts)
            .map(|(key, text)| parse_json(key, text))
            .collect()
    }

    /// Stores `value` as a JSON document at `key`.
    pub fn set_json<T: Serialize>(&self, key: &str, value: &T) -> ServiceResult<()> {
        let text = serde_json::to_string(value)
            .map_err(|e| ServiceError::internal(format!("cannot encode {key}: {e}")))?;
        self.set(key, &text)
    }

    /// The next id from the counter at `key` (1, 2, 3, ...), unique across instances.
    pub fn next_id(&self, key: &str) -> ServiceResult<Id> {
        let n = self.add(key, 1)?;
        Id::try_from(n)
            .ok()
            .filter(|id| *id > 0)
            .ok_or_else(|| ServiceError::internal(format!("id counter {key} is at {n}")))
    }

    /// The members of the set at `key` that are ids, sorted ascending. Other members (not
    /// written by these actors) are skipped.
    pub fn id_set(&self, key: &str) -> ServiceResult<Vec<Id>> {
        Ok(parse_ids(self.set_query(key)?))
    }
}

/// A stored JSON document read from `key` (`None`: absent). One that does not parse is
/// [`ServiceError::Internal`]: the key holds data some other writer put there.
pub fn parse_json<T: DeserializeOwned>(
    key: &str,
    text: Option<String>,
) -> ServiceResult<Option<T>> {
    match text {
        None => Ok(None),
        Some(text) => serde_json::from_str(&text).map(Some).map_err(|e| {
            ServiceError::internal(format!("stored document {key} is unreadable: {e}"))
        }),
    }
}

/// Parses set members as ids, drops the rest, sorts ascending and removes duplicates.
pub fn parse_ids(members: Vec<String>) -> Vec<Id> {
    let mut ids: Vec<Id> = members.iter().filter_map(|m| m.parse().ok()).collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_ids_sorts_numerically_and_skips_junk() {
        let members = ["10", "2", "x", "1", "2", "-3"].map(String::from).to_vec();
        assert_eq!(parse_ids(members), vec![1, 2, 10]);
    }
}
