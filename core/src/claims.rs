//! wascap-compatible claims: the signed JWTs embedded in actor modules (who issued the
//! module, what it may call, a hash that pins its bytes) and the anti-forgery JWTs that
//! travel with lattice invocations.
//!
//! Tokens are `base64url(header).base64url(claims).base64url(signature)` without padding,
//! header `{"typ":"jwt","alg":"Ed25519"}`, signed with the issuer's nkey. The JSON field
//! names and their order are those of wascap 0.11, so tokens written here are read by the
//! published wascap and the other way round.
//!
//! Verification is stricter than wascap in one point: the module hash is checked for
//! every token, whatever its `wascap_revision`.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::keys::{self, KeyError, KeyKind, KeyPair, TrustedIssuers};
use crate::wasm::{self, CLAIMS_SECTION, LEGACY_CLAIMS_SECTION, WasmError};

/// The only JWT `typ` header value.
pub const HEADER_TYPE: &str = "jwt";

/// The only JWT `alg` header value accepted and written.
pub const HEADER_ALGORITHM: &str = "Ed25519";

/// The `wascap_revision` written into new tokens: revision 3 means "module hash is the
/// SHA-256 of the module with its claims sections cut out" (wascap ≥ 0.10.1).
pub const WASCAP_REVISION: u32 = 3;

/// The JWT header, kept as a type so its field names and order match wascap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Header {
    typ: String,
    alg: String,
}

/// The standard and wascap claims of a token; `T` is the `wascap` metadata (an actor, a
/// provider, an invocation). Field names are the JSON names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims<T> {
    /// Expiry, seconds since the Unix epoch; the token is refused after it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub exp: Option<u64>,
    /// Unique token id.
    pub jti: String,
    /// Issue time, seconds since the Unix epoch.
    pub iat: u64,
    /// Issuer public key (an account `A...` for modules, a cluster `C...` for invocations).
    pub iss: String,
    /// Subject: the module `M...` / provider `V...` public key, or the invocation id.
    pub sub: String,
    /// Not-before time, seconds since the Unix epoch; the token is refused before it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub nbf: Option<u64>,
    /// The wascap metadata.
    pub wascap: T,
    /// Which wascap rules wrote the token (3 = current module hash rule).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub wascap_revision: Option<u32>,
}

/// A raw JWT together with its decoded claims, so callers can both show the claims and
/// pass the token on unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token<T> {
    /// The encoded token as found or written.
    pub jwt: String,
    /// Its decoded claims.
    pub claims: Claims<T>,
}

/// Actor metadata (`wascap` of a module token), with wascap's wire names.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Actor {
    /// Human-readable name.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub name: Option<String>,
    /// Module hash (uppercase hex SHA-256 of the module without claims sections).
    pub hash: String,
    /// Free-form tags.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub tags: Option<Vec<String>>,
    /// Contract ids the actor may call; `None` (no field) means links alone grant access.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub caps: Option<Vec<String>>,
    /// Monotonic revision number.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub rev: Option<i32>,
    /// Human-friendly version string.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ver: Option<String>,
    /// Alias callers may use instead of the public key (normalized, see
    /// [`normalize_call_alias`]).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub call_alias: Option<String>,
    /// Whether the module is a capability provider (always false for actors).
    #[serde(default)]
    pub prov: bool,
}

/// Capability provider metadata (`wascap` of a provider archive token), with wascap's
/// wire names.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CapabilityProvider {
    /// Human-readable name (wascap writes `null` when absent).
    #[serde(default)]
    pub name: Option<String>,
    /// The contract id the provider implements, e.g. `wasmcloud:httpserver`.
    pub capid: String,
    /// Vendor string, e.g. `wasmcloud`.
    pub vendor: String,
    /// Monotonic revision number.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub rev: Option<i32>,
    /// Human-friendly version string.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ver: Option<String>,
    /// Target (`x86_64-linux`, ...) to uppercase hex SHA-256 of that binary.
    pub target_hashes: BTreeMap<String, String>,
    /// Optional JSON schema of the link configuration.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub config_schema: Option<serde_json::Value>,
}

/// Invocation metadata (`wascap` of an anti-forgery token).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Invocation {
    /// URL of the target entity plus operation.
    pub target_url: String,
    /// URL of the origin entity.
    pub origin_url: String,
    /// [`invocation_hash`] of the call.
    pub hash: String,
}

/// Why claims could not be read, written or accepted. Each variant is a distinct cause
/// and its message says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum ClaimsError {
    /// The file is not a (well-formed) WebAssembly module.
    #[error(transparent)]
    NotWasm(#[from] WasmError),
    /// The module carries no claims section.
    #[error(
        "module is not signed (it has no `wasmcloud_jwt` or `jwt` section); sign it with `wash claims sign`"
    )]
    NoClaims,
    /// The token is not a well-formed wascap JWT.
    #[error("claims token is malformed: {0}; re-sign the module with `wash claims sign`")]
    MalformedToken(String),
    /// The header names another algorithm than `Ed25519`.
    #[error(
        "claims token uses algorithm `{0}`, but only `Ed25519` is accepted; re-sign the module with `wash claims sign`"
    )]
    InvalidAlgorithm(String),
    /// The issuer is not an account public key.
    #[error(
        "claims issuer `{issuer}` is not an account public key ({reason}); sign with an account key (`wash keys gen account`)"
    )]
    InvalidIssuer {
        /// The `iss` value.
        issuer: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The subject is not a public key of the expected kind.
    #[error(
        "claims subject `{subject}` is not a {expected} public key ({reason}); sign with a {expected} key (`wash keys gen {expected}`)"
    )]
    InvalidSubject {
        /// The `sub` value.
        subject: String,
        /// The kind required.
        expected: KeyKind,
        /// What is wrong with it.
        reason: String,
    },
    /// The signature does not verify with the issuer's key.
    #[error(
        "token was not signed by its issuer {issuer}: the claims were altered or forged; re-sign the module with `wash claims sign`"
    )]
    BadSignature {
        /// The `iss` value the signature was checked against.
        issuer: String,
    },
    /// The module bytes differ from those that were signed.
    #[error(
        "module was modified after signing (claims hash {expected}, module hash {actual}); re-sign it with `wash claims sign` (modules signed by wascap older than 0.10.1 need re-signing too)"
    )]
    HashMismatch {
        /// The hash recorded in the claims.
        expected: String,
        /// The hash of the module as it is.
        actual: String,
    },
    /// The token's `exp` has passed.
    #[error(
        "claims expired at {}; re-sign the module with a later `--expires-in`",
        format_unix_time(*.exp)
    )]
    Expired {
        /// The `exp` value, seconds since the Unix epoch.
        exp: u64,
    },
    /// The token's `nbf` has not come yet.
    #[error(
        "claims are not valid before {}; wait until then or re-sign the module without `--not-before`",
        format_unix_time(*.nbf)
    )]
    NotYetValid {
        /// The `nbf` value, seconds since the Unix epoch.
        nbf: u64,
    },
    /// The issuer is valid but not among the trusted ones.
    #[error(
        "issuer {issuer} is not trusted here; add it to the allowed issuers (or the cluster issuers for invocations) or sign with a trusted key"
    )]
    UntrustedIssuer {
        /// The `iss` value.
        issuer: String,
    },
    /// An invocation token whose `exp` has passed: the invocation was held back or
    /// replayed, or the clocks of sender and receiver disagree by more than
    /// [`INVOCATION_CLOCK_SKEW`].
    #[error(
        "invocation token expired at {} (it is {} here): the invocation was delayed or replayed, or the sender's clock is more than {}s off this machine's; check both clocks (NTP)",
        format_unix_time(*.exp),
        format_unix_time(*.now),
        INVOCATION_CLOCK_SKEW.as_secs()
    )]
    InvocationExpired {
        /// The token's `exp`, seconds since the Unix epoch.
        exp: u64,
        /// The receiver's time when it checked, seconds since the Unix epoch.
        now: u64,
    },
    /// An invocation token that does not describe the invocation it came with.
    #[error(
        "invocation token does not match the invocation ({field}: token has `{token}`, invocation has `{actual}`); the invocation was altered or replayed"
    )]
    InvocationMismatch {
        /// Which field differs (`sub`, `origin_url`, `target_url`, `hash`).
        field: &'static str,
        /// The value in the token.
        token: String,
        /// The value of the invocation.
        actual: String,
    },
    /// Signing failed (bad key).
    #[error("failed to sign claims: {0}")]
    Signing(KeyError),
}

impl From<KeyError> for ClaimsError {
    /// Key errors met while encoding are signing failures; the message already carries
    /// the key error, so it is not repeated as a source.
    fn from(e: KeyError) -> Self {
        ClaimsError::Signing(e)
    }
}

/// When a token starts or stops being valid, relative to its issue time or absolute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeSpec {
    /// This long after the issue time (`--expires-in 30` days).
    After(Duration),
    /// At this many seconds since the Unix epoch.
    At(u64),
}

impl TimeSpec {
    /// A whole number of days after issue, the unit of `wash claims sign`.
    pub fn days(days: u64) -> TimeSpec {
        TimeSpec::After(Duration::from_secs(days.saturating_mul(86_400)))
    }

    fn resolve(self, iat: u64) -> u64 {
        match self {
            TimeSpec::After(d) => iat.saturating_add(d.as_secs()),
            TimeSpec::At(t) => t,
        }
    }
}

/// What to put into an actor's claims; the hash, keys and times are filled in by
/// [`sign_actor`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActorClaimsParams {
    /// Human-readable name.
    pub name: Option<String>,
    /// Contract ids the actor may call; `None` writes no `caps` field (links grant).
    pub caps: Option<Vec<String>>,
    /// Free-form tags (written only if non-empty).
    pub tags: Vec<String>,
    /// Version string.
    pub ver: Option<String>,
    /// Revision number.
    pub rev: Option<i32>,
    /// Call alias (normalized before writing).
    pub call_alias: Option<String>,
    /// Issue time in Unix seconds; `None` means now.
    pub issued_at: Option<u64>,
    /// Expiry; `None` means never.
    pub expires: Option<TimeSpec>,
    /// Start of validity; `None` means immediately.
    pub not_before: Option<TimeSpec>,
}

/// Current time in seconds since the Unix epoch (0 if the clock is before 1970), the
/// clock used for `iat` and validity checks.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Formats Unix seconds as `YYYY-MM-DD HH:MM:SS UTC`, for error messages and `wash
/// claims inspect`.
pub fn format_unix_time(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2);
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (H. Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days.saturating_add(719_468);
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m as u32, d as u32)
}

/// Normalizes a call alias as wascap does: lowercase, trimmed, non-ASCII dropped, and
/// space, `-` and `.` turned into `_`.
pub fn normalize_call_alias(alias: &str) -> String {
    alias
        .to_lowercase()
        .trim()
        .chars()
        .filter(char::is_ascii)
        .map(|c| if matches!(c, ' ' | '-' | '.') { '_' } else { c })
        .collect()
}

/// A fresh token id (32 lowercase hex digits).
fn new_jti() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn to_segment<T: Serialize>(value: &T) -> Result<String, ClaimsError> {
    let json = serde_json::to_vec(value)
        .map_err(|e| ClaimsError::MalformedToken(format!("cannot encode claims: {e}")))?;
    Ok(URL_SAFE_NO_PAD.encode(json))
}

fn from_segment<T: DeserializeOwned>(segment: &str, what: &str) -> Result<T, ClaimsError> {
    let bytes = URL_SAFE_NO_PAD.decode(segment).map_err(|e| {
        ClaimsError::MalformedToken(format!("{what} is not base64url without padding ({e})"))
    })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ClaimsError::MalformedToken(format!("{what} is not valid JSON ({e})")))
}

/// Encodes and signs `claims` with `issuer`, producing a wascap-compatible JWT.
pub fn encode_claims<T: Serialize>(
    claims: &Claims<T>,
    issuer: &KeyPair,
) -> Result<String, ClaimsError> {
    let header = Header {
        typ: HEADER_TYPE.to_string(),
        alg: HEADER_ALGORITHM.to_string(),
    };
    let signed = format!("{}.{}", to_segment(&header)?, to_segment(claims)?);
    let signature = issuer.sign(signed.as_bytes())?;
    Ok(format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature)))
}

/// A parsed but not yet verified token.
struct Parsed<'a, T> {
    claims: Claims<T>,
    signed: &'a str,
    signature: Vec<u8>,
}

fn parse<T: DeserializeOwned>(jwt: &str) -> Result<Parsed<'_, T>, ClaimsError> {
    let segments: Vec<&str> = jwt.split('.').collect();
    let [header_seg, claims_seg, signature] = segments[..] else {
        return Err(ClaimsError::MalformedToken(format!(
            "expected 3 dot-separated segments, found {}",
            segments.len()
        )));
    };
    let header: Header = from_segment(header_seg, "header")?;
    if header.alg != HEADER_ALGORITHM {
        return Err(ClaimsError::InvalidAlgorithm(header.alg));
    }
    if header.typ != HEADER_TYPE {
        return Err(ClaimsError::MalformedToken(format!(
            "header type is `{}`, expected `jwt`",
            header.typ
        )));
    }
    let claims: Claims<T> = from_segment(claims_seg, "claims")?;
    let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|e| {
        ClaimsError::MalformedToken(format!("signature is not base64url without padding ({e})"))
    })?;
    if signature.len() != 64 {
        return Err(ClaimsError::MalformedToken(format!(
            "signature is {} bytes, expected 64",
            signature.len()
        )));
    }
    // The signed part is the first two segments and the dot between them.
    let signed = jwt
        .get(..header_seg.len() + 1 + claims_seg.len())
        .unwrap_or_default();
    Ok(Parsed {
        claims,
        signed,
        signature,
    })
}

/// Decodes a token without verifying its signature or times, for display (`wash claims
/// inspect`) and for reading claims already verified elsewhere.
pub fn decode_token<T: DeserializeOwned>(jwt: &str) -> Result<Token<T>, ClaimsError> {
    let parsed = parse::<T>(jwt)?;
    Ok(Token {
        jwt: jwt.to_string(),
        claims: parsed.claims,
    })
}

fn check_signature<T>(parsed: &Parsed<'_, T>) -> Result<(), ClaimsError> {
    let issuer = &parsed.claims.iss;
    keys::verify_signature(issuer, parsed.signed.as_bytes(), &parsed.signature).map_err(|e| match e
    {
        KeyError::BadSignature { .. } => ClaimsError::BadSignature {
            issuer: issuer.clone(),
        },
        other => ClaimsError::InvalidIssuer {
            issuer: issuer.clone(),
            reason: other.to_string(),
        },
    })
}

fn check_times<T>(claims: &Claims<T>, now: u64) -> Result<(), ClaimsError> {
    if let Some(exp) = claims.exp
        && exp < now
    {
        return Err(ClaimsError::Expired { exp });
    }
    if let Some(nbf) = claims.nbf
        && now < nbf
    {
        return Err(ClaimsError::NotYetValid { nbf });
    }
    Ok(())
}

fn check_issuer_is_account(issuer: &str) -> Result<(), ClaimsError> {
    match keys::parse_public_key(issuer) {
        Ok(KeyKind::Account) => Ok(()),
        Ok(kind) => Err(ClaimsError::InvalidIssuer {
            issuer: issuer.to_string(),
            reason: format!("it is a {kind} key"),
        }),
        Err(e) => Err(ClaimsError::InvalidIssuer {
            issuer: issuer.to_string(),
            reason: key_reason(&e),
        }),
    }
}

fn check_subject_kind(subject: &str, expected: KeyKind) -> Result<(), ClaimsError> {
    match keys::parse_public_key(subject) {
        Ok(kind) if kind == expected => Ok(()),
        Ok(kind) => Err(ClaimsError::InvalidSubject {
            subject: subject.to_string(),
            expected,
            reason: format!("it is a {kind} key"),
        }),
        Err(e) => Err(ClaimsError::InvalidSubject {
            subject: subject.to_string(),
            expected,
            reason: key_reason(&e),
        }),
    }
}

/// The short reason of a key error, without its generic advice.
fn key_reason(e: &KeyError) -> String {
    match e {
        KeyError::InvalidPublicKey { reason, .. } => reason.clone(),
        other => other.to_string(),
    }
}

/// Verifies a token issued by an account for a subject of `subject_kind`: structure,
/// algorithm, key kinds, signature and validity times at `now` (Unix seconds).
pub fn verify_token<T: DeserializeOwned>(
    jwt: &str,
    subject_kind: KeyKind,
    now: u64,
) -> Result<Token<T>, ClaimsError> {
    let parsed = parse::<T>(jwt)?;
    check_issuer_is_account(&parsed.claims.iss)?;
    check_subject_kind(&parsed.claims.sub, subject_kind)?;
    check_signature(&parsed)?;
    check_times(&parsed.claims, now)?;
    Ok(Token {
        jwt: jwt.to_string(),
        claims: parsed.claims,
    })
}

/// Signs `module` as an actor: drops any old claims sections, computes the module hash
/// and appends a `wasmcloud_jwt` section with revision-3 claims issued by the account
/// `issuer` for the module key `subject`.
///
/// Section sizes are rewritten in their shortest LEB128 form (as wascap does), so the
/// hash recorded is the same under wascap's rule and ours.
pub fn sign_actor(
    module: &[u8],
    params: &ActorClaimsParams,
    issuer: &KeyPair,
    subject: &KeyPair,
) -> Result<Vec<u8>, ClaimsError> {
    if issuer.kind() != KeyKind::Account {
        return Err(ClaimsError::InvalidIssuer {
            issuer: issuer.public_key(),
            reason: format!("it is a {} key", issuer.kind()),
        });
    }
    if subject.kind() != KeyKind::Module {
        return Err(ClaimsError::InvalidSubject {
            subject: subject.public_key(),
            expected: KeyKind::Module,
            reason: format!("it is a {} key", subject.kind()),
        });
    }
    let unsigned = wasm::canonical_unsigned(module)?;
    let iat = params.issued_at.unwrap_or_else(unix_now);
    let claims = Claims {
        exp: params.expires.map(|t| t.resolve(iat)),
        jti: new_jti(),
        iat,
        iss: issuer.public_key(),
        sub: subject.public_key(),
        nbf: params.not_before.map(|t| t.resolve(iat)),
        wascap: Actor {
            name: params.name.clone(),
            hash: wasm::sha256_upper_hex(&unsigned),
            tags: (!params.tags.is_empty()).then(|| params.tags.clone()),
            caps: params.caps.clone(),
            rev: params.rev,
            ver: params.ver.clone(),
            call_alias: params.call_alias.as_deref().map(normalize_call_alias),
            prov: false,
        },
        wascap_revision: Some(WASCAP_REVISION),
    };
    let jwt = encode_claims(&claims, issuer)?;
    Ok(wasm::embed_custom_section(
        &unsigned,
        CLAIMS_SECTION,
        jwt.as_bytes(),
    )?)
}

/// Reads the actor token of `module` without verifying it: the first `wasmcloud_jwt`
/// section, else the first legacy `jwt` section; `None` if the module is unsigned.
pub fn extract_token(module: &[u8]) -> Result<Option<Token<Actor>>, ClaimsError> {
    let sections = wasm::sections(module)?;
    let section = sections
        .iter()
        .find(|s| s.name == Some(CLAIMS_SECTION))
        .or_else(|| {
            sections
                .iter()
                .find(|s| s.name == Some(LEGACY_CLAIMS_SECTION))
        });
    let Some(section) = section else {
        return Ok(None);
    };
    let jwt = std::str::from_utf8(section.data).map_err(|_| {
        ClaimsError::MalformedToken("the claims section does not hold UTF-8 text".to_string())
    })?;
    decode_token(jwt).map(Some)
}

/// Verifies the claims of `module` at `now` (Unix seconds): a well-formed Ed25519 token,
/// issued by an account for a module key, signed by its issuer, whose hash matches the
/// module (for every revision), and within its validity window.
pub fn verify_actor(module: &[u8], now: u64) -> Result<Token<Actor>, ClaimsError> {
    let token = extract_token(module)?.ok_or(ClaimsError::NoClaims)?;
    let parsed = parse::<Actor>(&token.jwt)?;
    check_issuer_is_account(&parsed.claims.iss)?;
    check_subject_kind(&parsed.claims.sub, KeyKind::Module)?;
    check_signature(&parsed)?;
    let actual = wasm::module_hash(module)?;
    if parsed.claims.wascap.hash != actual {
        return Err(ClaimsError::HashMismatch {
            expected: parsed.claims.wascap.hash.clone(),
            actual,
        });
    }
    check_times(&parsed.claims, now)?;
    Ok(token)
}

/// [`verify_actor`], and the issuer must be one of `trusted` (account public keys). An
/// empty list trusts no one; use [`verify_actor`] to accept any issuer.
pub fn verify_actor_with_issuers(
    module: &[u8],
    now: u64,
    trusted: &[String],
) -> Result<Token<Actor>, ClaimsError> {
    let token = verify_actor(module, now)?;
    if !trusted.contains(&token.claims.iss) {
        return Err(ClaimsError::UntrustedIssuer {
            issuer: token.claims.iss,
        });
    }
    Ok(token)
}

/// The invocation hash: uppercase hex SHA-256 of `origin_url ‖ target_url ‖ operation ‖
/// msg` (the full, un-chunked message), as the 0.x lattice computes it.
pub fn invocation_hash(origin_url: &str, target_url: &str, operation: &str, msg: &[u8]) -> String {
    let mut bytes =
        Vec::with_capacity(origin_url.len() + target_url.len() + operation.len() + msg.len());
    bytes.extend_from_slice(origin_url.as_bytes());
    bytes.extend_from_slice(target_url.as_bytes());
    bytes.extend_from_slice(operation.as_bytes());
    bytes.extend_from_slice(msg);
    wasm::sha256_upper_hex(&bytes)
}

/// How far the clocks of a lattice's machines may disagree, allowed for in the expiry of
/// every invocation token written here: a token is valid for the call's timeout plus this.
/// 30 s is NTP-less-VM territory; a larger skew makes every remote call fail with
/// "invocation token expired", which says what to fix.
pub const INVOCATION_CLOCK_SKEW: Duration = Duration::from_secs(30);

/// The lifetime [`sign_invocation`] gives a token: the default RPC timeout (2 s) plus
/// [`INVOCATION_CLOCK_SKEW`].
pub const DEFAULT_INVOCATION_LIFETIME: Duration =
    Duration::from_secs(2).saturating_add(INVOCATION_CLOCK_SKEW);

/// The lifetime of the token of a call that waits at most `timeout` for its answer:
/// `timeout` + [`INVOCATION_CLOCK_SKEW`]. A receiver refuses the token after it, and
/// remembers it (to refuse a replay) until then.
pub fn invocation_lifetime(timeout: Duration) -> Duration {
    timeout.saturating_add(INVOCATION_CLOCK_SKEW)
}

/// Signs the anti-forgery token of one invocation with the cluster key: `sub` is the
/// invocation id, revision 3 (what 0.x hosts and providers expect in `encoded_claims`),
/// and an `exp` [`DEFAULT_INVOCATION_LIFETIME`] after the issue time. See
/// [`sign_invocation_with_lifetime`].
pub fn sign_invocation(
    cluster: &KeyPair,
    id: &str,
    origin_url: &str,
    target_url: &str,
    operation: &str,
    msg: &[u8],
) -> Result<String, ClaimsError> {
    sign_invocation_with_lifetime(
        cluster,
        id,
        origin_url,
        target_url,
        operation,
        msg,
        DEFAULT_INVOCATION_LIFETIME,
    )
}

/// [`sign_invocation`] with `exp` = issue time + `lifetime` (rounded up to whole
/// seconds, at least 1 s). 0.x senders write no `exp`; wascap and 0.x receivers check
/// `exp` when present, so such a token is read by both.
pub fn sign_invocation_with_lifetime(
    cluster: &KeyPair,
    id: &str,
    origin_url: &str,
    target_url: &str,
    operation: &str,
    msg: &[u8],
    lifetime: Duration,
) -> Result<String, ClaimsError> {
    let iat = unix_now();
    let secs = lifetime
        .as_secs()
        .saturating_add(u64::from(lifetime.subsec_nanos() > 0))
        .max(1);
    let claims = Claims {
        exp: Some(iat.saturating_add(secs)),
        jti: new_jti(),
        iat,
        iss: cluster.public_key(),
        sub: id.to_string(),
        nbf: None,
        wascap: Invocation {
            target_url: target_url.to_string(),
            origin_url: origin_url.to_string(),
            hash: invocation_hash(origin_url, target_url, operation, msg),
        },
        wascap_revision: Some(WASCAP_REVISION),
    };
    encode_claims(&claims, cluster)
}

/// The invocation an anti-forgery token must describe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpectedInvocation<'a> {
    /// Invocation id (the token's `sub`).
    pub id: &'a str,
    /// URL of the origin entity.
    pub origin_url: &'a str,
    /// URL of the target entity plus operation.
    pub target_url: &'a str,
    /// Operation name.
    pub operation: &'a str,
    /// The full, un-chunked message.
    pub msg: &'a [u8],
}

/// Verifies an invocation's anti-forgery token: structure, algorithm, signature by its
/// issuer, validity times (an `exp` in the past is [`ClaimsError::InvocationExpired`]; a
/// token without `exp`, as 0.x senders write, is accepted here), issuer among the
/// `trusted` cluster keys (checked first, so an untrusted token costs no signature
/// check), and id, URLs and hash equal to those of `expected`. Replays are the
/// receiver's to detect: see [`crate::replay::ReplayGuard`].
pub fn verify_invocation(
    token: &str,
    expected: &ExpectedInvocation<'_>,
    trusted: &TrustedIssuers,
) -> Result<Claims<Invocation>, ClaimsError> {
    verify_invocation_at(token, expected, trusted, unix_now())
}

/// [`verify_invocation`] at `now` (Unix seconds).
pub fn verify_invocation_at(
    token: &str,
    expected: &ExpectedInvocation<'_>,
    trusted: &TrustedIssuers,
    now: u64,
) -> Result<Claims<Invocation>, ClaimsError> {
    let parsed = parse::<Invocation>(token)?;
    // The issuer first: a key nobody trusts is refused without any signature work.
    if trusted.get(&parsed.claims.iss).is_none() {
        return Err(ClaimsError::UntrustedIssuer {
            issuer: parsed.claims.iss,
        });
    }
    trusted
        .verify(
            &parsed.claims.iss,
            parsed.signed.as_bytes(),
            &parsed.signature,
        )
        .map_err(|_| ClaimsError::BadSignature {
            issuer: parsed.claims.iss.clone(),
        })?;
    if let Some(exp) = parsed.claims.exp
        && exp < now
    {
        return Err(ClaimsError::InvocationExpired { exp, now });
    }
    check_times(&parsed.claims, now)?;
    let claims = parsed.claims;
    let hash = invocation_hash(
        expected.origin_url,
        expected.target_url,
        expected.operation,
        expected.msg,
    );
    let checks: [(&'static str, &str, &str); 4] = [
        ("sub", &claims.sub, expected.id),
        ("origin_url", &claims.wascap.origin_url, expected.origin_url),
        ("target_url", &claims.wascap.target_url, expected.target_url),
        ("hash", &claims.wascap.hash, &hash),
    ];
    for (field, token, actual) in checks {
        if token != actual {
            return Err(ClaimsError::InvocationMismatch {
                field,
                token: token.to_string(),
                actual: actual.to_string(),
            });
        }
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_format_as_utc() {
        assert_eq!(format_unix_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_unix_time(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(format_unix_time(1_704_067_199), "2023-12-31 23:59:59 UTC");
        // Absurd values must not panic.
        let _ = format_unix_time(u64::MAX);
    }

    /// The invocation the token tests sign and verify.
    fn sample_invocation() -> ExpectedInvocation<'static> {
        ExpectedInvocation {
            id: "abc",
            origin_url: "wasmbus://M1",
            target_url: "wasmbus://M2/Op",
            operation: "Op",
            msg: b"hi",
        }
    }

    #[test]
    fn call_alias_is_normalized_like_wascap() {
        assert_eq!(normalize_call_alias(" My-Actor.v1 ünï "), "my_actor_v1_n");
    }

    #[test]
    fn an_expired_invocation_token_is_refused() {
        let cluster = KeyPair::generate(KeyKind::Cluster);
        let exp = sample_invocation();
        let lifetime = invocation_lifetime(Duration::from_secs(2));
        let jwt = sign_invocation_with_lifetime(
            &cluster,
            exp.id,
            exp.origin_url,
            exp.target_url,
            "Op",
            b"hi",
            lifetime,
        )
        .unwrap();
        let issuers = TrustedIssuers::new([cluster.public_key()]).unwrap();
        let claims = verify_invocation(&jwt, &exp, &issuers).unwrap();
        assert_eq!(claims.exp, Some(claims.iat + 32));
        let later = claims.iat + 33;
        let err = verify_invocation_at(&jwt, &exp, &issuers, later).unwrap_err();
        assert!(
            matches!(err, ClaimsError::InvocationExpired { now, .. } if now == later),
            "{err:?}"
        );
        assert!(
            err.to_string().contains("invocation token expired"),
            "{err}"
        );
    }

    #[test]
    fn a_0x_invocation_token_without_exp_is_accepted() {
        let cluster = KeyPair::generate(KeyKind::Cluster);
        let claims = Claims {
            exp: None,
            jti: new_jti(),
            iat: unix_now(),
            iss: cluster.public_key(),
            sub: "abc".to_string(),
            nbf: None,
            wascap: Invocation {
                target_url: "wasmbus://M2/Op".into(),
                origin_url: "wasmbus://M1".into(),
                hash: invocation_hash("wasmbus://M1", "wasmbus://M2/Op", "Op", b"hi"),
            },
            wascap_revision: Some(WASCAP_REVISION),
        };
        let jwt = encode_claims(&claims, &cluster).unwrap();
        let exp = sample_invocation();
        let issuers = TrustedIssuers::new([cluster.public_key()]).unwrap();
        // Even a day later: without exp, only the receiver's replay guard bounds its age.
        let got = verify_invocation_at(&jwt, &exp, &issuers, claims.iat + 86_400).unwrap();
        assert_eq!(got.exp, None);
    }

    #[test]
    fn invocation_round_trip() {
        let cluster = KeyPair::generate(KeyKind::Cluster);
        let exp = sample_invocation();
        let jwt = sign_invocation(
            &cluster,
            exp.id,
            exp.origin_url,
            exp.target_url,
            "Op",
            b"hi",
        )
        .unwrap();
        let issuers = TrustedIssuers::new([cluster.public_key()]).unwrap();
        verify_invocation(&jwt, &exp, &issuers).unwrap();
        let tampered = ExpectedInvocation { msg: b"ho", ..exp };
        assert!(matches!(
            verify_invocation(&jwt, &tampered, &issuers),
            Err(ClaimsError::InvocationMismatch { field: "hash", .. })
        ));
        assert!(matches!(
            verify_invocation(&jwt, &exp, &TrustedIssuers::default()),
            Err(ClaimsError::UntrustedIssuer { .. })
        ));
        // A token altered after signing fails on its signature.
        let (signed, _) = jwt.rsplit_once('.').unwrap();
        let forged = format!("{signed}.{}", URL_SAFE_NO_PAD.encode([7u8; 64]));
        assert!(matches!(
            verify_invocation(&forged, &exp, &issuers),
            Err(ClaimsError::BadSignature { .. })
        ));
    }
}
