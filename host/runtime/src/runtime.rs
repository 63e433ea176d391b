//! The engine of one host: a wasmtime `Engine` with the pooling allocator and epoch
//! interruption, the linker with the waPC and WASI imports, the compiled-module caches
//! (in memory and on disk), the host-wide instance count, and the ticker thread that
//! drives deadlines and trims idle instances.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};
use wasmtime::{
    Config, Engine, ExternType, InstanceAllocationStrategy, Linker, Module,
    PoolingAllocationConfig, ValType,
};

use crate::abi::{self, StoreData, WAPC_IMPORTS, WAPC_MODULES, WASI_MODULE};
use crate::actor::{Actor, ActorSpec};
use crate::capacity::Capacity;
use crate::config::{ActorOptions, RuntimeConfig};
use crate::error::LoadError;

/// The wasm engine of a host. Cheap to clone; every clone shares the engine, the caches
/// and the ticker. Load actors with [`Runtime::load_actor`].
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<RuntimeInner>,
}

pub(crate) struct RuntimeInner {
    pub engine: Engine,
    pub linker: Linker<StoreData>,
    pub config: RuntimeConfig,
    /// Live instances of all actors against `max_total_instances`, and the pools.
    pub capacity: Arc<Capacity>,
    modules: Mutex<HashMap<String, Module>>,
    engine_tag: String,
    ticker_stop: Arc<AtomicBool>,
    ticker: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for RuntimeInner {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
        let handle = self
            .ticker
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        // The ticker itself may drop the last reference (an actor it trimmed was the
        // last holder of the runtime); it then must not join itself. It sees the stop
        // flag at its next tick and ends.
        if let Some(handle) = handle
            && handle.thread().id() != std::thread::current().id()
        {
            let _ = handle.join();
        }
    }
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// Creates the engine and starts the epoch ticker.
    pub fn new(config: RuntimeConfig) -> Result<Self, LoadError> {
        let engine = Engine::new(&engine_config(&config)).map_err(engine_error)?;
        let mut linker = Linker::new(&engine);
        abi::add_wapc_to_linker(&mut linker).map_err(engine_error)?;
        wasmtime_wasi::p1::add_to_linker_async(&mut linker, |data: &mut StoreData| {
            data.wasi.get_or_insert_with(crate::wasi::empty_context)
        })
        .map_err(engine_error)?;

        let mut tag = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut tag);
        let engine_tag = format!("{:016x}", tag.finish());

        if let Some(dir) = &config.cache_dir {
            create_private_dir(dir).map_err(|e| {
                LoadError::Engine(format!(
                    "cannot create the module cache directory {}: {e}",
                    dir.display()
                ))
            })?;
        }

        let capacity = Arc::new(Capacity::new(
            usize::try_from(config.max_total_instances).unwrap_or(usize::MAX),
        ));
        let ticker_stop = Arc::new(AtomicBool::new(false));
        let ticker = {
            let engine = engine.clone();
            let stop = ticker_stop.clone();
            let capacity = capacity.clone();
            let tick = config.epoch_tick.max(Duration::from_millis(1));
            let trim_every = config.pool_trim_interval.max(tick);
            std::thread::Builder::new()
                .name("nimbus-epoch".into())
                .spawn(move || {
                    let mut next_trim = Instant::now() + trim_every;
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(tick);
                        engine.increment_epoch();
                        let now = Instant::now();
                        if now >= next_trim {
                            capacity.trim_idle(now);
                            next_trim = now + trim_every;
                        }
                    }
                })
                .map_err(|e| LoadError::Engine(format!("cannot start the epoch ticker: {e}")))?
        };

        Ok(Self {
            inner: Arc::new(RuntimeInner {
                engine,
                linker,
                config,
                capacity,
                modules: Mutex::default(),
                engine_tag,
                ticker_stop,
                ticker: Mutex::new(Some(ticker)),
            }),
        })
    }

    /// The engine's settings.
    pub fn config(&self) -> &RuntimeConfig {
        &self.inner.config
    }

    /// Instances alive right now, of all actors together (what
    /// [`RuntimeConfig::max_total_instances`] bounds).
    pub fn live_instances(&self) -> usize {
        self.inner.capacity.live()
    }

    /// The underlying wasmtime engine, for embedders and for benchmarks that need a
    /// baseline on the very same engine.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// Verifies the actor's claims (unless `options.allow_unsigned`), compiles the module
    /// (or takes it from the cache), checks that it is a waPC actor, and starts its warm
    /// minimum of instances (the first one always, so that a broken `wapc_init` fails
    /// here and not on the first call; the rest as far as the host has room).
    pub fn load_actor(&self, bytes: &[u8], options: ActorOptions) -> Result<Actor, LoadError> {
        check_magic(bytes)?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let claims = match nimbus_core::claims::verify_actor(bytes, now) {
            Ok(token) => {
                let allowed = &options.allowed_issuers;
                if !allowed.is_empty() && !allowed.contains(&token.claims.iss) {
                    return Err(LoadError::IssuerNotAllowed {
                        actor: token.claims.sub,
                        issuer: token.claims.iss,
                        allowed: allowed.join(", "),
                    });
                }
                Some(token)
            }
            // An issuer allowlist is a deliberate restriction: it outranks allow_unsigned.
            Err(error) if options.allow_unsigned && options.allowed_issuers.is_empty() => {
                tracing::warn!(%error, "loading an actor without valid claims because unsigned actors are allowed");
                None
            }
            Err(error) => return Err(LoadError::Claims(error)),
        };
        let file_hash = hex_upper(&Sha256::digest(bytes));
        let id = match &claims {
            Some(token) => token.claims.sub.clone(),
            None => format!("unsigned-{}", &file_hash[..16]),
        };

        let module = self.compile(bytes, &file_hash)?;
        let uses_wasi = check_shape(&module)?;
        let pre = self
            .inner
            .linker
            .instantiate_pre(&module)
            .map_err(|e| LoadError::Link(format!("{e:#}")))?;
        Actor::start(ActorSpec {
            runtime: self.inner.clone(),
            id: id.into(),
            claims,
            module_hash: file_hash,
            pre,
            uses_wasi,
            options,
        })
    }

    /// Compiles a module, or returns it from the memory or disk cache.
    fn compile(&self, bytes: &[u8], file_hash: &str) -> Result<Module, LoadError> {
        let inner = &self.inner;
        if let Some(module) = inner
            .modules
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(file_hash)
        {
            return Ok(module.clone());
        }
        let module = match &inner.config.cache_dir {
            Some(dir) => {
                let path = dir.join(format!("{file_hash}-{}.cwasm", inner.engine_tag));
                match load_cached(&inner.engine, &path) {
                    Some(module) => module,
                    None => {
                        let module = Module::new(&inner.engine, bytes)
                            .map_err(|e| LoadError::Compile(format!("{e:#}")))?;
                        if let Err(error) = store_cached(&module, &path) {
                            tracing::warn!(path = %path.display(), %error, "could not write the compiled-module cache");
                        }
                        module
                    }
                }
            }
            None => Module::new(&inner.engine, bytes)
                .map_err(|e| LoadError::Compile(format!("{e:#}")))?,
        };
        inner
            .modules
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(file_hash.to_string(), module.clone());
        Ok(module)
    }
}

fn engine_config(config: &RuntimeConfig) -> Config {
    let mut pool = PoolingAllocationConfig::default();
    let instances = config.max_total_instances.max(1);
    pool.total_core_instances(instances)
        .total_memories(instances)
        .total_tables(instances)
        // Calls run on fibers; one stack per instance covers every call in flight.
        .total_stacks(instances)
        .total_component_instances(0)
        .total_gc_heaps(0)
        .max_memories_per_module(1)
        .max_tables_per_module(1)
        .max_memory_size(config.max_memory_bytes)
        .table_elements(config.max_table_elements);
    let mut cfg = Config::new();
    cfg.epoch_interruption(true)
        .wasm_gc(false)
        .wasm_function_references(false)
        .wasm_component_model(false)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    cfg
}

fn engine_error(e: wasmtime::Error) -> LoadError {
    LoadError::Engine(format!("{e:#}"))
}

fn check_magic(bytes: &[u8]) -> Result<(), LoadError> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(LoadError::NotWasm);
    }
    Ok(())
}

/// Checks the exports and imports of a waPC actor; returns whether it imports WASI.
fn check_shape(module: &Module) -> Result<bool, LoadError> {
    match module.get_export("__guest_call") {
        Some(ExternType::Func(ty))
            if ty
                .params()
                .map(|p| matches!(p, ValType::I32))
                .eq([true, true])
                && ty.results().map(|r| matches!(r, ValType::I32)).eq([true]) => {}
        _ => return Err(LoadError::MissingExport("__guest_call")),
    }
    if !matches!(module.get_export("memory"), Some(ExternType::Memory(_))) {
        return Err(LoadError::MissingExport("memory"));
    }
    let mut uses_wasi = false;
    for import in module.imports() {
        let known = if WAPC_MODULES.contains(&import.module()) {
            WAPC_IMPORTS.contains(&import.name())
        } else if import.module() == WASI_MODULE {
            uses_wasi = true;
            true
        } else {
            false
        };
        if !known {
            return Err(LoadError::UnknownImport {
                module: import.module().to_string(),
                name: import.name().to_string(),
            });
        }
    }
    Ok(uses_wasi)
}

fn load_cached(engine: &Engine, path: &Path) -> Option<Module> {
    // Read the artifact into memory instead of mapping the file: a mapped file that is
    // truncated or rewritten while the host runs would crash the process (SIGBUS).
    let bytes = std::fs::read(path).ok()?;
    // SAFETY: the cache directory is created by this runtime with mode 0700 and holds
    // only artifacts written by `Module::serialize` of this same engine configuration
    // (the file name carries the engine's compatibility hash). wasmtime additionally
    // checks the artifact's header and version and refuses a mismatched one, in which
    // case we recompile.
    #[allow(unsafe_code)]
    let loaded = unsafe { Module::deserialize(engine, &bytes) };
    match loaded {
        Ok(module) => Some(module),
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "ignoring an unusable compiled-module cache entry");
            None
        }
    }
}

fn store_cached(module: &Module, path: &Path) -> std::io::Result<()> {
    let bytes = module.serialize().map_err(std::io::Error::other)?;
    let tmp: PathBuf = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

pub(crate) fn hex_upper(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02X}");
            s
        })
}
