//! Payload encodings.
//!
//! - Capability payloads (`wasmcloud:httpserver`, `wasmcloud:keyvalue`) are msgpack with
//!   structs as maps keyed by field name (rmp-serde's named form), as the WIDL-generated
//!   code of the published interface crates does: [`encode`], [`decode`].
//! - The petclinic actors' own actor-to-actor payloads are JSON: [`encode_json`],
//!   [`decode_json`]. The actors already carry serde_json for the REST API and the stored
//!   documents, and msgpack decoding is monomorphised per type (each module was about 40 %
//!   larger when these payloads were msgpack); JSON is also readable in logs and with
//!   `wash call`.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Encodes `value` as msgpack with structs as maps keyed by field name.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, String> {
    rmp_serde::to_vec_named(value).map_err(|e| format!("cannot encode msgpack: {e}"))
}

/// Decodes msgpack; `what` names the payload in the error text.
pub fn decode<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, String> {
    rmp_serde::from_slice(bytes).map_err(|e| format!("cannot decode {what}: {e}"))
}

/// Encodes an actor-to-actor payload as JSON.
pub fn encode_json<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, String> {
    serde_json::to_vec(value).map_err(|e| format!("cannot encode JSON: {e}"))
}

/// Decodes an actor-to-actor JSON payload; `what` names it in the error text.
pub fn decode_json<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("cannot decode {what}: {e}"))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::wire::GetArgs;

    #[test]
    fn structs_are_maps_keyed_by_field_name() {
        let bytes = encode(&GetArgs { key: "k".into() }).unwrap();
        // fixmap(1) "key" "k"
        assert_eq!(bytes, [0x81, 0xa3, b'k', b'e', b'y', 0xa1, b'k']);
        let back: GetArgs = decode("GetArgs", &bytes).unwrap();
        assert_eq!(back.key, "k");
    }

    #[test]
    fn decode_errors_name_the_payload() {
        let err = decode::<GetArgs>("GetArgs", &[]).unwrap_err();
        assert!(err.starts_with("cannot decode GetArgs: "), "{err}");
        let err = decode::<BTreeMap<String, String>>("a map", &[0xc1]).unwrap_err();
        assert!(err.starts_with("cannot decode a map: "), "{err}");
        let err = decode_json::<GetArgs>("GetArgs", b"{").unwrap_err();
        assert!(err.starts_with("cannot decode GetArgs: "), "{err}");
    }

    #[test]
    fn actor_payloads_are_json() {
        let bytes = encode_json(&GetArgs { key: "k".into() }).unwrap();
        assert_eq!(bytes, br#"{"key":"k"}"#);
        let back: GetArgs = decode_json("GetArgs", &bytes).unwrap();
        assert_eq!(back.key, "k");
    }
}
