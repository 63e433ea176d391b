//! What the page shows, computed from the rounds a [`crate::Source`] collects: the
//! counters are cumulative, so call rates and p50/p99 latencies of the last window come
//! from the difference between the newest round and the oldest one kept inside the
//! window (latency percentiles from the histogram buckets' deltas, interpolated inside
//! the bucket, so they are estimates as precise as the buckets).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use nimbus_core::events::CloudEvent;
use nimbus_core::stats::{HostStats, OperationStats};
use serde::Serialize;

use crate::source::Collected;

/// The whole page's data: what `/api/snapshot` returns and the stream pushes.
#[derive(Debug, Clone, Serialize)]
pub struct View {
    /// `standalone` or `lattice`.
    pub mode: String,
    /// The lattice prefix.
    pub lattice: String,
    /// When the view was made (milliseconds since the Unix epoch).
    pub generated_at_ms: u64,
    /// The window of rates and percentiles, in seconds (what the page says).
    pub window_secs: f64,
    /// One card per host.
    pub hosts: Vec<HostView>,
    /// Lattice-wide per (actor, operation), summed over hosts.
    pub operations: Vec<OperationView>,
    /// The lattice's links.
    pub links: Vec<LinkView>,
    /// The newest events first (heartbeats left out).
    pub events: Vec<EventView>,
    /// Problems of the last round that are not one host's.
    pub problems: Vec<String>,
}

/// One host.
#[derive(Debug, Clone, Serialize)]
pub struct HostView {
    /// `N...` id.
    pub id: String,
    /// Generated friendly name.
    pub name: String,
    /// Labels, without the `hostcore.*` ones every host has.
    pub labels: BTreeMap<String, String>,
    /// Seconds since start, when known.
    pub uptime_seconds: Option<u64>,
    /// Software version, when known.
    pub version: Option<String>,
    /// Whether the host keeps call metrics.
    pub metrics: bool,
    /// Why the host's statistics are missing, if they are.
    pub stats_error: Option<String>,
    /// Its actors.
    pub actors: Vec<ActorView>,
    /// Its providers.
    pub providers: Vec<ProviderView>,
}

/// One actor on one host.
#[derive(Debug, Clone, Serialize)]
pub struct ActorView {
    /// `M...` id.
    pub id: String,
    /// Name from its claims (else a short id).
    pub name: String,
    /// Instances the host reports.
    pub instances: usize,
    /// Instances alive in its pool, when the host reports statistics.
    pub live: Option<u64>,
    /// Instances running a call now, when the host reports statistics.
    pub in_use: Option<u64>,
    /// Calls run on this host since it started (all operations); `None` when the host
    /// keeps no call metrics.
    pub calls: Option<u64>,
    /// Failed calls among them.
    pub errors: Option<u64>,
}

/// One provider on one host.
#[derive(Debug, Clone, Serialize)]
pub struct ProviderView {
    /// `V...` id.
    pub id: String,
    /// Contract id.
    pub contract_id: String,
    /// Link name.
    pub link_name: String,
    /// Where it was started from.
    pub image_ref: Option<String>,
    /// Restarts of its process (`None`: the host keeps no metrics).
    pub restarts: Option<u64>,
}

/// One (actor, operation) over the lattice.
#[derive(Debug, Clone, Serialize)]
pub struct OperationView {
    /// `M...` id.
    pub actor_id: String,
    /// The actor's name.
    pub actor_name: String,
    /// The operation.
    pub operation: String,
    /// Hosts that ran it.
    pub hosts: usize,
    /// Calls since the hosts started.
    pub calls: u64,
    /// Failed calls since the hosts started.
    pub errors: u64,
    /// Calls per second over the window (`None`: one round so far).
    pub rate_per_sec: Option<f64>,
    /// Errors in the window.
    pub window_errors: u64,
    /// Median latency of the window's calls in milliseconds (`None`: no calls).
    pub p50_ms: Option<f64>,
    /// 99th-percentile latency of the window's calls in milliseconds.
    pub p99_ms: Option<f64>,
}

/// One link.
#[derive(Debug, Clone, Serialize)]
pub struct LinkView {
    /// `M...` id.
    pub actor_id: String,
    /// The actor's name, when a host runs it.
    pub actor_name: String,
    /// `V...` id.
    pub provider_id: String,
    /// The provider's name (where a host started it from), when a host runs it.
    pub provider_name: String,
    /// Contract id.
    pub contract_id: String,
    /// Link name.
    pub link_name: String,
    /// Its values, with anything that may be a secret hidden.
    pub values: BTreeMap<String, String>,
}

/// One lattice event.
#[derive(Debug, Clone, Serialize)]
pub struct EventView {
    /// RFC 3339 time.
    pub time: String,
    /// The event name (`actors_started`, `linkdef_set`, ...).
    pub kind: String,
    /// The publishing host (`n/a` for links).
    pub source: String,
    /// A one-line summary of its data.
    pub summary: String,
}

/// Link value keys shown as they are; every other value is hidden (credentials, URLs
/// with passwords, seeds, ...).
const SHOWN_LINK_VALUES: &[&str] = &[
    "port",
    "address",
    "backend",
    "bucket",
    "path",
    "host",
    "cache_size",
];

fn hide_secrets(values: &HashMap<String, String>) -> BTreeMap<String, String> {
    values
        .iter()
        .map(|(k, v)| {
            let shown = SHOWN_LINK_VALUES.contains(&k.to_ascii_lowercase().as_str());
            (k.clone(), if shown { v.clone() } else { "•••".into() })
        })
        .collect()
}

/// A `N...`/`M...` key shortened for people: its first 8 characters.
fn short(id: &str) -> String {
    id.get(..8).unwrap_or(id).to_string()
}

/// The latency at quantile `q` (0..1) of the calls counted in `deltas` (per bucket, the
/// last `+Inf`), in milliseconds: linear inside the bucket it falls in. `None` without
/// calls. Calls past the last bound count as the last bound (a lower bound then).
pub fn quantile_ms(bounds_ns: &[u64], deltas: &[u64], q: f64) -> Option<f64> {
    let total: u64 = deltas.iter().sum();
    if total == 0 {
        return None;
    }
    let target = (q.clamp(0.0, 1.0) * total as f64).max(1.0);
    let mut below = 0u64;
    for (i, count) in deltas.iter().enumerate() {
        if *count == 0 {
            continue;
        }
        if (below + count) as f64 >= target {
            let lower = if i == 0 { 0 } else { bounds_ns[i - 1] } as f64;
            let upper = bounds_ns.get(i).map_or(lower, |b| *b as f64);
            let within = (target - below as f64) / *count as f64;
            return Some((lower + (upper - lower) * within) / 1e6);
        }
        below += count;
    }
    bounds_ns.last().map(|b| *b as f64 / 1e6)
}

/// The lattice's statistics rounds kept for the window, and the last events.
pub struct Aggregator {
    window: Duration,
    /// Per host, its rounds (oldest first), each with the host's own clock.
    history: HashMap<String, VecDeque<HostStats>>,
    /// The last events with their data, summarized when a view is made (so ids read
    /// as the names known then).
    events: VecDeque<(EventView, serde_json::Value)>,
    max_events: usize,
}

impl Aggregator {
    /// Rates and percentiles over `window`; at most `max_events` events kept.
    pub fn new(window: Duration, max_events: usize) -> Self {
        Self {
            window,
            history: HashMap::new(),
            events: VecDeque::new(),
            max_events,
        }
    }

    /// Adds an event; `false` when it is left out: heartbeats, which every host sends
    /// every 30 s and in answer to each `ping.hosts` (so to each of a lattice
    /// dashboard's rounds).
    pub fn push_event(&mut self, event: &CloudEvent) -> bool {
        let kind = event
            .event_type
            .rsplit('.')
            .next()
            .unwrap_or(&event.event_type)
            .to_string();
        if kind == "host_heartbeat" {
            return false;
        }
        self.events.push_front((
            EventView {
                time: event.time.clone(),
                kind,
                source: event.source.clone(),
                summary: String::new(),
            },
            event.data.clone(),
        ));
        self.events.truncate(self.max_events);
        true
    }

    /// Takes in a round and makes the view.
    pub fn update(&mut self, collected: &Collected, mode: &str, lattice: &str) -> View {
        let now_ms = now_ms();
        let window_ms = u64::try_from(self.window.as_millis()).unwrap_or(u64::MAX);
        // Keep each host's rounds inside the window plus the newest older one (the
        // baseline); hosts gone from the lattice are forgotten.
        let present: Vec<&str> = collected
            .hosts
            .iter()
            .map(|h| h.inventory.host_id.as_str())
            .collect();
        self.history.retain(|id, _| present.contains(&id.as_str()));
        for host in &collected.hosts {
            if let Ok(stats) = &host.stats {
                let rounds = self
                    .history
                    .entry(host.inventory.host_id.clone())
                    .or_default();
                // A host whose counters went back restarted: start over.
                if rounds.back().is_some_and(|last| restarted(last, stats)) {
                    rounds.clear();
                }
                rounds.push_back(stats.clone());
                let newest = stats.taken_at_ms;
                while rounds.len() > 2
                    && rounds
                        .get(1)
                        .is_some_and(|r| newest.saturating_sub(r.taken_at_ms) >= window_ms)
                {
                    rounds.pop_front();
                }
            }
        }

        let mut names: HashMap<String, String> = HashMap::new();
        for host in &collected.hosts {
            for actor in &host.inventory.actors {
                if let Some(name) = actor.name.as_ref().filter(|n| !n.is_empty()) {
                    names.insert(actor.id.clone(), name.clone());
                }
            }
        }
        let name_of = |id: &str| names.get(id).cloned().unwrap_or_else(|| short(id));
        let mut provider_names: HashMap<&str, &str> = HashMap::new();
        for host in &collected.hosts {
            for p in &host.inventory.providers {
                if let Some(name) = p.image_ref.as_deref().filter(|n| !n.is_empty()) {
                    provider_names.insert(p.id.as_str(), name);
                }
            }
        }

        let hosts = collected
            .hosts
            .iter()
            .map(|host| {
                let stats = host.stats.as_ref().ok();
                let actors = host
                    .inventory
                    .actors
                    .iter()
                    .map(|a| {
                        let instances =
                            stats.and_then(|s| s.actors.iter().find(|i| i.actor == a.id));
                        let ops = stats
                            .into_iter()
                            .flat_map(|s| s.operations.iter().filter(|o| o.actor == a.id));
                        let (calls, errors) =
                            ops.fold((0, 0), |(c, e), o| (c + o.calls, e + o.errors));
                        let metrics = stats.is_some_and(|s| s.metrics);
                        ActorView {
                            id: a.id.clone(),
                            name: name_of(&a.id),
                            instances: a.instances.len(),
                            live: instances.map(|i| i.live),
                            in_use: instances.map(|i| i.in_use),
                            calls: metrics.then_some(calls),
                            errors: metrics.then_some(errors),
                        }
                    })
                    .collect();
                let providers = host
                    .inventory
                    .providers
                    .iter()
                    .map(|p| ProviderView {
                        id: p.id.clone(),
                        contract_id: p.contract_id.clone(),
                        link_name: p.link_name.clone(),
                        image_ref: p.image_ref.clone(),
                        restarts: stats.filter(|s| s.metrics).map(|s| {
                            s.providers
                                .iter()
                                .filter(|r| r.provider == p.id && r.link_name == p.link_name)
                                .map(|r| r.restarts)
                                .sum()
                        }),
                    })
                    .collect();
                HostView {
                    id: host.inventory.host_id.clone(),
                    name: host.inventory.friendly_name.clone(),
                    labels: host
                        .inventory
                        .labels
                        .iter()
                        .filter(|(k, _)| !k.starts_with("hostcore."))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                    uptime_seconds: host.uptime_seconds,
                    version: host.version.clone(),
                    metrics: stats.is_some_and(|s| s.metrics),
                    stats_error: host.stats.as_ref().err().cloned(),
                    actors,
                    providers,
                }
            })
            .collect();

        let operations = self.operations(&name_of);
        let links = collected
            .links
            .iter()
            .map(|l| LinkView {
                actor_id: l.actor_id.clone(),
                actor_name: name_of(&l.actor_id),
                provider_id: l.provider_id.clone(),
                provider_name: provider_names
                    .get(l.provider_id.as_str())
                    .map_or_else(|| short(&l.provider_id), |n| (*n).to_string()),
                contract_id: l.contract_id.clone(),
                link_name: l.link_name.clone(),
                values: hide_secrets(&l.values),
            })
            .collect();
        View {
            mode: mode.to_string(),
            lattice: lattice.to_string(),
            generated_at_ms: now_ms,
            window_secs: self.window.as_secs_f64(),
            hosts,
            operations,
            links,
            events: self
                .events
                .iter()
                .map(|(event, data)| EventView {
                    summary: summarize(data, &|id| {
                        names
                            .get(id)
                            .cloned()
                            .or_else(|| provider_names.get(id).map(|n| (*n).to_string()))
                    }),
                    ..event.clone()
                })
                .collect(),
            problems: collected.problems.clone(),
        }
    }

    /// Per (actor, operation), summed over hosts: totals of the newest round, window
    /// figures from newest minus baseline.
    fn operations(&self, name_of: &dyn Fn(&str) -> String) -> Vec<OperationView> {
        #[derive(Default)]
        struct Sum {
            hosts: usize,
            calls: u64,
            errors: u64,
            window_calls: u64,
            window_errors: u64,
            window_secs: f64,
            deltas: Vec<u64>,
            bounds: Vec<u64>,
        }
        let mut sums: BTreeMap<(String, String), Sum> = BTreeMap::new();
        for rounds in self.history.values() {
            let (Some(newest), Some(oldest)) = (rounds.back(), rounds.front()) else {
                continue;
            };
            let span = newest.taken_at_ms.saturating_sub(oldest.taken_at_ms) as f64 / 1e3;
            for op in &newest.operations {
                let base = oldest
                    .operations
                    .iter()
                    .find(|o| o.actor == op.actor && o.operation == op.operation);
                let sum = sums
                    .entry((op.actor.clone(), op.operation.clone()))
                    .or_default();
                sum.hosts += 1;
                sum.calls += op.calls;
                sum.errors += op.errors;
                sum.window_secs = sum.window_secs.max(span);
                sum.window_calls += op.calls - base.map_or(0, |b| b.calls.min(op.calls));
                sum.window_errors += op.errors - base.map_or(0, |b| b.errors.min(op.errors));
                let deltas = bucket_deltas(op, base);
                if sum.deltas.len() < deltas.len() {
                    sum.deltas.resize(deltas.len(), 0);
                }
                for (total, d) in sum.deltas.iter_mut().zip(deltas) {
                    *total += d;
                }
                if sum.bounds.is_empty() {
                    sum.bounds.clone_from(&newest.bucket_bounds_ns);
                }
            }
        }
        sums.into_iter()
            .map(|((actor, operation), s)| OperationView {
                actor_name: name_of(&actor),
                actor_id: actor,
                operation,
                hosts: s.hosts,
                calls: s.calls,
                errors: s.errors,
                rate_per_sec: (s.window_secs > 0.0).then(|| s.window_calls as f64 / s.window_secs),
                window_errors: s.window_errors,
                p50_ms: quantile_ms(&s.bounds, &s.deltas, 0.50),
                p99_ms: quantile_ms(&s.bounds, &s.deltas, 0.99),
            })
            .collect()
    }
}

/// Per bucket, the calls of `op` since `base` (all of them without a base).
fn bucket_deltas(op: &OperationStats, base: Option<&OperationStats>) -> Vec<u64> {
    op.buckets
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let before = base.and_then(|b| b.buckets.get(i)).copied().unwrap_or(0);
            n.saturating_sub(before)
        })
        .collect()
}

/// Whether `now` counts fewer calls of some operation than `before` (a restarted host).
fn restarted(before: &HostStats, now: &HostStats) -> bool {
    before.operations.iter().any(|b| {
        now.operations
            .iter()
            .find(|o| o.actor == b.actor && o.operation == b.operation)
            .is_none_or(|o| o.calls < b.calls)
    })
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `key=value` of the event fields people look for; keys of known actors and providers
/// read as their names, other keys are shortened.
fn summarize(data: &serde_json::Value, name_of: &dyn Fn(&str) -> Option<String>) -> String {
    const FIELDS: &[&str] = &[
        "public_key",
        "actor_id",
        "actor_ref",
        "image_ref",
        "provider_id",
        "contract_id",
        "link_name",
        "count",
        "instances",
        "error",
    ];
    let Some(map) = data.as_object() else {
        return String::new();
    };
    FIELDS
        .iter()
        .filter_map(|field| {
            let value = map.get(*field)?;
            let text = match value {
                serde_json::Value::String(s) if s.is_empty() => return None,
                serde_json::Value::String(s) if s.len() == 56 => {
                    name_of(s).unwrap_or_else(|| short(s))
                }
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Array(a) => a.len().to_string(),
                other => other.to_string(),
            };
            Some(format!("{field}={text}"))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const BOUNDS: [u64; 3] = [1_000_000, 2_000_000, 4_000_000];

    #[test]
    fn quantiles_interpolate_inside_the_bucket() {
        // 100 calls, all between 1 and 2 ms: the median is 1.5 ms, p99 1.99 ms.
        let deltas = [0, 100, 0, 0];
        let p50 = quantile_ms(&BOUNDS, &deltas, 0.5).unwrap();
        let p99 = quantile_ms(&BOUNDS, &deltas, 0.99).unwrap();
        assert!((p50 - 1.5).abs() < 1e-9, "{p50}");
        assert!((p99 - 1.99).abs() < 1e-9, "{p99}");
        assert_eq!(quantile_ms(&BOUNDS, &[0, 0, 0, 0], 0.5), None);
        // Calls past the last bound report the last bound.
        assert_eq!(quantile_ms(&BOUNDS, &[0, 0, 0, 5], 0.99), Some(4.0));
    }

    fn stats(at: u64, calls: u64, errors: u64) -> HostStats {
        HostStats {
            host_id: "N1".into(),
            taken_at_ms: at,
            metrics: true,
            bucket_bounds_ns: BOUNDS.to_vec(),
            operations: vec![OperationStats {
                actor: "M1".into(),
                operation: "Echo".into(),
                calls,
                errors,
                sum_ns: 0,
                buckets: vec![calls, 0, 0, 0],
            }],
            ..Default::default()
        }
    }

    fn round(stats: HostStats) -> Collected {
        Collected {
            hosts: vec![crate::source::HostReport {
                inventory: nimbus_core::ctl::HostInventory {
                    host_id: "N1".into(),
                    ..Default::default()
                },
                uptime_seconds: None,
                version: None,
                stats: Ok(stats),
            }],
            ..Default::default()
        }
    }

    #[test]
    fn rates_and_window_errors_come_from_the_difference_of_rounds() {
        let mut agg = Aggregator::new(Duration::from_secs(10), 10);
        let first = agg.update(&round(stats(1_000, 10, 1)), "lattice", "l");
        assert_eq!(first.operations[0].calls, 10);
        assert_eq!(
            first.operations[0].rate_per_sec, None,
            "one round: no rate yet"
        );
        let second = agg.update(&round(stats(3_000, 30, 4)), "lattice", "l");
        let op = &second.operations[0];
        assert_eq!((op.calls, op.errors, op.window_errors), (30, 4, 3));
        assert_eq!(op.rate_per_sec, Some(10.0), "20 calls in 2 s");
        // Past the window the baseline moves on: the newest round older than the
        // window stays as the baseline (3 s here), the 1 s one goes.
        agg.update(&round(stats(20_000, 40, 4)), "lattice", "l");
        let late = agg.update(&round(stats(21_000, 41, 4)), "lattice", "l");
        assert_eq!(late.operations[0].rate_per_sec, Some(11.0 / 18.0));
        let later = agg.update(&round(stats(31_000, 51, 4)), "lattice", "l");
        assert_eq!(later.operations[0].rate_per_sec, Some(1.0));
    }

    fn event(name: &str, data: serde_json::Value) -> CloudEvent {
        CloudEvent {
            specversion: "1.0".into(),
            event_type: format!("com.wasmcloud.lattice.{name}"),
            source: "N1".into(),
            id: "1".into(),
            time: "2026-01-01T00:00:00Z".into(),
            datacontenttype: "application/json".into(),
            data,
        }
    }

    #[test]
    fn events_leave_out_heartbeats_and_name_known_actors() {
        let mut agg = Aggregator::new(Duration::from_secs(10), 2);
        assert!(!agg.push_event(&event("host_heartbeat", serde_json::json!({}))));
        let key = "M".repeat(56);
        assert!(agg.push_event(&event(
            "actors_started",
            serde_json::json!({ "public_key": key, "count": 2 })
        )));
        let mut collected = round(stats(1_000, 1, 0));
        collected.hosts[0]
            .inventory
            .actors
            .push(nimbus_core::ctl::ActorDescription {
                id: key.clone(),
                name: Some("counter".into()),
                ..Default::default()
            });
        let view = agg.update(&collected, "lattice", "l");
        assert_eq!(view.events.len(), 1, "{:?}", view.events);
        assert_eq!(view.events[0].kind, "actors_started");
        assert_eq!(view.events[0].summary, "public_key=counter count=2");
        // At most `max_events`, newest first.
        for n in 0..3 {
            agg.push_event(&event(
                "linkdef_set",
                serde_json::json!({ "link_name": n.to_string() }),
            ));
        }
        let view = agg.update(&collected, "lattice", "l");
        let summaries: Vec<_> = view.events.iter().map(|e| e.summary.as_str()).collect();
        assert_eq!(summaries, ["link_name=2", "link_name=1"]);
    }

    #[test]
    fn providers_show_their_restarts_and_hosts_without_metrics_show_none() {
        let provider = nimbus_core::ctl::ProviderDescription {
            id: "V1".into(),
            contract_id: "wasmcloud:keyvalue".into(),
            link_name: "default".into(),
            image_ref: Some("kv".into()),
            ..Default::default()
        };
        let mut with = stats(1_000, 0, 0);
        with.providers.push(nimbus_core::stats::ProviderStats {
            provider: "V1".into(),
            link_name: "default".into(),
            restarts: 2,
        });
        let mut collected = round(with);
        collected.hosts[0]
            .inventory
            .providers
            .push(provider.clone());
        collected.links.push(nimbus_core::link::LinkDefinition::new(
            "M1",
            "V1",
            "default",
            "wasmcloud:keyvalue",
            HashMap::new(),
        ));
        let mut agg = Aggregator::new(Duration::from_secs(10), 10);
        let view = agg.update(&collected, "lattice", "l");
        assert_eq!(view.hosts[0].providers[0].restarts, Some(2));
        assert_eq!(view.links[0].provider_name, "kv");

        let mut without = round(HostStats {
            host_id: "N1".into(),
            ..Default::default()
        });
        without.hosts[0].inventory.providers.push(provider);
        let view = Aggregator::new(Duration::from_secs(10), 10).update(&without, "lattice", "l");
        assert_eq!(view.hosts[0].providers[0].restarts, None);
        assert!(!view.hosts[0].metrics);
    }

    #[test]
    fn secret_link_values_are_hidden() {
        let values = HashMap::from([
            ("port".to_string(), "8080".to_string()),
            ("url".to_string(), "redis://:pw@host".to_string()),
        ]);
        let shown = hide_secrets(&values);
        assert_eq!(shown["port"], "8080");
        assert_eq!(shown["url"], "•••");
    }
}
