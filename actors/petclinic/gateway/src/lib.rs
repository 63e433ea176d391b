//! `petclinic-gateway`: the HTTP entry of the petclinic demo. The HTTP server provider
//! (`wasmcloud:httpserver`) delivers every request as `HandleRequest`; the gateway routes
//! it ([`petclinic_model::route`]), checks and validates the JSON body, calls the domain
//! actors by call alias and turns their replies into HTTP responses. Requests outside
//! `/api` are forwarded unchanged to the UI actor (`petclinic/ui`).
//!
//! | route | calls |
//! |---|---|
//! | `GET /api/owners[?lastName=prefix]` | owners `ListOwners` |
//! | `POST /api/owners` | owners `CreateOwner` (201, `Location`) |
//! | `GET /api/owners/{ownerId}` | owners `GetOwner` (which asks visits) |
//! | `PUT /api/owners/{ownerId}` | owners `UpdateOwner` |
//! | `POST /api/owners/{ownerId}/pets` | owners `AddPet` (201, `Location`) |
//! | `GET /api/owners/{ownerId}/pets/{petId}` | owners `GetPet` |
//! | `PUT /api/owners/{ownerId}/pets/{petId}` | owners `UpdatePet` |
//! | `GET /api/owners/{ownerId}/pets/{petId}/visits` | owners `GetPet`, visits `ListVisits` |
//! | `POST /api/owners/{ownerId}/pets/{petId}/visits` | owners `GetPet`, visits `AddVisit` (201) |
//! | `GET /api/pettypes` | owners `ListPetTypes` |
//! | `GET /api/vets` | vets `ListVets` |
//! | `GET /api/specialties` | vets `ListSpecialties` |
//! | `GET /api/openapi.json` | none (embedded document) |
//! | anything outside `/api` | ui `HandleRequest` |
//!
//! Statuses: 400 for invalid input (`{"error", "field", "errors"}`: `errors` lists every
//! invalid path id, query parameter and body field, path ids first, then the body's in the
//! order of [`petclinic_model::validate`], and its first entry is `error`/`field`; the body
//! is validated before any id is looked up), 404 for unknown ids and unknown `/api` paths,
//! 405 with `Allow` for a wrong method, 413 for a body over [`MAX_BODY`], 415 for a
//! `Content-Type` that is not JSON, 503 when a domain actor or the store cannot be reached,
//! 500 for unreadable data.
//! Every API body is JSON, errors included.

use nimbus_actor::HostCall;
use petclinic_model::call::ActorClient;
use petclinic_model::codec::{decode, encode};
use petclinic_model::error::{FieldError, ServiceError, ServiceResult};
use petclinic_model::openapi;
use petclinic_model::ops::{self, OWNERS_ALIAS, UI_ALIAS, VETS_ALIAS, VISITS_ALIAS};
use petclinic_model::route::{self, Endpoint, RouteError};
use petclinic_model::serde_json::{self, Map, Value};
use petclinic_model::types::{Owner, Pet, PetType, Specialty, Vet, Visit};
use petclinic_model::validate;
use petclinic_model::wire::{OP_HANDLE_REQUEST, Request, RequestExt, Response, ResponseExt};

/// The largest request body the API reads (32 KiB: a valid owner, pet or visit is well
/// under 4 KiB even with every character escaped).
pub const MAX_BODY: usize = 32 * 1024;

const JSON: &str = "application/json";

/// An HTTP error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
struct HttpError {
    status: u16,
    /// What is wrong: the answer's `error` and `field`.
    first: FieldError,
    /// For a 400, the other broken rules, in order.
    more: Vec<FieldError>,
}

impl HttpError {
    fn new(status: u16, message: impl Into<String>) -> Self {
        HttpError {
            status,
            first: FieldError {
                field: None,
                message: message.into(),
            },
            more: Vec::new(),
        }
    }
}

impl From<ServiceError> for HttpError {
    fn from(e: ServiceError) -> Self {
        let mut errors = e.field_errors().into_iter();
        match errors.next() {
            Some(first) => HttpError {
                status: e.status(),
                first,
                more: errors.collect(),
            },
            None => HttpError::new(e.status(), e.message()),
        }
    }
}

/// The response to one HTTP request. Never fails: every problem is an HTTP status.
pub fn handle(host: &impl HostCall, request: &Request) -> Response {
    let endpoint = match route::resolve(&request.method, &request.path) {
        Ok(endpoint) => endpoint,
        Err(RouteError::MethodNotAllowed { allow }) => {
            let message = format!(
                "method {} is not allowed on {}; use {allow}",
                request.method, request.path
            );
            return error_response(host, &HttpError::new(405, message)).with_header("Allow", allow);
        }
        Err(e) => {
            let mut error = e
                .to_service_error()
                .unwrap_or_else(|| ServiceError::not_found("no such API endpoint"));
            if let RouteError::BadIds { endpoint, .. } = e {
                // The body's 400s too, so the answer lists every invalid field at once.
                if let Some(body_error) = body_problems(endpoint, request) {
                    error = error.and(body_error);
                }
            }
            return error_response(host, &error.into());
        }
    };
    match endpoint {
        Endpoint::Ui => forward_to_ui(host, request),
        Endpoint::OpenApi => api_response(200, openapi::DOCUMENT.as_bytes().to_vec()),
        _ => match call_api(host, endpoint, request) {
            Ok(response) => response,
            Err(e) => error_response(host, &e),
        },
    }
}

/// The API endpoints: validate, call the domain actors, shape the answer.
fn call_api(
    host: &impl HostCall,
    endpoint: Endpoint,
    request: &Request,
) -> Result<Response, HttpError> {
    let owners = ActorClient::new(host, OWNERS_ALIAS);
    let vets = ActorClient::new(host, VETS_ALIAS);
    let visits = ActorClient::new(host, VISITS_ALIAS);
    use ops::{owners as o, vets as v, visits as vi};
    match endpoint {
        Endpoint::ListOwners => {
            let last_name = route::query_param(&request.query_string, "lastName")?;
            let found: Vec<Owner> =
                owners.call(o::LIST_OWNERS, &ops::ListOwnersRequest { last_name })?;
            json_response(200, &found)
        }
        Endpoint::CreateOwner => {
            let owner = validate::owner_from_json(&json_body(request)?)?;
            let created: Owner =
                owners.call(o::CREATE_OWNER, &ops::CreateOwnerRequest { owner })?;
            let location = format!("/api/owners/{}", created.id);
            Ok(json_response(201, &created)?.with_header("Location", &location))
        }
        Endpoint::GetOwner(owner_id) => {
            let owner: Owner = owners.call(o::GET_OWNER, &ops::OwnerRequest { owner_id })?;
            json_response(200, &owner)
        }
        Endpoint::UpdateOwner(owner_id) => {
            let owner = validate::owner_from_json(&json_body(request)?)?;
            let request = ops::UpdateOwnerRequest { owner_id, owner };
            let updated: Owner = owners.call(o::UPDATE_OWNER, &request)?;
            json_response(200, &updated)
        }
        Endpoint::AddPet(owner_id) => {
            let pet = validate::pet_from_json(&json_body(request)?)?;
            let added: Pet = owners.call(o::ADD_PET, &ops::AddPetRequest { owner_id, pet })?;
            let location = format!("/api/owners/{owner_id}/pets/{}", added.id);
            Ok(json_response(201, &added)?.with_header("Location", &location))
        }
        Endpoint::GetPet(owner_id, pet_id) => {
            let pet: Pet = owners.call(o::GET_PET, &ops::PetRequest { owner_id, pet_id })?;
            json_response(200, &pet)
        }
        Endpoint::UpdatePet(owner_id, pet_id) => {
            let pet = validate::pet_from_json(&json_body(request)?)?;
            let request = ops::UpdatePetRequest {
                owner_id,
                pet_id,
                pet,
            };
            let updated: Pet = owners.call(o::UPDATE_PET, &request)?;
            json_response(200, &updated)
        }
        Endpoint::ListVisits(owner_id, pet_id) => {
            let _: Pet = owners.call(o::GET_PET, &ops::PetRequest { owner_id, pet_id })?;
            let request = ops::ListVisitsRequest {
                pet_ids: vec![pet_id],
            };
            let found: Vec<Visit> = visits.call(vi::LIST_VISITS, &request)?;
            json_response(200, &found)
        }
        Endpoint::AddVisit(owner_id, pet_id) => {
            let visit = validate::visit_from_json(&json_body(request)?)?;
            // The visits actor trusts its callers; this is where the pet is checked.
            let _: Pet = owners.call(o::GET_PET, &ops::PetRequest { owner_id, pet_id })?;
            let added: Visit =
                visits.call(vi::ADD_VISIT, &ops::AddVisitRequest { pet_id, visit })?;
            json_response(201, &added)
        }
        Endpoint::ListPetTypes => {
            let types: Vec<PetType> = owners.call(o::LIST_PET_TYPES, &ops::Empty {})?;
            json_response(200, &types)
        }
        Endpoint::ListVets => {
            let all: Vec<Vet> = vets.call(v::LIST_VETS, &ops::Empty {})?;
            json_response(200, &all)
        }
        Endpoint::ListSpecialties => {
            let all: Vec<Specialty> = vets.call(v::LIST_SPECIALTIES, &ops::Empty {})?;
            json_response(200, &all)
        }
        Endpoint::OpenApi | Endpoint::Ui => Err(HttpError::new(
            500,
            format!("{} is not an API call", endpoint.operation_id()),
        )),
    }
}

/// The 400 of the body of a request to `endpoint` whose path is already refused, or
/// nothing: when the endpoint takes no body, the body is valid, or it is too large or not
/// JSON by its `Content-Type` (413 and 415 are answered once the path is right).
fn body_problems(endpoint: Endpoint, request: &Request) -> Option<ServiceError> {
    let check: fn(&Value) -> ServiceResult<()> = match endpoint {
        Endpoint::CreateOwner | Endpoint::UpdateOwner(_) => {
            |body| validate::owner_from_json(body).map(drop)
        }
        Endpoint::AddPet(_) | Endpoint::UpdatePet(..) => {
            |body| validate::pet_from_json(body).map(drop)
        }
        Endpoint::AddVisit(..) => |body| validate::visit_from_json(body).map(drop),
        _ => return None,
    };
    body_acceptable(request).ok()?;
    parse_json(request).and_then(|body| check(&body)).err()
}

/// The request body as JSON: acceptable ([`body_acceptable`]), present and well-formed
/// (400).
fn json_body(request: &Request) -> Result<Value, HttpError> {
    body_acceptable(request)?;
    Ok(parse_json(request)?)
}

/// Whether the body may be read: at most [`MAX_BODY`] bytes (413), a JSON `Content-Type`
/// if one is given (415).
fn body_acceptable(request: &Request) -> Result<(), HttpError> {
    if request.body.len() > MAX_BODY {
        return Err(HttpError::new(
            413,
            format!(
                "request body is {} bytes; the limit is {MAX_BODY}",
                request.body.len()
            ),
        ));
    }
    if let Some(content_type) = request.header("content-type") {
        let media = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if media != JSON && !media.ends_with("+json") {
            return Err(HttpError::new(
                415,
                format!("Content-Type must be {JSON}, not {content_type}"),
            ));
        }
    }
    Ok(())
}

/// The body parsed: present and well-formed JSON (400 otherwise).
fn parse_json(request: &Request) -> ServiceResult<Value> {
    if request.body.iter().all(u8::is_ascii_whitespace) {
        return Err(ServiceError::invalid_request(
            "a JSON request body is required",
        ));
    }
    serde_json::from_slice(&request.body)
        .map_err(|e| ServiceError::invalid_request(format!("request body is not valid JSON: {e}")))
}

fn json_response<T: petclinic_model::serde::Serialize>(
    status: u16,
    value: &T,
) -> Result<Response, HttpError> {
    let body = serde_json::to_vec(value)
        .map_err(|e| HttpError::new(500, format!("cannot encode the response: {e}")))?;
    Ok(api_response(status, body))
}

fn api_response(status: u16, body: Vec<u8>) -> Response {
    Response::new(status, JSON, body)
        .with_header("Cache-Control", "no-store")
        .with_header("X-Content-Type-Options", "nosniff")
}

/// `{"error": ..., "field": ...}` with the error's status, and for a 400
/// `"errors": [{"error", "field"}, ...]`, every broken rule in order (the first is the
/// top-level pair); server-side failures are also logged.
fn error_response(host: &impl HostCall, e: &HttpError) -> Response {
    if e.status >= 500 {
        host.console_log(&format!(
            "petclinic/gateway: {} {}",
            e.status, e.first.message
        ));
    }
    let mut body = error_entry(&e.first);
    if e.status == 400 {
        let all = std::iter::once(&e.first).chain(&e.more);
        let entries = all.map(|entry| Value::Object(error_entry(entry))).collect();
        body.insert("errors".into(), Value::Array(entries));
    }
    api_response(e.status, Value::Object(body).to_string().into_bytes())
}

/// `{"error": message, "field"?: field}`.
fn error_entry(e: &FieldError) -> Map<String, Value> {
    let mut entry = Map::new();
    entry.insert("error".into(), Value::String(e.message.clone()));
    if let Some(field) = &e.field {
        entry.insert("field".into(), Value::String(field.clone()));
    }
    entry
}

/// Hands a non-API request to the UI actor and returns its answer as is.
fn forward_to_ui(host: &impl HostCall, request: &Request) -> Response {
    let failed = |status: u16, message: String| {
        host.console_log(&format!("petclinic/gateway: {message}"));
        Response::new(status, "text/plain; charset=utf-8", message.into_bytes())
    };
    let payload = match encode(request) {
        Ok(payload) => payload,
        Err(e) => return failed(500, e),
    };
    match host.host_call("", UI_ALIAS, OP_HANDLE_REQUEST, &payload) {
        Ok(reply) => {
            decode::<Response>("the UI actor's response", &reply).unwrap_or_else(|e| failed(502, e))
        }
        Err(e) => failed(503, format!("the web app ({UI_ALIAS}) is unavailable: {e}")),
    }
}

/// Runs operation `operation` (only `HandleRequest`) on a msgpack `Request`: the bytes the
/// generated `Handlers` decode in the actor, for native tests that route calls by alias.
pub fn dispatch(host: &impl HostCall, operation: &str, payload: &[u8]) -> Result<Vec<u8>, String> {
    if operation != OP_HANDLE_REQUEST {
        return Err(format!("unknown operation: {operation}"));
    }
    let request: Request = decode("HttpRequest", payload)?;
    encode(&handle(host, &request))
}

/// The waPC exports (wasm32 only).
#[cfg(target_arch = "wasm32")]
mod guest {
    use nimbus_actor::{HandlerResult, WapcHost};
    use petclinic_model::wire::{Handlers, Request, Response};

    fn handle_request(request: Request) -> HandlerResult<Response> {
        Ok(crate::handle(&WapcHost, &request))
    }

    /// Registers the operation; called once by the host after instantiation.
    #[allow(unsafe_code)]
    // SAFETY: `wapc_init` is the waPC init export; nothing else in the module defines it.
    #[unsafe(no_mangle)]
    pub extern "C" fn wapc_init() {
        Handlers::register_handle_request(handle_request);
    }
}
