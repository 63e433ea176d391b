//! The syntax tree. Every node keeps its byte [`Span`], its description and its
//! annotations, so code generators can emit documentation and honour annotations, and
//! diagnostics can point at any element. Type references carry a [`Resolved`] slot that the
//! checker fills in, so a generator never has to look names up itself.

use std::sync::Arc;

use crate::span::Span;

/// A parsed WIDL file.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// The file name the document was parsed from (as given to [`crate::parse`]).
    pub file: String,
    /// The source text, kept so diagnostics about this document can be located later.
    pub source: Arc<str>,
    /// Top-level definitions in source order.
    pub definitions: Vec<Definition>,
    /// Span of the whole file.
    pub span: Span,
}

impl Document {
    /// The `namespace` declaration, if any (the first one if there are several).
    pub fn namespace(&self) -> Option<&Namespace> {
        self.definitions.iter().find_map(|d| match d {
            Definition::Namespace(n) => Some(n),
            _ => None,
        })
    }

    /// All `import` declarations.
    pub fn imports(&self) -> impl Iterator<Item = &Import> {
        self.definitions.iter().filter_map(|d| match d {
            Definition::Import(i) => Some(i),
            _ => None,
        })
    }

    /// All `type` definitions.
    pub fn types(&self) -> impl Iterator<Item = &TypeDef> {
        self.definitions.iter().filter_map(|d| match d {
            Definition::Type(t) => Some(t),
            _ => None,
        })
    }

    /// All `enum` definitions.
    pub fn enums(&self) -> impl Iterator<Item = &Enum> {
        self.definitions.iter().filter_map(|d| match d {
            Definition::Enum(e) => Some(e),
            _ => None,
        })
    }

    /// All `union` definitions.
    pub fn unions(&self) -> impl Iterator<Item = &Union> {
        self.definitions.iter().filter_map(|d| match d {
            Definition::Union(u) => Some(u),
            _ => None,
        })
    }

    /// All `alias` (and legacy `scalar`) definitions.
    pub fn aliases(&self) -> impl Iterator<Item = &Alias> {
        self.definitions.iter().filter_map(|d| match d {
            Definition::Alias(a) => Some(a),
            _ => None,
        })
    }

    /// All roles.
    pub fn roles(&self) -> impl Iterator<Item = &Role> {
        self.definitions.iter().filter_map(|d| match d {
            Definition::Role(r) => Some(r),
            _ => None,
        })
    }

    /// The anonymous `interface` block(s).
    pub fn interfaces(&self) -> impl Iterator<Item = &Interface> {
        self.definitions.iter().filter_map(|d| match d {
            Definition::Interface(i) => Some(i),
            _ => None,
        })
    }

    /// All directive declarations.
    pub fn directives(&self) -> impl Iterator<Item = &Directive> {
        self.definitions.iter().filter_map(|d| match d {
            Definition::Directive(d) => Some(d),
            _ => None,
        })
    }

    /// The role called `name`, a common look-up for generators.
    pub fn role(&self, name: &str) -> Option<&Role> {
        self.roles().find(|r| r.name.value == name)
    }

    /// The `type` called `name`.
    pub fn type_def(&self, name: &str) -> Option<&TypeDef> {
        self.types().find(|t| t.name.value == name)
    }
}

/// One top-level definition.
#[derive(Debug, Clone, PartialEq)]
pub enum Definition {
    /// `namespace "x"`.
    Namespace(Namespace),
    /// `import ... from "file"`.
    Import(Import),
    /// `alias N = T` or legacy `scalar N`.
    Alias(Alias),
    /// Anonymous `interface { ... }`.
    Interface(Interface),
    /// `role Name { ... }`.
    Role(Role),
    /// `type Name { ... }`.
    Type(TypeDef),
    /// `union Name = A | B`.
    Union(Union),
    /// `enum Name { ... }`.
    Enum(Enum),
    /// `directive @name(...) on ...`.
    Directive(Directive),
}

impl Definition {
    /// Span of the whole definition, description included.
    pub fn span(&self) -> Span {
        match self {
            Definition::Namespace(n) => n.span,
            Definition::Import(n) => n.span,
            Definition::Alias(n) => n.span,
            Definition::Interface(n) => n.span,
            Definition::Role(n) => n.span,
            Definition::Type(n) => n.span,
            Definition::Union(n) => n.span,
            Definition::Enum(n) => n.span,
            Definition::Directive(n) => n.span,
        }
    }

    /// The defined name, for definitions that have one.
    pub fn name(&self) -> Option<&Name> {
        match self {
            Definition::Namespace(n) => Some(&n.name),
            Definition::Import(_) | Definition::Interface(_) => None,
            Definition::Alias(n) => Some(&n.name),
            Definition::Role(n) => Some(&n.name),
            Definition::Type(n) => Some(&n.name),
            Definition::Union(n) => Some(&n.name),
            Definition::Enum(n) => Some(&n.name),
            Definition::Directive(n) => Some(&n.name),
        }
    }
}

/// An identifier (or a quoted name where the grammar allows one) with its span.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Name {
    /// The name's text (unquoted).
    pub value: String,
    /// Where it was written.
    pub span: Span,
}

/// A doc string written before an element (`"..."` or `"""..."""`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description {
    /// The decoded text; block strings have their common indentation removed.
    pub value: String,
    /// Span of the string literal.
    pub span: Span,
}

/// A string literal used as a value (import path, enum display name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StringLit {
    /// The decoded text.
    pub value: String,
    /// Span of the literal, quotes included.
    pub span: Span,
}

/// `namespace "wasmcloud:keyvalue"` — the contract id the interface is called under.
#[derive(Debug, Clone, PartialEq)]
pub struct Namespace {
    /// Optional doc string.
    pub description: Option<Description>,
    /// The namespace (quotes removed when written as a string).
    pub name: Name,
    /// Annotations after the name.
    pub annotations: Vec<Annotation>,
    /// Whole declaration.
    pub span: Span,
}

/// `import * from "f"` or `import { A B as C } from "f"`.
#[derive(Debug, Clone, PartialEq)]
pub struct Import {
    /// Optional doc string.
    pub description: Option<Description>,
    /// What is imported.
    pub items: ImportItems,
    /// The file to import from, resolved by a [`crate::Loader`].
    pub from: StringLit,
    /// Annotations after the path.
    pub annotations: Vec<Annotation>,
    /// Whole declaration.
    pub span: Span,
}

/// The imported set.
#[derive(Debug, Clone, PartialEq)]
pub enum ImportItems {
    /// `*`: every definition of the file; the span is that of the star.
    All(Span),
    /// `{ A B as C }`.
    Names(Vec<ImportName>),
}

/// One imported name, optionally renamed.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportName {
    /// The name in the imported file.
    pub name: Name,
    /// The local name given with `as`, if any.
    pub alias: Option<Name>,
    /// Span of `Name [as Alias]`.
    pub span: Span,
}

impl ImportName {
    /// The name this import is known by locally.
    pub fn local(&self) -> &Name {
        self.alias.as_ref().unwrap_or(&self.name)
    }
}

/// Which keyword introduced an alias.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AliasForm {
    /// `alias Name = Type` (since @wapc/widl 0.0.8).
    Alias,
    /// `scalar Name` or `scalar Name = Type` (the pre-0.0.8 form).
    Scalar,
}

/// `alias Name = Type`: a new name for an existing type.
#[derive(Debug, Clone, PartialEq)]
pub struct Alias {
    /// Optional doc string.
    pub description: Option<Description>,
    /// Keyword used.
    pub form: AliasForm,
    /// The new name.
    pub name: Name,
    /// The aliased type; `None` only for an opaque legacy `scalar Name`.
    pub target: Option<TypeRef>,
    /// Annotations.
    pub annotations: Vec<Annotation>,
    /// Whole definition.
    pub span: Span,
}

/// The anonymous `interface { ... }` block: operations of the interface itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Interface {
    /// Optional doc string.
    pub description: Option<Description>,
    /// Annotations before `{`.
    pub annotations: Vec<Annotation>,
    /// Operations in source order.
    pub operations: Vec<Operation>,
    /// Whole block.
    pub span: Span,
}

/// `role Name { ... }`: a named group of operations (e.g. `Actor`, `Store`).
#[derive(Debug, Clone, PartialEq)]
pub struct Role {
    /// Optional doc string.
    pub description: Option<Description>,
    /// Role name.
    pub name: Name,
    /// Annotations before `{`.
    pub annotations: Vec<Annotation>,
    /// Operations in source order.
    pub operations: Vec<Operation>,
    /// Whole block.
    pub span: Span,
}

/// How an operation takes its input; it decides the wire form of the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationKind {
    /// `Op(a: T, b: U)`: zero or more parameters, sent wrapped in an `{Op}Args` struct.
    Function,
    /// `Op{p: T}`: exactly one parameter, sent unwrapped.
    Unary,
}

/// One operation of a role or interface.
#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    /// Optional doc string.
    pub description: Option<Description>,
    /// The operation name, sent verbatim as the waPC operation.
    pub name: Name,
    /// Function or unary form.
    pub kind: OperationKind,
    /// Parameters (exactly one for a unary operation that parsed cleanly).
    pub parameters: Vec<Parameter>,
    /// Return type; `None` means no `:` was written, i.e. `void`.
    pub returns: Option<TypeRef>,
    /// True if the return type was written `: stream T`.
    pub stream: bool,
    /// Annotations after the return type.
    pub annotations: Vec<Annotation>,
    /// Whole operation.
    pub span: Span,
}

impl Operation {
    /// True for the unary form `Op{p: T}`.
    pub fn is_unary(&self) -> bool {
        self.kind == OperationKind::Unary
    }

    /// True if the operation returns nothing (no return type, or an explicit `void`).
    pub fn returns_void(&self) -> bool {
        match &self.returns {
            None => true,
            Some(t) => matches!(t.resolved(), Some(Resolved::Void)) || t.is_named("void"),
        }
    }
}

/// A parameter of an operation or directive.
#[derive(Debug, Clone, PartialEq)]
pub struct Parameter {
    /// Optional doc string.
    pub description: Option<Description>,
    /// Parameter name (the wire key inside `{Op}Args`).
    pub name: Name,
    /// Declared type.
    pub ty: TypeRef,
    /// True if written `p: stream T` (unary form only).
    pub stream: bool,
    /// Default value after `=`.
    pub default: Option<Value>,
    /// Annotations.
    pub annotations: Vec<Annotation>,
    /// Whole parameter.
    pub span: Span,
}

/// `type Name [implements A & B] { fields }`.
#[derive(Debug, Clone, PartialEq)]
pub struct TypeDef {
    /// Optional doc string.
    pub description: Option<Description>,
    /// Type name.
    pub name: Name,
    /// Names after `implements`.
    pub implements: Vec<Name>,
    /// Annotations before `{`.
    pub annotations: Vec<Annotation>,
    /// Fields in source order (the wire order of the struct map).
    pub fields: Vec<Field>,
    /// Whole definition.
    pub span: Span,
}

/// One field of a type.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// Optional doc string.
    pub description: Option<Description>,
    /// Field name, the wire key verbatim.
    pub name: Name,
    /// Declared type.
    pub ty: TypeRef,
    /// Default value after `=`.
    pub default: Option<Value>,
    /// Annotations.
    pub annotations: Vec<Annotation>,
    /// Whole field.
    pub span: Span,
}

/// `union Name = A | B`.
#[derive(Debug, Clone, PartialEq)]
pub struct Union {
    /// Optional doc string.
    pub description: Option<Description>,
    /// Union name.
    pub name: Name,
    /// Annotations before `=`.
    pub annotations: Vec<Annotation>,
    /// Member types in order.
    pub members: Vec<TypeRef>,
    /// Whole definition.
    pub span: Span,
}

/// `enum Name { A = 0 ... }`.
#[derive(Debug, Clone, PartialEq)]
pub struct Enum {
    /// Optional doc string.
    pub description: Option<Description>,
    /// Enum name.
    pub name: Name,
    /// Annotations before `{`.
    pub annotations: Vec<Annotation>,
    /// Values in order.
    pub values: Vec<EnumValue>,
    /// Whole definition.
    pub span: Span,
}

/// How an enum value's display string was written; both forms mean the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisplayForm {
    /// `= 0 "X"` (@wapc/widl 0.0.5–0.0.8).
    Bare,
    /// `= 0 as "X"` (since 0.0.10).
    As,
}

/// One enum value.
#[derive(Debug, Clone, PartialEq)]
pub struct EnumValue {
    /// Optional doc string.
    pub description: Option<Description>,
    /// Value name.
    pub name: Name,
    /// The numeric index as written (checked to be within `0..=u32::MAX`).
    pub index: i128,
    /// Span of the index literal.
    pub index_span: Span,
    /// Display string and how it was written.
    pub display: Option<(StringLit, DisplayForm)>,
    /// Annotations.
    pub annotations: Vec<Annotation>,
    /// Whole value.
    pub span: Span,
}

/// `directive @name(params) on LOCATIONS [require @other on LOCATIONS]`: declares an
/// annotation with typed arguments and the places it may appear.
#[derive(Debug, Clone, PartialEq)]
pub struct Directive {
    /// Optional doc string.
    pub description: Option<Description>,
    /// The annotation name (without `@`).
    pub name: Name,
    /// Declared arguments.
    pub parameters: Vec<Parameter>,
    /// Where the annotation may appear (`FIELD`, `TYPE`, ...).
    pub locations: Vec<Name>,
    /// Other annotations that must accompany this one.
    pub requires: Vec<DirectiveRequire>,
    /// Whole declaration.
    pub span: Span,
}

/// `require @other on SELF | TYPE`.
#[derive(Debug, Clone, PartialEq)]
pub struct DirectiveRequire {
    /// The required annotation (without `@`).
    pub directive: Name,
    /// Where it must be: `SELF` (the same element) or an enclosing element kind.
    pub locations: Vec<Name>,
    /// Whole clause.
    pub span: Span,
}

/// `@name` or `@name(args)` attached to an element. Unknown annotations are kept.
#[derive(Debug, Clone, PartialEq)]
pub struct Annotation {
    /// Annotation name (without `@`).
    pub name: Name,
    /// Arguments; `@x(5)` yields one argument named `value`.
    pub arguments: Vec<Argument>,
    /// Whole annotation.
    pub span: Span,
}

/// One annotation argument.
#[derive(Debug, Clone, PartialEq)]
pub struct Argument {
    /// Argument name; for a bare value this is `value`, spanning the value.
    pub name: Name,
    /// True when written as a bare value (`@x(5)`).
    pub implicit: bool,
    /// The value.
    pub value: Value,
    /// Whole argument.
    pub span: Span,
}

/// Finds an annotation by name, the usual query of a generator (`@ref`...).
pub fn find_annotation<'a>(annotations: &'a [Annotation], name: &str) -> Option<&'a Annotation> {
    annotations.iter().find(|a| a.name.value == name)
}

/// True if the annotations contain `@ref` or `@reference`, which makes the type a string
/// reference in generated code.
pub fn is_reference(annotations: &[Annotation]) -> bool {
    annotations
        .iter()
        .any(|a| a.name.value == "ref" || a.name.value == "reference")
}

/// A literal value (defaults and annotation arguments).
#[derive(Debug, Clone, PartialEq)]
pub struct Value {
    /// What the value is.
    pub kind: ValueKind,
    /// Where it was written.
    pub span: Span,
}

/// The forms of literal values.
#[derive(Debug, Clone, PartialEq)]
pub enum ValueKind {
    /// An integer; `i128` holds every `i64` and `u64`.
    Int(i128),
    /// A float.
    Float(f64),
    /// A string or block string.
    String(String),
    /// `true` / `false`.
    Bool(bool),
    /// `null`.
    Null,
    /// A bare name: an enum value reference.
    Enum(String),
    /// `[a b c]`.
    List(Vec<Value>),
    /// `{ key: value ... }`.
    Object(Vec<ObjectField>),
}

/// One `key: value` of an object value.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectField {
    /// Key (a name or a string).
    pub name: Name,
    /// Value.
    pub value: Value,
}

/// A type reference: a name, `[T]` or `{K: V}`, optionally followed by `?`.
#[derive(Debug, Clone, PartialEq)]
pub struct TypeRef {
    /// The shape.
    pub kind: TypeKind,
    /// True if followed by `?` (nullable / may be absent).
    pub optional: bool,
    /// Whole reference, `?` included.
    pub span: Span,
}

impl TypeRef {
    /// The resolution of a named reference (after checking); `None` for lists, maps and
    /// unresolved names.
    pub fn resolved(&self) -> Option<&Resolved> {
        match &self.kind {
            TypeKind::Named { resolved, .. } => resolved.as_ref(),
            _ => None,
        }
    }

    /// True if this is a plain reference to `name` (as written).
    pub fn is_named(&self, name: &str) -> bool {
        matches!(&self.kind, TypeKind::Named { name: n, .. } if n.value == name)
    }
}

/// The shapes of a type reference.
#[derive(Debug, Clone, PartialEq)]
pub enum TypeKind {
    /// A built-in or user type by name. `resolved` is filled by [`crate::check`].
    Named {
        /// The name as written.
        name: Name,
        /// What the name refers to, once checked.
        resolved: Option<Resolved>,
    },
    /// `[T]`.
    List(Box<TypeRef>),
    /// `{K: V}`.
    Map {
        /// Key type (string or an integer type).
        key: Box<TypeRef>,
        /// Value type.
        value: Box<TypeRef>,
    },
}

/// What a type name refers to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// A built-in type.
    Builtin(Builtin),
    /// `void` (valid only as a return type).
    Void,
    /// A user definition, possibly in an imported file.
    Defined(DefRef),
}

/// A reference to a user definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefRef {
    /// The file that defines it (a loader name; the current file for local types).
    pub file: String,
    /// The name in the defining file (differs from the written name after `import {A as B}`).
    pub name: String,
    /// What kind of definition it is.
    pub kind: DefKind,
}

/// Kinds of user type definitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DefKind {
    /// A `type` (struct).
    Type,
    /// An `enum`.
    Enum,
    /// A `union`.
    Union,
    /// An `alias`.
    Alias,
    /// A legacy opaque `scalar` without target.
    Scalar,
}

/// The built-in types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Builtin {
    /// `i8`.
    I8,
    /// `i16`.
    I16,
    /// `i32`.
    I32,
    /// `i64`.
    I64,
    /// `u8`.
    U8,
    /// `u16`.
    U16,
    /// `u32`.
    U32,
    /// `u64`.
    U64,
    /// `f32`.
    F32,
    /// `f64`.
    F64,
    /// `bool`.
    Bool,
    /// `string`, and also `ID`, which is a plain string on the wire.
    String,
    /// `bytes`: a msgpack bin.
    Bytes,
    /// `datetime`: an RFC 3339 timestamp.
    Datetime,
    /// `raw`: an encoded value passed through undecoded.
    Raw,
    /// `value` and its synonym `any`: any msgpack value.
    Value,
}

impl Builtin {
    /// Looks a built-in up by the name written in WIDL. `ID` maps to [`Builtin::String`]
    /// and `any` to [`Builtin::Value`]; `void` is not a built-in type (see [`Resolved::Void`]).
    pub fn from_name(name: &str) -> Option<Builtin> {
        Some(match name {
            "i8" => Builtin::I8,
            "i16" => Builtin::I16,
            "i32" => Builtin::I32,
            "i64" => Builtin::I64,
            "u8" => Builtin::U8,
            "u16" => Builtin::U16,
            "u32" => Builtin::U32,
            "u64" => Builtin::U64,
            "f32" => Builtin::F32,
            "f64" => Builtin::F64,
            "bool" => Builtin::Bool,
            "string" | "ID" => Builtin::String,
            "bytes" => Builtin::Bytes,
            "datetime" => Builtin::Datetime,
            "raw" => Builtin::Raw,
            "value" | "any" => Builtin::Value,
            _ => return None,
        })
    }

    /// Every name accepted by [`Builtin::from_name`], for suggestions.
    pub const NAMES: &'static [&'static str] = &[
        "i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64", "f32", "f64", "bool", "string",
        "bytes", "datetime", "raw", "value", "any", "ID",
    ];

    /// True for the eight integer types, which are valid map keys.
    pub fn is_integer(self) -> bool {
        matches!(
            self,
            Builtin::I8
                | Builtin::I16
                | Builtin::I32
                | Builtin::I64
                | Builtin::U8
                | Builtin::U16
                | Builtin::U32
                | Builtin::U64
        )
    }

    /// The inclusive range of an integer type, for checking default values.
    pub fn integer_range(self) -> Option<(i128, i128)> {
        Some(match self {
            Builtin::I8 => (i8::MIN.into(), i8::MAX.into()),
            Builtin::I16 => (i16::MIN.into(), i16::MAX.into()),
            Builtin::I32 => (i32::MIN.into(), i32::MAX.into()),
            Builtin::I64 => (i64::MIN.into(), i64::MAX.into()),
            Builtin::U8 => (0, u8::MAX.into()),
            Builtin::U16 => (0, u16::MAX.into()),
            Builtin::U32 => (0, u32::MAX.into()),
            Builtin::U64 => (0, u64::MAX.into()),
            _ => return None,
        })
    }
}
