//! The `wapc-echo` test actor, built with the published `wapc-guest` 0.4 crate (the guest
//! crate the WIDL-era wasmCloud interface crates use), as a compatibility fixture.
//!
//! Operations:
//! - `Echo`: returns the payload unchanged.
//! - `HostCall`: calls `host_call("default", "nimbus:test", "Echo", payload)` and returns the
//!   response; a host failure becomes `host call failed: <error>` (wapc-guest displays the
//!   host's text as `Host error: <text>`).

use wapc_guest::{CallResult, host_call, register_function};

/// Registers the operations; called once by the host after instantiation.
#[allow(unsafe_code)]
// SAFETY: `wapc_init` is the waPC init export; nothing else in the module defines it.
#[unsafe(no_mangle)]
pub extern "C" fn wapc_init() {
    register_function("Echo", echo);
    register_function("HostCall", host_call_echo);
}

fn echo(payload: &[u8]) -> CallResult {
    Ok(payload.to_vec())
}

fn host_call_echo(payload: &[u8]) -> CallResult {
    host_call("default", "nimbus:test", "Echo", payload)
        .map_err(|e| format!("host call failed: {e}").into())
}
