//! End-to-end tests of the petclinic REST API, natively: the gateway and the real owners,
//! vets, visits and UI actors, each with its own in-memory key-value store, wired together
//! by call alias the way a host routes them. Requests and replies cross every hop as the
//! same bytes a host would move (msgpack for HTTP, JSON between actors).

// Helpers outside #[test] functions fail the test on unexpected input, like the tests.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use petclinic_model::codec::{decode, encode};
use petclinic_model::ops::{OWNERS_ALIAS, UI_ALIAS, VETS_ALIAS, VISITS_ALIAS};
use petclinic_model::serde_json::{self, Value, json};
use petclinic_model::testing::{Entry, TestHost};
use petclinic_model::wire::{Request, Response};

/// The five actors of the app, each with its own host.
struct App {
    gateway: Rc<TestHost>,
    owners: Rc<TestHost>,
    vets: Rc<TestHost>,
    visits: Rc<TestHost>,
}

/// An HTTP answer, decoded.
struct Answer {
    status: u32,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    fn text(&self) -> String {
        String::from_utf8(self.body.clone()).unwrap()
    }

    /// Asserts a JSON error with `status` and `field` (a 400 lists it as the first of its
    /// `errors`; other statuses have no list); returns the message.
    fn error(&self, status: u32, field: Option<&str>) -> String {
        assert_eq!(self.status, status, "{}", self.text());
        let message = self.json()["error"].as_str().unwrap().to_string();
        if status == 400 {
            let first = (field.map(String::from), message.clone());
            assert_eq!(self.errors()[0], first);
        } else {
            assert!(self.json().get("errors").is_none(), "{}", self.text());
        }
        assert_eq!(self.json().get("field").and_then(Value::as_str), field);
        message
    }

    /// Asserts a JSON 400; its `errors` as (field, error), checking that the first entry
    /// is the top-level `error` and `field` and that entries have nothing else.
    fn errors(&self) -> Vec<(Option<String>, String)> {
        assert_eq!(self.status, 400, "{}", self.text());
        assert_eq!(self.headers["Content-Type"], "application/json");
        let body = self.json();
        let entries = body["errors"].as_array().unwrap();
        assert!(!entries.is_empty(), "{body}");
        let mut first = body.as_object().unwrap().clone();
        first.remove("errors");
        assert_eq!(entries[0], Value::Object(first), "{body}");
        entries
            .iter()
            .map(|e| {
                let keys = e.as_object().unwrap().keys();
                assert!(
                    keys.into_iter().all(|k| k == "error" || k == "field"),
                    "{e}"
                );
                let field = e.get("field").map(|f| f.as_str().unwrap().to_string());
                (field, e["error"].as_str().unwrap().to_string())
            })
            .collect()
    }

    /// The fields `errors` names, in order (`-` for an entry without one).
    fn error_fields(&self) -> Vec<String> {
        self.errors()
            .into_iter()
            .map(|(field, _)| field.unwrap_or_else(|| "-".into()))
            .collect()
    }
}

impl App {
    fn new() -> Self {
        let app = App {
            gateway: Rc::new(TestHost::new()),
            owners: Rc::new(TestHost::new()),
            vets: Rc::new(TestHost::new()),
            visits: Rc::new(TestHost::new()),
        };
        let visits = app.visits.clone();
        let route_visits = move |op: &str, p: &[u8]| petclinic_visits::dispatch(&*visits, op, p);
        app.owners.route(VISITS_ALIAS, route_visits.clone());
        app.gateway.route(VISITS_ALIAS, route_visits);

        let owners = app.owners.clone();
        app.gateway.route(OWNERS_ALIAS, move |op, p| {
            petclinic_owners::dispatch(&*owners, op, p)
        });
        let vets = app.vets.clone();
        app.gateway.route(VETS_ALIAS, move |op, p| {
            petclinic_vets::dispatch(&*vets, op, p)
        });
        app.gateway.route(UI_ALIAS, petclinic_ui::dispatch);
        app
    }

    /// One HTTP request through the gateway's waPC entry point.
    fn send(&self, method: &str, uri: &str, content_type: Option<&str>, body: &[u8]) -> Answer {
        let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
        let mut header = HashMap::new();
        if let Some(ct) = content_type {
            header.insert("content-type".to_string(), ct.to_string());
        }
        let request = Request {
            method: method.into(),
            path: path.into(),
            query_string: query.into(),
            header,
            body: body.to_vec(),
        };
        let reply = petclinic_gateway::dispatch(
            &*self.gateway,
            "HandleRequest",
            &encode(&request).unwrap(),
        )
        .unwrap();
        let response: Response = decode("Response", &reply).unwrap();
        Answer {
            status: response.status_code,
            headers: response.header.into_iter().collect(),
            body: response.body,
        }
    }

    fn get(&self, uri: &str) -> Answer {
        self.send("GET", uri, None, b"")
    }

    fn post(&self, uri: &str, body: &Value) -> Answer {
        self.send(
            "POST",
            uri,
            Some("application/json"),
            body.to_string().as_bytes(),
        )
    }

    fn put(&self, uri: &str, body: &Value) -> Answer {
        self.send(
            "PUT",
            uri,
            Some("application/json"),
            body.to_string().as_bytes(),
        )
    }

    /// Everything every actor has stored.
    fn stores(&self) -> Vec<BTreeMap<String, Entry>> {
        [&self.owners, &self.vets, &self.visits]
            .iter()
            .map(|h| h.kv.snapshot())
            .collect()
    }
}

fn owner_body() -> Value {
    json!({"firstName": "Ada", "lastName": "Lovelace", "address": "12 St James's Sq.",
           "city": "London", "telephone": "0201234567"})
}

fn pet_body() -> Value {
    json!({"name": "Babbage", "birthDate": "2021-03-04", "type": {"id": 2}})
}

fn visit_body() -> Value {
    json!({"date": "2024-05-06", "description": "annual checkup"})
}

/// Creates an owner with one pet; (owner id, pet id).
fn owner_with_pet(app: &App) -> (u64, u64) {
    let owner = app.post("/api/owners", &owner_body());
    assert_eq!(owner.status, 201, "{}", owner.text());
    let owner_id = owner.json()["id"].as_u64().unwrap();
    let pet = app.post(&format!("/api/owners/{owner_id}/pets"), &pet_body());
    assert_eq!(pet.status, 201, "{}", pet.text());
    (owner_id, pet.json()["id"].as_u64().unwrap())
}

#[test]
fn seed_data_is_served_on_first_start() {
    let app = App::new();
    let owners = app.get("/api/owners");
    assert_eq!(owners.status, 200);
    assert_eq!(owners.headers["Content-Type"], "application/json");
    let owners = owners.json();
    assert_eq!(owners.as_array().unwrap().len(), 10);
    assert_eq!(owners[0]["firstName"], "George");
    assert_eq!(owners[0]["pets"][0]["name"], "Leo");
    assert_eq!(
        owners[0]["pets"][0]["type"],
        json!({"id": 1, "name": "cat"})
    );

    let vets = app.get("/api/vets").json();
    assert_eq!(vets.as_array().unwrap().len(), 6);
    assert_eq!(vets[1]["lastName"], "Douglas");
    assert_eq!(
        vets[1]["specialties"],
        json!([{"id": 3, "name": "dentistry"}, {"id": 2, "name": "surgery"}])
    );
    let types = app.get("/api/pettypes").json();
    assert_eq!(types.as_array().unwrap().len(), 6);
    assert_eq!(types[0], json!({"id": 5, "name": "bird"}));
    let specialties = app.get("/api/specialties").json();
    assert_eq!(specialties.as_array().unwrap().len(), 3);

    // The seed visits went through the visits actor and show in the owner's details.
    let coleman = app.get("/api/owners/6").json();
    assert_eq!(coleman["lastName"], "Coleman");
    let max = &coleman["pets"][0];
    assert_eq!(max["name"], "Max");
    let dates: Vec<&str> = max["visits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["date"].as_str().unwrap())
        .collect();
    assert_eq!(dates, ["2013-01-02", "2013-01-03"]);
}

#[test]
fn owners_are_searched_by_last_name_prefix() {
    let app = App::new();
    let names = |uri: &str| -> Vec<String> {
        let a = app.get(uri);
        assert_eq!(a.status, 200, "{uri}: {}", a.text());
        a.json()
            .as_array()
            .unwrap()
            .iter()
            .map(|o| {
                format!(
                    "{} {}",
                    o["firstName"].as_str().unwrap(),
                    o["lastName"].as_str().unwrap()
                )
            })
            .collect()
    };
    assert_eq!(
        names("/api/owners?lastName=Davis"),
        ["Betty Davis", "Harold Davis"]
    );
    assert_eq!(
        names("/api/owners?lastName=da"),
        ["Betty Davis", "Harold Davis"]
    );
    assert_eq!(names("/api/owners?lastName=Mc"), ["Peter McTavish"]);
    assert_eq!(names("/api/owners?lastName=Franklin+"), ["George Franklin"]);
    assert!(names("/api/owners?lastName=Nobody").is_empty());
    assert_eq!(names("/api/owners?lastName=").len(), 10);
    assert_eq!(names("/api/owners?other=1").len(), 10);
    let e = app.get("/api/owners?lastName=%E0%A4");
    e.error(400, Some("lastName"));
}

#[test]
fn owners_are_created_read_and_updated() {
    let app = App::new();
    let created = app.post("/api/owners", &owner_body());
    assert_eq!(created.status, 201, "{}", created.text());
    let owner = created.json();
    let id = owner["id"].as_u64().unwrap();
    assert_eq!(id, 11, "after the ten seed owners");
    assert_eq!(created.headers["Location"], format!("/api/owners/{id}"));
    assert_eq!(owner["pets"], json!([]));

    let read = app.get(&format!("/api/owners/{id}"));
    assert_eq!(read.status, 200);
    assert_eq!(read.json(), owner);

    let mut changed = owner_body();
    changed["lastName"] = json!("King");
    changed["city"] = json!("Ockham");
    let updated = app.put(&format!("/api/owners/{id}"), &changed);
    assert_eq!(updated.status, 200, "{}", updated.text());
    assert_eq!(updated.json()["lastName"], "King");
    assert_eq!(
        app.get(&format!("/api/owners/{id}")).json()["city"],
        "Ockham"
    );
    let found = app.get("/api/owners?lastName=king").json();
    assert_eq!(found.as_array().unwrap().len(), 1);
    assert_eq!(found[0]["id"], id);
    assert!(
        app.get("/api/owners?lastName=Lovelace")
            .json()
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn pets_and_visits_flow() {
    let app = App::new();
    let (owner_id, pet_id) = owner_with_pet(&app);
    let pet_uri = format!("/api/owners/{owner_id}/pets/{pet_id}");

    let pet = app.get(&pet_uri);
    assert_eq!(pet.status, 200);
    assert_eq!(
        pet.json(),
        json!({"id": pet_id, "name": "Babbage", "birthDate": "2021-03-04",
               "type": {"id": 2, "name": "dog"}, "ownerId": owner_id})
    );

    let updated = app.put(
        &pet_uri,
        &json!({"name": "Charles", "birthDate": "2021-03-05", "type": {"id": 1, "name": "cat"}}),
    );
    assert_eq!(updated.status, 200, "{}", updated.text());
    assert_eq!(updated.json()["type"]["name"], "cat");

    let visits_uri = format!("{pet_uri}/visits");
    assert_eq!(app.get(&visits_uri).json(), json!([]));
    let added = app.post(&visits_uri, &visit_body());
    assert_eq!(added.status, 201, "{}", added.text());
    let visit = added.json();
    assert_eq!(visit["petId"], pet_id);
    assert_eq!(visit["description"], "annual checkup");
    app.post(
        &visits_uri,
        &json!({"date": "2023-01-01", "description": "first"}),
    );
    let listed = app.get(&visits_uri).json();
    let descriptions: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["description"].as_str().unwrap())
        .collect();
    assert_eq!(descriptions, ["first", "annual checkup"]);

    let owner = app.get(&format!("/api/owners/{owner_id}")).json();
    assert_eq!(owner["pets"][0]["name"], "Charles");
    assert_eq!(owner["pets"][0]["visits"].as_array().unwrap().len(), 2);
    // Lists show pets without visits.
    let listed = app.get("/api/owners?lastName=Lovelace").json();
    assert!(listed[0]["pets"][0].get("visits").is_none());
}

#[test]
fn every_owner_field_is_validated() {
    let app = App::new();
    let before = app.stores();
    for field in ["firstName", "lastName", "address", "city", "telephone"] {
        let mut missing = owner_body();
        missing.as_object_mut().unwrap().remove(field);
        let message = app.post("/api/owners", &missing).error(400, Some(field));
        assert_eq!(message, format!("{field} is required"));
        for wrong in [
            json!(1),
            json!(null),
            json!([]),
            json!({}),
            json!(""),
            json!(" "),
        ] {
            let mut body = owner_body();
            body[field] = wrong;
            let answer = app.post("/api/owners", &body);
            answer.error(400, Some(field));
            assert_eq!(answer.errors().len(), 1, "one bad field, one entry");
            app.put("/api/owners/1", &body).error(400, Some(field));
        }
    }
    let mut long = owner_body();
    long["firstName"] = json!("x".repeat(31));
    app.post("/api/owners", &long).error(400, Some("firstName"));
    let mut phone = owner_body();
    phone["telephone"] = json!("1234567890123");
    app.post("/api/owners", &phone)
        .error(400, Some("telephone"));
    phone["telephone"] = json!("555-1234");
    app.post("/api/owners", &phone)
        .error(400, Some("telephone"));
    assert_eq!(app.stores(), before, "no invalid request stored anything");
}

#[test]
fn pet_and_visit_fields_are_validated() {
    let app = App::new();
    let (owner_id, pet_id) = owner_with_pet(&app);
    let before = app.stores();
    let pets = format!("/api/owners/{owner_id}/pets");
    let pet_uri = format!("{pets}/{pet_id}");
    for (field, value) in [
        ("name", json!(null)),
        ("name", json!(5)),
        ("birthDate", json!("2021-02-29")),
        ("birthDate", json!("04/03/2021")),
        ("birthDate", json!(null)),
        ("type", json!(null)),
        ("type", json!("dog")),
        ("type", json!({"id": "2"})),
        ("type", json!({"id": 99})),
    ] {
        let mut body = pet_body();
        body[field] = value.clone();
        // (Adding type 99 also lists the name Babbage the owner already uses, after it.)
        app.post(&pets, &body).error(400, Some(field));
        app.put(&pet_uri, &body).error(400, Some(field));
    }
    // The seed owner 1 already has a pet named Leo (case-insensitive).
    let mut leo = pet_body();
    leo["name"] = json!("leo");
    app.post("/api/owners/1/pets", &leo)
        .error(400, Some("name"));

    let visits = format!("{pet_uri}/visits");
    for (field, value) in [
        ("date", json!(null)),
        ("date", json!("2024-13-01")),
        ("date", json!(20240101)),
        ("description", json!(null)),
        ("description", json!("")),
        ("description", json!("d".repeat(256))),
    ] {
        let mut body = visit_body();
        body[field] = value.clone();
        app.post(&visits, &body).error(400, Some(field));
    }
    assert_eq!(app.stores(), before);
}

#[test]
fn a_400_lists_every_invalid_field_at_once() {
    let app = App::new();
    let (owner_id, pet_id) = owner_with_pet(&app);
    let before = app.stores();

    // Owner: three bad fields, create and update alike, in schema order (value rules; a
    // missing field or wrong JSON type would be listed before them).
    let body = json!({"telephone": "12-34", "lastName": "", "firstName": " ",
                      "address": "1 Road", "city": "Town"});
    for answer in [
        app.post("/api/owners", &body),
        app.put(&format!("/api/owners/{owner_id}"), &body),
    ] {
        assert_eq!(
            answer.errors(),
            [
                (
                    Some("firstName".into()),
                    "firstName must not be blank".into()
                ),
                (Some("lastName".into()), "lastName must not be blank".into()),
                (
                    Some("telephone".into()),
                    "telephone must be 1 to 12 digits".into()
                ),
            ]
        );
        // Today's first-error fields are still there, and are the first entry.
        assert_eq!(answer.json()["field"], "firstName");
        assert_eq!(answer.json()["error"], "firstName must not be blank");
    }
    assert_eq!(
        app.post("/api/owners", &json!({})).error_fields(),
        ["firstName", "lastName", "address", "city", "telephone"]
    );
    let mixed = json!({"firstName": "", "lastName": "Lee", "address": 7, "city": "Town",
                       "telephone": "1"});
    assert_eq!(
        app.post("/api/owners", &mixed).error_fields(),
        ["address", "firstName"]
    );

    // Pet and visit bodies.
    let pets = format!("/api/owners/{owner_id}/pets");
    let bad_pet = json!({"name": 5, "birthDate": "2021-02-29", "type": {"id": 0}});
    // The name's and the type's JSON shape are checked before the date's value.
    assert_eq!(
        app.post(&pets, &bad_pet).error_fields(),
        ["name", "type", "birthDate"]
    );
    let visits = format!("{pets}/{pet_id}/visits");
    let bad_visit = json!({"description": "", "date": "tomorrow"});
    assert_eq!(
        app.post(&visits, &bad_visit).error_fields(),
        ["date", "description"]
    );

    // Stored-data checks of the owners actor: a taken name and an unknown type together.
    let answer = app.post(
        &pets,
        &json!({"name": "BABBAGE", "birthDate": "2021-01-01",
                                         "type": {"id": 99}}),
    );
    assert_eq!(answer.error_fields(), ["type", "name"]);
    assert_eq!(answer.json()["field"], "type");

    // Malformed path ids, in path order, then the body's fields.
    assert_eq!(
        app.get("/api/owners/x/pets/y").error_fields(),
        ["ownerId", "petId"]
    );
    assert_eq!(
        app.put("/api/owners/x/pets/y", &bad_pet).error_fields(),
        ["ownerId", "petId", "name", "type", "birthDate"]
    );
    assert_eq!(
        app.post("/api/owners/1/pets/y/visits", &bad_visit)
            .error_fields(),
        ["petId", "date", "description"]
    );
    assert_eq!(
        app.send("PUT", "/api/owners/x", Some("application/json"), b"[1]")
            .errors(),
        [
            (
                Some("ownerId".into()),
                "ownerId must be a positive integer".into()
            ),
            (None, "request body must be a JSON object".into()),
        ]
    );
    // A body that cannot be read yet (wrong Content-Type) leaves the path's 400 alone.
    let answer = app.send("PUT", "/api/owners/x", Some("text/plain"), b"{}");
    assert_eq!(
        answer.error(400, Some("ownerId")),
        "ownerId must be a positive integer"
    );
    assert_eq!(app.stores(), before, "no invalid request stored anything");
}

#[test]
fn bodies_must_be_small_json_objects() {
    let app = App::new();
    let before = app.stores();
    let owner = owner_body().to_string();
    for uri in [
        "/api/owners",
        "/api/owners/1/pets",
        "/api/owners/1/pets/1/visits",
    ] {
        let e = app.send("POST", uri, Some("application/json"), b"{\"firstName\": ");
        assert!(
            e.error(400, None)
                .starts_with("request body is not valid JSON")
        );
        let e = app.send("POST", uri, Some("application/json"), b"");
        assert_eq!(e.error(400, None), "a JSON request body is required");
        for not_object in ["[]", "\"x\"", "42", "null"] {
            let e = app.send("POST", uri, Some("application/json"), not_object.as_bytes());
            assert_eq!(e.error(400, None), "request body must be a JSON object");
        }
        let e = app.send("POST", uri, Some("text/plain"), owner.as_bytes());
        e.error(415, None);
        let e = app.send(
            "POST",
            uri,
            Some("application/x-www-form-urlencoded"),
            b"firstName=a",
        );
        e.error(415, None);
        let huge = format!(
            "{{\"firstName\": \"{}\"}}",
            "a".repeat(petclinic_gateway::MAX_BODY)
        );
        app.send("POST", uri, Some("application/json"), huge.as_bytes())
            .error(413, None);
        let deep = "[".repeat(10_000);
        app.send("POST", uri, Some("application/json"), deep.as_bytes())
            .error(400, None);
        let not_utf8 = [b'{', b'"', 0xff, b'"', b':', b'1', b'}'];
        app.send("POST", uri, Some("application/json"), &not_utf8)
            .error(400, None);
    }
    // JSON with a charset, or no Content-Type at all, is accepted.
    let a = app.send(
        "POST",
        "/api/owners",
        Some("application/json; charset=utf-8"),
        owner.as_bytes(),
    );
    assert_eq!(a.status, 201, "{}", a.text());
    let b = app.send("POST", "/api/owners", None, owner.as_bytes());
    assert_eq!(b.status, 201, "{}", b.text());
    assert_ne!(a.json()["id"], b.json()["id"]);
    assert_ne!(app.stores(), before);
}

#[test]
fn unknown_ids_are_404_and_malformed_ids_400() {
    let app = App::new();
    let (owner_id, pet_id) = owner_with_pet(&app);
    let before = app.stores();

    let message = app.get("/api/owners/999").error(404, None);
    assert_eq!(message, "owner 999 not found");
    app.put("/api/owners/999", &owner_body()).error(404, None);
    app.post("/api/owners/999/pets", &pet_body())
        .error(404, None);
    app.get("/api/owners/999/pets/1").error(404, None);
    app.get("/api/owners/0").error(404, None);
    app.get("/api/owners/99999999999").error(404, None);
    let message = app
        .get(&format!("/api/owners/{owner_id}/pets/999"))
        .error(404, None);
    assert_eq!(message, format!("pet 999 not found for owner {owner_id}"));
    app.put(&format!("/api/owners/{owner_id}/pets/999"), &pet_body())
        .error(404, None);
    app.get(&format!("/api/owners/{owner_id}/pets/999/visits"))
        .error(404, None);
    app.post(
        &format!("/api/owners/{owner_id}/pets/999/visits"),
        &visit_body(),
    )
    .error(404, None);
    // A pet exists only under its own owner.
    app.get(&format!("/api/owners/1/pets/{pet_id}"))
        .error(404, None);
    app.put(&format!("/api/owners/1/pets/{pet_id}"), &pet_body())
        .error(404, None);
    app.post(
        &format!("/api/owners/1/pets/{pet_id}/visits"),
        &visit_body(),
    )
    .error(404, None);

    app.get("/api/owners/abc").error(400, Some("ownerId"));
    app.get("/api/owners/1/pets/x1").error(400, Some("petId"));
    app.put("/api/owners/-5", &owner_body())
        .error(400, Some("ownerId"));
    assert_eq!(app.stores(), before);
}

#[test]
fn unknown_paths_and_methods() {
    let app = App::new();
    for uri in [
        "/api",
        "/api/",
        "/api/nope",
        "/api/owners/1/cats",
        "/api/vets/1",
    ] {
        let message = app.get(uri).error(404, None);
        assert_eq!(message, "no such API endpoint", "{uri}");
    }
    let a = app.send("DELETE", "/api/owners/1", None, b"");
    a.error(405, None);
    assert_eq!(a.headers["Allow"], "GET, PUT");
    let a = app.send("PATCH", "/api/owners", None, b"");
    a.error(405, None);
    assert_eq!(a.headers["Allow"], "GET, POST");
    let a = app.send("POST", "/api/vets", Some("application/json"), b"{}");
    assert_eq!(a.headers["Allow"], "GET");
    a.error(405, None);
}

#[test]
fn the_openapi_document_is_served() {
    let app = App::new();
    let a = app.get("/api/openapi.json");
    assert_eq!(a.status, 200);
    assert_eq!(a.headers["Content-Type"], "application/json");
    let doc = a.json();
    assert_eq!(doc["openapi"], "3.0.3");
    for route in petclinic_model::route::ROUTES {
        let op = &doc["paths"][route.path][route.method.to_lowercase()];
        assert_eq!(
            op["operationId"], route.operation_id,
            "{} {}",
            route.method, route.path
        );
    }
    // Serving the document needs no other actor.
    assert!(app.gateway.calls().is_empty());
}

#[test]
fn other_paths_are_the_web_app() {
    let app = App::new();
    let page = app.get("/");
    assert_eq!(page.status, 200);
    assert_eq!(page.headers["Content-Type"], "text/html; charset=utf-8");
    assert!(page.text().contains("id=\"search-last-name\""));
    let js = app.get("/app.js");
    assert_eq!(js.headers["Content-Type"], "text/javascript; charset=utf-8");
    assert_eq!(
        app.get("/app.css").headers["Content-Type"],
        "text/css; charset=utf-8"
    );
    assert_eq!(app.get("/nope").status, 404);
    assert_eq!(app.send("POST", "/", None, b"x").status, 405);
    // Only the UI actor was asked.
    assert!(
        app.gateway
            .calls()
            .iter()
            .all(|c| c.namespace == UI_ALIAS && c.binding.is_empty())
    );
}

#[test]
fn outages_are_503_with_a_json_reason() {
    let app = App::new();
    app.owners.set_kv_down(true);
    let message = app.get("/api/owners").error(503, None);
    assert!(message.contains("key-value"), "{message}");
    app.owners.set_kv_down(false);
    assert_eq!(app.get("/api/owners").status, 200);

    // The visits actor is gone: owner details need it, lists do not.
    let app = App::new();
    app.owners
        .route(VISITS_ALIAS, |_, _| Err("no responders".into()));
    assert_eq!(app.get("/api/owners").status, 200);
    let message = app.get("/api/owners/1").error(503, None);
    assert!(message.contains("petclinic/visits"), "{message}");

    // No actor at all behind the gateway.
    let lonely = TestHost::new();
    let request = Request {
        method: "GET".into(),
        path: "/api/vets".into(),
        ..Request::default()
    };
    let response = petclinic_gateway::handle(&lonely, &request);
    assert_eq!(response.status_code, 503);
    let request = Request {
        method: "GET".into(),
        path: "/".into(),
        ..Request::default()
    };
    let response = petclinic_gateway::handle(&lonely, &request);
    assert_eq!(response.status_code, 503);
    assert!(String::from_utf8_lossy(&response.body).contains("petclinic/ui"));
    assert!(
        lonely.logs().iter().any(|l| l.contains("503")),
        "{:?}",
        lonely.logs()
    );
}

#[test]
fn the_gateway_speaks_only_handle_request() {
    let host = TestHost::new();
    assert!(petclinic_gateway::dispatch(&host, "Other", &[]).is_err());
    assert!(petclinic_gateway::dispatch(&host, "HandleRequest", b"junk").is_err());
}
