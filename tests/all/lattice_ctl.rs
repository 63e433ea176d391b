//! The control interface over NATS with raw JSON, as a 0.x control client sends it: every
//! verb, the events that report the outcome of acknowledged commands (the `*_failed` ones
//! too, with their reasons), and refusals of bad requests (after which the host keeps
//! answering).

use std::sync::Arc;
use std::time::Duration;

use nimbus_core::ctl::{GetClaimsResponse, HostInventory, LinkDefinitionList};
use nimbus_core::link::LinkDefinition;
use nimbus_core::subjects::{CtlCommand, Subjects};
use nimbus_echo_provider::EchoProvider;
use nimbus_lattice::Host;
use nimbus_provider_sdk::{CallContext, Provider, ProviderContext, ProviderError};
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
        .nats(crate::lattice_support::member_nats(nats.url()))
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
    let client = nimbus_tests::servers::connect(nats.url()).await.unwrap();
    let mut events = client.subscribe(s.events()).await.unwrap();
    client.flush().await.unwrap();

    // ping.hosts: every host answers, once.
    let pongs = ctl_gather(&client, s.ctl_ping_hosts(), b"", 2).await;
    assert_eq!(pongs.len(), 2, "{pongs:?}");
    assert!(pongs.iter().any(|p| p["id"] == other.id()), "{pongs:?}");
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

    // Before the provider runs anywhere, both hosts bid for it.
    let provider_auction = json!({"provider_ref": "test-provider", "link_name": "default"});
    let bids = ctl_gather(
        &client,
        s.ctl_auction_provider(),
        provider_auction.to_string().as_bytes(),
        2,
    )
    .await;
    assert_eq!(bids.len(), 2, "{bids:?}");

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

    // Auctions: every host bids without constraints, only hosts whose labels satisfy
    // them bid with.
    let bids = ctl_gather(
        &client,
        s.ctl_auction_actor(),
        json!({"actor_ref": "x", "constraints": {}})
            .to_string()
            .as_bytes(),
        2,
    )
    .await;
    assert_eq!(bids.len(), 2, "{bids:?}");
    let bids = ctl_gather(
        &client,
        s.ctl_auction_actor(),
        json!({"actor_ref": "x", "constraints": {"zone": "blue"}})
            .to_string()
            .as_bytes(),
        1,
    )
    .await;
    assert_eq!(bids.len(), 1, "{bids:?}");
    assert_eq!(bids[0]["host_id"], host.id());
    let bids = ctl_gather(
        &client,
        s.ctl_auction_provider(),
        provider_auction.to_string().as_bytes(),
        1,
    )
    .await;
    // The host already running it no longer bids (both did before the lp); the other does.
    assert_eq!(bids.len(), 1, "{bids:?}");
    assert_eq!(bids[0]["host_id"], other.id());

    // registries.put.
    let creds = json!({"ghcr.io": {"registryType": "oci", "username": "u", "password": "p"}});
    let acks = ctl_gather(
        &client,
        s.ctl_registries_put(),
        creds.to_string().as_bytes(),
        2,
    )
    .await;
    assert_eq!(acks.len(), 2, "{acks:?}");
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
    let client = nimbus_tests::servers::connect(nats.url()).await.unwrap();
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
    let client = nimbus_tests::servers::connect(nats.url()).await.unwrap();
    let mut events = client.subscribe(s.events()).await.unwrap();
    client.flush().await.unwrap();
    let host = builder(&cluster_seed())
        .lattice(&lattice)
        .nats(crate::lattice_support::member_nats(nats.url()))
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

/// A provider whose start fails, for `provider_start_failed`.
struct UnstartableProvider;

#[async_trait::async_trait]
impl Provider for UnstartableProvider {
    fn contract_id(&self) -> &str {
        TEST_CONTRACT
    }

    async fn start(&self, _ctx: ProviderContext) -> Result<(), ProviderError> {
        Err(ProviderError::Backend(
            "the backend at 127.0.0.1:1 refused the connection".into(),
        ))
    }

    async fn put_link(&self, _link: &LinkDefinition) -> Result<(), ProviderError> {
        Ok(())
    }

    async fn delete_link(&self, _actor_id: &str) {}

    async fn handle_invocation(
        &self,
        _ctx: &CallContext,
        operation: &str,
        _payload: Vec<u8>,
    ) -> Result<Vec<u8>, ProviderError> {
        Err(ProviderError::UnknownOperation {
            contract_id: TEST_CONTRACT.into(),
            operation: operation.into(),
        })
    }
}

/// Every `*_failed` event the host publishes (on the lattice's event subject, as a 0.x
/// client sees them), each triggered by an acknowledged command or link that then fails,
/// and each carrying a reason that says what went wrong.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_commands_and_links_are_reported_by_failed_events_with_the_reason() {
    let nats = NatsServer::start();
    let lattice = lattice_name("ctl-failed");
    let s = Subjects::for_lattice(&lattice);
    let dir = tempfile::tempdir().unwrap();
    let missing_binary = dir.path().join("no-such-provider");
    let echo_pid = provider_key();
    let host = builder(&cluster_seed())
        .lattice(&lattice)
        .nats(crate::lattice_support::member_nats(nats.url()))
        .provider_executable(
            "missing-binary",
            provider_key(),
            TEST_CONTRACT,
            &missing_binary,
        )
        .provider_factory(
            "unstartable",
            provider_key(),
            Arc::new(|| Arc::new(UnstartableProvider) as Arc<dyn Provider>),
        )
        .build()
        .await
        .unwrap();
    let client = nimbus_tests::servers::connect(nats.url()).await.unwrap();
    let mut events = client.subscribe(s.events()).await.unwrap();
    client.flush().await.unwrap();
    let cmd = |c| s.ctl_command(host.id(), c);

    // la of a file that is not a wasm module: acked (the file is readable), then
    // actor_start_failed and actors_start_failed say why.
    let garbage = dir.path().join("not-wasm.wasm");
    std::fs::write(&garbage, b"this is not a wasm module").unwrap();
    let garbage_ref = garbage.display().to_string();
    let la = json!({"actor_ref": garbage_ref, "count": 1});
    let ack = ctl(
        &client,
        cmd(CtlCommand::LaunchActor),
        la.to_string().as_bytes(),
    )
    .await;
    assert!(accepted(&ack), "{ack}");
    let failed = wait_nats_event(&mut events, "actor_start_failed", |e| {
        e.data["actor_ref"] == garbage_ref.as_str()
    })
    .await;
    assert_eq!(failed.source, host.id());
    let error = failed.data["error"].as_str().unwrap();
    assert!(
        error.starts_with("failed to load actor: ") && error.contains("not a WebAssembly module"),
        "{error}"
    );
    let failed = wait_nats_event(&mut events, "actors_start_failed", |e| {
        e.data["image_ref"] == garbage_ref.as_str()
    })
    .await;
    assert_eq!(failed.data["host_id"], host.id());
    assert_eq!(failed.data["error"].as_str().unwrap(), error);

    // la of a valid module without claims, on a host that requires them.
    let unsigned = dir.path().join("unsigned.wasm");
    std::fs::write(&unsigned, nimbus_tests::actor_wasm("echo")).unwrap();
    let unsigned_ref = unsigned.display().to_string();
    let la = json!({"actor_ref": unsigned_ref, "count": 1});
    let ack = ctl(
        &client,
        cmd(CtlCommand::LaunchActor),
        la.to_string().as_bytes(),
    )
    .await;
    assert!(accepted(&ack), "{ack}");
    let failed = wait_nats_event(&mut events, "actor_start_failed", |e| {
        e.data["actor_ref"] == unsigned_ref.as_str()
    })
    .await;
    let error = failed.data["error"].as_str().unwrap();
    assert!(
        error.contains("module is not signed") && error.contains("wash claims sign"),
        "{error}"
    );

    // scale of an actor that does not run, from a file that is gone: actors_start_failed
    // with the actor's key and the path.
    let nobody = echo_actor(None, None).id;
    let gone = dir.path().join("gone.wasm").display().to_string();
    let scale = json!({"actor_id": nobody, "actor_ref": gone, "count": 2});
    let ack = ctl(
        &client,
        cmd(CtlCommand::ScaleActor),
        scale.to_string().as_bytes(),
    )
    .await;
    assert!(accepted(&ack), "{ack}");
    let failed = wait_nats_event(&mut events, "actors_start_failed", |e| {
        e.data["public_key"] == nobody.as_str()
    })
    .await;
    assert_eq!(failed.data["image_ref"], gone.as_str());
    let error = failed.data["error"].as_str().unwrap();
    assert!(
        error.contains(&format!("failed to read actor file {gone}")),
        "{error}"
    );

    // lp of a registered executable that does not exist.
    let lp = json!({"provider_ref": "missing-binary", "link_name": "default"});
    let ack = ctl(
        &client,
        cmd(CtlCommand::LaunchProvider),
        lp.to_string().as_bytes(),
    )
    .await;
    assert!(accepted(&ack), "{ack}");
    let failed = wait_nats_event(&mut events, "provider_start_failed", |e| {
        e.data["provider_ref"] == "missing-binary"
    })
    .await;
    assert_eq!(failed.source, host.id());
    assert_eq!(failed.data["link_name"], "default");
    let error = failed.data["error"].as_str().unwrap();
    assert!(
        error.contains(&missing_binary.display().to_string()) && error.contains("does not exist"),
        "{error}"
    );

    // lp of an in-process provider whose start fails: its own reason comes through.
    let lp = json!({"provider_ref": "unstartable", "link_name": "other"});
    let ack = ctl(
        &client,
        cmd(CtlCommand::LaunchProvider),
        lp.to_string().as_bytes(),
    )
    .await;
    assert!(accepted(&ack), "{ack}");
    let failed = wait_nats_event(&mut events, "provider_start_failed", |e| {
        e.data["provider_ref"] == "unstartable"
    })
    .await;
    assert_eq!(failed.data["link_name"], "other");
    let error = failed.data["error"].as_str().unwrap();
    assert!(
        error.contains("provider failed to start") && error.contains("refused the connection"),
        "{error}"
    );
    assert!(host.inventory().providers.is_empty());

    // A link the (in-process) provider refuses: stored and acked, then linkdef_set_failed
    // with the provider's reason.
    host.start_provider(Arc::new(EchoProvider::new()), &echo_pid, "default")
        .await
        .unwrap();
    let actor = echo_actor(None, None).id;
    let link = json!({"actor_id": actor, "provider_id": echo_pid, "link_name": "default",
                      "contract_id": nimbus_echo_provider::CONTRACT_ID, "values": {"reject": "yes"}});
    let ack = ctl(&client, s.ctl_linkdefs_put(), link.to_string().as_bytes()).await;
    assert!(accepted(&ack), "{ack}");
    let failed = wait_nats_event(&mut events, "linkdef_set_failed", |e| {
        e.data["actor_id"] == actor.as_str()
    })
    .await;
    assert_eq!(failed.source, host.id());
    assert_eq!(failed.data["provider_id"], echo_pid.as_str());
    assert_eq!(
        failed.data["contract_id"],
        nimbus_echo_provider::CONTRACT_ID
    );
    assert_eq!(failed.data["link_name"], "default");
    let error = failed.data["error"].as_str().unwrap();
    assert!(error.contains("`reject` is set"), "{error}");

    // The host carries on; nothing that failed was left running.
    let inv = inventory(&client, &s, &host).await;
    assert!(inv.actors.is_empty(), "{inv:?}");
    assert_eq!(inv.providers.len(), 1);
    host.stop().await.unwrap();
}
