//! Our generated types against the published crates: for every golden vector, the value
//! (rebuilt from its JSON with our type) encodes to exactly the published bytes, and the
//! published bytes decode to the same value.

use std::collections::BTreeSet;
use std::fmt::Debug;

use nimbus_interface_core as core_if;
use nimbus_interface_httpserver as http;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::support::{Vector, golden, hex, unhex};

fn check<T: Serialize + DeserializeOwned + PartialEq + Debug>(
    v: &Vector,
    serialize: fn(&T) -> Result<Vec<u8>, rmp_serde::encode::Error>,
    deserialize: fn(&[u8]) -> Result<T, rmp_serde::decode::Error>,
) {
    let value: T = serde_json::from_value(v.value.clone())
        .unwrap_or_else(|e| panic!("{}: JSON does not fit our {}: {e}", v.name, v.r#type));
    let ours = serialize(&value).unwrap();
    assert_eq!(
        hex(&ours),
        v.msgpack,
        "{} ({}::{}): our bytes differ from the published crate's",
        v.name,
        v.interface,
        v.r#type
    );
    let decoded = deserialize(&unhex(&v.msgpack))
        .unwrap_or_else(|e| panic!("{}: cannot decode the published bytes: {e}", v.name));
    assert_eq!(decoded, value, "{}: decoded value differs", v.name);
}

macro_rules! dispatch {
    ($v:expr, $( $iface:literal / $name:literal => $m:ident :: $ty:ident ),* $(,)?) => {
        match ($v.interface.as_str(), $v.r#type.as_str()) {
            $( ($iface, $name) => check::<$m::$ty>($v, |x| $m::serialize(x), |b| $m::deserialize(b)), )*
            (i, t) => panic!("golden vector {} has type {i}::{t}, which this test does not map", $v.name),
        }
    };
}

fn check_vector(v: &Vector) {
    dispatch!(v,
        "httpserver" / "Request" => http::Request,
        "httpserver" / "Response" => http::Response,
        "keyvalue" / "GetArgs" => kv::GetArgs,
        "keyvalue" / "AddArgs" => kv::AddArgs,
        "keyvalue" / "SetArgs" => kv::SetArgs,
        "keyvalue" / "DelArgs" => kv::DelArgs,
        "keyvalue" / "ClearArgs" => kv::ClearArgs,
        "keyvalue" / "RangeArgs" => kv::RangeArgs,
        "keyvalue" / "PushArgs" => kv::PushArgs,
        "keyvalue" / "ListItemDeleteArgs" => kv::ListItemDeleteArgs,
        "keyvalue" / "SetAddArgs" => kv::SetAddArgs,
        "keyvalue" / "SetRemoveArgs" => kv::SetRemoveArgs,
        "keyvalue" / "SetUnionArgs" => kv::SetUnionArgs,
        "keyvalue" / "SetIntersectionArgs" => kv::SetIntersectionArgs,
        "keyvalue" / "SetQueryArgs" => kv::SetQueryArgs,
        "keyvalue" / "KeyExistsArgs" => kv::KeyExistsArgs,
        "keyvalue" / "GetResponse" => kv::GetResponse,
        "keyvalue" / "AddResponse" => kv::AddResponse,
        "keyvalue" / "DelResponse" => kv::DelResponse,
        "keyvalue" / "ListRangeResponse" => kv::ListRangeResponse,
        "keyvalue" / "ListResponse" => kv::ListResponse,
        "keyvalue" / "SetResponse" => kv::SetResponse,
        "keyvalue" / "SetOperationResponse" => kv::SetOperationResponse,
        "keyvalue" / "SetQueryResponse" => kv::SetQueryResponse,
        "keyvalue" / "()" => kv::Unit,
        "core" / "HealthCheckRequest" => core_if::HealthCheckRequest,
        "core" / "HealthCheckResponse" => core_if::HealthCheckResponse,
        "core" / "CapabilityConfiguration" => core_if::CapabilityConfiguration,
    )
}

/// `()` under a name usable in the table above.
mod kv {
    pub use nimbus_interface_keyvalue::*;
    pub type Unit = ();
}

#[test]
fn every_golden_vector_matches_byte_for_byte() {
    let golden = golden();
    assert!(golden.source.contains("rmp 0.8.10"), "{}", golden.source);
    assert!(golden.vectors.len() >= 30, "too few vectors");
    for v in &golden.vectors {
        check_vector(v);
    }
}

#[test]
fn golden_vectors_cover_every_type_of_the_three_interfaces() {
    let covered: BTreeSet<(String, String)> = golden()
        .vectors
        .iter()
        .map(|v| (v.interface.clone(), v.r#type.clone()))
        .collect();
    let expected = [
        ("httpserver", "Request"),
        ("httpserver", "Response"),
        ("core", "HealthCheckRequest"),
        ("core", "HealthCheckResponse"),
        ("core", "CapabilityConfiguration"),
        ("keyvalue", "()"),
    ]
    .into_iter()
    .map(|(i, t)| (i.to_string(), t.to_string()))
    .chain(
        [
            "Get",
            "Add",
            "Set",
            "Del",
            "Clear",
            "Range",
            "Push",
            "ListItemDelete",
            "SetAdd",
            "SetRemove",
            "SetUnion",
            "SetIntersection",
            "SetQuery",
            "KeyExists",
        ]
        .iter()
        .map(|op| ("keyvalue".to_string(), format!("{op}Args"))),
    )
    .chain(
        [
            "GetResponse",
            "AddResponse",
            "DelResponse",
            "ListRangeResponse",
            "ListResponse",
            "SetResponse",
            "SetOperationResponse",
            "SetQueryResponse",
        ]
        .iter()
        .map(|t| ("keyvalue".to_string(), t.to_string())),
    );
    for pair in expected {
        assert!(covered.contains(&pair), "no golden vector for {pair:?}");
    }
}

#[test]
fn keyvalue_operation_names_are_the_published_ones() {
    let ours = [
        kv::OP_GET,
        kv::OP_ADD,
        kv::OP_SET,
        kv::OP_DEL,
        kv::OP_CLEAR,
        kv::OP_RANGE,
        kv::OP_PUSH,
        kv::OP_LIST_ITEM_DELETE,
        kv::OP_SET_ADD,
        kv::OP_SET_REMOVE,
        kv::OP_SET_UNION,
        kv::OP_SET_INTERSECTION,
        kv::OP_SET_QUERY,
        kv::OP_KEY_EXISTS,
    ];
    assert_eq!(ours.to_vec(), golden().keyvalue_operations);
    assert_eq!(kv::CONTRACT_ID, "wasmcloud:keyvalue");
    assert_eq!(http::CONTRACT_ID, "wasmcloud:httpserver");
    assert_eq!(http::OP_HANDLE_REQUEST, "HandleRequest");
    assert_eq!(core_if::OP_HEALTH_REQUEST, "HealthRequest");
}

#[test]
fn multi_entry_maps_round_trip_and_keep_the_published_key_names() {
    // The published HashMaps encode multi-entry maps in random order, so golden bytes only
    // hold one entry; here many entries decode and re-encode to the same value.
    let mut response = http::Response::ok();
    for i in 0..20 {
        response.header.insert(format!("x-h{i}"), format!("v{i}"));
    }
    let bytes = http::serialize(&response).unwrap();
    let back: http::Response = http::deserialize(&bytes).unwrap();
    assert_eq!(back, response);
    let value: rmpv::Value = rmp_serde::from_slice(&bytes).unwrap();
    let keys: Vec<&str> = value
        .as_map()
        .unwrap()
        .iter()
        .map(|(k, _)| k.as_str().unwrap())
        .collect();
    assert_eq!(keys, ["statusCode", "status", "header", "body"]);
}

#[test]
fn published_reference_response_bytes() {
    // reference-wapc-widl.md B.4, measured with rmp-serde 0.15.5: statusCode as uint8
    // (cc c8), body as bin8 (c4 02).
    let mut response = http::Response {
        status_code: 200,
        status: "OK".into(),
        ..http::Response::default()
    };
    response.header.insert("a".into(), "b".into());
    response.body = b"hi".to_vec();
    let bytes = http::serialize(&response).unwrap();
    assert_eq!(
        hex(&bytes),
        "84aa737461747573436f6465ccc8a6737461747573a24f4ba668656164657281a161a162a4626f6479c4026869"
    );
    // The health request the 0.18 host sends.
    let request = core_if::HealthCheckRequest { placeholder: true };
    let mut expected = vec![0x81, 0xab];
    expected.extend_from_slice(b"placeholder");
    expected.push(0xc3);
    assert_eq!(core_if::serialize(&request).unwrap(), expected);
}
