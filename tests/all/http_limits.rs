//! A request body the HTTP server provider accepts but the actor cannot (issue 14): a
//! 1,040,000-byte POST is under the listener's 1 MiB `max_content_len` but over the host's
//! max payload per invocation (1 MiB less 16 KiB for the envelope), so the host refuses the
//! invocation before the actor runs. The client must get 413, not 500, and the next
//! request must be served, with the HTTP server in process on a standalone host and as its
//! own process on a lattice whose actor runs on another host.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use nimbus_core::link::LinkDefinition;
use nimbus_lattice::{DEFAULT_MAX_PAYLOAD, Host};
use nimbus_provider_httpserver::HttpServerProvider;
use nimbus_provider_httpserver::settings::DEFAULT_MAX_CONTENT_LEN;
use nimbus_provider_keyvalue::KeyValueProvider;
use nimbus_tests::http::{self, Response};
use nimbus_tests::servers::{NatsServer, free_port};
use nimbus_tests::{Signer, actor_wasm};

use crate::lattice_support::{builder, cluster_seed, lattice_name, provider_key, wait_event};

const HTTP_CONTRACT: &str = "wasmcloud:httpserver";
const KV_CONTRACT: &str = "wasmcloud:keyvalue";
const HTTP_BIN: &str = env!("CARGO_BIN_EXE_nimbus-test-httpserver-provider");
/// The body of the report.
const BODY_LEN: usize = 1_040_000;
const READY: Duration = Duration::from_secs(30);
// The premise: over what the host takes per call, under what the listener takes.
const _: () = assert!(BODY_LEN > DEFAULT_MAX_PAYLOAD && BODY_LEN < DEFAULT_MAX_CONTENT_LEN);

/// kvcounter, signed for the HTTP server and key-value contracts; (module, actor id).
fn kvcounter() -> (Vec<u8>, String) {
    let signer = Signer::new();
    let bytes = signer.sign(&actor_wasm("kvcounter"), &[HTTP_CONTRACT, KV_CONTRACT]);
    (bytes, signer.module.public_key())
}

fn link(actor: &str, provider: &str, contract: &str, values: &[(&str, &str)]) -> LinkDefinition {
    LinkDefinition::new(
        actor,
        provider,
        "default",
        contract,
        values
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<HashMap<_, _>>(),
    )
}

/// Runs the blocking `f` off the runtime's worker threads, re-raising its panic.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => v,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

/// The `counter` of a kvcounter 200 answer.
fn counter(r: &Response) -> i64 {
    assert_eq!(r.status, 200, "kvcounter failed: {}", r.text());
    let json: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    json["counter"].as_i64().unwrap()
}

/// Against the app at `base` (kvcounter counting `/n`): the oversized POST gets 413 with a
/// message that says why, counts nothing, and the next requests count on.
fn oversized_post_gets_413_and_the_next_request_is_served(base: &str) {
    let before = counter(&http::get(base, "/n").unwrap());
    let body = vec![b'x'; BODY_LEN];
    let r = http::send(base, "POST", "/n", &[], Some(&body)).unwrap();
    assert_eq!(r.status, 413, "{}", r.text());
    assert!(
        r.text()
            .contains("request body of 1040000 bytes is too large for the actor"),
        "{}",
        r.text()
    );
    // The actor never ran: the count goes on from where it was.
    assert_eq!(counter(&http::get(base, "/n").unwrap()), before + 1);
    // And again, so the refusal left nothing behind (no stuck instance, no closed listener).
    let r = http::send(base, "POST", "/n", &[], Some(&body)).unwrap();
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(counter(&http::get(base, "/n").unwrap()), before + 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_actors_limit_gets_413_on_a_standalone_host_and_serving_goes_on() {
    let host = builder(&cluster_seed()).build().await.unwrap();
    let http = Arc::new(HttpServerProvider::with_shutdown_grace(
        Duration::from_secs(2),
    ));
    let (http_id, kv_id) = (provider_key(), provider_key());
    host.start_provider(http.clone(), &http_id, "default")
        .await
        .unwrap();
    host.start_provider(Arc::new(KeyValueProvider::new()), &kv_id, "default")
        .await
        .unwrap();
    let (module, actor) = kvcounter();
    host.start_actor(module, 1).await.unwrap();
    host.put_link(link(&actor, &kv_id, KV_CONTRACT, &[("backend", "memory")]))
        .await
        .unwrap();
    host.put_link(link(&actor, &http_id, HTTP_CONTRACT, &[("port", "0")]))
        .await
        .unwrap();
    let addr = http.listener_addr(&actor).await.expect("no HTTP listener");
    let base = format!("http://{addr}");
    blocking(move || oversized_post_gets_413_and_the_next_request_is_served(&base)).await;
    host.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_actors_limit_gets_413_from_an_http_server_process_on_a_lattice() {
    let nats = NatsServer::start();
    let lattice = lattice_name("http-413");
    let seed = cluster_seed();
    let http_id = provider_key();
    let web = builder(&seed)
        .lattice(&lattice)
        .nats(crate::lattice_support::member_nats(nats.url()))
        .provider_executable("httpserver", http_id.clone(), HTTP_CONTRACT, HTTP_BIN)
        .build()
        .await
        .unwrap();
    let app: Host = builder(&seed)
        .lattice(&lattice)
        .nats(crate::lattice_support::member_nats(nats.url()))
        .build()
        .await
        .unwrap();
    let mut events = web.events();
    let kv_id = provider_key();
    app.start_provider(Arc::new(KeyValueProvider::new()), &kv_id, "default")
        .await
        .unwrap();
    let (module, actor) = kvcounter();
    app.start_actor(module, 1).await.unwrap();
    web.launch_provider("httpserver", "default", None)
        .await
        .unwrap();
    let port = free_port();
    app.put_link(link(&actor, &kv_id, KV_CONTRACT, &[("backend", "memory")]))
        .await
        .unwrap();
    app.put_link(link(
        &actor,
        &http_id,
        HTTP_CONTRACT,
        &[("port", &port.to_string())],
    ))
    .await
    .unwrap();
    wait_event(&mut events, "health_check_passed", |e| {
        e.data["public_key"] == http_id.as_str()
    })
    .await;
    let base = format!("http://127.0.0.1:{port}");
    blocking(move || {
        // The process takes the link once it is up; until then nothing listens.
        http::wait_for(&base, "/n", READY, |r| r.status == 200);
        oversized_post_gets_413_and_the_next_request_is_served(&base);
    })
    .await;
    web.stop().await.unwrap();
    app.stop().await.unwrap();
}
