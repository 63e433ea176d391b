//! `wash`: the command-line tool of nimbus. Keys, claims, calling actors, and (as the
//! project grows) code generation, running hosts and controlling a lattice.

mod app;
mod app_view;
mod build;
mod call;
mod claims;
mod ctl;
mod dev;
// `gen` is a reserved word in edition 2024.
#[path = "gen.rs"]
mod generate;
mod keys;
mod lattice;
mod lattice_auth;
mod new;
mod output;
mod project;
mod ui;
mod up;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use output::OutputFormat;

/// The wasmCloud-style shell for nimbus hosts and actors.
#[derive(Debug, Parser)]
#[command(name = "wash", version, about, propagate_version = true)]
struct Cli {
    /// Output format of commands that print data (`-o` is `claims sign`'s output file).
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Text)]
    output: OutputFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate, show and list nkeys (account, module, service, server, cluster).
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Sign actors with capability claims, and inspect the claims of a module.
    #[command(subcommand)]
    Claims(claims::ClaimsCommand),
    /// Call an operation on an actor once and print the raw response.
    Call(call::CallArgs),
    /// Generate Rust for the actor or provider side of a WIDL interface.
    Gen(generate::GenArgs),
    /// Control the hosts of a lattice: list, start, stop, scale, link.
    Ctl(ctl::CtlArgs),
    /// Run a host here (standalone, or joining a lattice) and deploy an app manifest.
    Up(up::UpArgs),
    /// Deployments kept running by the lattice: deploy, list, status, history, undeploy,
    /// rollback.
    #[command(subcommand)]
    App(app::AppCommand),
    /// Secure a lattice (`wash lattice init`: NATS credentials by role), and its cluster
    /// key: show it, export it, import it on another machine.
    #[command(subcommand)]
    Lattice(lattice::LatticeCommand),
    /// Create a new actor (`wash new actor NAME`) or provider project from a template.
    #[command(subcommand)]
    New(new::NewCommand),
    /// Build (and sign) the project of the nearest nimbus.toml.
    Build(build::BuildArgs),
    /// Serve the lattice dashboard (hosts, actors, call rates and latencies, providers,
    /// links, events; live) for any lattice, at http://127.0.0.1:4000/ by default.
    Ui(ui::UiArgs),
    /// Run the actor project of the nearest nimbus.toml with its providers, rebuild on
    /// every change and swap the new build in while it serves.
    Dev(dev::DevArgs),
}

fn main() -> ExitCode {
    init_logging();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Keys(cmd) => keys::run(cmd, cli.output),
        Command::Claims(cmd) => claims::run(cmd, cli.output),
        Command::Call(args) => call::run(args, cli.output),
        Command::Gen(args) => generate::run(args, cli.output),
        Command::Ctl(args) => ctl::run(args, cli.output),
        Command::Up(args) => up::run(args, cli.output),
        Command::App(cmd) => app::run(cmd, cli.output),
        Command::Lattice(cmd) => lattice::run(cmd, cli.output),
        Command::New(cmd) => new::run(cmd, cli.output),
        Command::Build(args) => build::run(args, cli.output),
        Command::Ui(args) => ui::run(args, cli.output),
        Command::Dev(args) => dev::run(args, cli.output),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // A refused publish shows up as a time-out or "no host answered": the refusal
            // is the cause, so it comes first.
            match ctl::refused_by_server() {
                Some(refused) => {
                    eprintln!("error: {refused}\n(the command then failed: {error:#})")
                }
                None => eprintln!("error: {error:#}"),
            }
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr so stdout stays clean for data. Actor log lines are shown by default;
/// `RUST_LOG` overrides the filter.
fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn,actor=info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
