//! The host's Prometheus metrics (`HostConfig::metrics_addr`, off by default): per actor
//! and operation the calls, the failed calls and a latency histogram; per provider the
//! restarts of its process; per actor the instances in use and alive.
//!
//! Calls are recorded in one place, [`crate::router::Router::deliver_local`], which every
//! call run on this host passes (in-process calls and invocations that arrived over
//! NATS). With metrics off the router holds `None` and the recording is that one branch.
//! With metrics on, a call costs two clock reads ([`Clock`]: the CPU's time-stamp counter
//! where the kernel itself trusts it, a third of the cost of two `Instant::now` calls in a
//! VM) and two or three relaxed atomic adds on
//! the [`OpStats`] of its (actor, operation): the stats are found through a lock-free,
//! copy-on-write list kept on the running actor ([`ActorOps`]); only the first call of
//! an operation takes a lock (to create its stats). Instance gauges are read from the
//! registry when `/metrics` is scraped, never on the call path.
//!
//! Encoding is `prometheus-client`'s Prometheus text format, served by a small hyper
//! server (the HTTP stack the host already has).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::{Registry as PromRegistry, Unit};

use crate::registry::{Registry, RunningActor};

/// Upper bounds of the latency buckets, in nanoseconds (1 µs to 10 s; `+Inf` follows).
const BOUNDS_NANOS: [u64; 22] = [
    1_000,
    2_500,
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];

/// At most this many operations of one actor get their own label; later ones are counted
/// under [`OTHER_OPERATION`] (an invocation over NATS may name any operation, and a
/// label per made-up name would let a caller grow the host's memory without bound).
const MAX_OPERATIONS_PER_ACTOR: usize = 128;

/// The operation label of calls past [`MAX_OPERATIONS_PER_ACTOR`].
pub(crate) const OTHER_OPERATION: &str = "_other";

/// The clock of call latencies: raw time-stamp counter ticks scaled to nanoseconds on
/// x86-64 Linux when the kernel's own clock source is the TSC (so it is invariant and
/// synchronised across cores), `Instant` elsewhere.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Clock {
    /// Nanoseconds per tick as a 32.32 fixed-point number.
    Tsc { nanos_per_tick_q32: u64 },
    /// `Instant` nanoseconds since `base`.
    Instant { base: Instant },
}

impl Clock {
    /// Picks and calibrates the clock (a few milliseconds, once per process).
    pub fn new() -> Self {
        static CLOCK: std::sync::OnceLock<Clock> = std::sync::OnceLock::new();
        *CLOCK.get_or_init(|| {
            tsc_clock().unwrap_or(Clock::Instant {
                base: Instant::now(),
            })
        })
    }

    /// A reading, in the clock's own units.
    #[inline]
    pub fn now(&self) -> u64 {
        match self {
            Clock::Tsc { .. } => read_tsc(),
            Clock::Instant { base } => u64::try_from(base.elapsed().as_nanos()).unwrap_or(u64::MAX),
        }
    }

    /// The time between two readings.
    #[inline]
    pub fn between(&self, start: u64, end: u64) -> Duration {
        let units = end.saturating_sub(start);
        match self {
            Clock::Tsc { nanos_per_tick_q32 } => {
                let nanos = (u128::from(units) * u128::from(*nanos_per_tick_q32)) >> 32;
                Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
            }
            Clock::Instant { .. } => Duration::from_nanos(units),
        }
    }
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
#[inline]
#[allow(unsafe_code)]
fn read_tsc() -> u64 {
    // SAFETY: `rdtsc` exists on every x86-64 CPU, reads a register and touches no memory.
    unsafe { std::arch::x86_64::_rdtsc() }
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
#[inline]
fn read_tsc() -> u64 {
    0
}

/// The TSC clock, when the kernel uses the TSC as its clock source; calibrated against
/// `Instant` over a few milliseconds.
fn tsc_clock() -> Option<Clock> {
    if !cfg!(all(target_arch = "x86_64", target_os = "linux")) {
        return None;
    }
    let source =
        std::fs::read_to_string("/sys/devices/system/clocksource/clocksource0/current_clocksource")
            .ok()?;
    if source.trim() != "tsc" {
        return None;
    }
    let (t0, c0) = (Instant::now(), read_tsc());
    std::thread::sleep(Duration::from_millis(5));
    let (c1, t1) = (read_tsc(), Instant::now());
    let ticks = c1.checked_sub(c0).filter(|t| *t > 0)?;
    let nanos = u64::try_from((t1 - t0).as_nanos()).ok()?;
    let nanos_per_tick_q32 = u64::try_from((u128::from(nanos) << 32) / u128::from(ticks)).ok()?;
    (nanos_per_tick_q32 > 0).then_some(Clock::Tsc { nanos_per_tick_q32 })
}

/// The counts of one (actor, operation): relaxed atomics, summed when scraped.
#[derive(Debug, Default)]
pub(crate) struct OpStats {
    /// Calls per latency bucket (not cumulative); the last one is `+Inf`.
    buckets: [AtomicU64; BOUNDS_NANOS.len() + 1],
    sum_nanos: AtomicU64,
    errors: AtomicU64,
}

impl OpStats {
    /// Counts one call that took `elapsed` (and failed, when `failed`).
    #[inline]
    pub fn record(&self, elapsed: Duration, failed: bool) {
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        let bucket = BOUNDS_NANOS
            .iter()
            .position(|bound| nanos <= *bound)
            .unwrap_or(BOUNDS_NANOS.len());
        if let Some(count) = self.buckets.get(bucket) {
            count.fetch_add(1, Ordering::Relaxed);
        }
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
        if failed {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Calls counted so far.
    pub fn calls(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }

    /// Failed calls counted so far.
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }
}

/// The stats of one actor's operations, kept on its [`RunningActor`]: read without a
/// lock (an `ArcSwap` of a short list), written (copied) only when a new operation is
/// first called.
#[derive(Default)]
pub(crate) struct ActorOps {
    ops: ArcSwap<Vec<(Box<str>, Arc<OpStats>)>>,
    adding: Mutex<()>,
}

impl ActorOps {
    /// The stats of `operation`, if it was called before.
    #[inline]
    fn find(&self, operation: &str) -> Option<Arc<OpStats>> {
        self.ops
            .load()
            .iter()
            .find(|(op, _)| &**op == operation)
            .map(|(_, stats)| stats.clone())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OpLabels {
    actor: String,
    operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderLabels {
    provider: String,
    link_name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActorLabels {
    actor: String,
}

/// Every (actor, operation) seen, for scraping; keeps counts across actor restarts.
struct Collected {
    ops: Mutex<BTreeMap<(String, String), Arc<OpStats>>>,
    actors: Arc<Registry>,
}

impl std::fmt::Debug for Collected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collected").finish_non_exhaustive()
    }
}

/// Writes one counter family with a sample per (actor, operation), read by `value`.
fn encode_op_counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    ops: &[(OpLabels, Arc<OpStats>)],
    value: fn(&OpStats) -> u64,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, stats) in ops {
        family
            .encode_family(labels)?
            .encode_counter::<OpLabels, u64, u64>(&value(stats), None)?;
    }
    Ok(())
}

impl prometheus_client::collector::Collector for Collected {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let ops: Vec<_> = self
            .ops
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|((actor, operation), stats)| {
                (
                    OpLabels {
                        actor: actor.clone(),
                        operation: operation.clone(),
                    },
                    stats.clone(),
                )
            })
            .collect();
        encode_op_counter(
            &mut encoder,
            "actor_calls",
            "Calls run on this host, per actor and operation",
            &ops,
            OpStats::calls,
        )?;
        encode_op_counter(
            &mut encoder,
            "actor_call_errors",
            "Calls that failed (an error from the actor, a trap, a timeout, a refused call), per actor and operation",
            &ops,
            OpStats::errors,
        )?;
        {
            let mut latency = encoder.encode_descriptor(
                "actor_call_duration",
                "Time from delivery to result of a call run on this host",
                Some(&Unit::Seconds),
                MetricType::Histogram,
            )?;
            for (labels, stats) in &ops {
                let counts: Vec<u64> = stats
                    .buckets
                    .iter()
                    .map(|b| b.load(Ordering::Relaxed))
                    .collect();
                let buckets: Vec<(f64, u64)> = BOUNDS_NANOS
                    .iter()
                    .map(|b| *b as f64 / 1e9)
                    .chain(std::iter::once(f64::INFINITY))
                    .zip(counts.iter().copied())
                    .collect();
                let count = counts.iter().sum();
                let sum = stats.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
                latency
                    .encode_family(labels)?
                    .encode_histogram::<OpLabels>(sum, count, &buckets, None)?;
            }
        }
        let actors = self.actors.actors();
        {
            let mut in_use = encoder.encode_descriptor(
                "actor_instances_in_use",
                "Instances of the actor running a call now",
                None,
                MetricType::Gauge,
            )?;
            for actor in &actors {
                let labels = ActorLabels {
                    actor: actor.id.clone(),
                };
                let busy = i64::try_from(actor.current().busy_instances()).unwrap_or(i64::MAX);
                in_use.encode_family(&labels)?.encode_gauge(&busy)?;
            }
        }
        {
            let mut live = encoder.encode_descriptor(
                "actor_instances_live",
                "Instances of the actor alive now (busy and idle)",
                None,
                MetricType::Gauge,
            )?;
            for actor in &actors {
                let labels = ActorLabels {
                    actor: actor.id.clone(),
                };
                let alive = i64::try_from(actor.current().live_instances()).unwrap_or(i64::MAX);
                live.encode_family(&labels)?.encode_gauge(&alive)?;
            }
        }
        Ok(())
    }
}

/// A host's metrics: what the router records into and `/metrics` encodes.
pub(crate) struct Metrics {
    /// The clock calls are timed with (`Router::deliver_local`).
    pub clock: Clock,
    registry: PromRegistry,
    collected: Arc<Collected>,
    restarts: Family<ProviderLabels, Counter>,
    /// The same restarts, readable for [`Metrics::snapshot`] (rare: a lock is fine).
    restart_counts: Mutex<BTreeMap<(String, String), u64>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// Metrics of the host `host_id`, whose running actors are in `actors`.
    pub fn new(host_id: &str, actors: Arc<Registry>) -> Self {
        let mut registry = PromRegistry::with_prefix_and_labels(
            "nimbus",
            [("host".into(), host_id.to_string().into())].into_iter(),
        );
        let collected = Arc::new(Collected {
            ops: Mutex::default(),
            actors,
        });
        registry.register_collector(Box::new(collected.clone()));
        let restarts = Family::<ProviderLabels, Counter>::default();
        registry.register(
            "provider_restarts",
            "Restarts of a provider process after it exited or was killed",
            restarts.clone(),
        );
        Self {
            clock: Clock::new(),
            registry,
            collected,
            restarts,
            restart_counts: Mutex::default(),
        }
    }

    /// Counts one call of `operation` on `actor`.
    #[inline]
    pub fn record_call(
        &self,
        actor: &RunningActor,
        operation: &str,
        elapsed: Duration,
        failed: bool,
    ) {
        let ops = actor.ops.ops.load();
        if let Some((_, stats)) = ops.iter().find(|(op, _)| &**op == operation) {
            stats.record(elapsed, failed);
            return;
        }
        drop(ops);
        self.first_call(actor, operation).record(elapsed, failed);
    }

    /// Creates (or finds, after a restart of the actor) the stats of an operation.
    #[cold]
    fn first_call(&self, actor: &RunningActor, operation: &str) -> Arc<OpStats> {
        let ops = &actor.ops;
        let _adding = ops.adding.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(stats) = ops.find(operation) {
            return stats;
        }
        let current = ops.ops.load_full();
        let label = if current.len() < MAX_OPERATIONS_PER_ACTOR {
            operation
        } else if let Some(other) = ops.find(OTHER_OPERATION) {
            return other;
        } else {
            OTHER_OPERATION
        };
        let stats = self
            .collected
            .ops
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry((actor.id.clone(), label.to_string()))
            .or_default()
            .clone();
        let mut next = Vec::clone(&current);
        next.push((label.into(), stats.clone()));
        ops.ops.store(Arc::new(next));
        stats
    }

    /// Counts one restart of a provider process.
    pub fn provider_restarted(&self, provider_id: &str, link_name: &str) {
        self.restarts
            .get_or_create(&ProviderLabels {
                provider: provider_id.to_string(),
                link_name: link_name.to_string(),
            })
            .inc();
        *self
            .restart_counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry((provider_id.to_string(), link_name.to_string()))
            .or_default() += 1;
    }

    /// The counters as a [`nimbus_core::stats::HostStats`] (host id, time and instances
    /// are filled in by the caller): what `get.{id}.stats` answers.
    pub fn snapshot(&self) -> nimbus_core::stats::HostStats {
        let operations = self
            .collected
            .ops
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|((actor, operation), stats)| {
                let buckets: Vec<u64> = stats
                    .buckets
                    .iter()
                    .map(|b| b.load(Ordering::Relaxed))
                    .collect();
                nimbus_core::stats::OperationStats {
                    actor: actor.clone(),
                    operation: operation.clone(),
                    calls: buckets.iter().sum(),
                    errors: stats.errors(),
                    sum_ns: stats.sum_nanos.load(Ordering::Relaxed),
                    buckets,
                }
            })
            .collect();
        let providers = self
            .restart_counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(
                |((provider, link_name), restarts)| nimbus_core::stats::ProviderStats {
                    provider: provider.clone(),
                    link_name: link_name.clone(),
                    restarts: *restarts,
                },
            )
            .collect();
        nimbus_core::stats::HostStats {
            metrics: true,
            bucket_bounds_ns: BOUNDS_NANOS.to_vec(),
            operations,
            providers,
            ..Default::default()
        }
    }

    /// The metrics in the Prometheus text exposition format (version 0.0.4).
    pub fn encode(&self) -> String {
        let mut text = String::new();
        if let Err(e) =
            prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry)
        {
            tracing::warn!(error = %e, "encoding the metrics failed");
        }
        text
    }
}

/// The content type of the Prometheus text format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Binds `addr` for `/metrics`; the error names the address (a port in use, say).
pub(crate) async fn bind(addr: SocketAddr) -> Result<tokio::net::TcpListener, String> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot serve metrics on {addr}: {e}"))
}

/// Serves `GET /metrics` on `listener` until the task is aborted.
pub(crate) async fn serve(listener: tokio::net::TcpListener, metrics: Arc<Metrics>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::debug!(error = %e, "accepting a metrics connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                let metrics = metrics.clone();
                async move { Ok::<_, std::convert::Infallible>(respond(&req, &metrics)) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn respond(req: &Request<hyper::body::Incoming>, metrics: &Metrics) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match (req.method(), req.uri().path()) {
        (&Method::GET, "/metrics") => (StatusCode::OK, CONTENT_TYPE, metrics.encode()),
        (_, "/metrics") => (
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "use GET\n".to_string(),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain",
            "metrics are at /metrics\n".to_string(),
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(value) = hyper::header::HeaderValue::from_str(content_type) {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clock_measures_a_sleep() {
        let clock = Clock::new();
        let start = clock.now();
        std::thread::sleep(Duration::from_millis(20));
        let slept = clock.between(start, clock.now());
        assert!(
            slept >= Duration::from_millis(19) && slept < Duration::from_secs(2),
            "{slept:?} ({clock:?})"
        );
    }

    #[test]
    fn buckets_take_each_call_once() {
        let stats = OpStats::default();
        stats.record(Duration::from_nanos(500), false);
        stats.record(Duration::from_micros(3), true);
        stats.record(Duration::from_secs(60), false);
        assert_eq!(stats.calls(), 3);
        assert_eq!(stats.errors(), 1);
        assert_eq!(stats.buckets[0].load(Ordering::Relaxed), 1);
        assert_eq!(stats.buckets[2].load(Ordering::Relaxed), 1);
        assert_eq!(stats.buckets[BOUNDS_NANOS.len()].load(Ordering::Relaxed), 1);
    }
}
