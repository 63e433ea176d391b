//! `petclinic-vets`: the vets actor of the petclinic demo. It keeps the vets and their
//! specialties in the `wasmcloud:keyvalue` capability (link name `default`). The API only
//! reads them; they come from the seed.
//!
//! Operations: see [`petclinic_model::ops::vets`]. Every reply is a JSON
//! `Result<T, ServiceError>`; a waPC error means the request itself was unreadable.
//!
//! Key-value layout (values are JSON documents, sets hold decimal ids):
//!
//! | key | kind | content |
//! |---|---|---|
//! | `petclinic:vets:seeded` | counter | seed gate: the instance whose `Add` returns 1 seeds |
//! | `petclinic:vets:seq:vet` | counter | id allocation (`Add` 1) |
//! | `petclinic:vets:ids` | set | every vet id |
//! | `petclinic:vets:vet:{id}` | JSON | `VetRecord` (specialties by id) |
//! | `petclinic:vets:specialties` | JSON | `[Specialty]` |
//!
//! Seeding works as in the owners actor: on every call, `KeyExists` on the gate and, if it
//! is missing, `Add(gate, 1)`; only the caller that gets 1 writes.

use nimbus_actor::HostCall;
use petclinic_model::call::reply;
use petclinic_model::error::ServiceResult;
use petclinic_model::kv::{Kv, parse_json};
use petclinic_model::ops::vets as op;
use petclinic_model::types::{Id, Specialty, Vet, VetRecord};

const SEEDED: &str = "petclinic:vets:seeded";
const SEQ: &str = "petclinic:vets:seq:vet";
const IDS: &str = "petclinic:vets:ids";
const SPECIALTIES: &str = "petclinic:vets:specialties";

fn vet_key(id: Id) -> String {
    format!("petclinic:vets:vet:{id}")
}

/// The seed specialties, with fixed ids.
const SEED_SPECIALTIES: [(Id, &str); 3] = [(1, "radiology"), (2, "surgery"), (3, "dentistry")];

/// The seed vets: first name, last name, specialty ids.
const SEED_VETS: [(&str, &str, &[Id]); 6] = [
    ("James", "Carter", &[]),
    ("Helen", "Leary", &[1]),
    ("Linda", "Douglas", &[2, 3]),
    ("Rafael", "Ortega", &[2]),
    ("Henry", "Stevens", &[1]),
    ("Sharon", "Jenkins", &[]),
];

/// The vets service over one host.
pub struct Vets<'h, H: HostCall + ?Sized> {
    host: &'h H,
    kv: Kv<'h, H>,
}

impl<'h, H: HostCall + ?Sized> Vets<'h, H> {
    /// The service, storing through `host`'s key-value link.
    pub fn new(host: &'h H) -> Self {
        Vets {
            host,
            kv: Kv::new(host),
        }
    }

    /// Writes the seed vets unless they exist or another instance is writing them; `true`
    /// if this call seeded.
    pub fn ensure_seeded(&self) -> ServiceResult<bool> {
        if self.kv.exists(SEEDED)? || self.kv.add(SEEDED, 1)? != 1 {
            return Ok(false);
        }
        self.host
            .console_log("petclinic/vets: first start, writing seed vets and specialties");
        let specialties: Vec<Specialty> = SEED_SPECIALTIES
            .iter()
            .map(|(id, name)| Specialty {
                id: *id,
                name: (*name).to_string(),
            })
            .collect();
        self.kv.set_json(SPECIALTIES, &specialties)?;
        for (first_name, last_name, specialty_ids) in SEED_VETS {
            let id = self.kv.next_id(SEQ)?;
            let record = VetRecord {
                id,
                first_name: first_name.to_string(),
                last_name: last_name.to_string(),
                specialty_ids: specialty_ids.to_vec(),
            };
            self.kv.set_json(&vet_key(id), &record)?;
            self.kv.set_add(IDS, &id.to_string())?;
        }
        Ok(true)
    }

    /// The specialties, by name.
    pub fn list_specialties(&self) -> ServiceResult<Vec<Specialty>> {
        Ok(sorted_specialties(self.kv.get_json(SPECIALTIES)?))
    }

    /// The vets with their specialties (by name), by last name, first name, id: the id set,
    /// then the specialties and every vet document in one batched read.
    pub fn list_vets(&self) -> ServiceResult<Vec<Vet>> {
        let ids = self.kv.id_set(IDS)?;
        let keys: Vec<String> = std::iter::once(SPECIALTIES.to_string())
            .chain(ids.iter().map(|id| vet_key(*id)))
            .collect();
        let mut texts = self.kv.get_many(&keys)?.into_iter();
        let specialties = sorted_specialties(parse_json(SPECIALTIES, texts.next().flatten())?);
        let mut vets = Vec::new();
        for (key, text) in keys.iter().skip(1).zip(texts) {
            let Some(record) = parse_json::<VetRecord>(key, text)? else {
                continue;
            };
            // `specialties` is sorted by name, so filtering it keeps that order.
            let own = specialties
                .iter()
                .filter(|s| record.specialty_ids.contains(&s.id))
                .cloned()
                .collect();
            vets.push(Vet {
                id: record.id,
                first_name: record.first_name,
                last_name: record.last_name,
                specialties: own,
            });
        }
        vets.sort_by(|a, b| {
            (&a.last_name, &a.first_name, a.id).cmp(&(&b.last_name, &b.first_name, b.id))
        });
        Ok(vets)
    }
}

/// The stored specialties (none when the document is absent), by name then id.
fn sorted_specialties(specialties: Option<Vec<Specialty>>) -> Vec<Specialty> {
    let mut specialties = specialties.unwrap_or_default();
    specialties.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
    specialties
}

/// Runs vets operation `operation` (both take no arguments, so the payload is ignored),
/// making sure seed data exists first (checked on every call, as the owners actor does:
/// the store behind the link can change under a running instance).
pub fn dispatch(host: &impl HostCall, operation: &str, _payload: &[u8]) -> Result<Vec<u8>, String> {
    if !op::ALL.contains(&operation) {
        return Err(format!("unknown operation: {operation}"));
    }
    let vets = Vets::new(host);
    if let Err(e) = vets.ensure_seeded() {
        return reply::<()>(&Err(e));
    }
    match operation {
        op::LIST_VETS => reply(&vets.list_vets()),
        op::LIST_SPECIALTIES => reply(&vets.list_specialties()),
        _ => Err(format!("unknown operation: {operation}")),
    }
}

/// The waPC exports (wasm32 only, so native test binaries can link several actors).
#[cfg(target_arch = "wasm32")]
mod guest {
    use nimbus_actor::WapcHost;
    use nimbus_actor::{HandlerResult, register_function};
    use petclinic_model::ops::vets as op;

    fn list_vets(p: &[u8]) -> HandlerResult<Vec<u8>> {
        crate::dispatch(&WapcHost, op::LIST_VETS, p).map_err(Into::into)
    }
    fn list_specialties(p: &[u8]) -> HandlerResult<Vec<u8>> {
        crate::dispatch(&WapcHost, op::LIST_SPECIALTIES, p).map_err(Into::into)
    }

    /// Registers the operations; called once by the host after instantiation.
    #[allow(unsafe_code)]
    // SAFETY: `wapc_init` is the waPC init export; nothing else in the module defines it.
    #[unsafe(no_mangle)]
    pub extern "C" fn wapc_init() {
        register_function(op::LIST_VETS, list_vets);
        register_function(op::LIST_SPECIALTIES, list_specialties);
    }
}

#[cfg(test)]
mod tests {
    use petclinic_model::codec::decode_json;
    use petclinic_model::testing::TestHost;

    use super::*;

    fn names(vets: &[Vet]) -> Vec<String> {
        vets.iter()
            .map(|v| {
                let specs: Vec<&str> = v.specialties.iter().map(|s| s.name.as_str()).collect();
                format!("{} {} [{}]", v.first_name, v.last_name, specs.join(","))
            })
            .collect()
    }

    #[test]
    fn seeded_vets_are_listed_with_specialties() {
        let host = TestHost::new();
        let r: ServiceResult<Vec<Vet>> =
            decode_json("reply", &dispatch(&host, op::LIST_VETS, &[]).unwrap()).unwrap();
        assert_eq!(
            names(&r.unwrap()),
            [
                "James Carter []",
                "Linda Douglas [dentistry,surgery]",
                "Sharon Jenkins []",
                "Helen Leary [radiology]",
                "Rafael Ortega [surgery]",
                "Henry Stevens [radiology]",
            ]
        );
        let r: ServiceResult<Vec<Specialty>> = decode_json(
            "reply",
            &dispatch(&host, op::LIST_SPECIALTIES, &[0x80]).unwrap(),
        )
        .unwrap();
        let specs: Vec<String> = r.unwrap().into_iter().map(|s| s.name).collect();
        assert_eq!(specs, ["dentistry", "radiology", "surgery"]);
    }

    #[test]
    fn seeding_is_idempotent_across_instances() {
        let host = TestHost::new();
        let vets = Vets::new(&host);
        assert!(vets.ensure_seeded().unwrap());
        let snapshot = host.kv.snapshot();
        assert!(!vets.ensure_seeded().unwrap());
        // A second instance's first call checks the gate and writes nothing.
        dispatch(&host, op::LIST_VETS, &[]).unwrap();
        assert_eq!(host.kv.snapshot(), snapshot);
        assert_eq!(vets.list_vets().unwrap().len(), SEED_VETS.len());
        assert_eq!(host.kv.value(SEQ).as_deref(), Some("6"));
    }

    #[test]
    fn a_new_store_behind_the_link_is_seeded_by_a_running_instance() {
        let host = TestHost::new();
        dispatch(&host, op::LIST_VETS, &[]).unwrap();
        host.kv.clear(); // the link was put again with another, empty backend
        let r: ServiceResult<Vec<Vet>> =
            decode_json("reply", &dispatch(&host, op::LIST_VETS, &[]).unwrap()).unwrap();
        assert_eq!(r.unwrap().len(), SEED_VETS.len());
        assert_eq!(host.kv.value(SEEDED).as_deref(), Some("1"));
    }

    #[test]
    fn a_lost_gate_race_writes_nothing() {
        let host = TestHost::new();
        host.kv.put(SEEDED, "1"); // another instance holds the gate
        assert!(!Vets::new(&host).ensure_seeded().unwrap());
        assert!(Vets::new(&host).list_vets().unwrap().is_empty());
    }

    #[test]
    fn an_outage_is_reported_and_seeding_retried() {
        let host = TestHost::new();
        host.set_kv_down(true);
        let r: ServiceResult<Vec<Vet>> =
            decode_json("reply", &dispatch(&host, op::LIST_VETS, &[]).unwrap()).unwrap();
        assert_eq!(r.unwrap_err().status(), 503);
        host.set_kv_down(false);
        let r: ServiceResult<Vec<Vet>> =
            decode_json("reply", &dispatch(&host, op::LIST_VETS, &[]).unwrap()).unwrap();
        assert_eq!(r.unwrap().len(), 6);
    }

    #[test]
    fn the_vets_are_read_in_one_batch_and_the_same_from_a_0x_store() {
        let host = TestHost::new();
        let vets = Vets::new(&host);
        vets.ensure_seeded().unwrap();
        host.take_calls();
        let listed = vets.list_vets().unwrap();
        let ops: Vec<String> = host.take_calls().into_iter().map(|c| c.operation).collect();
        assert_eq!(ops, ["SetQuery", "GetMany"]);
        host.kv.set_batches(false);
        assert_eq!(vets.list_vets().unwrap(), listed);
    }

    #[test]
    fn unknown_operations_are_errors() {
        let host = TestHost::new();
        let err = dispatch(&host, "AddVet", &[]).unwrap_err();
        assert_eq!(err, "unknown operation: AddVet");
        assert!(host.calls().is_empty());
    }
}
