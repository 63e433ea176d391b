//! Property tests of the app manifest parser: whatever text `wash up` or `wash app
//! deploy` is given (YAML, or JSON, which the YAML parser reads too), [`Manifest::parse`]
//! returns a valid manifest or a syntax or validation error saying where, and never
//! panics, overflows its stack or expands aliases without bound.
//!
//! Inputs: random bytes and Unicode; YAML token soup; manifest-shaped values of right and
//! wrong types written as YAML and as JSON; deep nesting and alias bombs; and valid
//! manifests with random edits. Valid manifests round-trip through YAML and JSON.

#![allow(clippy::unwrap_used)] // a panic is the failure report

#[path = "../../core/tests/fuzz_support/generators.rs"]
mod generators;

use std::collections::BTreeMap;
use std::path::PathBuf;

use generators::*;
use nimbus_app::{ActorSpec, Builtin, LinkSpec, Manifest, ManifestError, ProviderSpec, Spread};
use proptest::prelude::*;

/// Every key a manifest has, at any level.
const MANIFEST_KEYS: &[&str] = &[
    "name",
    "description",
    "version",
    "actors",
    "providers",
    "links",
    "path",
    "instances",
    "max_instances",
    "call_alias",
    "capabilities",
    "host_labels",
    "replicas",
    "spread",
    "labels",
    "weight",
    "builtin",
    "contract",
    "link_name",
    "config",
    "actor",
    "provider",
    "values",
];

// ---- what every parse must satisfy -----------------------------------------------------

/// Parses `text`; a manifest must be valid and survive YAML and JSON again, an error
/// must say where (`<input>`, with line and column for syntax) and what.
fn parses_cleanly(text: &str) -> Option<Manifest> {
    match Manifest::parse(text) {
        Ok(m) => {
            assert!(m.problems().is_empty());
            for p in &m.providers {
                let _ = (p.config_json(), p.contract_id());
            }
            assert_round_trips(&m);
            Some(m)
        }
        Err(ManifestError::Syntax { origin, message }) => {
            assert!(origin.starts_with("<input>"), "{origin}");
            assert!(!message.is_empty());
            None
        }
        Err(ManifestError::Invalid { origin, problems }) => {
            assert_eq!(origin, "<input>");
            assert!(!problems.is_empty() && problems.iter().all(|p| !p.is_empty()));
            None
        }
        Err(e @ ManifestError::Read { .. }) => panic!("parse read a file: {e}"),
    }
}

/// A valid manifest written as YAML and as JSON parses back to itself.
fn assert_round_trips(m: &Manifest) {
    let yaml = serde_yaml_ng::to_string(m).unwrap();
    assert_eq!(&Manifest::parse(&yaml).unwrap(), m, "YAML:\n{yaml}");
    let json = serde_json::to_string(m).unwrap();
    if yaml_reads_as_json(&json) {
        assert_eq!(&Manifest::parse(&json).unwrap(), m, "JSON:\n{json}");
    }
}

/// Whether the YAML parser reads this JSON text as JSON. JSON strings may hold any
/// character unescaped but the C0 controls; YAML 1.1 (libyaml) refuses DEL, the C1
/// controls and U+FFFE/U+FFFF in a document, and takes NEL, LS and PS for line breaks,
/// so a JSON manifest with one of them in a string fails to parse or (NEL) parses to
/// another string. Known limitation of reading JSON manifests with the YAML parser.
fn yaml_reads_as_json(json: &str) -> bool {
    !json.chars().any(|c| {
        matches!(
            c,
            '\u{7f}'..='\u{9f}' | '\u{2028}' | '\u{2029}' | '\u{fffe}' | '\u{ffff}'
        )
    })
}

// ---- generators ----------------------------------------------------------------------

/// A non-blank name, unique by its suffix.
fn unique_name(g: &mut Gen, i: usize) -> String {
    format!("{}{i}", g.text())
}

fn labels(g: &mut Gen) -> BTreeMap<String, String> {
    g.vec(2, |g| (g.text(), g.text())).into_iter().collect()
}

fn spread(g: &mut Gen) -> Vec<Spread> {
    g.vec(2, |g| Spread {
        labels: {
            let mut l = labels(g);
            l.insert(g.non_empty_text(), g.text());
            l
        },
        weight: 1 + g.below(5) as u32,
    })
}

fn non_empty_path(g: &mut Gen) -> PathBuf {
    PathBuf::from(g.non_empty_text())
}

/// Any valid manifest: unique non-blank names, counts and weights of at least 1, one way
/// to run each provider, one provider per contract and link name, links to existing
/// entities without duplicates.
fn valid_manifest(g: &mut Gen) -> Manifest {
    let name = if g.bool() { g.text() } else { String::new() };
    let actors: Vec<ActorSpec> = (0..g.below(4))
        .map(|i| {
            let instances = 1 + g.below(8) as u32;
            ActorSpec {
                name: unique_name(g, i),
                path: non_empty_path(g),
                instances,
                max_instances: g.option(|g| instances + g.below(100) as u32),
                call_alias: g.option(Gen::text),
                capabilities: g.vec(2, Gen::text),
                host_labels: labels(g),
                replicas: 1 + g.below(4) as u32,
                spread: spread(g),
            }
        })
        .collect();
    let providers: Vec<ProviderSpec> = (0..g.below(4))
        .map(|i| {
            let (builtin, path, contract) = match g.below(3) {
                0 => (Some(g.pick(&Builtin::ALL)), None, None),
                1 => (Some(g.pick(&Builtin::ALL)), None, Some(g.text())),
                _ => (None, Some(non_empty_path(g)), Some(g.text())),
            };
            ProviderSpec {
                name: unique_name(g, i),
                builtin,
                path,
                contract,
                // Unique, so no two providers serve the same contract and link name.
                link_name: unique_name(g, i),
                config: labels(g),
                host_labels: labels(g),
                replicas: 1 + g.below(4) as u32,
                spread: spread(g),
            }
        })
        .collect();
    let mut links = Vec::new();
    for a in &actors {
        for p in &providers {
            if g.one_in(2) {
                links.push(LinkSpec {
                    actor: a.name.clone(),
                    provider: p.name.clone(),
                    values: labels(g),
                });
            }
        }
    }
    Manifest {
        name: format!("{name}app"),
        description: g.option(Gen::text),
        version: g.option(Gen::text),
        actors,
        providers,
        links,
    }
}

/// A manifest-shaped value: the manifest's keys at every level, holding right or wrong
/// types, or missing.
fn manifest_shaped(g: &mut Gen) -> serde_json::Value {
    use serde_json::Value;
    let mut top = g.json_object_with(MANIFEST_KEYS, 1);
    if !g.one_in(6) {
        top.insert("name".into(), Value::from(g.text()));
    }
    for list in ["actors", "providers", "links"] {
        if g.bool() {
            let items = g.vec(3, |g| Value::Object(g.json_object_with(MANIFEST_KEYS, 1)));
            top.insert(list.into(), Value::Array(items));
        }
    }
    if g.one_in(3)
        && let Some(Value::Array(actors)) = top.get_mut("actors")
    {
        for a in actors.iter_mut().filter_map(Value::as_object_mut) {
            a.insert("name".into(), Value::from(g.text()));
            a.insert("path".into(), Value::from(g.text()));
        }
    }
    Value::Object(top)
}

/// Manifest-ish YAML from pieces in random order.
fn yaml_soup(g: &mut Gen) -> String {
    const PIECES: &[&str] = &[
        "name: ",
        "actors:",
        "providers:",
        "links:",
        "path: ",
        "instances: ",
        "builtin: ",
        "keyvalue",
        "httpserver",
        "spread:",
        "labels: ",
        "weight: ",
        "values: ",
        "- ",
        "  ",
        "    ",
        "\n",
        "\t",
        "{",
        "}",
        "[",
        "]",
        ", ",
        ": ",
        ":",
        "&a ",
        "*a",
        "*b",
        "!!str ",
        "!!binary ",
        "!tag ",
        "<<: ",
        "---\n",
        "...\n",
        "|\n",
        ">-\n",
        "'",
        "\"",
        "\\",
        "# c",
        "%YAML 1.2\n",
        "%TAG ! x\n",
        "? ",
        "true",
        "1",
        "-1",
        "0",
        "4294967296",
        "~",
        "null",
        "0x10",
        "1e3",
        ".inf",
        ".nan",
        "é",
        "\u{FEFF}",
        "\u{85}",
        "\r\n",
        "=",
        "@",
        "`",
    ];
    let n = g.below(60);
    (0..n)
        .map(|_| {
            if g.one_in(8) {
                g.text()
            } else {
                g.pick(PIECES).to_string()
            }
        })
        .collect()
}

/// YAML nested up to 1,500 deep in block or flow style (serde refuses more than 128
/// levels and libyaml's parser keeps explicit stacks, so 10 times that proves nothing
/// recurses),
/// or aliases that would expand exponentially.
fn deep_or_explosive(g: &mut Gen) -> String {
    let depth = match g.below(3) {
        0 => 100 + g.below(60),
        1 => g.below(500),
        _ => g.below(1_500),
    };
    match g.below(5) {
        0 => format!(
            "name: x\nactors: {}{}",
            "[".repeat(depth),
            "]".repeat(depth)
        ),
        1 => format!("name: {}x{}", "{a: ".repeat(depth), "}".repeat(depth)),
        2 => {
            let mut s = String::from("name: x\nactors:\n");
            for i in 0..depth {
                s.push_str(&" ".repeat(i));
                s.push_str("- \n");
            }
            s
        }
        3 => format!("{}name: x", "- ".repeat(depth)),
        _ => {
            // a0: &a0 [x, x, ...]; a1: &a1 [*a0, *a0, ...]; ... then use the last (the
            // loader keeps aliases as references, and deserializing stops at the first
            // unknown key or wrong type: no expansion).
            let width = 2 + g.below(9);
            let levels = 2 + g.below(12);
            let mut s = format!("a0: &a0 [{}]\n", vec!["x"; width].join(", "));
            for l in 1..levels {
                let refs = vec![format!("*a{}", l - 1); width].join(", ");
                s.push_str(&format!("a{l}: &a{l} [{refs}]\n"));
            }
            s.push_str(&format!("name: x\nactors: *a{}\n", levels - 1));
            s
        }
    }
}

// ---- properties ------------------------------------------------------------------------

// A manifest costs about 0.1 to 0.5 ms to parse in a debug build (libyaml and serde
// unoptimised), so the structured targets run fewer cases than the cheap ones.

proptest! {
    #![proptest_config(config(20_000))]

    #[test]
    fn random_bytes_never_panic(bytes in random_bytes(128)) {
        prop_assert!(parses_cleanly(&String::from_utf8_lossy(&bytes)).is_none());
    }

    #[test]
    fn random_unicode_never_panics(seed in any::<u64>()) {
        let mut g = Gen::new(seed);
        let n = g.below(80);
        let text: String = (0..n).map(|_| g.char()).collect();
        parses_cleanly(&text);
    }
}

proptest! {
    #![proptest_config(config(10_000))]

    #[test]
    fn yaml_soup_never_panics(seed in any::<u64>()) {
        parses_cleanly(&yaml_soup(&mut Gen::new(seed)));
    }
}

proptest! {
    #![proptest_config(config(5_000))]

    #[test]
    fn manifest_shaped_yaml_and_json_never_panic(seed in any::<u64>()) {
        let mut g = Gen::new(seed);
        let value = manifest_shaped(&mut g);
        let text = if g.bool() {
            serde_yaml_ng::to_string(&value).unwrap()
        } else {
            serde_json::to_string(&value).unwrap()
        };
        parses_cleanly(&text);
    }

    #[test]
    fn edited_valid_manifests_never_panic(seed in any::<u64>()) {
        let mut g = Gen::new(seed);
        let m = valid_manifest(&mut g);
        let text = if g.bool() {
            serde_yaml_ng::to_string(&m).unwrap()
        } else {
            serde_json::to_string_pretty(&m).unwrap()
        };
        parses_cleanly(&g.mutate_text(&text, 4));
    }
}

proptest! {
    // Two serializations and two parses per case.
    #![proptest_config(config(2_000))]

    #[test]
    fn valid_manifests_round_trip(seed in any::<u64>()) {
        let m = valid_manifest(&mut Gen::new(seed));
        assert_round_trips(&m);
    }
}

proptest! {
    // Inputs of up to 1,500 levels cost up to ~10 ms each in a debug build.
    #![proptest_config(config(300))]

    #[test]
    fn deep_nesting_and_alias_bombs_are_refused_quickly(seed in any::<u64>()) {
        let text = deep_or_explosive(&mut Gen::new(seed));
        let started = std::time::Instant::now();
        parses_cleanly(&text);
        // Aliases 13 levels of 10 deep stand for 10^13 nodes: never expanded.
        prop_assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }
}

#[test]
fn json_manifests_spell_yaml_line_breaks_as_escapes() {
    // Found by `valid_manifests_round_trip` (not a panic): JSON allows NEL, LS and PS
    // unescaped in a string, the YAML parser takes them for line breaks, so
    // `{"name":"a<NEL>b"}` reads as another name and LS/PS can be a syntax error. The
    // escaped spelling reads as written.
    for (escaped, c) in [
        ("\\u0085", '\u{85}'),
        ("\\u2028", '\u{2028}'),
        ("\\u2029", '\u{2029}'),
    ] {
        let json = format!(r#"{{"name":"a{escaped}b"}}"#);
        assert_eq!(Manifest::parse(&json).unwrap().name, format!("a{c}b"));
    }
}
