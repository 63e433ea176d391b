//! Shared generators of the decoder property tests (`fuzz_*.rs` of nimbus-core, nimbus-rpc
//! and nimbus-app): run settings, byte-level mutations, MessagePack value trees in every
//! encoding width, and JSON value trees. Depends on proptest and serde_json only, so
//! crates other than nimbus-core include it by path.
//!
//! Structured inputs come from [`Gen`], a small deterministic generator seeded by the
//! proptest case (`seed in any::<u64>()`): unoptimised proptest strategies cost up to a
//! millisecond per nested value in a debug build, `Gen` a few microseconds, which is what
//! lets every target run tens of thousands of cases in seconds. A failure reports its
//! seed; `Gen::new(seed)` rebuilds the input. Random byte strings are printed in full
//! and shrink to a shortest failing length.
//!
//! Case counts are per target and multiplied by `NIMBUS_FUZZ_SCALE` (default 1): CI runs
//! the short form, `NIMBUS_FUZZ_SCALE=50 cargo test -p nimbus-core --test fuzz_wire` a
//! long one.

#![allow(dead_code)] // each test file uses a part of this module

use proptest::prelude::*;
use proptest::test_runner::Config;

/// A config of `cases` cases (times `NIMBUS_FUZZ_SCALE`), without a failure file: a
/// failure is reported with its minimal input, which then becomes a unit test.
pub fn config(cases: u32) -> Config {
    let scale = std::env::var("NIMBUS_FUZZ_SCALE")
        .ok()
        .and_then(|s| s.parse::<u32>().ok())
        .unwrap_or(1)
        .max(1);
    Config {
        cases: cases.saturating_mul(scale),
        failure_persistence: None,
        ..Config::default()
    }
}

/// Bytes that mean something to a MessagePack, JSON, base64 or wasm decoder: markers,
/// length limits, structural characters.
pub const INTERESTING: &[u8] = &[
    0x00, 0x01, 0x7f, 0x80, 0x81, 0x8f, 0x90, 0x91, 0x9f, 0xa0, 0xa1, 0xbf, 0xc0, 0xc1, 0xc2, 0xc3,
    0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xcb, 0xcc, 0xcd, 0xce, 0xcf, 0xd0, 0xd3, 0xd4, 0xd8,
    0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xe0, 0xff, b'{', b'}', b'[', b']', b'"', b':', b',',
    b'\\', b'.', b'-', b'0', b'9', b'e', b'n', b't', b'f', b'u', b'=', b'/', b'+', b'_', b' ',
    b'\n',
];

/// Random bytes up to `max` long, the first often a meaningful byte. Drawn from a seed
/// and a length rather than byte by byte (a proptest byte vector costs ~100 µs a case
/// unoptimised, this ~2 µs); a failure still shrinks to a shortest failing length.
pub fn random_bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    (any::<u64>(), 0..=max).prop_map(|(seed, len)| {
        let mut g = Gen::new(seed);
        let mut bytes: Vec<u8> = (0..len).map(|_| g.u64() as u8).collect();
        if let Some(b) = bytes.first_mut()
            && g.bool()
        {
            *b = g.pick(INTERESTING);
        }
        bytes
    })
}

// ---- byte-level mutations ------------------------------------------------------------

/// One edit of an encoded value; positions are taken modulo the current length.
#[derive(Debug, Clone)]
pub enum Mutation {
    /// Cut the input at this position.
    Truncate(usize),
    /// Flip one bit.
    Flip(usize, u8),
    /// Overwrite one byte.
    Set(usize, u8),
    /// Insert one byte.
    Insert(usize, u8),
    /// Remove one byte.
    Delete(usize),
    /// Copy `len` bytes from `from` to `to` (duplicated keys, repeated containers).
    Duplicate(usize, usize, usize),
}

/// Applies `mutations` to `input` in order.
pub fn mutate(input: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut bytes = input.to_vec();
    for m in mutations {
        let n = bytes.len();
        match *m {
            Mutation::Truncate(i) => bytes.truncate(i % (n + 1)),
            Mutation::Insert(i, b) => bytes.insert(i % (n + 1), b),
            _ if n == 0 => {}
            Mutation::Flip(i, bit) => bytes[i % n] ^= 1 << (bit % 8),
            Mutation::Set(i, b) => bytes[i % n] = b,
            Mutation::Delete(i) => {
                bytes.remove(i % n);
            }
            Mutation::Duplicate(from, to, len) => {
                let from = from % n;
                let end = (from + len).min(n);
                let chunk = bytes[from..end].to_vec();
                let at = to % (n + 1);
                bytes.splice(at..at, chunk);
            }
        }
    }
    bytes
}

// ---- MessagePack trees ---------------------------------------------------------------

/// How a length or integer is written: the shortest form or a wider one (decoders must
/// accept any width; a width too small for the value falls back to one that fits).
#[derive(Debug, Clone, Copy)]
pub enum Width {
    /// The shortest encoding.
    Shortest,
    /// 8-bit length or value field where the format has one.
    W8,
    /// 16-bit.
    W16,
    /// 32-bit (64-bit for integers).
    W32,
}

/// A MessagePack value to encode, including forms the encoders of this crate never write
/// (ext types, floats, non-shortest lengths) and raw bytes that may break the structure.
#[derive(Debug, Clone)]
pub enum Mp {
    /// nil.
    Nil,
    /// true/false.
    Bool(bool),
    /// A non-negative integer.
    UInt(u64, Width),
    /// A (usually negative) integer.
    Int(i64, Width),
    /// float 32.
    F32(f32),
    /// float 64.
    F64(f64),
    /// A string.
    Str(String, Width),
    /// A string marker around bytes that are not (necessarily) UTF-8.
    BadStr(Vec<u8>),
    /// Binary data.
    Bin(Vec<u8>, Width),
    /// An array.
    Array(Vec<Mp>, Width),
    /// A map (keys of any type, duplicates allowed).
    Map(Vec<(Mp, Mp)>, Width),
    /// An extension value.
    Ext(i8, Vec<u8>),
    /// Bytes copied as they are.
    Raw(Vec<u8>),
}

impl Mp {
    /// A shortest-form string.
    pub fn s(text: &str) -> Mp {
        Mp::Str(text.to_string(), Width::Shortest)
    }

    /// The encoded bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Mp::Nil => out.push(0xc0),
            Mp::Bool(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
            Mp::UInt(v, w) => write_uint(out, *v, *w),
            Mp::Int(v, w) => write_int(out, *v, *w),
            Mp::F32(f) => {
                out.push(0xca);
                out.extend_from_slice(&f.to_be_bytes());
            }
            Mp::F64(f) => {
                out.push(0xcb);
                out.extend_from_slice(&f.to_be_bytes());
            }
            Mp::Str(s, w) => {
                write_len(out, s.len(), *w, Some(0xa0), [0xd9, 0xda, 0xdb]);
                out.extend_from_slice(s.as_bytes());
            }
            Mp::BadStr(b) => {
                write_len(
                    out,
                    b.len(),
                    Width::Shortest,
                    Some(0xa0),
                    [0xd9, 0xda, 0xdb],
                );
                out.extend_from_slice(b);
            }
            Mp::Bin(b, w) => {
                write_len(out, b.len(), *w, None, [0xc4, 0xc5, 0xc6]);
                out.extend_from_slice(b);
            }
            Mp::Array(items, w) => {
                write_container(out, items.len(), *w, 0x90, [0xdc, 0xdd]);
                for i in items {
                    i.write(out);
                }
            }
            Mp::Map(pairs, w) => {
                write_container(out, pairs.len(), *w, 0x80, [0xde, 0xdf]);
                for (k, v) in pairs {
                    k.write(out);
                    v.write(out);
                }
            }
            Mp::Ext(ty, data) => {
                let fixed = match data.len() {
                    1 => Some(0xd4),
                    2 => Some(0xd5),
                    4 => Some(0xd6),
                    8 => Some(0xd7),
                    16 => Some(0xd8),
                    _ => None,
                };
                match fixed {
                    Some(marker) => out.push(marker),
                    None => write_len(out, data.len(), Width::Shortest, None, [0xc7, 0xc8, 0xc9]),
                }
                out.push(ty.to_be_bytes()[0]);
                out.extend_from_slice(data);
            }
            Mp::Raw(bytes) => out.extend_from_slice(bytes),
        }
    }
}

fn write_uint(out: &mut Vec<u8>, v: u64, w: Width) {
    let narrow = matches!(w, Width::Shortest | Width::W8);
    if matches!(w, Width::Shortest) && v < 0x80 {
        out.push(v as u8);
    } else if narrow && v <= u64::from(u8::MAX) {
        out.push(0xcc);
        out.push(v as u8);
    } else if (narrow || matches!(w, Width::W16)) && v <= u64::from(u16::MAX) {
        out.push(0xcd);
        out.extend_from_slice(&(v as u16).to_be_bytes());
    } else if !matches!(w, Width::W32) && v <= u64::from(u32::MAX) {
        out.push(0xce);
        out.extend_from_slice(&(v as u32).to_be_bytes());
    } else {
        out.push(0xcf);
        out.extend_from_slice(&v.to_be_bytes());
    }
}

fn write_int(out: &mut Vec<u8>, v: i64, w: Width) {
    let narrow = matches!(w, Width::Shortest | Width::W8);
    if matches!(w, Width::Shortest) && (-32..0).contains(&v) {
        out.push(v.to_be_bytes()[7]);
    } else if narrow && i8::try_from(v).is_ok() {
        out.push(0xd0);
        out.push(v.to_be_bytes()[7]);
    } else if (narrow || matches!(w, Width::W16)) && i16::try_from(v).is_ok() {
        out.push(0xd1);
        out.extend_from_slice(&(v as i16).to_be_bytes());
    } else if !matches!(w, Width::W32) && i32::try_from(v).is_ok() {
        out.push(0xd2);
        out.extend_from_slice(&(v as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&v.to_be_bytes());
    }
}

/// A string/bin/ext length: `fix` is the fix-form marker base (strings only), `wide` the
/// 8/16/32-bit markers.
fn write_len(out: &mut Vec<u8>, len: usize, w: Width, fix: Option<u8>, wide: [u8; 3]) {
    match (w, fix) {
        (Width::Shortest, Some(base)) if len < 32 => out.push(base | len as u8),
        (Width::Shortest | Width::W8, _) if len <= 0xff => {
            out.push(wide[0]);
            out.push(len as u8);
        }
        (Width::Shortest | Width::W8 | Width::W16, _) if len <= 0xffff => {
            out.push(wide[1]);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(wide[2]);
            out.extend_from_slice(&(len as u32).to_be_bytes());
        }
    }
}

fn write_container(out: &mut Vec<u8>, len: usize, w: Width, fix: u8, wide: [u8; 2]) {
    match w {
        Width::Shortest | Width::W8 if len < 16 => out.push(fix | len as u8),
        Width::Shortest | Width::W8 | Width::W16 if len <= 0xffff => {
            out.push(wide[0]);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(wide[1]);
            out.extend_from_slice(&(len as u32).to_be_bytes());
        }
    }
}

// ---- the generator -------------------------------------------------------------------

/// Protocol-like words: keys of each kind, contract ids, operation names, JSON and YAML
/// keywords, characters that are special somewhere.
pub const WORDS: &[&str] = &[
    "",
    "default",
    "wasmcloud:keyvalue",
    "wasmcloud:httpserver",
    "HandleRequest",
    "HttpServer.HandleRequest",
    "MBCFOPM6JW2APJLXJD3Z5O4CN7CPYJ2B4FTKLJUR5YR5MITIU7HD3WD5",
    "VAG3QITQQ2ODAOWB5TTQSDJ53XK3SHBEIFNK4AYJ5RKAX2UNSCAPHA5M",
    "NBE2NQTPCZNMHEYD5UPQW2DBXRKE4ZSZLIXTX3TGHXTFONGZ7DTXJLQ5",
    "ACOJJN6WUP4ODD75XEBKKTCCUJJCY5ZKQ56XVKYK4BEJWGVAOOQHZMCW",
    "CAS4J6VT3SQS3BRXBQTZSXBXYW5IUAL5YDKXO6SCZTVYFFHA3TMCCB4R",
    "true",
    "null",
    "0",
    "-1",
    "1e999",
    "é",
    "\u{0}",
    "\u{FEFF}",
    "\u{85}",
    "\u{2028}",
    "~",
    "&a",
    "*a",
    "!!binary",
    "- ",
    ": ",
    "#",
    "'",
    "\"",
    "\\",
    "\t",
    "\r\n",
];

const ALPHABET: &[u8] = b"abcdexyzMNVCA0123456789_:-./ ";

/// A deterministic pseudo-random source (SplitMix64) with generators for the shapes the
/// decoders read.
#[derive(Debug, Clone)]
pub struct Gen(u64);

impl Gen {
    /// A generator for one proptest case.
    pub fn new(seed: u64) -> Gen {
        Gen(seed)
    }

    /// 64 random bits.
    pub fn u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.u64() % n as u64) as usize
        }
    }

    /// True with probability 1/`n`.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    /// A random bool.
    pub fn bool(&mut self) -> bool {
        self.u64() & 1 == 1
    }

    /// An index chosen by `weights`.
    pub fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u64 = weights.iter().map(|w| u64::from(*w)).sum();
        let mut roll = self.u64() % total.max(1);
        for (i, w) in weights.iter().enumerate() {
            if roll < u64::from(*w) {
                return i;
            }
            roll -= u64::from(*w);
        }
        weights.len() - 1
    }

    /// One element of `items`.
    pub fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())].clone()
    }

    /// A byte, often a meaningful one.
    pub fn byte(&mut self) -> u8 {
        if self.bool() {
            self.pick(INTERESTING)
        } else {
            self.u64() as u8
        }
    }

    /// Up to `max` random bytes.
    pub fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max + 1);
        (0..n).map(|_| self.u64() as u8).collect()
    }

    /// A size: mostly small, sometimes at the edges of the integer types.
    pub fn number(&mut self) -> u64 {
        match self.below(6) {
            0..=2 => self.below(300) as u64,
            3 => self.pick(&[
                255,
                256,
                65_535,
                65_536,
                u64::from(u32::MAX),
                1 << 32,
                i64::MAX as u64,
                u64::MAX,
            ]),
            _ => self.u64() >> self.below(64),
        }
    }

    /// One char of any Unicode plane (controls, surrogates' neighbours, astral).
    pub fn char(&mut self) -> char {
        let c = match self.below(5) {
            0 => self.below(0x80) as u32,
            1 => self.below(0x800) as u32,
            2 => 0xd000 + self.below(0x3000) as u32,
            3 => 0x1_0000 + self.below(0x10_0000) as u32,
            _ => self.pick(&[0xFEFF, 0x85, 0x2028, 0x2029, 0xFFFD, 0xFFFF, 0x10_FFFF]),
        };
        char::from_u32(c).unwrap_or('\u{FFFD}')
    }

    /// A short string: a protocol-like word, a word of a small alphabet, or any Unicode.
    pub fn text(&mut self) -> String {
        match self.below(8) {
            0..=2 => self.pick(WORDS).to_string(),
            3..=6 => {
                let n = self.below(13);
                (0..n).map(|_| char::from(self.pick(ALPHABET))).collect()
            }
            _ => {
                let n = self.below(9);
                (0..n).map(|_| self.char()).collect()
            }
        }
    }

    /// A non-empty [`Gen::text`].
    pub fn non_empty_text(&mut self) -> String {
        let t = self.text();
        if t.is_empty() { "x".to_string() } else { t }
    }

    /// An optional value.
    pub fn option<T>(&mut self, f: impl FnOnce(&mut Gen) -> T) -> Option<T> {
        if self.one_in(3) { None } else { Some(f(self)) }
    }

    /// Up to `max` values.
    pub fn vec<T>(&mut self, max: usize, mut f: impl FnMut(&mut Gen) -> T) -> Vec<T> {
        let n = self.below(max + 1);
        (0..n).map(|_| f(self)).collect()
    }

    /// Up to `max` byte-level mutations, half the time just one (a single edit gets
    /// furthest into a decoder).
    pub fn mutations(&mut self, max: usize) -> Vec<Mutation> {
        let n = if self.bool() { 1 } else { 1 + self.below(max) };
        (0..n)
            .map(|_| {
                let i = self.u64() as usize;
                match self.weighted(&[1, 3, 3, 2, 2, 1]) {
                    0 => Mutation::Truncate(i),
                    1 => Mutation::Flip(i, self.below(8) as u8),
                    2 => Mutation::Set(i, self.byte()),
                    3 => Mutation::Insert(i, self.byte()),
                    4 => Mutation::Delete(i),
                    _ => Mutation::Duplicate(i, self.u64() as usize, 1 + self.below(16)),
                }
            })
            .collect()
    }

    /// `input` with up to `max` mutations.
    pub fn mutate(&mut self, input: &[u8], max: usize) -> Vec<u8> {
        let m = self.mutations(max);
        mutate(input, &m)
    }

    /// `input` with up to `max` mutations, made UTF-8 again (bad sequences replaced).
    pub fn mutate_text(&mut self, input: &str, max: usize) -> String {
        String::from_utf8_lossy(&self.mutate(input.as_bytes(), max)).into_owned()
    }

    // ---- MessagePack ----

    /// A [`Width`], mostly the shortest.
    pub fn width(&mut self) -> Width {
        match self.weighted(&[6, 1, 1, 1]) {
            0 => Width::Shortest,
            1 => Width::W8,
            2 => Width::W16,
            _ => Width::W32,
        }
    }

    /// Any scalar MessagePack value.
    pub fn mp_scalar(&mut self) -> Mp {
        match self.weighted(&[2, 2, 3, 3, 2, 1, 1, 4, 1, 2, 1, 1]) {
            0 => Mp::Nil,
            1 => Mp::Bool(self.bool()),
            2 => Mp::UInt(self.number(), self.width()),
            3 => Mp::Int(-(self.number() as i64), self.width()),
            4 => Mp::Int(self.u64() as i64, self.width()),
            5 => Mp::F32(f32::from_bits(self.u64() as u32)),
            6 => Mp::F64(f64::from_bits(self.u64())),
            7 => Mp::Str(self.text(), self.width()),
            8 => Mp::BadStr(self.bytes(8)),
            9 => Mp::Bin(self.bytes(40), self.width()),
            10 => Mp::Ext(self.u64() as i8, self.bytes(20)),
            _ => {
                let n = 1 + self.below(3);
                Mp::Raw((0..n).map(|_| self.byte()).collect())
            }
        }
    }

    /// A map key: usually a string, sometimes another type.
    pub fn mp_key(&mut self) -> Mp {
        if self.one_in(5) {
            self.mp_scalar()
        } else {
            Mp::Str(self.text(), self.width())
        }
    }

    /// Any MessagePack value tree, at most `depth` containers deep.
    pub fn mp_value(&mut self, depth: u32) -> Mp {
        if depth == 0 || self.below(3) != 0 {
            return self.mp_scalar();
        }
        let n = self.below(6);
        let w = self.width();
        if self.bool() {
            Mp::Array((0..n).map(|_| self.mp_value(depth - 1)).collect(), w)
        } else {
            Mp::Map(
                (0..n)
                    .map(|_| (self.mp_key(), self.mp_value(depth - 1)))
                    .collect(),
                w,
            )
        }
    }

    /// One map entry `name: value`: usually `good` (the right type), sometimes any value,
    /// sometimes missing. The key is written in any width.
    pub fn field(&mut self, name: &str, good: impl FnOnce(&mut Gen) -> Mp) -> Option<(Mp, Mp)> {
        let key = Mp::Str(name.to_string(), self.width());
        // Mostly right, so that most structs have a wrong or missing field or two.
        match self.weighted(&[12, 1, 1]) {
            0 => Some((key, good(self))),
            1 => Some((key, self.mp_value(3))),
            _ => None,
        }
    }

    /// A struct from its field entries: a map (fields shuffled, maybe an extra key or a
    /// duplicate) or, sometimes, a positional array of the values.
    pub fn mp_struct(&mut self, fields: Vec<Option<(Mp, Mp)>>) -> Mp {
        let mut pairs: Vec<(Mp, Mp)> = fields.into_iter().flatten().collect();
        let w = self.width();
        match self.below(10) {
            0 => return Mp::Array(pairs.into_iter().map(|(_, v)| v).collect(), w),
            1 if !pairs.is_empty() => {
                let dup = pairs[self.below(pairs.len())].clone();
                pairs.push(dup);
            }
            2 => {
                let extra = (self.mp_key(), self.mp_value(3));
                pairs.push(extra);
            }
            _ => {}
        }
        if self.bool() {
            // Fisher-Yates: decoders must find fields by name in any order.
            for i in (1..pairs.len()).rev() {
                pairs.swap(i, self.below(i + 1));
            }
        }
        Mp::Map(pairs, w)
    }

    /// A well-typed string value.
    pub fn mp_text(&mut self) -> Mp {
        Mp::Str(self.text(), self.width())
    }

    /// A payload as lenient decoders accept it: bin, str, an array of small integers
    /// (some out of byte range), or nil.
    pub fn mp_payload(&mut self) -> Mp {
        match self.weighted(&[4, 2, 1, 1]) {
            0 => Mp::Bin(self.bytes(64), self.width()),
            1 => self.mp_text(),
            2 => Mp::Array(
                self.vec(8, |g| {
                    if g.one_in(5) {
                        g.mp_scalar()
                    } else {
                        Mp::UInt(g.below(256) as u64, g.width())
                    }
                }),
                Width::Shortest,
            ),
            _ => Mp::Nil,
        }
    }

    /// An unsigned integer field value (in range, huge, negative or nil).
    pub fn mp_uint(&mut self) -> Mp {
        match self.weighted(&[5, 1, 1]) {
            0 => Mp::UInt(self.number(), self.width()),
            1 => Mp::Nil,
            _ => Mp::Int(-1 - self.below(5) as i64, self.width()),
        }
    }

    /// A bool field value (or an integer, or nil).
    pub fn mp_bool(&mut self) -> Mp {
        match self.weighted(&[5, 1, 1]) {
            0 => Mp::Bool(self.bool()),
            1 => Mp::UInt(self.below(3) as u64, Width::Shortest),
            _ => Mp::Nil,
        }
    }

    /// A string-to-string map value (sometimes with a non-string entry).
    pub fn mp_string_map(&mut self) -> Mp {
        let pairs = self.vec(4, |g| {
            if g.one_in(5) {
                (g.mp_key(), g.mp_scalar())
            } else {
                (g.mp_text(), g.mp_text())
            }
        });
        Mp::Map(pairs, self.width())
    }

    // ---- JSON ----

    /// Any JSON scalar, with numbers at the edges of the integer types.
    pub fn json_scalar(&mut self) -> serde_json::Value {
        use serde_json::Value;
        match self.weighted(&[1, 1, 3, 2, 1, 4]) {
            0 => Value::Null,
            1 => Value::Bool(self.bool()),
            2 => Value::from(self.number()),
            3 => Value::from(-(self.number() as i64)),
            4 => Value::from(f64::from_bits(self.u64())),
            _ => Value::String(self.text()),
        }
    }

    /// Any JSON value tree, at most `depth` containers deep.
    pub fn json_value(&mut self, depth: u32) -> serde_json::Value {
        if depth == 0 || self.below(3) != 0 {
            return self.json_scalar();
        }
        if self.bool() {
            serde_json::Value::Array(self.vec(5, |g| g.json_value(depth - 1)))
        } else {
            let pairs = self.vec(5, |g| (g.text(), g.json_value(depth - 1)));
            serde_json::Value::Object(pairs.into_iter().collect())
        }
    }

    /// A string-to-string JSON object (sometimes with a value of another type).
    pub fn json_string_map(&mut self) -> serde_json::Value {
        let pairs = self.vec(3, |g| {
            let v = if g.one_in(6) {
                g.json_scalar()
            } else {
                serde_json::Value::String(g.text())
            };
            (g.text(), v)
        });
        serde_json::Value::Object(pairs.into_iter().collect())
    }

    /// A JSON object whose keys are mostly drawn from `names` (the fields of the types
    /// under test), with values of any type, so decoding gets past the top-level shape.
    /// `nested` builds values of keys that hold objects or arrays of objects.
    pub fn json_object_with(
        &mut self,
        names: &[&str],
        depth: u32,
    ) -> serde_json::Map<String, serde_json::Value> {
        let n = self.below(names.len().min(8) + 1);
        let mut map = serde_json::Map::new();
        for _ in 0..n {
            let key = if self.one_in(6) {
                self.text()
            } else {
                self.pick(names).to_string()
            };
            let value = match self.weighted(&[4, 1, 1, 1, 1]) {
                0 => self.json_scalar(),
                1 => self.json_value(3),
                2 => self.json_string_map(),
                3 if depth > 0 => {
                    serde_json::Value::Object(self.json_object_with(names, depth - 1))
                }
                _ if depth > 0 => serde_json::Value::Array(self.vec(2, |g| {
                    serde_json::Value::Object(g.json_object_with(names, depth - 1))
                })),
                _ => self.json_scalar(),
            };
            map.insert(key, value);
        }
        map
    }
}
