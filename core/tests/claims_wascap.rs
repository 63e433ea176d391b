//! Differential tests against the published `wascap` crate (the workspace pins 0.15.3,
//! which signs and hashes like 0.11: `wasmcloud_jwt`, revision 3, hash without claims): modules signed by either
//! implementation are read and accepted by the other with the same claims.

#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a test failure.

use nimbus_core::claims::{
    self, ActorClaimsParams, ExpectedInvocation, TimeSpec, extract_token, sign_actor, unix_now,
    verify_actor,
};
use nimbus_core::keys::{KeyKind, KeyPair};
use nimbus_core::wasm;
use wascap::jwt::{
    Claims as WClaims, Component as WActor, Invocation as WInvocation, validate_token,
};

/// A small MVP module with code, data, an export and an unrelated custom section.
fn test_module() -> Vec<u8> {
    wat::parse_str(
        r#"(module
            (memory (export "memory") 1)
            (data (i32.const 16) "hello nimbus")
            (func (export "__guest_call") (param i32 i32) (result i32) i32.const 1)
            (@custom "producers" "nimbus-test"))"#,
    )
    .unwrap()
}

/// The same kind of module with its section sizes padded to 5-byte LEB128, as some
/// producers write them.
fn padded_module() -> Vec<u8> {
    let module = test_module();
    let mut out = module[..8].to_vec();
    for s in wasm::sections(&module).unwrap() {
        let n = s.payload.len() as u32;
        out.push(s.id);
        out.extend_from_slice(&[
            (n & 0x7f) as u8 | 0x80,
            ((n >> 7) & 0x7f) as u8 | 0x80,
            ((n >> 14) & 0x7f) as u8 | 0x80,
            ((n >> 21) & 0x7f) as u8 | 0x80,
            (n >> 28) as u8,
        ]);
        out.extend_from_slice(s.payload);
    }
    out
}

fn wascap_keys(kp: &KeyPair) -> wascap::prelude::KeyPair {
    wascap::prelude::KeyPair::from_seed(&kp.seed().unwrap()).unwrap()
}

#[test]
fn module_signed_by_wascap_verifies_with_ours() {
    for module in [test_module(), padded_module()] {
        let account = KeyPair::generate(KeyKind::Account);
        let subject = KeyPair::generate(KeyKind::Module);
        let now = unix_now();
        let wclaims = WClaims::<WActor>::with_dates(
            "Echo Actor".to_string(),
            account.public_key(),
            subject.public_key(),
            Some(vec!["demo".to_string()]),
            Some(now - 10),
            Some(now + 3600),
            false,
            Some(4),
            Some("0.2.1".to_string()),
            Some("My-Echo".to_string()),
        );
        let signed = wascap::wasm::embed_claims(&module, &wclaims, &wascap_keys(&account)).unwrap();
        let theirs = wascap::wasm::extract_claims(&signed).unwrap().unwrap();

        let ours = verify_actor(&signed, now).unwrap();
        let c = &ours.claims;
        let meta = &c.wascap;
        let wmeta = theirs.claims.metadata.as_ref().unwrap();
        assert_eq!(ours.jwt, theirs.jwt);
        assert_eq!(meta.hash, wmeta.module_hash);
        assert_eq!(meta.hash, wasm::module_hash(&signed).unwrap());
        assert_eq!(meta.name.as_deref(), Some("Echo Actor"));
        // wascap ≥ 0.12 writes no `caps`: links alone grant access.
        assert_eq!(meta.caps, None);
        assert_eq!(meta.tags, wmeta.tags);
        assert_eq!(meta.rev, Some(4));
        assert_eq!(meta.ver.as_deref(), Some("0.2.1"));
        assert_eq!(meta.call_alias.as_deref(), Some("my_echo"));
        assert!(!meta.prov);
        assert_eq!(c.iss, account.public_key());
        assert_eq!(c.sub, subject.public_key());
        assert_eq!(c.exp, Some(now + 3600));
        assert_eq!(c.nbf, Some(now - 10));
        assert_eq!(c.wascap_revision, Some(3));
        assert_eq!(c.jti, theirs.claims.id);
    }
}

#[test]
fn module_signed_by_us_verifies_with_wascap() {
    for module in [test_module(), padded_module()] {
        let account = KeyPair::generate(KeyKind::Account);
        let subject = KeyPair::generate(KeyKind::Module);
        let params = ActorClaimsParams {
            name: Some("Echo".to_string()),
            caps: Some(vec!["wasmcloud:httpserver".to_string()]),
            tags: vec!["a".to_string(), "b".to_string()],
            ver: Some("1.0.0".to_string()),
            rev: Some(7),
            call_alias: Some("Echo.Svc".to_string()),
            expires: Some(TimeSpec::days(30)),
            not_before: Some(TimeSpec::At(unix_now() - 5)),
            ..Default::default()
        };
        let signed = sign_actor(&module, &params, &account, &subject).unwrap();

        let theirs = wascap::wasm::extract_claims(&signed)
            .expect("wascap reads our module")
            .expect("wascap finds our claims");
        let validation = validate_token::<WActor>(&theirs.jwt).unwrap();
        assert!(validation.signature_valid);
        assert!(!validation.expired);
        assert!(!validation.cannot_use_yet);

        let wc = &theirs.claims;
        let wmeta = wc.metadata.as_ref().unwrap();
        assert_eq!(wc.issuer, account.public_key());
        assert_eq!(wc.subject, subject.public_key());
        assert_eq!(wmeta.name.as_deref(), Some("Echo"));
        assert_eq!(wmeta.tags, Some(vec!["a".to_string(), "b".to_string()]));
        assert_eq!(wmeta.rev, Some(7));
        assert_eq!(wmeta.ver.as_deref(), Some("1.0.0"));
        assert_eq!(wmeta.call_alias.as_deref(), Some("echo_svc"));
        assert_eq!(wmeta.module_hash, wasm::module_hash(&signed).unwrap());

        // Our token, decoded by ours, is the one wascap saw.
        let ours = extract_token(&signed).unwrap().unwrap();
        assert_eq!(ours.jwt, theirs.jwt);
        assert_eq!(ours.claims.exp, ours.claims.iat.checked_add(30 * 86_400));
        verify_actor(&signed, unix_now()).unwrap();

        // Re-signing replaces the claims instead of stacking them.
        let resigned = sign_actor(&signed, &params, &account, &subject).unwrap();
        let jwts = wasm::custom_sections(&resigned, wasm::CLAIMS_SECTION).unwrap();
        assert_eq!(jwts.len(), 1);
        assert_eq!(
            wasm::module_hash(&resigned).unwrap(),
            wasm::module_hash(&signed).unwrap()
        );
    }
}

#[test]
fn wascap_detects_tampering_of_our_module() {
    let account = KeyPair::generate(KeyKind::Account);
    let subject = KeyPair::generate(KeyKind::Module);
    let signed = sign_actor(&test_module(), &Default::default(), &account, &subject).unwrap();
    let mut tampered = signed.clone();
    let pos = tampered
        .windows(12)
        .position(|w| w == b"hello nimbus")
        .unwrap();
    tampered[pos] = b'j';
    assert!(wascap::wasm::extract_claims(&tampered).is_err());
}

#[test]
fn invocation_tokens_interoperate() {
    let cluster = KeyPair::generate(KeyKind::Cluster);
    let origin = "wasmbus://MORIGIN";
    let target = "wasmbus://wasmcloud/httpserver/default/VTARGET/HandleRequest";
    let hash = claims::invocation_hash(origin, target, "HandleRequest", b"payload");

    // Theirs -> ours.
    let wclaims = WClaims::<WInvocation>::new(
        cluster.public_key(),
        "inv-1".to_string(),
        target,
        origin,
        &hash,
    );
    let jwt = wclaims.encode(&wascap_keys(&cluster)).unwrap();
    let expected = ExpectedInvocation {
        id: "inv-1",
        origin_url: origin,
        target_url: target,
        operation: "HandleRequest",
        msg: b"payload",
    };
    let issuers = nimbus_core::keys::TrustedIssuers::new([cluster.public_key()]).unwrap();
    claims::verify_invocation(&jwt, &expected, &issuers).unwrap();

    // Ours -> theirs.
    let ours = claims::sign_invocation(
        &cluster,
        "inv-1",
        origin,
        target,
        "HandleRequest",
        b"payload",
    )
    .unwrap();
    let v = validate_token::<WInvocation>(&ours).unwrap();
    assert!(v.signature_valid && !v.expired && !v.cannot_use_yet);
    let decoded = WClaims::<WInvocation>::decode(&ours).unwrap();
    let meta = decoded.metadata.unwrap();
    assert_eq!(meta.invocation_hash, hash);
    assert_eq!(meta.origin_url, origin);
    assert_eq!(meta.target_url, target);
    assert_eq!(decoded.subject, "inv-1");
    assert_eq!(decoded.issuer, cluster.public_key());
}
