//! Checking that the services the integration tests need are up.

use std::sync::OnceLock;
use std::time::Duration;

use async_nats::jetstream::{self, ErrorCode, context::GetStreamErrorKind};
use sqlx::Connection as _;

use crate::{admin_database_url, clickhouse_url, nats_url, pg::redact};

const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

static ALL_UP: OnceLock<()> = OnceLock::new();

/// Checks that PostgreSQL, NATS (with JetStream) and ClickHouse answer at the addresses
/// the tests use, all three at once; otherwise fails with one message naming each
/// service that is down and telling to run `deploy/services.sh`. After one success in a
/// process it returns at once.
pub async fn require_services() -> anyhow::Result<()> {
    if ALL_UP.get().is_some() {
        return Ok(());
    }
    let (pg, nats, ch) = tokio::join!(check_postgres(), check_nats(), check_clickhouse());
    let down: Vec<String> = [pg, nats, ch].into_iter().filter_map(Result::err).collect();
    if down.is_empty() {
        let _ = ALL_UP.set(());
        return Ok(());
    }
    anyhow::bail!(
        "the integration tests need PostgreSQL, NATS with JetStream and ClickHouse on loopback, \
         and some are not reachable:\n  - {}\nStart them with `deploy/services.sh` from the \
         repository root (it installs what is missing and reuses what is running), or point \
         TEST_DATABASE_URL / TEST_NATS_URL / TEST_CLICKHOUSE_URL at running ones.",
        down.join("\n  - ")
    )
}

/// An error and its sources, `a: b: c`, for one-line messages.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

async fn within<T>(what: &str, fut: impl Future<Output = Result<T, String>>) -> Result<T, String> {
    match tokio::time::timeout(CHECK_TIMEOUT, fut).await {
        Ok(result) => result,
        Err(_) => Err(format!("{what}: no answer within {CHECK_TIMEOUT:?}")),
    }
}

async fn check_postgres() -> Result<(), String> {
    let url = admin_database_url();
    let what = format!("PostgreSQL at {} (TEST_DATABASE_URL)", redact(&url));
    within(&what, async {
        let conn = sqlx::PgConnection::connect(&url)
            .await
            .map_err(|e| format!("{what}: {}", chain(&e)))?;
        conn.close().await.ok();
        Ok(())
    })
    .await
}

async fn check_nats() -> Result<(), String> {
    let url = nats_url();
    let what = format!("NATS at {url} (TEST_NATS_URL)");
    within(&what, async {
        let client = crate::nats::connect(&url)
            .await
            .map_err(|e| format!("{what}: {}", e.root_cause()))?;
        // Any JetStream API answer proves JetStream is on; a stream that cannot exist
        // gives "stream not found" without creating anything.
        let probe = jetstream::new(client.clone())
            .get_stream("TESTKIT_PROBE_NO_SUCH_STREAM")
            .await;
        client.drain().await.ok();
        match probe {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.kind(), GetStreamErrorKind::JetStream(ref j) if j.error_code() == ErrorCode::STREAM_NOT_FOUND) => Ok(()),
            Err(e) => Err(format!(
                "{what}: JetStream does not answer (is the server started with -js?): {}",
                chain(&e)
            )),
        }
    })
    .await
}

async fn check_clickhouse() -> Result<(), String> {
    let url = clickhouse_url();
    let what = format!("ClickHouse at {url} (TEST_CLICKHOUSE_URL)");
    within(&what, async {
        let http = reqwest::Client::builder()
            .timeout(CHECK_TIMEOUT)
            .build()
            .map_err(|e| format!("{what}: {e}"))?;
        let response = http
            .get(format!("{url}/ping"))
            .send()
            .await
            .map_err(|e| format!("{what}: {}", chain(&e)))?;
        let body = response.text().await.map_err(|e| format!("{what}: {e}"))?;
        if body.trim() == "Ok." {
            Ok(())
        } else {
            Err(format!(
                "{what}: /ping answered {:?}, not \"Ok.\"",
                body.trim()
            ))
        }
    })
    .await
}
