//! The router suite, written once and run in two modes: every target on the caller's host
//! (local fast path) and every target on another host (over NATS). Same calls, same
//! expected results and error kinds. Plus a standalone host (no NATS at all).

use std::future::Future;
use std::time::Duration;

use nimbus_lattice::{ErrorKind, Host, InvocationError};
use nimbus_provider_sdk::ProviderError;
use nimbus_tests::servers::NatsServer;

use crate::lattice_support::*;

/// Retries `f` until it succeeds (state that reaches another host through the store).
async fn until_ok<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, InvocationError>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match f().await {
            Ok(v) => return v,
            Err(e) if tokio::time::Instant::now() > deadline => panic!("{what}: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

fn expect_err(result: Result<Vec<u8>, InvocationError>) -> String {
    match result {
        Ok(v) => panic!("expected an error, got {:?}", String::from_utf8_lossy(&v)),
        Err(e) => e.to_string(),
    }
}

/// Runs every routing case with the calling actors on `caller` and the target actor and
/// the provider on `target` (the same host in local mode).
async fn router_suite(caller: &Host, target: &Host) {
    let provider = TestProvider::new();
    let pid = provider_key();
    target
        .start_provider(provider.clone(), &pid, "default")
        .await
        .unwrap();
    let b = echo_actor(Some(&[]), Some("router-target"));
    target.start_actor(b.bytes, 2).await.unwrap();
    let a = echo_actor(Some(&[TEST_CONTRACT]), None); // holds the capability
    let c = echo_actor(Some(&[]), None); // caps: [] grants nothing
    let d = echo_actor(None, None); // no caps field: the link is the grant
    for actor in [&a, &c, &d] {
        caller.start_actor(actor.bytes.clone(), 2).await.unwrap();
        caller.put_link(test_link(&actor.id, &pid)).await.unwrap();
    }
    for actor in [&a, &c, &d] {
        provider.wait_link(&actor.id, true).await;
    }

    // Actor → actor by public key.
    let out = caller
        .call_actor(&a.id, "Forward", forward("", &b.id, "Echo", b"ping"))
        .await
        .unwrap();
    assert_eq!(out, b"ping");

    // Actor → actor by call alias (the alias reaches the caller's host with b's claims).
    let out = until_ok("alias call", || {
        caller.call_actor(
            &a.id,
            "Forward",
            forward("", "router-target", "Echo", b"alias"),
        )
    })
    .await;
    assert_eq!(out, b"alias");

    // `wash call` path: the caller's host calls the target actor directly.
    assert_eq!(
        caller
            .call_actor(&b.id, "Echo", b"direct".to_vec())
            .await
            .unwrap(),
        b"direct"
    );

    // Actor → provider with link and capability; the provider sees the calling actor.
    let out = caller
        .call_actor(
            &a.id,
            "Forward",
            forward("default", TEST_CONTRACT, "Echo", b"hi"),
        )
        .await
        .unwrap();
    assert_eq!(out, b"provider:hi");
    let who = caller
        .call_actor(&a.id, "Forward", forward("", TEST_CONTRACT, "Who", b""))
        .await
        .unwrap();
    assert_eq!(String::from_utf8(who).unwrap(), a.id);

    // No caps field: the link alone grants.
    let out = caller
        .call_actor(
            &d.id,
            "Forward",
            forward("default", TEST_CONTRACT, "Echo", b"d"),
        )
        .await
        .unwrap();
    assert_eq!(out, b"provider:d");

    // Missing link.
    let err = expect_err(
        caller
            .call_actor(
                &a.id,
                "Forward",
                forward("default", "nimbus:other", "Echo", b""),
            )
            .await,
    );
    assert!(
        err.contains(&format!(
            "no link for contract nimbus:other link name default from actor {}",
            a.id
        )),
        "{err}"
    );

    // Capability not granted (link exists, caps: []).
    let err = expect_err(
        caller
            .call_actor(
                &c.id,
                "Forward",
                forward("default", TEST_CONTRACT, "Echo", b""),
            )
            .await,
    );
    assert!(
        err.contains(&format!(
            "capability {TEST_CONTRACT} not granted to actor {}",
            c.id
        )),
        "{err}"
    );

    // Provider error passes through.
    let err = expect_err(
        caller
            .call_actor(
                &a.id,
                "Forward",
                forward("default", TEST_CONTRACT, "Nope", b""),
            )
            .await,
    );
    assert!(
        err.contains("unknown operation Nope for contract nimbus:test"),
        "{err}"
    );

    // The target actor traps: the caller gets "actor trapped", the target keeps serving.
    let err = expect_err(
        caller
            .call_actor(&a.id, "Forward", forward("", &b.id, "Trap", b""))
            .await,
    );
    assert!(err.contains("actor trapped: "), "{err}");
    let out = caller
        .call_actor(&a.id, "Forward", forward("", &b.id, "Echo", b"after"))
        .await
        .unwrap();
    assert_eq!(out, b"after");

    // Target actor without that operation.
    let err = expect_err(
        caller
            .call_actor(&a.id, "Forward", forward("", &b.id, "NoSuchOp", b""))
            .await,
    );
    assert!(err.contains("unknown operation NoSuchOp"), "{err}");

    // An actor key nobody runs.
    let nobody = echo_actor(None, None).id;
    let err = caller
        .call_actor(&nobody, "Echo", b"x".to_vec())
        .await
        .unwrap_err();
    assert!(err.kind() == ErrorKind::NoResponders, "{err}");
    let err = expect_err(
        caller
            .call_actor(&a.id, "Forward", forward("", &nobody, "Echo", b""))
            .await,
    );
    assert!(err.contains("no responders: "), "{err}");

    // Provider → actor: allowed with the link and the capability...
    let out = provider.call_actor(&a.id, "Echo", b"back").await.unwrap();
    assert_eq!(out, b"back");
    // ...refused without a link, and refused without the capability.
    match provider.call_actor(&b.id, "Echo", b"").await {
        Err(ProviderError::ActorCall { reason, .. }) => assert!(
            reason.contains(&format!(
                "no link for contract {TEST_CONTRACT} link name default from actor {}",
                b.id
            )),
            "{reason}"
        ),
        other => panic!("expected a missing link, got {other:?}"),
    }
    match provider.call_actor(&c.id, "Echo", b"").await {
        Err(ProviderError::ActorCall { reason, .. }) => {
            assert!(reason.contains("not granted to actor"), "{reason}")
        }
        other => panic!("expected a missing capability, got {other:?}"),
    }
    match provider.call_actor(&nobody, "Echo", b"").await {
        Err(ProviderError::ActorCall { .. } | ProviderError::ActorUnavailable { .. }) => {}
        other => panic!("expected an unavailable actor, got {other:?}"),
    }

    // Link changes take effect without restarting anything.
    caller
        .delete_link(&a.id, TEST_CONTRACT, "default")
        .await
        .unwrap();
    provider.wait_link(&a.id, false).await;
    let err = expect_err(
        caller
            .call_actor(
                &a.id,
                "Forward",
                forward("default", TEST_CONTRACT, "Echo", b""),
            )
            .await,
    );
    assert!(err.contains("no link for contract nimbus:test"), "{err}");
    caller.put_link(test_link(&a.id, &pid)).await.unwrap();
    provider.wait_link(&a.id, true).await;
    let out = caller
        .call_actor(
            &a.id,
            "Forward",
            forward("default", TEST_CONTRACT, "Echo", b"again"),
        )
        .await
        .unwrap();
    assert_eq!(out, b"provider:again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn router_local_mode() {
    let nats = NatsServer::start();
    let seed = cluster_seed();
    let host = nats_host(&[nats.url()], &lattice_name("router-local"), &seed).await;
    router_suite(&host, &host).await;
    host.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn router_remote_mode() {
    let nats = NatsServer::start();
    let seed = cluster_seed();
    let lattice = lattice_name("router-remote");
    let caller = nats_host(&[nats.url()], &lattice, &seed).await;
    let target = nats_host(&[nats.url()], &lattice, &seed).await;
    router_suite(&caller, &target).await;
    caller.stop().await.unwrap();
    target.stop().await.unwrap();
}

// A current-thread runtime on purpose: actors then run on the blocking pool and their
// host calls drive the runtime from there, the other of the two execution paths.
#[tokio::test]
async fn standalone_host_with_in_process_provider_and_link_from_config() {
    let a = echo_actor(Some(&[TEST_CONTRACT]), None);
    let pid = provider_key();
    let host = builder(&cluster_seed())
        .link(test_link(&a.id, &pid))
        .build()
        .await
        .unwrap();
    assert!(host.nats().is_none());
    let mut events = host.events();
    let provider = TestProvider::new();
    host.start_provider(provider.clone(), &pid, "default")
        .await
        .unwrap();
    // The configured link reached the provider when it started.
    provider.wait_link(&a.id, true).await;
    wait_event(&mut events, "provider_started", |e| {
        e.data["public_key"] == pid.as_str()
    })
    .await;

    host.start_actor(a.bytes.clone(), 1).await.unwrap();
    wait_event(&mut events, "actor_started", |e| {
        e.data["public_key"] == a.id.as_str()
    })
    .await;
    let out = host
        .call_actor(
            &a.id,
            "Forward",
            forward("default", TEST_CONTRACT, "Echo", b"solo"),
        )
        .await
        .unwrap();
    assert_eq!(out, b"provider:solo");
    assert_eq!(
        provider.call_actor(&a.id, "Echo", b"cb").await.unwrap(),
        b"cb"
    );

    let nobody = echo_actor(None, None).id;
    let err = host
        .call_actor(&nobody, "Echo", b"".to_vec())
        .await
        .unwrap_err();
    assert!(err.kind() == ErrorKind::UnknownTarget, "{err}");
    assert!(
        err.to_string()
            .contains("does not run on this standalone host"),
        "{err}"
    );

    let inv = host.inventory();
    assert_eq!(inv.actors.len(), 1);
    assert_eq!(inv.actors[0].id, a.id);
    assert_eq!(inv.providers.len(), 1);
    assert_eq!(inv.providers[0].contract_id, TEST_CONTRACT);

    host.stop().await.unwrap();
    assert!(*provider.shut_down.lock().unwrap());
    wait_event(&mut events, "host_stopped", |_| true).await;
}

/// A local call gets the caller's deadline when it is shorter than the actor's own, and
/// the actor's own when the caller would wait longer: a looping guest is stopped by the
/// deadline each message names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_call_honours_the_callers_timeout_within_the_actors_deadline() {
    let host = builder(&cluster_seed()).build().await.unwrap();
    let actor = echo_actor(None, None);
    host.start_actor(actor.bytes.clone(), 1).await.unwrap();

    let short = expect_err(
        host.call_actor_with_timeout(&actor.id, "Loop", Vec::new(), Duration::from_millis(150))
            .await,
    );
    assert!(short.contains("within 150ms"), "{short}");

    let own = runtime().config().default_call_timeout;
    let long = expect_err(
        host.call_actor_with_timeout(&actor.id, "Loop", Vec::new(), own * 30)
            .await,
    );
    assert!(long.contains(&format!("within {own:?}")), "{long}");

    // The instance that was stopped is not reused: the actor still answers.
    assert_eq!(
        host.call_actor(&actor.id, "Echo", b"still here".to_vec())
            .await
            .unwrap(),
        b"still here"
    );
    host.stop().await.unwrap();
}

/// Two starts of one actor at the same moment make one running actor that holds the
/// instances of both: the registry takes the first, and the second adds to it instead of
/// replacing it (which lost the first start's instances and subscription).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_starts_of_one_actor_make_one_running_actor() {
    let host = builder(&cluster_seed()).build().await.unwrap();
    let actor = echo_actor(None, None);
    let (first, second) = tokio::join!(
        host.start_actor(actor.bytes.clone(), 1),
        host.start_actor(actor.bytes.clone(), 2)
    );
    assert_eq!(first.unwrap(), actor.id);
    assert_eq!(second.unwrap(), actor.id);
    let inventory = host.inventory();
    assert_eq!(inventory.actors.len(), 1, "{:?}", inventory.actors);
    assert_eq!(inventory.actors[0].instances.len(), 3);
    assert_eq!(
        host.call_actor(&actor.id, "Echo", b"one actor".to_vec())
            .await
            .unwrap(),
        b"one actor"
    );
    host.stop().await.unwrap();
}
