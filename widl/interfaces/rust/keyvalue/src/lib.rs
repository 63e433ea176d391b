//! The `wasmcloud:keyvalue` interface, generated from `widl/interfaces/keyvalue.widl` and
//! wire-compatible with `wasmcloud-actor-keyvalue` 0.2.2 (same operations, argument structs,
//! field names and types).
//!
//! - feature `actor`: `host("link")` / `default()` give a `Host` whose methods call the
//!   linked key-value provider (`kv::default().get("k".into())`);
//! - feature `provider`: the `Store` trait (one async method per operation) and
//!   `dispatch_store`, which a `Provider::handle_invocation` forwards to.

include!(concat!(env!("OUT_DIR"), "/keyvalue.rs"));
