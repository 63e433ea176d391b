//! Import resolution through loaders, and import cycles.

use nimbus_widl::*;

#[test]
fn imports_from_disk_resolve_relative_to_the_importer() {
    let path = format!(
        "{}/tests/fixtures/imports/main.widl",
        env!("CARGO_MANIFEST_DIR")
    );
    let program = parse_and_check_file(&path).unwrap();
    assert!(program.diagnostics.is_empty(), "{}", program.render());
    assert_eq!(program.imports.len(), 1);
    assert!(
        program.imports[0]
            .file
            .ends_with("fixtures/imports/common.widl")
    );
    let root = program.root.unwrap();
    let op = &root.role("Service").unwrap().operations[0];
    let Some(Resolved::Defined(d)) = op.parameters[0].ty.resolved() else {
        panic!("unresolved")
    };
    assert_eq!((d.name.as_str(), d.kind), ("Uuid", DefKind::Alias));
    assert_eq!(d.file, program.imports[0].file);
    // The imported directive is known, so `@audited` produces no warning.
    assert_eq!(
        root.type_def("Record").unwrap().annotations[0].name.value,
        "audited"
    );
}

#[test]
fn missing_root_file_is_a_load_error() {
    let err = parse_and_check_file("/nonexistent/x.widl").unwrap_err();
    assert!(matches!(err, LoadError::NotFound(_)));
    assert_eq!(err.to_string(), "file `/nonexistent/x.widl` not found");
}

#[test]
fn import_cycle_a_b_a_is_reported() {
    let loader = MemoryLoader::new()
        .with_file(
            "a.widl",
            "namespace \"a\"\nimport * from \"b.widl\"\ntype A { b: B }",
        )
        .with_file("b.widl", "import { A } from \"a.widl\"\ntype B { a: A? }");
    let program = parse_and_check("a.widl", &loader).unwrap();
    let text = program.render();
    let cycles: Vec<&Diagnostic> = program
        .diagnostics
        .iter()
        .filter(|d| d.code == "import-cycle")
        .collect();
    assert_eq!(cycles.len(), 1, "{text}");
    assert_eq!(
        cycles[0].message,
        "import cycle: a.widl -> b.widl -> a.widl"
    );
    assert_eq!(
        (cycles[0].file.as_str(), cycles[0].line, cycles[0].column),
        ("b.widl", 1, 19)
    );
    assert!(text.contains("--> b.widl:1:19"), "{text}");
    // Names are still resolved, so the cycle is the only error.
    assert_eq!(program.diagnostics.len(), 1, "{text}");
}

#[test]
fn self_import_is_a_cycle() {
    let loader = MemoryLoader::new().with_file("s.widl", "import * from \"./s.widl\"\ntype S {}");
    let program = parse_and_check("s.widl", &loader).unwrap();
    assert_eq!(program.diagnostics.len(), 1);
    assert_eq!(
        program.diagnostics[0].message,
        "import cycle: s.widl -> s.widl"
    );
}

#[test]
fn longer_cycle_and_diamond() {
    let loader = MemoryLoader::new()
        .with_file(
            "a.widl",
            "import * from \"b.widl\"\nimport * from \"c.widl\"\ntype A { b: B, c: C }",
        )
        .with_file("b.widl", "import * from \"d.widl\"\ntype B { d: D }")
        .with_file("c.widl", "import * from \"d.widl\"\ntype C { d: D }")
        .with_file("d.widl", "type D {}");
    let program = parse_and_check("a.widl", &loader).unwrap();
    assert!(program.diagnostics.is_empty(), "{}", program.render());
    assert_eq!(program.imports.len(), 3, "d.widl is loaded once");

    let loader = MemoryLoader::new()
        .with_file("a.widl", "import * from \"b.widl\"\ntype A {}")
        .with_file("b.widl", "import * from \"c.widl\"\ntype B {}")
        .with_file("c.widl", "import * from \"a.widl\"\ntype C {}");
    let program = parse_and_check("a.widl", &loader).unwrap();
    assert_eq!(program.diagnostics.len(), 1, "{}", program.render());
    assert_eq!(
        program.diagnostics[0].message,
        "import cycle: a.widl -> b.widl -> c.widl -> a.widl"
    );
}

#[test]
fn missing_files_and_names() {
    let loader = MemoryLoader::new()
        .with_file("m.widl", "import * from \"gone.widl\"\nimport { X Y as Z } from \"lib.widl\"\nimport { Q } from \"gone2.widl\"\ntype M { a: Anything, x: X, z: Z, q: Q, bad: strng }")
        .with_file("lib.widl", "type X {}");
    let program = parse_and_check("m.widl", &loader).unwrap();
    let shown: Vec<(&str, usize, usize)> = program
        .diagnostics
        .iter()
        .map(|d| (d.code, d.line, d.column))
        .collect();
    // The failed `import *` suppresses "undefined type" for PascalCase names (they may come
    // from the missing file), but misspelled built-ins are still reported.
    assert_eq!(
        shown,
        [
            ("import", 1, 15),
            ("import", 2, 12),
            ("import", 3, 19),
            ("unknown-builtin", 4, 46)
        ],
        "{}",
        program.render()
    );
    assert!(
        program
            .render()
            .contains("cannot import `gone.widl`: file `gone.widl` not found")
    );
    assert!(
        program
            .render()
            .contains("`Y` is not defined in `lib.widl`")
    );
}

#[test]
fn import_conflicts() {
    let loader = MemoryLoader::new()
        .with_file("m.widl", "import * from \"one.widl\"\nimport * from \"two.widl\"\ntype Local {}\nimport { T as Local } from \"one.widl\"")
        .with_file("one.widl", "type T {}\ntype Shared {}")
        .with_file("two.widl", "type Shared {}");
    let program = parse_and_check("m.widl", &loader).unwrap();
    let codes: Vec<(&str, usize)> = program
        .diagnostics
        .iter()
        .map(|d| (d.code, d.line))
        .collect();
    assert_eq!(
        codes,
        [("duplicate", 2), ("duplicate", 4)],
        "{}",
        program.render()
    );
}

#[test]
fn errors_inside_imported_files_are_reported_with_their_file_name() {
    let loader = MemoryLoader::new()
        .with_file("m.widl", "import * from \"lib/bad.widl\"\ntype M { b: B }")
        .with_file("lib/bad.widl", "type B {\n  x: Nope\n  y: \n}");
    let program = parse_and_check("m.widl", &loader).unwrap();
    let text = program.render();
    assert!(text.contains("--> lib/bad.widl:2:6"), "{text}");
    assert!(text.contains("--> lib/bad.widl:3:5"), "{text}");
    assert!(text.contains("2 |   x: Nope"), "{text}");
}

#[test]
fn check_can_be_called_directly() {
    let (doc, diags) = parse(
        "root.widl",
        "import * from \"t.widl\"\nrole R { Op(t: T): T }",
    );
    assert!(diags.is_empty());
    let mut doc = doc.unwrap();
    let loader = MemoryLoader::new().with_file("t.widl", "type T { v: i32 }");
    let checked = check(&mut doc, &loader);
    assert!(checked.diagnostics.is_empty());
    assert_eq!(checked.imports.len(), 1);
    assert!(checked.files.get("t.widl").is_some());
    assert!(
        doc.roles().next().unwrap().operations[0].parameters[0]
            .ty
            .resolved()
            .is_some()
    );
}

#[test]
fn relative_paths_are_normalised() {
    assert_eq!(
        resolve_relative(Some("a/b/c.widl"), "../d.widl"),
        "a/d.widl"
    );
    assert_eq!(resolve_relative(Some("c.widl"), "./x/./y.widl"), "x/y.widl");
    assert_eq!(resolve_relative(None, "../up.widl"), "../up.widl");
    // Leading `..`s accumulate; they are never cancelled by each other.
    assert_eq!(resolve_relative(None, "../../up.widl"), "../../up.widl");
    assert_eq!(
        resolve_relative(Some("../x/a.widl"), "../../b.widl"),
        "../../b.widl"
    );
    assert_eq!(resolve_relative(None, "/../r.widl"), "/r.widl");
    assert_eq!(
        resolve_relative(Some("a/c.widl"), "/abs/z.widl"),
        "/abs/z.widl"
    );
}
