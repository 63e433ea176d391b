//! Refusing a second delivery of the same signed invocation.
//!
//! An anti-forgery token proves who signed an invocation, not that it is delivered once:
//! anyone who can read a subject can publish the same bytes again. A receiver therefore
//! remembers every token it admitted until the token expires and refuses it a second
//! time. Tokens are told apart by issuer, `jti` and `sub` (the invocation id), all inside
//! the signature, so a replay cannot be disguised and a legitimate retry (a new
//! invocation: new id, new token) is never mistaken for one.
//!
//! One guard per receiving process (host, provider), shared by all the subjects it
//! serves. Queue-group delivery hands each message to one member only, so members of a
//! group never see the same token; another process never shares the memory.
//!
//! Memory is bounded twice: entries go once their token has expired, and at most
//! [`ReplayGuard::capacity`] are held; beyond it the oldest entries go first (their tokens
//! could then be replayed until they expire; the count of such early evictions is kept so
//! the owner can warn). Tokens without `exp` (0.x senders) are remembered for
//! [`LEGACY_TOKEN_LIFETIME`] after their issue time and refused as stale after it, so
//! they cannot be replayed once forgotten.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::claims::{Claims, INVOCATION_CLOCK_SKEW, format_unix_time};

/// How long after its issue time a token without `exp` (written by a 0.x host or
/// provider) is accepted and remembered: twice [`INVOCATION_CLOCK_SKEW`], which is far
/// beyond any 0.x RPC timeout (2 s by default).
pub const LEGACY_TOKEN_LIFETIME: Duration =
    Duration::from_secs(2 * INVOCATION_CLOCK_SKEW.as_secs());

/// Entries a guard holds at most by default: at ~64 bytes each, 16 MiB; room for
/// ~8,000 invocations a second with the default 32 s token lifetime.
pub const DEFAULT_CAPACITY: usize = 256 * 1024;

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    /// This very token was admitted before.
    #[error(
        "invocation {id} (token {jti} by {issuer}) was already delivered here; a signed invocation is accepted once, retry with a new invocation"
    )]
    Replayed {
        /// The invocation id (`sub`).
        id: String,
        /// The token id.
        jti: String,
        /// The issuer.
        issuer: String,
    },
    /// A token without `exp` issued longer than [`LEGACY_TOKEN_LIFETIME`] ago.
    #[error(
        "invocation token without expiry issued at {}, more than {}s ago: too old to tell from a replay; the sender's clock may be off (check NTP)",
        format_unix_time(*.iat),
        LEGACY_TOKEN_LIFETIME.as_secs()
    )]
    Stale {
        /// The token's `iat`.
        iat: u64,
    },
}

#[derive(Default)]
struct Seen {
    /// Token key -> Unix second until which it is remembered.
    until: HashMap<u128, u64>,
    /// The same entries in the order they were admitted.
    order: VecDeque<(u64, u128)>,
}

struct Inner {
    seen: Mutex<Seen>,
    keys: (RandomState, RandomState),
    capacity: usize,
    evicted_early: AtomicU64,
}

/// The tokens one receiver admitted and has not forgotten yet. Clones share them.
#[derive(Clone)]
pub struct ReplayGuard {
    inner: Arc<Inner>,
}

impl Default for ReplayGuard {
    fn default() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }
}

impl std::fmt::Debug for ReplayGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayGuard")
            .field("len", &self.len())
            .field("capacity", &self.inner.capacity)
            .finish_non_exhaustive()
    }
}

impl ReplayGuard {
    /// A guard holding at most `capacity` entries (at least 1).
    pub fn with_capacity(capacity: usize) -> Self {
        ReplayGuard {
            inner: Arc::new(Inner {
                seen: Mutex::new(Seen::default()),
                keys: (RandomState::new(), RandomState::new()),
                capacity: capacity.max(1),
                evicted_early: AtomicU64::new(0),
            }),
        }
    }

    /// The most entries held.
    pub fn capacity(&self) -> usize {
        self.inner.capacity
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.lock().until.len()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Entries dropped before their token expired because the guard was full.
    pub fn evicted_early(&self) -> u64 {
        self.inner.evicted_early.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.inner
            .seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Admits the (verified) token `claims` at `now` (Unix seconds), or refuses it if it
    /// was admitted before, or if it has no `exp` and is older than
    /// [`LEGACY_TOKEN_LIFETIME`]. Call it only after the signature was verified, so that
    /// only tokens of trusted signers take memory.
    pub fn admit<T>(&self, claims: &Claims<T>, now: u64) -> Result<(), ReplayError> {
        let until = match claims.exp {
            Some(exp) => exp,
            None => {
                let until = claims.iat.saturating_add(LEGACY_TOKEN_LIFETIME.as_secs());
                if until < now {
                    return Err(ReplayError::Stale { iat: claims.iat });
                }
                until
            }
        };
        let key = self.key(claims);
        let mut seen = self.lock();
        // Forget what expired (in admission order; a later entry that expired earlier
        // waits for those before it, which the capacity bounds).
        while let Some(&(front_until, front_key)) = seen.order.front() {
            if front_until >= now {
                break;
            }
            seen.order.pop_front();
            seen.until.remove(&front_key);
        }
        if seen.until.contains_key(&key) {
            return Err(ReplayError::Replayed {
                id: claims.sub.clone(),
                jti: claims.jti.clone(),
                issuer: claims.iss.clone(),
            });
        }
        while seen.until.len() >= self.inner.capacity {
            let Some((_, old)) = seen.order.pop_front() else {
                break;
            };
            seen.until.remove(&old);
            self.inner.evicted_early.fetch_add(1, Ordering::Relaxed);
        }
        seen.until.insert(key, until);
        seen.order.push_back((until, key));
        Ok(())
    }

    /// 128 bits of two independently keyed hashes of (issuer, jti, sub): collisions are
    /// out of reach, and nobody outside the process knows the keys.
    fn key<T>(&self, claims: &Claims<T>) -> u128 {
        let parts = (&claims.iss, &claims.jti, &claims.sub);
        let (a, b) = &self.inner.keys;
        (u128::from(a.hash_one(parts)) << 64) | u128::from(b.hash_one(parts))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::claims::Invocation;

    fn claims(jti: &str, sub: &str, iat: u64, exp: Option<u64>) -> Claims<Invocation> {
        Claims {
            exp,
            jti: jti.into(),
            iat,
            iss: "CISSUER".into(),
            sub: sub.into(),
            nbf: None,
            wascap: Invocation {
                target_url: String::new(),
                origin_url: String::new(),
                hash: String::new(),
            },
            wascap_revision: Some(3),
        }
    }

    #[test]
    fn a_token_is_admitted_once() {
        let guard = ReplayGuard::default();
        let c = claims("j1", "inv-1", 100, Some(132));
        guard.admit(&c, 100).unwrap();
        assert!(matches!(
            guard.admit(&c, 101),
            Err(ReplayError::Replayed { .. })
        ));
        // A retry is a new invocation with a new token.
        guard
            .admit(&claims("j2", "inv-2", 100, Some(132)), 101)
            .unwrap();
        // A clone shares the memory.
        assert!(guard.clone().admit(&c, 102).is_err());
    }

    #[test]
    fn expired_entries_are_forgotten() {
        let guard = ReplayGuard::default();
        guard
            .admit(&claims("j1", "a", 100, Some(110)), 100)
            .unwrap();
        guard
            .admit(&claims("j2", "b", 100, Some(200)), 100)
            .unwrap();
        assert_eq!(guard.len(), 2);
        guard
            .admit(&claims("j3", "c", 150, Some(180)), 150)
            .unwrap();
        assert_eq!(guard.len(), 2, "j1 expired at 110");
    }

    #[test]
    fn capacity_bounds_memory() {
        let guard = ReplayGuard::with_capacity(3);
        for i in 0..10 {
            guard
                .admit(&claims(&format!("j{i}"), "x", 100, Some(1000)), 100)
                .unwrap();
        }
        assert_eq!(guard.len(), 3);
        assert_eq!(guard.evicted_early(), 7);
        assert!(
            guard
                .admit(&claims("j9", "x", 100, Some(1000)), 100)
                .is_err()
        );
    }

    #[test]
    fn tokens_without_exp_are_remembered_then_stale() {
        let guard = ReplayGuard::default();
        let legacy = claims("j1", "inv-1", 100, None);
        guard.admit(&legacy, 100).unwrap();
        assert!(matches!(
            guard.admit(&legacy, 120),
            Err(ReplayError::Replayed { .. })
        ));
        let late = 100 + LEGACY_TOKEN_LIFETIME.as_secs() + 1;
        assert!(matches!(
            guard.admit(&legacy, late),
            Err(ReplayError::Stale { iat: 100 })
        ));
    }
}
