//! The shared harness starts real servers on ports their own process holds, joins NATS
//! clusters with working routes, refuses to restart a server whose port someone else took,
//! and kills them.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use futures_util::StreamExt;
use nimbus_tests::servers::{NatsCluster, NatsServer, RedisServer};

fn accepts(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// Whether `f` panics, and with what message.
fn panic_message(f: impl FnOnce() + std::panic::UnwindSafe) -> Option<String> {
    std::panic::catch_unwind(f).err().map(|e| {
        e.downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    })
}

/// The server id nats-server sends first on a client connection (its `INFO` line).
fn nats_server_id(port: u16) -> String {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut info = Vec::new();
    let mut byte = [0u8; 1];
    while !info.ends_with(b"\r\n") {
        conn.read_exact(&mut byte).unwrap();
        info.push(byte[0]);
    }
    let json: serde_json::Value =
        serde_json::from_slice(info.strip_prefix(b"INFO ").unwrap()).unwrap();
    json["server_id"].as_str().unwrap().to_string()
}

#[test]
fn nats_server_starts_stops_and_restarts_on_the_same_port() {
    let mut nats = NatsServer::start();
    let port = nats.port();
    assert!(
        accepts(port),
        "nats-server is not listening on {}",
        nats.url()
    );
    let first = nats_server_id(port);
    nats.stop();
    assert!(!nats.is_running());
    assert!(!accepts(port), "nats-server still listening after stop");
    nats.restart();
    assert_eq!(nats.port(), port);
    // A new process (a new server id) answers on the old port.
    let second = nats_server_id(port);
    assert_ne!(first, second, "the same server answered after a restart");
}

#[test]
fn restarting_nats_on_a_port_someone_took_fails_loudly() {
    let mut nats = NatsServer::start();
    let port = nats.port();
    nats.stop();
    let _squatter = TcpListener::bind(("127.0.0.1", port)).expect("the stopped port is free");
    let message = panic_message(std::panic::AssertUnwindSafe(|| nats.restart()))
        .expect("restart on a taken port must panic");
    assert!(
        message.contains("could not start again") && message.contains("address already in use"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_cluster_members_route_to_each_other() {
    let cluster = NatsCluster::start(3);
    assert_eq!(cluster.urls().len(), 3);
    // Every member has a route to both others (`/routez`)...
    for s in &cluster.servers {
        let mut others: Vec<String> = cluster
            .servers
            .iter()
            .filter(|o| o.name() != s.name())
            .map(|o| o.name().unwrap().to_string())
            .collect();
        others.sort();
        assert_eq!(s.route_peers().unwrap(), others, "{}", s.log());
    }
    // ...and the routes carry messages: published on the first, received on the last.
    let first = nimbus_tests::servers::connect(cluster.servers[0].url())
        .await
        .unwrap();
    let last = nimbus_tests::servers::connect(cluster.servers[2].url())
        .await
        .unwrap();
    let mut sub = last.subscribe("wasmbus.rpc.routes.check").await.unwrap();
    last.flush().await.unwrap();
    // The subscription's interest reaches the first server shortly after the flush.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        first
            .publish("wasmbus.rpc.routes.check", "across".into())
            .await
            .unwrap();
        first.flush().await.unwrap();
        match tokio::time::timeout(Duration::from_millis(200), sub.next()).await {
            Ok(Some(msg)) => {
                assert_eq!(&msg.payload[..], b"across");
                break;
            }
            Ok(None) => panic!("subscription on the last server ended"),
            Err(_) => assert!(
                tokio::time::Instant::now() < deadline,
                "a message published on n0 never reached a subscriber on n2"
            ),
        }
    }
}

#[test]
fn redis_server_answers_ping_as_the_harness_child() {
    let redis = RedisServer::start();
    let mut conn = TcpStream::connect(("127.0.0.1", redis.port())).unwrap();
    conn.write_all(b"PING\r\n").unwrap();
    let mut buf = [0u8; 7];
    conn.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"+PONG\r\n");
    assert_eq!(redis.url(), format!("redis://127.0.0.1:{}", redis.port()));
    assert!(redis.pid().is_some());
}

#[test]
fn restarting_redis_on_a_port_someone_took_fails_loudly() {
    let mut redis = RedisServer::start();
    let port = redis.port();
    redis.restart();
    assert_eq!(redis.port(), port);
    assert!(accepts(port));
    redis.stop();
    assert!(!accepts(port), "redis-server still listening after stop");
    let _squatter = TcpListener::bind(("127.0.0.1", port)).expect("the stopped port is free");
    let message = panic_message(std::panic::AssertUnwindSafe(|| redis.restart()))
        .expect("restart on a taken port must panic");
    assert!(
        message.contains("could not start again") && message.contains("Address already in use"),
        "{message}"
    );
}
