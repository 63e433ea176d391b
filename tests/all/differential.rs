//! Differential test: the same actor through the published `wapc` host crate (with its
//! `wasmtime-provider` engine) and through our runtime gives the same results.

use std::sync::Arc;

use nimbus_runtime::{ActorOptions, HostCall, HostCallError, Runtime, RuntimeConfig};
use nimbus_tests::signed_actor;
use wapc::WapcHost;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The host side of `HostCall`, in the shape both hosts need.
fn answer(
    binding: &str,
    namespace: &str,
    operation: &str,
    payload: &[u8],
) -> Result<Vec<u8>, BoxError> {
    let mut out = format!("{binding}|{namespace}|{operation}|").into_bytes();
    out.extend_from_slice(payload);
    Ok(out)
}

fn published_host(bytes: &[u8]) -> WapcHost {
    let engine = wasmtime_provider::WasmtimeEngineProviderBuilder::new()
        .module_bytes(bytes)
        .build()
        .unwrap();
    WapcHost::new(
        Box::new(engine),
        Some(Box::new(|_id, binding, namespace, operation, payload| {
            answer(binding, namespace, operation, payload)
        })),
    )
    .unwrap()
}

fn our_actor(bytes: &[u8]) -> nimbus_runtime::Actor {
    let runtime = Runtime::new(RuntimeConfig {
        max_total_instances: 4,
        ..RuntimeConfig::default()
    })
    .unwrap();
    runtime
        .load_actor(
            bytes,
            ActorOptions {
                max_instances: 1,
                host_calls: Arc::new(|call: HostCall<'_>| -> Result<Vec<u8>, HostCallError> {
                    answer(call.binding, call.namespace, call.operation, call.payload)
                }),
                ..ActorOptions::default()
            },
        )
        .unwrap()
}

/// `echo-wasmbus` is left out: the published host links its imports only under `wapc`,
/// so it cannot load the newer generation at all (ours links both).
#[test]
fn echo_actor_behaves_the_same_on_both_hosts() {
    for fixture in ["echo", "wapc-echo"] {
        let bytes = signed_actor(fixture);
        let theirs = published_host(&bytes);
        let ours = our_actor(&bytes);
        let big: Vec<u8> = (0..1024 * 1024).map(|i| (i % 253) as u8).collect();
        let mut cases: Vec<(&str, Vec<u8>)> = vec![
            ("Echo", vec![]),
            ("Echo", vec![7]),
            ("Echo", big),
            ("HostCall", b"ping".to_vec()),
            ("NoSuchOperation", b"x".to_vec()),
        ];
        if fixture != "wapc-echo" {
            cases.extend([("Fail", vec![]), ("Count", vec![]), ("Count", vec![])]);
        }
        for (operation, payload) in cases {
            let expected = theirs.call(operation, &payload);
            let actual = ours.call_blocking(operation, &payload);
            match (&expected, &actual) {
                (Ok(e), Ok(a)) => assert_eq!(e, a, "{fixture} {operation}"),
                (Err(e), Err(a)) => {
                    // The published host wraps the guest's words; ours keeps them
                    // verbatim inside a typed error. The guest's words must match.
                    let theirs = e.to_string();
                    let guest_words = theirs.trim_start_matches("Guest call failure: ");
                    assert!(
                        a.to_string().contains(guest_words),
                        "{fixture} {operation}: ours `{a}` vs theirs `{theirs}`"
                    );
                }
                _ => panic!("{fixture} {operation}: ours {actual:?} vs theirs {expected:?}"),
            }
        }
    }
}
