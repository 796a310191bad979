//! Snapshot generations: build from PostgreSQL at a known outbox sequence,
//! keep a few on disk, push them to engines, and reconcile engines that lag.
//!
//! **Consistency.** The builder reads `outbox_counter` and every live link in
//! one `REPEATABLE READ` transaction. Since sequences are assigned in commit
//! order (the counter row lock is held to commit), "counter = S" in that
//! transaction's view means exactly the changes 1..=S are visible and nothing
//! after: the snapshot is the state at S, and an engine that loads it and then
//! applies deltas with seq > S from the stream converges to PostgreSQL.
//!
//! **Delivery: push over each engine's admin port** (`PUT /snapshot`, body =
//! the file), not a NATS object store: NATS 2.9 with async-nats 0.51 cannot
//! use KV/object stores (see DESIGN.md), and a push needs nothing but HTTP.
//! A reconcile loop asks each engine `GET /readyz` (an
//! [`EngineReadiness`] record; the sequence that counts is its lowest core's,
//! [`EngineReadiness::served_sequence`]) every few seconds and pushes the
//! latest generation to an engine that has none or an older one; that is how
//! a new or restarted engine gets the latest snapshot on start.

use crate::metrics::Metrics;
use anyhow::Context as _;
use futures::TryStreamExt;
use serde::Serialize;
use snapshots::readiness::EngineReadiness;
use sqlx::PgPool;
use std::path::PathBuf;
use std::sync::Arc;
use time::OffsetDateTime;

/// One generation on disk.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Generation {
    pub id: i64,
    pub seq: i64,
    pub path: String,
    pub links: i64,
    pub bytes: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// The result of pushing to one engine.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PushResult {
    pub engine: String,
    pub ok: bool,
    pub error: Option<String>,
}

#[derive(Debug)]
pub struct SnapshotService {
    db: PgPool,
    dir: PathBuf,
    keep: usize,
    engines: Vec<String>,
    token: Option<String>,
    http: reqwest::Client,
    metrics: Arc<Metrics>,
    /// One build at a time; pushes of the same generation may overlap.
    build_lock: tokio::sync::Mutex<()>,
    /// Engines that refused the latest generation, and when to try again.
    backoff: crate::snapshot_backoff::PushBackoff,
    /// The links signing key: generations are signed with it, so engines
    /// that trust it open them by the signature instead of checking every
    /// entry (`snapshots::signed`).
    signer: Option<Arc<snapshots::signing::DeltaSigner>>,
}

impl SnapshotService {
    pub fn new(
        db: PgPool,
        dir: PathBuf,
        keep: usize,
        engines: Vec<String>,
        token: Option<String>,
        metrics: Arc<Metrics>,
    ) -> Self {
        SnapshotService {
            db,
            dir,
            keep,
            engines,
            token,
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                .build()
                .expect("an HTTP client builds"),
            metrics,
            build_lock: tokio::sync::Mutex::new(()),
            backoff: Default::default(),
            signer: None,
        }
    }

    /// Signs the generations it builds with `signer` (none: unsigned).
    pub fn signed_by(mut self, signer: Option<Arc<snapshots::signing::DeltaSigner>>) -> Self {
        self.signer = signer;
        self
    }

    pub fn engines(&self) -> &[String] {
        &self.engines
    }

    /// The current outbox sequence (the newest committed change).
    pub async fn current_seq(&self) -> anyhow::Result<i64> {
        Ok(sqlx::query_scalar("SELECT seq FROM outbox_counter")
            .fetch_one(&self.db)
            .await?)
    }

    /// Builds a generation now.
    pub async fn build(&self) -> anyhow::Result<Generation> {
        let _guard = self.build_lock.lock().await;
        let mut tx = self.db.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        let seq: i64 = sqlx::query_scalar("SELECT seq FROM outbox_counter")
            .fetch_one(&mut *tx)
            .await?;
        let mut builder = snapshots::SnapshotBuilder::new(seq as u64);
        if let Some(signer) = &self.signer {
            builder = builder.signed_by(signer.clone());
        }
        {
            // Every live domain, pending ones too (engines serve only the
            // verified; their links are in the file, served once verified).
            let sql = format!(
                "SELECT {} FROM domains WHERE deleted_at IS NULL",
                crate::domains::model::DOMAIN_COLUMNS
            );
            let domains: Vec<crate::domains::model::DomainRow> =
                sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .fetch_all(&mut *tx)
                    .await?;
            for row in domains {
                builder
                    .push_domain(row.to_record())
                    .with_context(|| format!("domain {:?} cannot enter a snapshot", row.name))?;
            }
            let answers: Vec<(String, String, String)> =
                sqlx::query_as("SELECT host, path, body FROM well_known_answers")
                    .fetch_all(&mut *tx)
                    .await?;
            for (host, path, body) in answers {
                builder
                    .push_well_known(snapshots::WellKnown { host, path, body })
                    .context("a well-known answer cannot enter a snapshot")?;
            }
        }
        {
            let sql = format!(
                "SELECT {} FROM links WHERE deleted_at IS NULL
                    AND domain_id IN (SELECT id FROM domains WHERE deleted_at IS NULL)",
                crate::links::model::LINK_COLUMNS
            );
            let mut rows =
                sqlx::query_as::<_, crate::links::model::LinkRow>(sqlx::AssertSqlSafe(sql))
                    .fetch(&mut *tx);
            while let Some(row) = rows.try_next().await? {
                builder
                    .push(row.to_snapshot_link())
                    .with_context(|| format!("link {:?} cannot enter a snapshot", row.code))?;
            }
        }
        tx.commit().await?;
        let links = builder.len() as i64;

        tokio::fs::create_dir_all(&self.dir)
            .await
            .with_context(|| format!("creating {}", self.dir.display()))?;
        let now = OffsetDateTime::now_utc();
        let path = self.dir.join(format!(
            "links-{seq:020}-{}.snap",
            now.unix_timestamp_nanos() / 1_000_000
        ));
        let write_path = path.clone();
        let summary = tokio::task::spawn_blocking(move || builder.write_to(&write_path))
            .await
            .context("snapshot writer panicked")??;
        let generation: Generation = sqlx::query_as(
            "INSERT INTO snapshot_generations (seq, path, links, bytes) VALUES ($1, $2, $3, $4)
             RETURNING id, seq, path, links, bytes, created_at",
        )
        .bind(seq)
        .bind(path.to_string_lossy().as_ref())
        .bind(links)
        .bind(summary.file_len as i64)
        .fetch_one(&self.db)
        .await?;
        self.metrics.snapshots_built.inc();
        self.metrics.latest_snapshot_seq.set(seq as u64);
        tracing::info!(seq, links, bytes = summary.file_len, path = %path.display(), "snapshot built");
        self.prune().await?;
        Ok(generation)
    }

    /// Drops generations beyond the newest `keep`, rows and files.
    async fn prune(&self) -> anyhow::Result<()> {
        let old: Vec<(i64, String)> =
            sqlx::query_as("SELECT id, path FROM snapshot_generations ORDER BY id DESC OFFSET $1")
                .bind(self.keep as i64)
                .fetch_all(&self.db)
                .await?;
        for (id, path) in old {
            match tokio::fs::remove_file(&path).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(%path, error = %e, "removing an old snapshot"),
            }
            sqlx::query("DELETE FROM snapshot_generations WHERE id = $1")
                .bind(id)
                .execute(&self.db)
                .await?;
        }
        Ok(())
    }

    pub async fn list(&self) -> anyhow::Result<Vec<Generation>> {
        Ok(sqlx::query_as(
            "SELECT id, seq, path, links, bytes, created_at FROM snapshot_generations ORDER BY id DESC",
        )
        .fetch_all(&self.db)
        .await?)
    }

    pub async fn latest(&self) -> anyhow::Result<Option<Generation>> {
        Ok(self.list().await?.into_iter().next())
    }

    /// `PUT http://ENGINE/snapshot` with the file, streamed from disk (so
    /// pushes to many engines at once hold no copy of it in memory).
    pub async fn push_to(&self, engine: &str, generation: &Generation) -> anyhow::Result<()> {
        let file = tokio::fs::File::open(&generation.path)
            .await
            .with_context(|| format!("reading {}", generation.path))?;
        let len = file.metadata().await?.len();
        let url = format!("http://{engine}/snapshot");
        let result = async {
            let mut put = self
                .http
                .put(&url)
                .header(reqwest::header::CONTENT_LENGTH, len)
                .body(reqwest::Body::from(file));
            if let Some(token) = &self.token {
                put = put.bearer_auth(token);
            }
            let resp = put.send().await?;
            let status = resp.status();
            if !status.is_success() {
                let text = resp.text().await.unwrap_or_default();
                anyhow::bail!("{url} answered {status}: {text}");
            }
            Ok(())
        }
        .await;
        match &result {
            Ok(()) => {
                self.metrics.snapshot_pushes.inc();
                tracing::info!(engine, seq = generation.seq, "snapshot pushed");
            }
            Err(e) => {
                self.metrics.snapshot_push_errors.inc();
                tracing::warn!(engine, error = format!("{e:#}"), "snapshot push failed");
            }
        }
        result
    }

    /// Pushes a generation to every engine.
    pub async fn push_all(&self, generation: &Generation) -> Vec<PushResult> {
        let pushes = self.engines.iter().map(|e| async move {
            let r = self.push_to(e, generation).await;
            PushResult {
                engine: e.clone(),
                ok: r.is_ok(),
                error: r.err().map(|e| format!("{e:#}")),
            }
        });
        futures::future::join_all(pushes).await
    }

    /// The snapshot sequence an engine reports, `None` when it has none, or an
    /// error when it cannot be asked.
    pub async fn engine_sequence(&self, engine: &str) -> anyhow::Result<Option<u64>> {
        let resp = self
            .http
            .get(format!("http://{engine}/readyz"))
            .timeout(std::time::Duration::from_secs(2))
            .send()
            .await?;
        // A 503 readyz still carries the record (an engine without a snapshot is not ready).
        let readiness: EngineReadiness = resp
            .json()
            .await
            .context("readyz is not an engine readiness record")?;
        Ok(readiness.served_sequence())
    }

    /// One reconcile round: push the latest generation to engines behind it,
    /// except those still waiting out a refusal of that generation.
    pub async fn reconcile_once(&self) -> anyhow::Result<()> {
        if self.engines.is_empty() {
            return Ok(());
        }
        // A generation another instance built (before a leadership
        // handover) may be on its disk, not ours: build our own then.
        let latest = match self.latest().await? {
            Some(g) if tokio::fs::try_exists(&g.path).await.unwrap_or(false) => g,
            _ => self.build().await?,
        };
        for engine in &self.engines {
            match self.engine_sequence(engine).await {
                Ok(Some(s)) if s >= latest.seq as u64 => {}
                Ok(_) => {
                    if !self.backoff.due(engine, latest.seq) {
                        continue;
                    }
                    let pushed = self.push_to(engine, &latest).await;
                    self.backoff.record(engine, latest.seq, pushed.is_ok());
                }
                Err(e) => tracing::debug!(engine, error = format!("{e:#}"), "engine not reachable"),
            }
        }
        Ok(())
    }

    /// Builds on a schedule when links changed since the latest generation,
    /// and pushes the result.
    pub async fn run_schedule(self: Arc<Self>, every: std::time::Duration) {
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        loop {
            tick.tick().await;
            let result: anyhow::Result<()> = async {
                // Housekeeping rides on the same timer: replays last 24 hours.
                sqlx::query(
                    "DELETE FROM idempotency_keys WHERE created_at < now() - interval '24 hours'",
                )
                .execute(&self.db)
                .await?;
                let latest = self.latest().await?.map_or(-1, |g| g.seq);
                if self.current_seq().await? != latest {
                    let g = self.build().await?;
                    self.push_all(&g).await;
                }
                Ok(())
            }
            .await;
            if let Err(e) = result {
                tracing::warn!(error = format!("{e:#}"), "scheduled snapshot failed");
            }
        }
    }

    pub async fn run_reconcile(self: Arc<Self>, every: std::time::Duration) {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            if let Err(e) = self.reconcile_once().await {
                tracing::warn!(error = format!("{e:#}"), "reconcile failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use snapshots::readiness::EngineReadiness;

    fn readiness(body: serde_json::Value) -> EngineReadiness {
        serde_json::from_value(body).unwrap()
    }

    #[test]
    fn engine_readyz_shapes() {
        let core = |seq: i64| {
            serde_json::json!({
                "snapshot_sequence": seq, "delta_applied_seq": 0, "delta_entries": 0
            })
        };
        let ready = readiness(serde_json::json!({
            "ready": true, "nats": true, "nats_connected": true, "delta_seq": 9, "delta_lag": 0,
            "snapshot": {
                "sequence": 9, "links": 1, "built_at_ms": 1, "loaded_at_ms": 2, "source": "push"
            },
            "cores": [core(9), core(8)],
        }));
        assert_eq!(ready.served_sequence(), Some(8));
        let unready = readiness(serde_json::json!({
            "ready": false, "nats": true, "nats_connected": false, "delta_seq": 0, "delta_lag": 0,
            "snapshot": null, "cores": [core(-1)],
        }));
        assert_eq!(unready.served_sequence(), None);
    }
}
