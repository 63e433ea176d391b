//! `wash call --wasm`: the binary, run as a user would.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::path::Path;
use std::process::{Command, Output};

use nimbus_tests::{actor_wasm, signed_actor};

fn wash(args: &[&str], cache: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wash"))
        .args(args)
        .env("WASH_CACHE", cache)
        .env("WASH_KEYS", cache.join("keys"))
        .output()
        .expect("failed to run wash")
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path.to_str().unwrap().to_string()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn calls_a_signed_actor_and_prints_the_raw_response() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = write(dir.path(), "echo.wasm", &signed_actor("echo"));
    let out = wash(
        &["call", "--wasm", &wasm, "Echo", "--data", "héllo"],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout, "héllo".as_bytes());

    let payload: Vec<u8> = (0..=255u8).collect();
    let data = write(dir.path(), "payload.bin", &payload);
    let out = wash(
        &["call", "--wasm", &wasm, "Echo", "--data-file", &data],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        out.stdout, payload,
        "binary payloads pass through untouched"
    );
}

#[test]
fn json_output_carries_text_and_base64() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = write(dir.path(), "echo.wasm", &signed_actor("echo"));
    let out = wash(
        &[
            "call", "--wasm", &wasm, "Echo", "--data", "hi", "--output", "json",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["response"], "hi");
    assert_eq!(json["response_base64"], "aGk=");
    assert_eq!(json["operation"], "Echo");
    assert!(json["actor"].as_str().unwrap().starts_with('M'));
}

#[test]
fn refuses_an_unsigned_actor_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = write(dir.path(), "echo.wasm", &actor_wasm("echo"));
    let out = wash(
        &["call", "--wasm", &wasm, "Echo", "--data", "x"],
        dir.path(),
    );
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let err = stderr(&out);
    assert!(err.contains("not signed"), "{err}");
    assert!(err.contains("--allow-unsigned"), "{err}");

    let out = wash(
        &[
            "call",
            "--wasm",
            &wasm,
            "Echo",
            "--data",
            "x",
            "--allow-unsigned",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout, b"x");
}

#[test]
fn refuses_a_tampered_actor() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = signed_actor("echo");
    let middle = bytes.len() / 3;
    bytes[middle] ^= 0x01;
    let wasm = write(dir.path(), "echo.wasm", &bytes);
    let out = wash(&["call", "--wasm", &wasm, "Echo"], dir.path());
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("modified after signing"), "{err}");
}

#[test]
fn reports_guest_failures_with_a_non_zero_exit() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = write(dir.path(), "echo.wasm", &signed_actor("echo"));
    for (operation, expected) in [
        ("NoSuchOp", "unknown operation"),
        ("Fail", "deliberate failure"),
        ("Trap", "actor trapped"),
    ] {
        let out = wash(&["call", "--wasm", &wasm, operation], dir.path());
        assert!(!out.status.success(), "{operation}");
        assert!(out.stdout.is_empty(), "{operation}");
        let err = stderr(&out);
        assert!(err.contains(expected), "{operation}: {err}");
    }
    let out = wash(
        &["call", "--wasm", &wasm, "Loop", "--timeout-ms", "200"],
        dir.path(),
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("did not finish Loop within"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn reports_files_that_are_not_actors() {
    let dir = tempfile::tempdir().unwrap();
    let text = write(dir.path(), "notes.txt", b"hello");
    let out = wash(&["call", "--wasm", &text, "Echo"], dir.path());
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("not a WebAssembly module"),
        "{}",
        stderr(&out)
    );

    let missing = dir.path().join("missing.wasm");
    let out = wash(
        &["call", "--wasm", missing.to_str().unwrap(), "Echo"],
        dir.path(),
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("failed to read actor module"),
        "{}",
        stderr(&out)
    );
}
