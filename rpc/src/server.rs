//! Answering invocations on one subject: the subscription in its queue group, the
//! protocol checks every message passes (size, decoding, chunking, anti-forgery token),
//! the [`Handler`] that does the work, and the reply. A served subject is drained on
//! stop: no new requests are taken, the ones taken are finished, then it lets go, so a
//! stopping server loses no request it accepted.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use nimbus_core::claims::{ClaimsError, ExpectedInvocation, unix_now, verify_invocation_at};
use nimbus_core::keys::TrustedIssuers;
use nimbus_core::replay::{ReplayError, ReplayGuard};
use nimbus_core::wire::{Invocation, InvocationResponse};
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};
use tracing::Instrument as _;

use crate::error::InvocationError;

/// Bytes allowed on top of the payload maximum for the rest of an envelope.
const ENVELOPE_SLACK: usize = 16 * 1024;

/// What an invocation does once it passed the protocol checks: run an actor, call a
/// provider. The server owns nothing else.
pub trait Handler: Send + Sync + 'static {
    /// Runs `invocation`; the bytes or the error become its InvocationResponse.
    fn handle(
        &self,
        invocation: Invocation,
    ) -> impl Future<Output = Result<Vec<u8>, InvocationError>> + Send;
}

/// The checks a server applies before its handler sees an invocation.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest payload accepted (bytes).
    pub max_payload: usize,
    /// Cluster keys whose tokens are accepted; `None` accepts unsigned invocations
    /// (signing off).
    pub trusted: Option<TrustedIssuers>,
    /// Who answers, for messages: e.g. "host N... of lattice `default`".
    pub receiver: String,
    /// The lattice, for the commands a refusal suggests.
    pub lattice: String,
    /// The signed invocations admitted and not yet expired, to refuse a second delivery
    /// of one (a replay). Share one guard (clones share) among all the subjects a
    /// process serves; `ReplayGuard::default()` starts an empty one. Only used with
    /// `trusted` (an unsigned invocation has no token to tell it by).
    pub replay: ReplayGuard,
}

impl Limits {
    /// Checks one request body and decodes it: size, msgpack, chunking, token.
    pub fn admit(&self, body: &[u8]) -> Result<Invocation, (String, InvocationError)> {
        let max = self.max_payload;
        if body.len() > max.saturating_add(ENVELOPE_SLACK) {
            return Err((
                String::new(),
                InvocationError::payload_too_large(body.len() as u64, max),
            ));
        }
        let inv = Invocation::from_msgpack(body)
            .map_err(|e| (String::new(), InvocationError::malformed(e)))?;
        let size = inv.content_length.unwrap_or(0).max(inv.msg.len() as u64);
        if size > max as u64 {
            return Err((inv.id, InvocationError::payload_too_large(size, max)));
        }
        if inv.is_chunked() {
            let e = InvocationError::malformed(format!(
                "content_length {size} is larger than msg ({} bytes), but {} does not fetch chunked payloads",
                inv.msg.len(),
                self.receiver
            ));
            return Err((inv.id, e));
        }
        if let Some(trusted) = &self.trusted
            && let Err(e) = self.verify(&inv, trusted)
        {
            return Err((inv.id, e));
        }
        Ok(inv)
    }

    /// The one place an anti-forgery token is checked.
    fn verify(&self, inv: &Invocation, trusted: &TrustedIssuers) -> Result<(), InvocationError> {
        if inv.encoded_claims.trim().is_empty() {
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
        let now = unix_now();
        match verify_invocation_at(&inv.encoded_claims, &expected, trusted, now) {
            // Only a token that verified takes memory in the guard.
            Ok(claims) => {
                let evicted = self.replay.evicted_early();
                let admitted = self.replay.admit(&claims, now);
                if self.replay.evicted_early() != evicted && evicted.is_multiple_of(10_000) {
                    tracing::warn!(
                        capacity = self.replay.capacity(),
                        "the replay guard of {} is full; the oldest unexpired tokens are forgotten early and could be replayed until they expire",
                        self.receiver
                    );
                }
                match admitted {
                    Ok(()) => Ok(()),
                    Err(e @ ReplayError::Replayed { .. }) => {
                        tracing::warn!(origin = %origin_url, "{e}");
                        Err(InvocationError::replayed(format!(
                            "{e} ({})",
                            self.receiver
                        )))
                    }
                    Err(e @ ReplayError::Stale { .. }) => Err(InvocationError::claims_invalid(e)),
                }
            }
            Err(ClaimsError::UntrustedIssuer { issuer }) => {
                let reason = untrusted(&issuer, &self.receiver, &self.lattice, trusted);
                tracing::warn!(origin = %origin_url, "{reason}");
                Err(InvocationError::claims_invalid(reason))
            }
            Err(other) => Err(InvocationError::claims_invalid(other)),
        }
    }
}

/// What a receiver says when an invocation is signed by a cluster key it does not trust:
/// which key it saw, which it trusts, and the two ways to make them agree.
fn untrusted(issuer: &str, receiver: &str, lattice: &str, trusted: &TrustedIssuers) -> String {
    format!(
        "invocation signed by cluster key {issuer}, which {receiver} does not trust (it trusts {}). \
         If {issuer} is this lattice's key, give this machine its seed: run `wash lattice key export --lattice {lattice}` \
         where the key lives and `wash lattice key import --lattice {lattice} SEED` here, then restart the host; \
         or start the host with `--cluster-issuer {issuer}` to trust it as well",
        trusted.public_keys().collect::<Vec<_>>().join(", ")
    )
}

/// A subject being served; stop it with [`Serving::stop`].
pub struct Serving {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
    ended: bool,
}

impl Serving {
    /// Resolves if the server stops by itself: its subscription ended because the NATS
    /// connection is gone for good. Never resolves again once it has.
    pub async fn ended(&mut self) {
        if self.ended {
            return std::future::pending().await;
        }
        let _ = (&mut self.task).await;
        self.ended = true;
    }

    /// Stops taking requests, finishes the ones taken (at most `grace`), then returns.
    pub async fn stop(mut self, grace: Duration) {
        if self.ended {
            return;
        }
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

/// Subscribes to `subject` in `queue` and answers every invocation on it with `handler`
/// until stopped. Returns once the server has the subscription, so a caller may send
/// right away.
pub async fn serve<H: Handler>(
    client: &async_nats::Client,
    subject: String,
    queue: String,
    handler: Arc<H>,
    limits: Limits,
) -> Result<Serving, async_nats::SubscribeError> {
    let mut subscriber = client.queue_subscribe(subject.clone(), queue).await?;
    if let Err(e) = client.flush().await {
        tracing::warn!(%subject, error = %e, "could not flush a new subscription");
    }
    let client = client.clone();
    let limits = Arc::new(limits);
    let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let mut in_flight = JoinSet::new();
        let mut draining = false;
        loop {
            tokio::select! {
                message = subscriber.next() => {
                    let Some(message) = message else { break };
                    in_flight.spawn(answer(
                        client.clone(),
                        handler.clone(),
                        limits.clone(),
                        message,
                    ));
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
    Ok(Serving {
        stop: Some(stop_tx),
        task,
        ended: false,
    })
}

/// Answers one message: admits it, runs it, replies (never panics; every failure is an
/// error response).
async fn answer<H: Handler>(
    client: async_nats::Client,
    handler: Arc<H>,
    limits: Arc<Limits>,
    msg: async_nats::Message,
) {
    let Some(reply) = msg.reply else {
        tracing::debug!(subject = %msg.subject, "dropping an RPC message without a reply subject");
        return;
    };
    let header_parent = msg.headers.as_ref().and_then(|h| {
        nimbus_telemetry::TraceParent::from_headers(
            h.get(nimbus_telemetry::TRACEPARENT).map(|v| v.as_str()),
            h.get(nimbus_telemetry::TRACESTATE).map(|v| v.as_str()),
        )
    });
    let response = respond_traced(handler.as_ref(), &limits, &msg.payload, header_parent).await;
    let body = match response.to_msgpack() {
        Ok(body) => body,
        Err(e) => {
            tracing::error!(error = %e, "could not encode an InvocationResponse");
            return;
        }
    };
    if let Err(e) = client.publish(reply, body.into()).await {
        tracing::warn!(error = %e, "could not send an InvocationResponse");
    }
}

/// The response to one request body: admitted by `limits` and run by `handler`, or the
/// error that stopped it. What a served subject replies, without the NATS part.
pub async fn respond<H: Handler>(handler: &H, limits: &Limits, body: &[u8]) -> InvocationResponse {
    respond_traced(handler, limits, body, None).await
}

/// As [`respond`], for a request whose NATS headers carried `header_parent` (a W3C
/// `traceparent`).
///
/// Where the trace context is read: the envelope's `traceContext` when it holds a valid
/// `traceparent` (our hosts and RH send it), else the NATS headers (wasmbus-rpc 0.15 and
/// the OTP host send only those). Either way the handler finds it in
/// `invocation.trace_context`. Neither is covered by the anti-forgery token (the
/// 0.x token signs no trace context), so a sender can only mislabel its own call.
pub async fn respond_traced<H: Handler>(
    handler: &H,
    limits: &Limits,
    body: &[u8],
    header_parent: Option<nimbus_telemetry::TraceParent>,
) -> InvocationResponse {
    match limits.admit(body) {
        Err((id, e)) => {
            tracing::debug!(error = %e, "refused an invocation");
            InvocationResponse::failure(id, e.to_wire())
        }
        Ok(mut inv) => {
            if let Some(parent) = header_parent
                && inv
                    .trace_context
                    .as_ref()
                    .and_then(nimbus_telemetry::TraceParent::from_map)
                    .is_none()
            {
                inv.trace_context = Some(parent.to_map());
            }
            let span = tracing::debug_span!(
                "invocation",
                target = %inv.target.public_key,
                operation = %inv.operation,
                invocation_id = %inv.id,
                origin = %inv.origin.public_key,
            );
            let id = inv.id.clone();
            match handler.handle(inv).instrument(span).await {
                Ok(bytes) => InvocationResponse::success(id, bytes),
                Err(e) => {
                    tracing::debug!(error = %e, "invocation failed");
                    InvocationResponse::failure(id, e.to_wire())
                }
            }
        }
    }
}
