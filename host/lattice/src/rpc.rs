//! The RPC plane over NATS: sending an invocation (envelope, anti-forgery token, request
//! with timeout) and serving one subject (an actor's, or an in-process provider's) in its
//! queue group, checking and answering every message.
//!
//! A served subject is drained on stop: the host stops taking new requests, finishes the
//! ones it has, and only then lets go, so a stopping host loses no request.

use std::sync::Arc;
use std::time::Duration;

use async_nats::RequestErrorKind;
use futures_util::StreamExt;
use nimbus_core::claims::{ClaimsError, ExpectedInvocation, sign_invocation, verify_invocation};
use nimbus_core::wire::{Invocation, InvocationResponse, WasmCloudEntity};
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};
use tracing::Instrument;

use crate::error::{HostError, InvocationError};
use crate::inner::HostInner;
use crate::router::describe;

/// Bytes allowed on top of `max_payload` for the rest of an envelope.
const ENVELOPE_SLACK: usize = 16 * 1024;

impl HostInner {
    /// Sends an invocation over NATS and waits for its response.
    pub async fn send_remote(
        &self,
        origin: WasmCloudEntity,
        target: WasmCloudEntity,
        operation: &str,
        payload: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>, InvocationError> {
        let Some(client) = &self.nats else {
            return Err(InvocationError::unknown_target(format!(
                "{} does not run on this standalone host (no lattice connection to reach it elsewhere)",
                describe(&target)
            )));
        };
        let mut inv = Invocation::new(origin, target, operation, payload, self.id.as_str());
        let span = tracing::debug_span!(
            "invocation",
            actor = %inv.target.public_key,
            operation,
            invocation_id = %inv.id,
            remote = true,
        );
        async {
            if self.config.sign_invocations {
                inv.encoded_claims = sign_invocation(
                    &self.cluster_key,
                    &inv.id,
                    &inv.origin_url(),
                    &inv.target_url(),
                    &inv.operation,
                    &inv.msg,
                )
                .map_err(InvocationError::claims_invalid)?;
            }
            let subject = self.subjects.rpc_subject_for(&inv.target);
            let body = inv.to_msgpack().map_err(InvocationError::malformed)?;
            let request = async_nats::Request::new()
                .payload(body.into())
                .timeout(Some(timeout));
            let reply = client
                .send_request(subject.clone(), request)
                .await
                .map_err(|e| match e.kind() {
                    RequestErrorKind::TimedOut => {
                        InvocationError::timed_out(&describe(&inv.target), timeout)
                    }
                    RequestErrorKind::NoResponders => {
                        InvocationError::no_responders(&subject, &describe(&inv.target))
                    }
                    RequestErrorKind::MaxPayloadExceeded => InvocationError::PayloadTooLarge(
                        format!("payload too large ({} bytes; {e})", inv.msg.len()),
                    ),
                    _ => InvocationError::transport(e),
                })?;
            let response = InvocationResponse::from_msgpack(&reply.payload).map_err(|e| {
                InvocationError::Failed(format!(
                    "invalid InvocationResponse from {}: {e}",
                    describe(&inv.target)
                ))
            })?;
            response.into_result().map_err(InvocationError::from_remote)
        }
        .instrument(span)
        .await
    }

    /// Answers one message of a served subject.
    async fn handle_rpc_message(self: Arc<Self>, msg: async_nats::Message) {
        let Some(reply) = msg.reply.clone() else {
            tracing::debug!(subject = %msg.subject, "dropping an RPC message without a reply subject");
            return;
        };
        let response = self.serve_invocation(&msg.payload).await;
        let body = match response.to_msgpack() {
            Ok(body) => body,
            Err(e) => {
                tracing::error!(error = %e, "could not encode an InvocationResponse");
                return;
            }
        };
        if let Some(client) = &self.nats
            && let Err(e) = client.publish(reply, body.into()).await
        {
            tracing::warn!(error = %e, "could not send an InvocationResponse");
        }
    }

    /// Decodes, checks and runs one invocation; never fails, errors go in the response.
    pub async fn serve_invocation(self: &Arc<Self>, bytes: &[u8]) -> InvocationResponse {
        let max = self.config.max_payload;
        if bytes.len() > max + ENVELOPE_SLACK {
            return InvocationResponse::failure(
                "",
                InvocationError::payload_too_large(bytes.len() as u64, max).to_string(),
            );
        }
        let inv = match Invocation::from_msgpack(bytes) {
            Ok(inv) => inv,
            Err(e) => {
                tracing::debug!(error = %e, "malformed invocation");
                return InvocationResponse::failure("", InvocationError::malformed(e).to_string());
            }
        };
        let span = tracing::debug_span!(
            "invocation",
            actor = %inv.target.public_key,
            operation = %inv.operation,
            invocation_id = %inv.id,
            origin = %inv.origin.public_key,
        );
        let id = inv.id.clone();
        match self.check_and_deliver(inv).instrument(span).await {
            Ok(msg) => InvocationResponse::success(id, msg),
            Err(e) => {
                tracing::debug!(error = %e, "invocation failed");
                InvocationResponse::failure(id, e.to_string())
            }
        }
    }

    async fn check_and_deliver(
        self: &Arc<Self>,
        inv: Invocation,
    ) -> Result<Vec<u8>, InvocationError> {
        let max = self.config.max_payload;
        let size = inv.content_length.unwrap_or(0).max(inv.msg.len() as u64);
        if size > max as u64 {
            return Err(InvocationError::payload_too_large(size, max));
        }
        if inv.is_chunked() {
            return Err(InvocationError::malformed(format!(
                "content_length {} is larger than msg ({} bytes) but this host does not fetch chunked payloads",
                size,
                inv.msg.len()
            )));
        }
        if self.config.sign_invocations {
            self.verify_token(&inv)?;
        }
        let Invocation {
            origin,
            target,
            operation,
            msg,
            ..
        } = inv;
        if target.is_actor() {
            let Some(actor) = self.local_actor(&target.public_key) else {
                return Err(InvocationError::unknown_target(format!(
                    "actor {} is not running on host {}",
                    target.public_key, self.id
                )));
            };
            self.authorize(&origin, &target)?;
            actor.call_async(&operation, msg).await
        } else {
            let provider = self
                .local_provider(&target.public_key, &target.link_name)
                .filter(|p| p.in_process().is_some() && p.contract_id == target.contract_id);
            let Some(provider) = provider else {
                return Err(InvocationError::unknown_target(format!(
                    "{} is not running on host {}",
                    describe(&target),
                    self.id
                )));
            };
            self.authorize(&origin, &target)?;
            self.call_provider(&provider, &origin, &operation, msg, self.config.rpc_timeout)
                .await
        }
    }

    fn verify_token(&self, inv: &Invocation) -> Result<(), InvocationError> {
        if inv.encoded_claims.is_empty() {
            return Err(InvocationError::claims_invalid(
                "the invocation carries no anti-forgery token; the sender must sign invocations with the lattice's cluster key (or turn signing off on every host)",
            ));
        }
        let origin_url = inv.origin_url();
        let target_url = inv.target_url();
        let expected = ExpectedInvocation {
            id: &inv.id,
            origin_url: &origin_url,
            target_url: &target_url,
            operation: &inv.operation,
            msg: &inv.msg,
        };
        verify_invocation(&inv.encoded_claims, &expected, &self.cluster_issuers)
            .map(|_| ())
            .map_err(|e| match e {
                ClaimsError::UntrustedIssuer { issuer } => {
                    let reason = untrusted_cluster_key(
                        &issuer,
                        &self.id,
                        &self.config.lattice,
                        &self.cluster_issuers,
                    );
                    tracing::warn!(origin = %origin_url, "{reason}");
                    InvocationError::claims_invalid(reason)
                }
                other => InvocationError::claims_invalid(other),
            })
    }
}

/// A subject being served; stop it with [`Serving::stop`].
pub(crate) struct Serving {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Serving {
    /// Stops taking requests, finishes the ones taken (at most `grace`), then returns.
    pub async fn stop(mut self, grace: Duration) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if tokio::time::timeout(grace, &mut self.task).await.is_err() {
            tracing::warn!(
                "in-flight invocations did not finish within {grace:?}; abandoning them"
            );
            self.task.abort();
        }
    }
}

/// Subscribes to `subject` in `queue` and serves it until stopped. Returns once the
/// server has the subscription, so a caller may send right away.
pub(crate) async fn serve(
    host: &Arc<HostInner>,
    subject: String,
    queue: String,
) -> Result<Option<Serving>, HostError> {
    let Some(client) = &host.nats else {
        return Ok(None);
    };
    let mut subscriber = client
        .queue_subscribe(subject.clone(), queue)
        .await
        .map_err(|e| HostError::Nats(format!("cannot subscribe to {subject}: {e}")))?;
    if let Err(e) = client.flush().await {
        tracing::warn!(%subject, error = %e, "could not flush a new subscription");
    }
    let weak = Arc::downgrade(host);
    let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let mut in_flight = JoinSet::new();
        let mut draining = false;
        loop {
            tokio::select! {
                message = subscriber.next() => {
                    let Some(message) = message else { break };
                    let Some(host) = weak.upgrade() else { break };
                    in_flight.spawn(host.handle_rpc_message(message));
                }
                _ = &mut stop_rx, if !draining => {
                    draining = true;
                    // Unsubscribe at the server; what it already sent us still arrives.
                    if subscriber.drain().await.is_err() {
                        break;
                    }
                }
                Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
            }
        }
        while in_flight.join_next().await.is_some() {}
        tracing::debug!(%subject, "stopped serving");
    });
    Ok(Some(Serving {
        stop: Some(stop_tx),
        task,
    }))
}

/// What a host says when an invocation is signed by a cluster key it does not trust:
/// which key it saw, which it trusts, and the two ways to make them agree.
fn untrusted_cluster_key(
    issuer: &str,
    host_id: &str,
    lattice: &str,
    trusted: &nimbus_core::keys::TrustedIssuers,
) -> String {
    format!(
        "invocation signed by cluster key {issuer}, which host {host_id} of lattice `{lattice}` does not trust (it trusts {}). \
         If {issuer} is this lattice's key, give this machine its seed: run `wash lattice key export --lattice {lattice}` \
         where the key lives and `wash lattice key import --lattice {lattice} SEED` here, then restart the host; \
         or start the host with `--cluster-issuer {issuer}` to trust it as well",
        trusted.public_keys().collect::<Vec<_>>().join(", ")
    )
}
