//! A small blocking HTTP/1.1 client for tests against real HTTP servers (the HTTP server
//! provider and the apps behind it): one request per connection (`Connection: close`),
//! `Content-Length` and chunked response bodies, and bodies written on their own thread so
//! a server that answers before reading the whole body (413) is still heard.
//!
//! Blocking on purpose: call it from a plain thread or `tokio::task::spawn_blocking`, never
//! from an async task of a runtime that also runs the server.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// How long one request may take, connect to last byte.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// A response as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Headers in order, names as sent.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl Response {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// `host:port` of a base URL such as `http://127.0.0.1:8080/`.
fn authority(base: &str) -> &str {
    let rest = base.strip_prefix("http://").unwrap_or(base);
    rest.split('/').next().unwrap_or(rest)
}

/// Sends one request to the server at `base` (`http://host:port`); `target` is the path and
/// query. `Host`, `Connection: close` and, with a body, `Content-Length` are added unless
/// `headers` has them (give `Transfer-Encoding` to send a body as it is, e.g. pre-chunked).
pub fn send(
    base: &str,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> io::Result<Response> {
    let authority = authority(base);
    let addr = authority
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::other(format!("{authority} resolves to nothing")))?;
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;

    let has = |name: &str| headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    let mut head = format!("{method} {target} HTTP/1.1\r\n");
    if !has("host") {
        head.push_str(&format!("Host: {authority}\r\n"));
    }
    if !has("connection") {
        head.push_str("Connection: close\r\n");
    }
    if let Some(body) = body
        && !has("content-length")
        && !has("transfer-encoding")
    {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;

    let started = Instant::now();
    let mut raw = Vec::new();
    let read = std::thread::scope(|scope| {
        if let Some(body) = body {
            let mut writer = stream.try_clone()?;
            // A server may answer (413) and close before taking the whole body; the write
            // error that follows is expected then, and the answer is what counts.
            scope.spawn(move || {
                let _ = writer.write_all(body).and_then(|()| writer.flush());
            });
        }
        read_until_closed(&mut stream, &mut raw)
    });
    match read {
        Ok(()) => {}
        // A reset after the whole answer arrived (the server closed with body bytes unread).
        Err(e) if e.kind() == io::ErrorKind::ConnectionReset && complete(&raw) => {}
        Err(e) => {
            return Err(io::Error::new(
                e.kind(),
                format!(
                    "{method} {target}: {e} after {:?} with {} bytes read",
                    started.elapsed(),
                    raw.len()
                ),
            ));
        }
    }
    parse(&raw)
}

fn read_until_closed(stream: &mut TcpStream, raw: &mut Vec<u8>) -> io::Result<()> {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Whether `raw` holds a whole response (head and, by its framing, the body).
fn complete(raw: &[u8]) -> bool {
    parse(raw).is_ok()
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// Parses one response from the bytes of a closed connection.
fn parse(raw: &[u8]) -> io::Result<Response> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| invalid(format!("no complete response head in {} bytes", raw.len())))?;
    let head = std::str::from_utf8(&raw[..end])
        .map_err(|e| invalid(format!("response head is not UTF-8: {e}")))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(invalid(format!(
            "not an HTTP/1 status line: {status_line:?}"
        )));
    }
    let status = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| invalid(format!("bad status line: {status_line:?}")))?;
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| invalid(format!("bad header line: {line:?}")))?;
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
    let mut response = Response {
        status,
        headers,
        body: Vec::new(),
    };
    let rest = &raw[end + 4..];
    let chunked = response
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    response.body = if chunked {
        dechunk(rest)?
    } else if let Some(len) = response.header("content-length") {
        let len: usize = len
            .parse()
            .map_err(|_| invalid(format!("bad Content-Length {len:?}")))?;
        if rest.len() < len {
            return Err(invalid(format!(
                "body cut short: {} of {len} bytes",
                rest.len()
            )));
        }
        rest[..len].to_vec()
    } else {
        rest.to_vec()
    };
    Ok(response)
}

fn dechunk(mut rest: &[u8]) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| invalid("chunk size line cut short".into()))?;
        let size_text = std::str::from_utf8(&rest[..line_end]).unwrap_or_default();
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| invalid(format!("bad chunk size {size_text:?}")))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        if rest.len() < size + 2 {
            return Err(invalid("chunk cut short".into()));
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

/// `GET target` with no extra headers.
pub fn get(base: &str, target: &str) -> io::Result<Response> {
    send(base, "GET", target, &[], None)
}

/// Polls `GET target` until `ready` accepts the response or `timeout` passes; returns the
/// accepted response, or panics with the last answer or error seen.
pub fn wait_for(
    base: &str,
    target: &str,
    timeout: Duration,
    ready: impl Fn(&Response) -> bool,
) -> Response {
    let deadline = Instant::now() + timeout;
    loop {
        let last = match get(base, target) {
            Ok(r) if ready(&r) => return r,
            Ok(r) => format!("{} {}", r.status, r.text()),
            Err(e) => e.to_string(),
        };
        assert!(
            Instant::now() < deadline,
            "GET {base}{target} not ready within {timeout:?}; last answer: {last}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_content_length_and_chunked_bodies() {
        let r =
            parse(b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\nX-A: b\r\n\r\nhiEXTRA").unwrap();
        assert_eq!((r.status, r.body.as_slice()), (201, &b"hi"[..]));
        assert_eq!(r.header("x-a"), Some("b"));
        let r = parse(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(r.body, b"abcde");
        assert!(parse(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab").is_err());
        assert!(parse(b"garbage\r\n\r\n").is_err());
    }
}
