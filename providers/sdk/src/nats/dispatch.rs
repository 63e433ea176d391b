//! What the runner does with one message, with no NATS in sight: decode and check an
//! invocation and hand it to the provider, keep the link table, decide on a shutdown
//! request. The serving loop in the parent module only moves bytes; this part is unit
//! tested directly.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use nimbus_core::encoding::{self, EncodingError};
use nimbus_core::keys::TrustedIssuers;
#[cfg(test)]
use nimbus_core::wire::InvocationResponse;
use nimbus_core::wire::{HostData, Invocation, ShutdownRequest};
use nimbus_rpc::{Handler, InvocationError, Limits};
use nimbus_telemetry::{Span, SpanKind};
use tracing::{debug, info, warn};

use crate::{CallContext, LinkDefinition, Provider};

/// What happened to a link put.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LinkPut {
    /// A new link for this actor.
    Added,
    /// The actor was linked with other values; the provider took the new ones.
    Updated,
    /// The actor was already linked with the same values (several hosts publish the same
    /// put); the provider was not called.
    Unchanged,
    /// The link names another provider or link name; ignored.
    NotOurs,
    /// The provider refused the link; the actor stays unlinked (or keeps its old values).
    Rejected,
}

/// The provider plus the state the runner keeps around it.
pub(crate) struct Dispatcher {
    provider: Arc<dyn Provider>,
    provider_key: String,
    link_name: String,
    host_id: String,
    /// What every invocation must pass before it reaches the provider (the lattice's
    /// protocol checks, `nimbus-rpc`).
    limits: Limits,
    /// One link per actor id, as the provider accepted it.
    links: RwLock<HashMap<String, LinkDefinition>>,
    /// How long after an invocation is taken its caller gives up (see
    /// [`crate::invocation_deadline`]).
    deadline_after: Duration,
}

impl Dispatcher {
    /// A dispatcher for `provider` configured from its host data (no links yet).
    pub(crate) fn new(provider: Arc<dyn Provider>, host_data: &HostData) -> Self {
        let listed: Vec<&str> = host_data
            .cluster_issuers
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .collect();
        let mut cluster_issuers = TrustedIssuers::default();
        for key in &listed {
            // An unusable key is trusted by nobody; signing stays required.
            if let Err(e) = cluster_issuers.insert(key) {
                warn!(%key, error = %e, "ignoring an invalid cluster issuer in the host data");
            }
        }
        // A host that passes no cluster issuers has invocation signing off.
        let trusted = (!listed.is_empty()).then_some(cluster_issuers);
        let limits = Limits {
            // The host checked the size before sending; NATS's own limit applies.
            max_payload: usize::MAX,
            trusted,
            receiver: format!(
                "provider {} (link name {}) of host {}",
                host_data.provider_key, host_data.link_name, host_data.host_id
            ),
            lattice: host_data.lattice_rpc_prefix.clone(),
            // One guard per provider process and link name.
            replay: Default::default(),
        };
        let rpc_timeout = host_data
            .default_rpc_timeout_ms
            .filter(|ms| *ms > 0)
            .map_or(super::DEFAULT_RPC_TIMEOUT, Duration::from_millis);
        Dispatcher {
            provider,
            provider_key: host_data.provider_key.clone(),
            link_name: host_data.link_name.clone(),
            host_id: host_data.host_id.clone(),
            limits,
            links: RwLock::new(HashMap::new()),
            deadline_after: super::deadline_after(rpc_timeout),
        }
    }

    /// The checks every invocation passes before [`Handler::handle`].
    pub(crate) fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Answers one RPC request body as the served subject does: never panics, always a
    /// response (an error response for anything that is not a valid, permitted
    /// invocation).
    #[cfg(test)]
    pub(crate) async fn invoke(&self, body: &[u8]) -> InvocationResponse {
        nimbus_rpc::respond(self, &self.limits, body).await
    }

    fn is_linked(&self, actor_id: &str) -> bool {
        self.links
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(actor_id)
    }

    /// Applies a link put: de-duplicated per actor, handed to the provider otherwise.
    /// Callers apply puts and deletes one at a time, in arrival order.
    pub(crate) async fn put_link(&self, link: LinkDefinition) -> LinkPut {
        if (!link.provider_id.is_empty() && link.provider_id != self.provider_key)
            || (!link.link_name.is_empty() && link.link_name != self.link_name)
        {
            warn!(
                actor_id = %link.actor_id,
                provider_id = %link.provider_id,
                link_name = %link.link_name,
                "ignored a link definition for another provider or link name"
            );
            return LinkPut::NotOurs;
        }
        let existing = self
            .links
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&link.actor_id)
            .cloned();
        if existing.as_ref().is_some_and(|old| {
            old.values == link.values
                && old.contract_id == link.contract_id
                && old.provider_id == link.provider_id
        }) {
            debug!(actor_id = %link.actor_id, "link already in place; duplicate put ignored");
            return LinkPut::Unchanged;
        }
        match self.provider.put_link(&link).await {
            Ok(()) => {
                info!(actor_id = %link.actor_id, contract_id = %link.contract_id, "link put");
                self.links
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(link.actor_id.clone(), link);
                if existing.is_some() {
                    LinkPut::Updated
                } else {
                    LinkPut::Added
                }
            }
            Err(e) => {
                warn!(actor_id = %link.actor_id, error = %e, "provider rejected a link");
                LinkPut::Rejected
            }
        }
    }

    /// Applies a link delete; returns whether the actor was linked.
    pub(crate) async fn delete_link(&self, link: &LinkDefinition) -> bool {
        let removed = self
            .links
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&link.actor_id);
        match removed {
            Some(_) => {
                self.provider.delete_link(&link.actor_id).await;
                info!(actor_id = %link.actor_id, "link deleted");
                true
            }
            None => {
                debug!(actor_id = %link.actor_id, "link delete for an unlinked actor ignored");
                false
            }
        }
    }

    /// The msgpack health reply.
    pub(crate) async fn health(&self) -> Result<Vec<u8>, EncodingError> {
        encoding::to_msgpack(&self.provider.health().await)
    }

    /// Whether a shutdown request body comes from the host that started this provider
    /// instance: its `host_id` must be exactly that host's id. Anything else (another
    /// host's id, an empty or missing `host_id`, an empty body) is refused: a provider
    /// obeys only its own host, so one stray or hostile publish on the shutdown subject
    /// cannot stop it. Bytes that are not the JSON request are an error (refused too).
    ///
    /// The host id is not a secret (hosts announce it), so this check keeps out mistakes
    /// and blind publishes; NATS subject permissions are what keep other clients off the
    /// subject. A provider that is stopped anyway (by a publish naming its host, a signal)
    /// without its host asking is restarted by the host's supervisor.
    pub(crate) fn shutdown_applies(&self, body: &[u8]) -> Result<bool, EncodingError> {
        let request = if body.iter().all(u8::is_ascii_whitespace) {
            ShutdownRequest::default()
        } else {
            encoding::from_json::<ShutdownRequest>(body)?
        };
        Ok(!self.host_id.is_empty() && request.host_id == self.host_id)
    }

    /// The provider behind this dispatcher.
    pub(crate) fn provider(&self) -> &Arc<dyn Provider> {
        &self.provider
    }
}

impl Handler for Dispatcher {
    /// Runs an admitted invocation: it must be for this provider and from a linked actor.
    /// The provider runs it with [`crate::invocation_deadline`] set.
    async fn handle(&self, inv: Invocation) -> Result<Vec<u8>, InvocationError> {
        let deadline = Instant::now() + self.deadline_after;
        if inv.target.public_key != self.provider_key {
            return Err(InvocationError::unknown_target(format!(
                "invocation targets provider {} but reached provider {}; check the lattice prefix and link definitions of the calling host",
                inv.target.public_key, self.provider_key
            )));
        }
        let actor_id = inv.origin.public_key;
        if !self.is_linked(&actor_id) {
            return Err(InvocationError::not_linked_at_provider(
                &actor_id,
                self.provider.contract_id(),
            ));
        }
        // The provider's span for this invocation: a child of the caller's (the host's
        // host-call span), and current for the provider's own calls into actors. With
        // tracing off, the caller's context is still current, to be passed on.
        let parent = inv
            .trace_context
            .as_ref()
            .and_then(nimbus_telemetry::TraceParent::from_map);
        let mut span = if nimbus_telemetry::enabled() {
            let contract_id = self.provider.contract_id();
            let mut span = Span::start(
                format!("{contract_id}/{}", inv.operation),
                SpanKind::Server,
                parent,
            );
            if span.is_recording() {
                span.set_attribute("nimbus.actor", actor_id.as_str());
                span.set_attribute("nimbus.contract_id", contract_id);
                span.set_attribute("rpc.method", inv.operation.as_str());
            }
            span
        } else {
            Span::forwarding(parent)
        };
        let ctx = CallContext {
            actor_id,
            link_name: self.link_name.clone(),
        };
        let result = nimbus_telemetry::scope(
            span.context(),
            super::with_invocation_deadline(
                deadline,
                self.provider
                    .handle_invocation(&ctx, &inv.operation, inv.msg),
            ),
        )
        .await;
        if let Err(e) = &result {
            span.set_error(e);
        }
        result.map_err(|e| e.to_invocation_error(self.provider.contract_id()))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;
    use nimbus_core::claims;
    use nimbus_core::keys::{KeyKind, KeyPair};

    use crate::ProviderError;
    use nimbus_core::wire::WasmCloudEntity;

    use super::*;

    /// Records calls; `Fail` fails, anything else echoes.
    #[derive(Default)]
    struct Recorder {
        puts: Mutex<Vec<String>>,
        dels: Mutex<Vec<String>>,
    }

    #[async_trait]
    impl Provider for Recorder {
        fn contract_id(&self) -> &str {
            "test:recorder"
        }
        async fn put_link(&self, link: &LinkDefinition) -> Result<(), ProviderError> {
            if link.values.contains_key("reject") {
                return Err(ProviderError::BadLink {
                    actor_id: link.actor_id.clone(),
                    reason: "told to".into(),
                });
            }
            self.puts.lock().unwrap().push(link.actor_id.clone());
            Ok(())
        }
        async fn delete_link(&self, actor_id: &str) {
            self.dels.lock().unwrap().push(actor_id.to_string());
        }
        async fn handle_invocation(
            &self,
            ctx: &CallContext,
            operation: &str,
            payload: Vec<u8>,
        ) -> Result<Vec<u8>, ProviderError> {
            match operation {
                "Fail" => Err(ProviderError::Backend("backend down".into())),
                // Milliseconds left until the invocation's deadline, or `none`.
                "Deadline" => Ok(match crate::invocation_deadline() {
                    Some(d) => d
                        .saturating_duration_since(std::time::Instant::now())
                        .as_millis()
                        .to_string()
                        .into_bytes(),
                    None => b"none".to_vec(),
                }),
                _ => Ok([ctx.actor_id.as_bytes(), b":", &payload].concat()),
            }
        }
    }

    const PROVIDER: &str = "VPROVIDER";
    const ACTOR: &str = "MACTOR";

    fn host_data(issuers: Vec<String>) -> HostData {
        HostData {
            host_id: "NHOST".into(),
            lattice_rpc_prefix: "default".into(),
            link_name: "default".into(),
            provider_key: PROVIDER.into(),
            cluster_issuers: issuers,
            ..HostData::default()
        }
    }

    fn link(actor: &str, values: &[(&str, &str)]) -> LinkDefinition {
        LinkDefinition::new(
            actor,
            PROVIDER,
            "default",
            "test:recorder",
            values
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    fn invocation(op: &str, msg: &[u8]) -> Invocation {
        Invocation::new(
            WasmCloudEntity::actor(ACTOR),
            WasmCloudEntity::provider(PROVIDER, "test:recorder", "default"),
            op,
            msg.to_vec(),
            "NHOST",
        )
    }

    fn sign(inv: &mut Invocation, key: &KeyPair) {
        inv.encoded_claims = claims::sign_invocation(
            key,
            &inv.id,
            &inv.origin_url(),
            &inv.target_url(),
            &inv.operation,
            &inv.msg,
        )
        .unwrap();
    }

    async fn linked(issuers: Vec<String>) -> (Arc<Recorder>, Dispatcher) {
        let provider = Arc::new(Recorder::default());
        let d = Dispatcher::new(provider.clone(), &host_data(issuers));
        assert_eq!(d.put_link(link(ACTOR, &[])).await, LinkPut::Added);
        (provider, d)
    }

    #[tokio::test]
    async fn linked_invocation_reaches_the_provider() {
        let (_, d) = linked(vec![]).await;
        let inv = invocation("Echo", b"hi");
        let resp = d.invoke(&inv.to_msgpack().unwrap()).await;
        assert_eq!(resp.invocation_id, inv.id);
        assert_eq!(resp.into_result().unwrap(), b"MACTOR:hi");
    }

    #[tokio::test]
    async fn provider_errors_and_garbage_become_error_responses() {
        let (_, d) = linked(vec![]).await;
        let inv = invocation("Fail", b"");
        let resp = d.invoke(&inv.to_msgpack().unwrap()).await;
        assert_eq!(resp.invocation_id, inv.id);
        assert_eq!(resp.error.as_deref(), Some("backend down"));

        for garbage in [&b""[..], b"\xc1", b"\x92\x01", b"not msgpack at all"] {
            let resp = d.invoke(garbage).await;
            let err = resp.error.unwrap();
            assert!(err.starts_with("malformed invocation"), "{err}");
            // The encoded reply must itself be a decodable failure.
            assert!(resp.msg.is_empty());
        }
    }

    #[tokio::test]
    async fn unlinked_actor_and_wrong_target_are_refused() {
        let (_, d) = linked(vec![]).await;
        let mut inv = invocation("Echo", b"x");
        inv.origin = WasmCloudEntity::actor("MSTRANGER");
        let err = d.invoke(&inv.to_msgpack().unwrap()).await.error.unwrap();
        assert!(err.contains("no link from actor MSTRANGER"), "{err}");

        let mut inv = invocation("Echo", b"x");
        inv.target.public_key = "VOTHER".into();
        let err = d.invoke(&inv.to_msgpack().unwrap()).await.error.unwrap();
        assert!(err.contains("targets provider VOTHER"), "{err}");
    }

    #[tokio::test]
    async fn chunked_invocation_is_refused_with_advice() {
        let (_, d) = linked(vec![]).await;
        let mut inv = invocation("Echo", b"");
        inv.content_length = Some(2_000_000);
        let err = d.invoke(&inv.to_msgpack().unwrap()).await.error.unwrap();
        assert!(
            err.starts_with("malformed invocation: content_length 2000000"),
            "{err}"
        );
        assert!(err.contains("does not fetch chunked payloads"), "{err}");
    }

    #[tokio::test]
    async fn signatures_are_checked_only_when_issuers_are_set() {
        let cluster = KeyPair::generate(KeyKind::Cluster);
        let (_, d) = linked(vec![cluster.public_key()]).await;

        let mut good = invocation("Echo", b"ok");
        sign(&mut good, &cluster);
        let resp = d.invoke(&good.to_msgpack().unwrap()).await;
        assert_eq!(resp.into_result().unwrap(), b"MACTOR:ok");

        let unsigned = invocation("Echo", b"ok");
        let err = d
            .invoke(&unsigned.to_msgpack().unwrap())
            .await
            .error
            .unwrap();
        assert!(err.contains("carries no anti-forgery token"), "{err}");

        let mut forged = invocation("Echo", b"ok");
        sign(&mut forged, &KeyPair::generate(KeyKind::Cluster));
        let err = d.invoke(&forged.to_msgpack().unwrap()).await.error.unwrap();
        assert!(
            err.starts_with("claims invalid: invocation signed by cluster key"),
            "{err}"
        );

        let mut tampered = invocation("Echo", b"ok");
        sign(&mut tampered, &cluster);
        tampered.msg = b"changed".to_vec();
        tampered.content_length = Some(7);
        let err = d
            .invoke(&tampered.to_msgpack().unwrap())
            .await
            .error
            .unwrap();
        assert!(err.contains("hash"), "{err}");

        // Without issuers, an unsigned invocation is fine.
        let (_, open) = linked(vec![]).await;
        let resp = open.invoke(&unsigned.to_msgpack().unwrap()).await;
        assert!(!resp.is_error());
    }

    #[tokio::test]
    async fn link_puts_are_deduplicated_and_deletes_reach_the_provider() {
        let (p, d) = linked(vec![]).await;
        assert_eq!(d.put_link(link(ACTOR, &[])).await, LinkPut::Unchanged);
        assert_eq!(
            d.put_link(link(ACTOR, &[("k", "v")])).await,
            LinkPut::Updated
        );
        assert_eq!(
            d.put_link(link("MREJECT", &[("reject", "1")])).await,
            LinkPut::Rejected
        );
        let mut foreign = link("MFOREIGN", &[]);
        foreign.provider_id = "VOTHER".into();
        assert_eq!(d.put_link(foreign).await, LinkPut::NotOurs);
        assert_eq!(*p.puts.lock().unwrap(), vec![ACTOR, ACTOR]);
        assert!(!d.is_linked("MREJECT"));

        assert!(d.delete_link(&link(ACTOR, &[])).await);
        assert!(!d.delete_link(&link(ACTOR, &[])).await);
        assert_eq!(*p.dels.lock().unwrap(), vec![ACTOR]);
        assert!(!d.is_linked(ACTOR));
    }

    #[tokio::test]
    async fn an_invocation_runs_with_its_callers_deadline() {
        let provider = Arc::new(Recorder::default());
        let host = HostData {
            default_rpc_timeout_ms: Some(1000),
            ..host_data(vec![])
        };
        let d = Dispatcher::new(provider, &host);
        assert_eq!(d.put_link(link(ACTOR, &[])).await, LinkPut::Added);
        let inv = invocation("Deadline", b"");
        let left = d
            .invoke(&inv.to_msgpack().unwrap())
            .await
            .into_result()
            .unwrap();
        let left: u64 = String::from_utf8(left).unwrap().parse().unwrap();
        // The host's 1 s less a tenth for the way back, counted from when it was taken.
        assert!(left <= 900, "{left} ms left");
        assert!(left > 0, "the deadline passed before the provider ran");
        // Outside an invocation there is none.
        assert_eq!(crate::invocation_deadline(), None);
    }

    #[test]
    fn the_deadline_allows_a_tenth_of_the_timeout_for_the_way_back_at_most_250_ms() {
        use super::super::deadline_after;
        assert_eq!(
            deadline_after(Duration::from_secs(2)),
            Duration::from_millis(1800)
        );
        assert_eq!(
            deadline_after(Duration::from_secs(15)),
            Duration::from_millis(14_750)
        );
        assert_eq!(
            deadline_after(Duration::from_millis(100)),
            Duration::from_millis(90)
        );
        assert_eq!(deadline_after(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn shutdown_applies_only_to_the_host_that_started_the_provider() {
        let d = Dispatcher::new(Arc::new(Recorder::default()), &host_data(vec![]));
        assert!(d.shutdown_applies(br#"{"host_id":"NHOST"}"#).unwrap());
        assert!(!d.shutdown_applies(br#"{"host_id":"NOTHER"}"#).unwrap());
        assert!(!d.shutdown_applies(br#"{"host_id":""}"#).unwrap());
        assert!(!d.shutdown_applies(b"{}").unwrap());
        assert!(!d.shutdown_applies(b"").unwrap());
        assert!(!d.shutdown_applies(b"  \n").unwrap());
        assert!(!d.shutdown_applies(br#"{"host_id":"nhost"}"#).unwrap());
        assert!(d.shutdown_applies(b"\x00garbage").is_err());

        // A provider started without a host id (by hand) obeys no shutdown request at all.
        let orphan = HostData {
            host_id: String::new(),
            ..host_data(vec![])
        };
        let d = Dispatcher::new(Arc::new(Recorder::default()), &orphan);
        assert!(!d.shutdown_applies(br#"{"host_id":""}"#).unwrap());
        assert!(!d.shutdown_applies(b"").unwrap());
    }
}
