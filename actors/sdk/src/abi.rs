//! The guest side of the waPC protocol, written against the [`Abi`] trait so that the
//! sequence of host calls can be unit-tested on the host target with a mock.
//!
//! On wasm32 [`platform()`] is [`ffi::Wasm`], the real imports. On other targets it is a stub
//! that has no host: host calls fail and log lines go to stderr.

use crate::{HostError, registry};

/// The waPC host functions as seen by the guest, with slices in place of pointer/length pairs.
///
/// Return values are the raw `i32`s the host gives; the protocol code validates them.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))] // see `guest_call`
pub(crate) trait Abi {
    /// `__guest_request`: the host fills `op` and `payload` (sized by `__guest_call`'s args).
    fn guest_request(&self, op: &mut [u8], payload: &mut [u8]);
    /// `__guest_response`: hands the response to the host.
    fn guest_response(&self, data: &[u8]);
    /// `__guest_error`: hands the error text to the host.
    fn guest_error(&self, msg: &str);
    /// `__host_call`: 1 on success, anything else on failure.
    fn host_call(&self, binding: &str, namespace: &str, operation: &str, payload: &[u8]) -> i32;
    /// `__host_response_len`.
    fn host_response_len(&self) -> i32;
    /// `__host_response`: copies the stored response, whose length `buf` must have.
    fn host_response(&self, buf: &mut [u8]);
    /// `__host_error_len`.
    fn host_error_len(&self) -> i32;
    /// `__host_error`: copies the stored error text, whose length `buf` must have.
    fn host_error(&self, buf: &mut [u8]);
    /// `__console_log`.
    fn console_log(&self, msg: &str);
}

/// A zeroed buffer of `len` bytes, or `None` if the allocation fails (instead of aborting, so
/// the guest can still report the failure).
fn try_buffer(len: usize) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    buf.try_reserve_exact(len).ok()?;
    buf.resize(len, 0);
    Some(buf)
}

/// Body of the `__guest_call` export: fetch the request, dispatch, report the outcome.
///
/// Returns 1 after `__guest_response`, or 0 after `__guest_error`.
// The guest-call path runs only from the wasm32 `__guest_call` export (and unit tests).
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
pub(crate) fn guest_call(abi: &impl Abi, op_len: i32, req_len: i32) -> i32 {
    let outcome = fetch_request(abi, op_len, req_len)
        .and_then(|(op, payload)| registry::dispatch(&op, &payload));
    match outcome {
        Ok(response) => {
            abi.guest_response(&response);
            1
        }
        Err(msg) => {
            abi.guest_error(&msg);
            0
        }
    }
}

/// Allocates the operation and payload buffers and has the host fill them.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
fn fetch_request(abi: &impl Abi, op_len: i32, req_len: i32) -> Result<(Vec<u8>, Vec<u8>), String> {
    let (Ok(op_len), Ok(req_len)) = (usize::try_from(op_len), usize::try_from(req_len)) else {
        return Err(format!(
            "invalid guest call lengths: operation {op_len}, payload {req_len}"
        ));
    };
    let mut op = try_buffer(op_len)
        .ok_or_else(|| format!("cannot allocate {op_len} bytes for the operation name"))?;
    let mut payload = try_buffer(req_len)
        .ok_or_else(|| format!("cannot allocate {req_len} bytes for the payload"))?;
    abi.guest_request(&mut op, &mut payload);
    Ok((op, payload))
}

/// The guest → host call sequence: `__host_call`, then fetch the response (on 1) or the
/// error text (on anything else).
pub(crate) fn host_call(
    abi: &impl Abi,
    binding: &str,
    namespace: &str,
    operation: &str,
    payload: &[u8],
) -> Result<Vec<u8>, HostError> {
    if abi.host_call(binding, namespace, operation, payload) == 1 {
        let len = abi.host_response_len();
        let len = usize::try_from(len)
            .map_err(|_| HostError::new(format!("host reported invalid response length {len}")))?;
        let mut buf = try_buffer(len).ok_or_else(|| {
            HostError::new(format!("cannot allocate {len} bytes for the host response"))
        })?;
        if len > 0 {
            abi.host_response(&mut buf);
        }
        Ok(buf)
    } else {
        let len = abi.host_error_len();
        let len = usize::try_from(len)
            .map_err(|_| HostError::new(format!("host reported invalid error length {len}")))?;
        let mut buf = try_buffer(len).ok_or_else(|| {
            HostError::new(format!("cannot allocate {len} bytes for the host error"))
        })?;
        if len > 0 {
            abi.host_error(&mut buf);
        }
        Err(HostError::new(String::from_utf8_lossy(&buf).into_owned()))
    }
}

/// The host functions of the platform being compiled for.
pub(crate) fn platform() -> impl Abi {
    #[cfg(target_arch = "wasm32")]
    {
        ffi::Wasm
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        NoHost
    }
}

/// Stand-in for the host on non-wasm targets: nobody to call, unless a test installed a
/// scripted host with `crate::testing::set_host`.
#[cfg(not(target_arch = "wasm32"))]
struct NoHost;

#[cfg(not(target_arch = "wasm32"))]
const NO_HOST: &str = "no waPC host: host calls work only in a wasm32 guest";

// Without a scripted host (`crate::testing::set_host`) every host call fails with NO_HOST.
#[cfg(not(target_arch = "wasm32"))]
impl Abi for NoHost {
    fn guest_request(&self, _op: &mut [u8], _payload: &mut [u8]) {}
    fn guest_response(&self, _data: &[u8]) {}
    fn guest_error(&self, _msg: &str) {}
    fn host_call(&self, binding: &str, namespace: &str, operation: &str, payload: &[u8]) -> i32 {
        crate::testing::host_call(binding, namespace, operation, payload).unwrap_or(0)
    }
    fn host_response_len(&self) -> i32 {
        crate::testing::last_response().map_or(0, |r| i32::try_from(r.len()).unwrap_or(0))
    }
    fn host_response(&self, buf: &mut [u8]) {
        if let Some(r) = crate::testing::last_response() {
            let n = buf.len().min(r.len());
            buf[..n].copy_from_slice(&r[..n]);
        }
    }
    fn host_error_len(&self) -> i32 {
        let text = crate::testing::last_error();
        let len = text.as_deref().unwrap_or(NO_HOST).len();
        i32::try_from(len).unwrap_or(0)
    }
    fn host_error(&self, buf: &mut [u8]) {
        let text = crate::testing::last_error();
        let text = text.as_deref().unwrap_or(NO_HOST);
        let n = buf.len().min(text.len());
        buf[..n].copy_from_slice(&text.as_bytes()[..n]);
    }
    fn console_log(&self, msg: &str) {
        eprintln!("{msg}");
    }
}

/// The real waPC imports and the safe wrappers around them.
#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
pub(crate) mod ffi {
    use super::Abi;

    // All arguments and results are wasm i32: pointers into our own linear memory and byte
    // counts (`usize` and pointers are 32 bits on wasm32).
    #[cfg_attr(feature = "wasmbus", link(wasm_import_module = "wasmbus"))]
    #[cfg_attr(not(feature = "wasmbus"), link(wasm_import_module = "wapc"))]
    unsafe extern "C" {
        fn __guest_request(op_ptr: *mut u8, ptr: *mut u8);
        fn __guest_response(ptr: *const u8, len: usize);
        fn __guest_error(ptr: *const u8, len: usize);
        #[allow(clippy::too_many_arguments)]
        fn __host_call(
            bd_ptr: *const u8,
            bd_len: usize,
            ns_ptr: *const u8,
            ns_len: usize,
            op_ptr: *const u8,
            op_len: usize,
            ptr: *const u8,
            len: usize,
        ) -> i32;
        fn __host_response_len() -> i32;
        fn __host_response(ptr: *mut u8);
        fn __host_error_len() -> i32;
        fn __host_error(ptr: *mut u8);
        fn __console_log(ptr: *const u8, len: usize);
    }

    /// The imports of the running host.
    pub(crate) struct Wasm;

    // SAFETY (all blocks below): each pointer comes from a live slice of the stated length,
    // so the host reads or writes only memory we own and nothing else aliases it during the
    // call. The "write" imports (`__guest_request`, `__host_response`, `__host_error`) write
    // exactly the lengths the protocol announced (`__guest_call`'s args, `__host_*_len`),
    // which the callers used to size the buffers.
    impl Abi for Wasm {
        fn guest_request(&self, op: &mut [u8], payload: &mut [u8]) {
            // SAFETY: `op` and `payload` have the lengths passed to `__guest_call`.
            unsafe { __guest_request(op.as_mut_ptr(), payload.as_mut_ptr()) }
        }

        fn guest_response(&self, data: &[u8]) {
            // SAFETY: the host reads `data.len()` bytes from a live slice.
            unsafe { __guest_response(data.as_ptr(), data.len()) }
        }

        fn guest_error(&self, msg: &str) {
            // SAFETY: the host reads `msg.len()` bytes (valid UTF-8) from a live str.
            unsafe { __guest_error(msg.as_ptr(), msg.len()) }
        }

        fn host_call(
            &self,
            binding: &str,
            namespace: &str,
            operation: &str,
            payload: &[u8],
        ) -> i32 {
            // SAFETY: four live slices, each passed with its own length; the host only reads.
            unsafe {
                __host_call(
                    binding.as_ptr(),
                    binding.len(),
                    namespace.as_ptr(),
                    namespace.len(),
                    operation.as_ptr(),
                    operation.len(),
                    payload.as_ptr(),
                    payload.len(),
                )
            }
        }

        fn host_response_len(&self) -> i32 {
            // SAFETY: no arguments; returns a length.
            unsafe { __host_response_len() }
        }

        fn host_response(&self, buf: &mut [u8]) {
            // SAFETY: `buf` was sized from `__host_response_len` just before, with no host
            // call in between, so the host writes exactly `buf.len()` bytes.
            unsafe { __host_response(buf.as_mut_ptr()) }
        }

        fn host_error_len(&self) -> i32 {
            // SAFETY: no arguments; returns a length.
            unsafe { __host_error_len() }
        }

        fn host_error(&self, buf: &mut [u8]) {
            // SAFETY: `buf` was sized from `__host_error_len` just before, with no host call
            // in between, so the host writes exactly `buf.len()` bytes.
            unsafe { __host_error(buf.as_mut_ptr()) }
        }

        fn console_log(&self, msg: &str) {
            // SAFETY: the host reads `msg.len()` bytes (valid UTF-8) from a live str.
            unsafe { __console_log(msg.as_ptr(), msg.len()) }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    /// A scripted host that records what the guest did.
    #[derive(Default)]
    struct Mock {
        op: Vec<u8>,
        payload: Vec<u8>,
        call_result: i32,
        host_response: Vec<u8>,
        host_error: Vec<u8>,
        /// Overrides for the reported lengths (to test bad hosts).
        response_len: Option<i32>,
        log: RefCell<Vec<String>>,
    }

    impl Abi for Mock {
        fn guest_request(&self, op: &mut [u8], payload: &mut [u8]) {
            op.copy_from_slice(&self.op);
            payload.copy_from_slice(&self.payload);
            self.log.borrow_mut().push("request".into());
        }
        fn guest_response(&self, data: &[u8]) {
            self.log
                .borrow_mut()
                .push(format!("response {}", String::from_utf8_lossy(data)));
        }
        fn guest_error(&self, msg: &str) {
            self.log.borrow_mut().push(format!("error {msg}"));
        }
        fn host_call(&self, b: &str, ns: &str, op: &str, payload: &[u8]) -> i32 {
            self.log.borrow_mut().push(format!(
                "host_call {b} {ns} {op} {}",
                String::from_utf8_lossy(payload)
            ));
            self.call_result
        }
        fn host_response_len(&self) -> i32 {
            self.response_len.unwrap_or(self.host_response.len() as i32)
        }
        fn host_response(&self, buf: &mut [u8]) {
            buf.copy_from_slice(&self.host_response);
        }
        fn host_error_len(&self) -> i32 {
            self.host_error.len() as i32
        }
        fn host_error(&self, buf: &mut [u8]) {
            buf.copy_from_slice(&self.host_error);
        }
        fn console_log(&self, msg: &str) {
            self.log.borrow_mut().push(format!("log {msg}"));
        }
    }

    fn mock_call(op: &str, payload: &[u8]) -> (i32, Vec<String>) {
        let mock = Mock {
            op: op.as_bytes().to_vec(),
            payload: payload.to_vec(),
            ..Mock::default()
        };
        let rc = guest_call(&mock, op.len() as i32, payload.len() as i32);
        (rc, mock.log.into_inner())
    }

    fn upper(p: &[u8]) -> crate::HandlerResult<Vec<u8>> {
        Ok(p.to_ascii_uppercase())
    }

    fn fails(_: &[u8]) -> crate::HandlerResult<Vec<u8>> {
        Err("deliberate".into())
    }

    #[test]
    fn guest_call_success_sets_response_and_returns_1() {
        crate::register_function("Upper", upper);
        let (rc, log) = mock_call("Upper", b"abc");
        assert_eq!(rc, 1);
        assert_eq!(log, ["request", "response ABC"]);
    }

    #[test]
    fn guest_call_empty_payload() {
        crate::register_function("Upper", upper);
        let (rc, log) = mock_call("Upper", b"");
        assert_eq!(rc, 1);
        assert_eq!(log, ["request", "response "]);
    }

    #[test]
    fn guest_call_unknown_op_sets_error_and_returns_0() {
        let (rc, log) = mock_call("Missing", b"x");
        assert_eq!(rc, 0);
        assert_eq!(log, ["request", "error unknown operation: Missing"]);
    }

    #[test]
    fn guest_call_handler_error_sets_error_and_returns_0() {
        crate::register_function("Fails", fails);
        let (rc, log) = mock_call("Fails", b"x");
        assert_eq!(rc, 0);
        assert_eq!(log, ["request", "error deliberate"]);
    }

    #[test]
    fn guest_call_negative_lengths_are_rejected_without_request() {
        let mock = Mock::default();
        assert_eq!(guest_call(&mock, -1, 0), 0);
        assert_eq!(
            mock.log.into_inner(),
            ["error invalid guest call lengths: operation -1, payload 0"]
        );
    }

    #[test]
    fn host_call_success_fetches_response() {
        let mock = Mock {
            call_result: 1,
            host_response: b"pong".to_vec(),
            ..Mock::default()
        };
        let out = host_call(&mock, "default", "nimbus:test", "Echo", b"ping").unwrap();
        assert_eq!(out, b"pong");
        assert_eq!(
            mock.log.into_inner(),
            ["host_call default nimbus:test Echo ping"]
        );
    }

    #[test]
    fn host_call_empty_response() {
        let mock = Mock {
            call_result: 1,
            ..Mock::default()
        };
        assert_eq!(host_call(&mock, "", "ns", "Op", b"").unwrap(), b"");
    }

    #[test]
    fn host_call_failure_returns_host_error_text() {
        for rc in [0, 2, -1] {
            let mock = Mock {
                call_result: rc,
                host_response: b"ignored".to_vec(),
                host_error: b"no link for contract X".to_vec(),
                ..Mock::default()
            };
            let err = host_call(&mock, "default", "X", "Op", b"").unwrap_err();
            assert_eq!(err.message(), "no link for contract X");
        }
    }

    #[test]
    fn host_call_failure_with_invalid_utf8_error_is_lossy() {
        let mock = Mock {
            host_error: b"bad \xff".to_vec(),
            ..Mock::default()
        };
        let err = host_call(&mock, "a", "b", "c", b"").unwrap_err();
        assert_eq!(err.to_string(), "bad \u{fffd}");
    }

    #[test]
    fn host_call_negative_response_length_is_an_error() {
        let mock = Mock {
            call_result: 1,
            response_len: Some(-5),
            ..Mock::default()
        };
        let err = host_call(&mock, "a", "b", "c", b"").unwrap_err();
        assert_eq!(err.to_string(), "host reported invalid response length -5");
    }

    #[cfg(not(target_arch = "wasm32"))]
    #[test]
    fn no_host_on_native_targets() {
        let err = crate::host_call("default", "ns", "Op", b"").unwrap_err();
        assert_eq!(err.to_string(), NO_HOST);
    }
}
