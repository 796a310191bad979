//! The OpenAPI 3.1 document at `/openapi.json`, generated from [`ROUTES`].
//! A test (`openapi_routes_exist`) requests every entry against the real
//! router, so the table cannot name a route the service does not serve.

use serde_json::{Value, json};

/// One operation: method, path, required scope (if any), summary.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub scope: Option<&'static str>,
    pub summary: &'static str,
    pub success: u16,
}

const fn r(
    method: &'static str,
    path: &'static str,
    scope: Option<&'static str>,
    summary: &'static str,
    success: u16,
) -> Route {
    Route {
        method,
        path,
        scope,
        summary,
        success,
    }
}

pub const ROUTES: &[Route] = &[
    r(
        "post",
        "/v1/links",
        Some("links:write"),
        "Create a link (Idempotency-Key honoured)",
        201,
    ),
    r(
        "get",
        "/v1/links",
        Some("links:read"),
        "List links (limit, cursor, tag, disabled, created_after, created_before, q)",
        200,
    ),
    r(
        "get",
        "/v1/links/{code}",
        Some("links:read"),
        "Read a link (ETag)",
        200,
    ),
    r(
        "patch",
        "/v1/links/{code}",
        Some("links:write"),
        "Update a link (If-Match)",
        200,
    ),
    r(
        "delete",
        "/v1/links/{code}",
        Some("links:write"),
        "Delete a link (soft)",
        204,
    ),
    r(
        "get",
        "/v1/links/{code}/stats",
        Some("stats:read"),
        "Clicks and unique visitors (from, to, bucket, dimensions, include_bots, format=json|csv)",
        200,
    ),
    r(
        "get",
        "/v1/links/{code}/qr",
        Some("links:read"),
        "QR code of the short URL (format=svg|png, size)",
        200,
    ),
    r(
        "get",
        "/v1/stats/summary",
        Some("stats:read"),
        "Top links of the organization (from, to, limit, include_bots, format)",
        200,
    ),
    r(
        "post",
        "/v1/keys",
        Some("admin"),
        "Create an API key (the secret is shown once)",
        201,
    ),
    r("get", "/v1/keys", Some("admin"), "List API keys", 200),
    r(
        "delete",
        "/v1/keys/{id}",
        Some("admin"),
        "Revoke an API key",
        204,
    ),
    r(
        "post",
        "/v1/admin/blocklist",
        Some("admin"),
        "Block a host and its subdomains",
        201,
    ),
    r(
        "get",
        "/v1/admin/blocklist",
        Some("admin"),
        "List blocked hosts",
        200,
    ),
    r(
        "delete",
        "/v1/admin/blocklist/{host}",
        Some("admin"),
        "Unblock a host",
        204,
    ),
    r(
        "post",
        "/v1/admin/links/{code}/disable",
        Some("admin"),
        "Disable a link at once",
        200,
    ),
    r(
        "post",
        "/v1/admin/snapshots",
        Some("admin"),
        "Build a snapshot now and push it to the engines",
        201,
    ),
    r(
        "get",
        "/v1/admin/snapshots",
        Some("admin"),
        "List snapshot generations",
        200,
    ),
    r("get", "/healthz", None, "Liveness", 200),
    r(
        "get",
        "/readyz",
        None,
        "Readiness (PostgreSQL reachable)",
        200,
    ),
    r("get", "/metrics", None, "Prometheus metrics", 200),
    r("get", "/openapi.json", None, "This document", 200),
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

fn link_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "code": { "type": "string" },
            "short_url": { "type": "string", "format": "uri" },
            "target": { "type": "string", "format": "uri" },
            "status": { "type": "integer", "enum": [301, 302, 307, 308] },
            "expires_at": { "type": ["string", "null"], "format": "date-time" },
            "disabled": { "type": "boolean" },
            "forward_query": { "type": "boolean" },
            "tags": { "type": "array", "items": { "type": "string" } },
            "title": { "type": ["string", "null"] },
            "created_at": { "type": "string", "format": "date-time" },
            "updated_at": { "type": "string", "format": "date-time" },
            "version": { "type": "integer" }
        }
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
        let mut op = json!({
            "summary": route.summary,
            "parameters": params,
            "responses": {
                route.success.to_string(): { "description": "success" },
                "default": { "description": "error", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } }
            }
        });
        if let Some(scope) = route.scope {
            op["security"] = json!([{ "apiKey": [scope] }]);
            op["description"] = json!(format!("Requires scope `{scope}` (or `admin`)."));
        }
        if route.path.starts_with("/v1/links") && matches!(route.method, "post" | "patch") {
            op["requestBody"] = json!({ "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Link" } } } });
        }
        let entry = paths
            .entry(route.path.to_owned())
            .or_insert_with(|| json!({}));
        entry[route.method] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": { "title": "Link shortener control plane", "version": env!("CARGO_PKG_VERSION") },
        "servers": [{ "url": server }],
        "paths": paths,
        "components": {
            "schemas": { "Error": error_schema(), "Link": link_schema() },
            "securitySchemes": { "apiKey": { "type": "http", "scheme": "bearer" } }
        }
    })
}
