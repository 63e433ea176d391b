//! The invocation protocol against a real nats-server: a signed call answered, every
//! refusal with its own kind and a message saying what to do, error kinds that survive
//! the wire, and a drained server that loses no accepted request.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use nimbus_core::keys::{KeyKind, KeyPair, TrustedIssuers};
use nimbus_core::subjects::Subjects;
use nimbus_core::wire::{Invocation, InvocationResponse, WasmCloudEntity};
use nimbus_rpc::{ErrorKind, Handler, InvocationError, Limits, RpcClient, serve};
use nimbus_tests::servers::NatsServer;

/// Echoes, fails with the kind an operation names, or sleeps.
struct TestHandler {
    handled: AtomicUsize,
}

impl Handler for TestHandler {
    async fn handle(&self, inv: Invocation) -> Result<Vec<u8>, InvocationError> {
        self.handled.fetch_add(1, Ordering::SeqCst);
        match inv.operation.as_str() {
            "Busy" => Err(InvocationError::busy("actor M", "all 4 instances busy")),
            "Fail" => Err(InvocationError::failed("the guest said no")),
            "Sleep" => {
                tokio::time::sleep(Duration::from_millis(300)).await;
                Ok(inv.msg)
            }
            // The trace context the handler sees, or `none`.
            "TraceParent" => Ok(inv
                .trace_context
                .and_then(|t| t.get(nimbus_telemetry::TRACEPARENT).cloned())
                .unwrap_or_else(|| "none".into())
                .into_bytes()),
            _ => Ok(inv.msg),
        }
    }
}

struct Fixture {
    _nats: NatsServer,
    client: async_nats::Client,
    subjects: Subjects,
    cluster: KeyPair,
    actor: String,
    handler: Arc<TestHandler>,
}

async fn fixture(lattice: &str, trusted: Option<&KeyPair>) -> (Fixture, nimbus_rpc::Serving) {
    let nats = NatsServer::start();
    let client = nats.connect().await;
    let subjects = Subjects::for_lattice(lattice);
    let cluster = trusted
        .cloned()
        .unwrap_or_else(|| KeyPair::generate(KeyKind::Cluster));
    let actor = KeyPair::generate(KeyKind::Module).public_key();
    let handler = Arc::new(TestHandler {
        handled: AtomicUsize::new(0),
    });
    let limits = Limits {
        max_payload: 1024,
        trusted: trusted.map(|k| TrustedIssuers::new([k.public_key()]).unwrap()),
        receiver: format!("test server of lattice `{lattice}`"),
        lattice: lattice.to_string(),
        replay: Default::default(),
    };
    let serving = serve(
        &client,
        subjects.rpc_actor(&actor),
        subjects.rpc_actor_queue(&actor),
        handler.clone(),
        limits,
    )
    .await
    .unwrap();
    (
        Fixture {
            _nats: nats,
            client,
            subjects,
            cluster,
            actor,
            handler,
        },
        serving,
    )
}

impl Fixture {
    fn rpc(&self, signer: Option<KeyPair>) -> RpcClient {
        RpcClient::new(self.client.clone(), self.subjects.clone(), "NTEST").with_signer(signer)
    }

    async fn call(
        &self,
        rpc: &RpcClient,
        op: &str,
        payload: &[u8],
    ) -> Result<Vec<u8>, InvocationError> {
        let me = WasmCloudEntity::actor(&self.actor);
        rpc.invoke(me.clone(), me, op, payload.to_vec(), Duration::from_secs(2))
            .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_calls_are_answered_and_strangers_refused_by_key() {
    let cluster = KeyPair::generate(KeyKind::Cluster);
    let (fx, serving) = fixture("rpcsigned", Some(&cluster)).await;
    let ours = fx.rpc(Some(fx.cluster.clone()));
    assert_eq!(fx.call(&ours, "Echo", b"hi").await.unwrap(), b"hi");

    let stranger = KeyPair::generate(KeyKind::Cluster);
    let err = fx
        .call(&fx.rpc(Some(stranger.clone())), "Echo", b"hi")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ClaimsInvalid, "{err}");
    assert!(
        err.message()
            .contains(&format!("signed by cluster key {}", stranger.public_key())),
        "{err}"
    );
    assert!(
        err.message()
            .contains(&format!("it trusts {}", cluster.public_key())),
        "{err}"
    );
    assert!(
        err.message()
            .contains("wash lattice key import --lattice rpcsigned"),
        "{err}"
    );

    let err = fx.call(&fx.rpc(None), "Echo", b"hi").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ClaimsInvalid);
    assert!(
        err.message().contains("carries no anti-forgery token"),
        "{err}"
    );
    assert_eq!(
        fx.handler.handled.load(Ordering::SeqCst),
        1,
        "refused invocations never reach the handler"
    );
    serving.stop(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_has_its_own_kind() {
    let (fx, serving) = fixture("rpckinds", None).await;
    let rpc = fx.rpc(None);
    // Errors of the handler keep their kind across the wire.
    let busy = fx.call(&rpc, "Busy", b"").await.unwrap_err();
    assert_eq!(busy.kind(), ErrorKind::Busy, "{busy}");
    let failed = fx.call(&rpc, "Fail", b"").await.unwrap_err();
    assert_eq!(failed.kind(), ErrorKind::Failed);
    assert_eq!(failed.message(), "the guest said no");
    // Too large for the server's limit (1 KiB), below NATS's.
    let big = fx.call(&rpc, "Echo", &[0u8; 4096]).await.unwrap_err();
    assert_eq!(big.kind(), ErrorKind::PayloadTooLarge, "{big}");
    // Nobody serves this actor.
    let nobody = WasmCloudEntity::actor(KeyPair::generate(KeyKind::Module).public_key());
    let err = rpc
        .invoke(
            nobody.clone(),
            nobody,
            "Echo",
            Vec::new(),
            Duration::from_secs(2),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NoResponders, "{err}");
    // Slower than the caller waits.
    let me = WasmCloudEntity::actor(&fx.actor);
    let err = rpc
        .invoke(
            me.clone(),
            me,
            "Sleep",
            Vec::new(),
            Duration::from_millis(50),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");
    // Not msgpack at all: answered, not dropped.
    let reply = fx
        .client
        .request(
            fx.subjects.rpc_actor(&fx.actor),
            b"\xc1garbage".to_vec().into(),
        )
        .await
        .unwrap();
    let response = InvocationResponse::from_msgpack(&reply.payload).unwrap();
    let err = InvocationError::from_wire(response.into_result().unwrap_err());
    assert_eq!(err.kind(), ErrorKind::Malformed, "{err}");
    serving.stop(Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drained_server_answers_every_request_it_took() {
    let (fx, serving) = fixture("rpcdrain", None).await;
    let rpc = fx.rpc(None);
    let calls: Vec<_> = (0..20)
        .map(|i| {
            let rpc = rpc.clone();
            let me = WasmCloudEntity::actor(&fx.actor);
            tokio::spawn(async move {
                rpc.invoke(me.clone(), me, "Sleep", vec![i], Duration::from_secs(5))
                    .await
            })
        })
        .collect();
    // Stop once every request reached the handler: each must still be answered.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while fx.handler.handled.load(Ordering::SeqCst) < 20 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "requests never arrived"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    serving.stop(Duration::from_secs(5)).await;
    for (i, call) in calls.into_iter().enumerate() {
        assert_eq!(call.await.unwrap().unwrap(), vec![i as u8]);
    }
}

const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const OTHER: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

/// A raw request to the fixture's actor subject, as a 0.x peer sends it: `field` in the
/// envelope's `traceContext`, `header` as the `traceparent` NATS header.
async fn raw_trace_call(fx: &Fixture, field: Option<&str>, header: Option<&str>) -> String {
    let me = WasmCloudEntity::actor(&fx.actor);
    let mut inv = Invocation::new(me.clone(), me, "TraceParent", Vec::new(), "NTEST");
    inv.trace_context = field.map(|f| {
        std::collections::HashMap::from([(nimbus_telemetry::TRACEPARENT.to_string(), f.into())])
    });
    let mut headers = async_nats::HeaderMap::new();
    if let Some(h) = header {
        headers.insert(nimbus_telemetry::TRACEPARENT, h);
    }
    let reply = fx
        .client
        .request_with_headers(
            fx.subjects.rpc_actor(&fx.actor),
            headers,
            inv.to_msgpack().unwrap().into(),
        )
        .await
        .unwrap();
    let response = InvocationResponse::from_msgpack(&reply.payload).unwrap();
    String::from_utf8(response.into_result().unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trace_context_travels_in_the_envelope_and_the_nats_headers() {
    let (fx, serving) = fixture("rpctrace", None).await;
    let rpc = fx.rpc(None);
    let parent = nimbus_telemetry::TraceParent::from_headers(Some(PARENT), None);

    // The sender puts the task's current context in the invocation (no exporter here:
    // an incoming context is forwarded even with tracing off).
    let seen = nimbus_telemetry::scope(parent.clone(), fx.call(&rpc, "TraceParent", b""))
        .await
        .unwrap();
    assert_eq!(seen, PARENT.as_bytes());
    assert_eq!(fx.call(&rpc, "TraceParent", b"").await.unwrap(), b"none");

    // ... and in the NATS headers, for 0.x receivers that read only those.
    let other_actor = KeyPair::generate(KeyKind::Module).public_key();
    let mut sub = fx
        .client
        .subscribe(fx.subjects.rpc_actor(&other_actor))
        .await
        .unwrap();
    fx.client.flush().await.unwrap();
    let target = WasmCloudEntity::actor(&other_actor);
    let call = nimbus_telemetry::scope(
        parent,
        rpc.invoke(
            target.clone(),
            target,
            "Echo",
            b"x".to_vec(),
            Duration::from_secs(5),
        ),
    );
    let answer = async {
        use futures_util::StreamExt as _;
        let msg = sub.next().await.unwrap();
        let headers = msg.headers.clone().expect("the request carries headers");
        assert_eq!(
            headers.get(nimbus_telemetry::TRACEPARENT).unwrap().as_str(),
            PARENT
        );
        let inv = Invocation::from_msgpack(&msg.payload).unwrap();
        assert_eq!(
            inv.trace_context.unwrap()[nimbus_telemetry::TRACEPARENT],
            PARENT
        );
        let body = InvocationResponse::success(inv.id, b"x".to_vec())
            .to_msgpack()
            .unwrap();
        fx.client
            .publish(msg.reply.unwrap(), body.into())
            .await
            .unwrap();
    };
    let (result, ()) = tokio::join!(call, answer);
    assert_eq!(result.unwrap(), b"x");

    // A receiver takes the header when the envelope has none (wasmbus-rpc 0.15, OTP) or
    // an invalid one, and the envelope's otherwise.
    assert_eq!(raw_trace_call(&fx, None, Some(PARENT)).await, PARENT);
    assert_eq!(
        raw_trace_call(&fx, Some("garbage"), Some(PARENT)).await,
        PARENT
    );
    assert_eq!(raw_trace_call(&fx, Some(OTHER), Some(PARENT)).await, OTHER);
    // A malformed header alone is no context.
    assert_eq!(raw_trace_call(&fx, None, Some("ff-junk")).await, "none");
    serving.stop(Duration::from_secs(2)).await;
}
