//! A lattice only its members can reach: `wash lattice init` against a real nats-server
//! (strangers and users of another account or operator are kept out, each role may do
//! only what it is for), and `wash up --nats-server` running such a lattice end to end
//! (providers out of process with credentials of their own, `backend=nats` data in the
//! data account, `wash call --creds`, an observer that lists but cannot change).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use nimbus_tests::servers::free_port;
use tokio::sync::mpsc;

fn wash() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wash"));
    for var in [
        "WASH_NATS_URL",
        "WASH_LATTICE",
        "WASH_NATS_CREDS",
        "WASH_NATS_TLS_CA",
        "WASH_NATS_STORE",
        "WASH_PROVIDER_CREDS",
        "WASH_CLUSTER_SEED",
        "WASH_CLUSTER_ISSUERS",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// The nats-server binary the tests use (the harness's search: `$NATS_SERVER`, `PATH`,
/// where `scripts/setup.sh` installs it).
fn nats_server_binary() -> std::path::PathBuf {
    nimbus_tests::servers::find_binary("NATS_SERVER", "nats-server")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "wash failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// The stderr of a command that must fail.
fn fails(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "wash succeeded: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `wash lattice init NAME` with HOME `home`; returns the lattice directory.
fn init(home: &Path, keys: &Path, lattice: &str, extra: &[&str]) -> PathBuf {
    let out = wash()
        .args(["lattice", "init", lattice])
        .args(extra)
        .env("HOME", home)
        .env("WASH_KEYS", keys)
        .output()
        .unwrap();
    let text = ok(&out);
    assert!(text.contains("is authenticated"), "{text}");
    home.join(".wash/lattices").join(lattice)
}

/// A nats-server run with a configuration `wash lattice init` wrote, on a port it picks
/// itself (`-p -1`) and reports in its ports file (so no other test's server can be taken
/// for it); killed on drop.
struct Server(Child, u16);

impl Server {
    fn start(config: &Path) -> Server {
        let dir = config.with_file_name("nats-test");
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("nats.log");
        let mut child = Command::new(nats_server_binary())
            .arg("-c")
            .arg(config)
            .args(["-p", "-1", "--ports_file_dir"])
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let suffix = format!("_{}.ports", child.id());
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                panic!(
                    "nats-server exited ({status}): {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            let port = std::fs::read_dir(&dir)
                .unwrap()
                .flatten()
                .find(|e| e.file_name().to_string_lossy().ends_with(&suffix))
                .and_then(|e| std::fs::read(e.path()).ok())
                .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
                .and_then(|ports| {
                    let url = ports["nats"][0].as_str()?.to_string();
                    url.rsplit(':').next()?.parse::<u16>().ok()
                });
            if let Some(port) = port {
                return Server(child, port);
            }
            assert!(Instant::now() < deadline, "nats-server did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.1)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Connects with a creds file; the receiver gets every error the server reports
/// (permission violations).
async fn connect(url: &str, creds: &Path) -> (async_nats::Client, mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let client = async_nats::ConnectOptions::with_credentials_file(creds.to_path_buf())
        .await
        .unwrap()
        .event_callback(move |event| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(event.to_string());
            }
        })
        .connect(url)
        .await
        .unwrap_or_else(|e| panic!("{} could not connect: {e}", creds.display()));
    (client, rx)
}

/// Waits up to 2 s for a permissions violation naming `subject`.
async fn refused(errors: &mut mpsc::UnboundedReceiver<String>, subject: &str) {
    let wait = tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(e) = errors.recv().await {
            if e.to_lowercase().contains("permissions violation") && e.contains(subject) {
                return e;
            }
        }
        String::new()
    })
    .await;
    assert!(
        wait.as_ref().is_ok_and(|e| !e.is_empty()),
        "no permissions violation for {subject}: {wait:?}"
    );
}

/// Waits until the server has `sub` (a subscription of `client` matching `subject`):
/// publishes to `subject` until `sub` gets it (`flush` only empties the client's buffer,
/// it does not wait for the server).
async fn until_subscribed(
    client: &async_nats::Client,
    sub: &mut async_nats::Subscriber,
    subject: &str,
) {
    use futures_util::StreamExt as _;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        client
            .publish(subject.to_string(), "ready".into())
            .await
            .unwrap();
        client.flush().await.unwrap();
        if let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(100), sub.next()).await
            && m.subject.as_str() == subject
        {
            // Late copies of earlier attempts must not look like traffic later.
            while let Ok(Some(_)) =
                tokio::time::timeout(Duration::from_millis(150), sub.next()).await
            {}
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{subject}: the subscription never took effect"
        );
    }
}

/// Whether `sub` gets a message within `within`.
async fn receives(sub: &mut async_nats::Subscriber, within: Duration) -> Option<String> {
    use futures_util::StreamExt as _;
    tokio::time::timeout(within, sub.next())
        .await
        .ok()
        .flatten()
        .map(|m| m.subject.to_string())
}

/// A user of lattice `lattice`'s data account without any permission limits, signed
/// with the account seed `wash lattice init` keeps in `keys`.
fn spy_creds(keys: &Path, lattice: &str, path: &Path) -> PathBuf {
    let seed =
        std::fs::read_to_string(keys.join(format!("lattice_{lattice}_data_account.nk"))).unwrap();
    let account = nkeys::KeyPair::from_seed(seed.trim()).unwrap();
    let user = nkeys::KeyPair::new_user();
    let mut claims = nats_jwt_rs::user::User::new_claims("spy".into(), user.public_key());
    claims.nats.permissions.permissions = Default::default();
    let jwt = claims.encode(&account).unwrap();
    let text = format!(
        "-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n\
         -----BEGIN USER NKEY SEED-----\n{}\n------END USER NKEY SEED------\n",
        user.seed().unwrap()
    );
    std::fs::write(path, text).unwrap();
    path.to_path_buf()
}

#[test]
fn a_lattice_made_by_init_admits_only_its_members_each_to_its_own_subjects() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let keys = dir.path().join("keys");
    let lattice_dir = init(
        &home,
        &keys,
        "sec",
        &["--nats-store", dir.path().join("js").to_str().unwrap()],
    );
    #[cfg(unix)]
    for role in ["host", "provider", "wash", "observer", "keyvalue"] {
        use std::os::unix::fs::PermissionsExt as _;
        let path = lattice_dir.join(format!("{role}.creds"));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{}: {mode:o}", path.display());
    }
    let conf = std::fs::read_to_string(lattice_dir.join("nats-server.conf")).unwrap();
    assert!(conf.contains("sync_interval: always"), "{conf}");
    // A lattice of another operator, on another machine: its users are strangers here.
    let other_home = dir.path().join("other");
    let other_dir = init(&other_home, &dir.path().join("other-keys"), "sec", &[]);

    let server = Server::start(&lattice_dir.join("nats-server.conf"));
    let url = server.url();
    let creds = |role: &str| lattice_dir.join(format!("{role}.creds"));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        // No credentials, or another operator's: refused at the door.
        let err = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(2))
            .connect(url.as_str())
            .await
            .unwrap_err();
        assert!(
            err.to_string().to_lowercase().contains("authorization"),
            "{err}"
        );
        let err = async_nats::ConnectOptions::with_credentials_file(other_dir.join("wash.creds"))
            .await
            .unwrap()
            .connection_timeout(Duration::from_secs(2))
            .connect(url.as_str())
            .await
            .unwrap_err();
        assert!(
            err.to_string().to_lowercase().contains("authorization"),
            "{err}"
        );

        let (host, _) = connect(&url, &creds("host")).await;
        // The lattice bucket, as hosts make it, with a link whose values are secrets.
        let js = jetstream::new(host.clone());
        let bucket = js
            .create_key_value(jetstream::kv::Config {
                bucket: "LATTICEDATA_sec".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        bucket
            .put("LINKDEF_x", "password=hunter2".into())
            .await
            .unwrap();
        let mut host_ctl = host.subscribe("wasmbus.ctl.sec.>").await.unwrap();
        until_subscribed(&host, &mut host_ctl, "wasmbus.ctl.sec.ready").await;

        // A client of another account sees none of the lattice's subjects, and not its
        // bucket: a user of the data account allowed everything there (`>`).
        let spy = spy_creds(&keys, "sec", &dir.path().join("spy.creds"));
        let (other, _) = connect(&url, &spy).await;
        let other_js = jetstream::new(other.clone());
        assert!(other_js.get_key_value("LATTICEDATA_sec").await.is_err());
        // ... while that account has JetStream of its own (what backend=nats uses).
        let (kv_user, _) = connect(&url, &creds("keyvalue")).await;
        jetstream::new(kv_user)
            .create_key_value(jetstream::kv::Config {
                bucket: "counter".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        let mut everything = other.subscribe(">").await.unwrap();
        until_subscribed(&other, &mut everything, "spy.ready").await;
        let (wash_client, _) = connect(&url, &creds("wash")).await;
        let mut events = wash_client.subscribe("wasmbus.evt.sec").await.unwrap();
        // The subscription is in place once a host's event gets through.
        until_subscribed(&host, &mut events, "wasmbus.evt.sec").await;
        host.publish("wasmbus.evt.sec", "host_heartbeat".into())
            .await
            .unwrap();
        host.publish("_INBOX.somebody.1", "a reply".into())
            .await
            .unwrap();
        host.flush().await.unwrap();
        assert_eq!(
            receives(&mut events, Duration::from_secs(2))
                .await
                .as_deref(),
            Some("wasmbus.evt.sec"),
            "a member sees the lattice's events"
        );
        assert_eq!(
            receives(&mut everything, Duration::from_millis(500)).await,
            None,
            "another account saw the lattice's traffic"
        );

        // Provider credentials cannot publish control requests (nor serve an actor's
        // subject); the host never sees the request.
        let (provider, mut provider_errors) = connect(&url, &creds("provider")).await;
        provider
            .publish("wasmbus.ctl.sec.cmd.NHOST.stop", "{}".into())
            .await
            .unwrap();
        provider.flush().await.unwrap();
        refused(&mut provider_errors, "wasmbus.ctl.sec.cmd.NHOST.stop").await;
        let _stolen = provider.subscribe("wasmbus.rpc.sec.MACTOR").await.unwrap();
        refused(&mut provider_errors, "wasmbus.rpc.sec.MACTOR").await;
        assert_eq!(
            receives(&mut host_ctl, Duration::from_millis(300)).await,
            None,
            "a refused control request reached the host"
        );

        // An observer lists (ping, get, bucket reads) but cannot change anything.
        let (observer, mut observer_errors) = connect(&url, &creds("observer")).await;
        observer
            .publish("wasmbus.ctl.sec.ping.hosts", "".into())
            .await
            .unwrap();
        observer.flush().await.unwrap();
        assert_eq!(
            receives(&mut host_ctl, Duration::from_secs(2))
                .await
                .as_deref(),
            Some("wasmbus.ctl.sec.ping.hosts")
        );
        let observer_js = jetstream::new(observer.clone());
        let read = observer_js.get_key_value("LATTICEDATA_sec").await.unwrap();
        assert_eq!(
            read.get("LINKDEF_x").await.unwrap().as_deref(),
            Some(&b"password=hunter2"[..])
        );
        for subject in [
            "wasmbus.ctl.sec.linkdefs.put",
            "wasmbus.ctl.sec.auction.actor",
            "wasmbus.ctl.sec.cmd.NHOST.la",
        ] {
            observer.publish(subject, "{}".into()).await.unwrap();
            observer.flush().await.unwrap();
            refused(&mut observer_errors, subject).await;
        }
        assert!(read.put("LINKDEF_x", "changed".into()).await.is_err());
        refused(&mut observer_errors, "$KV.LATTICEDATA_sec.LINKDEF_x").await;
        assert_eq!(
            receives(&mut host_ctl, Duration::from_millis(300)).await,
            None,
            "a refused change reached the host"
        );
        assert_eq!(
            bucket.get("LINKDEF_x").await.unwrap().as_deref(),
            Some(&b"password=hunter2"[..])
        );
    });
}

#[test]
fn a_tls_lattice_is_reached_only_with_its_generated_ca() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let keys = dir.path().join("keys");
    let lattice_dir = init(
        &home,
        &keys,
        "tls",
        &[
            "--tls",
            "--nats-store",
            dir.path().join("js").to_str().unwrap(),
        ],
    );
    assert!(lattice_dir.join("tls/ca.pem").is_file());
    let server = Server::start(&lattice_dir.join("nats-server.conf"));
    let url = server.url();
    let get_hosts = |home: &Path, extra: &[&str]| {
        wash()
            .args(["ctl", "get", "hosts", "--timeout-ms", "300"])
            .args(["--nats-url", &url, "--lattice", "tls"])
            .args(extra)
            .env("HOME", home)
            .env("WASH_KEYS", &keys)
            .output()
            .unwrap()
    };
    // On this machine `wash` finds the lattice's creds and CA: it connects (and finds no
    // host, the lattice is empty).
    let err = fails(&get_hosts(&home, &[]));
    assert!(err.contains("no hosts answered"), "{err}");
    // Elsewhere with the creds but without the CA, the certificate is not trusted.
    let creds = lattice_dir.join("wash.creds");
    let creds = creds.to_str().unwrap();
    let elsewhere = dir.path().join("elsewhere");
    let err = fails(&get_hosts(&elsewhere, &["--creds", creds]));
    assert!(err.contains("failed to connect"), "{err}");
    let ca = lattice_dir.join("tls/ca.pem");
    let err = fails(&get_hosts(
        &elsewhere,
        &["--creds", creds, "--tls-ca", ca.to_str().unwrap()],
    ));
    assert!(err.contains("no hosts answered"), "{err}");
}

/// A running `wash up`; interrupted (then killed) on drop so its nats-server goes too.
struct Up(Child);

impl Up {
    fn interrupt(mut self) -> std::process::ExitStatus {
        let status = interrupt(&mut self.0);
        std::mem::forget(self);
        status
    }
}

fn interrupt(child: &mut Child) -> std::process::ExitStatus {
    let pid = child.id().to_string();
    Command::new("kill").args(["-INT", &pid]).status().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        let _ = interrupt(&mut self.0);
    }
}

/// The provider binary `name` next to `wash` (`cargo build -p nimbus-provider-...`).
fn provider_binary(name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_wash")).with_file_name(name);
    assert!(
        path.is_file(),
        "{} not found: build it with `cargo build -p nimbus-provider-httpserver -p nimbus-provider-keyvalue`",
        path.display()
    );
    path
}

/// The app of the end-to-end tests in `dir/app`: echo (`secured/echo`) and kvcounter on
/// `http_port`, both providers out of process (each connects with credentials of its own),
/// the counter in the lattice's data account (NATS backend through keyvalue.creds, and
/// the lattice's CA when it serves TLS).
fn secured_app(dir: &Path, http_port: u16, nats_url: &str, lattice_dir: &Path) -> PathBuf {
    let ca = lattice_dir.join("tls/ca.pem");
    let tls_ca = match ca.is_file() {
        true => format!(", tls_ca: {:?}", ca.display().to_string()),
        false => String::new(),
    };
    let app = dir.join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(app.join("echo.wasm"), nimbus_tests::actor_wasm("echo")).unwrap();
    std::fs::write(
        app.join("kvcounter.wasm"),
        nimbus_tests::actor_wasm("kvcounter"),
    )
    .unwrap();
    // Both providers out of process (each connects with credentials of its own); the
    // counter lives in the data account through keyvalue.creds.
    let manifest = format!(
        r#"name: secured
actors:
  - name: echo
    path: echo.wasm
    call_alias: secured/echo
  - name: kvcounter
    path: kvcounter.wasm
    capabilities: [wasmcloud:httpserver, wasmcloud:keyvalue]
providers:
  - name: http
    path: {http}
    contract: wasmcloud:httpserver
  - name: kv
    path: {kv}
    contract: wasmcloud:keyvalue
links:
  - actor: kvcounter
    provider: http
    values: {{ port: "{http_port}" }}
  - actor: kvcounter
    provider: kv
    values: {{ backend: nats, url: "{nats_url}", bucket: counter, creds: {kv_creds:?}{tls_ca} }}
"#,
        http = provider_binary("nimbus-httpserver-provider").display(),
        kv = provider_binary("nimbus-keyvalue-provider").display(),
        kv_creds = lattice_dir.join("keyvalue.creds").display().to_string(),
    );
    std::fs::write(app.join("app.yaml"), manifest).unwrap();
    app
}

/// `wash up --nats-server PORT --lattice LATTICE app.yaml` in `app` with HOME `home`,
/// until it is ready: the child and what it printed.
fn wash_up_nats_server(
    app: &Path,
    home: &Path,
    keys: &Path,
    lattice: &str,
    nats_port: u16,
) -> (Child, String) {
    let mut cmd = wash();
    cmd.args(["up", "--nats-server", &nats_port.to_string()])
        .args(["--lattice", lattice, "app.yaml"])
        .current_dir(app)
        .env("HOME", home)
        .env("WASH_KEYS", keys)
        .env("NATS_SERVER", nats_server_binary());
    common::spawn_until_ready(&mut cmd)
}

/// The first answer of the counter on `http_port`. The provider processes take their
/// links a moment after `ready` (the key-value one connects to the data account then),
/// so this waits up to 30 s for it.
fn first_visit(http_port: u16) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer = TcpStream::connect(("127.0.0.1", http_port))
            .ok()
            .map(|_| common::get(http_port, "/visits"));
        match answer {
            Some((200, body)) => return body,
            other if Instant::now() > deadline => panic!("no counter within 30 s: {other:?}"),
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// A lattice made by `wash lattice init` (with `init_flags`), run by `wash up
/// --nats-server` with the counter app (providers out of process), until ready.
struct SecuredLattice {
    dir: tempfile::TempDir,
    home: PathBuf,
    keys: PathBuf,
    lattice_dir: PathBuf,
    nats_port: u16,
    nats_url: String,
    http_port: u16,
    app: PathBuf,
    /// What `wash up` printed until ready.
    text: String,
    up: Up,
}

impl SecuredLattice {
    fn start(lattice: &str, init_flags: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let keys = dir.path().join("keys");
        let lattice_dir = init(&home, &keys, lattice, init_flags);
        let (nats_port, http_port) = (free_port(), free_port());
        let nats_url = format!("nats://127.0.0.1:{nats_port}");
        let app = secured_app(dir.path(), http_port, &nats_url, &lattice_dir);
        let (child, text) = wash_up_nats_server(&app, &home, &keys, lattice, nats_port);
        SecuredLattice {
            dir,
            home,
            keys,
            lattice_dir,
            nats_port,
            nats_url,
            http_port,
            app,
            text,
            up: Up(child),
        }
    }
}

#[test]
fn wash_up_nats_server_runs_an_authenticated_lattice_end_to_end() {
    let lattice = "secured";
    let SecuredLattice {
        dir,
        keys,
        lattice_dir,
        nats_url,
        http_port,
        app,
        text,
        up,
        ..
    } = SecuredLattice::start(lattice, &[]);
    let host = common::host_id(&text);
    assert!(
        text.contains(&format!(
            "NATS credentials {}",
            lattice_dir.join("host.creds").display()
        )),
        "{text}"
    );
    // Each provider process got credentials scoped to its own key.
    let provider_keys: Vec<String> = text
        .lines()
        .filter(|l| l.trim_start().starts_with("provider "))
        .filter_map(|l| l.split_whitespace().nth(2).map(String::from))
        .collect();
    assert_eq!(provider_keys.len(), 2, "{text}");
    for key in &provider_keys {
        let own = lattice_dir.join("providers").join(format!("{key}.creds"));
        assert!(own.is_file(), "no {}", own.display());
    }

    // HTTP -> httpserver provider -> kvcounter -> keyvalue provider -> JetStream.
    let first = first_visit(http_port);
    assert_eq!(first, r#"{"counter":1}"#);
    assert_eq!(
        common::get(http_port, "/visits"),
        (200, r#"{"counter":2}"#.into())
    );

    // `wash` from anywhere, with the creds given.
    let elsewhere = dir.path().join("elsewhere");
    let creds = |role: &str| {
        lattice_dir
            .join(format!("{role}.creds"))
            .display()
            .to_string()
    };
    let wash_at = |args: &[&str]| {
        wash()
            .args(args)
            .args([
                "--nats-url",
                &nats_url,
                "--lattice",
                lattice,
                "--timeout-ms",
                "1000",
            ])
            .env("HOME", &elsewhere)
            .env("WASH_KEYS", &keys)
            .output()
            .unwrap()
    };
    let called = ok(&wash_at(&[
        "call",
        "secured/echo",
        "Echo",
        "--data",
        "through the secured lattice",
        "--creds",
        &creds("wash"),
    ]));
    assert_eq!(called, "through the secured lattice");
    let err = fails(&wash_at(&["call", "secured/echo", "Echo", "--data", "x"]));
    assert!(err.contains("requires credentials"), "{err}");
    assert!(err.contains("--creds"), "{err}");

    // The observer lists ...
    let hosts = ok(&wash_at(&[
        "--output",
        "json",
        "ctl",
        "get",
        "hosts",
        "--creds",
        &creds("observer"),
    ]));
    assert!(hosts.contains(&host), "{hosts}");
    let links = ok(&wash_at(&[
        "ctl",
        "get",
        "links",
        "--creds",
        &creds("observer"),
    ]));
    assert!(links.contains("wasmcloud:keyvalue"), "{links}");
    // ... but cannot change: each refusal names the subject and the way out.
    let actor =
        nimbus_core::keys::KeyPair::generate(nimbus_core::keys::KeyKind::Module).public_key();
    let err = fails(&wash_at(&[
        "ctl",
        "link",
        "put",
        &actor,
        &provider_keys[0],
        "wasmcloud:test",
        "a=b",
        "--creds",
        &creds("observer"),
    ]));
    assert!(err.contains("refused"), "{err}");
    assert!(err.contains("linkdefs.put"), "{err}");
    assert!(err.contains("wash.creds"), "{err}");
    let err = fails(&wash_at(&[
        "ctl",
        "start",
        "actor",
        app.join("echo.wasm").to_str().unwrap(),
        "--creds",
        &creds("observer"),
    ]));
    assert!(err.contains("refused"), "{err}");
    assert!(err.contains("auction.actor"), "{err}");

    // Provider credentials cannot stop the host.
    let err = fails(&wash_at(&[
        "ctl",
        "stop",
        "host",
        &host,
        "--creds",
        &creds("provider"),
    ]));
    assert!(err.contains("refused"), "{err}");
    let hosts = ok(&wash_at(&[
        "--output",
        "json",
        "ctl",
        "get",
        "hosts",
        "--creds",
        &creds("wash"),
    ]));
    assert!(hosts.contains(&host), "the host went away: {hosts}");
    assert_eq!(
        common::get(http_port, "/visits"),
        (200, r#"{"counter":3}"#.into())
    );

    assert!(up.interrupt().success(), "wash up did not exit cleanly");
}

/// The same lattice with `wash lattice init --tls`: the nats-server serves TLS only, and
/// the host, both provider processes (given the lattice's CA by their host) and the
/// key-value backend connect over it.
#[test]
fn wash_up_nats_server_runs_a_tls_lattice_with_providers_out_of_process() {
    let lattice = "secured-tls";
    let SecuredLattice {
        dir,
        keys,
        lattice_dir,
        nats_url,
        http_port,
        text,
        up: _up,
        ..
    } = SecuredLattice::start(lattice, &["--tls"]);
    assert!(lattice_dir.join("tls/ca.pem").is_file());
    let host = common::host_id(&text);

    let first = first_visit(http_port);
    assert_eq!(first, r#"{"counter":1}"#);

    // The server takes no plain-text client, even with the lattice's credentials.
    let creds = lattice_dir.join("wash.creds");
    let elsewhere = dir.path().join("elsewhere");
    let get_hosts = |extra: &[&str]| {
        wash()
            .args([
                "--output",
                "json",
                "ctl",
                "get",
                "hosts",
                "--timeout-ms",
                "1000",
            ])
            .args(["--nats-url", &nats_url, "--lattice", lattice])
            .args(["--creds", creds.to_str().unwrap()])
            .args(extra)
            .env("HOME", &elsewhere)
            .env("WASH_KEYS", &keys)
            .output()
            .unwrap()
    };
    let err = fails(&get_hosts(&[]));
    assert!(err.contains("failed to connect"), "{err}");
    let ca = lattice_dir.join("tls/ca.pem");
    let hosts = ok(&get_hosts(&["--tls-ca", ca.to_str().unwrap()]));
    assert!(hosts.contains(&host), "{hosts}");
    assert_eq!(
        common::get(http_port, "/visits"),
        (200, r#"{"counter":2}"#.into())
    );
}

/// Whether a fresh connection with `creds` is admitted by the server at `url`.
async fn admitted(url: &str, creds: &Path) -> Result<(), String> {
    let options = async_nats::ConnectOptions::with_credentials_file(creds.to_path_buf())
        .await
        .unwrap()
        .max_reconnects(Some(0));
    match tokio::time::timeout(Duration::from_secs(5), options.connect(url)).await {
        Ok(Ok(client)) => {
            client.flush().await.map_err(|e| e.to_string())?;
            Ok(())
        }
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no answer within 5 s".into()),
    }
}

#[test]
fn wash_lattice_revoke_cuts_off_one_user_of_a_running_lattice_and_no_other() {
    let lattice = "revoking";
    let SecuredLattice {
        dir,
        home,
        keys,
        lattice_dir,
        nats_port,
        nats_url,
        http_port,
        app,
        up,
        ..
    } = SecuredLattice::start(lattice, &[]);
    assert_eq!(first_visit(http_port), r#"{"counter":1}"#);

    // A second wash user, say the copy on a laptop that got lost.
    let lost = dir.path().join("lost.creds");
    let lattice_cmd = |args: &[&str]| {
        wash()
            .args(["lattice"])
            .args(args)
            .args(["--lattice", lattice])
            .env("HOME", &home)
            .env("WASH_KEYS", &keys)
            .output()
            .unwrap()
    };
    ok(&lattice_cmd(&[
        "creds",
        "--role",
        "wash",
        "-o",
        lost.to_str().unwrap(),
    ]));

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let user = runtime.block_on(async {
        admitted(&nats_url, &lost).await.unwrap();
        let (open, mut events) = connect(&nats_url, &lost).await;

        // Bad input first: nothing is revoked by it.
        let err = fails(&lattice_cmd(&["revoke", "--user", "NOTAKEY"]));
        assert!(err.contains("not a user public key"), "{err}");
        let err = fails(&lattice_cmd(&[
            "revoke",
            "--creds",
            app.join("app.yaml").to_str().unwrap(),
        ]));
        assert!(err.contains("holds no user seed"), "{err}");
        let err = fails(&lattice_cmd(&["revoke"]));
        assert!(err.contains("--creds") && err.contains("--user"), "{err}");
        admitted(&nats_url, &lost).await.unwrap();

        // JWTs carry their issue time in seconds: revoking in a later second than
        // `init` signed the operator is the case a reload must survive (a re-signed
        // operator JWT would be refused by nats-server's reload).
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let out = ok(&lattice_cmd(&[
            "--output",
            "json",
            "revoke",
            "--creds",
            lost.to_str().unwrap(),
        ]));
        let report: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            report["reloaded"].as_array().map(Vec::len),
            Some(1),
            "{report}"
        );
        let user = report["user"].as_str().unwrap().to_string();
        let auth = std::fs::read_to_string(lattice_dir.join("auth.conf")).unwrap();
        assert!(revoked_users(&auth).contains(&user), "{auth}");

        // The revoked user is refused from now on ...
        let deadline = Instant::now() + Duration::from_secs(10);
        let refusal = loop {
            match admitted(&nats_url, &lost).await {
                Err(e) => break e,
                Ok(()) if Instant::now() > deadline => {
                    panic!("the revoked user still connects 10 s after the revoke")
                }
                Ok(()) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        };
        assert!(
            refusal.to_lowercase().contains("authorization"),
            "{refusal}"
        );
        // ... and its open connection is closed by the server.
        let closed = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(event) = events.recv().await {
                let event = event.to_lowercase();
                if event.contains("revoked") || event.contains("disconnected") {
                    return event;
                }
            }
            String::new()
        })
        .await
        .unwrap_or_else(|_| panic!("the revoked user's open connection stayed open"));
        assert!(!closed.is_empty());
        drop(open);

        // Every other user is still admitted, and the lattice serves.
        for role in ["host", "wash", "observer", "provider"] {
            admitted(&nats_url, &lattice_dir.join(format!("{role}.creds")))
                .await
                .unwrap_or_else(|e| panic!("{role} refused after another's revoke: {e}"));
        }
        user
    });
    assert_eq!(
        common::get(http_port, "/visits"),
        (200, r#"{"counter":2}"#.into())
    );
    assert!(up.interrupt().success(), "wash up did not exit cleanly");
    assert!(
        !lattice_dir
            .join(format!("nats-server-{nats_port}.pid"))
            .exists(),
        "wash up left its pid file"
    );
    // Rewriting the lattice's configuration keeps the revocation.
    ok(&wash()
        .args(["lattice", "init", lattice, "--force"])
        .env("HOME", &home)
        .env("WASH_KEYS", &keys)
        .output()
        .unwrap());
    let auth = std::fs::read_to_string(lattice_dir.join("auth.conf")).unwrap();
    assert!(
        revoked_users(&auth).contains(&user),
        "init --force dropped the revocation of {user}: {auth}"
    );
}

/// The users the account JWTs of an `auth.conf` revoke.
fn revoked_users(auth: &str) -> Vec<String> {
    use base64::Engine as _;
    auth.split('"')
        .filter(|part| part.starts_with("eyJ"))
        .filter_map(|jwt| jwt.split('.').nth(1))
        .filter_map(|payload| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .ok()
        })
        .filter_map(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .filter_map(|claims| claims["nats"]["revocations"].as_object().cloned())
        .flat_map(|revoked| revoked.keys().cloned().collect::<Vec<_>>())
        .collect()
}
