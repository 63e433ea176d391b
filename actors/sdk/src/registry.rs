//! The operation registry: a map from operation name to handler, one per instance.
//!
//! wasm32 guests are single-threaded, so a `thread_local` `RefCell` is the whole registry. On
//! the host target (unit tests) every test thread gets its own registry.

use std::cell::RefCell;
use std::collections::BTreeMap;

use crate::HandlerFn;

thread_local! {
    // A BTreeMap needs no hasher seed, so the guest imports no randomness source.
    static HANDLERS: RefCell<BTreeMap<String, HandlerFn>> = const { RefCell::new(BTreeMap::new()) };
}

/// Registers `f` for `op`, replacing any earlier handler for the same name.
pub(crate) fn register(op: &str, f: HandlerFn) {
    HANDLERS.with(|handlers| {
        handlers.borrow_mut().insert(op.to_owned(), f);
    });
}

/// The handler for `op`, if one is registered.
///
/// The function pointer is copied out so no borrow is held while a handler runs (a handler
/// may itself register functions).
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))] // used by the wasm32 export
pub(crate) fn lookup(op: &str) -> Option<HandlerFn> {
    HANDLERS.with(|handlers| handlers.borrow().get(op).copied())
}

/// Runs the handler registered for the operation `op` on `payload`.
///
/// Returns the handler's response, or the text to report through `__guest_error`: the
/// handler's error text, or `unknown operation: <op>` when no handler is registered (an op
/// that is not UTF-8 is shown lossily; it can never match a registered name).
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))] // used by the wasm32 export
pub(crate) fn dispatch(op: &[u8], payload: &[u8]) -> Result<Vec<u8>, String> {
    let handler = std::str::from_utf8(op).ok().and_then(lookup);
    match handler {
        Some(f) => f(payload).map_err(|e| e.to_string()),
        None => Err(format!(
            "unknown operation: {}",
            String::from_utf8_lossy(op)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::HandlerResult;

    fn echo(p: &[u8]) -> HandlerResult<Vec<u8>> {
        Ok(p.to_vec())
    }

    fn fail(_: &[u8]) -> HandlerResult<Vec<u8>> {
        Err("boom".into())
    }

    fn reverse(p: &[u8]) -> HandlerResult<Vec<u8>> {
        Ok(p.iter().rev().copied().collect())
    }

    fn registers_more(_: &[u8]) -> HandlerResult<Vec<u8>> {
        register("Late", echo);
        Ok(b"done".to_vec())
    }

    #[test]
    fn dispatches_to_registered_handler() {
        register("Echo", echo);
        assert_eq!(dispatch(b"Echo", b"abc"), Ok(b"abc".to_vec()));
        assert_eq!(dispatch(b"Echo", b""), Ok(Vec::new()));
    }

    #[test]
    fn unknown_operation_is_an_error() {
        assert_eq!(
            dispatch(b"Nope", b""),
            Err("unknown operation: Nope".to_owned())
        );
        assert_eq!(
            dispatch(b"\xffx", b""),
            Err("unknown operation: \u{fffd}x".to_owned())
        );
        // Names are case sensitive.
        register("Echo", echo);
        assert!(dispatch(b"echo", b"").is_err());
    }

    #[test]
    fn handler_error_text_is_passed_through() {
        register("Fail", fail);
        assert_eq!(dispatch(b"Fail", b"x"), Err("boom".to_owned()));
    }

    #[test]
    fn later_registration_replaces_earlier() {
        register("Op", echo);
        register("Op", reverse);
        assert_eq!(dispatch(b"Op", b"abc"), Ok(b"cba".to_vec()));
    }

    #[test]
    fn handler_may_register_while_running() {
        register("Reg", registers_more);
        assert_eq!(dispatch(b"Reg", b""), Ok(b"done".to_vec()));
        assert_eq!(dispatch(b"Late", b"z"), Ok(b"z".to_vec()));
    }
}
