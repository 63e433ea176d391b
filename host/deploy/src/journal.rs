//! What the lattice's events say went wrong, kept for the reconciler: failed starts (with
//! the host's error: claims refused, unreadable module, ...), providers that stopped for
//! good, and hosts that announced they stop. Inventories show what runs; only events say
//! why something does not, so every "not running" in a status can carry a reason.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use nimbus_core::events::{
    ActorsStartFailed, CloudEvent, HostStopped, LatticeEvent, ProviderStartFailed, ProviderStopped,
};
use tokio::task::JoinHandle;

use crate::names::{ANNOTATION_APP, ANNOTATION_COMPONENT};

/// A failure an event reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The host that reported it.
    pub host_id: String,
    /// The host's words.
    pub message: String,
}

/// A provider that stopped other than normally (its process crashed for good).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderExit {
    /// The host it ran on.
    pub host_id: String,
    /// Its public key.
    pub provider_id: String,
    /// Its link name.
    pub link_name: String,
    /// The host's reason (e.g. "gave up after 5 restarts").
    pub reason: String,
    /// The (app, component) its annotations name, when a deployment started it.
    pub owner: Option<(String, String)>,
}

/// Failures and departures seen since the reconciler last looked.
#[derive(Debug, Default)]
pub struct Journal {
    /// Failed actor starts by (app, component), from the start's annotations.
    pub actor_failures: Vec<(String, String, Failure)>,
    /// Failed provider starts by (host, provider reference, link name).
    pub provider_failures: Vec<(String, String, String, String)>,
    /// Providers that stopped other than normally.
    pub provider_exits: Vec<ProviderExit>,
    /// Hosts that announced they stop.
    pub stopped_hosts: Vec<String>,
}

/// Collects the journal from `wasmbus.evt.{lattice}` in a background task.
pub struct JournalListener {
    journal: Arc<Mutex<Journal>>,
    task: JoinHandle<()>,
}

impl JournalListener {
    /// Subscribes to the lattice's events on `client`.
    pub async fn start(
        client: async_nats::Client,
        events_subject: String,
    ) -> Result<Self, async_nats::SubscribeError> {
        let mut events = client.subscribe(events_subject).await?;
        let journal = Arc::new(Mutex::new(Journal::default()));
        let sink = journal.clone();
        let task = tokio::spawn(async move {
            while let Some(message) = events.next().await {
                if let Ok(event) = serde_json::from_slice::<CloudEvent>(&message.payload) {
                    record(&sink, &event);
                }
            }
        });
        Ok(JournalListener { journal, task })
    }

    /// Takes what was collected since the last call.
    pub fn take(&self) -> Journal {
        std::mem::take(&mut *self.journal.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl Drop for JournalListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn is<E: LatticeEvent>(event: &CloudEvent) -> bool {
    event.event_type == E::event_type()
}

fn data<T: serde::de::DeserializeOwned>(event: &CloudEvent) -> Option<T> {
    serde_json::from_value(event.data.clone()).ok()
}

/// Adds what `event` reports to the journal (other events are ignored).
pub(crate) fn record(journal: &Mutex<Journal>, event: &CloudEvent) {
    let mut j = journal.lock().unwrap_or_else(PoisonError::into_inner);
    if is::<ActorsStartFailed>(event) {
        if let Some(failed) = data::<ActorsStartFailed>(event)
            && let (Some(app), Some(component)) = (
                failed.annotations.get(ANNOTATION_APP),
                failed.annotations.get(ANNOTATION_COMPONENT),
            )
        {
            let host_id = if failed.host_id.is_empty() {
                event.source.clone()
            } else {
                failed.host_id.clone()
            };
            j.actor_failures.push((
                app.clone(),
                component.clone(),
                Failure {
                    host_id,
                    message: failed.error,
                },
            ));
        }
    } else if is::<ProviderStartFailed>(event) {
        if let Some(failed) = data::<ProviderStartFailed>(event) {
            j.provider_failures.push((
                event.source.clone(),
                failed.provider_ref,
                failed.link_name,
                failed.error,
            ));
        }
    } else if is::<ProviderStopped>(event) {
        if let Some(stopped) = data::<ProviderStopped>(event)
            && stopped.reason != "normal"
            && !stopped.reason.is_empty()
        {
            let owner = match (
                stopped.annotations.get(ANNOTATION_APP),
                stopped.annotations.get(ANNOTATION_COMPONENT),
            ) {
                (Some(app), Some(component)) => Some((app.clone(), component.clone())),
                _ => None,
            };
            j.provider_exits.push(ProviderExit {
                host_id: event.source.clone(),
                provider_id: stopped.public_key,
                link_name: stopped.link_name,
                reason: stopped.reason,
                owner,
            });
        }
    } else if is::<HostStopped>(event) {
        j.stopped_hosts.push(event.source.clone());
    }
}

/// Per key, how many failures in a row and when the next attempt may run: `base` after
/// the first failure, doubling up to `max`, so a start that keeps failing is retried
/// (the cause may be fixed) without a tight loop.
#[derive(Debug)]
pub struct Backoff<K> {
    base: Duration,
    max: Duration,
    entries: HashMap<K, (u32, Instant)>,
}

impl<K: std::hash::Hash + Eq + Clone> Backoff<K> {
    /// A back-off starting at `base` and growing to at most `max`.
    pub fn new(base: Duration, max: Duration) -> Self {
        Backoff {
            base,
            max,
            entries: HashMap::new(),
        }
    }

    /// Records a failure of `key` now.
    pub fn failed(&mut self, key: K) {
        let now = Instant::now();
        let entry = self.entries.entry(key).or_insert((0, now));
        entry.0 += 1;
        let factor = 2u32.saturating_pow(entry.0.saturating_sub(1).min(16));
        entry.1 = now + self.base.saturating_mul(factor).min(self.max);
    }

    /// Whether `key` is waiting out a back-off now.
    pub fn waiting(&self, key: &K) -> bool {
        self.entries
            .get(key)
            .is_some_and(|(_, until)| Instant::now() < *until)
    }

    /// Failures of `key` in a row.
    #[cfg(test)]
    pub fn failures(&self, key: &K) -> u32 {
        self.entries.get(key).map_or(0, |(n, _)| *n)
    }

    /// Forgets `key` (it succeeded).
    pub fn succeeded(&mut self, key: &K) {
        self.entries.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nimbus_core::events::StringMap;

    fn event<E: LatticeEvent>(source: &str, data: &E) -> CloudEvent {
        CloudEvent {
            specversion: "1.0".into(),
            event_type: E::event_type(),
            source: source.into(),
            id: "1".into(),
            time: String::new(),
            datacontenttype: "application/json".into(),
            data: serde_json::to_value(data).unwrap_or_default(),
        }
    }

    #[test]
    fn failures_are_attributed_by_annotations_and_source() {
        let journal = Mutex::new(Journal::default());
        let annotations = StringMap::from([
            (ANNOTATION_APP.to_string(), "pet".to_string()),
            (ANNOTATION_COMPONENT.to_string(), "owners".to_string()),
        ]);
        record(
            &journal,
            &event(
                "N1",
                &ActorsStartFailed {
                    annotations,
                    error: "claims invalid: expired".into(),
                    ..ActorsStartFailed::default()
                },
            ),
        );
        // Not started by a deployment: nothing to attribute it to.
        record(&journal, &event("N1", &ActorsStartFailed::default()));
        record(
            &journal,
            &event(
                "N2",
                &ProviderStopped {
                    public_key: "V1".into(),
                    link_name: "default".into(),
                    reason: "exited 5 times".into(),
                    ..ProviderStopped::default()
                },
            ),
        );
        record(
            &journal,
            &event(
                "N3",
                &ProviderStopped {
                    reason: "normal".into(),
                    ..ProviderStopped::default()
                },
            ),
        );
        record(&journal, &event("N4", &HostStopped::default()));
        let j = journal.into_inner().unwrap_or_default();
        assert_eq!(j.actor_failures.len(), 1);
        assert_eq!(j.actor_failures[0].2.host_id, "N1");
        assert_eq!(j.actor_failures[0].2.message, "claims invalid: expired");
        assert_eq!(j.provider_exits.len(), 1);
        assert_eq!(j.provider_exits[0].reason, "exited 5 times");
        assert_eq!(j.provider_exits[0].owner, None);
        assert_eq!(j.stopped_hosts, vec!["N4".to_string()]);
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_and_resets() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(60));
        backoff.failed("k");
        assert!(backoff.waiting(&"k"));
        std::thread::sleep(Duration::from_millis(150));
        assert!(!backoff.waiting(&"k"), "the first failure waits 100 ms");
        backoff.failed("k");
        assert_eq!(backoff.failures(&"k"), 2);
        std::thread::sleep(Duration::from_millis(50));
        assert!(backoff.waiting(&"k"), "the second failure waits 200 ms");
        backoff.succeeded(&"k");
        assert!(!backoff.waiting(&"k"));
        let mut capped = Backoff::new(Duration::from_secs(2), Duration::from_millis(1));
        capped.failed("k");
        std::thread::sleep(Duration::from_millis(5));
        assert!(!capped.waiting(&"k"), "the cap bounds the wait");
    }
}
