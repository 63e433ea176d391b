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
    /// allocator reserves address space for this many up front.
    pub max_total_instances: u32,
    /// Default deadline of one guest call (and of `_start`/`wapc_init`).
    pub default_call_timeout: Duration,
    /// Resolution of deadlines: how often the epoch ticker advances.
    pub epoch_tick: Duration,
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
        }
    }
}

/// Settings for one loaded actor.
#[derive(Clone)]
pub struct ActorOptions {
    /// How many instances of this actor may run calls at the same time.
    pub max_instances: usize,
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
}

impl Default for ActorOptions {
    fn default() -> Self {
        Self {
            max_instances: 4,
            call_timeout: None,
            host_calls: Arc::new(NoHostCalls),
            wasi_dir: None,
            allow_unsigned: false,
        }
    }
}

impl std::fmt::Debug for ActorOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActorOptions")
            .field("max_instances", &self.max_instances)
            .field("call_timeout", &self.call_timeout)
            .field("wasi_dir", &self.wasi_dir)
            .field("allow_unsigned", &self.allow_unsigned)
            .finish_non_exhaustive()
    }
}
