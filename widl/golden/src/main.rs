//! Writes (or checks) `vectors.json`: a fixed set of values of the published waPC-era
//! interface crates (`wasmcloud-actor-core` 0.2.3, `wasmcloud-actor-http-server` 0.1.2,
//! `wasmcloud-actor-keyvalue` 0.2.2), each with its JSON rendering and the msgpack bytes
//! the crate's own `serialize` produces.
//!
//! The main workspace cannot depend on these crates (they need `rmp` 0.8.10, see
//! Cargo.toml), so this program runs in its own workspace and the main workspace's
//! conformance test reads the file: it rebuilds every value from its JSON with our
//! generated types, encodes it and compares the bytes, and decodes the golden bytes back.
//!
//! Maps hold at most one entry: the published types use `HashMap`, whose iteration order
//! (and so the encoded byte order) is random for more entries.

use std::collections::HashMap;
use std::process::ExitCode;

use serde::Serialize;
use wasmcloud_actor_core as core;
use wasmcloud_actor_http_server as http;
use wasmcloud_actor_keyvalue as kv;

/// One golden value.
#[derive(Serialize)]
struct Vector {
    /// Interface crate: `core`, `httpserver` or `keyvalue`.
    interface: &'static str,
    /// The WIDL type name (`()` for the void reply).
    r#type: &'static str,
    /// A unique, descriptive name.
    name: &'static str,
    /// The value as JSON (serde_json of the published type; bytes are arrays of numbers).
    value: serde_json::Value,
    /// Lower-case hex of the published crate's `serialize(value)`.
    msgpack: String,
}

/// Everything written to `vectors.json`.
#[derive(Serialize)]
struct Golden {
    /// Where the vectors come from.
    source: &'static str,
    vectors: Vec<Vector>,
    /// The published keyvalue crate's `OP_*` constants: the wire operation names.
    keyvalue_operations: Vec<&'static str>,
}

struct Builder {
    vectors: Vec<Vector>,
    error: Option<String>,
}

impl Builder {
    fn add<T: Serialize>(
        &mut self,
        interface: &'static str,
        r#type: &'static str,
        name: &'static str,
        value: T,
        bytes: Result<Vec<u8>, Box<dyn std::error::Error + Send + Sync>>,
    ) {
        let value = match serde_json::to_value(&value) {
            Ok(v) => v,
            Err(e) => {
                self.error = Some(format!("{name}: cannot render as JSON: {e}"));
                return;
            }
        };
        match bytes {
            Ok(bytes) => self.vectors.push(Vector {
                interface,
                r#type,
                name,
                value,
                msgpack: bytes.iter().map(|b| format!("{b:02x}")).collect(),
            }),
            Err(e) => self.error = Some(format!("{name}: cannot encode: {e}")),
        }
    }
}

fn one(k: &str, v: &str) -> HashMap<String, String> {
    HashMap::from([(k.to_string(), v.to_string())])
}

fn s(v: &str) -> String {
    v.to_string()
}

fn golden() -> Result<Golden, String> {
    let mut b = Builder {
        vectors: Vec::new(),
        error: None,
    };

    // wasmcloud:httpserver
    macro_rules! http {
        ($ty:literal, $name:literal, $value:expr) => {{
            let value = $value;
            let bytes = http::serialize(&value);
            b.add("httpserver", $ty, $name, value, bytes);
        }};
    }
    http!("Request", "request_default", http::Request::default());
    http!(
        "Request",
        "request_get",
        http::Request {
            method: s("GET"),
            path: s("/v0/users/42"),
            query_string: s("a=1&b=two"),
            header: one("accept", "text/plain"),
            body: b"hello".to_vec(),
        }
    );
    http!(
        "Request",
        "request_post_large_body_unicode_path",
        http::Request {
            method: s("POST"),
            path: s("/caf\u{e9}/\u{1f980}"),
            query_string: String::new(),
            header: HashMap::new(),
            body: (0..=299u32).map(|i| (i % 251) as u8).collect(),
        }
    );
    http!(
        "Response",
        "response_ok_reference",
        http::Response {
            status_code: 200,
            status: s("OK"),
            header: one("a", "b"),
            body: b"hi".to_vec(),
        }
    );
    http!(
        "Response",
        "response_not_found",
        http::Response::not_found()
    );
    http!(
        "Response",
        "response_internal_error",
        http::Response::internal_server_error("database unavailable")
    );
    http!(
        "Response",
        "response_large_status_code",
        http::Response {
            status_code: 70_000,
            status: s("Custom"),
            header: one("content-type", "application/json"),
            body: br#"{"ok":true}"#.to_vec(),
        }
    );

    // wasmcloud:keyvalue: every argument struct and every response type.
    macro_rules! kv {
        ($ty:literal, $name:literal, $value:expr) => {{
            let value = $value;
            let bytes = kv::serialize(&value);
            b.add("keyvalue", $ty, $name, value, bytes);
        }};
    }
    kv!("GetArgs", "get_args", kv::GetArgs { key: s("counter") });
    kv!(
        "AddArgs",
        "add_args_negative",
        kv::AddArgs {
            key: s("counter"),
            value: -5
        }
    );
    kv!(
        "AddArgs",
        "add_args_large",
        kv::AddArgs {
            key: s("c"),
            value: 100_000
        }
    );
    kv!(
        "SetArgs",
        "set_args",
        kv::SetArgs {
            key: s("greeting"),
            value: s("hello"),
            expires: 0
        }
    );
    kv!(
        "SetArgs",
        "set_args_expiring",
        kv::SetArgs {
            key: s("session"),
            value: s("x".repeat(40).as_str()),
            expires: 3600
        }
    );
    kv!("DelArgs", "del_args", kv::DelArgs { key: s("gone") });
    kv!("ClearArgs", "clear_args", kv::ClearArgs { key: s("list") });
    kv!(
        "RangeArgs",
        "range_args",
        kv::RangeArgs {
            key: s("list"),
            start: 0,
            stop: -1
        }
    );
    kv!(
        "PushArgs",
        "push_args",
        kv::PushArgs {
            key: s("list"),
            value: s("item")
        }
    );
    kv!(
        "ListItemDeleteArgs",
        "list_item_delete_args",
        kv::ListItemDeleteArgs {
            key: s("list"),
            value: s("item")
        }
    );
    kv!(
        "SetAddArgs",
        "set_add_args",
        kv::SetAddArgs {
            key: s("set"),
            value: s("member")
        }
    );
    kv!(
        "SetRemoveArgs",
        "set_remove_args",
        kv::SetRemoveArgs {
            key: s("set"),
            value: s("member")
        }
    );
    kv!(
        "SetUnionArgs",
        "set_union_args",
        kv::SetUnionArgs {
            keys: vec![s("a"), s("b"), s("c")]
        }
    );
    kv!(
        "SetIntersectionArgs",
        "set_intersection_args_empty",
        kv::SetIntersectionArgs { keys: Vec::new() }
    );
    kv!(
        "SetQueryArgs",
        "set_query_args",
        kv::SetQueryArgs { key: s("set") }
    );
    kv!(
        "KeyExistsArgs",
        "key_exists_args",
        kv::KeyExistsArgs { key: s("maybe") }
    );
    kv!(
        "GetResponse",
        "get_response_found",
        kv::GetResponse {
            value: s("v"),
            exists: true
        }
    );
    kv!(
        "GetResponse",
        "get_response_missing",
        kv::GetResponse {
            value: String::new(),
            exists: false
        }
    );
    kv!(
        "AddResponse",
        "add_response_max",
        kv::AddResponse { value: i32::MAX }
    );
    kv!(
        "AddResponse",
        "add_response_min",
        kv::AddResponse { value: i32::MIN }
    );
    kv!(
        "DelResponse",
        "del_response",
        kv::DelResponse { key: s("gone") }
    );
    kv!(
        "ListRangeResponse",
        "list_range_response",
        kv::ListRangeResponse {
            values: vec![s("one"), s("two")]
        }
    );
    kv!(
        "ListResponse",
        "list_response",
        kv::ListResponse { new_count: 3 }
    );
    kv!(
        "SetResponse",
        "set_response",
        kv::SetResponse { value: s("hello") }
    );
    kv!(
        "SetOperationResponse",
        "set_operation_response",
        kv::SetOperationResponse { new_count: 1 }
    );
    kv!(
        "SetQueryResponse",
        "set_query_response_empty",
        kv::SetQueryResponse { values: Vec::new() }
    );
    kv!("()", "void_reply", ());

    // core
    macro_rules! core {
        ($ty:literal, $name:literal, $value:expr) => {{
            let value = $value;
            let bytes = core::serialize(&value);
            b.add("core", $ty, $name, value, bytes);
        }};
    }
    core!(
        "HealthCheckRequest",
        "health_check_request",
        core::HealthCheckRequest { placeholder: true }
    );
    core!(
        "HealthCheckResponse",
        "health_check_response_healthy",
        core::HealthCheckResponse::healthy()
    );
    core!(
        "HealthCheckResponse",
        "health_check_response_unhealthy",
        core::HealthCheckResponse {
            healthy: false,
            message: s("cannot reach the database"),
        }
    );
    core!(
        "CapabilityConfiguration",
        "capability_configuration",
        core::CapabilityConfiguration {
            module: s("MBCFOPM6JW2APJLXJD3Z5O4CN7CPYJ2B4FTKLJUR5YR5MITIU7HD3WD5"),
            values: one("__wasmcloud_name", "kvcounter"),
        }
    );
    core!(
        "CapabilityConfiguration",
        "capability_configuration_empty",
        core::CapabilityConfiguration::default()
    );

    if let Some(e) = b.error {
        return Err(e);
    }
    Ok(Golden {
        source: "wasmcloud-actor-core 0.2.3, wasmcloud-actor-http-server 0.1.2, \
                 wasmcloud-actor-keyvalue 0.2.2 (rmp-serde 0.15.5, rmp 0.8.10)",
        vectors: b.vectors,
        keyvalue_operations: vec![
            kv::OP_GET,
            kv::OP_ADD,
            kv::OP_SET,
            kv::OP_DEL,
            kv::OP_CLEAR,
            kv::OP_RANGE,
            kv::OP_PUSH,
            kv::OP_LIST_DEL,
            kv::OP_SET_ADD,
            kv::OP_SET_REMOVE,
            kv::OP_SET_UNION,
            kv::OP_SET_INTERSECT,
            kv::OP_SET_QUERY,
            kv::OP_KEY_EXISTS,
        ],
    })
}

/// JSON with one vector per line, so a changed vector shows as a one-line diff.
fn render(golden: &Golden) -> Result<String, String> {
    let json = |v: &dyn erased::Json| v.to_json().map_err(|e| format!("cannot render JSON: {e}"));
    let mut out = String::from("{\n");
    out += &format!("  \"source\": {},\n", json(&golden.source)?);
    out += "  \"vectors\": [\n";
    let lines: Result<Vec<String>, String> = golden
        .vectors
        .iter()
        .map(|v| json(v).map(|j| format!("    {j}")))
        .collect();
    out += &lines?.join(",\n");
    out += "\n  ],\n";
    out += &format!(
        "  \"keyvalue_operations\": {}\n}}\n",
        json(&golden.keyvalue_operations)?
    );
    Ok(out)
}

/// Object-safe JSON rendering, so `render` can take any of its parts.
mod erased {
    pub trait Json {
        fn to_json(&self) -> serde_json::Result<String>;
    }
    impl<T: serde::Serialize> Json for T {
        fn to_json(&self) -> serde_json::Result<String> {
            serde_json::to_string(self)
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mode, path) = match args.as_slice() {
        [mode, path] if mode == "write" || mode == "check" => (mode.as_str(), path.as_str()),
        _ => {
            eprintln!("usage: nimbus-widl-golden write|check FILE");
            return ExitCode::from(2);
        }
    };
    let text = match golden().and_then(|g| render(&g)) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if mode == "write" {
        if let Err(e) = std::fs::write(path, &text) {
            eprintln!("error: cannot write {path}: {e}");
            return ExitCode::FAILURE;
        }
        return ExitCode::SUCCESS;
    }
    match std::fs::read_to_string(path) {
        Ok(existing) if existing == text => ExitCode::SUCCESS,
        Ok(_) => {
            eprintln!(
                "error: {path} is not what the published crates encode; \
                 run `cargo run --locked -- write {path}` in widl/golden and review the diff"
            );
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: cannot read {path}: {e}");
            ExitCode::FAILURE
        }
    }
}
