//! Byte spans and source files: every AST node and diagnostic points back into its source
//! through a [`Span`], and [`SourceFile`] turns spans into 1-based line/column positions.

use std::sync::Arc;

/// A half-open byte range `start..end` into one source file.
///
/// Byte offsets (not characters) keep spans cheap to compute in the lexer; line and column
/// numbers are derived on demand by [`SourceFile::location`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Span {
    /// Offset of the first byte covered.
    pub start: usize,
    /// Offset one past the last byte covered.
    pub end: usize,
}

impl Span {
    /// Builds a span; callers guarantee `start <= end`.
    pub const fn new(start: usize, end: usize) -> Self {
        Self { start, end }
    }

    /// The smallest span covering both `self` and `other`, used to span whole nodes.
    pub fn to(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }

    /// Length in bytes, so empty spans (end-of-file positions) can be recognised.
    pub const fn len(self) -> usize {
        self.end - self.start
    }

    /// True for zero-width spans such as an end-of-file position.
    pub const fn is_empty(self) -> bool {
        self.start == self.end
    }

    /// The span as a `Range`, for slicing the source text.
    pub const fn range(self) -> std::ops::Range<usize> {
        self.start..self.end
    }
}

/// A 1-based line and column (in characters) of a byte offset, as editors and rustc show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Location {
    /// 1-based line number.
    pub line: usize,
    /// 1-based column, counted in Unicode scalar values from the start of the line.
    pub column: usize,
}

/// One named source text with a precomputed line index, so locations are cheap to compute.
#[derive(Debug, Clone)]
pub struct SourceFile {
    name: String,
    text: Arc<str>,
    line_starts: Vec<usize>,
}

impl SourceFile {
    /// Wraps `text` under the display name `name` and indexes its line starts.
    pub fn new(name: impl Into<String>, text: impl Into<Arc<str>>) -> Self {
        let text: Arc<str> = text.into();
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self {
            name: name.into(),
            text,
            line_starts,
        }
    }

    /// The display name (usually the path as written), used in every diagnostic.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The full source text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// A shared handle to the text, so documents can keep their source without copying.
    pub fn shared_text(&self) -> Arc<str> {
        Arc::clone(&self.text)
    }

    /// The line/column of `offset`. Offsets past the end clamp to the end and offsets inside
    /// a multi-byte character snap back to its start, so any span yields a valid location.
    pub fn location(&self, offset: usize) -> Location {
        let offset = floor_char_boundary(&self.text, offset);
        let line_index = self
            .line_starts
            .partition_point(|&start| start <= offset)
            .saturating_sub(1);
        let line_start = self.line_starts.get(line_index).copied().unwrap_or(0);
        let column = self
            .text
            .get(line_start..offset)
            .map_or(0, |s| s.chars().count())
            + 1;
        Location {
            line: line_index + 1,
            column,
        }
    }
}

/// The largest char boundary `<= offset` (clamped to the text length).
pub(crate) fn floor_char_boundary(text: &str, offset: usize) -> usize {
    let mut offset = offset.min(text.len());
    while offset > 0 && !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// A set of source files looked up by name, which the renderer needs to show source lines.
#[derive(Debug, Clone, Default)]
pub struct SourceFiles {
    files: Vec<SourceFile>,
}

impl SourceFiles {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a file, returning a reference to the stored copy.
    pub fn add(&mut self, name: impl Into<String>, text: impl Into<Arc<str>>) -> &SourceFile {
        self.insert(SourceFile::new(name, text))
    }

    /// Adds (or replaces) an already indexed file.
    pub fn insert(&mut self, file: SourceFile) -> &SourceFile {
        let index = match self.files.iter().position(|f| f.name == file.name) {
            Some(i) => {
                self.files[i] = file;
                i
            }
            None => {
                self.files.push(file);
                self.files.len() - 1
            }
        };
        &self.files[index]
    }

    /// The file called `name`, if present.
    pub fn get(&self, name: &str) -> Option<&SourceFile> {
        self.files.iter().find(|f| f.name == name)
    }

    /// All files in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = &SourceFile> {
        self.files.iter()
    }

    /// Number of files held.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// True when no file has been added.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}
