//! The petclinic domain as the REST API shows it (JSON, camelCase), the inputs it accepts,
//! and the records the actors store (one JSON document per entity).
//!
//! Pets are stored apart from their owner and visits apart from their pet, each linked by
//! a KV set: concurrent writers then never overwrite each other's additions (a pet added
//! while the owner is updated is not lost), and `SetAdd` is atomic.

use serde::{Deserialize, Serialize};

/// Every id: allocated from a KV counter, so 1..=i32::MAX.
pub type Id = u32;

/// A kind of pet (`cat`, `dog`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PetType {
    /// The id.
    pub id: Id,
    /// The name.
    pub name: String,
}

/// A vet's specialty (`radiology`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Specialty {
    /// The id.
    pub id: Id,
    /// The name.
    pub name: String,
}

/// A visit of a pet (also the stored record).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Visit {
    /// The id.
    pub id: Id,
    /// The pet visited.
    pub pet_id: Id,
    /// `YYYY-MM-DD`.
    pub date: String,
    /// What was done.
    pub description: String,
}

/// A pet as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pet {
    /// The id.
    pub id: Id,
    /// The name.
    pub name: String,
    /// `YYYY-MM-DD`.
    pub birth_date: String,
    /// The kind of pet.
    #[serde(rename = "type")]
    pub pet_type: PetType,
    /// The owner.
    pub owner_id: Id,
    /// The pet's visits, oldest first: present when one owner is read, absent in lists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visits: Option<Vec<Visit>>,
}

/// An owner as the API shows it, with the pets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Owner {
    /// The id.
    pub id: Id,
    /// First name.
    pub first_name: String,
    /// Last name (searchable by prefix).
    pub last_name: String,
    /// Street address.
    pub address: String,
    /// City.
    pub city: String,
    /// Digits only.
    pub telephone: String,
    /// The pets, by name.
    pub pets: Vec<Pet>,
}

/// A vet with specialties.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Vet {
    /// The id.
    pub id: Id,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// The specialties, by name (may be empty).
    pub specialties: Vec<Specialty>,
}

/// The writable fields of an owner (create and update take all of them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OwnerFields {
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Street address.
    pub address: String,
    /// City.
    pub city: String,
    /// Digits only.
    pub telephone: String,
}

/// The writable fields of a pet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PetFields {
    /// The name.
    pub name: String,
    /// `YYYY-MM-DD`.
    pub birth_date: String,
    /// The id of a pet type.
    pub type_id: Id,
}

/// The writable fields of a visit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VisitFields {
    /// `YYYY-MM-DD`.
    pub date: String,
    /// What was done.
    pub description: String,
}

/// An owner as stored: the owner's own fields, without pets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OwnerRecord {
    /// The id.
    pub id: Id,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Street address.
    pub address: String,
    /// City.
    pub city: String,
    /// Digits only.
    pub telephone: String,
}

impl OwnerRecord {
    /// The record of owner `id` with `fields`.
    pub fn new(id: Id, fields: OwnerFields) -> Self {
        OwnerRecord {
            id,
            first_name: fields.first_name,
            last_name: fields.last_name,
            address: fields.address,
            city: fields.city,
            telephone: fields.telephone,
        }
    }

    /// The API view, with `pets`.
    pub fn into_owner(self, pets: Vec<Pet>) -> Owner {
        Owner {
            id: self.id,
            first_name: self.first_name,
            last_name: self.last_name,
            address: self.address,
            city: self.city,
            telephone: self.telephone,
            pets,
        }
    }
}

/// A pet as stored: its type by id, its owner by id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PetRecord {
    /// The id.
    pub id: Id,
    /// The owner (never changes).
    pub owner_id: Id,
    /// The name.
    pub name: String,
    /// `YYYY-MM-DD`.
    pub birth_date: String,
    /// The pet type's id.
    pub type_id: Id,
}

impl PetRecord {
    /// The API view; `types` resolves the type name (an unknown id shows an empty name).
    pub fn into_pet(self, types: &[PetType], visits: Option<Vec<Visit>>) -> Pet {
        let pet_type = types
            .iter()
            .find(|t| t.id == self.type_id)
            .cloned()
            .unwrap_or(PetType {
                id: self.type_id,
                name: String::new(),
            });
        Pet {
            id: self.id,
            name: self.name,
            birth_date: self.birth_date,
            pet_type,
            owner_id: self.owner_id,
            visits,
        }
    }
}

/// A vet as stored: specialties by id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VetRecord {
    /// The id.
    pub id: Id,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// The specialties' ids.
    pub specialty_ids: Vec<Id>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn pets_use_the_rest_api_shape() {
        let pet = PetRecord {
            id: 3,
            owner_id: 1,
            name: "Leo".into(),
            birth_date: "2010-09-07".into(),
            type_id: 1,
        }
        .into_pet(
            &[PetType {
                id: 1,
                name: "cat".into(),
            }],
            None,
        );
        assert_eq!(
            serde_json::to_value(&pet).unwrap(),
            json!({"id": 3, "name": "Leo", "birthDate": "2010-09-07",
                   "type": {"id": 1, "name": "cat"}, "ownerId": 1})
        );
        let with_visits = Pet {
            visits: Some(vec![]),
            ..pet
        };
        assert_eq!(
            serde_json::to_value(&with_visits).unwrap()["visits"],
            json!([])
        );
    }

    #[test]
    fn unknown_type_ids_show_an_empty_name() {
        let pet = PetRecord {
            id: 1,
            owner_id: 1,
            name: "X".into(),
            birth_date: "2010-01-01".into(),
            type_id: 42,
        }
        .into_pet(&[], None);
        assert_eq!(
            pet.pet_type,
            PetType {
                id: 42,
                name: String::new()
            }
        );
    }

    #[test]
    fn owner_records_round_trip_and_gain_pets() {
        let fields = OwnerFields {
            first_name: "George".into(),
            last_name: "Franklin".into(),
            address: "110 W. Liberty St.".into(),
            city: "Madison".into(),
            telephone: "6085551023".into(),
        };
        let record = OwnerRecord::new(1, fields);
        let text = serde_json::to_string(&record).unwrap();
        assert!(text.contains("\"firstName\":\"George\""), "{text}");
        let back: OwnerRecord = serde_json::from_str(&text).unwrap();
        assert_eq!(back, record);
        let owner = back.into_owner(vec![]);
        assert_eq!(
            serde_json::to_value(&owner).unwrap(),
            json!({"id": 1, "firstName": "George", "lastName": "Franklin",
                   "address": "110 W. Liberty St.", "city": "Madison",
                   "telephone": "6085551023", "pets": []})
        );
    }
}
