//! `wash up` as a user runs it: a real `wash` process deploying an app manifest
//! (kvcounter + the built-in HTTP server and key-value providers) in standalone mode,
//! answering real HTTP, stopping on SIGINT, and keeping file-backed data across restarts;
//! `wash up --nats-server` keeping its JetStream (the lattice bucket, `backend=nats` data)
//! across restarts; and several `wash up --nats-url` hosts forming one lattice with no seed
//! passed by hand.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use nimbus_tests::auth::Role;

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command};
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
        let mut cmd = wash();
        cmd.arg("up")
            .current_dir(dir)
            .env("WASH_KEYS", dir.join("keys"));
        Up::spawn(cmd)
    }

    /// Runs `cmd` (a `wash up` command line) and waits for its "ready" line.
    fn spawn(mut cmd: Command) -> (Up, String) {
        cmd.env_remove("WASH_CLUSTER_SEED")
            .env_remove("WASH_CLUSTER_ISSUERS");
        let (child, text) = common::spawn_until_ready(&mut cmd);
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
    assert_eq!(
        common::get(port, "/visits"),
        (200, r#"{"counter":1}"#.to_string())
    );
    assert_eq!(
        common::get(port, "/visits"),
        (200, r#"{"counter":2}"#.to_string())
    );
    assert_eq!(
        common::get(port, "/other"),
        (200, r#"{"counter":1}"#.to_string())
    );
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
    assert_eq!(
        common::get(port, "/visits"),
        (200, r#"{"counter":3}"#.to_string())
    );
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

/// `wash` against the lattice `lattice` at `nats`, with keys directory `keys`; returns
/// stdout, panicking with stderr on failure.
fn wash_ok(nats: &str, lattice: &str, keys: &Path, args: &[&str]) -> String {
    let out = wash_at(nats, lattice, keys, args);
    assert!(
        out.status.success(),
        "wash {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn wash_at(nats: &str, lattice: &str, keys: &Path, args: &[&str]) -> std::process::Output {
    let mut cmd = wash();
    common::member_env(&mut cmd, nats, Role::Wash);
    cmd.args(args)
        .env("WASH_NATS_URL", nats)
        .env("WASH_LATTICE", lattice)
        .env("WASH_KEYS", keys)
        .env_remove("WASH_CLUSTER_SEED")
        .output()
        .unwrap()
}

/// `wash up --nats-url` in its own directory (no manifest there) with keys directory `keys`;
/// returns the running host and its id.
fn lattice_host(
    nats: &str,
    lattice: &str,
    keys: &Path,
    dir: &Path,
    name: &str,
) -> (Up, String, String) {
    let dir = dir.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let mut cmd = wash();
    cmd.args(["up", "--nats-url", nats, "--lattice", lattice, "--label"])
        .arg(format!("name={name}"))
        .current_dir(&dir)
        .env("WASH_KEYS", keys);
    common::member_env(&mut cmd, nats, Role::Host);
    let (up, text) = Up::spawn(cmd);
    let host_id = common::host_id(&text);
    let cluster_key = text
        .lines()
        .find_map(|l| l.strip_prefix("cluster key "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no cluster key in: {text}"))
        .to_string();
    (up, host_id, cluster_key)
}

/// The echo fixture signed with call alias `alias`, written to `dir/{alias}.wasm`.
fn signed_echo(dir: &Path, alias: &str) -> String {
    use nimbus_core::claims::{self, ActorClaimsParams};
    use nimbus_core::keys::{KeyKind, KeyPair};
    let params = ActorClaimsParams {
        name: Some(alias.into()),
        call_alias: Some(alias.into()),
        rev: Some(1),
        ..ActorClaimsParams::default()
    };
    let account = KeyPair::generate(KeyKind::Account);
    let module = KeyPair::generate(KeyKind::Module);
    let bytes = claims::sign_actor(
        &nimbus_tests::actor_wasm("echo"),
        &params,
        &account,
        &module,
    )
    .unwrap();
    let path = dir.join(format!("{alias}.wasm"));
    std::fs::write(&path, bytes).unwrap();
    path.display().to_string()
}

/// Starts the echo actor `alias` on `host_id` (signed once, then the same module) and
/// waits until the host lists it.
fn start_echo(nats: &str, lattice: &str, keys: &Path, dir: &Path, host_id: &str, alias: &str) {
    let existing = dir.join(format!("{alias}.wasm"));
    let path = if existing.exists() {
        existing.display().to_string()
    } else {
        signed_echo(dir, alias)
    };
    wash_ok(
        nats,
        lattice,
        keys,
        &["ctl", "start", "actor", &path, "--host-id", host_id],
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let inv = wash_ok(
            nats,
            lattice,
            keys,
            &["--output", "json", "ctl", "get", "inventory", host_id],
        );
        let inv: serde_json::Value = serde_json::from_str(&inv).unwrap();
        let names: Vec<&str> = inv["actors"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|a| a["name"].as_str())
            .collect();
        if names.contains(&alias) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "actor {alias} never showed up on {host_id}: {inv}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn hosts_started_without_seed_flags_form_one_lattice_and_strangers_are_refused_by_key() {
    let nats = nimbus_tests::servers::NatsServer::start();
    let url = nats.url();
    let lattice = "firstcontact";
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");

    // Two hosts started at once, no --cluster-seed: the first to start creates the
    // lattice's key in the keys directory and both use it.
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| lattice_host(&url, lattice, &keys, dir.path(), "a"));
        let b = s.spawn(|| lattice_host(&url, lattice, &keys, dir.path(), "b"));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_eq!(a.2, b.2, "both hosts sign with the lattice's one key");
    let key_file = keys.join(format!("lattice_{lattice}_cluster.nk"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "{} has mode {mode:o}",
            key_file.display()
        );
    }
    let shown = wash_ok(
        &url,
        lattice,
        &keys,
        &["--output", "json", "lattice", "key", "show"],
    );
    let shown: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(shown["public_key"], a.2.as_str());

    start_echo(&url, lattice, &keys, dir.path(), &a.1, "first");
    start_echo(&url, lattice, &keys, dir.path(), &b.1, "second");
    // `wash call` signs with the same stored key, no flag.
    assert_eq!(
        wash_ok(
            &url,
            lattice,
            &keys,
            &["call", "first", "Echo", "--data", "hi"]
        ),
        "hi"
    );
    // An actor on host b calls the actor on host a: host b signs, host a trusts it.
    assert_eq!(
        wash_ok(
            &url,
            lattice,
            &keys,
            &[
                "call",
                "second",
                "Forward",
                "--data",
                "x\nfirst\nEcho\nacross hosts"
            ]
        ),
        "across hosts"
    );

    // A host whose machine has another key for the lattice (its own keys directory)
    // refuses calls signed with ours, naming the key it saw and how to trust it.
    let other_keys = dir.path().join("other-keys");
    let mut c = lattice_host(&url, lattice, &other_keys, dir.path(), "c");
    assert_ne!(c.2, a.2);
    start_echo(&url, lattice, &other_keys, dir.path(), &c.1, "third");
    let out = wash_at(
        &url,
        lattice,
        &keys,
        &["call", "third", "Echo", "--data", "hi"],
    );
    assert!(!out.status.success(), "a stranger's call was accepted");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("invocation signed by cluster key {}", a.2)),
        "{err}"
    );
    assert!(err.contains(&format!("it trusts {}", c.2)), "{err}");
    assert!(err.contains("wash lattice key import"), "{err}");
    assert!(err.contains(&format!("--cluster-issuer {}", a.2)), "{err}");

    // Export here, import there: the other machine now has the lattice's key; a host it
    // starts afterwards is trusted and trusts us.
    let exported = wash_ok(
        &url,
        lattice,
        &keys,
        &["--output", "json", "lattice", "key", "export"],
    );
    let exported: serde_json::Value = serde_json::from_str(&exported).unwrap();
    let seed = exported["seed"].as_str().unwrap().to_string();
    let refused = wash_at(
        &url,
        lattice,
        &other_keys,
        &["lattice", "key", "import", &seed],
    );
    assert!(
        !refused.status.success(),
        "replaced a different key without --force"
    );
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--force"));
    wash_ok(
        &url,
        lattice,
        &other_keys,
        &["lattice", "key", "import", "--force", &seed],
    );
    assert!(c.0.interrupt().success());
    c = lattice_host(&url, lattice, &other_keys, dir.path(), "c");
    assert_eq!(c.2, a.2, "the restarted host uses the imported key");
    start_echo(&url, lattice, &other_keys, dir.path(), &c.1, "third");
    assert_eq!(
        wash_ok(
            &url,
            lattice,
            &keys,
            &["call", "third", "Echo", "--data", "welcome"]
        ),
        "welcome"
    );

    assert!(c.0.interrupt().success());
    assert!(b.0.interrupt().success());
    assert!(a.0.interrupt().success());
}

/// The nats-server binary the tests use (the harness's search: `$NATS_SERVER`, `PATH`,
/// where `scripts/setup.sh` installs it).
fn nats_server_binary() -> std::path::PathBuf {
    nimbus_tests::servers::find_binary("NATS_SERVER", "nats-server")
}

#[test]
fn wash_up_nats_server_keeps_the_lattice_bucket_and_nats_backed_data_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    // A home of its own: the default JetStream store lives under it.
    let home = dir.path().join("home");
    let keys = dir.path().join("keys");
    let (nats_port, http_port) = (free_port(), free_port());
    let nats_url = format!("nats://127.0.0.1:{nats_port}");
    let lattice = "persisted";
    let app = manifest(dir.path(), http_port);
    // The server runs with the lattice's credentials (made by the first `wash up` in the
    // lattice directory under HOME): the key-value backend and `wash` use theirs.
    let lattice_dir = home.join(".wash/lattices").join(lattice);
    let kv_creds = lattice_dir.join("keyvalue.creds");
    let wash_creds = lattice_dir.join("wash.creds");
    let wash_creds = wash_creds.to_str().unwrap();
    // The counter lives in the started server's JetStream (backend=nats), not in a file.
    let text = std::fs::read_to_string(&app).unwrap().replace(
        "values: { backend: file, path: data }",
        &format!(
            "values: {{ backend: nats, url: \"{nats_url}\", bucket: washup_counter, creds: {:?} }}",
            kv_creds.display().to_string()
        ),
    );
    assert!(text.contains("backend: nats"), "{text}");
    std::fs::write(&app, text).unwrap();
    let nats_server = nats_server_binary();
    let start = || {
        let mut cmd = wash();
        cmd.args([
            "up",
            "--nats-server",
            &nats_port.to_string(),
            "--lattice",
            lattice,
        ])
        .current_dir(dir.path())
        .env("HOME", &home)
        .env("WASH_KEYS", &keys)
        .env("NATS_SERVER", &nats_server)
        .env_remove("WASH_NATS_URL")
        .env_remove("WASH_NATS_STORE");
        Up::spawn(cmd)
    };

    let (up, text) = start();
    assert!(text.contains("joined lattice"), "{text}");
    assert_eq!(
        common::get(http_port, "/visits"),
        (200, r#"{"counter":1}"#.to_string())
    );
    assert_eq!(
        common::get(http_port, "/visits"),
        (200, r#"{"counter":2}"#.to_string())
    );
    // A link no manifest puts: only the lattice bucket can bring it back.
    let actor =
        nimbus_core::keys::KeyPair::generate(nimbus_core::keys::KeyKind::Module).public_key();
    let provider =
        nimbus_core::keys::KeyPair::generate(nimbus_core::keys::KeyKind::Service).public_key();
    wash_ok(
        &nats_url,
        lattice,
        &keys,
        &[
            "ctl",
            "link",
            "put",
            &actor,
            &provider,
            "wasmcloud:test",
            "kept=yes",
            "--creds",
            wash_creds,
        ],
    );
    let has_link = || {
        let links = wash_ok(
            &nats_url,
            lattice,
            &keys,
            &[
                "--output", "json", "ctl", "get", "links", "--creds", wash_creds,
            ],
        );
        let links: serde_json::Value = serde_json::from_str(&links).unwrap();
        links["links"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["actor_id"] == actor.as_str() && l["values"]["kept"] == "yes")
    };
    assert!(has_link(), "the link was not put");
    assert!(up.interrupt().success(), "wash up did not exit cleanly");
    assert!(
        TcpStream::connect(("127.0.0.1", nats_port)).is_err(),
        "the nats-server outlived wash up"
    );

    // The store is where the README says, per lattice, and it is not empty.
    let store = home.join(".wash/lattices").join(lattice).join("jetstream");
    let entries = std::fs::read_dir(&store)
        .unwrap_or_else(|e| panic!("no JetStream store at {}: {e}", store.display()))
        .count();
    assert!(entries > 0, "{} is empty", store.display());

    // A new nats-server on the same store: the lattice's link and the count are back.
    let (up, _) = start();
    assert!(
        has_link(),
        "the lattice bucket lost a link across the restart"
    );
    assert_eq!(
        common::get(http_port, "/visits"),
        (200, r#"{"counter":3}"#.to_string())
    );
    assert!(up.interrupt().success());
}
