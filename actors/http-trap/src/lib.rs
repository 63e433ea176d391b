//! `http-trap`: a test actor for the `wasmcloud:httpserver` contract that fails the hard
//! way on demand. On `HandleRequest` it executes the wasm `unreachable` instruction (a trap,
//! not an error reply) when the path is `/trap`, and otherwise answers 200 with the body
//! `ok <path>`. It lets tests check that a trap during an HTTP request becomes a 500 and
//! that the next request is served by a fresh instance.
//!
//! It needs the capability `wasmcloud:httpserver`.

use nimbus_actor::{HandlerResult, register_function};
use nimbus_interface_httpserver as http;

/// The path that makes the actor trap.
pub const TRAP_PATH: &str = "/trap";

/// Registers `HandleRequest`; called once by the host after instantiation.
#[allow(unsafe_code)]
// SAFETY: `wapc_init` is the waPC init export; nothing else in the module defines it.
#[unsafe(no_mangle)]
pub extern "C" fn wapc_init() {
    register_function(http::OP_HANDLE_REQUEST, handle_request);
}

fn handle_request(payload: &[u8]) -> HandlerResult<Vec<u8>> {
    let request: http::Request = http::deserialize(payload)?;
    if request.path == TRAP_PATH {
        trap();
    }
    let mut response = http::Response::ok();
    response
        .header
        .insert("content-type".to_string(), "text/plain".to_string());
    response.body = format!("ok {}", request.path).into_bytes();
    Ok(http::serialize(&response)?)
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

    #[test]
    fn other_paths_get_200_with_the_path() -> HandlerResult<()> {
        let request = http::Request {
            path: "/fine".into(),
            ..http::Request::default()
        };
        let reply: http::Response =
            http::deserialize(&handle_request(&http::serialize(&request)?)?)?;
        assert_eq!(reply.status_code, 200);
        assert_eq!(reply.body, b"ok /fine");
        Ok(())
    }
}
