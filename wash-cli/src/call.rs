//! `wash call`: load an actor into an in-process runtime and call one operation.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use base64::Engine as _;
use nimbus_runtime::{ActorOptions, Runtime, RuntimeConfig};
use serde::Serialize;

use crate::output::OutputFormat;

/// Arguments of `wash call`.
#[derive(Debug, clap::Args)]
pub struct CallArgs {
    /// The operation to call, e.g. `Echo` or `HandleRequest`.
    operation: String,
    /// The actor module to load into an in-process runtime.
    #[arg(long, value_name = "FILE")]
    wasm: PathBuf,
    /// The request payload, as text.
    #[arg(long, conflicts_with = "data_file")]
    data: Option<String>,
    /// Read the request payload from a file (`-` for stdin).
    #[arg(long, value_name = "FILE")]
    data_file: Option<PathBuf>,
    /// Load the actor even if it is unsigned or its claims are invalid (development only).
    #[arg(long)]
    allow_unsigned: bool,
    /// Deadline of the call in milliseconds.
    #[arg(long, default_value_t = 2000)]
    timeout_ms: u64,
    /// Directory a WASI actor sees as `/` (none by default).
    #[arg(long, value_name = "DIR")]
    wasi_dir: Option<PathBuf>,
}

#[derive(Serialize)]
struct CallOutput<'a> {
    actor: &'a str,
    operation: &'a str,
    /// The response as text, if it is valid UTF-8.
    response: Option<&'a str>,
    /// The response bytes, base64 (standard alphabet).
    response_base64: String,
}

/// Runs `wash call`.
pub fn run(args: CallArgs, output: OutputFormat) -> anyhow::Result<()> {
    let payload = read_payload(&args)?;
    let module = std::fs::read(&args.wasm)
        .with_context(|| format!("failed to read actor module {}", args.wasm.display()))?;
    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: cache_dir(),
        max_total_instances: 8,
        default_call_timeout: Duration::from_millis(args.timeout_ms),
        ..RuntimeConfig::default()
    })
    .context("failed to start the wasm runtime")?;
    let actor = runtime
        .load_actor(
            &module,
            ActorOptions {
                max_instances: 1,
                wasi_dir: args.wasi_dir.clone(),
                allow_unsigned: args.allow_unsigned,
                ..ActorOptions::default()
            },
        )
        .with_context(|| {
            let hint = if args.allow_unsigned {
                ""
            } else {
                " (sign it with `wash claims sign`, or pass --allow-unsigned for development)"
            };
            format!("failed to load actor {}{hint}", args.wasm.display())
        })?;
    let response = actor
        .call(&args.operation, &payload)
        .with_context(|| format!("failed to call {} on {}", args.operation, actor.id()))?;
    match output {
        OutputFormat::Text => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(&response)
                .and_then(|()| stdout.flush())
                .context("failed to write the response to stdout")?;
        }
        OutputFormat::Json => output.print(
            String::new,
            &CallOutput {
                actor: actor.id(),
                operation: &args.operation,
                response: std::str::from_utf8(&response).ok(),
                response_base64: base64::engine::general_purpose::STANDARD.encode(&response),
            },
        )?,
    }
    Ok(())
}

fn read_payload(args: &CallArgs) -> anyhow::Result<Vec<u8>> {
    match (&args.data, &args.data_file) {
        (Some(text), None) => Ok(text.clone().into_bytes()),
        (None, Some(path)) if path.as_os_str() == "-" => {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes)
                .context("failed to read the payload from stdin")?;
            Ok(bytes)
        }
        (None, Some(path)) => std::fs::read(path)
            .with_context(|| format!("failed to read the payload file {}", path.display())),
        (None, None) => Ok(Vec::new()),
        (Some(_), Some(_)) => bail!("give either --data or --data-file, not both"),
    }
}

/// Compiled modules are cached under `$WASH_CACHE` or `~/.wash/cache`; with neither
/// available the cache is off.
fn cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("WASH_CACHE") {
        return Some(PathBuf::from(dir));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".wash").join("cache"))
}
