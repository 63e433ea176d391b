//! The lattice half of a nimbus host: it joins the waPC runtime with NATS and with
//! capability providers.
//!
//! - **RPC**: every running actor is served on `wasmbus.rpc.{lattice}.{actor}` in a queue
//!   group named after the subject, so hosts running the same actor share its load; an
//!   incoming Invocation is decoded, verified (anti-forgery token, when signing is on),
//!   checked (target here, link present, capability claimed) and answered with an
//!   InvocationResponse whose `error` names the problem.
//! - **Router**: an actor's host call or a provider's call to an actor stays in process
//!   when the target runs on this host, and goes over NATS otherwise, with the same
//!   checks and the same errors either way.
//! - **Control interface** (`wasmbus.ctl.{lattice}.*`, JSON) and **events**
//!   (`wasmbus.evt.{lattice}`, CloudEvents), compatible with 0.x clients.
//! - **Links and claims** shared by the lattice's hosts through a [`LatticeStore`]
//!   (JetStream KV bucket `LATTICEDATA_{lattice}`, or memory).
//! - **Standalone mode**: a host without NATS runs the same code with an in-memory store
//!   and in-process providers.
//!
//! ```no_run
//! # async fn demo(wasm: Vec<u8>) -> Result<(), Box<dyn std::error::Error>> {
//! use nimbus_lattice::{Host, NatsConfig};
//! let host = Host::builder()
//!     .nats(NatsConfig::url("nats://127.0.0.1:4222"))
//!     .build()
//!     .await?;
//! let actor = host.start_actor(wasm, 2).await?;
//! let reply = host.call_actor(&actor, "Echo", b"hi".to_vec()).await?;
//! host.stop().await?;
//! # Ok(()) }
//! ```

mod actors;
mod cache;
mod config;
mod connection;
mod ctl;
mod error;
mod events;
mod host;
mod inner;
mod inventory;
mod launch;
mod links;
mod metrics;
mod providers;
mod registry;
mod router;
mod rpc;
mod store;
mod supervision;

pub use actors::ActorSource;
pub use config::{
    DEFAULT_HEARTBEAT_INTERVAL, DEFAULT_MAX_PAYLOAD, DEFAULT_RPC_TIMEOUT, HostConfig, NatsConfig,
    TlsConfig,
};
pub use error::{ErrorKind, HostError, InvocationError, StoreError};
pub use events::LinkdefSetFailed;
pub use host::{Host, HostBuilder};
pub use launch::{ProcessHandle, ProcessLaunch, ProcessLauncher};
pub use registry::ProviderFactory;
pub use store::{ClaimsRecord, JetStreamStore, LatticeStore, MemoryStore, Snapshot, StoreChange};
pub use supervision::SupervisorLauncher;
