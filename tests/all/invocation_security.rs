//! Signed invocations on real NATS: an expired token refused, the same signed bytes
//! published twice answered once and refused once as a replay, a 0.x-style token without
//! `exp` accepted (and still refused when replayed), retries and queue-group delivery to
//! two hosts never taken for replays; and the actor issuer allowlist enforced at start.

use std::time::Duration;

use nimbus_core::claims::{
    self, ActorClaimsParams, Claims, WASCAP_REVISION, encode_claims, invocation_hash, unix_now,
};
use nimbus_core::keys::{KeyKind, KeyPair};
use nimbus_core::subjects::Subjects;
use nimbus_core::wire::{Invocation, InvocationResponse, WasmCloudEntity};
use nimbus_lattice::Host;
use nimbus_tests::actor_wasm;
use nimbus_tests::servers::NatsServer;

use crate::lattice_support::*;

/// A token for `inv` signed by `cluster` with the given `exp` (`None`: as 0.x senders
/// write it) and issue time.
fn token(cluster: &KeyPair, inv: &Invocation, iat: u64, exp: Option<u64>) -> String {
    let origin_url = inv.origin_url();
    let target_url = inv.target_url();
    let claims = Claims {
        exp,
        jti: nimbus_core::wire::new_uuid().replace('-', ""),
        iat,
        iss: cluster.public_key(),
        sub: inv.id.clone(),
        nbf: None,
        wascap: claims::Invocation {
            hash: invocation_hash(&origin_url, &target_url, &inv.operation, &inv.msg),
            target_url,
            origin_url,
        },
        wascap_revision: Some(WASCAP_REVISION),
    };
    encode_claims(&claims, cluster).unwrap()
}

async fn request(client: &async_nats::Client, subject: &str, body: &[u8]) -> InvocationResponse {
    let reply = tokio::time::timeout(
        Duration::from_secs(5),
        client.request(subject.to_string(), body.to_vec().into()),
    )
    .await
    .expect("no answer within 5 s")
    .unwrap();
    InvocationResponse::from_msgpack(&reply.payload).unwrap()
}

struct Lattice {
    _nats: NatsServer,
    cluster: KeyPair,
    host: Host,
    actor: String,
    subject: String,
    client: async_nats::Client,
}

async fn lattice(test: &str) -> Lattice {
    let nats = NatsServer::start();
    let seed = cluster_seed();
    let cluster = KeyPair::from_seed(&seed).unwrap();
    let lattice = lattice_name(test);
    let host = nats_host(&[nats.url()], &lattice, &seed).await;
    let actor = echo_actor(Some(&[]), None);
    host.start_actor(actor.bytes, 1).await.unwrap();
    let subject = Subjects::for_lattice(&lattice).rpc_actor(&actor.id);
    let client = nimbus_tests::servers::connect(nats.url()).await.unwrap();
    Lattice {
        _nats: nats,
        cluster,
        host,
        actor: actor.id,
        subject,
        client,
    }
}

fn echo(actor: &str, msg: &[u8]) -> Invocation {
    let me = WasmCloudEntity::actor(actor.to_string());
    Invocation::new(me.clone(), me, "Echo", msg.to_vec(), "Ntest")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_invocation_token_is_refused() {
    let l = lattice("expired").await;
    let now = unix_now();
    let mut inv = echo(&l.actor, b"late");
    inv.encoded_claims = token(&l.cluster, &inv, now - 100, Some(now - 60));
    let r = request(&l.client, &l.subject, &inv.to_msgpack().unwrap()).await;
    let error = r.error.expect("an expired token must be refused");
    assert!(
        error.starts_with("claims invalid: invocation token expired at "),
        "{error}"
    );
    // A fresh token for the same call is answered.
    let mut inv = echo(&l.actor, b"on time");
    inv.encoded_claims = token(&l.cluster, &inv, now, Some(now + 30));
    let r = request(&l.client, &l.subject, &inv.to_msgpack().unwrap()).await;
    assert_eq!((r.error, r.msg), (None, b"on time".to_vec()));
    l.host.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_invocation_is_answered_once_and_refused_once() {
    let l = lattice("replay").await;
    let now = unix_now();
    let mut inv = echo(&l.actor, b"once");
    inv.encoded_claims = token(&l.cluster, &inv, now, Some(now + 32));
    let bytes = inv.to_msgpack().unwrap();

    let first = request(&l.client, &l.subject, &bytes).await;
    assert_eq!((first.error, first.msg), (None, b"once".to_vec()));
    let second = request(&l.client, &l.subject, &bytes).await;
    let error = second
        .error
        .expect("the same signed bytes again must be refused");
    assert!(error.starts_with("replayed invocation: "), "{error}");
    assert!(error.contains(&inv.id), "{error}");
    assert_eq!(
        nimbus_lattice::InvocationError::from_wire(error).kind(),
        nimbus_lattice::ErrorKind::Replayed
    );

    // A legitimate retry is a new invocation (new id, new token): answered.
    let mut retry = echo(&l.actor, b"once");
    retry.encoded_claims = token(&l.cluster, &retry, now, Some(now + 32));
    let r = request(&l.client, &l.subject, &retry.to_msgpack().unwrap()).await;
    assert_eq!((r.error, r.msg), (None, b"once".to_vec()));
    // And the host's own calls (signed per call) are never taken for replays.
    for i in 0..20u8 {
        assert_eq!(
            l.host.call_actor(&l.actor, "Echo", vec![i]).await.unwrap(),
            vec![i]
        );
    }
    l.host.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_0x_token_without_exp_is_accepted_and_still_refused_when_replayed() {
    let l = lattice("legacy-token").await;
    let mut inv = echo(&l.actor, b"0.x");
    inv.encoded_claims = token(&l.cluster, &inv, unix_now(), None);
    let bytes = inv.to_msgpack().unwrap();
    let first = request(&l.client, &l.subject, &bytes).await;
    assert_eq!((first.error, first.msg), (None, b"0.x".to_vec()));
    let second = request(&l.client, &l.subject, &bytes).await;
    let error = second.error.expect("a replayed 0.x token must be refused");
    assert!(error.starts_with("replayed invocation: "), "{error}");

    // Without exp, a token older than the replay window cannot be told from a replay.
    let mut old = echo(&l.actor, b"old");
    old.encoded_claims = token(&l.cluster, &old, unix_now() - 3_600, None);
    let r = request(&l.client, &l.subject, &old.to_msgpack().unwrap()).await;
    let error = r.error.expect("a stale 0.x token must be refused");
    assert!(
        error.starts_with("claims invalid: invocation token without expiry issued at "),
        "{error}"
    );
    l.host.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_group_delivery_to_two_hosts_is_never_taken_for_a_replay() {
    let nats = NatsServer::start();
    let seed = cluster_seed();
    let lattice = lattice_name("replay-queue");
    let a = nats_host(&[nats.url()], &lattice, &seed).await;
    let b = nats_host(&[nats.url()], &lattice, &seed).await;
    let caller = nats_host(&[nats.url()], &lattice, &seed).await;
    let actor = echo_actor(Some(&[]), None);
    a.start_actor(actor.bytes.clone(), 2).await.unwrap();
    b.start_actor(actor.bytes, 2).await.unwrap();
    let calls = (0..100u8).map(|i| {
        let caller = &caller;
        let id = &actor.id;
        async move { caller.call_actor(id, "Echo", vec![i]).await }
    });
    let results = futures_util::future::join_all(calls).await;
    for (i, r) in results.into_iter().enumerate() {
        assert_eq!(r.unwrap(), vec![i as u8]);
    }
    for h in [a, b, caller] {
        h.stop().await.unwrap();
    }
}

/// The echo fixture signed by `account`.
fn echo_by(account: &KeyPair) -> (Vec<u8>, String) {
    let module = KeyPair::generate(KeyKind::Module);
    let params = ActorClaimsParams {
        name: Some("echo".into()),
        caps: Some(Vec::new()),
        ..ActorClaimsParams::default()
    };
    let bytes = claims::sign_actor(&actor_wasm("echo"), &params, account, &module).unwrap();
    (bytes, module.public_key())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actors_of_issuers_not_allowed_are_refused_at_start() {
    let allowed = KeyPair::generate(KeyKind::Account);
    let stranger = KeyPair::generate(KeyKind::Account);
    let host = builder(&cluster_seed())
        .allowed_issuer(allowed.public_key())
        .build()
        .await
        .unwrap();

    let (ours, ours_id) = echo_by(&allowed);
    assert_eq!(host.start_actor(ours, 1).await.unwrap(), ours_id);
    assert_eq!(
        host.call_actor(&ours_id, "Echo", b"hi".to_vec())
            .await
            .unwrap(),
        b"hi"
    );

    let (theirs, _) = echo_by(&stranger);
    let error = host.start_actor(theirs, 1).await.unwrap_err().to_string();
    assert!(error.contains(&stranger.public_key()), "{error}");
    assert!(error.contains("--allowed-issuer"), "{error}");
    host.stop().await.unwrap();

    // By default any issuer whose signature verifies is accepted.
    let open = builder(&cluster_seed()).build().await.unwrap();
    let (theirs, theirs_id) = echo_by(&stranger);
    assert_eq!(open.start_actor(theirs, 1).await.unwrap(), theirs_id);
    open.stop().await.unwrap();

    // A key that is no account key is a configuration error.
    let bad = builder(&cluster_seed())
        .allowed_issuer(KeyPair::generate(KeyKind::Cluster).public_key())
        .build()
        .await;
    assert!(bad.is_err());
}
