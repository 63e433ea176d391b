//! A hand-written recursive-descent parser for the grammar of `@wapc/widl` v0.0.12, with
//! error recovery: a broken member skips to the next line of its block and a broken
//! definition skips to the next top-level keyword, so one run reports independent mistakes.

use std::sync::Arc;

use crate::ast::*;
use crate::diagnostic::Diagnostic;
use crate::lexer::{Tok, Token, lex};
use crate::span::{SourceFile, Span};

/// Marker: parsing failed and the diagnostic has already been recorded.
#[derive(Debug, Clone, Copy)]
struct Fail;

type PResult<T> = Result<T, Fail>;

/// Parse errors reported per file before the parser gives up on the rest of the file.
const MAX_ERRORS: usize = 100;
/// Deepest nesting of `[`/`{` in type references and values; deeper input is rejected
/// instead of risking stack exhaustion.
const MAX_NESTING: usize = 64;

/// Keywords that start a top-level definition.
const TOP_LEVEL: &[&str] = &[
    "namespace",
    "import",
    "alias",
    "scalar",
    "interface",
    "role",
    "type",
    "union",
    "enum",
    "directive",
];

/// Parses one file. See [`crate::parse`].
pub(crate) fn parse_file(file: &SourceFile) -> (Option<Document>, Vec<Diagnostic>) {
    let lexed = lex(file);
    let mut p = Parser {
        file,
        tokens: lexed.tokens,
        strings: lexed.strings,
        pos: 0,
        depth: 0,
        nesting: 0,
        errors: 0,
        diags: lexed.diagnostics,
        item_start: 0,
    };
    let definitions = p.document();
    let mut diags = p.diags;
    diags.sort_by_key(|d| d.span.start);
    let span = Span::new(0, file.text().len());
    if definitions.is_empty() {
        if !diags.iter().any(Diagnostic::is_error) {
            diags.push(Diagnostic::error(
                "syntax",
                file,
                Span::new(span.end, span.end),
                "expected at least one definition",
            ));
        }
        return (None, diags);
    }
    let document = Document {
        file: file.name().to_string(),
        source: Arc::from(file.text()),
        definitions,
        span,
    };
    (Some(document), diags)
}

struct Parser<'a> {
    file: &'a SourceFile,
    tokens: Vec<Token>,
    strings: Vec<String>,
    pos: usize,
    /// Open delimiters consumed and not yet closed; recovery uses it to find its own `}`.
    depth: usize,
    /// Current recursion depth of type references and values.
    nesting: usize,
    errors: usize,
    diags: Vec<Diagnostic>,
    /// Token index where the current definition or list item began: an error right there
    /// points at the token itself, not after the previous one.
    item_start: usize,
}

impl<'a> Parser<'a> {
    // ---- token access -------------------------------------------------------------------

    fn tok(&self) -> Token {
        self.nth(0)
    }

    fn nth(&self, n: usize) -> Token {
        let last = self.tokens.len().saturating_sub(1);
        self.tokens
            .get((self.pos + n).min(last))
            .copied()
            .unwrap_or(Token {
                kind: Tok::Eof,
                span: Span::default(),
                line_start: true,
                string: 0,
            })
    }

    fn token_at(&self, index: usize) -> Option<Token> {
        self.tokens.get(index).copied()
    }

    fn at(&self, kind: Tok) -> bool {
        self.tok().kind == kind
    }

    fn text(&self, span: Span) -> &'a str {
        self.file.text().get(span.range()).unwrap_or("")
    }

    fn is_keyword(&self, t: Token, keyword: &str) -> bool {
        t.kind == Tok::Name && self.text(t.span) == keyword
    }

    fn at_keyword(&self, keyword: &str) -> bool {
        self.is_keyword(self.tok(), keyword)
    }

    fn bump(&mut self) -> Token {
        let t = self.tok();
        if t.kind != Tok::Eof {
            match t.kind {
                Tok::LBrace | Tok::LParen | Tok::LBracket => self.depth += 1,
                Tok::RBrace | Tok::RParen | Tok::RBracket => {
                    self.depth = self.depth.saturating_sub(1)
                }
                _ => {}
            }
            self.pos += 1;
        }
        t
    }

    fn prev_end(&self) -> usize {
        if self.pos == 0 {
            0
        } else {
            self.token_at(self.pos - 1).map_or(0, |t| t.span.end)
        }
    }

    fn string_value(&self, t: Token) -> String {
        self.strings
            .get(t.string as usize)
            .cloned()
            .unwrap_or_default()
    }

    // ---- diagnostics --------------------------------------------------------------------

    fn error_at(&mut self, span: Span, message: impl Into<String>) -> Fail {
        self.push_error(Diagnostic::error("syntax", self.file, span, message))
    }

    fn push_error(&mut self, diag: Diagnostic) -> Fail {
        self.errors += 1;
        if self.errors <= MAX_ERRORS {
            self.diags.push(diag);
        }
        Fail
    }

    /// "expected X, found Y". When the offending token starts a new line (or is the end of
    /// file) the error points just after the previous token, where the missing piece
    /// belongs, as rustc does.
    fn expected(&mut self, what: &str) -> Fail {
        let t = self.tok();
        if (t.line_start || t.kind == Tok::Eof) && self.pos > 0 && self.pos != self.item_start {
            let end = self.prev_end();
            let found = self.describe(t);
            let diag = Diagnostic::error(
                "syntax",
                self.file,
                Span::new(end, end),
                format!("expected {what}, found {found}"),
            )
            .with_primary_label(format!("expected {what}"));
            self.push_error(diag)
        } else {
            let found = self.describe(t);
            let diag = Diagnostic::error(
                "syntax",
                self.file,
                t.span,
                format!("expected {what}, found {found}"),
            )
            .with_primary_label("unexpected token");
            self.push_error(diag)
        }
    }

    fn describe(&self, t: Token) -> String {
        match t.kind {
            Tok::Name => format!("`{}`", self.text(t.span)),
            Tok::Int | Tok::Float => format!("`{}`", self.text(t.span)),
            k => k.describe().to_string(),
        }
    }

    fn expect(&mut self, kind: Tok) -> PResult<Token> {
        if self.at(kind) {
            Ok(self.bump())
        } else {
            Err(self.expected(kind.describe()))
        }
    }

    fn expect_keyword(&mut self, keyword: &str) -> PResult<Token> {
        if self.at_keyword(keyword) {
            Ok(self.bump())
        } else {
            Err(self.expected(&format!("`{keyword}`")))
        }
    }

    fn name(&mut self, what: &str) -> PResult<Name> {
        if self.at(Tok::Name) {
            let t = self.bump();
            Ok(Name {
                value: self.text(t.span).to_string(),
                span: t.span,
            })
        } else {
            Err(self.expected(what))
        }
    }

    fn name_or_string(&mut self, what: &str) -> PResult<Name> {
        match self.tok().kind {
            Tok::Str | Tok::BlockStr => {
                let t = self.bump();
                Ok(Name {
                    value: self.string_value(t),
                    span: t.span,
                })
            }
            _ => self.name(what),
        }
    }

    // ---- recovery -----------------------------------------------------------------------

    /// Does the token at `index` start a top-level definition? Used at line starts to find
    /// where to resume, and to notice a block whose `}` is missing.
    fn starts_top_level(&self, index: usize) -> bool {
        let Some(t) = self.token_at(index) else {
            return false;
        };
        if matches!(t.kind, Tok::Str | Tok::BlockStr) {
            return self.keyword_starts_top_level(index + 1);
        }
        self.keyword_starts_top_level(index)
    }

    fn keyword_starts_top_level(&self, index: usize) -> bool {
        let (Some(t), Some(next)) = (self.token_at(index), self.token_at(index + 1)) else {
            return false;
        };
        if t.kind != Tok::Name {
            return false;
        }
        match self.text(t.span) {
            "namespace" => matches!(next.kind, Tok::Str | Tok::Name),
            "import" => matches!(next.kind, Tok::Star | Tok::LBrace),
            "alias" => matches!(next.kind, Tok::Name | Tok::Str),
            "type" | "role" | "enum" | "union" | "scalar" => next.kind == Tok::Name,
            "directive" => next.kind == Tok::At,
            "interface" => match next.kind {
                Tok::At => true,
                // `interface{p: T}` would be a unary operation called `interface`.
                Tok::LBrace => !matches!(
                    (self.token_at(index + 2), self.token_at(index + 3)),
                    (Some(a), Some(b)) if a.kind == Tok::Name && b.kind == Tok::Colon
                ),
                _ => false,
            },
            _ => false,
        }
    }

    /// Does a line starting at `index` look like an operation (`Name(` or `Name{`), so a
    /// parameter list that reaches it was never closed?
    fn starts_operation(&self, index: usize) -> bool {
        let index = match self.token_at(index) {
            Some(t) if matches!(t.kind, Tok::Str | Tok::BlockStr) => index + 1,
            _ => index,
        };
        matches!(
            (self.token_at(index), self.token_at(index + 1)),
            (Some(a), Some(b)) if a.kind == Tok::Name && matches!(b.kind, Tok::LParen | Tok::LBrace)
        )
    }

    /// After a failed top-level definition: skip to the next line that starts one.
    fn recover_top(&mut self, start: usize) {
        loop {
            let t = self.tok();
            if t.kind == Tok::Eof
                || (t.line_start && self.pos > start && self.starts_top_level(self.pos))
            {
                break;
            }
            self.bump();
        }
        self.depth = 0;
    }

    /// After a failed list item: skip to the next line at this list's level, or to its
    /// closing delimiter. Unclosed delimiters of the broken item are forgotten at the line
    /// break, so one unbalanced `[` does not swallow the rest of the block.
    fn recover_item(&mut self, start: usize, close: Tok, list_depth: usize) {
        loop {
            let t = self.tok();
            if t.kind == Tok::Eof {
                return;
            }
            if t.line_start && self.pos > start {
                self.depth = list_depth;
                return;
            }
            if t.kind == close && self.depth == list_depth {
                return;
            }
            self.bump();
        }
    }

    /// Parses `item`s until `close`, after the opening token `open` has been consumed.
    /// Returns the items, the end offset and whether the closing delimiter was found. A
    /// missing closer is reported once (pointing at the opener) when a line starts
    /// something that cannot belong to this list.
    fn list<T>(
        &mut self,
        open: Token,
        close: Tok,
        foreign: fn(&Self, usize) -> bool,
        mut item: impl FnMut(&mut Self) -> PResult<T>,
    ) -> (Vec<T>, usize, bool) {
        let list_depth = self.depth;
        let mut items = Vec::new();
        loop {
            if self.errors >= MAX_ERRORS {
                return (items, self.prev_end(), false);
            }
            let t = self.tok();
            if t.kind == close {
                self.bump();
                return (items, t.span.end, true);
            }
            let other_closer =
                matches!(t.kind, Tok::RBrace | Tok::RParen | Tok::RBracket) && t.line_start;
            if t.kind == Tok::Eof
                || (t.line_start && (self.starts_top_level(self.pos) || foreign(self, self.pos)))
                || other_closer
            {
                self.unclosed(open, close);
                self.depth = list_depth.saturating_sub(1);
                return (items, self.prev_end(), false);
            }
            let start = self.pos;
            self.item_start = start;
            match item(self) {
                Ok(v) => items.push(v),
                Err(Fail) => self.recover_item(start, close, list_depth),
            }
        }
    }

    fn unclosed(&mut self, open: Token, close: Tok) {
        let end = self.prev_end();
        let opener = open.kind.describe();
        let diag = Diagnostic::error(
            "syntax",
            self.file,
            Span::new(end, end),
            format!(
                "expected {} to close the {opener} opened here",
                close.describe()
            ),
        )
        .with_primary_label(format!("expected {}", close.describe()))
        .with_label(self.file.name(), open.span, format!("unclosed {opener}"));
        self.push_error(diag);
    }

    // ---- document -----------------------------------------------------------------------

    fn document(&mut self) -> Vec<Definition> {
        let mut definitions = Vec::new();
        while !self.at(Tok::Eof) {
            if self.errors >= MAX_ERRORS {
                let end = self.file.text().len();
                self.diags.push(Diagnostic::error(
                    "syntax",
                    self.file,
                    Span::new(end, end),
                    format!(
                        "too many syntax errors ({MAX_ERRORS}); the rest of the file was not parsed"
                    ),
                ));
                break;
            }
            let start = self.pos;
            self.item_start = start;
            match self.definition() {
                Ok(d) => definitions.push(d),
                Err(Fail) => self.recover_top(start),
            }
        }
        definitions
    }

    fn description(&mut self) -> Option<Description> {
        match self.tok().kind {
            Tok::Str | Tok::BlockStr => {
                let t = self.bump();
                Some(Description {
                    value: self.string_value(t),
                    span: t.span,
                })
            }
            _ => None,
        }
    }

    fn definition(&mut self) -> PResult<Definition> {
        let description = self.description();
        let start = description
            .as_ref()
            .map_or(self.tok().span.start, |d| d.span.start);
        let t = self.tok();
        let keyword = if t.kind == Tok::Name {
            self.text(t.span)
        } else {
            ""
        };
        if !TOP_LEVEL.contains(&keyword) {
            let what = "a definition (`namespace`, `import`, `type`, `enum`, `union`, `alias`, `role`, `interface` or `directive`)";
            return Err(self.expected(what));
        }
        self.bump();
        let d = match keyword {
            "namespace" => Definition::Namespace(self.namespace(description, start)?),
            "import" => Definition::Import(self.import(description, start)?),
            "alias" => Definition::Alias(self.alias(description, start, AliasForm::Alias)?),
            "scalar" => Definition::Alias(self.alias(description, start, AliasForm::Scalar)?),
            "interface" => Definition::Interface(self.interface(description, start)?),
            "role" => Definition::Role(self.role(description, start)?),
            "type" => Definition::Type(self.type_def(description, start)?),
            "union" => Definition::Union(self.union(description, start)?),
            "enum" => Definition::Enum(self.enum_def(description, start)?),
            _ => Definition::Directive(self.directive(description, start)?),
        };
        Ok(d)
    }

    fn namespace(&mut self, description: Option<Description>, start: usize) -> PResult<Namespace> {
        let name = self.name_or_string("a namespace (a string or a name)")?;
        let annotations = self.annotations()?;
        Ok(Namespace {
            description,
            name,
            annotations,
            span: Span::new(start, self.prev_end()),
        })
    }

    fn import(&mut self, description: Option<Description>, start: usize) -> PResult<Import> {
        let items = if self.at(Tok::Star) {
            ImportItems::All(self.bump().span)
        } else if self.at(Tok::LBrace) {
            let open = self.bump();
            let mut names = Vec::new();
            while !self.at(Tok::RBrace) {
                let name = self.name("a name to import or `}`")?;
                let alias = if self.at_keyword("as") && self.nth(1).kind == Tok::Name {
                    self.bump();
                    Some(self.name("a name after `as`")?)
                } else {
                    None
                };
                let end = alias.as_ref().map_or(name.span, |a| a.span);
                names.push(ImportName {
                    span: name.span.to(end),
                    name,
                    alias,
                });
            }
            let close = self.bump();
            if names.is_empty() {
                return Err(self.error_at(
                    open.span.to(close.span),
                    "an import list must name at least one definition",
                ));
            }
            ImportItems::Names(names)
        } else {
            return Err(self.expected("`*` or `{`"));
        };
        self.expect_keyword("from")?;
        let from = match self.tok().kind {
            Tok::Str | Tok::BlockStr => {
                let t = self.bump();
                StringLit {
                    value: self.string_value(t),
                    span: t.span,
                }
            }
            _ => return Err(self.expected("a file name string")),
        };
        let annotations = self.annotations()?;
        Ok(Import {
            description,
            items,
            from,
            annotations,
            span: Span::new(start, self.prev_end()),
        })
    }

    fn alias(
        &mut self,
        description: Option<Description>,
        start: usize,
        form: AliasForm,
    ) -> PResult<Alias> {
        let name = match form {
            AliasForm::Alias => self.name_or_string("an alias name")?,
            AliasForm::Scalar => self.name("a scalar name")?,
        };
        let target = if form == AliasForm::Alias || self.at(Tok::Equals) {
            self.expect(Tok::Equals)?;
            Some(self.type_ref()?)
        } else {
            None
        };
        let annotations = self.annotations()?;
        Ok(Alias {
            description,
            form,
            name,
            target,
            annotations,
            span: Span::new(start, self.prev_end()),
        })
    }

    fn interface(&mut self, description: Option<Description>, start: usize) -> PResult<Interface> {
        let annotations = self.annotations()?;
        let open = self.expect(Tok::LBrace)?;
        let (operations, end, _) = self.list(open, Tok::RBrace, |_, _| false, |p| p.operation());
        Ok(Interface {
            description,
            annotations,
            operations,
            span: Span::new(start, end),
        })
    }

    fn role(&mut self, description: Option<Description>, start: usize) -> PResult<Role> {
        let name = self.name("a role name")?;
        let annotations = self.annotations()?;
        let open = self.expect(Tok::LBrace)?;
        let (operations, end, _) = self.list(open, Tok::RBrace, |_, _| false, |p| p.operation());
        Ok(Role {
            description,
            name,
            annotations,
            operations,
            span: Span::new(start, end),
        })
    }

    fn type_def(&mut self, description: Option<Description>, start: usize) -> PResult<TypeDef> {
        let name = self.name("a type name")?;
        let mut implements = Vec::new();
        if self.at_keyword("implements") {
            self.bump();
            if self.at(Tok::Amp) {
                self.bump();
            }
            implements.push(self.name("a type name after `implements`")?);
            while self.at(Tok::Amp) {
                self.bump();
                implements.push(self.name("a type name after `&`")?);
            }
        }
        let annotations = self.annotations()?;
        let open = self.expect(Tok::LBrace)?;
        let (fields, end, _) = self.list(open, Tok::RBrace, |_, _| false, |p| p.field());
        Ok(TypeDef {
            description,
            name,
            implements,
            annotations,
            fields,
            span: Span::new(start, end),
        })
    }

    fn union(&mut self, description: Option<Description>, start: usize) -> PResult<Union> {
        let name = self.name("a union name")?;
        let annotations = self.annotations()?;
        self.expect(Tok::Equals)?;
        if self.at(Tok::Pipe) {
            self.bump();
        }
        let mut members = vec![self.type_ref()?];
        while self.at(Tok::Pipe) {
            self.bump();
            members.push(self.type_ref()?);
        }
        Ok(Union {
            description,
            name,
            annotations,
            members,
            span: Span::new(start, self.prev_end()),
        })
    }

    fn enum_def(&mut self, description: Option<Description>, start: usize) -> PResult<Enum> {
        let name = self.name("an enum name")?;
        let annotations = self.annotations()?;
        let open = self.expect(Tok::LBrace)?;
        let (values, end, _) = self.list(open, Tok::RBrace, |_, _| false, |p| p.enum_value());
        Ok(Enum {
            description,
            name,
            annotations,
            values,
            span: Span::new(start, end),
        })
    }

    fn enum_value(&mut self) -> PResult<EnumValue> {
        let description = self.description();
        let name = self.name("an enum value name")?;
        let start = description
            .as_ref()
            .map_or(name.span.start, |d| d.span.start);
        self.expect(Tok::Equals)?;
        if !self.at(Tok::Int) {
            return Err(self.expected("an integer index"));
        }
        let t = self.bump();
        let index = match self.text(t.span).parse::<i128>() {
            Ok(v) => v,
            Err(_) => return Err(self.error_at(t.span, "enum index is too large")),
        };
        let display = if self.at_keyword("as") {
            self.bump();
            match self.tok().kind {
                Tok::Str | Tok::BlockStr => {
                    let s = self.bump();
                    Some((
                        StringLit {
                            value: self.string_value(s),
                            span: s.span,
                        },
                        DisplayForm::As,
                    ))
                }
                _ => return Err(self.expected("a display string after `as`")),
            }
        } else if self.at(Tok::Str) && !self.tok().line_start {
            // The bare form `= 0 "X"`; a string on the next line is the next description.
            let s = self.bump();
            Some((
                StringLit {
                    value: self.string_value(s),
                    span: s.span,
                },
                DisplayForm::Bare,
            ))
        } else {
            None
        };
        let annotations = self.annotations()?;
        Ok(EnumValue {
            description,
            name,
            index,
            index_span: t.span,
            display,
            annotations,
            span: Span::new(start, self.prev_end()),
        })
    }

    fn directive(&mut self, description: Option<Description>, start: usize) -> PResult<Directive> {
        self.expect(Tok::At)?;
        let name = self.name("a directive name")?;
        let mut parameters = Vec::new();
        if self.at(Tok::LParen) {
            let open = self.bump();
            let (params, _, closed) =
                self.list(open, Tok::RParen, |_, _| false, |p| p.parameter(false));
            if !closed {
                return Err(Fail);
            }
            parameters = params;
        }
        self.expect_keyword("on")?;
        let locations = self.locations()?;
        let mut requires = Vec::new();
        if self.at_keyword("require") {
            self.bump();
            loop {
                let at = self.expect(Tok::At)?;
                let directive = self.name("a directive name")?;
                self.expect_keyword("on")?;
                let locations = self.locations()?;
                requires.push(DirectiveRequire {
                    directive,
                    locations,
                    span: Span::new(at.span.start, self.prev_end()),
                });
                if !self.at(Tok::At) {
                    break;
                }
            }
        }
        Ok(Directive {
            description,
            name,
            parameters,
            locations,
            requires,
            span: Span::new(start, self.prev_end()),
        })
    }

    fn locations(&mut self) -> PResult<Vec<Name>> {
        if self.at(Tok::Pipe) {
            self.bump();
        }
        let mut locations = vec![self.name("a location (`FIELD`, `TYPE`, ...)")?];
        while self.at(Tok::Pipe) {
            self.bump();
            locations.push(self.name("a location after `|`")?);
        }
        Ok(locations)
    }

    // ---- members ------------------------------------------------------------------------

    fn field(&mut self) -> PResult<Field> {
        let description = self.description();
        let name = self.name("a field name")?;
        let start = description
            .as_ref()
            .map_or(name.span.start, |d| d.span.start);
        self.expect(Tok::Colon)?;
        let ty = self.type_ref()?;
        let default = self.default_value()?;
        let annotations = self.annotations()?;
        Ok(Field {
            description,
            name,
            ty,
            default,
            annotations,
            span: Span::new(start, self.prev_end()),
        })
    }

    fn default_value(&mut self) -> PResult<Option<Value>> {
        if self.at(Tok::Equals) {
            self.bump();
            Ok(Some(self.value()?))
        } else {
            Ok(None)
        }
    }

    /// `stream` is a keyword only when a type follows on the same line; otherwise it is
    /// an ordinary type name.
    fn stream_keyword(&mut self) -> bool {
        let next = self.nth(1);
        if self.at_keyword("stream")
            && !next.line_start
            && matches!(next.kind, Tok::Name | Tok::LBracket | Tok::LBrace)
        {
            self.bump();
            true
        } else {
            false
        }
    }

    fn parameter(&mut self, allow_stream: bool) -> PResult<Parameter> {
        let description = self.description();
        let name = self.name("a parameter name")?;
        let start = description
            .as_ref()
            .map_or(name.span.start, |d| d.span.start);
        self.expect(Tok::Colon)?;
        let stream_start = self.tok().span;
        let stream = self.stream_keyword();
        if stream && !allow_stream {
            return Err(self.error_at(
                stream_start,
                "`stream` is only allowed on the parameter of a unary operation `Op{p: stream T}` or on a return type",
            ));
        }
        let ty = self.type_ref()?;
        let default = self.default_value()?;
        let annotations = self.annotations()?;
        Ok(Parameter {
            description,
            name,
            ty,
            stream,
            default,
            annotations,
            span: Span::new(start, self.prev_end()),
        })
    }

    fn operation(&mut self) -> PResult<Operation> {
        let description = self.description();
        let name = self.name("an operation name")?;
        let start = description
            .as_ref()
            .map_or(name.span.start, |d| d.span.start);
        let (kind, parameters) = match self.tok().kind {
            Tok::LParen => {
                let open = self.bump();
                let (params, _, closed) =
                    self.list(open, Tok::RParen, Self::starts_operation, |p| {
                        p.parameter(false)
                    });
                if !closed {
                    return Err(Fail);
                }
                (OperationKind::Function, params)
            }
            Tok::LBrace => {
                self.bump();
                let param = self.parameter(true)?;
                self.expect(Tok::RBrace).inspect_err(|_| {
                    if let Some(d) = self.diags.last_mut() {
                        d.notes.push(
                            "a unary operation `Op{p: T}` takes exactly one parameter; use `Op(a: T, b: U)` for several".into(),
                        );
                    }
                })?;
                (OperationKind::Unary, vec![param])
            }
            _ => return Err(self.expected("`(` or `{` after the operation name")),
        };
        let mut returns = None;
        let mut stream = false;
        if self.at(Tok::Colon) {
            self.bump();
            stream = self.stream_keyword();
            returns = Some(self.type_ref()?);
        }
        let annotations = self.annotations()?;
        Ok(Operation {
            description,
            name,
            kind,
            parameters,
            returns,
            stream,
            annotations,
            span: Span::new(start, self.prev_end()),
        })
    }

    // ---- annotations, types, values -----------------------------------------------------

    fn annotations(&mut self) -> PResult<Vec<Annotation>> {
        let mut out = Vec::new();
        while self.at(Tok::At) {
            let at = self.bump();
            let name = self.name("an annotation name after `@`")?;
            let mut arguments = Vec::new();
            if self.at(Tok::LParen) {
                let open = self.bump();
                loop {
                    match self.tok().kind {
                        Tok::RParen => {
                            self.bump();
                            break;
                        }
                        Tok::Eof => {
                            self.unclosed(open, Tok::RParen);
                            return Err(Fail);
                        }
                        _ => arguments.push(self.argument()?),
                    }
                }
            }
            out.push(Annotation {
                name,
                arguments,
                span: Span::new(at.span.start, self.prev_end()),
            });
        }
        Ok(out)
    }

    fn argument(&mut self) -> PResult<Argument> {
        if self.at(Tok::Name) && self.nth(1).kind == Tok::Colon {
            let name = self.name("an argument name")?;
            self.bump();
            let value = self.value()?;
            Ok(Argument {
                span: name.span.to(value.span),
                name,
                implicit: false,
                value,
            })
        } else {
            let value = self.value()?;
            Ok(Argument {
                name: Name {
                    value: "value".to_string(),
                    span: value.span,
                },
                implicit: true,
                span: value.span,
                value,
            })
        }
    }

    fn enter(&mut self) -> PResult<()> {
        if self.nesting >= MAX_NESTING {
            let span = self.tok().span;
            return Err(self.error_at(
                span,
                format!("nesting is too deep (more than {MAX_NESTING} levels)"),
            ));
        }
        self.nesting += 1;
        Ok(())
    }

    fn type_ref(&mut self) -> PResult<TypeRef> {
        self.enter()?;
        let result = self.type_ref_inner();
        self.nesting -= 1;
        result
    }

    fn type_ref_inner(&mut self) -> PResult<TypeRef> {
        let t = self.tok();
        let kind = match t.kind {
            // A name at the start of a line followed by `:`, `(` or `{` begins the next
            // field or operation: the type is missing, rather than written on the next line.
            Tok::Name
                if t.line_start
                    && matches!(self.nth(1).kind, Tok::Colon | Tok::LParen | Tok::LBrace) =>
            {
                return Err(self.expected("a type"));
            }
            Tok::Name => {
                self.bump();
                TypeKind::Named {
                    name: Name {
                        value: self.text(t.span).to_string(),
                        span: t.span,
                    },
                    resolved: None,
                }
            }
            Tok::LBracket => {
                self.bump();
                let inner = self.type_ref()?;
                self.expect(Tok::RBracket)?;
                TypeKind::List(Box::new(inner))
            }
            Tok::LBrace => {
                self.bump();
                let key = self.type_ref()?;
                self.expect(Tok::Colon)?;
                let value = self.type_ref()?;
                self.expect(Tok::RBrace)?;
                TypeKind::Map {
                    key: Box::new(key),
                    value: Box::new(value),
                }
            }
            _ => return Err(self.expected("a type")),
        };
        let optional = if self.at(Tok::Question) {
            self.bump();
            true
        } else {
            false
        };
        Ok(TypeRef {
            kind,
            optional,
            span: Span::new(t.span.start, self.prev_end()),
        })
    }

    fn value(&mut self) -> PResult<Value> {
        self.enter()?;
        let result = self.value_inner();
        self.nesting -= 1;
        result
    }

    fn value_inner(&mut self) -> PResult<Value> {
        let t = self.tok();
        let kind = match t.kind {
            Tok::Int => {
                self.bump();
                match self.text(t.span).parse::<i128>() {
                    Ok(v) => ValueKind::Int(v),
                    Err(_) => return Err(self.error_at(t.span, "integer literal is too large")),
                }
            }
            Tok::Float => {
                self.bump();
                match self.text(t.span).parse::<f64>() {
                    Ok(v) => ValueKind::Float(v),
                    Err(_) => return Err(self.error_at(t.span, "invalid float literal")),
                }
            }
            Tok::Str | Tok::BlockStr => {
                self.bump();
                ValueKind::String(self.string_value(t))
            }
            Tok::Name => {
                self.bump();
                match self.text(t.span) {
                    "true" => ValueKind::Bool(true),
                    "false" => ValueKind::Bool(false),
                    "null" => ValueKind::Null,
                    other => ValueKind::Enum(other.to_string()),
                }
            }
            Tok::LBracket => {
                let open = self.bump();
                let mut items = Vec::new();
                loop {
                    match self.tok().kind {
                        Tok::RBracket => {
                            self.bump();
                            break;
                        }
                        Tok::Eof => {
                            self.unclosed(open, Tok::RBracket);
                            return Err(Fail);
                        }
                        _ => items.push(self.value()?),
                    }
                }
                ValueKind::List(items)
            }
            Tok::LBrace => {
                let open = self.bump();
                let mut fields = Vec::new();
                loop {
                    match self.tok().kind {
                        Tok::RBrace => {
                            self.bump();
                            break;
                        }
                        Tok::Eof => {
                            self.unclosed(open, Tok::RBrace);
                            return Err(Fail);
                        }
                        _ => {
                            let name = self.name_or_string("a key")?;
                            self.expect(Tok::Colon)?;
                            let value = self.value()?;
                            fields.push(ObjectField { name, value });
                        }
                    }
                }
                ValueKind::Object(fields)
            }
            _ => return Err(self.expected("a value")),
        };
        Ok(Value {
            kind,
            span: Span::new(t.span.start, self.prev_end()),
        })
    }
}
