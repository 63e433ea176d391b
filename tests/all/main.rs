//! All cross-crate integration tests, in one binary (the wasmtime way: one link step).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod differential;
mod keyvalue;
mod lattice;
mod lattice_ctl;
mod lattice_router;
mod lattice_support;
mod provider_process;
mod runtime;
mod servers;
