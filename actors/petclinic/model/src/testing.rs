//! Test doubles for native tests of the actors (feature `testing`).
//!
//! [`MemoryKv`] is a `wasmcloud:keyvalue` provider in miniature: it decodes the same
//! msgpack `{Op}Args` a real provider gets and answers with the published response shapes,
//! so tests exercise the actors' wire encoding too. It answers the batched operations of the
//! nimbus extension (`GetMany`, `SetMany`, `DelMany`) as the nimbus provider does, or, after
//! [`MemoryKv::set_batches`]`(false)`, refuses them as a 0.x provider would. [`TestHost`] routes an actor's host
//! calls: the key-value contract to its own `MemoryKv`, call aliases to closures (which may
//! run other actors' dispatchers over their own `TestHost`s).

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use nimbus_actor::{HostCall, HostError};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::{decode, encode};
use crate::kv::LINK_NAME;
use crate::wire::{self, KEYVALUE};

/// One stored entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A string (also counters, as decimal text).
    Value(String),
    /// A set.
    Set(BTreeSet<String>),
}

/// An in-memory key-value store answering the wire protocol.
#[derive(Debug, Default)]
pub struct MemoryKv {
    data: RefCell<BTreeMap<String, Entry>>,
    /// Whether the batched operations are refused (a provider that predates them).
    no_batches: Cell<bool>,
}

fn args<T: DeserializeOwned>(op: &str, payload: &[u8]) -> Result<T, String> {
    decode(&format!("{op} arguments"), payload)
}

fn out<T: Serialize>(value: &T) -> Result<Vec<u8>, String> {
    encode(value)
}

impl MemoryKv {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the batched operations are answered (the default) or refused with the
    /// "bad dispatch" of a waPC-era provider, to test the actors' fallback.
    pub fn set_batches(&self, supported: bool) {
        self.no_batches.set(!supported);
    }

    /// Runs one operation as a provider would.
    pub fn handle(&self, op: &str, payload: &[u8]) -> Result<Vec<u8>, String> {
        let mut data = self.data.borrow_mut();
        if self.no_batches.get() && wire::batch::OPERATIONS.contains(&op) {
            return Err("bad dispatch".to_string());
        }
        match op {
            wire::OP_GET => {
                let a: wire::GetArgs = args(op, payload)?;
                let (value, exists) = match data.get(&a.key) {
                    Some(Entry::Value(v)) => (v.clone(), true),
                    Some(Entry::Set(_)) => return Err(wrong_type(&a.key)),
                    None => (String::new(), false),
                };
                out(&wire::GetResponse { value, exists })
            }
            wire::OP_SET => {
                let a: wire::SetArgs = args(op, payload)?;
                data.insert(a.key, Entry::Value(a.value.clone()));
                out(&wire::SetResponse { value: a.value })
            }
            wire::OP_DEL => {
                let a: wire::DelArgs = args(op, payload)?;
                data.remove(&a.key);
                out(&wire::DelResponse { key: a.key })
            }
            wire::OP_ADD => {
                let a: wire::AddArgs = args(op, payload)?;
                let current = match data.get(&a.key) {
                    None => 0,
                    Some(Entry::Value(v)) => v
                        .parse::<i32>()
                        .map_err(|_| format!("value of {} is not an integer", a.key))?,
                    Some(Entry::Set(_)) => return Err(wrong_type(&a.key)),
                };
                let value = current
                    .checked_add(a.value)
                    .ok_or_else(|| format!("counter {} would overflow", a.key))?;
                data.insert(a.key, Entry::Value(value.to_string()));
                out(&wire::AddResponse { value })
            }
            wire::OP_KEY_EXISTS => {
                let a: wire::KeyExistsArgs = args(op, payload)?;
                out(&wire::GetResponse {
                    value: String::new(),
                    exists: data.contains_key(&a.key),
                })
            }
            wire::OP_SET_ADD | wire::OP_SET_REMOVE => {
                let a: wire::SetAddArgs = args(op, payload)?;
                let entry = data
                    .entry(a.key.clone())
                    .or_insert_with(|| Entry::Set(BTreeSet::new()));
                let Entry::Set(set) = entry else {
                    return Err(wrong_type(&a.key));
                };
                let changed = if op == wire::OP_SET_ADD {
                    set.insert(a.value)
                } else {
                    set.remove(&a.value)
                };
                if set.is_empty() {
                    data.remove(&a.key);
                }
                out(&wire::SetOperationResponse {
                    new_count: i32::from(changed),
                })
            }
            wire::OP_SET_QUERY => {
                let a: wire::SetQueryArgs = args(op, payload)?;
                let values = members(&data, &a.key)?.into_iter().collect();
                out(&wire::SetQueryResponse { values })
            }
            wire::OP_SET_UNION => {
                let a: wire::SetUnionArgs = args(op, payload)?;
                let mut union = BTreeSet::new();
                for key in &a.keys {
                    union.extend(members(&data, key)?);
                }
                out(&wire::SetQueryResponse {
                    values: union.into_iter().collect(),
                })
            }
            wire::OP_GET_MANY => {
                let a: wire::GetManyArgs = args(op, payload)?;
                check_batch(op, a.keys.len())?;
                let values = a
                    .keys
                    .iter()
                    .map(|key| match data.get(key) {
                        Some(Entry::Value(v)) => Ok(wire::GetResponse {
                            value: v.clone(),
                            exists: true,
                        }),
                        Some(Entry::Set(_)) => Err(wrong_type(key)),
                        None => Ok(wire::GetResponse::default()),
                    })
                    .collect::<Result<_, _>>()?;
                out(&wire::GetManyResponse { values })
            }
            wire::OP_SET_MANY => {
                let a: wire::SetManyArgs = args(op, payload)?;
                check_batch(op, a.items.len())?;
                let count = u32::try_from(a.items.len()).map_err(|e| e.to_string())?;
                for item in a.items {
                    data.insert(item.key, Entry::Value(item.value));
                }
                out(&wire::SetManyResponse { count })
            }
            wire::OP_DEL_MANY => {
                let a: wire::DelManyArgs = args(op, payload)?;
                check_batch(op, a.keys.len())?;
                let deleted = a.keys.iter().filter(|k| data.remove(*k).is_some()).count();
                out(&wire::DelManyResponse {
                    deleted: u32::try_from(deleted).map_err(|e| e.to_string())?,
                })
            }
            _ => Err(format!("unknown key-value operation {op}")),
        }
    }

    /// A copy of everything stored (to prove that a request changed nothing).
    pub fn snapshot(&self) -> BTreeMap<String, Entry> {
        self.data.borrow().clone()
    }

    /// The string at `key`.
    pub fn value(&self, key: &str) -> Option<String> {
        match self.data.borrow().get(key) {
            Some(Entry::Value(v)) => Some(v.clone()),
            _ => None,
        }
    }

    /// The members of the set at `key`.
    pub fn members(&self, key: &str) -> BTreeSet<String> {
        members(&self.data.borrow(), key).unwrap_or_default()
    }

    /// Stores a string directly (to plant foreign or corrupt data).
    pub fn put(&self, key: &str, value: &str) {
        self.data
            .borrow_mut()
            .insert(key.to_string(), Entry::Value(value.to_string()));
    }

    /// Empties the store, as when the actor's link is put again with a new backend.
    pub fn clear(&self) {
        self.data.borrow_mut().clear();
    }
}

fn members(data: &BTreeMap<String, Entry>, key: &str) -> Result<BTreeSet<String>, String> {
    match data.get(key) {
        None => Ok(BTreeSet::new()),
        Some(Entry::Set(s)) => Ok(s.clone()),
        Some(Entry::Value(_)) => Err(wrong_type(key)),
    }
}

/// Refuses a batch over the interface's limit, as the nimbus provider does.
fn check_batch(op: &str, len: usize) -> Result<(), String> {
    if len > wire::batch::MAX_BATCH {
        return Err(format!(
            "invalid payload for {op}: {op} got {len} keys or items, more than the {} one call may carry",
            wire::batch::MAX_BATCH
        ));
    }
    Ok(())
}

fn wrong_type(key: &str) -> String {
    format!("WRONGTYPE operation against key {key} holding the wrong kind of value")
}

/// A call the host saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The link name.
    pub binding: String,
    /// The contract id or call alias.
    pub namespace: String,
    /// The operation.
    pub operation: String,
}

/// The handler of a call alias: operation and payload in, reply or error text out.
pub type ActorFn = Rc<dyn Fn(&str, &[u8]) -> Result<Vec<u8>, String>>;

/// The host of one actor in a test.
#[derive(Default)]
pub struct TestHost {
    /// The actor's key-value store (its `default` link).
    pub kv: MemoryKv,
    actors: RefCell<BTreeMap<String, ActorFn>>,
    kv_down: Cell<bool>,
    calls: RefCell<Vec<Call>>,
    logs: RefCell<Vec<String>>,
}

impl TestHost {
    /// A host with an empty store and no other actors.
    pub fn new() -> Self {
        Self::default()
    }

    /// Routes calls to `alias` to `f`.
    pub fn route(&self, alias: &str, f: impl Fn(&str, &[u8]) -> Result<Vec<u8>, String> + 'static) {
        self.actors
            .borrow_mut()
            .insert(alias.to_string(), Rc::new(f));
    }

    /// Makes every key-value call fail (the provider is gone) or work again.
    pub fn set_kv_down(&self, down: bool) {
        self.kv_down.set(down);
    }

    /// The calls so far.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.borrow().clone()
    }

    /// The calls so far, forgotten.
    pub fn take_calls(&self) -> Vec<Call> {
        std::mem::take(&mut *self.calls.borrow_mut())
    }

    /// The log lines so far.
    pub fn logs(&self) -> Vec<String> {
        self.logs.borrow().clone()
    }

    /// The log lines so far, forgotten.
    pub fn take_logs(&self) -> Vec<String> {
        std::mem::take(&mut *self.logs.borrow_mut())
    }
}

impl HostCall for TestHost {
    fn host_call(
        &self,
        binding: &str,
        namespace: &str,
        operation: &str,
        payload: &[u8],
    ) -> Result<Vec<u8>, HostError> {
        self.route_call(binding, namespace, operation, payload)
            .map_err(HostError::new)
    }

    fn console_log(&self, msg: &str) {
        self.logs.borrow_mut().push(msg.to_string());
    }
}

impl TestHost {
    /// What the host answers `host_call` with, its error as text.
    fn route_call(
        &self,
        binding: &str,
        namespace: &str,
        operation: &str,
        payload: &[u8],
    ) -> Result<Vec<u8>, String> {
        self.calls.borrow_mut().push(Call {
            binding: binding.to_string(),
            namespace: namespace.to_string(),
            operation: operation.to_string(),
        });
        if namespace == KEYVALUE {
            if binding != LINK_NAME {
                return Err(format!(
                    "no link for contract {KEYVALUE} link name {binding}"
                ));
            }
            if self.kv_down.get() {
                return Err(format!("no responders for {KEYVALUE}"));
            }
            return self.kv.handle(operation, payload);
        }
        // Clone the handler out so no borrow is held while it runs.
        let handler = self.actors.borrow().get(namespace).cloned();
        match handler {
            Some(f) => f(operation, payload),
            None => Err(format!(
                "the target {namespace} was not found as an actor public key, an actor call alias, or as the contract ID in an existing link"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ServiceError;
    use crate::kv::Kv;

    #[test]
    fn kv_client_round_trips_through_the_wire_store() {
        let host = TestHost::new();
        let kv = Kv::new(&host);
        assert_eq!(kv.get("a").unwrap(), None);
        assert!(!kv.exists("a").unwrap());
        kv.set("a", "1").unwrap();
        assert_eq!(kv.get("a").unwrap(), Some("1".into()));
        assert!(kv.exists("a").unwrap());
        kv.del("a").unwrap();
        assert_eq!(kv.get("a").unwrap(), None);

        assert_eq!(kv.next_id("n").unwrap(), 1);
        assert_eq!(kv.next_id("n").unwrap(), 2);
        assert_eq!(kv.add("n", 5).unwrap(), 7);

        assert!(kv.set_add("s", "2").unwrap());
        assert!(!kv.set_add("s", "2").unwrap());
        assert!(kv.set_add("s", "10").unwrap());
        assert!(kv.set_add("t", "3").unwrap());
        assert_eq!(kv.id_set("s").unwrap(), vec![2, 10]);
        assert_eq!(
            kv.set_union(&["s".into(), "t".into(), "none".into()])
                .unwrap(),
            vec!["10", "2", "3"]
        );
        assert!(kv.set_remove("s", "2").unwrap());
        assert!(!kv.set_remove("s", "2").unwrap());
        assert_eq!(kv.set_query("s").unwrap(), vec!["10"]);

        kv.set_json("doc", &serde_json::json!({"x": 1})).unwrap();
        let doc: Option<serde_json::Value> = kv.get_json("doc").unwrap();
        assert_eq!(doc, Some(serde_json::json!({"x": 1})));

        // Every call went to the default link of the key-value contract.
        assert!(
            host.calls()
                .iter()
                .all(|c| c.binding == "default" && c.namespace == KEYVALUE)
        );
    }

    #[test]
    fn kv_failures_map_to_service_errors() {
        let host = TestHost::new();
        let kv = Kv::new(&host);
        host.kv.put("doc", "{not json");
        let err = kv.get_json::<serde_json::Value>("doc").unwrap_err();
        assert!(matches!(err, ServiceError::Internal { .. }), "{err}");

        host.kv.put("n", "-1");
        assert_eq!(kv.next_id("n").unwrap_err().status(), 500);
        host.kv.put("big", &i32::MAX.to_string());
        assert_eq!(kv.next_id("big").unwrap_err().status(), 503); // provider refuses

        host.set_kv_down(true);
        let err = kv.get("x").unwrap_err();
        assert_eq!(err.status(), 503);
        assert!(err.message().contains("key-value Get failed"), "{err}");
    }

    #[test]
    fn batched_reads_are_one_call_or_one_get_per_key_with_a_0x_provider() {
        let host = TestHost::new();
        let kv = Kv::new(&host);
        kv.set("a", "1").unwrap();
        kv.set_json("doc", &serde_json::json!({"x": 1})).unwrap();
        kv.set_add("set", "m").unwrap();
        let keys: Vec<String> = ["a", "missing", "a", "doc"].map(String::from).to_vec();
        let expected = vec![
            Some("1".to_string()),
            None,
            Some("1".to_string()),
            Some(r#"{"x":1}"#.to_string()),
        ];
        host.take_calls();
        assert_eq!(kv.get_many(&keys).unwrap(), expected);
        let ops: Vec<String> = host.take_calls().into_iter().map(|c| c.operation).collect();
        assert_eq!(ops, ["GetMany"]);
        assert!(kv.get_many(&[]).unwrap().is_empty());
        assert!(host.take_calls().is_empty(), "no keys, no call");

        // A provider without the extension: the same answer, one probe then one Get each.
        host.kv.set_batches(false);
        assert_eq!(kv.get_many(&keys).unwrap(), expected);
        let ops: Vec<String> = host.take_calls().into_iter().map(|c| c.operation).collect();
        assert_eq!(ops, ["GetMany", "Get", "Get", "Get", "Get"]);
        host.kv.set_batches(true);

        // Documents parse one by one; the first unreadable one is the error, as get_json's.
        let docs: Vec<Option<serde_json::Value>> = kv
            .get_json_many(&["doc".to_string(), "missing".to_string()])
            .unwrap();
        assert_eq!(docs, vec![Some(serde_json::json!({"x": 1})), None]);
        host.kv.put("bad", "{not json");
        let err = kv
            .get_json_many::<serde_json::Value>(&["doc".to_string(), "bad".to_string()])
            .unwrap_err();
        assert!(matches!(err, ServiceError::Internal { .. }), "{err}");
        assert!(err.message().contains("stored document bad"), "{err}");

        // A set among the keys fails the batch as Get would; an outage is unavailable.
        let err = kv
            .get_many(&["a".to_string(), "set".to_string()])
            .unwrap_err();
        assert_eq!(err.status(), 503);
        assert!(err.message().contains("key-value GetMany failed"), "{err}");
        host.set_kv_down(true);
        let err = kv.get_many(&keys).unwrap_err();
        assert_eq!(err.status(), 503);
        assert!(err.message().contains("no responders"), "{err}");
    }

    #[test]
    fn large_batched_reads_are_split_at_the_limit() {
        let host = TestHost::new();
        let kv = Kv::new(&host);
        let n = wire::batch::MAX_BATCH + 5;
        let keys: Vec<String> = (0..n).map(|i| format!("k{i}")).collect();
        kv.set("k0", "first").unwrap();
        kv.set(&keys[n - 1], "last").unwrap();
        host.take_calls();
        let values = kv.get_many(&keys).unwrap();
        assert_eq!(values.len(), n);
        assert_eq!(values[0].as_deref(), Some("first"));
        assert_eq!(values[n - 1].as_deref(), Some("last"));
        assert_eq!(values.iter().filter(|v| v.is_some()).count(), 2);
        assert_eq!(host.take_calls().len(), 2, "two GetMany calls");

        // The store refuses an oversized batch itself, as the provider does.
        let args = wire::GetManyArgs { keys };
        let err = host
            .kv
            .handle(wire::OP_GET_MANY, &encode(&args).unwrap())
            .unwrap_err();
        assert!(err.contains("more than the 1000"), "{err}");
    }

    #[test]
    fn the_store_answers_set_many_and_del_many() {
        let host = TestHost::new();
        let item = |k: &str, v: &str| wire::SetManyItem {
            key: k.into(),
            value: v.into(),
            expires: 0,
        };
        let args = wire::SetManyArgs {
            items: vec![item("a", "1"), item("b", "2"), item("a", "3")],
        };
        let r: wire::SetManyResponse = decode(
            "r",
            &host
                .kv
                .handle(wire::OP_SET_MANY, &encode(&args).unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(r.count, 3);
        assert_eq!(host.kv.value("a").as_deref(), Some("3"));
        let args = wire::DelManyArgs {
            keys: ["a", "a", "c"].map(String::from).to_vec(),
        };
        let r: wire::DelManyResponse = decode(
            "r",
            &host
                .kv
                .handle(wire::OP_DEL_MANY, &encode(&args).unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(r.deleted, 1);
        assert_eq!(host.kv.value("b").as_deref(), Some("2"));
    }

    #[test]
    fn unknown_aliases_fail_like_the_host() {
        let host = TestHost::new();
        let err = host
            .host_call("", "petclinic/nobody", "Op", b"")
            .unwrap_err();
        assert!(err.message().contains("petclinic/nobody"), "{err}");
        host.route("petclinic/echo", |op, p| Ok([op.as_bytes(), p].concat()));
        assert_eq!(
            host.host_call("", "petclinic/echo", "Op", b"!").unwrap(),
            b"Op!"
        );
    }
}
