//! `kvcounter`: on every HTTP request (`HandleRequest` from a `wasmcloud:httpserver`
//! provider) it atomically adds 1 to a counter keyed by the request path in the
//! `wasmcloud:keyvalue` store linked to it, and answers `{"counter": N}`.
//!
//! The actor names no backend: memory, file, Redis or NATS KV is chosen by the link, so
//! the same signed module counts on any of them. It needs the capabilities
//! `wasmcloud:httpserver` and `wasmcloud:keyvalue`.
//!
//! It is written the way every actor here is (and the `wash new` templates): the handler
//! is registered through the generated `http::Handlers`, and the logic ([`count`]) takes
//! the generated key-value sender `kv::Host<H>` over any [`HostCall`], so the actor passes
//! the real host and the unit tests pass a fake.

use nimbus_actor::{HandlerResult, HostCall};
use nimbus_interface_httpserver as http;
use nimbus_interface_keyvalue as kv;

/// Registers `HandleRequest`; called once by the host after instantiation.
#[allow(unsafe_code)]
// SAFETY: `wapc_init` is the waPC init export; nothing else in the module defines it.
#[unsafe(no_mangle)]
pub extern "C" fn wapc_init() {
    http::Handlers::register_handle_request(handle_request);
}

/// The store key of the counter for `path`.
pub fn counter_key(path: &str) -> String {
    format!("kvcounter:{path}")
}

fn handle_request(request: http::Request) -> HandlerResult<http::Response> {
    // The store linked under the link name `default`, through the actor's real host.
    count(&kv::default(), &request)
}

/// Adds 1 to the counter of the request's path in `store` and answers `{"counter": N}`;
/// a store that fails is a JSON 500 naming the store's error.
pub fn count<H: HostCall>(
    store: &kv::Host<H>,
    request: &http::Request,
) -> HandlerResult<http::Response> {
    match store.add(counter_key(&request.path), 1) {
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
    use std::cell::RefCell;
    use std::collections::HashMap;

    use nimbus_actor::{HostError, testing};

    use super::*;

    /// A key-value provider in miniature: answers `Add` from a map, or fails every call.
    #[derive(Default)]
    struct FakeStore {
        counters: RefCell<HashMap<String, i32>>,
        down: bool,
    }

    impl HostCall for FakeStore {
        fn host_call(
            &self,
            binding: &str,
            namespace: &str,
            operation: &str,
            payload: &[u8],
        ) -> Result<Vec<u8>, HostError> {
            if self.down {
                return Err(HostError::new("no link for contract wasmcloud:keyvalue"));
            }
            assert_eq!(
                (binding, namespace, operation),
                ("default", kv::CONTRACT_ID, kv::OP_ADD)
            );
            let args: kv::AddArgs =
                kv::deserialize(payload).map_err(|e| HostError::new(e.to_string()))?;
            let mut counters = self.counters.borrow_mut();
            let value = counters.entry(args.key).or_default();
            *value += args.value;
            kv::serialize(&kv::AddResponse { value: *value })
                .map_err(|e| HostError::new(e.to_string()))
        }
    }

    fn request(path: &str) -> http::Request {
        http::Request {
            method: "GET".into(),
            path: path.into(),
            ..http::Request::default()
        }
    }

    #[test]
    fn counters_are_keyed_by_path() {
        assert_eq!(counter_key("/a/b"), "kvcounter:/a/b");
    }

    #[test]
    fn each_path_counts_up_in_the_store() -> HandlerResult<()> {
        let fake = FakeStore::default();
        let store = kv::Host::with_host("default", &fake);
        for expected in ["1", "2"] {
            let response = count(&store, &request("/hits"))?;
            assert_eq!(response.status_code, 200);
            assert_eq!(
                response.body,
                format!("{{\"counter\":{expected}}}").into_bytes()
            );
        }
        let response = count(&store, &request("/other"))?;
        assert_eq!(response.body, b"{\"counter\":1}");
        assert_eq!(
            response.header.get("content-type").map(String::as_str),
            Some("application/json")
        );
        assert_eq!(fake.counters.borrow().get("kvcounter:/hits"), Some(&2));
        Ok(())
    }

    #[test]
    fn store_failure_is_a_json_500() -> HandlerResult<()> {
        let fake = FakeStore {
            down: true,
            ..FakeStore::default()
        };
        let response = count(&kv::Host::with_host("default", &fake), &request("/"))?;
        assert_eq!(response.status_code, 500);
        assert_eq!(
            String::from_utf8_lossy(&response.body),
            r#"{"error":"key-value store failed: no link for contract wasmcloud:keyvalue"}"#
        );
        Ok(())
    }

    #[test]
    fn the_registered_handler_answers_the_wire_request_through_the_real_host() {
        testing::set_host(|_, _, _, _| {
            kv::serialize(&kv::AddResponse { value: 7 }).map_err(|e| e.to_string())
        });
        wapc_init();
        let payload = http::serialize(&request("/hits")).unwrap_or_default();
        let reply = testing::guest_call(http::OP_HANDLE_REQUEST, &payload).unwrap_or_default();
        let response: http::Response = http::deserialize(&reply).unwrap_or_default();
        assert_eq!(response.status_code, 200);
        assert_eq!(response.body, b"{\"counter\":7}");
        testing::clear_host();
    }

    #[test]
    fn an_undecodable_request_is_an_error_naming_the_operation_not_a_trap() {
        wapc_init();
        let err = testing::guest_call(http::OP_HANDLE_REQUEST, &[0xc1]).unwrap_err();
        assert!(err.contains("invalid payload for HandleRequest"), "{err}");
    }
}
