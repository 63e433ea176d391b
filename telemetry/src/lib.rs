//! Distributed traces for hosts and providers: the W3C trace context (parse, format,
//! carry through a task), spans, and their export over OTLP/HTTP.
//!
//! One job: a request that enters the lattice (an HTTP request with a `traceparent`
//! header, say) leaves one trace, with a span from each process it passes through, in
//! whatever collector `OTEL_EXPORTER_OTLP_ENDPOINT` names (Jaeger, the OpenTelemetry
//! Collector, Tempo, ...).
//!
//! - [`SpanContext`] / [`TraceParent`]: the `traceparent` and `tracestate` values;
//!   malformed headers are refused (a new trace starts instead).
//! - [`scope`] / [`current`]: the parent of the work running on a task (a tokio
//!   task-local), so code several calls away (the RPC client, an actor's host call) finds
//!   it without every signature in between carrying it.
//! - [`Span`]: records when an exporter is [`install`]ed, and only then. With none, a
//!   span allocates nothing and reads no clock; the incoming parent is still passed on,
//!   so a trace crosses an untraced process intact.
//! - The exporter: a bounded queue (a full one drops and counts spans; the traced call
//!   never waits) and a thread of its own that POSTs batches as OTLP/HTTP JSON to
//!   `{endpoint}/v1/traces`.
//!
//! Why our own exporter rather than the `opentelemetry-otlp` crate: its HTTP transport
//! brings `reqwest` (a second HTTP client stack, TLS) and its gRPC one `tonic` and a
//! protobuf toolchain, while the whole of what this lattice needs is a span type, a JSON
//! encoding of it and one POST per batch over the `hyper` the HTTP server already uses.
//! The JSON encoding is part of the OTLP specification and every OTLP/HTTP receiver
//! (port 4318) accepts it. Not supported: `https://` endpoints (no TLS stack: point it
//! at a local collector or agent), gRPC, and the protobuf body.

mod config;
mod context;
mod export;
mod otlp;
mod span;

use std::future::Future;

pub use config::{Config, Endpoint, EndpointError, TRACES_PATH, traces_url};
pub use context::{SpanContext, TRACEPARENT, TRACESTATE, TraceParent};
pub use export::{ExportStats, InstallError, config, enabled, flush, install, stats};
pub use otlp::encode as encode_otlp_json;
pub use span::{AttrValue, Span, SpanData, SpanKind};

tokio::task_local! {
    static CURRENT: TraceParent;
}

/// The parent of the work running on this task: set by [`scope`] around it.
#[inline]
pub fn current() -> Option<TraceParent> {
    CURRENT.try_with(Clone::clone).ok()
}

/// Runs `work` with `parent` as the task's current trace context (visible to
/// [`current`] in `work` and everything it awaits on this task, not in tasks it spawns).
/// With `None` the surrounding context, if any, stays current.
pub async fn scope<F: Future>(parent: Option<TraceParent>, work: F) -> F::Output {
    match parent {
        Some(parent) => CURRENT.scope(parent, work).await,
        None => work.await,
    }
}

/// Installs an exporter from the environment ([`Config::from_env`]) for a process named
/// `service_name` (unless `OTEL_SERVICE_NAME` says otherwise). Returns whether one is
/// installed now; no endpoint configured is `Ok(false)`.
pub fn install_from_env(service_name: &str) -> Result<bool, SetupError> {
    match Config::from_env(service_name)? {
        None => Ok(false),
        Some(config) => {
            install(config)?;
            Ok(true)
        }
    }
}

/// Why tracing could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The configured endpoint is not usable.
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    /// The exporter did not start.
    #[error(transparent)]
    Install(#[from] InstallError),
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_scope_is_current_inside_and_gone_outside() {
        let parent = TraceParent::from_headers(
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            None,
        )
        .unwrap();
        assert_eq!(current(), None);
        let seen = scope(Some(parent.clone()), async {
            tokio::task::yield_now().await;
            // None keeps the surrounding context.
            scope(None, async { current() }).await
        })
        .await;
        assert_eq!(seen, Some(parent));
        assert_eq!(current(), None);
    }
}
