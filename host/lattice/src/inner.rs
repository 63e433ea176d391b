//! The state one host shares between its public handle, its background tasks, the host
//! calls of its actors and the actor callers of its providers. Behaviour lives in the
//! modules named after each job (`router`, `rpc`, `actors`, `providers`, `links`, `ctl`).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};
use std::time::Instant;

use nimbus_core::ctl::RegistryCredentialMap;
use nimbus_core::keys::KeyPair;
use nimbus_core::subjects::Subjects;
use nimbus_runtime::Runtime;
use tokio::task::JoinHandle;

use crate::actors::RunningActor;
use crate::cache::LatticeCache;
use crate::config::HostConfig;
use crate::events::EventPublisher;
use crate::providers::{ProcessLauncher, Registration, RunningProvider};
use crate::store::LatticeStore;

/// Key of a running provider: (provider public key, link name).
pub(crate) type ProviderKey = (String, String);

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
    /// Sends invocations over NATS (signing them when the lattice signs).
    pub rpc: Option<nimbus_rpc::RpcClient>,
    /// What an invocation arriving over NATS must pass before it is delivered here.
    pub rpc_limits: nimbus_rpc::Limits,
    pub store: Arc<dyn LatticeStore>,
    pub cache: LatticeCache,
    /// Held while a link change is applied to the cache and reported (event, in-process
    /// provider, provider processes). The host's own write and the store watch's echo of
    /// it race to apply it; whichever wins, the loser waits here until the winner has
    /// reported it, so `put_link`/`delete_link` return only once the change is in effect.
    pub link_updates: tokio::sync::Mutex<()>,
    pub events: EventPublisher,
    pub actors: RwLock<HashMap<String, Arc<RunningActor>>>,
    pub providers: RwLock<HashMap<ProviderKey, Arc<RunningProvider>>>,
    pub registry: RwLock<HashMap<String, Registration>>,
    pub launcher: Arc<dyn ProcessLauncher>,
    pub registries: Mutex<RegistryCredentialMap>,
    pub tasks: Mutex<Vec<JoinHandle<()>>>,
    pub stopping: AtomicBool,
    pub stopped: tokio::sync::watch::Sender<bool>,
    pub weak: Weak<HostInner>,
}

impl HostInner {
    /// The running actor with this public key.
    pub fn local_actor(&self, id: &str) -> Option<Arc<RunningActor>> {
        self.actors
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .cloned()
    }

    /// Every running actor.
    pub fn all_actors(&self) -> Vec<Arc<RunningActor>> {
        let mut all: Vec<_> = self
            .actors
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }

    /// The provider running here under (provider id, link name).
    pub fn local_provider(
        &self,
        provider_id: &str,
        link_name: &str,
    ) -> Option<Arc<RunningProvider>> {
        self.providers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&(provider_id.to_string(), link_name.to_string()))
            .cloned()
    }

    /// Every running provider.
    pub fn all_providers(&self) -> Vec<Arc<RunningProvider>> {
        let mut all: Vec<_> = self
            .providers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        all.sort_by(|a, b| (&a.provider_id, &a.link_name).cmp(&(&b.provider_id, &b.link_name)));
        all
    }

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
