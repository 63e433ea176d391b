//! Pieces the `wash` process tests share: a `wash up` child that has printed its "ready"
//! line, the host id in that text, and a plain HTTP GET against what it serves.

// Each test binary includes this module and uses a part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Spawns `cmd` (a `wash up` command line, stdout piped here, stderr inherited) and waits
/// up to 60 s for its "ready" line; returns the child and everything it printed so far.
pub fn spawn_until_ready(cmd: &mut Command) -> (Child, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("failed to start wash up");
    let stdout = child.stdout.take().expect("stdout is piped");
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
    (child, text)
}

/// The `N...` host id of `wash up`'s first line (`host N... joined lattice ...`).
pub fn host_id(ready_text: &str) -> String {
    ready_text
        .split_whitespace()
        .nth(1)
        .filter(|id| id.starts_with('N'))
        .unwrap_or_else(|| panic!("no host id in: {ready_text}"))
        .to_string()
}

/// `GET path` on 127.0.0.1:`port` with `Connection: close`; the status and the body.
pub fn get(port: u16, path: &str) -> (u16, String) {
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
