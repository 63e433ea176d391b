//! The `wasmcloud:httpserver` interface, generated from `widl/interfaces/httpserver.widl`
//! and wire-compatible with `wasmcloud-actor-http-server` 0.1.2: the provider delivers each
//! HTTP request to the linked actor as `HandleRequest` and sends back the actor's response.
//!
//! - feature `actor`: `Handlers::register_handle_request(handler)` from `wapc_init`;
//! - feature `provider`: `ActorClient::handle_request` to deliver a request to an actor.
//!
//! The response helpers (`Response::ok()`, `not_found()`, ...) are those of the published
//! crate, so actor code ports unchanged.

include!(concat!(env!("OUT_DIR"), "/httpserver.rs"));

impl Request {
    /// The path split at `/`, without the leading empty segment: `/v0/users/42` →
    /// `["v0", "users", "42"]`.
    pub fn path_segments(&self) -> Vec<&str> {
        self.path.split('/').skip(1).collect()
    }
}

impl Response {
    /// `200 OK` with no headers and an empty body.
    pub fn ok() -> Response {
        Response {
            status_code: 200,
            status: "OK".to_string(),
            ..Response::default()
        }
    }

    /// `404 Not Found`.
    pub fn not_found() -> Response {
        Response {
            status_code: 404,
            status: "Not Found".to_string(),
            ..Response::default()
        }
    }

    /// `400 Bad Request`.
    pub fn bad_request() -> Response {
        Response {
            status_code: 400,
            status: "Bad Request".to_string(),
            ..Response::default()
        }
    }

    /// `500 Internal Server Error` with `msg` as the body.
    pub fn internal_server_error(msg: &str) -> Response {
        Response {
            status_code: 500,
            status: "Internal Server Error".to_string(),
            body: msg.as_bytes().to_vec(),
            ..Response::default()
        }
    }
}
