//! Actor-to-actor operations of the petclinic actors: the call aliases they are signed
//! with, the waPC operation names, and the request payloads.
//!
//! Every request is a JSON object with the camelCase field names below; every reply is a
//! JSON `Result<T, ServiceError>` (`{"Ok": T}` or `{"Err": {"NotFound": {...}}}`), encoded
//! with [`crate::call::reply`] and read with [`crate::call::ActorClient`]. Operations
//! without arguments take [`Empty`] (`{}`) and ignore whatever payload they get.
//!
//! Who calls whom (no cycles, so no call ever waits on an actor further up its own chain):
//! `gateway -> owners, vets, visits, ui`; `owners -> visits` (visits of an owner's pets,
//! and the seed visits).

use serde::{Deserialize, Serialize};

use crate::types::{Id, OwnerFields, PetFields, VisitFields};

/// Call alias of the owners actor (owners, pets, pet types).
pub const OWNERS_ALIAS: &str = "petclinic/owners";
/// Call alias of the vets actor (vets, specialties).
pub const VETS_ALIAS: &str = "petclinic/vets";
/// Call alias of the visits actor.
pub const VISITS_ALIAS: &str = "petclinic/visits";
/// Call alias of the UI actor (serves the web app through `HandleRequest`).
pub const UI_ALIAS: &str = "petclinic/ui";
/// Call alias of the gateway (nothing calls it; set for symmetry and for `wash call`).
pub const GATEWAY_ALIAS: &str = "petclinic/gateway";

/// Operations of the owners actor.
pub mod owners {
    /// [`super::ListOwnersRequest`] -> `Vec<Owner>` (pets without visits), by id.
    pub const LIST_OWNERS: &str = "ListOwners";
    /// [`super::OwnerRequest`] -> `Owner` (pets with visits).
    pub const GET_OWNER: &str = "GetOwner";
    /// [`super::CreateOwnerRequest`] -> `Owner`.
    pub const CREATE_OWNER: &str = "CreateOwner";
    /// [`super::UpdateOwnerRequest`] -> `Owner` (pets with visits).
    pub const UPDATE_OWNER: &str = "UpdateOwner";
    /// [`super::AddPetRequest`] -> `Pet`.
    pub const ADD_PET: &str = "AddPet";
    /// [`super::PetRequest`] -> `Pet` (without visits); 404 unless the pet is the owner's.
    pub const GET_PET: &str = "GetPet";
    /// [`super::UpdatePetRequest`] -> `Pet`.
    pub const UPDATE_PET: &str = "UpdatePet";
    /// [`super::Empty`] -> `Vec<PetType>`, by name.
    pub const LIST_PET_TYPES: &str = "ListPetTypes";
    /// Every operation, for registration.
    pub const ALL: [&str; 8] = [
        LIST_OWNERS,
        GET_OWNER,
        CREATE_OWNER,
        UPDATE_OWNER,
        ADD_PET,
        GET_PET,
        UPDATE_PET,
        LIST_PET_TYPES,
    ];
}

/// Operations of the vets actor.
pub mod vets {
    /// [`super::Empty`] -> `Vec<Vet>`, by last name then first name.
    pub const LIST_VETS: &str = "ListVets";
    /// [`super::Empty`] -> `Vec<Specialty>`, by name.
    pub const LIST_SPECIALTIES: &str = "ListSpecialties";
    /// Every operation, for registration.
    pub const ALL: [&str; 2] = [LIST_VETS, LIST_SPECIALTIES];
}

/// Operations of the visits actor. It trusts the caller to have checked that the pet
/// exists (the gateway asks the owners actor first).
pub mod visits {
    /// [`super::AddVisitRequest`] -> `Visit`.
    pub const ADD_VISIT: &str = "AddVisit";
    /// [`super::ListVisitsRequest`] -> `Vec<Visit>`, by date then id.
    pub const LIST_VISITS: &str = "ListVisits";
    /// Every operation, for registration.
    pub const ALL: [&str; 2] = [ADD_VISIT, LIST_VISITS];
}

/// The most pet ids one `ListVisits` may ask for.
pub const MAX_PET_IDS: usize = 1000;

/// The payload of an operation without arguments.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {}

/// `ListOwners`: all owners, or those whose last name starts with `lastName`
/// (case-insensitive; empty means all).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListOwnersRequest {
    /// The last-name prefix.
    #[serde(default)]
    pub last_name: Option<String>,
}

/// `GetOwner`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OwnerRequest {
    /// The owner.
    pub owner_id: Id,
}

/// `CreateOwner`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateOwnerRequest {
    /// The new owner's fields.
    pub owner: OwnerFields,
}

/// `UpdateOwner`: replaces every field of the owner (pets are untouched).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateOwnerRequest {
    /// The owner.
    pub owner_id: Id,
    /// The new fields.
    pub owner: OwnerFields,
}

/// `AddPet`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AddPetRequest {
    /// The owner.
    pub owner_id: Id,
    /// The new pet's fields.
    pub pet: PetFields,
}

/// `GetPet`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PetRequest {
    /// The owner.
    pub owner_id: Id,
    /// The pet, which must belong to the owner.
    pub pet_id: Id,
}

/// `UpdatePet`: replaces name, birth date and type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdatePetRequest {
    /// The owner.
    pub owner_id: Id,
    /// The pet, which must belong to the owner.
    pub pet_id: Id,
    /// The new fields.
    pub pet: PetFields,
}

/// `AddVisit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AddVisitRequest {
    /// The pet visited.
    pub pet_id: Id,
    /// The visit's fields.
    pub visit: VisitFields,
}

/// `ListVisits`: the visits of these pets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListVisitsRequest {
    /// The pets (at most [`MAX_PET_IDS`]).
    pub pet_ids: Vec<Id>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{decode_json, encode_json};

    #[test]
    fn requests_are_camel_case_objects() {
        let bytes = encode_json(&UpdatePetRequest {
            owner_id: 1,
            pet_id: 2,
            pet: PetFields {
                name: "Leo".into(),
                birth_date: "2010-01-01".into(),
                type_id: 3,
            },
        })
        .unwrap();
        assert_eq!(
            bytes,
            br#"{"ownerId":1,"petId":2,"pet":{"name":"Leo","birthDate":"2010-01-01","typeId":3}}"#
        );
    }

    #[test]
    fn empty_is_an_empty_object_and_list_owners_defaults() {
        assert_eq!(encode_json(&Empty {}).unwrap(), b"{}");
        let req: ListOwnersRequest = decode_json("ListOwnersRequest", b"{}").unwrap();
        assert_eq!(req.last_name, None);
    }

    #[test]
    fn aliases_are_already_normalized() {
        // wascap normalizes call aliases (lowercase, trimmed, ' ', '-', '.' -> '_'); ours
        // must come out unchanged so callers and claims agree.
        for alias in [
            OWNERS_ALIAS,
            VETS_ALIAS,
            VISITS_ALIAS,
            UI_ALIAS,
            GATEWAY_ALIAS,
        ] {
            assert!(
                alias
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '/' || c == '_'),
                "{alias}"
            );
        }
    }
}
