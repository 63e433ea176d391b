//! The HTTP server provider over real sockets. The actor side is an `ActorCaller` written
//! in the test (the provider's boundary), so each test can make the "actor" answer,
//! fail, stall or vanish on purpose; end-to-end runs with wasm actors live in the
//! workspace's integration tests.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use nimbus_provider_httpserver::wire::{Request, Response};
use nimbus_provider_httpserver::{CONTRACT_ID, HttpServerProvider};
use nimbus_provider_sdk::{
    ActorCaller, CallContext, LinkDefinition, Provider, ProviderContext, ProviderError,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const ACTOR: &str = "MBCFOPM6JW2APJLXJD3Z5O4CN7CPYJ2B4FTKLJUR5YR5MITIU7HD3WD5";

/// How the test "actor" answers.
#[derive(Clone, Copy)]
enum Behaviour {
    /// Echo the request back as JSON-ish text with the request's details.
    Echo,
    /// Sleep this long first, then echo.
    Slow(Duration),
    /// Report that no actor could be reached.
    Unavailable,
    /// Report that the actor's host refused the call at an admission bound.
    Busy,
    /// Fail as a trapped actor does.
    Trap,
    /// Answer with bytes that are not an HttpResponse.
    Garbage,
    /// Answer with status code 42.
    BadStatus,
    /// Report that the actor's host refused the invocation as larger than its max payload
    /// (the message a host sends for it, read back as an `ActorCall` failure).
    TooLarge,
}

struct TestActor {
    behaviour: std::sync::Mutex<Behaviour>,
    calls: AtomicUsize,
}

#[async_trait]
impl ActorCaller for TestActor {
    async fn call_actor(
        &self,
        actor_id: &str,
        operation: &str,
        payload: Vec<u8>,
    ) -> Result<Vec<u8>, ProviderError> {
        assert_eq!(operation, "HandleRequest");
        self.calls.fetch_add(1, Ordering::SeqCst);
        let behaviour = *self.behaviour.lock().unwrap();
        let request: Request = rmp_serde::from_slice(&payload).expect("provider sent a Request");
        let echo = |request: &Request| {
            let mut header = HashMap::new();
            header.insert("x-method".to_string(), request.method.clone());
            header.insert("x-path".to_string(), request.path.clone());
            header.insert("x-query".to_string(), request.query_string.clone());
            header.insert(
                "x-test-header".to_string(),
                request.header.get("x-test").cloned().unwrap_or_default(),
            );
            rmp_serde::to_vec_named(&Response {
                status_code: 201,
                status: "Created".into(),
                header,
                body: request.body.clone(),
            })
            .unwrap()
        };
        match behaviour {
            Behaviour::Echo => Ok(echo(&request)),
            Behaviour::Slow(d) => {
                tokio::time::sleep(d).await;
                Ok(echo(&request))
            }
            Behaviour::Unavailable => Err(ProviderError::ActorUnavailable {
                actor_id: actor_id.into(),
                reason: "not running on any host".into(),
            }),
            Behaviour::Busy => Err(ProviderError::ActorBusy {
                actor_id: actor_id.into(),
                reason: format!(
                    "busy: actor {actor_id} cannot take the call now: 256 callers already wait"
                ),
            }),
            Behaviour::Trap => Err(ProviderError::ActorCall {
                actor_id: actor_id.into(),
                reason: "actor trapped: unreachable".into(),
            }),
            Behaviour::TooLarge => Err(ProviderError::ActorCall {
                actor_id: actor_id.into(),
                reason: format!(
                    "payload too large ({} > 1032192 bytes); send less data per call or raise the host's max payload",
                    payload.len()
                ),
            }),
            Behaviour::Garbage => Ok(vec![0xc1, 0x00, 0xff]),
            Behaviour::BadStatus => Ok(rmp_serde::to_vec_named(&Response {
                status_code: 42,
                ..Response::default()
            })
            .unwrap()),
        }
    }
}

struct Setup {
    provider: Arc<HttpServerProvider>,
    actor: Arc<TestActor>,
    addr: SocketAddr,
}

impl Setup {
    fn set(&self, behaviour: Behaviour) {
        *self.actor.behaviour.lock().unwrap() = behaviour;
    }
}

fn link(values: &[(&str, &str)]) -> LinkDefinition {
    LinkDefinition::new(
        ACTOR,
        "VAHNM37G2U5DBFLTSYNOQF7FO4BSZLHMQ3YUL6EVAPLX3EIY5VO2QIKQ",
        "default",
        CONTRACT_ID,
        values
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

async fn started(grace: Duration) -> (Arc<HttpServerProvider>, Arc<TestActor>) {
    let provider = Arc::new(HttpServerProvider::with_shutdown_grace(grace));
    let actor = Arc::new(TestActor {
        behaviour: std::sync::Mutex::new(Behaviour::Echo),
        calls: AtomicUsize::new(0),
    });
    provider
        .start(ProviderContext {
            host_id: "NTEST".into(),
            lattice: "default".into(),
            provider_id: "VTEST".into(),
            link_name: "default".into(),
            config_json: None,
            actors: actor.clone(),
        })
        .await
        .unwrap();
    (provider, actor)
}

async fn setup(values: &[(&str, &str)]) -> Setup {
    let (provider, actor) = started(Duration::from_secs(5)).await;
    let mut values = values.to_vec();
    if !values.iter().any(|(k, _)| *k == "address" || *k == "port") {
        values.push(("address", "127.0.0.1:0"));
    }
    provider.put_link(&link(&values)).await.unwrap();
    let addr = provider.listener_addr(ACTOR).await.unwrap();
    Setup {
        provider,
        actor,
        addr,
    }
}

/// A parsed HTTP/1.1 response.
#[derive(Debug)]
struct HttpReply {
    status: u16,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

/// Reads one response (Content-Length framed) from `stream`.
async fn read_reply(stream: &mut TcpStream) -> HttpReply {
    let mut buf = Vec::new();
    let header_end = loop {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed before a full response: {buf:?}");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos;
        }
    };
    let head = String::from_utf8(buf[..header_end].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
        .collect();
    let len: usize = headers
        .get("content-length")
        .map(|v| v.parse().unwrap())
        .unwrap_or(0);
    let mut body = buf[header_end + 4..].to_vec();
    while body.len() < len {
        let mut chunk = vec![0u8; len - body.len()];
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed inside the body");
        body.extend_from_slice(&chunk[..n]);
    }
    HttpReply {
        status,
        headers,
        body,
    }
}

async fn send(addr: SocketAddr, raw: &[u8]) -> HttpReply {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(raw).await.unwrap();
    read_reply(&mut stream).await
}

#[tokio::test]
async fn request_and_response_pass_through() {
    let s = setup(&[]).await;
    let reply = send(
        s.addr,
        b"POST /pets/42?lastName=Davis&x=1 HTTP/1.1\r\nHost: t\r\nX-Test: one\r\nX-Test: two\r\nContent-Length: 5\r\n\r\nhello",
    )
    .await;
    assert_eq!(reply.status, 201);
    assert_eq!(reply.headers["x-method"], "POST");
    assert_eq!(reply.headers["x-path"], "/pets/42");
    assert_eq!(reply.headers["x-query"], "lastName=Davis&x=1");
    assert_eq!(reply.headers["x-test-header"], "one, two");
    assert_eq!(reply.body, b"hello");
}

#[tokio::test]
async fn keep_alive_serves_several_requests_on_one_connection() {
    let s = setup(&[]).await;
    let mut stream = TcpStream::connect(s.addr).await.unwrap();
    for i in 0..3 {
        let req = format!("GET /n/{i} HTTP/1.1\r\nHost: t\r\n\r\n");
        stream.write_all(req.as_bytes()).await.unwrap();
        let reply = read_reply(&mut stream).await;
        assert_eq!(reply.status, 201);
        assert_eq!(reply.headers["x-path"], format!("/n/{i}"));
    }
    assert_eq!(s.actor.calls.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn bodies_over_the_limit_get_413_and_never_reach_the_actor() {
    let s = setup(&[("max_content_len", "16")]).await;
    let declared = send(
        s.addr,
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 17\r\n\r\n01234567890123456",
    )
    .await;
    assert_eq!(declared.status, 413);
    let chunked = send(
        s.addr,
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n0123456789012345\r\n5\r\n67890\r\n0\r\n\r\n",
    )
    .await;
    assert_eq!(chunked.status, 413);
    assert_eq!(s.actor.calls.load(Ordering::SeqCst), 0);
    let ok = send(
        s.addr,
        b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 16\r\n\r\n0123456789012345",
    )
    .await;
    assert_eq!(ok.status, 201);
}

/// Generous bound for a response that the server owes after about a second: far above
/// the body timeout of these tests, so a loaded machine does not fail them.
const REPLY_BOUND: Duration = Duration::from_secs(10);

/// Reads until the server closes the connection (EOF or reset), for at most [`REPLY_BOUND`].
async fn closed_by_server(stream: &mut (impl AsyncReadExt + Unpin)) -> bool {
    let mut rest = Vec::new();
    matches!(
        tokio::time::timeout(REPLY_BOUND, stream.read_to_end(&mut rest)).await,
        Ok(Ok(_) | Err(_))
    )
}

#[tokio::test]
async fn a_stalled_body_gets_408_after_the_body_timeout_and_the_connection_closes() {
    let s = setup(&[("body_timeout_ms", "1000")]).await;
    let mut stream = TcpStream::connect(s.addr).await.unwrap();
    // Headers and the first 10 of 1,000 declared body bytes; then nothing.
    stream
        .write_all(b"POST /slow HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n0123456789")
        .await
        .unwrap();
    let reply = tokio::time::timeout(REPLY_BOUND, read_reply(&mut stream))
        .await
        .expect("no answer to a stalled body within 10 s");
    assert_eq!(reply.status, 408, "{reply:?}");
    assert_eq!(
        reply.headers.get("connection").map(String::as_str),
        Some("close")
    );
    let text = String::from_utf8(reply.body).unwrap();
    assert!(text.contains("not received within 1000 ms"), "{text}");
    assert!(
        closed_by_server(&mut stream).await,
        "the connection stayed open"
    );
    assert_eq!(s.actor.calls.load(Ordering::SeqCst), 0);
    // The listener serves the next request.
    assert_eq!(
        send(s.addr, b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .status,
        201
    );
}

#[tokio::test]
async fn a_trickled_body_is_cut_off_by_the_total_body_deadline() {
    let s = setup(&[("body_timeout_ms", "1000")]).await;
    let stream = TcpStream::connect(s.addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    writer
        .write_all(b"POST /trickle HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n")
        .await
        .unwrap();
    // One byte every 100 ms: every read finds data, only the total is too slow.
    let trickle = tokio::spawn(async move {
        let mut sent = 0;
        while sent < 1000 && writer.write_all(b"x").await.is_ok() {
            sent += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        sent
    });
    let mut buf = Vec::new();
    let reply = tokio::time::timeout(REPLY_BOUND, async {
        loop {
            let mut chunk = [0u8; 1024];
            let n = reader.read(&mut chunk).await.unwrap();
            assert!(n > 0, "closed without an answer");
            buf.extend_from_slice(&chunk[..n]);
            if buf.windows(4).any(|w| w == b"\r\n\r\n") {
                break String::from_utf8_lossy(&buf).into_owned();
            }
        }
    })
    .await
    .expect("no answer to a trickled body within 10 s");
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    assert!(
        closed_by_server(&mut reader).await,
        "the connection stayed open"
    );
    let sent = trickle.await.unwrap();
    assert!(sent < 1000, "the whole body was trickled in");
    assert_eq!(s.actor.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_body_too_large_for_the_actors_host_gets_413_and_the_next_request_works() {
    let s = setup(&[]).await;
    s.set(Behaviour::TooLarge);
    let body = vec![b'a'; 4096];
    let mut raw = format!(
        "POST /big HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(&body);
    let mut stream = TcpStream::connect(s.addr).await.unwrap();
    stream.write_all(&raw).await.unwrap();
    let reply = read_reply(&mut stream).await;
    assert_eq!(reply.status, 413, "{reply:?}");
    let text = String::from_utf8(reply.body).unwrap();
    assert!(
        text.contains("request body of 4096 bytes is too large for the actor"),
        "{text}"
    );
    // The body was read whole, so the connection goes on with the next request.
    s.set(Behaviour::Echo);
    stream
        .write_all(b"GET /after HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let next = read_reply(&mut stream).await;
    assert_eq!(next.status, 201);
    assert_eq!(next.headers["x-path"], "/after");
}

#[tokio::test]
async fn actor_outcomes_map_to_status_codes_and_the_next_request_works() {
    let s = setup(&[("timeout_ms", "200")]).await;
    let get = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n";
    for (behaviour, status, text) in [
        (
            Behaviour::Slow(Duration::from_secs(2)),
            504,
            "did not answer in time",
        ),
        (Behaviour::Unavailable, 503, "no actor is available"),
        (Behaviour::Busy, 503, "at its limit of concurrent requests"),
        (Behaviour::Trap, 500, "failed to handle"),
        (Behaviour::Garbage, 500, "Malformed response from actor"),
        (Behaviour::BadStatus, 500, "invalid status code"),
    ] {
        s.set(behaviour);
        let reply = send(s.addr, get).await;
        assert_eq!(reply.status, status);
        let body = String::from_utf8(reply.body).unwrap();
        assert!(body.contains(text), "{status}: {body}");
        s.set(Behaviour::Echo);
        assert_eq!(send(s.addr, get).await.status, 201);
    }
}

#[tokio::test]
async fn a_busy_actor_gets_503_with_retry_after_not_500() {
    let s = setup(&[]).await;
    let get = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n";
    s.set(Behaviour::Busy);
    let reply = send(s.addr, get).await;
    assert_eq!(reply.status, 503, "{reply:?}");
    assert_eq!(
        reply.headers.get("retry-after").map(String::as_str),
        Some(
            nimbus_provider_httpserver::BUSY_RETRY_AFTER_SECS
                .to_string()
                .as_str()
        ),
        "{reply:?}"
    );
    // An unreachable actor is a 503 too, but without a promise that a retry helps soon.
    s.set(Behaviour::Unavailable);
    let reply = send(s.addr, get).await;
    assert_eq!(reply.status, 503);
    assert!(!reply.headers.contains_key("retry-after"), "{reply:?}");
    s.set(Behaviour::Echo);
    assert_eq!(send(s.addr, get).await.status, 201);
}

#[tokio::test]
async fn malformed_http_gets_400_and_the_server_keeps_serving() {
    let s = setup(&[]).await;
    let reply = send(s.addr, b"THIS IS NOT HTTP\r\n\r\n").await;
    assert_eq!(reply.status, 400);
    let reply = send(
        s.addr,
        b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: nope\r\n\r\n",
    )
    .await;
    assert_eq!(reply.status, 400);
    assert_eq!(s.actor.calls.load(Ordering::SeqCst), 0);
    assert_eq!(
        send(s.addr, b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .status,
        201
    );
}

#[tokio::test]
async fn link_delete_closes_the_listener_after_in_flight_requests_finish() {
    let s = setup(&[]).await;
    s.set(Behaviour::Slow(Duration::from_millis(300)));
    let addr = s.addr;
    let in_flight =
        tokio::spawn(async move { send(addr, b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n").await });
    // Let the slow request reach the actor before the link goes away.
    while s.actor.calls.load(Ordering::SeqCst) == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    s.provider.delete_link(ACTOR).await;
    let reply = in_flight.await.unwrap();
    assert_eq!(reply.status, 201, "the in-flight request must complete");
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "listener still accepting after the link was deleted"
    );
    assert!(s.provider.listener_addr(ACTOR).await.is_none());

    // A new link opens a listener again, with no restart of anything.
    s.set(Behaviour::Echo);
    s.provider
        .put_link(&link(&[("address", "127.0.0.1:0")]))
        .await
        .unwrap();
    let addr = s.provider.listener_addr(ACTOR).await.unwrap();
    assert_eq!(
        send(addr, b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .status,
        201
    );
}

#[tokio::test]
async fn changed_link_values_move_the_listener_and_same_values_keep_it() {
    let s = setup(&[("address", "127.0.0.1:0")]).await;
    s.provider
        .put_link(&link(&[("address", "127.0.0.1:0")]))
        .await
        .unwrap();
    assert_eq!(s.provider.listener_addr(ACTOR).await, Some(s.addr));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    s.provider
        .put_link(&link(&[("port", &port.to_string())]))
        .await
        .unwrap();
    let moved = s.provider.listener_addr(ACTOR).await.unwrap();
    assert_eq!(moved.port(), port);
    assert!(TcpStream::connect(s.addr).await.is_err());
    assert_eq!(
        send(moved, b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            .await
            .status,
        201
    );
}

#[tokio::test]
async fn bad_link_values_and_busy_ports_are_rejected_clearly() {
    let (provider, _actor) = started(Duration::from_secs(1)).await;
    let err = provider
        .put_link(&link(&[("port", "eighty")]))
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::BadLink { .. }), "{err}");
    assert!(err.to_string().contains("`port`"), "{err}");

    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    let err = provider
        .put_link(&link(&[("port", &port)]))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("cannot listen on"), "{err}");
    assert!(provider.listener_addr(ACTOR).await.is_none());
}

#[tokio::test]
async fn actors_cannot_call_operations_on_the_http_server() {
    let (provider, _actor) = started(Duration::from_secs(1)).await;
    let ctx = CallContext {
        actor_id: ACTOR.into(),
        link_name: "default".into(),
    };
    let err = provider
        .handle_invocation(&ctx, "HandleRequest", vec![])
        .await
        .unwrap_err();
    assert!(
        matches!(err, ProviderError::UnknownOperation { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn shutdown_closes_every_listener() {
    let s = setup(&[]).await;
    s.provider.shutdown().await;
    assert!(TcpStream::connect(s.addr).await.is_err());
}
