//! The core interface every actor and provider speaks, generated from
//! `widl/interfaces/core.widl` and wire-compatible with `wasmcloud-actor-core` 0.2.3:
//! `HealthRequest` to actors, and the lifecycle operations (`BindActor`, `RemoveActor`,
//! `HealthRequest`) the host sends to providers.
//!
//! - feature `actor`: `Handlers::register_health_request` (an actor answering health checks);
//! - feature `provider`: the `CapabilityProvider` trait with `dispatch_capability_provider`,
//!   and `ActorClient` to send `HealthRequest` to an actor.

include!(concat!(env!("OUT_DIR"), "/core.rs"));

impl HealthCheckResponse {
    /// A healthy response with an empty message (the published crate's `healthy()`).
    pub fn healthy() -> HealthCheckResponse {
        HealthCheckResponse {
            healthy: true,
            message: String::new(),
        }
    }

    /// An unhealthy response saying why.
    pub fn unhealthy(message: impl Into<String>) -> HealthCheckResponse {
        HealthCheckResponse {
            healthy: false,
            message: message.into(),
        }
    }
}
