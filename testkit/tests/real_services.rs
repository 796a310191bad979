//! testkit against the real services (`deploy/services.sh` brings them up): each guard
//! creates its resource, the resource works, and after the guard is dropped it is gone.

use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream::{self, stream};
use sqlx::Connection as _;
use testkit::{ClickHouseDatabase, JetStreamScope, PgDatabase};

async fn pg_database_exists(admin_url: &str, name: &str) -> anyhow::Result<bool> {
    let mut conn = sqlx::PgConnection::connect(admin_url).await?;
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_database WHERE datname = $1")
        .bind(name)
        .fetch_one(&mut conn)
        .await?;
    conn.close().await?;
    Ok(n == 1)
}

async fn clickhouse_database_exists(name: &str) -> anyhow::Result<bool> {
    let body = reqwest::Client::new()
        .post(format!("{}/", testkit::clickhouse_url()))
        .body(format!(
            "SELECT count() FROM system.databases WHERE name = '{name}'"
        ))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    Ok(body.trim() == "1")
}

async fn stream_exists(name: &str) -> anyhow::Result<bool> {
    let client = async_nats::connect(testkit::nats_url()).await?;
    let exists = match jetstream::new(client.clone()).get_stream(name).await {
        Ok(_) => true,
        Err(e) if e.to_string().contains("stream not found") => false,
        Err(e) => return Err(e.into()),
    };
    client.drain().await.ok();
    Ok(exists)
}

#[tokio::test]
async fn services_are_up() -> anyhow::Result<()> {
    testkit::require_services().await
}

#[tokio::test]
async fn pg_database_is_usable_and_dropped() -> anyhow::Result<()> {
    testkit::require_services().await?;
    let db = PgDatabase::create_with_prefix("testkit_pg").await?;
    let (name, admin_url) = (db.name().to_owned(), db.admin_url().to_owned());
    assert!(db.url().ends_with(&format!("/{name}")), "{}", db.url());
    assert!(pg_database_exists(&admin_url, &name).await?);

    let pool = db.pool().await?;
    sqlx::raw_sql("CREATE TABLE t (x int); INSERT INTO t VALUES (1), (2);")
        .execute(&pool)
        .await?;
    let current: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&pool)
        .await?;
    assert_eq!(current, name);
    let sum: i64 = sqlx::query_scalar("SELECT sum(x) FROM t")
        .fetch_one(&pool)
        .await?;
    assert_eq!(sum, 3);

    // The pool is still open: WITH (FORCE) ends its connections.
    drop(db);
    assert!(!pg_database_exists(&admin_url, &name).await?);
    drop(pool);
    Ok(())
}

#[tokio::test]
async fn pg_databases_are_distinct_and_cleanup_reports() -> anyhow::Result<()> {
    let a = PgDatabase::create().await?;
    let b = PgDatabase::create().await?;
    assert_ne!(a.name(), b.name());
    let (name, admin_url) = (a.name().to_owned(), a.admin_url().to_owned());
    a.cleanup().await?;
    assert!(!pg_database_exists(&admin_url, &name).await?);
    assert!(pg_database_exists(&admin_url, b.name()).await?);
    Ok(())
}

#[tokio::test]
async fn clickhouse_database_is_usable_and_dropped() -> anyhow::Result<()> {
    testkit::require_services().await?;
    let db = ClickHouseDatabase::create_with_prefix("testkit_ch").await?;
    let name = db.name().to_owned();
    assert!(clickhouse_database_exists(&name).await?);

    db.query("CREATE TABLE t (x UInt64) ENGINE = MergeTree ORDER BY x")
        .await?;
    db.query("INSERT INTO t VALUES (1), (2), (3)").await?;
    assert_eq!(db.query("SELECT sum(x) FROM t").await?.trim(), "6");
    assert_eq!(db.query("SELECT currentDatabase()").await?.trim(), name);

    let err = db.query("SELECT * FROM no_such_table").await.unwrap_err();
    assert!(err.to_string().contains("no_such_table"), "{err:#}");

    drop(db);
    assert!(!clickhouse_database_exists(&name).await?);
    Ok(())
}

#[tokio::test]
async fn jetstream_streams_are_usable_and_deleted() -> anyhow::Result<()> {
    testkit::require_services().await?;
    let scope = JetStreamScope::connect_with_prefix("testkit_js").await?;
    let clicks = scope.stream_name("CLICKS");
    assert_eq!(clicks, scope.stream_name("CLICKS"), "stable per base");
    assert!(clicks.starts_with("CLICKS_testkit_js_"), "{clicks}");
    let subject = scope.subject("clicks.>");
    assert!(subject.starts_with(scope.token()) && subject.ends_with(".clicks.>"));

    let mut stream = scope
        .create_stream(stream::Config {
            name: clicks.clone(),
            subjects: vec![subject],
            ..Default::default()
        })
        .await?;
    for i in 0..3 {
        scope
            .jetstream()
            .publish(scope.subject(&format!("clicks.{i}")), "x".into())
            .await?
            .await?;
    }
    assert_eq!(stream.info().await?.state.messages, 3);

    // A stream created by "the code under test" under a name the scope handed out.
    let links = scope.stream_name("LINKS");
    jetstream::new(async_nats::connect(scope.url()).await?)
        .create_stream(stream::Config {
            name: links.clone(),
            subjects: vec![scope.subject("links.>")],
            ..Default::default()
        })
        .await?;
    // Named but never created: dropping the scope must not mind.
    let never = scope.stream_name("NEVER");
    assert_eq!(scope.streams(), {
        let mut v = vec![clicks.clone(), links.clone(), never.clone()];
        v.sort();
        v
    });

    assert!(stream_exists(&clicks).await? && stream_exists(&links).await?);
    drop(scope);
    for name in [&clicks, &links, &never] {
        assert!(!stream_exists(name).await?, "{name} still exists");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guards_drop_inside_a_multi_thread_runtime() -> anyhow::Result<()> {
    let pg = PgDatabase::create().await?;
    let ch = ClickHouseDatabase::create().await?;
    let js = JetStreamScope::connect().await?;
    let stream = js.stream_name("S");
    js.create_stream(stream::Config {
        name: stream.clone(),
        subjects: vec![js.subject("s")],
        ..Default::default()
    })
    .await?;
    let (pg_name, admin_url, ch_name) = (
        pg.name().to_owned(),
        pg.admin_url().to_owned(),
        ch.name().to_owned(),
    );
    drop((pg, ch, js));
    assert!(!pg_database_exists(&admin_url, &pg_name).await?);
    assert!(!clickhouse_database_exists(&ch_name).await?);
    assert!(!stream_exists(&stream).await?);
    Ok(())
}

/// Guards outlive the runtime that created them and are dropped with no runtime at all.
#[test]
fn guards_drop_outside_any_runtime() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (pg, ch, js, stream) = rt.block_on(async {
        let pg = PgDatabase::create().await?;
        let ch = ClickHouseDatabase::create().await?;
        let js = JetStreamScope::connect().await?;
        let stream = js.stream_name("S");
        js.create_stream(stream::Config {
            name: stream.clone(),
            subjects: vec![js.subject("s")],
            ..Default::default()
        })
        .await?;
        anyhow::Ok((pg, ch, js, stream))
    })?;
    drop(rt);
    let (pg_name, admin_url, ch_name) = (
        pg.name().to_owned(),
        pg.admin_url().to_owned(),
        ch.name().to_owned(),
    );
    drop((pg, ch, js));

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        assert!(!pg_database_exists(&admin_url, &pg_name).await?);
        assert!(!clickhouse_database_exists(&ch_name).await?);
        assert!(!stream_exists(&stream).await?);
        anyhow::Ok(())
    })
}

#[tokio::test]
async fn wait_for_sees_a_row_arrive() -> anyhow::Result<()> {
    let db = ClickHouseDatabase::create().await?;
    db.query("CREATE TABLE t (x UInt64) ENGINE = Memory")
        .await?;
    let writer = {
        let url = db.url().to_owned();
        let name = db.name().to_owned();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            reqwest::Client::new()
                .post(format!("{url}/?database={name}"))
                .body("INSERT INTO t VALUES (7)")
                .send()
                .await
                .and_then(|r| r.error_for_status())
                .map(|_| ())
        })
    };
    let sum = testkit::wait_for_ok(
        Duration::from_secs(10),
        Duration::from_millis(10),
        || async {
            let sum = db.query("SELECT sum(x) FROM t").await?;
            match sum.trim() {
                "7" => Ok(7),
                other => Err(anyhow::anyhow!("sum is {other}, want 7")),
            }
        },
    )
    .await?;
    assert_eq!(sum, 7);
    writer.await?.context("insert")?;
    Ok(())
}
