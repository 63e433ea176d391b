//! The host's side of the invocation protocol, which lives in `nimbus-rpc`: sending over
//! NATS through the host's [`nimbus_rpc::RpcClient`], and serving a subject (an actor's, or
//! an in-process provider's) whose admitted invocations are delivered to what runs here
//! by the router's one local path ([`HostInner::deliver_local`]).

use std::sync::{Arc, Weak};
use std::time::Duration;

use nimbus_core::wire::{Invocation, WasmCloudEntity};
use nimbus_rpc::{Handler, describe};

use crate::error::{HostError, InvocationError};
use crate::inner::HostInner;
use crate::router::Local;

pub(crate) use nimbus_rpc::Serving;

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
        let Some(rpc) = &self.rpc else {
            return Err(InvocationError::unknown_target(format!(
                "{} does not run on this standalone host (no lattice connection to reach it elsewhere)",
                describe(&target)
            )));
        };
        rpc.invoke(origin, target, operation, payload, timeout)
            .await
    }
}

/// What an invocation that arrived over NATS does on this host: it is delivered to the
/// target running here, or refused as not running here.
struct Delivery {
    host: Weak<HostInner>,
}

impl Handler for Delivery {
    async fn handle(&self, inv: Invocation) -> Result<Vec<u8>, InvocationError> {
        let Some(host) = self.host.upgrade() else {
            return Err(InvocationError::unknown_target(
                "the host is stopping; the caller may retry on another host",
            ));
        };
        let Invocation {
            origin,
            target,
            operation,
            msg,
            ..
        } = inv;
        // A 0.x invocation carries no deadline: the host's RPC timeout applies.
        let timeout = host.config.rpc_timeout;
        match host
            .deliver_local(&origin, &target, &operation, msg, timeout)
            .await
        {
            Local::Delivered(result) => result,
            Local::NotHere(_) => Err(InvocationError::unknown_target(format!(
                "{} is not running on host {}",
                describe(&target),
                host.id
            ))),
        }
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
        host: Arc::downgrade(host),
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
