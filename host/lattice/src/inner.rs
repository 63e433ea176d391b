//! The state one host shares between its public handle, its background tasks and its
//! control handlers. What runs here is owned by the [`Registry`], and every call goes
//! through the [`Router`]; lifecycle behaviour lives in the modules named after each job
//! (`actors`, `providers`, `links`, `ctl`), which depend on this one, never the reverse.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Instant;

use nimbus_core::ctl::RegistryCredentialMap;
use nimbus_core::keys::KeyPair;
use nimbus_core::subjects::Subjects;
use nimbus_runtime::Runtime;
use tokio::task::JoinHandle;

use crate::cache::LatticeCache;
use crate::config::HostConfig;
use crate::events::EventPublisher;
use crate::launch::ProcessLauncher;
use crate::registry::Registry;
use crate::router::Router;
use crate::store::LatticeStore;

pub(crate) struct HostInner {
    pub id: String,
    pub cluster_key: KeyPair,
    pub cluster_issuers: nimbus_core::keys::TrustedIssuers,
    pub config: HostConfig,
    pub subjects: Subjects,
    pub labels: BTreeMap<String, String>,
    pub friendly_name: String,
    pub started: Instant,
    pub runtime: Runtime,
    pub rt: tokio::runtime::Handle,
    pub nats: Option<async_nats::Client>,
    /// The one path of every invocation (local, or over NATS through the RPC client).
    pub router: Arc<Router>,
    /// The host's metrics, when `HostConfig::metrics_addr` is set.
    pub metrics: Option<Arc<crate::metrics::Metrics>>,
    /// Where `/metrics` is served (the bound address).
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// What an invocation arriving over NATS must pass before it is delivered here.
    pub rpc_limits: nimbus_rpc::Limits,
    pub store: Arc<dyn LatticeStore>,
    pub cache: Arc<LatticeCache>,
    /// Held while a link change is applied to the cache and reported (event, in-process
    /// provider, provider processes). The host's own write and the store watch's echo of
    /// it race to apply it; whichever wins, the loser waits here until the winner has
    /// reported it, so `put_link`/`delete_link` return only once the change is in effect.
    pub link_updates: tokio::sync::Mutex<()>,
    pub events: EventPublisher,
    /// What runs here; the router reads it, `actors` and `providers` change it.
    pub registry: Arc<Registry>,
    pub launcher: Arc<dyn ProcessLauncher>,
    pub registries: Mutex<RegistryCredentialMap>,
    pub tasks: Mutex<Vec<JoinHandle<()>>>,
    pub stopping: AtomicBool,
    pub stopped: tokio::sync::watch::Sender<bool>,
    pub weak: Weak<HostInner>,
}

impl HostInner {
    /// Whether `stop` has begun.
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// Keeps a background task so that `stop` can end it.
    pub fn keep_task(&self, task: JoinHandle<()>) {
        self.tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(task);
    }
}
