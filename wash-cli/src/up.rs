//! `wash up`: run a host in this process and deploy an app manifest onto it.
//!
//! Standalone by default (no NATS: the built-in HTTP server and key-value providers run in
//! process, links come from the manifest). `--nats-url` joins a lattice instead, and
//! `--nats-server` starts a local nats-server (JetStream on) first and joins that.
//! Unsigned actor modules named by the manifest are signed on the way with keys from the
//! keys directory (generated on first use), with the manifest's capabilities and call
//! alias, so a fresh checkout runs without a separate signing step.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use nimbus_app::{Builtin, Manifest};
use nimbus_core::claims::{self, ActorClaimsParams};
use nimbus_core::keys::{KeyKind, KeyPair};
use nimbus_core::link::LinkDefinition;
use nimbus_lattice::{Host, NatsConfig, ProviderFactory, TlsConfig};
use nimbus_provider_httpserver::HttpServerProvider;
use nimbus_provider_keyvalue::KeyValueProvider;
use nimbus_provider_sdk::Provider;
use serde::Serialize;

use crate::keys;
use crate::lattice_auth::{LatticeDir, Role};
use crate::output::OutputFormat;

/// The manifest `wash up` deploys when none is named and it exists.
pub const DEFAULT_MANIFEST: &str = "app.yaml";

/// Arguments of `wash up`.
#[derive(Debug, clap::Args)]
pub struct UpArgs {
    /// App manifest to deploy (default: ./app.yaml when it exists; otherwise an empty host).
    pub manifest: Option<PathBuf>,
    /// Join the lattice at this NATS URL instead of running standalone.
    #[arg(long, env = "WASH_NATS_URL")]
    pub nats_url: Option<String>,
    /// Start a local nats-server (JetStream on) on this port and join it.
    /// (`--nats-url` / `WASH_NATS_URL` may name that same server, so an exported
    /// `WASH_NATS_URL` does not get in the way.)
    #[arg(long, value_name = "PORT", num_args = 0..=1, default_missing_value = "4222")]
    pub nats_server: Option<u16>,
    /// Where the nats-server started by `--nats-server` keeps JetStream (the lattice's
    /// links, deployed apps and modules, `backend=nats` key-value data), kept across
    /// restarts; default: `$WASH_NATS_STORE`, else `~/.wash/lattices/LATTICE/jetstream`
    /// (next to the keys in `~/.wash/keys`).
    #[arg(long, value_name = "DIR", requires = "nats_server")]
    pub nats_store: Option<PathBuf>,
    /// Start the nats-server of `--nats-server` without authentication: anyone who
    /// reaches its port can then read and drive the lattice. By default it runs with the
    /// lattice's credentials from `wash lattice init` (made now if this machine has none).
    #[arg(long, requires = "nats_server")]
    pub no_nats_auth: bool,
    /// NATS credentials of this host with `--nats-url` (a host's: `wash lattice init`
    /// writes host.creds; default: the lattice's host.creds when this machine has it).
    /// With `--nats-server` the lattice's host.creds are used.
    #[arg(long, env = "WASH_NATS_CREDS", value_name = "FILE")]
    pub creds: Option<PathBuf>,
    /// NATS credentials handed to the provider processes this host starts (default: the
    /// lattice's provider.creds, or per-provider ones this machine issues; else the
    /// host's own).
    #[arg(long, env = "WASH_PROVIDER_CREDS", value_name = "FILE")]
    pub provider_creds: Option<PathBuf>,
    /// PEM file of the CA the NATS server's certificate chains to (default: the lattice's
    /// tls/ca.pem from `wash lattice init --tls`, when there is one).
    #[arg(long, env = "WASH_NATS_TLS_CA", value_name = "FILE")]
    pub tls_ca: Option<PathBuf>,
    /// The lattice prefix (lattice mode).
    #[arg(long, default_value = "default", env = "WASH_LATTICE")]
    pub lattice: String,
    /// A host label, `KEY=VALUE`; repeatable.
    #[arg(long = "label", value_parser = parse_label)]
    pub labels: Vec<(String, String)>,
    /// Cluster seed (`SC...`) shared by the lattice's hosts to sign and trust invocations
    /// (default: the lattice's key in the keys directory, created on first use; see
    /// `wash lattice key`).
    #[arg(long, env = "WASH_CLUSTER_SEED", hide_env_values = true)]
    pub cluster_seed: Option<String>,
    /// Also trust invocations signed by this cluster public key (`C...`), e.g. another
    /// lattice's during a key change; repeatable, or comma-separated in the variable.
    #[arg(
        long = "cluster-issuer",
        env = "WASH_CLUSTER_ISSUERS",
        value_delimiter = ',',
        value_name = "PUBLIC_KEY"
    )]
    pub cluster_issuers: Vec<String>,
    /// Start only actors signed by this account public key (`A...`); repeatable, or
    /// comma-separated in the variable. Default: actors of any issuer whose signature
    /// verifies. Once given, actors of other issuers and unsigned ones are refused at
    /// start. `wash keys get ACCOUNT_NAME` prints your account's key.
    #[arg(
        long = "allowed-issuer",
        env = "WASH_ALLOWED_ISSUERS",
        value_delimiter = ',',
        value_name = "PUBLIC_KEY"
    )]
    pub allowed_issuers: Vec<String>,
    /// Sign invocations that leave this host (anti-forgery tokens, as 0.x providers
    /// require). Turn off (`--invocation-signing false`) on a lattice whose providers
    /// are all built with this project's SDK and whose NATS credentials keep strangers
    /// out: it saves two Ed25519 operations per remote call. See the README.
    #[arg(
        long,
        env = "WASH_INVOCATION_SIGNING",
        default_value_t = true,
        action = clap::ArgAction::Set,
        value_name = "BOOL"
    )]
    pub invocation_signing: bool,
    /// Keys directory for signing keys (default $WASH_KEYS or ~/.wash/keys).
    #[arg(long, env = "WASH_KEYS")]
    pub keys_dir: Option<PathBuf>,
    /// Deploy, print what runs, and stop again (for checking a manifest).
    #[arg(long)]
    pub dry_run: bool,
    /// Run the built-in providers as their own processes (the `nimbus-*-provider`
    /// binaries next to `wash`) over NATS instead of in this process. Lattice mode only.
    #[arg(long)]
    pub providers_out_of_process: bool,
    /// Seconds without an answer after which the reconciler declares a host lost and
    /// places its share of the apps elsewhere (lattice mode).
    #[arg(long, value_name = "SECS", default_value_t = 10.0, value_parser = parse_secs)]
    pub host_lost_after: f64,
    /// Do not run a reconciler next to this host (lattice mode); apps deployed with
    /// `wash app deploy` are then kept running only by other hosts' reconcilers.
    #[arg(long)]
    pub no_reconciler: bool,
    /// Serve Prometheus metrics at `http://ADDR/metrics` (e.g. `127.0.0.1:9090`; port 0
    /// picks a free one). Off by default: without it the host keeps no metrics.
    #[arg(long, env = "WASH_METRICS_ADDR", value_name = "ADDR")]
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// Serve the dashboard (a live web page of the host, or of the whole lattice in
    /// lattice mode) at ADDR (default 127.0.0.1:4000; port 0 picks a free one). Turns on
    /// the host's call metrics. Give it after the manifest: `wash up app.yaml --dashboard`.
    #[arg(
        long,
        env = "WASH_DASHBOARD",
        value_name = "ADDR",
        num_args = 0..=1,
        default_missing_value = nimbus_dashboard::DEFAULT_ADDR
    )]
    pub dashboard: Option<std::net::SocketAddr>,
}

fn parse_secs(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 && s <= 3600.0 => Ok(s),
        _ => Err(format!(
            "invalid duration `{text}`: give seconds between 0 and 3600"
        )),
    }
}

fn parse_label(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("invalid label `{text}`: write KEY=VALUE")),
    }
}

/// What `wash up` started, for text and JSON output.
#[derive(Debug, Serialize)]
struct UpReport {
    host_id: String,
    mode: String,
    lattice: String,
    /// The cluster public key this host signs with and trusts.
    cluster_key: String,
    /// Where that key came from (absent for a standalone host's throwaway key).
    cluster_key_source: Option<keys::KeySource>,
    /// The NATS credentials file this host connects with (absent: none).
    nats_credentials: Option<String>,
    app: Option<String>,
    actors: Vec<StartedActor>,
    providers: Vec<StartedProvider>,
    links: Vec<StartedLink>,
    urls: Vec<String>,
    /// Where the host serves Prometheus metrics (absent: metrics off).
    #[serde(skip_serializing_if = "Option::is_none")]
    metrics_url: Option<String>,
    /// Where the dashboard is served (absent: no `--dashboard`).
    #[serde(skip_serializing_if = "Option::is_none")]
    dashboard_url: Option<String>,
}

#[derive(Debug, Serialize)]
struct StartedActor {
    name: String,
    actor_id: String,
    instances: u32,
    signed_now: bool,
}

#[derive(Debug, Serialize)]
struct StartedProvider {
    name: String,
    provider_id: String,
    contract_id: String,
    link_name: String,
}

#[derive(Debug, Serialize)]
struct StartedLink {
    actor: String,
    provider: String,
    contract_id: String,
    values: BTreeMap<String, String>,
}

/// Runs `wash up` to completion (until Ctrl-C or SIGTERM, or right away with --dry-run).
pub fn run(args: UpArgs, output: OutputFormat) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    let result = runtime.block_on(async {
        // Spans over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT (or ..._TRACES_ENDPOINT) is set;
        // the providers this host starts inherit the variables.
        if nimbus_telemetry::install_from_env("nimbus-host")
            .context("failed to set up trace export; fix OTEL_EXPORTER_OTLP_ENDPOINT or unset it")?
        {
            tracing::info!("exporting traces over OTLP");
        }
        let result = up(args, output).await;
        nimbus_telemetry::flush(Duration::from_secs(2)).await;
        result
    });
    // Work still running after the host stopped (a provider process that does not
    // answer, a NATS reconnect loop) must not keep `wash up` alive.
    runtime.shutdown_timeout(Duration::from_secs(2));
    result
}

/// How long `wash up` waits for the host to stop before exiting anyway.
pub(crate) const STOP_TIMEOUT: Duration = Duration::from_secs(15);

async fn up(args: UpArgs, output: OutputFormat) -> anyhow::Result<()> {
    let manifest = match &args.manifest {
        Some(path) => Some(Manifest::load(path)?),
        None if Path::new(DEFAULT_MANIFEST).exists() => {
            Some(Manifest::load(Path::new(DEFAULT_MANIFEST))?)
        }
        None => None,
    };
    let keys_dir = keys::keys_dir(args.keys_dir.clone())?;
    let app = manifest.as_ref().map(|m| m.name.as_str()).unwrap_or("wash");

    if let (Some(port), Some(url)) = (args.nats_server, &args.nats_url)
        && !names_local_port(url, port)
    {
        bail!(
            "--nats-server {port} starts a server at nats://127.0.0.1:{port}, but --nats-url / WASH_NATS_URL says {url}; drop one of them (or make them agree)"
        );
    }
    // The lattice's NATS credentials (`wash lattice init`): a started nats-server runs
    // with them (made now on a fresh machine), and hosts here connect with them.
    let mut lattice_dir = None;
    let nats_server = match args.nats_server {
        Some(port) => {
            let store = nats_store_dir(args.nats_store.clone(), &args.lattice)?;
            if !args.no_nats_auth {
                let dir = ensure_lattice_auth(&args.lattice, &keys_dir, port, &store)?;
                dir.read_auth_conf()?;
                lattice_dir = Some(dir);
            }
            Some(LocalNatsServer::start(port, &store, lattice_dir.as_ref())?)
        }
        None => None,
    };
    let nats_url = match &nats_server {
        Some(server) => Some(server.url()),
        None => args.nats_url.clone(),
    };
    if nats_server.is_none() && nats_url.is_some() {
        lattice_dir = LatticeDir::of(&args.lattice)
            .ok()
            .filter(LatticeDir::is_initialised);
    }
    let nats_config = nats_url
        .as_ref()
        .map(|url| nats_config(url, &args, lattice_dir.as_ref(), nats_server.is_some()));

    // Bound first: a dashboard port in use is reported before anything starts.
    let dashboard_listener = match args.dashboard {
        Some(addr) => Some(crate::ui::bind(addr, "--dashboard").await?),
        None => None,
    };
    let mut builder = Host::builder()
        .lattice(args.lattice.clone())
        .collect_metrics(args.dashboard.is_some());
    if let Some(addr) = args.metrics_addr {
        builder = builder.metrics_addr(addr);
    }
    for (k, v) in &args.labels {
        builder = builder.label(k.clone(), v.clone());
    }
    if let Some(config) = &nats_config {
        builder = builder.nats(config.clone());
    }
    // One trust root per lattice: hosts and `wash` on this machine that join the same
    // lattice sign with (and trust) the lattice's stored key. Standalone hosts sign nothing
    // that leaves the process, so they keep a throwaway key and create no file.
    let explicit_seed = args.cluster_seed.as_ref().filter(|s| !s.trim().is_empty());
    let cluster = match (&nats_url, explicit_seed) {
        (Some(_), seed) => {
            let (seed, source) =
                crate::lattice::cluster_seed(seed.map(String::as_str), &keys_dir, &args.lattice)?;
            builder = builder.cluster_seed(seed);
            Some(source)
        }
        (None, Some(seed)) => {
            builder = builder.cluster_seed(seed.clone());
            Some(keys::KeySource::Given)
        }
        (None, None) => None,
    };
    builder = builder.sign_invocations(args.invocation_signing);
    for issuer in &args.cluster_issuers {
        let issuer = issuer.trim();
        nimbus_core::keys::parse_public_key_of_kind(issuer, KeyKind::Cluster).with_context(|| {
            format!("--cluster-issuer `{issuer}` is not a cluster public key (C...); `wash lattice key show` prints one")
        })?;
        builder = builder.cluster_issuer(issuer.to_string());
    }
    for issuer in args
        .allowed_issuers
        .iter()
        .map(|i| i.trim())
        .filter(|i| !i.is_empty())
    {
        nimbus_core::keys::parse_public_key_of_kind(issuer, KeyKind::Account).with_context(|| {
            format!("--allowed-issuer `{issuer}` is not an account public key (A...); the issuer of a signed actor is shown by `wash claims inspect`")
        })?;
        builder = builder.allowed_issuer(issuer.to_string());
    }
    if args.providers_out_of_process && nats_url.is_none() {
        bail!("--providers-out-of-process needs a lattice: add --nats-url URL or --nats-server");
    }
    // Provider processes get credentials scoped to their own subjects, when this
    // machine holds the lattice's account key.
    let provider_creds = |key: &KeyPair| -> anyhow::Result<()> {
        if let Some(dir) = lattice_dir
            .as_ref()
            .filter(|_| args.provider_creds.is_none())
        {
            crate::lattice_auth::issue_provider_creds(
                dir,
                &keys_dir,
                &args.lattice,
                &key.public_key(),
            )?;
        }
        Ok(())
    };
    // The built-in providers, available to `wash ctl start provider builtin:...` too.
    for builtin in Builtin::ALL {
        let name = builtin.provider_ref();
        let key = provider_key(&keys_dir, app, &name)?;
        if args.providers_out_of_process {
            provider_creds(&key)?;
        }
        builder = if args.providers_out_of_process {
            builder.provider_executable(
                name,
                key.public_key(),
                builtin.contract_id(),
                provider_binary(builtin)?,
            )
        } else {
            builder.provider_factory(name, key.public_key(), factory(builtin))
        };
    }
    let mut planned_providers = Vec::new();
    if let Some(m) = &manifest {
        for p in &m.providers {
            let key = provider_key(&keys_dir, app, &p.name)?;
            let contract = p
                .contract_id()
                .context("a provider without a contract passed validation")?
                .to_string();
            builder = match (p.builtin, &p.path) {
                (Some(b), _) => {
                    builder.provider_factory(p.name.clone(), key.public_key(), factory(b))
                }
                (None, Some(path)) => {
                    if nats_url.is_some() {
                        provider_creds(&key)?;
                    }
                    builder.provider_executable(
                        p.name.clone(),
                        key.public_key(),
                        contract.clone(),
                        path.clone(),
                    )
                }
                (None, None) => bail!("provider `{}` says neither builtin nor path", p.name),
            };
            planned_providers.push(StartedProvider {
                name: p.name.clone(),
                provider_id: key.public_key(),
                contract_id: contract,
                link_name: p.link_name.clone(),
            });
        }
    }
    let host = Arc::new(builder.build().await.context("failed to start the host")?);
    let dashboard = dashboard_listener.map(|listener| crate::ui::serve_for_host(listener, &host));

    let mut report = UpReport {
        host_id: host.id().to_string(),
        mode: if nats_url.is_some() {
            "lattice"
        } else {
            "standalone"
        }
        .to_string(),
        lattice: host.lattice().to_string(),
        cluster_key: host.cluster_public_key(),
        cluster_key_source: cluster,
        nats_credentials: nats_config
            .as_ref()
            .and_then(|n| n.credentials_file.as_ref())
            .map(|p| p.display().to_string()),
        app: manifest.as_ref().map(|m| m.name.clone()),
        actors: Vec::new(),
        providers: Vec::new(),
        links: Vec::new(),
        urls: Vec::new(),
        metrics_url: host
            .metrics_addr()
            .map(|addr| format!("http://{addr}/metrics")),
        dashboard_url: dashboard.as_ref().map(nimbus_dashboard::Dashboard::url),
    };

    let deployed = match &manifest {
        Some(m) => deploy(&host, m, &keys_dir, planned_providers, &mut report).await,
        None => Ok(()),
    };
    if let Err(e) = deployed {
        let _ = host.stop().await;
        return Err(e);
    }
    let reconciler = match (&nats_config, args.no_reconciler) {
        (Some(nats), false) => match start_reconciler(nats, &host, args.host_lost_after).await {
            Ok(handle) => Some(handle),
            Err(e) => {
                let _ = host.stop().await;
                return Err(e);
            }
        },
        _ => None,
    };

    output.print(|| report_text(&report, nats_url.as_deref()), &report)?;
    if !args.dry_run {
        wait_for_shutdown().await;
        eprintln!("stopping host {} ...", report.host_id);
    }
    // The reconciler first: it gives up its lease, so another host's takes over at once.
    if let Some(reconciler) = reconciler
        && tokio::time::timeout(STOP_TIMEOUT, reconciler.stop())
            .await
            .is_err()
    {
        eprintln!("warning: the reconciler did not stop within {STOP_TIMEOUT:?}");
    }
    tokio::select! {
        stopped = tokio::time::timeout(STOP_TIMEOUT, host.stop()) => match stopped {
            Ok(result) => result.context("failed to stop the host cleanly")?,
            Err(_) => eprintln!(
                "warning: the host did not stop within {STOP_TIMEOUT:?}; exiting anyway"
            ),
        },
        () = wait_for_shutdown(), if !args.dry_run => {
            eprintln!("second interrupt: exiting without waiting for the host");
        }
    }
    drop(dashboard);
    drop(nats_server);
    Ok(())
}

/// Starts the reconciler that keeps `wash app deploy`ed apps running, on its own NATS
/// connection (a slow reconcile round never delays the host's traffic).
async fn start_reconciler(
    nats: &NatsConfig,
    host: &Host,
    host_lost_after: f64,
) -> anyhow::Result<nimbus_deploy::ReconcilerHandle> {
    let url = nats.urls.join(",");
    let mut options = async_nats::ConnectOptions::new();
    if let Some(path) = &nats.credentials_file {
        options = options.credentials_file(path).await.with_context(|| {
            format!(
                "failed to read the NATS credentials file {}",
                path.display()
            )
        })?;
    }
    if let Some(tls) = &nats.tls {
        options = options.require_tls(tls.required);
        for root in &tls.root_certificates {
            options = options.add_root_certificates(root.clone());
        }
    }
    let nats = options
        .name(format!("nimbus reconciler {}", host.id()))
        .connect(nats.urls.as_slice())
        .await
        .with_context(|| format!("failed to connect the reconciler to NATS at {url}"))?;
    let mut config = nimbus_deploy::ReconcilerConfig::new(host.lattice(), host.id());
    config.host_lost_after = Duration::from_secs_f64(host_lost_after);
    nimbus_deploy::start(nats, config).await.context(
        "failed to start the reconciler (pass --no-reconciler to run the host without one)",
    )
}

async fn deploy(
    host: &Host,
    manifest: &Manifest,
    keys_dir: &Path,
    providers: Vec<StartedProvider>,
    report: &mut UpReport,
) -> anyhow::Result<()> {
    for (spec, planned) in manifest.providers.iter().zip(providers) {
        host.launch_provider(&spec.name, &spec.link_name, spec.config_json())
            .await
            .with_context(|| format!("failed to start provider `{}`", spec.name))?;
        report.providers.push(planned);
    }

    let mut actor_ids = BTreeMap::new();
    for spec in &manifest.actors {
        let module = std::fs::read(&spec.path).with_context(|| {
            format!(
                "failed to read actor `{}` from {} (build the actors first: scripts/build-actors.sh)",
                spec.name,
                spec.path.display()
            )
        })?;
        let (module, signed_now) = sign_if_unsigned(module, spec, &manifest.name, keys_dir)?;
        let instances = u16::try_from(spec.instances).unwrap_or(u16::MAX);
        let max_instances = spec
            .max_instances
            .map(|max| u16::try_from(max).unwrap_or(u16::MAX));
        let actor_id = host
            .start_actor_with_max(module, instances, max_instances)
            .await
            .with_context(|| format!("failed to start actor `{}`", spec.name))?;
        actor_ids.insert(spec.name.clone(), actor_id.clone());
        report.actors.push(StartedActor {
            name: spec.name.clone(),
            actor_id,
            instances: spec.instances,
            signed_now,
        });
    }

    for link in &manifest.links {
        let actor_id = actor_ids
            .get(&link.actor)
            .with_context(|| format!("link names unknown actor `{}`", link.actor))?;
        let provider = report
            .providers
            .iter()
            .find(|p| p.name == link.provider)
            .with_context(|| format!("link names unknown provider `{}`", link.provider))?;
        let values = link
            .values
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        host.put_link(LinkDefinition::new(
            actor_id.clone(),
            provider.provider_id.clone(),
            provider.link_name.clone(),
            provider.contract_id.clone(),
            values,
        ))
        .await
        .with_context(|| {
            format!(
                "failed to link actor `{}` to provider `{}`",
                link.actor, link.provider
            )
        })?;
        if provider.contract_id == Builtin::Httpserver.contract_id() {
            report.urls.push(http_url(&link.values));
        }
        report.links.push(StartedLink {
            actor: link.actor.clone(),
            provider: link.provider.clone(),
            contract_id: provider.contract_id.clone(),
            values: link.values.clone(),
        });
    }
    Ok(())
}

/// Signs a module that carries no claims with the app's keys, the manifest's capabilities
/// and call alias; a signed module is used as it is.
pub(crate) fn sign_if_unsigned(
    module: Vec<u8>,
    spec: &nimbus_app::ActorSpec,
    app: &str,
    keys_dir: &Path,
) -> anyhow::Result<(Vec<u8>, bool)> {
    let existing = claims::extract_token(&module)
        .with_context(|| format!("failed to read the claims of actor `{}`", spec.name))?;
    if existing.is_some() {
        return Ok((module, false));
    }
    let (account, _) = keys::load_or_generate(
        keys_dir,
        &format!("{}_account", keys::sanitize_key_name(app)),
        KeyKind::Account,
    )?;
    let (subject, _) = keys::load_or_generate(
        keys_dir,
        &format!(
            "{}_{}_module",
            keys::sanitize_key_name(app),
            keys::sanitize_key_name(&spec.name)
        ),
        KeyKind::Module,
    )?;
    let params = ActorClaimsParams {
        name: Some(spec.name.clone()),
        caps: Some(spec.capabilities.clone()),
        call_alias: spec.call_alias.clone(),
        ver: Some(env!("CARGO_PKG_VERSION").to_string()),
        rev: Some(0),
        ..ActorClaimsParams::default()
    };
    let signed = claims::sign_actor(&module, &params, &account, &subject)
        .with_context(|| format!("failed to sign actor `{}`", spec.name))?;
    Ok((signed, true))
}

fn provider_key(keys_dir: &Path, app: &str, name: &str) -> anyhow::Result<KeyPair> {
    let (key, _) = keys::load_or_generate(
        keys_dir,
        &format!(
            "{}_{}_service",
            keys::sanitize_key_name(app),
            keys::sanitize_key_name(name)
        ),
        KeyKind::Service,
    )?;
    Ok(key)
}

/// The out-of-process binary of a built-in provider: next to the running `wash`.
fn provider_binary(builtin: Builtin) -> anyhow::Result<PathBuf> {
    let name = format!("nimbus-{}-provider", builtin.name());
    let exe = std::env::current_exe().context("failed to find the wash executable")?;
    let path = exe.with_file_name(&name);
    if !path.is_file() {
        bail!(
            "provider binary {} not found; build it with `cargo build -p nimbus-provider-{}`",
            path.display(),
            builtin.name()
        );
    }
    Ok(path)
}

pub(crate) fn factory(builtin: Builtin) -> ProviderFactory {
    match builtin {
        Builtin::Httpserver => {
            Arc::new(|| Arc::new(HttpServerProvider::new()) as Arc<dyn Provider>)
        }
        Builtin::Keyvalue => Arc::new(|| Arc::new(KeyValueProvider::new()) as Arc<dyn Provider>),
    }
}

/// The URL an HTTP server link listens on, from its values (as the provider reads them).
pub(crate) fn http_url(values: &BTreeMap<String, String>) -> String {
    let map = values.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    match nimbus_provider_httpserver::ServerSettings::from_link_values(&map) {
        Ok(settings) => {
            let addr = settings.address;
            if addr.ip().is_unspecified() {
                format!("http://127.0.0.1:{}/", addr.port())
            } else {
                format!("http://{addr}/")
            }
        }
        Err(e) => format!("(invalid link values: {e})"),
    }
}

fn report_text(report: &UpReport, nats_url: Option<&str>) -> String {
    let mut text = match nats_url {
        Some(url) => format!(
            "host {} joined lattice `{}` at {url}\ncluster key {} ({})",
            report.host_id,
            report.lattice,
            report.cluster_key,
            report
                .cluster_key_source
                .as_ref()
                .map(keys::KeySource::describe)
                .unwrap_or_default()
        ),
        None => format!("host {} running standalone (no NATS)", report.host_id),
    };
    if let Some(creds) = &report.nats_credentials {
        text.push_str(&format!("\nNATS credentials {creds}"));
    }
    if let Some(app) = &report.app {
        text.push_str(&format!("\napp `{app}` deployed:"));
    }
    for a in &report.actors {
        text.push_str(&format!(
            "\n  actor    {:<12} {} x{}{}",
            a.name,
            a.actor_id,
            a.instances,
            if a.signed_now { " (signed now)" } else { "" }
        ));
    }
    for p in &report.providers {
        text.push_str(&format!(
            "\n  provider {:<12} {} {} ({})",
            p.name, p.provider_id, p.contract_id, p.link_name
        ));
    }
    for l in &report.links {
        text.push_str(&format!(
            "\n  link     {} -> {} ({})",
            l.actor, l.provider, l.contract_id
        ));
    }
    for url in &report.urls {
        text.push_str(&format!("\nlistening on {url}"));
    }
    if let Some(url) = &report.metrics_url {
        text.push_str(&format!("\nmetrics at {url}"));
    }
    if let Some(url) = &report.dashboard_url {
        text.push_str(&format!("\ndashboard at {url}"));
    }
    text.push_str("\nready; press Ctrl-C to stop");
    text
}

/// Returns on Ctrl-C (SIGINT) or SIGTERM.
pub(crate) async fn wait_for_shutdown() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Whether `url` names the local server on `port` (`nats://127.0.0.1:PORT`, `localhost`).
fn names_local_port(url: &str, port: u16) -> bool {
    let rest = url
        .strip_prefix("nats://")
        .unwrap_or(url)
        .trim_end_matches('/');
    let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    match rest.rsplit_once(':') {
        Some((host, p)) => {
            p.parse::<u16>() == Ok(port) && matches!(host, "127.0.0.1" | "localhost" | "0.0.0.0")
        }
        None => false,
    }
}

/// The environment variable naming the JetStream directory of `wash up --nats-server`
/// (what `--nats-store` sets; the flag wins).
pub const NATS_STORE_ENV: &str = "WASH_NATS_STORE";

/// The JetStream directory of the nats-server `wash up --nats-server` starts for
/// `lattice`: `flag` (`--nats-store`), else `$WASH_NATS_STORE`, else
/// `~/.wash/lattices/{lattice}/jetstream`. The default is per lattice and lasts, so the
/// lattice's bucket (links, claims, deployed apps), its module store and `backend=nats`
/// key-value data are there again after a restart.
pub(crate) fn nats_store_dir(flag: Option<PathBuf>, lattice: &str) -> anyhow::Result<PathBuf> {
    let given = flag
        .or_else(|| std::env::var_os(NATS_STORE_ENV).map(PathBuf::from))
        .filter(|d| !d.as_os_str().is_empty());
    if let Some(dir) = given {
        return Ok(dir);
    }
    if lattice.is_empty()
        || lattice.starts_with('.')
        || lattice.contains(['/', '\\'])
        || lattice.chars().any(char::is_control)
    {
        bail!(
            "lattice name `{lattice}` cannot name a directory for the nats-server's JetStream store; give one with --nats-store DIR (or {NATS_STORE_ENV})"
        );
    }
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty()).with_context(|| {
        format!(
            "failed to find a directory for the nats-server's JetStream store: set HOME, or give --nats-store DIR (or {NATS_STORE_ENV})"
        )
    })?;
    Ok(PathBuf::from(home)
        .join(".wash")
        .join("lattices")
        .join(lattice)
        .join("jetstream"))
}

/// The connection settings of a host joining `url`: the host credentials (`--creds`, or
/// the lattice's host.creds), what its provider processes get, and the TLS CA.
fn nats_config(
    url: &str,
    args: &UpArgs,
    lattice_dir: Option<&LatticeDir>,
    own_server: bool,
) -> NatsConfig {
    let files = NatsFiles {
        creds: args.creds.clone(),
        provider_creds: args.provider_creds.clone(),
        tls_ca: args.tls_ca.clone(),
    };
    host_nats_config(url, &files, lattice_dir, own_server)
}

/// The NATS files a host command was given (`--creds`, `--provider-creds`, `--tls-ca`).
pub(crate) struct NatsFiles {
    /// The host's credentials.
    pub creds: Option<PathBuf>,
    /// What provider processes get.
    pub provider_creds: Option<PathBuf>,
    /// The CA of the server's certificate.
    pub tls_ca: Option<PathBuf>,
}

/// [`nats_config`] for any command that runs a host (`wash up`, `wash dev`): the given
/// files, else the lattice's.
pub(crate) fn host_nats_config(
    url: &str,
    args: &NatsFiles,
    lattice_dir: Option<&LatticeDir>,
    own_server: bool,
) -> NatsConfig {
    let given = |p: &Option<PathBuf>| p.clone().filter(|p| !p.as_os_str().is_empty());
    let of_lattice = |role| {
        lattice_dir
            .map(|d| d.creds(role))
            .filter(|p: &PathBuf| p.is_file())
    };
    let mut nats = NatsConfig::url(url.to_string());
    nats.credentials_file = if own_server {
        of_lattice(Role::Host)
    } else {
        given(&args.creds).or_else(|| of_lattice(Role::Host))
    };
    nats.provider_credentials_file =
        given(&args.provider_creds).or_else(|| of_lattice(Role::Provider));
    nats.provider_credentials_dir = lattice_dir
        .filter(|_| args.provider_creds.is_none())
        .map(LatticeDir::providers_dir);
    let tls_ca = given(&args.tls_ca).or_else(|| lattice_dir.and_then(LatticeDir::tls_ca));
    nats.tls = tls_ca.map(|ca| TlsConfig {
        // A lattice made with `--tls` serves TLS only; providers are told so.
        required: true,
        root_certificates: vec![ca],
        client_certificate: None,
    });
    nats
}

/// The lattice's directory with its NATS credentials, made now (as `wash lattice init`
/// would, without TLS) if this machine has none yet.
fn ensure_lattice_auth(
    lattice: &str,
    keys_dir: &Path,
    port: u16,
    store: &Path,
) -> anyhow::Result<LatticeDir> {
    let dir = LatticeDir::of(lattice).context(
        "failed to find the lattice's credentials directory (or pass --no-nats-auth to start the nats-server without authentication)",
    )?;
    if !dir.is_initialised() {
        let report = crate::lattice_auth::init(&crate::lattice_auth::InitOptions {
            lattice: lattice.to_string(),
            keys_dir: keys_dir.to_path_buf(),
            dir: dir.clone(),
            listen_host: "127.0.0.1".into(),
            port,
            store_dir: store.to_path_buf(),
            tls_names: None,
            force: false,
        })?;
        eprintln!(
            "lattice `{lattice}` had no NATS credentials on this machine: made them in {} (as `wash lattice init {lattice}` does); `wash` commands of the lattice here use its wash.creds",
            report.dir
        );
    }
    Ok(dir)
}

/// A nats-server child process started by `wash up --nats-server`, killed on drop.
struct LocalNatsServer {
    child: Child,
    port: u16,
    /// The configuration and pid files written for it, removed when it stops.
    written: Vec<PathBuf>,
    /// Holds the configuration file of an open server (the JetStream data lives
    /// elsewhere).
    _config_dir: Option<tempfile::TempDir>,
}

impl LocalNatsServer {
    /// Starts nats-server on `port` with JetStream in `jetstream_dir` (created if needed)
    /// and, when given, the auth of a lattice directory: its configuration is written
    /// there and includes `auth.conf` (operator, resolver, TLS), with a pid file, so that
    /// `wash lattice revoke` can have it reload the lattice's auth while it runs.
    fn start(port: u16, jetstream_dir: &Path, auth: Option<&LatticeDir>) -> anyhow::Result<Self> {
        let binary = find_nats_server().context(
            "failed to find nats-server: install it (`scripts/setup.sh lattice` does), name it with NATS_SERVER=PATH, or use --nats-url",
        )?;
        std::fs::create_dir_all(jetstream_dir).with_context(|| {
            format!(
                "failed to create the JetStream store directory {}",
                jetstream_dir.display()
            )
        })?;
        let jetstream = std::path::absolute(jetstream_dir)
            .with_context(|| format!("failed to resolve {}", jetstream_dir.display()))?;
        let mut text = durable_config(port, &jetstream);
        let mut written = Vec::new();
        let (config, config_dir) = match auth {
            Some(dir) => {
                let pid = dir.local_server_pid(port);
                text.push_str(&format!(
                    "pid_file: {:?}\ninclude \"{}\"\n",
                    pid.display().to_string(),
                    crate::lattice_auth::AUTH_CONF
                ));
                written.push(pid);
                (dir.local_server_conf(port), None)
            }
            None => {
                let config_dir = tempfile::tempdir()
                    .context("failed to create a directory for the nats-server configuration")?;
                (config_dir.path().join("nats-server.conf"), Some(config_dir))
            }
        };
        std::fs::write(&config, text)
            .with_context(|| format!("failed to write {}", config.display()))?;
        written.push(config.clone());
        let child = Command::new(&binary)
            .arg("-c")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("failed to start {}", binary.display()))?;
        let mut server = LocalNatsServer {
            child,
            port,
            written,
            _config_dir: config_dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                bail!("nats-server exited with {status}; is port {port} already in use?");
            }
            if Instant::now() > deadline {
                bail!("nats-server did not listen on port {port} within 10 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!(
            "started nats-server on {} (JetStream in {}; {})",
            server.url(),
            jetstream.display(),
            if auth.is_some() {
                "clients need the lattice's credentials"
            } else {
                "no authentication"
            }
        );
        Ok(server)
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for LocalNatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for path in &self.written {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A nats-server configuration whose JetStream writes are on disk before they are
/// acknowledged (`sync_interval: always`; the default flushes every two minutes, so a
/// crash could lose acknowledged deploys, links and leases).
pub(crate) fn durable_config(port: u16, store_dir: &Path) -> String {
    format!(
        "listen: \"127.0.0.1:{port}\"\njetstream {{\n  store_dir: {:?}\n  sync_interval: always\n}}\n",
        store_dir.display().to_string()
    )
}

/// The nats-server binary: `$NATS_SERVER` if set, else the first on `PATH`, else
/// `~/.local/bin/nats-server` (where `scripts/setup.sh` installs it).
fn find_nats_server() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("NATS_SERVER").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path)).filter(|p| p.is_file());
    }
    let home = std::env::var_os("HOME").map(PathBuf::from);
    std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("nats-server"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
        .into_iter()
        .chain(home.map(|h| h.join(".local/bin/nats-server")))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nats_url_naming_the_started_server_agrees_with_nats_server() {
        assert!(names_local_port("nats://127.0.0.1:4222", 4222));
        assert!(names_local_port("nats://localhost:4222/", 4222));
        assert!(names_local_port("nats://user:pw@127.0.0.1:4222", 4222));
        assert!(!names_local_port("nats://127.0.0.1:4223", 4222));
        assert!(!names_local_port("nats://nats.example:4222", 4222));
        assert!(!names_local_port("garbage", 4222));
    }

    #[test]
    fn the_nats_store_is_the_flag_else_per_lattice_under_the_home_directory() {
        // The flag wins over the environment and the default (no environment read then).
        let flag = PathBuf::from("/srv/js");
        assert_eq!(nats_store_dir(Some(flag.clone()), "default").unwrap(), flag);
        // Names that would leave the lattices directory are refused, naming the way out.
        if std::env::var_os(NATS_STORE_ENV).is_none() {
            for bad in ["", "..", ".hidden", "a/b", "a\\b"] {
                let err = nats_store_dir(None, bad).unwrap_err().to_string();
                assert!(err.contains("--nats-store"), "{bad:?}: {err}");
            }
            if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
                assert_eq!(
                    nats_store_dir(None, "petclinic").unwrap(),
                    PathBuf::from(home).join(".wash/lattices/petclinic/jetstream")
                );
            }
        }
    }
}
