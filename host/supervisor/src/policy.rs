//! When to restart a provider process that exited, and after how long.

use std::time::Duration;

/// The default [`RestartPolicy::clean_exit_grace`]: as long as a host waits for a provider's
/// answer to its shutdown request before it calls `stop` anyway.
pub const DEFAULT_CLEAN_EXIT_GRACE: Duration = Duration::from_secs(2);

/// How a supervised provider is restarted after it exits: exponential back-off from
/// `initial_backoff`, doubling per consecutive restart up to `max_backoff`. A process
/// that stayed up for `reset_after` counts as healthy again: its next restart starts
/// from `initial_backoff` and the restart count starts over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartPolicy {
    /// Delay before the first restart after a healthy run.
    pub initial_backoff: Duration,
    /// Upper bound of the delay.
    pub max_backoff: Duration,
    /// Uptime after which the back-off and the restart count reset.
    pub reset_after: Duration,
    /// Consecutive restarts allowed before giving up; `None` restarts forever.
    pub max_restarts: Option<u32>,
    /// Whether an exit with status 0 that the host did not ask for is restarted too. On by
    /// default: only [`crate::SupervisedProvider::stop`] is a wanted stop, so a provider
    /// that exits cleanly because someone else told it to (a shutdown request published
    /// by a stranger, a signal from outside) is restarted like a crashed one.
    pub restart_on_clean_exit: bool,
    /// How long a clean exit waits for [`crate::SupervisedProvider::stop`] before it counts
    /// as unrequested. A host stops a provider in two steps (the NATS shutdown request,
    /// then `stop`), and a provider that obeys the request quickly may exit before `stop`
    /// is called; a `stop` within this grace makes the exit a wanted one, with no restart.
    /// After an unrequested clean exit the usual back-off follows the grace.
    pub clean_exit_grace: Duration,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy {
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            reset_after: Duration::from_secs(60),
            max_restarts: None,
            restart_on_clean_exit: true,
            clean_exit_grace: DEFAULT_CLEAN_EXIT_GRACE,
        }
    }
}

impl RestartPolicy {
    /// A policy that never restarts: the first exit ends supervision.
    pub fn never() -> Self {
        RestartPolicy {
            max_restarts: Some(0),
            ..RestartPolicy::default()
        }
    }

    /// The delay before consecutive restart number `attempt` (1 for the first):
    /// `initial_backoff * 2^(attempt-1)`, capped at `max_backoff`, never overflowing.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(63);
        let factor = 1u64 << doublings;
        let nanos = self
            .initial_backoff
            .as_nanos()
            .saturating_mul(u128::from(factor));
        let cap = self.max_backoff.as_nanos();
        let capped = nanos.min(cap);
        // `capped` ≤ max_backoff, which fits a Duration.
        Duration::new(
            u64::try_from(capped / 1_000_000_000).unwrap_or(u64::MAX),
            u32::try_from(capped % 1_000_000_000).unwrap_or(0),
        )
    }

    /// The delay before restart number `attempt`, or `None` when that restart is over
    /// the limit and supervision gives up.
    pub fn next_restart(&self, attempt: u32) -> Option<Duration> {
        match self.max_restarts {
            Some(max) if attempt > max => None,
            _ => Some(self.backoff(attempt)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(initial_ms: u64, max_ms: u64) -> RestartPolicy {
        RestartPolicy {
            initial_backoff: Duration::from_millis(initial_ms),
            max_backoff: Duration::from_millis(max_ms),
            ..RestartPolicy::default()
        }
    }

    #[test]
    fn backoff_doubles_from_the_initial_delay_up_to_the_cap() {
        let p = policy(100, 1000);
        let got: Vec<u128> = (1..=7).map(|a| p.backoff(a).as_millis()).collect();
        assert_eq!(got, vec![100, 200, 400, 800, 1000, 1000, 1000]);
        // Attempt 0 is treated as the first.
        assert_eq!(p.backoff(0), Duration::from_millis(100));
    }

    #[test]
    fn backoff_never_overflows() {
        let p = RestartPolicy {
            initial_backoff: Duration::from_secs(u64::MAX / 4),
            max_backoff: Duration::MAX,
            ..RestartPolicy::default()
        };
        assert_eq!(p.backoff(u32::MAX), Duration::MAX);
        let small = policy(1, 60_000);
        assert_eq!(small.backoff(u32::MAX), Duration::from_secs(60));
        assert_eq!(small.backoff(64), Duration::from_secs(60));
    }

    #[test]
    fn an_initial_delay_above_the_cap_is_capped() {
        let p = policy(5000, 1000);
        assert_eq!(p.backoff(1), Duration::from_millis(1000));
    }

    #[test]
    fn restarts_stop_after_the_limit() {
        let p = RestartPolicy {
            max_restarts: Some(2),
            ..policy(10, 1000)
        };
        assert_eq!(p.next_restart(1), Some(Duration::from_millis(10)));
        assert_eq!(p.next_restart(2), Some(Duration::from_millis(20)));
        assert_eq!(p.next_restart(3), None);
        assert_eq!(RestartPolicy::never().next_restart(1), None);
        assert!(RestartPolicy::default().next_restart(1_000_000).is_some());
    }

    #[test]
    fn by_default_a_clean_exit_the_host_did_not_ask_for_is_restarted() {
        let p = RestartPolicy::default();
        assert!(p.restart_on_clean_exit);
        assert_eq!(p.clean_exit_grace, DEFAULT_CLEAN_EXIT_GRACE);
        assert_eq!(DEFAULT_CLEAN_EXIT_GRACE, Duration::from_secs(2));
    }
}
