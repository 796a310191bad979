//! The audit log: every write, who did it (a key, a signed-in user, the
//! command line; as the operator or not), from which address, and for which
//! organization. Reading it back is [`crate::audit_log`].

use crate::error::ApiResult;
use sqlx::PgConnection;
use std::net::IpAddr;

/// Who acted: a key or a user (neither for the `control` CLI), whether as the
/// operator, and the client's address (none for the CLI).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actor {
    pub key_id: Option<i64>,
    pub user_id: Option<i64>,
    pub operator: bool,
    pub ip: Option<IpAddr>,
}

impl Actor {
    /// The `control` command line (whoever can reach the database).
    pub const CLI: Actor = Actor {
        key_id: None,
        user_id: None,
        operator: false,
        ip: None,
    };

    /// The command line acting as the operator.
    pub const CLI_OPERATOR: Actor = Actor {
        operator: true,
        ..Actor::CLI
    };

    /// Someone not signed in (a failed sign-in, a reset request), known by
    /// address only; `user_id` when the act concerns a known user.
    pub fn anonymous(ip: IpAddr, user_id: Option<i64>) -> Actor {
        Actor {
            user_id,
            ip: Some(ip),
            ..Actor::CLI
        }
    }
}

/// Appends to the audit log. `org_id` is the organization acted on (`None`
/// for service-wide acts such as the blocklist, or a sign-in).
pub async fn audit(
    conn: &mut PgConnection,
    org_id: Option<i64>,
    actor: Actor,
    action: &str,
    subject: &str,
    details: serde_json::Value,
) -> ApiResult<()> {
    sqlx::query(
        "INSERT INTO audit_log (org_id, api_key_id, user_id, operator, ip, action, subject, details)
         VALUES ($1, $2, $3, $4, $5::text::inet, $6, $7, $8)",
    )
    .bind(org_id)
    .bind(actor.key_id)
    .bind(actor.user_id)
    .bind(actor.operator)
    .bind(actor.ip.map(|ip| ip.to_string()))
    .bind(action)
    .bind(subject)
    .bind(sqlx::types::Json(details))
    .execute(&mut *conn)
    .await?;
    Ok(())
}
