//! Turning WIDL names into Rust names, with the case rules of `@wapc/widl-codegen` so that
//! generated items are called what the published crates called them (`queryString` →
//! `query_string`, `SetIntersection` → `set_intersection`, `Set` → `SetArgs`).

/// Rust keywords that a raw identifier (`r#type`) can stand in for, 2024 edition included.
const RAW_KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "do", "dyn",
    "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl", "in", "let",
    "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref", "return",
    "static", "struct", "trait", "true", "try", "type", "typeof", "unsafe", "unsized", "use",
    "virtual", "where", "while", "yield",
];

/// Keywords that cannot be raw identifiers; a trailing `_` is added instead.
const NON_RAW_KEYWORDS: &[&str] = &["self", "Self", "super", "crate", "_"];

/// Splits a name into lower-case words: at lower/digit → upper, at the last upper of an
/// upper-case run followed by a lower-case letter (`HTTPServer` → `http`, `server`), and at
/// every non-alphanumeric character (which is dropped).
pub(crate) fn words(name: &str) -> Vec<String> {
    let chars: Vec<char> = name.chars().collect();
    let mut words = Vec::new();
    let mut current = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_ascii_alphanumeric() {
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
            continue;
        }
        if c.is_ascii_uppercase() && !current.is_empty() && i > 0 {
            let prev = chars[i - 1];
            let next_is_lower = chars.get(i + 1).is_some_and(char::is_ascii_lowercase);
            if prev.is_ascii_lowercase()
                || prev.is_ascii_digit()
                || (prev.is_ascii_uppercase() && next_is_lower)
            {
                words.push(std::mem::take(&mut current));
            }
        }
        current.push(c.to_ascii_lowercase());
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

/// `snake_case` of a WIDL name; empty if the name has no letters or digits.
pub(crate) fn snake_case(name: &str) -> String {
    words(name).join("_")
}

/// `UPPER_SNAKE_CASE` of a WIDL name, for constants and statics.
pub(crate) fn upper_snake_case(name: &str) -> String {
    snake_case(name).to_ascii_uppercase()
}

/// `PascalCase` built from the words of a name (`MY_VALUE` → `MyValue`).
pub(crate) fn pascal_case(name: &str) -> String {
    words(name)
        .iter()
        .map(|w| {
            let mut chars = w.chars();
            match chars.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

/// The Rust name of a type-like WIDL name (type, enum, enum value, union member, role).
///
/// A name that is already upper camel case is kept verbatim (`HealthCheckRequest`,
/// `HTTPRequest`); others are converted (`my_type` → `MyType`, `RED` → `Red`), so the
/// generated code triggers neither `non_camel_case_types` nor clippy's
/// `upper_case_acronyms`. Type names never travel on the wire, so renaming is safe.
pub(crate) fn type_name(name: &str) -> String {
    let starts_upper = name.chars().next().is_some_and(|c| c.is_ascii_uppercase());
    let all_upper = name.len() > 1
        && !name.chars().any(|c| c.is_ascii_lowercase())
        && name.chars().any(|c| c.is_ascii_alphabetic());
    if starts_upper && !name.contains('_') && !all_upper {
        name.to_string()
    } else {
        pascal_case(name)
    }
}

/// The `{Op}Args` struct name: the operation name with its first character upper-cased,
/// then `Args`, as the published generator did (`createCustomer` → `CreateCustomerArgs`).
pub(crate) fn args_name(op: &str) -> String {
    let mut chars = op.chars();
    let upper = match chars.next() {
        Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
        None => String::new(),
    };
    type_name(&upper) + "Args"
}

/// Makes a snake-case word usable as a Rust identifier: `type` → `r#type`, `self` →
/// `self_`. Returns `None` for an empty name.
pub(crate) fn ident(snake: &str) -> Option<String> {
    if snake.is_empty() {
        None
    } else if NON_RAW_KEYWORDS.contains(&snake) {
        Some(format!("{snake}_"))
    } else if RAW_KEYWORDS.contains(&snake) {
        Some(format!("r#{snake}"))
    } else {
        Some(snake.to_string())
    }
}

/// True if `name` is a Rust keyword that cannot be used as a type name.
pub(crate) fn is_keyword(name: &str) -> bool {
    RAW_KEYWORDS.contains(&name) || NON_RAW_KEYWORDS.contains(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_follows_change_case() {
        for (input, expected) in [
            ("queryString", "query_string"),
            ("SetIntersection", "set_intersection"),
            ("HandleRequest", "handle_request"),
            ("ListItemDelete", "list_item_delete"),
            ("new_count", "new_count"),
            ("newCount", "new_count"),
            ("HTTPServer", "http_server"),
            ("ID", "id"),
            ("v2Name", "v2_name"),
            ("getV2", "get_v2"),
            ("_private", "private"),
            ("a", "a"),
        ] {
            assert_eq!(snake_case(input), expected, "{input}");
        }
        assert_eq!(upper_snake_case("HandleRequest"), "HANDLE_REQUEST");
    }

    #[test]
    fn type_names_keep_camel_case_and_fix_the_rest() {
        assert_eq!(type_name("HealthCheckRequest"), "HealthCheckRequest");
        assert_eq!(type_name("HTTPRequest"), "HTTPRequest");
        assert_eq!(type_name("my_type"), "MyType");
        assert_eq!(type_name("RED"), "Red");
        assert_eq!(type_name("MY_VALUE"), "MyValue");
        assert_eq!(type_name("string"), "String");
        assert_eq!(type_name("i64"), "I64");
        assert_eq!(type_name("X"), "X");
    }

    #[test]
    fn args_names_match_the_published_generator() {
        assert_eq!(args_name("Set"), "SetArgs");
        assert_eq!(args_name("ListItemDelete"), "ListItemDeleteArgs");
        assert_eq!(args_name("createCustomer"), "CreateCustomerArgs");
    }

    #[test]
    fn identifiers_escape_keywords() {
        assert_eq!(ident("type").as_deref(), Some("r#type"));
        assert_eq!(ident("gen").as_deref(), Some("r#gen"));
        assert_eq!(ident("self").as_deref(), Some("self_"));
        assert_eq!(ident("name").as_deref(), Some("name"));
        assert_eq!(ident(""), None);
    }
}
