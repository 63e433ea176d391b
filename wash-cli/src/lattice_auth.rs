//! A lattice only its members can reach: NATS decentralized auth for one lattice.
//!
//! `wash lattice init NAME` creates, in `~/.wash/lattices/NAME/` (next to the keys in
//! `~/.wash/keys`, where the JetStream store of `wash up --nats-server` lives too):
//!
//! - an operator, an account `NAME` (JetStream on) for the lattice's members and an
//!   account `NAME_data` (JetStream on) for the key-value provider's `backend=nats` data,
//!   as JWTs signed with nkeys (made by `nimbus-lattice-auth`; the operator and account seeds
//!   stay in the keys directory as `lattice_NAME_operator.nk`, `lattice_NAME_account.nk`
//!   and `lattice_NAME_data_account.nk`);
//! - one user per role, as `.creds` files (mode 0600): [`Role::Host`],
//!   [`Role::Provider`], [`Role::Wash`], [`Role::Observer`] and [`Role::Keyvalue`]; each
//!   role's subject permissions are in `Role::permissions` (`nimbus-lattice-auth`);
//! - `auth.conf`: the operator, `resolver: MEMORY` with both accounts preloaded, and (with
//!   `--tls`) the server certificate; `nats-server.conf`: a complete server configuration
//!   (listen address, JetStream with `sync_interval: always`, `include "auth.conf"`) to
//!   run by hand with `nats-server -c`;
//! - with `--tls`, `tls/ca.pem` (a generated CA, what clients trust) and the server
//!   certificate and key it signed.
//!
//! `wash up --nats-server` starts its nats-server with `auth.conf` and connects with
//! `host.creds`, handing out provider credentials to the providers it starts; every other
//! `wash` command that talks to NATS uses `wash.creds` of its lattice when no `--creds`
//! is given.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use nimbus_core::keys::{KeyKind, KeyPair};
pub use nimbus_lattice_auth::Role;
use nimbus_lattice_auth::{Revocations, Signers};
use serde::Serialize;

use crate::keys;

/// The configuration file with the operator, the resolver and (with TLS) the certificate.
pub const AUTH_CONF: &str = "auth.conf";
/// The complete nats-server configuration `wash lattice init` writes.
pub const SERVER_CONF: &str = "nats-server.conf";
/// The directory of the per-provider credentials `wash up` issues.
pub const PROVIDERS_DIR: &str = "providers";
/// The CA certificate clients trust when the lattice uses TLS.
pub const TLS_CA: &str = "tls/ca.pem";
/// The users `wash lattice revoke` cut off, kept so every rewrite of `auth.conf` keeps them.
pub const REVOCATIONS: &str = "revocations.json";
const TLS_CERT: &str = "tls/server-cert.pem";
const TLS_KEY: &str = "tls/server-key.pem";

/// Checks that `lattice` can be one token of a NATS subject and a directory name.
pub fn check_lattice_name(lattice: &str) -> anyhow::Result<()> {
    let ok = !lattice.is_empty()
        && lattice.len() <= 64
        && lattice
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !ok {
        bail!(
            "lattice name `{lattice}` cannot name NATS subjects and a directory: use 1 to 64 letters, digits, `-` or `_`"
        );
    }
    Ok(())
}

/// The per-lattice directory, `~/.wash/lattices/LATTICE/`, with the files
/// `wash lattice init` writes there.
#[derive(Debug, Clone)]
pub struct LatticeDir {
    root: PathBuf,
}

impl LatticeDir {
    /// The directory of `lattice` under `$HOME/.wash/lattices`.
    pub fn of(lattice: &str) -> anyhow::Result<Self> {
        check_lattice_name(lattice)?;
        let home = std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .context("failed to find the lattices directory (~/.wash/lattices): set HOME")?;
        Ok(Self::at(
            PathBuf::from(home)
                .join(".wash")
                .join("lattices")
                .join(lattice),
        ))
    }

    /// A lattice directory at `root`.
    pub fn at(root: PathBuf) -> Self {
        Self { root }
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The credentials file of `role`.
    pub fn creds(&self, role: Role) -> PathBuf {
        self.root.join(format!("{}.creds", role.name()))
    }

    /// The directory of per-provider credentials (`{provider key}.creds`).
    pub fn providers_dir(&self) -> PathBuf {
        self.root.join(PROVIDERS_DIR)
    }

    /// `auth.conf`.
    pub fn auth_conf(&self) -> PathBuf {
        self.root.join(AUTH_CONF)
    }

    /// `nats-server.conf`.
    pub fn server_conf(&self) -> PathBuf {
        self.root.join(SERVER_CONF)
    }

    /// The CA certificate of the lattice's TLS, when it has one.
    pub fn tls_ca(&self) -> Option<PathBuf> {
        Some(self.root.join(TLS_CA)).filter(|p| p.is_file())
    }

    /// The users revoked so far (none before the first `wash lattice revoke`).
    pub fn read_revocations(&self) -> anyhow::Result<Revocations> {
        let path = self.root.join(REVOCATIONS);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| {
                format!(
                    "{} is not a map of user keys to times; fix or remove it, then run `wash lattice revoke` again",
                    path.display()
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Revocations::new()),
            Err(e) => Err(e).with_context(|| format!("failed to read {}", path.display())),
        }
    }

    /// The configuration `wash up --nats-server` writes for its server on `port`: here,
    /// beside `auth.conf`, which it includes, so that a reload re-reads the lattice's auth.
    pub fn local_server_conf(&self, port: u16) -> PathBuf {
        self.root.join(format!("nats-server-{port}.conf"))
    }

    /// The pid file of the server on `port` that `wash up --nats-server` runs.
    pub fn local_server_pid(&self, port: u16) -> PathBuf {
        self.root.join(format!("nats-server-{port}.pid"))
    }

    /// The pids of the nats-servers `wash up --nats-server` runs for this lattice now.
    fn running_local_servers(&self) -> Vec<u32> {
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter(|e| {
                let name = e.file_name();
                let name = name.to_string_lossy();
                name.starts_with("nats-server-") && name.ends_with(".pid")
            })
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .filter_map(|text| text.trim().parse::<u32>().ok())
            .filter(|pid| Path::new(&format!("/proc/{pid}")).exists())
            .collect()
    }

    /// The server certificate and key, when the lattice serves TLS.
    fn tls_files(&self) -> Option<(PathBuf, PathBuf)> {
        self.tls_ca()
            .map(|_| (self.root.join(TLS_CERT), self.root.join(TLS_KEY)))
    }

    /// Whether `wash lattice init` ran for this lattice (its `auth.conf` exists).
    pub fn is_initialised(&self) -> bool {
        self.auth_conf().is_file()
    }

    /// The `auth.conf` text, for a nats-server configuration `wash up` writes.
    pub fn read_auth_conf(&self) -> anyhow::Result<String> {
        let path = self.auth_conf();
        std::fs::read_to_string(&path).with_context(|| {
            format!(
                "failed to read {}; run `wash lattice init` again to rewrite it",
                path.display()
            )
        })
    }
}

/// The creds file a `wash` client of `lattice` uses when none is given: the lattice's
/// `wash.creds`, if `wash lattice init` wrote one on this machine.
pub fn default_client_creds(lattice: &str) -> Option<PathBuf> {
    LatticeDir::of(lattice)
        .ok()
        .map(|d| d.creds(Role::Wash))
        .filter(|p| p.is_file())
}

/// The CA certificate a `wash` client of `lattice` trusts when none is given.
pub fn default_tls_ca(lattice: &str) -> Option<PathBuf> {
    LatticeDir::of(lattice).ok().and_then(|d| d.tls_ca())
}

/// What `wash lattice init` is asked to do.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// The lattice.
    pub lattice: String,
    /// Where the operator and account seeds are kept.
    pub keys_dir: PathBuf,
    /// The lattice directory to write.
    pub dir: LatticeDir,
    /// The address the written `nats-server.conf` listens on (`127.0.0.1` for a local
    /// lattice, `0.0.0.0` in a container).
    pub listen_host: String,
    /// The port of the written `nats-server.conf`.
    pub port: u16,
    /// The JetStream store of the written `nats-server.conf`.
    pub store_dir: PathBuf,
    /// Generate a CA and a server certificate for these names (DNS names or IPs).
    pub tls_names: Option<Vec<String>>,
    /// Rewrite an initialised lattice (same operator and accounts, new user keys).
    pub force: bool,
}

/// What `wash lattice init` wrote.
#[derive(Debug, Clone, Serialize)]
pub struct InitReport {
    /// The lattice.
    pub lattice: String,
    /// The lattice directory.
    pub dir: String,
    /// The operator's public key.
    pub operator: String,
    /// The lattice account's public key.
    pub account: String,
    /// The data account's public key.
    pub data_account: String,
    /// The written nats-server configuration.
    pub server_conf: String,
    /// The credentials files, by role.
    pub creds: Vec<IssuedCreds>,
    /// The CA certificate clients trust (with `--tls`).
    pub tls_ca: Option<String>,
}

/// One credentials file.
#[derive(Debug, Clone, Serialize)]
pub struct IssuedCreds {
    /// The role.
    pub role: Role,
    /// The user's public key.
    pub user: String,
    /// The file.
    pub path: String,
}

/// The operator and account keys of `lattice`, from the keys directory (created there on
/// first use).
fn load_signers(keys_dir: &Path, lattice: &str) -> anyhow::Result<Signers> {
    let load = |suffix: &str, kind| {
        keys::load_or_generate(keys_dir, &key_name(lattice, suffix), kind)
            .map(|(k, _)| k)
            .with_context(|| format!("failed to load the {suffix} key of lattice `{lattice}`"))
    };
    Ok(Signers {
        operator: load("operator", KeyKind::Operator)?,
        system_account: load("system_account", KeyKind::Account)?,
        account: load("account", KeyKind::Account)?,
        data_account: load("data_account", KeyKind::Account)?,
    })
}

/// Whether this machine holds the account key that the lattice directory's `auth.conf`
/// trusts (the keys directory may hold another machine's lattice of the same name): only
/// then can it issue or revoke users the lattice's server honours.
fn holds_trusted_account(dir: &LatticeDir, keys_dir: &Path, lattice: &str) -> bool {
    stored_account(keys_dir, lattice).is_some_and(|account| {
        dir.read_auth_conf()
            .is_ok_and(|auth| auth.contains(&account.public_key()))
    })
}

/// The lattice account's key, if this machine has it (nothing is created).
fn stored_account(keys_dir: &Path, lattice: &str) -> Option<KeyPair> {
    let path = keys::key_path(keys_dir, &key_name(lattice, "account"));
    keys::read_seed_file(&path)
        .ok()
        .filter(|k| k.kind() == KeyKind::Account)
}

fn key_name(lattice: &str, suffix: &str) -> String {
    format!("lattice_{}_{suffix}", keys::sanitize_key_name(lattice))
}

/// Runs `wash lattice init`: keys, JWTs, creds, configuration and certificates.
pub fn init(options: &InitOptions) -> anyhow::Result<InitReport> {
    let lattice = options.lattice.as_str();
    check_lattice_name(lattice)?;
    let dir = &options.dir;
    if dir.is_initialised() && !options.force {
        bail!(
            "lattice `{lattice}` is already initialised in {} (its credentials are the *.creds files there); pass --force to write its configuration and credentials again (same operator and accounts, so the data stays; the old credentials keep working)",
            dir.root().display()
        );
    }
    create_private_dir(dir.root())?;
    let signers = load_signers(&options.keys_dir, lattice)?;

    let mut creds = Vec::new();
    for role in Role::ALL {
        let user = signers.issue_user(lattice, role, None)?;
        let path = dir.creds(role);
        write_private(&path, &user.creds)?;
        creds.push(IssuedCreds {
            role,
            user: user.public_key,
            path: path.display().to_string(),
        });
    }

    let tls = match &options.tls_names {
        Some(names) => Some(write_tls(dir, names)?),
        None => {
            // A lattice made without TLS has none, even if an earlier init had.
            let _ = std::fs::remove_file(dir.root().join(TLS_CA));
            None
        }
    };
    write_auth_conf(
        dir,
        &signers,
        lattice,
        tls.as_ref().map(|t| (t.cert.as_path(), t.key.as_path())),
    )?;

    let store = std::path::absolute(&options.store_dir)
        .with_context(|| format!("failed to resolve {}", options.store_dir.display()))?;
    let server = format!(
        "# nats-server configuration of lattice `{lattice}`, written by `wash lattice init`;\n\
         # run it with `nats-server -c {}` (`wash up --nats-server` writes its own, with the\n\
         # same auth.conf). JetStream writes are on disk before they are acknowledged.\n\
         listen: \"{}:{}\"\n\
         jetstream {{\n  store_dir: {:?}\n  sync_interval: always\n}}\n\
         include \"{AUTH_CONF}\"\n",
        dir.server_conf().display(),
        options.listen_host,
        options.port,
        store.display().to_string(),
    );
    write_private(&dir.server_conf(), &server)?;

    Ok(InitReport {
        lattice: lattice.to_string(),
        dir: dir.root().display().to_string(),
        operator: signers.operator.public_key(),
        account: signers.account.public_key(),
        data_account: signers.data_account.public_key(),
        server_conf: dir.server_conf().display().to_string(),
        creds,
        tls_ca: tls.map(|t| t.ca.display().to_string()),
    })
}

/// Writes the lattice's `auth.conf`, with the users revoked so far.
fn write_auth_conf(
    dir: &LatticeDir,
    signers: &Signers,
    lattice: &str,
    tls: Option<(&Path, &Path)>,
) -> anyhow::Result<()> {
    let revoked = dir.read_revocations()?;
    // The operator JWT of the current auth.conf, if it is this operator's: a running
    // nats-server reloads only a configuration with the same trusted operator.
    let current = std::fs::read_to_string(dir.auth_conf()).unwrap_or_default();
    let operator = current
        .contains(&signers.operator.public_key())
        .then(|| {
            current.lines().find_map(|l| {
                l.strip_prefix("operator: \"")
                    .and_then(|rest| rest.strip_suffix('"'))
            })
        })
        .flatten();
    let auth = signers.auth_conf(lattice, tls, &revoked, operator)?;
    write_private(
        &dir.auth_conf(),
        &format!("# Written by `wash lattice init` (and `wash lattice revoke`).\n{auth}"),
    )
}

/// What `wash lattice revoke` did.
#[derive(Debug, Clone, Serialize)]
pub struct RevokeReport {
    /// The lattice.
    pub lattice: String,
    /// The revoked user's public key.
    pub user: String,
    /// Unix time (s): its JWTs issued until then are refused.
    pub revoked_at: u64,
    /// The rewritten `auth.conf`.
    pub auth_conf: String,
    /// The running nats-servers of `wash up --nats-server` told to reload it.
    pub reloaded: Vec<u32>,
}

/// The user key of a `.creds` file (from its seed).
pub fn creds_user_key(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("failed to read the creds file {}", path.display()))?;
    let seed = text
        .lines()
        .skip_while(|l| !l.contains("BEGIN USER NKEY SEED"))
        .nth(1)
        .map(str::trim)
        .with_context(|| {
            format!(
                "{} holds no user seed: is it a .creds file?",
                path.display()
            )
        })?;
    let key = KeyPair::from_seed_of_kind(seed, KeyKind::User)
        .with_context(|| format!("{} holds no valid user seed", path.display()))?;
    Ok(key.public_key())
}

/// Revokes user `user` of `lattice`: the account JWTs in `auth.conf` name it, and the
/// nats-servers `wash up --nats-server` runs for the lattice on this machine reload them
/// (they refuse the user from then on and close its connections). A server run another
/// way needs `auth.conf` copied to it and a reload (`nats-server --signal reload`).
pub fn revoke(
    keys_dir: &Path,
    dir: &LatticeDir,
    lattice: &str,
    user: &str,
) -> anyhow::Result<RevokeReport> {
    check_lattice_name(lattice)?;
    nimbus_core::keys::parse_public_key_of_kind(user, KeyKind::User).with_context(|| {
        format!("`{user}` is not a user public key (U...); pass --creds FILE to revoke the user of a creds file")
    })?;
    if !dir.is_initialised() {
        bail!(
            "lattice `{lattice}` has no auth.conf in {}: run `wash lattice init {lattice}` first",
            dir.root().display()
        );
    }
    if !holds_trusted_account(dir, keys_dir, lattice) {
        bail!(
            "this machine has not the account key of lattice `{lattice}`'s auth.conf in {}: revoke on the machine that ran `wash lattice init {lattice}`",
            keys_dir.display()
        );
    }
    let signers = load_signers(keys_dir, lattice)?;
    let mut revoked = dir.read_revocations()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    revoked.insert(user.to_string(), now);
    let json =
        serde_json::to_string_pretty(&revoked).context("failed to encode the revocations")?;
    write_private(&dir.root().join(REVOCATIONS), &json)?;
    let tls = dir.tls_files();
    write_auth_conf(
        dir,
        &signers,
        lattice,
        tls.as_ref().map(|(c, k)| (c.as_path(), k.as_path())),
    )?;
    let mut reloaded = Vec::new();
    for pid in dir.running_local_servers() {
        let status = std::process::Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .context("failed to run kill -HUP")?;
        if status.success() {
            reloaded.push(pid);
        }
    }
    Ok(RevokeReport {
        lattice: lattice.to_string(),
        user: user.to_string(),
        revoked_at: now,
        auth_conf: dir.auth_conf().display().to_string(),
        reloaded,
    })
}

/// Issues a new user of `role` on `lattice` into `path` (same operator and accounts as
/// `wash lattice init`; the lattice's account seeds must be in `keys_dir`).
pub fn issue_creds(
    keys_dir: &Path,
    lattice: &str,
    role: Role,
    provider_key: Option<&str>,
    path: &Path,
) -> anyhow::Result<String> {
    check_lattice_name(lattice)?;
    if let Some(key) = provider_key {
        nimbus_core::keys::parse_public_key_of_kind(key, KeyKind::Service).with_context(|| {
            format!(
                "`{key}` is not a provider public key (V...); `wash ctl get inventory` lists them"
            )
        })?;
        if role != Role::Provider {
            bail!("--provider-key only goes with --role provider");
        }
    }
    if stored_account(keys_dir, lattice).is_none() {
        bail!(
            "this machine has no account key of lattice `{lattice}` in {}: run `wash lattice init {lattice}` here first, or issue the credentials on the machine that did",
            keys_dir.display()
        );
    }
    let signers = load_signers(keys_dir, lattice)?;
    let user = signers.issue_user(lattice, role, provider_key)?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_private_dir(parent)?;
    }
    write_private(path, &user.creds)?;
    Ok(user.public_key)
}

/// Issues the credentials of provider `provider_key` into the lattice directory's
/// `providers/` (scoped to that provider's subjects), when this machine holds the
/// lattice's account key; `None` when it does not (the provider then gets the shared
/// `provider.creds`).
pub fn issue_provider_creds(
    dir: &LatticeDir,
    keys_dir: &Path,
    lattice: &str,
    provider_key: &str,
) -> anyhow::Result<Option<PathBuf>> {
    // Only an account the lattice's server trusts can sign them (the keys directory may
    // hold another machine's lattice of the same name).
    if !holds_trusted_account(dir, keys_dir, lattice) {
        return Ok(None);
    }
    let path = dir.providers_dir().join(format!("{provider_key}.creds"));
    issue_creds(keys_dir, lattice, Role::Provider, Some(provider_key), &path)?;
    Ok(Some(path))
}

/// The certificate files of a lattice's TLS.
struct TlsFiles {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

/// Generates a CA and a server certificate for `names` signed by it.
fn write_tls(dir: &LatticeDir, names: &[String]) -> anyhow::Result<TlsFiles> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair as CertKey};
    let names = if names.is_empty() {
        vec![
            "localhost".to_string(),
            "127.0.0.1".to_string(),
            "::1".to_string(),
        ]
    } else {
        names.to_vec()
    };
    let failed = || "failed to generate the lattice's TLS certificates";
    let ca_key = CertKey::generate().with_context(failed)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).with_context(failed)?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "nimbus lattice CA");
    let ca_cert = ca_params.self_signed(&ca_key).with_context(failed)?;
    let issuer = Issuer::new(ca_params, &ca_key);
    let server_key = CertKey::generate().with_context(failed)?;
    let mut server_params = CertificateParams::new(names.clone()).with_context(|| {
        format!("invalid --tls-name in {names:?}: give DNS names or IP addresses")
    })?;
    server_params
        .distinguished_name
        .push(DnType::CommonName, "nimbus lattice nats-server");
    let server_cert = server_params
        .signed_by(&server_key, &issuer)
        .with_context(failed)?;
    let tls_dir = dir.root().join("tls");
    create_private_dir(&tls_dir)?;
    let files = TlsFiles {
        ca: dir.root().join(TLS_CA),
        cert: dir.root().join(TLS_CERT),
        key: dir.root().join(TLS_KEY),
    };
    write_private(&files.ca, &ca_cert.pem())?;
    write_private(&files.cert, &server_cert.pem())?;
    write_private(&files.key, &server_key.serialize_pem())?;
    Ok(files)
}

/// Creates `dir` (and its parents) with mode 0700.
fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .with_context(|| format!("failed to create {}", dir.display()))
}

/// Writes `text` to `path` with mode 0600, through a temporary file renamed into place
/// (a reader sees the old or the new file, never a part).
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    let tmp = crate::keys::write_private_temp_file(path, text.as_bytes())?;
    std::fs::rename(&tmp, path).with_context(|| {
        let _ = std::fs::remove_file(&tmp);
        format!("failed to write {}", path.display())
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn payload(jwt: &str) -> serde_json::Value {
        use base64::Engine as _;
        let part = jwt.split('.').nth(1).unwrap();
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn init_writes_private_creds_and_a_preloaded_resolver() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = LatticeDir::at(tmp.path().join("lattices/demo"));
        let options = InitOptions {
            lattice: "demo".into(),
            keys_dir: tmp.path().join("keys"),
            dir: dir.clone(),
            listen_host: "127.0.0.1".into(),
            port: 4333,
            store_dir: tmp.path().join("js"),
            tls_names: None,
            force: false,
        };
        let report = init(&options).unwrap();
        assert_eq!(report.creds.len(), Role::ALL.len());
        let auth = std::fs::read_to_string(dir.auth_conf()).unwrap();
        assert!(auth.contains("resolver: MEMORY"), "{auth}");
        assert!(auth.contains(&report.account), "{auth}");
        assert!(auth.contains(&report.data_account), "{auth}");
        let server = std::fs::read_to_string(dir.server_conf()).unwrap();
        assert!(server.contains("sync_interval: always"), "{server}");
        assert!(server.contains("127.0.0.1:4333"), "{server}");
        for c in &report.creds {
            let text = std::fs::read_to_string(&c.path).unwrap();
            let jwt = text.lines().nth(1).unwrap();
            let claims = payload(jwt);
            assert_eq!(claims["sub"], c.user.as_str());
            let issuer = if c.role == Role::Keyvalue {
                &report.data_account
            } else {
                &report.account
            };
            assert_eq!(claims["iss"], issuer.as_str(), "{claims}");
            assert_eq!(claims["nats"]["type"], "user");
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt as _;
                let mode = std::fs::metadata(&c.path).unwrap().permissions().mode();
                assert_eq!(mode & 0o777, 0o600, "{}: {mode:o}", c.path);
            }
        }
        // The account has JetStream.
        let account_jwt = auth
            .lines()
            .find(|l| l.trim_start().starts_with(&report.account))
            .and_then(|l| l.split('"').nth(1))
            .unwrap();
        let account = payload(account_jwt);
        assert_eq!(account["nats"]["limits"]["disk_storage"], -1, "{account}");
        assert_eq!(account["iss"], report.operator.as_str());

        // A second init refuses without --force and keeps the accounts with it.
        let err = init(&options).unwrap_err().to_string();
        assert!(err.contains("--force"), "{err}");
        let again = init(&InitOptions {
            force: true,
            ..options.clone()
        })
        .unwrap();
        assert_eq!(again.account, report.account);
        assert_ne!(again.creds[0].user, report.creds[0].user);
        // A provider's own credentials name its key only.
        let key = KeyPair::generate(KeyKind::Service).public_key();
        let path = issue_provider_creds(&dir, &options.keys_dir, "demo", &key)
            .unwrap()
            .unwrap();
        let text = std::fs::read_to_string(path).unwrap();
        let claims = payload(text.lines().nth(1).unwrap());
        assert_eq!(
            claims["nats"]["sub"]["allow"][0],
            format!("wasmbus.rpc.demo.{key}.>")
        );
    }

    #[test]
    fn lattice_names_must_be_one_subject_token() {
        for bad in ["", "a.b", "a b", "*", ">", "../x"] {
            assert!(check_lattice_name(bad).is_err(), "{bad:?}");
        }
        check_lattice_name("pet-clinic_2").unwrap();
    }
}
