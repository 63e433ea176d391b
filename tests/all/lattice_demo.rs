//! The demo topologies users run: `scripts/lattice-demo.sh` (nats-server, two hosts,
//! out-of-process providers, `wash app deploy`) end to end, and `docker-compose.yml`
//! validated by docker-compose itself. The demo runs with `SKIP_BUILD=1` on the binaries
//! `scripts/test.sh` built before the tests.

use std::path::{Path, PathBuf};
use std::process::Command;

use nimbus_tests::servers::free_port;
use nimbus_tests::{repo_root, target_and_profile};

/// What `scripts/lattice-demo.sh` runs with `SKIP_BUILD=1`, which this test never builds
/// (other tests run the same binaries meanwhile); `scripts/test.sh` builds them first.
/// Panics naming whatever is missing and the commands that build it.
fn demo_prerequisites(target: &Path, profile: &str) {
    let bin = target.join(profile);
    let wasm = repo_root().join("actors/target/wasm");
    let mut missing: Vec<PathBuf> = [
        "wash",
        "nimbus-httpserver-provider",
        "nimbus-keyvalue-provider",
    ]
    .iter()
    .map(|name| bin.join(name))
    .chain(
        ["gateway", "owners", "vets", "visits", "ui"]
            .iter()
            .map(|actor| wasm.join(format!("petclinic-{actor}.wasm"))),
    )
    .filter(|path| !path.is_file())
    .collect();
    let home = std::env::var("HOME").unwrap_or_default();
    let nats_server = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain([Path::new(&home).join(".local/bin")])
        .map(|dir| dir.join("nats-server"))
        .find(|p| p.is_file());
    if nats_server.is_none() {
        missing.push("nats-server (on PATH or in ~/.local/bin)".into());
    }
    let release = if profile == "release" {
        " --release"
    } else {
        ""
    };
    assert!(
        missing.is_empty(),
        "the lattice demo needs prebuilt binaries this test does not build; missing:\n  {}\n\
         build them as scripts/test.sh does: `bash scripts/setup.sh lattice`, \
         `bash scripts/build-actors.sh` and \
         `cargo build{release} -p wash-cli -p nimbus-provider-httpserver -p nimbus-provider-keyvalue`",
        missing
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join("\n  ")
    );
}

#[test]
fn lattice_demo_script_serves_the_petclinic_across_two_hosts() {
    let (target, profile) = target_and_profile();
    demo_prerequisites(&target, &profile);
    let work = tempfile::tempdir().unwrap();
    let out = Command::new("bash")
        .arg(repo_root().join("scripts/lattice-demo.sh"))
        .arg("--check")
        .env("SKIP_BUILD", "1")
        .env("CARGO_TARGET_DIR", &target)
        .env("PROFILE", &profile)
        .env("NATS_PORT", free_port().to_string())
        .env("HTTP_PORT", free_port().to_string())
        .env("DEMO_DIR", work.path())
        .env_remove("RUSTFLAGS")
        .output()
        .expect("failed to run scripts/lattice-demo.sh");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "lattice demo failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stderr.contains("check passed: API answered across hosts one and two"),
        "{stderr}"
    );
    // The deploy really spread the app: providers and some actors on one, others on two.
    assert!(stdout.contains("app `petclinic` deployed"), "{stdout}");
    let hosts: std::collections::BTreeSet<&str> = stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("actor "))
        .filter_map(|l| l.split(" on ").nth(1))
        .collect();
    assert_eq!(hosts.len(), 2, "actors should run on two hosts:\n{stdout}");
}

#[test]
fn docker_compose_file_is_valid_and_has_the_demo_topology() {
    let out = Command::new("docker-compose")
        .args(["config"])
        .current_dir(repo_root())
        .output()
        .expect("docker-compose not found: run `scripts/setup.sh test`");
    assert!(
        out.status.success(),
        "docker-compose config rejected docker-compose.yml: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config = String::from_utf8_lossy(&out.stdout);
    for service in ["init:", "nats:", "host-one:", "host-two:", "deploy:"] {
        assert!(
            config.contains(service),
            "missing service {service}:\n{config}"
        );
    }
    assert!(config.contains("--providers-out-of-process"), "{config}");
    // The lattice is authenticated: nats serves the configuration `wash lattice init` wrote.
    assert!(config.contains("--listen 0.0.0.0 --port 4222"), "{config}");
    assert!(
        config.contains("/shared/home/.wash/lattices/default/nats-server.conf"),
        "{config}"
    );
    assert!(
        config.contains("/app/deploy/petclinic-lattice.yaml"),
        "{config}"
    );
    assert!(config.contains("8080"), "{config}");
    let dockerfile = std::fs::read_to_string(repo_root().join("Dockerfile")).unwrap();
    for binary in [
        "wash",
        "nimbus-httpserver-provider",
        "nimbus-keyvalue-provider",
    ] {
        assert!(
            dockerfile.contains(binary),
            "Dockerfile does not ship {binary}"
        );
    }
}
