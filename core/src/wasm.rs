//! A small, byte-exact walker over the top-level sections of a WebAssembly core module,
//! enough to read, strip and append the custom sections that carry claims and to compute
//! the module hash.
//!
//! It checks bounds strictly (every length against the bytes that remain) and never
//! panics on malformed input; it does not validate section contents, which is the
//! engine's job when the module is loaded.

use sha2::{Digest, Sha256};

/// Custom section that carries the claims JWT (wascap ≥ 0.9); written by the signer.
pub const CLAIMS_SECTION: &str = "wasmcloud_jwt";

/// Custom section that carried the claims JWT before wascap 0.9; still read.
pub const LEGACY_CLAIMS_SECTION: &str = "jwt";

/// `\0asm`: the first four bytes of every WebAssembly binary.
const MAGIC: [u8; 4] = *b"\0asm";

/// Binary format version 1 (core modules).
const CORE_VERSION: [u8; 4] = [1, 0, 0, 0];

/// Length of magic plus version.
const HEADER_LEN: usize = 8;

/// Why bytes could not be walked as a WebAssembly module; messages name the byte offset
/// so a truncated download or a wrong file is easy to spot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WasmError {
    /// The bytes do not start with the `\0asm` magic.
    #[error(
        "not a WebAssembly module (it does not start with `\\0asm`); pass a compiled `.wasm` file"
    )]
    NotWasm,
    /// A WebAssembly binary of another version, e.g. a component.
    #[error(
        "unsupported WebAssembly binary version {version:02x?} (a component or a future format); nimbus runs core modules (version 1): build a waPC module"
    )]
    UnsupportedVersion {
        /// The four version bytes found.
        version: [u8; 4],
    },
    /// A section or field runs past the end of the bytes.
    #[error(
        "WebAssembly module is truncated: {what} at byte {offset} runs past the end; rebuild or re-download the file"
    )]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Where it starts.
        offset: usize,
    },
    /// A LEB128 integer longer than 5 bytes or larger than `u32::MAX`.
    #[error(
        "WebAssembly module is malformed: bad LEB128 length at byte {offset}; the file is corrupt, rebuild it"
    )]
    BadLeb128 {
        /// Where the integer starts.
        offset: usize,
    },
    /// A custom section whose name is not UTF-8.
    #[error(
        "WebAssembly module is malformed: custom section name at byte {offset} is not UTF-8; the file is corrupt, rebuild it"
    )]
    BadSectionName {
        /// Where the name starts.
        offset: usize,
    },
    /// A section to append is larger than the format allows.
    #[error("custom section `{name}` is too large ({len} bytes; at most 4 GiB)")]
    SectionTooLarge {
        /// The section name.
        name: String,
        /// Its payload size.
        len: usize,
    },
}

/// One top-level section of a module, borrowed from the module bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Section<'a> {
    /// Section id (0 = custom, 1 = type, ... 10 = code, 11 = data, ...).
    pub id: u8,
    /// Offset of the section's id byte in the module.
    pub offset: usize,
    /// The whole section as it appears in the module: id, size and payload.
    pub raw: &'a [u8],
    /// The payload (what the size counts).
    pub payload: &'a [u8],
    /// The name of a custom section; `None` for other sections.
    pub name: Option<&'a str>,
    /// The data of a custom section after its name; the payload for other sections.
    pub data: &'a [u8],
}

impl Section<'_> {
    /// Whether this section carries claims (`wasmcloud_jwt` or legacy `jwt`), so signers
    /// and hashers can drop it.
    pub fn is_claims(&self) -> bool {
        matches!(self.name, Some(CLAIMS_SECTION | LEGACY_CLAIMS_SECTION))
    }
}

/// Reads an unsigned LEB128 `u32` at `*pos`, advancing it.
fn read_u32_leb(bytes: &[u8], pos: &mut usize, what: &'static str) -> Result<u32, WasmError> {
    let start = *pos;
    let mut result: u32 = 0;
    for i in 0..5 {
        let byte = *bytes.get(*pos).ok_or(WasmError::Truncated {
            what,
            offset: start,
        })?;
        *pos += 1;
        let low = u32::from(byte & 0x7f);
        if i == 4 && low > 0x0f {
            // The fifth byte may only hold the top 4 bits of a u32.
            return Err(WasmError::BadLeb128 { offset: start });
        }
        result |= low << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(result);
        }
    }
    Err(WasmError::BadLeb128 { offset: start })
}

/// Appends `value` as a minimal unsigned LEB128.
fn write_u32_leb(out: &mut Vec<u8>, mut value: u32) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Takes `len` bytes at `*pos`, advancing it, or reports `what` as truncated.
fn take<'a>(
    bytes: &'a [u8],
    pos: &mut usize,
    len: usize,
    what: &'static str,
) -> Result<&'a [u8], WasmError> {
    let start = *pos;
    let end = start
        .checked_add(len)
        .filter(|end| *end <= bytes.len())
        .ok_or(WasmError::Truncated {
            what,
            offset: start,
        })?;
    *pos = end;
    Ok(&bytes[start..end])
}

/// Checks magic and version, so callers get `NotWasm` before anything else.
fn check_header(module: &[u8]) -> Result<(), WasmError> {
    if module.len() < MAGIC.len() || module[..MAGIC.len()] != MAGIC {
        return Err(WasmError::NotWasm);
    }
    let mut pos = MAGIC.len();
    let version = take(module, &mut pos, 4, "version")?;
    if version != CORE_VERSION {
        let mut found = [0u8; 4];
        found.copy_from_slice(version);
        return Err(WasmError::UnsupportedVersion { version: found });
    }
    Ok(())
}

/// Walks every top-level section of `module`, checking the header and all bounds.
pub fn sections(module: &[u8]) -> Result<Vec<Section<'_>>, WasmError> {
    check_header(module)?;
    let mut out = Vec::new();
    let mut pos = HEADER_LEN;
    while pos < module.len() {
        let offset = pos;
        let id = module[pos];
        pos += 1;
        let size = read_u32_leb(module, &mut pos, "section size")?;
        let payload_start = pos;
        let payload =
            take(module, &mut pos, size as usize, "section").map_err(|_| WasmError::Truncated {
                what: "section",
                offset,
            })?;
        let (name, data) = if id == 0 {
            let mut p = 0;
            let name_len = read_u32_leb(payload, &mut p, "custom section name")
                .map_err(|e| shift(e, payload_start))?;
            let name_bytes = take(payload, &mut p, name_len as usize, "custom section name")
                .map_err(|e| shift(e, payload_start))?;
            let name = std::str::from_utf8(name_bytes).map_err(|_| WasmError::BadSectionName {
                offset: payload_start,
            })?;
            (Some(name), &payload[p..])
        } else {
            (None, payload)
        };
        out.push(Section {
            id,
            offset,
            raw: &module[offset..pos],
            payload,
            name,
            data,
        });
    }
    Ok(out)
}

/// Rebases an error found inside a payload slice to a module offset.
fn shift(e: WasmError, base: usize) -> WasmError {
    match e {
        WasmError::Truncated { what, offset } => WasmError::Truncated {
            what,
            offset: offset + base,
        },
        WasmError::BadLeb128 { offset } => WasmError::BadLeb128 {
            offset: offset + base,
        },
        other => other,
    }
}

/// The data of every custom section called `name`, in module order.
pub fn custom_sections<'a>(module: &'a [u8], name: &str) -> Result<Vec<&'a [u8]>, WasmError> {
    Ok(sections(module)?
        .into_iter()
        .filter(|s| s.name == Some(name))
        .map(|s| s.data)
        .collect())
}

/// The module with every `wasmcloud_jwt` and `jwt` custom section removed and every other
/// byte (header and sections, including their length encodings) kept as is.
pub fn strip_claims_sections(module: &[u8]) -> Result<Vec<u8>, WasmError> {
    let sections = sections(module)?;
    let mut out = Vec::with_capacity(module.len());
    out.extend_from_slice(&module[..HEADER_LEN]);
    for s in sections.iter().filter(|s| !s.is_claims()) {
        out.extend_from_slice(s.raw);
    }
    Ok(out)
}

/// The module without claims sections and with every section size re-encoded as the
/// shortest LEB128, which is how wascap (≥ 0.10.1) rewrites a module before hashing and
/// signing it. Signing this form makes the byte-exact hash and wascap's hash agree even
/// for modules whose producer padded its section sizes.
pub fn canonical_unsigned(module: &[u8]) -> Result<Vec<u8>, WasmError> {
    let sections = sections(module)?;
    let mut out = Vec::with_capacity(module.len());
    out.extend_from_slice(&module[..HEADER_LEN]);
    for s in sections.iter().filter(|s| !s.is_claims()) {
        out.push(s.id);
        // The payload came from a u32 size, so its length fits.
        write_u32_leb(&mut out, s.payload.len() as u32);
        out.extend_from_slice(s.payload);
    }
    Ok(out)
}

/// Appends a custom section `name` holding `data` at the end of `module` (after checking
/// that `module` is well formed).
pub fn embed_custom_section(module: &[u8], name: &str, data: &[u8]) -> Result<Vec<u8>, WasmError> {
    sections(module)?;
    let mut name_len = Vec::with_capacity(5);
    let too_large = || WasmError::SectionTooLarge {
        name: name.to_string(),
        len: data.len(),
    };
    write_u32_leb(
        &mut name_len,
        u32::try_from(name.len()).map_err(|_| too_large())?,
    );
    let size = name_len
        .len()
        .checked_add(name.len())
        .and_then(|n| n.checked_add(data.len()))
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(too_large)?;
    let mut out = Vec::with_capacity(module.len().saturating_add(size as usize + 6));
    out.extend_from_slice(module);
    out.push(0);
    write_u32_leb(&mut out, size);
    out.extend_from_slice(&name_len);
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(data);
    Ok(out)
}

/// The module hash recorded in claims: uppercase hex SHA-256 of the module with its
/// claims sections stripped (the wascap ≥ 0.10.1 rule), so any change to the code or data
/// after signing is detected.
pub fn module_hash(module: &[u8]) -> Result<String, WasmError> {
    Ok(sha256_upper_hex(&strip_claims_sections(module)?))
}

/// Uppercase hex SHA-256, the digest format of module, invocation and link hashes.
pub fn sha256_upper_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push(hex_digit(b >> 4));
        out.push(hex_digit(b & 0x0f));
    }
    out
}

fn hex_digit(n: u8) -> char {
    char::from(if n < 10 { b'0' + n } else { b'A' + n - 10 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leb_round_trip_and_limits() {
        for v in [0u32, 1, 127, 128, 300, 16_384, u32::MAX] {
            let mut buf = Vec::new();
            write_u32_leb(&mut buf, v);
            let mut pos = 0;
            assert_eq!(read_u32_leb(&buf, &mut pos, "x").unwrap(), v);
            assert_eq!(pos, buf.len());
        }
        // Padded (non-minimal) encodings are valid.
        let mut pos = 0;
        assert_eq!(
            read_u32_leb(&[0x81, 0x80, 0x80, 0x80, 0x00], &mut pos, "x").unwrap(),
            1
        );
        // Six bytes, or a fifth byte with high bits, are not.
        let mut pos = 0;
        assert!(matches!(
            read_u32_leb(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x00], &mut pos, "x"),
            Err(WasmError::BadLeb128 { offset: 0 })
        ));
        let mut pos = 0;
        assert!(matches!(
            read_u32_leb(&[0xff, 0xff, 0xff, 0xff, 0x1f], &mut pos, "x"),
            Err(WasmError::BadLeb128 { offset: 0 })
        ));
    }
}
