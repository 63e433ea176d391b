//! kvcounter end to end (issue 6): one signed `kvcounter.wasm` behind the real HTTP server
//! provider, counting in the key-value provider's memory, file, Redis and NATS backends,
//! where only the link says which backend. Real sockets, a real redis-server and
//! nats-server; in process on a standalone host, and out of process (the providers'
//! binaries under the supervisor) on a lattice with the actor on a second host.
//!
//! The HTTP client is raw HTTP/1.1 over tokio's `TcpStream`: the tests also send what no
//! proper client would (malformed requests, bodies cut short).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use nimbus_core::events::CloudEvent;
use nimbus_core::link::LinkDefinition;
use nimbus_lattice::{Host, HostBuilder};
use nimbus_provider_httpserver::HttpServerProvider;
use nimbus_provider_keyvalue::{BackendConfig, KeyValueProvider, KvBackend, open_backend};
use nimbus_runtime::{Runtime, RuntimeConfig};
use nimbus_tests::servers::{NatsServer, RedisServer, free_port};
use nimbus_tests::{Signer, actor_wasm};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::broadcast;

use crate::lattice_support::{cluster_seed, lattice_name, provider_key, wait_event};

const HTTP_CONTRACT: &str = "wasmcloud:httpserver";
const KV_CONTRACT: &str = "wasmcloud:keyvalue";
/// The providers' own `main`s, built as binaries of the test package (see tests/Cargo.toml).
const HTTP_BIN: &str = env!("CARGO_BIN_EXE_nimbus-test-httpserver-provider");
const KV_BIN: &str = env!("CARGO_BIN_EXE_nimbus-test-keyvalue-provider");

/// Requests of one "1,000 concurrent requests" run.
const REQUESTS: usize = 1000;
/// Keep-alive connections those requests share (each issues requests back to back).
const CONNECTIONS: usize = 100;
/// kvcounter instances: the actor's concurrency.
const INSTANCES: u16 = 8;
/// Bound on any single HTTP exchange and on every wait for something to become ready.
const WAIT: Duration = Duration::from_secs(30);
/// Every timeout on the request path (waiting for a free actor instance, the actor's run,
/// provider → actor calls, the HTTP server's wait for the actor): far above what a request
/// needs, so that a machine loaded by other tests slows these tests down without failing
/// them. They check counts and statuses, never timing.
const PATIENCE: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------

/// A signed actor module and its public key.
struct Signed {
    bytes: Vec<u8>,
    id: String,
}

/// `kvcounter.wasm`, signed once per test process: every backend and every host of a test
/// runs exactly these bytes.
fn kvcounter() -> &'static Signed {
    static SIGNED: OnceLock<Signed> = OnceLock::new();
    SIGNED.get_or_init(|| sign("kvcounter", &[HTTP_CONTRACT, KV_CONTRACT]))
}

fn sign(fixture: &str, caps: &[&str]) -> Signed {
    let signer = Signer::new();
    Signed {
        bytes: signer.sign(&actor_wasm(fixture), caps),
        id: signer.module.public_key(),
    }
}

/// The wasm engine of these tests: the default call deadline is [`PATIENCE`] (a call
/// waiting for one of kvcounter's instances behind 100 others counts against it).
fn runtime() -> Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            Runtime::new(RuntimeConfig {
                max_total_instances: 100,
                max_memory_bytes: 16 * 1024 * 1024,
                default_call_timeout: PATIENCE,
                ..RuntimeConfig::default()
            })
            .unwrap()
        })
        .clone()
}

/// A host builder with this file's engine and timeouts, in the lattice of `seed`.
fn builder(seed: &str) -> HostBuilder {
    Host::builder()
        .runtime(runtime())
        .cluster_seed(seed)
        .rpc_timeout(PATIENCE)
}

/// The HTTP server link values of these tests: `port` and a patient `timeout_ms`.
fn http_values(port: u16) -> HashMap<String, String> {
    values(&[
        ("port", &port.to_string()),
        ("timeout_ms", &PATIENCE.as_millis().to_string()),
    ])
}

fn values(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A standalone host with the HTTP server and key-value providers in process and an actor
/// linked to the HTTP server on a free port.
struct Standalone {
    host: Host,
    http: Arc<HttpServerProvider>,
    kv: Arc<KeyValueProvider>,
    kv_id: String,
    actor: String,
    addr: SocketAddr,
}

impl Standalone {
    /// Starts the host, both providers and `instances` of `actor`, and links the actor to
    /// the HTTP server with the extra link values `extra_http` (the key-value link is up to
    /// the test).
    async fn start(actor: &Signed, instances: u16, extra_http: &[(&str, &str)]) -> Self {
        let host = builder(&cluster_seed()).build().await.unwrap();
        let http = Arc::new(HttpServerProvider::with_shutdown_grace(
            Duration::from_secs(2),
        ));
        let kv = Arc::new(KeyValueProvider::new());
        let (http_id, kv_id) = (provider_key(), provider_key());
        host.start_provider(http.clone(), &http_id, "default")
            .await
            .unwrap();
        host.start_provider(kv.clone(), &kv_id, "default")
            .await
            .unwrap();
        let id = host
            .start_actor(actor.bytes.clone(), instances)
            .await
            .unwrap();
        assert_eq!(id, actor.id);
        let mut link_values = http_values(0);
        link_values.extend(values(extra_http));
        host.put_link(LinkDefinition::new(
            &actor.id,
            &http_id,
            "default",
            HTTP_CONTRACT,
            link_values,
        ))
        .await
        .unwrap();
        let addr = http
            .listener_addr(&actor.id)
            .await
            .expect("the HTTP link opened no listener");
        Standalone {
            host,
            http,
            kv,
            kv_id,
            actor: actor.id.clone(),
            addr,
        }
    }

    /// Links the actor to the key-value provider with `values` (replacing its link).
    async fn link_kv(&self, values: HashMap<String, String>) {
        self.host
            .put_link(LinkDefinition::new(
                &self.actor,
                &self.kv_id,
                "default",
                KV_CONTRACT,
                values,
            ))
            .await
            .unwrap();
    }

    /// The backend the key-value provider serves the actor from right now.
    fn backend(&self) -> Arc<dyn KvBackend> {
        self.kv
            .backend_for(&self.actor)
            .expect("the key-value provider holds no link for the actor")
    }
}

/// Opens a backend of our own on the same store as `values`, to read what the provider
/// wrote without going through it.
async fn independent(values: &HashMap<String, String>) -> Arc<dyn KvBackend> {
    open_backend(&BackendConfig::from_values(values).unwrap())
        .await
        .unwrap()
}

// ---------------------------------------------------------------------------------------
// A raw HTTP/1.1 client
// ---------------------------------------------------------------------------------------

/// One HTTP response.
#[derive(Debug)]
struct Response {
    status: u16,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Response {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text()))
    }

    /// The `counter` of a kvcounter 200 answer.
    fn counter(&self) -> i64 {
        assert_eq!(self.status, 200, "kvcounter failed: {}", self.text());
        self.json()["counter"]
            .as_i64()
            .unwrap_or_else(|| panic!("no counter in {}", self.text()))
    }
}

/// One keep-alive client connection.
struct Conn {
    stream: BufReader<TcpStream>,
}

impl Conn {
    async fn open(addr: SocketAddr) -> Self {
        let stream = tokio::time::timeout(WAIT, TcpStream::connect(addr))
            .await
            .expect("connect timed out")
            .unwrap_or_else(|e| panic!("cannot connect to {addr}: {e}"));
        stream.set_nodelay(true).unwrap();
        Conn {
            stream: BufReader::new(stream),
        }
    }

    /// Writes `raw` as it is and reads one response.
    async fn send_raw(&mut self, raw: &[u8]) -> std::io::Result<Response> {
        tokio::time::timeout(WAIT, async {
            self.stream.get_mut().write_all(raw).await?;
            self.read_response().await
        })
        .await
        .unwrap_or_else(|_| panic!("no HTTP response within {WAIT:?}"))
    }

    async fn get(&mut self, path: &str) -> Response {
        let raw = format!("GET {path} HTTP/1.1\r\nHost: kvcounter\r\n\r\n");
        self.send_raw(raw.as_bytes())
            .await
            .unwrap_or_else(|e| panic!("GET {path} failed: {e}"))
    }

    async fn post(&mut self, path: &str, body: &[u8]) -> Response {
        let mut raw = format!(
            "POST {path} HTTP/1.1\r\nHost: kvcounter\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        raw.extend_from_slice(body);
        self.send_raw(&raw)
            .await
            .unwrap_or_else(|e| panic!("POST {path} failed: {e}"))
    }

    /// Reads a status line, headers and a `Content-Length` body (what hyper sends for
    /// full bodies).
    async fn read_response(&mut self) -> std::io::Result<Response> {
        let closed = || std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed");
        let mut line = String::new();
        if self.stream.read_line(&mut line).await? == 0 {
            return Err(closed());
        }
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {line:?}"));
        let mut headers = HashMap::new();
        loop {
            line.clear();
            if self.stream.read_line(&mut line).await? == 0 {
                return Err(closed());
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            let (name, value) = header
                .split_once(':')
                .unwrap_or_else(|| panic!("bad header line {header:?}"));
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
        }
        assert!(
            !headers.contains_key("transfer-encoding"),
            "unexpected chunked response: {headers:?}"
        );
        let len: usize = headers
            .get("content-length")
            .map_or(0, |v| v.parse().unwrap());
        let mut body = vec![0; len];
        self.stream.read_exact(&mut body).await?;
        Ok(Response {
            status,
            headers,
            body,
        })
    }

    /// Whether the server closed the connection (reads EOF, or a reset, within `WAIT`).
    async fn closed_by_server(&mut self) -> bool {
        let mut byte = [0u8; 1];
        matches!(
            tokio::time::timeout(WAIT, self.stream.read(&mut byte)).await,
            Ok(Ok(0) | Err(_))
        )
    }
}

/// `GET path` on a fresh connection.
async fn get(addr: SocketAddr, path: &str) -> Response {
    Conn::open(addr).await.get(path).await
}

/// `GET path` until it answers 200 (the link may still be on its way to a provider
/// process, the listener not yet bound); panics after `WAIT`.
async fn get_when_ready(addr: SocketAddr, path: &str) -> Response {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut last: String;
    loop {
        if let Ok(Ok(stream)) =
            tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(addr)).await
        {
            let mut conn = Conn {
                stream: BufReader::new(stream),
            };
            let raw = format!("GET {path} HTTP/1.1\r\nHost: kvcounter\r\n\r\n");
            match conn.send_raw(raw.as_bytes()).await {
                Ok(r) if r.status == 200 => return r,
                Ok(r) => last = format!("{} {}", r.status, r.text()),
                Err(e) => last = e.to_string(),
            }
        } else {
            last = format!("{addr} does not accept connections");
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "GET {path} never answered 200 within {WAIT:?}; last: {last}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends `REQUESTS` GETs of `path` over `CONNECTIONS` keep-alive connections at once and
/// returns every counter kvcounter answered, sorted.
async fn count_concurrently(addr: SocketAddr, path: &str) -> Vec<i64> {
    let next = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let next = next.clone();
            let path = path.to_string();
            tokio::spawn(async move {
                let mut conn = Conn::open(addr).await;
                let mut counters = Vec::new();
                while next.fetch_add(1, Ordering::Relaxed) < REQUESTS {
                    counters.push(conn.get(&path).await.counter());
                }
                counters
            })
        })
        .collect();
    let mut all = Vec::with_capacity(REQUESTS);
    for task in tasks {
        all.extend(task.await.expect("a client connection failed"));
    }
    all.sort_unstable();
    all
}

/// Asserts that a concurrent run on `backend` answered exactly 1..=REQUESTS: every Add
/// counted once, none lost, none doubled.
fn assert_no_lost_update(backend: &str, counters: &[i64]) {
    let expected: Vec<i64> = (1..=REQUESTS as i64).collect();
    if counters != expected {
        let dups: Vec<_> = counters.windows(2).filter(|w| w[0] == w[1]).collect();
        panic!(
            "{backend}: {REQUESTS} concurrent requests answered {} counters, min {:?}, max {:?}, duplicates {:?}",
            counters.len(),
            counters.first(),
            counters.last(),
            &dups[..dups.len().min(10)],
        );
    }
}

/// Every event received so far.
fn drain(rx: &mut broadcast::Receiver<CloudEvent>) -> Vec<CloudEvent> {
    let mut out = Vec::new();
    loop {
        match rx.try_recv() {
            Ok(e) => out.push(e),
            Err(broadcast::error::TryRecvError::Lagged(n)) => panic!("missed {n} events"),
            Err(_) => return out,
        }
    }
}

/// Waits until an event named `name` arrived for each provider key in `keys`, in any
/// order.
async fn wait_for_each(rx: &mut broadcast::Receiver<CloudEvent>, name: &str, keys: &[&str]) {
    let mut missing: Vec<&str> = keys.to_vec();
    while !missing.is_empty() {
        let event = wait_event(rx, name, |e| {
            missing.iter().any(|k| e.data["public_key"] == *k)
        })
        .await;
        missing.retain(|k| event.data["public_key"] != *k);
    }
}

/// A tracing writer that keeps everything in memory, to check what reached the log.
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl LogBuffer {
    /// Collects WARN and ERROR lines logged on this thread until the guard drops. Tests
    /// that use it run on a current-thread runtime, so that every task of the host and its
    /// in-process providers logs here (wasm calls run on blocking threads, not watched).
    fn capture() -> (Self, tracing::subscriber::DefaultGuard) {
        let logs = LogBuffer::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::WARN)
            .finish();
        (logs, tracing::subscriber::set_default(subscriber))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

/// The swap: one host, one start of one signed module, and the key-value link moved from
/// memory to file to Redis to NATS. On each backend 1,000 concurrent requests answer exactly
/// 1..=1,000 and the backend itself (read without the provider where it can be) holds 1000;
/// the actor is never restarted. Then the host restarts and the file backend carries on at
/// 1001.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_signed_module_counts_on_every_backend_the_link_names_with_no_lost_update() {
    let redis = RedisServer::start();
    let nats = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap();
    let actor = kvcounter();
    let node = Standalone::start(actor, INSTANCES, &[]).await;
    let instances = |host: &Host| -> Vec<String> {
        let inventory = host.inventory();
        assert_eq!(inventory.actors.len(), 1);
        inventory.actors[0]
            .instances
            .iter()
            .map(|i| i.instance_id.clone())
            .collect()
    };
    let before = instances(&node.host);
    let mut events = node.host.events();

    let backends = [
        ("memory", values(&[("backend", "memory")])),
        ("file", values(&[("backend", "file"), ("path", path)])),
        (
            "redis",
            values(&[("backend", "redis"), ("url", &redis.url())]),
        ),
        (
            "nats",
            crate::lattice_support::nats_backend(&nats, "kvcounter"),
        ),
    ];
    for (kind, link_values) in &backends {
        node.link_kv(link_values.clone()).await;
        // put_link returns once the in-process provider took the link.
        assert_eq!(
            node.backend().kind(),
            *kind,
            "the link did not switch backends"
        );
        let started = std::time::Instant::now();
        let counters = count_concurrently(node.addr, "/hits").await;
        assert_no_lost_update(kind, &counters);
        eprintln!("{kind}: {REQUESTS} requests in {:?}", started.elapsed());
        assert_eq!(
            node.backend()
                .get("kvcounter:/hits")
                .await
                .unwrap()
                .as_deref(),
            Some("1000"),
            "{kind}"
        );
    }
    // The data is in the database file and the real servers, not in the provider (which
    // closed the file when the link moved on).
    for (kind, link_values) in &backends[1..] {
        assert_eq!(
            independent(link_values)
                .await
                .get("kvcounter:/hits")
                .await
                .unwrap()
                .as_deref(),
            Some("1000"),
            "{kind}"
        );
    }
    // Only links changed: four key-value linkdef_set events, nothing restarted or failed.
    let seen = drain(&mut events);
    let names: Vec<_> = seen.iter().filter_map(CloudEvent::name).collect();
    assert_eq!(
        names, ["linkdef_set"; 4],
        "events during the swaps: {names:?}"
    );
    for (event, (_, link_values)) in seen.iter().zip(&backends) {
        assert_eq!(event.data["actor_id"], actor.id.as_str());
        assert_eq!(event.data["contract_id"], KV_CONTRACT);
        assert_eq!(
            event.data["values"]["backend"],
            link_values["backend"].as_str()
        );
    }
    assert_eq!(instances(&node.host), before, "the actor was restarted");

    // The file backend keeps its count across a host restart (a new host process state,
    // same bytes, the same link values).
    node.host.stop().await.unwrap();
    drop(node);
    let node = Standalone::start(actor, 2, &[]).await;
    node.link_kv(backends[1].1.clone()).await;
    assert_eq!(get(node.addr, "/hits").await.counter(), 1001);
    node.host.stop().await.unwrap();
}

/// What the HTTP server refuses never reaches the actor: a request hyper cannot parse gets
/// 400, a body over `max_content_len` gets 413 (declared or streamed), and the listener
/// goes on counting as if they never happened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_requests_are_refused_and_counting_goes_on() {
    const LIMIT: usize = 1024;
    let node = Standalone::start(kvcounter(), 2, &[("max_content_len", "1024")]).await;
    node.link_kv(values(&[("backend", "memory")])).await;
    assert_eq!(get(node.addr, "/n").await.counter(), 1);

    for raw in [
        &b"THIS IS NOT HTTP\r\n\r\n"[..],
        b"GET /n HTTP/1.1\r\nHost: x\r\nthis line is no header\r\n\r\n",
        b"GET /n HTTP/1.1\r\nHost: x\r\nContent-Length: twelve\r\n\r\n",
        b"GET /n HTTP/9.9\r\nHost: x\r\n\r\n",
    ] {
        let mut conn = Conn::open(node.addr).await;
        let response = conn.send_raw(raw).await.unwrap();
        assert_eq!(
            response.status,
            400,
            "{:?}: {}",
            String::from_utf8_lossy(raw),
            response.text()
        );
        assert!(
            conn.closed_by_server().await,
            "the connection outlived a malformed request"
        );
    }

    // A declared length over the limit: 413 before the body is sent, connection closed.
    let mut conn = Conn::open(node.addr).await;
    let head = format!(
        "POST /n HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        LIMIT + 1
    );
    let response = conn.send_raw(head.as_bytes()).await.unwrap();
    assert_eq!(response.status, 413, "{}", response.text());
    assert!(
        response.text().contains("larger than 1024 bytes"),
        "{}",
        response.text()
    );
    assert_eq!(
        response.headers.get("connection").map(String::as_str),
        Some("close")
    );
    assert!(conn.closed_by_server().await);

    // A chunked body that grows past the limit: 413 as soon as it does.
    let mut conn = Conn::open(node.addr).await;
    let mut raw = b"POST /n HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    raw.extend_from_slice(format!("{LIMIT:x}\r\n").as_bytes());
    raw.extend(std::iter::repeat_n(b'a', LIMIT));
    raw.extend_from_slice(b"\r\n1\r\nb\r\n");
    let response = conn.send_raw(&raw).await.unwrap();
    assert_eq!(response.status, 413, "{}", response.text());

    // At the limit is fine; the refused requests counted nothing.
    let mut conn = Conn::open(node.addr).await;
    assert_eq!(conn.post("/n", &[b'x'; LIMIT]).await.counter(), 2);
    assert_eq!(conn.get("/n").await.counter(), 3);
    node.host.stop().await.unwrap();
}

/// Links the key-value provider cannot use (an unknown backend, a Redis nobody listens
/// on) are reported with the provider's reason, as an error in the host's log and as a
/// `linkdef_set_failed` event; requests keep being answered throughout (a JSON 500 while
/// the actor has no usable link, the previous backend after a good link), and a corrected
/// link takes effect.
// One runtime thread, so that every task of the host (the store watch too, which may be
// the one to hand the link to the provider) logs where `LogBuffer::capture` listens.
#[tokio::test(flavor = "current_thread")]
async fn rejected_links_are_reported_in_the_log_and_the_events_and_the_host_keeps_serving() {
    let (logs, _guard) = LogBuffer::capture();

    let node = Standalone::start(kvcounter(), 2, &[]).await;
    let mut events = node.host.events();
    let failed = |event: &CloudEvent| event.data["actor_id"] == node.actor.as_str();

    // An unknown backend, with no earlier link: reported; the actor's Add fails and
    // kvcounter answers its JSON 500.
    node.link_kv(values(&[("backend", "etcd")])).await;
    let event = wait_event(&mut events, "linkdef_set_failed", failed).await;
    assert_eq!(event.source, node.host.id());
    assert_eq!(event.data["provider_id"], node.kv_id.as_str());
    assert_eq!(event.data["contract_id"], KV_CONTRACT);
    let error = event.data["error"].as_str().unwrap();
    assert!(
        error.contains("\"etcd\"") && error.contains("memory, file, redis, nats"),
        "{error}"
    );
    let log = logs.text();
    assert!(
        log.contains("ERROR") && log.contains("provider rejected a link") && log.contains("etcd"),
        "{log}"
    );
    let response = get(node.addr, "/n").await;
    assert_eq!(response.status, 500, "{}", response.text());
    let message = response.json()["error"].as_str().unwrap().to_string();
    assert!(
        message.contains("key-value store failed") && message.contains("no link"),
        "{message}"
    );

    // A good link, then one to a Redis that is not there: reported with the address; the
    // provider keeps the memory backend, so counting goes on.
    node.link_kv(values(&[("backend", "memory")])).await;
    assert_eq!(get(node.addr, "/n").await.counter(), 1);
    let nobody = format!("redis://127.0.0.1:{}", free_port());
    node.link_kv(values(&[
        ("backend", "redis"),
        ("url", &nobody),
        ("connect_timeout_ms", "500"),
    ]))
    .await;
    let event = wait_event(&mut events, "linkdef_set_failed", failed).await;
    let error = event.data["error"].as_str().unwrap();
    assert!(
        error.contains(&format!("cannot connect to Redis at {nobody}")),
        "{error}"
    );
    assert!(logs.text().contains(&nobody), "{}", logs.text());
    assert_eq!(node.backend().kind(), "memory");
    assert_eq!(get(node.addr, "/n").await.counter(), 2);

    // Corrected: the new backend serves from the next request on.
    let dir = tempfile::tempdir().unwrap();
    node.link_kv(values(&[
        ("backend", "file"),
        ("path", dir.path().to_str().unwrap()),
    ]))
    .await;
    assert_eq!(node.backend().kind(), "file");
    assert_eq!(get(node.addr, "/n").await.counter(), 1);
    assert!(
        !drain(&mut events)
            .iter()
            .any(|e| e.name() == Some("linkdef_set_failed")),
        "a good link was reported as failed"
    );
    node.host.stop().await.unwrap();
}

/// An actor that traps while handling a request: the client gets a 500 on a connection
/// that stays usable, the trapped instance is replaced, and the next request works, also
/// after more traps than the actor has instances.
// One runtime thread: the HTTP server's log lines are checked (see `LogBuffer::capture`).
#[tokio::test(flavor = "current_thread")]
async fn a_trap_while_handling_a_request_is_a_500_and_the_next_request_works() {
    let (logs, _guard) = LogBuffer::capture();
    let actor = sign("http-trap", &[HTTP_CONTRACT]);
    let node = Standalone::start(&actor, 2, &[]).await;
    let mut conn = Conn::open(node.addr).await;
    assert_eq!(conn.get("/before").await.text(), "ok /before");
    for round in 0..5 {
        let trapped = conn.get("/trap").await;
        assert_eq!(trapped.status, 500, "round {round}: {}", trapped.text());
        assert!(
            trapped
                .text()
                .contains("the actor failed to handle the request"),
            "{}",
            trapped.text()
        );
        let next = conn.get(&format!("/after/{round}")).await;
        assert_eq!(next.status, 200, "round {round}: {}", next.text());
        assert_eq!(next.text(), format!("ok /after/{round}"));
    }
    // A trap among concurrent requests fails only itself.
    let (a, b, c) = tokio::join!(
        get(node.addr, "/trap"),
        get(node.addr, "/x"),
        get(node.addr, "/y")
    );
    assert_eq!((a.status, b.status, c.status), (500, 200, 200));
    assert_eq!(node.http.listener_addr(&actor.id).await, Some(node.addr));
    // The 500s were traps (not error replies), and the log says so.
    let log = logs.text();
    let traps = log
        .lines()
        .filter(|l| l.contains("actor failed to handle an HTTP request"))
        .filter(|l| l.contains("actor trapped") && l.contains(&actor.id))
        .count();
    assert_eq!(traps, 6, "{log}");
    node.host.stop().await.unwrap();
}

/// Redis restarted mid-run, under load: while it is down, requests get kvcounter's JSON
/// 500 at once (no hang, no other status); once it is back, requests succeed again on the
/// same link, counting from the fresh server's empty store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_succeed_again_after_redis_restarts_mid_run() {
    let mut redis = RedisServer::start();
    let node = Standalone::start(kvcounter(), 4, &[]).await;
    node.link_kv(values(&[
        ("backend", "redis"),
        ("url", &redis.url()),
        ("connect_timeout_ms", "500"),
        ("response_timeout_ms", "1000"),
    ]))
    .await;
    let mut conn = Conn::open(node.addr).await;
    for n in 1..=20 {
        assert_eq!(conn.get("/n").await.counter(), n);
    }

    // A client that keeps sending requests through the restart, reporting each status.
    let (statuses, seen) = tokio::sync::watch::channel(Vec::<u16>::new());
    let (stop_load, load_stopped) = tokio::sync::watch::channel(false);
    let addr = node.addr;
    let load = tokio::spawn(async move {
        let mut conn = Conn::open(addr).await;
        while !*load_stopped.borrow() {
            let response = conn.get("/load").await;
            statuses.send_modify(|s| s.push(response.status));
        }
    });
    let saw = |seen: &tokio::sync::watch::Receiver<Vec<u16>>, from: usize, status: u16| {
        let mut seen = seen.clone();
        async move {
            tokio::time::timeout(WAIT, seen.wait_for(|s| s[from..].contains(&status)))
                .await
                .unwrap_or_else(|_| panic!("the load never got a {status}"))
                .unwrap()
                .len()
        }
    };
    saw(&seen, 0, 200).await;

    redis.stop();
    let down = conn.get("/n").await;
    assert_eq!(down.status, 500, "{}", down.text());
    let message = down.json()["error"].as_str().unwrap().to_string();
    assert!(message.contains("key-value store failed"), "{message}");
    let failed_at = saw(&seen, 0, 500).await;

    redis.restart();
    // The provider reconnects by itself; the persistence-free server starts empty.
    assert_eq!(get_when_ready(node.addr, "/n").await.counter(), 1);
    for n in 2..=20 {
        assert_eq!(conn.get("/n").await.counter(), n);
    }
    saw(&seen, failed_at, 200).await;
    stop_load.send_replace(true);
    load.await.unwrap();
    let all = seen.borrow().clone();
    assert!(
        all.iter().all(|s| *s == 200 || *s == 500),
        "statuses during the restart: {all:?}"
    );
    node.host.stop().await.unwrap();
}

/// Lattice mode: the HTTP server and key-value providers run as their own processes
/// (their binaries, under the supervisor) for host A on a real nats-server; kvcounter runs
/// on host B. Request → provider process → NATS → B → NATS → provider process → JetStream
/// KV, and 1,000 concurrent requests still count 1..=1,000.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_process_providers_on_nats_serve_kvcounter_on_a_second_host() {
    let nats = NatsServer::start();
    let lattice = lattice_name("kvcounter");
    let seed = cluster_seed();
    let (http_id, kv_id) = (provider_key(), provider_key());
    let providers = builder(&seed)
        .lattice(&lattice)
        .nats(crate::lattice_support::member_nats(nats.url()))
        .provider_executable("httpserver", http_id.clone(), HTTP_CONTRACT, HTTP_BIN)
        .provider_executable("keyvalue", kv_id.clone(), KV_CONTRACT, KV_BIN)
        .build()
        .await
        .unwrap();
    let actors = builder(&seed)
        .lattice(&lattice)
        .nats(crate::lattice_support::member_nats(nats.url()))
        .build()
        .await
        .unwrap();
    let mut events = providers.events();
    let actor = kvcounter();
    actors
        .start_actor(actor.bytes.clone(), INSTANCES)
        .await
        .unwrap();
    providers
        .launch_provider("httpserver", "default", None)
        .await
        .unwrap();
    providers
        .launch_provider("keyvalue", "default", None)
        .await
        .unwrap();

    // Links put on the actor's host reach the providers' host through the lattice store.
    let port = free_port();
    let kv_values = crate::lattice_support::nats_backend(&nats, "kvcounter_lattice");
    actors
        .put_link(LinkDefinition::new(
            &actor.id,
            &http_id,
            "default",
            HTTP_CONTRACT,
            http_values(port),
        ))
        .await
        .unwrap();
    actors
        .put_link(LinkDefinition::new(
            &actor.id,
            &kv_id,
            "default",
            KV_CONTRACT,
            kv_values.clone(),
        ))
        .await
        .unwrap();
    // The host re-sends the links once each process answers its health subject.
    wait_for_each(&mut events, "health_check_passed", &[&http_id, &kv_id]).await;
    let inventory = providers.inventory();
    assert!(inventory.actors.is_empty() && inventory.providers.len() == 2);
    let inventory = actors.inventory();
    assert!(inventory.providers.is_empty() && inventory.actors.len() == 1);

    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    assert_eq!(get_when_ready(addr, "/ready").await.counter(), 1);
    let started = std::time::Instant::now();
    let counters = count_concurrently(addr, "/hits").await;
    assert_no_lost_update("lattice, providers out of process", &counters);
    eprintln!("lattice: {REQUESTS} requests in {:?}", started.elapsed());
    assert_eq!(
        independent(&kv_values)
            .await
            .get("kvcounter:/hits")
            .await
            .unwrap()
            .as_deref(),
        Some("1000")
    );

    // Stopping the host stops both processes cleanly (stop returns after their events).
    providers.stop().await.unwrap();
    let mut stopped: Vec<(String, String)> = drain(&mut events)
        .into_iter()
        .filter(|e| e.name() == Some("provider_stopped"))
        .map(|e| {
            let key = e.data["public_key"].as_str().unwrap().to_string();
            (key, e.data["reason"].as_str().unwrap().to_string())
        })
        .collect();
    stopped.sort();
    let mut expected = vec![
        (http_id, "normal".to_string()),
        (kv_id, "normal".to_string()),
    ];
    expected.sort();
    assert_eq!(stopped, expected);
    actors.stop().await.unwrap();
}

/// A provider that only records the values of the links it holds.
#[derive(Default)]
struct LinkRecorder {
    links: Mutex<HashMap<String, HashMap<String, String>>>,
}

#[async_trait::async_trait]
impl nimbus_provider_sdk::Provider for LinkRecorder {
    fn contract_id(&self) -> &str {
        "nimbus:recorder"
    }

    async fn start(
        &self,
        _: nimbus_provider_sdk::ProviderContext,
    ) -> Result<(), nimbus_provider_sdk::ProviderError> {
        Ok(())
    }

    async fn put_link(
        &self,
        link: &LinkDefinition,
    ) -> Result<(), nimbus_provider_sdk::ProviderError> {
        // Taking a link takes a moment in real providers; it widens the race window too.
        tokio::task::yield_now().await;
        self.links
            .lock()
            .unwrap()
            .insert(link.actor_id.clone(), link.values.clone());
        Ok(())
    }

    async fn delete_link(&self, actor_id: &str) {
        self.links.lock().unwrap().remove(actor_id);
    }

    async fn handle_invocation(
        &self,
        _: &nimbus_provider_sdk::CallContext,
        operation: &str,
        _: Vec<u8>,
    ) -> Result<Vec<u8>, nimbus_provider_sdk::ProviderError> {
        Err(nimbus_provider_sdk::ProviderError::UnknownOperation {
            contract_id: "nimbus:recorder".into(),
            operation: operation.into(),
        })
    }
}

/// What the swap relies on: when `put_link` (or `delete_link`) returns, the host's
/// in-process provider has the change, even when the store watch's echo of the write is
/// applied before the write's own notification (a race the swap test caught: the next
/// request still went to the old backend).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_change_is_in_effect_on_the_host_when_put_link_returns() {
    let host = builder(&cluster_seed()).build().await.unwrap();
    let recorder = Arc::new(LinkRecorder::default());
    let pid = provider_key();
    host.start_provider(recorder.clone(), &pid, "default")
        .await
        .unwrap();
    let actor_key = nimbus_core::keys::KeyPair::generate(nimbus_core::keys::KeyKind::Module);
    let actor = actor_key.public_key();
    let actor = actor.as_str();
    let held = || recorder.links.lock().unwrap().get(actor).cloned();
    for n in 0..1000 {
        let link_values = values(&[("n", &n.to_string())]);
        host.put_link(LinkDefinition::new(
            actor,
            &pid,
            "default",
            "nimbus:recorder",
            link_values.clone(),
        ))
        .await
        .unwrap();
        assert_eq!(held(), Some(link_values), "put {n}");
        if n % 10 == 0 {
            host.delete_link(actor, "nimbus:recorder", "default")
                .await
                .unwrap();
            assert_eq!(held(), None, "delete after put {n}");
        }
    }
    host.stop().await.unwrap();
}
