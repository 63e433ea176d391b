//! The HTTP server provider as its own process: reads its host data from stdin, joins the
//! lattice over NATS and serves `wasmcloud:httpserver` links (one listener per actor).

use std::sync::Arc;

use anyhow::Context as _;
use nimbus_provider_httpserver::HttpServerProvider;

fn main() -> anyhow::Result<()> {
    nimbus_provider_sdk::nats::run_main(Arc::new(HttpServerProvider::new()))
        .context("failed to run the HTTP server provider")
}
