//! The OTLP/HTTP JSON encoding of a batch of spans: an `ExportTraceServiceRequest` in
//! the protobuf JSON mapping as OTLP specifies it (trace and span ids as lower-case hex,
//! 64-bit integers and times as decimal strings, enums as numbers, camelCase keys).

use serde_json::{Value, json};

use crate::context::hex;
use crate::span::{AttrValue, SpanData};

/// The instrumentation scope spans are reported under.
const SCOPE: &str = "nimbus";

fn any_value(v: &AttrValue) -> Value {
    match v {
        AttrValue::Str(s) => json!({ "stringValue": s }),
        AttrValue::Int(i) => json!({ "intValue": i.to_string() }),
        AttrValue::Bool(b) => json!({ "boolValue": b }),
    }
}

fn attributes<'a>(attrs: impl Iterator<Item = (&'a str, &'a AttrValue)>) -> Value {
    Value::Array(
        attrs
            .map(|(k, v)| json!({ "key": k, "value": any_value(v) }))
            .collect(),
    )
}

fn span(s: &SpanData) -> Value {
    let mut v = json!({
        "traceId": hex(&s.context.trace_id),
        "spanId": hex(&s.context.span_id),
        "flags": u32::from(s.context.flags),
        "name": s.name,
        "kind": s.kind as u8,
        "startTimeUnixNano": s.start_unix_nanos.to_string(),
        "endTimeUnixNano": s.end_unix_nanos.to_string(),
        "attributes": attributes(s.attributes.iter().map(|(k, v)| (*k, v))),
        "status": match &s.error {
            // STATUS_CODE_ERROR
            Some(message) => json!({ "code": 2, "message": message }),
            None => json!({}),
        },
    });
    if let (Some(parent), Value::Object(map)) = (s.parent_span_id, &mut v) {
        map.insert("parentSpanId".into(), Value::String(hex(&parent)));
    }
    v
}

/// The JSON body of one export request: one resource, one scope, `spans`.
pub fn encode(resource: &[(String, AttrValue)], spans: &[SpanData]) -> Vec<u8> {
    let body = json!({
        "resourceSpans": [{
            "resource": {
                "attributes": attributes(resource.iter().map(|(k, v)| (k.as_str(), v))),
            },
            "scopeSpans": [{
                "scope": { "name": SCOPE, "version": env!("CARGO_PKG_VERSION") },
                "spans": spans.iter().map(span).collect::<Vec<_>>(),
            }],
        }],
    });
    // A `Value` always serializes.
    serde_json::to_vec(&body).unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::context::SpanContext;
    use crate::span::SpanKind;

    fn sample(parent: Option<[u8; 8]>, error: Option<&str>) -> SpanData {
        SpanData {
            context: SpanContext {
                trace_id: [0xab; 16],
                span_id: [1, 2, 3, 4, 5, 6, 7, 8],
                flags: 1,
            },
            parent_span_id: parent,
            name: "HTTP GET".into(),
            kind: SpanKind::Server,
            start_unix_nanos: 1_700_000_000_123_456_789,
            end_unix_nanos: 1_700_000_000_223_456_789,
            attributes: vec![
                ("http.request.method", AttrValue::from("GET")),
                ("http.response.status_code", AttrValue::Int(200)),
                ("error", AttrValue::Bool(false)),
            ],
            error: error.map(str::to_string),
        }
    }

    #[test]
    fn spans_encode_in_the_protobuf_json_mapping() {
        let resource = vec![
            ("service.name".to_string(), AttrValue::from("nimbus-host")),
            ("process.pid".to_string(), AttrValue::Int(42)),
        ];
        let body = encode(
            &resource,
            &[sample(Some([9; 8]), None), sample(None, Some("boom"))],
        );
        let v: Value = serde_json::from_slice(&body).unwrap();
        let rs = &v["resourceSpans"][0];
        assert_eq!(
            rs["resource"]["attributes"][0],
            json!({"key": "service.name", "value": {"stringValue": "nimbus-host"}})
        );
        // int64 as a decimal string
        assert_eq!(
            rs["resource"]["attributes"][1]["value"],
            json!({"intValue": "42"})
        );
        let spans = rs["scopeSpans"][0]["spans"].as_array().unwrap();
        assert_eq!(spans.len(), 2);
        let s = &spans[0];
        assert_eq!(s["traceId"], "abababababababababababababababab");
        assert_eq!(s["spanId"], "0102030405060708");
        assert_eq!(s["parentSpanId"], "0909090909090909");
        assert_eq!(s["kind"], 2);
        assert_eq!(s["startTimeUnixNano"], "1700000000123456789");
        assert_eq!(s["endTimeUnixNano"], "1700000000223456789");
        assert_eq!(s["status"], json!({}));
        assert_eq!(
            s["attributes"][1],
            json!({"key": "http.response.status_code", "value": {"intValue": "200"}})
        );
        assert_eq!(s["attributes"][2]["value"], json!({"boolValue": false}));
        // A root has no parentSpanId; a failure has status ERROR with its message.
        assert!(spans[1].get("parentSpanId").is_none());
        assert_eq!(spans[1]["status"], json!({"code": 2, "message": "boom"}));
    }
}
