//! One provider process: start it with its host data on stdin, forward its output to
//! `tracing`, wait for it, stop it.

use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nimbus_core::wire::HostData;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::oneshot;
use tracing::{debug, info, warn};

use crate::{EXIT_ON_STDIN_EOF_ENV, ProviderProcessSpec, SupervisorError};

/// Longest output line forwarded in one piece; longer lines are split.
const MAX_LINE: usize = 16 * 1024;

/// Checks up front that `path` names an executable file, so a typo is reported as such
/// instead of as a crash loop.
pub(crate) fn check_binary(path: &Path) -> Result<(), SupervisorError> {
    let meta = std::fs::metadata(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            SupervisorError::NotFound {
                path: path.to_path_buf(),
            }
        } else {
            SupervisorError::Spawn {
                path: path.to_path_buf(),
                source,
            }
        }
    })?;
    if !meta.is_file() {
        return Err(SupervisorError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o111 == 0 {
            return Err(SupervisorError::NotExecutable {
                path: path.to_path_buf(),
            });
        }
    }
    Ok(())
}

/// A started provider process.
pub(crate) struct Running {
    pub(crate) pid: u32,
    child: Child,
    started: Instant,
    /// Dropping this closes the provider's stdin (end of file: "your host is gone").
    close_stdin: Option<oneshot::Sender<()>>,
}

/// How a process ended.
#[derive(Debug, Clone)]
pub(crate) struct ExitInfo {
    pub(crate) pid: u32,
    pub(crate) status: String,
    pub(crate) code: Option<i32>,
    pub(crate) signal: Option<i32>,
    pub(crate) uptime: Duration,
}

impl ExitInfo {
    /// Exit code 0: the provider stopped because it was asked to.
    pub(crate) fn clean(&self) -> bool {
        self.code == Some(0)
    }
}

/// Starts one process of `spec` with `host_data` on its stdin. The caller runs inside a
/// tokio runtime.
pub(crate) fn start(
    spec: &ProviderProcessSpec,
    host_data: HostData,
    label: &str,
) -> Result<Running, SupervisorError> {
    check_binary(&spec.binary)?;
    let line = host_data
        .to_stdin_line()
        .map_err(SupervisorError::HostData)?;
    let mut cmd = Command::new(&spec.binary);
    cmd.args(&spec.args)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .env(EXIT_ON_STDIN_EOF_ENV, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    // Its own process group: a terminal's Ctrl-C (or any signal to the host's group) is for
    // the host, which then stops its providers in order; the provider getting it as well
    // would exit without being asked, and be restarted.
    #[cfg(unix)]
    cmd.process_group(0);
    let mut child = cmd.spawn().map_err(|source| SupervisorError::Spawn {
        path: spec.binary.clone(),
        source,
    })?;
    // A spawned child has a pid until it is waited for, which has not happened yet.
    let pid = child.id().unwrap_or_default();
    let started = Instant::now();

    if let Some(stdout) = child.stdout.take() {
        tokio::spawn(forward_lines(stdout, label.to_string(), pid, "stdout"));
    }
    if let Some(stderr) = child.stderr.take() {
        tokio::spawn(forward_lines(stderr, label.to_string(), pid, "stderr"));
    }
    let (close_stdin, closed) = oneshot::channel();
    if let Some(stdin) = child.stdin.take() {
        tokio::spawn(feed_stdin(stdin, line, closed, label.to_string(), pid));
    }
    Ok(Running {
        pid,
        child,
        started,
        close_stdin: Some(close_stdin),
    })
}

/// Writes the host data line, then keeps stdin open until told to close it.
async fn feed_stdin(
    mut stdin: ChildStdin,
    line: String,
    closed: oneshot::Receiver<()>,
    label: String,
    pid: u32,
) {
    let written = async {
        stdin.write_all(line.as_bytes()).await?;
        stdin.flush().await
    }
    .await;
    if let Err(e) = written {
        // The process exited before reading; its exit is reported by the watcher.
        debug!(provider = %label, pid, error = %e, "failed to write the host data to stdin");
        return;
    }
    let _ = closed.await;
}

/// Forwards a process output stream to `tracing`, one event per line. Invalid UTF-8 is
/// replaced, over-long lines are split, so a misbehaving provider never blocks on a full
/// pipe and never stops being forwarded.
async fn forward_lines(
    stream: impl AsyncRead + Unpin,
    label: String,
    pid: u32,
    name: &'static str,
) {
    let mut reader = BufReader::new(stream);
    let mut line = Vec::with_capacity(256);
    loop {
        let buf = match reader.fill_buf().await {
            Ok(buf) => buf,
            Err(e) => {
                debug!(provider = %label, pid, stream = name, error = %e, "output stream failed");
                break;
            }
        };
        if buf.is_empty() {
            break;
        }
        let room = MAX_LINE - line.len();
        let (take, complete) = match buf.iter().take(room).position(|b| *b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len().min(room), line.len() + buf.len() >= MAX_LINE),
        };
        line.extend_from_slice(&buf[..take]);
        reader.consume(take);
        if complete {
            emit_line(&line, &label, pid, name);
            line.clear();
        }
    }
    if !line.is_empty() {
        emit_line(&line, &label, pid, name);
    }
}

fn emit_line(line: &[u8], label: &str, pid: u32, stream: &'static str) {
    let text = String::from_utf8_lossy(line);
    let text = text.trim_end_matches(['\n', '\r']);
    if !text.is_empty() {
        info!(target: "nimbus_supervisor::provider", provider = %label, pid, stream, "{text}");
    }
}

impl Running {
    /// Waits for the process to exit (cancel safe).
    pub(crate) async fn wait(&mut self) -> ExitInfo {
        let status = self.child.wait().await;
        self.exit_info(status)
    }

    /// Closes stdin, waits up to `grace` for the process to exit, then kills it.
    pub(crate) async fn stop(&mut self, grace: Duration) -> ExitInfo {
        self.close_stdin.take();
        match tokio::time::timeout(grace, self.child.wait()).await {
            Ok(status) => self.exit_info(status),
            Err(_) => {
                warn!(
                    pid = self.pid,
                    ?grace,
                    "provider did not exit within its grace period; killing it"
                );
                if let Err(e) = self.child.start_kill() {
                    debug!(pid = self.pid, error = %e, "failed to kill the provider");
                }
                let status = self.child.wait().await;
                self.exit_info(status)
            }
        }
    }

    fn exit_info(&self, status: std::io::Result<ExitStatus>) -> ExitInfo {
        let uptime = self.started.elapsed();
        match status {
            Ok(status) => {
                let code = status.code();
                let signal = exit_signal(&status);
                let text = match (code, signal) {
                    (Some(code), _) => format!("exit code {code}"),
                    (None, Some(sig)) => format!("signal {sig} ({})", signal_name(sig)),
                    (None, None) => status.to_string(),
                };
                ExitInfo {
                    pid: self.pid,
                    status: text,
                    code,
                    signal,
                    uptime,
                }
            }
            Err(e) => ExitInfo {
                pid: self.pid,
                status: format!("unknown (failed to wait for the process: {e})"),
                code: None,
                signal: None,
                uptime,
            },
        }
    }
}

#[cfg(unix)]
fn exit_signal(status: &ExitStatus) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    status.signal()
}

#[cfg(not(unix))]
fn exit_signal(_status: &ExitStatus) -> Option<i32> {
    None
}

/// The usual name of a Linux signal number, for log lines and events.
fn signal_name(signal: i32) -> &'static str {
    match signal {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        4 => "SIGILL",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        15 => "SIGTERM",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_directory_and_non_executable_paths_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        assert!(matches!(
            check_binary(&missing),
            Err(SupervisorError::NotFound { .. })
        ));
        assert!(matches!(
            check_binary(dir.path()),
            Err(SupervisorError::NotAFile { .. })
        ));
        let plain = dir.path().join("plain");
        std::fs::write(&plain, "#!/bin/sh\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o644)).unwrap();
            let err = check_binary(&plain).unwrap_err();
            assert!(matches!(err, SupervisorError::NotExecutable { .. }));
            assert!(err.to_string().contains("chmod +x"), "{err}");
            std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        check_binary(&plain).unwrap();
    }

    #[test]
    fn signals_have_names() {
        assert_eq!(signal_name(9), "SIGKILL");
        assert_eq!(signal_name(64), "other");
    }
}
