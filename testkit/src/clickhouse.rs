//! A fresh ClickHouse database per test, over the HTTP interface.

use std::time::Duration;

use anyhow::Context as _;

use crate::{cleanup, env_or, keep_resources, unique_name};

const DEFAULT_URL: &str = "http://127.0.0.1:8123";
// A guard against a hung server, not a performance bound: a test's bulk
// `INSERT ... SELECT` of a million rows through every rollup view took 31 s
// in CI with the whole suite running beside it on two cores.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(180);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// The ClickHouse HTTP interface tests use: `TEST_CLICKHOUSE_URL`, or
/// `http://127.0.0.1:8123`, without a trailing slash.
pub fn clickhouse_url() -> String {
    env_or("TEST_CLICKHOUSE_URL", DEFAULT_URL)
        .trim_end_matches('/')
        .to_owned()
}

/// A ClickHouse database that exists for as long as this guard does.
///
/// The server is Debian's ClickHouse 18.16 (see docs/ARCHITECTURE.md for what it lacks).
/// Point the `clickhouse` crate at it with
/// `Client::default().with_url(db.url()).with_database(db.name()).with_validation(false)`.
#[derive(Debug)]
pub struct ClickHouseDatabase {
    name: String,
    url: String,
    http: reqwest::Client,
    dropped: bool,
}

impl ClickHouseDatabase {
    /// Creates a database named `tk_...`.
    pub async fn create() -> anyhow::Result<Self> {
        Self::create_with_prefix("tk").await
    }

    /// Creates a database named [`unique_name(prefix)`](unique_name).
    pub async fn create_with_prefix(prefix: &str) -> anyhow::Result<Self> {
        let url = clickhouse_url();
        let http = http_client()?;
        let name = unique_name(prefix);
        execute(&http, &url, None, &format!("CREATE DATABASE {name}"))
            .await
            .with_context(|| format!("creating ClickHouse database {name}"))?;
        if keep_resources() {
            eprintln!("testkit: TESTKIT_KEEP is set, keeping ClickHouse database {name}");
        }
        Ok(Self {
            name,
            url,
            http,
            dropped: false,
        })
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The server's HTTP URL (no database in it: pair it with [`name`](Self::name)).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Runs one statement with this database as the default and returns the response
    /// body (for a `SELECT`, rows in `TabSeparated` unless the SQL says `FORMAT ...`).
    /// A server-side error is returned as an error carrying ClickHouse's message.
    pub async fn query(&self, sql: &str) -> anyhow::Result<String> {
        execute(&self.http, &self.url, Some(&self.name), sql).await
    }

    /// Drops the database now and reports failure, instead of warning from `Drop`.
    pub async fn cleanup(mut self) -> anyhow::Result<()> {
        self.dropped = true;
        if keep_resources() {
            return Ok(());
        }
        drop_database(&self.http, &self.url, &self.name).await
    }
}

impl Drop for ClickHouseDatabase {
    fn drop(&mut self) {
        if self.dropped || keep_resources() {
            return;
        }
        self.dropped = true;
        let url = self.url.clone();
        let name = self.name.clone();
        cleanup::run_blocking(&format!("ClickHouse database {}", self.name), move || {
            async move {
                // A new client: the test's one belongs to the test's runtime.
                let http = http_client()?;
                drop_database(&http, &url, &name).await
            }
        });
    }
}

fn http_client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT)
        .build()
        .context("building an HTTP client")
}

async fn drop_database(http: &reqwest::Client, url: &str, name: &str) -> anyhow::Result<()> {
    execute(http, url, None, &format!("DROP DATABASE IF EXISTS {name}"))
        .await
        .with_context(|| format!("dropping ClickHouse database {name}"))?;
    Ok(())
}

/// POSTs `sql` to the HTTP interface, optionally with a default database.
pub(crate) async fn execute(
    http: &reqwest::Client,
    url: &str,
    database: Option<&str>,
    sql: &str,
) -> anyhow::Result<String> {
    // Database names come from `unique_name`: nothing to escape.
    let endpoint = match database {
        Some(db) => format!("{url}/?database={db}"),
        None => format!("{url}/"),
    };
    let response = http
        .post(&endpoint)
        .body(sql.to_owned())
        .send()
        .await
        .with_context(|| {
            format!(
                "sending a query to ClickHouse at {url} (TEST_CLICKHOUSE_URL); is it up? run deploy/services.sh"
            )
        })?;
    let status = response.status();
    let body = response
        .text()
        .await
        .context("reading ClickHouse's response")?;
    if !status.is_success() {
        anyhow::bail!("ClickHouse answered {status}: {}", body.trim_end());
    }
    Ok(body)
}
