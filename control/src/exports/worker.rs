//! The export workers of one control instance (`export_workers`, default
//! 1), and its housekeeping.
//!
//! A worker claims the oldest queued job of any organization, writes its
//! file as `<export_dir>/<id>.<ext>.part`, syncs it, renames it to
//! `<id>.<ext>` and marks the job done; a failure marks it failed with the
//! reason and deletes the part. While it runs, a heartbeat records the rows
//! and bytes written every [`HEARTBEAT`] and checks that the job is still
//! this run's. Housekeeping, every [`HOUSEKEEPING`]: jobs whose worker has
//! been silent for [`STALE`] are taken back (run again from the start by
//! any instance, failed after three starts: `store::take_back`), done jobs
//! past `export_ttl_secs` expire, and the sweep deletes every file in the
//! directory that no running or done job accounts for (expired, failed,
//! vanished jobs, and parts left by a crash).

use super::file::{ExportWriter, Progress};
use super::query;
use super::request::ExportFormat;
use super::store::{self, JobRow};
use crate::state::AppState;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// How often a running job's progress is recorded.
pub const HEARTBEAT: Duration = Duration::from_secs(2);
/// Silence after which a running job is taken back.
pub const STALE: Duration = Duration::from_secs(30);
/// How often jobs are taken back, expired and files swept.
pub const HOUSEKEEPING: Duration = Duration::from_secs(30);
/// How long failed and expired jobs stay readable.
pub const KEEP_FINISHED: Duration = Duration::from_secs(7 * 86_400);
/// How often an idle worker looks for queued jobs of other instances (a
/// job created through this one wakes it at once).
const POLL: Duration = Duration::from_secs(1);

/// This instance's name in `export_jobs.instance`: the host's name. Files
/// live on the instance that wrote them (or on storage every instance
/// shares as `export_dir`); the name says where a file is.
pub fn instance_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "control".to_owned())
}

/// The file of job `id` in `format` (`csv`, `ndjson`, `parquet`).
pub fn file_path(dir: &Path, id: i64, format: &str) -> PathBuf {
    dir.join(format!("{id}.{format}"))
}

/// Runs worker `n` for ever; worker 0 also does the housekeeping.
pub async fn run(state: AppState, n: usize) {
    let dir = state.config.export_dir.clone();
    if let Err(e) = create_dir(&dir) {
        tracing::error!(dir = %dir.display(), error = %e, "exports: cannot create export_dir; no exports will run");
        return;
    }
    let instance = instance_name();
    let mut last_housekeeping: Option<tokio::time::Instant> = None;
    loop {
        if n == 0 && last_housekeeping.is_none_or(|t| t.elapsed() >= HOUSEKEEPING) {
            housekeeping(&state, &dir).await;
            last_housekeeping = Some(tokio::time::Instant::now());
        }
        match store::claim(&state.db, &instance).await {
            Ok(Some(job)) => {
                run_job(&state, &dir, &instance, job).await;
                continue;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "exports: cannot look for queued jobs"),
        }
        let _ = tokio::time::timeout(POLL, state.export_wake.notified()).await;
    }
}

fn create_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    // The files hold organizations' data: the service's user only.
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// One run of `job`: the file, then done or failed.
async fn run_job(state: &AppState, dir: &Path, instance: &str, job: JobRow) {
    let spec = &job.request.0;
    let format = spec.format.as_str();
    let path = file_path(dir, job.id, format);
    let part = dir.join(format!("{}.{format}.part", job.id));
    tracing::info!(
        job = job.id,
        org = job.org_id,
        attempt = job.attempts,
        "export started"
    );
    let progress = Arc::new(Progress::default());
    let heartbeat = tokio::spawn(beat(
        state.db.clone(),
        job.clone(),
        instance.to_owned(),
        progress.clone(),
    ));
    let written = write(state, &job, &part, progress.clone()).await;
    heartbeat.abort();
    let rows = progress.rows.load(Ordering::Relaxed);
    let bytes = progress.bytes.load(Ordering::Relaxed);
    let outcome = match written {
        Ok(()) => match tokio::fs::rename(&part, &path).await {
            Ok(()) => store::finish(
                &state.db,
                &job,
                instance,
                rows,
                bytes,
                state.config.export_ttl_secs,
            )
            .await
            .map_err(|e| anyhow::anyhow!("recording the job done: {e}")),
            Err(e) => Err(anyhow::anyhow!("renaming the finished file: {e}")),
        },
        Err(e) => Err(e),
    };
    match outcome {
        Ok(true) => {
            tracing::info!(job = job.id, rows, bytes, "export done");
        }
        Ok(false) => {
            // Taken back meanwhile: the new run owns the job and its file name.
            tracing::warn!(
                job = job.id,
                "export finished after it was taken back; dropped"
            );
        }
        Err(e) => {
            let _ = tokio::fs::remove_file(&part).await;
            tracing::warn!(job = job.id, error = format!("{e:#}"), "export failed");
            let message: String = format!("{e:#}").chars().take(1000).collect();
            if let Err(e) = store::fail(&state.db, &job, instance, &message).await {
                tracing::warn!(job = job.id, error = %e, "exports: cannot record a failure");
            }
        }
    }
}

/// Writes `job`'s rows into `part`.
async fn write(
    state: &AppState,
    job: &JobRow,
    part: &Path,
    progress: Arc<Progress>,
) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let spec = &job.request.0;
    let ch = state
        .clickhouse
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("ClickHouse is not configured on this control instance"))?;
    let default_domain = state.config.default_domain.as_deref().unwrap_or("");
    let scope = query::Scope::new(job.org_id, spec, default_domain)?;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(part)
        .map_err(|e| anyhow::anyhow!("creating {}: {e}", part.display()))?;
    let mut out = ExportWriter::new(
        tokio::fs::File::from_std(file),
        spec.format,
        query::columns(spec),
        progress,
    )
    .await?;
    query::stream(ch, spec, &scope, &mut out)
        .await
        .map_err(|e| anyhow::anyhow!("reading ClickHouse: {e:#}"))?;
    out.finish().await
}

/// Records `progress` every [`HEARTBEAT`] until aborted; tells the writer
/// to stop when the job is no longer this run's.
async fn beat(db: sqlx::PgPool, job: JobRow, instance: String, progress: Arc<Progress>) {
    let mut tick = tokio::time::interval(HEARTBEAT);
    tick.tick().await;
    loop {
        tick.tick().await;
        let rows = progress.rows.load(Ordering::Relaxed);
        let bytes = progress.bytes.load(Ordering::Relaxed);
        match store::heartbeat(&db, &job, &instance, rows, bytes).await {
            Ok(true) => {}
            Ok(false) => {
                progress.cancelled.store(true, Ordering::Relaxed);
                return;
            }
            // The database away for a moment: the job is still ours until
            // someone takes it back, which the next beat will see.
            Err(e) => tracing::warn!(job = job.id, error = %e, "exports: heartbeat failed"),
        }
    }
}

/// Takes back silent jobs, expires old files, sweeps the directory.
pub async fn housekeeping(state: &AppState, dir: &Path) {
    match store::take_back(&state.db, STALE.as_secs()).await {
        Ok((0, 0)) => {}
        Ok((requeued, failed)) => {
            tracing::warn!(
                requeued,
                failed,
                "exports: took back jobs whose worker went silent"
            );
            state.export_wake.notify_waiters();
        }
        Err(e) => tracing::warn!(error = %e, "exports: cannot take back silent jobs"),
    }
    if let Err(e) = store::expire(&state.db, KEEP_FINISHED.as_secs()).await {
        tracing::warn!(error = %e, "exports: cannot expire jobs");
    }
    if let Err(e) = sweep(&state.db, dir).await {
        tracing::warn!(error = format!("{e:#}"), "exports: cannot sweep export_dir");
    }
}

/// Deletes the files of `dir` that no job accounts for: a finished file
/// needs its job running (about to be marked done) or done, a part its job
/// running. Other names are left alone.
async fn sweep(db: &sqlx::PgPool, dir: &Path) -> anyhow::Result<()> {
    let mut files = Vec::new();
    let mut entries = tokio::fs::read_dir(dir).await?;
    while let Some(entry) = entries.next_entry().await? {
        let name = entry.file_name().to_string_lossy().into_owned();
        let (stem, part) = match name.strip_suffix(".part") {
            Some(stem) => (stem.to_owned(), true),
            None => (name.clone(), false),
        };
        let Some((id, ext)) = stem.split_once('.') else {
            continue;
        };
        let (Ok(id), true) = (id.parse::<i64>(), ExportFormat::parse(ext).is_some()) else {
            continue;
        };
        files.push((id, part, entry.path()));
    }
    if files.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = files.iter().map(|(id, ..)| *id).collect();
    let states = store::states(db, &ids).await?;
    for (id, part, path) in files {
        let state = states
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, s)| s.as_str());
        let keep = matches!((state, part), (Some("running"), _) | (Some("done"), false));
        if !keep {
            match tokio::fs::remove_file(&path).await {
                Ok(()) => tracing::info!(file = %path.display(), "exports: deleted"),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "exports: cannot delete")
                }
            }
        }
    }
    Ok(())
}
