//! Publishing lattice events: CloudEvents JSON on `wasmbus.evt.{lattice}` when the host
//! is on NATS, and always on an in-process channel ([`crate::Host::events`]) so embedders
//! and standalone hosts can follow state changes too.

use nimbus_core::events::{CloudEvent, LatticeEvent};
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
