//! `{{name}}` as its own process: reads its host data from stdin and serves
//! `{{contract}}` over NATS (a host starts it; see `wash ctl start provider`).

use std::sync::Arc;

use anyhow::Context as _;

fn main() -> anyhow::Result<()> {
    nimbus_provider_sdk::nats::run_main(Arc::new({{lib}}::{{type}}::default()))
        .context("failed to run the {{name}} provider")
}
