//! The capability payloads the petclinic actors use, exactly as the published waPC-era
//! interface crates put them on the wire (reference §B.4, §B.5): msgpack maps keyed by the
//! WIDL field names, `bytes` as msgpack bin.
//!
//! Written once here, by hand, because the generated interface crates
//! (`nimbus-interface-httpserver`, `-keyvalue`) were not available for wasm32 actors when
//! these actors were written. Swapping them in means replacing this module with
//! re-exports; the field names and types below are the contract.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Contract id of the HTTP server capability.
pub const HTTPSERVER: &str = "wasmcloud:httpserver";
/// The operation the HTTP server provider invokes on a linked actor (unary: the payload is
/// a [`Request`], the reply a [`Response`]).
pub const OP_HANDLE_REQUEST: &str = "HandleRequest";

/// `wasmcloud:httpserver` `Request`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// The method, upper case.
    #[serde(rename = "method")]
    pub method: String,
    /// The path, without the query string.
    #[serde(rename = "path")]
    pub path: String,
    /// The raw query string, without `?`.
    #[serde(rename = "queryString")]
    pub query_string: String,
    /// The headers (our provider lower-cases the names; look them up case-insensitively).
    #[serde(rename = "header")]
    pub header: BTreeMap<String, String>,
    /// The body.
    #[serde(rename = "body", with = "serde_bytes")]
    pub body: Vec<u8>,
}

impl Request {
    /// The value of header `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.header
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// `wasmcloud:httpserver` `Response`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    /// The status code.
    #[serde(rename = "statusCode")]
    pub status_code: u32,
    /// The reason phrase.
    #[serde(rename = "status")]
    pub status: String,
    /// The headers.
    #[serde(rename = "header")]
    pub header: BTreeMap<String, String>,
    /// The body.
    #[serde(rename = "body", with = "serde_bytes")]
    pub body: Vec<u8>,
}

impl Response {
    /// A response with `status_code`, its standard reason phrase, one `Content-Type` header
    /// and `body`.
    pub fn new(status_code: u16, content_type: &str, body: Vec<u8>) -> Self {
        let mut header = BTreeMap::new();
        header.insert("Content-Type".to_string(), content_type.to_string());
        Response {
            status_code: u32::from(status_code),
            status: reason_phrase(status_code).to_string(),
            header,
            body,
        }
    }

    /// Adds (or replaces) a header.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.header.insert(name.to_string(), value.to_string());
        self
    }
}

/// The reason phrase of the status codes the petclinic actors produce.
pub fn reason_phrase(status_code: u16) -> &'static str {
    match status_code {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        415 => "Unsupported Media Type",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// Contract id of the key-value capability.
pub const KEYVALUE: &str = "wasmcloud:keyvalue";
/// `Get(key) -> GetResponse`.
pub const OP_GET: &str = "Get";
/// `Set(key, value, expires) -> SetResponse`.
pub const OP_SET: &str = "Set";
/// `Del(key) -> DelResponse`.
pub const OP_DEL: &str = "Del";
/// `Add(key, value) -> AddResponse`: atomic increment.
pub const OP_ADD: &str = "Add";
/// `SetAdd(key, value) -> SetOperationResponse`.
pub const OP_SET_ADD: &str = "SetAdd";
/// `SetRemove(key, value) -> SetOperationResponse`.
pub const OP_SET_REMOVE: &str = "SetRemove";
/// `SetQuery(key) -> SetQueryResponse`.
pub const OP_SET_QUERY: &str = "SetQuery";
/// `SetUnion(keys) -> SetQueryResponse`.
pub const OP_SET_UNION: &str = "SetUnion";
/// `KeyExists(key) -> GetResponse`.
pub const OP_KEY_EXISTS: &str = "KeyExists";

/// Arguments of `Get`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetArgs {
    /// The key.
    #[serde(rename = "key")]
    pub key: String,
}

/// Arguments of `Set`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetArgs {
    /// The key.
    #[serde(rename = "key")]
    pub key: String,
    /// The value.
    #[serde(rename = "value")]
    pub value: String,
    /// Seconds to live; 0 for never.
    #[serde(rename = "expires")]
    pub expires: i32,
}

/// Arguments of `Del`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DelArgs {
    /// The key.
    #[serde(rename = "key")]
    pub key: String,
}

/// Arguments of `Add`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddArgs {
    /// The counter's key.
    #[serde(rename = "key")]
    pub key: String,
    /// The amount to add.
    #[serde(rename = "value")]
    pub value: i32,
}

/// Arguments of `SetAdd`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetAddArgs {
    /// The set's key.
    #[serde(rename = "key")]
    pub key: String,
    /// The member.
    #[serde(rename = "value")]
    pub value: String,
}

/// Arguments of `SetRemove`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetRemoveArgs {
    /// The set's key.
    #[serde(rename = "key")]
    pub key: String,
    /// The member.
    #[serde(rename = "value")]
    pub value: String,
}

/// Arguments of `SetQuery`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetQueryArgs {
    /// The set's key.
    #[serde(rename = "key")]
    pub key: String,
}

/// Arguments of `SetUnion`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetUnionArgs {
    /// The sets' keys.
    #[serde(rename = "keys")]
    pub keys: Vec<String>,
}

/// Arguments of `KeyExists`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyExistsArgs {
    /// The key.
    #[serde(rename = "key")]
    pub key: String,
}

/// Result of `Get` and `KeyExists`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetResponse {
    /// The value (`""` when absent).
    #[serde(rename = "value")]
    pub value: String,
    /// Whether the key exists.
    #[serde(rename = "exists")]
    pub exists: bool,
}

/// Result of `Set`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetResponse {
    /// The stored value.
    #[serde(rename = "value")]
    pub value: String,
}

/// Result of `Del`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DelResponse {
    /// The deleted key.
    #[serde(rename = "key")]
    pub key: String,
}

/// Result of `Add`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddResponse {
    /// The counter's new value.
    #[serde(rename = "value")]
    pub value: i32,
}

/// Result of `SetAdd` and `SetRemove` (snake_case on the wire, as published).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetOperationResponse {
    /// Members added or removed (0 or 1).
    #[serde(rename = "new_count")]
    pub new_count: i32,
}

/// Result of `SetQuery` and `SetUnion`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetQueryResponse {
    /// The members.
    #[serde(rename = "values")]
    pub values: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{decode, encode};

    /// The top-level map keys of a msgpack value, in order.
    fn keys(bytes: &[u8]) -> Vec<String> {
        let value: BTreeMap<String, serde::de::IgnoredAny> = decode("map", bytes).unwrap();
        value.into_keys().collect()
    }

    #[test]
    fn response_matches_the_measured_published_bytes() {
        // Reference §B.4: Response{200,"OK",{a:b},"hi"} is a 4-entry map in field order,
        // statusCode as uint8 (cc c8), body as bin8 (c4 02 ...).
        let mut header = BTreeMap::new();
        header.insert("a".to_string(), "b".to_string());
        let r = Response {
            status_code: 200,
            status: "OK".into(),
            header,
            body: b"hi".to_vec(),
        };
        let bytes = encode(&r).unwrap();
        let mut expected = vec![0x84, 0xaa];
        expected.extend_from_slice(b"statusCode");
        expected.extend_from_slice(&[0xcc, 0xc8, 0xa6]);
        expected.extend_from_slice(b"status");
        expected.extend_from_slice(&[0xa2, b'O', b'K', 0xa6]);
        expected.extend_from_slice(b"header");
        expected.extend_from_slice(&[0x81, 0xa1, b'a', 0xa1, b'b', 0xa4]);
        expected.extend_from_slice(b"body");
        expected.extend_from_slice(&[0xc4, 0x02, b'h', b'i']);
        assert_eq!(bytes, expected);
    }

    #[test]
    fn request_uses_widl_names_and_bin_body() {
        let req = Request {
            method: "GET".into(),
            path: "/".into(),
            query_string: "a=1".into(),
            header: BTreeMap::new(),
            body: vec![1, 2],
        };
        let bytes = encode(&req).unwrap();
        let mut k = keys(&bytes);
        k.sort();
        assert_eq!(k, ["body", "header", "method", "path", "queryString"]);
        assert!(bytes.windows(4).any(|w| w == [0xc4, 0x02, 1, 2]));
        assert_eq!(decode::<Request>("Request", &bytes).unwrap(), req);
    }

    #[test]
    fn keyvalue_shapes_use_published_field_names() {
        let set = SetArgs {
            key: "k".into(),
            value: "v".into(),
            expires: 0,
        };
        let mut k = keys(&encode(&set).unwrap());
        k.sort();
        assert_eq!(k, ["expires", "key", "value"]);
        assert_eq!(
            keys(&encode(&SetOperationResponse { new_count: 1 }).unwrap()),
            ["new_count"]
        );
        assert_eq!(
            keys(&encode(&SetUnionArgs { keys: vec![] }).unwrap()),
            ["keys"]
        );
        let mut k = keys(&encode(&GetResponse::default()).unwrap());
        k.sort();
        assert_eq!(k, ["exists", "value"]);
    }

    #[test]
    fn header_lookup_ignores_case() {
        let mut req = Request::default();
        req.header
            .insert("content-type".into(), "application/json".into());
        assert_eq!(req.header("Content-Type"), Some("application/json"));
        assert_eq!(req.header("accept"), None);
    }

    #[test]
    fn response_builder_sets_reason_and_headers() {
        let r = Response::new(404, "text/plain", b"x".to_vec()).with_header("Allow", "GET");
        assert_eq!(r.status_code, 404);
        assert_eq!(r.status, "Not Found");
        assert_eq!(r.header["Content-Type"], "text/plain");
        assert_eq!(r.header["Allow"], "GET");
    }
}
