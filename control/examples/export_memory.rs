//! Memory of a large export: inserts N clicks (default 10 million) of one
//! organization into a fresh ClickHouse database with the sidecar's
//! schema, exports them as CSV with the service's own query and writer
//! (`control::exports::query::stream`) into a temporary file, and prints the
//! rows, bytes, seconds and the process's peak resident memory (`VmHWM`)
//! before and after the export. Flat memory: the peak does not grow with N.
//!
//! ```sh
//! cargo run --release -p control --example export_memory -- 10000000
//! cargo run --release -p control --example export_memory -- 1000000 ndjson
//! ```

use control::exports::file::{ExportWriter, Progress};
use control::exports::query;
use control::exports::request::CreateExport;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// 2026-01-01T00:00:00Z.
const D0: u64 = 1_767_225_600;

fn peak_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().map_or(Ok(10_000_000), |s| s.parse())?;
    let format = args.next().unwrap_or_else(|| "csv".into());
    let ch = testkit::ClickHouseDatabase::create_with_prefix("expmem").await?;
    let db = ch.name().to_owned();
    for sql in analytics::schema::statements(&db)
        .into_iter()
        .chain(analytics::schema::views(&db))
    {
        ch.query(&sql).await?;
    }
    // Ten clicks a second from D0, on 1000 links, realistic-looking values.
    let started = std::time::Instant::now();
    // A million at a time, through a client without testkit's 30 s timeout.
    let client = control::state::clickhouse_client(ch.url(), &db);
    for start in (0..n).step_by(1_000_000) {
        let count = (n - start).min(1_000_000);
        client
            .query(&format!(
        "INSERT INTO clicks (event_id, ts, ts_ms, code, domain, status, country, city, device,
                             browser, os, referrer_host, language, is_bot, visitor_hash, org_id)
         SELECT toFixedString(reinterpretAsString(sipHash64(number)), 16),
                toDateTime({D0} + intDiv(number, 10)), ({D0} + intDiv(number, 10)) * 1000 + number % 10 * 100,
                concat('code', toString(number % 1000)), 'go.brand.example', 301,
                ['GB', 'US', 'FR', 'DE'][number % 4 + 1], ['London', 'Boston', 'Paris', 'Berlin'][number % 4 + 1],
                ['desktop', 'mobile', 'tablet'][number % 3 + 1], 'Firefox', 'Linux',
                'news.example', 'en', 0, number % 5000, 7
           FROM system.numbers LIMIT {count} OFFSET {start}"
            ))
            .execute()
            .await?;
        println!("  {} inserted", start + count);
    }
    println!(
        "inserted {n} clicks in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let days = n / 10 / 86_400 + 1;
    let to = time::OffsetDateTime::from_unix_timestamp((D0 + days * 86_400) as i64)?;
    let body = serde_json::json!({
        "kind": "clicks",
        "from": "2026-01-01T00:00:00Z",
        "to": to.format(&time::format_description::well_known::Rfc3339)?,
        "format": format,
    });
    let spec = serde_json::from_value::<CreateExport>(body)?
        .check(10_000)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let scope = query::Scope::new(7, &spec, "")?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("export");
    let progress = Arc::new(Progress::default());
    let before = peak_kib();
    let started = std::time::Instant::now();
    let mut out = ExportWriter::new(
        tokio::fs::File::create(&path).await?,
        spec.format,
        query::columns(&spec),
        progress.clone(),
    )
    .await?;
    query::stream(&client, &spec, &scope, &mut out).await?;
    out.finish().await?;
    let secs = started.elapsed().as_secs_f64();
    let rows = progress.rows.load(Ordering::Relaxed);
    let bytes = std::fs::metadata(&path)?.len();
    println!(
        "exported {rows} rows, {bytes} bytes ({format}) in {secs:.1} s ({:.0} rows/s); \
         peak RSS before the export {before} KiB, after {} KiB",
        rows as f64 / secs,
        peak_kib()
    );
    assert_eq!(rows, n);
    ch.cleanup().await?;
    Ok(())
}
