//! `{{name}}`: an HTTP actor. The `wasmcloud:httpserver` provider linked to it delivers
//! every request as `HandleRequest`; the actor answers with a greeting.
//!
//! Build and sign it with `wash build`; run it with `wash up` or `wash dev`.

use nimbus_actor::HandlerResult;
use nimbus_interface_httpserver as http;

/// Registers the handlers; called once by the host after instantiation.
#[allow(unsafe_code)]
// SAFETY: `wapc_init` is the waPC init export; nothing else in the module defines it.
#[unsafe(no_mangle)]
pub extern "C" fn wapc_init() {
    http::Handlers::register_handle_request(handle_request);
}

/// Answers every request with `Hello from {{name}}!` and the path asked for.
fn handle_request(request: http::Request) -> HandlerResult<http::Response> {
    let mut response = http::Response::ok();
    response.body = format!("Hello from {{name}}! You asked for {}\n", request.path).into_bytes();
    response
        .header
        .insert("content-type".to_string(), "text/plain".to_string());
    Ok(response)
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    #[test]
    fn greets() -> HandlerResult<()> {
        let request = http::Request {
            method: "GET".into(),
            path: "/x".into(),
            ..http::Request::default()
        };
        let response = handle_request(request)?;
        assert_eq!(response.status_code, 200);
        assert!(String::from_utf8_lossy(&response.body).contains("/x"));
        Ok(())
    }
}
