//! `typed-counter`: the kvcounter example written against the generated interface crates
//! instead of hand-written wire structs. On every `HandleRequest` from a
//! `wasmcloud:httpserver` provider it adds 1 to a counter keyed by the request path in the
//! linked `wasmcloud:keyvalue` store (`Add`, sent as `AddArgs` through `__host_call`) and
//! answers `{"counter": N}`. It also answers the host's `HealthRequest`.
//!
//! Everything on the wire comes from `widl/interfaces/{core,httpserver,keyvalue}.widl`:
//! the handler registration, the decoding of `Request`, the `Add` call and the encoding of
//! `Response`. It needs the capabilities `wasmcloud:httpserver` and `wasmcloud:keyvalue`.

use nimbus_actor::HandlerResult;
use nimbus_interface_core as health;
use nimbus_interface_httpserver as http;
use nimbus_interface_keyvalue as kv;

/// Registers the handlers; called once by the host after instantiation.
#[allow(unsafe_code)]
// SAFETY: `wapc_init` is the waPC init export; nothing else in the module defines it.
#[unsafe(no_mangle)]
pub extern "C" fn wapc_init() {
    http::Handlers::register_handle_request(handle_request);
    health::Handlers::register_health_request(health_request);
}

/// The store key of the counter for `path`.
pub fn counter_key(path: &str) -> String {
    format!("typed-counter:{path}")
}

/// Counts the request and answers with the new count as JSON. A failed store call becomes
/// a 500 response naming the cause, so the HTTP client sees why.
fn handle_request(request: http::Request) -> HandlerResult<http::Response> {
    match kv::default().add(counter_key(&request.path), 1) {
        Ok(added) => {
            let mut response = http::Response::ok();
            response
                .header
                .insert("content-type".to_string(), "application/json".to_string());
            response.body = format!("{{\"counter\":{}}}", added.value).into_bytes();
            Ok(response)
        }
        Err(e) => Ok(http::Response::internal_server_error(&format!(
            "key-value store call failed: {e}"
        ))),
    }
}

/// Healthy whenever the host asks.
fn health_request(_: health::HealthCheckRequest) -> HandlerResult<health::HealthCheckResponse> {
    Ok(health::HealthCheckResponse::healthy())
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use nimbus_actor::testing;

    #[test]
    fn counts_through_the_generated_bindings() {
        wapc_init();
        testing::set_host(|binding, namespace, operation, payload| {
            assert_eq!(
                (binding, namespace, operation),
                ("default", kv::CONTRACT_ID, "Add")
            );
            let args: kv::AddArgs = kv::deserialize(payload).map_err(|e| e.to_string())?;
            assert_eq!(args.key, "typed-counter:/hits");
            assert_eq!(args.value, 1);
            kv::serialize(&kv::AddResponse { value: 7 }).map_err(|e| e.to_string())
        });
        let request = http::Request {
            method: "GET".into(),
            path: "/hits".into(),
            ..http::Request::default()
        };
        let payload = http::serialize(&request).unwrap_or_default();
        let reply = testing::guest_call(http::OP_HANDLE_REQUEST, &payload);
        let response: http::Response =
            http::deserialize(&reply.unwrap_or_default()).unwrap_or_default();
        assert_eq!(response.status_code, 200);
        assert_eq!(response.body, b"{\"counter\":7}");
        assert_eq!(
            response.header.get("content-type").map(String::as_str),
            Some("application/json")
        );
    }

    #[test]
    fn store_failure_is_a_500() {
        wapc_init();
        testing::set_host(|_, _, _, _| Err("no link for contract wasmcloud:keyvalue".into()));
        let payload = http::serialize(&http::Request::default()).unwrap_or_default();
        let reply = testing::guest_call(http::OP_HANDLE_REQUEST, &payload).unwrap_or_default();
        let response: http::Response = http::deserialize(&reply).unwrap_or_default();
        assert_eq!(response.status_code, 500);
        assert_eq!(
            String::from_utf8_lossy(&response.body),
            "key-value store call failed: no link for contract wasmcloud:keyvalue"
        );
    }

    #[test]
    fn answers_health_checks() {
        wapc_init();
        let payload = health::serialize(&health::HealthCheckRequest { placeholder: true })
            .unwrap_or_default();
        let reply = testing::guest_call("HealthRequest", &payload).unwrap_or_default();
        let response: health::HealthCheckResponse = health::deserialize(&reply).unwrap_or_default();
        assert!(response.healthy);
    }
}
