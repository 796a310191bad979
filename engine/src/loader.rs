//! Loading snapshots off the cores: open and check once, pre-fault, refuse
//! anything older than what is served, then install on every core.
//!
//! Three ways in, one path: the `--snapshot` file at start and on SIGHUP or
//! when it changes on disk, and a file pushed to `PUT /snapshot`. A refused
//! snapshot changes nothing; the previous one keeps serving.

use crate::shared::{Fingerprint, Shared, fingerprint};
use snapshots::{Snapshot, SnapshotError};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why a snapshot was not installed. Each maps to one admin status.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file is not a valid snapshot (422).
    #[error("invalid snapshot: {0}")]
    Invalid(#[from] SnapshotError),
    /// Older than the one being served (409): installing it would drop
    /// changes the engine already applied and pruned.
    #[error("snapshot sequence {offered} is older than the served sequence {served}")]
    Stale { offered: u64, served: u64 },
    /// The file could not be stored (500).
    #[error("cannot store snapshot at {path}: {source}")]
    Store {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Opens and checks `path`, pre-faults it, and refuses it if older than the
/// served snapshot. Blocking and linear in the file size.
pub fn open_checked(shared: &Shared, path: &Path) -> Result<Arc<Snapshot>, LoadError> {
    let snapshot = Snapshot::open(path)?;
    if let Some(served) = shared.loaded()
        && snapshot.sequence() < served.sequence
    {
        return Err(LoadError::Stale {
            offered: snapshot.sequence(),
            served: served.sequence,
        });
    }
    snapshot.prefault();
    Ok(Arc::new(snapshot))
}

/// Re-reads the configured snapshot path and installs it (SIGHUP, watcher).
/// `only_if_changed` skips a file whose identity is what is already served.
pub fn reload(shared: &Shared, only_if_changed: bool) -> Option<Result<u64, LoadError>> {
    let path = shared.snapshot_path()?;
    let _guard = shared.install_lock.lock().ok()?;
    let before: Option<Fingerprint> = fingerprint(&path);
    if only_if_changed
        && (before.is_none() || shared.loaded().and_then(|s| s.fingerprint) == before)
    {
        return None;
    }
    let result = open_checked(shared, &path).map(|snapshot| {
        let sequence = snapshot.sequence();
        shared.install(snapshot, path.display().to_string(), before);
        sequence
    });
    if let Err(e) = &result {
        shared
            .snapshot_refusals
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // Remember the refused file so the watcher does not retry it every tick.
        if let Ok(mut slot) = shared.snapshot.lock()
            && let Some(served) = slot.as_mut()
        {
            served.fingerprint = before;
        }
        tracing::error!(path = %path.display(), error = %e, "snapshot refused; still serving the previous one");
    }
    Some(result)
}

/// Installs a pushed file (already written to `temp`, a file in the push
/// directory): check it, move it to where a restart will find it, install.
pub fn install_pushed(
    shared: &Shared,
    temp: tempfile::NamedTempFile,
) -> Result<(u64, u64), LoadError> {
    let _guard = shared.install_lock.lock().expect("install lock");
    let snapshot = open_checked(shared, temp.path()).inspect_err(|_| {
        shared
            .snapshot_refusals
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    })?;
    // The mapping survives the rename: it holds the inode, not the name.
    let destination = shared
        .snapshot_path()
        .unwrap_or_else(|| shared.config.push_dir().join("pushed.snap"));
    temp.persist(&destination).map_err(|e| LoadError::Store {
        path: destination.clone(),
        source: e.error,
    })?;
    let (sequence, links) = (snapshot.sequence(), snapshot.len() as u64);
    shared.install(
        snapshot,
        format!("push ({})", destination.display()),
        fingerprint(&destination),
    );
    Ok((sequence, links))
}
