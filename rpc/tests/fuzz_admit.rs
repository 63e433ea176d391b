//! Property tests of what a served RPC subject does with a request body, without NATS:
//! [`Limits::admit`] (size, decoding, chunking, anti-forgery token) and [`respond`] turn
//! any bytes into an admitted invocation or a specific [`InvocationError`], never a
//! panic, and the reply always encodes as a decodable InvocationResponse. A signed
//! invocation altered in transit is never admitted with different signed content.
//!
//! Inputs: random bytes; Invocation-shaped MessagePack (right, wrong and missing fields
//! in every encoding width); and signed invocations truncated, bit-flipped and spliced.
//! Generators are shared with nimbus-core's decoder tests.

#![allow(clippy::unwrap_used)] // a panic is the failure report

#[path = "../../core/tests/fuzz_support/mod.rs"]
mod fuzz_support;

use std::sync::OnceLock;

use fuzz_support::*;
use nimbus_core::claims::sign_invocation;
use nimbus_core::keys::{KeyKind, KeyPair, TrustedIssuers};
use nimbus_core::wire::{Invocation, InvocationResponse};
use nimbus_rpc::{ErrorKind, Handler, InvocationError, Limits, respond};
use proptest::prelude::*;

/// The largest payload the test server takes; generated `content_length`s fall on both
/// sides of it.
const MAX_PAYLOAD: usize = 4096;

struct Fixture {
    cluster: KeyPair,
    /// Signing on (the default of a lattice).
    signed: Limits,
    /// Signing off.
    open: Limits,
    /// Valid signed invocations and their encodings, to alter.
    samples: Vec<(Invocation, Vec<u8>)>,
}

fn limits(trusted: Option<TrustedIssuers>) -> Limits {
    Limits {
        max_payload: MAX_PAYLOAD,
        trusted,
        receiver: "fuzz server of lattice `fuzz`".to_string(),
        lattice: "fuzz".to_string(),
        replay: Default::default(),
    }
}

fn sign(cluster: &KeyPair, inv: &mut Invocation) {
    inv.encoded_claims = sign_invocation(
        cluster,
        &inv.id,
        &inv.origin_url(),
        &inv.target_url(),
        &inv.operation,
        &inv.msg,
    )
    .unwrap();
}

/// `invocation(g)` made admissible: payload within limits, not chunked, signed.
fn signed_invocation(g: &mut Gen, cluster: &KeyPair) -> Invocation {
    let mut inv = invocation(g);
    if inv.content_length.is_some() {
        inv.content_length = Some(inv.msg.len() as u64);
    }
    sign(cluster, &mut inv);
    inv
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let cluster = KeyPair::generate(KeyKind::Cluster);
        let trusted = TrustedIssuers::new([cluster.public_key()]).unwrap();
        let mut g = Gen::new(0x5eed);
        let samples = (0..32)
            .map(|_| {
                let inv = signed_invocation(&mut g, &cluster);
                let bytes = inv.to_msgpack().unwrap();
                (inv, bytes)
            })
            .collect();
        Fixture {
            cluster,
            signed: limits(Some(trusted)),
            open: limits(None),
            samples,
        }
    })
}

/// Echoes the payload; fails by operation name like a real actor might.
struct Echo;

impl Handler for Echo {
    async fn handle(&self, inv: Invocation) -> Result<Vec<u8>, InvocationError> {
        match inv.operation.as_str() {
            "Fail" => Err(InvocationError::failed("the guest said no")),
            _ => Ok(inv.msg),
        }
    }
}

// ---- what every request must satisfy ---------------------------------------------------

/// The refusal kinds `admit` may give.
fn is_admission_error(e: &InvocationError) -> bool {
    matches!(
        e.kind(),
        ErrorKind::Malformed | ErrorKind::PayloadTooLarge | ErrorKind::ClaimsInvalid
    ) && !e.message().is_empty()
        && InvocationError::from_wire(e.to_wire()) == *e
}

/// `limits` with a replay guard of its own: the properties here admit the same samples
/// again and again, which a shared guard would (rightly) refuse as replays.
fn fresh(limits: &Limits) -> Limits {
    Limits {
        replay: Default::default(),
        ..limits.clone()
    }
}

/// Admits `body` under both limits and checks the outcome; returns what signing-on
/// admitted.
fn admit_cleanly(body: &[u8]) -> Option<Invocation> {
    let f = fixture();
    let open = f.open.admit(body);
    match &open {
        Ok(inv) => {
            assert_eq!(Invocation::from_msgpack(body).as_ref().ok(), Some(inv));
            assert!(!inv.is_chunked());
            assert!(inv.msg.len() <= MAX_PAYLOAD);
        }
        Err((_, e)) => assert!(is_admission_error(e), "{e:?}"),
    }
    match fresh(&f.signed).admit(body) {
        Ok(inv) => {
            assert_eq!(
                open.as_ref().ok(),
                Some(&inv),
                "signing adds a check, never a value"
            );
            Some(inv)
        }
        Err((_, e)) => {
            assert!(is_admission_error(&e), "{e:?}");
            None
        }
    }
}

/// What the server replies to `body` (signing on): encodable, decodable, and a failure
/// exactly when the request was refused or the handler failed.
fn reply_cleanly(body: &[u8]) {
    let f = fixture();
    let admitted = fresh(&f.signed).admit(body).ok();
    thread_local! {
        static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
    }
    let response = RUNTIME.with(|rt| rt.block_on(respond(&Echo, &fresh(&f.signed), body)));
    let wire = response.to_msgpack().unwrap();
    assert_eq!(InvocationResponse::from_msgpack(&wire).unwrap(), response);
    match admitted {
        Some(inv) if inv.operation != "Fail" => {
            assert_eq!(response.invocation_id, inv.id);
            assert_eq!(response.into_result(), Ok(inv.msg));
        }
        _ => {
            let error = response.into_result().unwrap_err();
            assert!(!error.is_empty());
        }
    }
}

// ---- properties ------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(20_000))]

    #[test]
    fn random_bytes_are_refused_cleanly(bytes in random_bytes(128)) {
        prop_assert!(admit_cleanly(&bytes).is_none());
    }

    #[test]
    fn error_texts_from_peers_classify_without_panicking(seed in any::<u64>()) {
        let mut g = Gen::new(seed);
        let text = if g.bool() {
            g.text()
        } else {
            // A known phrase and anything after it.
            let phrase = g.pick(&[
                "no responders: ", "timed out: ", "busy: ", "actor trapped: ",
                "no link for contract ", "claims invalid: ", "capability ",
                "unknown target: ", "unknown operation ", "payload too large (",
                "malformed invocation: ", "lattice connection failed: ",
            ]);
            format!("{phrase}{}{}", g.text(), g.pick(&["", " not granted to actor M"]))
        };
        let e = InvocationError::from_wire(text.clone());
        prop_assert_eq!(e.message(), text.as_str());
        prop_assert_eq!(InvocationError::from_wire(e.to_wire()), e);
    }
}

proptest! {
    #![proptest_config(config(10_000))]

    #[test]
    fn invocation_shaped_msgpack_is_admitted_or_refused_cleanly(seed in any::<u64>()) {
        // Its `encoded_claims` is no token of the fixture's key: only signing-off may
        // admit it.
        let body = invocation_mp(&mut Gen::new(seed)).encode();
        prop_assert!(admit_cleanly(&body).is_none());
    }

    #[test]
    fn altered_signed_invocations_never_pass_with_other_signed_content(seed in any::<u64>()) {
        let mut g = Gen::new(seed);
        let f = fixture();
        let (original, bytes) = &f.samples[g.below(f.samples.len())];
        let altered = g.mutate(bytes, 4);
        if let Some(inv) = admit_cleanly(&altered) {
            // What the token signs: id, entity URLs, operation and payload. (Fields it
            // does not sign, such as `host_id`, `content_length` or an entity's contract
            // spelling within the same URL, may differ.)
            prop_assert_eq!(&inv.id, &original.id);
            prop_assert_eq!(inv.origin_url(), original.origin_url());
            prop_assert_eq!(inv.target_url(), original.target_url());
            prop_assert_eq!(&inv.operation, &original.operation);
            prop_assert_eq!(&inv.msg, &original.msg);
        }
    }
}

proptest! {
    // Each case signs once and verifies once or twice (Ed25519, JSON, base64).
    #![proptest_config(config(2_000))]

    #[test]
    fn signed_invocations_are_admitted_unchanged(seed in any::<u64>()) {
        let f = fixture();
        let inv = signed_invocation(&mut Gen::new(seed), &f.cluster);
        let body = inv.to_msgpack().unwrap();
        prop_assert_eq!(admit_cleanly(&body), Some(inv));
    }

    #[test]
    fn every_request_gets_a_decodable_reply(seed in any::<u64>()) {
        let mut g = Gen::new(seed);
        let f = fixture();
        let body = match g.below(4) {
            0 => g.bytes(128),
            1 => invocation_mp(&mut g).encode(),
            2 => {
                let (_, bytes) = &f.samples[g.below(f.samples.len())];
                g.mutate(bytes, 3)
            }
            _ => {
                let mut inv = signed_invocation(&mut g, &f.cluster);
                if g.one_in(3) {
                    inv.operation = "Fail".to_string();
                    sign(&f.cluster, &mut inv);
                }
                inv.to_msgpack().unwrap()
            }
        };
        reply_cleanly(&body);
    }
}
