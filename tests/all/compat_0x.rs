//! What our hosts publish, read by the published 0.x control client: the prebuilt
//! `ctl-0x-check` (workspace `compat/ctl-0x`, on `wasmcloud-control-interface` 0.28.1)
//! runs against a live lattice and must decode every control reply, every CloudEvent and
//! every `LATTICEDATA_{lattice}` record with the crate's own types and reading code.
//!
//! The checker is its own workspace (old async-nats, ring and opentelemetry stay out of
//! ours), so this test only runs the binary; `scripts/test.sh` builds it beforehand.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use nimbus_lattice::NatsConfig;
use nimbus_provider_sdk::Provider;
use nimbus_tests::servers::NatsServer;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;

use crate::lattice_support::*;

/// Event types the checker must have decoded: each kind of host, actor, provider and link
/// event the lattice below produces while the checker listens.
const EXPECTED_EVENTS: &str = "host_started,host_heartbeat,actor_started,actors_started,actor_stopped,provider_started,linkdef_set";

fn checker() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../compat/ctl-0x/target/debug/ctl-0x-check");
    assert!(
        path.is_file(),
        "{} is missing: build the 0.x compat checker first with \
         `(cd compat/ctl-0x && cargo build --locked)` (tests never build it themselves)",
        path.display()
    );
    path
}

/// The entries of `list` whose `key` is `value`.
fn with<'a>(list: &'a Value, key: &str, value: &str) -> Vec<&'a Value> {
    list.as_array()
        .map(|l| l.iter().filter(|e| e[key] == value).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compat_0x_client_decodes_ctl_replies_events_and_bucket() {
    let checker = checker();
    // Open, as a 0.x lattice is: the published client connects without credentials.
    let nats = NatsServer::start_open();
    let seed = cluster_seed();
    let lattice = lattice_name("compat0x");
    let pid = provider_key();
    let provider = TestProvider::new();
    let registered = provider.clone();
    let host = builder(&seed)
        .lattice(&lattice)
        .nats(NatsConfig::url(nats.url()))
        .label("compat", "0x")
        .provider_factory(
            "test-provider",
            pid.clone(),
            Arc::new(move || registered.clone() as Arc<dyn Provider>),
        )
        .build()
        .await
        .unwrap();

    // One token that lists its caps, one with no `caps` field (the link is the grant):
    // both claims records must read as a 0.x map of strings.
    let with_caps = echo_actor(Some(&[TEST_CONTRACT]), Some("compat-echo"));
    let no_caps = echo_actor(None, None);
    host.start_actor(with_caps.bytes, 1).await.unwrap();
    host.start_actor(no_caps.bytes, 1).await.unwrap();
    // The checker starts (and stops) this one itself with the 0.x client.
    let by_checker = echo_actor(Some(&[TEST_CONTRACT]), None);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("by-checker.wasm");
    std::fs::write(&path, &by_checker.bytes).unwrap();
    let actor_ref = format!("file://{}", path.display());

    let mut child = Command::new(&checker)
        .args(["--nats", &nats.url(), "--lattice", &lattice])
        .args(["--expect-hosts", "2", "--expect-events", EXPECTED_EVENTS])
        .args(["--start-actor", &format!("{}:{actor_ref}", host.id())])
        .args(["--timeout-secs", "30"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", checker.display()));
    let mut stdout = child.stdout.take().unwrap();
    let stdout = tokio::spawn(async move {
        let mut out = String::new();
        stdout.read_to_string(&mut out).await.map(|_| out)
    });
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut log = Vec::new();
    tokio::time::timeout(Duration::from_secs(15), async {
        while let Some(line) = stderr.next_line().await.unwrap() {
            if line == "ready" {
                return;
            }
            log.push(line);
        }
        panic!("the checker exited before subscribing: {}", log.join("\n"));
    })
    .await
    .unwrap_or_else(|_| panic!("the checker was not ready within 15 s"));
    let stderr = tokio::spawn(async move {
        let mut rest = Vec::new();
        while let Ok(Some(line)) = stderr.next_line().await {
            rest.push(line);
        }
        rest.join("\n")
    });

    // While it listens: a provider, a link, and a second host.
    host.launch_provider("test-provider", "default", None)
        .await
        .unwrap();
    host.put_link(test_link(&with_caps.id, &pid)).await.unwrap();
    provider.wait_link(&with_caps.id, true).await;
    let other = nats_host(&[nats.url()], &lattice, &seed).await;

    let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .expect("the checker did not finish within 60 s")
        .unwrap();
    let out = stdout.await.unwrap().unwrap();
    let err = stderr.await.unwrap();
    let doc: Value = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("the checker printed no JSON ({e}): {out}\n{err}"));
    assert!(
        status.success() && doc["errors"].as_array().is_some_and(Vec::is_empty),
        "the 0.x client failed to decode something ({status}):\n{:#}\n{err}",
        doc["errors"]
    );
    assert_eq!(
        doc["kv_bucket"], true,
        "the bucket must be the client's source"
    );

    // get_hosts (ping.hosts) and get_host_inventory.
    for id in [host.id(), other.id()] {
        assert_eq!(with(&doc["hosts"], "id", id).len(), 1, "{:#}", doc["hosts"]);
    }
    let hosts = with(&doc["hosts"], "id", host.id());
    assert_eq!(hosts[0]["lattice_prefix"], lattice.as_str());
    assert_eq!(hosts[0]["labels"]["compat"], "0x");
    let inv = with(&doc["inventories"], "host_id", host.id());
    assert_eq!(inv.len(), 1, "{:#}", doc["inventories"]);
    for actor in [&with_caps.id, &no_caps.id] {
        let listed = with(&inv[0]["actors"], "id", actor);
        assert_eq!(listed.len(), 1, "{actor} not in {:#}", inv[0]["actors"]);
        assert_eq!(listed[0]["name"], "echo");
        assert_eq!(listed[0]["instances"], 1);
    }
    let providers = with(&inv[0]["providers"], "id", &pid);
    assert_eq!(providers.len(), 1, "{:#}", inv[0]["providers"]);
    assert_eq!(providers[0]["contract_id"], TEST_CONTRACT);
    assert_eq!(providers[0]["link_name"], "default");

    // get_claims from the bucket (CLAIMS_*) and through get.claims.
    for via in ["kv", "ctl"] {
        let claims = &doc["claims"][via];
        let mine = with(claims, "sub", &with_caps.id);
        assert_eq!(mine.len(), 1, "{via}: {claims:#}");
        assert_eq!(mine[0]["caps"], TEST_CONTRACT);
        assert_eq!(mine[0]["call_alias"], "compat_echo");
        assert_eq!(mine[0]["rev"], "1");
        let bare = with(claims, "sub", &no_caps.id);
        assert_eq!(bare.len(), 1, "{via}: {claims:#}");
        assert_eq!(bare[0]["caps"], "");
    }
    // The bucket keeps whether the token had a caps field, as a string 0.x accepts.
    let kv = &doc["claims"]["kv"];
    assert_eq!(with(kv, "sub", &with_caps.id)[0]["caps_declared"], "true");
    assert_eq!(with(kv, "sub", &no_caps.id)[0]["caps_declared"], "false");

    // query_links from the bucket (LINKDEF_*) and through get.links.
    for via in ["kv", "ctl"] {
        let links = with(&doc["links"][via], "actor_id", &with_caps.id);
        assert_eq!(links.len(), 1, "{via}: {:#}", doc["links"]);
        assert_eq!(links[0]["provider_id"], pid.as_str());
        assert_eq!(links[0]["contract_id"], TEST_CONTRACT);
        assert_eq!(links[0]["link_name"], "default");
    }

    // start_actor / stop_actor acks.
    let acks = doc["acks"].as_array().unwrap();
    let ops: Vec<_> = acks.iter().map(|a| a["op"].as_str().unwrap()).collect();
    assert_eq!(ops, ["start_actor", "stop_actor"], "{acks:#?}");
    assert!(acks.iter().all(|a| a["accepted"] == true), "{acks:#?}");
    assert_eq!(acks[1]["target"], by_checker.id.as_str());

    // CloudEvents, as cloudevents-sdk 0.7 (the client's) decodes them.
    let types: Vec<&str> = doc["event_types"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for expected in EXPECTED_EVENTS.split(',') {
        assert!(types.contains(&expected), "no {expected} in {types:?}");
    }
    let started = with(&doc["events"], "type", "com.wasmcloud.lattice.host_started");
    assert!(
        started.iter().any(|e| e["source"] == other.id()),
        "{started:#?}"
    );
    let events = doc["events"].as_array().unwrap().len();
    assert_eq!(doc["events_via_receiver"], events);

    other.stop().await.unwrap();
    host.stop().await.unwrap();
}
