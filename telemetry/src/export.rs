//! The exporter: a bounded queue that finished spans enter without waiting, and a thread
//! of its own that takes them off in batches and POSTs each batch as OTLP/HTTP JSON to
//! the collector. A full queue drops the span (and counts it); a collector that is slow,
//! gone or refusing costs the exporter's thread time, never the caller's.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use tokio::sync::{mpsc, oneshot};

use crate::config::{Config, Endpoint};
use crate::otlp;
use crate::span::SpanData;

static TRACER: OnceLock<Tracer> = OnceLock::new();

/// The installed tracer, if any: the one check the off path makes.
#[inline]
pub(crate) fn tracer() -> Option<&'static Tracer> {
    TRACER.get()
}

/// Counts of what the exporter did, for tests and diagnostics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportStats {
    /// Spans handed to the exporter.
    pub submitted: u64,
    /// Spans dropped because the queue was full (or the exporter gone).
    pub dropped: u64,
    /// Spans the collector accepted (2xx).
    pub exported: u64,
    /// Spans lost because a POST failed (unreachable collector, error status, timeout).
    pub failed: u64,
}

#[derive(Default)]
struct Counters {
    submitted: AtomicU64,
    dropped: AtomicU64,
    exported: AtomicU64,
    failed: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> ExportStats {
        ExportStats {
            submitted: self.submitted.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            exported: self.exported.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
        }
    }
}

enum Message {
    Span(Box<SpanData>),
    /// Export what is queued, then answer.
    Flush(oneshot::Sender<()>),
}

/// The process's exporter: where spans go and what it is called.
pub(crate) struct Tracer {
    config: Config,
    queue: mpsc::Sender<Message>,
    counters: std::sync::Arc<Counters>,
}

impl Tracer {
    /// Queues a finished span without waiting; drops it when the queue is full.
    pub(crate) fn submit(&self, span: SpanData) {
        self.counters.submitted.fetch_add(1, Ordering::Relaxed);
        if self.queue.try_send(Message::Span(Box::new(span))).is_err() {
            let dropped = self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            if dropped.is_multiple_of(1000) {
                tracing::warn!(
                    dropped = dropped + 1,
                    capacity = self.config.max_queue_size,
                    "the span export queue is full; spans are dropped (is the collector at {} keeping up? OTEL_BSP_MAX_QUEUE_SIZE raises the queue)",
                    self.config.endpoint.url
                );
            }
        }
    }
}

/// Why the exporter could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// One process has one exporter.
    #[error("an OTLP exporter is already installed in this process")]
    AlreadyInstalled,
    /// The exporter thread could not be started.
    #[error("failed to start the OTLP exporter thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// Installs the process's exporter with `config`: from now on spans record and are sent
/// to `config.endpoint`. Starts the exporter's thread (with a small runtime of its own, so
/// it works from any context and outlives none).
pub fn install(config: Config) -> Result<(), InstallError> {
    if TRACER.get().is_some() {
        return Err(InstallError::AlreadyInstalled);
    }
    let (tx, rx) = mpsc::channel(config.max_queue_size.max(1));
    let counters = std::sync::Arc::new(Counters::default());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()?;
    let worker = Worker {
        config: config.clone(),
        counters: counters.clone(),
    };
    let tracer = Tracer {
        config,
        queue: tx,
        counters,
    };
    // Set before the thread exists, so a lost race leaves no thread behind.
    TRACER
        .set(tracer)
        .map_err(|_| InstallError::AlreadyInstalled)?;
    std::thread::Builder::new()
        .name("otlp-export".into())
        .spawn(move || runtime.block_on(worker.run(rx)))?;
    Ok(())
}

/// Whether spans are recorded in this process (an exporter is installed).
#[inline]
pub fn enabled() -> bool {
    TRACER.get().is_some()
}

/// What the installed exporter has done so far; `None` when none is installed.
pub fn stats() -> Option<ExportStats> {
    TRACER.get().map(|t| t.counters.snapshot())
}

/// The installed exporter's configuration, e.g. to hand the endpoint to child processes.
pub fn config() -> Option<&'static Config> {
    TRACER.get().map(|t| &t.config)
}

/// Exports what is queued now and waits for it, at most `timeout`; returns whether it
/// finished. Call before the process exits so the last spans are not lost.
pub async fn flush(timeout: Duration) -> bool {
    let Some(tracer) = TRACER.get() else {
        return true;
    };
    let (tx, rx) = oneshot::channel();
    let sent = tokio::time::timeout(timeout, tracer.queue.send(Message::Flush(tx))).await;
    if !matches!(sent, Ok(Ok(()))) {
        return false;
    }
    matches!(tokio::time::timeout(timeout, rx).await, Ok(Ok(())))
}

/// The exporter thread's loop.
struct Worker {
    config: Config,
    counters: std::sync::Arc<Counters>,
}

impl Worker {
    async fn run(self, mut rx: mpsc::Receiver<Message>) {
        let mut batch: Vec<SpanData> = Vec::with_capacity(self.config.max_export_batch_size);
        let mut waiters: Vec<oneshot::Sender<()>> = Vec::new();
        let mut warned = false;
        loop {
            // Wait for the first span (or a flush), then gather for the schedule delay
            // or until the batch is full.
            let Some(first) = rx.recv().await else { break };
            let closed = {
                let mut closed = false;
                self.take(first, &mut batch, &mut waiters);
                let deadline = tokio::time::Instant::now() + self.config.schedule_delay;
                while batch.len() < self.config.max_export_batch_size && waiters.is_empty() {
                    match tokio::time::timeout_at(deadline, rx.recv()).await {
                        Ok(Some(m)) => self.take(m, &mut batch, &mut waiters),
                        Ok(None) => {
                            closed = true;
                            break;
                        }
                        Err(_) => break,
                    }
                }
                // A flush exports everything queued before it.
                if !waiters.is_empty() {
                    while let Ok(m) = rx.try_recv() {
                        self.take(m, &mut batch, &mut waiters);
                    }
                }
                closed
            };
            for chunk in batch.chunks(self.config.max_export_batch_size.max(1)) {
                self.export(chunk, &mut warned).await;
            }
            batch.clear();
            for w in waiters.drain(..) {
                let _ = w.send(());
            }
            if closed {
                break;
            }
        }
    }

    fn take(
        &self,
        message: Message,
        batch: &mut Vec<SpanData>,
        waiters: &mut Vec<oneshot::Sender<()>>,
    ) {
        match message {
            Message::Span(span) => batch.push(*span),
            Message::Flush(w) => waiters.push(w),
        }
    }

    async fn export(&self, spans: &[SpanData], warned: &mut bool) {
        if spans.is_empty() {
            return;
        }
        let body = otlp::encode(&self.config.resource(), spans);
        let n = spans.len() as u64;
        match tokio::time::timeout(self.config.timeout, post(&self.config.endpoint, body)).await {
            Ok(Ok(())) => {
                self.counters.exported.fetch_add(n, Ordering::Relaxed);
                *warned = false;
            }
            outcome => {
                self.counters.failed.fetch_add(n, Ordering::Relaxed);
                let reason = match outcome {
                    Ok(Err(e)) => e,
                    _ => format!("no answer within {:?}", self.config.timeout),
                };
                // Once per outage, not once per batch.
                if !*warned {
                    tracing::warn!(
                        spans = n,
                        "could not export spans to {}: {reason}; check that an OTLP/HTTP collector listens there (OTEL_EXPORTER_OTLP_ENDPOINT)",
                        self.config.endpoint.url
                    );
                    *warned = true;
                }
            }
        }
    }
}

/// POSTs one JSON body to the collector over a fresh HTTP/1.1 connection.
pub(crate) async fn post(endpoint: &Endpoint, body: Vec<u8>) -> Result<(), String> {
    let stream = tokio::net::TcpStream::connect((endpoint.host.as_str(), endpoint.port))
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("HTTP handshake failed: {e}"))?;
    let conn = tokio::spawn(conn);
    let request = hyper::Request::post(endpoint.path.as_str())
        .header(hyper::header::HOST, endpoint.authority.as_str())
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| format!("cannot build the request: {e}"))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    let status = response.status();
    drop(response);
    drop(sender);
    conn.abort();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("the collector answered {status}"))
    }
}
