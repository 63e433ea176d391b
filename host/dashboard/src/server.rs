//! The dashboard's HTTP server (hyper, HTTP/1.1): the page and its assets, the JSON
//! snapshot at `/api/snapshot` and the live stream at `/api/stream` (server-sent events:
//! one `snapshot` event with the whole view after every round).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::Frame;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::watch;

type Body = BoxBody<Bytes, Infallible>;

/// The latest view as JSON (`None` until the first round is done).
pub(crate) type Latest = watch::Receiver<Option<Arc<str>>>;

const INDEX_HTML: &str = include_str!("../assets/index.html");
const STYLE_CSS: &str = include_str!("../assets/style.css");
const APP_JS: &str = include_str!("../assets/app.js");

/// How long `/api/snapshot` waits for the first round before answering 503.
const FIRST_ROUND_WAIT: Duration = Duration::from_secs(10);

/// Accepts connections on `listener` until the task is aborted.
pub(crate) async fn run(listener: tokio::net::TcpListener, latest: Latest) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::debug!(error = %e, "accepting a dashboard connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let latest = latest.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                let latest = latest.clone();
                async move { Ok::<_, Infallible>(respond(&req, latest).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn full(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(Full::new(body.into()).boxed());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn respond(req: &Request<hyper::body::Incoming>, latest: Latest) -> Response<Body> {
    let path = req.uri().path();
    let known = matches!(
        path,
        "/" | "/index.html" | "/style.css" | "/app.js" | "/api/snapshot" | "/api/stream"
    );
    if !known {
        return full(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            format!(
                "no page at {path}; the dashboard is at /, its data at /api/snapshot and /api/stream\n"
            ),
        );
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return full(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "the dashboard is read-only: use GET\n",
        );
    }
    match path {
        "/" | "/index.html" => full(StatusCode::OK, "text/html; charset=utf-8", INDEX_HTML),
        "/style.css" => full(StatusCode::OK, "text/css; charset=utf-8", STYLE_CSS),
        "/app.js" => full(StatusCode::OK, "text/javascript; charset=utf-8", APP_JS),
        "/api/snapshot" => snapshot(latest).await,
        _ => stream(latest),
    }
}

async fn snapshot(mut latest: Latest) -> Response<Body> {
    let ready = tokio::time::timeout(FIRST_ROUND_WAIT, latest.wait_for(Option::is_some)).await;
    let json = match ready {
        Ok(Ok(view)) => view.clone(),
        _ => None,
    };
    match json {
        Some(json) => full(
            StatusCode::OK,
            "application/json",
            Bytes::copy_from_slice(json.as_bytes()),
        ),
        None => full(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain; charset=utf-8",
            "the dashboard has no data yet; retry in a moment\n",
        ),
    }
}

/// `text/event-stream`: the current view at once (when there is one), then every new
/// one; ends when the dashboard stops.
fn stream(mut latest: Latest) -> Response<Body> {
    latest.mark_changed();
    let events = futures_util::stream::unfold(latest, |mut latest| async move {
        loop {
            latest.changed().await.ok()?;
            let view = latest.borrow_and_update().clone();
            if let Some(json) = view {
                let frame = format!("event: snapshot\ndata: {json}\n\n");
                return Some((Ok::<_, Infallible>(Frame::data(Bytes::from(frame))), latest));
            }
        }
    });
    let mut response = Response::new(BodyExt::boxed(StreamBody::new(events)));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
