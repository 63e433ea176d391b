//! The batched operations of `wasmcloud:keyvalue` (role `BatchStore`, a nimbus extension):
//! generated on both sides next to the published role, which they leave untouched; a
//! provider built on the published role alone refuses them as unknown, and the actor-side
//! helpers then fall back to the single-key operations.

use std::collections::HashMap;
use std::sync::Mutex;

use nimbus_actor::testing::clear_host;
use nimbus_interface_keyvalue as kv;
use nimbus_provider_sdk::{CallContext, ProviderError};

use crate::support::{bytes, recording_host};

fn keys(ks: &[&str]) -> Vec<String> {
    ks.iter().map(|k| k.to_string()).collect()
}

/// The msgpack map `{"keys": ["a", "b"]}`, written out.
const GET_MANY_A_B: &[u8] = &[
    0x81, 0xa4, b'k', b'e', b'y', b's', 0x92, 0xa1, b'a', 0xa1, b'b',
];

#[test]
fn batch_senders_use_the_extension_names_and_shapes() {
    let calls = recording_host(|call| match call.operation.as_str() {
        "GetMany" => Ok(kv::serialize(&kv::GetManyResponse {
            values: vec![
                kv::GetResponse {
                    value: "1".into(),
                    exists: true,
                },
                kv::GetResponse::default(),
            ],
        })
        .unwrap()),
        "SetMany" => Ok(kv::serialize(&kv::SetManyResponse { count: 1 }).unwrap()),
        "DelMany" => Ok(kv::serialize(&kv::DelManyResponse { deleted: 2 }).unwrap()),
        other => Err(format!("unexpected {other}")),
    });
    let host = kv::default();
    let got = host.get_many(keys(&["a", "b"])).unwrap();
    assert_eq!(got.values.len(), 2);
    assert!(got.values[0].exists && !got.values[1].exists);
    let item = kv::SetManyItem {
        key: "k".into(),
        value: "v".into(),
        expires: 60,
    };
    assert_eq!(host.set_many(vec![item.clone()]).unwrap().count, 1);
    assert_eq!(host.del_many(keys(&["a", "b"])).unwrap().deleted, 2);

    let calls = calls.borrow();
    let ops: Vec<&str> = calls.iter().map(|c| c.operation.as_str()).collect();
    assert_eq!(ops, ["GetMany", "SetMany", "DelMany"]);
    assert!(calls.iter().all(|c| c.namespace == "wasmcloud:keyvalue"));
    assert_eq!(calls[0].payload, GET_MANY_A_B);
    // SetMany items have SetArgs' fields: each item is the bytes of the matching SetArgs.
    let set_args = kv::serialize(&kv::SetArgs {
        key: "k".into(),
        value: "v".into(),
        expires: 60,
    })
    .unwrap();
    assert_eq!(kv::serialize(&item).unwrap(), set_args);
    let mut expected = vec![0x81, 0xa5, b'i', b't', b'e', b'm', b's', 0x91];
    expected.extend_from_slice(&set_args);
    assert_eq!(calls[1].payload, expected);
    clear_host();
}

#[test]
fn helpers_fall_back_to_single_operations_with_a_0x_provider() {
    let calls = recording_host(|call| match call.operation.as_str() {
        // What a nimbus host relays for a provider that has only the published role.
        "GetMany" => Err("unknown operation GetMany for contract wasmcloud:keyvalue".into()),
        "Get" => Ok(bytes("get_response_found")),
        other => Err(format!("unexpected {other}")),
    });
    let got = kv::default().get_many_or_each(&keys(&["x", "y"])).unwrap();
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|r| r.exists));
    let ops: Vec<String> = calls.borrow().iter().map(|c| c.operation.clone()).collect();
    assert_eq!(ops, ["GetMany", "Get", "Get"]);
    // The single Gets carry the published GetArgs bytes.
    assert_eq!(
        calls.borrow()[1].payload,
        kv::serialize(&kv::GetArgs { key: "x".into() }).unwrap()
    );

    // Other failures are the caller's to see, not retried key by key.
    let calls = recording_host(|_| Err("no responders for wasmcloud:keyvalue".into()));
    let err = kv::default()
        .get_many_or_each(&keys(&["x"]))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "key-value GetMany failed: no responders for wasmcloud:keyvalue"
    );
    assert_eq!(calls.borrow().len(), 1);
    clear_host();
}

/// A provider of the extension: strings in a map.
#[derive(Default)]
struct Batches {
    values: Mutex<HashMap<String, String>>,
}

impl kv::BatchStore for Batches {
    async fn get_many(
        &self,
        _: &CallContext,
        args: kv::GetManyArgs,
    ) -> Result<kv::GetManyResponse, ProviderError> {
        let values = self.values.lock().unwrap();
        Ok(kv::GetManyResponse {
            values: args
                .keys
                .iter()
                .map(|k| match values.get(k) {
                    Some(v) => kv::GetResponse {
                        value: v.clone(),
                        exists: true,
                    },
                    None => kv::GetResponse::default(),
                })
                .collect(),
        })
    }

    async fn set_many(
        &self,
        _: &CallContext,
        args: kv::SetManyArgs,
    ) -> Result<kv::SetManyResponse, ProviderError> {
        let count = args.items.len() as u32;
        let mut values = self.values.lock().unwrap();
        for item in args.items {
            values.insert(item.key, item.value);
        }
        Ok(kv::SetManyResponse { count })
    }

    async fn del_many(
        &self,
        _: &CallContext,
        args: kv::DelManyArgs,
    ) -> Result<kv::DelManyResponse, ProviderError> {
        let mut values = self.values.lock().unwrap();
        let deleted = args
            .keys
            .iter()
            .filter(|k| values.remove(*k).is_some())
            .count();
        Ok(kv::DelManyResponse {
            deleted: deleted as u32,
        })
    }
}

fn ctx() -> CallContext {
    CallContext {
        actor_id: "MACTOR".into(),
        link_name: "default".into(),
    }
}

#[tokio::test]
async fn the_batch_dispatcher_serves_the_extension_and_only_it() {
    let store = Batches::default();
    let ctx = ctx();
    let set = kv::SetManyArgs {
        items: vec![kv::SetManyItem {
            key: "a".into(),
            value: "1".into(),
            expires: 0,
        }],
    };
    let reply =
        kv::dispatch_batch_store(&store, &ctx, kv::OP_SET_MANY, &kv::serialize(&set).unwrap())
            .await
            .unwrap();
    assert_eq!(
        kv::deserialize::<kv::SetManyResponse>(&reply)
            .unwrap()
            .count,
        1
    );
    let reply = kv::dispatch_batch_store(&store, &ctx, "GetMany", GET_MANY_A_B)
        .await
        .unwrap();
    let got: kv::GetManyResponse = kv::deserialize(&reply).unwrap();
    assert_eq!(
        got.values,
        [
            kv::GetResponse {
                value: "1".into(),
                exists: true
            },
            kv::GetResponse::default()
        ]
    );
    // The published operations are not the extension's.
    assert!(matches!(
        kv::dispatch_batch_store(&store, &ctx, "Get", &bytes("get_args")).await,
        Err(ProviderError::UnknownOperation { .. })
    ));
    assert!(matches!(
        kv::dispatch_batch_store(&store, &ctx, "GetMany", &bytes("get_args")).await,
        Err(ProviderError::BadPayload { .. })
    ));
}

#[test]
fn the_extension_leaves_the_published_operation_list_alone() {
    assert_eq!(kv::batch::OPERATIONS, ["GetMany", "SetMany", "DelMany"]);
    let published = crate::support::golden().keyvalue_operations;
    for op in kv::batch::OPERATIONS {
        assert!(!published.iter().any(|p| p == op), "{op}");
    }
}
