//! Application manifests: a YAML file naming the actors (module file, instance count,
//! host labels), the providers (built in or a binary, with configuration) and the links
//! between them that make up one app.
//!
//! The same manifest drives `wash up` (standalone, everything in one process) and
//! `wash app deploy` (a running lattice), so it says *what* runs, never *how*: no NATS
//! URLs, no host ids. Parsing rejects unknown keys (a typo is an error, not a silently
//! ignored setting), and validation reports every problem with its place in the file.
//!
//! ```yaml
//! name: petclinic
//! actors:
//!   - name: gateway
//!     path: ../actors/target/wasm/petclinic-gateway.wasm
//!     instances: 4          # warm minimum
//!     max_instances: 32     # optional ceiling of concurrent instances (default 64)
//!     call_alias: petclinic/gateway
//!     capabilities: [wasmcloud:httpserver]
//! providers:
//!   - name: http
//!     builtin: httpserver
//! links:
//!   - actor: gateway
//!     provider: http
//!     values: { port: "8080" }
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The link name used when a provider or link does not give one.
pub const DEFAULT_LINK_NAME: &str = "default";

/// A parsed and validated application manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The app's name (shown in events and `wash` output).
    pub name: String,
    /// Free text for humans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The version `wash app deploy` stores this manifest under (`--version` overrides
    /// it; without either, versions are numbered `v1`, `v2`, ...). A stored version never
    /// changes: deploying other content under the same version is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The actors, each under a name that links refer to.
    #[serde(default)]
    pub actors: Vec<ActorSpec>,
    /// The capability providers.
    #[serde(default)]
    pub providers: Vec<ProviderSpec>,
    /// Links from actors to providers.
    #[serde(default)]
    pub links: Vec<LinkSpec>,
}

/// One actor of the app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActorSpec {
    /// The name links use for this actor.
    pub name: String,
    /// The `.wasm` file, relative to the manifest's directory.
    pub path: PathBuf,
    /// The actor's warm minimum: instances started at once and kept even when idle (0.x's
    /// instance count). The host starts more while all are busy, up to `max_instances`,
    /// and drops the extra ones again after they sit idle.
    #[serde(default = "one")]
    pub instances: u32,
    /// The most instances that may run calls at once on one host (the actor's
    /// concurrency ceiling); without it the host's default (64) applies. At least
    /// `instances`. Honoured by `wash up`; hosts started by `wash app deploy` use their
    /// default, since the 0.x start-actor command has no field for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_instances: Option<u32>,
    /// Call alias other actors use to reach this one; written into the claims when the
    /// module is signed at deploy time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_alias: Option<String>,
    /// Contract ids the actor may use; written into the claims when the module is signed
    /// at deploy time.
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// Labels a host must carry to run this actor (lattice mode).
    #[serde(default)]
    pub host_labels: BTreeMap<String, String>,
    /// On how many hosts the reconciler runs this actor (each with `instances`), so that
    /// losing a host loses none of the app (lattice mode; `wash up` ignores it).
    #[serde(default = "one")]
    pub replicas: u32,
    /// How the replicas are shared among groups of hosts, by labels and weights (e.g.
    /// two zones 50/50). Empty: any host with `host_labels`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spread: Vec<Spread>,
}

/// One group of hosts that receives a share of an entity's replicas.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spread {
    /// Labels a host of this group carries (in addition to the entity's `host_labels`).
    pub labels: BTreeMap<String, String>,
    /// The group's share relative to the other groups' weights.
    #[serde(default = "one")]
    pub weight: u32,
}

/// How a provider runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSpec {
    /// The name links use for this provider.
    pub name: String,
    /// A provider compiled into the host: `httpserver` or `keyvalue`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builtin: Option<Builtin>,
    /// A provider binary (run out of process), relative to the manifest's directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// The contract id; implied for built-in providers, required for binaries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contract: Option<String>,
    /// The link name this provider serves.
    #[serde(default = "default_link_name")]
    pub link_name: String,
    /// Provider configuration, passed as its `config_json`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
    /// Labels a host must carry to run this provider (lattice mode).
    #[serde(default)]
    pub host_labels: BTreeMap<String, String>,
    /// On how many hosts the reconciler runs this provider (lattice mode).
    #[serde(default = "one")]
    pub replicas: u32,
    /// How the replicas are shared among groups of hosts (see [`Spread`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spread: Vec<Spread>,
}

/// The providers every host carries in process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Builtin {
    /// `wasmcloud:httpserver`.
    Httpserver,
    /// `wasmcloud:keyvalue`.
    Keyvalue,
}

impl Builtin {
    /// Every built-in provider.
    pub const ALL: [Builtin; 2] = [Builtin::Httpserver, Builtin::Keyvalue];

    /// The name as written in manifests (`httpserver`, `keyvalue`).
    pub fn name(self) -> &'static str {
        match self {
            Builtin::Httpserver => "httpserver",
            Builtin::Keyvalue => "keyvalue",
        }
    }

    /// The provider reference hosts register the built-in under (`builtin:httpserver`),
    /// which `wash app deploy` and `wash ctl start provider` name to start it.
    pub fn provider_ref(self) -> String {
        format!("builtin:{}", self.name())
    }

    /// The contract id the built-in provider implements.
    pub fn contract_id(self) -> &'static str {
        match self {
            Builtin::Httpserver => "wasmcloud:httpserver",
            Builtin::Keyvalue => "wasmcloud:keyvalue",
        }
    }
}

impl ProviderSpec {
    /// The provider's `config`, as the JSON object string providers receive as
    /// `config_json`; `None` when the manifest gives none.
    pub fn config_json(&self) -> Option<String> {
        // A map of strings always encodes.
        (!self.config.is_empty()).then(|| serde_json::to_string(&self.config).unwrap_or_default())
    }

    /// The contract id: the built-in's, or the one given for a binary.
    pub fn contract_id(&self) -> Option<&str> {
        match (self.builtin, &self.contract) {
            (_, Some(contract)) => Some(contract),
            (Some(builtin), None) => Some(builtin.contract_id()),
            (None, None) => None,
        }
    }
}

/// A link from an actor to a provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkSpec {
    /// The actor's manifest name.
    pub actor: String,
    /// The provider's manifest name.
    pub provider: String,
    /// Settings for the provider, per link (port, backend, ...).
    #[serde(default)]
    pub values: BTreeMap<String, String>,
}

fn one() -> u32 {
    1
}

fn default_link_name() -> String {
    DEFAULT_LINK_NAME.to_string()
}

/// Why a manifest cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The file could not be read.
    #[error("failed to read app manifest {path}: {source}")]
    Read {
        /// The manifest's path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The YAML is malformed or has keys of the wrong shape.
    #[error("{origin}: {message}")]
    Syntax {
        /// The file (or `<input>`), with line and column when known.
        origin: String,
        /// The parser's explanation.
        message: String,
    },
    /// The manifest parsed but describes an app that cannot run.
    #[error("{origin}: the app manifest has {} problem(s):\n{}", .problems.len(), Problems(.problems))]
    Invalid {
        /// The file (or `<input>`).
        origin: String,
        /// Every problem found, each starting with where it is.
        problems: Vec<String>,
    },
}

struct Problems<'a>(&'a [String]);

impl fmt::Display for Problems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "  - {p}")?;
        }
        Ok(())
    }
}

impl Manifest {
    /// Reads, parses and validates the manifest at `path`, and makes every file path in
    /// it relative to the current directory (they are written relative to the manifest).
    pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut manifest = Self::parse_named(&text, &path.display().to_string())?;
        let base = path.parent().unwrap_or_else(|| Path::new(""));
        for actor in &mut manifest.actors {
            actor.path = base.join(&actor.path);
        }
        for provider in &mut manifest.providers {
            if let Some(p) = &provider.path {
                provider.path = Some(base.join(p));
            }
        }
        Ok(manifest)
    }

    /// Parses and validates manifest text (paths are left as written).
    pub fn parse(text: &str) -> Result<Manifest, ManifestError> {
        Self::parse_named(text, "<input>")
    }

    fn parse_named(text: &str, origin: &str) -> Result<Manifest, ManifestError> {
        let manifest: Manifest =
            serde_yaml_ng::from_str(text).map_err(|e| ManifestError::Syntax {
                origin: match e.location() {
                    Some(at) => format!("{origin}:{}:{}", at.line(), at.column()),
                    None => origin.to_string(),
                },
                message: e.to_string(),
            })?;
        let problems = manifest.problems();
        if problems.is_empty() {
            Ok(manifest)
        } else {
            Err(ManifestError::Invalid {
                origin: origin.to_string(),
                problems,
            })
        }
    }

    /// Every reason this manifest cannot run, each prefixed with where it is.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.name.trim().is_empty() {
            problems.push("name: the app needs a non-empty name".to_string());
        }
        let actor_names = unique_names(
            "actors",
            self.actors.iter().map(|a| a.name.as_str()),
            &mut problems,
        );
        let provider_names = unique_names(
            "providers",
            self.providers.iter().map(|p| p.name.as_str()),
            &mut problems,
        );
        for (i, actor) in self.actors.iter().enumerate() {
            if actor.instances == 0 {
                problems.push(format!(
                    "actors[{i}] ({}): instances must be at least 1",
                    actor.name
                ));
            }
            if let Some(max) = actor.max_instances
                && max < actor.instances.max(1)
            {
                problems.push(format!(
                    "actors[{i}] ({}): max_instances ({max}) must be at least instances ({}); raise max_instances or drop it to use the host's default",
                    actor.name,
                    actor.instances.max(1)
                ));
            }
            if actor.replicas == 0 {
                problems.push(format!(
                    "actors[{i}] ({}): replicas must be at least 1",
                    actor.name
                ));
            }
            spread_problems(
                &format!("actors[{i}] ({})", actor.name),
                &actor.spread,
                &mut problems,
            );
            if actor.path.as_os_str().is_empty() {
                problems.push(format!(
                    "actors[{i}] ({}): path must name a .wasm file",
                    actor.name
                ));
            }
        }
        let mut served = BTreeSet::new();
        for (i, provider) in self.providers.iter().enumerate() {
            let at = format!("providers[{i}] ({})", provider.name);
            if provider.replicas == 0 {
                problems.push(format!("{at}: replicas must be at least 1"));
            }
            spread_problems(&at, &provider.spread, &mut problems);
            match (&provider.builtin, &provider.path) {
                (Some(_), Some(_)) => {
                    problems.push(format!("{at}: give either `builtin` or `path`, not both"))
                }
                (None, None) => problems.push(format!(
                    "{at}: say how it runs: `builtin: httpserver|keyvalue` or `path: <binary>`"
                )),
                (None, Some(_)) if provider.contract.is_none() => problems.push(format!(
                    "{at}: a provider binary needs `contract` (e.g. wasmcloud:keyvalue)"
                )),
                _ => {}
            }
            if let Some(contract) = provider.contract_id()
                && !served.insert((contract.to_string(), provider.link_name.clone()))
            {
                problems.push(format!(
                    "{at}: another provider already serves contract {contract} on link name {}; give one a different `link_name`",
                    provider.link_name
                ));
            }
        }
        let mut linked = BTreeSet::new();
        for (i, link) in self.links.iter().enumerate() {
            let at = format!("links[{i}]");
            if !actor_names.contains(link.actor.as_str()) {
                problems.push(format!(
                    "{at}.actor: no actor named `{}` (actors: {})",
                    link.actor,
                    join(&actor_names)
                ));
            }
            let Some(provider) = self.providers.iter().find(|p| p.name == link.provider) else {
                problems.push(format!(
                    "{at}.provider: no provider named `{}` (providers: {})",
                    link.provider,
                    join(&provider_names)
                ));
                continue;
            };
            if let Some(contract) = provider.contract_id()
                && !linked.insert((
                    link.actor.clone(),
                    contract.to_string(),
                    provider.link_name.clone(),
                ))
            {
                problems.push(format!(
                    "{at}: actor `{}` is already linked to a provider of {contract} on link name {}",
                    link.actor, provider.link_name
                ));
            }
        }
        problems
    }

    /// The actor with manifest name `name`.
    pub fn actor(&self, name: &str) -> Option<&ActorSpec> {
        self.actors.iter().find(|a| a.name == name)
    }

    /// The provider with manifest name `name`.
    pub fn provider(&self, name: &str) -> Option<&ProviderSpec> {
        self.providers.iter().find(|p| p.name == name)
    }
}

fn spread_problems(at: &str, spread: &[Spread], problems: &mut Vec<String>) {
    for (j, group) in spread.iter().enumerate() {
        if group.weight == 0 {
            problems.push(format!("{at}: spread[{j}].weight must be at least 1"));
        }
        if group.labels.is_empty() {
            problems.push(format!(
                "{at}: spread[{j}].labels must name at least one label (a group of hosts)"
            ));
        }
    }
}

fn unique_names<'a>(
    what: &str,
    names: impl Iterator<Item = &'a str>,
    problems: &mut Vec<String>,
) -> BTreeSet<&'a str> {
    let mut seen = BTreeSet::new();
    for (i, name) in names.enumerate() {
        if name.trim().is_empty() {
            problems.push(format!("{what}[{i}].name: must not be empty"));
        } else if !seen.insert(name) {
            problems.push(format!(
                "{what}[{i}].name: `{name}` is used twice; names must be unique"
            ));
        }
    }
    seen
}

fn join(names: &BTreeSet<&str>) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        names.iter().copied().collect::<Vec<_>>().join(", ")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const GOOD: &str = r#"
name: petclinic
actors:
  - name: gateway
    path: gateway.wasm
    instances: 4
    call_alias: petclinic/gateway
    capabilities: [wasmcloud:httpserver]
  - name: owners
    path: owners.wasm
    host_labels: { zone: b }
providers:
  - name: http
    builtin: httpserver
  - name: kv
    builtin: keyvalue
    config: { default_backend: file }
  - name: cache
    path: bin/kv-provider
    contract: wasmcloud:keyvalue
    link_name: cache
links:
  - actor: gateway
    provider: http
    values: { port: "8080" }
  - actor: owners
    provider: kv
    values: { backend: file, path: data }
  - actor: owners
    provider: cache
"#;

    #[test]
    fn a_full_manifest_parses_with_defaults() {
        let m = Manifest::parse(GOOD).unwrap();
        assert_eq!(m.name, "petclinic");
        assert_eq!(m.actors[0].instances, 4);
        assert_eq!(m.actors[1].instances, 1);
        assert_eq!(m.actors[1].host_labels["zone"], "b");
        assert_eq!(m.provider("http").unwrap().link_name, "default");
        assert_eq!(
            m.provider("http").unwrap().contract_id(),
            Some("wasmcloud:httpserver")
        );
        assert_eq!(
            m.provider("cache").unwrap().contract_id(),
            Some("wasmcloud:keyvalue")
        );
        assert_eq!(m.links[0].values["port"], "8080");
        assert_eq!(
            m.provider("kv").unwrap().config_json().as_deref(),
            Some(r#"{"default_backend":"file"}"#)
        );
        assert_eq!(m.provider("http").unwrap().config_json(), None);
        assert_eq!(Builtin::Keyvalue.provider_ref(), "builtin:keyvalue");
    }

    #[test]
    fn replicas_and_spread_parse_and_are_checked() {
        let m = Manifest::parse(
            "name: x\nversion: \"1.0\"\nactors:\n  - name: a\n    path: a.wasm\n    replicas: 3\n    spread:\n      - { labels: { zone: a }, weight: 2 }\n      - { labels: { zone: b } }\n",
        )
        .unwrap();
        assert_eq!(m.version.as_deref(), Some("1.0"));
        assert_eq!(m.actors[0].replicas, 3);
        assert_eq!(m.actors[0].spread[0].weight, 2);
        assert_eq!(m.actors[0].spread[1].weight, 1);
        assert_eq!(Manifest::parse(GOOD).unwrap().actors[0].replicas, 1);
        let err = Manifest::parse(
            "name: x\nactors:\n  - { name: a, path: a.wasm, replicas: 0, spread: [{ labels: {}, weight: 0 }] }\n",
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("replicas must be at least 1"), "{text}");
        assert!(
            text.contains("spread[0].weight must be at least 1"),
            "{text}"
        );
        assert!(text.contains("spread[0].labels must name"), "{text}");
    }

    #[test]
    fn max_instances_is_optional_and_at_least_instances() {
        let m = Manifest::parse(
            "name: x\nactors:\n  - { name: a, path: a.wasm, instances: 2, max_instances: 16 }\n  - { name: b, path: b.wasm }\n",
        )
        .unwrap();
        assert_eq!(m.actors[0].instances, 2);
        assert_eq!(m.actors[0].max_instances, Some(16));
        assert_eq!(
            m.actors[1].max_instances, None,
            "the host's default applies"
        );

        let err = Manifest::parse(
            "name: x\nactors:\n  - { name: a, path: a.wasm, instances: 4, max_instances: 2 }\n",
        )
        .unwrap_err();
        let ManifestError::Invalid { problems, .. } = &err else {
            panic!("{err}");
        };
        assert_eq!(
            problems,
            &[
                "actors[0] (a): max_instances (2) must be at least instances (4); raise max_instances or drop it to use the host's default"
            ]
        );

        let err = Manifest::parse(
            "name: x\nactors:\n  - name: a\n    path: a.wasm\n    max_instances: lots\n",
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, ManifestError::Syntax { .. }), "{text}");
        assert!(text.contains("<input>:5:"), "{text}");
        assert!(text.contains("max_instances"), "{text}");
    }

    #[test]
    fn typos_are_errors_with_a_location() {
        let err = Manifest::parse("name: x\nactors:\n  - name: a\n    pth: a.wasm\n").unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, ManifestError::Syntax { .. }), "{text}");
        assert!(text.contains("<input>:4:"), "{text}");
        assert!(text.contains("pth"), "{text}");
    }

    #[test]
    fn every_semantic_problem_is_reported_at_once() {
        let err = Manifest::parse(
            r#"
name: ""
actors:
  - { name: a, path: a.wasm, instances: 0 }
  - { name: a, path: b.wasm }
providers:
  - { name: p, builtin: keyvalue, path: x }
  - { name: q }
  - { name: r, path: bin/r }
  - { name: s, builtin: keyvalue }
  - { name: t, builtin: keyvalue }
links:
  - { actor: nobody, provider: s }
  - { actor: a, provider: nothing }
  - { actor: a, provider: s }
  - { actor: a, provider: s }
"#,
        )
        .unwrap_err();
        let ManifestError::Invalid { problems, .. } = &err else {
            panic!("{err}");
        };
        let expected = [
            "name: the app needs",
            "actors[1].name: `a` is used twice",
            "actors[0] (a): instances must be at least 1",
            "providers[0] (p): give either",
            "providers[1] (q): say how it runs",
            "providers[2] (r): a provider binary needs `contract`",
            // p (invalid, but still a keyvalue provider) already serves the default link name.
            "providers[3] (s): another provider already serves contract wasmcloud:keyvalue",
            "providers[4] (t): another provider already serves contract wasmcloud:keyvalue",
            "links[0].actor: no actor named `nobody` (actors: a)",
            "links[1].provider: no provider named `nothing`",
            "links[3]: actor `a` is already linked",
        ];
        for e in expected {
            assert!(
                problems.iter().any(|p| p.starts_with(e)),
                "missing `{e}` in {problems:#?}"
            );
        }
        assert_eq!(problems.len(), expected.len(), "{problems:#?}");
    }

    #[test]
    fn load_resolves_paths_against_the_manifest_directory() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("apps");
        std::fs::create_dir(&sub).unwrap();
        let file = sub.join("app.yaml");
        std::fs::write(&file, GOOD).unwrap();
        let m = Manifest::load(&file).unwrap();
        assert_eq!(m.actor("gateway").unwrap().path, sub.join("gateway.wasm"));
        assert_eq!(
            m.provider("cache").unwrap().path.as_deref(),
            Some(sub.join("bin/kv-provider").as_path())
        );
        let missing = Manifest::load(&dir.path().join("nope.yaml")).unwrap_err();
        assert!(missing.to_string().contains("failed to read app manifest"));
    }
}
