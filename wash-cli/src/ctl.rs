//! `wash ctl`: drive the hosts of a lattice over its control interface (list hosts,
//! inventories, claims and links; start, stop and scale actors and providers; put and
//! delete links; stop hosts), and the connection options shared with `wash call`.
//!
//! Commands return once a host acknowledged them; the outcome arrives later as lattice
//! events, so the text output says how to check it.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use nimbus_core::ctl::{GetClaimsResponse, Host, HostInventory, StringMap};
use nimbus_core::link::{DEFAULT_LINK_NAME, LinkDefinition};
use nimbus_ctl::CtlClient;
use serde::Serialize;

use crate::output::OutputFormat;

/// How `wash` reaches a lattice: NATS server, lattice name and credentials.
#[derive(Debug, Clone, clap::Args)]
pub struct ConnectArgs {
    /// NATS server of the lattice.
    #[arg(
        long,
        env = "WASH_NATS_URL",
        default_value = "nats://127.0.0.1:4222",
        global = true
    )]
    pub nats_url: String,
    /// Lattice prefix the hosts serve.
    #[arg(long, env = "WASH_LATTICE", default_value = "default", global = true)]
    pub lattice: String,
    /// NATS credentials file (JWT and seed) for servers that require them (default: the
    /// lattice's `wash.creds` from `wash lattice init`, when this machine has one).
    #[arg(long, env = "WASH_NATS_CREDS", value_name = "FILE", global = true)]
    pub creds: Option<PathBuf>,
    /// NATS nkey seed (`SU...`) for servers that authenticate with nkeys.
    #[arg(long, value_name = "SEED", global = true, hide_env_values = true)]
    pub nkey_seed: Option<String>,
    /// PEM file of the CA that the NATS server's certificate chains to (default: the
    /// lattice's `tls/ca.pem` from `wash lattice init --tls`, when there is one).
    #[arg(long, env = "WASH_NATS_TLS_CA", value_name = "FILE", global = true)]
    pub tls_ca: Option<PathBuf>,
}

/// The last subject the NATS server refused this process (a permissions violation),
/// so a command that then fails can say why.
static REFUSED: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// The credentials file this process connected with, for the refusal message.
static USED_CREDS: std::sync::Mutex<Option<PathBuf>> = std::sync::Mutex::new(None);

/// What the server refused this process, if anything, as an explanation of a failed
/// command: the refused subject (`Permissions Violation for Publish to "..."`), the
/// credentials used and what to use instead.
pub fn refused_by_server() -> Option<String> {
    let refused = REFUSED.lock().ok().and_then(|r| r.clone())?;
    let creds = USED_CREDS.lock().ok().and_then(|c| c.clone()).map_or_else(
        || "these credentials".to_string(),
        |p| format!("the credentials in {}", p.display()),
    );
    Some(format!(
        "the NATS server refused it ({refused}): {creds} may not do this; use credentials of a role that may: the lattice's wash.creds (`wash lattice init`) to change the lattice (observer.creds only lists)"
    ))
}

impl ConnectArgs {
    /// The credentials file to use: `--creds` / `WASH_NATS_CREDS`, else the lattice's
    /// `wash.creds` (unless an nkey seed is given).
    pub fn creds_file(&self) -> Option<PathBuf> {
        match (&self.creds, &self.nkey_seed) {
            (Some(path), _) if !path.as_os_str().is_empty() => Some(path.clone()),
            (_, Some(_)) => None,
            _ => crate::lattice_auth::default_client_creds(&self.lattice),
        }
    }

    /// Connects to the NATS server, with messages that say how to fix a failure.
    pub async fn connect(&self) -> anyhow::Result<async_nats::Client> {
        let mut options = async_nats::ConnectOptions::new()
            .name("wash")
            .connection_timeout(Duration::from_secs(5))
            .event_callback(|event| async move {
                if let async_nats::Event::ServerError(async_nats::ServerError::Other(text)) = &event
                    && text.to_ascii_lowercase().contains("permissions violation")
                    && let Ok(mut refused) = REFUSED.lock()
                {
                    *refused = Some(text.trim().to_string());
                }
            });
        let creds = self.creds_file();
        if let Ok(mut used) = USED_CREDS.lock() {
            used.clone_from(&creds);
        }
        if let Some(path) = &creds {
            options = options.credentials_file(path).await.with_context(|| {
                format!(
                    "failed to read the NATS credentials file {}",
                    path.display()
                )
            })?;
        }
        if let Some(seed) = &self.nkey_seed {
            options = options.nkey(seed.trim().to_string());
        }
        let tls_ca = self
            .tls_ca
            .clone()
            .filter(|p| !p.as_os_str().is_empty())
            .or_else(|| crate::lattice_auth::default_tls_ca(&self.lattice));
        if let Some(ca) = &tls_ca {
            options = options.add_root_certificates(ca.clone());
        }
        options
            .connect(self.nats_url.as_str())
            .await
            .map_err(|e| {
                let refused = e.to_string().to_ascii_lowercase().contains("authorization violation");
                let error = anyhow::Error::new(e);
                if !refused {
                    return error.context(format!(
                        "failed to connect to NATS at {}; start a server (`wash up` starts one) or pass --nats-url / WASH_NATS_URL",
                        self.nats_url
                    ));
                }
                let advice = match &creds {
                    Some(path) => format!(
                        "the server refused the credentials in {}; give credentials of lattice `{}` with --creds FILE (`wash lattice init` writes wash.creds)",
                        path.display(),
                        self.lattice
                    ),
                    None if self.nkey_seed.is_some() => {
                        "the server refused the nkey seed; give the lattice's credentials with --creds FILE".to_string()
                    }
                    None => format!(
                        "the server requires credentials; pass --creds FILE (WASH_NATS_CREDS): `wash lattice init {}` writes wash.creds for this machine, `wash lattice creds` for another",
                        self.lattice
                    ),
                };
                error.context(format!(
                    "failed to connect to NATS at {}: {advice}",
                    self.nats_url
                ))
            })
    }

    /// Connects and returns a control client of the lattice with `timeout`.
    pub async fn ctl_client(&self, timeout: Duration) -> anyhow::Result<CtlClient> {
        let nats = self.connect().await?;
        Ok(CtlClient::new(nats, self.lattice.clone())
            .with_timeout(timeout)
            .with_nats_url(self.nats_url.clone()))
    }
}

/// Arguments of `wash ctl`.
#[derive(Debug, clap::Args)]
pub struct CtlArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// How long to wait for a reply, and how long to collect replies from every host.
    #[arg(long, default_value_t = 2000, global = true)]
    timeout_ms: u64,
    #[command(subcommand)]
    command: CtlCommand,
}

#[derive(Debug, clap::Subcommand)]
enum CtlCommand {
    /// List hosts, an inventory, claims or links.
    #[command(subcommand)]
    Get(GetCommand),
    /// Start an actor or a provider on a host.
    #[command(subcommand)]
    Start(StartCommand),
    /// Stop an actor, a provider or a whole host.
    #[command(subcommand)]
    Stop(StopCommand),
    /// Set the number of instances of an actor on a host.
    #[command(subcommand)]
    Scale(ScaleCommand),
    /// Put, delete or list link definitions.
    #[command(subcommand)]
    Link(LinkCommand),
}

#[derive(Debug, clap::Subcommand)]
enum GetCommand {
    /// Every host that answers a ping within the timeout.
    Hosts,
    /// What a host runs (every host's inventory when no host id is given).
    Inventory {
        /// The host's `N...` id.
        host_id: Option<String>,
    },
    /// The claims of every actor and provider of the lattice.
    Claims,
    /// Every link definition of the lattice.
    Links,
}

#[derive(Debug, clap::Subcommand)]
enum StartCommand {
    /// Start instances of a signed actor module from a file path on the host.
    Actor {
        /// Path (or `file://` URL) of the signed module; a relative path that exists
        /// here is made absolute.
        actor_ref: String,
        /// Host to start it on (default: the first host whose labels match).
        #[arg(long)]
        host_id: Option<String>,
        /// Number of instances.
        #[arg(long, default_value_t = 1)]
        count: u16,
        /// Label `KEY=VALUE` a host must have (auction, without --host-id).
        #[arg(long = "constraint", short = 'c', value_name = "KEY=VALUE", value_parser = parse_pair)]
        constraints: Vec<(String, String)>,
    },
    /// Start a capability provider registered on the host.
    Provider {
        /// The provider reference the host knows.
        provider_ref: String,
        /// Link name to run it under.
        #[arg(long, default_value = DEFAULT_LINK_NAME)]
        link_name: String,
        /// Host to start it on (default: the first host whose labels match).
        #[arg(long)]
        host_id: Option<String>,
        /// Configuration string handed to the provider (`config_json`).
        #[arg(long, value_name = "JSON")]
        config_json: Option<String>,
        /// Label `KEY=VALUE` a host must have (auction, without --host-id).
        #[arg(long = "constraint", short = 'c', value_name = "KEY=VALUE", value_parser = parse_pair)]
        constraints: Vec<(String, String)>,
    },
}

#[derive(Debug, clap::Subcommand)]
enum StopCommand {
    /// Stop instances of an actor.
    Actor {
        /// The actor's `M...` public key.
        actor_id: String,
        /// Host to stop it on (default: the one host running it).
        #[arg(long)]
        host_id: Option<String>,
        /// Number of instances to stop.
        #[arg(long, default_value_t = 1)]
        count: u16,
    },
    /// Stop a capability provider.
    Provider {
        /// The provider's `V...` public key.
        provider_id: String,
        /// The contract it implements, e.g. `wasmcloud:keyvalue`.
        contract_id: String,
        /// Link name it runs under.
        #[arg(long, default_value = DEFAULT_LINK_NAME)]
        link_name: String,
        /// Host to stop it on (default: the one host running it).
        #[arg(long)]
        host_id: Option<String>,
    },
    /// Stop a whole host.
    Host {
        /// The host's `N...` id.
        host_id: String,
        /// Grace period for its actors and providers, in milliseconds (host default 500).
        #[arg(long, value_name = "MS")]
        host_timeout_ms: Option<u64>,
    },
}

#[derive(Debug, clap::Subcommand)]
enum ScaleCommand {
    /// Set the number of instances of an actor (0 stops it).
    Actor {
        /// The actor's `M...` public key.
        actor_id: String,
        /// Desired number of instances.
        #[arg(long)]
        count: u16,
        /// Module to load when the host does not run the actor yet.
        #[arg(long)]
        actor_ref: Option<String>,
        /// Host to scale it on (default: the one host running it).
        #[arg(long)]
        host_id: Option<String>,
    },
}

#[derive(Debug, clap::Subcommand)]
enum LinkCommand {
    /// Link an actor to a provider for a contract, with provider settings.
    Put {
        /// The actor's `M...` public key.
        actor_id: String,
        /// The provider's `V...` public key.
        provider_id: String,
        /// The contract, e.g. `wasmcloud:keyvalue`.
        contract_id: String,
        /// Provider settings, `KEY=VALUE` each.
        #[arg(value_name = "KEY=VALUE", value_parser = parse_pair)]
        values: Vec<(String, String)>,
        /// Link name.
        #[arg(long, default_value = DEFAULT_LINK_NAME)]
        link_name: String,
    },
    /// Delete the link of an actor for a contract and link name.
    Del {
        /// The actor's `M...` public key.
        actor_id: String,
        /// The contract.
        contract_id: String,
        /// Link name.
        #[arg(long, default_value = DEFAULT_LINK_NAME)]
        link_name: String,
    },
    /// List every link (same as `wash ctl get links`).
    Query,
}

fn parse_pair(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("`{s}` is not KEY=VALUE")),
    }
}

/// Runs `wash ctl`.
pub fn run(args: CtlArgs, output: OutputFormat) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    runtime.block_on(run_async(args, output))
}

async fn run_async(args: CtlArgs, output: OutputFormat) -> anyhow::Result<()> {
    let ctl = args
        .connect
        .ctl_client(Duration::from_millis(args.timeout_ms))
        .await?;
    match args.command {
        CtlCommand::Get(GetCommand::Hosts) => {
            let hosts = ctl.get_hosts().await.context("failed to list hosts")?;
            output.print(|| hosts_table(&hosts), &HostList { hosts: &hosts })
        }
        CtlCommand::Get(GetCommand::Inventory { host_id: Some(id) }) => {
            let inventory = ctl
                .get_inventory(&id)
                .await
                .context("failed to get the inventory")?;
            output.print(|| inventory_text(&inventory), &inventory)
        }
        CtlCommand::Get(GetCommand::Inventory { host_id: None }) => {
            let inventories = ctl
                .get_inventories()
                .await
                .context("failed to get the inventories")?;
            output.print(
                || {
                    let texts: Vec<String> = inventories.iter().map(inventory_text).collect();
                    texts.join("\n\n")
                },
                &InventoryList {
                    inventories: &inventories,
                },
            )
        }
        CtlCommand::Get(GetCommand::Claims) => {
            let claims = ctl.get_claims().await.context("failed to get claims")?;
            output.print(|| claims_table(&claims), &claims)
        }
        CtlCommand::Get(GetCommand::Links) | CtlCommand::Link(LinkCommand::Query) => {
            let links = ctl.get_links().await.context("failed to get links")?;
            output.print(|| links_table(&links.links), &links)
        }
        CtlCommand::Start(StartCommand::Actor {
            actor_ref,
            host_id,
            count,
            constraints,
        }) => {
            let actor_ref = absolute_ref(&actor_ref);
            let host_id = match host_id {
                Some(id) => id,
                None => auction_actor(&ctl, &actor_ref, constraints).await?,
            };
            ctl.start_actor(&host_id, &actor_ref, count)
                .await
                .context("failed to start the actor")?;
            let what = format!("start {count} instance(s) of {actor_ref}");
            acknowledged(output, &ctl, &host_id, &what)
        }
        CtlCommand::Start(StartCommand::Provider {
            provider_ref,
            link_name,
            host_id,
            config_json,
            constraints,
        }) => {
            let host_id = match host_id {
                Some(id) => id,
                None => auction_provider(&ctl, &provider_ref, &link_name, constraints).await?,
            };
            ctl.start_provider(&host_id, &provider_ref, &link_name, config_json)
                .await
                .context("failed to start the provider")?;
            let what = format!("start provider {provider_ref} (link name {link_name})");
            acknowledged(output, &ctl, &host_id, &what)
        }
        CtlCommand::Stop(StopCommand::Actor {
            actor_id,
            host_id,
            count,
        }) => {
            let host_id = match host_id {
                Some(id) => id,
                None => host_running_actor(&ctl, &actor_id).await?,
            };
            ctl.stop_actor(&host_id, &actor_id, count)
                .await
                .context("failed to stop the actor")?;
            let what = format!("stop {count} instance(s) of actor {actor_id}");
            acknowledged(output, &ctl, &host_id, &what)
        }
        CtlCommand::Stop(StopCommand::Provider {
            provider_id,
            contract_id,
            link_name,
            host_id,
        }) => {
            let host_id = match host_id {
                Some(id) => id,
                None => host_running_provider(&ctl, &provider_id, &link_name).await?,
            };
            ctl.stop_provider(&host_id, &provider_id, &link_name, &contract_id)
                .await
                .context("failed to stop the provider")?;
            let what = format!("stop provider {provider_id} (link name {link_name})");
            acknowledged(output, &ctl, &host_id, &what)
        }
        CtlCommand::Stop(StopCommand::Host {
            host_id,
            host_timeout_ms,
        }) => {
            ctl.stop_host(&host_id, host_timeout_ms.map(Duration::from_millis))
                .await
                .context("failed to stop the host")?;
            acknowledged(output, &ctl, &host_id, "stop")
        }
        CtlCommand::Scale(ScaleCommand::Actor {
            actor_id,
            count,
            actor_ref,
            host_id,
        }) => {
            let actor_ref = actor_ref.as_deref().map(absolute_ref);
            let host_id = match host_id {
                Some(id) => id,
                None => host_running_actor(&ctl, &actor_id).await?,
            };
            ctl.scale_actor(&host_id, &actor_id, actor_ref.as_deref(), count)
                .await
                .context("failed to scale the actor")?;
            let what = format!("scale actor {actor_id} to {count} instance(s)");
            acknowledged(output, &ctl, &host_id, &what)
        }
        CtlCommand::Link(LinkCommand::Put {
            actor_id,
            provider_id,
            contract_id,
            values,
            link_name,
        }) => {
            let values: HashMap<String, String> = values.into_iter().collect();
            let link =
                LinkDefinition::new(&actor_id, &provider_id, &link_name, &contract_id, values);
            ctl.put_link(link.clone())
                .await
                .context("failed to put the link")?;
            output.print(
                || {
                    format!(
                        "Linked actor {actor_id} to provider {provider_id} for {contract_id} (link name {link_name})"
                    )
                },
                &LinkResult {
                    accepted: true,
                    error: "",
                    link: Some(&link),
                    actor_id: &actor_id,
                    contract_id: &contract_id,
                    link_name: &link_name,
                },
            )
        }
        CtlCommand::Link(LinkCommand::Del {
            actor_id,
            contract_id,
            link_name,
        }) => {
            ctl.delete_link(&actor_id, &contract_id, &link_name)
                .await
                .context("failed to delete the link")?;
            output.print(
                || {
                    format!(
                        "Deleted the link of actor {actor_id} for {contract_id} (link name {link_name})"
                    )
                },
                &LinkResult {
                    accepted: true,
                    error: "",
                    link: None,
                    actor_id: &actor_id,
                    contract_id: &contract_id,
                    link_name: &link_name,
                },
            )
        }
    }
}

/// A path that exists here is sent absolute: the host resolves relative paths against
/// its own working directory, which is rarely the user's.
fn absolute_ref(actor_ref: &str) -> String {
    let path = Path::new(actor_ref.strip_prefix("file://").unwrap_or(actor_ref));
    if path.is_relative()
        && path.is_file()
        && let Ok(absolute) = std::path::absolute(path)
    {
        return absolute.display().to_string();
    }
    actor_ref.to_string()
}

async fn auction_actor(
    ctl: &CtlClient,
    actor_ref: &str,
    constraints: Vec<(String, String)>,
) -> anyhow::Result<String> {
    let constraints: StringMap = constraints.into_iter().collect();
    let bids = ctl
        .auction_actor(actor_ref, constraints.clone())
        .await
        .context("failed to find a host for the actor")?;
    first_bid(bids.into_iter().map(|b| b.host_id), &constraints)
}

async fn auction_provider(
    ctl: &CtlClient,
    provider_ref: &str,
    link_name: &str,
    constraints: Vec<(String, String)>,
) -> anyhow::Result<String> {
    let constraints: StringMap = constraints.into_iter().collect();
    let bids = ctl
        .auction_provider(provider_ref, link_name, constraints.clone())
        .await
        .context("failed to find a host for the provider")?;
    first_bid(bids.into_iter().map(|b| b.host_id), &constraints)
}

fn first_bid(
    mut hosts: impl Iterator<Item = String>,
    constraints: &StringMap,
) -> anyhow::Result<String> {
    match hosts.next() {
        Some(host) => Ok(host),
        None if constraints.is_empty() => bail!(
            "no host offered to run it (hosts already running a provider under this link name do not bid); pass --host-id"
        ),
        None => bail!(
            "no host has the labels {}; check them with `wash ctl get hosts` or pass --host-id",
            pairs(constraints)
        ),
    }
}

async fn host_running_actor(ctl: &CtlClient, actor_id: &str) -> anyhow::Result<String> {
    let hosts: Vec<String> = ctl
        .find_actor(actor_id)
        .await
        .with_context(|| format!("failed to find the host running actor {actor_id}"))?
        .into_iter()
        .map(|inv| inv.host_id)
        .collect();
    one_host(hosts, ctl, &format!("actor {actor_id}"))
}

async fn host_running_provider(
    ctl: &CtlClient,
    provider_id: &str,
    link_name: &str,
) -> anyhow::Result<String> {
    let hosts: Vec<String> = ctl
        .get_inventories()
        .await
        .with_context(|| format!("failed to find the host running provider {provider_id}"))?
        .into_iter()
        .filter(|inv| {
            inv.providers
                .iter()
                .any(|p| p.id == provider_id && p.link_name == link_name)
        })
        .map(|inv| inv.host_id)
        .collect();
    one_host(
        hosts,
        ctl,
        &format!("provider {provider_id} (link name {link_name})"),
    )
}

fn one_host(mut hosts: Vec<String>, ctl: &CtlClient, what: &str) -> anyhow::Result<String> {
    match hosts.len() {
        1 => Ok(hosts.remove(0)),
        0 => bail!(
            "{what} is not running on any host of lattice `{}`; check `wash ctl get inventory`",
            ctl.lattice()
        ),
        _ => bail!(
            "{what} runs on several hosts ({}); pass --host-id to choose one",
            hosts.join(", ")
        ),
    }
}

#[derive(Serialize)]
struct HostList<'a> {
    hosts: &'a [Host],
}

#[derive(Serialize)]
struct InventoryList<'a> {
    inventories: &'a [HostInventory],
}

/// JSON of an acknowledged command: the ack fields plus what was commanded.
#[derive(Serialize)]
struct CommandResult<'a> {
    accepted: bool,
    error: &'a str,
    host_id: &'a str,
    command: &'a str,
}

#[derive(Serialize)]
struct LinkResult<'a> {
    accepted: bool,
    error: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    link: Option<&'a LinkDefinition>,
    actor_id: &'a str,
    contract_id: &'a str,
    link_name: &'a str,
}

fn acknowledged(
    output: OutputFormat,
    ctl: &CtlClient,
    host_id: &str,
    what: &str,
) -> anyhow::Result<()> {
    output.print(
        || {
            format!(
                "Host {host_id} accepted: {what}\n(the outcome is reported as events on {}; check with `wash ctl get inventory {host_id}`)",
                ctl.subjects().events()
            )
        },
        &CommandResult {
            accepted: true,
            error: "",
            host_id,
            command: what,
        },
    )
}

// ---- Text rendering ---------------------------------------------------------------------

/// Left-aligned columns, two spaces apart, with a header row.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        padded.join("  ").trim_end().to_string()
    };
    let mut lines = vec![line(header.to_vec())];
    lines.extend(
        rows.iter()
            .map(|row| line(row.iter().map(String::as_str).collect())),
    );
    lines.join("\n")
}

fn pairs<'a>(map: impl IntoIterator<Item = (&'a String, &'a String)>) -> String {
    let items: Vec<String> = map.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    items.join(", ")
}

fn hosts_table(hosts: &[Host]) -> String {
    let rows: Vec<Vec<String>> = hosts
        .iter()
        .map(|h| {
            vec![
                h.id.clone(),
                h.friendly_name.clone(),
                h.uptime_human
                    .clone()
                    .unwrap_or_else(|| format!("{}s", h.uptime_seconds)),
                h.version.clone().unwrap_or_default(),
            ]
        })
        .collect();
    table(&["HOST ID", "FRIENDLY NAME", "UPTIME", "VERSION"], &rows)
}

fn inventory_text(inv: &HostInventory) -> String {
    let mut out = format!("Host {} ({})", inv.host_id, inv.friendly_name);
    if !inv.labels.is_empty() {
        out.push_str(&format!("\nLabels: {}", pairs(&inv.labels)));
    }
    out.push_str("\n\n");
    if inv.actors.is_empty() {
        out.push_str("No actors.");
    } else {
        let rows: Vec<Vec<String>> = inv
            .actors
            .iter()
            .map(|a| {
                vec![
                    a.id.clone(),
                    a.name.clone().unwrap_or_default(),
                    a.instances.len().to_string(),
                    a.image_ref.clone().unwrap_or_default(),
                ]
            })
            .collect();
        out.push_str(&table(
            &["ACTOR ID", "NAME", "INSTANCES", "IMAGE REF"],
            &rows,
        ));
    }
    out.push_str("\n\n");
    if inv.providers.is_empty() {
        out.push_str("No providers.");
    } else {
        let rows: Vec<Vec<String>> = inv
            .providers
            .iter()
            .map(|p| {
                vec![
                    p.id.clone(),
                    p.link_name.clone(),
                    p.contract_id.clone(),
                    p.name.clone().unwrap_or_default(),
                    p.image_ref.clone().unwrap_or_default(),
                ]
            })
            .collect();
        out.push_str(&table(
            &["PROVIDER ID", "LINK NAME", "CONTRACT", "NAME", "IMAGE REF"],
            &rows,
        ));
    }
    out
}

fn claims_table(claims: &GetClaimsResponse) -> String {
    if claims.claims.is_empty() {
        return "No claims.".to_string();
    }
    let get = |c: &HashMap<String, String>, k: &str| c.get(k).cloned().unwrap_or_default();
    let mut rows: Vec<Vec<String>> = claims
        .claims
        .iter()
        .map(|c| {
            let contract = get(c, "contract_id");
            vec![
                get(c, "sub"),
                get(c, "name"),
                get(c, "call_alias"),
                if contract.is_empty() {
                    get(c, "caps")
                } else {
                    contract
                },
                get(c, "version"),
                get(c, "rev"),
                get(c, "iss"),
            ]
        })
        .collect();
    rows.sort();
    table(
        &[
            "SUBJECT",
            "NAME",
            "CALL ALIAS",
            "CAPABILITIES / CONTRACT",
            "VERSION",
            "REV",
            "ISSUER",
        ],
        &rows,
    )
}

fn links_table(links: &[LinkDefinition]) -> String {
    if links.is_empty() {
        return "No links.".to_string();
    }
    let mut rows: Vec<Vec<String>> = links
        .iter()
        .map(|l| {
            let values: BTreeMap<&String, &String> = l.values.iter().collect();
            vec![
                l.actor_id.clone(),
                l.provider_id.clone(),
                l.contract_id.clone(),
                l.link_name.clone(),
                pairs(values),
            ]
        })
        .collect();
    rows.sort();
    table(
        &["ACTOR ID", "PROVIDER ID", "CONTRACT", "LINK NAME", "VALUES"],
        &rows,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns() {
        let text = table(
            &["A", "LONG HEADER"],
            &[vec!["xyz".into(), "1".into()], vec!["q".into(), "".into()]],
        );
        assert_eq!(text, "A    LONG HEADER\nxyz  1\nq");
    }

    #[test]
    fn pairs_parse_key_value() {
        assert_eq!(parse_pair("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert!(parse_pair("novalue").is_err());
        assert!(parse_pair("=v").is_err());
    }
}
