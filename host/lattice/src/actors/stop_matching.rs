//! Stopping only the instances of an actor that carry given annotations (the 0.x stop
//! command's `annotations`): when two deployments run the same actor on one host, each
//! removes its own instances and never the other's.

use std::sync::Arc;

use nimbus_core::ctl::StringMap;

use crate::error::HostError;
use crate::inner::HostInner;

/// Whether `annotations` include every entry of `wanted`.
fn carries(annotations: &StringMap, wanted: &StringMap) -> bool {
    wanted.iter().all(|(k, v)| annotations.get(k) == Some(v))
}

impl HostInner {
    /// Stops up to `count` instances of actor `id` whose annotations include `wanted`
    /// (`count` 0: all of those). When no instance would remain, the actor stops.
    pub async fn stop_actor_matching(
        self: &Arc<Self>,
        id: &str,
        count: u16,
        wanted: &StringMap,
    ) -> Result<(), HostError> {
        let running = self
            .registry
            .actor(id)
            .ok_or_else(|| HostError::NotRunning(format!("actor {id}")))?;
        let limit = if count == 0 {
            usize::MAX
        } else {
            usize::from(count)
        };
        let (picked, total) = {
            // Move the instances to stop to the end, where scaling down takes them from.
            let mut state = running.write();
            let (mut picked, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut state.instances)
                .into_iter()
                .partition(|i| carries(&i.annotations, wanted));
            let mut kept = kept;
            let spare = picked.len().saturating_sub(limit);
            kept.extend(picked.drain(..spare));
            let picked_count = picked.len();
            kept.extend(picked);
            state.instances = kept;
            (picked_count, state.instances.len())
        };
        if picked == 0 {
            return Ok(());
        }
        if picked >= total {
            return self.stop_actor(id, 0).await;
        }
        let remaining = (total - picked) as u16;
        tracing::info!(actor = %id, stopped = picked, remaining, "stopping annotated actor instances");
        self.scale_running(&running, remaining, wanted).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotations_match_when_they_include_the_wanted_ones() {
        let has = StringMap::from([("a".into(), "1".into()), ("b".into(), "2".into())]);
        assert!(carries(&has, &StringMap::from([("a".into(), "1".into())])));
        assert!(carries(&has, &StringMap::new()));
        assert!(!carries(&has, &StringMap::from([("a".into(), "2".into())])));
        assert!(!carries(
            &StringMap::new(),
            &StringMap::from([("a".into(), "1".into())])
        ));
    }
}
