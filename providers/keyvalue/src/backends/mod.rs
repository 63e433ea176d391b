//! The four backends and the one function that opens whichever a link asks for.

pub mod file;
pub mod memory;
pub mod nats;
pub mod redis;

use std::sync::Arc;

use crate::backend::KvBackend;
use crate::config::BackendConfig;
use crate::error::KvError;
use crate::model::Modeled;

pub use file::FileStore;
pub use memory::MemoryStore;
pub use nats::NatsStore;
pub use redis::RedisStore;

/// Opens the backend `config` describes: connects to its server or opens its file, so that
/// a link with an unreachable backend is rejected when it is put, not on first use.
pub async fn open_backend(config: &BackendConfig) -> Result<Arc<dyn KvBackend>, KvError> {
    Ok(match config {
        BackendConfig::Memory => Arc::new(Modeled(MemoryStore::new())),
        BackendConfig::File(c) => Arc::new(Modeled(FileStore::open(&c.dir).await?)),
        BackendConfig::Redis(c) => Arc::new(RedisStore::open(c).await?),
        BackendConfig::Nats(c) => Arc::new(Modeled(NatsStore::open(c).await?)),
    })
}
