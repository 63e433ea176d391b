//! All cross-crate integration tests, in one binary (the wasmtime way: one link step).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod differential;
mod runtime;
mod servers;
