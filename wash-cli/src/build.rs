//! `wash build`: builds the project of the nearest `nimbus.toml` (see `wash new`). An actor
//! is built for its wasm target in release mode and signed with the claims of the project
//! file (`wash claims sign`'s signing and key handling); a provider is built natively in
//! release mode. Cargo's progress and compiler messages go to stderr as cargo prints them;
//! stdout gets where the result is.

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};
use serde::Serialize;

use crate::claims::{self, SignArgs, SignOutput};
use crate::output::OutputFormat;
use crate::project::{self, PROJECT_FILE, ProjectFile};

/// Arguments of `wash build`.
#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// The project directory (default: the nearest directory with a nimbus.toml, from the
    /// current one up).
    #[arg(long, value_name = "DIR")]
    project: Option<PathBuf>,
    /// The keys directory. Default: `[keys] directory` of the project file, else
    /// `$WASH_KEYS`, else ~/.wash/keys.
    #[arg(long, value_name = "DIR")]
    keys_dir: Option<PathBuf>,
    /// Build only; do not sign the actor.
    #[arg(long)]
    no_sign: bool,
    /// Build with cargo's dev profile instead of `--release` (faster builds, larger and
    /// slower code).
    #[arg(long)]
    debug: bool,
}

/// How to build an actor: what `wash build`'s flags say, and what `wash dev` asks for.
#[derive(Debug, Clone, Default)]
pub(crate) struct ActorBuild {
    /// The keys directory (`--keys-dir`); else the project file's, else `$WASH_KEYS`.
    pub keys_dir: Option<PathBuf>,
    /// Build only, leave the module unsigned.
    pub no_sign: bool,
    /// Cargo's dev profile instead of `--release`.
    pub debug: bool,
}

/// What a build produced.
#[derive(Serialize)]
pub(crate) struct BuildOutput {
    kind: &'static str,
    name: String,
    project: String,
    /// The target the crate was built for.
    target: String,
    /// What cargo produced.
    artifact: String,
    /// The signed module (actors; absent with --no-sign), or the copied provider binary.
    pub output: String,
    /// The claims signed into the module (actors, unless --no-sign).
    #[serde(skip_serializing_if = "Option::is_none")]
    signed: Option<SignOutput>,
}

/// Runs `wash build`.
pub fn run(args: BuildArgs, output: OutputFormat) -> anyhow::Result<()> {
    let (dir, file) = project::locate(args.project.as_deref())?;
    let out = if file.actor.is_some() {
        let options = ActorBuild {
            keys_dir: args.keys_dir.clone(),
            no_sign: args.no_sign,
            debug: args.debug,
        };
        build_actor(&options, &dir, &file)?
    } else {
        build_provider(&args, &dir, &file)?
    };
    output.print(|| build_text(&out), &out)
}

fn build_text(out: &BuildOutput) -> String {
    match &out.signed {
        Some(signed) => format!(
            "Built {} `{}` for {}: {}\n{}",
            out.kind,
            out.name,
            out.target,
            out.output,
            claims::sign_text(signed)
        ),
        None => format!(
            "Built {} `{}` for {}: {}",
            out.kind, out.name, out.target, out.output
        ),
    }
}

/// Builds the actor of the project in `dir` for its wasm target and (unless `no_sign`)
/// signs it with the project file's claims and keys; cargo's messages go to stderr.
pub(crate) fn build_actor(
    args: &ActorBuild,
    dir: &Path,
    file: &ProjectFile,
) -> anyhow::Result<BuildOutput> {
    let Some(actor) = &file.actor else {
        bail!("not an actor project");
    };
    let target = file.target();
    check_target_installed(dir, target)?;
    let artifact = cargo_build(dir, Some(target), args.debug, "cdylib", ".wasm")?;
    let output_dir = dir.join(
        file.build
            .output_dir
            .as_deref()
            .unwrap_or(Path::new("build")),
    );
    if args.no_sign {
        return Ok(BuildOutput {
            kind: "actor",
            name: actor.name.clone(),
            project: dir.display().to_string(),
            target: target.to_string(),
            output: artifact.display().to_string(),
            artifact: artifact.display().to_string(),
            signed: None,
        });
    }
    std::fs::create_dir_all(&output_dir)
        .with_context(|| format!("failed to create {}", output_dir.display()))?;
    let stem = artifact
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "actor".to_string());
    let destination = output_dir.join(format!("{stem}_s.wasm"));
    let keys_dir = args
        .keys_dir
        .clone()
        .or_else(|| file.keys.directory.as_ref().map(|d| dir.join(d)))
        .or_else(|| std::env::var_os("WASH_KEYS").map(PathBuf::from));
    let sign = SignArgs {
        source: artifact.clone(),
        destination: Some(destination.clone()),
        name: actor.name.clone(),
        ver: actor.version.clone(),
        rev: actor.revision,
        caps: actor.capabilities.clone(),
        tags: actor.tags.clone(),
        call_alias: actor.call_alias.clone().filter(|a| !a.is_empty()),
        issuer: None,
        subject: None,
        expires_in: None,
        not_before: None,
        directory: keys_dir,
        disable_keygen: false,
        module_key_name: file.keys.module.clone(),
        account_key_name: file.keys.account.clone(),
    };
    let signed = claims::sign_module(&sign)?;
    Ok(BuildOutput {
        kind: "actor",
        name: actor.name.clone(),
        project: dir.display().to_string(),
        target: target.to_string(),
        artifact: artifact.display().to_string(),
        output: destination.display().to_string(),
        signed: Some(signed),
    })
}

fn build_provider(args: &BuildArgs, dir: &Path, file: &ProjectFile) -> anyhow::Result<BuildOutput> {
    let Some(provider) = &file.provider else {
        bail!("not a provider project");
    };
    let artifact = cargo_build(dir, None, args.debug, "bin", "")?;
    let output_dir = dir.join(
        file.build
            .output_dir
            .as_deref()
            .unwrap_or(Path::new("build")),
    );
    std::fs::create_dir_all(&output_dir)
        .with_context(|| format!("failed to create {}", output_dir.display()))?;
    let name = artifact
        .file_name()
        .context("cargo reported a binary without a file name")?;
    let destination = output_dir.join(name);
    std::fs::copy(&artifact, &destination).with_context(|| {
        format!(
            "failed to copy {} to {}",
            artifact.display(),
            destination.display()
        )
    })?;
    Ok(BuildOutput {
        kind: "provider",
        name: provider.name.clone(),
        project: dir.display().to_string(),
        target: "host".to_string(),
        artifact: artifact.display().to_string(),
        output: destination.display().to_string(),
        signed: None,
    })
}

/// Fails with the `rustup` command to run when the standard library of `target` is not
/// installed (asked of the `rustc` the project would use).
fn check_target_installed(dir: &Path, target: &str) -> anyhow::Result<()> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = Command::new(&rustc)
        .args(["--print", "target-libdir", "--target", target])
        .current_dir(dir)
        .stderr(Stdio::piped())
        .output()
        .with_context(|| {
            format!(
                "failed to run {}: is Rust installed? (https://rustup.rs)",
                rustc.to_string_lossy()
            )
        })?;
    if !out.status.success() {
        bail!(
            "rustc does not know the target `{target}` ([build] target in {PROJECT_FILE}): {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let libdir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let installed = std::fs::read_dir(&libdir)
        .map(|mut entries| entries.next().is_some())
        .unwrap_or(false);
    if !installed {
        bail!(
            "the Rust target `{target}` is not installed: run `rustup target add {target}` and build again"
        );
    }
    Ok(())
}

/// Runs `cargo build [--release]` in `dir` (for `target` if given), passing cargo's progress
/// and diagnostics through to stderr, and returns the file of the artifact of kind `kind`
/// whose name ends with `suffix`.
fn cargo_build(
    dir: &Path,
    target: Option<&str>,
    debug: bool,
    kind: &str,
    suffix: &str,
) -> anyhow::Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(&cargo);
    cmd.args(["build", "--message-format=json-render-diagnostics"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if !debug {
        cmd.arg("--release");
    }
    if let Some(target) = target {
        cmd.args(["--target", target]);
    }
    eprintln!(
        "wash build: cargo build{}{} in {}",
        if debug { "" } else { " --release" },
        target.map(|t| format!(" --target {t}")).unwrap_or_default(),
        dir.display()
    );
    let mut child = cmd
        .spawn()
        .with_context(|| format!("failed to run {}", cargo.to_string_lossy()))?;
    let stdout = child.stdout.take().context("cargo's stdout is not piped")?;
    let mut artifact = None;
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.context("failed to read cargo's output")?;
        let Ok(message) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if message["reason"] != "compiler-artifact" {
            continue;
        }
        let kinds = message["target"]["kind"].as_array();
        if !kinds.is_some_and(|k| k.iter().any(|v| v == kind)) {
            continue;
        }
        let file = message["executable"].as_str().or_else(|| {
            message["filenames"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|f| f.as_str())
                .find(|f| f.ends_with(suffix))
        });
        if let Some(file) = file {
            artifact = Some(PathBuf::from(file));
        }
    }
    let status = child.wait().context("failed to wait for cargo")?;
    if !status.success() {
        bail!(
            "cargo build failed in {} (see cargo's messages above)",
            dir.display()
        );
    }
    artifact.with_context(|| {
        format!(
            "cargo built no {kind} artifact in {}: is the crate type of Cargo.toml right?",
            dir.display()
        )
    })
}
