//! The waPC runtime of a nimbus host: loads signed actors and calls them.
//!
//! One [`Runtime`] per host owns the wasmtime engine (pooling allocator, copy-on-write
//! memory images, epoch deadlines), the compiled-module caches and the linker with the
//! waPC imports (under both `wapc` and `wasmbus`) and WASI preview 1. Each [`Actor`] keeps
//! an elastic pool of warm instances behind bounded admission (see [`ActorOptions`]).
//! Outbound calls of actors go through the [`HostCalls`] trait, so this crate knows
//! nothing of NATS, links or providers and can be driven directly in tests and by `wash
//! call`.

mod abi;
mod actor;
mod blocking;
mod capacity;
mod config;
mod error;
mod host_calls;
mod runtime;
mod wasi;

pub use actor::Actor;
pub use config::{ActorOptions, RuntimeConfig};
pub use error::{BusyLimit, CallError, LoadError};
pub use host_calls::{HostCall, HostCallError, HostCallFuture, HostCalls, NoHostCalls};
pub use runtime::Runtime;
