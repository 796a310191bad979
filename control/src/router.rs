//! Every route of the service and the layers around them. This module
//! imports the handlers; handlers import [`crate::state`], never this.

use crate::error::ApiError;
use crate::state::AppState;
use crate::{accounts, acme, audit_log, cors, dashboard};
use crate::{admin, domains, exports, health, keys, links, middleware, openapi, qr};
use crate::{snapshot_pull, stats, webhooks};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post};

/// Every route of the service. [`crate::openapi`] describes the same table.
pub fn router(state: AppState) -> Router {
    let v1 = Router::new()
        .route("/links", post(links::api::create).get(links::api::list))
        .route("/links/bulk", post(links::bulk::bulk))
        .route(
            "/links/{code}",
            get(links::api::get)
                .patch(links::api::patch)
                .delete(links::api::delete),
        )
        .route("/links/{code}/stats", get(stats::link_stats))
        .route("/links/{code}/qr", get(qr::qr))
        .route("/stats/summary", get(stats::summary))
        .route("/exports", post(exports::api::create))
        .route("/jobs", get(exports::api::list))
        .route("/jobs/{id}", get(exports::api::get))
        .route("/jobs/{id}/download", get(exports::api::download))
        .route(
            "/domains",
            post(domains::api::create).get(domains::api::list),
        )
        .route(
            "/domains/{name}",
            get(domains::api::get)
                .patch(domains::api::patch)
                .delete(domains::api::delete),
        )
        .route("/domains/{name}/verify", post(domains::api::verify))
        .route("/admin/domains", get(domains::api::list_all))
        .route("/keys", post(keys::create).get(keys::list))
        .route(
            "/webhooks",
            post(webhooks::api::create).get(webhooks::api::list),
        )
        .route(
            "/webhooks/{id}",
            get(webhooks::api::get)
                .patch(webhooks::api::patch)
                .delete(webhooks::api::delete),
        )
        .route("/webhooks/{id}/rotate-secret", post(webhooks::api::rotate))
        .route(
            "/webhooks/{id}/dead-letters",
            get(webhooks::api::dead_letters),
        )
        .route(
            "/webhooks/{id}/dead-letters/{delivery}/redeliver",
            post(webhooks::api::redeliver),
        )
        .route("/keys/{id}", delete(keys::revoke))
        .route(
            "/admin/blocklist",
            post(admin::blocklist::block).get(admin::blocklist::list),
        )
        .route("/admin/blocklist/{host}", delete(admin::blocklist::unblock))
        .route("/admin/links/{code}/disable", post(admin::links::disable))
        .route("/admin/links/{code}/enable", post(admin::links::enable))
        .route("/admin/orgs", get(admin::orgs::list))
        .route(
            "/domains/{name}/certificate",
            post(acme::api::request).get(acme::api::get),
        )
        .route(
            "/admin/snapshots",
            post(admin::snapshots::build).get(admin::snapshots::list),
        );
    let v1 = v1.merge(accounts_routes());
    let app = Router::new()
        .nest("/v1", v1)
        .merge(dashboard::routes::routes())
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/openapi.json", get(openapi::serve))
        // The engines' route, not the public API's (not in the document).
        .route("/engine/snapshot", get(snapshot_pull::latest))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .layer(from_fn_with_state(state.clone(), middleware::limit))
        .layer(from_fn_with_state(state.clone(), middleware::observe));
    // Outermost, so a preflight is answered before anything else runs.
    let app = match cors::layer(&state.config) {
        Some(cors) => app.layer(cors),
        None => app,
    };
    app.with_state(state)
}

/// Users, sessions, members, invitations, password resets, the audit log.
fn accounts_routes() -> Router<AppState> {
    use accounts::{invitations, members, reset, sessions};
    Router::new()
        .route(
            "/session",
            post(sessions::login)
                .get(sessions::current)
                .delete(sessions::logout),
        )
        .route("/orgs/{org}/members", get(members::list))
        .route(
            "/orgs/{org}/members/{user_id}",
            patch(members::change_role).delete(members::remove),
        )
        .route("/orgs/{org}/invitations", post(invitations::create))
        .route("/invitations/accept", post(invitations::accept))
        .route("/password-reset", post(reset::request))
        .route("/password-reset/confirm", post(reset::confirm))
        .route("/audit", get(audit_log::list))
}

async fn not_found() -> ApiError {
    ApiError::NotFound { what: "route" }
}

async fn method_not_allowed() -> Response {
    let body = serde_json::json!({ "error": {
        "code": "method_not_allowed",
        "message": "this method is not allowed on this route",
        "details": null
    }});
    (StatusCode::METHOD_NOT_ALLOWED, axum::Json(body)).into_response()
}
