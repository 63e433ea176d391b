//! Providers out of process: the echo provider binary, built on the SDK's NATS runner,
//! started and restarted by the supervisor, driven over a real nats-server the way a host
//! drives it (host data on stdin, RPC, link, health and shutdown subjects).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use nimbus_core::claims;
use nimbus_core::keys::{KeyKind, KeyPair};
use nimbus_core::link::LinkDefinition;
use nimbus_core::subjects::Subjects;
use nimbus_core::wire::{
    HealthCheckResponse, HostData, Invocation, InvocationResponse, WasmCloudEntity,
};
use nimbus_echo_provider::{CONTRACT_ID, CRASH_EXIT_CODE, CallActorRequest};
use nimbus_supervisor::{
    ProviderProcessSpec, RestartPolicy, SupervisedProvider, SupervisorError, SupervisorEvent,
};
use nimbus_tests::auth::Role;
use nimbus_tests::servers::{NatsServer, free_port};
use tokio::sync::mpsc;

const ECHO_BIN: &str = env!("CARGO_BIN_EXE_nimbus-test-echo-provider");
/// Generous: the machine is shared and a provider start includes a NATS connect.
const WAIT: Duration = Duration::from_secs(20);

/// One host's view of one echo provider: keys, links, the NATS server and a client.
struct Fixture {
    nats: NatsServer,
    client: async_nats::Client,
    subjects: Subjects,
    provider: String,
    host: String,
    cluster: KeyPair,
    /// The host's link store: read on every (re)start for the host data.
    links: Arc<Mutex<Vec<LinkDefinition>>>,
    /// Extra host data settings.
    issuers: Vec<String>,
    rpc_timeout_ms: Option<u64>,
    url: Option<String>,
}

impl Fixture {
    async fn new() -> Self {
        let nats = NatsServer::start();
        let client = nimbus_tests::servers::connect(nats.url()).await.unwrap();
        Fixture {
            nats,
            client,
            subjects: Subjects::default(),
            provider: KeyPair::generate(KeyKind::Service).public_key(),
            host: KeyPair::generate(KeyKind::Server).public_key(),
            cluster: KeyPair::generate(KeyKind::Cluster),
            links: Arc::new(Mutex::new(Vec::new())),
            issuers: Vec::new(),
            rpc_timeout_ms: None,
            url: None,
        }
    }

    fn link(&self, actor: &str, values: &[(&str, &str)]) -> LinkDefinition {
        LinkDefinition::new(
            actor,
            self.provider.clone(),
            "default",
            CONTRACT_ID,
            values
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<HashMap<_, _>>(),
        )
    }

    /// The host data callback, as a host would build it from its current state.
    fn host_data_fn(&self) -> Arc<dyn Fn() -> HostData + Send + Sync> {
        let base = HostData {
            host_id: self.host.clone(),
            lattice_rpc_prefix: self.subjects.lattice().to_string(),
            link_name: "default".into(),
            lattice_rpc_url: self
                .url
                .clone()
                .unwrap_or_else(|| format!("127.0.0.1:{}", self.nats.port())),
            provider_key: self.provider.clone(),
            invocation_seed: self.cluster.seed().unwrap(),
            instance_id: nimbus_core::wire::new_uuid(),
            cluster_issuers: self.issuers.clone(),
            default_rpc_timeout_ms: self.rpc_timeout_ms,
            log_level: Some("debug".into()),
            ..HostData::default()
        };
        // The provider connects with the provider role's creds, as a host would hand out.
        let (lattice_rpc_user_jwt, lattice_rpc_user_seed) = self
            .nats
            .members()
            .map(|m| m.jwt_and_seed(Role::Provider))
            .unwrap_or_default();
        let base = HostData {
            lattice_rpc_user_jwt,
            lattice_rpc_user_seed,
            ..base
        };
        let links = self.links.clone();
        Arc::new(move || HostData {
            link_definitions: links.lock().unwrap().clone(),
            ..base.clone()
        })
    }

    fn spec(&self, restart: RestartPolicy) -> ProviderProcessSpec {
        ProviderProcessSpec {
            binary: PathBuf::from(ECHO_BIN),
            args: Vec::new(),
            host_data: self.host_data_fn(),
            env: vec![("RUST_BACKTRACE".into(), "0".into())],
            restart,
        }
    }

    fn supervise(&self, restart: RestartPolicy) -> (SupervisedProvider, Events) {
        let (tx, rx) = mpsc::unbounded_channel();
        let sup = SupervisedProvider::spawn(self.spec(restart), move |e| {
            let _ = tx.send(e);
        })
        .unwrap();
        (sup, Events { rx })
    }

    fn rpc_subject(&self) -> String {
        self.subjects.rpc_provider(&self.provider, "default")
    }

    fn invocation(&self, actor: &str, op: &str, payload: &[u8], sign: bool) -> Invocation {
        let mut inv = Invocation::new(
            WasmCloudEntity::actor(actor),
            WasmCloudEntity::provider(self.provider.clone(), CONTRACT_ID, "default"),
            op,
            payload.to_vec(),
            self.host.clone(),
        );
        if sign {
            sign_with(&mut inv, &self.cluster);
        }
        inv
    }

    /// Sends raw bytes to the provider's RPC subject and decodes the reply.
    async fn request_raw(&self, body: Vec<u8>) -> InvocationResponse {
        let reply = self
            .client
            .request(self.rpc_subject(), body.into())
            .await
            .unwrap();
        InvocationResponse::from_msgpack(&reply.payload).unwrap()
    }

    /// Calls `op` as `actor` (signed with the cluster key).
    async fn call(&self, actor: &str, op: &str, payload: &[u8]) -> InvocationResponse {
        let inv = self.invocation(actor, op, payload, true);
        let resp = self.request_raw(inv.to_msgpack().unwrap()).await;
        assert_eq!(resp.invocation_id, inv.id);
        resp
    }

    async fn linked_actors(&self, caller: &str) -> Vec<String> {
        let resp = self.call(caller, "Links", b"").await;
        rmp_serde::from_slice(&resp.into_result().unwrap()).unwrap()
    }

    async fn link_puts(&self, caller: &str) -> u64 {
        let resp = self.call(caller, "LinkPuts", b"").await;
        rmp_serde::from_slice(&resp.into_result().unwrap()).unwrap()
    }

    async fn health(&self, timeout: Duration) -> Result<HealthCheckResponse, String> {
        let subject = self.subjects.provider_health(&self.provider, "default");
        let request = async_nats::Request::new()
            .payload(Vec::new().into())
            .timeout(Some(timeout));
        let reply = self
            .client
            .send_request(subject, request)
            .await
            .map_err(|e| e.to_string())?;
        Ok(nimbus_core::encoding::from_msgpack(&reply.payload).unwrap())
    }

    /// Waits until the provider answers health checks (it is subscribed and has its
    /// initial links).
    async fn wait_ready(&self) -> HealthCheckResponse {
        let start = Instant::now();
        loop {
            match self.health(Duration::from_millis(500)).await {
                Ok(h) => return h,
                Err(e) if start.elapsed() < WAIT => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("provider did not answer health checks within {WAIT:?}: {e}"),
            }
        }
    }

    async fn publish_link(&self, verb: &str, link: &LinkDefinition) {
        let subject = match verb {
            "put" => self
                .subjects
                .provider_linkdefs_put(&self.provider, "default"),
            _ => self
                .subjects
                .provider_linkdefs_del(&self.provider, "default"),
        };
        let body = nimbus_core::encoding::to_msgpack(link).unwrap();
        self.client.publish(subject, body.into()).await.unwrap();
        self.client.flush().await.unwrap();
    }

    /// Polls `Links` (as `caller`) until it equals `expected` (sorted).
    async fn wait_links(&self, caller: &str, expected: &[String]) {
        let start = Instant::now();
        loop {
            let got = self.linked_actors(caller).await;
            if got == expected {
                return;
            }
            assert!(
                start.elapsed() < WAIT,
                "links stayed {got:?}, expected {expected:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn sign_with(inv: &mut Invocation, key: &KeyPair) {
    inv.encoded_claims = claims::sign_invocation(
        key,
        &inv.id,
        &inv.origin_url(),
        &inv.target_url(),
        &inv.operation,
        &inv.msg,
    )
    .unwrap();
}

fn sorted(ids: &[&String]) -> Vec<String> {
    let mut v: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

fn actor() -> String {
    KeyPair::generate(KeyKind::Module).public_key()
}

/// The supervisor's events, as a test reads them.
struct Events {
    rx: mpsc::UnboundedReceiver<SupervisorEvent>,
}

impl Events {
    async fn next(&mut self) -> SupervisorEvent {
        tokio::time::timeout(WAIT, self.rx.recv())
            .await
            .unwrap_or_else(|_| panic!("no supervisor event within {WAIT:?}"))
            .expect("the supervisor dropped its event callback")
    }

    /// Asserts that no event arrives for `quiet`.
    async fn none_for(&mut self, quiet: Duration) {
        if let Ok(Some(e)) = tokio::time::timeout(quiet, self.rx.recv()).await {
            panic!("unexpected supervisor event {e:?}");
        }
    }
}

fn policy(initial_ms: u64) -> RestartPolicy {
    RestartPolicy {
        initial_backoff: Duration::from_millis(initial_ms),
        max_backoff: Duration::from_secs(5),
        reset_after: Duration::from_secs(120),
        max_restarts: None,
        // These tests drive the supervisor as a bare library: a clean exit ends supervision.
        restart_on_clean_exit: false,
        clean_exit_grace: Duration::ZERO,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_starts_from_host_data_and_answers_health() {
    let fx = Fixture::new().await;
    let a = actor();
    fx.links.lock().unwrap().push(fx.link(&a, &[]));
    let (sup, mut events) = fx.supervise(RestartPolicy::default());
    let pid = sup.pid().expect("a pid after spawn");
    assert_eq!(events.next().await, SupervisorEvent::Started { pid });

    let health = fx.wait_ready().await;
    assert!(health.healthy);
    // The provider's own health answer, with the initial link from the host data.
    assert_eq!(health.message.as_deref(), Some("echo: 1 links"));
    assert_eq!(fx.linked_actors(&a).await, vec![a.clone()]);

    sup.stop(Duration::from_secs(5)).await;
    match events.next().await {
        SupervisorEvent::Exited {
            pid: exited,
            code,
            restart_in,
            ..
        } => {
            assert_eq!(exited, pid);
            // Closing stdin made the runner exit cleanly, no kill needed.
            assert_eq!(code, Some(0));
            assert_eq!(restart_in, None);
        }
        other => panic!("expected Exited, got {other:?}"),
    }
    assert_eq!(events.next().await, SupervisorEvent::Stopped);
    assert_eq!(sup.pid(), None);
    assert!(!sup.is_supervising());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invocations_are_echoed_and_bad_ones_get_error_responses() {
    let fx = Fixture::new().await;
    let a = actor();
    fx.links.lock().unwrap().push(fx.link(&a, &[]));
    let (sup, _events) = fx.supervise(RestartPolicy::default());
    fx.wait_ready().await;

    // Success: the payload comes back, and the reply has no `error` key at all.
    let inv = fx.invocation(&a, "Echo", b"hello lattice", true);
    let reply = fx
        .client
        .request(fx.rpc_subject(), inv.to_msgpack().unwrap().into())
        .await
        .unwrap();
    let raw = reply.payload.to_vec();
    assert!(
        !raw.windows(5).any(|w| w == b"error"),
        "success reply carries an error key"
    );
    let resp = InvocationResponse::from_msgpack(&raw).unwrap();
    assert_eq!(resp.invocation_id, inv.id);
    assert_eq!(resp.into_result().unwrap(), b"hello lattice");

    // Garbage: an error response, and the provider keeps serving.
    for garbage in [
        &b"\xc1\xc1"[..],
        b"definitely not msgpack",
        b"\x93\x01\x02\x03",
    ] {
        let resp = fx.request_raw(garbage.to_vec()).await;
        let err = resp.error.expect("an error for garbage");
        assert!(err.starts_with("malformed invocation"), "{err}");
    }
    let resp = fx.call(&a, "Echo", b"still here").await;
    assert_eq!(resp.into_result().unwrap(), b"still here");

    // An unknown operation and an unlinked caller are errors from the provider side.
    let err = fx.call(&a, "Nope", b"").await.error.unwrap();
    assert_eq!(err, "unknown operation Nope for contract nimbus:echo");
    let stranger = actor();
    let err = fx.call(&stranger, "Echo", b"x").await.error.unwrap();
    assert!(
        err.contains(&format!("no link from actor {stranger}")),
        "{err}"
    );

    sup.stop(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invocations_must_be_signed_by_a_cluster_issuer_when_issuers_are_set() {
    let mut fx = Fixture::new().await;
    fx.issuers = vec![fx.cluster.public_key()];
    let a = actor();
    fx.links.lock().unwrap().push(fx.link(&a, &[]));
    let (sup, _events) = fx.supervise(RestartPolicy::default());
    fx.wait_ready().await;

    let resp = fx.call(&a, "Echo", b"signed").await;
    assert_eq!(resp.into_result().unwrap(), b"signed");

    let unsigned = fx.invocation(&a, "Echo", b"x", false);
    let err = fx
        .request_raw(unsigned.to_msgpack().unwrap())
        .await
        .error
        .unwrap();
    assert!(err.contains("carries no anti-forgery token"), "{err}");

    let mut forged = fx.invocation(&a, "Echo", b"x", false);
    let rogue = KeyPair::generate(KeyKind::Cluster);
    sign_with(&mut forged, &rogue);
    let err = fx
        .request_raw(forged.to_msgpack().unwrap())
        .await
        .error
        .unwrap();
    assert!(err.contains(&rogue.public_key()), "{err}");

    let mut tampered = fx.invocation(&a, "Echo", b"original", true);
    tampered.msg = b"swapped!".to_vec();
    let err = fx
        .request_raw(tampered.to_msgpack().unwrap())
        .await
        .error
        .unwrap();
    assert!(err.contains("hash"), "{err}");

    sup.stop(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_puts_and_deletes_over_nats_change_the_links() {
    let fx = Fixture::new().await;
    let (a, b, c, d) = (actor(), actor(), actor(), actor());
    fx.links.lock().unwrap().push(fx.link(&a, &[]));
    let (sup, _events) = fx.supervise(RestartPolicy::default());
    fx.wait_ready().await;
    assert_eq!(fx.link_puts(&a).await, 1);

    fx.publish_link("put", &fx.link(&b, &[("k", "v")])).await;
    fx.wait_links(&a, &sorted(&[&a, &b])).await;
    assert_eq!(fx.link_puts(&a).await, 2);

    // The same put again (several hosts publish it) is not delivered twice; a changed
    // one is. The put of `c` comes after them on the same subject, so once `c` shows,
    // both were processed.
    fx.publish_link("put", &fx.link(&b, &[("k", "v")])).await;
    fx.publish_link("put", &fx.link(&b, &[("k", "changed")]))
        .await;
    fx.publish_link("put", &fx.link(&d, &[("reject", "yes")]))
        .await;
    fx.publish_link("put", &fx.link(&c, &[])).await;
    fx.wait_links(&a, &sorted(&[&a, &b, &c])).await;
    assert_eq!(fx.link_puts(&a).await, 4, "b, b changed and c (d rejected)");
    // A rejected link does not let its actor in.
    let err = fx.call(&d, "Echo", b"x").await.error.unwrap();
    assert!(err.contains("no link from actor"), "{err}");

    fx.publish_link("del", &fx.link(&a, &[])).await;
    let bc = sorted(&[&b, &c]);
    fx.wait_links(&b, &bc).await;
    let err = fx.call(&a, "Echo", b"x").await.error.unwrap();
    assert!(err.contains(&format!("no link from actor {a}")), "{err}");

    // Garbage on the link subjects is ignored.
    let put = fx.subjects.provider_linkdefs_put(&fx.provider, "default");
    fx.client.publish(put, "junk".into()).await.unwrap();
    assert_eq!(fx.linked_actors(&b).await, bc);

    sup.stop(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_calls_actors_back_over_nats() {
    let mut fx = Fixture::new().await;
    fx.issuers = vec![fx.cluster.public_key()];
    fx.rpc_timeout_ms = Some(500);
    let (caller, target, silent, absent) = (actor(), actor(), actor(), actor());
    fx.links.lock().unwrap().push(fx.link(&caller, &[]));

    // The target actor, answered by a plain NATS responder standing in for its host.
    let mut sub = fx
        .client
        .queue_subscribe(
            fx.subjects.rpc_actor(&target),
            fx.subjects.rpc_actor_queue(&target),
        )
        .await
        .unwrap();
    // An actor whose host takes the call but never answers.
    let _silent_sub = fx
        .client
        .subscribe(fx.subjects.rpc_actor(&silent))
        .await
        .unwrap();
    fx.client.flush().await.unwrap();
    let seen: Arc<Mutex<Vec<Invocation>>> = Arc::default();
    let responder = {
        let (client, seen) = (fx.client.clone(), seen.clone());
        let issuers = nimbus_core::keys::TrustedIssuers::new(&fx.issuers).unwrap();
        tokio::spawn(async move {
            while let Some(msg) = sub.next().await {
                let inv = Invocation::from_msgpack(&msg.payload).unwrap();
                let expected = claims::ExpectedInvocation {
                    id: &inv.id,
                    origin_url: &inv.origin_url(),
                    target_url: &inv.target_url(),
                    operation: &inv.operation,
                    msg: &inv.msg,
                };
                let checked = claims::verify_invocation(&inv.encoded_claims, &expected, &issuers);
                let resp = match checked {
                    Ok(_) if inv.operation == "Fail" => {
                        InvocationResponse::failure(&inv.id, "actor trapped: unreachable")
                    }
                    Ok(_) => InvocationResponse::success(
                        &inv.id,
                        [b"pong:".as_slice(), &inv.msg].concat(),
                    ),
                    Err(e) => InvocationResponse::failure(&inv.id, e.to_string()),
                };
                seen.lock().unwrap().push(inv);
                let reply = msg.reply.unwrap();
                client
                    .publish(reply, resp.to_msgpack().unwrap().into())
                    .await
                    .unwrap();
            }
        })
    };

    let (sup, _events) = fx.supervise(RestartPolicy::default());
    fx.wait_ready().await;
    let call_actor = |actor: &str, op: &str| {
        rmp_serde::to_vec_named(&CallActorRequest {
            actor_id: actor.to_string(),
            operation: op.to_string(),
            payload: b"hi".to_vec(),
        })
        .unwrap()
    };

    let resp = fx
        .call(&caller, "CallActor", &call_actor(&target, "Ping"))
        .await;
    assert_eq!(resp.into_result().unwrap(), b"pong:hi");
    {
        let seen = seen.lock().unwrap();
        let inv = seen.last().unwrap();
        assert_eq!(
            inv.origin,
            WasmCloudEntity::provider(fx.provider.clone(), CONTRACT_ID, "default")
        );
        assert_eq!(inv.target, WasmCloudEntity::actor(target.clone()));
        assert_eq!(inv.host_id, fx.host);
        assert_eq!(inv.operation, "Ping");
    }

    // The actor's own error travels back.
    let err = fx
        .call(&caller, "CallActor", &call_actor(&target, "Fail"))
        .await
        .error
        .unwrap();
    assert_eq!(
        err,
        format!("call to actor {target} failed: actor trapped: unreachable")
    );

    // Nobody runs the actor: "no responders", distinct from a timeout.
    let err = fx
        .call(&caller, "CallActor", &call_actor(&absent, "Ping"))
        .await
        .error
        .unwrap();
    assert!(
        err.starts_with(&format!("actor {absent} is not available: no responders")),
        "{err}"
    );

    // Its host takes the call but never answers: a timeout naming the limit.
    let err = fx
        .call(&caller, "CallActor", &call_actor(&silent, "Ping"))
        .await
        .error
        .unwrap();
    assert!(
        err.starts_with(&format!(
            "call to actor {silent} failed: timed out: actor {silent} did not answer within 500ms"
        )),
        "{err}"
    );

    sup.stop(Duration::from_secs(5)).await;
    responder.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_shutdown_request_naming_its_host_stops_the_provider() {
    let fx = Fixture::new().await;
    let a = actor();
    fx.links.lock().unwrap().push(fx.link(&a, &[]));
    let (sup, mut events) = fx.supervise(policy(50));
    let pid = sup.pid().unwrap();
    assert_eq!(events.next().await, SupervisorEvent::Started { pid });
    fx.wait_ready().await;
    let subject = fx.subjects.provider_shutdown(&fx.provider, "default");

    // A request for another host, or naming no host, is not from this provider's host:
    // no reply, still serving.
    let other = KeyPair::generate(KeyKind::Server).public_key();
    for body in [
        format!(r#"{{"host_id":"{other}"}}"#),
        "{}".into(),
        String::new(),
    ] {
        let request = async_nats::Request::new()
            .payload(body.clone().into())
            .timeout(Some(Duration::from_millis(500)));
        assert!(
            fx.client
                .send_request(subject.clone(), request)
                .await
                .is_err(),
            "the provider obeyed {body:?}"
        );
    }
    assert_eq!(fx.call(&a, "Echo", b"x").await.into_result().unwrap(), b"x");

    let request = async_nats::Request::new()
        .payload(format!(r#"{{"host_id":"{}"}}"#, fx.host).into())
        .timeout(Some(Duration::from_secs(5)));
    let reply = fx.client.send_request(subject, request).await.unwrap();
    assert_eq!(&reply.payload[..], b"shutting down");

    // The process exits by itself, cleanly, and is not restarted.
    match events.next().await {
        SupervisorEvent::Exited {
            pid: exited,
            code,
            restart_in,
            ..
        } => {
            assert_eq!((exited, code, restart_in), (pid, Some(0), None));
        }
        other => panic!("expected Exited, got {other:?}"),
    }
    assert_eq!(events.next().await, SupervisorEvent::Stopped);
    sup.wait().await;
    assert_eq!(sup.pid(), None);
    events.none_for(Duration::from_millis(300)).await;
    let err = fx.health(Duration::from_secs(2)).await.unwrap_err();
    assert!(err.contains("no responders"), "{err}");
    // Stopping an already stopped provider is a no-op.
    sup.stop(Duration::from_millis(100)).await;
}

fn kill_9(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .expect("failed to run kill");
    assert!(status.success(), "kill -9 {pid} failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashed_provider_is_restarted_with_back_off_and_current_links() {
    let fx = Fixture::new().await;
    let (a, b) = (actor(), actor());
    fx.links.lock().unwrap().push(fx.link(&a, &[]));
    let (sup, mut events) = fx.supervise(policy(200));
    let first = sup.pid().unwrap();
    assert_eq!(events.next().await, SupervisorEvent::Started { pid: first });
    fx.wait_ready().await;

    // The host's link store changes while the provider runs (the put over NATS is lost
    // with the process); the restarted process must get it from its fresh host data.
    fx.links.lock().unwrap().push(fx.link(&b, &[]));
    kill_9(first);
    match events.next().await {
        SupervisorEvent::Exited {
            pid,
            signal,
            code,
            restart_in,
            ..
        } => {
            assert_eq!((pid, signal, code), (first, Some(9), None));
            assert_eq!(restart_in, Some(Duration::from_millis(200)));
        }
        other => panic!("expected Exited, got {other:?}"),
    }
    let second = match events.next().await {
        SupervisorEvent::Restarted { pid, attempt } => {
            assert_eq!(attempt, 1);
            assert_ne!(pid, first);
            pid
        }
        other => panic!("expected Restarted, got {other:?}"),
    };
    assert_eq!(sup.pid(), Some(second));
    fx.wait_ready().await;
    assert_eq!(fx.linked_actors(&a).await, sorted(&[&a, &b]));
    assert_eq!(
        fx.call(&b, "Echo", b"back").await.into_result().unwrap(),
        b"back"
    );

    // The provider dies on its own (a crash mid-call): restarted again, back-off doubled
    // because the previous run was short.
    let crash = fx.invocation(&a, "Crash", b"", true);
    let request = async_nats::Request::new()
        .payload(crash.to_msgpack().unwrap().into())
        .timeout(Some(Duration::from_secs(2)));
    assert!(
        fx.client
            .send_request(fx.rpc_subject(), request)
            .await
            .is_err(),
        "a crashing provider cannot answer"
    );
    match events.next().await {
        SupervisorEvent::Exited {
            pid,
            code,
            status,
            restart_in,
            ..
        } => {
            assert_eq!((pid, code), (second, Some(CRASH_EXIT_CODE)));
            assert_eq!(status, format!("exit code {CRASH_EXIT_CODE}"));
            assert_eq!(restart_in, Some(Duration::from_millis(400)));
        }
        other => panic!("expected Exited, got {other:?}"),
    }
    match events.next().await {
        SupervisorEvent::Restarted { attempt, .. } => assert_eq!(attempt, 2),
        other => panic!("expected Restarted, got {other:?}"),
    }
    fx.wait_ready().await;
    assert_eq!(
        fx.call(&a, "Echo", b"again").await.into_result().unwrap(),
        b"again"
    );

    sup.stop(Duration::from_secs(5)).await;
    assert!(matches!(
        events.next().await,
        SupervisorEvent::Exited {
            restart_in: None,
            ..
        }
    ));
    assert_eq!(events.next().await, SupervisorEvent::Stopped);
    events.none_for(Duration::from_millis(300)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_reconnects_after_a_nats_restart() {
    let mut fx = Fixture::new().await;
    let a = actor();
    fx.links.lock().unwrap().push(fx.link(&a, &[]));
    let (sup, mut events) = fx.supervise(policy(50));
    let pid = sup.pid().unwrap();
    assert_eq!(events.next().await, SupervisorEvent::Started { pid });
    fx.wait_ready().await;

    fx.nats.restart();
    // Both the provider and the test client reconnect; the subscriptions come back.
    fx.wait_ready().await;
    assert_eq!(
        fx.call(&a, "Echo", b"after").await.into_result().unwrap(),
        b"after"
    );
    // Same process: a NATS outage is not a crash.
    assert_eq!(sup.pid(), Some(pid));
    events.none_for(Duration::from_millis(100)).await;
    sup.stop(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_or_non_executable_binary_is_a_spawn_error() {
    let fx = Fixture::new().await;
    let dir = tempfile::tempdir().unwrap();
    let mut spec = fx.spec(RestartPolicy::default());

    spec.binary = dir.path().join("no-such-provider");
    let err = SupervisedProvider::spawn(spec.clone(), |_| {}).unwrap_err();
    assert!(matches!(err, SupervisorError::NotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("no-such-provider"), "{err}");
    assert!(err.to_string().contains("does not exist"), "{err}");

    let plain = dir.path().join("not-executable");
    std::fs::write(&plain, "#!/bin/sh\nexit 0\n").unwrap();
    spec.binary = plain;
    let err = SupervisedProvider::spawn(spec, |_| {}).unwrap_err();
    assert!(
        matches!(err, SupervisorError::NotExecutable { .. }),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_loop_gives_up_after_max_restarts() {
    let mut fx = Fixture::new().await;
    // Nothing listens there: the provider fails to connect and exits with an error, the
    // way a misconfigured provider crash-loops.
    fx.url = Some(format!("127.0.0.1:{}", free_port()));
    let restart = RestartPolicy {
        max_restarts: Some(3),
        ..policy(50)
    };
    let (sup, mut events) = fx.supervise(restart);
    assert!(matches!(
        events.next().await,
        SupervisorEvent::Started { .. }
    ));
    for (attempt, delay_ms) in [(1, 50), (2, 100), (3, 200)] {
        match events.next().await {
            SupervisorEvent::Exited {
                code, restart_in, ..
            } => {
                assert_eq!(code, Some(1), "anyhow's main exits with 1");
                assert_eq!(restart_in, Some(Duration::from_millis(delay_ms)));
            }
            other => panic!("expected Exited, got {other:?}"),
        }
        match events.next().await {
            SupervisorEvent::Restarted { attempt: a, .. } => assert_eq!(a, attempt),
            other => panic!("expected Restarted, got {other:?}"),
        }
    }
    assert!(matches!(
        events.next().await,
        SupervisorEvent::Exited {
            restart_in: None,
            ..
        }
    ));
    assert_eq!(events.next().await, SupervisorEvent::GaveUp { attempts: 3 });
    sup.wait().await;
    assert_eq!(sup.pid(), None);
    assert!(!sup.is_supervising());
}
