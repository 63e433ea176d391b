//! A loaded actor: its pre-linked module and a pool of warm instances.
//!
//! A call takes an idle instance (or starts one, up to `max_instances`), runs
//! `__guest_call` under a deadline, and puts the instance back. An instance that
//! trapped, ran out of time or hit its memory limit is dropped, never reused: its heap
//! may be in any state.
//!
//! Calls are async. The guest runs on a wasmtime fiber polled by the caller's task, so
//! a host call out of the guest (a key-value lookup, a request over NATS, a call to
//! another actor) is awaited without holding a thread, and a short call costs no thread
//! hand-off at all. Guest code that runs on is checked at every epoch tick: past its
//! deadline it is stopped, before that it yields to the executor so that one busy actor
//! cannot starve the tasks sharing its thread.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use nimbus_core::claims::{Actor as ActorClaims, Token};
use tokio::sync::{Semaphore, SemaphorePermit};
use wasmtime::{InstancePre, Store, Trap, TypedFunc, UpdateDeadline};

use crate::abi::{CallState, Limits, StoreData};
use crate::config::ActorOptions;
use crate::error::{CallError, LoadError};
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

struct ActorInner {
    spec: ActorSpec,
    timeout: Duration,
    pool: Mutex<Pool>,
    /// One permit per instance that may run at once (`max_instances`).
    slots: Semaphore,
}

#[derive(Default)]
struct Pool {
    idle: Vec<Instance>,
    live: usize,
}

struct Instance {
    store: Store<StoreData>,
    guest_call: TypedFunc<(i32, i32), i32>,
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
    pub(crate) fn start(spec: ActorSpec) -> Result<Self, LoadError> {
        let timeout = spec
            .options
            .call_timeout
            .unwrap_or(spec.runtime.config.default_call_timeout);
        let slots = Semaphore::new(spec.options.max_instances.max(1));
        let inner = Arc::new(ActorInner {
            spec,
            timeout,
            pool: Mutex::default(),
            slots,
        });
        let first = crate::blocking::block_on(inner.instantiate())
            .map_err(LoadError::Engine)?
            .map_err(|e| match e {
                InstantiateError::Load(e) => e,
                InstantiateError::Call(e) => LoadError::Link(e.to_string()),
            })?;
        {
            let mut pool = inner.lock();
            pool.live = 1;
            pool.idle.push(first);
        }
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

    /// Instances alive right now (busy and idle).
    pub fn live_instances(&self) -> usize {
        self.inner.lock().live
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
    /// used to measure cold starts and for callers that want full isolation.
    pub async fn call_in_fresh_instance(
        &self,
        operation: &str,
        payload: &[u8],
    ) -> Result<Vec<u8>, CallError> {
        let inner = &self.inner;
        let mut instance = inner
            .instantiate()
            .await
            .map_err(|e| inner.instantiate_error(e))?;
        inner
            .run(&mut instance, operation, payload, inner.timeout)
            .await
    }

    /// Calls `operation` with `payload`; the wait for a free instance and the guest's run
    /// each get at most `timeout`.
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

impl ActorInner {
    fn lock(&self) -> std::sync::MutexGuard<'_, Pool> {
        self.pool.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for a free slot (at most `timeout`), then takes an idle instance or starts
    /// one. The slot stays with the checkout for the length of the call.
    async fn acquire(&self, operation: &str, timeout: Duration) -> Result<Checkout<'_>, CallError> {
        let busy = || CallError::Busy {
            actor: self.spec.id.to_string(),
            max_instances: self.spec.options.max_instances.max(1),
            timeout: self.timeout,
        };
        let slot = match self.slots.try_acquire() {
            Ok(slot) => slot,
            Err(_) => match tokio::time::timeout(timeout, self.slots.acquire()).await {
                Ok(Ok(slot)) => slot,
                _ => {
                    tracing::debug!(actor = %self.spec.id, operation, "no free instance");
                    return Err(busy());
                }
            },
        };
        let idle = self.lock().idle.pop();
        let instance = match idle {
            Some(instance) => instance,
            None => {
                // Counted once it exists, so a start cancelled halfway leaves no trace.
                let instance = self
                    .instantiate()
                    .await
                    .map_err(|e| self.instantiate_error(e))?;
                self.lock().live += 1;
                instance
            }
        };
        Ok(Checkout {
            inner: self,
            instance: Some(instance),
            _slot: slot,
        })
    }

    /// Returns an instance to the pool, or forgets a broken one.
    fn release(&self, instance: Option<Instance>) {
        let mut pool = self.lock();
        match instance {
            Some(instance) => pool.idle.push(instance),
            None => pool.live = pool.live.saturating_sub(1),
        }
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

    async fn instantiate(&self) -> Result<Instance, InstantiateError> {
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
        Ok(Instance { store, guest_call })
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
