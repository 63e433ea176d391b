//! The `wasmcloud:httpserver` payloads, from the interface crate generated from
//! `widl/interfaces/httpserver.widl` (wire-compatible with the published
//! `wasmcloud-actor-http-server` 0.1: msgpack maps keyed by the WIDL field names, bodies
//! as bin; checked by the golden tests in `widl/conformance`).

pub use nimbus_interface_httpserver::{Request, Response};

/// The operation an actor registers to receive HTTP requests.
pub const OP_HANDLE_REQUEST: &str = "HandleRequest";
