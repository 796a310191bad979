//! The OpenAPI 3.1 document at `/openapi.json`, generated from code: the
//! operations from [`ROUTES`] (the one place a route is described), the
//! request and response schemas derived by `utoipa` from the very Rust types
//! the handlers (de)serialize, and the query parameters from the handlers'
//! query structs (`utoipa::IntoParams`). A test (`openapi_routes_exist`)
//! requests every operation against the real router, so the table cannot
//! name a route the service does not serve; `deploy/schemathesis.sh` fuzzes
//! the service against this document.
//!
//! The document is strict on purpose: every status an operation answers is
//! listed (no `default` response), every header it reads or writes, and the
//! OpenAPI links between operations a stateful fuzzer follows (create a link,
//! then read, patch and delete it by its code).

mod route;
mod routes;

pub use route::{Access, Header, Link, Media, Route, no_params, only, params};
pub use routes::ROUTES;

use route::operation_id;
use serde_json::{Map, Value, json};
use utoipa::OpenApi;

/// The types whose schemas the document carries.
#[derive(OpenApi)]
#[openapi(components(schemas(
    crate::links::model::LinkJson,
    crate::links::model::LinkPage,
    crate::links::input::CreateLink,
    crate::links::input::PatchLink,
    crate::links::utm::Utm,
    crate::links::utm::UtmInput,
    crate::links::rules::RuleJson,
    crate::links::rules::ConditionsJson,
    crate::links::bulk::BulkRequest,
    crate::links::bulk::BulkUpdate,
    crate::links::bulk::BulkDelete,
    crate::links::bulk::BulkItemResult,
    crate::links::bulk::BulkResponse,
    crate::domains::model::DomainJson,
    crate::domains::model::DomainList,
    crate::domains::model::AllDomains,
    crate::domains::model::VerificationJson,
    crate::domains::input::CreateDomain,
    crate::domains::input::PatchDomain,
    crate::keys::KeyInfo,
    crate::keys::CreateKey,
    crate::keys::CreatedKey,
    crate::keys::KeyList,
    crate::admin::blocklist::BlockHost,
    crate::admin::blocklist::BlockedHost,
    crate::admin::blocklist::BlockedHostList,
    crate::admin::snapshots::GenerationInfo,
    crate::admin::snapshots::GenerationList,
    crate::admin::snapshots::BuildResult,
    crate::admin::orgs::OrgInfo,
    crate::admin::orgs::OrgList,
    crate::snapshot::PushResult,
    crate::stats::LinkStats,
    crate::stats::StatsSummary,
    crate::stats::Counts,
    crate::stats::SeriesPoint,
    crate::stats::DimensionValue,
    crate::stats::CrossRow,
    crate::stats::TopLink,
    crate::health::Health,
    crate::health::Readiness,
    // accounts
    crate::auth::Role,
    crate::auth::Membership,
    crate::accounts::sessions::Login,
    crate::accounts::sessions::SessionInfo,
    crate::accounts::sessions::UserInfo,
    crate::accounts::members::Member,
    crate::accounts::members::MemberList,
    crate::accounts::members::ChangeRole,
    crate::accounts::members::RoleChanged,
    crate::accounts::invitations::Invite,
    crate::accounts::invitations::InvitationInfo,
    crate::accounts::invitations::Accept,
    crate::accounts::invitations::Accepted,
    crate::accounts::reset::ResetRequest,
    crate::accounts::reset::ResetConfirm,
    crate::accounts::reset::ResetDone,
    crate::audit_log::AuditPage,
    crate::audit_log::AuditEntry,
    crate::audit_log::AuditActor,
    // certificates
    crate::acme::store::CertificateStatus,
    // exports
    crate::exports::request::CreateExport,
    crate::exports::request::ExportSpec,
    crate::exports::request::ExportKind,
    crate::exports::request::ExportFormat,
    crate::exports::request::ExportBucket,
    crate::exports::request::ExportDimension,
    crate::exports::request::Traffic,
    crate::exports::api::JobJson,
    crate::exports::api::JobList,
    crate::exports::api::JobState,
    // webhooks
    crate::webhooks::input::CreateWebhook,
    crate::webhooks::input::PatchWebhook,
    crate::webhooks::store::WebhookJson,
    crate::webhooks::store::DeadLetter,
    crate::webhooks::api::CreatedWebhook,
    crate::webhooks::api::WebhookList,
    crate::webhooks::api::DeadLetterPage,
    crate::webhooks::api::Redelivery,
)))]
struct Schemas;

/// What a status means in this API.
fn status_description(status: u16) -> &'static str {
    match status {
        200 => "success (for a build request: an existing generation already held every change)",
        304 => "not modified (If-None-Match)",
        400 => "bad_request / invalid_json / invalid_url: the request names the field at fault",
        401 => {
            "unauthorized: no key or session, or not an active one (WWW-Authenticate: Bearer); \
             invalid_credentials: a wrong e-mail or password"
        }
        403 => {
            "forbidden: the key or role lacks the scope, or the route is for the operator (or for an \
             organization); csrf_failed: a signed-in write without the session's X-CSRF-Token or \
             from another origin; org_required: no organization chosen (X-Org)"
        }
        404 => "not_found",
        409 => {
            "alias_taken / conflict / last_owner / domain_* / export_not_ready / export_failed \
             (the code says which)"
        }
        410 => {
            "link_deleted: an Idempotency-Key replay whose link has been deleted since; \
             token_used / token_expired: a spent or expired one-time token; export_expired: \
             an export's file deleted after its expiry"
        }
        412 => "precondition_failed: If-Match names another version",
        413 => "payload_too_large: the body is over max_body_bytes",
        415 => "unsupported_media_type: the body is not application/json",
        422 => {
            "blocked_host / idempotency_key_reused / unknown_domain / verification_failed / \
             invalid_export (details.field)"
        }
        429 => "rate_limited / too_many_exports (Retry-After)",
        503 => {
            "unavailable: a dependency (PostgreSQL, ClickHouse, ACME) is not configured or not reachable"
        }
        _ => "error",
    }
}

/// The statuses `route` answers: its own, and the ones every route of its
/// kind can answer.
fn statuses(route: &Route) -> Vec<u16> {
    let mut out = vec![route.success];
    out.extend(route.errors);
    // The per-IP rate limit applies to every route.
    out.push(429);
    if route.access != Access::Public {
        out.extend([400, 401, 403]);
    }
    if route.request.is_some() {
        out.extend([400, 413, 415]);
    }
    if route.path.contains('{') {
        // A path parameter that cannot name anything.
        out.extend([400, 404]);
    }
    if !(route.query)().is_empty() || route.headers.contains(&Header::IdempotencyKey) {
        out.push(400);
    }
    if route.headers.contains(&Header::IfNoneMatch) {
        out.push(304);
    }
    if route.headers.contains(&Header::IfMatch) {
        out.push(412);
    }
    out.sort_unstable();
    out.dedup();
    out
}

fn error_schema() -> Value {
    json!({
        "type": "object",
        "required": ["error"],
        "properties": { "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": { "type": "string", "description": "stable, machine-readable" },
                "message": { "type": "string", "description": "for people" },
                "details": { "description": "what the code is about (a field, a scope, ...), or null" }
            }
        }}
    })
}

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn integer_header(description: &str) -> Value {
    json!({ "description": description, "required": true, "schema": { "type": "integer", "minimum": 0 } })
}

/// The headers of every response: the rate limit the caller is under.
fn rate_limit_headers() -> Map<String, Value> {
    let mut h = Map::new();
    h.insert(
        "X-RateLimit-Limit".into(),
        integer_header("the bucket's size (burst)"),
    );
    h.insert(
        "X-RateLimit-Remaining".into(),
        integer_header("requests left in the bucket"),
    );
    h.insert(
        "X-RateLimit-Reset".into(),
        integer_header("seconds until the bucket is full again"),
    );
    h
}

/// The path parameters of `path`; `{id}`, `{user_id}` and `{delivery}` are integers
/// (the handlers' `Path<i64>`), the others strings.
fn path_params(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| {
            let schema = match name {
                "id" | "user_id" | "delivery" => json!({ "type": "integer", "format": "int64" }),
                _ => json!({ "type": "string", "minLength": 1 }),
            };
            json!({ "name": name, "in": "path", "required": true, "schema": schema })
        })
        .collect()
}

fn header_param(name: &str, description: &str, schema: Value) -> Value {
    json!({ "name": name, "in": "header", "required": false, "description": description, "schema": schema })
}

/// The request headers `route` reads.
fn header_params(route: &Route) -> Vec<Value> {
    let mut out = Vec::new();
    for h in route.headers {
        match h {
            Header::IdempotencyKey => out.push(header_param(
                "Idempotency-Key",
                "repeats of a create with the same key and body answer the first response for 24 hours",
                // Visible ASCII; blanks around are trimmed.
                json!({ "type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$" }),
            )),
            Header::IfMatch => out.push(header_param(
                "If-Match",
                "the ETag the change is based on; another version answers 412",
                json!({ "type": "string" }),
            )),
            Header::IfNoneMatch => out.push(header_param(
                "If-None-Match",
                "an ETag; the current version answers 304",
                json!({ "type": "string" }),
            )),
            Header::ETag | Header::Location => {}
        }
    }
    if matches!(route.access, Access::Scope(_) | Access::Role(_)) {
        out.push(header_param(
            "X-Org",
            "for a signed-in member of several organizations: the one to act in (its name or id)",
            json!({ "type": "string" }),
        ));
    }
    out
}

/// The success response.
fn success_response(route: &Route) -> Value {
    let mut headers = rate_limit_headers();
    if route.headers.contains(&Header::ETag) {
        headers.insert(
            "ETag".into(),
            json!({ "description": "the version (strong)", "required": true, "schema": { "type": "string" } }),
        );
    }
    if route.headers.contains(&Header::Location) && matches!(route.success, 201 | 202) {
        headers.insert(
            "Location".into(),
            json!({ "description": "where the new resource is", "schema": { "type": "string" } }),
        );
    }
    let mut response = json!({ "description": "success", "headers": headers });
    let body = route.response.map(schema_ref);
    let content = match (route.media, body) {
        (Media::Json, Some(schema)) => Some(json!({ "application/json": { "schema": schema } })),
        (Media::Json, None) => None,
        (Media::JsonOrCsv, schema) => Some(json!({
            "application/json": { "schema": schema.unwrap_or_else(|| json!({ "type": "object" })) },
            "text/csv": { "schema": { "type": "string" } }
        })),
        (Media::Image, _) => Some(json!({
            "image/svg+xml": { "schema": { "type": "string" } },
            "image/png": { "schema": { "type": "string", "format": "binary" } }
        })),
        (Media::Prometheus, _) => Some(json!({ "text/plain": { "schema": { "type": "string" } } })),
        (Media::Export, _) => Some(json!({
            "text/csv": { "schema": { "type": "string" } },
            "application/x-ndjson": { "schema": { "type": "string" } },
            "application/vnd.apache.parquet": { "schema": { "type": "string", "format": "binary" } }
        })),
    };
    if let Some(content) = content {
        response["content"] = content;
    }
    if !route.links.is_empty() {
        let mut links = Map::new();
        for link in route.links {
            let parameters: Map<String, Value> = link
                .parameters
                .iter()
                .map(|(k, v)| ((*k).to_owned(), json!(v)))
                .collect();
            links.insert(
                link.name.to_owned(),
                json!({ "operationId": operation_id(link.method, link.path), "parameters": parameters }),
            );
        }
        response["links"] = Value::Object(links);
    }
    response
}

fn error_response(route: &Route, status: u16) -> Value {
    let mut headers = rate_limit_headers();
    match status {
        429 => {
            headers.insert(
                "Retry-After".into(),
                integer_header("seconds until a request may succeed"),
            );
        }
        401 => {
            headers.insert(
                "WWW-Authenticate".into(),
                json!({ "description": "the Bearer challenge (RFC 6750)", "schema": { "type": "string" } }),
            );
        }
        _ => {}
    }
    let mut response = json!({ "description": status_description(status), "headers": headers });
    if status >= 400 {
        let schema = match (status, route.error_body) {
            (503, Some(name)) => schema_ref(name),
            _ => schema_ref("Error"),
        };
        response["content"] = json!({ "application/json": { "schema": schema } });
    }
    response
}

/// The security requirements of `route` (any one of them suffices) and
/// what they mean in words.
fn security(route: &Route) -> Option<(Vec<Value>, String)> {
    let session = if route.writes() {
        json!({ "session": [], "csrf": [] })
    } else {
        json!({ "session": [] })
    };
    let key = |scope: &str| vec![json!({ "bearer": [scope] }), json!({ "apiKey": [scope] })];
    let with_session = |mut keys: Vec<Value>| {
        keys.push(session.clone());
        keys
    };
    Some(match route.access {
        Access::Public => return None,
        Access::Scope(scope) => (
            with_session(key(scope)),
            format!(
                "Requires an organization's key with scope `{scope}` (or `admin`), or a signed-in \
                 member whose role grants it (writes carry X-CSRF-Token)."
            ),
        ),
        Access::Operator => (
            with_session(key("operator")),
            "Requires the operator: an operator key (`control keys create --operator`) or a \
             signed-in operator."
                .into(),
        ),
        Access::Session => (
            vec![session.clone()],
            "Requires a signed-in user (the session cookie); writes carry X-CSRF-Token.".into(),
        ),
        Access::Role(role) => (
            with_session(key("admin")),
            format!(
                "Requires a member of the organization (the path's `{{org}}`, else X-Org) with role \
                 `{role}` or higher (session; writes carry X-CSRF-Token), or an `admin` key of it."
            ),
        ),
    })
}

fn operation(route: &Route) -> Value {
    let mut parameters = path_params(route.path);
    parameters.extend(
        (route.query)()
            .into_iter()
            .map(|p| serde_json::to_value(p).unwrap_or(Value::Null)),
    );
    parameters.extend(header_params(route));
    let mut responses = Map::new();
    for status in statuses(route) {
        let response = if status == route.success {
            success_response(route)
        } else {
            error_response(route, status)
        };
        responses.insert(status.to_string(), response);
    }
    let mut op = json!({
        "operationId": route.operation_id(),
        "summary": route.summary,
        "parameters": parameters,
        "responses": responses,
    });
    if let Some((security, description)) = security(route) {
        op["security"] = Value::Array(security);
        op["description"] = json!(description);
    }
    if let Some(name) = route.request {
        op["requestBody"] = json!({
            "required": true,
            "content": { "application/json": { "schema": schema_ref(name) } }
        });
    }
    op
}

/// `GET /openapi.json`: the document for this deployment.
pub async fn serve(
    axum::extract::State(state): axum::extract::State<crate::state::AppState>,
) -> axum::Json<Value> {
    axum::Json(document(
        "/",
        crate::auth::session::cookie_name(&state.config),
    ))
}

/// The document; `server` is the base URL, `session_cookie` the session
/// cookie's name in this deployment.
pub fn document(server: &str, session_cookie: &str) -> Value {
    let mut paths = Map::new();
    for route in ROUTES {
        let entry = paths
            .entry(route.path.to_owned())
            .or_insert_with(|| json!({}));
        entry[route.method] = operation(route);
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
            "securitySchemes": {
                "bearer": {
                    "type": "http", "scheme": "bearer",
                    "description": "an API key: Authorization: Bearer <key>"
                },
                "apiKey": {
                    "type": "apiKey", "in": "header", "name": "X-API-Key",
                    "description": "the same API key in X-API-Key"
                },
                "session": {
                    "type": "apiKey", "in": "cookie", "name": session_cookie,
                    "description": "a signed-in user's session (POST /v1/session sets it)"
                },
                "csrf": {
                    "type": "apiKey", "in": "header", "name": "X-CSRF-Token",
                    "description": "the session's CSRF token (GET /v1/session answers it); every \
                                    cookie-authenticated write carries it"
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_ids_are_unique_and_links_name_real_operations() {
        let ids: Vec<String> = ROUTES.iter().map(Route::operation_id).collect();
        let mut unique = ids.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), ids.len(), "duplicate operation ids");
        for route in ROUTES {
            for link in route.links {
                let target = operation_id(link.method, link.path);
                assert!(ids.contains(&target), "{} links to {target}", route.path);
            }
        }
        assert_eq!(operation_id("get", "/v1/links/{code}"), "get_v1_links_code");
    }
}
