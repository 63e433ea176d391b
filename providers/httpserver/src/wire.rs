//! The `wasmcloud:httpserver` payloads and the typed call that delivers a request to the
//! actor, from the interface crate generated from `widl/interfaces/httpserver.widl`
//! (wire-compatible with the published `wasmcloud-actor-http-server` 0.1: msgpack maps keyed
//! by the WIDL field names, bodies as bin; checked by the golden tests in
//! `widl/conformance`).

pub use nimbus_interface_httpserver::{ActorClient, OP_HANDLE_REQUEST, Request, Response};
