//! Diagnostics (errors and warnings) with file, span, line/column, labels and notes, and a
//! rustc-style renderer built on `codespan-reporting`.

use std::fmt;
use std::io::IsTerminal;

use codespan_reporting::diagnostic as cs;
use codespan_reporting::files::SimpleFiles;
use codespan_reporting::term::{self, Chars, Config, termcolor};

use crate::span::{Location, SourceFile, SourceFiles, Span};

/// How serious a diagnostic is: errors make a document unusable, warnings do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Severity {
    /// Something that might be wrong but does not stop code generation.
    Warning,
    /// The document is invalid; generators must not run on it.
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// A secondary location attached to a diagnostic ("first defined here", "opened here").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    /// File the label points into (may differ from the diagnostic's file for imports).
    pub file: String,
    /// Byte span of the labelled code.
    pub span: Span,
    /// Text shown next to the underline.
    pub message: String,
}

/// One error or warning about a WIDL source file.
///
/// `line` and `column` are computed from `span.start` when the diagnostic is created, so a
/// caller can print `file:line:col` without access to the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// A short stable identifier of the kind of problem (e.g. `syntax`, `undefined-type`),
    /// so tools and tests can match on it instead of on the wording.
    pub code: &'static str,
    /// The main message, one line, lower-case start as rustc does.
    pub message: String,
    /// Name of the file the primary span points into.
    pub file: String,
    /// Primary byte span.
    pub span: Span,
    /// 1-based line of `span.start`.
    pub line: usize,
    /// 1-based column (in characters) of `span.start`.
    pub column: usize,
    /// Text shown under the primary caret, if any.
    pub primary_label: Option<String>,
    /// Secondary locations.
    pub labels: Vec<Label>,
    /// Extra notes and help lines printed after the snippet.
    pub notes: Vec<String>,
}

impl Diagnostic {
    /// Creates a diagnostic located in `file`, computing line and column from `span`.
    pub fn new(
        severity: Severity,
        code: &'static str,
        file: &SourceFile,
        span: Span,
        message: impl Into<String>,
    ) -> Self {
        let Location { line, column } = file.location(span.start);
        Self {
            severity,
            code,
            message: message.into(),
            file: file.name().to_string(),
            span,
            line,
            column,
            primary_label: None,
            labels: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Shorthand for an error.
    pub fn error(
        code: &'static str,
        file: &SourceFile,
        span: Span,
        message: impl Into<String>,
    ) -> Self {
        Self::new(Severity::Error, code, file, span, message)
    }

    /// Shorthand for a warning.
    pub fn warning(
        code: &'static str,
        file: &SourceFile,
        span: Span,
        message: impl Into<String>,
    ) -> Self {
        Self::new(Severity::Warning, code, file, span, message)
    }

    /// Sets the text under the primary caret.
    pub fn with_primary_label(mut self, message: impl Into<String>) -> Self {
        self.primary_label = Some(message.into());
        self
    }

    /// Adds a secondary label.
    pub fn with_label(mut self, file: &str, span: Span, message: impl Into<String>) -> Self {
        self.labels.push(Label {
            file: file.to_string(),
            span,
            message: message.into(),
        });
        self
    }

    /// Adds a note line.
    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    /// True for errors.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    /// One-line form: `file:line:col: error[code]: message`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}[{}]: {}",
            self.file, self.line, self.column, self.severity, self.code, self.message
        )
    }
}

/// True if any diagnostic is an error (warnings alone leave a document usable).
pub fn has_errors(diagnostics: &[Diagnostic]) -> bool {
    diagnostics.iter().any(Diagnostic::is_error)
}

/// Renders diagnostics rustc-style (header, `--> file:line:col`, source line, carets, notes)
/// without colours, for logs, tests and non-terminal output.
pub fn render_diagnostics(files: &SourceFiles, diagnostics: &[Diagnostic]) -> String {
    let mut writer = termcolor::NoColor::new(Vec::<u8>::new());
    emit(&mut writer, files, diagnostics);
    String::from_utf8_lossy(&writer.into_inner()).into_owned()
}

/// Prints diagnostics to standard error, coloured only when standard error is a terminal.
pub fn emit_to_stderr(files: &SourceFiles, diagnostics: &[Diagnostic]) {
    let choice = if std::io::stderr().is_terminal() {
        termcolor::ColorChoice::Auto
    } else {
        termcolor::ColorChoice::Never
    };
    let stream = termcolor::StandardStream::stderr(choice);
    let mut lock = stream.lock();
    emit(&mut lock, files, diagnostics);
}

fn emit(writer: &mut dyn termcolor::WriteColor, files: &SourceFiles, diagnostics: &[Diagnostic]) {
    let mut simple = SimpleFiles::new();
    let ids: Vec<(String, usize)> = files
        .iter()
        .map(|f| {
            (
                f.name().to_string(),
                simple.add(f.name().to_string(), f.text()),
            )
        })
        .collect();
    let id_of = |name: &str| ids.iter().find(|(n, _)| n == name).map(|(_, id)| *id);
    let config = Config {
        chars: Chars::ascii(),
        ..Config::default()
    };
    for diag in diagnostics {
        let mut out = match diag.severity {
            Severity::Error => cs::Diagnostic::error(),
            Severity::Warning => cs::Diagnostic::warning(),
        }
        .with_code(diag.code)
        .with_message(&diag.message);
        match id_of(&diag.file) {
            Some(id) => {
                let text = files.get(&diag.file).map_or("", SourceFile::text);
                let mut label = cs::Label::primary(id, clamp(text, diag.span));
                if let Some(msg) = &diag.primary_label {
                    label = label.with_message(msg);
                }
                out = out.with_label(label);
            }
            None => {
                out = out.with_note(format!("at {}:{}:{}", diag.file, diag.line, diag.column));
            }
        }
        for label in &diag.labels {
            if let Some(id) = id_of(&label.file) {
                let text = files.get(&label.file).map_or("", SourceFile::text);
                out = out.with_label(
                    cs::Label::secondary(id, clamp(text, label.span)).with_message(&label.message),
                );
            }
        }
        out = out.with_notes(diag.notes.clone());
        if term::emit(writer, &config, &simple, &out).is_err() {
            // The renderer only fails on spans outside the file, which `clamp` prevents;
            // fall back to the one-line form rather than losing the diagnostic.
            let _ = writeln!(writer, "{diag}");
        }
    }
}

/// Clamps a span to the text and to char boundaries so the renderer never slices badly.
fn clamp(text: &str, span: Span) -> std::ops::Range<usize> {
    let start = crate::span::floor_char_boundary(text, span.start);
    let end = crate::span::floor_char_boundary(text, span.end).max(start);
    start..end
}
