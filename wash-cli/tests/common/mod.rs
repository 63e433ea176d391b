//! Pieces the `wash` process tests share: a `wash up` child that has printed its "ready"
//! line, the host id in that text, a plain HTTP GET against what it serves, and `wash` run
//! in a generated project (`wash new`, `wash build`, `wash dev`).

// Each test binary includes this module and uses a part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use nimbus_tests::auth::Role;
use nimbus_tests::servers::creds_for_url;

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
    try_get(port, path).unwrap()
}

/// [`get`], with a failure (refused, reset, no status line) as an error.
pub fn try_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply)?;
    let status = reply
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no HTTP status line in {reply:?}")))?;
    let body = reply
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_string();
    Ok((status, body))
}

/// The repository checkout these tests run in.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `wash` in `dir`, with its keys in `dir/keys`, building in the actors' target dir (where
/// the SDK is compiled already), and no lattice settings from the environment.
pub fn project_wash(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wash"));
    cmd.current_dir(dir)
        .env("WASH_KEYS", dir.join("keys"))
        .env("CARGO_TARGET_DIR", repo_root().join("actors/target"))
        .env_remove("WASH_NATS_URL")
        .env_remove("WASH_LATTICE")
        .env_remove("WASH_DASHBOARD")
        .env_remove("WASH_CLUSTER_SEED")
        .env_remove("WASH_CLUSTER_ISSUERS");
    cmd
}

/// Gives a `wash` command the creds of `role` on the test server at `url` through the
/// environment (nothing when that server is open): `wash up` and `wash dev`
/// ([`Role::Host`]) also get the provider role's for the providers they start.
pub fn member_env<C: CommandEnv>(cmd: &mut C, url: &str, role: Role) {
    if let Some(creds) = creds_for_url(url, role) {
        cmd.set_env("WASH_NATS_CREDS", creds.as_os_str());
    }
    if role == Role::Host
        && let Some(creds) = creds_for_url(url, Role::Provider)
    {
        cmd.set_env("WASH_PROVIDER_CREDS", creds.as_os_str());
    }
}

/// A process command line, std or tokio, for [`member_env`].
pub trait CommandEnv {
    /// Sets one environment variable of the child.
    fn set_env(&mut self, key: &str, value: &std::ffi::OsStr);
}

impl CommandEnv for Command {
    fn set_env(&mut self, key: &str, value: &std::ffi::OsStr) {
        self.env(key, value);
    }
}

impl CommandEnv for tokio::process::Command {
    fn set_env(&mut self, key: &str, value: &std::ffi::OsStr) {
        self.env(key, value);
    }
}

/// `--creds FILE` of `role` on the test server at `url`, for a command line (empty when
/// that server is open).
pub fn member_args(url: &str, role: Role) -> Vec<String> {
    creds_for_url(url, role)
        .map(|creds| vec!["--creds".to_string(), creds.display().to_string()])
        .unwrap_or_default()
}
