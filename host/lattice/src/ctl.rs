//! The control interface: JSON requests on `wasmbus.ctl.{lattice}.*` with the verb set of
//! the 0.x lattice. `get.*` and `linkdefs.*` are served in the lattice's queue group (one
//! host answers); ping, auctions, registries and this host's `get.{id}.inv` and
//! `cmd.{id}.*` have no queue group. `la`/`lp`/`scale`/`sa`/`sp`/`stop` are acknowledged
//! at once and their outcome is reported by events; `upd` is acknowledged after the swap.
//! A request that cannot be parsed gets a refusal ack saying why, and the host carries on.

use std::path::Path;
use std::sync::{Arc, PoisonError, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::select_all;
use nimbus_core::ctl::{
    ActorAuctionAck, ActorAuctionRequest, CtlOperationAck, GetClaimsResponse, LinkDefinitionList,
    ProviderAuctionAck, ProviderAuctionRequest, RegistryCredentialMap, RemoveLinkDefinitionRequest,
    ScaleActorCommand, StartActorCommand, StartProviderCommand, StopActorCommand, StopHostCommand,
    StopProviderCommand, StringMap, UpdateActorCommand,
};
use nimbus_core::events::{ActorStartFailed, ActorsStartFailed, ProviderStartFailed};
use nimbus_core::keys::PUBLIC_KEY_LEN;
use nimbus_core::link::LinkDefinition;
use nimbus_core::subjects::{CtlCommand, CtlSubject};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::actors::ActorSource;
use crate::error::HostError;
use crate::inner::HostInner;
use crate::registry::Registration;

/// Subscribes to the control subjects and serves them until the host stops.
pub(crate) async fn start(host: &Arc<HostInner>) -> Result<(), HostError> {
    let Some(client) = host.nats.clone() else {
        return Ok(());
    };
    let s = &host.subjects;
    let root = s.ctl_root();
    let queue = s.ctl_queue();
    let nats_err = |e: async_nats::SubscribeError| {
        HostError::Nats(format!("cannot subscribe to the control interface: {e}"))
    };
    let subscribers = vec![
        // Matches get.claims and get.links, not get.{host}.inv (one more token).
        client
            .queue_subscribe(format!("{root}.get.*"), queue.clone())
            .await
            .map_err(nats_err)?,
        client
            .queue_subscribe(format!("{root}.linkdefs.*"), queue)
            .await
            .map_err(nats_err)?,
        client
            .subscribe(s.ctl_ping_hosts())
            .await
            .map_err(nats_err)?,
        client
            .subscribe(format!("{root}.auction.*"))
            .await
            .map_err(nats_err)?,
        client
            .subscribe(s.ctl_registries_put())
            .await
            .map_err(nats_err)?,
        client
            .subscribe(s.ctl_get_inventory(&host.id))
            .await
            .map_err(nats_err)?,
        // Our extension (nimbus_core::stats): this host's statistics for the dashboard.
        client
            .subscribe(s.ctl_get_stats(&host.id))
            .await
            .map_err(nats_err)?,
        client
            .subscribe(s.ctl_commands_wildcard(&host.id))
            .await
            .map_err(nats_err)?,
    ];
    if let Err(e) = client.flush().await {
        tracing::warn!(error = %e, "could not flush the control subscriptions");
    }
    let weak = Arc::downgrade(host);
    let mut messages = select_all(subscribers);
    host.keep_task(tokio::spawn(async move {
        while let Some(message) = messages.next().await {
            let Some(host) = weak.upgrade() else { return };
            tokio::spawn(handle(host, message));
        }
    }));
    Ok(())
}

fn json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_else(|e| {
        tracing::error!(error = %e, "could not encode a control reply");
        b"{}".to_vec()
    })
}

fn ack_ok() -> Vec<u8> {
    json(&CtlOperationAck::ok())
}

fn ack_failed(reason: impl std::fmt::Display) -> Vec<u8> {
    json(&CtlOperationAck::failed(reason.to_string()))
}

/// Parses a JSON body; an empty body is `{}` (so a body-less `stop` works).
fn parse<T: DeserializeOwned>(verb: &str, body: &[u8]) -> Result<T, Vec<u8>> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        &b"{}"[..]
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| {
        tracing::debug!(verb, error = %e, "bad control request");
        ack_failed(format!(
            "invalid JSON for `{verb}`: {e}; see the control interface reference for the fields"
        ))
    })
}

async fn handle(host: Arc<HostInner>, message: async_nats::Message) {
    let subject = message.subject.to_string();
    let body = &message.payload[..];
    let reply = match host.subjects.parse_ctl(&subject) {
        Some(parsed) => dispatch(&host, parsed, body).await,
        None => Some(ack_failed(format!("unknown control subject {subject}"))),
    };
    if let (Some(to), Some(reply), Some(client)) = (message.reply, reply, &host.nats)
        && let Err(e) = client.publish(to, reply.into()).await
    {
        tracing::warn!(%subject, error = %e, "could not answer a control request");
    }
}

/// Serves one request; `None` means "no reply" (an auction this host does not bid in).
async fn dispatch(host: &Arc<HostInner>, subject: CtlSubject, body: &[u8]) -> Option<Vec<u8>> {
    let reply = match subject {
        CtlSubject::PingHosts => {
            let weak = Arc::downgrade(host);
            tokio::spawn(async move {
                if let Some(host) = weak.upgrade() {
                    host.events.publish(&host.heartbeat()).await;
                }
            });
            json(&host.host_record())
        }
        CtlSubject::GetClaims => json(&GetClaimsResponse {
            claims: host
                .cache
                .all_claims()
                .into_iter()
                .map(|c| c.stored.to_map())
                .collect(),
        }),
        CtlSubject::GetLinks => json(&LinkDefinitionList {
            links: host.cache.links(),
        }),
        CtlSubject::GetInventory { .. } => json(&host.inventory()),
        CtlSubject::GetStats { .. } => {
            match parse::<nimbus_core::stats::GetStatsRequest>("get.stats", body) {
                Ok(_) => json(&host.stats()),
                Err(reply) => reply,
            }
        }
        CtlSubject::LinkdefsPut => match parse::<LinkDefinition>("linkdefs.put", body) {
            Ok(link) => match host.put_link(link).await {
                Ok(()) => ack_ok(),
                Err(e) => ack_failed(e),
            },
            Err(reply) => reply,
        },
        CtlSubject::LinkdefsDel => match parse::<RemoveLinkDefinitionRequest>("linkdefs.del", body)
        {
            Ok(r) => match host
                .delete_link(&r.actor_id, &r.contract_id, &r.link_name)
                .await
            {
                Ok(()) => ack_ok(),
                Err(e) => ack_failed(e),
            },
            Err(reply) => reply,
        },
        CtlSubject::AuctionActor => match parse::<ActorAuctionRequest>("auction.actor", body) {
            Ok(r) if satisfies(&host.labels, &r.constraints) => json(&ActorAuctionAck {
                actor_ref: r.actor_ref,
                constraints: r.constraints,
                host_id: host.id.clone(),
            }),
            Ok(_) => return None,
            Err(reply) => reply,
        },
        CtlSubject::AuctionProvider => {
            match parse::<ProviderAuctionRequest>("auction.provider", body) {
                Ok(r) => {
                    let running = registered_id(host, &r.provider_ref)
                        .is_some_and(|id| host.registry.provider(&id, &r.link_name).is_some());
                    if running || !satisfies(&host.labels, &r.constraints) {
                        return None;
                    }
                    json(&ProviderAuctionAck {
                        provider_ref: r.provider_ref,
                        link_name: r.link_name,
                        constraints: r.constraints,
                        host_id: host.id.clone(),
                    })
                }
                Err(reply) => reply,
            }
        }
        CtlSubject::RegistriesPut => match parse::<RegistryCredentialMap>("registries.put", body) {
            Ok(credentials) => {
                host.registries
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .extend(credentials);
                ack_ok()
            }
            Err(reply) => reply,
        },
        CtlSubject::Command { command, .. } => command_reply(host, command, body).await,
    };
    Some(reply)
}

fn satisfies(labels: &StringMap, constraints: &StringMap) -> bool {
    constraints.iter().all(|(k, v)| labels.get(k) == Some(v))
}

fn registered_id(host: &HostInner, provider_ref: &str) -> Option<String> {
    host.registry
        .registration(provider_ref)
        .map(|r| r.provider_id().to_string())
}

/// Runs `work` in the background (the ack is already on its way).
fn background<F>(host: &Arc<HostInner>, work: impl FnOnce(Arc<HostInner>) -> F + Send + 'static)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let weak: Weak<HostInner> = Arc::downgrade(host);
    tokio::spawn(async move {
        if let Some(host) = weak.upgrade() {
            work(host).await;
        }
    });
}

async fn command_reply(host: &Arc<HostInner>, command: CtlCommand, body: &[u8]) -> Vec<u8> {
    if host.is_stopping() && command != CtlCommand::StopHost {
        return ack_failed("the host is stopping");
    }
    match command {
        CtlCommand::LaunchActor => launch_actor(host, body).await,
        CtlCommand::StopActor => {
            let cmd = match parse::<StopActorCommand>("sa", body) {
                Ok(cmd) => cmd,
                Err(reply) => return reply,
            };
            if host.registry.actor(&cmd.actor_ref).is_none() {
                return ack_failed(format!(
                    "actor {} is not running on host {} (stop commands take the actor's public key)",
                    cmd.actor_ref, host.id
                ));
            }
            background(host, move |host| async move {
                let stopped = match cmd.annotations.as_ref().filter(|a| !a.is_empty()) {
                    Some(wanted) => {
                        host.stop_actor_matching(&cmd.actor_ref, cmd.count, wanted)
                            .await
                    }
                    None => host.stop_actor(&cmd.actor_ref, cmd.count).await,
                };
                if let Err(e) = stopped {
                    tracing::warn!(actor = %cmd.actor_ref, error = %e, "stop actor failed");
                }
            });
            ack_ok()
        }
        CtlCommand::ScaleActor => {
            let cmd = match parse::<ScaleActorCommand>("scale", body) {
                Ok(cmd) => cmd,
                Err(reply) => return reply,
            };
            let source = (!cmd.actor_ref.is_empty()).then(|| ActorSource::from_ref(&cmd.actor_ref));
            if host.registry.actor(&cmd.actor_id).is_none() && cmd.count > 0 && source.is_none() {
                return ack_failed(HostError::NoActorRef(cmd.actor_id));
            }
            background(host, move |host| async move {
                let annotations = cmd.annotations.unwrap_or_default();
                if let Err(e) = host
                    .scale_actor(&cmd.actor_id, cmd.count, source, annotations.clone())
                    .await
                {
                    host.events
                        .publish(&ActorsStartFailed {
                            public_key: cmd.actor_id,
                            image_ref: cmd.actor_ref,
                            annotations,
                            host_id: host.id.clone(),
                            error: e.to_string(),
                        })
                        .await;
                }
            });
            ack_ok()
        }
        CtlCommand::UpdateActor => {
            let cmd = match parse::<UpdateActorCommand>("upd", body) {
                Ok(cmd) => cmd,
                Err(reply) => return reply,
            };
            match host
                .update_actor(&cmd.actor_id, ActorSource::from_ref(&cmd.new_actor_ref))
                .await
            {
                Ok(()) => ack_ok(),
                Err(e) => ack_failed(e),
            }
        }
        CtlCommand::LaunchProvider => launch_provider(host, body),
        CtlCommand::StopProvider => {
            let cmd = match parse::<StopProviderCommand>("sp", body) {
                Ok(cmd) => cmd,
                Err(reply) => return reply,
            };
            if cmd.provider_ref.len() != PUBLIC_KEY_LEN {
                return ack_failed(format!(
                    "provider_ref `{}` is not a provider public key (56 characters); stop commands take the key, not the reference",
                    cmd.provider_ref
                ));
            }
            if host
                .registry
                .provider(&cmd.provider_ref, &cmd.link_name)
                .is_none()
            {
                return ack_failed(format!(
                    "provider {} with link name {} is not running on host {}",
                    cmd.provider_ref, cmd.link_name, host.id
                ));
            }
            background(host, move |host| async move {
                if let Err(e) = host.stop_provider(&cmd.provider_ref, &cmd.link_name).await {
                    tracing::warn!(provider = %cmd.provider_ref, error = %e, "stop provider failed");
                }
            });
            ack_ok()
        }
        CtlCommand::StopHost => {
            let cmd = match parse::<StopHostCommand>("stop", body) {
                Ok(cmd) => cmd,
                Err(reply) => return reply,
            };
            let grace = Duration::from_millis(cmd.timeout_ms());
            // Not `background`: the stop must outlive the last strong reference check.
            let host = host.clone();
            tokio::spawn(async move { host.shutdown(grace).await });
            ack_ok()
        }
    }
}

async fn launch_actor(host: &Arc<HostInner>, body: &[u8]) -> Vec<u8> {
    let cmd = match parse::<StartActorCommand>("la", body) {
        Ok(cmd) => cmd,
        Err(reply) => return reply,
    };
    let source = ActorSource::from_ref(&cmd.actor_ref);
    if let ActorSource::Path(path) = &source
        && !tokio::fs::metadata(path).await.is_ok_and(|m| m.is_file())
    {
        return ack_failed(format!(
            "actor_ref {} is not a readable file; give the path of a signed .wasm",
            cmd.actor_ref
        ));
    }
    background(host, move |host| async move {
        let annotations = cmd.annotations.clone().unwrap_or_default();
        if let Err(e) = host
            .start_actor(source, cmd.count, annotations.clone())
            .await
        {
            tracing::warn!(actor_ref = %cmd.actor_ref, error = %e, "start actor failed");
            host.events
                .publish(&ActorStartFailed {
                    actor_ref: cmd.actor_ref.clone(),
                    error: e.to_string(),
                })
                .await;
            host.events
                .publish(&ActorsStartFailed {
                    public_key: String::new(),
                    image_ref: cmd.actor_ref,
                    annotations,
                    host_id: host.id.clone(),
                    error: e.to_string(),
                })
                .await;
        }
    });
    ack_ok()
}

fn launch_provider(host: &Arc<HostInner>, body: &[u8]) -> Vec<u8> {
    let cmd = match parse::<StartProviderCommand>("lp", body) {
        Ok(cmd) => cmd,
        Err(reply) => return reply,
    };
    let registration = host.registry.registration(&cmd.provider_ref);
    let Some(registration) = registration else {
        let hint = if Path::new(cmd.provider_ref.trim_start_matches("file://")).is_file() {
            " (an executable must be registered with its provider key and contract id)"
        } else {
            ""
        };
        return ack_failed(format!(
            "{}{hint}",
            HostError::UnknownProvider(cmd.provider_ref)
        ));
    };
    let provider_id = match &registration {
        Registration::InProcess { provider_id, .. } | Registration::Process { provider_id, .. } => {
            provider_id.clone()
        }
    };
    if host
        .registry
        .provider(&provider_id, &cmd.link_name)
        .is_some()
    {
        return ack_failed(HostError::ProviderAlreadyRunning {
            provider_id,
            link_name: cmd.link_name,
        });
    }
    background(host, move |host| async move {
        let result = host
            .launch_registered(
                registration,
                cmd.provider_ref.clone(),
                cmd.link_name.clone(),
                cmd.configuration.clone(),
                cmd.annotations.clone().unwrap_or_default(),
            )
            .await;
        if let Err(e) = result {
            tracing::warn!(provider_ref = %cmd.provider_ref, error = %e, "start provider failed");
            host.events
                .publish(&ProviderStartFailed {
                    provider_ref: cmd.provider_ref,
                    link_name: cmd.link_name,
                    error: e.to_string(),
                })
                .await;
        }
    });
    ack_ok()
}
