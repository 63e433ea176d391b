//! A flooded actor behind the HTTP server (issue 11): the runtime's admission refusal
//! crosses the host's router as the `busy` kind and reaches the in-process HTTP server
//! provider, which answers 503 with `Retry-After` instead of 500.
//!
//! `kvcounter` holds its instance across its key-value host call; the key-value provider
//! here answers only when the test opens its gate, so one request keeps the actor's only
//! instance busy for as long as the test wants. The test counts statuses, never time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use nimbus_core::keys::{KeyKind, KeyPair};
use nimbus_core::link::LinkDefinition;
use nimbus_interface_keyvalue as kv;
use nimbus_lattice::Host;
use nimbus_provider_httpserver::{BUSY_RETRY_AFTER_SECS, HttpServerProvider};
use nimbus_provider_sdk::{CallContext, Provider, ProviderError};
use nimbus_runtime::{Runtime, RuntimeConfig};
use nimbus_tests::{Signer, actor_wasm};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

const HTTP_CONTRACT: &str = "wasmcloud:httpserver";
/// Every deadline on the request path: far above what a request needs, so only the
/// actor's admission bound (one instance, a queue wait of 1 s) refuses anything.
const PATIENCE: Duration = Duration::from_secs(30);

/// A key-value provider whose `Add` waits for the test's gate.
struct GatedKv {
    gate: Semaphore,
    entered: AtomicUsize,
}

#[async_trait]
impl Provider for GatedKv {
    fn contract_id(&self) -> &str {
        kv::CONTRACT_ID
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
        if operation != kv::OP_ADD {
            return Err(ProviderError::UnknownOperation {
                contract_id: kv::CONTRACT_ID.into(),
                operation: operation.into(),
            });
        }
        self.entered.fetch_add(1, Ordering::SeqCst);
        // A closed semaphore is the open gate.
        let _ = self.gate.acquire().await;
        kv::serialize(&kv::AddResponse { value: 1 })
            .map_err(|e| ProviderError::Backend(e.to_string()))
    }
}

/// Status, headers (lower-case names) and body of one HTTP/1.1 exchange.
struct Reply {
    status: u16,
    headers: HashMap<String, String>,
    body: String,
}

/// Sends `GET path` with `Connection: close` and reads the whole reply.
async fn get(addr: SocketAddr, path: String) -> Reply {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.unwrap();
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("not an HTTP response: {text:?}"));
        let headers = lines
            .filter_map(|l| l.split_once(": "))
            .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
            .collect();
        Reply {
            status,
            headers,
            body: body.to_string(),
        }
    };
    tokio::time::timeout(PATIENCE, exchange)
        .await
        .expect("no HTTP reply in time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooded_actor_behind_http_answers_503_with_retry_after() {
    let runtime = Runtime::new(RuntimeConfig {
        max_total_instances: 8,
        max_memory_bytes: 16 * 1024 * 1024,
        default_call_timeout: PATIENCE,
        ..RuntimeConfig::default()
    })
    .unwrap();
    let host = Host::builder()
        .runtime(runtime)
        .rpc_timeout(PATIENCE)
        .build()
        .await
        .unwrap();
    let http = Arc::new(HttpServerProvider::with_shutdown_grace(
        Duration::from_secs(1),
    ));
    let store = Arc::new(GatedKv {
        gate: Semaphore::new(0),
        entered: AtomicUsize::new(0),
    });
    let http_id = KeyPair::generate(KeyKind::Service).public_key();
    let kv_id = KeyPair::generate(KeyKind::Service).public_key();
    host.start_provider(http.clone(), &http_id, "default")
        .await
        .unwrap();
    host.start_provider(store.clone(), &kv_id, "default")
        .await
        .unwrap();

    let signer = Signer::new();
    let module = signer.sign(&actor_wasm("kvcounter"), &[HTTP_CONTRACT, kv::CONTRACT_ID]);
    // One warm instance and a ceiling of one: the second concurrent request is too many.
    let actor = host.start_actor_with_max(module, 1, Some(1)).await.unwrap();
    let timeout_ms = PATIENCE.as_millis().to_string();
    host.put_link(LinkDefinition::new(
        &actor,
        &http_id,
        "default",
        HTTP_CONTRACT,
        HashMap::from([
            ("port".to_string(), "0".to_string()),
            ("timeout_ms".to_string(), timeout_ms),
        ]),
    ))
    .await
    .unwrap();
    host.put_link(LinkDefinition::new(
        &actor,
        &kv_id,
        "default",
        kv::CONTRACT_ID,
        HashMap::new(),
    ))
    .await
    .unwrap();
    let addr = http.listener_addr(&actor).await.expect("no HTTP listener");

    // The first request takes the only instance and waits in the key-value call.
    let holding = tokio::spawn(get(addr, "/held".into()));
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while store.entered.load(Ordering::SeqCst) == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the first request never reached the key-value provider"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // The flood: each request waits out its queue wait and is refused as busy.
    let flood: Vec<_> = (0..5)
        .map(|n| tokio::spawn(get(addr, format!("/flood/{n}"))))
        .collect();
    for request in flood {
        let reply = request.await.unwrap();
        assert_eq!(reply.status, 503, "{}", reply.body);
        assert_eq!(
            reply.headers.get("retry-after").map(String::as_str),
            Some(BUSY_RETRY_AFTER_SECS.to_string().as_str())
        );
        assert!(
            reply.body.contains("at its limit of concurrent requests"),
            "{}",
            reply.body
        );
    }
    assert_eq!(
        store.entered.load(Ordering::SeqCst),
        1,
        "a refused request never ran the actor"
    );

    store.gate.close();
    let held = holding.await.unwrap();
    assert_eq!(held.status, 200, "{}", held.body);
    let after = get(addr, "/after".into()).await;
    assert_eq!(after.status, 200, "{}", after.body);
    host.stop().await.unwrap();
}
