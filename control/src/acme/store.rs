//! The `certificates` table: requests, due rows, issued certificates and
//! failures. The private key is sealed before it reaches SQL and opened only
//! to ship it to an engine ([`super::push`]).

use serde::Serialize;
use sqlx::PgPool;
use std::time::Duration;
use time::OffsetDateTime;

/// A certificate row without its key: what the API shows.
#[derive(Debug, Clone, sqlx::FromRow, Serialize, utoipa::ToSchema)]
pub struct CertificateStatus {
    /// The domain's normalised name.
    pub domain: String,
    /// `pending` (never issued), `issued`, or `failing` (the last attempt
    /// failed; an issued certificate, if any, is still served).
    #[sqlx(skip)]
    pub status: &'static str,
    /// The PEM chain, leaf first (public); `null` before the first issuance.
    pub chain_pem: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub not_before: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub not_after: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub issued_at: Option<OffsetDateTime>,
    /// When the renewal task orders next (renewal, request or retry).
    #[serde(with = "time::serde::rfc3339")]
    pub renew_at: OffsetDateTime,
    /// Failed attempts since the last success.
    pub failures: i32,
    /// What went wrong last, for people (never key material).
    pub last_error: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_error_at: Option<OffsetDateTime>,
}

const STATUS_COLUMNS: &str = "domain, chain_pem, not_before, not_after, issued_at, renew_at, \
    failures, last_error, last_error_at";

impl CertificateStatus {
    fn with_status(mut self) -> Self {
        self.status = match (&self.chain_pem, self.failures) {
            (_, f) if f > 0 => "failing",
            (Some(_), _) => "issued",
            (None, _) => "pending",
        };
        self
    }
}

/// The status of `domain`'s certificate, if https was ever requested.
pub async fn status(db: &PgPool, domain: &str) -> sqlx::Result<Option<CertificateStatus>> {
    let row: Option<CertificateStatus> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {STATUS_COLUMNS} FROM certificates WHERE domain = $1"
    )))
    .bind(domain)
    .fetch_optional(db)
    .await?;
    Ok(row.map(CertificateStatus::with_status))
}

/// Makes `domain` due now (a first request, or a renewal on demand).
pub async fn request(
    conn: &mut sqlx::PgConnection,
    domain: &str,
) -> sqlx::Result<CertificateStatus> {
    let row: CertificateStatus = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "INSERT INTO certificates (domain) VALUES ($1)
         ON CONFLICT (domain) DO UPDATE SET renew_at = now(), requested_at = now(),
                                            updated_at = now()
         RETURNING {STATUS_COLUMNS}"
    )))
    .bind(domain)
    .fetch_one(conn)
    .await?;
    Ok(row.with_status())
}

/// A domain due for an order, with the verified domain it belongs to.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Due {
    pub domain: String,
    pub domain_id: i64,
    pub failures: i32,
}

/// Rows whose `renew_at` has passed, of verified live domains, oldest first.
pub async fn due(db: &PgPool, limit: i64) -> sqlx::Result<Vec<Due>> {
    sqlx::query_as(
        "SELECT c.domain, d.id AS domain_id, c.failures
           FROM certificates c
           JOIN domains d ON d.name = c.domain AND d.verified_at IS NOT NULL
                         AND d.deleted_at IS NULL AND d.id <> 0
          WHERE c.renew_at <= now()
          ORDER BY c.renew_at LIMIT $1",
    )
    .bind(limit)
    .fetch_all(db)
    .await
}

/// An issued certificate to store.
#[derive(Debug)]
pub struct Issued {
    pub chain_pem: String,
    pub key_pem_sealed: Vec<u8>,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

/// When a certificate valid from `not_before` to `not_after` is renewed:
/// 2/3 into its lifetime (30 days before the end of a 90-day one).
pub fn renewal_time(not_before: OffsetDateTime, not_after: OffsetDateTime) -> OffsetDateTime {
    not_before + (not_after - not_before) * 2 / 3
}

/// Stores a new certificate, clears the failures and schedules its renewal.
pub async fn store_issued(db: &PgPool, domain: &str, issued: &Issued) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE certificates SET chain_pem = $2, key_pem_sealed = $3, not_before = $4,
                not_after = $5, issued_at = now(), renew_at = $6, failures = 0,
                last_error = NULL, last_error_at = NULL, updated_at = now()
          WHERE domain = $1",
    )
    .bind(domain)
    .bind(&issued.chain_pem)
    .bind(&issued.key_pem_sealed)
    .bind(issued.not_before)
    .bind(issued.not_after)
    .bind(renewal_time(issued.not_before, issued.not_after))
    .execute(db)
    .await?;
    Ok(())
}

/// The wait before retry number `failures` (1 = the first failure):
/// `base`, doubling each time, at most a day.
pub fn backoff(base: Duration, failures: i32) -> Duration {
    let doublings = failures.saturating_sub(1).clamp(0, 20) as u32;
    base.saturating_mul(1 << doublings)
        .min(Duration::from_secs(24 * 3600))
}

/// Records a failed attempt and when to try again; returns that wait.
pub async fn store_failure(
    db: &PgPool,
    domain: &str,
    failures_before: i32,
    error: &str,
    base: Duration,
) -> sqlx::Result<Duration> {
    let wait = backoff(base, failures_before + 1);
    sqlx::query(
        "UPDATE certificates SET failures = failures + 1, last_error = $2, last_error_at = now(),
                renew_at = now() + make_interval(secs => $3), updated_at = now()
          WHERE domain = $1",
    )
    .bind(domain)
    .bind(error)
    .bind(wait.as_secs_f64())
    .execute(db)
    .await?;
    Ok(wait)
}

/// An issued certificate's chain and sealed key.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Pair {
    pub domain: String,
    pub chain_pem: String,
    pub key_pem_sealed: Vec<u8>,
    pub issued_at: OffsetDateTime,
}

/// Every issued certificate of a verified live domain (what engines serve).
pub async fn issued_pairs(db: &PgPool) -> sqlx::Result<Vec<Pair>> {
    sqlx::query_as(
        "SELECT c.domain, c.chain_pem, c.key_pem_sealed, c.issued_at
           FROM certificates c
           JOIN domains d ON d.name = c.domain AND d.verified_at IS NOT NULL
                         AND d.deleted_at IS NULL AND d.id <> 0
          WHERE c.chain_pem IS NOT NULL
          ORDER BY c.domain",
    )
    .fetch_all(db)
    .await
}

/// Names with an issued certificate and no live verified domain (deleted,
/// or no longer verified): engines must stop serving them.
pub async fn withdrawn_names(db: &PgPool) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "SELECT c.domain FROM certificates c
          WHERE c.chain_pem IS NOT NULL
            AND NOT EXISTS (SELECT 1 FROM domains d
                             WHERE d.name = c.domain AND d.verified_at IS NOT NULL
                               AND d.deleted_at IS NULL AND d.id <> 0)
          ORDER BY c.domain",
    )
    .fetch_all(db)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn renews_two_thirds_in() {
        let start = datetime!(2026-01-01 00:00 UTC);
        assert_eq!(
            renewal_time(start, start + time::Duration::days(90)),
            start + time::Duration::days(60)
        );
    }

    #[test]
    fn backoff_doubles_to_a_day() {
        let base = Duration::from_secs(300);
        assert_eq!(backoff(base, 1), base);
        assert_eq!(backoff(base, 2), base * 2);
        assert_eq!(backoff(base, 4), base * 8);
        assert_eq!(backoff(base, 40), Duration::from_secs(24 * 3600));
        assert_eq!(backoff(base, 0), base);
    }
}
