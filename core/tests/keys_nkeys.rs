//! nkeys wrapper: kinds, seeds, public keys and signatures, checked against the nkeys
//! that wascap uses.

#![allow(clippy::unwrap_used)] // Tests may unwrap: a panic is a test failure.

use nimbus_core::keys::{self, KeyError, KeyKind, KeyPair};

#[test]
fn kinds_prefixes_and_names() {
    let expected = [
        (KeyKind::Account, 'A', "account"),
        (KeyKind::Cluster, 'C', "cluster"),
        (KeyKind::Module, 'M', "module"),
        (KeyKind::Server, 'N', "server"),
        (KeyKind::Operator, 'O', "operator"),
        (KeyKind::User, 'U', "user"),
        (KeyKind::Service, 'V', "service"),
    ];
    for (kind, letter, name) in expected {
        assert_eq!(kind.prefix(), letter);
        assert_eq!(kind.name(), name);
        assert_eq!(KeyKind::from_prefix(letter), Some(kind));
        assert_eq!(name.to_uppercase().parse::<KeyKind>().unwrap(), kind);
        assert_eq!(kind.to_string(), name);
    }
    let err = "provider".parse::<KeyKind>().unwrap_err();
    assert!(err.to_string().contains("use one of: account"), "{err}");
}

#[test]
fn known_vector_from_go_nkeys() {
    let seed = "SAAPN4W3EG6KCJGUQTKTJ5GSB5NHK5CHAJL4DBGFUM3HHROI4XUEP4OBK4";
    let pk = "ACODERUVFFAWZQDSS6SBIACUA5O6SXF7HJ3YTYXBALHZP3P7R4BUO4J2";
    let kp = KeyPair::from_seed(seed).unwrap();
    assert_eq!(kp.public_key(), pk);
    assert_eq!(kp.seed().unwrap(), seed);
    assert_eq!(kp.kind(), KeyKind::Account);
    assert_eq!(keys::parse_public_key(pk).unwrap(), KeyKind::Account);
    // Whitespace from a file is tolerated.
    assert_eq!(
        KeyPair::from_seed(&format!("{seed}\n"))
            .unwrap()
            .public_key(),
        pk
    );
}

#[test]
fn seeds_interoperate_with_wascaps_nkeys() {
    for kind in KeyKind::ALL {
        let ours = KeyPair::generate(kind);
        let theirs = wascap::prelude::KeyPair::from_seed(&ours.seed().unwrap()).unwrap();
        assert_eq!(theirs.public_key(), ours.public_key());
        let sig = theirs.sign(b"msg").unwrap();
        ours.verify(b"msg", &sig).unwrap();
        let sig = ours.sign(b"msg").unwrap();
        theirs.verify(b"msg", &sig).unwrap();
    }
}

#[test]
fn signatures() {
    let kp = KeyPair::generate(KeyKind::Module);
    let sig = kp.sign(b"hello").unwrap();
    assert_eq!(sig.len(), 64);
    kp.verify(b"hello", &sig).unwrap();
    keys::verify_signature(&kp.public_key(), b"hello", &sig).unwrap();
    let err = kp.verify(b"hellO", &sig).unwrap_err();
    assert!(matches!(err, KeyError::BadSignature { .. }), "{err:?}");
    let other = KeyPair::generate(KeyKind::Module);
    assert!(matches!(
        other.verify(b"hello", &sig),
        Err(KeyError::BadSignature { .. })
    ));
    assert!(kp.verify(b"hello", &sig[..10]).is_err());
}

#[test]
fn bad_seeds_name_the_expected_form_and_never_echo_the_seed() {
    let good = KeyPair::generate(KeyKind::Account).seed().unwrap();
    let mut flipped = good.clone().into_bytes();
    flipped[20] = if flipped[20] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    let public = KeyPair::generate(KeyKind::Account).public_key();
    for bad in [
        "",
        "SAshort",
        &good[..57],
        &format!("{good}A"),
        &good.replacen('S', "X", 1),
        &good.to_lowercase(),
        &flipped,
        &public,
    ] {
        let err = KeyPair::from_seed(bad).unwrap_err();
        assert!(
            matches!(err, KeyError::InvalidSeed { .. }),
            "{bad}: {err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains("58 characters starting with `S`"), "{msg}");
        if bad.len() > 8 {
            assert!(!msg.contains(bad), "seed leaked in: {msg}");
        }
    }
    let msg = KeyPair::from_seed(&public).unwrap_err().to_string();
    assert!(msg.contains("looks like a public key"), "{msg}");
    let msg = KeyPair::from_seed(&flipped).unwrap_err().to_string();
    assert!(msg.contains("checksum"), "{msg}");
}

#[test]
fn seed_of_kind() {
    let module = KeyPair::generate(KeyKind::Module).seed().unwrap();
    let err = KeyPair::from_seed_of_kind(&module, KeyKind::Account).unwrap_err();
    assert_eq!(
        err,
        KeyError::WrongKind {
            expected: KeyKind::Account,
            actual: KeyKind::Module
        }
    );
    assert!(err.to_string().contains("wash keys gen account"), "{err}");
    KeyPair::from_seed_of_kind(&module, KeyKind::Module).unwrap();
}

#[test]
fn bad_public_keys() {
    let pk = KeyPair::generate(KeyKind::Service).public_key();
    let mut flipped = pk.clone().into_bytes();
    flipped[30] = if flipped[30] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    let seed = KeyPair::generate(KeyKind::Service).seed().unwrap();
    for bad in ["", "VABC", &pk[..55], &flipped, &pk.to_lowercase(), &seed] {
        let err = keys::parse_public_key(bad).unwrap_err();
        assert!(
            matches!(err, KeyError::InvalidPublicKey { .. }),
            "{bad}: {err:?}"
        );
        assert!(err.to_string().contains("56 characters"), "{err}");
    }
    let msg = keys::parse_public_key(&seed).unwrap_err().to_string();
    assert!(msg.contains("looks like a seed"), "{msg}");
    assert!(matches!(
        keys::parse_public_key_of_kind(&pk, KeyKind::Module),
        Err(KeyError::WrongKind { .. })
    ));
}

#[test]
fn debug_never_shows_the_seed() {
    let kp = KeyPair::generate(KeyKind::Account);
    let dbg = format!("{kp:?}");
    assert!(dbg.contains(&kp.public_key()));
    assert!(!dbg.contains(&kp.seed().unwrap()));
}
