//! MessagePack and JSON encoding helpers shared by every wire type.
//!
//! The lattice speaks two encodings: the RPC plane uses MessagePack with structs written
//! as maps keyed by field name (what OTP and wasmbus-rpc expect), the control interface,
//! events and KV values use JSON. These helpers fix the right options in one place and turn
//! every failure into an [`EncodingError`] that names the type that failed and why.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Which encoding an [`EncodingError`] happened in, so messages say what was being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// MessagePack, structs as maps keyed by field name.
    MessagePack,
    /// JSON (control interface, events, KV values, host data).
    Json,
    /// Standard base64 (the provider host-data stdin line).
    Base64,
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Format::MessagePack => "MessagePack",
            Format::Json => "JSON",
            Format::Base64 => "base64",
        })
    }
}

/// Why encoding or decoding a wire type failed; the message names the type and the cause,
/// so a malformed message from the network is diagnosable from the log line alone.
#[derive(Debug, thiserror::Error)]
pub enum EncodingError {
    /// A value could not be encoded (rare: e.g. a map with non-string keys in JSON).
    #[error("failed to encode {type_name} as {format}: {reason}")]
    Encode {
        /// Short name of the Rust type being encoded.
        type_name: String,
        /// The target encoding.
        format: Format,
        /// What the encoder reported.
        reason: String,
    },
    /// Input bytes could not be decoded into the expected type.
    #[error("failed to decode {type_name} from {format} ({len} bytes): {reason}")]
    Decode {
        /// Short name of the Rust type being decoded.
        type_name: String,
        /// The source encoding.
        format: Format,
        /// Length of the input, to tell empty or truncated input apart at a glance.
        len: usize,
        /// What the decoder reported (missing field, invalid type, unexpected end, ...).
        reason: String,
    },
}

impl EncodingError {
    /// Builds a decode error for `T`; used by the helpers here and by hand-written decoders.
    pub fn decode<T: ?Sized>(format: Format, len: usize, reason: impl std::fmt::Display) -> Self {
        EncodingError::Decode {
            type_name: short_type_name::<T>(),
            format,
            len,
            reason: reason.to_string(),
        }
    }

    /// Builds an encode error for `T`; used by the helpers here and by hand-written encoders.
    pub fn encode<T: ?Sized>(format: Format, reason: impl std::fmt::Display) -> Self {
        EncodingError::Encode {
            type_name: short_type_name::<T>(),
            format,
            reason: reason.to_string(),
        }
    }
}

/// Encodes `value` as MessagePack with structs as maps keyed by field name, the form every
/// 0.x lattice participant reads (OTP unpacks into maps and looks fields up by name).
pub fn to_msgpack<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, EncodingError> {
    rmp_serde::to_vec_named(value).map_err(|e| EncodingError::encode::<T>(Format::MessagePack, e))
}

/// [`to_msgpack`] into a buffer of `capacity` bytes, for envelopes whose size is known
/// up to a small overhead (an invocation is its payload plus ~300 bytes of keys, ids and
/// a token): one allocation instead of a doubling series of reallocations and copies.
pub fn to_msgpack_sized<T: Serialize + ?Sized>(
    value: &T,
    capacity: usize,
) -> Result<Vec<u8>, EncodingError> {
    let mut buffer = Vec::with_capacity(capacity);
    rmp_serde::encode::write_named(&mut buffer, value)
        .map_err(|e| EncodingError::encode::<T>(Format::MessagePack, e))?;
    Ok(buffer)
}

/// Deepest nesting of arrays and maps that [`from_msgpack`] accepts (the limit serde_json
/// applies to JSON). No wire type nests more than a few levels, but serde skips the value
/// of an unknown key recursively, and under rmp-serde's own limit (1024 levels) a message
/// of ~1000 nested maps overflowed a 2 MiB thread stack (a debug build's test or tokio
/// worker thread) and aborted the process.
pub const MAX_MSGPACK_DEPTH: usize = 128;

/// [`rmp_serde::from_slice`] as 0.x readers use it (empty input and trailing bytes are
/// left to rmp-serde), with the depth limit of [`from_msgpack`]: for actor payloads that
/// providers decode, where a thousand nested maps must be an error, not a stack overflow.
pub fn from_msgpack_lenient<T: DeserializeOwned>(
    bytes: &[u8],
) -> Result<T, rmp_serde::decode::Error> {
    let mut de = rmp_serde::Deserializer::from_read_ref(bytes);
    de.set_max_depth(MAX_MSGPACK_DEPTH + 1);
    T::deserialize(&mut de)
}

/// Decodes one MessagePack value into `T`. Structs are accepted as maps (by name) or as
/// positional arrays; trailing bytes after the value, and nesting deeper than
/// [`MAX_MSGPACK_DEPTH`], are rejected as malformed input.
pub fn from_msgpack<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, EncodingError> {
    if bytes.is_empty() {
        return Err(EncodingError::decode::<T>(
            Format::MessagePack,
            0,
            "empty input",
        ));
    }
    // The borrowed-slice deserializer never allocates from an untrusted length prefix.
    let mut de = rmp_serde::Deserializer::from_read_ref(bytes);
    // rmp-serde fails when its countdown reaches 0: one more than the levels allowed.
    de.set_max_depth(MAX_MSGPACK_DEPTH + 1);
    let value = T::deserialize(&mut de).map_err(|e| match e {
        rmp_serde::decode::Error::DepthLimitExceeded => EncodingError::decode::<T>(
            Format::MessagePack,
            bytes.len(),
            format_args!("nested deeper than {MAX_MSGPACK_DEPTH} levels"),
        ),
        e => EncodingError::decode::<T>(Format::MessagePack, bytes.len(), e),
    })?;
    match msgpack_value_len(bytes) {
        Some(n) if n == bytes.len() => Ok(value),
        Some(n) => Err(EncodingError::decode::<T>(
            Format::MessagePack,
            bytes.len(),
            format_args!("{} trailing bytes after the value", bytes.len() - n),
        )),
        None => Err(EncodingError::decode::<T>(
            Format::MessagePack,
            bytes.len(),
            "truncated or invalid MessagePack",
        )),
    }
}

/// Encodes `value` as compact JSON bytes (control interface, events, KV values).
pub fn to_json<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, EncodingError> {
    serde_json::to_vec(value).map_err(|e| EncodingError::encode::<T>(Format::Json, e))
}

/// Encodes `value` as a compact JSON string, for logs, stdin lines and KV values.
pub fn to_json_string<T: Serialize + ?Sized>(value: &T) -> Result<String, EncodingError> {
    serde_json::to_string(value).map_err(|e| EncodingError::encode::<T>(Format::Json, e))
}

/// Decodes JSON bytes into `T`, naming `T` in the error.
pub fn from_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, EncodingError> {
    serde_json::from_slice(bytes)
        .map_err(|e| EncodingError::decode::<T>(Format::Json, bytes.len(), e))
}

/// Decodes a JSON string into `T`, naming `T` in the error.
pub fn from_json_str<T: DeserializeOwned>(text: &str) -> Result<T, EncodingError> {
    from_json(text.as_bytes())
}

/// `std::any::type_name` without module paths (`Vec<Invocation>` rather than
/// `alloc::vec::Vec<nimbus_core::wire::Invocation>`), for readable error messages.
pub(crate) fn short_type_name<T: ?Sized>() -> String {
    let full = std::any::type_name::<T>();
    let mut out = String::with_capacity(full.len());
    let mut segment = String::new();
    let mut chars = full.chars().peekable();
    while let Some(c) = chars.next() {
        if c == ':' && chars.peek() == Some(&':') {
            chars.next();
            segment.clear();
        } else if c.is_alphanumeric() || c == '_' {
            segment.push(c);
        } else {
            out.push_str(&segment);
            segment.clear();
            out.push(c);
        }
    }
    out.push_str(&segment);
    out
}

/// Length in bytes of the first complete MessagePack value in `bytes`, or `None` when the
/// input is truncated or starts with the reserved marker `0xc1`. Iterative, so deeply
/// nested input cannot overflow the stack.
pub(crate) fn msgpack_value_len(bytes: &[u8]) -> Option<usize> {
    let mut pos = 0usize;
    // Number of values still to read; containers add their element count.
    let mut pending: u64 = 1;
    while pending > 0 {
        pending -= 1;
        let marker = *bytes.get(pos)?;
        pos += 1;
        // Bytes to skip after the marker (and any length field) for scalar payloads.
        let skip: usize = match marker {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => 0,
            0x80..=0x8f => {
                pending += 2 * u64::from(marker & 0x0f);
                0
            }
            0x90..=0x9f => {
                pending += u64::from(marker & 0x0f);
                0
            }
            0xa0..=0xbf => usize::from(marker & 0x1f),
            0xc1 => return None,
            0xc4 | 0xd9 => read_len(bytes, &mut pos, 1)?,
            0xc5 | 0xda => read_len(bytes, &mut pos, 2)?,
            0xc6 | 0xdb => read_len(bytes, &mut pos, 4)?,
            // ext 8/16/32: length, then a type byte, then the data
            0xc7 => read_len(bytes, &mut pos, 1)?.checked_add(1)?,
            0xc8 => read_len(bytes, &mut pos, 2)?.checked_add(1)?,
            0xc9 => read_len(bytes, &mut pos, 4)?.checked_add(1)?,
            0xca => 4,
            0xcb => 8,
            0xcc | 0xd0 => 1,
            0xcd | 0xd1 => 2,
            0xce | 0xd2 => 4,
            0xcf | 0xd3 => 8,
            // fixext 1/2/4/8/16: type byte + data
            0xd4 => 2,
            0xd5 => 3,
            0xd6 => 5,
            0xd7 => 9,
            0xd8 => 17,
            0xdc => {
                pending += read_len(bytes, &mut pos, 2)? as u64;
                0
            }
            0xdd => {
                pending += read_len(bytes, &mut pos, 4)? as u64;
                0
            }
            0xde => {
                pending += 2 * read_len(bytes, &mut pos, 2)? as u64;
                0
            }
            0xdf => {
                pending += 2 * read_len(bytes, &mut pos, 4)? as u64;
                0
            }
        };
        pos = pos.checked_add(skip)?;
        if pos > bytes.len() {
            return None;
        }
        // Every pending value needs at least one byte: bail out early on absurd counts.
        if pending > (bytes.len() - pos) as u64 {
            return None;
        }
    }
    Some(pos)
}

/// Reads a big-endian length of `width` bytes at `*pos`, advancing `*pos`.
fn read_len(bytes: &[u8], pos: &mut usize, width: usize) -> Option<usize> {
    let end = pos.checked_add(width)?;
    let field = bytes.get(*pos..end)?;
    *pos = end;
    Some(
        field
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names() {
        assert_eq!(short_type_name::<Vec<String>>(), "Vec<String>");
        assert_eq!(short_type_name::<u8>(), "u8");
        assert_eq!(
            short_type_name::<std::collections::HashMap<String, Vec<u8>>>(),
            "HashMap<String, Vec<u8>>"
        );
    }

    /// Regression (found by `tests/fuzz_wire.rs`): ~1000 nested maps under an unknown key
    /// overflowed the stack while serde skipped them; they are a decode error now.
    #[test]
    fn deep_nesting_is_a_decode_error_not_a_stack_overflow() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct S {
            #[serde(default)]
            a: u8,
        }
        fn nested(open: &[u8], depth: usize) -> Vec<u8> {
            let mut v = vec![0x81, 0xa1, b'x'];
            for _ in 0..depth {
                v.extend_from_slice(open);
            }
            v.push(0xc0);
            v
        }
        for open in [&[0x81, 0xa1, b'k'][..], &[0x91], &[0xdc, 0x00, 0x01]] {
            // The struct itself is one level, the skipped value the others.
            let ok = nested(open, MAX_MSGPACK_DEPTH - 1);
            assert!(from_msgpack::<S>(&ok).is_ok(), "{open:02x?}");
            for depth in [MAX_MSGPACK_DEPTH, 1_000, 100_000] {
                let err = from_msgpack::<S>(&nested(open, depth)).unwrap_err();
                let expected = format!("nested deeper than {MAX_MSGPACK_DEPTH} levels");
                assert!(
                    err.to_string().contains(&expected),
                    "{open:02x?} {depth}: {err}"
                );
            }
        }
    }

    #[test]
    fn value_len() {
        assert_eq!(msgpack_value_len(&[0x01]), Some(1));
        assert_eq!(msgpack_value_len(&[0x92, 0x01, 0xa1, b'x', 0xff]), Some(4));
        assert_eq!(msgpack_value_len(&[0x81, 0xa1, b'a', 0xc3]), Some(4));
        assert_eq!(msgpack_value_len(&[0xc4, 0x02, 1, 2]), Some(4));
        assert_eq!(msgpack_value_len(&[0xc4, 0x03, 1, 2]), None);
        assert_eq!(msgpack_value_len(&[0xdd, 0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(msgpack_value_len(&[0xc1]), None);
        assert_eq!(msgpack_value_len(&[0xd4, 1, 2]), Some(3));
        assert_eq!(msgpack_value_len(&[]), None);
    }
}
