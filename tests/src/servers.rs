//! Real servers for integration tests: `nats-server` (alone, with JetStream, or as a cluster
//! with routes) and `redis-server`, each on a free loopback port with its own temp dir,
//! killed when the handle drops.
//!
//! The binaries come from `scripts/setup.sh`; set `NATS_SERVER` or `REDIS_SERVER` to use
//! another one.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long a server may take to accept connections after it is spawned.
const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// A loopback TCP port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("failed to find a free port")
}

/// Finds a server binary: `$ENV_VAR`, then `PATH`, then the places `scripts/setup.sh`
/// installs to.
fn find_binary(env_var: &str, name: &str) -> PathBuf {
    if let Ok(path) = std::env::var(env_var) {
        return PathBuf::from(path);
    }
    let home = std::env::var("HOME").unwrap_or_default();
    let mut candidates: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join(name)).collect())
        .unwrap_or_default();
    candidates.push(Path::new(&home).join(".local/bin").join(name));
    candidates.push(
        Path::new(&home)
            .join(".cache/nimbus-tools/venv/bin")
            .join(name),
    );
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("`{name}` not found: run scripts/setup.sh or set {env_var} to its path")
        })
}

fn wait_for_port(port: u16, child: &mut Child, what: &str) {
    let start = Instant::now();
    loop {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            if let Some(mut stderr) = child.stderr.take() {
                let _ = stderr.read_to_string(&mut err);
            }
            panic!("{what} exited early with {status}: {err}");
        }
        assert!(
            start.elapsed() < READY_TIMEOUT,
            "{what} did not listen on port {port} within {READY_TIMEOUT:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn kill(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// Options for one `nats-server`.
#[derive(Debug, Clone, Default)]
pub struct NatsOptions {
    /// Turn JetStream on (store in the server's temp dir).
    pub jetstream: bool,
    /// Cluster name and this server's route port, when it is part of a cluster.
    pub cluster: Option<(String, u16)>,
    /// Route URLs of the other cluster members (`nats-route://127.0.0.1:PORT`).
    pub routes: Vec<String>,
    /// Server name (unique in a cluster; JetStream clusters need it).
    pub name: Option<String>,
}

/// A running `nats-server`; killed on drop. [`NatsServer::stop`] and
/// [`NatsServer::restart`] keep the port, for reconnect tests.
pub struct NatsServer {
    child: Option<Child>,
    port: u16,
    options: NatsOptions,
    dir: TempDir,
}

impl NatsServer {
    /// A single server with JetStream on.
    pub fn start() -> Self {
        Self::start_with(NatsOptions {
            jetstream: true,
            ..NatsOptions::default()
        })
    }

    /// A server with the given options on a free port.
    pub fn start_with(options: NatsOptions) -> Self {
        let dir = tempfile::tempdir().expect("failed to create a temp dir for nats-server");
        let mut server = Self {
            child: None,
            port: free_port(),
            options,
            dir,
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new(find_binary("NATS_SERVER", "nats-server"));
        cmd.args(["-a", "127.0.0.1", "-p", &self.port.to_string()]);
        if self.options.jetstream {
            cmd.arg("-js").arg("-sd").arg(self.dir.path().join("js"));
        }
        if let Some(name) = &self.options.name {
            cmd.args(["-n", name]);
        }
        if let Some((cluster, route_port)) = &self.options.cluster {
            cmd.args(["--cluster_name", cluster]);
            cmd.args(["--cluster", &format!("nats://127.0.0.1:{route_port}")]);
            if !self.options.routes.is_empty() {
                cmd.args(["--routes", &self.options.routes.join(",")]);
            }
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("failed to spawn nats-server");
        wait_for_port(self.port, &mut child, "nats-server");
        // nats-server logs to stderr; drain it so a chatty server never blocks on a full pipe.
        if let Some(mut stderr) = child.stderr.take() {
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut stderr, &mut std::io::sink());
            });
        }
        self.child = Some(child);
    }

    /// The client URL, `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server (the port and store stay reserved for [`Self::restart`]).
    pub fn stop(&mut self) {
        kill(&mut self.child);
    }

    /// Starts the server again on the same port with the same store.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Whether the server process is running.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

/// Several `nats-server`s joined by routes into one cluster.
pub struct NatsCluster {
    /// The members, in start order.
    pub servers: Vec<NatsServer>,
}

impl NatsCluster {
    /// Starts `size` servers (no JetStream) that route to each other, and waits until the
    /// routes are up.
    pub fn start(size: usize) -> Self {
        let route_ports: Vec<u16> = (0..size).map(|_| free_port()).collect();
        let routes: Vec<String> = route_ports
            .iter()
            .map(|p| format!("nats-route://127.0.0.1:{p}"))
            .collect();
        let servers: Vec<NatsServer> = route_ports
            .iter()
            .enumerate()
            .map(|(i, port)| {
                NatsServer::start_with(NatsOptions {
                    jetstream: false,
                    cluster: Some(("nimbus-test".into(), *port)),
                    routes: routes.clone(),
                    name: Some(format!("n{i}")),
                })
            })
            .collect();
        // Routes connect with a short retry loop; give them a moment to form.
        std::thread::sleep(Duration::from_millis(500));
        Self { servers }
    }

    /// The client URLs of all members.
    pub fn urls(&self) -> Vec<String> {
        self.servers.iter().map(NatsServer::url).collect()
    }
}

/// A running `redis-server` with persistence off; killed on drop.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: TempDir,
}

impl RedisServer {
    /// A fresh server on a free port.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("failed to create a temp dir for redis-server");
        let mut server = Self {
            child: None,
            port: free_port(),
            dir,
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let mut child = Command::new(find_binary("REDIS_SERVER", "redis-server"))
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("failed to spawn redis-server");
        wait_for_port(self.port, &mut child, "redis-server");
        self.child = Some(child);
    }

    /// The client URL, `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (the port stays reserved for [`Self::restart`]).
    pub fn stop(&mut self) {
        kill(&mut self.child);
    }

    /// Starts the server again on the same port (its data is gone: persistence is off).
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}
