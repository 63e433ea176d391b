//! A typed client of the `wasmcloud:keyvalue` capability over [`Host`], using the published
//! operations (reference §B.5). Values are JSON documents; counters are KV integers
//! incremented with the atomic `Add`, so concurrent creates on any number of instances and
//! hosts never get the same id.
//!
//! Reads of many documents (a page of owners, an owner's pets, a pet's visits) use the
//! batched `GetMany` of the nimbus extension ([`Kv::get_many`]): one host call, which on a
//! lattice is one NATS round trip, instead of one per document. With a provider that
//! predates the extension the same call falls back to one `Get` per key.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::{decode, encode};
use crate::error::{ServiceError, ServiceResult};
use crate::host::Host;
use crate::types::Id;
use crate::wire::{self, KEYVALUE, batch};

/// The link name of the key-value link every petclinic actor uses.
pub const LINK_NAME: &str = "default";

/// Key-value operations of one actor, through its `default` link.
pub struct Kv<'h, H: Host + ?Sized> {
    host: &'h H,
}

impl<'h, H: Host + ?Sized> Kv<'h, H> {
    /// A client that calls through `host`.
    pub fn new(host: &'h H) -> Self {
        Kv { host }
    }

    /// One operation: `{Op}Args` in, the response struct out. Host failures are
    /// [`ServiceError::Unavailable`] (the store may come back), undecodable replies
    /// [`ServiceError::Internal`].
    fn call<A: Serialize, R: DeserializeOwned>(&self, op: &str, args: &A) -> ServiceResult<R> {
        let payload = encode(args).map_err(ServiceError::internal)?;
        let reply = self
            .host
            .call(LINK_NAME, KEYVALUE, op, &payload)
            .map_err(|e| ServiceError::unavailable(format!("key-value {op} failed: {e}")))?;
        decode(op, &reply).map_err(|e| ServiceError::internal(format!("key-value reply: {e}")))
    }

    /// The string at `key`, if present.
    pub fn get(&self, key: &str) -> ServiceResult<Option<String>> {
        let r: wire::GetResponse = self.call(wire::OP_GET, &wire::GetArgs { key: key.into() })?;
        Ok(r.exists.then_some(r.value))
    }

    /// Stores `value` at `key`, with no expiry.
    pub fn set(&self, key: &str, value: &str) -> ServiceResult<()> {
        let args = wire::SetArgs {
            key: key.into(),
            value: value.into(),
            expires: 0,
        };
        let _: wire::SetResponse = self.call(wire::OP_SET, &args)?;
        Ok(())
    }

    /// Deletes `key` (absent keys are fine).
    pub fn del(&self, key: &str) -> ServiceResult<()> {
        let _: wire::DelResponse = self.call(wire::OP_DEL, &wire::DelArgs { key: key.into() })?;
        Ok(())
    }

    /// Atomically adds `delta` to the counter at `key` (absent counts as 0); the new value.
    pub fn add(&self, key: &str, delta: i32) -> ServiceResult<i32> {
        let args = wire::AddArgs {
            key: key.into(),
            value: delta,
        };
        let r: wire::AddResponse = self.call(wire::OP_ADD, &args)?;
        Ok(r.value)
    }

    /// Whether `key` exists.
    pub fn exists(&self, key: &str) -> ServiceResult<bool> {
        let args = wire::KeyExistsArgs { key: key.into() };
        let r: wire::GetResponse = self.call(wire::OP_KEY_EXISTS, &args)?;
        Ok(r.exists)
    }

    /// Adds `member` to the set at `key`; whether it was new.
    pub fn set_add(&self, key: &str, member: &str) -> ServiceResult<bool> {
        let args = wire::SetAddArgs {
            key: key.into(),
            value: member.into(),
        };
        let r: wire::SetOperationResponse = self.call(wire::OP_SET_ADD, &args)?;
        Ok(r.new_count > 0)
    }

    /// Removes `member` from the set at `key`; whether it was there.
    pub fn set_remove(&self, key: &str, member: &str) -> ServiceResult<bool> {
        let args = wire::SetRemoveArgs {
            key: key.into(),
            value: member.into(),
        };
        let r: wire::SetOperationResponse = self.call(wire::OP_SET_REMOVE, &args)?;
        Ok(r.new_count > 0)
    }

    /// The members of the set at `key` (empty when absent).
    pub fn set_query(&self, key: &str) -> ServiceResult<Vec<String>> {
        let args = wire::SetQueryArgs { key: key.into() };
        let r: wire::SetQueryResponse = self.call(wire::OP_SET_QUERY, &args)?;
        Ok(r.values)
    }

    /// The union of the sets at `keys`.
    pub fn set_union(&self, keys: &[String]) -> ServiceResult<Vec<String>> {
        let args = wire::SetUnionArgs {
            keys: keys.to_vec(),
        };
        let r: wire::SetQueryResponse = self.call(wire::OP_SET_UNION, &args)?;
        Ok(r.values)
    }

    /// The strings at `keys`, in the order of `keys` (`None`: absent). One `GetMany` per
    /// [`batch::MAX_BATCH`] keys; with a provider without the batched operations, one `Get`
    /// per key (see [`batch::get_many_via`]). No keys, no call. Failures map as for the
    /// single operations, naming the operation that failed.
    pub fn get_many(&self, keys: &[String]) -> ServiceResult<Vec<Option<String>>> {
        let values = batch::get_many_via(keys, |op, payload| {
            self.host.call(LINK_NAME, KEYVALUE, op, payload)
        })
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
