//! `kvcounter`: on every HTTP request (`HandleRequest` from a `wasmcloud:httpserver`
//! provider) it atomically adds 1 to a counter keyed by the request path in the
//! `wasmcloud:keyvalue` store linked to it, and answers `{"counter": N}`.
//!
//! The actor names no backend: memory, file, Redis or NATS KV is chosen by the link, so
//! the same signed module counts on any of them. It needs the capabilities
//! `wasmcloud:httpserver` and `wasmcloud:keyvalue`.

use std::collections::HashMap;

use nimbus_actor::{HandlerResult, host_call, register_function};
use serde::{Deserialize, Serialize};

/// The contract of the store this actor counts in.
const KEYVALUE: &str = "wasmcloud:keyvalue";

/// Registers `HandleRequest`; called once by the host after instantiation.
#[allow(unsafe_code)]
// SAFETY: `wapc_init` is the waPC init export; nothing else in the module defines it.
#[unsafe(no_mangle)]
pub extern "C" fn wapc_init() {
    register_function("HandleRequest", handle_request);
}

/// `wasmcloud:httpserver` request, as the published interface encodes it.
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

/// `wasmcloud:keyvalue` `Add` arguments.
#[derive(Debug, Serialize)]
struct AddArgs<'a> {
    key: &'a str,
    value: i32,
}

/// `wasmcloud:keyvalue` `Add` result.
#[derive(Debug, Deserialize)]
struct AddResponse {
    value: i32,
}

/// The store key of the counter for `path`.
pub fn counter_key(path: &str) -> String {
    format!("kvcounter:{path}")
}

fn handle_request(payload: &[u8]) -> HandlerResult<Vec<u8>> {
    let request: HttpRequest = match rmp_serde::from_slice(payload) {
        Ok(r) => r,
        Err(e) => {
            return json(
                400,
                "Bad Request",
                &error_body(&format!("bad request: {e}")),
            );
        }
    };
    let args = rmp_serde::to_vec_named(&AddArgs {
        key: &counter_key(&request.path),
        value: 1,
    })?;
    let reply = match host_call("default", KEYVALUE, "Add", &args) {
        Ok(reply) => reply,
        Err(e) => {
            return json(
                500,
                "Internal Server Error",
                &error_body(&format!("key-value store failed: {e}")),
            );
        }
    };
    let added: AddResponse = rmp_serde::from_slice(&reply)
        .map_err(|e| format!("malformed Add response from the key-value provider: {e}"))?;
    json(200, "OK", &serde_json::json!({ "counter": added.value }))
}

fn error_body(message: &str) -> serde_json::Value {
    serde_json::json!({ "error": message })
}

fn json(status_code: u32, status: &str, body: &serde_json::Value) -> HandlerResult<Vec<u8>> {
    let mut header = HashMap::new();
    header.insert("content-type".to_string(), "application/json".to_string());
    let response = HttpResponse {
        status_code,
        status: status.to_string(),
        header,
        body: serde_json::to_vec(body)?,
    };
    Ok(rmp_serde::to_vec_named(&response)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_keyed_by_path() {
        assert_eq!(counter_key("/a/b"), "kvcounter:/a/b");
    }

    #[test]
    fn a_malformed_request_is_a_400_not_a_trap() -> HandlerResult<()> {
        #[derive(Deserialize)]
        struct Status {
            #[serde(rename = "statusCode")]
            status_code: u32,
        }
        let reply = handle_request(&[0xc1])?;
        let status: Status = rmp_serde::from_slice(&reply)?;
        assert_eq!(status.status_code, 400);
        Ok(())
    }
}
