//! The batched operations (`GetMany`, `SetMany`, `DelMany`): a nimbus extension of the
//! published interface, so that reading twenty keys costs one host call (on a lattice, one
//! NATS round trip) instead of twenty.
//!
//! Providers that predate the extension (every 0.x provider) do not know these operations.
//! The helpers here ([`get_many_via`], [`set_many_via`], [`del_many_via`]) send the batched
//! operation and, when the provider answers that it does not know it, run the single-key
//! operations (`Get`, `Set`, `Del`) instead, so an actor written against them works with any
//! key-value provider. They also split batches larger than [`MAX_BATCH`], which providers
//! refuse. They take the host call as a closure, so they serve the generated actor-side
//! `Host` (feature `actor`: [`Host::get_many_or_each`](crate::Host::get_many_or_each), ...)
//! and actors with their own host seam alike.

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{
    DelArgs, DelManyArgs, DelManyResponse, DelResponse, GetArgs, GetManyArgs, GetManyResponse,
    GetResponse, OP_DEL, OP_DEL_MANY, OP_GET, OP_GET_MANY, OP_SET, OP_SET_MANY, SetArgs,
    SetManyArgs, SetManyItem, SetManyResponse, SetResponse, deserialize, serialize,
};

/// The most keys (`GetMany`, `DelMany`) or items (`SetMany`) one batched call may carry.
///
/// It bounds the work and the memory one call can demand of a provider, and keeps a
/// request of small values well inside a lattice's message size (1 MiB by default on
/// NATS). Providers refuse larger batches whole; the helpers of this module split them.
pub const MAX_BATCH: usize = 1000;

/// The batched operations, in WIDL order (role `BatchStore`).
pub const OPERATIONS: [&str; 3] = [OP_GET_MANY, OP_SET_MANY, OP_DEL_MANY];

/// Whether a host-call error says that the provider does not know the operation: the
/// nimbus host's "unknown operation ...", the waPC-era providers' "bad dispatch", the
/// wasmbus providers' "method not handled". Other failures (store down, wrong type, ...)
/// are real errors of the batched call and are not retried one key at a time.
pub fn is_unknown_operation(error: &str) -> bool {
    let error = error.to_ascii_lowercase();
    ["unknown operation", "bad dispatch", "method not handled"]
        .iter()
        .any(|marker| error.contains(marker))
}

/// Why a batch helper failed. Each variant names the operation that failed, which is the
/// single-key one once the helper has fallen back.
#[derive(Debug)]
pub enum BatchError<E> {
    /// The host call failed; `error` is what the host (or the provider) said.
    Call {
        /// The wire name of the operation.
        operation: &'static str,
        /// The host call's error.
        error: E,
    },
    /// The request could not be encoded as msgpack.
    Encode {
        /// The wire name of the operation.
        operation: &'static str,
        /// The encoder's explanation.
        reason: String,
    },
    /// The provider's reply is not the operation's response (undecodable, or a `GetMany`
    /// reply with another number of values than keys asked for).
    Reply {
        /// The wire name of the operation.
        operation: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

impl<E> BatchError<E> {
    /// The wire name of the operation that failed.
    pub fn operation(&self) -> &'static str {
        match self {
            BatchError::Call { operation, .. }
            | BatchError::Encode { operation, .. }
            | BatchError::Reply { operation, .. } => operation,
        }
    }
}

impl<E: fmt::Display> fmt::Display for BatchError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BatchError::Call { operation, error } => {
                write!(f, "key-value {operation} failed: {error}")
            }
            BatchError::Encode { operation, reason } => {
                write!(
                    f,
                    "cannot encode the key-value {operation} request: {reason}"
                )
            }
            BatchError::Reply { operation, reason } => {
                write!(f, "invalid reply to key-value {operation}: {reason}")
            }
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for BatchError<E> {}

/// One typed call through `call`.
fn typed<A: Serialize, R: DeserializeOwned, E>(
    call: &mut impl FnMut(&'static str, &[u8]) -> Result<Vec<u8>, E>,
    operation: &'static str,
    args: &A,
) -> Result<R, BatchError<E>> {
    let payload = serialize(args).map_err(|e| BatchError::Encode {
        operation,
        reason: e.to_string(),
    })?;
    let reply = call(operation, &payload).map_err(|error| BatchError::Call { operation, error })?;
    deserialize(&reply).map_err(|e| BatchError::Reply {
        operation,
        reason: e.to_string(),
    })
}

/// The outcome of trying one batched call.
enum Tried<R, E> {
    /// The provider answered.
    Done(R),
    /// The provider does not know the operation.
    Unsupported,
    /// Any other failure.
    Failed(BatchError<E>),
}

fn try_batched<A: Serialize, R: DeserializeOwned, E: fmt::Display>(
    call: &mut impl FnMut(&'static str, &[u8]) -> Result<Vec<u8>, E>,
    operation: &'static str,
    args: &A,
) -> Tried<R, E> {
    match typed(call, operation, args) {
        Ok(r) => Tried::Done(r),
        Err(BatchError::Call { error, .. }) if is_unknown_operation(&error.to_string()) => {
            Tried::Unsupported
        }
        Err(e) => Tried::Failed(e),
    }
}

/// The values of `keys`, one [`GetResponse`] per key in the order of `keys`, through
/// `call(operation, msgpack payload) -> reply` (a `__host_call` to the key-value link).
///
/// Sends `GetMany` in batches of at most [`MAX_BATCH`] keys. If the provider does not know
/// `GetMany`, it and the rest of the keys are read with one `Get` each (so this works with
/// every 0.x provider, at the old cost). No keys, no call.
pub fn get_many_via<E: fmt::Display>(
    keys: &[String],
    mut call: impl FnMut(&'static str, &[u8]) -> Result<Vec<u8>, E>,
) -> Result<Vec<GetResponse>, BatchError<E>> {
    let mut out = Vec::with_capacity(keys.len());
    let mut batched = true;
    for chunk in keys.chunks(MAX_BATCH) {
        if batched {
            let args = GetManyArgs {
                keys: chunk.to_vec(),
            };
            match try_batched::<_, GetManyResponse, _>(&mut call, OP_GET_MANY, &args) {
                Tried::Done(r) if r.values.len() == chunk.len() => {
                    out.extend(r.values);
                    continue;
                }
                Tried::Done(r) => {
                    return Err(BatchError::Reply {
                        operation: OP_GET_MANY,
                        reason: format!(
                            "{} values for {} keys; the provider must answer every key",
                            r.values.len(),
                            chunk.len()
                        ),
                    });
                }
                Tried::Unsupported => batched = false,
                Tried::Failed(e) => return Err(e),
            }
        }
        for key in chunk {
            let args = GetArgs { key: key.clone() };
            out.push(typed::<_, GetResponse, _>(&mut call, OP_GET, &args)?);
        }
    }
    Ok(out)
}

/// Writes `items` in order through `call` (see [`get_many_via`]): `SetMany` in batches of
/// at most [`MAX_BATCH`] items, or one `Set` per item when the provider does not know
/// `SetMany`. Returns how many items were written.
///
/// A batch larger than [`MAX_BATCH`] is several calls, so it is not all-or-nothing even on
/// backends where one `SetMany` is.
pub fn set_many_via<E: fmt::Display>(
    items: &[SetManyItem],
    mut call: impl FnMut(&'static str, &[u8]) -> Result<Vec<u8>, E>,
) -> Result<u32, BatchError<E>> {
    let mut count = 0u32;
    let mut batched = true;
    for chunk in items.chunks(MAX_BATCH) {
        if batched {
            let args = SetManyArgs {
                items: chunk.to_vec(),
            };
            match try_batched::<_, SetManyResponse, _>(&mut call, OP_SET_MANY, &args) {
                Tried::Done(r) => {
                    count = count.saturating_add(r.count);
                    continue;
                }
                Tried::Unsupported => batched = false,
                Tried::Failed(e) => return Err(e),
            }
        }
        for item in chunk {
            let args = SetArgs {
                key: item.key.clone(),
                value: item.value.clone(),
                expires: item.expires,
            };
            let _: SetResponse = typed(&mut call, OP_SET, &args)?;
            count = count.saturating_add(1);
        }
    }
    Ok(count)
}

/// Deletes `keys` through `call` (see [`get_many_via`]): `DelMany` in batches of at most
/// [`MAX_BATCH`] keys, or one `Del` per key when the provider does not know `DelMany`.
///
/// Returns how many of the keys existed, or `None` after falling back: the 0.2 `Del`
/// reply does not say whether the key was there.
pub fn del_many_via<E: fmt::Display>(
    keys: &[String],
    mut call: impl FnMut(&'static str, &[u8]) -> Result<Vec<u8>, E>,
) -> Result<Option<u32>, BatchError<E>> {
    let mut deleted = Some(0u32);
    for chunk in keys.chunks(MAX_BATCH) {
        if deleted.is_some() {
            let args = DelManyArgs {
                keys: chunk.to_vec(),
            };
            match try_batched::<_, DelManyResponse, _>(&mut call, OP_DEL_MANY, &args) {
                Tried::Done(r) => {
                    deleted = deleted.map(|n| n.saturating_add(r.deleted));
                    continue;
                }
                Tried::Unsupported => deleted = None,
                Tried::Failed(e) => return Err(e),
            }
        }
        for key in chunk {
            let args = DelArgs { key: key.clone() };
            let _: DelResponse = typed(&mut call, OP_DEL, &args)?;
        }
    }
    Ok(deleted)
}

#[cfg(feature = "actor")]
impl<H: ::nimbus_actor::HostCall> crate::Host<H> {
    /// [`get_many_via`] over this link: `GetMany`, or one `Get` per key with a 0.x provider.
    pub fn get_many_or_each(
        &self,
        keys: &[String],
    ) -> ::nimbus_actor::HandlerResult<Vec<GetResponse>> {
        get_many_via(keys, |op, payload| self.raw_text_call(op, payload)).map_err(Into::into)
    }

    /// [`set_many_via`] over this link: `SetMany`, or one `Set` per item with a 0.x
    /// provider; how many items were written.
    pub fn set_many_or_each(&self, items: &[SetManyItem]) -> ::nimbus_actor::HandlerResult<u32> {
        set_many_via(items, |op, payload| self.raw_text_call(op, payload)).map_err(Into::into)
    }

    /// [`del_many_via`] over this link: `DelMany`, or one `Del` per key with a 0.x provider
    /// (then the count is `None`).
    pub fn del_many_or_each(&self, keys: &[String]) -> ::nimbus_actor::HandlerResult<Option<u32>> {
        del_many_via(keys, |op, payload| self.raw_text_call(op, payload)).map_err(Into::into)
    }

    /// One raw host call on this link, its error as text (what the helpers inspect).
    fn raw_text_call(&self, operation: &str, payload: &[u8]) -> Result<Vec<u8>, String> {
        self.raw_call(operation, payload).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::HashMap;

    use super::*;

    /// A provider in miniature: strings only, with or without the batched operations, and
    /// a log of the operations it was sent.
    struct Fake {
        data: HashMap<String, String>,
        batches: bool,
        log: Vec<String>,
    }

    impl Fake {
        fn new(batches: bool) -> Self {
            Fake {
                data: HashMap::new(),
                batches,
                log: Vec::new(),
            }
        }

        fn call(&mut self, op: &'static str, payload: &[u8]) -> Result<Vec<u8>, String> {
            self.log.push(op.to_string());
            let get = |data: &HashMap<String, String>, key: &str| match data.get(key) {
                Some(v) => GetResponse {
                    value: v.clone(),
                    exists: true,
                },
                None => GetResponse::default(),
            };
            let out = match op {
                OP_GET => {
                    let a: GetArgs = deserialize(payload).unwrap();
                    serialize(&get(&self.data, &a.key))
                }
                OP_SET => {
                    let a: SetArgs = deserialize(payload).unwrap();
                    self.data.insert(a.key, a.value.clone());
                    serialize(&SetResponse { value: a.value })
                }
                OP_DEL => {
                    let a: DelArgs = deserialize(payload).unwrap();
                    self.data.remove(&a.key);
                    serialize(&DelResponse { key: a.key })
                }
                OP_GET_MANY if self.batches => {
                    let a: GetManyArgs = deserialize(payload).unwrap();
                    let values = a.keys.iter().map(|k| get(&self.data, k)).collect();
                    serialize(&GetManyResponse { values })
                }
                OP_SET_MANY if self.batches => {
                    let a: SetManyArgs = deserialize(payload).unwrap();
                    let count = a.items.len() as u32;
                    for item in a.items {
                        self.data.insert(item.key, item.value);
                    }
                    serialize(&SetManyResponse { count })
                }
                OP_DEL_MANY if self.batches => {
                    let a: DelManyArgs = deserialize(payload).unwrap();
                    let deleted = a
                        .keys
                        .iter()
                        .filter(|k| self.data.remove(k.as_str()).is_some())
                        .count() as u32;
                    serialize(&DelManyResponse { deleted })
                }
                // What a waPC-era provider answers.
                _ => return Err("bad dispatch".to_string()),
            };
            Ok(out.unwrap())
        }
    }

    fn keys(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("k{i}")).collect()
    }

    fn items(n: usize) -> Vec<SetManyItem> {
        (0..n)
            .map(|i| SetManyItem {
                key: format!("k{i}"),
                value: format!("v{i}"),
                expires: 0,
            })
            .collect()
    }

    fn run(batches: bool) -> (Vec<String>, Vec<GetResponse>, u32, Option<u32>) {
        let mut fake = Fake::new(batches);
        let written = set_many_via(&items(3), |op, p| fake.call(op, p)).unwrap();
        let wanted = vec!["k2".to_string(), "nope".to_string(), "k0".to_string()];
        let got = get_many_via(&wanted, |op, p| fake.call(op, p)).unwrap();
        let deleted = del_many_via(&keys(2), |op, p| fake.call(op, p)).unwrap();
        (fake.log, got, written, deleted)
    }

    #[test]
    fn a_batching_provider_gets_one_call_per_operation() {
        let (log, got, written, deleted) = run(true);
        assert_eq!(log, [OP_SET_MANY, OP_GET_MANY, OP_DEL_MANY]);
        let values: Vec<_> = got.iter().map(|r| (r.value.as_str(), r.exists)).collect();
        assert_eq!(values, [("v2", true), ("", false), ("v0", true)]);
        assert_eq!((written, deleted), (3, Some(2)));
    }

    #[test]
    fn a_0x_provider_gets_the_single_operations_with_the_same_results() {
        let (log, got, written, deleted) = run(false);
        let expected = [
            OP_SET_MANY,
            OP_SET,
            OP_SET,
            OP_SET,
            OP_GET_MANY,
            OP_GET,
            OP_GET,
            OP_GET,
            OP_DEL_MANY,
            OP_DEL,
            OP_DEL,
        ];
        assert_eq!(log, expected);
        let values: Vec<_> = got.iter().map(|r| (r.value.as_str(), r.exists)).collect();
        assert_eq!(values, [("v2", true), ("", false), ("v0", true)]);
        assert_eq!((written, deleted), (3, None));
    }

    #[test]
    fn large_batches_are_split_and_a_fallback_covers_the_remaining_chunks() {
        let mut fake = Fake::new(true);
        let n = MAX_BATCH * 2 + 1;
        assert_eq!(
            set_many_via(&items(n), |op, p| fake.call(op, p)).unwrap(),
            n as u32
        );
        let got = get_many_via(&keys(n), |op, p| fake.call(op, p)).unwrap();
        assert_eq!(got.len(), n);
        assert!(got.iter().all(|r| r.exists));
        assert_eq!(
            fake.log,
            [OP_SET_MANY; 3]
                .into_iter()
                .chain([OP_GET_MANY; 3])
                .collect::<Vec<_>>()
        );

        let mut fake = Fake::new(false);
        let got = get_many_via(&keys(MAX_BATCH + 1), |op, p| fake.call(op, p)).unwrap();
        assert_eq!(got.len(), MAX_BATCH + 1);
        // One probe, then single operations for every key.
        assert_eq!(fake.log.iter().filter(|op| *op == OP_GET_MANY).count(), 1);
        assert_eq!(fake.log.len(), MAX_BATCH + 2);
    }

    #[test]
    fn no_keys_no_call() {
        let mut calls = 0;
        let mut count = |_: &'static str, _: &[u8]| -> Result<Vec<u8>, String> {
            calls += 1;
            Err("unreachable".into())
        };
        assert!(get_many_via(&[], &mut count).unwrap().is_empty());
        assert_eq!(set_many_via(&[], &mut count).unwrap(), 0);
        assert_eq!(del_many_via(&[], &mut count).unwrap(), Some(0));
        assert_eq!(calls, 0);
    }

    #[test]
    fn real_errors_are_not_retried_one_key_at_a_time() {
        let mut log = Vec::new();
        let err = get_many_via(&keys(3), |op, _| -> Result<Vec<u8>, String> {
            log.push(op);
            Err("the redis key-value backend is unavailable (connection refused)".into())
        })
        .unwrap_err();
        assert_eq!(log, [OP_GET_MANY]);
        assert_eq!(err.operation(), OP_GET_MANY);
        assert!(
            err.to_string().starts_with("key-value GetMany failed: "),
            "{err}"
        );

        // A reply with too few values is an error, not a silent short answer.
        let short = serialize(&GetManyResponse { values: vec![] }).unwrap();
        let err = get_many_via(&keys(2), |_, _| Ok::<_, String>(short.clone())).unwrap_err();
        assert!(matches!(err, BatchError::Reply { .. }), "{err}");
    }

    #[test]
    fn unknown_operation_texts_are_recognised() {
        for text in [
            "unknown operation GetMany for contract wasmcloud:keyvalue",
            "bad dispatch",
            "Method not handled KeyValue.GetMany",
        ] {
            assert!(is_unknown_operation(text), "{text}");
        }
        for text in [
            "no responders for wasmcloud:keyvalue",
            "key \"a\" holds a list, but GetMany works on a string",
        ] {
            assert!(!is_unknown_operation(text), "{text}");
        }
    }
}
