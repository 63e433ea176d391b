//! Spans: one unit of work with its trace, parent, name, kind, times, attributes and
//! status. A [`Span`] records only when an exporter is installed and the parent (if any)
//! is sampled; otherwise it allocates nothing, reads no clock and only carries the
//! incoming parent on, so that a trace passes through an untraced process intact.

use std::cell::Cell;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::context::{SpanContext, TraceParent};
use crate::export::{self, Tracer};

/// What a span stands for, as OTLP's `SpanKind` numbers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpanKind {
    /// Work inside a process.
    Internal = 1,
    /// Handling a request from elsewhere (an HTTP request, an invocation received).
    Server = 2,
    /// A request sent elsewhere (a host call to a provider or another actor).
    Client = 3,
}

/// An attribute value (OTLP `AnyValue`, the kinds used here).
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    /// `stringValue`.
    Str(String),
    /// `intValue` (a string of decimal digits in OTLP JSON).
    Int(i64),
    /// `boolValue`.
    Bool(bool),
}

impl From<&str> for AttrValue {
    fn from(v: &str) -> Self {
        AttrValue::Str(v.to_string())
    }
}

impl From<String> for AttrValue {
    fn from(v: String) -> Self {
        AttrValue::Str(v)
    }
}

impl From<i64> for AttrValue {
    fn from(v: i64) -> Self {
        AttrValue::Int(v)
    }
}

impl From<bool> for AttrValue {
    fn from(v: bool) -> Self {
        AttrValue::Bool(v)
    }
}

/// A finished span as the exporter encodes it.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanData {
    /// This span's trace and id.
    pub context: SpanContext,
    /// The parent's span id; `None` for the root of a trace.
    pub parent_span_id: Option<[u8; 8]>,
    /// The operation, e.g. `HTTP GET` or `wasmcloud:keyvalue/Increment`.
    pub name: String,
    /// What the span stands for.
    pub kind: SpanKind,
    /// Start, Unix nanoseconds.
    pub start_unix_nanos: u64,
    /// End, Unix nanoseconds.
    pub end_unix_nanos: u64,
    /// Key-value attributes.
    pub attributes: Vec<(&'static str, AttrValue)>,
    /// `Some(message)` when the work failed (OTLP status code ERROR).
    pub error: Option<String>,
}

struct Recording {
    tracer: &'static Tracer,
    data: SpanData,
    tracestate: Option<String>,
}

/// A span in progress; it ends (and is queued for export) when dropped.
#[must_use = "a span ends when dropped; hold it for the duration of the work"]
pub struct Span {
    recording: Option<Box<Recording>>,
    /// Not recording: the incoming parent, passed on unchanged.
    forward: Option<TraceParent>,
}

impl std::fmt::Debug for Span {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Span")
            .field("recording", &self.recording.as_ref().map(|r| &r.data))
            .field("forward", &self.forward)
            .finish()
    }
}

impl Span {
    /// Starts a span named `name` as a child of `parent` (a new trace when `None`).
    /// Records only when an exporter is installed and the parent is sampled.
    pub fn start(name: impl Into<String>, kind: SpanKind, parent: Option<TraceParent>) -> Span {
        match export::tracer() {
            Some(tracer) if parent.as_ref().is_none_or(|p| p.span.sampled()) => {
                Self::recording(tracer, name.into(), kind, parent)
            }
            _ => Span {
                recording: None,
                forward: parent,
            },
        }
    }

    /// Starts a span whose parent is the task's current one ([`crate::current`]).
    pub fn start_in_current(name: impl Into<String>, kind: SpanKind) -> Span {
        Self::start(name, kind, crate::current())
    }

    /// A span that records nothing and passes `parent` on (the off state).
    pub fn forwarding(parent: Option<TraceParent>) -> Span {
        Span {
            recording: None,
            forward: parent,
        }
    }

    fn recording(
        tracer: &'static Tracer,
        name: String,
        kind: SpanKind,
        parent: Option<TraceParent>,
    ) -> Span {
        let (trace_id, parent_span_id, flags, tracestate) = match parent {
            Some(p) => (
                p.span.trace_id,
                Some(p.span.span_id),
                p.span.flags,
                p.tracestate,
            ),
            None => (new_trace_id(), None, 1, None),
        };
        let context = SpanContext {
            trace_id,
            span_id: new_span_id(),
            flags,
        };
        Span {
            recording: Some(Box::new(Recording {
                tracer,
                data: SpanData {
                    context,
                    parent_span_id,
                    name,
                    kind,
                    start_unix_nanos: unix_nanos(),
                    end_unix_nanos: 0,
                    attributes: Vec::new(),
                    error: None,
                },
                tracestate,
            })),
            forward: None,
        }
    }

    /// Whether this span records (so attributes are worth computing).
    pub fn is_recording(&self) -> bool {
        self.recording.is_some()
    }

    /// The context work caused by this span carries downstream: this span as parent
    /// when it records, else the incoming parent unchanged (`None` if there was none).
    pub fn context(&self) -> Option<TraceParent> {
        match &self.recording {
            Some(r) => Some(TraceParent {
                span: r.data.context,
                tracestate: r.tracestate.clone(),
            }),
            None => self.forward.clone(),
        }
    }

    /// This span's own identity, when it records.
    pub fn span_context(&self) -> Option<SpanContext> {
        self.recording.as_ref().map(|r| r.data.context)
    }

    /// Adds an attribute (nothing when not recording).
    pub fn set_attribute(&mut self, key: &'static str, value: impl Into<AttrValue>) {
        if let Some(r) = &mut self.recording {
            r.data.attributes.push((key, value.into()));
        }
    }

    /// Marks the span failed with `message` (nothing when not recording).
    pub fn set_error(&mut self, message: impl std::fmt::Display) {
        if let Some(r) = &mut self.recording {
            r.data.error = Some(message.to_string());
        }
    }
}

impl Drop for Span {
    fn drop(&mut self) {
        if let Some(mut r) = self.recording.take() {
            r.data.end_unix_nanos = unix_nanos().max(r.data.start_unix_nanos);
            r.tracer.submit(r.data);
        }
    }
}

fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

thread_local! {
    /// splitmix64 state per thread, seeded from the OS random source (through a v4 UUID).
    static RNG: Cell<u64> = Cell::new({
        let b = uuid::Uuid::new_v4().into_bytes();
        u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[9], b[10]])
    });
}

fn next_u64() -> u64 {
    RNG.with(|state| {
        let mut z = state.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
        state.set(z);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    })
}

fn nonzero_u64() -> u64 {
    loop {
        let v = next_u64();
        if v != 0 {
            return v;
        }
    }
}

fn new_span_id() -> [u8; 8] {
    nonzero_u64().to_be_bytes()
}

fn new_trace_id() -> [u8; 16] {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&nonzero_u64().to_be_bytes());
    id[8..].copy_from_slice(&next_u64().to_be_bytes());
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_never_zero_and_differ() {
        let a = new_trace_id();
        let b = new_trace_id();
        assert_ne!(a, [0; 16]);
        assert_ne!(a, b);
        assert_ne!(new_span_id(), [0; 8]);
        assert_ne!(new_span_id(), new_span_id());
    }

    #[test]
    fn without_an_exporter_a_span_records_nothing_and_forwards_its_parent() {
        // This test process installs no exporter.
        let parent = TraceParent::from_headers(
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            Some("a=b"),
        );
        let mut span = Span::start("x", SpanKind::Server, parent.clone());
        span.set_attribute("k", "v");
        assert!(!span.is_recording());
        assert_eq!(span.span_context(), None);
        assert_eq!(span.context(), parent);
        assert_eq!(Span::start("y", SpanKind::Client, None).context(), None);
    }
}
