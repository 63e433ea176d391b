//! A loaded actor: its pre-linked module and a pool of warm instances.
//!
//! A call takes an idle instance (or starts one, up to `max_instances`), runs
//! `__guest_call` under an epoch deadline, and puts the instance back. An instance that
//! trapped, ran out of time or hit its memory limit is dropped, never reused: its heap
//! may be in any state.

use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use nimbus_core::claims::{Actor as ActorClaims, Token};
use wasmtime::{InstancePre, Store, Trap, TypedFunc};

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

/// A loaded actor. Cheap to clone; clones share the instance pool. Calls are blocking
/// (they run wasm on the calling thread): from async code, call from a blocking task.
#[derive(Clone)]
pub struct Actor {
    inner: Arc<ActorInner>,
}

struct ActorInner {
    spec: ActorSpec,
    timeout: Duration,
    pool: Mutex<Pool>,
    freed: Condvar,
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
        let inner = Arc::new(ActorInner {
            spec,
            timeout,
            pool: Mutex::default(),
            freed: Condvar::new(),
        });
        let first = inner.instantiate().map_err(|e| match e {
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
    pub fn call(&self, operation: &str, payload: &[u8]) -> Result<Vec<u8>, CallError> {
        self.call_with_timeout(operation, payload, self.inner.timeout)
    }

    /// Calls `operation` in a brand-new instance that is dropped afterwards: no state
    /// survives between such calls. Costs an instantiation (plus `wapc_init`) per call;
    /// used to measure cold starts and for callers that want full isolation.
    pub fn call_in_fresh_instance(
        &self,
        operation: &str,
        payload: &[u8],
    ) -> Result<Vec<u8>, CallError> {
        let inner = &self.inner;
        let mut instance = inner.instantiate().map_err(|e| match e {
            InstantiateError::Call(e) => e,
            InstantiateError::Load(e) => CallError::Instantiate {
                actor: inner.spec.id.to_string(),
                message: e.to_string(),
            },
        })?;
        inner.run(&mut instance, operation, payload, inner.timeout)
    }

    /// Calls `operation` with `payload`; the wait for a free instance and the guest's run
    /// each get at most `timeout`.
    pub fn call_with_timeout(
        &self,
        operation: &str,
        payload: &[u8],
        timeout: Duration,
    ) -> Result<Vec<u8>, CallError> {
        let inner = &self.inner;
        let _span = tracing::trace_span!("actor_call", actor = %inner.spec.id, operation).entered();
        let mut instance = inner.acquire(operation, Instant::now() + timeout)?;
        let outcome = inner.run(&mut instance, operation, payload, timeout);
        let reusable = !matches!(
            outcome,
            Err(CallError::Trapped { .. }
                | CallError::DeadlineExceeded { .. }
                | CallError::MemoryLimit { .. })
        );
        inner.release(reusable.then_some(instance));
        outcome
    }
}

enum InstantiateError {
    Load(LoadError),
    Call(CallError),
}

impl ActorInner {
    fn lock(&self) -> std::sync::MutexGuard<'_, Pool> {
        self.pool.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn ticks(&self, timeout: Duration) -> u64 {
        let tick = self
            .spec
            .runtime
            .config
            .epoch_tick
            .max(Duration::from_millis(1));
        (timeout.as_nanos() / tick.as_nanos()).max(1) as u64 + 1
    }

    fn acquire(&self, operation: &str, deadline: Instant) -> Result<Instance, CallError> {
        let max = self.spec.options.max_instances.max(1);
        let mut pool = self.lock();
        loop {
            if let Some(instance) = pool.idle.pop() {
                return Ok(instance);
            }
            if pool.live < max {
                pool.live += 1;
                drop(pool);
                return self.instantiate().map_err(|e| {
                    self.release(None);
                    match e {
                        InstantiateError::Call(e) => e,
                        InstantiateError::Load(e) => CallError::Instantiate {
                            actor: self.spec.id.to_string(),
                            message: e.to_string(),
                        },
                    }
                });
            }
            let now = Instant::now();
            if now >= deadline {
                tracing::debug!(actor = %self.spec.id, operation, "no free instance");
                return Err(CallError::Busy {
                    actor: self.spec.id.to_string(),
                    max_instances: max,
                    timeout: self.timeout,
                });
            }
            pool = self
                .freed
                .wait_timeout(pool, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    fn release(&self, instance: Option<Instance>) {
        let mut pool = self.lock();
        match instance {
            Some(instance) => pool.idle.push(instance),
            None => pool.live = pool.live.saturating_sub(1),
        }
        drop(pool);
        self.freed.notify_one();
    }

    fn instantiate(&self) -> Result<Instance, InstantiateError> {
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
        };
        let mut store = Store::new(&spec.runtime.engine, data);
        store.limiter(|data| &mut data.limits);
        store.set_epoch_deadline(self.ticks(self.timeout));
        let instance = spec.pre.instantiate(&mut store).map_err(|e| {
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
            store.set_epoch_deadline(self.ticks(self.timeout));
            if let Err(error) = func.call(&mut store, ()) {
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

    fn run(
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
        store.set_epoch_deadline(self.ticks(timeout));
        let result = instance.guest_call.call(&mut *store, (op_len, len));
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
