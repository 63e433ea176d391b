//! The public face of a host: [`HostBuilder`] to configure and start one, [`Host`] to
//! run actors and providers, manage links, call actors and stop.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use nimbus_core::ctl::{HostInventory, StringMap};
use nimbus_core::events::{CloudEvent, HostStarted, HostStopped};
use nimbus_core::keys::{KeyKind, KeyPair};
use nimbus_core::link::LinkDefinition;
use nimbus_core::subjects::Subjects;
use nimbus_core::wire::WasmCloudEntity;
use nimbus_provider_sdk::Provider;
use nimbus_runtime::{Runtime, RuntimeConfig};
use tokio::sync::broadcast;

use crate::actors::{ActorSource, STOP_GRACE};
use crate::cache::LatticeCache;
use crate::config::{HostConfig, NatsConfig, host_labels};
use crate::error::{HostError, InvocationError};
use crate::events::EventPublisher;
use crate::inner::HostInner;
use crate::launch::ProcessLauncher;
use crate::providers::ProviderStart;
use crate::registry::{ProviderFactory, Registration, Registry};
use crate::router::{Router, RouterConfig, Target};
use crate::store::{JetStreamStore, LatticeStore, MemoryStore};

/// Configures a [`Host`]. Without [`HostBuilder::nats`] the host is standalone: links
/// and claims live in memory and every call stays in process.
#[must_use]
#[derive(Default)]
pub struct HostBuilder {
    config: HostConfig,
    runtime: Option<Runtime>,
    runtime_config: RuntimeConfig,
    store: Option<Arc<dyn LatticeStore>>,
    links: Vec<LinkDefinition>,
    registry: HashMap<String, Registration>,
    launcher: Option<Arc<dyn ProcessLauncher>>,
}

impl HostBuilder {
    /// Replaces every setting at once.
    pub fn config(mut self, config: HostConfig) -> Self {
        self.config = config;
        self
    }

    /// The lattice prefix (default `default`).
    pub fn lattice(mut self, lattice: impl Into<String>) -> Self {
        self.config.lattice = lattice.into();
        self
    }

    /// Adds a host label (used by auctions).
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.config.labels.insert(key.into(), value.into());
        self
    }

    /// Joins a lattice over NATS.
    pub fn nats(mut self, nats: NatsConfig) -> Self {
        self.config.nats = Some(nats);
        self
    }

    /// Timeout of calls that leave the host (default 2 s).
    pub fn rpc_timeout(mut self, timeout: Duration) -> Self {
        self.config.rpc_timeout = timeout;
        self
    }

    /// Largest invocation payload accepted or sent.
    pub fn max_payload(mut self, bytes: usize) -> Self {
        self.config.max_payload = bytes;
        self
    }

    /// Sign and verify invocations sent over NATS (default on).
    pub fn sign_invocations(mut self, on: bool) -> Self {
        self.config.sign_invocations = on;
        self
    }

    /// The cluster seed (`SC...`) that signs invocations; share it across the lattice.
    pub fn cluster_seed(mut self, seed: impl Into<String>) -> Self {
        self.config.cluster_seed = Some(seed.into());
        self
    }

    /// Accepts invocations signed by another cluster key too.
    pub fn cluster_issuer(mut self, public_key: impl Into<String>) -> Self {
        self.config.cluster_issuers.push(public_key.into());
        self
    }

    /// The host's own seed (`SN...`), for a stable host id.
    pub fn host_seed(mut self, seed: impl Into<String>) -> Self {
        self.config.host_seed = Some(seed.into());
        self
    }

    /// Period of the heartbeat event (default 30 s).
    pub fn heartbeat_interval(mut self, interval: Duration) -> Self {
        self.config.heartbeat_interval = interval;
        self
    }

    /// Accept actors without valid claims (development only).
    pub fn allow_unsigned(mut self, allow: bool) -> Self {
        self.config.allow_unsigned = allow;
        self
    }

    /// Starts only actors signed by this account public key (`A...`); repeatable. With
    /// none (the default) any issuer whose signature verifies is accepted. Once one is
    /// given, actors of other issuers, and unsigned ones (even with
    /// [`HostBuilder::allow_unsigned`]), are refused when they start.
    pub fn allowed_issuer(mut self, public_key: impl Into<String>) -> Self {
        self.config.allowed_issuers.push(public_key.into());
        self
    }

    /// Keeps Prometheus metrics and serves them at `http://ADDR/metrics` (port 0: any
    /// free port, see [`Host::metrics_addr`]). Off by default.
    pub fn metrics_addr(mut self, addr: std::net::SocketAddr) -> Self {
        self.config.metrics_addr = Some(addr);
        self
    }

    /// Keeps call metrics (as [`Self::metrics_addr`] does) without serving `/metrics`:
    /// what [`Host::stats`] and the lattice dashboard read. Off by default.
    pub fn collect_metrics(mut self, on: bool) -> Self {
        self.config.collect_metrics = on;
        self
    }

    /// Shares an existing wasm engine (several hosts in one process).
    pub fn runtime(mut self, runtime: Runtime) -> Self {
        self.runtime = Some(runtime);
        self
    }

    /// Settings of the wasm engine the host creates (ignored with [`Self::runtime`]).
    pub fn runtime_config(mut self, config: RuntimeConfig) -> Self {
        self.runtime_config = config;
        self
    }

    /// Where links and claims live. Defaults: the JetStream bucket with NATS, memory
    /// without. Hosts sharing one [`MemoryStore`] form a lattice without JetStream.
    pub fn lattice_store(mut self, store: Arc<dyn LatticeStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// A link to put when the host starts (standalone hosts: links from config).
    pub fn link(mut self, link: LinkDefinition) -> Self {
        self.links.push(link);
        self
    }

    /// Registers an in-process provider under `provider_ref`, so `lp` commands and
    /// [`Host::launch_provider`] can start it; it runs as `provider_id`.
    pub fn provider_factory(
        mut self,
        provider_ref: impl Into<String>,
        provider_id: impl Into<String>,
        factory: ProviderFactory,
    ) -> Self {
        self.registry.insert(
            provider_ref.into(),
            Registration::InProcess {
                provider_id: provider_id.into(),
                factory,
            },
        );
        self
    }

    /// Registers a provider executable under `provider_ref`; starting it needs a
    /// [`ProcessLauncher`].
    pub fn provider_executable(
        mut self,
        provider_ref: impl Into<String>,
        provider_id: impl Into<String>,
        contract_id: impl Into<String>,
        binary: impl Into<PathBuf>,
    ) -> Self {
        self.registry.insert(
            provider_ref.into(),
            Registration::Process {
                provider_id: provider_id.into(),
                contract_id: contract_id.into(),
                binary: binary.into(),
            },
        );
        self
    }

    /// Starts provider executables (see [`ProcessLauncher`]); the default runs them under
    /// `nimbus-supervisor`.
    pub fn process_launcher(mut self, launcher: Arc<dyn ProcessLauncher>) -> Self {
        self.launcher = Some(launcher);
        self
    }

    /// Connects, loads the lattice's links and claims, subscribes to the control
    /// interface and announces the host. Must run inside a tokio runtime.
    pub async fn build(self) -> Result<Host, HostError> {
        let config = self.config;
        let rt = tokio::runtime::Handle::try_current()
            .map_err(|_| HostError::Config("a host must be built inside a tokio runtime".into()))?;
        let host_key = match &config.host_seed {
            Some(seed) => KeyPair::from_seed_of_kind(seed, KeyKind::Server)
                .map_err(|e| HostError::Config(format!("host seed: {e}")))?,
            None => KeyPair::generate(KeyKind::Server),
        };
        let cluster_key = match &config.cluster_seed {
            Some(seed) => KeyPair::from_seed_of_kind(seed, KeyKind::Cluster)
                .map_err(|e| HostError::Config(format!("cluster seed: {e}")))?,
            None => KeyPair::generate(KeyKind::Cluster),
        };
        let id = host_key.public_key();
        for issuer in &config.allowed_issuers {
            nimbus_core::keys::parse_public_key_of_kind(issuer, KeyKind::Account).map_err(|e| {
                HostError::Config(format!(
                    "allowed issuer `{issuer}` is not an account public key (A...): {e}"
                ))
            })?;
        }
        let cluster_issuers = nimbus_core::keys::TrustedIssuers::new(
            std::iter::once(cluster_key.public_key()).chain(config.cluster_issuers.iter().cloned()),
        )
        .map_err(|e| HostError::Config(format!("cluster issuers: {e}")))?;
        let runtime = match self.runtime {
            Some(runtime) => runtime,
            None => Runtime::new(self.runtime_config)?,
        };
        let nats = match &config.nats {
            Some(nats) => Some(crate::connection::connect(nats, &id).await?),
            None => None,
        };
        let store: Arc<dyn LatticeStore> = match (self.store, &nats) {
            (Some(store), _) => store,
            (None, Some(client)) => {
                Arc::new(JetStreamStore::open(client.clone(), &config.lattice).await?)
            }
            (None, None) => Arc::new(MemoryStore::new()),
        };
        let subjects = Subjects::new(config.lattice.clone(), config.ctl_prefix.clone());
        let events = EventPublisher::new(id.clone(), subjects.events(), nats.clone());
        let labels = host_labels(&config.labels);
        let friendly_name = format!("nimbus-{}", id.get(1..9).unwrap_or("host").to_lowercase());
        let rpc = nats.as_ref().map(|client| {
            nimbus_rpc::RpcClient::new(client.clone(), subjects.clone(), id.clone())
                .with_signer(config.sign_invocations.then(|| cluster_key.clone()))
        });
        let rpc_limits = nimbus_rpc::Limits {
            max_payload: config.max_payload,
            trusted: config.sign_invocations.then(|| cluster_issuers.clone()),
            receiver: format!("host {id} of lattice `{}`", config.lattice),
            lattice: config.lattice.clone(),
            // One guard for the host: every subject it serves shares it (clones do).
            replay: Default::default(),
        };
        let registry = Arc::new(Registry::new(self.registry));
        let cache = Arc::new(LatticeCache::default());
        let metrics_listener = match config.metrics_addr {
            Some(addr) => Some(
                crate::metrics::bind(addr)
                    .await
                    .map_err(HostError::Config)?,
            ),
            None => None,
        };
        let metrics_addr = metrics_listener
            .as_ref()
            .and_then(|listener| listener.local_addr().ok());
        let metrics = (metrics_listener.is_some() || config.collect_metrics)
            .then(|| Arc::new(crate::metrics::Metrics::new(&id, registry.clone())));
        let router = Arc::new(Router::new(
            RouterConfig {
                host_id: id.clone(),
                allow_unsigned: config.allow_unsigned,
                max_payload: config.max_payload,
                rpc_timeout: config.rpc_timeout,
            },
            registry.clone(),
            cache.clone(),
            rpc,
            metrics.clone(),
        ));
        let inner = Arc::new_cyclic(|weak| HostInner {
            id,
            cluster_key,
            cluster_issuers,
            config,
            subjects,
            labels,
            friendly_name,
            started: Instant::now(),
            runtime,
            rt,
            nats,
            router,
            metrics,
            metrics_addr,
            rpc_limits,
            store: store.clone(),
            cache,
            link_updates: tokio::sync::Mutex::new(()),
            events,
            registry,
            launcher: self
                .launcher
                .unwrap_or_else(crate::supervision::default_launcher),
            registries: Mutex::default(),
            tasks: Mutex::default(),
            stopping: AtomicBool::new(false),
            stopped: tokio::sync::watch::channel(false).0,
            weak: weak.clone(),
        });
        // The lattice's current links and claims are known before the host returns.
        let (snapshot, changes) = store.watch().await?;
        inner.cache.apply_snapshot(snapshot);
        inner.keep_task(tokio::spawn(crate::links::follow_store(
            Arc::downgrade(&inner),
            store,
            changes,
        )));
        for link in self.links {
            inner.put_link(link).await?;
        }
        crate::ctl::start(&inner).await?;
        if let (Some(listener), Some(metrics)) = (metrics_listener, inner.metrics.clone()) {
            inner.keep_task(tokio::spawn(crate::metrics::serve(listener, metrics)));
            tracing::info!(addr = ?inner.metrics_addr, "serving metrics at /metrics");
        }
        if inner.nats.is_some() {
            inner.keep_task(tokio::spawn(heartbeat(Arc::downgrade(&inner))));
        }
        inner
            .events
            .publish(&HostStarted {
                labels: inner.labels.clone(),
                friendly_name: inner.friendly_name.clone(),
                uptime_seconds: 0,
                version: crate::inventory::VERSION.to_string(),
            })
            .await;
        tracing::info!(host = %inner.id, lattice = %inner.config.lattice, nats = inner.nats.is_some(), "host started");
        Ok(Host { inner })
    }
}

async fn heartbeat(host: std::sync::Weak<HostInner>) {
    let period = match host.upgrade() {
        Some(h) => h.config.heartbeat_interval.max(Duration::from_millis(10)),
        None => return,
    };
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    loop {
        ticker.tick().await;
        let Some(host) = host.upgrade() else { return };
        host.events.publish(&host.heartbeat()).await;
    }
}

/// Contracts whose providers bring requests into actors (rather than serve actors'
/// calls): they stop first when a host stops, so no request arrives for an actor that is
/// already gone.
const INGRESS_CONTRACTS: &[&str] = &["wasmcloud:httpserver", "wasmcloud:messaging"];

impl HostInner {
    /// Stops everything: control interface first, then ingress providers, actors and
    /// the other providers, in that order (each finishing the requests it took, within
    /// `grace`), then the connection is drained.
    pub(crate) async fn shutdown(self: &Arc<Self>, grace: Duration) {
        if self.stopping.swap(true, Ordering::AcqRel) {
            let mut stopped = self.stopped.subscribe();
            let _ = stopped.wait_for(|s| *s).await;
            return;
        }
        tracing::info!(host = %self.id, "host stopping");
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(PoisonError::into_inner));
        for task in tasks {
            task.abort();
        }
        // Entry points close first (an HTTP listener stops taking requests and finishes
        // the ones it took, whose actors and back ends still run), then the actors
        // (finishing what they took), then the providers they call.
        let work = async {
            let (ingress, others): (Vec<_>, Vec<_>) = self
                .registry
                .providers()
                .into_iter()
                .partition(|p| INGRESS_CONTRACTS.contains(&p.contract_id.as_str()));
            join_all(
                ingress
                    .iter()
                    .map(|p| self.stop_provider(&p.provider_id, &p.link_name)),
            )
            .await;
            join_all(
                self.registry
                    .actors()
                    .into_iter()
                    .map(|a| async move { self.stop_actor(&a.id, 0).await }),
            )
            .await;
            for p in others {
                let _ = self.stop_provider(&p.provider_id, &p.link_name).await;
            }
        };
        if tokio::time::timeout(grace.max(STOP_GRACE), work)
            .await
            .is_err()
        {
            tracing::warn!(host = %self.id, "actors and providers did not stop in time");
        }
        self.events
            .publish(&HostStopped {
                labels: self.labels.clone(),
            })
            .await;
        if let Some(client) = &self.nats {
            let _ = client.flush().await;
            if let Err(e) = client.drain().await {
                tracing::debug!(error = %e, "draining the NATS connection failed");
            }
        }
        self.stopped.send_replace(true);
        tracing::info!(host = %self.id, "host stopped");
    }
}

/// A running host. Dropping it without [`Host::stop`] ends its background tasks but
/// does not drain its connection.
pub struct Host {
    inner: Arc<HostInner>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("id", &self.inner.id)
            .field("lattice", &self.inner.config.lattice)
            .finish_non_exhaustive()
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        if !self.inner.is_stopping() {
            for task in self
                .inner
                .tasks
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .drain(..)
            {
                task.abort();
            }
        }
    }
}

impl Host {
    /// Starts configuring a host.
    pub fn builder() -> HostBuilder {
        HostBuilder::default()
    }

    /// The host's `N...` public key.
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// The lattice prefix.
    pub fn lattice(&self) -> &str {
        &self.inner.config.lattice
    }

    /// The public key of the cluster key that signs this host's invocations.
    pub fn cluster_public_key(&self) -> String {
        self.inner.cluster_key.public_key()
    }

    /// The host's settings.
    pub fn config(&self) -> &HostConfig {
        &self.inner.config
    }

    /// The NATS connection, when the host is on a lattice.
    pub fn nats(&self) -> Option<&async_nats::Client> {
        self.inner.nats.as_ref()
    }

    /// Every lattice event this host publishes from now on (also without NATS).
    pub fn events(&self) -> broadcast::Receiver<CloudEvent> {
        self.inner.events.subscribe()
    }

    /// Starts `instances` instances of an actor (more of it if it runs already) and
    /// serves it on its RPC subject; returns its public key. `instances` is the warm
    /// minimum of the actor's pool, which grows on demand up to the runtime's default
    /// maximum (see [`Host::start_actor_with_max`]).
    pub async fn start_actor(
        &self,
        source: impl Into<ActorSource>,
        instances: u16,
    ) -> Result<String, HostError> {
        self.start_actor_with_max(source, instances, None).await
    }

    /// [`Host::start_actor`] with a ceiling for the actor's pool: at most `max_instances`
    /// instances run its calls at once on this host (`None`: the runtime's default, 64;
    /// never below `instances`). Past it, callers queue briefly and are then refused as
    /// busy. The app manifest's `max_instances` (`wash up`).
    pub async fn start_actor_with_max(
        &self,
        source: impl Into<ActorSource>,
        instances: u16,
        max_instances: Option<u16>,
    ) -> Result<String, HostError> {
        self.inner
            .start_actor_with_max(source.into(), instances, max_instances, StringMap::new())
            .await
    }

    /// Stops every instance of an actor, after it finished the calls it took.
    pub async fn stop_actor(&self, actor_id: &str) -> Result<(), HostError> {
        self.inner.stop_actor(actor_id, 0).await
    }

    /// Sets the number of instances of a running actor; 0 stops it.
    pub async fn scale_actor(&self, actor_id: &str, instances: u16) -> Result<(), HostError> {
        self.inner
            .scale_actor(actor_id, instances, None, StringMap::new())
            .await
    }

    /// Replaces a running actor's module with a new build signed with the same key.
    pub async fn update_actor(
        &self,
        actor_id: &str,
        source: impl Into<ActorSource>,
    ) -> Result<(), HostError> {
        self.inner.update_actor(actor_id, source.into()).await
    }

    /// Runs an in-process provider as `provider_id` under `link_name`.
    pub async fn start_provider(
        &self,
        provider: Arc<dyn Provider>,
        provider_id: &str,
        link_name: &str,
    ) -> Result<(), HostError> {
        self.inner
            .start_in_process_provider(
                provider,
                ProviderStart {
                    provider_id: provider_id.to_string(),
                    link_name: link_name.to_string(),
                    image_ref: String::new(),
                    config_json: None,
                    annotations: StringMap::new(),
                },
            )
            .await
    }

    /// Starts a provider registered under `provider_ref` (a factory or an executable).
    pub async fn launch_provider(
        &self,
        provider_ref: &str,
        link_name: &str,
        config_json: Option<String>,
    ) -> Result<(), HostError> {
        let registration = self
            .inner
            .registry
            .registration(provider_ref)
            .ok_or_else(|| HostError::UnknownProvider(provider_ref.to_string()))?;
        self.inner
            .launch_registered(
                registration,
                provider_ref.to_string(),
                link_name.to_string(),
                config_json,
                StringMap::new(),
            )
            .await
    }

    /// Stops a provider.
    pub async fn stop_provider(&self, provider_id: &str, link_name: &str) -> Result<(), HostError> {
        self.inner.stop_provider(provider_id, link_name).await
    }

    /// Puts a link into the lattice; it takes effect without restarting anything. When
    /// this returns, the in-process provider of the link on this host has been handed it
    /// (a provider that rejects it is reported by a [`crate::LinkdefSetFailed`] event);
    /// other hosts and provider processes get it through the lattice.
    pub async fn put_link(&self, link: LinkDefinition) -> Result<(), HostError> {
        self.inner.put_link(link).await
    }

    /// Deletes the link of (actor, contract, link name); when this returns, the in-process
    /// provider of the link on this host has dropped it.
    pub async fn delete_link(
        &self,
        actor_id: &str,
        contract_id: &str,
        link_name: &str,
    ) -> Result<(), HostError> {
        self.inner
            .delete_link(actor_id, contract_id, link_name)
            .await
    }

    /// Every link this host knows.
    pub fn links(&self) -> Vec<LinkDefinition> {
        self.inner.cache.links()
    }

    /// Calls `operation` on an actor (public key or call alias) wherever it runs, as
    /// `wash call` does: the origin is the actor itself. Uses the host's RPC timeout.
    pub async fn call_actor(
        &self,
        actor: &str,
        operation: &str,
        payload: impl Into<Vec<u8>>,
    ) -> Result<Vec<u8>, InvocationError> {
        self.call_actor_with_timeout(actor, operation, payload, self.inner.config.rpc_timeout)
            .await
    }

    /// [`Host::call_actor`] with its own timeout.
    pub async fn call_actor_with_timeout(
        &self,
        actor: &str,
        operation: &str,
        payload: impl Into<Vec<u8>>,
        timeout: Duration,
    ) -> Result<Vec<u8>, InvocationError> {
        let id = self.inner.router.resolve_actor(actor);
        self.inner
            .router
            .invoke(
                WasmCloudEntity::actor(id.clone()),
                Target::Actor(id),
                operation,
                payload.into(),
                timeout,
            )
            .await
    }

    /// What runs on this host.
    pub fn inventory(&self) -> HostInventory {
        self.inner.inventory()
    }

    /// How long the host has been running (what it reports in `ping.hosts`).
    pub fn uptime(&self) -> Duration {
        self.inner.started.elapsed()
    }

    /// Where this host serves `/metrics` (`None`: metrics are off).
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.inner.metrics_addr
    }

    /// The host's metrics in the Prometheus text format (`None`: metrics are off).
    pub fn metrics_text(&self) -> Option<String> {
        self.inner.metrics.as_ref().map(|m| m.encode())
    }

    /// This host's statistics now (what it answers to `get.{id}.stats`): cumulative
    /// calls, errors and latency buckets per actor and operation and provider restarts
    /// when metrics are kept (`metrics: false` otherwise), and the instances of every
    /// running actor either way.
    pub fn stats(&self) -> nimbus_core::stats::HostStats {
        self.inner.stats()
    }

    /// Stops the host: no new requests, in-flight ones finish, actors and providers
    /// stop, `host_stopped` is published and the connection drained.
    pub async fn stop(&self) -> Result<(), HostError> {
        self.inner.shutdown(STOP_GRACE).await;
        Ok(())
    }

    /// Resolves when the host has stopped (for example by a `cmd.{id}.stop` request).
    pub async fn stopped(&self) {
        let mut stopped = self.inner.stopped.subscribe();
        let _ = stopped.wait_for(|s| *s).await;
    }
}
