//! `wash lattice init` / `wash lattice creds`: the lattice's NATS credentials by role (see
//! [`crate::lattice_auth`]); `wash lattice key`: the lattice's cluster key, the one trust
//! root its hosts share.
//!
//! Hosts sign the invocations they send with a cluster key (`SC...`) and accept only
//! invocations signed by keys they trust. A lattice refuses itself if every host makes its
//! own key, so the key is kept per lattice in the keys directory
//! (`lattice_{LATTICE}_cluster.nk`, 0600, created on first use): every `wash up`, `wash
//! call` and `wash app deploy` on this machine that joins lattice `LATTICE` uses it without
//! a flag. Hosts on other machines get the same key with `wash lattice key export` here and
//! `wash lattice key import` there. `--cluster-seed` / `WASH_CLUSTER_SEED` still win over
//! the stored key.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use nimbus_core::keys::{KeyKind, KeyPair};
use serde::Serialize;

use crate::keys::{self, KeySource};
use crate::output::OutputFormat;

/// `wash lattice ...`.
#[derive(Debug, clap::Subcommand)]
pub enum LatticeCommand {
    /// Make the lattice authenticated: an operator, accounts and one user per role as NATS
    /// JWTs, the `.creds` files and a nats-server configuration (with `--tls`, a generated
    /// certificate), in ~/.wash/lattices/NAME/. `wash up --nats-server` then runs it.
    Init(InitArgs),
    /// Issue new credentials of one role of an initialised lattice (for another machine,
    /// or a provider of its own).
    Creds(CredsArgs),
    /// Cut off one user (a leaked creds file, a retired machine): the lattice's accounts
    /// refuse it, and the nats-servers `wash up --nats-server` runs here reload at once.
    Revoke(RevokeArgs),
    /// Show, export or import the lattice's cluster key (the key its hosts sign
    /// invocations with and trust).
    #[command(subcommand)]
    Key(KeyCommand),
}

/// `wash lattice key ...`.
#[derive(Debug, clap::Subcommand)]
pub enum KeyCommand {
    /// Print the lattice's cluster public key and where it is stored (creates the key if
    /// this machine has none yet).
    Show(KeyArgs),
    /// Print the lattice's cluster seed, to import on another machine (creates the key if
    /// this machine has none yet). The seed is a secret: whoever has it can call actors.
    Export(KeyArgs),
    /// Store a cluster seed exported on another machine as this machine's key of the
    /// lattice; hosts started afterwards sign with it and trust it.
    Import(ImportArgs),
}

/// Which lattice, and where its key lives.
#[derive(Debug, clap::Args)]
pub struct KeyArgs {
    /// The lattice prefix.
    #[arg(long, env = "WASH_LATTICE", default_value = "default")]
    pub lattice: String,
    /// Keys directory (default $WASH_KEYS or ~/.wash/keys).
    #[arg(long, env = "WASH_KEYS")]
    pub keys_dir: Option<PathBuf>,
}

/// Arguments of `wash lattice init`.
#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// The lattice (default: $WASH_LATTICE, else `default`).
    #[arg(value_name = "NAME")]
    pub name: Option<String>,
    /// The port of the written nats-server.conf (`wash up --nats-server PORT` chooses its
    /// own).
    #[arg(long, default_value_t = 4222)]
    pub port: u16,
    /// The address the written nats-server.conf listens on (0.0.0.0 to be reached from
    /// other machines or containers).
    #[arg(long, default_value = "127.0.0.1", value_name = "HOST")]
    pub listen: String,
    /// The JetStream directory of the written nats-server.conf (default: as `wash up
    /// --nats-server`: $WASH_NATS_STORE, else ~/.wash/lattices/NAME/jetstream).
    #[arg(long, value_name = "DIR")]
    pub nats_store: Option<PathBuf>,
    /// Serve TLS with a generated CA and server certificate (clients trust
    /// tls/ca.pem; `wash` commands of the lattice do so by themselves).
    #[arg(long)]
    pub tls: bool,
    /// A DNS name or IP address of the server certificate; repeatable (default:
    /// localhost, 127.0.0.1, ::1).
    #[arg(long = "tls-name", value_name = "NAME", requires = "tls")]
    pub tls_names: Vec<String>,
    /// Write the configuration and credentials again though the lattice has them (same
    /// operator and accounts, so its data stays; earlier credentials keep working).
    #[arg(long)]
    pub force: bool,
    /// Keys directory for the operator and account seeds (default $WASH_KEYS or
    /// ~/.wash/keys).
    #[arg(long, env = "WASH_KEYS")]
    pub keys_dir: Option<PathBuf>,
}

/// Arguments of `wash lattice creds`.
#[derive(Debug, clap::Args)]
pub struct CredsArgs {
    /// The role of the new user.
    #[arg(long, value_enum)]
    pub role: crate::lattice_auth::Role,
    /// Scope provider credentials to this provider (`V...`): only its own subjects.
    #[arg(long, value_name = "PUBLIC_KEY")]
    pub provider_key: Option<String>,
    /// Where to write the `.creds` file (mode 0600).
    #[arg(long, short = 'o', value_name = "FILE")]
    pub out: PathBuf,
    #[command(flatten)]
    pub key: KeyArgs,
}

/// Arguments of `wash lattice revoke`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("who").required(true).args(["creds", "user"])))]
pub struct RevokeArgs {
    /// The creds file whose user to revoke.
    #[arg(long, value_name = "FILE")]
    pub creds: Option<PathBuf>,
    /// The public key (`U...`) of the user to revoke.
    #[arg(long, value_name = "PUBLIC_KEY")]
    pub user: Option<String>,
    #[command(flatten)]
    pub key: KeyArgs,
}

/// Arguments of `wash lattice key import`.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The cluster seed (`SC...`); `-` reads it from stdin.
    pub seed: String,
    #[command(flatten)]
    pub key: KeyArgs,
    /// Replace a different key this machine already has for the lattice (hosts still
    /// running with the old key must be restarted).
    #[arg(long)]
    pub force: bool,
}

#[derive(Serialize)]
struct KeyReport {
    lattice: String,
    public_key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<String>,
    #[serde(flatten)]
    source: KeySource,
}

/// Runs `wash lattice ...`.
pub fn run(cmd: LatticeCommand, output: OutputFormat) -> anyhow::Result<()> {
    let cmd = match cmd {
        LatticeCommand::Init(args) => return init(args, output),
        LatticeCommand::Creds(args) => return creds(args, output),
        LatticeCommand::Revoke(args) => return revoke(args, output),
        LatticeCommand::Key(cmd) => cmd,
    };
    match cmd {
        KeyCommand::Show(args) => {
            let (key, source) = stored_cluster_key(&args)?;
            let report = KeyReport {
                lattice: args.lattice.clone(),
                public_key: key.public_key(),
                seed: None,
                source,
            };
            output.print(
                || {
                    format!(
                        "lattice `{}` cluster key {} ({})",
                        report.lattice,
                        report.public_key,
                        report.source.describe()
                    )
                },
                &report,
            )
        }
        KeyCommand::Export(args) => {
            let (key, source) = stored_cluster_key(&args)?;
            let seed = key.seed().context("failed to encode the cluster seed")?;
            let report = KeyReport {
                lattice: args.lattice.clone(),
                public_key: key.public_key(),
                seed: Some(seed.clone()),
                source,
            };
            output.print(
                || {
                    format!(
                        "{seed}\n# cluster key {} of lattice `{}`; on another machine run:\n#   wash lattice key import --lattice {} {seed}",
                        report.public_key, report.lattice, report.lattice
                    )
                },
                &report,
            )
        }
        KeyCommand::Import(args) => {
            let seed = if args.seed == "-" {
                let mut text = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                    .context("failed to read the seed from stdin")?;
                text
            } else {
                args.seed.clone()
            };
            let dir = keys::keys_dir(args.key.keys_dir.clone())?;
            let (key, source) = import(&dir, &args.key.lattice, seed.trim(), args.force)?;
            let report = KeyReport {
                lattice: args.key.lattice.clone(),
                public_key: key.public_key(),
                seed: None,
                source,
            };
            output.print(
                || {
                    format!(
                        "lattice `{}` now uses cluster key {} ({}); restart this machine's hosts of the lattice to use it",
                        report.lattice,
                        report.public_key,
                        report.source.describe()
                    )
                },
                &report,
            )
        }
    }
}

/// `wash lattice init`.
fn init(args: InitArgs, output: OutputFormat) -> anyhow::Result<()> {
    let lattice = args
        .name
        .clone()
        .or_else(|| std::env::var("WASH_LATTICE").ok().filter(|l| !l.is_empty()))
        .unwrap_or_else(|| "default".to_string());
    let keys_dir = keys::keys_dir(args.keys_dir.clone())?;
    let dir = crate::lattice_auth::LatticeDir::of(&lattice)?;
    let store_dir = crate::up::nats_store_dir(args.nats_store.clone(), &lattice)?;
    let report = crate::lattice_auth::init(&crate::lattice_auth::InitOptions {
        lattice: lattice.clone(),
        keys_dir,
        dir,
        listen_host: args.listen.clone(),
        port: args.port,
        store_dir,
        tls_names: args.tls.then(|| args.tls_names.clone()),
        force: args.force,
    })?;
    output.print(|| init_text(&report), &report)
}

fn init_text(report: &crate::lattice_auth::InitReport) -> String {
    let mut text = format!(
        "lattice `{}` is authenticated: operator {}, account {}\nin {}:",
        report.lattice, report.operator, report.account, report.dir
    );
    for c in &report.creds {
        text.push_str(&format!("\n  {:<9} {}", c.role.name(), c.path));
    }
    text.push_str(&format!("\n  config    {}", report.server_conf));
    if let Some(ca) = &report.tls_ca {
        text.push_str(&format!("\n  TLS CA    {ca} (what clients trust)"));
    }
    text.push_str(&format!(
        "\nnext: `wash up --nats-server --lattice {0}` runs it (or `nats-server -c {1}`); `wash` commands of lattice `{0}` on this machine use wash.creds by themselves (--creds FILE for another)",
        report.lattice, report.server_conf
    ));
    text
}

#[derive(Serialize)]
struct CredsReport {
    lattice: String,
    role: crate::lattice_auth::Role,
    user: String,
    path: String,
}

/// `wash lattice creds`.
fn creds(args: CredsArgs, output: OutputFormat) -> anyhow::Result<()> {
    let keys_dir = keys::keys_dir(args.key.keys_dir.clone())?;
    let user = crate::lattice_auth::issue_creds(
        &keys_dir,
        &args.key.lattice,
        args.role,
        args.provider_key.as_deref(),
        &args.out,
    )?;
    let report = CredsReport {
        lattice: args.key.lattice.clone(),
        role: args.role,
        user,
        path: args.out.display().to_string(),
    };
    output.print(
        || {
            format!(
                "{} credentials of lattice `{}` (user {}) written to {}",
                report.role.name(),
                report.lattice,
                report.user,
                report.path
            )
        },
        &report,
    )
}

/// `wash lattice revoke`.
fn revoke(args: RevokeArgs, output: OutputFormat) -> anyhow::Result<()> {
    let keys_dir = keys::keys_dir(args.key.keys_dir.clone())?;
    let lattice = &args.key.lattice;
    let user = match (&args.user, &args.creds) {
        (Some(user), _) => user.clone(),
        (None, Some(creds)) => crate::lattice_auth::creds_user_key(creds)?,
        (None, None) => bail!("say whom to revoke: --creds FILE or --user PUBLIC_KEY"),
    };
    let dir = crate::lattice_auth::LatticeDir::of(lattice)?;
    let report = crate::lattice_auth::revoke(&keys_dir, &dir, lattice, &user)?;
    output.print(
        || {
            let next = if report.reloaded.is_empty() {
                format!(
                    "no `wash up --nats-server` of the lattice runs here: a nats-server started otherwise needs {} and a reload (`nats-server --signal reload`)",
                    report.auth_conf
                )
            } else {
                format!(
                    "reloaded nats-server pid {}",
                    report
                        .reloaded
                        .iter()
                        .map(u32::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            format!(
                "user {} of lattice `{}` revoked (written to {}); {next}",
                report.user, report.lattice, report.auth_conf
            )
        },
        &report,
    )
}

fn stored_cluster_key(args: &KeyArgs) -> anyhow::Result<(KeyPair, KeySource)> {
    let dir = keys::keys_dir(args.keys_dir.clone())?;
    keys::load_or_generate(&dir, &key_name(&args.lattice), KeyKind::Cluster)
}

/// The name of a lattice's cluster key in the keys directory.
pub fn key_name(lattice: &str) -> String {
    format!("lattice_{}_cluster", keys::sanitize_key_name(lattice))
}

/// The cluster seed a command joining `lattice` signs with: `explicit` (`--cluster-seed`,
/// `WASH_CLUSTER_SEED`) when given, else the lattice's key from the keys directory,
/// created there on first use.
pub fn cluster_seed(
    explicit: Option<&str>,
    keys_dir: &Path,
    lattice: &str,
) -> anyhow::Result<(String, KeySource)> {
    // An empty value (`WASH_CLUSTER_SEED=` in a compose file) means "not given".
    if let Some(seed) = explicit.filter(|s| !s.trim().is_empty()) {
        let key = KeyPair::from_seed_of_kind(seed.trim(), KeyKind::Cluster).context(
            "the cluster seed is not usable: give the SC... seed of the lattice (--cluster-seed / WASH_CLUSTER_SEED), or neither to use the stored lattice key",
        )?;
        let seed = key.seed().context("failed to encode the cluster seed")?;
        return Ok((seed, KeySource::Given));
    }
    let (key, source) = keys::load_or_generate(keys_dir, &key_name(lattice), KeyKind::Cluster)
        .with_context(|| format!("failed to load the cluster key of lattice `{lattice}`"))?;
    let seed = key.seed().context("failed to encode the cluster seed")?;
    Ok((seed, source))
}

/// The public key of this machine's stored key of `lattice`, if it has one (nothing is
/// created).
pub fn stored_public_key(keys_dir: &Path, lattice: &str) -> Option<String> {
    let path = keys::key_path(keys_dir, &key_name(lattice));
    keys::read_seed_file(&path).ok().map(|k| k.public_key())
}

/// Stores `seed` as the key of `lattice`. The same key again is a no-op; a different key
/// replaces the stored one only with `force`, because hosts and callers still using the
/// old one would stop trusting each other.
fn import(
    dir: &Path,
    lattice: &str,
    seed: &str,
    force: bool,
) -> anyhow::Result<(KeyPair, KeySource)> {
    let key = KeyPair::from_seed_of_kind(seed, KeyKind::Cluster).context(
        "not a cluster seed: give the SC... seed that `wash lattice key export` printed",
    )?;
    let name = key_name(lattice);
    let path = keys::key_path(dir, &name);
    if path.exists() {
        let existing = keys::read_seed_file(&path)?;
        if existing.public_key() == key.public_key() {
            return Ok((
                key,
                KeySource::Stored {
                    path: path.display().to_string(),
                },
            ));
        }
        if !force {
            bail!(
                "this machine already has cluster key {} for lattice `{lattice}` ({}); pass --force to replace it with {} (then restart the hosts here)",
                existing.public_key(),
                path.display(),
                key.public_key()
            );
        }
        keys::replace_seed(dir, &path, &key)?;
    } else if !keys::store_seed(dir, &path, &key)? {
        bail!(
            "another process created {} a moment ago; run the import again",
            path.display()
        );
    }
    Ok((
        key,
        KeySource::Generated {
            path: path.display().to_string(),
        },
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn one_key_per_lattice_created_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        let (first, source) = cluster_seed(None, &keys, "default").unwrap();
        assert!(matches!(source, KeySource::Generated { .. }));
        let (again, source) = cluster_seed(None, &keys, "default").unwrap();
        assert_eq!(first, again);
        assert!(matches!(source, KeySource::Stored { .. }));
        let (other, _) = cluster_seed(None, &keys, "staging").unwrap();
        assert_ne!(first, other, "each lattice has its own key");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let file = keys.join(format!("{}.nk", key_name("default")));
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{mode:o}");
            let mode = std::fs::metadata(&keys).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700, "{mode:o}");
        }
        let given = KeyPair::generate(KeyKind::Cluster).seed().unwrap();
        let (used, source) = cluster_seed(Some(&given), &keys, "default").unwrap();
        assert_eq!(used, given, "an explicit seed wins");
        assert!(matches!(source, KeySource::Given));
        let wrong = KeyPair::generate(KeyKind::Account).seed().unwrap();
        assert!(cluster_seed(Some(&wrong), &keys, "default").is_err());
    }

    #[test]
    fn import_refuses_to_replace_a_different_key_without_force() {
        let dir = tempfile::tempdir().unwrap();
        let (mine, _) = cluster_seed(None, dir.path(), "default").unwrap();
        let theirs = KeyPair::generate(KeyKind::Cluster);
        let seed = theirs.seed().unwrap();
        let err = import(dir.path(), "default", &seed, false).unwrap_err();
        assert!(err.to_string().contains("--force"), "{err:#}");
        assert_eq!(cluster_seed(None, dir.path(), "default").unwrap().0, mine);
        // The same key again is fine; --force replaces.
        import(dir.path(), "default", &mine, false).unwrap();
        import(dir.path(), "default", &seed, true).unwrap();
        assert_eq!(cluster_seed(None, dir.path(), "default").unwrap().0, seed);
        assert_eq!(
            stored_public_key(dir.path(), "default"),
            Some(theirs.public_key())
        );
        // A seed of another kind is refused with what to give instead.
        let account = KeyPair::generate(KeyKind::Account).seed().unwrap();
        let err = import(dir.path(), "other", &account, false).unwrap_err();
        assert!(err.to_string().contains("SC..."), "{err:#}");
        assert_eq!(stored_public_key(dir.path(), "other"), None);
    }
}
