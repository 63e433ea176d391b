//! Elastic instance pools and admission control, driven with the real `echo` actor.
//!
//! A call holds its instance across its host calls, so a host call that waits on a gate
//! keeps exactly one instance busy for as long as the test wants: every test counts
//! instances, queued callers and refusals instead of measuring time. Waits for a count to
//! be reached are bounded polls with a generous deadline.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use nimbus_runtime::{
    Actor, ActorOptions, BusyLimit, CallError, HostCall, HostCallFuture, HostCalls, LoadError,
    Runtime, RuntimeConfig,
};
use nimbus_tests::signed_actor;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

/// How long any count may take to be reached on a loaded machine.
const PATIENCE: Duration = Duration::from_secs(30);
/// Waits that must not run out in a test (queue waits and call deadlines).
const FOREVER: Duration = Duration::from_secs(120);

/// A host call that waits until the test opens the gate, counting who is inside.
struct Gate {
    open: Semaphore,
    entered: AtomicUsize,
    inside: AtomicUsize,
    max_inside: AtomicUsize,
}

impl Gate {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            open: Semaphore::new(0),
            entered: AtomicUsize::new(0),
            inside: AtomicUsize::new(0),
            max_inside: AtomicUsize::new(0),
        })
    }

    /// Lets every waiting and future host call through.
    fn release(&self) {
        self.open.close();
    }

    fn entered(&self) -> usize {
        self.entered.load(Ordering::SeqCst)
    }

    fn max_inside(&self) -> usize {
        self.max_inside.load(Ordering::SeqCst)
    }
}

impl HostCalls for Gate {
    fn host_call<'a>(&'a self, call: HostCall<'a>) -> HostCallFuture<'a> {
        Box::pin(async move {
            self.entered.fetch_add(1, Ordering::SeqCst);
            let inside = self.inside.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_inside.fetch_max(inside, Ordering::SeqCst);
            // A closed semaphore is the open gate: `acquire` fails at once.
            let _ = self.open.acquire().await;
            self.inside.fetch_sub(1, Ordering::SeqCst);
            Ok(call.payload.to_vec())
        })
    }
}

fn runtime(max_total_instances: u32) -> Runtime {
    Runtime::new(RuntimeConfig {
        max_total_instances,
        max_memory_bytes: 16 * 1024 * 1024,
        pool_trim_interval: Duration::from_millis(10),
        ..RuntimeConfig::default()
    })
    .unwrap()
}

/// Pool options with patient waits, so that only the bound under test refuses calls.
fn pool(min: usize, max: usize, gate: &Arc<Gate>) -> ActorOptions {
    ActorOptions {
        min_instances: min,
        max_instances: max,
        max_queued: 1_000,
        max_queue_wait: FOREVER,
        idle_timeout: FOREVER,
        call_timeout: Some(FOREVER),
        host_calls: gate.clone(),
        ..ActorOptions::default()
    }
}

fn load(runtime: &Runtime, options: ActorOptions) -> Actor {
    runtime.load_actor(&signed_actor("echo"), options).unwrap()
}

/// Starts a call that passes through the actor's gate.
fn gated_call(actor: &Actor, n: usize) -> JoinHandle<Result<Vec<u8>, CallError>> {
    let actor = actor.clone();
    tokio::spawn(async move { actor.call("HostCall", n.to_string().as_bytes()).await })
}

/// Polls `done` until it holds; fails the test after [`PATIENCE`].
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn all_ok(calls: Vec<JoinHandle<Result<Vec<u8>, CallError>>>) {
    for call in calls {
        let reply = tokio::time::timeout(PATIENCE, call)
            .await
            .expect("a call did not finish after its gate opened")
            .unwrap();
        assert!(reply.is_ok(), "{reply:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_grow_under_concurrent_calls_up_to_the_max_and_no_further() {
    let runtime = runtime(16);
    let gate = Gate::new();
    let actor = load(&runtime, pool(1, 4, &gate));
    assert_eq!(actor.live_instances(), 1, "the warm minimum starts at load");

    let calls: Vec<_> = (0..10).map(|n| gated_call(&actor, n)).collect();
    until("4 calls inside and 6 queued", || {
        gate.entered() == 4 && actor.queued_calls() == 6
    })
    .await;
    assert_eq!(actor.live_instances(), 4);
    assert_eq!(runtime.live_instances(), 4);
    assert_eq!(gate.max_inside(), 4);

    gate.release();
    all_ok(calls).await;
    assert_eq!(gate.entered(), 10, "every queued call ran");
    assert_eq!(
        gate.max_inside(),
        4,
        "never more than max_instances at once"
    );
    assert_eq!(actor.live_instances(), 4, "no more instances than the max");
    assert_eq!(actor.idle_instances(), 4);
    assert_eq!(actor.queued_calls(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_instances_are_dropped_back_to_the_minimum_after_the_idle_time() {
    let runtime = runtime(16);
    let gate = Gate::new();
    let actor = load(
        &runtime,
        ActorOptions {
            idle_timeout: Duration::from_millis(100),
            ..pool(2, 6, &gate)
        },
    );
    assert_eq!(actor.live_instances(), 2);

    let calls: Vec<_> = (0..6).map(|n| gated_call(&actor, n)).collect();
    until("6 calls inside", || gate.entered() == 6).await;
    assert_eq!(actor.live_instances(), 6);
    gate.release();
    all_ok(calls).await;

    // No call arrives from here on: the runtime's ticker does the trimming. (The pool's
    // count drops first; the host's once the trimmed instances are freed, just after.)
    until("the pool to shrink to its minimum", || {
        actor.live_instances() == 2 && runtime.live_instances() == 2
    })
    .await;
    assert_eq!(actor.idle_instances(), 2);
    assert_eq!(runtime.live_instances(), 2);
    // Several more trim passes never go below the warm minimum.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(actor.live_instances(), 2);
    assert_eq!(
        actor.call("Echo", b"still warm").await.unwrap(),
        b"still warm"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trapped_instance_is_discarded_and_never_reused() {
    let runtime = runtime(16);
    let gate = Gate::new();
    let actor = load(&runtime, pool(1, 4, &gate));
    assert_eq!(actor.call("Count", b"").await.unwrap(), b"1");
    assert_eq!(actor.call("Count", b"").await.unwrap(), b"2");
    match actor.call("Trap", b"").await {
        Err(CallError::Trapped { .. }) => {}
        other => panic!("expected a trap, got {other:?}"),
    }
    assert_eq!(actor.live_instances(), 0, "the trapped instance is gone");
    assert_eq!(runtime.live_instances(), 0, "and so is its host slot");
    // The next call gets a fresh instance: its counter starts again.
    assert_eq!(actor.call("Count", b"").await.unwrap(), b"1");
    assert_eq!(actor.live_instances(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_wide_cap_is_respected_across_two_actors() {
    let runtime = runtime(6);
    let (gate_a, gate_b) = (Gate::new(), Gate::new());
    let a = load(&runtime, pool(1, 5, &gate_a));
    let b = load(
        &runtime,
        ActorOptions {
            max_queue_wait: Duration::from_millis(200),
            ..pool(1, 5, &gate_b)
        },
    );
    assert_eq!(runtime.live_instances(), 2);

    let calls_a: Vec<_> = (0..5).map(|n| gated_call(&a, n)).collect();
    until("5 calls of A inside", || gate_a.entered() == 5).await;
    assert_eq!(a.live_instances(), 5);
    assert_eq!(runtime.live_instances(), 6, "the host is full");

    // B has one idle instance; two more calls of B find the host full, A's instances all
    // busy, and are refused once their queue wait is over, naming the host's bound.
    let calls_b: Vec<_> = (0..3).map(|n| gated_call(&b, n)).collect();
    until("two calls of B refused", || {
        calls_b.iter().filter(|c| c.is_finished()).count() == 2
    })
    .await;
    assert_eq!(gate_b.entered(), 1);
    let mut refused = 0;
    let mut inside = Vec::new();
    for call in calls_b {
        if !call.is_finished() {
            inside.push(call);
            continue;
        }
        match call.await.unwrap() {
            Err(CallError::Busy {
                limit: BusyLimit::HostInstances { max_total, .. },
                ..
            }) => {
                assert_eq!(max_total, 6);
                refused += 1;
            }
            other => panic!("expected the host's bound, got {other:?}"),
        }
    }
    assert_eq!(refused, 2);
    assert_eq!(b.live_instances(), 1);
    assert_eq!(a.live_instances() + b.live_instances(), 6);
    assert_eq!(runtime.live_instances(), 6);

    gate_a.release();
    gate_b.release();
    all_ok(calls_a).await;
    all_ok(inside).await;
    assert_eq!(runtime.live_instances(), 6, "never more than the cap");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_host_cap_idle_instances_of_another_actor_make_room() {
    let runtime = runtime(6);
    let (gate_a, gate_b) = (Gate::new(), Gate::new());
    let a = load(&runtime, pool(1, 5, &gate_a));
    let b = load(&runtime, pool(1, 5, &gate_b));
    let calls_a: Vec<_> = (0..5).map(|n| gated_call(&a, n)).collect();
    until("5 calls of A inside", || gate_a.entered() == 5).await;
    gate_a.release();
    all_ok(calls_a).await;
    assert_eq!(
        a.idle_instances(),
        5,
        "A keeps its instances until they idle out"
    );
    assert_eq!(runtime.live_instances(), 6);

    // B grows by 3 to 4 instances, taking 3 of A's spare idle ones; A keeps its minimum.
    let calls_b: Vec<_> = (0..4).map(|n| gated_call(&b, n)).collect();
    until("4 calls of B inside", || gate_b.entered() == 4).await;
    assert_eq!(b.live_instances(), 4);
    assert_eq!(a.live_instances(), 2);
    assert_eq!(runtime.live_instances(), 6);
    gate_b.release();
    all_ok(calls_b).await;
    assert_eq!(runtime.live_instances(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_beyond_max_and_queue_is_refused_quickly_within_bounds_while_another_actor_answers()
{
    const MAX: usize = 3;
    const QUEUE: usize = 5;
    const FLOOD: usize = 40;
    let runtime = runtime(16);
    let gate = Gate::new();
    let flooded = load(
        &runtime,
        ActorOptions {
            max_queued: QUEUE,
            ..pool(1, MAX, &gate)
        },
    );
    let other = load(
        &runtime,
        ActorOptions {
            max_instances: 2,
            ..ActorOptions::default()
        },
    );

    // Samples the counts all along, on a thread of its own.
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (flooded, runtime, stop) = (flooded.clone(), runtime.clone(), stop.clone());
        std::thread::spawn(move || {
            let (mut live, mut queued, mut total) = (0, 0, 0);
            while !stop.load(Ordering::SeqCst) {
                live = flooded.live_instances().max(live);
                queued = flooded.queued_calls().max(queued);
                total = runtime.live_instances().max(total);
                std::thread::yield_now();
            }
            (live, queued, total)
        })
    };

    let admitted: Vec<_> = (0..MAX + QUEUE).map(|n| gated_call(&flooded, n)).collect();
    until("the instances busy and the queue full", || {
        gate.entered() == MAX && flooded.queued_calls() == QUEUE
    })
    .await;

    // The flood: refused while the gate is still shut, so without waiting for an
    // instance; every refusal names the queue bound.
    let flood: Vec<_> = (0..FLOOD).map(|n| gated_call(&flooded, n)).collect();
    for call in flood {
        let result = tokio::time::timeout(PATIENCE, call)
            .await
            .expect("a refused call waited for an instance")
            .unwrap();
        match result {
            Err(
                e @ CallError::Busy {
                    limit: BusyLimit::Queue { .. },
                    ..
                },
            ) => {
                let text = e.to_string();
                assert!(text.contains("5 callers already wait"), "{text}");
                assert!(text.contains("max_queued"), "{text}");
            }
            other => panic!("expected a full queue, got {other:?}"),
        }
    }
    // Another actor on the same runtime keeps answering meanwhile.
    for n in 0..20 {
        let payload = format!("other {n}");
        assert_eq!(
            other.call("Echo", payload.as_bytes()).await.unwrap(),
            payload.as_bytes()
        );
    }
    assert_eq!(flooded.live_instances(), MAX);
    assert_eq!(flooded.queued_calls(), QUEUE);

    gate.release();
    all_ok(admitted).await;
    stop.store(true, Ordering::SeqCst);
    let (live, queued, total) = sampler.join().unwrap();
    assert!(live <= MAX, "{live} live instances");
    assert!(queued <= QUEUE, "{queued} queued callers");
    assert!(
        total <= MAX + other.max_instances(),
        "{total} instances on the host"
    );
    assert_eq!(gate.max_inside(), MAX);
    assert_eq!(gate.entered(), MAX + QUEUE, "refused calls never ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_waiting_past_the_queue_wait_is_refused_with_the_instance_bound() {
    let runtime = runtime(16);
    let gate = Gate::new();
    let actor = load(
        &runtime,
        ActorOptions {
            max_queue_wait: Duration::from_millis(50),
            ..pool(1, 1, &gate)
        },
    );
    let holding = gated_call(&actor, 0);
    until("the one instance busy", || gate.entered() == 1).await;
    for _ in 0..2 {
        match actor.call("Echo", b"late").await {
            Err(
                e @ CallError::Busy {
                    limit:
                        BusyLimit::Instances {
                            max_instances: 1, ..
                        },
                    ..
                },
            ) => assert!(e.to_string().contains("max_instances"), "{e}"),
            other => panic!("expected the instance bound, got {other:?}"),
        }
    }
    assert_eq!(actor.queued_calls(), 0, "refused callers leave the queue");
    gate.release();
    all_ok(vec![holding]).await;
    assert_eq!(actor.call("Echo", b"free").await.unwrap(), b"free");
}

#[test]
fn the_warm_minimum_starts_at_load_as_far_as_the_host_cap_allows() {
    let runtime = runtime(4);
    let gate = Gate::new();
    let warm = load(&runtime, pool(3, 8, &gate));
    assert_eq!(warm.live_instances(), 3);
    // Only one slot is left: the first instance starts, the rest comes on demand.
    let partial = load(&runtime, pool(4, 8, &gate));
    assert_eq!(partial.live_instances(), 1);
    assert_eq!(runtime.live_instances(), 4);
    // Both actors are at their minimum, so nothing can be reclaimed for a third.
    drop(partial);
    settle(&runtime, 3);
    let last = load(&runtime, pool(1, 1, &gate));
    match runtime.load_actor(&signed_actor("echo"), pool(1, 1, &gate)) {
        Err(e @ LoadError::HostFull { max_total: 4 }) => {
            assert!(e.to_string().contains("max_total_instances"), "{e}")
        }
        other => panic!("expected a full host, got {other:?}"),
    }
    drop(last);
    settle(&runtime, 3);
}

/// Waits (bounded) for the host's count to reach `live`: a dropped actor's instances go
/// at once, unless the ticker's trim pass holds the pool for that moment.
fn settle(runtime: &Runtime, live: usize) {
    let deadline = std::time::Instant::now() + PATIENCE;
    while runtime.live_instances() != live {
        assert!(
            std::time::Instant::now() < deadline,
            "{} instances on the host, expected {live}",
            runtime.live_instances()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}
