//! `wash dev`: the developer loop of an actor project (the `nimbus.toml` `wash new`
//! writes). It runs a host in this process (standalone by default, or joining a lattice
//! with `--nats-url`), starts the providers of the project file's `[dev]` section and
//! links them to the actor, builds and signs the actor as `wash build` does and starts it;
//! then it watches the sources and, on every change, rebuilds and swaps the running actor
//! in place.
//!
//! Decisions:
//! - Watching polls modification times and sizes every 300 ms (`src/**`, `Cargo.toml`,
//!   `build.rs`, `nimbus.toml`) instead of using a file-system notification crate: for a
//!   project of a few files it costs nothing measurable, behaves the same on every
//!   platform and file system (network mounts, containers), and keeps the dependency tree
//!   as it was. A change is built once the files stop changing for 100 ms (an editor's
//!   save of several files, a truncate-then-write, is one rebuild).
//! - The swap is `Host::update_actor`: the new module is loaded (compiled, first instance
//!   started) next to the old one, then replaces it in one step. A call takes its module
//!   when it starts, so calls in flight finish on the old code, calls after the swap get
//!   the new one, and none waits or fails. Rebuilds sign with the project's module key,
//!   so the actor keeps its public key; a module signed with another key (the project
//!   file's `[keys] module` changed) is started beside the old actor, the links move to
//!   it, and the old one is stopped after it drained. That fallback is not seamless: the
//!   HTTP server listens per actor, so its port is closed between the two links.
//! - A build that fails prints cargo's messages and leaves the running actor as it was.
//! - Actor logs (`__console_log`, WASI stdout/stderr) are the host's `actor` log target,
//!   which wash prints on stderr. The runtime has no `wasmcloud:logging` capability;
//!   `nimbus_actor::console_log` is the way to log.
//! - The HTTP server's port is checked before anything is built, so a port in use is
//!   reported at once, with the `--port` flag to choose another; so is `--dashboard`'s.
//! - `--dashboard` serves the dashboard (`nimbus-dashboard`, as `wash up --dashboard`
//!   does) for the host of the session, or the lattice it joined; traces go over OTLP
//!   when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, as with `wash up`.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, bail};
use nimbus_app::Builtin;
use nimbus_core::keys::{KeyKind, KeyPair};
use nimbus_core::link::LinkDefinition;
use nimbus_lattice::{Host, HostError};
use nimbus_provider_httpserver::ServerSettings;
use serde::Serialize;

use crate::build::{self, ActorBuild};
use crate::keys;
use crate::lattice_auth::LatticeDir;
use crate::output::OutputFormat;
use crate::project::{self, DEFAULT_DEV_PORT, DevProvider, PROJECT_FILE, ProjectFile};
use crate::up;

/// How often the sources are looked at.
const POLL_INTERVAL: Duration = Duration::from_millis(300);
/// How long the sources must stay unchanged before a build starts.
const SETTLE_INTERVAL: Duration = Duration::from_millis(100);
/// How long a started HTTP listener may take to accept connections.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(10);

/// Arguments of `wash dev`.
#[derive(Debug, clap::Args)]
pub struct DevArgs {
    /// The project directory (default: the nearest directory with a nimbus.toml, from the
    /// current one up).
    #[arg(long, value_name = "DIR")]
    project: Option<PathBuf>,
    /// The port the HTTP server serves the actor on (default: `[dev] port` of the project
    /// file, else 8080).
    #[arg(long, short, value_name = "PORT")]
    port: Option<u16>,
    /// Join the lattice at this NATS URL instead of running a standalone host.
    #[arg(long, env = "WASH_NATS_URL")]
    nats_url: Option<String>,
    /// NATS credentials of the host with `--nats-url` (default: the lattice's host.creds
    /// from `wash lattice init`, when this machine has it).
    #[arg(long, env = "WASH_NATS_CREDS", value_name = "FILE")]
    creds: Option<PathBuf>,
    /// PEM file of the CA the NATS server's certificate chains to (default: the lattice's
    /// tls/ca.pem, when there is one).
    #[arg(long, env = "WASH_NATS_TLS_CA", value_name = "FILE")]
    tls_ca: Option<PathBuf>,
    /// The lattice prefix (with `--nats-url`).
    #[arg(long, default_value = "default", env = "WASH_LATTICE")]
    lattice: String,
    /// Cluster seed (`SC...`) with `--nats-url` (default: the lattice's stored key).
    #[arg(long, env = "WASH_CLUSTER_SEED", hide_env_values = true)]
    cluster_seed: Option<String>,
    /// The keys directory. Default: `[keys] directory` of the project file, else
    /// `$WASH_KEYS`, else ~/.wash/keys.
    #[arg(long, value_name = "DIR")]
    keys_dir: Option<PathBuf>,
    /// Build with cargo's dev profile instead of `--release`.
    #[arg(long)]
    debug: bool,
    /// Also serve the dashboard (a live page of this host, or of the lattice with
    /// `--nats-url`) at ADDR (default 127.0.0.1:4000; port 0 picks a free one). Turns on
    /// the host's call metrics.
    #[arg(
        long,
        env = "WASH_DASHBOARD",
        value_name = "ADDR",
        num_args = 0..=1,
        default_missing_value = nimbus_dashboard::DEFAULT_ADDR
    )]
    dashboard: Option<SocketAddr>,
}

/// What `wash dev` started, for text and JSON output.
#[derive(Debug, Serialize)]
struct DevReport {
    project: String,
    actor: String,
    host_id: String,
    mode: &'static str,
    lattice: String,
    /// The lattice's NATS server (absent: standalone).
    #[serde(skip_serializing_if = "Option::is_none")]
    nats_url: Option<String>,
    providers: Vec<DevLink>,
    urls: Vec<String>,
    /// Where the dashboard is served (absent: no `--dashboard`).
    #[serde(skip_serializing_if = "Option::is_none")]
    dashboard_url: Option<String>,
}

/// A provider `wash dev` started and the link to it.
#[derive(Debug, Clone, Serialize)]
struct DevLink {
    /// `httpserver`, `keyvalue`, or the executable's path.
    provider: String,
    provider_id: String,
    contract_id: String,
    link_name: String,
    values: BTreeMap<String, String>,
}

/// One thing that happened in the loop, printed as a line (with `--output json`, one JSON
/// object per line after the report, tagged by `event`).
#[derive(Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum DevEvent {
    /// What the session runs (JSON only; the text form is [`report_text`]).
    Session(DevReport),
    /// The watcher runs.
    Watching { directory: String, serving: bool },
    /// The actor serves: from now on saves are swapped in.
    Ready,
    /// Files changed; a build starts.
    Rebuilding { changed: Vec<String> },
    /// The first good build runs.
    Started {
        actor_id: String,
        build_ms: u128,
        start_ms: u128,
    },
    /// A new build replaced the running one in place.
    Updated {
        actor_id: String,
        build_ms: u128,
        swap_ms: u128,
    },
    /// The module came with another key: started beside the old actor, which stopped.
    Replaced {
        old_actor_id: String,
        actor_id: String,
        build_ms: u128,
    },
    /// The build (or the swap) failed; what ran keeps running.
    Failed { error: String, serving: bool },
}

impl DevEvent {
    fn text(&self) -> String {
        match self {
            DevEvent::Session(report) => report_text(report),
            DevEvent::Watching { directory, serving } => {
                if *serving {
                    format!(
                        "watching {directory} (src/, Cargo.toml, {PROJECT_FILE}): save a change to rebuild and swap it in"
                    )
                } else {
                    format!("watching {directory}; waiting for a build that compiles")
                }
            }
            DevEvent::Ready => "ready; press Ctrl-C to stop".to_string(),
            DevEvent::Rebuilding { changed } => {
                format!("change in {}: rebuilding", changed.join(", "))
            }
            DevEvent::Started {
                actor_id,
                build_ms,
                start_ms,
            } => format!(
                "started actor {actor_id} (build {}, start {})",
                secs(*build_ms),
                secs(*start_ms)
            ),
            DevEvent::Updated {
                actor_id,
                build_ms,
                swap_ms,
            } => format!(
                "updated actor {actor_id} in place (build {}, swap {})",
                secs(*build_ms),
                secs(*swap_ms)
            ),
            DevEvent::Replaced {
                old_actor_id,
                actor_id,
                build_ms,
            } => format!(
                "the new build is signed with another module key: started actor {actor_id} and stopped {old_actor_id} (build {})",
                secs(*build_ms)
            ),
            DevEvent::Failed { error, serving } => format!(
                "error: {error}\n{}",
                if *serving {
                    "still serving the last good build; fix the error and save to rebuild"
                } else {
                    "no build runs yet; fix the error and save to rebuild"
                }
            ),
        }
    }

    fn print(&self, output: OutputFormat) {
        match output {
            OutputFormat::Json => match serde_json::to_string(self) {
                Ok(line) => println!("{line}"),
                Err(e) => eprintln!("failed to encode an event: {e}"),
            },
            _ => println!("{}", self.text()),
        }
    }
}

fn secs(ms: u128) -> String {
    format!("{:.2} s", ms as f64 / 1000.0)
}

/// Runs `wash dev` until Ctrl-C or SIGTERM.
pub fn run(args: DevArgs, output: OutputFormat) -> anyhow::Result<()> {
    let (dir, file) = project::locate(args.project.as_deref())?;
    if file.actor.is_none() {
        bail!(
            "{} is a provider project: `wash dev` runs an actor project (`wash new actor NAME`); build a provider with `wash build` and name it in an actor's [[dev.providers]] with `path`",
            dir.join(PROJECT_FILE).display()
        );
    }
    let plan = Plan::of(&file, &dir, args.port)?;
    if plan.needs_lattice() && args.nats_url.is_none() {
        bail!(
            "[[dev.providers]] names a provider executable: it talks to the host over NATS, so run `wash dev --nats-url URL` (e.g. against `wash up --nats-server`), or use a builtin"
        );
    }
    // Before anything is built: a port in use is reported at once.
    for addr in &plan.http_addresses {
        check_port_free(*addr)?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    let result = runtime.block_on(async {
        // Spans over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set, as `wash up` does.
        if nimbus_telemetry::install_from_env("nimbus-host")
            .context("failed to set up trace export; fix OTEL_EXPORTER_OTLP_ENDPOINT or unset it")?
        {
            tracing::info!("exporting traces over OTLP");
        }
        let result = dev(args, output, dir, file, plan).await;
        nimbus_telemetry::flush(Duration::from_secs(2)).await;
        result
    });
    runtime.shutdown_timeout(Duration::from_secs(2));
    result
}

/// The providers to start and the links to put, resolved from the project file.
struct Plan {
    providers: Vec<DevProvider>,
    /// The addresses the HTTP server links listen on.
    http_addresses: Vec<SocketAddr>,
}

impl Plan {
    fn of(file: &ProjectFile, dir: &Path, port_flag: Option<u16>) -> anyhow::Result<Plan> {
        let caps = file
            .actor
            .as_ref()
            .map(|a| a.capabilities.clone())
            .unwrap_or_default();
        let mut providers = match &file.dev.providers {
            Some(list) => list.clone(),
            None => {
                let (providers, missing) = DevProvider::defaults_for(&caps);
                for cap in missing {
                    eprintln!(
                        "warning: no built-in provider for {cap}: the actor's calls to it fail; name one in {PROJECT_FILE} under [[dev.providers]]"
                    );
                }
                providers
            }
        };
        let port = port_flag.or(file.dev.port).unwrap_or(DEFAULT_DEV_PORT);
        let mut http_addresses = Vec::new();
        for p in &mut providers {
            if let Some(path) = &p.path {
                p.path = Some(dir.join(path));
            }
            if p.builtin == Some(Builtin::Httpserver) {
                p.values.insert("port".to_string(), port.to_string());
                let values = p
                    .values
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let settings = ServerSettings::from_link_values(&values).with_context(|| {
                    format!("invalid values of the httpserver provider in {PROJECT_FILE} [dev]")
                })?;
                http_addresses.push(settings.address);
            }
            let contract = p.contract().unwrap_or_default().to_string();
            if !caps.contains(&contract) {
                eprintln!(
                    "warning: the actor does not claim {contract} ([actor] capabilities in {PROJECT_FILE}): the host refuses its calls to that provider"
                );
            }
        }
        Ok(Plan {
            providers,
            http_addresses,
        })
    }

    fn needs_lattice(&self) -> bool {
        self.providers.iter().any(|p| p.path.is_some())
    }
}

/// Fails naming the port and `--port` when `addr` cannot be bound.
fn check_port_free(addr: SocketAddr) -> anyhow::Result<()> {
    match std::net::TcpListener::bind(addr) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => bail!(
            "port {} is in use ({addr}): stop what listens there, or serve on another port with `wash dev --port PORT`",
            addr.port()
        ),
        Err(e) => Err(e).with_context(|| {
            format!("failed to listen on {addr}: choose another port with `wash dev --port PORT`")
        }),
    }
}

async fn dev(
    args: DevArgs,
    output: OutputFormat,
    dir: PathBuf,
    file: ProjectFile,
    plan: Plan,
) -> anyhow::Result<()> {
    // Bound first: a dashboard port in use is reported before anything is built.
    let dashboard_listener = match args.dashboard {
        Some(addr) => Some(crate::ui::bind(addr, "--dashboard").await?),
        None => None,
    };
    let keys_dir = keys::keys_dir(args.keys_dir.clone())?;
    let actor_name = file
        .actor
        .as_ref()
        .map(|a| a.name.clone())
        .unwrap_or_default();
    let mut builder = Host::builder()
        .lattice(args.lattice.clone())
        .collect_metrics(args.dashboard.is_some());
    let lattice_dir = args
        .nats_url
        .as_ref()
        .and_then(|_| LatticeDir::of(&args.lattice).ok())
        .filter(LatticeDir::is_initialised);
    if let Some(url) = &args.nats_url {
        let files = up::NatsFiles {
            creds: args.creds.clone(),
            provider_creds: None,
            tls_ca: args.tls_ca.clone(),
        };
        builder = builder.nats(up::host_nats_config(
            url,
            &files,
            lattice_dir.as_ref(),
            false,
        ));
        let explicit = args
            .cluster_seed
            .as_deref()
            .filter(|s| !s.trim().is_empty());
        let (seed, _) = crate::lattice::cluster_seed(explicit, &keys_dir, &args.lattice)?;
        builder = builder.cluster_seed(seed);
    }
    // Providers get throwaway keys: a dev session's links are deleted when it ends, so
    // nothing needs to find them again.
    let mut started = Vec::new();
    for (i, p) in plan.providers.iter().enumerate() {
        let key = KeyPair::generate(KeyKind::Service);
        let name = format!("dev-{i}");
        let (provider, contract) = match (p.builtin, &p.path) {
            (Some(b), _) => {
                builder = builder.provider_factory(name.clone(), key.public_key(), up::factory(b));
                (b.name().to_string(), b.contract_id().to_string())
            }
            (None, Some(path)) => {
                let contract = p.contract().unwrap_or_default().to_string();
                if let Some(dir) = &lattice_dir {
                    crate::lattice_auth::issue_provider_creds(
                        dir,
                        &keys_dir,
                        &args.lattice,
                        &key.public_key(),
                    )?;
                }
                builder = builder.provider_executable(
                    name.clone(),
                    key.public_key(),
                    contract.clone(),
                    path.clone(),
                );
                (path.display().to_string(), contract)
            }
            (None, None) => bail!("a [[dev.providers]] entry names no provider"),
        };
        started.push((
            name,
            DevLink {
                provider,
                provider_id: key.public_key(),
                contract_id: contract,
                link_name: p.link_name().to_string(),
                values: p.values.clone(),
            },
        ));
    }
    let host = Arc::new(builder.build().await.context("failed to start the host")?);
    let dashboard = dashboard_listener.map(|listener| crate::ui::serve_for_host(listener, &host));
    let mut session = Session {
        host,
        links: Vec::new(),
        actor_id: None,
        dashboard_url: dashboard.as_ref().map(nimbus_dashboard::Dashboard::url),
    };
    let result = session
        .run(&args, output, &dir, file, &actor_name, started)
        .await;
    drop(dashboard);
    session.shut_down().await;
    result
}

/// The running host and what `wash dev` put on it.
struct Session {
    host: Arc<Host>,
    links: Vec<DevLink>,
    /// The actor, once a build started.
    actor_id: Option<String>,
    /// Where `--dashboard` serves.
    dashboard_url: Option<String>,
}

impl Session {
    async fn run(
        &mut self,
        args: &DevArgs,
        output: OutputFormat,
        dir: &Path,
        file: ProjectFile,
        actor_name: &str,
        providers: Vec<(String, DevLink)>,
    ) -> anyhow::Result<()> {
        for (name, link) in providers {
            self.host
                .launch_provider(&name, &link.link_name, None)
                .await
                .with_context(|| format!("failed to start provider {}", link.provider))?;
            self.links.push(link);
        }
        let mode = if args.nats_url.is_some() {
            "lattice"
        } else {
            "standalone"
        };
        let report = DevReport {
            project: dir.display().to_string(),
            actor: actor_name.to_string(),
            host_id: self.host.id().to_string(),
            mode,
            lattice: self.host.lattice().to_string(),
            nats_url: args.nats_url.clone(),
            urls: self
                .links
                .iter()
                .filter(|l| l.contract_id == Builtin::Httpserver.contract_id())
                .map(|l| up::http_url(&l.values))
                .collect(),
            providers: self.links.clone(),
            dashboard_url: self.dashboard_url.clone(),
        };
        let options = ActorBuild {
            keys_dir: args
                .keys_dir
                .clone()
                .or_else(|| file.keys.directory.as_ref().map(|d| dir.join(d))),
            no_sign: false,
            debug: args.debug,
        };
        let shutdown = up::wait_for_shutdown();
        tokio::pin!(shutdown);

        let mut seen = Sources::scan(dir);
        // The first build; a failing one is reported and waited out like any other.
        tokio::select! {
            () = self.build_and_deploy(dir, &options, output) => {}
            () = &mut shutdown => return Ok(()),
        }
        match output {
            OutputFormat::Json => DevEvent::Session(report).print(output),
            _ => println!("{}", report_text(&report)),
        }
        DevEvent::Watching {
            directory: dir.display().to_string(),
            serving: self.actor_id.is_some(),
        }
        .print(output);
        if self.actor_id.is_some() {
            DevEvent::Ready.print(output);
        }
        loop {
            tokio::select! {
                () = tokio::time::sleep(POLL_INTERVAL) => {}
                () = &mut shutdown => break,
            }
            let now = Sources::scan(dir);
            if now == seen {
                continue;
            }
            // Wait until the files stop changing (one save may write several times).
            let mut settled = now;
            loop {
                tokio::time::sleep(SETTLE_INTERVAL).await;
                let again = Sources::scan(dir);
                if again == settled {
                    break;
                }
                settled = again;
            }
            let changed = seen.changed(&settled, dir);
            seen = settled;
            // The providers and links were set up from [dev] at the start.
            if changed.iter().any(|c| c == PROJECT_FILE)
                && project::load(dir).is_ok_and(|now| now.dev != file.dev)
            {
                eprintln!(
                    "warning: [dev] of {PROJECT_FILE} changed: restart wash dev to start and link the providers it lists now"
                );
            }
            DevEvent::Rebuilding { changed }.print(output);
            let had_actor = self.actor_id.is_some();
            tokio::select! {
                () = self.build_and_deploy(dir, &options, output) => {}
                () = &mut shutdown => break,
            }
            if !had_actor && self.actor_id.is_some() {
                DevEvent::Ready.print(output);
            }
        }
        eprintln!("stopping ...");
        Ok(())
    }

    /// Builds the project and starts or swaps the actor; prints what happened.
    async fn build_and_deploy(&mut self, dir: &Path, options: &ActorBuild, output: OutputFormat) {
        let serving = self.actor_id.is_some();
        let started = Instant::now();
        let build_dir = dir.to_path_buf();
        let build_options = options.clone();
        let built = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<u8>> {
            // The project file is read again: the claims may have changed.
            let file = project::load(&build_dir)?;
            let out = build::build_actor(&build_options, &build_dir, &file)?;
            std::fs::read(&out.output)
                .with_context(|| format!("failed to read the signed module {}", out.output))
        })
        .await
        .map_err(|e| anyhow::anyhow!("the build task failed: {e}"))
        .and_then(|r| r);
        let build_ms = started.elapsed().as_millis();
        let module = match built {
            Ok(module) => module,
            Err(e) => {
                DevEvent::Failed {
                    error: format!("{e:#}"),
                    serving,
                }
                .print(output);
                return;
            }
        };
        let event = match self.deploy(module, build_ms).await {
            Ok(event) => event,
            Err(e) => DevEvent::Failed {
                error: format!("{e:#}"),
                serving: self.actor_id.is_some(),
            },
        };
        event.print(output);
    }

    /// Starts the actor (first build) or swaps it in place.
    async fn deploy(&mut self, module: Vec<u8>, build_ms: u128) -> anyhow::Result<DevEvent> {
        let started = Instant::now();
        let Some(old) = self.actor_id.clone() else {
            let actor_id = self.start_and_link(module, None).await?;
            return Ok(DevEvent::Started {
                actor_id,
                build_ms,
                start_ms: started.elapsed().as_millis(),
            });
        };
        match self.host.update_actor(&old, module.clone()).await {
            Ok(()) => Ok(DevEvent::Updated {
                actor_id: old,
                build_ms,
                swap_ms: started.elapsed().as_millis(),
            }),
            Err(HostError::KeyMismatch { .. }) => {
                // Another module key: start the new actor, move the links to it, then stop
                // the old one (it finishes what it took first). The HTTP server listens
                // per actor, so its port is closed for the moment between the two links.
                let actor_id = self.start_and_link(module, Some(&old)).await?;
                self.host
                    .stop_actor(&old)
                    .await
                    .with_context(|| format!("failed to stop the old actor {old}"))?;
                Ok(DevEvent::Replaced {
                    old_actor_id: old,
                    actor_id,
                    build_ms,
                })
            }
            Err(e) => Err(e).context("failed to swap in the new build"),
        }
    }

    /// Starts `module`, moves the links from the actor it `replaces` (if any) to it and
    /// waits until its HTTP listeners accept.
    async fn start_and_link(
        &mut self,
        module: Vec<u8>,
        replaces: Option<&str>,
    ) -> anyhow::Result<String> {
        let mut events = self.host.events();
        let actor_id = self
            .host
            .start_actor(module, 1)
            .await
            .context("failed to start the actor")?;
        if let Some(old) = replaces {
            for link in &self.links {
                let _ = self
                    .host
                    .delete_link(old, &link.contract_id, &link.link_name)
                    .await;
            }
        }
        self.actor_id = Some(actor_id.clone());
        for link in &self.links {
            self.host
                .put_link(LinkDefinition::new(
                    actor_id.clone(),
                    link.provider_id.clone(),
                    link.link_name.clone(),
                    link.contract_id.clone(),
                    link.values
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                ))
                .await
                .with_context(|| format!("failed to link the actor to {}", link.provider))?;
        }
        // A listener that cannot bind (the port taken since it was checked) is reported
        // by the provider as a rejected link.
        let deadline = Instant::now() + LISTEN_TIMEOUT;
        let urls: Vec<SocketAddr> = self
            .links
            .iter()
            .filter(|l| l.contract_id == Builtin::Httpserver.contract_id())
            .filter_map(|l| {
                let values = l
                    .values
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                ServerSettings::from_link_values(&values).ok()
            })
            .map(|s| s.address)
            .collect();
        for addr in urls {
            let connect_to = if addr.ip().is_unspecified() {
                SocketAddr::from(([127, 0, 0, 1], addr.port()))
            } else {
                addr
            };
            loop {
                while let Ok(event) = events.try_recv() {
                    if event.name() == Some("linkdef_set_failed")
                        && event.data["actor_id"] == actor_id.as_str()
                    {
                        bail!(
                            "the provider refused the link: {}{}",
                            event.data["error"].as_str().unwrap_or_default(),
                            if event.data["contract_id"] == Builtin::Httpserver.contract_id() {
                                format!(
                                    " (is port {} in use? choose another with `wash dev --port PORT`)",
                                    addr.port()
                                )
                            } else {
                                String::new()
                            }
                        );
                    }
                }
                if TcpStream::connect_timeout(&connect_to, Duration::from_millis(200)).is_ok() {
                    break;
                }
                if Instant::now() > deadline {
                    bail!(
                        "the HTTP server did not listen on {addr} within {LISTEN_TIMEOUT:?}: is port {} in use? choose another with `wash dev --port PORT`",
                        addr.port()
                    );
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(actor_id)
    }

    /// Deletes the links it put (they would outlive this host in a lattice) and stops the
    /// host.
    async fn shut_down(&mut self) {
        if let Some(actor_id) = &self.actor_id {
            for link in &self.links {
                let _ = self
                    .host
                    .delete_link(actor_id, &link.contract_id, &link.link_name)
                    .await;
            }
        }
        match tokio::time::timeout(up::STOP_TIMEOUT, self.host.stop()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("warning: the host did not stop cleanly: {e}"),
            Err(_) => eprintln!(
                "warning: the host did not stop within {:?}; exiting anyway",
                up::STOP_TIMEOUT
            ),
        }
    }
}

fn report_text(report: &DevReport) -> String {
    let mut text = match &report.nats_url {
        Some(url) => format!(
            "host {} joined lattice `{}` at {url}",
            report.host_id, report.lattice
        ),
        None => format!("host {} running standalone (no NATS)", report.host_id),
    };
    text.push_str(&format!(
        "\nactor `{}` from {}",
        report.actor, report.project
    ));
    for p in &report.providers {
        let values = p
            .values
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ");
        text.push_str(&format!(
            "\n  provider {:<12} {} {} ({}) {values}",
            p.provider, p.provider_id, p.contract_id, p.link_name
        ));
    }
    for url in &report.urls {
        text.push_str(&format!("\nlistening on {url}"));
    }
    if let Some(url) = &report.dashboard_url {
        text.push_str(&format!("\ndashboard at {url}"));
    }
    text
}

/// The watched files of a project with their modification time and size.
#[derive(Debug, PartialEq, Eq)]
struct Sources(BTreeMap<PathBuf, (Option<SystemTime>, u64)>);

impl Sources {
    /// `src/**`, `Cargo.toml`, `build.rs` and `nimbus.toml` of the project in `dir`.
    fn scan(dir: &Path) -> Sources {
        let mut files = BTreeMap::new();
        for name in ["Cargo.toml", "build.rs", PROJECT_FILE] {
            add_file(&mut files, dir.join(name));
        }
        let mut stack = vec![dir.join("src")];
        while let Some(d) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                match entry.file_type() {
                    Ok(t) if t.is_dir() => stack.push(path),
                    Ok(_) => add_file(&mut files, path),
                    Err(_) => {}
                }
            }
        }
        Sources(files)
    }

    /// The files (relative to `dir`) added, removed or changed from `self` to `now`.
    fn changed(&self, now: &Sources, dir: &Path) -> Vec<String> {
        let rel = |p: &PathBuf| {
            p.strip_prefix(dir)
                .unwrap_or(p)
                .to_string_lossy()
                .into_owned()
        };
        let mut changed: Vec<String> = now
            .0
            .iter()
            .filter(|(path, stamp)| self.0.get(*path) != Some(stamp))
            .map(|(path, _)| rel(path))
            .collect();
        changed.extend(
            self.0
                .keys()
                .filter(|path| !now.0.contains_key(*path))
                .map(|path| format!("{} (removed)", rel(path))),
        );
        changed
    }
}

fn add_file(files: &mut BTreeMap<PathBuf, (Option<SystemTime>, u64)>, path: PathBuf) {
    if let Ok(meta) = std::fs::metadata(&path)
        && meta.is_file()
    {
        files.insert(path, (meta.modified().ok(), meta.len()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_see_edits_new_and_removed_files_but_not_build_output() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let root = dir.path();
        std::fs::create_dir_all(root.join("src/nested"))?;
        std::fs::create_dir_all(root.join("target"))?;
        std::fs::write(root.join("Cargo.toml"), "[package]")?;
        std::fs::write(root.join("src/lib.rs"), "fn a() {}")?;
        let before = Sources::scan(root);
        assert_eq!(before, Sources::scan(root));
        // Build output and files outside the watched set are not sources.
        std::fs::write(root.join("target/out.wasm"), "x")?;
        std::fs::write(root.join("notes.txt"), "x")?;
        assert_eq!(before, Sources::scan(root));
        // A longer edit (another size) is seen even within the file system's time step.
        std::fs::write(root.join("src/lib.rs"), "fn a() { 1; }")?;
        std::fs::write(root.join("src/nested/more.rs"), "")?;
        std::fs::write(root.join(PROJECT_FILE), "")?;
        let after = Sources::scan(root);
        assert_eq!(
            before.changed(&after, root),
            ["nimbus.toml", "src/lib.rs", "src/nested/more.rs"]
        );
        std::fs::remove_file(root.join("src/nested/more.rs"))?;
        let removed = Sources::scan(root);
        assert_eq!(
            after.changed(&removed, root),
            ["src/nested/more.rs (removed)"]
        );
        Ok(())
    }

    fn actor_file(dev: &str) -> anyhow::Result<ProjectFile> {
        ProjectFile::parse(&format!(
            "[actor]\nname = \"a\"\ncapabilities = [\"wasmcloud:httpserver\", \"wasmcloud:keyvalue\"]\n{dev}"
        ))
    }

    #[test]
    fn the_plan_derives_providers_from_capabilities_and_the_port_flag_wins() -> anyhow::Result<()> {
        let file = actor_file("")?;
        let plan = Plan::of(&file, Path::new("/p"), None)?;
        let builtins: Vec<_> = plan.providers.iter().map(|p| p.builtin).collect();
        assert_eq!(
            builtins,
            [Some(Builtin::Httpserver), Some(Builtin::Keyvalue)]
        );
        assert_eq!(plan.providers[1].values["backend"], "memory");
        assert_eq!(
            plan.http_addresses,
            [SocketAddr::from(([127, 0, 0, 1], DEFAULT_DEV_PORT))]
        );
        assert!(!plan.needs_lattice());

        let file = actor_file(
            "[dev]\nport = 9001\n[[dev.providers]]\nbuiltin = \"httpserver\"\nvalues = { address = \"0.0.0.0:1\" }\n[[dev.providers]]\npath = \"bin/p\"\ncontract_id = \"example:p\"\nlink_name = \"other\"\n",
        )?;
        let plan = Plan::of(&file, Path::new("/p"), None)?;
        assert_eq!(plan.providers[0].values["port"], "9001");
        assert_eq!(
            plan.providers[1].path.as_deref(),
            Some(Path::new("/p/bin/p"))
        );
        assert_eq!(plan.providers[1].link_name(), "other");
        assert!(plan.needs_lattice());
        let plan = Plan::of(&file, Path::new("/p"), Some(9002))?;
        assert_eq!(plan.providers[0].values["port"], "9002");
        Ok(())
    }

    #[test]
    fn events_are_one_json_object_tagged_by_event() -> anyhow::Result<()> {
        let updated = DevEvent::Updated {
            actor_id: "M1".into(),
            build_ms: 1200,
            swap_ms: 30,
        };
        assert_eq!(
            serde_json::to_value(&updated)?,
            serde_json::json!({"event": "updated", "actor_id": "M1", "build_ms": 1200, "swap_ms": 30})
        );
        assert_eq!(
            updated.text(),
            "updated actor M1 in place (build 1.20 s, swap 0.03 s)"
        );
        assert_eq!(
            serde_json::to_value(DevEvent::Ready)?,
            serde_json::json!({"event": "ready"})
        );
        let failed = DevEvent::Failed {
            error: "cargo build failed".into(),
            serving: true,
        };
        assert!(failed.text().contains("still serving the last good build"));
        Ok(())
    }

    #[test]
    fn a_port_in_use_names_the_port_and_the_flag() -> anyhow::Result<()> {
        let taken = std::net::TcpListener::bind("127.0.0.1:0")?;
        let addr = taken.local_addr()?;
        let err = format!("{:#}", check_port_free(addr).err().context("bound twice")?);
        assert!(
            err.contains(&format!("port {} is in use", addr.port())),
            "{err}"
        );
        assert!(err.contains("--port"), "{err}");
        drop(taken);
        check_port_free(addr)?;
        Ok(())
    }

    #[test]
    fn bad_dev_sections_are_refused() {
        for (dev, expected) in [
            ("[[dev.providers]]\n", "say which provider"),
            (
                "[[dev.providers]]\nbuiltin = \"httpserver\"\npath = \"x\"\n",
                "not both",
            ),
            ("[[dev.providers]]\npath = \"x\"\n", "needs `contract_id`"),
            (
                "[[dev.providers]]\nbuiltin = \"redis\"\n",
                "unknown variant",
            ),
            (
                "[[dev.providers]]\nbuiltin = \"keyvalue\"\ncontract_id = \"a:b\"\n",
                "drop `contract_id`",
            ),
            ("[dev]\nprot = 1\n", "unknown field `prot`"),
        ] {
            match actor_file(dev) {
                Ok(file) => panic!("{dev:?} parsed as {file:?}"),
                Err(e) => {
                    let err = format!("{e:#}");
                    assert!(err.contains(expected), "{dev:?}: {err}");
                }
            }
        }
    }
}
