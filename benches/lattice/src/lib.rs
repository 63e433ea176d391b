//! Measuring helpers of the lattice and HTTP benchmarks: latency samples with percentiles,
//! the parts of `wrk --latency` output the report needs, the machine's load average and
//! the `ours / baseline / ratio` lines every benchmark prints.
//!
//! The benchmarks themselves are the bench targets of this package:
//!
//! - `cargo bench -p nimbus-benches --bench lattice_calls`: actor calls over NATS (signing
//!   on and off) vs raw async-nats request/reply, the local fast path vs a direct warm
//!   waPC call, and 64 calls in flight vs an async-nats echo responder;
//! - `cargo bench -p nimbus-benches --bench http` (or `scripts/bench-http.sh`, which
//!   installs `wrk` first): HTTP → kvcounter → KV add → response, standalone and in
//!   lattice mode, vs axum baselines.

use std::time::Duration;

/// Latency samples of one benchmark case.
#[derive(Debug, Clone, Default)]
pub struct Samples {
    values: Vec<Duration>,
    sorted: bool,
}

impl Samples {
    /// Room for `n` samples.
    pub fn with_capacity(n: usize) -> Self {
        Self {
            values: Vec::with_capacity(n),
            sorted: true,
        }
    }

    /// Adds one sample.
    pub fn push(&mut self, d: Duration) {
        self.values.push(d);
        self.sorted = false;
    }

    /// Adds every sample of `other`.
    pub fn extend(&mut self, other: &Samples) {
        self.values.extend_from_slice(&other.values);
        self.sorted = false;
    }

    /// How many samples there are.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether there is no sample.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The `p`-th percentile (0–100, nearest rank); zero without samples.
    pub fn percentile(&mut self, p: f64) -> Duration {
        if self.values.is_empty() {
            return Duration::ZERO;
        }
        if !self.sorted {
            self.values.sort_unstable();
            self.sorted = true;
        }
        let rank = ((p / 100.0) * self.values.len() as f64).ceil() as usize;
        self.values[rank.clamp(1, self.values.len()) - 1]
    }

    /// The mean; zero without samples.
    pub fn mean(&self) -> Duration {
        if self.values.is_empty() {
            return Duration::ZERO;
        }
        self.values.iter().sum::<Duration>() / self.values.len() as u32
    }
}

/// A duration for humans: `812 ns`, `41.3 µs`, `2.05 ms`.
pub fn fmt_duration(d: Duration) -> String {
    let ns = d.as_nanos() as f64;
    if ns < 1_000.0 {
        format!("{ns:.0} ns")
    } else if ns < 1_000_000.0 {
        format!("{:.1} µs", ns / 1_000.0)
    } else if ns < 1_000_000_000.0 {
        format!("{:.2} ms", ns / 1_000_000.0)
    } else {
        format!("{:.2} s", ns / 1_000_000_000.0)
    }
}

/// The 1, 5 and 15 minute load averages from `/proc/loadavg`, or `unknown`.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into())
}

/// The line every benchmark prints: what was measured, ours, the baseline, the ratio and
/// the target with whether this run met it.
pub fn report_line(what: &str, ours: &str, baseline: &str, ratio: f64, target: &str, met: bool) {
    println!(
        "{what:<58} ours {ours:>12}   baseline {baseline:>12}   ratio {ratio:>6.2}x   target {target:<10} {}",
        if met { "met" } else { "NOT MET" }
    );
}

/// What the report needs from one `wrk --latency` run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WrkResult {
    /// `Requests/sec:`.
    pub requests_per_sec: f64,
    /// Total requests completed.
    pub requests: u64,
    /// 50th percentile latency.
    pub p50: Duration,
    /// 99th percentile latency.
    pub p99: Duration,
    /// Socket errors plus non-2xx/3xx responses.
    pub errors: u64,
}

/// Parses a `wrk` duration such as `52.00us`, `1.23ms` or `2.00s`.
fn parse_wrk_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (number, scale) = if let Some(n) = s.strip_suffix("us") {
        (n, 1e-6)
    } else if let Some(n) = s.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else {
        return None;
    };
    let secs = number.parse::<f64>().ok()? * scale;
    Some(Duration::from_secs_f64(secs))
}

/// Parses the output of `wrk --latency`; `None` when a needed line is missing.
pub fn parse_wrk(output: &str) -> Option<WrkResult> {
    let mut requests_per_sec = None;
    let mut requests = None;
    let mut p50 = None;
    let mut p99 = None;
    let mut errors = 0;
    for line in output.lines() {
        let line = line.trim();
        let mut words = line.split_whitespace();
        match words.next() {
            Some("Requests/sec:") => requests_per_sec = words.next()?.parse().ok(),
            Some("50%") => p50 = parse_wrk_duration(words.next()?),
            Some("99%") => p99 = parse_wrk_duration(words.next()?),
            Some("Non-2xx") => errors += line.rsplit(' ').next()?.parse::<u64>().ok()?,
            Some("Socket") => {
                // `Socket errors: connect 0, read 0, write 0, timeout 0`
                errors += line
                    .split(',')
                    .filter_map(|part| part.split_whitespace().last()?.parse::<u64>().ok())
                    .sum::<u64>();
            }
            Some(n) if line.contains(" requests in ") => requests = n.parse().ok(),
            _ => {}
        }
    }
    Some(WrkResult {
        requests_per_sec: requests_per_sec?,
        requests: requests?,
        p50: p50?,
        p99: p99?,
        errors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let mut s = Samples::default();
        for i in (1..=100).rev() {
            s.push(Duration::from_micros(i));
        }
        assert_eq!(s.percentile(50.0), Duration::from_micros(50));
        assert_eq!(s.percentile(99.0), Duration::from_micros(99));
        assert_eq!(s.percentile(100.0), Duration::from_micros(100));
        assert_eq!(s.percentile(0.0), Duration::from_micros(1));
        assert_eq!(Samples::default().percentile(50.0), Duration::ZERO);
    }

    #[test]
    fn wrk_output_is_parsed() {
        let out = "Running 3s test @ http://127.0.0.1:8080/bench
  1 threads and 1 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    61.47us   20.10us   1.52ms   97.14%
    Req/Sec    15.94k   512.21    16.52k    80.00%
  Latency Distribution
     50%   58.00us
     75%   60.00us
     90%   66.00us
     99%  122.00us
  47612 requests in 3.00s, 5.18MB read
  Socket errors: connect 0, read 1, write 0, timeout 2
  Non-2xx or 3xx responses: 4
Requests/sec:  15870.01
Transfer/sec:      1.73MB
";
        let r = parse_wrk(out).unwrap();
        assert_eq!(r.requests, 47612);
        assert_eq!(r.p50, Duration::from_micros(58));
        assert_eq!(r.p99, Duration::from_micros(122));
        assert_eq!(r.errors, 7);
        assert!((r.requests_per_sec - 15870.01).abs() < 1e-6);
        assert_eq!(
            parse_wrk_duration("1.50ms"),
            Some(Duration::from_micros(1500))
        );
        assert_eq!(parse_wrk_duration("2.00s"), Some(Duration::from_secs(2)));
        assert!(parse_wrk("garbage").is_none());
    }
}
