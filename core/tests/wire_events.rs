//! CloudEvents envelopes and lattice event data: golden JSON, type names, round trips.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use std::collections::{BTreeMap, HashMap};

use nimbus_core::encoding;
use nimbus_core::events::*;
use nimbus_core::link::LinkDefinition;
use nimbus_core::wire::WasmCloudEntity;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

fn envelope_round_trip<E>(event: E)
where
    E: LatticeEvent + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let ce = CloudEvent::new("Nhost", &event).unwrap();
    assert_eq!(ce.event_type, format!("com.wasmcloud.lattice.{}", E::NAME));
    assert_eq!(ce.name(), Some(E::NAME));
    assert!(ce.is::<E>());
    let bytes = ce.to_json().unwrap();
    let back = CloudEvent::from_json(&bytes).unwrap();
    assert_eq!(back, ce);
    assert_eq!(back.data_as::<E>().unwrap(), event);
    // The data also survives MessagePack (for in-process or alternative transports).
    let m = encoding::to_msgpack(&event).unwrap();
    assert_eq!(encoding::from_msgpack::<E>(&m).unwrap(), event);
}

fn labels() -> StringMap {
    BTreeMap::from([("hostcore.os".to_string(), "linux".to_string())])
}

#[test]
fn golden_envelope() {
    let event = ActorStopped {
        public_key: "Mabc".into(),
        instance_id: "i1".into(),
        annotations: BTreeMap::new(),
    };
    let ce = CloudEvent::with_id_and_time(
        "Nhost",
        &event,
        "0d1c4c59-3c0e-4a4e-9d9c-4b5a3a0f8d11",
        "2023-09-01T12:04:05.000000Z",
    )
    .unwrap();
    let text = String::from_utf8(ce.to_json().unwrap()).unwrap();
    let expected = r#"{"specversion":"1.0","type":"com.wasmcloud.lattice.actor_stopped","source":"Nhost","id":"0d1c4c59-3c0e-4a4e-9d9c-4b5a3a0f8d11","time":"2023-09-01T12:04:05.000000Z","datacontenttype":"application/json","data":{"annotations":{},"instance_id":"i1","public_key":"Mabc"}}"#;
    // Key order inside `data` depends on serde_json's map type; compare it structurally
    // and the envelope byte for byte.
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        serde_json::from_str::<Value>(expected).unwrap()
    );
    let envelope_prefix = r#"{"specversion":"1.0","type":"com.wasmcloud.lattice.actor_stopped","source":"Nhost","id":"0d1c4c59-3c0e-4a4e-9d9c-4b5a3a0f8d11","time":"2023-09-01T12:04:05.000000Z","datacontenttype":"application/json","data":"#;
    assert!(text.starts_with(envelope_prefix), "{text}");
}

#[test]
fn new_envelope_has_uuid_and_rfc3339_time() {
    let ce = CloudEvent::new("Nhost", &HostStopped { labels: labels() }).unwrap();
    assert_eq!(ce.specversion, "1.0");
    assert_eq!(ce.datacontenttype, "application/json");
    assert_eq!(ce.source, "Nhost");
    assert!(uuid::Uuid::parse_str(&ce.id).is_ok());
    // YYYY-MM-DDTHH:MM:SS.ffffffZ
    let t = ce.time.as_bytes();
    assert_eq!(t.len(), 27, "{}", ce.time);
    assert_eq!(
        (t[4], t[7], t[10], t[13], t[16], t[19], t[26]),
        (b'-', b'-', b'T', b':', b':', b'.', b'Z')
    );
    assert!(ce.time.as_str() > "2020-01-01");
}

#[test]
fn golden_event_data() {
    let ld = LinkDefinition::new("Mbob", "Vp", "default", "wasmcloud:testy", HashMap::new());
    let ce = CloudEvent::with_id_and_time(NO_SOURCE, &LinkdefSet(ld.clone()), "x", "t").unwrap();
    assert_eq!(ce.event_type, "com.wasmcloud.lattice.linkdef_set");
    assert_eq!(ce.source, "n/a");
    assert_eq!(
        ce.data,
        json!({"id": "B40411AD09B70A2C83D59923584F66BA2C5A3C274DC4F19416DA49CCD6531F9C",
               "actor_id": "Mbob", "provider_id": "Vp", "link_name": "default",
               "contract_id": "wasmcloud:testy", "values": {}})
    );

    let ev = InvocationSucceeded {
        source: WasmCloudEntity::actor("Ma"),
        dest: WasmCloudEntity::provider("Vp", "wasmcloud:keyvalue", "default"),
        operation: "KeyValue.Get".into(),
        bytes: 12,
    };
    assert_eq!(
        serde_json::to_value(&ev).unwrap(),
        json!({"source": {"public_key": "Ma", "link_name": "", "contract_id": ""},
               "dest": {"public_key": "Vp", "link_name": "default", "contract_id": "wasmcloud:keyvalue"},
               "operation": "KeyValue.Get", "bytes": 12})
    );

    let hb = HostHeartbeat {
        actors: BTreeMap::from([("Ma".to_string(), 2)]),
        providers: vec![HeartbeatProvider {
            public_key: "Vp".into(),
            link_name: "default".into(),
            contract_id: "wasmcloud:keyvalue".into(),
        }],
        labels: labels(),
        friendly_name: "f".into(),
        version: "0.1.0".into(),
        uptime_seconds: 30,
        uptime_human: "30s".into(),
    };
    assert_eq!(
        encoding::to_json_string(&hb).unwrap(),
        r#"{"actors":{"Ma":2},"providers":[{"public_key":"Vp","link_name":"default","contract_id":"wasmcloud:keyvalue"}],"labels":{"hostcore.os":"linux"},"friendly_name":"f","version":"0.1.0","uptime_seconds":30,"uptime_human":"30s"}"#
    );

    let started = ActorStarted {
        public_key: "Ma".into(),
        image_ref: "reg/echo:1".into(),
        api_version: "n/a".into(),
        instance_id: "i".into(),
        annotations: BTreeMap::new(),
        claims: ActorClaimsSummary {
            call_alias: None,
            caps: vec!["wasmcloud:httpserver".into()],
            issuer: "A".into(),
            tags: vec![],
            name: "echo".into(),
            version: "0.1".into(),
            revision: 1,
            not_before_human: "immediately".into(),
            expires_human: "never".into(),
        },
    };
    assert_eq!(
        encoding::to_json_string(&started).unwrap(),
        r#"{"public_key":"Ma","image_ref":"reg/echo:1","api_version":"n/a","instance_id":"i","annotations":{},"claims":{"call_alias":null,"caps":["wasmcloud:httpserver"],"issuer":"A","tags":[],"name":"echo","version":"0.1","revision":1,"not_before_human":"immediately","expires_human":"never"}}"#
    );
}

#[test]
fn event_names() {
    fn name<E: LatticeEvent>() -> &'static str {
        E::NAME
    }
    let names = [
        name::<HostStarted>(),
        name::<HostStopped>(),
        name::<HostHeartbeat>(),
        name::<ActorStarted>(),
        name::<ActorsStarted>(),
        name::<ActorStopped>(),
        name::<ActorsStopped>(),
        name::<ActorStartFailed>(),
        name::<ActorsStartFailed>(),
        name::<ActorUpdated>(),
        name::<ActorUpdateFailed>(),
        name::<ProviderStarted>(),
        name::<ProviderStopped>(),
        name::<ProviderStartFailed>(),
        name::<HealthCheckPassed>(),
        name::<HealthCheckFailed>(),
        name::<HealthCheckStatus>(),
        name::<LinkdefSet>(),
        name::<LinkdefDeleted>(),
        name::<RefmapSet>(),
        name::<InvocationSucceeded>(),
        name::<InvocationFailed>(),
    ];
    assert_eq!(
        names,
        [
            "host_started",
            "host_stopped",
            "host_heartbeat",
            "actor_started",
            "actors_started",
            "actor_stopped",
            "actors_stopped",
            "actor_start_failed",
            "actors_start_failed",
            "actor_updated",
            "actor_update_failed",
            "provider_started",
            "provider_stopped",
            "provider_start_failed",
            "health_check_passed",
            "health_check_failed",
            "health_check_status",
            "linkdef_set",
            "linkdef_deleted",
            "refmap_set",
            "invocation_succeeded",
            "invocation_failed",
        ]
    );
    assert_eq!(
        HealthCheckPassed::event_type(),
        "com.wasmcloud.lattice.health_check_passed"
    );
}

#[test]
fn every_event_round_trips() {
    envelope_round_trip(HostStarted {
        labels: labels(),
        friendly_name: "f".into(),
        uptime_seconds: 1,
        version: "v".into(),
    });
    envelope_round_trip(HostStopped { labels: labels() });
    envelope_round_trip(HostHeartbeat::default());
    envelope_round_trip(ActorStarted::default());
    envelope_round_trip(ActorsStarted {
        public_key: "M".into(),
        count: 3,
        ..Default::default()
    });
    envelope_round_trip(ActorStopped::default());
    envelope_round_trip(ActorsStopped {
        public_key: "M".into(),
        count: 1,
        remaining: 2,
        ..Default::default()
    });
    envelope_round_trip(ActorStartFailed {
        actor_ref: "r".into(),
        error: "e".into(),
    });
    envelope_round_trip(ActorsStartFailed::default());
    envelope_round_trip(ActorUpdated::default());
    envelope_round_trip(ActorUpdateFailed {
        reason: "x".into(),
        ..Default::default()
    });
    envelope_round_trip(ProviderStarted::default());
    envelope_round_trip(ProviderStopped {
        reason: "normal".into(),
        ..Default::default()
    });
    envelope_round_trip(ProviderStartFailed::default());
    envelope_round_trip(HealthCheckPassed::default());
    envelope_round_trip(HealthCheckFailed::default());
    envelope_round_trip(HealthCheckStatus::default());
    envelope_round_trip(LinkdefSet(LinkDefinition::new(
        "M",
        "V",
        "l",
        "c",
        HashMap::new(),
    )));
    envelope_round_trip(LinkdefDeleted(LinkDefinition::new(
        "M",
        "V",
        "l",
        "c",
        HashMap::from([("a".into(), "b".into())]),
    )));
    envelope_round_trip(RefmapSet {
        oci_url: "o".into(),
        public_key: "M".into(),
    });
    envelope_round_trip(InvocationSucceeded::default());
    envelope_round_trip(InvocationFailed::default());
}

#[test]
fn foreign_and_malformed_envelopes() {
    let text = r#"{"specversion":"1.0","type":"io.other.thing","source":"s","id":"i","time":"t","data":{}}"#;
    let ce = CloudEvent::from_json(text.as_bytes()).unwrap();
    assert_eq!(ce.name(), None);
    assert!(!ce.is::<HostStopped>());
    assert_eq!(ce.datacontenttype, "application/json");
    assert!(CloudEvent::from_json(b"{\"specversion\":\"1.0\"}").is_err());
    // Wrong data shape is a typed error, not a panic.
    let ce =
        CloudEvent::with_id_and_time("s", &HostStopped { labels: labels() }, "i", "t").unwrap();
    let err = ce.data_as::<ActorStarted>().unwrap_err();
    assert!(err.to_string().contains("ActorStarted"), "{err}");
}
