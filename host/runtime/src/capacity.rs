//! The host-wide count of live instances, and the registry of actor pools that the
//! epoch ticker trims.
//!
//! `RuntimeConfig::max_total_instances` sizes wasmtime's pooling allocator; past it,
//! instantiation fails with an allocator error. The runtime therefore counts instances
//! itself: every instance holds a [`HostSlot`] taken from [`Capacity`] before it is
//! created and given back when it is dropped (after its `Store`), so growth stops cleanly
//! at the cap and callers get a specific busy error instead.
//!
//! Idle instances are trimmed from the epoch ticker thread rather than by a task the host
//! must spawn or by calls: the thread exists anyway, ticks without any call arriving, and
//! needs no async runtime, so every user of the runtime (the lattice host, `wash call`,
//! tests) gets trimming for free. It reaches the pools through weak references, so a
//! registered actor is never kept alive by the registry.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Instant;

use tokio::sync::Notify;

use crate::actor::ActorInner;

/// The host-wide instance budget and the pools that draw from it.
pub(crate) struct Capacity {
    max: usize,
    live: AtomicUsize,
    /// Callers waiting for host capacity; releases notify only when there are any, so the
    /// common path costs one atomic load.
    waiters: AtomicUsize,
    freed: Notify,
    pools: Mutex<Vec<Weak<ActorInner>>>,
}

/// One instance's share of the host-wide budget; gives it back when dropped.
pub(crate) struct HostSlot {
    capacity: Arc<Capacity>,
}

impl Drop for HostSlot {
    fn drop(&mut self) {
        self.capacity.live.fetch_sub(1, Ordering::SeqCst);
        self.capacity.wake_waiters();
    }
}

/// Marks its holder as waiting for host capacity for as long as it lives.
pub(crate) struct HostWaiter<'a> {
    capacity: &'a Capacity,
}

impl Drop for HostWaiter<'_> {
    fn drop(&mut self) {
        self.capacity.waiters.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Capacity {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            max: max.max(1),
            live: AtomicUsize::new(0),
            waiters: AtomicUsize::new(0),
            freed: Notify::new(),
            pools: Mutex::default(),
        }
    }

    /// The host-wide limit.
    pub(crate) fn max(&self) -> usize {
        self.max
    }

    /// Instances alive now, of every actor (pooled, busy, starting, and fresh-instance
    /// calls).
    pub(crate) fn live(&self) -> usize {
        self.live.load(Ordering::SeqCst)
    }

    /// Takes one slot of the budget, or `None` at the limit.
    pub(crate) fn try_reserve(self: &Arc<Self>) -> Option<HostSlot> {
        self.live
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |live| {
                (live < self.max).then_some(live + 1)
            })
            .ok()?;
        Some(HostSlot {
            capacity: self.clone(),
        })
    }

    /// Counts the caller as waiting. Register before the last check of the condition
    /// (and enable the `freed` notification before that), so a release in between is
    /// not missed: the releaser either sees this waiter or the check sees its release.
    pub(crate) fn waiter(&self) -> HostWaiter<'_> {
        self.waiters.fetch_add(1, Ordering::SeqCst);
        HostWaiter { capacity: self }
    }

    /// Resolves when capacity may have been freed (an instance dropped, or an instance
    /// returned to an idle list where it might be reclaimed).
    pub(crate) fn freed(&self) -> tokio::sync::futures::Notified<'_> {
        self.freed.notified()
    }

    /// Wakes every caller waiting for capacity, if there are any.
    pub(crate) fn wake_waiters(&self) {
        if self.waiters.load(Ordering::SeqCst) > 0 {
            self.freed.notify_waiters();
        }
    }

    /// Adds an actor's pool to those trimmed and reclaimed from.
    pub(crate) fn register(&self, pool: Weak<ActorInner>) {
        self.lock_pools().push(pool);
    }

    /// The pools still alive; forgets the dropped ones.
    fn live_pools(&self) -> Vec<Arc<ActorInner>> {
        let mut pools = self.lock_pools();
        let mut alive = Vec::with_capacity(pools.len());
        pools.retain(|weak| match weak.upgrade() {
            Some(pool) => {
                alive.push(pool);
                true
            }
            None => false,
        });
        alive
    }

    /// Drops, in every pool, the instances idle past their actor's idle timeout, down to
    /// its warm minimum. Runs on the epoch ticker thread.
    pub(crate) fn trim_idle(&self, now: Instant) {
        for pool in self.live_pools() {
            pool.trim_idle(now);
        }
    }

    /// Frees one slot for `wanting` by dropping the longest-idle instance of another
    /// actor that has more than its warm minimum. Returns whether one was dropped.
    pub(crate) fn reclaim_idle(&self, wanting: &ActorInner) -> bool {
        let pools = self.live_pools();
        let victim = pools
            .iter()
            .filter(|pool| !std::ptr::eq(Arc::as_ptr(pool), wanting))
            .filter_map(|pool| pool.oldest_spare_idle().map(|since| (since, pool)))
            .min_by_key(|(since, _)| *since);
        match victim {
            Some((_, pool)) => pool.drop_spare_idle(),
            None => false,
        }
    }

    fn lock_pools(&self) -> std::sync::MutexGuard<'_, Vec<Weak<ActorInner>>> {
        self.pools.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
