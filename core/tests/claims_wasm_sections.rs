//! The hand-written section walker: malformed input gives clear errors, claims sections
//! are found (new and legacy names) and stripped byte for byte.

#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a test failure.

use nimbus_core::claims::{self, ClaimsError, extract_token, sign_actor, unix_now, verify_actor};
use nimbus_core::keys::{KeyKind, KeyPair};
use nimbus_core::wasm::{self, WasmError};

fn test_module() -> Vec<u8> {
    wat::parse_str(
        r#"(module
            (func (export "f") (result i32) i32.const 42)
            (@custom "before" "1"))"#,
    )
    .unwrap()
}

#[test]
fn garbage_and_wrong_headers() {
    assert_eq!(wasm::sections(b""), Err(WasmError::NotWasm));
    assert_eq!(
        wasm::sections(b"\x7fELF\x02\x01\x01\x00"),
        Err(WasmError::NotWasm)
    );
    assert_eq!(
        wasm::sections(b"<html>not wasm at all</html>"),
        Err(WasmError::NotWasm)
    );
    assert!(matches!(
        wasm::sections(b"\0asm\x01\0"),
        Err(WasmError::Truncated { .. })
    ));
    // A component (layer 1, version 0x0d).
    let err = wasm::sections(b"\0asm\x0d\0\x01\0").unwrap_err();
    assert!(
        matches!(err, WasmError::UnsupportedVersion { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("core modules"), "{err}");
    // An empty module is fine.
    assert_eq!(wasm::sections(b"\0asm\x01\0\0\0").unwrap(), vec![]);
    assert!(
        WasmError::NotWasm
            .to_string()
            .contains("pass a compiled `.wasm` file")
    );
}

#[test]
fn truncated_modules() {
    let module = test_module();
    // Every proper prefix that cuts into a section is reported as truncated.
    let boundaries: Vec<usize> = wasm::sections(&module)
        .unwrap()
        .iter()
        .map(|s| s.offset + s.raw.len())
        .collect();
    for len in 9..module.len() {
        let result = wasm::sections(&module[..len]);
        if boundaries.contains(&len) {
            assert!(result.is_ok(), "prefix {len}");
        } else {
            let err = result.unwrap_err();
            assert!(
                matches!(err, WasmError::Truncated { .. }),
                "prefix {len}: {err:?}"
            );
            assert!(err.to_string().contains("truncated"), "{err}");
        }
    }
    // A section whose size runs past the end.
    let mut bad = b"\0asm\x01\0\0\0".to_vec();
    bad.extend_from_slice(&[1, 0xff, 0xff, 0x03, 0x00]);
    assert_eq!(
        wasm::sections(&bad),
        Err(WasmError::Truncated {
            what: "section",
            offset: 8
        })
    );
    // A custom section whose name length runs past the section.
    let mut bad = b"\0asm\x01\0\0\0".to_vec();
    bad.extend_from_slice(&[0, 2, 9, b'a']);
    assert!(matches!(
        wasm::sections(&bad),
        Err(WasmError::Truncated {
            what: "custom section name",
            ..
        })
    ));
}

#[test]
fn bad_leb128() {
    let mut bad = b"\0asm\x01\0\0\0".to_vec();
    bad.extend_from_slice(&[1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00]);
    let err = wasm::sections(&bad).unwrap_err();
    assert_eq!(err, WasmError::BadLeb128 { offset: 9 });
    assert!(err.to_string().contains("LEB128"), "{err}");
    // Through the claims API it is NotWasm.
    assert!(matches!(
        verify_actor(&bad, 0),
        Err(ClaimsError::NotWasm(WasmError::BadLeb128 { .. }))
    ));
}

#[test]
fn bad_custom_name() {
    let mut bad = b"\0asm\x01\0\0\0".to_vec();
    bad.extend_from_slice(&[0, 3, 2, 0xff, 0xfe]);
    assert!(matches!(
        wasm::sections(&bad),
        Err(WasmError::BadSectionName { .. })
    ));
}

#[test]
fn embed_read_and_strip_keep_other_bytes() {
    let module = test_module();
    let a = wasm::embed_custom_section(&module, "jwt", b"legacy").unwrap();
    let b = wasm::embed_custom_section(&a, "after", b"2").unwrap();
    let c = wasm::embed_custom_section(&b, "wasmcloud_jwt", b"new").unwrap();
    assert_eq!(
        wasm::custom_sections(&c, "jwt").unwrap(),
        vec![&b"legacy"[..]]
    );
    assert_eq!(
        wasm::custom_sections(&c, "wasmcloud_jwt").unwrap(),
        vec![&b"new"[..]]
    );
    assert_eq!(
        wasm::custom_sections(&c, "before").unwrap(),
        vec![&b"1"[..]]
    );

    let stripped = wasm::strip_claims_sections(&c).unwrap();
    assert_eq!(
        stripped,
        wasm::embed_custom_section(&module, "after", b"2").unwrap()
    );
    assert_eq!(
        wasm::module_hash(&c).unwrap(),
        wasm::module_hash(&stripped).unwrap()
    );
    assert_eq!(
        wasm::module_hash(&module).unwrap(),
        wasm::sha256_upper_hex(&module)
    );
    let hash = wasm::module_hash(&module).unwrap();
    assert_eq!(hash.len(), 64);
    assert!(
        hash.chars()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
    );

    // Padded LEB128 sizes survive stripping untouched.
    let mut padded = b"\0asm\x01\0\0\0".to_vec();
    padded.extend_from_slice(&[
        0, 0x86, 0x80, 0x80, 0x80, 0x00, 3, b'j', b'w', b't', b'x', b'y',
    ]);
    padded.extend_from_slice(&[0, 0x83, 0x80, 0x00, 1, b'z', b'q']);
    assert_eq!(
        wasm::strip_claims_sections(&padded).unwrap(),
        [
            &b"\0asm\x01\0\0\0"[..],
            &[0, 0x83, 0x80, 0x00, 1, b'z', b'q']
        ]
        .concat()
    );
}

#[test]
fn legacy_jwt_section_is_read_and_verified() {
    let account = KeyPair::generate(KeyKind::Account);
    let subject = KeyPair::generate(KeyKind::Module);
    let params = claims::ActorClaimsParams {
        name: Some("legacy".to_string()),
        ..Default::default()
    };
    let signed = sign_actor(&test_module(), &params, &account, &subject).unwrap();
    let jwt = extract_token(&signed).unwrap().unwrap().jwt;
    // Move the token into a legacy `jwt` section.
    let legacy = wasm::embed_custom_section(
        &wasm::strip_claims_sections(&signed).unwrap(),
        wasm::LEGACY_CLAIMS_SECTION,
        jwt.as_bytes(),
    )
    .unwrap();
    assert!(
        wasm::custom_sections(&legacy, wasm::CLAIMS_SECTION)
            .unwrap()
            .is_empty()
    );
    let token = verify_actor(&legacy, unix_now()).unwrap();
    assert_eq!(token.jwt, jwt);
    assert_eq!(token.claims.wascap.name.as_deref(), Some("legacy"));
    // wascap reads it too.
    let theirs = wascap::wasm::extract_claims(&legacy).unwrap().unwrap();
    assert_eq!(theirs.jwt, jwt);

    // With both sections present, `wasmcloud_jwt` wins.
    let both = wasm::embed_custom_section(&signed, wasm::LEGACY_CLAIMS_SECTION, b"junk").unwrap();
    assert_eq!(extract_token(&both).unwrap().unwrap().jwt, jwt);
}

#[test]
fn non_utf8_claims_section_is_malformed() {
    let module =
        wasm::embed_custom_section(&test_module(), "wasmcloud_jwt", &[0xff, 0xfe]).unwrap();
    assert!(matches!(
        extract_token(&module),
        Err(ClaimsError::MalformedToken(_))
    ));
}
