//! The OpenAPI 3.1 document at `/openapi.json`, generated from code: the
//! operations from [`ROUTES`], the request and response schemas derived by
//! `utoipa` from the very Rust types the handlers (de)serialize. A test
//! (`openapi_routes_exist`) requests every operation against the real router,
//! so the table cannot name a route the service does not serve.

use utoipa::OpenApi;

use serde_json::{Value, json};

/// One operation: method, path, required scope (if any), summary, success
/// status, and the schemas of its JSON request and response bodies.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub scope: Option<&'static str>,
    pub summary: &'static str,
    pub success: u16,
    pub request: Option<&'static str>,
    pub response: Option<&'static str>,
}

/// The types whose schemas the document carries.
#[derive(OpenApi)]
#[openapi(components(schemas(
    crate::links::model::LinkJson,
    crate::links::input::CreateLink,
    crate::links::input::PatchLink,
    crate::keys::KeyInfo,
    crate::keys::CreateKey,
    crate::admin::BlockHost,
    crate::admin::BlockedHost,
    crate::snapshot::Generation,
    crate::snapshot::PushResult,
)))]
struct Schemas;

const fn r(
    method: &'static str,
    path: &'static str,
    scope: Option<&'static str>,
    summary: &'static str,
    success: u16,
    request: Option<&'static str>,
    response: Option<&'static str>,
) -> Route {
    Route {
        method,
        path,
        scope,
        summary,
        success,
        request,
        response,
    }
}

pub const ROUTES: &[Route] = &[
    r(
        "post",
        "/v1/links",
        Some("links:write"),
        "Create a link (Idempotency-Key honoured)",
        201,
        Some("CreateLink"),
        Some("LinkJson"),
    ),
    r(
        "get",
        "/v1/links",
        Some("links:read"),
        "List links (limit, cursor, tag, disabled, created_after, created_before, q)",
        200,
        None,
        None,
    ),
    r(
        "get",
        "/v1/links/{code}",
        Some("links:read"),
        "Read a link (ETag)",
        200,
        None,
        Some("LinkJson"),
    ),
    r(
        "patch",
        "/v1/links/{code}",
        Some("links:write"),
        "Update a link (If-Match)",
        200,
        Some("PatchLink"),
        Some("LinkJson"),
    ),
    r(
        "delete",
        "/v1/links/{code}",
        Some("links:write"),
        "Delete a link (soft)",
        204,
        None,
        None,
    ),
    r(
        "get",
        "/v1/links/{code}/stats",
        Some("stats:read"),
        "Clicks and unique visitors (from, to, bucket, dimensions, include_bots, format=json|csv)",
        200,
        None,
        None,
    ),
    r(
        "get",
        "/v1/links/{code}/qr",
        Some("links:read"),
        "QR code of the short URL (format=svg|png, size)",
        200,
        None,
        None,
    ),
    r(
        "get",
        "/v1/stats/summary",
        Some("stats:read"),
        "Top links of the organization (from, to, limit, include_bots, format)",
        200,
        None,
        None,
    ),
    r(
        "post",
        "/v1/keys",
        Some("admin"),
        "Create an API key (the secret is shown once)",
        201,
        Some("CreateKey"),
        None,
    ),
    r(
        "get",
        "/v1/keys",
        Some("admin"),
        "List API keys",
        200,
        None,
        None,
    ),
    r(
        "delete",
        "/v1/keys/{id}",
        Some("admin"),
        "Revoke an API key",
        204,
        None,
        None,
    ),
    r(
        "post",
        "/v1/admin/blocklist",
        Some("admin"),
        "Block a host and its subdomains",
        201,
        Some("BlockHost"),
        Some("BlockedHost"),
    ),
    r(
        "get",
        "/v1/admin/blocklist",
        Some("admin"),
        "List blocked hosts",
        200,
        None,
        None,
    ),
    r(
        "delete",
        "/v1/admin/blocklist/{host}",
        Some("admin"),
        "Unblock a host",
        204,
        None,
        None,
    ),
    r(
        "post",
        "/v1/admin/links/{code}/disable",
        Some("admin"),
        "Disable a link at once",
        200,
        None,
        Some("LinkJson"),
    ),
    r(
        "post",
        "/v1/admin/snapshots",
        Some("admin"),
        "Build a snapshot now and push it to the engines",
        201,
        None,
        None,
    ),
    r(
        "get",
        "/v1/admin/snapshots",
        Some("admin"),
        "List snapshot generations",
        200,
        None,
        None,
    ),
    r("get", "/healthz", None, "Liveness", 200, None, None),
    r(
        "get",
        "/readyz",
        None,
        "Readiness (PostgreSQL reachable)",
        200,
        None,
        None,
    ),
    r(
        "get",
        "/metrics",
        None,
        "Prometheus metrics",
        200,
        None,
        None,
    ),
    r(
        "get",
        "/openapi.json",
        None,
        "This document",
        200,
        None,
        None,
    ),
];

fn error_schema() -> Value {
    json!({
        "type": "object",
        "required": ["error"],
        "properties": { "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": { "type": "string" },
                "message": { "type": "string" },
                "details": {}
            }
        }}
    })
}

/// The document.
pub fn document(server: &str) -> Value {
    let mut paths = serde_json::Map::new();
    for route in ROUTES {
        let params: Vec<Value> = route
            .path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
            .collect();
        let schema_ref = |name: &str| json!({ "$ref": format!("#/components/schemas/{name}") });
        let mut success = json!({ "description": "success" });
        if let Some(name) = route.response {
            success["content"] = json!({ "application/json": { "schema": schema_ref(name) } });
        }
        let mut op = json!({
            "summary": route.summary,
            "parameters": params,
            "responses": {
                route.success.to_string(): success,
                "default": { "description": "error", "content": { "application/json": { "schema": schema_ref("Error") } } }
            }
        });
        if let Some(scope) = route.scope {
            op["security"] = json!([{ "apiKey": [scope] }]);
            op["description"] = json!(format!("Requires scope `{scope}` (or `admin`)."));
        }
        if let Some(name) = route.request {
            op["requestBody"] = json!({ "required": true, "content": { "application/json": { "schema": schema_ref(name) } } });
        }
        let entry = paths
            .entry(route.path.to_owned())
            .or_insert_with(|| json!({}));
        entry[route.method] = op;
    }
    let mut schemas = serde_json::to_value(Schemas::openapi().components.map(|c| c.schemas))
        .unwrap_or_else(|_| json!({}));
    if !schemas.is_object() {
        schemas = json!({});
    }
    schemas["Error"] = error_schema();
    json!({
        "openapi": "3.1.0",
        "info": { "title": "Link shortener control plane", "version": env!("CARGO_PKG_VERSION") },
        "servers": [{ "url": server }],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": { "apiKey": { "type": "http", "scheme": "bearer" } }
        }
    })
}
