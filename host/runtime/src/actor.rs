//! A loaded actor: its pre-linked module and an elastic pool of warm instances.
//!
//! A call takes an idle instance (the most recently used one, whose memory is warm), or
//! starts one while the pool is below `max_instances` and the host below its
//! `max_total_instances`, runs `__guest_call` under a deadline, and puts the instance
//! back. An instance that trapped, ran out of time or hit its memory limit is dropped,
//! never reused: its heap may be in any state. So is the instance of a call whose caller
//! went away mid-call.
//!
//! The pool shrinks on its own: the runtime's epoch ticker drops instances idle for
//! longer than `idle_timeout` down to `min_instances` (see `capacity.rs` for why there).
//!
//! Admission is bounded. A caller that finds every instance busy waits in a queue of at
//! most `max_queued` callers for at most `max_queue_wait` (capped by its call timeout);
//! past either bound, or when the host cannot fit another instance in that time, it gets
//! [`CallError::Busy`] naming the bound, instead of unbounded latency and memory.
//!
//! Calls are async. The guest runs on a wasmtime fiber polled by the caller's task, so
//! a host call out of the guest (a key-value lookup, a request over NATS, a call to
//! another actor) is awaited without holding a thread, and a short call costs no thread
//! hand-off at all. Guest code that runs on is checked at every epoch tick: past its
//! deadline it is stopped, before that it yields to the executor so that one busy actor
//! cannot starve the tasks sharing its thread.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use nimbus_core::claims::{Actor as ActorClaims, Token};
use tokio::sync::{Semaphore, SemaphorePermit};
use wasmtime::{InstancePre, Store, Trap, TypedFunc, UpdateDeadline};

use crate::abi::{CallState, Limits, StoreData};
use crate::capacity::HostSlot;
use crate::config::ActorOptions;
use crate::error::{BusyLimit, CallError, LoadError};
use crate::runtime::RuntimeInner;

/// Entry points run once on every new instance, in this order, if exported: the WASI
/// reactor initialiser, the WASI command entry (TinyGo), and the waPC registration hook.
const STARTERS: [&str; 3] = ["_initialize", "_start", "wapc_init"];

/// Phrases guests of the published SDKs use for an operation they have no handler for.
const UNKNOWN_OPERATION_PHRASES: [&str; 3] = [
    "unknown operation",
    "No handler registered for function",
    "Could not find function",
];

/// Everything needed to start an actor, gathered by [`crate::Runtime::load_actor`].
pub(crate) struct ActorSpec {
    pub runtime: Arc<RuntimeInner>,
    pub id: Arc<str>,
    pub claims: Option<Token<ActorClaims>>,
    pub module_hash: String,
    pub pre: InstancePre<StoreData>,
    pub uses_wasi: bool,
    pub options: ActorOptions,
}

/// A loaded actor. Cheap to clone; clones share the instance pool. [`Actor::call`] is
/// async; [`Actor::call_blocking`] serves synchronous callers.
#[derive(Clone)]
pub struct Actor {
    inner: Arc<ActorInner>,
}

/// The actor's pool and admission state; reached by the runtime's trimmer through a weak
/// reference.
pub(crate) struct ActorInner {
    spec: ActorSpec,
    timeout: Duration,
    /// The warm minimum (`ActorOptions::min_instances`).
    min: usize,
    /// The ceiling (`ActorOptions::max_instances`, at least 1 and at least `min`).
    max: usize,
    pool: Mutex<Pool>,
    /// One permit per instance that may run at once (`max`). A caller holds one for the
    /// length of its call; callers without one are the queue.
    slots: Semaphore,
    /// Callers waiting for a permit or for host capacity; at most `max_queued`.
    queued: AtomicUsize,
}

#[derive(Default)]
struct Pool {
    /// Idle instances, longest idle first: calls take from the back (the warmest),
    /// trimming drops from the front.
    idle: VecDeque<Idle>,
    /// Instances of the pool alive now, busy and idle (not counting ones starting).
    live: usize,
}

struct Idle {
    instance: Instance,
    since: Instant,
}

/// One wasm instance. Fields drop in order: the store (and with it the allocator's
/// slot) goes before the host-wide count is given back.
struct Instance {
    store: Store<StoreData>,
    guest_call: TypedFunc<(i32, i32), i32>,
    _host: HostSlot,
}

impl std::fmt::Debug for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Actor")
            .field("id", &self.inner.spec.id)
            .field("module_hash", &self.inner.spec.module_hash)
            .finish_non_exhaustive()
    }
}

impl Actor {
    /// Starts the pool: the first instance must start (a broken `wapc_init` fails the
    /// load), the rest of the warm minimum is started as far as the host has room.
    pub(crate) fn start(spec: ActorSpec) -> Result<Self, LoadError> {
        let timeout = spec
            .options
            .call_timeout
            .unwrap_or(spec.runtime.config.default_call_timeout);
        let min = spec.options.min_instances;
        let max = spec.options.max_instances.max(1).max(min);
        let inner = Arc::new(ActorInner {
            spec,
            timeout,
            min,
            max,
            pool: Mutex::default(),
            slots: Semaphore::new(max),
            queued: AtomicUsize::new(0),
        });
        let capacity = inner.spec.runtime.capacity.clone();
        let first_slot = inner.reserve_host_slot().ok_or(LoadError::HostFull {
            max_total: capacity.max(),
        })?;
        let warm = crate::blocking::block_on(async {
            let first = inner
                .instantiate(first_slot)
                .await
                .map_err(|e| match e {
                    InstantiateError::Load(e) => e,
                    InstantiateError::Call(e) => LoadError::Link(e.to_string()),
                })?;
            let mut warm = vec![first];
            while warm.len() < min {
                // Best effort: the minimum is a floor for trimming; a call never fails
                // because the host had no room for it at load.
                let Some(slot) = capacity.try_reserve() else {
                    tracing::debug!(
                        actor = %inner.spec.id,
                        started = warm.len(),
                        min_instances = min,
                        max_total_instances = capacity.max(),
                        "the host is at its instance limit; the rest of the warm minimum starts on demand"
                    );
                    break;
                };
                match inner.instantiate(slot).await {
                    Ok(instance) => warm.push(instance),
                    Err(e) => {
                        let error = inner.instantiate_error(e);
                        tracing::warn!(actor = %inner.spec.id, %error, "could not start a warm instance; it starts on demand");
                        break;
                    }
                }
            }
            Ok::<_, LoadError>(warm)
        })
        .map_err(LoadError::Engine)??;
        {
            let now = Instant::now();
            let mut pool = inner.lock();
            pool.live = warm.len();
            pool.idle = warm
                .into_iter()
                .map(|instance| Idle {
                    instance,
                    since: now,
                })
                .collect();
        }
        capacity.register(Arc::downgrade(&inner));
        Ok(Self { inner })
    }

    /// The actor's id: its module public key (`M...`), or `unsigned-<hash>` for an
    /// actor loaded without claims.
    pub fn id(&self) -> &str {
        &self.inner.spec.id
    }

    /// The verified claims, if the actor was signed.
    pub fn claims(&self) -> Option<&Token<ActorClaims>> {
        self.inner.spec.claims.as_ref()
    }

    /// Uppercase hex SHA-256 of the module file as loaded (the compiled-cache key).
    pub fn file_hash(&self) -> &str {
        &self.inner.spec.module_hash
    }

    /// Whether the actor imports WASI preview 1.
    pub fn uses_wasi(&self) -> bool {
        self.inner.spec.uses_wasi
    }

    /// The actor's own deadline per call (its `call_timeout`, else the runtime default):
    /// the longest any caller may let one call run.
    pub fn call_timeout(&self) -> Duration {
        self.inner.timeout
    }

    /// Instances of the pool alive right now (busy and idle), for inventories and tests.
    pub fn live_instances(&self) -> usize {
        self.inner.lock().live
    }

    /// Instances of the pool idle right now.
    pub fn idle_instances(&self) -> usize {
        self.inner.lock().idle.len()
    }

    /// Calls running right now (each holds one of the pool's `max_instances` permits):
    /// the instances in use. One atomic load, no lock; for metrics scraped at any rate.
    pub fn busy_instances(&self) -> usize {
        self.inner
            .max
            .saturating_sub(self.inner.slots.available_permits())
    }

    /// Callers waiting right now for an instance (or for room on the host).
    pub fn queued_calls(&self) -> usize {
        self.inner.queued.load(Ordering::SeqCst)
    }

    /// The warm minimum the pool is trimmed down to.
    pub fn min_instances(&self) -> usize {
        self.inner.min
    }

    /// The ceiling the pool grows up to.
    pub fn max_instances(&self) -> usize {
        self.inner.max
    }

    /// Calls `operation` with `payload` under the actor's default deadline.
    pub async fn call(&self, operation: &str, payload: &[u8]) -> Result<Vec<u8>, CallError> {
        self.call_with_timeout(operation, payload, self.inner.timeout)
            .await
    }

    /// [`Actor::call`] for synchronous code (tools, tests, benchmarks). On a
    /// multi-threaded tokio runtime it runs in place; from other async code, await
    /// [`Actor::call`] instead.
    pub fn call_blocking(&self, operation: &str, payload: &[u8]) -> Result<Vec<u8>, CallError> {
        crate::blocking::block_on(self.call(operation, payload)).map_err(|message| {
            CallError::Instantiate {
                actor: self.id().to_string(),
                message,
            }
        })?
    }

    /// Calls `operation` in a brand-new instance that is dropped afterwards: no state
    /// survives between such calls. Costs an instantiation (plus `wapc_init`) per call;
    /// used to measure cold starts and for callers that want full isolation. It is not
    /// part of the pool but counts against the host's instance limit: at the limit it
    /// fails at once with [`BusyLimit::HostInstances`].
    pub async fn call_in_fresh_instance(
        &self,
        operation: &str,
        payload: &[u8],
    ) -> Result<Vec<u8>, CallError> {
        let inner = &self.inner;
        let Some(slot) = inner.reserve_host_slot() else {
            return Err(inner.busy(
                operation,
                BusyLimit::HostInstances {
                    max_total: inner.spec.runtime.capacity.max(),
                    waited: Duration::ZERO,
                },
            ));
        };
        let mut instance = inner
            .instantiate(slot)
            .await
            .map_err(|e| inner.instantiate_error(e))?;
        inner
            .run(&mut instance, operation, payload, inner.timeout)
            .await
    }

    /// Calls `operation` with `payload`; the wait for a free instance gets at most
    /// `timeout` (and at most the actor's `max_queue_wait`), the guest's run `timeout`.
    pub async fn call_with_timeout(
        &self,
        operation: &str,
        payload: &[u8],
        timeout: Duration,
    ) -> Result<Vec<u8>, CallError> {
        let inner = &self.inner;
        let span = tracing::trace_span!("actor_call", actor = %inner.spec.id, operation);
        let call = async {
            let mut checkout = inner.acquire(operation, timeout).await?;
            let Some(instance) = checkout.instance.as_mut() else {
                return Err(CallError::Instantiate {
                    actor: inner.spec.id.to_string(),
                    message: "the instance pool handed out an empty checkout".into(),
                });
            };
            let outcome = inner.run(instance, operation, payload, timeout).await;
            let reusable = !matches!(
                outcome,
                Err(CallError::Trapped { .. }
                    | CallError::DeadlineExceeded { .. }
                    | CallError::MemoryLimit { .. })
            );
            checkout.finish(reusable);
            outcome
        };
        tracing::Instrument::instrument(call, span).await
    }
}

enum InstantiateError {
    Load(LoadError),
    Call(CallError),
}

/// Gives the guest code about to run `timeout` from now: the epoch callback set up in
/// `instantiate` checks the deadline at the next tick and every tick after.
fn arm_deadline(store: &mut Store<StoreData>, timeout: Duration) {
    store.data_mut().deadline = Instant::now() + timeout;
    store.set_epoch_deadline(1);
}

/// An instance taken from the pool for one call, with its slot. Dropped without
/// [`Checkout::finish`] (the caller's future was cancelled mid-call, say a client hung
/// up), the instance is discarded and the count corrected: a guest stopped halfway is
/// never reused.
struct Checkout<'a> {
    inner: &'a ActorInner,
    instance: Option<Instance>,
    _slot: SemaphorePermit<'a>,
}

impl Checkout<'_> {
    /// Returns the instance to the pool, or discards it when it is not `reusable`.
    fn finish(mut self, reusable: bool) {
        let instance = self.instance.take();
        self.inner.release(instance.filter(|_| reusable));
    }
}

impl Drop for Checkout<'_> {
    fn drop(&mut self) {
        if self.instance.take().is_some() {
            self.inner.release(None);
        }
    }
}

/// A caller's place in an actor's queue; leaves it when dropped.
struct Queued<'a>(&'a AtomicUsize);

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl ActorInner {
    fn lock(&self) -> std::sync::MutexGuard<'_, Pool> {
        self.pool.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for a free slot, then takes an idle instance or starts one, waiting for room
    /// on the host if it has none. Every wait together lasts at most `timeout` and at
    /// most `max_queue_wait`, and only `max_queued` callers wait at once. The slot stays
    /// with the checkout for the length of the call.
    async fn acquire(&self, operation: &str, timeout: Duration) -> Result<Checkout<'_>, CallError> {
        let waited = timeout.min(self.spec.options.max_queue_wait);
        let deadline = tokio::time::Instant::now() + waited;
        let mut queued = None;
        let slot = match self.slots.try_acquire() {
            Ok(slot) => slot,
            Err(_) => {
                queued = Some(self.enqueue(operation)?);
                match tokio::time::timeout_at(deadline, self.slots.acquire()).await {
                    Ok(Ok(slot)) => slot,
                    _ => {
                        return Err(self.busy(
                            operation,
                            BusyLimit::Instances {
                                max_instances: self.max,
                                waited,
                            },
                        ));
                    }
                }
            }
        };
        let capacity = &self.spec.runtime.capacity;
        loop {
            if let Some(idle) = self.lock().idle.pop_back() {
                return Ok(Checkout {
                    inner: self,
                    instance: Some(idle.instance),
                    _slot: slot,
                });
            }
            if let Some(host) = self.reserve_host_slot() {
                // No longer waiting: a caller starting an instance is not queued.
                drop(queued.take());
                // Counted once it exists, so a start cancelled halfway leaves no trace
                // (the host slot goes back with the dropped future).
                let instance = self
                    .instantiate(host)
                    .await
                    .map_err(|e| self.instantiate_error(e))?;
                self.lock().live += 1;
                return Ok(Checkout {
                    inner: self,
                    instance: Some(instance),
                    _slot: slot,
                });
            }
            // The host is full: wait, as a queued caller, for an instance of this actor
            // to come back or for any instance on the host to go.
            if queued.is_none() {
                queued = Some(self.enqueue(operation)?);
            }
            let _waiter = capacity.waiter();
            let freed = capacity.freed();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if !self.lock().idle.is_empty() || capacity.live() < capacity.max() {
                continue;
            }
            if tokio::time::timeout_at(deadline, freed).await.is_err() {
                return Err(self.busy(
                    operation,
                    BusyLimit::HostInstances {
                        max_total: capacity.max(),
                        waited,
                    },
                ));
            }
        }
    }

    /// Takes a place in the queue, or refuses the call when `max_queued` callers wait.
    fn enqueue(&self, operation: &str) -> Result<Queued<'_>, CallError> {
        let max_queued = self.spec.options.max_queued;
        self.queued
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |queued| {
                (queued < max_queued).then_some(queued + 1)
            })
            .map_err(|_| {
                self.busy(
                    operation,
                    BusyLimit::Queue {
                        max_queued,
                        max_instances: self.max,
                    },
                )
            })?;
        Ok(Queued(&self.queued))
    }

    /// The refusal of a call, logged for whoever tunes the limits.
    fn busy(&self, operation: &str, limit: BusyLimit) -> CallError {
        tracing::debug!(actor = %self.spec.id, operation, %limit, "call refused by admission control");
        CallError::Busy {
            actor: self.spec.id.to_string(),
            limit,
        }
    }

    /// A share of the host's instance budget, making room by dropping another actor's
    /// longest-idle spare instance when the host is full.
    fn reserve_host_slot(&self) -> Option<HostSlot> {
        let capacity = &self.spec.runtime.capacity;
        if let Some(slot) = capacity.try_reserve() {
            return Some(slot);
        }
        while capacity.reclaim_idle(self) {
            if let Some(slot) = capacity.try_reserve() {
                return Some(slot);
            }
        }
        None
    }

    /// Returns an instance to the pool, or forgets a broken one (already dropped).
    fn release(&self, instance: Option<Instance>) {
        {
            let mut pool = self.lock();
            match instance {
                Some(instance) => pool.idle.push_back(Idle {
                    instance,
                    since: Instant::now(),
                }),
                None => pool.live = pool.live.saturating_sub(1),
            }
        }
        // A caller waiting for room on the host may take or reclaim this one.
        self.spec.runtime.capacity.wake_waiters();
    }

    /// Drops the instances idle for longer than `idle_timeout`, down to the warm minimum.
    pub(crate) fn trim_idle(&self, now: Instant) {
        let idle_timeout = self.spec.options.idle_timeout;
        let (dropped, live) = {
            let mut pool = self.lock();
            let mut dropped = Vec::new();
            while pool.live > self.min
                && pool
                    .idle
                    .front()
                    .is_some_and(|idle| now.saturating_duration_since(idle.since) >= idle_timeout)
            {
                dropped.extend(pool.idle.pop_front());
                pool.live -= 1;
            }
            (dropped, pool.live)
        };
        if !dropped.is_empty() {
            tracing::debug!(actor = %self.spec.id, dropped = dropped.len(), live, ?idle_timeout, "dropped idle instances");
        }
        // The instances (and their host slots) go here, outside the pool's lock.
        drop(dropped);
    }

    /// Since when the longest-idle instance above the warm minimum has been idle.
    pub(crate) fn oldest_spare_idle(&self) -> Option<Instant> {
        let pool = self.lock();
        if pool.live > self.min {
            pool.idle.front().map(|idle| idle.since)
        } else {
            None
        }
    }

    /// Drops the longest-idle instance above the warm minimum, for another actor that
    /// needs room on the host. Returns whether there was one.
    pub(crate) fn drop_spare_idle(&self) -> bool {
        let dropped = {
            let mut pool = self.lock();
            if pool.live <= self.min {
                return false;
            }
            let dropped = pool.idle.pop_front();
            if dropped.is_some() {
                pool.live -= 1;
            }
            dropped
        };
        if dropped.is_some() {
            tracing::debug!(actor = %self.spec.id, "dropped an idle instance to make room on the host for another actor");
        }
        dropped.is_some()
    }

    fn instantiate_error(&self, error: InstantiateError) -> CallError {
        match error {
            InstantiateError::Call(e) => e,
            InstantiateError::Load(e) => CallError::Instantiate {
                actor: self.spec.id.to_string(),
                message: e.to_string(),
            },
        }
    }

    /// Starts an instance in the host slot `host`; on failure the slot goes back (a
    /// parameter drops after the function's locals, so after a half-made store).
    async fn instantiate(&self, host: HostSlot) -> Result<Instance, InstantiateError> {
        let spec = &self.spec;
        let config = &spec.runtime.config;
        let wasi = if spec.uses_wasi {
            Some(
                crate::wasi::context(&spec.id, spec.options.wasi_dir.as_deref())
                    .map_err(InstantiateError::Load)?,
            )
        } else {
            None
        };
        let data = StoreData {
            call: CallState::default(),
            limits: Limits {
                max_memory: config.max_memory_bytes,
                max_table: config.max_table_elements,
                memory_limit_hit: false,
            },
            wasi,
            memory: None,
            host: spec.options.host_calls.clone(),
            actor_id: spec.id.clone(),
            deadline: Instant::now() + self.timeout,
        };
        let mut store = Store::new(&spec.runtime.engine, data);
        store.limiter(|data| &mut data.limits);
        // Every epoch tick the running guest is either stopped (past its deadline) or
        // yields to the executor, so a busy guest shares its thread fairly.
        store.epoch_deadline_callback(|store| {
            if Instant::now() >= store.data().deadline {
                Err(Trap::Interrupt.into())
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        arm_deadline(&mut store, self.timeout);
        let instance = spec.pre.instantiate_async(&mut store).await.map_err(|e| {
            InstantiateError::Call(CallError::Instantiate {
                actor: spec.id.to_string(),
                message: format!("{e:#}"),
            })
        })?;
        store.data_mut().memory = instance.get_memory(&mut store, "memory");
        for name in STARTERS {
            let Some(func) = instance.get_func(&mut store, name) else {
                continue;
            };
            let Ok(func) = func.typed::<(), ()>(&store) else {
                continue;
            };
            arm_deadline(&mut store, self.timeout);
            if let Err(error) = func.call_async(&mut store, ()).await {
                if matches!(error.downcast_ref::<wasmtime_wasi::I32Exit>(), Some(exit) if exit.0 == 0)
                {
                    continue;
                }
                return Err(InstantiateError::Call(self.classify(
                    &store,
                    name,
                    error,
                    self.timeout,
                )));
            }
        }
        let guest_call = instance
            .get_typed_func::<(i32, i32), i32>(&mut store, "__guest_call")
            .map_err(|_| InstantiateError::Load(LoadError::MissingExport("__guest_call")))?;
        Ok(Instance {
            store,
            guest_call,
            _host: host,
        })
    }

    async fn run(
        &self,
        instance: &mut Instance,
        operation: &str,
        payload: &[u8],
        timeout: Duration,
    ) -> Result<Vec<u8>, CallError> {
        let (Ok(op_len), Ok(len)) = (i32::try_from(operation.len()), i32::try_from(payload.len()))
        else {
            return Err(CallError::Protocol {
                actor: self.spec.id.to_string(),
                operation: operation.to_string(),
                message: "operation or payload longer than 2 GiB".into(),
            });
        };
        let store = &mut instance.store;
        store.data_mut().begin_call(operation, payload);
        arm_deadline(store, timeout);
        let result = instance
            .guest_call
            .call_async(&mut *store, (op_len, len))
            .await;
        let data = store.data_mut();
        let call = &mut data.call;
        match result {
            Ok(1) => Ok(call.response.take().unwrap_or_default()),
            // A guest that survives a refused memory.grow and reports the failure still
            // hit the limit; say so rather than pass on its generic allocation error.
            Ok(_) if data.limits.memory_limit_hit => Err(CallError::MemoryLimit {
                actor: self.spec.id.to_string(),
                operation: operation.to_string(),
                limit_bytes: data.limits.max_memory,
            }),
            Ok(_) => {
                let message = call
                    .error
                    .take()
                    .unwrap_or_else(|| "guest call failed without an error message".into());
                if UNKNOWN_OPERATION_PHRASES
                    .iter()
                    .any(|p| message.contains(p))
                {
                    Err(CallError::UnknownOperation {
                        actor: self.spec.id.to_string(),
                        operation: operation.to_string(),
                        message,
                    })
                } else {
                    Err(CallError::Guest {
                        actor: self.spec.id.to_string(),
                        operation: operation.to_string(),
                        message,
                    })
                }
            }
            Err(error) => Err(self.classify(store, operation, error, timeout)),
        }
    }

    fn classify(
        &self,
        store: &Store<StoreData>,
        operation: &str,
        error: wasmtime::Error,
        timeout: Duration,
    ) -> CallError {
        let actor = self.spec.id.to_string();
        let operation = operation.to_string();
        if store.data().limits.memory_limit_hit {
            return CallError::MemoryLimit {
                actor,
                operation,
                limit_bytes: store.data().limits.max_memory,
            };
        }
        if let Some(trap) = error.downcast_ref::<Trap>() {
            if *trap == Trap::Interrupt {
                return CallError::DeadlineExceeded {
                    actor,
                    operation,
                    timeout,
                };
            }
            return CallError::Trapped {
                actor,
                operation,
                message: trap.to_string(),
            };
        }
        if let Some(exit) = error.downcast_ref::<wasmtime_wasi::I32Exit>() {
            return CallError::Trapped {
                actor,
                operation,
                message: format!("the actor called exit({})", exit.0),
            };
        }
        CallError::Trapped {
            actor,
            operation,
            message: error.root_cause().to_string(),
        }
    }
}
