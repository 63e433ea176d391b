//! The `wasmcloud:httpserver` capability provider: for every actor linked to it, an
//! HTTP/1.1 listener (address, port, body limit and timeouts from the link values) that
//! turns each request into a `HandleRequest` invocation of that actor and the actor's
//! answer into the HTTP response.
//!
//! Status codes the provider itself produces: 413 for a body over the limit, and for a
//! request whose invocation the actor's host refuses as larger than its max payload (the
//! actor never ran); 408, closing the connection, for a body not complete within the body
//! timeout (`body_timeout_ms`, 30 s by default; slow headers are cut off after
//! `header_timeout_ms`, also 30 s); 504 when the actor does not answer within the
//! timeout; 503 when the actor cannot be reached (not running anywhere); 503 with
//! `Retry-After` when the actor is busy (its host refused the call at an admission bound:
//! all instances busy and the queue full, or the host at its instance limit); 500 when it
//! fails or answers with something that is not an HttpResponse; 400 for a body that
//! cannot be read. A link put opens the listener, a link delete closes it after in-flight
//! requests finish; no restart either way.
//!
//! The provider is a library: a host runs it in process, or a small binary runs it out
//! of process through the provider SDK.

mod listener;
pub mod settings;
pub mod wire;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use nimbus_provider_sdk::{
    ActorCaller, CallContext, LinkDefinition, Provider, ProviderContext, ProviderError,
};
use tokio::sync::Mutex;
use tracing::info;

pub use listener::{BUSY_RETRY_AFTER_SECS, Listener};
pub use settings::ServerSettings;

/// The contract id this provider implements.
pub const CONTRACT_ID: &str = "wasmcloud:httpserver";

/// How long a closing listener waits for in-flight requests by default.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The HTTP server provider; one value serves any number of linked actors.
pub struct HttpServerProvider {
    actors: OnceLock<Arc<dyn ActorCaller>>,
    listeners: Mutex<HashMap<String, Listener>>,
    shutdown_grace: Duration,
}

impl Default for HttpServerProvider {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpServerProvider {
    /// A provider with the default shutdown grace period.
    pub fn new() -> Self {
        Self::with_shutdown_grace(DEFAULT_SHUTDOWN_GRACE)
    }

    /// A provider whose listeners wait at most `grace` for in-flight requests on close.
    pub fn with_shutdown_grace(grace: Duration) -> Self {
        HttpServerProvider {
            actors: OnceLock::new(),
            listeners: Mutex::new(HashMap::new()),
            shutdown_grace: grace,
        }
    }

    /// The address the listener of `actor_id` is bound to, if the actor is linked. Useful
    /// when a link asks for port 0.
    pub async fn listener_addr(&self, actor_id: &str) -> Option<SocketAddr> {
        self.listeners
            .lock()
            .await
            .get(actor_id)
            .map(Listener::local_addr)
    }
}

#[async_trait]
impl Provider for HttpServerProvider {
    fn contract_id(&self) -> &str {
        CONTRACT_ID
    }

    async fn start(&self, ctx: ProviderContext) -> Result<(), ProviderError> {
        // A second start (a host re-sending its context) keeps the first caller.
        let _ = self.actors.set(ctx.actors);
        Ok(())
    }

    async fn put_link(&self, link: &LinkDefinition) -> Result<(), ProviderError> {
        let settings =
            ServerSettings::from_link_values(&link.values).map_err(|e| ProviderError::BadLink {
                actor_id: link.actor_id.clone(),
                reason: e.to_string(),
            })?;
        let actors = self.actors.get().cloned().ok_or_else(|| {
            ProviderError::Backend(
                "the HTTP server provider was linked before it was started".into(),
            )
        })?;
        let mut listeners = self.listeners.lock().await;
        if listeners
            .get(&link.actor_id)
            .is_some_and(|existing| existing.settings() == &settings)
        {
            return Ok(());
        }
        if let Some(old) = listeners.remove(&link.actor_id) {
            info!(actor_id = %link.actor_id, "link changed; replacing its HTTP listener");
            old.shutdown(self.shutdown_grace).await;
        }
        let listener = Listener::bind(&link.actor_id, settings.clone(), actors)
            .await
            .map_err(|e| ProviderError::BadLink {
                actor_id: link.actor_id.clone(),
                reason: format!(
                    "cannot listen on {}: {e}; pick a free port with the link value `port` or `address`",
                    settings.address
                ),
            })?;
        listeners.insert(link.actor_id.clone(), listener);
        Ok(())
    }

    async fn delete_link(&self, actor_id: &str) {
        let removed = self.listeners.lock().await.remove(actor_id);
        if let Some(listener) = removed {
            listener.shutdown(self.shutdown_grace).await;
        }
    }

    async fn handle_invocation(
        &self,
        _ctx: &CallContext,
        operation: &str,
        _payload: Vec<u8>,
    ) -> Result<Vec<u8>, ProviderError> {
        // The HTTP server only calls actors; actors have nothing to call on it.
        Err(ProviderError::UnknownOperation {
            contract_id: CONTRACT_ID.into(),
            operation: operation.into(),
        })
    }

    async fn shutdown(&self) {
        let listeners: Vec<Listener> = self
            .listeners
            .lock()
            .await
            .drain()
            .map(|(_, l)| l)
            .collect();
        for listener in listeners {
            listener.shutdown(self.shutdown_grace).await;
        }
    }
}
