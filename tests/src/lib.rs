//! Test harness shared by the integration tests: the repository's paths, actor fixtures
//! built on demand from `actors/`, and signing helpers.
//!
//! Fixtures are built by `scripts/build-actors.sh` the first time a test asks for one
//! (the script is incremental, so later runs cost a second), so `cargo test` works on a
//! fresh checkout with no manual step besides having the wasm targets installable.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

pub mod auth;
pub mod http;
pub mod servers;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use nimbus_core::claims::{self, ActorClaimsParams};
use nimbus_core::keys::{KeyKind, KeyPair};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The cargo target dir and profile (`debug`, `release`) the running test binary was built
/// into (it lives in `<target>/<profile>/deps`): where the workspace binaries that
/// `scripts/test.sh` builds before the tests (`wash`, the providers) are, whatever
/// `CARGO_TARGET_DIR` or profile the run uses.
pub fn target_and_profile() -> (PathBuf, String) {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary lives in <target>/<profile>/deps");
    let profile = profile_dir
        .file_name()
        .expect("a profile dir name")
        .to_string_lossy()
        .into_owned();
    let target = profile_dir.parent().expect("a target dir").to_path_buf();
    (target, profile)
}

static BUILD: Mutex<bool> = Mutex::new(false);

/// The bytes of the actor fixture `name` (`echo`, `echo-wasmbus`, `wasi-echo`,
/// `wapc-echo`), unsigned, building the fixtures first if needed.
pub fn actor_wasm(name: &str) -> Vec<u8> {
    let path = repo_root()
        .join("actors/target/wasm")
        .join(format!("{name}.wasm"));
    {
        let mut built = BUILD.lock().unwrap_or_else(|e| e.into_inner());
        if !*built {
            let status = Command::new("bash")
                .arg(repo_root().join("scripts/build-actors.sh"))
                .env_remove("CARGO_TARGET_DIR")
                .env_remove("RUSTFLAGS")
                .env_remove("CARGO_BUILD_TARGET")
                .status()
                .expect("failed to run scripts/build-actors.sh");
            assert!(status.success(), "scripts/build-actors.sh failed");
            *built = true;
        }
    }
    std::fs::read(&path).unwrap_or_else(|e| panic!("missing fixture {}: {e}", path.display()))
}

/// An account and a module key, as `wash claims sign` would generate them.
pub struct Signer {
    pub account: KeyPair,
    pub module: KeyPair,
}

impl Default for Signer {
    fn default() -> Self {
        Self::new()
    }
}

impl Signer {
    pub fn new() -> Self {
        Self {
            account: KeyPair::generate(KeyKind::Account),
            module: KeyPair::generate(KeyKind::Module),
        }
    }

    /// Signs `module` with the given capabilities and default metadata.
    pub fn sign(&self, module: &[u8], caps: &[&str]) -> Vec<u8> {
        let params = ActorClaimsParams {
            name: Some("test actor".into()),
            caps: Some(caps.iter().map(|c| c.to_string()).collect()),
            ver: Some("0.1.0".into()),
            rev: Some(1),
            ..ActorClaimsParams::default()
        };
        claims::sign_actor(module, &params, &self.account, &self.module).expect("signing failed")
    }

    /// Signs `module` as `wash up` signs a manifest's actor: the given capabilities and,
    /// when given, a call alias other actors can reach it by.
    pub fn sign_with(&self, module: &[u8], caps: &[&str], call_alias: Option<&str>) -> Vec<u8> {
        let params = ActorClaimsParams {
            name: Some("test actor".into()),
            caps: Some(caps.iter().map(|c| c.to_string()).collect()),
            call_alias: call_alias.map(str::to_string),
            ver: Some("0.1.0".into()),
            rev: Some(1),
            ..ActorClaimsParams::default()
        };
        claims::sign_actor(module, &params, &self.account, &self.module).expect("signing failed")
    }
}

/// The fixture `name`, signed by a fresh account.
pub fn signed_actor(name: &str) -> Vec<u8> {
    Signer::new().sign(&actor_wasm(name), &[])
}
