//! A fresh PostgreSQL database per test.

use std::time::Duration;

use anyhow::Context as _;
use sqlx::postgres::{PgConnection, PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, Connection as _};

use crate::{cleanup, env_or, keep_resources, unique_name};

const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The admin URL tests create their databases through: `TEST_DATABASE_URL`, or
/// `postgres://postgres@127.0.0.1:5432/postgres` (trust auth, as `deploy/services.sh`
/// sets it up).
pub fn admin_database_url() -> String {
    env_or("TEST_DATABASE_URL", DEFAULT_ADMIN_URL)
}

/// A PostgreSQL database that exists for as long as this guard does.
///
/// Created empty with `CREATE DATABASE` on the server of [`admin_database_url`]; dropped
/// with `DROP DATABASE ... WITH (FORCE)` (which also ends connections still open to it,
/// such as a pool the test forgot) when the guard is dropped or [`cleanup`] is called.
///
/// [`cleanup`]: PgDatabase::cleanup
#[derive(Debug)]
pub struct PgDatabase {
    name: String,
    url: String,
    admin_url: String,
    dropped: bool,
}

impl PgDatabase {
    /// Creates a database named `tk_...`.
    pub async fn create() -> anyhow::Result<Self> {
        Self::create_with_prefix("tk").await
    }

    /// Creates a database named [`unique_name(prefix)`](unique_name).
    pub async fn create_with_prefix(prefix: &str) -> anyhow::Result<Self> {
        let admin_url = admin_database_url();
        let name = unique_name(prefix);
        let mut conn = connect_admin(&admin_url).await?;
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut conn)
            .await
            .with_context(|| format!("CREATE DATABASE {name}"))?;
        conn.close().await.ok();
        if keep_resources() {
            eprintln!("testkit: TESTKIT_KEEP is set, keeping PostgreSQL database {name}");
        }
        Ok(Self {
            url: with_database(&admin_url, &name),
            name,
            admin_url,
            dropped: false,
        })
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A connection URL for the database: the admin URL with the database replaced.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The admin URL the database was created through.
    pub fn admin_url(&self) -> &str {
        &self.admin_url
    }

    /// A small pool (up to 5 connections) on the database.
    pub async fn pool(&self) -> anyhow::Result<PgPool> {
        PgPoolOptions::new()
            .max_connections(5)
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect(&self.url)
            .await
            .with_context(|| format!("connecting a pool to test database {}", self.name))
    }

    /// One connection to the database.
    pub async fn connect(&self) -> anyhow::Result<PgConnection> {
        tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect(&self.url))
            .await
            .map_err(|_| anyhow::anyhow!("timed out"))
            .and_then(|r| r.map_err(anyhow::Error::from))
            .with_context(|| format!("connecting to test database {}", self.name))
    }

    /// Drops the database now and reports failure, instead of warning from `Drop`.
    pub async fn cleanup(mut self) -> anyhow::Result<()> {
        self.dropped = true;
        if keep_resources() {
            return Ok(());
        }
        drop_database(&self.admin_url, &self.name).await
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        if self.dropped || keep_resources() {
            return;
        }
        self.dropped = true;
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        cleanup::run_blocking(
            &format!("PostgreSQL database {}", self.name),
            move || async move { drop_database(&admin_url, &name).await },
        );
    }
}

async fn connect_admin(admin_url: &str) -> anyhow::Result<PgConnection> {
    let shown = redact(admin_url);
    match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect(admin_url)).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(anyhow::Error::from(e).context(format!(
            "connecting to PostgreSQL at {shown} (TEST_DATABASE_URL); is it up? run deploy/services.sh"
        ))),
        Err(_) => anyhow::bail!(
            "connecting to PostgreSQL at {shown} (TEST_DATABASE_URL) timed out; is it up? run deploy/services.sh"
        ),
    }
}

async fn drop_database(admin_url: &str, name: &str) -> anyhow::Result<()> {
    let mut conn = connect_admin(admin_url).await?;
    sqlx::raw_sql(AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
    )))
    .execute(&mut conn)
    .await
    .with_context(|| format!("DROP DATABASE {name}"))?;
    conn.close().await.ok();
    Ok(())
}

/// `url` with its path (the database) replaced by `db`, keeping any query string.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    let mut out = format!("{}/{db}", &base[..path_start]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// `url` with the password, if any, replaced by `***`, for error messages.
pub(crate) fn redact(url: &str) -> String {
    let Some(start) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let rest = &url[start..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else {
        return url.to_owned();
    };
    match rest[..at].find(':') {
        Some(colon) => format!("{}{}:***{}", &url[..start], &rest[..colon], &rest[at..]),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_is_replaced_in_urls() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h:1/db?sslmode=disable", "x"),
            "postgres://u:p@h:1/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h:1", "x"), "postgres://h:1/x");
        assert_eq!(
            with_database("postgres://h?sslmode=disable", "x"),
            "postgres://h/x?sslmode=disable"
        );
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://u:secret@h:1/db"),
            "postgres://u:***@h:1/db"
        );
        assert_eq!(redact("postgres://u@h:1/db"), "postgres://u@h:1/db");
        assert_eq!(redact("postgres://h/db"), "postgres://h/db");
    }
}
