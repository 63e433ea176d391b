//! `{{name}}`: a capability provider for the contract `{{contract}}`, built on the
//! nimbus provider SDK. Its operations are declared in `interface.widl`: `Echo` (returns
//! the bytes it is sent) and `Links` (the number of linked actors). build.rs generates the
//! [`interface::Operations`] trait this provider implements and the dispatcher
//! `handle_invocation` forwards to, which decodes requests and encodes replies.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use nimbus_provider_sdk::{
    CallContext, HealthCheckResponse, LinkDefinition, Provider, ProviderContext, ProviderError,
};

/// The code generated from `interface.widl`: its types, the `Operations` trait and
/// `dispatch_operations`.
pub mod interface {
    include!(concat!(env!("OUT_DIR"), "/interface.rs"));
}

/// The contract id this provider implements (the `namespace` of `interface.widl`).
pub const CONTRACT_ID: &str = "{{contract}}";

/// The provider: its state is the table of links (one per linked actor).
#[derive(Default)]
pub struct {{type}} {
    links: Mutex<BTreeMap<String, LinkDefinition>>,
}

impl {{type}} {
    fn link_count(&self) -> usize {
        self.links.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[async_trait]
impl Provider for {{type}} {
    fn contract_id(&self) -> &str {
        CONTRACT_ID
    }

    async fn start(&self, ctx: ProviderContext) -> Result<(), ProviderError> {
        eprintln!(
            "{{name}}: starting as {} (link name {})",
            ctx.provider_id, ctx.link_name
        );
        Ok(())
    }

    async fn put_link(&self, link: &LinkDefinition) -> Result<(), ProviderError> {
        self.links
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(link.actor_id.clone(), link.clone());
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
        // Decodes the request, calls the `Operations` method and encodes its result;
        // unknown operations and undecodable payloads are typed errors.
        interface::dispatch_operations(self, ctx, operation, &payload).await
    }

    async fn health(&self) -> HealthCheckResponse {
        HealthCheckResponse {
            healthy: true,
            message: Some(format!("{{name}}: {} links", self.link_count())),
        }
    }
}

impl interface::Operations for {{type}} {
    async fn echo(&self, _ctx: &CallContext, payload: Vec<u8>) -> Result<Vec<u8>, ProviderError> {
        Ok(payload)
    }

    async fn links(&self, _ctx: &CallContext) -> Result<u32, ProviderError> {
        Ok(u32::try_from(self.link_count()).unwrap_or(u32::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> CallContext {
        CallContext {
            actor_id: "MACTOR".to_string(),
            link_name: "default".to_string(),
        }
    }

    #[test]
    fn the_contract_id_is_the_namespace_of_the_widl() {
        assert_eq!(CONTRACT_ID, interface::CONTRACT_ID);
    }

    #[tokio::test]
    async fn operations_answer_through_the_generated_dispatcher()
    -> Result<(), Box<dyn std::error::Error>> {
        let provider = {{type}}::default();
        let request = rmp_serde::to_vec(&serde_bytes::Bytes::new(b"hi"))?;
        let reply = provider
            .handle_invocation(&ctx(), interface::OP_ECHO, request)
            .await?;
        let echoed: serde_bytes::ByteBuf = rmp_serde::from_slice(&reply)?;
        assert_eq!(echoed.as_slice(), b"hi");

        let reply = provider
            .handle_invocation(&ctx(), interface::OP_LINKS, Vec::new())
            .await?;
        assert_eq!(rmp_serde::from_slice::<u32>(&reply)?, 0);

        let unknown = provider.handle_invocation(&ctx(), "Nope", Vec::new()).await;
        assert!(
            matches!(unknown, Err(ProviderError::UnknownOperation { .. })),
            "{unknown:?}"
        );
        Ok(())
    }
}
