//! The registry: the one owner of what runs on this host (actors, providers) and of the
//! providers that may be started by name. Every other part reads it; only the lifecycle
//! code (`actors`, `providers`) adds and removes entries, through the methods here.
//!
//! Lookups are on the invocation path (every local delivery asks "does this run here?"),
//! and changes are rare (a start, a stop), so the running sets are copy-on-write
//! snapshots behind an [`ArcSwap`]: a lookup is an atomic load and a hash probe, never a
//! lock; a change copies the set under a writers' mutex and swaps it in.
//!
//! The registry depends on nothing of the router or the RPC serving side, which is what
//! keeps the crate's modules layered: `registry` ← `router` ← `rpc` ← `actors` /
//! `providers` ← `ctl` / `host`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use arc_swap::ArcSwap;
use nimbus_core::claims::{Actor as ActorMeta, Token};
use nimbus_core::ctl::{ActorInstance, StringMap};
use nimbus_provider_sdk::Provider;
use nimbus_rpc::Serving;
use nimbus_runtime::Actor;

use crate::error::{InvocationError, call_error};
use crate::launch::ProcessHandle;

/// Makes a fresh provider value; registered under a `provider_ref` name so that control
/// commands (`lp`) and manifests can start in-process providers.
pub type ProviderFactory = Arc<dyn Fn() -> Arc<dyn Provider> + Send + Sync>;

/// A provider registered under a `provider_ref` name, with the public key it runs under
/// (the key links name).
#[derive(Clone)]
pub(crate) enum Registration {
    /// Built in process by a factory.
    InProcess {
        provider_id: String,
        factory: ProviderFactory,
    },
    /// An executable started through the process launcher.
    Process {
        provider_id: String,
        contract_id: String,
        binary: PathBuf,
    },
}

impl Registration {
    /// The public key the provider runs under.
    pub fn provider_id(&self) -> &str {
        match self {
            Registration::InProcess { provider_id, .. }
            | Registration::Process { provider_id, .. } => provider_id,
        }
    }
}

/// The subscription that serves a running actor's or provider's subject, kept so that
/// stopping can drain it.
#[derive(Default)]
pub(crate) struct ServingSlot(Mutex<Option<Serving>>);

impl ServingSlot {
    /// Keeps `serving` (`None` on a standalone host, which serves no subject).
    pub fn set(&self, serving: Option<Serving>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = serving;
    }

    /// Stops serving the subject; invocations already taken finish within `grace`.
    pub async fn stop(&self, grace: Duration) {
        let serving = self.0.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(serving) = serving {
            serving.stop(grace).await;
        }
    }
}

/// One actor running on this host.
pub(crate) struct RunningActor {
    pub id: String,
    state: RwLock<ActorState>,
    pub serving: ServingSlot,
    /// Its calls' counts, when the host keeps metrics (empty otherwise).
    pub ops: crate::metrics::ActorOps,
}

/// What changes about a running actor when it is scaled or updated.
pub(crate) struct ActorState {
    pub actor: Actor,
    pub bytes: Arc<[u8]>,
    pub image_ref: String,
    pub instances: Vec<ActorInstance>,
    /// The pool's ceiling given at start (`None`: the runtime's default), kept across
    /// scale and update, which reload the module.
    pub max_instances: Option<u16>,
}

impl RunningActor {
    /// A running actor, not yet serving its subject.
    pub fn new(id: String, state: ActorState) -> Self {
        Self {
            id,
            state: RwLock::new(state),
            serving: ServingSlot::default(),
            ops: crate::metrics::ActorOps::default(),
        }
    }

    /// The loaded module now serving calls (swapped by scale and update).
    pub fn current(&self) -> Actor {
        self.read().actor.clone()
    }

    /// Runs one call within the caller's `timeout`, and never longer than the actor's own
    /// deadline (so a caller with a long timeout cannot let a looping guest run on). The
    /// guest runs on a fiber polled by this task, so a short call costs no thread
    /// hand-off and the actor's host calls are awaited, not blocked on.
    pub async fn call_async(
        &self,
        operation: &str,
        payload: &[u8],
        timeout: Duration,
    ) -> Result<Vec<u8>, InvocationError> {
        let actor = self.current();
        let timeout = timeout.min(actor.call_timeout());
        actor
            .call_with_timeout(operation, payload, timeout)
            .await
            .map_err(call_error)
    }

    pub fn instances(&self) -> Vec<ActorInstance> {
        self.read().instances.clone()
    }

    pub fn image_ref(&self) -> String {
        self.read().image_ref.clone()
    }

    pub fn claims(&self) -> Option<Token<ActorMeta>> {
        self.read().actor.claims().cloned()
    }

    /// Reads the actor's state (short critical sections only: never across an await).
    pub fn read(&self) -> RwLockReadGuard<'_, ActorState> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Changes the actor's state (short critical sections only: never across an await).
    pub fn write(&self) -> RwLockWriteGuard<'_, ActorState> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }
}

/// How a provider runs.
pub(crate) enum ProviderKind {
    InProcess(Arc<dyn Provider>),
    Process(Box<dyn ProcessHandle>),
}

/// One provider running on this host.
pub(crate) struct RunningProvider {
    pub provider_id: String,
    pub link_name: String,
    pub contract_id: String,
    pub instance_id: String,
    pub image_ref: String,
    pub annotations: StringMap,
    pub kind: ProviderKind,
    pub serving: ServingSlot,
}

impl RunningProvider {
    /// A running provider, not yet serving its subject.
    pub fn new(
        provider_id: String,
        link_name: String,
        contract_id: String,
        instance_id: String,
        image_ref: String,
        annotations: StringMap,
        kind: ProviderKind,
    ) -> Self {
        Self {
            provider_id,
            link_name,
            contract_id,
            instance_id,
            image_ref,
            annotations,
            kind,
            serving: ServingSlot::default(),
        }
    }

    /// The provider value, if it runs in process.
    pub fn in_process(&self) -> Option<&Arc<dyn Provider>> {
        match &self.kind {
            ProviderKind::InProcess(p) => Some(p),
            ProviderKind::Process(_) => None,
        }
    }

    fn is(&self, provider_id: &str, link_name: &str) -> bool {
        self.provider_id == provider_id && self.link_name == link_name
    }
}

/// What runs here, and what may be started by name.
pub(crate) struct Registry {
    actors: ArcSwap<HashMap<String, Arc<RunningActor>>>,
    /// A handful per host: a scan compares two short strings per entry and allocates
    /// nothing, which a map keyed by (id, link name) could not do for a `&str` lookup.
    providers: ArcSwap<Vec<Arc<RunningProvider>>>,
    /// Serialises the copy-and-swap of the two sets above.
    writes: Mutex<()>,
    registrations: RwLock<HashMap<String, Registration>>,
}

impl Registry {
    /// A registry with nothing running and these providers startable by name.
    pub fn new(registrations: HashMap<String, Registration>) -> Self {
        Self {
            actors: ArcSwap::default(),
            providers: ArcSwap::default(),
            writes: Mutex::new(()),
            registrations: RwLock::new(registrations),
        }
    }

    fn write_lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.writes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The running actor with this public key.
    pub fn actor(&self, id: &str) -> Option<Arc<RunningActor>> {
        self.actors.load().get(id).cloned()
    }

    /// Every running actor, by public key.
    pub fn actors(&self) -> Vec<Arc<RunningActor>> {
        let mut all: Vec<_> = self.actors.load().values().cloned().collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }

    /// Adds an actor, unless one with its key runs already: then that one is returned
    /// and nothing changes (two concurrent starts of one actor make one running actor).
    pub fn add_actor(&self, actor: Arc<RunningActor>) -> Result<(), Arc<RunningActor>> {
        let _writing = self.write_lock();
        let current = self.actors.load();
        if let Some(existing) = current.get(&actor.id) {
            return Err(existing.clone());
        }
        let mut next = HashMap::clone(&current);
        next.insert(actor.id.clone(), actor);
        self.actors.store(Arc::new(next));
        Ok(())
    }

    /// Removes the actor with this key; returns it if it ran.
    pub fn remove_actor(&self, id: &str) -> Option<Arc<RunningActor>> {
        let _writing = self.write_lock();
        let current = self.actors.load();
        current.get(id)?;
        let mut next = HashMap::clone(&current);
        let removed = next.remove(id);
        self.actors.store(Arc::new(next));
        removed
    }

    /// The provider running here under (provider id, link name).
    pub fn provider(&self, provider_id: &str, link_name: &str) -> Option<Arc<RunningProvider>> {
        self.providers
            .load()
            .iter()
            .find(|p| p.is(provider_id, link_name))
            .cloned()
    }

    /// Every running provider, by (provider id, link name).
    pub fn providers(&self) -> Vec<Arc<RunningProvider>> {
        let mut all = Vec::clone(&self.providers.load());
        all.sort_by(|a, b| (&a.provider_id, &a.link_name).cmp(&(&b.provider_id, &b.link_name)));
        all
    }

    /// Adds a provider, unless one runs already under its (id, link name): then that one
    /// is returned and nothing changes.
    pub fn add_provider(&self, provider: Arc<RunningProvider>) -> Result<(), Arc<RunningProvider>> {
        let _writing = self.write_lock();
        let current = self.providers.load();
        if let Some(existing) = current
            .iter()
            .find(|p| p.is(&provider.provider_id, &provider.link_name))
        {
            return Err(existing.clone());
        }
        let mut next = Vec::clone(&current);
        next.push(provider);
        self.providers.store(Arc::new(next));
        Ok(())
    }

    /// Removes the provider running under (provider id, link name); returns it if it ran.
    pub fn remove_provider(
        &self,
        provider_id: &str,
        link_name: &str,
    ) -> Option<Arc<RunningProvider>> {
        let _writing = self.write_lock();
        let current = self.providers.load();
        let at = current.iter().position(|p| p.is(provider_id, link_name))?;
        let mut next = Vec::clone(&current);
        let removed = next.remove(at);
        self.providers.store(Arc::new(next));
        Some(removed)
    }

    /// The provider registered under `provider_ref`.
    pub fn registration(&self, provider_ref: &str) -> Option<Registration> {
        self.registrations
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(provider_ref)
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process_provider(id: &str, link: &str) -> Arc<RunningProvider> {
        struct NoProcess;
        #[async_trait::async_trait]
        impl ProcessHandle for NoProcess {
            async fn stop(&self, _grace: Duration) {}
        }
        Arc::new(RunningProvider::new(
            id.into(),
            link.into(),
            "wasmcloud:test".into(),
            "instance".into(),
            String::new(),
            StringMap::new(),
            ProviderKind::Process(Box::new(NoProcess)),
        ))
    }

    #[test]
    fn a_second_provider_under_the_same_key_is_refused_and_the_first_kept() {
        let registry = Registry::new(HashMap::new());
        let first = process_provider("VP", "default");
        assert!(registry.add_provider(first.clone()).is_ok());
        let refused = registry.add_provider(process_provider("VP", "default"));
        assert!(refused.is_err_and(|existing| Arc::ptr_eq(&existing, &first)));
        assert!(
            registry
                .add_provider(process_provider("VP", "other"))
                .is_ok()
        );
        assert_eq!(registry.providers().len(), 2);
        let removed = registry.remove_provider("VP", "default");
        assert!(removed.is_some_and(|p| Arc::ptr_eq(&p, &first)));
        assert!(registry.provider("VP", "default").is_none());
        assert!(registry.provider("VP", "other").is_some());
        assert!(registry.remove_provider("VP", "default").is_none());
    }
}
