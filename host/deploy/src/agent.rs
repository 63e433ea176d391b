//! Running a reconciler next to a host: one task keeps (or tries to take) the lease, one
//! runs reconcile rounds while the lease is ours. Every host started by `wash up` in
//! lattice mode runs one, so losing any machine, the reconciler's included, leaves others
//! to take over.

use std::time::Duration;

use nimbus_core::subjects::Subjects;
use nimbus_ctl::CtlClient;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::DeployError;
use crate::journal::JournalListener;
use crate::lease::Lease;
use crate::observe::Observer;
use crate::reconcile::{Reconciler, Settings};
use crate::store::{AppStore, BucketSettings};

/// Default time without an answer after which a host is declared lost.
pub const DEFAULT_HOST_LOST_AFTER: Duration = Duration::from_secs(10);
/// Default lease TTL: how long a dead reconciler blocks the others at most.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(6);
/// Default pause between reconcile rounds.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);

/// Settings of a reconciler.
#[derive(Debug, Clone)]
pub struct ReconcilerConfig {
    /// The lattice it reconciles.
    pub lattice: String,
    /// Its name in the lease (the host id of the host it runs next to).
    pub holder: String,
    /// Pause between rounds.
    pub interval: Duration,
    /// How long a ping collects answers each round.
    pub ping_timeout: Duration,
    /// Time without an answer after which a host is declared lost and its share is
    /// placed elsewhere. Shorter heals faster; too short re-places on a hiccup.
    pub host_lost_after: Duration,
    /// Lease TTL (used when this reconciler creates the lease bucket).
    pub lease_ttl: Duration,
    /// How long a host may take to finish a start or stop.
    pub command_timeout: Duration,
    /// First back-off after a failed start on a host (doubling up to a minute).
    pub backoff_base: Duration,
    /// Settings of the buckets, when this reconciler creates them.
    pub buckets: BucketSettings,
}

impl ReconcilerConfig {
    /// The defaults for `lattice`, with `holder` as the lease holder's name.
    pub fn new(lattice: impl Into<String>, holder: impl Into<String>) -> Self {
        ReconcilerConfig {
            lattice: lattice.into(),
            holder: holder.into(),
            interval: DEFAULT_INTERVAL,
            ping_timeout: Duration::from_millis(750),
            host_lost_after: DEFAULT_HOST_LOST_AFTER,
            lease_ttl: DEFAULT_LEASE_TTL,
            command_timeout: Duration::from_secs(30),
            backoff_base: Duration::from_secs(2),
            buckets: BucketSettings::default(),
        }
    }
}

/// A running reconciler; [`ReconcilerHandle::stop`] ends it and gives up the lease.
pub struct ReconcilerHandle {
    shutdown: watch::Sender<bool>,
    lease_task: JoinHandle<()>,
    round_task: JoinHandle<()>,
}

/// Starts a reconciler on `client` (opening the lattice's buckets first, so a NATS
/// server without JetStream is an error here, not a silent no-op).
pub async fn start(
    client: async_nats::Client,
    config: ReconcilerConfig,
) -> Result<ReconcilerHandle, DeployError> {
    let js = async_nats::jetstream::new(client.clone());
    let store = AppStore::open(&js, &config.lattice, config.buckets).await?;
    let mut lease = Lease::open(
        &js,
        &config.lattice,
        config.holder.clone(),
        config.lease_ttl,
        config.buckets,
    )
    .await?;
    let subjects = Subjects::for_lattice(config.lattice.clone());
    let journal = JournalListener::start(client.clone(), subjects.events())
        .await
        .map_err(|e| {
            DeployError::Invalid(format!("failed to subscribe to the lattice's events: {e}"))
        })?;
    let ping =
        CtlClient::new(client.clone(), config.lattice.clone()).with_timeout(config.ping_timeout);
    let ctl = CtlClient::new(client, config.lattice.clone());
    let observer = Observer::new(ping, ctl.clone(), config.host_lost_after);
    let mut reconciler = Reconciler::new(
        ctl,
        store,
        config.holder.clone(),
        observer,
        journal,
        Settings {
            command_timeout: config.command_timeout,
            backoff_base: config.backoff_base,
        },
    );
    let (shutdown, _) = watch::channel(false);
    let guard = lease.guard();
    // The holder renews every third of the TTL; the others try more often, so the lease
    // changes hands soon after it expires.
    let renew_every = lease.ttl() / 3;
    let try_every = renew_every.min(Duration::from_secs(1));
    let mut stop_lease = shutdown.subscribe();
    let lease_task = tokio::spawn(async move {
        loop {
            let held = lease.try_hold().await;
            let pause = if held { renew_every } else { try_every };
            tokio::select! {
                _ = stop_lease.changed() => break,
                () = tokio::time::sleep(pause) => {}
            }
        }
        lease.release().await;
    });
    let mut stop_rounds = shutdown.subscribe();
    let interval = config.interval;
    let round_task = tokio::spawn(async move {
        let mut leading = false;
        let mut pause = interval;
        loop {
            tokio::select! {
                _ = stop_rounds.changed() => break,
                () = tokio::time::sleep(pause) => {}
            }
            pause = interval;
            if !guard.held() {
                if leading {
                    tracing::info!("no longer the reconciler of the lattice");
                }
                leading = false;
                continue;
            }
            if !leading {
                tracing::info!("reconciling the lattice's apps");
                reconciler.reset();
                leading = true;
            }
            match reconciler.round(&guard).await {
                // Commands in flight: look again soon, so their result is reported soon.
                Ok(()) if reconciler.busy() => pause = interval / 4,
                Ok(()) => {}
                Err(e) => tracing::warn!(error = %e, "reconcile round failed"),
            }
        }
    });
    Ok(ReconcilerHandle {
        shutdown,
        lease_task,
        round_task,
    })
}

impl ReconcilerHandle {
    /// Stops reconciling, waits for the current round to end and releases the lease so
    /// another host's reconciler takes over at once.
    pub async fn stop(self) {
        self.shutdown.send_replace(true);
        let _ = self.round_task.await;
        let _ = self.lease_task.await;
    }
}
