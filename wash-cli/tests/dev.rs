//! `wash dev` as a user runs it, in temp dirs: on a project `wash new` generated.
//!
//! The tests that build the project are `#[ignore]`d (a test never builds while other tests
//! run); scripts/test.sh runs them on their own after the main run, next to new_build's
//! (`cargo test -p wash-cli --test dev -- --ignored --skip bench`). The benchmark
//! `bench_edit_to_served` runs by `scripts/bench-dev.sh`. The bad-input tests compile
//! nothing and run with the others.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use nimbus_tests::auth::Role;

use std::io::{BufRead as _, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{project_wash as wash, try_get};
use nimbus_tests::servers::free_port;

/// Generous bound for one build-and-swap (a cold release build of the template on a busy
/// 2-core machine included); the tests poll, they do not expect it to take this long.
const BUILD_DEADLINE: Duration = Duration::from_secs(180);

/// `wash new actor NAME` (hello template) in `dir`; the project directory.
fn new_hello(dir: &Path, name: &str) -> PathBuf {
    let out = wash(dir)
        .args(["new", "actor", name])
        .output()
        .expect("failed to run wash new");
    assert!(
        out.status.success(),
        "wash new failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir.join(name)
}

/// Every file under `dir` with its contents, sorted.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push((path.clone(), std::fs::read(&path).unwrap()));
            }
        }
    }
    files.sort();
    files
}

/// A running `wash dev`: everything it printed so far, on stdout and on stderr; killed on
/// drop (a test that ends well stops it with SIGINT first).
struct Dev {
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

impl Dev {
    fn start(project: &Path, port: u16, extra: &[&str]) -> Dev {
        let mut child = wash(project)
            .args(["dev", "--port", &port.to_string()])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("failed to start wash dev");
        let stdout = collect(child.stdout.take().unwrap(), true);
        let stderr = collect(child.stderr.take().unwrap(), false);
        Dev {
            child,
            stdout,
            stderr,
        }
    }

    fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until stdout holds `text` `count` times; panics with both outputs after
    /// `deadline` or when wash dev exited.
    fn wait_for(&mut self, text: &str, count: usize, deadline: Duration) {
        let until = Instant::now() + deadline;
        while self.stdout().matches(text).count() < count {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "wash dev exited ({status}) before printing {text:?}\nstdout:\n{}\nstderr:\n{}",
                    self.stdout(),
                    self.stderr()
                );
            }
            assert!(
                Instant::now() < until,
                "no {text:?} within {deadline:?}\nstdout:\n{}\nstderr:\n{}",
                self.stdout(),
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends SIGINT (Ctrl-C) and waits up to 30 s for a clean exit.
    fn interrupt(&mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < until, "wash dev did not stop on SIGINT");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads `stream` line by line into a shared string (echoed to the test's stderr if `echo`;
/// the test's failures print both streams).
fn collect(stream: impl Read + Send + 'static, echo: bool) -> Arc<Mutex<String>> {
    let text = Arc::new(Mutex::new(String::new()));
    let shared = text.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if echo {
                eprintln!("[wash dev] {line}");
            }
            let mut text = shared.lock().unwrap();
            text.push_str(&line);
            text.push('\n');
        }
    });
    text
}

/// Polls `GET /path` until the body contains `expected`; the time it took.
fn wait_for_body(port: u16, expected: &str, deadline: Duration) -> Duration {
    let started = Instant::now();
    loop {
        if let Ok((200, body)) = try_get(port, "/poll")
            && body.contains(expected)
        {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < deadline,
            "{expected:?} not served within {deadline:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Requests made by a steady load, by what answered them.
#[derive(Default)]
struct Tally {
    old: AtomicU64,
    new: AtomicU64,
    /// Refused, reset, not 200, or a body of neither version.
    failed: AtomicU64,
}

/// `clients` threads sending GETs one after another until `stop`; failures are printed.
fn load(
    port: u16,
    clients: usize,
    old: &'static str,
    new: &'static str,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
) -> Vec<std::thread::JoinHandle<()>> {
    (0..clients)
        .map(|i| {
            let stop = stop.clone();
            let tally = tally.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match try_get(port, &format!("/load/{i}")) {
                        Ok((200, body)) if body.contains(new) => {
                            tally.new.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok((200, body)) if body.contains(old) => {
                            tally.old.fetch_add(1, Ordering::Relaxed);
                        }
                        other => {
                            eprintln!("failed request: {other:?}");
                            tally.failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect()
}

#[test]
#[ignore = "builds a generated actor; scripts/test.sh runs it after the main run"]
fn dev_serves_the_actor_swaps_edits_in_without_failures_and_keeps_serving_on_a_compile_error() {
    let dir = tempfile::tempdir().unwrap();
    let project = new_hello(dir.path(), "hello");
    let lib = project.join("src/lib.rs");
    let original = std::fs::read_to_string(&lib).unwrap();
    let port = free_port();
    let mut dev = Dev::start(&project, port, &["--dashboard", "127.0.0.1:0"]);
    dev.wait_for("ready", 1, BUILD_DEADLINE);
    assert!(
        dev.stdout()
            .contains(&format!("listening on http://127.0.0.1:{port}/")),
        "{}",
        dev.stdout()
    );

    // The generated actor answers on its port, as generated (no edits).
    let (status, body) = try_get(port, "/first").unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, "Hello from hello! You asked for /first\n");

    // `--dashboard`: the dashboard of this host lists the actor.
    let stdout = dev.stdout();
    let actor_id = stdout
        .split_whitespace()
        .skip_while(|w| *w != "actor")
        .find(|w| w.starts_with('M') && w.len() == 56)
        .unwrap_or_else(|| panic!("no actor id in:\n{stdout}"))
        .to_string();
    let dashboard: u16 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("dashboard at http://127.0.0.1:"))
        .and_then(|rest| rest.trim_end_matches('/').parse().ok())
        .unwrap_or_else(|| panic!("no dashboard URL in:\n{stdout}"));
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok((200, body)) = try_get(dashboard, "/api/snapshot")
            && body.contains(&actor_id)
        {
            break;
        }
        assert!(
            Instant::now() < until,
            "the dashboard does not list actor {actor_id}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // A source edit under a steady load: the new body is served within the rebuild time
    // and not one request fails across the swap. The edit also logs through the host
    // (`console_log`), which must show on wash dev's output.
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let clients = load(
        port,
        4,
        "Hello from",
        "Howdy from",
        stop.clone(),
        tally.clone(),
    );
    std::thread::sleep(Duration::from_millis(500));
    let edited = original
        .replace("Hello from", "Howdy from")
        .replace(
            "    let mut response = http::Response::ok();",
            "    nimbus_actor::console_log(&format!(\"dev-log {}\", request.path));\n    let mut response = http::Response::ok();",
        );
    assert_ne!(edited, original, "the template changed: update this test");
    assert!(
        edited.contains("dev-log"),
        "the template changed: update this test"
    );
    std::fs::write(&lib, &edited).unwrap();
    let served = wait_for_body(port, "Howdy from hello!", BUILD_DEADLINE);
    eprintln!("edit served after {served:?}");
    // Keep the load on the new code a little while, then count.
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().unwrap();
    }
    let (old, new, failed) = (
        tally.old.load(Ordering::Relaxed),
        tally.new.load(Ordering::Relaxed),
        tally.failed.load(Ordering::Relaxed),
    );
    eprintln!("load across the swap: {old} old, {new} new, {failed} failed");
    assert_eq!(failed, 0, "requests failed during the swap");
    assert!(old > 0, "no request was served by the old build");
    assert!(new > 0, "no request was served by the new build");
    dev.wait_for("in place", 1, Duration::from_secs(10));
    assert!(dev.stdout().contains("updated actor M"), "{}", dev.stdout());
    let until = Instant::now() + Duration::from_secs(10);
    while !dev.stderr().contains("dev-log /load/") {
        assert!(
            Instant::now() < until,
            "the actor's log line is not on wash dev's output:\n{}",
            dev.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // A syntax error: the compiler's error is printed, the last good build keeps serving.
    let broken = edited.replace("Ok(response)", "Ok(response");
    std::fs::write(&lib, broken).unwrap();
    dev.wait_for("still serving the last good build", 1, BUILD_DEADLINE);
    let stderr = dev.stderr();
    assert!(
        stderr.contains("error: mismatched closing delimiter")
            || stderr.contains("error: this file contains an unclosed delimiter")
            || stderr.contains("error["),
        "no compiler error on wash dev's output:\n{stderr}"
    );
    assert!(stderr.contains("src/lib.rs"), "{stderr}");
    let (status, body) = try_get(port, "/after-error").unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, "Howdy from hello! You asked for /after-error\n");

    // Fixed again: served again.
    std::fs::write(&lib, original.replace("Hello from", "Back from")).unwrap();
    wait_for_body(port, "Back from hello!", BUILD_DEADLINE);

    // Another module key in the project file: the new build cannot update the actor in
    // place (another identity), so it is started and linked beside it and the old one
    // stopped; it serves throughout.
    let project_file = project.join("nimbus.toml");
    let text = std::fs::read_to_string(&project_file).unwrap();
    assert!(text.contains("module = \"hello_module\""), "{text}");
    std::fs::write(
        &project_file,
        text.replace(
            "module = \"hello_module\"",
            "module = \"hello_renamed_module\"",
        ),
    )
    .unwrap();
    dev.wait_for("signed with another module key", 1, BUILD_DEADLINE);
    let (status, body) = try_get(port, "/renamed").unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, "Back from hello! You asked for /renamed\n");
    assert!(!dev.stderr().contains("[dev] of nimbus.toml changed"));

    // A change of [dev] is not applied to the running session: wash dev says so.
    let text = std::fs::read_to_string(&project_file).unwrap();
    std::fs::write(&project_file, text.replace("port = 8080", "port = 8081")).unwrap();
    let until = Instant::now() + BUILD_DEADLINE;
    while !dev
        .stderr()
        .contains("[dev] of nimbus.toml changed: restart wash dev")
    {
        assert!(
            Instant::now() < until,
            "no [dev] warning:\n{}",
            dev.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // Ctrl-C stops it cleanly, and the port is free again.
    let status = dev.interrupt();
    assert!(status.success(), "wash dev exited with {status}");
    assert!(
        std::net::TcpListener::bind(("127.0.0.1", port)).is_ok(),
        "port {port} still taken after wash dev stopped"
    );
}

/// The values of the live `LINKDEF_*` entries of the lattice's bucket.
fn lattice_links(nats_url: &str, lattice: &str) -> Vec<String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        use futures_util::StreamExt as _;
        let client = nimbus_tests::servers::connect(nats_url).await.unwrap();
        let js = async_nats::jetstream::new(client);
        let kv = js
            .get_key_value(format!("LATTICEDATA_{lattice}"))
            .await
            .unwrap();
        let keys: Vec<String> = kv
            .keys()
            .await
            .unwrap()
            .filter_map(|k| async { k.ok() })
            .collect()
            .await;
        let mut links = Vec::new();
        for key in keys.iter().filter(|k| k.starts_with("LINKDEF_")) {
            if let Some(value) = kv.get(key).await.unwrap() {
                links.push(String::from_utf8_lossy(&value).into_owned());
            }
        }
        links
    })
}

#[test]
#[ignore = "builds a generated actor; scripts/test.sh runs it after the main run"]
fn dev_joins_a_lattice_with_nats_url_and_deletes_its_links_on_ctrl_c() {
    let nats = nimbus_tests::servers::NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let project = new_hello(dir.path(), "hello");
    let port = free_port();
    let lattice = format!("dev{port}");
    let url = nats.url();
    let mut args = vec!["--nats-url", &url, "--lattice", &lattice];
    let creds = common::member_args(&url, Role::Host);
    args.extend(creds.iter().map(String::as_str));
    let mut dev = Dev::start(&project, port, &args);
    dev.wait_for("ready", 1, BUILD_DEADLINE);
    assert!(
        dev.stdout()
            .contains(&format!("joined lattice `{lattice}` at {}", nats.url())),
        "{}",
        dev.stdout()
    );
    let (status, body) = try_get(port, "/lattice").unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, "Hello from hello! You asked for /lattice\n");
    // The link is in the lattice while wash dev runs ...
    let links = lattice_links(&nats.url(), &lattice);
    assert_eq!(links.len(), 1, "{links:?}");
    assert!(links[0].contains("wasmcloud:httpserver"), "{links:?}");

    // ... an edit is swapped in as in standalone mode ...
    let lib = project.join("src/lib.rs");
    let source = std::fs::read_to_string(&lib).unwrap();
    std::fs::write(&lib, source.replace("Hello from", "Lattice from")).unwrap();
    wait_for_body(port, "Lattice from hello!", BUILD_DEADLINE);

    // ... and Ctrl-C deletes it: nothing of the session is left in the lattice.
    let status = dev.interrupt();
    assert!(status.success(), "wash dev exited with {status}");
    assert_eq!(lattice_links(&nats.url(), &lattice), Vec::<String>::new());
}

#[test]
#[ignore = "builds a generated actor; scripts/test.sh runs it after the main run"]
fn dev_starts_a_broken_kvcounter_once_it_compiles_and_counts_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let out = wash(dir.path())
        .args(["new", "actor", "counter", "--template", "kvcounter"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let project = dir.path().join("counter");
    let lib = project.join("src/lib.rs");
    let source = std::fs::read_to_string(&lib).unwrap();
    // It does not compile at first: wash dev says so and waits for a save.
    std::fs::write(&lib, format!("{source}\nfn broken( {{}}\n")).unwrap();
    let port = free_port();
    let mut dev = Dev::start(&project, port, &[]);
    dev.wait_for("waiting for a build that compiles", 1, BUILD_DEADLINE);
    assert!(!dev.stdout().contains("ready"), "{}", dev.stdout());
    assert!(dev.stderr().contains("error"), "{}", dev.stderr());
    // Fixed: it starts, with the providers of [dev] (HTTP, key-value in memory) linked.
    std::fs::write(&lib, &source).unwrap();
    dev.wait_for("ready", 1, BUILD_DEADLINE);
    assert!(dev.stdout().contains("started actor M"), "{}", dev.stdout());
    for expected in [1, 2] {
        let (status, body) = try_get(port, "/a").unwrap();
        assert_eq!(status, 200, "{body}");
        assert_eq!(body, format!("{{\"counter\":{expected}}}"));
    }
    let status = dev.interrupt();
    assert!(status.success(), "wash dev exited with {status}");
}

/// A kvcounter project whose key-value provider is the provider binary (in the workspace's
/// target dir, built by scripts/test.sh's binaries step) instead of the built-in.
fn kvcounter_with_provider_binary(dir: &Path) -> PathBuf {
    let out = wash(dir)
        .args(["new", "actor", "counter", "--template", "kvcounter"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let project = dir.join("counter");
    let binary = common::repo_root().join("target/debug/nimbus-keyvalue-provider");
    let file = project.join("nimbus.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    let builtin = "builtin = \"keyvalue\"";
    assert!(text.contains(builtin), "{text}");
    std::fs::write(
        &file,
        text.replace(
            builtin,
            &format!(
                "path = \"{}\"\ncontract_id = \"wasmcloud:keyvalue\"",
                binary.display()
            ),
        ),
    )
    .unwrap();
    project
}

#[test]
#[ignore = "builds a generated actor; scripts/test.sh runs it after the main run"]
fn dev_runs_a_provider_binary_of_its_dev_section_on_a_lattice() {
    let nats = nimbus_tests::servers::NatsServer::start();
    let dir = tempfile::tempdir().unwrap();
    let project = kvcounter_with_provider_binary(dir.path());
    let port = free_port();
    let lattice = format!("devkv{port}");
    let url = nats.url();
    let mut args = vec!["--nats-url", &url, "--lattice", &lattice];
    let creds = common::member_args(&url, Role::Host);
    args.extend(creds.iter().map(String::as_str));
    let mut dev = Dev::start(&project, port, &args);
    dev.wait_for("ready", 1, BUILD_DEADLINE);
    assert!(
        dev.stdout().contains("nimbus-keyvalue-provider"),
        "{}",
        dev.stdout()
    );
    // The provider process gets its link over NATS, so the first answers may come before
    // it has it (a JSON 500 from the actor); then it counts.
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        match try_get(port, "/p") {
            Ok((200, body)) => {
                assert_eq!(body, r#"{"counter":1}"#);
                break;
            }
            other => {
                assert!(
                    Instant::now() < until,
                    "the provider never answered: {other:?}"
                );
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
    assert_eq!(
        try_get(port, "/p").unwrap(),
        (200, r#"{"counter":2}"#.to_string())
    );
    let status = dev.interrupt();
    assert!(status.success(), "wash dev exited with {status}");
}

#[test]
fn dev_refuses_a_provider_binary_without_a_lattice() {
    let dir = tempfile::tempdir().unwrap();
    let project = kvcounter_with_provider_binary(dir.path());
    let out = wash(&project).arg("dev").output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("wash dev --nats-url URL"), "{err}");
    assert!(!project.join("build").exists(), "it built");
}

#[test]
fn dev_on_a_port_in_use_is_a_clear_error_and_builds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let project = new_hello(dir.path(), "hello");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let before = snapshot(&project);
    let out = wash(&project)
        .args(["dev", "--port", &port.to_string()])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success(), "wash dev ran on a port in use");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("port {port} is in use")), "{err}");
    assert!(err.contains("wash dev --port PORT"), "{err}");
    assert!(!err.contains("cargo build"), "it built: {err}");
    // The dashboard's port in use: refused as early, naming the flag.
    let out = wash(&project)
        .args(["dev", "--port", &free_port().to_string(), "--dashboard"])
        .arg(format!("127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "wash dev ran with its dashboard port in use"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--dashboard"), "{err}");
    assert!(!err.contains("cargo build"), "it built: {err}");
    // Nothing was written (no build dir, no keys, no target).
    assert_eq!(snapshot(&project), before);
    drop(taken);
}

#[test]
fn dev_outside_a_project_is_the_error_of_wash_build() {
    let dir = tempfile::tempdir().unwrap();
    let out = wash(dir.path()).arg("dev").output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no nimbus.toml in"), "{err}");
    assert!(err.contains("wash new actor NAME"), "{err}");
    let build = wash(dir.path()).arg("build").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&build.stderr),
        err,
        "wash build and wash dev say different things"
    );
    // A provider project is refused with what to do instead.
    let out = wash(dir.path())
        .args(["new", "provider", "greeter"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let out = wash(&dir.path().join("greeter"))
        .arg("dev")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is a provider project"), "{err}");
    assert!(err.contains("wash new actor NAME"), "{err}");
}

/// The median of `samples`.
fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// Edit-to-served time of the hello template (save → rebuild → sign → swap → the new body
/// answers), median of 5, against the same edit built by cargo alone (`cargo build
/// --release --target wasm32-unknown-unknown`, what `wash build` runs). Prints the figures
/// and the ratio; run by scripts/bench-dev.sh.
#[test]
#[ignore = "benchmark: scripts/bench-dev.sh"]
fn bench_edit_to_served() {
    const RUNS: usize = 5;
    let dir = tempfile::tempdir().unwrap();
    let project = new_hello(dir.path(), "hello");
    let lib = project.join("src/lib.rs");
    let original = std::fs::read_to_string(&lib).unwrap();
    let edit = |n: usize| original.replace("Hello from", &format!("Edit {n} from"));

    // Baseline: cargo alone, the same edits.
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let build = || {
        let status = Command::new(&cargo)
            .args([
                "build",
                "--release",
                "--quiet",
                "--target",
                "wasm32-unknown-unknown",
            ])
            .current_dir(&project)
            .env(
                "CARGO_TARGET_DIR",
                common::repo_root().join("actors/target"),
            )
            .status()
            .unwrap();
        assert!(status.success());
    };
    build(); // warm: dependencies compiled, as they are when wash dev runs
    let mut cargo_times = Vec::new();
    for n in 0..RUNS {
        std::fs::write(&lib, edit(100 + n)).unwrap();
        let started = Instant::now();
        build();
        cargo_times.push(started.elapsed());
    }
    std::fs::write(&lib, &original).unwrap();

    let port = free_port();
    let mut dev = Dev::start(&project, port, &[]);
    dev.wait_for("ready", 1, BUILD_DEADLINE);
    let mut served_times = Vec::new();
    for n in 0..RUNS {
        // Let the poller see the previous state first.
        std::thread::sleep(Duration::from_millis(700));
        std::fs::write(&lib, edit(n)).unwrap();
        let took = wait_for_body(port, &format!("Edit {n} from hello!"), BUILD_DEADLINE);
        served_times.push(took);
    }
    let status = dev.interrupt();
    assert!(status.success());
    let (served, built) = (median(served_times.clone()), median(cargo_times.clone()));
    println!("edit-to-served (wash dev): {served_times:?}");
    println!("cargo build alone:         {cargo_times:?}");
    println!(
        "median of {RUNS}: edit-to-served {:.2} s, cargo build {:.2} s, ratio {:.2}x",
        served.as_secs_f64(),
        built.as_secs_f64(),
        served.as_secs_f64() / built.as_secs_f64()
    );
}
