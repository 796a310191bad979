//! API key management: `POST/GET /v1/keys`, `DELETE /v1/keys/{id}` (an
//! organization's `admin` scope, its own keys only), and the bootstrap the
//! `control keys` command uses, which is also the only way to make or revoke
//! an operator key.

use crate::audit::{Actor, audit};
use crate::auth::{self, Auth, Scope};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::PgPool;
use time::OffsetDateTime;

/// Longest key name, bytes.
pub const MAX_NAME_LEN: usize = 100;
/// Longest organization name, bytes.
pub const MAX_ORG_LEN: usize = 100;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// At most [`MAX_NAME_LEN`] bytes.
    #[serde(default)]
    #[schema(max_length = 100)]
    pub name: String,
    /// One or more of the scopes.
    #[schema(schema_with = scopes_schema)]
    pub scopes: Vec<String>,
    /// When the key stops working; must be in the future.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
}

/// A key as listed (never the secret).
/// A non-empty list of [`Scope`] names.
fn scopes_schema() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
    let names = Scope::ALL.iter().map(|s| s.as_str());
    ArrayBuilder::new()
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(names)),
        )
        .min_items(Some(1))
        .build()
}

#[derive(Debug, Serialize, Deserialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct KeyInfo {
    pub id: i64,
    pub name: String,
    pub prefix: String,
    pub scopes: Vec<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

const KEY_COLUMNS: &str =
    "id, name, prefix, scopes, expires_at, revoked_at, last_used_at, created_at";

/// Who a new key is for.
#[derive(Debug, Clone, Copy)]
pub enum KeyFor<'a> {
    Org { org_id: i64, scopes: &'a [String] },
    Operator,
}

fn check_name(name: &str) -> ApiResult<()> {
    crate::text::check("name", name, MAX_NAME_LEN)
}

/// Inserts a key; returns its info and the secret (shown once).
pub async fn insert_key(
    conn: &mut sqlx::PgConnection,
    owner: KeyFor<'_>,
    name: &str,
    expires_at: Option<OffsetDateTime>,
) -> ApiResult<(KeyInfo, String)> {
    check_name(name)?;
    if let Some(at) = expires_at
        && at <= OffsetDateTime::now_utc()
    {
        return Err(ApiError::invalid_field(
            "expires_at",
            "must be in the future (a key that is already expired is of no use)",
        ));
    }
    let (org_id, operator, scopes): (Option<i64>, bool, Vec<&str>) = match owner {
        KeyFor::Org { org_id, scopes } => (
            Some(org_id),
            false,
            Scope::parse_list(scopes)?
                .into_iter()
                .map(Scope::as_str)
                .collect(),
        ),
        KeyFor::Operator => (None, true, Vec::new()),
    };
    let key = auth::generate_key();
    let info: KeyInfo = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO api_keys (org_id, operator, name, prefix, secret_hash, scopes, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {KEY_COLUMNS}"
    )))
    .bind(org_id)
    .bind(operator)
    .bind(name)
    .bind(&key.prefix)
    .bind(&key.hash)
    .bind(&scopes)
    .bind(expires_at)
    .fetch_one(&mut *conn)
    .await?;
    Ok((info, key.secret))
}

fn cli_error(e: ApiError) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

/// Bootstrap: creates the organization if needed and a key in it.
pub async fn bootstrap_key(
    db: &PgPool,
    org: &str,
    scopes: &[String],
    name: &str,
) -> anyhow::Result<(i64, String)> {
    crate::text::check("org", org, MAX_ORG_LEN).map_err(cli_error)?;
    if org.trim().is_empty() {
        anyhow::bail!("org: the organization name is empty");
    }
    let mut tx = db.begin().await?;
    let org_id: i64 = sqlx::query_scalar(
        "INSERT INTO organizations (name) VALUES ($1)
         ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING id",
    )
    .bind(org)
    .fetch_one(&mut *tx)
    .await?;
    let (info, secret) = insert_key(&mut tx, KeyFor::Org { org_id, scopes }, name, None)
        .await
        .map_err(cli_error)?;
    audit(
        &mut tx,
        Some(org_id),
        Actor::CLI,
        "key.create",
        &info.prefix,
        json!({ "via": "cli", "scopes": info.scopes }),
    )
    .await
    .map_err(cli_error)?;
    tx.commit().await?;
    Ok((org_id, secret))
}

/// Bootstrap: an operator key.
pub async fn bootstrap_operator_key(db: &PgPool, name: &str) -> anyhow::Result<String> {
    let mut tx = db.begin().await?;
    let (info, secret) = insert_key(&mut tx, KeyFor::Operator, name, None)
        .await
        .map_err(cli_error)?;
    audit(
        &mut tx,
        None,
        Actor::CLI_OPERATOR,
        "key.create",
        &info.prefix,
        json!({ "via": "cli", "operator": true }),
    )
    .await
    .map_err(cli_error)?;
    tx.commit().await?;
    Ok(secret)
}

/// Revokes any key by its visible prefix (the CLI's way for operator keys).
pub async fn revoke_by_prefix(db: &PgPool, prefix: &str) -> anyhow::Result<()> {
    let mut tx = db.begin().await?;
    let row: Option<(Option<i64>, bool)> = sqlx::query_as(
        "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())
          WHERE prefix = $1 RETURNING org_id, operator",
    )
    .bind(prefix)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((org_id, operator)) = row else {
        anyhow::bail!("no key has the prefix {prefix:?}");
    };
    audit(
        &mut tx,
        org_id,
        if operator {
            Actor::CLI_OPERATOR
        } else {
            Actor::CLI
        },
        "key.revoke",
        prefix,
        json!({ "via": "cli" }),
    )
    .await
    .map_err(cli_error)?;
    tx.commit().await?;
    Ok(())
}

/// Makes a key in `auth`'s organization (`admin`); returns it and the
/// secret, shown once. The one way (the API and the dashboard).
pub async fn create_key(
    state: &AppState,
    auth: &Auth,
    req: &CreateKey,
) -> ApiResult<(KeyInfo, String)> {
    let org_id = auth.org(Scope::Admin)?;
    let mut tx = state.db.begin().await?;
    let (info, secret) = insert_key(
        &mut tx,
        KeyFor::Org {
            org_id,
            scopes: &req.scopes,
        },
        &req.name,
        req.expires_at,
    )
    .await?;
    audit(
        &mut tx,
        Some(org_id),
        auth.actor(),
        "key.create",
        &info.prefix,
        json!({ "scopes": info.scopes }),
    )
    .await?;
    tx.commit().await?;
    Ok((info, secret))
}

/// The keys of `auth`'s organization (`admin`), revoked ones included.
pub async fn list_keys(state: &AppState, auth: &Auth) -> ApiResult<Vec<KeyInfo>> {
    let org_id = auth.org(Scope::Admin)?;
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {KEY_COLUMNS} FROM api_keys WHERE org_id = $1 ORDER BY id"
    )))
    .bind(org_id)
    .fetch_all(&state.db)
    .await?)
}

/// Revokes a key of `auth`'s organization (`admin`); revoking a revoked
/// key changes nothing but is audited again.
pub async fn revoke_key(state: &AppState, auth: &Auth, id: i64) -> ApiResult<()> {
    let org_id = auth.org(Scope::Admin)?;
    let mut tx = state.db.begin().await?;
    let prefix: Option<String> = sqlx::query_scalar(
        "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())
          WHERE id = $1 AND org_id = $2 RETURNING prefix",
    )
    .bind(id)
    .bind(org_id)
    .fetch_optional(&mut *tx)
    .await?;
    let prefix = prefix.ok_or(ApiError::NotFound { what: "key" })?;
    audit(
        &mut tx,
        Some(org_id),
        auth.actor(),
        "key.revoke",
        &prefix,
        json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// `POST /v1/keys`: the new key and its secret, shown this once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedKey {
    pub key: KeyInfo,
    /// The bearer secret; only its SHA-256 is stored.
    pub secret: String,
}

/// `GET /v1/keys`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct KeyList {
    pub keys: Vec<KeyInfo>,
}

pub async fn create(
    State(state): State<AppState>,
    auth: Auth,
    Json(req): Json<CreateKey>,
) -> ApiResult<(StatusCode, axum::Json<CreatedKey>)> {
    let (key, secret) = create_key(&state, &auth, &req).await?;
    Ok((StatusCode::CREATED, axum::Json(CreatedKey { key, secret })))
}

pub async fn list(State(state): State<AppState>, auth: Auth) -> ApiResult<axum::Json<KeyList>> {
    let keys = list_keys(&state, &auth).await?;
    Ok(axum::Json(KeyList { keys }))
}

pub async fn revoke(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    revoke_key(&state, &auth, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
