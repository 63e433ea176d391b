//! `petclinic-ui`: serves the petclinic single-page web app (`static/index.html`,
//! `app.js`, `app.css`, embedded at compile time) through the `wasmcloud:httpserver`
//! operation `HandleRequest`.
//!
//! The gateway forwards every request outside `/api` to this actor (call alias
//! `petclinic/ui`); the actor can also be linked to an HTTP server on its own. It calls
//! nothing and stores nothing.
//!
//! `/` and `/index.html` are the page, `/app.js` and `/app.css` its assets; any other path
//! is 404. `GET` and `HEAD` are allowed (405 otherwise). Every answer carries
//! `X-Content-Type-Options: nosniff` and `Cache-Control: no-cache` (revalidate, so a new
//! actor version shows at once); the page also gets a Content-Security-Policy that allows
//! only its own script, style and API (the app builds the DOM with `textContent`, and the
//! policy stops injected markup from running even if that ever changed).

use petclinic_model::codec::{decode, encode};
use petclinic_model::wire::{OP_HANDLE_REQUEST, Request, Response, ResponseExt};

/// One embedded file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asset {
    /// The path it is served at.
    pub path: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its content.
    pub body: &'static str,
}

/// The page.
pub const INDEX_HTML: &str = include_str!("../static/index.html");
/// The script.
pub const APP_JS: &str = include_str!("../static/app.js");
/// The style sheet.
pub const APP_CSS: &str = include_str!("../static/app.css");

/// Every served file.
pub const ASSETS: [Asset; 3] = [
    Asset {
        path: "/index.html",
        content_type: "text/html; charset=utf-8",
        body: INDEX_HTML,
    },
    Asset {
        path: "/app.js",
        content_type: "text/javascript; charset=utf-8",
        body: APP_JS,
    },
    Asset {
        path: "/app.css",
        content_type: "text/css; charset=utf-8",
        body: APP_CSS,
    },
];

/// The Content-Security-Policy of the page.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// The response to one HTTP request.
pub fn handle(request: &Request) -> Response {
    let path = match request.path.as_str() {
        "" | "/" => "/index.html",
        other => other,
    };
    let Some(asset) = ASSETS.iter().find(|a| a.path == path) else {
        return plain(404, &format!("not found: {}", request.path));
    };
    let head = match request.method.as_str() {
        "GET" => false,
        "HEAD" => true,
        _ => return plain(405, "method not allowed").with_header("Allow", "GET, HEAD"),
    };
    let body = if head {
        Vec::new()
    } else {
        asset.body.as_bytes().to_vec()
    };
    let response = secure(Response::new(200, asset.content_type, body));
    if asset.path == "/index.html" {
        response.with_header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    } else {
        response
    }
}

fn plain(status: u16, text: &str) -> Response {
    secure(Response::new(
        status,
        "text/plain; charset=utf-8",
        text.as_bytes().to_vec(),
    ))
}

fn secure(response: Response) -> Response {
    response
        .with_header("X-Content-Type-Options", "nosniff")
        .with_header("Cache-Control", "no-cache")
}

/// Runs operation `operation` (only `HandleRequest`) on a msgpack `Request`: the bytes the
/// generated `Handlers` decode in the actor, for native tests that route calls by alias.
pub fn dispatch(operation: &str, payload: &[u8]) -> Result<Vec<u8>, String> {
    if operation != OP_HANDLE_REQUEST {
        return Err(format!("unknown operation: {operation}"));
    }
    let request: Request = decode("HttpRequest", payload)?;
    encode(&handle(&request))
}

/// The waPC exports (wasm32 only, so native test binaries can link several actors).
#[cfg(target_arch = "wasm32")]
mod guest {
    use nimbus_actor::HandlerResult;
    use petclinic_model::wire::{Handlers, Request, Response};

    fn handle_request(request: Request) -> HandlerResult<Response> {
        Ok(crate::handle(&request))
    }

    /// Registers the operation; called once by the host after instantiation.
    #[allow(unsafe_code)]
    // SAFETY: `wapc_init` is the waPC init export; nothing else in the module defines it.
    #[unsafe(no_mangle)]
    pub extern "C" fn wapc_init() {
        Handlers::register_handle_request(handle_request);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn get(path: &str) -> Response {
        handle(&Request {
            method: "GET".into(),
            path: path.into(),
            ..Request::default()
        })
    }

    fn text(r: &Response) -> String {
        String::from_utf8(r.body.clone()).unwrap()
    }

    #[test]
    fn serves_the_page_and_its_assets_with_content_types() {
        for (path, content_type, body) in [
            ("/", "text/html; charset=utf-8", INDEX_HTML),
            ("/index.html", "text/html; charset=utf-8", INDEX_HTML),
            ("/app.js", "text/javascript; charset=utf-8", APP_JS),
            ("/app.css", "text/css; charset=utf-8", APP_CSS),
        ] {
            let r = get(path);
            assert_eq!(r.status_code, 200, "{path}");
            assert_eq!(r.header["Content-Type"], content_type, "{path}");
            assert_eq!(r.header["X-Content-Type-Options"], "nosniff");
            assert_eq!(text(&r), body, "{path}");
        }
        assert!(get("/").header["Content-Security-Policy"].contains("script-src 'self'"));
        assert!(
            !get("/app.js")
                .header
                .contains_key("Content-Security-Policy")
        );
    }

    #[test]
    fn other_paths_are_404_and_other_methods_405() {
        for path in [
            "/favicon.ico",
            "/app.js/",
            "/static/app.js",
            "/index.htm",
            "/../app.js",
        ] {
            let r = get(path);
            assert_eq!(r.status_code, 404, "{path}");
            assert_eq!(r.header["Content-Type"], "text/plain; charset=utf-8");
        }
        for method in ["POST", "PUT", "DELETE", "get"] {
            let r = handle(&Request {
                method: method.into(),
                path: "/".into(),
                ..Request::default()
            });
            assert_eq!(r.status_code, 405, "{method}");
            assert_eq!(r.header["Allow"], "GET, HEAD");
        }
        let head = handle(&Request {
            method: "HEAD".into(),
            path: "/app.css".into(),
            ..Request::default()
        });
        assert_eq!(head.status_code, 200);
        assert!(head.body.is_empty());
        assert_eq!(head.header["Content-Type"], "text/css; charset=utf-8");
    }

    #[test]
    fn dispatch_speaks_the_httpserver_wire_format() {
        let request = Request {
            method: "GET".into(),
            path: "/app.css".into(),
            ..Request::default()
        };
        let reply = dispatch("HandleRequest", &encode(&request).unwrap()).unwrap();
        let response: Response = decode("Response", &reply).unwrap();
        assert_eq!(response.status_code, 200);
        assert_eq!(text(&response), APP_CSS);
        assert!(dispatch("Other", &[]).is_err());
        assert!(dispatch("HandleRequest", b"not msgpack").is_err());
    }

    /// The `id="..."` values in the page.
    fn ids_in(html: &str) -> Vec<String> {
        html.split(" id=\"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .map(String::from)
            .collect()
    }

    #[test]
    fn every_element_id_is_unique_documented_and_a_test_id() {
        let (header, body) = INDEX_HTML.split_once("-->").unwrap();
        let ids = ids_in(body);
        assert!(ids.len() > 50, "{} ids", ids.len());
        let unique: BTreeSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len(), "duplicate ids");
        for id in &ids {
            assert!(
                body.contains(&format!("id=\"{id}\" data-testid=\"{id}\"")),
                "{id} lacks data-testid={id}"
            );
            // Labels' `for` targets and sections are all documented in the header.
            assert!(header.contains(id.as_str()), "{id} is not documented");
        }
    }

    #[test]
    fn the_script_uses_every_id_it_looks_up() {
        // Every $('...') in app.js names an element of the page (or a form prefix the
        // script completes: `${form}-form-error`, `${form}-submit`).
        let ids = ids_in(INDEX_HTML.split_once("-->").unwrap().1);
        for lookup in APP_JS.split("$('").skip(1) {
            let id = lookup.split('\'').next().unwrap();
            assert!(ids.iter().any(|i| i == id), "app.js looks up missing #{id}");
        }
        for form in ["owner", "pet", "visit"] {
            for suffix in ["form-error", "submit"] {
                let id = format!("{form}-{suffix}");
                assert!(ids.contains(&id), "{id}");
            }
        }
    }

    #[test]
    fn the_page_loads_nothing_inline_or_from_elsewhere() {
        // What the Content-Security-Policy would block must not be needed.
        assert!(!INDEX_HTML.contains("<script>"));
        assert!(!INDEX_HTML.contains("<style"));
        assert!(!INDEX_HTML.contains(" style=\""));
        assert!(!INDEX_HTML.contains(" onclick="));
        assert!(!INDEX_HTML.contains("http://") && !INDEX_HTML.contains("https://"));
        assert!(!APP_JS.contains("innerHTML"));
    }
}
