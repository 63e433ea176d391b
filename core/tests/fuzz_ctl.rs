//! Property tests of the control-interface and event decoders: whatever bytes arrive on a
//! `wasmbus.ctl.*` or `wasmbus.evt.*` subject (or sit in the lattice KV bucket), decoding
//! any control command, reply, link definition or CloudEvent as JSON returns a value or
//! a decode error naming the type, and never panics.
//!
//! Inputs: random bytes; random JSON; JSON objects with the field names of the control
//! types holding values of right and wrong types; deep nesting; and valid encodings
//! truncated, bit-flipped and spliced. Whatever decodes must encode again and decode to
//! the same value; valid values round-trip.

#![allow(clippy::unwrap_used)] // a panic is the failure report

mod fuzz_support;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;

use fuzz_support::*;
use nimbus_core::ctl::*;
use nimbus_core::encoding::{self, EncodingError, Format};
use nimbus_core::events::*;
use nimbus_core::link::{LinkDefinition, RefMapEntry};
use nimbus_core::wire::{ShutdownRequest, WasmCloudEntity};
use proptest::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Every field name of the control types and events, so generated objects hit them.
const CTL_KEYS: &[&str] = &[
    "id",
    "issuer",
    "labels",
    "friendly_name",
    "uptime_seconds",
    "uptime_human",
    "version",
    "cluster_issuers",
    "js_domain",
    "ctl_host",
    "prov_rpc_host",
    "rpc_host",
    "lattice_prefix",
    "host_id",
    "actors",
    "providers",
    "image_ref",
    "name",
    "instances",
    "annotations",
    "instance_id",
    "revision",
    "contract_id",
    "link_name",
    "claims",
    "call_alias",
    "iss",
    "caps",
    "rev",
    "tags",
    "sub",
    "config_schema",
    "links",
    "actor_id",
    "provider_id",
    "values",
    "actor_ref",
    "count",
    "new_actor_ref",
    "provider_ref",
    "configuration",
    "timeout",
    "accepted",
    "error",
    "constraints",
    "registryType",
    "username",
    "password",
    "token",
    "oci_url",
    "public_key",
    "specversion",
    "type",
    "source",
    "time",
    "datacontenttype",
    "data",
    "api_version",
    "reason",
    "remaining",
    "operation",
    "bytes",
    "dest",
    "not_before_human",
    "expires_human",
];

// ---- what every decode must satisfy ----------------------------------------------------

/// Decodes `bytes` as `T`; a value must re-encode and decode to itself, a failure must be
/// a JSON decode error for the whole input.
fn json_decodes_cleanly<T>(bytes: &[u8]) -> Option<T>
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    match encoding::from_json::<T>(bytes) {
        Ok(value) => {
            let again = encoding::to_json(&value).unwrap();
            let back: T = encoding::from_json(&again).unwrap();
            assert_eq!(back, value, "re-encoding changed the value");
            Some(value)
        }
        Err(e) => {
            assert_json_error(&e, bytes.len());
            None
        }
    }
}

fn assert_json_error(e: &EncodingError, len: usize) {
    match e {
        EncodingError::Decode {
            type_name,
            format: Format::Json,
            len: l,
            reason,
        } => {
            assert!(!type_name.is_empty() && !reason.is_empty(), "{e}");
            assert_eq!(*l, len, "{e}");
        }
        other => panic!("expected a JSON decode error, got {other:?}"),
    }
}

/// Every control-interface and KV decoder on the same bytes.
fn all_ctl_decoders(bytes: &[u8]) {
    json_decodes_cleanly::<Host>(bytes);
    json_decodes_cleanly::<HostInventory>(bytes);
    json_decodes_cleanly::<ActorDescription>(bytes);
    json_decodes_cleanly::<ProviderDescription>(bytes);
    if let Some(r) = json_decodes_cleanly::<GetClaimsResponse>(bytes) {
        for map in &r.claims {
            let claims = StoredClaims::from_map(map);
            assert_eq!(StoredClaims::from_map(&claims.to_map()), claims);
        }
    }
    json_decodes_cleanly::<StoredClaims>(bytes);
    json_decodes_cleanly::<LinkDefinitionList>(bytes);
    json_decodes_cleanly::<RemoveLinkDefinitionRequest>(bytes);
    json_decodes_cleanly::<StartActorCommand>(bytes);
    json_decodes_cleanly::<StopActorCommand>(bytes);
    json_decodes_cleanly::<ScaleActorCommand>(bytes);
    json_decodes_cleanly::<UpdateActorCommand>(bytes);
    json_decodes_cleanly::<StartProviderCommand>(bytes);
    json_decodes_cleanly::<StopProviderCommand>(bytes);
    if let Some(stop) = json_decodes_cleanly::<StopHostCommand>(bytes) {
        let _ = stop.timeout_ms();
    }
    json_decodes_cleanly::<CtlOperationAck>(bytes);
    json_decodes_cleanly::<ActorAuctionRequest>(bytes);
    json_decodes_cleanly::<ActorAuctionAck>(bytes);
    json_decodes_cleanly::<ProviderAuctionRequest>(bytes);
    json_decodes_cleanly::<ProviderAuctionAck>(bytes);
    json_decodes_cleanly::<RegistryCredentialMap>(bytes);
    json_decodes_cleanly::<LinkDefinition>(bytes);
    json_decodes_cleanly::<RefMapEntry>(bytes);
    json_decodes_cleanly::<ShutdownRequest>(bytes);
    // Link definitions are read from the KV bucket as lists too.
    json_decodes_cleanly::<Vec<LinkDefinition>>(bytes);
    match CloudEvent::from_json(bytes) {
        Ok(ce) => all_event_data(&ce),
        Err(e) => assert_json_error(&e, bytes.len()),
    }
}

/// Reads the data of `ce` as every event type (what an observer that trusts the `type`
/// field does); each returns a value or an error.
fn all_event_data(ce: &CloudEvent) {
    let _ = (ce.name(), ce.is::<HostStarted>());
    fn data<T: DeserializeOwned + Serialize + PartialEq + Debug>(ce: &CloudEvent) {
        match ce.data_as::<T>() {
            Ok(v) => {
                let json = serde_json::to_value(&v).unwrap();
                assert_eq!(T::deserialize(&json).unwrap(), v);
            }
            Err(e) => assert!(matches!(
                e,
                EncodingError::Decode {
                    format: Format::Json,
                    ..
                }
            )),
        }
    }
    data::<HostStarted>(ce);
    data::<HostStopped>(ce);
    data::<HostHeartbeat>(ce);
    data::<ActorStarted>(ce);
    data::<ActorsStarted>(ce);
    data::<ActorStopped>(ce);
    data::<ActorsStopped>(ce);
    data::<ActorStartFailed>(ce);
    data::<ActorsStartFailed>(ce);
    data::<ActorUpdated>(ce);
    data::<ActorUpdateFailed>(ce);
    data::<ProviderStarted>(ce);
    data::<ProviderStopped>(ce);
    data::<ProviderStartFailed>(ce);
    data::<HealthCheckPassed>(ce);
    data::<HealthCheckFailed>(ce);
    data::<HealthCheckStatus>(ce);
    data::<LinkdefSet>(ce);
    data::<LinkdefDeleted>(ce);
    data::<RefmapSet>(ce);
    data::<InvocationSucceeded>(ce);
    data::<InvocationFailed>(ce);
}

// ---- valid values --------------------------------------------------------------------

fn string_map(g: &mut Gen) -> nimbus_core::ctl::StringMap {
    g.vec(3, |g| (g.text(), g.text())).into_iter().collect()
}

fn link(g: &mut Gen) -> LinkDefinition {
    let values: HashMap<String, String> = g.vec(3, |g| (g.text(), g.text())).into_iter().collect();
    LinkDefinition::new(g.text(), g.text(), g.text(), g.text(), values)
}

fn count(g: &mut Gen) -> u16 {
    g.below(usize::from(u16::MAX) + 1) as u16
}

/// Some valid control value, JSON-encoded.
fn valid_ctl_json(g: &mut Gen) -> Vec<u8> {
    fn json<T: Serialize>(v: &T) -> Vec<u8> {
        encoding::to_json(v).unwrap()
    }
    match g.below(16) {
        0 => json(&StartActorCommand {
            actor_ref: g.text(),
            count: count(g),
            annotations: g.option(string_map),
            host_id: g.text(),
        }),
        1 => json(&StopActorCommand {
            actor_ref: g.text(),
            count: count(g),
            annotations: g.option(string_map),
            host_id: g.text(),
        }),
        2 => json(&ScaleActorCommand {
            actor_id: g.text(),
            actor_ref: g.text(),
            count: count(g),
            annotations: g.option(string_map),
            host_id: g.text(),
        }),
        3 => json(&UpdateActorCommand {
            actor_id: g.text(),
            new_actor_ref: g.text(),
            annotations: g.option(string_map),
            host_id: g.text(),
        }),
        4 => json(&StartProviderCommand {
            provider_ref: g.text(),
            link_name: g.text(),
            configuration: g.option(Gen::text),
            annotations: g.option(string_map),
            host_id: g.text(),
        }),
        5 => json(&StopProviderCommand {
            provider_ref: g.text(),
            link_name: g.text(),
            contract_id: g.text(),
            annotations: g.option(string_map),
            host_id: g.text(),
        }),
        6 => json(&StopHostCommand {
            host_id: g.text(),
            timeout: g.option(Gen::number),
        }),
        7 => json(&link(g)),
        8 => json(&LinkDefinitionList {
            links: g.vec(3, link),
        }),
        9 => json(&RemoveLinkDefinitionRequest {
            actor_id: g.text(),
            contract_id: g.text(),
            link_name: g.text(),
        }),
        10 => json(&Host {
            id: g.text(),
            issuer: g.text(),
            labels: string_map(g),
            friendly_name: g.text(),
            uptime_seconds: g.number(),
            uptime_human: g.option(Gen::text),
            version: g.option(Gen::text),
            cluster_issuers: g.option(Gen::text),
            js_domain: g.option(Gen::text),
            ctl_host: g.option(Gen::text),
            prov_rpc_host: g.option(Gen::text),
            rpc_host: g.option(Gen::text),
            lattice_prefix: g.option(Gen::text),
        }),
        11 => json(&HostInventory {
            host_id: g.text(),
            issuer: g.text(),
            labels: string_map(g),
            friendly_name: g.text(),
            actors: g.vec(2, |g| ActorDescription {
                id: g.text(),
                image_ref: g.option(Gen::text),
                name: g.option(Gen::text),
                instances: g.vec(2, |g| ActorInstance {
                    annotations: string_map(g),
                    instance_id: g.text(),
                    revision: g.u64() as i32,
                }),
            }),
            providers: g.vec(2, |g| ProviderDescription {
                id: g.text(),
                image_ref: g.option(Gen::text),
                contract_id: g.text(),
                link_name: g.text(),
                name: g.option(Gen::text),
                instance_id: g.text(),
                annotations: string_map(g),
                revision: g.u64() as i32,
            }),
        }),
        12 => json(&CtlOperationAck {
            accepted: g.bool(),
            error: g.text(),
        }),
        13 => json(&ProviderAuctionAck {
            provider_ref: g.text(),
            link_name: g.text(),
            constraints: string_map(g),
            host_id: g.text(),
        }),
        14 => {
            let creds: RegistryCredentialMap = g
                .vec(2, |g| {
                    let cred = RegistryCredential {
                        registry_type: g.text(),
                        username: g.option(Gen::text),
                        password: g.option(Gen::text),
                        token: g.option(Gen::text),
                    };
                    (g.text(), cred)
                })
                .into_iter()
                .collect();
            json(&creds)
        }
        _ => valid_event(g).to_json().unwrap(),
    }
}

fn entity(g: &mut Gen) -> WasmCloudEntity {
    WasmCloudEntity::provider(g.text(), g.text(), g.text())
}

/// A valid CloudEvent of one of a few event types.
fn valid_event(g: &mut Gen) -> CloudEvent {
    let source = g.text();
    let (id, time) = (g.text(), g.text());
    match g.below(5) {
        0 => CloudEvent::with_id_and_time(
            source,
            &HostHeartbeat {
                actors: g
                    .vec(3, |g| (g.text(), g.number()))
                    .into_iter()
                    .collect::<BTreeMap<_, _>>(),
                providers: g.vec(2, |g| HeartbeatProvider {
                    public_key: g.text(),
                    link_name: g.text(),
                    contract_id: g.text(),
                }),
                labels: string_map(g),
                friendly_name: g.text(),
                version: g.text(),
                uptime_seconds: g.number(),
                uptime_human: g.text(),
            },
            id,
            time,
        ),
        1 => CloudEvent::with_id_and_time(source, &LinkdefSet(link(g)), id, time),
        2 => CloudEvent::with_id_and_time(
            source,
            &HostStopped {
                labels: string_map(g),
            },
            id,
            time,
        ),
        3 => CloudEvent::with_id_and_time(
            source,
            &RefmapSet {
                oci_url: g.text(),
                public_key: g.text(),
            },
            id,
            time,
        ),
        _ => CloudEvent::with_id_and_time(
            source,
            &InvocationFailed {
                source: entity(g),
                dest: entity(g),
                operation: g.text(),
                bytes: g.number(),
            },
            id,
            time,
        ),
    }
    .unwrap()
}

/// An envelope-shaped object whose `data` is ctl/event-shaped.
fn event_shaped_json(g: &mut Gen) -> Vec<u8> {
    let mut obj = g.json_object_with(CTL_KEYS, 1);
    for (key, value) in [
        ("specversion", serde_json::Value::from("1.0")),
        (
            "type",
            serde_json::Value::from(format!("com.wasmcloud.lattice.{}", g.text())),
        ),
        ("source", serde_json::Value::from(g.text())),
        ("id", serde_json::Value::from(g.text())),
        ("time", serde_json::Value::from(g.text())),
    ] {
        if !g.one_in(8) {
            obj.insert(key.to_string(), value);
        }
    }
    let data = g.json_object_with(CTL_KEYS, 2);
    obj.insert("data".to_string(), serde_json::Value::Object(data));
    serde_json::to_vec(&obj).unwrap()
}

/// JSON containers nested up to 4,000 deep, alone or under an unknown key.
fn deep_json(g: &mut Gen) -> Vec<u8> {
    let (open, close): (&str, &str) = g.pick(&[("[", "]"), ("{\"a\":", "}"), ("{\"data\":", "}")]);
    // serde_json refuses more than 128 levels; a few thousand prove that nothing
    // recurses past its limit (e.g. while skipping an unknown key).
    let depth = match g.below(3) {
        0 => 120 + g.below(20),
        1 => g.below(1_000),
        _ => g.below(4_000),
    };
    let prefix = g.pick(&["", "{\"x\":", "{\"id\":\"h\",\"labels\":"]);
    let mut out = prefix.to_string();
    for _ in 0..depth {
        out.push_str(open);
    }
    out.push_str(g.pick(&["1", "null", "", "\"s\""]));
    if g.bool() {
        for _ in 0..depth {
            out.push_str(close);
        }
        if !prefix.is_empty() {
            out.push('}');
        }
    }
    out.into_bytes()
}

// ---- properties ------------------------------------------------------------------------

// Each input goes through all 26 decoders (3 to 10 µs each in a debug build), so these
// targets run fewer inputs than 20,000 and still make 100,000s of decodes.

proptest! {
    #![proptest_config(config(10_000))]

    #[test]
    fn random_bytes_never_panic_any_ctl_decoder(bytes in random_bytes(96)) {
        all_ctl_decoders(&bytes);
    }
}

proptest! {
    #![proptest_config(config(5_000))]

    #[test]
    fn random_json_never_panics(seed in any::<u64>()) {
        let value = Gen::new(seed).json_value(5);
        all_ctl_decoders(&serde_json::to_vec(&value).unwrap());
    }

    #[test]
    fn ctl_shaped_json_never_panics(seed in any::<u64>()) {
        let mut g = Gen::new(seed);
        let bytes = if g.one_in(4) {
            event_shaped_json(&mut g)
        } else {
            serde_json::to_vec(&g.json_object_with(CTL_KEYS, 2)).unwrap()
        };
        all_ctl_decoders(&bytes);
    }

    #[test]
    fn mutated_valid_ctl_json_never_panics(seed in any::<u64>()) {
        let mut g = Gen::new(seed);
        let valid = valid_ctl_json(&mut g);
        all_ctl_decoders(&g.mutate(&valid, 5));
    }
}

proptest! {
    #![proptest_config(config(3_000))]

    #[test]
    fn valid_ctl_json_round_trips(seed in any::<u64>()) {
        // A valid value decodes as its own type, and again after re-encoding (checked in
        // `json_decodes_cleanly`); the other types' decoders only have to not panic.
        let bytes = valid_ctl_json(&mut Gen::new(seed));
        all_ctl_decoders(&bytes);
    }

    #[test]
    fn events_round_trip(seed in any::<u64>()) {
        let ce = valid_event(&mut Gen::new(seed));
        let back = CloudEvent::from_json(&ce.to_json().unwrap()).unwrap();
        prop_assert_eq!(&back, &ce);
        all_event_data(&back);
    }
}

proptest! {
    // Inputs of thousands of levels, each scanned by 26 decoders, cost more per case.
    #![proptest_config(config(150))]

    #[test]
    fn deep_json_never_overflows_the_stack(seed in any::<u64>()) {
        all_ctl_decoders(&deep_json(&mut Gen::new(seed)));
    }
}

#[test]
fn each_valid_value_decodes_as_its_own_type() {
    // The round-trip target above checks values only when they decode; make sure the
    // valid encodings really do, for a fixed set of seeds of each kind.
    for seed in 0..2_000u64 {
        let mut g = Gen::new(seed);
        let kind = g.clone().below(16);
        let bytes = valid_ctl_json(&mut g);
        let ok = match kind {
            0 => encoding::from_json::<StartActorCommand>(&bytes).is_ok(),
            1 => encoding::from_json::<StopActorCommand>(&bytes).is_ok(),
            2 => encoding::from_json::<ScaleActorCommand>(&bytes).is_ok(),
            3 => encoding::from_json::<UpdateActorCommand>(&bytes).is_ok(),
            4 => encoding::from_json::<StartProviderCommand>(&bytes).is_ok(),
            5 => encoding::from_json::<StopProviderCommand>(&bytes).is_ok(),
            6 => encoding::from_json::<StopHostCommand>(&bytes).is_ok(),
            7 => encoding::from_json::<LinkDefinition>(&bytes).is_ok(),
            8 => encoding::from_json::<LinkDefinitionList>(&bytes).is_ok(),
            9 => encoding::from_json::<RemoveLinkDefinitionRequest>(&bytes).is_ok(),
            10 => encoding::from_json::<Host>(&bytes).is_ok(),
            11 => encoding::from_json::<HostInventory>(&bytes).is_ok(),
            12 => encoding::from_json::<CtlOperationAck>(&bytes).is_ok(),
            13 => encoding::from_json::<ProviderAuctionAck>(&bytes).is_ok(),
            14 => encoding::from_json::<RegistryCredentialMap>(&bytes).is_ok(),
            _ => CloudEvent::from_json(&bytes).is_ok(),
        };
        assert!(ok, "seed {seed}: {}", String::from_utf8_lossy(&bytes));
    }
}
