//! `POST /v1/links/bulk`: create, update and delete up to [`MAX_ITEMS`]
//! links in one request.
//!
//! **Per item, not all or nothing.** Each item succeeds or fails on its own
//! and the answer lists every item's outcome (the link, or the error a single
//! request would have got). Someone moving 1,000 links wants the 990 good
//! ones in and the 10 bad ones named with why; all-or-nothing would make one
//! taken alias send the whole batch back, and a client would loop removing
//! one failure per round trip.
//!
//! **One transaction.** The items run in one transaction, each inside its own
//! savepoint (a failing item rolls back only itself), and the outbox rows of
//! every change are written last with one counter bump
//! ([`store::record_changes`]), keeping the lock order of single writes: link
//! rows first, the outbox counter last. So the changes, their audit entries,
//! their outbox rows and the `Idempotency-Key`'s stored answer commit
//! together: a replay answers exactly what happened, and a failure of the
//! request itself (the database going away) leaves nothing behind.
//!
//! **Rate limit.** On top of the request's one token, a bulk request spends
//! one token of its key's (or user's) bucket per [`ITEMS_PER_TOKEN`] items:
//! a link costs a tenth of what a single create costs, and a client cannot
//! write 1,000 links for the price of one request.

use super::api::{self, check_blocklist, check_version};
use super::input::{self, CreateLink, PatchLink};
use super::model::{LinkJson, LinkRow};
use super::store::{self, Owner};
use crate::audit::audit;
use crate::auth::{Auth, Scope};
use crate::error::{ApiError, ApiResult};
use crate::extract::Json;
use crate::idempotency::{self, Claim};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::Acquire;
use time::OffsetDateTime;

/// Most items (creates, updates and deletes together) one request may carry.
pub const MAX_ITEMS: usize = 1000;
/// Items per rate-limit token.
pub const ITEMS_PER_TOKEN: usize = 10;

/// The request: any of the three lists, run in that order (creates, then
/// updates, then deletes).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkRequest {
    #[serde(default)]
    pub create: Vec<CreateLink>,
    #[serde(default)]
    pub update: Vec<BulkUpdate>,
    #[serde(default)]
    pub delete: Vec<BulkDelete>,
}

/// One update: the link (`code`, on `domain` or the default domain), the
/// fields to change (`set`, as `PATCH /v1/links/{code}` takes them) and,
/// optionally, the version it must still be at (`if_match`, an ETag).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkUpdate {
    pub code: String,
    pub domain: Option<String>,
    pub if_match: Option<String>,
    pub set: PatchLink,
}

/// One delete: the link, and optionally the version it must still be at.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkDelete {
    pub code: String,
    pub domain: Option<String>,
    pub if_match: Option<String>,
}

/// One item's outcome: its index in its list, the status a single request
/// would have answered, and the link (create, update) or the error.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BulkItemResult {
    pub index: usize,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<LinkJson>,
    /// The API's error object (`code`, `message`, `details`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub error: Option<Value>,
}

/// The answer: every item's outcome per list, and the counts.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BulkResponse {
    pub create: Vec<BulkItemResult>,
    pub update: Vec<BulkItemResult>,
    pub delete: Vec<BulkItemResult>,
    pub succeeded: usize,
    pub failed: usize,
}

impl BulkRequest {
    fn items(&self) -> usize {
        self.create.len() + self.update.len() + self.delete.len()
    }
}

/// The request's items, checked against [`MAX_ITEMS`].
fn check_size(req: &BulkRequest) -> ApiResult<usize> {
    let n = req.items();
    if n > MAX_ITEMS {
        return Err(ApiError::BadRequest {
            message: format!("{n} items; one bulk request takes at most {MAX_ITEMS}"),
            details: json!({ "field": "items", "items": n, "limit": MAX_ITEMS }),
        });
    }
    if n == 0 {
        return Err(ApiError::bad_request(
            "no items: give create, update or delete",
        ));
    }
    Ok(n)
}

/// What the request's schema says of its items, checked for all of them
/// before anything runs: an item without a `target` to create, with a
/// status other than 301/302/307/308, or with a UTM value over 200
/// characters makes the whole request a 400 naming it (a malformed request,
/// as the single routes answer). Per-item outcomes are for what only the
/// data decides: a taken code, an unknown domain, a stale version, a target
/// refused by the rules (the target with its UTM values merged included).
fn check_shape(req: &BulkRequest) -> ApiResult<()> {
    let bad = |field: String, message: &str| ApiError::BadRequest {
        message: format!("{field} {message}"),
        details: json!({ "field": field }),
    };
    let valid_status = |s: Option<u16>| s.is_none_or(|s| input::check_status(s).is_ok());
    for (i, item) in req.create.iter().enumerate() {
        if item.target.is_none() {
            return Err(bad(format!("create[{i}].target"), "is required"));
        }
        if !valid_status(item.status) {
            return Err(bad(
                format!("create[{i}].status"),
                "must be 301, 302, 307 or 308",
            ));
        }
        if let Some((field, message)) = item.utm.as_ref().and_then(|u| u.shape_error()) {
            return Err(bad(format!("create[{i}].utm.{field}"), &message));
        }
    }
    for (i, item) in req.update.iter().enumerate() {
        if !valid_status(item.set.status) {
            return Err(bad(
                format!("update[{i}].set.status"),
                "must be 301, 302, 307 or 308",
            ));
        }
        if let Some((field, message)) = item
            .set
            .utm
            .as_ref()
            .and_then(Option::as_ref)
            .and_then(|u| u.shape_error())
        {
            return Err(bad(format!("update[{i}].set.utm.{field}"), &message));
        }
    }
    Ok(())
}

/// Spends the bulk's extra tokens from the caller's bucket.
fn charge(state: &AppState, auth: &Auth, items: usize) -> ApiResult<()> {
    let cost = items.div_ceil(ITEMS_PER_TOKEN) as u32;
    let d = state
        .limits
        .per_key
        .spend(&auth.bucket(), cost, std::time::Instant::now());
    if d.allowed {
        Ok(())
    } else {
        state.metrics.rate_limited.inc();
        Err(ApiError::RateLimited {
            retry_after: d.retry_after,
        })
    }
}

pub async fn bulk(
    State(state): State<AppState>,
    auth: Auth,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> ApiResult<Response> {
    let org_id = auth.org(Scope::LinksWrite)?;
    let idem_key = idempotency::key_from(&headers)?;
    let hash = idempotency::request_hash(&body);
    let req: BulkRequest =
        serde_json::from_value(body).map_err(|e| ApiError::InvalidJson(e.to_string()))?;
    let items = check_size(&req)?;
    check_shape(&req)?;
    charge(&state, &auth, items)?;

    let mut tx = state.db.begin().await?;
    if let Some(key) = &idem_key
        && let Claim::Replay { status, body } =
            idempotency::claim(&mut tx, org_id, key, &hash).await?
    {
        tx.rollback().await?;
        let mut r = (
            StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
            axum::Json(body),
        )
            .into_response();
        r.headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
        return Ok(r);
    }
    let mut changed: Vec<i64> = Vec::new();
    let mut out = BulkResponse {
        create: Vec::with_capacity(req.create.len()),
        update: Vec::with_capacity(req.update.len()),
        delete: Vec::with_capacity(req.delete.len()),
        succeeded: 0,
        failed: 0,
    };
    for (index, item) in req.create.iter().enumerate() {
        let mut sp = (&mut *tx).begin().await?;
        let r = create_one(&mut sp, &state, &auth, org_id, item).await;
        out.create
            .push(settle(sp, index, 201, r, &mut changed, &state).await?);
    }
    for (index, item) in req.update.into_iter().enumerate() {
        let mut sp = (&mut *tx).begin().await?;
        let r = update_one(&mut sp, &state, &auth, org_id, item).await;
        out.update
            .push(settle(sp, index, 200, r, &mut changed, &state).await?);
    }
    for (index, item) in req.delete.iter().enumerate() {
        let mut sp = (&mut *tx).begin().await?;
        let r = delete_one(&mut sp, &state, &auth, org_id, item).await;
        out.delete
            .push(settle(sp, index, 204, r, &mut changed, &state).await?);
    }
    // Last: the outbox rows (one per link, in its final state).
    let recorded = store::record_changes(&mut tx, &changed).await?;
    out.succeeded = [&out.create, &out.update, &out.delete]
        .iter()
        .flat_map(|l| l.iter())
        .filter(|r| r.error.is_none())
        .count();
    out.failed = items - out.succeeded;
    let value = serde_json::to_value(&out).map_err(anyhow::Error::from)?;
    if let Some(key) = &idem_key {
        idempotency::store(&mut tx, org_id, key, 200, &value).await?;
    }
    tx.commit().await?;
    state.metrics.links_written.add(recorded.len() as u64);
    Ok((StatusCode::OK, axum::Json(value)).into_response())
}

/// Commits or rolls back one item's savepoint and makes its result. An
/// internal error (the database failing) fails the whole request instead:
/// its transaction is unusable.
async fn settle(
    sp: sqlx::Transaction<'_, sqlx::Postgres>,
    index: usize,
    success: u16,
    r: ApiResult<Outcome>,
    changed: &mut Vec<i64>,
    state: &AppState,
) -> ApiResult<BulkItemResult> {
    match r {
        Ok(Outcome { row, changed: c }) => {
            sp.commit().await?;
            if c {
                changed.push(row.id);
            }
            Ok(BulkItemResult {
                index,
                status: success,
                link: (success != 204).then(|| row.to_json(state.short_base())),
                error: None,
            })
        }
        Err(e @ ApiError::Internal(_)) => Err(e),
        Err(e) => {
            sp.rollback().await?;
            Ok(BulkItemResult {
                index,
                status: e.status_and_code().0.as_u16(),
                link: None,
                error: Some(e.body()["error"].clone()),
            })
        }
    }
}

/// What an item did: the link as it now is, and whether it changed (a
/// patch that changes nothing writes nothing, as `PATCH` does).
struct Outcome {
    row: LinkRow,
    changed: bool,
}

impl Outcome {
    fn changed(row: LinkRow) -> ApiResult<Outcome> {
        Ok(Outcome { row, changed: true })
    }
}

async fn create_one(
    conn: &mut sqlx::PgConnection,
    state: &AppState,
    auth: &Auth,
    org_id: i64,
    item: &CreateLink,
) -> ApiResult<Outcome> {
    let (new, host) = api::check_create(state, org_id, item)?;
    let row = api::insert_unrecorded(
        conn,
        state,
        auth.actor(),
        &new,
        &host,
        item.domain.as_deref(),
    )
    .await?;
    Outcome::changed(row)
}

async fn update_one(
    conn: &mut sqlx::PgConnection,
    state: &AppState,
    auth: &Auth,
    org_id: i64,
    item: BulkUpdate,
) -> ApiResult<Outcome> {
    crate::text::check_code(&item.code)?;
    let (mut patch, hosts) = api::check_patch(state, item.set)?;
    patch.hash_password(state).await?;
    for host in &hosts {
        check_blocklist(conn, host).await?;
    }
    let domain_id = api::domain_id(state, conn, Owner::Org(org_id), item.domain.as_deref()).await?;
    let mut row = store::lock(conn, Owner::Org(org_id), domain_id, &item.code).await?;
    if let Some(given) = &item.if_match {
        check_version(given, &row)?;
    }
    if !api::apply_patch(&mut row, patch) {
        return Ok(Outcome {
            row,
            changed: false,
        });
    }
    api::check_row(&row)?;
    let row = store::save(conn, &row).await?;
    audit(
        conn,
        Some(org_id),
        auth.actor(),
        "link.update",
        &row.code,
        json!({ "version": row.version, "bulk": true }),
    )
    .await?;
    Outcome::changed(row)
}

async fn delete_one(
    conn: &mut sqlx::PgConnection,
    state: &AppState,
    auth: &Auth,
    org_id: i64,
    item: &BulkDelete,
) -> ApiResult<Outcome> {
    crate::text::check_code(&item.code)?;
    let domain_id = api::domain_id(state, conn, Owner::Org(org_id), item.domain.as_deref()).await?;
    let mut row = store::lock(conn, Owner::Org(org_id), domain_id, &item.code).await?;
    if let Some(given) = &item.if_match {
        check_version(given, &row)?;
    }
    row.deleted_at = Some(OffsetDateTime::now_utc());
    let row = store::save(conn, &row).await?;
    audit(
        conn,
        Some(org_id),
        auth.actor(),
        "link.delete",
        &row.code,
        json!({ "bulk": true }),
    )
    .await?;
    Outcome::changed(row)
}
