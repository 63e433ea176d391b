//! Test support of nimbus-core's decoder property tests: the generators of [`generators`] and the
//! Invocation shapes that nimbus-rpc's tests use as well.

#![allow(dead_code)] // each test file uses a part of this module

mod generators;

use std::collections::HashMap;

pub use generators::*;
use nimbus_core::wire::{Invocation, WasmCloudEntity};

// ---- RPC shapes (shared with the nimbus-rpc tests) ----------------------------------

/// Any entity: three strings of any kind.
pub fn entity(g: &mut Gen) -> WasmCloudEntity {
    WasmCloudEntity {
        public_key: g.text(),
        link_name: g.text(),
        contract_id: g.text(),
    }
}

/// A small string-to-string map.
pub fn string_map(g: &mut Gen) -> HashMap<String, String> {
    g.vec(3, |g| (g.text(), g.text())).into_iter().collect()
}

/// Any valid invocation (what an encoder of this crate may write).
pub fn invocation(g: &mut Gen) -> Invocation {
    Invocation {
        origin: entity(g),
        target: entity(g),
        operation: g.text(),
        msg: g.bytes(96),
        id: g.text(),
        encoded_claims: g.text(),
        host_id: g.text(),
        content_length: g.option(Gen::number),
        trace_context: g.option(string_map),
    }
}

/// Entity-shaped MessagePack (or, sometimes, any value).
pub fn entity_mp(g: &mut Gen) -> Mp {
    if g.one_in(7) {
        return g.mp_value(3);
    }
    let fields = vec![
        g.field("public_key", Gen::mp_text),
        g.field("link_name", Gen::mp_text),
        g.field("contract_id", Gen::mp_text),
    ];
    g.mp_struct(fields)
}

/// Invocation-shaped MessagePack: the right keys, each with a right, wrong or no value.
pub fn invocation_mp(g: &mut Gen) -> Mp {
    let fields = vec![
        g.field("origin", entity_mp),
        g.field("target", entity_mp),
        g.field("operation", Gen::mp_text),
        g.field("msg", Gen::mp_payload),
        g.field("id", Gen::mp_text),
        g.field("encoded_claims", Gen::mp_text),
        g.field("host_id", Gen::mp_text),
        g.field("content_length", Gen::mp_uint),
        g.field("traceContext", Gen::mp_string_map),
    ];
    g.mp_struct(fields)
}
