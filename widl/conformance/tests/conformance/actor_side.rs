//! The actor side of the interface crates, run natively: typed handlers receive what the
//! published crates send and answer with the published bytes; typed host calls send the
//! published bytes under the published operation names.

use nimbus_actor::HandlerResult;
use nimbus_actor::testing::{clear_host, guest_call};
use nimbus_interface_core as core_if;
use nimbus_interface_httpserver as http;
use nimbus_interface_keyvalue as kv;

use crate::support::{Call, bytes, recording_host, value};

fn reference_response(request: http::Request) -> HandlerResult<http::Response> {
    assert_eq!(request, value::<http::Request>("request_get"));
    assert_eq!(request.path_segments(), ["v0", "users", "42"]);
    Ok(value("response_ok_reference"))
}

fn failing_handler(_: http::Request) -> HandlerResult<http::Response> {
    Err("database unavailable".into())
}

#[test]
fn handle_request_decodes_published_request_and_answers_published_bytes() {
    http::Handlers::register_handle_request(reference_response);
    let reply = guest_call("HandleRequest", &bytes("request_get")).unwrap();
    assert_eq!(reply, bytes("response_ok_reference"));
}

#[test]
fn handler_errors_and_bad_payloads_are_errors_not_traps() {
    http::Handlers::register_handle_request(failing_handler);
    assert_eq!(
        guest_call("HandleRequest", &bytes("request_get")),
        Err("database unavailable".to_string())
    );
    let err = guest_call("HandleRequest", b"\xc1garbage").unwrap_err();
    assert!(
        err.starts_with("invalid payload for HandleRequest:"),
        "{err}"
    );
    let err = guest_call("HandleRequest", b"").unwrap_err();
    assert!(
        err.starts_with("invalid payload for HandleRequest:"),
        "{err}"
    );
    // A KV args struct is not a Request.
    let err = guest_call("HandleRequest", &bytes("set_args")).unwrap_err();
    assert!(err.contains("invalid payload"), "{err}");
}

fn healthy(request: core_if::HealthCheckRequest) -> HandlerResult<core_if::HealthCheckResponse> {
    assert!(request.placeholder);
    Ok(core_if::HealthCheckResponse::healthy())
}

#[test]
fn health_request_answers_like_the_published_core_crate() {
    core_if::Handlers::register_health_request(healthy);
    let reply = guest_call("HealthRequest", &bytes("health_check_request")).unwrap();
    assert_eq!(reply, bytes("health_check_response_healthy"));
}

/// Every keyvalue operation: the payload the typed sender puts on `__host_call` equals the
/// published crate's `{Op}Args` bytes, under the published operation name and contract id.
#[test]
fn every_keyvalue_sender_sends_the_published_payload() {
    let calls = recording_host(|call| {
        // Answer each operation with a published response of its result type.
        let name = match call.operation.as_str() {
            "Get" | "KeyExists" => "get_response_found",
            "Add" => "add_response_max",
            "Set" => "set_response",
            "Del" | "Clear" => "del_response",
            "Range" => "list_range_response",
            "Push" | "ListItemDelete" => "list_response",
            "SetAdd" | "SetRemove" => "set_operation_response",
            "SetUnion" | "SetIntersection" | "SetQuery" => "set_query_response_empty",
            other => return Err(format!("unexpected operation {other}")),
        };
        Ok(bytes(name))
    });
    let host = kv::default();
    let a: kv::GetArgs = value("get_args");
    assert_eq!(host.get(a.key).unwrap(), value("get_response_found"));
    let a: kv::AddArgs = value("add_args_negative");
    assert_eq!(host.add(a.key, a.value).unwrap().value, i32::MAX);
    let a: kv::SetArgs = value("set_args");
    assert_eq!(host.set(a.key, a.value, a.expires).unwrap().value, "hello");
    let a: kv::DelArgs = value("del_args");
    assert_eq!(host.del(a.key).unwrap().key, "gone");
    let a: kv::ClearArgs = value("clear_args");
    host.clear(a.key).unwrap();
    let a: kv::RangeArgs = value("range_args");
    assert_eq!(
        host.range(a.key, a.start, a.stop).unwrap().values,
        ["one", "two"]
    );
    let a: kv::PushArgs = value("push_args");
    assert_eq!(host.push(a.key, a.value).unwrap().new_count, 3);
    let a: kv::ListItemDeleteArgs = value("list_item_delete_args");
    host.list_item_delete(a.key, a.value).unwrap();
    let a: kv::SetAddArgs = value("set_add_args");
    assert_eq!(host.set_add(a.key, a.value).unwrap().new_count, 1);
    let a: kv::SetRemoveArgs = value("set_remove_args");
    host.set_remove(a.key, a.value).unwrap();
    let a: kv::SetUnionArgs = value("set_union_args");
    host.set_union(a.keys).unwrap();
    let a: kv::SetIntersectionArgs = value("set_intersection_args_empty");
    host.set_intersection(a.keys).unwrap();
    let a: kv::SetQueryArgs = value("set_query_args");
    host.set_query(a.key).unwrap();
    let a: kv::KeyExistsArgs = value("key_exists_args");
    assert!(host.key_exists(a.key).unwrap().exists);

    let expected = [
        ("Get", "get_args"),
        ("Add", "add_args_negative"),
        ("Set", "set_args"),
        ("Del", "del_args"),
        ("Clear", "clear_args"),
        ("Range", "range_args"),
        ("Push", "push_args"),
        ("ListItemDelete", "list_item_delete_args"),
        ("SetAdd", "set_add_args"),
        ("SetRemove", "set_remove_args"),
        ("SetUnion", "set_union_args"),
        ("SetIntersection", "set_intersection_args_empty"),
        ("SetQuery", "set_query_args"),
        ("KeyExists", "key_exists_args"),
    ];
    let calls = calls.borrow();
    assert_eq!(calls.len(), expected.len());
    for (call, (op, args)) in calls.iter().zip(expected) {
        assert_eq!(
            call,
            &Call {
                binding: "default".into(),
                namespace: "wasmcloud:keyvalue".into(),
                operation: op.into(),
                payload: bytes(args),
            },
            "{op}"
        );
    }
    clear_host();
}

#[test]
fn host_binding_selects_the_link_name() {
    let calls = recording_host(|_| Ok(bytes("get_response_missing")));
    let missing = kv::host("cache").get("k".into()).unwrap();
    assert_eq!(missing, value("get_response_missing"));
    assert!(!missing.exists);
    assert_eq!(calls.borrow()[0].binding, "cache");
    clear_host();
}

#[test]
fn malformed_replies_and_host_errors_are_errors_not_traps() {
    recording_host(|_| Ok(b"\x92\x01".to_vec()));
    let err = kv::default().get("k".into()).unwrap_err().to_string();
    assert!(
        err.starts_with("invalid reply to Get from wasmcloud:keyvalue:"),
        "{err}"
    );
    recording_host(|_| Ok(Vec::new()));
    let err = kv::default().add("k".into(), 1).unwrap_err().to_string();
    assert!(err.starts_with("invalid reply to Add"), "{err}");
    recording_host(|_| Err("no link for contract wasmcloud:keyvalue link name default".into()));
    let err = kv::default().del("k".into()).unwrap_err().to_string();
    assert_eq!(
        err,
        "no link for contract wasmcloud:keyvalue link name default"
    );
    clear_host();
}

/// A host call as [`InjectedHost`] saw it: binding, namespace, operation, payload.
type SeenCall = (String, String, String, Vec<u8>);

/// A host double passed to the generated senders, not installed thread-globally: it
/// records what it was sent and answers `Get` with the published bytes.
#[derive(Default)]
struct InjectedHost {
    calls: std::cell::RefCell<Vec<SeenCall>>,
}

impl nimbus_actor::HostCall for InjectedHost {
    fn host_call(
        &self,
        binding: &str,
        namespace: &str,
        operation: &str,
        payload: &[u8],
    ) -> Result<Vec<u8>, nimbus_actor::HostError> {
        self.calls.borrow_mut().push((
            binding.into(),
            namespace.into(),
            operation.into(),
            payload.to_vec(),
        ));
        match operation {
            "Get" => Ok(bytes("get_response_found")),
            other => Err(nimbus_actor::HostError::new(format!(
                "no handler for {other}"
            ))),
        }
    }
}

#[test]
fn injected_hosts_get_the_published_bytes_without_the_global_host() {
    clear_host();
    let fake = InjectedHost::default();
    let host = kv::Host::with_host("cache", &fake);
    assert_eq!(host.binding(), "cache");
    let a: kv::GetArgs = value("get_args");
    assert_eq!(host.get(a.key).unwrap(), value("get_response_found"));
    let err = host.del("k".into()).unwrap_err();
    assert_eq!(err.to_string(), "no handler for Del");
    let raw = host.raw_call("Get", &bytes("get_args")).unwrap();
    assert_eq!(raw, bytes("get_response_found"));
    let calls = fake.calls.borrow();
    assert_eq!(calls.len(), 3);
    assert_eq!(
        (
            calls[0].0.as_str(),
            calls[0].1.as_str(),
            calls[0].2.as_str()
        ),
        ("cache", kv::CONTRACT_ID, "Get")
    );
    assert_eq!(calls[0].3, bytes("get_args"));
    assert_eq!(calls[1].2, "Del");
}

#[test]
fn deeply_nested_payloads_are_decode_errors_not_stack_overflows() {
    // {"key": "k", "x": [[[...]]]}: the unknown key's value nests 1000 arrays deep, which
    // serde skips recursively.
    let mut payload = vec![0x82, 0xa3, b'k', b'e', b'y', 0xa1, b'k', 0xa1, b'x'];
    payload.extend(std::iter::repeat_n(0x91, 1000));
    payload.push(0xc0);
    let err = kv::deserialize::<kv::GetArgs>(&payload).unwrap_err();
    assert!(err.to_string().contains("depth"), "{err}");
    // 100 levels are within the limit.
    let mut shallow = payload[..9].to_vec();
    shallow.extend(std::iter::repeat_n(0x91, 100));
    shallow.push(0xc0);
    assert_eq!(kv::deserialize::<kv::GetArgs>(&shallow).unwrap().key, "k");
}
