//! A host's statistics snapshot: the reply to `{ctl}.get.{host_id}.stats`, **our
//! extension** of the 0.x control interface (0.x hosts do not answer it; a client treats
//! "no responders" there as "this host keeps no statistics").
//!
//! The counters are cumulative since the host started, so a reader (the dashboard) gets
//! rates and latency percentiles of a window from the difference of two snapshots. The
//! histogram buckets are per bucket (not cumulative), with the upper bounds in
//! [`HostStats::bucket_bounds_ns`] and one last `+Inf` bucket.

use serde::{Deserialize, Serialize};

/// The body of a `get.{host_id}.stats` request: nothing yet (an empty body or `{}`); a
/// body that is not a JSON object is refused with a `CtlOperationAck` saying why.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetStatsRequest {}

/// One host's statistics at one moment.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostStats {
    /// The host's id (`N...`).
    pub host_id: String,
    /// Milliseconds since the Unix epoch when the snapshot was taken (the host's clock).
    pub taken_at_ms: u64,
    /// Whether the host keeps call metrics (`wash up --metrics-addr` or `--dashboard`);
    /// without them `operations` and `providers` are empty and only instances are known.
    pub metrics: bool,
    /// Upper bounds of the latency buckets in nanoseconds; `buckets` of every operation
    /// has one more entry (`+Inf`).
    #[serde(default)]
    pub bucket_bounds_ns: Vec<u64>,
    /// Per actor and operation: calls, errors, latency histogram.
    #[serde(default)]
    pub operations: Vec<OperationStats>,
    /// Per provider: restarts of its process.
    #[serde(default)]
    pub providers: Vec<ProviderStats>,
    /// Per running actor: instances alive and busy now.
    #[serde(default)]
    pub actors: Vec<ActorInstances>,
}

/// The cumulative counts of one (actor, operation) on one host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationStats {
    /// The actor's public key.
    pub actor: String,
    /// The operation (`_other` past the host's per-actor label limit).
    pub operation: String,
    /// Calls run, failed or not.
    pub calls: u64,
    /// Calls that failed.
    pub errors: u64,
    /// Sum of the calls' latencies in nanoseconds.
    pub sum_ns: u64,
    /// Calls per latency bucket (not cumulative); the last is `+Inf`.
    pub buckets: Vec<u64>,
}

/// The restarts of one provider on one host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderStats {
    /// The provider's public key.
    pub provider: String,
    /// Its link name.
    pub link_name: String,
    /// Restarts of its process after it exited or was killed.
    pub restarts: u64,
}

/// The instances of one running actor on one host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActorInstances {
    /// The actor's public key.
    pub actor: String,
    /// Instances alive (busy and idle).
    pub live: u64,
    /// Instances running a call now.
    pub in_use: u64,
}
