//! Actor modules in the lattice: `wash app deploy` uploads each signed module to the
//! JetStream object store `NIMBUS_MODULES_{lattice}`, and versions reference it as
//! `nats-object://BUCKET/NAME`, which every host fetches over its own NATS connection. So
//! the reconciler can place (and re-place) an actor on any machine, with no shared disk.

use async_nats::jetstream::{self, object_store};

use crate::error::DeployError;
use crate::names;
use crate::store::BucketSettings;

/// The scheme hosts load object-store modules by.
pub const OBJECT_SCHEME: &str = "nats-object://";

/// The module store of one lattice.
pub struct ModuleStore {
    store: object_store::ObjectStore,
    bucket: String,
}

impl ModuleStore {
    /// Opens (creating if needed) the module store of `lattice`.
    pub async fn open(
        js: &jetstream::Context,
        lattice: &str,
        settings: BucketSettings,
    ) -> Result<Self, DeployError> {
        let bucket = names::modules_bucket(lattice);
        let store =
            match js.get_object_store(&bucket).await {
                Ok(store) => store,
                Err(_) => {
                    let config = object_store::Config {
                        bucket: bucket.clone(),
                        description: Some(format!("nimbus actor modules of lattice {lattice}")),
                        storage: jetstream::stream::StorageType::File,
                        num_replicas: settings.replicas.max(1),
                        ..object_store::Config::default()
                    };
                    match js.create_object_store(config).await {
                        Ok(store) => store,
                        Err(create) => js.get_object_store(&bucket).await.map_err(|_| {
                            DeployError::JetStream {
                                action: "create the module store".to_string(),
                                bucket: bucket.clone(),
                                message: create.to_string(),
                            }
                        })?,
                    }
                }
            };
        Ok(ModuleStore { store, bucket })
    }

    /// Uploads `module` as `name` unless an object of that name is stored already (names
    /// carry the actor key and the source hash, so the same name is the same module), and
    /// returns the reference hosts load it by.
    pub async fn put(&self, name: &str, module: &[u8]) -> Result<String, DeployError> {
        if self.store.info(name).await.is_err() {
            let mut reader = module;
            self.store
                .put(name, &mut reader)
                .await
                .map_err(|e| DeployError::JetStream {
                    action: format!("upload module {name}"),
                    bucket: self.bucket.clone(),
                    message: e.to_string(),
                })?;
            tracing::info!(module = name, bytes = module.len(), "module uploaded");
        }
        Ok(format!("{OBJECT_SCHEME}{}/{name}", self.bucket))
    }
}
