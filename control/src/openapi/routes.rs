//! [`ROUTES`]: every operation of the API, the one place to add one (the
//! router serves it, the document describes it from here).

use super::route::{Access, Header, Link, Media, Route, no_params, only, params};
use crate::links::api::DomainParam;
use utoipa::openapi::path::Parameter;

fn link_stats_params() -> Vec<Parameter> {
    only::<crate::stats::StatsQuery>(crate::stats::LINK_STATS_PARAMS)
}

fn summary_params() -> Vec<Parameter> {
    only::<crate::stats::StatsQuery>(crate::stats::SUMMARY_PARAMS)
}

/// A new link's code leads to the operations on it.
const LINK_LINKS: &[Link] = &[
    Link {
        name: "GetLink",
        method: "get",
        path: "/v1/links/{code}",
        parameters: &[("code", "$response.body#/code")],
    },
    Link {
        name: "PatchLink",
        method: "patch",
        path: "/v1/links/{code}",
        parameters: &[("code", "$response.body#/code")],
    },
    Link {
        name: "DeleteLink",
        method: "delete",
        path: "/v1/links/{code}",
        parameters: &[("code", "$response.body#/code")],
    },
    Link {
        name: "LinkQr",
        method: "get",
        path: "/v1/links/{code}/qr",
        parameters: &[("code", "$response.body#/code")],
    },
    Link {
        name: "LinkStats",
        method: "get",
        path: "/v1/links/{code}/stats",
        parameters: &[("code", "$response.body#/code")],
    },
];

/// A new domain's name leads to the operations on it.
const DOMAIN_LINKS: &[Link] = &[
    Link {
        name: "GetDomain",
        method: "get",
        path: "/v1/domains/{name}",
        parameters: &[("name", "$response.body#/name")],
    },
    Link {
        name: "PatchDomain",
        method: "patch",
        path: "/v1/domains/{name}",
        parameters: &[("name", "$response.body#/name")],
    },
    Link {
        name: "DeleteDomain",
        method: "delete",
        path: "/v1/domains/{name}",
        parameters: &[("name", "$response.body#/name")],
    },
    Link {
        name: "VerifyDomain",
        method: "post",
        path: "/v1/domains/{name}/verify",
        parameters: &[("name", "$response.body#/name")],
    },
    Link {
        name: "GetCertificate",
        method: "get",
        path: "/v1/domains/{name}/certificate",
        parameters: &[("name", "$response.body#/name")],
    },
];

/// A queued export's job id leads to the job and its file.
const JOB_LINKS: &[Link] = &[
    Link {
        name: "GetJob",
        method: "get",
        path: "/v1/jobs/{id}",
        parameters: &[("id", "$response.body#/id")],
    },
    Link {
        name: "DownloadJob",
        method: "get",
        path: "/v1/jobs/{id}/download",
        parameters: &[("id", "$response.body#/id")],
    },
];

/// A blocked host leads to unblocking it.
const BLOCK_LINKS: &[Link] = &[Link {
    name: "UnblockHost",
    method: "delete",
    path: "/v1/admin/blocklist/{host}",
    parameters: &[("host", "$response.body#/host")],
}];

/// A new key's id leads to revoking it.
const KEY_LINKS: &[Link] = &[Link {
    name: "RevokeKey",
    method: "delete",
    path: "/v1/keys/{id}",
    parameters: &[("id", "$response.body#/key/id")],
}];

/// A new webhook's id leads to the operations on it.
const WEBHOOK_LINKS: &[Link] = &[
    Link {
        name: "GetWebhook",
        method: "get",
        path: "/v1/webhooks/{id}",
        parameters: &[("id", "$response.body#/webhook/id")],
    },
    Link {
        name: "PatchWebhook",
        method: "patch",
        path: "/v1/webhooks/{id}",
        parameters: &[("id", "$response.body#/webhook/id")],
    },
    Link {
        name: "DeleteWebhook",
        method: "delete",
        path: "/v1/webhooks/{id}",
        parameters: &[("id", "$response.body#/webhook/id")],
    },
    Link {
        name: "WebhookDeadLetters",
        method: "get",
        path: "/v1/webhooks/{id}/dead-letters",
        parameters: &[("id", "$response.body#/webhook/id")],
    },
];

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
        query: no_params,
        headers: &[],
        media: Media::Json,
        links: &[],
        error_body: None,
    }
}

use Access::{Operator, Public, Role, Scope, Session};
use Header::{ETag, IdempotencyKey, IfMatch, IfNoneMatch, Location};

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
        Some("MemberList"),
        &[],
    ),
    r(
        "patch",
        "/v1/orgs/{org}/members/{user_id}",
        Role("admin"),
        "Change a member's role (admins: editors and viewers; owners: anyone; the last owner stays)",
        200,
        Some("ChangeRole"),
        Some("RoleChanged"),
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
    ).query(params::<crate::audit_log::AuditQuery>),
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
    ).headers(&[Location]).links(DOMAIN_LINKS),
    r(
        "get",
        "/v1/domains",
        Scope("links:read"),
        "The organization's domains",
        200,
        None,
        Some("DomainList"),
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
    ).query(params::<crate::domains::api::DeleteQuery>),
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
    ).headers(&[IdempotencyKey, ETag, Location]).links(LINK_LINKS),
    r(
        "post",
        "/v1/links/bulk",
        Scope("links:write"),
        "Create, update and delete up to 1000 links in one request (`create`, `update`, \
         `delete`, run in that order). Per item, not all or nothing: each item's outcome is \
         its status and link or error, as the single request would have answered; the \
         request is one transaction, so with an Idempotency-Key a replay answers the same \
         outcomes. An item whose values are well typed but invalid (a target that is not an \
         http(s) URL, a code with a forbidden byte) fails alone, with its own 400 in the \
         outcomes. More than 1000 items, or an item whose shape the schema forbids (no \
         target, a wrong type, a status that is not a redirect): 400 for the whole request. \
         Costs one rate-limit token per 10 items",
        200,
        Some("BulkRequest"),
        Some("BulkResponse"),
        &[400, 409, 422, 429],
    ).headers(&[IdempotencyKey]),
    r(
        "get",
        "/v1/links",
        Scope("links:read"),
        "List links (limit, cursor, tag, disabled, created_after, created_before, q, domain)",
        200,
        None,
        Some("LinkPage"),
        &[400, 404],
    ).query(params::<crate::links::api::ListQuery>),
    r(
        "get",
        "/v1/links/{code}",
        Scope("links:read"),
        "Read a link (?domain= for one not on the default domain; ETag; If-None-Match gives 304)",
        200,
        None,
        Some("LinkJson"),
        &[304, 400, 404],
    ).query(params::<DomainParam>).headers(&[IfNoneMatch, ETag]),
    r(
        "patch",
        "/v1/links/{code}",
        Scope("links:write"),
        "Update a link (?domain=; If-Match); a patch that changes nothing answers the same version and writes nothing",
        200,
        Some("PatchLink"),
        Some("LinkJson"),
        &[404, 412, 422],
    ).query(params::<DomainParam>).headers(&[IfMatch, ETag]),
    r(
        "delete",
        "/v1/links/{code}",
        Scope("links:write"),
        "Delete a link (?domain=; soft; the code is never reused on its domain)",
        204,
        None,
        None,
        &[400, 404, 412],
    ).query(params::<DomainParam>).headers(&[IfMatch]),
    r(
        "get",
        "/v1/links/{code}/stats",
        Scope("stats:read"),
        "Clicks (exact) and unique visitors (an estimate, within 6.5 %) (domain, from, to, bucket, dimensions, include_bots, format=json|csv)",
        200,
        None,
        Some("LinkStats"),
        &[400, 404, 503],
    ).query(link_stats_params).media(Media::JsonOrCsv),
    r(
        "get",
        "/v1/links/{code}/qr",
        Scope("links:read"),
        "QR code of the short URL (domain, format=svg|png, size)",
        200,
        None,
        None,
        &[400, 404],
    ).query(params::<crate::qr::QrQuery>).media(Media::Image),
    r(
        "get",
        "/v1/stats/summary",
        Scope("stats:read"),
        "Top links of the organization (from, to, limit, include_bots, format)",
        200,
        None,
        Some("StatsSummary"),
        &[400, 503],
    ).query(summary_params).media(Media::JsonOrCsv),
    r(
        "post",
        "/v1/exports",
        Scope("stats:read"),
        "Export the organization's click data as a job: raw clicks (`kind: clicks`) or rollup \
         rows per bucket, link and dimensions (`kind: rollup`), over from..to (at most \
         export_max_range_days), one link (`code`, `domain`) or all, filtered by country, \
         device, referrer, language and traffic (human, bot, preview; default human), as csv \
         or ndjson. 202 with the queued job; 422 invalid_export names a value the export \
         cannot take; 429 too_many_exports while the organization has export_max_active \
         jobs queued or running; 503 without ClickHouse",
        202,
        Some("CreateExport"),
        Some("JobJson"),
        &[422, 429, 503],
    ).headers(&[Location]).links(JOB_LINKS),
    r(
        "get",
        "/v1/jobs",
        Scope("stats:read"),
        "The organization's jobs, newest first (limit; finished jobs stay a week)",
        200,
        None,
        Some("JobList"),
        &[400],
    ).query(params::<crate::exports::api::JobsQuery>),
    r(
        "get",
        "/v1/jobs/{id}",
        Scope("stats:read"),
        "A job of the organization: state (queued, running, done, failed, expired), rows and \
         bytes written, error, expiry, and download_url once done",
        200,
        None,
        Some("JobJson"),
        &[404],
    ),
    r(
        "get",
        "/v1/jobs/{id}/download",
        Scope("stats:read"),
        "A done export's file, streamed (text/csv, application/x-ndjson or \
         application/vnd.apache.parquet). 409 \
         export_not_ready while queued or running, 409 export_failed, 410 export_expired \
         once deleted, 503 when the file is on another control instance's disk",
        200,
        None,
        None,
        &[404, 409, 410, 503],
    ).media(Media::Export),
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
        Some("CreatedKey"),
        &[],
    ).links(KEY_LINKS),
    r(
        "get",
        "/v1/keys",
        Scope("admin"),
        "List the organization's API keys",
        200,
        None,
        Some("KeyList"),
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
    // --- webhooks ---
    r(
        "post",
        "/v1/webhooks",
        Scope("admin"),
        "Add a webhook endpoint of the organization: https on a public host (400 naming url \
         otherwise), the events it gets; the signing secret is shown once; 409 at 20 \
         endpoints, 503 when webhooks are off (no webhook_key_file)",
        201,
        Some("CreateWebhook"),
        Some("CreatedWebhook"),
        &[409, 503],
    ).headers(&[Location]).links(WEBHOOK_LINKS),
    r(
        "get",
        "/v1/webhooks",
        Scope("admin"),
        "The organization's webhook endpoints, with each one's circuit breaker",
        200,
        None,
        Some("WebhookList"),
        &[503],
    ),
    r(
        "get",
        "/v1/webhooks/{id}",
        Scope("admin"),
        "One webhook endpoint (never its secret)",
        200,
        None,
        Some("WebhookJson"),
        &[404, 503],
    ),
    r(
        "patch",
        "/v1/webhooks/{id}",
        Scope("admin"),
        "Change a webhook endpoint's url, events or active switch",
        200,
        Some("PatchWebhook"),
        Some("WebhookJson"),
        &[404, 503],
    ),
    r(
        "delete",
        "/v1/webhooks/{id}",
        Scope("admin"),
        "Delete a webhook endpoint with its queued deliveries and dead letters",
        204,
        None,
        None,
        &[404, 503],
    ),
    r(
        "post",
        "/v1/webhooks/{id}/rotate-secret",
        Scope("admin"),
        "A new signing secret for the endpoint, shown once; the old one signs nothing from now on",
        200,
        None,
        Some("CreatedWebhook"),
        &[404, 503],
    ),
    r(
        "get",
        "/v1/webhooks/{id}/dead-letters",
        Scope("admin"),
        "The endpoint's dead letters (deliveries that used every attempt), newest first, paged",
        200,
        None,
        Some("DeadLetterPage"),
        &[404, 503],
    ).query(params::<crate::webhooks::api::DeadLetterQuery>),
    r(
        "post",
        "/v1/webhooks/{id}/dead-letters/{delivery}/redeliver",
        Scope("admin"),
        "Send a dead letter again: queued with its attempts back to zero (202)",
        202,
        None,
        Some("Redelivery"),
        &[404, 503],
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
    )
    .links(BLOCK_LINKS),
    r(
        "get",
        "/v1/admin/blocklist",
        Operator,
        "List blocked hosts",
        200,
        None,
        Some("BlockedHostList"),
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
    ).query(params::<DomainParam>),
    r(
        "post",
        "/v1/admin/links/{code}/enable",
        Operator,
        "Re-enable any organization's link",
        200,
        None,
        Some("LinkJson"),
        &[400, 404],
    ).query(params::<DomainParam>),
    r(
        "get",
        "/v1/admin/domains",
        Operator,
        "Every organization's domains, and the deployment's default domain",
        200,
        None,
        Some("AllDomains"),
        &[],
    ),
    r(
        "get",
        "/v1/admin/orgs",
        Operator,
        "List organizations with their live links and active keys",
        200,
        None,
        Some("OrgList"),
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
        Some("BuildResult"),
        &[200],
    ),
    r(
        "get",
        "/v1/admin/snapshots",
        Operator,
        "List snapshot generations (file names, not paths)",
        200,
        None,
        Some("GenerationList"),
        &[],
    ),
    r(
        "get",
        "/healthz",
        Public,
        "Liveness",
        200,
        None,
        Some("Health"),
        &[],
    ),
    r(
        "get",
        "/readyz",
        Public,
        "Readiness: PostgreSQL reachable and the links stream accepted (503 with a reason otherwise)",
        200,
        None,
        Some("Readiness"),
        &[503],
    )
    .error_body("Readiness"),
    r(
        "get",
        "/metrics",
        Public,
        "Prometheus metrics",
        200,
        None,
        None,
        &[],
    ).media(Media::Prometheus),
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
