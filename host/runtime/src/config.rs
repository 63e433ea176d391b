//! Settings of the engine (one per host) and of each loaded actor.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::host_calls::{HostCalls, NoHostCalls};

/// Settings for the one wasm engine of a host. The defaults suit a host with many small
/// actors; tests shrink the pool so that several runtimes fit in one process.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Where compiled modules are cached across restarts, keyed by module hash and engine
    /// version. `None` keeps compiled modules in memory only.
    pub cache_dir: Option<PathBuf>,
    /// Maximum linear memory of one actor instance.
    pub max_memory_bytes: usize,
    /// Maximum table elements of one actor instance.
    pub max_table_elements: usize,
    /// How many instances (of all actors together) may exist at once. The pooling
    /// allocator reserves address space for this many up front, and the runtime counts
    /// instances against it: a pool that would grow past it first takes an idle instance
    /// of another actor above that actor's warm minimum, and otherwise waits (bounded by
    /// the actor's queue limits) and then fails with [`crate::BusyLimit::HostInstances`]
    /// instead of an instantiation error from the allocator.
    pub max_total_instances: u32,
    /// Default deadline of one guest call (and of `_start`/`wapc_init`).
    pub default_call_timeout: Duration,
    /// Resolution of deadlines: how often the epoch ticker advances.
    pub epoch_tick: Duration,
    /// How often the epoch ticker thread also drops instances that stayed idle longer
    /// than their actor's [`ActorOptions::idle_timeout`]. An idle instance therefore goes
    /// between `idle_timeout` and `idle_timeout + pool_trim_interval` after its last call.
    pub pool_trim_interval: Duration,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            cache_dir: None,
            max_memory_bytes: 64 * 1024 * 1024,
            max_table_elements: 20_000,
            max_total_instances: 1_000,
            default_call_timeout: Duration::from_secs(2),
            epoch_tick: Duration::from_millis(5),
            pool_trim_interval: Duration::from_secs(1),
        }
    }
}

/// Settings for one loaded actor.
///
/// Each actor keeps an elastic pool of instances: it starts `min_instances` at load, grows
/// one instance at a time while every instance is busy, up to `max_instances`, and drops
/// instances idle for `idle_timeout` down to `min_instances` again. A caller that finds
/// all `max_instances` busy (or the host at its `max_total_instances`) waits in a bounded
/// queue: at most `max_queued` callers, each for at most `max_queue_wait`; past either
/// bound it gets [`crate::CallError::Busy`] at once, saying which bound it hit.
#[derive(Clone)]
pub struct ActorOptions {
    /// The warm minimum: instances started at load (best effort past the first, within
    /// the host's limit) and never dropped for being idle. A trapped or cancelled instance
    /// is still discarded and replaced on demand, not eagerly. The lattice host sets it to
    /// the actor's instance count (0.x's `instances`, the app manifest's `instances`).
    /// `0` lets an idle actor give back every instance (one is still started at load, to
    /// check the module, and then trimmed like any other).
    pub min_instances: usize,
    /// How many instances of this actor may run calls at the same time: the ceiling of
    /// the pool's growth. At least 1 and at least `min_instances` (the larger one wins).
    pub max_instances: usize,
    /// Callers that may wait for an instance at the same time; the next one is refused
    /// with [`crate::BusyLimit::Queue`]. `0` refuses as soon as every instance is busy.
    pub max_queued: usize,
    /// The longest a caller waits for an instance (capped by its call timeout) before it
    /// is refused with [`crate::BusyLimit::Instances`] or
    /// [`crate::BusyLimit::HostInstances`].
    pub max_queue_wait: Duration,
    /// How long an instance above `min_instances` may stay idle before the runtime drops
    /// it (checked every [`RuntimeConfig::pool_trim_interval`]).
    pub idle_timeout: Duration,
    /// Deadline of each call; `None` takes the runtime default.
    pub call_timeout: Option<Duration>,
    /// Where the actor's `__host_call`s go.
    pub host_calls: Arc<dyn HostCalls>,
    /// The directory a WASI actor sees as `/`. Actors that do not import WASI ignore it;
    /// a WASI actor without one sees no file system at all.
    pub wasi_dir: Option<PathBuf>,
    /// Load an actor without (valid) claims. For development only: `wash call
    /// --allow-unsigned`.
    pub allow_unsigned: bool,
    /// Account public keys (`A...`) whose actors may start; empty (the default) accepts
    /// any issuer whose signature verifies. Non-empty, it also refuses unsigned actors,
    /// whatever `allow_unsigned` says.
    pub allowed_issuers: Vec<String>,
}

impl Default for ActorOptions {
    /// One warm instance, growth to 64, 256 queued callers for at most 1 s each, idle
    /// instances dropped after 30 s. An instance is held across the actor's host calls (a
    /// key-value round trip over NATS is ~0.5 ms), so the ceiling must sit far above the
    /// core count for instances not to be the throughput cap; 64 such calls in flight are
    /// more than one host serves. The queue absorbs a burst of four callers per instance,
    /// and its wait stays below the default call timeout (2 s) so a refused caller learns
    /// it before its own deadline. 30 s keeps a burst's instances for the next burst.
    fn default() -> Self {
        Self {
            min_instances: 1,
            max_instances: 64,
            max_queued: 256,
            max_queue_wait: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(30),
            call_timeout: None,
            host_calls: Arc::new(NoHostCalls),
            wasi_dir: None,
            allow_unsigned: false,
            allowed_issuers: Vec::new(),
        }
    }
}

impl std::fmt::Debug for ActorOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActorOptions")
            .field("min_instances", &self.min_instances)
            .field("max_instances", &self.max_instances)
            .field("max_queued", &self.max_queued)
            .field("max_queue_wait", &self.max_queue_wait)
            .field("idle_timeout", &self.idle_timeout)
            .field("call_timeout", &self.call_timeout)
            .field("wasi_dir", &self.wasi_dir)
            .field("allow_unsigned", &self.allow_unsigned)
            .field("allowed_issuers", &self.allowed_issuers)
            .finish_non_exhaustive()
    }
}
