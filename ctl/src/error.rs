//! The errors of the control client. Each kind is one a caller acts on differently (start
//! a host, raise the timeout, fix an id, read the host's refusal), so they are variants
//! rather than strings, and every message ends with what to do next.

use std::time::Duration;

/// Why a control request or a lattice call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CtlError {
    /// Nobody serves the lattice: no responders on a lattice-wide subject, or an empty
    /// scatter/gather (`ping.hosts`, auctions).
    #[error(
        "no hosts answered on lattice `{lattice}` at {server}; start one with `wash up --nats-url {server}` (lattice `{lattice}`), or check --nats-url and --lattice"
    )]
    NoHosts {
        /// The lattice asked.
        lattice: String,
        /// The NATS server asked.
        server: String,
    },
    /// Someone listens on the subject but did not answer within the timeout.
    #[error(
        "timed out after {} ms waiting for {what} (subject {subject}); the host may be busy or stuck: retry with a larger --timeout-ms",
        timeout.as_millis()
    )]
    TimedOut {
        /// What was asked, e.g. `the inventory of host N...`.
        what: String,
        /// The subject of the request.
        subject: String,
        /// The timeout that expired.
        timeout: Duration,
    },
    /// The host, actor or call alias named does not exist in the lattice (no responders
    /// on its subject, or absent from the lattice's claims).
    #[error("{what} not found on lattice `{lattice}`; {hint}")]
    NotFound {
        /// What was looked for, e.g. `host NABC`.
        what: String,
        /// The lattice searched.
        lattice: String,
        /// What to do next.
        hint: String,
    },
    /// The host answered with `accepted: false`.
    #[error("{target} rejected {operation}: {message}")]
    Rejected {
        /// Who refused, e.g. `host NABC` or `the lattice`.
        target: String,
        /// The request refused, e.g. `start actor`.
        operation: String,
        /// The host's reason.
        message: String,
    },
    /// The actor was reached and the invocation failed (the InvocationResponse `error`).
    #[error("calling {operation} on actor {actor} failed: {message}")]
    Invocation {
        /// The actor's public key.
        actor: String,
        /// The operation called.
        operation: String,
        /// The error the serving host reported.
        message: String,
    },
    /// A reply arrived that is not what the protocol says it should be.
    #[error(
        "bad reply to {what} on {subject}: {detail}; is every host on this lattice a compatible version?"
    )]
    BadReply {
        /// What was asked.
        what: String,
        /// The subject of the request.
        subject: String,
        /// What was wrong with it.
        detail: String,
    },
    /// The request itself is invalid (bad key, malformed subject token, payload too large).
    #[error("invalid request: {0}")]
    InvalidInput(String),
    /// NATS failed underneath (connection lost, cannot subscribe or publish).
    #[error(
        "NATS error while asking for {what} at {server}: {message}; check the server is reachable"
    )]
    Transport {
        /// What was asked.
        what: String,
        /// The NATS server.
        server: String,
        /// The client library's error.
        message: String,
    },
}

impl CtlError {
    /// True for [`CtlError::NoHosts`].
    pub fn is_no_hosts(&self) -> bool {
        matches!(self, CtlError::NoHosts { .. })
    }

    /// True for [`CtlError::TimedOut`].
    pub fn is_timed_out(&self) -> bool {
        matches!(self, CtlError::TimedOut { .. })
    }

    /// True for [`CtlError::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, CtlError::NotFound { .. })
    }

    /// True for [`CtlError::Rejected`].
    pub fn is_rejected(&self) -> bool {
        matches!(self, CtlError::Rejected { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_say_what_to_do_next() {
        let e = CtlError::NoHosts {
            lattice: "default".into(),
            server: "nats://127.0.0.1:4222".into(),
        };
        assert_eq!(
            e.to_string(),
            "no hosts answered on lattice `default` at nats://127.0.0.1:4222; start one with \
             `wash up --nats-url nats://127.0.0.1:4222` (lattice `default`), or check \
             --nats-url and --lattice"
        );
        assert!(e.is_no_hosts() && !e.is_timed_out());

        let e = CtlError::TimedOut {
            what: "the inventory of host Nx".into(),
            subject: "wasmbus.ctl.default.get.Nx.inv".into(),
            timeout: Duration::from_millis(250),
        };
        let text = e.to_string();
        assert!(text.starts_with("timed out after 250 ms waiting for the inventory of host Nx"));
        assert!(text.contains("--timeout-ms"), "{text}");
        assert!(e.is_timed_out());

        let e = CtlError::Rejected {
            target: "host Nx".into(),
            operation: "start actor".into(),
            message: "actor_ref /nope is not a readable file".into(),
        };
        assert_eq!(
            e.to_string(),
            "host Nx rejected start actor: actor_ref /nope is not a readable file"
        );
        assert!(e.is_rejected() && !e.is_not_found());
    }
}
