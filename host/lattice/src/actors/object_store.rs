//! Actor modules in a JetStream object store of the lattice (`nats-object://BUCKET/NAME`):
//! a reference every host can load, wherever it runs, so a deployment can place (and
//! re-place) an actor on any machine without a shared file system. `wash app deploy`
//! uploads modules there.

use tokio::io::AsyncReadExt as _;

use super::ActorSource;
use crate::error::HostError;
use crate::inner::HostInner;

/// The scheme of object-store module references.
pub(crate) const SCHEME: &str = "nats-object://";

/// The bucket and object name of `nats-object://BUCKET/NAME`, if `reference` is one.
pub(crate) fn parse(reference: &str) -> Option<ActorSource> {
    let (bucket, name) = reference.strip_prefix(SCHEME)?.split_once('/')?;
    (!bucket.is_empty() && !name.is_empty()).then(|| ActorSource::Object {
        bucket: bucket.to_string(),
        name: name.to_string(),
    })
}

fn unreadable(bucket: &str, name: &str, message: impl std::fmt::Display) -> HostError {
    HostError::ReadActor {
        path: format!("{SCHEME}{bucket}/{name}"),
        source: std::io::Error::other(message.to_string()),
    }
}

impl HostInner {
    /// The bytes of a module from any source; object-store modules are fetched over this
    /// host's NATS connection (the object store checks their digest).
    pub(crate) async fn read_source(&self, source: ActorSource) -> Result<Vec<u8>, HostError> {
        let ActorSource::Object { bucket, name } = source else {
            return source.read().await;
        };
        let Some(nats) = &self.nats else {
            return Err(unreadable(
                &bucket,
                &name,
                "a standalone host has no lattice to fetch modules from",
            ));
        };
        let js = async_nats::jetstream::new(nats.clone());
        let store = js
            .get_object_store(&bucket)
            .await
            .map_err(|e| unreadable(&bucket, &name, format!("no object store {bucket}: {e}")))?;
        let mut object = store
            .get(&name)
            .await
            .map_err(|e| unreadable(&bucket, &name, e))?;
        let mut bytes = Vec::new();
        object
            .read_to_end(&mut bytes)
            .await
            .map_err(|e| unreadable(&bucket, &name, e))?;
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_references_parse_and_others_do_not() {
        let Some(ActorSource::Object { bucket, name }) = parse("nats-object://MODS/echo-1") else {
            panic!("not parsed");
        };
        assert_eq!((bucket.as_str(), name.as_str()), ("MODS", "echo-1"));
        for other in [
            "file:///a.wasm",
            "nats-object://MODS",
            "nats-object:///x",
            "/a.wasm",
        ] {
            assert!(parse(other).is_none(), "{other}");
        }
    }
}
