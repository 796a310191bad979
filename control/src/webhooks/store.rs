//! Endpoint rows, their sealed secrets, and the dead letters.

use crate::acme::seal::Sealer;
use crate::error::{ApiError, ApiResult};
use serde::Serialize;
use sqlx::PgConnection;
use time::OffsetDateTime;

/// An endpoint as stored (never the secret).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EndpointRow {
    pub id: i64,
    pub org_id: i64,
    pub url: String,
    pub events: Vec<String>,
    pub active: bool,
    pub failures: i32,
    pub open_until: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

pub const ENDPOINT_COLUMNS: &str =
    "id, org_id, url, events, active, failures, open_until, created_at, updated_at";

/// An endpoint as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WebhookJson {
    pub id: i64,
    pub url: String,
    pub events: Vec<String>,
    pub active: bool,
    /// `closed` (delivering), `open` (waiting until `open_until` after
    /// failures in a row) or `half-open` (the next delivery is a probe).
    #[schema(pattern = "^(closed|open|half-open)$")]
    pub breaker: &'static str,
    /// Failed deliveries in a row.
    pub failures: i32,
    #[serde(with = "time::serde::rfc3339::option")]
    pub open_until: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl EndpointRow {
    /// The breaker's state now, given the threshold.
    pub fn breaker(&self, threshold: u32) -> &'static str {
        if (self.failures as i64) < i64::from(threshold) {
            "closed"
        } else if self
            .open_until
            .is_some_and(|t| t > OffsetDateTime::now_utc())
        {
            "open"
        } else {
            "half-open"
        }
    }

    pub fn to_json(&self, threshold: u32) -> WebhookJson {
        WebhookJson {
            id: self.id,
            url: self.url.clone(),
            events: self.events.clone(),
            active: self.active,
            breaker: self.breaker(threshold),
            failures: self.failures,
            open_until: self.open_until,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// What a sealed secret is for: it opens for this endpoint only.
fn purpose(id: i64) -> String {
    format!("webhook-secret:{id}")
}

/// Inserts an endpoint with a fresh secret; returns it and the secret.
pub async fn insert(
    conn: &mut PgConnection,
    sealer: &Sealer,
    org_id: i64,
    url: &str,
    events: &[String],
    active: bool,
) -> ApiResult<(EndpointRow, String)> {
    // The id first: the sealed secret names it.
    let id: i64 = sqlx::query_scalar("SELECT nextval('webhook_endpoints_id_seq')")
        .fetch_one(&mut *conn)
        .await?;
    let secret = super::sign::new_secret();
    let row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO webhook_endpoints (id, org_id, url, events, active, secret_sealed)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING {ENDPOINT_COLUMNS}"
    )))
    .bind(id)
    .bind(org_id)
    .bind(url)
    .bind(events)
    .bind(active)
    .bind(sealer.seal(&purpose(id), secret.as_bytes()))
    .fetch_one(&mut *conn)
    .await?;
    Ok((row, secret))
}

/// A new secret for endpoint `id` of `org_id`; the old one stops at once.
pub async fn rotate(
    conn: &mut PgConnection,
    sealer: &Sealer,
    org_id: i64,
    id: i64,
) -> ApiResult<(EndpointRow, String)> {
    let secret = super::sign::new_secret();
    let row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE webhook_endpoints SET secret_sealed = $3, updated_at = now()
          WHERE id = $1 AND org_id = $2 RETURNING {ENDPOINT_COLUMNS}"
    )))
    .bind(id)
    .bind(org_id)
    .bind(sealer.seal(&purpose(id), secret.as_bytes()))
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(ApiError::NotFound { what: "webhook" })?;
    Ok((row, secret))
}

/// The secret of endpoint `id`, unsealed.
pub fn open_secret(sealer: &Sealer, id: i64, sealed: &[u8]) -> anyhow::Result<String> {
    let plain = sealer.open(&purpose(id), sealed)?;
    Ok(String::from_utf8(plain)?)
}

/// Endpoint `id` of `org_id`, locked for update when `lock`.
pub async fn get(
    conn: &mut PgConnection,
    org_id: i64,
    id: i64,
    lock: bool,
) -> ApiResult<EndpointRow> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1 AND org_id = $2{lock}"
    )))
    .bind(id)
    .bind(org_id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(ApiError::NotFound { what: "webhook" })
}

/// The endpoints of `org_id`, oldest first.
pub async fn list(conn: &mut PgConnection, org_id: i64) -> ApiResult<Vec<EndpointRow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE org_id = $1 ORDER BY id"
    )))
    .bind(org_id)
    .fetch_all(&mut *conn)
    .await?)
}

/// How many endpoints `org_id` has.
pub async fn count(conn: &mut PgConnection, org_id: i64) -> ApiResult<i64> {
    Ok(
        sqlx::query_scalar("SELECT count(*) FROM webhook_endpoints WHERE org_id = $1")
            .bind(org_id)
            .fetch_one(&mut *conn)
            .await?,
    )
}

/// Writes the mutable fields of `row` back.
pub async fn save(conn: &mut PgConnection, row: &EndpointRow) -> ApiResult<EndpointRow> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE webhook_endpoints SET url = $2, events = $3, active = $4, updated_at = now()
          WHERE id = $1 RETURNING {ENDPOINT_COLUMNS}"
    )))
    .bind(row.id)
    .bind(&row.url)
    .bind(&row.events)
    .bind(row.active)
    .fetch_one(&mut *conn)
    .await?)
}

/// Deletes endpoint `id` of `org_id` with its deliveries (the events stay
/// for other endpoints; ones no delivery needs are left to expire with the
/// organization).
pub async fn delete(conn: &mut PgConnection, org_id: i64, id: i64) -> ApiResult<EndpointRow> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "DELETE FROM webhook_endpoints WHERE id = $1 AND org_id = $2 RETURNING {ENDPOINT_COLUMNS}"
    )))
    .bind(id)
    .bind(org_id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(ApiError::NotFound { what: "webhook" })
}

/// A dead letter: a delivery that used every attempt.
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct DeadLetter {
    /// The delivery's id (for redelivery).
    pub id: i64,
    /// The event's id, as the deliveries carried it.
    pub event_id: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub attempts: i32,
    /// The last attempt's HTTP status; none when there was no answer.
    pub last_status: Option<i32>,
    pub last_error: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub failed_at: Option<OffsetDateTime>,
    /// The event's `data`, as the body carried it.
    #[schema(value_type = Object)]
    pub data: sqlx::types::Json<serde_json::Value>,
}

/// A page of endpoint `endpoint_id`'s dead letters, newest first, after
/// the delivery `before` (a cursor).
pub async fn dead_letters(
    conn: &mut PgConnection,
    endpoint_id: i64,
    before: Option<i64>,
    limit: i64,
) -> ApiResult<Vec<DeadLetter>> {
    Ok(sqlx::query_as(
        "SELECT d.id, e.public_id AS event_id, e.type AS event_type, d.attempts,
                d.last_status, d.last_error, d.created_at, d.finished_at AS failed_at, e.data
           FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id
          WHERE d.endpoint_id = $1 AND d.state = 'dead' AND ($2::bigint IS NULL OR d.id < $2)
          ORDER BY d.id DESC LIMIT $3",
    )
    .bind(endpoint_id)
    .bind(before)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?)
}

/// Queues dead letter `delivery_id` of endpoint `endpoint_id` again, with
/// its attempts back to zero; 404 unless it is a dead letter of it.
pub async fn redeliver(
    conn: &mut PgConnection,
    endpoint_id: i64,
    delivery_id: i64,
) -> ApiResult<String> {
    sqlx::query_scalar(
        "UPDATE webhook_deliveries d
            SET state = 'pending', attempts = 0, next_attempt_at = now(), finished_at = NULL
           FROM webhook_events e
          WHERE d.id = $1 AND d.endpoint_id = $2 AND d.state = 'dead' AND e.id = d.event_id
          RETURNING e.public_id",
    )
    .bind(delivery_id)
    .bind(endpoint_id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(ApiError::NotFound {
        what: "dead letter",
    })
}
