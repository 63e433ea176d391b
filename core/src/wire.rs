//! The RPC-plane envelopes of the 0.x lattice: entities, invocations, responses, provider
//! health checks, the shutdown request and the host data a provider reads on stdin.
//!
//! Every type here is encoded as a MessagePack map keyed by field name (see
//! [`crate::encoding`]). Decoding is lenient where other implementations differ (a `msg`
//! packed as a string by Elixir, structs sent as positional arrays, extra keys), encoding
//! is strict (all entity keys present, no `error` key on success, `msg` as bin).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::encoding::{self, EncodingError, Format};
use crate::link::LinkDefinition;

/// URL scheme of entity URLs, used in invocation hashes and anti-forgery claims.
pub const URL_SCHEME: &str = "wasmbus";

/// The text a provider replies to a shutdown request with.
pub const SHUTDOWN_REPLY: &str = "shutting down";

/// One end of an invocation: an actor (only `public_key` set) or a capability provider
/// (public key, contract id and link name). All three keys are always on the wire because
/// OTP pattern-matches on them and wasmbus-rpc requires `contract_id`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WasmCloudEntity {
    /// Actor `M...` or provider `V...` public key.
    #[serde(default)]
    pub public_key: String,
    /// Link name of a provider; empty for an actor.
    #[serde(default)]
    pub link_name: String,
    /// Contract id of a provider (e.g. `wasmcloud:keyvalue`); empty for an actor.
    #[serde(default)]
    pub contract_id: String,
}

impl WasmCloudEntity {
    /// An actor entity: the other two keys are empty strings, as the protocol requires.
    pub fn actor(public_key: impl Into<String>) -> Self {
        WasmCloudEntity {
            public_key: public_key.into(),
            link_name: String::new(),
            contract_id: String::new(),
        }
    }

    /// A capability provider entity bound under `link_name` for `contract_id`.
    pub fn provider(
        public_key: impl Into<String>,
        contract_id: impl Into<String>,
        link_name: impl Into<String>,
    ) -> Self {
        WasmCloudEntity {
            public_key: public_key.into(),
            link_name: link_name.into(),
            contract_id: contract_id.into(),
        }
    }

    /// True for an actor: wasmbus-rpc's rule, an entity missing either the link name or
    /// the contract id cannot be addressed as a provider.
    pub fn is_actor(&self) -> bool {
        self.link_name.is_empty() || self.contract_id.is_empty()
    }

    /// True for a capability provider (both link name and contract id set).
    pub fn is_provider(&self) -> bool {
        !self.is_actor()
    }

    /// The entity URL used in invocation hashes and claims: `wasmbus://{pk}` for an actor
    /// (public key starting with `M`), otherwise
    /// `wasmbus://{contract path}/{link name}/{pk}` with `:`→`/`, spaces→`_`, lowercased.
    pub fn url(&self) -> String {
        let is_module_key = self
            .public_key
            .chars()
            .next()
            .is_some_and(|c| c.eq_ignore_ascii_case(&'M'));
        if is_module_key {
            format!("{URL_SCHEME}://{}", self.public_key)
        } else {
            format!(
                "{URL_SCHEME}://{}/{}/{}",
                self.contract_id
                    .replace(':', "/")
                    .replace(' ', "_")
                    .to_lowercase(),
                self.link_name.replace(' ', "_").to_lowercase(),
                self.public_key
            )
        }
    }
}

/// A request from one entity to another over the lattice (or in process): the operation
/// name, the payload and the anti-forgery token that proves a trusted host sent it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invocation {
    /// The caller.
    pub origin: WasmCloudEntity,
    /// The callee.
    pub target: WasmCloudEntity,
    /// Operation name, e.g. `HandleRequest` or `HttpServer.HandleRequest`.
    pub operation: String,
    /// Payload; empty when the payload travels through the object store (chunked).
    #[serde(with = "bytes_or_str")]
    pub msg: Vec<u8>,
    /// Unique invocation id (UUIDv4).
    pub id: String,
    /// The anti-forgery JWT signed by the cluster key (empty when signing is off).
    #[serde(default)]
    pub encoded_claims: String,
    /// Public key of the sending host (`N...`) or cluster (`C...`, OTP).
    #[serde(default)]
    pub host_id: String,
    /// Full payload length; when greater than `msg.len()` the payload was chunked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_length: Option<u64>,
    /// W3C trace context (`traceparent`, ...), when propagated in the envelope.
    #[serde(
        rename = "traceContext",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub trace_context: Option<HashMap<String, String>>,
}

impl Invocation {
    /// A new unsigned invocation with a fresh UUIDv4 id and `content_length` set to the
    /// payload length (RH requires the key). Sign it by filling `encoded_claims`.
    pub fn new(
        origin: WasmCloudEntity,
        target: WasmCloudEntity,
        operation: impl Into<String>,
        msg: Vec<u8>,
        host_id: impl Into<String>,
    ) -> Self {
        let content_length = Some(msg.len() as u64);
        Invocation {
            origin,
            target,
            operation: operation.into(),
            msg,
            id: new_uuid(),
            encoded_claims: String::new(),
            host_id: host_id.into(),
            content_length,
            trace_context: None,
        }
    }

    /// `{target URL}/{operation}`, the `target_url` of the anti-forgery claims.
    pub fn target_url(&self) -> String {
        format!("{}/{}", self.target.url(), self.operation)
    }

    /// The origin entity URL, the `origin_url` of the anti-forgery claims.
    pub fn origin_url(&self) -> String {
        self.origin.url()
    }

    /// The anti-forgery hash of this invocation over its current `msg`. For a chunked
    /// invocation, hash the reassembled payload with [`invocation_hash`] instead.
    pub fn hash(&self) -> String {
        invocation_hash(
            &self.origin_url(),
            &self.target_url(),
            &self.operation,
            &self.msg,
        )
    }

    /// True when the payload was moved to the object store: `content_length > len(msg)`.
    pub fn is_chunked(&self) -> bool {
        self.content_length
            .is_some_and(|len| len > self.msg.len() as u64)
    }

    /// Encodes the invocation as a MessagePack map (into one buffer sized for it).
    pub fn to_msgpack(&self) -> Result<Vec<u8>, EncodingError> {
        let envelope = 512 + self.encoded_claims.len() + self.operation.len();
        encoding::to_msgpack_sized(self, self.msg.len() + envelope)
    }

    /// Decodes an invocation from MessagePack (map or positional array).
    pub fn from_msgpack(bytes: &[u8]) -> Result<Self, EncodingError> {
        encoding::from_msgpack(bytes)
    }
}

/// The answer to an [`Invocation`]: the response payload, or an error string. The `error`
/// key is omitted on success because OTP treats any present `error` as a failure.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvocationResponse {
    /// Response payload (empty on error or when chunked).
    #[serde(with = "bytes_or_str", default)]
    pub msg: Vec<u8>,
    /// Id of the invocation this answers.
    #[serde(default)]
    pub invocation_id: String,
    /// Failure description; `None` on success. An empty string on the wire decodes as
    /// `None`, so a lenient sender's `error: ""` is not mistaken for a failure.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "non_empty_string"
    )]
    pub error: Option<String>,
    /// Full payload length; when greater than `msg.len()` the payload was chunked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_length: Option<u64>,
}

impl InvocationResponse {
    /// A successful response carrying `msg`, with `content_length` set.
    pub fn success(invocation_id: impl Into<String>, msg: Vec<u8>) -> Self {
        let content_length = Some(msg.len() as u64);
        InvocationResponse {
            msg,
            invocation_id: invocation_id.into(),
            error: None,
            content_length,
        }
    }

    /// A failed response. An empty message is replaced by `unspecified error` so the
    /// response still reads as a failure to every receiver.
    pub fn failure(invocation_id: impl Into<String>, error: impl Into<String>) -> Self {
        let mut error = error.into();
        if error.is_empty() {
            error.push_str("unspecified error");
        }
        InvocationResponse {
            msg: Vec::new(),
            invocation_id: invocation_id.into(),
            error: Some(error),
            content_length: Some(0),
        }
    }

    /// True when the response reports a failure.
    pub fn is_error(&self) -> bool {
        self.error.is_some()
    }

    /// True when the payload was moved to the object store: `content_length > len(msg)`.
    pub fn is_chunked(&self) -> bool {
        self.content_length
            .is_some_and(|len| len > self.msg.len() as u64)
    }

    /// The payload on success, the error string on failure.
    pub fn into_result(self) -> Result<Vec<u8>, String> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(self.msg),
        }
    }

    /// Encodes the response as a MessagePack map (into one buffer sized for it).
    pub fn to_msgpack(&self) -> Result<Vec<u8>, EncodingError> {
        let envelope = 128 + self.error.as_ref().map_or(0, String::len);
        encoding::to_msgpack_sized(self, self.msg.len() + envelope)
    }

    /// Decodes a response from MessagePack (map or positional array).
    pub fn from_msgpack(bytes: &[u8]) -> Result<Self, EncodingError> {
        encoding::from_msgpack(bytes)
    }
}

/// The 0.x anti-forgery hash: uppercase hex SHA-256 of
/// `origin_url ‖ target_url ‖ operation ‖ msg` (the full, un-chunked payload).
pub fn invocation_hash(origin_url: &str, target_url: &str, operation: &str, msg: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(origin_url.as_bytes());
    hasher.update(target_url.as_bytes());
    hasher.update(operation.as_bytes());
    hasher.update(msg);
    upper_hex(&hasher.finalize())
}

/// A host's health probe to a provider. OTP sends `{placeholder: true}`, the Rust host an
/// empty body; [`HealthCheckRequest::decode`] accepts both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HealthCheckRequest {
    /// Meaningless marker OTP sends so the map is not empty.
    pub placeholder: bool,
}

impl Default for HealthCheckRequest {
    fn default() -> Self {
        HealthCheckRequest { placeholder: true }
    }
}

impl HealthCheckRequest {
    /// Decodes a health request body; an empty body (Rust host) is the default request.
    pub fn decode(bytes: &[u8]) -> Result<Self, EncodingError> {
        if bytes.is_empty() {
            Ok(Self::default())
        } else {
            encoding::from_msgpack(bytes)
        }
    }
}

/// A provider's (or actor's) answer to a health probe.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheckResponse {
    /// Whether the provider considers itself healthy.
    #[serde(default)]
    pub healthy: bool,
    /// Optional explanation, usually set when unhealthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl HealthCheckResponse {
    /// A healthy response without a message.
    pub fn healthy() -> Self {
        HealthCheckResponse {
            healthy: true,
            message: None,
        }
    }

    /// An unhealthy response explaining why.
    pub fn unhealthy(message: impl Into<String>) -> Self {
        HealthCheckResponse {
            healthy: false,
            message: Some(message.into()),
        }
    }
}

/// The JSON body of a host's `...shutdown` request to a provider; the provider acts only
/// when `host_id` is its own host's or empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShutdownRequest {
    /// The requesting host's id.
    #[serde(default)]
    pub host_id: String,
}

/// OpenTelemetry settings passed to providers by the Rust host (ignored by older SDKs).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OtelConfig {
    /// Value for `OTEL_TRACES_EXPORTER`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traces_exporter: Option<String>,
    /// Value for `OTEL_EXPORTER_OTLP_ENDPOINT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exporter_otlp_endpoint: Option<String>,
}

/// Everything a capability provider process needs to join the lattice, written by the
/// host to the provider's stdin as one base64(JSON) line.
///
/// `env_values`, `link_definitions` and `cluster_issuers` are always written because
/// wasmbus-rpc 0.15 providers fail without them; optional keys are omitted when unset.
/// Decoding requires only the identity keys and defaults the rest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostData {
    /// The launching host's `N...` key.
    pub host_id: String,
    /// Lattice prefix for RPC subjects.
    pub lattice_rpc_prefix: String,
    /// The provider's link name.
    pub link_name: String,
    /// NATS user JWT for the RPC connection (may be empty).
    #[serde(default)]
    pub lattice_rpc_user_jwt: String,
    /// NATS user seed for the RPC connection (may be empty).
    #[serde(default)]
    pub lattice_rpc_user_seed: String,
    /// NATS address, `host:port` without scheme.
    #[serde(default)]
    pub lattice_rpc_url: String,
    /// Whether the RPC connection uses TLS (OTP sends a bool or an int).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "bool_or_int"
    )]
    pub lattice_rpc_tls: Option<bool>,
    /// Our extension: a PEM file of the CA the lattice's TLS certificate chains to (a
    /// lattice made by `wash lattice init --tls` has its own CA, which a provider cannot
    /// know otherwise). 0.x providers ignore it; omitted when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lattice_rpc_tls_ca_file: Option<String>,
    /// The provider's own `V...` public key.
    pub provider_key: String,
    /// Cluster seed (`SC...`) used to sign the provider's invocations to actors.
    #[serde(default)]
    pub invocation_seed: String,
    /// Legacy environment values (always `{}` from OTP, but required by providers).
    #[serde(default)]
    pub env_values: HashMap<String, String>,
    /// Provider instance id (UUIDv4).
    #[serde(default)]
    pub instance_id: String,
    /// The links already defined for this provider and link name.
    #[serde(default)]
    pub link_definitions: Vec<LinkDefinition>,
    /// Public keys of clusters whose invocation tokens the provider must accept.
    #[serde(default)]
    pub cluster_issuers: Vec<String>,
    /// The `configuration` string of the launch command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_json: Option<String>,
    /// The host's RPC timeout in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_rpc_timeout_ms: Option<u64>,
    /// Whether the provider should log structured (JSON) lines.
    #[serde(default)]
    pub structured_logging: bool,
    /// Log level, e.g. `info`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_level: Option<String>,
    /// JetStream domain of the lattice, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub js_domain: Option<String>,
    /// OpenTelemetry settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otel_config: Option<OtelConfig>,
}

impl HostData {
    /// The stdin line: standard base64 of the JSON encoding, terminated by `\n`.
    pub fn to_stdin_line(&self) -> Result<String, EncodingError> {
        use base64::Engine as _;
        let json = encoding::to_json(self)?;
        let mut line = base64::engine::general_purpose::STANDARD.encode(json);
        line.push('\n');
        Ok(line)
    }

    /// Parses the stdin line (surrounding whitespace is trimmed).
    pub fn from_stdin_line(line: &str) -> Result<Self, EncodingError> {
        use base64::Engine as _;
        let trimmed = line.trim();
        let json = base64::engine::general_purpose::STANDARD
            .decode(trimmed)
            .map_err(|e| EncodingError::decode::<Self>(Format::Base64, trimmed.len(), e))?;
        encoding::from_json(&json)
    }
}

/// A fresh UUIDv4 in hyphenated form, used for invocation and instance ids.
pub fn new_uuid() -> String {
    uuid::Uuid::new_v4().hyphenated().to_string()
}

/// Uppercase hexadecimal of `bytes`, the form of every hash in the protocol.
pub(crate) fn upper_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// Decodes an optional string, mapping `""` to `None`.
fn non_empty_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let value = Option::<String>::deserialize(d)?;
    Ok(value.filter(|s| !s.is_empty()))
}

/// Decodes a flag sent as a bool or an integer (non-zero = true), or nil.
fn bool_or_int<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Flag {
        Bool(bool),
        Int(i64),
    }
    Ok(Option::<Flag>::deserialize(d)?.map(|f| match f {
        Flag::Bool(b) => b,
        Flag::Int(i) => i != 0,
    }))
}

/// Serde adapter for payload bytes: writes MessagePack `bin`, reads `bin`, `str` (Elixir
/// packs binaries as strings), an array of integers (older encoders), or nil (empty).
pub mod bytes_or_str {
    use serde::de::{self, SeqAccess, Visitor};
    use serde::{Deserializer, Serializer};

    /// Writes the bytes as a binary value (MessagePack `bin`).
    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        serde_bytes::serialize(bytes, s)
    }

    /// Reads bytes from a binary, string, integer array or nil value.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        d.deserialize_any(BytesVisitor)
    }

    struct BytesVisitor;

    impl<'de> Visitor<'de> for BytesVisitor {
        type Value = Vec<u8>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("binary data, a string or an array of bytes")
        }

        fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
            Ok(v.to_vec())
        }

        fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(v)
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<u8>, E> {
            Ok(v.as_bytes().to_vec())
        }

        fn visit_string<E: de::Error>(self, v: String) -> Result<Vec<u8>, E> {
            Ok(v.into_bytes())
        }

        fn visit_unit<E: de::Error>(self) -> Result<Vec<u8>, E> {
            Ok(Vec::new())
        }

        fn visit_none<E: de::Error>(self) -> Result<Vec<u8>, E> {
            Ok(Vec::new())
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64 * 1024));
            while let Some(b) = seq.next_element::<u8>()? {
                out.push(b);
            }
            Ok(out)
        }
    }
}
