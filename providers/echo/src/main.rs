//! The echo provider as its own process: reads its host data from stdin and serves the
//! `nimbus:echo` contract over NATS, with the `Crash` operation enabled.

use std::sync::Arc;

use anyhow::Context as _;
use nimbus_echo_provider::EchoProvider;

fn main() -> anyhow::Result<()> {
    nimbus_provider_sdk::nats::run_main(Arc::new(EchoProvider::new().with_crash_op()))
        .context("failed to run the echo provider")
}
