//! The OpenAPI 3 description of the REST API, served by the gateway at
//! `/api/openapi.json`. It is a hand-written file; the tests keep it in step with the
//! route table ([`crate::route::ROUTES`]) and internally consistent.

/// The document, as served.
pub const DOCUMENT: &str = include_str!("openapi.json");

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;

    use super::*;
    use crate::route::ROUTES;

    fn doc() -> Value {
        serde_json::from_str(DOCUMENT).unwrap()
    }

    const METHODS: [&str; 8] = [
        "get", "put", "post", "delete", "options", "head", "patch", "trace",
    ];

    /// Every (METHOD, path, operationId) in the document.
    fn operations(doc: &Value) -> BTreeSet<(String, String, String)> {
        let mut ops = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                if METHODS.contains(&method.as_str()) {
                    let id = op["operationId"].as_str().unwrap().to_string();
                    ops.insert((method.to_uppercase(), path.clone(), id));
                }
            }
        }
        ops
    }

    #[test]
    fn is_openapi_3_json() {
        let doc = doc();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
        assert!(doc["info"]["title"].is_string());
        assert!(doc["info"]["version"].is_string());
    }

    #[test]
    fn lists_exactly_the_routes() {
        let expected: BTreeSet<_> = ROUTES
            .iter()
            .map(|r| {
                (
                    r.method.to_string(),
                    r.path.to_string(),
                    r.operation_id.to_string(),
                )
            })
            .collect();
        assert_eq!(operations(&doc()), expected);
    }

    #[test]
    fn every_reference_resolves() {
        fn walk(v: &Value, root: &Value, seen: &mut usize) {
            match v {
                Value::Object(map) => {
                    if let Some(Value::String(r)) = map.get("$ref") {
                        let pointer = r.strip_prefix('#').unwrap();
                        assert!(root.pointer(pointer).is_some(), "dangling {r}");
                        *seen += 1;
                    }
                    map.values().for_each(|v| walk(v, root, seen));
                }
                Value::Array(items) => items.iter().for_each(|v| walk(v, root, seen)),
                _ => {}
            }
        }
        let doc = doc();
        let mut seen = 0;
        walk(&doc, &doc, &mut seen);
        assert!(seen > 20, "only {seen} references");
    }

    #[test]
    fn templated_paths_declare_their_parameters_and_every_operation_answers() {
        let doc = doc();
        for (path, item) in doc["paths"].as_object().unwrap() {
            let declared: BTreeSet<String> = item
                .get("parameters")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|p| {
                    let r = p["$ref"].as_str().unwrap().strip_prefix('#').unwrap();
                    doc.pointer(r).unwrap()["name"]
                        .as_str()
                        .unwrap()
                        .to_string()
                })
                .collect();
            let used: BTreeSet<String> = path
                .split('/')
                .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
                .map(String::from)
                .collect();
            assert_eq!(declared, used, "{path}");
            for (method, op) in item.as_object().unwrap() {
                if METHODS.contains(&method.as_str()) {
                    let responses = op["responses"].as_object().unwrap();
                    assert!(
                        responses.keys().any(|k| k.starts_with('2')),
                        "{method} {path} has no success response"
                    );
                    let writes = method == "post" || method == "put";
                    assert_eq!(op.get("requestBody").is_some(), writes, "{method} {path}");
                }
            }
        }
    }
    #[test]
    fn every_400_is_a_validation_error_listing_every_invalid_field() {
        let doc = doc();
        let resolve = |v: &Value| -> Value {
            match v.get("$ref").and_then(Value::as_str) {
                Some(r) => doc.pointer(r.strip_prefix('#').unwrap()).unwrap().clone(),
                None => v.clone(),
            }
        };
        let mut checked = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            let path_params = item.get("parameters").is_some();
            for (method, op) in item.as_object().unwrap() {
                if !METHODS.contains(&method.as_str()) {
                    continue;
                }
                // Whatever takes input can answer 400, and says so with the shared response.
                let takes_input = path_params
                    || op.get("parameters").is_some()
                    || op.get("requestBody").is_some();
                let bad = op["responses"].get("400");
                assert_eq!(bad.is_some(), takes_input, "{method} {path}");
                if let Some(bad) = bad {
                    assert_eq!(
                        bad["$ref"], "#/components/responses/BadRequest",
                        "{method} {path}"
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked >= 9, "only {checked} operations answer 400");

        let response = resolve(&doc["components"]["responses"]["BadRequest"]);
        let schema = resolve(&response["content"]["application/json"]["schema"]);
        let parts = schema["allOf"].as_array().unwrap();
        assert_eq!(parts[0]["$ref"], "#/components/schemas/Error");
        let list = &parts[1];
        assert_eq!(list["required"], serde_json::json!(["errors"]));
        assert_eq!(list["properties"]["errors"]["type"], "array");
        let entry = resolve(&list["properties"]["errors"]["items"]);
        let mut keys: Vec<&String> = entry["properties"].as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(keys, ["error", "field"]);
        assert_eq!(entry["required"], serde_json::json!(["error"]));

        // The example is what the gateway answers: its first entry is the top-level pair.
        let example = &schema["example"];
        let errors = example["errors"].as_array().unwrap();
        assert!(errors.len() > 1);
        assert_eq!(errors[0]["error"], example["error"]);
        assert_eq!(errors[0]["field"], example["field"]);
    }
}
