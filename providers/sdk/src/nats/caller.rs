//! The out-of-process way back into the lattice: an [`ActorCaller`] that sends a signed
//! Invocation to the actor's RPC subject and waits for its InvocationResponse.

use std::time::Duration;

use async_nats::{Client, RequestErrorKind};
use async_trait::async_trait;
use nimbus_core::claims;
use nimbus_core::keys::{KeyKind, KeyPair};
use nimbus_core::subjects::Subjects;
use nimbus_core::wire::{HostData, Invocation, InvocationResponse, WasmCloudEntity};
use tracing::{Instrument, debug, debug_span};

use super::RunError;
use crate::{ActorCaller, ProviderError};

/// The RPC timeout when the host data names none (the lattice default).
pub const DEFAULT_RPC_TIMEOUT: Duration = Duration::from_millis(2000);

/// Calls actors over NATS on behalf of one provider instance: origin = this provider
/// (key, contract id, link name), target = the actor, signed with the host data's
/// `invocation_seed` when there is one.
pub struct NatsActorCaller {
    client: Client,
    subjects: Subjects,
    origin: WasmCloudEntity,
    host_id: String,
    signer: Option<KeyPair>,
    timeout: Duration,
}

impl std::fmt::Debug for NatsActorCaller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsActorCaller")
            .field("lattice", &self.subjects.lattice())
            .field("origin", &self.origin)
            .field("signed", &self.signer.is_some())
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
        Ok(NatsActorCaller {
            client,
            subjects: Subjects::for_lattice(host_data.lattice_rpc_prefix.clone()),
            origin: WasmCloudEntity::provider(
                host_data.provider_key.clone(),
                contract_id,
                host_data.link_name.clone(),
            ),
            host_id: host_data.host_id.clone(),
            signer,
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
        let mut inv = Invocation::new(
            self.origin.clone(),
            WasmCloudEntity::actor(actor_id),
            operation,
            payload,
            self.host_id.clone(),
        );
        if let Some(signer) = &self.signer {
            inv.encoded_claims = claims::sign_invocation(
                signer,
                &inv.id,
                &inv.origin_url(),
                &inv.target_url(),
                &inv.operation,
                &inv.msg,
            )
            .map_err(|e| {
                Self::call_failed(actor_id, format!("failed to sign the invocation: {e}"))
            })?;
        }
        let body = inv.to_msgpack().map_err(|e| {
            Self::call_failed(actor_id, format!("failed to encode the invocation: {e}"))
        })?;
        let subject = self.subjects.rpc_actor(actor_id);
        let span = debug_span!("call_actor", %actor_id, %operation, invocation_id = %inv.id);
        let request = async_nats::Request::new()
            .payload(body.into())
            .timeout(Some(self.timeout));
        let reply = match self
            .client
            .send_request(subject.clone(), request)
            .instrument(span.clone())
            .await
        {
            Ok(reply) => reply,
            Err(e) => {
                span.in_scope(|| debug!(error = %e, "actor call failed"));
                return Err(match e.kind() {
                    RequestErrorKind::NoResponders => ProviderError::ActorUnavailable {
                        actor_id: actor_id.to_string(),
                        reason: format!(
                            "no responders on {subject}: the actor runs on no host of lattice `{}`; start it there (`wash ctl start actor`)",
                            self.subjects.lattice()
                        ),
                    },
                    RequestErrorKind::TimedOut => Self::call_failed(
                        actor_id,
                        format!(
                            "timed out after {} ms waiting for a reply on {subject}; the actor or its host is stuck or overloaded, or default_rpc_timeout_ms is too short",
                            self.timeout.as_millis()
                        ),
                    ),
                    _ => Self::call_failed(actor_id, format!("request on {subject} failed: {e}")),
                });
            }
        };
        let response = InvocationResponse::from_msgpack(&reply.payload).map_err(|e| {
            Self::call_failed(
                actor_id,
                format!("the reply is not an InvocationResponse: {e}"),
            )
        })?;
        if response.is_chunked() {
            return Err(Self::call_failed(
                actor_id,
                "the reply was chunked through the object store, which this provider does not read; keep responses under 900 KiB",
            ));
        }
        response
            .into_result()
            .map_err(|reason| Self::call_failed(actor_id, reason))
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
