//! `kvcounter`: on every HTTP request (`HandleRequest` from a `wasmcloud:httpserver`
//! provider) it atomically adds 1 to a counter keyed by the request path in the
//! `wasmcloud:keyvalue` store linked to it, and answers `{"counter": N}`.
//!
//! The actor names no backend: memory, file, Redis or NATS KV is chosen by the link, so
//! the same signed module counts on any of them. It needs the capabilities
//! `wasmcloud:httpserver` and `wasmcloud:keyvalue`. Every payload type comes from the
//! interface crates generated from `widl/interfaces/{httpserver,keyvalue}.widl`; the
//! handler is registered by hand so that an undecodable request is a 400 answer rather
//! than a failed call.

use nimbus_actor::{HandlerResult, host_call, register_function};
use nimbus_interface_httpserver as http;
use nimbus_interface_keyvalue as kv;

/// Registers `HandleRequest`; called once by the host after instantiation.
#[allow(unsafe_code)]
// SAFETY: `wapc_init` is the waPC init export; nothing else in the module defines it.
#[unsafe(no_mangle)]
pub extern "C" fn wapc_init() {
    register_function(http::OP_HANDLE_REQUEST, handle_request);
}

/// The store key of the counter for `path`.
pub fn counter_key(path: &str) -> String {
    format!("kvcounter:{path}")
}

fn handle_request(payload: &[u8]) -> HandlerResult<Vec<u8>> {
    let request: http::Request = match http::deserialize(payload) {
        Ok(r) => r,
        Err(e) => {
            return json(
                400,
                "Bad Request",
                &error_body(&format!("bad request: {e}")),
            );
        }
    };
    let args = kv::serialize(&kv::AddArgs {
        key: counter_key(&request.path),
        value: 1,
    })?;
    let reply = match host_call("default", kv::CONTRACT_ID, kv::OP_ADD, &args) {
        Ok(reply) => reply,
        Err(e) => {
            return json(
                500,
                "Internal Server Error",
                &error_body(&format!("key-value store failed: {e}")),
            );
        }
    };
    let added: kv::AddResponse = kv::deserialize(&reply)
        .map_err(|e| format!("malformed Add response from the key-value provider: {e}"))?;
    json(200, "OK", &serde_json::json!({ "counter": added.value }))
}

fn error_body(message: &str) -> serde_json::Value {
    serde_json::json!({ "error": message })
}

fn json(status_code: u32, status: &str, body: &serde_json::Value) -> HandlerResult<Vec<u8>> {
    let mut response = http::Response {
        status_code,
        status: status.to_string(),
        body: serde_json::to_vec(body)?,
        ..http::Response::default()
    };
    response
        .header
        .insert("content-type".to_string(), "application/json".to_string());
    Ok(http::serialize(&response)?)
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use nimbus_actor::testing;

    fn request(path: &str) -> Vec<u8> {
        let request = http::Request {
            method: "GET".into(),
            path: path.into(),
            ..http::Request::default()
        };
        http::serialize(&request).unwrap_or_default()
    }

    fn call(payload: &[u8]) -> http::Response {
        wapc_init();
        let reply = testing::guest_call(http::OP_HANDLE_REQUEST, payload).unwrap_or_default();
        http::deserialize(&reply).unwrap_or_default()
    }

    #[test]
    fn counters_are_keyed_by_path() {
        assert_eq!(counter_key("/a/b"), "kvcounter:/a/b");
    }

    #[test]
    fn counts_through_the_generated_bindings() {
        testing::set_host(|binding, namespace, operation, payload| {
            assert_eq!(
                (binding, namespace, operation),
                ("default", kv::CONTRACT_ID, "Add")
            );
            let args: kv::AddArgs = kv::deserialize(payload).map_err(|e| e.to_string())?;
            assert_eq!(args.key, "kvcounter:/hits");
            assert_eq!(args.value, 1);
            kv::serialize(&kv::AddResponse { value: 7 }).map_err(|e| e.to_string())
        });
        let response = call(&request("/hits"));
        assert_eq!(response.status_code, 200);
        assert_eq!(response.body, b"{\"counter\":7}");
        assert_eq!(
            response.header.get("content-type").map(String::as_str),
            Some("application/json")
        );
    }

    #[test]
    fn store_failure_is_a_json_500() {
        testing::set_host(|_, _, _, _| Err("no link for contract wasmcloud:keyvalue".into()));
        let response = call(&request("/"));
        assert_eq!(response.status_code, 500);
        assert_eq!(
            String::from_utf8_lossy(&response.body),
            r#"{"error":"key-value store failed: no link for contract wasmcloud:keyvalue"}"#
        );
    }

    #[test]
    fn a_malformed_request_is_a_400_not_a_trap() -> HandlerResult<()> {
        let reply = handle_request(&[0xc1])?;
        let response: http::Response = http::deserialize(&reply)?;
        assert_eq!(response.status_code, 400);
        Ok(())
    }
}
