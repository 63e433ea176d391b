//! Property tests of the WIDL front end at volume (`fuzz.rs` keeps a quick 256-case
//! version): whatever text `wash gen` or a build script reads, parsing, checking (imports
//! included) and generating Rust return a program with diagnostics or code, never a
//! panic or a stack overflow, and every diagnostic points inside its file.
//!
//! Inputs come from a small deterministic generator seeded by the proptest case (an
//! unoptimised proptest string strategy costs more than the parse): random bytes and
//! Unicode; WIDL token soup; the fixtures and the published interfaces with random edits;
//! and nesting thousands deep in types, values, annotations and imports. A failure
//! reports its seed, which rebuilds the input. Case counts are multiplied by
//! `NIMBUS_FUZZ_SCALE` (default 1).

#![allow(clippy::unwrap_used)] // a panic is the failure report

use nimbus_widl::codegen::{RustOptions, generate_rust};
use nimbus_widl::*;
use proptest::prelude::*;
use proptest::test_runner::Config;

const HTTP: &str = include_str!("fixtures/httpserver.widl");
const KV: &str = include_str!("fixtures/keyvalue.widl");
const EVERYTHING: &str = include_str!("fixtures/everything.widl");
const CORE_IFACE: &str = include_str!("../interfaces/core.widl");
const HTTP_IFACE: &str = include_str!("../interfaces/httpserver.widl");
const KV_IFACE: &str = include_str!("../interfaces/keyvalue.widl");
const SOURCES: [&str; 6] = [HTTP, KV, EVERYTHING, CORE_IFACE, HTTP_IFACE, KV_IFACE];

fn config(cases: u32) -> Config {
    let scale = std::env::var("NIMBUS_FUZZ_SCALE")
        .ok()
        .and_then(|s| s.parse::<u32>().ok())
        .unwrap_or(1)
        .max(1);
    Config {
        cases: cases.saturating_mul(scale),
        failure_persistence: None,
        ..Config::default()
    }
}

/// SplitMix64: cheap, deterministic input generation from the case's seed.
struct Gen(u64);

impl Gen {
    fn u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.u64() % n as u64) as usize
        }
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    fn char(&mut self) -> char {
        let c = match self.below(4) {
            0 => self.below(0x80) as u32,
            1 => self.below(0x800) as u32,
            2 => 0xd000 + self.below(0x3000) as u32,
            _ => 0x1_0000 + self.below(0x10_0000) as u32,
        };
        char::from_u32(c).unwrap_or('\u{FFFD}')
    }

    /// `source` with up to `max` byte edits (half the time one), made UTF-8 again.
    fn mutate(&mut self, source: &str, max: usize) -> String {
        const BYTES: &[u8] = b"{}()[]:=?@|&*\"#,\n \\-0123456789aetsr.";
        let mut bytes = source.as_bytes().to_vec();
        let n = if self.u64() & 1 == 0 {
            1
        } else {
            1 + self.below(max)
        };
        for _ in 0..n {
            let len = bytes.len();
            let at = self.below(len + 1);
            let byte = if self.u64() & 1 == 0 {
                self.pick(BYTES)
            } else {
                self.u64() as u8
            };
            match self.below(6) {
                0 => bytes.truncate(at),
                1 | 2 => bytes.insert(at, byte),
                3 if len > 0 => {
                    bytes.remove(at % len);
                }
                4 if len > 0 => bytes[at % len] = byte,
                _ if len > 0 => {
                    // Copy a short range elsewhere: duplicated definitions, fields, braces.
                    let from = self.below(len);
                    let end = (from + 1 + self.below(24)).min(len);
                    let chunk = bytes[from..end].to_vec();
                    let to = self.below(bytes.len() + 1);
                    bytes.splice(to..to, chunk);
                }
                _ => {}
            }
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

fn loader_with(root: &str) -> MemoryLoader {
    MemoryLoader::new()
        .with_file("httpserver.widl", HTTP)
        .with_file("keyvalue.widl", KV)
        .with_file("core.widl", CORE_IFACE)
        .with_file("m.widl", root)
}

/// Parses and checks `text` as `m.widl` (which may import the fixtures or itself),
/// asserts every diagnostic lies inside its file, generates Rust when the program is
/// clean, and when `render` renders the diagnostics as `wash gen` prints them (which
/// costs ten times the parse, so callers ask for it in a share of the cases).
fn front_end_cleanly(text: &str, render: bool) {
    let program = parse_and_check("m.widl", &loader_with(text)).unwrap();
    for d in &program.diagnostics {
        let file = program.files.get(&d.file).unwrap();
        assert!(
            d.span.start <= d.span.end && d.span.end <= file.text().len(),
            "{d:?}"
        );
        let loc = file.location(d.span.start);
        assert_eq!((loc.line, loc.column), (d.line, d.column), "{d:?}");
        for l in &d.labels {
            let lf = program.files.get(&l.file).unwrap();
            assert!(
                l.span.start <= l.span.end && l.span.end <= lf.text().len(),
                "{l:?}"
            );
        }
    }
    if render {
        let rendered = program.render();
        assert!(program.diagnostics.is_empty() || !rendered.is_empty());
    }
    if !program.has_errors() {
        for options in [RustOptions::actor(), RustOptions::provider()] {
            match generate_rust(&program, &options) {
                Ok(code) => assert!(!code.is_empty()),
                Err(diags) => assert!(has_errors(&diags)),
            }
        }
    }
}

/// Plausible WIDL fragments in random order.
fn token_soup(g: &mut Gen) -> String {
    const PIECES: &[&str] = &[
        "namespace ",
        "import ",
        "from ",
        "* ",
        "as ",
        "type ",
        "enum ",
        "union ",
        "alias ",
        "scalar ",
        "role ",
        "interface ",
        "directive ",
        "on ",
        "require ",
        "implements ",
        "stream ",
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
        "1e999",
        "0x1F",
        "Foo",
        "bar",
        "string",
        "i32",
        "u64",
        "f64",
        "bool",
        "bytes",
        "datetime",
        "raw",
        "any",
        "value",
        "{string: i32}",
        "# c\n",
        "SELF",
        "FIELD",
        "TYPE",
        "NAMESPACE",
        "true",
        "null",
        "\"m.widl\"",
        "\"httpserver.widl\"",
        "\"core.widl\"",
        "\"nope.widl\"",
        "é",
        "\u{FEFF}",
        "\\u12",
        "\\",
        "Request",
        "Response",
        "Id",
        "Actor",
        "Handle",
    ];
    let n = g.below(150);
    (0..n)
        .map(|_| {
            if g.below(10) == 0 {
                g.char().to_string()
            } else {
                g.pick(PIECES).to_string()
            }
        })
        .collect()
}

/// Nesting up to 3,000 deep where WIDL nests (the parser stops at 64 levels): list and map types, default values,
/// annotation arguments, parentheses; or a chain of aliases.
fn deep(g: &mut Gen) -> String {
    let depth = match g.below(3) {
        0 => 60 + g.below(80),
        1 => g.below(1_000),
        _ => g.below(3_000),
    };
    let close = g.below(2) == 0;
    let rep = |s: &str, n: usize| s.repeat(n);
    match g.below(6) {
        0 => format!(
            "namespace \"d\"\ntype A {{ f: {}string{} }}\n",
            rep("[", depth),
            if close {
                rep("]", depth)
            } else {
                String::new()
            }
        ),
        1 => format!(
            "namespace \"d\"\ntype A {{ f: {}i32{} }}\n",
            rep("{string: ", depth),
            if close {
                rep("}", depth)
            } else {
                String::new()
            }
        ),
        2 => format!(
            "namespace \"d\"\ntype A {{ f: [i32] = {}1{} }}\n",
            rep("[", depth),
            if close {
                rep("]", depth)
            } else {
                String::new()
            }
        ),
        3 => format!(
            "namespace \"d\" @a(v: {}1{})\n",
            rep("{a: ", depth),
            if close {
                rep("}", depth)
            } else {
                String::new()
            }
        ),
        4 => format!(
            "namespace \"d\"\nrole R {{ Op{}{} }}\n",
            rep("(", depth),
            if close {
                rep(")", depth)
            } else {
                String::new()
            }
        ),
        _ => {
            let n = depth.min(2_000);
            let mut s = String::from("namespace \"d\"\n");
            for i in 0..n {
                s.push_str(&format!("alias A{i} = A{}\n", i + 1));
            }
            s.push_str(&format!(
                "alias A{n} = {}\n",
                if close { "string" } else { "A0" }
            ));
            s.push_str("type T { f: A0 }\n");
            s
        }
    }
}

proptest! {
    // Parsing and checking even a short random text costs ~100 µs unoptimised.
    #![proptest_config(config(10_000))]

    #[test]
    fn random_bytes_never_panic(seed in any::<u64>(), len in 0usize..160) {
        // A seed and a length, not a proptest byte vector: ~50 times cheaper to draw
        // unoptimised, and a failure still shrinks to a shortest length.
        let mut g = Gen(seed);
        let bytes: Vec<u8> = (0..len).map(|_| g.u64() as u8).collect();
        front_end_cleanly(&String::from_utf8_lossy(&bytes), g.below(16) == 0);
    }

    #[test]
    fn random_unicode_never_panics(seed in any::<u64>()) {
        let mut g = Gen(seed);
        let n = g.below(120);
        let text: String = (0..n).map(|_| g.char()).collect();
        front_end_cleanly(&text, g.below(16) == 0);
    }

    #[test]
    fn token_soup_never_panics(seed in any::<u64>()) {
        let mut g = Gen(seed);
        let text = token_soup(&mut g);
        front_end_cleanly(&text, g.below(16) == 0);
    }
}

proptest! {
    // A fixture is 0.5 to 3 KB: checking it (and generating code when it is still clean)
    // costs more than a short random text.
    #![proptest_config(config(3_000))]

    #[test]
    fn edited_fixtures_and_interfaces_never_panic(seed in any::<u64>()) {
        let mut g = Gen(seed);
        let source = g.pick(&SOURCES);
        let text = g.mutate(source, 6);
        front_end_cleanly(&text, g.below(16) == 0);
    }
}

proptest! {
    // Inputs of thousands of levels.
    #![proptest_config(config(300))]

    #[test]
    fn deep_nesting_never_overflows_the_stack(seed in any::<u64>()) {
        let mut g = Gen(seed);
        let text = deep(&mut g);
        front_end_cleanly(&text, g.below(16) == 0);
    }
}

#[test]
fn the_fixtures_and_interfaces_generate_code() {
    // The edit target starts from sources that get through the whole front end.
    for source in SOURCES {
        let program = parse_and_check("m.widl", &loader_with(source)).unwrap();
        assert!(!program.has_errors(), "{}", program.render());
    }
}
