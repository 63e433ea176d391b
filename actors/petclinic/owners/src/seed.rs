//! The seed data: the classic Spring petclinic owners, pets, pet types and visits. It goes
//! through the same validated create paths as API requests.

use petclinic_model::types::{Id, OwnerFields, PetFields, PetType, VisitFields};

/// The pet types, with fixed ids (nothing else creates pet types).
pub(crate) const PET_TYPES: [(Id, &str); 6] = [
    (1, "cat"),
    (2, "dog"),
    (3, "lizard"),
    (4, "snake"),
    (5, "bird"),
    (6, "hamster"),
];

/// The pet types as stored.
pub(crate) fn pet_types() -> Vec<PetType> {
    PET_TYPES
        .iter()
        .map(|(id, name)| PetType {
            id: *id,
            name: (*name).to_string(),
        })
        .collect()
}

/// A seed owner: first name, last name, address, city, telephone, pets.
pub(crate) struct SeedOwner {
    first_name: &'static str,
    last_name: &'static str,
    address: &'static str,
    city: &'static str,
    telephone: &'static str,
    pub(crate) pets: &'static [SeedPet],
}

/// A seed pet: name, birth date, type id, visits (date, description).
pub(crate) struct SeedPet {
    name: &'static str,
    birth_date: &'static str,
    type_id: Id,
    pub(crate) visits: &'static [(&'static str, &'static str)],
}

impl SeedOwner {
    pub(crate) fn fields(&self) -> OwnerFields {
        OwnerFields {
            first_name: self.first_name.into(),
            last_name: self.last_name.into(),
            address: self.address.into(),
            city: self.city.into(),
            telephone: self.telephone.into(),
        }
    }
}

impl SeedPet {
    pub(crate) fn fields(&self) -> PetFields {
        PetFields {
            name: self.name.into(),
            birth_date: self.birth_date.into(),
            type_id: self.type_id,
        }
    }
}

/// The fields of a seed visit.
pub(crate) fn visit_fields(visit: &(&str, &str)) -> VisitFields {
    VisitFields {
        date: visit.0.into(),
        description: visit.1.into(),
    }
}

const fn owner(
    first_name: &'static str,
    last_name: &'static str,
    address: &'static str,
    city: &'static str,
    telephone: &'static str,
    pets: &'static [SeedPet],
) -> SeedOwner {
    SeedOwner {
        first_name,
        last_name,
        address,
        city,
        telephone,
        pets,
    }
}

const fn pet(
    name: &'static str,
    birth_date: &'static str,
    type_id: Id,
    visits: &'static [(&'static str, &'static str)],
) -> SeedPet {
    SeedPet {
        name,
        birth_date,
        type_id,
        visits,
    }
}

/// The seed owners, in id order.
pub(crate) const OWNERS: &[SeedOwner] = &[
    owner(
        "George",
        "Franklin",
        "110 W. Liberty St.",
        "Madison",
        "6085551023",
        &[pet("Leo", "2010-09-07", 1, &[])],
    ),
    owner(
        "Betty",
        "Davis",
        "638 Cardinal Ave.",
        "Sun Prairie",
        "6085551749",
        &[pet("Basil", "2012-08-06", 6, &[])],
    ),
    owner(
        "Eduardo",
        "Rodriquez",
        "2693 Commerce St.",
        "McFarland",
        "6085558763",
        &[
            pet("Rosy", "2011-04-17", 2, &[]),
            pet("Jewel", "2010-03-07", 2, &[]),
        ],
    ),
    owner(
        "Harold",
        "Davis",
        "563 Friendly St.",
        "Windsor",
        "6085553198",
        &[pet("Iggy", "2010-11-30", 3, &[])],
    ),
    owner(
        "Peter",
        "McTavish",
        "2387 S. Fair Way",
        "Madison",
        "6085552765",
        &[pet("George", "2010-01-20", 4, &[])],
    ),
    owner(
        "Jean",
        "Coleman",
        "105 N. Lake St.",
        "Monona",
        "6085552654",
        &[
            pet(
                "Samantha",
                "2012-09-04",
                1,
                &[("2013-01-01", "rabies shot"), ("2013-01-04", "spayed")],
            ),
            pet(
                "Max",
                "2012-09-04",
                1,
                &[("2013-01-02", "rabies shot"), ("2013-01-03", "neutered")],
            ),
        ],
    ),
    owner(
        "Jeff",
        "Black",
        "1450 Oak Blvd.",
        "Monona",
        "6085555387",
        &[pet("Lucky", "2011-08-06", 5, &[])],
    ),
    owner(
        "Maria",
        "Escobito",
        "345 Maple St.",
        "Madison",
        "6085557683",
        &[pet("Mulligan", "2007-02-24", 2, &[])],
    ),
    owner(
        "David",
        "Schroeder",
        "2749 Blackhawk Trail",
        "Madison",
        "6085559435",
        &[pet("Freddy", "2010-03-09", 5, &[])],
    ),
    owner(
        "Carlos",
        "Estaban",
        "2335 Independence La.",
        "Waunakee",
        "6085555487",
        &[
            pet("Lucky", "2010-06-24", 2, &[]),
            pet("Sly", "2012-06-08", 1, &[]),
        ],
    ),
];
