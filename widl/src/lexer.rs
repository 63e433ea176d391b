//! The lexer: turns WIDL source into tokens, following the lexical rules of `@wapc/widl`
//! (GraphQL-style names, numbers, strings and block strings; `#` comments; commas and the
//! BOM count as whitespace). It never stops at an error: it reports it and keeps going,
//! producing a best-effort token so the parser sees a plausible stream.

use crate::diagnostic::Diagnostic;
use crate::span::{SourceFile, Span};

/// The kinds of token the parser consumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tok {
    Name,
    Int,
    Float,
    Str,
    BlockStr,
    LBrace,
    RBrace,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Colon,
    Equals,
    Question,
    At,
    Pipe,
    Amp,
    Star,
    Eof,
}

impl Tok {
    /// How the token is shown in "expected ..., found ..." messages.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Tok::Name => "a name",
            Tok::Int => "an integer",
            Tok::Float => "a float",
            Tok::Str => "a string",
            Tok::BlockStr => "a block string",
            Tok::LBrace => "`{`",
            Tok::RBrace => "`}`",
            Tok::LParen => "`(`",
            Tok::RParen => "`)`",
            Tok::LBracket => "`[`",
            Tok::RBracket => "`]`",
            Tok::Colon => "`:`",
            Tok::Equals => "`=`",
            Tok::Question => "`?`",
            Tok::At => "`@`",
            Tok::Pipe => "`|`",
            Tok::Amp => "`&`",
            Tok::Star => "`*`",
            Tok::Eof => "end of file",
        }
    }
}

/// One token. String tokens carry the index of their decoded value in [`Lexed::strings`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Token {
    pub kind: Tok,
    pub span: Span,
    /// True if this is the first token on its line; the parser resynchronises on these.
    pub line_start: bool,
    /// Index into `Lexed::strings` for `Str`/`BlockStr` tokens.
    pub string: u32,
}

/// The lexer's output: tokens (always ending in `Eof`), decoded strings and diagnostics.
pub(crate) struct Lexed {
    pub tokens: Vec<Token>,
    pub strings: Vec<String>,
    pub diagnostics: Vec<Diagnostic>,
}

/// Maximum number of lexical errors reported per file; past it the rest are dropped, so
/// binary garbage does not produce thousands of diagnostics.
const MAX_LEX_ERRORS: usize = 50;

struct Lexer<'a> {
    file: &'a SourceFile,
    src: &'a [u8],
    text: &'a str,
    pos: usize,
    line_start: bool,
    out: Lexed,
    /// Span of a run of unexpected characters not yet reported (merged into one error).
    bad_run: Option<Span>,
}

pub(crate) fn lex(file: &SourceFile) -> Lexed {
    let text = file.text();
    let mut lx = Lexer {
        file,
        src: text.as_bytes(),
        text,
        pos: 0,
        line_start: true,
        out: Lexed {
            tokens: Vec::with_capacity(text.len() / 4),
            strings: Vec::new(),
            diagnostics: Vec::new(),
        },
        bad_run: None,
    };
    lx.run();
    lx.out
}

fn is_name_start(b: u8) -> bool {
    b == b'_' || b.is_ascii_alphabetic()
}

fn is_name_continue(b: u8) -> bool {
    b == b'_' || b.is_ascii_alphanumeric()
}

impl<'a> Lexer<'a> {
    fn peek(&self, ahead: usize) -> Option<u8> {
        self.src.get(self.pos + ahead).copied()
    }

    fn error(&mut self, span: Span, message: impl Into<String>) {
        if self.out.diagnostics.len() < MAX_LEX_ERRORS {
            self.out
                .diagnostics
                .push(Diagnostic::error("syntax", self.file, span, message));
        }
    }

    fn flush_bad_run(&mut self) {
        if let Some(span) = self.bad_run.take() {
            let text = self.text.get(span.range()).unwrap_or("");
            let shown: String = text.chars().take(20).collect();
            let message = if text.chars().count() == 1 {
                format!("unexpected character `{}`", shown.escape_debug())
            } else {
                format!("unexpected characters `{}`", shown.escape_debug())
            };
            self.error(span, message);
        }
    }

    fn push(&mut self, kind: Tok, start: usize, string: u32) {
        self.flush_bad_run();
        let line_start = std::mem::replace(&mut self.line_start, false);
        self.out.tokens.push(Token {
            kind,
            span: Span::new(start, self.pos),
            line_start,
            string,
        });
    }

    fn push_string(&mut self, kind: Tok, start: usize, value: String) {
        let index = u32::try_from(self.out.strings.len()).unwrap_or(u32::MAX);
        self.out.strings.push(value);
        self.push(kind, start, index);
    }

    fn run(&mut self) {
        while let Some(b) = self.peek(0) {
            let start = self.pos;
            match b {
                b'\n' => {
                    self.pos += 1;
                    self.line_start = true;
                }
                b' ' | b'\t' | b'\r' | b',' => self.pos += 1,
                b'#' => {
                    while let Some(c) = self.peek(0) {
                        if c == b'\n' {
                            break;
                        }
                        self.pos += 1;
                    }
                }
                b'{' => self.single(Tok::LBrace),
                b'}' => self.single(Tok::RBrace),
                b'(' => self.single(Tok::LParen),
                b')' => self.single(Tok::RParen),
                b'[' => self.single(Tok::LBracket),
                b']' => self.single(Tok::RBracket),
                b':' => self.single(Tok::Colon),
                b'=' => self.single(Tok::Equals),
                b'?' => self.single(Tok::Question),
                b'@' => self.single(Tok::At),
                b'|' => self.single(Tok::Pipe),
                b'&' => self.single(Tok::Amp),
                b'*' => self.single(Tok::Star),
                b'"' => {
                    if self.peek(1) == Some(b'"') && self.peek(2) == Some(b'"') {
                        self.block_string();
                    } else {
                        self.string();
                    }
                }
                b'-' | b'0'..=b'9' => self.number(),
                b if is_name_start(b) => {
                    while self.peek(0).is_some_and(is_name_continue) {
                        self.pos += 1;
                    }
                    self.push(Tok::Name, start, 0);
                }
                _ => {
                    // The byte-order mark counts as whitespace; anything else is an error.
                    let ch = self.text[self.pos..].chars().next().unwrap_or('\u{FFFD}');
                    self.pos += ch.len_utf8().max(1);
                    if ch != '\u{FEFF}' {
                        let span = Span::new(start, self.pos);
                        self.bad_run = Some(match self.bad_run {
                            Some(run) => run.to(span),
                            None => span,
                        });
                    }
                }
            }
        }
        self.flush_bad_run();
        let end = self.src.len();
        let line_start = self.line_start;
        self.out.tokens.push(Token {
            kind: Tok::Eof,
            span: Span::new(end, end),
            line_start,
            string: 0,
        });
    }

    fn single(&mut self, kind: Tok) {
        let start = self.pos;
        self.pos += 1;
        self.push(kind, start, 0);
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while self.peek(0).is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        self.pos - start
    }

    /// GraphQL number syntax: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
    fn number(&mut self) {
        let start = self.pos;
        if self.peek(0) == Some(b'-') {
            self.pos += 1;
        }
        let int_start = self.pos;
        let n = self.digits();
        if n == 0 {
            self.error(Span::new(start, self.pos), "expected a digit after `-`");
            return;
        }
        if n > 1 && self.src[int_start] == b'0' {
            self.error(
                Span::new(start, self.pos),
                "numbers must not have leading zeros",
            );
        }
        let mut kind = Tok::Int;
        if self.peek(0) == Some(b'.') {
            self.pos += 1;
            kind = Tok::Float;
            if self.digits() == 0 {
                self.error(
                    Span::new(start, self.pos),
                    "expected a digit after the decimal point",
                );
            }
        }
        if matches!(self.peek(0), Some(b'e' | b'E')) {
            self.pos += 1;
            kind = Tok::Float;
            if matches!(self.peek(0), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if self.digits() == 0 {
                self.error(
                    Span::new(start, self.pos),
                    "expected a digit in the exponent",
                );
            }
        }
        if self.peek(0).is_some_and(|b| is_name_start(b) || b == b'.') {
            let bad_start = self.pos;
            while self
                .peek(0)
                .is_some_and(|b| is_name_continue(b) || b == b'.')
            {
                self.pos += 1;
            }
            self.error(
                Span::new(bad_start, self.pos),
                "invalid character after a number",
            );
        }
        self.push(kind, start, 0);
    }

    /// A `"..."` string with JSON escapes. A newline or end of file before the closing
    /// quote is an error; the token still ends there so parsing can continue.
    fn string(&mut self) {
        let start = self.pos;
        self.pos += 1;
        let mut value = String::new();
        loop {
            let Some(b) = self.peek(0) else {
                self.error(Span::new(start, self.pos), "unterminated string");
                break;
            };
            match b {
                b'"' => {
                    self.pos += 1;
                    break;
                }
                b'\n' | b'\r' => {
                    self.error(Span::new(start, self.pos), "unterminated string");
                    break;
                }
                b'\\' => self.escape(&mut value),
                _ => {
                    let ch = self.text[self.pos..].chars().next().unwrap_or('\u{FFFD}');
                    self.pos += ch.len_utf8().max(1);
                    value.push(ch);
                }
            }
        }
        self.push_string(Tok::Str, start, value);
    }

    fn escape(&mut self, value: &mut String) {
        let start = self.pos;
        self.pos += 1;
        let Some(b) = self.peek(0) else {
            self.error(Span::new(start, self.pos), "unterminated escape sequence");
            return;
        };
        self.pos += 1;
        match b {
            b'"' => value.push('"'),
            b'\\' => value.push('\\'),
            b'/' => value.push('/'),
            b'b' => value.push('\u{8}'),
            b'f' => value.push('\u{c}'),
            b'n' => value.push('\n'),
            b'r' => value.push('\r'),
            b't' => value.push('\t'),
            b'u' => {
                let Some(hi) = self.hex4() else {
                    self.error(
                        Span::new(start, self.pos),
                        "invalid unicode escape (expected `\\u` and four hex digits)",
                    );
                    return;
                };
                let code = if (0xD800..0xDC00).contains(&hi)
                    && self.peek(0) == Some(b'\\')
                    && self.peek(1) == Some(b'u')
                {
                    let save = self.pos;
                    self.pos += 2;
                    match self.hex4() {
                        Some(lo) if (0xDC00..0xE000).contains(&lo) => {
                            0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                        }
                        _ => {
                            self.pos = save;
                            hi
                        }
                    }
                } else {
                    hi
                };
                match char::from_u32(code) {
                    Some(c) => value.push(c),
                    None => self.error(
                        Span::new(start, self.pos),
                        "invalid unicode escape (unpaired surrogate)",
                    ),
                }
            }
            _ => {
                // Report the escape; keep the character so the value stays readable.
                let ch = self.text[self.pos - 1..]
                    .chars()
                    .next()
                    .unwrap_or('\u{FFFD}');
                self.pos = self.pos - 1 + ch.len_utf8().max(1);
                self.error(
                    Span::new(start, self.pos),
                    format!("invalid escape sequence `\\{}`", ch.escape_debug()),
                );
                value.push(ch);
            }
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = self.src.get(self.pos..self.pos + 4)?;
        let mut code = 0u32;
        for &d in digits {
            code = code * 16 + char::from(d).to_digit(16)?;
        }
        self.pos += 4;
        Some(code)
    }

    /// A `"""..."""` block string: raw text except `\"""`, then GraphQL indentation stripping.
    fn block_string(&mut self) {
        let start = self.pos;
        self.pos += 3;
        let mut raw = String::new();
        let mut closed = false;
        while let Some(b) = self.peek(0) {
            if b == b'"' && self.peek(1) == Some(b'"') && self.peek(2) == Some(b'"') {
                self.pos += 3;
                closed = true;
                break;
            }
            if b == b'\\'
                && self.peek(1) == Some(b'"')
                && self.peek(2) == Some(b'"')
                && self.peek(3) == Some(b'"')
            {
                raw.push_str("\"\"\"");
                self.pos += 4;
                continue;
            }
            let ch = self.text[self.pos..].chars().next().unwrap_or('\u{FFFD}');
            self.pos += ch.len_utf8().max(1);
            raw.push(ch);
        }
        if !closed {
            self.error(Span::new(start, self.pos), "unterminated block string");
        }
        let value = block_string_value(&raw);
        // A block string may span lines; the next token starts a line only after a newline
        // that follows it, which `run` tracks.
        self.push_string(Tok::BlockStr, start, value);
    }
}

/// GraphQL `BlockStringValue`: remove the common indentation of all lines but the first,
/// then drop leading and trailing blank lines.
pub(crate) fn block_string_value(raw: &str) -> String {
    let lines: Vec<&str> = raw
        .split("\r\n")
        .flat_map(|l| l.split(['\n', '\r']))
        .collect();
    let indent_of = |l: &str| l.len() - l.trim_start_matches([' ', '\t']).len();
    let common = lines
        .iter()
        .skip(1)
        .filter(|l| !l.trim_start_matches([' ', '\t']).is_empty())
        .map(|l| indent_of(l))
        .min();
    let mut out: Vec<&str> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| match common {
            Some(c) if i > 0 => l.get(c.min(l.len())..).unwrap_or(""),
            _ => l,
        })
        .collect();
    let blank = |l: &&str| l.trim_start_matches([' ', '\t']).is_empty();
    while out.first().is_some_and(blank) {
        out.remove(0);
    }
    while out.last().is_some_and(blank) {
        out.pop();
    }
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<Tok> {
        lex(&SourceFile::new("t", src))
            .tokens
            .iter()
            .map(|t| t.kind)
            .collect()
    }

    #[test]
    fn punctuation_and_commas() {
        assert_eq!(
            kinds("a, b: [c]?{}()=@|&*"),
            vec![
                Tok::Name,
                Tok::Name,
                Tok::Colon,
                Tok::LBracket,
                Tok::Name,
                Tok::RBracket,
                Tok::Question,
                Tok::LBrace,
                Tok::RBrace,
                Tok::LParen,
                Tok::RParen,
                Tok::Equals,
                Tok::At,
                Tok::Pipe,
                Tok::Amp,
                Tok::Star,
                Tok::Eof
            ]
        );
    }

    #[test]
    fn numbers() {
        assert_eq!(kinds("0 -1 12 1.5 2e3 -0.5E-2"), {
            let mut v = vec![Tok::Int, Tok::Int, Tok::Int];
            v.extend([Tok::Float, Tok::Float, Tok::Float, Tok::Eof]);
            v
        });
        let lexed = lex(&SourceFile::new("t", "01 1. 2x"));
        assert_eq!(lexed.diagnostics.len(), 3);
    }

    #[test]
    fn strings_and_escapes() {
        let lexed = lex(&SourceFile::new("t", r#""a\"b\u00e9\n" "\uD83D\uDE00""#));
        assert!(lexed.diagnostics.is_empty());
        assert_eq!(lexed.strings, vec!["a\"bé\n".to_string(), "😀".to_string()]);
        let bad = lex(&SourceFile::new("t", "\"abc\nx"));
        assert_eq!(bad.diagnostics.len(), 1);
        assert_eq!(bad.tokens[1].kind, Tok::Name);
    }

    #[test]
    fn block_strings() {
        let raw = "\n    Hello,\n      World!\n\n    Yours,\n      GraphQL.\n  ";
        assert_eq!(
            block_string_value(raw),
            "Hello,\n  World!\n\nYours,\n  GraphQL."
        );
        let lexed = lex(&SourceFile::new("t", "\"\"\"a \\\"\"\" b\"\"\""));
        assert_eq!(lexed.strings[0], "a \"\"\" b");
    }

    #[test]
    fn bad_characters_merge() {
        let lexed = lex(&SourceFile::new("t", "a $%^ b \u{FEFF} c"));
        assert_eq!(lexed.diagnostics.len(), 1);
        assert_eq!(lexed.tokens.len(), 4);
    }
}
