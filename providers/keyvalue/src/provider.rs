//! [`KeyValueProvider`]: the `wasmcloud:keyvalue` capability over the SDK's [`Provider`]
//! trait. Each linked actor gets the backend its link values choose. Invocations of the
//! WIDL operations go through the generated `dispatch_store` / `dispatch_batch_store`
//! (decode, call the `Store` / `BatchStore` method, encode); the 0.x `KeyValue.*` forms,
//! which no WIDL describes, are decoded here.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use nimbus_interface_keyvalue as kv;
use nimbus_provider_sdk::{
    CallContext, HealthCheckResponse, LinkDefinition, Provider, ProviderContext, ProviderError,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::{Instrument, debug, debug_span, info, warn};

use crate::backend::{KvBackend, Removal, SetItem};
use crate::backends::open_backend;
use crate::config::BackendConfig;
use crate::error::KvError;
use crate::wire::{self, v0};

/// The contract id this provider implements.
pub const CONTRACT_ID: &str = "wasmcloud:keyvalue";

struct Link {
    config: BackendConfig,
    backend: Arc<dyn KvBackend>,
}

/// The key-value provider; one value serves any number of linked actors, each with its own
/// backend handle.
#[derive(Default)]
pub struct KeyValueProvider {
    links: RwLock<HashMap<String, Link>>,
    /// Values from the provider's configuration, under every link's own values.
    defaults: RwLock<HashMap<String, String>>,
}

impl KeyValueProvider {
    /// A provider with no links; every link defaults to the memory backend unless its values
    /// (or the provider configuration given to [`Provider::start`]) say otherwise.
    pub fn new() -> Self {
        Self::default()
    }

    /// The backend currently serving `actor_id`, if it is linked.
    pub fn backend_for(&self, actor_id: &str) -> Option<Arc<dyn KvBackend>> {
        self.links
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(actor_id)
            .map(|l| l.backend.clone())
    }
}

/// Parses the provider configuration: a JSON object whose values are strings, numbers or
/// booleans (`{"backend": "redis", "url": "redis://..."}`).
fn parse_config_json(json: &str) -> Result<HashMap<String, String>, String> {
    let value: serde_json::Value = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let serde_json::Value::Object(map) = value else {
        return Err("expected a JSON object".to_string());
    };
    map.into_iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => Ok((k, s)),
            serde_json::Value::Number(n) => Ok((k, n.to_string())),
            serde_json::Value::Bool(b) => Ok((k, b.to_string())),
            other => Err(format!(
                "value of {k:?} must be a string or a number, not {other}"
            )),
        })
        .collect()
}

#[async_trait]
impl Provider for KeyValueProvider {
    fn contract_id(&self) -> &str {
        CONTRACT_ID
    }

    async fn start(&self, ctx: ProviderContext) -> Result<(), ProviderError> {
        if let Some(json) = ctx.config_json.as_deref().filter(|j| !j.trim().is_empty()) {
            let defaults = parse_config_json(json).map_err(|e| {
                ProviderError::Backend(format!(
                    "invalid key-value provider configuration: {e}; pass a JSON object such as {{\"backend\":\"redis\",\"url\":\"redis://127.0.0.1:6379\"}}"
                ))
            })?;
            *self
                .defaults
                .write()
                .unwrap_or_else(PoisonError::into_inner) = defaults;
        }
        Ok(())
    }

    async fn put_link(&self, link: &LinkDefinition) -> Result<(), ProviderError> {
        let bad_link = |reason: String| ProviderError::BadLink {
            actor_id: link.actor_id.clone(),
            reason,
        };
        let mut values = self
            .defaults
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        values.extend(link.values.iter().map(|(k, v)| (k.clone(), v.clone())));
        let config = BackendConfig::from_values(&values).map_err(|e| bad_link(e.to_string()))?;
        let unchanged = self
            .links
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&link.actor_id)
            .is_some_and(|l| l.config == config);
        if unchanged {
            // Hosts re-send links (several hosts, reconnects); keep the open backend, and
            // with it the memory backend's data.
            debug!(actor_id = %link.actor_id, "link re-put with the same backend; kept");
            return Ok(());
        }
        let backend = open_backend(&config)
            .await
            .map_err(|e| bad_link(e.to_string()))?;
        info!(actor_id = %link.actor_id, backend = config.kind(), "key-value link put");
        self.links
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(link.actor_id.clone(), Link { config, backend });
        Ok(())
    }

    async fn delete_link(&self, actor_id: &str) {
        let removed = self
            .links
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(actor_id);
        if removed.is_some() {
            info!(actor_id, "key-value link deleted");
        }
    }

    async fn handle_invocation(
        &self,
        ctx: &CallContext,
        operation: &str,
        payload: Vec<u8>,
    ) -> Result<Vec<u8>, ProviderError> {
        let backend = self
            .backend_for(&ctx.actor_id)
            .ok_or_else(|| ProviderError::NotLinked {
                actor_id: ctx.actor_id.clone(),
            })?;
        let span = debug_span!(
            "keyvalue",
            actor_id = %ctx.actor_id,
            operation,
            backend = backend.kind()
        );
        let result = dispatch(backend.as_ref(), ctx, operation, &payload)
            .instrument(span.clone())
            .await;
        if let Err(e) = &result {
            span.in_scope(|| debug!(error = %e, "key-value operation failed"));
        }
        result
    }

    async fn health(&self) -> HealthCheckResponse {
        HealthCheckResponse::healthy()
    }

    async fn shutdown(&self) {
        let links =
            std::mem::take(&mut *self.links.write().unwrap_or_else(PoisonError::into_inner));
        if !links.is_empty() {
            info!(
                links = links.len(),
                "key-value provider shut down; backends closed"
            );
        }
    }
}

fn decode<T: DeserializeOwned>(operation: &str, payload: &[u8]) -> Result<T, ProviderError> {
    nimbus_core::encoding::from_msgpack_lenient(payload).map_err(|e| ProviderError::BadPayload {
        operation: operation.to_string(),
        reason: format!("{e}; expected the msgpack request of the wasmcloud:keyvalue interface"),
    })
}

fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, ProviderError> {
    rmp_serde::to_vec_named(value)
        .map_err(|e| ProviderError::Backend(format!("failed to encode the response: {e}")))
}

fn backend_err(e: KvError) -> ProviderError {
    ProviderError::Backend(e.to_string())
}

/// [`backend_err`] for the batched operations, where an oversized batch is the caller's
/// mistake (an invalid payload), not the store's.
fn batch_err(operation: &str) -> impl Fn(KvError) -> ProviderError + '_ {
    move |e| match e {
        KvError::BatchTooLarge { .. } => ProviderError::BadPayload {
            operation: operation.to_string(),
            reason: e.to_string(),
        },
        other => backend_err(other),
    }
}

/// Refuses an oversized batch before anything else is looked at (the backends check again).
fn check_batch_len(operation: &'static str, len: usize) -> Result<(), ProviderError> {
    crate::backend::check_batch(operation, len).map_err(batch_err(operation))
}

/// Narrows a count or counter to the interface's `i32`.
fn to_i32<N: TryInto<i32> + Copy + std::fmt::Display>(
    what: &str,
    key: &str,
    n: N,
) -> Result<i32, ProviderError> {
    n.try_into().map_err(|_| {
        ProviderError::Backend(format!(
            "{what} of key {key:?} is {n}, beyond the interface's 32-bit range (the operation was applied)"
        ))
    })
}

fn expiry(operation: &str, seconds: i64) -> Result<Option<Duration>, ProviderError> {
    match seconds {
        0 => Ok(None),
        s if s > 0 => Ok(Some(Duration::from_secs(s.unsigned_abs()))),
        s => Err(ProviderError::BadPayload {
            operation: operation.to_string(),
            reason: format!("expires is {s}; use 0 for no expiry or a positive number of seconds"),
        }),
    }
}

/// Runs one `wasmcloud:keyvalue` operation against `store`: decodes `payload` as the
/// operation's request and returns the encoded response.
///
/// Operation names are the 0.2 WIDL names verbatim (`Get`, `Add`, ...), plus the batched
/// operations of the nimbus extension (`GetMany`, `SetMany`, `DelMany`; at most
/// [`MAX_BATCH`](crate::MAX_BATCH) keys or items each, a larger batch is a
/// [`ProviderError::BadPayload`]).
/// The 0.x forms
/// (`KeyValue.Get`, `KeyValue.Increment`, ...) are mapped onto the same store operations
/// with their own request and response shapes; `KeyValue.<0.2 name>` for names 0.x does not
/// have (`KeyValue.Push`, ...) runs the 0.2 operation.
pub async fn dispatch(
    store: &dyn KvBackend,
    ctx: &CallContext,
    operation: &str,
    payload: &[u8],
) -> Result<Vec<u8>, ProviderError> {
    match operation.strip_prefix(v0::PREFIX) {
        Some(method) if V0_METHODS.contains(&method) => {
            dispatch_v0(store, operation, method, payload).await
        }
        Some(method) if wire::OPERATIONS.contains(&method) => {
            dispatch_v02(store, ctx, method, payload).await
        }
        Some(_) => {
            warn!(operation, "unknown 0.x key-value operation");
            Err(unknown(operation))
        }
        None => dispatch_v02(store, ctx, operation, payload).await,
    }
}

/// The 0.x methods (after `KeyValue.`) this provider maps; `Keys` (listing) is not offered.
const V0_METHODS: [&str; 15] = [
    "Get",
    "Set",
    "Del",
    "Contains",
    "Increment",
    "ListAdd",
    "ListDel",
    "ListRange",
    "ListClear",
    "SetAdd",
    "SetDel",
    "SetQuery",
    "SetUnion",
    "SetIntersection",
    "SetClear",
];

/// The 0.2 operations and the batched ones of the nimbus extension, by their WIDL names:
/// the generated dispatchers of `nimbus-interface-keyvalue` decode the request, call the
/// method of [`Backed`] and encode its response.
async fn dispatch_v02(
    store: &dyn KvBackend,
    ctx: &CallContext,
    op: &str,
    payload: &[u8],
) -> Result<Vec<u8>, ProviderError> {
    let backed = Backed(store);
    if wire::BATCH_OPERATIONS.contains(&op) {
        kv::dispatch_batch_store(&backed, ctx, op, payload).await
    } else {
        kv::dispatch_store(&backed, ctx, op, payload).await
    }
}

/// One linked actor's backend as the generated `Store` and `BatchStore` traits see it.
struct Backed<'a>(&'a dyn KvBackend);

impl kv::Store for Backed<'_> {
    async fn get(
        &self,
        _: &CallContext,
        a: wire::GetArgs,
    ) -> Result<wire::GetResponse, ProviderError> {
        let value = self.0.get(&a.key).await.map_err(backend_err)?;
        Ok(wire::GetResponse {
            exists: value.is_some(),
            value: value.unwrap_or_default(),
        })
    }

    async fn add(
        &self,
        _: &CallContext,
        a: wire::AddArgs,
    ) -> Result<wire::AddResponse, ProviderError> {
        let n = self
            .0
            .add(&a.key, a.value.into())
            .await
            .map_err(backend_err)?;
        Ok(wire::AddResponse {
            value: to_i32("the counter", &a.key, n)?,
        })
    }

    async fn set(
        &self,
        _: &CallContext,
        a: wire::SetArgs,
    ) -> Result<wire::SetResponse, ProviderError> {
        let expires = expiry(wire::OP_SET, a.expires.into())?;
        self.0
            .set(&a.key, &a.value, expires)
            .await
            .map_err(backend_err)?;
        Ok(wire::SetResponse { value: a.value })
    }

    async fn del(
        &self,
        _: &CallContext,
        a: wire::DelArgs,
    ) -> Result<wire::DelResponse, ProviderError> {
        self.0.del(&a.key).await.map_err(backend_err)?;
        Ok(wire::DelResponse { key: a.key })
    }

    async fn clear(
        &self,
        _: &CallContext,
        a: wire::ClearArgs,
    ) -> Result<wire::DelResponse, ProviderError> {
        self.0.del(&a.key).await.map_err(backend_err)?;
        Ok(wire::DelResponse { key: a.key })
    }

    async fn range(
        &self,
        _: &CallContext,
        a: wire::RangeArgs,
    ) -> Result<wire::ListRangeResponse, ProviderError> {
        let values = self
            .0
            .list_range(&a.key, a.start.into(), a.stop.into())
            .await
            .map_err(backend_err)?;
        Ok(wire::ListRangeResponse { values })
    }

    async fn push(
        &self,
        _: &CallContext,
        a: wire::PushArgs,
    ) -> Result<wire::ListResponse, ProviderError> {
        let len = self
            .0
            .list_push(&a.key, &a.value)
            .await
            .map_err(backend_err)?;
        Ok(wire::ListResponse {
            new_count: to_i32("the length", &a.key, len)?,
        })
    }

    async fn list_item_delete(
        &self,
        _: &CallContext,
        a: wire::ListItemDeleteArgs,
    ) -> Result<wire::ListResponse, ProviderError> {
        let r = self
            .0
            .list_remove(&a.key, &a.value, Removal::All)
            .await
            .map_err(backend_err)?;
        Ok(wire::ListResponse {
            new_count: to_i32("the removed count", &a.key, r.removed)?,
        })
    }

    async fn set_add(
        &self,
        _: &CallContext,
        a: wire::SetAddArgs,
    ) -> Result<wire::SetOperationResponse, ProviderError> {
        let c = self
            .0
            .set_add(&a.key, &a.value)
            .await
            .map_err(backend_err)?;
        Ok(wire::SetOperationResponse {
            new_count: i32::from(c.changed),
        })
    }

    async fn set_remove(
        &self,
        _: &CallContext,
        a: wire::SetRemoveArgs,
    ) -> Result<wire::SetOperationResponse, ProviderError> {
        let c = self
            .0
            .set_remove(&a.key, &a.value)
            .await
            .map_err(backend_err)?;
        Ok(wire::SetOperationResponse {
            new_count: i32::from(c.changed),
        })
    }

    async fn set_union(
        &self,
        _: &CallContext,
        a: wire::SetUnionArgs,
    ) -> Result<wire::SetQueryResponse, ProviderError> {
        let values = self.0.set_union(&a.keys).await.map_err(backend_err)?;
        Ok(wire::SetQueryResponse { values })
    }

    async fn set_intersection(
        &self,
        _: &CallContext,
        a: wire::SetIntersectionArgs,
    ) -> Result<wire::SetQueryResponse, ProviderError> {
        let values = self
            .0
            .set_intersection(&a.keys)
            .await
            .map_err(backend_err)?;
        Ok(wire::SetQueryResponse { values })
    }

    async fn set_query(
        &self,
        _: &CallContext,
        a: wire::SetQueryArgs,
    ) -> Result<wire::SetQueryResponse, ProviderError> {
        let values = self.0.set_members(&a.key).await.map_err(backend_err)?;
        Ok(wire::SetQueryResponse { values })
    }

    async fn key_exists(
        &self,
        _: &CallContext,
        a: wire::KeyExistsArgs,
    ) -> Result<wire::GetResponse, ProviderError> {
        let exists = self.0.exists(&a.key).await.map_err(backend_err)?;
        Ok(wire::GetResponse {
            value: String::new(),
            exists,
        })
    }
}

impl kv::BatchStore for Backed<'_> {
    async fn get_many(
        &self,
        _: &CallContext,
        a: wire::GetManyArgs,
    ) -> Result<wire::GetManyResponse, ProviderError> {
        let op = wire::OP_GET_MANY;
        check_batch_len(op, a.keys.len())?;
        let values = self.0.get_many(&a.keys).await.map_err(batch_err(op))?;
        Ok(wire::GetManyResponse {
            values: values
                .into_iter()
                .map(|value| wire::GetResponse {
                    exists: value.is_some(),
                    value: value.unwrap_or_default(),
                })
                .collect(),
        })
    }

    async fn set_many(
        &self,
        _: &CallContext,
        a: wire::SetManyArgs,
    ) -> Result<wire::SetManyResponse, ProviderError> {
        let op = wire::OP_SET_MANY;
        check_batch_len(op, a.items.len())?;
        let count = u32::try_from(a.items.len()).unwrap_or(u32::MAX);
        // Every item is checked before anything is written.
        let items = a
            .items
            .into_iter()
            .enumerate()
            .map(|(i, item)| {
                let expires = expiry(op, item.expires.into()).map_err(|e| match e {
                    ProviderError::BadPayload { operation, reason } => ProviderError::BadPayload {
                        operation,
                        reason: format!("item {i} (key {:?}): {reason}", item.key),
                    },
                    other => other,
                })?;
                Ok(SetItem {
                    key: item.key,
                    value: item.value,
                    expires,
                })
            })
            .collect::<Result<Vec<_>, ProviderError>>()?;
        self.0.set_many(&items).await.map_err(batch_err(op))?;
        Ok(wire::SetManyResponse { count })
    }

    async fn del_many(
        &self,
        _: &CallContext,
        a: wire::DelManyArgs,
    ) -> Result<wire::DelManyResponse, ProviderError> {
        let op = wire::OP_DEL_MANY;
        check_batch_len(op, a.keys.len())?;
        let deleted = self.0.del_many(&a.keys).await.map_err(batch_err(op))?;
        Ok(wire::DelManyResponse {
            // At most MAX_BATCH keys, so it fits.
            deleted: u32::try_from(deleted).unwrap_or(u32::MAX),
        })
    }
}

fn unknown(operation: &str) -> ProviderError {
    ProviderError::UnknownOperation {
        contract_id: CONTRACT_ID.to_string(),
        operation: operation.to_string(),
    }
}

/// The 0.x `KeyValue.<method>` operations.
async fn dispatch_v0(
    store: &dyn KvBackend,
    op: &str,
    method: &str,
    payload: &[u8],
) -> Result<Vec<u8>, ProviderError> {
    // 0.x may lead with a format byte: 0xc1 (never a msgpack value) announces msgpack.
    let payload = payload.strip_prefix(&[0xc1]).unwrap_or(payload);
    let key = |payload: &[u8]| decode::<v0::KeyArg>(op, payload).map(v0::KeyArg::into_key);
    match method {
        "Get" => {
            let k = key(payload)?;
            let value = store.get(&k).await.map_err(backend_err)?;
            encode(&wire::GetResponse {
                exists: value.is_some(),
                value: value.unwrap_or_default(),
            })
        }
        "Set" => {
            let a: v0::SetRequest = decode(op, payload)?;
            let expires = expiry(op, a.expires.into())?;
            store
                .set(&a.key, &a.value, expires)
                .await
                .map_err(backend_err)?;
            // 0.x `Set` has no output: an empty payload.
            Ok(Vec::new())
        }
        "Del" | "ListClear" | "SetClear" => {
            let existed = store.del(&key(payload)?).await.map_err(backend_err)?;
            encode(&existed)
        }
        "Contains" => encode(&store.exists(&key(payload)?).await.map_err(backend_err)?),
        "Increment" => {
            let a: v0::IncrementRequest = decode(op, payload)?;
            let n = store
                .add(&a.key, a.value.into())
                .await
                .map_err(backend_err)?;
            encode(&to_i32("the counter", &a.key, n)?)
        }
        "ListAdd" => {
            let a: v0::ListItemRequest = decode(op, payload)?;
            let len = store
                .list_push(&a.list_name, &a.value)
                .await
                .map_err(backend_err)?;
            encode(&u32::try_from(len).unwrap_or(u32::MAX))
        }
        "ListDel" => {
            let a: v0::ListItemRequest = decode(op, payload)?;
            let r = store
                .list_remove(&a.list_name, &a.value, Removal::First)
                .await
                .map_err(backend_err)?;
            encode(&(r.removed > 0))
        }
        "ListRange" => {
            let a: v0::ListRangeRequest = decode(op, payload)?;
            let values = store
                .list_range(&a.list_name, a.start.into(), a.stop.into())
                .await
                .map_err(backend_err)?;
            encode(&values)
        }
        "SetAdd" => {
            let a: v0::SetMemberRequest = decode(op, payload)?;
            let c = store
                .set_add(&a.set_name, &a.value)
                .await
                .map_err(backend_err)?;
            encode(&u32::from(c.changed))
        }
        "SetDel" => {
            let a: v0::SetMemberRequest = decode(op, payload)?;
            let c = store
                .set_remove(&a.set_name, &a.value)
                .await
                .map_err(backend_err)?;
            encode(&u32::from(c.changed))
        }
        "SetQuery" => encode(
            &store
                .set_members(&key(payload)?)
                .await
                .map_err(backend_err)?,
        ),
        "SetUnion" => {
            let keys: Vec<String> = decode(op, payload)?;
            encode(&store.set_union(&keys).await.map_err(backend_err)?)
        }
        "SetIntersection" => {
            let keys: Vec<String> = decode(op, payload)?;
            encode(&store.set_intersection(&keys).await.map_err(backend_err)?)
        }
        _ => Err(unknown(op)),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use nimbus_provider_sdk::{ActorCaller, ProviderContext};

    use super::*;

    struct NoActors;

    #[async_trait]
    impl ActorCaller for NoActors {
        async fn call_actor(
            &self,
            actor_id: &str,
            _operation: &str,
            _payload: Vec<u8>,
        ) -> Result<Vec<u8>, ProviderError> {
            Err(ProviderError::ActorUnavailable {
                actor_id: actor_id.to_string(),
                reason: "no actors in this test".to_string(),
            })
        }
    }

    fn context(config_json: Option<&str>) -> ProviderContext {
        ProviderContext {
            host_id: "NHOST".into(),
            lattice: "default".into(),
            provider_id: "VKV".into(),
            link_name: "default".into(),
            config_json: config_json.map(str::to_string),
            actors: Arc::new(NoActors),
        }
    }

    fn link(values: &[(&str, &str)]) -> LinkDefinition {
        LinkDefinition::new(
            "MACTOR",
            "VKV",
            "default",
            CONTRACT_ID,
            values
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[tokio::test]
    async fn provider_configuration_sits_under_link_values() {
        let provider = KeyValueProvider::new();
        provider
            .start(context(Some(r#"{"backend": "file"}"#)))
            .await
            .unwrap();
        // The configuration chose `file`, so a link without `path` is incomplete...
        let err = provider.put_link(&link(&[])).await.unwrap_err();
        assert!(
            matches!(&err, ProviderError::BadLink { reason, .. } if reason.contains("`path`")),
            "{err}"
        );
        // ...and a link's own values win.
        provider
            .put_link(&link(&[("backend", "memory")]))
            .await
            .unwrap();
        assert_eq!(provider.backend_for("MACTOR").unwrap().kind(), "memory");
    }

    #[tokio::test]
    async fn invalid_provider_configuration_is_refused_at_start() {
        for bad in ["not json", "[1, 2]", r#"{"backend": ["file"]}"#] {
            let err = KeyValueProvider::new()
                .start(context(Some(bad)))
                .await
                .unwrap_err();
            assert!(err.to_string().contains("JSON object"), "{bad}: {err}");
        }
        KeyValueProvider::new()
            .start(context(Some(" ")))
            .await
            .unwrap();
    }
}
