//! One test per syntax element of the grammar (reference B.2).
#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

use nimbus_widl::*;

/// An enum value as shown: name, index and display string with its form.
type ShownValue = (String, i128, Option<(String, DisplayForm)>);

/// Parses and checks `src` in memory; asserts there are no diagnostics at all.
fn clean(src: &str) -> Document {
    let program = parse_and_check_source("t.widl", src, &MemoryLoader::new());
    assert!(
        program.diagnostics.is_empty(),
        "unexpected diagnostics:\n{}",
        program.render()
    );
    program.root.unwrap()
}

fn only<T: Clone>(mut it: impl Iterator<Item = T>) -> T {
    let first = it.next().expect("one item");
    assert!(it.next().is_none(), "exactly one item");
    first
}

fn named(t: &TypeRef) -> &str {
    match &t.kind {
        TypeKind::Named { name, .. } => &name.value,
        other => panic!("not a named type: {other:?}"),
    }
}

#[test]
fn namespace_as_string_or_name() {
    let d = clean("namespace \"wasmcloud:x.y\"");
    assert_eq!(d.namespace().unwrap().name.value, "wasmcloud:x.y");
    let d = clean("namespace core");
    assert_eq!(d.namespace().unwrap().name.value, "core");
}

#[test]
fn comments_commas_and_bom_are_whitespace() {
    let d = clean(
        "\u{FEFF}# leading comment\nnamespace \"a\" # trailing\n,,\ntype T { a: string, b: i32, # c\n }",
    );
    let t = only(d.types());
    assert_eq!(t.fields.len(), 2);
}

#[test]
fn imports_star_and_names() {
    let loader = MemoryLoader::new()
        .with_file("dir/lib.widl", "type A {}\ntype B {}\ntype Cee {}\nenum E { X = 0 }")
        .with_file("dir/main.widl", "namespace \"m\"\nimport * from \"lib.widl\"\nimport { A B as Bee Cee } from \"./lib.widl\"\ntype T { a: A, b: Bee, e: E }");
    let program = parse_and_check("dir/main.widl", &loader).unwrap();
    assert!(program.diagnostics.is_empty(), "{}", program.render());
    let d = program.root.unwrap();
    let imports: Vec<&Import> = d.imports().collect();
    assert!(matches!(imports[0].items, ImportItems::All(_)));
    assert_eq!(imports[0].from.value, "lib.widl");
    let ImportItems::Names(names) = &imports[1].items else {
        panic!("expected names")
    };
    let shown: Vec<(String, Option<String>)> = names
        .iter()
        .map(|n| {
            (
                n.name.value.clone(),
                n.alias.as_ref().map(|a| a.value.clone()),
            )
        })
        .collect();
    assert_eq!(
        shown,
        [
            ("A".into(), None),
            ("B".into(), Some("Bee".into())),
            ("Cee".into(), None)
        ]
    );
    assert_eq!(names[1].local().value, "Bee");
    // `Bee` resolves to `B` in the imported file (loaded once: both paths are the same file).
    assert_eq!(program.imports.len(), 1);
    let t = only(d.types());
    assert_eq!(
        t.fields[1].ty.resolved(),
        Some(&Resolved::Defined(DefRef {
            file: "dir/lib.widl".into(),
            name: "B".into(),
            kind: DefKind::Type
        }))
    );
    assert!(matches!(
        t.fields[2].ty.resolved(),
        Some(Resolved::Defined(DefRef {
            kind: DefKind::Enum,
            ..
        }))
    ));
}

#[test]
fn anonymous_interface_and_roles() {
    let d = clean(
        "namespace \"x\"\ninterface @marker { Ping(): string }\nrole Actor { Pong{p: i32}: string }\nrole Other {}\ndirective @marker on INTERFACE",
    );
    let i = only(d.interfaces());
    assert_eq!(i.operations[0].name.value, "Ping");
    assert_eq!(i.annotations[0].name.value, "marker");
    let roles: Vec<&str> = d.roles().map(|r| r.name.value.as_str()).collect();
    assert_eq!(roles, ["Actor", "Other"]);
    assert!(d.role("Other").unwrap().operations.is_empty());
}

#[test]
fn operations_function_unary_void_and_stream() {
    let d = clean(
        r#"namespace "x"
interface {
  NoArgs()
  ExplicitVoid(a: string): void
  Func(a: string, b: [i32]?): {string: u64}
  Unary{input: Input}: Input?
  Streams{input: stream Input}: stream Input
  Later(a: i32) : stream [string]
}
type Input { v: i32 }
"#,
    );
    let ops = &only(d.interfaces()).operations;
    let names: Vec<&str> = ops.iter().map(|o| o.name.value.as_str()).collect();
    assert_eq!(
        names,
        [
            "NoArgs",
            "ExplicitVoid",
            "Func",
            "Unary",
            "Streams",
            "Later"
        ]
    );
    assert!(ops[0].parameters.is_empty() && ops[0].returns.is_none() && ops[0].returns_void());
    assert!(ops[1].returns_void());
    assert_eq!(
        ops[1].returns.as_ref().unwrap().resolved(),
        Some(&Resolved::Void)
    );
    assert_eq!(ops[2].kind, OperationKind::Function);
    assert!(ops[2].parameters[1].ty.optional);
    assert!(matches!(
        ops[2].returns.as_ref().unwrap().kind,
        TypeKind::Map { .. }
    ));
    assert_eq!(ops[3].kind, OperationKind::Unary);
    assert!(ops[3].returns.as_ref().unwrap().optional);
    assert!(ops[4].stream && ops[4].parameters[0].stream);
    assert!(ops[5].stream);
    assert!(matches!(
        ops[5].returns.as_ref().unwrap().kind,
        TypeKind::List(_)
    ));
}

#[test]
fn stream_is_an_ordinary_name_at_line_end() {
    // `: stream` followed by a new line is a return type called `stream` (undefined here).
    let program = parse_and_check_source(
        "t.widl",
        "role R {\n  A(): stream\n  B(): string\n}",
        &MemoryLoader::new(),
    );
    let ops = &program
        .root
        .as_ref()
        .unwrap()
        .roles()
        .next()
        .unwrap()
        .operations;
    assert_eq!(ops.len(), 2);
    assert!(!ops[0].stream);
    assert_eq!(program.diagnostics.len(), 1);
    assert_eq!(program.diagnostics[0].code, "unknown-builtin");
}

#[test]
fn type_with_implements_and_annotations() {
    let d = clean(
        "type Base { id: ID }\ntype Other { x: i8 }\ntype T implements & Base & Other @ann(1) { id: string @ref }\ndirective @ann(value: i32) on TYPE",
    );
    let t = d.type_def("T").unwrap();
    let names: Vec<&str> = t.implements.iter().map(|n| n.value.as_str()).collect();
    assert_eq!(names, ["Base", "Other"]);
    assert_eq!(t.annotations[0].name.value, "ann");
    assert!(is_reference(&t.fields[0].annotations));
    assert_eq!(
        d.type_def("Base").unwrap().fields[0].ty.resolved(),
        Some(&Resolved::Builtin(Builtin::String)),
        "ID is a string"
    );
}

#[test]
fn enums_with_both_display_forms() {
    let d = clean(
        r#"enum Color @flag {
  "the first"
  Red = 0 "RED"
  Green = 1 as "GREEN"
  "no display string, and this description is not Green's display"
  Blue = 2
  Black = 3 @flag
}
directive @flag on ENUM | ENUM_VALUE"#,
    );
    let e = only(d.enums());
    let shown: Vec<ShownValue> = e
        .values
        .iter()
        .map(|v| {
            (
                v.name.value.clone(),
                v.index,
                v.display.as_ref().map(|(s, f)| (s.value.clone(), *f)),
            )
        })
        .collect();
    assert_eq!(
        shown,
        [
            ("Red".into(), 0, Some(("RED".into(), DisplayForm::Bare))),
            ("Green".into(), 1, Some(("GREEN".into(), DisplayForm::As))),
            ("Blue".into(), 2, None),
            ("Black".into(), 3, None),
        ]
    );
    assert_eq!(e.values[0].description.as_ref().unwrap().value, "the first");
    assert!(e.values[2].description.is_some());
    assert_eq!(e.values[3].annotations.len(), 1);
}

#[test]
fn unions() {
    let d = clean(
        "type A {}\ntype B {}\nunion U @x = A | B | string\nunion V =\n  | A\n  | [B]\ndirective @x on UNION",
    );
    let unions: Vec<&Union> = d.unions().collect();
    assert_eq!(unions[0].members.len(), 3);
    assert_eq!(named(&unions[0].members[2]), "string");
    assert_eq!(unions[0].annotations.len(), 1);
    assert!(matches!(unions[1].members[1].kind, TypeKind::List(_)));
}

#[test]
fn aliases_and_legacy_scalars() {
    let program = parse_and_check_source(
        "t.widl",
        "alias Uuid = string @ref\nalias \"Quoted\" = [u8]\nscalar Timestamp = i64\nscalar Opaque\ntype T { a: Uuid, b: Quoted, c: Timestamp, d: Opaque, e: {Uuid: i32} }",
        &MemoryLoader::new(),
    );
    // The opaque scalar produces a (documented) warning only.
    assert!(!program.has_errors(), "{}", program.render());
    assert_eq!(program.diagnostics.len(), 1);
    assert_eq!(program.diagnostics[0].code, "scalar");
    let d = program.root.unwrap();
    let aliases: Vec<&Alias> = d.aliases().collect();
    assert_eq!(aliases[0].form, AliasForm::Alias);
    assert_eq!(aliases[1].name.value, "Quoted");
    assert_eq!(aliases[2].form, AliasForm::Scalar);
    assert!(aliases[2].target.is_some());
    assert!(aliases[3].target.is_none());
    let t = only(d.types());
    assert!(matches!(
        t.fields[3].ty.resolved(),
        Some(Resolved::Defined(DefRef {
            kind: DefKind::Scalar,
            ..
        }))
    ));
}

#[test]
fn directives_with_params_locations_and_require() {
    let d = clean(
        r#"directive @key on SELF_NOT_USED_HERE_IS_NOT_ALLOWED | FIELD
"#
        .replace("SELF_NOT_USED_HERE_IS_NOT_ALLOWED | ", "")
        .as_str(),
    );
    assert_eq!(only(d.directives()).locations[0].value, "FIELD");

    let d = clean(
        r#""Marks an entity"
directive @entity(table: string, shards: i32 = 1) on
  | TYPE
  | ALIAS
directive @column(name: string?) on FIELD require @entity on TYPE @key on SELF
directive @key on FIELD
type User @entity(table: "users") {
  id: string @column @key
  name: string @column(name: "user_name") @key
}
"#,
    );
    let dirs: Vec<&Directive> = d.directives().collect();
    assert_eq!(dirs[0].name.value, "entity");
    assert_eq!(dirs[0].parameters.len(), 2);
    assert!(dirs[0].parameters[1].default.is_some());
    let locs: Vec<&str> = dirs[0].locations.iter().map(|l| l.value.as_str()).collect();
    assert_eq!(locs, ["TYPE", "ALIAS"]);
    assert_eq!(dirs[1].requires.len(), 2);
    assert_eq!(dirs[1].requires[1].locations[0].value, "SELF");
    assert_eq!(
        dirs[0].description.as_ref().unwrap().value,
        "Marks an entity"
    );
}

#[test]
fn annotation_arguments_named_and_bare() {
    let program = parse_and_check_source(
        "t.widl",
        "type T @a @b() @c(5) @d(x: \"s\", y: [1 2], z: {k: true}) { f: string }",
        &MemoryLoader::new(),
    );
    // Four unknown annotations: warnings, and all kept in the tree.
    assert!(!program.has_errors());
    assert_eq!(program.diagnostics.len(), 4);
    assert!(
        program
            .diagnostics
            .iter()
            .all(|d| d.code == "unknown-annotation" && d.severity == Severity::Warning)
    );
    let d = program.root.unwrap();
    let t = only(d.types());
    let anns = &t.annotations;
    assert_eq!(anns.len(), 4);
    assert!(anns[0].arguments.is_empty() && anns[1].arguments.is_empty());
    assert_eq!(anns[2].arguments[0].name.value, "value");
    assert!(anns[2].arguments[0].implicit);
    assert_eq!(anns[2].arguments[0].value.kind, ValueKind::Int(5));
    let names: Vec<&str> = anns[3]
        .arguments
        .iter()
        .map(|a| a.name.value.as_str())
        .collect();
    assert_eq!(names, ["x", "y", "z"]);
    assert!(matches!(anns[3].arguments[1].value.kind, ValueKind::List(ref v) if v.len() == 2));
    assert!(matches!(anns[3].arguments[2].value.kind, ValueKind::Object(ref v) if v.len() == 1));
    assert!(find_annotation(anns, "c").is_some());
}

#[test]
fn descriptions_before_every_element() {
    let d = clean(
        r#""ns" namespace "x"
"imp" import * from "o.widl"
"al" alias A = string
"""
    Interface docs
      indented
"""
interface { "op" Op("p" p: string): string }
"role" role R { "op2" Op2{ "u" u: i32 } }
"ty" type T { "fi" f: i32 }
"un" union U = T
"en" enum E { "va" V = 0 }
"di" directive @d("dp" a: i32) on FIELD
"#
        .replace("\"imp\" import * from \"o.widl\"\n", "")
        .as_str(),
    );
    let desc = |d: &Option<Description>| d.as_ref().unwrap().value.clone();
    assert_eq!(desc(&d.namespace().unwrap().description), "ns");
    assert_eq!(desc(&d.aliases().next().unwrap().description), "al");
    let i = d.interfaces().next().unwrap();
    assert_eq!(desc(&i.description), "Interface docs\n  indented");
    assert_eq!(desc(&i.operations[0].description), "op");
    assert_eq!(desc(&i.operations[0].parameters[0].description), "p");
    let r = d.roles().next().unwrap();
    assert_eq!(desc(&r.description), "role");
    assert_eq!(desc(&r.operations[0].parameters[0].description), "u");
    let t = d.types().next().unwrap();
    assert_eq!(desc(&t.description), "ty");
    assert_eq!(desc(&t.fields[0].description), "fi");
    assert_eq!(desc(&d.unions().next().unwrap().description), "un");
    let e = d.enums().next().unwrap();
    assert_eq!(desc(&e.description), "en");
    assert_eq!(desc(&e.values[0].description), "va");
    let di = d.directives().next().unwrap();
    assert_eq!(desc(&di.description), "di");
    assert_eq!(desc(&di.parameters[0].description), "dp");

    // And on imports.
    let loader = MemoryLoader::new()
        .with_file("o.widl", "type O {}")
        .with_file("m.widl", "\"imp\" import * from \"o.widl\"");
    let p = parse_and_check("m.widl", &loader).unwrap();
    assert!(p.diagnostics.is_empty(), "{}", p.render());
    let root = p.root.unwrap();
    assert_eq!(
        root.imports()
            .next()
            .unwrap()
            .description
            .as_ref()
            .unwrap()
            .value,
        "imp"
    );
}

#[test]
fn type_references_optional_list_map_nested() {
    let d = clean(
        "type T { a: string?, b: [i32], c: [i32?]?, d: {string: [f64]}, e: {u8: {i64: bool?}}?, f: datetime, g: raw, h: value, i: any, j: bytes }",
    );
    let t = only(d.types());
    assert!(t.fields[0].ty.optional);
    let TypeKind::List(inner) = &t.fields[2].ty.kind else {
        panic!()
    };
    assert!(inner.optional && t.fields[2].ty.optional);
    let TypeKind::Map { key, value } = &t.fields[4].ty.kind else {
        panic!()
    };
    assert_eq!(key.resolved(), Some(&Resolved::Builtin(Builtin::U8)));
    assert!(matches!(value.kind, TypeKind::Map { .. }));
    assert_eq!(
        t.fields[7].ty.resolved(),
        Some(&Resolved::Builtin(Builtin::Value))
    );
    assert_eq!(
        t.fields[8].ty.resolved(),
        Some(&Resolved::Builtin(Builtin::Value))
    );
}

#[test]
fn default_values_of_every_kind() {
    let d = clean(
        r#"enum Mode { Fast = 0, Slow = 1 }
type T {
  a: i32 = -5
  b: f64 = 1.5e3
  c: string = "x"
  d: string = """block"""
  e: bool = true
  f: bool = false
  g: string? = null
  h: Mode = Slow
  i: [i32] = [1, 2, 3]
  j: {string: i32} = { one: 1, "two": 2 }
  k: u64 = 18446744073709551615
}"#,
    );
    let t = only(d.types());
    let kinds: Vec<&ValueKind> = t
        .fields
        .iter()
        .map(|f| &f.default.as_ref().unwrap().kind)
        .collect();
    assert_eq!(kinds[0], &ValueKind::Int(-5));
    assert_eq!(kinds[1], &ValueKind::Float(1500.0));
    assert_eq!(kinds[2], &ValueKind::String("x".into()));
    assert_eq!(kinds[3], &ValueKind::String("block".into()));
    assert_eq!(kinds[4], &ValueKind::Bool(true));
    assert_eq!(kinds[5], &ValueKind::Bool(false));
    assert_eq!(kinds[6], &ValueKind::Null);
    assert_eq!(kinds[7], &ValueKind::Enum("Slow".into()));
    assert!(matches!(kinds[8], ValueKind::List(v) if v.len() == 3));
    assert!(matches!(kinds[9], ValueKind::Object(v) if v[1].name.value == "two"));
    assert_eq!(kinds[10], &ValueKind::Int(u64::MAX.into()));
}

#[test]
fn params_with_defaults_and_annotations() {
    let d = clean("role R { Op(a: i32 = 1 @ref, b: string = \"x\"): string @ref }");
    let op = &d.roles().next().unwrap().operations[0];
    assert!(op.parameters[0].default.is_some());
    assert!(is_reference(&op.parameters[0].annotations));
    assert!(is_reference(&op.annotations));
}

#[test]
fn keywords_are_contextual() {
    // Field and operation names may be keywords.
    let d = clean(
        "type T { type: string, enum: i32, namespace: bool, stream: u8 }\nrole R { type(): string\n import(a: i32) }",
    );
    let t = d.type_def("T").unwrap();
    let names: Vec<&str> = t.fields.iter().map(|f| f.name.value.as_str()).collect();
    assert_eq!(names, ["type", "enum", "namespace", "stream"]);
    assert_eq!(d.role("R").unwrap().operations.len(), 2);
}

#[test]
fn string_escapes_in_descriptions() {
    let d = clean("\"tab\\there \\u00e9 \\\"q\\\"\" type T {}");
    assert_eq!(
        d.types()
            .next()
            .unwrap()
            .description
            .as_ref()
            .unwrap()
            .value,
        "tab\there é \"q\""
    );
}

#[test]
fn every_node_has_a_span_inside_the_source() {
    let src =
        "namespace \"x\"\n\"d\" type T @a(1) { f: [string]? = [\"a\"] }\nrole R { Op(a: i32): T }";
    let program = parse_and_check_source("t.widl", src, &MemoryLoader::new());
    let d = program.root.unwrap();
    let t = d.type_def("T").unwrap();
    assert_eq!(
        &src[t.span.range()],
        "\"d\" type T @a(1) { f: [string]? = [\"a\"] }"
    );
    assert_eq!(&src[t.annotations[0].span.range()], "@a(1)");
    assert_eq!(&src[t.fields[0].span.range()], "f: [string]? = [\"a\"]");
    assert_eq!(&src[t.fields[0].ty.span.range()], "[string]?");
    assert_eq!(
        &src[t.fields[0].default.as_ref().unwrap().span.range()],
        "[\"a\"]"
    );
    let r = d.role("R").unwrap();
    assert_eq!(&src[r.span.range()], "role R { Op(a: i32): T }");
    assert_eq!(&src[r.operations[0].parameters[0].span.range()], "a: i32");
}
