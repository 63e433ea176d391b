//! `wash app`: the desired state of a lattice's apps. `deploy` stores a manifest as a
//! version in the lattice's JetStream KV bucket and makes it the one to run; the
//! reconciler that runs next to the hosts (`wash up`) places it and keeps it running.
//! `list`, `status`, `history`, `undeploy` and `rollback` read and change that state.
//!
//! Before anything is stored, `deploy` checks what it can here: the manifest parses
//! (unknown keys are errors), every module exists and is signed (unsigned ones are signed
//! with the keys directory's keys, as `wash up` does), provider binaries exist, and the
//! hosts trust each other. So a bad manifest changes nothing in the lattice. The signed
//! modules are uploaded to the lattice's module store (JetStream object store), where
//! every host fetches them, so replicas can run on any machine.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use nimbus_app::Manifest;
use nimbus_core::ctl::Host as HostInfo;
use nimbus_ctl::CtlError;
use nimbus_deploy::{ActorArtifact, Apps, BucketSettings, Draft, State, StatusReport};
use serde::Serialize;

use crate::app_view;
use crate::ctl::ConnectArgs;
use crate::keys;
use crate::output::OutputFormat;

/// `wash app ...`.
#[derive(Debug, clap::Subcommand)]
pub enum AppCommand {
    /// Store an app manifest as a new version in the lattice and make it the one to run.
    #[command(disable_version_flag = true)]
    Deploy(DeployArgs),
    /// List the lattice's apps: desired version and state.
    List(ListArgs),
    /// Desired against running for each actor, provider and link of an app, with reasons.
    Status(NameArgs),
    /// The versions of an app and every deploy, rollback and undeploy.
    History(NameArgs),
    /// Stop what an app started (nothing else) and delete its links.
    Undeploy(UndeployArgs),
    /// Deploy an earlier version of an app again (default: the one before the current).
    #[command(disable_version_flag = true)]
    Rollback(RollbackArgs),
}

/// How `wash app` reaches the lattice.
#[derive(Debug, clap::Args)]
pub struct AppConnect {
    /// How to reach the lattice (NATS URL, lattice, credentials).
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Copies of the apps bucket when `wash` creates it (3 on a 3-server JetStream cluster).
    #[arg(long, default_value_t = 1)]
    pub bucket_replicas: usize,
}

impl AppConnect {
    async fn apps(&self) -> anyhow::Result<Apps> {
        let nats = self.connect.connect().await?;
        Apps::open(
            nats,
            &self.connect.lattice,
            BucketSettings {
                replicas: self.bucket_replicas,
            },
        )
        .await
        .with_context(|| {
            format!(
                "failed to open the apps bucket of lattice `{}`",
                self.connect.lattice
            )
        })
    }
}

/// Arguments of `wash app deploy`.
#[derive(Debug, clap::Args)]
pub struct DeployArgs {
    /// The app manifest.
    pub manifest: PathBuf,
    #[command(flatten)]
    pub lattice: AppConnect,
    /// The version to store it as (overrides `version:` in the manifest; default: the
    /// next `vN`, or the version this exact content was stored under before).
    #[arg(long = "version", id = "app_version", value_name = "VERSION")]
    pub app_version: Option<String>,
    /// Timeout of each control request, in milliseconds.
    #[arg(long, default_value_t = 5000)]
    pub timeout_ms: u64,
    /// How long to wait for the reconciler to report the app running, in seconds
    /// (0: store the desired state and return).
    #[arg(long, default_value_t = 30)]
    pub wait_secs: u64,
    /// Reference the modules by path instead of uploading them to the lattice's module
    /// store: modules signed now are written to this directory, which every host must see
    /// under the same path (a shared volume).
    #[arg(long)]
    pub signed_dir: Option<PathBuf>,
    /// Keys directory for signing keys (default $WASH_KEYS or ~/.wash/keys).
    #[arg(long, env = "WASH_KEYS")]
    pub keys_dir: Option<PathBuf>,
    /// Deploy even onto hosts that do not trust each other's cluster keys (only for
    /// lattices whose hosts run with invocation signing off).
    #[arg(long)]
    pub allow_untrusted_hosts: bool,
}

/// Arguments of `wash app list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub lattice: AppConnect,
}

/// Arguments naming one app.
#[derive(Debug, clap::Args)]
pub struct NameArgs {
    /// The app's name (as in its manifest).
    pub name: String,
    #[command(flatten)]
    pub lattice: AppConnect,
}

/// Arguments of `wash app undeploy`.
#[derive(Debug, clap::Args)]
pub struct UndeployArgs {
    /// The app's name.
    pub name: String,
    #[command(flatten)]
    pub lattice: AppConnect,
    /// How long to wait for the reconciler to report everything stopped, in seconds
    /// (0: change the desired state and return).
    #[arg(long, default_value_t = 30)]
    pub wait_secs: u64,
}

/// Arguments of `wash app rollback`.
#[derive(Debug, clap::Args)]
pub struct RollbackArgs {
    /// The app's name.
    pub name: String,
    /// The version to run (default: the one deployed before the current one).
    #[arg(id = "to_version", value_name = "VERSION")]
    pub to_version: Option<String>,
    #[command(flatten)]
    pub lattice: AppConnect,
    /// How long to wait for the reconciler to report it running, in seconds.
    #[arg(long, default_value_t = 30)]
    pub wait_secs: u64,
}

/// What `wash app deploy` and `rollback` print.
#[derive(Debug, Serialize)]
struct Applied {
    app: String,
    version: String,
    /// Whether the version was stored by this command.
    new_version: bool,
    /// Whether the desired state changed.
    changed: bool,
    /// The status once the reconciler reported (absent with --wait-secs 0).
    status: Option<StatusReport>,
}

/// Runs a `wash app` command.
pub fn run(cmd: AppCommand, output: OutputFormat) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    runtime.block_on(async move {
        match cmd {
            AppCommand::Deploy(args) => deploy(args, output).await,
            AppCommand::List(args) => {
                let apps = args.lattice.apps().await?;
                let list = apps.list().await.context("failed to list the apps")?;
                output.print(|| app_view::list_text(apps.lattice(), &list), &list)
            }
            AppCommand::Status(args) => {
                let apps = args.lattice.apps().await?;
                let report = apps
                    .status(&args.name)
                    .await
                    .with_context(|| format!("failed to read the status of app `{}`", args.name))?;
                output.print(|| app_view::status_text(&report), &report)
            }
            AppCommand::History(args) => {
                let apps = args.lattice.apps().await?;
                let (record, versions) = apps.history(&args.name).await.with_context(|| {
                    format!("failed to read the history of app `{}`", args.name)
                })?;
                let value = serde_json::json!({ "record": record, "versions": versions });
                output.print(|| app_view::history_text(&record, &versions), &value)
            }
            AppCommand::Undeploy(args) => undeploy(args, output).await,
            AppCommand::Rollback(args) => rollback(args, output).await,
        }
    })
}

async fn deploy(args: DeployArgs, output: OutputFormat) -> anyhow::Result<()> {
    // Everything that can be checked here is, before the lattice changes.
    let mut manifest = Manifest::load(&args.manifest)?;
    nimbus_deploy::names::check_app_name(&manifest.name)
        .with_context(|| format!("{}: name", args.manifest.display()))?;
    let keys_dir = keys::keys_dir(args.keys_dir.clone())?;
    let signed = sign_all(&mut manifest, &keys_dir)?;
    let nats = args.lattice.connect.connect().await?;
    let ctl = nimbus_ctl::CtlClient::new(nats, args.lattice.connect.lattice.clone())
        .with_timeout(Duration::from_millis(args.timeout_ms.min(2000)))
        .with_nats_url(args.lattice.connect.nats_url.clone());
    check_trust(&ctl, &keys_dir, args.allow_untrusted_hosts).await?;
    let apps = args.lattice.apps().await?;
    // Modules go up first: an upload that fails leaves no version behind, and a module
    // that no version names is only an unused object.
    let actors = artifacts(&apps, signed, args.signed_dir.as_deref()).await?;
    let draft = Draft {
        manifest,
        actors,
        version: args.app_version.clone(),
    };
    let outcome = apps.deploy(draft).await.context("failed to deploy")?;
    let status = wait_for(
        &apps,
        &outcome.app,
        Duration::from_secs(args.wait_secs),
        |r| running_version(r, &outcome.version),
    )
    .await?;
    let applied = Applied {
        app: outcome.app,
        version: outcome.version,
        new_version: outcome.new_version,
        changed: outcome.changed,
        status,
    };
    finish(applied, apps.lattice(), args.wait_secs, output, "running")
}

async fn rollback(args: RollbackArgs, output: OutputFormat) -> anyhow::Result<()> {
    let apps = args.lattice.apps().await?;
    let (_, version) = apps
        .rollback(&args.name, args.to_version.as_deref())
        .await
        .with_context(|| format!("failed to roll back app `{}`", args.name))?;
    let status = wait_for(
        &apps,
        &args.name,
        Duration::from_secs(args.wait_secs),
        |r| running_version(r, &version),
    )
    .await?;
    let applied = Applied {
        app: args.name,
        version,
        new_version: false,
        changed: true,
        status,
    };
    finish(applied, apps.lattice(), args.wait_secs, output, "running")
}

async fn undeploy(args: UndeployArgs, output: OutputFormat) -> anyhow::Result<()> {
    let apps = args.lattice.apps().await?;
    let (record, changed) = apps
        .undeploy(&args.name)
        .await
        .with_context(|| format!("failed to undeploy app `{}`", args.name))?;
    let status = wait_for(
        &apps,
        &args.name,
        Duration::from_secs(args.wait_secs),
        |r| {
            r.status
                .as_ref()
                .is_some_and(|s| s.state == State::Undeployed)
        },
    )
    .await?;
    let applied = Applied {
        app: record.app,
        version: String::new(),
        new_version: false,
        changed,
        status,
    };
    finish(
        applied,
        apps.lattice(),
        args.wait_secs,
        output,
        "undeployed",
    )
}

/// Prints the outcome; an app that did not reach `goal` within the wait is an error
/// that says why (the status's reason), after printing what is known.
fn finish(
    applied: Applied,
    lattice: &str,
    wait_secs: u64,
    output: OutputFormat,
    goal: &str,
) -> anyhow::Result<()> {
    output.print(
        || {
            app_view::applied_text(
                &applied.app,
                &applied.version,
                applied.changed,
                applied.status.as_ref(),
            )
        },
        &applied,
    )?;
    let Some(report) = &applied.status else {
        return Ok(());
    };
    let reached = match goal {
        "undeployed" => report
            .status
            .as_ref()
            .is_some_and(|s| s.state == State::Undeployed),
        _ => running_version(report, &applied.version),
    };
    if reached {
        return Ok(());
    }
    let why = match (&report.reconciler, &report.status) {
        (None, _) => format!(
            "no reconciler holds the lease of lattice `{lattice}`: start a host with `wash up --nats-url ...` (each runs one)"
        ),
        (_, Some(status)) => status
            .reason
            .clone()
            .unwrap_or_else(|| format!("the app is {}", status.state.as_str())),
        (_, None) => "the reconciler has not reported on the app yet".to_string(),
    };
    bail!(
        "app `{}` is not {goal} after {wait_secs} s (the desired state is stored; the reconciler keeps trying): {why}",
        applied.app
    )
}

/// Whether the report says `version` runs as desired.
fn running_version(report: &StatusReport, version: &str) -> bool {
    report
        .status
        .as_ref()
        .is_some_and(|s| s.version.as_deref() == Some(version) && s.state == State::Running)
}

/// Polls the app's status until `done` or `limit` passes; `None` with a zero limit.
async fn wait_for(
    apps: &Apps,
    app: &str,
    limit: Duration,
    done: impl Fn(&StatusReport) -> bool,
) -> anyhow::Result<Option<StatusReport>> {
    if limit.is_zero() {
        return Ok(None);
    }
    let deadline = Instant::now() + limit;
    loop {
        let report = apps
            .status(app)
            .await
            .with_context(|| format!("failed to read the status of app `{app}`"))?;
        if done(&report) || Instant::now() >= deadline {
            return Ok(Some(report));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// One actor module, signed and ready to reference.
struct Signed {
    name: String,
    actor_id: String,
    source_sha256: String,
    module: Vec<u8>,
    /// The manifest's file, when it was signed already (it can be referenced as it is).
    signed_file: Option<PathBuf>,
}

/// Reads every module of the manifest and signs the unsigned ones (as `wash up` does), and
/// resolves every path. Fails, before anything is stored, on a module that is missing or
/// has unreadable claims, and on a provider binary that does not exist.
fn sign_all(manifest: &mut Manifest, keys_dir: &Path) -> anyhow::Result<Vec<Signed>> {
    let mut signed = Vec::new();
    for spec in &manifest.actors {
        let source = std::fs::read(&spec.path).with_context(|| {
            format!(
                "failed to read actor `{}` from {} (nothing was deployed; build the actors first: scripts/build-actors.sh)",
                spec.name,
                spec.path.display()
            )
        })?;
        let source_sha256 = nimbus_deploy::sha256_hex(&source);
        let (module, signed_now) =
            crate::up::sign_if_unsigned(source, spec, &manifest.name, keys_dir)?;
        let token = nimbus_core::claims::extract_token(&module)
            .with_context(|| format!("failed to read the claims of actor `{}`", spec.name))?
            .with_context(|| format!("actor `{}` has no claims after signing", spec.name))?;
        signed.push(Signed {
            name: spec.name.clone(),
            actor_id: token.claims.sub.clone(),
            source_sha256,
            module,
            signed_file: (!signed_now).then(|| spec.path.clone()),
        });
    }
    for spec in &mut manifest.actors {
        spec.path = absolute(&spec.path)?;
    }
    for spec in &mut manifest.providers {
        if let Some(path) = &spec.path {
            if !path.is_file() {
                bail!(
                    "provider `{}`: binary {} does not exist (nothing was deployed)",
                    spec.name,
                    path.display()
                );
            }
            spec.path = Some(absolute(path)?);
        }
    }
    Ok(signed)
}

/// The artifacts of the signed modules: uploaded to the lattice's module store, or, with
/// `signed_dir`, referenced by path (written there when signed now).
async fn artifacts(
    apps: &Apps,
    signed: Vec<Signed>,
    signed_dir: Option<&Path>,
) -> anyhow::Result<BTreeMap<String, ActorArtifact>> {
    let modules = match signed_dir {
        Some(_) => None,
        None => Some(
            apps.modules()
                .await
                .context("failed to open the lattice's module store")?,
        ),
    };
    let mut artifacts = BTreeMap::new();
    for s in signed {
        let object = module_name(&s.name, &s.actor_id, &s.source_sha256);
        let module_ref = match (&modules, signed_dir, &s.signed_file) {
            (Some(store), _, _) => store
                .put(&object, &s.module)
                .await
                .with_context(|| format!("failed to upload actor `{}`", s.name))?,
            (None, _, Some(file)) => absolute(file)?.display().to_string(),
            (None, Some(dir), None) => write_signed(dir, &object, &s.module)?.display().to_string(),
            (None, None, None) => bail!("no place to put the signed module of `{}`", s.name),
        };
        artifacts.insert(
            s.name,
            ActorArtifact {
                actor_id: s.actor_id,
                module_ref,
                source_sha256: s.source_sha256,
            },
        );
    }
    Ok(artifacts)
}

/// The name of a signed module: its actor key and its source's hash, so a new version
/// never replaces what an older version's hosts load, and deploying the same module again
/// reuses it (signing is not deterministic: a fresh signature would look like a new
/// module to the hosts).
fn module_name(name: &str, actor_id: &str, source_sha256: &str) -> String {
    let short = source_sha256.get(..16).unwrap_or(source_sha256);
    let key = actor_id.get(..12).unwrap_or(actor_id);
    format!("{}-{key}-{short}.wasm", keys::sanitize_key_name(name))
}

/// Refuses a lattice whose hosts do not trust each other (an app spread over them fails
/// at its first call between hosts), and warns about hosts that do not trust this
/// machine's key. No hosts at all is fine: the reconciler places the app when they come.
async fn check_trust(
    ctl: &nimbus_ctl::CtlClient,
    keys_dir: &Path,
    allow_untrusted: bool,
) -> anyhow::Result<()> {
    let hosts = match ctl.get_hosts().await {
        Ok(hosts) => hosts,
        Err(CtlError::NoHosts { .. }) => {
            eprintln!(
                "warning: no host answers in lattice `{}`; the app is placed once hosts join",
                ctl.lattice()
            );
            return Ok(());
        }
        Err(e) => return Err(e).context("failed to list the lattice's hosts"),
    };
    let refusals = trust_gaps(&hosts);
    if !refusals.is_empty() && !allow_untrusted {
        bail!(
            "the lattice's hosts do not trust each other, so an app spread over them fails at its first call between hosts:\n  {}\nstart them with one lattice key (`wash lattice key export` on one machine, `wash lattice key import` on the others, then restart), or pass --allow-untrusted-hosts if they run with signing off",
            refusals.join("\n  ")
        );
    }
    if let Some(ours) = crate::lattice::stored_public_key(keys_dir, ctl.lattice()) {
        for h in hosts.iter().filter(|h| !trusts(h, &ours)) {
            eprintln!(
                "warning: host {} does not trust this machine's cluster key {ours} for lattice `{}`; `wash call` from here will be refused",
                h.id,
                ctl.lattice()
            );
        }
    }
    Ok(())
}

/// Whether `host` accepts invocations signed by cluster key `issuer`. A host that does not
/// publish its trusted keys (an older host) is given the benefit of the doubt.
fn trusts(host: &HostInfo, issuer: &str) -> bool {
    match &host.cluster_issuers {
        Some(list) => host.issuer == issuer || list.split(',').any(|k| k.trim() == issuer),
        None => true,
    }
}

/// Every pair of hosts where one refuses the other's invocations, as readable lines.
fn trust_gaps(hosts: &[HostInfo]) -> Vec<String> {
    let mut gaps = Vec::new();
    for receiver in hosts {
        for sender in hosts.iter().filter(|s| s.id != receiver.id) {
            if !sender.issuer.is_empty() && !trusts(receiver, &sender.issuer) {
                gaps.push(format!(
                    "host {} refuses host {} (signs with {})",
                    receiver.id, sender.id, sender.issuer
                ));
            }
        }
    }
    gaps
}

/// Writes a signed module as `dir/file` unless it exists (see [`module_name`]).
fn write_signed(dir: &Path, file: &str, module: &[u8]) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("failed to create {}", dir.display()))?;
    let path = dir.join(file);
    if !path.is_file() {
        std::fs::write(&path, module)
            .with_context(|| format!("failed to write signed module {}", path.display()))?;
    }
    absolute(&path)
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("failed to resolve {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(id: &str, issuer: &str, trusted: Option<&str>) -> HostInfo {
        HostInfo {
            id: id.to_string(),
            issuer: issuer.to_string(),
            cluster_issuers: trusted.map(str::to_string),
            ..HostInfo::default()
        }
    }

    #[test]
    fn hosts_with_one_key_have_no_trust_gap() {
        let hosts = [
            host("N1", "C1", Some("C1")),
            host("N2", "C1", Some("C1,C2")),
        ];
        assert!(trust_gaps(&hosts).is_empty());
    }

    #[test]
    fn each_refusing_direction_is_reported() {
        let hosts = [
            host("N1", "C1", Some("C1")),
            host("N2", "C2", Some("C2,C1")),
            host("N3", "C1", None),
        ];
        assert_eq!(
            trust_gaps(&hosts),
            vec!["host N1 refuses host N2 (signs with C2)".to_string()]
        );
    }
}
