//! `nimbus-actor`: the guest SDK for nimbus actors.
//!
//! An actor is a wasm module that speaks the guest side of the waPC ABI: it exports
//! `__guest_call` (provided by this crate) and imports the host functions `__guest_request`,
//! `__guest_response`, `__guest_error`, `__host_call`, `__host_response_len`,
//! `__host_response`, `__host_error_len`, `__host_error` and `__console_log` from the wasm
//! module `"wapc"`, or from `"wasmbus"` with the cargo feature `wasmbus`.
//!
//! An actor registers its operations from an exported `wapc_init`, which the host calls once
//! after instantiation:
//!
//! ```no_run
//! use nimbus_actor::{HandlerResult, register_function};
//!
//! #[allow(unsafe_code)] // exporting an unmangled symbol is an unsafe attribute
//! #[unsafe(no_mangle)]
//! pub extern "C" fn wapc_init() {
//!     register_function("Echo", echo);
//! }
//!
//! fn echo(payload: &[u8]) -> HandlerResult<Vec<u8>> {
//!     Ok(payload.to_vec())
//! }
//! ```
//!
//! A handler's `Err` is reported to the host through `__guest_error` (its `Display` text) and
//! the call returns 0; an operation with no handler reports `unknown operation: <op>`.
//!
//! On targets other than wasm32 the crate still compiles (so actor logic can be unit-tested
//! natively): `__guest_call` is not exported, [`console_log`] writes to stderr, and
//! [`host_call`] fails unless a test installed a scripted host with `testing::set_host`;
//! `testing::guest_call` runs registered handlers as the host would.
//!
//! Code that calls the host is best written over the [`HostCall`] trait (what the generated
//! interface senders take): the actor passes [`WapcHost`], the real host, and a native test
//! passes its own fake, without the thread-global scripted host.

mod abi;
mod host;
mod registry;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

use std::fmt;

pub use host::{HostCall, WapcHost};

/// The result of an operation handler or a host call. The error's `Display` text is what the
/// host sees.
pub type HandlerResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// An operation handler: takes the request payload, returns the response payload.
pub type HandlerFn = fn(&[u8]) -> HandlerResult<Vec<u8>>;

/// The wasm import module the host functions are taken from: `"wapc"`, or `"wasmbus"` with
/// the cargo feature `wasmbus`.
pub const IMPORT_MODULE: &str = if cfg!(feature = "wasmbus") {
    "wasmbus"
} else {
    "wapc"
};

/// Registers the handler for the operation `op` (case sensitive). A later registration for
/// the same name replaces the earlier one.
pub fn register_function(op: &str, f: HandlerFn) {
    registry::register(op, f);
}

/// Calls the host: `binding` is the link name (empty means `default`), `namespace` the
/// contract id or actor key, `operation` the operation name.
///
/// Returns the host's response, or a [`HostError`] carrying the host's error text when
/// `__host_call` returns anything other than 1. Code that should also run against a fake
/// host in tests takes a [`HostCall`] instead and is given [`WapcHost`] in the actor.
pub fn host_call(
    binding: &str,
    namespace: &str,
    operation: &str,
    payload: &[u8],
) -> HandlerResult<Vec<u8>> {
    Ok(abi::host_call(
        &abi::platform(),
        binding,
        namespace,
        operation,
        payload,
    )?)
}

/// Writes a line to the host's log (`__console_log`).
pub fn console_log(msg: &str) {
    abi::Abi::console_log(&abi::platform(), msg);
}

/// A failed host call. Its `Display` text is the host's error text, unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostError {
    message: String,
}

impl HostError {
    /// A failed host call with the host's error text `message` (what a [`HostCall`] test
    /// double returns for a call the real host would refuse).
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }

    /// The host's error text.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for HostError {}

/// The waPC entry point, exported to the host: runs the operation whose name and payload are
/// `op_len` and `req_len` bytes long. Returns 1 on success (after `__guest_response`) and 0
/// on failure (after `__guest_error`).
#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
// SAFETY: `__guest_call` is the one symbol the waPC ABI requires; no other item in the
// program may define it.
#[unsafe(no_mangle)]
pub extern "C" fn __guest_call(op_len: i32, req_len: i32) -> i32 {
    abi::guest_call(&abi::platform(), op_len, req_len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_module_matches_feature() {
        if cfg!(feature = "wasmbus") {
            assert_eq!(IMPORT_MODULE, "wasmbus");
        } else {
            assert_eq!(IMPORT_MODULE, "wapc");
        }
    }

    #[test]
    fn host_error_displays_text_verbatim() {
        let e = HostError::new("no link for contract X");
        assert_eq!(e.to_string(), "no link for contract X");
        assert_eq!(e.message(), "no link for contract X");
    }
}
