//! Tracing on vs off on the local fast path (issue 13): `Host::call_actor` of the echo
//! actor, 128 B, on a standalone host, with the OTLP exporter not installed ("off",
//! tracing compiled in: one branch per call) and installed ("on": every call records an
//! actor span, queued for the exporter thread, which POSTs batches to a sink in the same
//! process, so the export's CPU counts too).
//!
//! The exporter is process-wide, so each side runs in a child process of its own; the
//! two alternate in rounds (the order alternating too) so that load from elsewhere hits
//! both. Run with `cargo bench -p nimbus-benches --bench tracing`;
//! `NIMBUS_BENCH_ROUNDS` (default 5) sets the rounds.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::{Duration, Instant};

use nimbus_benches::{Samples, fmt_duration, load_average, report_line};
use nimbus_lattice::Host;
use nimbus_runtime::{Runtime, RuntimeConfig};
use nimbus_tests::{Signer, actor_wasm};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PAYLOAD: usize = 128;
/// Samples per child; each sample is the mean of a batch of calls.
const SAMPLES: usize = 4_000;
const BATCH: u32 = 8;
const CHILD_ENV: &str = "NIMBUS_TRACING_BENCH_CHILD";

/// An OTLP sink: answers every POST with 200 and keeps nothing.
async fn sink() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = vec![0u8; 64 * 1024];
                loop {
                    let Ok(n) = stream.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    if buf.len() >= end + 4 + len {
                        break;
                    }
                }
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    .await;
            });
        }
    });
    format!("http://{addr}")
}

/// One side: prints `RESULT p50_ns p99_ns mean_ns submitted dropped exported failed`.
async fn child(on: bool) {
    if on {
        let endpoint = sink().await;
        let config =
            nimbus_telemetry::Config::new(&nimbus_telemetry::traces_url(&endpoint), "nimbus-bench")
                .unwrap();
        nimbus_telemetry::install(config).unwrap();
    }
    let runtime = Runtime::new(RuntimeConfig {
        max_total_instances: 8,
        max_memory_bytes: 16 * 1024 * 1024,
        ..RuntimeConfig::default()
    })
    .unwrap();
    let host = Host::builder().runtime(runtime).build().await.unwrap();
    let signer = Signer::new();
    let id = host
        .start_actor(signer.sign(&actor_wasm("echo"), &[]), 2)
        .await
        .unwrap();
    let payload = vec![0x5a; PAYLOAD];
    let mut samples = Samples::with_capacity(SAMPLES);
    for i in 0..SAMPLES * 3 / 2 {
        let start = Instant::now();
        for _ in 0..BATCH {
            let out = host.call_actor(&id, "Echo", payload.clone()).await.unwrap();
            debug_assert_eq!(out.len(), PAYLOAD);
        }
        // The first third warms up.
        if i >= SAMPLES / 2 {
            samples.push(start.elapsed() / BATCH);
        }
    }
    if on {
        nimbus_telemetry::flush(Duration::from_secs(10)).await;
    }
    let stats = nimbus_telemetry::stats().unwrap_or_default();
    assert_eq!(on, stats.submitted > 0, "spans recorded only when on");
    println!(
        "RESULT {} {} {} {} {} {} {}",
        samples.percentile(50.0).as_nanos(),
        samples.percentile(99.0).as_nanos(),
        samples.mean().as_nanos(),
        stats.submitted,
        stats.dropped,
        stats.exported,
        stats.failed
    );
    host.stop().await.unwrap();
}

/// Runs one side in a child process and parses its result line.
fn run_child(on: bool) -> [u64; 7] {
    let out = Command::new(std::env::current_exe().unwrap())
        .env(CHILD_ENV, if on { "on" } else { "off" })
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "child failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .expect("a RESULT line");
    let v: Vec<u64> = line
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    v.try_into().unwrap()
}

fn main() {
    if let Ok(mode) = std::env::var(CHILD_ENV) {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
            .block_on(child(mode == "on"));
        return;
    }
    let rounds = std::env::var("NIMBUS_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(5)
        .max(1);
    println!("load average at start: {}", load_average());
    println!(
        "\n== local fast path, tracing on vs off, {PAYLOAD} B ({rounds} rounds x {SAMPLES} samples per side, each the mean of {BATCH} calls)"
    );
    let (mut on50, mut off50, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let (mut on99, mut off99, mut on_mean, mut off_mean) = (0, 0, 0, 0);
    let mut span_counts = [0u64; 4];
    for round in 0..rounds {
        let (on, off) = if round % 2 == 0 {
            let on = run_child(true);
            (on, run_child(false))
        } else {
            let off = run_child(false);
            (run_child(true), off)
        };
        println!(
            "  round {round}: on p50 {} (spans: {} submitted, {} dropped, {} exported, {} failed), off p50 {}",
            fmt_duration(Duration::from_nanos(on[0])),
            on[3],
            on[4],
            on[5],
            on[6],
            fmt_duration(Duration::from_nanos(off[0]))
        );
        ratios.push(on[0] as f64 / off[0] as f64);
        on50.push(on[0]);
        off50.push(off[0]);
        on99 += on[1];
        off99 += off[1];
        on_mean += on[2];
        off_mean += off[2];
        for (sum, v) in span_counts.iter_mut().zip(&on[3..]) {
            *sum += v;
        }
    }
    let median = |v: &mut Vec<u64>| {
        v.sort_unstable();
        v[v.len() / 2]
    };
    ratios.sort_by(f64::total_cmp);
    let median_ratio = ratios[ratios.len() / 2];
    let n = rounds as u64;
    for (name, p50, p99, mean) in [
        ("tracing on", median(&mut on50), on99 / n, on_mean / n),
        ("tracing off", median(&mut off50), off99 / n, off_mean / n),
    ] {
        println!(
            "  {name:<32} p50 {:>9}  p99 {:>9}  mean {:>9}   (median of rounds; p99 and mean averaged)",
            fmt_duration(Duration::from_nanos(p50)),
            fmt_duration(Duration::from_nanos(p99)),
            fmt_duration(Duration::from_nanos(mean)),
        );
    }
    println!(
        "  per-round p50 ratios (sorted): {}",
        ratios
            .iter()
            .map(|r| format!("{r:.3}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "  spans with tracing on, all rounds: {} submitted, {} dropped (queue full), {} exported, {} failed",
        span_counts[0], span_counts[1], span_counts[2], span_counts[3]
    );
    report_line(
        "fast path p50, tracing on vs off (median round ratio)",
        &fmt_duration(Duration::from_nanos(median(&mut on50))),
        &fmt_duration(Duration::from_nanos(median(&mut off50))),
        median_ratio,
        "report",
        true,
    );
    println!("\nload average at end: {}", load_average());
}
