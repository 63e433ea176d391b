//! The capability payloads the petclinic actors use, exactly as the published waPC-era
//! interface crates put them on the wire (reference §B.4, §B.5): msgpack maps keyed by the
//! WIDL field names, `bytes` as msgpack bin.
//!
//! The types are the ones generated from `widl/interfaces/{httpserver,keyvalue}.widl` into
//! `nimbus-interface-httpserver` and `-keyvalue`, re-exported here; [`RequestExt`] and
//! [`ResponseExt`] add the few helpers the actors share.

/// The generated typed registration of `HandleRequest` (`Handlers::register_handle_request`),
/// through which the HTTP-facing actors (gateway, ui) take their requests.
pub use nimbus_interface_httpserver::Handlers;
pub use nimbus_interface_httpserver::{OP_HANDLE_REQUEST, Request, Response};
pub use nimbus_interface_keyvalue::{
    AddArgs, AddResponse, DelArgs, DelResponse, GetArgs, GetResponse, KeyExistsArgs, OP_ADD,
    OP_DEL, OP_GET, OP_KEY_EXISTS, OP_SET, OP_SET_ADD, OP_SET_QUERY, OP_SET_REMOVE, OP_SET_UNION,
    SetAddArgs, SetArgs, SetOperationResponse, SetQueryArgs, SetQueryResponse, SetRemoveArgs,
    SetResponse, SetUnionArgs,
};
/// The batched key-value operations (a nimbus extension of the published interface; see
/// [`crate::kv::Kv::get_many`]) and their helpers.
pub use nimbus_interface_keyvalue::{
    DelManyArgs, DelManyResponse, GetManyArgs, GetManyResponse, OP_DEL_MANY, OP_GET_MANY,
    OP_SET_MANY, SetManyArgs, SetManyItem, SetManyResponse, batch,
};

/// Contract id of the HTTP server capability.
pub const HTTPSERVER: &str = nimbus_interface_httpserver::CONTRACT_ID;
/// Contract id of the key-value capability.
pub const KEYVALUE: &str = nimbus_interface_keyvalue::CONTRACT_ID;

/// Header lookup on a [`Request`].
pub trait RequestExt {
    /// The value of header `name`, compared case-insensitively (our provider lower-cases
    /// names; other hosts may not).
    fn header(&self, name: &str) -> Option<&str>;
}

impl RequestExt for Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.header
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Building a [`Response`].
pub trait ResponseExt: Sized {
    /// A response with `status_code`, its standard reason phrase, one `Content-Type`
    /// header and `body`.
    fn new(status_code: u16, content_type: &str, body: Vec<u8>) -> Self;
    /// Adds (or replaces) a header.
    fn with_header(self, name: &str, value: &str) -> Self;
}

impl ResponseExt for Response {
    fn new(status_code: u16, content_type: &str, body: Vec<u8>) -> Self {
        let mut response = Response {
            status_code: u32::from(status_code),
            status: reason_phrase(status_code).to_string(),
            body,
            ..Response::default()
        };
        response
            .header
            .insert("Content-Type".to_string(), content_type.to_string());
        response
    }

    fn with_header(mut self, name: &str, value: &str) -> Self {
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

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

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
        let mut header = HashMap::new();
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
            header: HashMap::new(),
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
        // The batched operations: `{keys}` in, `{values: [GetResponse]}` out.
        assert_eq!(
            keys(&encode(&GetManyArgs { keys: vec![] }).unwrap()),
            ["keys"]
        );
        assert_eq!(
            keys(&encode(&GetManyResponse { values: vec![] }).unwrap()),
            ["values"]
        );
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
