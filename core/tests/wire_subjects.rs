//! Subject, queue-group and JetStream names of the 0.x lattice.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns

use nimbus_core::subjects::*;
use nimbus_core::wire::WasmCloudEntity;

const M: &str = "MB2ZQB6ROOMAYBO4ZCTFYWN7YIVBWA3MTKZYAQKJMTIHE2ELLRW2E3ZW";
const V: &str = "VAHNM37G7XCC7ZAMPAD7YZHSQXHKPJ3ID5GWVJUTK7BTUBBGSEVKHCSE";
const N: &str = "NCPGH5CVFVY2GCSEX5VUXI4ZBTN4XVGK5QYR37UW3BZMVY5KMZRKJN3N";

#[test]
fn rpc_subjects_default_lattice() {
    let s = Subjects::default();
    assert_eq!(s.lattice(), "default");
    assert_eq!(s.ctl_prefix(), "wasmbus.ctl");
    assert_eq!(s.rpc_actor(M), format!("wasmbus.rpc.default.{M}"));
    assert_eq!(s.rpc_actor_queue(M), s.rpc_actor(M));
    assert_eq!(
        s.rpc_provider(V, "default"),
        format!("wasmbus.rpc.default.{V}.default")
    );
    assert_eq!(s.rpc_provider_queue(), "rpc");
    assert_eq!(PROVIDER_RPC_QUEUE, "rpc");
    assert_eq!(
        s.provider_linkdefs_put(V, "default"),
        format!("wasmbus.rpc.default.{V}.default.linkdefs.put")
    );
    assert_eq!(
        s.provider_linkdefs_del(V, "default"),
        format!("wasmbus.rpc.default.{V}.default.linkdefs.del")
    );
    assert_eq!(
        s.provider_health(V, "default"),
        format!("wasmbus.rpc.default.{V}.default.health")
    );
    assert_eq!(
        s.provider_shutdown(V, "default"),
        format!("wasmbus.rpc.default.{V}.default.shutdown")
    );
    assert_eq!(s.rpc_events(), "wasmbus.rpcevt.default");
}

#[test]
fn rpc_subject_for_picks_by_link_name() {
    let s = Subjects::for_lattice("prod");
    assert_eq!(
        s.rpc_subject_for(&WasmCloudEntity::actor(M)),
        format!("wasmbus.rpc.prod.{M}")
    );
    assert_eq!(
        s.rpc_subject_for(&WasmCloudEntity::provider(V, "wasmcloud:keyvalue", "redis")),
        format!("wasmbus.rpc.prod.{V}.redis")
    );
    // Link name alone decides, as in wasmbus-rpc's rpc_topic.
    let odd = WasmCloudEntity {
        public_key: V.into(),
        link_name: "default".into(),
        contract_id: String::new(),
    };
    assert_eq!(
        s.rpc_subject_for(&odd),
        format!("wasmbus.rpc.prod.{V}.default")
    );
}

#[test]
fn ctl_subjects() {
    let s = Subjects::default();
    assert_eq!(s.ctl_root(), "wasmbus.ctl.default");
    assert_eq!(s.ctl_queue(), "wasmbus.ctl.default");
    assert_eq!(s.ctl_ping_hosts(), "wasmbus.ctl.default.ping.hosts");
    assert_eq!(s.ctl_get_claims(), "wasmbus.ctl.default.get.claims");
    assert_eq!(s.ctl_get_links(), "wasmbus.ctl.default.get.links");
    assert_eq!(
        s.ctl_get_inventory(N),
        format!("wasmbus.ctl.default.get.{N}.inv")
    );
    assert_eq!(s.ctl_linkdefs_put(), "wasmbus.ctl.default.linkdefs.put");
    assert_eq!(s.ctl_linkdefs_del(), "wasmbus.ctl.default.linkdefs.del");
    assert_eq!(s.ctl_auction_actor(), "wasmbus.ctl.default.auction.actor");
    assert_eq!(
        s.ctl_auction_provider(),
        "wasmbus.ctl.default.auction.provider"
    );
    assert_eq!(s.ctl_registries_put(), "wasmbus.ctl.default.registries.put");
    let verbs: Vec<String> = CtlCommand::ALL
        .iter()
        .map(|c| s.ctl_command(N, *c))
        .collect();
    let expected: Vec<String> = ["la", "sa", "scale", "upd", "lp", "sp", "stop"]
        .iter()
        .map(|v| format!("wasmbus.ctl.default.cmd.{N}.{v}"))
        .collect();
    assert_eq!(verbs, expected);
    assert_eq!(
        s.ctl_commands_wildcard(N),
        format!("wasmbus.ctl.default.cmd.{N}.*")
    );
}

#[test]
fn custom_prefixes() {
    let s = Subjects::new("blue", "acme.ctl");
    assert_eq!(s.ctl_ping_hosts(), "acme.ctl.blue.ping.hosts");
    assert_eq!(s.ctl_queue(), "acme.ctl.blue");
    assert_eq!(s.rpc_actor(M), format!("wasmbus.rpc.blue.{M}"));
    assert_eq!(s.events(), "wasmbus.evt.blue");
    assert_eq!(s.kv_bucket(), "LATTICEDATA_blue");
}

#[test]
fn events_config_and_jetstream() {
    let s = Subjects::default();
    assert_eq!(s.events(), "wasmbus.evt.default");
    assert_eq!(s.config_service(), "wasmbus.cfg.default.req");
    assert_eq!(s.kv_bucket(), "LATTICEDATA_default");
    assert_eq!(s.kv_stream(), "KV_LATTICEDATA_default");
    assert_eq!(s.kv_subjects(), "$KV.LATTICEDATA_default.>");
    assert_eq!(
        s.kv_key_subject("LINKDEF_AB"),
        "$KV.LATTICEDATA_default.LINKDEF_AB"
    );
    assert_eq!(s.object_store_bucket(), "default");
    assert_eq!(chunk_object_request("inv"), "inv");
    assert_eq!(chunk_object_response("inv"), "inv-r");
}

#[test]
fn parse_ctl_subjects_round_trip() {
    let s = Subjects::default();
    let all = [
        CtlSubject::PingHosts,
        CtlSubject::GetClaims,
        CtlSubject::GetLinks,
        CtlSubject::GetInventory { host_id: N.into() },
        CtlSubject::LinkdefsPut,
        CtlSubject::LinkdefsDel,
        CtlSubject::AuctionActor,
        CtlSubject::AuctionProvider,
        CtlSubject::RegistriesPut,
    ]
    .into_iter()
    .chain(
        CtlCommand::ALL
            .into_iter()
            .map(|command| CtlSubject::Command {
                host_id: N.into(),
                command,
            }),
    );
    for subject in all {
        let text = s.ctl_subject(&subject);
        assert_eq!(s.parse_ctl(&text), Some(subject.clone()), "{text}");
    }
    assert_eq!(s.parse_ctl("wasmbus.ctl.other.ping.hosts"), None);
    assert_eq!(s.parse_ctl("wasmbus.ctl.default.cmd.N.bogus"), None);
    assert_eq!(s.parse_ctl("wasmbus.ctl.default.get.claims.extra"), None);
    assert_eq!(s.parse_ctl("wasmbus.ctl.default"), None);
    assert_eq!(s.parse_ctl("wasmbus.ctl.defaultx.ping.hosts"), None);
    assert_eq!(s.parse_ctl(""), None);
    assert_eq!(CtlCommand::from_token("upd"), Some(CtlCommand::UpdateActor));
    assert_eq!(CtlCommand::StopHost.to_string(), "stop");
}

#[test]
fn ctl_queue_groups() {
    let s = Subjects::default();
    let q = Some("wasmbus.ctl.default".to_string());
    assert_eq!(s.ctl_queue_for(&CtlSubject::GetClaims), q);
    assert_eq!(s.ctl_queue_for(&CtlSubject::GetLinks), q);
    assert_eq!(s.ctl_queue_for(&CtlSubject::LinkdefsPut), q);
    assert_eq!(s.ctl_queue_for(&CtlSubject::LinkdefsDel), q);
    assert_eq!(s.ctl_queue_for(&CtlSubject::PingHosts), None);
    assert_eq!(s.ctl_queue_for(&CtlSubject::AuctionActor), None);
    assert_eq!(s.ctl_queue_for(&CtlSubject::AuctionProvider), None);
    assert_eq!(s.ctl_queue_for(&CtlSubject::RegistriesPut), None);
    assert_eq!(
        s.ctl_queue_for(&CtlSubject::GetInventory { host_id: N.into() }),
        None
    );
    assert_eq!(
        s.ctl_queue_for(&CtlSubject::Command {
            host_id: N.into(),
            command: CtlCommand::LaunchActor
        }),
        None
    );
}
