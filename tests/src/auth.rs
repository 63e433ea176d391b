//! NATS credentials for tests. Every test nats-server admits only its [`Members`]
//! (unless a test asks for an open one, or the run sets `NIMBUS_TEST_NATS=open`), and
//! each client connects with the creds of its role.
//!
//! [`LatticeCreds`] is a lattice as `wash lattice init` makes it, for tests that run the
//! same scenario with the real command's files (and TLS): the nats-server includes the
//! lattice's `auth.conf`, and every client connects with the creds file of its role.
//! It runs the `wash` binary (beside the test binary's profile dir, or `$WASH_BIN`), which
//! `scripts/test.sh` builds before the tests: a test never builds it itself.

use std::path::PathBuf;
use std::process::Command;

pub use nimbus_lattice_auth::Role;
use nimbus_lattice_auth::Signers;
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
            ..NatsOptions::open()
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

/// The environment variable that runs every test nats-server open (`open`): the suite
/// then checks the open path, as 0.x hosts use it. Unset: servers admit members only.
pub const NATS_ENV: &str = "NIMBUS_TEST_NATS";

/// Whether the run asks for open test servers (`NIMBUS_TEST_NATS=open`).
pub fn open_by_env() -> bool {
    std::env::var(NATS_ENV).is_ok_and(|v| v == "open")
}

/// The members of an authenticated test nats-server (or cluster), made in memory with the
/// code of `wash lattice init`: an operator, the lattice and data accounts, and one user
/// per role with that role's permissions on **every** lattice (`*`), since a server does
/// not know which lattice names its tests will use. A test connects with the creds of
/// the role it plays, so the suite runs with the permissions users get; the scoping of
/// a role to one lattice is tested apart, on lattices made by `wash lattice init`.
pub struct Members {
    dir: TempDir,
    auth_conf: String,
    /// JWT and seed of each role, in [`Role::ALL`] order.
    users: Vec<(Role, String, String)>,
}

impl std::fmt::Debug for Members {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Members")
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

impl Members {
    /// Fresh operator, accounts and users, with the creds files in a temp dir.
    ///
    /// # Panics
    /// If signing or writing fails.
    pub fn generate() -> Self {
        let signers = Signers::generate();
        let dir = tempfile::tempdir().expect("failed to create a temp dir for creds");
        let mut users = Vec::new();
        for role in Role::ALL {
            let user = signers
                .issue_user("*", role, None)
                .expect("failed to issue test creds");
            std::fs::write(
                dir.path().join(format!("{}.creds", role.name())),
                user.creds,
            )
            .expect("failed to write test creds");
            users.push((role, user.jwt, user.seed));
        }
        let auth_conf = signers
            .auth_conf("*", None, &Default::default(), None)
            .expect("failed to sign the test accounts");
        Members {
            dir,
            auth_conf,
            users,
        }
    }

    /// The JWT and seed of `role`, for host data that carries them apart
    /// (`lattice_rpc_user_jwt`, `lattice_rpc_user_seed`).
    pub fn jwt_and_seed(&self, role: Role) -> (String, String) {
        self.users
            .iter()
            .find(|(r, _, _)| *r == role)
            .map(|(_, jwt, seed)| (jwt.clone(), seed.clone()))
            .expect("every role has a user")
    }

    /// The creds file of `role`.
    pub fn creds(&self, role: Role) -> PathBuf {
        self.dir.path().join(format!("{}.creds", role.name()))
    }

    /// The server side: operator and preloaded accounts.
    pub fn auth_conf(&self) -> &str {
        &self.auth_conf
    }
}
