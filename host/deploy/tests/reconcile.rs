//! The deployment crate against a real nats-server and real hosts (`nimbus_lattice::Host`
//! values in this process): desired state in JetStream KV, placement by the leased
//! reconciler, reasons for what cannot run, undeploy that touches only its own, and a
//! rolling upgrade under load. Killing processes (`kill -9`) is tested with real `wash up`
//! processes in wash-cli's tests.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nimbus_app::Manifest;
use nimbus_core::claims::{self, ActorClaimsParams};
use nimbus_core::keys::{KeyKind, KeyPair};
use nimbus_ctl::CtlClient;
use nimbus_deploy::{
    ActorArtifact, AppStatus, Apps, BucketSettings, DeployError, Draft, ReconcilerConfig,
    ReconcilerHandle, State,
};
use nimbus_lattice::{Host, NatsConfig};
use nimbus_runtime::{Runtime, RuntimeConfig};
use nimbus_tests::auth::Role;
use nimbus_tests::servers::NatsServer;

fn runtime() -> Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            Runtime::new(RuntimeConfig {
                max_total_instances: 200,
                max_memory_bytes: 16 * 1024 * 1024,
                ..RuntimeConfig::default()
            })
            .unwrap()
        })
        .clone()
}

/// One test lattice: a nats-server, hosts, reconcilers, and the keys that sign the apps'
/// actors (one module key per actor name, so versions keep their actor's identity).
struct Lattice {
    nats: NatsServer,
    name: String,
    seed: String,
    dir: tempfile::TempDir,
    account: KeyPair,
    modules: std::sync::Mutex<BTreeMap<String, KeyPair>>,
}

impl Lattice {
    fn new(test: &str) -> Self {
        Lattice {
            nats: NatsServer::start(),
            name: format!("{test}-{}", &nimbus_core::wire::new_uuid()[..8]),
            seed: KeyPair::generate(KeyKind::Cluster).seed().unwrap(),
            dir: tempfile::tempdir().unwrap(),
            account: KeyPair::generate(KeyKind::Account),
            modules: std::sync::Mutex::new(BTreeMap::new()),
        }
    }

    /// A client with `wash`'s role: what deploys, reads status and sends control commands.
    async fn client(&self) -> async_nats::Client {
        self.nats.connect_as(Role::Wash).await
    }

    /// The NATS settings of a host of this lattice (host creds; provider creds for the
    /// providers it starts).
    fn host_nats(&self) -> NatsConfig {
        NatsConfig {
            credentials_file: self.nats.creds(Role::Host),
            provider_credentials_file: self.nats.creds(Role::Provider),
            ..NatsConfig::url(self.nats.url())
        }
    }

    async fn host(&self, labels: &[(&str, &str)]) -> Host {
        let mut builder = Host::builder()
            .runtime(runtime())
            .cluster_seed(self.seed.clone())
            .lattice(self.name.clone())
            .rpc_timeout(Duration::from_secs(2))
            .nats(self.host_nats());
        for (k, v) in labels {
            builder = builder.label(*k, *v);
        }
        builder.build().await.unwrap()
    }

    /// A reconciler with short timers (rounds every 200 ms, lease TTL 3 s).
    async fn reconciler(&self, holder: &str) -> ReconcilerHandle {
        let mut config = ReconcilerConfig::new(self.name.clone(), holder);
        config.interval = Duration::from_millis(200);
        config.ping_timeout = Duration::from_millis(300);
        config.host_lost_after = Duration::from_secs(2);
        config.lease_ttl = Duration::from_secs(3);
        config.command_timeout = Duration::from_secs(15);
        config.backoff_base = Duration::from_millis(500);
        // The reconciler runs beside a host, on a connection with the host's role.
        nimbus_deploy::start(self.nats.connect_as(Role::Host).await, config)
            .await
            .unwrap()
    }

    async fn apps(&self) -> Apps {
        Apps::open(self.client().await, &self.name, BucketSettings::default())
            .await
            .unwrap()
    }

    fn ctl(&self, client: async_nats::Client) -> CtlClient {
        CtlClient::new(client, self.name.clone()).with_timeout(Duration::from_millis(500))
    }

    /// Signs fixture `fixture` as actor `actor` of the tests (same key every time).
    fn artifact(&self, actor: &str, fixture: &str) -> ActorArtifact {
        let source = nimbus_tests::actor_wasm(fixture);
        let mut modules = self.modules.lock().unwrap();
        let module = modules
            .entry(actor.to_string())
            .or_insert_with(|| KeyPair::generate(KeyKind::Module));
        let params = ActorClaimsParams {
            name: Some(actor.into()),
            caps: Some(vec![]),
            call_alias: Some(format!("{}/{actor}", self.name)),
            rev: Some(1),
            ..ActorClaimsParams::default()
        };
        let signed = claims::sign_actor(&source, &params, &self.account, module).unwrap();
        let sha = nimbus_deploy::sha256_hex(&source);
        let path = self
            .dir
            .path()
            .join(format!("{actor}-{}-{fixture}.wasm", &sha[..8]));
        std::fs::write(&path, &signed).unwrap();
        ActorArtifact {
            actor_id: module.public_key(),
            module_ref: path.display().to_string(),
            source_sha256: sha,
        }
    }

    /// Forgets the module key of `actor`: its next artifact is signed with a new key (a
    /// new actor id, as after re-keying an actor).
    fn rekey(&self, actor: &str) {
        self.modules.lock().unwrap().remove(actor);
    }

    /// A draft of `yaml` whose actors are `(name, fixture)`.
    fn draft(&self, yaml: &str, actors: &[(&str, &str)], version: Option<&str>) -> Draft {
        let manifest = Manifest::parse(yaml).unwrap();
        Draft {
            manifest,
            actors: actors
                .iter()
                .map(|(name, fixture)| (name.to_string(), self.artifact(name, fixture)))
                .collect(),
            version: version.map(str::to_string),
        }
    }
}

/// Polls the app's status until `done`, failing with the last status after `limit`.
async fn wait_status(
    apps: &Apps,
    app: &str,
    limit: Duration,
    done: impl Fn(&AppStatus) -> bool,
) -> AppStatus {
    let deadline = Instant::now() + limit;
    let mut last = None;
    while Instant::now() < deadline {
        if let Ok(report) = apps.status(app).await
            && let Some(status) = report.status
        {
            if done(&status) {
                return status;
            }
            last = Some(status);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("app {app} did not reach the wanted status within {limit:?}; last: {last:#?}");
}

fn running(version: &str) -> impl Fn(&AppStatus) -> bool + '_ {
    move |s| s.state == State::Running && s.version.as_deref() == Some(version)
}

fn hosts_of(status: &AppStatus, actor: &str) -> Vec<String> {
    let mut hosts: Vec<String> = status
        .actors
        .iter()
        .find(|a| a.name == actor)
        .unwrap()
        .running
        .iter()
        .map(|p| p.host_id.clone())
        .collect();
    hosts.sort();
    hosts
}

const ECHO_APP: &str = "name: echoes\nactors:\n  - { name: echo, path: echo.wasm, replicas: 2 }\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_stores_versions_and_refuses_other_content_under_a_stored_version() {
    let lattice = Lattice::new("deploy-versions");
    let apps = lattice.apps().await;
    let first = apps
        .deploy(lattice.draft(ECHO_APP, &[("echo", "echo")], None))
        .await
        .unwrap();
    assert_eq!(
        (first.version.as_str(), first.new_version, first.changed),
        ("v1", true, true)
    );
    // The same content again: same version, nothing changes.
    let again = apps
        .deploy(lattice.draft(ECHO_APP, &[("echo", "echo")], None))
        .await
        .unwrap();
    assert_eq!(
        (again.version.as_str(), again.new_version, again.changed),
        ("v1", false, false)
    );
    // Other content under the stored version: refused, and the desired state is untouched.
    let other = "name: echoes\nactors:\n  - { name: echo, path: echo.wasm, replicas: 3 }\n";
    let err = apps
        .deploy(lattice.draft(other, &[("echo", "echo")], Some("v1")))
        .await
        .unwrap_err();
    assert!(matches!(err, DeployError::VersionConflict { .. }), "{err}");
    assert!(err.to_string().contains("give a new version"), "{err}");
    let (record, versions) = apps.history("echoes").await.unwrap();
    assert_eq!(record.desired.version(), Some("v1"));
    assert_eq!(versions.len(), 1);
    // New content gets the next number; an explicit version is kept as given.
    let second = apps
        .deploy(lattice.draft(other, &[("echo", "echo")], None))
        .await
        .unwrap();
    assert_eq!(second.version, "v2");
    let named = apps
        .deploy(lattice.draft(
            ECHO_APP.replace("replicas: 2", "replicas: 1").as_str(),
            &[("echo", "echo")],
            Some("1.0.0"),
        ))
        .await
        .unwrap();
    assert_eq!(named.version, "1.0.0");
    // Rollback goes to the version before the current one; undeploy keeps the history.
    let (_, back) = apps.rollback("echoes", None).await.unwrap();
    assert_eq!(back, "v2");
    let (record, changed) = apps.undeploy("echoes").await.unwrap();
    assert!(changed);
    assert_eq!(record.desired.version(), None);
    let (record, versions) = apps.history("echoes").await.unwrap();
    assert_eq!(
        versions
            .iter()
            .map(|v| v.version.as_str())
            .collect::<Vec<_>>(),
        ["v1", "v2", "1.0.0"]
    );
    assert_eq!(record.history.len(), 5, "{:#?}", record.history);
    // Bad names never reach a key.
    let err = apps
        .deploy(lattice.draft(ECHO_APP, &[("echo", "echo")], Some("1..2")))
        .await
        .unwrap_err();
    assert!(matches!(err, DeployError::InvalidName { .. }), "{err}");
    assert!(matches!(
        apps.status("nope").await.unwrap_err(),
        DeployError::NotFound { .. }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_places_replicas_on_distinct_hosts_and_reports_them_running() {
    let lattice = Lattice::new("deploy-replicas");
    let hosts = [
        lattice.host(&[("zone", "a")]).await,
        lattice.host(&[("zone", "b")]).await,
        lattice.host(&[("zone", "b")]).await,
    ];
    let reconciler = lattice.reconciler("r1").await;
    let apps = lattice.apps().await;
    let yaml = "name: spread\nactors:\n  - name: echo\n    path: echo.wasm\n    instances: 2\n    replicas: 2\n    spread:\n      - { labels: { zone: a } }\n      - { labels: { zone: b } }\n";
    apps.deploy(lattice.draft(yaml, &[("echo", "echo")], None))
        .await
        .unwrap();
    let status = wait_status(&apps, "spread", Duration::from_secs(20), running("v1")).await;
    let placed = hosts_of(&status, "echo");
    assert_eq!(placed.len(), 2, "{status:#?}");
    assert!(
        placed.contains(&hosts[0].id().to_string()),
        "one replica in zone a: {status:#?}"
    );
    let actor = &status.actors[0];
    assert!(actor.running.iter().all(|p| p.instances == 2 && p.current));
    // The hosts agree: each runs two instances, annotated as the app's.
    let client = lattice.client().await;
    let ctl = lattice.ctl(client);
    let actor_id = actor.id.clone().unwrap();
    let inventories = ctl.find_actor(&actor_id).await.unwrap();
    assert_eq!(inventories.len(), 2);
    for inv in &inventories {
        let a = inv.actors.iter().find(|a| a.id == actor_id).unwrap();
        assert_eq!(a.instances.len(), 2);
        assert_eq!(
            a.instances[0].annotations[nimbus_deploy::names::ANNOTATION_APP],
            "spread"
        );
    }
    reconciler.stop().await;
    for h in hosts {
        h.stop().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_with_labels_no_host_matches_reports_the_reason_and_starts_nothing() {
    let lattice = Lattice::new("deploy-labels");
    let host = lattice.host(&[("zone", "a")]).await;
    let reconciler = lattice.reconciler("r1").await;
    let apps = lattice.apps().await;
    let yaml = "name: nowhere\nactors:\n  - { name: echo, path: echo.wasm, host_labels: { zone: mars } }\n";
    apps.deploy(lattice.draft(yaml, &[("echo", "echo")], None))
        .await
        .unwrap();
    let status = wait_status(&apps, "nowhere", Duration::from_secs(20), |s| {
        s.state == State::Failed
    })
    .await;
    let reason = status.actors[0].reason.clone().unwrap_or_default();
    assert!(
        reason.contains("no host matches labels zone=mars"),
        "{reason}"
    );
    assert!(
        reason.contains("zone=a"),
        "the reason lists what hosts carry: {reason}"
    );
    assert!(
        status
            .reason
            .unwrap_or_default()
            .contains("actor echo is failed")
    );
    let inventory = lattice
        .ctl(lattice.client().await)
        .get_inventory(host.id())
        .await
        .unwrap();
    assert!(inventory.actors.is_empty());
    reconciler.stop().await;
    host.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_of_an_actor_the_host_refuses_reports_the_hosts_reason() {
    let lattice = Lattice::new("deploy-refused");
    let host = lattice.host(&[]).await;
    let reconciler = lattice.reconciler("r1").await;
    let apps = lattice.apps().await;
    let mut draft = lattice.draft(
        ECHO_APP.replace("replicas: 2", "replicas: 1").as_str(),
        &[("echo", "echo")],
        None,
    );
    // The module the version names is gone from the disk the host reads.
    let artifact = draft.actors.get_mut("echo").unwrap();
    artifact.module_ref = lattice
        .dir
        .path()
        .join("missing.wasm")
        .display()
        .to_string();
    apps.deploy(draft).await.unwrap();
    let status = wait_status(&apps, "echoes", Duration::from_secs(20), |s| {
        s.actors[0]
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("last start failed"))
    })
    .await;
    let reason = status.actors[0].reason.clone().unwrap();
    assert!(reason.contains("missing.wasm"), "{reason}");
    assert_ne!(status.state, State::Running);
    reconciler.stop().await;
    host.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undeploy_stops_only_what_the_app_started() {
    let lattice = Lattice::new("deploy-undeploy");
    let hosts = [lattice.host(&[]).await, lattice.host(&[]).await];
    // Started by hand, not by any app.
    let manual = {
        let artifact = lattice.artifact("manual", "echo");
        hosts[0]
            .start_actor(PathBuf::from(&artifact.module_ref), 1)
            .await
            .unwrap()
    };
    let reconciler = lattice.reconciler("r1").await;
    let apps = lattice.apps().await;
    let one = "name: one\nactors:\n  - { name: shared, path: echo.wasm, replicas: 2 }\n";
    let two = "name: two\nactors:\n  - { name: shared, path: echo.wasm, replicas: 2 }\n";
    // Both apps run the same actor key on the same hosts.
    apps.deploy(lattice.draft(one, &[("shared", "echo")], None))
        .await
        .unwrap();
    apps.deploy(lattice.draft(two, &[("shared", "echo")], None))
        .await
        .unwrap();
    wait_status(&apps, "one", Duration::from_secs(20), running("v1")).await;
    let two_status = wait_status(&apps, "two", Duration::from_secs(20), running("v1")).await;
    let shared = two_status.actors[0].id.clone().unwrap();
    apps.undeploy("one").await.unwrap();
    wait_status(&apps, "one", Duration::from_secs(20), |s| {
        s.state == State::Undeployed
    })
    .await;
    let ctl = lattice.ctl(lattice.client().await);
    for host in &hosts {
        let inventory = ctl.get_inventory(host.id()).await.unwrap();
        let a = inventory
            .actors
            .iter()
            .find(|a| a.id == shared)
            .expect("app two keeps its actor");
        assert!(
            a.instances
                .iter()
                .all(|i| i.annotations[nimbus_deploy::names::ANNOTATION_APP] == "two"),
            "{a:#?}"
        );
    }
    let inventory = ctl.get_inventory(hosts[0].id()).await.unwrap();
    assert!(
        inventory.actors.iter().any(|a| a.id == manual),
        "the manual start stays"
    );
    let two_now = apps.status("two").await.unwrap().status.unwrap();
    assert_eq!(two_now.state, State::Running, "{two_now:#?}");
    reconciler.stop().await;
    for h in hosts {
        h.stop().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_rolling_upgrade_under_load_fails_no_call_and_rollback_too() {
    let lattice = Lattice::new("deploy-upgrade");
    let hosts = [lattice.host(&[]).await, lattice.host(&[]).await];
    let reconciler = lattice.reconciler("r1").await;
    let apps = lattice.apps().await;
    let yaml =
        "name: rolling\nactors:\n  - { name: echo, path: echo.wasm, instances: 2, replicas: 2 }\n";
    apps.deploy(lattice.draft(yaml, &[("echo", "echo")], None))
        .await
        .unwrap();
    let status = wait_status(&apps, "rolling", Duration::from_secs(20), running("v1")).await;
    let actor_id = status.actors[0].id.clone().unwrap();

    // A steady load of calls that both modules answer.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let ctl = CtlClient::new(lattice.client().await, lattice.name.clone())
        .with_timeout(Duration::from_secs(5));
    let load = {
        let (stop, ok, failed, ctl, seed, actor) = (
            stop.clone(),
            ok.clone(),
            failed.clone(),
            ctl.clone(),
            lattice.seed.clone(),
            actor_id.clone(),
        );
        tokio::spawn(async move {
            let mut errors = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                match ctl
                    .call_actor(&actor, "Echo", b"hi".to_vec(), Some(&seed))
                    .await
                {
                    Ok(reply) if reply == b"hi" => ok.fetch_add(1, Ordering::Relaxed),
                    Ok(reply) => {
                        errors.push(format!("wrong reply {reply:?}"));
                        failed.fetch_add(1, Ordering::Relaxed)
                    }
                    Err(e) => {
                        errors.push(e.to_string());
                        failed.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
            errors
        })
    };
    // v2: another module (WASI echo, which also answers `Time`) under the same actor key.
    apps.deploy(lattice.draft(yaml, &[("echo", "wasi-echo")], None))
        .await
        .unwrap();
    let upgraded = wait_status(&apps, "rolling", Duration::from_secs(30), running("v2")).await;
    assert!(
        upgraded.actors[0]
            .running
            .iter()
            .all(|p| p.current && p.id == actor_id)
    );
    // The new module answers on every host.
    for host in &hosts {
        let reply = host.call_actor(&actor_id, "Time", Vec::new()).await;
        assert!(reply.is_ok(), "v2 answers Time on {}: {reply:?}", host.id());
    }
    // Roll back to v1 the same way.
    let (_, back) = apps.rollback("rolling", None).await.unwrap();
    assert_eq!(back, "v1");
    wait_status(&apps, "rolling", Duration::from_secs(30), running("v1")).await;
    for host in &hosts {
        let reply = host.call_actor(&actor_id, "Count", Vec::new()).await;
        assert!(
            reply.is_ok(),
            "v1 answers Count again on {}: {reply:?}",
            host.id()
        );
    }
    stop.store(true, Ordering::Relaxed);
    let errors = load.await.unwrap();
    assert!(
        ok.load(Ordering::Relaxed) > 20,
        "the load ran: {}",
        ok.load(Ordering::Relaxed)
    );
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "failed calls during the upgrade: {errors:?}"
    );
    reconciler.stop().await;
    for h in hosts {
        h.stop().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_survives_a_stopped_host_and_a_stopped_reconciler() {
    let lattice = Lattice::new("deploy-heal");
    let mut hosts = vec![
        lattice.host(&[]).await,
        lattice.host(&[]).await,
        lattice.host(&[]).await,
    ];
    let first = lattice.reconciler("r1").await;
    let second = lattice.reconciler("r2").await;
    let apps = lattice.apps().await;
    apps.deploy(lattice.draft(ECHO_APP, &[("echo", "echo")], None))
        .await
        .unwrap();
    let status = wait_status(&apps, "echoes", Duration::from_secs(20), running("v1")).await;
    let before = hosts_of(&status, "echo");
    // Stop a host that runs a replica: its share goes to the third host.
    let victim = hosts
        .iter()
        .position(|h| before.contains(&h.id().to_string()))
        .unwrap();
    let victim = hosts.remove(victim);
    let victim_id = victim.id().to_string();
    victim.stop().await.unwrap();
    let healed = wait_status(&apps, "echoes", Duration::from_secs(20), |s| {
        s.state == State::Running && !hosts_of(s, "echo").contains(&victim_id)
    })
    .await;
    assert_eq!(hosts_of(&healed, "echo").len(), 2);
    // The reconciler that holds the lease stops; the other one takes over.
    let holder = apps
        .status("echoes")
        .await
        .unwrap()
        .reconciler
        .unwrap()
        .holder;
    let (gone, stays) = if holder == "r1" {
        (first, second)
    } else {
        (second, first)
    };
    gone.stop().await;
    let yaml = ECHO_APP.replace("replicas: 2", "replicas: 1");
    apps.deploy(lattice.draft(&yaml, &[("echo", "echo")], None))
        .await
        .unwrap();
    let scaled = wait_status(&apps, "echoes", Duration::from_secs(20), running("v2")).await;
    assert_ne!(scaled.reconciler, holder);
    assert_eq!(hosts_of(&scaled, "echo").len(), 1);
    stays.stop().await;
    for h in hosts {
        h.stop().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_of_a_provider_no_host_can_start_reports_the_hosts_refusal() {
    let lattice = Lattice::new("deploy-provider");
    let host = lattice.host(&[]).await;
    let reconciler = lattice.reconciler("r1").await;
    let apps = lattice.apps().await;
    let yaml = "name: broken\nproviders:\n  - { name: cache, path: /nonexistent/kv-provider, contract: 'wasmcloud:keyvalue' }\n";
    apps.deploy(lattice.draft(yaml, &[], None)).await.unwrap();
    let status = wait_status(&apps, "broken", Duration::from_secs(20), |s| {
        s.providers[0]
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("last start failed"))
    })
    .await;
    let reason = status.providers[0].reason.clone().unwrap();
    assert!(reason.contains("/nonexistent/kv-provider"), "{reason}");
    assert_ne!(status.state, State::Running);
    reconciler.stop().await;
    host.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_resumes_when_every_host_is_restarted() {
    let lattice = Lattice::new("deploy-restart");
    let apps = lattice.apps().await;
    {
        let hosts = [lattice.host(&[]).await, lattice.host(&[]).await];
        let reconciler = lattice.reconciler("r1").await;
        apps.deploy(lattice.draft(ECHO_APP, &[("echo", "echo")], None))
            .await
            .unwrap();
        wait_status(&apps, "echoes", Duration::from_secs(20), running("v1")).await;
        reconciler.stop().await;
        for h in hosts {
            h.stop().await.unwrap();
        }
    }
    // New hosts, a new reconciler: the desired state in JetStream brings the app back.
    let hosts = [lattice.host(&[]).await, lattice.host(&[]).await];
    let reconciler = lattice.reconciler("r2").await;
    let status = wait_status(&apps, "echoes", Duration::from_secs(20), |s| {
        s.state == State::Running && s.reconciler == "r2"
    })
    .await;
    let mut expected: Vec<String> = hosts.iter().map(|h| h.id().to_string()).collect();
    expected.sort();
    assert_eq!(hosts_of(&status, "echo"), expected);
    reconciler.stop().await;
    for h in hosts {
        h.stop().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_of_a_version_without_an_actor_stops_that_actor() {
    let lattice = Lattice::new("deploy-orphan");
    let host = lattice.host(&[]).await;
    let reconciler = lattice.reconciler("r1").await;
    let apps = lattice.apps().await;
    let both =
        "name: pair\nactors:\n  - { name: keep, path: a.wasm }\n  - { name: drop, path: b.wasm }\n";
    apps.deploy(lattice.draft(both, &[("keep", "echo"), ("drop", "echo")], None))
        .await
        .unwrap();
    let status = wait_status(&apps, "pair", Duration::from_secs(20), running("v1")).await;
    let dropped = status.actors[1].id.clone().unwrap();
    let kept = status.actors[0].id.clone().unwrap();
    let one = "name: pair\nactors:\n  - { name: keep, path: a.wasm }\n";
    apps.deploy(lattice.draft(one, &[("keep", "echo")], None))
        .await
        .unwrap();
    wait_status(&apps, "pair", Duration::from_secs(20), running("v2")).await;
    let ctl = lattice.ctl(lattice.client().await);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let inventory = ctl.get_inventory(host.id()).await.unwrap();
        let ids: Vec<&str> = inventory.actors.iter().map(|a| a.id.as_str()).collect();
        if !ids.contains(&dropped.as_str()) {
            assert!(ids.contains(&kept.as_str()), "{ids:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "actor `drop` still runs: {ids:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    reconciler.stop().await;
    host.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_links_with_the_running_providers_key_and_drops_links_a_new_version_drops() {
    use nimbus_provider_keyvalue::KeyValueProvider;
    use nimbus_provider_sdk::Provider;
    let lattice = Lattice::new("deploy-links");
    let provider_key = KeyPair::generate(KeyKind::Service).public_key();
    let host = Host::builder()
        .runtime(runtime())
        .cluster_seed(lattice.seed.clone())
        .lattice(lattice.name.clone())
        .nats(lattice.host_nats())
        .provider_factory(
            "builtin:keyvalue",
            provider_key.clone(),
            Arc::new(|| Arc::new(KeyValueProvider::new()) as Arc<dyn Provider>),
        )
        .build()
        .await
        .unwrap();
    let reconciler = lattice.reconciler("r1").await;
    let apps = lattice.apps().await;
    let linked = "name: linked\nactors:\n  - { name: echo, path: echo.wasm, capabilities: ['wasmcloud:keyvalue'] }\nproviders:\n  - { name: kv, builtin: keyvalue }\nlinks:\n  - { actor: echo, provider: kv, values: { backend: memory } }\n";
    apps.deploy(lattice.draft(linked, &[("echo", "echo")], None))
        .await
        .unwrap();
    let status = wait_status(&apps, "linked", Duration::from_secs(20), running("v1")).await;
    assert_eq!(
        status.providers[0].id.as_deref(),
        Some(provider_key.as_str())
    );
    assert_eq!(status.links[0].state, State::Running);
    let actor_id = status.actors[0].id.clone().unwrap();
    let ctl = lattice.ctl(lattice.client().await);
    let links = ctl.get_links().await.unwrap().links;
    let link = links
        .iter()
        .find(|l| l.actor_id == actor_id)
        .expect("the link is put");
    assert_eq!(link.provider_id, provider_key);
    assert_eq!(link.values["backend"], "memory");
    // v2 keeps the provider but drops the link: the link goes, the provider stays.
    let unlinked = linked.split("links:").next().unwrap().to_string();
    apps.deploy(lattice.draft(&unlinked, &[("echo", "echo")], None))
        .await
        .unwrap();
    wait_status(&apps, "linked", Duration::from_secs(20), running("v2")).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while ctl
        .get_links()
        .await
        .unwrap()
        .links
        .iter()
        .any(|l| l.actor_id == actor_id)
    {
        assert!(Instant::now() < deadline, "the dropped link is still there");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let inventory = ctl.get_inventory(host.id()).await.unwrap();
    assert_eq!(inventory.providers.len(), 1, "{inventory:#?}");
    reconciler.stop().await;
    host.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_of_an_actor_whose_claims_the_host_refuses_says_so() {
    let lattice = Lattice::new("deploy-claims");
    let host = lattice.host(&[]).await;
    let reconciler = lattice.reconciler("r1").await;
    let apps = lattice.apps().await;
    let mut draft = lattice.draft(
        "name: expired\nactors:\n  - { name: echo, path: echo.wasm }\n",
        &[("echo", "echo")],
        None,
    );
    // Re-sign the module with claims that expired in 1970.
    let source = nimbus_tests::actor_wasm("echo");
    let module = KeyPair::generate(KeyKind::Module);
    let params = ActorClaimsParams {
        name: Some("echo".into()),
        expires: Some(claims::TimeSpec::At(1)),
        ..ActorClaimsParams::default()
    };
    let signed = claims::sign_actor(&source, &params, &lattice.account, &module).unwrap();
    let path = lattice.dir.path().join("expired.wasm");
    std::fs::write(&path, signed).unwrap();
    let artifact = draft.actors.get_mut("echo").unwrap();
    artifact.actor_id = module.public_key();
    artifact.module_ref = path.display().to_string();
    apps.deploy(draft).await.unwrap();
    let status = wait_status(&apps, "expired", Duration::from_secs(20), |s| {
        s.actors[0]
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("last start failed"))
    })
    .await;
    let reason = status.actors[0].reason.clone().unwrap();
    assert!(reason.to_lowercase().contains("expired"), "{reason}");
    reconciler.stop().await;
    host.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_of_a_provider_that_keeps_crashing_reports_it_and_backs_off() {
    use nimbus_lattice::SupervisorLauncher;
    use nimbus_supervisor::RestartPolicy;
    let lattice = Lattice::new("deploy-crash");
    let crasher = KeyPair::generate(KeyKind::Service).public_key();
    let host = Host::builder()
        .runtime(runtime())
        .cluster_seed(lattice.seed.clone())
        .lattice(lattice.name.clone())
        .nats(lattice.host_nats())
        .provider_executable("/bin/false", crasher, "nimbus:crash", "/bin/false")
        .process_launcher(Arc::new(SupervisorLauncher {
            restart: RestartPolicy {
                initial_backoff: Duration::from_millis(50),
                max_backoff: Duration::from_millis(100),
                max_restarts: Some(2),
                ..RestartPolicy::default()
            },
        }))
        .build()
        .await
        .unwrap();
    let reconciler = lattice.reconciler("r1").await;
    let apps = lattice.apps().await;
    let yaml = "name: crashy\nproviders:\n  - { name: crash, path: /bin/false, contract: 'nimbus:crash' }\n";
    apps.deploy(lattice.draft(yaml, &[], None)).await.unwrap();
    let status = wait_status(&apps, "crashy", Duration::from_secs(30), |s| {
        s.providers[0]
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("provider stopped"))
    })
    .await;
    let reason = status.providers[0].reason.clone().unwrap();
    // The supervisor's words: "gave up after N restarts" or "exited (...) and is not restarted".
    assert!(
        reason.contains("gave up") || reason.contains("exited"),
        "{reason}"
    );
    assert_ne!(status.state, State::Running, "{status:#?}");
    // Retried with a growing back-off (500 ms, 1 s, 2 s, ... here), not every round (250 ms).
    let client = lattice.client().await;
    let mut events = client
        .subscribe(format!("wasmbus.evt.{}", lattice.name))
        .await
        .unwrap();
    let mut starts = 0;
    let window = tokio::time::Instant::now() + Duration::from_secs(5);
    while let Ok(Some(message)) =
        tokio::time::timeout_at(window, futures_util::StreamExt::next(&mut events)).await
    {
        if String::from_utf8_lossy(&message.payload).contains("provider_started") {
            starts += 1;
        }
    }
    assert!(starts <= 5, "{starts} starts in 5 s: no back-off");
    reconciler.stop().await;
    host.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_of_a_new_actor_key_starts_the_new_replicas_before_stopping_the_old() {
    let lattice = Lattice::new("deploy-rekey");
    let hosts = [lattice.host(&[]).await, lattice.host(&[]).await];
    let reconciler = lattice.reconciler("r1").await;
    let apps = lattice.apps().await;
    apps.deploy(lattice.draft(ECHO_APP, &[("echo", "echo")], None))
        .await
        .unwrap();
    let old = wait_status(&apps, "echoes", Duration::from_secs(20), running("v1")).await;
    let old_id = old.actors[0].id.clone().unwrap();
    lattice.rekey("echo");
    let draft = lattice.draft(ECHO_APP, &[("echo", "echo")], Some("rekeyed"));
    let new_id = draft.actors["echo"].actor_id.clone();
    assert_ne!(old_id, new_id);
    apps.deploy(draft).await.unwrap();
    // Watch the hosts: the old key may lose a replica only once the new one runs on both.
    let ctl = lattice.ctl(lattice.client().await);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut new_everywhere = false;
    loop {
        let (mut olds, mut news) = (0, 0);
        for host in &hosts {
            let inventory = ctl.get_inventory(host.id()).await.unwrap();
            olds += inventory.actors.iter().filter(|a| a.id == old_id).count();
            news += inventory.actors.iter().filter(|a| a.id == new_id).count();
        }
        new_everywhere |= news == 2;
        assert!(
            olds == 2 || new_everywhere,
            "an old replica stopped before the new ones ran (old {olds}, new {news})"
        );
        if olds == 0 && news == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "old {olds}, new {news}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let status = wait_status(&apps, "echoes", Duration::from_secs(20), running("rekeyed")).await;
    assert!(status.actors[0].running.iter().all(|p| p.id == new_id));
    reconciler.stop().await;
    for h in hosts {
        h.stop().await.unwrap();
    }
}
