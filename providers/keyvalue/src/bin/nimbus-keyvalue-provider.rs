//! The key-value provider as its own process: reads its host data from stdin, joins the
//! lattice over NATS and serves `wasmcloud:keyvalue` with the backend each link names.

use std::sync::Arc;

use anyhow::Context as _;
use nimbus_provider_keyvalue::KeyValueProvider;

fn main() -> anyhow::Result<()> {
    nimbus_provider_sdk::nats::run_main(Arc::new(KeyValueProvider::new()))
        .context("failed to run the key-value provider")
}
