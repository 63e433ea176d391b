//! The default [`ProcessLauncher`]: provider executables run under `nimbus-supervisor`
//! (host data on stdin, output to the log, restart with back-off). A restarted process
//! gets the links of the moment through the host-data callback, and the host re-sends the
//! links once it answers its health check (for those put while it was starting); when the
//! supervisor gives up, the host reports the provider stopped.
//!
//! Only the host stops a provider: [`ProcessHandle::stop`] (after its shutdown request)
//! is the one wanted stop. A process that exits on its own is restarted whatever its
//! status, exit code 0 included (a shutdown request published by someone else, a stray
//! signal), and reported like a crash: a warning from the supervisor, then the restart.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use nimbus_supervisor::{ProviderProcessSpec, RestartPolicy, SupervisedProvider, SupervisorEvent};

use crate::launch::{ProcessHandle, ProcessLaunch, ProcessLauncher};

/// Runs provider executables under `nimbus-supervisor` with a restart policy.
#[derive(Debug, Clone, Default)]
pub struct SupervisorLauncher {
    /// When and how often a crashed provider is restarted.
    pub restart: RestartPolicy,
}

struct Supervised(SupervisedProvider);

#[async_trait]
impl ProcessHandle for Supervised {
    async fn stop(&self, grace: Duration) {
        self.0.stop(grace).await;
    }
}

#[async_trait]
impl ProcessLauncher for SupervisorLauncher {
    async fn launch(&self, launch: ProcessLaunch) -> Result<Box<dyn ProcessHandle>, String> {
        let spec = ProviderProcessSpec {
            binary: launch.binary,
            args: Vec::new(),
            host_data: launch.host_data,
            env: launch.env.into_iter().collect(),
            restart: self.restart,
        };
        let on_gave_up = launch.on_gave_up;
        let on_restarted = launch.on_restarted;
        let on_event = move |event: SupervisorEvent| match event {
            SupervisorEvent::Restarted { pid, attempt } => {
                tracing::debug!(pid, attempt, "provider process restarted");
                on_restarted();
            }
            SupervisorEvent::GaveUp { attempts } => {
                on_gave_up(format!("gave up after {attempts} restarts"));
            }
            SupervisorEvent::Exited {
                status,
                restart_in: None,
                ..
            } => on_gave_up(format!("exited ({status}) and is not restarted")),
            other => tracing::debug!(event = ?other, "provider process event"),
        };
        let supervised = SupervisedProvider::spawn(spec, on_event).map_err(|e| e.to_string())?;
        Ok(Box::new(Supervised(supervised)))
    }
}

/// The launcher a host uses when none is configured.
pub(crate) fn default_launcher() -> Arc<dyn ProcessLauncher> {
    Arc::new(SupervisorLauncher::default())
}
