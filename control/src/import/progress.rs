//! An import's progress record (`imports`) and its problems
//! (`import_problems`): what makes an interrupted import resumable and its
//! report complete across runs.

use sqlx::{PgConnection, PgPool};

/// An import in progress (or done).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Progress {
    pub id: i64,
    /// Every record ending on or before this line is committed.
    pub done_line: i64,
    pub imported: i64,
    pub finished: bool,
}

/// The progress record of this file for `org_id` on `domain_id`: the one an
/// earlier run left, or a new one.
pub async fn open(
    db: &PgPool,
    org_id: i64,
    sha256: &[u8],
    domain_id: i64,
    format: &str,
    file_name: &str,
) -> anyhow::Result<Progress> {
    sqlx::query(
        "INSERT INTO imports (org_id, file_sha256, domain_id, format, file_name)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (org_id, file_sha256, domain_id) DO NOTHING",
    )
    .bind(org_id)
    .bind(sha256)
    .bind(domain_id)
    .bind(format)
    .bind(file_name)
    .execute(db)
    .await?;
    Ok(sqlx::query_as(
        "SELECT id, done_line, imported, finished_at IS NOT NULL AS finished FROM imports
          WHERE org_id = $1 AND file_sha256 = $2 AND domain_id = $3",
    )
    .bind(org_id)
    .bind(sha256)
    .bind(domain_id)
    .fetch_one(db)
    .await?)
}

/// Moves the record from `from` to `to` in the batch's transaction. Fails
/// when another run moved it meanwhile (two runs of one import at once):
/// the batch rolls back rather than make its links twice.
pub async fn advance(conn: &mut PgConnection, id: i64, from: i64, to: i64) -> anyhow::Result<()> {
    let moved = sqlx::query(
        "UPDATE imports SET done_line = $3, updated_at = now() WHERE id = $1 AND done_line = $2",
    )
    .bind(id)
    .bind(from)
    .bind(to)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    anyhow::ensure!(
        moved == 1,
        "another run of this import is under way (its progress moved past line {from})"
    );
    Ok(())
}

pub async fn finish(db: &PgPool, id: i64) -> anyhow::Result<()> {
    sqlx::query("UPDATE imports SET finished_at = now() WHERE id = $1")
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}

/// One line that was not imported, and why.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Problem {
    pub line: i64,
    /// `clash` or `invalid`.
    pub kind: String,
    pub message: String,
}

/// Records `problems` in the batch's transaction.
pub async fn record_problems(
    conn: &mut PgConnection,
    id: i64,
    problems: &[Problem],
) -> anyhow::Result<()> {
    if problems.is_empty() {
        return Ok(());
    }
    let lines: Vec<i64> = problems.iter().map(|p| p.line).collect();
    let kinds: Vec<&str> = problems.iter().map(|p| p.kind.as_str()).collect();
    let messages: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
    sqlx::query(
        "INSERT INTO import_problems (import_id, line, kind, message)
         SELECT $1, * FROM unnest($2::bigint[], $3::text[], $4::text[])
         ON CONFLICT DO NOTHING",
    )
    .bind(id)
    .bind(&lines)
    .bind(&kinds)
    .bind(&messages)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Every problem of an import, by line.
pub async fn problems(db: &PgPool, id: i64) -> anyhow::Result<Vec<Problem>> {
    Ok(sqlx::query_as(
        "SELECT line, kind, message FROM import_problems WHERE import_id = $1 ORDER BY line, message",
    )
    .bind(id)
    .fetch_all(db)
    .await?)
}
