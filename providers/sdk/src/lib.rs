//! The capability-provider SDK: the one [`Provider`] trait that the HTTP server, the
//! key-value store and every future capability implement, and the [`ActorCaller`] handle
//! through which a provider calls back into actors.
//!
//! A provider is a library first. The same value runs in process inside a host (the host
//! calls the trait methods directly; standalone mode and the local fast path), or out of
//! process as its own binary speaking the provider protocol over NATS (host data on stdin,
//! RPC, link and health subjects). Neither the trait nor an implementation knows which.

use std::sync::Arc;

use async_trait::async_trait;
pub use nimbus_core::link::LinkDefinition;
pub use nimbus_core::wire::HealthCheckResponse;

/// Why a provider call failed. The `Display` text travels back to the calling actor in
/// the InvocationResponse `error` field, so it says what went wrong and what to do.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The operation is not part of this provider's contract.
    #[error("unknown operation {operation} for contract {contract_id}")]
    UnknownOperation {
        /// The contract the provider implements.
        contract_id: String,
        /// The operation that was asked for.
        operation: String,
    },
    /// The payload could not be decoded as the operation's request type.
    #[error("invalid payload for {operation}: {reason}")]
    BadPayload {
        /// The operation whose request failed to decode.
        operation: String,
        /// The decoder's explanation.
        reason: String,
    },
    /// The calling actor has no link to this provider (or the link was removed).
    #[error("no link from actor {actor_id} to this provider; add one with `wash ctl link put`")]
    NotLinked {
        /// The actor that called.
        actor_id: String,
    },
    /// A link's values are not usable (bad address, unknown backend, ...).
    #[error("invalid link values for actor {actor_id}: {reason}")]
    BadLink {
        /// The actor whose link was rejected.
        actor_id: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// The provider's backend (database, socket, ...) failed.
    #[error("{0}")]
    Backend(String),
    /// The actor could not be reached: it runs on no host, or no host answered in time to
    /// take the call. Unlike [`ProviderError::ActorCall`], the actor never saw the request.
    #[error("actor {actor_id} is not available: {reason}")]
    ActorUnavailable {
        /// The actor that was called.
        actor_id: String,
        /// Why it could not be reached (not running, no responders, ...).
        reason: String,
    },
    /// The actor runs but refused the call at one of its admission bounds (all its
    /// instances busy and its queue full or its wait over, or its host at its instance
    /// limit). The actor never saw the request, so retrying shortly is safe; the HTTP
    /// server answers it with 503 and `Retry-After`.
    #[error("{reason}")]
    ActorBusy {
        /// The actor that was called.
        actor_id: String,
        /// The host's whole message: it starts with `busy: ` and names the bound hit.
        reason: String,
    },
    /// A call from the provider into an actor failed (the actor returned an error or
    /// trapped, or its reply timed out).
    #[error("call to actor {actor_id} failed: {reason}")]
    ActorCall {
        /// The actor that was called.
        actor_id: String,
        /// The error the host or the actor reported.
        reason: String,
    },
    /// The actor answered, but not with the operation's reply (undecodable msgpack, wrong
    /// shape): the generated `ActorClient`s report it apart from [`ProviderError::ActorCall`]
    /// so a caller can tell a broken actor from a failed call (the HTTP server answers it
    /// with "Malformed response from actor").
    #[error("actor {actor_id} answered {operation} with an invalid reply: {reason}")]
    BadReply {
        /// The actor that was called.
        actor_id: String,
        /// The operation's wire name.
        operation: String,
        /// Why the reply does not decode.
        reason: String,
    },
}

#[cfg(feature = "rpc")]
impl ProviderError {
    /// The error this becomes in the lattice's invocation protocol, with the kind a
    /// caller reacts to (the one mapping, used by the host for in-process providers and
    /// by the out-of-process runner). `contract_id` is the provider's contract.
    pub fn to_invocation_error(&self, contract_id: &str) -> nimbus_rpc::InvocationError {
        use nimbus_rpc::InvocationError;
        match self {
            ProviderError::UnknownOperation {
                contract_id,
                operation,
            } => InvocationError::unknown_operation(operation, format!("contract {contract_id}")),
            ProviderError::NotLinked { actor_id } => {
                InvocationError::not_linked_at_provider(actor_id, contract_id)
            }
            ProviderError::ActorBusy { reason, .. } => {
                InvocationError::new(nimbus_rpc::ErrorKind::Busy, reason.clone())
            }
            other => InvocationError::from_wire(other.to_string()),
        }
    }

    /// Whether this is a call into an actor that its host (or NATS) refused because the
    /// payload is larger than it accepts, so the actor never saw it: the HTTP server
    /// answers it with 413. Both ways of calling actors (the host's router in process,
    /// [`crate::nats::NatsActorCaller`] out of process) report it as
    /// [`ProviderError::ActorCall`] with the lattice's payload-too-large message.
    pub fn is_payload_too_large(&self) -> bool {
        match self {
            ProviderError::ActorCall { reason, .. } => {
                nimbus_rpc::InvocationError::from_wire(reason.as_str()).kind()
                    == nimbus_rpc::ErrorKind::PayloadTooLarge
            }
            _ => false,
        }
    }
}

/// When the caller of the invocation being handled gives up waiting for its answer, as far
/// as the runner knows it; `None` when it does not know.
///
/// The out-of-process runner ([`nats`]) sets it for every invocation to the moment it took
/// the invocation plus the RPC timeout of the host that started the provider (the host data's
/// `default_rpc_timeout_ms`, which is also what that host's actors wait), less
/// [`DEADLINE_ALLOWANCE`] for the answer's way back. A provider that changes state can
/// refuse to apply a change it could only finish after that moment: its caller has been
/// told the call failed, and would count it twice if it retried. In process, the host drops
/// the invocation's future when its timeout passes instead, and this is `None`.
///
/// Read it in the invocation's own task (not in a task it spawns): it is task-local.
pub fn invocation_deadline() -> Option<std::time::Instant> {
    #[cfg(feature = "nats")]
    {
        nats::current_deadline()
    }
    #[cfg(not(feature = "nats"))]
    {
        None
    }
}

/// How much earlier than the caller's timeout the runner sets [`invocation_deadline`]: a
/// tenth of the timeout, at most this much. It covers the invocation's way to the provider
/// and the answer's way back, which the caller's clock counts and the provider's does not.
pub const DEADLINE_ALLOWANCE: std::time::Duration = std::time::Duration::from_millis(250);

/// Who is calling a provider operation: the actor and the link the call travels on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallContext {
    /// The calling actor's `M...` public key.
    pub actor_id: String,
    /// The link name of the call (`default` unless configured otherwise).
    pub link_name: String,
}

/// The way back from a provider into the lattice: deliver an operation to an actor.
///
/// In process this is the host's router; out of process it is a NATS request to the
/// actor's RPC subject. Either way the provider sees the same errors.
#[async_trait]
pub trait ActorCaller: Send + Sync + 'static {
    /// Calls `operation` on actor `actor_id` with a msgpack `payload`; returns the actor's
    /// msgpack response.
    async fn call_actor(
        &self,
        actor_id: &str,
        operation: &str,
        payload: Vec<u8>,
    ) -> Result<Vec<u8>, ProviderError>;
}

/// What a provider learns when it starts: who runs it and how to reach actors.
#[derive(Clone)]
pub struct ProviderContext {
    /// The `N...` id of the host running the provider.
    pub host_id: String,
    /// The lattice prefix.
    pub lattice: String,
    /// The provider's `V...` public key.
    pub provider_id: String,
    /// The link name this provider instance serves.
    pub link_name: String,
    /// The provider's `configuration` string from its launch command, if any.
    pub config_json: Option<String>,
    /// How to call actors.
    pub actors: Arc<dyn ActorCaller>,
}

impl std::fmt::Debug for ProviderContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderContext")
            .field("host_id", &self.host_id)
            .field("lattice", &self.lattice)
            .field("provider_id", &self.provider_id)
            .field("link_name", &self.link_name)
            .finish_non_exhaustive()
    }
}

/// A capability provider. Implementations keep their own per-link state (one link per
/// actor, keyed by actor id) and must be cheap to call concurrently.
#[async_trait]
pub trait Provider: Send + Sync + 'static {
    /// The contract id this provider implements, e.g. `wasmcloud:keyvalue`.
    fn contract_id(&self) -> &str;

    /// Called once before any link or invocation, with the handle for calling actors.
    async fn start(&self, ctx: ProviderContext) -> Result<(), ProviderError> {
        let _ = ctx;
        Ok(())
    }

    /// A link from an actor to this provider was put (new or changed values). Returning an
    /// error rejects the link; the host reports it and the actor stays unlinked.
    async fn put_link(&self, link: &LinkDefinition) -> Result<(), ProviderError>;

    /// The actor's link was deleted: release what it held (listeners, connections).
    async fn delete_link(&self, actor_id: &str);

    /// Handles one invocation of `operation` with a msgpack `payload` from a linked actor.
    async fn handle_invocation(
        &self,
        ctx: &CallContext,
        operation: &str,
        payload: Vec<u8>,
    ) -> Result<Vec<u8>, ProviderError>;

    /// Answers the host's periodic health probe.
    async fn health(&self) -> HealthCheckResponse {
        HealthCheckResponse::healthy()
    }

    /// Stops the provider: finish in-flight work, close listeners, flush state.
    async fn shutdown(&self) {}
}

#[cfg(feature = "nats")]
pub mod nats;

#[cfg(all(test, feature = "rpc"))]
mod tests {
    use super::*;

    #[test]
    fn a_refused_payload_is_told_from_other_call_failures() {
        let too_large = nimbus_rpc::InvocationError::payload_too_large(1_040_100, 1_032_192);
        let refused = ProviderError::ActorCall {
            actor_id: "MACTOR".into(),
            reason: too_large.to_string(),
        };
        assert!(refused.is_payload_too_large(), "{refused}");
        for other in [
            ProviderError::ActorCall {
                actor_id: "MACTOR".into(),
                reason: "actor trapped: unreachable".into(),
            },
            ProviderError::ActorCall {
                actor_id: "MACTOR".into(),
                reason: "the payload too large (is not the phrase here)".into(),
            },
            ProviderError::Backend(too_large.to_string()),
        ] {
            assert!(!other.is_payload_too_large(), "{other}");
        }
    }
}
