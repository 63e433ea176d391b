//! Publishing lattice events: CloudEvents JSON on `wasmbus.evt.{lattice}` when the host
//! is on NATS, and always on an in-process channel ([`crate::Host::events`]) so embedders
//! and standalone hosts can follow state changes too.

use nimbus_core::events::{CloudEvent, LatticeEvent};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

/// Events buffered for slow in-process subscribers before they start missing some.
const LOCAL_BUFFER: usize = 1024;

/// Sends events to NATS and to in-process subscribers.
pub(crate) struct EventPublisher {
    host_id: String,
    subject: String,
    client: Option<async_nats::Client>,
    local: broadcast::Sender<CloudEvent>,
}

impl EventPublisher {
    pub fn new(host_id: String, subject: String, client: Option<async_nats::Client>) -> Self {
        Self {
            host_id,
            subject,
            client,
            local: broadcast::channel(LOCAL_BUFFER).0,
        }
    }

    /// A receiver of every event published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<CloudEvent> {
        self.local.subscribe()
    }

    /// Publishes `event` with this host as the source.
    pub async fn publish<E: LatticeEvent>(&self, event: &E) {
        self.publish_from(&self.host_id, event).await;
    }

    /// Publishes `event` with the given source (`n/a` for link events).
    pub async fn publish_from<E: LatticeEvent>(&self, source: &str, event: &E) {
        let envelope = match CloudEvent::new(source, event) {
            Ok(envelope) => envelope,
            Err(error) => {
                tracing::error!(event = E::NAME, %error, "could not encode an event");
                return;
            }
        };
        if let Some(client) = &self.client {
            match envelope.to_json() {
                Ok(json) => {
                    if let Err(error) = client.publish(self.subject.clone(), json.into()).await {
                        tracing::warn!(event = E::NAME, %error, "could not publish an event");
                    }
                }
                Err(error) => tracing::error!(event = E::NAME, %error, "could not encode an event"),
            }
        }
        tracing::debug!(event = E::NAME, "lattice event");
        // No in-process subscriber is fine.
        let _ = self.local.send(envelope);
    }
}

/// A provider running on this host refused a link it was handed (link values it cannot
/// use, a backend it cannot reach, ...), published as `linkdef_set_failed` with this host
/// as the source. The link stays in the lattice store; what the provider does for the
/// actor meanwhile is its own choice (the key-value provider keeps the previous backend,
/// if there was one). Fix the values and put the link again.
///
/// Not an event of the 0.x hosts: 0.x clients ignore event types they do not know. The
/// host reports rejections of in-process providers; a provider process only logs its own.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkdefSetFailed {
    /// The link's actor.
    pub actor_id: String,
    /// The provider that refused it.
    pub provider_id: String,
    /// The link's contract id.
    pub contract_id: String,
    /// The link name.
    pub link_name: String,
    /// The provider's reason, as it gave it.
    pub error: String,
}

impl LatticeEvent for LinkdefSetFailed {
    const NAME: &'static str = "linkdef_set_failed";
}
