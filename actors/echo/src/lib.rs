//! The `echo` test actor (wasm32-unknown-unknown), built on the `nimbus-actor` SDK.
//!
//! Operations:
//! - `Echo`: returns the payload unchanged (any size, including empty).
//! - `HostCall`: calls `host_call("default", "nimbus:test", "Echo", payload)` and returns the
//!   response; a host failure becomes `host call failed: <text>`.
//! - `Fail`: fails with `deliberate failure`.
//! - `Trap`: executes the wasm `unreachable` instruction.
//! - `Loop`: spins forever (to test execution deadlines).
//! - `Grow`: allocates and touches 1 MiB chunks, leaking them, until allocation fails; then
//!   fails with `allocation failed after <n> MiB (linear memory <m> MiB)` (to test memory
//!   limits). A decimal payload `N` stops after N chunks instead and returns
//!   `allocated N MiB (linear memory <m> MiB)`.
//! - `Count`: increments a per-instance counter and returns it as decimal ASCII.
//! - `Log`: writes the payload (UTF-8, lossily) to the host log and returns nothing.
//! - `Forward`: the payload is `binding\nnamespace\noperation\n` followed by the body;
//!   calls `host_call(binding, namespace, operation, body)` and returns the response (a
//!   host failure becomes `host call failed: <text>`). Lets tests call any actor (by key
//!   or alias) or provider from inside an actor.

use std::sync::atomic::{AtomicU64, Ordering};

use nimbus_actor::{HandlerResult, console_log, host_call, register_function};

/// Registers the operations; called once by the host after instantiation.
#[allow(unsafe_code)]
// SAFETY: `wapc_init` is the waPC init export; nothing else in the module defines it.
#[unsafe(no_mangle)]
pub extern "C" fn wapc_init() {
    register_function("Echo", echo);
    register_function("HostCall", host_call_echo);
    register_function("Fail", fail);
    register_function("Trap", trap);
    register_function("Loop", spin);
    register_function("Grow", grow);
    register_function("Count", count);
    register_function("Log", log);
    register_function("Forward", forward);
}

fn echo(payload: &[u8]) -> HandlerResult<Vec<u8>> {
    Ok(payload.to_vec())
}

fn host_call_echo(payload: &[u8]) -> HandlerResult<Vec<u8>> {
    host_call("default", "nimbus:test", "Echo", payload)
        .map_err(|e| format!("host call failed: {e}").into())
}

fn fail(_: &[u8]) -> HandlerResult<Vec<u8>> {
    Err("deliberate failure".into())
}

fn trap(_: &[u8]) -> HandlerResult<Vec<u8>> {
    #[cfg(target_arch = "wasm32")]
    core::arch::wasm32::unreachable();
    #[cfg(not(target_arch = "wasm32"))]
    std::process::abort();
}

fn spin(_: &[u8]) -> HandlerResult<Vec<u8>> {
    let mut n: u64 = 0;
    loop {
        // black_box hides the counter from the optimiser, so the loop cannot be removed.
        n = core::hint::black_box(n.wrapping_add(1));
    }
}

const CHUNK: usize = 1 << 20;

fn grow(payload: &[u8]) -> HandlerResult<Vec<u8>> {
    // An optional decimal payload caps the number of chunks (handy for tests); empty means
    // "until allocation fails".
    let limit: Option<u64> = if payload.is_empty() {
        None
    } else {
        Some(std::str::from_utf8(payload)?.trim().parse()?)
    };
    let mut mib: u64 = 0;
    while limit.is_none_or(|limit| mib < limit) {
        let mut chunk = Vec::new();
        if chunk.try_reserve_exact(CHUNK).is_err() {
            return Err(format!(
                "allocation failed after {mib} MiB (linear memory {} MiB)",
                memory_mib()
            )
            .into());
        }
        // Touch every byte so the memory is really used, then leak the chunk; black_box
        // keeps the optimiser from eliding the allocation.
        chunk.resize(CHUNK, 0xA5);
        core::hint::black_box(Box::leak(chunk.into_boxed_slice()));
        mib += 1;
    }
    Ok(format!("allocated {mib} MiB (linear memory {} MiB)", memory_mib()).into_bytes())
}

/// The size of linear memory in MiB (0 off wasm).
fn memory_mib() -> usize {
    #[cfg(target_arch = "wasm32")]
    {
        core::arch::wasm32::memory_size(0) * 64 / 1024
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        0
    }
}

fn forward(payload: &[u8]) -> HandlerResult<Vec<u8>> {
    let mut parts = payload.splitn(4, |b| *b == b'\n');
    let mut field = || -> HandlerResult<&str> {
        let bytes = parts
            .next()
            .ok_or("Forward needs binding, namespace and operation lines")?;
        Ok(std::str::from_utf8(bytes)?)
    };
    let (binding, namespace, operation) = (field()?, field()?, field()?);
    let body = parts.next().unwrap_or_default();
    host_call(binding, namespace, operation, body)
        .map_err(|e| format!("host call failed: {e}").into())
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn count(_: &[u8]) -> HandlerResult<Vec<u8>> {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed) + 1;
    Ok(n.to_string().into_bytes())
}

fn log(payload: &[u8]) -> HandlerResult<Vec<u8>> {
    console_log(&String::from_utf8_lossy(payload));
    Ok(Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_returns_payload() {
        assert_eq!(echo(b"").unwrap(), b"");
        let big = vec![7u8; 1 << 20];
        assert_eq!(echo(&big).unwrap(), big);
    }

    #[test]
    fn fail_fails() {
        assert_eq!(fail(b"").unwrap_err().to_string(), "deliberate failure");
    }

    #[test]
    fn count_increments() {
        let a: u64 = String::from_utf8(count(b"").unwrap())
            .unwrap()
            .parse()
            .unwrap();
        let b: u64 = String::from_utf8(count(b"").unwrap())
            .unwrap()
            .parse()
            .unwrap();
        assert!(b > a);
    }

    #[test]
    fn forward_needs_a_header() {
        let err = forward(b"only-binding").unwrap_err().to_string();
        assert!(err.contains("binding, namespace and operation"), "{err}");
    }

    #[test]
    fn host_call_without_host_is_wrapped() {
        let err = host_call_echo(b"x").unwrap_err().to_string();
        assert!(err.starts_with("host call failed: "), "{err}");
    }
}
