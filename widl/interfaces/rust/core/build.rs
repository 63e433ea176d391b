//! Generates the interface code from `widl/interfaces/core.widl` into OUT_DIR: the actor
//! side behind feature `actor`, the provider side behind feature `provider`.
//!
//! Only the host sends the `CapabilityProvider` lifecycle operations, so actors get no
//! senders for them (`host_roles` is empty).

use std::process::ExitCode;

fn main() -> ExitCode {
    let builder = nimbus_widl::build::Builder::new().host_roles(Vec::<String>::new());
    match builder.compile("../../core.widl") {
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{error}");
            ExitCode::FAILURE
        }
    }
}
