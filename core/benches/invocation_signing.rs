//! What signing an invocation costs, against what it must cost (issue 11, item 3).
//!
//! The inherent cost of an anti-forgery token is one Ed25519 signature by the sender and
//! one verification by the receiver. Everything else in `sign_invocation` +
//! `verify_invocation` (SHA-256 of the message, JSON and base64 of the JWT, a fresh `jti`,
//! re-deriving the public key, parsing and decoding the key of the issuer) is overhead.
//! This benchmark times both in the same run, interleaved in rounds, and prints the ratio:
//!
//! `cargo bench -p nimbus-core --bench invocation_signing`
//! (`NIMBUS_BENCH_ROUNDS`, default 7; `NIMBUS_BENCH_ITERS` per round and case, default 2000)

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use nimbus_core::claims::{
    ExpectedInvocation, invocation_hash, sign_invocation, verify_invocation,
};
use nimbus_core::keys::{KeyKind, KeyPair, TrustedIssuers};
use nimbus_core::replay::ReplayGuard;

const PAYLOAD: usize = 128;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Mean time of one run of `f`, over `iters` runs.
fn time(iters: u64, mut f: impl FnMut()) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        f();
    }
    start.elapsed() / u32::try_from(iters).unwrap_or(u32::MAX)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn us(d: Duration) -> String {
    format!("{:.2} µs", d.as_secs_f64() * 1e6)
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is ignored (one benchmark here).
    let rounds = env_or("NIMBUS_BENCH_ROUNDS", 7).max(1);
    let iters = env_or("NIMBUS_BENCH_ITERS", 2_000).max(1);

    let cluster = KeyPair::generate(KeyKind::Cluster);
    let seed = cluster.seed().unwrap();
    let raw = nkeys::KeyPair::from_seed(&seed).unwrap();
    let raw_public = nkeys::KeyPair::from_public_key(&raw.public_key()).unwrap();
    let issuers = TrustedIssuers::new([cluster.public_key()]).unwrap();
    let msg = vec![0x5a_u8; PAYLOAD];
    let id = "6b4f2b55-0a8e-4b8f-9d2f-3f0c1e3f5a77";
    let origin = "wasmbus://VBENCHPROVIDERXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX/default";
    let target =
        "wasmbus://MBENCHACTORXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX/HandleRequest";
    let token = sign_invocation(&cluster, id, origin, target, "HandleRequest", &msg).unwrap();
    // The signing input of a real token: what the inherent Ed25519 work signs.
    let (signing_input, _) = token.rsplit_once('.').unwrap();
    let signing_input = signing_input.as_bytes().to_vec();
    let signature = raw.sign(&signing_input).unwrap();
    let expected = ExpectedInvocation {
        id,
        origin_url: origin,
        target_url: target,
        operation: "HandleRequest",
        msg: &msg,
    };

    let names = [
        "ed25519 sign (raw)",
        "ed25519 verify (raw)",
        "sha256 of the message",
        "sign_invocation",
        "verify_invocation",
        "replay guard admit",
    ];
    // The replay guard's hot path: a distinct, verified token per call, against a guard
    // already holding ~50,000 live entries (a busy host's steady state).
    let verified = verify_invocation(&token, &expected, &issuers).unwrap();
    let guard = ReplayGuard::default();
    let mut fresh = verified.clone();
    let mut n: u64 = 0;
    let mut next_claims = move || {
        n += 1;
        fresh.jti = format!("{n:032x}");
        fresh.clone()
    };
    let now = nimbus_core::claims::unix_now();
    for _ in 0..50_000 {
        guard.admit(&next_claims(), now).unwrap();
    }
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); names.len()];
    for round in 0..rounds {
        // Alternate the order so that load from elsewhere hits every case alike.
        let mut order: Vec<usize> = (0..names.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for case in order {
            let t = match case {
                0 => time(iters, || {
                    black_box(raw.sign(black_box(&signing_input)).unwrap());
                }),
                1 => time(iters, || {
                    raw_public
                        .verify(black_box(&signing_input), black_box(&signature))
                        .unwrap();
                }),
                2 => time(iters, || {
                    black_box(invocation_hash(
                        origin,
                        target,
                        "HandleRequest",
                        black_box(&msg),
                    ));
                }),
                3 => time(iters, || {
                    black_box(
                        sign_invocation(&cluster, id, origin, target, "HandleRequest", &msg)
                            .unwrap(),
                    );
                }),
                4 => time(iters, || {
                    black_box(verify_invocation(black_box(&token), &expected, &issuers).unwrap());
                }),
                _ => {
                    // Claims prepared outside the timed loop: only `admit` is measured.
                    let batch: Vec<_> = (0..iters).map(|_| next_claims()).collect();
                    let mut it = batch.iter();
                    time(iters, || {
                        guard.admit(black_box(it.next().unwrap()), now).unwrap();
                    })
                }
            };
            samples[case].push(t);
        }
    }
    let m: Vec<Duration> = samples.into_iter().map(median).collect();
    println!("invocation signing, {PAYLOAD} B message, median of {rounds} rounds x {iters}:");
    for (name, t) in names.iter().zip(&m) {
        println!("  {name:<24} {}", us(*t));
    }
    let inherent = m[0] + m[1];
    let full = m[3] + m[4];
    println!(
        "sign + verify: ours {} vs inherent (raw Ed25519 sign + verify) {} = {:.2}x; overhead {} per call",
        us(full),
        us(inherent),
        full.as_secs_f64() / inherent.as_secs_f64(),
        us(full.saturating_sub(inherent))
    );
    println!(
        "replay guard: {} per admitted invocation ({:.1}% of sign + verify), {} entries held",
        us(m[5]),
        100.0 * m[5].as_secs_f64() / full.as_secs_f64(),
        guard.len()
    );
}
