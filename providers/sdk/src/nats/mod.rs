//! The out-of-process runner: a provider binary's whole `main`, speaking the 0.x provider
//! protocol over NATS (feature `nats`).
//!
//! The host writes one base64(JSON [`HostData`]) line to the provider's stdin. The runner
//! reads it, connects to `lattice_rpc_url`, starts the provider with an [`ActorCaller`]
//! that calls actors over NATS, puts the initial links, and then serves:
//!
//! | subject (under `wasmbus.rpc.{lattice}.{provider}.{link}`) | what |
//! |---|---|
//! | the subject itself, queue group `rpc` | Invocation → InvocationResponse |
//! | `.linkdefs.put` / `.linkdefs.del` | msgpack LinkDefinition, applied in order |
//! | `.health` | → msgpack HealthCheckResponse |
//! | `.shutdown` | JSON `{host_id}` naming the provider's own host → `shutting down`, then a clean exit; any other body is refused with a warning |
//!
//! A provider binary's `main` is then one call (see `providers/httpserver/src/bin`):
//!
//! ```no_run
//! use std::sync::Arc;
//! use nimbus_provider_sdk::Provider;
//!
//! fn serve(provider: Arc<dyn Provider>) -> Result<(), nimbus_provider_sdk::nats::RunError> {
//!     nimbus_provider_sdk::nats::run_main(provider)
//! }
//! ```

mod caller;
mod dispatch;

use std::sync::Arc;
use std::time::Duration;

use async_nats::{Client, ConnectOptions, Message, Subscriber};
use futures_util::StreamExt;
use nimbus_core::encoding::EncodingError;
use nimbus_core::keys::KeyPair;
use nimbus_core::subjects::Subjects;
use nimbus_core::wire::{HostData, SHUTDOWN_REPLY};
use tokio::sync::oneshot;
use tokio::task::JoinSet;
use tracing::{debug, error, info, warn};

pub use caller::{DEFAULT_RPC_TIMEOUT, NatsActorCaller};
use dispatch::Dispatcher;

tokio::task_local! {
    /// The deadline of the invocation the current task handles ([`crate::invocation_deadline`]).
    static DEADLINE: std::time::Instant;
}

/// The current task's invocation deadline, if it runs an invocation for the runner.
pub(crate) fn current_deadline() -> Option<std::time::Instant> {
    DEADLINE.try_with(|d| *d).ok()
}

/// Runs `f` with `deadline` as its [`crate::invocation_deadline`], as the runner runs each
/// invocation; for embedders that deliver invocations to a provider themselves (and tests).
pub async fn with_invocation_deadline<F: std::future::Future>(
    deadline: std::time::Instant,
    f: F,
) -> F::Output {
    DEADLINE.scope(deadline, f).await
}

/// How long after taking an invocation its caller is taken to have given up: `timeout`
/// (the caller's RPC timeout) less the [`crate::DEADLINE_ALLOWANCE`] (a tenth of it at most).
pub fn deadline_after(timeout: Duration) -> Duration {
    timeout.saturating_sub((timeout / 10).min(crate::DEADLINE_ALLOWANCE))
}

use crate::{ActorCaller, Provider, ProviderContext, ProviderError};

/// The NATS address used when the host data names none.
pub const DEFAULT_LATTICE_RPC_URL: &str = "127.0.0.1:4222";

/// When this environment variable is `1`, [`run`] also stops (cleanly) when stdin reaches
/// end of file: the supervising host keeps the pipe open for the provider's life, so EOF
/// means the host is gone and the provider must not linger as an orphan.
pub const EXIT_ON_STDIN_EOF_ENV: &str = "NIMBUS_PROVIDER_EXIT_ON_STDIN_EOF";

/// Why the runner stopped with an error. A provider binary returns it from `main`, so
/// it exits non-zero and its supervisor restarts it.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Reading stdin failed.
    #[error("failed to read the host data line from stdin: {0}")]
    Stdin(#[source] std::io::Error),
    /// Stdin ended before a line arrived.
    #[error(
        "stdin closed before the host data line arrived; start the provider from a host, or pipe one base64(JSON HostData) line into it"
    )]
    NoHostData,
    /// The line is not base64 JSON host data.
    #[error(
        "the host data line on stdin is invalid: {0}; the host must write base64(JSON HostData) and a newline"
    )]
    HostData(#[source] EncodingError),
    /// A host data field is present but unusable.
    #[error("host data field `{field}` is invalid: {reason}")]
    InvalidHostData {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The NATS connection could not be made.
    #[error(
        "failed to connect to NATS at {url}: {source}; check that nats-server runs there and that lattice_rpc_url and the credentials in the host data are right"
    )]
    Connect {
        /// The address tried.
        url: String,
        /// The client's error.
        #[source]
        source: async_nats::ConnectError,
    },
    /// A subscription could not be made.
    #[error("failed to subscribe to {subject}: {source}")]
    Subscribe {
        /// The subject.
        subject: String,
        /// The client's error.
        #[source]
        source: async_nats::SubscribeError,
    },
    /// The provider's own `start` failed.
    #[error("the provider failed to start: {0}")]
    Start(#[source] ProviderError),
    /// The NATS client closed for good while serving.
    #[error(
        "the NATS connection closed while serving {subject}; the provider stops so that its supervisor restarts it"
    )]
    ConnectionClosed {
        /// The subscription that ended.
        subject: String,
    },
    /// The async runtime could not be built (run_main only).
    #[error("failed to build the tokio runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

/// Runs `provider` as a process: builds a tokio runtime and calls [`run`]. Meant to be
/// the body of a provider binary's `main`.
pub fn run_main(provider: Arc<dyn Provider>) -> Result<(), RunError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("provider")
        .build()
        .map_err(RunError::Runtime)?;
    runtime.block_on(run(provider))
}

/// Reads the host data line from stdin, sets up logging to stderr at its `log_level`
/// (`RUST_LOG` wins when set), and serves `provider` until a shutdown request, SIGTERM,
/// SIGINT, or (with [`EXIT_ON_STDIN_EOF_ENV`] set) the end of stdin. Returns `Ok` on a
/// clean shutdown.
pub async fn run(provider: Arc<dyn Provider>) -> Result<(), RunError> {
    let host_data = read_host_data().await?;
    init_logging(&host_data);
    init_tracing(&host_data);
    let stdin_closed =
        (std::env::var(EXIT_ON_STDIN_EOF_ENV).as_deref() == Ok("1")).then(watch_stdin_eof);
    serve_provider(provider, host_data, stdin_closed).await
}

/// Resolves when stdin reaches end of file (or fails). A plain thread, not the blocking
/// pool: a read that never returns must not hold up the runtime's shutdown.
fn watch_stdin_eof() -> oneshot::Receiver<()> {
    let (tx, rx) = oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("stdin-eof".into())
        .spawn(move || {
            let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
            let _ = tx.send(());
        });
    if let Err(e) = spawned {
        warn!(error = %e, "failed to watch stdin; the provider will not notice its host going away");
    }
    rx
}

/// Reads and decodes one host data line from stdin.
pub async fn read_host_data() -> Result<HostData, RunError> {
    let line = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map(|n| (n, line))
    })
    .await
    .map_err(|e| RunError::Stdin(std::io::Error::other(e)))?
    .map_err(RunError::Stdin)?;
    match line {
        (0, _) => Err(RunError::NoHostData),
        (_, line) if line.trim().is_empty() => Err(RunError::NoHostData),
        (_, line) => HostData::from_stdin_line(&line).map_err(RunError::HostData),
    }
}

/// Logging to stderr (the host forwards it). A no-op if the process already has a global
/// subscriber.
fn init_logging(host_data: &HostData) {
    use tracing_subscriber::EnvFilter;
    let level = host_data
        .log_level
        .as_deref()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .unwrap_or("info")
        .to_ascii_lowercase();
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}

/// Connects to the lattice as the host data says: address (`host:port`, a scheme is
/// accepted too), user JWT + seed or a bare nkey seed, TLS when asked.
pub async fn connect(host_data: &HostData) -> Result<Client, RunError> {
    let url = match host_data.lattice_rpc_url.trim() {
        "" => DEFAULT_LATTICE_RPC_URL,
        url => url,
    };
    let mut options = ConnectOptions::new()
        .name(format!("nimbus-provider {}", host_data.provider_key))
        .event_callback(|event| async move {
            match event {
                async_nats::Event::Connected => info!("connected to NATS"),
                async_nats::Event::Disconnected => warn!("disconnected from NATS, reconnecting"),
                other => warn!(event = %other, "NATS connection event"),
            }
        });
    let jwt = host_data.lattice_rpc_user_jwt.trim();
    let seed = host_data.lattice_rpc_user_seed.trim();
    if !seed.is_empty() {
        let key = KeyPair::from_seed(seed).map_err(|e| RunError::InvalidHostData {
            field: "lattice_rpc_user_seed",
            reason: e.to_string(),
        })?;
        if jwt.is_empty() {
            options = options.nkey(seed.to_string());
        } else {
            let key = Arc::new(key);
            options = options.jwt(jwt.to_string(), move |nonce| {
                let key = key.clone();
                async move { key.sign(&nonce).map_err(async_nats::AuthError::new) }
            });
        }
    }
    if host_data.lattice_rpc_tls == Some(true) {
        options = options.require_tls(true);
    }
    if let Some(ca) = host_data
        .lattice_rpc_tls_ca_file
        .as_deref()
        .filter(|ca| !ca.is_empty())
    {
        options = options.add_root_certificates(ca.into());
    }
    options
        .connect(url)
        .await
        .map_err(|source| RunError::Connect {
            url: url.to_string(),
            source,
        })
}

/// Serves `provider` with the given host data (no stdin, no logging setup): connect,
/// start, subscribe, put the initial links, answer until shut down.
pub async fn run_with_host_data(
    provider: Arc<dyn Provider>,
    host_data: HostData,
) -> Result<(), RunError> {
    serve_provider(provider, host_data, None).await
}

async fn serve_provider(
    provider: Arc<dyn Provider>,
    host_data: HostData,
    stdin_closed: Option<oneshot::Receiver<()>>,
) -> Result<(), RunError> {
    let client = connect(&host_data).await?;
    let caller = NatsActorCaller::new(client.clone(), &host_data, provider.contract_id())?;
    // In-flight invocations get as long to finish on shutdown as a call gets to answer.
    let drain_wait = caller.timeout();
    let actors: Arc<dyn ActorCaller> = Arc::new(caller);
    provider
        .start(ProviderContext {
            host_id: host_data.host_id.clone(),
            lattice: host_data.lattice_rpc_prefix.clone(),
            provider_id: host_data.provider_key.clone(),
            link_name: host_data.link_name.clone(),
            config_json: host_data.config_json.clone(),
            actors,
        })
        .await
        .map_err(RunError::Start)?;

    let subjects = Subjects::for_lattice(host_data.lattice_rpc_prefix.clone());
    let (key, link) = (&host_data.provider_key, &host_data.link_name);
    let rpc_subject = subjects.rpc_provider(key, link);
    let dispatcher = Arc::new(Dispatcher::new(provider, &host_data));
    let subs = Subscriptions {
        rpc: nimbus_rpc::serve(
            &client,
            rpc_subject.clone(),
            subjects.rpc_provider_queue().to_string(),
            dispatcher.clone(),
            dispatcher.limits().clone(),
        )
        .await
        .map_err(|source| RunError::Subscribe {
            subject: rpc_subject.clone(),
            source,
        })?,
        health: subscribe(&client, &subjects.provider_health(key, link)).await?,
        shutdown: subscribe(&client, &subjects.provider_shutdown(key, link)).await?,
        rpc_subject: rpc_subject.clone(),
    };
    // One subscription for put and del keeps them in publication order.
    let linkdefs = subscribe(&client, &format!("{rpc_subject}.linkdefs.*")).await?;
    // Make sure the server has the subscriptions before the links are applied, so no
    // link change published from now on is missed.
    if let Err(e) = client.flush().await {
        warn!(error = %e, "failed to flush the subscriptions");
    }

    for link in host_data.link_definitions.iter().cloned() {
        dispatcher.put_link(link).await;
    }
    info!(
        provider_id = %host_data.provider_key,
        link_name = %host_data.link_name,
        lattice = %host_data.lattice_rpc_prefix,
        subject = %rpc_subject,
        "provider ready"
    );

    let linkdefs_task = tokio::spawn(apply_links(
        dispatcher.clone(),
        linkdefs,
        subjects.provider_linkdefs_put(key, link),
        subjects.provider_linkdefs_del(key, link),
    ));
    let result = serve(&client, &dispatcher, subs, stdin_closed, drain_wait).await;
    linkdefs_task.abort();
    dispatcher.provider().shutdown().await;
    if let Err(e) = client.drain().await {
        debug!(error = %e, "failed to drain the NATS connection");
    }
    match &result {
        Ok(()) => info!("provider stopped"),
        Err(e) => error!(error = %e, "provider stopped"),
    }
    // The last spans (of the invocations just drained) before the process exits.
    if !nimbus_telemetry::flush(TRACE_FLUSH_WAIT).await {
        debug!("the last spans were not exported within {TRACE_FLUSH_WAIT:?}");
    }
    result
}

/// How long a stopping provider waits for its last spans to be exported.
const TRACE_FLUSH_WAIT: Duration = Duration::from_secs(2);

/// Exports spans over OTLP when the environment names an endpoint
/// (`OTEL_EXPORTER_OTLP_ENDPOINT`, inherited from the host) or, failing that, the host
/// data's `otel_config` does. The service name is the executable's (e.g.
/// `nimbus-keyvalue-provider`) unless `OTEL_SERVICE_NAME` says otherwise. A bad endpoint
/// is logged and the provider runs untraced.
fn init_tracing(host_data: &HostData) {
    let service = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| format!("provider {}", host_data.provider_key));
    let from_host_data = || {
        let otel = host_data.otel_config.as_ref()?;
        if otel
            .traces_exporter
            .as_deref()
            .is_some_and(|e| !e.split(',').any(|e| e.trim() == "otlp"))
        {
            return None;
        }
        let endpoint = otel.exporter_otlp_endpoint.as_deref()?.trim();
        (!endpoint.is_empty()).then(|| nimbus_telemetry::traces_url(endpoint))
    };
    let config = match nimbus_telemetry::Config::from_env(&service) {
        Ok(Some(config)) => Some(config),
        Ok(None) => from_host_data().map(|url| {
            let service = std::env::var("OTEL_SERVICE_NAME")
                .ok()
                .filter(|s| !s.trim().is_empty())
                .unwrap_or(service);
            nimbus_telemetry::Config::new(&url, service)
        }).transpose().unwrap_or_else(|e| {
            warn!(error = %e, "ignoring the OTLP endpoint of the host data; traces are not exported");
            None
        }),
        Err(e) => {
            warn!(error = %e, "traces are not exported");
            None
        }
    };
    let Some(mut config) = config else { return };
    config.resource_attributes.extend([
        (
            "nimbus.provider".to_string(),
            host_data.provider_key.clone(),
        ),
        ("nimbus.link_name".to_string(), host_data.link_name.clone()),
        ("nimbus.host".to_string(), host_data.host_id.clone()),
    ]);
    let url = config.endpoint.url.clone();
    match nimbus_telemetry::install(config) {
        Ok(()) => info!(endpoint = %url, "exporting traces over OTLP"),
        Err(e) => warn!(error = %e, "traces are not exported"),
    }
}

/// The request/reply subscriptions the serving loop answers (RPC through `nimbus-rpc`).
struct Subscriptions {
    rpc_subject: String,
    rpc: nimbus_rpc::Serving,
    health: Subscriber,
    shutdown: Subscriber,
}

async fn subscribe(client: &Client, subject: &str) -> Result<Subscriber, RunError> {
    client
        .subscribe(subject.to_string())
        .await
        .map_err(|source| RunError::Subscribe {
            subject: subject.to_string(),
            source,
        })
}

/// Why the serving loop ended cleanly.
#[derive(Debug)]
enum Stop {
    ShutdownRequest,
    Signal,
    StdinClosed,
}

/// Answers RPC, health and shutdown until asked to stop; then stops taking requests and
/// lets in-flight invocations finish (at most `drain_wait`).
async fn serve(
    client: &Client,
    dispatcher: &Arc<Dispatcher>,
    subs: Subscriptions,
    stdin_closed: Option<oneshot::Receiver<()>>,
    drain_wait: Duration,
) -> Result<(), RunError> {
    let Subscriptions {
        rpc_subject,
        mut rpc,
        mut health,
        mut shutdown,
    } = subs;
    let mut in_flight = JoinSet::new();
    let termination = termination();
    tokio::pin!(termination);
    let stdin_closed = async {
        match stdin_closed {
            Some(closed) => {
                let _ = closed.await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::pin!(stdin_closed);
    let stop = loop {
        tokio::select! {
            () = rpc.ended() => break Err(closed(&rpc_subject)),
            msg = health.next() => {
                let Some(msg) = msg else {
                    break Err(closed("the health subject"));
                };
                let (d, c) = (dispatcher.clone(), client.clone());
                in_flight.spawn(async move { answer_health(&d, &c, msg).await });
            }
            msg = shutdown.next() => {
                let Some(msg) = msg else {
                    break Err(closed("the shutdown subject"));
                };
                if accept_shutdown(dispatcher, client, msg).await {
                    break Ok(Stop::ShutdownRequest);
                }
            }
            Some(joined) = in_flight.join_next(), if !in_flight.is_empty() => {
                if let Err(e) = joined {
                    error!(error = %e, "a request handler panicked");
                }
            }
            () = &mut termination => break Ok(Stop::Signal),
            () = &mut stdin_closed => {
                info!("stdin closed: the host is gone");
                break Ok(Stop::StdinClosed);
            }
        }
    };
    for sub in [&mut health, &mut shutdown] {
        if let Err(e) = sub.unsubscribe().await {
            debug!(error = %e, "failed to unsubscribe");
        }
    }
    if let Ok(reason) = &stop {
        info!(?reason, "shutting down");
    }
    // In-flight invocations finish (the RPC subject drains), then health answers.
    let finish = async {
        rpc.stop(drain_wait).await;
        while in_flight.join_next().await.is_some() {}
    };
    if tokio::time::timeout(drain_wait, finish).await.is_err() {
        warn!(
            abandoned = in_flight.len(),
            "in-flight invocations did not finish in {drain_wait:?}; abandoning them"
        );
        in_flight.abort_all();
    }
    stop.map(|_| ())
}

fn closed(subject: &str) -> RunError {
    RunError::ConnectionClosed {
        subject: subject.to_string(),
    }
}

async fn answer_health(dispatcher: &Dispatcher, client: &Client, msg: Message) {
    let Some(reply) = msg.reply else {
        return;
    };
    match dispatcher.health().await {
        Ok(bytes) => {
            if let Err(e) = client.publish(reply, bytes.into()).await {
                warn!(error = %e, "failed to answer a health check");
            }
        }
        Err(e) => error!(error = %e, "failed to encode the health response"),
    }
}

/// Replies `shutting down` to a shutdown request from the host that started this
/// instance and returns true; any other request (another host's, one naming no host, one
/// that cannot be read) is refused with a warning, unanswered, and the provider serves on.
async fn accept_shutdown(dispatcher: &Dispatcher, client: &Client, msg: Message) -> bool {
    match dispatcher.shutdown_applies(&msg.payload) {
        Ok(true) => {}
        Ok(false) => {
            warn!(
                subject = %msg.subject,
                body = %String::from_utf8_lossy(&msg.payload[..msg.payload.len().min(256)]),
                "refused a shutdown request that does not name this provider's host; serving on"
            );
            return false;
        }
        Err(e) => {
            warn!(subject = %msg.subject, error = %e, "refused an unreadable shutdown request; serving on");
            return false;
        }
    }
    if let Some(reply) = msg.reply {
        if let Err(e) = client.publish(reply, SHUTDOWN_REPLY.into()).await {
            warn!(error = %e, "failed to answer the shutdown request");
        }
        if let Err(e) = client.flush().await {
            warn!(error = %e, "failed to flush the shutdown reply");
        }
    }
    true
}

/// Applies link puts and deletes one by one, in the order they were published.
async fn apply_links(
    dispatcher: Arc<Dispatcher>,
    mut linkdefs: Subscriber,
    put_subject: String,
    del_subject: String,
) {
    while let Some(msg) = linkdefs.next().await {
        let link = match nimbus_core::encoding::from_msgpack::<crate::LinkDefinition>(&msg.payload)
        {
            Ok(link) => link,
            Err(e) => {
                warn!(subject = %msg.subject, error = %e, "unreadable link definition ignored");
                continue;
            }
        };
        if msg.subject.as_str() == put_subject {
            dispatcher.put_link(link).await;
        } else if msg.subject.as_str() == del_subject {
            dispatcher.delete_link(&link).await;
        } else {
            debug!(subject = %msg.subject, "message on an unknown linkdefs subject ignored");
        }
    }
}

/// Resolves on SIGTERM or SIGINT; never if the handlers cannot be installed.
async fn termination() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => info!("SIGTERM received"),
                    _ = int.recv() => info!("SIGINT received"),
                }
            }
            _ => {
                warn!(
                    "failed to install signal handlers; stop the provider with a shutdown request"
                );
                std::future::pending::<()>().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
