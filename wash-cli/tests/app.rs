//! `wash app` against real processes: a nats-server from the shared harness, hosts that
//! are `wash up --nats-url` processes (each running a reconciler), and `wash app` commands.
//! Hosts are killed with SIGKILL (`kill -9`), so nothing gets to say goodbye: the lost-host
//! detection and the lease's expiry are what heal the lattice.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use nimbus_tests::auth::Role;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use nimbus_tests::servers::NatsServer;
use serde_json::Value;

/// Seconds without an answer after which the tests' hosts declare a host lost.
const LOST_AFTER_SECS: u64 = 3;

fn wash() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wash"));
    cmd.env_remove("WASH_CLUSTER_SEED")
        .env_remove("WASH_CLUSTER_ISSUERS")
        .env_remove("WASH_NATS_URL")
        .env_remove("WASH_LATTICE");
    cmd
}

/// One test lattice: its server, name, keys and work directory.
struct Lattice {
    nats: NatsServer,
    name: String,
    dir: tempfile::TempDir,
}

/// A `wash up` host process, killed on drop.
struct Up {
    child: Child,
    id: String,
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Up {
    /// `kill -9`.
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Lattice {
    fn new(test: &str) -> Self {
        Lattice {
            nats: NatsServer::start(),
            name: format!("{test}-{}", std::process::id()),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn keys(&self) -> PathBuf {
        self.dir.path().join("keys")
    }

    /// Starts `wash up --nats-url` in its own directory and waits for its "ready" line.
    fn host(&self, name: &str) -> Up {
        let dir = self.dir.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let mut cmd = wash();
        cmd.args([
            "up",
            "--nats-url",
            &self.nats.url(),
            "--lattice",
            &self.name,
        ])
        .args(["--label", &format!("name={name}")])
        .args(["--host-lost-after", &LOST_AFTER_SECS.to_string()])
        .current_dir(&dir)
        .env("WASH_KEYS", self.keys());
        common::member_env(&mut cmd, &self.nats.url(), Role::Host);
        let (child, text) = common::spawn_until_ready(&mut cmd);
        let id = common::host_id(&text);
        Up { child, id }
    }

    /// Runs `wash ARGS` against this lattice.
    fn wash(&self, args: &[&str]) -> std::process::Output {
        let mut cmd = wash();
        cmd.args(args)
            .env("WASH_NATS_URL", self.nats.url())
            .env("WASH_LATTICE", &self.name)
            .env("WASH_KEYS", self.keys())
            .current_dir(self.dir.path());
        common::member_env(&mut cmd, &self.nats.url(), Role::Wash);
        cmd.output().unwrap()
    }

    /// `wash --output json ARGS`, which must succeed; the parsed output.
    fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--output", "json"];
        all.extend_from_slice(args);
        let out = self.wash(&all);
        assert!(
            out.status.success(),
            "wash {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "wash {args:?} printed no JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// Writes a manifest (and the echo module it names) into the work directory.
    fn manifest(&self, file: &str, text: &str) -> PathBuf {
        let wasm = self.dir.path().join("echo.wasm");
        if !wasm.exists() {
            std::fs::write(&wasm, nimbus_tests::actor_wasm("echo")).unwrap();
        }
        let path = self.dir.path().join(file);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Polls `wash app status NAME` until `done`, panicking with the last status after
    /// `limit`; returns the status and how long it took.
    fn wait_status(
        &self,
        app: &str,
        limit: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> (Value, Duration) {
        let start = Instant::now();
        let mut last = Value::Null;
        while start.elapsed() < limit {
            let out = self.wash(&["--output", "json", "app", "status", app]);
            if out.status.success() {
                last = serde_json::from_slice(&out.stdout).unwrap();
                if done(&last) {
                    return (last, start.elapsed());
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("app {app} did not reach the wanted state within {limit:?}; last: {last:#}");
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn state(status: &Value) -> &str {
    status["status"]["state"].as_str().unwrap_or("")
}

/// The hosts running actor `name` in a status document.
fn actor_hosts(status: &Value, name: &str) -> Vec<String> {
    status["status"]["actors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["name"] == name)
        .flat_map(|a| a["running"].as_array().cloned().unwrap_or_default())
        .filter_map(|p| p["host_id"].as_str().map(str::to_string))
        .collect()
}

const ECHO: &str = "name: echoes\nactors:\n  - name: echo\n    path: echo.wasm\n    call_alias: test/echo\n    replicas: 2\n";

#[test]
fn app_deploy_list_history_status_and_bad_input_without_half_applied_state() {
    let lattice = Lattice::new("app-cli");
    let host = lattice.host("one");
    // Unknown keys: refused with the place in the file; nothing stored.
    let typo = lattice.manifest(
        "typo.yaml",
        "name: echoes\nactors:\n  - { name: echo, pth: echo.wasm }\n",
    );
    let out = lattice.wash(&["app", "deploy", path_str(&typo)]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("typo.yaml:3:") && err.contains("pth"),
        "{err}"
    );
    // A missing module: refused before anything is stored.
    let missing = lattice.manifest(
        "missing.yaml",
        "name: echoes\nactors:\n  - { name: echo, path: nowhere.wasm }\n",
    );
    let out = lattice.wash(&["app", "deploy", path_str(&missing)]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && err.contains("nowhere.wasm")
            && err.contains("nothing was deployed"),
        "{err}"
    );
    assert_eq!(lattice.json(&["app", "list"]), Value::Array(vec![]));

    // One host, two replicas wanted: deployed, but degraded, and the status says why.
    let manifest = lattice.manifest("echo.yaml", ECHO);
    let out = lattice.wash(&["app", "deploy", path_str(&manifest), "--wait-secs", "10"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "one host cannot run two replicas");
    assert!(err.contains("only 1 host(s) match labels"), "{err}");
    let (status, _) = lattice.wait_status("echoes", Duration::from_secs(20), |s| {
        state(s) == "degraded"
    });
    assert_eq!(actor_hosts(&status, "echo"), vec![host.id.clone()]);
    assert_eq!(status["reconciler"]["holder"], host.id.as_str());
    // The same version with other content is refused and changes nothing.
    let other = lattice.manifest("other.yaml", &ECHO.replace("replicas: 2", "replicas: 1"));
    let out = lattice.wash(&["app", "deploy", path_str(&other), "--version", "v1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("already stored with other content"),
        "{err}"
    );
    // A new version with one replica: running.
    let deployed = lattice.json(&["app", "deploy", path_str(&other), "--version", "1.1"]);
    assert_eq!(deployed["version"], "1.1");
    assert_eq!(
        deployed["status"]["status"]["state"], "running",
        "{deployed:#}"
    );
    let list = lattice.json(&["app", "list"]);
    assert_eq!(list[0]["record"]["desired"]["version"], "1.1", "{list:#}");
    let history = lattice.json(&["app", "history", "echoes"]);
    let versions: Vec<&str> = history["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_str().unwrap())
        .collect();
    assert_eq!(versions, ["v1", "1.1"]);
    // Text output too.
    let out = lattice.wash(&["app", "status", "echoes"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("app echoes version 1.1") && text.contains("state: running"),
        "{text}"
    );
    // Undeploy: nothing of the app runs any more.
    let undeployed = lattice.json(&["app", "undeploy", "echoes"]);
    assert_eq!(
        undeployed["status"]["status"]["state"], "undeployed",
        "{undeployed:#}"
    );
    let inventory = lattice.json(&["ctl", "get", "inventory", &host.id]);
    assert_eq!(inventory["actors"], Value::Array(vec![]), "{inventory:#}");
    let out = lattice.wash(&["app", "status", "nope"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("app `nope` is not deployed"));
}

#[test]
fn app_replicas_run_again_elsewhere_after_kill_9_of_a_host() {
    let lattice = Lattice::new("app-heal");
    let mut hosts = vec![
        lattice.host("one"),
        lattice.host("two"),
        lattice.host("three"),
    ];
    let manifest = lattice.manifest("echo.yaml", ECHO);
    let deployed = lattice.json(&["app", "deploy", path_str(&manifest)]);
    assert_eq!(
        deployed["status"]["status"]["state"], "running",
        "{deployed:#}"
    );
    let status = lattice.json(&["app", "status", "echoes"]);
    let leader = status["reconciler"]["holder"].as_str().unwrap().to_string();
    let before = actor_hosts(&status, "echo");
    // The hosts load the module from the lattice's module store, not from this disk.
    let inventory = lattice.json(&["ctl", "get", "inventory", &before[0]]);
    let image = inventory["actors"][0]["image_ref"]
        .as_str()
        .unwrap_or_default();
    assert!(
        image.starts_with("nats-object://NIMBUS_MODULES_"),
        "{inventory:#}"
    );
    std::fs::remove_file(lattice.dir.path().join("echo.wasm")).unwrap();
    // Kill a host that runs a replica and is not the reconciler (that case is the next test).
    let victim = hosts
        .iter()
        .position(|h| before.contains(&h.id) && h.id != leader)
        .expect("a replica runs on a host that does not reconcile");
    let victim = hosts.remove(victim);
    let victim_id = victim.id.clone();
    victim.kill();
    let (healed, took) = lattice.wait_status("echoes", Duration::from_secs(40), |s| {
        state(s) == "running" && !actor_hosts(s, "echo").contains(&victim_id)
    });
    let after = actor_hosts(&healed, "echo");
    assert_eq!(after.len(), 2, "{healed:#}");
    assert!(after.iter().all(|h| hosts.iter().any(|up| &up.id == h)));
    let bound = Duration::from_secs(LOST_AFTER_SECS + 5);
    assert!(
        took <= bound,
        "healed after {took:?}, more than the lost-host time + 5 s"
    );
    println!("kill -9 to running again elsewhere: {took:?}");
    // And it answers.
    let out = lattice.wash(&["call", "test/echo", "Echo", "--data", "still here"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "still here",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn app_reconciler_killed_another_takes_the_lease_and_finishes_a_pending_deploy() {
    let lattice = Lattice::new("app-lease");
    let first = lattice.host("one");
    let second = lattice.host("two");
    let manifest = lattice.manifest("echo.yaml", &ECHO.replace("replicas: 2", "replicas: 1"));
    lattice.json(&["app", "deploy", path_str(&manifest)]);
    let status = lattice.json(&["app", "status", "echoes"]);
    let leader = status["reconciler"]["holder"].as_str().unwrap().to_string();
    let (dead, alive) = if leader == first.id {
        (first, second)
    } else {
        (second, first)
    };
    dead.kill();
    // Deployed while no reconciler holds the lease: pending until the other host's takes it.
    let pending = lattice.manifest("two.yaml", &ECHO.replace("replicas: 2", "instances: 3"));
    let applied = lattice.json(&["app", "deploy", path_str(&pending), "--wait-secs", "40"]);
    let status = &applied["status"];
    assert_eq!(status["status"]["state"], "running", "{applied:#}");
    assert_eq!(status["status"]["version"], "v2");
    assert_eq!(status["reconciler"]["holder"], alive.id.as_str());
    assert_eq!(actor_hosts(status, "echo"), vec![alive.id.clone()]);
    assert_eq!(status["status"]["actors"][0]["running"][0]["instances"], 3);
}

/// The HA petclinic manifest (deploy/petclinic-ha.yaml) for this test: absolute module
/// paths, the test's NATS server and a free HTTP port.
fn petclinic_manifest(lattice: &Lattice, port: u16) -> PathBuf {
    for actor in ["gateway", "owners", "vets", "visits", "ui"] {
        // Makes sure the fixture exists (the harness builds the actors once if needed).
        nimbus_tests::actor_wasm(&format!("petclinic-{actor}"));
    }
    let root = nimbus_tests::repo_root();
    let text = std::fs::read_to_string(root.join("deploy/petclinic-ha.yaml"))
        .unwrap()
        .replace(
            "../actors/target/wasm/",
            &format!("{}/actors/target/wasm/", root.display()),
        )
        .replace(
            "url: \"nats://127.0.0.1:4222\"",
            &match lattice.nats.creds(Role::Keyvalue) {
                // The data account's user, as `wash lattice init` makes keyvalue.creds.
                Some(creds) => format!(
                    "url: {:?}, creds: {:?}",
                    lattice.nats.url(),
                    creds.display().to_string()
                ),
                None => format!("url: {:?}", lattice.nats.url()),
            },
        )
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"))
        .replace(
            "bucket: petclinic",
            &format!("bucket: petclinic_{}", std::process::id()),
        );
    let path = lattice.dir.path().join("petclinic-ha.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// What the load saw.
#[derive(Default)]
struct Load {
    /// Owners whose creation was answered 2xx, by last name.
    created: Vec<String>,
    /// Requests answered otherwise, or not at all (with what happened).
    failed: Vec<String>,
    /// Successful requests after the kill.
    ok_after_kill: usize,
    /// When the kill happened, and how long after it the first create succeeded.
    killed_at: Option<Instant>,
    first_ok_after_kill: Option<Duration>,
    /// The slowest request.
    slowest: Duration,
}

#[test]
fn app_petclinic_heals_after_kill_9_under_load_and_keeps_every_acknowledged_write() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};

    let lattice = Lattice::new("app-petclinic");
    let mut hosts = vec![
        lattice.host("one"),
        lattice.host("two"),
        lattice.host("three"),
    ];
    let port = nimbus_tests::servers::free_port();
    let manifest = petclinic_manifest(&lattice, port);
    let deployed = lattice.json(&["app", "deploy", path_str(&manifest), "--wait-secs", "50"]);
    assert_eq!(
        deployed["status"]["status"]["state"], "running",
        "{deployed:#}"
    );
    let base = format!("http://127.0.0.1:{port}");
    nimbus_tests::http::wait_for(&base, "/api/vets", Duration::from_secs(20), |r| {
        r.status == 200
    });

    // Creates and reads, one after another, until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let killed = Arc::new(AtomicBool::new(false));
    let load = Arc::new(Mutex::new(Load::default()));
    let worker = {
        let (stop, killed, load, base) = (stop.clone(), killed.clone(), load.clone(), base.clone());
        std::thread::spawn(move || {
            let mut i = 0u32;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let last = format!("Heal{i}x");
                let body = format!(
                    r#"{{"firstName":"Kill","lastName":"{last}","address":"9 Signal St","city":"Lattice","telephone":"5550109"}}"#
                );
                let started = Instant::now();
                let created = nimbus_tests::http::send(
                    &base,
                    "POST",
                    "/api/owners",
                    &[("content-type", "application/json")],
                    Some(body.as_bytes()),
                );
                let read = nimbus_tests::http::get(&base, "/api/vets");
                let took = started.elapsed();
                let mut l = load.lock().unwrap();
                l.slowest = l.slowest.max(took);
                match created {
                    Ok(r) if (200..300).contains(&r.status) => {
                        l.created.push(last);
                        if killed.load(Ordering::Relaxed) {
                            l.ok_after_kill += 1;
                        }
                        // The first create sent after the kill that succeeded.
                        if let Some(at) = l.killed_at
                            && started > at
                            && l.first_ok_after_kill.is_none()
                        {
                            l.first_ok_after_kill = Some(at.elapsed());
                        }
                    }
                    Ok(r) => l.failed.push(format!("create: {} {}", r.status, r.text())),
                    Err(e) => l.failed.push(format!("create: {e}")),
                }
                if let Err(e) = read.map_err(|e| e.to_string()).and_then(|r| {
                    (r.status == 200)
                        .then_some(())
                        .ok_or(format!("{} {}", r.status, r.text()))
                }) {
                    l.failed.push(format!("read: {e}"));
                }
                drop(l);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    std::thread::sleep(Duration::from_secs(2));

    // Kill the host that serves HTTP: the worst one to lose.
    let status = lattice.json(&["app", "status", "petclinic"]);
    let leader = status["reconciler"]["holder"].as_str().unwrap().to_string();
    let http_host = status["status"]["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "http")
        .and_then(|p| p["running"][0]["host_id"].as_str())
        .unwrap()
        .to_string();
    let victim = hosts.iter().position(|h| h.id == http_host).unwrap();
    let victim = hosts.remove(victim);
    load.lock().unwrap().killed_at = Some(Instant::now());
    killed.store(true, Ordering::Relaxed);
    victim.kill();
    let (healed, took) = lattice.wait_status("petclinic", Duration::from_secs(45), |s| {
        state(s) == "running"
            && s["status"]["actors"]
                .as_array()
                .into_iter()
                .chain(s["status"]["providers"].as_array())
                .flatten()
                .flat_map(|e| e["running"].as_array().cloned().unwrap_or_default())
                .all(|p| p["host_id"] != http_host.as_str())
    });
    // A lost reconciler is replaced once its lease expires (6 s) before the heal starts.
    let lease_wait = if leader == http_host { 6 } else { 0 };
    let bound = Duration::from_secs(LOST_AFTER_SECS + 5 + lease_wait);
    println!(
        "kill -9 of the HTTP host (reconciler: {}) to running elsewhere: {took:?}",
        leader == http_host
    );
    assert!(
        took <= bound,
        "healed after {took:?} (bound {bound:?}): {healed:#}"
    );
    // Served again, by the new HTTP host.
    nimbus_tests::http::wait_for(&base, "/api/vets", Duration::from_secs(10), |r| {
        r.status == 200
    });
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Relaxed);
    worker.join().unwrap();

    let load = load.lock().unwrap();
    assert!(load.ok_after_kill > 0, "no create succeeded after the heal");
    assert!(
        load.created.len() > 10,
        "the load ran: {} creates",
        load.created.len()
    );
    // Errors during the gap, never hangs (a hang would last the client's 30 s timeout).
    assert!(
        load.slowest < Duration::from_secs(15),
        "a request took {:?}",
        load.slowest
    );
    println!(
        "{} creates acknowledged, {} failed requests during the gap; first create acknowledged {:?} after the kill",
        load.created.len(),
        load.failed.len(),
        load.first_ok_after_kill
    );
    // Every acknowledged write is readable afterwards.
    for last in &load.created {
        let r = nimbus_tests::http::get(&base, &format!("/api/owners?lastName={last}")).unwrap();
        assert!(
            r.status == 200 && r.text().contains(&format!(r#""lastName":"{last}""#)),
            "owner {last} was acknowledged but is not readable: {} {}",
            r.status,
            r.text()
        );
    }
}
