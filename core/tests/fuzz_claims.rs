//! Property tests of the claims decoders: whatever a module file or an invocation's
//! `encoded_claims` holds, reading a wascap token (header, claims, signature), walking a
//! wasm module's sections, extracting its embedded claims and parsing nkeys return a
//! value or a specific error, and never panic. Forged or altered tokens and modules never
//! verify.
//!
//! Inputs: random text and bytes; JWT-shaped strings of three base64url segments holding
//! random or claims-shaped JSON (real issuer keys included, so checks reach the signature);
//! wasm headers followed by random, mis-sized and claims sections; and valid tokens,
//! modules and keys with random edits. Valid claims round-trip through signing.

#![allow(clippy::unwrap_used)] // a panic is the failure report

mod fuzz_support;

use std::collections::BTreeMap;
use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use fuzz_support::*;
use nimbus_core::claims::{
    self, Actor, ActorClaimsParams, CapabilityProvider, Claims, ClaimsError, ExpectedInvocation,
    Invocation, decode_token, encode_claims, extract_token, sign_actor, sign_invocation, unix_now,
    verify_actor, verify_actor_with_issuers, verify_invocation, verify_token,
};
use nimbus_core::keys::{self, KeyKind, KeyPair, TrustedIssuers};
use nimbus_core::wasm;
use proptest::prelude::*;
use serde_json::{Value, json};

/// Keys, tokens and a signed module made once for all cases.
struct Fixture {
    account: KeyPair,
    module_key: KeyPair,
    cluster: KeyPair,
    service_key: KeyPair,
    trusted: TrustedIssuers,
    module: Vec<u8>,
    signed_module: Vec<u8>,
    actor_jwt: String,
    invocation_jwt: String,
    seeds: Vec<String>,
}

const INVOCATION_ID: &str = "0b8a4b4e-3c5e-4a5e-9f49-3d8a1f6c2b10";
const ORIGIN_URL: &str = "wasmbus://MBCFOPM6JW2APJLXJD3Z5O4CN7CPYJ2B4FTKLJUR5YR5MITIU7HD3WD5";
const TARGET_URL: &str = "wasmbus://wasmcloud/keyvalue/default/VAG3QITQQ2ODAOWB5TTQSDJ53XK3SHBEIFNK4AYJ5RKAX2UNSCAPHA5M/KeyValue.Get";

fn expected_invocation() -> ExpectedInvocation<'static> {
    ExpectedInvocation {
        id: INVOCATION_ID,
        origin_url: ORIGIN_URL,
        target_url: TARGET_URL,
        operation: "KeyValue.Get",
        msg: b"counter",
    }
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let account = KeyPair::generate(KeyKind::Account);
        let module_key = KeyPair::generate(KeyKind::Module);
        let cluster = KeyPair::generate(KeyKind::Cluster);
        let service_key = KeyPair::generate(KeyKind::Service);
        let module = wat::parse_str(
            r#"(module
                (memory 1)
                (data (i32.const 0) "data")
                (func (export "__guest_call") (param i32 i32) (result i32) i32.const 1)
                (@custom "before" "1"))"#,
        )
        .unwrap();
        let params = ActorClaimsParams {
            name: Some("fuzz".into()),
            caps: Some(vec!["wasmcloud:keyvalue".into()]),
            tags: vec!["t".into()],
            ver: Some("1.0".into()),
            rev: Some(1),
            call_alias: Some("fuzz/actor".into()),
            ..ActorClaimsParams::default()
        };
        let signed_module = sign_actor(&module, &params, &account, &module_key).unwrap();
        let actor_jwt = extract_token(&signed_module).unwrap().unwrap().jwt;
        let e = expected_invocation();
        let invocation_jwt = sign_invocation(
            &cluster,
            e.id,
            e.origin_url,
            e.target_url,
            e.operation,
            e.msg,
        )
        .unwrap();
        let trusted = TrustedIssuers::new([cluster.public_key()]).unwrap();
        let seeds = [&account, &module_key, &cluster]
            .iter()
            .map(|k| k.seed().unwrap())
            .collect();
        Fixture {
            account,
            module_key,
            cluster,
            service_key,
            trusted,
            module,
            signed_module,
            actor_jwt,
            invocation_jwt,
            seeds,
        }
    })
}

// ---- what every decode must satisfy ----------------------------------------------------

/// Every token reader on `jwt`. None may panic, and since no input here is signed by
/// the fixture's keys over exactly its content, none may verify unless it is the
/// untouched fixture token.
fn all_token_readers(jwt: &str) {
    let f = fixture();
    let actor = decode_token::<Actor>(jwt);
    let _ = decode_token::<Invocation>(jwt);
    let _ = decode_token::<CapabilityProvider>(jwt);
    let _ = decode_token::<Value>(jwt);
    if let Ok(token) = &actor {
        // A decoded token's claims encode again and decode to the same claims.
        let again = encode_claims(&token.claims, &f.account).unwrap();
        assert_eq!(decode_token::<Actor>(&again).unwrap().claims, token.claims);
        let _ = claims::format_unix_time(token.claims.iat);
    }
    let now = unix_now();
    let verified = verify_token::<Actor>(jwt, KeyKind::Module, now);
    if let Err(e) = &verified {
        assert!(!e.to_string().is_empty());
    }
    assert_eq!(
        verified.is_ok(),
        jwt == f.actor_jwt,
        "only the untouched actor token verifies: {jwt}"
    );
    let _ = verify_token::<CapabilityProvider>(jwt, KeyKind::Service, now);
    let inv = verify_invocation(jwt, &expected_invocation(), &f.trusted);
    assert_eq!(
        inv.is_ok(),
        jwt == f.invocation_jwt,
        "only the untouched invocation token verifies: {jwt}"
    );
}

/// Every module reader on `bytes`. An Ok from the walker must describe the bytes
/// exactly; only the untouched signed module verifies.
fn all_module_readers(bytes: &[u8]) {
    let f = fixture();
    if let Ok(sections) = wasm::sections(bytes) {
        // The raw sections tile the module after the 8-byte header.
        let total: usize = sections.iter().map(|s| s.raw.len()).sum();
        assert_eq!(total + 8, bytes.len());
        let stripped = wasm::strip_claims_sections(bytes).unwrap();
        assert!(
            wasm::sections(&stripped)
                .unwrap()
                .iter()
                .all(|s| !s.is_claims())
        );
        let canonical = wasm::canonical_unsigned(bytes).unwrap();
        assert!(wasm::sections(&canonical).is_ok());
        assert_eq!(
            wasm::module_hash(bytes).unwrap(),
            wasm::sha256_upper_hex(&stripped)
        );
        let embedded = wasm::embed_custom_section(bytes, "fuzz", b"data").unwrap();
        assert_eq!(
            wasm::custom_sections(&embedded, "fuzz").unwrap().last(),
            Some(&&b"data"[..])
        );
    } else {
        assert!(wasm::strip_claims_sections(bytes).is_err());
        assert!(wasm::module_hash(bytes).is_err());
        assert!(matches!(extract_token(bytes), Err(ClaimsError::NotWasm(_))));
    }
    if let Ok(Some(token)) = extract_token(bytes) {
        assert!(!token.jwt.is_empty());
    }
    let verified = verify_actor(bytes, unix_now());
    assert_eq!(
        verified.is_ok(),
        bytes == f.signed_module.as_slice(),
        "only the untouched module verifies"
    );
    let _ = verify_actor_with_issuers(bytes, unix_now(), &[f.account.public_key()]);
}

/// Every key reader on `text`.
fn all_key_readers(text: &str) {
    if let Ok(kind) = keys::parse_public_key(text) {
        assert!(keys::parse_public_key_of_kind(text, kind).is_ok());
        // A valid key may still not be a curve point; either way no panic.
        let _ = TrustedIssuers::new([text]);
        let _ = keys::verify_signature(text, b"m", &[0u8; 64]);
    }
    if let Ok(kp) = KeyPair::from_seed(text) {
        assert_eq!(
            KeyPair::from_seed(&kp.seed().unwrap())
                .unwrap()
                .public_key(),
            kp.public_key()
        );
        let sig = kp.sign(b"m").unwrap();
        kp.verify(b"m", &sig).unwrap();
    }
    let _ = KeyPair::from_seed_of_kind(text, KeyKind::Cluster);
    let _ = TrustedIssuers::new([text]);
}

// ---- generators ----------------------------------------------------------------------

/// A key-like value: a real key of the fixture, another kind's, or text.
fn key_text(g: &mut Gen) -> String {
    let f = fixture();
    match g.below(6) {
        0 => f.account.public_key(),
        1 => f.module_key.public_key(),
        2 => f.cluster.public_key(),
        3 => f.service_key.public_key(),
        _ => g.text(),
    }
}

/// Builds a well-typed value of one claims field.
type FieldGen = fn(&mut Gen) -> Value;

/// A claims-shaped JSON value: the standard and wascap keys of actor, provider and
/// invocation tokens, each right, wrong or missing (rarely so when `careful`).
fn claims_json(g: &mut Gen, careful: bool) -> Value {
    let (field_odds, top_odds): (&[u32], &[u32]) = if careful {
        (&[60, 1, 2], &[60, 1, 1])
    } else {
        (&[6, 1, 2], &[8, 1, 1])
    };
    let mut wascap = serde_json::Map::new();
    let fields: [(&str, FieldGen); 15] = [
        ("hash", |g| Value::from(g.text())),
        ("name", |g| Value::from(g.text())),
        ("tags", |g| Value::from(g.vec(3, Gen::text))),
        ("caps", |g| Value::from(g.vec(3, Gen::text))),
        ("rev", |g| Value::from(g.number() as i64)),
        ("ver", |g| Value::from(g.text())),
        ("call_alias", |g| Value::from(g.text())),
        ("prov", |g| Value::from(g.bool())),
        ("target_url", |_| Value::from(TARGET_URL)),
        ("origin_url", |_| Value::from(ORIGIN_URL)),
        ("capid", |g| Value::from(g.text())),
        ("vendor", |g| Value::from(g.text())),
        ("target_hashes", |g| g.json_string_map()),
        ("config_schema", |g| g.json_value(3)),
        ("jti", |g| Value::from(g.text())),
    ];
    for (name, good) in fields {
        match g.weighted(field_odds) {
            0 => {
                wascap.insert(name.into(), good(g));
            }
            1 => {
                wascap.insert(name.into(), g.json_value(2));
            }
            _ => {}
        }
    }
    let f = fixture();
    let mut claims = serde_json::Map::new();
    let now = unix_now();
    let n = g.number();
    let top: [(&str, Value); 8] = [
        (
            "exp",
            Value::from(g.pick(&[0, now - 10, now + 1_000, u64::MAX, n])),
        ),
        ("jti", Value::from(g.text())),
        ("iat", Value::from(g.pick(&[0, now, u64::MAX, n]))),
        (
            "iss",
            Value::from(match g.below(if careful { 3 } else { 1 }) {
                0 => key_text(g),
                1 => f.account.public_key(),
                _ => f.cluster.public_key(),
            }),
        ),
        (
            "sub",
            Value::from(if g.bool() {
                f.module_key.public_key()
            } else if g.bool() {
                INVOCATION_ID.to_string()
            } else {
                key_text(g)
            }),
        ),
        ("nbf", Value::from(g.pick(&[0, now + 1_000, n]))),
        ("wascap", Value::Object(wascap)),
        ("wascap_revision", Value::from(g.pick(&[0, 1, 2, 3, n]))),
    ];
    for (name, good) in top {
        match g.weighted(top_odds) {
            0 => {
                claims.insert(name.into(), good);
            }
            1 => {
                claims.insert(name.into(), g.json_value(2));
            }
            _ => {}
        }
    }
    Value::Object(claims)
}

fn header_json(g: &mut Gen) -> Value {
    match g.weighted(&[6, 2, 1, 1]) {
        0 => json!({"typ": "jwt", "alg": "Ed25519"}),
        1 => json!({
            "typ": g.pick(&["jwt", "JWT", "", "x"]),
            "alg": g.pick(&["Ed25519", "ed25519", "HS256", "none", "", "ES256"]),
        }),
        2 => Value::Object(g.json_object_with(&["typ", "alg", "kid"], 1)),
        _ => g.json_value(2),
    }
}

/// One token segment from `bytes`: base64url without padding as wascap writes it, or
/// padded, or standard base64, or the bytes as text.
fn segment(g: &mut Gen, bytes: &[u8], careful: bool) -> String {
    match g.weighted(&[if careful { 60 } else { 12 }, 1, 1, 1]) {
        0 => URL_SAFE_NO_PAD.encode(bytes),
        1 => base64::engine::general_purpose::URL_SAFE.encode(bytes),
        2 => STANDARD.encode(bytes),
        _ => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// A string with the shape of a JWT: three segments of base64 JSON, about half of them
/// `careful` (at most a thing or two wrong, so checks get as far as the signature).
fn jwt_shaped(g: &mut Gen) -> String {
    let careful = g.bool();
    let header = match g.weighted(&[8, 1]) {
        0 if careful && !g.one_in(10) => br#"{"typ":"jwt","alg":"Ed25519"}"#.to_vec(),
        0 => serde_json::to_vec(&header_json(g)).unwrap(),
        _ => g.bytes(24),
    };
    let claims = match g.weighted(&[if careful { 40 } else { 8 }, 1, 1]) {
        0 => serde_json::to_vec(&claims_json(g, careful)).unwrap(),
        1 => serde_json::to_vec(&g.json_value(3)).unwrap(),
        _ => g.bytes(48),
    };
    let signature = match g.weighted(&[6, 1, 1]) {
        0 => (0..64).map(|_| g.u64() as u8).collect(),
        1 => g.bytes(80),
        _ => fixture()
            .actor_jwt
            .rsplit('.')
            .next()
            .map(|s| URL_SAFE_NO_PAD.decode(s).unwrap())
            .unwrap(),
    };
    let mut segments = vec![
        segment(g, &header, careful),
        segment(g, &claims, careful),
        segment(g, &signature, careful),
    ];
    match g.below(if careful { 100 } else { 12 }) {
        0 => {
            segments.pop();
        }
        1 => segments.push(g.text()),
        2 => segments.insert(g.below(3), String::new()),
        _ => {}
    }
    segments.join(".")
}

/// Text for the token and key readers: any characters, or those of base64url and dots.
fn token_text(g: &mut Gen) -> String {
    const B64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/";
    let n = g.below(120);
    if g.bool() {
        (0..n).map(|_| char::from(g.pick(B64URL))).collect()
    } else {
        (0..n).map(|_| g.char()).collect()
    }
}

/// A LEB128 `u32`, sometimes padded to more bytes than needed.
fn leb(g: &mut Gen, mut value: u32) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
    if g.one_in(5) && out.len() < 5 {
        let last = out.len() - 1;
        out[last] |= 0x80;
        while out.len() < 4 {
            out.push(0x80);
        }
        out.push(0x00);
    }
    out
}

/// A wasm header and a few sections: standard ones with random payloads, custom ones
/// (sometimes the claims sections, holding JWT-shaped or random text), sizes sometimes
/// wrong.
fn wasm_shaped(g: &mut Gen) -> Vec<u8> {
    let mut out = match g.weighted(&[10, 1, 1]) {
        0 => b"\0asm\x01\0\0\0".to_vec(),
        1 => b"\0asm\x0d\0\x01\0".to_vec(),
        _ => {
            let mut h = b"\0asm".to_vec();
            h.extend(g.bytes(4));
            h
        }
    };
    for _ in 0..g.below(6) {
        let id = if g.bool() { 0 } else { g.below(14) as u8 };
        let payload = if id == 0 {
            let name = match g.below(4) {
                0 => wasm::CLAIMS_SECTION.to_string(),
                1 => wasm::LEGACY_CLAIMS_SECTION.to_string(),
                _ => g.text(),
            };
            let data = match g.below(3) {
                0 => jwt_shaped(g).into_bytes(),
                1 => fixture().actor_jwt.clone().into_bytes(),
                _ => g.bytes(32),
            };
            let mut p = leb(g, name.len() as u32);
            p.extend_from_slice(name.as_bytes());
            p.extend(data);
            p
        } else {
            g.bytes(24)
        };
        out.push(id);
        let size = match g.weighted(&[10, 1, 1]) {
            0 => payload.len() as u32,
            1 => payload.len() as u32 + 1 + g.below(3) as u32,
            _ => g.u64() as u32,
        };
        out.extend(leb(g, size));
        out.extend(payload);
    }
    out
}

// ---- properties ------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(20_000))]

    #[test]
    fn random_text_never_panics_a_token_reader(seed in any::<u64>()) {
        all_token_readers(&token_text(&mut Gen::new(seed)));
    }

    #[test]
    fn random_bytes_never_panic_a_module_reader(bytes in random_bytes(128)) {
        all_module_readers(&bytes);
    }
}

proptest! {
    // Inputs that get past the first checks cost JSON, base64 and Ed25519 work each.
    #![proptest_config(config(10_000))]

    #[test]
    fn jwt_shaped_text_never_panics_and_never_verifies(seed in any::<u64>()) {
        all_token_readers(&jwt_shaped(&mut Gen::new(seed)));
    }

    #[test]
    fn altered_tokens_never_panic_and_never_verify(seed in any::<u64>()) {
        let mut g = Gen::new(seed);
        let f = fixture();
        let original = if g.bool() { &f.actor_jwt } else { &f.invocation_jwt };
        all_token_readers(&g.mutate_text(original, 4));
    }

    #[test]
    fn wasm_shaped_bytes_never_panic_a_module_reader(seed in any::<u64>()) {
        all_module_readers(&wasm_shaped(&mut Gen::new(seed)));
    }

    #[test]
    fn altered_signed_modules_never_panic_and_never_verify(seed in any::<u64>()) {
        let mut g = Gen::new(seed);
        let f = fixture();
        all_module_readers(&g.mutate(&f.signed_module, 4));
    }

    #[test]
    fn keys_and_seeds_never_panic(seed in any::<u64>()) {
        let mut g = Gen::new(seed);
        let f = fixture();
        let text = match g.below(4) {
            0 => token_text(&mut g),
            1 => {
                let key = key_text(&mut g);
                g.mutate_text(&key, 3)
            }
            2 => {
                let seed = g.pick(&f.seeds);
                g.mutate_text(&seed, 3)
            }
            _ => g.pick(&f.seeds),
        };
        all_key_readers(&text);
    }
}

proptest! {
    // Each case signs and verifies (Ed25519, JSON and base64 in a debug build).
    #![proptest_config(config(2_000))]

    #[test]
    fn actor_claims_round_trip_through_signing(seed in any::<u64>()) {
        let mut g = Gen::new(seed);
        let f = fixture();
        let now = unix_now();
        let claims = Claims {
            exp: g.option(|g| now + 1 + g.below(1_000_000) as u64),
            jti: g.text(),
            iat: g.number(),
            iss: f.account.public_key(),
            sub: f.module_key.public_key(),
            nbf: g.option(|g| now.saturating_sub(g.below(1_000_000) as u64)),
            wascap: Actor {
                name: g.option(Gen::text),
                hash: g.text(),
                tags: g.option(|g| g.vec(3, Gen::text)),
                caps: g.option(|g| g.vec(3, Gen::text)),
                rev: g.option(|g| g.u64() as i32),
                ver: g.option(Gen::text),
                call_alias: g.option(Gen::text),
                prov: g.bool(),
            },
            wascap_revision: g.option(|g| g.u64() as u32),
        };
        let jwt = encode_claims(&claims, &f.account).unwrap();
        prop_assert_eq!(&decode_token::<Actor>(&jwt).unwrap().claims, &claims);
        prop_assert_eq!(&verify_token::<Actor>(&jwt, KeyKind::Module, now).unwrap().claims, &claims);
    }

    #[test]
    fn invocation_tokens_round_trip_and_bind_their_invocation(seed in any::<u64>()) {
        let mut g = Gen::new(seed);
        let f = fixture();
        let (id, origin, target, op) = (g.text(), g.text(), g.text(), g.text());
        let msg = g.bytes(64);
        let jwt = sign_invocation(&f.cluster, &id, &origin, &target, &op, &msg).unwrap();
        let expected = ExpectedInvocation {
            id: &id,
            origin_url: &origin,
            target_url: &target,
            operation: &op,
            msg: &msg,
        };
        let claims = verify_invocation(&jwt, &expected, &f.trusted).unwrap();
        prop_assert_eq!(&claims.sub, &id);
        prop_assert_eq!(&decode_token::<Invocation>(&jwt).unwrap().claims, &claims);
        // Any other message fails on its hash.
        let mut other = msg.clone();
        other.push(g.byte());
        let tampered = ExpectedInvocation { msg: &other, ..expected };
        prop_assert!(
            matches!(
                verify_invocation(&jwt, &tampered, &f.trusted),
                Err(ClaimsError::InvocationMismatch { field: "hash", .. })
            ),
            "tampered message accepted"
        );
    }

    #[test]
    fn provider_claims_round_trip(seed in any::<u64>()) {
        let mut g = Gen::new(seed);
        let f = fixture();
        let claims = Claims {
            exp: None,
            jti: g.text(),
            iat: g.number(),
            iss: f.account.public_key(),
            sub: f.service_key.public_key(),
            nbf: None,
            wascap: CapabilityProvider {
                name: g.option(Gen::text),
                capid: g.text(),
                vendor: g.text(),
                rev: g.option(|g| g.u64() as i32),
                ver: g.option(Gen::text),
                target_hashes: g.vec(3, |g| (g.text(), g.text())).into_iter().collect::<BTreeMap<_, _>>(),
                // Integers and strings only: floats need not survive JSON bit for bit.
                config_schema: g.option(|g| json!({"type": g.text(), "n": g.number()})),
            },
            wascap_revision: Some(3),
        };
        let jwt = encode_claims(&claims, &f.account).unwrap();
        let back = verify_token::<CapabilityProvider>(&jwt, KeyKind::Service, unix_now()).unwrap();
        prop_assert_eq!(back.claims, claims);
    }
}

#[test]
fn the_fixture_tokens_and_module_verify() {
    // The "never verifies unless untouched" properties above rest on this.
    let f = fixture();
    assert!(verify_actor(&f.signed_module, unix_now()).is_ok());
    assert!(verify_token::<Actor>(&f.actor_jwt, KeyKind::Module, unix_now()).is_ok());
    assert!(verify_invocation(&f.invocation_jwt, &expected_invocation(), &f.trusted).is_ok());
    assert!(verify_actor(&f.module, unix_now()).is_err());
}
