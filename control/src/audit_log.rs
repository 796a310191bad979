//! `GET /v1/audit`: the audit log, newest first.
//!
//! An organization's admins and owners (and `admin` keys) read its entries;
//! the operator reads everyone's, including the service-wide ones (sign-ins,
//! the blocklist, snapshots) and may narrow to one organization with `org`.
//! Filters: `actor` (a user's e-mail, a key's prefix, `operator`, `cli`),
//! `action` (exact, or a family: `member` matches `member.remove`), `from`
//! and `to` (RFC 3339, `to` exclusive). Paged by an opaque `cursor`, as
//! links are: entries written while a reader pages land before its position.

use crate::auth::{Auth, Principal, Role};
use crate::error::{ApiError, ApiResult};
use crate::extract::Query;
use crate::state::AppState;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Most entries a page holds.
pub const MAX_LIMIT: i64 = 500;

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Page size (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// The previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Only this actor's entries.
    pub actor: Option<String>,
    /// Only this action (e.g. `link.create`).
    pub action: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub from: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub to: Option<OffsetDateTime>,
    /// The operator only: one organization's entries (its id).
    pub org: Option<i64>,
}

/// Who acted.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditActor {
    /// `user` (signed in, or signing in), `key`, `anonymous` (not signed in:
    /// a failed sign-in), or `cli` (the command line).
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_prefix: Option<String>,
    /// Whether they acted as the service's operator.
    pub operator: bool,
}

/// One entry: who, what, when, from where, in which organization.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub org_id: Option<i64>,
    pub org: Option<String>,
    pub actor: AuditActor,
    pub action: String,
    pub subject: String,
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    /// The client's address; none for the command line and older entries.
    pub ip: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    pub next_cursor: Option<String>,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    at: OffsetDateTime,
    org_id: Option<i64>,
    org: Option<String>,
    action: String,
    subject: String,
    details: sqlx::types::Json<serde_json::Value>,
    ip: Option<String>,
    operator: bool,
    email: Option<String>,
    key_prefix: Option<String>,
}

/// The audit listing's cursor tag.
const CURSOR_TAG: &str = "a1";

/// An action filter: dotted lowercase words, as actions are written.
fn check_action(action: &str) -> ApiResult<()> {
    let ok = !action.is_empty()
        && action.len() <= 64
        && action
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b == b'.' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid_field(
            "action",
            "is not an action name (lowercase words with dots, e.g. member.role_change)",
        ))
    }
}

pub async fn list(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<AuditQuery>,
) -> ApiResult<axum::Json<AuditPage>> {
    Ok(axum::Json(read(&state, &auth, &q).await?))
}

/// One page of the audit log `auth` may read (the module doc's rules):
/// the one reader, for the API and the dashboard.
pub async fn read(state: &AppState, auth: &Auth, q: &AuditQuery) -> ApiResult<AuditPage> {
    let org_id = match auth.principal {
        Principal::Operator => q.org,
        _ => {
            if q.org.is_some() {
                return Err(ApiError::invalid_field(
                    "org",
                    "only the operator chooses an organization here; yours is the one you act in",
                ));
            }
            Some(auth.member(Role::Admin)?.0)
        }
    };
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
    if let Some(actor) = &q.actor {
        crate::text::check("actor", actor, crate::accounts::email::MAX_EMAIL_LEN)?;
    }
    if let Some(action) = &q.action {
        check_action(action)?;
    }
    let family = q
        .action
        .as_ref()
        .map(|a| format!("{}.%", a.replace('_', "\\_")));
    let mut rows: Vec<Row> = sqlx::query_as(
        "SELECT a.id, a.at, a.org_id, o.name AS org, a.action, a.subject, a.details,
                host(a.ip) AS ip, a.operator, u.email, k.prefix AS key_prefix
           FROM audit_log a
           LEFT JOIN users u ON u.id = a.user_id
           LEFT JOIN api_keys k ON k.id = a.api_key_id
           LEFT JOIN organizations o ON o.id = a.org_id
          WHERE ($1::bigint IS NULL OR a.org_id = $1)
            AND ($2::bigint IS NULL OR a.id < $2)
            AND ($3::text IS NULL OR lower(u.email) = lower($3) OR k.prefix = $3
                 OR ($3 = 'operator' AND a.operator)
                 OR ($3 = 'cli' AND a.ip IS NULL AND a.user_id IS NULL AND a.api_key_id IS NULL))
            AND ($4::text IS NULL OR a.action = $4 OR a.action LIKE $5)
            AND ($6::timestamptz IS NULL OR a.at >= $6)
            AND ($7::timestamptz IS NULL OR a.at < $7)
          ORDER BY a.id DESC
          LIMIT $8",
    )
    .bind(org_id)
    .bind(before)
    .bind(&q.actor)
    .bind(&q.action)
    .bind(family)
    .bind(q.from)
    .bind(q.to)
    .bind(limit + 1)
    .fetch_all(&state.db)
    .await?;
    let next_cursor = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|r| crate::cursor::encode(CURSOR_TAG, r.id))
    } else {
        None
    };
    let entries = rows
        .into_iter()
        .map(|r| {
            let kind = match (&r.email, &r.key_prefix, &r.ip) {
                (Some(_), _, _) => "user",
                (None, Some(_), _) => "key",
                (None, None, Some(_)) => "anonymous",
                (None, None, None) => "cli",
            };
            AuditEntry {
                id: r.id,
                at: r.at,
                org_id: r.org_id,
                org: r.org,
                actor: AuditActor {
                    kind,
                    email: r.email,
                    key_prefix: r.key_prefix,
                    operator: r.operator,
                },
                action: r.action,
                subject: r.subject,
                details: r.details.0,
                ip: r.ip,
            }
        })
        .collect();
    Ok(AuditPage {
        entries,
        next_cursor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_and_actions() {
        let decode = |c: &str| crate::cursor::decode(CURSOR_TAG, c);
        assert_eq!(decode(&crate::cursor::encode(CURSOR_TAG, 42)).unwrap(), 42);
        // A links cursor is not an audit cursor.
        assert!(decode(&hex::encode("l1:42")).is_err());
        assert!(check_action("member.role_change").is_ok());
        assert!(check_action("member%").is_err());
        assert!(check_action("").is_err());
    }
}
