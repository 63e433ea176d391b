//! `nimbus:echo`, a tiny capability provider that exists to exercise the provider SDK and
//! the host's provider supervision end to end: it echoes payloads, calls actors back,
//! reports its link state, and (in its binary only) can be told to crash.
//!
//! Operations (msgpack payloads):
//!
//! | operation | request | response |
//! |---|---|---|
//! | `Echo` | any bytes | the same bytes |
//! | `CallActor` | [`CallActorRequest`] | the actor's response bytes |
//! | `Links` | ignored | `[str]`: linked actor ids, sorted |
//! | `LinkPuts` | ignored | `u64`: link puts the provider accepted so far |
//! | `Crash` | ignored | none: the process exits with [`CRASH_EXIT_CODE`] (when enabled) |

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use nimbus_provider_sdk::{
    ActorCaller, CallContext, HealthCheckResponse, LinkDefinition, Provider, ProviderContext,
    ProviderError,
};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

/// The contract id of the echo provider.
pub const CONTRACT_ID: &str = "nimbus:echo";

/// The exit code of the process after a `Crash` operation.
pub const CRASH_EXIT_CODE: i32 = 70;

/// The `CallActor` request: which actor to call back, with what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallActorRequest {
    /// The actor's `M...` key.
    pub actor_id: String,
    /// The operation to call on it.
    pub operation: String,
    /// The payload to send.
    #[serde(with = "serde_bytes")]
    pub payload: Vec<u8>,
}

/// The echo provider. Its link table is what `Links` reports, so tests see exactly
/// which links the runner delivered.
#[derive(Default)]
pub struct EchoProvider {
    links: Mutex<BTreeMap<String, LinkDefinition>>,
    puts: AtomicU64,
    actors: OnceLock<Arc<dyn ActorCaller>>,
    crash_enabled: bool,
}

impl EchoProvider {
    /// A provider whose `Crash` operation is refused (safe to run in a host process).
    pub fn new() -> Self {
        Self::default()
    }

    /// Enables the `Crash` operation; only for a provider that runs as its own process.
    pub fn with_crash_op(mut self) -> Self {
        self.crash_enabled = true;
        self
    }

    fn linked_actors(&self) -> Vec<String> {
        self.links
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect()
    }
}

fn encode<T: Serialize>(operation: &str, value: &T) -> Result<Vec<u8>, ProviderError> {
    rmp_serde::to_vec_named(value)
        .map_err(|e| ProviderError::Backend(format!("failed to encode the {operation} reply: {e}")))
}

#[async_trait]
impl Provider for EchoProvider {
    fn contract_id(&self) -> &str {
        CONTRACT_ID
    }

    async fn start(&self, ctx: ProviderContext) -> Result<(), ProviderError> {
        info!(provider_id = %ctx.provider_id, link_name = %ctx.link_name, "echo provider starting");
        if self.actors.set(ctx.actors).is_err() {
            warn!("echo provider started twice; keeping the first actor caller");
        }
        Ok(())
    }

    async fn put_link(&self, link: &LinkDefinition) -> Result<(), ProviderError> {
        if link.values.contains_key("reject") {
            return Err(ProviderError::BadLink {
                actor_id: link.actor_id.clone(),
                reason: "the link values ask to be rejected (`reject` is set)".to_string(),
            });
        }
        self.links
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(link.actor_id.clone(), link.clone());
        self.puts.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    async fn delete_link(&self, actor_id: &str) {
        self.links
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(actor_id);
    }

    async fn handle_invocation(
        &self,
        ctx: &CallContext,
        operation: &str,
        payload: Vec<u8>,
    ) -> Result<Vec<u8>, ProviderError> {
        match operation {
            "Echo" => Ok(payload),
            "CallActor" => {
                let request: CallActorRequest =
                    nimbus_core::encoding::from_msgpack_lenient(&payload).map_err(|e| {
                        ProviderError::BadPayload {
                            operation: operation.to_string(),
                            reason: e.to_string(),
                        }
                    })?;
                let actors = self.actors.get().ok_or_else(|| {
                    ProviderError::Backend(
                        "the echo provider was not started, so it cannot call actors".to_string(),
                    )
                })?;
                actors
                    .call_actor(&request.actor_id, &request.operation, request.payload)
                    .await
            }
            "Links" => encode(operation, &self.linked_actors()),
            "LinkPuts" => encode(operation, &self.puts.load(Ordering::SeqCst)),
            "Crash" if self.crash_enabled => {
                warn!(actor_id = %ctx.actor_id, "Crash requested: exiting abruptly");
                std::process::exit(CRASH_EXIT_CODE)
            }
            _ => Err(ProviderError::UnknownOperation {
                contract_id: CONTRACT_ID.to_string(),
                operation: operation.to_string(),
            }),
        }
    }

    async fn health(&self) -> HealthCheckResponse {
        let links = self.links.lock().unwrap_or_else(|e| e.into_inner()).len();
        HealthCheckResponse {
            healthy: true,
            message: Some(format!("echo: {links} links")),
        }
    }

    async fn shutdown(&self) {
        info!("echo provider shutting down");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> CallContext {
        CallContext {
            actor_id: "MA".into(),
            link_name: "default".into(),
        }
    }

    #[tokio::test]
    async fn echoes_and_reports_links() {
        let p = EchoProvider::new();
        let link = LinkDefinition::new("MA", "VP", "default", CONTRACT_ID, Default::default());
        p.put_link(&link).await.unwrap();
        assert_eq!(
            p.handle_invocation(&ctx(), "Echo", b"hi".to_vec())
                .await
                .unwrap(),
            b"hi"
        );
        let links = p.handle_invocation(&ctx(), "Links", vec![]).await.unwrap();
        assert_eq!(
            rmp_serde::from_slice::<Vec<String>>(&links).unwrap(),
            vec!["MA"]
        );
        p.delete_link("MA").await;
        let links = p.handle_invocation(&ctx(), "Links", vec![]).await.unwrap();
        assert!(
            rmp_serde::from_slice::<Vec<String>>(&links)
                .unwrap()
                .is_empty()
        );
        let puts = p
            .handle_invocation(&ctx(), "LinkPuts", vec![])
            .await
            .unwrap();
        assert_eq!(rmp_serde::from_slice::<u64>(&puts).unwrap(), 1);
    }

    #[tokio::test]
    async fn crash_is_refused_unless_enabled_and_bad_payloads_are_errors() {
        let p = EchoProvider::new();
        let err = p
            .handle_invocation(&ctx(), "Crash", vec![])
            .await
            .unwrap_err();
        assert!(matches!(err, ProviderError::UnknownOperation { .. }));
        let err = p
            .handle_invocation(&ctx(), "CallActor", b"\xc1".to_vec())
            .await
            .unwrap_err();
        assert!(matches!(err, ProviderError::BadPayload { .. }));
    }
}
