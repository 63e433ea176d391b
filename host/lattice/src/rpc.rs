//! The host's serving side of the invocation protocol, which lives in `nimbus-rpc`:
//! serving a subject (an actor's, or an in-process provider's) whose admitted
//! invocations are handed to the router's one local path
//! ([`Router::deliver_arrived`]). Sending goes through the router too.

use std::sync::{Arc, Weak};

use nimbus_core::wire::Invocation;
use nimbus_rpc::Handler;

use crate::error::{HostError, InvocationError};
use crate::inner::HostInner;
use crate::router::Router;

pub(crate) use nimbus_rpc::Serving;

/// What an invocation that arrived over NATS does on this host: it is delivered to the
/// target running here, or refused as not running here.
struct Delivery {
    router: Weak<Router>,
}

impl Handler for Delivery {
    async fn handle(&self, inv: Invocation) -> Result<Vec<u8>, InvocationError> {
        let Some(router) = self.router.upgrade() else {
            return Err(InvocationError::unknown_target(
                "the host is stopping; the caller may retry on another host",
            ));
        };
        // The caller's trace (from the envelope or the NATS headers, see
        // `nimbus_rpc::respond_traced`) is current while the call runs here: the actor's
        // span is its child, or, with tracing off, its host calls pass it on.
        let parent = inv
            .trace_context
            .as_ref()
            .and_then(nimbus_telemetry::TraceParent::from_map);
        let Invocation {
            origin,
            target,
            operation,
            msg,
            ..
        } = inv;
        nimbus_telemetry::scope(
            parent,
            router.deliver_arrived(&origin, &target, &operation, msg),
        )
        .await
    }
}

/// Subscribes to `subject` in `queue` and serves it until stopped (nothing on a
/// standalone host). Returns once the server has the subscription, so a caller may send
/// right away.
pub(crate) async fn serve(
    host: &Arc<HostInner>,
    subject: String,
    queue: String,
) -> Result<Option<Serving>, HostError> {
    let Some(client) = &host.nats else {
        return Ok(None);
    };
    let handler = Arc::new(Delivery {
        router: Arc::downgrade(&host.router),
    });
    nimbus_rpc::serve(
        client,
        subject.clone(),
        queue,
        handler,
        host.rpc_limits.clone(),
    )
    .await
    .map(Some)
    .map_err(|e| HostError::Nats(format!("cannot subscribe to {subject}: {e}")))
}
