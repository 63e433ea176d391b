//! The out-of-process way back into the lattice: an [`ActorCaller`] that sends a signed
//! Invocation to the actor's RPC subject (through `nimbus-rpc`, like every sender of the
//! lattice) and waits for its InvocationResponse.

use std::time::Duration;

use async_nats::Client;
use async_trait::async_trait;
use nimbus_core::keys::{KeyKind, KeyPair};
use nimbus_core::subjects::Subjects;
use nimbus_core::wire::{HostData, WasmCloudEntity};
use nimbus_rpc::{ErrorKind, RpcClient};
use tracing::{Instrument, debug, debug_span};

use super::RunError;
use crate::{ActorCaller, ProviderError};

/// The RPC timeout when the host data names none (the lattice default).
pub const DEFAULT_RPC_TIMEOUT: Duration = Duration::from_millis(2000);

/// Calls actors over NATS on behalf of one provider instance: origin = this provider
/// (key, contract id, link name), target = the actor, signed with the host data's
/// `invocation_seed` when there is one.
pub struct NatsActorCaller {
    rpc: RpcClient,
    origin: WasmCloudEntity,
    timeout: Duration,
}

impl std::fmt::Debug for NatsActorCaller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsActorCaller")
            .field("rpc", &self.rpc)
            .field("origin", &self.origin)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl NatsActorCaller {
    /// A caller for the provider described by `host_data`, implementing `contract_id`.
    /// Fails if the `invocation_seed` is set but is not a cluster seed.
    pub fn new(client: Client, host_data: &HostData, contract_id: &str) -> Result<Self, RunError> {
        let seed = host_data.invocation_seed.trim();
        let signer = if seed.is_empty() {
            None
        } else {
            Some(
                KeyPair::from_seed_of_kind(seed, KeyKind::Cluster).map_err(|e| {
                    RunError::InvalidHostData {
                        field: "invocation_seed",
                        reason: e.to_string(),
                    }
                })?,
            )
        };
        let timeout = host_data
            .default_rpc_timeout_ms
            .filter(|ms| *ms > 0)
            .map_or(DEFAULT_RPC_TIMEOUT, Duration::from_millis);
        let rpc = RpcClient::new(
            client,
            Subjects::for_lattice(host_data.lattice_rpc_prefix.clone()),
            host_data.host_id.clone(),
        )
        .with_signer(signer);
        Ok(NatsActorCaller {
            rpc,
            origin: WasmCloudEntity::provider(
                host_data.provider_key.clone(),
                contract_id,
                host_data.link_name.clone(),
            ),
            timeout,
        })
    }

    /// How long a call waits for the actor's reply.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    fn call_failed(actor_id: &str, reason: impl Into<String>) -> ProviderError {
        ProviderError::ActorCall {
            actor_id: actor_id.to_string(),
            reason: reason.into(),
        }
    }
}

/// An actor id must be one subject token: no separators, wildcards or whitespace.
fn valid_subject_token(token: &str) -> bool {
    !token.is_empty()
        && !token
            .chars()
            .any(|c| c == '.' || c == '*' || c == '>' || c.is_whitespace())
}

#[async_trait]
impl ActorCaller for NatsActorCaller {
    async fn call_actor(
        &self,
        actor_id: &str,
        operation: &str,
        payload: Vec<u8>,
    ) -> Result<Vec<u8>, ProviderError> {
        if !valid_subject_token(actor_id) {
            return Err(ProviderError::ActorUnavailable {
                actor_id: actor_id.to_string(),
                reason: "not a valid actor public key (expected an `M...` key)".to_string(),
            });
        }
        let target = WasmCloudEntity::actor(actor_id);
        let span = debug_span!("call_actor", %actor_id, %operation);
        self.rpc
            .invoke(
                self.origin.clone(),
                target,
                operation,
                payload,
                self.timeout,
            )
            .instrument(span.clone())
            .await
            .map_err(|e| {
                span.in_scope(|| debug!(error = %e, "actor call failed"));
                match e.kind() {
                    ErrorKind::NoResponders => ProviderError::ActorUnavailable {
                        actor_id: actor_id.to_string(),
                        reason: format!(
                            "{e} (lattice `{}`; start it there with `wash ctl start actor`)",
                            self.rpc.subjects().lattice()
                        ),
                    },
                    ErrorKind::Busy => ProviderError::ActorBusy {
                        actor_id: actor_id.to_string(),
                        reason: e.to_string(),
                    },
                    _ => Self::call_failed(actor_id, e.to_string()),
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::valid_subject_token;

    #[test]
    fn actor_ids_must_be_single_subject_tokens() {
        assert!(valid_subject_token("MABC"));
        for bad in ["", "M.A", "M*", ">", "M A", "M\n"] {
            assert!(!valid_subject_token(bad), "{bad:?}");
        }
    }
}
