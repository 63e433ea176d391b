//! The W3C trace context (<https://www.w3.org/TR/trace-context/>): the `traceparent`
//! header (`00-{trace id}-{parent span id}-{flags}`), and `tracestate`, carried along
//! verbatim.
//!
//! Parsing is strict where the recommendation says a receiver must not trust a header
//! (version `ff`, all-zero ids, wrong lengths, non-hex or upper-case hex): such a header
//! yields `None`, and the receiver starts a new trace instead of continuing a broken one.

use std::collections::HashMap;
use std::fmt::Write as _;

/// The header (and `traceContext` map key) of the parent span.
pub const TRACEPARENT: &str = "traceparent";
/// The header (and `traceContext` map key) of vendor-specific trace state.
pub const TRACESTATE: &str = "tracestate";

/// The longest `tracestate` carried on (the recommendation's 32 members of at most 256
/// bytes fit in far less in practice; a longer one is dropped, not truncated mid-member).
const MAX_TRACESTATE: usize = 512;

/// One span's identity in a trace: what a `traceparent` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SpanContext {
    /// The trace (16 bytes, never all zero).
    pub trace_id: [u8; 16],
    /// The span (8 bytes, never all zero).
    pub span_id: [u8; 8],
    /// The trace flags; bit 0 is `sampled`.
    pub flags: u8,
}

impl SpanContext {
    /// Parses a `traceparent` value; `None` for anything the recommendation says not to
    /// trust (the caller then starts a new trace).
    ///
    /// Version `00` must be exactly 55 characters. A later version (not `ff`) may append
    /// `-`-separated fields, which are ignored, as the recommendation asks.
    pub fn parse_traceparent(value: &str) -> Option<Self> {
        let value = value.trim_matches([' ', '\t']);
        let bytes = value.as_bytes();
        if bytes.len() < 55 {
            return None;
        }
        let version = hex_byte(&bytes[0..2])?;
        if version == 0xff {
            return None;
        }
        if version == 0 && bytes.len() != 55 {
            return None;
        }
        if bytes.len() > 55 && bytes[55] != b'-' {
            return None;
        }
        if bytes[2] != b'-' || bytes[35] != b'-' || bytes[52] != b'-' {
            return None;
        }
        let mut trace_id = [0u8; 16];
        for (i, b) in trace_id.iter_mut().enumerate() {
            *b = hex_byte(&bytes[3 + 2 * i..5 + 2 * i])?;
        }
        let mut span_id = [0u8; 8];
        for (i, b) in span_id.iter_mut().enumerate() {
            *b = hex_byte(&bytes[36 + 2 * i..38 + 2 * i])?;
        }
        let flags = hex_byte(&bytes[53..55])?;
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(SpanContext {
            trace_id,
            span_id,
            flags,
        })
    }

    /// The `traceparent` value naming this span as the parent (version `00`).
    pub fn traceparent(&self) -> String {
        format!(
            "00-{}-{}-{:02x}",
            hex(&self.trace_id),
            hex(&self.span_id),
            self.flags
        )
    }

    /// The trace id as 32 lower-case hex digits (OTLP JSON's `traceId`).
    pub fn trace_id_hex(&self) -> String {
        hex(&self.trace_id)
    }

    /// The span id as 16 lower-case hex digits (OTLP JSON's `spanId`).
    pub fn span_id_hex(&self) -> String {
        hex(&self.span_id)
    }

    /// Whether the sampled flag is set.
    pub fn sampled(&self) -> bool {
        self.flags & 1 == 1
    }
}

/// What travels from a span to the work it causes elsewhere: the parent span and the
/// caller's `tracestate`, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceParent {
    /// The span the receiver's work is a child of.
    pub span: SpanContext,
    /// The `tracestate` to pass on unchanged.
    pub tracestate: Option<String>,
}

impl TraceParent {
    /// From the two header values; `None` when `traceparent` is missing or not to be
    /// trusted (a bad `tracestate` alone is dropped, the parent kept).
    pub fn from_headers(traceparent: Option<&str>, tracestate: Option<&str>) -> Option<Self> {
        let span = SpanContext::parse_traceparent(traceparent?)?;
        let tracestate = tracestate
            .map(|s| s.trim())
            .filter(|s| !s.is_empty() && s.len() <= MAX_TRACESTATE && s.is_ascii())
            .map(str::to_string);
        Some(TraceParent { span, tracestate })
    }

    /// From an invocation's `traceContext` map (W3C keys).
    pub fn from_map(map: &HashMap<String, String>) -> Option<Self> {
        Self::from_headers(
            map.get(TRACEPARENT).map(String::as_str),
            map.get(TRACESTATE).map(String::as_str),
        )
    }

    /// As an invocation's `traceContext` map.
    pub fn to_map(&self) -> HashMap<String, String> {
        let mut map = HashMap::with_capacity(2);
        map.insert(TRACEPARENT.to_string(), self.span.traceparent());
        if let Some(state) = &self.tracestate {
            map.insert(TRACESTATE.to_string(), state.clone());
        }
        map
    }
}

fn hex_digit(c: u8) -> Option<u8> {
    // Lower case only: the recommendation makes upper case invalid.
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

fn hex_byte(pair: &[u8]) -> Option<u8> {
    Some(hex_digit(pair[0])? << 4 | hex_digit(pair[1])?)
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const GOOD: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn the_recommendations_example_parses_and_formats_back() {
        let ctx = SpanContext::parse_traceparent(GOOD).unwrap();
        assert_eq!(ctx.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(ctx.span_id_hex(), "00f067aa0ba902b7");
        assert_eq!(ctx.flags, 1);
        assert!(ctx.sampled());
        assert_eq!(ctx.traceparent(), GOOD);
    }

    #[test]
    fn malformed_traceparents_are_rejected() {
        for bad in [
            "",
            "00",
            // version ff is invalid
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            // all-zero trace id, all-zero span id
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            // wrong lengths
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e47366-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            // version 00 with trailing data
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            // non-hex, upper-case hex
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-zz",
            // wrong separators
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01",
        ] {
            assert_eq!(SpanContext::parse_traceparent(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_later_version_may_append_fields() {
        let later = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-ever";
        let ctx = SpanContext::parse_traceparent(later).unwrap();
        assert_eq!(ctx.span_id_hex(), "00f067aa0ba902b7");
        // ... but only after a separator.
        let glued = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x";
        assert_eq!(SpanContext::parse_traceparent(glued), None);
    }

    #[test]
    fn trace_context_maps_round_trip_and_drop_a_bad_tracestate() {
        let parent = TraceParent::from_headers(Some(GOOD), Some("congo=t61rcWkgMzE")).unwrap();
        assert_eq!(TraceParent::from_map(&parent.to_map()), Some(parent));
        let no_state = TraceParent::from_headers(Some(GOOD), Some("é")).unwrap();
        assert_eq!(no_state.tracestate, None);
        assert_eq!(TraceParent::from_headers(None, Some("a=b")), None);
        let map = HashMap::from([(TRACEPARENT.to_string(), "garbage".to_string())]);
        assert_eq!(TraceParent::from_map(&map), None);
    }

    proptest! {
        #[test]
        fn every_valid_context_round_trips(
            trace_id in any::<[u8; 16]>(),
            span_id in any::<[u8; 8]>(),
            flags in any::<u8>(),
        ) {
            prop_assume!(trace_id != [0; 16] && span_id != [0; 8]);
            let ctx = SpanContext { trace_id, span_id, flags };
            prop_assert_eq!(SpanContext::parse_traceparent(&ctx.traceparent()), Some(ctx));
        }

        #[test]
        fn arbitrary_text_never_panics_and_what_parses_is_canonical(s in ".{0,80}") {
            if let Some(ctx) = SpanContext::parse_traceparent(&s) {
                prop_assert!(ctx.trace_id != [0; 16] && ctx.span_id != [0; 8]);
            }
        }

        #[test]
        fn one_non_hex_character_in_a_valid_header_is_rejected(
            pos in 0usize..55,
            c in prop::sample::select(vec!['g', 'G', 'A', '-', ' ', 'z', '_']),
        ) {
            // A separator replaced by itself is no change.
            prop_assume!(!(c == '-' && [2, 35, 52].contains(&pos)));
            let mut s: Vec<char> = GOOD.chars().collect();
            s[pos] = c;
            let s: String = s.into_iter().collect();
            // No hex digit may be replaced by a non-hex character, no separator moved.
            prop_assert_eq!(SpanContext::parse_traceparent(&s), None, "{}", s);
        }
    }
}
