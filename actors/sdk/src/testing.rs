//! Native test support (targets other than wasm32): run an actor's registered handlers the
//! way `__guest_call` does, and answer its host calls with a scripted host, so actor code and
//! generated interface code can be unit-tested with `cargo test` and no wasm runtime.
//!
//! Both are per thread, like the handler registry, so parallel tests do not interfere.

use std::cell::RefCell;

/// A scripted host: answers `host_call(binding, namespace, operation, payload)` with the
/// response bytes, or with the error text the host would report.
pub type MockHost = Box<dyn FnMut(&str, &str, &str, &[u8]) -> Result<Vec<u8>, String>>;

thread_local! {
    static HOST: RefCell<Option<MockHost>> = const { RefCell::new(None) };
    /// The outcome of the last host call, read back through the host-response functions.
    static LAST: RefCell<Option<Result<Vec<u8>, String>>> = const { RefCell::new(None) };
}

/// Installs `host` as this thread's host: later [`crate::host_call`]s on this thread go to
/// it instead of failing. Replaces any earlier one.
pub fn set_host(host: impl FnMut(&str, &str, &str, &[u8]) -> Result<Vec<u8>, String> + 'static) {
    HOST.with(|h| *h.borrow_mut() = Some(Box::new(host)));
}

/// Removes this thread's scripted host; host calls fail again.
pub fn clear_host() {
    HOST.with(|h| *h.borrow_mut() = None);
}

/// Runs the handler registered for `op` on `payload`, as the host's `__guest_call` would:
/// the handler's response, or the text the guest would report through `__guest_error`
/// (`unknown operation: <op>` when nothing is registered).
pub fn guest_call(op: &str, payload: &[u8]) -> Result<Vec<u8>, String> {
    crate::registry::dispatch(op.as_bytes(), payload)
}

/// Runs the scripted host, if one is installed, and stores its outcome for
/// [`last_response`]/[`last_error`]. Returns the `__host_call` result (1 success, 0 failure),
/// or `None` without a scripted host.
pub(crate) fn host_call(
    binding: &str,
    namespace: &str,
    operation: &str,
    payload: &[u8],
) -> Option<i32> {
    LAST.with(|l| *l.borrow_mut() = None);
    // Taken out while it runs, so a host that calls back into the guest cannot alias it.
    let mut host = HOST.with(|h| h.borrow_mut().take())?;
    let outcome = host(binding, namespace, operation, payload);
    HOST.with(|h| {
        let mut slot = h.borrow_mut();
        if slot.is_none() {
            *slot = Some(host);
        }
    });
    let code = i32::from(outcome.is_ok());
    LAST.with(|l| *l.borrow_mut() = Some(outcome));
    Some(code)
}

/// The response bytes of the last scripted host call, if it succeeded.
pub(crate) fn last_response() -> Option<Vec<u8>> {
    LAST.with(|l| match &*l.borrow() {
        Some(Ok(bytes)) => Some(bytes.clone()),
        _ => None,
    })
}

/// The error text of the last scripted host call, if it failed.
pub(crate) fn last_error() -> Option<String> {
    LAST.with(|l| match &*l.borrow() {
        Some(Err(text)) => Some(text.clone()),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::HandlerResult;

    fn double(p: &[u8]) -> HandlerResult<Vec<u8>> {
        Ok([p, p].concat())
    }

    #[test]
    fn guest_call_runs_registered_handlers() {
        crate::register_function("Double", double);
        assert_eq!(guest_call("Double", b"ab"), Ok(b"abab".to_vec()));
        assert_eq!(
            guest_call("Missing", b""),
            Err("unknown operation: Missing".to_string())
        );
    }

    #[test]
    fn scripted_host_answers_host_calls() {
        set_host(|binding, namespace, operation, payload| {
            if operation == "Fail" {
                Err(format!("no link for {namespace}"))
            } else {
                Ok([
                    binding.as_bytes(),
                    b"/",
                    operation.as_bytes(),
                    b"/",
                    payload,
                ]
                .concat())
            }
        });
        assert_eq!(
            crate::host_call("default", "wasmcloud:keyvalue", "Get", b"k").unwrap(),
            b"default/Get/k".to_vec()
        );
        let err = crate::host_call("", "wasmcloud:keyvalue", "Fail", b"").unwrap_err();
        assert_eq!(err.to_string(), "no link for wasmcloud:keyvalue");
        // An empty response is a success with no bytes.
        set_host(|_, _, _, _| Ok(Vec::new()));
        assert_eq!(
            crate::host_call("a", "b", "c", b"").unwrap(),
            Vec::<u8>::new()
        );
        clear_host();
        assert!(crate::host_call("a", "b", "c", b"").is_err());
    }
}
