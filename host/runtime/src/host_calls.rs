//! The seam between the runtime and whatever routes an actor's outbound calls.
//!
//! The runtime knows nothing of links, NATS or providers: every `__host_call` is handed
//! to a [`HostCalls`] implementation. The lattice implements it with its router; tests
//! implement it with a closure.

use std::future::Future;
use std::pin::Pin;

/// One outbound call made by an actor with `__host_call`.
#[derive(Debug, Clone, Copy)]
pub struct HostCall<'a> {
    /// The id of the calling actor (its module public key, or a hash for unsigned actors).
    pub actor: &'a str,
    /// The link name (`binding`); waPC guests pass `default` or an empty string.
    pub binding: &'a str,
    /// The contract id of a provider, or an actor's public key or call alias.
    pub namespace: &'a str,
    /// The operation name, verbatim.
    pub operation: &'a str,
    /// The request payload (msgpack for the published interfaces).
    pub payload: &'a [u8],
}

/// The error of a host call, as text: it travels to the guest through `__host_error`.
pub type HostCallError = Box<dyn std::error::Error + Send + Sync>;

/// The answer to a host call, awaited while the guest is suspended on its fiber.
pub type HostCallFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<u8>, HostCallError>> + Send + 'a>>;

/// Routes an actor's outbound calls. The returned future is awaited on the task running
/// the guest: it may wait on the network or call another actor, without tying up a
/// thread, but must not block the thread itself or panic.
pub trait HostCalls: Send + Sync + 'static {
    /// Performs the call and returns the response payload, or an error the guest sees.
    fn host_call<'a>(&'a self, call: HostCall<'a>) -> HostCallFuture<'a>;
}

/// A `HostCalls` for actors that have no links at all: every call fails with a clear
/// message instead of hanging or panicking.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoHostCalls;

impl HostCalls for NoHostCalls {
    fn host_call<'a>(&'a self, call: HostCall<'a>) -> HostCallFuture<'a> {
        Box::pin(std::future::ready(Err(format!(
            "no link for contract {} link name {} from actor {} (this runtime has no host calls configured)",
            call.namespace,
            if call.binding.is_empty() { "default" } else { call.binding },
            call.actor
        )
        .into())))
    }
}

/// A synchronous closure answers at once: convenient for tests and tools.
impl<F> HostCalls for F
where
    F: Fn(HostCall<'_>) -> Result<Vec<u8>, HostCallError> + Send + Sync + 'static,
{
    fn host_call<'a>(&'a self, call: HostCall<'a>) -> HostCallFuture<'a> {
        Box::pin(std::future::ready(self(call)))
    }
}
