//! Handlers of `/v1/webhooks`: an organization's endpoints, their secrets
//! and dead letters. Every route needs the `admin` scope (owners, admins,
//! `admin` keys): an endpoint receives the organization's data and its
//! secret signs for it, so it is a setting of the organization, not of its
//! links. The operator has no organization here (403), as for keys.

use super::Webhooks;
use super::input::{CreateWebhook, MAX_ENDPOINTS, PatchWebhook, check_events};
use super::store::{self, DeadLetter, EndpointRow, WebhookJson};
use crate::audit::audit;
use crate::auth::{Auth, Scope};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::Arc;

/// `POST /v1/webhooks` and rotation: the endpoint and its secret, shown
/// this once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedWebhook {
    pub webhook: WebhookJson,
    /// The signing secret (`whsec_…`): HMAC-SHA256 key of the
    /// `Shortener-Signature` header. Shown only here.
    pub secret: String,
}

/// `GET /v1/webhooks`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WebhookList {
    pub webhooks: Vec<WebhookJson>,
}

/// `GET /v1/webhooks/{id}/dead-letters`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeadLetterPage {
    pub dead_letters: Vec<DeadLetter>,
    pub next_cursor: Option<String>,
}

/// `POST /v1/webhooks/{id}/dead-letters/{delivery}/redeliver`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Redelivery {
    /// The delivery, queued again with its attempts back to zero.
    pub id: i64,
    pub event_id: String,
    pub state: &'static str,
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeadLetterQuery {
    /// Page size (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// The previous page's `next_cursor`.
    pub cursor: Option<String>,
}

/// Most dead letters a page holds.
pub const MAX_LIMIT: i64 = 500;
/// The dead-letter listing's cursor tag.
const CURSOR_TAG: &str = "w1";

/// The caller's organization (`admin`) and the service, or 503 when
/// webhooks are off.
fn context(state: &AppState, auth: &Auth) -> ApiResult<(i64, Arc<Webhooks>)> {
    let org_id = auth.org(Scope::Admin)?;
    let webhooks = state
        .webhooks
        .clone()
        .ok_or(ApiError::Unavailable("webhooks (--webhook-key-file)"))?;
    Ok((org_id, webhooks))
}

fn shown(state: &AppState, row: &EndpointRow) -> WebhookJson {
    row.to_json(state.config.webhook_breaker_failures)
}

pub async fn create(
    State(state): State<AppState>,
    auth: Auth,
    Json(req): Json<CreateWebhook>,
) -> ApiResult<Response> {
    let (org_id, webhooks) = context(&state, &auth)?;
    let url = webhooks.urls.check(&req.url)?;
    let events = check_events(&req.events)?;
    let mut tx = state.db.begin().await?;
    // One creation at a time per organization, so the limit holds (a lock
    // that link writes, which only reference the row, do not wait for).
    sqlx::query("SELECT id FROM organizations WHERE id = $1 FOR NO KEY UPDATE")
        .bind(org_id)
        .execute(&mut *tx)
        .await?;
    if store::count(&mut tx, org_id).await? >= MAX_ENDPOINTS {
        return Err(ApiError::Conflict(format!(
            "the organization already has {MAX_ENDPOINTS} webhooks; delete one first"
        )));
    }
    let (row, secret) =
        store::insert(&mut tx, &webhooks.sealer, org_id, &url, &events, req.active).await?;
    audit(
        &mut tx,
        Some(org_id),
        auth.actor(),
        "webhook.create",
        &row.id.to_string(),
        json!({ "url": row.url, "events": row.events, "active": row.active }),
    )
    .await?;
    tx.commit().await?;
    let mut r = (
        StatusCode::CREATED,
        axum::Json(CreatedWebhook {
            webhook: shown(&state, &row),
            secret,
        }),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/v1/webhooks/{}", row.id)) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    Ok(r)
}

pub async fn list(State(state): State<AppState>, auth: Auth) -> ApiResult<axum::Json<WebhookList>> {
    let (org_id, _) = context(&state, &auth)?;
    let mut conn = state.db.acquire().await?;
    let rows = store::list(&mut conn, org_id).await?;
    Ok(axum::Json(WebhookList {
        webhooks: rows.iter().map(|r| shown(&state, r)).collect(),
    }))
}

pub async fn get(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<WebhookJson>> {
    let (org_id, _) = context(&state, &auth)?;
    let mut conn = state.db.acquire().await?;
    let row = store::get(&mut conn, org_id, id, false).await?;
    Ok(axum::Json(shown(&state, &row)))
}

pub async fn patch(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
    Json(req): Json<PatchWebhook>,
) -> ApiResult<axum::Json<WebhookJson>> {
    let (org_id, webhooks) = context(&state, &auth)?;
    let url = req
        .url
        .as_deref()
        .map(|u| webhooks.urls.check(u))
        .transpose()?;
    let events = req.events.as_deref().map(check_events).transpose()?;
    let mut tx = state.db.begin().await?;
    let mut row = store::get(&mut tx, org_id, id, true).await?;
    if let Some(url) = url {
        row.url = url;
    }
    if let Some(events) = events {
        row.events = events;
    }
    if let Some(active) = req.active {
        row.active = active;
    }
    let row = store::save(&mut tx, &row).await?;
    audit(
        &mut tx,
        Some(org_id),
        auth.actor(),
        "webhook.update",
        &row.id.to_string(),
        json!({ "url": row.url, "events": row.events, "active": row.active }),
    )
    .await?;
    tx.commit().await?;
    Ok(axum::Json(shown(&state, &row)))
}

pub async fn delete(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    let (org_id, _) = context(&state, &auth)?;
    let mut tx = state.db.begin().await?;
    let row = store::delete(&mut tx, org_id, id).await?;
    audit(
        &mut tx,
        Some(org_id),
        auth.actor(),
        "webhook.delete",
        &row.id.to_string(),
        json!({ "url": row.url }),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/webhooks/{id}/rotate-secret`: a new secret, shown once; the
/// old one signs nothing from now on.
pub async fn rotate(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
) -> ApiResult<axum::Json<CreatedWebhook>> {
    let (org_id, webhooks) = context(&state, &auth)?;
    let mut tx = state.db.begin().await?;
    let (row, secret) = store::rotate(&mut tx, &webhooks.sealer, org_id, id).await?;
    audit(
        &mut tx,
        Some(org_id),
        auth.actor(),
        "webhook.rotate_secret",
        &row.id.to_string(),
        json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(axum::Json(CreatedWebhook {
        webhook: shown(&state, &row),
        secret,
    }))
}

pub async fn dead_letters(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
    Query(q): Query<DeadLetterQuery>,
) -> ApiResult<axum::Json<DeadLetterPage>> {
    let (org_id, _) = context(&state, &auth)?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::invalid_field(
            "limit",
            format!("{limit} is out of range 1..={MAX_LIMIT}"),
        ));
    }
    let before = q
        .cursor
        .as_deref()
        .map(|c| crate::cursor::decode(CURSOR_TAG, c))
        .transpose()?;
    let mut conn = state.db.acquire().await?;
    store::get(&mut conn, org_id, id, false).await?;
    let mut rows = store::dead_letters(&mut conn, id, before, limit + 1).await?;
    let next_cursor = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|r| crate::cursor::encode(CURSOR_TAG, r.id))
    } else {
        None
    };
    Ok(axum::Json(DeadLetterPage {
        dead_letters: rows,
        next_cursor,
    }))
}

pub async fn redeliver(
    State(state): State<AppState>,
    auth: Auth,
    Path((id, delivery)): Path<(i64, i64)>,
) -> ApiResult<(StatusCode, axum::Json<Redelivery>)> {
    let (org_id, webhooks) = context(&state, &auth)?;
    let mut tx = state.db.begin().await?;
    store::get(&mut tx, org_id, id, false).await?;
    let event_id = store::redeliver(&mut tx, id, delivery).await?;
    audit(
        &mut tx,
        Some(org_id),
        auth.actor(),
        "webhook.redeliver",
        &id.to_string(),
        json!({ "delivery": delivery, "event_id": event_id }),
    )
    .await?;
    tx.commit().await?;
    webhooks.wake.notify_one();
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(Redelivery {
            id: delivery,
            event_id,
            state: "pending",
        }),
    ))
}
