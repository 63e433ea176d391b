//! Property tests of the RPC-plane decoders: whatever bytes arrive on an RPC subject (or
//! on a provider's stdin), decoding an Invocation, an InvocationResponse, a link
//! definition, a health check or the host data returns a value or a decode error naming
//! the type, and never panics.
//!
//! Inputs: random bytes; deeply nested containers; MessagePack maps (and positional
//! arrays) with the right keys holding right, wrong or missing values, written in every
//! encoding width; and valid encodings truncated, bit-flipped and spliced. Whatever
//! decodes must encode again and decode to the same value; valid values round-trip.

#![allow(clippy::unwrap_used)] // a panic is the failure report

mod fuzz_support;

use std::fmt::Debug;

use base64::Engine as _;
use fuzz_support::*;
use nimbus_core::encoding::{self, EncodingError, Format};
use nimbus_core::link::LinkDefinition;
use nimbus_core::wire::{
    HealthCheckRequest, HealthCheckResponse, HostData, Invocation, InvocationResponse, OtelConfig,
    WasmCloudEntity,
};
use proptest::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;

// ---- what every decode must satisfy ----------------------------------------------------

/// A decode failure is a `Decode` error that names the type and the input length.
fn assert_decode_error(e: &EncodingError, format: Format, len: usize) {
    match e {
        EncodingError::Decode {
            type_name,
            format: f,
            len: l,
            reason,
        } => {
            assert!(!type_name.is_empty() && !reason.is_empty(), "{e}");
            assert_eq!(*f, format, "{e}");
            assert_eq!(*l, len, "{e}");
        }
        other => panic!("expected a decode error, got {other:?}"),
    }
}

/// Decodes `bytes` as `T`; a value must re-encode and decode to itself.
fn msgpack_decodes_cleanly<T>(bytes: &[u8]) -> Option<T>
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    match encoding::from_msgpack::<T>(bytes) {
        Ok(value) => {
            let again = encoding::to_msgpack(&value).unwrap();
            let back: T = encoding::from_msgpack(&again).unwrap();
            assert_eq!(back, value, "re-encoding changed the value");
            Some(value)
        }
        Err(e) => {
            assert_decode_error(&e, Format::MessagePack, bytes.len());
            None
        }
    }
}

/// Every RPC-plane decoder on the same bytes.
fn all_rpc_decoders(bytes: &[u8]) {
    if let Some(inv) = msgpack_decodes_cleanly::<Invocation>(bytes) {
        // What a receiver does next with a decoded invocation must not panic either.
        let _ = (
            inv.hash(),
            inv.target_url(),
            inv.origin_url(),
            inv.is_chunked(),
        );
        let _ = (inv.origin.is_actor(), inv.target.is_provider());
        assert_eq!(Invocation::from_msgpack(bytes).unwrap(), inv);
    }
    if let Some(r) = msgpack_decodes_cleanly::<InvocationResponse>(bytes) {
        let _ = (r.is_chunked(), r.is_error());
        assert_ne!(
            r.error.as_deref(),
            Some(""),
            "an empty error decodes as success"
        );
        let _ = r.into_result();
    }
    msgpack_decodes_cleanly::<WasmCloudEntity>(bytes);
    if let Some(ld) = msgpack_decodes_cleanly::<LinkDefinition>(bytes) {
        assert!(!ld.id.is_empty(), "a missing id is computed");
    }
    msgpack_decodes_cleanly::<Vec<LinkDefinition>>(bytes);
    msgpack_decodes_cleanly::<HealthCheckResponse>(bytes);
    match HealthCheckRequest::decode(bytes) {
        Ok(_) => {}
        Err(e) => assert_decode_error(&e, Format::MessagePack, bytes.len()),
    }
}

// ---- generators ----------------------------------------------------------------------

/// Any valid response: `error` is absent or non-empty (an empty one reads as success).
fn response(g: &mut Gen) -> InvocationResponse {
    InvocationResponse {
        msg: g.bytes(96),
        invocation_id: g.text(),
        error: g.option(Gen::non_empty_text),
        content_length: g.option(Gen::number),
    }
}

fn link_definition(g: &mut Gen) -> LinkDefinition {
    let values = string_map(g);
    LinkDefinition::new(g.text(), g.text(), g.text(), g.text(), values)
}

fn response_mp(g: &mut Gen) -> Mp {
    let fields = vec![
        g.field("msg", Gen::mp_payload),
        g.field("invocation_id", Gen::mp_text),
        g.field("error", |g| if g.one_in(4) { Mp::Nil } else { g.mp_text() }),
        g.field("content_length", Gen::mp_uint),
    ];
    g.mp_struct(fields)
}

fn link_definition_mp(g: &mut Gen) -> Mp {
    let fields = vec![
        g.field("actor_id", Gen::mp_text),
        g.field("provider_id", Gen::mp_text),
        g.field("link_name", Gen::mp_text),
        g.field("contract_id", Gen::mp_text),
        g.field("values", Gen::mp_string_map),
        g.field("id", Gen::mp_text),
    ];
    g.mp_struct(fields)
}

fn health_mp(g: &mut Gen) -> Mp {
    let fields = if g.bool() {
        vec![
            g.field("healthy", Gen::mp_bool),
            g.field("message", Gen::mp_text),
        ]
    } else {
        vec![g.field("placeholder", Gen::mp_bool)]
    };
    g.mp_struct(fields)
}

/// Any of the RPC-shaped values, sometimes as elements of an array.
fn rpc_shaped_mp(g: &mut Gen) -> Mp {
    fn one(g: &mut Gen) -> Mp {
        match g.weighted(&[4, 2, 2, 1]) {
            0 => invocation_mp(g),
            1 => response_mp(g),
            2 => link_definition_mp(g),
            _ => health_mp(g),
        }
    }
    if g.one_in(7) {
        Mp::Array(g.vec(3, one), Width::Shortest)
    } else {
        one(g)
    }
}

/// A valid encoding of some RPC value, to mutate.
fn valid_rpc_encoding(g: &mut Gen) -> Vec<u8> {
    match g.weighted(&[4, 1, 3, 1, 1]) {
        0 => invocation(g).to_msgpack().unwrap(),
        // The compact (positional array) form other encoders write.
        1 => rmp_serde::to_vec(&invocation(g)).unwrap(),
        2 => response(g).to_msgpack().unwrap(),
        3 => encoding::to_msgpack(&link_definition(g)).unwrap(),
        _ => encoding::to_msgpack(&g.vec(3, link_definition)).unwrap(),
    }
}

/// Containers nested up to 20,000 deep, around an Invocation-shaped prefix or alone.
fn deep_nesting(g: &mut Gen) -> Vec<u8> {
    let open: &[u8] = g.pick(&[
        &[0x91u8][..],                   // fixarray 1
        &[0xdc, 0x00, 0x01],             // array16 1
        &[0x81, 0xa1, b'k'],             // fixmap {"k": ...}
        &[0x81, 0xa1, b'x'],             // an unknown key: skipped, not decoded
        &[0x81, 0xa3, b'm', b's', b'g'], // {"msg": ...}
        &[0xd4, 0x01, 0x00, 0x91],       // fixext then an array
    ]);
    let prefix: &[u8] = g.pick(&[
        &[][..],
        &[0x81, 0xa1, b'x'],
        &[
            0x81, 0xac, b't', b'r', b'a', b'c', b'e', b'C', b'o', b'n', b't', b'e', b'x', b't',
        ],
        &[0x82, 0xa2, b'i', b'd', 0xa0, 0xa1, b'z'],
        &[0x98, 0x80, 0x80],
    ]);
    let leaf: &[u8] = g.pick(&[&[][..], &[0xc0], &[0x01], &[0x90]]);
    let depth = match g.below(3) {
        0 => 100 + g.below(60),
        1 => g.below(2_000),
        _ => g.below(20_000),
    };
    let mut out = prefix.to_vec();
    for _ in 0..depth {
        out.extend_from_slice(open);
    }
    out.extend_from_slice(leaf);
    out
}

// ---- host data -------------------------------------------------------------------------

const HOST_DATA_KEYS: &[&str] = &[
    "host_id",
    "lattice_rpc_prefix",
    "link_name",
    "lattice_rpc_user_jwt",
    "lattice_rpc_user_seed",
    "lattice_rpc_url",
    "lattice_rpc_tls",
    "lattice_rpc_tls_ca_file",
    "provider_key",
    "invocation_seed",
    "env_values",
    "instance_id",
    "link_definitions",
    "cluster_issuers",
    "config_json",
    "default_rpc_timeout_ms",
    "structured_logging",
    "log_level",
    "js_domain",
    "otel_config",
    "traces_exporter",
    "exporter_otlp_endpoint",
    "actor_id",
    "provider_id",
    "contract_id",
    "values",
    "id",
];

fn host_data(g: &mut Gen) -> HostData {
    HostData {
        host_id: g.text(),
        lattice_rpc_prefix: g.text(),
        link_name: g.text(),
        lattice_rpc_user_jwt: g.text(),
        lattice_rpc_user_seed: g.text(),
        lattice_rpc_url: g.text(),
        lattice_rpc_tls: g.option(Gen::bool),
        lattice_rpc_tls_ca_file: g.option(Gen::text),
        provider_key: g.text(),
        invocation_seed: g.text(),
        env_values: string_map(g),
        instance_id: g.text(),
        link_definitions: g.vec(2, link_definition),
        cluster_issuers: g.vec(3, Gen::text),
        config_json: g.option(Gen::text),
        default_rpc_timeout_ms: g.option(Gen::number),
        structured_logging: g.bool(),
        log_level: g.option(Gen::text),
        js_domain: g.option(Gen::text),
        otel_config: g.option(|g| OtelConfig {
            traces_exporter: g.option(Gen::text),
            exporter_otlp_endpoint: g.option(Gen::text),
        }),
    }
}

/// A stdin line of some kind: random text, base64 of random bytes, of host-data-shaped
/// JSON or of a mutated valid encoding, or a mutated valid line.
fn host_data_line(g: &mut Gen) -> String {
    match g.weighted(&[1, 1, 3, 3, 2]) {
        0 => {
            let n = g.below(64);
            (0..n).map(|_| g.char()).collect()
        }
        1 => b64(&g.bytes(128)),
        2 => {
            let obj = g.json_object_with(HOST_DATA_KEYS, 2);
            b64(&serde_json::to_vec(&obj).unwrap())
        }
        3 => {
            let json = encoding::to_json(&host_data(g)).unwrap();
            b64(&g.mutate(&json, 4))
        }
        _ => {
            let line = host_data(g).to_stdin_line().unwrap();
            g.mutate_text(&line, 3)
        }
    }
}

fn host_data_line_decodes_cleanly(line: &str) {
    match HostData::from_stdin_line(line) {
        Ok(hd) => {
            let again = hd.to_stdin_line().unwrap();
            assert_eq!(HostData::from_stdin_line(&again).unwrap(), hd);
        }
        Err(e @ EncodingError::Decode { format, .. }) => {
            assert!(matches!(format, Format::Base64 | Format::Json), "{e}");
        }
        Err(e) => panic!("expected a decode error, got {e:?}"),
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

// ---- properties ------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(20_000))]

    #[test]
    fn random_bytes_never_panic_any_rpc_decoder(bytes in random_bytes(128)) {
        all_rpc_decoders(&bytes);
    }

    #[test]
    fn any_msgpack_value_never_panics(seed in any::<u64>()) {
        all_rpc_decoders(&Gen::new(seed).mp_value(5).encode());
    }
}

proptest! {
    // Structured inputs and round trips: each case builds and encodes a whole value.
    #![proptest_config(config(10_000))]

    #[test]
    fn rpc_shaped_msgpack_never_panics(seed in any::<u64>()) {
        all_rpc_decoders(&rpc_shaped_mp(&mut Gen::new(seed)).encode());
    }

    #[test]
    fn mutated_valid_encodings_never_panic(seed in any::<u64>()) {
        let mut g = Gen::new(seed);
        let valid = valid_rpc_encoding(&mut g);
        all_rpc_decoders(&g.mutate(&valid, 6));
    }

    #[test]
    fn host_data_lines_never_panic(seed in any::<u64>()) {
        host_data_line_decodes_cleanly(&host_data_line(&mut Gen::new(seed)));
    }

    #[test]
    fn invocations_round_trip(seed in any::<u64>()) {
        let inv = invocation(&mut Gen::new(seed));
        let bytes = inv.to_msgpack().unwrap();
        prop_assert_eq!(&Invocation::from_msgpack(&bytes).unwrap(), &inv);
        // The positional-array form of other encoders decodes to the same value, unless
        // a skipped `content_length` shifts `traceContext` into its place (positional
        // arrays cannot omit a field in the middle).
        if inv.content_length.is_some() || inv.trace_context.is_none() {
            let compact = rmp_serde::to_vec(&inv).unwrap();
            prop_assert_eq!(&Invocation::from_msgpack(&compact).unwrap(), &inv);
        }
    }

    #[test]
    fn responses_and_links_round_trip(seed in any::<u64>()) {
        let mut g = Gen::new(seed);
        let r = response(&mut g);
        prop_assert_eq!(&InvocationResponse::from_msgpack(&r.to_msgpack().unwrap()).unwrap(), &r);
        let links = g.vec(3, link_definition);
        let bytes = encoding::to_msgpack(&links).unwrap();
        prop_assert_eq!(&encoding::from_msgpack::<Vec<LinkDefinition>>(&bytes).unwrap(), &links);
    }

    #[test]
    fn every_truncation_of_a_valid_invocation_is_an_error(seed in any::<u64>()) {
        let mut g = Gen::new(seed);
        let bytes = invocation(&mut g).to_msgpack().unwrap();
        let cut = g.below(bytes.len());
        let err = Invocation::from_msgpack(&bytes[..cut]).unwrap_err();
        assert_decode_error(&err, Format::MessagePack, cut);
        // And a byte after a complete value is refused as trailing garbage.
        let mut longer = bytes.clone();
        longer.push(g.byte());
        prop_assert!(Invocation::from_msgpack(&longer).is_err());
    }
}

proptest! {
    // Host data has 19 fields and goes through JSON and base64.
    #![proptest_config(config(5_000))]

    #[test]
    fn host_data_round_trips(seed in any::<u64>()) {
        let hd = host_data(&mut Gen::new(seed));
        let line = hd.to_stdin_line().unwrap();
        prop_assert_eq!(HostData::from_stdin_line(&line).unwrap(), hd);
    }
}

proptest! {
    // Inputs of up to 20,000 nested containers cost more per case.
    #![proptest_config(config(2_000))]

    #[test]
    fn deep_nesting_never_overflows_the_stack(seed in any::<u64>()) {
        all_rpc_decoders(&deep_nesting(&mut Gen::new(seed)));
    }
}
