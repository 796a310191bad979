//! The `export_jobs` rows (`migrations/0017_exports.sql`): creating a job
//! within the organization's limit, reading one, and the worker's moves
//! (claim, heartbeat, finish, fail, take back, expire). Every move of a
//! running job names the instance running it and its attempt, so a worker
//! whose job was taken back (it stopped heart-beating, another instance now
//! runs it) cannot record anything over the new run.

use super::request::ExportSpec;
use crate::audit::{Actor, audit};
use crate::error::{ApiError, ApiResult};
use sqlx::PgPool;
use sqlx::types::Json;
use time::OffsetDateTime;

/// How many times a job is started before an interruption fails it.
pub const MAX_ATTEMPTS: i32 = 3;

/// One job.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct JobRow {
    pub id: i64,
    pub org_id: i64,
    pub request: Json<ExportSpec>,
    pub state: String,
    pub instance: Option<String>,
    pub attempts: i32,
    pub rows_written: i64,
    pub bytes: i64,
    pub error: Option<String>,
    pub created_at: OffsetDateTime,
    pub started_at: Option<OffsetDateTime>,
    pub finished_at: Option<OffsetDateTime>,
    pub expires_at: Option<OffsetDateTime>,
}

const COLUMNS: &str = "id, org_id, request, state, instance, attempts, rows_written, bytes, error, \
                       created_at, started_at, finished_at, expires_at";

/// Queues `spec` for `org_id` unless the organization already has
/// `max_active` jobs queued or running (429), with its audit entry. The
/// organization's row is locked for the count, so two requests at once
/// cannot both take the last place.
pub async fn create(
    db: &PgPool,
    org_id: i64,
    spec: &ExportSpec,
    max_active: u32,
    actor: Actor,
) -> ApiResult<JobRow> {
    let mut tx = db.begin().await?;
    sqlx::query("SELECT id FROM organizations WHERE id = $1 FOR UPDATE")
        .bind(org_id)
        .execute(&mut *tx)
        .await?;
    let active: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM export_jobs WHERE org_id = $1 AND state IN ('queued', 'running')",
    )
    .bind(org_id)
    .fetch_one(&mut *tx)
    .await?;
    if active >= i64::from(max_active) {
        return Err(ApiError::TooManyExports { limit: max_active });
    }
    let row: JobRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO export_jobs (org_id, request, format) VALUES ($1, $2, $3) RETURNING {COLUMNS}"
    )))
    .bind(org_id)
    .bind(Json(spec))
    .bind(spec.format.as_str())
    .fetch_one(&mut *tx)
    .await?;
    audit(
        &mut tx,
        Some(org_id),
        actor,
        "export.create",
        &row.id.to_string(),
        serde_json::to_value(spec).unwrap_or_default(),
    )
    .await?;
    tx.commit().await?;
    Ok(row)
}

/// The organization's job `id`; `None` for another organization's, as for
/// none at all.
pub async fn get(db: &PgPool, org_id: i64, id: i64) -> ApiResult<Option<JobRow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM export_jobs WHERE id = $1 AND org_id = $2"
    )))
    .bind(id)
    .bind(org_id)
    .fetch_optional(db)
    .await?)
}

/// The organization's newest `limit` jobs.
pub async fn list(db: &PgPool, org_id: i64, limit: i64) -> ApiResult<Vec<JobRow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM export_jobs WHERE org_id = $1 ORDER BY id DESC LIMIT $2"
    )))
    .bind(org_id)
    .bind(limit)
    .fetch_all(db)
    .await?)
}

/// Takes the oldest queued job for `instance`: running, a new attempt.
/// `SKIP LOCKED`: instances claiming at once take different jobs.
pub async fn claim(db: &PgPool, instance: &str) -> sqlx::Result<Option<JobRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE export_jobs SET state = 'running', instance = $1, attempts = attempts + 1,
                started_at = now(), heartbeat_at = now(), rows_written = 0, bytes = 0, error = NULL
          WHERE id = (SELECT id FROM export_jobs WHERE state = 'queued'
                       ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
      RETURNING {COLUMNS}"
    )))
    .bind(instance)
    .fetch_optional(db)
    .await
}

/// Records a running job's progress; `false` when the job is no longer
/// this run's (taken back), and the worker should stop.
pub async fn heartbeat(
    db: &PgPool,
    job: &JobRow,
    instance: &str,
    rows: u64,
    bytes: u64,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE export_jobs SET heartbeat_at = now(), rows_written = $4, bytes = $5
          WHERE id = $1 AND state = 'running' AND instance = $2 AND attempts = $3",
    )
    .bind(job.id)
    .bind(instance)
    .bind(job.attempts)
    .bind(rows as i64)
    .bind(bytes as i64)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Marks this run's job done, its file kept `ttl` seconds; `false` when
/// it was taken back meanwhile.
pub async fn finish(
    db: &PgPool,
    job: &JobRow,
    instance: &str,
    rows: u64,
    bytes: u64,
    ttl_secs: u64,
) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "UPDATE export_jobs SET state = 'done', rows_written = $4, bytes = $5, finished_at = now(),
                expires_at = now() + make_interval(secs => $6)
          WHERE id = $1 AND state = 'running' AND instance = $2 AND attempts = $3",
    )
    .bind(job.id)
    .bind(instance)
    .bind(job.attempts)
    .bind(rows as i64)
    .bind(bytes as i64)
    .bind(ttl_secs as f64)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Marks this run's job failed with `error` (for the caller to read).
pub async fn fail(db: &PgPool, job: &JobRow, instance: &str, error: &str) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE export_jobs SET state = 'failed', error = $4, finished_at = now()
          WHERE id = $1 AND state = 'running' AND instance = $2 AND attempts = $3",
    )
    .bind(job.id)
    .bind(instance)
    .bind(job.attempts)
    .bind(error)
    .execute(db)
    .await?;
    Ok(())
}

/// Running jobs whose worker has not been heard of for `stale_secs` (its
/// process died or lost the database): queued again to run from the
/// start, or failed after [`MAX_ATTEMPTS`] starts. Returns how many of
/// each.
pub async fn take_back(db: &PgPool, stale_secs: u64) -> sqlx::Result<(u64, u64)> {
    let stale = stale_secs as f64;
    let requeued = sqlx::query(
        "UPDATE export_jobs SET state = 'queued', instance = NULL
          WHERE state = 'running' AND heartbeat_at < now() - make_interval(secs => $1)
            AND attempts < $2",
    )
    .bind(stale)
    .bind(MAX_ATTEMPTS)
    .execute(db)
    .await?
    .rows_affected();
    let failed = sqlx::query(
        "UPDATE export_jobs SET state = 'failed', finished_at = now(),
                error = 'interrupted ' || attempts || ' times (the control instance running it stopped); start the export again'
          WHERE state = 'running' AND heartbeat_at < now() - make_interval(secs => $1)
            AND attempts >= $2",
    )
    .bind(stale)
    .bind(MAX_ATTEMPTS)
    .execute(db)
    .await?
    .rows_affected();
    Ok((requeued, failed))
}

/// Done jobs past their expiry become `expired` (their files are then
/// deleted by [`super::worker`]'s sweep on the instance holding them), and
/// finished jobs' rows are deleted `keep_secs` after they finished.
pub async fn expire(db: &PgPool, keep_secs: u64) -> sqlx::Result<u64> {
    let expired = sqlx::query(
        "UPDATE export_jobs SET state = 'expired' WHERE state = 'done' AND expires_at < now()",
    )
    .execute(db)
    .await?
    .rows_affected();
    sqlx::query(
        "DELETE FROM export_jobs WHERE state IN ('failed', 'expired')
            AND finished_at < now() - make_interval(secs => $1)",
    )
    .bind(keep_secs as f64)
    .execute(db)
    .await?;
    Ok(expired)
}

/// The states of jobs `ids` (absent: no such job any more).
pub async fn states(db: &PgPool, ids: &[i64]) -> sqlx::Result<Vec<(i64, String)>> {
    sqlx::query_as("SELECT id, state FROM export_jobs WHERE id = ANY($1)")
        .bind(ids)
        .fetch_all(db)
        .await
}
