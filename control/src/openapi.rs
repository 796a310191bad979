//! The OpenAPI 3.1 document at `/openapi.json`, generated from code: the
//! operations from [`ROUTES`], the request and response schemas derived by
//! `utoipa` from the very Rust types the handlers (de)serialize. A test
//! (`openapi_routes_exist`) requests every operation against the real router,
//! so the table cannot name a route the service does not serve.

use utoipa::OpenApi;

use serde_json::{Value, json};

/// Who may call an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (health, metrics, this document).
    Public,
    /// An organization's key with this scope (or `admin`).
    Scope(&'static str),
    /// The operator's key.
    Operator,
    // accounts
    /// A signed-in user (the session cookie).
    Session,
    /// A member of the organization (the path's `{org}`, else `X-Org`) with
    /// this role or higher, or an `admin` key of it; for `/v1/audit` the
    /// operator too.
    Role(&'static str),
}

/// One operation: method, path, who may call it, summary, success status,
/// the schemas of its JSON request and response bodies, and the error
/// statuses particular to it (the ones every authenticated route or every
/// route with a body can answer are added by [`document`]).
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub access: Access,
    pub summary: &'static str,
    pub success: u16,
    pub request: Option<&'static str>,
    pub response: Option<&'static str>,
    pub errors: &'static [u16],
}

/// The types whose schemas the document carries.
#[derive(OpenApi)]
#[openapi(components(schemas(
    crate::links::model::LinkJson,
    crate::links::input::CreateLink,
    crate::links::input::PatchLink,
    crate::links::bulk::BulkRequest,
    crate::links::bulk::BulkUpdate,
    crate::links::bulk::BulkDelete,
    crate::links::bulk::BulkItemResult,
    crate::links::bulk::BulkResponse,
    crate::domains::model::DomainJson,
    crate::domains::model::VerificationJson,
    crate::domains::input::CreateDomain,
    crate::domains::input::PatchDomain,
    crate::keys::KeyInfo,
    crate::keys::CreateKey,
    crate::admin::blocklist::BlockHost,
    crate::admin::blocklist::BlockedHost,
    crate::admin::snapshots::GenerationInfo,
    crate::admin::orgs::OrgInfo,
    crate::snapshot::PushResult,
    // accounts
    crate::auth::Role,
    crate::auth::Membership,
    crate::accounts::sessions::Login,
    crate::accounts::sessions::SessionInfo,
    crate::accounts::sessions::UserInfo,
    crate::accounts::members::Member,
    crate::accounts::members::ChangeRole,
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
)))]
struct Schemas;

#[allow(clippy::too_many_arguments)]
const fn r(
    method: &'static str,
    path: &'static str,
    access: Access,
    summary: &'static str,
    success: u16,
    request: Option<&'static str>,
    response: Option<&'static str>,
    errors: &'static [u16],
) -> Route {
    Route {
        method,
        path,
        access,
        summary,
        success,
        request,
        response,
        errors,
    }
}

use Access::{Operator, Public, Role, Scope, Session};

pub const ROUTES: &[Route] = &[
    // --- accounts ---
    r(
        "post",
        "/v1/session",
        Public,
        "Sign in with e-mail and password: sets the session cookie, answers the user, their \
         memberships and the CSRF token (a wrong e-mail and a wrong password get the same 401)",
        200,
        Some("Login"),
        Some("SessionInfo"),
        &[400, 401, 403, 429],
    ),
    r(
        "get",
        "/v1/session",
        Session,
        "Who is signed in, their memberships, and the CSRF token writes must carry",
        200,
        None,
        Some("SessionInfo"),
        &[],
    ),
    r(
        "delete",
        "/v1/session",
        Session,
        "Sign out (ends the session, clears the cookie)",
        204,
        None,
        None,
        &[],
    ),
    r(
        "get",
        "/v1/orgs/{org}/members",
        Role("viewer"),
        "List the organization's members and their roles",
        200,
        None,
        None,
        &[],
    ),
    r(
        "patch",
        "/v1/orgs/{org}/members/{user_id}",
        Role("admin"),
        "Change a member's role (admins: editors and viewers; owners: anyone; the last owner stays)",
        200,
        Some("ChangeRole"),
        None,
        &[404, 409],
    ),
    r(
        "delete",
        "/v1/orgs/{org}/members/{user_id}",
        Role("viewer"),
        "Remove a member, or leave (yourself); the last owner stays",
        204,
        None,
        None,
        &[404, 409],
    ),
    r(
        "post",
        "/v1/orgs/{org}/invitations",
        Role("admin"),
        "Invite an address with a role: a one-time token mailed, valid 7 days",
        201,
        Some("Invite"),
        Some("InvitationInfo"),
        &[409],
    ),
    r(
        "post",
        "/v1/invitations/accept",
        Public,
        "Accept an invitation (with a password when the address has no account yet)",
        200,
        Some("Accept"),
        Some("Accepted"),
        &[400, 403, 410],
    ),
    r(
        "post",
        "/v1/password-reset",
        Public,
        "Ask for a password reset link (always 202: nothing tells whether an account exists)",
        202,
        Some("ResetRequest"),
        None,
        &[400, 403, 429],
    ),
    r(
        "post",
        "/v1/password-reset/confirm",
        Public,
        "Set a new password with a reset token; ends every session of the user",
        200,
        Some("ResetConfirm"),
        Some("ResetDone"),
        &[400, 403, 410],
    ),
    r(
        "get",
        "/v1/audit",
        Role("admin"),
        "The audit log, newest first (limit, cursor, actor, action, from, to; org for the \
         operator, who reads every organization's)",
        200,
        None,
        Some("AuditPage"),
        &[400],
    ),
    // --- end accounts ---
    // --- domains ---
    r(
        "post",
        "/v1/domains",
        Scope("links:write"),
        "Claim a custom domain: pending, with a verification token the engines serve at \
         http://<name>/.well-known/links-domain-verification/<token> (IDN names stored as \
         punycode; 409 domain_exists / domain_taken for a claim of this organization, a name \
         another organization verified, or the deployment's own)",
        201,
        Some("CreateDomain"),
        Some("DomainJson"),
        &[400, 409],
    ),
    r(
        "get",
        "/v1/domains",
        Scope("links:read"),
        "The organization's domains",
        200,
        None,
        None,
        &[],
    ),
    r(
        "get",
        "/v1/domains/{name}",
        Scope("links:read"),
        "One of the organization's domains",
        200,
        None,
        Some("DomainJson"),
        &[404],
    ),
    r(
        "patch",
        "/v1/domains/{name}",
        Scope("links:write"),
        "Domain settings: root and not-found redirects (checked like link targets), http_mode \
         (serve | redirect-https), hsts_max_age (TLS answers only)",
        200,
        Some("PatchDomain"),
        Some("DomainJson"),
        &[400, 404],
    ),
    r(
        "delete",
        "/v1/domains/{name}",
        Scope("links:write"),
        "Delete a domain; 409 domain_in_use while live links use it, unless ?cascade=true \
         (which deletes them too)",
        204,
        None,
        None,
        &[404, 409],
    ),
    r(
        "post",
        "/v1/domains/{name}/verify",
        Scope("links:write"),
        "Verify a domain: control fetches the token from the name; on a match engines serve it \
         (422 verification_failed says why not; 409 domain_taken when another organization \
         verified it first)",
        200,
        None,
        Some("DomainJson"),
        &[404, 409, 422],
    ),
    r(
        "post",
        "/v1/links",
        Scope("links:write"),
        "Create a link, on the deployment's default domain or on one of the organization's \
         (`domain`; 422 unknown_domain otherwise). Idempotency-Key honoured: a replay answers \
         the first response, or 410 link_deleted when the link it created has been deleted since",
        201,
        Some("CreateLink"),
        Some("LinkJson"),
        &[409, 410, 422],
    ),
    r(
        "post",
        "/v1/links/bulk",
        Scope("links:write"),
        "Create, update and delete up to 1000 links in one request (`create`, `update`, \
         `delete`, run in that order). Per item, not all or nothing: each item's outcome is \
         its status and link or error, as the single request would have answered; the \
         request is one transaction, so with an Idempotency-Key a replay answers the same \
         outcomes. More than 1000 items: 400. Costs one rate-limit token per 10 items",
        200,
        Some("BulkRequest"),
        Some("BulkResponse"),
        &[400, 409, 422, 429],
    ),
    r(
        "get",
        "/v1/links",
        Scope("links:read"),
        "List links (limit, cursor, tag, disabled, created_after, created_before, q, domain)",
        200,
        None,
        None,
        &[400],
    ),
    r(
        "get",
        "/v1/links/{code}",
        Scope("links:read"),
        "Read a link (?domain= for one not on the default domain; ETag; If-None-Match gives 304)",
        200,
        None,
        Some("LinkJson"),
        &[304, 400, 404],
    ),
    r(
        "patch",
        "/v1/links/{code}",
        Scope("links:write"),
        "Update a link (?domain=; If-Match); a patch that changes nothing answers the same version and writes nothing",
        200,
        Some("PatchLink"),
        Some("LinkJson"),
        &[404, 412, 422],
    ),
    r(
        "delete",
        "/v1/links/{code}",
        Scope("links:write"),
        "Delete a link (?domain=; soft; the code is never reused on its domain)",
        204,
        None,
        None,
        &[400, 404, 412],
    ),
    r(
        "get",
        "/v1/links/{code}/stats",
        Scope("stats:read"),
        "Clicks and unique visitors (domain, from, to, bucket, dimensions, include_bots, format=json|csv)",
        200,
        None,
        None,
        &[400, 404, 503],
    ),
    r(
        "get",
        "/v1/links/{code}/qr",
        Scope("links:read"),
        "QR code of the short URL (domain, format=svg|png, size)",
        200,
        None,
        None,
        &[400, 404],
    ),
    r(
        "get",
        "/v1/stats/summary",
        Scope("stats:read"),
        "Top links of the organization (from, to, limit, include_bots, format)",
        200,
        None,
        None,
        &[400, 503],
    ),
    r(
        "post",
        "/v1/domains/{name}/certificate",
        Role("admin"),
        "Order the verified domain's TLS certificate now (first issuance or early renewal; \
         the operator may for any domain); 202, the order runs in the background; 409 \
         domain_not_verified, 503 without ACME",
        202,
        None,
        Some("CertificateStatus"),
        &[404, 409, 503],
    ),
    r(
        "get",
        "/v1/domains/{name}/certificate",
        Scope("links:read"),
        "The domain's certificate: status, chain, validity, next renewal, last error (never the key)",
        200,
        None,
        Some("CertificateStatus"),
        &[404],
    ),
    r(
        "post",
        "/v1/keys",
        Scope("admin"),
        "Create an API key of the organization (the secret is shown once)",
        201,
        Some("CreateKey"),
        None,
        &[],
    ),
    r(
        "get",
        "/v1/keys",
        Scope("admin"),
        "List the organization's API keys",
        200,
        None,
        None,
        &[],
    ),
    r(
        "delete",
        "/v1/keys/{id}",
        Scope("admin"),
        "Revoke an API key of the organization",
        204,
        None,
        None,
        &[400, 404],
    ),
    r(
        "post",
        "/v1/admin/blocklist",
        Operator,
        "Block a host and its subdomains, for every organization",
        201,
        Some("BlockHost"),
        Some("BlockedHost"),
        &[],
    ),
    r(
        "get",
        "/v1/admin/blocklist",
        Operator,
        "List blocked hosts",
        200,
        None,
        None,
        &[],
    ),
    r(
        "delete",
        "/v1/admin/blocklist/{host}",
        Operator,
        "Unblock a host",
        204,
        None,
        None,
        &[400, 404],
    ),
    r(
        "post",
        "/v1/admin/links/{code}/disable",
        Operator,
        "Disable any organization's link at once",
        200,
        None,
        Some("LinkJson"),
        &[400, 404],
    ),
    r(
        "post",
        "/v1/admin/links/{code}/enable",
        Operator,
        "Re-enable any organization's link",
        200,
        None,
        Some("LinkJson"),
        &[400, 404],
    ),
    r(
        "get",
        "/v1/admin/domains",
        Operator,
        "Every organization's domains, and the deployment's default domain",
        200,
        None,
        None,
        &[],
    ),
    r(
        "get",
        "/v1/admin/orgs",
        Operator,
        "List organizations with their live links and active keys",
        200,
        None,
        None,
        &[],
    ),
    r(
        "post",
        "/v1/admin/snapshots",
        Operator,
        "Build a snapshot and push it to the engines: 201 with a new generation, or 200 with \
         the latest one when it already holds every change made before the request (coalesced)",
        201,
        None,
        None,
        &[200],
    ),
    r(
        "get",
        "/v1/admin/snapshots",
        Operator,
        "List snapshot generations (file names, not paths)",
        200,
        None,
        None,
        &[],
    ),
    r("get", "/healthz", Public, "Liveness", 200, None, None, &[]),
    r(
        "get",
        "/readyz",
        Public,
        "Readiness: PostgreSQL reachable and the links stream accepted (503 with a reason otherwise)",
        200,
        None,
        None,
        &[503],
    ),
    r(
        "get",
        "/metrics",
        Public,
        "Prometheus metrics",
        200,
        None,
        None,
        &[],
    ),
    r(
        "get",
        "/openapi.json",
        Public,
        "This document",
        200,
        None,
        None,
        &[],
    ),
];

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
        409 => "alias_taken / conflict / last_owner",
        410 => {
            "link_deleted: an Idempotency-Key replay whose link has been deleted since; \
             token_used / token_expired: a spent or expired one-time token"
        }
        412 => "precondition_failed: If-Match names another version",
        413 => "payload_too_large: the body is over max_body_bytes",
        415 => "unsupported_media_type: the body is not application/json",
        422 => "blocked_host / idempotency_key_reused",
        429 => "rate_limited (Retry-After)",
        503 => "unavailable: a dependency (PostgreSQL, ClickHouse) is not reachable",
        _ => "error",
    }
}

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
        let error_body = json!({ "application/json": { "schema": schema_ref("Error") } });
        let mut responses = serde_json::Map::new();
        responses.insert(route.success.to_string(), success);
        let mut errors: Vec<u16> = route.errors.to_vec();
        if route.access != Access::Public {
            errors.extend([400, 401, 403, 429]);
        }
        if route.request.is_some() {
            errors.extend([400, 413, 415]);
        }
        errors.sort_unstable();
        errors.dedup();
        for status in errors {
            let mut response = json!({ "description": status_description(status) });
            if status >= 400 {
                response["content"] = error_body.clone();
            }
            responses.insert(status.to_string(), response);
        }
        responses.insert(
            "default".into(),
            json!({ "description": "error", "content": error_body }),
        );
        let mut op = json!({
            "summary": route.summary,
            "parameters": params,
            "responses": responses,
        });
        match route.access {
            Access::Scope(scope) => {
                op["security"] = json!([{ "apiKey": [scope] }]);
                op["description"] = json!(format!(
                    "Requires an organization's key with scope `{scope}` (or `admin`)."
                ));
            }
            Access::Operator => {
                op["security"] = json!([{ "apiKey": ["operator"] }]);
                op["description"] =
                    json!("Requires an operator key (`control keys create --operator`).");
            }
            Access::Public => {}
            Access::Session => {
                op["security"] = json!([{ "session": [] }]);
                op["description"] = json!(
                    "Requires a signed-in user (the session cookie); writes carry X-CSRF-Token."
                );
            }
            Access::Role(role) => {
                op["security"] = json!([{ "session": [] }, { "apiKey": ["admin"] }]);
                op["description"] = json!(format!(
                    "Requires a member of the organization (the path's `{{org}}`, else X-Org) \
                     with role `{role}` or higher (session; writes carry X-CSRF-Token), or an \
                     `admin` key of it."
                ));
            }
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
            "securitySchemes": {
                "apiKey": { "type": "http", "scheme": "bearer" },
                "session": { "type": "apiKey", "in": "cookie", "name": "__Host-session" }
            }
        }
    })
}
