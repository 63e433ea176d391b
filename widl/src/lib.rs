//! WIDL: the interface language of waPC-era wasmCloud.
//!
//! This crate parses WIDL (the grammar of `@wapc/widl` v0.0.12) into a spanned syntax tree,
//! checks it (types, names, annotations, imports) and reports problems as rustc-style
//! diagnostics. Code generators walk the checked [`Document`]: every type reference carries
//! its resolution, and descriptions and annotations are kept.
//!
//! [`codegen`] generates Rust for actors and providers from a checked [`Program`], with the
//! msgpack shapes of the published waPC-era interface crates; [`build::Builder`] runs it
//! from a `build.rs`, and `wash gen` from the command line.
//!
//! ```
//! let (doc, diags) = nimbus_widl::parse("kv.widl", "namespace \"kv\"\nrole Store { Get(key: string): string }");
//! assert!(diags.is_empty());
//! let mut doc = doc.unwrap();
//! let checked = nimbus_widl::check(&mut doc, &nimbus_widl::MemoryLoader::new());
//! assert!(!nimbus_widl::has_errors(&checked.diagnostics));
//! ```

pub mod ast;
pub mod build;
mod check;
pub mod codegen;
mod diagnostic;
mod lexer;
mod loader;
mod parser;
mod span;

use std::path::Path;

pub use ast::*;
pub use check::{Checked, check};
pub use diagnostic::{Diagnostic, Label, Severity, emit_to_stderr, has_errors, render_diagnostics};
pub use loader::{FsLoader, LoadError, LoadedFile, Loader, MemoryLoader, resolve_relative};
pub use span::{Location, SourceFile, SourceFiles, Span};

/// Parses one WIDL source text.
///
/// Returns the document and all syntax diagnostics. After a syntax error the parser
/// recovers and keeps what it could parse, so the document is `Some` (a partial tree)
/// whenever at least one definition was recovered; it is `None` only if nothing was.
/// Check the diagnostics with [`has_errors`] before generating code.
pub fn parse(file_name: &str, source: &str) -> (Option<Document>, Vec<Diagnostic>) {
    parser::parse_file(&SourceFile::new(file_name, source))
}

/// A root file parsed and checked together with everything it imports.
#[derive(Debug, Clone)]
pub struct Program {
    /// The root document (`None` if nothing could be parsed).
    pub root: Option<Document>,
    /// Imported documents, resolved and checked.
    pub imports: Vec<Document>,
    /// Every source involved, for rendering diagnostics.
    pub files: SourceFiles,
    /// Syntax and semantic diagnostics of all files, root first.
    pub diagnostics: Vec<Diagnostic>,
}

impl Program {
    /// True if any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        has_errors(&self.diagnostics)
    }

    /// The diagnostics rendered rustc-style without colours.
    pub fn render(&self) -> String {
        render_diagnostics(&self.files, &self.diagnostics)
    }
}

/// Loads `name` through `loader`, parses it and checks it with its imports.
///
/// Fails only if the root file itself cannot be loaded; problems inside files are
/// diagnostics.
pub fn parse_and_check(name: &str, loader: &dyn Loader) -> Result<Program, LoadError> {
    let loaded = loader.load(None, name)?;
    Ok(parse_and_check_source(&loaded.name, &loaded.text, loader))
}

/// Parses and checks a source text held in memory, loading its imports through `loader`.
pub fn parse_and_check_source(name: &str, source: &str, loader: &dyn Loader) -> Program {
    let (root, mut diagnostics) = parse(name, source);
    let mut files = SourceFiles::new();
    files.add(name, source);
    let Some(mut root) = root else {
        return Program {
            root: None,
            imports: Vec::new(),
            files,
            diagnostics,
        };
    };
    let checked = check(&mut root, loader);
    diagnostics.extend(checked.diagnostics);
    for f in checked.files.iter() {
        files.insert(f.clone());
    }
    Program {
        root: Some(root),
        imports: checked.imports,
        files,
        diagnostics,
    }
}

/// Reads a WIDL file from disk, parses and checks it, following imports relative to it.
pub fn parse_and_check_file(path: impl AsRef<Path>) -> Result<Program, LoadError> {
    parse_and_check(&path.as_ref().to_string_lossy(), &FsLoader)
}
