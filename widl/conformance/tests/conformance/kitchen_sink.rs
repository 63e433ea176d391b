//! The checked-in `wash gen` output for `kitchen_sink.widl`, both sides: the wire forms of
//! the constructs the published generator never emitted (enums, unions, datetime, `value`,
//! bytes at any depth, recursion) and the operation forms (unary, function, zero-argument,
//! void, bytes in and out), across the two sides.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{TimeZone, Utc};
use nimbus_actor::HandlerResult;
use nimbus_actor::testing::{clear_host, guest_call};
use nimbus_provider_sdk::{ActorCaller, CallContext, ProviderError};
use nimbus_widl_conformance::actor::kitchen_sink as a;
use nimbus_widl_conformance::provider::kitchen_sink as p;
use rmpv::Value;
use serde_bytes::ByteBuf;

use crate::support::recording_host;

fn item() -> a::Item {
    a::Item {
        id: "item-1".into(),
        r#type: "widget".into(),
        i8v: -8,
        i16v: -16,
        i32v: -32,
        i64v: i64::MIN,
        u8v: 8,
        u16v: 16,
        u32v: u32::MAX,
        u64v: u64::MAX,
        f32v: 1.5,
        f64v: -2.25,
        flag: true,
        data: vec![1, 2, 3],
        maybe_data: None,
        chunks: vec![ByteBuf::from(vec![4]), ByteBuf::from(Vec::new())],
        named_chunks: HashMap::from([("c".to_string(), ByteBuf::from(vec![5, 6]))]),
        blob: ByteBuf::from(b"blob".to_vec()),
        raw: vec![0xc0],
        extra: Value::Array(vec![Value::from(1), Value::from("two")]),
        opaque: Some(Value::Boolean(false)),
        tags: vec!["a".into()],
        counts: HashMap::from([(7u16, vec![Some(1.0), None])]),
        nested: HashMap::from([(
            "n".to_string(),
            HashMap::from([(-1i64, vec![a::Location { line: "l".into() }])]),
        )]),
        color: a::Color::LightGray,
        shape: Some(a::Shape::Square(Box::new(a::Square {
            side: 2.0,
            inner: Some(Box::new(a::Shape::Circle(a::Circle { radius: 1.0 }))),
        }))),
        parent: Some(Box::new(a::Item {
            parent: None,
            shape: None,
            ..leaf()
        })),
        created: Utc.with_ymd_and_hms(2021, 5, 17, 12, 0, 0).unwrap(),
        maybe_created: None,
    }
}

fn leaf() -> a::Item {
    a::Item {
        id: "leaf".into(),
        r#type: String::new(),
        i8v: 0,
        i16v: 0,
        i32v: 0,
        i64v: 0,
        u8v: 0,
        u16v: 0,
        u32v: 0,
        u64v: 0,
        f32v: 0.0,
        f64v: 0.0,
        flag: false,
        data: Vec::new(),
        maybe_data: Some(vec![9]),
        chunks: Vec::new(),
        named_chunks: HashMap::new(),
        blob: ByteBuf::new(),
        raw: Vec::new(),
        extra: Value::Nil,
        opaque: None,
        tags: Vec::new(),
        counts: HashMap::new(),
        nested: HashMap::new(),
        color: a::Color::Red,
        shape: None,
        parent: None,
        created: Utc.with_ymd_and_hms(1970, 1, 1, 0, 0, 0).unwrap(),
        maybe_created: Some(Utc.with_ymd_and_hms(2000, 2, 29, 23, 59, 59).unwrap()),
    }
}

fn field<'v>(map: &'v Value, key: &str) -> &'v Value {
    map.as_map()
        .unwrap()
        .iter()
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no field {key} in {map}"))
}

#[test]
fn item_round_trips_and_has_the_documented_wire_form() {
    let item = item();
    let bytes = a::serialize(&item).unwrap();
    assert_eq!(a::deserialize::<a::Item>(&bytes).unwrap(), item);
    // The provider side's types read what the actor side's types write.
    let other: p::Item = p::deserialize(&bytes).unwrap();
    assert_eq!(p::serialize(&other).unwrap(), bytes);

    let wire: Value = rmp_serde::from_slice(&bytes).unwrap();
    // Map keyed by WIDL names in declaration order; `type` keeps its name.
    let keys: Vec<&str> = wire
        .as_map()
        .unwrap()
        .iter()
        .map(|(k, _)| k.as_str().unwrap())
        .collect();
    assert_eq!(&keys[..4], ["id", "type", "i8v", "i16v"]);
    assert!(keys.contains(&"maybeData") && keys.contains(&"namedChunks"));
    // bytes are bin at every depth.
    assert_eq!(field(&wire, "data"), &Value::Binary(vec![1, 2, 3]));
    assert_eq!(
        field(&wire, "chunks"),
        &Value::Array(vec![Value::Binary(vec![4]), Value::Binary(vec![])])
    );
    assert_eq!(
        field(&wire, "namedChunks"),
        &Value::Map(vec![(Value::from("c"), Value::Binary(vec![5, 6]))])
    );
    assert_eq!(field(&wire, "blob"), &Value::Binary(b"blob".to_vec()));
    assert_eq!(field(&wire, "raw"), &Value::Binary(vec![0xc0]));
    // An absent optional is nil, present on the wire.
    assert_eq!(field(&wire, "maybeData"), &Value::Nil);
    // Enums are their number; datetime is an RFC 3339 string; value is any value.
    assert_eq!(field(&wire, "color"), &Value::from(10));
    assert_eq!(
        field(&wire, "created"),
        &Value::from("2021-05-17T12:00:00Z")
    );
    assert_eq!(
        field(&wire, "extra"),
        &Value::Array(vec![Value::from(1), Value::from("two")])
    );
    // Unions are a one-entry map from the member's WIDL type name.
    let shape = field(&wire, "shape");
    let (tag, square) = &shape.as_map().unwrap()[0];
    assert_eq!(tag.as_str(), Some("Square"));
    let inner = field(square, "inner");
    assert_eq!(inner.as_map().unwrap()[0].0.as_str(), Some("Circle"));
    // The recursive parent is an embedded map.
    assert_eq!(field(field(&wire, "parent"), "id"), &Value::from("leaf"));
    assert_eq!(
        field(field(&wire, "parent"), "maybeData"),
        &Value::Binary(vec![9])
    );
}

#[test]
fn missing_optional_fields_decode_as_none_and_unknown_keys_are_ignored() {
    let mut wire: Value = rmp_serde::from_slice(&a::serialize(&leaf()).unwrap()).unwrap();
    if let Value::Map(entries) = &mut wire {
        entries.retain(|(k, _)| {
            !matches!(
                k.as_str(),
                Some("maybeData" | "maybeCreated" | "opaque" | "shape" | "parent")
            )
        });
        entries.push((Value::from("addedLater"), Value::from(true)));
    }
    let bytes = rmp_serde::to_vec(&wire).unwrap();
    let decoded: a::Item = a::deserialize(&bytes).unwrap();
    assert_eq!(decoded.maybe_data, None);
    assert_eq!(decoded.maybe_created, None);
    assert_eq!(decoded.opaque, None);
    assert_eq!(decoded.id, "leaf");
    // A missing required field is an error naming it.
    if let Value::Map(entries) = &mut wire {
        entries.retain(|(k, _)| k.as_str() != Some("id"));
    }
    let err = a::deserialize::<a::Item>(&rmp_serde::to_vec(&wire).unwrap()).unwrap_err();
    assert!(err.to_string().contains("id"), "{err}");
}

#[test]
fn enums_encode_as_numbers_with_display_strings() {
    assert_eq!(a::serialize(&a::Color::Red).unwrap(), [0x00]);
    assert_eq!(a::serialize(&a::Color::LightGray).unwrap(), [0x0a]);
    assert_eq!(a::deserialize::<a::Color>(&[0x02]).unwrap(), a::Color::Blue);
    let err = a::deserialize::<a::Color>(&[0x07]).unwrap_err().to_string();
    assert!(
        err.contains("unknown Color value 7; expected one of: 0, 1, 2, 10"),
        "{err}"
    );
    assert_eq!(a::Color::Red.to_string(), "RED");
    assert_eq!(a::Color::Green.display(), "GREEN");
    assert_eq!(a::Color::Blue.display(), "Blue");
    assert_eq!(a::Color::from_index(10), Some(a::Color::LightGray));
    assert_eq!(a::Color::ALL.len(), 4);
    assert_eq!(a::Color::default(), a::Color::Red);
}

#[test]
fn union_members_are_tagged_by_widl_type_name() {
    let cases = [
        (a::Shape::String("x".into()), "string"),
        (a::Shape::ListOfI32(vec![1, 2]), "[i32]"),
        (a::Shape::Circle(a::Circle { radius: 0.5 }), "Circle"),
    ];
    for (shape, tag) in cases {
        let bytes = a::serialize(&shape).unwrap();
        let wire: Value = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(wire.as_map().unwrap().len(), 1);
        assert_eq!(wire.as_map().unwrap()[0].0.as_str(), Some(tag));
        assert_eq!(a::deserialize::<a::Shape>(&bytes).unwrap(), shape);
    }
}

#[test]
fn import_aliases_and_imported_types_are_generated() {
    let address: a::PostalAddress = a::Address {
        street: "Main St 1".into(),
        post_code: "12345".into(),
        country: None,
    };
    let order = a::Order {
        ship_to: Some(address),
        placed_at: Utc.with_ymd_and_hms(2024, 1, 2, 3, 4, 5).unwrap(),
        ..a::Order::default()
    };
    let bytes = a::serialize(&order).unwrap();
    let wire: Value = rmp_serde::from_slice(&bytes).unwrap();
    assert_eq!(
        field(field(&wire, "shipTo"), "postCode"),
        &Value::from("12345")
    );
    assert_eq!(
        field(&wire, "placedAt"),
        &Value::from("2024-01-02T03:04:05Z")
    );
    assert_eq!(a::deserialize::<a::Order>(&bytes).unwrap(), order);
}

fn transform(data: Vec<u8>) -> HandlerResult<Vec<u8>> {
    Ok(data.into_iter().rev().collect())
}

fn maybe_transform(data: Option<Vec<u8>>) -> HandlerResult<Option<Vec<u8>>> {
    Ok(data.map(|d| [d.as_slice(), b"!"].concat()))
}

fn notify(id: a::Id, at: chrono::DateTime<Utc>, tags: Option<a::Tags>) -> HandlerResult<()> {
    assert_eq!(id, "n-1");
    assert_eq!(at, Utc.with_ymd_and_hms(2021, 5, 17, 12, 0, 0).unwrap());
    assert_eq!(tags, Some(vec!["t".to_string()]));
    Ok(())
}

fn reset() -> HandlerResult<()> {
    Ok(())
}

fn sum(a: i8, b: i16, c: i32, d: i64, e: u8, f: u16, g: u32) -> HandlerResult<u64> {
    let signed = i64::from(a) + i64::from(b) + i64::from(c) + d;
    let unsigned = u64::from(e) + u64::from(f) + u64::from(g);
    Ok(unsigned.wrapping_add_signed(signed))
}

fn ping() -> HandlerResult<String> {
    Ok("pong".into())
}

#[test]
fn actor_handlers_cover_every_operation_form() {
    a::Handlers::register_transform(transform);
    a::Handlers::register_maybe_transform(maybe_transform);
    a::Handlers::register_notify(notify);
    a::Handlers::register_reset(reset);
    a::Handlers::register_sum(sum);
    a::Handlers::register_ping(ping);

    // Unary bytes: the payload and the reply are msgpack bin, not arrays.
    let reply = guest_call("Transform", &[0xc4, 0x03, 1, 2, 3]).unwrap();
    assert_eq!(reply, [0xc4, 0x03, 3, 2, 1]);
    let reply = guest_call("MaybeTransform", &[0xc4, 0x01, b'a']).unwrap();
    assert_eq!(reply, [0xc4, 0x02, b'a', b'!']);
    assert_eq!(guest_call("MaybeTransform", &[0xc0]).unwrap(), [0xc0]);
    // Function form, void result: nil.
    let args = a::NotifyArgs {
        id: "n-1".into(),
        at: Utc.with_ymd_and_hms(2021, 5, 17, 12, 0, 0).unwrap(),
        tags: Some(vec!["t".into()]),
    };
    assert_eq!(
        guest_call("Notify", &a::serialize(&args).unwrap()).unwrap(),
        [0xc0]
    );
    // No parameters: the payload is ignored (the published senders send it empty).
    assert_eq!(guest_call("Reset", b"").unwrap(), [0xc0]);
    assert_eq!(
        a::deserialize::<String>(&guest_call("Ping", b"").unwrap()).unwrap(),
        "pong"
    );
    let args = a::SumArgs {
        a: -1,
        b: -2,
        c: -3,
        d: 10,
        e: 1,
        f: 2,
        g: 3,
    };
    let reply = guest_call("Sum", &a::serialize(&args).unwrap()).unwrap();
    assert_eq!(a::deserialize::<u64>(&reply).unwrap(), 10);
    // Unregistered operations of the interface are the SDK's unknown operation.
    assert_eq!(
        guest_call("Echo", b""),
        Err("unknown operation: Echo".to_string())
    );
}

#[test]
fn actor_host_senders_cover_every_operation_form() {
    let calls = recording_host(|call| {
        Ok(match call.operation.as_str() {
            "Ping" => a::serialize("pong").unwrap(),
            "Stats" => a::serialize(&HashMap::from([("hits".to_string(), 2.5)])).unwrap(),
            "Lookup" => vec![0xc0],
            "Put" => a::serialize("new-id").unwrap(),
            // A void reply may be empty or nil; both are accepted.
            "Remove" => Vec::new(),
            "Paint" => a::serialize(&a::Color::Blue).unwrap(),
            "Find" => a::serialize(&vec![a::Shape::String("s".into())]).unwrap(),
            "Echo" => a::serialize("echo").unwrap(),
            other => return Err(format!("unexpected {other}")),
        })
    });
    let host = a::host("inventory");
    assert_eq!(host.ping().unwrap(), "pong");
    assert_eq!(host.echo("hi".into()).unwrap(), "echo");
    assert_eq!(host.stats().unwrap()["hits"], 2.5);
    assert_eq!(host.lookup("x".into(), vec!["name".into()]).unwrap(), None);
    assert_eq!(host.put(leaf()).unwrap(), "new-id");
    host.remove("x".into()).unwrap();
    assert_eq!(host.paint(a::Color::Green).unwrap(), a::Color::Blue);
    assert_eq!(
        host.find(a::Shape::ListOfI32(vec![1]), 5).unwrap(),
        [a::Shape::String("s".into())]
    );

    let calls = calls.borrow();
    let ops: Vec<&str> = calls.iter().map(|c| c.operation.as_str()).collect();
    assert_eq!(
        ops,
        [
            "Ping", "Echo", "Stats", "Lookup", "Put", "Remove", "Paint", "Find"
        ]
    );
    assert!(
        calls
            .iter()
            .all(|c| c.binding == "inventory" && c.namespace == "example:kitchen")
    );
    // Zero parameters: empty payload. Unary: the value itself. Function form: the args map.
    assert!(calls[0].payload.is_empty());
    assert_eq!(calls[1].payload, a::serialize("hi").unwrap());
    assert_eq!(
        calls[3].payload,
        a::serialize(&a::LookupArgs {
            id: "x".into(),
            fields: vec!["name".into()]
        })
        .unwrap()
    );
    assert_eq!(calls[4].payload, a::serialize(&leaf()).unwrap());
    assert_eq!(calls[6].payload, [0x01]);
    drop(calls);
    clear_host();
}

/// A provider implementing both provider-side blocks of the kitchen sink.
#[derive(Default)]
struct Inventory {
    items: Mutex<HashMap<String, p::Item>>,
}

impl p::Inventory for Inventory {
    async fn lookup(
        &self,
        _: &CallContext,
        args: p::LookupArgs,
    ) -> Result<Option<p::Item>, ProviderError> {
        Ok(self.items.lock().unwrap().get(&args.id).cloned())
    }

    async fn put(&self, _: &CallContext, item: p::Item) -> Result<p::Id, ProviderError> {
        let id = item.id.clone();
        self.items.lock().unwrap().insert(id.clone(), item);
        Ok(id)
    }

    async fn stats(&self, _: &CallContext) -> Result<HashMap<String, f64>, ProviderError> {
        Ok(HashMap::from([(
            "items".to_string(),
            self.items.lock().unwrap().len() as f64,
        )]))
    }

    async fn remove(&self, _: &CallContext, args: p::RemoveArgs) -> Result<(), ProviderError> {
        self.items.lock().unwrap().remove(&args.id);
        Ok(())
    }

    async fn paint(&self, _: &CallContext, color: p::Color) -> Result<p::Color, ProviderError> {
        Ok(match color {
            p::Color::Red => p::Color::Green,
            _ => p::Color::Red,
        })
    }

    async fn find(
        &self,
        _: &CallContext,
        args: p::FindArgs,
    ) -> Result<Vec<p::Shape>, ProviderError> {
        Ok(vec![args.shape; args.limit as usize])
    }
}

impl p::Interface for Inventory {
    async fn ping(&self, _: &CallContext) -> Result<String, ProviderError> {
        Ok("pong".into())
    }

    async fn echo(&self, _: &CallContext, msg: String) -> Result<String, ProviderError> {
        Ok(msg)
    }
}

#[tokio::test]
async fn provider_dispatchers_cover_every_operation_form() {
    let inv = Inventory::default();
    let ctx = CallContext {
        actor_id: "MACTOR".into(),
        link_name: "default".into(),
    };
    // The actor side's encoding of an Item is what the provider side decodes.
    let put = p::dispatch_inventory(&inv, &ctx, "Put", &a::serialize(&item()).unwrap())
        .await
        .unwrap();
    assert_eq!(a::deserialize::<String>(&put).unwrap(), "item-1");
    let args = a::serialize(&a::LookupArgs {
        id: "item-1".into(),
        fields: Vec::new(),
    })
    .unwrap();
    let found = p::dispatch_inventory(&inv, &ctx, "Lookup", &args)
        .await
        .unwrap();
    assert_eq!(
        a::deserialize::<Option<a::Item>>(&found).unwrap(),
        Some(item())
    );
    let stats = p::dispatch_inventory(&inv, &ctx, "Stats", b"")
        .await
        .unwrap();
    assert_eq!(
        a::deserialize::<HashMap<String, f64>>(&stats).unwrap()["items"],
        1.0
    );
    let removed = p::dispatch_inventory(
        &inv,
        &ctx,
        "Remove",
        &a::serialize(&a::RemoveArgs {
            id: "item-1".into(),
        })
        .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(removed, [0xc0]);
    let missing = p::dispatch_inventory(&inv, &ctx, "Lookup", &args)
        .await
        .unwrap();
    assert_eq!(missing, [0xc0]);
    assert_eq!(
        p::dispatch_inventory(&inv, &ctx, "Paint", &[0x00])
            .await
            .unwrap(),
        [0x01]
    );
    assert!(matches!(
        p::dispatch_inventory(&inv, &ctx, "Paint", &[0x05]).await,
        Err(ProviderError::BadPayload { operation, .. }) if operation == "Paint"
    ));
    let find = a::serialize(&a::FindArgs {
        shape: a::Shape::Circle(a::Circle { radius: 1.0 }),
        limit: 2,
    })
    .unwrap();
    let shapes = p::dispatch_inventory(&inv, &ctx, "Find", &find)
        .await
        .unwrap();
    assert_eq!(a::deserialize::<Vec<a::Shape>>(&shapes).unwrap().len(), 2);
    // The interface block has its own dispatcher; roles do not see each other's operations.
    assert_eq!(
        a::deserialize::<String>(
            &p::dispatch_interface(&inv, &ctx, "Ping", b"")
                .await
                .unwrap()
        )
        .unwrap(),
        "pong"
    );
    assert!(matches!(
        p::dispatch_interface(&inv, &ctx, "Put", b"").await,
        Err(ProviderError::UnknownOperation { contract_id, .. }) if contract_id == "example:kitchen"
    ));
}

struct Echoing {
    seen: Mutex<Vec<(String, Vec<u8>)>>,
}

#[async_trait]
impl ActorCaller for Echoing {
    async fn call_actor(
        &self,
        _: &str,
        operation: &str,
        payload: Vec<u8>,
    ) -> Result<Vec<u8>, ProviderError> {
        self.seen
            .lock()
            .unwrap()
            .push((operation.into(), payload.clone()));
        Ok(match operation {
            "Reset" | "Notify" => Vec::new(),
            "Sum" => a::serialize(&42u64).unwrap(),
            _ => payload,
        })
    }
}

#[tokio::test]
async fn provider_actor_client_covers_every_operation_form() {
    let actors = Echoing {
        seen: Mutex::new(Vec::new()),
    };
    let client = p::ActorClient::new(&actors, "MACTOR");
    assert_eq!(client.transform(vec![7, 8]).await.unwrap(), [7, 8]);
    assert_eq!(client.maybe_transform(None).await.unwrap(), None);
    client.reset().await.unwrap();
    client
        .notify(
            "n".into(),
            Utc.with_ymd_and_hms(2021, 1, 1, 0, 0, 0).unwrap(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(client.sum(1, 2, 3, 4, 5, 6, 7).await.unwrap(), 42);
    let seen = actors.seen.lock().unwrap();
    assert_eq!(seen[0], ("Transform".to_string(), vec![0xc4, 0x02, 7, 8]));
    assert_eq!(seen[1], ("MaybeTransform".to_string(), vec![0xc0]));
    assert_eq!(seen[2], ("Reset".to_string(), Vec::new()));
    assert_eq!(seen[3].0, "Notify");
}
