//! `wash up` as a user runs it: a real `wash` process deploying an app manifest
//! (kvcounter + the built-in HTTP server and key-value providers) in standalone mode,
//! answering real HTTP, stopping on SIGINT, and keeping file-backed data across restarts.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use nimbus_tests::servers::free_port;

fn wash() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wash"))
}

fn manifest(dir: &Path, port: u16) -> std::path::PathBuf {
    let wasm = dir.join("kvcounter.wasm");
    std::fs::write(&wasm, nimbus_tests::actor_wasm("kvcounter")).unwrap();
    let text = format!(
        r#"name: counter
actors:
  - name: kvcounter
    path: kvcounter.wasm
    instances: 2
    capabilities: [wasmcloud:httpserver, wasmcloud:keyvalue]
providers:
  - name: http
    builtin: httpserver
  - name: kv
    builtin: keyvalue
links:
  - actor: kvcounter
    provider: http
    values: {{ port: "{port}" }}
  - actor: kvcounter
    provider: kv
    values: {{ backend: file, path: data }}
"#
    );
    let path = dir.join("app.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A running `wash up`, stopped with SIGINT on drop.
struct Up {
    child: Child,
}

impl Up {
    /// Starts `wash up` in `dir` and waits for its "ready" line.
    fn start(dir: &Path) -> (Up, String) {
        let mut child = wash()
            .arg("up")
            .current_dir(dir)
            .env("WASH_KEYS", dir.join("keys"))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut text = String::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                text.push_str(&line);
                text.push('\n');
                if line.starts_with("ready") {
                    let _ = tx.send(text.clone());
                }
            }
        });
        let text = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("wash up did not become ready");
        (Up { child }, text)
    }

    /// Sends SIGINT and waits for a clean exit.
    fn interrupt(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-INT", &pid]).status().unwrap();
        let status = self.child.wait().unwrap();
        std::mem::forget(self);
        status
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn get(port: u16, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    let status = reply.split(' ').nth(1).unwrap().parse().unwrap();
    let body = reply
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_string();
    (status, body)
}

#[test]
fn wash_up_runs_the_manifest_and_file_data_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    manifest(dir.path(), port);

    let (up, text) = Up::start(dir.path());
    assert!(text.contains("running standalone"), "{text}");
    assert!(text.contains("(signed now)"), "{text}");
    assert!(
        text.contains(&format!("listening on http://127.0.0.1:{port}/")),
        "{text}"
    );
    assert_eq!(get(port, "/visits"), (200, r#"{"counter":1}"#.to_string()));
    assert_eq!(get(port, "/visits"), (200, r#"{"counter":2}"#.to_string()));
    assert_eq!(get(port, "/other"), (200, r#"{"counter":1}"#.to_string()));
    assert!(up.interrupt().success(), "wash up did not exit cleanly");
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());

    // Same keys, same data directory: the count goes on, and the module is signed with the
    // same key as before.
    let (up, again) = Up::start(dir.path());
    let actor_line = |t: &str| {
        t.lines()
            .find(|l| l.contains("actor    kvcounter"))
            .unwrap()
            .to_string()
    };
    assert_eq!(actor_line(&text), actor_line(&again));
    assert_eq!(get(port, "/visits"), (200, r#"{"counter":3}"#.to_string()));
    assert!(up.interrupt().success());
}

#[test]
fn wash_up_reports_manifest_mistakes_and_missing_modules() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "name: x\nactors:\n  - { name: a, path: a.wasm }\nlinks:\n  - { actor: b, provider: p }\n",
    )
    .unwrap();
    let out = wash()
        .args(["up", "--dry-run"])
        .arg(&bad)
        .env("WASH_KEYS", dir.path().join("keys"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("links[0].actor: no actor named `b`"), "{err}");
    assert!(
        err.contains("links[0].provider: no provider named `p`"),
        "{err}"
    );

    let missing = dir.path().join("missing.yaml");
    std::fs::write(
        &missing,
        "name: x\nactors:\n  - { name: a, path: nope.wasm }\n",
    )
    .unwrap();
    let out = wash()
        .args(["up", "--dry-run"])
        .arg(&missing)
        .env("WASH_KEYS", dir.path().join("keys"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("failed to read actor `a`"), "{err}");
    assert!(err.contains("scripts/build-actors.sh"), "{err}");
}

#[test]
fn wash_up_dry_run_prints_json() {
    let dir = tempfile::tempdir().unwrap();
    let path = manifest(dir.path(), free_port());
    let out = wash()
        .args(["--output", "json", "up", "--dry-run"])
        .arg(&path)
        .current_dir(dir.path())
        .env("WASH_KEYS", dir.path().join("keys"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["mode"], "standalone");
    assert_eq!(json["app"], "counter");
    assert_eq!(json["actors"][0]["name"], "kvcounter");
    assert_eq!(json["links"].as_array().unwrap().len(), 2);
}
