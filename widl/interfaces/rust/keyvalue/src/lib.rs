//! The `wasmcloud:keyvalue` interface, generated from `widl/interfaces/keyvalue.widl` and
//! wire-compatible with `wasmcloud-actor-keyvalue` 0.2.2 (same operations, argument structs,
//! field names and types).
//!
//! - feature `actor`: `host("link")` / `default()` give a `Host` whose methods call the
//!   linked key-value provider (`kv::default().get("k".into())`) through the actor's real
//!   host; `Host::with_host("link", &fake)` calls through any `nimbus_actor::HostCall`
//!   instead, so actor logic generic over `kv::Host<H>` is unit-tested with a fake;
//! - feature `provider`: the `Store` trait (one async method per operation) and
//!   `dispatch_store`, which a `Provider::handle_invocation` forwards to.
//!
//! On top of the published interface, role `BatchStore` (`GetMany`, `SetMany`, `DelMany`;
//! trait `BatchStore` and `dispatch_batch_store` on the provider side) is a nimbus
//! extension: new operations only, which 0.x actors never send and 0.x providers answer with
//! an unknown-operation error. [`batch`] holds its limit and helpers that fall back to the
//! single-key operations with such providers.

include!(concat!(env!("OUT_DIR"), "/keyvalue.rs"));

pub mod batch;
