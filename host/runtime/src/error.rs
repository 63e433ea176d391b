//! Errors of the runtime: one type for loading an actor, one for calling it.

use std::time::Duration;

/// Why an actor could not be loaded. Each variant says what the user can do about it.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The bytes are not a WebAssembly binary at all.
    #[error(
        "not a WebAssembly module (the file does not start with the `\\0asm` magic bytes); pass the `.wasm` file built for wasm32-unknown-unknown or wasm32-wasip1"
    )]
    NotWasm,
    /// The module is WebAssembly but lacks an export that every waPC actor has.
    #[error(
        "module does not export `{0}`, so it is not a waPC actor; build it with a waPC guest SDK (nimbus-actor or wapc-guest)"
    )]
    MissingExport(&'static str),
    /// The module imports something no host provides.
    #[error(
        "actor imports `{module}::{name}`, which this host does not provide (only the waPC imports under `wapc`/`wasmbus` and WASI preview 1 are available)"
    )]
    UnknownImport {
        /// The import module name.
        module: String,
        /// The imported item name.
        name: String,
    },
    /// The claims embedded in the module are missing or invalid.
    #[error("claims invalid: {0}")]
    Claims(#[from] nimbus_core::claims::ClaimsError),
    /// wasmtime rejected the module (validation or compilation).
    #[error("failed to compile actor module: {0}")]
    Compile(String),
    /// The module compiled but could not be linked against the host functions.
    #[error("failed to link actor module: {0}")]
    Link(String),
    /// The runtime could not be created.
    #[error("failed to configure the wasm engine: {0}")]
    Engine(String),
    /// A per-actor directory for WASI could not be opened.
    #[error("failed to open the actor directory {path}: {message}")]
    ActorDir {
        /// The directory that was configured.
        path: String,
        /// What went wrong.
        message: String,
    },
}

/// Why a call into an actor failed. The instance that produced a trap, a timeout or a
/// memory-limit error is discarded; the next call gets a healthy instance.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The actor has no handler for the operation.
    #[error("unknown operation {operation} on actor {actor}: {message}")]
    UnknownOperation {
        /// The actor's id.
        actor: String,
        /// The operation that was asked for.
        operation: String,
        /// The guest's own words.
        message: String,
    },
    /// The actor's handler returned an error (it did not crash).
    #[error("actor {actor} returned an error for {operation}: {message}")]
    Guest {
        /// The actor's id.
        actor: String,
        /// The operation.
        operation: String,
        /// The error text the guest set with `__guest_error`.
        message: String,
    },
    /// The actor crashed (a wasm trap: `unreachable`, out-of-bounds access, stack overflow...).
    #[error("actor trapped: actor {actor} crashed in {operation}: {message}")]
    Trapped {
        /// The actor's id.
        actor: String,
        /// The operation.
        operation: String,
        /// The trap description.
        message: String,
    },
    /// The call ran past its deadline and was interrupted.
    #[error(
        "actor {actor} did not finish {operation} within {timeout:?} and was stopped; raise the call timeout if the work is legitimately slow"
    )]
    DeadlineExceeded {
        /// The actor's id.
        actor: String,
        /// The operation.
        operation: String,
        /// The deadline that applied.
        timeout: Duration,
    },
    /// The actor tried to grow its memory past the per-instance limit.
    #[error(
        "actor {actor} exceeded its memory limit of {limit_bytes} bytes in {operation}; raise the limit or reduce the actor's memory use"
    )]
    MemoryLimit {
        /// The actor's id.
        actor: String,
        /// The operation.
        operation: String,
        /// The limit in bytes.
        limit_bytes: usize,
    },
    /// The actor broke the waPC protocol (for example it returned success without a response).
    #[error("actor {actor} broke the waPC protocol in {operation}: {message}")]
    Protocol {
        /// The actor's id.
        actor: String,
        /// The operation.
        operation: String,
        /// What it did wrong.
        message: String,
    },
    /// Every instance of the actor stayed busy until the deadline.
    #[error(
        "actor {actor} is at its limit of {max_instances} concurrent instances and none became free within {timeout:?}; scale the actor up"
    )]
    Busy {
        /// The actor's id.
        actor: String,
        /// The configured maximum.
        max_instances: usize,
        /// How long the call waited.
        timeout: Duration,
    },
    /// A fresh instance could not be created (for example the host's instance pool is full).
    #[error("could not start an instance of actor {actor}: {message}")]
    Instantiate {
        /// The actor's id.
        actor: String,
        /// What wasmtime said.
        message: String,
    },
}
