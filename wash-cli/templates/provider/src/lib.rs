//! `{{name}}`: a capability provider for the contract `{{contract}}`, built on the
//! nimbus provider SDK. Actors linked to it call its operations with `host_call`:
//!
//! | operation | request | response |
//! |---|---|---|
//! | `Echo` | any bytes | the same bytes |
//! | `Links` | ignored | the number of linked actors, as decimal text |

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use nimbus_provider_sdk::{
    CallContext, HealthCheckResponse, LinkDefinition, Provider, ProviderContext, ProviderError,
};

/// The contract id this provider implements.
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
        _ctx: &CallContext,
        operation: &str,
        payload: Vec<u8>,
    ) -> Result<Vec<u8>, ProviderError> {
        match operation {
            "Echo" => Ok(payload),
            "Links" => Ok(self.link_count().to_string().into_bytes()),
            _ => Err(ProviderError::UnknownOperation {
                contract_id: CONTRACT_ID.to_string(),
                operation: operation.to_string(),
            }),
        }
    }

    async fn health(&self) -> HealthCheckResponse {
        HealthCheckResponse {
            healthy: true,
            message: Some(format!("{{name}}: {} links", self.link_count())),
        }
    }
}
