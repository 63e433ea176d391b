//! Error recovery, checker rules and rendering.

use nimbus_widl::*;

fn run(src: &str) -> Program {
    parse_and_check_source("bad.widl", src, &MemoryLoader::new())
}

/// `(code, line, column)` of every error, in order.
fn errors(p: &Program) -> Vec<(&'static str, usize, usize)> {
    p.diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| (d.code, d.line, d.column))
        .collect()
}

fn codes(p: &Program) -> Vec<&'static str> {
    p.diagnostics.iter().map(|d| d.code).collect()
}

const THREE_MISTAKES: &str = r#"namespace "demo"

type Person {
  name: string
  age: 
  email: string
}

enum Color {
  Red = 0
  Green 1
  Blue = 2
}

role Greeter {
  Greet(person: Person): string
  Wave(person Person)
  Leave(): void
}
"#;

#[test]
fn three_syntax_mistakes_give_three_located_errors() {
    let p = run(THREE_MISTAKES);
    let text = p.render();
    println!("{text}");
    assert_eq!(
        errors(&p),
        [("syntax", 5, 7), ("syntax", 11, 9), ("syntax", 17, 15)],
        "{text}"
    );
    assert!(text.contains("--> bad.widl:5:7"), "{text}");
    assert!(text.contains("--> bad.widl:11:9"), "{text}");
    assert!(text.contains("--> bad.widl:17:15"), "{text}");
    assert_eq!(text.matches("error[syntax]").count(), 3);
    // rustc style: source line and caret.
    assert!(text.contains("11 |   Green 1"), "{text}");
    assert!(text.contains("|         ^ unexpected token"), "{text}");
    // Recovery kept everything else.
    let d = p.root.unwrap();
    let person = d.type_def("Person").unwrap();
    let fields: Vec<&str> = person
        .fields
        .iter()
        .map(|f| f.name.value.as_str())
        .collect();
    assert_eq!(fields, ["name", "email"]);
    assert_eq!(d.enums().next().unwrap().values.len(), 2);
    let ops: Vec<&str> = d
        .role("Greeter")
        .unwrap()
        .operations
        .iter()
        .map(|o| o.name.value.as_str())
        .collect();
    // `Wave` is kept (its broken parameter is dropped), so later checks see the name.
    assert_eq!(ops, ["Greet", "Wave", "Leave"]);
}

#[test]
fn three_mixed_mistakes_syntax_and_semantic() {
    let src = "namespace \"demo\"\ntype A {\n  x: strng\n  y: [Missing]\n}\nrole R {\n  Op(a: i32 b: ): A\n}\n";
    let p = run(src);
    let text = p.render();
    assert_eq!(
        errors(&p),
        [
            ("syntax", 7, 16),
            ("unknown-builtin", 3, 6),
            ("undefined-type", 4, 7)
        ],
        "{text}"
    );
    assert!(text.contains("bad.widl:3:6"));
    assert!(text.contains("did you mean `string`?"), "{text}");
}

#[test]
fn top_level_recovery_skips_to_next_definition() {
    let src = "namespace \"a\"\nbogus stuff here\ntype A { a: i32 }\ntype { }\ntype B { b: A }\n= = =\nenum E { X = 0 }";
    let p = run(src);
    assert_eq!(
        errors(&p),
        [("syntax", 2, 1), ("syntax", 4, 6), ("syntax", 6, 1)],
        "{}",
        p.render()
    );
    let d = p.root.unwrap();
    assert_eq!(d.types().count(), 2);
    assert_eq!(d.enums().count(), 1);
}

#[test]
fn missing_closing_brace_is_reported_once_and_next_definition_parses() {
    let src = "type A {\n  a: i32\n\ntype B {\n  b: A\n}\n";
    let p = run(src);
    let text = p.render();
    assert_eq!(errors(&p), [("syntax", 2, 9)], "{text}");
    assert!(text.contains("unclosed `{`"), "{text}");
    let d = p.root.unwrap();
    assert_eq!(d.types().count(), 2);
}

#[test]
fn unclosed_parameter_list() {
    let src = "role R {\n  Op(a: i32\n  Next(): string\n}\n";
    let p = run(src);
    assert_eq!(errors(&p), [("syntax", 2, 12)], "{}", p.render());
    let ops: Vec<String> = p
        .root
        .unwrap()
        .roles()
        .next()
        .unwrap()
        .operations
        .iter()
        .map(|o| o.name.value.clone())
        .collect();
    assert_eq!(ops, ["Next"]);
}

#[test]
fn unary_with_two_parameters_has_a_hint() {
    let p = run("role R { Op{a: i32 b: i32}: string }");
    let text = p.render();
    assert_eq!(errors(&p).len(), 1, "{text}");
    assert!(text.contains("exactly one parameter"), "{text}");
}

#[test]
fn lexical_errors_are_located() {
    let p = run("type A {\n  a: \"unterminated\n  b: i32 $$\n}");
    assert_eq!(
        errors(&p),
        [("syntax", 2, 6), ("syntax", 2, 6), ("syntax", 3, 10)],
        "{}",
        p.render()
    );
}

#[test]
fn empty_file_is_an_error() {
    let (doc, diags) = parse("e.widl", "  # nothing\n");
    assert!(doc.is_none());
    assert_eq!(diags.len(), 1);
    assert_eq!(diags[0].message, "expected at least one definition");
}

#[test]
fn deep_nesting_is_rejected_not_overflowed() {
    let src = format!(
        "type A {{ a: {}string{} }}",
        "[".repeat(5000),
        "]".repeat(5000)
    );
    let p = run(&src);
    assert!(p.has_errors());
    assert!(p.render().contains("nesting is too deep"));
}

#[test]
fn unknown_types_lowercase_vs_pascal_case() {
    let p = run("type A { a: strin, b: Strng, c: Thing, d: i33 }\ntype String2 {}");
    let text = p.render();
    assert_eq!(
        codes(&p),
        [
            "unknown-builtin",
            "undefined-type",
            "undefined-type",
            "unknown-builtin"
        ],
        "{text}"
    );
    assert!(text.contains("unknown built-in type `strin`"));
    assert!(text.contains("undefined type `Thing`"));
    assert!(text.contains("help: did you mean `String2`?"), "{text}");
}

#[test]
fn duplicates_are_errors() {
    let src = r#"type A { x: i32, x: string }
type A { y: i32 }
enum E { P = 0, P = 1, Q = 1 }
role R { Op(a: i32, a: i32): void
  Op(): void }
role R {}
alias string = i32
directive @d on FIELD
directive @d on TYPE
"#;
    let p = run(src);
    let dup: Vec<(usize, usize)> = p
        .diagnostics
        .iter()
        .filter(|d| d.code == "duplicate")
        .map(|d| (d.line, d.column))
        .collect();
    assert_eq!(
        dup,
        [
            (1, 18),
            (2, 6),
            (3, 17),
            (3, 28),
            (4, 21),
            (5, 3),
            (6, 6),
            (7, 7),
            (9, 12)
        ],
        "{}",
        p.render()
    );
    assert!(p.render().contains("first defined here"));
}

#[test]
fn void_only_as_return_type() {
    let p = run(
        "type A { a: void, b: [void] }\nrole R { Op(p: void): void\n Op2(): void?\n Op3{p: i32}: stream void }\nalias V = void",
    );
    let v: Vec<(usize, usize)> = p
        .diagnostics
        .iter()
        .filter(|d| d.code == "void")
        .map(|d| (d.line, d.column))
        .collect();
    assert_eq!(
        v,
        [(1, 13), (1, 23), (2, 16), (3, 9), (4, 22), (5, 11)],
        "{}",
        p.render()
    );
}

#[test]
fn namespace_rules() {
    let p = run("type A {}\nnamespace \"a\"\nnamespace \"b\"");
    assert_eq!(
        errors(&p),
        [("namespace", 2, 1), ("namespace", 3, 1)],
        "{}",
        p.render()
    );
    assert!(p.render().contains("must be the first definition"));
    assert!(p.render().contains("only one namespace"));
}

#[test]
fn only_one_interface_block() {
    let p = run("interface { A() }\ninterface { B() }");
    assert_eq!(errors(&p), [("duplicate", 2, 1)]);
}

#[test]
fn annotations_unknown_warn_ref_known_declared_checked() {
    let src = r#"directive @table(name: string, shards: i32 = 1) on TYPE
directive @col on FIELD require @table on TYPE
type A @table(name: "a") {
  a: string @ref @col @whatever
}
type B @table(shards: "x", extra: 1) {
  b: string @col(1)
}
type C {
  c: string @col @reference
}
enum E @table(name: "e") { X = 0 }
role R @ref { Op(): string @ref(1) }
"#;
    let p = run(src);
    let shown: Vec<(Severity, &str, usize, usize)> = p
        .diagnostics
        .iter()
        .map(|d| (d.severity, d.code, d.line, d.column))
        .collect();
    use Severity::*;
    assert_eq!(
        shown,
        [
            (Warning, "unknown-annotation", 4, 24),
            (Error, "annotation", 6, 8),
            (Error, "annotation", 6, 23),
            (Error, "annotation", 6, 28),
            (Error, "annotation", 7, 18),
            (Error, "annotation", 10, 13),
            (Error, "annotation", 12, 8),
            (Warning, "annotation", 13, 8),
            (Error, "annotation", 13, 33),
        ],
        "{}",
        p.render()
    );
    // Unknown annotations stay in the tree.
    let d = p.root.unwrap();
    let a = d.type_def("A").unwrap();
    assert_eq!(a.fields[0].annotations.len(), 3);
    assert_eq!(a.fields[0].annotations[2].name.value, "whatever");
}

#[test]
fn directive_declarations_are_validated() {
    let p = run("directive @x on FIELDS | TYPE | TYPE require @nope on SELF | BOGUS");
    let shown: Vec<(&str, usize, usize)> = p
        .diagnostics
        .iter()
        .map(|d| (d.code, d.line, d.column))
        .collect();
    assert_eq!(
        shown,
        [
            ("annotation", 1, 17),
            ("duplicate", 1, 33),
            ("annotation", 1, 47),
            ("annotation", 1, 62)
        ],
        "{}",
        p.render()
    );
    assert!(p.render().contains("did you mean `FIELD`?"));
}

#[test]
fn map_keys_must_be_string_or_integer() {
    let src = "alias Key = string\nalias Bad = f32\nenum E { A = 0 }\ntype T {\n  a: {string: i32}\n  b: {u16: i32}\n  c: {Key: i32}\n  d: {ID: i32}\n  e: {f64: i32}\n  f: {Bad: i32}\n  g: {E: i32}\n  h: {[string]: i32}\n  i: {string?: i32}\n  j: [{bool: i32}]\n}";
    let p = run(src);
    let lines: Vec<usize> = p
        .diagnostics
        .iter()
        .filter(|d| d.code == "map-key")
        .map(|d| d.line)
        .collect();
    assert_eq!(lines, [9, 10, 11, 12, 13, 14], "{}", p.render());
    assert!(p.diagnostics.iter().all(|d| d.is_error()));
}

#[test]
fn default_values_are_checked_against_types() {
    let src = "enum M { A = 0 }\ntype T {\n  a: i8 = 300\n  b: string = 1\n  c: M = B\n  d: bool = \"no\"\n  e: i32 = null\n  f: [i32] = [1 \"x\"]\n  g: f32 = 2\n  h: i32? = null\n}";
    let p = run(src);
    let lines: Vec<usize> = p
        .diagnostics
        .iter()
        .filter(|d| d.code == "default-value")
        .map(|d| d.line)
        .collect();
    assert_eq!(lines, [3, 4, 5, 6, 7, 8], "{}", p.render());
}

#[test]
fn enum_index_range() {
    let p = run("enum E { A = -1, B = 4294967296, C = 4294967295 }");
    assert_eq!(errors(&p), [("enum-index", 1, 14), ("enum-index", 1, 22)]);
}

#[test]
fn implements_must_name_a_type() {
    let p = run("enum E { A = 0 }\ntype T implements E & Nope {}");
    assert_eq!(
        errors(&p),
        [("implements", 2, 19), ("undefined-type", 2, 23)],
        "{}",
        p.render()
    );
}

#[test]
fn alias_cycles() {
    let p = run("alias A = B\nalias B = A\ntype T { m: {A: i32} }");
    let cycles = p
        .diagnostics
        .iter()
        .filter(|d| d.code == "alias-cycle")
        .count();
    assert_eq!(cycles, 2, "{}", p.render());
}

#[test]
fn naming_warning_for_non_pascal_case_types() {
    let p = run("type user { a: i32 }\ntype T { u: user }");
    assert!(!p.has_errors(), "{}", p.render());
    assert_eq!(codes(&p), ["naming"]);
}

#[test]
fn diagnostics_display_one_line_form() {
    let p = run("type A { a: Nope }");
    assert_eq!(
        p.diagnostics[0].to_string(),
        "bad.widl:1:13: error[undefined-type]: undefined type `Nope`"
    );
}

#[test]
fn rendering_is_plain_text_rustc_style() {
    let p = run("type A {\n  a: Nope\n}");
    let text = p.render();
    assert_eq!(
        text,
        "error[undefined-type]: undefined type `Nope`\n  --> bad.widl:2:6\n  |\n2 |   a: Nope\n  |      ^^^^ not defined or imported\n\n"
    );
    assert!(!text.contains('\u{1b}'), "no colour codes");
}

#[test]
fn columns_count_characters_not_bytes() {
    let p = run("\"é😀\" type A { a: Nope }");
    assert_eq!((p.diagnostics[0].line, p.diagnostics[0].column), (1, 18));
    assert!(p.render().contains("bad.widl:1:18"));
}
