//! `wash ui`: the lattice dashboard (crate `nimbus-dashboard`) for any lattice, served
//! from this process over its NATS connection; and the helper `wash up --dashboard` and
//! `wash dev` use to serve it for the host they run.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use nimbus_dashboard::{
    Dashboard, DashboardListener, DashboardOptions, LocalSource, NatsSource, Source,
};
use nimbus_lattice::Host;
use serde::Serialize;

use crate::ctl::ConnectArgs;
use crate::output::OutputFormat;

/// Arguments of `wash ui`.
#[derive(Debug, clap::Args)]
pub struct UiArgs {
    #[command(flatten)]
    connect: ConnectArgs,
    /// Where to serve the dashboard (port 0: any free port).
    #[arg(long, env = "WASH_UI_ADDR", default_value = nimbus_dashboard::DEFAULT_ADDR)]
    addr: SocketAddr,
    /// How long each round waits for the hosts' replies, in milliseconds (a lattice
    /// across slow links needs more).
    #[arg(long, default_value_t = 700)]
    timeout_ms: u64,
}

#[derive(Debug, Serialize)]
struct UiReport {
    url: String,
    lattice: String,
    nats_url: String,
}

/// Binds the dashboard address of `wash up --dashboard` / `wash dev` before anything
/// else starts, so a port in use is the first (and only) error.
pub(crate) async fn bind(addr: SocketAddr, flag: &str) -> anyhow::Result<DashboardListener> {
    nimbus_dashboard::bind(addr)
        .await
        .with_context(|| format!("failed to start the dashboard ({flag})"))
}

/// Serves the dashboard of `host` on `listener`: the whole lattice over the host's NATS
/// connection when it has one, else the host itself.
pub(crate) fn serve_for_host(listener: DashboardListener, host: &Arc<Host>) -> Dashboard {
    let source: Arc<dyn Source> = match host.nats() {
        Some(client) => Arc::new(NatsSource::new(client.clone(), host.lattice())),
        None => Arc::new(LocalSource::new(host.clone())),
    };
    nimbus_dashboard::serve(listener, source, DashboardOptions::default())
}

/// Runs `wash ui` until Ctrl-C or SIGTERM.
pub fn run(args: UiArgs, output: OutputFormat) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    runtime.block_on(async move {
        let listener = bind(args.addr, "--addr").await?;
        let nats = args.connect.connect().await?;
        let source = NatsSource::new(nats, args.connect.lattice.clone())
            .with_timeout(Duration::from_millis(args.timeout_ms.max(1)))
            .with_nats_url(args.connect.nats_url.clone());
        let dashboard =
            nimbus_dashboard::serve(listener, Arc::new(source), DashboardOptions::default());
        let report = UiReport {
            url: dashboard.url(),
            lattice: args.connect.lattice.clone(),
            nats_url: args.connect.nats_url.clone(),
        };
        output.print(
            || {
                format!(
                    "dashboard of lattice `{}` at {} (NATS {})\nready; press Ctrl-C to stop",
                    report.lattice, report.url, report.nats_url
                )
            },
            &report,
        )?;
        crate::up::wait_for_shutdown().await;
        dashboard.stop();
        Ok(())
    })
}
