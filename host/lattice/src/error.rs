//! Errors of the lattice host: host management ([`HostError`]) and the link/claims store
//! ([`StoreError`]). A failed invocation is `nimbus-rpc`'s [`InvocationError`] (typed kind +
//! message, classified from the wire in that crate only); this module only says which kind
//! a runtime failure is.

pub use nimbus_rpc::{ErrorKind, InvocationError};
use nimbus_runtime::CallError;

/// The invocation error an actor call's failure becomes: a trap, a deadline, an unknown
/// operation and a full pool keep their kind across the lattice.
pub(crate) fn call_error(e: CallError) -> InvocationError {
    match e {
        CallError::Trapped { .. } => InvocationError::trapped(e),
        CallError::DeadlineExceeded { .. } => {
            InvocationError::new(ErrorKind::TimedOut, e.to_string())
        }
        // The runtime's text already starts with "unknown operation ".
        CallError::UnknownOperation { .. } => {
            InvocationError::new(ErrorKind::UnknownOperation, e.to_string())
        }
        CallError::Busy { .. } => InvocationError::new(ErrorKind::Busy, e.to_string()),
        other => InvocationError::failed(other.to_string()),
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
    use std::time::Duration;

    use super::*;

    #[test]
    fn runtime_failures_keep_their_kind() {
        let trapped = call_error(CallError::Trapped {
            actor: "Mx".into(),
            operation: "Trap".into(),
            message: "unreachable".into(),
        });
        assert_eq!(trapped.kind(), ErrorKind::ActorTrapped, "{trapped}");
        assert_eq!(InvocationError::from_wire(trapped.to_wire()), trapped);
        let busy = call_error(CallError::Busy {
            actor: "Mx".into(),
            limit: nimbus_runtime::BusyLimit::HostInstances {
                max_total: 100,
                waited: Duration::from_millis(20),
            },
        });
        assert_eq!(busy.kind(), ErrorKind::Busy, "{busy}");
        assert_eq!(
            InvocationError::from_wire(busy.to_wire()).kind(),
            ErrorKind::Busy
        );
        // The message says which bound was hit and what to change.
        let text = busy.to_string();
        assert!(
            text.starts_with("busy: actor Mx cannot take the call now: "),
            "{text}"
        );
        assert!(text.contains("limit of 100 instances"), "{text}");
        assert!(text.contains("max_total_instances"), "{text}");
    }
}
