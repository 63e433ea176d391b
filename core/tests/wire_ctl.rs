//! Control-interface JSON: golden strings with the exact field names of the 0.x control
//! interface, defaults applied on decode, and round trips (JSON and MessagePack).

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use std::collections::{BTreeMap, HashMap};

use nimbus_core::ctl::*;
use nimbus_core::encoding;
use nimbus_core::link::LinkDefinition;
use serde::Serialize;
use serde::de::DeserializeOwned;

fn golden<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(v: &T, json: &str) {
    assert_eq!(encoding::to_json_string(v).unwrap(), json);
    assert_eq!(&encoding::from_json_str::<T>(json).unwrap(), v);
}

fn round_trips<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(v: &T) {
    let j = encoding::to_json(v).unwrap();
    assert_eq!(&encoding::from_json::<T>(&j).unwrap(), v);
    let m = encoding::to_msgpack(v).unwrap();
    assert_eq!(&encoding::from_msgpack::<T>(&m).unwrap(), v);
}

fn map(pairs: &[(&str, &str)]) -> StringMap {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn ack_golden() {
    golden(&CtlOperationAck::ok(), r#"{"accepted":true,"error":""}"#);
    golden(
        &CtlOperationAck::failed("no such actor"),
        r#"{"accepted":false,"error":"no such actor"}"#,
    );
    // Some clients omit `error` on success.
    assert_eq!(
        encoding::from_json_str::<CtlOperationAck>(r#"{"accepted":true}"#).unwrap(),
        CtlOperationAck::ok()
    );
}

#[test]
fn start_actor_golden_and_defaults() {
    let cmd = StartActorCommand {
        actor_ref: "wasmcloud.azurecr.io/echo:0.3.4".into(),
        count: 1,
        annotations: None,
        host_id: "Nhost".into(),
    };
    golden(
        &cmd,
        r#"{"actor_ref":"wasmcloud.azurecr.io/echo:0.3.4","count":1,"host_id":"Nhost"}"#,
    );
    // count defaults to 1, host_id to "" (it is in the subject).
    let parsed: StartActorCommand =
        encoding::from_json_str(r#"{"actor_ref":"wasmcloud.azurecr.io/echo:0.3.4"}"#).unwrap();
    assert_eq!(parsed.count, 1);
    assert_eq!(parsed.host_id, "");
    let with_ann = StartActorCommand {
        annotations: Some(map(&[("app", "petclinic")])),
        count: 3,
        ..cmd
    };
    golden(
        &with_ann,
        r#"{"actor_ref":"wasmcloud.azurecr.io/echo:0.3.4","count":3,"annotations":{"app":"petclinic"},"host_id":"Nhost"}"#,
    );
}

#[test]
fn stop_scale_update_golden() {
    golden(
        &StopActorCommand {
            actor_ref: "Mabc".into(),
            count: 2,
            annotations: None,
            host_id: "N".into(),
        },
        r#"{"actor_ref":"Mabc","count":2,"host_id":"N"}"#,
    );
    // `count` is required for stop.
    assert!(encoding::from_json_str::<StopActorCommand>(r#"{"actor_ref":"Mabc"}"#).is_err());
    golden(
        &ScaleActorCommand {
            actor_id: "Mabc".into(),
            actor_ref: "reg/echo:1".into(),
            count: 0,
            annotations: Some(BTreeMap::new()),
            host_id: "N".into(),
        },
        r#"{"actor_id":"Mabc","actor_ref":"reg/echo:1","count":0,"annotations":{},"host_id":"N"}"#,
    );
    golden(
        &UpdateActorCommand {
            actor_id: "Mabc".into(),
            new_actor_ref: "reg/echo:2".into(),
            annotations: None,
            host_id: "N".into(),
        },
        r#"{"actor_id":"Mabc","new_actor_ref":"reg/echo:2","host_id":"N"}"#,
    );
}

#[test]
fn provider_commands_golden() {
    golden(
        &StartProviderCommand {
            provider_ref: "reg/kv:1".into(),
            link_name: "default".into(),
            configuration: Some(r#"{"url":"redis://x"}"#.into()),
            annotations: None,
            host_id: "N".into(),
        },
        r#"{"provider_ref":"reg/kv:1","link_name":"default","configuration":"{\"url\":\"redis://x\"}","host_id":"N"}"#,
    );
    golden(
        &StopProviderCommand {
            provider_ref: "V".repeat(56),
            link_name: "default".into(),
            contract_id: "wasmcloud:keyvalue".into(),
            annotations: None,
            host_id: "N".into(),
        },
        &format!(
            r#"{{"provider_ref":"{}","link_name":"default","contract_id":"wasmcloud:keyvalue","host_id":"N"}}"#,
            "V".repeat(56)
        ),
    );
    let stop = StopHostCommand {
        host_id: "N".into(),
        timeout: None,
    };
    golden(&stop, r#"{"host_id":"N"}"#);
    assert_eq!(stop.timeout_ms(), 500);
    golden(
        &StopHostCommand {
            host_id: "N".into(),
            timeout: Some(1000),
        },
        r#"{"host_id":"N","timeout":1000}"#,
    );
    assert_eq!(
        encoding::from_json_str::<StopHostCommand>("{}").unwrap(),
        StopHostCommand::default()
    );
}

#[test]
fn auctions_golden() {
    golden(
        &ActorAuctionRequest {
            actor_ref: "reg/echo:1".into(),
            constraints: map(&[("region", "eu")]),
        },
        r#"{"actor_ref":"reg/echo:1","constraints":{"region":"eu"}}"#,
    );
    golden(
        &ActorAuctionAck {
            actor_ref: "reg/echo:1".into(),
            constraints: map(&[("region", "eu")]),
            host_id: "N".into(),
        },
        r#"{"actor_ref":"reg/echo:1","constraints":{"region":"eu"},"host_id":"N"}"#,
    );
    let req: ProviderAuctionRequest =
        encoding::from_json_str(r#"{"provider_ref":"reg/kv:1","constraints":{}}"#).unwrap();
    assert_eq!(req.link_name, "default");
    golden(
        &req,
        r#"{"provider_ref":"reg/kv:1","link_name":"default","constraints":{}}"#,
    );
    golden(
        &ProviderAuctionAck {
            provider_ref: "reg/kv:1".into(),
            link_name: "default".into(),
            constraints: BTreeMap::new(),
            host_id: "N".into(),
        },
        r#"{"provider_ref":"reg/kv:1","link_name":"default","constraints":{},"host_id":"N"}"#,
    );
}

#[test]
fn registry_credentials_golden() {
    let mut creds = RegistryCredentialMap::new();
    creds.insert(
        "localhost:5000".into(),
        RegistryCredential {
            registry_type: "oci".into(),
            username: Some("u".into()),
            password: Some("p".into()),
            token: None,
        },
    );
    golden(
        &creds,
        r#"{"localhost:5000":{"registryType":"oci","username":"u","password":"p"}}"#,
    );
    let parsed: RegistryCredential = encoding::from_json_str(r#"{"token":"t"}"#).unwrap();
    assert_eq!(parsed.registry_type, "oci");
    assert_eq!(parsed.token.as_deref(), Some("t"));
}

#[test]
fn host_ping_reply_golden() {
    let host = Host {
        id: "Nhost".into(),
        issuer: "Ccluster".into(),
        labels: map(&[("hostcore.arch", "x86_64"), ("hostcore.os", "linux")]),
        friendly_name: "quiet-fog-1234".into(),
        uptime_seconds: 42,
        uptime_human: Some("42s".into()),
        version: Some("0.1.0".into()),
        cluster_issuers: Some("Ccluster,Cother".into()),
        js_domain: None,
        ctl_host: Some("127.0.0.1:4222".into()),
        prov_rpc_host: Some("127.0.0.1:4222".into()),
        rpc_host: Some("127.0.0.1:4222".into()),
        lattice_prefix: Some("default".into()),
    };
    golden(
        &host,
        r#"{"id":"Nhost","issuer":"Ccluster","labels":{"hostcore.arch":"x86_64","hostcore.os":"linux"},"friendly_name":"quiet-fog-1234","uptime_seconds":42,"uptime_human":"42s","version":"0.1.0","cluster_issuers":"Ccluster,Cother","ctl_host":"127.0.0.1:4222","prov_rpc_host":"127.0.0.1:4222","rpc_host":"127.0.0.1:4222","lattice_prefix":"default"}"#,
    );
    round_trips(&host);
}

#[test]
fn inventory_golden() {
    let inv = HostInventory {
        host_id: "Nhost".into(),
        issuer: "C".into(),
        labels: map(&[("a", "b")]),
        friendly_name: "f".into(),
        actors: vec![ActorDescription {
            id: "Mabc".into(),
            image_ref: Some("reg/echo:1".into()),
            name: Some("echo".into()),
            instances: vec![ActorInstance {
                annotations: BTreeMap::new(),
                instance_id: "i1".into(),
                revision: 3,
            }],
        }],
        providers: vec![ProviderDescription {
            id: "Vkv".into(),
            image_ref: None,
            contract_id: "wasmcloud:keyvalue".into(),
            link_name: "default".into(),
            name: Some("kv".into()),
            instance_id: "i2".into(),
            annotations: map(&[("x", "y")]),
            revision: 0,
        }],
    };
    golden(
        &inv,
        r#"{"host_id":"Nhost","issuer":"C","labels":{"a":"b"},"friendly_name":"f","actors":[{"id":"Mabc","image_ref":"reg/echo:1","name":"echo","instances":[{"annotations":{},"instance_id":"i1","revision":3}]}],"providers":[{"id":"Vkv","contract_id":"wasmcloud:keyvalue","link_name":"default","name":"kv","instance_id":"i2","annotations":{"x":"y"},"revision":0}]}"#,
    );
    round_trips(&inv);
}

#[test]
fn claims_response() {
    let stored = StoredClaims {
        call_alias: "".into(),
        iss: "Aiss".into(),
        name: "echo".into(),
        caps: "wasmcloud:httpserver,wasmcloud:keyvalue".into(),
        rev: "3".into(),
        tags: "".into(),
        version: "0.1.0".into(),
        sub: "Mabc".into(),
        contract_id: "".into(),
        config_schema: None,
    };
    golden(
        &stored,
        r#"{"call_alias":"","iss":"Aiss","name":"echo","caps":"wasmcloud:httpserver,wasmcloud:keyvalue","rev":"3","tags":"","version":"0.1.0","sub":"Mabc","contract_id":""}"#,
    );
    let resp = GetClaimsResponse {
        claims: vec![stored.to_map()],
    };
    let json = encoding::to_json_string(&resp).unwrap();
    let back: GetClaimsResponse = encoding::from_json_str(&json).unwrap();
    assert_eq!(StoredClaims::from_map(&back.claims[0]), stored);
    let parsed: GetClaimsResponse =
        encoding::from_json_str(r#"{"claims":[{"sub":"Mx","config_schema":"{}"}]}"#).unwrap();
    let c = StoredClaims::from_map(&parsed.claims[0]);
    assert_eq!(c.sub, "Mx");
    assert_eq!(c.config_schema.as_deref(), Some("{}"));
    assert_eq!(c.iss, "");
    round_trips(&resp);
    round_trips(&stored);
}

#[test]
fn links_list_golden() {
    let list = LinkDefinitionList {
        links: vec![LinkDefinition::new(
            "Mbob",
            "Vp",
            "default",
            "wasmcloud:testy",
            HashMap::from([("k".to_string(), "v".to_string())]),
        )],
    };
    golden(
        &list,
        r#"{"links":[{"actor_id":"Mbob","provider_id":"Vp","link_name":"default","contract_id":"wasmcloud:testy","values":{"k":"v"},"id":"B40411AD09B70A2C83D59923584F66BA2C5A3C274DC4F19416DA49CCD6531F9C"}]}"#,
    );
    round_trips(&list);
    let del: RemoveLinkDefinitionRequest =
        encoding::from_json_str(r#"{"actor_id":"Mbob","contract_id":"wasmcloud:testy"}"#).unwrap();
    assert_eq!(del.link_name, "default");
    golden(
        &del,
        r#"{"actor_id":"Mbob","contract_id":"wasmcloud:testy","link_name":"default"}"#,
    );
}

#[test]
fn all_ctl_types_round_trip() {
    round_trips(&CtlOperationAck::failed("x"));
    round_trips(&StartActorCommand {
        actor_ref: "r".into(),
        count: 2,
        annotations: Some(map(&[("a", "b")])),
        host_id: "N".into(),
    });
    round_trips(&StopActorCommand {
        actor_ref: "M".into(),
        count: 1,
        annotations: None,
        host_id: "N".into(),
    });
    round_trips(&ScaleActorCommand {
        actor_id: "M".into(),
        actor_ref: "r".into(),
        count: 5,
        annotations: None,
        host_id: "N".into(),
    });
    round_trips(&UpdateActorCommand {
        actor_id: "M".into(),
        new_actor_ref: "r".into(),
        annotations: None,
        host_id: "N".into(),
    });
    round_trips(&StartProviderCommand {
        provider_ref: "r".into(),
        link_name: "l".into(),
        configuration: None,
        annotations: Some(BTreeMap::new()),
        host_id: "N".into(),
    });
    round_trips(&StopProviderCommand {
        provider_ref: "V".into(),
        link_name: "l".into(),
        contract_id: "c".into(),
        annotations: None,
        host_id: "N".into(),
    });
    round_trips(&StopHostCommand {
        host_id: "N".into(),
        timeout: Some(3),
    });
    round_trips(&ActorAuctionRequest::default());
    round_trips(&ActorAuctionAck::default());
    round_trips(&ProviderAuctionAck::default());
    round_trips(&ProviderAuctionRequest {
        provider_ref: "r".into(),
        link_name: "l".into(),
        constraints: map(&[("a", "b")]),
    });
    round_trips(&RegistryCredential::default());
    round_trips(&RemoveLinkDefinitionRequest::default());
    round_trips(&Host::default());
    round_trips(&HostInventory::default());
    round_trips(&LinkDefinitionList::default());
}

#[test]
fn malformed_ctl_json_is_an_error() {
    let err = encoding::from_json_str::<StartActorCommand>(r#"{"count":1}"#).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("StartActorCommand"), "{msg}");
    assert!(msg.contains("actor_ref"), "{msg}");
    assert!(encoding::from_json_str::<Host>("").is_err());
    assert!(encoding::from_json_str::<Host>("[1,2").is_err());
}
