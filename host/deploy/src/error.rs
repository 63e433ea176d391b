//! The errors of deployment operations, one variant per thing a user does differently.

/// Why a deployment operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// An app name or version cannot be used as (part of) a JetStream KV key.
    #[error("{what} `{value}` is not usable: {rule}")]
    InvalidName {
        /// `app name` or `version`.
        what: &'static str,
        /// The rejected value.
        value: String,
        /// What a valid value looks like.
        rule: &'static str,
    },
    /// The version exists with other content; stored versions never change.
    #[error(
        "version {version} of app `{app}` is already stored with other content (digest {stored}, this manifest {given}); give a new version (`wash app deploy --version ...` or `version:` in the manifest), or deploy without one to number it automatically"
    )]
    VersionConflict {
        /// The app.
        app: String,
        /// The version asked for.
        version: String,
        /// Digest of the stored content.
        stored: String,
        /// Digest of the given content.
        given: String,
    },
    /// The app (or one of its versions) is not stored in the lattice.
    #[error("{what} is not deployed in lattice `{lattice}`; `wash app list` shows what is")]
    NotFound {
        /// What was looked for.
        what: String,
        /// The lattice.
        lattice: String,
    },
    /// A rollback was asked for, but the history holds no earlier version.
    #[error(
        "app `{app}` has no earlier version to roll back to; `wash app history {app}` lists its versions"
    )]
    NoEarlierVersion {
        /// The app.
        app: String,
    },
    /// The desired state could not be written because others kept changing it.
    #[error(
        "app `{app}` was changed by someone else {attempts} times while updating it; try again"
    )]
    Contended {
        /// The app.
        app: String,
        /// How many revision-checked writes were refused.
        attempts: u32,
    },
    /// JetStream (bucket creation, a read or a write) failed.
    #[error(
        "failed to {action} in JetStream bucket {bucket}: {message} (is JetStream enabled on the NATS server? `nats-server -js`)"
    )]
    JetStream {
        /// What was being done.
        action: String,
        /// The bucket.
        bucket: String,
        /// The client's error.
        message: String,
    },
    /// A stored entry does not parse (written by an incompatible version, or damaged).
    #[error("entry {key} of bucket {bucket} is not valid: {message}")]
    Corrupt {
        /// The bucket.
        bucket: String,
        /// The key.
        key: String,
        /// The parser's explanation.
        message: String,
    },
    /// A control-interface request failed.
    #[error(transparent)]
    Ctl(#[from] nimbus_ctl::CtlError),
    /// Something else the caller gave is unusable.
    #[error("{0}")]
    Invalid(String),
}
