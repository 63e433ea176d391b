//! The dashboard from the command line: `wash ui` against a lattice of two `wash up`
//! hosts (started with `--dashboard` themselves), and `wash up --dashboard` on a port in
//! use.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use nimbus_tests::auth::Role;

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use nimbus_tests::servers::NatsServer;

/// `wash` with its keys and home under `dir` (no lattice credentials of this machine).
fn wash(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wash"));
    cmd.current_dir(dir)
        .env("HOME", dir)
        .env("WASH_KEYS", dir.join("keys"))
        .env_remove("WASH_NATS_URL")
        .env_remove("WASH_NATS_CREDS")
        .env_remove("WASH_CLUSTER_SEED")
        .env_remove("WASH_CLUSTER_ISSUERS")
        .env_remove("WASH_DASHBOARD");
    cmd
}

/// A child process stopped on drop: SIGTERM first, so a `wash up --nats-server` stops
/// the nats-server it started; SIGKILL if it is still there after 20 s.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The port of the `dashboard at http://127.0.0.1:PORT/` line.
fn dashboard_port(text: &str, prefix: &str) -> u16 {
    text.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|url| {
            url.trim_start_matches("http://")
                .trim_end_matches('/')
                .rsplit_once(':')
        })
        .and_then(|(_, port)| port.parse().ok())
        .unwrap_or_else(|| panic!("no `{prefix}URL` line in: {text}"))
}

/// Polls `/api/snapshot` on `port` until `ready` holds (20 s at most).
fn wait_view(
    port: u16,
    what: &str,
    ready: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let last = match common::try_get(port, "/api/snapshot") {
            Ok((200, body)) => {
                let view: serde_json::Value = serde_json::from_str(&body).unwrap();
                if ready(&view) {
                    return view;
                }
                view.to_string()
            }
            Ok((status, body)) => format!("{status} {body}"),
            Err(e) => e.to_string(),
        };
        assert!(
            Instant::now() < deadline,
            "the dashboard never showed {what}; last: {last}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn wash_ui_shows_both_hosts_of_a_lattice_with_their_metrics() {
    let nats = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let lattice = format!("ui-{}", std::process::id());
    let mut hosts = Vec::new();
    let mut ids = Vec::new();
    for name in ["one", "two"] {
        let home = dir.path().join(name);
        std::fs::create_dir_all(&home).unwrap();
        let mut cmd = wash(&home);
        cmd.args(["up", "--nats-url", &nats.url(), "--lattice", &lattice])
            .args(["--no-reconciler", "--dashboard", "127.0.0.1:0"])
            .env("WASH_KEYS", dir.path().join("keys"));
        common::member_env(&mut cmd, &nats.url(), Role::Host);
        let (child, text) = common::spawn_until_ready(&mut cmd);
        hosts.push(Running(child));
        ids.push(common::host_id(&text));
        // Each host's own dashboard shows the lattice too (lattice mode reads NATS).
        dashboard_port(&text, "dashboard at ");
    }
    let mut ui = wash(dir.path());
    ui.args(["ui", "--nats-url", &nats.url(), "--lattice", &lattice])
        .args(["--addr", "127.0.0.1:0"]);
    // Only what an observer may read.
    common::member_env(&mut ui, &nats.url(), Role::Observer);
    let (child, text) = common::spawn_until_ready(&mut ui);
    let _ui = Running(child);
    assert!(
        text.contains(&format!("dashboard of lattice `{lattice}` at ")),
        "{text}"
    );
    let port = dashboard_port(&text, &format!("dashboard of lattice `{lattice}` at "));
    // A round where both hosts answered everything in time (a reply may miss one).
    let view = wait_view(port, "both hosts with their statistics", |v| {
        v["hosts"].as_array().is_some_and(|h| {
            h.len() == 2
                && h.iter()
                    .all(|h| h["metrics"] == true && h["stats_error"].is_null())
        })
    });
    assert_eq!(view["mode"], "lattice");
    for id in &ids {
        let host = view["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["id"] == id.as_str())
            .unwrap_or_else(|| panic!("host {id} missing: {view:#}"));
        assert_eq!(
            host["metrics"], true,
            "--dashboard turns metrics on: {host:#}"
        );
        assert_eq!(host["stats_error"], serde_json::Value::Null);
    }
}

#[test]
fn wash_up_dashboard_on_a_port_in_use_fails_naming_the_address_and_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = wash(dir.path())
        .args(["up", "--dashboard", &addr])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "failed to start the dashboard (--dashboard): cannot serve the dashboard on {addr}"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("give another address"), "{stderr}");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("ready"),
        "nothing started"
    );
}

#[test]
fn wash_ui_with_observer_credentials_reads_an_authenticated_lattice() {
    let dir = tempfile::tempdir().unwrap();
    let lattice = format!("uiauth-{}", std::process::id());
    let port = nimbus_tests::servers::free_port();
    // `wash up --nats-server` makes the lattice's credentials (as `wash lattice init`
    // does) and runs a nats-server that admits only them.
    let mut up = wash(dir.path());
    up.args([
        "up",
        "--nats-server",
        &port.to_string(),
        "--lattice",
        &lattice,
    ])
    .args(["--no-reconciler", "--dashboard", "127.0.0.1:0"])
    .arg("--nats-store")
    .arg(dir.path().join("js"))
    .env(
        "NATS_SERVER",
        nimbus_tests::servers::find_binary("NATS_SERVER", "nats-server"),
    );
    let (child, text) = common::spawn_until_ready(&mut up);
    let _up = Running(child);
    let host_id = common::host_id(&text);
    let observer = dir
        .path()
        .join(".wash/lattices")
        .join(&lattice)
        .join("observer.creds");
    assert!(observer.is_file(), "no {}: {text}", observer.display());

    let mut ui = wash(dir.path());
    ui.args(["ui", "--nats-url", &format!("nats://127.0.0.1:{port}")])
        .args(["--lattice", &lattice, "--addr", "127.0.0.1:0", "--creds"])
        .arg(&observer);
    let (child, text) = common::spawn_until_ready(&mut ui);
    let _ui = Running(child);
    let port = dashboard_port(&text, &format!("dashboard of lattice `{lattice}` at "));
    // The observer may ping, read inventories, links and the stats query, and follow
    // the events: the host shows with its call metrics and no error.
    let view = wait_view(port, "the host with its statistics", |v| {
        v["hosts"].as_array().is_some_and(|h| {
            h.iter()
                .any(|h| h["id"] == host_id.as_str() && h["metrics"] == true)
        })
    });
    assert!(view["problems"].as_array().unwrap().is_empty(), "{view:#}");
    let host = &view["hosts"][0];
    assert_eq!(host["stats_error"], serde_json::Value::Null, "{host:#}");
}
