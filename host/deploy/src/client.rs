//! The operations behind `wash app`: deploy a version, undeploy, roll back, and read the
//! list, history and status. They only write desired state; the reconciler makes it so.

use std::collections::BTreeMap;

use async_nats::jetstream;
use nimbus_app::Manifest;
use serde::Serialize;

use crate::error::DeployError;
use crate::lease::{LeaseInfo, current_holder};
use crate::model::{
    ActorArtifact, AppRecord, AppStatus, AppVersion, Change, Desired, HistoryEntry, content_digest,
    now_unix,
};
use crate::modules::ModuleStore;
use crate::names;
use crate::store::{AppStore, BucketSettings, Stored};

/// How many automatic version numbers [`Apps::deploy`] tries before giving up.
const AUTO_VERSION_ATTEMPTS: usize = 100;

/// A manifest ready to store: its actors' modules are signed and placed where the hosts
/// read them.
#[derive(Debug, Clone)]
pub struct Draft {
    /// The manifest.
    pub manifest: Manifest,
    /// Each actor's artifact, by manifest name.
    pub actors: BTreeMap<String, ActorArtifact>,
    /// The version to store it as (overrides the manifest's `version`).
    pub version: Option<String>,
}

/// What a deploy did.
#[derive(Debug, Clone, Serialize)]
pub struct DeployOutcome {
    /// The app.
    pub app: String,
    /// The version that is now desired.
    pub version: String,
    /// Whether the version was stored now (false: the same content was stored already).
    pub new_version: bool,
    /// Whether the desired state changed (false: this version was already deployed).
    pub changed: bool,
    /// The content digest.
    pub digest: String,
}

/// An app as `wash app list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct AppSummary {
    /// The record.
    pub record: AppRecord,
    /// The last status, if a reconciler wrote one.
    pub status: Option<AppStatus>,
}

/// Everything `wash app status` shows.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    /// The record.
    pub record: AppRecord,
    /// The last status, if a reconciler wrote one.
    pub status: Option<AppStatus>,
    /// Who reconciles the lattice now.
    pub reconciler: Option<LeaseInfo>,
}

/// The apps of one lattice.
#[derive(Clone)]
pub struct Apps {
    store: AppStore,
    js: jetstream::Context,
    settings: BucketSettings,
}

impl Apps {
    /// Opens (creating if needed) the apps bucket of `lattice`.
    pub async fn open(
        client: async_nats::Client,
        lattice: &str,
        settings: BucketSettings,
    ) -> Result<Self, DeployError> {
        let js = jetstream::new(client);
        let store = AppStore::open(&js, lattice, settings).await?;
        Ok(Apps {
            store,
            js,
            settings,
        })
    }

    /// The lattice's module store, where deploys upload actor modules.
    pub async fn modules(&self) -> Result<ModuleStore, DeployError> {
        ModuleStore::open(&self.js, self.lattice(), self.settings).await
    }

    /// The lattice.
    pub fn lattice(&self) -> &str {
        self.store.lattice()
    }

    /// Stores `draft` as a version and makes it the desired one. A version given twice
    /// with other content is refused before anything changes; without a version the
    /// content gets the next `vN` (or the version it was stored under before).
    pub async fn deploy(&self, draft: Draft) -> Result<DeployOutcome, DeployError> {
        let app = draft.manifest.name.clone();
        names::check_app_name(&app)?;
        if let Some(missing) = draft
            .manifest
            .actors
            .iter()
            .find(|a| !draft.actors.contains_key(&a.name))
        {
            return Err(DeployError::Invalid(format!(
                "actor `{}` has no module artifact",
                missing.name
            )));
        }
        let digest = content_digest(&draft.manifest, &draft.actors);
        let make = |version: String| AppVersion {
            app: app.clone(),
            version,
            digest: digest.clone(),
            created_at: now_unix(),
            manifest: draft.manifest.clone(),
            actors: draft.actors.clone(),
        };
        let (version, stored) = match draft.version.clone().or(draft.manifest.version.clone()) {
            Some(version) => {
                names::check_version(&version)?;
                let stored = self.store.store_version(&make(version.clone())).await?;
                (version, stored)
            }
            None => self.store_auto(&app, &digest, make).await?,
        };
        let mut changed = true;
        self.store
            .change(&app, |current| {
                let mut record = current.unwrap_or_else(|| AppRecord {
                    app: app.clone(),
                    desired: Desired::Undeployed { last_version: None },
                    history: Vec::new(),
                });
                changed = record.desired.version() != Some(version.as_str());
                if changed {
                    record.desired = Desired::Deployed {
                        version: version.clone(),
                    };
                    record.history.push(HistoryEntry {
                        version: Some(version.clone()),
                        change: Change::Deployed,
                        at: now_unix(),
                    });
                }
                Ok(record)
            })
            .await?;
        tracing::info!(app, version, changed, "app deployed");
        Ok(DeployOutcome {
            app,
            version,
            new_version: stored == Stored::New,
            changed,
            digest,
        })
    }

    async fn store_auto(
        &self,
        app: &str,
        digest: &str,
        make: impl Fn(String) -> AppVersion,
    ) -> Result<(String, Stored), DeployError> {
        let versions = self.store.versions(app).await?;
        if let Some(same) = versions.iter().rev().find(|v| v.digest == digest) {
            return Ok((same.version.clone(), Stored::Existing));
        }
        let mut n = versions.len() + 1;
        for _ in 0..AUTO_VERSION_ATTEMPTS {
            let version = format!("v{n}");
            match self.store.store_version(&make(version.clone())).await {
                Ok(stored) => return Ok((version, stored)),
                Err(DeployError::VersionConflict { .. }) => n += 1,
                Err(e) => return Err(e),
            }
        }
        Err(DeployError::Invalid(format!(
            "found no free version number for app `{app}`; give one with --version"
        )))
    }

    /// Makes "nothing" the desired state of `app`: the reconciler stops what the app
    /// started and deletes its links. Returns the record and whether it changed.
    pub async fn undeploy(&self, app: &str) -> Result<(AppRecord, bool), DeployError> {
        self.require(app).await?;
        let mut changed = false;
        let record = self
            .store
            .change(app, |current| {
                let mut record = current.ok_or_else(|| self.not_found(app))?;
                changed = false;
                if let Desired::Deployed { version } = &record.desired {
                    let version = version.clone();
                    record.desired = Desired::Undeployed {
                        last_version: Some(version.clone()),
                    };
                    record.history.push(HistoryEntry {
                        version: Some(version),
                        change: Change::Undeployed,
                        at: now_unix(),
                    });
                    changed = true;
                }
                Ok(record)
            })
            .await?;
        Ok((record, changed))
    }

    /// Deploys an earlier version again: `to`, or the one deployed before the current
    /// one. Returns the record and the version now desired.
    pub async fn rollback(
        &self,
        app: &str,
        to: Option<&str>,
    ) -> Result<(AppRecord, String), DeployError> {
        let (record, _) = self.require(app).await?;
        let target = match to {
            Some(v) => v.to_string(),
            None => previous_version(&record).ok_or_else(|| DeployError::NoEarlierVersion {
                app: app.to_string(),
            })?,
        };
        if self.store.version(app, &target).await?.is_none() {
            return Err(DeployError::NotFound {
                what: format!("version {target} of app `{app}`"),
                lattice: self.lattice().to_string(),
            });
        }
        let record = self
            .store
            .change(app, |current| {
                let mut record = current.ok_or_else(|| self.not_found(app))?;
                record.desired = Desired::Deployed {
                    version: target.clone(),
                };
                record.history.push(HistoryEntry {
                    version: Some(target.clone()),
                    change: Change::RolledBack,
                    at: now_unix(),
                });
                Ok(record)
            })
            .await?;
        Ok((record, target))
    }

    /// Every app, with its last status.
    pub async fn list(&self) -> Result<Vec<AppSummary>, DeployError> {
        let mut apps = Vec::new();
        for record in self.store.records().await? {
            let status = self.store.status(&record.app).await?;
            apps.push(AppSummary { record, status });
        }
        Ok(apps)
    }

    /// The record of `app` and its stored versions (oldest first).
    pub async fn history(&self, app: &str) -> Result<(AppRecord, Vec<AppVersion>), DeployError> {
        let (record, _) = self.require(app).await?;
        Ok((record, self.store.versions(app).await?))
    }

    /// The record, last status and current reconciler of `app`.
    pub async fn status(&self, app: &str) -> Result<StatusReport, DeployError> {
        let (record, _) = self.require(app).await?;
        let status = self.store.status(app).await?;
        let reconciler = current_holder(&self.js, self.lattice()).await?;
        Ok(StatusReport {
            record,
            status,
            reconciler,
        })
    }

    async fn require(&self, app: &str) -> Result<(AppRecord, u64), DeployError> {
        names::check_app_name(app)?;
        self.store
            .record(app)
            .await?
            .ok_or_else(|| self.not_found(app))
    }

    fn not_found(&self, app: &str) -> DeployError {
        DeployError::NotFound {
            what: format!("app `{app}`"),
            lattice: self.lattice().to_string(),
        }
    }
}

/// The version that ran before the current one, from the history.
fn previous_version(record: &AppRecord) -> Option<String> {
    let current = record.desired.version();
    record
        .history
        .iter()
        .rev()
        .filter(|h| h.change != Change::Undeployed)
        .filter_map(|h| h.version.as_deref())
        .find(|v| Some(*v) != current)
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(version: &str, change: Change) -> HistoryEntry {
        HistoryEntry {
            version: Some(version.into()),
            change,
            at: 0,
        }
    }

    #[test]
    fn rollback_goes_to_the_version_before_the_current_one() {
        let record = AppRecord {
            app: "a".into(),
            desired: Desired::Deployed {
                version: "v3".into(),
            },
            history: vec![
                entry("v1", Change::Deployed),
                entry("v2", Change::Deployed),
                entry("v2", Change::Undeployed),
                entry("v3", Change::Deployed),
            ],
        };
        assert_eq!(previous_version(&record).as_deref(), Some("v2"));
        let first = AppRecord {
            history: vec![entry("v3", Change::Deployed)],
            ..record
        };
        assert_eq!(previous_version(&first), None);
    }
}
