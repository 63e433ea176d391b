//! The project file `nimbus.toml` that `wash new` writes and `wash build` and `wash dev`
//! read: what the project is (an actor or a provider), the actor's claims (name,
//! capabilities, call alias, version, revision), the build target, the keys that sign it,
//! and what `wash dev` runs next to the actor (`[dev]`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use nimbus_app::Builtin;
use serde::Deserialize;

/// The file name of a project file.
pub const PROJECT_FILE: &str = "nimbus.toml";

/// The wasm target actors are built for unless the project file names another.
pub const DEFAULT_ACTOR_TARGET: &str = "wasm32-unknown-unknown";

/// A parsed `nimbus.toml`. Exactly one of `actor` and `provider` is present.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectFile {
    /// The actor of an actor project.
    pub actor: Option<ActorSection>,
    /// The provider of a provider project.
    pub provider: Option<ProviderSection>,
    /// How to build.
    #[serde(default)]
    pub build: BuildSection,
    /// Which keys sign the actor.
    #[serde(default)]
    pub keys: KeysSection,
    /// What `wash dev` runs next to the actor.
    #[serde(default)]
    pub dev: DevSection,
}

/// `[actor]`: the claims `wash build` signs the module with.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActorSection {
    /// The actor's human-readable name.
    pub name: String,
    /// Capability contract ids, e.g. `wasmcloud:httpserver`.
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// The alias callers may use instead of the module key.
    pub call_alias: Option<String>,
    /// A version string.
    pub version: Option<String>,
    /// A revision number.
    pub revision: Option<i32>,
    /// Free-form tags.
    #[serde(default)]
    pub tags: Vec<String>,
}

/// `[provider]`: what the provider is.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSection {
    /// The provider's human-readable name.
    pub name: String,
    /// The contract it implements.
    pub contract_id: String,
    /// A version string.
    pub version: Option<String>,
}

/// `[build]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildSection {
    /// The Rust target of an actor (default `wasm32-unknown-unknown`).
    pub target: Option<String>,
    /// Where the signed module (or provider binary) goes, relative to the project file
    /// (default `build`).
    pub output_dir: Option<PathBuf>,
}

/// `[keys]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysSection {
    /// The keys directory, relative to the project file (`--keys-dir` wins; default
    /// `$WASH_KEYS`, else `~/.wash/keys`).
    pub directory: Option<PathBuf>,
    /// The module key's name in the keys directory.
    pub module: Option<String>,
    /// The account key's name in the keys directory.
    pub account: Option<String>,
}

/// The HTTP port `wash dev` serves on when neither `--port` nor `[dev] port` says.
pub const DEFAULT_DEV_PORT: u16 = 8080;

/// `[dev]`: the providers `wash dev` starts and links to the actor.
///
/// Decision: the providers are listed in the project file (`wash new` writes them, derived
/// from the template's capabilities) rather than only derived at run time, so a project
/// shows what it runs and can change it (another key-value backend, link values, a
/// provider binary of its own) without flags. A project file without `providers` (an
/// older one, or one written by hand) gets the derived defaults: see
/// [`DevProvider::defaults_for`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevSection {
    /// The port of the HTTP server's link (`wash dev --port` wins; default 8080).
    pub port: Option<u16>,
    /// The providers to start and link; absent: one per capability that has a built-in.
    pub providers: Option<Vec<DevProvider>>,
}

/// `[[dev.providers]]`: one provider `wash dev` starts and links to the actor.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevProvider {
    /// A provider built into wash (`httpserver`, `keyvalue`), run in the wash process.
    pub builtin: Option<Builtin>,
    /// Or a provider executable (e.g. what `wash build` made of a provider project),
    /// relative to the project file; it talks NATS, so it needs `wash dev --nats-url`.
    pub path: Option<PathBuf>,
    /// The contract of a `path` provider (a built-in's is known).
    pub contract_id: Option<String>,
    /// The link name (default `default`).
    pub link_name: Option<String>,
    /// The link's values. The HTTP server's `port` is set by `wash dev` (`--port`, `[dev]
    /// port`).
    #[serde(default)]
    pub values: BTreeMap<String, String>,
}

impl DevProvider {
    /// The providers `wash dev` runs for an actor with `capabilities` when the project
    /// file lists none: the built-in HTTP server for `wasmcloud:httpserver`, the built-in
    /// key-value store with the in-memory backend (nothing to set up, nothing left behind)
    /// for `wasmcloud:keyvalue`. Also returns the capabilities without a built-in, which
    /// need a `[[dev.providers]]` entry of their own.
    pub fn defaults_for<S: AsRef<str>>(capabilities: &[S]) -> (Vec<DevProvider>, Vec<String>) {
        let mut providers = Vec::new();
        let mut missing = Vec::new();
        for cap in capabilities {
            let cap = cap.as_ref();
            let Some(builtin) = Builtin::ALL.into_iter().find(|b| b.contract_id() == cap) else {
                missing.push(cap.to_string());
                continue;
            };
            let mut values = BTreeMap::new();
            if builtin == Builtin::Keyvalue {
                values.insert("backend".to_string(), "memory".to_string());
            }
            providers.push(DevProvider {
                builtin: Some(builtin),
                path: None,
                contract_id: None,
                link_name: None,
                values,
            });
        }
        (providers, missing)
    }

    /// The contract this provider implements.
    pub fn contract(&self) -> Option<&str> {
        match self.builtin {
            Some(b) => Some(b.contract_id()),
            None => self.contract_id.as_deref(),
        }
    }

    /// The link name (`default` unless given).
    pub fn link_name(&self) -> &str {
        self.link_name.as_deref().unwrap_or("default")
    }
}

impl ProjectFile {
    /// Parses and checks the text of a project file.
    pub fn parse(text: &str) -> anyhow::Result<ProjectFile> {
        let file: ProjectFile = toml::from_str(text).map_err(|e| anyhow::anyhow!("{e}"))?;
        match (&file.actor, &file.provider) {
            (Some(_), Some(_)) => bail!("give either an [actor] or a [provider] section, not both"),
            (None, None) => bail!("no [actor] or [provider] section"),
            (Some(actor), None) => {
                if actor.name.trim().is_empty() {
                    bail!("[actor] name is empty");
                }
                if let Some(cap) = actor.capabilities.iter().find(|c| !valid_contract_id(c)) {
                    bail!(
                        "[actor] capabilities: `{cap}` is not a contract id such as `wasmcloud:httpserver`"
                    );
                }
                for (i, p) in file.dev.providers.iter().flatten().enumerate() {
                    check_dev_provider(i, p)?;
                }
            }
            (None, Some(provider)) => {
                if file.dev != DevSection::default() {
                    bail!("[dev] is for actor projects: `wash dev` runs an actor");
                }
                if provider.name.trim().is_empty() {
                    bail!("[provider] name is empty");
                }
                if !valid_contract_id(&provider.contract_id) {
                    bail!(
                        "[provider] contract_id `{}` is not a contract id such as `example:greeter`",
                        provider.contract_id
                    );
                }
            }
        }
        Ok(file)
    }

    /// The Rust target an actor builds for.
    pub fn target(&self) -> &str {
        self.build.target.as_deref().unwrap_or(DEFAULT_ACTOR_TARGET)
    }
}

/// One `[[dev.providers]]` entry names exactly one provider, with a contract.
fn check_dev_provider(index: usize, p: &DevProvider) -> anyhow::Result<()> {
    let n = index + 1;
    match (&p.builtin, &p.path) {
        (Some(_), Some(_)) => {
            bail!("[[dev.providers]] #{n}: give either `builtin` or `path`, not both")
        }
        (None, None) => bail!(
            "[[dev.providers]] #{n}: say which provider: `builtin = \"httpserver\"` (or \"keyvalue\"), or `path = \"FILE\"` with `contract_id`"
        ),
        (Some(b), None) => {
            if p.contract_id
                .as_deref()
                .is_some_and(|c| c != b.contract_id())
            {
                bail!(
                    "[[dev.providers]] #{n}: the built-in {} implements {}; drop `contract_id`",
                    b.name(),
                    b.contract_id()
                );
            }
        }
        (None, Some(_)) => match &p.contract_id {
            Some(c) if valid_contract_id(c) => {}
            Some(c) => bail!(
                "[[dev.providers]] #{n}: `{c}` is not a contract id such as `example:greeter`"
            ),
            None => bail!(
                "[[dev.providers]] #{n}: a `path` provider needs `contract_id`, the contract it implements"
            ),
        },
    }
    if p.link_name.as_deref().is_some_and(|l| l.trim().is_empty()) {
        bail!("[[dev.providers]] #{n}: `link_name` is empty (leave it out for `default`)");
    }
    Ok(())
}

/// `namespace:name`, no blanks.
fn valid_contract_id(id: &str) -> bool {
    match id.split_once(':') {
        Some((ns, name)) => {
            !ns.is_empty() && !name.is_empty() && !id.chars().any(char::is_whitespace)
        }
        None => false,
    }
}

/// Finds the project file in `start` or the nearest parent directory that has one, and
/// reads it. Returns the project directory and the parsed file.
pub fn find(start: &Path) -> anyhow::Result<(PathBuf, ProjectFile)> {
    let mut dir = Some(start);
    while let Some(d) = dir {
        let path = d.join(PROJECT_FILE);
        if path.is_file() {
            return load(d).map(|file| (d.to_path_buf(), file));
        }
        dir = d.parent();
    }
    bail!(
        "no {PROJECT_FILE} in {} or any parent directory: this is not a nimbus project. Run `wash build` or `wash dev` in a directory `wash new actor NAME` (or `wash new provider NAME`) created, or pass --project DIR",
        start.display()
    )
}

/// The project of `wash build` and `wash dev`: `dir` (`--project DIR`), which must hold a
/// project file, else the nearest one from the current directory up.
pub fn locate(dir: Option<&Path>) -> anyhow::Result<(PathBuf, ProjectFile)> {
    match dir {
        Some(dir) => {
            if !dir.join(PROJECT_FILE).is_file() {
                bail!(
                    "{} has no {PROJECT_FILE}: it is not a nimbus project (create one with `wash new actor NAME`)",
                    dir.display()
                );
            }
            Ok((dir.to_path_buf(), load(dir)?))
        }
        None => {
            let cwd = std::env::current_dir().context("failed to read the current directory")?;
            find(&cwd)
        }
    }
}

/// Reads `dir/nimbus.toml`.
pub fn load(dir: &Path) -> anyhow::Result<ProjectFile> {
    let path = dir.join(PROJECT_FILE);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("failed to read the project file {}", path.display()))?;
    ProjectFile::parse(&text).with_context(|| format!("invalid project file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_an_actor_project() -> anyhow::Result<()> {
        let file = ProjectFile::parse(
            r#"
[actor]
name = "hello"
capabilities = ["wasmcloud:httpserver", "wasmcloud:keyvalue"]
call_alias = "hi"
version = "0.1.0"
revision = 3

[build]
output_dir = "out"

[keys]
directory = "keys"
module = "hello_module"
"#,
        )?;
        let actor = file.actor.clone().context("actor section")?;
        assert_eq!(actor.name, "hello");
        assert_eq!(
            actor.capabilities,
            ["wasmcloud:httpserver", "wasmcloud:keyvalue"]
        );
        assert_eq!(actor.call_alias.as_deref(), Some("hi"));
        assert_eq!(actor.revision, Some(3));
        assert_eq!(file.target(), DEFAULT_ACTOR_TARGET);
        assert_eq!(file.build.output_dir, Some(PathBuf::from("out")));
        assert_eq!(file.keys.module.as_deref(), Some("hello_module"));
        assert_eq!(file.keys.account, None);
        Ok(())
    }

    #[test]
    fn refuses_bad_project_files() {
        for (text, expected) in [
            ("", "no [actor] or [provider]"),
            ("[actor]\n", "missing field `name`"),
            (
                "[actor]\nname = \"a\"\nbogus = 1\n",
                "unknown field `bogus`",
            ),
            (
                "[actor]\nname = \"a\"\ncapabilities = [\"httpserver\"]\n",
                "not a contract id",
            ),
            (
                "[actor]\nname = \"a\"\n[provider]\nname = \"b\"\ncontract_id = \"x:y\"\n",
                "not both",
            ),
            (
                "[provider]\nname = \"b\"\ncontract_id = \"xy\"\n",
                "contract_id",
            ),
            ("[actor\nname = 1", "TOML"),
        ] {
            let err = match ProjectFile::parse(text) {
                Ok(file) => panic!("{text:?} parsed as {file:?}"),
                Err(e) => format!("{e:#}"),
            };
            assert!(
                err.contains(expected) || expected == "TOML",
                "{text:?}: {err}"
            );
        }
    }

    #[test]
    fn the_project_file_wash_new_writes_parses() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        assert!(find(dir.path()).is_err());
        let nested = dir.path().join("src");
        std::fs::create_dir(&nested)?;
        std::fs::write(
            dir.path().join(PROJECT_FILE),
            crate::new::actor_project_file("hello", "hello", &["wasmcloud:httpserver"]),
        )?;
        let (found, file) = find(&nested)?;
        assert_eq!(found, dir.path());
        let actor = file.actor.context("actor section")?;
        assert_eq!(actor.name, "hello");
        assert_eq!(actor.capabilities, ["wasmcloud:httpserver"]);
        assert_eq!(actor.call_alias.as_deref(), Some("hello"));
        assert_eq!(file.keys.module.as_deref(), Some("hello_module"));
        Ok(())
    }
}
