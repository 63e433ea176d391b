//! Code generators: Rust for actors (typed handler registration and host-call senders on
//! `nimbus-actor`) and for providers (a trait per role and a dispatcher on
//! `nimbus-provider-sdk`), with msgpack shapes equal to the published waPC-era crates.
//!
//! [`generate_rust`] turns a checked [`Program`](crate::Program) into source text; [`format_rust`] runs
//! `rustfmt` on it; [`generate_rust_file`] does both for a file on disk and is what
//! `wash gen` and the [`crate::build::Builder`] call.

mod names;
mod rust;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub use rust::{Gate, RustOptions, generate_rust};

use crate::diagnostic::{Diagnostic, has_errors, render_diagnostics};
use crate::loader::LoadError;
use crate::span::SourceFiles;

/// Why generating code for a file failed.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// The WIDL file could not be read.
    #[error("cannot load {path}: {source}")]
    Load {
        /// The file as given.
        path: String,
        /// The loader's error.
        #[source]
        source: LoadError,
    },
    /// The WIDL has errors (syntax, checker or generator); nothing was generated.
    #[error(
        "{path}: {count} error(s) in the WIDL, nothing generated; fix the errors shown and run again\n{rendered}"
    )]
    Invalid {
        /// The root file.
        path: String,
        /// How many errors.
        count: usize,
        /// All diagnostics (errors and warnings) rendered rustc-style.
        rendered: String,
        /// The diagnostics themselves, for tools.
        diagnostics: Vec<Diagnostic>,
    },
    /// `rustfmt` could not format the generated code.
    #[error(transparent)]
    Format(#[from] FormatError),
}

/// Why `rustfmt` failed.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// The binary could not be started.
    #[error(
        "cannot run `{program}`: {source}; install it with `rustup component add rustfmt` or set RUSTFMT to its path"
    )]
    NotFound {
        /// The program that was tried.
        program: String,
        /// The spawn error.
        #[source]
        source: std::io::Error,
    },
    /// rustfmt ran and rejected the input (a generator bug) or failed.
    #[error("rustfmt failed ({status}): {stderr}")]
    Failed {
        /// Its exit status.
        status: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// Talking to the child process failed.
    #[error("cannot talk to rustfmt: {0}")]
    Io(#[from] std::io::Error),
}

/// Formats Rust source with `rustfmt` (the `RUSTFMT` environment variable, else `rustfmt` on
/// `PATH`), edition 2024.
///
/// rustfmt reads its configuration (`rustfmt.toml`) from `config_dir` and its parents, the
/// way `cargo fmt` does for a file in that directory, so generated files checked into a
/// crate stay clean under that crate's `cargo fmt --check`. With `None` it runs in the
/// system temp directory, which normally means the default style.
pub fn format_rust(source: &str, config_dir: Option<&Path>) -> Result<String, FormatError> {
    let program = std::env::var("RUSTFMT").unwrap_or_else(|_| "rustfmt".to_string());
    let dir: PathBuf = config_dir.map_or_else(std::env::temp_dir, Path::to_path_buf);
    let mut child = Command::new(&program)
        .args(["--edition", "2024", "--emit", "stdout", "--quiet"])
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| FormatError::NotFound {
            program: program.clone(),
            source,
        })?;
    // Write on a thread: rustfmt may fill its stdout pipe before it has read all of stdin.
    let input = source.as_bytes().to_vec();
    let mut stdin = child.stdin.take();
    let writer = std::thread::spawn(move || -> std::io::Result<()> {
        if let Some(stdin) = stdin.as_mut() {
            stdin.write_all(&input)?;
        }
        Ok(())
    });
    let output = child.wait_with_output()?;
    let written = writer
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("writer thread panicked")));
    if !output.status.success() {
        return Err(FormatError::Failed {
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    written?;
    String::from_utf8(output.stdout)
        .map_err(|_| std::io::Error::other("rustfmt printed invalid UTF-8").into())
}

/// How [`generate_rust_file`] formats its output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Formatting {
    /// Run rustfmt; fail if it cannot run.
    Required {
        /// Directory whose `rustfmt.toml` applies (see [`format_rust`]).
        config_dir: Option<PathBuf>,
    },
    /// Run rustfmt if it can be started, else keep the generator's own layout (valid but
    /// not rustfmt-clean). For build scripts, whose output only the compiler reads.
    IfAvailable,
    /// Keep the generator's own layout.
    Off,
}

/// Generated code and what it was made from.
#[derive(Debug, Clone)]
pub struct Generated {
    /// The Rust source.
    pub code: String,
    /// Warnings found in the WIDL, rendered rustc-style (empty if none).
    pub warnings: String,
    /// Every WIDL file read (the root and its imports), for `rerun-if-changed`.
    pub sources: Vec<String>,
}

/// Reads `path` (and its imports), checks it and generates Rust with `options`.
pub fn generate_rust_file(
    path: impl AsRef<Path>,
    options: &RustOptions,
    formatting: &Formatting,
) -> Result<Generated, GenerateError> {
    let path_text = path.as_ref().to_string_lossy().into_owned();
    let program =
        crate::parse_and_check_file(path.as_ref()).map_err(|source| GenerateError::Load {
            path: path_text.clone(),
            source,
        })?;
    let sources: Vec<String> = program.files.iter().map(|f| f.name().to_string()).collect();
    let code = match generate_rust(&program, options) {
        Ok(code) => code,
        Err(diagnostics) => return Err(invalid(&path_text, &program.files, diagnostics)),
    };
    let warnings = render_diagnostics(&program.files, &program.diagnostics);
    let code = match formatting {
        Formatting::Required { config_dir } => format_rust(&code, config_dir.as_deref())?,
        Formatting::IfAvailable => match format_rust(&code, None) {
            Ok(formatted) => formatted,
            Err(FormatError::NotFound { .. }) => code,
            Err(e) => return Err(e.into()),
        },
        Formatting::Off => code,
    };
    Ok(Generated {
        code,
        warnings,
        sources,
    })
}

fn invalid(path: &str, files: &SourceFiles, diagnostics: Vec<Diagnostic>) -> GenerateError {
    debug_assert!(has_errors(&diagnostics));
    GenerateError::Invalid {
        path: path.to_string(),
        count: diagnostics.iter().filter(|d| d.is_error()).count(),
        rendered: render_diagnostics(files, &diagnostics),
        diagnostics,
    }
}

/// The file name generated code for `widl` is written to: the file stem in snake case plus
/// `.rs` (`http-server.widl` → `http_server.rs`), so it can be a module name.
pub fn output_file_name(widl: &Path) -> String {
    let stem = widl
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let snake = names::snake_case(&stem);
    let base = if snake.is_empty() {
        "generated".to_string()
    } else if snake.starts_with(|c: char| c.is_ascii_digit()) {
        format!("widl_{snake}")
    } else {
        snake
    };
    format!("{base}.rs")
}
