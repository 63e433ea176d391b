//! The project file `nimbus.toml` that `wash new` writes and `wash build` reads: what the
//! project is (an actor or a provider), the actor's claims (name, capabilities, call alias,
//! version, revision), the build target and the keys that sign it.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
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
            }
            (None, Some(provider)) => {
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
        "no {PROJECT_FILE} in {} or any parent directory: this is not a nimbus project. Run `wash build` in a directory `wash new actor NAME` (or `wash new provider NAME`) created, or pass --project DIR",
        start.display()
    )
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
