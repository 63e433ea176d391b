//! A lattice's NATS credentials as `wash lattice init` makes them, for tests that run the
//! same scenario with authentication (and TLS) on: the nats-server includes the lattice's
//! `auth.conf`, and every client connects with the creds file of its role.
//!
//! It runs the `wash` binary (beside the test binary's profile dir, or `$WASH_BIN`), which
//! `scripts/test.sh` builds before the tests: a test never builds it itself.

use std::path::PathBuf;
use std::process::Command;

use tempfile::TempDir;

use crate::servers::NatsOptions;
use crate::target_and_profile;

/// How a test lattice's nats-server admits clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// No credentials, plain TCP.
    Open,
    /// Operator/account/user JWTs with subject permissions by role.
    Creds,
    /// The same, and TLS with a generated certificate.
    CredsTls,
}

impl AuthMode {
    /// The mode an environment variable asks for: unset, empty or `0` → [`AuthMode::Open`],
    /// `tls` → [`AuthMode::CredsTls`], anything else → [`AuthMode::Creds`].
    pub fn from_env(var: &str) -> Self {
        match std::env::var(var).as_deref() {
            Err(_) | Ok("") | Ok("0") => AuthMode::Open,
            Ok("tls") => AuthMode::CredsTls,
            Ok(_) => AuthMode::Creds,
        }
    }
}

/// The credentials directory of one lattice made by `wash lattice init`, in a temp dir
/// that goes with it.
pub struct LatticeCreds {
    _home: TempDir,
    root: PathBuf,
    tls: bool,
}

impl LatticeCreds {
    /// Runs `wash lattice init LATTICE` (with `--tls` when asked) in a fresh HOME.
    ///
    /// # Panics
    /// If `wash` is missing or the init fails (with its output).
    pub fn init(lattice: &str, tls: bool) -> Self {
        let home = tempfile::tempdir().expect("failed to create a temp HOME");
        let mut cmd = Command::new(wash_binary());
        cmd.args(["lattice", "init", lattice, "--nats-store"])
            .arg(home.path().join("js"))
            .env("HOME", home.path())
            .env("WASH_KEYS", home.path().join("keys"));
        if tls {
            cmd.arg("--tls");
        }
        let out = cmd.output().expect("failed to run wash lattice init");
        assert!(
            out.status.success(),
            "wash lattice init failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let root = home.path().join(".wash/lattices").join(lattice);
        LatticeCreds {
            _home: home,
            root,
            tls,
        }
    }

    /// Credentials for `mode`: `None` for [`AuthMode::Open`].
    pub fn for_mode(lattice: &str, mode: AuthMode) -> Option<Self> {
        match mode {
            AuthMode::Open => None,
            AuthMode::Creds => Some(Self::init(lattice, false)),
            AuthMode::CredsTls => Some(Self::init(lattice, true)),
        }
    }

    /// The server side: operator, resolver preload and (with TLS) the certificate.
    pub fn auth_conf(&self) -> PathBuf {
        self.root.join("auth.conf")
    }

    /// The creds file of a role: `host`, `provider`, `wash`, `observer`, `keyvalue`.
    pub fn creds(&self, role: &str) -> PathBuf {
        self.root.join(format!("{role}.creds"))
    }

    /// The CA clients trust, when the lattice serves TLS.
    pub fn tls_ca(&self) -> Option<PathBuf> {
        self.tls.then(|| self.root.join("tls/ca.pem"))
    }

    /// Options of a single JetStream server of this lattice.
    pub fn server_options(&self) -> NatsOptions {
        NatsOptions {
            jetstream: true,
            include: Some(self.auth_conf()),
            ..NatsOptions::default()
        }
    }
}

/// `$WASH_BIN`, else `wash` beside this test binary's profile dir (as `scripts/test.sh`
/// builds it).
fn wash_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("WASH_BIN") {
        return PathBuf::from(path);
    }
    let (target, profile) = target_and_profile();
    let path = target.join(profile).join("wash");
    assert!(
        path.is_file(),
        "{} not found: build it first (`cargo build -p wash-cli`; scripts/test.sh does) or set WASH_BIN",
        path.display()
    );
    path
}
