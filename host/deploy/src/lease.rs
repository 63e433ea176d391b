//! The reconciler lease: at most one reconciler of a lattice acts at a time, elected
//! through one entry of a JetStream KV bucket whose entries expire (`max_age` = the TTL).
//!
//! Taking the lease is `create` (fails while someone holds it); keeping it is `update`
//! with the revision we last wrote (fails once someone else took it), every third of the
//! TTL. A holder that dies stops renewing, JetStream expires the entry one TTL after its
//! last write, and the next candidate's `create` succeeds. The holder treats the lease as
//! its own only until four fifths of the TTL after it *sent* its last successful write, so
//! it stops acting before anyone else can start, even if its renewals stall. JetStream
//! orders the writes; nothing here is home-made consensus.

use std::time::Duration;

use async_nats::jetstream::{self, kv};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::error::DeployError;
use crate::model::now_unix;
use crate::names;
use crate::store::{BucketSettings, open_bucket};

/// The content of the lease entry: who holds it, for `wash app status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseInfo {
    /// The holder (a host id).
    pub holder: String,
    /// When the holder took the lease (seconds since the Unix epoch).
    pub since: u64,
    /// When it last renewed it.
    pub renewed: u64,
}

/// One candidate for the lease of a lattice.
pub struct Lease {
    kv: kv::Store,
    holder: String,
    ttl: Duration,
    revision: Option<u64>,
    since: u64,
    valid_until: watch::Sender<Option<Instant>>,
}

/// A cheap handle that says whether the lease is held right now.
#[derive(Clone)]
pub struct LeaseGuard {
    valid_until: watch::Receiver<Option<Instant>>,
}

impl LeaseGuard {
    /// Whether the lease is ours now (and will be for a moment: see the module docs).
    pub fn held(&self) -> bool {
        self.valid_until
            .borrow()
            .is_some_and(|until| Instant::now() < until)
    }
}

impl Lease {
    /// Opens (creating if needed) the lease bucket of `lattice` for candidate `holder`.
    /// An existing bucket keeps the TTL it was created with.
    pub async fn open(
        js: &jetstream::Context,
        lattice: &str,
        holder: impl Into<String>,
        ttl: Duration,
        settings: BucketSettings,
    ) -> Result<Self, DeployError> {
        let config = kv::Config {
            bucket: names::lease_bucket(lattice),
            description: format!("nimbus reconciler lease of lattice {lattice}"),
            history: 1,
            max_age: ttl,
            storage: jetstream::stream::StorageType::File,
            num_replicas: settings.replicas.max(1),
            ..kv::Config::default()
        };
        let kv = open_bucket(js, config).await?;
        let (valid_until, _) = watch::channel(None);
        Ok(Lease {
            kv,
            holder: holder.into(),
            ttl,
            revision: None,
            since: 0,
            valid_until,
        })
    }

    /// A handle to check whether the lease is held.
    pub fn guard(&self) -> LeaseGuard {
        LeaseGuard {
            valid_until: self.valid_until.subscribe(),
        }
    }

    /// Renews the lease if we hold it, or takes it if it is free. Returns whether we hold
    /// it now. Errors (a NATS hiccup) count as "not renewed": the lease stays ours until
    /// its validity runs out, and the next call tries again.
    pub async fn try_hold(&mut self) -> bool {
        let sent = Instant::now();
        if let Some(revision) = self.revision {
            let info = self.info();
            match self
                .kv
                .update(names::LEASE_KEY, info.into(), revision)
                .await
            {
                Ok(next) => {
                    self.revision = Some(next);
                    self.valid_until.send_replace(Some(sent + self.ttl * 4 / 5));
                    return true;
                }
                Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                    tracing::warn!(holder = %self.holder, "lost the reconciler lease");
                    self.lose();
                }
                Err(e) => {
                    tracing::warn!(error = %e, "failed to renew the reconciler lease");
                    return self.guard().held();
                }
            }
        }
        self.since = now_unix();
        match self.kv.create(names::LEASE_KEY, self.info().into()).await {
            Ok(revision) => {
                tracing::info!(holder = %self.holder, "took the reconciler lease");
                self.revision = Some(revision);
                self.valid_until.send_replace(Some(sent + self.ttl * 4 / 5));
                true
            }
            Err(e) => {
                if e.kind() != kv::CreateErrorKind::AlreadyExists {
                    tracing::warn!(error = %e, "failed to take the reconciler lease");
                }
                false
            }
        }
    }

    /// Gives the lease up (on shutdown), so another candidate takes over at once rather
    /// than after the TTL.
    pub async fn release(&mut self) {
        if let Some(revision) = self.revision.take() {
            self.valid_until.send_replace(None);
            if let Err(e) = self
                .kv
                .delete_expect_revision(names::LEASE_KEY, Some(revision))
                .await
            {
                tracing::debug!(error = %e, "failed to release the reconciler lease");
            }
        }
    }

    /// The lease's TTL.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn lose(&mut self) {
        self.revision = None;
        self.valid_until.send_replace(None);
    }

    fn info(&self) -> Vec<u8> {
        let info = LeaseInfo {
            holder: self.holder.clone(),
            since: self.since,
            renewed: now_unix(),
        };
        serde_json::to_vec(&info).unwrap_or_default()
    }
}

/// Who holds the lease of `lattice` now, if anyone (for `wash app status`).
pub async fn current_holder(
    js: &jetstream::Context,
    lattice: &str,
) -> Result<Option<LeaseInfo>, DeployError> {
    let bucket = names::lease_bucket(lattice);
    let Ok(kv) = js.get_key_value(&bucket).await else {
        return Ok(None);
    };
    let entry = kv
        .entry(names::LEASE_KEY)
        .await
        .map_err(|e| DeployError::JetStream {
            action: "read the lease".to_string(),
            bucket: bucket.clone(),
            message: e.to_string(),
        })?;
    Ok(entry
        .filter(|e| e.operation == kv::Operation::Put)
        .and_then(|e| serde_json::from_slice(&e.value).ok()))
}
