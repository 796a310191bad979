//! `POST` and `GET /v1/domains/{name}/certificate`.
//!
//! Who may: asking for a certificate (issuance or an early renewal) is for
//! the operator and for the domain's organization's admins and owners (keys
//! with the `admin` scope); reading its status for any member or key of that
//! organization that may read links, and the operator. Another
//! organization's domain is a 404, as if it did not exist. Neither answer
//! ever holds a private key.

use super::store::{self, CertificateStatus};
use crate::audit::audit;
use crate::auth::{Auth, Principal, Role};
use crate::error::{ApiError, ApiResult};
use crate::extract::Path;
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::json;

/// A live domain the caller may see: its id and whether it is verified.
#[derive(Debug, sqlx::FromRow)]
struct DomainRef {
    id: i64,
    org_id: Option<i64>,
    verified: bool,
}

/// The domain `name` of organization `org_id` (`None`: any organization's).
async fn find_domain(state: &AppState, org_id: Option<i64>, name: &str) -> ApiResult<DomainRef> {
    sqlx::query_as(
        "SELECT id, org_id, verified_at IS NOT NULL AS verified FROM domains
          WHERE name = $1 AND id <> 0 AND deleted_at IS NULL
            AND ($2::bigint IS NULL OR org_id = $2)
          ORDER BY verified_at IS NULL, id LIMIT 1",
    )
    .bind(name)
    .bind(org_id)
    .fetch_optional(&state.db)
    .await?
    .ok_or(ApiError::NotFound { what: "domain" })
}

fn acme_on(state: &AppState) -> ApiResult<&super::Acme> {
    state
        .acme
        .as_deref()
        .ok_or(ApiError::Unavailable("ACME (--acme-directory)"))
}

/// Who may order a certificate: the operator (`None`: any organization's
/// domain), or an admin or owner of the domain's organization (keys: the
/// `admin` scope).
pub fn may_request(auth: &Auth) -> ApiResult<Option<i64>> {
    match auth.principal {
        Principal::Operator => Ok(None),
        _ => Ok(Some(auth.member(Role::Admin)?.0)),
    }
}

/// Who may read a certificate's status: the operator, or whoever may read
/// the organization's domains.
pub fn may_read(auth: &Auth) -> ApiResult<Option<i64>> {
    match auth.principal {
        Principal::Operator => Ok(None),
        _ => Ok(Some(crate::domains::actions::may_read(auth)?)),
    }
}

/// The domain wants https: makes its certificate due now (the first, or a
/// renewal ahead of time) and wakes the renewal task. A pending
/// (unverified) domain is a 409; without ACME a 503. The API's `POST` and
/// the dashboard's button both come here.
pub async fn request_certificate(
    state: &AppState,
    auth: &Auth,
    raw_name: &str,
) -> ApiResult<CertificateStatus> {
    let org_id = may_request(auth)?;
    let acme = acme_on(state)?;
    let name = crate::domains::input::normalize_name("name", raw_name)?;
    let domain = find_domain(state, org_id, &name).await?;
    if !domain.verified {
        return Err(ApiError::DomainNotVerified { name });
    }
    let mut tx = state.db.begin().await?;
    let status = store::request(&mut tx, &name).await?;
    audit(
        &mut tx,
        domain.org_id,
        auth.actor(),
        "certificate.request",
        &name,
        json!({ "domain_id": domain.id }),
    )
    .await?;
    tx.commit().await?;
    acme.wake.notify_one();
    Ok(status)
}

/// The status of a domain's certificate; 404 when https was never
/// requested.
pub async fn certificate_status(
    state: &AppState,
    auth: &Auth,
    raw_name: &str,
) -> ApiResult<CertificateStatus> {
    let org_id = may_read(auth)?;
    let name = crate::domains::input::normalize_name("name", raw_name)?;
    find_domain(state, org_id, &name).await?;
    store::status(&state.db, &name)
        .await?
        .ok_or(ApiError::NotFound {
            what: "certificate",
        })
}

/// `POST /v1/domains/{name}/certificate`: 202 with the status; the order
/// runs in the background and its outcome shows in `GET`.
pub async fn request(
    State(state): State<AppState>,
    auth: Auth,
    Path(name): Path<String>,
) -> ApiResult<(StatusCode, axum::Json<CertificateStatus>)> {
    let status = request_certificate(&state, &auth, &name).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(status)))
}

/// `GET /v1/domains/{name}/certificate`: the certificate's status.
pub async fn get(
    State(state): State<AppState>,
    auth: Auth,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<CertificateStatus>> {
    Ok(axum::Json(certificate_status(&state, &auth, &name).await?))
}
