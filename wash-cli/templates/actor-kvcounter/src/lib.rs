//! `{{name}}`: counts HTTP requests. On every request (`HandleRequest` from the
//! `wasmcloud:httpserver` provider linked to it) it atomically adds 1 to a counter keyed by
//! the request path in the `wasmcloud:keyvalue` store linked to it, and answers
//! `{"counter": N}`.
//!
//! The actor names no backend: the key-value link chooses memory, file, Redis or NATS KV.
//! Build and sign it with `wash build`; run it with `wash up` or `wash dev`.

use nimbus_actor::HandlerResult;
use nimbus_interface_httpserver as http;
use nimbus_interface_keyvalue as kv;

/// Registers the handlers; called once by the host after instantiation.
#[allow(unsafe_code)]
// SAFETY: `wapc_init` is the waPC init export; nothing else in the module defines it.
#[unsafe(no_mangle)]
pub extern "C" fn wapc_init() {
    http::Handlers::register_handle_request(handle_request);
}

/// The store key of the counter for `path`.
pub fn counter_key(path: &str) -> String {
    format!("{{name}}:{path}")
}

fn handle_request(request: http::Request) -> HandlerResult<http::Response> {
    // The store linked under the link name `default`.
    match kv::default().add(counter_key(&request.path), 1) {
        Ok(added) => json(200, "OK", &serde_json::json!({ "counter": added.value })),
        Err(e) => json(
            500,
            "Internal Server Error",
            &serde_json::json!({ "error": format!("key-value store failed: {e}") }),
        ),
    }
}

fn json(status_code: u32, status: &str, body: &serde_json::Value) -> HandlerResult<http::Response> {
    let mut response = http::Response {
        status_code,
        status: status.to_string(),
        body: serde_json::to_vec(body)?,
        ..http::Response::default()
    };
    response
        .header
        .insert("content-type".to_string(), "application/json".to_string());
    Ok(response)
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    #[test]
    fn counters_are_keyed_by_path() {
        assert_eq!(counter_key("/a"), "{{name}}:/a");
    }
}
