//! Running actors: loading (claims checked by the runtime, compile on the blocking pool),
//! scaling (the number of instances is the warm minimum of the actor's elastic pool, which
//! grows on demand up to its maximum), live update, stopping, and the events each of
//! those emits.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use nimbus_core::claims::{Actor as ActorMeta, Token, format_unix_time};
use nimbus_core::ctl::{ActorInstance, StringMap};
use nimbus_core::events::{
    ActorClaimsSummary, ActorStarted, ActorStopped, ActorUpdated, ActorsStarted, ActorsStopped,
};
use nimbus_core::wire::new_uuid;
use nimbus_runtime::{Actor, ActorOptions};

use crate::error::HostError;
use crate::inner::HostInner;
use crate::registry::{ActorState, RunningActor};
use crate::router::ActorHostCalls;
use crate::rpc::serve;
use crate::store::{ClaimsRecord, StoreChange};

mod object_store;
mod stop_matching;

/// How long a stopping actor may take to finish the invocations it already took.
pub(crate) const STOP_GRACE: Duration = Duration::from_secs(5);

/// Where an actor module comes from.
#[derive(Debug, Clone)]
pub enum ActorSource {
    /// The bytes of a signed `.wasm`.
    Bytes(Vec<u8>),
    /// The path of a signed `.wasm` (a `file://` prefix is accepted).
    Path(PathBuf),
    /// A signed `.wasm` in a JetStream object store of the lattice
    /// (`nats-object://BUCKET/NAME`), which any host can fetch.
    Object {
        /// The object store bucket.
        bucket: String,
        /// The object's name.
        name: String,
    },
}

impl From<Vec<u8>> for ActorSource {
    fn from(bytes: Vec<u8>) -> Self {
        ActorSource::Bytes(bytes)
    }
}

impl From<PathBuf> for ActorSource {
    fn from(path: PathBuf) -> Self {
        ActorSource::Path(path)
    }
}

impl From<&Path> for ActorSource {
    fn from(path: &Path) -> Self {
        ActorSource::Path(path.to_path_buf())
    }
}

impl ActorSource {
    /// A reference string (`actor_ref`): `nats-object://BUCKET/NAME`, or a path, with or
    /// without `file://`.
    pub fn from_ref(actor_ref: &str) -> Self {
        if let Some(object) = object_store::parse(actor_ref) {
            return object;
        }
        ActorSource::Path(PathBuf::from(
            actor_ref.strip_prefix("file://").unwrap_or(actor_ref),
        ))
    }

    fn image_ref(&self) -> String {
        match self {
            ActorSource::Bytes(_) => String::new(),
            ActorSource::Path(p) => format!("file://{}", p.display()),
            ActorSource::Object { bucket, name } => {
                format!("{}{bucket}/{name}", object_store::SCHEME)
            }
        }
    }

    async fn read(self) -> Result<Vec<u8>, HostError> {
        match self {
            ActorSource::Bytes(b) => Ok(b),
            ActorSource::Path(p) => {
                tokio::fs::read(&p)
                    .await
                    .map_err(|source| HostError::ReadActor {
                        path: p.display().to_string(),
                        source,
                    })
            }
            // Fetched through the host's connection (`HostInner::read_source`).
            ActorSource::Object { .. } => Err(HostError::ReadActor {
                path: self.image_ref(),
                source: std::io::Error::other("object-store modules need a lattice connection"),
            }),
        }
    }
}

/// The claims summary carried by actor events.
pub(crate) fn claims_summary(token: Option<&Token<ActorMeta>>) -> ActorClaimsSummary {
    let Some(token) = token else {
        return ActorClaimsSummary::default();
    };
    let c = &token.claims;
    ActorClaimsSummary {
        call_alias: c.wascap.call_alias.clone(),
        caps: c.wascap.caps.clone().unwrap_or_default(),
        issuer: c.iss.clone(),
        tags: c.wascap.tags.clone().unwrap_or_default(),
        name: c.wascap.name.clone().unwrap_or_default(),
        version: c.wascap.ver.clone().unwrap_or_default(),
        revision: c.wascap.rev.unwrap_or(0),
        not_before_human: c.nbf.map_or_else(|| "n/a".into(), format_unix_time),
        expires_human: c.exp.map_or_else(|| "never".into(), format_unix_time),
    }
}

fn new_instances(count: u16, annotations: &StringMap, revision: i32) -> Vec<ActorInstance> {
    (0..count)
        .map(|_| ActorInstance {
            annotations: annotations.clone(),
            instance_id: new_uuid(),
            revision,
        })
        .collect()
}

impl HostInner {
    /// The runtime options of an actor with `instances` instances: the 0.x instance count
    /// is the pool's warm minimum, and the pool grows on demand up to `max_instances`
    /// (the runtime's default when `None`, and never below the minimum).
    fn actor_options(&self, instances: u16, max_instances: Option<u16>) -> ActorOptions {
        let min = usize::from(instances.max(1));
        let max = max_instances.map_or(ActorOptions::default().max_instances, usize::from);
        ActorOptions {
            min_instances: min,
            max_instances: max.max(min),
            host_calls: Arc::new(ActorHostCalls {
                router: Arc::downgrade(&self.router),
            }),
            allow_unsigned: self.config.allow_unsigned,
            allowed_issuers: self.config.allowed_issuers.clone(),
            ..ActorOptions::default()
        }
    }

    /// Loads a module on the blocking pool.
    async fn load(
        &self,
        bytes: Arc<[u8]>,
        instances: u16,
        max_instances: Option<u16>,
    ) -> Result<Actor, HostError> {
        let runtime = self.runtime.clone();
        let options = self.actor_options(instances, max_instances);
        tokio::task::spawn_blocking(move || runtime.load_actor(&bytes, options))
            .await
            .map_err(|e| HostError::Internal(format!("the actor load task failed: {e}")))?
            .map_err(HostError::from)
    }

    /// Starts `count` instances of an actor (adds to them if it already runs here), with
    /// the runtime's default ceiling for its pool.
    pub async fn start_actor(
        self: &Arc<Self>,
        source: ActorSource,
        count: u16,
        annotations: StringMap,
    ) -> Result<String, HostError> {
        self.start_actor_with_max(source, count, None, annotations)
            .await
    }

    /// Starts `count` instances of an actor (its pool's warm minimum), whose pool may grow
    /// to `max_instances` (`None`: the runtime's default). On an actor that runs here
    /// already it adds `count` and, when given, sets the new ceiling.
    pub async fn start_actor_with_max(
        self: &Arc<Self>,
        source: ActorSource,
        count: u16,
        max_instances: Option<u16>,
        annotations: StringMap,
    ) -> Result<String, HostError> {
        if self.is_stopping() {
            return Err(HostError::Stopped);
        }
        let image_ref = source.image_ref();
        let bytes: Arc<[u8]> = self.read_source(source).await?.into();
        let count = count.max(1);
        let actor = self.load(bytes.clone(), count, max_instances).await?;
        let id = actor.id().to_string();
        if let Some(existing) = self.registry.actor(&id) {
            return self
                .add_to_running(&existing, count, max_instances, &annotations)
                .await
                .map(|()| id);
        }
        let claims = actor.claims().cloned();
        if let Some(token) = &claims {
            let record = ClaimsRecord::from_actor_token(token);
            let revision = self.store.put_claims(&record).await?;
            self.cache.apply(StoreChange::ClaimsPut {
                claims: record,
                revision,
            });
        }
        let revision = claims
            .as_ref()
            .and_then(|t| t.claims.wascap.rev)
            .unwrap_or(0);
        let instances = new_instances(count, &annotations, revision);
        let running = Arc::new(RunningActor::new(
            id.clone(),
            ActorState {
                actor,
                bytes,
                image_ref: image_ref.clone(),
                instances: instances.clone(),
                max_instances,
            },
        ));
        if let Err(existing) = self.registry.add_actor(running.clone()) {
            // Another start of the same actor got here first (between the check above
            // and now): this one adds its instances to that one.
            return self
                .add_to_running(&existing, count, max_instances, &annotations)
                .await
                .map(|()| id);
        }
        let subject = self.subjects.rpc_actor(&id);
        match serve(self, subject.clone(), subject).await {
            Ok(serving) => running.serving.set(serving),
            Err(e) => {
                self.registry.remove_actor(&id);
                return Err(e);
            }
        }
        tracing::info!(actor = %id, instances = count, "actor started");
        self.publish_started(&id, &image_ref, claims.as_ref(), &instances, &annotations)
            .await;
        Ok(id)
    }

    async fn publish_started(
        &self,
        id: &str,
        image_ref: &str,
        claims: Option<&Token<ActorMeta>>,
        instances: &[ActorInstance],
        annotations: &StringMap,
    ) {
        let summary = claims_summary(claims);
        for instance in instances {
            self.events
                .publish(&ActorStarted {
                    public_key: id.to_string(),
                    image_ref: image_ref.to_string(),
                    api_version: "n/a".into(),
                    instance_id: instance.instance_id.clone(),
                    annotations: instance.annotations.clone(),
                    claims: summary.clone(),
                })
                .await;
        }
        self.events
            .publish(&ActorsStarted {
                public_key: id.to_string(),
                image_ref: image_ref.to_string(),
                annotations: annotations.clone(),
                host_id: self.id.clone(),
                claims: summary,
                count: instances.len() as u64,
            })
            .await;
    }

    async fn publish_stopped(
        &self,
        id: &str,
        stopped: &[ActorInstance],
        remaining: usize,
        annotations: &StringMap,
    ) {
        for instance in stopped {
            self.events
                .publish(&ActorStopped {
                    public_key: id.to_string(),
                    instance_id: instance.instance_id.clone(),
                    annotations: instance.annotations.clone(),
                })
                .await;
        }
        self.events
            .publish(&ActorsStopped {
                host_id: self.id.clone(),
                public_key: id.to_string(),
                count: stopped.len() as u64,
                remaining: remaining as u64,
                annotations: annotations.clone(),
            })
            .await;
    }

    /// Adds `count` instances to an actor that runs here already and, when given, sets
    /// its pool's new ceiling.
    async fn add_to_running(
        self: &Arc<Self>,
        running: &Arc<RunningActor>,
        count: u16,
        max_instances: Option<u16>,
        annotations: &StringMap,
    ) -> Result<(), HostError> {
        if max_instances.is_some() {
            running.write().max_instances = max_instances;
        }
        let total = running.read().instances.len() as u16;
        self.scale_running(running, total.saturating_add(count), annotations)
            .await
    }

    /// Sets the number of instances of a running actor (at least 1).
    async fn scale_running(
        self: &Arc<Self>,
        running: &Arc<RunningActor>,
        count: u16,
        annotations: &StringMap,
    ) -> Result<(), HostError> {
        let (bytes, current, max_instances) = {
            let state = running.read();
            (
                state.bytes.clone(),
                state.instances.len(),
                state.max_instances,
            )
        };
        let wanted = usize::from(count.max(1));
        if wanted == current {
            return Ok(());
        }
        let actor = self.load(bytes, count, max_instances).await?;
        let (added, removed, image_ref, claims) = {
            let mut state = running.write();
            let revision = state.instances.first().map_or(0, |i| i.revision);
            state.actor = actor;
            let mut added = Vec::new();
            let mut removed = Vec::new();
            if wanted > state.instances.len() {
                added = new_instances(
                    (wanted - state.instances.len()) as u16,
                    annotations,
                    revision,
                );
                state.instances.extend(added.iter().cloned());
            } else {
                removed = state.instances.split_off(wanted);
            }
            (
                added,
                removed,
                state.image_ref.clone(),
                state.actor.claims().cloned(),
            )
        };
        if !added.is_empty() {
            self.publish_started(
                &running.id,
                &image_ref,
                claims.as_ref(),
                &added,
                annotations,
            )
            .await;
        }
        if !removed.is_empty() {
            self.publish_stopped(&running.id, &removed, wanted, annotations)
                .await;
        }
        Ok(())
    }

    /// Stops `count` instances of an actor; 0 or at least all of them stops the actor.
    pub async fn stop_actor(self: &Arc<Self>, id: &str, count: u16) -> Result<(), HostError> {
        let running = self
            .registry
            .actor(id)
            .ok_or_else(|| HostError::NotRunning(format!("actor {id}")))?;
        let current = running.read().instances.len();
        if count > 0 && usize::from(count) < current {
            return self
                .scale_running(
                    &running,
                    (current - usize::from(count)) as u16,
                    &StringMap::new(),
                )
                .await;
        }
        // Drain first: requests already taken finish while the actor is still here.
        running.serving.stop(STOP_GRACE).await;
        self.registry.remove_actor(id);
        let stopped = running.instances();
        tracing::info!(actor = %id, "actor stopped");
        self.publish_stopped(id, &stopped, 0, &StringMap::new())
            .await;
        Ok(())
    }

    /// Scales an actor to `count` instances: 0 stops it; starting needs `source`.
    pub async fn scale_actor(
        self: &Arc<Self>,
        id: &str,
        count: u16,
        source: Option<ActorSource>,
        annotations: StringMap,
    ) -> Result<(), HostError> {
        match self.registry.actor(id) {
            Some(_) if count == 0 => self.stop_actor(id, 0).await,
            Some(running) => self.scale_running(&running, count, &annotations).await,
            None if count == 0 => Ok(()),
            None => {
                let source = source.ok_or_else(|| HostError::NoActorRef(id.to_string()))?;
                let started = self.start_actor(source, count, annotations).await?;
                if started != id {
                    self.stop_actor(&started, 0).await?;
                    return Err(HostError::KeyMismatch {
                        old: id.to_string(),
                        new: started,
                    });
                }
                Ok(())
            }
        }
    }

    /// Replaces a running actor's module with a new one of the same public key.
    pub async fn update_actor(
        self: &Arc<Self>,
        id: &str,
        source: ActorSource,
    ) -> Result<(), HostError> {
        let running = self
            .registry
            .actor(id)
            .ok_or_else(|| HostError::NotRunning(format!("actor {id}")))?;
        let image_ref = source.image_ref();
        let bytes: Arc<[u8]> = self.read_source(source).await?.into();
        let (count, max_instances) = {
            let state = running.read();
            (state.instances.len() as u16, state.max_instances)
        };
        let actor = self.load(bytes.clone(), count, max_instances).await?;
        if actor.id() != id {
            return Err(HostError::KeyMismatch {
                old: id.to_string(),
                new: actor.id().to_string(),
            });
        }
        let claims = actor.claims().cloned();
        let revision = claims
            .as_ref()
            .and_then(|t| t.claims.wascap.rev)
            .unwrap_or(0);
        if let Some(token) = &claims {
            let record = ClaimsRecord::from_actor_token(token);
            let rev = self.store.put_claims(&record).await?;
            self.cache.apply(StoreChange::ClaimsPut {
                claims: record,
                revision: rev,
            });
        }
        let instances = {
            let mut state = running.write();
            state.actor = actor;
            state.bytes = bytes;
            if !image_ref.is_empty() {
                state.image_ref = image_ref;
            }
            for instance in &mut state.instances {
                instance.revision = revision;
            }
            state.instances.clone()
        };
        for instance in instances {
            self.events
                .publish(&ActorUpdated {
                    public_key: id.to_string(),
                    revision,
                    instance_id: instance.instance_id,
                })
                .await;
        }
        Ok(())
    }
}
