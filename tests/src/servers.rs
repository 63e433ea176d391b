//! Real servers for integration tests: `nats-server` (alone, with JetStream, or as a cluster
//! with routes) and `redis-server`, each with its own temp dir and log file, killed when the
//! handle drops.
//!
//! No test can end up talking to another test's server:
//!
//! - nats-server picks its own free ports (`-1` in its config file) and writes the ports it
//!   bound to a ports file named after its pid once it listens; the harness waits for the
//!   file of *its* child, so the port it hands out is held by that child.
//! - redis-server cannot pick its own port, so it is given a free one and the harness asks
//!   whoever answers there for its pid (`INFO server`, `process_id`): ready only once that
//!   is the child's pid. If the port was taken in the meantime, the child exits (it cannot
//!   bind) and the harness starts it again on another port.
//! - [`NatsServer::stop`] and [`RedisServer::stop`] kill the server and so let go of its
//!   port; `restart` asks for the same port(s) again and panics, with the server's log, if
//!   the new process cannot have them (another process took the port meanwhile).
//!
//! The binaries come from `scripts/setup.sh test`; set `NATS_SERVER` or `REDIS_SERVER` to use
//! another one.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::auth::{Members, Role};

/// How long a server may take to listen after it is spawned.
const READY_TIMEOUT: Duration = Duration::from_secs(15);
/// How long the routes of a new cluster may take to form.
const ROUTES_TIMEOUT: Duration = Duration::from_secs(15);
/// How often a free port is tried for redis-server before giving up.
const REDIS_PORT_ATTEMPTS: usize = 5;

/// A loopback TCP port that was free a moment ago (another process may take it before you
/// bind it; the servers here do not rely on it staying free).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("failed to find a free port")
}

/// Finds a server binary: `$ENV_VAR`, then `PATH`, then the places `scripts/setup.sh`
/// installs to. Public for tests that start a server their own way (`wash up
/// --nats-server` names the binary it runs).
pub fn find_binary(env_var: &str, name: &str) -> PathBuf {
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
            panic!("`{name}` not found: run `scripts/setup.sh test` or set {env_var} to its path")
        })
}

fn kill(child: &mut Option<Child>) {
    if let Some(mut c) = child.take() {
        let _ = c.kill();
        let _ = c.wait();
    }
}

fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| format!("(no log at {}: {e})", path.display()))
}

/// A fresh log file for one run of a server (stdout and stderr both go there).
fn log_file(dir: &Path, name: &str, run: u32) -> (PathBuf, Stdio, Stdio) {
    let path = dir.join(format!("{name}-{run}.log"));
    let file = File::create(&path)
        .unwrap_or_else(|e| panic!("failed to create the log {}: {e}", path.display()));
    let err = file.try_clone().expect("failed to clone a log file handle");
    (path, Stdio::from(file), Stdio::from(err))
}

/// The child's exit status, if it has exited.
fn exited(child: &mut Child) -> Option<ExitStatus> {
    child.try_wait().ok().flatten()
}

/// The port of a URL such as `nats://127.0.0.1:4222`.
fn url_port(url: &str) -> Option<u16> {
    url.rsplit(':').next()?.trim_end_matches('/').parse().ok()
}

/// Options for one `nats-server`. By default it admits only the [`Members`] it makes
/// (see [`NatsServer::creds`]); [`NatsOptions::open`] lets any client in.
#[derive(Debug, Clone, Default)]
pub struct NatsOptions {
    /// Turn JetStream on (store in the server's temp dir).
    pub jetstream: bool,
    /// The cluster name, when the server is part of a cluster (it then listens for routes
    /// on a port of its own choosing; see [`NatsServer::route_url`]).
    pub cluster: Option<String>,
    /// Route URLs of other cluster members to connect to (`nats-route://127.0.0.1:PORT`).
    pub routes: Vec<String>,
    /// Server name (unique in a cluster; JetStream clusters need it).
    pub name: Option<String>,
    /// A configuration file appended as it is, e.g. the `auth.conf` of `wash lattice
    /// init` (operator, accounts, TLS): the server then admits only the lattice's members.
    /// It brings its own auth, so give it with [`NatsOptions::open`].
    pub include: Option<PathBuf>,
    /// Admit any client, without credentials (a 0.x-style open lattice).
    pub open: bool,
    /// The members to admit, shared with other servers (a cluster's members admit the
    /// same users); `None`: the server makes its own.
    pub members: Option<Arc<Members>>,
}

impl NatsOptions {
    /// A server that admits any client: for tests of the open path and of servers whose
    /// auth comes from an [`NatsOptions::include`].
    pub fn open() -> Self {
        Self {
            open: true,
            ..Self::default()
        }
    }
}

/// The ports a nats-server bound, from its ports file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct NatsPorts {
    client: u16,
    monitor: u16,
    route: Option<u16>,
}

/// A running `nats-server`; killed on drop. Its ports are the ones the server itself
/// bound and reported. [`NatsServer::stop`] kills it (its ports are free again);
/// [`NatsServer::restart`] starts it again on the same ports with the same store
/// ([`NatsServer::restart_without_data`]: with an empty one), and panics if it cannot have
/// them.
pub struct NatsServer {
    child: Option<Child>,
    ports: Option<NatsPorts>,
    options: NatsOptions,
    /// Who it admits; `None`: anyone.
    members: Option<Arc<Members>>,
    dir: TempDir,
    /// The JetStream store directory, under `dir`.
    store: PathBuf,
    runs: u32,
    log: PathBuf,
}

impl NatsServer {
    /// A single server with JetStream on, admitting its members only.
    pub fn start() -> Self {
        Self::start_with(NatsOptions {
            jetstream: true,
            ..NatsOptions::default()
        })
    }

    /// A single server with JetStream on that admits any client: benchmarks (their
    /// figures are of an open lattice; `scripts/bench-auth.sh` gives auth's ratio) and
    /// 0.x clients.
    pub fn start_open() -> Self {
        Self::start_with(NatsOptions {
            jetstream: true,
            ..NatsOptions::open()
        })
    }

    /// A server with the given options, on ports it picks itself. Unless it is open (by
    /// its options or the run's `NIMBUS_TEST_NATS=open`), it admits only its members.
    pub fn start_with(options: NatsOptions) -> Self {
        let dir = tempfile::tempdir().expect("failed to create a temp dir for nats-server");
        let members = admitted_members(&options);
        let mut server = Self {
            child: None,
            ports: None,
            members,
            options,
            log: dir.path().join("nats-0.log"),
            store: dir.path().join("js"),
            dir,
            runs: 0,
        };
        server.spawn();
        server
    }

    /// The config file of the next run: the ports of the last run, or `-1` (the server picks
    /// a free one) on the first.
    fn config(&self) -> String {
        let port = |p: Option<u16>| p.map_or_else(|| "-1".to_string(), |p| p.to_string());
        let mut c = String::new();
        let _ = writeln!(
            c,
            "listen: \"127.0.0.1:{}\"",
            port(self.ports.map(|p| p.client))
        );
        let _ = writeln!(
            c,
            "http: \"127.0.0.1:{}\"",
            port(self.ports.map(|p| p.monitor))
        );
        if let Some(name) = &self.options.name {
            let _ = writeln!(c, "server_name: {name:?}");
        }
        if self.options.jetstream {
            let _ = writeln!(
                c,
                "jetstream {{ store_dir: {:?} }}",
                self.store.display().to_string()
            );
        }
        if let Some(members) = &self.members {
            c.push_str(members.auth_conf());
            c.push('\n');
        }
        // nats-server resolves `include` relative to the config file only: inline it.
        if let Some(include) = &self.options.include {
            let text = std::fs::read_to_string(include).unwrap_or_else(|e| {
                panic!(
                    "failed to read the included config {}: {e}",
                    include.display()
                )
            });
            c.push_str(&text);
            c.push('\n');
        }
        if let Some(cluster) = &self.options.cluster {
            let routes: Vec<String> = self
                .options
                .routes
                .iter()
                .map(|r| format!("{r:?}"))
                .collect();
            let _ = writeln!(
                c,
                "cluster {{ name: {cluster:?}, listen: \"127.0.0.1:{}\", routes: [{}] }}",
                port(self.ports.and_then(|p| p.route)),
                routes.join(", ")
            );
        }
        c
    }

    fn spawn(&mut self) {
        self.runs += 1;
        let config_path = self.dir.path().join("nats.conf");
        std::fs::write(&config_path, self.config())
            .expect("failed to write the nats-server config");
        let ports_dir = self.dir.path().join("ports");
        let _ = std::fs::remove_dir_all(&ports_dir);
        std::fs::create_dir_all(&ports_dir).expect("failed to create the ports file dir");
        let (log, stdout, stderr) = log_file(self.dir.path(), "nats", self.runs);
        self.log = log;
        let mut child = Command::new(find_binary("NATS_SERVER", "nats-server"))
            .arg("-c")
            .arg(&config_path)
            .arg("--ports_file_dir")
            .arg(&ports_dir)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .expect("failed to spawn nats-server");
        let wanted = self.ports;
        let reported = self.wait_for_ports(&mut child, &ports_dir);
        if let Some(wanted) = wanted
            && wanted != reported
        {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "nats-server restarted on other ports ({reported:?}) than before ({wanted:?}); log:\n{}",
                read_log(&self.log)
            );
        }
        self.ports = Some(reported);
        self.child = Some(child);
        if let Some(members) = &self.members {
            register_members(reported.client, members);
        }
    }

    /// Waits for the ports file of `child` (written once it listens) and reads it.
    fn wait_for_ports(&self, child: &mut Child, ports_dir: &Path) -> NatsPorts {
        let suffix = format!("_{}.ports", child.id());
        let start = Instant::now();
        loop {
            if let Some(status) = exited(child) {
                let why = match self.ports {
                    Some(p) => format!(
                        "could not start again on its ports ({p:?}); if the log says \
                         `address already in use`, another process took one of them while it was stopped"
                    ),
                    None => "exited before listening".to_string(),
                };
                panic!(
                    "nats-server {why} ({status}); log {}:\n{}",
                    self.log.display(),
                    read_log(&self.log)
                );
            }
            if let Some(ports) = std::fs::read_dir(ports_dir)
                .ok()
                .into_iter()
                .flatten()
                .flatten()
                .find(|e| e.file_name().to_string_lossy().ends_with(&suffix))
                .and_then(|e| std::fs::read(e.path()).ok())
                .and_then(|bytes| self.parse_ports(&bytes))
            {
                return ports;
            }
            if start.elapsed() > READY_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "nats-server did not report listening within {READY_TIMEOUT:?}; log:\n{}",
                    read_log(&self.log)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Parses a ports file (`{"nats": [url], "monitoring": [url], "cluster": [url]}`); `None`
    /// while it is incomplete.
    fn parse_ports(&self, bytes: &[u8]) -> Option<NatsPorts> {
        let json: serde_json::Value = serde_json::from_slice(bytes).ok()?;
        let first = |key: &str| json[key].as_array()?.first()?.as_str().and_then(url_port);
        let route = match self.options.cluster {
            Some(_) => Some(first("cluster")?),
            None => None,
        };
        Some(NatsPorts {
            client: first("nats")?,
            monitor: first("monitoring")?,
            route,
        })
    }

    fn ports(&self) -> NatsPorts {
        self.ports.expect("nats-server has run")
    }

    /// The client URL, `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port())
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.ports().client
    }

    /// The creds file of a client playing `role`; `None` when the server is open.
    pub fn creds(&self, role: Role) -> Option<PathBuf> {
        self.members.as_ref().map(|m| m.creds(role))
    }

    /// The members the server admits (to start another server admitting the same users);
    /// `None` when it is open.
    pub fn members(&self) -> Option<Arc<Members>> {
        self.members.clone()
    }

    /// A client playing `role`.
    ///
    /// # Panics
    /// If it cannot connect.
    pub async fn connect_as(&self, role: Role) -> async_nats::Client {
        connect_as(self.url(), role)
            .await
            .unwrap_or_else(|e| panic!("failed to connect to {} as {role:?}: {e}", self.url()))
    }

    /// A client with the host role, the widest of a lattice member's (the tests' own
    /// publisher and subscriber).
    pub async fn connect(&self) -> async_nats::Client {
        self.connect_as(Role::Host).await
    }

    /// The monitoring endpoint, `http://127.0.0.1:PORT` (`/varz`, `/routez`, ...).
    pub fn monitor_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports().monitor)
    }

    /// The URL other cluster members route to, `nats-route://127.0.0.1:PORT`.
    ///
    /// # Panics
    /// If the server is not part of a cluster.
    pub fn route_url(&self) -> String {
        let port = self
            .ports()
            .route
            .expect("route_url of a nats-server that is not in a cluster");
        format!("nats-route://127.0.0.1:{port}")
    }

    /// The names of the servers this one has a route to right now, sorted (from `/routez`
    /// of its monitoring endpoint).
    pub fn route_peers(&self) -> Result<Vec<String>, String> {
        let response = crate::http::get(&self.monitor_url(), "/routez")
            .map_err(|e| format!("GET {}/routez: {e}", self.monitor_url()))?;
        let json: serde_json::Value = serde_json::from_slice(&response.body)
            .map_err(|e| format!("/routez is not JSON ({e}): {}", response.text()))?;
        let mut names: Vec<String> = json["routes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["remote_name"].as_str().map(str::to_string))
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// The server's name (`server_name`), if one was given.
    pub fn name(&self) -> Option<&str> {
        self.options.name.as_deref()
    }

    /// The server's log (stdout and stderr) of its current or last run.
    pub fn log(&self) -> String {
        read_log(&self.log)
    }

    /// Kills the server. Its ports are free until [`Self::restart`] asks for them again;
    /// the JetStream store stays.
    pub fn stop(&mut self) {
        kill(&mut self.child);
    }

    /// Starts the server again on the same ports with the same store.
    ///
    /// # Panics
    /// If it cannot listen on those ports again (another process took one while it was
    /// stopped): the test would otherwise reconnect to a stranger.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Starts the server again on the same ports with a new, empty JetStream store: a
    /// server that comes back without its data (streams, KV buckets and their contents
    /// are gone). The old store stays on disk, unused.
    ///
    /// # Panics
    /// As [`Self::restart`].
    pub fn restart_without_data(&mut self) {
        self.stop();
        self.store = self.dir.path().join(format!("js-{}", self.runs + 1));
        self.spawn();
    }

    /// Whether the server process is running.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// The OS process id of the running server.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        kill(&mut self.child);
        if let (Some(ports), Some(members)) = (self.ports, &self.members) {
            unregister_members(ports.client, members);
        }
    }
}

/// The members of every running test server, by client port: tests hand URLs around
/// (to hosts, to `wash`, to helpers), and [`creds_for_url`] finds the creds that the
/// server at a URL admits without every helper taking the server too.
static MEMBERS_BY_PORT: Mutex<BTreeMap<u16, Arc<Members>>> = Mutex::new(BTreeMap::new());

fn register_members(port: u16, members: &Arc<Members>) {
    let mut map = MEMBERS_BY_PORT.lock().unwrap_or_else(|e| e.into_inner());
    map.insert(port, members.clone());
}

fn unregister_members(port: u16, members: &Arc<Members>) {
    let mut map = MEMBERS_BY_PORT.lock().unwrap_or_else(|e| e.into_inner());
    // A later server may have the port by now: remove only our own entry.
    if map.get(&port).is_some_and(|m| Arc::ptr_eq(m, members)) {
        map.remove(&port);
    }
}

/// The creds file of `role` on the test server at `url` (`nats://127.0.0.1:PORT`, or
/// several URLs of one cluster separated by commas); `None` when that server is open or
/// not one of this process's test servers.
pub fn creds_for_url(url: &str, role: Role) -> Option<PathBuf> {
    let map = MEMBERS_BY_PORT.lock().unwrap_or_else(|e| e.into_inner());
    url.split(',')
        .filter_map(|u| url_port(u.trim()))
        .find_map(|port| map.get(&port))
        .map(|m| m.creds(role))
}

/// A client playing `role` on the test server at `url` (with its creds when it admits
/// members only): `async_nats::connect` for tests.
pub async fn connect_as(
    url: impl AsRef<str>,
    role: Role,
) -> Result<async_nats::Client, async_nats::ConnectError> {
    let url = url.as_ref();
    client_options(creds_for_url(url, role).as_deref())
        .await
        .connect(url)
        .await
}

/// [`connect_as`] with the host role, the widest of a lattice member's (the tests' own
/// publisher and subscriber).
pub async fn connect(url: impl AsRef<str>) -> Result<async_nats::Client, async_nats::ConnectError> {
    connect_as(url, Role::Host).await
}

/// Who a server started with `options` admits: `None` (anyone) when it is open by its
/// options or the run's `NIMBUS_TEST_NATS=open`, or when an included config brings its
/// own auth; else the given members, or new ones.
fn admitted_members(options: &NatsOptions) -> Option<Arc<Members>> {
    if options.open || options.include.is_some() || crate::auth::open_by_env() {
        return None;
    }
    Some(
        options
            .members
            .clone()
            .unwrap_or_else(|| Arc::new(Members::generate())),
    )
}

/// Several `nats-server`s joined by routes into one cluster.
pub struct NatsCluster {
    /// The members, in start order (named `n0`, `n1`, ...).
    pub servers: Vec<NatsServer>,
}

impl NatsCluster {
    /// Starts `size` servers (no JetStream), each with explicit routes to the ones started
    /// before it (so a restarted member is reconnected by the others), and waits until
    /// every member has a route to every other one.
    ///
    /// # Panics
    /// If the routes do not form within 15 s (with what each member sees).
    pub fn start(size: usize) -> Self {
        Self::start_with(size, NatsOptions::default())
    }

    /// [`NatsCluster::start`] with every member's `include`, `open` and `members` taken from
    /// `options` (the cluster settings are its own). All members admit the same users.
    pub fn start_with(size: usize, options: NatsOptions) -> Self {
        // Made once here, so that every member admits the same users.
        let members = admitted_members(&options);
        let open = members.is_none();
        let mut servers: Vec<NatsServer> = Vec::with_capacity(size);
        for i in 0..size {
            let routes = servers.iter().map(NatsServer::route_url).collect();
            servers.push(NatsServer::start_with(NatsOptions {
                jetstream: false,
                cluster: Some("nimbus-test".into()),
                routes,
                name: Some(format!("n{i}")),
                include: options.include.clone(),
                open,
                members: members.clone(),
            }));
        }
        let cluster = Self { servers };
        cluster.wait_for_routes();
        cluster
    }

    /// Waits until every member has a route to every other one.
    fn wait_for_routes(&self) {
        let deadline = Instant::now() + ROUTES_TIMEOUT;
        loop {
            let seen: Vec<(String, Result<Vec<String>, String>)> = self
                .servers
                .iter()
                .map(|s| (s.name().unwrap_or_default().to_string(), s.route_peers()))
                .collect();
            let complete = seen.iter().all(|(name, peers)| {
                peers.as_ref().is_ok_and(|peers| {
                    self.servers
                        .iter()
                        .filter_map(NatsServer::name)
                        .filter(|other| other != name)
                        .all(|other| peers.iter().any(|p| p == other))
                })
            });
            if complete {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the cluster's routes did not form within {ROUTES_TIMEOUT:?}; routes per member: {seen:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The client URLs of all members.
    pub fn urls(&self) -> Vec<String> {
        self.servers.iter().map(NatsServer::url).collect()
    }
}

/// Why one start of redis-server did not come up.
enum RedisStartError {
    /// It exited before answering; the log says why.
    Exited { status: ExitStatus, log: String },
}

/// A running `redis-server`, persistence off unless started with
/// [`RedisServer::start_durable`]; killed on drop. It listens on a port the
/// harness checked is held by this very process. [`RedisServer::stop`] kills it (the port is
/// free again); [`RedisServer::restart`] starts it on the same port, and panics if it
/// cannot have it.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: TempDir,
    runs: u32,
    /// Append-only file on, fsync before every answer ([`RedisServer::start_durable`]).
    durable: bool,
}

impl RedisServer {
    /// A fresh server on a free port (another one if that port is taken before the server
    /// binds it).
    pub fn start() -> Self {
        Self::start_with(false)
    }

    /// Like [`Self::start`], but durable: the append-only file is on with `appendfsync
    /// always` (a write is on disk before Redis answers it), so a [`Self::restart`] (a
    /// kill and a start on the same directory) comes back with every acknowledged write.
    pub fn start_durable() -> Self {
        Self::start_with(true)
    }

    fn start_with(durable: bool) -> Self {
        let dir = tempfile::tempdir().expect("failed to create a temp dir for redis-server");
        let mut server = Self {
            child: None,
            port: 0,
            dir,
            runs: 0,
            durable,
        };
        let mut failures = Vec::new();
        for _ in 0..REDIS_PORT_ATTEMPTS {
            server.port = free_port();
            match server.spawn() {
                Ok(()) => return server,
                Err(RedisStartError::Exited { status, log }) => {
                    assert!(
                        log.contains("Address already in use"),
                        "redis-server exited before answering ({status}); log:\n{log}"
                    );
                    failures.push(format!("port {}: {log}", server.port));
                }
            }
        }
        panic!(
            "redis-server found every port it tried taken: {}",
            failures.join("\n")
        );
    }

    fn spawn(&mut self) -> Result<(), RedisStartError> {
        self.runs += 1;
        let (log, stdout, stderr) = log_file(self.dir.path(), "redis", self.runs);
        let mut child = Command::new(find_binary("REDIS_SERVER", "redis-server"))
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--daemonize", "no"])
            .args(match self.durable {
                true => ["--appendonly", "yes", "--appendfsync", "always"],
                false => ["--appendonly", "no", "--appendfsync", "everysec"],
            })
            .arg("--dir")
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .expect("failed to spawn redis-server");
        let start = Instant::now();
        loop {
            if let Some(status) = exited(&mut child) {
                return Err(RedisStartError::Exited {
                    status,
                    log: read_log(&log),
                });
            }
            // Ready once the server on the port says it is our child; anyone else there
            // means the child cannot bind and is about to exit.
            if redis_pid(self.port) == Some(child.id()) {
                self.child = Some(child);
                return Ok(());
            }
            if start.elapsed() > READY_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "redis-server (pid {}) did not answer on port {} within {READY_TIMEOUT:?}; log:\n{}",
                    child.id(),
                    self.port,
                    read_log(&log)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The client URL, `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The OS process id of the running server.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the server. Its port is free until [`Self::restart`] asks for it again.
    pub fn stop(&mut self) {
        kill(&mut self.child);
    }

    /// Starts the server again on the same port (its data is gone unless it was
    /// started durable).
    ///
    /// # Panics
    /// If it cannot listen on that port again (another process took it while it was
    /// stopped): the test would otherwise talk to a stranger.
    pub fn restart(&mut self) {
        self.stop();
        if let Err(RedisStartError::Exited { status, log }) = self.spawn() {
            panic!(
                "redis-server could not start again on port {} ({status}); if the log says \
                 `Address already in use`, another process took the port while it was stopped; log:\n{log}",
                self.port
            );
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        kill(&mut self.child);
    }
}

/// The pid of the redis-server answering on `port` (`INFO server`), if one does.
fn redis_pid(port: u16) -> Option<u32> {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    conn.write_all(b"INFO server\r\n").ok()?;
    // A bulk string: `$LEN\r\n` then LEN bytes; `process_id:` is in the first lines.
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = conn.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        reply.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&reply);
        if let Some(pid) = text
            .lines()
            .find_map(|l| l.strip_prefix("process_id:"))
            .filter(|_| text.contains("run_id:"))
        {
            return pid.trim().parse().ok();
        }
        if reply.len() > 64 * 1024 {
            break;
        }
    }
    None
}

/// Connect options of a client with the creds file `creds` (`None`: no credentials, for
/// an open server).
///
/// # Panics
/// If the creds file cannot be read.
pub async fn client_options(creds: Option<&Path>) -> async_nats::ConnectOptions {
    let options = async_nats::ConnectOptions::new();
    match creds {
        Some(path) => options
            .credentials_file(path)
            .await
            .unwrap_or_else(|e| panic!("failed to read creds {}: {e}", path.display())),
        None => options,
    }
}
