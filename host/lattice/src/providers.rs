//! Capability providers on this host: in-process ones (a [`Provider`] value, started from
//! a registered factory by name or handed over directly), and out-of-process ones (an
//! executable started through a [`ProcessLauncher`], the integration point for process
//! supervision). An in-process provider gets its links pushed by the host and calls
//! actors through the router; a process provider speaks NATS itself.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use nimbus_core::ctl::StringMap;
use nimbus_core::events::{
    HealthCheckPassed, ProviderClaimsSummary, ProviderStarted, ProviderStopped,
};
use nimbus_core::link::LinkDefinition;
use nimbus_core::wire::{HostData, ShutdownRequest, WasmCloudEntity, new_uuid};
use nimbus_provider_sdk::{ActorCaller, Provider, ProviderContext, ProviderError};

use crate::error::{ErrorKind, HostError};
use crate::events::LinkdefSetFailed;
use crate::inner::HostInner;
use crate::launch::ProcessLaunch;
use crate::registry::{ProviderKind, Registration, RunningProvider};
use crate::router::{Router, Target};
use crate::rpc::serve;

/// How long a provider process gets to exit after its shutdown request.
const PROCESS_STOP_GRACE: Duration = Duration::from_secs(2);
/// How long a new provider process may take to answer its first health check.
const PROCESS_READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The [`ActorCaller`] of one in-process provider: calls go through the router with the
/// provider as origin, so they need the link and the actor's capability claim.
struct ProviderCaller {
    router: Weak<Router>,
    entity: WasmCloudEntity,
}

#[async_trait]
impl ActorCaller for ProviderCaller {
    async fn call_actor(
        &self,
        actor_id: &str,
        operation: &str,
        payload: Vec<u8>,
    ) -> Result<Vec<u8>, ProviderError> {
        let Some(router) = self.router.upgrade() else {
            return Err(ProviderError::ActorUnavailable {
                actor_id: actor_id.to_string(),
                reason: "the host is stopped".into(),
            });
        };
        let timeout = router.rpc_timeout();
        router
            .invoke(
                self.entity.clone(),
                Target::Actor(actor_id.to_string()),
                operation,
                payload,
                timeout,
            )
            .await
            .map_err(|e| match e.kind() {
                ErrorKind::NoResponders | ErrorKind::UnknownTarget => {
                    ProviderError::ActorUnavailable {
                        actor_id: actor_id.to_string(),
                        reason: e.to_string(),
                    }
                }
                ErrorKind::Busy => ProviderError::ActorBusy {
                    actor_id: actor_id.to_string(),
                    reason: e.to_string(),
                },
                _ => ProviderError::ActorCall {
                    actor_id: actor_id.to_string(),
                    reason: e.to_string(),
                },
            })
    }
}

/// How a provider is asked to start.
pub(crate) struct ProviderStart {
    pub provider_id: String,
    pub link_name: String,
    pub image_ref: String,
    pub config_json: Option<String>,
    pub annotations: StringMap,
}

impl HostInner {
    /// Starts an in-process provider and hands it the links it serves.
    pub async fn start_in_process_provider(
        self: &Arc<Self>,
        provider: Arc<dyn Provider>,
        start: ProviderStart,
    ) -> Result<(), HostError> {
        if self.is_stopping() {
            return Err(HostError::Stopped);
        }
        let key = (start.provider_id.clone(), start.link_name.clone());
        if self.registry.provider(&key.0, &key.1).is_some() {
            return Err(HostError::ProviderAlreadyRunning {
                provider_id: key.0,
                link_name: key.1,
            });
        }
        let contract_id = provider.contract_id().to_string();
        let entity = WasmCloudEntity::provider(&start.provider_id, &contract_id, &start.link_name);
        let ctx = ProviderContext {
            host_id: self.id.clone(),
            lattice: self.config.lattice.clone(),
            provider_id: start.provider_id.clone(),
            link_name: start.link_name.clone(),
            config_json: start.config_json.clone(),
            actors: Arc::new(ProviderCaller {
                router: Arc::downgrade(&self.router),
                entity,
            }),
        };
        provider
            .start(ctx)
            .await
            .map_err(|e| HostError::ProviderStart(e.to_string()))?;
        let running = Arc::new(RunningProvider::new(
            start.provider_id.clone(),
            start.link_name.clone(),
            contract_id,
            new_uuid(),
            start.image_ref,
            start.annotations,
            ProviderKind::InProcess(provider.clone()),
        ));
        if self.registry.add_provider(running.clone()).is_err() {
            // Another start under the same key got here first.
            provider.shutdown().await;
            return Err(HostError::ProviderAlreadyRunning {
                provider_id: key.0,
                link_name: key.1,
            });
        }
        for link in self.cache.links_for_provider(&key.0, &key.1) {
            if let Err(e) = provider.put_link(&link).await {
                self.link_rejected(&link, &e).await;
            }
        }
        let subject = self.subjects.rpc_provider(&key.0, &key.1);
        let queue = self.subjects.rpc_provider_queue().to_string();
        match serve(self, subject, queue).await {
            Ok(serving) => running.serving.set(serving),
            Err(e) => {
                self.registry.remove_provider(&key.0, &key.1);
                provider.shutdown().await;
                return Err(e);
            }
        }
        tracing::info!(provider = %key.0, link_name = %key.1, "provider started");
        self.publish_provider_started(&running).await;
        Ok(())
    }

    /// Starts a provider executable through the configured launcher.
    pub async fn start_process_provider(
        self: &Arc<Self>,
        binary: PathBuf,
        contract_id: String,
        start: ProviderStart,
    ) -> Result<(), HostError> {
        let provider_id = start.provider_id.clone();
        let launcher = self.launcher.clone();
        let key = (provider_id.clone(), start.link_name.clone());
        if self.registry.provider(&key.0, &key.1).is_some() {
            return Err(HostError::ProviderAlreadyRunning {
                provider_id: key.0,
                link_name: key.1,
            });
        }
        let instance_id = new_uuid();
        let host_data = self.host_data_fn(&provider_id, &start, &instance_id);
        let weak = self.weak.clone();
        let gone = (provider_id.clone(), start.link_name.clone());
        let on_gave_up: Arc<dyn Fn(String) + Send + Sync> = Arc::new(move |reason: String| {
            let Some(host) = weak.upgrade() else { return };
            let (provider_id, link_name) = gone.clone();
            host.rt.clone().spawn(async move {
                host.provider_gone(&provider_id, &link_name, reason).await;
            });
        });
        let weak = self.weak.clone();
        let restarted = (provider_id.clone(), start.link_name.clone());
        let on_restarted: Arc<dyn Fn() + Send + Sync> = Arc::new(move || {
            let Some(host) = weak.upgrade() else { return };
            let (provider_id, link_name) = restarted.clone();
            if let Some(metrics) = &host.metrics {
                metrics.provider_restarted(&provider_id, &link_name);
            }
            host.rt.clone().spawn(async move {
                host.resend_links_when_ready(&provider_id, &link_name).await;
            });
        });
        let handle = launcher
            .launch(ProcessLaunch {
                binary,
                host_data,
                env: HashMap::new(),
                on_gave_up,
                on_restarted,
            })
            .await
            .map_err(HostError::ProviderStart)?;
        let running = Arc::new(RunningProvider::new(
            provider_id,
            start.link_name,
            contract_id,
            instance_id,
            start.image_ref,
            start.annotations,
            ProviderKind::Process(handle),
        ));
        if let Err(existing) = self.registry.add_provider(running.clone()) {
            // Another start under the same key got here first: this process goes.
            drop(existing);
            if let ProviderKind::Process(handle) = &running.kind {
                handle.stop(PROCESS_STOP_GRACE).await;
            }
            return Err(HostError::ProviderAlreadyRunning {
                provider_id: key.0,
                link_name: key.1,
            });
        }
        self.publish_provider_started(&running).await;
        let weak = self.weak.clone();
        tokio::spawn(async move {
            if let Some(host) = weak.upgrade() {
                host.resend_links_when_ready(&key.0, &key.1).await;
            }
        });
        Ok(())
    }

    /// Waits for a new provider process (the first, or a replacement after a crash) to
    /// answer its health subject, then publishes every link it serves: a link put while
    /// the process was still starting (after its host data was written, before it
    /// subscribed) would otherwise never reach it.
    async fn resend_links_when_ready(&self, provider_id: &str, link_name: &str) {
        let Some(client) = &self.nats else { return };
        let subject = self.subjects.provider_health(provider_id, link_name);
        let deadline = tokio::time::Instant::now() + PROCESS_READY_TIMEOUT;
        loop {
            if self.registry.provider(provider_id, link_name).is_none() {
                return;
            }
            let probe = async_nats::Request::new()
                .payload(bytes::Bytes::new())
                .timeout(Some(Duration::from_millis(500)));
            if client.send_request(subject.clone(), probe).await.is_ok() {
                break;
            }
            if tokio::time::Instant::now() > deadline {
                tracing::warn!(provider = %provider_id, link_name, "provider process never answered its health check");
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let put = self.subjects.provider_linkdefs_put(provider_id, link_name);
        for link in self.cache.links_for_provider(provider_id, link_name) {
            match nimbus_core::encoding::to_msgpack(&link) {
                Ok(body) => {
                    if let Err(e) = client.publish(put.clone(), body.into()).await {
                        tracing::warn!(error = %e, "could not re-send a link to a provider");
                    }
                }
                Err(e) => tracing::error!(error = %e, "could not encode a link definition"),
            }
        }
        self.events
            .publish(&HealthCheckPassed {
                public_key: provider_id.to_string(),
                contract_id: self
                    .registry
                    .provider(provider_id, link_name)
                    .map(|p| p.contract_id.clone())
                    .unwrap_or_default(),
                link_name: link_name.to_string(),
            })
            .await;
    }

    /// Starts a provider registered under a `provider_ref` name.
    pub async fn launch_registered(
        self: &Arc<Self>,
        registration: Registration,
        provider_ref: String,
        link_name: String,
        config_json: Option<String>,
        annotations: StringMap,
    ) -> Result<(), HostError> {
        match registration {
            Registration::InProcess {
                provider_id,
                factory,
            } => {
                let start = ProviderStart {
                    provider_id,
                    link_name,
                    image_ref: provider_ref,
                    config_json,
                    annotations,
                };
                self.start_in_process_provider(factory(), start).await
            }
            Registration::Process {
                provider_id,
                contract_id,
                binary,
            } => {
                let start = ProviderStart {
                    provider_id,
                    link_name,
                    image_ref: provider_ref,
                    config_json,
                    annotations,
                };
                self.start_process_provider(binary, contract_id, start)
                    .await
            }
        }
    }

    /// The host data of a provider process, computed at each (re)start so that it
    /// carries the links current at that moment.
    fn host_data_fn(
        &self,
        provider_id: &str,
        start: &ProviderStart,
        instance_id: &str,
    ) -> Arc<dyn Fn() -> HostData + Send + Sync> {
        /// The NATS user a provider connects as: its own `.creds` in
        /// `provider_credentials_dir`, else `provider_credentials_file`, else the host's
        /// own credentials; read at each (re)start, so renewed files are picked up. A
        /// file that cannot be read leaves the fields empty (the provider's connection is
        /// then refused by a server that requires credentials, and the error is logged).
        fn provider_credentials(
            nats: &crate::config::NatsConfig,
            provider_id: &str,
        ) -> (String, String) {
            let own = nats
                .provider_credentials_dir
                .as_ref()
                .map(|dir| dir.join(format!("{provider_id}.creds")))
                .filter(|path| path.is_file());
            let file = own
                .or_else(|| nats.provider_credentials_file.clone())
                .or_else(|| nats.credentials_file.clone());
            match file {
                Some(path) => match crate::config::UserCredentials::read(&path) {
                    Ok(creds) => (creds.jwt, creds.seed),
                    Err(error) => {
                        tracing::warn!(provider = provider_id, %error, "provider credentials not usable");
                        (String::new(), String::new())
                    }
                },
                None => (String::new(), nats.nkey_seed.clone().unwrap_or_default()),
            }
        }

        let weak = self.weak.clone();
        let provider_id = provider_id.to_string();
        let link_name = start.link_name.clone();
        let config_json = start.config_json.clone();
        let instance_id = instance_id.to_string();
        Arc::new(move || {
            let Some(host) = weak.upgrade() else {
                return HostData::default();
            };
            let signing = host.config.sign_invocations;
            let url = host
                .config
                .nats
                .as_ref()
                .and_then(|n| n.urls.first())
                .map(|u| u.split("://").nth(1).unwrap_or(u.as_str()).to_string())
                .unwrap_or_default();
            let (lattice_rpc_user_jwt, lattice_rpc_user_seed) = host
                .config
                .nats
                .as_ref()
                .map(|n| provider_credentials(n, &provider_id))
                .unwrap_or_default();
            let tls = host.config.nats.as_ref().and_then(|n| {
                let scheme_tls = n.urls.first().is_some_and(|u| u.starts_with("tls://"));
                let required = n.tls.as_ref().is_some_and(|t| t.required);
                (scheme_tls || required).then_some(true)
            });
            // The host's first extra root (a lattice's own CA) goes to the provider, which
            // would not trust the server's certificate otherwise.
            let tls_ca = host
                .config
                .nats
                .as_ref()
                .and_then(|n| n.tls.as_ref())
                .and_then(|t| t.root_certificates.first())
                .map(|ca| ca.display().to_string());
            HostData {
                host_id: host.id.clone(),
                lattice_rpc_prefix: host.config.lattice.clone(),
                link_name: link_name.clone(),
                lattice_rpc_user_jwt,
                lattice_rpc_user_seed,
                lattice_rpc_url: url,
                lattice_rpc_tls: tls,
                lattice_rpc_tls_ca_file: tls_ca,
                provider_key: provider_id.clone(),
                // With signing off the provider neither signs nor asks for tokens (our
                // SDK verifies only when issuers are listed); 0.x providers always
                // verify, so they need a lattice that signs.
                invocation_seed: if signing {
                    host.cluster_key.seed().unwrap_or_default()
                } else {
                    String::new()
                },
                instance_id: instance_id.clone(),
                link_definitions: host.cache.links_for_provider(&provider_id, &link_name),
                cluster_issuers: if signing {
                    host.cluster_issuers
                        .public_keys()
                        .map(String::from)
                        .collect()
                } else {
                    Vec::new()
                },
                config_json: config_json.clone(),
                default_rpc_timeout_ms: Some(host.config.rpc_timeout.as_millis() as u64),
                otel_config: otel_config(),
                ..HostData::default()
            }
        })
    }

    async fn publish_provider_started(&self, p: &RunningProvider) {
        self.events
            .publish(&ProviderStarted {
                public_key: p.provider_id.clone(),
                image_ref: p.image_ref.clone(),
                link_name: p.link_name.clone(),
                contract_id: p.contract_id.clone(),
                instance_id: p.instance_id.clone(),
                annotations: p.annotations.clone(),
                claims: ProviderClaimsSummary::default(),
            })
            .await;
    }

    /// Stops a provider: no new calls, in-flight ones finish, then it shuts down.
    pub async fn stop_provider(&self, provider_id: &str, link_name: &str) -> Result<(), HostError> {
        let running = self
            .registry
            .provider(provider_id, link_name)
            .ok_or_else(|| {
                HostError::NotRunning(format!("provider {provider_id} link name {link_name}"))
            })?;
        running.serving.stop(crate::actors::STOP_GRACE).await;
        self.registry.remove_provider(provider_id, link_name);
        match &running.kind {
            ProviderKind::InProcess(p) => p.shutdown().await,
            ProviderKind::Process(handle) => {
                self.request_shutdown(&running).await;
                handle.stop(PROCESS_STOP_GRACE).await;
            }
        }
        tracing::info!(provider = %provider_id, link_name, "provider stopped");
        self.publish_provider_stopped(&running, "normal").await;
        Ok(())
    }

    /// The 0.x shutdown request (`...shutdown`, JSON `{host_id}`) a provider process
    /// acts on before its supervisor closes its stdin.
    async fn request_shutdown(&self, running: &RunningProvider) {
        let Some(client) = &self.nats else { return };
        let subject = self
            .subjects
            .provider_shutdown(&running.provider_id, &running.link_name);
        let body = serde_json::to_vec(&ShutdownRequest {
            host_id: self.id.clone(),
        })
        .unwrap_or_default();
        let request = async_nats::Request::new()
            .payload(body.into())
            .timeout(Some(PROCESS_STOP_GRACE));
        if let Err(e) = client.send_request(subject, request).await {
            tracing::debug!(provider = %running.provider_id, error = %e, "provider did not answer the shutdown request");
        }
    }

    /// A provider process went down for good by itself.
    async fn provider_gone(&self, provider_id: &str, link_name: &str, reason: String) {
        let removed = self.registry.remove_provider(provider_id, link_name);
        if let Some(running) = removed {
            tracing::warn!(provider = %provider_id, link_name, %reason, "provider process is down for good");
            self.publish_provider_stopped(&running, &reason).await;
        }
    }

    async fn publish_provider_stopped(&self, running: &RunningProvider, reason: &str) {
        self.events
            .publish(&ProviderStopped {
                public_key: running.provider_id.clone(),
                link_name: running.link_name.clone(),
                contract_id: running.contract_id.clone(),
                instance_id: running.instance_id.clone(),
                annotations: running.annotations.clone(),
                reason: reason.to_string(),
            })
            .await;
    }

    /// Hands a link change to the in-process provider it concerns, if it runs here.
    pub async fn notify_provider(&self, link: &LinkDefinition, deleted: bool) {
        let Some(provider) = self.registry.provider(&link.provider_id, &link.link_name) else {
            return;
        };
        let Some(instance) = provider.in_process() else {
            return;
        };
        if deleted {
            instance.delete_link(&link.actor_id).await;
        } else if let Err(e) = instance.put_link(link).await {
            self.link_rejected(link, &e).await;
        }
    }

    /// Reports an in-process provider's refusal of a link: an error in the log and a
    /// `linkdef_set_failed` event, both carrying the provider's reason.
    async fn link_rejected(&self, link: &LinkDefinition, error: &ProviderError) {
        tracing::error!(
            provider = %link.provider_id,
            actor = %link.actor_id,
            contract = %link.contract_id,
            link_name = %link.link_name,
            %error,
            "provider rejected a link; fix its values and put it again"
        );
        self.events
            .publish(&LinkdefSetFailed {
                actor_id: link.actor_id.clone(),
                provider_id: link.provider_id.clone(),
                contract_id: link.contract_id.clone(),
                link_name: link.link_name.clone(),
                error: error.to_string(),
            })
            .await;
    }
}

/// The trace exporter settings a provider process gets in its host data: this host's
/// OTLP endpoint when it exports traces (the provider also inherits the host's
/// environment, so `OTEL_*` variables reach it either way; this covers hosts configured
/// in code). `None` when this host exports none, or its traces URL is not
/// `{endpoint}/v1/traces` (the provider then relies on the environment).
fn otel_config() -> Option<nimbus_core::wire::OtelConfig> {
    let endpoint = nimbus_telemetry::config()?.base_endpoint()?;
    Some(nimbus_core::wire::OtelConfig {
        traces_exporter: Some("otlp".to_string()),
        exporter_otlp_endpoint: Some(endpoint),
    })
}
