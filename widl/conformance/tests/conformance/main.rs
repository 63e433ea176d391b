//! Conformance of the generated interface code: bytes against the published crates, both
//! sides run natively, and the checked-in `wash gen` output exercised.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod actor_side;
mod batch;
mod golden;
mod kitchen_sink;
mod provider_side;
mod support;
