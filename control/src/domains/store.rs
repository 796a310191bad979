//! Domain writes, each in one transaction with its audit entry and, when
//! engines must learn of it, its outbox row.
//!
//! Lock order, as for links: the domain row first (the insert or
//! `SELECT ... FOR UPDATE`), the outbox counter last, just before commit.

use super::model::{DOMAIN_COLUMNS, DomainRow};
use crate::error::{ApiError, ApiResult};
use crate::links::model::{LINK_COLUMNS, LinkRow};
use crate::links::store::Owner;
use snapshots::delta::{LinkChange, LinkDelta};
use snapshots::domain::WellKnown;
use sqlx::{AssertSqlSafe, PgConnection};

/// SQLSTATE of a unique violation.
const UNIQUE_VIOLATION: &str = "23505";

fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|db| db.code())
        .is_some_and(|code| code == UNIQUE_VIOLATION)
}

/// Takes the next outbox sequence and writes `change` as the outbox row
/// (`subject` goes in its `code` column, for people reading the table).
/// Call it last in the transaction (see `links::store::record_change`).
/// Publishes the domain as it now is (a `domain_upsert` change) in the
/// caller's transaction: how engines learn of a claim, a verification or new
/// settings.
pub async fn announce(conn: &mut PgConnection, row: &DomainRow) -> ApiResult<u64> {
    record_change(
        conn,
        &row.name,
        LinkChange::DomainUpsert {
            domain: row.to_record(),
        },
    )
    .await
}

pub async fn record_change(
    conn: &mut PgConnection,
    subject: &str,
    change: LinkChange,
) -> ApiResult<u64> {
    let seq: i64 = sqlx::query_scalar("UPDATE outbox_counter SET seq = seq + 1 RETURNING seq")
        .fetch_one(&mut *conn)
        .await?;
    let delta = LinkDelta::change(seq as u64, change);
    sqlx::query(
        "WITH i AS (INSERT INTO link_outbox (seq, code, delta) VALUES ($1, $2, $3) RETURNING seq)
         SELECT pg_notify('link_outbox', seq::text) FROM i",
    )
    .bind(seq)
    .bind(subject)
    .bind(delta.encode())
    .execute(&mut *conn)
    .await?;
    Ok(seq as u64)
}

/// A pending domain of `org_id`, with its verification answer stored (the
/// caller publishes it). An existing live claim of the organization is a
/// 409.
pub async fn insert(
    conn: &mut PgConnection,
    org_id: i64,
    name: &str,
    token: &str,
) -> ApiResult<DomainRow> {
    let sql = format!(
        "INSERT INTO domains (org_id, name, verification_token) VALUES ($1, $2, $3)
         RETURNING {DOMAIN_COLUMNS}"
    );
    let row: DomainRow = sqlx::query_as(AssertSqlSafe(sql))
        .bind(org_id)
        .bind(name)
        .bind(token)
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| match is_unique_violation(&e) {
            true => ApiError::DomainExists {
                name: name.to_owned(),
            },
            false => e.into(),
        })?;
    let path = row.verification_path();
    sqlx::query(
        "INSERT INTO well_known_answers (host, path, body, domain_id) VALUES ($1, $2, $3, $4)",
    )
    .bind(&row.name)
    .bind(&path)
    .bind(&row.verification_token)
    .bind(row.id)
    .execute(&mut *conn)
    .await?;
    Ok(row)
}

/// The well-known answer that proves `row`'s name.
pub fn verification_answer(row: &DomainRow) -> WellKnown {
    WellKnown {
        host: row.name.clone(),
        path: row.verification_path(),
        body: row.verification_token.clone(),
    }
}

/// Whether some organization has verified `name` (a live domain).
pub async fn verified_elsewhere(
    conn: &mut PgConnection,
    name: &str,
    org_id: i64,
) -> ApiResult<bool> {
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM domains WHERE name = $1 AND verified_at IS NOT NULL
                           AND deleted_at IS NULL AND org_id <> $2)",
    )
    .bind(name)
    .bind(org_id)
    .fetch_one(&mut *conn)
    .await?)
}

/// A live domain of `owner` by name, optionally locked for update.
pub async fn find(
    conn: &mut PgConnection,
    owner: Owner,
    name: &str,
    for_update: bool,
) -> ApiResult<DomainRow> {
    let sql = format!(
        "SELECT {DOMAIN_COLUMNS} FROM domains
          WHERE name = $1 AND id <> 0 AND deleted_at IS NULL
            AND ($2::bigint IS NULL OR org_id = $2)
          ORDER BY verified_at IS NULL, id LIMIT 1 {}",
        if for_update { "FOR UPDATE" } else { "" }
    );
    sqlx::query_as(AssertSqlSafe(sql))
        .bind(name)
        .bind(owner.org_id())
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(ApiError::NotFound { what: "domain" })
}

/// The live domains of an organization (`None`: every organization's),
/// the default domain not included.
pub async fn list(conn: &mut PgConnection, org_id: Option<i64>) -> ApiResult<Vec<DomainRow>> {
    let sql = format!(
        "SELECT {DOMAIN_COLUMNS} FROM domains
          WHERE id <> 0 AND deleted_at IS NULL AND ($1::bigint IS NULL OR org_id = $1)
          ORDER BY id"
    );
    Ok(sqlx::query_as(AssertSqlSafe(sql))
        .bind(org_id)
        .fetch_all(&mut *conn)
        .await?)
}

/// Writes the settings of `row` back.
pub async fn save_settings(conn: &mut PgConnection, row: &DomainRow) -> ApiResult<DomainRow> {
    let sql = format!(
        "UPDATE domains SET root_redirect = $2, not_found_redirect = $3, http_mode = $4,
                hsts_max_age = $5, updated_at = now()
          WHERE id = $1 RETURNING {DOMAIN_COLUMNS}"
    );
    Ok(sqlx::query_as(AssertSqlSafe(sql))
        .bind(row.id)
        .bind(&row.root_redirect)
        .bind(&row.not_found_redirect)
        .bind(&row.http_mode)
        .bind(row.hsts_max_age)
        .fetch_one(&mut *conn)
        .await?)
}

/// Marks a domain verified; another organization verifying the same name
/// first is a 409 (the unique index decides, race-free).
pub async fn set_verified(conn: &mut PgConnection, row: &DomainRow) -> ApiResult<DomainRow> {
    let sql = format!(
        "UPDATE domains SET verified_at = now(), updated_at = now()
          WHERE id = $1 RETURNING {DOMAIN_COLUMNS}"
    );
    sqlx::query_as(AssertSqlSafe(sql))
        .bind(row.id)
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| match is_unique_violation(&e) {
            true => ApiError::DomainTaken {
                name: row.name.clone(),
            },
            false => e.into(),
        })
}

/// Live links on a domain.
pub async fn live_links(conn: &mut PgConnection, domain_id: i64) -> ApiResult<i64> {
    Ok(
        sqlx::query_scalar(
            "SELECT count(*) FROM links WHERE domain_id = $1 AND deleted_at IS NULL",
        )
        .bind(domain_id)
        .fetch_one(&mut *conn)
        .await?,
    )
}

/// Soft-deletes a domain, its live links (which engines stop serving with
/// the domain) and its well-known answers; returns the answers removed.
pub async fn delete(conn: &mut PgConnection, row: &DomainRow) -> ApiResult<Vec<(String, String)>> {
    // The links go with it: one `link.deleted` webhook event each, in this
    // transaction, as every other path that deletes links sends them
    // (engines drop them with the domain, so they get no change of their
    // own). Their rows are read back only when an endpoint wants them.
    let announce: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM webhook_endpoints e
                         WHERE e.active AND 'link.deleted' = ANY(e.events)
                           AND e.org_id IN (SELECT org_id FROM links
                                             WHERE domain_id = $1 AND deleted_at IS NULL))",
    )
    .bind(row.id)
    .fetch_one(&mut *conn)
    .await?;
    let returning = if announce {
        format!(" RETURNING {LINK_COLUMNS}")
    } else {
        String::new()
    };
    let deleted: Vec<LinkRow> = sqlx::query_as(AssertSqlSafe(format!(
        "UPDATE links SET deleted_at = now(), updated_at = now(), version = version + 1
          WHERE domain_id = $1 AND deleted_at IS NULL{returning}"
    )))
    .bind(row.id)
    .fetch_all(&mut *conn)
    .await?;
    crate::webhooks::events::record_link_events(conn, &deleted).await?;
    sqlx::query("UPDATE domains SET deleted_at = now(), updated_at = now() WHERE id = $1")
        .bind(row.id)
        .execute(&mut *conn)
        .await?;
    Ok(
        sqlx::query_as("DELETE FROM well_known_answers WHERE domain_id = $1 RETURNING host, path")
            .bind(row.id)
            .fetch_all(&mut *conn)
            .await?,
    )
}

/// The domain a new link of `org_id` goes on: `None` or the deployment's
/// default domain's name → the default domain (0); otherwise one of the
/// organization's live domains (pending ones too: their links are served
/// once verified), else 422.
pub async fn for_link(
    conn: &mut PgConnection,
    owner: Owner,
    default_name: &str,
    name: Option<&str>,
) -> ApiResult<i64> {
    let Some(raw) = name else {
        return Ok(0);
    };
    let name = super::input::normalize_name("domain", raw)?;
    if name == default_name {
        return Ok(0);
    }
    match find(conn, owner, &name, false).await {
        Ok(row) => Ok(row.id),
        Err(ApiError::NotFound { .. }) => Err(ApiError::UnknownDomain { name }),
        Err(e) => Err(e),
    }
}

/// Names the default domain (id 0) `name` at start; when it changed, engines
/// learn it through a domain change. Returns whether it changed.
pub async fn name_default_domain(db: &sqlx::PgPool, name: &str) -> ApiResult<bool> {
    let mut tx = db.begin().await?;
    let sql = format!("SELECT {DOMAIN_COLUMNS} FROM domains WHERE id = 0 FOR UPDATE");
    let row: DomainRow = sqlx::query_as(AssertSqlSafe(sql))
        .fetch_one(&mut *tx)
        .await?;
    if row.name == name {
        tx.rollback().await?;
        return Ok(false);
    }
    let previous = row.name;
    let taken: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM domains WHERE name = $1 AND id <> 0
                           AND verified_at IS NOT NULL AND deleted_at IS NULL)",
    )
    .bind(name)
    .fetch_one(&mut *tx)
    .await?;
    if taken {
        return Err(ApiError::DomainTaken {
            name: name.to_owned(),
        });
    }
    let sql = format!(
        "UPDATE domains SET name = $1, updated_at = now() WHERE id = 0 RETURNING {DOMAIN_COLUMNS}"
    );
    let row: DomainRow = sqlx::query_as(AssertSqlSafe(sql))
        .bind(name)
        .fetch_one(&mut *tx)
        .await?;
    crate::audit::audit(
        &mut tx,
        None,
        crate::audit::Actor::CLI_OPERATOR,
        "domain.default",
        name,
        serde_json::json!({ "previous": previous }),
    )
    .await?;
    record_change(
        &mut tx,
        name,
        LinkChange::DomainUpsert {
            domain: row.to_record(),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}
