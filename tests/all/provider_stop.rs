//! Who may stop a provider process a host started (issue 14): only its host. A shutdown
//! request published on the provider's subject by anyone else is refused and the provider
//! serves on; a provider that stops anyway without its host asking (a request that names
//! its host, a signal, exit code 0) is restarted and serves every link again; the host's
//! own stop still stops it for good.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nimbus_core::keys::{KeyKind, KeyPair};
use nimbus_core::link::LinkDefinition;
use nimbus_core::subjects::Subjects;
use nimbus_lattice::Host;
use nimbus_tests::servers::NatsServer;

use crate::lattice_support::{
    builder, cluster_seed, echo_actor, forward, lattice_name, provider_key, started_pids,
    wait_event, wait_for_starts,
};

const CONTRACT: &str = nimbus_echo_provider::CONTRACT_ID;
/// Generous: the machine is shared, and a restart includes a back-off and a NATS connect.
const WAIT: Duration = Duration::from_secs(30);

/// The echo provider binary behind a wrapper that appends the pid of each start to
/// `dir/pids` (`exec` keeps the pid, so it is the provider's own).
fn recording_echo_provider(dir: &Path) -> PathBuf {
    const ECHO_BIN: &str = env!("CARGO_BIN_EXE_nimbus-test-echo-provider");
    let script = dir.join("echo-provider.sh");
    let d = dir.display();
    std::fs::write(
        &script,
        format!("#!/bin/sh\necho $$ >> '{d}/pids'\nexec '{ECHO_BIN}' \"$@\"\n"),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

/// Whether process `pid` exists (`kill -0`).
fn alive(pid: u32) -> bool {
    std::process::Command::new("kill")
        .args(["-0", &pid.to_string()])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn signal(name: &str, pid: u32) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .expect("failed to run kill");
    assert!(status.success(), "kill -{name} {pid} failed");
}

/// A host with the echo provider as a process, one echo actor linked to it, and a plain
/// NATS client standing for a stranger on the lattice.
struct Fixture {
    _nats: NatsServer,
    dir: tempfile::TempDir,
    host: Host,
    provider: String,
    actor: String,
    stranger: async_nats::Client,
    shutdown_subject: String,
}

impl Fixture {
    async fn start() -> Fixture {
        let nats = NatsServer::start();
        let dir = tempfile::tempdir().unwrap();
        let wrapper = recording_echo_provider(dir.path());
        let lattice = lattice_name("provider-stop");
        let provider = provider_key();
        let host = builder(&cluster_seed())
            .lattice(&lattice)
            .nats(crate::lattice_support::member_nats(nats.url()))
            .provider_executable("echo-bin", provider.clone(), CONTRACT, &wrapper)
            .build()
            .await
            .unwrap();
        let actor = echo_actor(Some(&[CONTRACT]), None);
        host.start_actor(actor.bytes, 1).await.unwrap();
        host.put_link(LinkDefinition::new(
            &actor.id,
            &provider,
            "default",
            CONTRACT,
            HashMap::new(),
        ))
        .await
        .unwrap();
        host.launch_provider("echo-bin", "default", None)
            .await
            .unwrap();
        let stranger = nimbus_tests::servers::connect(nats.url()).await.unwrap();
        let shutdown_subject =
            Subjects::for_lattice(lattice.clone()).provider_shutdown(&provider, "default");
        let fx = Fixture {
            _nats: nats,
            dir,
            host,
            provider,
            actor: actor.id,
            stranger,
            shutdown_subject,
        };
        assert_eq!(fx.echo_until_ok(b"first start").await, b"first start");
        fx
    }

    /// The actor's `Forward` to the provider's `Echo`, retried until it works (a process
    /// that is starting, or has no link yet, fails it), for at most [`WAIT`].
    async fn echo_until_ok(&self, body: &[u8]) -> Vec<u8> {
        let call = forward("default", CONTRACT, "Echo", body);
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match self
                .host
                .call_actor(&self.actor, "Forward", call.clone())
                .await
            {
                Ok(out) => return out,
                Err(e) if tokio::time::Instant::now() < deadline => {
                    tracing::debug!(error = %e, "provider not serving yet");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("the provider did not serve within {WAIT:?}: {e}"),
            }
        }
    }

    /// Publishes `body` on the provider's shutdown subject as a request; the reply, if one
    /// comes within `patience`.
    async fn shutdown_request(&self, body: &[u8], patience: Duration) -> Option<Vec<u8>> {
        let request = async_nats::Request::new()
            .payload(body.to_vec().into())
            .timeout(Some(patience));
        self.stranger
            .send_request(self.shutdown_subject.clone(), request)
            .await
            .ok()
            .map(|reply| reply.payload.to_vec())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_shutdown_request_does_not_stop_a_provider_its_host_started() {
    let fx = Fixture::start().await;
    let mut events = fx.host.events();
    let first = match started_pids(fx.dir.path())[..] {
        [first] => first,
        ref pids => panic!("expected one start, got {pids:?}"),
    };
    let other_host = KeyPair::generate(KeyKind::Server).public_key();
    let forged: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"{}".to_vec(),
        br#"{"host_id":""}"#.to_vec(),
        format!(r#"{{"host_id":"{other_host}"}}"#).into_bytes(),
        b"\x00 not json".to_vec(),
    ];
    for body in &forged {
        // As a request: no `shutting down` comes back ...
        assert_eq!(
            fx.shutdown_request(body, Duration::from_millis(500)).await,
            None,
            "the provider answered a forged shutdown {:?}",
            String::from_utf8_lossy(body)
        );
        // ... and as a plain publish.
        fx.stranger
            .publish(fx.shutdown_subject.clone(), body.clone().into())
            .await
            .unwrap();
    }
    fx.stranger.flush().await.unwrap();

    // The provider handles messages in order: an echo after the forged requests is served
    // by the same process, which is still alive.
    assert_eq!(fx.echo_until_ok(b"still here").await, b"still here");
    assert!(alive(first), "the provider process is gone");
    assert_eq!(started_pids(fx.dir.path()), vec![first]);
    assert_eq!(fx.host.inventory().providers.len(), 1);
    while let Ok(event) = events.try_recv() {
        assert_ne!(event.name(), Some("provider_stopped"), "{event:?}");
    }
    fx.host.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_that_exits_cleanly_without_its_host_asking_is_restarted() {
    let fx = Fixture::start().await;
    let mut events = fx.host.events();
    let first = started_pids(fx.dir.path())[0];

    // A stranger who knows the host's id: the provider obeys and exits with code 0, but
    // its host did not ask, so its supervisor starts it again.
    let body = format!(r#"{{"host_id":"{}"}}"#, fx.host.id());
    let reply = fx.shutdown_request(body.as_bytes(), WAIT).await;
    assert_eq!(reply.as_deref(), Some(&b"shutting down"[..]));
    let second = wait_for_starts(fx.dir.path(), 2, WAIT).await[1];
    assert_ne!(second, first);
    assert!(!alive(first), "the first process did not exit");
    assert_eq!(
        fx.echo_until_ok(b"after a shutdown").await,
        b"after a shutdown"
    );
    // The replacement answered its health check and got its links again.
    wait_event(&mut events, "health_check_passed", |e| {
        e.data["public_key"] == fx.provider.as_str()
    })
    .await;

    // SIGTERM from outside: a clean exit too, restarted too.
    signal("TERM", second);
    let third = wait_for_starts(fx.dir.path(), 3, WAIT).await[2];
    assert_ne!(third, second);
    assert_eq!(fx.echo_until_ok(b"after SIGTERM").await, b"after SIGTERM");
    assert_eq!(fx.host.inventory().providers.len(), 1);
    while let Ok(event) = events.try_recv() {
        assert_ne!(event.name(), Some("provider_stopped"), "{event:?}");
    }

    // The host's own stop is a wanted stop: reported, and nothing starts again.
    fx.host
        .stop_provider(&fx.provider, "default")
        .await
        .unwrap();
    let stopped = wait_event(&mut events, "provider_stopped", |e| {
        e.data["public_key"] == fx.provider.as_str()
    })
    .await;
    assert_eq!(stopped.data["reason"], "normal");
    assert!(!alive(third), "the provider outlived its host's stop");
    // Past the clean-exit grace and back-off, still no new start.
    tokio::time::sleep(nimbus_supervisor::DEFAULT_CLEAN_EXIT_GRACE + Duration::from_secs(2)).await;
    assert_eq!(started_pids(fx.dir.path()), vec![first, second, third]);
    assert!(fx.host.inventory().providers.is_empty());
    fx.host.stop().await.unwrap();
}
