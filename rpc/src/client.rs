//! Sending an invocation: the envelope, the anti-forgery token, the request with a
//! deadline, and the response turned back into bytes or an [`InvocationError`].

use std::time::Duration;

use async_nats::RequestErrorKind;
use nimbus_core::claims::{invocation_lifetime, sign_invocation_with_lifetime};
use nimbus_core::keys::KeyPair;
use nimbus_core::subjects::Subjects;
use nimbus_core::wire::{Invocation, InvocationResponse, WasmCloudEntity};
use tracing::Instrument as _;

use crate::error::InvocationError;

/// The cluster key invocations are signed with (`None`: sent unsigned, for lattices with
/// signing off).
pub type Signer = Option<KeyPair>;

/// Sends invocations into one lattice over one NATS connection. Cheap to clone.
#[derive(Clone)]
pub struct RpcClient {
    nats: async_nats::Client,
    subjects: Subjects,
    host_id: String,
    signer: std::sync::Arc<Signer>,
}

impl std::fmt::Debug for RpcClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcClient")
            .field("lattice", &self.subjects.lattice())
            .field("host_id", &self.host_id)
            .field("signed", &self.signer.is_some())
            .finish_non_exhaustive()
    }
}

impl RpcClient {
    /// A client of the lattice of `subjects`; invocations name `host_id` as their sender
    /// (a host's `N...` key, or the cluster key for callers that are no host).
    pub fn new(nats: async_nats::Client, subjects: Subjects, host_id: impl Into<String>) -> Self {
        RpcClient {
            nats,
            subjects,
            host_id: host_id.into(),
            signer: std::sync::Arc::new(None),
        }
    }

    /// Signs every invocation with `signer` (a cluster key), or none with `None`.
    pub fn with_signer(mut self, signer: Signer) -> Self {
        self.signer = std::sync::Arc::new(signer);
        self
    }

    /// The lattice's subjects.
    pub fn subjects(&self) -> &Subjects {
        &self.subjects
    }

    /// The NATS connection.
    pub fn nats(&self) -> &async_nats::Client {
        &self.nats
    }

    /// Calls `operation` on `target` as `origin` and waits at most `timeout` for the
    /// answer.
    pub async fn invoke(
        &self,
        origin: WasmCloudEntity,
        target: WasmCloudEntity,
        operation: &str,
        payload: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>, InvocationError> {
        let inv = Invocation::new(origin, target, operation, payload, self.host_id.as_str());
        let span = tracing::debug_span!(
            "invocation",
            target = %inv.target.public_key,
            operation,
            invocation_id = %inv.id,
            remote = true,
        );
        self.send(inv, timeout).instrument(span).await
    }

    async fn send(
        &self,
        mut inv: Invocation,
        timeout: Duration,
    ) -> Result<Vec<u8>, InvocationError> {
        if let Some(signer) = self.signer.as_ref() {
            // Valid while the caller waits, plus the clock skew a lattice allows: a
            // receiver refuses it after that and remembers it (against replays) until then.
            inv.encoded_claims = sign_invocation_with_lifetime(
                signer,
                &inv.id,
                &inv.origin_url(),
                &inv.target_url(),
                &inv.operation,
                &inv.msg,
                invocation_lifetime(timeout),
            )
            .map_err(InvocationError::claims_invalid)?;
        }
        let subject = self.subjects.rpc_subject_for(&inv.target);
        // The trace this call belongs to travels both ways 0.x peers read it: in the
        // envelope's `traceContext` (RH) and as W3C NATS headers (wasmbus-rpc 0.15, OTP).
        let parent = nimbus_telemetry::current();
        if let Some(parent) = &parent {
            inv.trace_context = Some(parent.to_map());
        }
        let body = inv.to_msgpack().map_err(InvocationError::malformed)?;
        let mut request = async_nats::Request::new()
            .payload(body.into())
            .timeout(Some(timeout));
        if let Some(parent) = &parent {
            request = request.headers(trace_headers(parent));
        }
        let reply = self
            .nats
            .send_request(subject.clone(), request)
            .await
            .map_err(|e| match e.kind() {
                RequestErrorKind::TimedOut => {
                    InvocationError::timed_out(&describe(&inv.target), timeout)
                }
                RequestErrorKind::NoResponders => {
                    InvocationError::no_responders(&subject, &describe(&inv.target))
                }
                RequestErrorKind::MaxPayloadExceeded => InvocationError::payload_too_large(
                    inv.msg.len() as u64,
                    self.nats.server_info().max_payload,
                ),
                _ => InvocationError::transport(e),
            })?;
        let response = InvocationResponse::from_msgpack(&reply.payload).map_err(|e| {
            InvocationError::failed(format!(
                "invalid InvocationResponse from {}: {e}",
                describe(&inv.target)
            ))
        })?;
        if response.is_chunked() {
            return Err(InvocationError::failed(format!(
                "the response of {} was chunked through the object store, which this lattice does not read; keep responses under the NATS max payload",
                describe(&inv.target)
            )));
        }
        response.into_result().map_err(InvocationError::from_wire)
    }
}

/// The W3C trace headers of a NATS message sent on behalf of `parent`.
pub fn trace_headers(parent: &nimbus_telemetry::TraceParent) -> async_nats::HeaderMap {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(
        nimbus_telemetry::TRACEPARENT,
        parent.span.traceparent().as_str(),
    );
    if let Some(state) = &parent.tracestate {
        headers.insert(nimbus_telemetry::TRACESTATE, state.as_str());
    }
    headers
}

/// Describes an entity for messages: `actor M...` or `provider V... (contract, link)`.
pub fn describe(entity: &WasmCloudEntity) -> String {
    if entity.is_actor() {
        format!("actor {}", entity.public_key)
    } else {
        format!(
            "provider {} ({} link name {})",
            entity.public_key, entity.contract_id, entity.link_name
        )
    }
}
