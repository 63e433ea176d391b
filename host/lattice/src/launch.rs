//! The integration point for out-of-process providers: what a process launcher is given
//! and what it hands back. The default launcher is [`crate::SupervisorLauncher`]; this
//! module knows nothing of the host, so launchers depend on it alone.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use nimbus_core::wire::HostData;

/// What a process launcher needs to start a provider executable.
#[derive(Clone)]
pub struct ProcessLaunch {
    /// The provider executable.
    pub binary: PathBuf,
    /// The host data written to its stdin; called again for each restart so that the
    /// current links are passed.
    pub host_data: Arc<dyn Fn() -> HostData + Send + Sync>,
    /// Extra environment variables.
    pub env: HashMap<String, String>,
    /// Called once if the process goes down for good on its own (restarts exhausted),
    /// with the reason, so the host can report the provider stopped.
    pub on_gave_up: Arc<dyn Fn(String) + Send + Sync>,
    /// Called each time a replacement process has been started (after a crash), so the
    /// host can hand it the links put between its host data and its subscriptions: its
    /// host data carries the links of the moment it was written, and a link put after
    /// that, while the process is still starting, reaches nobody over NATS.
    pub on_restarted: Arc<dyn Fn() + Send + Sync>,
}

impl std::fmt::Debug for ProcessLaunch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessLaunch")
            .field("binary", &self.binary)
            .field("env", &self.env)
            .finish_non_exhaustive()
    }
}

/// A started provider process.
#[async_trait]
pub trait ProcessHandle: Send + Sync + 'static {
    /// Asks the provider to shut down, killing it after `grace`.
    async fn stop(&self, grace: Duration);
}

/// The integration point for out-of-process providers: starts provider executables
/// (host data on stdin, restart on exit). The host calls it for `lp` commands and
/// [`crate::Host::launch_provider`] naming a registered executable. The default is
/// [`crate::SupervisorLauncher`] (`nimbus-supervisor`); tests and embedders may plug in
/// their own.
#[async_trait]
pub trait ProcessLauncher: Send + Sync + 'static {
    /// Starts the executable; returns once it runs (not once it is healthy).
    async fn launch(&self, launch: ProcessLaunch) -> Result<Box<dyn ProcessHandle>, String>;
}
