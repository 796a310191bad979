//! Disabling and re-enabling any organization's link (codes are unique
//! across organizations, so the code alone names it).

use crate::auth::Auth;
use crate::error::ApiResult;
use crate::extract::Path;
use crate::links::api::set_disabled;
use crate::links::model::LinkJson;
use crate::links::store::Owner;
use crate::state::AppState;
use axum::extract::State;

pub async fn disable(
    State(state): State<AppState>,
    auth: Auth,
    Path(code): Path<String>,
) -> ApiResult<axum::Json<LinkJson>> {
    auth.operator()?;
    let row = set_disabled(&state, Owner::Any, auth.actor(), &code, true).await?;
    Ok(axum::Json(row.to_json(state.short_base())))
}

pub async fn enable(
    State(state): State<AppState>,
    auth: Auth,
    Path(code): Path<String>,
) -> ApiResult<axum::Json<LinkJson>> {
    auth.operator()?;
    let row = set_disabled(&state, Owner::Any, auth.actor(), &code, false).await?;
    Ok(axum::Json(row.to_json(state.short_base())))
}
