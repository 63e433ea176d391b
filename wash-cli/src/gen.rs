//! `wash gen`: Rust code from WIDL interfaces, for the actor side or the provider side, and
//! `--check` to fail CI when checked-in generated code is stale.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use nimbus_widl::codegen::{
    Formatting, GenerateError, RustOptions, generate_rust_file, output_file_name,
};
use serde::Serialize;

use crate::output::OutputFormat;

/// Arguments of `wash gen`.
#[derive(Debug, clap::Args)]
pub struct GenArgs {
    /// WIDL files to generate code for; their imports are followed.
    #[arg(required = true, value_name = "FILE.widl")]
    files: Vec<PathBuf>,
    /// The language to generate.
    #[arg(long, value_enum, default_value_t = Lang::Rust)]
    lang: Lang,
    /// `actor`: typed handler registration and host-call senders (on nimbus-actor);
    /// `provider`: a trait per provider role, a dispatcher and typed calls into actors (on
    /// nimbus-provider-sdk).
    #[arg(long, value_enum)]
    side: Side,
    /// Directory to write to: FILE.widl becomes DIR/file.rs. Without it the code is printed.
    #[arg(short = 'o', long = "out-dir", value_name = "DIR")]
    out_dir: Option<PathBuf>,
    /// Write nothing; fail if a file in DIR differs from what would be generated.
    #[arg(long, requires = "out_dir")]
    check: bool,
    /// A role implemented by actors (repeatable; default `Actor`). Other roles are
    /// implemented by providers.
    #[arg(long = "actor-role", value_name = "ROLE")]
    actor_roles: Vec<String>,
}

/// Languages `wash gen` can generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Lang {
    /// Rust.
    Rust,
}

/// Which side of an interface to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
enum Side {
    /// Code for actors (wasm guests).
    Actor,
    /// Code for capability providers.
    Provider,
}

/// What happened to one output file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Status {
    /// Written (new or changed).
    Written,
    /// Already equal to the generated code; not touched.
    Unchanged,
    /// `--check`: equal to the generated code.
    UpToDate,
    /// `--check`: differs from the generated code.
    Stale,
    /// `--check`: does not exist.
    Missing,
    /// Printed on stdout.
    Printed,
}

/// The JSON report of one file.
#[derive(Debug, Serialize)]
struct FileReport {
    widl: String,
    output: Option<String>,
    side: Side,
    status: Status,
    /// The generated code, when printed rather than written (`--output json` without `-o`).
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<String>,
}

/// Runs `wash gen`.
pub fn run(args: GenArgs, output: OutputFormat) -> anyhow::Result<()> {
    let Lang::Rust = args.lang;
    let mut options = match args.side {
        Side::Actor => RustOptions::actor(),
        Side::Provider => RustOptions::provider(),
    };
    if !args.actor_roles.is_empty() {
        options.actor_roles = args.actor_roles.clone();
    }
    // rustfmt reads the rustfmt.toml that applies to the output directory (or its nearest
    // existing parent), so the files stay clean under that crate's `cargo fmt --check`.
    let formatting = Formatting::Required {
        config_dir: args
            .out_dir
            .as_deref()
            .and_then(|dir| {
                dir.ancestors()
                    .map(|d| {
                        if d.as_os_str().is_empty() {
                            Path::new(".")
                        } else {
                            d
                        }
                    })
                    .find(|d| d.is_dir())
            })
            .map(Path::to_path_buf),
    };

    let mut reports = Vec::new();
    let mut printed = String::new();
    let mut invalid = Vec::new();
    for file in &args.files {
        let generated = match generate_rust_file(file, &options, &formatting) {
            Ok(generated) => generated,
            Err(GenerateError::Invalid {
                path,
                count,
                rendered,
                ..
            }) => {
                eprint!("{rendered}");
                invalid.push(format!("{path} ({count} error(s))"));
                continue;
            }
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("failed to generate code for {}", file.display()));
            }
        };
        if !generated.warnings.trim().is_empty() {
            eprint!("{}", generated.warnings);
        }
        let report = match &args.out_dir {
            None => {
                printed.push_str(&generated.code);
                FileReport {
                    widl: file.display().to_string(),
                    output: None,
                    side: args.side,
                    status: Status::Printed,
                    code: Some(generated.code),
                }
            }
            Some(dir) => {
                let target = dir.join(output_file_name(file));
                let status = if args.check {
                    check_file(&target, &generated.code)?
                } else {
                    write_file(&target, &generated.code)?
                };
                FileReport {
                    widl: file.display().to_string(),
                    output: Some(target.display().to_string()),
                    side: args.side,
                    status,
                    code: None,
                }
            }
        };
        reports.push(report);
    }

    if !invalid.is_empty() {
        bail!(
            "nothing generated for {}: fix the errors above and run again",
            invalid.join(", ")
        );
    }
    if args.out_dir.is_none() && output == OutputFormat::Text {
        print!("{printed}");
        return Ok(());
    }
    #[derive(Serialize)]
    struct Report<'a> {
        files: &'a [FileReport],
    }
    output.print(|| text_report(&reports), &Report { files: &reports })?;
    let stale: Vec<&FileReport> = reports
        .iter()
        .filter(|r| matches!(r.status, Status::Stale | Status::Missing))
        .collect();
    if !stale.is_empty() {
        let names: Vec<String> = stale
            .iter()
            .map(|r| r.output.clone().unwrap_or_default())
            .collect();
        bail!(
            "generated code is stale: {}; regenerate it with the same command without --check",
            names.join(", ")
        );
    }
    Ok(())
}

fn text_report(reports: &[FileReport]) -> String {
    reports
        .iter()
        .map(|r| {
            let status = match r.status {
                Status::Written => "wrote",
                Status::Unchanged => "unchanged",
                Status::UpToDate => "up to date",
                Status::Stale => "STALE",
                Status::Missing => "MISSING",
                Status::Printed => "printed",
            };
            format!(
                "{status:>10}  {}  (from {})",
                r.output.as_deref().unwrap_or("-"),
                r.widl
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Writes `code` to `path` (creating its directory) unless it already holds exactly that.
fn write_file(path: &Path, code: &str) -> anyhow::Result<Status> {
    if std::fs::read_to_string(path).is_ok_and(|old| old == code) {
        return Ok(Status::Unchanged);
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("failed to create output directory {}", dir.display()))?;
    }
    std::fs::write(path, code).with_context(|| format!("failed to write {}", path.display()))?;
    Ok(Status::Written)
}

/// Compares `path` with `code`.
fn check_file(path: &Path, code: &str) -> anyhow::Result<Status> {
    match std::fs::read_to_string(path) {
        Ok(existing) if existing == code => Ok(Status::UpToDate),
        Ok(_) => Ok(Status::Stale),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Status::Missing),
        Err(e) => Err(e).with_context(|| format!("failed to read {}", path.display())),
    }
}
