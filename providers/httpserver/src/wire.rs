//! The `wasmcloud:httpserver` payloads as the published waPC-era crate
//! (`wasmcloud-actor-http-server` 0.1) puts them on the wire: msgpack maps keyed by the
//! WIDL field names, bodies as bin.
//!
//! These mirror `widl/interfaces/httpserver.widl`; when the generated interface crate
//! lands, these types become re-exports of it.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// The operation an actor registers to receive HTTP requests.
pub const OP_HANDLE_REQUEST: &str = "HandleRequest";

/// An HTTP request as delivered to the actor.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// The method, upper case (`GET`, `POST`, ...).
    #[serde(rename = "method")]
    pub method: String,
    /// The path without the query string.
    #[serde(rename = "path")]
    pub path: String,
    /// The raw query string without `?` (empty when there is none).
    #[serde(rename = "queryString")]
    pub query_string: String,
    /// Headers, names in lower case; repeated headers joined with `, `.
    #[serde(rename = "header")]
    pub header: HashMap<String, String>,
    /// The request body.
    #[serde(rename = "body", with = "serde_bytes")]
    pub body: Vec<u8>,
}

/// The actor's HTTP response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// The HTTP status code.
    #[serde(rename = "statusCode")]
    pub status_code: u32,
    /// The reason phrase (informational; HTTP/1.1 clients ignore it).
    #[serde(rename = "status")]
    pub status: String,
    /// Response headers.
    #[serde(rename = "header")]
    pub header: HashMap<String, String>,
    /// The response body.
    #[serde(rename = "body", with = "serde_bytes")]
    pub body: Vec<u8>,
}
