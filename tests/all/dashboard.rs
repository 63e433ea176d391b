//! The lattice dashboard (crate `nimbus-dashboard`) against real hosts: two hosts on one
//! nats-server seen through the control interface and the `get.{id}.stats` extension,
//! call counts that rise by exactly the calls made, the server-sent event stream, a
//! standalone host read in process, and bad inputs (unknown paths, writes, a garbage
//! stats request, hosts that do not answer stats or answer garbage, a port in use).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use nimbus_core::ctl::{Host as HostRecord, HostInventory};
use nimbus_core::keys::{KeyKind, KeyPair};
use nimbus_core::subjects::Subjects;
use nimbus_dashboard::{Dashboard, DashboardOptions, LocalSource, NatsSource};
use nimbus_lattice::{ErrorKind, Host};
use nimbus_tests::servers::NatsServer;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::lattice_support::{
    builder, cluster_seed, ctl, echo_actor, lattice_name, provider_key, test_link,
};

/// Rounds every 200 ms, so the tests wait little for a view that shows their calls.
fn options() -> DashboardOptions {
    DashboardOptions {
        refresh: Duration::from_millis(200),
        ..DashboardOptions::default()
    }
}

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

async fn nats_dashboard(nats: &NatsServer, lattice: &str) -> Dashboard {
    let client = nimbus_tests::servers::connect(nats.url()).await.unwrap();
    let source = NatsSource::new(client, lattice).with_timeout(Duration::from_millis(500));
    nimbus_dashboard::start(any_port(), Arc::new(source), options())
        .await
        .unwrap()
}

async fn lattice_host(nats: &NatsServer, lattice: &str, seed: &str) -> Host {
    builder(seed)
        .lattice(lattice)
        .nats(crate::lattice_support::member_nats(nats.url()))
        .collect_metrics(true)
        .build()
        .await
        .unwrap()
}

/// `GET path` on the dashboard: status and body.
async fn get(dashboard: &Dashboard, method: &str, path: &str) -> (u16, String) {
    let base = format!("http://{}", dashboard.addr());
    let (method, path) = (method.to_string(), path.to_string());
    let response = tokio::task::spawn_blocking(move || {
        nimbus_tests::http::send(&base, &method, &path, &[], None)
    })
    .await
    .unwrap()
    .unwrap();
    (response.status, response.text())
}

async fn snapshot(dashboard: &Dashboard) -> Value {
    let (status, body) = get(dashboard, "GET", "/api/snapshot").await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

/// Polls `/api/snapshot` until `ready` holds (15 s at most); returns that view.
async fn wait_view(dashboard: &Dashboard, what: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let view = snapshot(dashboard).await;
        if ready(&view) {
            return view;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the dashboard never showed {what}; last view: {view:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn host<'a>(view: &'a Value, id: &str) -> Option<&'a Value> {
    view["hosts"].as_array()?.iter().find(|h| h["id"] == id)
}

fn actor<'a>(host: &'a Value, id: &str) -> Option<&'a Value> {
    host["actors"].as_array()?.iter().find(|a| a["id"] == id)
}

fn operation<'a>(view: &'a Value, actor: &str, op: &str) -> Option<&'a Value> {
    view["operations"]
        .as_array()?
        .iter()
        .find(|o| o["actor_id"] == actor && o["operation"] == op)
}

fn calls(view: &Value, actor: &str, op: &str) -> u64 {
    operation(view, actor, op).map_or(0, |o| o["calls"].as_u64().unwrap())
}

/// A call from `from` that may find no responder for a moment (the actor's subscription
/// on its way through the server); such calls never reach a host and are not counted.
async fn call_remote(from: &Host, actor: &str, op: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match from.call_actor(actor, op, b"hi".to_vec()).await {
            Ok(_) => return,
            Err(e)
                if e.kind() == ErrorKind::NoResponders
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("remote call of {op}: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_of_a_two_host_lattice_lists_both_hosts_their_actors_instances_and_a_link() {
    let nats = NatsServer::start();
    let (seed, lattice) = (cluster_seed(), lattice_name("dash-hosts"));
    let one = lattice_host(&nats, &lattice, &seed).await;
    let two = lattice_host(&nats, &lattice, &seed).await;
    let a = echo_actor(None, None);
    let b = echo_actor(None, None);
    one.start_actor(a.bytes, 2).await.unwrap();
    two.start_actor(b.bytes, 1).await.unwrap();
    let provider = provider_key();
    one.put_link(test_link(&a.id, &provider)).await.unwrap();
    let dashboard = nats_dashboard(&nats, &lattice).await;

    let view = wait_view(
        &dashboard,
        "both hosts with their actors and the link",
        |v| {
            // Under load a host's stats reply may miss a round (that round says why):
            // wait for a round where both hosts answered everything.
            let on = |h: &Host, actor_id: &str| {
                host(v, h.id()).is_some_and(|h| {
                    actor(h, actor_id).is_some()
                        && h["stats_error"].is_null()
                        && h["metrics"] == true
                })
            };
            on(&one, &a.id)
                && on(&two, &b.id)
                && v["links"].as_array().is_some_and(|l| !l.is_empty())
        },
    )
    .await;
    assert_eq!(view["mode"], "lattice");
    assert_eq!(view["lattice"], lattice.as_str());
    assert_eq!(view["hosts"].as_array().unwrap().len(), 2, "{view:#}");
    let first = host(&view, one.id()).unwrap();
    let second = host(&view, two.id()).unwrap();
    for h in [first, second] {
        assert_eq!(h["metrics"], true, "{h:#}");
        assert_eq!(h["stats_error"], Value::Null, "{h:#}");
    }
    let a_view = actor(first, &a.id).unwrap();
    assert_eq!(a_view["name"], "echo");
    assert_eq!(a_view["instances"], 2);
    assert_eq!(
        a_view["live"], 2,
        "the pool's warm instances, from the stats"
    );
    assert_eq!(actor(second, &b.id).unwrap()["instances"], 1);
    assert!(
        actor(first, &b.id).is_none(),
        "actor b runs on host two only"
    );
    let links = view["links"].as_array().unwrap();
    assert_eq!(links.len(), 1, "{links:#?}");
    assert_eq!(links[0]["actor_id"], a.id.as_str());
    assert_eq!(links[0]["actor_name"], "echo");
    assert_eq!(links[0]["provider_id"], provider.as_str());
    assert_eq!(links[0]["contract_id"], "nimbus:test");
    dashboard.stop();
    one.stop().await.unwrap();
    two.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_call_counts_rise_by_the_calls_made_and_errors_are_counted() {
    let nats = NatsServer::start();
    let (seed, lattice) = (cluster_seed(), lattice_name("dash-calls"));
    let one = lattice_host(&nats, &lattice, &seed).await;
    let two = lattice_host(&nats, &lattice, &seed).await;
    let a = echo_actor(None, None);
    let b = echo_actor(None, None);
    one.start_actor(a.bytes, 1).await.unwrap();
    two.start_actor(b.bytes, 1).await.unwrap();
    let dashboard = nats_dashboard(&nats, &lattice).await;

    // One call first, so the count the dashboard starts from is seen before the rest.
    one.call_actor(&a.id, "Echo", b"x".to_vec()).await.unwrap();
    let before = wait_view(&dashboard, "the first call", |v| {
        calls(v, &a.id, "Echo") == 1
    })
    .await;
    assert_eq!(calls(&before, &a.id, "Fail"), 0);

    const ECHOS: u64 = 7;
    const FAILS: u64 = 3;
    const REMOTE: u64 = 4;
    for _ in 0..ECHOS {
        one.call_actor(&a.id, "Echo", b"x".to_vec()).await.unwrap();
    }
    for _ in 0..FAILS {
        one.call_actor(&a.id, "Fail", Vec::new()).await.unwrap_err();
    }
    // Actor b runs on host two only: these calls go over NATS and are counted there.
    for _ in 0..REMOTE {
        call_remote(&one, &b.id, "Echo").await;
    }
    let after = wait_view(&dashboard, "every call counted", |v| {
        calls(v, &a.id, "Echo") == 1 + ECHOS
            && calls(v, &a.id, "Fail") == FAILS
            && calls(v, &b.id, "Echo") == REMOTE
    })
    .await;
    let echo = operation(&after, &a.id, "Echo").unwrap();
    assert_eq!(echo["errors"], 0);
    assert_eq!(echo["hosts"], 1);
    assert!(
        echo["p50_ms"].as_f64().is_some(),
        "a window with calls has a p50: {echo:#}"
    );
    assert!(echo["p99_ms"].as_f64().unwrap() >= echo["p50_ms"].as_f64().unwrap());
    assert!(echo["rate_per_sec"].as_f64().unwrap() > 0.0, "{echo:#}");
    let fail = operation(&after, &a.id, "Fail").unwrap();
    assert_eq!(fail["errors"], FAILS);
    assert_eq!(fail["window_errors"], FAILS);
    // The per-host actor rows add up the same calls.
    let a_row = actor(host(&after, one.id()).unwrap(), &a.id).unwrap();
    assert_eq!(a_row["calls"], 1 + ECHOS + FAILS);
    assert_eq!(a_row["errors"], FAILS);
    let b_row = actor(host(&after, two.id()).unwrap(), &b.id).unwrap();
    assert_eq!(b_row["calls"], REMOTE);
    dashboard.stop();
    one.stop().await.unwrap();
    two.stop().await.unwrap();
}

/// Reads server-sent events from `/api/stream` until one's view satisfies `ready`.
async fn next_streamed(
    lines: &mut (impl tokio::io::AsyncBufRead + Unpin),
    ready: impl Fn(&Value) -> bool,
) -> Value {
    let read = async {
        let mut event = String::new();
        loop {
            let mut line = String::new();
            assert!(
                lines.read_line(&mut line).await.unwrap() > 0,
                "the stream ended"
            );
            let line = line.trim_end();
            if let Some(name) = line.strip_prefix("event: ") {
                event = name.to_string();
            } else if let Some(data) = line.strip_prefix("data: ") {
                assert_eq!(event, "snapshot");
                let view: Value = serde_json::from_str(data).unwrap();
                if ready(&view) {
                    return view;
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(15), read)
        .await
        .expect("no streamed view showed the calls within 15 s")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_stream_pushes_views_that_follow_the_calls() {
    let nats = NatsServer::start();
    let (seed, lattice) = (cluster_seed(), lattice_name("dash-sse"));
    let one = lattice_host(&nats, &lattice, &seed).await;
    let a = echo_actor(None, None);
    one.start_actor(a.bytes, 1).await.unwrap();
    let dashboard = nats_dashboard(&nats, &lattice).await;

    let mut stream = tokio::net::TcpStream::connect(dashboard.addr())
        .await
        .unwrap();
    stream
        .write_all(b"GET /api/stream HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let mut lines = BufReader::new(stream);
    let mut head = String::new();
    lines.read_line(&mut head).await.unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let mut content_type = None;
    loop {
        let mut line = String::new();
        lines.read_line(&mut line).await.unwrap();
        if line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("content-type")
        {
            content_type = Some(v.trim().to_string());
        }
    }
    assert_eq!(content_type.as_deref(), Some("text/event-stream"));
    // The body is chunked: chunk-size lines come between the event lines and are skipped.
    let first = next_streamed(&mut lines, |v| host(v, one.id()).is_some()).await;
    assert_eq!(calls(&first, &a.id, "Echo"), 0);
    for _ in 0..5 {
        one.call_actor(&a.id, "Echo", b"x".to_vec()).await.unwrap();
    }
    let later = next_streamed(&mut lines, |v| calls(v, &a.id, "Echo") == 5).await;
    assert!(later["generated_at_ms"].as_u64() > first["generated_at_ms"].as_u64());
    dashboard.stop();
    one.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_of_a_standalone_host_shows_its_calls_and_events_and_refuses_bad_requests() {
    let host = Arc::new(
        builder(&cluster_seed())
            .collect_metrics(true)
            .build()
            .await
            .unwrap(),
    );
    let dashboard = nimbus_dashboard::start(
        any_port(),
        Arc::new(LocalSource::new(host.clone())),
        options(),
    )
    .await
    .unwrap();
    let a = echo_actor(None, None);
    host.start_actor(a.bytes, 1).await.unwrap();
    for _ in 0..3 {
        host.call_actor(&a.id, "Echo", b"x".to_vec()).await.unwrap();
    }
    let view = wait_view(&dashboard, "the 3 calls and the actor's start", |v| {
        calls(v, &a.id, "Echo") == 3
            && v["events"]
                .as_array()
                .is_some_and(|e| e.iter().any(|e| e["kind"] == "actors_started"))
    })
    .await;
    assert_eq!(view["mode"], "standalone");
    assert_eq!(view["hosts"].as_array().unwrap().len(), 1);

    let (status, page) = get(&dashboard, "GET", "/").await;
    assert_eq!(status, 200);
    assert!(page.contains("<script src=\"/app.js\">"), "{page}");
    let (status, body) = get(&dashboard, "GET", "/no/such/page").await;
    assert_eq!(status, 404);
    assert!(
        body.contains("/api/snapshot"),
        "the 404 says where things are: {body}"
    );
    let (status, body) = get(&dashboard, "POST", "/api/snapshot").await;
    assert_eq!(status, 405);
    assert!(body.contains("read-only"), "{body}");

    // A port in use: the error names the address and what to do.
    let err = nimbus_dashboard::bind(dashboard.addr()).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains(&dashboard.addr().to_string()), "{text}");
    assert!(text.contains("give another address"), "{text}");
    dashboard.stop();
    host.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_query_answers_the_hosts_counters_and_refuses_a_garbage_body() {
    let nats = NatsServer::start();
    let (seed, lattice) = (cluster_seed(), lattice_name("dash-stats"));
    let one = lattice_host(&nats, &lattice, &seed).await;
    let a = echo_actor(None, None);
    one.start_actor(a.bytes, 1).await.unwrap();
    one.call_actor(&a.id, "Echo", b"x".to_vec()).await.unwrap();
    let client = nimbus_tests::servers::connect(nats.url()).await.unwrap();
    let subjects = Subjects::for_lattice(&lattice);

    let reply = ctl(&client, subjects.ctl_get_stats(one.id()), b"{not json").await;
    assert_eq!(reply["accepted"], false, "{reply}");
    let error = reply["error"].as_str().unwrap();
    assert!(error.contains("invalid JSON for `get.stats`"), "{error}");

    let ctl_client = nimbus_ctl::CtlClient::new(client.clone(), &lattice);
    let stats = ctl_client.get_stats(one.id()).await.unwrap();
    assert_eq!(stats.host_id, one.id());
    assert!(stats.metrics);
    let echo = stats
        .operations
        .iter()
        .find(|o| o.actor == a.id && o.operation == "Echo")
        .unwrap();
    assert_eq!(echo.calls, 1);
    assert_eq!(echo.buckets.len(), stats.bucket_bounds_ns.len() + 1);
    assert_eq!(echo.buckets.iter().sum::<u64>(), 1);

    let nobody = KeyPair::generate(KeyKind::Server).public_key();
    let err = ctl_client.get_stats(&nobody).await.unwrap_err();
    assert!(
        matches!(err, nimbus_ctl::CtlError::NotFound { .. }),
        "{err}"
    );
    one.stop().await.unwrap();
}

/// A host that answers `ping.hosts` and its inventory like a host, and its stats subject
/// with `stats_reply` (or not at all).
async fn fake_host(
    client: &async_nats::Client,
    subjects: &Subjects,
    stats_reply: Option<&'static [u8]>,
) -> String {
    let id = KeyPair::generate(KeyKind::Server).public_key();
    let record = serde_json::to_vec(&HostRecord {
        id: id.clone(),
        friendly_name: "fake".into(),
        ..HostRecord::default()
    })
    .unwrap();
    let inventory = serde_json::to_vec(&HostInventory {
        host_id: id.clone(),
        friendly_name: "fake".into(),
        ..HostInventory::default()
    })
    .unwrap();
    let mut subs = vec![
        (
            client.subscribe(subjects.ctl_ping_hosts()).await.unwrap(),
            record,
        ),
        (
            client
                .subscribe(subjects.ctl_get_inventory(&id))
                .await
                .unwrap(),
            inventory,
        ),
    ];
    if let Some(reply) = stats_reply {
        subs.push((
            client.subscribe(subjects.ctl_get_stats(&id)).await.unwrap(),
            reply.to_vec(),
        ));
    }
    for (mut sub, reply) in subs {
        let client = client.clone();
        tokio::spawn(async move {
            while let Some(message) = sub.next().await {
                if let Some(to) = message.reply {
                    let _ = client.publish(to, reply.clone().into()).await;
                }
            }
        });
    }
    client.flush().await.unwrap();
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_that_do_not_answer_stats_or_answer_garbage_do_not_break_the_snapshot() {
    let nats = NatsServer::start();
    let (seed, lattice) = (cluster_seed(), lattice_name("dash-fakes"));
    let one = lattice_host(&nats, &lattice, &seed).await;
    let a = echo_actor(None, None);
    one.start_actor(a.bytes, 1).await.unwrap();
    one.call_actor(&a.id, "Echo", b"x".to_vec()).await.unwrap();
    let client = nimbus_tests::servers::connect(nats.url()).await.unwrap();
    let subjects = Subjects::for_lattice(&lattice);
    let silent = fake_host(&client, &subjects, None).await;
    let garbage = fake_host(&client, &subjects, Some(b"\x00 garbage")).await;
    let dashboard = nats_dashboard(&nats, &lattice).await;

    let stats_error = |v: &Value, id: &str| -> String {
        host(v, id)
            .and_then(|h| h["stats_error"].as_str())
            .unwrap_or_default()
            .to_string()
    };
    // A round where every host answered in time (under load a reply may miss one).
    let view = wait_view(&dashboard, "three hosts and the real one's call", |v| {
        v["hosts"].as_array().is_some_and(|h| h.len() == 3)
            && calls(v, &a.id, "Echo") == 1
            && stats_error(v, &silent).contains("does not answer")
            && stats_error(v, &garbage).contains("bad reply")
    })
    .await;
    let real = host(&view, one.id()).unwrap();
    assert_eq!(real["stats_error"], Value::Null);
    assert_eq!(actor(real, &a.id).unwrap()["calls"], 1);
    let silent_view = host(&view, &silent).unwrap();
    let error = silent_view["stats_error"].as_str().unwrap();
    assert!(error.contains("does not answer the stats query"), "{error}");
    let garbage_view = host(&view, &garbage).unwrap();
    let error = garbage_view["stats_error"].as_str().unwrap();
    assert!(
        error.contains("bad reply") && error.contains("invalid JSON"),
        "{error}"
    );
    assert_eq!(garbage_view["metrics"], false);
    assert!(view["problems"].as_array().unwrap().is_empty(), "{view:#}");
    dashboard.stop();
    one.stop().await.unwrap();
}
