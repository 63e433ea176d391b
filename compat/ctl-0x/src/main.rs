//! `ctl-0x-check`: reads a live lattice the way a published 0.x tool does, with
//! `wasmcloud-control-interface` 0.28.1 (the version of our protocol reference), and
//! reports what it decoded.
//!
//! Our hosts promise that a 0.x control client (and the old `wash` built on it) can drive
//! them. Unit tests compare our JSON with our own types; only the published crate's own
//! serde types and its own reading code show what a 0.x client really accepts: its
//! control replies, its CloudEvents type, and its direct reads of the `LATTICEDATA_{lattice}`
//! KV bucket (`CLAIMS_*` as a map of strings, `LINKDEF_*` as its `LinkDefinition`).
//!
//! ```text
//! ctl-0x-check --nats URL --lattice NAME [--expect-hosts N] [--expect-events a,b,...]
//!              [--start-actor HOST_ID:REF]... [--timeout-secs N]
//! ```
//!
//! Steps: subscribe to `wasmbus.evt.{lattice}` (the client's own events receiver and a raw
//! subscription), print `ready` on stderr, start each `--start-actor` with the 0.x client,
//! list hosts until `--expect-hosts` answer, read every host's inventory, read claims and
//! links both from the KV bucket (the client built with the bucket present) and through
//! `get.claims` / `get.links` (a client without the bucket, the legacy path), stop the
//! actors it started, and wait until every `--expect-events` type has been seen.
//!
//! It prints one JSON document on stdout and exits 1 if anything failed to decode (the
//! errors are in the document's `errors` and on stderr), 2 on bad arguments. Where the
//! client swallows a decode error (`get_hosts` and the events receiver log and drop what
//! they cannot read), the same bytes are also decoded with the crate's own
//! `json_deserialize` and types, so the error text is the one a 0.x client hits.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use cloudevents::{AttributesReader as _, Data, Event};
use futures::{StreamExt as _, TryStreamExt as _};
use serde_json::{Value, json};
use tokio::time::Instant;
use wasmcloud_control_interface::{
    Client, ClientBuilder, CtlOperationAck, GetClaimsResponse, Host, LinkDefinition,
    LinkDefinitionList, json_deserialize,
};

/// Prefix of the lattice metadata bucket, as the 0.28 client's kv.rs names it.
const BUCKET_PREFIX: &str = "LATTICEDATA_";
/// Key prefixes in that bucket, as kv.rs reads them.
const CLAIMS_PREFIX: &str = "CLAIMS_";
const LINKDEF_PREFIX: &str = "LINKDEF_";
/// How long one request or one scatter/gather round waits (the client's defaults are 2 s
/// and 5 s; a test lattice on loopback answers within milliseconds).
const RPC_TIMEOUT: Duration = Duration::from_secs(2);
const AUCTION_TIMEOUT: Duration = Duration::from_millis(500);

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The command line.
#[derive(Debug)]
struct Args {
    nats: String,
    lattice: String,
    expect_hosts: usize,
    expect_events: BTreeSet<String>,
    start_actors: Vec<(String, String)>,
    timeout: Duration,
}

const USAGE: &str = "usage: ctl-0x-check --nats URL --lattice NAME [--expect-hosts N] \
                     [--expect-events a,b,...] [--start-actor HOST_ID:REF]... [--timeout-secs N]";

fn parse_args(mut argv: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut nats = None;
    let mut lattice = None;
    let mut expect_hosts = 1;
    let mut expect_events = BTreeSet::new();
    let mut start_actors = Vec::new();
    let mut timeout = Duration::from_secs(30);
    while let Some(flag) = argv.next() {
        let mut value = || argv.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--nats" => nats = Some(value()?),
            "--lattice" => lattice = Some(value()?),
            "--expect-hosts" => {
                expect_hosts = value()?
                    .parse()
                    .map_err(|e| format!("--expect-hosts: {e}"))?;
            }
            "--expect-events" => expect_events.extend(
                value()?
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
            ),
            "--start-actor" => {
                let v = value()?;
                let (host, actor_ref) = v
                    .split_once(':')
                    .ok_or_else(|| format!("--start-actor wants HOST_ID:REF, got `{v}`"))?;
                start_actors.push((host.to_string(), actor_ref.to_string()));
            }
            "--timeout-secs" => {
                let secs: u64 = value()?
                    .parse()
                    .map_err(|e| format!("--timeout-secs: {e}"))?;
                timeout = Duration::from_secs(secs);
            }
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        }
    }
    Ok(Args {
        nats: nats.ok_or_else(|| format!("--nats is required\n{USAGE}"))?,
        lattice: lattice.ok_or_else(|| format!("--lattice is required\n{USAGE}"))?,
        expect_hosts,
        expect_events,
        start_actors,
        timeout,
    })
}

/// What the run found, printed as the JSON document.
#[derive(Default)]
struct Report {
    kv_bucket: bool,
    hosts: Vec<Value>,
    inventories: Vec<Value>,
    claims: BTreeMap<&'static str, Vec<HashMap<String, String>>>,
    links: BTreeMap<&'static str, Vec<Value>>,
    acks: Vec<Value>,
    events: Vec<Value>,
    event_ids: BTreeSet<String>,
    events_via_receiver: usize,
    errors: Vec<String>,
}

impl Report {
    fn fail(&mut self, what: impl std::fmt::Display) {
        let line = what.to_string();
        eprintln!("ctl-0x-check: {line}");
        self.errors.push(line);
    }

    /// Event types seen so far, short form (`actor_started`).
    fn event_names(&self) -> BTreeSet<String> {
        self.events
            .iter()
            .filter_map(|e| e["type"].as_str())
            .map(|t| t.strip_prefix("com.wasmcloud.lattice.").unwrap_or(t))
            .map(str::to_string)
            .collect()
    }

    fn to_json(&self, lattice: &str) -> Value {
        json!({
            "lattice": lattice,
            "kv_bucket": self.kv_bucket,
            "hosts": self.hosts,
            "inventories": self.inventories,
            "claims": self.claims,
            "links": self.links,
            "acks": self.acks,
            "events": self.events,
            "event_types": self.event_names(),
            "events_via_receiver": self.events_via_receiver,
            "errors": self.errors,
        })
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let mut report = Report::default();
    if let Err(e) = run(&args, &mut report).await {
        report.fail(e);
    }
    let doc = report.to_json(&args.lattice);
    let text =
        serde_json::to_string_pretty(&doc).unwrap_or_else(|e| format!("{{\"errors\":[\"{e}\"]}}"));
    println!("{text}");
    if report.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Does the steps of the crate comment; an `Err` is a failure that stops the run (no
/// connection, no subscription), decode failures are recorded in `report` and the run
/// goes on so the document shows everything that could be read.
async fn run(args: &Args, report: &mut Report) -> Result<(), BoxError> {
    let deadline = Instant::now() + args.timeout;
    let nc = async_nats::connect(args.nats.as_str())
        .await
        .map_err(|e| format!("cannot connect to {}: {e}", args.nats))?;

    // The client as a tool builds it: it looks for the bucket and then reads claims and
    // links from it directly.
    let client = ClientBuilder::new(nc.clone())
        .lattice_prefix(args.lattice.clone())
        .rpc_timeout(RPC_TIMEOUT)
        .auction_timeout(AUCTION_TIMEOUT)
        .build()
        .await?;
    // A client that never looks for the bucket: `get.claims` / `get.links` on the control
    // interface, the path of tools that run without JetStream.
    #[allow(deprecated)]
    let legacy = Client::new(
        nc.clone(),
        Some(args.lattice.clone()),
        RPC_TIMEOUT,
        AUCTION_TIMEOUT,
    );
    let mut receiver = client.events_receiver().await?;
    // The receiver drops what it cannot decode; this subscription sees the same messages
    // and reports why.
    let mut raw_events = nc
        .subscribe(format!("wasmbus.evt.{}", args.lattice))
        .await?;
    nc.flush().await?;
    eprintln!("ready");
    std::io::stderr().flush()?;

    let bucket = format!("{BUCKET_PREFIX}{}", args.lattice);
    let store = match async_nats::jetstream::new(nc.clone())
        .get_key_value(bucket.as_str())
        .await
    {
        Ok(store) => {
            report.kv_bucket = true;
            Some(store)
        }
        Err(e) => {
            report.fail(format!(
                "bucket {bucket} is not readable by async-nats 0.31 (the client falls back to the legacy subjects): {e}"
            ));
            None
        }
    };

    for (host, actor_ref) in &args.start_actors {
        let ack = client.start_actor(host, actor_ref, 1, None).await;
        record_ack(report, "start_actor", host, actor_ref, ack);
    }

    hosts(&client, &nc, args, deadline, report).await;
    let host_ids: Vec<String> = report
        .hosts
        .iter()
        .filter_map(|h| h["id"].as_str().map(str::to_string))
        .collect();
    for host in &host_ids {
        match client.get_host_inventory(host).await {
            Ok(inv) => report.inventories.push(json!({
                "host_id": inv.host_id,
                "issuer": inv.issuer,
                "friendly_name": inv.friendly_name,
                "labels": inv.labels,
                "actors": inv.actors.iter().map(|a| json!({
                    "id": a.id,
                    "name": a.name,
                    "image_ref": a.image_ref,
                    "instances": a.instances.len(),
                    "revisions": a.instances.iter().map(|i| i.revision).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
                "providers": inv.providers.iter().map(|p| json!({
                    "id": p.id,
                    "contract_id": p.contract_id,
                    "link_name": p.link_name,
                    "name": p.name,
                })).collect::<Vec<_>>(),
            })),
            Err(e) => report.fail(format!("get_host_inventory({host}): {e}")),
        }
    }

    claims_and_links(&client, &legacy, store.as_ref(), report).await;

    // Stop what we started: the actor's key comes from its actor_started event.
    for (host, actor_ref) in &args.start_actors {
        wait_events(&mut raw_events, report, deadline, |r| {
            started_key(r, actor_ref).is_some()
        })
        .await;
        match started_key(report, actor_ref) {
            Some(key) => {
                let ack = client.stop_actor(host, &key, 1, None).await;
                record_ack(report, "stop_actor", host, &key, ack);
            }
            None => report.fail(format!(
                "no actor_started event for {actor_ref} before the deadline; cannot stop it"
            )),
        }
    }

    let expected = &args.expect_events;
    let all_seen = wait_events(&mut raw_events, report, deadline, |r| {
        expected.is_subset(&r.event_names())
    })
    .await;
    if !all_seen {
        let missing: Vec<_> = expected
            .difference(&report.event_names())
            .cloned()
            .collect();
        report.fail(format!(
            "events not seen within {:?}: {}",
            args.timeout,
            missing.join(", ")
        ));
    }

    // Every event that decoded on the raw subscription must also have come through the
    // client's own receiver.
    let mut via_receiver = BTreeSet::new();
    let drain_until = Instant::now() + Duration::from_secs(1);
    while !report.event_ids.is_subset(&via_receiver) {
        match tokio::time::timeout_at(drain_until, receiver.recv()).await {
            Ok(Some(event)) => {
                via_receiver.insert(event.id().to_string());
            }
            Ok(None) | Err(_) => break,
        }
    }
    report.events_via_receiver = report.event_ids.intersection(&via_receiver).count();
    let dropped: Vec<_> = report
        .event_ids
        .difference(&via_receiver)
        .cloned()
        .collect();
    if !dropped.is_empty() {
        report.fail(format!(
            "the client's events receiver did not deliver events {}",
            dropped.join(", ")
        ));
    }
    Ok(())
}

fn record_ack(
    report: &mut Report,
    op: &str,
    host: &str,
    target: &str,
    ack: Result<CtlOperationAck, BoxError>,
) {
    match ack {
        Ok(ack) => {
            if !ack.accepted {
                report.fail(format!("{op} {target} on {host} refused: {}", ack.error));
            }
            report.acks.push(json!({
                "op": op,
                "host_id": host,
                "target": target,
                "accepted": ack.accepted,
                "error": ack.error,
            }));
        }
        Err(e) => report.fail(format!("{op} {target} on {host}: {e}")),
    }
}

/// The public key in the `actor_started` event of the actor started from `actor_ref`.
fn started_key(report: &Report, actor_ref: &str) -> Option<String> {
    report.events.iter().find_map(|e| {
        let started = e["type"] == "com.wasmcloud.lattice.actor_started"
            && e["data"]["image_ref"]
                .as_str()
                .is_some_and(|r| same_ref(r, actor_ref));
        started
            .then(|| e["data"]["public_key"].as_str().map(str::to_string))
            .flatten()
    })
}

/// Whether two actor references name the same file (`file://` is optional).
fn same_ref(a: &str, b: &str) -> bool {
    let path = |r: &str| r.strip_prefix("file://").unwrap_or(r).to_string();
    path(a) == path(b)
}

/// `get_hosts` until `--expect-hosts` answer (or the deadline), then one raw `ping.hosts`
/// round decoded with the crate's `Host`, because `get_hosts` drops replies it cannot
/// decode without saying so.
async fn hosts(
    client: &Client,
    nc: &async_nats::Client,
    args: &Args,
    deadline: Instant,
    report: &mut Report,
) {
    let mut found = Vec::new();
    loop {
        match client.get_hosts().await {
            Ok(hosts) => found = hosts,
            Err(e) => report.fail(format!("get_hosts: {e}")),
        }
        if found.len() >= args.expect_hosts || Instant::now() >= deadline {
            break;
        }
    }
    found.sort_by(|a, b| a.id.cmp(&b.id));
    report.hosts = found
        .iter()
        .map(|h| {
            json!({
                "id": h.id,
                "lattice_prefix": h.lattice_prefix,
                "labels": h.labels,
                "uptime_seconds": h.uptime_seconds,
                "version": h.version,
                "cluster_issuers": h.cluster_issuers,
            })
        })
        .collect();
    if found.len() < args.expect_hosts {
        report.fail(format!(
            "get_hosts found {} host(s), expected {}",
            found.len(),
            args.expect_hosts
        ));
    }
    if let Err(e) = raw_ping(nc, &args.lattice, report).await {
        report.fail(format!("ping.hosts: {e}"));
    }
}

async fn raw_ping(
    nc: &async_nats::Client,
    lattice: &str,
    report: &mut Report,
) -> Result<(), BoxError> {
    let inbox = nc.new_inbox();
    let mut sub = nc.subscribe(inbox.clone()).await?;
    nc.publish_with_reply(
        format!("wasmbus.ctl.{lattice}.ping.hosts"),
        inbox,
        Vec::new().into(),
    )
    .await?;
    nc.flush().await?;
    let until = Instant::now() + AUCTION_TIMEOUT;
    while let Ok(Some(msg)) = tokio::time::timeout_at(until, sub.next()).await {
        if let Err(e) = json_deserialize::<Host>(&msg.payload) {
            report.fail(format!(
                "a ping.hosts reply does not decode as the 0.x Host: {e}: {}",
                String::from_utf8_lossy(&msg.payload)
            ));
        }
    }
    Ok(())
}

/// Claims and links through the client (KV bucket and legacy subjects), and each bucket
/// record decoded on its own the way kv.rs decodes it, to name the key that fails.
async fn claims_and_links(
    client: &Client,
    legacy: &Client,
    store: Option<&async_nats::jetstream::kv::Store>,
    report: &mut Report,
) {
    record_claims(report, "kv", client.get_claims().await);
    record_claims(report, "ctl", legacy.get_claims().await);
    record_links(report, "kv", client.query_links().await);
    record_links(report, "ctl", legacy.query_links().await);

    if let Some(store) = store
        && let Err(e) = check_records(store, report).await
    {
        report.fail(format!("reading the bucket: {e}"));
    }
}

fn record_claims(report: &mut Report, via: &'static str, r: Result<GetClaimsResponse, BoxError>) {
    match r {
        Ok(r) => {
            report.claims.insert(via, r.claims);
        }
        Err(e) => report.fail(format!("get_claims ({via}): {e}")),
    }
}

fn record_links(report: &mut Report, via: &'static str, r: Result<LinkDefinitionList, BoxError>) {
    match r {
        Ok(r) => {
            let list = r.links.iter().map(link_json).collect();
            report.links.insert(via, list);
        }
        Err(e) => report.fail(format!("query_links ({via}): {e}")),
    }
}

fn link_json(l: &LinkDefinition) -> Value {
    json!({
        "actor_id": l.actor_id,
        "provider_id": l.provider_id,
        "contract_id": l.contract_id,
        "link_name": l.link_name,
        "values": l.values,
    })
}

async fn check_records(
    store: &async_nats::jetstream::kv::Store,
    report: &mut Report,
) -> Result<(), BoxError> {
    let keys: Vec<String> = store.keys().await?.try_collect().await?;
    for key in keys {
        let Some(value) = store.get(key.as_str()).await? else {
            continue;
        };
        let decoded = if key.starts_with(CLAIMS_PREFIX) {
            serde_json::from_slice::<HashMap<String, String>>(&value).map(drop)
        } else if key.starts_with(LINKDEF_PREFIX) {
            serde_json::from_slice::<LinkDefinition>(&value).map(drop)
        } else {
            Ok(())
        };
        if let Err(e) = decoded {
            report.fail(format!(
                "bucket record {key} does not decode as 0.x reads it: {e}: {}",
                String::from_utf8_lossy(&value)
            ));
        }
    }
    Ok(())
}

/// Reads events into `report` until `done(report)` or the deadline; true if done.
async fn wait_events(
    sub: &mut async_nats::Subscriber,
    report: &mut Report,
    deadline: Instant,
    done: impl Fn(&Report) -> bool,
) -> bool {
    loop {
        if done(report) {
            return true;
        }
        match tokio::time::timeout_at(deadline, sub.next()).await {
            Ok(Some(msg)) => record_event(report, &msg.payload),
            Ok(None) | Err(_) => return done(report),
        }
    }
}

/// Decodes one message of the events subject as the client's receiver does.
fn record_event(report: &mut Report, payload: &[u8]) {
    let event: Event = match json_deserialize(payload) {
        Ok(event) => event,
        Err(e) => {
            report.fail(format!(
                "an event is not a 0.x CloudEvent: {e}: {}",
                String::from_utf8_lossy(payload)
            ));
            return;
        }
    };
    let data = match event.data() {
        Some(Data::Json(v)) => v.clone(),
        other => {
            report.fail(format!(
                "event {} ({}) has no JSON data: {other:?}",
                event.id(),
                event.ty()
            ));
            Value::Null
        }
    };
    report.event_ids.insert(event.id().to_string());
    report.events.push(json!({
        "type": event.ty(),
        "source": event.source().to_string(),
        "id": event.id(),
        "time": event.time().map(|t| t.to_rfc3339()),
        "data": data,
    }));
}
