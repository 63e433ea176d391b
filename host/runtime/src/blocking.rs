//! Running the runtime's async calls from synchronous code (tests, tools, benchmarks).
//!
//! Actor calls are async: wasm runs on a wasmtime fiber polled by the caller's executor,
//! and an actor's host calls are awaited on it instead of blocking a thread. Synchronous
//! callers drive such a future here: on a multi-threaded tokio runtime in place (the
//! worker hands its other tasks over first), on a current-thread runtime from a scoped
//! helper thread (its only thread must not block), and outside tokio on a shared
//! current-thread runtime, so WASI file access and timers have a reactor.

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::{Handle, Runtime, RuntimeFlavor};

/// The runtime for callers outside tokio; never dropped, so never dropped in async code.
static FALLBACK: OnceLock<Result<Runtime, String>> = OnceLock::new();

fn fallback() -> Result<&'static Runtime, String> {
    FALLBACK
        .get_or_init(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .thread_name("nimbus-blocking")
                .build()
                .map_err(|e| format!("cannot start the runtime for blocking calls: {e}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Drives `future` to completion on the calling thread. A future that needs the reactor
/// of the caller's own current-thread runtime cannot complete this way: from async code,
/// await the async form instead.
pub(crate) fn block_on<F>(future: F) -> Result<F::Output, String>
where
    F: Future + Send,
    F::Output: Send,
{
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            Ok(tokio::task::block_in_place(|| handle.block_on(future)))
        }
        Ok(_) => std::thread::scope(|scope| {
            scope
                .spawn(|| fallback().map(|rt| rt.block_on(future)))
                .join()
                .map_err(|_| "the blocking call's helper thread panicked".to_string())?
        }),
        Err(_) => fallback().map(|rt| rt.block_on(future)),
    }
}
