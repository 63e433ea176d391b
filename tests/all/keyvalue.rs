//! The key-value provider's conformance suite: the same cases run against all four backends
//! (memory, file, and real redis-server and nats-server processes), each case once per
//! backend (`keyvalue::<backend>::<case>`), the batched operations of the nimbus extension
//! (`batches`, `batch_limits`, `batch_snapshots`, `provider_batches`) included. Then backend-specific cases: persistence of the
//! file store, Redis and NATS restarts mid-run, values written by other NATS clients, and the
//! provider's handling of bad links and bad invocations.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nimbus_provider_keyvalue::wire::{self, v0};
use nimbus_provider_keyvalue::{
    BackendConfig, KeyValueProvider, KvBackend, KvError, MAX_BATCH, Removal, SetItem, open_backend,
};
use nimbus_provider_sdk::{CallContext, LinkDefinition, Provider, ProviderError};
use nimbus_tests::auth::Role;
use nimbus_tests::servers::{NatsServer, RedisServer, free_port};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tempfile::TempDir;

/// A backend under test and whatever keeps it alive.
struct Fixture {
    /// Link values selecting this backend (for the provider cases).
    values: HashMap<String, String>,
    store: Arc<dyn KvBackend>,
    _dir: Option<TempDir>,
    _redis: Option<RedisServer>,
    _nats: Option<NatsServer>,
}

fn values(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

async fn open(values: &HashMap<String, String>) -> Arc<dyn KvBackend> {
    let config = BackendConfig::from_values(values).unwrap();
    open_backend(&config).await.unwrap()
}

impl Fixture {
    async fn memory() -> Self {
        let values = values(&[("backend", "memory")]);
        Fixture {
            store: open(&values).await,
            values,
            _dir: None,
            _redis: None,
            _nats: None,
        }
    }

    async fn file() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let values = values(&[("backend", "file"), ("path", dir.path().to_str().unwrap())]);
        Fixture {
            store: open(&values).await,
            values,
            _dir: Some(dir),
            _redis: None,
            _nats: None,
        }
    }

    async fn redis() -> Self {
        let redis = RedisServer::start();
        let values = values(&[("backend", "redis"), ("url", &redis.url())]);
        Fixture {
            store: open(&values).await,
            values,
            _dir: None,
            _redis: Some(redis),
            _nats: None,
        }
    }

    async fn nats() -> Self {
        let nats = NatsServer::start();
        let values = crate::lattice_support::nats_backend(&nats, "kvtest");
        Fixture {
            store: open(&values).await,
            values,
            _dir: None,
            _redis: None,
            _nats: Some(nats),
        }
    }
}

/// The backend-independent cases.
mod cases {
    use super::*;

    pub async fn strings(fx: &Fixture) {
        let s = &*fx.store;
        assert_eq!(s.get("missing").await.unwrap(), None);
        assert!(!s.exists("missing").await.unwrap());
        assert!(!s.del("missing").await.unwrap());

        s.set("greeting", "hello", None).await.unwrap();
        assert_eq!(s.get("greeting").await.unwrap().as_deref(), Some("hello"));
        assert!(s.exists("greeting").await.unwrap());
        s.set("greeting", "bonjour", None).await.unwrap();
        assert_eq!(s.get("greeting").await.unwrap().as_deref(), Some("bonjour"));
        assert!(s.del("greeting").await.unwrap());
        assert!(!s.del("greeting").await.unwrap());
        assert_eq!(s.get("greeting").await.unwrap(), None);

        // An empty value exists; unusual keys (empty, dots, spaces, non-ASCII) are keys.
        s.set("empty", "", None).await.unwrap();
        assert_eq!(s.get("empty").await.unwrap().as_deref(), Some(""));
        assert!(s.exists("empty").await.unwrap());
        for key in ["", "a.b", ".", "user:1 name", "clé=ü", "a=2Eb"] {
            s.set(key, &format!("v{key}"), None).await.unwrap();
        }
        for key in ["", "a.b", ".", "user:1 name", "clé=ü", "a=2Eb"] {
            assert_eq!(
                s.get(key).await.unwrap(),
                Some(format!("v{key}")),
                "{key:?}"
            );
        }
        // Values that look like the stores' own encoding stay plain strings.
        s.set("tricky", "\0nkv\x01x", None).await.unwrap();
        assert_eq!(
            s.get("tricky").await.unwrap().as_deref(),
            Some("\0nkv\x01x")
        );
    }

    pub async fn add(fx: &Fixture) {
        let s = &*fx.store;
        assert_eq!(s.add("counter", 5).await.unwrap(), 5);
        assert_eq!(s.add("counter", -7).await.unwrap(), -2);
        assert_eq!(s.get("counter").await.unwrap().as_deref(), Some("-2"));
        s.set("counter", "41", None).await.unwrap();
        assert_eq!(s.add("counter", 1).await.unwrap(), 42);
        assert_eq!(s.add("counter", 0).await.unwrap(), 42);

        s.set("word", "abc", None).await.unwrap();
        let err = s.add("word", 1).await.unwrap_err();
        assert!(matches!(err, KvError::NotAnInteger { .. }), "{err}");
        assert!(err.to_string().contains("\"word\""), "{err}");
        assert_eq!(s.get("word").await.unwrap().as_deref(), Some("abc"));

        s.set("big", &i64::MAX.to_string(), None).await.unwrap();
        let err = s.add("big", 1).await.unwrap_err();
        assert!(matches!(err, KvError::Overflow { .. }), "{err}");
        assert_eq!(
            s.get("big").await.unwrap(),
            Some(i64::MAX.to_string()),
            "a failed Add must not change the value"
        );
    }

    pub async fn lists(fx: &Fixture) {
        let s = &*fx.store;
        for (i, v) in ["a", "b", "c", "d"].iter().enumerate() {
            assert_eq!(s.list_push("l", v).await.unwrap(), i as u64 + 1);
        }
        let r = |a, b| async move { s.list_range("l", a, b).await.unwrap() };
        assert_eq!(r(0, -1).await, ["a", "b", "c", "d"]);
        assert_eq!(r(0, 0).await, ["a"]);
        assert_eq!(r(1, 2).await, ["b", "c"]);
        assert_eq!(r(-2, -1).await, ["c", "d"]);
        assert_eq!(r(-100, 1).await, ["a", "b"]);
        assert_eq!(r(2, 100).await, ["c", "d"]);
        assert_eq!(r(-1, -1).await, ["d"]);
        assert!(r(3, 1).await.is_empty());
        assert!(r(10, 20).await.is_empty());
        assert!(r(0, -10).await.is_empty());
        assert!(s.list_range("no-list", 0, -1).await.unwrap().is_empty());

        // l = a b c d b b
        assert_eq!(s.list_push("l", "b").await.unwrap(), 5);
        assert_eq!(s.list_push("l", "b").await.unwrap(), 6);
        let first = s.list_remove("l", "b", Removal::First).await.unwrap();
        assert_eq!((first.removed, first.len), (1, 5));
        assert_eq!(r(0, -1).await, ["a", "c", "d", "b", "b"]);
        let all = s.list_remove("l", "b", Removal::All).await.unwrap();
        assert_eq!((all.removed, all.len), (2, 3));
        assert_eq!(r(0, -1).await, ["a", "c", "d"]);
        let none = s.list_remove("l", "zzz", Removal::All).await.unwrap();
        assert_eq!((none.removed, none.len), (0, 3));
        let missing = s.list_remove("no-list", "a", Removal::All).await.unwrap();
        assert_eq!((missing.removed, missing.len), (0, 0));

        // Emptying a list deletes the key, as in Redis.
        for v in ["a", "c", "d"] {
            s.list_remove("l", v, Removal::All).await.unwrap();
        }
        assert!(!s.exists("l").await.unwrap());

        // Del clears a list (the interface's Clear).
        s.list_push("l2", "x").await.unwrap();
        assert!(s.del("l2").await.unwrap());
        assert!(s.list_range("l2", 0, -1).await.unwrap().is_empty());
    }

    pub async fn sets(fx: &Fixture) {
        let s = &*fx.store;
        let c = s.set_add("s1", "x").await.unwrap();
        assert!(c.changed);
        assert_eq!(c.len, 1);
        let c = s.set_add("s1", "x").await.unwrap();
        assert!(!c.changed);
        assert_eq!(c.len, 1);
        for m in ["b", "a"] {
            assert!(s.set_add("s1", m).await.unwrap().changed);
        }
        assert_eq!(s.set_members("s1").await.unwrap(), ["a", "b", "x"]);
        let c = s.set_remove("s1", "b").await.unwrap();
        assert!(c.changed);
        assert_eq!(c.len, 2);
        assert!(!s.set_remove("s1", "b").await.unwrap().changed);
        assert!(!s.set_remove("no-set", "b").await.unwrap().changed);
        assert!(s.set_members("no-set").await.unwrap().is_empty());

        for m in ["a", "y"] {
            s.set_add("s2", m).await.unwrap();
        }
        let keys = |ks: &[&str]| ks.iter().map(|k| k.to_string()).collect::<Vec<_>>();
        assert_eq!(
            s.set_union(&keys(&["s1", "s2", "no-set"])).await.unwrap(),
            ["a", "x", "y"]
        );
        assert_eq!(
            s.set_intersection(&keys(&["s1", "s2"])).await.unwrap(),
            ["a"]
        );
        assert!(
            s.set_intersection(&keys(&["s1", "no-set"]))
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            s.set_intersection(&keys(&["s1"])).await.unwrap(),
            ["a", "x"]
        );
        assert!(s.set_union(&[]).await.unwrap().is_empty());
        assert!(s.set_intersection(&[]).await.unwrap().is_empty());

        // Emptying a set deletes the key.
        s.set_remove("s2", "a").await.unwrap();
        let c = s.set_remove("s2", "y").await.unwrap();
        assert_eq!((c.changed, c.len), (true, 0));
        assert!(!s.exists("s2").await.unwrap());
        assert!(s.del("s1").await.unwrap());
        assert!(s.set_members("s1").await.unwrap().is_empty());
    }

    pub async fn wrong_types(fx: &Fixture) {
        let s = &*fx.store;
        s.set("str", "1", None).await.unwrap();
        s.list_push("list", "a").await.unwrap();
        s.set_add("set", "m").await.unwrap();
        let wrong = |r: Result<(), KvError>, what: &str| match r {
            Err(e @ KvError::WrongType { .. }) => {
                let msg = e.to_string();
                assert!(msg.contains("Del this one first"), "{what}: {msg}");
            }
            other => panic!("{what}: expected WrongType, got {other:?}"),
        };
        wrong(s.get("list").await.map(drop), "Get on a list");
        wrong(s.get("set").await.map(drop), "Get on a set");
        wrong(s.add("list", 1).await.map(drop), "Add on a list");
        wrong(s.list_push("str", "x").await.map(drop), "Push on a string");
        wrong(s.list_push("set", "x").await.map(drop), "Push on a set");
        wrong(s.list_range("set", 0, -1).await.map(drop), "Range on a set");
        wrong(
            s.list_remove("str", "1", Removal::All).await.map(drop),
            "ListItemDelete on a string",
        );
        wrong(s.set_add("list", "x").await.map(drop), "SetAdd on a list");
        wrong(
            s.set_remove("str", "x").await.map(drop),
            "SetRemove on a string",
        );
        wrong(s.set_members("list").await.map(drop), "SetQuery on a list");
        wrong(
            s.set_union(&["set".into(), "str".into()]).await.map(drop),
            "SetUnion with a string",
        );
        wrong(
            s.set_intersection(&["list".into(), "set".into()])
                .await
                .map(drop),
            "SetIntersection with a list",
        );
        // Nothing changed, and whole-key operations work on every kind.
        assert_eq!(s.list_range("list", 0, -1).await.unwrap(), ["a"]);
        assert_eq!(s.set_members("set").await.unwrap(), ["m"]);
        assert_eq!(s.get("str").await.unwrap().as_deref(), Some("1"));
        for k in ["str", "list", "set"] {
            assert!(s.exists(k).await.unwrap(), "{k}");
        }
        // Set replaces a value of any kind.
        s.set("list", "now a string", None).await.unwrap();
        assert_eq!(
            s.get("list").await.unwrap().as_deref(),
            Some("now a string")
        );
        assert!(s.del("set").await.unwrap());
    }

    pub async fn expiry(fx: &Fixture) {
        let s = &*fx.store;
        let ttl = Some(Duration::from_secs(1));
        s.set("short", "v", ttl).await.unwrap();
        s.set("forever", "v", None).await.unwrap();
        s.set("counter", "10", ttl).await.unwrap();
        assert_eq!(
            s.add("counter", 5).await.unwrap(),
            15,
            "Add keeps the expiry"
        );
        s.set("renewed", "v", ttl).await.unwrap();
        s.set("renewed", "w", None).await.unwrap(); // Set without expiry clears it
        assert_eq!(s.get("short").await.unwrap().as_deref(), Some("v"));
        assert!(s.exists("short").await.unwrap());
        // The batched forms honour expiry as the single ones do, each item its own.
        let item = |key: &str, expires| SetItem {
            key: key.into(),
            value: format!("b-{key}"),
            expires,
        };
        s.set_many(&[
            item("batch-short", ttl),
            item("batch-forever", None),
            item("batch-renewed", ttl),
            item("batch-renewed", None),
            item("batch-del", ttl),
        ])
        .await
        .unwrap();
        let batch_keys: Vec<String> = ["batch-short", "batch-forever", "batch-renewed", "short"]
            .map(String::from)
            .to_vec();
        assert_eq!(
            s.get_many(&batch_keys).await.unwrap(),
            [
                Some("b-batch-short".to_string()),
                Some("b-batch-forever".to_string()),
                Some("b-batch-renewed".to_string()),
                Some("v".to_string())
            ]
        );

        tokio::time::sleep(Duration::from_millis(1600)).await;

        assert_eq!(
            s.get_many(&batch_keys).await.unwrap(),
            [
                None,
                Some("b-batch-forever".to_string()),
                Some("b-batch-renewed".to_string()),
                None
            ],
            "expired keys read as absent in a batch"
        );
        assert_eq!(s.get("batch-short").await.unwrap(), None);
        assert_eq!(
            s.del_many(&["batch-del".to_string(), "batch-forever".to_string()])
                .await
                .unwrap(),
            1,
            "an expired key is not counted as deleted"
        );

        assert_eq!(s.get("short").await.unwrap(), None);
        assert!(!s.exists("short").await.unwrap());
        assert!(
            !s.del("short").await.unwrap(),
            "an expired key is not deleted"
        );
        assert_eq!(s.get("counter").await.unwrap(), None);
        assert_eq!(
            s.add("counter", 2).await.unwrap(),
            2,
            "expired counters restart"
        );
        assert_eq!(s.get("forever").await.unwrap().as_deref(), Some("v"));
        assert_eq!(s.get("renewed").await.unwrap().as_deref(), Some("w"));
        // An expired string no longer blocks list operations on its key.
        s.set("was-string", "x", ttl).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1200)).await;
        assert_eq!(s.list_push("was-string", "item").await.unwrap(), 1);
    }

    pub async fn concurrent_adds(fx: &Fixture) {
        const N: i64 = 1000;
        let tasks: Vec<_> = (0..N)
            .map(|_| {
                let store = fx.store.clone();
                tokio::spawn(async move { store.add("hits", 1).await })
            })
            .collect();
        let mut seen = Vec::with_capacity(tasks.len());
        for t in tasks {
            seen.push(t.await.unwrap().unwrap());
        }
        seen.sort_unstable();
        assert_eq!(
            seen,
            (1..=N).collect::<Vec<_>>(),
            "every intermediate value must be returned exactly once"
        );
        assert_eq!(fx.store.get("hits").await.unwrap(), Some(N.to_string()));
    }

    fn key_list(keys: &[&str]) -> Vec<String> {
        keys.iter().map(|k| k.to_string()).collect()
    }

    fn some(values: &[Option<&str>]) -> Vec<Option<String>> {
        values.iter().map(|v| v.map(str::to_string)).collect()
    }

    fn item(key: &str, value: &str) -> SetItem {
        SetItem {
            key: key.into(),
            value: value.into(),
            expires: None,
        }
    }

    /// The batched operations (nimbus extension) mean the single-key ones run in order.
    pub async fn batches(fx: &Fixture) {
        let s = &*fx.store;
        // Empty batches are valid and do nothing.
        assert!(s.get_many(&[]).await.unwrap().is_empty());
        s.set_many(&[]).await.unwrap();
        assert_eq!(s.del_many(&[]).await.unwrap(), 0);

        s.set_many(&[
            item("a", "1"),
            item("b", "2"),
            item("a", "3"),
            item("", "empty key"),
            item("a.b", "dotted"),
            item("clé=ü", "ü"),
            item("a=2Eb", "escape-like"),
            item("e", ""),
            item("tricky", "\0nkv\x01x"),
        ])
        .await
        .unwrap();
        // Applied in order: the last of duplicate keys wins. Unusual keys are keys, and
        // batched writes read back singly (the same encoding).
        assert_eq!(s.get("a").await.unwrap().as_deref(), Some("3"));
        for (k, v) in [
            ("", "empty key"),
            ("a.b", "dotted"),
            ("clé=ü", "ü"),
            ("a=2Eb", "escape-like"),
            ("e", ""),
            ("tricky", "\0nkv\x01x"),
        ] {
            assert_eq!(s.get(k).await.unwrap().as_deref(), Some(v), "{k:?}");
        }
        // Values in key order, missing keys absent, a key asked twice answered twice.
        assert_eq!(
            s.get_many(&key_list(&[
                "b", "missing", "a", "b", "", "a.b", "e", "clé=ü"
            ]))
            .await
            .unwrap(),
            some(&[
                Some("2"),
                None,
                Some("3"),
                Some("2"),
                Some("empty key"),
                Some("dotted"),
                Some(""),
                Some("ü")
            ])
        );
        // Single-key writes are read by batches, counters included.
        s.set("single", "s", None).await.unwrap();
        s.add("n", 5).await.unwrap();
        assert_eq!(
            s.get_many(&key_list(&["single", "n"])).await.unwrap(),
            some(&[Some("s"), Some("5")])
        );
        // Set replaces a value of any kind, so SetMany does.
        s.list_push("l", "x").await.unwrap();
        s.set_add("t", "m").await.unwrap();
        s.set_many(&[item("l", "now a string"), item("t", "too")])
            .await
            .unwrap();
        assert_eq!(
            s.get_many(&key_list(&["l", "t"])).await.unwrap(),
            some(&[Some("now a string"), Some("too")])
        );
        // A list or a set in the batch fails it as Get would, naming that key.
        s.list_push("list", "x").await.unwrap();
        s.set_add("set", "m").await.unwrap();
        for key in ["list", "set"] {
            match s.get_many(&key_list(&["a", key, "b"])).await {
                Err(e @ KvError::WrongType { .. }) => {
                    let msg = e.to_string();
                    assert!(msg.contains(&format!("{key:?}")), "{msg}");
                    assert!(msg.contains("GetMany"), "{msg}");
                    assert!(msg.contains("Del this one first"), "{msg}");
                }
                other => panic!("GetMany over a {key}: expected WrongType, got {other:?}"),
            }
        }
        // DelMany deletes whatever the keys hold and counts each existing key once.
        assert_eq!(
            s.del_many(&key_list(&["a", "a", "missing", "list", "set", ""]))
                .await
                .unwrap(),
            4
        );
        assert_eq!(
            s.get_many(&key_list(&["a", "list", "set", "", "b"]))
                .await
                .unwrap(),
            some(&[None, None, None, None, Some("2")])
        );
        assert!(s.list_range("list", 0, -1).await.unwrap().is_empty());
        assert!(!s.exists("set").await.unwrap());
        assert_eq!(s.del_many(&key_list(&["a"])).await.unwrap(), 0);
    }

    fn assert_too_large<T: std::fmt::Debug>(r: Result<T, KvError>, operation: &str) {
        match r {
            Err(e @ KvError::BatchTooLarge { .. }) => {
                let msg = e.to_string();
                assert!(msg.starts_with(operation), "{msg}");
                assert!(
                    msg.contains(&format!("{}", MAX_BATCH + 1)) && msg.contains("split"),
                    "{msg}"
                );
            }
            other => panic!("{operation}: expected BatchTooLarge, got {other:?}"),
        }
    }

    /// Batch sizes: MAX_BATCH is served, one more is refused whole before any work; keys
    /// and values of every size the single-key operations take are taken.
    pub async fn batch_limits(fx: &Fixture) {
        let s = &*fx.store;
        let keys: Vec<String> = (0..MAX_BATCH).map(|i| format!("bulk:{i}")).collect();
        let items: Vec<SetItem> = keys.iter().map(|k| item(k, &format!("v-{k}"))).collect();
        s.set_many(&items).await.unwrap();
        let values = s.get_many(&keys).await.unwrap();
        assert_eq!(values.len(), MAX_BATCH);
        for (k, v) in keys.iter().zip(&values) {
            assert_eq!(v.as_deref(), Some(format!("v-{k}").as_str()));
        }

        let mut over = keys.clone();
        over.push("bulk:extra".into());
        let mut over_items = items.clone();
        over_items.push(item("bulk:extra", "x"));
        assert_too_large(s.get_many(&over).await, "GetMany");
        assert_too_large(s.set_many(&over_items).await, "SetMany");
        assert_too_large(s.del_many(&over).await, "DelMany");
        assert_eq!(s.get("bulk:extra").await.unwrap(), None, "nothing written");
        assert!(s.exists("bulk:0").await.unwrap(), "nothing deleted");

        assert_eq!(s.del_many(&keys).await.unwrap(), MAX_BATCH as u64);
        assert_eq!(s.get_many(&keys[..3]).await.unwrap(), [None, None, None]);

        // Long keys (escaped three times over on NATS) and large values, in one batch.
        let long_keys = [
            "k".repeat(LONG_KEY),
            ".".repeat(LONG_KEY),
            "é".repeat(LONG_KEY / 2),
        ];
        let big = "x".repeat(64 * 1024);
        let batch: Vec<SetItem> = long_keys
            .iter()
            .map(|k| item(k, &big))
            .chain((0..8).map(|i| item(&format!("big:{i}"), &big)))
            .collect();
        s.set_many(&batch).await.unwrap();
        let batch_keys: Vec<String> = batch.iter().map(|i| i.key.clone()).collect();
        let values = s.get_many(&batch_keys).await.unwrap();
        assert!(values.iter().all(|v| v.as_deref() == Some(big.as_str())));
        for key in &long_keys {
            assert_eq!(s.get(key).await.unwrap().as_deref(), Some(big.as_str()));
        }
        assert_eq!(s.del_many(&batch_keys).await.unwrap(), batch.len() as u64);
    }

    /// Where a batch is atomic (memory, file, Redis), a reader never sees half of one; on
    /// NATS (no multi-key transactions) only the final state is checked.
    pub async fn batch_snapshots(fx: &Fixture) {
        const ROUNDS: usize = 60;
        let keys = key_list(&["snap:x", "snap:y", "snap:z"]);
        let writer = {
            let store = fx.store.clone();
            let keys = keys.clone();
            tokio::spawn(async move {
                for round in 0..ROUNDS {
                    let v = round.to_string();
                    let items: Vec<SetItem> = keys.iter().map(|k| item(k, &v)).collect();
                    store.set_many(&items).await.unwrap();
                }
            })
        };
        let atomic = fx.store.kind() != "nats";
        let mut torn = 0;
        while !writer.is_finished() {
            let values = fx.store.get_many(&keys).await.unwrap();
            if values.iter().any(|v| v != &values[0]) {
                torn += 1;
            }
        }
        writer.await.unwrap();
        if atomic {
            assert_eq!(torn, 0, "a GetMany saw part of a SetMany");
        }
        let last = (ROUNDS - 1).to_string();
        assert_eq!(
            fx.store.get_many(&keys).await.unwrap(),
            some(&[Some(&last), Some(&last), Some(&last)])
        );
    }

    /// The batched operations through the provider's msgpack interface, and their bad inputs.
    pub async fn provider_batches(fx: &Fixture) {
        let provider = KeyValueProvider::new();
        let actor = "MACTORBATCHES";
        link(&provider, actor, fx.values.clone()).await.unwrap();
        let p = &provider;
        let wire_item = |key: &str, value: &str, expires: i32| wire::SetManyItem {
            key: key.into(),
            value: value.into(),
            expires,
        };

        let r: wire::SetManyResponse = call(
            p,
            actor,
            "SetMany",
            &wire::SetManyArgs {
                items: vec![
                    wire_item("a", "1", 0),
                    wire_item("b", "2", 3600),
                    wire_item("a", "3", 0),
                ],
            },
        )
        .await;
        assert_eq!(r.count, 3);
        let r: wire::GetManyResponse = call(
            p,
            actor,
            "GetMany",
            &wire::GetManyArgs {
                keys: key_list(&["a", "nope", "b"]),
            },
        )
        .await;
        let got: Vec<(&str, bool)> = r
            .values
            .iter()
            .map(|v| (v.value.as_str(), v.exists))
            .collect();
        assert_eq!(got, [("3", true), ("", false), ("2", true)]);
        // What a single Get of the same key answers.
        let single: wire::GetResponse =
            call(p, actor, "Get", &wire::GetArgs { key: "a".into() }).await;
        assert_eq!(single, r.values[0]);
        let r: wire::GetManyResponse =
            call(p, actor, "GetMany", &wire::GetManyArgs { keys: vec![] }).await;
        assert!(r.values.is_empty());
        let r: wire::DelManyResponse = call(
            p,
            actor,
            "DelMany",
            &wire::DelManyArgs {
                keys: key_list(&["a", "a", "nope"]),
            },
        )
        .await;
        assert_eq!(r.deleted, 1);

        let bad_payload = |r: Result<Vec<u8>, ProviderError>, op: &str| match r {
            Err(ProviderError::BadPayload { operation, reason }) => {
                assert_eq!(operation, op);
                reason
            }
            other => panic!("{op}: expected BadPayload, got {other:?}"),
        };
        let invoke = move |op: &'static str, payload: Vec<u8>| async move {
            p.handle_invocation(&ctx(actor), op, payload).await
        };

        // Over the limit: refused whole, with the limit in the message.
        let keys: Vec<String> = (0..=MAX_BATCH).map(|i| format!("k{i}")).collect();
        for op in ["GetMany", "DelMany"] {
            let reason = bad_payload(
                invoke(op, encode(&wire::GetManyArgs { keys: keys.clone() })).await,
                op,
            );
            assert!(reason.contains(&MAX_BATCH.to_string()), "{reason}");
        }
        let items: Vec<wire::SetManyItem> = keys.iter().map(|k| wire_item(k, "v", 0)).collect();
        let reason = bad_payload(
            invoke("SetMany", encode(&wire::SetManyArgs { items })).await,
            "SetMany",
        );
        assert!(reason.contains("split the batch"), "{reason}");
        let r: wire::GetResponse = call(p, actor, "Get", &wire::GetArgs { key: "k0".into() }).await;
        assert!(!r.exists, "an oversized SetMany writes nothing");

        // A negative expiry anywhere refuses the batch before anything is written.
        let reason = bad_payload(
            invoke(
                "SetMany",
                encode(&wire::SetManyArgs {
                    items: vec![wire_item("first", "v", 0), wire_item("second", "v", -5)],
                }),
            )
            .await,
            "SetMany",
        );
        assert!(
            reason.contains("item 1")
                && reason.contains("\"second\"")
                && reason.contains("expires"),
            "{reason}"
        );
        let r: wire::GetResponse = call(
            p,
            actor,
            "Get",
            &wire::GetArgs {
                key: "first".into(),
            },
        )
        .await;
        assert!(!r.exists, "a refused SetMany writes nothing");

        // Shapes that are not the operation's request.
        for (op, payload) in [
            ("GetMany", encode(&wire::GetArgs { key: "k".into() })),
            ("GetMany", encode(&values(&[("keys", "not a list")]))),
            ("SetMany", encode(&wire::GetManyArgs { keys: vec![] })),
            ("DelMany", vec![0xc1]),
            ("DelMany", Vec::new()),
        ] {
            bad_payload(invoke(op, payload).await, op);
        }

        // A wrong-type key reaches the actor as the store's error, naming the key.
        let _: wire::ListResponse = call(
            p,
            actor,
            "Push",
            &wire::PushArgs {
                key: "list".into(),
                value: "x".into(),
            },
        )
        .await;
        let err = invoke(
            "GetMany",
            encode(&wire::GetManyArgs {
                keys: key_list(&["b", "list"]),
            }),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(&err, ProviderError::Backend(m) if m.contains("\"list\"")),
            "{err}"
        );

        // The extension has no 0.x form.
        for op in ["KeyValue.GetMany", "KeyValue.SetMany", "KeyValue.DelMany"] {
            match invoke(op, encode(&wire::GetManyArgs { keys: vec![] })).await {
                Err(ProviderError::UnknownOperation { operation, .. }) => assert_eq!(operation, op),
                other => panic!("{op}: expected UnknownOperation, got {other:?}"),
            }
        }
    }

    /// All 14 operations (and the 0.x forms) through the provider's msgpack interface.
    pub async fn provider_roundtrip(fx: &Fixture) {
        let provider = KeyValueProvider::new();
        let actor = "MACTORROUNDTRIP";
        link(&provider, actor, fx.values.clone()).await.unwrap();
        let p = &provider;

        let r: wire::SetResponse = call(
            p,
            actor,
            "Set",
            &wire::SetArgs {
                key: "k".into(),
                value: "v".into(),
                expires: 0,
            },
        )
        .await;
        assert_eq!(r.value, "v");
        let r: wire::GetResponse = call(p, actor, "Get", &wire::GetArgs { key: "k".into() }).await;
        assert_eq!((r.value.as_str(), r.exists), ("v", true));
        let r: wire::GetResponse =
            call(p, actor, "Get", &wire::GetArgs { key: "nope".into() }).await;
        assert_eq!((r.value.as_str(), r.exists), ("", false));
        let r: wire::GetResponse = call(
            p,
            actor,
            "KeyExists",
            &wire::KeyExistsArgs { key: "k".into() },
        )
        .await;
        assert_eq!((r.value.as_str(), r.exists), ("", true));
        let r: wire::DelResponse = call(p, actor, "Del", &wire::DelArgs { key: "k".into() }).await;
        assert_eq!(r.key, "k");
        let r: wire::GetResponse = call(
            p,
            actor,
            "KeyExists",
            &wire::KeyExistsArgs { key: "k".into() },
        )
        .await;
        assert!(!r.exists);

        for expected in [3, 6] {
            let r: wire::AddResponse = call(
                p,
                actor,
                "Add",
                &wire::AddArgs {
                    key: "n".into(),
                    value: 3,
                },
            )
            .await;
            assert_eq!(r.value, expected);
        }

        for (i, v) in ["a", "b", "a"].iter().enumerate() {
            let r: wire::ListResponse = call(
                p,
                actor,
                "Push",
                &wire::PushArgs {
                    key: "l".into(),
                    value: v.to_string(),
                },
            )
            .await;
            assert_eq!(r.new_count, i as i32 + 1);
        }
        let range = |start, stop| wire::RangeArgs {
            key: "l".into(),
            start,
            stop,
        };
        let r: wire::ListRangeResponse = call(p, actor, "Range", &range(0, -1)).await;
        assert_eq!(r.values, ["a", "b", "a"]);
        let r: wire::ListRangeResponse = call(p, actor, "Range", &range(-2, -1)).await;
        assert_eq!(r.values, ["b", "a"]);
        let r: wire::ListResponse = call(
            p,
            actor,
            "ListItemDelete",
            &wire::ListItemDeleteArgs {
                key: "l".into(),
                value: "a".into(),
            },
        )
        .await;
        assert_eq!(
            r.new_count, 2,
            "ListItemDelete reports how many were removed"
        );
        let r: wire::DelResponse =
            call(p, actor, "Clear", &wire::ClearArgs { key: "l".into() }).await;
        assert_eq!(r.key, "l");
        let r: wire::ListRangeResponse = call(p, actor, "Range", &range(0, -1)).await;
        assert!(r.values.is_empty());

        let member = |key: &str, value: &str| wire::SetAddArgs {
            key: key.into(),
            value: value.into(),
        };
        for (key, value, added) in [
            ("s1", "x", 1),
            ("s1", "y", 1),
            ("s1", "x", 0),
            ("s2", "y", 1),
        ] {
            let r: wire::SetOperationResponse = call(p, actor, "SetAdd", &member(key, value)).await;
            assert_eq!(r.new_count, added, "SetAdd {key} {value}");
        }
        let r: wire::SetQueryResponse = call(
            p,
            actor,
            "SetQuery",
            &wire::SetQueryArgs { key: "s1".into() },
        )
        .await;
        assert_eq!(r.values, ["x", "y"]);
        let keys = vec!["s1".to_string(), "s2".to_string()];
        let r: wire::SetQueryResponse = call(
            p,
            actor,
            "SetUnion",
            &wire::SetUnionArgs { keys: keys.clone() },
        )
        .await;
        assert_eq!(r.values, ["x", "y"]);
        let r: wire::SetQueryResponse = call(
            p,
            actor,
            "SetIntersection",
            &wire::SetIntersectionArgs { keys },
        )
        .await;
        assert_eq!(r.values, ["y"]);
        for removed in [1, 0] {
            let r: wire::SetOperationResponse = call(
                p,
                actor,
                "SetRemove",
                &wire::SetRemoveArgs {
                    key: "s1".into(),
                    value: "x".into(),
                },
            )
            .await;
            assert_eq!(r.new_count, removed);
        }

        // The 0.x wasmbus forms of the same store.
        let r: wire::GetResponse = call(p, actor, "KeyValue.Get", &"n").await;
        assert_eq!((r.value.as_str(), r.exists), ("6", true));
        let n: i32 = call(
            p,
            actor,
            "KeyValue.Increment",
            &v0::IncrementRequest {
                key: "n".into(),
                value: -1,
            },
        )
        .await;
        assert_eq!(n, 5);
        let set = v0::SetRequest {
            key: "k0".into(),
            value: "v0".into(),
            expires: 0,
        };
        let out = provider
            .handle_invocation(&ctx(actor), "KeyValue.Set", encode(&set))
            .await
            .unwrap();
        assert!(out.is_empty(), "0.x Set has no output");
        let exists: bool = call(p, actor, "KeyValue.Contains", &"k0").await;
        assert!(exists);
        let item = |value: &str| v0::ListItemRequest {
            list_name: "l0".into(),
            value: value.into(),
        };
        let len: u32 = call(p, actor, "KeyValue.ListAdd", &item("a")).await;
        assert_eq!(len, 1);
        let len: u32 = call(p, actor, "KeyValue.ListAdd", &item("a")).await;
        assert_eq!(len, 2);
        let found: bool = call(p, actor, "KeyValue.ListDel", &item("a")).await;
        assert!(found, "ListDel removes the first occurrence");
        let values: Vec<String> = call(
            p,
            actor,
            "KeyValue.ListRange",
            &v0::ListRangeRequest {
                list_name: "l0".into(),
                start: 0,
                stop: -1,
            },
        )
        .await;
        assert_eq!(values, ["a"]);
        let cleared: bool = call(p, actor, "KeyValue.ListClear", &"l0").await;
        assert!(cleared);
        let added: u32 = call(
            p,
            actor,
            "KeyValue.SetAdd",
            &v0::SetMemberRequest {
                set_name: "s0".into(),
                value: "m".into(),
            },
        )
        .await;
        assert_eq!(added, 1);
        let members: Vec<String> = call(p, actor, "KeyValue.SetQuery", &"s0").await;
        assert_eq!(members, ["m"]);
        let union: Vec<String> = call(
            p,
            actor,
            "KeyValue.SetUnion",
            &vec!["s0".to_string(), "s2".to_string()],
        )
        .await;
        assert_eq!(union, ["m", "y"]);
        let deleted: bool = call(p, actor, "KeyValue.Del", &"k0").await;
        assert!(deleted);
        let deleted: bool = call(p, actor, "KeyValue.Del", &"k0").await;
        assert!(!deleted);
        // A 0.2 name under the 0.x prefix runs the 0.2 operation.
        let r: wire::ListResponse = call(
            p,
            actor,
            "KeyValue.Push",
            &wire::PushArgs {
                key: "lp".into(),
                value: "z".into(),
            },
        )
        .await;
        assert_eq!(r.new_count, 1);

        // Store errors reach the actor as backend errors with the store's explanation.
        let err = provider
            .handle_invocation(
                &ctx(actor),
                "Add",
                encode(&wire::AddArgs {
                    key: "s2".into(),
                    value: 1,
                }),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(&err, ProviderError::Backend(m) if m.contains("\"s2\"")),
            "{err}"
        );
    }
}

fn ctx(actor: &str) -> CallContext {
    CallContext {
        actor_id: actor.to_string(),
        link_name: "default".to_string(),
    }
}

fn encode<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    rmp_serde::to_vec_named(value).unwrap()
}

async fn link(
    provider: &KeyValueProvider,
    actor: &str,
    values: HashMap<String, String>,
) -> Result<(), ProviderError> {
    let link = LinkDefinition::new(actor, "VKEYVALUE", "default", "wasmcloud:keyvalue", values);
    provider.put_link(&link).await
}

async fn call<R: DeserializeOwned>(
    provider: &KeyValueProvider,
    actor: &str,
    operation: &str,
    args: &(impl Serialize + ?Sized),
) -> R {
    let out = provider
        .handle_invocation(&ctx(actor), operation, encode(args))
        .await
        .unwrap_or_else(|e| panic!("{operation} failed: {e}"));
    rmp_serde::from_slice(&out)
        .unwrap_or_else(|e| panic!("{operation} returned an undecodable response: {e}"))
}

/// Instantiates every case for every backend as `keyvalue::<backend>::<case>`: the one
/// conformance suite.
macro_rules! conformance {
    (backends: [$($backend:ident),*], cases: $cases:tt) => {
        $(conformance!(@backend $backend $cases);)*
    };
    (@backend $backend:ident [$($case:ident),*]) => {
        mod $backend {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let fx = Fixture::$backend().await;
                    cases::$case(&fx).await;
                }
            )*
        }
    };
}

/// The longest key [`cases::batch_limits`] writes, in bytes (the `é` key is the same size).
const LONG_KEY: usize = 1000;

conformance!(
    backends: [memory, file, redis, nats],
    cases: [
        strings,
        add,
        lists,
        sets,
        wrong_types,
        expiry,
        concurrent_adds,
        provider_roundtrip,
        batches,
        batch_limits,
        batch_snapshots,
        provider_batches
    ]
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_store_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let vals = values(&[("backend", "file"), ("path", dir.path().to_str().unwrap())]);
    {
        let s = open(&vals).await;
        s.set("name", "nimbus", None).await.unwrap();
        s.set("long-lived", "yes", Some(Duration::from_secs(3600)))
            .await
            .unwrap();
        s.set("short-lived", "no", Some(Duration::from_secs(1)))
            .await
            .unwrap();
        assert_eq!(s.add("n", 41).await.unwrap(), 41);
        s.list_push("l", "a").await.unwrap();
        s.list_push("l", "b").await.unwrap();
        s.set_add("s", "m").await.unwrap();
        // A second link to the same directory shares the open database.
        let again = open(&vals).await;
        assert_eq!(again.get("name").await.unwrap().as_deref(), Some("nimbus"));
    }
    assert!(dir.path().join("keyvalue.redb").is_file());
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let s = open(&vals).await;
    assert_eq!(s.get("name").await.unwrap().as_deref(), Some("nimbus"));
    assert_eq!(s.get("long-lived").await.unwrap().as_deref(), Some("yes"));
    assert_eq!(s.get("short-lived").await.unwrap(), None);
    assert_eq!(s.add("n", 1).await.unwrap(), 42);
    assert_eq!(s.list_range("l", 0, -1).await.unwrap(), ["a", "b"]);
    assert_eq!(s.set_members("s").await.unwrap(), ["m"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_mid_run_recovers() {
    let mut redis = RedisServer::start();
    let s = open(&values(&[("backend", "redis"), ("url", &redis.url())])).await;
    assert_eq!(s.add("n", 1).await.unwrap(), 1);

    redis.restart(); // persistence is off: the data is gone, the port is the same

    // The first request may see the dropped connection; the manager reconnects.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut failures = 0;
    loop {
        match s.set("after", "restart", None).await {
            Ok(()) => break,
            Err(e) => {
                assert!(matches!(e, KvError::Unavailable { .. }), "{e}");
                failures += 1;
                assert!(Instant::now() < deadline, "Redis never came back: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    assert!(failures <= 20, "{failures} failures before reconnecting");
    assert_eq!(s.get("after").await.unwrap().as_deref(), Some("restart"));
    assert_eq!(
        s.add("n", 1).await.unwrap(),
        1,
        "the restarted Redis is empty"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_restart_mid_run_recovers_with_data() {
    let mut nats = NatsServer::start();
    let s = open(&crate::lattice_support::nats_backend(&nats, "restarts")).await;
    assert_eq!(s.add("n", 1).await.unwrap(), 1);

    nats.restart(); // JetStream's store survives: same directory

    let deadline = Instant::now() + Duration::from_secs(20);
    let n = loop {
        match s.add("n", 1).await {
            Ok(n) => break n,
            Err(e) => {
                assert!(Instant::now() < deadline, "NATS never came back: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    assert_eq!(n, 2, "the counter survived the restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_values_written_by_other_clients_are_strings() {
    let nats = NatsServer::start();
    let s = open(&crate::lattice_support::nats_backend(&nats, "shared")).await;
    // Another client of the data account (the bucket is not the lattice account's).
    let client = nats.connect_as(Role::Keyvalue).await;
    let kv = async_nats::jetstream::new(client)
        .get_key_value("shared")
        .await
        .unwrap();
    kv.put("greeting", "hello".into()).await.unwrap();
    kv.put("visits", "41".into()).await.unwrap();
    assert_eq!(s.get("greeting").await.unwrap().as_deref(), Some("hello"));
    assert_eq!(s.add("visits", 1).await.unwrap(), 42);
    // ...and ours read plainly there (keys outside the NATS alphabet are escaped).
    s.set("plain", "text", None).await.unwrap();
    assert_eq!(kv.get("plain").await.unwrap().unwrap(), "text");
    assert_eq!(kv.get("visits").await.unwrap().unwrap(), "42");
    s.set("a.b", "dotted", None).await.unwrap();
    assert_eq!(kv.get("a=2Eb").await.unwrap().unwrap(), "dotted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_links_are_rejected_and_other_actors_keep_working() {
    let provider = KeyValueProvider::new();
    assert_eq!(provider.contract_id(), "wasmcloud:keyvalue");
    link(&provider, "MGOOD", HashMap::new()).await.unwrap();

    let reason = |r: Result<(), ProviderError>| match r {
        Err(ProviderError::BadLink { actor_id, reason }) => {
            assert_eq!(actor_id, "MBAD");
            reason
        }
        other => panic!("expected BadLink, got {other:?}"),
    };

    let r = reason(link(&provider, "MBAD", values(&[("backend", "cassandra")])).await);
    assert!(
        r.contains("`backend`") && r.contains("\"cassandra\""),
        "{r}"
    );
    assert!(r.contains("memory, file, redis, nats"), "{r}");

    let r = reason(link(&provider, "MBAD", values(&[("backend", "file")])).await);
    assert!(r.contains("`path`"), "{r}");

    let r = reason(
        link(
            &provider,
            "MBAD",
            values(&[("backend", "nats"), ("url", "nats://127.0.0.1:1")]),
        )
        .await,
    );
    assert!(r.contains("`bucket`"), "{r}");

    // Nothing listens on the port: refused fast, with the URL in the message.
    let url = format!("redis://127.0.0.1:{}", free_port());
    let started = Instant::now();
    let r = reason(
        link(
            &provider,
            "MBAD",
            values(&[
                ("backend", "redis"),
                ("url", &url),
                ("connect_timeout_ms", "200"),
            ]),
        )
        .await,
    );
    assert!(
        r.contains(&url) && r.contains("redis-server is running"),
        "{r}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "rejecting an unreachable Redis took {:?}",
        started.elapsed()
    );

    let url = format!("nats://127.0.0.1:{}", free_port());
    let r = reason(
        link(
            &provider,
            "MBAD",
            values(&[
                ("backend", "nats"),
                ("url", &url),
                ("bucket", "b"),
                ("connect_timeout_ms", "200"),
            ]),
        )
        .await,
    );
    assert!(r.contains(&url), "{r}");

    // The rejected actor stays unlinked; the good one is served.
    let err = provider
        .handle_invocation(
            &ctx("MBAD"),
            "Get",
            encode(&wire::GetArgs { key: "k".into() }),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::NotLinked { .. }), "{err}");
    let r: wire::AddResponse = call(
        &provider,
        "MGOOD",
        "Add",
        &wire::AddArgs {
            key: "n".into(),
            value: 2,
        },
    )
    .await;
    assert_eq!(r.value, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_invocations_get_typed_errors() {
    let provider = KeyValueProvider::new();
    link(&provider, "MA", HashMap::new()).await.unwrap();

    // Not msgpack at all, a map missing fields, a wrong field type, an empty payload.
    for (op, payload) in [
        ("Get", vec![0xc1, 0x00]),
        ("Set", encode(&wire::GetArgs { key: "k".into() })),
        ("Add", encode(&values(&[("key", "k"), ("value", "one")]))),
        ("Range", Vec::new()),
        ("KeyValue.Increment", vec![0x93]),
    ] {
        match provider.handle_invocation(&ctx("MA"), op, payload).await {
            Err(ProviderError::BadPayload { operation, reason }) => {
                assert_eq!(operation, op);
                assert!(!reason.is_empty());
            }
            other => panic!("{op}: expected BadPayload, got {other:?}"),
        }
    }

    let negative = wire::SetArgs {
        key: "k".into(),
        value: "v".into(),
        expires: -1,
    };
    let err = provider
        .handle_invocation(&ctx("MA"), "Set", encode(&negative))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ProviderError::BadPayload { reason, .. } if reason.contains("expires")),
        "{err}"
    );

    for op in [
        "Increment",
        "get",
        "KeyValue.Keys",
        "KeyValue.Frobnicate",
        "",
    ] {
        match provider
            .handle_invocation(&ctx("MA"), op, encode("k"))
            .await
        {
            Err(ProviderError::UnknownOperation {
                contract_id,
                operation,
            }) => {
                assert_eq!(contract_id, "wasmcloud:keyvalue");
                assert_eq!(operation, op);
            }
            other => panic!("{op:?}: expected UnknownOperation, got {other:?}"),
        }
    }

    // Removing the link drops the actor's store.
    provider.delete_link("MA").await;
    let err = provider
        .handle_invocation(
            &ctx("MA"),
            "Get",
            encode(&wire::GetArgs { key: "k".into() }),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::NotLinked { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relinking_with_the_same_values_keeps_the_store() {
    let provider = KeyValueProvider::new();
    link(&provider, "MA", HashMap::new()).await.unwrap();
    let add = wire::AddArgs {
        key: "n".into(),
        value: 1,
    };
    let _: wire::AddResponse = call(&provider, "MA", "Add", &add).await;
    // Hosts re-send links; the memory store must not be reset by a duplicate.
    link(&provider, "MA", values(&[("backend", "memory")]))
        .await
        .unwrap();
    let r: wire::AddResponse = call(&provider, "MA", "Add", &add).await;
    assert_eq!(r.value, 2);
    // Different actors have separate memory stores.
    link(&provider, "MB", HashMap::new()).await.unwrap();
    let r: wire::AddResponse = call(&provider, "MB", "Add", &add).await;
    assert_eq!(r.value, 1);
}
