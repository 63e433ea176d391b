//! The invocation protocol of the lattice, in one place: how an invocation is sent over
//! NATS (envelope, anti-forgery token, request with a deadline), how a served subject
//! answers (size limits, decoding, token check, reply), and what a failure is
//! ([`InvocationError`]: a typed [`ErrorKind`] plus the user-facing message; the kind's
//! string form exists only in [`InvocationError::to_wire`] and
//! [`InvocationError::from_wire`]).
//!
//! Hosts, the provider SDK, the control client and `wash` all send and answer through
//! this crate, so the copies cannot drift apart. It knows NATS and the wire types of
//! `nimbus-core`, and nothing of wasm, actors or providers: what an invocation *does* is
//! the [`Handler`] a server is given.

mod client;
mod error;
mod server;

pub use client::{RpcClient, Signer, describe, trace_headers};
pub use error::{ErrorKind, InvocationError};
pub use server::{Handler, Limits, Serving, respond, respond_traced, serve};
