//! Property tests: random text and mutated valid WIDL never panic the parser or checker,
//! and every diagnostic is located inside its source.
#![allow(clippy::unwrap_used)] // test helpers: a panic is the failure report

use nimbus_widl::*;
use proptest::prelude::*;

const HTTP: &str = include_str!("fixtures/httpserver.widl");
const KV: &str = include_str!("fixtures/keyvalue.widl");
const EVERYTHING: &str = include_str!("fixtures/everything.widl");

fn loader_with(root: &str) -> MemoryLoader {
    MemoryLoader::new()
        .with_file("httpserver.widl", HTTP)
        .with_file("keyvalue.widl", KV)
        .with_file("m.widl", root)
}

/// Parses and checks `text` as `m.widl` (imports may reach the fixtures or `m.widl` itself)
/// and asserts every diagnostic and label lies within its file with a consistent location.
fn assert_well_located(text: &str) {
    let (_, syntax) = parse("m.widl", text);
    for d in &syntax {
        assert!(
            d.span.start <= d.span.end && d.span.end <= text.len(),
            "{d:?}"
        );
    }
    let program = parse_and_check("m.widl", &loader_with(text)).unwrap();
    for d in &program.diagnostics {
        let file = program
            .files
            .get(&d.file)
            .unwrap_or_else(|| panic!("unknown file in {d:?}"));
        let len = file.text().len();
        assert!(
            d.span.start <= d.span.end && d.span.end <= len,
            "{d:?} (len {len})"
        );
        let loc = file.location(d.span.start);
        assert_eq!((loc.line, loc.column), (d.line, d.column), "{d:?}");
        assert!(d.line >= 1 && d.column >= 1);
        assert!(d.line <= file.text().lines().count().max(1) + 1);
        for l in &d.labels {
            let lf = program.files.get(&l.file).unwrap();
            assert!(
                l.span.start <= l.span.end && l.span.end <= lf.text().len(),
                "{l:?}"
            );
        }
    }
    let rendered = program.render();
    assert!(program.diagnostics.is_empty() || !rendered.is_empty());
}

#[derive(Debug, Clone)]
enum Mutation {
    Delete(usize),
    Insert(usize, u8),
    Swap(usize, usize),
}

fn mutate(source: &str, mutations: &[Mutation]) -> String {
    let mut bytes = source.as_bytes().to_vec();
    for m in mutations {
        if bytes.is_empty() {
            break;
        }
        let n = bytes.len();
        match *m {
            Mutation::Delete(i) => {
                bytes.remove(i % n);
            }
            Mutation::Insert(i, b) => bytes.insert(i % (n + 1), b),
            Mutation::Swap(i, j) => bytes.swap(i % n, j % n),
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn mutation() -> impl Strategy<Value = Mutation> {
    // Inserted bytes favour WIDL punctuation and keywords' letters.
    let byte = prop_oneof![
        prop::sample::select(b"{}()[]:=?@|&*\"#,\n \\-0123456789aetsr".to_vec()),
        any::<u8>(),
    ];
    prop_oneof![
        any::<usize>().prop_map(Mutation::Delete),
        (any::<usize>(), byte).prop_map(|(i, b)| Mutation::Insert(i, b)),
        (any::<usize>(), any::<usize>()).prop_map(|(i, j)| Mutation::Swap(i, j)),
    ]
}

/// Token soup: plausible WIDL fragments in random order.
fn widlish() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec![
        "namespace",
        "import",
        "from",
        "*",
        "as",
        "type",
        "enum",
        "union",
        "alias",
        "scalar",
        "role",
        "interface",
        "directive",
        "on",
        "require",
        "implements",
        "stream",
        "void",
        "{",
        "}",
        "(",
        ")",
        "[",
        "]",
        ":",
        "=",
        "?",
        "@",
        "|",
        "&",
        ",",
        "\n",
        " ",
        "\"s\"",
        "\"\"\"b\"\"\"",
        "\"",
        "\"\"\"",
        "0",
        "-1",
        "1.5e3",
        "Foo",
        "bar",
        "string",
        "i32",
        "{string: i32}",
        "# c\n",
        "SELF",
        "FIELD",
        "TYPE",
        "true",
        "null",
        "\"m.widl\"",
        "\"httpserver.widl\"",
        "é",
        "\u{FEFF}",
        "\\u12",
    ]);
    prop::collection::vec(piece, 0..120).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_unicode_never_panics(text in any::<String>()) {
        assert_well_located(&text);
    }

    #[test]
    fn token_soup_never_panics(text in widlish()) {
        assert_well_located(&text);
    }

    #[test]
    fn mutated_valid_widl_never_panics(
        which in 0usize..3,
        mutations in prop::collection::vec(mutation(), 1..12),
    ) {
        let source = [HTTP, KV, EVERYTHING][which];
        assert_well_located(&mutate(source, &mutations));
    }
}

#[test]
fn everything_fixture_is_clean_except_documented_warnings() {
    let program = parse_and_check("m.widl", &loader_with(EVERYTHING)).unwrap();
    let text = program.render();
    // `@deprecated` is not declared: a warning, and the only diagnostic.
    assert_eq!(program.diagnostics.len(), 1, "{text}");
    assert_eq!(program.diagnostics[0].code, "unknown-annotation");
    assert!(!program.has_errors());
}
