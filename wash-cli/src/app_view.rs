//! Text forms of `wash app` output: one line per app, entity or link, the reason next
//! to anything that is not running. (`--output json` prints the same data as stored.)

use nimbus_core::claims::format_unix_time;
use nimbus_deploy::{
    AppRecord, AppStatus, AppSummary, AppVersion, Change, Desired, EntityStatus, State,
    StatusReport, now_unix,
};

/// `wash app list`.
pub fn list_text(lattice: &str, apps: &[AppSummary]) -> String {
    if apps.is_empty() {
        return format!(
            "no apps in lattice `{lattice}`; deploy one with `wash app deploy MANIFEST`"
        );
    }
    let mut text = format!("{:<20} {:<12} {:<12} REASON", "APP", "VERSION", "STATE");
    for app in apps {
        let version = app.record.desired.version().unwrap_or("-");
        let (state, reason) = match &app.status {
            Some(s) if status_is_current(&app.record, s) => {
                (s.state.as_str(), s.reason.clone().unwrap_or_default())
            }
            _ => ("pending", "not reconciled yet".to_string()),
        };
        text.push_str(&format!(
            "\n{:<20} {:<12} {:<12} {}",
            app.record.app, version, state, reason
        ));
    }
    text
}

/// Whether a status describes the record's current desired state.
fn status_is_current(record: &AppRecord, status: &AppStatus) -> bool {
    match &record.desired {
        Desired::Deployed { version } => status.version.as_deref() == Some(version),
        Desired::Undeployed { .. } => status.version.is_none(),
    }
}

fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

fn entity_line(kind: &str, e: &EntityStatus) -> String {
    let serving = e.running.iter().filter(|p| p.current).count();
    let hosts: Vec<String> = e
        .running
        .iter()
        .map(|p| {
            if p.current {
                short(&p.host_id).to_string()
            } else {
                format!("{} (old)", short(&p.host_id))
            }
        })
        .collect();
    let mut line = format!(
        "  {kind:<8} {:<14} {serving}/{} x{:<3} {:<12}",
        e.name,
        e.desired_replicas,
        e.desired_instances,
        e.state.as_str()
    );
    if !hosts.is_empty() {
        line.push_str(&format!(" on {}", hosts.join(", ")));
    }
    if let Some(reason) = &e.reason {
        line.push_str(&format!("\n           why: {reason}"));
    }
    line
}

/// `wash app status`.
pub fn status_text(report: &StatusReport) -> String {
    let record = &report.record;
    let mut text = match &record.desired {
        Desired::Deployed { version } => format!("app {} version {version}", record.app),
        Desired::Undeployed { .. } => format!("app {} (undeployed)", record.app),
    };
    match &report.reconciler {
        Some(lease) => text.push_str(&format!(
            "\nreconciler: host {} (renewed {} s ago)",
            lease.holder,
            now_unix().saturating_sub(lease.renewed)
        )),
        None => text.push_str(
            "\nreconciler: none holds the lease; start a host with `wash up --nats-url ...`",
        ),
    }
    let Some(status) = &report.status else {
        text.push_str("\nstate: not reconciled yet");
        return text;
    };
    if !status_is_current(record, status) {
        text.push_str("\nstate: the reconciler has not reported on the current desired state yet; last report:");
    }
    text.push_str(&format!(
        "\nstate: {} since {}",
        status.state.as_str(),
        format_unix_time(status.since)
    ));
    if let Some(reason) = &status.reason {
        text.push_str(&format!("\nwhy:   {reason}"));
    }
    for actor in &status.actors {
        text.push('\n');
        text.push_str(&entity_line("actor", actor));
    }
    for provider in &status.providers {
        text.push('\n');
        text.push_str(&entity_line("provider", provider));
    }
    for link in &status.links {
        text.push_str(&format!(
            "\n  link     {} -> {} ({} {}) {}",
            link.actor,
            link.provider,
            link.contract_id,
            link.link_name,
            link.state.as_str()
        ));
        if let Some(reason) = &link.reason {
            text.push_str(&format!("\n           why: {reason}"));
        }
    }
    text
}

/// `wash app history`.
pub fn history_text(record: &AppRecord, versions: &[AppVersion]) -> String {
    let mut text = format!("app {}\nversions:", record.app);
    let current = record.desired.version();
    for v in versions {
        let mark = if Some(v.version.as_str()) == current {
            " (desired)"
        } else {
            ""
        };
        text.push_str(&format!(
            "\n  {:<12} digest {} stored {}{mark}",
            v.version,
            v.digest,
            format_unix_time(v.created_at)
        ));
    }
    text.push_str("\nchanges:");
    for h in &record.history {
        let what = match h.change {
            Change::Deployed => "deployed",
            Change::RolledBack => "rolled back to",
            Change::Undeployed => "undeployed",
        };
        text.push_str(&format!(
            "\n  {} {what} {}",
            format_unix_time(h.at),
            h.version.as_deref().unwrap_or("")
        ));
    }
    text
}

/// `wash app deploy`, `rollback` and `undeploy`.
pub fn applied_text(
    app: &str,
    version: &str,
    changed: bool,
    report: Option<&StatusReport>,
) -> String {
    let mut text = match (version.is_empty(), changed) {
        (true, true) => format!("app `{app}` undeployed (the desired state is: nothing)"),
        (true, false) => format!("app `{app}` was already undeployed"),
        (false, true) => format!("app `{app}` deployed: version {version} is the desired state"),
        (false, false) => {
            format!("app `{app}` deployed: version {version} was the desired state already")
        }
    };
    match report {
        Some(r) => {
            text.push('\n');
            text.push_str(&status_text(r));
        }
        None => text.push_str("\n(not waiting; `wash app status` shows progress)"),
    }
    if let Some(s) = report.and_then(|r| r.status.as_ref())
        && s.state == State::Running
    {
        text.push_str("\nready");
    }
    text
}
