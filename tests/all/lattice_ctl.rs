//! The control interface over NATS with raw JSON, as a 0.x control client sends it: every
//! verb, the events that report the outcome of acknowledged commands, and refusals of bad
//! requests (after which the host keeps answering).

use std::sync::Arc;
use std::time::Duration;

use nimbus_core::ctl::{GetClaimsResponse, HostInventory, LinkDefinitionList};
use nimbus_core::subjects::{CtlCommand, Subjects};
use nimbus_lattice::{Host, NatsConfig};
use nimbus_provider_sdk::Provider;
use nimbus_tests::servers::NatsServer;
use serde_json::json;

use crate::lattice_support::*;

fn accepted(ack: &serde_json::Value) -> bool {
    ack["accepted"].as_bool().unwrap_or(false)
}

async fn inventory(client: &async_nats::Client, s: &Subjects, host: &Host) -> HostInventory {
    serde_json::from_value(ctl(client, s.ctl_get_inventory(host.id()), b"").await).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_control_verb_over_raw_json() {
    let nats = NatsServer::start();
    let seed = cluster_seed();
    let lattice = lattice_name("ctl");
    let s = Subjects::for_lattice(&lattice);
    let pid = provider_key();
    let provider = TestProvider::new();
    let registered = provider.clone();
    let host = builder(&seed)
        .lattice(&lattice)
        .nats(NatsConfig::url(nats.url()))
        .label("zone", "blue")
        .provider_factory(
            "test-provider",
            pid.clone(),
            Arc::new(move || registered.clone() as Arc<dyn Provider>),
        )
        .build()
        .await
        .unwrap();
    let other = nats_host(&[nats.url()], &lattice, &seed).await;
    let client = async_nats::connect(nats.url()).await.unwrap();
    let mut events = client.subscribe(s.events()).await.unwrap();
    client.flush().await.unwrap();

    // ping.hosts: every host answers.
    let pongs = ctl_gather(&client, s.ctl_ping_hosts(), b"", Duration::from_millis(400)).await;
    assert_eq!(pongs.len(), 2);
    let pong = pongs.iter().find(|p| p["id"] == host.id()).unwrap();
    assert_eq!(pong["labels"]["zone"], "blue");
    assert_eq!(pong["lattice_prefix"], lattice.as_str());
    assert_eq!(pong["issuer"], host.cluster_public_key().as_str());

    // la from a file path: acked, then reported by events.
    let actor = echo_actor(Some(&[TEST_CONTRACT]), Some("ctl-echo"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("echo.wasm");
    std::fs::write(&path, &actor.bytes).unwrap();
    let la = json!({"actor_ref": path.display().to_string(), "count": 1, "host_id": host.id()});
    let ack = ctl(
        &client,
        s.ctl_command(host.id(), CtlCommand::LaunchActor),
        la.to_string().as_bytes(),
    )
    .await;
    assert!(accepted(&ack), "{ack}");
    let started = wait_nats_event(&mut events, "actor_started", |e| {
        e.data["public_key"] == actor.id.as_str()
    })
    .await;
    assert_eq!(started.source, host.id());
    assert_eq!(started.data["claims"]["call_alias"], "ctl_echo");
    let inv = inventory(&client, &s, &host).await;
    assert_eq!(inv.actors.len(), 1);
    assert!(
        inv.actors[0]
            .image_ref
            .as_deref()
            .unwrap()
            .ends_with("echo.wasm")
    );

    // scale to 3 instances.
    let scale = json!({"actor_id": actor.id, "actor_ref": "", "count": 3});
    let ack = ctl(
        &client,
        s.ctl_command(host.id(), CtlCommand::ScaleActor),
        scale.to_string().as_bytes(),
    )
    .await;
    assert!(accepted(&ack), "{ack}");
    wait_nats_event(&mut events, "actors_started", |e| e.data["count"] == 2).await;
    assert_eq!(
        inventory(&client, &s, &host).await.actors[0]
            .instances
            .len(),
        3
    );

    // upd with a new build signed by the same key (acked after the swap).
    let upd = json!({"actor_id": actor.id, "new_actor_ref": format!("file://{}", path.display())});
    let ack = ctl(
        &client,
        s.ctl_command(host.id(), CtlCommand::UpdateActor),
        upd.to_string().as_bytes(),
    )
    .await;
    assert!(accepted(&ack), "{ack}");
    wait_nats_event(&mut events, "actor_updated", |e| {
        e.data["public_key"] == actor.id.as_str()
    })
    .await;

    // lp of a registered in-process provider.
    let lp = json!({"provider_ref": "test-provider", "link_name": "default"});
    let ack = ctl(
        &client,
        s.ctl_command(host.id(), CtlCommand::LaunchProvider),
        lp.to_string().as_bytes(),
    )
    .await;
    assert!(accepted(&ack), "{ack}");
    wait_nats_event(&mut events, "provider_started", |e| {
        e.data["public_key"] == pid.as_str()
    })
    .await;
    // A second lp of the same provider and link name is refused.
    let ack = ctl(
        &client,
        s.ctl_command(host.id(), CtlCommand::LaunchProvider),
        lp.to_string().as_bytes(),
    )
    .await;
    assert!(!accepted(&ack));
    assert!(
        ack["error"].as_str().unwrap().contains("already runs"),
        "{ack}"
    );

    // linkdefs.put: stored, announced, handed to the provider, used by the actor.
    let link = json!({"actor_id": actor.id, "provider_id": pid, "link_name": "default",
                      "contract_id": TEST_CONTRACT, "values": {"k": "v"}});
    let ack = ctl(&client, s.ctl_linkdefs_put(), link.to_string().as_bytes()).await;
    assert!(accepted(&ack), "{ack}");
    let set = wait_nats_event(&mut events, "linkdef_set", |e| {
        e.data["actor_id"] == actor.id.as_str()
    })
    .await;
    assert_eq!(set.source, "n/a");
    provider.wait_link(&actor.id, true).await;
    let out = other
        .call_actor(
            "ctl_echo",
            "Forward",
            forward("default", TEST_CONTRACT, "Echo", b"linked"),
        )
        .await
        .unwrap();
    assert_eq!(out, b"provider:linked");
    let links: LinkDefinitionList =
        serde_json::from_value(ctl(&client, s.ctl_get_links(), b"").await).unwrap();
    assert_eq!(links.links.len(), 1);
    assert_eq!(links.links[0].values["k"], "v");

    // get.claims.
    let claims: GetClaimsResponse =
        serde_json::from_value(ctl(&client, s.ctl_get_claims(), b"").await).unwrap();
    let mine = claims.claims.iter().find(|c| c["sub"] == actor.id).unwrap();
    assert_eq!(mine["caps"], TEST_CONTRACT);
    assert_eq!(mine["call_alias"], "ctl_echo");

    // Auctions: only hosts whose labels satisfy the constraints bid.
    let bids = ctl_gather(
        &client,
        s.ctl_auction_actor(),
        json!({"actor_ref": "x", "constraints": {"zone": "blue"}})
            .to_string()
            .as_bytes(),
        Duration::from_millis(400),
    )
    .await;
    assert_eq!(bids.len(), 1);
    assert_eq!(bids[0]["host_id"], host.id());
    let bids = ctl_gather(
        &client,
        s.ctl_auction_provider(),
        json!({"provider_ref": "test-provider", "link_name": "default"})
            .to_string()
            .as_bytes(),
        Duration::from_millis(400),
    )
    .await;
    // The host already running it does not bid; the other one does.
    assert_eq!(bids.len(), 1);
    assert_eq!(bids[0]["host_id"], other.id());

    // registries.put.
    let creds = json!({"ghcr.io": {"registryType": "oci", "username": "u", "password": "p"}});
    let acks = ctl_gather(
        &client,
        s.ctl_registries_put(),
        creds.to_string().as_bytes(),
        Duration::from_millis(400),
    )
    .await;
    assert_eq!(acks.len(), 2);
    assert!(acks.iter().all(accepted));

    // linkdefs.del.
    let del = json!({"actor_id": actor.id, "contract_id": TEST_CONTRACT, "link_name": "default"});
    let ack = ctl(&client, s.ctl_linkdefs_del(), del.to_string().as_bytes()).await;
    assert!(accepted(&ack), "{ack}");
    wait_nats_event(&mut events, "linkdef_deleted", |e| {
        e.data["actor_id"] == actor.id.as_str()
    })
    .await;
    provider.wait_link(&actor.id, false).await;

    // sa (by public key) and sp.
    let sa = json!({"actor_ref": actor.id, "count": 0});
    let ack = ctl(
        &client,
        s.ctl_command(host.id(), CtlCommand::StopActor),
        sa.to_string().as_bytes(),
    )
    .await;
    assert!(accepted(&ack), "{ack}");
    wait_nats_event(&mut events, "actors_stopped", |e| {
        e.data["public_key"] == actor.id.as_str()
    })
    .await;
    let sp = json!({"provider_ref": pid, "link_name": "default", "contract_id": TEST_CONTRACT});
    let ack = ctl(
        &client,
        s.ctl_command(host.id(), CtlCommand::StopProvider),
        sp.to_string().as_bytes(),
    )
    .await;
    assert!(accepted(&ack), "{ack}");
    let stopped = wait_nats_event(&mut events, "provider_stopped", |e| {
        e.data["public_key"] == pid.as_str()
    })
    .await;
    assert_eq!(stopped.data["reason"], "normal");
    let inv = inventory(&client, &s, &host).await;
    assert!(inv.actors.is_empty() && inv.providers.is_empty(), "{inv:?}");

    // stop (no body): acked, host_stopped published, the host resolves `stopped`.
    let ack = ctl(&client, s.ctl_command(host.id(), CtlCommand::StopHost), b"").await;
    assert!(accepted(&ack), "{ack}");
    tokio::time::timeout(Duration::from_secs(10), host.stopped())
        .await
        .unwrap();
    wait_nats_event(&mut events, "host_stopped", |e| e.source == host.id()).await;
    other.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_control_requests_get_clear_refusals() {
    let nats = NatsServer::start();
    let lattice = lattice_name("ctl-bad");
    let s = Subjects::for_lattice(&lattice);
    let host = nats_host(&[nats.url()], &lattice, &cluster_seed()).await;
    let client = async_nats::connect(nats.url()).await.unwrap();
    let cmd = |c| s.ctl_command(host.id(), c);

    let bad = b"{not json";
    for (subject, verb) in [
        (cmd(CtlCommand::LaunchActor), "la"),
        (cmd(CtlCommand::StopActor), "sa"),
        (cmd(CtlCommand::ScaleActor), "scale"),
        (cmd(CtlCommand::UpdateActor), "upd"),
        (cmd(CtlCommand::LaunchProvider), "lp"),
        (cmd(CtlCommand::StopProvider), "sp"),
        (cmd(CtlCommand::StopHost), "stop"),
        (s.ctl_linkdefs_put(), "linkdefs.put"),
        (s.ctl_linkdefs_del(), "linkdefs.del"),
        (s.ctl_auction_actor(), "auction.actor"),
        (s.ctl_auction_provider(), "auction.provider"),
        (s.ctl_registries_put(), "registries.put"),
    ] {
        let ack = ctl(&client, subject, bad).await;
        assert!(!accepted(&ack), "{verb}: {ack}");
        let error = ack["error"].as_str().unwrap();
        assert!(
            error.starts_with(&format!("invalid JSON for `{verb}`: ")),
            "{verb}: {error}"
        );
    }
    // Well-formed JSON with a missing required field.
    let ack = ctl(&client, cmd(CtlCommand::LaunchActor), br#"{"count": 1}"#).await;
    assert!(
        ack["error"]
            .as_str()
            .unwrap()
            .contains("missing field `actor_ref`"),
        "{ack}"
    );

    // Well-formed but impossible requests.
    let ack = ctl(
        &client,
        cmd(CtlCommand::LaunchActor),
        br#"{"actor_ref": "/no/such/file.wasm"}"#,
    )
    .await;
    assert!(
        ack["error"]
            .as_str()
            .unwrap()
            .contains("is not a readable file"),
        "{ack}"
    );
    let ack = ctl(
        &client,
        cmd(CtlCommand::LaunchProvider),
        br#"{"provider_ref": "nope", "link_name": "default"}"#,
    )
    .await;
    assert!(
        ack["error"]
            .as_str()
            .unwrap()
            .starts_with("unknown provider reference `nope`"),
        "{ack}"
    );
    let ack = ctl(
        &client,
        cmd(CtlCommand::StopProvider),
        br#"{"provider_ref": "Vshort", "link_name": "default"}"#,
    )
    .await;
    assert!(
        ack["error"]
            .as_str()
            .unwrap()
            .contains("not a provider public key"),
        "{ack}"
    );
    let nobody = echo_actor(None, None).id;
    let ack = ctl(
        &client,
        cmd(CtlCommand::StopActor),
        json!({"actor_ref": nobody, "count": 1})
            .to_string()
            .as_bytes(),
    )
    .await;
    assert!(
        ack["error"]
            .as_str()
            .unwrap()
            .contains("is not running on host"),
        "{ack}"
    );
    let ack = ctl(
        &client,
        cmd(CtlCommand::ScaleActor),
        json!({"actor_id": nobody, "count": 2})
            .to_string()
            .as_bytes(),
    )
    .await;
    assert!(
        ack["error"]
            .as_str()
            .unwrap()
            .contains("no actor_ref was given"),
        "{ack}"
    );
    let ack = ctl(
        &client,
        s.ctl_linkdefs_put(),
        br#"{"actor_id": "", "provider_id": "V", "link_name": "default", "contract_id": "c"}"#,
    )
    .await;
    assert!(
        ack["error"].as_str().unwrap().contains("without actor_id"),
        "{ack}"
    );

    // The host still answers.
    let inv: HostInventory =
        serde_json::from_value(ctl(&client, s.ctl_get_inventory(host.id()), b"").await).unwrap();
    assert_eq!(inv.host_id, host.id());
    host.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_are_published_on_the_configured_period() {
    let nats = NatsServer::start();
    let lattice = lattice_name("heartbeat");
    let s = Subjects::for_lattice(&lattice);
    let client = async_nats::connect(nats.url()).await.unwrap();
    let mut events = client.subscribe(s.events()).await.unwrap();
    client.flush().await.unwrap();
    let host = builder(&cluster_seed())
        .lattice(&lattice)
        .nats(NatsConfig::url(nats.url()))
        .heartbeat_interval(Duration::from_millis(100))
        .build()
        .await
        .unwrap();
    wait_nats_event(&mut events, "host_started", |e| e.source == host.id()).await;
    let actor = echo_actor(None, None);
    host.start_actor(actor.bytes, 2).await.unwrap();
    let beat = wait_nats_event(&mut events, "host_heartbeat", |e| {
        e.data["actors"][actor.id.as_str()] == 2
    })
    .await;
    assert_eq!(beat.source, host.id());
    host.stop().await.unwrap();
}
