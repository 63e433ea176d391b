//! The owners service: owners, pets and pet types over the key-value store.
//!
//! Write order is chosen so that a failure half way (store gone, instance killed) leaves
//! unreachable leftovers at worst, never an entity that is listed but unreadable: the
//! document first, then the sets that make it visible. Readers skip set members whose
//! document is missing, and the last-name search re-checks each owner's current name, so
//! a stale index entry (a concurrent rename) is never a wrong answer.
//!
//! Documents are read in batches (`GetMany`, [`Kv::get_json_many`]): a search reads the pet
//! types and every matching owner in one call, the pet ids of all their pet sets in one
//! `SetUnion` and all their pets in one more call, instead of one call per document or
//! set: on a lattice each call is a NATS round trip, so a search costs the same few of them
//! for ten owners or for thousands.

use std::collections::HashMap;

use nimbus_actor::HostCall;
use petclinic_model::call::ActorClient;
use petclinic_model::error::{ServiceError, ServiceResult, both};
use petclinic_model::kv::{Kv, parse_ids, parse_json};
use petclinic_model::ops::{self, MAX_PET_IDS, VISITS_ALIAS, visits as visits_op};
use petclinic_model::types::{
    Id, Owner, OwnerFields, OwnerRecord, Pet, PetFields, PetRecord, PetType, Visit,
};
use petclinic_model::wire::batch;

use crate::seed;

/// The seed gate (see the crate docs).
pub(crate) const SEEDED: &str = "petclinic:owners:seeded";
const OWNER_SEQ: &str = "petclinic:owners:seq:owner";
const PET_SEQ: &str = "petclinic:owners:seq:pet";
pub(crate) const OWNER_IDS: &str = "petclinic:owners:ids";
const LAST_NAMES: &str = "petclinic:owners:last-names";
pub(crate) const PET_TYPES: &str = "petclinic:owners:pettypes";

pub(crate) fn owner_key(id: Id) -> String {
    format!("petclinic:owners:owner:{id}")
}

pub(crate) fn owner_pets_key(id: Id) -> String {
    format!("petclinic:owners:owner:{id}:pets")
}

pub(crate) fn pet_key(id: Id) -> String {
    format!("petclinic:owners:pet:{id}")
}

pub(crate) fn last_name_key(lower_case_name: &str) -> String {
    format!("petclinic:owners:last-name:{lower_case_name}")
}

/// The owners service over one host.
pub struct Owners<'h, H: HostCall + ?Sized> {
    host: &'h H,
    kv: Kv<'h, H>,
}

impl<'h, H: HostCall + ?Sized> Owners<'h, H> {
    /// The service, storing through `host`'s key-value link.
    pub fn new(host: &'h H) -> Self {
        Owners {
            host,
            kv: Kv::new(host),
        }
    }

    /// Writes the seed data unless it exists or another instance is writing it; `true` if
    /// this call seeded. Seed visits go to the visits actor; if it cannot take them they
    /// are logged and skipped (owners and pets are this actor's own and must be stored).
    pub fn ensure_seeded(&self) -> ServiceResult<bool> {
        if self.kv.exists(SEEDED)? || self.kv.add(SEEDED, 1)? != 1 {
            return Ok(false);
        }
        self.host
            .console_log("petclinic/owners: first start, writing seed owners, pets and pet types");
        self.kv.set_json(PET_TYPES, &seed::pet_types())?;
        let visits = ActorClient::new(self.host, VISITS_ALIAS);
        for seed_owner in seed::OWNERS {
            let owner = self.create_owner(seed_owner.fields())?;
            for seed_pet in seed_owner.pets {
                let pet = self.add_pet(owner.id, seed_pet.fields())?;
                for visit in seed_pet.visits {
                    let request = ops::AddVisitRequest {
                        pet_id: pet.id,
                        visit: seed::visit_fields(visit),
                    };
                    let added: ServiceResult<Visit> = visits.call(visits_op::ADD_VISIT, &request);
                    if let Err(e) = added {
                        self.host.console_log(&format!(
                            "petclinic/owners: seed visit of pet {} not stored: {e}",
                            pet.id
                        ));
                    }
                }
            }
        }
        Ok(true)
    }

    /// Every owner, or those whose last name starts with `last_name` (case-insensitive,
    /// surrounding whitespace ignored), by id; pets without visits.
    pub fn list_owners(&self, last_name: Option<&str>) -> ServiceResult<Vec<Owner>> {
        let prefix = last_name.unwrap_or_default().trim().to_lowercase();
        let ids = if prefix.is_empty() {
            self.kv.id_set(OWNER_IDS)?
        } else {
            let keys: Vec<String> = self
                .kv
                .set_query(LAST_NAMES)?
                .iter()
                .filter(|name| name.starts_with(&prefix))
                .map(|name| last_name_key(name))
                .collect();
            if keys.is_empty() {
                Vec::new()
            } else {
                parse_ids(self.kv.set_union(&keys)?)
            }
        };
        // The pet types and every owner document in one read.
        let keys: Vec<String> = std::iter::once(PET_TYPES.to_string())
            .chain(ids.iter().map(|id| owner_key(*id)))
            .collect();
        let mut texts = self.kv.get_many(&keys)?.into_iter();
        let types = sorted_pet_types(parse_json(PET_TYPES, texts.next().flatten())?);
        let mut records = Vec::with_capacity(ids.len());
        for (key, text) in keys.iter().skip(1).zip(texts) {
            let Some(record) = parse_json::<OwnerRecord>(key, text)? else {
                continue;
            };
            if record.last_name.to_lowercase().starts_with(&prefix) {
                records.push(record);
            }
        }
        let owner_ids: Vec<Id> = records.iter().map(|r| r.id).collect();
        let pets = self.pets_of_owners(&owner_ids, &types)?;
        Ok(records
            .into_iter()
            .zip(pets)
            .map(|(record, pets)| record.into_owner(pets))
            .collect())
    }

    /// One owner; each pet with its visits (from the visits actor).
    pub fn get_owner(&self, id: Id) -> ServiceResult<Owner> {
        // The owner and the pet types in one read; a missing owner is reported first.
        let keys = [owner_key(id), PET_TYPES.to_string()];
        let mut texts = self.kv.get_many(&keys)?.into_iter();
        let record = parse_json::<OwnerRecord>(&keys[0], texts.next().flatten())?
            .ok_or_else(|| ServiceError::not_found(format!("owner {id} not found")))?;
        let types = sorted_pet_types(parse_json(PET_TYPES, texts.next().flatten())?);
        let mut pets = self.pets_of(id, &types)?;
        let pet_ids: Vec<Id> = pets.iter().map(|p| p.id).collect();
        let visits = ActorClient::new(self.host, VISITS_ALIAS);
        let mut all_visits: Vec<Visit> = Vec::new();
        for chunk in pet_ids.chunks(MAX_PET_IDS) {
            let request = ops::ListVisitsRequest {
                pet_ids: chunk.to_vec(),
            };
            all_visits.extend(visits.call::<_, Vec<Visit>>(visits_op::LIST_VISITS, &request)?);
        }
        for pet in &mut pets {
            let mine = all_visits.iter().filter(|v| v.pet_id == pet.id).cloned();
            pet.visits = Some(mine.collect());
        }
        Ok(record.into_owner(pets))
    }

    /// Creates an owner (no pets).
    pub fn create_owner(&self, fields: OwnerFields) -> ServiceResult<Owner> {
        let fields = fields.validated()?;
        let id = self.kv.next_id(OWNER_SEQ)?;
        let record = OwnerRecord::new(id, fields);
        self.kv.set_json(&owner_key(id), &record)?;
        self.index_last_name(&record)?;
        self.kv.set_add(OWNER_IDS, &id.to_string())?;
        Ok(record.into_owner(Vec::new()))
    }

    /// Replaces an owner's fields; the owner as [`Self::get_owner`] shows it.
    pub fn update_owner(&self, id: Id, fields: OwnerFields) -> ServiceResult<Owner> {
        let fields = fields.validated()?;
        let old = self.owner_record(id)?;
        let record = OwnerRecord::new(id, fields);
        self.kv.set_json(&owner_key(id), &record)?;
        let old_name = old.last_name.to_lowercase();
        if old_name != record.last_name.to_lowercase() {
            self.index_last_name(&record)?;
            self.kv
                .set_remove(&last_name_key(&old_name), &id.to_string())?;
        }
        self.get_owner(id)
    }

    /// Adds a pet to an owner. A pet type that does not exist and a name the owner
    /// already gave another pet (case-insensitive) are 400s, reported together (`type`
    /// first); a bad type is reported before an unknown owner.
    pub fn add_pet(&self, owner_id: Id, fields: PetFields) -> ServiceResult<Pet> {
        let fields = fields.validated()?;
        let types = self.pet_types()?;
        let type_check = check_type(&types, fields.type_id);
        if let Err(e) = self.owner_record(owner_id) {
            return type_check.and(Err(e));
        }
        let name_check = self.check_name_free(owner_id, None, &fields.name, &types);
        both(type_check, name_check)?;
        let id = self.kv.next_id(PET_SEQ)?;
        let record = PetRecord {
            id,
            owner_id,
            name: fields.name,
            birth_date: fields.birth_date,
            type_id: fields.type_id,
        };
        self.kv.set_json(&pet_key(id), &record)?;
        self.kv
            .set_add(&owner_pets_key(owner_id), &id.to_string())?;
        Ok(record.into_pet(&types, None))
    }

    /// One pet of an owner (without visits).
    pub fn get_pet(&self, owner_id: Id, pet_id: Id) -> ServiceResult<Pet> {
        let record = self.pet_record(owner_id, pet_id)?;
        Ok(record.into_pet(&self.pet_types()?, None))
    }

    /// Replaces a pet's name, birth date and type (same rules as [`Self::add_pet`]).
    pub fn update_pet(&self, owner_id: Id, pet_id: Id, fields: PetFields) -> ServiceResult<Pet> {
        let fields = fields.validated()?;
        let types = self.pet_types()?;
        let type_check = check_type(&types, fields.type_id);
        if let Err(e) = self.pet_record(owner_id, pet_id) {
            return type_check.and(Err(e));
        }
        let name_check = self.check_name_free(owner_id, Some(pet_id), &fields.name, &types);
        both(type_check, name_check)?;
        let record = PetRecord {
            id: pet_id,
            owner_id,
            name: fields.name,
            birth_date: fields.birth_date,
            type_id: fields.type_id,
        };
        self.kv.set_json(&pet_key(pet_id), &record)?;
        Ok(record.into_pet(&types, None))
    }

    /// The pet types, by name.
    pub fn pet_types(&self) -> ServiceResult<Vec<PetType>> {
        Ok(sorted_pet_types(self.kv.get_json(PET_TYPES)?))
    }

    fn owner_record(&self, id: Id) -> ServiceResult<OwnerRecord> {
        self.kv
            .get_json(&owner_key(id))?
            .ok_or_else(|| ServiceError::not_found(format!("owner {id} not found")))
    }

    /// The pet, if it exists and is the owner's; otherwise 404 naming what is missing.
    fn pet_record(&self, owner_id: Id, pet_id: Id) -> ServiceResult<PetRecord> {
        match self.kv.get_json::<PetRecord>(&pet_key(pet_id))? {
            Some(pet) if pet.owner_id == owner_id => Ok(pet),
            _ if !self.kv.exists(&owner_key(owner_id))? => Err(ServiceError::not_found(format!(
                "owner {owner_id} not found"
            ))),
            _ => Err(ServiceError::not_found(format!(
                "pet {pet_id} not found for owner {owner_id}"
            ))),
        }
    }

    fn index_last_name(&self, record: &OwnerRecord) -> ServiceResult<()> {
        let name = record.last_name.to_lowercase();
        self.kv
            .set_add(&last_name_key(&name), &record.id.to_string())?;
        // Names are never removed from this set: another owner may be getting the same
        // name right now. An empty name set costs one key and matches nobody.
        self.kv.set_add(LAST_NAMES, &name)?;
        Ok(())
    }

    /// The owner's pets, by name (case-insensitive) then id.
    fn pets_of(&self, owner_id: Id, types: &[PetType]) -> ServiceResult<Vec<Pet>> {
        Ok(self
            .pets_of_owners(&[owner_id], types)?
            .pop()
            .unwrap_or_default())
    }

    /// The pets of each owner, in the order of `owner_ids`, each by name (case-insensitive)
    /// then id, in two reads whatever the number of owners (one more per
    /// [`batch::MAX_BATCH`] owners or pets): the members of all the owners' pet sets with
    /// one `SetUnion`, then every pet document with one batched read. A pet counts for an
    /// owner if it is in one of these sets and its document names the owner: a pet never
    /// changes owner, so that is the owner whose set it is in (a pet whose document was
    /// written but whose set entry was not, a failure half way, is in no set and is not
    /// listed, as with a read of each set).
    fn pets_of_owners(&self, owner_ids: &[Id], types: &[PetType]) -> ServiceResult<Vec<Vec<Pet>>> {
        let mut members = Vec::new();
        for chunk in owner_ids.chunks(batch::MAX_BATCH) {
            let keys: Vec<String> = chunk.iter().map(|id| owner_pets_key(*id)).collect();
            members.extend(self.kv.set_union(&keys)?);
        }
        let keys: Vec<String> = parse_ids(members).into_iter().map(pet_key).collect();
        let records = self.kv.get_json_many::<PetRecord>(&keys)?;
        let mut slots: HashMap<Id, Vec<usize>> = HashMap::new();
        for (i, owner_id) in owner_ids.iter().enumerate() {
            slots.entry(*owner_id).or_default().push(i);
        }
        let mut pets: Vec<Vec<Pet>> = vec![Vec::new(); owner_ids.len()];
        for record in records.into_iter().flatten() {
            let Some(owners) = slots.get(&record.owner_id) else {
                continue;
            };
            let pet = record.into_pet(types, None);
            for i in owners {
                if let Some(list) = pets.get_mut(*i) {
                    list.push(pet.clone());
                }
            }
        }
        for list in &mut pets {
            list.sort_by_key(|p| (p.name.to_lowercase(), p.id));
        }
        Ok(pets)
    }

    fn check_name_free(
        &self,
        owner_id: Id,
        except: Option<Id>,
        name: &str,
        types: &[PetType],
    ) -> ServiceResult<()> {
        let lower = name.to_lowercase();
        let taken = self
            .pets_of(owner_id, types)?
            .iter()
            .any(|p| Some(p.id) != except && p.name.to_lowercase() == lower);
        if taken {
            return Err(ServiceError::invalid(
                "name",
                format!("owner {owner_id} already has a pet named {name}"),
            ));
        }
        Ok(())
    }
}

/// The stored pet types (none when the document is absent), by name then id.
fn sorted_pet_types(types: Option<Vec<PetType>>) -> Vec<PetType> {
    let mut types = types.unwrap_or_default();
    types.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
    types
}

fn check_type(types: &[PetType], type_id: Id) -> ServiceResult<()> {
    if types.iter().any(|t| t.id == type_id) {
        Ok(())
    } else {
        Err(ServiceError::invalid(
            "type",
            format!("pet type {type_id} does not exist"),
        ))
    }
}
