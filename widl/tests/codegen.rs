//! The Rust generator as a library: what it refuses (with located diagnostics), naming,
//! gating, determinism, and the build-script helper. The generated code itself is compiled
//! and run by the `nimbus-widl-conformance` crate and the interface crates.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use nimbus_widl::codegen::{Gate, RustOptions, format_rust, generate_rust};
use nimbus_widl::*;

fn program(name: &str, src: &str, loader: &MemoryLoader) -> Program {
    parse_and_check_source(name, src, loader)
}

fn generate(src: &str, options: &RustOptions) -> Result<String, Vec<Diagnostic>> {
    generate_rust(&program("t.widl", src, &MemoryLoader::new()), options)
}

fn both() -> RustOptions {
    RustOptions {
        actor: Some(Gate::Always),
        provider: Some(Gate::Always),
        ..RustOptions::default()
    }
}

/// `(code, line, column)` of the errors.
fn errors(diags: &[Diagnostic]) -> Vec<(&'static str, usize, usize)> {
    diags
        .iter()
        .filter(|d| d.is_error())
        .map(|d| (d.code, d.line, d.column))
        .collect()
}

const KV: &str = r#"namespace "wasmcloud:keyvalue"
role Store {
  "Gets a value"
  Get(key: string): GetResponse
  Set(key: string, value: string, expires: i32): SetResponse
}
type GetResponse { value: string exists: bool }
type SetResponse { value: string }
"#;

#[test]
fn documents_with_errors_are_not_generated() {
    let diags = generate("namespace \"x\"\ntype A { b: Nope }\n", &both()).unwrap_err();
    assert_eq!(errors(&diags), [("undefined-type", 2, 13)]);
}

#[test]
fn generator_limits_are_located_errors() {
    let src = r#"namespace "x"
role Store {
  Watch{key: string}: stream string
  Get(key: string): string
}
type GetArgs { key: string }
type Pair {
  fooBar: string
  foo_bar: string
}
type String { x: i32 }
"#;
    let diags = generate(src, &both()).unwrap_err();
    let errs = errors(&diags);
    assert!(errs.contains(&("unsupported-stream", 3, 3)), "{errs:?}");
    // `Get` needs `GetArgs`, which a type already uses.
    assert!(errs.contains(&("name-collision", 4, 3)), "{errs:?}");
    assert!(errs.contains(&("name-collision", 9, 3)), "{errs:?}");
    assert!(errs.contains(&("name-collision", 11, 6)), "{errs:?}");
    let rendered = render_diagnostics(&program("t.widl", src, &MemoryLoader::new()).files, &diags);
    assert!(rendered.contains("fields `fooBar` and `foo_bar` of `Pair` both become `foo_bar`"));
    assert!(rendered.contains("Rust prelude type `String`"));
}

#[test]
fn a_namespace_is_required_and_option_roles_must_exist() {
    let diags = generate("type A { b: string }\n", &RustOptions::actor()).unwrap_err();
    assert_eq!(errors(&diags), [("no-namespace", 1, 1)]);
    let options = RustOptions {
        actor_roles: vec!["Handler".into()],
        ..RustOptions::provider()
    };
    let diags = generate(KV, &options).unwrap_err();
    assert_eq!(errors(&diags)[0].0, "unknown-role");
    assert!(
        diags[0].message.contains("role `Handler`"),
        "{}",
        diags[0].message
    );
}

#[test]
fn operations_repeated_across_roles_must_agree() {
    // An actor role and a provider role may share an operation name (core's HealthRequest):
    // they are implemented by different parties.
    let split = r#"namespace "x"
role Actor { Health{r: Req}: Res }
role Provider { Health(r: Req): Res }
type Req { a: bool }
type Res { b: bool }
"#;
    let code = generate(split, &both()).unwrap();
    assert_eq!(code.matches("pub const OP_HEALTH: &str").count(), 1);
    assert!(code.contains("pub type HealthHandler = fn(Req)"));
    assert!(code.contains("serialize(&HealthArgs { r })"));
    // Two provider roles merge into the actor's `Host`: there they must agree.
    let same = split.replace(
        "role Actor { Health{r: Req}: Res }",
        "role Cache { Health(r: Req): Res }",
    );
    generate(&same, &both()).unwrap();
    let different = split.replace(
        "role Actor { Health{r: Req}: Res }",
        "role Cache { Health{r: Req}: Res }",
    );
    let diags = generate(&different, &both()).unwrap_err();
    assert_eq!(errors(&diags), [("name-collision", 3, 17)]);
}

#[test]
fn operations_may_not_shadow_the_host_senders_own_methods() {
    // `Host` has `with_host`, `binding` and `raw_call` next to the operation methods.
    let src = r#"namespace "x"
role Store {
  WithHost(): string
  Binding(): string
  RawCall(): string
  Get(): string
}
"#;
    let diags = generate(src, &both()).unwrap_err();
    assert_eq!(
        errors(&diags),
        [
            ("name-collision", 3, 3),
            ("name-collision", 4, 3),
            ("name-collision", 5, 3)
        ]
    );
}

#[test]
fn host_senders_call_through_an_injectable_host() {
    let src = r#"namespace "x"
role Store { Get(key: string): string }
"#;
    let code = generate(src, &both()).unwrap();
    assert!(
        code.contains("pub struct Host<H = ::nimbus_actor::WapcHost>"),
        "{code}"
    );
    assert!(
        code.contains("impl<H: ::nimbus_actor::HostCall> Host<H>"),
        "{code}"
    );
    assert!(
        code.contains("pub fn with_host(binding: &str, host: H) -> Self"),
        "{code}"
    );
    assert!(code.contains("self.raw_call(OP_GET, &payload)?"), "{code}");
    assert!(!code.contains("::nimbus_actor::host_call("), "{code}");
}

#[test]
fn names_follow_the_published_generator() {
    let src = r#"namespace "x"
role Store { ListItemDelete(key: string, value: string): Result }
type Result { newCount: i32 type: string self: bool }
"#;
    // `Result` is the prelude's: refused.
    assert!(generate(src, &both()).is_err());
    let src = src.replace("Result", "ListResponse");
    let code = generate(&src, &both()).unwrap();
    assert!(code.contains("pub struct ListItemDeleteArgs"));
    assert!(code.contains("pub fn list_item_delete(&self, key: String, value: String)"));
    assert!(code.contains("pub const OP_LIST_ITEM_DELETE: &str = \"ListItemDelete\";"));
    assert!(code.contains("#[serde(rename = \"newCount\")]\npub new_count: i32,"));
    assert!(code.contains("pub r#type: String,"));
    assert!(code.contains("pub self_: bool,"));
}

#[test]
fn legacy_scalars_and_references_map_to_real_types() {
    let src = r#"namespace "x"
scalar Opaque
alias Key = i64 @ref
type T {
  a: Opaque
  b: Key
  c: Item @ref
  d: datetime?
  e: [raw]
}
type Item { x: i32 }
"#;
    let code = generate(src, &RustOptions::default()).unwrap();
    assert!(code.contains("pub type Opaque = ::rmpv::Value;"));
    assert!(code.contains("pub type Key = String;"));
    assert!(code.contains("pub c: String,"));
    assert!(code.contains("pub d: Option<::chrono::DateTime<::chrono::Utc>>,"));
    assert!(code.contains("pub e: Vec<::serde_bytes::ByteBuf>,"));
    // `T` holds an rmpv::Value, which has no Default.
    let t = &code[code.find("pub struct T").unwrap() - 120..];
    assert!(!t[..120].contains("Default"), "{t}");
    assert!(code.contains("rmpv (feature with-serde)"));
}

#[test]
fn gated_sides_put_a_cfg_on_every_item() {
    let code = generate(KV, &RustOptions::gated("actor", "provider")).unwrap();
    let code = format_rust(&code, None).unwrap();
    let lines: Vec<&str> = code.lines().collect();
    // Side items follow the codec functions; everything before them is always compiled.
    let sides_start = lines
        .iter()
        .position(|l| l.starts_with("pub fn deserialize"))
        .unwrap();
    let (mut gated, mut ungated) = (0, 0);
    for (i, line) in lines.iter().enumerate() {
        let item_start = !line.is_empty()
            && !line.starts_with([' ', '}', ')', '/', '#'])
            && !line.starts_with("pub fn deserialize");
        if !item_start {
            continue;
        }
        let mut j = i;
        while j > 0 && (lines[j - 1].starts_with("///") || lines[j - 1].starts_with("#[")) {
            j -= 1;
        }
        let cfg = lines[j..i]
            .iter()
            .find(|l| l.starts_with("#[cfg(feature"))
            .copied();
        if i < sides_start {
            assert_eq!(cfg, None, "line {} is gated: {line}", i + 1);
            ungated += 1;
            continue;
        }
        let side = if lines[i..]
            .iter()
            .take_while(|l| **l != "}")
            .any(|l| l.contains("nimbus_provider_sdk"))
        {
            "provider"
        } else {
            "actor"
        };
        assert!(cfg.is_some(), "item at line {} is not gated: {line}", i + 1);
        if line.contains("Host")
            || line.starts_with("pub fn host")
            || line.starts_with("pub fn default")
        {
            assert_eq!(
                cfg,
                Some("#[cfg(feature = \"actor\")]"),
                "line {}: {line}",
                i + 1
            );
        } else if side == "provider" {
            assert_eq!(
                cfg,
                Some("#[cfg(feature = \"provider\")]"),
                "line {}: {line}",
                i + 1
            );
        }
        gated += 1;
    }
    // Host struct, Default, host(), default(), impl Host; trait, dispatcher, two helpers.
    assert_eq!(gated, 9, "{code}");
    assert!(ungated >= 8, "{ungated}");
}

#[test]
fn output_is_deterministic_and_independent_of_the_invocation_path() {
    let common = "namespace \"c\"\ntype Address { street: string }\ntype Money { units: i64 }\n";
    let main = r#"namespace "m"
import { Address as Home Money } from "common.widl"
type Order { home: Home total: Money tags: {string: [string]} }
role Store { Put{order: Order} }
"#;
    let gen_at = |dir: &str| {
        let loader = MemoryLoader::new()
            .with_file(&format!("{dir}common.widl"), common)
            .with_file(&format!("{dir}main.widl"), main);
        generate_rust(&program(&format!("{dir}main.widl"), main, &loader), &both()).unwrap()
    };
    let here = gen_at("");
    assert_eq!(here, gen_at(""));
    assert_eq!(here, gen_at("some/deep/dir/"));
    assert!(
        here.contains(
            "/// `Address` of `common.widl`, imported as `Home`.\npub type Home = Address;"
        )
    );
    assert!(here.contains("pub home: Home,"));
    // Imported but unused definitions are not generated.
    assert!(here.contains("pub struct Money"));
    let loader = MemoryLoader::new().with_file("common.widl", common);
    let only_money = main.replace("home: Home ", "");
    let code = generate_rust(&program("main.widl", &only_money, &loader), &both()).unwrap();
    assert!(!code.contains("pub struct Address"));
}

#[test]
fn format_rust_formats_and_reports_invalid_code() {
    let formatted = format_rust("pub fn  f( )->u8{1}", None).unwrap();
    assert_eq!(formatted, "pub fn f() -> u8 {\n    1\n}\n");
    match format_rust("fn {", None) {
        Err(codegen::FormatError::Failed { stderr, .. }) => assert!(!stderr.is_empty()),
        other => panic!("expected a rustfmt failure, got {other:?}"),
    }
}

#[test]
fn builder_writes_into_the_out_dir_once() {
    let dir = std::env::temp_dir().join(format!("nimbus-widl-builder-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let widl = dir.join("kv-store.widl");
    std::fs::write(&widl, KV).unwrap();
    let builder = build::Builder::new()
        .out_dir(&dir)
        .emit_rerun_if_changed(false);
    let path = builder.compile(&widl).unwrap();
    assert_eq!(path, dir.join("kv_store.rs"));
    let code = std::fs::read_to_string(&path).unwrap();
    assert!(code.contains("#[cfg(feature = \"provider\")]"));
    let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    builder.compile(&widl).unwrap();
    assert_eq!(
        std::fs::metadata(&path).unwrap().modified().unwrap(),
        modified
    );
    // Errors come back rendered, with the file and line.
    std::fs::write(&widl, "namespace \"x\"\ntype A { b: Nope }\n").unwrap();
    let err = builder.compile(&widl).unwrap_err().to_string();
    assert!(err.contains("error[undefined-type]"), "{err}");
    assert!(err.contains("kv-store.widl:2:13"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
