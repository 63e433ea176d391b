//! The checker: follows imports through a [`Loader`], resolves every type reference (filling
//! [`TypeKind::Named::resolved`]) and validates the rules of the language: known types,
//! unique names, `void` only as a return type, namespace placement, annotations against
//! their `directive` declarations, map key types, default values and import cycles.
//!
//! Decisions beyond `@wapc/widl`'s validator:
//! - Unknown annotations are kept and reported as warnings; `@ref`/`@reference` are known.
//! - Map keys must be `string`/`ID`, an integer type, or an alias of one of those, and must
//!   not be optional. This is an **error**: WSPEC allows only int or string keys, and any
//!   other key would make generated Rust (`HashMap<K, V>` needs `Eq + Hash`) fail to
//!   compile or not round-trip on the wire.
//! - Imports are not transitive: a file exports only its own definitions.
//! - Type names should be PascalCase: a warning, as wire compatibility does not depend on it.

use std::collections::{HashMap, HashSet};

use crate::ast::*;
use crate::diagnostic::{Diagnostic, Severity};
use crate::loader::{Loader, resolve_relative};
use crate::parser::parse_file;
use crate::span::{SourceFile, SourceFiles, Span};

/// The result of checking a document.
#[derive(Debug, Clone)]
pub struct Checked {
    /// Every file reached through imports (transitively), parsed, resolved and checked, in
    /// load order. Type references in the root may point into these via [`DefRef::file`].
    pub imports: Vec<Document>,
    /// Sources of the root and all imported files, for [`crate::render_diagnostics`].
    pub files: SourceFiles,
    /// Diagnostics found by the checker, plus the syntax diagnostics of imported files.
    pub diagnostics: Vec<Diagnostic>,
}

/// Imports nested deeper than this are reported instead of followed.
const MAX_IMPORT_DEPTH: usize = 64;
/// Alias chains and value nesting are followed at most this far.
const MAX_CHAIN: usize = 64;

/// The places an annotation can appear; the names are those of `directive ... on`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Loc {
    Namespace,
    Interface,
    Role,
    Operation,
    Parameter,
    Type,
    Field,
    Enum,
    EnumValue,
    Union,
    Alias,
    Import,
}

impl Loc {
    fn name(self) -> &'static str {
        match self {
            Loc::Namespace => "NAMESPACE",
            Loc::Interface => "INTERFACE",
            Loc::Role => "ROLE",
            Loc::Operation => "OPERATION",
            Loc::Parameter => "PARAMETER",
            Loc::Type => "TYPE",
            Loc::Field => "FIELD",
            Loc::Enum => "ENUM",
            Loc::EnumValue => "ENUM_VALUE",
            Loc::Union => "UNION",
            Loc::Alias => "ALIAS",
            Loc::Import => "IMPORT",
        }
    }
}

const DIRECTIVE_LOCATIONS: &[&str] = &[
    "NAMESPACE",
    "INTERFACE",
    "ROLE",
    "OPERATION",
    "PARAMETER",
    "TYPE",
    "FIELD",
    "ENUM",
    "ENUM_VALUE",
    "UNION",
    "ALIAS",
];

/// A name visible in a file's scope.
#[derive(Debug, Clone)]
enum Symbol {
    /// A definition (local or imported).
    Def(DefRef, Span),
    /// Named in an import whose file could not be loaded: accepted silently, since the
    /// import itself already has an error.
    Unknown,
}

/// Where a directive is declared.
#[derive(Debug, Clone, Copy)]
struct DirectiveRef {
    doc: usize,
    def: usize,
}

/// Checks `document`, loading its imports through `loader`, and resolves its type references
/// in place. The document may be a partial one recovered from syntax errors.
pub fn check(document: &mut Document, loader: &dyn Loader) -> Checked {
    let placeholder = Document {
        file: document.file.clone(),
        source: document.source.clone(),
        definitions: Vec::new(),
        span: document.span,
    };
    let root = std::mem::replace(document, placeholder);
    let mut checker = Checker {
        loader,
        files: vec![SourceFile::new(root.file.clone(), root.source.clone())],
        canonical: vec![resolve_relative(None, &root.file)],
        docs: vec![root],
        edges: vec![Vec::new()],
        diags: Vec::new(),
        lenient: vec![false],
    };
    let mut stack = Vec::new();
    checker.load_imports(0, &mut stack);
    checker.run();
    let Checker {
        mut docs,
        files,
        mut diags,
        ..
    } = checker;
    let order: HashMap<String, usize> = files
        .iter()
        .enumerate()
        .map(|(i, f)| (f.name().to_string(), i))
        .collect();
    diags.sort_by_key(|d| {
        (
            order.get(&d.file).copied().unwrap_or(usize::MAX),
            d.span.start,
        )
    });
    let mut source_files = SourceFiles::new();
    for f in files {
        source_files.insert(f);
    }
    let mut iter = docs.drain(..);
    if let Some(root) = iter.next() {
        *document = root;
    }
    Checked {
        imports: iter.collect(),
        files: source_files,
        diagnostics: diags,
    }
}

struct Checker<'l> {
    loader: &'l dyn Loader,
    docs: Vec<Document>,
    files: Vec<SourceFile>,
    canonical: Vec<String>,
    /// For each document, its imports in order with the loaded document index, if any.
    edges: Vec<Vec<Option<usize>>>,
    diags: Vec<Diagnostic>,
    /// Documents with a failed `import *`: undefined PascalCase names are not reported there.
    lenient: Vec<bool>,
}

/// Everything the semantic pass needs to look up, built after resolution.
struct Tables {
    /// Type-like definitions by (file, name) → (doc, definition index).
    defs: HashMap<(String, String), (usize, usize)>,
    /// For each document: visible type names.
    scopes: Vec<HashMap<String, Symbol>>,
    /// For each document: visible directives.
    directives: Vec<HashMap<String, DirectiveRef>>,
}

impl Checker<'_> {
    fn error(
        &mut self,
        doc: usize,
        code: &'static str,
        span: Span,
        message: impl Into<String>,
    ) -> &mut Diagnostic {
        self.push(doc, Severity::Error, code, span, message)
    }

    fn push(
        &mut self,
        doc: usize,
        severity: Severity,
        code: &'static str,
        span: Span,
        message: impl Into<String>,
    ) -> &mut Diagnostic {
        let d = Diagnostic::new(severity, code, &self.files[doc], span, message);
        self.diags.push(d);
        let last = self.diags.len() - 1;
        &mut self.diags[last]
    }

    fn file_name(&self, doc: usize) -> String {
        self.files[doc].name().to_string()
    }

    // ---- imports ----------------------------------------------------------------------------

    fn load_imports(&mut self, doc: usize, stack: &mut Vec<usize>) {
        stack.push(doc);
        let imports: Vec<(String, Span)> = self.docs[doc]
            .imports()
            .map(|i| (i.from.value.clone(), i.from.span))
            .collect();
        for (path, span) in imports {
            let target = self.load_one(doc, &path, span, stack);
            self.edges[doc].push(target);
        }
        stack.pop();
    }

    fn load_one(
        &mut self,
        doc: usize,
        path: &str,
        span: Span,
        stack: &mut Vec<usize>,
    ) -> Option<usize> {
        if stack.len() > MAX_IMPORT_DEPTH {
            self.error(
                doc,
                "import",
                span,
                format!("imports are nested more than {MAX_IMPORT_DEPTH} levels deep"),
            );
            return None;
        }
        let importer = self.canonical[doc].clone();
        let loaded = match self.loader.load(Some(&importer), path) {
            Ok(f) => f,
            Err(e) => {
                self.error(doc, "import", span, format!("cannot import `{path}`: {e}"))
                    .primary_label = Some("imported here".into());
                return None;
            }
        };
        if let Some(existing) = self.canonical.iter().position(|c| *c == loaded.name) {
            if let Some(at) = stack.iter().position(|&d| d == existing) {
                let mut chain: Vec<String> = stack[at..]
                    .iter()
                    .map(|&d| self.canonical[d].clone())
                    .collect();
                chain.push(loaded.name.clone());
                self.error(
                    doc,
                    "import-cycle",
                    span,
                    format!("import cycle: {}", chain.join(" -> ")),
                )
                .notes
                .push("a file must not import itself, directly or through other files".into());
            }
            return Some(existing);
        }
        let file = SourceFile::new(loaded.name.clone(), loaded.text);
        let (parsed, diags) = parse_file(&file);
        self.diags.extend(diags);
        let parsed = parsed?;
        let index = self.docs.len();
        self.docs.push(parsed);
        self.files.push(file);
        self.canonical.push(loaded.name);
        self.edges.push(Vec::new());
        self.lenient.push(false);
        self.load_imports(index, stack);
        Some(index)
    }

    // ---- driver -----------------------------------------------------------------------------

    fn run(&mut self) {
        let mut defs = HashMap::new();
        let mut exports: Vec<HashMap<String, Symbol>> = Vec::new();
        let mut own_directives: Vec<HashMap<String, DirectiveRef>> = Vec::new();
        for doc in 0..self.docs.len() {
            let (e, d) = self.collect_definitions(doc, &mut defs);
            exports.push(e);
            own_directives.push(d);
        }
        let mut scopes = Vec::new();
        let mut directives = Vec::new();
        for doc in 0..self.docs.len() {
            let (s, d) = self.build_scope(doc, &exports, &own_directives);
            scopes.push(s);
            directives.push(d);
        }
        let tables = Tables {
            defs,
            scopes,
            directives,
        };
        for doc in 0..self.docs.len() {
            let mut definitions = std::mem::take(&mut self.docs[doc].definitions);
            for def in &mut definitions {
                self.resolve_definition(doc, def, &tables);
            }
            self.docs[doc].definitions = definitions;
        }
        let mut sema = Sema {
            docs: &self.docs,
            files: &self.files,
            lenient: &self.lenient,
            diags: Vec::new(),
        };
        for doc in 0..self.docs.len() {
            sema.check_document(doc, &tables);
        }
        let found = sema.diags;
        self.diags.extend(found);
    }

    /// Registers a document's definitions, reporting duplicates and misuse of built-in names.
    fn collect_definitions(
        &mut self,
        doc: usize,
        defs: &mut HashMap<(String, String), (usize, usize)>,
    ) -> (HashMap<String, Symbol>, HashMap<String, DirectiveRef>) {
        let file = self.file_name(doc);
        let mut types: HashMap<String, Symbol> = HashMap::new();
        let mut roles: HashMap<String, Span> = HashMap::new();
        let mut directives: HashMap<String, DirectiveRef> = HashMap::new();
        let mut first_interface: Option<Span> = None;
        let mut first_namespace: Option<Span> = None;
        let mut seen_other: Option<Span> = None;
        let mut problems: Vec<Diagnostic> = Vec::new();
        let sf = &self.files[doc];
        for (i, def) in self.docs[doc].definitions.iter().enumerate() {
            let kind = match def {
                Definition::Type(_) => Some(DefKind::Type),
                Definition::Enum(_) => Some(DefKind::Enum),
                Definition::Union(_) => Some(DefKind::Union),
                Definition::Alias(a) => Some(if a.target.is_none() {
                    DefKind::Scalar
                } else {
                    DefKind::Alias
                }),
                _ => None,
            };
            match def {
                Definition::Namespace(n) => {
                    if let Some(first) = first_namespace {
                        problems.push(
                            Diagnostic::error(
                                "namespace",
                                sf,
                                n.span,
                                "a file may declare only one namespace",
                            )
                            .with_label(
                                &file,
                                first,
                                "first namespace declared here",
                            ),
                        );
                    } else if let Some(other) = seen_other {
                        problems.push(
                            Diagnostic::error(
                                "namespace",
                                sf,
                                n.span,
                                "the namespace must be the first definition",
                            )
                            .with_label(
                                &file,
                                other,
                                "this definition comes before it",
                            ),
                        );
                    }
                    first_namespace.get_or_insert(n.span);
                }
                Definition::Interface(it) => {
                    if let Some(first) = first_interface {
                        problems.push(
                            Diagnostic::error(
                                "duplicate",
                                sf,
                                it.span,
                                "a file may have only one `interface` block",
                            )
                            .with_label(
                                &file,
                                first,
                                "first `interface` here",
                            ),
                        );
                    }
                    first_interface.get_or_insert(it.span);
                }
                Definition::Role(r) => {
                    if let Some(first) = roles.get(&r.name.value) {
                        problems.push(
                            Diagnostic::error(
                                "duplicate",
                                sf,
                                r.name.span,
                                format!("the role `{}` is defined more than once", r.name.value),
                            )
                            .with_label(
                                &file,
                                *first,
                                "first defined here",
                            ),
                        );
                    } else {
                        roles.insert(r.name.value.clone(), r.name.span);
                    }
                }
                Definition::Directive(d) => {
                    if let Some(first) = directives.get(&d.name.value) {
                        let first_span =
                            directive_of(&self.docs, *first).map_or(d.name.span, |f| f.name.span);
                        problems.push(
                            Diagnostic::error(
                                "duplicate",
                                sf,
                                d.name.span,
                                format!(
                                    "the directive `@{}` is declared more than once",
                                    d.name.value
                                ),
                            )
                            .with_label(
                                &file,
                                first_span,
                                "first declared here",
                            ),
                        );
                    } else {
                        directives.insert(d.name.value.clone(), DirectiveRef { doc, def: i });
                    }
                }
                _ => {}
            }
            if !matches!(def, Definition::Namespace(_)) {
                seen_other.get_or_insert(def.span());
            }
            let (Some(kind), Some(name)) = (kind, def.name()) else {
                continue;
            };
            if Builtin::from_name(&name.value).is_some() || name.value == "void" {
                problems.push(Diagnostic::error(
                    "duplicate",
                    sf,
                    name.span,
                    format!(
                        "`{}` is a built-in type and cannot be redefined",
                        name.value
                    ),
                ));
                continue;
            }
            if let Some(Symbol::Def(_, first)) = types.get(&name.value) {
                problems.push(
                    Diagnostic::error(
                        "duplicate",
                        sf,
                        name.span,
                        format!("the name `{}` is defined more than once", name.value),
                    )
                    .with_label(&file, *first, "first defined here"),
                );
                continue;
            }
            if !is_pascal_case(&name.value) {
                problems.push(Diagnostic::warning(
                    "naming",
                    sf,
                    name.span,
                    format!("type names should be PascalCase: `{}`", name.value),
                ));
            }
            let def_ref = DefRef {
                file: file.clone(),
                name: name.value.clone(),
                kind,
            };
            defs.insert((file.clone(), name.value.clone()), (doc, i));
            types.insert(name.value.clone(), Symbol::Def(def_ref, name.span));
        }
        self.diags.extend(problems);
        (types, directives)
    }

    /// A document's scope: its own definitions plus what its imports bring in.
    fn build_scope(
        &mut self,
        doc: usize,
        exports: &[HashMap<String, Symbol>],
        own_directives: &[HashMap<String, DirectiveRef>],
    ) -> (HashMap<String, Symbol>, HashMap<String, DirectiveRef>) {
        let mut scope = exports[doc].clone();
        let mut directives = own_directives[doc].clone();
        let imports: Vec<Import> = self.docs[doc].imports().cloned().collect();
        let edges = self.edges[doc].clone();
        for (import, target) in imports.iter().zip(edges) {
            if target == Some(doc) {
                // A self-import (already reported as a cycle) adds nothing.
                continue;
            }
            match (&import.items, target) {
                (ImportItems::All(_), None) => self.lenient[doc] = true,
                (ImportItems::All(_), Some(t)) => {
                    let mut names: Vec<_> = exports[t].iter().collect();
                    names.sort_by(|a, b| a.0.cmp(b.0));
                    for (name, symbol) in names {
                        self.bring_in(
                            doc,
                            &mut scope,
                            name,
                            symbol.clone(),
                            import.from.span,
                            &exports[doc],
                        );
                    }
                    for (name, d) in &own_directives[t] {
                        directives.entry(name.clone()).or_insert(*d);
                    }
                }
                (ImportItems::Names(names), target) => {
                    for item in names {
                        let local = item.local();
                        let symbol = match target {
                            None => Some(Symbol::Unknown),
                            Some(t) => {
                                let found_type = exports[t].get(&item.name.value).cloned();
                                if let Some(d) = own_directives[t].get(&item.name.value) {
                                    directives.insert(local.value.clone(), *d);
                                }
                                if found_type.is_none()
                                    && !own_directives[t].contains_key(&item.name.value)
                                {
                                    let file = self.file_name(t);
                                    self.error(
                                        doc,
                                        "import",
                                        item.name.span,
                                        format!("`{}` is not defined in `{file}`", item.name.value),
                                    );
                                    Some(Symbol::Unknown)
                                } else {
                                    found_type
                                }
                            }
                        };
                        if let Some(symbol) = symbol {
                            self.bring_in(
                                doc,
                                &mut scope,
                                &local.value,
                                symbol,
                                local.span,
                                &exports[doc],
                            );
                        }
                    }
                }
            }
        }
        (scope, directives)
    }

    fn bring_in(
        &mut self,
        doc: usize,
        scope: &mut HashMap<String, Symbol>,
        name: &str,
        symbol: Symbol,
        span: Span,
        own: &HashMap<String, Symbol>,
    ) {
        if own.contains_key(name) {
            let first = match own.get(name) {
                Some(Symbol::Def(_, s)) => *s,
                _ => span,
            };
            let file = self.file_name(doc);
            self.error(
                doc,
                "duplicate",
                span,
                format!("the import of `{name}` conflicts with a local definition"),
            )
            .labels
            .push(crate::diagnostic::Label {
                file,
                span: first,
                message: "defined here".into(),
            });
            return;
        }
        match (scope.get(name), &symbol) {
            (Some(Symbol::Def(existing, _)), Symbol::Def(new, _)) if existing != new => {
                self.error(
                    doc,
                    "duplicate",
                    span,
                    format!(
                        "`{name}` is imported from both `{}` and `{}`",
                        existing.file, new.file
                    ),
                );
            }
            (Some(_), _) => {}
            (None, _) => {
                scope.insert(name.to_string(), symbol);
            }
        }
    }

    // ---- resolution -------------------------------------------------------------------------

    fn resolve_definition(&mut self, doc: usize, def: &mut Definition, t: &Tables) {
        match def {
            Definition::Alias(a) => {
                if let Some(target) = &mut a.target {
                    self.resolve(doc, target, false, t);
                }
            }
            Definition::Interface(i) => self.resolve_ops(doc, &mut i.operations, t),
            Definition::Role(r) => self.resolve_ops(doc, &mut r.operations, t),
            Definition::Type(ty) => {
                for f in &mut ty.fields {
                    self.resolve(doc, &mut f.ty, false, t);
                }
            }
            Definition::Union(u) => {
                for m in &mut u.members {
                    self.resolve(doc, m, false, t);
                }
            }
            Definition::Directive(d) => {
                for p in &mut d.parameters {
                    self.resolve(doc, &mut p.ty, false, t);
                }
            }
            Definition::Namespace(_) | Definition::Import(_) | Definition::Enum(_) => {}
        }
    }

    fn resolve_ops(&mut self, doc: usize, ops: &mut [Operation], t: &Tables) {
        for op in ops {
            for p in &mut op.parameters {
                self.resolve(doc, &mut p.ty, false, t);
            }
            if let Some(r) = &mut op.returns {
                let stream = op.stream;
                // `stream void` gets its own error below.
                self.resolve(doc, r, true, t);
                if stream && r.is_named("void") {
                    self.error(
                        doc,
                        "void",
                        r.span,
                        "`stream void` is not a type; omit the return type instead",
                    );
                }
            }
        }
    }

    /// Resolves a reference; `void_ok` is true only for the top of a return type.
    fn resolve(&mut self, doc: usize, ty: &mut TypeRef, void_ok: bool, t: &Tables) {
        let span = ty.span;
        let optional = ty.optional;
        match &mut ty.kind {
            TypeKind::List(inner) => self.resolve(doc, inner, false, t),
            TypeKind::Map { key, value } => {
                self.resolve(doc, key, false, t);
                self.resolve(doc, value, false, t);
            }
            TypeKind::Named { name, resolved } => {
                if name.value == "void" {
                    *resolved = Some(Resolved::Void);
                    if !void_ok {
                        self.error(
                            doc,
                            "void",
                            name.span,
                            "`void` can only be used as the return type of an operation",
                        )
                        .primary_label = Some("not allowed here".into());
                    } else if optional {
                        self.error(doc, "void", span, "`void` cannot be optional");
                    }
                    return;
                }
                if let Some(b) = Builtin::from_name(&name.value) {
                    *resolved = Some(Resolved::Builtin(b));
                    return;
                }
                match t.scopes[doc].get(&name.value) {
                    Some(Symbol::Def(def, _)) => *resolved = Some(Resolved::Defined(def.clone())),
                    Some(Symbol::Unknown) => {}
                    None => self.unknown_type(doc, name, &t.scopes[doc]),
                }
            }
        }
    }

    fn unknown_type(&mut self, doc: usize, name: &Name, scope: &HashMap<String, Symbol>) {
        let lower = name
            .value
            .chars()
            .next()
            .is_some_and(|c| !c.is_ascii_uppercase());
        let mut candidates: Vec<&str> = Vec::new();
        if lower {
            candidates.extend(Builtin::NAMES);
            candidates.push("void");
        }
        candidates.extend(scope.keys().map(String::as_str));
        let suggestion = suggest(&name.value, &candidates);
        if lower {
            let d = self.error(
                doc,
                "unknown-builtin",
                name.span,
                format!("unknown built-in type `{}`", name.value),
            );
            d.primary_label = Some("not a built-in type".into());
            match suggestion {
                Some(s) => d.notes.push(format!("help: did you mean `{s}`?")),
                None => d.notes.push(format!(
                    "the built-in types are: {}; user-defined types are PascalCase",
                    Builtin::NAMES.join(", ")
                )),
            }
        } else {
            if self.lenient[doc] {
                return;
            }
            let d = self.error(
                doc,
                "undefined-type",
                name.span,
                format!("undefined type `{}`", name.value),
            );
            d.primary_label = Some("not defined or imported".into());
            if let Some(s) = suggestion {
                d.notes.push(format!("help: did you mean `{s}`?"));
            }
        }
    }
}

/// The semantic pass: reads the resolved documents and only records diagnostics.
struct Sema<'a> {
    docs: &'a [Document],
    files: &'a [SourceFile],
    lenient: &'a [bool],
    diags: Vec<Diagnostic>,
}

impl<'a> Sema<'a> {
    fn error(
        &mut self,
        doc: usize,
        code: &'static str,
        span: Span,
        message: impl Into<String>,
    ) -> &mut Diagnostic {
        self.push(doc, Severity::Error, code, span, message)
    }

    fn warning(
        &mut self,
        doc: usize,
        code: &'static str,
        span: Span,
        message: impl Into<String>,
    ) -> &mut Diagnostic {
        self.push(doc, Severity::Warning, code, span, message)
    }

    fn push(
        &mut self,
        doc: usize,
        severity: Severity,
        code: &'static str,
        span: Span,
        message: impl Into<String>,
    ) -> &mut Diagnostic {
        let d = Diagnostic::new(severity, code, &self.files[doc], span, message);
        self.diags.push(d);
        let last = self.diags.len() - 1;
        &mut self.diags[last]
    }

    fn file_name(&self, doc: usize) -> String {
        self.files[doc].name().to_string()
    }

    fn check_document(&mut self, doc: usize, t: &Tables) {
        let docs = self.docs;
        let definitions = &docs[doc].definitions;
        let ns_annotations: Vec<Annotation> = definitions
            .iter()
            .find_map(|d| match d {
                Definition::Namespace(n) => Some(n.annotations.clone()),
                _ => None,
            })
            .unwrap_or_default();
        let root: Vec<(Loc, &[Annotation])> = vec![(Loc::Namespace, &ns_annotations)];
        for def in definitions {
            match def {
                Definition::Namespace(n) => {
                    self.annotations(doc, Loc::Namespace, &n.annotations, &[], t)
                }
                Definition::Import(i) => {
                    self.annotations(doc, Loc::Import, &i.annotations, &root, t)
                }
                Definition::Alias(a) => {
                    self.annotations(doc, Loc::Alias, &a.annotations, &root, t);
                    if let Some(target) = &a.target {
                        self.type_rules(doc, target, t);
                        self.alias_cycle(doc, a, t);
                    } else {
                        self.warning(
                            doc,
                            "scalar",
                            a.name.span,
                            format!(
                                "`scalar {}` has no target type; it is treated as opaque",
                                a.name.value
                            ),
                        )
                        .notes
                        .push("`scalar` is the pre-0.0.8 form; write `alias Name = Type`".into());
                    }
                }
                Definition::Interface(i) => {
                    self.annotations(doc, Loc::Interface, &i.annotations, &root, t);
                    let mut anc = root.clone();
                    anc.push((Loc::Interface, &i.annotations));
                    self.operations(doc, &i.operations, &anc, t);
                }
                Definition::Role(r) => {
                    self.annotations(doc, Loc::Role, &r.annotations, &root, t);
                    let mut anc = root.clone();
                    anc.push((Loc::Role, &r.annotations));
                    self.operations(doc, &r.operations, &anc, t);
                }
                Definition::Type(ty) => self.type_def(doc, ty, &root, t),
                Definition::Union(u) => {
                    self.annotations(doc, Loc::Union, &u.annotations, &root, t);
                    let mut seen: Vec<&TypeRef> = Vec::new();
                    for m in &u.members {
                        self.type_rules(doc, m, t);
                        if seen.iter().any(|s| same_type(s, m)) {
                            self.warning(
                                doc,
                                "duplicate",
                                m.span,
                                "this union member is listed more than once",
                            );
                        }
                        seen.push(m);
                    }
                }
                Definition::Enum(e) => self.enum_def(doc, e, &root, t),
                Definition::Directive(d) => self.directive_def(doc, d, t),
            }
        }
    }

    fn type_def(&mut self, doc: usize, ty: &TypeDef, root: &[(Loc, &[Annotation])], t: &Tables) {
        self.annotations(doc, Loc::Type, &ty.annotations, root, t);
        for name in &ty.implements {
            match t.scopes[doc].get(&name.value) {
                Some(Symbol::Def(d, _)) if d.kind == DefKind::Type => {}
                Some(Symbol::Def(d, _)) => {
                    self.error(
                        doc,
                        "implements",
                        name.span,
                        format!(
                            "`{}` is {} and cannot be implemented",
                            name.value,
                            kind_name(d.kind)
                        ),
                    );
                }
                Some(Symbol::Unknown) => {}
                None => {
                    if !self.lenient[doc] {
                        self.error(
                            doc,
                            "undefined-type",
                            name.span,
                            format!("undefined type `{}`", name.value),
                        );
                    }
                }
            }
        }
        let mut anc = root.to_vec();
        anc.push((Loc::Type, &ty.annotations));
        let mut seen: HashMap<&str, Span> = HashMap::new();
        for f in &ty.fields {
            if let Some(first) = seen.get(f.name.value.as_str()) {
                let file = self.file_name(doc);
                self.error(
                    doc,
                    "duplicate",
                    f.name.span,
                    format!(
                        "the field `{}` is defined more than once in `{}`",
                        f.name.value, ty.name.value
                    ),
                )
                .labels
                .push(crate::diagnostic::Label {
                    file,
                    span: *first,
                    message: "first defined here".into(),
                });
            } else {
                seen.insert(&f.name.value, f.name.span);
            }
            self.type_rules(doc, &f.ty, t);
            if let Some(v) = &f.default {
                self.default_value(doc, &f.ty, v, t);
            }
            self.annotations(doc, Loc::Field, &f.annotations, &anc, t);
        }
    }

    fn enum_def(&mut self, doc: usize, e: &Enum, root: &[(Loc, &[Annotation])], t: &Tables) {
        self.annotations(doc, Loc::Enum, &e.annotations, root, t);
        let mut anc = root.to_vec();
        anc.push((Loc::Enum, &e.annotations));
        let mut names: HashMap<&str, Span> = HashMap::new();
        let mut indexes: HashMap<i128, (&str, Span)> = HashMap::new();
        let file = self.file_name(doc);
        for v in &e.values {
            if let Some(first) = names.get(v.name.value.as_str()) {
                self.error(
                    doc,
                    "duplicate",
                    v.name.span,
                    format!(
                        "the enum value `{}` is defined more than once",
                        v.name.value
                    ),
                )
                .labels
                .push(crate::diagnostic::Label {
                    file: file.clone(),
                    span: *first,
                    message: "first defined here".into(),
                });
            } else {
                names.insert(&v.name.value, v.name.span);
            }
            if !(0..=i128::from(u32::MAX)).contains(&v.index) {
                self.error(
                    doc,
                    "enum-index",
                    v.index_span,
                    format!("enum index {} is out of range (0 to {})", v.index, u32::MAX),
                );
            } else if let Some((other, first)) = indexes.get(&v.index) {
                let message = format!("enum index {} is already used by `{other}`", v.index);
                self.error(doc, "duplicate", v.index_span, message)
                    .labels
                    .push(crate::diagnostic::Label {
                        file: file.clone(),
                        span: *first,
                        message: "first used here".into(),
                    });
            } else {
                indexes.insert(v.index, (&v.name.value, v.index_span));
            }
            self.annotations(doc, Loc::EnumValue, &v.annotations, &anc, t);
        }
    }

    fn operations(
        &mut self,
        doc: usize,
        ops: &[Operation],
        anc: &[(Loc, &[Annotation])],
        t: &Tables,
    ) {
        let mut seen: HashMap<&str, Span> = HashMap::new();
        let file = self.file_name(doc);
        for op in ops {
            if let Some(first) = seen.get(op.name.value.as_str()) {
                self.error(
                    doc,
                    "duplicate",
                    op.name.span,
                    format!(
                        "the operation `{}` is defined more than once",
                        op.name.value
                    ),
                )
                .labels
                .push(crate::diagnostic::Label {
                    file: file.clone(),
                    span: *first,
                    message: "first defined here".into(),
                });
            } else {
                seen.insert(&op.name.value, op.name.span);
            }
            self.annotations(doc, Loc::Operation, &op.annotations, anc, t);
            let mut op_anc = anc.to_vec();
            op_anc.push((Loc::Operation, &op.annotations));
            self.parameters(doc, &op.parameters, &op_anc, t);
            if let Some(r) = &op.returns {
                self.type_rules(doc, r, t);
            }
        }
    }

    fn parameters(
        &mut self,
        doc: usize,
        params: &[Parameter],
        anc: &[(Loc, &[Annotation])],
        t: &Tables,
    ) {
        let mut seen: HashMap<&str, Span> = HashMap::new();
        let file = self.file_name(doc);
        for p in params {
            if let Some(first) = seen.get(p.name.value.as_str()) {
                self.error(
                    doc,
                    "duplicate",
                    p.name.span,
                    format!("the parameter `{}` is defined more than once", p.name.value),
                )
                .labels
                .push(crate::diagnostic::Label {
                    file: file.clone(),
                    span: *first,
                    message: "first defined here".into(),
                });
            } else {
                seen.insert(&p.name.value, p.name.span);
            }
            self.type_rules(doc, &p.ty, t);
            if let Some(v) = &p.default {
                self.default_value(doc, &p.ty, v, t);
            }
            self.annotations(doc, Loc::Parameter, &p.annotations, anc, t);
        }
    }

    fn directive_def(&mut self, doc: usize, d: &Directive, t: &Tables) {
        self.parameters(doc, &d.parameters, &[], t);
        let mut seen = HashSet::new();
        for loc in &d.locations {
            if !DIRECTIVE_LOCATIONS.contains(&loc.value.as_str()) {
                self.bad_location(doc, loc, false);
            } else if !seen.insert(loc.value.as_str()) {
                self.warning(
                    doc,
                    "duplicate",
                    loc.span,
                    format!("the location `{}` is listed more than once", loc.value),
                );
            }
        }
        for r in &d.requires {
            let known = t.directives[doc].contains_key(&r.directive.value)
                || matches!(r.directive.value.as_str(), "ref" | "reference");
            if !known {
                self.error(
                    doc,
                    "annotation",
                    r.directive.span,
                    format!(
                        "`@{}` is required but no such directive is declared",
                        r.directive.value
                    ),
                );
            }
            for loc in &r.locations {
                if loc.value != "SELF" && !DIRECTIVE_LOCATIONS.contains(&loc.value.as_str()) {
                    self.bad_location(doc, loc, true);
                }
            }
        }
    }

    fn bad_location(&mut self, doc: usize, loc: &Name, allow_self: bool) {
        let mut valid = DIRECTIVE_LOCATIONS.join(", ");
        if allow_self {
            valid.push_str(", SELF");
        }
        let suggestion = suggest(&loc.value, DIRECTIVE_LOCATIONS);
        let d = self.error(
            doc,
            "annotation",
            loc.span,
            format!("unknown directive location `{}`", loc.value),
        );
        if let Some(s) = suggestion {
            d.notes.push(format!("help: did you mean `{s}`?"));
        }
        d.notes.push(format!("valid locations: {valid}"));
    }

    // ---- annotations ------------------------------------------------------------------------

    fn annotations(
        &mut self,
        doc: usize,
        loc: Loc,
        anns: &[Annotation],
        anc: &[(Loc, &[Annotation])],
        t: &Tables,
    ) {
        let mut seen: HashMap<&str, Span> = HashMap::new();
        for a in anns {
            if seen.contains_key(a.name.value.as_str()) {
                self.warning(
                    doc,
                    "annotation",
                    a.span,
                    format!("the annotation `@{}` is repeated", a.name.value),
                );
            }
            seen.insert(&a.name.value, a.span);
            let name = a.name.value.as_str();
            if let Some(dref) = t.directives[doc].get(name).copied() {
                self.declared_annotation(doc, loc, a, anns, anc, dref, t);
            } else if name == "ref" || name == "reference" {
                if let Some(arg) = a.arguments.first() {
                    self.error(
                        doc,
                        "annotation",
                        arg.span,
                        format!("`@{name}` takes no arguments"),
                    );
                }
                if !matches!(
                    loc,
                    Loc::Field | Loc::Parameter | Loc::Operation | Loc::Alias
                ) {
                    self.warning(doc, "annotation", a.span, format!("`@{name}` has no effect on {}", loc.name()))
                        .notes
                        .push("`@ref` marks a field, parameter, return type or alias as a string reference".into());
                }
            } else {
                self.warning(doc, "unknown-annotation", a.name.span, format!("unknown annotation `@{name}`"))
                    .notes
                    .push(format!("it is kept but has no meaning; declare it with `directive @{name} on {}` to make it known", loc.name()));
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn declared_annotation(
        &mut self,
        doc: usize,
        loc: Loc,
        a: &Annotation,
        siblings: &[Annotation],
        anc: &[(Loc, &[Annotation])],
        dref: DirectiveRef,
        t: &Tables,
    ) {
        let Some(decl) = directive_of(self.docs, dref) else {
            return;
        };
        let decl_file = self.file_name(dref.doc);
        if !decl.locations.iter().any(|l| l.value == loc.name()) {
            let allowed: Vec<&str> = decl.locations.iter().map(|l| l.value.as_str()).collect();
            self.error(
                doc,
                "annotation",
                a.span,
                format!(
                    "`@{}` cannot be used on {}; it is declared for {}",
                    a.name.value,
                    loc.name(),
                    allowed.join(" | ")
                ),
            )
            .labels
            .push(crate::diagnostic::Label {
                file: decl_file.clone(),
                span: decl.name.span,
                message: "declared here".into(),
            });
        }
        let mut given = HashSet::new();
        for arg in &a.arguments {
            if !given.insert(arg.name.value.as_str()) {
                self.error(
                    doc,
                    "annotation",
                    arg.span,
                    format!("the argument `{}` is given more than once", arg.name.value),
                );
                continue;
            }
            match decl
                .parameters
                .iter()
                .find(|p| p.name.value == arg.name.value)
            {
                Some(p) => {
                    if let Some(problem) = self.value_problem(&p.ty, &arg.value, t, 0) {
                        self.error(
                            doc,
                            "annotation",
                            arg.value.span,
                            format!(
                                "invalid value for `{}` of `@{}`: {problem}",
                                arg.name.value, a.name.value
                            ),
                        );
                    }
                }
                None => {
                    let names: Vec<&str> = decl
                        .parameters
                        .iter()
                        .map(|p| p.name.value.as_str())
                        .collect();
                    let d = self.error(
                        doc,
                        "annotation",
                        arg.name.span,
                        format!("`@{}` has no argument `{}`", a.name.value, arg.name.value),
                    );
                    if names.is_empty() {
                        d.notes
                            .push(format!("`@{}` takes no arguments", a.name.value));
                    } else {
                        d.notes
                            .push(format!("its arguments are: {}", names.join(", ")));
                    }
                }
            }
        }
        for p in &decl.parameters {
            if !p.ty.optional && p.default.is_none() && !given.contains(p.name.value.as_str()) {
                self.error(
                    doc,
                    "annotation",
                    a.span,
                    format!(
                        "`@{}` is missing the argument `{}`",
                        a.name.value, p.name.value
                    ),
                );
            }
        }
        for r in &decl.requires {
            let satisfied = r.locations.iter().any(|l| {
                if l.value == "SELF" {
                    siblings.iter().any(|s| s.name.value == r.directive.value)
                } else {
                    anc.iter().any(|(al, anns)| {
                        al.name() == l.value
                            && anns.iter().any(|s| s.name.value == r.directive.value)
                    })
                }
            });
            if !satisfied {
                let where_: Vec<&str> = r.locations.iter().map(|l| l.value.as_str()).collect();
                self.error(
                    doc,
                    "annotation",
                    a.span,
                    format!(
                        "`@{}` requires `@{}` on {}",
                        a.name.value,
                        r.directive.value,
                        where_.join(" | ")
                    ),
                )
                .labels
                .push(crate::diagnostic::Label {
                    file: decl_file.clone(),
                    span: r.span,
                    message: "required here".into(),
                });
            }
        }
    }

    // ---- types and values -------------------------------------------------------------------

    /// Rules on resolved types: map keys (recursively through lists and maps).
    fn type_rules(&mut self, doc: usize, ty: &TypeRef, t: &Tables) {
        match &ty.kind {
            TypeKind::Named { .. } => {}
            TypeKind::List(inner) => self.type_rules(doc, inner, t),
            TypeKind::Map { key, value } => {
                if let Some(problem) = self.map_key_problem(key, t) {
                    self.error(
                        doc,
                        "map-key",
                        key.span,
                        format!("invalid map key type: {problem}"),
                    )
                    .notes
                    .push(
                        "map keys must be `string` or an integer type (or an alias of one)".into(),
                    );
                }
                self.type_rules(doc, key, t);
                self.type_rules(doc, value, t);
            }
        }
    }

    fn map_key_problem(&self, key: &TypeRef, t: &Tables) -> Option<String> {
        let mut current = key.clone();
        for _ in 0..MAX_CHAIN {
            if current.optional {
                return Some("a key cannot be optional".into());
            }
            match &current.kind {
                TypeKind::List(_) => return Some("a list cannot be a key".into()),
                TypeKind::Map { .. } => return Some("a map cannot be a key".into()),
                TypeKind::Named { name, resolved } => match resolved {
                    None => return None,
                    Some(Resolved::Void) => return None,
                    Some(Resolved::Builtin(b)) => {
                        return if *b == Builtin::String || b.is_integer() {
                            None
                        } else {
                            Some(format!("`{}` cannot be a key", name.value))
                        };
                    }
                    Some(Resolved::Defined(d)) => match self.alias_target(d, t) {
                        Some(target) => current = target.clone(),
                        None if d.kind == DefKind::Alias => return None,
                        None => return Some(format!("`{}` is {}", name.value, kind_name(d.kind))),
                    },
                },
            }
        }
        None
    }

    fn definition(&self, d: &DefRef, t: &Tables) -> Option<&'a Definition> {
        let (doc, def) = t.defs.get(&(d.file.clone(), d.name.clone()))?;
        self.docs.get(*doc)?.definitions.get(*def)
    }

    fn alias_target(&self, d: &DefRef, t: &Tables) -> Option<&'a TypeRef> {
        match self.definition(d, t) {
            Some(Definition::Alias(a)) => a.target.as_ref(),
            _ => None,
        }
    }

    fn alias_cycle(&mut self, doc: usize, alias: &Alias, t: &Tables) {
        let start = DefRef {
            file: self.file_name(doc),
            name: alias.name.value.clone(),
            kind: DefKind::Alias,
        };
        let mut current = alias.target.clone();
        let mut steps = 0;
        while let Some(ty) = current {
            let Some(Resolved::Defined(d)) = ty.resolved() else {
                return;
            };
            if *d == start || steps > MAX_CHAIN {
                self.error(
                    doc,
                    "alias-cycle",
                    alias.name.span,
                    format!("the alias `{}` refers to itself", alias.name.value),
                );
                return;
            }
            steps += 1;
            current = self.alias_target(d, t).cloned();
        }
    }

    fn default_value(&mut self, doc: usize, ty: &TypeRef, v: &Value, t: &Tables) {
        if let Some(problem) = self.value_problem(ty, v, t, 0) {
            self.error(
                doc,
                "default-value",
                v.span,
                format!("invalid default value: {problem}"),
            );
        }
    }

    /// Why `v` does not fit `ty`, if it does not. Unresolved types accept anything (they
    /// are already reported).
    fn value_problem(&self, ty: &TypeRef, v: &Value, t: &Tables, depth: usize) -> Option<String> {
        if depth > MAX_CHAIN {
            return None;
        }
        if matches!(v.kind, ValueKind::Null) {
            return (!ty.optional)
                .then(|| "`null` is only allowed for optional types (`T?`)".to_string());
        }
        match &ty.kind {
            TypeKind::List(inner) => match &v.kind {
                ValueKind::List(items) => items
                    .iter()
                    .find_map(|i| self.value_problem(inner, i, t, depth + 1)),
                _ => Some("expected a list `[...]`".into()),
            },
            TypeKind::Map { value, .. } => match &v.kind {
                ValueKind::Object(fields) => fields
                    .iter()
                    .find_map(|f| self.value_problem(value, &f.value, t, depth + 1)),
                _ => Some("expected a map `{key: value}`".into()),
            },
            TypeKind::Named { resolved, .. } => match resolved {
                None | Some(Resolved::Void) => None,
                Some(Resolved::Builtin(b)) => builtin_value_problem(*b, v),
                Some(Resolved::Defined(d)) => match self.definition(d, t) {
                    Some(Definition::Alias(a)) => a
                        .target
                        .as_ref()
                        .and_then(|target| self.value_problem(target, v, t, depth + 1)),
                    Some(Definition::Enum(e)) => match &v.kind {
                        ValueKind::Enum(name) if e.values.iter().any(|x| x.name.value == *name) => {
                            None
                        }
                        ValueKind::Enum(name) => Some(format!(
                            "`{name}` is not a value of the enum `{}`",
                            e.name.value
                        )),
                        _ => Some(format!("expected a value of the enum `{}`", e.name.value)),
                    },
                    Some(Definition::Type(_)) => match &v.kind {
                        ValueKind::Object(_) => None,
                        _ => Some(format!("expected an object for the type `{}`", d.name)),
                    },
                    _ => None,
                },
            },
        }
    }
}

fn builtin_value_problem(b: Builtin, v: &Value) -> Option<String> {
    use Builtin as B;
    match (b, &v.kind) {
        (_, ValueKind::Int(n)) if b.is_integer() => {
            let (lo, hi) = b.integer_range()?;
            (!(lo..=hi).contains(n))
                .then(|| format!("{n} is out of range for this integer type ({lo} to {hi})"))
        }
        (_, _) if b.is_integer() => Some("expected an integer".into()),
        (B::F32 | B::F64, ValueKind::Int(_) | ValueKind::Float(_)) => None,
        (B::F32 | B::F64, _) => Some("expected a number".into()),
        (B::Bool, ValueKind::Bool(_)) => None,
        (B::Bool, _) => Some("expected `true` or `false`".into()),
        (B::String | B::Datetime | B::Bytes, ValueKind::String(_)) => None,
        (B::String | B::Datetime | B::Bytes, _) => Some("expected a string".into()),
        (B::Raw | B::Value, _) => None,
        _ => None,
    }
}

fn directive_of(docs: &[Document], d: DirectiveRef) -> Option<&Directive> {
    match docs.get(d.doc)?.definitions.get(d.def)? {
        Definition::Directive(dir) => Some(dir),
        _ => None,
    }
}

fn kind_name(kind: DefKind) -> &'static str {
    match kind {
        DefKind::Type => "a type",
        DefKind::Enum => "an enum",
        DefKind::Union => "a union",
        DefKind::Alias => "an alias",
        DefKind::Scalar => "an opaque scalar",
    }
}

fn same_type(a: &TypeRef, b: &TypeRef) -> bool {
    match (&a.kind, &b.kind) {
        (TypeKind::Named { name: x, .. }, TypeKind::Named { name: y, .. }) => {
            x.value == y.value && a.optional == b.optional
        }
        _ => false,
    }
}

fn is_pascal_case(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_uppercase()) && !name.contains('_')
}

/// The closest candidate within an edit distance of about a third of the name.
fn suggest<'c>(name: &str, candidates: &[&'c str]) -> Option<&'c str> {
    let limit = (name.chars().count().div_ceil(3)).max(1);
    candidates
        .iter()
        .filter(|c| **c != name)
        .map(|c| (edit_distance(&name.to_lowercase(), &c.to_lowercase()), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, c)| (*d, *c))
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}
