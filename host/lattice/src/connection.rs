//! Opening the NATS connection: authentication (credentials file, nkey seed; a refusal
//! says which credentials to give), TLS, the server list and endless reconnection.
//! async-nats resubscribes every subscription after a reconnect, so the host's RPC and
//! control subscriptions survive a server restart or a move to another cluster member.

use std::time::Duration;

use async_nats::{ConnectOptions, Event, ServerAddr};

use crate::config::NatsConfig;
use crate::error::HostError;

/// Connects with the given settings. The first connection must succeed (a host that
/// cannot reach its lattice should say so at start); later losses are retried forever.
pub(crate) async fn connect(
    config: &NatsConfig,
    host_id: &str,
) -> Result<async_nats::Client, HostError> {
    let urls = config.urls.join(",");
    let connect_error = |reason: String| HostError::Connect {
        urls: urls.clone(),
        reason,
    };
    if config.urls.is_empty() {
        return Err(HostError::Config("no NATS server URL given".into()));
    }
    let addrs = config
        .urls
        .iter()
        .map(|u| {
            u.parse::<ServerAddr>()
                .map_err(|e| HostError::Config(format!("bad NATS URL `{u}`: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;

    let mut options = match &config.credentials_file {
        Some(path) => ConnectOptions::with_credentials_file(path.clone())
            .await
            .map_err(|e| {
                connect_error(format!(
                    "cannot read credentials file {}: {e}",
                    path.display()
                ))
            })?,
        None => ConnectOptions::new(),
    };
    if let Some(seed) = &config.nkey_seed {
        options = options.nkey(seed.clone());
    }
    if let Some(tls) = &config.tls {
        options = options.require_tls(tls.required);
        for root in &tls.root_certificates {
            options = options.add_root_certificates(root.clone());
        }
        if let Some((cert, key)) = &tls.client_certificate {
            options = options.add_client_certificate(cert.clone(), key.clone());
        }
    }
    let name = config
        .name
        .clone()
        .unwrap_or_else(|| format!("nimbus-host-{host_id}"));
    if config.keep_server_order {
        options = options.retain_servers_order();
    }
    let log_id = host_id.to_string();
    options = options
        .name(name)
        .max_reconnects(None)
        .connection_timeout(Duration::from_secs(5))
        // Reconnect fast at first, then back off to at most one attempt per second.
        .reconnect_delay_callback(|attempts| {
            Duration::from_millis((attempts as u64).saturating_mul(50).min(1_000))
        })
        .event_callback(move |event| {
            let host = log_id.clone();
            async move {
                match event {
                    Event::Connected => tracing::info!(host, "connected to NATS"),
                    Event::Disconnected => {
                        tracing::warn!(host, "lost the NATS connection; reconnecting")
                    }
                    other => tracing::debug!(host, event = %other, "NATS connection event"),
                }
            }
        });
    let authenticated = config.credentials_file.is_some() || config.nkey_seed.is_some();
    options.connect(addrs).await.map_err(|e| {
        let reason = e.to_string();
        if !reason.to_ascii_lowercase().contains("authorization violation") {
            return connect_error(reason);
        }
        connect_error(if authenticated {
            format!(
                "{reason}: the server refused these credentials; give the host credentials of this server's lattice (`wash lattice init` writes host.creds)"
            )
        } else {
            format!(
                "{reason}: the server requires credentials; give a .creds file of a host (`wash lattice init` writes host.creds)"
            )
        })
    })
}
