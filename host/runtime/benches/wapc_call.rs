//! waPC call benchmarks, each against its baseline in the same run:
//!
//! - echo of 128 B on a warm pooled instance of our runtime vs the same call through the
//!   published `wapc` host crate with its `wasmtime-provider` engine;
//! - a call in a fresh instance per call vs a call on a pooled instance.
//!
//! Run with `cargo bench -p nimbus-runtime --bench wapc_call`. After criterion's own
//! report it prints each figure, its baseline and the ratio.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, black_box};
use nimbus_runtime::{ActorOptions, Runtime, RuntimeConfig};
use wapc::WapcHost;

const PAYLOAD: usize = 128;

fn criterion_dir() -> PathBuf {
    nimbus_tests::repo_root().join("target/criterion")
}

fn main() {
    let bytes = nimbus_tests::signed_actor("echo");
    let payload = vec![0x5a_u8; PAYLOAD];

    let runtime = Runtime::new(RuntimeConfig {
        max_total_instances: 16,
        ..RuntimeConfig::default()
    })
    .unwrap();
    let actor = runtime.load_actor(&bytes, ActorOptions::default()).unwrap();
    let engine = wasmtime_provider::WasmtimeEngineProviderBuilder::new()
        .module_bytes(&bytes)
        .build()
        .unwrap();
    let published =
        WapcHost::new(Box::new(engine), Some(Box::new(|_, _, _, _, _| Ok(vec![])))).unwrap();
    // Calls are async; each iteration drives one to completion on a current-thread
    // runtime, as a host task awaiting it would.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    assert_eq!(rt.block_on(actor.call("Echo", &payload)).unwrap(), payload);
    assert_eq!(published.call("Echo", &payload).unwrap(), payload);

    let mut c = Criterion::default()
        .output_directory(&criterion_dir())
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();

    let mut group = c.benchmark_group("echo_128B");
    group.bench_function(BenchmarkId::new("nimbus", "pooled"), |b| {
        b.iter(|| {
            rt.block_on(actor.call("Echo", black_box(&payload)))
                .unwrap()
        })
    });
    group.bench_function(BenchmarkId::new("wapc", "wasmtime-provider"), |b| {
        b.iter(|| published.call("Echo", black_box(&payload)).unwrap())
    });
    group.finish();

    let mut group = c.benchmark_group("instantiation");
    group.bench_function("pooled", |b| {
        b.iter(|| {
            rt.block_on(actor.call("Echo", black_box(&payload)))
                .unwrap()
        })
    });
    group.bench_function("fresh_instance_per_call", |b| {
        b.iter(|| {
            rt.block_on(actor.call_in_fresh_instance("Echo", black_box(&payload)))
                .unwrap()
        })
    });
    group.finish();
    c.final_summary();

    println!();
    println!("== ratios (median times; lower is faster)");
    report(
        "echo_128B/nimbus/pooled",
        "echo_128B/wapc/wasmtime-provider",
        "nimbus pooled call vs published wapc host",
    );
    report(
        "instantiation/fresh_instance_per_call",
        "instantiation/pooled",
        "fresh instance per call vs pooled instance",
    );
}

fn median_ns(id: &str) -> Option<f64> {
    let path = criterion_dir().join(id).join("new/estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json["median"]["point_estimate"].as_f64()
}

fn report(ours: &str, baseline: &str, label: &str) {
    match (median_ns(ours), median_ns(baseline)) {
        (Some(a), Some(b)) => println!(
            "{label}: {} vs {} -> ratio {:.2}x",
            fmt_ns(a),
            fmt_ns(b),
            a / b
        ),
        _ => println!("{label}: no figures (was the benchmark filtered out?)"),
    }
}

fn fmt_ns(ns: f64) -> String {
    if ns >= 1_000_000.0 {
        format!("{:.2} ms", ns / 1_000_000.0)
    } else if ns >= 1_000.0 {
        format!("{:.2} µs", ns / 1_000.0)
    } else {
        format!("{ns:.0} ns")
    }
}
