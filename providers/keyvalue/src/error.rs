//! The store's typed errors. Every message names the key involved and says what the caller
//! can do, because the text travels back to the actor unchanged.

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum KvError {
    /// The key holds a different kind of value than the operation works on (a list given to
    /// `Add`, a string given to `SetAdd`, ...). The stored value is left unchanged.
    #[error(
        "key {key:?} holds {found}, but {operation} works on {expected}; use another key or Del this one first"
    )]
    WrongType {
        /// The key that was addressed.
        key: String,
        /// The store operation (`Add`, `Push`, `SetAdd`, ...).
        operation: &'static str,
        /// What the operation needs (`a string`, `a list`, `a set`).
        expected: &'static str,
        /// What the key holds (`a list`, ...; `a value of another type` when the backend
        /// does not say).
        found: &'static str,
    },
    /// `Add` found a string that is not a 64-bit integer. The value is left unchanged.
    #[error(
        "the value at key {key:?} is not an integer, so Add cannot increment it; Set it to a number first or use another key"
    )]
    NotAnInteger {
        /// The key that was addressed.
        key: String,
    },
    /// `Add` would leave the 64-bit range. The value is left unchanged.
    #[error("Add on key {key:?} would overflow a 64-bit integer; the value was left unchanged")]
    Overflow {
        /// The key that was addressed.
        key: String,
    },
    /// The backend's server cannot be reached right now (connection refused or dropped, a
    /// timeout). The request may be retried; Redis and NATS clients reconnect by themselves.
    #[error(
        "the {backend} key-value backend is unavailable ({reason}); check that the server is running and reachable, then retry"
    )]
    Unavailable {
        /// `redis`, `nats`, ...
        backend: &'static str,
        /// The client's explanation.
        reason: String,
    },
    /// The backend could not be opened or connected to when a link was put.
    #[error("cannot open the {backend} key-value backend: {reason}")]
    Open {
        /// `file`, `redis`, `nats`, ...
        backend: &'static str,
        /// What failed and how to fix it.
        reason: String,
    },
    /// The bytes stored under a key are not a value this provider wrote (or a newer format).
    #[error(
        "the value stored at key {key:?} cannot be decoded ({reason}); it was not written by this provider: Del the key to reset it"
    )]
    Corrupt {
        /// The key that was addressed.
        key: String,
        /// The decoder's explanation.
        reason: String,
    },
    /// An optimistic update lost against concurrent writers too many times in a row.
    #[error(
        "gave up updating key {key:?} after {attempts} conflicting concurrent writes; retry the operation"
    )]
    Contention {
        /// The key that was addressed.
        key: String,
        /// How many compare-and-swap attempts were made.
        attempts: u32,
    },
    /// A batched operation got more keys or items than one call may carry. Nothing was
    /// read or written.
    #[error(
        "{operation} got {len} keys or items, more than the {max} one call may carry; split the batch into calls of at most {max}"
    )]
    BatchTooLarge {
        /// `GetMany`, `SetMany` or `DelMany`.
        operation: &'static str,
        /// How many keys or items the call had.
        len: usize,
        /// The limit ([`crate::backend::MAX_BATCH`]).
        max: usize,
    },
    /// A write was not applied because its caller had given up waiting for it (its
    /// invocation timed out first): nothing changed, so retrying it is safe and counts once.
    #[error(
        "the write to key {key:?} was not applied: {reason}; nothing changed, so it is safe to retry"
    )]
    NotApplied {
        /// The key (the first of a batch) that was addressed.
        key: String,
        /// Why (the caller's deadline passed, or it stopped waiting).
        reason: String,
    },
    /// Any other backend failure (an I/O error of the embedded store, an unexpected server
    /// reply, ...).
    #[error("the {backend} key-value backend failed: {reason}")]
    Backend {
        /// `memory`, `file`, `redis`, `nats`.
        backend: &'static str,
        /// The underlying error.
        reason: String,
    },
}
