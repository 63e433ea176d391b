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
    /// The actor's claims verify, but their issuer is not on the host's allowlist.
    #[error(
        "actor {actor} is signed by account {issuer}, which this host does not allow (allowed issuers: {allowed}); start the host with `--allowed-issuer {issuer}` (or add it to WASH_ALLOWED_ISSUERS, or `HostBuilder::allowed_issuer`) to allow it, or sign the actor with an allowed account key (`wash claims sign --issuer`)"
    )]
    IssuerNotAllowed {
        /// The actor's module key.
        actor: String,
        /// The account that signed it.
        issuer: String,
        /// The allowed accounts, comma-separated.
        allowed: String,
    },
    /// wasmtime rejected the module (validation or compilation).
    #[error("failed to compile actor module: {0}")]
    Compile(String),
    /// The module compiled but could not be linked against the host functions.
    #[error("failed to link actor module: {0}")]
    Link(String),
    /// The runtime could not be created.
    #[error("failed to configure the wasm engine: {0}")]
    Engine(String),
    /// The host already runs its limit of instances (of all actors together), so not
    /// even the actor's first instance fits.
    #[error(
        "the host already runs its limit of {max_total} instances of all actors together; stop or scale down other actors, or raise the host's max_total_instances"
    )]
    HostFull {
        /// The host-wide limit (`RuntimeConfig::max_total_instances`).
        max_total: usize,
    },
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
    /// Admission control refused the call: the actor (or the host) is at one of its
    /// bounds. Nothing ran; retrying later is safe. The lattice passes it on as its
    /// `busy` kind, which the HTTP server answers with 503 and `Retry-After`.
    #[error("actor {actor} cannot take the call now: {limit}")]
    Busy {
        /// The actor's id.
        actor: String,
        /// Which bound was hit, with the advice for it.
        limit: BusyLimit,
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

/// The admission bound a [`CallError::Busy`] call hit. Each says what the operator can
/// change; for a caller, all of them mean "retry shortly".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BusyLimit {
    /// Every one of the actor's `max_instances` stayed busy for the caller's whole wait.
    #[error(
        "all {max_instances} of its instances stayed busy for {waited:?} (its queue wait); retry shortly, or raise the actor's max_instances (app manifest `max_instances`) if the host has CPU to spare"
    )]
    Instances {
        /// The actor's ceiling.
        max_instances: usize,
        /// How long the caller waited.
        waited: Duration,
    },
    /// `max_queued` callers were already waiting for an instance of the actor.
    #[error(
        "{max_queued} callers already wait for one of its {max_instances} instances (its max_queued); retry shortly, or raise the actor's max_instances or max_queued"
    )]
    Queue {
        /// The actor's queue bound.
        max_queued: usize,
        /// The actor's ceiling (all of them were busy).
        max_instances: usize,
    },
    /// The host runs `max_total` instances of all actors together and none became free
    /// (and no other actor had an idle one above its warm minimum) within the wait.
    #[error(
        "the host runs its limit of {max_total} instances of all actors together and none became free within {waited:?}; retry shortly, lower other actors' instance counts, raise the host's max_total_instances, or run the actor on more hosts"
    )]
    HostInstances {
        /// The host-wide limit (`RuntimeConfig::max_total_instances`).
        max_total: usize,
        /// How long the caller waited.
        waited: Duration,
    },
}
