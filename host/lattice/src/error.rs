//! Errors of the lattice: one type for a failed invocation (its text is what travels in
//! an InvocationResponse `error`), one for host management, one for the link/claims store.
//!
//! Invocation errors are plain messages with a stable prefix per kind, so that an error
//! that crossed NATS as a string is classified into the same variant on the calling host:
//! the router behaves the same whether the target is local or remote.

use std::time::Duration;

use nimbus_runtime::CallError;

/// Why an invocation failed. Each variant holds the complete, user-facing message; the
/// kinds stay distinct so callers can react (retry on `NoResponders`, fix a link on
/// `LinkMissing`, ...).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvocationError {
    /// Nothing in the lattice serves the target's subject.
    #[error("{0}")]
    NoResponders(String),
    /// The target did not answer in time.
    #[error("{0}")]
    TimedOut(String),
    /// The target actor crashed (wasm trap).
    #[error("{0}")]
    ActorTrapped(String),
    /// The calling actor has no link for the contract and link name it used.
    #[error("{0}")]
    LinkMissing(String),
    /// An anti-forgery token or an actor's claims did not verify.
    #[error("{0}")]
    ClaimsInvalid(String),
    /// The caller's claims do not include the contract it tried to use.
    #[error("{0}")]
    CapabilityNotGranted(String),
    /// The target is not running where the invocation arrived (or at all).
    #[error("{0}")]
    UnknownTarget(String),
    /// The actor or provider has no such operation.
    #[error("{0}")]
    UnknownOperation(String),
    /// The payload exceeds the host's maximum.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The request was not a decodable Invocation.
    #[error("{0}")]
    Malformed(String),
    /// The target ran and reported an error (guest error, provider error, ...).
    #[error("{0}")]
    Failed(String),
    /// The NATS connection failed (not a timeout or missing responder).
    #[error("{0}")]
    Transport(String),
}

const NO_RESPONDERS: &str = "no responders: ";
const TIMED_OUT: &str = "timed out: ";
const TRAPPED: &str = "actor trapped: ";
const NO_LINK: &str = "no link for contract ";
const CLAIMS_INVALID: &str = "claims invalid: ";
const CAPABILITY: &str = "capability ";
const NOT_GRANTED: &str = " not granted to actor ";
const UNKNOWN_TARGET: &str = "unknown target: ";
const UNKNOWN_OPERATION: &str = "unknown operation ";
const TOO_LARGE: &str = "payload too large (";
const MALFORMED: &str = "malformed invocation: ";
const TRANSPORT: &str = "lattice connection failed: ";

impl InvocationError {
    /// Nobody subscribes to `subject`.
    pub fn no_responders(subject: &str, what: &str) -> Self {
        Self::NoResponders(format!(
            "{NO_RESPONDERS}nothing serves {subject}: {what} is not running on any host of this lattice; start it (`wash ctl start`) or check the lattice prefix"
        ))
    }

    /// `what` did not answer within `timeout`.
    pub fn timed_out(what: &str, timeout: Duration) -> Self {
        Self::TimedOut(format!(
            "{TIMED_OUT}{what} did not answer within {timeout:?}; it may be overloaded or stuck, raise the RPC timeout if the work is legitimately slow"
        ))
    }

    /// No link for (actor, contract, link name).
    pub fn link_missing(actor_id: &str, contract_id: &str, link_name: &str) -> Self {
        Self::LinkMissing(format!(
            "{NO_LINK}{contract_id} link name {link_name} from actor {actor_id}; add one with `wash ctl link put {actor_id} <provider id> {contract_id} --link-name {link_name}`"
        ))
    }

    /// The actor's claims do not grant `contract_id`.
    pub fn capability_not_granted(actor_id: &str, contract_id: &str) -> Self {
        Self::CapabilityNotGranted(format!(
            "{CAPABILITY}{contract_id}{NOT_GRANTED}{actor_id}; re-sign the actor with `wash claims sign --cap {contract_id}`"
        ))
    }

    /// Invalid claims or anti-forgery token.
    pub fn claims_invalid(reason: impl std::fmt::Display) -> Self {
        Self::ClaimsInvalid(format!("{CLAIMS_INVALID}{reason}"))
    }

    /// `what` is not served here.
    pub fn unknown_target(what: impl std::fmt::Display) -> Self {
        Self::UnknownTarget(format!("{UNKNOWN_TARGET}{what}"))
    }

    /// A payload of `size` bytes against a maximum of `max`.
    pub fn payload_too_large(size: u64, max: usize) -> Self {
        Self::PayloadTooLarge(format!(
            "{TOO_LARGE}{size} > {max} bytes); send less data per call or raise the host's max payload"
        ))
    }

    /// The request could not be decoded.
    pub fn malformed(reason: impl std::fmt::Display) -> Self {
        Self::Malformed(format!(
            "{MALFORMED}{reason}; send a msgpack-encoded Invocation"
        ))
    }

    /// The NATS connection failed.
    pub fn transport(reason: impl std::fmt::Display) -> Self {
        Self::Transport(format!("{TRANSPORT}{reason}"))
    }

    /// Classifies an error text received from another host (an InvocationResponse
    /// `error`) into the variant that host produced.
    pub fn from_remote(message: String) -> Self {
        let m = message.as_str();
        if m.starts_with(NO_RESPONDERS) {
            Self::NoResponders(message)
        } else if m.starts_with(TIMED_OUT) {
            Self::TimedOut(message)
        } else if m.starts_with(TRAPPED) {
            Self::ActorTrapped(message)
        } else if m.starts_with(NO_LINK) {
            Self::LinkMissing(message)
        } else if m.starts_with(CLAIMS_INVALID) {
            Self::ClaimsInvalid(message)
        } else if m.starts_with(CAPABILITY) && m.contains(NOT_GRANTED) {
            Self::CapabilityNotGranted(message)
        } else if m.starts_with(UNKNOWN_TARGET) {
            Self::UnknownTarget(message)
        } else if m.starts_with(UNKNOWN_OPERATION) {
            Self::UnknownOperation(message)
        } else if m.starts_with(TOO_LARGE) {
            Self::PayloadTooLarge(message)
        } else if m.starts_with(MALFORMED) {
            Self::Malformed(message)
        } else if m.starts_with(TRANSPORT) {
            Self::Transport(message)
        } else {
            Self::Failed(message)
        }
    }
}

impl From<CallError> for InvocationError {
    fn from(e: CallError) -> Self {
        match e {
            CallError::Trapped { .. } => Self::ActorTrapped(e.to_string()),
            CallError::DeadlineExceeded { .. } => Self::TimedOut(format!("{TIMED_OUT}{e}")),
            // The runtime's text already starts with "unknown operation ".
            CallError::UnknownOperation { .. } => Self::UnknownOperation(e.to_string()),
            other => Self::Failed(other.to_string()),
        }
    }
}

impl From<nimbus_provider_sdk::ProviderError> for InvocationError {
    fn from(e: nimbus_provider_sdk::ProviderError) -> Self {
        use nimbus_provider_sdk::ProviderError as P;
        match &e {
            P::UnknownOperation {
                contract_id,
                operation,
            } => Self::UnknownOperation(format!(
                "{UNKNOWN_OPERATION}{operation} for contract {contract_id}"
            )),
            P::NotLinked { actor_id } => Self::LinkMissing(format!(
                "{NO_LINK}this provider from actor {actor_id} (the provider holds no link for it); add one with `wash ctl link put`"
            )),
            _ => Self::from_remote(e.to_string()),
        }
    }
}

/// Why a host operation (start, stop, scale, link, connect) failed.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The actor module could not be loaded.
    #[error("failed to load actor: {0}")]
    Load(#[from] nimbus_runtime::LoadError),
    /// An actor file could not be read.
    #[error("failed to read actor file {path}: {source}")]
    ReadActor {
        /// The path that was given.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// An actor with another public key is running; `upd` requires the same key.
    #[error("the new module is actor {new}, not {old}; an update must keep the actor's public key")]
    KeyMismatch {
        /// The running actor.
        old: String,
        /// The new module's key.
        new: String,
    },
    /// The actor or provider is not running on this host.
    #[error("{0} is not running on this host")]
    NotRunning(String),
    /// A provider with this key and link name already runs here.
    #[error(
        "provider {provider_id} already runs on this host with link name {link_name}; stop it first or use another link name"
    )]
    ProviderAlreadyRunning {
        /// Provider key.
        provider_id: String,
        /// Link name.
        link_name: String,
    },
    /// No provider factory or executable is known under this reference.
    #[error(
        "unknown provider reference `{0}`: register an in-process provider under this name with `HostBuilder::provider_factory`, or give the path of a provider executable"
    )]
    UnknownProvider(String),
    /// The provider refused to start.
    #[error("provider failed to start: {0}")]
    ProviderStart(String),
    /// Scaling up needs a reference to load the actor from.
    #[error(
        "actor {0} is not running here and no actor_ref was given; pass the path of the signed .wasm to scale it up"
    )]
    NoActorRef(String),
    /// A bad configuration value.
    #[error("invalid host configuration: {0}")]
    Config(String),
    /// Connecting to NATS failed.
    #[error(
        "failed to connect to NATS at {urls}: {reason}; check the URL, credentials and that the server runs"
    )]
    Connect {
        /// The server URLs tried.
        urls: String,
        /// What went wrong.
        reason: String,
    },
    /// A NATS operation (subscribe, publish) failed.
    #[error("NATS operation failed: {0}")]
    Nats(String),
    /// The link and claims store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The host is stopping or stopped.
    #[error("the host is stopped")]
    Stopped,
    /// A background task of the host failed unexpectedly (a bug: please report it).
    #[error("internal host error: {0}")]
    Internal(String),
}

/// Why the lattice link/claims store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The JetStream KV bucket could not be opened or created.
    #[error(
        "cannot open the lattice data bucket {bucket}: {reason}; is JetStream enabled on the NATS server (`nats-server -js`)?"
    )]
    Bucket {
        /// The bucket name.
        bucket: String,
        /// What went wrong.
        reason: String,
    },
    /// A read, write or watch failed.
    #[error("lattice data store {op} failed: {reason}")]
    Operation {
        /// The operation (`put`, `delete`, `watch`, ...).
        op: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// A stored value could not be encoded or decoded.
    #[error("lattice data entry {key} is not valid JSON: {reason}")]
    Encoding {
        /// The KV key.
        key: String,
        /// The decoder's message.
        reason: String,
    },
}

impl StoreError {
    pub(crate) fn op(op: &'static str, reason: impl std::fmt::Display) -> Self {
        Self::Operation {
            op,
            reason: reason.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_errors_classify_into_the_same_kind() {
        let all = [
            InvocationError::no_responders("wasmbus.rpc.default.Mx", "actor Mx"),
            InvocationError::timed_out("actor Mx", Duration::from_millis(20)),
            InvocationError::link_missing("Mx", "wasmcloud:keyvalue", "default"),
            InvocationError::capability_not_granted("Mx", "wasmcloud:keyvalue"),
            InvocationError::claims_invalid("bad token"),
            InvocationError::unknown_target("actor Mx is not running on host N1"),
            InvocationError::payload_too_large(10, 5),
            InvocationError::malformed("not msgpack"),
            InvocationError::transport("closed"),
            InvocationError::ActorTrapped("actor trapped: actor Mx crashed in Trap: x".into()),
            InvocationError::Failed("actor Mx returned an error for Fail: no".into()),
        ];
        for e in all {
            assert_eq!(InvocationError::from_remote(e.to_string()), e);
        }
    }

    #[test]
    fn messages_name_the_fix() {
        let e = InvocationError::link_missing("Mx", "wasmcloud:keyvalue", "default");
        assert_eq!(
            e.to_string().split(';').next(),
            Some("no link for contract wasmcloud:keyvalue link name default from actor Mx")
        );
        let e = InvocationError::capability_not_granted("Mx", "wasmcloud:keyvalue");
        assert!(
            e.to_string()
                .contains("wash claims sign --cap wasmcloud:keyvalue")
        );
        let e = InvocationError::payload_too_large(2000, 1024);
        assert!(
            e.to_string()
                .starts_with("payload too large (2000 > 1024 bytes)")
        );
    }
}
