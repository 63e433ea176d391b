//! Generating interface code from a `build.rs`, the prost/tonic way: the WIDL file stays the
//! source of truth and the generated Rust lands in `OUT_DIR`, where the crate includes it.
//!
//! ```no_run
//! // build.rs of an interface crate with features `actor` and `provider`
//! fn main() -> std::process::ExitCode {
//!     match nimbus_widl::build::Builder::new().compile("../../keyvalue.widl") {
//!         Ok(_) => std::process::ExitCode::SUCCESS,
//!         Err(e) => {
//!             eprintln!("{e}");
//!             std::process::ExitCode::FAILURE
//!         }
//!     }
//! }
//! ```
//!
//! and in `src/lib.rs`: `include!(concat!(env!("OUT_DIR"), "/keyvalue.rs"));`.

use std::path::{Path, PathBuf};

use crate::codegen::{
    Formatting, Gate, GenerateError, RustOptions, generate_rust_file, output_file_name,
};

/// Why a build-script generation failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// Loading, checking, generating or formatting failed; the message carries the
    /// rendered WIDL diagnostics.
    #[error(transparent)]
    Generate(#[from] GenerateError),
    /// Neither [`Builder::out_dir`] nor the `OUT_DIR` environment variable is set.
    #[error("OUT_DIR is not set: call Builder::out_dir, or run from a cargo build script")]
    NoOutDir,
    /// The output file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The output file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// Configures and runs the Rust generator for build scripts.
///
/// By default both sides are generated, the actor side behind cargo feature `actor` and
/// the provider side behind `provider`, so one crate serves wasm actors and native
/// providers; rustfmt formats the output when it is installed.
#[derive(Debug, Clone)]
pub struct Builder {
    options: RustOptions,
    out_dir: Option<PathBuf>,
    format: bool,
    emit_rerun: bool,
}

impl Default for Builder {
    fn default() -> Self {
        Self::new()
    }
}

impl Builder {
    /// Both sides, gated by features `actor` and `provider`.
    pub fn new() -> Self {
        Builder {
            options: RustOptions::gated("actor", "provider"),
            out_dir: None,
            format: true,
            emit_rerun: true,
        }
    }

    /// The actor side: `None` leaves it out, `Some(Gate::Always)` compiles it
    /// unconditionally, `Some(Gate::Feature(f))` only with feature `f`.
    pub fn actor_side(mut self, gate: Option<Gate>) -> Self {
        self.options.actor = gate;
        self
    }

    /// The provider side, like [`Builder::actor_side`].
    pub fn provider_side(mut self, gate: Option<Gate>) -> Self {
        self.options.provider = gate;
        self
    }

    /// Roles implemented by actors (default `["Actor"]`); other roles are implemented by
    /// providers.
    pub fn actor_roles<I: IntoIterator<Item = S>, S: Into<String>>(mut self, roles: I) -> Self {
        self.options.actor_roles = roles.into_iter().map(Into::into).collect();
        self
    }

    /// Provider roles the actor-side `Host` gets senders for (default: all). Give an
    /// empty list for interfaces whose provider operations only the host calls.
    pub fn host_roles<I: IntoIterator<Item = S>, S: Into<String>>(mut self, roles: I) -> Self {
        self.options.host_roles = Some(roles.into_iter().map(Into::into).collect());
        self
    }

    /// Where to write (default: `OUT_DIR`).
    pub fn out_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.out_dir = Some(dir.into());
        self
    }

    /// Whether to run rustfmt on the output when it is installed (default: yes). Without
    /// it the code is valid but laid out by the generator.
    pub fn format(mut self, format: bool) -> Self {
        self.format = format;
        self
    }

    /// Whether to print `cargo:rerun-if-changed` lines for the WIDL files read (default:
    /// yes; turn off outside build scripts).
    pub fn emit_rerun_if_changed(mut self, emit: bool) -> Self {
        self.emit_rerun = emit;
        self
    }

    /// Generates Rust for `widl` into `<out_dir>/<stem>.rs` and returns that path. The file
    /// is rewritten only when its content changes. WIDL warnings are printed as cargo
    /// warnings.
    pub fn compile(&self, widl: impl AsRef<Path>) -> Result<PathBuf, BuildError> {
        let widl = widl.as_ref();
        let out_dir = match &self.out_dir {
            Some(dir) => dir.clone(),
            None => std::env::var_os("OUT_DIR")
                .map(PathBuf::from)
                .ok_or(BuildError::NoOutDir)?,
        };
        if self.emit_rerun {
            // Printed before generating, so a fixed WIDL error triggers a rebuild.
            println!("cargo:rerun-if-changed={}", widl.display());
            println!("cargo:rerun-if-env-changed=RUSTFMT");
        }
        let formatting = if self.format {
            Formatting::IfAvailable
        } else {
            Formatting::Off
        };
        let generated = generate_rust_file(widl, &self.options, &formatting)?;
        if self.emit_rerun {
            for source in &generated.sources {
                println!("cargo:rerun-if-changed={source}");
            }
            for line in generated.warnings.lines().filter(|l| !l.trim().is_empty()) {
                println!("cargo:warning={line}");
            }
        }
        let path = out_dir.join(output_file_name(widl));
        let unchanged = std::fs::read_to_string(&path).is_ok_and(|old| old == generated.code);
        if !unchanged {
            std::fs::write(&path, &generated.code).map_err(|source| BuildError::Write {
                path: path.display().to_string(),
                source,
            })?;
        }
        Ok(path)
    }
}
