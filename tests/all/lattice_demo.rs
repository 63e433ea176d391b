//! The demo topologies users run: `scripts/lattice-demo.sh` (nats-server, two hosts,
//! out-of-process providers, `wash app deploy`) end to end, and `docker-compose.yml`
//! validated by docker-compose itself.

use std::process::Command;

use nimbus_tests::repo_root;
use nimbus_tests::servers::free_port;

#[test]
fn lattice_demo_script_serves_the_petclinic_across_two_hosts() {
    let work = tempfile::tempdir().unwrap();
    let out = Command::new("bash")
        .arg(repo_root().join("scripts/lattice-demo.sh"))
        .arg("--check")
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
        .expect("docker-compose not found: run scripts/setup.sh");
    assert!(
        out.status.success(),
        "docker-compose config rejected docker-compose.yml: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config = String::from_utf8_lossy(&out.stdout);
    for service in ["nats:", "host-one:", "host-two:", "deploy:"] {
        assert!(
            config.contains(service),
            "missing service {service}:\n{config}"
        );
    }
    assert!(config.contains("--providers-out-of-process"), "{config}");
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
