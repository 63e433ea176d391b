//! The in-memory backend (the default): a map behind one mutex. Every operation is a short
//! critical section with no await inside, so each is atomic and `Add` never loses an update;
//! a batched operation is one critical section too, so it is atomic as a whole.
//! Expired keys are dropped when touched and by a sweep every [`SWEEP_EVERY`] writes, so keys
//! that are never read again do not pile up.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::backend::SetItem;
use crate::error::KvError;
use crate::model::{Effect, EntryStore, Outcome, Update, Value};

/// How many writes pass between two sweeps of expired keys.
const SWEEP_EVERY: u32 = 1024;

struct Entry {
    value: Value,
    expires_at: Option<Instant>,
}

impl Entry {
    fn live(&self, now: Instant) -> bool {
        self.expires_at.is_none_or(|at| at > now)
    }
}

#[derive(Default)]
struct State {
    map: HashMap<String, Entry>,
    writes_since_sweep: u32,
}

impl State {
    /// The live entry at `key`, removing it if it has expired.
    fn live_mut(&mut self, key: &str, now: Instant) -> Option<&mut Entry> {
        if self.map.get(key).is_some_and(|e| !e.live(now)) {
            self.map.remove(key);
        }
        self.map.get_mut(key)
    }

    fn wrote(&mut self, now: Instant) {
        self.writes_since_sweep += 1;
        if self.writes_since_sweep >= SWEEP_EVERY {
            self.writes_since_sweep = 0;
            self.map.retain(|_, e| e.live(now));
        }
    }
}

/// A process-local store; its data lives as long as the link that opened it.
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // No operation panics while holding the lock, but if one ever did the map is still
        // consistent (every mutation is a single insert or remove), so keep serving.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl EntryStore for MemoryStore {
    fn kind(&self) -> &'static str {
        "memory"
    }

    async fn load(&self, key: &str) -> Result<Option<Value>, KvError> {
        let now = Instant::now();
        Ok(self.lock().live_mut(key, now).map(|e| e.value.clone()))
    }

    async fn load_many(&self, keys: &[String]) -> Result<Vec<Option<Value>>, KvError> {
        let now = Instant::now();
        let mut state = self.lock();
        Ok(keys
            .iter()
            .map(|k| state.live_mut(k, now).map(|e| e.value.clone()))
            .collect())
    }

    async fn store(
        &self,
        key: &str,
        value: Value,
        expires: Option<Duration>,
    ) -> Result<(), KvError> {
        let now = Instant::now();
        // An expiry too far away to represent (centuries) is no expiry.
        let expires_at = expires.and_then(|d| now.checked_add(d));
        let mut state = self.lock();
        state
            .map
            .insert(key.to_string(), Entry { value, expires_at });
        state.wrote(now);
        Ok(())
    }

    async fn remove(&self, key: &str) -> Result<bool, KvError> {
        let now = Instant::now();
        let mut state = self.lock();
        Ok(state.map.remove(key).is_some_and(|e| e.live(now)))
    }

    async fn store_many(&self, items: &[SetItem]) -> Result<(), KvError> {
        // One critical section: other callers see all of the batch or none of it.
        let now = Instant::now();
        let mut state = self.lock();
        for item in items {
            let expires_at = item.expires.and_then(|d| now.checked_add(d));
            state.map.insert(
                item.key.clone(),
                Entry {
                    value: Value::Str(item.value.clone()),
                    expires_at,
                },
            );
            state.wrote(now);
        }
        Ok(())
    }

    async fn remove_many(&self, keys: &[String]) -> Result<u64, KvError> {
        let now = Instant::now();
        let mut state = self.lock();
        // A key given twice is gone the second time, so it counts once.
        Ok(keys
            .iter()
            .filter(|key| state.map.remove(key.as_str()).is_some_and(|e| e.live(now)))
            .count() as u64)
    }

    async fn update(&self, key: &str, update: &Update) -> Result<Outcome, KvError> {
        let now = Instant::now();
        let mut state = self.lock();
        let current = state.live_mut(key, now);
        let (effect, outcome) = update.apply(key, current.as_ref().map(|e| &e.value))?;
        match effect {
            Effect::Unchanged => {}
            Effect::Put(value) => {
                match current {
                    Some(entry) => entry.value = value,
                    None => {
                        state.map.insert(
                            key.to_string(),
                            Entry {
                                value,
                                expires_at: None,
                            },
                        );
                    }
                }
                state.wrote(now);
            }
            Effect::Delete => {
                state.map.remove(key);
            }
        }
        Ok(outcome)
    }
}
