//! The client's error kinds against a real nats-server with hand-written responders (no
//! host needed): nobody listening, a silent listener, a refusal, a malformed reply, and a
//! scatter/gather that collects every answer.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use nimbus_core::ctl::{CtlOperationAck, Host};
use nimbus_core::subjects::{CtlCommand, Subjects};
use nimbus_ctl::{CtlClient, CtlError};
use nimbus_tests::servers::NatsServer;

const TIMEOUT: Duration = Duration::from_millis(300);

async fn client(nats: &NatsServer, lattice: &str) -> (async_nats::Client, CtlClient) {
    // Host role: the same connection plays the hosts' responders.
    let nc = nats.connect().await;
    let ctl = CtlClient::new(nc.clone(), lattice)
        .with_timeout(TIMEOUT)
        .with_nats_url(nats.url());
    (nc, ctl)
}

/// Answers every message on `subject` with `reply` (or never, for `None`).
async fn responder(nc: &async_nats::Client, subject: String, reply: Option<Vec<u8>>) {
    let mut sub = nc.subscribe(subject).await.unwrap();
    nc.flush().await.unwrap();
    let nc = nc.clone();
    tokio::spawn(async move {
        while let Some(msg) = sub.next().await {
            if let (Some(to), Some(body)) = (msg.reply, reply.clone()) {
                nc.publish(to, body.into()).await.unwrap();
            }
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_lattice_is_no_hosts_everywhere() {
    let nats = NatsServer::start();
    let (_nc, ctl) = client(&nats, "empty").await;

    let started = Instant::now();
    let err = ctl.get_hosts().await.unwrap_err();
    assert!(err.is_no_hosts(), "{err}");
    assert!(
        started.elapsed() < TIMEOUT,
        "no responders ends the gather early"
    );
    let text = err.to_string();
    assert!(text.contains("lattice `empty`"), "{text}");
    assert!(text.contains(&nats.url()), "{text}");
    assert!(text.contains("wash up --nats-url"), "{text}");

    assert!(ctl.get_claims().await.unwrap_err().is_no_hosts());
    assert!(ctl.get_links().await.unwrap_err().is_no_hosts());
    assert!(
        ctl.delete_link("Mx", "c:x", "default")
            .await
            .unwrap_err()
            .is_no_hosts()
    );
    let err = ctl.call_actor("some-alias", "Echo", vec![], None).await;
    assert!(err.unwrap_err().is_no_hosts(), "an alias needs the claims");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_host_and_actor_are_not_found() {
    let nats = NatsServer::start();
    let (_nc, ctl) = client(&nats, "nf").await;
    let err = ctl.get_inventory("NUNKNOWN").await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert!(err.to_string().contains("host NUNKNOWN"), "{err}");
    assert!(err.to_string().contains("wash ctl get hosts"), "{err}");
    let err = ctl.start_actor("NUNKNOWN", "/x.wasm", 1).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");

    let actor = nimbus_core::keys::KeyPair::generate(nimbus_core::keys::KeyKind::Module);
    let err = ctl
        .call_actor(&actor.public_key(), "Echo", b"x".to_vec(), None)
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert!(err.to_string().contains(&actor.public_key()), "{err}");

    let err = ctl.get_inventory("bad.id").await.unwrap_err();
    assert!(matches!(err, CtlError::InvalidInput(_)), "{err}");
    let err = ctl
        .call_actor(&actor.public_key(), "Echo", vec![], Some("SAnotaseed"))
        .await
        .unwrap_err();
    assert!(matches!(err, CtlError::InvalidInput(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_listener_times_out() {
    let nats = NatsServer::start();
    let (nc, ctl) = client(&nats, "slow").await;
    let s = Subjects::for_lattice("slow");
    responder(&nc, s.ctl_get_inventory("NSLOW"), None).await;
    let started = Instant::now();
    let err = ctl.get_inventory("NSLOW").await.unwrap_err();
    assert!(err.is_timed_out(), "{err}");
    assert!(started.elapsed() >= TIMEOUT);
    assert!(err.to_string().contains("300 ms"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_and_bad_replies_are_typed() {
    let nats = NatsServer::start();
    let (nc, ctl) = client(&nats, "typed").await;
    let s = Subjects::for_lattice("typed");
    let refusal = serde_json::to_vec(&CtlOperationAck::failed("no room")).unwrap();
    responder(
        &nc,
        s.ctl_command("NFULL", CtlCommand::LaunchActor),
        Some(refusal),
    )
    .await;
    let err = ctl.start_actor("NFULL", "/a.wasm", 1).await.unwrap_err();
    assert!(err.is_rejected(), "{err}");
    assert_eq!(err.to_string(), "host NFULL rejected start actor: no room");

    responder(&nc, s.ctl_get_links(), Some(b"not json".to_vec())).await;
    let err = ctl.get_links().await.unwrap_err();
    assert!(matches!(err, CtlError::BadReply { .. }), "{err}");

    let ok = serde_json::to_vec(&CtlOperationAck::ok()).unwrap();
    responder(&nc, s.ctl_command("NOK", CtlCommand::StopHost), Some(ok)).await;
    ctl.stop_host("NOK", Some(Duration::from_millis(10)))
        .await
        .unwrap();
    let err = ctl
        .stop_provider("NOK", "not-a-key", "default", "c:x")
        .await
        .unwrap_err();
    assert!(matches!(err, CtlError::InvalidInput(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_gathers_every_host_until_the_timeout() {
    let nats = NatsServer::start();
    let (nc, ctl) = client(&nats, "many").await;
    let s = Subjects::for_lattice("many");
    for id in ["NB", "NA"] {
        let host = Host {
            id: id.to_string(),
            ..Host::default()
        };
        responder(
            &nc,
            s.ctl_ping_hosts(),
            Some(serde_json::to_vec(&host).unwrap()),
        )
        .await;
    }
    // A broken host does not hide the others.
    responder(&nc, s.ctl_ping_hosts(), Some(b"garbage".to_vec())).await;
    let hosts = ctl.get_hosts().await.unwrap();
    let ids: Vec<&str> = hosts.iter().map(|h| h.id.as_str()).collect();
    assert_eq!(ids, ["NA", "NB"]);

    // Listeners that never answer: the gather ends empty, which is "no hosts".
    let (nc2, quiet) = client(&nats, "quiet").await;
    responder(&nc2, Subjects::for_lattice("quiet").ctl_ping_hosts(), None).await;
    assert!(quiet.get_hosts().await.unwrap_err().is_no_hosts());
    // An auction nobody listens to is "no hosts"; one where hosts listen but do not
    // bid (labels do not match) is an empty list.
    let err = quiet.auction_actor("/a.wasm", Default::default()).await;
    assert!(err.unwrap_err().is_no_hosts());
    responder(
        &nc2,
        Subjects::for_lattice("quiet").ctl_auction_actor(),
        None,
    )
    .await;
    let bids = quiet
        .auction_actor("/a.wasm", Default::default())
        .await
        .unwrap();
    assert!(bids.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_actor_sends_the_actor_to_itself_signed_by_the_cluster() {
    use nimbus_core::claims::{ExpectedInvocation, verify_invocation};
    use nimbus_core::keys::{KeyKind, KeyPair, TrustedIssuers};
    use nimbus_core::wire::{Invocation, InvocationResponse, WasmCloudEntity};

    let nats = NatsServer::start();
    let (nc, ctl) = client(&nats, "callshape").await;
    let actor = KeyPair::generate(KeyKind::Module).public_key();
    let cluster = KeyPair::generate(KeyKind::Cluster);
    let mut sub = nc
        .subscribe(Subjects::for_lattice("callshape").rpc_actor(&actor))
        .await
        .unwrap();
    nc.flush().await.unwrap();
    let serve = {
        let nc = nc.clone();
        tokio::spawn(async move {
            let msg = sub.next().await.unwrap();
            let inv = Invocation::from_msgpack(&msg.payload).unwrap();
            let reply = InvocationResponse::success(&inv.id, b"ok".to_vec());
            nc.publish(msg.reply.unwrap(), reply.to_msgpack().unwrap().into())
                .await
                .unwrap();
            inv
        })
    };
    let seed = cluster.seed().unwrap();
    let answer = ctl
        .call_actor(&actor, "Echo", b"hi".to_vec(), Some(&seed))
        .await
        .unwrap();
    assert_eq!(answer, b"ok");
    let inv = serve.await.unwrap();
    assert_eq!(inv.origin, WasmCloudEntity::actor(&actor));
    assert_eq!(inv.target, inv.origin);
    assert_eq!(inv.host_id, cluster.public_key());
    assert_eq!(inv.content_length, Some(2));
    let expected = ExpectedInvocation {
        id: &inv.id,
        origin_url: &inv.origin_url(),
        target_url: &inv.target_url(),
        operation: "Echo",
        msg: b"hi",
    };
    let trusted = TrustedIssuers::new([cluster.public_key()]).unwrap();
    verify_invocation(&inv.encoded_claims, &expected, &trusted).unwrap();
    let other = TrustedIssuers::new([KeyPair::generate(KeyKind::Cluster).public_key()]).unwrap();
    assert!(verify_invocation(&inv.encoded_claims, &expected, &other).is_err());
}
