//! Actor start and actor memory, each against bare wasmtime in the same run
//! (ARCHITECTURE.md performance targets):
//!
//! - **start → first response, compiled cache warm**: a fresh runtime that finds the
//!   compiled module in its disk cache loads a signed actor (claims check, hash, cache
//!   read, instance with `wapc_init`) and answers one call; baseline: read the same kind
//!   of serialized module from disk, `Module::deserialize` and instantiate it on a bare
//!   engine. Each sample is a different signed copy of the echo actor, so no in-memory
//!   cache helps either side. Target ≤ 2x.
//! - **memory per loaded actor**: 1,000 copies of the echo actor loaded into one runtime
//!   (shared compiled code, one warm instance each, `wapc_init` run) vs bare wasmtime
//!   holding the module and one instance per actor in its own store, `wapc_init` run.
//!   Resident-set growth per actor, each side measured in its own child process.
//!   Target ≤ 1.5x.
//!
//! Run with `cargo bench -p nimbus-runtime --bench actor_start`. `NIMBUS_BENCH_ACTORS`
//! sets the actor count (default 1,000), `NIMBUS_BENCH_STARTS` the start samples (20).

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::time::{Duration, Instant};

use nimbus_runtime::{ActorOptions, Runtime, RuntimeConfig};
use nimbus_tests::{Signer, actor_wasm};
use wasmtime::{Engine, Linker, Module, Store};

/// The child-process role for the memory measurement.
const CHILD_ENV: &str = "NIMBUS_BENCH_MEMORY_CHILD";

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    // Criterion-style arguments (`--bench`) are ignored; this bench has its own loop.
    if let Ok(role) = std::env::var(CHILD_ENV) {
        let actors = env_or("NIMBUS_BENCH_ACTORS", 1_000);
        let grown = match role.as_str() {
            "nimbus" => nimbus_memory(actors),
            _ => bare_memory(actors),
        };
        println!("rss-growth {grown}");
        return;
    }
    let samples = env_or("NIMBUS_BENCH_STARTS", 20);
    println!("== actor start -> first response, compiled cache warm ({samples} samples)");
    let (ours, bare) = start_times(samples);
    let (ours, bare) = (median(ours), median(bare));
    println!(
        "start to first response vs deserialize + instantiate: {:.2} ms vs {:.2} ms -> ratio {:.2}x (target <= 2x)",
        ms(ours),
        ms(bare),
        ms(ours) / ms(bare)
    );

    let actors = env_or("NIMBUS_BENCH_ACTORS", 1_000);
    println!("== memory per loaded actor ({actors} actors, one child process per side)");
    let ours = child_rss_growth("nimbus", actors);
    let bare = child_rss_growth("bare", actors);
    let (ours_kib, bare_kib) = (
        ours as f64 / actors as f64 / 1024.0,
        bare as f64 / actors as f64 / 1024.0,
    );
    println!(
        "memory per actor vs bare wasmtime module + instance: {ours_kib:.1} KiB vs {bare_kib:.1} KiB -> ratio {:.2}x (target <= 1.5x)",
        ours_kib / bare_kib
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1_000.0
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Times `samples` starts on each side, alternating, after warming both disk caches.
fn start_times(samples: usize) -> (Vec<Duration>, Vec<Duration>) {
    let echo = actor_wasm("echo");
    let copies: Vec<Vec<u8>> = (0..samples)
        .map(|_| Signer::new().sign(&echo, &[]))
        .collect();
    let cache = tempfile::tempdir().unwrap();
    let config = RuntimeConfig {
        cache_dir: Some(cache.path().to_path_buf()),
        max_total_instances: 64,
        ..RuntimeConfig::default()
    };
    // Fill our disk cache: compile every copy once in a runtime that is then dropped.
    {
        let warm = Runtime::new(config.clone()).unwrap();
        for bytes in &copies {
            warm.load_actor(bytes, ActorOptions::default()).unwrap();
        }
    }
    // The baseline's cache: the same copies compiled and serialized by a bare engine.
    let engine = Engine::default();
    let bare_dir = tempfile::tempdir().unwrap();
    let bare_files: Vec<_> = copies
        .iter()
        .enumerate()
        .map(|(i, bytes)| {
            let path = bare_dir.path().join(format!("{i}.cwasm"));
            let module = Module::new(&engine, bytes).unwrap();
            std::fs::write(&path, module.serialize().unwrap()).unwrap();
            path
        })
        .collect();

    // A fresh runtime: empty in-memory cache, warm disk cache.
    let runtime = Runtime::new(config).unwrap();
    let mut ours = Vec::with_capacity(samples);
    let mut bare = Vec::with_capacity(samples);
    let mut actors = Vec::with_capacity(samples);
    let mut held = Vec::with_capacity(samples);
    for (bytes, path) in copies.iter().zip(&bare_files) {
        let started = Instant::now();
        let actor = runtime.load_actor(bytes, ActorOptions::default()).unwrap();
        let reply = actor.call_blocking("Echo", b"ping").unwrap();
        ours.push(started.elapsed());
        assert_eq!(reply, b"ping");
        actors.push(actor);

        let started = Instant::now();
        let serialized = std::fs::read(path).unwrap();
        // SAFETY: the file was written by `Module::serialize` of this engine just above.
        #[allow(unsafe_code)]
        let module = unsafe { Module::deserialize(&engine, &serialized) }.unwrap();
        let mut linker = Linker::new(&engine);
        linker.define_unknown_imports_as_traps(&module).unwrap();
        let mut store = Store::new(&engine, ());
        let instance = linker.instantiate(&mut store, &module).unwrap();
        bare.push(started.elapsed());
        held.push((store, instance));
    }
    (ours, bare)
}

/// Runs this bench binary as a child measuring one side; returns its RSS growth.
fn child_rss_growth(role: &str, actors: usize) -> u64 {
    let out = Command::new(std::env::current_exe().unwrap())
        .env(CHILD_ENV, role)
        .env("NIMBUS_BENCH_ACTORS", actors.to_string())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{role} child failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .find_map(|l| l.strip_prefix("rss-growth "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("{role} child printed no figure: {text}"))
}

/// Resident set size of this process, from `/proc/self/statm`.
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

fn nimbus_memory(actors: usize) -> u64 {
    let bytes = Signer::new().sign(&actor_wasm("echo"), &[]);
    let runtime = Runtime::new(RuntimeConfig {
        max_total_instances: u32::try_from(actors + 16).unwrap(),
        ..RuntimeConfig::default()
    })
    .unwrap();
    // The first actor compiles the module; count from the second on.
    let first = runtime.load_actor(&bytes, ActorOptions::default()).unwrap();
    first.call_blocking("Echo", b"x").unwrap();
    let before = rss_bytes();
    let loaded: Vec<_> = (0..actors)
        .map(|_| runtime.load_actor(&bytes, ActorOptions::default()).unwrap())
        .collect();
    let grown = rss_bytes().saturating_sub(before);
    drop(loaded);
    grown
}

fn bare_memory(actors: usize) -> u64 {
    let bytes = Signer::new().sign(&actor_wasm("echo"), &[]);
    let engine = Engine::default();
    let module = Module::new(&engine, &bytes).unwrap();
    let mut linker = Linker::new(&engine);
    linker.define_unknown_imports_as_traps(&module).unwrap();
    let before = rss_bytes();
    let held: Vec<_> = (0..actors)
        .map(|_| {
            let mut store = Store::new(&engine, ());
            let instance = linker.instantiate(&mut store, &module).unwrap();
            // What makes a waPC actor ready, as our runtime does on load: its init hook.
            let init = instance
                .get_typed_func::<(), ()>(&mut store, "wapc_init")
                .unwrap();
            init.call(&mut store, ()).unwrap();
            (store, instance)
        })
        .collect();
    let grown = rss_bytes().saturating_sub(before);
    drop(held);
    grown
}
