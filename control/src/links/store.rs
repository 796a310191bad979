//! Link writes, each in one transaction with its outbox row and audit entry.
//!
//! Lock order, the same for every writer so none can deadlock: the link row
//! first (the insert, or `SELECT ... FOR UPDATE`), the outbox counter last,
//! just before commit. Taking the counter last also keeps the time link writes
//! are serialised on it down to three statements and the commit.

use super::model::{LINK_COLUMNS, LINK_COLUMNS_QUALIFIED, LinkRow};
use crate::error::{ApiError, ApiResult};
use snapshots::delta::LinkDelta;
use sqlx::{AssertSqlSafe, PgConnection};

/// What a new link will be; `code: None` asks for a random one.
#[derive(Debug, Clone)]
pub struct NewLink {
    pub org_id: i64,
    /// The domain it lives on (0: the default domain).
    pub domain_id: i64,
    pub code: Option<String>,
    pub target: String,
    pub status: i16,
    pub expires_at: Option<time::OffsetDateTime>,
    pub valid_since: Option<time::OffsetDateTime>,
    pub expired_url: Option<String>,
    /// `expired_url`'s host, for the blocklist.
    pub expired_host: Option<String>,
    /// Checked, and checked merged into `target`.
    pub utm: super::utm::Utm,
    /// Checked rules and split (targets normalised), and the hosts of
    /// their targets, for the blocklist.
    pub rules: Vec<snapshots::rules::Rule>,
    pub split: Vec<snapshots::rules::Variant>,
    pub rule_hosts: Vec<String>,
    pub forward_query: bool,
    pub tags: Vec<String>,
    pub title: Option<String>,
    /// A new password, checked and not yet hashed: the insert path
    /// (`api::insert_unrecorded`) hashes it into `password_hash`.
    pub password: Option<super::password::LinkPassword>,
    /// The password's argon2id verifier (`links::password`); `None`: no
    /// password.
    pub password_hash: Option<String>,
    /// Checked: 1 to 10^9; `None`: unlimited.
    pub max_visits: Option<i32>,
}

/// Inserts a link. A random code that collides on its domain (with a link,
/// or a purged link's retired code) is redrawn; a custom alias that collides
/// is a 409. `ON CONFLICT DO NOTHING` makes this race-free: the
/// unique index decides, and a concurrent insert of the same code waits for
/// the other transaction instead of failing it.
pub async fn insert(conn: &mut PgConnection, new: &NewLink, code_len: usize) -> ApiResult<LinkRow> {
    let sql = format!(
        "INSERT INTO links (code, org_id, target, status, expires_at, forward_query, tags, title,
                            seq, domain_id, valid_since, expired_url,
                            utm_source, utm_medium, utm_campaign, utm_term, utm_content,
                            rules, split, password_hash, max_visits)
         SELECT $1, $2, $3, $4, $5, $6, $7, $8, 0, $9, $10, $11, $12, $13, $14, $15, $16,
                $17, $18, $19, $20
          WHERE NOT EXISTS (SELECT 1 FROM retired_codes WHERE domain_id = $9 AND code = $1)
         ON CONFLICT (domain_id, code) DO NOTHING RETURNING {LINK_COLUMNS}"
    );
    for _attempt in 0..8 {
        let code = new
            .code
            .clone()
            .unwrap_or_else(|| crate::codes::random_code(code_len));
        let row: Option<LinkRow> = sqlx::query_as(AssertSqlSafe(sql.clone()))
            .bind(&code)
            .bind(new.org_id)
            .bind(&new.target)
            .bind(new.status)
            .bind(new.expires_at)
            .bind(new.forward_query)
            .bind(&new.tags)
            .bind(&new.title)
            .bind(new.domain_id)
            .bind(new.valid_since)
            .bind(&new.expired_url)
            .bind(&new.utm.source)
            .bind(&new.utm.medium)
            .bind(&new.utm.campaign)
            .bind(&new.utm.term)
            .bind(&new.utm.content)
            .bind(super::rules::column(&new.rules))
            .bind(super::rules::column(&new.split))
            .bind(&new.password_hash)
            .bind(new.max_visits)
            .fetch_optional(&mut *conn)
            .await?;
        match row {
            Some(row) => return Ok(row),
            None if new.code.is_some() => return Err(ApiError::AliasTaken { code }),
            None => continue,
        }
    }
    Err(ApiError::Internal(anyhow::anyhow!(
        "8 random codes of length {code_len} collided; the code space is nearly full"
    )))
}

/// Whose links a lookup may find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// One organization's (tenant routes).
    Org(i64),
    /// Any organization's (the operator's routes).
    Any,
}

impl Owner {
    pub fn org_id(self) -> Option<i64> {
        match self {
            Owner::Org(id) => Some(id),
            Owner::Any => None,
        }
    }
}

/// Locks a live link of `owner` on `domain_id` for update.
pub async fn lock(
    conn: &mut PgConnection,
    owner: Owner,
    domain_id: i64,
    code: &str,
) -> ApiResult<LinkRow> {
    let sql = format!(
        "SELECT {LINK_COLUMNS} FROM links
          WHERE code = $1 AND ($2::bigint IS NULL OR org_id = $2) AND domain_id = $3
            AND deleted_at IS NULL
          FOR UPDATE"
    );
    sqlx::query_as(AssertSqlSafe(sql))
        .bind(code)
        .bind(owner.org_id())
        .bind(domain_id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(ApiError::NotFound { what: "link" })
}

/// Writes the mutable fields of `row` back, bumping version and update time.
/// A link without a visit limit keeps no budget: removing the limit
/// forgets what was leased (setting one again starts the count over, and a
/// lease of before is never credited to it).
pub async fn save(conn: &mut PgConnection, row: &LinkRow) -> ApiResult<LinkRow> {
    if row.max_visits.is_none() {
        sqlx::query("DELETE FROM visit_leases WHERE link_id = $1")
            .bind(row.id)
            .execute(&mut *conn)
            .await?;
        sqlx::query("DELETE FROM link_visits WHERE link_id = $1")
            .bind(row.id)
            .execute(&mut *conn)
            .await?;
    }
    let sql = format!(
        "UPDATE links SET target = $2, status = $3, expires_at = $4, disabled = $5,
                forward_query = $6, tags = $7, title = $8, deleted_at = $9,
                valid_since = $10, expired_url = $11,
                utm_source = $12, utm_medium = $13, utm_campaign = $14, utm_term = $15,
                utm_content = $16, rules = $17, split = $18, password_hash = $19,
                max_visits = $20,
                version = version + 1, updated_at = now()
          WHERE id = $1 RETURNING {LINK_COLUMNS}"
    );
    Ok(sqlx::query_as(AssertSqlSafe(sql))
        .bind(row.id)
        .bind(&row.target)
        .bind(row.status)
        .bind(row.expires_at)
        .bind(row.disabled)
        .bind(row.forward_query)
        .bind(&row.tags)
        .bind(&row.title)
        .bind(row.deleted_at)
        .bind(row.valid_since)
        .bind(&row.expired_url)
        .bind(&row.utm.source)
        .bind(&row.utm.medium)
        .bind(&row.utm.campaign)
        .bind(&row.utm.term)
        .bind(&row.utm.content)
        .bind(super::rules::column(&row.rules.0))
        .bind(super::rules::column(&row.split.0))
        .bind(&row.password_hash)
        .bind(row.max_visits)
        .fetch_one(&mut *conn)
        .await?)
}

/// Takes the next outbox sequence, stamps it on the link, and writes the
/// outbox row (an upsert, or a delete for a soft-deleted link) and the
/// link's webhook event (`crate::webhooks::events`). Call it last
/// in the transaction: the counter's row lock is held until commit, which is
/// what makes sequence order equal commit order (see the migration).
pub async fn record_change(conn: &mut PgConnection, link_id: i64) -> ApiResult<LinkRow> {
    let sql = format!(
        "WITH s AS (UPDATE outbox_counter SET seq = seq + 1 RETURNING seq)
         UPDATE links SET seq = s.seq FROM s WHERE links.id = $1
         RETURNING {LINK_COLUMNS_QUALIFIED}"
    );
    let row: LinkRow = sqlx::query_as(AssertSqlSafe(sql))
        .bind(link_id)
        .fetch_one(&mut *conn)
        .await?;
    let seq = row.seq as u64;
    let delta = if row.deleted_at.is_some() {
        LinkDelta::delete_in(seq, row.domain_id as u32, row.code.clone())
    } else {
        LinkDelta::upsert(seq, row.to_snapshot_link())
    };
    sqlx::query(
        "WITH i AS (INSERT INTO link_outbox (seq, code, delta) VALUES ($1, $2, $3) RETURNING seq)
         SELECT pg_notify('link_outbox', seq::text) FROM i",
    )
    .bind(row.seq)
    .bind(&row.code)
    .bind(delta.encode())
    .execute(&mut *conn)
    .await?;
    crate::webhooks::events::record_link_events(conn, std::slice::from_ref(&row)).await?;
    Ok(row)
}

/// [`record_change`] for many links at once (bulk writes, imports): one
/// counter bump of `ids.len()` (deduplicated: one change per link, its final
/// state), one `UPDATE` stamping each link, one multi-row outbox insert and
/// one notification. The same rule holds: call it last in the transaction.
pub async fn record_changes(conn: &mut PgConnection, ids: &[i64]) -> ApiResult<Vec<LinkRow>> {
    let mut seen = std::collections::HashSet::with_capacity(ids.len());
    let ids: Vec<i64> = ids.iter().copied().filter(|id| seen.insert(*id)).collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "WITH s AS (UPDATE outbox_counter SET seq = seq + $2 RETURNING seq - $2 AS base),
              v AS (SELECT id, ord FROM unnest($1::bigint[]) WITH ORDINALITY AS v(id, ord))
         UPDATE links SET seq = s.base + v.ord FROM s, v WHERE links.id = v.id
         RETURNING {LINK_COLUMNS_QUALIFIED}"
    );
    let mut rows: Vec<LinkRow> = sqlx::query_as(AssertSqlSafe(sql))
        .bind(&ids)
        .bind(ids.len() as i64)
        .fetch_all(&mut *conn)
        .await?;
    rows.sort_by_key(|r| r.seq);
    write_outbox(conn, &rows).await?;
    Ok(rows)
}

/// The outbox entries of links already stamped with their sequence (in
/// sequence order): one change each, a delete for a deleted link, else its
/// state; one multi-row insert and one notification; then their webhook
/// events (`crate::webhooks::events`).
pub async fn write_outbox(conn: &mut PgConnection, rows: &[LinkRow]) -> sqlx::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut seqs = Vec::with_capacity(rows.len());
    let mut codes = Vec::with_capacity(rows.len());
    let mut deltas = Vec::with_capacity(rows.len());
    for row in rows {
        let seq = row.seq as u64;
        let delta = if row.deleted_at.is_some() {
            LinkDelta::delete_in(seq, row.domain_id as u32, row.code.clone())
        } else {
            LinkDelta::upsert(seq, row.to_snapshot_link())
        };
        seqs.push(row.seq);
        codes.push(row.code.as_str());
        deltas.push(delta.encode());
    }
    sqlx::query(
        "WITH i AS (INSERT INTO link_outbox (seq, code, delta)
                    SELECT * FROM unnest($1::bigint[], $2::text[], $3::bytea[]) RETURNING seq)
         SELECT pg_notify('link_outbox', max(seq)::text) FROM i",
    )
    .bind(&seqs)
    .bind(&codes)
    .bind(&deltas)
    .execute(&mut *conn)
    .await?;
    crate::webhooks::events::record_link_events(conn, rows).await
}

/// The first blocklist entry matching `host` or one of its parents.
pub async fn blocked_rule(conn: &mut PgConnection, host: &str) -> ApiResult<Option<String>> {
    let candidates = crate::target::candidate_hosts(host);
    Ok(
        sqlx::query_scalar("SELECT host FROM blocked_hosts WHERE host = ANY($1) LIMIT 1")
            .bind(&candidates)
            .fetch_optional(&mut *conn)
            .await?,
    )
}
