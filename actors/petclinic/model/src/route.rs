//! The REST routes of the gateway and the parser that maps a method and path to an
//! [`Endpoint`].
//!
//! - Paths under `/api` are the API; every other path belongs to the UI actor.
//! - One trailing `/` is ignored (`/api/owners/` is `/api/owners`); other empty segments
//!   (`/api/owners//pets`) match nothing.
//! - A known path with another method is 405 (with the allowed methods); an unknown path
//!   under `/api` is 404.
//! - Ids are decimal digits. Anything else in an id position is 400 naming every such
//!   parameter (`ownerId`, then `petId`); a well-formed id that no counter can have
//!   produced (0, or above `i32::MAX`) is 404, like any other id that does not exist
//!   (a malformed id is reported first).

use crate::error::{FieldError, ServiceError};
use crate::types::Id;

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `GET /api/owners[?lastName=prefix]`.
    ListOwners,
    /// `POST /api/owners`.
    CreateOwner,
    /// `GET /api/owners/{ownerId}`.
    GetOwner(Id),
    /// `PUT /api/owners/{ownerId}`.
    UpdateOwner(Id),
    /// `POST /api/owners/{ownerId}/pets`.
    AddPet(Id),
    /// `GET /api/owners/{ownerId}/pets/{petId}`.
    GetPet(Id, Id),
    /// `PUT /api/owners/{ownerId}/pets/{petId}`.
    UpdatePet(Id, Id),
    /// `GET /api/owners/{ownerId}/pets/{petId}/visits`.
    ListVisits(Id, Id),
    /// `POST /api/owners/{ownerId}/pets/{petId}/visits`.
    AddVisit(Id, Id),
    /// `GET /api/pettypes`.
    ListPetTypes,
    /// `GET /api/vets`.
    ListVets,
    /// `GET /api/specialties`.
    ListSpecialties,
    /// `GET /api/openapi.json`.
    OpenApi,
    /// Any path outside `/api`: the web app.
    Ui,
}

impl Endpoint {
    /// The OpenAPI `operationId` of the endpoint (`ui` for the web app).
    pub fn operation_id(self) -> &'static str {
        match self {
            Endpoint::ListOwners => "listOwners",
            Endpoint::CreateOwner => "createOwner",
            Endpoint::GetOwner(_) => "getOwner",
            Endpoint::UpdateOwner(_) => "updateOwner",
            Endpoint::AddPet(..) => "addPet",
            Endpoint::GetPet(..) => "getPet",
            Endpoint::UpdatePet(..) => "updatePet",
            Endpoint::ListVisits(..) => "listVisits",
            Endpoint::AddVisit(..) => "addVisit",
            Endpoint::ListPetTypes => "listPetTypes",
            Endpoint::ListVets => "listVets",
            Endpoint::ListSpecialties => "listSpecialties",
            Endpoint::OpenApi => "getOpenApi",
            Endpoint::Ui => "ui",
        }
    }
}

/// Why a request matches no endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    /// No such path under `/api` (404).
    NotFound,
    /// The path exists, the method does not (405); `allow` is the `Allow` header value.
    MethodNotAllowed {
        /// The allowed methods, comma separated.
        allow: &'static str,
    },
    /// Path parameters that are not ids (400).
    BadIds {
        /// The parameters, in path order (`ownerId`, `petId`).
        fields: Vec<&'static str>,
        /// The endpoint the request names, with 0 in place of each malformed id, so the
        /// rest of the request (its body) can still be checked.
        endpoint: Endpoint,
    },
    /// A path parameter is an id nothing can have (404).
    NoSuchId {
        /// `owner` or `pet`.
        what: &'static str,
        /// The id as written.
        id: String,
    },
}

impl RouteError {
    /// The error as the API reports it (`None` for 405, which has no service equivalent).
    pub fn to_service_error(&self) -> Option<ServiceError> {
        match self {
            RouteError::NotFound => Some(ServiceError::not_found("no such API endpoint")),
            RouteError::MethodNotAllowed { .. } => None,
            RouteError::BadIds { fields, .. } => ServiceError::invalid_fields(
                fields
                    .iter()
                    .map(|field| {
                        FieldError::new(field, format!("{field} must be a positive integer"))
                    })
                    .collect(),
            ),
            RouteError::NoSuchId { what, id } => {
                Some(ServiceError::not_found(format!("{what} {id} not found")))
            }
        }
    }
}

/// One row of the route table (documentation, the OpenAPI test, the README).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteInfo {
    /// The HTTP method.
    pub method: &'static str,
    /// The path template, OpenAPI style.
    pub path: &'static str,
    /// The OpenAPI `operationId`.
    pub operation_id: &'static str,
}

/// Every API route.
pub const ROUTES: &[RouteInfo] = &[
    route("GET", "/api/owners", "listOwners"),
    route("POST", "/api/owners", "createOwner"),
    route("GET", "/api/owners/{ownerId}", "getOwner"),
    route("PUT", "/api/owners/{ownerId}", "updateOwner"),
    route("POST", "/api/owners/{ownerId}/pets", "addPet"),
    route("GET", "/api/owners/{ownerId}/pets/{petId}", "getPet"),
    route("PUT", "/api/owners/{ownerId}/pets/{petId}", "updatePet"),
    route(
        "GET",
        "/api/owners/{ownerId}/pets/{petId}/visits",
        "listVisits",
    ),
    route(
        "POST",
        "/api/owners/{ownerId}/pets/{petId}/visits",
        "addVisit",
    ),
    route("GET", "/api/pettypes", "listPetTypes"),
    route("GET", "/api/vets", "listVets"),
    route("GET", "/api/specialties", "listSpecialties"),
    route("GET", "/api/openapi.json", "getOpenApi"),
];

const fn route(method: &'static str, path: &'static str, operation_id: &'static str) -> RouteInfo {
    RouteInfo {
        method,
        path,
        operation_id,
    }
}

/// The endpoint for `method` (upper case) and `path` (no query string).
pub fn resolve(method: &str, path: &str) -> Result<Endpoint, RouteError> {
    let path = match path.strip_suffix('/') {
        Some(stripped) if !stripped.is_empty() => stripped,
        _ => path,
    };
    let rest = match path.strip_prefix("/api") {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => rest,
        _ => return Ok(Endpoint::Ui),
    };
    let segments: Vec<&str> = rest.split('/').skip(1).collect();
    if segments.iter().any(|s| s.is_empty()) {
        return Err(RouteError::NotFound);
    }
    use Endpoint as E;
    let m = method;
    match segments.as_slice() {
        ["owners"] => pick(m, "GET, POST", || match m {
            "GET" => Ok(E::ListOwners),
            _ => Ok(E::CreateOwner),
        }),
        ["owners", o] => pick(m, "GET, PUT", || {
            let endpoint = if m == "GET" {
                E::GetOwner
            } else {
                E::UpdateOwner
            };
            let [o] = ids([OWNER_ID], [o], |[o]| endpoint(o))?;
            Ok(endpoint(o))
        }),
        ["owners", o, "pets"] => pick(m, "POST", || {
            let [o] = ids([OWNER_ID], [o], |[o]| E::AddPet(o))?;
            Ok(E::AddPet(o))
        }),
        ["owners", o, "pets", p] => pick(m, "GET, PUT", || {
            let endpoint = if m == "GET" { E::GetPet } else { E::UpdatePet };
            let [o, p] = ids([OWNER_ID, PET_ID], [o, p], |[o, p]| endpoint(o, p))?;
            Ok(endpoint(o, p))
        }),
        ["owners", o, "pets", p, "visits"] => pick(m, "GET, POST", || {
            let endpoint = if m == "GET" {
                E::ListVisits
            } else {
                E::AddVisit
            };
            let [o, p] = ids([OWNER_ID, PET_ID], [o, p], |[o, p]| endpoint(o, p))?;
            Ok(endpoint(o, p))
        }),
        ["pettypes"] => pick(m, "GET", || Ok(E::ListPetTypes)),
        ["vets"] => pick(m, "GET", || Ok(E::ListVets)),
        ["specialties"] => pick(m, "GET", || Ok(E::ListSpecialties)),
        ["openapi.json"] => pick(m, "GET", || Ok(E::OpenApi)),
        _ => Err(RouteError::NotFound),
    }
}

/// Runs `f` if `method` is one of `allow` (a comma-separated list), else 405.
fn pick(
    method: &str,
    allow: &'static str,
    f: impl FnOnce() -> Result<Endpoint, RouteError>,
) -> Result<Endpoint, RouteError> {
    if allow.split(", ").any(|a| a == method) {
        f()
    } else {
        Err(RouteError::MethodNotAllowed { allow })
    }
}

/// A path parameter that is an id: its name and what it names.
struct IdParam {
    field: &'static str,
    what: &'static str,
}

const OWNER_ID: IdParam = IdParam {
    field: "ownerId",
    what: "owner",
};
const PET_ID: IdParam = IdParam {
    field: "petId",
    what: "pet",
};

/// The path parameters `params` as ids, from `segments` (see the module docs for the
/// error cases). Every malformed one is reported, with `endpoint` applied to the ids (0
/// for the malformed ones); otherwise the first impossible one is.
fn ids<const N: usize>(
    params: [IdParam; N],
    segments: [&str; N],
    endpoint: impl FnOnce([Id; N]) -> Endpoint,
) -> Result<[Id; N], RouteError> {
    let mut out = [0; N];
    let mut bad = Vec::new();
    let mut impossible = None;
    for ((param, segment), slot) in params.iter().zip(segments).zip(&mut out) {
        if !segment.bytes().all(|b| b.is_ascii_digit()) {
            bad.push(param.field);
            continue;
        }
        match segment
            .parse::<u64>()
            .ok()
            .filter(|n| (1..=i32::MAX as u64).contains(n))
            .and_then(|n| Id::try_from(n).ok())
        {
            Some(id) => *slot = id,
            None => {
                impossible = impossible.or(Some(RouteError::NoSuchId {
                    what: param.what,
                    id: segment.to_string(),
                }));
            }
        }
    }
    if !bad.is_empty() {
        return Err(RouteError::BadIds {
            fields: bad,
            endpoint: endpoint(out),
        });
    }
    match impossible {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// The first value of query parameter `name` in `query` (`a=1&b=2`, no `?`),
/// percent-decoded with `+` as space. A value that is not valid percent-encoded UTF-8 is a
/// 400 naming the parameter.
pub fn query_param(query: &str, name: &str) -> Result<Option<String>, ServiceError> {
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if percent_decode(key).as_deref() != Some(name) {
            continue;
        }
        return percent_decode(value).map(Some).ok_or_else(|| {
            ServiceError::invalid(name, format!("{name} is not valid percent-encoded UTF-8"))
        });
    }
    Ok(None)
}

/// Decodes `%XX` escapes and `+`; `None` on a bad escape or invalid UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let hex = std::str::from_utf8(hex).ok()?;
                if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return None;
                }
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_resolves_to_its_operation() {
        for r in ROUTES {
            let path = r.path.replace("{ownerId}", "12").replace("{petId}", "34");
            let e = resolve(r.method, &path).unwrap();
            assert_eq!(e.operation_id(), r.operation_id, "{} {path}", r.method);
            // A trailing slash is the same path.
            assert_eq!(resolve(r.method, &format!("{path}/")).unwrap(), e);
        }
        assert_eq!(resolve("GET", "/api/owners/12"), Ok(Endpoint::GetOwner(12)));
        assert_eq!(
            resolve("POST", "/api/owners/1/pets/2/visits"),
            Ok(Endpoint::AddVisit(1, 2))
        );
        assert_eq!(
            resolve("PUT", "/api/owners/007/pets/9"),
            Ok(Endpoint::UpdatePet(7, 9))
        );
    }

    #[test]
    fn non_api_paths_go_to_the_ui_whatever_the_method() {
        for path in [
            "/",
            "/index.html",
            "/app.js",
            "/apiary",
            "/x/api/owners",
            "",
        ] {
            assert_eq!(resolve("GET", path), Ok(Endpoint::Ui), "{path}");
        }
        assert_eq!(resolve("DELETE", "/"), Ok(Endpoint::Ui));
    }

    #[test]
    fn unknown_api_paths_are_not_found() {
        for path in [
            "/api",
            "/api/",
            "/api/owner",
            "/api/owners/1/pets/2/visits/3",
            "/api/owners//pets",
            "/api/owners/1/cats",
            "/api/vets/1",
            "/api//owners",
        ] {
            assert_eq!(resolve("GET", path), Err(RouteError::NotFound), "{path}");
        }
    }

    #[test]
    fn wrong_methods_are_405_with_allow() {
        assert_eq!(
            resolve("DELETE", "/api/owners"),
            Err(RouteError::MethodNotAllowed { allow: "GET, POST" })
        );
        assert_eq!(
            resolve("POST", "/api/owners/1"),
            Err(RouteError::MethodNotAllowed { allow: "GET, PUT" })
        );
        assert_eq!(
            resolve("GET", "/api/owners/1/pets"),
            Err(RouteError::MethodNotAllowed { allow: "POST" })
        );
        assert_eq!(
            resolve("PUT", "/api/vets"),
            Err(RouteError::MethodNotAllowed { allow: "GET" })
        );
        // Methods are case sensitive, as in HTTP.
        assert!(matches!(
            resolve("get", "/api/vets"),
            Err(RouteError::MethodNotAllowed { .. })
        ));
        // The method is checked before the ids.
        assert!(matches!(
            resolve("DELETE", "/api/owners/abc"),
            Err(RouteError::MethodNotAllowed { .. })
        ));
    }

    #[test]
    fn bad_ids_are_400_and_impossible_ids_404() {
        let bad = |fields: &[&'static str], endpoint| {
            Err(RouteError::BadIds {
                fields: fields.to_vec(),
                endpoint,
            })
        };
        assert_eq!(
            resolve("GET", "/api/owners/abc"),
            bad(&["ownerId"], Endpoint::GetOwner(0))
        );
        assert_eq!(
            resolve("PUT", "/api/owners/-1"),
            bad(&["ownerId"], Endpoint::UpdateOwner(0))
        );
        assert_eq!(
            resolve("PUT", "/api/owners/1/pets/1x"),
            bad(&["petId"], Endpoint::UpdatePet(1, 0))
        );
        // Every malformed id is named, in path order; a malformed id beats an impossible one.
        assert_eq!(
            resolve("POST", "/api/owners/x/pets/y/visits"),
            bad(&["ownerId", "petId"], Endpoint::AddVisit(0, 0))
        );
        assert_eq!(
            resolve("GET", "/api/owners/0/pets/y"),
            bad(&["petId"], Endpoint::GetPet(0, 0))
        );
        assert_eq!(
            resolve("GET", "/api/owners/0/pets/0/visits"),
            Err(RouteError::NoSuchId {
                what: "owner",
                id: "0".into()
            })
        );
        let e = RouteError::BadIds {
            fields: vec!["ownerId", "petId"],
            endpoint: Endpoint::GetPet(0, 0),
        }
        .to_service_error()
        .unwrap();
        assert_eq!((e.status(), e.field()), (400, Some("ownerId")));
        let fields: Vec<_> = e.field_errors().into_iter().map(|f| f.field).collect();
        assert_eq!(fields, [Some("ownerId".into()), Some("petId".into())]);
        assert_eq!(e.message(), "ownerId must be a positive integer");
        for id in ["0", "2147483648", "99999999999999999999999"] {
            assert_eq!(
                resolve("GET", &format!("/api/owners/{id}")),
                Err(RouteError::NoSuchId {
                    what: "owner",
                    id: id.into()
                })
            );
        }
        assert_eq!(
            resolve("GET", "/api/owners/2147483647"),
            Ok(Endpoint::GetOwner(2_147_483_647))
        );
        let e = bad(&["petId"], Endpoint::GetPet(1, 0))
            .unwrap_err()
            .to_service_error()
            .unwrap();
        assert_eq!((e.status(), e.field()), (400, Some("petId")));
        assert_eq!(e.field_errors().len(), 1);
        let e = RouteError::NoSuchId {
            what: "owner",
            id: "0".into(),
        }
        .to_service_error()
        .unwrap();
        assert_eq!((e.status(), e.message()), (404, "owner 0 not found"));
    }

    #[test]
    fn query_parameters_are_decoded() {
        assert_eq!(query_param("", "lastName"), Ok(None));
        assert_eq!(
            query_param("lastName=Da", "lastName"),
            Ok(Some("Da".into()))
        );
        assert_eq!(
            query_param("x=1&lastName=Mc+T%C3%A4vish&lastName=no", "lastName"),
            Ok(Some("Mc Tävish".into()))
        );
        assert_eq!(query_param("lastName", "lastName"), Ok(Some(String::new())));
        assert_eq!(query_param("lastname=x", "lastName"), Ok(None));
        assert_eq!(
            query_param("last%4Eame=y", "lastName"),
            Ok(Some("y".into()))
        );
        for bad in ["lastName=%", "lastName=%zz", "lastName=%ff", "lastName=%4"] {
            let e = query_param(bad, "lastName").unwrap_err();
            assert_eq!(e.field(), Some("lastName"), "{bad}");
        }
        // A broken parameter that is not the one asked for does not matter.
        assert_eq!(
            query_param("x=%zz&lastName=a", "lastName"),
            Ok(Some("a".into()))
        );
    }
}
