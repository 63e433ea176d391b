//! Actor call benchmarks of issue 5, each against its baseline in the same run:
//!
//! 1. an echo call of 128 B over NATS, 1 in flight (host B calls the echo actor running
//!    on host A, through a real `nats-server`), with invocation signing on and off, vs a
//!    raw async-nats request to an async-nats echo responder: p50 and p99;
//! 2. the same call on the local fast path (`Host::call_actor` on the host running the
//!    actor) vs a direct call on a warm instance of our waPC runtime: p50 and p99;
//! 3. 64 calls in flight over NATS vs 64 async-nats requests in flight to the echo
//!    responder: calls per second;
//! 4. the local fast path on a host with Prometheus metrics on (`metrics_addr`) vs the
//!    same on a host with them off: the cost of recording a call (issue 13).
//!
//! Baseline and ours run interleaved in rounds (the order alternates) so that load from
//! elsewhere on the machine hits both. Run with
//! `cargo bench -p nimbus-benches --bench lattice_calls [-- nats|fastpath|metrics|inflight]`;
//! `NIMBUS_BENCH_ROUNDS` (default 5) and `NIMBUS_BENCH_SECS` (seconds per throughput
//! round and side, default 1) change the length.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use nimbus_benches::{Samples, fmt_duration, load_average, report_line};
use nimbus_core::keys::{KeyKind, KeyPair};
use nimbus_lattice::{Host, NatsConfig};
use nimbus_runtime::{Actor, ActorOptions, Runtime, RuntimeConfig};
use nimbus_tests::servers::NatsServer;
use nimbus_tests::{Signer, actor_wasm};

const PAYLOAD: usize = 128;
const RAW_SUBJECT: &str = "bench.raw.echo";
/// NATS calls timed per round and variant (1 in flight).
const NATS_CALLS_PER_ROUND: usize = 2_000;
/// Fast-path samples per round and variant; each sample is the mean of a batch.
const FAST_SAMPLES_PER_ROUND: usize = 4_000;
/// Calls per fast-path sample: a batch keeps the clock's own cost out of a sub-µs call.
const FAST_BATCH: u32 = 8;
const IN_FLIGHT: usize = 64;
/// Instances of the echo actor on the serving host.
const INSTANCES: u16 = 2;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Bench {
    payload: Vec<u8>,
    actor_id: String,
    /// Hosts with signing on: `signed.0` runs the actor, `signed.1` calls it.
    signed: (Host, Host),
    /// The same pair with signing off, in its own lattice.
    unsigned: (Host, Host),
    /// Requests of the raw baseline.
    raw: async_nats::Client,
    /// The echo actor loaded straight into the runtime (the direct waPC call).
    direct: Actor,
    /// A host like `unsigned.0` with metrics on, running the echo actor too.
    metrics: Host,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    NatsSigned,
    NatsUnsigned,
    RawNats,
    FastPath,
    FastPathMetrics,
    Direct,
}

impl Bench {
    /// One call of `case`; panics on a failed call (a benchmark of failures is no use).
    async fn call(&self, case: Case) {
        let out = match case {
            Case::NatsSigned => self
                .signed
                .1
                .call_actor(&self.actor_id, "Echo", self.payload.clone())
                .await
                .unwrap(),
            Case::NatsUnsigned => self
                .unsigned
                .1
                .call_actor(&self.actor_id, "Echo", self.payload.clone())
                .await
                .unwrap(),
            Case::RawNats => self
                .raw
                .request(RAW_SUBJECT, self.payload.clone().into())
                .await
                .unwrap()
                .payload
                .to_vec(),
            Case::FastPath => self
                .unsigned
                .0
                .call_actor(&self.actor_id, "Echo", self.payload.clone())
                .await
                .unwrap(),
            Case::FastPathMetrics => self
                .metrics
                .call_actor(&self.actor_id, "Echo", self.payload.clone())
                .await
                .unwrap(),
            Case::Direct => self.direct.call("Echo", &self.payload).await.unwrap(),
        };
        debug_assert_eq!(out.len(), PAYLOAD);
    }
}

/// Times `n` calls of `case`, one at a time, in a task on the runtime's workers.
async fn latency(bench: &Arc<Bench>, case: Case, n: usize, batch: u32) -> Samples {
    let bench = bench.clone();
    tokio::spawn(async move {
        let mut samples = Samples::with_capacity(n);
        for _ in 0..n {
            let start = Instant::now();
            for _ in 0..batch {
                bench.call(case).await;
            }
            samples.push(start.elapsed() / batch);
        }
        samples
    })
    .await
    .unwrap()
}

/// Calls per second of `case` with `in_flight` callers, over `secs` after a short warm-up.
async fn throughput(bench: &Arc<Bench>, case: Case, in_flight: usize, secs: u64) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::with_capacity(in_flight);
    for _ in 0..in_flight {
        let (bench, stop, done) = (bench.clone(), stop.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                bench.call(case).await;
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (start, before) = (Instant::now(), done.load(Ordering::Relaxed));
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let (elapsed, after) = (start.elapsed(), done.load(Ordering::Relaxed));
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    (after - before) as f64 / elapsed.as_secs_f64()
}

async fn host_pair(
    url: &str,
    runtime: &Runtime,
    seed: &str,
    sign: bool,
    wasm: &[u8],
) -> (Host, Host) {
    let lattice = format!(
        "bench-{}-{}",
        if sign { "signed" } else { "unsigned" },
        &nimbus_core::wire::new_uuid()[..8]
    );
    let build = || {
        Host::builder()
            .runtime(runtime.clone())
            .cluster_seed(seed)
            .lattice(&lattice)
            .sign_invocations(sign)
            .nats(NatsConfig::url(url))
            .build()
    };
    let server = build().await.unwrap();
    server.start_actor(wasm.to_vec(), INSTANCES).await.unwrap();
    let caller = build().await.unwrap();
    (server, caller)
}

/// Serves `RAW_SUBJECT` with a plain async-nats echo: the reply is the request's payload.
async fn raw_responder(url: &str) {
    let client = async_nats::connect(url).await.unwrap();
    let mut sub = client.subscribe(RAW_SUBJECT).await.unwrap();
    client.flush().await.unwrap();
    tokio::spawn(async move {
        while let Some(msg) = sub.next().await {
            if let Some(reply) = msg.reply {
                client.publish(reply, msg.payload).await.unwrap();
            }
        }
    });
}

fn ratio_of(ours: Duration, baseline: Duration) -> f64 {
    ours.as_secs_f64() / baseline.as_secs_f64()
}

async fn bench_nats(bench: &Arc<Bench>, rounds: usize) {
    println!(
        "\n== echo over NATS, 1 in flight, {PAYLOAD} B ({rounds} rounds x {NATS_CALLS_PER_ROUND} calls per case)"
    );
    let cases = [Case::NatsSigned, Case::NatsUnsigned, Case::RawNats];
    for case in cases {
        latency(bench, case, 300, 1).await; // warm-up
    }
    let mut all = [Samples::default(), Samples::default(), Samples::default()];
    for round in 0..rounds {
        let mut order: Vec<usize> = (0..cases.len()).collect();
        order.rotate_left(round % cases.len());
        for i in order {
            let s = latency(bench, cases[i], NATS_CALLS_PER_ROUND, 1).await;
            all[i].extend(&s);
        }
    }
    let [mut signed, mut unsigned, mut raw] = all;
    for (name, s) in [
        ("nimbus, signing on", &mut signed),
        ("nimbus, signing off", &mut unsigned),
        ("raw async-nats request/reply", &mut raw),
    ] {
        println!(
            "  {name:<32} p50 {:>9}  p99 {:>9}  mean {:>9}  ({} calls)",
            fmt_duration(s.percentile(50.0)),
            fmt_duration(s.percentile(99.0)),
            fmt_duration(s.mean()),
            s.len()
        );
    }
    let raw50 = raw.percentile(50.0);
    for (what, s) in [
        ("NATS echo p50, signing on vs raw async-nats", &mut signed),
        (
            "NATS echo p50, signing off vs raw async-nats",
            &mut unsigned,
        ),
    ] {
        let ratio = ratio_of(s.percentile(50.0), raw50);
        report_line(
            what,
            &fmt_duration(s.percentile(50.0)),
            &fmt_duration(raw50),
            ratio,
            "<= 1.25x",
            ratio <= 1.25,
        );
    }
    for (what, s) in [
        ("NATS echo p99, signing on vs raw async-nats", &mut signed),
        (
            "NATS echo p99, signing off vs raw async-nats",
            &mut unsigned,
        ),
    ] {
        let ratio = ratio_of(s.percentile(99.0), raw.percentile(99.0));
        report_line(
            what,
            &fmt_duration(s.percentile(99.0)),
            &fmt_duration(raw.percentile(99.0)),
            ratio,
            "(none)",
            true,
        );
    }
    let cost = signed
        .percentile(50.0)
        .saturating_sub(unsigned.percentile(50.0));
    println!(
        "  cost of invocation signing at p50: {}",
        fmt_duration(cost)
    );
}

async fn bench_fast_path(bench: &Arc<Bench>, rounds: usize) {
    println!(
        "\n== local fast path vs direct warm waPC call, {PAYLOAD} B ({rounds} rounds x {FAST_SAMPLES_PER_ROUND} samples, each the mean of {FAST_BATCH} calls)"
    );
    latency(bench, Case::FastPath, 2_000, FAST_BATCH).await;
    latency(bench, Case::Direct, 2_000, FAST_BATCH).await;
    let mut fast = Samples::default();
    let mut direct = Samples::default();
    for round in 0..rounds {
        let a = latency(bench, Case::FastPath, FAST_SAMPLES_PER_ROUND, FAST_BATCH);
        let b = latency(bench, Case::Direct, FAST_SAMPLES_PER_ROUND, FAST_BATCH);
        if round % 2 == 0 {
            fast.extend(&a.await);
            direct.extend(&b.await);
        } else {
            direct.extend(&b.await);
            fast.extend(&a.await);
        }
    }
    for (name, s) in [
        ("Host::call_actor, local", &mut fast),
        ("Actor::call (warm instance)", &mut direct),
    ] {
        println!(
            "  {name:<32} p50 {:>9}  p99 {:>9}  mean {:>9}",
            fmt_duration(s.percentile(50.0)),
            fmt_duration(s.percentile(99.0)),
            fmt_duration(s.mean()),
        );
    }
    let (f50, d50) = (fast.percentile(50.0), direct.percentile(50.0));
    let ratio = ratio_of(f50, d50);
    report_line(
        "fast path p50 vs direct waPC call",
        &fmt_duration(f50),
        &fmt_duration(d50),
        ratio,
        "<= 2x, <10µs",
        ratio <= 2.0 && f50 < Duration::from_micros(10),
    );
}

async fn bench_metrics(bench: &Arc<Bench>, rounds: usize) {
    println!(
        "\n== local fast path, metrics on vs off, {PAYLOAD} B ({rounds} rounds x {FAST_SAMPLES_PER_ROUND} samples, each the mean of {FAST_BATCH} calls)"
    );
    latency(bench, Case::FastPathMetrics, 2_000, FAST_BATCH).await;
    latency(bench, Case::FastPath, 2_000, FAST_BATCH).await;
    let mut on = Samples::default();
    let mut off = Samples::default();
    // Per round too: load from elsewhere drifts between rounds more than within one.
    let mut round_ratios = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let a = latency(
            bench,
            Case::FastPathMetrics,
            FAST_SAMPLES_PER_ROUND,
            FAST_BATCH,
        );
        let b = latency(bench, Case::FastPath, FAST_SAMPLES_PER_ROUND, FAST_BATCH);
        let (mut a, mut b) = if round % 2 == 0 {
            let a = a.await;
            (a, b.await)
        } else {
            let b = b.await;
            (a.await, b)
        };
        round_ratios.push(ratio_of(a.percentile(50.0), b.percentile(50.0)));
        on.extend(&a);
        off.extend(&b);
    }
    round_ratios.sort_by(f64::total_cmp);
    let median_round = round_ratios[round_ratios.len() / 2];
    println!(
        "  per-round p50 ratios (sorted): {}; median {median_round:.3}x",
        round_ratios
            .iter()
            .map(|r| format!("{r:.3}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    for (name, s) in [("metrics on", &mut on), ("metrics off", &mut off)] {
        println!(
            "  {name:<32} p50 {:>9}  p99 {:>9}  mean {:>9}",
            fmt_duration(s.percentile(50.0)),
            fmt_duration(s.percentile(99.0)),
            fmt_duration(s.mean()),
        );
    }
    let (on50, off50) = (on.percentile(50.0), off.percentile(50.0));
    let ratio = ratio_of(on50, off50);
    report_line(
        "fast path p50, metrics on vs off",
        &fmt_duration(on50),
        &fmt_duration(off50),
        ratio,
        "<= 1.05x",
        ratio <= 1.05,
    );
    let scraped = bench.metrics.metrics_text().unwrap_or_default();
    assert!(
        scraped.contains("nimbus_actor_calls_total"),
        "the metrics host counted nothing"
    );
}

async fn bench_in_flight(bench: &Arc<Bench>, rounds: usize, secs: u64) {
    println!(
        "\n== {IN_FLIGHT} calls in flight over NATS, {PAYLOAD} B ({rounds} rounds x {secs} s per case)"
    );
    let cases = [Case::NatsSigned, Case::NatsUnsigned, Case::RawNats];
    let mut sums = [0.0_f64; 3];
    for round in 0..rounds {
        let mut order: Vec<usize> = (0..cases.len()).collect();
        order.rotate_left(round % cases.len());
        let mut line = format!("  round {round}:");
        for i in order {
            let rate = throughput(bench, cases[i], IN_FLIGHT, secs).await;
            line.push_str(&format!(" {:?} {rate:.0}/s", cases[i]));
            sums[i] += rate;
        }
        println!("{line}");
    }
    let [signed, unsigned, raw] = sums.map(|s| s / rounds as f64);
    // Targets of issue 11: >= 0.5x with signing on, >= 0.8x with signing off.
    for (what, ours, target) in [
        (
            "64 in flight, signing on vs async-nats responder",
            signed,
            0.5,
        ),
        (
            "64 in flight, signing off vs async-nats responder",
            unsigned,
            0.8,
        ),
    ] {
        let ratio = ours / raw;
        report_line(
            what,
            &format!("{ours:.0}/s"),
            &format!("{raw:.0}/s"),
            ratio,
            &format!(">= {target:.2}x"),
            ratio >= target,
        );
    }
}

async fn run(filter: Vec<String>) {
    let rounds = env_or("NIMBUS_BENCH_ROUNDS", 5).max(1) as usize;
    let secs = env_or("NIMBUS_BENCH_SECS", 1).max(1);
    let wants = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));
    println!("load average at start: {}", load_average());

    let nats = NatsServer::start_open();
    let runtime = Runtime::new(RuntimeConfig {
        max_total_instances: 32,
        max_memory_bytes: 16 * 1024 * 1024,
        ..RuntimeConfig::default()
    })
    .unwrap();
    let signer = Signer::new();
    let wasm = signer.sign(&actor_wasm("echo"), &[]);
    let seed = KeyPair::generate(KeyKind::Cluster).seed().unwrap();
    let signed = host_pair(&nats.url(), &runtime, &seed, true, &wasm).await;
    let unsigned = host_pair(&nats.url(), &runtime, &seed, false, &wasm).await;
    raw_responder(&nats.url()).await;
    let raw = async_nats::connect(nats.url()).await.unwrap();
    let direct = runtime.load_actor(&wasm, ActorOptions::default()).unwrap();
    let metrics = Host::builder()
        .runtime(runtime.clone())
        .cluster_seed(&seed)
        .lattice(format!(
            "bench-metrics-{}",
            &nimbus_core::wire::new_uuid()[..8]
        ))
        .sign_invocations(false)
        .nats(NatsConfig::url(nats.url()))
        .metrics_addr("127.0.0.1:0".parse().unwrap())
        .build()
        .await
        .unwrap();
    metrics.start_actor(wasm.to_vec(), INSTANCES).await.unwrap();
    let bench = Arc::new(Bench {
        payload: vec![0x5a; PAYLOAD],
        actor_id: signer.module.public_key(),
        signed,
        unsigned,
        raw,
        direct,
        metrics,
    });
    for case in [
        Case::NatsSigned,
        Case::NatsUnsigned,
        Case::RawNats,
        Case::FastPath,
        Case::FastPathMetrics,
        Case::Direct,
    ] {
        bench.call(case).await;
    }

    if wants("nats") {
        bench_nats(&bench, rounds).await;
    }
    if wants("fastpath") {
        bench_fast_path(&bench, rounds).await;
    }
    if wants("metrics") {
        bench_metrics(&bench, rounds).await;
    }
    if wants("inflight") {
        bench_in_flight(&bench, rounds.min(3), secs).await;
    }
    println!("\nload average at end: {}", load_average());

    let bench = Arc::into_inner(bench).expect("no call is running");
    for host in [
        bench.signed.0,
        bench.signed.1,
        bench.unsigned.0,
        bench.unsigned.1,
        bench.metrics,
    ] {
        host.stop().await.unwrap();
    }
    drop(nats);
}

fn main() {
    // `cargo bench` passes `--bench`; other arguments select cases by name.
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
