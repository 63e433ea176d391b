//! The fault suite (issue 14, item 3): every case runs `kvcounter` behind the HTTP server
//! provider under a load of writes (each `GET /faults` adds 1 to a counter and answers the
//! new value), injects one fault while the load runs, and then reads the counter back:
//! every acknowledged (2xx) value must be unique and at most the value the store holds
//! at the end, so a write that was acknowledged and then lost (a store that went back, a
//! counter that restarted) shows up as a repeated or a too-large value.
//!
//! Hosts are real processes: this test binary started again as a child
//! ([`fault_host_process`], which runs a lattice host from a JSON spec in an environment
//! variable), with the HTTP server and key-value providers as their own processes under
//! the host's supervisor. So a `kill -9` of a host or a provider is a real one, and the
//! memory figure is the host process' RSS from `/proc/PID/status` (the providers' own
//! processes are not in it).
//!
//! Per case a line `faults| ...` goes to stderr and, when `NIMBUS_FAULTS_REPORT` names a
//! file, a tab-separated row is appended to it (`scripts/faults.sh` prints the table).
//! `NIMBUS_FAULTS_SECS` (default 3) is how long the load keeps running after the fault;
//! the short form (CI) uses the default. `NIMBUS_FAULTS_REDIS_VOLATILE=1` runs the Redis
//! case with persistence off, where it must fail (a check of the check). Loopback only;
//! every wait is bounded. Figures and how to read them: docs/reliability.md.
//!
//! `NIMBUS_FAULTS_AUTH=1` runs every case on a lattice made by `wash lattice init` (the
//! nats-server admits only its members; hosts, providers and the test's own clients
//! connect with the creds of their role), `NIMBUS_FAULTS_AUTH=tls` also over TLS:
//! scripts/test.sh runs the suite once more that way, so the faults hold with auth on.

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nimbus_core::link::LinkDefinition;
use nimbus_core::subjects::{CtlCommand, Subjects};
use nimbus_core::wire::{Invocation, WasmCloudEntity};
use nimbus_lattice::{Host, MemoryStore, NatsConfig, TlsConfig};
use nimbus_runtime::{Runtime, RuntimeConfig};
use nimbus_tests::auth::{AuthMode, LatticeCreds};
use nimbus_tests::servers::{NatsCluster, NatsOptions, NatsServer, RedisServer, free_port};
use nimbus_tests::{Signer, actor_wasm, http};
use serde::{Deserialize, Serialize};

use crate::lattice_support::{cluster_seed, lattice_name, provider_key};

const HTTP_CONTRACT: &str = "wasmcloud:httpserver";
const KV_CONTRACT: &str = "wasmcloud:keyvalue";
const HTTP_BIN: &str = env!("CARGO_BIN_EXE_nimbus-test-httpserver-provider");
const KV_BIN: &str = env!("CARGO_BIN_EXE_nimbus-test-keyvalue-provider");

/// The spec of a child host process (JSON).
const HOST_SPEC_ENV: &str = "NIMBUS_FAULTS_HOST_SPEC";
/// Seconds the load keeps running after the fault (default [`DEFAULT_SECS`]).
const SECS_ENV: &str = "NIMBUS_FAULTS_SECS";
/// Authentication of the suite's lattices (see the module doc).
const AUTH_ENV: &str = "NIMBUS_FAULTS_AUTH";
/// A file each case appends its result row to.
const REPORT_ENV: &str = "NIMBUS_FAULTS_REPORT";
const DEFAULT_SECS: f64 = 3.0;

/// The counter the load adds to.
const PATH: &str = "/faults";
/// Client threads of the load, each sending one request after the other.
const WORKERS: usize = 4;
/// Load before the fault.
const WARM: Duration = Duration::from_secs(1);
/// Bound of every wait for something to become ready.
const WAIT: Duration = Duration::from_secs(60);
/// The longest a case may take to serve again after its fault before it fails.
const RECOVERY_LIMIT: Duration = Duration::from_secs(60);
/// The hosts' RPC and call deadline, and the HTTP server's wait for the actor: long
/// enough for a loaded machine, short enough that a request whose actor was killed fails
/// within the case.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

fn fault_secs() -> Duration {
    let secs = std::env::var(SECS_ENV)
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| *s > 0.0)
        .unwrap_or(DEFAULT_SECS);
    Duration::from_secs_f64(secs)
}

// ---------------------------------------------------------------------------------------
// Host processes
// ---------------------------------------------------------------------------------------

/// What a child host process runs.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct HostSpec {
    nats_urls: Vec<String>,
    lattice: String,
    seed: String,
    /// An in-memory lattice store instead of JetStream (a cluster without JetStream).
    memory_store: bool,
    /// The signed actor module to start, if any.
    actor: Option<PathBuf>,
    instances: u16,
    max_instances: Option<u16>,
    /// The HTTP server and key-value providers to run (as processes) and link.
    providers: Option<Providers>,
    /// The host's NATS creds file (authenticated lattices).
    creds: Option<PathBuf>,
    /// The creds file the host gives the providers it starts.
    provider_creds: Option<PathBuf>,
    /// The CA of a TLS lattice.
    tls_ca: Option<PathBuf>,
    /// Written with the host id once the host runs everything above.
    ready_file: PathBuf,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Providers {
    actor_id: String,
    http_id: String,
    kv_id: String,
    http_port: u16,
    /// More HTTP server link values.
    http_extra: HashMap<String, String>,
    kv_values: HashMap<String, String>,
}

/// The host process of the fault suite: does nothing unless started by [`HostProc`] with
/// a spec, then runs a host until it is killed (or its parent, the test, goes away).
#[test]
#[ignore = "the host process of the fault suite: runs only as a child of a fault test"]
fn fault_host_process() {
    let Ok(spec) = std::env::var(HOST_SPEC_ENV) else {
        return;
    };
    let spec: HostSpec = serde_json::from_str(&spec).unwrap();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("warn"))
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .try_init();
    // A test that panics or is killed must not leave hosts behind.
    let parent = std::os::unix::process::parent_id();
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_millis(200));
            if std::os::unix::process::parent_id() != parent {
                std::process::exit(3);
            }
        }
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let runtime = Runtime::new(RuntimeConfig {
            max_total_instances: 64,
            max_memory_bytes: 16 * 1024 * 1024,
            default_call_timeout: CALL_TIMEOUT,
            ..RuntimeConfig::default()
        })
        .unwrap();
        let mut nats = NatsConfig::urls(spec.nats_urls.clone());
        nats.keep_server_order = true;
        nats.credentials_file = spec.creds.clone();
        nats.provider_credentials_file = spec.provider_creds.clone();
        nats.tls = spec.tls_ca.clone().map(|ca| TlsConfig {
            required: true,
            root_certificates: vec![ca],
            client_certificate: None,
        });
        let mut builder = Host::builder()
            .runtime(runtime)
            .cluster_seed(&spec.seed)
            .rpc_timeout(CALL_TIMEOUT)
            .lattice(&spec.lattice)
            .nats(nats);
        if spec.memory_store {
            builder = builder.lattice_store(Arc::new(MemoryStore::new()));
        }
        if let Some(p) = &spec.providers {
            builder = builder
                .provider_executable("httpserver", &p.http_id, HTTP_CONTRACT, HTTP_BIN)
                .provider_executable("keyvalue", &p.kv_id, KV_CONTRACT, KV_BIN);
        }
        let host = builder.build().await.unwrap();
        if let Some(actor) = &spec.actor {
            host.start_actor_with_max(
                std::fs::read(actor).unwrap(),
                spec.instances,
                spec.max_instances,
            )
            .await
            .unwrap();
        }
        if let Some(p) = &spec.providers {
            let mut http_values = HashMap::from([
                ("port".to_string(), p.http_port.to_string()),
                (
                    "timeout_ms".to_string(),
                    (2 * CALL_TIMEOUT).as_millis().to_string(),
                ),
            ]);
            http_values.extend(p.http_extra.clone());
            host.put_link(LinkDefinition::new(
                &p.actor_id,
                &p.http_id,
                "default",
                HTTP_CONTRACT,
                http_values,
            ))
            .await
            .unwrap();
            host.put_link(LinkDefinition::new(
                &p.actor_id,
                &p.kv_id,
                "default",
                KV_CONTRACT,
                p.kv_values.clone(),
            ))
            .await
            .unwrap();
            host.launch_provider("httpserver", "default", None)
                .await
                .unwrap();
            host.launch_provider("keyvalue", "default", None)
                .await
                .unwrap();
        }
        let partial = spec.ready_file.with_extension("partial");
        std::fs::write(&partial, host.id()).unwrap();
        std::fs::rename(&partial, &spec.ready_file).unwrap();
        host.stopped().await;
    });
}

/// A child host process; on drop its provider processes and then it are killed.
struct HostProc {
    child: Child,
    id: String,
    log: PathBuf,
}

impl HostProc {
    fn spawn(mut spec: HostSpec, dir: &Path, name: &str) -> Self {
        spec.ready_file = dir.join(format!("{name}.ready"));
        let log = dir.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let err = out.try_clone().unwrap();
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["faults::fault_host_process", "--exact", "--ignored"])
            .args(["--nocapture", "--test-threads", "1"])
            .env(HOST_SPEC_ENV, serde_json::to_string(&spec).unwrap())
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(id) = std::fs::read_to_string(&spec.ready_file)
                && !id.is_empty()
            {
                return HostProc { child, id, log };
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "host {name} exited ({status}) before it was ready; log:\n{}",
                    read_log(&log)
                );
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "host {name} not ready within {WAIT:?}; log:\n{}",
                    read_log(&log)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `kill -9` of the host process (its provider processes, if any, stay orphaned: the
    /// suite kills only hosts without providers this way).
    fn kill_9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// The pid of the host's provider process running `binary`, waiting for it to exist.
    fn provider_pid(&self, binary: &str) -> u32 {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(pid) = children_of(self.pid())
                .into_iter()
                .find(|(_, cmd)| cmd == binary)
                .map(|(pid, _)| pid)
            {
                return pid;
            }
            assert!(
                Instant::now() < deadline,
                "host {} runs no {binary} within {WAIT:?}",
                self.id
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Asserts the host process is still running (a fault must not take it down).
    fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "host {} exited ({status}); log:\n{}",
                self.id,
                read_log(&self.log)
            );
        }
    }
}

impl Drop for HostProc {
    fn drop(&mut self) {
        // The host first, so that its supervisor cannot start a provider again, then the
        // provider processes it had.
        let providers = match self.child.try_wait() {
            Ok(None) => children_of(self.pid()),
            _ => Vec::new(),
        };
        let _ = self.child.kill();
        let _ = self.child.wait();
        for (pid, _) in providers {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
    }
}

fn read_log(path: &Path) -> String {
    let log = std::fs::read_to_string(path).unwrap_or_default();
    let start = log.len().saturating_sub(8000);
    log[log.floor_char_boundary(start)..].to_string()
}

/// The processes whose parent is `parent`, with the path of their executable (argv[0]).
fn children_of(parent: u32) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid ...`; comm may hold spaces and parentheses.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid != Some(parent) {
            continue;
        }
        let cmd = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let argv0 = cmd.split(|b| *b == 0).next().unwrap_or_default();
        out.push((pid, String::from_utf8_lossy(argv0).into_owned()));
    }
    out
}

/// Resident memory of process `pid` in KiB (`VmRSS` of `/proc/PID/status`).
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or_else(|| panic!("no VmRSS for process {pid}"))
}

fn kill_9(pid: u32) {
    let status = Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .expect("failed to run kill");
    assert!(status.success(), "kill -9 {pid} failed");
}

/// The keys, the signed actor and the work directory of one case.
struct Fixture {
    dir: tempfile::TempDir,
    lattice: String,
    seed: String,
    actor_path: PathBuf,
    actor_id: String,
    http_id: String,
    kv_id: String,
    http_port: u16,
    /// The lattice's credentials when the suite runs with auth on.
    auth: Option<LatticeCreds>,
}

impl Fixture {
    fn new(test: &str) -> Self {
        let lattice = lattice_name(test);
        let auth = LatticeCreds::for_mode(&lattice, AuthMode::from_env(AUTH_ENV));
        let dir = tempfile::tempdir().unwrap();
        let signer = Signer::new();
        let actor = signer.sign(&actor_wasm("kvcounter"), &[HTTP_CONTRACT, KV_CONTRACT]);
        let actor_path = dir.path().join("kvcounter.wasm");
        std::fs::write(&actor_path, actor).unwrap();
        Fixture {
            lattice,
            auth,
            seed: cluster_seed(),
            actor_path,
            actor_id: signer.module.public_key(),
            http_id: provider_key(),
            kv_id: provider_key(),
            http_port: free_port(),
            dir,
        }
    }

    /// The file backend, in the case's directory.
    fn file_backend(&self) -> HashMap<String, String> {
        let path = self.dir.path().join("kv");
        HashMap::from([
            ("backend".to_string(), "file".to_string()),
            ("path".to_string(), path.display().to_string()),
        ])
    }

    /// A host on `urls`: the actor if `actor`, the providers linked to it with
    /// `kv_values` if given.
    fn spec(
        &self,
        urls: Vec<String>,
        actor: bool,
        kv_values: Option<HashMap<String, String>>,
    ) -> HostSpec {
        HostSpec {
            nats_urls: urls,
            lattice: self.lattice.clone(),
            seed: self.seed.clone(),
            actor: actor.then(|| self.actor_path.clone()),
            instances: 4,
            providers: kv_values.map(|kv_values| Providers {
                actor_id: self.actor_id.clone(),
                http_id: self.http_id.clone(),
                kv_id: self.kv_id.clone(),
                http_port: self.http_port,
                kv_values,
                ..Providers::default()
            }),
            creds: self.auth.as_ref().map(|a| a.creds("host")),
            provider_creds: self.auth.as_ref().map(|a| a.creds("provider")),
            tls_ca: self.auth.as_ref().and_then(LatticeCreds::tls_ca),
            ..HostSpec::default()
        }
    }

    /// A JetStream nats-server for this case's lattice (admitting only its members when
    /// the suite runs with auth on).
    fn nats(&self) -> NatsServer {
        match &self.auth {
            Some(auth) => NatsServer::start_with(auth.server_options()),
            // The suite's open mode is a 0.x-style open lattice.
            None => NatsServer::start_with(NatsOptions {
                jetstream: true,
                ..NatsOptions::open()
            }),
        }
    }

    /// A NATS client of a lattice member with the host role (the test's own publisher).
    async fn client(&self, url: &str) -> async_nats::Client {
        let mut options = async_nats::ConnectOptions::new();
        if let Some(auth) = &self.auth {
            options = options.credentials_file(auth.creds("host")).await.unwrap();
            if let Some(ca) = auth.tls_ca() {
                options = options.require_tls(true).add_root_certificates(ca);
            }
        }
        options.connect(url).await.unwrap()
    }

    fn host(&self, spec: HostSpec, name: &str) -> HostProc {
        HostProc::spawn(spec, self.dir.path(), name)
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.http_port)
    }
}

// ---------------------------------------------------------------------------------------
// The load and the check
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Answer {
    /// A 2xx with the counter value it acknowledged.
    Acked(i64),
    /// Anything else: a status, a 2xx without a counter, a connection error.
    Failed(String),
}

#[derive(Debug, Clone)]
struct Sample {
    start: Duration,
    end: Duration,
    answer: Answer,
}

/// Client threads adding to the counter until stopped, every answer recorded.
struct Load {
    base: String,
    t0: Instant,
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<Sample>>>,
    workers: Vec<JoinHandle<()>>,
}

/// One write: `GET PATH`.
fn write_once(base: &str) -> Answer {
    match http::send(base, "GET", PATH, &[], None) {
        Ok(r) if (200..300).contains(&r.status) => {
            match serde_json::from_slice::<serde_json::Value>(&r.body)
                .ok()
                .and_then(|v| v["counter"].as_i64())
            {
                Some(n) => Answer::Acked(n),
                None => Answer::Failed(format!("2xx without a counter: {}", r.text())),
            }
        }
        Ok(r) => Answer::Failed(format!("{} {}", r.status, r.text())),
        Err(e) => Answer::Failed(e.to_string()),
    }
}

impl Load {
    fn start(base: &str, workers: usize) -> Self {
        let mut load = Load {
            base: base.to_string(),
            t0: Instant::now(),
            stop: Arc::new(AtomicBool::new(false)),
            samples: Arc::new(Mutex::new(Vec::new())),
            workers: Vec::new(),
        };
        for _ in 0..workers {
            load.add_worker(Duration::MAX);
        }
        load
    }

    /// One more client thread, for at most `for_at_most` (or until the load stops).
    fn add_worker(&mut self, for_at_most: Duration) {
        let (base, t0, stop, samples) = (
            self.base.clone(),
            self.t0,
            self.stop.clone(),
            self.samples.clone(),
        );
        let until = Instant::now().checked_add(for_at_most);
        self.workers.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) && until.is_none_or(|u| Instant::now() < u) {
                let start = t0.elapsed();
                let answer = write_once(&base);
                let failed = matches!(answer, Answer::Failed(_));
                samples.lock().unwrap().push(Sample {
                    start,
                    end: t0.elapsed(),
                    answer,
                });
                if failed {
                    // Do not spin on a listener that is down.
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }));
    }

    fn now(&self) -> Duration {
        self.t0.elapsed()
    }

    fn acked(&self) -> usize {
        self.samples
            .lock()
            .unwrap()
            .iter()
            .filter(|s| matches!(s.answer, Answer::Acked(_)))
            .count()
    }

    /// Whether a request that started after every failure so far (since `since`)
    /// succeeded.
    fn recovered_since(&self, since: Duration) -> bool {
        recovery(&self.samples.lock().unwrap(), since).is_some()
    }

    fn stop(self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Relaxed);
        for w in self.workers {
            w.join().expect("a load thread panicked");
        }
        Arc::try_unwrap(self.samples)
            .expect("every load thread is done")
            .into_inner()
            .unwrap()
    }
}

/// Time from `fault` to the end of the first successful request that started after the
/// last failed one started (of the failures that ended after `fault`): from then on new
/// requests succeed. A request in flight at the fault that fails later (at its deadline)
/// does not delay it. `None` if no request succeeded after the last failure.
fn recovery(samples: &[Sample], fault: Duration) -> Option<Duration> {
    let last_failure = samples
        .iter()
        .filter(|s| s.end >= fault && matches!(s.answer, Answer::Failed(_)))
        .map(|s| s.start)
        .max()
        .unwrap_or(fault)
        .max(fault);
    samples
        .iter()
        .filter(|s| s.start > last_failure && matches!(s.answer, Answer::Acked(_)))
        .map(|s| s.end)
        .min()
        .map(|end| end.saturating_sub(fault))
}

/// Acknowledged writes the store does not hold: `stored` is what the counter held after
/// the load (the read-back is itself an Add, answering `stored + 1`). Each acknowledged
/// value must be in `1..=stored` and unique; a value seen twice or above `stored` is a
/// write that was acknowledged and then lost.
fn lost_writes(acked: &[i64], stored: i64) -> usize {
    let mut seen = HashSet::new();
    acked
        .iter()
        .filter(|&&v| !((1..=stored).contains(&v) && seen.insert(v)))
        .count()
}

/// The distinct failures of `samples` (their first 100 characters), at most 8.
fn failure_kinds(samples: &[Sample]) -> Vec<String> {
    let mut kinds: Vec<String> = samples
        .iter()
        .filter_map(|s| match &s.answer {
            Answer::Failed(e) => Some(e.chars().take(100).collect()),
            Answer::Acked(_) => None,
        })
        .collect();
    kinds.sort();
    kinds.dedup();
    kinds.truncate(8);
    kinds
}

/// One case's figures.
#[derive(Debug)]
struct Outcome {
    case: String,
    requests: usize,
    acked: usize,
    lost: usize,
    failed: usize,
    recover: Duration,
    rss_before_kib: u64,
    rss_after_kib: u64,
    note: String,
}

impl Outcome {
    fn report(&self) {
        let line = format!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            self.case,
            self.acked,
            self.lost,
            self.failed,
            self.requests,
            self.recover.as_millis(),
            self.rss_before_kib,
            self.rss_after_kib,
            self.note
        );
        eprintln!("faults| {}", line.replace('\t', " | "));
        if let Ok(path) = std::env::var(REPORT_ENV) {
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .unwrap();
            writeln!(file, "{line}").unwrap();
        }
    }
}

/// When a case's recovery is counted from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// A kill or a restart: from the moment it is injected; the load then runs for
    /// [`fault_secs`] more.
    Instant,
    /// Abuse that lasts (the fault closure runs it for [`fault_secs`]): from its end.
    Window,
}

/// Runs one case: waits for the counter to answer, starts the load, injects `fault`
/// after [`WARM`], keeps the load running for [`fault_secs`] and until it recovered,
/// reads the counter back and reports. `rss_of` is the host process measured.
fn run_case(
    case: &str,
    base: &str,
    rss_of: &HostProc,
    kind: Fault,
    fault: impl FnOnce(&mut Load) -> String,
) -> Outcome {
    // The report names the authentication the case ran with.
    let case = &match AuthMode::from_env(AUTH_ENV) {
        AuthMode::Open => case.to_string(),
        AuthMode::Creds => format!("{case} [auth]"),
        AuthMode::CredsTls => format!("{case} [auth+TLS]"),
    };
    http::wait_for(base, "/ready", WAIT, |r| r.status == 200);
    let rss_before_kib = rss_kib(rss_of.pid());
    let mut load = Load::start(base, WORKERS);
    std::thread::sleep(WARM);
    let deadline = Instant::now() + WAIT;
    while load.acked() < 5 {
        assert!(Instant::now() < deadline, "{case}: the load got no answers");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut fault_at = load.now();
    let note = fault(&mut load);
    match kind {
        Fault::Instant => std::thread::sleep(fault_secs()),
        Fault::Window => {
            fault_at = load.now();
            std::thread::sleep(WARM);
        }
    }
    let deadline = Instant::now() + RECOVERY_LIMIT;
    while !load.recovered_since(fault_at) {
        if Instant::now() > deadline {
            let samples = load.stop();
            panic!(
                "{case}: no request succeeded within {RECOVERY_LIMIT:?} after the last failure; \
                 failures: {:?}; log of the measured host:\n{}",
                failure_kinds(&samples),
                read_log(&rss_of.log)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // The recovery figure counts the requests started before it was seen (stopping the
    // load lets those in flight finish); failures after it (if any) still count as failed.
    let seen_at = load.now();
    let samples = load.stop();
    let started: Vec<Sample> = samples
        .iter()
        .filter(|s| s.start <= seen_at)
        .cloned()
        .collect();
    let recover = recovery(&started, fault_at)
        .or_else(|| recovery(&samples, fault_at))
        .unwrap_or_else(|| {
            panic!(
                "{case}: the last requests failed: {:?}",
                failure_kinds(&samples)
            )
        });
    let final_value = match write_once(base) {
        Answer::Acked(n) => n,
        Answer::Failed(e) => panic!("{case}: reading the counter back failed: {e}"),
    };
    let acked: Vec<i64> = samples
        .iter()
        .filter_map(|s| match s.answer {
            Answer::Acked(n) => Some(n),
            Answer::Failed(_) => None,
        })
        .collect();
    let failures: Vec<&str> = samples
        .iter()
        .filter_map(|s| match &s.answer {
            Answer::Failed(e) => Some(e.as_str()),
            Answer::Acked(_) => None,
        })
        .collect();
    let outcome = Outcome {
        case: case.to_string(),
        requests: samples.len(),
        acked: acked.len(),
        lost: lost_writes(&acked, final_value - 1),
        failed: failures.len(),
        recover,
        rss_before_kib,
        rss_after_kib: rss_kib(rss_of.pid()),
        note,
    };
    outcome.report();
    let kinds = failure_kinds(&samples);
    eprintln!(
        "faults| {case}: failures seen: {:?}",
        &kinds[..kinds.len().min(8)]
    );
    assert!(outcome.acked > 0, "{case}: nothing acknowledged");
    assert!(
        !failures.iter().any(|f| f.starts_with("2xx without")),
        "{case}: a 2xx answer without a counter: {kinds:?}"
    );
    assert_eq!(
        outcome.lost,
        0,
        "{case}: acknowledged writes lost (store holds {}, {} acknowledged)",
        final_value - 1,
        outcome.acked
    );
    outcome
}

// ---------------------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------------------

#[test]
fn faults_kill_9_of_one_of_two_actor_hosts_loses_no_acknowledged_write() {
    let fx = Fixture::new("faults-host-kill");
    let nats = fx.nats();
    let _providers = fx.host(
        fx.spec(vec![nats.url()], false, Some(fx.file_backend())),
        "providers",
    );
    let mut a = fx.host(fx.spec(vec![nats.url()], true, None), "a");
    let mut b = fx.host(fx.spec(vec![nats.url()], true, None), "b");
    run_case(
        "kill -9 of one of two actor hosts",
        &fx.base(),
        &b,
        Fault::Instant,
        |_| {
            a.kill_9();
            "RSS: the surviving actor host".into()
        },
    );
    b.assert_running();
}

/// `kill -9` of one provider process of a host under load: the supervisor restarts it as
/// a new process and no acknowledged write is lost.
fn provider_kill_case(lattice: &str, binary: &str, case: &str) {
    let fx = Fixture::new(lattice);
    let nats = fx.nats();
    let mut host = fx.host(
        fx.spec(vec![nats.url()], true, Some(fx.file_backend())),
        "host",
    );
    let pid = host.provider_pid(binary);
    run_case(case, &fx.base(), &host, Fault::Instant, |_| {
        kill_9(pid);
        String::new()
    });
    assert_ne!(host.provider_pid(binary), pid, "restarted as a new process");
    host.assert_running();
}

#[test]
fn faults_kill_9_of_the_keyvalue_provider_loses_no_acknowledged_write() {
    provider_kill_case("faults-kv-kill", KV_BIN, "kill -9 of the keyvalue provider");
}

#[test]
fn faults_kill_9_of_the_httpserver_provider_loses_no_acknowledged_write() {
    provider_kill_case(
        "faults-http-kill",
        HTTP_BIN,
        "kill -9 of the httpserver provider",
    );
}

#[test]
fn faults_nats_server_restart_loses_no_acknowledged_write() {
    let fx = Fixture::new("faults-nats-restart");
    let mut nats = fx.nats();
    let mut host = fx.host(
        fx.spec(vec![nats.url()], true, Some(fx.file_backend())),
        "host",
    );
    run_case(
        "nats-server restart",
        &fx.base(),
        &host,
        Fault::Instant,
        |_| {
            nats.restart();
            String::new()
        },
    );
    host.assert_running();
}

#[test]
fn faults_redis_restart_loses_no_acknowledged_write() {
    // NIMBUS_FAULTS_REDIS_VOLATILE=1: persistence off, so the restart empties the store
    // and the case must fail with acknowledged writes lost (a check of the check).
    let volatile = std::env::var_os("NIMBUS_FAULTS_REDIS_VOLATILE").is_some();
    let mut redis = match volatile {
        true => RedisServer::start(),
        false => RedisServer::start_durable(),
    };
    let fx = Fixture::new("faults-redis-restart");
    let nats = fx.nats();
    let kv = HashMap::from([
        ("backend".to_string(), "redis".to_string()),
        ("url".to_string(), redis.url()),
        ("connect_timeout_ms".to_string(), "500".to_string()),
        ("response_timeout_ms".to_string(), "1000".to_string()),
    ]);
    let mut host = fx.host(fx.spec(vec![nats.url()], true, Some(kv)), "host");
    run_case(
        match volatile {
            true => "Redis restart (kill, persistence off: must report losses)",
            false => "Redis restart (kill, AOF appendfsync always)",
        },
        &fx.base(),
        &host,
        Fault::Instant,
        |_| {
            redis.restart();
            "backend=redis".into()
        },
    );
    host.assert_running();
}

#[test]
fn faults_nats_cluster_losing_a_node_loses_no_acknowledged_write() {
    let fx = Fixture::new("faults-cluster");
    let mut cluster = NatsCluster::start_with(
        3,
        NatsOptions {
            include: fx.auth.as_ref().map(LatticeCreds::auth_conf),
            ..NatsOptions::open()
        },
    );
    let mut spec = fx.spec(cluster.urls(), true, Some(fx.file_backend()));
    // No JetStream in the test cluster: the one host keeps the lattice store in memory.
    spec.memory_store = true;
    let mut host = fx.host(spec, "host");
    run_case(
        "nats cluster (3 nodes) losing the host's node",
        &fx.base(),
        &host,
        Fault::Instant,
        |_| {
            cluster.servers[0].stop();
            "host and providers on n0 first".into()
        },
    );
    host.assert_running();
}

/// Garbage, truncated and oversized messages for the RPC, control and link subjects.
fn garbage_messages(fx: &Fixture, host_id: &str) -> Vec<Vec<u8>> {
    let mut random = Vec::with_capacity(4096);
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    for _ in 0..4096 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        random.push(x as u8);
    }
    let invocation = Invocation::new(
        WasmCloudEntity::actor(&fx.actor_id),
        WasmCloudEntity::provider(fx.kv_id.clone(), KV_CONTRACT, "default"),
        "wasmcloud:keyvalue/Add",
        b"not the args".to_vec(),
        host_id.to_string(),
    )
    .to_msgpack()
    .unwrap();
    let link = serde_json::to_vec(&LinkDefinition::new(
        &fx.actor_id,
        &fx.kv_id,
        "default",
        KV_CONTRACT,
        HashMap::new(),
    ))
    .unwrap();
    // A msgpack bin32 header that claims 4 GiB, followed by 900 KB (under NATS' 1 MB).
    let mut huge_length = vec![0xc6, 0xff, 0xff, 0xff, 0xff];
    huge_length.resize(900 * 1024, 0x41);
    vec![
        Vec::new(),
        random.clone(),
        invocation[..invocation.len() / 2].to_vec(),
        invocation[..invocation.len() - 1].to_vec(),
        link[..link.len() / 2].to_vec(),
        b"{\"actor_id\": 5, \"values\": [}".to_vec(),
        b"\xff\xfe\xfd not json and not msgpack".to_vec(),
        vec![0x91; 100_000],
        huge_length,
        random.repeat(200),
    ]
}

#[test]
fn faults_garbage_on_rpc_control_and_link_subjects_loses_no_acknowledged_write() {
    let fx = Fixture::new("faults-garbage");
    let nats = fx.nats();
    let mut host = fx.host(
        fx.spec(vec![nats.url()], true, Some(fx.file_backend())),
        "host",
    );
    let subjects = Subjects::for_lattice(&fx.lattice);
    let mut targets = vec![
        subjects.rpc_actor(&fx.actor_id),
        subjects.rpc_provider(&fx.kv_id, "default"),
        subjects.rpc_provider(&fx.http_id, "default"),
        subjects.provider_linkdefs_put(&fx.kv_id, "default"),
        subjects.provider_linkdefs_del(&fx.kv_id, "default"),
        subjects.provider_linkdefs_put(&fx.http_id, "default"),
        subjects.provider_linkdefs_del(&fx.http_id, "default"),
        subjects.ctl_ping_hosts(),
        subjects.ctl_get_links(),
        subjects.ctl_get_claims(),
        subjects.ctl_get_inventory(&host.id),
        subjects.ctl_linkdefs_put(),
        subjects.ctl_linkdefs_del(),
        subjects.ctl_auction_actor(),
        subjects.ctl_auction_provider(),
        subjects.ctl_registries_put(),
    ];
    // The host's command subjects take an empty body as `{}`: on `stop` that is a valid
    // stop request (obeyed, as it should be, by whoever may send it), so these subjects
    // get every message but the empty one.
    let commands: Vec<String> = CtlCommand::ALL
        .iter()
        .map(|c| subjects.ctl_command(&host.id, *c))
        .collect();
    targets.extend(commands.iter().cloned());
    let messages = garbage_messages(&fx, &host.id);
    let url = nats.url();
    let host_id = host.id.clone();
    let outcome = run_case(
        "garbage, truncated, oversized messages on RPC, control, link subjects",
        &fx.base(),
        &host,
        Fault::Window,
        |_| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let sent = rt.block_on(async {
                let client = fx.client(&url).await;
                let until = Instant::now() + fault_secs();
                let mut sent = 0usize;
                while Instant::now() < until {
                    for subject in &targets {
                        for message in &messages {
                            if message.is_empty() && commands.contains(subject) {
                                continue;
                            }
                            // With a reply subject, so that request handlers answer too.
                            client
                                .publish_with_reply(
                                    subject.clone(),
                                    client.new_inbox(),
                                    message.clone().into(),
                                )
                                .await
                                .unwrap();
                            sent += 1;
                        }
                    }
                    client.flush().await.unwrap();
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                sent
            });
            format!(
                "{sent} messages on {} subjects (host {})",
                targets.len(),
                &host_id[..8]
            )
        },
    );
    assert!(outcome.acked > 0);
    host.assert_running();
}

/// Sends `raw` on a fresh connection and returns the status line's code (`None`: closed
/// without an answer).
fn raw_status(base: &str, raw: &[u8]) -> Option<u16> {
    let addr = base.strip_prefix("http://").unwrap_or(base);
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(http::TIMEOUT)).ok()?;
    let writer = stream.try_clone().ok()?;
    let raw = raw.to_vec();
    // Written on its own thread: the server may answer (and close) before reading it all.
    let w = std::thread::spawn(move || {
        let mut writer = writer;
        let _ = writer.write_all(&raw);
    });
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(2).any(|w| w == b"\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let _ = stream.shutdown(std::net::Shutdown::Both);
    let _ = w.join();
    String::from_utf8_lossy(&head)
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
}

/// Client threads of the flood of the HTTP abuse case.
const FLOOD: usize = 320;

#[test]
fn faults_http_abuse_under_load_loses_no_acknowledged_write() {
    let fx = Fixture::new("faults-http-abuse");
    let nats = fx.nats();
    let mut spec = fx.spec(vec![nats.url()], true, Some(fx.file_backend()));
    // A low admission bound, so that the flood goes beyond it.
    spec.instances = 1;
    spec.max_instances = Some(1);
    // Slow headers cut off after 1 s (30 s by default), within the case's window.
    if let Some(p) = &mut spec.providers {
        p.http_extra = HashMap::from([("header_timeout_ms".to_string(), "1000".to_string())]);
    }
    let mut host = fx.host(spec, "host");
    let base = fx.base();
    let outcome = run_case(
        "HTTP abuse (10 MB body, 10,000 headers, slow-loris, invalid UTF-8 path, flood)",
        &base,
        &host,
        Fault::Window,
        |load| {
            let secs = fault_secs();
            let window_end = Instant::now() + secs;
            // The flood: FLOOD more writers for the fault window, recorded with the load
            // (their 503s count as failed, their 2xx as acknowledged writes): more
            // callers than the actor's queue holds (256) waiting for its one instance.
            for _ in 0..FLOOD {
                load.add_worker(secs);
            }
            let abuse = |base: String| {
                std::thread::spawn(move || {
                    let mut statuses = Vec::new();
                    let big = vec![b'x'; 10 * 1024 * 1024];
                    statuses.push((
                        "10MB",
                        http::send(&base, "POST", "/abuse", &[], Some(&big))
                            .map(|r| r.status)
                            .ok(),
                    ));
                    let mut many = String::from("GET /abuse HTTP/1.1\r\nHost: x\r\n");
                    for i in 0..10_000 {
                        many.push_str(&format!("X-H{i}: v\r\n"));
                    }
                    many.push_str("\r\n");
                    statuses.push(("10k headers", raw_status(&base, many.as_bytes())));
                    statuses.push((
                        "bad UTF-8",
                        raw_status(
                            &base,
                            b"GET /\xff\xfe%ff HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                        ),
                    ));
                    statuses
                })
            };
            let abuse = abuse(base.clone());
            // Slow-loris: 16 connections trickling a header a byte at a time.
            let addr = base.strip_prefix("http://").unwrap().to_string();
            let loris: Vec<_> = (0..16)
                .map(|_| {
                    let addr = addr.clone();
                    std::thread::spawn(move || {
                        let Ok(mut s) = TcpStream::connect(&addr) else {
                            return false;
                        };
                        let _ = s.write_all(b"GET /abuse HTTP/1.1\r\nHost: x\r\nX-Slow: ");
                        let until = Instant::now() + secs;
                        while Instant::now() < until {
                            if s.write_all(b"a").is_err() {
                                return true;
                            }
                            std::thread::sleep(Duration::from_millis(200));
                        }
                        false
                    })
                })
                .collect();
            let statuses = abuse.join().unwrap();
            // The flood lasts the whole window, whatever the rest took.
            std::thread::sleep(window_end.saturating_duration_since(Instant::now()));
            let cut = loris
                .into_iter()
                .map(|t| t.join().unwrap_or(false))
                .filter(|cut| *cut)
                .count();
            for (what, status) in &statuses {
                assert!(
                    status.is_none_or(|s| s >= 400),
                    "{what} was accepted: {status:?}"
                );
            }
            let failed_503 = load
                .samples
                .lock()
                .unwrap()
                .iter()
                .filter(|s| matches!(&s.answer, Answer::Failed(e) if e.starts_with("503")))
                .count();
            let shown: Vec<String> = statuses
                .iter()
                .map(|(w, s)| format!("{w}: {}", s.map_or("closed".into(), |s| s.to_string())))
                .collect();
            format!(
                "{}; slow-loris cut {cut}/16 within the window; 503s so far {failed_503}; {FLOOD}-thread flood, 1 instance",
                shown.join(", ")
            )
        },
    );
    assert!(outcome.acked > 0);
    host.assert_running();
}

#[test]
fn lost_writes_catches_repeats_and_values_the_store_does_not_hold() {
    assert_eq!(lost_writes(&[1, 2, 3], 3), 0);
    assert_eq!(lost_writes(&[1, 3], 5), 0);
    // The store went back to 1 after acknowledging 2 and 3; 2 and 3 were acknowledged again.
    assert_eq!(lost_writes(&[1, 2, 3, 2, 3], 3), 2);
    // The last acknowledged writes are gone.
    assert_eq!(lost_writes(&[1, 2, 3, 4], 2), 2);
    assert_eq!(lost_writes(&[0], 1), 1);
}
