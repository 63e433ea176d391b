//! `wash app deploy`: apply an app manifest to a running lattice through the control
//! interface. Each provider and actor goes to a host whose labels include the entity's
//! `host_labels` (spread round-robin over the matching hosts), unsigned actor modules
//! are signed on the way (as `wash up` does), and links are put once the providers'
//! keys are known from the hosts' inventories.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use nimbus_app::Manifest;
use nimbus_core::ctl::Host as HostInfo;
use nimbus_core::link::LinkDefinition;
use serde::Serialize;

use crate::ctl::ConnectArgs;
use crate::keys;
use crate::output::OutputFormat;

/// `wash app ...`.
#[derive(Debug, clap::Subcommand)]
pub enum AppCommand {
    /// Deploy an app manifest onto the hosts of a running lattice.
    Deploy(DeployArgs),
}

/// Arguments of `wash app deploy`.
#[derive(Debug, clap::Args)]
pub struct DeployArgs {
    /// The app manifest.
    pub manifest: PathBuf,
    /// How to reach the lattice (NATS URL, lattice, credentials).
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Timeout of each control request, in milliseconds.
    #[arg(long, default_value_t = 5000)]
    pub timeout_ms: u64,
    /// How long to wait for hosts to report what they started, in seconds.
    #[arg(long, default_value_t = 30)]
    pub wait_secs: u64,
    /// Where modules signed during the deploy are written (hosts read them from there).
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

#[derive(Debug, Serialize)]
struct DeployReport {
    app: String,
    lattice: String,
    providers: Vec<Placed>,
    actors: Vec<Placed>,
    links: Vec<LinkDefinition>,
}

#[derive(Debug, Serialize)]
struct Placed {
    name: String,
    id: String,
    host_id: String,
}

/// Runs a `wash app` command.
pub fn run(cmd: AppCommand, output: OutputFormat) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    match cmd {
        AppCommand::Deploy(args) => runtime.block_on(deploy(args, output)),
    }
}

async fn deploy(args: DeployArgs, output: OutputFormat) -> anyhow::Result<()> {
    let manifest = Manifest::load(&args.manifest)?;
    let ctl = args
        .connect
        .ctl_client(Duration::from_millis(args.timeout_ms))
        .await?;
    let hosts = ctl
        .get_hosts()
        .await
        .context("failed to list the lattice's hosts")?;
    let keys_dir = keys::keys_dir(args.keys_dir.clone())?;
    let refusals = trust_gaps(&hosts);
    if !refusals.is_empty() && !args.allow_untrusted_hosts {
        bail!(
            "the lattice's hosts do not trust each other, so an app spread over them fails at its first call between hosts:\n  {}\nstart them with one lattice key (`wash lattice key export` on one machine, `wash lattice key import` on the others, then restart), or pass --allow-untrusted-hosts if they run with signing off",
            refusals.join("\n  ")
        );
    }
    if let Some(ours) = crate::lattice::stored_public_key(&keys_dir, ctl.lattice()) {
        for h in hosts.iter().filter(|h| !trusts(h, &ours)) {
            eprintln!(
                "warning: host {} does not trust this machine's cluster key {ours} for lattice `{}`; `wash call` from here will be refused",
                h.id,
                ctl.lattice()
            );
        }
    }
    let wait = Duration::from_secs(args.wait_secs);
    let mut placer = Placer::new(hosts);
    let mut report = DeployReport {
        app: manifest.name.clone(),
        lattice: ctl.lattice().to_string(),
        providers: Vec::new(),
        actors: Vec::new(),
        links: Vec::new(),
    };

    let mut provider_ids = BTreeMap::new();
    for spec in &manifest.providers {
        let host = placer.place(&spec.name, &spec.host_labels)?;
        let provider_ref = match (spec.builtin, &spec.path) {
            (Some(builtin), _) => builtin.provider_ref(),
            (None, Some(path)) => path.display().to_string(),
            (None, None) => bail!("provider `{}` says neither builtin nor path", spec.name),
        };
        let contract = spec
            .contract_id()
            .context("a provider without a contract passed validation")?
            .to_string();
        ctl.start_provider(&host, &provider_ref, &spec.link_name, spec.config_json())
            .await
            .with_context(|| format!("failed to start provider `{}` on host {host}", spec.name))?;
        let id = wait_for(wait, || async {
            let inv = ctl.get_inventory(&host).await.ok()?;
            inv.providers
                .iter()
                .find(|p| p.contract_id == contract && p.link_name == spec.link_name)
                .map(|p| p.id.clone())
        })
        .await
        .with_context(|| {
            format!(
                "provider `{}` did not show up in host {host}'s inventory within {wait:?}; check that host's log",
                spec.name
            )
        })?;
        provider_ids.insert(spec.name.clone(), (id.clone(), contract));
        report.providers.push(Placed {
            name: spec.name.clone(),
            id,
            host_id: host,
        });
    }

    let signed_dir = match &args.signed_dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!(
            "wash-deploy-{}",
            keys::sanitize_key_name(&manifest.name)
        )),
    };
    let mut actor_ids = BTreeMap::new();
    for spec in &manifest.actors {
        let host = placer.place(&spec.name, &spec.host_labels)?;
        let module = std::fs::read(&spec.path).with_context(|| {
            format!(
                "failed to read actor `{}` from {}",
                spec.name,
                spec.path.display()
            )
        })?;
        let (module, signed_now) =
            crate::up::sign_if_unsigned(module, spec, &manifest.name, &keys_dir)?;
        let token = nimbus_core::claims::extract_token(&module)
            .with_context(|| format!("failed to read the claims of actor `{}`", spec.name))?
            .with_context(|| format!("actor `{}` has no claims after signing", spec.name))?;
        let actor_id = token.claims.sub.clone();
        let path = if signed_now {
            write_signed(&signed_dir, &spec.name, &module)?
        } else {
            absolute(&spec.path)?
        };
        let count = u16::try_from(spec.instances).unwrap_or(u16::MAX);
        ctl.start_actor(&host, &path.display().to_string(), count)
            .await
            .with_context(|| format!("failed to start actor `{}` on host {host}", spec.name))?;
        wait_for(wait, || async {
            let inv = ctl.get_inventory(&host).await.ok()?;
            inv.actors.iter().any(|a| a.id == actor_id).then_some(())
        })
        .await
        .with_context(|| {
            format!(
                "actor `{}` did not show up in host {host}'s inventory within {wait:?}; check that host's log",
                spec.name
            )
        })?;
        actor_ids.insert(spec.name.clone(), actor_id.clone());
        report.actors.push(Placed {
            name: spec.name.clone(),
            id: actor_id,
            host_id: host,
        });
    }

    for link in &manifest.links {
        let actor_id = actor_ids
            .get(&link.actor)
            .with_context(|| format!("link names unknown actor `{}`", link.actor))?;
        let (provider_id, contract) = provider_ids
            .get(&link.provider)
            .with_context(|| format!("link names unknown provider `{}`", link.provider))?;
        let link_name = manifest
            .provider(&link.provider)
            .map(|p| p.link_name.clone())
            .unwrap_or_else(|| nimbus_app::DEFAULT_LINK_NAME.to_string());
        let definition = LinkDefinition::new(
            actor_id.clone(),
            provider_id.clone(),
            link_name,
            contract.clone(),
            link.values
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        );
        ctl.put_link(definition.clone()).await.with_context(|| {
            format!(
                "failed to link actor `{}` to provider `{}`",
                link.actor, link.provider
            )
        })?;
        report.links.push(definition);
    }

    output.print(|| deploy_text(&report), &report)
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

/// Chooses hosts: among those whose labels include the wanted ones, round-robin.
struct Placer {
    hosts: Vec<HostInfo>,
    next: usize,
}

impl Placer {
    fn new(mut hosts: Vec<HostInfo>) -> Self {
        hosts.sort_by(|a, b| a.id.cmp(&b.id));
        Placer { hosts, next: 0 }
    }

    fn place(&mut self, what: &str, labels: &BTreeMap<String, String>) -> anyhow::Result<String> {
        let matching: Vec<&HostInfo> = self
            .hosts
            .iter()
            .filter(|h| labels.iter().all(|(k, v)| h.labels.get(k) == Some(v)))
            .collect();
        if matching.is_empty() {
            let wanted: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            bail!(
                "no host carries the labels {} that `{what}` asks for; start one with `wash up --nats-url ... --label {}`",
                wanted.join(", "),
                wanted.join(" --label ")
            );
        }
        let host = matching[self.next % matching.len()].id.clone();
        self.next += 1;
        Ok(host)
    }
}

async fn wait_for<T, F, Fut>(limit: Duration, mut probe: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(found) = probe().await {
            return Some(found);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn write_signed(dir: &Path, name: &str, module: &[u8]) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("failed to create {}", dir.display()))?;
    let path = dir.join(format!("{}.wasm", keys::sanitize_key_name(name)));
    std::fs::write(&path, module)
        .with_context(|| format!("failed to write signed module {}", path.display()))?;
    absolute(&path)
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("failed to resolve {}", path.display()))
}

fn deploy_text(report: &DeployReport) -> String {
    let mut text = format!(
        "app `{}` deployed to lattice `{}`",
        report.app, report.lattice
    );
    for p in &report.providers {
        text.push_str(&format!(
            "\n  provider {:<12} {} on {}",
            p.name, p.id, p.host_id
        ));
    }
    for a in &report.actors {
        text.push_str(&format!(
            "\n  actor    {:<12} {} on {}",
            a.name, a.id, a.host_id
        ));
    }
    text.push_str(&format!("\n  {} link(s) put", report.links.len()));
    text
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
