//! Native tests of the owners actor over the in-memory key-value store, with a small fake
//! of the visits actor behind its call alias.

use std::cell::RefCell;
use std::rc::Rc;

use nimbus_actor::{HostCall, HostError};
use petclinic_model::call::reply;
use petclinic_model::codec::{decode_json, encode, encode_json};
use petclinic_model::error::{ServiceError, ServiceResult};
use petclinic_model::ops::{self, VISITS_ALIAS, owners as op, visits as visits_op};
use petclinic_model::serde_json;
use petclinic_model::testing::TestHost;
use petclinic_model::types::{Owner, OwnerFields, Pet, PetFields, PetType, Visit};

use crate::service::{OWNER_IDS, PET_TYPES, SEEDED, last_name_key, owner_key, pet_key};
use crate::{Owners, dispatch, seed};

/// A host whose `petclinic/visits` stores visits in memory; the visits are shared with the
/// test.
fn host_with_visits() -> (TestHost, Rc<RefCell<Vec<Visit>>>) {
    let host = TestHost::new();
    let visits: Rc<RefCell<Vec<Visit>>> = Rc::default();
    let store = visits.clone();
    host.route(VISITS_ALIAS, move |operation, payload| match operation {
        visits_op::ADD_VISIT => {
            let r: ops::AddVisitRequest = decode_json("AddVisit", payload)?;
            let mut all = store.borrow_mut();
            let visit = Visit {
                id: u32::try_from(all.len()).map_err(|e| e.to_string())? + 1,
                pet_id: r.pet_id,
                date: r.visit.date,
                description: r.visit.description,
            };
            all.push(visit.clone());
            reply(&Ok::<_, ServiceError>(visit))
        }
        visits_op::LIST_VISITS => {
            let r: ops::ListVisitsRequest = decode_json("ListVisits", payload)?;
            let found: Vec<Visit> = store
                .borrow()
                .iter()
                .filter(|v| r.pet_ids.contains(&v.pet_id))
                .cloned()
                .collect();
            reply(&Ok::<_, ServiceError>(found))
        }
        other => Err(format!("unknown operation: {other}")),
    });
    (host, visits)
}

/// A host with the pet types stored (as seeding would) but no owners.
fn host_with_types() -> TestHost {
    let (host, _) = host_with_visits();
    host.kv.put(
        PET_TYPES,
        &serde_json::to_string(&seed::pet_types()).unwrap(),
    );
    host
}

fn fields(first: &str, last: &str) -> OwnerFields {
    OwnerFields {
        first_name: first.into(),
        last_name: last.into(),
        address: "1 Main St.".into(),
        city: "Springfield".into(),
        telephone: "5551234".into(),
    }
}

fn pet(name: &str, type_id: u32) -> PetFields {
    PetFields {
        name: name.into(),
        birth_date: "2020-02-02".into(),
        type_id,
    }
}

fn last_names(owners: &[Owner]) -> Vec<&str> {
    owners.iter().map(|o| o.last_name.as_str()).collect()
}

#[test]
fn seeding_writes_the_classic_data_once() {
    let (host, visits) = host_with_visits();
    let owners = Owners::new(&host);
    assert!(owners.ensure_seeded().unwrap());
    let all = owners.list_owners(None).unwrap();
    assert_eq!(all.len(), seed::OWNERS.len());
    assert_eq!(all[0].first_name, "George");
    assert_eq!(all[0].id, 1);
    let pets: usize = all.iter().map(|o| o.pets.len()).sum();
    assert_eq!(pets, 13);
    assert_eq!(owners.pet_types().unwrap().len(), 6);
    assert_eq!(visits.borrow().len(), 4);

    // A second instance (or a second call) sees the gate and writes nothing.
    let before = host.kv.snapshot();
    assert!(!owners.ensure_seeded().unwrap());
    assert!(!Owners::new(&host).ensure_seeded().unwrap());
    assert_eq!(host.kv.snapshot(), before);
    assert_eq!(visits.borrow().len(), 4);
}

/// A host whose `KeyExists` always answers "no", as it did for two instances that both
/// checked the gate before either incremented it.
struct BlindGate(TestHost);

impl HostCall for BlindGate {
    fn host_call(&self, b: &str, ns: &str, op: &str, p: &[u8]) -> Result<Vec<u8>, HostError> {
        if op == "KeyExists" {
            return encode(&petclinic_model::wire::GetResponse::default()).map_err(HostError::new);
        }
        self.0.host_call(b, ns, op, p)
    }
    fn console_log(&self, msg: &str) {
        self.0.console_log(msg);
    }
}

#[test]
fn only_the_instance_that_wins_the_gate_seeds() {
    let (host, _) = host_with_visits();
    let racing = BlindGate(host);
    // Both instances saw no gate; the other one's Add got there first.
    racing.0.kv.put(SEEDED, "1");
    assert!(!Owners::new(&racing).ensure_seeded().unwrap());
    assert!(racing.0.kv.members(OWNER_IDS).is_empty());
    assert_eq!(racing.0.kv.value(SEEDED).as_deref(), Some("2"));
    // With a fresh store the same instance wins the gate and seeds.
    let (host, _) = host_with_visits();
    let racing = BlindGate(host);
    assert!(Owners::new(&racing).ensure_seeded().unwrap());
    assert_eq!(racing.0.kv.members(OWNER_IDS).len(), seed::OWNERS.len());
}

#[test]
fn seeding_survives_a_missing_visits_actor() {
    let host = TestHost::new(); // no petclinic/visits
    assert!(Owners::new(&host).ensure_seeded().unwrap());
    assert_eq!(host.kv.members(OWNER_IDS).len(), seed::OWNERS.len());
    let logs = host.logs();
    assert_eq!(
        logs.iter()
            .filter(|l| l.contains("seed visit") && l.contains("not stored"))
            .count(),
        4,
        "{logs:?}"
    );
}

#[test]
fn dispatch_checks_the_seed_gate_on_every_call_and_seeds_a_new_store() {
    let (host, _) = host_with_visits();
    let req = encode_json(&ops::ListOwnersRequest::default()).unwrap();
    let list = |host: &TestHost| {
        let reply = dispatch(host, op::LIST_OWNERS, &req).unwrap();
        let owners: ServiceResult<Vec<Owner>> = decode_json("reply", &reply).unwrap();
        owners.unwrap()
    };
    assert_eq!(list(&host).len(), seed::OWNERS.len());

    // Later calls of the same instance look at the gate (one KeyExists) and write nothing.
    host.take_calls();
    let before = host.kv.snapshot();
    dispatch(&host, op::LIST_PET_TYPES, &[]).unwrap();
    let gate_checks = host
        .calls()
        .iter()
        .filter(|c| c.operation == "KeyExists")
        .count();
    assert_eq!(gate_checks, 1, "{:?}", host.calls());
    assert_eq!(host.kv.snapshot(), before);

    // The link now points at an empty store (another backend): the same instance seeds it.
    host.kv.clear();
    assert_eq!(list(&host).len(), seed::OWNERS.len());
    assert_eq!(host.kv.value(crate::service::SEEDED).as_deref(), Some("1"));
}

#[test]
fn dispatch_reports_a_store_outage_and_seeds_later() {
    let (host, _) = host_with_visits();
    host.set_kv_down(true);
    let reply = dispatch(&host, op::LIST_PET_TYPES, b"{}").unwrap();
    let r: ServiceResult<Vec<PetType>> = decode_json("reply", &reply).unwrap();
    assert_eq!(r.unwrap_err().status(), 503);

    host.set_kv_down(false);
    let reply = dispatch(&host, op::LIST_PET_TYPES, b"{}").unwrap();
    let r: ServiceResult<Vec<PetType>> = decode_json("reply", &reply).unwrap();
    let names: Vec<String> = r.unwrap().into_iter().map(|t| t.name).collect();
    assert_eq!(names, ["bird", "cat", "dog", "hamster", "lizard", "snake"]);
}

#[test]
fn dispatch_rejects_unknown_operations_and_garbage() {
    let host = TestHost::new();
    let err = dispatch(&host, "DropTables", &[]).unwrap_err();
    assert_eq!(err, "unknown operation: DropTables");
    assert!(host.calls().is_empty(), "an unknown op touches nothing");
    let err = dispatch(&host, op::GET_OWNER, &[0xc1]).unwrap_err();
    assert!(err.starts_with("cannot decode GetOwner"), "{err}");
}

#[test]
fn ids_come_from_the_counter_and_are_unique() {
    let host = host_with_types();
    let owners = Owners::new(&host);
    let a = owners.create_owner(fields("Ann", "Lee")).unwrap();
    let b = owners.create_owner(fields("Bob", "Lee")).unwrap();
    assert_eq!((a.id, b.id), (1, 2));
    // Another instance allocated ids meanwhile: we continue after them.
    host.kv.put("petclinic:owners:seq:owner", "41");
    assert_eq!(owners.create_owner(fields("C", "D")).unwrap().id, 42);
    let p1 = owners.add_pet(a.id, pet("Rex", 2)).unwrap();
    let p2 = owners.add_pet(b.id, pet("Rex", 2)).unwrap();
    assert_ne!(p1.id, p2.id);
}

#[test]
fn create_and_read_an_owner() {
    let host = host_with_types();
    let owners = Owners::new(&host);
    let created = owners
        .create_owner(OwnerFields {
            first_name: "  Ann ".into(),
            ..fields("x", "Lee")
        })
        .unwrap();
    assert_eq!(created.first_name, "Ann");
    assert!(created.pets.is_empty());
    let read = owners.get_owner(created.id).unwrap();
    assert_eq!(read, created);
    let stored: serde_json::Value =
        serde_json::from_str(&host.kv.value(&owner_key(created.id)).unwrap()).unwrap();
    assert_eq!(stored["lastName"], "Lee");
    assert!(stored.get("pets").is_none(), "pets are stored apart");
}

#[test]
fn invalid_input_stores_nothing() {
    let host = host_with_types();
    let owners = Owners::new(&host);
    let ann = owners.create_owner(fields("Ann", "Lee")).unwrap();
    let before = host.kv.snapshot();
    let bad = OwnerFields {
        telephone: "12-34".into(),
        ..fields("A", "B")
    };
    let e = owners.create_owner(bad.clone()).unwrap_err();
    assert_eq!(e.field(), Some("telephone"));
    assert_eq!(
        owners.update_owner(ann.id, bad).unwrap_err().field(),
        Some("telephone")
    );
    assert_eq!(
        owners.add_pet(ann.id, pet("", 1)).unwrap_err().field(),
        Some("name")
    );
    assert_eq!(
        owners.add_pet(ann.id, pet("Rex", 99)).unwrap_err().field(),
        Some("type")
    );
    let e = owners
        .create_owner(OwnerFields {
            first_name: "".into(),
            last_name: " ".into(),
            telephone: "12-34".into(),
            ..fields("A", "B")
        })
        .unwrap_err();
    assert_eq!(
        fields_of(&e),
        ["firstName", "lastName", "telephone"],
        "every invalid field, in schema order"
    );
    assert_eq!(host.kv.snapshot(), before);
}

/// The fields of every broken rule of a 400, in order.
fn fields_of(e: &ServiceError) -> Vec<String> {
    assert_eq!(e.status(), 400, "{e}");
    e.field_errors()
        .into_iter()
        .map(|f| f.field.unwrap_or_default())
        .collect()
}

#[test]
fn a_taken_name_and_an_unknown_type_are_reported_together() {
    let host = host_with_types();
    let owners = Owners::new(&host);
    let ann = owners.create_owner(fields("Ann", "Lee")).unwrap();
    let rex = owners.add_pet(ann.id, pet("Rex", 1)).unwrap();
    let tom = owners.add_pet(ann.id, pet("Tom", 1)).unwrap();
    let before = host.kv.snapshot();
    // The type first, as when only the first error was reported.
    let e = owners.add_pet(ann.id, pet("REX", 99)).unwrap_err();
    assert_eq!(fields_of(&e), ["type", "name"]);
    assert_eq!(e.field(), Some("type"));
    assert_eq!(e.message(), "pet type 99 does not exist");
    assert_eq!(
        e.field_errors()[1].message,
        format!("owner {} already has a pet named REX", ann.id)
    );
    let e = owners
        .update_pet(ann.id, tom.id, pet("rex", 99))
        .unwrap_err();
    assert_eq!(fields_of(&e), ["type", "name"]);
    // One of them alone is one entry.
    let e = owners
        .update_pet(ann.id, rex.id, pet("Rex", 99))
        .unwrap_err();
    assert_eq!(fields_of(&e), ["type"]);
    // A bad type is still reported before an unknown owner or pet.
    let e = owners.add_pet(ann.id + 100, pet("Rex", 99)).unwrap_err();
    assert_eq!(fields_of(&e), ["type"]);
    let e = owners
        .update_pet(ann.id, rex.id + 100, pet("Rex", 99))
        .unwrap_err();
    assert_eq!(fields_of(&e), ["type"]);
    assert_eq!(
        owners
            .add_pet(ann.id + 100, pet("Rex", 1))
            .unwrap_err()
            .status(),
        404
    );
    assert_eq!(host.kv.snapshot(), before);
}

#[test]
fn unknown_ids_are_404() {
    let host = host_with_types();
    let owners = Owners::new(&host);
    let ann = owners.create_owner(fields("Ann", "Lee")).unwrap();
    let rex = owners.add_pet(ann.id, pet("Rex", 2)).unwrap();
    let bob = owners.create_owner(fields("Bob", "Ray")).unwrap();
    let before = host.kv.snapshot();

    let e = owners.get_owner(99).unwrap_err();
    assert_eq!((e.status(), e.message()), (404, "owner 99 not found"));
    assert_eq!(
        owners
            .update_owner(99, fields("A", "B"))
            .unwrap_err()
            .status(),
        404
    );
    assert_eq!(owners.add_pet(99, pet("Rex", 2)).unwrap_err().status(), 404);
    let e = owners.get_pet(99, rex.id).unwrap_err();
    assert_eq!(e.message(), "owner 99 not found");
    let e = owners.get_pet(ann.id, 77).unwrap_err();
    assert_eq!(
        e.message(),
        format!("pet 77 not found for owner {}", ann.id)
    );
    // A pet is only reachable through its own owner.
    let e = owners.get_pet(bob.id, rex.id).unwrap_err();
    assert_eq!(e.status(), 404);
    let e = owners
        .update_pet(bob.id, rex.id, pet("Stolen", 2))
        .unwrap_err();
    assert_eq!(e.status(), 404);
    assert_eq!(host.kv.snapshot(), before);
}

#[test]
fn search_by_last_name_prefix() {
    let (host, _) = host_with_visits();
    let owners = Owners::new(&host);
    owners.ensure_seeded().unwrap();
    let davis = owners.list_owners(Some("Davis")).unwrap();
    assert_eq!(last_names(&davis), ["Davis", "Davis"]);
    assert_eq!(
        davis
            .iter()
            .map(|o| o.first_name.as_str())
            .collect::<Vec<_>>(),
        ["Betty", "Harold"]
    );
    assert_eq!(owners.list_owners(Some("da")).unwrap().len(), 2);
    assert_eq!(owners.list_owners(Some("  DAV ")).unwrap().len(), 2);
    assert_eq!(
        last_names(&owners.list_owners(Some("Es")).unwrap()),
        ["Escobito", "Estaban"]
    );
    assert!(owners.list_owners(Some("Zz")).unwrap().is_empty());
    assert_eq!(
        owners.list_owners(Some("")).unwrap().len(),
        seed::OWNERS.len()
    );
    // Lists show pets without visits.
    let coleman = owners.list_owners(Some("coleman")).unwrap();
    assert_eq!(coleman[0].pets.len(), 2);
    assert!(coleman[0].pets.iter().all(|p| p.visits.is_none()));
}

#[test]
fn search_follows_renames_and_ignores_stale_index_entries() {
    let host = host_with_types();
    let owners = Owners::new(&host);
    let ann = owners.create_owner(fields("Ann", "Lee")).unwrap();
    owners.update_owner(ann.id, fields("Ann", "Ngo")).unwrap();
    assert!(owners.list_owners(Some("lee")).unwrap().is_empty());
    assert_eq!(
        last_names(&owners.list_owners(Some("ng")).unwrap()),
        ["Ngo"]
    );
    assert!(
        !host
            .kv
            .members(&last_name_key("lee"))
            .contains(&ann.id.to_string())
    );

    // A stale entry (as a concurrent rename could leave) and a dangling id are skipped.
    host.kv
        .handle(
            "SetAdd",
            &encode(&petclinic_model::wire::SetAddArgs {
                key: last_name_key("lee"),
                value: ann.id.to_string(),
            })
            .unwrap(),
        )
        .unwrap();
    host.kv
        .handle(
            "SetAdd",
            &encode(&petclinic_model::wire::SetAddArgs {
                key: OWNER_IDS.into(),
                value: "999".into(),
            })
            .unwrap(),
        )
        .unwrap();
    assert!(owners.list_owners(Some("lee")).unwrap().is_empty());
    assert_eq!(owners.list_owners(None).unwrap().len(), 1);
}

#[test]
fn pets_are_added_updated_and_shown_with_visits() {
    let (host, visits) = host_with_visits();
    host.kv.put(
        PET_TYPES,
        &serde_json::to_string(&seed::pet_types()).unwrap(),
    );
    let owners = Owners::new(&host);
    let ann = owners.create_owner(fields("Ann", "Lee")).unwrap();
    let rex = owners.add_pet(ann.id, pet("Rex", 2)).unwrap();
    assert_eq!(
        rex.pet_type,
        PetType {
            id: 2,
            name: "dog".into()
        }
    );
    assert_eq!(rex.owner_id, ann.id);
    let tom = owners.add_pet(ann.id, pet("Tom", 1)).unwrap();

    // Names are unique per owner, case-insensitively.
    let e = owners.add_pet(ann.id, pet("rex", 1)).unwrap_err();
    assert_eq!((e.status(), e.field()), (400, Some("name")));
    let e = owners
        .update_pet(ann.id, tom.id, pet("REX", 1))
        .unwrap_err();
    assert_eq!(e.field(), Some("name"));
    // Keeping one's own name is fine.
    let updated = owners
        .update_pet(
            ann.id,
            rex.id,
            PetFields {
                birth_date: "2019-01-01".into(),
                ..pet("Rex", 3)
            },
        )
        .unwrap();
    assert_eq!(updated.birth_date, "2019-01-01");
    assert_eq!(updated.pet_type.name, "lizard");
    assert_eq!(owners.get_pet(ann.id, rex.id).unwrap(), updated);

    visits.borrow_mut().push(Visit {
        id: 1,
        pet_id: tom.id,
        date: "2024-01-01".into(),
        description: "checkup".into(),
    });
    let read = owners.get_owner(ann.id).unwrap();
    let names: Vec<&str> = read.pets.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["Rex", "Tom"]);
    let pets: Vec<&Pet> = read.pets.iter().collect();
    assert_eq!(pets[0].visits.as_deref(), Some(&[][..]));
    assert_eq!(pets[1].visits.as_ref().unwrap()[0].description, "checkup");
    // Stored pet documents keep the type by id.
    let stored: serde_json::Value =
        serde_json::from_str(&host.kv.value(&pet_key(rex.id)).unwrap()).unwrap();
    assert_eq!(stored["typeId"], 3);
}

#[test]
fn updating_an_owner_keeps_the_pets() {
    let host = host_with_types();
    let owners = Owners::new(&host);
    let ann = owners.create_owner(fields("Ann", "Lee")).unwrap();
    owners.add_pet(ann.id, pet("Rex", 2)).unwrap();
    let updated = owners
        .update_owner(
            ann.id,
            OwnerFields {
                city: "Shelbyville".into(),
                ..fields("Ann", "Lee")
            },
        )
        .unwrap();
    assert_eq!(updated.city, "Shelbyville");
    assert_eq!(updated.pets.len(), 1);
    assert_eq!(updated.pets[0].visits.as_deref(), Some(&[][..]));
}

#[test]
fn an_unreachable_visits_actor_makes_owner_details_unavailable() {
    let host = host_with_types(); // routes petclinic/visits
    let owners = Owners::new(&host);
    let ann = owners.create_owner(fields("Ann", "Lee")).unwrap();
    // No pets: the visits actor is not needed.
    let bare = TestHost::new();
    bare.kv.put(
        &owner_key(ann.id),
        &host.kv.value(&owner_key(ann.id)).unwrap(),
    );
    assert!(Owners::new(&bare).get_owner(ann.id).is_ok());
    bare.kv.put(
        &pet_key(5),
        r#"{"id":5,"ownerId":1,"name":"Rex","birthDate":"2020-01-01","typeId":2}"#,
    );
    bare.kv
        .handle(
            "SetAdd",
            &encode(&petclinic_model::wire::SetAddArgs {
                key: crate::service::owner_pets_key(ann.id),
                value: "5".into(),
            })
            .unwrap(),
        )
        .unwrap();
    let e = Owners::new(&bare).get_owner(ann.id).unwrap_err();
    assert_eq!(e.status(), 503);
    assert!(e.message().contains("petclinic/visits"), "{e}");
}

#[test]
fn corrupt_documents_are_internal_errors_not_crashes() {
    let host = host_with_types();
    host.kv.put(&owner_key(1), "{\"id\": 1, \"firstName\": ");
    let e = Owners::new(&host).get_owner(1).unwrap_err();
    assert_eq!(e.status(), 500);
}

#[test]
fn reads_of_many_documents_are_batched_and_a_0x_store_gives_the_same_answers() {
    let (host, _) = host_with_visits();
    let owners = Owners::new(&host);
    assert!(owners.ensure_seeded().unwrap());
    let davis = owners.list_owners(Some("davis")).unwrap();
    assert_eq!(last_names(&davis), ["Davis", "Davis"]);
    let pets: usize = davis.iter().map(|o| o.pets.len()).sum();
    assert!(pets >= 2, "{davis:?}");

    // The search: the name index, the matching names' sets, the pet types and both owners
    // in one read, both owners' pet sets in one read, all their pets in one read.
    let ops = |host: &TestHost| -> Vec<String> {
        host.take_calls().into_iter().map(|c| c.operation).collect()
    };
    host.take_calls();
    owners.list_owners(Some("davis")).unwrap();
    assert_eq!(
        ops(&host),
        ["SetQuery", "SetUnion", "GetMany", "SetUnion", "GetMany"]
    );
    // One owner with pets: owner and types in one read, the pet set, the pets.
    let owner = owners.get_owner(davis[1].id).unwrap();
    let calls = ops(&host);
    assert_eq!(calls[..3], ["GetMany", "SetUnion", "GetMany"]);
    let all = owners.list_owners(None).unwrap();
    assert_eq!(
        ops(&host),
        ["SetQuery", "GetMany", "SetUnion", "GetMany"],
        "every owner, every pet set and every pet in one read each"
    );

    // A provider without the batched operations: the same answers, from single Gets.
    host.kv.set_batches(false);
    assert_eq!(owners.list_owners(Some("davis")).unwrap(), davis);
    assert_eq!(owners.get_owner(davis[1].id).unwrap(), owner);
    assert_eq!(owners.list_owners(None).unwrap(), all);
    assert!(ops(&host).iter().any(|op| op == "Get"));
    let e = owners.get_owner(99).unwrap_err();
    assert_eq!((e.status(), e.message()), (404, "owner 99 not found"));
}

#[test]
fn a_search_reads_the_same_few_times_for_thousands_of_owners() {
    let host = host_with_types();
    let owners = Owners::new(&host);
    // More than two batches of owners, a few with pets (first, middle, last).
    let n = 2 * petclinic_model::wire::batch::MAX_BATCH + 5;
    let made: Vec<Owner> = (0..n)
        .map(|i| {
            owners
                .create_owner(fields(&format!("Bulk{i}"), "Bulkowner"))
                .unwrap()
        })
        .collect();
    for (i, name) in [(0, "First"), (n / 2, "Middle"), (n - 1, "Last")] {
        owners.add_pet(made[i].id, pet(name, 1)).unwrap();
        owners.add_pet(made[i].id, pet("Also", 2)).unwrap();
    }
    // A pet in an owner's set whose document names another owner is not that owner's.
    host.kv
        .handle(
            "SetAdd",
            &encode(&petclinic_model::wire::SetAddArgs {
                key: crate::service::owner_pets_key(made[1].id),
                value: "1".into(),
            })
            .unwrap(),
        )
        .unwrap();
    host.take_calls();
    let found = owners.list_owners(Some("bulk")).unwrap();
    let ops: Vec<String> = host.take_calls().into_iter().map(|c| c.operation).collect();
    assert_eq!(found.len(), n);
    // The name index, the name's set; then per batch of 1,000: owner documents (with the
    // pet types), pet sets; then the six pets.
    let count = |op: &str| ops.iter().filter(|o| *o == op).count();
    assert_eq!(count("SetQuery"), 1, "{ops:?}");
    assert_eq!(count("SetUnion"), 1 + 3, "{ops:?}");
    assert_eq!(count("GetMany"), 3 + 1, "{ops:?}");
    assert_eq!(ops.len(), 9, "{ops:?}");
    for (owner, made) in found.iter().zip(&made) {
        assert_eq!(owner.id, made.id);
        let pets: Vec<&str> = owner.pets.iter().map(|p| p.name.as_str()).collect();
        let expected: &[&str] = match made.first_name.as_str() {
            "Bulk0" => &["Also", "First"],
            f if f == format!("Bulk{}", n / 2) => &["Also", "Middle"],
            f if f == format!("Bulk{}", n - 1) => &["Also", "Last"],
            _ => &[],
        };
        assert_eq!(pets, expected, "pets of {}", made.first_name);
    }
}
