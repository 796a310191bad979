//! ClickHouse bytes per click on disk: the sidecar's schema in a scratch
//! database, `ROWS` clicks (default 10,000,000) inserted with one
//! `INSERT … SELECT FROM numbers(ROWS)` shaped like real traffic (a Zipf-ish
//! spread over 100,000 codes, 30 days, about 200 countries and 2,000 cities,
//! user agents' device, browser and OS families, 5,000 referrers, 8% bots,
//! random event, batch and visitor ids, the ~8% of clicks without a
//! referrer), the rollups fed by the sidecar's own views, merged
//! (`OPTIMIZE … FINAL`), then `system.parts` per table: compressed and
//! uncompressed bytes per raw click. Feeds docs/CAPACITY.md.
//!
//! `cargo run --release -p analytics --example storage`

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let rows = env_or("ROWS", 10_000_000);
    let ch = testkit::ClickHouseDatabase::create_with_prefix("analytics_storage").await?;
    let db = ch.name().to_owned();
    for sql in analytics::schema::statements(&db)
        .into_iter()
        .chain(analytics::schema::views(&db))
    {
        ch.query(&sql).await?;
    }
    // Each column from its own hash of the row number, so columns are
    // independent; codes skewed by squaring a uniform draw (a few hot links,
    // a long tail), as real link traffic is.
    let start = std::time::Instant::now();
    // In chunks of 250,000: one statement per chunk stays inside the
    // client's request timeout.
    let chunk = 250_000u64;
    for offset in (0..rows).step_by(chunk as usize) {
        let count = chunk.min(rows - offset);
        insert(&ch, &db, rows, offset, count).await?;
    }
    let inserted = start.elapsed();
    let tables: Vec<String> = ch
        .query(&format!(
            "SELECT name FROM system.tables WHERE database = '{db}' AND engine NOT IN ('MaterializedView') ORDER BY name"
        ))
        .await?
        .lines()
        .map(str::to_owned)
        .collect();
    for table in &tables {
        ch.query(&format!("OPTIMIZE TABLE {db}.{table} FINAL"))
            .await?;
    }
    println!(
        "{rows} clicks inserted in {:.1?} (with the rollup views); per raw click, after OPTIMIZE FINAL:",
        inserted
    );
    println!(
        "{:<26} {:>12} {:>14} {:>16}",
        "table", "rows", "bytes/click", "uncompressed/click"
    );
    let mut total = 0.0;
    for table in &tables {
        let line = ch
            .query(&format!(
                "SELECT sum(rows), sum(data_compressed_bytes), sum(data_uncompressed_bytes)
                   FROM system.parts WHERE database = '{db}' AND table = '{table}' AND active
                   FORMAT TSV"
            ))
            .await?;
        let v: Vec<f64> = line
            .split_whitespace()
            .map(|x| x.parse().unwrap_or(0.0))
            .collect();
        let (n, compressed, raw) = (v[0], v[1], v[2]);
        if n == 0.0 {
            continue;
        }
        total += compressed;
        println!(
            "{table:<26} {n:>12} {:>14.1} {:>16.1}",
            compressed / rows as f64,
            raw / rows as f64
        );
    }
    println!(
        "{:<26} {:>12} {:>14.1}",
        "all tables",
        "",
        total / rows as f64
    );
    Ok(())
}

/// Inserts clicks `offset..offset + count` of `rows` (the row number sets
/// the time, spread over 30 days, and every column's hash).
async fn insert(
    ch: &testkit::ClickHouseDatabase,
    db: &str,
    rows: u64,
    offset: u64,
    count: u64,
) -> anyhow::Result<()> {
    ch.query(&format!(
        "INSERT INTO {db}.clicks (event_id, ts, ts_ms, batch_id, node, code, status, host, domain,
            ip_prefix, country, city, device, browser, os, referrer_host, accept_language, language,
            is_bot, is_preview, visitor_hash, org_id, rule)
         SELECT
            sipHash128(concat('e', toString(number))) AS event_id16,
            toDateTime(1764547200 + intDiv(number * 2592000, {rows})) AS t,
            toUInt64(t) * 1000 + number % 1000,
            sipHash128(concat('b', toString(intDiv(number, 500)))),
            concat('edge', toString(sipHash64(concat('n', toString(intDiv(number, 500)))) % 8)),
            concat('c', toString(toUInt64(pow((sipHash64(concat('c', toString(number))) % 1000000) / 1000000, 2) * 100000))),
            301,
            'sho.rt',
            'sho.rt',
            concat(toString(sipHash64(concat('i', toString(number))) % 223), '.', toString(sipHash64(concat('j', toString(number))) % 256), '.', toString(sipHash64(concat('k', toString(number))) % 256), '.0/24'),
            concat(substring('ABCDEFGHIJKLMNOP', 1 + sipHash64(concat('x', toString(number))) % 14, 1), substring('ABCDEFGHIJKLMNOP', 1 + sipHash64(concat('y', toString(number))) % 14, 1)),
            concat('City', toString(sipHash64(concat('z', toString(number))) % 2000)),
            ['desktop', 'mobile', 'mobile', 'tablet', 'bot'][1 + sipHash64(concat('d', toString(number))) % 5],
            ['Chrome', 'Safari', 'Firefox', 'Edge', 'Samsung Internet', 'Instagram'][1 + sipHash64(concat('w', toString(number))) % 6],
            ['Windows', 'iOS', 'Android', 'Mac OS X', 'Linux'][1 + sipHash64(concat('o', toString(number))) % 5],
            if(sipHash64(concat('r', toString(number))) % 12 = 0, '', concat('ref', toString(sipHash64(concat('r', toString(number))) % 5000), '.example')),
            ['en-US,en;q=0.9', 'de-DE,de;q=0.9,en;q=0.8', 'fr-FR,fr;q=0.9', 'es-ES,es;q=0.9', 'ja-JP'][1 + sipHash64(concat('l', toString(number))) % 5],
            ['en', 'de', 'fr', 'es', 'ja'][1 + sipHash64(concat('l', toString(number))) % 5],
            sipHash64(concat('d', toString(number))) % 5 = 4,
            sipHash64(concat('p', toString(number))) % 100 = 0,
            sipHash64(concat('v', toString(number))) % 3000000,
            7,
            0
         FROM (SELECT number + {offset} AS number FROM numbers({count}))"
    ))
    .await?;
    Ok(())
}
