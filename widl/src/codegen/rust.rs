//! The Rust generator.
//!
//! Wire rules (reference C, WIDL.md), which the golden tests hold against the published
//! crates:
//! - operation name on the wire = the WIDL name verbatim;
//! - function-form operations send their parameters wrapped in `{Op}Args` (fields in
//!   parameter order), unary operations send the parameter itself, operations without
//!   parameters send an empty payload, `void` results are msgpack nil;
//! - structs are msgpack maps keyed by the WIDL field name (rmp-serde `to_vec_named`),
//!   fields in declaration order; `bytes` and `raw` are msgpack bin; `T?` is `Option<T>`,
//!   written as nil when absent and accepted when missing;
//! - `{K: V}` is a `HashMap`, as in the published crates (so their code ports unchanged);
//!   like theirs, a map with several entries encodes in hash order.
//!
//! Where the published generator emitted nothing or code that did not compile, this one
//! decides:
//! - `enum` → a Rust enum encoded as its number (`= 2` → msgpack 2), with the display
//!   strings available through `display()` and `Display`;
//! - `union` → a Rust enum encoded externally tagged: a one-entry map from the member's WIDL
//!   type name to its value (`{"Item": {...}}`);
//! - `alias` → a type alias; `datetime` → `chrono::DateTime<Utc>` (an RFC 3339 string on
//!   the wire); `value`/`any` and opaque `scalar`s → `rmpv::Value`;
//! - `bytes` inside lists, maps, unions and aliases → `serde_bytes::ByteBuf`, so they stay
//!   bin at any depth;
//! - a struct that contains itself (through fields or unions, not through lists or maps)
//!   gets `Box` at the recursive fields;
//! - a malformed reply is an error returned to the caller, never a panic.

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;

use crate::Program;
use crate::ast::*;
use crate::codegen::names::{
    args_name, ident, is_keyword, pascal_case, snake_case, type_name, upper_snake_case,
};
use crate::diagnostic::{Diagnostic, has_errors};
use crate::span::{SourceFile, Span};

/// Whether one side of the generated code is always compiled or only with a cargo feature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    /// Compiled unconditionally (`wash gen --side ...`).
    Always,
    /// Every item of the side carries `#[cfg(feature = "<name>")]` (interface crates that
    /// serve both actors and providers).
    Feature(String),
}

/// What to generate.
///
/// Types, the codec functions and the `CONTRACT_ID`/`OP_*` constants are always generated.
/// Roles are split by who implements them: roles named in `actor_roles` (default `Actor`)
/// are implemented by actors and called by providers or the host; every other role is
/// implemented by providers and called by actors. The anonymous `interface` block counts as
/// both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RustOptions {
    /// The actor side (on `nimbus-actor`): `Handlers` to register typed handlers for the
    /// operations actors implement, and `Host` to call the operations providers implement.
    pub actor: Option<Gate>,
    /// The provider side (on `nimbus-provider-sdk`): one trait and one `dispatch_*`
    /// function per provider-implemented role, and `ActorClient` to call the operations
    /// actors implement.
    pub provider: Option<Gate>,
    /// Roles implemented by actors (the published generator's `handlerRoles`).
    pub actor_roles: Vec<String>,
    /// Provider-implemented roles the actor-side `Host` gets senders for (the published
    /// generator's `hostRoles`); `None` means all of them plus the anonymous interface.
    pub host_roles: Option<Vec<String>>,
}

impl Default for RustOptions {
    /// Types only; roles named `Actor` are implemented by actors.
    fn default() -> Self {
        RustOptions {
            actor: None,
            provider: None,
            actor_roles: vec!["Actor".to_string()],
            host_roles: None,
        }
    }
}

impl RustOptions {
    /// Types plus the actor side, ungated.
    pub fn actor() -> Self {
        RustOptions {
            actor: Some(Gate::Always),
            ..RustOptions::default()
        }
    }

    /// Types plus the provider side, ungated.
    pub fn provider() -> Self {
        RustOptions {
            provider: Some(Gate::Always),
            ..RustOptions::default()
        }
    }

    /// Both sides, each behind its cargo feature (the interface crates' layout).
    pub fn gated(actor_feature: &str, provider_feature: &str) -> Self {
        RustOptions {
            actor: Some(Gate::Feature(actor_feature.to_string())),
            provider: Some(Gate::Feature(provider_feature.to_string())),
            ..RustOptions::default()
        }
    }
}

/// Generates Rust source (not yet rustfmt-formatted) for the root document of `program`.
///
/// Returns the diagnostics instead if the program has errors or the generator finds
/// something it cannot express (`stream`, names that collide once converted to Rust, no
/// `namespace`, unknown roles in `options`). Warnings of the program are not repeated in
/// the output; callers print them from `program.diagnostics`.
pub fn generate_rust(program: &Program, options: &RustOptions) -> Result<String, Vec<Diagnostic>> {
    if has_errors(&program.diagnostics) {
        return Err(program.diagnostics.clone());
    }
    let Some(root) = program.root.as_ref() else {
        return Err(program.diagnostics.clone());
    };
    let mut generator = Generator::new(root, &program.imports, options);
    let code = generator.run();
    if has_errors(&generator.diags) {
        let mut all = program.diagnostics.clone();
        all.extend(generator.diags);
        return Err(all);
    }
    Ok(code)
}

type Key = (String, String);

#[derive(Clone, Copy)]
enum Item<'a> {
    Type(&'a TypeDef),
    Enum(&'a Enum),
    Union(&'a Union),
    Alias(&'a Alias),
}

struct Def<'a> {
    doc: &'a Document,
    item: Item<'a>,
    /// The Rust name.
    rust: String,
}

impl Def<'_> {
    fn name(&self) -> &Name {
        match self.item {
            Item::Type(t) => &t.name,
            Item::Enum(e) => &e.name,
            Item::Union(u) => &u.name,
            Item::Alias(a) => &a.name,
        }
    }
}

/// Where a type appears: directly as a field, parameter or result (bytes are `Vec<u8>`
/// with `serde_bytes`), or nested in a container (bytes are `ByteBuf`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pos {
    Direct,
    Nested,
}

/// An operation and the block it belongs to.
#[derive(Clone, Copy)]
struct OpRef<'a> {
    op: &'a Operation,
    /// `None` for the anonymous interface.
    role: Option<&'a Role>,
}

/// How an operation's single value (unary parameter or result) is encoded at the top level.
enum TopBytes {
    /// Not bytes: encode the value itself.
    No,
    /// `bytes`: through `serde_bytes::Bytes`/`ByteBuf`.
    Plain,
    /// `bytes?`.
    Optional,
}

#[derive(Default)]
struct Uses {
    bytes: Cell<bool>,
    datetime: Cell<bool>,
    value: Cell<bool>,
}

struct Generator<'a> {
    root: &'a Document,
    docs: HashMap<&'a str, &'a Document>,
    options: &'a RustOptions,
    defs: Vec<Def<'a>>,
    index: HashMap<Key, usize>,
    /// For each def: the struct/union defs reachable by direct (unboxed) containment.
    reach: Vec<HashSet<usize>>,
    defaultable: Vec<bool>,
    diags: Vec<Diagnostic>,
    uses: Uses,
    /// Claimed Rust names in the type namespace and in the value namespace.
    type_names: BTreeMap<String, String>,
    value_names: BTreeMap<String, String>,
    /// `import { X as Y }` of generated defs: the written name `Y` → def index.
    import_aliases: BTreeMap<String, usize>,
    out: String,
}

impl<'a> Generator<'a> {
    fn new(root: &'a Document, imports: &'a [Document], options: &'a RustOptions) -> Self {
        let mut docs = HashMap::new();
        docs.insert(root.file.as_str(), root);
        for doc in imports {
            docs.entry(doc.file.as_str()).or_insert(doc);
        }
        Generator {
            root,
            docs,
            options,
            defs: Vec::new(),
            index: HashMap::new(),
            reach: Vec::new(),
            defaultable: Vec::new(),
            diags: Vec::new(),
            uses: Uses::default(),
            type_names: BTreeMap::new(),
            value_names: BTreeMap::new(),
            import_aliases: BTreeMap::new(),
            out: String::new(),
        }
    }

    // ---- diagnostics and names ------------------------------------------------------

    fn error(&mut self, doc: &Document, span: Span, code: &'static str, message: String) {
        let file = SourceFile::new(doc.file.clone(), doc.source.clone());
        self.diags
            .push(Diagnostic::error(code, &file, span, message));
    }

    fn error_with_note(
        &mut self,
        doc: &Document,
        span: Span,
        code: &'static str,
        message: String,
        note: String,
    ) {
        let file = SourceFile::new(doc.file.clone(), doc.source.clone());
        self.diags
            .push(Diagnostic::error(code, &file, span, message).with_note(note));
    }

    /// Claims a generated Rust name; a second claim by something else is a located error.
    fn claim(&mut self, type_ns: bool, name: &str, what: String, doc: &Document, span: Span) {
        let table = if type_ns {
            &mut self.type_names
        } else {
            &mut self.value_names
        };
        match table.get(name) {
            Some(previous) if *previous == what => {}
            Some(previous) => {
                let message = format!(
                    "the generated Rust name `{name}` of {what} is already used by {previous}"
                );
                self.error_with_note(
                    doc,
                    span,
                    "name-collision",
                    message,
                    "rename one of them in the WIDL".to_string(),
                );
            }
            None => {
                table.insert(name.to_string(), what);
            }
        }
    }

    // ---- collecting definitions -------------------------------------------------------

    fn find_def(&self, key: &Key) -> Option<(&'a Document, Item<'a>)> {
        let doc: &'a Document = self.docs.get(key.0.as_str())?;
        doc.definitions.iter().find_map(|d| {
            let item = match d {
                Definition::Type(t) if t.name.value == key.1 => Item::Type(t),
                Definition::Enum(e) if e.name.value == key.1 => Item::Enum(e),
                Definition::Union(u) if u.name.value == key.1 => Item::Union(u),
                Definition::Alias(a) if a.name.value == key.1 => Item::Alias(a),
                _ => return None,
            };
            Some((doc, item))
        })
    }

    fn add_def(&mut self, key: Key, doc: &'a Document, item: Item<'a>) {
        if self.index.contains_key(&key) {
            return;
        }
        let rust = type_name(&key.1);
        self.index.insert(key, self.defs.len());
        self.defs.push(Def { doc, item, rust });
    }

    /// Root definitions in source order, then every imported definition they reach.
    fn collect(&mut self) {
        let root = self.root;
        for d in &root.definitions {
            let item = match d {
                Definition::Type(t) => Item::Type(t),
                Definition::Enum(e) => Item::Enum(e),
                Definition::Union(u) => Item::Union(u),
                Definition::Alias(a) => Item::Alias(a),
                _ => continue,
            };
            let name = d.name().map(|n| n.value.clone()).unwrap_or_default();
            self.add_def((root.file.clone(), name), root, item);
        }
        let mut pending: Vec<Key> = Vec::new();
        let mut refs = Vec::new();
        for d in &root.definitions {
            match d {
                Definition::Role(r) => ops_refs(&r.operations, &mut refs),
                Definition::Interface(i) => ops_refs(&i.operations, &mut refs),
                _ => {}
            }
        }
        let mut next = 0;
        loop {
            while next < self.defs.len() {
                item_refs(self.defs[next].item, &mut refs);
                next += 1;
            }
            for t in refs.drain(..) {
                collect_defined(t, &mut pending);
            }
            if pending.is_empty() {
                break;
            }
            for key in pending.drain(..) {
                if self.index.contains_key(&key) {
                    continue;
                }
                if let Some((doc, item)) = self.find_def(&key) {
                    self.add_def(key, doc, item);
                }
            }
            if next == self.defs.len() {
                break;
            }
        }
        for import in root.imports() {
            let ImportItems::Names(names) = &import.items else {
                continue;
            };
            let file = crate::loader::resolve_relative(Some(&root.file), &import.from.value);
            for n in names {
                let Some(alias) = &n.alias else {
                    continue;
                };
                if let Some(&i) = self.index.get(&(file.clone(), n.name.value.clone())) {
                    self.import_aliases.insert(alias.value.clone(), i);
                }
            }
        }
    }

    fn def_of(&self, t: &TypeRef) -> Option<usize> {
        match t.resolved() {
            Some(Resolved::Defined(d)) => {
                self.index.get(&(d.file.clone(), d.name.clone())).copied()
            }
            _ => None,
        }
    }

    /// Struct/union defs a type holds inline (not behind a list or map), through aliases.
    fn direct_targets(&self, t: &TypeRef, out: &mut Vec<usize>, depth: usize) {
        if depth > 64 {
            return;
        }
        if let Some(i) = self.def_of(t) {
            match self.defs[i].item {
                Item::Type(_) | Item::Union(_) => out.push(i),
                Item::Alias(a) => {
                    if !is_reference(&a.annotations)
                        && let Some(target) = &a.target
                    {
                        self.direct_targets(target, out, depth + 1);
                    }
                }
                Item::Enum(_) => {}
            }
        }
    }

    fn compute_reach(&mut self) {
        let n = self.defs.len();
        let mut edges: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (i, def) in self.defs.iter().enumerate() {
            let mut out = Vec::new();
            match def.item {
                Item::Type(t) => {
                    for f in &t.fields {
                        if !is_reference(&f.annotations) {
                            self.direct_targets(&f.ty, &mut out, 0);
                        }
                    }
                }
                Item::Union(u) => {
                    for m in &u.members {
                        self.direct_targets(m, &mut out, 0);
                    }
                }
                Item::Alias(_) | Item::Enum(_) => {}
            }
            edges[i] = out;
        }
        let mut reach = Vec::with_capacity(n);
        for start in 0..n {
            let mut seen = HashSet::new();
            let mut stack: Vec<usize> = edges[start].clone();
            while let Some(x) = stack.pop() {
                if seen.insert(x) {
                    stack.extend(edges[x].iter().copied());
                }
            }
            reach.push(seen);
        }
        self.reach = reach;
    }

    fn needs_box(&self, container: Option<usize>, t: &TypeRef) -> bool {
        let Some(container) = container else {
            return false;
        };
        let mut targets = Vec::new();
        self.direct_targets(t, &mut targets, 0);
        targets
            .iter()
            .any(|&target| target == container || self.reach[target].contains(&container))
    }

    fn compute_defaultable(&mut self) {
        let n = self.defs.len();
        let mut state = vec![None; n];
        let mut visiting = vec![false; n];
        for i in 0..n {
            self.def_defaultable(i, &mut state, &mut visiting);
        }
        self.defaultable = state.into_iter().map(|s| s.unwrap_or(false)).collect();
    }

    fn def_defaultable(
        &self,
        i: usize,
        state: &mut Vec<Option<bool>>,
        visiting: &mut Vec<bool>,
    ) -> bool {
        if let Some(known) = state[i] {
            return known;
        }
        if visiting[i] {
            // A cycle without an `Option` in between: no finite default exists.
            return false;
        }
        visiting[i] = true;
        let result = match self.defs[i].item {
            Item::Type(t) => t.fields.iter().all(|f| {
                is_reference(&f.annotations) || self.ty_defaultable(&f.ty, state, visiting)
            }),
            Item::Enum(e) => !e.values.is_empty(),
            Item::Union(_) => false,
            Item::Alias(a) => match &a.target {
                _ if is_reference(&a.annotations) => true,
                Some(t) => self.ty_defaultable(t, state, visiting),
                None => false,
            },
        };
        visiting[i] = false;
        state[i] = Some(result);
        result
    }

    fn ty_defaultable(
        &self,
        t: &TypeRef,
        state: &mut Vec<Option<bool>>,
        visiting: &mut Vec<bool>,
    ) -> bool {
        if t.optional {
            return true;
        }
        match &t.kind {
            TypeKind::List(_) | TypeKind::Map { .. } => true,
            TypeKind::Named { resolved, .. } => match resolved {
                Some(Resolved::Builtin(Builtin::Value)) => false,
                Some(Resolved::Builtin(_)) | Some(Resolved::Void) => true,
                Some(Resolved::Defined(_)) => match self.def_of(t) {
                    Some(i) => self.def_defaultable(i, state, visiting),
                    None => false,
                },
                None => false,
            },
        }
    }

    // ---- type rendering -------------------------------------------------------------

    /// The Rust type of a type reference. `container` is the def being generated, for
    /// boxing recursive references; `reference` is true under `@ref`.
    fn ty(&self, t: &TypeRef, pos: Pos, container: Option<usize>, reference: bool) -> String {
        let inner = if reference {
            "String".to_string()
        } else {
            self.ty_inner(t, pos, container)
        };
        if t.optional {
            format!("Option<{inner}>")
        } else {
            inner
        }
    }

    fn ty_inner(&self, t: &TypeRef, pos: Pos, container: Option<usize>) -> String {
        match &t.kind {
            TypeKind::List(item) => format!("Vec<{}>", self.ty(item, Pos::Nested, None, false)),
            TypeKind::Map { key, value } => format!(
                "::std::collections::HashMap<{}, {}>",
                self.ty(key, Pos::Nested, None, false),
                self.ty(value, Pos::Nested, None, false)
            ),
            TypeKind::Named { resolved, .. } => match resolved {
                Some(Resolved::Builtin(b)) => self.builtin(*b, pos),
                Some(Resolved::Void) => "()".to_string(),
                Some(Resolved::Defined(_)) => match self.def_of(t) {
                    Some(i) => {
                        let written = match &t.kind {
                            TypeKind::Named { name, .. } => name.value.as_str(),
                            _ => "",
                        };
                        let name = if self.import_aliases.get(written) == Some(&i)
                            && self.defs[i].name().value != written
                        {
                            type_name(written)
                        } else {
                            self.defs[i].rust.clone()
                        };
                        if self.needs_box(
                            container,
                            &TypeRef {
                                optional: false,
                                ..t.clone()
                            },
                        ) {
                            format!("Box<{name}>")
                        } else {
                            name
                        }
                    }
                    None => "()".to_string(),
                },
                None => "()".to_string(),
            },
        }
    }

    fn builtin(&self, b: Builtin, pos: Pos) -> String {
        match b {
            Builtin::I8 => "i8",
            Builtin::I16 => "i16",
            Builtin::I32 => "i32",
            Builtin::I64 => "i64",
            Builtin::U8 => "u8",
            Builtin::U16 => "u16",
            Builtin::U32 => "u32",
            Builtin::U64 => "u64",
            Builtin::F32 => "f32",
            Builtin::F64 => "f64",
            Builtin::Bool => "bool",
            Builtin::String => "String",
            Builtin::Bytes | Builtin::Raw => {
                self.uses.bytes.set(true);
                match pos {
                    Pos::Direct => "Vec<u8>",
                    Pos::Nested => "::serde_bytes::ByteBuf",
                }
            }
            Builtin::Datetime => {
                self.uses.datetime.set(true);
                "::chrono::DateTime<::chrono::Utc>"
            }
            Builtin::Value => {
                self.uses.value.set(true);
                "::rmpv::Value"
            }
        }
        .to_string()
    }

    /// Whether a directly placed value is `bytes`/`raw` (needs `serde_bytes`).
    fn top_bytes(&self, t: &TypeRef, reference: bool) -> TopBytes {
        if reference {
            return TopBytes::No;
        }
        match t.resolved() {
            Some(Resolved::Builtin(Builtin::Bytes | Builtin::Raw)) if t.optional => {
                TopBytes::Optional
            }
            Some(Resolved::Builtin(Builtin::Bytes | Builtin::Raw)) => TopBytes::Plain,
            _ => TopBytes::No,
        }
    }

    /// The serde attributes of a struct field or argument.
    fn field_attrs(&self, wire: &str, t: &TypeRef, reference: bool) -> String {
        let mut attrs = format!("rename = {wire:?}");
        match self.top_bytes(t, reference) {
            TopBytes::No => {}
            TopBytes::Plain => attrs.push_str(", with = \"::serde_bytes\""),
            // `with` turns off serde's "missing Option field is None"; `default` restores it.
            TopBytes::Optional => attrs.push_str(", default, with = \"::serde_bytes\""),
        }
        format!("#[serde({attrs})]\n")
    }

    fn encode_expr(&self, t: &TypeRef, reference: bool, value: &str) -> String {
        match self.top_bytes(t, reference) {
            TopBytes::No => format!("serialize(&{value})"),
            TopBytes::Plain => format!("serialize(::serde_bytes::Bytes::new(&{value}))"),
            TopBytes::Optional => {
                format!("serialize(&{value}.as_deref().map(::serde_bytes::Bytes::new))")
            }
        }
    }

    fn decode_expr(&self, t: &TypeRef, reference: bool, payload: &str) -> String {
        match self.top_bytes(t, reference) {
            TopBytes::No => format!(
                "deserialize::<{}>({payload})",
                self.ty(t, Pos::Direct, None, reference)
            ),
            TopBytes::Plain => format!(
                "deserialize::<::serde_bytes::ByteBuf>({payload}).map(::serde_bytes::ByteBuf::into_vec)"
            ),
            TopBytes::Optional => format!(
                "deserialize::<Option<::serde_bytes::ByteBuf>>({payload}).map(|v| v.map(::serde_bytes::ByteBuf::into_vec))"
            ),
        }
    }

    // ---- output helpers -------------------------------------------------------------

    fn emit(&mut self, gate: Option<&Gate>, code: &str) {
        if let Some(Gate::Feature(feature)) = gate {
            let _ = writeln!(self.out, "#[cfg(feature = {feature:?})]");
        }
        self.out.push_str(code);
        self.out.push('\n');
    }

    // ---- the run --------------------------------------------------------------------

    fn run(&mut self) -> String {
        self.collect();
        self.compute_reach();
        self.compute_defaultable();
        let root = self.root;

        let Some(namespace) = root.namespace().map(|n| n.name.value.clone()) else {
            self.error(
                root,
                Span::new(0, 0),
                "no-namespace",
                "the file has no `namespace`; generated code needs it as the contract id \
                 (add e.g. `namespace \"example:thing\"` at the top)"
                    .to_string(),
            );
            return String::new();
        };

        self.check_role_options();
        let ops = self.operations();
        for op in &ops {
            self.check_operation(op.op);
        }
        for name in ["String", "Vec", "Option", "Box", "Result"] {
            self.type_names
                .insert(name.to_string(), format!("the Rust prelude type `{name}`"));
        }
        for i in 0..self.defs.len() {
            let (rust, doc, name) = {
                let d = &self.defs[i];
                (d.rust.clone(), d.doc, d.name().clone())
            };
            if is_keyword(&rust) {
                self.error(
                    doc,
                    name.span,
                    "name-collision",
                    format!("the type name `{rust}` is a Rust keyword; rename it"),
                );
            }
            let what = format!("type `{}` ({})", name.value, doc.file);
            self.claim(true, &rust, what, doc, name.span);
        }
        for name in ["serialize", "deserialize", "CONTRACT_ID"] {
            self.value_names
                .insert(name.to_string(), format!("the generated item `{name}`"));
        }

        self.header(&namespace);
        self.constants(&namespace, &ops);
        for i in 0..self.defs.len() {
            match self.defs[i].item {
                Item::Type(t) => self.struct_def(i, t),
                Item::Enum(e) => self.enum_def(i, e),
                Item::Union(u) => self.union_def(i, u),
                Item::Alias(a) => self.alias_def(i, a),
            }
        }
        self.import_alias_defs();
        self.args_structs(&ops);
        self.codec();
        if let Some(gate) = self.options.actor.clone() {
            self.actor_side(&gate, &ops);
        }
        if let Some(gate) = self.options.provider.clone() {
            self.provider_side(&gate, &ops);
        }
        let needs = self.needs_line();
        std::mem::take(&mut self.out).replacen("// NEEDS\n", &format!("{needs}\n"), 1)
    }

    fn check_role_options(&mut self) {
        let root = self.root;
        let mut named: Vec<&String> = self.options.actor_roles.iter().collect();
        if let Some(host) = &self.options.host_roles {
            named.extend(host.iter());
        }
        let defined: Vec<&str> = root.roles().map(|r| r.name.value.as_str()).collect();
        for role in named {
            // `Actor` is the default and may be absent (a provider-only interface).
            if role != "Actor" && !defined.contains(&role.as_str()) {
                self.error(
                    root,
                    Span::new(0, 0),
                    "unknown-role",
                    format!(
                        "the generator options name role `{role}`, which {} does not define \
                         (roles: {})",
                        root.file,
                        if defined.is_empty() {
                            "none".to_string()
                        } else {
                            defined.join(", ")
                        }
                    ),
                );
            }
        }
    }

    fn operations(&self) -> Vec<OpRef<'a>> {
        let root = self.root;
        let mut ops = Vec::new();
        for d in &root.definitions {
            match d {
                Definition::Role(r) => {
                    ops.extend(r.operations.iter().map(|op| OpRef { op, role: Some(r) }))
                }
                Definition::Interface(i) => {
                    ops.extend(i.operations.iter().map(|op| OpRef { op, role: None }))
                }
                _ => {}
            }
        }
        ops
    }

    fn is_actor_role(&self, role: Option<&Role>) -> bool {
        match role {
            None => true,
            Some(r) => self.options.actor_roles.contains(&r.name.value),
        }
    }

    fn is_provider_role(&self, role: Option<&Role>) -> bool {
        match role {
            None => true,
            Some(r) => !self.options.actor_roles.contains(&r.name.value),
        }
    }

    fn is_host_role(&self, role: Option<&Role>) -> bool {
        if !self.is_provider_role(role) {
            return false;
        }
        match (&self.options.host_roles, role) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(list), Some(r)) => list.contains(&r.name.value),
        }
    }

    fn check_operation(&mut self, op: &'a Operation) {
        let root = self.root;
        if op.stream || op.parameters.iter().any(|p| p.stream) {
            self.error_with_note(
                root,
                op.name.span,
                "unsupported-stream",
                format!(
                    "operation `{}` uses `stream`, which waPC cannot carry (one request, one \
                     response per call)",
                    op.name.value
                ),
                "remove `stream`, or return a list (`[T]`) instead".to_string(),
            );
        }
        if ident(&snake_case(&op.name.value)).is_none() {
            self.error(
                root,
                op.name.span,
                "bad-name",
                format!(
                    "operation name `{}` has no letters or digits",
                    op.name.value
                ),
            );
        }
        let mut seen: HashMap<String, &str> = HashMap::new();
        for p in &op.parameters {
            let snake = snake_case(&p.name.value);
            if snake.is_empty() {
                self.error(
                    root,
                    p.name.span,
                    "bad-name",
                    format!("parameter name `{}` has no letters or digits", p.name.value),
                );
            } else if let Some(other) = seen.insert(snake.clone(), &p.name.value) {
                self.error(
                    root,
                    p.name.span,
                    "name-collision",
                    format!(
                        "parameters `{other}` and `{}` both become `{snake}` in Rust",
                        p.name.value
                    ),
                );
            }
        }
    }

    /// Operations in `ops` selected by `pick`, one per name (same-named operations of
    /// different blocks must have the same signature).
    fn unique_ops(
        &mut self,
        ops: &[OpRef<'a>],
        pick: impl Fn(&Self, OpRef<'a>) -> bool,
    ) -> Vec<OpRef<'a>> {
        let mut out: Vec<OpRef<'a>> = Vec::new();
        for &op in ops {
            if !pick(self, op) {
                continue;
            }
            if let Some(existing) = out.iter().find(|o| o.op.name.value == op.op.name.value) {
                if self.signature(existing.op) != self.signature(op.op) {
                    let root = self.root;
                    self.error(
                        root,
                        op.op.name.span,
                        "name-collision",
                        format!(
                            "operation `{}` is declared twice with different parameters or \
                             results; generated code would need two functions of one name",
                            op.op.name.value
                        ),
                    );
                }
                continue;
            }
            out.push(op);
        }
        out
    }

    fn signature(&self, op: &Operation) -> String {
        let mut s = format!("{:?}(", op.kind);
        for p in &op.parameters {
            let _ = write!(
                s,
                "{}:{},",
                p.name.value,
                self.ty(&p.ty, Pos::Direct, None, is_reference(&p.annotations))
            );
        }
        let _ = write!(s, "):{}", self.ret_ty(op));
        s
    }

    fn ret_ty(&self, op: &Operation) -> String {
        match &op.returns {
            Some(t) if !op.returns_void() => {
                self.ty(t, Pos::Direct, None, is_reference(&op.annotations))
            }
            _ => "()".to_string(),
        }
    }

    // ---- header, constants, types ----------------------------------------------------

    fn header(&mut self, namespace: &str) {
        let file = std::path::Path::new(&self.root.file)
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_else(|| self.root.file.clone());
        let _ = writeln!(
            self.out,
            "// @generated by nimbus-widl from {file} (contract {namespace:?}). Do not edit:\n\
             // regenerate with `wash gen` or the crate's build script."
        );
        let _ = writeln!(self.out, "//");
        let _ = writeln!(
            self.out,
            "// Wire form: msgpack, structs as maps keyed by WIDL field name; compatible with the\n\
             // published waPC-era interface crates."
        );
        // Dependencies are known only after the types are rendered; a placeholder line is
        // replaced at the end of `codec`.
        self.out.push_str("// NEEDS\n\n");
    }

    fn constants(&mut self, namespace: &str, ops: &[OpRef<'a>]) {
        let mut code = String::new();
        let _ = writeln!(
            code,
            "/// The contract id of this interface (its WIDL `namespace`): the namespace of host\n\
             /// calls and the contract id of links and capability claims.\n\
             pub const CONTRACT_ID: &str = {namespace:?};"
        );
        self.emit(None, &code);
        let root = self.root;
        let mut done: HashSet<String> = HashSet::new();
        let mut block = String::new();
        for op in ops {
            let name = &op.op.name.value;
            if !done.insert(name.clone()) {
                continue;
            }
            let constant = format!("OP_{}", upper_snake_case(name));
            self.claim(
                false,
                &constant,
                format!("the operation constant of `{name}`"),
                root,
                op.op.name.span,
            );
            let _ = writeln!(
                block,
                "/// The wire name of operation `{name}`.\npub const {constant}: &str = {name:?};"
            );
        }
        self.emit(None, &block);
    }

    fn doc_comment(out: &mut String, description: Option<&Description>, fallback: &str) {
        let text = description.map_or(fallback, |d| d.value.as_str());
        let text = if text.trim().is_empty() {
            fallback
        } else {
            text
        };
        for line in text.trim().lines() {
            let line = line.trim_end();
            if line.is_empty() {
                out.push_str("///\n");
            } else {
                let _ = writeln!(out, "/// {line}");
            }
        }
    }

    fn derives(&self, default: bool) -> String {
        format!(
            "#[derive(Debug, Clone, PartialEq{}, ::serde::Serialize, ::serde::Deserialize)]\n",
            if default { ", Default" } else { "" }
        )
    }

    fn struct_def(&mut self, i: usize, t: &'a TypeDef) {
        let doc = self.defs[i].doc;
        let rust = self.defs[i].rust.clone();
        let mut code = String::new();
        Self::doc_comment(
            &mut code,
            t.description.as_ref(),
            &format!("The `{}` type.", t.name.value),
        );
        code.push_str(&self.derives(self.defaultable[i]));
        let _ = writeln!(code, "pub struct {rust} {{");
        let mut seen: HashMap<String, &str> = HashMap::new();
        for f in &t.fields {
            let snake = snake_case(&f.name.value);
            let Some(field) = ident(&snake) else {
                self.error(
                    doc,
                    f.name.span,
                    "bad-name",
                    format!("field name `{}` has no letters or digits", f.name.value),
                );
                continue;
            };
            if let Some(other) = seen.insert(snake.clone(), &f.name.value) {
                self.error(
                    doc,
                    f.name.span,
                    "name-collision",
                    format!(
                        "fields `{other}` and `{}` of `{}` both become `{snake}` in Rust",
                        f.name.value, t.name.value
                    ),
                );
            }
            let reference = is_reference(&f.annotations);
            Self::doc_comment(
                &mut code,
                f.description.as_ref(),
                &format!("The `{}` field.", f.name.value),
            );
            code.push_str(&self.field_attrs(&f.name.value, &f.ty, reference));
            let ty = self.ty(&f.ty, Pos::Direct, Some(i), reference);
            let _ = writeln!(code, "pub {field}: {ty},");
        }
        code.push_str("}\n");
        self.emit(None, &code);
    }

    fn enum_def(&mut self, i: usize, e: &'a Enum) {
        let doc = self.defs[i].doc;
        let rust = self.defs[i].rust.clone();
        let mut variants: Vec<(String, u32, String)> = Vec::new();
        let mut body = String::new();
        let mut seen_variants: HashMap<String, &str> = HashMap::new();
        for (n, v) in e.values.iter().enumerate() {
            let variant = type_name(&v.name.value);
            if let Some(other) = seen_variants.insert(variant.clone(), &v.name.value) {
                self.error(
                    doc,
                    v.name.span,
                    "name-collision",
                    format!(
                        "enum values `{other}` and `{}` both become `{variant}` in Rust",
                        v.name.value
                    ),
                );
            }
            let Ok(index) = u32::try_from(v.index) else {
                self.error(
                    doc,
                    v.index_span,
                    "bad-enum-index",
                    format!("enum index {} does not fit in u32", v.index),
                );
                continue;
            };
            let display = v
                .display
                .as_ref()
                .map_or_else(|| v.name.value.clone(), |(s, _)| s.value.clone());
            Self::doc_comment(
                &mut body,
                v.description.as_ref(),
                &format!("`{}` (wire value {index}).", v.name.value),
            );
            if n == 0 {
                body.push_str("#[default]\n");
            }
            let _ = writeln!(body, "{variant},");
            variants.push((variant, index, display));
        }
        let mut code = String::new();
        Self::doc_comment(
            &mut code,
            e.description.as_ref(),
            &format!("The `{}` enumeration.", e.name.value),
        );
        code.push_str("///\n/// Encoded as its number (msgpack integer).\n");
        let default = if variants.is_empty() { "" } else { ", Default" };
        let _ = writeln!(
            code,
            "#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash{default})]\npub enum {rust} {{\n{body}}}\n"
        );
        let arms = |f: &dyn Fn(&(String, u32, String)) -> String| -> String {
            variants.iter().map(f).collect::<Vec<_>>().join("\n")
        };
        let all = variants
            .iter()
            .map(|(v, _, _)| format!("{rust}::{v}"))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = write!(
            code,
            "impl {rust} {{\n\
             /// Every value, in declaration order.\n\
             pub const ALL: &[{rust}] = &[{all}];\n\n\
             /// The number this value is sent as.\n\
             pub const fn index(self) -> u32 {{\nmatch self {{\n{index_arms}\n}}\n}}\n\n\
             /// The value sent as `index`, if any.\n\
             pub const fn from_index(index: u32) -> Option<Self> {{\nmatch index {{\n{from_arms}\n_ => None,\n}}\n}}\n\n\
             /// The display string from the WIDL (`= 0 as \"Display\"`), else the value's name.\n\
             pub const fn display(self) -> &'static str {{\nmatch self {{\n{display_arms}\n}}\n}}\n\
             }}\n\n",
            index_arms = arms(&|(v, n, _)| format!("{rust}::{v} => {n},")),
            from_arms = arms(&|(v, n, _)| format!("{n} => Some({rust}::{v}),")),
            display_arms = arms(&|(v, _, d)| format!("{rust}::{v} => {d:?},")),
        );
        let expected = variants
            .iter()
            .map(|(_, n, _)| n.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let _ = write!(
            code,
            "impl ::std::fmt::Display for {rust} {{\n\
             fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {{\n\
             f.write_str(self.display())\n}}\n}}\n\n\
             impl ::serde::Serialize for {rust} {{\n\
             fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {{\n\
             serializer.serialize_u32(self.index())\n}}\n}}\n\n\
             impl<'de> ::serde::Deserialize<'de> for {rust} {{\n\
             fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {{\n\
             let index = <u32 as ::serde::Deserialize>::deserialize(deserializer)?;\n\
             Self::from_index(index).ok_or_else(|| {{\n\
             ::serde::de::Error::custom(format_args!(\"unknown {name} value {{index}}; expected one of: {expected}\"))\n\
             }})\n}}\n}}\n",
            name = e.name.value,
        );
        self.emit(None, &code);
    }

    fn union_def(&mut self, i: usize, u: &'a Union) {
        let doc = self.defs[i].doc;
        let rust = self.defs[i].rust.clone();
        let mut body = String::new();
        let mut seen: HashMap<String, String> = HashMap::new();
        for m in &u.members {
            let (variant, tag) = self.member_names(m);
            if let Some(other) = seen.insert(variant.clone(), tag.clone()) {
                self.error(
                    doc,
                    m.span,
                    "name-collision",
                    format!(
                        "union members `{other}` and `{tag}` of `{}` both become variant \
                         `{variant}`",
                        u.name.value
                    ),
                );
            }
            let ty = self.ty(m, Pos::Nested, Some(i), false);
            let _ = writeln!(body, "/// A `{tag}`.");
            if variant != tag {
                let _ = writeln!(body, "#[serde(rename = {tag:?})]");
            }
            let _ = writeln!(body, "{variant}({ty}),");
        }
        let mut code = String::new();
        Self::doc_comment(
            &mut code,
            u.description.as_ref(),
            &format!("The `{}` union.", u.name.value),
        );
        code.push_str(
            "///\n/// Encoded as a one-entry map from the member's WIDL type name to its value.\n",
        );
        code.push_str(&self.derives(false));
        let _ = writeln!(code, "pub enum {rust} {{\n{body}}}");
        self.emit(None, &code);
    }

    /// The variant name and wire tag of a union member.
    fn member_names(&self, t: &TypeRef) -> (String, String) {
        let (variant, tag) = match &t.kind {
            TypeKind::Named { name, .. } => match self.def_of(t) {
                Some(i) => (self.defs[i].rust.clone(), self.defs[i].name().value.clone()),
                None => (type_name(&name.value), name.value.clone()),
            },
            TypeKind::List(item) => {
                let (v, tag) = self.member_names(item);
                (format!("ListOf{v}"), format!("[{tag}]"))
            }
            TypeKind::Map { key, value } => {
                let (k, ktag) = self.member_names(key);
                let (v, vtag) = self.member_names(value);
                (format!("MapOf{k}To{v}"), format!("{{{ktag}: {vtag}}}"))
            }
        };
        if t.optional {
            (format!("Optional{variant}"), format!("{tag}?"))
        } else {
            (variant, tag)
        }
    }

    fn alias_def(&mut self, i: usize, a: &'a Alias) {
        let rust = self.defs[i].rust.clone();
        let target = if is_reference(&a.annotations) {
            "String".to_string()
        } else {
            match &a.target {
                Some(t) => self.ty(t, Pos::Nested, None, false),
                None => {
                    self.uses.value.set(true);
                    "::rmpv::Value".to_string()
                }
            }
        };
        let mut code = String::new();
        Self::doc_comment(
            &mut code,
            a.description.as_ref(),
            &format!("The `{}` alias.", a.name.value),
        );
        let _ = writeln!(code, "pub type {rust} = {target};");
        self.emit(None, &code);
    }

    /// `import { X as Y }`: `pub type Y = X;`, so code can use the name the WIDL uses.
    fn import_alias_defs(&mut self) {
        let root = self.root;
        let aliases: Vec<(String, usize)> = self
            .import_aliases
            .iter()
            .map(|(name, &i)| (name.clone(), i))
            .collect();
        for (written, i) in aliases {
            let rust = type_name(&written);
            let target = self.defs[i].rust.clone();
            let original = self.defs[i].name().value.clone();
            // The file name only: generated code must not depend on where it was run from.
            let file = std::path::Path::new(&self.defs[i].doc.file)
                .file_name()
                .map_or_else(String::new, |f| f.to_string_lossy().into_owned());
            let span = root
                .imports()
                .find_map(|imp| match &imp.items {
                    ImportItems::Names(names) => names
                        .iter()
                        .find(|n| n.alias.as_ref().is_some_and(|a| a.value == written))
                        .map(|n| n.span),
                    ImportItems::All(_) => None,
                })
                .unwrap_or_default();
            self.claim(
                true,
                &rust,
                format!("the import alias `{written}`"),
                root,
                span,
            );
            let code = format!(
                "/// `{original}` of `{file}`, imported as `{written}`.\npub type {rust} = {target};\n"
            );
            self.emit(None, &code);
        }
    }

    fn args_structs(&mut self, ops: &[OpRef<'a>]) {
        let root = self.root;
        let mut done: HashMap<String, String> = HashMap::new();
        for op in ops {
            let op = op.op;
            if op.is_unary() || op.parameters.is_empty() {
                continue;
            }
            let name = args_name(&op.name.value);
            let signature = self.signature(op);
            if let Some(previous) = done.get(&name) {
                if *previous != signature {
                    self.error(
                        root,
                        op.name.span,
                        "name-collision",
                        format!(
                            "operation `{}` needs an argument struct `{name}` that another \
                             operation already defines differently",
                            op.name.value
                        ),
                    );
                }
                continue;
            }
            done.insert(name.clone(), signature);
            self.claim(
                true,
                &name,
                format!("the argument struct of `{}`", op.name.value),
                root,
                op.name.span,
            );
            let mut state = vec![None; self.defs.len()];
            let mut visiting = vec![false; self.defs.len()];
            for (k, known) in self.defaultable.iter().enumerate() {
                state[k] = Some(*known);
            }
            let default = op.parameters.iter().all(|p| {
                is_reference(&p.annotations)
                    || self.ty_defaultable(&p.ty, &mut state, &mut visiting)
            });
            let mut code = String::new();
            let _ = writeln!(
                code,
                "/// The arguments of `{}`, sent as its payload (fields in parameter order).",
                op.name.value
            );
            code.push_str(&self.derives(default));
            let _ = writeln!(code, "pub struct {name} {{");
            for p in &op.parameters {
                let reference = is_reference(&p.annotations);
                let Some(field) = ident(&snake_case(&p.name.value)) else {
                    continue;
                };
                Self::doc_comment(
                    &mut code,
                    p.description.as_ref(),
                    &format!("The `{}` argument.", p.name.value),
                );
                code.push_str(&self.field_attrs(&p.name.value, &p.ty, reference));
                let ty = self.ty(&p.ty, Pos::Direct, None, reference);
                let _ = writeln!(code, "pub {field}: {ty},");
            }
            code.push_str("}\n");
            self.emit(None, &code);
        }
    }

    fn codec(&mut self) {
        self.emit(
            None,
            "/// Encodes a value the way every operation of this interface does: msgpack with structs\n\
             /// as maps keyed by field name (the published crates' `serialize`).\n\
             pub fn serialize<T: ::serde::Serialize + ?Sized>(\n\
             item: &T,\n\
             ) -> Result<Vec<u8>, ::rmp_serde::encode::Error> {\n\
             ::rmp_serde::to_vec_named(item)\n\
             }\n\n\
             /// Decodes one msgpack value. Structs are accepted as maps or as positional arrays, and\n\
             /// unknown map keys are ignored, as the published crates' `deserialize` did. Nesting\n\
             /// deeper than 128 arrays or maps is an error: serde skips an unknown key's value\n\
             /// recursively, and a thousand nested maps would overflow the decoding thread's stack.\n\
             pub fn deserialize<T: ::serde::de::DeserializeOwned>(\n\
             buf: &[u8],\n\
             ) -> Result<T, ::rmp_serde::decode::Error> {\n\
             let mut de = ::rmp_serde::Deserializer::from_read_ref(buf);\n\
             de.set_max_depth(129);\n\
             <T as ::serde::Deserialize>::deserialize(&mut de)\n\
             }\n",
        );
    }

    fn needs_line(&self) -> String {
        let mut deps = vec!["serde (feature derive)", "rmp-serde"];
        if self.uses.bytes.get() {
            deps.push("serde_bytes");
        }
        if self.uses.datetime.get() {
            deps.push("chrono (feature serde)");
        }
        if self.uses.value.get() {
            deps.push("rmpv (feature with-serde)");
        }
        let mut line = format!("// Needs the crates {}", deps.join(", "));
        if self.options.actor.is_some() {
            line.push_str("; actor side: nimbus-actor");
        }
        if self.options.provider.is_some() {
            line.push_str("; provider side: nimbus-provider-sdk");
        }
        line.push('.');
        line
    }

    // ---- actor side -----------------------------------------------------------------

    /// `name: Type` parameter list (owned values) and the argument names.
    fn params(&self, op: &Operation) -> (Vec<String>, Vec<String>) {
        let mut decls = Vec::new();
        let mut names = Vec::new();
        for p in &op.parameters {
            let Some(name) = ident(&snake_case(&p.name.value)) else {
                continue;
            };
            let ty = self.ty(&p.ty, Pos::Direct, None, is_reference(&p.annotations));
            decls.push(format!("{name}: {ty}"));
            names.push(name);
        }
        (decls, names)
    }

    fn actor_side(&mut self, gate: &Gate, ops: &[OpRef<'a>]) {
        let handled = self.unique_ops(ops, |g, o| g.is_actor_role(o.role));
        let called = self.unique_ops(ops, |g, o| g.is_host_role(o.role));
        let gate = Some(gate);
        let root = self.root;
        if !handled.is_empty() {
            self.claim(
                true,
                "Handlers",
                "the actor-side `Handlers`".into(),
                root,
                Span::new(0, 0),
            );
            let mut register = String::new();
            for op in &handled {
                register.push_str(&self.register_fn(op.op, gate));
            }
            self.emit(
                gate,
                "/// Registers the actor's typed handlers for the operations it implements. Call the\n\
                 /// `register_*` functions from `wapc_init`; each registers the operation under its\n\
                 /// wire name.\n\
                 #[derive(Debug, Clone, Copy, Default)]\n\
                 pub struct Handlers;\n",
            );
            self.emit(gate, &format!("impl Handlers {{\n{register}}}\n"));
        }
        if !called.is_empty() {
            self.claim(
                true,
                "Host",
                "the actor-side `Host`".into(),
                root,
                Span::new(0, 0),
            );
            self.claim(
                false,
                "host",
                "the actor-side `host()`".into(),
                root,
                Span::new(0, 0),
            );
            self.claim(
                false,
                "default",
                "the actor-side `default()`".into(),
                root,
                Span::new(0, 0),
            );
            self.emit(
                gate,
                "/// Calls the operations of this contract on the provider linked under one link name\n\
                 /// (`__host_call(link_name, CONTRACT_ID, operation, msgpack)`), through a\n\
                 /// [`HostCall`](::nimbus_actor::HostCall): the actor's real host\n\
                 /// ([`WapcHost`](::nimbus_actor::WapcHost), what [`host`] and [`default`] give), or\n\
                 /// a test double passed to [`Host::with_host`] in native tests.\n\
                 #[derive(Debug, Clone, PartialEq, Eq)]\n\
                 pub struct Host<H = ::nimbus_actor::WapcHost> {\n\
                 binding: String,\n\
                 host: H,\n\
                 }\n",
            );
            self.emit(
                gate,
                "impl Default for Host {\n\
                 /// The provider linked under the link name `default`.\n\
                 fn default() -> Self {\n\
                 Host::with_host(\"default\", ::nimbus_actor::WapcHost)\n\
                 }\n\
                 }\n",
            );
            self.emit(
                gate,
                "/// The provider linked under `binding` (the link name).\n\
                 pub fn host(binding: &str) -> Host {\n\
                 Host::with_host(binding, ::nimbus_actor::WapcHost)\n\
                 }\n",
            );
            self.emit(
                gate,
                "/// The provider linked under the link name `default`.\n\
                 pub fn default() -> Host {\n\
                 Host::default()\n\
                 }\n",
            );
            let mut methods = String::new();
            for op in &called {
                methods.push_str(&self.host_method(op.op));
            }
            self.emit(
                gate,
                &format!(
                    "impl<H: ::nimbus_actor::HostCall> Host<H> {{\n\
                     /// The provider linked under `binding`, called through `host` (a test double,\n\
                     /// or a host the actor's code is generic over).\n\
                     pub fn with_host(binding: &str, host: H) -> Self {{\n\
                     Host {{\n\
                     binding: binding.to_string(),\n\
                     host,\n\
                     }}\n\
                     }}\n\n\
                     /// The link name this sender calls.\n\
                     pub fn binding(&self) -> &str {{\n\
                     &self.binding\n\
                     }}\n\n\
                     /// One host call of `operation` on this link with an encoded `payload`, the\n\
                     /// host's error as it is: for helpers that inspect the host's error text or\n\
                     /// send operations newer than this code.\n\
                     pub fn raw_call(&self, operation: &str, payload: &[u8]) -> Result<Vec<u8>, ::nimbus_actor::HostError> {{\n\
                     self.host.host_call(&self.binding, CONTRACT_ID, operation, payload)\n\
                     }}\n\n\
                     {methods}}}\n"
                ),
            );
        }
    }

    fn register_fn(&mut self, op: &'a Operation, gate: Option<&Gate>) -> String {
        let root = self.root;
        let wire = &op.name.value;
        let snake = snake_case(wire);
        let Some(fn_name) = ident(&snake) else {
            return String::new();
        };
        let upper = upper_snake_case(wire);
        let alias = format!("{}Handler", pascal_case(wire));
        let cell = format!("HANDLER_{upper}");
        let wrapper = format!("{snake}_wrapper");
        self.claim(
            true,
            &alias,
            format!("the handler type of `{wire}`"),
            root,
            op.name.span,
        );
        self.claim(
            false,
            &cell,
            format!("the handler cell of `{wire}`"),
            root,
            op.name.span,
        );
        self.claim(
            false,
            &wrapper,
            format!("the handler wrapper of `{wire}`"),
            root,
            op.name.span,
        );
        let (decls, names) = self.params(op);
        let param_types: Vec<String> = decls
            .iter()
            .map(|d| d.split_once(": ").map_or(d.clone(), |(_, t)| t.to_string()))
            .collect();
        let ret = self.ret_ty(op);
        let op_const = format!("OP_{upper}");

        let mut doc = String::new();
        Self::doc_comment(
            &mut doc,
            op.description.as_ref(),
            &format!("Handles operation `{wire}`."),
        );
        self.emit(
            gate,
            &format!(
                "/// The typed handler of operation `{wire}`.\n\
                 pub type {alias} = fn({}) -> ::nimbus_actor::HandlerResult<{ret}>;\n",
                param_types.join(", ")
            ),
        );
        self.emit(
            gate,
            &format!(
                "thread_local! {{\n    \
                 static {cell}: ::std::cell::Cell<Option<{alias}>> =\n        \
                 const {{ ::std::cell::Cell::new(None) }};\n\
                 }}\n"
            ),
        );
        // The wrapper: decode, call, encode.
        let call_args = names
            .iter()
            .map(|n| format!("args.{n}"))
            .collect::<Vec<_>>()
            .join(", ");
        let (decode, call) = if op.parameters.is_empty() {
            ("let _ = payload;\n".to_string(), "handler()".to_string())
        } else if op.is_unary() {
            let p = &op.parameters[0];
            let decode = self.decode_expr(&p.ty, is_reference(&p.annotations), "payload");
            (
                format!(
                    "let input = {decode}.map_err(|e| format!(\"invalid payload for {{{op_const}}}: {{e}}\"))?;\n"
                ),
                "handler(input)".to_string(),
            )
        } else {
            let args = args_name(wire);
            (
                format!(
                    "let args = deserialize::<{args}>(payload).map_err(|e| format!(\"invalid payload for {{{op_const}}}: {{e}}\"))?;\n"
                ),
                format!("handler({call_args})"),
            )
        };
        // A void result is sent as msgpack nil.
        let finish = match &op.returns {
            Some(t) if !op.returns_void() => format!(
                "let output = {call}?;\nOk({}?)\n",
                self.encode_expr(t, is_reference(&op.annotations), "output")
            ),
            _ => format!("{call}?;\nOk(serialize(&())?)\n"),
        };
        self.emit(
            gate,
            &format!(
                "fn {wrapper}(payload: &[u8]) -> ::nimbus_actor::HandlerResult<Vec<u8>> {{\n\
                 let Some(handler) = {cell}.with(::std::cell::Cell::get) else {{\n\
                 return Err(format!(\"no handler registered for {{{op_const}}}\").into());\n\
                 }};\n\
                 {decode}\
                 {finish}\
                 }}\n"
            ),
        );
        format!(
            "{doc}///\n\
             /// Registers `f` as the handler of operation `{wire}` (replacing any earlier one).\n\
             pub fn register_{fn_name}(f: {alias}) {{\n\
             {cell}.with(|cell| cell.set(Some(f)));\n\
             ::nimbus_actor::register_function({op_const}, {wrapper});\n\
             }}\n\n",
            fn_name = fn_name.trim_start_matches("r#"),
        )
    }

    fn host_method(&mut self, op: &'a Operation) -> String {
        let wire = &op.name.value;
        let Some(method) = ident(&snake_case(wire)) else {
            return String::new();
        };
        if ["with_host", "binding", "raw_call"].contains(&method.as_str()) {
            let root = self.root;
            self.error(
                root,
                op.name.span,
                "name-collision",
                format!("operation `{wire}` would shadow `Host::{method}`; rename it"),
            );
        }
        let op_const = format!("OP_{}", upper_snake_case(wire));
        let (decls, names) = self.params(op);
        let ret = self.ret_ty(op);
        let mut code = String::new();
        Self::doc_comment(
            &mut code,
            op.description.as_ref(),
            &format!("Calls operation `{wire}`."),
        );
        if decls.len() > 6 {
            code.push_str("#[allow(clippy::too_many_arguments)]\n");
        }
        let payload = if op.parameters.is_empty() {
            "let payload: Vec<u8> = Vec::new();\n".to_string()
        } else if op.is_unary() {
            let p = &op.parameters[0];
            let value = names.first().cloned().unwrap_or_default();
            format!(
                "let payload = {}?;\n",
                self.encode_expr(&p.ty, is_reference(&p.annotations), &value)
            )
        } else {
            format!(
                "let payload = serialize(&{} {{ {} }})?;\n",
                args_name(wire),
                names.join(", ")
            )
        };
        let reply = if op.returns_void() {
            format!(
                "self.raw_call({op_const}, &payload)?;\n\
                 Ok(())\n"
            )
        } else {
            let decode = match &op.returns {
                Some(t) => self.decode_expr(t, is_reference(&op.annotations), "&reply"),
                None => String::new(),
            };
            format!(
                "let reply = self.raw_call({op_const}, &payload)?;\n\
                 let output = {decode}.map_err(|e| format!(\"invalid reply to {{{op_const}}} from {{CONTRACT_ID}}: {{e}}\"))?;\n\
                 Ok(output)\n"
            )
        };
        let _ = write!(
            code,
            "pub fn {method}(&self{sep}{params}) -> ::nimbus_actor::HandlerResult<{ret}> {{\n\
             {payload}{reply}}}\n\n",
            sep = if decls.is_empty() { "" } else { ", " },
            params = decls.join(", "),
        );
        code
    }

    // ---- provider side --------------------------------------------------------------

    fn provider_side(&mut self, gate: &Gate, ops: &[OpRef<'a>]) {
        let gate = Some(gate);
        let root = self.root;
        let mut used_bad_payload = false;
        let mut used_encode_failed = false;

        // One trait and dispatcher per provider-implemented block.
        let mut blocks: Vec<(Option<&'a Role>, Vec<OpRef<'a>>)> = Vec::new();
        for d in &root.definitions {
            let (role, list): (Option<&'a Role>, &'a [Operation]) = match d {
                Definition::Role(r) => (Some(r), &r.operations),
                Definition::Interface(i) => (None, &i.operations),
                _ => continue,
            };
            if !self.is_provider_role(role) {
                continue;
            }
            let refs: Vec<OpRef<'a>> = list.iter().map(|op| OpRef { op, role }).collect();
            let unique = self.unique_ops(&refs, |_, _| true);
            if let Some(existing) = blocks
                .iter_mut()
                .find(|(r, _)| r.is_none() && role.is_none())
            {
                existing.1.extend(unique);
            } else {
                blocks.push((role, unique));
            }
        }
        for (role, list) in &blocks {
            let (trait_name, span, description) = match role {
                Some(r) => (
                    type_name(&r.name.value),
                    r.name.span,
                    r.description.as_ref(),
                ),
                None => ("Interface".to_string(), Span::new(0, 0), None),
            };
            let block_name = role.map_or("the interface".to_string(), |r| {
                format!("role `{}`", r.name.value)
            });
            self.claim(
                true,
                &trait_name,
                format!("the provider trait of {block_name}"),
                root,
                span,
            );
            let dispatch = format!("dispatch_{}", snake_case(&trait_name));
            self.claim(
                false,
                &dispatch,
                format!("the dispatcher of {block_name}"),
                root,
                span,
            );

            let mut methods = String::new();
            let mut arms = String::new();
            let mut uses_payload = false;
            for op in list {
                let op = op.op;
                let wire = &op.name.value;
                let Some(method) = ident(&snake_case(wire)) else {
                    continue;
                };
                let op_const = format!("OP_{}", upper_snake_case(wire));
                let ret = self.ret_ty(op);
                Self::doc_comment(
                    &mut methods,
                    op.description.as_ref(),
                    &format!("Handles operation `{wire}`."),
                );
                let (input_decl, decode, call) = if op.parameters.is_empty() {
                    (
                        String::new(),
                        String::new(),
                        format!("provider.{method}(ctx)"),
                    )
                } else if op.is_unary() {
                    let p = &op.parameters[0];
                    let reference = is_reference(&p.annotations);
                    let name = ident(&snake_case(&p.name.value))
                        .filter(|n| n != "ctx")
                        .unwrap_or_else(|| "input".into());
                    let ty = self.ty(&p.ty, Pos::Direct, None, reference);
                    uses_payload = true;
                    used_bad_payload = true;
                    (
                        format!(", {name}: {ty}"),
                        format!(
                            "let input = {}.map_err(|e| provider_bad_payload(operation, e))?;\n",
                            self.decode_expr(&p.ty, reference, "payload")
                        ),
                        format!("provider.{method}(ctx, input)"),
                    )
                } else {
                    let args = args_name(wire);
                    uses_payload = true;
                    used_bad_payload = true;
                    (
                        format!(", args: {args}"),
                        format!(
                            "let args = deserialize::<{args}>(payload).map_err(|e| provider_bad_payload(operation, e))?;\n"
                        ),
                        format!("provider.{method}(ctx, args)"),
                    )
                };
                let _ = writeln!(
                    methods,
                    "fn {method}(&self, ctx: &::nimbus_provider_sdk::CallContext{input_decl}) -> impl ::std::future::Future<Output = Result<{ret}, ::nimbus_provider_sdk::ProviderError>> + Send;\n"
                );
                let finish = match &op.returns {
                    Some(t) if !op.returns_void() => format!(
                        "let output = {call}.await?;\n{}.map_err(|e| provider_encode_failed(operation, e))\n",
                        self.encode_expr(t, is_reference(&op.annotations), "output")
                    ),
                    _ => format!(
                        "{call}.await?;\nserialize(&()).map_err(|e| provider_encode_failed(operation, e))\n"
                    ),
                };
                used_encode_failed = true;
                let _ = writeln!(arms, "{op_const} => {{\n{decode}{finish}}}");
            }
            let mut code = String::new();
            Self::doc_comment(
                &mut code,
                description,
                &format!(
                    "The operations of {block_name} of `{}`.",
                    self.namespace_text()
                ),
            );
            let _ = write!(
                code,
                "///\n\
                 /// Implemented by a provider; [`{dispatch}`] routes invocations to the methods.\n\
                 pub trait {trait_name}: Send + Sync {{\n{methods}}}\n"
            );
            self.emit(gate, &code);
            let payload_name = if uses_payload { "payload" } else { "_payload" };
            let code = format!(
                "/// Routes one invocation to the method of `provider` named by `operation` (the wire\n\
                 /// name): decodes the msgpack `payload`, calls the method and encodes its result.\n\
                 /// Call it from `Provider::handle_invocation`. Unknown operations and undecodable\n\
                 /// payloads are `ProviderError::UnknownOperation` and `ProviderError::BadPayload`.\n\
                 pub async fn {dispatch}<P: {trait_name} + ?Sized>(\n\
                 provider: &P,\n\
                 ctx: &::nimbus_provider_sdk::CallContext,\n\
                 operation: &str,\n\
                 {payload_name}: &[u8],\n\
                 ) -> Result<Vec<u8>, ::nimbus_provider_sdk::ProviderError> {{\n\
                 match operation {{\n\
                 {arms}\
                 _ => Err(::nimbus_provider_sdk::ProviderError::UnknownOperation {{\n\
                 contract_id: CONTRACT_ID.to_string(),\n\
                 operation: operation.to_string(),\n\
                 }}),\n\
                 }}\n\
                 }}\n"
            );
            self.emit(gate, &code);
        }

        // Typed calls into actors.
        let handled = self.unique_ops(ops, |g, o| g.is_actor_role(o.role));
        if !handled.is_empty() {
            self.claim(
                true,
                "ActorClient",
                "the provider-side `ActorClient`".into(),
                root,
                Span::new(0, 0),
            );
            used_encode_failed = true;
            let mut methods = String::new();
            for op in &handled {
                methods.push_str(&self.client_method(op.op));
            }
            self.emit(
                gate,
                "/// Calls the operations actors implement on one actor, through the provider's\n\
                 /// [`ActorCaller`](::nimbus_provider_sdk::ActorCaller) (`ProviderContext::actors`).\n\
                 #[derive(Clone, Copy)]\n\
                 pub struct ActorClient<'a> {\n\
                 caller: &'a dyn ::nimbus_provider_sdk::ActorCaller,\n\
                 actor_id: &'a str,\n\
                 }\n",
            );
            self.emit(
                gate,
                &format!(
                    "impl<'a> ActorClient<'a> {{\n\
                     /// A client for the actor `actor_id` (its `M...` public key) calling through `caller`.\n\
                     pub fn new(caller: &'a dyn ::nimbus_provider_sdk::ActorCaller, actor_id: &'a str) -> Self {{\n\
                     ActorClient {{ caller, actor_id }}\n\
                     }}\n\n\
                     /// The actor this client calls.\n\
                     pub fn actor_id(&self) -> &'a str {{\n\
                     self.actor_id\n\
                     }}\n\n\
                     {methods}}}\n"
                ),
            );
        }
        if used_bad_payload {
            self.claim(
                false,
                "provider_bad_payload",
                "a provider helper".into(),
                root,
                Span::new(0, 0),
            );
            self.emit(
                gate,
                "fn provider_bad_payload(\n\
                 operation: &str,\n\
                 error: impl ::std::fmt::Display,\n\
                 ) -> ::nimbus_provider_sdk::ProviderError {\n\
                 ::nimbus_provider_sdk::ProviderError::BadPayload {\n\
                 operation: operation.to_string(),\n\
                 reason: error.to_string(),\n\
                 }\n\
                 }\n",
            );
        }
        if used_encode_failed {
            self.claim(
                false,
                "provider_encode_failed",
                "a provider helper".into(),
                root,
                Span::new(0, 0),
            );
            self.emit(
                gate,
                "fn provider_encode_failed(\n\
                 operation: &str,\n\
                 error: impl ::std::fmt::Display,\n\
                 ) -> ::nimbus_provider_sdk::ProviderError {\n\
                 ::nimbus_provider_sdk::ProviderError::Backend(format!(\n\
                 \"failed to encode the msgpack of operation {operation}: {error}\"\n\
                 ))\n\
                 }\n",
            );
        }
    }

    fn namespace_text(&self) -> String {
        self.root
            .namespace()
            .map(|n| n.name.value.clone())
            .unwrap_or_default()
    }

    fn client_method(&mut self, op: &'a Operation) -> String {
        let wire = &op.name.value;
        let Some(method) = ident(&snake_case(wire)) else {
            return String::new();
        };
        if method == "new" || method == "actor_id" {
            let root = self.root;
            self.error(
                root,
                op.name.span,
                "name-collision",
                format!("operation `{wire}` would shadow `ActorClient::{method}`; rename it"),
            );
        }
        let op_const = format!("OP_{}", upper_snake_case(wire));
        let (decls, names) = self.params(op);
        let ret = self.ret_ty(op);
        let mut code = String::new();
        Self::doc_comment(
            &mut code,
            op.description.as_ref(),
            &format!("Calls operation `{wire}` on the actor."),
        );
        if decls.len() > 6 {
            code.push_str("#[allow(clippy::too_many_arguments)]\n");
        }
        let payload = if op.parameters.is_empty() {
            "let payload: Vec<u8> = Vec::new();\n".to_string()
        } else if op.is_unary() {
            let p = &op.parameters[0];
            let value = names.first().cloned().unwrap_or_default();
            format!(
                "let payload = {}.map_err(|e| provider_encode_failed({op_const}, e))?;\n",
                self.encode_expr(&p.ty, is_reference(&p.annotations), &value)
            )
        } else {
            format!(
                "let payload = serialize(&{} {{ {} }}).map_err(|e| provider_encode_failed({op_const}, e))?;\n",
                args_name(wire),
                names.join(", ")
            )
        };
        let reply = if op.returns_void() {
            format!("self.caller.call_actor(self.actor_id, {op_const}, payload).await?;\nOk(())\n")
        } else {
            let decode = match &op.returns {
                Some(t) => self.decode_expr(t, is_reference(&op.annotations), "&reply"),
                None => String::new(),
            };
            format!(
                "let reply = self.caller.call_actor(self.actor_id, {op_const}, payload).await?;\n\
                 {decode}.map_err(|e| ::nimbus_provider_sdk::ProviderError::BadReply {{\n\
                 actor_id: self.actor_id.to_string(),\n\
                 operation: {op_const}.to_string(),\n\
                 reason: e.to_string(),\n\
                 }})\n"
            )
        };
        let _ = write!(
            code,
            "pub async fn {method}(&self{sep}{params}) -> Result<{ret}, ::nimbus_provider_sdk::ProviderError> {{\n\
             {payload}{reply}}}\n\n",
            sep = if decls.is_empty() { "" } else { ", " },
            params = decls.join(", "),
        );
        code
    }
}

/// Every type reference of an item.
fn item_refs<'a>(item: Item<'a>, out: &mut Vec<&'a TypeRef>) {
    match item {
        Item::Type(t) => out.extend(t.fields.iter().map(|f| &f.ty)),
        Item::Union(u) => out.extend(u.members.iter()),
        Item::Alias(a) => out.extend(a.target.iter()),
        Item::Enum(_) => {}
    }
}

/// Every type reference of some operations.
fn ops_refs<'a>(ops: &'a [Operation], out: &mut Vec<&'a TypeRef>) {
    for op in ops {
        out.extend(op.parameters.iter().map(|p| &p.ty));
        out.extend(op.returns.iter());
    }
}

/// The user definitions a type reference names, at any depth.
fn collect_defined(t: &TypeRef, out: &mut Vec<Key>) {
    match &t.kind {
        TypeKind::Named {
            resolved: Some(Resolved::Defined(d)),
            ..
        } => out.push((d.file.clone(), d.name.clone())),
        TypeKind::Named { .. } => {}
        TypeKind::List(item) => collect_defined(item, out),
        TypeKind::Map { key, value } => {
            collect_defined(key, out);
            collect_defined(value, out);
        }
    }
}
