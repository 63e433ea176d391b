//! Settings of a host: lattice identity, NATS connection, limits and timers. Built through
//! [`crate::HostBuilder`]; every field has a default that suits a standalone host.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Default RPC timeout (the 0.x lattice's `WASMCLOUD_RPC_TIMEOUT_MS`).
pub const DEFAULT_RPC_TIMEOUT: Duration = Duration::from_secs(2);
/// Default heartbeat period.
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(30);
/// Default largest invocation payload: the NATS server's default `max_payload` less room
/// for the envelope.
pub const DEFAULT_MAX_PAYLOAD: usize = 1024 * 1024 - 16 * 1024;

/// How to reach the NATS servers of the lattice. Several URLs (the members of a cluster)
/// let the host reconnect to another server when its own goes away.
#[derive(Debug, Clone, Default)]
pub struct NatsConfig {
    /// Server URLs, e.g. `nats://127.0.0.1:4222`.
    pub urls: Vec<String>,
    /// A `.creds` file (user JWT and seed) for decentralised auth.
    pub credentials_file: Option<PathBuf>,
    /// An nkey user seed (`SU...`) for nkey auth.
    pub nkey_seed: Option<String>,
    /// The `.creds` file handed to the provider processes this host starts (host data
    /// `lattice_rpc_user_jwt` / `lattice_rpc_user_seed`), so they connect with provider
    /// permissions rather than the host's. `None`: they get the host's own credentials
    /// (`credentials_file` or `nkey_seed`), as 0.x hosts do.
    pub provider_credentials_file: Option<PathBuf>,
    /// A directory of per-provider credentials, `{provider public key}.creds`: a provider
    /// with a file there gets it instead of `provider_credentials_file` (credentials
    /// scoped to that provider's own subjects).
    pub provider_credentials_dir: Option<PathBuf>,
    /// TLS settings; `None` means plain TCP unless the server demands TLS.
    pub tls: Option<TlsConfig>,
    /// Connection name shown by the server (`nats server report connections`).
    pub name: Option<String>,
    /// Try the servers in the given order instead of a random one (the default spreads
    /// hosts over a cluster's members).
    pub keep_server_order: bool,
}

impl NatsConfig {
    /// Connects to one server with no authentication.
    pub fn url(url: impl Into<String>) -> Self {
        Self {
            urls: vec![url.into()],
            ..Self::default()
        }
    }

    /// Connects to any of `urls` (a cluster), reconnecting to another member on loss.
    pub fn urls<I, S>(urls: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            urls: urls.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }
}

/// User credentials read from a `.creds` file: the user JWT and the nkey seed.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct UserCredentials {
    /// The user JWT.
    pub(crate) jwt: String,
    /// The user's nkey seed (`SU...`).
    pub(crate) seed: String,
}

impl std::fmt::Debug for UserCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The seed is a secret: never in logs.
        f.debug_struct("UserCredentials")
            .field("jwt", &self.jwt)
            .finish_non_exhaustive()
    }
}

impl UserCredentials {
    /// Parses the text of a `.creds` file (the layout `nsc` and `wash lattice init`
    /// write: a `BEGIN NATS USER JWT` block, then a `BEGIN USER NKEY SEED` block).
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        let block = |marker: &str| {
            text.lines()
                .skip_while(|l| !(l.contains("BEGIN") && l.contains(marker)))
                .nth(1)
                .map(str::trim)
                .filter(|v| !v.is_empty() && !v.starts_with("---"))
                .map(String::from)
        };
        let jwt = block("JWT").ok_or("no `BEGIN NATS USER JWT` block")?;
        let seed = block("SEED").ok_or("no `BEGIN USER NKEY SEED` block")?;
        if !seed.starts_with("SU") {
            return Err("the seed block does not hold a user seed (SU...)".into());
        }
        Ok(Self { jwt, seed })
    }

    /// Reads and parses a `.creds` file.
    pub(crate) fn read(path: &std::path::Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{} is not a .creds file: {e}", path.display()))
    }
}

/// TLS options of the NATS connection.
#[derive(Debug, Clone, Default)]
pub struct TlsConfig {
    /// Refuse a plain-text connection.
    pub required: bool,
    /// PEM file(s) of extra root certificates that the server's certificate chains to.
    pub root_certificates: Vec<PathBuf>,
    /// Client certificate and key (PEM) for mutual TLS.
    pub client_certificate: Option<(PathBuf, PathBuf)>,
}

/// Every setting of a host. See the field docs for defaults.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// Lattice prefix (`default`).
    pub lattice: String,
    /// Control-interface topic prefix (`wasmbus.ctl`).
    pub ctl_prefix: String,
    /// Extra host labels, merged over `hostcore.*` and `HOST_*` environment labels.
    pub labels: BTreeMap<String, String>,
    /// `None` runs standalone: no NATS, in-process providers only.
    pub nats: Option<NatsConfig>,
    /// Default timeout of calls that leave the host (and of in-process provider calls).
    pub rpc_timeout: Duration,
    /// Largest invocation payload accepted or sent.
    pub max_payload: usize,
    /// Sign outgoing NATS invocations with the cluster key and verify incoming ones.
    /// Never applies to the local fast path.
    pub sign_invocations: bool,
    /// Cluster seed (`SC...`); a fresh one is generated when `None`. Hosts of one lattice
    /// that sign invocations must share it, or list each other's keys in `cluster_issuers`.
    pub cluster_seed: Option<String>,
    /// Extra cluster public keys whose invocation tokens are accepted.
    pub cluster_issuers: Vec<String>,
    /// Host key seed (`SN...`); a fresh one is generated when `None`.
    pub host_seed: Option<String>,
    /// Period of the `host_heartbeat` event.
    pub heartbeat_interval: Duration,
    /// Allow actors without valid claims (development only).
    pub allow_unsigned: bool,
    /// Account public keys (`A...`) whose actors may start here; empty (the default)
    /// accepts actors of any issuer whose signature verifies. See
    /// [`crate::HostBuilder::allowed_issuer`].
    pub allowed_issuers: Vec<String>,
    /// Serve Prometheus metrics at `http://ADDR/metrics` (port 0: any free port, see
    /// `Host::metrics_addr`). `None` (the default) keeps no metrics at all.
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// Keep the same call metrics without serving `/metrics` (for the dashboard, which
    /// reads them through [`crate::Host::stats`] and the `get.{id}.stats` control query).
    /// Implied by `metrics_addr`. Off by default.
    pub collect_metrics: bool,
}

impl Default for HostConfig {
    fn default() -> Self {
        Self {
            lattice: nimbus_core::subjects::DEFAULT_LATTICE_PREFIX.to_string(),
            ctl_prefix: nimbus_core::subjects::DEFAULT_CTL_PREFIX.to_string(),
            labels: BTreeMap::new(),
            nats: None,
            rpc_timeout: DEFAULT_RPC_TIMEOUT,
            max_payload: DEFAULT_MAX_PAYLOAD,
            sign_invocations: true,
            cluster_seed: None,
            cluster_issuers: Vec::new(),
            host_seed: None,
            heartbeat_interval: DEFAULT_HEARTBEAT_INTERVAL,
            allow_unsigned: false,
            allowed_issuers: Vec::new(),
            metrics_addr: None,
            collect_metrics: false,
        }
    }
}

/// The labels every host reports: `hostcore.os`, `hostcore.osfamily`, `hostcore.arch`,
/// every `HOST_<X>` environment variable as `<x>`, then the configured ones.
pub(crate) fn host_labels(extra: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    labels.insert("hostcore.os".into(), std::env::consts::OS.into());
    labels.insert("hostcore.osfamily".into(), std::env::consts::FAMILY.into());
    labels.insert("hostcore.arch".into(), std::env::consts::ARCH.into());
    for (key, value) in std::env::vars() {
        if let Some(name) = key.strip_prefix("HOST_")
            && !name.is_empty()
        {
            labels.insert(name.to_lowercase(), value);
        }
    }
    labels.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
    labels
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn creds_files_parse_into_jwt_and_seed() {
        let text = "-----BEGIN NATS USER JWT-----\neyJ0.eyJ1.sig\n------END NATS USER JWT------\n\n\
                    ***\nNKEY Seed printed below\n\n-----BEGIN USER NKEY SEED-----\n\
                    SUAIO3FHUX5PNV2LQIIP7TZ3N4L7TX3W53MQGEIVYFIGA635OZCKEYHFLM\n------END USER NKEY SEED------\n";
        let creds = UserCredentials::parse(text).unwrap();
        assert_eq!(creds.jwt, "eyJ0.eyJ1.sig");
        assert!(creds.seed.starts_with("SUAIO3"));
        assert!(
            !format!("{creds:?}").contains("SUAIO3"),
            "the seed leaked into Debug"
        );
        assert!(UserCredentials::parse("garbage").is_err());
        let no_seed =
            "-----BEGIN NATS USER JWT-----\neyJ0.eyJ1.sig\n------END NATS USER JWT------\n";
        assert!(
            UserCredentials::parse(no_seed)
                .unwrap_err()
                .contains("SEED")
        );
    }
}
