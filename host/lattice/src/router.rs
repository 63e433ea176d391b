//! The router: where an actor's host call, a provider's call to an actor, or an external
//! call (`wash call`) goes. Targets are resolved as the 0.x lattice does (reference §7.2):
//! a link for (actor, contract, link name) means a provider; an `M...` key or a known call
//! alias means an actor. A target running on this host is called in process (no envelope,
//! no serialisation, no signing); any other goes over NATS. The checks are the same on
//! both paths ([`HostInner::authorize`]), and the receiving host repeats them, so the
//! choice changes the cost of a call, never its outcome.
//!
//! The [`Router`] is a value of its own (the host holds one): it reads the registry
//! and the lattice cache and sends through the host's RPC client, and it is the only
//! path of an invocation, whoever makes it (an actor's host call, a provider's call to
//! an actor, `Host::call_actor`, an invocation that arrived over NATS).

use std::sync::{Arc, Weak};
use std::time::Duration;

use nimbus_core::claims::normalize_call_alias;
use nimbus_core::keys::PUBLIC_KEY_LEN;
use nimbus_core::link::DEFAULT_LINK_NAME;
use nimbus_core::wire::WasmCloudEntity;
use nimbus_provider_sdk::CallContext;
use nimbus_rpc::{RpcClient, describe};
use nimbus_runtime::{HostCall, HostCallFuture, HostCalls};
use nimbus_telemetry::{Span, SpanKind};
use tracing::Instrument;

use crate::cache::LatticeCache;
use crate::error::InvocationError;
use crate::metrics::Metrics;
use crate::registry::{Registry, RunningActor, RunningProvider};

/// Where an invocation goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Target {
    /// An actor, by public key.
    Actor(String),
    /// A provider serving a contract under a link name.
    Provider {
        provider_id: String,
        contract_id: String,
        link_name: String,
    },
}

impl Target {
    pub fn entity(&self) -> WasmCloudEntity {
        match self {
            Target::Actor(id) => WasmCloudEntity::actor(id.clone()),
            Target::Provider {
                provider_id,
                contract_id,
                link_name,
            } => WasmCloudEntity::provider(
                provider_id.clone(),
                contract_id.clone(),
                link_name.clone(),
            ),
        }
    }
}

/// Where [`Router::deliver_local`] got: it ran the call, or the target does not run
/// here (the payload handed back, for sending elsewhere).
pub(crate) enum Local {
    /// The target ran here; its outcome.
    Delivered(Result<Vec<u8>, InvocationError>),
    /// Not running here.
    NotHere(Vec<u8>),
}

/// Whether `s` has the shape of an actor public key.
pub(crate) fn is_actor_key(s: &str) -> bool {
    s.len() == PUBLIC_KEY_LEN && s.starts_with('M')
}

/// What the router is configured with.
pub(crate) struct RouterConfig {
    /// This host's id, for errors that say where a target is missing.
    pub host_id: String,
    /// Whether unsigned development actors may use what they are linked to.
    pub allow_unsigned: bool,
    /// The largest payload an invocation may carry.
    pub max_payload: usize,
    /// The deadline of a call whose caller gave none (an actor's host call, a 0.x
    /// invocation over NATS).
    pub rpc_timeout: Duration,
}

/// The one path of an invocation on this host.
pub(crate) struct Router {
    config: RouterConfig,
    registry: Arc<Registry>,
    cache: Arc<LatticeCache>,
    /// Sends invocations over NATS (signing them when the lattice signs); `None` on a
    /// standalone host.
    rpc: Option<RpcClient>,
    /// Where calls run here are counted; `None` (metrics off) costs one branch per call.
    metrics: Option<Arc<Metrics>>,
}

impl Router {
    /// A router over what runs here (`registry`), what the lattice knows (`cache`) and,
    /// on a lattice, the RPC client that reaches everything else.
    pub fn new(
        config: RouterConfig,
        registry: Arc<Registry>,
        cache: Arc<LatticeCache>,
        rpc: Option<RpcClient>,
        metrics: Option<Arc<Metrics>>,
    ) -> Self {
        Self {
            config,
            registry,
            cache,
            rpc,
            metrics,
        }
    }

    /// The deadline of a call whose caller gave none.
    pub fn rpc_timeout(&self) -> Duration {
        self.config.rpc_timeout
    }

    /// Resolves an actor's `__host_call(binding, namespace)` to a target and checks that
    /// the actor may use it.
    pub fn resolve(
        &self,
        actor_id: &str,
        binding: &str,
        namespace: &str,
    ) -> Result<Target, InvocationError> {
        let link_name = if binding.is_empty() {
            DEFAULT_LINK_NAME
        } else {
            binding
        };
        if let Some(provider_id) = self.cache.provider_for(actor_id, namespace, link_name) {
            self.check_capability(actor_id, namespace)?;
            return Ok(Target::Provider {
                provider_id: provider_id.to_string(),
                contract_id: namespace.to_string(),
                link_name: link_name.to_string(),
            });
        }
        if is_actor_key(namespace) {
            return Ok(Target::Actor(namespace.to_string()));
        }
        if let Some(actor) = self.cache.actor_for_alias(&normalize_call_alias(namespace)) {
            return Ok(Target::Actor(actor));
        }
        Err(InvocationError::link_missing(
            actor_id, namespace, link_name,
        ))
    }

    /// The actor an external caller means: a public key, or a call alias (normalized
    /// as wascap writes aliases, so `my-actor` finds `my_actor`).
    pub fn resolve_actor(&self, actor: &str) -> String {
        if is_actor_key(actor) {
            return actor.to_string();
        }
        self.cache
            .actor_for_alias(&normalize_call_alias(actor))
            .unwrap_or_else(|| actor.to_string())
    }

    /// Whether `origin` may invoke `target`: actor → provider needs the link and the
    /// capability; provider → actor needs the link from that actor to this provider and
    /// the actor's capability; actor → actor is always allowed.
    pub fn authorize(
        &self,
        origin: &WasmCloudEntity,
        target: &WasmCloudEntity,
    ) -> Result<(), InvocationError> {
        let (actor, provider) = if target.is_provider() {
            (origin, target)
        } else if origin.is_provider() {
            (target, origin)
        } else {
            return Ok(());
        };
        match self.cache.provider_for(
            &actor.public_key,
            &provider.contract_id,
            &provider.link_name,
        ) {
            Some(linked) if *linked == *provider.public_key => {}
            _ => {
                return Err(InvocationError::link_missing(
                    &actor.public_key,
                    &provider.contract_id,
                    &provider.link_name,
                ));
            }
        }
        self.check_capability(&actor.public_key, &provider.contract_id)
    }

    fn check_capability(&self, actor_id: &str, contract_id: &str) -> Result<(), InvocationError> {
        match self.cache.grants(actor_id, contract_id) {
            Some(true) => Ok(()),
            // Unsigned development actors have no claims: the link is the grant.
            None if self.config.allow_unsigned && !is_actor_key(actor_id) => Ok(()),
            _ => Err(InvocationError::capability_not_granted(
                actor_id,
                contract_id,
            )),
        }
    }

    /// The one path of a call, local or remote: to the target in process when it runs
    /// here, over NATS otherwise; a call gets at most `timeout` either way. The caller
    /// has resolved the target; this checks it again (cheap lookups) so every entry point
    /// gets the same checks.
    pub async fn invoke(
        &self,
        origin: WasmCloudEntity,
        target: Target,
        operation: &str,
        payload: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>, InvocationError> {
        if payload.len() > self.config.max_payload {
            return Err(InvocationError::payload_too_large(
                payload.len() as u64,
                self.config.max_payload,
            ));
        }
        let target = target.entity();
        let payload = match self
            .deliver_local(&origin, &target, operation, payload, timeout)
            .await
        {
            Local::Delivered(result) => return result,
            Local::NotHere(payload) => payload,
        };
        self.authorize(&origin, &target)?;
        self.send_remote(origin, target, operation, payload, timeout)
            .await
    }

    /// Delivers to `target` if it runs on this host (an actor, or an in-process provider
    /// of that contract and link name), after the checks every delivery gets. The one
    /// place a call is run here: for [`Router::invoke`] and for invocations that arrived
    /// over NATS.
    pub async fn deliver_local(
        &self,
        origin: &WasmCloudEntity,
        target: &WasmCloudEntity,
        operation: &str,
        payload: Vec<u8>,
        timeout: Duration,
    ) -> Local {
        if target.is_actor() {
            let Some(actor) = self.registry.actor(&target.public_key) else {
                return Local::NotHere(payload);
            };
            // Tracing off (no exporter) costs this one branch; an incoming trace context
            // stays current for the actor's host calls either way.
            Local::Delivered(if nimbus_telemetry::enabled() {
                self.run_actor_traced(&actor, origin, target, operation, &payload, timeout)
                    .await
            } else {
                self.run_actor_measured(&actor, origin, target, operation, &payload, timeout)
                    .await
            })
        } else {
            let provider = self
                .registry
                .provider(&target.public_key, &target.link_name)
                .filter(|p| p.in_process().is_some() && p.contract_id == target.contract_id);
            let Some(provider) = provider else {
                return Local::NotHere(payload);
            };
            Local::Delivered(match self.authorize(origin, target) {
                Ok(()) => Self::call_provider(&provider, origin, operation, payload, timeout).await,
                Err(e) => Err(e),
            })
        }
    }

    /// Runs a call of an actor here within a span (a child of the caller's, the parent of
    /// the actor's host calls).
    async fn run_actor_traced(
        &self,
        actor: &RunningActor,
        origin: &WasmCloudEntity,
        target: &WasmCloudEntity,
        operation: &str,
        payload: &[u8],
        timeout: Duration,
    ) -> Result<Vec<u8>, InvocationError> {
        let mut span = Span::start_in_current(operation, SpanKind::Server);
        if span.is_recording() {
            span.set_attribute("nimbus.actor", target.public_key.as_str());
            span.set_attribute("nimbus.origin", origin.public_key.as_str());
            span.set_attribute("nimbus.host", self.config.host_id.as_str());
            span.set_attribute("rpc.method", operation);
        }
        let result = nimbus_telemetry::scope(
            span.context(),
            self.run_actor_measured(actor, origin, target, operation, payload, timeout),
        )
        .await;
        if let Err(e) = &result {
            span.set_error(e);
        }
        result
    }

    /// Runs a call of an actor here, counted when metrics are on.
    #[inline]
    async fn run_actor_measured(
        &self,
        actor: &RunningActor,
        origin: &WasmCloudEntity,
        target: &WasmCloudEntity,
        operation: &str,
        payload: &[u8],
        timeout: Duration,
    ) -> Result<Vec<u8>, InvocationError> {
        match &self.metrics {
            None => {
                self.run_actor(actor, origin, target, operation, payload, timeout)
                    .await
            }
            Some(metrics) => {
                let started = metrics.clock.now();
                let result = self
                    .run_actor(actor, origin, target, operation, payload, timeout)
                    .await;
                let elapsed = metrics.clock.between(started, metrics.clock.now());
                metrics.record_call(actor, operation, elapsed, result.is_err());
                result
            }
        }
    }

    /// Runs a call of an actor here, after the checks.
    #[inline]
    async fn run_actor(
        &self,
        actor: &RunningActor,
        origin: &WasmCloudEntity,
        target: &WasmCloudEntity,
        operation: &str,
        payload: &[u8],
        timeout: Duration,
    ) -> Result<Vec<u8>, InvocationError> {
        self.authorize(origin, target)?;
        actor.call_async(operation, payload, timeout).await
    }

    /// Calls an in-process provider for `origin` (an actor).
    async fn call_provider(
        provider: &RunningProvider,
        origin: &WasmCloudEntity,
        operation: &str,
        payload: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>, InvocationError> {
        let Some(instance) = provider.in_process() else {
            return Err(InvocationError::unknown_target(format!(
                "provider {} runs out of process; call it over NATS",
                provider.provider_id
            )));
        };
        let ctx = CallContext {
            actor_id: origin.public_key.clone(),
            link_name: provider.link_name.clone(),
        };
        match tokio::time::timeout(
            timeout,
            instance.handle_invocation(&ctx, operation, payload),
        )
        .await
        {
            Ok(result) => result.map_err(|e| e.to_invocation_error(&provider.contract_id)),
            Err(_) => Err(InvocationError::timed_out(
                &format!(
                    "provider {} ({})",
                    provider.provider_id, provider.contract_id
                ),
                timeout,
            )),
        }
    }

    /// Sends an invocation over NATS and waits for its response.
    async fn send_remote(
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

    /// Delivers an invocation that arrived over NATS, or says it does not run here.
    pub async fn deliver_arrived(
        &self,
        origin: &WasmCloudEntity,
        target: &WasmCloudEntity,
        operation: &str,
        payload: Vec<u8>,
    ) -> Result<Vec<u8>, InvocationError> {
        // A 0.x invocation carries no deadline: the host's RPC timeout applies.
        match self
            .deliver_local(origin, target, operation, payload, self.config.rpc_timeout)
            .await
        {
            Local::Delivered(result) => result,
            Local::NotHere(_) => Err(InvocationError::unknown_target(format!(
                "{} is not running on host {}",
                describe(target),
                self.config.host_id
            ))),
        }
    }

    /// An actor's host call, awaited on the task running the actor: a local target
    /// (actor or in-process provider) is called in place, anything else over NATS.
    async fn route_host_call(&self, call: HostCall<'_>) -> Result<Vec<u8>, InvocationError> {
        let target = self.resolve(call.actor, call.binding, call.namespace)?;
        let origin = WasmCloudEntity::actor(call.actor);
        self.invoke(
            origin,
            target,
            call.operation,
            call.payload.to_vec(),
            self.config.rpc_timeout,
        )
        .await
    }
}

/// The [`HostCalls`] every actor of a host gets: its outbound calls go to the router.
pub(crate) struct ActorHostCalls {
    pub router: Weak<Router>,
}

impl HostCalls for ActorHostCalls {
    fn host_call<'a>(&'a self, call: HostCall<'a>) -> HostCallFuture<'a> {
        let span = tracing::debug_span!(
            "host_call",
            actor = call.actor,
            operation = call.operation,
            namespace = call.namespace,
            binding = call.binding,
        );
        Box::pin(
            async move {
                let Some(router) = self.router.upgrade() else {
                    return Err("the host is stopped".into());
                };
                let result = if nimbus_telemetry::enabled() {
                    // The outbound call's span: a child of the actor's, and the parent
                    // the callee sees (in the invocation sent, or in process).
                    let mut span = Span::start_in_current(
                        format!("{}/{}", call.namespace, call.operation),
                        SpanKind::Client,
                    );
                    if span.is_recording() {
                        span.set_attribute("nimbus.actor", call.actor);
                        span.set_attribute("nimbus.namespace", call.namespace);
                        span.set_attribute("nimbus.link_name", call.binding);
                        span.set_attribute("rpc.method", call.operation);
                    }
                    let result =
                        nimbus_telemetry::scope(span.context(), router.route_host_call(call)).await;
                    if let Err(e) = &result {
                        span.set_error(e);
                    }
                    result
                } else {
                    router.route_host_call(call).await
                };
                result.map_err(|e| {
                    tracing::debug!(error = %e, "host call failed");
                    e.into()
                })
            }
            .instrument(span),
        )
    }
}
