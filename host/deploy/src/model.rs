//! What a deployment stores in JetStream: immutable app versions, the app record (desired
//! state and history) and the status the reconciler reports. All of it is JSON, so a user
//! can read it with `nats kv get` as well as with `wash app`.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use nimbus_app::Manifest;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// How an actor of a version is loaded: everything a host needs, fixed at deploy time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActorArtifact {
    /// The actor's public key (the subject of its claims).
    pub actor_id: String,
    /// What hosts load it from (`actor_ref` of the start command): the absolute path of
    /// the signed module.
    pub module_ref: String,
    /// SHA-256 (hex) of the module as the manifest names it, before signing: the
    /// actor's part of the version digest (signing again does not change it).
    pub source_sha256: String,
}

/// One stored version of an app. Never changed once written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppVersion {
    /// The app's name.
    pub app: String,
    /// The version.
    pub version: String,
    /// Digest of the content ([`content_digest`]): two deploys of one version must agree.
    pub digest: String,
    /// When it was stored (seconds since the Unix epoch).
    pub created_at: u64,
    /// The manifest, with file paths as the deploying machine resolved them.
    pub manifest: Manifest,
    /// The actors' artifacts, by manifest name.
    pub actors: BTreeMap<String, ActorArtifact>,
}

/// The digest that identifies a version's content: the manifest (without its `version`,
/// with each actor's path replaced by the hash of its module) as canonical JSON.
pub fn content_digest(manifest: &Manifest, actors: &BTreeMap<String, ActorArtifact>) -> String {
    let mut canonical = manifest.clone();
    canonical.version = None;
    for actor in &mut canonical.actors {
        if let Some(artifact) = actors.get(&actor.name) {
            actor.path = artifact.source_sha256.clone().into();
        }
    }
    // A manifest is maps and strings; it always encodes.
    let json = serde_json::to_vec(&canonical).unwrap_or_default();
    hex(&Sha256::digest(json))[..16].to_string()
}

/// SHA-256 of a module file, lower-case hex (an [`ActorArtifact::source_sha256`]).
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What the lattice should run of an app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Desired {
    /// Run this version.
    Deployed {
        /// The version.
        version: String,
    },
    /// Run nothing; remove what earlier versions started.
    Undeployed {
        /// The version that ran last (its links are the ones to remove).
        last_version: Option<String>,
    },
}

impl Desired {
    /// The version to run, if any.
    pub fn version(&self) -> Option<&str> {
        match self {
            Desired::Deployed { version } => Some(version),
            Desired::Undeployed { .. } => None,
        }
    }
}

/// What changed the desired state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// A version was deployed.
    Deployed,
    /// An earlier version was deployed again.
    RolledBack,
    /// The app was undeployed.
    Undeployed,
}

/// One entry of an app's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// The version deployed (for undeploys: the one that ran).
    pub version: Option<String>,
    /// What happened.
    pub change: Change,
    /// When (seconds since the Unix epoch).
    pub at: u64,
}

/// An app's desired state and history: the entry `wash app deploy`, `undeploy` and
/// `rollback` change (revision-checked) and the reconciler reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppRecord {
    /// The app's name.
    pub app: String,
    /// What should run.
    pub desired: Desired,
    /// Every change, oldest first.
    pub history: Vec<HistoryEntry>,
}

/// How far an entity (or a whole app) is from its desired state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Running as desired.
    Running,
    /// Being changed: starts, stops or an upgrade in flight.
    Reconciling,
    /// Running, but with fewer replicas than desired.
    Degraded,
    /// Not running at all.
    Failed,
    /// Undeployed, and nothing of it runs any more.
    Undeployed,
}

impl State {
    /// The word `wash app status` prints.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Running => "running",
            State::Reconciling => "reconciling",
            State::Degraded => "degraded",
            State::Failed => "failed",
            State::Undeployed => "undeployed",
        }
    }
}

/// One host running part of an entity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    /// The host's id.
    pub host_id: String,
    /// Running instances there (providers: 1).
    pub instances: u32,
    /// The public key running there.
    pub id: String,
    /// The version that started it (from its annotations), if ours.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Whether it runs the desired module (false while an upgrade is pending).
    pub current: bool,
}

/// Desired against running, for one actor or provider of an app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntityStatus {
    /// The manifest name.
    pub name: String,
    /// The public key it should run as (providers: once one runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Hosts that should run it.
    pub desired_replicas: u32,
    /// Instances per host (actors; providers: 1).
    pub desired_instances: u32,
    /// Where it runs now.
    pub running: Vec<Placement>,
    /// How far it is from the desired state.
    pub state: State,
    /// Why it is not running as desired (absent when it is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Desired against running, for one link of an app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkStatus {
    /// The actor's manifest name.
    pub actor: String,
    /// The provider's manifest name.
    pub provider: String,
    /// The contract.
    pub contract_id: String,
    /// The link name.
    pub link_name: String,
    /// Running (put with the desired provider and values) or not.
    pub state: State,
    /// Why it is not in place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What the reconciler last found for an app: the document `wash app status` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppStatus {
    /// The app's name.
    pub app: String,
    /// The version that should run (absent once undeployed).
    pub version: Option<String>,
    /// The whole app's state: the worst of its parts.
    pub state: State,
    /// Why the app is not running as desired, in one line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The actors.
    pub actors: Vec<EntityStatus>,
    /// The providers.
    pub providers: Vec<EntityStatus>,
    /// The links.
    pub links: Vec<LinkStatus>,
    /// The host whose reconciler wrote this.
    pub reconciler: String,
    /// When this state was first seen (seconds since the Unix epoch); it is rewritten
    /// only when something changes.
    pub since: u64,
}

/// Seconds since the Unix epoch, now.
pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn manifest(version: Option<&str>, path: &str) -> Manifest {
        let mut m = Manifest::parse(&format!(
            "name: app\nactors:\n  - {{ name: a, path: {path} }}\n"
        ))
        .unwrap();
        m.version = version.map(str::to_string);
        m
    }

    fn artifact(sha: &str) -> BTreeMap<String, ActorArtifact> {
        BTreeMap::from([(
            "a".to_string(),
            ActorArtifact {
                actor_id: "M".into(),
                module_ref: "/x.wasm".into(),
                source_sha256: sha.into(),
            },
        )])
    }

    #[test]
    fn the_digest_follows_content_not_version_or_path() {
        let one = content_digest(&manifest(Some("1"), "a.wasm"), &artifact("aa"));
        assert_eq!(
            one,
            content_digest(&manifest(Some("2"), "elsewhere/a.wasm"), &artifact("aa"))
        );
        assert_ne!(
            one,
            content_digest(&manifest(Some("1"), "a.wasm"), &artifact("bb"))
        );
        assert_eq!(one.len(), 16);
    }

    #[test]
    fn records_round_trip_as_tagged_json() {
        let record = AppRecord {
            app: "a".into(),
            desired: Desired::Undeployed {
                last_version: Some("v1".into()),
            },
            history: vec![HistoryEntry {
                version: Some("v1".into()),
                change: Change::RolledBack,
                at: 5,
            }],
        };
        let json = serde_json::to_string(&record).unwrap();
        assert!(json.contains(r#""state":"undeployed""#), "{json}");
        assert!(json.contains(r#""change":"rolled_back""#), "{json}");
        assert_eq!(serde_json::from_str::<AppRecord>(&json).unwrap(), record);
    }
}
