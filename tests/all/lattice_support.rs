//! Shared pieces of the lattice tests: hosts on a test NATS server, signed echo actors, a
//! tiny in-process provider, raw control requests and waiting for events.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use nimbus_core::claims::{self, ActorClaimsParams};
use nimbus_core::events::CloudEvent;
use nimbus_core::keys::{KeyKind, KeyPair};
use nimbus_core::link::LinkDefinition;
use nimbus_lattice::{Host, HostBuilder, NatsConfig};
use nimbus_provider_sdk::{ActorCaller, CallContext, Provider, ProviderContext, ProviderError};
use nimbus_runtime::{Runtime, RuntimeConfig};
use nimbus_tests::actor_wasm;
use nimbus_tests::auth::Role;
use nimbus_tests::servers::{NatsServer, creds_for_url};
use tokio::sync::{broadcast, watch};

/// The contract of the test provider.
pub const TEST_CONTRACT: &str = "nimbus:test";

/// One wasm engine per test process, small enough for many hosts.
pub fn runtime() -> Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            Runtime::new(RuntimeConfig {
                max_total_instances: 200,
                max_memory_bytes: 16 * 1024 * 1024,
                ..RuntimeConfig::default()
            })
            .unwrap()
        })
        .clone()
}

/// A fresh cluster seed, shared by the hosts of one test lattice.
pub fn cluster_seed() -> String {
    KeyPair::generate(KeyKind::Cluster).seed().unwrap()
}

/// A builder with the test defaults: shared engine, short timeouts, given cluster seed.
pub fn builder(seed: &str) -> HostBuilder {
    Host::builder()
        .runtime(runtime())
        .cluster_seed(seed)
        .rpc_timeout(Duration::from_secs(2))
}

/// The NATS settings of a host on the test server at `url`: the host role's creds, and
/// the provider role's for the providers it starts (none when the server is open).
pub fn member_nats(url: impl Into<String>) -> NatsConfig {
    member_nats_urls([url.into()])
}

/// [`member_nats`] for the members of a cluster.
pub fn member_nats_urls<I, S>(urls: I) -> NatsConfig
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let mut config = NatsConfig::urls(urls);
    let urls = config.urls.join(",");
    config.credentials_file = creds_for_url(&urls, Role::Host);
    config.provider_credentials_file = creds_for_url(&urls, Role::Provider);
    config
}

/// The key-value provider's link values of the `nats` backend for `bucket` on `nats`:
/// with the key-value role's creds (the lattice's data account) when the server admits
/// members only.
pub fn nats_backend(nats: &NatsServer, bucket: &str) -> HashMap<String, String> {
    let mut values = HashMap::from([
        ("backend".to_string(), "nats".to_string()),
        ("url".to_string(), nats.url()),
        ("bucket".to_string(), bucket.to_string()),
    ]);
    if let Some(creds) = nats.creds(Role::Keyvalue) {
        values.insert("creds".into(), creds.display().to_string());
    }
    values
}

/// A host on the NATS server(s) at `urls`, in lattice `lattice`.
pub async fn nats_host(urls: &[String], lattice: &str, seed: &str) -> Host {
    builder(seed)
        .lattice(lattice)
        .nats(member_nats_urls(urls.iter().cloned()))
        .build()
        .await
        .unwrap()
}

/// A unique lattice name, so tests on one server never see each other.
pub fn lattice_name(test: &str) -> String {
    format!("{test}-{}", &nimbus_core::wire::new_uuid()[..8])
}

/// The echo fixture signed with a fresh module key; `caps: None` writes no `caps` field.
pub struct SignedActor {
    pub bytes: Vec<u8>,
    pub id: String,
}

pub fn echo_actor(caps: Option<&[&str]>, call_alias: Option<&str>) -> SignedActor {
    let account = KeyPair::generate(KeyKind::Account);
    let module = KeyPair::generate(KeyKind::Module);
    let params = ActorClaimsParams {
        name: Some("echo".into()),
        caps: caps.map(|c| c.iter().map(|s| s.to_string()).collect()),
        call_alias: call_alias.map(str::to_string),
        rev: Some(1),
        ..ActorClaimsParams::default()
    };
    let bytes = claims::sign_actor(&actor_wasm("echo"), &params, &account, &module).unwrap();
    SignedActor {
        bytes,
        id: module.public_key(),
    }
}

/// The payload of the echo actor's `Forward` operation.
pub fn forward(binding: &str, namespace: &str, operation: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!("{binding}\n{namespace}\n{operation}\n").into_bytes();
    out.extend_from_slice(body);
    out
}

/// A fresh provider key.
pub fn provider_key() -> String {
    KeyPair::generate(KeyKind::Service).public_key()
}

/// A link from `actor` to `provider` for the test contract.
pub fn test_link(actor: &str, provider: &str) -> LinkDefinition {
    LinkDefinition::new(actor, provider, "default", TEST_CONTRACT, HashMap::new())
}

/// A provider of contract `nimbus:test`: `Echo` answers `provider:<payload>`, `Fail`
/// fails. It records its links and keeps the actor caller it was started with.
#[derive(Default)]
pub struct TestProvider {
    links: watch::Sender<HashMap<String, LinkDefinition>>,
    ctx: Mutex<Option<ProviderContext>>,
    pub shut_down: Mutex<bool>,
}

impl TestProvider {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Waits until the provider holds (or no longer holds) a link for `actor`.
    pub async fn wait_link(&self, actor: &str, present: bool) {
        let mut rx = self.links.subscribe();
        tokio::time::timeout(
            Duration::from_secs(10),
            rx.wait_for(|l| l.contains_key(actor) == present),
        )
        .await
        .unwrap_or_else(|_| panic!("provider never saw link of {actor} present={present}"))
        .unwrap();
    }

    /// Calls an actor the way the provider would (through the host's router).
    pub async fn call_actor(
        &self,
        actor: &str,
        op: &str,
        payload: &[u8],
    ) -> Result<Vec<u8>, ProviderError> {
        let caller: Arc<dyn ActorCaller> = self
            .ctx
            .lock()
            .unwrap()
            .as_ref()
            .expect("provider not started")
            .actors
            .clone();
        caller.call_actor(actor, op, payload.to_vec()).await
    }
}

#[async_trait]
impl Provider for TestProvider {
    fn contract_id(&self) -> &str {
        TEST_CONTRACT
    }

    async fn start(&self, ctx: ProviderContext) -> Result<(), ProviderError> {
        *self.ctx.lock().unwrap() = Some(ctx);
        Ok(())
    }

    async fn put_link(&self, link: &LinkDefinition) -> Result<(), ProviderError> {
        self.links.send_modify(|l| {
            l.insert(link.actor_id.clone(), link.clone());
        });
        Ok(())
    }

    async fn delete_link(&self, actor_id: &str) {
        self.links.send_modify(|l| {
            l.remove(actor_id);
        });
    }

    async fn handle_invocation(
        &self,
        ctx: &CallContext,
        operation: &str,
        payload: Vec<u8>,
    ) -> Result<Vec<u8>, ProviderError> {
        match operation {
            "Echo" => {
                let mut out = b"provider:".to_vec();
                out.extend_from_slice(&payload);
                Ok(out)
            }
            "Who" => Ok(ctx.actor_id.clone().into_bytes()),
            _ => Err(ProviderError::UnknownOperation {
                contract_id: TEST_CONTRACT.into(),
                operation: operation.into(),
            }),
        }
    }

    async fn shutdown(&self) {
        *self.shut_down.lock().unwrap() = true;
    }
}

/// Waits for the first event named `name` matching `pred`.
pub async fn wait_event(
    rx: &mut broadcast::Receiver<CloudEvent>,
    name: &str,
    pred: impl Fn(&CloudEvent) -> bool,
) -> CloudEvent {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match rx.recv().await {
                Ok(e) if e.name() == Some(name) && pred(&e) => return e,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(e) => panic!("event channel closed: {e}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no `{name}` event within 10 s"))
}

/// Waits for the first CloudEvent named `name` on a raw NATS subscription.
pub async fn wait_nats_event(
    sub: &mut async_nats::Subscriber,
    name: &str,
    pred: impl Fn(&CloudEvent) -> bool,
) -> CloudEvent {
    tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(msg) = sub.next().await {
            let event = CloudEvent::from_json(&msg.payload).unwrap();
            if event.name() == Some(name) && pred(&event) {
                return event;
            }
        }
        panic!("event subscription ended");
    })
    .await
    .unwrap_or_else(|_| panic!("no `{name}` event on NATS within 10 s"))
}

/// A JSON request on a control subject, answered by one host.
pub async fn ctl(client: &async_nats::Client, subject: String, body: &[u8]) -> serde_json::Value {
    let reply = tokio::time::timeout(
        Duration::from_secs(5),
        client.request(subject.clone(), body.to_vec().into()),
    )
    .await
    .unwrap_or_else(|_| panic!("no answer on {subject}"))
    .unwrap_or_else(|e| panic!("request on {subject} failed: {e}"));
    serde_json::from_slice(&reply.payload).unwrap()
}

/// How long a scatter/gather request may take to collect the replies it expects.
const GATHER_DEADLINE: Duration = Duration::from_secs(15);
/// One round of a scatter/gather request: sent again after this if replies are missing
/// (a host whose subscription was not yet at the server when the request went out).
const GATHER_ROUND: Duration = Duration::from_secs(3);
/// Once the expected replies are in, how long to go on listening for replies that
/// should not come (a host bidding that should not); their absence cannot be awaited
/// forever, but this starts only once every expected host has answered.
const GATHER_SETTLE: Duration = Duration::from_millis(300);

/// A scatter/gather control request expecting replies from `expected` hosts: sends it
/// (again each round, if replies are missing) until a round collects `expected` replies,
/// then listens a little longer and returns every reply of that round, extras included, so
/// the caller can assert the exact count. Panics with the replies seen if `expected` do
/// not arrive within 15 s.
pub async fn ctl_gather(
    client: &async_nats::Client,
    subject: String,
    body: &[u8],
    expected: usize,
) -> Vec<serde_json::Value> {
    let deadline = tokio::time::Instant::now() + GATHER_DEADLINE;
    loop {
        let inbox = client.new_inbox();
        let mut sub = client.subscribe(inbox.clone()).await.unwrap();
        client
            .publish_with_reply(subject.clone(), inbox, body.to_vec().into())
            .await
            .unwrap();
        let mut out: Vec<serde_json::Value> = Vec::new();
        let round_end = (tokio::time::Instant::now() + GATHER_ROUND).min(deadline);
        while out.len() < expected {
            match tokio::time::timeout_at(round_end, sub.next()).await {
                Ok(Some(msg)) => out.push(serde_json::from_slice(&msg.payload).unwrap()),
                Ok(None) | Err(_) => break,
            }
        }
        if out.len() >= expected {
            while let Ok(Some(msg)) = tokio::time::timeout(GATHER_SETTLE, sub.next()).await {
                out.push(serde_json::from_slice(&msg.payload).unwrap());
            }
            return out;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} of {expected} replies on {subject} within {GATHER_DEADLINE:?}: {out:?}",
            out.len()
        );
    }
}

/// The pids a provider wrapper script recorded in `dir/pids` (one `echo $$` per start),
/// in start order; complete lines only.
pub fn started_pids(dir: &Path) -> Vec<u32> {
    std::fs::read_to_string(dir.join("pids"))
        .unwrap_or_default()
        .split_inclusive('\n')
        .filter(|line| line.ends_with('\n'))
        .map(|line| line.trim().parse().unwrap())
        .collect()
}

/// Waits up to `within` until the wrapper has recorded `n` starts; returns the pids.
pub async fn wait_for_starts(dir: &Path, n: usize, within: Duration) -> Vec<u32> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let pids = started_pids(dir);
        if pids.len() >= n {
            return pids;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the provider process was started {} times, not {n}, within {within:?}",
            pids.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
