//! The exporter against a receiver of this test: spans arrive as OTLP/HTTP JSON on
//! `/v1/traces` with the process's resource, parent links and the propagated context;
//! a full queue drops (and counts) spans without making the caller wait. One test in this
//! file: the exporter is process-wide.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nimbus_telemetry::{Config, Span, SpanKind, TraceParent};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Accepts POSTs, keeps (path, JSON body) of each, answers 200.
async fn receiver() -> (String, Arc<Mutex<Vec<(String, Value)>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let got: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
    let keep = got.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let keep = keep.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                let (end, len) = loop {
                    let n = stream.read(&mut chunk).await.unwrap();
                    assert!(n > 0, "connection closed mid-request");
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                        let len: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse().ok())
                            .unwrap();
                        break (end + 4, len);
                    }
                };
                while buf.len() < end + len {
                    let n = stream.read(&mut chunk).await.unwrap();
                    assert!(n > 0, "connection closed mid-body");
                    buf.extend_from_slice(&chunk[..n]);
                }
                let head = String::from_utf8_lossy(&buf[..end]).to_string();
                assert!(
                    head.to_ascii_lowercase()
                        .contains("content-type: application/json"),
                    "{head}"
                );
                let path = head.split_whitespace().nth(1).unwrap().to_string();
                let body = serde_json::from_slice(&buf[end..end + len]).unwrap();
                keep.lock().unwrap().push((path, body));
                stream
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                    .await
                    .unwrap();
            });
        }
    });
    (format!("http://{addr}"), got)
}

fn spans_of(got: &[(String, Value)]) -> Vec<Value> {
    got.iter()
        .flat_map(|(_, body)| {
            body["resourceSpans"][0]["scopeSpans"][0]["spans"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_the_collector_and_a_full_queue_drops_without_waiting() {
    let (endpoint, got) = receiver().await;
    let mut config = Config::new(&nimbus_telemetry::traces_url(&endpoint), "export-test").unwrap();
    config.max_queue_size = 8;
    // Long enough that nothing leaves before the flush below unless a batch fills; the
    // exporter holds at most queue + batch spans between its POSTs.
    config.schedule_delay = Duration::from_secs(30);
    config.max_export_batch_size = 4;
    nimbus_telemetry::install(config).unwrap();
    assert!(nimbus_telemetry::enabled());

    // A parent and a child, the child started under the parent's scope.
    let incoming = TraceParent::from_headers(
        Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        Some("vendor=x"),
    );
    let parent = Span::start("parent", SpanKind::Server, incoming);
    let ctx = parent.context().unwrap();
    assert_eq!(ctx.tracestate.as_deref(), Some("vendor=x"));
    let mut child = nimbus_telemetry::scope(Some(ctx.clone()), async {
        Span::start_in_current("child", SpanKind::Client)
    })
    .await;
    child.set_error("it failed");
    drop(child);
    drop(parent);
    // An unsampled parent is passed on, not recorded.
    let unsampled = TraceParent::from_headers(
        Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"),
        None,
    );
    let quiet = Span::start("unsampled", SpanKind::Server, unsampled.clone());
    assert!(!quiet.is_recording());
    assert_eq!(quiet.context(), unsampled);
    drop(quiet);

    assert!(nimbus_telemetry::flush(Duration::from_secs(20)).await);
    let spans = spans_of(&got.lock().unwrap());
    assert_eq!(spans.len(), 2, "{spans:#?}");
    let by_name = |n: &str| spans.iter().find(|s| s["name"] == n).unwrap().clone();
    let (p, c) = (by_name("parent"), by_name("child"));
    assert_eq!(p["traceId"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(p["parentSpanId"], "00f067aa0ba902b7");
    assert_eq!(c["traceId"], p["traceId"]);
    assert_eq!(c["parentSpanId"], p["spanId"]);
    assert_eq!(p["kind"], 2);
    assert_eq!(c["kind"], 3);
    assert_eq!(c["status"]["code"], 2);
    let start: u64 = p["startTimeUnixNano"].as_str().unwrap().parse().unwrap();
    let end: u64 = p["endTimeUnixNano"].as_str().unwrap().parse().unwrap();
    assert!(start > 0 && end >= start);
    {
        let got = got.lock().unwrap();
        let (path, body) = &got[0];
        assert_eq!(path, "/v1/traces");
        let resource = &body["resourceSpans"][0]["resource"]["attributes"];
        let attr = |k: &str| {
            resource
                .as_array()
                .unwrap()
                .iter()
                .find(|a| a["key"] == k)
                .map(|a| a["value"].clone())
        };
        assert_eq!(attr("service.name").unwrap()["stringValue"], "export-test");
        assert_eq!(
            attr("process.pid").unwrap()["intValue"],
            std::process::id().to_string()
        );
    }

    // 1,000 spans into a queue of 8 (plus a batch of 4 the exporter holds): spans are
    // dropped and counted, and submitting never waits for the collector.
    let before = nimbus_telemetry::stats().unwrap();
    let started = Instant::now();
    for _ in 0..1000 {
        drop(Span::start("burst", SpanKind::Internal, None));
    }
    let burst = started.elapsed();
    let after = nimbus_telemetry::stats().unwrap();
    assert_eq!(after.submitted - before.submitted, 1000);
    let dropped = after.dropped - before.dropped;
    assert!(dropped > 0, "{after:?}");
    // Generous: 1,000 non-waiting submits take well under a millisecond each.
    assert!(burst < Duration::from_secs(5), "{burst:?}");
    assert!(nimbus_telemetry::flush(Duration::from_secs(20)).await);
    let exported = nimbus_telemetry::stats().unwrap().exported;
    assert_eq!(exported, 2 + 1000 - dropped);
    assert_eq!(nimbus_telemetry::stats().unwrap().failed, 0);
}
