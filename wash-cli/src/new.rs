//! `wash new`: a new actor or provider project from the templates built into wash
//! (`wash-cli/templates`). The generated crate depends on this repository's guest SDK,
//! interface crates or provider SDK: by path on the checkout wash was built from (or
//! `--sdk-path DIR`), or by git (`--git URL`). It writes the project file `nimbus.toml`
//! that `wash build` reads.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Serialize;

use crate::output::OutputFormat;
use crate::project::{DevProvider, PROJECT_FILE};

/// The checkout wash was built from: the default `--sdk-path`.
const BUILT_FROM: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

const ACTOR_CARGO_TOML: &str = include_str!("../templates/actor-Cargo.toml");
const ACTOR_PROJECT_FILE: &str = include_str!("../templates/actor-nimbus.toml");
const GITIGNORE: &str = include_str!("../templates/gitignore");
const HELLO_LIB: &str = include_str!("../templates/actor-hello/src/lib.rs");
const KVCOUNTER_LIB: &str = include_str!("../templates/actor-kvcounter/src/lib.rs");
const PROVIDER_CARGO_TOML: &str = include_str!("../templates/provider/Cargo.toml");
const PROVIDER_PROJECT_FILE: &str = include_str!("../templates/provider-nimbus.toml");
const PROVIDER_LIB: &str = include_str!("../templates/provider/src/lib.rs");
const PROVIDER_MAIN: &str = include_str!("../templates/provider/src/main.rs");
const PROVIDER_BUILD: &str = include_str!("../templates/provider/build.rs");
const PROVIDER_WIDL: &str = include_str!("../templates/provider/interface.widl");

/// Subcommands of `wash new`.
#[derive(Debug, clap::Subcommand)]
pub enum NewCommand {
    /// A new actor project (a Rust crate for wasm, and its nimbus.toml).
    Actor(NewActorArgs),
    /// A new capability provider project (a native Rust binary on the provider SDK).
    Provider(NewProviderArgs),
}

/// The actor templates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ActorTemplate {
    /// Answers HTTP requests with a greeting (wasmcloud:httpserver).
    Hello,
    /// Counts HTTP requests per path in a key-value store (wasmcloud:httpserver,
    /// wasmcloud:keyvalue).
    Kvcounter,
}

/// Where the generated crate finds the nimbus crates.
#[derive(Debug, clap::Args)]
pub struct SdkSource {
    /// The nimbus repository checkout to depend on by path (default: the one this wash was
    /// built from).
    #[arg(long, value_name = "DIR", conflicts_with = "git")]
    sdk_path: Option<PathBuf>,
    /// Depend on the nimbus crates by git instead, from this repository URL.
    #[arg(long, value_name = "URL")]
    git: Option<String>,
    /// With --git: the branch, or a full 40-digit commit id, to use (default: the default
    /// branch).
    #[arg(long, value_name = "REF", requires = "git")]
    git_ref: Option<String>,
}

/// Arguments of `wash new actor`.
#[derive(Debug, clap::Args)]
pub struct NewActorArgs {
    /// The actor's name: the crate name and the directory created (letters, digits, `-`
    /// and `_`, starting with a letter).
    name: String,
    /// The template.
    #[arg(short, long, value_enum, default_value_t = ActorTemplate::Hello)]
    template: ActorTemplate,
    /// The directory to create (default: ./NAME). It must not exist.
    #[arg(long, value_name = "DIR")]
    path: Option<PathBuf>,
    #[command(flatten)]
    sdk: SdkSource,
}

/// Arguments of `wash new provider`.
#[derive(Debug, clap::Args)]
pub struct NewProviderArgs {
    /// The provider's name: the crate and binary name and the directory created.
    name: String,
    /// The contract id it implements (default: `example:NAME`).
    #[arg(long, value_name = "ID")]
    contract_id: Option<String>,
    /// The directory to create (default: ./NAME). It must not exist.
    #[arg(long, value_name = "DIR")]
    path: Option<PathBuf>,
    #[command(flatten)]
    sdk: SdkSource,
}

#[derive(Serialize)]
struct NewOutput {
    kind: &'static str,
    name: String,
    template: &'static str,
    directory: String,
    files: Vec<String>,
    /// `path DIR` or `git URL`.
    sdk: String,
}

/// Runs `wash new ...`.
pub fn run(cmd: NewCommand, output: OutputFormat) -> anyhow::Result<()> {
    let out = match cmd {
        NewCommand::Actor(args) => new_actor(args)?,
        NewCommand::Provider(args) => new_provider(args)?,
    };
    output.print(
        || {
            let mut text = format!(
                "Created {} `{}` ({} template) in {}\n  Nimbus crates: {}\n  Files:",
                out.kind, out.name, out.template, out.directory, out.sdk
            );
            for file in &out.files {
                let _ = write!(text, "\n    {file}");
            }
            let _ = write!(
                text,
                "\nNext: cd {} && wash build{}",
                out.directory,
                if out.kind == "actor" {
                    "   (builds for wasm32-unknown-unknown and signs)"
                } else {
                    ""
                }
            );
            text
        },
        &out,
    )
}

fn new_actor(args: NewActorArgs) -> anyhow::Result<NewOutput> {
    let crate_name = check_name(&args.name)?;
    let lib = crate_name.replace('-', "_");
    let dir = target_dir(args.path, &args.name)?;
    let deps = Deps::resolve(&args.sdk)?;
    let (template, source, caps, extra): (_, _, &[&str], &[&str]) = match args.template {
        ActorTemplate::Hello => ("hello", HELLO_LIB, &["wasmcloud:httpserver"], &[]),
        ActorTemplate::Kvcounter => (
            "kvcounter",
            KVCOUNTER_LIB,
            &["wasmcloud:httpserver", "wasmcloud:keyvalue"],
            &["serde_json = \"1\""],
        ),
    };
    let mut dependencies = vec![deps.line("nimbus-actor", "actors/sdk", None)];
    for cap in caps {
        let iface = cap.trim_start_matches("wasmcloud:");
        dependencies.push(deps.line(
            &format!("nimbus-interface-{iface}"),
            &format!("widl/interfaces/rust/{iface}"),
            Some("features = [\"actor\"]"),
        ));
    }
    dependencies.extend(extra.iter().map(|s| s.to_string()));
    let vars = Vars {
        name: &args.name,
        krate: &crate_name,
        lib: &lib,
        dependencies: &dependencies.join("\n"),
        ..Vars::default()
    };
    let mut files = vec![
        ("Cargo.toml", vars.apply(ACTOR_CARGO_TOML)),
        (PROJECT_FILE, actor_project_file(&args.name, &lib, caps)),
        (".gitignore", GITIGNORE.to_string()),
        ("src/lib.rs", vars.apply(source)),
    ];
    // The lock file of the repository's actors: the generated crate starts from the
    // dependency versions they are tested with (cargo drops the entries it does not need).
    if let Some(lock) = deps.lock_file("actors/Cargo.lock") {
        files.push(("Cargo.lock", lock));
    }
    write_project(&dir, &files)?;
    Ok(NewOutput {
        kind: "actor",
        name: args.name,
        template,
        directory: dir.display().to_string(),
        files: files.iter().map(|(f, _)| f.to_string()).collect(),
        sdk: deps.describe(),
    })
}

fn new_provider(args: NewProviderArgs) -> anyhow::Result<NewOutput> {
    let crate_name = check_name(&args.name)?;
    let lib = crate_name.replace('-', "_");
    let contract = args
        .contract_id
        .clone()
        .unwrap_or_else(|| format!("example:{lib}"));
    if contract
        .split_once(':')
        .is_none_or(|(a, b)| a.is_empty() || b.is_empty())
        || contract.contains(|c: char| c.is_whitespace() || c == '"' || c == '\\')
    {
        bail!("invalid --contract-id `{contract}`: give `namespace:name`, e.g. `example:greeter`");
    }
    let dir = target_dir(args.path, &args.name)?;
    let deps = Deps::resolve(&args.sdk)?;
    let type_name = type_name(&lib);
    let dependencies = deps.line(
        "nimbus-provider-sdk",
        "providers/sdk",
        Some("features = [\"nats\"]"),
    );
    let patch = deps.line("async-nats", "vendor/async-nats", None);
    // build.rs generates the provider side of interface.widl with the WIDL compiler.
    let build_dependencies = deps.line("nimbus-widl", "widl", None);
    let vars = Vars {
        name: &args.name,
        krate: &crate_name,
        lib: &lib,
        dependencies: &dependencies,
        build_dependencies: &build_dependencies,
        patch: &patch,
        contract: &contract,
        type_name: &type_name,
        ..Vars::default()
    };
    let mut files = vec![
        ("Cargo.toml", vars.apply(PROVIDER_CARGO_TOML)),
        (PROJECT_FILE, vars.apply(PROVIDER_PROJECT_FILE)),
        (".gitignore", GITIGNORE.to_string()),
        ("interface.widl", vars.apply(PROVIDER_WIDL)),
        ("build.rs", PROVIDER_BUILD.to_string()),
        ("src/lib.rs", vars.apply(PROVIDER_LIB)),
        ("src/main.rs", vars.apply(PROVIDER_MAIN)),
    ];
    if let Some(lock) = deps.lock_file("Cargo.lock") {
        files.push(("Cargo.lock", lock));
    }
    write_project(&dir, &files)?;
    Ok(NewOutput {
        kind: "provider",
        name: args.name,
        template: "provider",
        directory: dir.display().to_string(),
        files: files.iter().map(|(f, _)| f.to_string()).collect(),
        sdk: deps.describe(),
    })
}

/// The `nimbus.toml` of a new actor.
pub(crate) fn actor_project_file(name: &str, lib: &str, caps: &[&str]) -> String {
    let quoted = caps
        .iter()
        .map(|c| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(", ");
    Vars {
        name,
        lib,
        capabilities: &quoted,
        dev_providers: &dev_providers(caps),
        ..Vars::default()
    }
    .apply(ACTOR_PROJECT_FILE)
}

/// The `[[dev.providers]]` entries of a new actor: the defaults `wash dev` derives from its
/// capabilities, written out so the project shows (and may change) what runs.
fn dev_providers(caps: &[&str]) -> String {
    let (providers, missing) = DevProvider::defaults_for(caps);
    let mut text = String::new();
    for p in &providers {
        let Some(builtin) = p.builtin else { continue };
        let what = match builtin {
            nimbus_app::Builtin::Httpserver => {
                "the HTTP server built into wash; its `port` is [dev] port"
            }
            nimbus_app::Builtin::Keyvalue => {
                "the key-value store built into wash;\n# `backend` may be memory, file (with `path`), redis (with `url`) or nats"
            }
        };
        let _ = write!(text, "\n# {}: {what}", builtin.contract_id());
        let _ = write!(
            text,
            "\n[[dev.providers]]\nbuiltin = \"{}\"",
            builtin.name()
        );
        if !p.values.is_empty() {
            let values = p
                .values
                .iter()
                .map(|(k, v)| format!("{k} = \"{v}\""))
                .collect::<Vec<_>>()
                .join(", ");
            let _ = write!(text, "\nvalues = {{ {values} }}");
        }
        text.push('\n');
    }
    for cap in missing {
        let _ = write!(
            text,
            "\n# {cap} has no built-in provider: name one, e.g.\n# [[dev.providers]]\n# path = \"../my-provider/build/my-provider\"\n# contract_id = \"{cap}\"\n"
        );
    }
    text
}

/// The placeholders of the templates.
#[derive(Default)]
struct Vars<'a> {
    name: &'a str,
    krate: &'a str,
    lib: &'a str,
    dependencies: &'a str,
    build_dependencies: &'a str,
    patch: &'a str,
    contract: &'a str,
    type_name: &'a str,
    capabilities: &'a str,
    dev_providers: &'a str,
}

impl Vars<'_> {
    fn apply(&self, template: &str) -> String {
        [
            ("{{name}}", self.name),
            ("{{crate}}", self.krate),
            ("{{lib}}", self.lib),
            ("{{dependencies}}", self.dependencies),
            ("{{build_dependencies}}", self.build_dependencies),
            ("{{patch}}", self.patch),
            ("{{contract}}", self.contract),
            ("{{type}}", self.type_name),
            ("{{capabilities}}", self.capabilities),
            ("{{dev_providers}}", self.dev_providers),
        ]
        .iter()
        .fold(template.to_string(), |text, (key, value)| {
            text.replace(key, value)
        })
    }
}

/// How the generated Cargo.toml names the nimbus crates.
enum Deps {
    Path(PathBuf),
    Git {
        url: String,
        reference: Option<String>,
    },
}

impl Deps {
    fn resolve(sdk: &SdkSource) -> anyhow::Result<Deps> {
        if let Some(url) = &sdk.git {
            if url.contains(|c: char| c == '"' || c == '\\' || c.is_whitespace()) {
                bail!("invalid --git URL `{url}`");
            }
            return Ok(Deps::Git {
                url: url.clone(),
                reference: sdk.git_ref.clone(),
            });
        }
        let (root, given) = match &sdk.sdk_path {
            Some(dir) => (dir.clone(), true),
            None => (PathBuf::from(BUILT_FROM), false),
        };
        let Ok(root) = root.canonicalize() else {
            bail!(
                "the nimbus repository {} {} not found: pass --sdk-path DIR (a checkout of the nimbus repository) or --git URL",
                root.display(),
                if given {
                    "given with --sdk-path was"
                } else {
                    "this wash was built from was"
                }
            );
        };
        if !root.join("actors/sdk/Cargo.toml").is_file() {
            bail!(
                "{} is not a nimbus repository checkout (no actors/sdk/Cargo.toml): pass --sdk-path DIR or --git URL",
                root.display()
            );
        }
        let text = root.to_string_lossy();
        if text.contains(['"', '\\']) {
            bail!(
                "the path {} cannot be written into Cargo.toml; use --git URL",
                root.display()
            );
        }
        Ok(Deps::Path(root))
    }

    /// One `[dependencies]` line for crate `name` at `rel` in the repository.
    fn line(&self, name: &str, rel: &str, extra: Option<&str>) -> String {
        let source = match self {
            Deps::Path(root) => format!("path = \"{}\"", root.join(rel).display()),
            Deps::Git { url, reference } => match reference {
                Some(r) if r.len() == 40 && r.chars().all(|c| c.is_ascii_hexdigit()) => {
                    format!("git = \"{url}\", rev = \"{r}\"")
                }
                Some(r) => format!("git = \"{url}\", branch = \"{r}\""),
                None => format!("git = \"{url}\""),
            },
        };
        match extra {
            Some(extra) => format!("{name} = {{ {source}, {extra} }}"),
            None => format!("{name} = {{ {source} }}"),
        }
    }

    fn lock_file(&self, rel: &str) -> Option<String> {
        match self {
            Deps::Path(root) => std::fs::read_to_string(root.join(rel)).ok(),
            Deps::Git { .. } => None,
        }
    }

    fn describe(&self) -> String {
        match self {
            Deps::Path(root) => format!("path {}", root.display()),
            Deps::Git {
                url,
                reference: Some(r),
            } => format!("git {url} ({r})"),
            Deps::Git { url, .. } => format!("git {url}"),
        }
    }
}

/// Checks `name` and returns the crate name (lower case).
fn check_name(name: &str) -> anyhow::Result<String> {
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && name.len() <= 64;
    if !valid {
        bail!(
            "invalid name `{name}`: use letters, digits, `-` and `_`, starting with a letter (it becomes the crate and directory name)"
        );
    }
    let krate = name.to_ascii_lowercase();
    const RESERVED: &[&str] = &[
        "test",
        "core",
        "std",
        "alloc",
        "proc_macro",
        "self",
        "crate",
        "super",
        "build",
    ];
    if RESERVED.contains(&krate.replace('-', "_").as_str()) {
        bail!("invalid name `{name}`: it is reserved in Rust; choose another");
    }
    Ok(krate)
}

/// `my-store` → `MyStore`.
fn type_name(lib: &str) -> String {
    lib.split('_')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect::<String>()
        + "Provider"
}

fn target_dir(path: Option<PathBuf>, name: &str) -> anyhow::Result<PathBuf> {
    let dir = path.unwrap_or_else(|| PathBuf::from(name));
    if dir.exists() || dir.symlink_metadata().is_ok() {
        bail!(
            "{} already exists; nothing was written. Choose another name, pass --path DIR, or remove it first",
            dir.display()
        );
    }
    Ok(dir)
}

/// Creates `dir` (which must not exist) and writes `files` into it; on a failure removes
/// what it created.
fn write_project(dir: &Path, files: &[(&str, String)]) -> anyhow::Result<()> {
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("failed to create {}", parent.display()))?;
    }
    // `create_dir` (not `_all`) fails if the directory appeared meanwhile: never write
    // into a directory this command did not create.
    std::fs::create_dir(dir).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            anyhow::anyhow!("{} already exists; nothing was written", dir.display())
        } else {
            anyhow::Error::new(e).context(format!("failed to create {}", dir.display()))
        }
    })?;
    let written = files.iter().try_for_each(|(rel, text)| {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("failed to create {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("failed to write {}", path.display()))
    });
    if written.is_err() {
        let _ = std::fs::remove_dir_all(dir);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert_eq!(
            check_name("Hello-World").ok().as_deref(),
            Some("hello-world")
        );
        for bad in ["", "1abc", "a/b", "a b", "../x", "test", "a\"b"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        assert_eq!(type_name("my_store"), "MyStoreProvider");
    }

    #[test]
    fn dependency_lines() {
        let path = Deps::Path(PathBuf::from("/r"));
        assert_eq!(
            path.line("nimbus-actor", "actors/sdk", None),
            r#"nimbus-actor = { path = "/r/actors/sdk" }"#
        );
        let git = Deps::Git {
            url: "https://example.com/n.git".into(),
            reference: Some("main".into()),
        };
        assert_eq!(
            git.line("x", "y", Some("features = [\"actor\"]")),
            r#"x = { git = "https://example.com/n.git", branch = "main", features = ["actor"] }"#
        );
    }

    #[test]
    fn templates_have_no_unfilled_placeholders() -> anyhow::Result<()> {
        let vars = Vars {
            name: "n",
            krate: "n",
            lib: "n",
            dependencies: "d",
            build_dependencies: "b",
            patch: "p",
            contract: "a:b",
            type_name: "T",
            capabilities: "c",
            dev_providers: "",
        };
        for template in [
            ACTOR_CARGO_TOML,
            ACTOR_PROJECT_FILE,
            HELLO_LIB,
            KVCOUNTER_LIB,
            PROVIDER_CARGO_TOML,
            PROVIDER_PROJECT_FILE,
            PROVIDER_LIB,
            PROVIDER_MAIN,
            PROVIDER_WIDL,
        ] {
            let text = vars.apply(template);
            assert!(!text.contains("{{n"), "{text}");
            assert!(!text.contains("{{c"), "{text}");
            assert!(!text.contains("{{d"), "{text}");
            assert!(!text.contains("{{b"), "{text}");
        }
        crate::project::ProjectFile::parse(&vars.apply(PROVIDER_PROJECT_FILE))?;
        Ok(())
    }
}
