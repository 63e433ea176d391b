//! Hosts on real NATS: two hosts sharing one server, a server that restarts (with or
//! without its data), a three-server cluster with a server going away, load shared by two
//! hosts while one stops, and every malformed or refused invocation answered with its own
//! error.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use nimbus_core::claims::sign_invocation;
use nimbus_core::ctl::{HostInventory, LinkDefinitionList};
use nimbus_core::keys::{KeyKind, KeyPair};
use nimbus_core::link::LinkDefinition;
use nimbus_core::subjects::Subjects;
use nimbus_core::wire::{Invocation, InvocationResponse, WasmCloudEntity};
use nimbus_lattice::{ErrorKind, Host, MemoryStore};
use nimbus_tests::servers::{NatsCluster, NatsServer};

use crate::lattice_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hosts_share_actors_links_and_inventory() {
    let nats = NatsServer::start();
    let seed = cluster_seed();
    let lattice = lattice_name("two-hosts");
    let subjects = Subjects::for_lattice(&lattice);
    let a = nats_host(&[nats.url()], &lattice, &seed).await;
    let b = nats_host(&[nats.url()], &lattice, &seed).await;

    let on_a = echo_actor(Some(&[]), None);
    a.start_actor(on_a.bytes, 1).await.unwrap();
    let on_b = echo_actor(Some(&[]), None);
    b.start_actor(on_b.bytes, 1).await.unwrap();

    // Host B calls the actor on host A the way `wash call` does...
    assert_eq!(
        b.call_actor(&on_a.id, "Echo", b"from b".to_vec())
            .await
            .unwrap(),
        b"from b"
    );
    // ...and through an actor of its own.
    let out = b
        .call_actor(
            &on_b.id,
            "Forward",
            forward("", &on_a.id, "Echo", b"via actor"),
        )
        .await
        .unwrap();
    assert_eq!(out, b"via actor");

    // A link put on A is seen by B and by a host that joins later.
    let pid = provider_key();
    let mut b_events = b.events();
    a.put_link(test_link(&on_b.id, &pid)).await.unwrap();
    wait_event(&mut b_events, "linkdef_set", |e| {
        e.data["actor_id"] == on_b.id.as_str()
    })
    .await;
    assert!(b.links().iter().any(|l| l.actor_id == on_b.id));
    let late = nats_host(&[nats.url()], &lattice, &seed).await;
    assert!(
        late.links()
            .iter()
            .any(|l| l.actor_id == on_b.id && l.provider_id == pid)
    );

    // Raw control requests: links, inventories of both hosts, ping.
    let client = nimbus_tests::servers::connect(nats.url()).await.unwrap();
    let links: LinkDefinitionList =
        serde_json::from_value(ctl(&client, subjects.ctl_get_links(), b"").await).unwrap();
    assert!(links.links.iter().any(|l| l.actor_id == on_b.id));
    for (host, actor) in [(&a, &on_a.id), (&b, &on_b.id)] {
        let inv: HostInventory =
            serde_json::from_value(ctl(&client, subjects.ctl_get_inventory(host.id()), b"").await)
                .unwrap();
        assert_eq!(inv.host_id, host.id());
        assert_eq!(inv.actors.len(), 1);
        assert_eq!(&inv.actors[0].id, actor);
        assert_eq!(inv.actors[0].instances.len(), 1);
    }
    let pongs = ctl_gather(&client, subjects.ctl_ping_hosts(), b"", 3).await;
    let mut ids: Vec<String> = pongs
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    let mut expected = vec![
        a.id().to_string(),
        b.id().to_string(),
        late.id().to_string(),
    ];
    expected.sort();
    assert_eq!(ids, expected);

    for h in [a, b, late] {
        h.stop().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_calls_cross_servers_and_survive_losing_a_server() {
    let mut cluster = NatsCluster::start(3);
    let urls = cluster.urls();
    let seed = cluster_seed();
    let lattice = lattice_name("cluster");
    // No JetStream in this cluster: the hosts share an in-memory store.
    let store = Arc::new(MemoryStore::new());
    let mut hosts = Vec::new();
    for i in 0..3 {
        // Every host knows every server and starts on its own one.
        let mut ordered = urls.clone();
        ordered.rotate_left(i);
        let mut nats = crate::lattice_support::member_nats_urls(ordered);
        nats.keep_server_order = true;
        let host = builder(&seed)
            .lattice(&lattice)
            .nats(nats)
            .lattice_store(store.clone())
            .rpc_timeout(Duration::from_millis(500))
            .build()
            .await
            .unwrap();
        assert_eq!(
            host.nats().unwrap().server_info().port,
            cluster.servers[i].port()
        );
        hosts.push(host);
    }
    let actor = echo_actor(Some(&[]), None);
    hosts[0].start_actor(actor.bytes, 2).await.unwrap();
    // Routes carry interest to the other servers shortly after the subscription.
    for caller in &hosts[1..] {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            match caller
                .call_actor(&actor.id, "Echo", b"across".to_vec())
                .await
            {
                Ok(out) => {
                    assert_eq!(out, b"across");
                    break;
                }
                Err(e) if tokio::time::Instant::now() < deadline => {
                    assert!(e.kind() == ErrorKind::NoResponders, "{e}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("cross-server call failed: {e}"),
            }
        }
    }

    // Take away the server the actor's host is connected to.
    cluster.servers[0].stop();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let moved = hosts[0].nats().unwrap().server_info().port != cluster.servers[0].port();
        let answered = hosts[1]
            .call_actor(&actor.id, "Echo", b"still here".to_vec())
            .await
            .is_ok_and(|out| out == b"still here");
        if moved && answered {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "host did not reconnect and serve again (moved: {moved})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        hosts[2]
            .call_actor(&actor.id, "Echo", b"2".to_vec())
            .await
            .unwrap(),
        b"2"
    );
    for h in hosts {
        h.stop().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_one_of_two_hosts_under_load_loses_no_request() {
    let nats = NatsServer::start();
    let seed = cluster_seed();
    let lattice = lattice_name("load");
    let first = nats_host(&[nats.url()], &lattice, &seed).await;
    let second = nats_host(&[nats.url()], &lattice, &seed).await;
    let caller = Arc::new(nats_host(&[nats.url()], &lattice, &seed).await);
    let actor = echo_actor(Some(&[]), None);
    first.start_actor(actor.bytes.clone(), 4).await.unwrap();
    second.start_actor(actor.bytes, 4).await.unwrap();

    const WORKERS: usize = 8;
    const CALLS: usize = 60;
    let done = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for w in 0..WORKERS {
        let caller = caller.clone();
        let id = actor.id.clone();
        let done = done.clone();
        workers.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            for i in 0..CALLS {
                let payload = format!("{w}-{i}").into_bytes();
                match caller.call_actor(&id, "Echo", payload.clone()).await {
                    Ok(out) => assert_eq!(out, payload),
                    Err(e) => failures.push(e),
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
            failures
        }));
    }
    // Stop one host in the middle of the load.
    while done.load(Ordering::Relaxed) < WORKERS * CALLS / 3 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    first.stop().await.unwrap();
    let mut failures = Vec::new();
    for w in workers {
        // Every call finishes (a timeout at worst): no worker hangs.
        failures.extend(
            tokio::time::timeout(Duration::from_secs(60), w)
                .await
                .expect("a caller hung")
                .unwrap(),
        );
    }
    // The stopping host drains: it unsubscribes at the server (new requests go to the
    // other host) and answers every request it already took before it lets go.
    // Known cause of TimedOut failures here: async-nats 0.51 (and 0.52) `Subscriber::drain`
    // forgets the subscription on the connection task's next poll instead of on the PONG
    // that follows the UNSUB, so requests the server routed to this host in between are
    // dropped by the client unanswered.
    assert!(
        failures.is_empty(),
        "{} of {} requests failed: {failures:?}",
        failures.len(),
        WORKERS * CALLS
    );
    assert_eq!(done.load(Ordering::Relaxed), WORKERS * CALLS);
    // The remaining host carries on alone.
    assert_eq!(
        caller
            .call_actor(&actor.id, "Echo", b"end".to_vec())
            .await
            .unwrap(),
        b"end"
    );
    second.stop().await.unwrap();
    caller.stop().await.unwrap();
}

/// Sends `inv` (signed with `cluster` unless `None`) to `subject` and decodes the reply.
async fn send(
    client: &async_nats::Client,
    subject: &str,
    mut inv: Invocation,
    cluster: Option<&KeyPair>,
) -> InvocationResponse {
    if let Some(cluster) = cluster {
        inv.encoded_claims = sign_invocation(
            cluster,
            &inv.id,
            &inv.origin_url(),
            &inv.target_url(),
            &inv.operation,
            &inv.msg,
        )
        .unwrap();
    }
    send_raw(client, subject, inv.to_msgpack().unwrap()).await
}

async fn send_raw(client: &async_nats::Client, subject: &str, body: Vec<u8>) -> InvocationResponse {
    let reply = client
        .request(subject.to_string(), body.into())
        .await
        .unwrap();
    InvocationResponse::from_msgpack(&reply.payload).unwrap()
}

fn error_of(resp: &InvocationResponse) -> &str {
    resp.error.as_deref().expect("expected an error response")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_invocations_get_specific_errors_and_the_host_keeps_serving() {
    let nats = NatsServer::start();
    let seed = cluster_seed();
    let cluster = KeyPair::from_seed(&seed).unwrap();
    let lattice = lattice_name("bad-input");
    let subjects = Subjects::for_lattice(&lattice);
    let host = builder(&seed)
        .lattice(&lattice)
        .nats(crate::lattice_support::member_nats(nats.url()))
        .max_payload(1024)
        .build()
        .await
        .unwrap();
    let actor = echo_actor(Some(&[]), None);
    host.start_actor(actor.bytes, 1).await.unwrap();
    let subject = subjects.rpc_actor(&actor.id);
    let client = nimbus_tests::servers::connect(nats.url()).await.unwrap();
    let me = WasmCloudEntity::actor(actor.id.clone());
    let call = |origin: WasmCloudEntity, target: WasmCloudEntity, msg: &[u8]| {
        Invocation::new(origin, target, "Echo", msg.to_vec(), "Ntest")
    };

    // A good call first.
    let ok = send(
        &client,
        &subject,
        call(me.clone(), me.clone(), b"ok"),
        Some(&cluster),
    )
    .await;
    assert_eq!(ok.error, None);
    assert_eq!(ok.msg, b"ok");

    // Not msgpack at all.
    let r = send_raw(&client, &subject, b"\xc1 definitely not msgpack".to_vec()).await;
    assert!(error_of(&r).starts_with("malformed invocation: "), "{r:?}");
    // Msgpack, but not an Invocation.
    let r = send_raw(
        &client,
        &subject,
        rmp_serde::to_vec_named(&vec![1, 2, 3]).unwrap(),
    )
    .await;
    assert!(error_of(&r).starts_with("malformed invocation: "), "{r:?}");

    // An actor this host does not run.
    let stranger = WasmCloudEntity::actor(echo_actor(None, None).id);
    let r = send(
        &client,
        &subject,
        call(me.clone(), stranger.clone(), b""),
        Some(&cluster),
    )
    .await;
    assert_eq!(
        error_of(&r),
        format!(
            "unknown target: actor {} is not running on host {}",
            stranger.public_key,
            host.id()
        )
    );

    // A provider calling the actor without a link.
    let pid = provider_key();
    let provider = WasmCloudEntity::provider(pid.clone(), TEST_CONTRACT, "default");
    let r = send(
        &client,
        &subject,
        call(provider.clone(), me.clone(), b""),
        Some(&cluster),
    )
    .await;
    assert!(
        error_of(&r).starts_with(&format!(
            "no link for contract {TEST_CONTRACT} link name default from actor {}",
            actor.id
        )),
        "{r:?}"
    );

    // With the link, but the actor's claims (caps: []) do not grant the contract.
    host.put_link(test_link(&actor.id, &pid)).await.unwrap();
    let r = send(
        &client,
        &subject,
        call(provider, me.clone(), b""),
        Some(&cluster),
    )
    .await;
    assert!(
        error_of(&r).starts_with(&format!(
            "capability {TEST_CONTRACT} not granted to actor {}",
            actor.id
        )),
        "{r:?}"
    );

    // Too big for this host (max 1024 bytes).
    let r = send(
        &client,
        &subject,
        call(me.clone(), me.clone(), &[7; 2000]),
        Some(&cluster),
    )
    .await;
    assert!(
        error_of(&r).starts_with("payload too large (2000 > 1024 bytes)"),
        "{r:?}"
    );

    // Unsigned, and signed by a cluster this host does not trust.
    let r = send(&client, &subject, call(me.clone(), me.clone(), b""), None).await;
    assert!(
        error_of(&r).starts_with("claims invalid: the invocation carries no anti-forgery token"),
        "{r:?}"
    );
    let stranger_cluster = KeyPair::generate(KeyKind::Cluster);
    let r = send(
        &client,
        &subject,
        call(me.clone(), me.clone(), b""),
        Some(&stranger_cluster),
    )
    .await;
    assert!(
        error_of(&r).starts_with(&format!(
            "claims invalid: invocation signed by cluster key {}",
            stranger_cluster.public_key()
        )),
        "{r:?}"
    );
    // A token for another payload.
    let mut tampered = call(me.clone(), me.clone(), b"original");
    tampered.encoded_claims = sign_invocation(
        &cluster,
        &tampered.id,
        &tampered.origin_url(),
        &tampered.target_url(),
        "Echo",
        b"something else",
    )
    .unwrap();
    let r = send(&client, &subject, tampered, None).await;
    assert!(
        error_of(&r).starts_with("claims invalid: invocation token does not match"),
        "{r:?}"
    );

    // The actor itself fails: its error comes back, distinct from the above.
    let mut trap = call(me.clone(), me.clone(), b"");
    trap.operation = "Trap".into();
    let r = send(&client, &subject, trap, Some(&cluster)).await;
    assert!(error_of(&r).starts_with("actor trapped: "), "{r:?}");

    // Still serving.
    let ok = send(
        &client,
        &subject,
        call(me.clone(), me, b"still"),
        Some(&cluster),
    )
    .await;
    assert_eq!(ok.error, None);
    assert_eq!(ok.msg, b"still");
    // And the host's own caller refuses an oversized payload before sending it.
    let err = host
        .call_actor(&actor.id, "Echo", vec![0; 1025])
        .await
        .unwrap_err();
    assert!(err.kind() == ErrorKind::PayloadTooLarge, "{err}");
    host.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_written_straight_into_the_bucket_reach_the_host() {
    // `wash ctl link put` writes the KV bucket directly; deletes may be DEL or PURGE.
    let nats = NatsServer::start();
    let lattice = lattice_name("kv");
    let host = nats_host(&[nats.url()], &lattice, &cluster_seed()).await;
    let provider = TestProvider::new();
    let pid = provider_key();
    host.start_provider(provider.clone(), &pid, "default")
        .await
        .unwrap();
    let mut events = host.events();
    let client = nimbus_tests::servers::connect(nats.url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let kv = js
        .get_key_value(Subjects::for_lattice(&lattice).kv_bucket())
        .await
        .unwrap();

    let actor = echo_actor(None, None).id;
    let link = test_link(&actor, &pid);
    kv.put(link.kv_key(), serde_json::to_vec(&link).unwrap().into())
        .await
        .unwrap();
    provider.wait_link(&actor, true).await;
    wait_event(&mut events, "linkdef_set", |e| {
        e.data["actor_id"] == actor.as_str()
    })
    .await;
    kv.delete(link.kv_key()).await.unwrap();
    provider.wait_link(&actor, false).await;
    wait_event(&mut events, "linkdef_deleted", |e| {
        e.data["actor_id"] == actor.as_str()
    })
    .await;

    // A value that is not a link is ignored; the watch goes on.
    kv.put("LINKDEF_garbage", "not json".into()).await.unwrap();
    kv.put(link.kv_key(), serde_json::to_vec(&link).unwrap().into())
        .await
        .unwrap();
    provider.wait_link(&actor, true).await;
    kv.purge(link.kv_key()).await.unwrap();
    provider.wait_link(&actor, false).await;
    wait_event(&mut events, "linkdef_deleted", |e| {
        e.data["actor_id"] == actor.as_str()
    })
    .await;
    assert!(host.links().is_empty());
    host.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_resubscribe_and_rewatch_after_the_server_restarts() {
    let mut nats = NatsServer::start();
    let seed = cluster_seed();
    let lattice = lattice_name("restart");
    let server = nats_host(&[nats.url()], &lattice, &seed).await;
    let caller = nats_host(&[nats.url()], &lattice, &seed).await;
    let provider = TestProvider::new();
    let pid = provider_key();
    server
        .start_provider(provider.clone(), &pid, "default")
        .await
        .unwrap();
    let actor = echo_actor(None, None);
    server.start_actor(actor.bytes, 1).await.unwrap();
    // Under heavy machine load the very first call has been seen to get "no responders"
    // (not reproduced in isolation; the subscription is flushed before start_actor
    // returns). This test is about the restart, so wait for the first answer.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match caller.call_actor(&actor.id, "Echo", b"1".to_vec()).await {
            Ok(reply) => {
                assert_eq!(reply, b"1");
                break;
            }
            Err(e) => assert!(
                tokio::time::Instant::now() < deadline,
                "no answer before the restart: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    nats.restart();
    // Calls work again once both hosts are back (RPC subscriptions restored).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while caller
        .call_actor(&actor.id, "Echo", b"2".to_vec())
        .await
        .ok()
        .as_deref()
        != Some(b"2")
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no answer after the restart"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A link written after the restart still reaches the provider (the watch resumed).
    caller.put_link(test_link(&actor.id, &pid)).await.unwrap();
    provider.wait_link(&actor.id, true).await;
    server.stop().await.unwrap();
    caller.stop().await.unwrap();
}

/// The value of `key` in the lattice bucket, `None` if it has none (or there is no bucket).
async fn bucket_value(
    js: &async_nats::jetstream::Context,
    bucket: &str,
    key: &str,
) -> Option<Vec<u8>> {
    let kv = js.get_key_value(bucket).await.ok()?;
    kv.get(key).await.ok().flatten().map(|v| v.to_vec())
}

/// Issue 14: a nats-server that comes back without its JetStream store has no lattice
/// bucket. The hosts create it again on the first write or watch that finds it missing
/// (no host restart), put back the claims of their actors and the links they knew, and a
/// link put afterwards reaches the other host, even under a key whose revision in the new
/// bucket is lower than the one the hosts saw before. First a link put heals the bucket;
/// after a second loss with no write, the hosts' watches do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_recreate_the_lattice_bucket_after_the_server_lost_its_data() {
    let mut nats = NatsServer::start();
    let seed = cluster_seed();
    let lattice = lattice_name("data-loss");
    let bucket = Subjects::for_lattice(&lattice).kv_bucket();
    let a = nats_host(&[nats.url()], &lattice, &seed).await;
    let b = nats_host(&[nats.url()], &lattice, &seed).await;
    let provider = TestProvider::new();
    let pid = provider_key();
    b.start_provider(provider.clone(), &pid, "default")
        .await
        .unwrap();
    let actor = echo_actor(None, None);
    a.start_actor(actor.bytes, 1).await.unwrap();
    // Twenty writes of one link: the old stream's sequences run well past those the new
    // stream starts with.
    let known = test_link(&actor.id, &pid);
    for n in 0..20 {
        let mut link = known.clone();
        link.values.insert("n".into(), n.to_string());
        a.put_link(link).await.unwrap();
    }
    provider.wait_link(&actor.id, true).await;

    nats.restart_without_data();
    let started = tokio::time::Instant::now();

    // A link put after the restart succeeds once the hosts are connected again (it
    // creates the bucket again), within a bounded window, and reaches host B.
    let other = echo_actor(None, None);
    let fresh = test_link(&other.id, &pid);
    let deadline = started + Duration::from_secs(15);
    loop {
        match a.put_link(fresh.clone()).await {
            Ok(()) => break,
            Err(e) => assert!(
                tokio::time::Instant::now() < deadline,
                "no link put succeeded within 15 s of the restart: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let put_after = started.elapsed();
    provider.wait_link(&other.id, true).await;
    assert!(b.links().iter().any(|l| l.actor_id == other.id));
    eprintln!(
        "link put succeeded {put_after:?} after the restart, reached host B after {:?}",
        started.elapsed()
    );

    // What the hosts knew is back in the new bucket: the claims of the actor running on
    // A and the link put before the loss.
    let js = async_nats::jetstream::new(nimbus_tests::servers::connect(nats.url()).await.unwrap());
    let claims_key = nimbus_core::link::claims_key(&actor.id);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let claims = bucket_value(&js, &bucket, &claims_key).await;
        let link = bucket_value(&js, &bucket, &known.kv_key()).await;
        if let (Some(claims), Some(link)) = (claims, link) {
            let claims: serde_json::Value = serde_json::from_slice(&claims).unwrap();
            assert_eq!(claims["sub"], actor.id.as_str());
            let link: LinkDefinition = serde_json::from_slice(&link).unwrap();
            assert_eq!(link.values.get("n").map(String::as_str), Some("19"));
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "claims or link not put back: claims {:?}, link {:?}",
            bucket_value(&js, &bucket, &claims_key).await.is_some(),
            bucket_value(&js, &bucket, &known.kv_key()).await.is_some(),
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A change of the link known from before reaches B although the new bucket numbers
    // it below the revision B saw before the loss.
    let mut changed = known.clone();
    changed.values.insert("n".into(), "after".into());
    a.put_link(changed).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !b
        .links()
        .iter()
        .any(|l| l.actor_id == actor.id && l.values.get("n").map(String::as_str) == Some("after"))
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "host B never saw the changed link: {:?}",
            b.links()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Both hosts agree on the links, and A's cache took its own write.
    let ids = |h: &Host| {
        let mut v: Vec<_> = h
            .links()
            .into_iter()
            .map(|l| (l.id, l.values.get("n").cloned()))
            .collect();
        v.sort();
        v
    };
    assert_eq!(ids(&a), ids(&b));
    assert_eq!(a.links().len(), 2);
    // Calls between the hosts still work.
    assert_eq!(
        b.call_actor(&actor.id, "Echo", b"x".to_vec())
            .await
            .unwrap(),
        b"x"
    );

    // The data is lost again and nobody writes: the hosts' watches find the bucket gone,
    // create it and put everything back by themselves.
    nats.restart_without_data();
    let started = tokio::time::Instant::now();
    let js = async_nats::jetstream::new(nimbus_tests::servers::connect(nats.url()).await.unwrap());
    let keys = [claims_key.clone(), known.kv_key(), fresh.kv_key()];
    loop {
        let mut present = Vec::new();
        for key in &keys {
            present.push(bucket_value(&js, &bucket, key).await.is_some());
        }
        if present.iter().all(|p| *p) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "not put back by the watches within 15 s (claims, link, link): {present:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "the watches put the lattice data back {:?} after the second restart",
        started.elapsed()
    );
    let link: LinkDefinition =
        serde_json::from_slice(&bucket_value(&js, &bucket, &known.kv_key()).await.unwrap())
            .unwrap();
    assert_eq!(link.values.get("n").map(String::as_str), Some("after"));
    assert_eq!(ids(&a), ids(&b));
    assert_eq!(b.links().len(), 2);
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_process_provider_is_supervised_linked_and_routed_over_nats() {
    const ECHO_BIN: &str = env!("CARGO_BIN_EXE_nimbus-test-echo-provider");
    const CONTRACT: &str = nimbus_echo_provider::CONTRACT_ID;
    let nats = NatsServer::start();
    let lattice = lattice_name("process");
    let pid = provider_key();
    let host = builder(&cluster_seed())
        .lattice(&lattice)
        .nats(crate::lattice_support::member_nats(nats.url()))
        .provider_executable("echo-bin", pid.clone(), CONTRACT, ECHO_BIN)
        .build()
        .await
        .unwrap();
    let mut events = host.events();
    let actor = echo_actor(Some(&[CONTRACT]), None);
    // Two instances: one waits in Forward while the provider calls back into the other.
    host.start_actor(actor.bytes, 2).await.unwrap();
    host.launch_provider("echo-bin", "default", None)
        .await
        .unwrap();
    wait_event(&mut events, "provider_started", |e| {
        e.data["public_key"] == pid.as_str()
    })
    .await;
    assert_eq!(host.inventory().providers[0].contract_id, CONTRACT);
    host.put_link(nimbus_core::link::LinkDefinition::new(
        &actor.id,
        &pid,
        "default",
        CONTRACT,
        Default::default(),
    ))
    .await
    .unwrap();

    // The host re-sends the links once the process answers its health subject.
    wait_event(&mut events, "health_check_passed", |e| {
        e.data["public_key"] == pid.as_str()
    })
    .await;
    // Actor → provider process over NATS, once the process has handled the msgpack
    // `linkdefs.put` (in its own task, so allow it a moment).
    let call = forward("default", CONTRACT, "Echo", b"to the process");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let out = loop {
        match host.call_actor(&actor.id, "Forward", call.clone()).await {
            Ok(out) => break out,
            Err(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("the provider process never answered: {e}"),
        }
    };
    assert_eq!(out, b"to the process");

    // Provider process → actor: signed with the cluster seed from the host data,
    // verified and authorized by the host.
    let request = rmp_serde::to_vec_named(&nimbus_echo_provider::CallActorRequest {
        actor_id: actor.id.clone(),
        operation: "Echo".into(),
        payload: b"round trip".to_vec(),
    })
    .unwrap();
    let out = host
        .call_actor(
            &actor.id,
            "Forward",
            forward("default", CONTRACT, "CallActor", &request),
        )
        .await
        .unwrap();
    assert_eq!(out, b"round trip");

    host.stop_provider(&pid, "default").await.unwrap();
    let stopped = wait_event(&mut events, "provider_stopped", |e| {
        e.data["public_key"] == pid.as_str()
    })
    .await;
    assert_eq!(stopped.data["reason"], "normal");
    let err = host
        .call_actor(&actor.id, "Forward", call)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no responders: "), "{err}");
    host.stop().await.unwrap();
}

/// The echo provider binary behind a shell wrapper that appends the pid of each start to
/// `dir/pids` (`exec` keeps the pid, so it is the provider's) and, while `dir/hold`
/// exists, waits before running the provider: a test can keep a restarted process from
/// subscribing, with its host data already written to its stdin.
fn gated_echo_provider(dir: &Path) -> PathBuf {
    const ECHO_BIN: &str = env!("CARGO_BIN_EXE_nimbus-test-echo-provider");
    let script = dir.join("echo-provider.sh");
    let d = dir.display();
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n\
             echo $$ >> '{d}/pids'\n\
             i=0\n\
             while [ -e '{d}/hold' ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i + 1)); done\n\
             exec '{ECHO_BIN}' \"$@\"\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

/// Calls `actor`'s `Forward` with `payload` until it succeeds (a provider process that is
/// still starting, or has not got a link yet, fails the call), for at most 20 s.
async fn forward_until_ok(host: &Host, actor: &str, payload: &[u8], what: &str) -> Vec<u8> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        match host.call_actor(actor, "Forward", payload.to_vec()).await {
            Ok(out) => return out,
            Err(e) if tokio::time::Instant::now() < deadline => {
                tracing::debug!(error = %e, "{what}: not yet");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("{what}: still failing after 20 s: {e}"),
        }
    }
}

fn kill_9(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .expect("failed to run kill");
    assert!(status.success(), "kill -9 {pid} failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_provider_process_is_restarted_by_the_host_and_serves_every_link_again() {
    const CONTRACT: &str = nimbus_echo_provider::CONTRACT_ID;
    let nats = NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let wrapper = gated_echo_provider(dir.path());
    let pid = provider_key();
    let host = builder(&cluster_seed())
        .lattice(lattice_name("provider-kill"))
        .nats(crate::lattice_support::member_nats(nats.url()))
        .provider_executable("echo-bin", pid.clone(), CONTRACT, &wrapper)
        .build()
        .await
        .unwrap();
    let mut events = host.events();
    let linked = echo_actor(Some(&[CONTRACT]), None);
    let late = echo_actor(Some(&[CONTRACT]), None);
    host.start_actor(linked.bytes, 1).await.unwrap();
    host.start_actor(late.bytes, 1).await.unwrap();
    let link = |actor: &str| LinkDefinition::new(actor, &pid, "default", CONTRACT, HashMap::new());
    host.put_link(link(&linked.id)).await.unwrap();
    host.launch_provider("echo-bin", "default", None)
        .await
        .unwrap();
    let echo = |body: &[u8]| forward("default", CONTRACT, "Echo", body);
    assert_eq!(
        forward_until_ok(&host, &linked.id, &echo(b"before"), "first start").await,
        b"before"
    );
    let first = match started_pids(dir.path())[..] {
        [first] => first,
        ref pids => panic!("expected one start before the kill, got {pids:?}"),
    };

    // Killed: the host's supervisor starts a replacement, which the wrapper holds before
    // it subscribes (its host data is already written).
    std::fs::write(dir.path().join("hold"), b"").unwrap();
    kill_9(first);
    let second = wait_for_starts(dir.path(), 2, Duration::from_secs(20)).await[1];
    assert_ne!(second, first);
    // Nothing serves the provider meanwhile: the calls really go to the process.
    let err = host
        .call_actor(&linked.id, "Forward", echo(b"down"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no responders"), "{err}");
    // A link put now misses the replacement's host data and its subscription both.
    host.put_link(link(&late.id)).await.unwrap();
    std::fs::remove_file(dir.path().join("hold")).unwrap();

    // The replacement serves the link it had and the one put while it was starting.
    assert_eq!(
        forward_until_ok(
            &host,
            &linked.id,
            &echo(b"after"),
            "old link after the restart"
        )
        .await,
        b"after"
    );
    assert_eq!(
        forward_until_ok(
            &host,
            &late.id,
            &echo(b"late"),
            "link put during the restart"
        )
        .await,
        b"late"
    );
    let links = host
        .call_actor(
            &linked.id,
            "Forward",
            forward("default", CONTRACT, "Links", b""),
        )
        .await
        .unwrap();
    let mut expected = vec![linked.id.clone(), late.id.clone()];
    expected.sort();
    assert_eq!(
        rmp_serde::from_slice::<Vec<String>>(&links).unwrap(),
        expected
    );
    assert_eq!(started_pids(dir.path()), vec![first, second]);
    // Still one provider, never reported stopped.
    assert_eq!(host.inventory().providers.len(), 1);
    while let Ok(event) = events.try_recv() {
        assert_ne!(event.name(), Some("provider_stopped"), "{event:?}");
    }
    host.stop().await.unwrap();
}
