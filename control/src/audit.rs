//! The audit log: every write, who did it, and for which organization.

use crate::error::ApiResult;
use sqlx::PgConnection;

/// Who acted: a key (none for the `control` CLI), and whether as the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actor {
    pub key_id: Option<i64>,
    pub operator: bool,
}

impl Actor {
    /// The `control` command line (whoever can reach the database).
    pub const CLI: Actor = Actor {
        key_id: None,
        operator: false,
    };
}

/// Appends to the audit log. `org_id` is the organization acted on (`None`
/// for service-wide acts such as the blocklist).
pub async fn audit(
    conn: &mut PgConnection,
    org_id: Option<i64>,
    actor: Actor,
    action: &str,
    subject: &str,
    details: serde_json::Value,
) -> ApiResult<()> {
    sqlx::query(
        "INSERT INTO audit_log (org_id, api_key_id, operator, action, subject, details)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(org_id)
    .bind(actor.key_id)
    .bind(actor.operator)
    .bind(action)
    .bind(subject)
    .bind(sqlx::types::Json(details))
    .execute(&mut *conn)
    .await?;
    Ok(())
}
