//! The published `wasmcloud:httpserver` and `wasmcloud:keyvalue` interfaces parse and check
//! cleanly and yield the expected tree.
#![allow(clippy::unwrap_used, clippy::type_complexity)] // test tables and helpers

use nimbus_widl::*;

fn load(name: &str) -> Program {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let program = parse_and_check_file(&path).unwrap();
    assert!(
        program.diagnostics.is_empty(),
        "unexpected diagnostics:\n{}",
        program.render()
    );
    program
}

/// Field names and types as `name: type` with the type rendered back to WIDL.
fn fields(t: &TypeDef) -> Vec<String> {
    t.fields
        .iter()
        .map(|f| format!("{}: {}", f.name.value, show(&f.ty)))
        .collect()
}

fn show(t: &TypeRef) -> String {
    let base = match &t.kind {
        TypeKind::Named { name, .. } => name.value.clone(),
        TypeKind::List(inner) => format!("[{}]", show(inner)),
        TypeKind::Map { key, value } => format!("{{{}: {}}}", show(key), show(value)),
    };
    if t.optional { format!("{base}?") } else { base }
}

#[test]
fn httpserver_parses_and_checks_clean() {
    let program = load("httpserver.widl");
    let doc = program.root.unwrap();
    assert_eq!(doc.namespace().unwrap().name.value, "wasmcloud:httpserver");
    let actor = doc.role("Actor").unwrap();
    assert_eq!(actor.operations.len(), 1);
    let op = &actor.operations[0];
    assert_eq!(op.name.value, "HandleRequest");
    assert!(op.is_unary());
    assert_eq!(op.parameters.len(), 1);
    assert_eq!(op.parameters[0].name.value, "request");
    assert_eq!(
        op.parameters[0].ty.resolved(),
        Some(&Resolved::Defined(DefRef {
            file: doc.file.clone(),
            name: "Request".into(),
            kind: DefKind::Type
        }))
    );
    assert_eq!(show(op.returns.as_ref().unwrap()), "Response");
    assert!(!op.returns_void());
    assert_eq!(
        op.description.as_ref().unwrap().value,
        "Handle an incoming HTTP request and produce a response"
    );

    let request = doc.type_def("Request").unwrap();
    assert_eq!(
        fields(request),
        [
            "method: string",
            "path: string",
            "queryString: string",
            "header: {string: string}",
            "body: bytes"
        ]
    );
    assert_eq!(
        request.fields[4].ty.resolved(),
        Some(&Resolved::Builtin(Builtin::Bytes))
    );
    let response = doc.type_def("Response").unwrap();
    assert_eq!(
        fields(response),
        [
            "statusCode: u32",
            "status: string",
            "header: {string: string}",
            "body: bytes"
        ]
    );
    assert_eq!(
        response.fields[0].ty.resolved(),
        Some(&Resolved::Builtin(Builtin::U32))
    );
    assert!(response.description.is_some());
}

#[test]
fn keyvalue_parses_and_checks_clean() {
    let program = load("keyvalue.widl");
    let doc = program.root.unwrap();
    assert_eq!(doc.namespace().unwrap().name.value, "wasmcloud:keyvalue");
    let store = doc.role("Store").unwrap();
    let expected: &[(&str, &[(&str, &str)], &str)] = &[
        ("Get", &[("key", "string")], "GetResponse"),
        ("Add", &[("key", "string"), ("value", "i32")], "AddResponse"),
        (
            "Set",
            &[("key", "string"), ("value", "string"), ("expires", "i32")],
            "SetResponse",
        ),
        ("Del", &[("key", "string")], "DelResponse"),
        ("Clear", &[("key", "string")], "DelResponse"),
        (
            "Range",
            &[("key", "string"), ("start", "i32"), ("stop", "i32")],
            "ListRangeResponse",
        ),
        (
            "Push",
            &[("key", "string"), ("value", "string")],
            "ListResponse",
        ),
        (
            "ListItemDelete",
            &[("key", "string"), ("value", "string")],
            "ListResponse",
        ),
        (
            "SetAdd",
            &[("key", "string"), ("value", "string")],
            "SetOperationResponse",
        ),
        (
            "SetRemove",
            &[("key", "string"), ("value", "string")],
            "SetOperationResponse",
        ),
        ("SetUnion", &[("keys", "[string]")], "SetQueryResponse"),
        (
            "SetIntersection",
            &[("keys", "[string]")],
            "SetQueryResponse",
        ),
        ("SetQuery", &[("key", "string")], "SetQueryResponse"),
        ("KeyExists", &[("key", "string")], "GetResponse"),
    ];
    assert_eq!(store.operations.len(), expected.len());
    for (op, (name, params, ret)) in store.operations.iter().zip(expected) {
        assert_eq!(op.name.value, *name);
        assert_eq!(op.kind, OperationKind::Function, "{name} is function form");
        let got: Vec<(String, String)> = op
            .parameters
            .iter()
            .map(|p| (p.name.value.clone(), show(&p.ty)))
            .collect();
        let want: Vec<(String, String)> = params
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(got, want, "parameters of {name}");
        assert_eq!(show(op.returns.as_ref().unwrap()), *ret);
        assert!(matches!(
            op.returns.as_ref().unwrap().resolved(),
            Some(Resolved::Defined(DefRef {
                kind: DefKind::Type,
                ..
            }))
        ));
    }
    let types: Vec<(String, Vec<String>)> = doc
        .types()
        .map(|t| (t.name.value.clone(), fields(t)))
        .collect();
    let want = [
        ("GetResponse", vec!["value: string", "exists: bool"]),
        ("AddResponse", vec!["value: i32"]),
        ("DelResponse", vec!["key: string"]),
        ("ListRangeResponse", vec!["values: [string]"]),
        ("ListResponse", vec!["newCount: i32"]),
        ("SetResponse", vec!["value: string"]),
        ("SetOperationResponse", vec!["new_count: i32"]),
        ("SetQueryResponse", vec!["values: [string]"]),
    ];
    assert_eq!(types.len(), want.len());
    for ((name, fs), (wname, wfs)) in types.iter().zip(want) {
        assert_eq!(name, wname);
        assert_eq!(fs, &wfs);
    }
}

#[test]
fn spans_point_at_the_source() {
    let program = load("keyvalue.widl");
    let doc = program.root.unwrap();
    let op = &doc.role("Store").unwrap().operations[2];
    assert_eq!(&doc.source[op.name.span.range()], "Set");
    assert_eq!(
        &doc.source[op.span.range()],
        "Set(key: string, value: string, expires: i32): SetResponse"
    );
    let file = program.files.get(&doc.file).unwrap();
    let loc = file.location(op.name.span.start);
    assert_eq!((loc.line, loc.column), (7, 3));
}
