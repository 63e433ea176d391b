//! Traces end to end (issue 13): an HTTP request with a W3C `traceparent` passes the HTTP
//! server provider (its own process), the host (this test process) running kvcounter, and
//! the key-value provider (its own process), over a real nats-server; each process exports
//! its spans over OTLP/HTTP JSON to a receiver this test runs. The receiver gets one trace
//! with spans from three processes whose parent links form the request's chain.
//!
//! The host's exporter is process-wide (one per process), so each test needs a process of
//! its own: `cargo nextest` (what scripts/test.sh runs) gives every test one. The provider
//! processes get the endpoint in their host data from this host.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nimbus_core::link::LinkDefinition;
use nimbus_lattice::Host;
use nimbus_runtime::{Runtime, RuntimeConfig};
use nimbus_tests::servers::{NatsServer, free_port};
use nimbus_tests::{Signer, actor_wasm};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::lattice_support::{cluster_seed, lattice_name, provider_key};

const HTTP_CONTRACT: &str = "wasmcloud:httpserver";
const KV_CONTRACT: &str = "wasmcloud:keyvalue";
const HTTP_BIN: &str = env!("CARGO_BIN_EXE_nimbus-test-httpserver-provider");
const KV_BIN: &str = env!("CARGO_BIN_EXE_nimbus-test-keyvalue-provider");
/// Bound on every wait (providers starting, spans arriving): generous, the machine is shared.
const WAIT: Duration = Duration::from_secs(40);
/// Every timeout on the request path.
const PATIENCE: Duration = Duration::from_secs(15);
/// The incoming trace of the traced requests (the W3C recommendation's example).
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

// ---------------------------------------------------------------------------------------
// The OTLP receiver
// ---------------------------------------------------------------------------------------

/// One received span, with the resource it came from.
#[derive(Debug, Clone)]
struct Received {
    service: String,
    pid: u64,
    trace_id: String,
    span_id: String,
    parent: Option<String>,
    name: String,
    attributes: HashMap<String, Value>,
}

/// An OTLP/HTTP receiver: accepts POSTs of JSON `ExportTraceServiceRequest`s on any path,
/// answers 200, keeps every span. Plain HTTP/1.1 over tokio (one request per connection,
/// as the exporter sends them).
#[derive(Clone)]
struct Receiver {
    addr: SocketAddr,
    spans: Arc<Mutex<Vec<Received>>>,
    paths: Arc<Mutex<Vec<String>>>,
}

impl Receiver {
    async fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let receiver = Receiver {
            addr: listener.local_addr().unwrap(),
            spans: Arc::default(),
            paths: Arc::default(),
        };
        let r = receiver.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let r = r.clone();
                tokio::spawn(async move { r.serve(stream).await });
            }
        });
        receiver
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    async fn serve(&self, mut stream: TcpStream) {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let path = head
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_string();
        let length: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0);
        while buf.len() < head_end + length {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body: Value = serde_json::from_slice(&buf[head_end..head_end + length])
            .expect("the exporter POSTed JSON");
        self.paths.lock().unwrap().push(path);
        self.spans.lock().unwrap().extend(flatten(&body));
        let _ = stream
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
            .await;
    }

    fn spans(&self) -> Vec<Received> {
        self.spans.lock().unwrap().clone()
    }

    /// Waits (at most [`WAIT`]) until `done` holds for the spans received.
    async fn wait_for(&self, what: &str, done: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        let deadline = Instant::now() + WAIT;
        loop {
            let spans = self.spans();
            if done(&spans) {
                return spans;
            }
            assert!(
                Instant::now() < deadline,
                "waited {WAIT:?} for {what}; received: {spans:#?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn attr_map(attrs: &Value) -> HashMap<String, Value> {
    attrs
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| {
            let value = a["value"].as_object()?.values().next()?.clone();
            Some((a["key"].as_str()?.to_string(), value))
        })
        .collect()
}

fn flatten(body: &Value) -> Vec<Received> {
    let mut out = Vec::new();
    for rs in body["resourceSpans"].as_array().into_iter().flatten() {
        let resource = attr_map(&rs["resource"]["attributes"]);
        let service = resource["service.name"].as_str().unwrap().to_string();
        // int64 in the protobuf JSON mapping: a decimal string.
        let pid: u64 = resource["process.pid"].as_str().unwrap().parse().unwrap();
        for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
            for s in ss["spans"].as_array().into_iter().flatten() {
                out.push(Received {
                    service: service.clone(),
                    pid,
                    trace_id: s["traceId"].as_str().unwrap().to_string(),
                    span_id: s["spanId"].as_str().unwrap().to_string(),
                    parent: s["parentSpanId"].as_str().map(str::to_string),
                    name: s["name"].as_str().unwrap().to_string(),
                    attributes: attr_map(&s["attributes"]),
                });
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// The lattice: this process is the host, the providers run as their own processes
// ---------------------------------------------------------------------------------------

struct Lattice {
    _nats: NatsServer,
    host: Host,
    addr: SocketAddr,
}

/// nats-server, a host in this process running kvcounter, the HTTP server and key-value
/// providers as processes (their binaries, under the host's supervisor), linked; returns
/// once kvcounter answers over HTTP.
async fn start_lattice() -> Lattice {
    let nats = NatsServer::start();
    let seed = cluster_seed();
    let (http_id, kv_id) = (provider_key(), provider_key());
    let runtime = Runtime::new(RuntimeConfig {
        default_call_timeout: PATIENCE,
        ..RuntimeConfig::default()
    })
    .unwrap();
    let host = Host::builder()
        .runtime(runtime)
        .cluster_seed(&seed)
        .rpc_timeout(PATIENCE)
        .lattice(lattice_name("traces"))
        .nats(crate::lattice_support::member_nats(nats.url()))
        .provider_executable("httpserver", http_id.clone(), HTTP_CONTRACT, HTTP_BIN)
        .provider_executable("keyvalue", kv_id.clone(), KV_CONTRACT, KV_BIN)
        .build()
        .await
        .unwrap();
    let signer = Signer::new();
    let actor = signer.sign(&actor_wasm("kvcounter"), &[HTTP_CONTRACT, KV_CONTRACT]);
    let actor_id = host.start_actor(actor, 2).await.unwrap();
    host.launch_provider("httpserver", "default", None)
        .await
        .unwrap();
    host.launch_provider("keyvalue", "default", None)
        .await
        .unwrap();
    let port = free_port();
    let link = |provider: &str, contract: &str, values: &[(&str, String)]| {
        LinkDefinition::new(
            &actor_id,
            provider,
            "default",
            contract,
            values
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        )
    };
    host.put_link(link(
        &http_id,
        HTTP_CONTRACT,
        &[
            ("port", port.to_string()),
            ("timeout_ms", PATIENCE.as_millis().to_string()),
        ],
    ))
    .await
    .unwrap();
    host.put_link(link(&kv_id, KV_CONTRACT, &[("backend", "memory".into())]))
        .await
        .unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    // Ready once a request gets through both providers.
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok((200, _)) = get(addr, "/ready", None).await {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "kvcounter did not answer over HTTP within {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Lattice {
        _nats: nats,
        host,
        addr,
    }
}

/// `GET path` with an optional `traceparent` header: (status, body).
async fn get(
    addr: SocketAddr,
    path: &str,
    traceparent: Option<&str>,
) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(addr).await?;
    let header = traceparent
        .map(|t| format!("traceparent: {t}\r\ntracestate: nimbus=test\r\n"))
        .unwrap_or_default();
    let request = format!("GET {path} HTTP/1.1\r\nHost: t\r\n{header}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    tokio::time::timeout(
        PATIENCE + Duration::from_secs(5),
        stream.read_to_end(&mut raw),
    )
    .await
    .map_err(|_| std::io::Error::other("no HTTP response in time"))??;
    let text = String::from_utf8_lossy(&raw).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {text:?}")))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

fn counter(body: &str) -> i64 {
    let v: Value = serde_json::from_str(body).expect("kvcounter answers JSON");
    v["counter"].as_i64().expect("a counter")
}

/// Installs this process's exporter (the host's), sending to `endpoint`.
fn install(endpoint: &str) {
    let mut config =
        nimbus_telemetry::Config::new(&nimbus_telemetry::traces_url(endpoint), "nimbus-host")
            .unwrap();
    config.schedule_delay = Duration::from_millis(100);
    config.timeout = Duration::from_secs(2);
    nimbus_telemetry::install(config)
        .expect("one exporter per process: run these tests with cargo nextest");
}

fn is_http(s: &Received) -> bool {
    s.service.contains("httpserver")
}

fn is_kv(s: &Received) -> bool {
    s.service.contains("keyvalue")
}

fn is_host(s: &Received) -> bool {
    s.service == "nimbus-host"
}

/// Whether the spans of `trace` include the whole chain (HTTP server, host actor, host
/// call, key-value).
fn chain_complete(spans: &[Received], trace: &str) -> bool {
    let of_trace: Vec<_> = spans.iter().filter(|s| s.trace_id == trace).collect();
    of_trace.iter().any(|s| is_http(s))
        && of_trace.iter().filter(|s| is_host(s)).count() >= 2
        && of_trace.iter().any(|s| is_kv(s))
}

/// The chain of `trace` as (HTTP span, host actor span, host call span, key-value span),
/// checked link by link.
fn chain<'a>(spans: &'a [Received], trace: &str) -> [&'a Received; 4] {
    let of_trace: Vec<&Received> = spans.iter().filter(|s| s.trace_id == trace).collect();
    let by_id: HashMap<&str, &Received> =
        of_trace.iter().map(|s| (s.span_id.as_str(), *s)).collect();
    let kv = *of_trace
        .iter()
        .find(|s| is_kv(s))
        .expect("a key-value span");
    let host_call = by_id[kv
        .parent
        .as_deref()
        .expect("the key-value span has a parent")];
    assert!(is_host(host_call), "{host_call:?}");
    let actor = by_id[host_call
        .parent
        .as_deref()
        .expect("the host call has a parent")];
    assert!(is_host(actor), "{actor:?}");
    let http = by_id[actor
        .parent
        .as_deref()
        .expect("the actor span has a parent")];
    assert!(is_http(http), "{http:?}");
    [http, actor, host_call, kv]
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_has_spans_from_three_processes_chained_http_host_keyvalue() {
    let receiver = Receiver::start().await;
    install(&receiver.endpoint());
    let lattice = start_lattice().await;

    let traceparent = format!("00-{TRACE_ID}-{CALLER_SPAN}-01");
    let (status, body) = get(lattice.addr, "/traced", Some(&traceparent))
        .await
        .unwrap();
    assert_eq!((status, counter(&body)), (200, 1), "{body}");

    let spans = receiver
        .wait_for("the traced request's spans from all three processes", |s| {
            chain_complete(s, TRACE_ID)
        })
        .await;
    let [http, actor, host_call, kv] = chain(&spans, TRACE_ID);
    // The HTTP server's span continues the caller's trace.
    assert_eq!(http.parent.as_deref(), Some(CALLER_SPAN));
    assert_eq!(http.name, "HTTP GET");
    assert_eq!(http.attributes["url.path"], "/traced");
    assert_eq!(http.attributes["http.response.status_code"], "200");
    assert_eq!(actor.name, "HandleRequest");
    assert!(
        host_call.name.starts_with("wasmcloud:keyvalue/"),
        "{host_call:?}"
    );
    assert!(kv.name.starts_with("wasmcloud:keyvalue/"), "{kv:?}");
    // Three processes: three service names, three pids, the host being this one.
    let services: HashSet<&str> = [http, actor, kv]
        .iter()
        .map(|s| s.service.as_str())
        .collect();
    let pids: HashSet<u64> = [http, actor, kv].iter().map(|s| s.pid).collect();
    assert_eq!(services.len(), 3, "{services:?}");
    assert_eq!(pids.len(), 3, "{pids:?}");
    assert_eq!(actor.pid, u64::from(std::process::id()));
    assert_eq!(host_call.pid, actor.pid);
    // Every process posted to the standard path.
    assert!(
        receiver
            .paths
            .lock()
            .unwrap()
            .iter()
            .all(|p| p == nimbus_telemetry::TRACES_PATH)
    );
    lattice.host.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_without_or_with_a_malformed_traceparent_starts_a_new_trace() {
    let receiver = Receiver::start().await;
    install(&receiver.endpoint());
    let lattice = start_lattice().await;

    let (status, _) = get(lattice.addr, "/fresh", None).await.unwrap();
    assert_eq!(status, 200);
    // Version ff is invalid; so is an all-zero trace id.
    let malformed = format!("ff-{TRACE_ID}-{CALLER_SPAN}-01");
    let (status, _) = get(lattice.addr, "/malformed", Some(&malformed))
        .await
        .unwrap();
    assert_eq!(status, 200);
    let zeros = format!("00-{}-{CALLER_SPAN}-01", "0".repeat(32));
    let (status, _) = get(lattice.addr, "/zeros", Some(&zeros)).await.unwrap();
    assert_eq!(status, 200);

    let root_of = |spans: &[Received], path: &str| -> Option<String> {
        spans
            .iter()
            .find(|s| is_http(s) && s.attributes.get("url.path") == Some(&Value::from(path)))
            .map(|s| {
                assert_eq!(
                    s.parent, None,
                    "a new trace's first span has no parent: {s:?}"
                );
                s.trace_id.clone()
            })
    };
    let spans = receiver
        .wait_for("three new traces, each complete", |s| {
            ["/fresh", "/malformed", "/zeros"]
                .iter()
                .all(|p| root_of(s, p).is_some_and(|t| chain_complete(s, &t)))
        })
        .await;
    let traces: HashSet<String> = ["/fresh", "/malformed", "/zeros"]
        .iter()
        .map(|p| root_of(&spans, p).unwrap())
        .collect();
    assert_eq!(traces.len(), 3, "each request is its own trace: {traces:?}");
    for trace in &traces {
        assert_ne!(trace, TRACE_ID);
        assert_ne!(trace, &"0".repeat(32));
        chain(&spans, trace);
    }
    lattice.host.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_endpoint_nothing_is_exported_and_calls_work() {
    // Nothing installs an exporter in this process; the providers get no endpoint.
    assert!(
        std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_none()
            && std::env::var_os("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_none(),
        "unset OTEL_EXPORTER_OTLP_*ENDPOINT to run this test"
    );
    let lattice = start_lattice().await;
    let traceparent = format!("00-{TRACE_ID}-{CALLER_SPAN}-01");
    for n in 1..=3 {
        let (status, body) = get(lattice.addr, "/off", Some(&traceparent)).await.unwrap();
        assert_eq!((status, counter(&body)), (200, n), "{body}");
    }
    assert!(!nimbus_telemetry::enabled());
    assert_eq!(nimbus_telemetry::stats(), None);
    lattice.host.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_endpoint_neither_fails_nor_stalls_calls() {
    // A port nobody listens on: every export fails at connect.
    let closed = format!("http://127.0.0.1:{}", free_port());
    install(&closed);
    let lattice = start_lattice().await;
    let traceparent = format!("00-{TRACE_ID}-{CALLER_SPAN}-01");
    let started = Instant::now();
    for n in 1..=20 {
        let (status, body) = get(lattice.addr, "/unreachable", Some(&traceparent))
            .await
            .unwrap();
        assert_eq!((status, counter(&body)), (200, n), "{body}");
    }
    let elapsed = started.elapsed();
    // The exporter tried and failed, and counted what it lost.
    let deadline = Instant::now() + WAIT;
    loop {
        let stats = nimbus_telemetry::stats().unwrap();
        if stats.failed > 0 {
            assert_eq!(stats.exported, 0);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no export attempt failed: {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Far below one export timeout (2 s) per request: no call waited for the exporter.
    assert!(
        elapsed < Duration::from_secs(20),
        "20 requests took {elapsed:?} with the collector unreachable"
    );
    lattice.host.stop().await.unwrap();
}
