//! `wash call`: call one operation on an actor, either loaded into an in-process runtime
//! (`--wasm FILE OPERATION`) or wherever it runs in a lattice (`ACTOR OPERATION`, over
//! NATS, signed with the lattice's cluster seed).

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use base64::Engine as _;
use nimbus_ctl::CtlError;
use nimbus_runtime::{ActorOptions, Runtime, RuntimeConfig};
use serde::Serialize;

use crate::ctl::ConnectArgs;
use crate::output::OutputFormat;

/// Arguments of `wash call`: `wash call --wasm FILE OPERATION` runs the module here,
/// `wash call ACTOR OPERATION` calls it over the lattice.
#[derive(Debug, clap::Args)]
pub struct CallArgs {
    /// The actor's public key or call alias (lattice form); with --wasm, the operation.
    #[arg(value_name = "ACTOR")]
    first: String,
    /// The operation to call, e.g. `Echo` or `HandleRequest` (lattice form).
    #[arg(value_name = "OPERATION")]
    second: Option<String>,
    /// The actor module to load into an in-process runtime instead of calling the lattice.
    #[arg(long, value_name = "FILE")]
    wasm: Option<PathBuf>,
    /// The request payload, as text.
    #[arg(long, conflicts_with = "data_file")]
    data: Option<String>,
    /// Read the request payload from a file (`-` for stdin).
    #[arg(long, value_name = "FILE")]
    data_file: Option<PathBuf>,
    /// Load the actor even if it is unsigned or its claims are invalid (development only).
    #[arg(long, requires = "wasm")]
    allow_unsigned: bool,
    /// Deadline of the call in milliseconds.
    #[arg(long, default_value_t = 2000)]
    timeout_ms: u64,
    /// Directory a WASI actor sees as `/` (none by default).
    #[arg(long, value_name = "DIR", requires = "wasm")]
    wasi_dir: Option<PathBuf>,
    /// Cluster seed (`SC...`) the lattice's hosts trust, to sign the invocation with
    /// (default: the lattice's key in the keys directory; see `wash lattice key`).
    #[arg(
        long,
        value_name = "SEED",
        env = "WASH_CLUSTER_SEED",
        hide_env_values = true
    )]
    cluster_seed: Option<String>,
    /// Keys directory holding the lattice's cluster key (default $WASH_KEYS or ~/.wash/keys).
    #[arg(long, env = "WASH_KEYS")]
    keys_dir: Option<PathBuf>,
    #[command(flatten)]
    connect: ConnectArgs,
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
    let Some(wasm) = args.wasm.clone() else {
        let Some(operation) = args.second.clone() else {
            bail!(
                "give the actor and the operation (`wash call ACTOR OPERATION`), or --wasm FILE OPERATION to run a module here"
            );
        };
        return run_lattice(&args, &args.first, &operation, payload, output);
    };
    if let Some(extra) = &args.second {
        bail!(
            "with --wasm give only the operation (got `{}` and `{extra}`); drop --wasm to call actor `{}` over the lattice",
            args.first,
            args.first
        );
    }
    let operation = &args.first;
    let module = std::fs::read(&wasm)
        .with_context(|| format!("failed to read actor module {}", wasm.display()))?;
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
            format!("failed to load actor {}{hint}", wasm.display())
        })?;
    let response = actor
        .call_blocking(operation, &payload)
        .with_context(|| format!("failed to call {} on {}", operation, actor.id()))?;
    print_response(output, actor.id(), operation, &response)
}

/// The lattice form: resolve the actor (key or call alias), send a signed invocation on
/// its RPC subject, print the response.
fn run_lattice(
    args: &CallArgs,
    actor: &str,
    operation: &str,
    payload: Vec<u8>,
    output: OutputFormat,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    runtime.block_on(async {
        let ctl = args
            .connect
            .ctl_client(Duration::from_millis(args.timeout_ms))
            .await?;
        let failed = || {
            format!(
                "failed to call {operation} on {actor} over lattice `{}`",
                args.connect.lattice
            )
        };
        let keys_dir = crate::keys::keys_dir(args.keys_dir.clone())?;
        let (seed, source) = crate::lattice::cluster_seed(
            args.cluster_seed.as_deref(),
            &keys_dir,
            &args.connect.lattice,
        )?;
        let actor_id = ctl.resolve_actor(actor).await.with_context(failed)?;
        let response = match ctl
            .call_actor(&actor_id, operation, payload, Some(&seed))
            .await
        {
            Ok(response) => response,
            Err(e @ CtlError::Invocation { .. }) => {
                let public = nimbus_core::keys::KeyPair::from_seed(&seed)
                    .map(|k| k.public_key())
                    .unwrap_or_default();
                return Err(anyhow::Error::new(e).context(format!(
                    "{}; the call was signed with cluster key {public} ({})",
                    failed(),
                    source.describe()
                )));
            }
            Err(e) => return Err(anyhow::Error::new(e).context(failed())),
        };
        print_response(output, &actor_id, operation, &response)
    })
}

/// Raw bytes on stdout in text mode (so binary responses pass through), or one JSON
/// document with the response as text (when UTF-8) and base64.
fn print_response(
    output: OutputFormat,
    actor: &str,
    operation: &str,
    response: &[u8],
) -> anyhow::Result<()> {
    match output {
        OutputFormat::Text => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(response)
                .and_then(|()| stdout.flush())
                .context("failed to write the response to stdout")?;
        }
        OutputFormat::Json => output.print(
            String::new,
            &CallOutput {
                actor,
                operation,
                response: std::str::from_utf8(response).ok(),
                response_base64: base64::engine::general_purpose::STANDARD.encode(response),
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
