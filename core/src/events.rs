//! Lattice events: the CloudEvents 1.0 JSON envelope hosts publish on
//! `wasmbus.evt.{lattice}` (and `wasmbus.rpcevt.{lattice}`), and one typed data struct per
//! event of the 0.x host, so publishers and observers agree on the field names.
//!
//! Build an envelope with [`CloudEvent::new`] from any [`LatticeEvent`]; read one back
//! with [`CloudEvent::data_as`].

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::encoding::{EncodingError, Format};
use crate::link::LinkDefinition;
use crate::wire::{WasmCloudEntity, new_uuid};

/// CloudEvents spec version written in every envelope.
pub const SPEC_VERSION: &str = "1.0";
/// Content type of the `data` member.
pub const DATA_CONTENT_TYPE: &str = "application/json";
/// Prefix of every event `type`.
pub const EVENT_TYPE_PREFIX: &str = "com.wasmcloud.lattice.";
/// Event `source` of link definition events, which no single host originates.
pub const NO_SOURCE: &str = "n/a";

/// String map used for labels and annotations in event data.
pub type StringMap = BTreeMap<String, String>;

/// A typed event payload: its short name (`actor_started`) makes the CloudEvent `type`.
pub trait LatticeEvent: Serialize {
    /// Short event name, the suffix of `com.wasmcloud.lattice.{name}`.
    const NAME: &'static str;

    /// The full CloudEvent `type`.
    fn event_type() -> String {
        format!("{EVENT_TYPE_PREFIX}{}", Self::NAME)
    }
}

/// A CloudEvents 1.0 envelope in the structured JSON mode the 0.x host uses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CloudEvent {
    /// Always `1.0`.
    pub specversion: String,
    /// `com.wasmcloud.lattice.{name}`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The publishing host's id (`n/a` for link definition events).
    pub source: String,
    /// Unique event id (UUIDv4).
    pub id: String,
    /// RFC 3339 UTC timestamp.
    pub time: String,
    /// Always `application/json`.
    #[serde(default = "default_content_type")]
    pub datacontenttype: String,
    /// The event data object.
    #[serde(default)]
    pub data: serde_json::Value,
}

fn default_content_type() -> String {
    DATA_CONTENT_TYPE.to_string()
}

impl CloudEvent {
    /// Wraps `event` in an envelope from `source`, stamped now with a fresh id.
    pub fn new<E: LatticeEvent>(
        source: impl Into<String>,
        event: &E,
    ) -> Result<Self, EncodingError> {
        Self::with_id_and_time(source, event, new_uuid(), rfc3339_utc(SystemTime::now()))
    }

    /// Wraps `event` with a given id and time (reproducible output for tests and replays).
    pub fn with_id_and_time<E: LatticeEvent>(
        source: impl Into<String>,
        event: &E,
        id: impl Into<String>,
        time: impl Into<String>,
    ) -> Result<Self, EncodingError> {
        let data =
            serde_json::to_value(event).map_err(|e| EncodingError::encode::<E>(Format::Json, e))?;
        Ok(CloudEvent {
            specversion: SPEC_VERSION.to_string(),
            event_type: E::event_type(),
            source: source.into(),
            id: id.into(),
            time: time.into(),
            datacontenttype: DATA_CONTENT_TYPE.to_string(),
            data,
        })
    }

    /// The short event name (`actor_started`), or `None` for a foreign event type.
    pub fn name(&self) -> Option<&str> {
        self.event_type.strip_prefix(EVENT_TYPE_PREFIX)
    }

    /// True when this envelope carries an event of type `E`.
    pub fn is<E: LatticeEvent>(&self) -> bool {
        self.name() == Some(E::NAME)
    }

    /// Decodes the data as `T` (check [`CloudEvent::is`] first to pick the type).
    pub fn data_as<T: DeserializeOwned>(&self) -> Result<T, EncodingError> {
        T::deserialize(&self.data).map_err(|e| {
            // Only on the error path: the encoded size of `data`, for the message.
            let len = serde_json::to_vec(&self.data).map_or(0, |v| v.len());
            EncodingError::decode::<T>(Format::Json, len, e)
        })
    }

    /// Encodes the envelope as JSON bytes, ready to publish.
    pub fn to_json(&self) -> Result<Vec<u8>, EncodingError> {
        crate::encoding::to_json(self)
    }

    /// Decodes an envelope from JSON bytes.
    pub fn from_json(bytes: &[u8]) -> Result<Self, EncodingError> {
        crate::encoding::from_json(bytes)
    }
}

/// Formats a time as RFC 3339 UTC with microseconds (`2023-09-01T12:00:00.000000Z`), the
/// shape of OTP's timestamps. Times before 1970 are clamped to the epoch.
pub fn rfc3339_utc(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let micros = since.subsec_micros();
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day); the well-known
/// era-based algorithm, exact for every `u64` day count a `SystemTime` can produce.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Shift the epoch to 0000-03-01 so leap days fall at the end of a year.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

macro_rules! lattice_event {
    ($ty:ident, $name:literal) => {
        impl LatticeEvent for $ty {
            const NAME: &'static str = $name;
        }
    };
}

/// Claims summary of an actor in `actor_started` / `actors_started`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActorClaimsSummary {
    /// Call alias, if any (`null` otherwise).
    #[serde(default)]
    pub call_alias: Option<String>,
    /// Capability contract ids.
    #[serde(default)]
    pub caps: Vec<String>,
    /// Issuer account key.
    #[serde(default)]
    pub issuer: String,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Actor name.
    #[serde(default)]
    pub name: String,
    /// Version string.
    #[serde(default)]
    pub version: String,
    /// Revision number.
    #[serde(default)]
    pub revision: i32,
    /// Human-readable not-before time (e.g. `immediately`).
    #[serde(default)]
    pub not_before_human: String,
    /// Human-readable expiry (e.g. `never`).
    #[serde(default)]
    pub expires_human: String,
}

/// Claims summary of a provider in `provider_started`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderClaimsSummary {
    /// Issuer account key.
    #[serde(default)]
    pub issuer: String,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Provider name.
    #[serde(default)]
    pub name: String,
    /// Version string.
    #[serde(default)]
    pub version: String,
    /// Human-readable not-before time.
    #[serde(default)]
    pub not_before_human: String,
    /// Human-readable expiry.
    #[serde(default)]
    pub expires_human: String,
}

/// A host came up.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostStarted {
    /// Host labels.
    #[serde(default)]
    pub labels: StringMap,
    /// Friendly host name.
    #[serde(default)]
    pub friendly_name: String,
    /// Seconds since start.
    #[serde(default)]
    pub uptime_seconds: u64,
    /// Host version.
    #[serde(default)]
    pub version: String,
}
lattice_event!(HostStarted, "host_started");

/// A host stopped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostStopped {
    /// Host labels.
    #[serde(default)]
    pub labels: StringMap,
}
lattice_event!(HostStopped, "host_stopped");

/// A provider as listed in a heartbeat.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatProvider {
    /// Provider key.
    pub public_key: String,
    /// Link name.
    #[serde(default)]
    pub link_name: String,
    /// Contract id.
    #[serde(default)]
    pub contract_id: String,
}

/// Periodic host status (every 30 s and on ping).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostHeartbeat {
    /// Actor public key → running instance count.
    #[serde(default)]
    pub actors: BTreeMap<String, u64>,
    /// Running providers.
    #[serde(default)]
    pub providers: Vec<HeartbeatProvider>,
    /// Host labels.
    #[serde(default)]
    pub labels: StringMap,
    /// Friendly host name.
    #[serde(default)]
    pub friendly_name: String,
    /// Host version.
    #[serde(default)]
    pub version: String,
    /// Seconds since start.
    #[serde(default)]
    pub uptime_seconds: u64,
    /// Uptime as text.
    #[serde(default)]
    pub uptime_human: String,
}
lattice_event!(HostHeartbeat, "host_heartbeat");

/// One actor instance started.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActorStarted {
    /// Actor key.
    pub public_key: String,
    /// Reference it was started from.
    #[serde(default)]
    pub image_ref: String,
    /// API version (`n/a` in 0.x).
    #[serde(default)]
    pub api_version: String,
    /// Instance id.
    #[serde(default)]
    pub instance_id: String,
    /// Instance annotations.
    #[serde(default)]
    pub annotations: StringMap,
    /// Claims summary.
    #[serde(default)]
    pub claims: ActorClaimsSummary,
}
lattice_event!(ActorStarted, "actor_started");

/// A launch request started `count` instances.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActorsStarted {
    /// Actor key.
    pub public_key: String,
    /// Reference it was started from.
    #[serde(default)]
    pub image_ref: String,
    /// Instance annotations.
    #[serde(default)]
    pub annotations: StringMap,
    /// The host that started them.
    #[serde(default)]
    pub host_id: String,
    /// Claims summary.
    #[serde(default)]
    pub claims: ActorClaimsSummary,
    /// Number of instances started.
    #[serde(default)]
    pub count: u64,
}
lattice_event!(ActorsStarted, "actors_started");

/// One actor instance stopped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActorStopped {
    /// Actor key.
    pub public_key: String,
    /// Instance id.
    #[serde(default)]
    pub instance_id: String,
    /// Instance annotations.
    #[serde(default)]
    pub annotations: StringMap,
}
lattice_event!(ActorStopped, "actor_stopped");

/// A stop request stopped `count` instances, `remaining` still run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActorsStopped {
    /// The host.
    #[serde(default)]
    pub host_id: String,
    /// Actor key.
    pub public_key: String,
    /// Instances stopped.
    #[serde(default)]
    pub count: u64,
    /// Instances still running.
    #[serde(default)]
    pub remaining: u64,
    /// Annotations of the stopped instances.
    #[serde(default)]
    pub annotations: StringMap,
}
lattice_event!(ActorsStopped, "actors_stopped");

/// An actor could not be started (per instance).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActorStartFailed {
    /// Reference that failed.
    #[serde(default)]
    pub actor_ref: String,
    /// Why.
    #[serde(default)]
    pub error: String,
}
lattice_event!(ActorStartFailed, "actor_start_failed");

/// A launch request failed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActorsStartFailed {
    /// Actor key (or the reference when the key is unknown).
    #[serde(default)]
    pub public_key: String,
    /// Reference that failed.
    #[serde(default)]
    pub image_ref: String,
    /// Requested annotations.
    #[serde(default)]
    pub annotations: StringMap,
    /// The host.
    #[serde(default)]
    pub host_id: String,
    /// Why.
    #[serde(default)]
    pub error: String,
}
lattice_event!(ActorsStartFailed, "actors_start_failed");

/// An actor instance was live-updated.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActorUpdated {
    /// Actor key.
    pub public_key: String,
    /// New revision.
    #[serde(default)]
    pub revision: i32,
    /// Instance id.
    #[serde(default)]
    pub instance_id: String,
}
lattice_event!(ActorUpdated, "actor_updated");

/// A live update failed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActorUpdateFailed {
    /// Actor key.
    pub public_key: String,
    /// Revision attempted.
    #[serde(default)]
    pub revision: i32,
    /// Instance id.
    #[serde(default)]
    pub instance_id: String,
    /// Why.
    #[serde(default)]
    pub reason: String,
}
lattice_event!(ActorUpdateFailed, "actor_update_failed");

/// A provider started.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderStarted {
    /// Provider key.
    pub public_key: String,
    /// Reference it was started from.
    #[serde(default)]
    pub image_ref: String,
    /// Link name.
    #[serde(default)]
    pub link_name: String,
    /// Contract id.
    #[serde(default)]
    pub contract_id: String,
    /// Instance id.
    #[serde(default)]
    pub instance_id: String,
    /// Annotations.
    #[serde(default)]
    pub annotations: StringMap,
    /// Claims summary.
    #[serde(default)]
    pub claims: ProviderClaimsSummary,
}
lattice_event!(ProviderStarted, "provider_started");

/// A provider stopped (`reason` is `normal` or the exit reason).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderStopped {
    /// Provider key.
    pub public_key: String,
    /// Link name.
    #[serde(default)]
    pub link_name: String,
    /// Contract id.
    #[serde(default)]
    pub contract_id: String,
    /// Instance id.
    #[serde(default)]
    pub instance_id: String,
    /// Annotations.
    #[serde(default)]
    pub annotations: StringMap,
    /// `normal` or why it exited.
    #[serde(default)]
    pub reason: String,
}
lattice_event!(ProviderStopped, "provider_stopped");

/// A provider could not be started.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderStartFailed {
    /// Reference that failed.
    #[serde(default)]
    pub provider_ref: String,
    /// Link name.
    #[serde(default)]
    pub link_name: String,
    /// Why.
    #[serde(default)]
    pub error: String,
}
lattice_event!(ProviderStartFailed, "provider_start_failed");

macro_rules! health_event {
    ($ty:ident, $name:literal, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
        pub struct $ty {
            /// Provider key.
            pub public_key: String,
            /// Contract id.
            #[serde(default)]
            pub contract_id: String,
            /// Link name.
            #[serde(default)]
            pub link_name: String,
        }
        lattice_event!($ty, $name);
    };
}

health_event!(
    HealthCheckPassed,
    "health_check_passed",
    "A provider became healthy (was unhealthy or unknown)."
);
health_event!(
    HealthCheckFailed,
    "health_check_failed",
    "A provider became unhealthy."
);
health_event!(
    HealthCheckStatus,
    "health_check_status",
    "A provider's health did not change since the last check."
);

/// A link definition was set; the data is the link definition JSON (with `id`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LinkdefSet(pub LinkDefinition);
lattice_event!(LinkdefSet, "linkdef_set");

/// A link definition was deleted; the data is the link definition JSON (with `id`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LinkdefDeleted(pub LinkDefinition);
lattice_event!(LinkdefDeleted, "linkdef_deleted");

/// An OCI reference was resolved to a public key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefmapSet {
    /// The OCI reference.
    pub oci_url: String,
    /// The key it resolved to.
    pub public_key: String,
}
lattice_event!(RefmapSet, "refmap_set");

/// An invocation succeeded (published on `wasmbus.rpcevt.{lattice}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvocationSucceeded {
    /// The caller.
    pub source: WasmCloudEntity,
    /// The callee.
    pub dest: WasmCloudEntity,
    /// Operation name.
    pub operation: String,
    /// Request payload size in bytes.
    #[serde(default)]
    pub bytes: u64,
}
lattice_event!(InvocationSucceeded, "invocation_succeeded");

/// An invocation failed (published on `wasmbus.rpcevt.{lattice}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvocationFailed {
    /// The caller.
    pub source: WasmCloudEntity,
    /// The callee.
    pub dest: WasmCloudEntity,
    /// Operation name.
    pub operation: String,
    /// Request payload size in bytes.
    #[serde(default)]
    pub bytes: u64,
}
lattice_event!(InvocationFailed, "invocation_failed");

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(rfc3339_utc(UNIX_EPOCH), "1970-01-01T00:00:00.000000Z");
        let t = UNIX_EPOCH + Duration::new(951_782_400, 123_456_789); // 2000-02-29
        assert_eq!(rfc3339_utc(t), "2000-02-29T00:00:00.123456Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_693_569_845); // 2023-09-01T12:04:05Z
        assert_eq!(rfc3339_utc(t), "2023-09-01T12:04:05.000000Z");
        let t = UNIX_EPOCH + Duration::from_secs(4_102_444_799); // 2099-12-31T23:59:59Z
        assert_eq!(rfc3339_utc(t), "2099-12-31T23:59:59.000000Z");
    }
}
