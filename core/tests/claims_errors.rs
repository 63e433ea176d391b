//! Each way a module's claims can be wrong gives its own error variant and a message
//! that says what to do.

#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a test failure.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use nimbus_core::claims::{
    Actor, ActorClaimsParams, Claims, ClaimsError, TimeSpec, encode_claims, extract_token,
    sign_actor, unix_now, verify_actor, verify_actor_with_issuers,
};
use nimbus_core::keys::{KeyKind, KeyPair};
use nimbus_core::wasm;

fn test_module() -> Vec<u8> {
    wat::parse_str(
        r#"(module
            (memory 1)
            (data (i32.const 0) "original data")
            (func (export "__guest_call") (param i32 i32) (result i32) i32.const 1))"#,
    )
    .unwrap()
}

fn keys() -> (KeyPair, KeyPair) {
    (
        KeyPair::generate(KeyKind::Account),
        KeyPair::generate(KeyKind::Module),
    )
}

fn sign(params: &ActorClaimsParams) -> Vec<u8> {
    let (account, module) = keys();
    sign_actor(&test_module(), params, &account, &module).unwrap()
}

/// Replaces the claims of `module` with `jwt` (any content), keeping the code.
fn with_token(module: &[u8], jwt: &str) -> Vec<u8> {
    let stripped = wasm::strip_claims_sections(module).unwrap();
    wasm::embed_custom_section(&stripped, wasm::CLAIMS_SECTION, jwt.as_bytes()).unwrap()
}

/// Re-signs `claims` (hash taken from the module) with `signer`, whatever its kind.
fn token_signed_by(module: &[u8], claims: &Claims<Actor>, signer: &KeyPair) -> Vec<u8> {
    let mut claims = claims.clone();
    claims.wascap.hash = wasm::module_hash(module).unwrap();
    with_token(module, &encode_claims(&claims, signer).unwrap())
}

fn base_claims(iss: &str, sub: &str) -> Claims<Actor> {
    Claims {
        exp: None,
        jti: "jti".to_string(),
        iat: unix_now(),
        iss: iss.to_string(),
        sub: sub.to_string(),
        nbf: None,
        wascap: Actor {
            name: Some("x".to_string()),
            caps: Some(vec![]),
            ..Default::default()
        },
        wascap_revision: Some(3),
    }
}

#[test]
fn valid_module_passes() {
    let signed = sign(&ActorClaimsParams::default());
    let token = verify_actor(&signed, unix_now()).unwrap();
    assert_eq!(
        token.claims.wascap.hash,
        wasm::module_hash(&signed).unwrap()
    );
}

#[test]
fn unsigned_module_is_no_claims() {
    let err = verify_actor(&test_module(), unix_now()).unwrap_err();
    assert!(matches!(err, ClaimsError::NoClaims), "{err:?}");
    assert!(err.to_string().contains("wash claims sign"), "{err}");
}

#[test]
fn garbage_is_not_wasm() {
    let err = verify_actor(b"#!/bin/sh\necho hi\n", unix_now()).unwrap_err();
    assert!(matches!(err, ClaimsError::NotWasm(_)), "{err:?}");
    assert!(
        err.to_string().contains("not a WebAssembly module"),
        "{err}"
    );
}

#[test]
fn tampered_module_is_hash_mismatch() {
    let signed = sign(&ActorClaimsParams::default());
    let mut tampered = signed.clone();
    let pos = tampered.windows(8).position(|w| w == b"original").unwrap();
    tampered[pos] = b'O';
    let err = verify_actor(&tampered, unix_now()).unwrap_err();
    let ClaimsError::HashMismatch { expected, actual } = &err else {
        panic!("expected HashMismatch, got {err:?}");
    };
    assert_ne!(expected, actual);
    assert!(err.to_string().contains("modified after signing"), "{err}");

    // Appending an extra (non-claims) section is tampering too.
    let extended = wasm::embed_custom_section(&signed, "extra", b"x").unwrap();
    assert!(matches!(
        verify_actor(&extended, unix_now()),
        Err(ClaimsError::HashMismatch { .. })
    ));
}

#[test]
fn hash_is_enforced_for_old_revisions_too() {
    let (account, module) = keys();
    let mut claims = base_claims(&account.public_key(), &module.public_key());
    claims.wascap_revision = Some(2);
    let mut signed = token_signed_by(&test_module(), &claims, &account);
    let pos = signed.windows(8).position(|w| w == b"original").unwrap();
    signed[pos] = b'O';
    assert!(matches!(
        verify_actor(&signed, unix_now()),
        Err(ClaimsError::HashMismatch { .. })
    ));
}

#[test]
fn signature_by_another_account_is_bad_signature() {
    let (account, module) = keys();
    let other = KeyPair::generate(KeyKind::Account);
    let claims = base_claims(&account.public_key(), &module.public_key());
    // Claims say `account` issued them, but `other` signed.
    let forged = token_signed_by(&test_module(), &claims, &other);
    let err = verify_actor(&forged, unix_now()).unwrap_err();
    assert!(
        matches!(&err, ClaimsError::BadSignature { issuer } if *issuer == account.public_key()),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("not signed by its issuer"),
        "{err}"
    );
}

#[test]
fn issuer_that_is_no_account_is_invalid_issuer() {
    let (_, module) = keys();
    let server = KeyPair::generate(KeyKind::Server);
    let claims = base_claims(&server.public_key(), &module.public_key());
    let signed = token_signed_by(&test_module(), &claims, &server);
    let err = verify_actor(&signed, unix_now()).unwrap_err();
    assert!(matches!(err, ClaimsError::InvalidIssuer { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("not an account") && msg.contains("server key"),
        "{msg}"
    );

    // A garbage issuer string too.
    let claims = base_claims("not-a-key", &module.public_key());
    let signed = token_signed_by(&test_module(), &claims, &server);
    assert!(matches!(
        verify_actor(&signed, unix_now()),
        Err(ClaimsError::InvalidIssuer { .. })
    ));

    // And our signer refuses to produce one.
    assert!(matches!(
        sign_actor(&test_module(), &Default::default(), &server, &module),
        Err(ClaimsError::InvalidIssuer { .. })
    ));
}

#[test]
fn subject_that_is_no_module_is_invalid_subject() {
    let (account, _) = keys();
    let service = KeyPair::generate(KeyKind::Service);
    let claims = base_claims(&account.public_key(), &service.public_key());
    let signed = token_signed_by(&test_module(), &claims, &account);
    let err = verify_actor(&signed, unix_now()).unwrap_err();
    assert!(
        matches!(
            err,
            ClaimsError::InvalidSubject {
                expected: KeyKind::Module,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("wash keys gen module"), "{err}");
}

#[test]
fn expired_and_not_yet_valid_are_distinct() {
    let iat = 1_700_000_000;
    let signed = sign(&ActorClaimsParams {
        issued_at: Some(iat),
        expires: Some(TimeSpec::days(1)),
        not_before: Some(TimeSpec::At(iat + 60)),
        ..Default::default()
    });
    let exp = iat + 86_400;
    verify_actor(&signed, iat + 60).unwrap();
    verify_actor(&signed, exp).unwrap();

    let err = verify_actor(&signed, exp + 1).unwrap_err();
    assert!(
        matches!(err, ClaimsError::Expired { exp: e } if e == exp),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("expired at 2023-11-15 22:13:20 UTC"), "{msg}");
    assert!(msg.contains("--expires-in"), "{msg}");

    let err = verify_actor(&signed, iat + 59).unwrap_err();
    assert!(
        matches!(err, ClaimsError::NotYetValid { nbf } if nbf == iat + 60),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains("not valid before 2023-11-14 22:14:20 UTC"),
        "{err}"
    );
}

#[test]
fn untrusted_issuer_is_reported() {
    let (account, module) = keys();
    let signed = sign_actor(&test_module(), &Default::default(), &account, &module).unwrap();
    let now = unix_now();
    verify_actor_with_issuers(&signed, now, &[account.public_key()]).unwrap();
    let other = KeyPair::generate(KeyKind::Account).public_key();
    let err = verify_actor_with_issuers(&signed, now, &[other]).unwrap_err();
    assert!(
        matches!(err, ClaimsError::UntrustedIssuer { .. }),
        "{err:?}"
    );
}

#[test]
fn malformed_tokens_and_wrong_algorithm() {
    let signed = sign(&ActorClaimsParams::default());
    let jwt = extract_token(&signed).unwrap().unwrap().jwt;
    let segments: Vec<&str> = jwt.split('.').collect();

    for bad in [
        "only.two".to_string(),
        format!("{jwt}.extra"),
        format!("{}.!!!.{}", segments[0], segments[2]),
        format!(
            "{}.{}.{}",
            segments[0],
            URL_SAFE_NO_PAD.encode("{}"),
            segments[2]
        ),
        format!("{}.{}.AAAA", segments[0], segments[1]),
    ] {
        let err = verify_actor(&with_token(&signed, &bad), unix_now()).unwrap_err();
        assert!(
            matches!(err, ClaimsError::MalformedToken(_)),
            "{bad}: {err:?}"
        );
    }

    let hs256 = URL_SAFE_NO_PAD.encode(r#"{"typ":"jwt","alg":"HS256"}"#);
    let bad = format!("{hs256}.{}.{}", segments[1], segments[2]);
    let err = verify_actor(&with_token(&signed, &bad), unix_now()).unwrap_err();
    assert!(
        matches!(&err, ClaimsError::InvalidAlgorithm(a) if a == "HS256"),
        "{err:?}"
    );
    assert!(err.to_string().contains("only `Ed25519`"), "{err}");

    // Changing a claim without re-signing breaks the signature.
    let mut claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segments[1]).unwrap()).unwrap();
    claims["wascap"]["caps"] = serde_json::json!(["wasmcloud:keyvalue"]);
    let bad = format!(
        "{}.{}.{}",
        segments[0],
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap()),
        segments[2]
    );
    let err = verify_actor(&with_token(&signed, &bad), unix_now()).unwrap_err();
    assert!(matches!(err, ClaimsError::BadSignature { .. }), "{err:?}");
}

#[test]
fn all_messages_are_distinct() {
    let errors = [
        ClaimsError::NoClaims,
        ClaimsError::MalformedToken("x".into()),
        ClaimsError::InvalidAlgorithm("x".into()),
        ClaimsError::InvalidIssuer {
            issuer: "x".into(),
            reason: "y".into(),
        },
        ClaimsError::InvalidSubject {
            subject: "x".into(),
            expected: KeyKind::Module,
            reason: "y".into(),
        },
        ClaimsError::BadSignature { issuer: "x".into() },
        ClaimsError::HashMismatch {
            expected: "a".into(),
            actual: "b".into(),
        },
        ClaimsError::Expired { exp: 0 },
        ClaimsError::NotYetValid { nbf: 0 },
        ClaimsError::UntrustedIssuer { issuer: "x".into() },
    ];
    let messages: std::collections::BTreeSet<String> =
        errors.iter().map(ToString::to_string).collect();
    assert_eq!(messages.len(), errors.len());
}
