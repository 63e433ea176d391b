//! Generates the provider side of `interface.widl` (its types, the `Operations` trait and
//! `dispatch_operations`) into OUT_DIR, where src/lib.rs includes it.

use std::process::ExitCode;

use nimbus_widl::codegen::Gate;

fn main() -> ExitCode {
    let builder = nimbus_widl::build::Builder::new()
        .actor_side(None)
        .provider_side(Some(Gate::Always));
    match builder.compile("interface.widl") {
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{error}");
            ExitCode::FAILURE
        }
    }
}
