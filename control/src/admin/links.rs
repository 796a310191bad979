//! Disabling and re-enabling any organization's link. Codes are unique per
//! domain: the code names it on the default domain, `?domain=` on another
//! (the verified domain of that name, else a pending claim of it).

use crate::auth::Auth;
use crate::error::ApiResult;
use crate::extract::{Path, Query};
use crate::links::api::{DomainParam, set_disabled};
use crate::links::model::LinkJson;
use crate::links::store::Owner;
use crate::state::AppState;
use axum::extract::State;

pub async fn disable(
    State(state): State<AppState>,
    auth: Auth,
    Path(code): Path<String>,
    Query(on): Query<DomainParam>,
) -> ApiResult<axum::Json<LinkJson>> {
    auth.operator()?;
    let domain = on.domain.as_deref();
    let row = set_disabled(&state, Owner::Any, auth.actor(), domain, &code, true).await?;
    Ok(axum::Json(row.to_json(state.short_base())))
}

pub async fn enable(
    State(state): State<AppState>,
    auth: Auth,
    Path(code): Path<String>,
    Query(on): Query<DomainParam>,
) -> ApiResult<axum::Json<LinkJson>> {
    auth.operator()?;
    let domain = on.domain.as_deref();
    let row = set_disabled(&state, Owner::Any, auth.actor(), domain, &code, false).await?;
    Ok(axum::Json(row.to_json(state.short_base())))
}
