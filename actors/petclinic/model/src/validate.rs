//! Validation of everything a client writes. The gateway turns request JSON into typed
//! inputs with the `*_from_json` functions (wrong JSON types are caught here, with the
//! field's name); the domain actors run `validated()` again on what they receive, so an
//! actor calling them directly cannot store bad data either.
//!
//! Every field is checked, and a 400 lists each field that breaks a rule, once (its first
//! broken rule), in the order the checks run: first every field's presence and JSON type,
//! in the order the fields are listed here (the order of the OpenAPI schemas), then the
//! rules below on the fields that passed, in the same order. The first entry is the error's
//! own `field` and `message`
//! ([`ServiceError::field_errors`](crate::error::ServiceError::field_errors)): the error a
//! client got when only the first failing field was reported.
//!
//! The fields and their rules, in order:
//! - owner: `firstName`, `lastName` (1-30 characters), `address` (1-255), `city` (1-80),
//!   `telephone` (1-12 ASCII digits); all strings, required.
//! - pet: `name` (1-30), `birthDate` (`YYYY-MM-DD`, a real calendar date, year 1900 or
//!   later; the actors have no clock, so "not in the future" is not checked), `type`
//!   (an object whose `id` is a positive integer; the owners actor checks it exists).
//! - visit: `date` (as `birthDate`), `description` (1-255, may span lines).
//!
//! Text is trimmed of surrounding whitespace before checking and storing; control
//! characters are refused (line breaks and tabs are allowed in a description). Unknown JSON
//! fields (`id`, `pets`, ...) are ignored. A body that is not a JSON object is one 400
//! without a field.

use serde_json::{Map, Value};

use crate::error::{FieldError, ServiceError, ServiceResult};
use crate::types::{Id, OwnerFields, PetFields, VisitFields};

/// Longest first name, last name and pet name, in characters.
pub const NAME_MAX: usize = 30;
/// Longest address.
pub const ADDRESS_MAX: usize = 255;
/// Longest city.
pub const CITY_MAX: usize = 80;
/// Most digits in a telephone number.
pub const TELEPHONE_MAX: usize = 12;
/// Longest visit description.
pub const DESCRIPTION_MAX: usize = 255;
/// Earliest year of a date.
pub const MIN_YEAR: u32 = 1900;

/// The owner fields in a request body.
pub fn owner_from_json(body: &Value) -> ServiceResult<OwnerFields> {
    let obj = object(body)?;
    let mut problems = Problems::default();
    let owner = OwnerFields {
        first_name: problems.string(obj, "firstName"),
        last_name: problems.string(obj, "lastName"),
        address: problems.string(obj, "address"),
        city: problems.string(obj, "city"),
        telephone: problems.string(obj, "telephone"),
    }
    .checked(&mut problems);
    problems.finish(owner)
}

/// The pet fields in a request body (`type` as `{"id": N}`; its `name` is ignored).
pub fn pet_from_json(body: &Value) -> ServiceResult<PetFields> {
    let obj = object(body)?;
    let mut problems = Problems::default();
    let pet = PetFields {
        name: problems.string(obj, "name"),
        birth_date: problems.string(obj, "birthDate"),
        type_id: problems.check("type", |field| type_ref(obj, field)),
    }
    .checked(&mut problems);
    problems.finish(pet)
}

/// The visit fields in a request body.
pub fn visit_from_json(body: &Value) -> ServiceResult<VisitFields> {
    let obj = object(body)?;
    let mut problems = Problems::default();
    let visit = VisitFields {
        date: problems.string(obj, "date"),
        description: problems.string(obj, "description"),
    }
    .checked(&mut problems);
    problems.finish(visit)
}

impl OwnerFields {
    /// The fields trimmed, or a 400 listing every field that breaks a rule.
    pub fn validated(self) -> ServiceResult<Self> {
        let mut problems = Problems::default();
        let owner = self.checked(&mut problems);
        problems.finish(owner)
    }

    /// The fields trimmed; each broken rule is recorded in `problems` (fields that already
    /// have an error there are not checked again).
    fn checked(self, problems: &mut Problems) -> Self {
        let p = problems;
        OwnerFields {
            first_name: p.check("firstName", |f| text(f, &self.first_name, NAME_MAX, false)),
            last_name: p.check("lastName", |f| text(f, &self.last_name, NAME_MAX, false)),
            address: p.check("address", |f| text(f, &self.address, ADDRESS_MAX, false)),
            city: p.check("city", |f| text(f, &self.city, CITY_MAX, false)),
            telephone: p.check("telephone", |f| telephone(f, &self.telephone)),
        }
    }
}

impl PetFields {
    /// The fields trimmed, or a 400 listing every field that breaks a rule.
    pub fn validated(self) -> ServiceResult<Self> {
        let mut problems = Problems::default();
        let pet = self.checked(&mut problems);
        problems.finish(pet)
    }

    /// As [`OwnerFields::checked`].
    fn checked(self, problems: &mut Problems) -> Self {
        let p = problems;
        PetFields {
            name: p.check("name", |f| text(f, &self.name, NAME_MAX, false)),
            birth_date: p.check("birthDate", |f| date(f, &self.birth_date)),
            type_id: p.check("type", |f| {
                if self.type_id == 0 || self.type_id > i32::MAX as u32 {
                    Err(type_id_error(f))
                } else {
                    Ok(self.type_id)
                }
            }),
        }
    }
}

impl VisitFields {
    /// The fields trimmed, or a 400 listing every field that breaks a rule.
    pub fn validated(self) -> ServiceResult<Self> {
        let mut problems = Problems::default();
        let visit = self.checked(&mut problems);
        problems.finish(visit)
    }

    /// As [`OwnerFields::checked`].
    fn checked(self, problems: &mut Problems) -> Self {
        let p = problems;
        VisitFields {
            date: p.check("date", |f| date(f, &self.date)),
            description: p.check("description", |f| {
                text(f, &self.description, DESCRIPTION_MAX, true)
            }),
        }
    }
}

/// The broken rules of one input, in the order they are found: at most one per field, the
/// first rule it breaks.
#[derive(Debug, Default)]
struct Problems(Vec<FieldError>);

impl Problems {
    /// What `rule` makes of `field`, or `T::default()` (a placeholder: the input is refused)
    /// once its error is recorded. A field that already has an error is not checked again.
    fn check<T: Default>(&mut self, field: &str, rule: impl FnOnce(&str) -> ServiceResult<T>) -> T {
        if self.0.iter().any(|e| e.field.as_deref() == Some(field)) {
            return T::default();
        }
        rule(field).unwrap_or_else(|e| {
            self.0.extend(e.field_errors());
            T::default()
        })
    }

    /// Required string field `name` of `obj` (see [`Self::check`]).
    fn string(&mut self, obj: &Map<String, Value>, name: &str) -> String {
        self.check(name, |field| string_field(obj, field))
    }

    /// `value` if no rule was broken, else a 400 listing the broken rules in order.
    fn finish<T>(self, value: T) -> ServiceResult<T> {
        match ServiceError::invalid_fields(self.0) {
            None => Ok(value),
            Some(e) => Err(e),
        }
    }
}

/// The body as a JSON object.
fn object(body: &Value) -> ServiceResult<&Map<String, Value>> {
    body.as_object()
        .ok_or_else(|| ServiceError::invalid_request("request body must be a JSON object"))
}

/// A required string field.
fn string_field(obj: &Map<String, Value>, name: &str) -> ServiceResult<String> {
    match obj.get(name) {
        None | Some(Value::Null) => Err(ServiceError::invalid(name, format!("{name} is required"))),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(ServiceError::invalid(
            name,
            format!("{name} must be a string"),
        )),
    }
}

/// The pet type id of a `{"id": N}` field.
fn type_ref(obj: &Map<String, Value>, field: &str) -> ServiceResult<Id> {
    match obj.get(field) {
        None | Some(Value::Null) => {
            Err(ServiceError::invalid(field, format!("{field} is required")))
        }
        Some(Value::Object(t)) => t
            .get("id")
            .and_then(positive_id)
            .ok_or_else(|| type_id_error(field)),
        Some(_) => Err(ServiceError::invalid(
            field,
            format!("{field} must be an object such as {{\"id\": 1}}"),
        )),
    }
}

fn type_id_error(field: &str) -> ServiceError {
    ServiceError::invalid(field, format!("{field}.id must be a positive integer"))
}

/// A JSON number that is a whole id in 1..=i32::MAX (ids come from an i32 KV counter).
fn positive_id(v: &Value) -> Option<Id> {
    v.as_u64()
        .filter(|n| (1..=i32::MAX as u64).contains(n))
        .and_then(|n| Id::try_from(n).ok())
}

/// `value` trimmed, if it is 1 to [`TELEPHONE_MAX`] ASCII digits.
fn telephone(field: &str, value: &str) -> ServiceResult<String> {
    let value = value.trim();
    if (1..=TELEPHONE_MAX).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_digit()) {
        Ok(value.to_string())
    } else {
        Err(ServiceError::invalid(
            field,
            format!("{field} must be 1 to {TELEPHONE_MAX} digits"),
        ))
    }
}

/// `value` trimmed, if it is 1..=`max` characters with no control characters (line breaks
/// and tabs allowed when `multiline`).
fn text(field: &str, value: &str, max: usize, multiline: bool) -> ServiceResult<String> {
    let value = value.trim();
    if value.is_empty() {
        return Err(ServiceError::invalid(
            field,
            format!("{field} must not be blank"),
        ));
    }
    if value.chars().count() > max {
        return Err(ServiceError::invalid(
            field,
            format!("{field} must be at most {max} characters"),
        ));
    }
    let allowed = |c: char| multiline && matches!(c, '\n' | '\r' | '\t');
    if value.chars().any(|c| c.is_control() && !allowed(c)) {
        return Err(ServiceError::invalid(
            field,
            format!("{field} must not contain control characters"),
        ));
    }
    Ok(value.to_string())
}

/// `value` trimmed, if it is a real `YYYY-MM-DD` date in year [`MIN_YEAR`] or later.
fn date(field: &str, value: &str) -> ServiceResult<String> {
    let value = value.trim();
    if is_valid_date(value) {
        Ok(value.to_string())
    } else {
        Err(ServiceError::invalid(
            field,
            format!("{field} must be a date YYYY-MM-DD (year {MIN_YEAR} or later)"),
        ))
    }
}

/// Whether `s` is exactly `YYYY-MM-DD`, a real calendar date, year >= [`MIN_YEAR`].
pub fn is_valid_date(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let number = |range: std::ops::Range<usize>| -> Option<u32> {
        let part = &b[range];
        part.iter()
            .all(u8::is_ascii_digit)
            .then(|| part.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0')))
    };
    let (Some(year), Some(month), Some(day)) = (number(0..4), number(5..7), number(8..10)) else {
        return false;
    };
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    year >= MIN_YEAR && (1..=days).contains(&day)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn owner_json() -> Value {
        json!({"firstName": "Ann", "lastName": "Lee", "address": "1 Road",
               "city": "Town", "telephone": "0123456789"})
    }

    fn field_of(e: ServiceError) -> String {
        assert_eq!(e.status(), 400, "{e}");
        e.field().unwrap_or("<none>").to_string()
    }

    #[test]
    fn a_good_owner_is_accepted_and_trimmed() {
        let mut body = owner_json();
        body["firstName"] = json!("  Ann ");
        body["id"] = json!(99); // ignored
        let owner = owner_from_json(&body).unwrap();
        assert_eq!(owner.first_name, "Ann");
        assert_eq!(owner.telephone, "0123456789");
    }

    #[test]
    fn every_owner_field_is_required_and_must_be_a_string() {
        for field in ["firstName", "lastName", "address", "city", "telephone"] {
            let mut missing = owner_json();
            missing.as_object_mut().unwrap().remove(field);
            let e = owner_from_json(&missing).unwrap_err();
            assert_eq!(e.message(), format!("{field} is required"));
            assert_eq!(field_of(e), field);

            for bad in [json!(5), json!(true), json!([]), json!({})] {
                let mut wrong = owner_json();
                wrong[field] = bad;
                let e = owner_from_json(&wrong).unwrap_err();
                assert_eq!(e.message(), format!("{field} must be a string"));
                assert_eq!(field_of(e), field);
            }

            let mut null = owner_json();
            null[field] = Value::Null;
            assert_eq!(field_of(owner_from_json(&null).unwrap_err()), field);

            let mut blank = owner_json();
            blank[field] = json!("   ");
            let e = owner_from_json(&blank).unwrap_err();
            assert_eq!(field_of(e), field);
        }
    }

    #[test]
    fn owner_lengths_are_limited() {
        for (field, max) in [
            ("firstName", NAME_MAX),
            ("lastName", NAME_MAX),
            ("address", ADDRESS_MAX),
            ("city", CITY_MAX),
        ] {
            let mut ok = owner_json();
            ok[field] = json!("é".repeat(max)); // characters, not bytes
            assert!(owner_from_json(&ok).is_ok(), "{field} at {max}");
            let mut long = owner_json();
            long[field] = json!("a".repeat(max + 1));
            let e = owner_from_json(&long).unwrap_err();
            assert!(e.message().contains("at most"), "{e}");
            assert_eq!(field_of(e), field);
        }
    }

    #[test]
    fn telephone_is_digits_only() {
        for good in ["1", "608555102312", " 6085551023 "] {
            let mut body = owner_json();
            body["telephone"] = json!(good);
            assert!(owner_from_json(&body).is_ok(), "{good}");
        }
        for bad in ["6085551023123", "608-555", "+4912", "12a", "１２"] {
            let mut body = owner_json();
            body["telephone"] = json!(bad);
            assert_eq!(
                field_of(owner_from_json(&body).unwrap_err()),
                "telephone",
                "{bad}"
            );
        }
        let mut body = owner_json();
        body["telephone"] = json!(6085551023u64);
        assert_eq!(field_of(owner_from_json(&body).unwrap_err()), "telephone");
    }

    #[test]
    fn control_characters_are_refused_except_line_breaks_in_descriptions() {
        let mut body = owner_json();
        body["city"] = json!("Mad\u{0}ison");
        assert_eq!(field_of(owner_from_json(&body).unwrap_err()), "city");
        body["city"] = json!("Mad\nison");
        assert_eq!(field_of(owner_from_json(&body).unwrap_err()), "city");
        let visit = visit_from_json(&json!({"date": "2020-01-01",
                                            "description": "line 1\nline 2"}))
        .unwrap();
        assert_eq!(visit.description, "line 1\nline 2");
        let e =
            visit_from_json(&json!({"date": "2020-01-01", "description": "a\u{7}"})).unwrap_err();
        assert_eq!(field_of(e), "description");
    }

    #[test]
    fn the_body_must_be_an_object() {
        for body in [json!([]), json!("x"), json!(1), Value::Null] {
            let e = owner_from_json(&body).unwrap_err();
            assert_eq!(e.status(), 400);
            assert_eq!(e.field(), None);
            assert!(pet_from_json(&body).is_err());
            assert!(visit_from_json(&body).is_err());
        }
    }

    #[test]
    fn pets_need_name_date_and_type() {
        let good = json!({"name": "Leo", "birthDate": "2010-09-07",
                          "type": {"id": 1, "name": "whatever"}});
        let pet = pet_from_json(&good).unwrap();
        assert_eq!(
            pet,
            PetFields {
                name: "Leo".into(),
                birth_date: "2010-09-07".into(),
                type_id: 1
            }
        );
        let cases = [
            ("name", json!(null)),
            ("name", json!(7)),
            ("name", json!("x".repeat(NAME_MAX + 1))),
            ("birthDate", json!(null)),
            ("birthDate", json!("2010-13-01")),
            ("birthDate", json!(20100907)),
            ("type", json!(null)),
            ("type", json!(1)),
            ("type", json!({})),
            ("type", json!({"id": "1"})),
            ("type", json!({"id": 0})),
            ("type", json!({"id": -1})),
            ("type", json!({"id": 1.5})),
            ("type", json!({"id": 3_000_000_000u64})),
        ];
        for (field, value) in cases {
            let mut body = good.clone();
            body[field] = value.clone();
            assert_eq!(
                field_of(pet_from_json(&body).unwrap_err()),
                field,
                "{field} = {value}"
            );
        }
    }

    #[test]
    fn visits_need_date_and_description() {
        let good = json!({"date": "2024-02-29", "description": "rabies shot"});
        assert!(visit_from_json(&good).is_ok());
        for (field, value) in [
            ("date", json!(null)),
            ("date", json!("2023-02-29")),
            ("date", json!(1)),
            ("description", json!(null)),
            ("description", json!("")),
            ("description", json!("d".repeat(DESCRIPTION_MAX + 1))),
            ("description", json!(["x"])),
        ] {
            let mut body = good.clone();
            body[field] = value.clone();
            assert_eq!(
                field_of(visit_from_json(&body).unwrap_err()),
                field,
                "{field} = {value}"
            );
        }
    }

    #[test]
    fn dates_are_real_calendar_dates() {
        for good in [
            "2010-09-07",
            "2000-02-29",
            "2024-02-29",
            "1900-01-01",
            "2999-12-31",
        ] {
            assert!(is_valid_date(good), "{good}");
        }
        for bad in [
            "",
            "2010-9-07",
            "2010/09/07",
            "10-09-2010",
            "2010-09-07T00:00",
            "2010-00-10",
            "2010-13-10",
            "2010-01-00",
            "2010-01-32",
            "2010-04-31",
            "1900-02-29",
            "2023-02-29",
            "1899-12-31",
            "2010-0a-01",
            "+010-01-01",
            "２０１０-01-01",
        ] {
            assert!(!is_valid_date(bad), "{bad}");
        }
    }

    /// (field, message) of every entry of a 400, in order; asserts the first is also the
    /// error's own field and message.
    fn entries(e: &ServiceError) -> Vec<(String, String)> {
        assert_eq!(e.status(), 400, "{e}");
        let all = e.field_errors();
        assert_eq!(all[0].field.as_deref(), e.field(), "{e}");
        assert_eq!(all[0].message, e.message(), "{e}");
        all.into_iter()
            .map(|f| (f.field.unwrap_or_default(), f.message))
            .collect()
    }

    fn fields_of(e: &ServiceError) -> Vec<String> {
        entries(e).into_iter().map(|(field, _)| field).collect()
    }

    const OWNER_FIELDS: [&str; 5] = ["firstName", "lastName", "address", "city", "telephone"];

    #[test]
    fn every_invalid_owner_field_is_listed_in_order() {
        let mut body = owner_json();
        body["telephone"] = json!("12-34");
        body["lastName"] = json!("");
        body["firstName"] = json!("  ");
        let e = owner_from_json(&body).unwrap_err();
        assert_eq!(
            entries(&e),
            [
                ("firstName".into(), "firstName must not be blank".into()),
                ("lastName".into(), "lastName must not be blank".into()),
                (
                    "telephone".into(),
                    "telephone must be 1 to 12 digits".into()
                ),
            ]
        );
        assert_eq!(e.field(), Some("firstName"));

        // Missing fields and wrong JSON types come first (they were checked first when
        // only one error was reported), then broken rules; one entry per field, each group
        // in schema order whatever the order of the body's keys.
        let body = json!({"telephone": 5, "city": "x".repeat(CITY_MAX + 1),
                          "address": "1 Road", "firstName": "Ann\u{7}"});
        let e = owner_from_json(&body).unwrap_err();
        assert_eq!(
            entries(&e),
            [
                ("lastName".into(), "lastName is required".into()),
                ("telephone".into(), "telephone must be a string".into()),
                (
                    "firstName".into(),
                    "firstName must not contain control characters".into()
                ),
                ("city".into(), "city must be at most 80 characters".into()),
            ]
        );
        let e = owner_from_json(&json!({})).unwrap_err();
        assert_eq!(fields_of(&e), OWNER_FIELDS);
    }

    #[test]
    fn a_single_invalid_field_is_a_list_of_one() {
        let mut body = owner_json();
        body["city"] = json!("");
        let e = owner_from_json(&body).unwrap_err();
        assert_eq!(
            entries(&e),
            [("city".into(), "city must not be blank".into())]
        );
        assert_eq!(e.to_string(), "city must not be blank (field city)");
        let e = visit_from_json(&json!({"date": "2020-02-30", "description": "ok"})).unwrap_err();
        assert_eq!(fields_of(&e), ["date"]);
        // A body that is not an object is one error without a field.
        let e = owner_from_json(&json!([])).unwrap_err();
        assert_eq!(
            entries(&e),
            [(String::new(), "request body must be a JSON object".into())]
        );
    }

    #[test]
    fn valid_input_has_no_errors() {
        assert!(owner_from_json(&owner_json()).is_ok());
        assert!(
            pet_from_json(&json!({"name": "Leo", "birthDate": "2010-09-07", "type": {"id": 1}}))
                .is_ok()
        );
        assert!(visit_from_json(&json!({"date": "2020-01-01", "description": "x"})).is_ok());
        let owner = owner_from_json(&owner_json()).unwrap();
        assert_eq!(owner.clone().validated(), Ok(owner));
    }

    #[test]
    fn every_invalid_pet_and_visit_field_is_listed() {
        let e = pet_from_json(&json!({"name": "", "birthDate": "2010-02-30", "type": "cat"}))
            .unwrap_err();
        // The type's JSON shape is checked before the values of the name and the date.
        assert_eq!(
            entries(&e),
            [
                (
                    "type".into(),
                    "type must be an object such as {\"id\": 1}".into()
                ),
                ("name".into(), "name must not be blank".into()),
                (
                    "birthDate".into(),
                    "birthDate must be a date YYYY-MM-DD (year 1900 or later)".into()
                ),
            ]
        );
        let e = pet_from_json(&json!({"birthDate": 7, "type": {"id": 0}})).unwrap_err();
        assert_eq!(fields_of(&e), ["name", "birthDate", "type"]);
        let e =
            pet_from_json(&json!({"name": "", "birthDate": null, "type": {"id": 1}})).unwrap_err();
        assert_eq!(fields_of(&e), ["birthDate", "name"]);
        let e = pet_from_json(&json!({"name": "Leo", "birthDate": "x", "type": {}})).unwrap_err();
        assert_eq!(fields_of(&e), ["type", "birthDate"]);
        let e = visit_from_json(&json!({"description": ["x"], "date": "1899-12-31"})).unwrap_err();
        assert_eq!(
            entries(&e),
            [
                ("description".into(), "description must be a string".into()),
                (
                    "date".into(),
                    "date must be a date YYYY-MM-DD (year 1900 or later)".into()
                ),
            ]
        );
        let e = visit_from_json(&json!({"description": "", "date": "1899-12-31"})).unwrap_err();
        assert_eq!(fields_of(&e), ["date", "description"]);
    }

    #[test]
    fn validated_lists_every_invalid_typed_field() {
        let bad = OwnerFields {
            first_name: "".into(),
            last_name: "x".repeat(NAME_MAX + 1),
            address: "\u{0}".into(),
            city: " ".into(),
            telephone: "phone".into(),
        };
        assert_eq!(fields_of(&bad.validated().unwrap_err()), OWNER_FIELDS);
        let bad = PetFields {
            name: "Rex".into(),
            birth_date: "2010-1-1".into(),
            type_id: 0,
        };
        assert_eq!(
            fields_of(&bad.validated().unwrap_err()),
            ["birthDate", "type"]
        );
        let bad = VisitFields {
            date: "".into(),
            description: "".into(),
        };
        assert_eq!(
            fields_of(&bad.validated().unwrap_err()),
            ["date", "description"]
        );
    }

    #[test]
    fn validated_rechecks_typed_inputs() {
        // What a domain actor receives from another actor is checked again.
        let bad = OwnerFields {
            first_name: "A".into(),
            last_name: "".into(),
            address: "x".into(),
            city: "y".into(),
            telephone: "1".into(),
        };
        assert_eq!(field_of(bad.validated().unwrap_err()), "lastName");
        let bad = PetFields {
            name: "A".into(),
            birth_date: "2010-01-01".into(),
            type_id: 0,
        };
        assert_eq!(field_of(bad.validated().unwrap_err()), "type");
    }
}
