//! Users on the command line: `control users create` and
//! `control users set-password`, the only way to make the first user (and
//! any operator). Whoever can reach the database can do this already.

use super::email;
use super::password::{self, Passwords};
use crate::audit::{Actor, audit};
use crate::auth::Role;
use crate::error::ApiError;
use serde_json::json;
use sqlx::PgPool;

fn cli_error(e: ApiError) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

/// Who a new user is.
#[derive(Debug, Clone)]
pub struct NewUser<'a> {
    pub email: &'a str,
    pub password: &'a str,
    pub operator: bool,
    /// An organization (created if missing) and the user's role in it.
    pub org: Option<(&'a str, Role)>,
}

/// Creates a user; returns their id. Refuses an e-mail that has an account.
pub async fn create_user(
    db: &PgPool,
    passwords: &Passwords,
    user: NewUser<'_>,
) -> anyhow::Result<i64> {
    let email = email::normalize("email", user.email).map_err(cli_error)?;
    password::check_new("password", user.password).map_err(cli_error)?;
    if let Some((org, _)) = user.org {
        crate::text::check("org", org, crate::keys::MAX_ORG_LEN).map_err(cli_error)?;
        if org.trim().is_empty() {
            anyhow::bail!("org: the organization name is empty");
        }
    }
    let hash = passwords.hash(user.password).await.map_err(cli_error)?;
    let mut tx = db.begin().await?;
    let id: Option<i64> = sqlx::query_scalar(
        "INSERT INTO users (email, password_hash, operator) VALUES ($1, $2, $3)
         ON CONFLICT ((lower(email))) DO NOTHING RETURNING id",
    )
    .bind(&email)
    .bind(&hash)
    .bind(user.operator)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(id) = id else {
        anyhow::bail!(
            "email: {email} has an account already (set its password with `control users set-password`)"
        );
    };
    let actor = if user.operator {
        Actor::CLI_OPERATOR
    } else {
        Actor::CLI
    };
    audit(
        &mut tx,
        None,
        actor,
        "user.create",
        &email,
        json!({ "via": "cli", "operator": user.operator, "user_id": id }),
    )
    .await
    .map_err(cli_error)?;
    if let Some((org, role)) = user.org {
        let org_id: i64 = sqlx::query_scalar(
            "INSERT INTO organizations (name) VALUES ($1)
             ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING id",
        )
        .bind(org)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query("INSERT INTO memberships (org_id, user_id, role) VALUES ($1, $2, $3)")
            .bind(org_id)
            .bind(id)
            .bind(role.as_str())
            .execute(&mut *tx)
            .await?;
        audit(
            &mut tx,
            Some(org_id),
            Actor::CLI,
            "member.add",
            &email,
            json!({ "via": "cli", "role": role }),
        )
        .await
        .map_err(cli_error)?;
    }
    tx.commit().await?;
    Ok(id)
}

/// Sets a user's password and ends all their sessions.
pub async fn set_password(
    db: &PgPool,
    passwords: &Passwords,
    email: &str,
    password: &str,
) -> anyhow::Result<()> {
    let email = email::normalize("email", email).map_err(cli_error)?;
    password::check_new("password", password).map_err(cli_error)?;
    let hash = passwords.hash(password).await.map_err(cli_error)?;
    let mut tx = db.begin().await?;
    let id: Option<i64> = sqlx::query_scalar(
        "UPDATE users SET password_hash = $2, password_changed_at = now()
          WHERE lower(email) = lower($1) RETURNING id",
    )
    .bind(&email)
    .bind(&hash)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(id) = id else {
        anyhow::bail!("email: no account has {email}");
    };
    let ended = super::sessions::end_all(&mut tx, id)
        .await
        .map_err(cli_error)?;
    audit(
        &mut tx,
        None,
        Actor::CLI,
        "password.set",
        &email,
        json!({ "via": "cli", "sessions_ended": ended }),
    )
    .await
    .map_err(cli_error)?;
    tx.commit().await?;
    Ok(())
}

/// Reads a password: the file's content, or standard input, less one
/// trailing line end (what `echo` and editors add).
pub fn read_password(file: Option<&std::path::Path>) -> anyhow::Result<String> {
    use anyhow::Context as _;
    use std::io::Read as _;
    let mut text = String::new();
    match file {
        Some(path) => {
            text = std::fs::read_to_string(path)
                .with_context(|| format!("password file {}", path.display()))?;
        }
        None => {
            std::io::stdin()
                .read_to_string(&mut text)
                .context("reading the password from standard input")?;
        }
    }
    let text = text
        .strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(&text);
    Ok(text.to_owned())
}
