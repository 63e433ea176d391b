//! HTTP benchmarks of issue 6: `GET /bench` → httpserver provider → kvcounter actor →
//! `wasmcloud:keyvalue` `Add` → `{"counter": N}`, with keep-alive, loaded by `wrk` at
//! c = 1, 16 and 64, each against its baseline in the same run:
//!
//! - **standalone**: a standalone host (no NATS) with kvcounter, the in-process httpserver
//!   provider and the in-process key-value provider on its memory backend, vs an axum
//!   handler doing the same increment natively (a map under a mutex);
//! - **lattice**: a host on a real `nats-server` with both providers out of process (their
//!   binaries under the host's supervisor), invocation signing on (`lattice-signed`) and
//!   off (`lattice-unsigned`), vs an axum handler that sends an async-nats request to a
//!   native responder doing the increment.
//!
//! Ours and the baseline alternate, round by round, at every concurrency. Every server runs
//! in this process on one 2-worker tokio runtime (the out-of-process providers and
//! `nats-server` in their own processes). Needs `wrk` on `PATH` and, for the lattice case,
//! the provider binaries in the same target directory: `scripts/bench-http.sh` installs
//! and builds both, then runs `cargo bench -p nimbus-benches --bench http [-- standalone|lattice]`.
//! `NIMBUS_BENCH_SECS` (seconds per wrk run, default 3) and `NIMBUS_BENCH_ROUNDS`
//! (default 2) change the length; `NIMBUS_BENCH_CONNECTIONS` (default `1,16,64`) the
//! concurrencies.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::{Uri, header};
use axum::response::IntoResponse;
use futures_util::StreamExt;
use nimbus_benches::{WrkResult, fmt_duration, load_average, parse_wrk, report_line};
use nimbus_core::keys::{KeyKind, KeyPair};
use nimbus_core::link::LinkDefinition;
use nimbus_lattice::{Host, NatsConfig};
use nimbus_provider_httpserver::HttpServerProvider;
use nimbus_provider_keyvalue::KeyValueProvider;
use nimbus_runtime::{Runtime, RuntimeConfig};
use nimbus_tests::servers::{NatsServer, free_port};
use nimbus_tests::{Signer, actor_wasm};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const HTTP: &str = "wasmcloud:httpserver";
const KV: &str = "wasmcloud:keyvalue";
const PATH: &str = "/bench";
const KV_SUBJECT: &str = "bench.kv.add";
/// Instances of kvcounter by default (an instance is held while its KV call is out);
/// `NIMBUS_BENCH_INSTANCES` changes it.
const INSTANCES: u64 = 4;

fn instances() -> u16 {
    u16::try_from(env_or("NIMBUS_BENCH_INSTANCES", INSTANCES).clamp(1, 64)).unwrap_or(4)
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn runtime() -> Runtime {
    Runtime::new(RuntimeConfig {
        max_total_instances: 96,
        max_memory_bytes: 16 * 1024 * 1024,
        ..RuntimeConfig::default()
    })
    .unwrap()
}

fn service_key() -> String {
    KeyPair::generate(KeyKind::Service).public_key()
}

/// The kvcounter fixture signed with both capabilities; returns (bytes, actor id).
fn kvcounter() -> (Vec<u8>, String) {
    let signer = Signer::new();
    let bytes = signer.sign(&actor_wasm("kvcounter"), &[HTTP, KV]);
    (bytes, signer.module.public_key())
}

fn links(actor: &str, http_pid: &str, kv_pid: &str, port: u16) -> [LinkDefinition; 2] {
    let http_values = HashMap::from([("port".to_string(), port.to_string())]);
    let kv_values = HashMap::from([("backend".to_string(), "memory".to_string())]);
    [
        LinkDefinition::new(actor, http_pid, "default", HTTP, http_values),
        LinkDefinition::new(actor, kv_pid, "default", KV, kv_values),
    ]
}

/// Standalone host: kvcounter with the in-process httpserver and memory KV on `port`,
/// with the Prometheus `/metrics` endpoint on when `metrics` (what `wash up
/// --metrics-addr` turns on: every call then records its latency and outcome).
async fn standalone(port: u16, metrics: bool) -> Host {
    let mut builder = Host::builder().runtime(runtime());
    if metrics {
        builder = builder.metrics_addr(([127, 0, 0, 1], free_port()).into());
    }
    let host = builder.build().await.unwrap();
    let (wasm, actor) = kvcounter();
    host.start_actor(wasm, instances()).await.unwrap();
    let (http_pid, kv_pid) = (service_key(), service_key());
    host.start_provider(Arc::new(KeyValueProvider::new()), &kv_pid, "default")
        .await
        .unwrap();
    host.start_provider(Arc::new(HttpServerProvider::new()), &http_pid, "default")
        .await
        .unwrap();
    for link in links(&actor, &http_pid, &kv_pid, port) {
        host.put_link(link).await.unwrap();
    }
    host
}

/// Where the provider binaries are: `NIMBUS_PROVIDER_BIN_DIR`, else the target directory
/// of this bench executable (`target/release/deps/http-…` → `target/release`).
fn provider_binary(name: &str) -> PathBuf {
    let dir = std::env::var_os("NIMBUS_PROVIDER_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let exe = std::env::current_exe().unwrap();
            exe.parent().and_then(|d| d.parent()).unwrap().to_path_buf()
        });
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build --release -p nimbus-provider-httpserver -p nimbus-provider-keyvalue --bins` (scripts/bench-http.sh does) or set NIMBUS_PROVIDER_BIN_DIR",
        path.display()
    );
    path
}

/// Lattice host on `nats_url` with both providers out of process and kvcounter on `port`,
/// invocation signing on or off.
async fn lattice(nats_url: &str, port: u16, signing: bool) -> Host {
    let (http_pid, kv_pid) = (service_key(), service_key());
    let host = Host::builder()
        .runtime(runtime())
        .sign_invocations(signing)
        .lattice(format!(
            "bench-http-{}",
            &nimbus_core::wire::new_uuid()[..8]
        ))
        .nats(NatsConfig::url(nats_url))
        .provider_executable(
            "httpserver",
            http_pid.clone(),
            HTTP,
            provider_binary("nimbus-httpserver-provider"),
        )
        .provider_executable(
            "keyvalue",
            kv_pid.clone(),
            KV,
            provider_binary("nimbus-keyvalue-provider"),
        )
        .build()
        .await
        .unwrap();
    let (wasm, actor) = kvcounter();
    host.start_actor(wasm, instances()).await.unwrap();
    host.launch_provider("keyvalue", "default", None)
        .await
        .unwrap();
    host.launch_provider("httpserver", "default", None)
        .await
        .unwrap();
    for link in links(&actor, &http_pid, &kv_pid, port) {
        host.put_link(link).await.unwrap();
    }
    host
}

/// The native counter of the baselines: `kvcounter:{path}` += 1.
#[derive(Default)]
struct Counters(Mutex<HashMap<String, i64>>);

impl Counters {
    fn add(&self, path: &str) -> i64 {
        let mut map = self.0.lock().unwrap();
        let n = map.entry(format!("kvcounter:{path}")).or_insert(0);
        *n += 1;
        *n
    }
}

fn json_counter(n: i64) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        format!("{{\"counter\":{n}}}"),
    )
}

async fn serve_axum(port: u16, app: Router) {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
}

/// The standalone baseline: axum doing the increment itself.
async fn axum_native(port: u16) {
    let counters = Arc::new(Counters::default());
    let app = Router::new().fallback(move |uri: Uri| {
        let counters = counters.clone();
        async move { json_counter(counters.add(uri.path())) }
    });
    serve_axum(port, app).await;
}

/// The lattice baseline: axum → async-nats request → a native responder incrementing.
async fn axum_nats(port: u16, nats_url: &str) {
    let responder = async_nats::connect(nats_url).await.unwrap();
    let mut sub = responder.subscribe(KV_SUBJECT).await.unwrap();
    responder.flush().await.unwrap();
    let counters = Counters::default();
    tokio::spawn(async move {
        while let Some(msg) = sub.next().await {
            let path = String::from_utf8_lossy(&msg.payload);
            let n = counters.add(&path);
            if let Some(reply) = msg.reply {
                responder
                    .publish(reply, n.to_string().into())
                    .await
                    .unwrap();
            }
        }
    });
    let client = async_nats::connect(nats_url).await.unwrap();
    let app = Router::new().fallback(move |uri: Uri| {
        let client = client.clone();
        async move {
            let reply = client
                .request(KV_SUBJECT, uri.path().to_string().into())
                .await
                .unwrap();
            let n: i64 = std::str::from_utf8(&reply.payload)
                .unwrap()
                .parse()
                .unwrap();
            json_counter(n)
        }
    });
    serve_axum(port, app).await;
}

/// Waits until `GET PATH` on `port` answers 200 with a counter.
async fn wait_ready(port: u16, what: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(body) = get_once(port).await
            && body.starts_with("HTTP/1.1 200")
            && body.contains("\"counter\"")
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} on port {port} did not answer within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn get_once(port: u16) -> std::io::Result<String> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    stream
        .write_all(
            format!("GET {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await?;
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out))
        .await
        .map_err(std::io::Error::other)??;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

async fn wrk(port: u16, connections: u64, secs: u64) -> WrkResult {
    let threads = connections.min(2);
    let out = tokio::process::Command::new("wrk")
        .args([
            format!("-t{threads}"),
            format!("-c{connections}"),
            format!("-d{secs}s"),
            "--latency".into(),
            format!("http://127.0.0.1:{port}{PATH}"),
        ])
        .output()
        .await
        .expect("failed to run wrk (scripts/bench-http.sh installs it)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "wrk failed: {text}");
    parse_wrk(&text).unwrap_or_else(|| panic!("unexpected wrk output:\n{text}"))
}

/// Mean req/s and the median of the rounds' p50 and p99.
fn summarize(runs: &[WrkResult]) -> (f64, Duration, Duration, u64) {
    let rps = runs.iter().map(|r| r.requests_per_sec).sum::<f64>() / runs.len() as f64;
    let median = |f: fn(&WrkResult) -> Duration| {
        let mut v: Vec<Duration> = runs.iter().map(f).collect();
        v.sort_unstable();
        v[(v.len() - 1) / 2]
    };
    let errors = runs.iter().map(|r| r.errors).sum();
    (rps, median(|r| r.p50), median(|r| r.p99), errors)
}

async fn compare(
    mode: &str,
    ours: u16,
    baseline: u16,
    baseline_name: &str,
    conns: &[u64],
    target: f64,
) {
    let secs = env_or("NIMBUS_BENCH_SECS", 3).max(1);
    let rounds = env_or("NIMBUS_BENCH_ROUNDS", 2).max(1);
    println!("\n== {mode}: nimbus vs {baseline_name} ({rounds} rounds x {secs} s per case)");
    // Warm-up: connections, instances, allocator.
    wrk(ours, 16, 1).await;
    wrk(baseline, 16, 1).await;
    let mut lines = Vec::new();
    for &c in conns {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            if round % 2 == 0 {
                a.push(wrk(ours, c, secs).await);
                b.push(wrk(baseline, c, secs).await);
            } else {
                b.push(wrk(baseline, c, secs).await);
                a.push(wrk(ours, c, secs).await);
            }
            println!(
                "  c={c:<3} round {round}: nimbus {:>8.0} req/s p50 {:>9} p99 {:>9} | baseline {:>8.0} req/s p50 {:>9} p99 {:>9}  (load {})",
                a[a.len() - 1].requests_per_sec,
                fmt_duration(a[a.len() - 1].p50),
                fmt_duration(a[a.len() - 1].p99),
                b[b.len() - 1].requests_per_sec,
                fmt_duration(b[b.len() - 1].p50),
                fmt_duration(b[b.len() - 1].p99),
                load_average(),
            );
        }
        lines.push((c, summarize(&a), summarize(&b)));
    }
    println!("  -- {mode} summary (req/s: mean of rounds; p50/p99: median of rounds)");
    for (c, (rps, p50, p99, err), (brps, bp50, bp99, berr)) in lines {
        println!(
            "  c={c:<3} nimbus {rps:>8.0} req/s p50 {:>9} p99 {:>9} errors {err} | baseline {brps:>8.0} req/s p50 {:>9} p99 {:>9} errors {berr}",
            fmt_duration(p50),
            fmt_duration(p99),
            fmt_duration(bp50),
            fmt_duration(bp99),
        );
        let ratio = rps / brps;
        report_line(
            &format!("{mode} c={c} req/s vs {baseline_name}"),
            &format!("{rps:.0}/s"),
            &format!("{brps:.0}/s"),
            ratio,
            &format!(">= {target:.2}x"),
            ratio >= target && err == 0,
        );
    }
}

/// `NIMBUS_BENCH_SERVE=standalone|standalone-metrics|lattice-signed|lattice-unsigned|baseline-nats`: start
/// only one side of that case (ours, or the axum → async-nats → responder baseline), print its port, and serve for `NIMBUS_BENCH_SECS` (default 60) seconds,
/// for profiling under an outside load (`wrk` + `perf record -a`, see docs/benchmarks.md).
async fn serve_only(mode: &str) {
    let secs = env_or("NIMBUS_BENCH_SECS", 60);
    let port = free_port();
    if mode == "baseline-nats" {
        let nats = NatsServer::start_open();
        axum_nats(port, &nats.url()).await;
        wait_ready(port, mode).await;
        println!("serving {mode} on http://127.0.0.1:{port}/bench for {secs} s");
        tokio::time::sleep(Duration::from_secs(secs)).await;
        return;
    }
    let nats = mode.starts_with("lattice").then(NatsServer::start_open);
    let host = match &nats {
        None => standalone(port, mode == "standalone-metrics").await,
        Some(nats) => lattice(&nats.url(), port, mode == "lattice-signed").await,
    };
    wait_ready(port, mode).await;
    println!("serving {mode} on http://127.0.0.1:{port}/bench for {secs} s");
    tokio::time::sleep(Duration::from_secs(secs)).await;
    host.stop().await.unwrap();
}

async fn run(filter: Vec<String>) {
    if let Ok(mode) = std::env::var("NIMBUS_BENCH_SERVE") {
        return serve_only(&mode).await;
    }
    let wants = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));
    let conns: Vec<u64> = std::env::var("NIMBUS_BENCH_CONNECTIONS")
        .unwrap_or_else(|_| "1,16,64".into())
        .split(',')
        .filter_map(|c| c.trim().parse().ok())
        .collect();
    println!("load average at start: {}", load_average());
    if wants("standalone") {
        let (ours, baseline) = (free_port(), free_port());
        let host = standalone(ours, false).await;
        axum_native(baseline).await;
        wait_ready(ours, "standalone kvcounter").await;
        wait_ready(baseline, "axum").await;
        compare("standalone", ours, baseline, "axum native", &conns, 0.8).await;
        host.stop().await.unwrap();
    }
    // Issue 13: metrics on costs at most 5% (req/s on / off >= 0.95), both standalone.
    if wants("metrics") {
        let (on, off) = (free_port(), free_port());
        let (with, without) = (standalone(on, true).await, standalone(off, false).await);
        wait_ready(on, "standalone kvcounter, metrics on").await;
        wait_ready(off, "standalone kvcounter, metrics off").await;
        let metrics = with.metrics_text().unwrap_or_default();
        assert!(
            metrics.contains("HandleRequest"),
            "the metrics-on host recorded no calls:\n{metrics}"
        );
        compare("metrics-on", on, off, "metrics off", &conns, 0.95).await;
        with.stop().await.unwrap();
        without.stop().await.unwrap();
    }
    // Targets (issue 11): >= 0.35x of the native service with signing on, >= 0.6x off.
    for (mode, signing, target) in [
        ("lattice-signed", true, 0.35),
        ("lattice-unsigned", false, 0.6),
    ] {
        if !wants(mode) {
            continue;
        }
        let nats = NatsServer::start_open();
        let (ours, baseline) = (free_port(), free_port());
        let host = lattice(&nats.url(), ours, signing).await;
        axum_nats(baseline, &nats.url()).await;
        wait_ready(ours, "lattice kvcounter").await;
        wait_ready(baseline, "axum + async-nats").await;
        compare(
            mode,
            ours,
            baseline,
            "axum→async-nats→responder",
            &conns,
            target,
        )
        .await;
        host.stop().await.unwrap();
        drop(nats);
    }
    println!("\nload average at end: {}", load_average());
}

fn main() {
    // `cargo bench` passes `--bench`; other arguments select `standalone` or `lattice`.
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(run(filter));
}
