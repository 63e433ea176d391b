//! The protocol core of nimbus: the wire types of the waPC-era wasmCloud lattice
//! (invocations, entities, link definitions, host data, control and event payloads),
//! NATS subject builders, nkeys and wascap-compatible claims.
//!
//! This crate does no I/O and pulls in no async runtime or wasm engine, so every other
//! crate (host, providers, `wash`, even tooling) can share the exact same encodings.

pub mod claims;
pub mod ctl;
pub mod encoding;
pub mod events;
pub mod keys;
pub mod link;
pub mod replay;
pub mod stats;
pub mod subjects;
pub mod wasm;
pub mod wire;
