//! `wash new` and `wash build` as a user runs them, in temp dirs.
//!
//! The tests that compile a generated project are `#[ignore]`d: a test never builds while
//! other tests run, so scripts/test.sh runs them on their own after the main run
//! (`cargo test -p wash-cli --test new_build -- --ignored`). They build with
//! CARGO_TARGET_DIR set to the actors' (or the workspace's) target dir, so the SDK and its
//! dependencies are already compiled and a build takes seconds. The others refuse bad input
//! and compile nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};

use nimbus_tests::servers::free_port;

use common::{project_wash as wash, repo_root};

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("failed to run wash")
}

fn ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "wash failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `cmd`, which must fail, and returns its stderr.
fn fails(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        !out.status.success(),
        "wash succeeded: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stderr).unwrap()
}

/// Every file under `dir` with its contents, sorted.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                files.push((path, bytes));
            }
        }
    }
    files.sort();
    files
}

#[test]
fn new_refuses_an_existing_directory_and_overwrites_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let existing = dir.path().join("hello");
    std::fs::create_dir(&existing).unwrap();
    std::fs::write(existing.join("Cargo.toml"), "mine").unwrap();
    std::fs::write(dir.path().join("taken"), "a file").unwrap();
    let before = snapshot(dir.path());

    for args in [
        &["new", "actor", "hello"][..],
        &["new", "actor", "hello", "--template", "kvcounter"],
        &["new", "provider", "hello"],
        &["new", "actor", "other", "--path", "hello"],
        &["new", "actor", "taken"],
    ] {
        let err = fails(wash(dir.path()).args(args));
        assert!(err.contains("already exists"), "{args:?}: {err}");
        assert!(err.contains("nothing was written"), "{args:?}: {err}");
    }
    // Names that are no crate name are refused before anything is created.
    for name in ["1st", "a/b", "../up", "with space", "test"] {
        let err = fails(wash(dir.path()).args(["new", "actor", name]));
        assert!(err.contains("invalid name"), "{name}: {err}");
    }
    assert_eq!(snapshot(dir.path()), before);
}

#[test]
fn build_outside_a_project_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = fails(wash(dir.path()).arg("build"));
    assert!(err.contains("no nimbus.toml in"), "{err}");
    assert!(err.contains("wash new actor NAME"), "{err}");
    let err = fails(wash(dir.path()).args(["build", "--project", "elsewhere"]));
    assert!(err.contains("elsewhere has no nimbus.toml"), "{err}");
    // A broken project file is named, with what is wrong in it.
    std::fs::write(dir.path().join("nimbus.toml"), "[actor]\nnmae = \"x\"\n").unwrap();
    let err = fails(wash(dir.path()).arg("build"));
    assert!(err.contains("invalid project file"), "{err}");
    assert!(err.contains("nmae"), "{err}");
    std::fs::remove_file(dir.path().join("nimbus.toml")).unwrap();
    assert!(snapshot(dir.path()).is_empty(), "wash build wrote files");
}

#[test]
fn new_writes_the_project_and_a_missing_target_names_the_rustup_command() {
    let dir = tempfile::tempdir().unwrap();
    let out = ok(wash(dir.path()).args([
        "--output",
        "json",
        "new",
        "actor",
        "counter",
        "--template",
        "kvcounter",
    ]));
    let out: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(out["kind"], "actor");
    assert_eq!(out["template"], "kvcounter");
    let project = dir.path().join("counter");
    let manifest = std::fs::read_to_string(project.join("Cargo.toml")).unwrap();
    // The SDK and the interface crates by path, from this checkout.
    let root = repo_root().canonicalize().unwrap();
    for rel in [
        "actors/sdk",
        "widl/interfaces/rust/httpserver",
        "widl/interfaces/rust/keyvalue",
    ] {
        let line = format!("path = \"{}\"", root.join(rel).display());
        assert!(manifest.contains(&line), "{line} not in\n{manifest}");
    }
    let project_file = std::fs::read_to_string(project.join("nimbus.toml")).unwrap();
    assert!(
        project_file.contains(r#"capabilities = ["wasmcloud:httpserver", "wasmcloud:keyvalue"]"#),
        "{project_file}"
    );
    // The providers `wash dev` runs, derived from the capabilities.
    for line in [
        "[dev]",
        "port = 8080",
        "builtin = \"httpserver\"",
        "builtin = \"keyvalue\"",
        "values = { backend = \"memory\" }",
    ] {
        assert!(project_file.contains(line), "{line} not in\n{project_file}");
    }
    assert!(project.join("src/lib.rs").is_file());

    // A target whose standard library is not installed: the error is the fix, and cargo
    // never ran (no target dir, nothing built).
    let target = "wasm64-unknown-unknown";
    std::fs::write(
        project.join("nimbus.toml"),
        project_file.replace("wasm32-unknown-unknown", target),
    )
    .unwrap();
    let before = snapshot(&project);
    let err = fails(wash(&project).arg("build"));
    assert!(
        err.contains(&format!("run `rustup target add {target}`")),
        "{err}"
    );
    assert_eq!(snapshot(&project), before);

    // --git writes git dependencies and no lock file.
    let out = ok(wash(dir.path()).args([
        "new",
        "provider",
        "store",
        "--git",
        "https://example.com/nimbus.git",
        "--git-ref",
        "main",
    ]));
    assert!(
        out.contains("git https://example.com/nimbus.git (main)"),
        "{out}"
    );
    let manifest = std::fs::read_to_string(dir.path().join("store/Cargo.toml")).unwrap();
    assert!(
        manifest.contains(r#"nimbus-provider-sdk = { git = "https://example.com/nimbus.git", branch = "main", features = ["nats"] }"#),
        "{manifest}"
    );
    assert!(!dir.path().join("store/Cargo.lock").exists());
}

/// `wash new actor NAME --template TEMPLATE` then `wash build --output json`: the project
/// dir and the signed module.
fn new_and_build(dir: &Path, name: &str, template: &str) -> (PathBuf, serde_json::Value) {
    let started = std::time::Instant::now();
    ok(wash(dir).args(["new", "actor", name, "--template", template]));
    let project = dir.join(name);
    rustfmt_clean(&project);
    let out = ok(wash(&project).args(["--output", "json", "build"]));
    eprintln!("{template}: new + build in {:?}", started.elapsed());
    let out: serde_json::Value = serde_json::from_str(&out).unwrap();
    let signed = PathBuf::from(out["output"].as_str().unwrap());
    assert_eq!(signed, project.join("build").join(format!("{name}_s.wasm")));
    assert!(signed.is_file());
    (project, out)
}

/// The generated sources are as `cargo fmt` would write them.
fn rustfmt_clean(project: &Path) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["fmt", "--check"])
        .current_dir(project)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "the generated sources are not rustfmt-clean"
    );
}

/// A `wash up` of `manifest`, killed on drop.
struct Up(Child);

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn up(dir: &Path, manifest: &str) -> Up {
    let path = dir.join("app.yaml");
    std::fs::write(&path, manifest).unwrap();
    let (child, _) = common::spawn_until_ready(wash(dir).arg("up").arg(&path));
    Up(child)
}

/// A msgpack `wasmcloud:httpserver` Request for `GET path`.
fn http_request(path: &str) -> Vec<u8> {
    fn str(out: &mut Vec<u8>, s: &str) {
        assert!(s.len() < 32);
        out.push(0xa0 | s.len() as u8);
        out.extend_from_slice(s.as_bytes());
    }
    let mut out = vec![0x85];
    for (key, value) in [("method", "GET"), ("path", path), ("queryString", "")] {
        str(&mut out, key);
        str(&mut out, value);
    }
    str(&mut out, "header");
    out.push(0x80);
    str(&mut out, "body");
    out.extend_from_slice(&[0xc4, 0]);
    out
}

#[test]
#[ignore = "builds a generated actor; scripts/test.sh runs it after the main run"]
fn hello_template_builds_signs_and_answers() {
    let dir = tempfile::tempdir().unwrap();
    let (project, out) = new_and_build(dir.path(), "hello", "hello");
    let signed = PathBuf::from(out["output"].as_str().unwrap());
    assert_eq!(out["signed"]["capabilities"][0], "wasmcloud:httpserver");

    // The claims are the project file's.
    let inspect = ok(wash(&project)
        .args(["--output", "json", "claims", "inspect"])
        .arg(&signed));
    let claims: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(claims["name"], "hello");
    assert_eq!(claims["call_alias"], "hello");
    assert_eq!(claims["version"], "0.1.0");
    assert_eq!(claims["valid"], true);

    // Run in-process: the actor answers HandleRequest.
    let request = dir.path().join("request.bin");
    std::fs::write(&request, http_request("/there")).unwrap();
    let response = ok(wash(&project)
        .args(["call", "HandleRequest", "--wasm"])
        .arg(&signed)
        .arg("--data-file")
        .arg(&request));
    assert!(
        response.contains("Hello from hello! You asked for /there"),
        "{response}"
    );

    // A second build signs with the same module key (the project's identity).
    let again = ok(wash(&project).args(["--output", "json", "build"]));
    let again: serde_json::Value = serde_json::from_str(&again).unwrap();
    assert_eq!(again["signed"]["module"], out["signed"]["module"]);
    assert_eq!(again["signed"]["module_key"]["source"], "stored");

    // A compile error: wash build fails with the compiler's message and leaves the signed
    // module of the last good build as it was.
    let good = std::fs::read(&signed).unwrap();
    let lib = project.join("src/lib.rs");
    let source = std::fs::read_to_string(&lib).unwrap();
    std::fs::write(&lib, source.replace("Ok(response)", "Ok(response")).unwrap();
    let err = fails(wash(&project).arg("build"));
    assert!(err.contains("error"), "{err}");
    assert!(err.contains("cargo build failed"), "{err}");
    assert_eq!(std::fs::read(&signed).unwrap(), good);
    std::fs::write(&lib, source).unwrap();

    // Over real HTTP, in a standalone host.
    let port = free_port();
    let _up = up(
        &project,
        &format!(
            "name: hello\nactors:\n  - name: hello\n    path: build/hello_s.wasm\nproviders:\n  - name: http\n    builtin: httpserver\nlinks:\n  - actor: hello\n    provider: http\n    values: {{ port: \"{port}\" }}\n"
        ),
    );
    let (status, body) = common::get(port, "/web");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, "Hello from hello! You asked for /web\n");
}

#[test]
#[ignore = "builds a generated actor; scripts/test.sh runs it after the main run"]
fn kvcounter_template_builds_and_counts_in_the_key_value_store() {
    let dir = tempfile::tempdir().unwrap();
    let (project, out) = new_and_build(dir.path(), "counter", "kvcounter");
    assert_eq!(out["signed"]["capabilities"][1], "wasmcloud:keyvalue");
    let port = free_port();
    let _up = up(
        &project,
        &format!(
            "name: counter\nactors:\n  - name: counter\n    path: build/counter_s.wasm\nproviders:\n  - name: http\n    builtin: httpserver\n  - name: kv\n    builtin: keyvalue\nlinks:\n  - actor: counter\n    provider: http\n    values: {{ port: \"{port}\" }}\n  - actor: counter\n    provider: kv\n    values: {{ backend: memory }}\n"
        ),
    );
    assert_eq!(
        common::get(port, "/a"),
        (200, r#"{"counter":1}"#.to_string())
    );
    assert_eq!(
        common::get(port, "/a"),
        (200, r#"{"counter":2}"#.to_string())
    );
    assert_eq!(
        common::get(port, "/b"),
        (200, r#"{"counter":1}"#.to_string())
    );
}

#[test]
#[ignore = "compiles a generated provider; scripts/test.sh runs it after the main run"]
fn provider_template_builds_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    ok(wash(dir.path()).args([
        "new",
        "provider",
        "greeter",
        "--contract-id",
        "example:greeter",
    ]));
    let project = dir.path().join("greeter");
    rustfmt_clean(&project);
    let lib = std::fs::read_to_string(project.join("src/lib.rs")).unwrap();
    assert!(lib.contains("pub struct GreeterProvider"), "{lib}");
    assert!(
        lib.contains(r#"CONTRACT_ID: &str = "example:greeter""#),
        "{lib}"
    );
    // `wash build --debug` in the workspace's own target dir, where the provider SDK is
    // compiled already (test.sh built the provider binaries).
    let started = std::time::Instant::now();
    let out = ok(wash(&project)
        .args(["--output", "json", "build", "--debug"])
        .env("CARGO_TARGET_DIR", repo_root().join("target")));
    eprintln!("provider: wash build --debug in {:?}", started.elapsed());
    let out: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(out["kind"], "provider");
    let binary = PathBuf::from(out["output"].as_str().unwrap());
    assert_eq!(binary, project.join("build/greeter"));
    // The binary runs: started by hand, without host data on stdin, it says what it
    // misses and exits non-zero.
    let run = Command::new(&binary)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!run.status.success());
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(err.contains("greeter"), "{err}");
}
