//! `petclinic-visits`: the visits actor of the petclinic demo. It keeps the visits of pets
//! in the `wasmcloud:keyvalue` capability (link name `default`) and calls no other actor:
//! callers check that a pet exists first (the gateway asks the owners actor), and the
//! owners actor asks it for the visits of an owner's pets.
//!
//! Operations: see [`petclinic_model::ops::visits`]. Every reply is a JSON
//! `Result<T, ServiceError>`; a waPC error means the request itself was unreadable.
//!
//! Key-value layout (values are JSON documents, sets hold decimal ids):
//!
//! | key | kind | content |
//! |---|---|---|
//! | `petclinic:visits:seq` | counter | id allocation (`Add` 1) |
//! | `petclinic:visits:visit:{id}` | JSON | `Visit` |
//! | `petclinic:visits:pet:{petId}` | set | the pet's visit ids |
//!
//! There is no seed of its own: the owners actor adds the seed visits when it seeds.

use nimbus_actor::HostCall;
use petclinic_model::call::reply;
use petclinic_model::codec::decode_json;
use petclinic_model::error::{ServiceError, ServiceResult, both};
use petclinic_model::kv::Kv;
use petclinic_model::ops::{self, MAX_PET_IDS, visits as op};
use petclinic_model::types::{Id, Visit, VisitFields};

const SEQ: &str = "petclinic:visits:seq";

fn visit_key(id: Id) -> String {
    format!("petclinic:visits:visit:{id}")
}

fn pet_visits_key(pet_id: Id) -> String {
    format!("petclinic:visits:pet:{pet_id}")
}

/// The visits service over one host.
pub struct Visits<'h, H: HostCall + ?Sized> {
    kv: Kv<'h, H>,
}

impl<'h, H: HostCall + ?Sized> Visits<'h, H> {
    /// The service, storing through `host`'s key-value link.
    pub fn new(host: &'h H) -> Self {
        Visits { kv: Kv::new(host) }
    }

    /// Stores a visit of pet `pet_id`; a 400 lists every invalid field, then `petId`.
    pub fn add_visit(&self, pet_id: Id, fields: VisitFields) -> ServiceResult<Visit> {
        let pet_check = if pet_id == 0 || pet_id > i32::MAX as u32 {
            Err(ServiceError::invalid(
                "petId",
                "petId must be a positive integer",
            ))
        } else {
            Ok(())
        };
        let (fields, ()) = both(fields.validated(), pet_check)?;
        let id = self.kv.next_id(SEQ)?;
        let visit = Visit {
            id,
            pet_id,
            date: fields.date,
            description: fields.description,
        };
        // The document first, then the set that makes it visible.
        self.kv.set_json(&visit_key(id), &visit)?;
        self.kv.set_add(&pet_visits_key(pet_id), &id.to_string())?;
        Ok(visit)
    }

    /// The visits of the given pets, by date then id. A visit counts for a pet if it is in
    /// the pet's set and its document names the pet.
    pub fn list_visits(&self, pet_ids: &[Id]) -> ServiceResult<Vec<Visit>> {
        if pet_ids.len() > MAX_PET_IDS {
            return Err(ServiceError::invalid(
                "petIds",
                format!("at most {MAX_PET_IDS} pets per request"),
            ));
        }
        let mut pets = pet_ids.to_vec();
        pets.sort_unstable();
        pets.dedup();
        // One set read per pet, then every visit document in one batched read.
        let mut wanted: Vec<(Id, Id)> = Vec::new();
        for pet_id in pets {
            for id in self.kv.id_set(&pet_visits_key(pet_id))? {
                wanted.push((pet_id, id));
            }
        }
        let keys: Vec<String> = wanted.iter().map(|(_, id)| visit_key(*id)).collect();
        let documents = self.kv.get_json_many::<Visit>(&keys)?;
        let mut visits: Vec<Visit> = wanted
            .into_iter()
            .zip(documents)
            .filter_map(|((pet_id, _), visit)| visit.filter(|v| v.pet_id == pet_id))
            .collect();
        visits.sort_by(|a, b| (&a.date, a.id).cmp(&(&b.date, b.id)));
        Ok(visits)
    }
}

/// Runs visits operation `operation` on `payload`.
pub fn dispatch(host: &impl HostCall, operation: &str, payload: &[u8]) -> Result<Vec<u8>, String> {
    let visits = Visits::new(host);
    match operation {
        op::ADD_VISIT => {
            let r: ops::AddVisitRequest = decode_json(operation, payload)?;
            reply(&visits.add_visit(r.pet_id, r.visit))
        }
        op::LIST_VISITS => {
            let r: ops::ListVisitsRequest = decode_json(operation, payload)?;
            reply(&visits.list_visits(&r.pet_ids))
        }
        _ => Err(format!("unknown operation: {operation}")),
    }
}

/// The waPC exports (wasm32 only, so native test binaries can link several actors).
#[cfg(target_arch = "wasm32")]
mod guest {
    use nimbus_actor::WapcHost;
    use nimbus_actor::{HandlerResult, register_function};
    use petclinic_model::ops::visits as op;

    fn add_visit(p: &[u8]) -> HandlerResult<Vec<u8>> {
        crate::dispatch(&WapcHost, op::ADD_VISIT, p).map_err(Into::into)
    }
    fn list_visits(p: &[u8]) -> HandlerResult<Vec<u8>> {
        crate::dispatch(&WapcHost, op::LIST_VISITS, p).map_err(Into::into)
    }

    /// Registers the operations; called once by the host after instantiation.
    #[allow(unsafe_code)]
    // SAFETY: `wapc_init` is the waPC init export; nothing else in the module defines it.
    #[unsafe(no_mangle)]
    pub extern "C" fn wapc_init() {
        register_function(op::ADD_VISIT, add_visit);
        register_function(op::LIST_VISITS, list_visits);
    }
}

#[cfg(test)]
mod tests {
    use petclinic_model::codec::{encode, encode_json};
    use petclinic_model::testing::TestHost;

    use super::*;

    fn visit(date: &str, description: &str) -> VisitFields {
        VisitFields {
            date: date.into(),
            description: description.into(),
        }
    }

    #[test]
    fn visits_are_stored_per_pet_and_listed_by_date() {
        let host = TestHost::new();
        let visits = Visits::new(&host);
        let a = visits
            .add_visit(7, visit("2013-01-04", " spayed "))
            .unwrap();
        let b = visits
            .add_visit(7, visit("2013-01-01", "rabies shot"))
            .unwrap();
        let c = visits
            .add_visit(8, visit("2013-01-02", "rabies shot"))
            .unwrap();
        assert_eq!((a.id, b.id, c.id), (1, 2, 3));
        assert_eq!(a.description, "spayed");
        assert_eq!(
            visits.list_visits(&[7]).unwrap(),
            vec![b.clone(), a.clone()]
        );
        assert_eq!(
            visits.list_visits(&[8, 7, 7]).unwrap(),
            vec![b, c.clone(), a]
        );
        assert_eq!(visits.list_visits(&[9]).unwrap(), vec![]);
        assert_eq!(visits.list_visits(&[]).unwrap(), vec![]);
        let stored = host.kv.value(&visit_key(c.id)).unwrap();
        assert_eq!(
            stored,
            r#"{"id":3,"petId":8,"date":"2013-01-02","description":"rabies shot"}"#
        );
    }

    #[test]
    fn bad_visits_store_nothing() {
        let host = TestHost::new();
        let visits = Visits::new(&host);
        for (fields, field) in [
            (visit("2013-02-30", "x"), "date"),
            (visit("yesterday", "x"), "date"),
            (visit("2013-01-01", " "), "description"),
            (visit("2013-01-01", &"d".repeat(256)), "description"),
        ] {
            let e = visits.add_visit(1, fields).unwrap_err();
            assert_eq!(e.field(), Some(field));
        }
        let e = visits.add_visit(0, visit("2013-01-01", "x")).unwrap_err();
        assert_eq!(e.field(), Some("petId"));
        // Every broken rule at once: the fields in schema order, then the pet id.
        let e = visits.add_visit(0, visit("2013-02-30", "")).unwrap_err();
        let fields: Vec<_> = e.field_errors().into_iter().map(|f| f.field).collect();
        assert_eq!(
            fields,
            [
                Some("date".to_string()),
                Some("description".to_string()),
                Some("petId".to_string())
            ]
        );
        assert_eq!(e.field(), Some("date"));
        assert!(host.kv.snapshot().is_empty());
    }

    #[test]
    fn too_many_pets_per_list_is_refused() {
        let host = TestHost::new();
        let ids: Vec<Id> = (1..=u32::try_from(MAX_PET_IDS).unwrap() + 1).collect();
        let e = Visits::new(&host).list_visits(&ids).unwrap_err();
        assert_eq!(e.field(), Some("petIds"));
        assert!(host.calls().is_empty());
    }

    #[test]
    fn foreign_set_members_and_mismatched_documents_are_skipped() {
        let host = TestHost::new();
        let visits = Visits::new(&host);
        let v = visits.add_visit(1, visit("2020-01-01", "ok")).unwrap();
        // A visit of pet 2 listed under pet 1, and a dangling id: neither shows.
        visits.add_visit(2, visit("2020-01-02", "other")).unwrap();
        for member in ["2", "50", "junk"] {
            let args = petclinic_model::wire::SetAddArgs {
                key: pet_visits_key(1),
                value: member.into(),
            };
            host.kv.handle("SetAdd", &encode(&args).unwrap()).unwrap();
        }
        assert_eq!(visits.list_visits(&[1]).unwrap(), vec![v]);
    }

    #[test]
    fn dispatch_speaks_json_results() {
        let host = TestHost::new();
        let req = encode_json(&ops::AddVisitRequest {
            pet_id: 3,
            visit: visit("2020-05-05", "checkup"),
        })
        .unwrap();
        let r: ServiceResult<Visit> =
            decode_json("reply", &dispatch(&host, op::ADD_VISIT, &req).unwrap()).unwrap();
        assert_eq!(r.unwrap().pet_id, 3);
        let req = encode_json(&ops::ListVisitsRequest { pet_ids: vec![3] }).unwrap();
        let r: ServiceResult<Vec<Visit>> =
            decode_json("reply", &dispatch(&host, op::LIST_VISITS, &req).unwrap()).unwrap();
        assert_eq!(r.unwrap().len(), 1);

        let bad = encode_json(&ops::AddVisitRequest {
            pet_id: 3,
            visit: visit("2020-05-05", ""),
        })
        .unwrap();
        let r: ServiceResult<Visit> =
            decode_json("reply", &dispatch(&host, op::ADD_VISIT, &bad).unwrap()).unwrap();
        assert_eq!(r.unwrap_err().field(), Some("description"));

        assert!(dispatch(&host, "Nope", &[]).is_err());
        assert!(dispatch(&host, op::LIST_VISITS, b"junk").is_err());
    }

    #[test]
    fn visits_are_read_in_one_batch_and_the_same_from_a_0x_store() {
        let host = TestHost::new();
        let visits = Visits::new(&host);
        for (pet, date) in [(1, "2020-01-03"), (2, "2020-01-01"), (1, "2020-01-02")] {
            visits.add_visit(pet, visit(date, "checkup")).unwrap();
        }
        host.take_calls();
        let listed = visits.list_visits(&[1, 2, 3]).unwrap();
        assert_eq!(listed.len(), 3);
        let ops: Vec<String> = host.take_calls().into_iter().map(|c| c.operation).collect();
        assert_eq!(ops, ["SetQuery", "SetQuery", "SetQuery", "GetMany"]);
        host.kv.set_batches(false);
        assert_eq!(visits.list_visits(&[1, 2, 3]).unwrap(), listed);
    }

    #[test]
    fn a_store_outage_is_unavailable() {
        let host = TestHost::new();
        host.set_kv_down(true);
        let e = Visits::new(&host)
            .add_visit(1, visit("2020-01-01", "x"))
            .unwrap_err();
        assert_eq!(e.status(), 503);
    }
}
