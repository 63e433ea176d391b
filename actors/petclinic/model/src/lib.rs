//! `petclinic-model`: everything the petclinic actors share, kept free of waPC plumbing so
//! it can be unit-tested natively.
//!
//! - [`wire`]: the `wasmcloud:httpserver` and `wasmcloud:keyvalue` payloads, re-exported from
//!   the generated `nimbus-interface-*` crates, with a few response helpers.
//! - [`types`]: the domain (owners, pets, pet types, vets, specialties, visits), the inputs
//!   the API accepts and the records stored in the key-value store.
//! - [`validate`]: turns request JSON into inputs, naming the offending field on error.
//! - [`route`]: the REST route table and the path/query parser of the gateway.
//! - [`ops`]: the operations and payloads of actor-to-actor calls, and the call aliases.
//! - [`kv`], [`call`]: the petclinic's helpers over the one seam to the host,
//!   [`nimbus_actor::HostCall`]: JSON documents and ids on top of the generated key-value
//!   sender, and a client for the JSON actor-to-actor operations of [`ops`].
//! - [`error`]: the error every service operation returns, with its HTTP status.
//! - [`openapi`]: the OpenAPI document of the REST API.
//! - `testing` (feature `testing`): an in-memory key-value store speaking the wire protocol
//!   and a scriptable host, so actors are tested through the same bytes a real host moves.

pub mod call;
pub mod codec;
pub mod error;
pub mod kv;
pub mod openapi;
pub mod ops;
pub mod route;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod types;
pub mod validate;
pub mod wire;

/// Re-exported so the actor crates use the same serde and JSON versions as the model.
pub use serde;
/// See [`serde`].
pub use serde_json;
