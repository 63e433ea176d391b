//! The petclinic app (actors/petclinic, deployed from the repository's `app.yaml`) tested
//! through its REST API over real HTTP: every route of the table in
//! actors/petclinic/README.md with good and bad input, in three deployments:
//!
//! - standalone: one host, the HTTP server and key-value providers in process, the file
//!   backend in a temp dir;
//! - a two-host lattice on a real nats-server: host A runs the HTTP server provider, the
//!   gateway and the UI; host B runs the key-value provider as its own process and the
//!   owners, vets and visits actors, so every API call crosses hosts by call alias;
//! - the backend swap: deployed with the file backend, then the manifest's key-value links
//!   changed to Redis and put again, with the same signed modules still running.
//!
//! The actors are signed as `wash up` signs them (capabilities and call alias from the
//! manifest). The HTTP calls are blocking ([`nimbus_tests::http`]) and run on a blocking
//! thread, so they never hold up the runtime the host and providers run on.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use nimbus_app::{Builtin, Manifest};
use nimbus_core::claims;
use nimbus_core::keys::{KeyKind, KeyPair};
use nimbus_core::link::LinkDefinition;
use nimbus_lattice::Host;
use nimbus_provider_httpserver::HttpServerProvider;
use nimbus_provider_keyvalue::{BackendConfig, KeyValueProvider};
use nimbus_provider_sdk::Provider;
use nimbus_tests::http::{self, Response};
use nimbus_tests::servers::{NatsServer, RedisServer, free_port};
use nimbus_tests::{Signer, actor_wasm, repo_root};
use serde_json::{Value, json};

/// The key-value provider as its own process (built by cargo with the tests).
const KV_PROVIDER_BIN: &str = env!("CARGO_BIN_EXE_nimbus-test-keyvalue-provider");

/// How long a fresh deployment may take to answer with its seed data.
const READY_TIMEOUT: Duration = Duration::from_secs(45);

/// The documented seed data (README, "Seeding"): what a fresh store holds once seeded.
const SEED_OWNERS: usize = 10;
const SEED_PETS: usize = 13;
const SEED_PET_TYPES: usize = 6;
const SEED_VETS: usize = 6;
const SEED_SPECIALTIES: usize = 3;

/// The gateway's body limit (README: 413 for a body over 32 KiB) and the HTTP server
/// provider's default `max_content_len` (1 MiB).
const GATEWAY_MAX_BODY: usize = 32 * 1024;
const PROVIDER_MAX_BODY: usize = 1024 * 1024;

/// The API route table of the README, as (method, OpenAPI path).
const ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/owners"),
    ("POST", "/api/owners"),
    ("GET", "/api/owners/{ownerId}"),
    ("PUT", "/api/owners/{ownerId}"),
    ("POST", "/api/owners/{ownerId}/pets"),
    ("GET", "/api/owners/{ownerId}/pets/{petId}"),
    ("PUT", "/api/owners/{ownerId}/pets/{petId}"),
    ("GET", "/api/owners/{ownerId}/pets/{petId}/visits"),
    ("POST", "/api/owners/{ownerId}/pets/{petId}/visits"),
    ("GET", "/api/pettypes"),
    ("GET", "/api/vets"),
    ("GET", "/api/specialties"),
    ("GET", "/api/openapi.json"),
];

// ---------------------------------------------------------------------------------------
// Deployment
// ---------------------------------------------------------------------------------------

/// The manifest the tests deploy: the repository's `app.yaml` (file backend).
fn app_manifest() -> Manifest {
    Manifest::load(&repo_root().join("app.yaml")).expect("app.yaml loads")
}

/// One actor of the manifest, signed as `wash up` signs an unsigned module.
struct SignedActor {
    /// The manifest's name for it.
    name: String,
    /// Its module key, the actor id.
    id: String,
    /// The signed module.
    bytes: Vec<u8>,
    instances: u16,
    /// Whether it uses the key-value contract (and so runs next to the key-value provider
    /// in the lattice).
    uses_kv: bool,
}

fn sign_actors(manifest: &Manifest) -> Vec<SignedActor> {
    manifest
        .actors
        .iter()
        .map(|spec| {
            let stem = spec.path.file_stem().unwrap().to_str().unwrap();
            // Builds the fixtures if needed; the manifest names the same file.
            let module = actor_wasm(stem);
            assert_eq!(
                module,
                std::fs::read(&spec.path).unwrap(),
                "{}",
                spec.path.display()
            );
            let caps: Vec<&str> = spec.capabilities.iter().map(String::as_str).collect();
            let signer = Signer::new();
            let bytes = signer.sign_with(&module, &caps, spec.call_alias.as_deref());
            SignedActor {
                name: spec.name.clone(),
                id: signer.module.public_key(),
                bytes,
                instances: u16::try_from(spec.instances).unwrap(),
                uses_kv: spec.capabilities.iter().any(|c| c == KEYVALUE),
            }
        })
        .collect()
}

const KEYVALUE: &str = "wasmcloud:keyvalue";

/// A provider of the manifest as deployed: its key, link name and contract.
#[derive(Clone)]
struct DeployedProvider {
    id: String,
    link_name: String,
    contract: String,
    builtin: Builtin,
}

fn provider_keys(manifest: &Manifest) -> BTreeMap<String, DeployedProvider> {
    manifest
        .providers
        .iter()
        .map(|p| {
            let deployed = DeployedProvider {
                id: KeyPair::generate(KeyKind::Service).public_key(),
                link_name: p.link_name.clone(),
                contract: p.contract_id().unwrap().to_string(),
                builtin: p.builtin.expect("app.yaml uses built-in providers"),
            };
            (p.name.clone(), deployed)
        })
        .collect()
}

fn in_process(builtin: Builtin) -> Arc<dyn Provider> {
    match builtin {
        Builtin::Httpserver => Arc::new(HttpServerProvider::new()),
        Builtin::Keyvalue => Arc::new(KeyValueProvider::new()),
    }
}

/// The petclinic app on one or two hosts, reachable at `base`.
struct Deployment {
    /// Host A (HTTP side) and, in a lattice, host B (data side).
    hosts: Vec<Host>,
    actors: Vec<SignedActor>,
    providers: BTreeMap<String, DeployedProvider>,
    http_port: u16,
    base: String,
}

impl Deployment {
    /// One host, both providers in process; `data_dir` replaces the manifest's file path.
    async fn standalone(manifest: &Manifest, data_dir: &Path) -> Deployment {
        let host = Host::builder().build().await.unwrap();
        let providers = provider_keys(manifest);
        for p in providers.values() {
            host.start_provider(in_process(p.builtin), &p.id, &p.link_name)
                .await
                .unwrap();
        }
        let actors = sign_actors(manifest);
        for a in &actors {
            let id = host
                .start_actor(a.bytes.clone(), a.instances)
                .await
                .unwrap();
            assert_eq!(id, a.id, "{}", a.name);
        }
        Self::linked(vec![host], actors, providers, manifest, data_dir).await
    }

    /// Two hosts on `nats_url` with a shared cluster seed: A gets the HTTP server
    /// provider (in process) and the actors without key-value access (gateway, ui); B gets
    /// the key-value provider as a process and the actors that use it (owners, vets,
    /// visits).
    async fn lattice(manifest: &Manifest, nats_url: &str, data_dir: &Path) -> Deployment {
        let seed = KeyPair::generate(KeyKind::Cluster).seed().unwrap();
        let lattice = format!("petclinic-{}", &nimbus_core::wire::new_uuid()[..8]);
        let providers = provider_keys(manifest);
        let kv = providers
            .values()
            .find(|p| p.builtin == Builtin::Keyvalue)
            .unwrap()
            .clone();
        let builder = || {
            Host::builder()
                .lattice(&lattice)
                .nats(crate::lattice_support::member_nats(nats_url))
                .cluster_seed(&seed)
        };
        let host_a = builder().label("role", "web").build().await.unwrap();
        let host_b = builder()
            .label("role", "data")
            .provider_executable("kv-process", &kv.id, &kv.contract, KV_PROVIDER_BIN)
            .build()
            .await
            .unwrap();
        for p in providers.values() {
            match p.builtin {
                Builtin::Httpserver => host_a
                    .start_provider(in_process(p.builtin), &p.id, &p.link_name)
                    .await
                    .unwrap(),
                Builtin::Keyvalue => host_b
                    .launch_provider("kv-process", &p.link_name, None)
                    .await
                    .unwrap(),
            }
        }
        let actors = sign_actors(manifest);
        for a in &actors {
            let host = if a.uses_kv { &host_b } else { &host_a };
            let id = host
                .start_actor(a.bytes.clone(), a.instances)
                .await
                .unwrap();
            assert_eq!(id, a.id, "{}", a.name);
        }
        Self::linked(vec![host_a, host_b], actors, providers, manifest, data_dir).await
    }

    /// Puts the manifest's links (from host A: in a lattice they reach B through the
    /// lattice's link store).
    async fn linked(
        hosts: Vec<Host>,
        actors: Vec<SignedActor>,
        providers: BTreeMap<String, DeployedProvider>,
        manifest: &Manifest,
        data_dir: &Path,
    ) -> Deployment {
        let http_port = free_port();
        let deployment = Deployment {
            hosts,
            actors,
            providers,
            http_port,
            base: format!("http://127.0.0.1:{http_port}"),
        };
        deployment.put_links(manifest, data_dir).await;
        deployment
    }

    /// Puts every link of `manifest`, as `wash up` does, with this deployment's HTTP port
    /// and `data_dir` for file backends. Running it again with a changed manifest is how a
    /// backend is swapped: no actor is touched.
    async fn put_links(&self, manifest: &Manifest, data_dir: &Path) {
        for link in &manifest.links {
            let actor = self.actor(&link.actor);
            let provider = &self.providers[&link.provider];
            let mut values: HashMap<String, String> = link.values.clone().into_iter().collect();
            if values.contains_key("port") {
                values.insert("port".into(), self.http_port.to_string());
            }
            if values.get("backend").map(String::as_str) == Some("file") {
                values.insert("path".into(), data_dir.display().to_string());
            }
            self.hosts[0]
                .put_link(LinkDefinition::new(
                    &actor.id,
                    &provider.id,
                    &provider.link_name,
                    &provider.contract,
                    values,
                ))
                .await
                .unwrap();
        }
    }

    fn actor(&self, name: &str) -> &SignedActor {
        self.actors
            .iter()
            .find(|a| a.name == name)
            .unwrap_or_else(|| panic!("no actor `{name}` in the manifest"))
    }

    /// Actor id → instance ids, over all hosts.
    fn running(&self) -> BTreeMap<String, BTreeSet<String>> {
        let mut out = BTreeMap::new();
        for host in &self.hosts {
            for a in host.inventory().actors {
                let ids = a.instances.into_iter().map(|i| i.instance_id);
                out.entry(a.id).or_insert_with(BTreeSet::new).extend(ids);
            }
        }
        out
    }

    async fn stop(self) {
        for host in self.hosts.iter().rev() {
            host.stop().await.unwrap();
        }
    }
}

/// Runs the blocking `f` off the runtime's worker threads, re-raising its panic.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => v,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

// ---------------------------------------------------------------------------------------
// The API client
// ---------------------------------------------------------------------------------------

struct Api {
    base: String,
}

impl Api {
    fn send(&self, method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
        let body = (!body.is_empty() || method != "GET").then_some(body);
        http::send(&self.base, method, target, headers, body)
            .unwrap_or_else(|e| panic!("{method} {target}: {e}"))
    }

    fn get(&self, target: &str) -> Response {
        http::get(&self.base, target).unwrap_or_else(|e| panic!("GET {target}: {e}"))
    }

    /// A JSON request (`Content-Type: application/json`).
    fn json(&self, method: &str, target: &str, body: &Value) -> Response {
        self.send(
            method,
            target,
            &[("Content-Type", "application/json")],
            body.to_string().as_bytes(),
        )
    }

    /// `GET target`, which must answer 200 with JSON.
    fn get_ok(&self, target: &str) -> Value {
        ok(&self.get(target), 200, &format!("GET {target}"))
    }

    fn owners(&self, last_name: Option<&str>) -> Vec<Value> {
        let target = match last_name {
            Some(q) => format!("/api/owners?lastName={q}"),
            None => "/api/owners".to_string(),
        };
        self.get_ok(&target).as_array().unwrap().clone()
    }
}

fn body_json(r: &Response, what: &str) -> Value {
    let content_type = r.header("content-type").unwrap_or_default();
    assert!(
        content_type.starts_with("application/json"),
        "{what}: Content-Type {content_type:?}, status {}, body {}",
        r.status,
        r.text()
    );
    serde_json::from_slice(&r.body)
        .unwrap_or_else(|e| panic!("{what}: body is not JSON ({e}): {}", r.text()))
}

/// Asserts a success status and returns the JSON body.
fn ok(r: &Response, status: u16, what: &str) -> Value {
    assert_eq!(r.status, status, "{what}: {}", r.text());
    body_json(r, what)
}

/// Asserts a JSON error `{"error": <text>, "field"?: field}` with `status` (a 400 also
/// has `errors`, whose first entry is that pair; other statuses have none); returns the
/// error text.
fn error(r: &Response, status: u16, field: Option<&str>, what: &str) -> String {
    assert_eq!(r.status, status, "{what}: {}", r.text());
    let body = body_json(r, what);
    let message = body["error"].as_str().unwrap_or_default().to_string();
    assert!(!message.is_empty(), "{what}: no error text in {body}");
    assert_eq!(body["field"].as_str(), field, "{what}: {body}");
    if status == 400 {
        let first = (field.map(String::from), message.clone());
        assert_eq!(errors(r, what)[0], first, "{what}: {body}");
    } else {
        assert!(body.get("errors").is_none(), "{what}: {body}");
    }
    message
}

/// Asserts a JSON 400 `{"error", "field"?, "errors": [{"field"?, "error"}, ...]}` whose
/// first `errors` entry is the top-level `error`/`field`; the entries as (field, error).
fn errors(r: &Response, what: &str) -> Vec<(Option<String>, String)> {
    assert_eq!(r.status, 400, "{what}: {}", r.text());
    let body = body_json(r, what);
    let entries = body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("{what}: no errors list in {body}"));
    assert!(!entries.is_empty(), "{what}: {body}");
    let mut top = body.as_object().unwrap().clone();
    top.remove("errors");
    assert_eq!(
        entries[0],
        Value::Object(top),
        "{what}: the first entry is not the top-level error"
    );
    entries
        .iter()
        .map(|e| {
            let keys: BTreeSet<&str> = e.as_object().unwrap().keys().map(String::as_str).collect();
            assert!(
                keys.is_subset(&BTreeSet::from(["error", "field"])),
                "{what}: {e}"
            );
            let field = e.get("field").map(|f| f.as_str().unwrap().to_string());
            let message = e["error"].as_str().unwrap_or_default().to_string();
            assert!(!message.is_empty(), "{what}: {e}");
            (field, message)
        })
        .collect()
}

/// The fields `errors` names, in order (`-` for an entry without a field).
fn error_fields(r: &Response, what: &str) -> Vec<String> {
    errors(r, what)
        .into_iter()
        .map(|(field, _)| field.unwrap_or_else(|| "-".into()))
        .collect()
}

fn id_of(v: &Value) -> u64 {
    v["id"]
        .as_u64()
        .unwrap_or_else(|| panic!("no numeric id in {v}"))
}

fn ids(list: &[Value]) -> Vec<u64> {
    list.iter().map(id_of).collect()
}

/// `s` with every byte percent-encoded.
fn percent_encoded(s: &str) -> String {
    s.bytes().map(|b| format!("%{b:02X}")).collect()
}

/// Waits until the seed data is complete: every seed owner, pet, pet type and vet listed.
fn wait_until_seeded(api: &Api) {
    let seeded = |r: &Response, what: &dyn Fn(&Value) -> bool| {
        r.status == 200 && serde_json::from_slice::<Value>(&r.body).is_ok_and(|v| what(&v))
    };
    http::wait_for(&api.base, "/api/owners", READY_TIMEOUT, |r| {
        seeded(r, &|v| {
            let owners = v.as_array().map(Vec::as_slice).unwrap_or_default();
            let pets: usize = owners
                .iter()
                .map(|o| o["pets"].as_array().map_or(0, Vec::len))
                .sum();
            owners.len() >= SEED_OWNERS && pets >= SEED_PETS
        })
    });
    http::wait_for(&api.base, "/api/pettypes", READY_TIMEOUT, |r| {
        seeded(r, &|v| {
            v.as_array().is_some_and(|a| a.len() == SEED_PET_TYPES)
        })
    });
    http::wait_for(&api.base, "/api/vets", READY_TIMEOUT, |r| {
        seeded(r, &|v| v.as_array().is_some_and(|a| a.len() == SEED_VETS))
    });
}

/// What must not change while bad requests arrive: every owner with pets, the test
/// owner with pets and visits, and the test pet's visits.
#[derive(Debug, PartialEq)]
struct Snapshot {
    owners: Value,
    owner: Value,
    visits: Value,
}

impl Snapshot {
    fn take(api: &Api, owner_id: u64, pet_id: u64) -> Snapshot {
        Snapshot {
            owners: api.get_ok("/api/owners"),
            owner: api.get_ok(&format!("/api/owners/{owner_id}")),
            visits: api.get_ok(&format!("/api/owners/{owner_id}/pets/{pet_id}/visits")),
        }
    }
}

// ---------------------------------------------------------------------------------------
// The suite
// ---------------------------------------------------------------------------------------

/// Every endpoint of the route table, good and bad input, against the app at `base` with
/// freshly seeded data. `tag` makes this run's owner names unique (letters only).
fn api_suite(base: &str, tag: &str) {
    let api = Api {
        base: base.to_string(),
    };
    wait_until_seeded(&api);

    // OpenAPI: JSON, and it describes every route of the table.
    let doc = api.get_ok("/api/openapi.json");
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with('3')),
        "{}",
        doc["openapi"]
    );
    for (method, path) in ROUTES {
        assert!(
            doc["paths"][path][method.to_ascii_lowercase()].is_object(),
            "openapi.json lacks {method} {path}"
        );
    }

    // Reference data: pet types and specialties by name, vets by last name with
    // specialties that exist.
    let pet_types = api.get_ok("/api/pettypes").as_array().unwrap().clone();
    assert_eq!(pet_types.len(), SEED_PET_TYPES);
    assert_sorted_by(&pet_types, "name");
    let specialties = api.get_ok("/api/specialties").as_array().unwrap().clone();
    assert_eq!(specialties.len(), SEED_SPECIALTIES);
    assert_sorted_by(&specialties, "name");
    let vets = api.get_ok("/api/vets").as_array().unwrap().clone();
    assert_eq!(vets.len(), SEED_VETS);
    assert_sorted_by(&vets, "lastName");
    let mut vet_specialties = 0;
    for vet in &vets {
        assert!(
            vet["firstName"].is_string() && vet["lastName"].is_string(),
            "{vet}"
        );
        for s in vet["specialties"].as_array().unwrap() {
            assert!(specialties.contains(s), "vet specialty {s} is not listed");
            vet_specialties += 1;
        }
    }
    assert!(vet_specialties > 0, "no vet has a specialty: {vets:?}");

    // Owners: listed by id, pets without visits.
    let owners = api.owners(None);
    assert!(owners.len() >= SEED_OWNERS);
    let owner_ids = ids(&owners);
    assert!(owner_ids.windows(2).all(|w| w[0] < w[1]), "{owner_ids:?}");
    for o in &owners {
        for pet in o["pets"].as_array().unwrap() {
            assert!(pet.get("visits").is_none(), "listed pet with visits: {pet}");
            assert_eq!(pet["ownerId"], o["id"], "{pet}");
        }
    }

    // Search by last-name prefix, case-insensitive: a name several owners share if any.
    let last_names: Vec<String> = owners
        .iter()
        .map(|o| o["lastName"].as_str().unwrap().to_string())
        .collect();
    let shared = last_names
        .iter()
        .find(|n| last_names.iter().filter(|m| m == n).count() > 1)
        .unwrap_or(&last_names[0]);
    let prefix: String = shared.chars().take(2).collect();
    let expected: Vec<u64> = owners
        .iter()
        .filter(|o| {
            let name = o["lastName"].as_str().unwrap().to_lowercase();
            name.starts_with(&prefix.to_lowercase())
        })
        .map(id_of)
        .collect();
    assert!(!expected.is_empty());
    for query in [
        prefix.to_lowercase(),
        prefix.to_uppercase(),
        percent_encoded(&prefix),
    ] {
        assert_eq!(ids(&api.owners(Some(&query))), expected, "lastName={query}");
    }
    let whole: Vec<u64> = owners
        .iter()
        .filter(|o| {
            let name = o["lastName"].as_str().unwrap().to_lowercase();
            name.starts_with(&shared.to_lowercase())
        })
        .map(id_of)
        .collect();
    assert!(whole.len() <= expected.len());
    assert_eq!(ids(&api.owners(Some(&shared.to_uppercase()))), whole);
    assert_eq!(api.owners(Some("Qxqxqx")), Vec::<Value>::new());

    // Create an owner: 201, Location, trimmed fields, readable, findable.
    let last_name = format!("Zyx{tag}");
    let created = api.json(
        "POST",
        "/api/owners",
        &json!({"firstName": "  Ada ", "lastName": last_name, "address": "1 Loop Road",
                "city": "Lattice", "telephone": "0123456789"}),
    );
    let location = created.header("location").map(str::to_string);
    let owner = ok(&created, 201, "create owner");
    let owner_id = id_of(&owner);
    assert!(!owner_ids.contains(&owner_id), "id {owner_id} reused");
    assert_eq!(
        location.as_deref(),
        Some(&*format!("/api/owners/{owner_id}"))
    );
    assert_eq!(owner["firstName"], "Ada");
    assert_eq!(owner["lastName"], last_name.as_str());
    assert_eq!(owner["pets"], json!([]));
    assert_eq!(api.get_ok(&location.unwrap()), owner);
    assert_eq!(
        ids(&api.owners(Some(&last_name.to_lowercase()))),
        [owner_id]
    );
    let listed = api.owners(None);
    assert_eq!(listed.len(), owners.len() + 1);
    assert!(listed.contains(&owner));

    // No Content-Type is accepted as JSON; `+json` types too.
    let plain = api.send(
        "POST",
        "/api/owners",
        &[],
        json!({"firstName": "Bo", "lastName": format!("Wvu{tag}"), "address": "2 Mesh Way",
               "city": "Gossip", "telephone": "42"})
        .to_string()
        .as_bytes(),
    );
    let second = ok(&plain, 201, "create owner without Content-Type");
    assert_eq!(
        api.get_ok(&format!("/api/owners/{}", id_of(&second))),
        second
    );

    // Update the owner (other fields such as `id` and `pets` are ignored).
    let update = json!({"id": 1, "pets": [{"name": "Ghost"}], "firstName": "Ada",
                        "lastName": last_name, "address": "3 Quorum Street",
                        "city": "Raft", "telephone": "555"});
    let updated = api.send(
        "PUT",
        &format!("/api/owners/{owner_id}"),
        &[(
            "Content-Type",
            "application/merge-patch+json; charset=utf-8",
        )],
        update.to_string().as_bytes(),
    );
    let updated = ok(&updated, 200, "update owner");
    assert_eq!(id_of(&updated), owner_id);
    assert_eq!(
        (&updated["address"], &updated["city"], &updated["telephone"]),
        (&json!("3 Quorum Street"), &json!("Raft"), &json!("555"))
    );
    assert_eq!(updated["pets"], json!([]));
    assert_eq!(api.get_ok(&format!("/api/owners/{owner_id}")), updated);

    // Add a pet (type.name is ignored; the stored type is the listed one), read it,
    // update it.
    let (type_a, type_b) = (&pet_types[0], &pet_types[1]);
    let added = api.json(
        "POST",
        &format!("/api/owners/{owner_id}/pets"),
        &json!({"name": "Rex", "birthDate": "2020-02-29",
                "type": {"id": type_a["id"], "name": "not a type"}}),
    );
    let location = added.header("location").map(str::to_string);
    let pet = ok(&added, 201, "add pet");
    let pet_id = id_of(&pet);
    assert_eq!(
        location.as_deref(),
        Some(&*format!("/api/owners/{owner_id}/pets/{pet_id}"))
    );
    assert_eq!(
        (
            &pet["name"],
            &pet["birthDate"],
            &pet["type"],
            &pet["ownerId"]
        ),
        (
            &json!("Rex"),
            &json!("2020-02-29"),
            type_a,
            &json!(owner_id)
        )
    );
    let read = api.get_ok(&location.unwrap());
    assert_eq!((id_of(&read), &read["type"]), (pet_id, type_a));
    let pet_path = format!("/api/owners/{owner_id}/pets/{pet_id}");
    let renamed = api.json(
        "PUT",
        &pet_path,
        &json!({"name": "Rexy", "birthDate": "2019-01-31", "type": {"id": type_b["id"]}}),
    );
    let renamed = ok(&renamed, 200, "update pet");
    assert_eq!(
        (id_of(&renamed), &renamed["name"], &renamed["type"]),
        (pet_id, &json!("Rexy"), type_b)
    );
    let read = api.get_ok(&pet_path);
    assert_eq!(
        (&read["name"], &read["birthDate"], &read["type"]),
        (&json!("Rexy"), &json!("2019-01-31"), type_b)
    );

    // Visits: added, listed by date, shown with the owner's pets.
    let visits_path = format!("{pet_path}/visits");
    let later = ok(
        &api.json(
            "POST",
            &visits_path,
            &json!({"date": "2024-01-15", "description": "Checkup"}),
        ),
        201,
        "add visit",
    );
    assert_eq!(
        (&later["petId"], &later["date"], &later["description"]),
        (&json!(pet_id), &json!("2024-01-15"), &json!("Checkup"))
    );
    let earlier = ok(
        &api.json(
            "POST",
            &visits_path,
            &json!({"date": "2023-06-01", "description": "First visit\nwith notes"}),
        ),
        201,
        "add visit with a line break",
    );
    assert_eq!(earlier["description"], "First visit\nwith notes");
    let visits = api.get_ok(&visits_path);
    assert_eq!(visits, json!([earlier, later]));
    let with_visits = api.get_ok(&format!("/api/owners/{owner_id}"));
    let pets = with_visits["pets"].as_array().unwrap();
    assert_eq!(ids(pets), [pet_id]);
    let shown: BTreeSet<u64> = ids(pets[0]["visits"].as_array().unwrap())
        .into_iter()
        .collect();
    assert_eq!(shown, BTreeSet::from([id_of(&earlier), id_of(&later)]));

    // From here on every request is refused; afterwards the data must be exactly as now.
    let before = Snapshot::take(&api, owner_id, pet_id);
    bad_requests(&api, &before, owner_id, pet_id, &pet_types);
    assert_eq!(
        Snapshot::take(&api, owner_id, pet_id),
        before,
        "a refused request changed stored data"
    );

    routing_and_ui(&api, owner_id, pet_id);
}

/// `base` with `key` set to `value`, or removed for `None`.
fn with_field(base: &Value, key: &str, value: Option<Value>) -> Value {
    let mut out = base.clone();
    let object = out.as_object_mut().unwrap();
    match value {
        Some(v) => object.insert(key.to_string(), v),
        None => object.remove(key),
    };
    out
}

fn assert_sorted_by(list: &[Value], key: &str) {
    let values: Vec<&str> = list.iter().map(|v| v[key].as_str().unwrap()).collect();
    let mut sorted = values.clone();
    sorted.sort_unstable();
    assert_eq!(values, sorted, "not sorted by {key}");
}

/// Bad input on every endpoint that takes input or ids; nothing is stored.
fn bad_requests(api: &Api, before: &Snapshot, owner_id: u64, pet_id: u64, pet_types: &[Value]) {
    let owner_path = format!("/api/owners/{owner_id}");
    let pet_path = format!("{owner_path}/pets/{pet_id}");
    let all_ids: Vec<u64> = ids(before.owners.as_array().unwrap());
    let unknown_owner = all_ids.iter().max().unwrap() + 1000;
    let max_type = pet_types.iter().map(id_of).max().unwrap();
    // A pet that exists, under another owner.
    let (other_owner, other_pet) = before
        .owners
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| id_of(o) != owner_id)
        .find_map(|o| Some((id_of(o), id_of(o["pets"].as_array()?.first()?))))
        .expect("some other owner has a pet");
    let unknown_pet = other_pet.max(pet_id) + 1000;

    let good_owner = json!({"firstName": "Eve", "lastName": "Mallory", "address": "4 Byzantine Rd",
                            "city": "Split", "telephone": "911"});
    let good_pet = json!({"name": "Mallet", "birthDate": "2021-03-04", "type": {"id": max_type}});
    let good_visit = json!({"date": "2024-02-02", "description": "Forged"});

    // Owner bodies: missing fields, wrong JSON types, bad values. Create and update alike;
    // the body is checked before the id, so an unknown owner still gets 400.
    let bad_owners = [
        ("firstName", None),
        ("lastName", Some(json!(42))),
        ("telephone", Some(json!(123456))),
        ("telephone", Some(json!("12ab"))),
        ("telephone", Some(json!("1234567890123"))),
        ("firstName", Some(json!("   "))),
        ("firstName", Some(json!("x".repeat(31)))),
        ("firstName", Some(json!("Eve\u{7}"))),
        ("address", Some(Value::Null)),
        ("city", Some(json!(["Split"]))),
        ("city", Some(json!({"name": "Split"}))),
        ("lastName", Some(json!(true))),
    ];
    for (field, value) in bad_owners {
        let body = with_field(&good_owner, field, value.clone());
        let what = format!("owner with {field} = {value:?}");
        for (method, target) in [
            ("POST", "/api/owners".to_string()),
            ("PUT", owner_path.clone()),
            ("PUT", format!("/api/owners/{unknown_owner}")),
        ] {
            let r = api.json(method, &target, &body);
            error(&r, 400, Some(field), &format!("{method} {target}: {what}"));
        }
    }

    // Bodies that are not a JSON object: 400 without a field.
    for (body, what) in [
        (&b"[]"[..], "an array"),
        (b"\"owner\"", "a string"),
        (b"null", "null"),
        (b"", "empty"),
        (b"  \n", "whitespace"),
        (b"{\"firstName\": ", "cut short"),
        (b"firstName=Eve", "a form"),
    ] {
        for target in [
            "/api/owners",
            owner_path.as_str(),
            &format!("{owner_path}/pets"),
        ] {
            let method = if target == owner_path { "PUT" } else { "POST" };
            let r = api.send(
                method,
                target,
                &[("Content-Type", "application/json")],
                body,
            );
            error(&r, 400, None, &format!("{method} {target} with {what}"));
        }
    }

    // Not JSON by Content-Type: 415.
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        for (method, target) in [
            ("POST", "/api/owners".to_string()),
            ("PUT", owner_path.clone()),
            ("POST", format!("{pet_path}/visits")),
        ] {
            let r = api.send(
                method,
                &target,
                &[("Content-Type", content_type)],
                good_owner.to_string().as_bytes(),
            );
            error(
                &r,
                415,
                None,
                &format!("{method} {target} as {content_type}"),
            );
        }
    }

    // Oversized: over the gateway's 32 KiB is a JSON 413 from the gateway; over the
    // provider's 1 MiB the provider answers 413 before the gateway sees it.
    let padded = |len: usize| {
        let mut o = good_owner.clone();
        o["padding"] = json!("p".repeat(len));
        o.to_string().into_bytes()
    };
    let over_gateway = padded(GATEWAY_MAX_BODY + 1);
    assert!(over_gateway.len() > GATEWAY_MAX_BODY && over_gateway.len() < PROVIDER_MAX_BODY);
    for (method, target) in [
        ("POST", "/api/owners".to_string()),
        ("PUT", owner_path.clone()),
        ("POST", format!("{owner_path}/pets")),
        ("PUT", pet_path.clone()),
        ("POST", format!("{pet_path}/visits")),
    ] {
        let r = api.send(
            method,
            &target,
            &[("Content-Type", "application/json")],
            &over_gateway,
        );
        error(&r, 413, None, &format!("{method} {target} over 32 KiB"));
    }
    let over_provider = padded(PROVIDER_MAX_BODY + 1);
    for (method, target) in [
        ("POST", "/api/owners".to_string()),
        ("PUT", owner_path.clone()),
    ] {
        let r = api.send(
            method,
            &target,
            &[("Content-Type", "application/json")],
            &over_provider,
        );
        assert_eq!(r.status, 413, "{method} {target} over 1 MiB: {}", r.text());
    }

    // Ids: not digits is 400 naming the parameter; well-formed but unknown is 404.
    for bad in ["abc", "-1", "1.5", "1e3", "%31"] {
        for (method, target, body) in [
            ("GET", format!("/api/owners/{bad}"), None),
            ("PUT", format!("/api/owners/{bad}"), Some(&good_owner)),
            ("POST", format!("/api/owners/{bad}/pets"), Some(&good_pet)),
            ("GET", format!("/api/owners/{bad}/pets/{pet_id}"), None),
        ] {
            let r = match body {
                Some(b) => api.json(method, &target, b),
                None => api.get(&target),
            };
            error(&r, 400, Some("ownerId"), &format!("{method} {target}"));
        }
        for (method, target, body) in [
            ("GET", format!("{owner_path}/pets/{bad}"), None),
            ("PUT", format!("{owner_path}/pets/{bad}"), Some(&good_pet)),
            ("GET", format!("{owner_path}/pets/{bad}/visits"), None),
            (
                "POST",
                format!("{owner_path}/pets/{bad}/visits"),
                Some(&good_visit),
            ),
        ] {
            let r = match body {
                Some(b) => api.json(method, &target, b),
                None => api.get(&target),
            };
            error(&r, 400, Some("petId"), &format!("{method} {target}"));
        }
    }
    for unknown in [
        unknown_owner.to_string(),
        "0".into(),
        "2147483648".into(),
        "99999999999999999999".into(),
    ] {
        let target = format!("/api/owners/{unknown}");
        let message = error(&api.get(&target), 404, None, &format!("GET {target}"));
        assert!(message.contains(&unknown), "{message}");
        error(
            &api.json("PUT", &target, &good_owner),
            404,
            None,
            &format!("PUT {target}"),
        );
        error(
            &api.json("POST", &format!("{target}/pets"), &good_pet),
            404,
            None,
            &format!("POST {target}/pets"),
        );
    }
    // Pets: unknown, or another owner's (only reachable under their own owner).
    for (owner, pet) in [
        (owner_id, unknown_pet),
        (owner_id, other_pet),
        (other_owner, pet_id),
        (unknown_owner, pet_id),
    ] {
        let target = format!("/api/owners/{owner}/pets/{pet}");
        for r in [
            api.get(&target),
            api.json("PUT", &target, &good_pet),
            api.get(&format!("{target}/visits")),
            api.json("POST", &format!("{target}/visits"), &good_visit),
        ] {
            error(&r, 404, None, &target);
        }
    }

    // Pet bodies, on add and update.
    let bad_pets = [
        ("name", None),
        ("name", Some(json!(7))),
        ("name", Some(json!(""))),
        ("name", Some(json!("n".repeat(31)))),
        ("name", Some(json!("rexy"))), // the owner's pet is called Rexy
        ("birthDate", None),
        ("birthDate", Some(json!(20200101))),
        ("birthDate", Some(json!("2021-02-30"))),
        ("birthDate", Some(json!("1899-12-31"))),
        ("birthDate", Some(json!("04/03/2021"))),
        ("type", None),
        ("type", Some(json!("cat"))),
        ("type", Some(json!({"id": "1"}))),
        ("type", Some(json!({"id": 0}))),
        ("type", Some(json!({"name": pet_types[0]["name"]}))),
        ("type", Some(json!({"id": max_type + 100}))), // no such pet type
    ];
    for (field, value) in bad_pets {
        let body = with_field(&good_pet, field, value.clone());
        let add = format!("{owner_path}/pets");
        // Renaming the pet to its own name is fine; only adding a duplicate is refused.
        let targets: &[(&str, &str)] = if value == Some(json!("rexy")) {
            &[("POST", add.as_str())]
        } else {
            &[("POST", add.as_str()), ("PUT", pet_path.as_str())]
        };
        for (method, target) in targets {
            let r = api.json(method, target, &body);
            error(
                &r,
                400,
                Some(field),
                &format!("{method} {target}: pet with {field} = {value:?}"),
            );
        }
    }

    // Visit bodies.
    let bad_visits = [
        ("date", None),
        ("date", Some(json!(20240101))),
        ("date", Some(json!("2024-13-01"))),
        ("date", Some(json!("2024-02-30"))),
        ("date", Some(json!("yesterday"))),
        ("description", None),
        ("description", Some(json!(["Forged"]))),
        ("description", Some(json!(""))),
        ("description", Some(json!("d".repeat(256)))),
        ("description", Some(json!("tab\u{1b}escape"))),
    ];
    for (field, value) in bad_visits {
        let target = format!("{pet_path}/visits");
        let r = api.json(
            "POST",
            &target,
            &with_field(&good_visit, field, value.clone()),
        );
        error(
            &r,
            400,
            Some(field),
            &format!("POST {target}: visit with {field} = {value:?}"),
        );
    }

    // A bad last-name search.
    error(
        &api.get("/api/owners?lastName=%zz"),
        400,
        Some("lastName"),
        "lastName=%zz",
    );

    every_invalid_field_at_once(api, &owner_path, &pet_path, max_type);
}

/// Bodies with several invalid fields: a 400 lists each of them in `errors`, in order, and
/// its `error`/`field` are still the first of them.
fn every_invalid_field_at_once(api: &Api, owner_path: &str, pet_path: &str, max_type: u64) {
    let entry = |field: &str, message: &str| (Some(field.to_string()), message.to_string());

    // An owner with an empty first name, empty last name and a bad telephone: three
    // entries, in the order of the schema, on create and update alike.
    let owner = json!({"firstName": "", "lastName": "  ", "address": "4 Byzantine Rd",
                       "city": "Split", "telephone": "12-ab"});
    for (method, target) in [("POST", "/api/owners"), ("PUT", owner_path)] {
        let what = format!("{method} {target}: an owner with three bad fields");
        let r = api.json(method, target, &owner);
        assert_eq!(
            errors(&r, &what),
            [
                entry("firstName", "firstName must not be blank"),
                entry("lastName", "lastName must not be blank"),
                entry("telephone", "telephone must be 1 to 12 digits"),
            ],
            "{what}"
        );
        // The old first-error fields, exactly as a client reading only them sees them.
        let body = body_json(&r, &what);
        assert_eq!(body["field"], "firstName", "{what}");
        assert_eq!(body["error"], "firstName must not be blank", "{what}");
    }
    // Every field missing: all five. A missing or mistyped field is listed before one
    // whose value breaks a rule (the order the checks ran in when only one was reported).
    let r = api.json("POST", "/api/owners", &json!({}));
    assert_eq!(
        error_fields(&r, "an empty owner"),
        ["firstName", "lastName", "address", "city", "telephone"]
    );
    let r = api.json(
        "POST",
        "/api/owners",
        &json!({"firstName": "", "lastName": "Mallory", "address": 4, "city": "Split",
                "telephone": "911"}),
    );
    assert_eq!(
        error_fields(&r, "an owner with a bad type and a blank name"),
        ["address", "firstName"]
    );
    // One bad field is one entry.
    let r = api.json(
        "POST",
        "/api/owners",
        &json!({"firstName": "Eve", "lastName": "Mallory", "address": "4 Byzantine Rd",
                "city": "", "telephone": "911"}),
    );
    assert_eq!(
        errors(&r, "an owner with a blank city"),
        [entry("city", "city must not be blank")]
    );

    // Pets and visits.
    let pets = format!("{owner_path}/pets");
    let r = api.json(
        "POST",
        &pets,
        &json!({"name": "", "birthDate": "2021-02-30", "type": {"id": max_type}}),
    );
    assert_eq!(
        error_fields(&r, "a pet with a blank name and a bad date"),
        ["name", "birthDate"]
    );
    // The owners actor's checks against stored data (on the data host in the lattice):
    // an unknown pet type and a name the owner already uses, together.
    let r = api.json(
        "POST",
        &pets,
        &json!({"name": "REXY", "birthDate": "2021-03-04", "type": {"id": max_type + 100}}),
    );
    let listed = errors(&r, "a pet with a taken name and an unknown type");
    assert_eq!(
        listed
            .iter()
            .map(|(field, _)| field.as_deref())
            .collect::<Vec<_>>(),
        [Some("type"), Some("name")]
    );
    assert!(listed[1].1.contains("REXY"), "{listed:?}");
    let r = api.json(
        "POST",
        &format!("{pet_path}/visits"),
        &json!({"date": "2024-02-30", "description": " "}),
    );
    assert_eq!(
        errors(&r, "a visit with a bad date and a blank description"),
        [
            entry(
                "date",
                "date must be a date YYYY-MM-DD (year 1900 or later)"
            ),
            entry("description", "description must not be blank"),
        ]
    );

    // Malformed path ids, in path order, then the body's fields.
    let r = api.json(
        "PUT",
        "/api/owners/x/pets/y",
        &json!({"name": "", "birthDate": "2021-03-04", "type": {"id": max_type}}),
    );
    assert_eq!(
        error_fields(&r, "malformed ids and a blank pet name"),
        ["ownerId", "petId", "name"]
    );
}

/// Unknown paths, wrong methods, and the web app.
fn routing_and_ui(api: &Api, owner_id: u64, pet_id: u64) {
    for target in [
        "/api/nope",
        "/api/owners/1/cats",
        "/api/owners//pets",
        "/api/vets/1",
        "/api/",
    ] {
        let message = error(&api.get(target), 404, None, &format!("GET {target}"));
        assert_eq!(message, "no such API endpoint", "GET {target}");
    }
    let owner_path = format!("/api/owners/{owner_id}");
    let pet_path = format!("{owner_path}/pets/{pet_id}");
    for (method, target, allowed) in [
        ("DELETE", "/api/owners".to_string(), &["GET", "POST"][..]),
        ("PATCH", owner_path.clone(), &["GET", "PUT"]),
        ("DELETE", owner_path.clone(), &["GET", "PUT"]),
        ("GET", format!("{owner_path}/pets"), &["POST"]),
        ("DELETE", pet_path.clone(), &["GET", "PUT"]),
        ("PUT", format!("{pet_path}/visits"), &["GET", "POST"]),
        ("POST", "/api/pettypes".into(), &["GET"]),
        ("POST", "/api/vets".into(), &["GET"]),
        ("DELETE", "/api/specialties".into(), &["GET"]),
        ("POST", "/api/openapi.json".into(), &["GET"]),
    ] {
        let r = api.send(
            method,
            &target,
            &[("Content-Type", "application/json")],
            b"{}",
        );
        let what = format!("{method} {target}");
        error(&r, 405, None, &what);
        let allow: BTreeSet<&str> = r
            .header("allow")
            .unwrap_or_else(|| panic!("{what}: no Allow header"))
            .split(',')
            .map(str::trim)
            .collect();
        assert_eq!(allow, allowed.iter().copied().collect(), "{what}");
    }

    // The UI: the single-page app at /, its assets, its own 404.
    let index = api.get("/");
    assert_eq!(index.status, 200, "{}", index.text());
    assert!(
        index
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/html")),
        "{:?}",
        index.headers
    );
    assert!(index.text().to_ascii_lowercase().contains("<html"));
    assert!(index.header("content-security-policy").is_some());
    assert_eq!(api.get("/index.html").body, index.body);
    let script = api.get("/app.js");
    assert_eq!(script.status, 200);
    assert!(
        script
            .header("content-type")
            .is_some_and(|t| t.contains("javascript")),
        "{:?}",
        script.headers
    );
    assert!(index.text().contains("app.js"));
    assert_eq!(api.get("/no-such-page.html").status, 404);
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn petclinic_api_standalone_file_backend() {
    let data = tempfile::tempdir().unwrap();
    let app = Deployment::standalone(&app_manifest(), data.path()).await;
    let base = app.base.clone();
    blocking(move || api_suite(&base, "Standalone")).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn petclinic_api_two_host_lattice_with_kv_provider_process() {
    let nats = NatsServer::start();
    let data = tempfile::tempdir().unwrap();
    let app = Deployment::lattice(&app_manifest(), &nats.url(), data.path()).await;

    // Placement: the HTTP side on A, the data side (and the provider process) on B.
    let names = |host: &Host| -> BTreeSet<String> {
        host.inventory()
            .actors
            .iter()
            .map(|a| {
                app.actors
                    .iter()
                    .find(|s| s.id == a.id)
                    .unwrap()
                    .name
                    .clone()
            })
            .collect()
    };
    let on_a = names(&app.hosts[0]);
    let on_b = names(&app.hosts[1]);
    assert_eq!(on_a, BTreeSet::from(["gateway".into(), "ui".into()]));
    assert_eq!(
        on_b,
        BTreeSet::from(["owners".into(), "vets".into(), "visits".into()])
    );
    let b_providers = app.hosts[1].inventory().providers;
    assert_eq!(b_providers.len(), 1);
    assert_eq!(b_providers[0].contract_id, KEYVALUE);
    assert!(
        app.hosts[0]
            .inventory()
            .providers
            .iter()
            .all(|p| p.contract_id != KEYVALUE)
    );

    let base = app.base.clone();
    blocking(move || api_suite(&base, "Lattice")).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn petclinic_kv_backend_swapped_from_file_to_redis_in_the_manifest() {
    let redis = RedisServer::start();
    let data = tempfile::tempdir().unwrap();
    let file_manifest = app_manifest();
    let kv_links: Vec<&str> = file_manifest
        .links
        .iter()
        .filter(|l| l.values.get("backend").map(String::as_str) == Some("file"))
        .map(|l| l.actor.as_str())
        .collect();
    assert_eq!(kv_links, ["owners", "vets", "visits"]);
    let app = Deployment::standalone(&file_manifest, data.path()).await;
    let base = app.base.clone();

    // Data written on the file backend.
    let on_file = blocking({
        let base = base.clone();
        move || {
            let api = Api { base };
            wait_until_seeded(&api);
            let r = api.json(
                "POST",
                "/api/owners",
                &json!({"firstName": "Fay", "lastName": "Filebound", "address": "5 Disk Lane",
                        "city": "Redb", "telephone": "7"}),
            );
            let owner = ok(&r, 201, "create owner on the file backend");
            assert_eq!(ids(&api.owners(Some("filebound"))), [id_of(&owner)]);
            owner
        }
    })
    .await;
    let running = app.running();
    assert_eq!(running.len(), file_manifest.actors.len());

    // The manifest changed: the same links, backend redis.
    let mut redis_manifest = file_manifest.clone();
    for link in &mut redis_manifest.links {
        if link.values.get("backend").map(String::as_str) == Some("file") {
            link.values = BTreeMap::from([
                ("backend".to_string(), "redis".to_string()),
                ("url".to_string(), redis.url()),
            ]);
        }
    }
    assert!(redis_manifest.problems().is_empty());
    app.put_links(&redis_manifest, data.path()).await;
    for name in ["owners", "vets", "visits"] {
        let id = &app.actor(name).id;
        let link = app.hosts[0]
            .links()
            .into_iter()
            .find(|l| &l.actor_id == id && l.contract_id == KEYVALUE)
            .unwrap();
        assert_eq!(
            link.values.get("backend").map(String::as_str),
            Some("redis")
        );
    }

    // No actor was rebuilt, re-signed or restarted: the same instances run the modules
    // whose hashes the claims carry, and those are the modules the manifest names.
    assert_eq!(app.running(), running);
    for spec in &file_manifest.actors {
        let deployed = app.actor(&spec.name);
        let token = claims::extract_token(&deployed.bytes).unwrap().unwrap();
        let on_disk = std::fs::read(&spec.path).unwrap();
        let hash = nimbus_core::wasm::module_hash(&on_disk).unwrap();
        assert_eq!(token.claims.wascap.hash, hash, "{}", spec.name);
        assert_eq!(
            nimbus_core::wasm::module_hash(&deployed.bytes).unwrap(),
            hash
        );
        assert_eq!(token.claims.sub, deployed.id);
    }

    // The app works on Redis: seeded again there, and the whole suite passes.
    blocking({
        let base = base.clone();
        move || api_suite(&base, "Redis")
    })
    .await;
    // The data is in the Redis server, and the owner written to the file backend did not
    // move there.
    let store = nimbus_provider_keyvalue::open_backend(
        &BackendConfig::from_values(&HashMap::from([
            ("backend".to_string(), "redis".to_string()),
            ("url".to_string(), redis.url()),
        ]))
        .unwrap(),
    )
    .await
    .unwrap();
    assert!(store.exists("petclinic:owners:seeded").await.unwrap());
    assert!(store.exists("petclinic:vets:seeded").await.unwrap());
    let last_names = store
        .set_members("petclinic:owners:last-names")
        .await
        .unwrap();
    assert!(
        last_names.contains(&"zyxredis".to_string()),
        "{last_names:?}"
    );
    assert!(!last_names.contains(&"filebound".to_string()));
    let owner_on_file = on_file.clone();
    blocking({
        let base = base.clone();
        move || {
            let api = Api { base };
            assert_eq!(api.owners(Some("filebound")), Vec::<Value>::new());
            // Ids restart in the new store, so the file owner's id may name someone else
            // there, never the file owner.
            let r = api.get(&format!("/api/owners/{}", id_of(&owner_on_file)));
            if r.status == 200 {
                assert_ne!(ok(&r, 200, "owner by old id")["lastName"], "Filebound");
            } else {
                error(&r, 404, None, "owner by old id");
            }
        }
    })
    .await;

    // The file data is still where it was: back on the file backend, the owner is there.
    app.put_links(&file_manifest, data.path()).await;
    blocking(move || {
        let api = Api { base };
        http::wait_for(
            &api.base,
            "/api/owners?lastName=filebound",
            READY_TIMEOUT,
            |r| r.status == 200 && r.text().contains("Filebound"),
        );
        assert_eq!(
            api.get_ok(&format!("/api/owners/{}", id_of(&on_file)))["lastName"],
            "Filebound"
        );
        assert_eq!(api.owners(Some("zyxredis")), Vec::<Value>::new());
    })
    .await;
    assert_eq!(app.running(), running);
    app.stop().await;
}

/// Owners the search tests create: past the ~1,300 at which the lattice search used to
/// run into the RPC deadline (one key-value read per owner) in a debug build.
const MANY_OWNERS: usize = 2000;

/// Creates [`MANY_OWNERS`] owners named `Manyowner` through the API at `base`, then
/// searches for them and lists every owner; both must answer 200 with all of them.
/// Prints how long each step took.
fn search_many_owners(base: String) {
    let api = Api { base: base.clone() };
    wait_until_seeded(&api);
    let started = std::time::Instant::now();
    // Eight clients at once: the test is about the search, not about creating owners.
    std::thread::scope(|s| {
        for worker in 0..8 {
            let base = base.clone();
            s.spawn(move || {
                let api = Api { base };
                for n in (worker..MANY_OWNERS).step_by(8) {
                    let r = api.json(
                        "POST",
                        "/api/owners",
                        &json!({"firstName": format!("Many{n}"), "lastName": "Manyowner",
                                "address": "1 Bulk Road", "city": "Scale", "telephone": "5550100"}),
                    );
                    ok(&r, 201, &format!("create owner {n}"));
                }
            });
        }
    });
    eprintln!("created {MANY_OWNERS} owners in {:?}", started.elapsed());
    let started = std::time::Instant::now();
    let r = api.get("/api/owners?lastName=manyowner");
    eprintln!("search answered {} in {:?}", r.status, started.elapsed());
    let found = ok(&r, 200, "search");
    assert_eq!(found.as_array().unwrap().len(), MANY_OWNERS);
    let started = std::time::Instant::now();
    let r = api.get("/api/owners");
    eprintln!("full list answered {} in {:?}", r.status, started.elapsed());
    let all = ok(&r, 200, "full list");
    assert_eq!(all.as_array().unwrap().len(), MANY_OWNERS + SEED_OWNERS);
}

/// On a lattice every key-value call of the owners actor is a NATS round trip, so a search
/// must not cost one per owner: with 2,000 owners it answers 200 with all of them (issue
/// 14: the owners' pet sets used to be read with one `SetQuery` each, 2,000 round trips
/// that outlasted the 2 s RPC timeout, and the search answered 500; they are now read with
/// one `SetUnion` per 1,000 owners, next to the batched `GetMany` of the documents).
///
/// The key-value links use the memory backend: what the search costs is round trips, the
/// same on every backend, while creating the owners on the file backend (a durable commit
/// per write) takes about 50 s of a debug build instead of about 15.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn petclinic_owner_search_on_a_lattice_answers_with_2000_owners() {
    let nats = NatsServer::start();
    let data = tempfile::tempdir().unwrap();
    let mut manifest = app_manifest();
    for link in &mut manifest.links {
        if link.values.get("backend").map(String::as_str) == Some("file") {
            link.values = BTreeMap::from([("backend".to_string(), "memory".to_string())]);
        }
    }
    let app = Deployment::lattice(&manifest, &nats.url(), data.path()).await;
    let base = app.base.clone();
    blocking(move || search_many_owners(base)).await;
    app.stop().await;
}

/// The same search on one host (providers in process, the manifest's file backend). Not
/// run by default (`-- --ignored`, about 35 s): it times the standalone search for
/// comparison and checks nothing the lattice test does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a timing comparison for the lattice search test; run on demand"]
async fn petclinic_owner_search_standalone_answers_with_2000_owners() {
    let data = tempfile::tempdir().unwrap();
    let app = Deployment::standalone(&app_manifest(), data.path()).await;
    let base = app.base.clone();
    blocking(move || search_many_owners(base)).await;
    app.stop().await;
}
