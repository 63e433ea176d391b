//! The data model shared by the backends that do not have Redis's types natively (memory,
//! file, NATS KV): typed values, their byte encoding, and every operation as a pure function
//! of the current value. One implementation of the semantics means the three backends cannot
//! drift apart; each backend only supplies atomic read-modify-write.
//!
//! # Encoding (file and NATS backends)
//! A plain string without an expiry is stored as its UTF-8 bytes, so values written by other
//! tools (`nats kv put`) read back as strings and our strings are readable there too.
//! Everything else (lists, sets, strings with an expiry, and strings that happen to begin with
//! the marker) is stored as the 5-byte marker `\0nkv\x01` followed by a msgpack map
//! `{"v": {"s"|"l"|"t": ...}, "x": expires_at_unix_ms?}`. The rule is injective, so every
//! stored byte string decodes to exactly one value.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::backend::{KvBackend, ListRemoval, Removal, SetChange, SetItem, check_batch};
use crate::error::KvError;

/// A value held by a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Value {
    /// A string (also an integer counter, as its decimal text).
    #[serde(rename = "s")]
    Str(String),
    /// A list, head first.
    #[serde(rename = "l")]
    List(Vec<String>),
    /// A set, kept sorted.
    #[serde(rename = "t")]
    Set(BTreeSet<String>),
}

impl Value {
    /// The article-and-noun used in [`KvError::WrongType`].
    fn described(&self) -> &'static str {
        match self {
            Value::Str(_) => "a string",
            Value::List(_) => "a list",
            Value::Set(_) => "a set",
        }
    }
}

/// A value with its absolute expiry, as the file and NATS backends persist it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Stored {
    /// The value.
    #[serde(rename = "v")]
    pub value: Value,
    /// When the key stops existing, in milliseconds since the Unix epoch (wall clock, so it
    /// means the same in every process that shares the store).
    #[serde(rename = "x", default, skip_serializing_if = "Option::is_none")]
    pub expires_at_ms: Option<u64>,
}

/// The prefix of an encoded [`Stored`] envelope.
const MARKER: &[u8] = b"\0nkv\x01";

/// Milliseconds since the Unix epoch now (0 if the clock is before 1970).
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The absolute expiry for a relative one, from now.
pub(crate) fn expiry_from_now(expires: Option<Duration>) -> Option<u64> {
    expires.map(|d| now_ms().saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)))
}

impl Stored {
    /// Whether the key has expired at `now_ms`.
    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expires_at_ms.is_some_and(|at| at <= now_ms)
    }

    /// The bytes `backend` persists.
    pub fn encode(&self, backend: &'static str) -> Result<Vec<u8>, KvError> {
        if let (Value::Str(s), None) = (&self.value, self.expires_at_ms)
            && !s.as_bytes().starts_with(MARKER)
        {
            return Ok(s.as_bytes().to_vec());
        }
        let mut out = MARKER.to_vec();
        rmp_serde::encode::write_named(&mut out, self).map_err(|e| KvError::Backend {
            backend,
            reason: format!("failed to encode a value: {e}"),
        })?;
        Ok(out)
    }

    /// Decodes persisted bytes read from `key`.
    pub fn decode(key: &str, bytes: &[u8]) -> Result<Stored, KvError> {
        if let Some(body) = bytes.strip_prefix(MARKER) {
            return nimbus_core::encoding::from_msgpack_lenient(body).map_err(|e| {
                KvError::Corrupt {
                    key: key.to_string(),
                    reason: e.to_string(),
                }
            });
        }
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(Stored {
                value: Value::Str(s.to_string()),
                expires_at_ms: None,
            }),
            Err(e) => Err(KvError::Corrupt {
                key: key.to_string(),
                reason: format!("not UTF-8 text: {e}"),
            }),
        }
    }
}

/// What an update does to the stored value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Effect {
    /// Nothing to write.
    Unchanged,
    /// Store this value, keeping the key's expiry.
    Put(Value),
    /// Delete the key (a list or set became empty).
    Delete,
}

/// A modifying operation on one key, applied atomically by the backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Update {
    /// Integer increment.
    Add(i64),
    /// List append.
    Push(String),
    /// List element removal.
    ListRemove(String, Removal),
    /// Set insertion.
    SetAdd(String),
    /// Set removal.
    SetRemove(String),
}

/// What an [`Update`] returns to the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The new integer (`Add`).
    Int(i64),
    /// The new length (`Push`).
    Len(u64),
    /// `ListRemove`.
    ListRemoval(ListRemoval),
    /// `SetAdd` / `SetRemove`.
    SetChange(SetChange),
}

fn len_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

fn wrong_type(
    key: &str,
    operation: &'static str,
    expected: &'static str,
    found: &Value,
) -> KvError {
    KvError::WrongType {
        key: key.to_string(),
        operation,
        expected,
        found: found.described(),
    }
}

impl Update {
    /// The operation's name in errors.
    fn name(&self) -> &'static str {
        match self {
            Update::Add(_) => "Add",
            Update::Push(_) => "Push",
            Update::ListRemove(..) => "ListItemDelete",
            Update::SetAdd(_) => "SetAdd",
            Update::SetRemove(_) => "SetRemove",
        }
    }

    /// Computes the effect of the update on the live value at `key` (`None`: absent or
    /// expired), and its result. Pure, so optimistic backends may run it more than once.
    pub fn apply(&self, key: &str, current: Option<&Value>) -> Result<(Effect, Outcome), KvError> {
        match (self, current) {
            (Update::Add(delta), None) => Ok((
                Effect::Put(Value::Str(delta.to_string())),
                Outcome::Int(*delta),
            )),
            (Update::Add(delta), Some(Value::Str(s))) => {
                let old: i64 = s.parse().map_err(|_| KvError::NotAnInteger {
                    key: key.to_string(),
                })?;
                let new = old.checked_add(*delta).ok_or_else(|| KvError::Overflow {
                    key: key.to_string(),
                })?;
                Ok((Effect::Put(Value::Str(new.to_string())), Outcome::Int(new)))
            }
            (Update::Push(v), None) => {
                Ok((Effect::Put(Value::List(vec![v.clone()])), Outcome::Len(1)))
            }
            (Update::Push(v), Some(Value::List(list))) => {
                let mut list = list.clone();
                list.push(v.clone());
                let len = len_u64(list.len());
                Ok((Effect::Put(Value::List(list)), Outcome::Len(len)))
            }
            (Update::ListRemove(..), None) => Ok((
                Effect::Unchanged,
                Outcome::ListRemoval(ListRemoval::default()),
            )),
            (Update::ListRemove(v, which), Some(Value::List(list))) => {
                let mut kept = Vec::with_capacity(list.len());
                let mut removed = 0u64;
                for item in list {
                    if item == v && (*which == Removal::All || removed == 0) {
                        removed += 1;
                    } else {
                        kept.push(item.clone());
                    }
                }
                let len = len_u64(kept.len());
                let effect = if removed == 0 {
                    Effect::Unchanged
                } else if kept.is_empty() {
                    Effect::Delete
                } else {
                    Effect::Put(Value::List(kept))
                };
                Ok((effect, Outcome::ListRemoval(ListRemoval { removed, len })))
            }
            (Update::SetAdd(m), None) => Ok((
                Effect::Put(Value::Set(BTreeSet::from([m.clone()]))),
                Outcome::SetChange(SetChange {
                    changed: true,
                    len: 1,
                }),
            )),
            (Update::SetAdd(m), Some(Value::Set(set))) => {
                if set.contains(m) {
                    return Ok((
                        Effect::Unchanged,
                        Outcome::SetChange(SetChange {
                            changed: false,
                            len: len_u64(set.len()),
                        }),
                    ));
                }
                let mut set = set.clone();
                set.insert(m.clone());
                let len = len_u64(set.len());
                Ok((
                    Effect::Put(Value::Set(set)),
                    Outcome::SetChange(SetChange { changed: true, len }),
                ))
            }
            (Update::SetRemove(_), None) => {
                Ok((Effect::Unchanged, Outcome::SetChange(SetChange::default())))
            }
            (Update::SetRemove(m), Some(Value::Set(set))) => {
                if !set.contains(m) {
                    return Ok((
                        Effect::Unchanged,
                        Outcome::SetChange(SetChange {
                            changed: false,
                            len: len_u64(set.len()),
                        }),
                    ));
                }
                let mut set = set.clone();
                set.remove(m);
                let len = len_u64(set.len());
                let effect = if set.is_empty() {
                    Effect::Delete
                } else {
                    Effect::Put(Value::Set(set))
                };
                Ok((effect, Outcome::SetChange(SetChange { changed: true, len })))
            }
            (Update::Add(_), Some(other)) => Err(wrong_type(key, self.name(), "a string", other)),
            (Update::Push(_) | Update::ListRemove(..), Some(other)) => {
                Err(wrong_type(key, self.name(), "a list", other))
            }
            (Update::SetAdd(_) | Update::SetRemove(_), Some(other)) => {
                Err(wrong_type(key, self.name(), "a set", other))
            }
        }
    }
}

/// `Get` (and each key of `GetMany`, named by `operation` in errors): the string at `key`.
pub(crate) fn read_string(
    key: &str,
    operation: &'static str,
    value: Option<Value>,
) -> Result<Option<String>, KvError> {
    match value {
        None => Ok(None),
        Some(Value::Str(s)) => Ok(Some(s)),
        Some(other) => Err(wrong_type(key, operation, "a string", &other)),
    }
}

/// The items of a `SetMany` that matter once applied in order: the last write of each key,
/// in the order of those last writes. Backends that write concurrently (NATS) use it so
/// that "the last of duplicate keys wins" holds without ordering the writes.
pub(crate) fn last_writes(items: &[SetItem]) -> Vec<&SetItem> {
    let mut seen = std::collections::HashSet::new();
    let mut out: Vec<&SetItem> = items
        .iter()
        .rev()
        .filter(|item| seen.insert(item.key.as_str()))
        .collect();
    out.reverse();
    out
}

/// The distinct keys of a batch, in first-seen order.
pub(crate) fn distinct(keys: &[String]) -> Vec<&String> {
    let mut seen = std::collections::HashSet::new();
    keys.iter().filter(|k| seen.insert(k.as_str())).collect()
}

/// The index range `LRANGE start stop` selects in a list of `len` elements, or `None` when
/// it selects nothing.
pub(crate) fn range_bounds(len: usize, start: i64, stop: i64) -> Option<(usize, usize)> {
    let len = i64::try_from(len).unwrap_or(i64::MAX);
    let start = if start < 0 {
        (len + start).max(0)
    } else {
        start
    };
    let stop = if stop < 0 {
        len + stop
    } else {
        stop.min(len - 1)
    };
    if len == 0 || start > stop || start >= len || stop < 0 {
        return None;
    }
    Some((usize::try_from(start).ok()?, usize::try_from(stop).ok()?))
}

/// `Range`: elements `start..=stop` of the list at `key`.
pub(crate) fn read_range(
    key: &str,
    value: Option<Value>,
    start: i64,
    stop: i64,
) -> Result<Vec<String>, KvError> {
    match value {
        None => Ok(Vec::new()),
        Some(Value::List(list)) => Ok(match range_bounds(list.len(), start, stop) {
            Some((a, b)) => list.get(a..=b).map(<[String]>::to_vec).unwrap_or_default(),
            None => Vec::new(),
        }),
        Some(other) => Err(wrong_type(key, "Range", "a list", &other)),
    }
}

/// The set at `key` (empty when absent).
fn read_set(
    key: &str,
    operation: &'static str,
    value: Option<Value>,
) -> Result<BTreeSet<String>, KvError> {
    match value {
        None => Ok(BTreeSet::new()),
        Some(Value::Set(set)) => Ok(set),
        Some(other) => Err(wrong_type(key, operation, "a set", &other)),
    }
}

/// `SetUnion` over the values of `keys`, in the same order.
pub(crate) fn union(keys: &[String], values: Vec<Option<Value>>) -> Result<Vec<String>, KvError> {
    let mut out = BTreeSet::new();
    for (key, value) in keys.iter().zip(values) {
        out.extend(read_set(key, "SetUnion", value)?);
    }
    Ok(out.into_iter().collect())
}

/// `SetIntersection` over the values of `keys`, in the same order.
pub(crate) fn intersection(
    keys: &[String],
    values: Vec<Option<Value>>,
) -> Result<Vec<String>, KvError> {
    let mut acc: Option<BTreeSet<String>> = None;
    for (key, value) in keys.iter().zip(values) {
        // Type-check every key (as Redis does) even once the result is empty.
        let set = read_set(key, "SetIntersection", value)?;
        acc = Some(match acc {
            None => set,
            Some(a) => a.intersection(&set).cloned().collect(),
        });
    }
    Ok(acc.unwrap_or_default().into_iter().collect())
}

/// What a backend without native types supplies: atomic access to typed values. The
/// [`Modeled`] wrapper turns it into a [`KvBackend`] with the semantics in this module.
#[async_trait]
pub(crate) trait EntryStore: Send + Sync + 'static {
    /// The backend's name.
    fn kind(&self) -> &'static str;
    /// The live value at `key` (`None` when absent or expired).
    async fn load(&self, key: &str) -> Result<Option<Value>, KvError>;
    /// The live values at `keys`, in order.
    async fn load_many(&self, keys: &[String]) -> Result<Vec<Option<Value>>, KvError>;
    /// Replaces the value at `key`, with a new expiry.
    async fn store(
        &self,
        key: &str,
        value: Value,
        expires: Option<Duration>,
    ) -> Result<(), KvError>;
    /// Deletes `key`; whether a live value was there.
    async fn remove(&self, key: &str) -> Result<bool, KvError>;
    /// Stores every item (a string with its expiry) in order, atomically where the store
    /// can (see [`KvBackend::set_many`]). Never called with an empty batch.
    async fn store_many(&self, items: &[SetItem]) -> Result<(), KvError>;
    /// Deletes every key; how many distinct keys held a live value. Never called with an
    /// empty batch.
    async fn remove_many(&self, keys: &[String]) -> Result<u64, KvError>;
    /// Applies `update` atomically (read, [`Update::apply`], write) and returns its outcome.
    async fn update(&self, key: &str, update: &Update) -> Result<Outcome, KvError>;
}

/// An [`EntryStore`] seen as a [`KvBackend`].
pub(crate) struct Modeled<S>(pub S);

fn unexpected(backend: &'static str, outcome: Outcome) -> KvError {
    KvError::Backend {
        backend,
        reason: format!("internal error: unexpected update outcome {outcome:?}"),
    }
}

#[async_trait]
impl<S: EntryStore> KvBackend for Modeled<S> {
    fn kind(&self) -> &'static str {
        self.0.kind()
    }

    async fn get(&self, key: &str) -> Result<Option<String>, KvError> {
        read_string(key, "Get", self.0.load(key).await?)
    }

    async fn set(&self, key: &str, value: &str, expires: Option<Duration>) -> Result<(), KvError> {
        self.0
            .store(key, Value::Str(value.to_string()), expires)
            .await
    }

    async fn del(&self, key: &str) -> Result<bool, KvError> {
        self.0.remove(key).await
    }

    async fn exists(&self, key: &str) -> Result<bool, KvError> {
        Ok(self.0.load(key).await?.is_some())
    }

    async fn add(&self, key: &str, delta: i64) -> Result<i64, KvError> {
        match self.0.update(key, &Update::Add(delta)).await? {
            Outcome::Int(n) => Ok(n),
            other => Err(unexpected(self.0.kind(), other)),
        }
    }

    async fn list_push(&self, key: &str, value: &str) -> Result<u64, KvError> {
        match self.0.update(key, &Update::Push(value.to_string())).await? {
            Outcome::Len(n) => Ok(n),
            other => Err(unexpected(self.0.kind(), other)),
        }
    }

    async fn list_range(&self, key: &str, start: i64, stop: i64) -> Result<Vec<String>, KvError> {
        read_range(key, self.0.load(key).await?, start, stop)
    }

    async fn list_remove(
        &self,
        key: &str,
        value: &str,
        which: Removal,
    ) -> Result<ListRemoval, KvError> {
        match self
            .0
            .update(key, &Update::ListRemove(value.to_string(), which))
            .await?
        {
            Outcome::ListRemoval(r) => Ok(r),
            other => Err(unexpected(self.0.kind(), other)),
        }
    }

    async fn set_add(&self, key: &str, member: &str) -> Result<SetChange, KvError> {
        match self
            .0
            .update(key, &Update::SetAdd(member.to_string()))
            .await?
        {
            Outcome::SetChange(c) => Ok(c),
            other => Err(unexpected(self.0.kind(), other)),
        }
    }

    async fn set_remove(&self, key: &str, member: &str) -> Result<SetChange, KvError> {
        match self
            .0
            .update(key, &Update::SetRemove(member.to_string()))
            .await?
        {
            Outcome::SetChange(c) => Ok(c),
            other => Err(unexpected(self.0.kind(), other)),
        }
    }

    async fn set_members(&self, key: &str) -> Result<Vec<String>, KvError> {
        Ok(read_set(key, "SetQuery", self.0.load(key).await?)?
            .into_iter()
            .collect())
    }

    async fn set_union(&self, keys: &[String]) -> Result<Vec<String>, KvError> {
        union(keys, self.0.load_many(keys).await?)
    }

    async fn set_intersection(&self, keys: &[String]) -> Result<Vec<String>, KvError> {
        intersection(keys, self.0.load_many(keys).await?)
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<String>>, KvError> {
        check_batch("GetMany", keys.len())?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let values = self.0.load_many(keys).await?;
        keys.iter()
            .zip(values)
            .map(|(key, value)| read_string(key, "GetMany", value))
            .collect()
    }

    async fn set_many(&self, items: &[SetItem]) -> Result<(), KvError> {
        check_batch("SetMany", items.len())?;
        if items.is_empty() {
            return Ok(());
        }
        self.0.store_many(items).await
    }

    async fn del_many(&self, keys: &[String]) -> Result<u64, KvError> {
        check_batch("DelMany", keys.len())?;
        if keys.is_empty() {
            return Ok(0);
        }
        self.0.remove_many(keys).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn list(items: &[&str]) -> Option<Value> {
        Some(Value::List(items.iter().map(|s| s.to_string()).collect()))
    }

    #[test]
    fn range_follows_redis_lrange() {
        let l = list(&["a", "b", "c", "d"]);
        let r = |s, e| read_range("k", l.clone(), s, e).unwrap();
        assert_eq!(r(0, -1), ["a", "b", "c", "d"]);
        assert_eq!(r(1, 2), ["b", "c"]);
        assert_eq!(r(-2, -1), ["c", "d"]);
        assert_eq!(r(-100, 1), ["a", "b"]);
        assert_eq!(r(2, 100), ["c", "d"]);
        assert_eq!(r(3, 1), Vec::<String>::new());
        assert_eq!(r(4, 10), Vec::<String>::new());
        assert_eq!(r(0, -5), Vec::<String>::new());
        assert_eq!(r(-1, -1), ["d"]);
        assert_eq!(read_range("k", None, 0, -1).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn plain_strings_are_stored_raw_and_everything_else_in_an_envelope() {
        let plain = Stored {
            value: Value::Str("hello".into()),
            expires_at_ms: None,
        };
        assert_eq!(plain.encode("test").unwrap(), b"hello");
        let cases = [
            Stored {
                value: Value::Str("hello".into()),
                expires_at_ms: Some(42),
            },
            Stored {
                value: Value::Str("\0nkv\x01tricky".into()),
                expires_at_ms: None,
            },
            Stored {
                value: Value::List(vec!["a".into(), "a".into()]),
                expires_at_ms: None,
            },
            Stored {
                value: Value::Set(["x".to_string(), "y".to_string()].into()),
                expires_at_ms: Some(7),
            },
            plain,
        ];
        for stored in cases {
            let bytes = stored.encode("test").unwrap();
            assert_eq!(Stored::decode("k", &bytes).unwrap(), stored);
        }
    }

    #[test]
    fn undecodable_bytes_are_a_corrupt_error() {
        assert!(matches!(
            Stored::decode("k", b"\0nkv\x01\xc1"),
            Err(KvError::Corrupt { .. })
        ));
        assert!(matches!(
            Stored::decode("k", &[0xff, 0xfe]),
            Err(KvError::Corrupt { .. })
        ));
    }

    #[test]
    fn add_checks_type_integer_and_overflow() {
        let s = |v: &str| Some(Value::Str(v.into()));
        assert_eq!(
            Update::Add(5).apply("k", s("-7").as_ref()).unwrap(),
            (Effect::Put(Value::Str("-2".into())), Outcome::Int(-2))
        );
        assert!(matches!(
            Update::Add(1).apply("k", s("x").as_ref()),
            Err(KvError::NotAnInteger { .. })
        ));
        assert!(matches!(
            Update::Add(1).apply("k", s(&i64::MAX.to_string()).as_ref()),
            Err(KvError::Overflow { .. })
        ));
        assert!(matches!(
            Update::Add(1).apply("k", list(&["a"]).as_ref()),
            Err(KvError::WrongType {
                found: "a list",
                ..
            })
        ));
    }

    #[test]
    fn removing_the_last_element_deletes_the_key() {
        let (effect, outcome) = Update::ListRemove("a".into(), Removal::All)
            .apply("k", list(&["a", "a"]).as_ref())
            .unwrap();
        assert_eq!(effect, Effect::Delete);
        assert_eq!(
            outcome,
            Outcome::ListRemoval(ListRemoval { removed: 2, len: 0 })
        );
        let (effect, outcome) = Update::ListRemove("a".into(), Removal::First)
            .apply("k", list(&["a", "b", "a"]).as_ref())
            .unwrap();
        assert_eq!(
            effect,
            Effect::Put(Value::List(vec!["b".into(), "a".into()]))
        );
        assert_eq!(
            outcome,
            Outcome::ListRemoval(ListRemoval { removed: 1, len: 2 })
        );
    }

    #[test]
    fn intersection_type_checks_every_key() {
        let keys = vec!["a".to_string(), "b".to_string()];
        assert!(matches!(
            intersection(&keys, vec![None, list(&["x"])]),
            Err(KvError::WrongType { .. })
        ));
        assert!(intersection(&[], vec![]).unwrap().is_empty());
    }
}
