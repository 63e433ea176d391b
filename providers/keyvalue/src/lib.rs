//! The `wasmcloud:keyvalue` capability provider: strings, counters, lists and sets with
//! expiry, behind one backend-neutral store API ([`KvBackend`]) and four backends chosen per
//! link by its values, never by the actor:
//!
//! | `backend=` | storage | notes |
//! |---|---|---|
//! | `memory` (default) | process memory | per link; gone when the link or process goes |
//! | `file` | a redb database in `path` | crash-safe, survives restarts, one process per directory |
//! | `redis` | a Redis server at `url` | native Redis semantics; reconnects after a Redis restart |
//! | `nats` | a JetStream KV `bucket` at `url` | compare-and-swap updates; expiry stored with the value |
//!
//! Semantics are Redis's everywhere (see [`KvBackend`]), and the conformance suite in
//! `tests/all/keyvalue.rs` runs the same cases against all four backends.
//!
//! The provider ([`KeyValueProvider`]) is a library: a host runs it in process, or a small
//! binary runs it out of process through the provider SDK. It speaks the published waPC-era
//! interface (`wasmcloud-actor-keyvalue` 0.2: `Get`, `Set`, `Add`, ... with the shapes in
//! [`wire`]) and maps the 0.x wasmbus forms (`KeyValue.Get`, `KeyValue.Increment`, ...).
//!
//! Where the published 0.2 providers disagreed with each other, this one follows Redis and
//! the 0.x interface's documentation:
//! - `Push` appends (`RPUSH`; the 0.2 Redis provider prepended with `LPUSH`, the in-memory
//!   one appended) and returns the new length;
//! - `ListItemDelete` removes every occurrence and returns how many it removed (`LREM key 0`;
//!   the in-memory provider returned the remaining length);
//! - `SetAdd` / `SetRemove` return 1 or 0, whether the member was added / removed
//!   (`SADD`/`SREM`; the in-memory provider returned the set's size);
//! - `Set` honours `expires` (the 0.2 Redis provider ignored it); a negative value is refused;
//! - `Get` on a list or set fails with a wrong-type error, as Redis's `GET` does.
//!
//! On top of the published interface the provider answers the batched operations of the
//! nimbus extension (`GetMany`, `SetMany`, `DelMany`, at most [`MAX_BATCH`] keys or items
//! each; [`wire::BATCH_OPERATIONS`]), with the single-key operations' semantics but one
//! backend round trip per call, because on a lattice every host call is a NATS round trip
//! and an actor reading a page of documents would otherwise pay one per key.

pub mod backend;
pub mod backends;
pub mod config;
pub mod error;
mod model;
pub mod provider;
pub mod wire;

pub use backend::{KvBackend, ListRemoval, MAX_BATCH, Removal, SetChange, SetItem};
pub use backends::open_backend;
pub use config::{BackendConfig, ConfigError};
pub use error::KvError;
pub use provider::{CONTRACT_ID, KeyValueProvider, dispatch};
