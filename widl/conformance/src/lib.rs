//! Conformance of the WIDL Rust generators.
//!
//! `src/actor/kitchen_sink.rs` and `src/provider/kitchen_sink.rs` are `wash gen` output for
//! `widl/kitchen_sink.widl` (every construct the generator supports), checked in: this
//! crate compiling proves the output compiles for both sides, and the `wash gen --check`
//! test in wash-cli fails when they are stale. Regenerate with
//!
//! ```sh
//! wash gen widl/conformance/widl/kitchen_sink.widl --lang rust --side actor -o widl/conformance/src/actor
//! wash gen widl/conformance/widl/kitchen_sink.widl --lang rust --side provider -o widl/conformance/src/provider
//! ```
//!
//! The tests (tests/conformance) compare the interface crates' bytes with golden vectors
//! from the published crates (`widl/golden`) and run both sides natively.

/// The actor side of `kitchen_sink.widl` (`wash gen --side actor`).
pub mod actor {
    /// Generated from `kitchen_sink.widl`.
    pub mod kitchen_sink;
}

/// The provider side of `kitchen_sink.widl` (`wash gen --side provider`).
pub mod provider {
    /// Generated from `kitchen_sink.widl`.
    pub mod kitchen_sink;
}
