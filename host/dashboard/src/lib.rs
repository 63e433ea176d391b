//! The lattice dashboard: a web page that shows what a lattice is doing, live — hosts,
//! actors with their instances, call rate, p50/p99 latency and errors per operation,
//! providers with their restarts, links and the last events — for people who would
//! rather look than read `wash ctl get`.
//!
//! The data comes from one [`Source`]: a host in this process ([`LocalSource`],
//! standalone `wash up`) or a lattice over NATS ([`NatsSource`]: the control interface,
//! the lattice events and the `get.{host_id}.stats` extension of
//! [`nimbus_core::stats`]). Every round (default each second) the source is read, rates
//! and percentiles are computed from the difference with the rounds of the last window
//! ([`view`]), and the page gets the new view over server-sent events.
//!
//! ```no_run
//! # async fn demo(host: std::sync::Arc<nimbus_lattice::Host>) -> Result<(), nimbus_dashboard::DashboardError> {
//! use std::sync::Arc;
//! use nimbus_dashboard::{DashboardOptions, LocalSource};
//! let listener = nimbus_dashboard::bind("127.0.0.1:4000".parse().unwrap()).await?;
//! let dashboard = nimbus_dashboard::serve(listener, Arc::new(LocalSource::new(host)), DashboardOptions::default());
//! println!("dashboard at {}", dashboard.url());
//! # Ok(()) }
//! ```

mod server;
mod source;
pub mod view;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

pub use source::{Collected, DEFAULT_NATS_TIMEOUT, HostReport, LocalSource, NatsSource, Source};
use view::Aggregator;

/// Where `wash up --dashboard` and `wash ui` serve by default.
pub const DEFAULT_ADDR: &str = "127.0.0.1:4000";

/// Why the dashboard could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DashboardError {
    /// The address could not be bound (in use, not local, no permission).
    #[error(
        "cannot serve the dashboard on {addr}: {error}; give another address (e.g. 127.0.0.1:0 for any free port), or stop what listens there"
    )]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// What the operating system said (in the message, not a `source`: said once).
        error: std::io::Error,
    },
}

/// How the dashboard refreshes.
#[derive(Debug, Clone)]
pub struct DashboardOptions {
    /// Time between two rounds of reading the source.
    pub refresh: Duration,
    /// The window of call rates and latency percentiles.
    pub window: Duration,
    /// Events kept for the page.
    pub max_events: usize,
}

impl Default for DashboardOptions {
    fn default() -> Self {
        Self {
            refresh: Duration::from_secs(1),
            window: Duration::from_secs(10),
            max_events: 50,
        }
    }
}

/// A bound dashboard address, so a port in use is reported before anything else starts.
#[derive(Debug)]
pub struct DashboardListener {
    listener: tokio::net::TcpListener,
    addr: SocketAddr,
}

impl DashboardListener {
    /// The bound address (the real port when 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

/// Binds `addr` for the dashboard; the error names the address and what to do.
pub async fn bind(addr: SocketAddr) -> Result<DashboardListener, DashboardError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|error| DashboardError::Bind { addr, error })?;
    let addr = listener
        .local_addr()
        .map_err(|error| DashboardError::Bind { addr, error })?;
    Ok(DashboardListener { listener, addr })
}

/// A running dashboard; dropping it (or [`Dashboard::stop`]) stops serving.
#[derive(Debug)]
pub struct Dashboard {
    addr: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

impl Dashboard {
    /// The address it serves on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR/`, to print or open.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Stops serving (open streams end).
    pub fn stop(mut self) {
        self.abort();
    }

    fn abort(&mut self) {
        for task in self.tasks.drain(..) {
            task.abort();
        }
    }
}

impl Drop for Dashboard {
    fn drop(&mut self) {
        self.abort();
    }
}

/// Serves the dashboard of `source` on `listener`: reads the source every
/// `options.refresh`, follows its events, and serves the page, `/api/snapshot` and
/// `/api/stream`. Must run inside a tokio runtime.
pub fn serve(
    listener: DashboardListener,
    source: Arc<dyn Source>,
    options: DashboardOptions,
) -> Dashboard {
    let (latest_tx, latest_rx) = watch::channel(None);
    let aggregator = Arc::new(Mutex::new(Aggregator::new(
        options.window,
        options.max_events,
    )));
    let poke = Arc::new(Notify::new());
    let events = tokio::spawn(follow_events(
        source.clone(),
        aggregator.clone(),
        poke.clone(),
    ));
    let rounds = tokio::spawn(async move {
        loop {
            let collected = source.collect().await;
            let view = aggregator
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .update(&collected, source.mode(), &source.lattice());
            match serde_json::to_string(&view) {
                Ok(json) => {
                    latest_tx.send_replace(Some(Arc::from(json)));
                }
                Err(e) => tracing::warn!(error = %e, "could not encode the dashboard view"),
            }
            // An event (an actor started, a link set) shows at once, not a round later.
            tokio::select! {
                () = tokio::time::sleep(options.refresh) => {}
                () = poke.notified() => {}
            }
        }
    });
    let server = tokio::spawn(server::run(listener.listener, latest_rx));
    Dashboard {
        addr: listener.addr,
        tasks: vec![rounds, events, server],
    }
}

/// [`bind`] and [`serve`] in one step.
pub async fn start(
    addr: SocketAddr,
    source: Arc<dyn Source>,
    options: DashboardOptions,
) -> Result<Dashboard, DashboardError> {
    Ok(serve(bind(addr).await?, source, options))
}

async fn follow_events(
    source: Arc<dyn Source>,
    aggregator: Arc<Mutex<Aggregator>>,
    poke: Arc<Notify>,
) {
    let mut events = match source.events().await {
        Ok(events) => events,
        Err(e) => {
            tracing::warn!(error = %e, "the dashboard shows no events");
            return;
        }
    };
    while let Some(event) = events.next().await {
        let kept = aggregator
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push_event(&event);
        // Not on heartbeats: each round's ping makes every host send one, and a poke per
        // heartbeat would start the next round at once, and so on without a pause.
        if kept {
            poke.notify_one();
        }
    }
}
