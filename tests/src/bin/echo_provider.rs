//! The `nimbus:echo` provider as a binary of the test package, so the integration tests
//! find it through `CARGO_BIN_EXE_nimbus-test-echo-provider` (the same `main` as the
//! provider's own binary in providers/echo).

use std::sync::Arc;

use anyhow::Context as _;
use nimbus_echo_provider::EchoProvider;

fn main() -> anyhow::Result<()> {
    nimbus_provider_sdk::nats::run_main(Arc::new(EchoProvider::new().with_crash_op()))
        .context("failed to run the echo provider")
}
