//! Generates the interface code from `widl/interfaces/keyvalue.widl` into OUT_DIR: the actor
//! side behind feature `actor`, the provider side behind feature `provider`.

use std::process::ExitCode;

fn main() -> ExitCode {
    match nimbus_widl::build::Builder::new().compile("../../keyvalue.widl") {
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{error}");
            ExitCode::FAILURE
        }
    }
}
