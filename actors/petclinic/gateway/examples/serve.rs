//! Runs the whole petclinic app natively, with no host: the gateway and the owners, vets,
//! visits and UI actors wired by call alias, each with an in-memory key-value store, behind
//! a minimal single-threaded HTTP/1.1 server. For working on the web app and the API
//! without building wasm or starting a lattice; data is lost on exit.
//!
//! ```text
//! cd actors && cargo run -p petclinic-gateway --example serve -- 127.0.0.1:8080
//! ```
//!
//! The HTTP side is deliberately small: one request per connection, `Content-Length`
//! bodies only (no chunked encoding), bodies over 1 MiB refused with 413.

use std::collections::HashMap;
use std::error::Error;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::rc::Rc;

use petclinic_model::codec::{decode, encode};
use petclinic_model::ops::{OWNERS_ALIAS, UI_ALIAS, VETS_ALIAS, VISITS_ALIAS};
use petclinic_model::testing::TestHost;
use petclinic_model::wire::{Request, Response, ResponseExt};

/// Largest accepted request body (the HTTP server provider's default limit).
const MAX_BODY: usize = 1024 * 1024;

/// The actors' hosts.
struct App {
    gateway: Rc<TestHost>,
    all: [Rc<TestHost>; 4],
}

/// Wires the actors.
fn app() -> App {
    let gateway = Rc::new(TestHost::new());
    let owners = Rc::new(TestHost::new());
    let vets = Rc::new(TestHost::new());
    let visits = Rc::new(TestHost::new());
    let all = [
        gateway.clone(),
        owners.clone(),
        vets.clone(),
        visits.clone(),
    ];
    let to_visits = move |op: &str, p: &[u8]| petclinic_visits::dispatch(&*visits, op, p);
    owners.route(VISITS_ALIAS, to_visits.clone());
    gateway.route(VISITS_ALIAS, to_visits);
    gateway.route(OWNERS_ALIAS, move |op, p| {
        petclinic_owners::dispatch(&*owners, op, p)
    });
    gateway.route(VETS_ALIAS, move |op, p| {
        petclinic_vets::dispatch(&*vets, op, p)
    });
    gateway.route(UI_ALIAS, petclinic_ui::dispatch);
    App { gateway, all }
}

/// Reads one request; `Err` for anything this small server does not speak.
fn read_request(stream: &TcpStream) -> Result<Request, Box<dyn Error>> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Err(format!("bad request line {line:?}").into());
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut header = HashMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = h.split_once(':') {
            header.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
        }
    }
    let length: usize = match header.get("content-length") {
        Some(n) => n.parse()?,
        None => 0,
    };
    if length > MAX_BODY {
        return Err(format!("body of {length} bytes is over {MAX_BODY}").into());
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok(Request {
        method: method.to_string(),
        path: path.to_string(),
        query_string: query.to_string(),
        header,
        body,
    })
}

fn write_response(mut stream: &TcpStream, response: &Response) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {} {}\r\n", response.status_code, response.status);
    for (name, value) in &response.header {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        response.body.len()
    ));
    stream.write_all(head.as_bytes())?;
    stream.write_all(&response.body)?;
    stream.flush()
}

/// One exchange, through the gateway's waPC entry point (so the wire encoding is used).
fn serve_one(gateway: &TestHost, stream: &TcpStream) -> Result<(), Box<dyn Error>> {
    let response = match read_request(stream) {
        Ok(request) => {
            let reply = petclinic_gateway::dispatch(gateway, "HandleRequest", &encode(&request)?)?;
            let response: Response = decode("Response", &reply)?;
            eprintln!(
                "{} {} -> {}",
                request.method, request.path, response.status_code
            );
            response
        }
        Err(e) => Response::new(400, "text/plain", e.to_string().into_bytes()),
    };
    write_response(stream, &response)?;
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".to_string());
    let listener = TcpListener::bind(&address)?;
    eprintln!("petclinic on http://{}/", listener.local_addr()?);
    let app = app();
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                if let Err(e) = serve_one(&app.gateway, &stream) {
                    eprintln!("request failed: {e}");
                }
            }
            Err(e) => eprintln!("accept failed: {e}"),
        }
        // The test hosts record every call; forget them, print the actors' log lines.
        for host in &app.all {
            host.take_calls();
            for line in host.take_logs() {
                eprintln!("{line}");
            }
        }
    }
    Ok(())
}
