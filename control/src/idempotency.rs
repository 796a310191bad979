//! `Idempotency-Key` on creates: the first response is replayed for 24 hours.
//!
//! The key is claimed inside the create's own transaction with
//! `INSERT ... ON CONFLICT DO UPDATE ... WHERE expired`. A concurrent request
//! with the same key blocks on the unique index until the first commits, then
//! sees its stored response: two requests never both create. If the create
//! fails, its transaction rolls back and the key is free again.

use crate::error::{ApiError, ApiResult};
use axum::http::HeaderMap;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;

/// What to do with a request that carries a key.
#[derive(Debug)]
pub enum Claim {
    /// First use (or the old use expired): go ahead, then [`store`].
    Proceed,
    /// Seen before with the same body: answer this again.
    Replay {
        status: u16,
        body: serde_json::Value,
    },
}

/// The key from the `Idempotency-Key` header, checked.
pub fn key_from(headers: &HeaderMap) -> ApiResult<Option<String>> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let v = v
        .to_str()
        .map_err(|_| ApiError::bad_request("Idempotency-Key must be visible ASCII"))?
        .trim();
    if v.is_empty() || v.len() > 255 {
        return Err(ApiError::bad_request(
            "Idempotency-Key must be 1 to 255 characters",
        ));
    }
    // What the OpenAPI document promises (`^[!-~]+$`): a space or tab
    // inside the key is refused too, not only control characters.
    if !v.bytes().all(|b| (b'!'..=b'~').contains(&b)) {
        return Err(ApiError::bad_request(
            "Idempotency-Key must be visible ASCII, without spaces",
        ));
    }
    Ok(Some(v.to_owned()))
}

/// A hash of the request that the key is bound to.
pub fn request_hash(body: &impl serde::Serialize) -> Vec<u8> {
    let bytes = serde_json::to_vec(body).expect("request bodies serialize");
    Sha256::digest(&bytes).to_vec()
}

pub async fn claim(
    conn: &mut PgConnection,
    org_id: i64,
    key: &str,
    hash: &[u8],
) -> ApiResult<Claim> {
    let claimed: Option<i32> = sqlx::query_scalar(
        "INSERT INTO idempotency_keys (org_id, key, request_hash) VALUES ($1, $2, $3)
         ON CONFLICT (org_id, key) DO UPDATE
             SET request_hash = EXCLUDED.request_hash, status = NULL, response = NULL,
                 created_at = now()
           WHERE idempotency_keys.created_at < now() - interval '24 hours'
         RETURNING 1",
    )
    .bind(org_id)
    .bind(key)
    .bind(hash)
    .fetch_optional(&mut *conn)
    .await?;
    if claimed.is_some() {
        return Ok(Claim::Proceed);
    }
    let (stored_hash, status, body): (Vec<u8>, Option<i16>, Option<sqlx::types::Json<serde_json::Value>>) =
        sqlx::query_as(
            "SELECT request_hash, status, response FROM idempotency_keys WHERE org_id = $1 AND key = $2",
        )
        .bind(org_id)
        .bind(key)
        .fetch_one(&mut *conn)
        .await?;
    if stored_hash != hash {
        return Err(ApiError::IdempotencyMismatch);
    }
    match (status, body) {
        (Some(status), Some(body)) => Ok(Claim::Replay {
            status: status as u16,
            body: body.0,
        }),
        // Only committed claims are visible and they always carry a response.
        _ => Err(ApiError::Conflict(
            "a request with this Idempotency-Key is still in progress".into(),
        )),
    }
}

pub async fn store(
    conn: &mut PgConnection,
    org_id: i64,
    key: &str,
    status: u16,
    body: &serde_json::Value,
) -> ApiResult<()> {
    sqlx::query(
        "UPDATE idempotency_keys SET status = $3, response = $4 WHERE org_id = $1 AND key = $2",
    )
    .bind(org_id)
    .bind(key)
    .bind(status as i16)
    .bind(sqlx::types::Json(body))
    .execute(&mut *conn)
    .await?;
    Ok(())
}
