//! `wash ctl` and lattice `wash call`: the real binary against a real nats-server and real
//! hosts, as a user runs them, including the errors for an empty lattice, a silent
//! listener, unknown hosts and actors, refusals and bad input.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use nimbus_core::claims::{self, ActorClaimsParams};
use nimbus_core::ctl::{HostInventory, LinkDefinitionList};
use nimbus_core::keys::{KeyKind, KeyPair};
use nimbus_lattice::{Host, NatsConfig};
use nimbus_runtime::RuntimeConfig;
use nimbus_tests::actor_wasm;
use nimbus_tests::auth::Role;
use nimbus_tests::servers::NatsServer;

/// Runs `wash` with `args` (plus `--nats-url` and `--lattice`) and the given extra env.
async fn wash(nats: &str, lattice: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let cache = std::env::temp_dir().join("nimbus-wash-ctl-test-cache");
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_wash"));
    cmd.args(args)
        .args(["--nats-url", nats, "--lattice", lattice])
        .env("WASH_CACHE", &cache)
        // The lattice's cluster key lives in the keys directory: one per test lattice,
        // never the runner's own ~/.wash.
        .env(
            "WASH_KEYS",
            std::env::temp_dir().join(format!("nimbus-wash-ctl-test-keys-{lattice}")),
        )
        .env_remove("WASH_CLUSTER_SEED")
        .env_remove("WASH_NATS_URL")
        .env_remove("WASH_LATTICE")
        .kill_on_drop(true);
    common::member_env(&mut cmd, nats, Role::Wash);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().await.expect("failed to run wash")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[track_caller]
fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "wash failed: {}\nstdout: {}",
        stderr(out),
        stdout(out)
    );
    stdout(out)
}

#[track_caller]
fn fails(out: &Output, needle: &str) -> String {
    assert!(
        !out.status.success(),
        "wash should have failed; stdout: {}",
        stdout(out)
    );
    let err = stderr(out);
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains(needle), "expected `{needle}` in: {err}");
    assert!(out.stdout.is_empty(), "nothing on stdout on error");
    err
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_str(&ok(out)).unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(out)))
}

async fn host(nats: &NatsServer, lattice: &str, seed: &str) -> Host {
    Host::builder()
        .lattice(lattice)
        .nats(NatsConfig {
            credentials_file: nats.creds(Role::Host),
            provider_credentials_file: nats.creds(Role::Provider),
            ..NatsConfig::url(nats.url())
        })
        .cluster_seed(seed)
        .label("zone", "blue")
        .rpc_timeout(Duration::from_secs(2))
        .runtime_config(RuntimeConfig {
            max_total_instances: 20,
            max_memory_bytes: 16 * 1024 * 1024,
            ..RuntimeConfig::default()
        })
        .build()
        .await
        .unwrap()
}

/// The echo fixture signed with call alias `alias`; returns its path and key.
fn signed_echo(dir: &Path, alias: &str) -> (String, String) {
    let account = KeyPair::generate(KeyKind::Account);
    let module = KeyPair::generate(KeyKind::Module);
    let params = ActorClaimsParams {
        name: Some("echo".into()),
        call_alias: Some(alias.into()),
        rev: Some(1),
        ..ActorClaimsParams::default()
    };
    let bytes = claims::sign_actor(&actor_wasm("echo"), &params, &account, &module).unwrap();
    let path = dir.join("echo.wasm");
    std::fs::write(&path, bytes).unwrap();
    (path.display().to_string(), module.public_key())
}

/// Polls `wash ctl get inventory HOST --output json` until `pred` holds (10 s at most).
async fn wait_inventory(
    url: &str,
    lattice: &str,
    host_id: &str,
    pred: impl Fn(&HostInventory) -> bool,
) -> HostInventory {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = wash(
            url,
            lattice,
            &["ctl", "get", "inventory", host_id, "--output", "json"],
            &[],
        )
        .await;
        let inv: HostInventory = serde_json::from_value(json(&out)).unwrap();
        if pred(&inv) {
            return inv;
        }
        assert!(
            Instant::now() < deadline,
            "inventory never matched: {inv:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctl_and_call_drive_a_host_end_to_end() {
    let nats = NatsServer::start();
    let url = nats.url();
    let lattice = "wash-ctl-e2e";
    let seed = KeyPair::generate(KeyKind::Cluster).seed().unwrap();
    let host = host(&nats, lattice, &seed).await;
    let host_id = host.id().to_string();
    let dir = tempfile::tempdir().unwrap();
    let (path, actor) = signed_echo(dir.path(), "wash-echo");
    let fast = ["--timeout-ms", "500"];

    // get hosts: a table for humans, the Host records for scripts.
    let text = ok(&wash(
        &url,
        lattice,
        &[&["ctl", "get", "hosts"][..], &fast].concat(),
        &[],
    )
    .await);
    assert!(text.starts_with("HOST ID"), "{text}");
    assert!(text.contains(&host_id), "{text}");
    let hosts = json(
        &wash(
            &url,
            lattice,
            &[&["ctl", "get", "hosts", "--output", "json"][..], &fast].concat(),
            &[],
        )
        .await,
    );
    assert_eq!(hosts["hosts"].as_array().unwrap().len(), 1);
    assert_eq!(hosts["hosts"][0]["id"], host_id.as_str());
    assert_eq!(hosts["hosts"][0]["lattice_prefix"], lattice);
    assert_eq!(hosts["hosts"][0]["labels"]["zone"], "blue");

    // start actor from a signed file; the host acks, then the inventory shows it.
    let out = wash(
        &url,
        lattice,
        &["ctl", "start", "actor", &path, "--host-id", &host_id],
        &[],
    )
    .await;
    let text = ok(&out);
    assert!(text.contains(&format!("Host {host_id} accepted")), "{text}");
    let inv = wait_inventory(&url, lattice, &host_id, |i| i.actors.len() == 1).await;
    assert_eq!(inv.actors[0].id, actor);
    assert_eq!(inv.actors[0].instances.len(), 1);
    let text = ok(&wash(&url, lattice, &["ctl", "get", "inventory", &host_id], &[]).await);
    assert!(
        text.contains(&actor) && text.contains("echo.wasm"),
        "{text}"
    );
    assert!(text.contains("No providers."), "{text}");

    // wash call over the lattice: by key with --cluster-seed, by alias with the env var.
    let out = wash(
        &url,
        lattice,
        &[
            "call",
            &actor,
            "Echo",
            "--data",
            "héllo",
            "--cluster-seed",
            &seed,
        ],
        &[],
    )
    .await;
    assert_eq!(ok(&out).as_bytes(), "héllo".as_bytes());
    let payload: Vec<u8> = (0..=255u8).collect();
    let data = dir.path().join("payload.bin");
    std::fs::write(&data, &payload).unwrap();
    let out = wash(
        &url,
        lattice,
        &[
            "call",
            "wash-echo",
            "Echo",
            "--data-file",
            data.to_str().unwrap(),
        ],
        &[("WASH_CLUSTER_SEED", &seed)],
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout, payload, "binary responses pass through");
    let out = wash(
        &url,
        lattice,
        &[
            "call",
            "wash_echo",
            "Echo",
            "--data",
            "hi",
            "--output",
            "json",
        ],
        &[("WASH_CLUSTER_SEED", &seed)],
    )
    .await;
    let v = json(&out);
    assert_eq!(v["actor"], actor.as_str());
    assert_eq!(v["operation"], "Echo");
    assert_eq!(v["response"], "hi");
    assert_eq!(v["response_base64"], "aGk=");
    // Signed by a cluster key the host does not trust (this test's keys directory has its
    // own lattice key, not the host's seed): the host refuses, naming the key it saw and
    // how to trust it.
    let out = wash(&url, lattice, &["call", &actor, "Echo", "--data", "x"], &[]).await;
    let err = fails(&out, "does not trust");
    assert!(err.contains("wash lattice key import"), "{err}");
    let ours = KeyPair::from_seed(&seed).unwrap().public_key();
    assert!(err.contains(&format!("it trusts {ours}")), "{err}");
    let stranger = KeyPair::generate(KeyKind::Cluster).seed().unwrap();
    let out = wash(
        &url,
        lattice,
        &["call", &actor, "Echo", "--cluster-seed", &stranger],
        &[],
    )
    .await;
    fails(&out, &format!("calling Echo on actor {actor} failed"));

    // claims: the actor's claims, with the normalized alias.
    let claims = json(
        &wash(
            &url,
            lattice,
            &["ctl", "get", "claims", "--output", "json"],
            &[],
        )
        .await,
    );
    let mine = claims["claims"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["sub"] == actor.as_str())
        .expect("the actor's claims");
    assert_eq!(mine["call_alias"], "wash_echo");
    let text = ok(&wash(&url, lattice, &["ctl", "get", "claims"], &[]).await);
    assert!(
        text.contains("wash_echo") && text.contains(&actor),
        "{text}"
    );

    // scale without --host-id: wash finds the host running it.
    let out = wash(
        &url,
        lattice,
        &[
            &["ctl", "scale", "actor", &actor, "--count", "3"][..],
            &fast,
        ]
        .concat(),
        &[],
    )
    .await;
    ok(&out);
    wait_inventory(&url, lattice, &host_id, |i| {
        i.actors.first().is_some_and(|a| a.instances.len() == 3)
    })
    .await;

    // links: put, list (text and JSON), delete.
    let provider = KeyPair::generate(KeyKind::Service).public_key();
    let out = wash(
        &url,
        lattice,
        &[
            "ctl",
            "link",
            "put",
            &actor,
            &provider,
            "wasmcloud:test",
            "ttl=5",
            "mode=fast",
        ],
        &[],
    )
    .await;
    assert!(ok(&out).contains("Linked actor"));
    let links: LinkDefinitionList = serde_json::from_value(json(
        &wash(
            &url,
            lattice,
            &["ctl", "get", "links", "--output", "json"],
            &[],
        )
        .await,
    ))
    .unwrap();
    assert_eq!(links.links.len(), 1);
    let link = &links.links[0];
    assert_eq!(
        (link.actor_id.as_str(), link.provider_id.as_str()),
        (actor.as_str(), provider.as_str())
    );
    assert_eq!(link.contract_id, "wasmcloud:test");
    assert_eq!(link.link_name, "default");
    assert_eq!(link.values.get("ttl").map(String::as_str), Some("5"));
    let text = ok(&wash(&url, lattice, &["ctl", "get", "links"], &[]).await);
    assert!(text.contains("mode=fast, ttl=5"), "{text}");
    let out = wash(
        &url,
        lattice,
        &[
            "ctl",
            "link",
            "del",
            &actor,
            "wasmcloud:test",
            "--output",
            "json",
        ],
        &[],
    )
    .await;
    assert_eq!(json(&out)["accepted"], true);
    let text = ok(&wash(&url, lattice, &["ctl", "link", "query"], &[]).await);
    assert_eq!(text.trim(), "No links.");

    // Refusals carry the host's reason.
    let out = wash(
        &url,
        lattice,
        &[
            "ctl",
            "start",
            "actor",
            "/no/such/actor.wasm",
            "--host-id",
            &host_id,
        ],
        &[],
    )
    .await;
    fails(
        &out,
        &format!(
            "host {host_id} rejected start actor: actor_ref /no/such/actor.wasm is not a readable file"
        ),
    );
    let out = wash(
        &url,
        lattice,
        &["ctl", "link", "put", &actor, "", "wasmcloud:test"],
        &[],
    )
    .await;
    fails(&out, "rejected put link: ");

    // stop actor (JSON ack), then it is gone from the inventory and from the lattice.
    let out = wash(
        &url,
        lattice,
        &[
            "ctl",
            "stop",
            "actor",
            &actor,
            "--count",
            "3",
            "--host-id",
            &host_id,
            "--output",
            "json",
        ],
        &[],
    )
    .await;
    let ack = json(&out);
    assert_eq!(ack["accepted"], true);
    assert_eq!(ack["error"], "");
    assert_eq!(ack["host_id"], host_id.as_str());
    wait_inventory(&url, lattice, &host_id, |i| i.actors.is_empty()).await;
    let out = wash(
        &url,
        lattice,
        &["call", &actor, "Echo", "--cluster-seed", &seed],
        &[],
    )
    .await;
    fails(
        &out,
        &format!("actor {actor} not found on lattice `{lattice}`"),
    );
    let out = wash(
        &url,
        lattice,
        &[&["ctl", "stop", "actor", &actor][..], &fast].concat(),
        &[],
    )
    .await;
    fails(&out, "is not running on any host");

    // stop host: acknowledged, then the host stops and the lattice is empty.
    let out = wash(&url, lattice, &["ctl", "stop", "host", &host_id], &[]).await;
    ok(&out);
    tokio::time::timeout(Duration::from_secs(10), host.stopped())
        .await
        .expect("the host stops after `wash ctl stop host`");
    let out = wash(
        &url,
        lattice,
        &[&["ctl", "get", "hosts"][..], &fast].concat(),
        &[],
    )
    .await;
    fails(
        &out,
        &format!("no hosts answered on lattice `{lattice}` at {url}"),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctl_errors_say_what_went_wrong() {
    let nats = NatsServer::start();
    let url = nats.url();
    let lattice = "wash-ctl-errors";
    let fast = ["--timeout-ms", "300"];
    let run = |args: Vec<&'static str>| {
        let url = url.clone();
        async move { wash(&url, lattice, &[&args[..], &fast].concat(), &[]).await }
    };

    // No host on the lattice.
    let err = fails(&run(vec!["ctl", "get", "hosts"]).await, "no hosts answered");
    assert!(
        err.contains(&format!("lattice `{lattice}` at {url}")),
        "{err}"
    );
    assert!(err.contains("wash up --nats-url"), "{err}");
    fails(&run(vec!["ctl", "get", "links"]).await, "no hosts answered");
    fails(
        &run(vec!["ctl", "get", "inventory"]).await,
        "no hosts answered",
    );
    fails(
        &run(vec!["ctl", "start", "actor", "/x.wasm"]).await,
        "no hosts answered",
    );
    fails(
        &run(vec!["call", "some-alias", "Echo"]).await,
        "no hosts answered",
    );

    // Unknown host and unknown actor.
    let err = fails(
        &run(vec!["ctl", "get", "inventory", "NUNKNOWN"]).await,
        "host NUNKNOWN not found",
    );
    assert!(err.contains("wash ctl get hosts"), "{err}");
    fails(
        &run(vec!["ctl", "stop", "host", "NUNKNOWN"]).await,
        "host NUNKNOWN not found",
    );
    let actor: &'static str = KeyPair::generate(KeyKind::Module).public_key().leak();
    fails(
        &run(vec!["call", actor, "Echo"]).await,
        &format!("actor {actor} not found"),
    );

    // Someone listens but never answers: timed out.
    let client = nimbus_tests::servers::connect(&url).await.unwrap();
    let _silent = client
        .subscribe(format!("wasmbus.ctl.{lattice}.get.NSLOW.inv"))
        .await
        .unwrap();
    client.flush().await.unwrap();
    let err = fails(
        &run(vec!["ctl", "get", "inventory", "NSLOW"]).await,
        "timed out after 300 ms",
    );
    assert!(err.contains("failed to get the inventory"), "{err}");

    // Bad input.
    fails(
        &run(vec![
            "ctl",
            "stop",
            "provider",
            "not-a-key",
            "c:x",
            "--host-id",
            "NX",
        ])
        .await,
        "is not a provider public key",
    );
    fails(
        &run(vec!["ctl", "get", "inventory", "bad.host"]).await,
        "is not a valid host id",
    );
    fails(
        &run(vec!["call", actor, "Echo", "--cluster-seed", "SCnope"]).await,
        "cluster seed is not usable",
    );
    let out = run(vec!["ctl", "link", "put", "M", "V", "c:x", "novalue"]).await;
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("is not KEY=VALUE"),
        "{}",
        stderr(&out)
    );
    let out = wash("nats://127.0.0.1:1", lattice, &["ctl", "get", "hosts"], &[]).await;
    fails(&out, "failed to connect to NATS at nats://127.0.0.1:1");
}
