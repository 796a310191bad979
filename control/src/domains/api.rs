//! Handlers of `/v1/domains` (an organization's) and `/v1/admin/domains`
//! (the operator's listing). Reading needs `links:read` (a viewer), writing
//! `links:write` (an editor or admin), as for links.

use super::input::{self, CreateDomain, PatchDomain};
use super::model::{AllDomains, DomainJson, DomainList};
use super::store;
use super::{dns, verify};
use crate::audit::audit;
use crate::auth::{Auth, Scope};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query};
use crate::links::store::Owner;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use snapshots::delta::LinkChange;

/// Length of a verification token (base62: about 190 bits).
const TOKEN_LEN: usize = 32;

/// Names nobody may claim: the deployment's own and their subdomains.
fn reserved(state: &AppState, name: &str) -> bool {
    let short_host = url::Url::parse(&state.config.short_base)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default();
    let default = state.config.default_domain.as_deref().unwrap_or("");
    input::within(name, default) || input::within(name, &short_host)
}

/// `POST /v1/domains`: claims a name, pending until verified.
pub async fn create(
    State(state): State<AppState>,
    auth: Auth,
    Json(req): Json<CreateDomain>,
) -> ApiResult<Response> {
    let org_id = auth.org(Scope::LinksWrite)?;
    let name = input::normalize_name("name", &req.name)?;
    if reserved(&state, &name) {
        return Err(ApiError::DomainTaken { name });
    }
    let token = crate::codes::random_base62(TOKEN_LEN);
    let mut tx = state.db.begin().await?;
    if store::verified_elsewhere(&mut tx, &name, org_id).await? {
        return Err(ApiError::DomainTaken { name });
    }
    let row = store::insert(&mut tx, org_id, &name, &token).await?;
    audit(
        &mut tx,
        Some(org_id),
        auth.actor(),
        "domain.create",
        &row.name,
        json!({ "id": row.id }),
    )
    .await?;
    // Engines learn of the pending domain (so a deployment without a named
    // default domain stops answering unknown names as the default domain)
    // and of its verification answer.
    store::announce(&mut tx, &row).await?;
    store::record_change(
        &mut tx,
        &row.name,
        LinkChange::WellKnownUpsert {
            answer: store::verification_answer(&row),
        },
    )
    .await?;
    tx.commit().await?;
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
    let org_id = auth.org(Scope::LinksRead)?;
    let mut conn = state.db.acquire().await?;
    let rows = store::list(&mut conn, Some(org_id)).await?;
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

/// A name from the path, normalised; one that cannot be a domain is a 404
/// (it cannot exist), never a query with it.
fn path_name(raw: &str) -> ApiResult<String> {
    input::normalize_name("name", raw).map_err(|_| ApiError::NotFound { what: "domain" })
}

/// `GET /v1/domains/{name}`.
pub async fn get(
    State(state): State<AppState>,
    auth: Auth,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<DomainJson>> {
    let org_id = auth.org(Scope::LinksRead)?;
    let name = path_name(&name)?;
    let mut conn = state.db.acquire().await?;
    let row = store::find(&mut conn, Owner::Org(org_id), &name, false).await?;
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
    let org_id = auth.org(Scope::LinksWrite)?;
    let name = path_name(&name)?;
    let check_url = |field: &str, url: Option<String>| -> ApiResult<Option<String>> {
        url.map(|u| {
            state
                .targets
                .check(&u)
                .map(|t| t.url)
                .map_err(|e| ApiError::invalid_field(field, e))
        })
        .transpose()
    };
    let root = req
        .root_redirect
        .map(|u| check_url("root_redirect", u))
        .transpose()?;
    let not_found = req
        .not_found_redirect
        .map(|u| check_url("not_found_redirect", u))
        .transpose()?;
    let mode = req
        .http_mode
        .as_deref()
        .map(input::check_http_mode)
        .transpose()?;
    let hsts = req
        .hsts_max_age
        .map(|age| age.map(input::check_hsts).transpose())
        .transpose()?;

    let mut tx = state.db.begin().await?;
    let mut row = store::find(&mut tx, Owner::Org(org_id), &name, true).await?;
    let before = (
        row.root_redirect.clone(),
        row.not_found_redirect.clone(),
        row.http_mode.clone(),
        row.hsts_max_age,
    );
    if let Some(v) = root {
        row.root_redirect = v;
    }
    if let Some(v) = not_found {
        row.not_found_redirect = v;
    }
    if let Some(v) = mode {
        row.http_mode = v;
    }
    if let Some(v) = hsts {
        row.hsts_max_age = v;
    }
    let after = (
        row.root_redirect.clone(),
        row.not_found_redirect.clone(),
        row.http_mode.clone(),
        row.hsts_max_age,
    );
    if before == after {
        tx.rollback().await?;
        return Ok(axum::Json(row.to_json(state.config.domain_verification)));
    }
    let row = store::save_settings(&mut tx, &row).await?;
    audit(
        &mut tx,
        Some(org_id),
        auth.actor(),
        "domain.update",
        &row.name,
        json!({
            "root_redirect": row.root_redirect,
            "not_found_redirect": row.not_found_redirect,
            "http_mode": row.http_mode,
            "hsts_max_age": row.hsts_max_age,
        }),
    )
    .await?;
    store::announce(&mut tx, &row).await?;
    tx.commit().await?;
    Ok(axum::Json(row.to_json(state.config.domain_verification)))
}

/// `POST /v1/domains/{name}/verify`: checks the proof the deployment asks
/// for (the TXT record, the token fetched from the name, or both); once
/// proven the domain is verified and engines serve it. Already verified: the
/// domain as it is.
pub async fn verify(
    State(state): State<AppState>,
    auth: Auth,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<DomainJson>> {
    let org_id = auth.org(Scope::LinksWrite)?;
    let name = path_name(&name)?;
    let row = {
        let mut conn = state.db.acquire().await?;
        store::find(&mut conn, Owner::Org(org_id), &name, false).await?
    };
    if row.verified_at.is_some() {
        return Ok(axum::Json(row.to_json(state.config.domain_verification)));
    }
    // The checks happen outside any transaction: they may take seconds.
    let method = state.config.domain_verification;
    let failed = |reason| ApiError::VerificationFailed {
        name: row.name.clone(),
        reason,
    };
    if method.needs_dns() {
        dns::check(state.config.dns_server, &row.name, &row.verification_token)
            .await
            .map_err(failed)?;
    }
    if method.needs_http() {
        verify::check(
            &state.config.verify_resolve,
            &row.name,
            &row.verification_path(),
            &row.verification_token,
        )
        .await
        .map_err(failed)?;
    }
    let mut tx = state.db.begin().await?;
    let row = store::find(&mut tx, Owner::Org(org_id), &name, true).await?;
    if row.verified_at.is_some() {
        tx.rollback().await?;
        return Ok(axum::Json(row.to_json(state.config.domain_verification)));
    }
    let row = store::set_verified(&mut tx, &row).await?;
    audit(
        &mut tx,
        Some(org_id),
        auth.actor(),
        "domain.verify",
        &row.name,
        json!({ "id": row.id }),
    )
    .await?;
    store::announce(&mut tx, &row).await?;
    tx.commit().await?;
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
    let org_id = auth.org(Scope::LinksWrite)?;
    let name = path_name(&name)?;
    let mut tx = state.db.begin().await?;
    let row = store::find(&mut tx, Owner::Org(org_id), &name, true).await?;
    let links = store::live_links(&mut tx, row.id).await?;
    if links > 0 && !q.cascade {
        return Err(ApiError::DomainInUse {
            name: row.name,
            links,
        });
    }
    let answers = store::delete(&mut tx, &row).await?;
    audit(
        &mut tx,
        Some(org_id),
        auth.actor(),
        "domain.delete",
        &row.name,
        json!({ "id": row.id, "links_deleted": links }),
    )
    .await?;
    store::record_change(
        &mut tx,
        &row.name,
        LinkChange::DomainDelete { id: row.id as u32 },
    )
    .await?;
    for (host, path) in answers {
        store::record_change(
            &mut tx,
            &host,
            LinkChange::WellKnownDelete {
                host: host.clone(),
                path,
            },
        )
        .await?;
    }
    tx.commit().await?;
    if links > 0 {
        state.metrics.links_written.inc();
    }
    Ok(StatusCode::NO_CONTENT)
}
