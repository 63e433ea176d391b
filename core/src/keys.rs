//! nkeys identities: the key kinds of the lattice and a key pair wrapper whose errors say
//! what a valid key or seed looks like.
//!
//! Public keys are 56 characters (base32 of prefix byte, 32-byte Ed25519 key and CRC-16),
//! seeds are 58 characters starting with `S` and the kind letter (`SA...` for an
//! account). Encoding, checksums and signatures come from the `nkeys` crate; this module
//! only adds the kind checks and user-facing messages the host and `wash` need.

use std::fmt;
use std::str::FromStr;

/// Length of an encoded public key, so callers can tell keys from seeds and other ids.
pub const PUBLIC_KEY_LEN: usize = 56;

/// Length of an encoded seed, so error messages can name the expected form.
pub const SEED_LEN: usize = 58;

/// The kinds of nkeys identities used by the lattice, so a key's role can be checked
/// (an actor's issuer must be an account, its subject a module, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyKind {
    /// `A...`: signs actor and provider claims.
    Account,
    /// `C...`: signs invocations (anti-forgery tokens).
    Cluster,
    /// `M...`: identifies an actor module.
    Module,
    /// `N...`: identifies a host.
    Server,
    /// `O...`: vouches for accounts.
    Operator,
    /// `U...`: NATS user credentials.
    User,
    /// `V...`: identifies a capability provider.
    Service,
}

impl KeyKind {
    /// Every kind, in a stable order, for listings and help texts.
    pub const ALL: [KeyKind; 7] = [
        KeyKind::Account,
        KeyKind::Cluster,
        KeyKind::Module,
        KeyKind::Server,
        KeyKind::Operator,
        KeyKind::User,
        KeyKind::Service,
    ];

    /// The first letter of a public key of this kind (the seed starts with `S` and this
    /// letter), so keys can be recognised at a glance.
    pub fn prefix(self) -> char {
        match self {
            KeyKind::Account => 'A',
            KeyKind::Cluster => 'C',
            KeyKind::Module => 'M',
            KeyKind::Server => 'N',
            KeyKind::Operator => 'O',
            KeyKind::User => 'U',
            KeyKind::Service => 'V',
        }
    }

    /// The lowercase name used on the command line (`wash keys gen account`).
    pub fn name(self) -> &'static str {
        match self {
            KeyKind::Account => "account",
            KeyKind::Cluster => "cluster",
            KeyKind::Module => "module",
            KeyKind::Server => "server",
            KeyKind::Operator => "operator",
            KeyKind::User => "user",
            KeyKind::Service => "service",
        }
    }

    /// Looks a kind up by its public key letter, so a key's role can be read from its
    /// first character.
    pub fn from_prefix(letter: char) -> Option<KeyKind> {
        KeyKind::ALL.into_iter().find(|k| k.prefix() == letter)
    }

    /// The nkeys prefix byte of a public key of this kind.
    fn prefix_byte(self) -> u8 {
        match self {
            KeyKind::Account => 0,
            KeyKind::Cluster => 2 << 3,
            KeyKind::Module => 12 << 3,
            KeyKind::Server => 13 << 3,
            KeyKind::Operator => 14 << 3,
            KeyKind::User => 20 << 3,
            KeyKind::Service => 21 << 3,
        }
    }

    /// The kind of an nkeys prefix byte; `None` for curve, private and unknown prefixes,
    /// which are no lattice identities.
    fn from_prefix_byte(byte: u8) -> Option<KeyKind> {
        KeyKind::ALL.into_iter().find(|k| k.prefix_byte() == byte)
    }

    fn nkeys_type(self) -> nkeys::KeyPairType {
        match self {
            KeyKind::Account => nkeys::KeyPairType::Account,
            KeyKind::Cluster => nkeys::KeyPairType::Cluster,
            KeyKind::Module => nkeys::KeyPairType::Module,
            KeyKind::Server => nkeys::KeyPairType::Server,
            KeyKind::Operator => nkeys::KeyPairType::Operator,
            KeyKind::User => nkeys::KeyPairType::User,
            KeyKind::Service => nkeys::KeyPairType::Service,
        }
    }
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for KeyKind {
    type Err = KeyError;

    /// Parses a CLI name (`account`, `module`, ...) case-insensitively.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        KeyKind::ALL
            .into_iter()
            .find(|k| k.name() == lower)
            .ok_or_else(|| KeyError::UnknownKind(s.to_string()))
    }
}

/// Why a key, seed or signature was refused; each message says what a valid value looks
/// like. Seeds are secrets and are never echoed back.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    /// A kind name that is none of the known kinds.
    #[error(
        "unknown key type `{0}`; use one of: account, cluster, module, server, operator, user, service"
    )]
    UnknownKind(String),
    /// A string that is not a valid 56-character public key.
    #[error(
        "invalid public key `{key}`: {reason}; a public key is 56 characters starting with its type letter (A account, C cluster, M module, N server, O operator, U user, V service)"
    )]
    InvalidPublicKey {
        /// The offending key (public, so safe to show).
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A string that is not a valid seed; the seed itself is not repeated.
    #[error(
        "invalid seed: {reason}; a seed is 58 characters starting with `S` and the key type letter (e.g. `SA...` for an account, `SM...` for a module); generate one with `wash keys gen <type>`"
    )]
    InvalidSeed {
        /// What is wrong with it.
        reason: String,
    },
    /// A valid key of the wrong kind for the job.
    #[error(
        "the key must be of type {expected} (public key starting with {}), but it is of type {actual}; generate one with `wash keys gen {expected}`",
        .expected.prefix()
    )]
    WrongKind {
        /// The kind the caller needs.
        expected: KeyKind,
        /// The kind that was given.
        actual: KeyKind,
    },
    /// The signature does not match the message and key.
    #[error("signature does not match key {key}: the data was changed or signed by another key")]
    BadSignature {
        /// The public key the signature was checked against.
        key: String,
    },
    /// Signing failed inside nkeys (only possible for a key pair without a seed).
    #[error("failed to sign with key {key}: {reason}")]
    SigningFailed {
        /// The public key of the signer.
        key: String,
        /// The nkeys error.
        reason: String,
    },
}

/// A full (seeded) nkeys key pair of a known lattice kind, so callers never handle a
/// public-only pair where a signer is needed or a curve key where an identity is needed.
#[derive(Clone)]
pub struct KeyPair {
    inner: nkeys::KeyPair,
    kind: KeyKind,
}

impl fmt::Debug for KeyPair {
    /// Shows the kind and public key only: the seed is a secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPair")
            .field("kind", &self.kind)
            .field("public_key", &self.public_key())
            .finish()
    }
}

impl KeyPair {
    /// Generates a new random key pair of `kind` from the OS random source.
    pub fn generate(kind: KeyKind) -> KeyPair {
        KeyPair {
            inner: nkeys::KeyPair::new(kind.nkeys_type()),
            kind,
        }
    }

    /// Reads a seed (`S` + kind letter, 58 characters), e.g. from a `.nk` file or an
    /// environment variable. Surrounding whitespace is ignored.
    pub fn from_seed(seed: &str) -> Result<KeyPair, KeyError> {
        let seed = seed.trim();
        if seed.len() != SEED_LEN {
            let hint = if seed.len() == PUBLIC_KEY_LEN {
                " (this looks like a public key, not a seed)"
            } else {
                ""
            };
            return Err(KeyError::InvalidSeed {
                reason: format!("it has {} characters{hint}", seed.len()),
            });
        }
        if !seed.starts_with('S') {
            return Err(KeyError::InvalidSeed {
                reason: "it does not start with `S`".to_string(),
            });
        }
        let (prefix, raw) = nkeys::decode_seed(seed).map_err(|e| KeyError::InvalidSeed {
            reason: describe_nkeys_error(&e),
        })?;
        let kind = KeyKind::from_prefix_byte(prefix).ok_or_else(|| KeyError::InvalidSeed {
            reason: "its type is not a lattice identity (curve or unknown key type)".to_string(),
        })?;
        let inner = nkeys::KeyPair::new_from_raw(kind.nkeys_type(), raw).map_err(|e| {
            KeyError::InvalidSeed {
                reason: describe_nkeys_error(&e),
            }
        })?;
        Ok(KeyPair { inner, kind })
    }

    /// Like [`KeyPair::from_seed`], but also requires the seed to be of `expected` kind,
    /// so e.g. a module seed is never accepted as an issuer.
    pub fn from_seed_of_kind(seed: &str, expected: KeyKind) -> Result<KeyPair, KeyError> {
        let kp = KeyPair::from_seed(seed)?;
        if kp.kind != expected {
            return Err(KeyError::WrongKind {
                expected,
                actual: kp.kind,
            });
        }
        Ok(kp)
    }

    /// The 56-character public key: the identity that others see and verify against.
    pub fn public_key(&self) -> String {
        self.inner.public_key()
    }

    /// The 58-character seed (secret), for storing the key pair. Fails only if nkeys
    /// lost the seed, which a pair built by this type never does.
    pub fn seed(&self) -> Result<String, KeyError> {
        self.inner.seed().map_err(|e| KeyError::SigningFailed {
            key: self.public_key(),
            reason: describe_nkeys_error(&e),
        })
    }

    /// The kind of this key pair, to check its role.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// Signs `message` with Ed25519 (64-byte raw signature), as JWTs and invocations need.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, KeyError> {
        self.inner
            .sign(message)
            .map_err(|e| KeyError::SigningFailed {
                key: self.public_key(),
                reason: describe_nkeys_error(&e),
            })
    }

    /// Checks a signature made by this key pair.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), KeyError> {
        verify_signature(&self.public_key(), message, signature)
    }
}

/// Checks that `key` is a valid public key (length, base32, checksum, known prefix) and
/// returns its kind, so ids coming from the wire or the user are validated before use.
pub fn parse_public_key(key: &str) -> Result<KeyKind, KeyError> {
    let invalid = |reason: String| KeyError::InvalidPublicKey {
        key: key.to_string(),
        reason,
    };
    if key.len() != PUBLIC_KEY_LEN {
        let hint = if key.len() == SEED_LEN && key.starts_with('S') {
            " (this looks like a seed; never share seeds, pass the public key instead)"
        } else {
            ""
        };
        return Err(invalid(format!("it has {} characters{hint}", key.len())));
    }
    let (prefix, _) = nkeys::from_public_key(key).map_err(|e| invalid(describe_nkeys_error(&e)))?;
    KeyKind::from_prefix_byte(prefix)
        .ok_or_else(|| invalid("its type is not a lattice identity (curve key)".to_string()))
}

/// Like [`parse_public_key`], but also requires the key to be of `expected` kind.
pub fn parse_public_key_of_kind(key: &str, expected: KeyKind) -> Result<(), KeyError> {
    let actual = parse_public_key(key)?;
    if actual != expected {
        return Err(KeyError::WrongKind { expected, actual });
    }
    Ok(())
}

/// The cluster keys a host or provider accepts invocations from, decoded once: verifying
/// a token then costs one Ed25519 verification, not a base32 decode, a checksum and a
/// point decompression of the issuer's key on every call.
#[derive(Clone, Default)]
pub struct TrustedIssuers {
    keys: Vec<(String, ed25519_dalek::VerifyingKey)>,
}

impl std::fmt::Debug for TrustedIssuers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.keys.iter().map(|(k, _)| k))
            .finish()
    }
}

impl TrustedIssuers {
    /// Decodes `keys` (public keys, usually `C...`), skipping duplicates; an invalid key
    /// is an error naming it.
    pub fn new<I, S>(keys: I) -> Result<Self, KeyError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut trusted = TrustedIssuers::default();
        for key in keys {
            trusted.insert(key.as_ref())?;
        }
        Ok(trusted)
    }

    /// Trusts one more key (no-op if already trusted); an invalid key is an error naming it.
    pub fn insert(&mut self, key: &str) -> Result<(), KeyError> {
        let key = key.trim();
        if self.get(key).is_some() {
            return Ok(());
        }
        parse_public_key(key)?;
        let invalid = |reason: String| KeyError::InvalidPublicKey {
            key: key.to_string(),
            reason,
        };
        let (_, bytes) =
            nkeys::from_public_key(key).map_err(|e| invalid(describe_nkeys_error(&e)))?;
        let verifying = ed25519_dalek::VerifyingKey::from_bytes(&bytes)
            .map_err(|_| invalid("it is not a point on the Ed25519 curve".to_string()))?;
        self.keys.push((key.to_string(), verifying));
        Ok(())
    }

    /// Whether no key is trusted.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The decoded key of `public_key`, if it is trusted.
    pub fn get(&self, public_key: &str) -> Option<&ed25519_dalek::VerifyingKey> {
        self.keys
            .iter()
            .find(|(k, _)| k == public_key)
            .map(|(_, v)| v)
    }

    /// The trusted public keys, in the order given.
    pub fn public_keys(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|(k, _)| k.as_str())
    }

    /// Checks `signature` over `message` by `public_key`, which must be trusted.
    pub fn verify(
        &self,
        public_key: &str,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), KeyError> {
        use ed25519_dalek::Verifier as _;
        let bad = || KeyError::BadSignature {
            key: public_key.to_string(),
        };
        let key = self.get(public_key).ok_or_else(bad)?;
        let signature = ed25519_dalek::Signature::from_slice(signature).map_err(|_| bad())?;
        key.verify(message, &signature).map_err(|_| bad())
    }
}

/// Verifies an Ed25519 `signature` over `message` by the holder of public key `key`,
/// for verifiers that have no seed (JWT checks, invocation checks).
pub fn verify_signature(key: &str, message: &[u8], signature: &[u8]) -> Result<(), KeyError> {
    parse_public_key(key)?;
    let public = nkeys::KeyPair::from_public_key(key).map_err(|e| KeyError::InvalidPublicKey {
        key: key.to_string(),
        reason: describe_nkeys_error(&e),
    })?;
    public
        .verify(message, signature)
        .map_err(|_| KeyError::BadSignature {
            key: key.to_string(),
        })
}

/// Turns an nkeys error into a short lowercase reason without the key material.
fn describe_nkeys_error(e: &nkeys::error::Error) -> String {
    use nkeys::error::ErrorKind as K;
    match e.kind() {
        K::ChecksumFailure => "its checksum does not match (mistyped or truncated)".to_string(),
        K::CodecFailure => "it is not valid base32 (use uppercase A-Z and 2-7 only)".to_string(),
        K::InvalidKeyLength => "it has the wrong length".to_string(),
        K::InvalidPrefix => "its type prefix is not valid".to_string(),
        other => other.as_str().to_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_match_generated_keys() {
        for kind in KeyKind::ALL {
            let kp = KeyPair::generate(kind);
            let pk = kp.public_key();
            assert!(pk.starts_with(kind.prefix()), "{kind}: {pk}");
            assert_eq!(parse_public_key(&pk).unwrap(), kind);
            let seed = kp.seed().unwrap();
            assert_eq!(seed.len(), SEED_LEN);
            assert!(seed.starts_with(&format!("S{}", kind.prefix())));
            let back = KeyPair::from_seed(&seed).unwrap();
            assert_eq!(back.public_key(), pk);
            assert_eq!(back.kind(), kind);
            assert_eq!(kind.name().parse::<KeyKind>().unwrap(), kind);
        }
    }
}
