//! One HTTP/1.1 listener serving one actor: accept loop, request → `HandleRequest`
//! invocation → response, body limit, header and body read deadlines, per-request timeout
//! and graceful shutdown.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderName, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{StatusCode, header};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use nimbus_provider_sdk::{ActorCaller, ProviderError};
use nimbus_telemetry::{Span, SpanKind, TraceParent};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{Instrument, debug, info, info_span, warn};

use crate::settings::ServerSettings;
use crate::wire;

/// The `Retry-After` (seconds) of a 503 for a busy actor. The host refuses a call once its
/// queue is full or after its queue wait (1 s by default), so a busy spell is usually
/// over within a second; HTTP cannot say less than one.
pub const BUSY_RETRY_AFTER_SECS: u64 = 1;

/// What every request of one listener needs.
struct Target {
    actor_id: String,
    settings: ServerSettings,
    actors: Arc<dyn ActorCaller>,
}

/// A bound, serving listener. Dropping it without [`Listener::shutdown`] aborts it.
pub struct Listener {
    local_addr: SocketAddr,
    settings: ServerSettings,
    stop: watch::Sender<Option<Duration>>,
    task: Option<JoinHandle<()>>,
}

impl Listener {
    /// Binds the settings' address and starts serving requests for `actor_id`.
    pub async fn bind(
        actor_id: &str,
        settings: ServerSettings,
        actors: Arc<dyn ActorCaller>,
    ) -> std::io::Result<Listener> {
        let socket = TcpListener::bind(settings.address).await?;
        let local_addr = socket.local_addr()?;
        let (stop, stop_rx) = watch::channel(None);
        let target = Arc::new(Target {
            actor_id: actor_id.to_string(),
            settings: settings.clone(),
            actors,
        });
        let span = info_span!("http_listener", actor_id = %actor_id, address = %local_addr);
        let task = tokio::spawn(serve(socket, target, stop_rx).instrument(span));
        info!(actor_id, address = %local_addr, "HTTP listener started");
        Ok(Listener {
            local_addr,
            settings,
            stop,
            task: Some(task),
        })
    }

    /// The address actually bound (differs from the settings when port 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The settings the listener was started with.
    pub fn settings(&self) -> &ServerSettings {
        &self.settings
    }

    /// Stops accepting, lets in-flight requests finish for up to `grace`, then closes
    /// every connection.
    pub async fn shutdown(mut self, grace: Duration) {
        let _ = self.stop.send(Some(grace));
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn serve(
    socket: TcpListener,
    target: Arc<Target>,
    mut stop: watch::Receiver<Option<Duration>>,
) {
    let graceful = GracefulShutdown::new();
    let grace = loop {
        tokio::select! {
            accepted = socket.accept() => {
                let (stream, peer) = match accepted {
                    Ok(conn) => conn,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        warn!(error = %e, "failed to accept a connection");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let header_timeout = target.settings.header_timeout;
                let target = target.clone();
                let service = service_fn(move |req| handle(req, target.clone()));
                let conn = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(header_timeout)
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), service);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        debug!(%peer, error = %e, "HTTP connection ended with an error");
                    }
                });
            }
            changed = stop.changed() => {
                let grace = match changed {
                    Ok(()) => (*stop.borrow()).unwrap_or(Duration::ZERO),
                    Err(_) => Duration::ZERO,
                };
                break grace;
            }
        }
    };
    drop(socket);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        warn!(
            ?grace,
            "in-flight HTTP requests did not finish in time; closing them"
        );
    }
    info!("HTTP listener stopped");
}

/// One HTTP request, traced: the W3C `traceparent` / `tracestate` request headers (a
/// malformed `traceparent` is ignored: a new trace starts) are the parent of the request's
/// server span, and that span the parent of the actor's invocation. With tracing off the
/// incoming context alone is passed on to the actor's host.
async fn handle(
    req: hyper::Request<Incoming>,
    target: Arc<Target>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let parent = TraceParent::from_headers(
        header(nimbus_telemetry::TRACEPARENT),
        header(nimbus_telemetry::TRACESTATE),
    );
    if !nimbus_telemetry::enabled() {
        return nimbus_telemetry::scope(parent, handle_request(req, target)).await;
    }
    let mut span = Span::start(format!("HTTP {}", req.method()), SpanKind::Server, parent);
    if span.is_recording() {
        span.set_attribute("http.request.method", req.method().as_str());
        span.set_attribute("url.path", req.uri().path());
        span.set_attribute("nimbus.actor", target.actor_id.as_str());
    }
    let response = nimbus_telemetry::scope(span.context(), handle_request(req, target)).await;
    if let Ok(response) = &response {
        let status = response.status();
        span.set_attribute("http.response.status_code", i64::from(status.as_u16()));
        if status.is_server_error() {
            span.set_error(status);
        }
    }
    response
}

async fn handle_request(
    req: hyper::Request<Incoming>,
    target: Arc<Target>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let limit = target.settings.max_content_len;
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Ok(too_large(limit));
    }
    // One deadline for the whole body: hyper times out slow headers, but a client that
    // sent its headers could otherwise trickle (or stall) its body for as long as it likes
    // and hold the connection and this task.
    let deadline = target.settings.body_timeout;
    let body = match tokio::time::timeout(deadline, Limited::new(body, limit).collect()).await {
        Err(_) => {
            debug!(
                ?deadline,
                "request body not received in time; answering 408"
            );
            return Ok(body_timed_out(deadline));
        }
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return Ok(too_large(limit));
        }
        Ok(Err(e)) => {
            debug!(error = %e, "failed to read a request body");
            return Ok(plain(
                StatusCode::BAD_REQUEST,
                "the request body could not be read",
            ));
        }
    };

    let mut header = std::collections::HashMap::new();
    for (name, value) in &parts.headers {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        header
            .entry(name.as_str().to_string())
            .and_modify(|joined: &mut String| {
                joined.push_str(", ");
                joined.push_str(&value);
            })
            .or_insert(value);
    }
    let request = wire::Request {
        method: parts.method.as_str().to_string(),
        path: parts.uri.path().to_string(),
        query_string: parts.uri.query().unwrap_or_default().to_string(),
        header,
        body: body.to_vec(),
    };
    let body_len = request.body.len();

    // The generated client encodes the request, calls `HandleRequest` and decodes the reply.
    let actor = wire::ActorClient::new(target.actors.as_ref(), &target.actor_id);
    let call = actor.handle_request(request);
    let response = match tokio::time::timeout(target.settings.timeout, call).await {
        Err(_) => {
            warn!(actor_id = %target.actor_id, timeout = ?target.settings.timeout, "actor did not answer an HTTP request in time");
            return Ok(plain(
                StatusCode::GATEWAY_TIMEOUT,
                "the actor did not answer in time",
            ));
        }
        Ok(Err(ProviderError::ActorUnavailable { reason, .. })) => {
            warn!(actor_id = %target.actor_id, %reason, "no actor to take an HTTP request");
            return Ok(plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "no actor is available to handle this request",
            ));
        }
        Ok(Err(ProviderError::ActorBusy { reason, .. })) => {
            // Expected under overload, and cheap to produce: not a warning per request.
            debug!(actor_id = %target.actor_id, %reason, "actor busy; answering 503");
            return Ok(busy());
        }
        Ok(Err(e)) if e.is_payload_too_large() => {
            // The body fit the listener's limit but the invocation carrying it did not fit
            // the host's (or NATS's): the host refused it before the actor ran.
            debug!(actor_id = %target.actor_id, error = %e, "request too large for the actor; answering 413");
            return Ok(too_large_for_actor(body_len));
        }
        Ok(Err(ProviderError::BadReply { reason, .. })) => {
            warn!(actor_id = %target.actor_id, error = %reason, "malformed HttpResponse from actor");
            return Ok(plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Malformed response from actor",
            ));
        }
        Ok(Err(e)) => {
            warn!(actor_id = %target.actor_id, error = %e, "actor failed to handle an HTTP request");
            return Ok(plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the actor failed to handle the request",
            ));
        }
        Ok(Ok(response)) => response,
    };
    Ok(to_http(&target.actor_id, response))
}

fn to_http(actor_id: &str, response: wire::Response) -> hyper::Response<Full<Bytes>> {
    let status = u16::try_from(response.status_code)
        .ok()
        .and_then(|code| StatusCode::from_u16(code).ok());
    let Some(status) = status else {
        warn!(
            actor_id,
            status_code = response.status_code,
            "actor answered with an invalid HTTP status code"
        );
        return plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the actor answered with an invalid status code",
        );
    };
    let mut http = hyper::Response::new(Full::new(Bytes::from(response.body)));
    *http.status_mut() = status;
    for (name, value) in response.header {
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            (Ok(name), Ok(value)) => {
                http.headers_mut().append(name, value);
            }
            _ => {
                warn!(actor_id, header = %name, "dropping an invalid response header from the actor")
            }
        }
    }
    http
}

fn plain(status: StatusCode, message: &str) -> hyper::Response<Full<Bytes>> {
    let mut response = hyper::Response::new(Full::new(Bytes::from(format!("{message}\n"))));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// 503 with `Retry-After`: the actor is at its admission limit (nothing ran), so a
/// client may retry the same request after a short pause.
fn busy() -> hyper::Response<Full<Bytes>> {
    let mut response = plain(
        StatusCode::SERVICE_UNAVAILABLE,
        &format!(
            "the actor is at its limit of concurrent requests; retry after {BUSY_RETRY_AFTER_SECS} second(s)"
        ),
    );
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(BUSY_RETRY_AFTER_SECS),
    );
    response
}

/// 408 for a body that did not arrive within the body deadline; the connection is closed
/// (the rest of the body, if it ever comes, must not be read as the next request).
fn body_timed_out(deadline: Duration) -> hyper::Response<Full<Bytes>> {
    let mut response = plain(
        StatusCode::REQUEST_TIMEOUT,
        &format!(
            "the request body was not received within {} ms",
            deadline.as_millis()
        ),
    );
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// 413 for a body within the listener's limit whose invocation the host refused as too
/// large for the actor. The body was read completely, so the connection may stay open.
fn too_large_for_actor(body_len: usize) -> hyper::Response<Full<Bytes>> {
    plain(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!(
            "request body of {body_len} bytes is too large for the actor: the request, headers included, exceeds the largest call its host accepts; send a smaller body"
        ),
    )
}

fn too_large(limit: usize) -> hyper::Response<Full<Bytes>> {
    let mut response = plain(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("request body larger than {limit} bytes"),
    );
    // The unread rest of the body would otherwise be parsed as the next request.
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}
