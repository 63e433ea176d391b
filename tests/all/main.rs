//! All cross-crate integration tests, in one binary (the wasmtime way: one link step).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod compat_0x;
mod dashboard;
mod differential;
mod faults;
mod http_limits;
mod invocation_security;
mod keyvalue;
mod kvcounter;
mod lattice;
mod lattice_ctl;
mod lattice_demo;
mod lattice_router;
mod lattice_support;
mod metrics;
mod petclinic;
mod provider_process;
mod provider_stop;
mod runtime;
mod servers;
mod traces;
mod update_actor;
