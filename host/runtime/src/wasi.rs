//! WASI preview 1 for actors that import it: the actor's own directory as the only
//! preopened directory, no environment, no network, and stdout/stderr sent line by line
//! to the host's log instead of the host's terminal.

use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use crate::error::LoadError;

/// Longest partial line kept before it is logged anyway.
const MAX_LINE: usize = 16 * 1024;

/// Which of the two output streams a [`LogStream`] stands for.
#[derive(Clone, Copy, Debug)]
enum Stream {
    Stdout,
    Stderr,
}

/// An output stream that logs complete lines with the actor's id.
#[derive(Clone)]
struct LogStream {
    actor: Arc<str>,
    stream: Stream,
    pending: Arc<Mutex<Vec<u8>>>,
}

impl LogStream {
    fn new(actor: Arc<str>, stream: Stream) -> Self {
        Self {
            actor,
            stream,
            pending: Arc::default(),
        }
    }

    fn emit(&self, line: &[u8]) {
        let text = String::from_utf8_lossy(line);
        let text = text.trim_end_matches('\r');
        match self.stream {
            Stream::Stdout => {
                tracing::info!(target: "actor::stdout", actor = %self.actor, "{text}")
            }
            Stream::Stderr => {
                tracing::warn!(target: "actor::stderr", actor = %self.actor, "{text}")
            }
        }
    }

    fn push(&self, bytes: &[u8]) {
        let mut pending = match self.pending.lock() {
            Ok(pending) => pending,
            Err(poisoned) => poisoned.into_inner(),
        };
        pending.extend_from_slice(bytes);
        while let Some(newline) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=newline).collect();
            self.emit(&line[..line.len() - 1]);
        }
        if pending.len() > MAX_LINE {
            let line = std::mem::take(&mut *pending);
            self.emit(&line);
        }
    }

    fn flush_partial(&self) {
        let mut pending = match self.pending.lock() {
            Ok(pending) => pending,
            Err(poisoned) => poisoned.into_inner(),
        };
        if !pending.is_empty() {
            let line = std::mem::take(&mut *pending);
            self.emit(&line);
        }
    }
}

impl IsTerminal for LogStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogStream {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for LogStream {
    async fn ready(&mut self) {}
}

impl OutputStream for LogStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        self.flush_partial();
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

impl tokio::io::AsyncWrite for LogStream {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.flush_partial();
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.flush_partial();
        Poll::Ready(Ok(()))
    }
}

/// Builds the WASI context of one instance.
pub(crate) fn context(actor: &Arc<str>, dir: Option<&Path>) -> Result<WasiP1Ctx, LoadError> {
    let mut builder = WasiCtxBuilder::new();
    builder
        .stdout(LogStream::new(actor.clone(), Stream::Stdout))
        .stderr(LogStream::new(actor.clone(), Stream::Stderr))
        .args(&[actor.to_string()]);
    if let Some(dir) = dir {
        builder
            .preopened_dir(dir, "/", FsPerms::ReadWrite)
            .map_err(|e| LoadError::ActorDir {
                path: dir.display().to_string(),
                message: e.to_string(),
            })?;
    }
    Ok(builder.build_p1())
}

/// An empty context, used only if a store somehow lacks one; it grants nothing.
pub(crate) fn empty_context() -> WasiP1Ctx {
    WasiCtxBuilder::new().build_p1()
}
