//! The provider side of the interface crates: a `Store` implementation behind
//! `dispatch_store` answers the published payloads with the published bytes, plugs into a
//! `Provider::handle_invocation`, and rejects unknown operations and bad payloads with
//! typed errors; `ActorClient` calls actors with the published bytes.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use nimbus_interface_core as core_if;
use nimbus_interface_httpserver as http;
use nimbus_interface_keyvalue as kv;
use nimbus_provider_sdk::{
    ActorCaller, CallContext, HealthCheckResponse, LinkDefinition, Provider, ProviderError,
};

use crate::support::{bytes, value};

/// A tiny in-memory store: strings, counters and lists.
#[derive(Default)]
struct MemStore {
    values: Mutex<HashMap<String, String>>,
    lists: Mutex<HashMap<String, Vec<String>>>,
    calls: Mutex<Vec<(String, String)>>,
}

impl MemStore {
    fn record(&self, ctx: &CallContext, op: &str) {
        self.calls
            .lock()
            .unwrap()
            .push((ctx.actor_id.clone(), op.to_string()));
    }
}

impl kv::Store for MemStore {
    async fn get(
        &self,
        ctx: &CallContext,
        args: kv::GetArgs,
    ) -> Result<kv::GetResponse, ProviderError> {
        self.record(ctx, "Get");
        let values = self.values.lock().unwrap();
        Ok(match values.get(&args.key) {
            Some(v) => kv::GetResponse {
                value: v.clone(),
                exists: true,
            },
            None => kv::GetResponse::default(),
        })
    }

    async fn add(
        &self,
        ctx: &CallContext,
        args: kv::AddArgs,
    ) -> Result<kv::AddResponse, ProviderError> {
        self.record(ctx, "Add");
        let mut values = self.values.lock().unwrap();
        let current: i32 = match values.get(&args.key) {
            Some(v) => v
                .parse()
                .map_err(|_| ProviderError::Backend(format!("{} is not a number", args.key)))?,
            None => 0,
        };
        let value = current + args.value;
        values.insert(args.key, value.to_string());
        Ok(kv::AddResponse { value })
    }

    async fn set(
        &self,
        ctx: &CallContext,
        args: kv::SetArgs,
    ) -> Result<kv::SetResponse, ProviderError> {
        self.record(ctx, "Set");
        self.values
            .lock()
            .unwrap()
            .insert(args.key, args.value.clone());
        Ok(kv::SetResponse { value: args.value })
    }

    async fn del(
        &self,
        ctx: &CallContext,
        args: kv::DelArgs,
    ) -> Result<kv::DelResponse, ProviderError> {
        self.record(ctx, "Del");
        self.values.lock().unwrap().remove(&args.key);
        Ok(kv::DelResponse { key: args.key })
    }

    async fn clear(
        &self,
        ctx: &CallContext,
        args: kv::ClearArgs,
    ) -> Result<kv::DelResponse, ProviderError> {
        self.record(ctx, "Clear");
        self.lists.lock().unwrap().remove(&args.key);
        Ok(kv::DelResponse { key: args.key })
    }

    async fn range(
        &self,
        _: &CallContext,
        args: kv::RangeArgs,
    ) -> Result<kv::ListRangeResponse, ProviderError> {
        let lists = self.lists.lock().unwrap();
        let list = lists.get(&args.key).cloned().unwrap_or_default();
        let stop = if args.stop < 0 {
            list.len()
        } else {
            (args.stop as usize + 1).min(list.len())
        };
        let start = (args.start.max(0) as usize).min(stop);
        Ok(kv::ListRangeResponse {
            values: list[start..stop].to_vec(),
        })
    }

    async fn push(
        &self,
        _: &CallContext,
        args: kv::PushArgs,
    ) -> Result<kv::ListResponse, ProviderError> {
        let mut lists = self.lists.lock().unwrap();
        let list = lists.entry(args.key).or_default();
        list.push(args.value);
        Ok(kv::ListResponse {
            new_count: list.len() as i32,
        })
    }

    async fn list_item_delete(
        &self,
        _: &CallContext,
        args: kv::ListItemDeleteArgs,
    ) -> Result<kv::ListResponse, ProviderError> {
        let mut lists = self.lists.lock().unwrap();
        let list = lists.entry(args.key).or_default();
        list.retain(|v| *v != args.value);
        Ok(kv::ListResponse {
            new_count: list.len() as i32,
        })
    }

    async fn set_add(
        &self,
        _: &CallContext,
        _: kv::SetAddArgs,
    ) -> Result<kv::SetOperationResponse, ProviderError> {
        Ok(kv::SetOperationResponse { new_count: 1 })
    }

    async fn set_remove(
        &self,
        _: &CallContext,
        _: kv::SetRemoveArgs,
    ) -> Result<kv::SetOperationResponse, ProviderError> {
        Ok(kv::SetOperationResponse { new_count: 0 })
    }

    async fn set_union(
        &self,
        _: &CallContext,
        args: kv::SetUnionArgs,
    ) -> Result<kv::SetQueryResponse, ProviderError> {
        Ok(kv::SetQueryResponse { values: args.keys })
    }

    async fn set_intersection(
        &self,
        _: &CallContext,
        _: kv::SetIntersectionArgs,
    ) -> Result<kv::SetQueryResponse, ProviderError> {
        Ok(kv::SetQueryResponse::default())
    }

    async fn set_query(
        &self,
        _: &CallContext,
        _: kv::SetQueryArgs,
    ) -> Result<kv::SetQueryResponse, ProviderError> {
        Err(ProviderError::Backend(
            "sets are not supported by this test store".into(),
        ))
    }

    async fn key_exists(
        &self,
        ctx: &CallContext,
        args: kv::KeyExistsArgs,
    ) -> Result<kv::GetResponse, ProviderError> {
        self.get(ctx, kv::GetArgs { key: args.key }).await
    }
}

/// A provider whose `handle_invocation` is the generated dispatcher.
struct KvProvider {
    store: MemStore,
}

#[async_trait]
impl Provider for KvProvider {
    fn contract_id(&self) -> &str {
        kv::CONTRACT_ID
    }

    async fn put_link(&self, _: &LinkDefinition) -> Result<(), ProviderError> {
        Ok(())
    }

    async fn delete_link(&self, _: &str) {}

    async fn handle_invocation(
        &self,
        ctx: &CallContext,
        operation: &str,
        payload: Vec<u8>,
    ) -> Result<Vec<u8>, ProviderError> {
        kv::dispatch_store(&self.store, ctx, operation, &payload).await
    }

    async fn health(&self) -> HealthCheckResponse {
        HealthCheckResponse::healthy()
    }
}

fn ctx() -> CallContext {
    CallContext {
        actor_id: "MACTOR".into(),
        link_name: "default".into(),
    }
}

#[tokio::test]
async fn published_payloads_in_published_bytes_out() {
    let provider: Box<dyn Provider> = Box::new(KvProvider {
        store: MemStore::default(),
    });
    let ctx = ctx();
    // Set "greeting" = "hello" → SetResponse{value: "hello"}, byte for byte.
    let reply = provider
        .handle_invocation(&ctx, "Set", bytes("set_args"))
        .await
        .unwrap();
    assert_eq!(reply, bytes("set_response"));
    // Get of a missing key → the published "missing" response.
    let reply = provider
        .handle_invocation(&ctx, "Get", bytes("get_args"))
        .await
        .unwrap();
    assert_eq!(reply, bytes("get_response_missing"));
    // Del echoes the key.
    let reply = provider
        .handle_invocation(&ctx, "Del", bytes("del_args"))
        .await
        .unwrap();
    assert_eq!(reply, bytes("del_response"));
    // Add -5 then read back through the typed decoder.
    let reply = provider
        .handle_invocation(&ctx, "Add", bytes("add_args_negative"))
        .await
        .unwrap();
    assert_eq!(
        kv::deserialize::<kv::AddResponse>(&reply).unwrap().value,
        -5
    );
    // Push three times → newCount 3, the published ListResponse bytes.
    for _ in 0..2 {
        provider
            .handle_invocation(&ctx, "Push", bytes("push_args"))
            .await
            .unwrap();
    }
    let reply = provider
        .handle_invocation(&ctx, "Push", bytes("push_args"))
        .await
        .unwrap();
    assert_eq!(reply, bytes("list_response"));
}

#[tokio::test]
async fn unknown_operations_bad_payloads_and_method_errors_are_typed() {
    let store = MemStore::default();
    let ctx = ctx();
    match kv::dispatch_store(&store, &ctx, "Nope", b"").await {
        Err(ProviderError::UnknownOperation {
            contract_id,
            operation,
        }) => {
            assert_eq!(contract_id, "wasmcloud:keyvalue");
            assert_eq!(operation, "Nope");
        }
        other => panic!("expected UnknownOperation, got {other:?}"),
    }
    // Operation names are case sensitive, as on the wire.
    assert!(matches!(
        kv::dispatch_store(&store, &ctx, "get", &bytes("get_args")).await,
        Err(ProviderError::UnknownOperation { .. })
    ));
    for payload in [&b""[..], b"\xc1", b"\x81\xa3key\x05"] {
        match kv::dispatch_store(&store, &ctx, "Get", payload).await {
            Err(ProviderError::BadPayload { operation, reason }) => {
                assert_eq!(operation, "Get");
                assert!(!reason.is_empty());
            }
            other => panic!("expected BadPayload for {payload:?}, got {other:?}"),
        }
    }
    let err = kv::dispatch_store(&store, &ctx, "SetQuery", &bytes("set_query_args"))
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "sets are not supported by this test store");
    // Neither unknown operations nor undecodable payloads reached the store.
    let calls = store.calls.lock().unwrap().clone();
    assert!(calls.is_empty(), "{calls:?}");
}

#[tokio::test]
async fn the_dispatcher_passes_the_call_context_through() {
    let store = MemStore::default();
    let ctx = CallContext {
        actor_id: "MOTHER".into(),
        link_name: "cache".into(),
    };
    kv::dispatch_store(&store, &ctx, kv::OP_KEY_EXISTS, &bytes("key_exists_args"))
        .await
        .unwrap();
    assert_eq!(
        store.calls.lock().unwrap().as_slice(),
        [("MOTHER".to_string(), "Get".to_string())]
    );
}

/// An actor caller that answers with fixed bytes and records the call.
struct FakeActors {
    reply: Result<Vec<u8>, String>,
    seen: Mutex<Vec<(String, String, Vec<u8>)>>,
}

#[async_trait]
impl ActorCaller for FakeActors {
    async fn call_actor(
        &self,
        actor_id: &str,
        operation: &str,
        payload: Vec<u8>,
    ) -> Result<Vec<u8>, ProviderError> {
        self.seen
            .lock()
            .unwrap()
            .push((actor_id.into(), operation.into(), payload));
        self.reply
            .clone()
            .map_err(|reason| ProviderError::ActorCall {
                actor_id: actor_id.into(),
                reason,
            })
    }
}

#[tokio::test]
async fn actor_client_sends_the_published_request_and_decodes_the_response() {
    let actors = FakeActors {
        reply: Ok(bytes("response_ok_reference")),
        seen: Mutex::new(Vec::new()),
    };
    let client = http::ActorClient::new(&actors, "MACTOR");
    assert_eq!(client.actor_id(), "MACTOR");
    let response = client.handle_request(value("request_get")).await.unwrap();
    assert_eq!(response, value::<http::Response>("response_ok_reference"));
    let seen = actors.seen.lock().unwrap();
    assert_eq!(
        seen.as_slice(),
        [(
            "MACTOR".to_string(),
            "HandleRequest".to_string(),
            bytes("request_get")
        )]
    );
}

#[tokio::test]
async fn actor_client_reports_malformed_replies_and_call_failures() {
    let actors = FakeActors {
        reply: Ok(b"\xa2hi".to_vec()),
        seen: Mutex::new(Vec::new()),
    };
    let client = http::ActorClient::new(&actors, "MACTOR");
    match client.handle_request(http::Request::default()).await {
        Err(ProviderError::BadReply {
            actor_id,
            operation,
            reason,
        }) => {
            assert_eq!(actor_id, "MACTOR");
            assert_eq!(operation, "HandleRequest");
            assert!(!reason.is_empty());
        }
        other => panic!("expected BadReply, got {other:?}"),
    }
    let actors = FakeActors {
        reply: Err("actor trapped: unreachable".into()),
        seen: Mutex::new(Vec::new()),
    };
    let client = http::ActorClient::new(&actors, "MACTOR");
    let err = client
        .handle_request(http::Request::default())
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "call to actor MACTOR failed: actor trapped: unreachable"
    );
}

/// The core lifecycle operations a provider receives from the host.
#[derive(Default)]
struct Lifecycle {
    bound: Mutex<Vec<core_if::CapabilityConfiguration>>,
}

impl core_if::CapabilityProvider for Lifecycle {
    async fn bind_actor(
        &self,
        _: &CallContext,
        configuration: core_if::CapabilityConfiguration,
    ) -> Result<(), ProviderError> {
        self.bound.lock().unwrap().push(configuration);
        Ok(())
    }

    async fn remove_actor(
        &self,
        _: &CallContext,
        configuration: core_if::CapabilityConfiguration,
    ) -> Result<(), ProviderError> {
        self.bound
            .lock()
            .unwrap()
            .retain(|c| c.module != configuration.module);
        Ok(())
    }

    async fn health_request(
        &self,
        _: &CallContext,
        _: core_if::HealthCheckRequest,
    ) -> Result<core_if::HealthCheckResponse, ProviderError> {
        Ok(core_if::HealthCheckResponse::unhealthy(
            "cannot reach the database",
        ))
    }
}

#[tokio::test]
async fn core_lifecycle_operations_dispatch_with_published_payloads() {
    let lifecycle = Lifecycle::default();
    let ctx = CallContext {
        actor_id: "system".into(),
        link_name: "default".into(),
    };
    let reply = core_if::dispatch_capability_provider(
        &lifecycle,
        &ctx,
        "BindActor",
        &bytes("capability_configuration"),
    )
    .await
    .unwrap();
    // A void result is msgpack nil.
    assert_eq!(reply, [0xc0]);
    assert_eq!(
        lifecycle.bound.lock().unwrap().as_slice(),
        [value::<core_if::CapabilityConfiguration>(
            "capability_configuration"
        )]
    );
    let reply = core_if::dispatch_capability_provider(
        &lifecycle,
        &ctx,
        "HealthRequest",
        &bytes("health_check_request"),
    )
    .await
    .unwrap();
    assert_eq!(reply, bytes("health_check_response_unhealthy"));
    core_if::dispatch_capability_provider(
        &lifecycle,
        &ctx,
        "RemoveActor",
        &bytes("capability_configuration"),
    )
    .await
    .unwrap();
    assert!(lifecycle.bound.lock().unwrap().is_empty());
}

/// A provider with only the published role (as every 0.x provider is) refuses the batched
/// operations of the nimbus extension as unknown: what the actor-side helpers fall back on.
#[tokio::test]
async fn the_published_dispatcher_refuses_the_batched_operations_as_unknown() {
    let store = MemStore::default();
    let ctx = ctx();
    for op in kv::batch::OPERATIONS {
        let payload = kv::serialize(&kv::GetManyArgs { keys: vec![] }).unwrap();
        match kv::dispatch_store(&store, &ctx, op, &payload).await {
            Err(e @ ProviderError::UnknownOperation { .. }) => {
                assert!(kv::batch::is_unknown_operation(&e.to_string()), "{e}");
            }
            other => panic!("{op}: expected UnknownOperation, got {other:?}"),
        }
    }
}
