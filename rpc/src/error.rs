//! Why an invocation failed: a typed kind the caller reacts to, and the message the user
//! reads. On the wire (an InvocationResponse `error`) only the message travels, as the
//! 0.x lattice has it; each kind's message starts with a stable phrase, so the receiving
//! side recovers the same kind. Those phrases are matched here and nowhere else.

use std::time::Duration;

/// What went wrong, so callers can react without reading text: retry on
/// [`ErrorKind::NoResponders`] or [`ErrorKind::Busy`], fix a link on
/// [`ErrorKind::LinkMissing`], answer 503 or 500, and so on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Nothing in the lattice serves the target's subject.
    NoResponders,
    /// The target did not answer in time.
    TimedOut,
    /// The target is at its admission limit (instances and queue full); try again later.
    Busy,
    /// The target actor crashed (wasm trap).
    ActorTrapped,
    /// The calling actor has no link for the contract and link name it used.
    LinkMissing,
    /// An anti-forgery token or an actor's claims did not verify.
    ClaimsInvalid,
    /// The same signed invocation arrived a second time (a replay); it is refused, a
    /// retry must be a new invocation.
    Replayed,
    /// The caller's claims do not include the contract it tried to use.
    CapabilityNotGranted,
    /// The target is not running where the invocation arrived (or at all).
    UnknownTarget,
    /// The actor or provider has no such operation.
    UnknownOperation,
    /// The payload exceeds the receiver's maximum.
    PayloadTooLarge,
    /// The request was not a decodable Invocation.
    Malformed,
    /// The target ran and reported an error (guest error, provider error, ...).
    Failed,
    /// The NATS connection failed (not a timeout or a missing responder).
    Transport,
}

/// The phrase each kind's message starts with (and, for a capability, contains), as
/// 0.x-style peers write it. [`ErrorKind::Failed`] has none: it is what is left.
const NO_RESPONDERS: &str = "no responders: ";
const TIMED_OUT: &str = "timed out: ";
const BUSY: &str = "busy: ";
const TRAPPED: &str = "actor trapped: ";
const NO_LINK: &str = "no link for contract ";
const CLAIMS_INVALID: &str = "claims invalid: ";
const REPLAYED: &str = "replayed invocation: ";
const CAPABILITY: &str = "capability ";
const NOT_GRANTED: &str = " not granted to actor ";
const UNKNOWN_TARGET: &str = "unknown target: ";
const UNKNOWN_OPERATION: &str = "unknown operation ";
const TOO_LARGE: &str = "payload too large (";
const MALFORMED: &str = "malformed invocation: ";
const TRANSPORT: &str = "lattice connection failed: ";

/// A failed invocation: its [`ErrorKind`] and the complete, user-facing message (which
/// says what to do next).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InvocationError {
    kind: ErrorKind,
    message: String,
}

impl InvocationError {
    /// The kind, for callers that react to it.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message, as the user sees it.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The text that travels in an InvocationResponse `error`.
    pub fn to_wire(&self) -> String {
        self.message.clone()
    }

    /// Classifies an error text received from a peer into the kind it produced; text
    /// without a known phrase (a guest's own error, a 0.x provider's) is
    /// [`ErrorKind::Failed`].
    pub fn from_wire(message: impl Into<String>) -> Self {
        let message = message.into();
        let m = message.as_str();
        let kind = if m.starts_with(NO_RESPONDERS) {
            ErrorKind::NoResponders
        } else if m.starts_with(TIMED_OUT) {
            ErrorKind::TimedOut
        } else if m.starts_with(BUSY) {
            ErrorKind::Busy
        } else if m.starts_with(TRAPPED) {
            ErrorKind::ActorTrapped
        } else if m.starts_with(NO_LINK) {
            ErrorKind::LinkMissing
        } else if m.starts_with(CLAIMS_INVALID) {
            ErrorKind::ClaimsInvalid
        } else if m.starts_with(REPLAYED) {
            ErrorKind::Replayed
        } else if m.starts_with(CAPABILITY) && m.contains(NOT_GRANTED) {
            ErrorKind::CapabilityNotGranted
        } else if m.starts_with(UNKNOWN_TARGET) {
            ErrorKind::UnknownTarget
        } else if m.starts_with(UNKNOWN_OPERATION) {
            ErrorKind::UnknownOperation
        } else if m.starts_with(TOO_LARGE) {
            ErrorKind::PayloadTooLarge
        } else if m.starts_with(MALFORMED) {
            ErrorKind::Malformed
        } else if m.starts_with(TRANSPORT) {
            ErrorKind::Transport
        } else {
            ErrorKind::Failed
        };
        InvocationError { kind, message }
    }

    /// An error of `kind` whose message gets the kind's phrase in front unless it already
    /// starts with it (so wrapping twice does not repeat it).
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        let message = message.into();
        let phrase = match kind {
            ErrorKind::NoResponders => NO_RESPONDERS,
            ErrorKind::TimedOut => TIMED_OUT,
            ErrorKind::Busy => BUSY,
            ErrorKind::ActorTrapped => TRAPPED,
            ErrorKind::ClaimsInvalid => CLAIMS_INVALID,
            ErrorKind::Replayed => REPLAYED,
            ErrorKind::UnknownTarget => UNKNOWN_TARGET,
            ErrorKind::Malformed => MALFORMED,
            ErrorKind::Transport => TRANSPORT,
            // Their phrase is part of a sentence the constructors below write whole.
            ErrorKind::LinkMissing
            | ErrorKind::CapabilityNotGranted
            | ErrorKind::UnknownOperation
            | ErrorKind::PayloadTooLarge
            | ErrorKind::Failed => "",
        };
        let message = if message.starts_with(phrase) {
            message
        } else {
            format!("{phrase}{message}")
        };
        InvocationError { kind, message }
    }

    /// Nobody subscribes to `subject`.
    pub fn no_responders(subject: &str, what: &str) -> Self {
        Self::new(
            ErrorKind::NoResponders,
            format!(
                "nothing serves {subject}: {what} is not running on any host of this lattice; start it (`wash ctl start`) or check the lattice prefix"
            ),
        )
    }

    /// `what` did not answer within `timeout`.
    pub fn timed_out(what: &str, timeout: Duration) -> Self {
        Self::new(
            ErrorKind::TimedOut,
            format!(
                "{what} did not answer within {timeout:?}; it may be overloaded or stuck, raise the RPC timeout if the work is legitimately slow"
            ),
        )
    }

    /// `what` is at its admission limit; `reason` says which one.
    pub fn busy(what: &str, reason: impl std::fmt::Display) -> Self {
        Self::new(
            ErrorKind::Busy,
            format!(
                "{what} is at its limit ({reason}); retry shortly, or raise its instance limits"
            ),
        )
    }

    /// An actor trapped; `reason` is the runtime's description.
    pub fn trapped(reason: impl std::fmt::Display) -> Self {
        Self::new(ErrorKind::ActorTrapped, reason.to_string())
    }

    /// No link for (actor, contract, link name).
    pub fn link_missing(actor_id: &str, contract_id: &str, link_name: &str) -> Self {
        Self::new(
            ErrorKind::LinkMissing,
            format!(
                "{NO_LINK}{contract_id} link name {link_name} from actor {actor_id}; add one with `wash ctl link put {actor_id} <provider id> {contract_id} --link-name {link_name}`"
            ),
        )
    }

    /// A provider holds no link for the calling actor (the provider's own check, after
    /// the host's).
    pub fn not_linked_at_provider(actor_id: &str, contract_id: &str) -> Self {
        Self::new(
            ErrorKind::LinkMissing,
            format!(
                "{NO_LINK}{contract_id}: no link from actor {actor_id} to this provider (the provider holds none for it); add one with `wash ctl link put`"
            ),
        )
    }

    /// The actor's claims do not grant `contract_id`.
    pub fn capability_not_granted(actor_id: &str, contract_id: &str) -> Self {
        Self::new(
            ErrorKind::CapabilityNotGranted,
            format!(
                "{CAPABILITY}{contract_id}{NOT_GRANTED}{actor_id}; re-sign the actor with `wash claims sign --cap {contract_id}`"
            ),
        )
    }

    /// Invalid claims or anti-forgery token.
    pub fn claims_invalid(reason: impl std::fmt::Display) -> Self {
        Self::new(ErrorKind::ClaimsInvalid, reason.to_string())
    }

    /// A signed invocation delivered a second time; `reason` says which.
    pub fn replayed(reason: impl std::fmt::Display) -> Self {
        Self::new(ErrorKind::Replayed, reason.to_string())
    }

    /// `what` is not served here.
    pub fn unknown_target(what: impl std::fmt::Display) -> Self {
        Self::new(ErrorKind::UnknownTarget, what.to_string())
    }

    /// `operation` is not handled by `what`.
    pub fn unknown_operation(operation: &str, what: impl std::fmt::Display) -> Self {
        Self::new(
            ErrorKind::UnknownOperation,
            format!("{UNKNOWN_OPERATION}{operation} for {what}"),
        )
    }

    /// A payload of `size` bytes against a maximum of `max`.
    pub fn payload_too_large(size: u64, max: usize) -> Self {
        Self::new(
            ErrorKind::PayloadTooLarge,
            format!(
                "{TOO_LARGE}{size} > {max} bytes); send less data per call or raise the host's max payload"
            ),
        )
    }

    /// The request could not be decoded.
    pub fn malformed(reason: impl std::fmt::Display) -> Self {
        Self::new(
            ErrorKind::Malformed,
            format!("{reason}; send a msgpack-encoded Invocation"),
        )
    }

    /// The target ran and failed; `message` is its own text.
    pub fn failed(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Failed, message)
    }

    /// The NATS connection failed.
    pub fn transport(reason: impl std::fmt::Display) -> Self {
        Self::new(ErrorKind::Transport, reason.to_string())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_kind_survives_the_wire() {
        let errors = [
            InvocationError::no_responders("wasmbus.rpc.x.M", "actor M"),
            InvocationError::timed_out("actor M", Duration::from_secs(2)),
            InvocationError::busy("actor M", "4 instances busy, 16 callers queued"),
            InvocationError::trapped("wasm trap: unreachable"),
            InvocationError::link_missing("M", "wasmcloud:keyvalue", "default"),
            InvocationError::capability_not_granted("M", "wasmcloud:keyvalue"),
            InvocationError::claims_invalid("bad token"),
            InvocationError::replayed("invocation X was already delivered here"),
            InvocationError::unknown_target("actor M is not running on host N"),
            InvocationError::unknown_operation("Nope", "actor M"),
            InvocationError::payload_too_large(2_000_000, 1_000_000),
            InvocationError::malformed("not msgpack"),
            InvocationError::failed("the guest said no"),
            InvocationError::transport("connection reset"),
        ];
        let mut kinds = std::collections::HashSet::new();
        for e in errors {
            let back = InvocationError::from_wire(e.to_wire());
            assert_eq!(back, e, "{e}");
            kinds.insert(e.kind());
        }
        assert_eq!(kinds.len(), 14, "each constructor has its own kind");
    }

    #[test]
    fn text_from_a_0x_peer_is_a_plain_failure() {
        let e = InvocationError::from_wire("Failed to deserialize: invalid type");
        assert_eq!(e.kind(), ErrorKind::Failed);
        assert_eq!(e.message(), "Failed to deserialize: invalid type");
    }

    #[test]
    fn a_phrase_is_not_repeated() {
        let once = InvocationError::new(ErrorKind::TimedOut, "timed out: actor M");
        assert_eq!(once.message(), "timed out: actor M");
        let wrapped = InvocationError::new(ErrorKind::TimedOut, "actor M");
        assert_eq!(wrapped.message(), "timed out: actor M");
    }
}
