//! The shared harness starts real servers that accept connections, and kills them.

use std::net::TcpStream;

use nimbus_tests::servers::{NatsCluster, NatsServer, RedisServer};

fn accepts(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
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
    nats.stop();
    assert!(!accepts(port), "nats-server still listening after stop");
    nats.restart();
    assert!(accepts(port), "nats-server did not come back on {port}");
}

#[test]
fn nats_cluster_members_all_listen() {
    let cluster = NatsCluster::start(3);
    let urls = cluster.urls();
    assert_eq!(urls.len(), 3);
    for s in &cluster.servers {
        assert!(accepts(s.port()));
    }
}

#[test]
fn redis_server_answers_ping() {
    use std::io::{Read, Write};
    let redis = RedisServer::start();
    let port: u16 = redis.url().rsplit(':').next().unwrap().parse().unwrap();
    let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
    conn.write_all(b"PING\r\n").unwrap();
    let mut buf = [0u8; 7];
    conn.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"+PONG\r\n");
}
