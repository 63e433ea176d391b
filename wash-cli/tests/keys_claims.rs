//! `wash keys` and `wash claims`: the binary, run as a user would.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use nimbus_core::claims::{self, ActorClaimsParams, ClaimsError, TimeSpec};
use nimbus_core::keys::{KeyKind, KeyPair, parse_public_key};
use serde_json::Value;

/// A minimal valid module: one function returning 42.
const MODULE: &[u8] = b"\0asm\x01\0\0\0\
    \x01\x05\x01\x60\x00\x01\x7f\
    \x03\x02\x01\x00\
    \x0a\x06\x01\x04\x00\x41\x2a\x0b";

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        Env {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn keys(&self) -> PathBuf {
        self.dir.path().join("keys")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, bytes: &[u8]) -> String {
        let path = self.path(name);
        std::fs::write(&path, bytes).unwrap();
        path.to_str().unwrap().to_string()
    }

    fn wash(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_wash"))
            .args(args)
            .env("WASH_KEYS", self.keys())
            .env("USER", "alice")
            .env_remove("WASH_ISSUER_KEY")
            .env_remove("WASH_SUBJECT_KEY")
            .output()
            .expect("failed to run wash")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.wash(args);
        assert!(
            out.status.success(),
            "wash {args:?} failed: {}",
            stderr(&out)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.extend(["--output", "json"]);
        serde_json::from_str(&self.ok(&args)).unwrap()
    }

    fn fails(&self, args: &[&str]) -> String {
        let out = self.wash(args);
        assert!(!out.status.success(), "wash {args:?} should fail");
        stderr(&out)
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn keys_gen_prints_public_key_and_seed() {
    let env = Env::new();
    for (name, kind) in [
        ("account", KeyKind::Account),
        ("module", KeyKind::Module),
        ("service", KeyKind::Service),
        ("server", KeyKind::Server),
        ("cluster", KeyKind::Cluster),
        ("operator", KeyKind::Operator),
        ("user", KeyKind::User),
    ] {
        let json = env.json(&["keys", "gen", name]);
        let pk = json["public_key"].as_str().unwrap();
        let seed = json["seed"].as_str().unwrap();
        assert_eq!(parse_public_key(pk).unwrap(), kind);
        assert_eq!(KeyPair::from_seed(seed).unwrap().public_key(), pk);

        let text = env.ok(&["keys", "gen", name]);
        assert!(
            text.contains(&format!("Public Key: {}", kind.prefix())),
            "{text}"
        );
        assert!(
            text.contains(&format!("Seed: S{}", kind.prefix())),
            "{text}"
        );
    }
    // Nothing is stored by `gen`.
    assert!(!env.keys().exists());
    let err = env.fails(&["keys", "gen", "provider"]);
    assert!(err.contains("possible values"), "{err}");
}

#[test]
fn sign_generates_stores_and_reuses_keys() {
    let env = Env::new();
    let src = env.write("echo.wasm", MODULE);
    let json = env.json(&[
        "claims",
        "sign",
        &src,
        "--name",
        "Echo",
        "--ver",
        "0.1.0",
        "--rev",
        "3",
        "--cap",
        "wasmcloud:httpserver",
        "--cap",
        "wasmcloud:keyvalue",
        "--tag",
        "demo",
        "--call-alias",
        "Echo Svc",
    ]);
    let dest = env.path("echo_s.wasm");
    assert_eq!(json["destination"], dest.to_str().unwrap());
    assert_eq!(json["module_key"]["source"], "generated");
    assert_eq!(json["account_key"]["source"], "generated");
    let module_file = env.keys().join("echo_module.nk");
    let account_file = env.keys().join("alice_account.nk");
    assert_eq!(json["module_key"]["path"], module_file.to_str().unwrap());
    assert_eq!(json["account_key"]["path"], account_file.to_str().unwrap());
    assert_eq!(mode(&env.keys()), 0o700);
    assert_eq!(mode(&module_file), 0o600);
    assert_eq!(mode(&account_file), 0o600);
    let module_key = json["module"].as_str().unwrap().to_string();
    let account_key = json["account"].as_str().unwrap().to_string();
    assert_eq!(
        KeyPair::from_seed(&std::fs::read_to_string(&module_file).unwrap())
            .unwrap()
            .public_key(),
        module_key
    );

    // The signed module verifies with the library and carries what was asked for.
    let signed = std::fs::read(&dest).unwrap();
    let token = claims::verify_actor(&signed, claims::unix_now()).unwrap();
    let meta = &token.claims.wascap;
    assert_eq!(token.claims.sub, module_key);
    assert_eq!(token.claims.iss, account_key);
    assert_eq!(meta.name.as_deref(), Some("Echo"));
    assert_eq!(
        meta.caps,
        Some(vec![
            "wasmcloud:httpserver".to_string(),
            "wasmcloud:keyvalue".to_string()
        ])
    );
    assert_eq!(meta.call_alias.as_deref(), Some("echo_svc"));
    assert_eq!(json["hash"], meta.hash.as_str());

    // Signing again reuses both keys; the text output says so.
    let out = env.path("other.wasm");
    let text = env.ok(&[
        "claims",
        "sign",
        &src,
        "--name",
        "Echo",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(
        text.contains(&format!("{module_key} (reused from ")),
        "{text}"
    );
    assert!(
        text.contains(&format!("{account_key} (reused from ")),
        "{text}"
    );
    assert!(text.contains("add --cap"), "no caps is pointed out: {text}");
    let again = claims::verify_actor(&std::fs::read(&out).unwrap(), claims::unix_now()).unwrap();
    assert_eq!(again.claims.sub, module_key);
    assert_eq!(again.claims.wascap.caps, Some(vec![]));

    // `keys list` and `keys get` see the stored keys.
    let list = env.json(&["keys", "list"]);
    let keys = list["keys"].as_array().unwrap();
    let names: Vec<&str> = keys.iter().map(|k| k["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["alice_account", "echo_module"]);
    assert_eq!(keys[0]["key_type"], "account");
    assert_eq!(keys[0]["public_key"], account_key.as_str());
    assert!(
        keys.iter().all(|k| k.get("seed").is_none()),
        "list never shows seeds"
    );
    let text = env.ok(&["keys", "list"]);
    assert!(
        text.contains("echo_module") && text.contains(&module_key),
        "{text}"
    );

    for name in ["echo_module", "echo_module.nk"] {
        let got = env.json(&["keys", "get", name]);
        assert_eq!(got["public_key"], module_key.as_str());
        assert_eq!(
            got["seed"].as_str().unwrap(),
            std::fs::read_to_string(&module_file).unwrap().trim()
        );
    }
    let err = env.fails(&["keys", "get", "missing"]);
    assert!(err.contains("wash keys list"), "{err}");
}

#[test]
fn sign_with_given_keys() {
    let env = Env::new();
    let src = env.write("hello.wasm", MODULE);
    let account = KeyPair::generate(KeyKind::Account);
    let module = KeyPair::generate(KeyKind::Module);
    let module_file = env.write("subject.nk", module.seed().unwrap().as_bytes());
    let json = env.json(&[
        "claims",
        "sign",
        &src,
        "--name",
        "hello",
        "--issuer",
        &account.seed().unwrap(),
        "--subject",
        &module_file,
        "--disable-keygen",
    ]);
    assert_eq!(json["account"], account.public_key().as_str());
    assert_eq!(json["module"], module.public_key().as_str());
    assert_eq!(json["account_key"]["source"], "given");
    assert!(!env.keys().exists(), "no key generated or stored");

    // Keys of the wrong type, garbage and missing keys are refused clearly.
    let err = env.fails(&[
        "claims",
        "sign",
        &src,
        "--name",
        "x",
        "--issuer",
        &module.seed().unwrap(),
    ]);
    assert!(err.contains("must be of type account"), "{err}");
    let err = env.fails(&[
        "claims",
        "sign",
        &src,
        "--name",
        "x",
        "--issuer",
        "SAnotaseed",
    ]);
    assert!(err.contains("58 characters"), "{err}");
    assert!(
        !err.contains("SAnotaseed"),
        "the value is never echoed: {err}"
    );
    let err = env.fails(&["claims", "sign", &src, "--name", "x", "--disable-keygen"]);
    assert!(err.contains("--subject"), "{err}");
}

#[test]
fn inspect_prints_all_fields() {
    let env = Env::new();
    let src = env.write("echo.wasm", MODULE);
    env.ok(&[
        "claims",
        "sign",
        &src,
        "--name",
        "Echo",
        "--ver",
        "1.2.3",
        "--rev",
        "7",
        "--cap",
        "wasmcloud:httpserver",
        "--tag",
        "a",
        "--tag",
        "b",
        "--call-alias",
        "echo",
        "--expires-in",
        "10",
    ]);
    let dest = env.path("echo_s.wasm");
    let dest = dest.to_str().unwrap();
    let json = env.json(&["claims", "inspect", dest]);
    assert!(json["module"].as_str().unwrap().starts_with('M'));
    assert!(json["account"].as_str().unwrap().starts_with('A'));
    assert_eq!(json["name"], "Echo");
    assert_eq!(json["hash"].as_str().unwrap().len(), 64);
    assert_eq!(
        json["capabilities"],
        serde_json::json!(["wasmcloud:httpserver"])
    );
    assert_eq!(json["version"], "1.2.3");
    assert_eq!(json["revision"], 7);
    assert_eq!(json["tags"], serde_json::json!(["a", "b"]));
    assert_eq!(json["call_alias"], "echo");
    assert!(json["issued"].as_str().unwrap().ends_with(" UTC"));
    assert!(json["expires"].as_str().unwrap().ends_with(" UTC"));
    assert_eq!(json["not_before"], Value::Null);
    assert_eq!(
        json["expires_at"].as_u64().unwrap() - json["issued_at"].as_u64().unwrap(),
        10 * 86_400
    );
    assert_eq!(json["valid"], true);

    let text = env.ok(&["claims", "inspect", dest]);
    for needle in [
        "Name:",
        "Echo",
        "Module:",
        "Account:",
        "Hash:",
        "Capabilities:",
        "wasmcloud:httpserver",
        "Version:",
        "1.2.3",
        "Revision:",
        "7",
        "Tags:",
        "a, b",
        "Call alias:",
        "Issued:",
        "Expires:",
        "(in 10 days)",
        "Not before:",
        "immediately",
        "Status:",
        "valid",
    ] {
        assert!(text.contains(needle), "missing {needle}: {text}");
    }
    let jwt = env.ok(&["claims", "inspect", dest, "--jwt-only"]);
    assert_eq!(jwt.trim().split('.').count(), 3);
}

#[test]
fn inspect_reports_invalid_claims() {
    let env = Env::new();

    // Unsigned and non-wasm files.
    let unsigned = env.write("plain.wasm", MODULE);
    let err = env.fails(&["claims", "inspect", &unsigned]);
    assert!(
        err.contains("not signed") && err.contains("wash claims sign"),
        "{err}"
    );
    let text = env.write("notes.txt", b"hello");
    let err = env.fails(&["claims", "inspect", &text]);
    assert!(err.contains("not a WebAssembly module"), "{err}");
    assert_eq!(err.matches("not a WebAssembly module").count(), 1, "{err}");

    // Tampered after signing.
    let src = env.write("echo.wasm", MODULE);
    env.ok(&["claims", "sign", &src, "--name", "Echo"]);
    let mut signed = std::fs::read(env.path("echo_s.wasm")).unwrap();
    let pos = signed.windows(2).position(|w| w == [0x41, 0x2a]).unwrap();
    signed[pos + 1] = 0x2b;
    let tampered = env.write("tampered.wasm", &signed);
    let out = env.wash(&["claims", "inspect", &tampered, "--output", "json"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("modified after signing"),
        "{}",
        stderr(&out)
    );
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["valid"], false);
    assert!(
        json["error"]
            .as_str()
            .unwrap()
            .contains("modified after signing")
    );

    // Not valid yet.
    env.ok(&[
        "claims",
        "sign",
        &src,
        "--name",
        "Echo",
        "--not-before",
        "2",
        "-d",
        env.path("later.wasm").to_str().unwrap(),
    ]);
    let err = env.fails(&[
        "claims",
        "inspect",
        env.path("later.wasm").to_str().unwrap(),
    ]);
    assert!(err.contains("not valid before"), "{err}");

    // Expired (signed through the library with an old issue date).
    let expired = claims::sign_actor(
        MODULE,
        &ActorClaimsParams {
            name: Some("old".into()),
            issued_at: Some(1_600_000_000),
            expires: Some(TimeSpec::days(1)),
            ..Default::default()
        },
        &KeyPair::generate(KeyKind::Account),
        &KeyPair::generate(KeyKind::Module),
    )
    .unwrap();
    assert!(matches!(
        claims::verify_actor(&expired, claims::unix_now()),
        Err(ClaimsError::Expired { .. })
    ));
    let expired = env.write("expired.wasm", &expired);
    let out = env.wash(&["claims", "inspect", &expired]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("expired at 2020-09-14 12:26:40 UTC"), "{err}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("INVALID"), "{text}");
}
