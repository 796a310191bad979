//! Handlers of `/v1/domains` (an organization's) and `/v1/admin/domains`
//! (the operator's listing): JSON in and out around [`super::actions`],
//! which holds the rules (reading needs `links:read`, writing
//! `links:write`, as for links) and the work, shared with the dashboard.

use super::actions;
use super::input::{CreateDomain, PatchDomain};
use super::model::{AllDomains, DomainJson, DomainList};
use super::store;
use crate::auth::Auth;
use crate::error::ApiResult;
use crate::extract::{Json, Path, Query};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

/// `POST /v1/domains`: claims a name, pending until verified.
pub async fn create(
    State(state): State<AppState>,
    auth: Auth,
    Json(req): Json<CreateDomain>,
) -> ApiResult<Response> {
    let row = actions::create_domain(&state, &auth, &req.name).await?;
    let mut r = (
        StatusCode::CREATED,
        axum::Json(row.to_json(state.config.domain_verification)),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/v1/domains/{}", row.name)) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    Ok(r)
}

/// `GET /v1/domains`.
pub async fn list(State(state): State<AppState>, auth: Auth) -> ApiResult<axum::Json<DomainList>> {
    let rows = actions::list_domains(&state, &auth).await?;
    let domains: Vec<DomainJson> = rows
        .iter()
        .map(|r| r.to_json(state.config.domain_verification))
        .collect();
    Ok(axum::Json(DomainList { domains }))
}

/// `GET /v1/admin/domains`: every organization's (the operator's).
pub async fn list_all(
    State(state): State<AppState>,
    auth: Auth,
) -> ApiResult<axum::Json<AllDomains>> {
    auth.operator()?;
    let mut conn = state.db.acquire().await?;
    let rows = store::list(&mut conn, None).await?;
    let domains: Vec<DomainJson> = rows
        .iter()
        .map(|r| r.to_json(state.config.domain_verification))
        .collect();
    Ok(axum::Json(AllDomains {
        default_domain: state.config.default_domain.clone(),
        domains,
    }))
}

/// `GET /v1/domains/{name}`.
pub async fn get(
    State(state): State<AppState>,
    auth: Auth,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<DomainJson>> {
    let row = actions::get_domain(&state, &auth, &name).await?;
    Ok(axum::Json(row.to_json(state.config.domain_verification)))
}

/// `PATCH /v1/domains/{name}`: settings. A patch that changes nothing writes
/// nothing.
pub async fn patch(
    State(state): State<AppState>,
    auth: Auth,
    Path(name): Path<String>,
    Json(req): Json<PatchDomain>,
) -> ApiResult<axum::Json<DomainJson>> {
    let row = actions::update_domain(&state, &auth, &name, req).await?;
    Ok(axum::Json(row.to_json(state.config.domain_verification)))
}

/// `POST /v1/domains/{name}/verify`: checks the proof the deployment asks
/// for; once proven the domain is verified and engines serve it.
pub async fn verify(
    State(state): State<AppState>,
    auth: Auth,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<DomainJson>> {
    let row = actions::verify_domain(&state, &auth, &name).await?;
    Ok(axum::Json(row.to_json(state.config.domain_verification)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeleteQuery {
    /// Delete the domain's live links with it.
    #[serde(default)]
    pub cascade: bool,
}

/// `DELETE /v1/domains/{name}`: refused (409 `domain_in_use`) while live
/// links use the domain, unless `?cascade=true`, which deletes them too.
pub async fn delete(
    State(state): State<AppState>,
    auth: Auth,
    Path(name): Path<String>,
    Query(q): Query<DeleteQuery>,
) -> ApiResult<StatusCode> {
    actions::delete_domain(&state, &auth, &name, q.cascade).await?;
    Ok(StatusCode::NO_CONTENT)
}
