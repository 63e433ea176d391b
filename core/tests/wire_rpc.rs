//! RPC-plane wire types: golden MessagePack bytes (assembled by hand from the MessagePack
//! spec), lenient decoding, round trips, link ids, entity URLs and malformed input.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use std::collections::HashMap;

use nimbus_core::encoding::{self, EncodingError, Format};
use nimbus_core::link::{self, KvKey, LinkDefinition, RefMapEntry};
use nimbus_core::wire::{
    HealthCheckRequest, HealthCheckResponse, HostData, Invocation, InvocationResponse, OtelConfig,
    ShutdownRequest, WasmCloudEntity, invocation_hash,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

// ---- hand assembly of MessagePack (spec: fixmap 0x80|n, fixstr 0xa0|len, str8 0xd9,
// bin8 0xc4, true 0xc3, false 0xc2, nil 0xc0, positive fixint 0x00..0x7f, uint16 0xcd) ----

fn fixmap(n: u8) -> Vec<u8> {
    assert!(n < 16);
    vec![0x80 | n]
}

fn s(text: &str) -> Vec<u8> {
    let b = text.as_bytes();
    let mut out = if b.len() < 32 {
        vec![0xa0 | b.len() as u8]
    } else {
        assert!(b.len() < 256);
        vec![0xd9, b.len() as u8]
    };
    out.extend_from_slice(b);
    out
}

fn bin(data: &[u8]) -> Vec<u8> {
    assert!(data.len() < 256);
    let mut out = vec![0xc4, data.len() as u8];
    out.extend_from_slice(data);
    out
}

fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

fn actor_entity_bytes(pk: &str) -> Vec<u8> {
    cat(&[
        fixmap(3),
        s("public_key"),
        s(pk),
        s("link_name"),
        s(""),
        s("contract_id"),
        s(""),
    ])
}

fn provider_entity_bytes(pk: &str, link: &str, contract: &str) -> Vec<u8> {
    cat(&[
        fixmap(3),
        s("public_key"),
        s(pk),
        s("link_name"),
        s(link),
        s("contract_id"),
        s(contract),
    ])
}

fn msgpack_round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(v: &T) {
    let bytes = encoding::to_msgpack(v).unwrap();
    let back: T = encoding::from_msgpack(&bytes).unwrap();
    assert_eq!(&back, v);
}

fn json_round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(v: &T) {
    let bytes = encoding::to_json(v).unwrap();
    let back: T = encoding::from_json(&bytes).unwrap();
    assert_eq!(&back, v);
}

fn both_round_trips<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(v: &T) {
    msgpack_round_trip(v);
    json_round_trip(v);
}

fn sample_invocation() -> Invocation {
    Invocation {
        origin: WasmCloudEntity::actor("Mabc"),
        target: WasmCloudEntity::provider("Vxyz", "wasmcloud:keyvalue", "default"),
        operation: "KeyValue.Get".to_string(),
        msg: b"hello".to_vec(),
        id: "inv-1".to_string(),
        encoded_claims: String::new(),
        host_id: "Nhost".to_string(),
        content_length: Some(5),
        trace_context: None,
    }
}

fn sample_invocation_bytes(msg_value: Vec<u8>) -> Vec<u8> {
    cat(&[
        fixmap(8),
        s("origin"),
        actor_entity_bytes("Mabc"),
        s("target"),
        provider_entity_bytes("Vxyz", "default", "wasmcloud:keyvalue"),
        s("operation"),
        s("KeyValue.Get"),
        s("msg"),
        msg_value,
        s("id"),
        s("inv-1"),
        s("encoded_claims"),
        s(""),
        s("host_id"),
        s("Nhost"),
        s("content_length"),
        vec![0x05],
    ])
}

// ---- golden bytes ----------------------------------------------------------------------

#[test]
fn golden_actor_entity() {
    let e = WasmCloudEntity::actor("Mabc");
    let expected = actor_entity_bytes("Mabc");
    assert_eq!(
        expected,
        [
            &[0x83, 0xaa][..],
            b"public_key",
            &[0xa4],
            b"Mabc",
            &[0xa9],
            b"link_name",
            &[0xa0, 0xab],
            b"contract_id",
            &[0xa0],
        ]
        .concat()
    );
    assert_eq!(encoding::to_msgpack(&e).unwrap(), expected);
}

#[test]
fn golden_provider_entity() {
    let e = WasmCloudEntity::provider("Vxyz", "wasmcloud:keyvalue", "default");
    assert_eq!(
        encoding::to_msgpack(&e).unwrap(),
        provider_entity_bytes("Vxyz", "default", "wasmcloud:keyvalue")
    );
}

#[test]
fn golden_invocation() {
    let inv = sample_invocation();
    let expected = sample_invocation_bytes(bin(b"hello"));
    assert_eq!(inv.to_msgpack().unwrap(), expected);
    assert_eq!(Invocation::from_msgpack(&expected).unwrap(), inv);
}

#[test]
fn golden_invocation_with_trace_context_and_no_length() {
    let mut inv = sample_invocation();
    inv.content_length = None;
    inv.trace_context = Some(HashMap::from([(
        "traceparent".to_string(),
        "00-ab-cd-01".to_string(),
    )]));
    let mut expected = sample_invocation_bytes(bin(b"hello"));
    // Drop the trailing `content_length: 5` entry and append `traceContext`.
    let cl = cat(&[s("content_length"), vec![0x05]]);
    expected.truncate(expected.len() - cl.len());
    expected.extend(cat(&[
        s("traceContext"),
        fixmap(1),
        s("traceparent"),
        s("00-ab-cd-01"),
    ]));
    // Same number of entries (8): one removed, one added.
    assert_eq!(inv.to_msgpack().unwrap(), expected);
    assert_eq!(Invocation::from_msgpack(&expected).unwrap(), inv);
}

#[test]
fn golden_invocation_response_success_has_no_error_key() {
    let resp = InvocationResponse::success("inv-1", b"ok".to_vec());
    let expected = cat(&[
        fixmap(3),
        s("msg"),
        bin(b"ok"),
        s("invocation_id"),
        s("inv-1"),
        s("content_length"),
        vec![0x02],
    ]);
    let bytes = resp.to_msgpack().unwrap();
    assert_eq!(bytes, expected);
    assert!(!bytes.windows(5).any(|w| w == b"error"));
    assert!(!resp.is_error());
    assert_eq!(InvocationResponse::from_msgpack(&expected).unwrap(), resp);
}

#[test]
fn golden_invocation_response_failure() {
    let resp = InvocationResponse::failure("inv-1", "boom");
    let expected = cat(&[
        fixmap(4),
        s("msg"),
        bin(b""),
        s("invocation_id"),
        s("inv-1"),
        s("error"),
        s("boom"),
        s("content_length"),
        vec![0x00],
    ]);
    assert_eq!(resp.to_msgpack().unwrap(), expected);
    assert!(resp.is_error());
    let back = InvocationResponse::from_msgpack(&expected).unwrap();
    assert_eq!(back.into_result(), Err("boom".to_string()));
}

#[test]
fn golden_response_large_content_length_uses_uint16() {
    let mut resp = InvocationResponse::success("i", Vec::new());
    resp.content_length = Some(300);
    let expected = cat(&[
        fixmap(3),
        s("msg"),
        bin(b""),
        s("invocation_id"),
        s("i"),
        s("content_length"),
        vec![0xcd, 0x01, 0x2c],
    ]);
    assert_eq!(resp.to_msgpack().unwrap(), expected);
    assert!(resp.is_chunked());
}

#[test]
fn golden_health_check_request() {
    let expected = [&[0x81, 0xab][..], b"placeholder", &[0xc3]].concat();
    assert_eq!(
        encoding::to_msgpack(&HealthCheckRequest::default()).unwrap(),
        expected
    );
    assert_eq!(
        HealthCheckRequest::decode(&expected).unwrap(),
        HealthCheckRequest { placeholder: true }
    );
    // The Rust host sends an empty body, a wasmbus-rpc client an empty map.
    assert_eq!(
        HealthCheckRequest::decode(&[]).unwrap(),
        HealthCheckRequest::default()
    );
    assert_eq!(
        HealthCheckRequest::decode(&[0x80]).unwrap(),
        HealthCheckRequest::default()
    );
}

#[test]
fn golden_health_check_response() {
    let ok = HealthCheckResponse::healthy();
    assert_eq!(
        encoding::to_msgpack(&ok).unwrap(),
        cat(&[fixmap(1), s("healthy"), vec![0xc3]])
    );
    let bad = HealthCheckResponse::unhealthy("db down");
    let expected = cat(&[
        fixmap(2),
        s("healthy"),
        vec![0xc2],
        s("message"),
        s("db down"),
    ]);
    assert_eq!(encoding::to_msgpack(&bad).unwrap(), expected);
    assert_eq!(
        encoding::from_msgpack::<HealthCheckResponse>(&expected).unwrap(),
        bad
    );
}

#[test]
fn golden_link_definition() {
    let ld = LinkDefinition::new(
        "Mbob",
        "Vprov",
        "default",
        "wasmcloud:testy",
        HashMap::from([("port".to_string(), "8080".to_string())]),
    );
    let id = "B40411AD09B70A2C83D59923584F66BA2C5A3C274DC4F19416DA49CCD6531F9C";
    assert_eq!(ld.id, id);
    let expected = cat(&[
        fixmap(6),
        s("actor_id"),
        s("Mbob"),
        s("provider_id"),
        s("Vprov"),
        s("link_name"),
        s("default"),
        s("contract_id"),
        s("wasmcloud:testy"),
        s("values"),
        fixmap(1),
        s("port"),
        s("8080"),
        s("id"),
        [&[0xd9, 0x40][..], id.as_bytes()].concat(),
    ]);
    assert_eq!(encoding::to_msgpack(&ld).unwrap(), expected);
    assert_eq!(
        encoding::from_msgpack::<LinkDefinition>(&expected).unwrap(),
        ld
    );
}

// ---- lenient decoding --------------------------------------------------------------

#[test]
fn invocation_msg_may_be_a_msgpack_str() {
    let bytes = sample_invocation_bytes(s("hello"));
    let inv = Invocation::from_msgpack(&bytes).unwrap();
    assert_eq!(inv.msg, b"hello");
    assert_eq!(inv, sample_invocation());
}

#[test]
fn invocation_msg_may_be_an_array_of_ints() {
    let bytes = sample_invocation_bytes(vec![0x95, b'h', b'e', b'l', b'l', b'o']);
    assert_eq!(Invocation::from_msgpack(&bytes).unwrap().msg, b"hello");
}

#[test]
fn response_msg_str_nil_and_empty_array_are_accepted() {
    // OTP: msg packed as str, extra `instance_id` key.
    let bytes = cat(&[
        fixmap(3),
        s("msg"),
        s("hi"),
        s("invocation_id"),
        s("x"),
        s("instance_id"),
        s("abc"),
    ]);
    let r = InvocationResponse::from_msgpack(&bytes).unwrap();
    assert_eq!(r.msg, b"hi");
    assert!(!r.is_error());
    assert_eq!(r.content_length, None);
    // "actor not running" reply: msg: [] and an error.
    let bytes = cat(&[
        fixmap(3),
        s("msg"),
        vec![0x90],
        s("invocation_id"),
        s("x"),
        s("error"),
        s("actor not running"),
    ]);
    let r = InvocationResponse::from_msgpack(&bytes).unwrap();
    assert!(r.msg.is_empty());
    assert_eq!(r.error.as_deref(), Some("actor not running"));
    // msg: nil, error: nil.
    let bytes = cat(&[
        fixmap(3),
        s("msg"),
        vec![0xc0],
        s("invocation_id"),
        s("x"),
        s("error"),
        vec![0xc0],
    ]);
    let r = InvocationResponse::from_msgpack(&bytes).unwrap();
    assert!(r.msg.is_empty() && !r.is_error());
}

#[test]
fn response_error_empty_string_is_success() {
    let bytes = cat(&[
        fixmap(3),
        s("msg"),
        bin(b"x"),
        s("invocation_id"),
        s("i"),
        s("error"),
        s(""),
    ]);
    let r = InvocationResponse::from_msgpack(&bytes).unwrap();
    assert!(!r.is_error());
    assert_eq!(r.into_result(), Ok(b"x".to_vec()));
}

#[test]
fn failure_with_empty_message_still_fails() {
    let r = InvocationResponse::failure("i", "");
    assert!(r.is_error());
    let back = InvocationResponse::from_msgpack(&r.to_msgpack().unwrap()).unwrap();
    assert!(back.is_error());
}

#[test]
fn entity_missing_keys_default_to_empty() {
    let bytes = cat(&[fixmap(1), s("public_key"), s("Mabc")]);
    let e: WasmCloudEntity = encoding::from_msgpack(&bytes).unwrap();
    assert_eq!(e, WasmCloudEntity::actor("Mabc"));
}

#[test]
fn invocation_as_positional_array_decodes() {
    let inv = sample_invocation();
    // rmp-serde's default (compact) encoding writes structs as arrays.
    let compact = rmp_serde::to_vec(&inv).unwrap();
    assert_eq!(compact[0], 0x98, "8-element fixarray");
    assert_eq!(Invocation::from_msgpack(&compact).unwrap(), inv);
}

#[test]
fn hand_made_positional_structs_decode() {
    // HealthCheckResponse [true, "fine"]
    let bytes = cat(&[vec![0x92, 0xc3], s("fine")]);
    let r: HealthCheckResponse = encoding::from_msgpack(&bytes).unwrap();
    assert_eq!(
        r,
        HealthCheckResponse {
            healthy: true,
            message: Some("fine".into())
        }
    );
    // WasmCloudEntity ["Vp", "default", "wasmcloud:x"]
    let bytes = cat(&[vec![0x93], s("Vp"), s("default"), s("wasmcloud:x")]);
    let e: WasmCloudEntity = encoding::from_msgpack(&bytes).unwrap();
    assert_eq!(e, WasmCloudEntity::provider("Vp", "wasmcloud:x", "default"));
    // wasmbus-rpc LinkDefinition [actor, provider, link, contract, values] (no id)
    let bytes = cat(&[
        vec![0x95],
        s("Mbob"),
        s("Vp"),
        s("default"),
        s("wasmcloud:testy"),
        fixmap(0),
    ]);
    let ld: LinkDefinition = encoding::from_msgpack(&bytes).unwrap();
    assert_eq!(
        ld.id,
        "B40411AD09B70A2C83D59923584F66BA2C5A3C274DC4F19416DA49CCD6531F9C"
    );
    assert!(ld.values.is_empty());
}

#[test]
fn link_definition_without_id_or_values_gets_them() {
    let json = r#"{"actor_id":"Mbob","provider_id":"Vp","link_name":"default","contract_id":"wasmcloud:testy"}"#;
    let ld: LinkDefinition = encoding::from_json_str(json).unwrap();
    assert_eq!(ld.id, link::link_id("Mbob", "wasmcloud:testy", "default"));
    assert!(ld.values.is_empty());
    // A given id is kept as is.
    let json = r#"{"id":"X","actor_id":"Mbob","provider_id":"Vp","link_name":"default","contract_id":"c","values":{}}"#;
    let ld: LinkDefinition = encoding::from_json_str(json).unwrap();
    assert_eq!(ld.id, "X");
    assert_eq!(ld.computed_id(), link::link_id("Mbob", "c", "default"));
}

#[test]
fn link_definition_golden_json() {
    let ld = LinkDefinition::new("Mbob", "Vp", "default", "wasmcloud:testy", HashMap::new());
    assert_eq!(
        encoding::to_json_string(&ld).unwrap(),
        r#"{"actor_id":"Mbob","provider_id":"Vp","link_name":"default","contract_id":"wasmcloud:testy","values":{},"id":"B40411AD09B70A2C83D59923584F66BA2C5A3C274DC4F19416DA49CCD6531F9C"}"#
    );
}

// ---- malformed input -----------------------------------------------------------------

fn assert_decode_error<T: DeserializeOwned + std::fmt::Debug>(bytes: &[u8], type_name: &str) {
    match encoding::from_msgpack::<T>(bytes) {
        Err(EncodingError::Decode {
            type_name: t,
            format,
            len,
            reason,
        }) => {
            assert_eq!(t, type_name);
            assert_eq!(format, Format::MessagePack);
            assert_eq!(len, bytes.len());
            assert!(!reason.is_empty());
        }
        other => panic!("expected a decode error for {bytes:02x?}, got {other:?}"),
    }
}

#[test]
fn malformed_msgpack_gives_clear_errors() {
    let good = sample_invocation().to_msgpack().unwrap();
    // Every truncation of a valid invocation fails cleanly.
    for cut in 0..good.len() {
        assert_decode_error::<Invocation>(&good[..cut], "Invocation");
    }
    // Trailing bytes after a complete value.
    let mut trailing = good.clone();
    trailing.push(0x00);
    assert_decode_error::<Invocation>(&trailing, "Invocation");
    // Wrong top-level type, reserved marker, absurd lengths.
    assert_decode_error::<Invocation>(&[0x2a], "Invocation");
    assert_decode_error::<Invocation>(&[0xc1], "Invocation");
    assert_decode_error::<Invocation>(&[0xdf, 0xff, 0xff, 0xff, 0xff], "Invocation");
    assert_decode_error::<InvocationResponse>(
        &cat(&[fixmap(1), s("msg"), vec![0xc6, 0xff, 0xff, 0xff, 0xff]]),
        "InvocationResponse",
    );
    // Missing required field.
    assert_decode_error::<Invocation>(&cat(&[fixmap(1), s("operation"), s("x")]), "Invocation");
    // Deep nesting does not overflow the stack.
    let deep = vec![0x91; 200_000];
    assert_decode_error::<Invocation>(&deep, "Invocation");
    assert_decode_error::<Vec<LinkDefinition>>(&deep, "Vec<LinkDefinition>");
    // Garbage of every single byte value.
    for b in 0..=255u8 {
        let _ = encoding::from_msgpack::<Invocation>(&[b, b, b, b]);
    }
}

#[test]
fn decode_error_message_names_the_type() {
    let err = Invocation::from_msgpack(&[0x2a]).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.starts_with("failed to decode Invocation from MessagePack (1 bytes): "),
        "{msg}"
    );
    let err = encoding::from_msgpack::<InvocationResponse>(&[]).unwrap_err();
    assert!(err.to_string().contains("empty input"), "{err}");
    let err = encoding::from_json::<HostData>(b"{").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("failed to decode HostData from JSON"),
        "{err}"
    );
}

// ---- hashes, URLs ----------------------------------------------------------------------

#[test]
fn link_id_test_vector() {
    assert_eq!(
        link::link_id("Mbob", "wasmcloud:testy", "default"),
        "B40411AD09B70A2C83D59923584F66BA2C5A3C274DC4F19416DA49CCD6531F9C"
    );
}

#[test]
fn kv_keys() {
    assert_eq!(link::linkdef_key("ABC"), "LINKDEF_ABC");
    assert_eq!(link::claims_key("Mabc"), "CLAIMS_Mabc");
    assert_eq!(
        link::refmap_key("wasmcloud.azurecr.io/echo:0.3"),
        "REFMAP_d2FzbWNsb3VkLmF6dXJlY3IuaW8vZWNobzowLjM"
    );
    assert_eq!(
        KvKey::parse("LINKDEF_ABC"),
        Some(KvKey::LinkDefinition("ABC".into()))
    );
    assert_eq!(KvKey::parse("CLAIMS_Mx"), Some(KvKey::Claims("Mx".into())));
    assert_eq!(KvKey::parse("REFMAP_eA"), Some(KvKey::RefMap("eA".into())));
    assert_eq!(KvKey::parse("OTHER"), None);
    for k in ["LINKDEF_A", "CLAIMS_B", "REFMAP_C"] {
        assert_eq!(KvKey::parse(k).unwrap().to_key(), k);
    }
    let ld = LinkDefinition::new("Mbob", "Vp", "default", "wasmcloud:testy", HashMap::new());
    assert_eq!(
        ld.kv_key(),
        "LINKDEF_B40411AD09B70A2C83D59923584F66BA2C5A3C274DC4F19416DA49CCD6531F9C"
    );
    both_round_trips(&RefMapEntry {
        oci_url: "r".into(),
        public_key: "M".into(),
    });
}

#[test]
fn entity_urls() {
    let actor = WasmCloudEntity::actor("MB2ZQB6ROOMAYBO4ZCTFYWN7YIVBWA3MTKZYAQKJMTIHE2ELLRW2E3ZW");
    assert_eq!(
        actor.url(),
        "wasmbus://MB2ZQB6ROOMAYBO4ZCTFYWN7YIVBWA3MTKZYAQKJMTIHE2ELLRW2E3ZW"
    );
    assert!(actor.is_actor());
    let prov = WasmCloudEntity::provider("Vxxx", "wasmcloud:messaging", "default");
    assert_eq!(prov.url(), "wasmbus://wasmcloud/messaging/default/Vxxx");
    assert!(prov.is_provider());
    let odd = WasmCloudEntity::provider("Vxxx", "Acme:Big Thing", "My Link");
    assert_eq!(odd.url(), "wasmbus://acme/big_thing/my_link/Vxxx");
    let inv = Invocation::new(actor.clone(), prov.clone(), "OP_TESTING", vec![], "Nhost");
    assert_eq!(
        inv.target_url(),
        "wasmbus://wasmcloud/messaging/default/Vxxx/OP_TESTING"
    );
    assert_eq!(inv.origin_url(), actor.url());
}

#[test]
fn invocation_hash_includes_operation() {
    // SHA-256("ab" "cd" "op" "xy") computed independently: sha256("abcdopxy").
    let h = invocation_hash("ab", "cd", "op", b"xy");
    assert_eq!(h.len(), 64);
    assert!(
        h.chars()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
    );
    assert_eq!(h, invocation_hash("abcdop", "", "", b"xy"));
    assert_ne!(h, invocation_hash("ab", "cd", "", b"xy"));
    // SHA-256 of the empty string, uppercased.
    assert_eq!(
        invocation_hash("", "", "", b""),
        "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"
    );
    let inv = sample_invocation();
    assert_eq!(
        inv.hash(),
        invocation_hash(
            &inv.origin_url(),
            &inv.target_url(),
            &inv.operation,
            &inv.msg
        )
    );
}

#[test]
fn invocation_new_fills_id_and_length() {
    let a = Invocation::new(
        WasmCloudEntity::actor("Ma"),
        WasmCloudEntity::actor("Mb"),
        "Op",
        b"1234".to_vec(),
        "Nh",
    );
    let b = Invocation::new(
        WasmCloudEntity::actor("Ma"),
        WasmCloudEntity::actor("Mb"),
        "Op",
        vec![],
        "Nh",
    );
    assert_ne!(a.id, b.id);
    assert!(uuid::Uuid::parse_str(&a.id).is_ok());
    assert_eq!(a.id.len(), 36);
    assert_eq!(a.content_length, Some(4));
    assert!(!a.is_chunked());
    let mut chunked = a.clone();
    chunked.msg.clear();
    assert!(chunked.is_chunked());
}

// ---- round trips ------------------------------------------------------------------------

#[test]
fn round_trips_rpc_types() {
    let mut inv = sample_invocation();
    both_round_trips(&inv);
    inv.trace_context = Some(HashMap::from([("traceparent".into(), "x".into())]));
    inv.content_length = None;
    inv.msg = vec![0, 255, 1, 254];
    both_round_trips(&inv);
    both_round_trips(&InvocationResponse::success("i", vec![1, 2, 3]));
    both_round_trips(&InvocationResponse::failure("i", "nope"));
    both_round_trips(&InvocationResponse::default());
    both_round_trips(&WasmCloudEntity::actor("M"));
    both_round_trips(&WasmCloudEntity::provider("V", "c:d", "l"));
    both_round_trips(&HealthCheckRequest::default());
    both_round_trips(&HealthCheckResponse::unhealthy("x"));
    both_round_trips(&HealthCheckResponse::healthy());
    both_round_trips(&ShutdownRequest {
        host_id: "Nh".into(),
    });
    both_round_trips(&LinkDefinition::new(
        "M",
        "V",
        "l",
        "c",
        HashMap::from([("a".into(), "b".into())]),
    ));
    both_round_trips(&sample_host_data());
}

// ---- host data ---------------------------------------------------------------------------

fn sample_host_data() -> HostData {
    HostData {
        host_id: "Nhost".into(),
        lattice_rpc_prefix: "default".into(),
        link_name: "default".into(),
        lattice_rpc_url: "127.0.0.1:4222".into(),
        provider_key: "Vprov".into(),
        invocation_seed: "SCseed".into(),
        instance_id: "iid".into(),
        link_definitions: vec![LinkDefinition::new(
            "Mbob",
            "Vprov",
            "default",
            "wasmcloud:testy",
            HashMap::new(),
        )],
        cluster_issuers: vec!["Cissuer".into()],
        default_rpc_timeout_ms: Some(2000),
        ..HostData::default()
    }
}

#[test]
fn host_data_required_keys_always_present_optional_omitted() {
    let hd = HostData {
        host_id: "N".into(),
        lattice_rpc_prefix: "default".into(),
        link_name: "default".into(),
        provider_key: "V".into(),
        ..HostData::default()
    };
    assert_eq!(
        encoding::to_json_string(&hd).unwrap(),
        r#"{"host_id":"N","lattice_rpc_prefix":"default","link_name":"default","lattice_rpc_user_jwt":"","lattice_rpc_user_seed":"","lattice_rpc_url":"","provider_key":"V","invocation_seed":"","env_values":{},"instance_id":"","link_definitions":[],"cluster_issuers":[],"structured_logging":false}"#
    );
}

#[test]
fn host_data_stdin_line_round_trip() {
    let hd = sample_host_data();
    let line = hd.to_stdin_line().unwrap();
    assert!(line.ends_with('\n'));
    assert_eq!(line.matches('\n').count(), 1);
    assert_eq!(HostData::from_stdin_line(&line).unwrap(), hd);
    assert_eq!(
        HostData::from_stdin_line(&format!("  {line}\r\n")).unwrap(),
        hd
    );
}

#[test]
fn host_data_from_otp_style_json() {
    use base64::Engine as _;
    let json = r#"{"host_id":"N1","lattice_rpc_prefix":"default","link_name":"default",
        "lattice_rpc_user_jwt":"","lattice_rpc_user_seed":"","lattice_rpc_url":"127.0.0.1:4222",
        "lattice_rpc_tls":0,"provider_key":"V1","invocation_seed":"SC1","env_values":{},
        "instance_id":"i","link_definitions":[{"actor_id":"Mbob","provider_id":"V1",
        "link_name":"default","contract_id":"wasmcloud:testy","values":{"a":"b"}}],
        "cluster_issuers":["C1"],"config_json":"{}","default_rpc_timeout_ms":2000,
        "structured_logging":false,"log_level":"info","js_domain":null,
        "otel_config":{"traces_exporter":"otlp"},"some_future_key":1}"#;
    let line = base64::engine::general_purpose::STANDARD.encode(json);
    let hd = HostData::from_stdin_line(&line).unwrap();
    assert_eq!(hd.lattice_rpc_tls, Some(false));
    assert_eq!(hd.link_definitions.len(), 1);
    assert_eq!(
        hd.link_definitions[0].id,
        "B40411AD09B70A2C83D59923584F66BA2C5A3C274DC4F19416DA49CCD6531F9C"
    );
    assert_eq!(hd.config_json.as_deref(), Some("{}"));
    assert_eq!(hd.log_level.as_deref(), Some("info"));
    assert_eq!(hd.js_domain, None);
    assert_eq!(
        hd.otel_config,
        Some(OtelConfig {
            traces_exporter: Some("otlp".into()),
            exporter_otlp_endpoint: None
        })
    );
    let tls_true = json.replace(r#""lattice_rpc_tls":0"#, r#""lattice_rpc_tls":true"#);
    let hd: HostData = encoding::from_json_str(&tls_true).unwrap();
    assert_eq!(hd.lattice_rpc_tls, Some(true));
}

#[test]
fn host_data_bad_lines_are_errors() {
    let err = HostData::from_stdin_line("not base64!!").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("failed to decode HostData from base64"),
        "{err}"
    );
    use base64::Engine as _;
    let line = base64::engine::general_purpose::STANDARD.encode(r#"{"host_id":"N"}"#);
    let err = HostData::from_stdin_line(&line).unwrap_err();
    assert!(err.to_string().contains("missing field"), "{err}");
}
