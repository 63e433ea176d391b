//! Supervision of capability provider processes, the way a 0.x host runs them: start the
//! binary, write its host data line to stdin, forward its stdout and stderr lines to
//! `tracing`, watch it, and restart it with exponential back-off when it exits.
//!
//! The host data is produced by a callback on every start, so a restarted provider gets
//! the links of that moment, not those of its first start. Events (started, exited,
//! restarted, gave up, stopped) go to another callback, so the host can publish them.
//!
//! Stopping is two-step, as in the 0.x protocol: the host first sends the provider its
//! `shutdown` request over NATS (this crate knows no NATS), then calls
//! [`SupervisedProvider::stop`], which closes the provider's stdin, waits up to a grace
//! period for it to exit and kills it otherwise. A stopped provider is never restarted.
//! Only `stop` makes a stop wanted: a process that exits by itself, with any status and
//! code 0 included, is restarted (a clean exit after [`RestartPolicy::clean_exit_grace`]
//! without `stop`, in case the host's `stop` follows its shutdown request a moment late).
//!
//! Each provider runs in its own process group, so a signal meant for the host (Ctrl-C in
//! its terminal) does not reach the providers: the host stops them itself, in order, and
//! would otherwise see them exit without having asked.
//!
//! Parent death: the provider's stdin stays open for its whole life and the environment
//! variable [`EXIT_ON_STDIN_EOF_ENV`] is set, so a provider built on the SDK runner exits
//! by itself when the host process dies and the pipe closes.

mod policy;
mod process;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use nimbus_core::encoding::EncodingError;
use nimbus_core::wire::HostData;
use tokio::sync::watch;
use tokio::task::AbortHandle;
use tracing::{info, warn};

pub use policy::{DEFAULT_CLEAN_EXIT_GRACE, RestartPolicy};
use process::{ExitInfo, Running};

/// Set to `1` in every supervised provider's environment: the provider should exit when
/// its stdin reaches end of file (the supervising host is gone).
pub const EXIT_ON_STDIN_EOF_ENV: &str = "NIMBUS_PROVIDER_EXIT_ON_STDIN_EOF";

/// Produces the host data for each start of the provider.
pub type HostDataFn = Arc<dyn Fn() -> HostData + Send + Sync>;

/// What to run and how to restart it.
#[derive(Clone)]
pub struct ProviderProcessSpec {
    /// The provider executable (a path; `PATH` is not searched).
    pub binary: PathBuf,
    /// Command-line arguments.
    pub args: Vec<String>,
    /// Called on every start for the host data line written to stdin.
    pub host_data: HostDataFn,
    /// Environment variables added to the host's own.
    pub env: Vec<(String, String)>,
    /// Restart behaviour.
    pub restart: RestartPolicy,
}

impl fmt::Debug for ProviderProcessSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderProcessSpec")
            .field("binary", &self.binary)
            .field("args", &self.args)
            .field("env", &self.env)
            .field("restart", &self.restart)
            .finish_non_exhaustive()
    }
}

/// A change in a supervised provider's life, in order of occurrence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SupervisorEvent {
    /// The first process started.
    Started {
        /// Its OS process id.
        pid: u32,
    },
    /// A process exited (crashed, was killed, or stopped).
    Exited {
        /// Its OS process id.
        pid: u32,
        /// Human-readable exit status, e.g. `exit code 1` or `signal 9 (SIGKILL)`.
        status: String,
        /// The exit code, if it exited by itself.
        code: Option<i32>,
        /// The signal that ended it, if any (Unix).
        signal: Option<i32>,
        /// How long it ran.
        uptime: Duration,
        /// When it will be restarted; `None` if it will not be.
        restart_in: Option<Duration>,
    },
    /// A replacement process started.
    Restarted {
        /// Its OS process id.
        pid: u32,
        /// Consecutive restart number (1 for the first since the last healthy run).
        attempt: u32,
    },
    /// A restart could not start the process (binary gone, host data unencodable, ...).
    RestartFailed {
        /// Consecutive restart number that failed.
        attempt: u32,
        /// Why.
        error: String,
        /// When the next try happens; `None` if there will be none.
        restart_in: Option<Duration>,
    },
    /// The restart limit was reached; the provider stays down.
    GaveUp {
        /// Restarts tried since the last healthy run.
        attempts: u32,
    },
    /// Supervision ended on purpose: [`SupervisedProvider::stop`] (also one that follows a
    /// clean exit within the policy's grace), or a clean exit that the policy does not
    /// restart. No process runs any more.
    Stopped,
}

/// Why a provider could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    /// The binary does not exist.
    #[error(
        "provider binary {} does not exist; check the path (or the provider archive for this platform)",
        path.display()
    )]
    NotFound {
        /// The path given.
        path: PathBuf,
    },
    /// The path is a directory or another non-file.
    #[error("provider binary {} is not a regular file", path.display())]
    NotAFile {
        /// The path given.
        path: PathBuf,
    },
    /// The file has no execute permission.
    #[error(
        "provider binary {} is not executable; `chmod +x` it",
        path.display()
    )]
    NotExecutable {
        /// The path given.
        path: PathBuf,
    },
    /// The host data could not be encoded for stdin.
    #[error("failed to encode the provider's host data: {0}")]
    HostData(#[source] EncodingError),
    /// The OS refused to start the process.
    #[error("failed to start provider binary {}: {source}", path.display())]
    Spawn {
        /// The path given.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Called outside a tokio runtime.
    #[error("SupervisedProvider::spawn must be called from within a tokio runtime")]
    NoRuntime,
}

/// A provider process under supervision. Dropping it without [`Self::stop`] kills the
/// process and ends supervision.
pub struct SupervisedProvider {
    label: String,
    pid: Arc<AtomicU32>,
    control: watch::Sender<Option<Duration>>,
    done: watch::Receiver<bool>,
    task: AbortHandle,
}

impl fmt::Debug for SupervisedProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SupervisedProvider")
            .field("provider", &self.label)
            .field("pid", &self.pid())
            .finish_non_exhaustive()
    }
}

type EventFn = Arc<dyn Fn(SupervisorEvent) + Send + Sync>;

impl SupervisedProvider {
    /// Starts the provider and supervises it in a background task. Fails at once if the
    /// binary is missing or not executable, or the first start fails; later failures
    /// are reported through `on_event`, which runs on the supervision task: keep it quick
    /// (hand the event to a channel). Must be called within a tokio runtime.
    pub fn spawn(
        spec: ProviderProcessSpec,
        on_event: impl Fn(SupervisorEvent) + Send + Sync + 'static,
    ) -> Result<SupervisedProvider, SupervisorError> {
        let runtime =
            tokio::runtime::Handle::try_current().map_err(|_| SupervisorError::NoRuntime)?;
        process::check_binary(&spec.binary)?;
        let first = (spec.host_data)();
        let label = format!("{}/{}", first.provider_key, first.link_name);
        let running = process::start(&spec, first, &label)?;
        let pid = Arc::new(AtomicU32::new(running.pid));
        let on_event: EventFn = Arc::new(on_event);
        info!(provider = %label, pid = running.pid, binary = %spec.binary.display(), "provider started");
        on_event(SupervisorEvent::Started { pid: running.pid });

        let (control, control_rx) = watch::channel(None);
        let (done_tx, done) = watch::channel(false);
        let task = runtime
            .spawn(supervise(Supervision {
                spec,
                label: label.clone(),
                on_event,
                pid: pid.clone(),
                control: control_rx,
                done: done_tx,
                running,
            }))
            .abort_handle();
        Ok(SupervisedProvider {
            label,
            pid,
            control,
            done,
            task,
        })
    }

    /// The OS process id of the running provider process; `None` between a crash and its
    /// restart, and after supervision ended.
    pub fn pid(&self) -> Option<u32> {
        match self.pid.load(Ordering::SeqCst) {
            0 => None,
            pid => Some(pid),
        }
    }

    /// Whether supervision is still going on (a process runs or a restart is pending).
    pub fn is_supervising(&self) -> bool {
        !*self.done.borrow()
    }

    /// Waits until supervision ends by itself (gave up, clean exit) or by [`Self::stop`].
    pub async fn wait(&self) {
        let mut done = self.done.clone();
        let _ = done.wait_for(|d| *d).await;
    }

    /// Stops the provider for good: closes its stdin, waits up to `grace` for it to exit
    /// (send it the NATS shutdown request first), then kills it. No restart follows.
    /// Returns once no process is left.
    pub async fn stop(&self, grace: Duration) {
        info!(provider = %self.label, ?grace, "stopping provider");
        self.control.send_replace(Some(grace));
        self.wait().await;
    }
}

impl Drop for SupervisedProvider {
    fn drop(&mut self) {
        // Aborting drops the child handle, whose kill_on_drop kills the process.
        self.task.abort();
    }
}

struct Supervision {
    spec: ProviderProcessSpec,
    label: String,
    on_event: EventFn,
    pid: Arc<AtomicU32>,
    control: watch::Receiver<Option<Duration>>,
    done: watch::Sender<bool>,
    running: Running,
}

/// Resolves with the grace period once a stop is requested (zero if the handle is gone).
async fn stop_requested(control: &mut watch::Receiver<Option<Duration>>) -> Duration {
    match control.wait_for(Option::is_some).await {
        Ok(grace) => grace.unwrap_or_default(),
        Err(_) => Duration::ZERO,
    }
}

/// The supervision loop: wait for the process to exit or for a stop request; on exit,
/// restart after the policy's back-off until the limit; on stop, end the process.
async fn supervise(mut s: Supervision) {
    let policy = s.spec.restart;
    // Consecutive restarts since the last healthy run.
    let mut attempt: u32 = 0;
    'supervise: loop {
        let exit = tokio::select! {
            exit = s.running.wait() => exit,
            grace = stop_requested(&mut s.control) => {
                let exit = s.running.stop(grace).await;
                s.pid.store(0, Ordering::SeqCst);
                s.emit(exited_event(&exit, None));
                s.emit(SupervisorEvent::Stopped);
                break 'supervise;
            }
        };
        s.pid.store(0, Ordering::SeqCst);
        if exit.uptime >= policy.reset_after {
            attempt = 0;
        }
        if exit.clean() {
            if !policy.restart_on_clean_exit {
                info!(provider = %s.label, pid = exit.pid, "provider exited cleanly; not restarting");
                s.emit(exited_event(&exit, None));
                s.emit(SupervisorEvent::Stopped);
                break 'supervise;
            }
            // A provider that obeyed its host's shutdown request may exit before the host
            // calls `stop`: a stop within the grace makes this exit a wanted one.
            tokio::select! {
                () = tokio::time::sleep(policy.clean_exit_grace) => {}
                _ = stop_requested(&mut s.control) => {
                    info!(provider = %s.label, pid = exit.pid, "provider exited cleanly as its host stopped it");
                    s.emit(exited_event(&exit, None));
                    s.emit(SupervisorEvent::Stopped);
                    break 'supervise;
                }
            }
        }
        attempt = attempt.saturating_add(1);
        let Some(mut delay) = policy.next_restart(attempt) else {
            warn!(provider = %s.label, status = %exit.status, "provider exited; restart limit reached");
            s.emit(exited_event(&exit, None));
            s.emit(SupervisorEvent::GaveUp {
                attempts: attempt - 1,
            });
            break 'supervise;
        };
        if exit.clean() {
            warn!(
                provider = %s.label,
                pid = exit.pid,
                status = %exit.status,
                uptime = ?exit.uptime,
                restart_in = ?delay,
                "provider exited cleanly although its host did not stop it (a shutdown request from elsewhere, or a signal); restarting"
            );
        } else {
            warn!(
                provider = %s.label,
                pid = exit.pid,
                status = %exit.status,
                uptime = ?exit.uptime,
                restart_in = ?delay,
                "provider exited; restarting"
            );
        }
        s.emit(exited_event(&exit, Some(delay)));
        loop {
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                _ = stop_requested(&mut s.control) => {
                    s.emit(SupervisorEvent::Stopped);
                    break 'supervise;
                }
            }
            let host_data = (s.spec.host_data)();
            match process::start(&s.spec, host_data, &s.label) {
                Ok(running) => {
                    s.pid.store(running.pid, Ordering::SeqCst);
                    info!(provider = %s.label, pid = running.pid, attempt, "provider restarted");
                    s.emit(SupervisorEvent::Restarted {
                        pid: running.pid,
                        attempt,
                    });
                    s.running = running;
                    continue 'supervise;
                }
                Err(e) => {
                    let failed = attempt;
                    attempt = attempt.saturating_add(1);
                    let next = policy.next_restart(attempt);
                    warn!(provider = %s.label, attempt = failed, error = %e, "provider restart failed");
                    s.emit(SupervisorEvent::RestartFailed {
                        attempt: failed,
                        error: e.to_string(),
                        restart_in: next,
                    });
                    match next {
                        Some(next) => delay = next,
                        None => {
                            s.emit(SupervisorEvent::GaveUp { attempts: failed });
                            break 'supervise;
                        }
                    }
                }
            }
        }
    }
    s.done.send_replace(true);
}

impl Supervision {
    fn emit(&self, event: SupervisorEvent) {
        (self.on_event)(event);
    }
}

fn exited_event(exit: &ExitInfo, restart_in: Option<Duration>) -> SupervisorEvent {
    SupervisorEvent::Exited {
        pid: exit.pid,
        status: exit.status.clone(),
        code: exit.code,
        signal: exit.signal,
        uptime: exit.uptime,
        restart_in,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::atomic::AtomicU32;

    use tokio::sync::mpsc;

    use super::*;

    const WAIT: Duration = Duration::from_secs(20);

    /// Writes an executable shell script into `dir`.
    fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    /// Host data whose host id counts the starts: N1, N2, ...
    fn counting_host_data() -> HostDataFn {
        let starts = AtomicU32::new(0);
        Arc::new(move || HostData {
            host_id: format!("N{}", starts.fetch_add(1, Ordering::SeqCst) + 1),
            provider_key: "VTEST".into(),
            link_name: "default".into(),
            ..HostData::default()
        })
    }

    fn policy(initial_ms: u64) -> RestartPolicy {
        RestartPolicy {
            initial_backoff: Duration::from_millis(initial_ms),
            max_backoff: Duration::from_secs(1),
            reset_after: Duration::from_secs(60),
            max_restarts: None,
            restart_on_clean_exit: false,
            clean_exit_grace: Duration::from_millis(10),
        }
    }

    fn spawn(
        binary: PathBuf,
        env: Vec<(String, String)>,
        restart: RestartPolicy,
    ) -> (SupervisedProvider, mpsc::UnboundedReceiver<SupervisorEvent>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let spec = ProviderProcessSpec {
            binary,
            args: Vec::new(),
            host_data: counting_host_data(),
            env,
            restart,
        };
        let sup = SupervisedProvider::spawn(spec, move |e| {
            let _ = tx.send(e);
        })
        .unwrap();
        (sup, rx)
    }

    async fn next(rx: &mut mpsc::UnboundedReceiver<SupervisorEvent>) -> SupervisorEvent {
        tokio::time::timeout(WAIT, rx.recv())
            .await
            .expect("no supervisor event in time")
            .expect("event channel closed")
    }

    /// (code, signal, restart_in) of an Exited event.
    fn exited(e: SupervisorEvent) -> (Option<i32>, Option<i32>, Option<Duration>) {
        match e {
            SupervisorEvent::Exited {
                code,
                signal,
                restart_in,
                ..
            } => (code, signal, restart_in),
            other => panic!("expected Exited, got {other:?}"),
        }
    }

    fn restarted(e: SupervisorEvent) -> u32 {
        match e {
            SupervisorEvent::Restarted { attempt, .. } => attempt,
            other => panic!("expected Restarted, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn every_start_gets_fresh_host_data_and_crashes_restart_until_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("stdin.log");
        let bin = script(
            dir.path(),
            "crasher",
            r#"read line; echo "$line" >> "$OUT"; echo "to stdout"; echo "to stderr" >&2; exit 3"#,
        );
        let env = vec![("OUT".to_string(), out.display().to_string())];
        let restart = RestartPolicy {
            max_restarts: Some(2),
            ..policy(10)
        };
        let (sup, mut rx) = spawn(bin, env, restart);
        assert!(matches!(
            next(&mut rx).await,
            SupervisorEvent::Started { .. }
        ));
        let ms = |n| Some(Duration::from_millis(n));
        assert_eq!(exited(next(&mut rx).await), (Some(3), None, ms(10)));
        assert_eq!(restarted(next(&mut rx).await), 1);
        assert_eq!(exited(next(&mut rx).await), (Some(3), None, ms(20)));
        assert_eq!(restarted(next(&mut rx).await), 2);
        assert_eq!(exited(next(&mut rx).await), (Some(3), None, None));
        assert_eq!(next(&mut rx).await, SupervisorEvent::GaveUp { attempts: 2 });
        sup.wait().await;
        assert_eq!(sup.pid(), None);

        let lines = std::fs::read_to_string(&out).unwrap();
        let hosts: Vec<String> = lines
            .lines()
            .map(|l| HostData::from_stdin_line(l).unwrap().host_id)
            .collect();
        assert_eq!(hosts, ["N1", "N2", "N3"]);
    }

    #[tokio::test]
    async fn stop_closes_stdin_and_waits_for_a_clean_exit() {
        let dir = tempfile::tempdir().unwrap();
        let bin = script(
            dir.path(),
            "eof-aware",
            &format!(r#"[ "${EXIT_ON_STDIN_EOF_ENV}" = 1 ] || exit 9; cat > /dev/null; exit 0"#),
        );
        let (sup, mut rx) = spawn(bin, Vec::new(), policy(10));
        let pid = sup.pid().unwrap();
        assert_eq!(next(&mut rx).await, SupervisorEvent::Started { pid });
        sup.stop(WAIT).await;
        assert_eq!(exited(next(&mut rx).await), (Some(0), None, None));
        assert_eq!(next(&mut rx).await, SupervisorEvent::Stopped);
        assert!(!sup.is_supervising());
    }

    #[tokio::test]
    async fn stop_kills_a_process_that_outlives_its_grace() {
        let dir = tempfile::tempdir().unwrap();
        let bin = script(dir.path(), "stubborn", "exec sleep 600");
        let (sup, mut rx) = spawn(bin, Vec::new(), policy(10));
        assert!(matches!(
            next(&mut rx).await,
            SupervisorEvent::Started { .. }
        ));
        sup.stop(Duration::from_millis(100)).await;
        assert_eq!(exited(next(&mut rx).await), (None, Some(9), None));
        assert_eq!(next(&mut rx).await, SupervisorEvent::Stopped);
        assert_eq!(sup.pid(), None);
    }

    #[tokio::test]
    async fn a_clean_exit_is_restarted_only_when_the_policy_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let bin = script(dir.path(), "quitter", "read line; exit 0");
        let (sup, mut rx) = spawn(bin.clone(), Vec::new(), policy(10));
        assert!(matches!(
            next(&mut rx).await,
            SupervisorEvent::Started { .. }
        ));
        assert_eq!(exited(next(&mut rx).await), (Some(0), None, None));
        assert_eq!(next(&mut rx).await, SupervisorEvent::Stopped);
        sup.wait().await;

        let restart = RestartPolicy {
            restart_on_clean_exit: true,
            max_restarts: Some(1),
            ..policy(10)
        };
        let (sup, mut rx) = spawn(bin, Vec::new(), restart);
        assert!(matches!(
            next(&mut rx).await,
            SupervisorEvent::Started { .. }
        ));
        assert_eq!(
            exited(next(&mut rx).await),
            (Some(0), None, Some(Duration::from_millis(10)))
        );
        assert_eq!(restarted(next(&mut rx).await), 1);
        assert_eq!(exited(next(&mut rx).await), (Some(0), None, None));
        assert_eq!(next(&mut rx).await, SupervisorEvent::GaveUp { attempts: 1 });
        sup.wait().await;
    }

    #[tokio::test]
    async fn a_clean_exit_is_a_wanted_stop_only_when_stop_follows_within_the_grace() {
        let dir = tempfile::tempdir().unwrap();
        let bin = script(dir.path(), "obedient", "read line; exit 0");
        // A grace far longer than the test: only `stop` can end it early.
        let patient = RestartPolicy {
            restart_on_clean_exit: true,
            clean_exit_grace: Duration::from_secs(600),
            ..policy(10)
        };
        let (sup, mut rx) = spawn(bin.clone(), Vec::new(), patient);
        assert!(matches!(
            next(&mut rx).await,
            SupervisorEvent::Started { .. }
        ));
        // The process has exited (as it does on its host's shutdown request) ...
        let start = std::time::Instant::now();
        while sup.pid().is_some() {
            assert!(start.elapsed() < WAIT, "the script never exited");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // ... and the host's `stop` comes after it: a wanted stop, no restart.
        sup.stop(WAIT).await;
        assert_eq!(exited(next(&mut rx).await), (Some(0), None, None));
        assert_eq!(next(&mut rx).await, SupervisorEvent::Stopped);
        assert!(!sup.is_supervising());

        // Nobody calls `stop`: after the grace the exit counts as unrequested and the
        // process is restarted, reported like a crash.
        let restart = RestartPolicy {
            restart_on_clean_exit: true,
            max_restarts: Some(1),
            ..policy(10)
        };
        let (sup, mut rx) = spawn(bin, Vec::new(), restart);
        let first = match next(&mut rx).await {
            SupervisorEvent::Started { pid } => pid,
            other => panic!("expected Started, got {other:?}"),
        };
        match next(&mut rx).await {
            SupervisorEvent::Exited {
                pid,
                code,
                restart_in,
                ..
            } => assert_eq!(
                (pid, code, restart_in),
                (first, Some(0), Some(Duration::from_millis(10)))
            ),
            other => panic!("expected Exited, got {other:?}"),
        }
        assert_eq!(restarted(next(&mut rx).await), 1);
        sup.stop(WAIT).await;
    }

    #[tokio::test]
    async fn a_provider_runs_in_its_own_process_group() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("pgid");
        // `ps -o pgid= -p $$`: the group of the script's own process.
        let bin = script(
            dir.path(),
            "grouped",
            r#"read line; ps -o pgid= -p $$ | tr -d ' ' > "$OUT.tmp"; mv "$OUT.tmp" "$OUT"; cat > /dev/null"#,
        );
        let env = vec![("OUT".to_string(), out.display().to_string())];
        let (sup, mut rx) = spawn(bin, env, policy(10));
        let pid = match next(&mut rx).await {
            SupervisorEvent::Started { pid } => pid,
            other => panic!("expected Started, got {other:?}"),
        };
        let start = std::time::Instant::now();
        while !out.exists() {
            assert!(start.elapsed() < WAIT, "the script never wrote its group");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let pgid: u32 = std::fs::read_to_string(&out)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // Inheriting the test's group would give it that group's id, not its own pid.
        assert_eq!(pgid, pid, "the provider leads its own process group");
        sup.stop(WAIT).await;
    }

    #[tokio::test]
    async fn a_long_enough_run_resets_the_back_off() {
        let dir = tempfile::tempdir().unwrap();
        let bin = script(dir.path(), "slow-crasher", "read line; sleep 0.3; exit 1");
        let restart = RestartPolicy {
            reset_after: Duration::from_millis(200),
            max_restarts: Some(1),
            ..policy(10)
        };
        let (sup, mut rx) = spawn(bin, Vec::new(), restart);
        assert!(matches!(
            next(&mut rx).await,
            SupervisorEvent::Started { .. }
        ));
        // Each run outlives reset_after: always the first restart, never giving up.
        for _ in 0..3 {
            assert_eq!(
                exited(next(&mut rx).await),
                (Some(1), None, Some(Duration::from_millis(10)))
            );
            assert_eq!(restarted(next(&mut rx).await), 1);
        }
        sup.stop(Duration::from_secs(5)).await;
    }

    #[tokio::test]
    async fn a_restart_that_cannot_start_the_binary_is_reported_and_retried() {
        let dir = tempfile::tempdir().unwrap();
        let mark = dir.path().join("running");
        let bin = script(
            dir.path(),
            "vanishing",
            r#"read line; touch "$MARK"; sleep 0.2; exit 1"#,
        );
        let restart = RestartPolicy {
            max_restarts: Some(2),
            ..policy(10)
        };
        let env = vec![("MARK".to_string(), mark.display().to_string())];
        let (sup, mut rx) = spawn(bin.clone(), env, restart);
        assert!(matches!(
            next(&mut rx).await,
            SupervisorEvent::Started { .. }
        ));
        // Remove the binary once the shell has it open, so only the restart misses it.
        let start = std::time::Instant::now();
        while !mark.exists() {
            assert!(start.elapsed() < WAIT, "the script never ran");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        std::fs::remove_file(&bin).unwrap();
        assert_eq!(
            exited(next(&mut rx).await),
            (Some(1), None, Some(Duration::from_millis(10)))
        );
        match next(&mut rx).await {
            SupervisorEvent::RestartFailed {
                attempt,
                error,
                restart_in,
            } => {
                assert_eq!(attempt, 1);
                assert!(error.contains("does not exist"), "{error}");
                assert_eq!(restart_in, Some(Duration::from_millis(20)));
            }
            other => panic!("expected RestartFailed, got {other:?}"),
        }
        assert!(matches!(
            next(&mut rx).await,
            SupervisorEvent::RestartFailed {
                attempt: 2,
                restart_in: None,
                ..
            }
        ));
        assert_eq!(next(&mut rx).await, SupervisorEvent::GaveUp { attempts: 2 });
        sup.wait().await;
    }

    #[test]
    fn spawn_outside_a_runtime_is_an_error() {
        let spec = ProviderProcessSpec {
            binary: PathBuf::from("/bin/sh"),
            args: Vec::new(),
            host_data: counting_host_data(),
            env: Vec::new(),
            restart: RestartPolicy::default(),
        };
        let err = SupervisedProvider::spawn(spec, |_| {}).unwrap_err();
        assert!(matches!(err, SupervisorError::NoRuntime), "{err:?}");
    }
}
