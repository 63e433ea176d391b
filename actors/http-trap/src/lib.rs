//! `http-trap`: a test actor for the `wasmcloud:httpserver` contract that fails the hard
//! way on demand. On `HandleRequest` it executes the wasm `unreachable` instruction (a trap,
//! not an error reply) when the path is `/trap`, and otherwise answers 200 with the body
//! `ok <path>`. It lets tests check that a trap during an HTTP request becomes a 500 and
//! that the next request is served by a fresh instance.
//!
//! It needs the capability `wasmcloud:httpserver`.

use std::collections::HashMap;

use nimbus_actor::{HandlerResult, register_function};
use serde::{Deserialize, Serialize};

/// The path that makes the actor trap.
pub const TRAP_PATH: &str = "/trap";

/// Registers `HandleRequest`; called once by the host after instantiation.
#[allow(unsafe_code)]
// SAFETY: `wapc_init` is the waPC init export; nothing else in the module defines it.
#[unsafe(no_mangle)]
pub extern "C" fn wapc_init() {
    register_function("HandleRequest", handle_request);
}

/// `wasmcloud:httpserver` request, as the published interface encodes it (only the path
/// is read).
#[derive(Debug, Deserialize)]
struct HttpRequest {
    #[serde(rename = "path")]
    path: String,
}

/// `wasmcloud:httpserver` response, as the published interface encodes it.
#[derive(Debug, Serialize)]
struct HttpResponse {
    #[serde(rename = "statusCode")]
    status_code: u32,
    #[serde(rename = "status")]
    status: String,
    #[serde(rename = "header")]
    header: HashMap<String, String>,
    #[serde(rename = "body", with = "serde_bytes")]
    body: Vec<u8>,
}

fn handle_request(payload: &[u8]) -> HandlerResult<Vec<u8>> {
    let request: HttpRequest = rmp_serde::from_slice(payload)?;
    if request.path == TRAP_PATH {
        trap();
    }
    let response = HttpResponse {
        status_code: 200,
        status: "OK".to_string(),
        header: HashMap::from([("content-type".to_string(), "text/plain".to_string())]),
        body: format!("ok {}", request.path).into_bytes(),
    };
    Ok(rmp_serde::to_vec_named(&response)?)
}

/// Executes `unreachable`: the instance traps and the host discards it.
fn trap() -> ! {
    #[cfg(target_arch = "wasm32")]
    core::arch::wasm32::unreachable();
    #[cfg(not(target_arch = "wasm32"))]
    std::process::abort();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Reply {
        #[serde(rename = "statusCode")]
        status_code: u32,
        #[serde(rename = "body", with = "serde_bytes")]
        body: Vec<u8>,
    }

    #[test]
    fn other_paths_get_200_with_the_path() -> HandlerResult<()> {
        #[derive(Serialize)]
        struct Request<'a> {
            path: &'a str,
        }
        let payload = rmp_serde::to_vec_named(&Request { path: "/fine" })?;
        let reply: Reply = rmp_serde::from_slice(&handle_request(&payload)?)?;
        assert_eq!(reply.status_code, 200);
        assert_eq!(reply.body, b"ok /fine");
        Ok(())
    }
}
