//! Deployments that look after themselves.
//!
//! `wash app deploy` used to place an app once and forget it. Here the *desired state*
//! lives in the lattice instead, in JetStream KV (`NIMBUS_APPS_{lattice}`): every
//! manifest version is stored immutably, and one record per app says which version should
//! run (or that none should) and keeps the history. A **reconciler** runs next to every
//! host started by `wash up`; exactly one of them acts at a time, elected through a
//! JetStream KV lease (`NIMBUS_LEASE_{lattice}`: revision-checked updates, entries that
//! expire after the TTL). The one holding it compares the desired state with the hosts'
//! inventories each round and sends control-interface commands until they match:
//! `replicas` on distinct hosts matching `host_labels` and `spread`, links with the
//! running providers' keys, module upgrades host by host, and re-placement of what a host
//! ran once it has not answered for the lost-host time. It writes each app's status with
//! a reason for anything not running, which `wash app status` prints.
//!
//! Actor modules are uploaded to the object store `NIMBUS_MODULES_{lattice}` and loaded by
//! the hosts from there (`nats-object://...`), so any machine can run any replica.
//!
//! What a deployment started carries annotations (`nimbus.deploy/app`, `/component`,
//! `/version`), so it stops only what it started and leaves other apps and manual starts
//! alone.
//!
//! The crate knows the lattice only through its control interface and events
//! (`nimbus-ctl`), so the host itself knows nothing about deployments.

mod agent;
mod client;
mod error;
mod journal;
mod lease;
mod model;
mod modules;
pub mod names;
mod observe;
pub mod placement;
mod reconcile;
mod store;

pub use agent::{
    DEFAULT_HOST_LOST_AFTER, DEFAULT_INTERVAL, DEFAULT_LEASE_TTL, ReconcilerConfig,
    ReconcilerHandle, start,
};
pub use client::{AppSummary, Apps, DeployOutcome, Draft, StatusReport};
pub use error::DeployError;
pub use lease::{LeaseInfo, current_holder};
pub use model::{
    ActorArtifact, AppRecord, AppStatus, AppVersion, Change, Desired, EntityStatus, HistoryEntry,
    LinkStatus, Placement, State, content_digest, hex, now_unix, sha256_hex,
};
pub use modules::{ModuleStore, OBJECT_SCHEME};
pub use store::{BucketSettings, Stored};
