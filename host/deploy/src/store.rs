//! The desired state of a lattice's apps in a JetStream KV bucket (`NIMBUS_APPS_{lattice}`):
//! immutable versions (`version.{app}.{version}`, written with `create`), one record per
//! app (`app.{app}`, changed only by revision-checked updates, so two deploys at once
//! never lose one another), and the status the reconciler last wrote (`status.{app}`).
//!
//! Durability: the bucket is file-backed with `replicas` copies (use 3 on a 3-server
//! JetStream cluster). JetStream acknowledges a write once it is in the servers' memory
//! and flushes to disk every two minutes by default, so a power loss can lose
//! acknowledged deploys; run nats-server with `jetstream { sync_interval: always }` (what
//! `wash up --nats-server`, the lattice demo and docker-compose do) to fsync before every
//! acknowledgement.

use std::time::Duration;

use async_nats::jetstream::{self, kv};
use futures_util::TryStreamExt as _;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::DeployError;
use crate::model::{AppRecord, AppStatus, AppVersion};
use crate::names;

/// How many revision-checked writes [`AppStore::change`] tries before giving up.
const CHANGE_ATTEMPTS: u32 = 8;

/// Settings of the buckets a deployment creates (existing buckets are used as they are).
#[derive(Debug, Clone, Copy)]
pub struct BucketSettings {
    /// Copies of each bucket in a JetStream cluster (1 on a single server).
    pub replicas: usize,
}

impl Default for BucketSettings {
    fn default() -> Self {
        BucketSettings { replicas: 1 }
    }
}

/// What [`AppStore::store_version`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// The version was new and is stored now.
    New,
    /// The same content was already stored under this version.
    Existing,
}

/// The apps bucket of one lattice.
#[derive(Clone)]
pub struct AppStore {
    kv: kv::Store,
    bucket: String,
    lattice: String,
}

impl AppStore {
    /// Opens (creating if needed) the apps bucket of `lattice`.
    pub async fn open(
        js: &jetstream::Context,
        lattice: &str,
        settings: BucketSettings,
    ) -> Result<Self, DeployError> {
        let bucket = names::apps_bucket(lattice);
        let config = kv::Config {
            bucket: bucket.clone(),
            description: format!("nimbus app manifests and desired state of lattice {lattice}"),
            history: 5,
            storage: jetstream::stream::StorageType::File,
            num_replicas: settings.replicas.max(1),
            ..kv::Config::default()
        };
        let kv = open_bucket(js, config).await?;
        Ok(AppStore {
            kv,
            bucket,
            lattice: lattice.to_string(),
        })
    }

    /// The lattice of this store.
    pub fn lattice(&self) -> &str {
        &self.lattice
    }

    /// The record of `app` and its revision, if the app was ever deployed.
    pub async fn record(&self, app: &str) -> Result<Option<(AppRecord, u64)>, DeployError> {
        self.read(&names::record_key(app)).await
    }

    /// Version `version` of `app`.
    pub async fn version(
        &self,
        app: &str,
        version: &str,
    ) -> Result<Option<AppVersion>, DeployError> {
        Ok(self
            .read(&names::version_key(app, version))
            .await?
            .map(|(v, _)| v))
    }

    /// Every stored version of `app`, oldest first.
    pub async fn versions(&self, app: &str) -> Result<Vec<AppVersion>, DeployError> {
        let prefix = format!("version.{app}.");
        let mut versions = Vec::new();
        for key in self.keys().await? {
            if key.starts_with(&prefix)
                && let Some(found) = self.read::<AppVersion>(&key).await?
            {
                versions.push(found);
            }
        }
        // The revision is the order JetStream stored them in (versions are never rewritten).
        versions.sort_by_key(|(_, revision)| *revision);
        Ok(versions.into_iter().map(|(v, _)| v).collect())
    }

    /// Every app record, by name.
    pub async fn records(&self) -> Result<Vec<AppRecord>, DeployError> {
        let mut records = Vec::new();
        for key in self.keys().await? {
            if names::app_of_record_key(&key).is_some()
                && let Some((record, _)) = self.read::<AppRecord>(&key).await?
            {
                records.push(record);
            }
        }
        records.sort_by(|a, b| a.app.cmp(&b.app));
        Ok(records)
    }

    /// The status the reconciler last wrote for `app`.
    pub async fn status(&self, app: &str) -> Result<Option<AppStatus>, DeployError> {
        Ok(self.read(&names::status_key(app)).await?.map(|(s, _)| s))
    }

    /// Writes the status of an app (the reconciler does, when it changes).
    pub async fn put_status(&self, status: &AppStatus) -> Result<(), DeployError> {
        let key = names::status_key(&status.app);
        self.kv
            .put(&key, encode(status).into())
            .await
            .map_err(|e| self.error(format!("write {key}"), e))?;
        Ok(())
    }

    /// Stores a version unless it exists; the same content under the same version is
    /// [`Stored::Existing`], other content is [`DeployError::VersionConflict`].
    pub async fn store_version(&self, version: &AppVersion) -> Result<Stored, DeployError> {
        names::check_app_name(&version.app)?;
        names::check_version(&version.version)?;
        let key = names::version_key(&version.app, &version.version);
        match self.kv.create(&key, encode(version).into()).await {
            Ok(_) => Ok(Stored::New),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {
                let stored = self
                    .version(&version.app, &version.version)
                    .await?
                    .ok_or_else(|| self.error(format!("read {key}"), "it vanished"))?;
                if stored.digest == version.digest {
                    Ok(Stored::Existing)
                } else {
                    Err(DeployError::VersionConflict {
                        app: version.app.clone(),
                        version: version.version.clone(),
                        stored: stored.digest,
                        given: version.digest.clone(),
                    })
                }
            }
            Err(e) => Err(self.error(format!("create {key}"), e)),
        }
    }

    /// Changes the record of `app` with `edit` (given the current record, if any), with
    /// a revision check: when another writer got there first, `edit` runs again on the
    /// newer record. `edit` returning an error changes nothing.
    pub async fn change(
        &self,
        app: &str,
        mut edit: impl FnMut(Option<AppRecord>) -> Result<AppRecord, DeployError>,
    ) -> Result<AppRecord, DeployError> {
        names::check_app_name(app)?;
        let key = names::record_key(app);
        for _ in 0..CHANGE_ATTEMPTS {
            let current = self.read::<AppRecord>(&key).await?;
            let revision = current.as_ref().map(|(_, rev)| *rev);
            let next = edit(current.map(|(r, _)| r))?;
            let body = encode(&next);
            let written = match revision {
                Some(rev) => self.kv.update(&key, body.into(), rev).await.map(|_| ()),
                None => self
                    .kv
                    .create(&key, body.into())
                    .await
                    .map(|_| ())
                    .map_err(|e| {
                        kv::UpdateError::new(match e.kind() {
                            kv::CreateErrorKind::AlreadyExists => {
                                kv::UpdateErrorKind::WrongLastRevision
                            }
                            _ => kv::UpdateErrorKind::Other,
                        })
                    }),
            };
            match written {
                Ok(()) => return Ok(next),
                Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                    tracing::debug!(app, "app record changed meanwhile; retrying");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => return Err(self.error(format!("update {key}"), e)),
            }
        }
        Err(DeployError::Contended {
            app: app.to_string(),
            attempts: CHANGE_ATTEMPTS,
        })
    }

    async fn keys(&self) -> Result<Vec<String>, DeployError> {
        let keys = self
            .kv
            .keys()
            .await
            .map_err(|e| self.error("list keys".to_string(), e))?;
        keys.try_collect()
            .await
            .map_err(|e| self.error("list keys".to_string(), e))
    }

    async fn read<T: DeserializeOwned>(&self, key: &str) -> Result<Option<(T, u64)>, DeployError> {
        let entry = self
            .kv
            .entry(key)
            .await
            .map_err(|e| self.error(format!("read {key}"), e))?;
        let Some(entry) = entry else {
            return Ok(None);
        };
        if entry.operation != kv::Operation::Put {
            return Ok(None);
        }
        let value = serde_json::from_slice(&entry.value).map_err(|e| DeployError::Corrupt {
            bucket: self.bucket.clone(),
            key: key.to_string(),
            message: e.to_string(),
        })?;
        Ok(Some((value, entry.revision)))
    }

    fn error(&self, action: String, e: impl std::fmt::Display) -> DeployError {
        DeployError::JetStream {
            action,
            bucket: self.bucket.clone(),
            message: e.to_string(),
        }
    }
}

/// Opens bucket `config.bucket`, creating it with `config` if it does not exist (another
/// process creating it at the same moment is fine).
pub(crate) async fn open_bucket(
    js: &jetstream::Context,
    config: kv::Config,
) -> Result<kv::Store, DeployError> {
    let bucket = config.bucket.clone();
    if let Ok(kv) = js.get_key_value(&bucket).await {
        return Ok(kv);
    }
    match js.create_key_value(config).await {
        Ok(kv) => Ok(kv),
        Err(create) => js
            .get_key_value(&bucket)
            .await
            .map_err(|_| DeployError::JetStream {
                action: "create the bucket".to_string(),
                bucket,
                message: create.to_string(),
            }),
    }
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Our stored types are maps, strings and numbers; they always encode.
    serde_json::to_vec(value).unwrap_or_default()
}
