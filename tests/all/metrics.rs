//! The host's Prometheus `/metrics`: fetched over HTTP, parsed with a Prometheus text
//! parser, its counters checked against the calls made (in process and over NATS, some
//! failing) and its provider restarts against a `kill -9` of a provider process.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use nimbus_core::link::LinkDefinition;
use nimbus_lattice::{ErrorKind, Host};
use nimbus_tests::servers::NatsServer;
use prometheus_parse::{Sample, Scrape, Value};

use crate::lattice_support::{builder, cluster_seed, echo_actor, lattice_name, provider_key};

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// `GET /metrics` of `host`, parsed.
async fn scrape(host: &Host) -> Scrape {
    let base = format!("http://{}", host.metrics_addr().expect("metrics are on"));
    let response = tokio::task::spawn_blocking(move || nimbus_tests::http::get(&base, "/metrics"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(response.status, 200, "{}", response.text());
    assert!(
        response
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/plain; version=0.0.4")),
        "{:?}",
        response.headers
    );
    let text = response.text();
    Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap()
}

/// The sample called `metric` whose labels include all of `labels`.
fn sample<'a>(scrape: &'a Scrape, metric: &str, labels: &[(&str, &str)]) -> Option<&'a Sample> {
    scrape
        .samples
        .iter()
        .find(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
}

fn value(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    match sample(scrape, metric, labels).map(|s| &s.value) {
        Some(Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v)) => *v,
        other => panic!("no {metric} {labels:?} in the scrape (found {other:?})"),
    }
}

/// The `+Inf` bucket of a histogram (every observation).
fn histogram_total(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    match sample(scrape, metric, labels).map(|s| &s.value) {
        Some(Value::Histogram(buckets)) => {
            let mut counts: Vec<f64> = buckets.iter().map(|b| b.count).collect();
            let sorted = {
                let mut c = counts.clone();
                c.sort_by(f64::total_cmp);
                c
            };
            assert_eq!(counts, sorted, "buckets are cumulative");
            buckets
                .iter()
                .find(|b| b.less_than.is_infinite())
                .map(|b| b.count)
                .unwrap_or_else(|| counts.pop().unwrap_or_default())
        }
        other => panic!("no histogram {metric} {labels:?} (found {other:?})"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_calls_errors_and_latency_per_actor_and_operation() {
    let nats = NatsServer::start();
    let seed = cluster_seed();
    let lattice = lattice_name("metrics-calls");
    let host = builder(&seed)
        .lattice(&lattice)
        .nats(crate::lattice_support::member_nats(nats.url()))
        .metrics_addr(any_port())
        .build()
        .await
        .unwrap();
    // A second host without metrics: its calls to the actor arrive over NATS.
    let caller = builder(&seed)
        .lattice(&lattice)
        .nats(crate::lattice_support::member_nats(nats.url()))
        .build()
        .await
        .unwrap();
    assert_eq!(caller.metrics_addr(), None);
    assert_eq!(caller.metrics_text(), None);
    let actor = echo_actor(None, None);
    host.start_actor(actor.bytes, 1).await.unwrap();

    const LOCAL_OK: usize = 17;
    const REMOTE_OK: usize = 5;
    const FAILS: usize = 6;
    for i in 0..LOCAL_OK {
        let out = host
            .call_actor(&actor.id, "Echo", format!("m{i}").into_bytes())
            .await
            .unwrap();
        assert_eq!(out, format!("m{i}").into_bytes());
    }
    // The first remote call may find no responder yet (the subscription is on its way
    // through the server); such a call never reaches the host, so it is not counted.
    let mut remote_ok = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while remote_ok < REMOTE_OK {
        match caller
            .call_actor(&actor.id, "Echo", b"remote".to_vec())
            .await
        {
            Ok(out) => {
                assert_eq!(out, b"remote");
                remote_ok += 1;
            }
            Err(e)
                if e.kind() == ErrorKind::NoResponders
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("remote call: {e}"),
        }
    }
    for _ in 0..FAILS {
        host.call_actor(&actor.id, "Fail", Vec::new())
            .await
            .unwrap_err();
    }
    // A call of an operation the actor does not have fails too, under its own label.
    host.call_actor(&actor.id, "NoSuchOperation", Vec::new())
        .await
        .unwrap_err();

    let scrape = scrape(&host).await;
    let echo = [("actor", actor.id.as_str()), ("operation", "Echo")];
    let fail = [("actor", actor.id.as_str()), ("operation", "Fail")];
    let missing = [
        ("actor", actor.id.as_str()),
        ("operation", "NoSuchOperation"),
    ];
    let echo_calls = (LOCAL_OK + REMOTE_OK) as f64;
    assert_eq!(
        value(&scrape, "nimbus_actor_calls_total", &echo),
        echo_calls
    );
    assert_eq!(value(&scrape, "nimbus_actor_call_errors_total", &echo), 0.0);
    assert_eq!(
        value(&scrape, "nimbus_actor_calls_total", &fail),
        FAILS as f64
    );
    assert_eq!(
        value(&scrape, "nimbus_actor_call_errors_total", &fail),
        FAILS as f64
    );
    assert_eq!(value(&scrape, "nimbus_actor_calls_total", &missing), 1.0);
    assert_eq!(
        value(&scrape, "nimbus_actor_call_errors_total", &missing),
        1.0
    );
    for (labels, n) in [(&echo, echo_calls), (&fail, FAILS as f64)] {
        assert_eq!(
            histogram_total(&scrape, "nimbus_actor_call_duration_seconds", labels),
            n
        );
        assert_eq!(
            value(&scrape, "nimbus_actor_call_duration_seconds_count", labels),
            n
        );
        assert!(value(&scrape, "nimbus_actor_call_duration_seconds_sum", labels) > 0.0);
    }
    // Every sample names its host; nothing is running a call now; one instance is up.
    assert!(
        scrape
            .samples
            .iter()
            .all(|s| s.labels.get("host") == Some(host.id()))
    );
    let this_actor = [("actor", actor.id.as_str())];
    assert_eq!(
        value(&scrape, "nimbus_actor_instances_in_use", &this_actor),
        0.0
    );
    assert!(value(&scrape, "nimbus_actor_instances_live", &this_actor) >= 1.0);

    // Anything else on the port is a 404.
    let base = format!("http://{}", host.metrics_addr().unwrap());
    let other = tokio::task::spawn_blocking(move || nimbus_tests::http::get(&base, "/"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(other.status, 404);

    caller.stop().await.unwrap();
    host.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_address_in_use_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let err = builder(&cluster_seed())
        .metrics_addr(addr)
        .build()
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&format!("cannot serve metrics on {addr}")),
        "{text}"
    );
}

/// The pids of this process's children running `binary`.
fn children_running(binary: &Path) -> Vec<u32> {
    let me = std::process::id();
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // `pid (comm) state ppid ...`; comm may hold spaces, so read after the last `)`.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid != Some(me) {
            continue;
        }
        if std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|exe| exe == binary) {
            pids.push(pid);
        }
    }
    pids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_provider_restarts_after_kill_9() {
    const CONTRACT: &str = nimbus_echo_provider::CONTRACT_ID;
    let nats = NatsServer::start();
    // A copy of the provider binary of this test alone, so its process is told apart
    // from those other tests of this binary start.
    let dir = tempfile::tempdir().unwrap();
    let binary = dir.path().join("metrics-echo-provider");
    std::fs::copy(env!("CARGO_BIN_EXE_nimbus-test-echo-provider"), &binary).unwrap();
    let binary = binary.canonicalize().unwrap();
    let pid = provider_key();
    let host = builder(&cluster_seed())
        .lattice(lattice_name("metrics-restarts"))
        .nats(crate::lattice_support::member_nats(nats.url()))
        .provider_executable("echo-bin", pid.clone(), CONTRACT, &binary)
        .metrics_addr(any_port())
        .build()
        .await
        .unwrap();
    let actor = echo_actor(Some(&[CONTRACT]), None);
    host.start_actor(actor.bytes, 1).await.unwrap();
    host.put_link(LinkDefinition::new(
        &actor.id,
        &pid,
        "default",
        CONTRACT,
        HashMap::new(),
    ))
    .await
    .unwrap();
    host.launch_provider("echo-bin", "default", None)
        .await
        .unwrap();
    let labels = [("provider", pid.as_str()), ("link_name", "default")];

    let first = wait_until(|| match children_running(&binary)[..] {
        [one] => Some(one),
        _ => None,
    })
    .await
    .expect("one provider process");
    // Not restarted yet: no count (or zero).
    let before = scrape(&host).await;
    assert!(
        sample(&before, "nimbus_provider_restarts_total", &labels)
            .is_none_or(|s| matches!(s.value, Value::Counter(v) if v == 0.0))
    );

    // Each kill is one restart by the host's supervisor, counted once.
    let mut victim = first;
    for round in 1..=2u32 {
        let status = std::process::Command::new("kill")
            .args(["-9", &victim.to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -9 {victim}");
        let mut last = 0.0;
        for _ in 0..400 {
            let scrape = scrape(&host).await;
            if let Some(Value::Counter(v)) =
                sample(&scrape, "nimbus_provider_restarts_total", &labels).map(|s| &s.value)
            {
                last = *v;
                if last >= f64::from(round) {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            last,
            f64::from(round),
            "restarts counted after kill {round}"
        );
        let killed = victim;
        victim = wait_until(|| match children_running(&binary)[..] {
            [one] if one != killed => Some(one),
            _ => None,
        })
        .await
        .expect("a replacement process");
    }
    host.stop().await.unwrap();
}

/// Polls `f` every 50 ms for up to 20 s.
async fn wait_until<T>(f: impl Fn() -> Option<T>) -> Option<T> {
    for _ in 0..400 {
        if let Some(v) = f() {
            return Some(v);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}
