//! The waPC runtime driven directly, with real actors built from `actors/`.

use std::sync::Arc;
use std::time::Duration;

use nimbus_runtime::{
    ActorOptions, CallError, HostCall, HostCallError, LoadError, Runtime, RuntimeConfig,
};
use nimbus_tests::{Signer, actor_wasm, signed_actor};

fn runtime() -> Runtime {
    Runtime::new(RuntimeConfig {
        max_total_instances: 16,
        max_memory_bytes: 32 * 1024 * 1024,
        ..RuntimeConfig::default()
    })
    .unwrap()
}

fn load(name: &str, options: ActorOptions) -> nimbus_runtime::Actor {
    runtime().load_actor(&signed_actor(name), options).unwrap()
}

/// One instance with a call deadline of `timeout`: what the deadline tests need.
fn one_instance(timeout: Duration) -> ActorOptions {
    ActorOptions {
        max_instances: 1,
        call_timeout: Some(timeout),
        ..ActorOptions::default()
    }
}

fn echo_host(call: HostCall<'_>) -> Result<Vec<u8>, HostCallError> {
    if call.operation == "Fail" {
        return Err("provider said no".into());
    }
    let mut out = format!("{}|{}|{}|", call.binding, call.namespace, call.operation).into_bytes();
    out.extend_from_slice(call.payload);
    Ok(out)
}

#[test]
fn echo_returns_payloads_of_every_size() {
    let actor = load("echo", ActorOptions::default());
    for size in [0usize, 1, 1024 * 1024] {
        let payload: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        let response = actor.call_blocking("Echo", &payload).unwrap();
        assert_eq!(response.len(), size);
        assert_eq!(response, payload, "echo of {size} bytes");
    }
}

#[test]
fn actor_id_is_the_module_key_from_the_claims() {
    let signer = Signer::new();
    let bytes = signer.sign(&actor_wasm("echo"), &["wasmcloud:keyvalue"]);
    let actor = runtime()
        .load_actor(&bytes, ActorOptions::default())
        .unwrap();
    assert_eq!(actor.id(), signer.module.public_key());
    let claims = actor.claims().unwrap();
    assert_eq!(claims.claims.iss, signer.account.public_key());
}

#[test]
fn host_call_round_trip() {
    let actor = load(
        "echo",
        ActorOptions {
            host_calls: Arc::new(echo_host),
            ..ActorOptions::default()
        },
    );
    let response = actor.call_blocking("HostCall", b"ping").unwrap();
    assert_eq!(response, b"default|nimbus:test|Echo|ping");
}

#[test]
fn host_call_error_reaches_the_guest() {
    let actor = load(
        "echo",
        ActorOptions {
            host_calls: Arc::new(|_: HostCall<'_>| -> Result<Vec<u8>, HostCallError> {
                Err("no link for contract nimbus:test".into())
            }),
            ..ActorOptions::default()
        },
    );
    match actor.call_blocking("HostCall", b"ping") {
        Err(CallError::Guest { message, .. }) => {
            assert!(
                message.contains("no link for contract nimbus:test"),
                "{message}"
            )
        }
        other => panic!("expected a guest error, got {other:?}"),
    }
}

#[test]
fn host_calls_without_a_router_fail_cleanly() {
    let actor = load("echo", ActorOptions::default());
    let error = actor.call_blocking("HostCall", b"x").unwrap_err();
    assert!(
        error
            .to_string()
            .contains("no link for contract nimbus:test"),
        "{error}"
    );
}

#[test]
fn unknown_operation_is_reported_as_such() {
    let actor = load("echo", ActorOptions::default());
    match actor.call_blocking("NoSuchThing", b"") {
        Err(CallError::UnknownOperation { operation, .. }) => assert_eq!(operation, "NoSuchThing"),
        other => panic!("expected unknown operation, got {other:?}"),
    }
    // The instance is still good.
    assert_eq!(actor.call_blocking("Echo", b"ok").unwrap(), b"ok");
}

#[test]
fn guest_error_is_not_a_trap() {
    let actor = load("echo", ActorOptions::default());
    match actor.call_blocking("Fail", b"") {
        Err(CallError::Guest { message, .. }) => assert!(message.contains("deliberate failure")),
        other => panic!("expected a guest error, got {other:?}"),
    }
}

#[test]
fn trapped_instance_is_discarded_and_the_next_call_works() {
    let actor = load(
        "echo",
        ActorOptions {
            max_instances: 1,
            ..ActorOptions::default()
        },
    );
    assert_eq!(actor.call_blocking("Count", b"").unwrap(), b"1");
    assert_eq!(actor.call_blocking("Count", b"").unwrap(), b"2");
    match actor.call_blocking("Trap", b"") {
        Err(CallError::Trapped { message, .. }) => {
            assert!(message.contains("unreachable"), "{message}")
        }
        other => panic!("expected a trap, got {other:?}"),
    }
    assert_eq!(
        actor.live_instances(),
        0,
        "the trapped instance must be dropped"
    );
    // A fresh instance: its counter starts again.
    assert_eq!(actor.call_blocking("Count", b"").unwrap(), b"1");
}

#[test]
fn endless_loop_is_stopped_at_the_deadline() {
    let actor = load("echo", one_instance(Duration::from_millis(200)));
    match actor.call_blocking("Loop", b"") {
        Err(error @ CallError::DeadlineExceeded { .. }) => {
            assert!(
                error.to_string().contains("did not finish Loop within"),
                "{error}"
            )
        }
        other => panic!("expected a deadline error, got {other:?}"),
    }
    assert_eq!(actor.call_blocking("Echo", b"alive").unwrap(), b"alive");
}

/// A looping guest yields to the executor at every epoch tick, so on a single-threaded
/// runtime another actor's call still completes long before the loop's deadline.
#[tokio::test(flavor = "current_thread")]
async fn endless_loop_does_not_starve_other_calls_on_its_thread() {
    let runtime = runtime();
    let looping = runtime
        .load_actor(&signed_actor("echo"), one_instance(Duration::from_secs(3)))
        .unwrap();
    let other = runtime
        .load_actor(&signed_actor("echo"), one_instance(Duration::from_secs(3)))
        .unwrap();
    let looping = tokio::spawn(async move { looping.call("Loop", b"").await });
    // Let the loop start running first.
    tokio::task::yield_now().await;
    assert_eq!(
        other.call("Echo", b"meanwhile").await.unwrap(),
        b"meanwhile"
    );
    assert!(
        !looping.is_finished(),
        "the other call was served only after the loop was stopped"
    );
    assert!(matches!(
        looping.await.unwrap(),
        Err(CallError::DeadlineExceeded { .. })
    ));
}

/// A caller that gives up (its future is dropped while the guest runs) takes the
/// instance with it: it is discarded, not returned half-way through a call.
#[tokio::test(flavor = "current_thread")]
async fn a_call_cancelled_midway_discards_its_instance() {
    let actor = load("echo", one_instance(Duration::from_secs(5)));
    assert_eq!(actor.live_instances(), 1);
    let gave_up = tokio::time::timeout(Duration::from_millis(100), actor.call("Loop", b"")).await;
    assert!(gave_up.is_err(), "the loop answered: {gave_up:?}");
    assert_eq!(actor.live_instances(), 0);
    assert_eq!(actor.call("Echo", b"after").await.unwrap(), b"after");
    assert_eq!(actor.live_instances(), 1);
}

#[test]
fn memory_growth_past_the_limit_is_stopped() {
    let actor = load("echo", ActorOptions::default());
    match actor.call_blocking("Grow", b"") {
        Err(CallError::MemoryLimit { limit_bytes, .. }) => {
            assert_eq!(limit_bytes, 32 * 1024 * 1024)
        }
        other => panic!("expected a memory limit error, got {other:?}"),
    }
    assert_eq!(actor.call_blocking("Echo", b"alive").unwrap(), b"alive");
}

#[test]
fn concurrent_calls_share_the_pool() {
    let actor = load(
        "echo",
        ActorOptions {
            max_instances: 2,
            ..ActorOptions::default()
        },
    );
    std::thread::scope(|scope| {
        for t in 0..4 {
            let actor = actor.clone();
            scope.spawn(move || {
                for i in 0..50 {
                    let payload = format!("{t}-{i}");
                    assert_eq!(
                        actor.call_blocking("Echo", payload.as_bytes()).unwrap(),
                        payload.as_bytes()
                    );
                }
            });
        }
    });
    assert!(actor.live_instances() <= 2);
}

#[test]
fn console_log_does_not_disturb_the_call() {
    let actor = load("echo", ActorOptions::default());
    assert_eq!(
        actor.call_blocking("Log", b"hello from the guest").unwrap(),
        b""
    );
}

#[test]
fn not_wasm_is_refused() {
    let error = runtime()
        .load_actor(b"#!/bin/sh\necho hi\n", ActorOptions::default())
        .unwrap_err();
    assert!(matches!(error, LoadError::NotWasm), "{error}");
    assert!(error.to_string().contains("not a WebAssembly module"));
}

#[test]
fn module_without_wapc_exports_is_refused() {
    let bytes =
        wat::parse_str(r#"(module (memory (export "memory") 1) (func (export "run")))"#).unwrap();
    let error = runtime()
        .load_actor(
            &bytes,
            ActorOptions {
                allow_unsigned: true,
                ..ActorOptions::default()
            },
        )
        .unwrap_err();
    assert!(
        matches!(error, LoadError::MissingExport("__guest_call")),
        "{error}"
    );
    assert!(error.to_string().contains("not a waPC actor"));
}

#[test]
fn module_with_foreign_imports_is_refused() {
    let bytes = wat::parse_str(
        r#"(module
            (import "env" "launch_missiles" (func))
            (memory (export "memory") 1)
            (func (export "__guest_call") (param i32 i32) (result i32) i32.const 1))"#,
    )
    .unwrap();
    let error = runtime()
        .load_actor(
            &bytes,
            ActorOptions {
                allow_unsigned: true,
                ..ActorOptions::default()
            },
        )
        .unwrap_err();
    assert!(
        error.to_string().contains("env::launch_missiles"),
        "{error}"
    );
}

#[test]
fn unsigned_actor_is_refused_unless_allowed() {
    let bytes = actor_wasm("echo");
    let error = runtime()
        .load_actor(&bytes, ActorOptions::default())
        .unwrap_err();
    assert!(matches!(error, LoadError::Claims(_)), "{error}");
    let actor = runtime()
        .load_actor(
            &bytes,
            ActorOptions {
                allow_unsigned: true,
                ..ActorOptions::default()
            },
        )
        .unwrap();
    assert!(actor.id().starts_with("unsigned-"));
    assert_eq!(actor.call_blocking("Echo", b"x").unwrap(), b"x");
}

#[test]
fn tampered_actor_is_refused() {
    let mut bytes = signed_actor("echo");
    // Flip a byte in the code: the last byte before the claims section is part of the
    // module proper, so find a byte in the middle of the file instead.
    let middle = bytes.len() / 3;
    bytes[middle] ^= 0x01;
    let error = runtime()
        .load_actor(&bytes, ActorOptions::default())
        .unwrap_err();
    assert!(matches!(error, LoadError::Claims(_)), "{error}");
}

#[test]
fn wasmbus_generation_imports_work() {
    let actor = load(
        "echo-wasmbus",
        ActorOptions {
            host_calls: Arc::new(echo_host),
            ..ActorOptions::default()
        },
    );
    assert_eq!(actor.call_blocking("Echo", b"abc").unwrap(), b"abc");
    assert_eq!(
        actor.call_blocking("HostCall", b"x").unwrap(),
        b"default|nimbus:test|Echo|x"
    );
}

#[test]
fn actor_built_with_published_wapc_guest_runs() {
    let actor = load(
        "wapc-echo",
        ActorOptions {
            host_calls: Arc::new(echo_host),
            ..ActorOptions::default()
        },
    );
    assert_eq!(actor.call_blocking("Echo", b"abc").unwrap(), b"abc");
    assert_eq!(
        actor.call_blocking("HostCall", b"x").unwrap(),
        b"default|nimbus:test|Echo|x"
    );
    assert!(matches!(
        actor.call_blocking("Nope", b""),
        Err(CallError::UnknownOperation { .. })
    ));
}

#[test]
fn wasi_actor_gets_its_own_directory_and_logs_its_output() {
    let dir = tempfile::tempdir().unwrap();
    let actor = load(
        "wasi-echo",
        ActorOptions {
            wasi_dir: Some(dir.path().to_path_buf()),
            ..ActorOptions::default()
        },
    );
    assert!(actor.uses_wasi());
    assert_eq!(actor.call_blocking("Echo", b"w").unwrap(), b"w");
    assert_eq!(actor.call_blocking("Print", b"to the log").unwrap(), b"");
    actor.call_blocking("WriteFile", b"kept on disk").unwrap();
    assert_eq!(
        std::fs::read(dir.path().join("data.txt")).unwrap(),
        b"kept on disk"
    );
    assert_eq!(
        actor.call_blocking("ReadFile", b"").unwrap(),
        b"kept on disk"
    );
}

#[test]
fn wasi_actor_without_a_directory_sees_no_files() {
    let actor = load("wasi-echo", ActorOptions::default());
    assert!(matches!(
        actor.call_blocking("WriteFile", b"nowhere"),
        Err(CallError::Guest { .. })
    ));
    assert_eq!(
        actor.call_blocking("Echo", b"still fine").unwrap(),
        b"still fine"
    );
}

#[test]
fn compiled_modules_are_cached_on_disk() {
    let cache = tempfile::tempdir().unwrap();
    let config = RuntimeConfig {
        cache_dir: Some(cache.path().join("modules")),
        max_total_instances: 4,
        ..RuntimeConfig::default()
    };
    let bytes = signed_actor("echo");
    let first = Runtime::new(config.clone()).unwrap();
    first.load_actor(&bytes, ActorOptions::default()).unwrap();
    let entries: Vec<_> = std::fs::read_dir(cache.path().join("modules"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].extension().unwrap(), "cwasm");

    // A second runtime (a restarted host) loads from the cache.
    let second = Runtime::new(config.clone()).unwrap();
    let actor = second.load_actor(&bytes, ActorOptions::default()).unwrap();
    assert_eq!(actor.call_blocking("Echo", b"cached").unwrap(), b"cached");

    // A corrupt cache entry is ignored and replaced.
    std::fs::write(&entries[0], b"garbage").unwrap();
    let third = Runtime::new(config).unwrap();
    let actor = third.load_actor(&bytes, ActorOptions::default()).unwrap();
    assert_eq!(
        actor.call_blocking("Echo", b"recompiled").unwrap(),
        b"recompiled"
    );
}

/// A writer that collects log output in memory, to check what reached the host's log.
#[derive(Clone, Default)]
struct LogBuffer(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn actor_output_goes_to_the_host_log() {
    let logs = LogBuffer::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let wasi = load("wasi-echo", ActorOptions::default());
    let echo = load("echo", ActorOptions::default());
    tracing::subscriber::with_default(subscriber, || {
        wasi.call_blocking("Print", b"line for stdout").unwrap();
        echo.call_blocking("Log", b"line for console_log").unwrap();
    });
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("line for stdout"), "{text}");
    assert!(text.contains("stderr: line for stdout"), "{text}");
    assert!(text.contains("line for console_log"), "{text}");
    assert!(
        text.contains(wasi.id()),
        "log lines carry the actor id: {text}"
    );
}
