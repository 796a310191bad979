//! Loading snapshots off the cores: open and check once, pre-fault, refuse
//! anything older than what is served, then install on every core.
//!
//! Three ways in, one path: the `--snapshot` file at start and on SIGHUP or
//! when it changes on disk, and a file pushed to `PUT /snapshot`. A refused
//! snapshot changes nothing; the previous one keeps serving.
//!
//! Pushed snapshots never overwrite the operator's `--snapshot` file: each is
//! kept as a generation in the state directory
//! (`snapshots/pushed-<sequence>.snap`, the newest [`KEEP_GENERATIONS`]), and
//! at start the engine serves the newest of `--snapshot` and the pushed
//! generations that is valid ([`at_start`]). A push is refused when its
//! sequence is implausibly far past anything the engine knows
//! ([`LoadError::Implausible`]): one with sequence `u64::MAX` would otherwise
//! make every later change look covered and the engine look up to date to
//! control forever.

use crate::config::Config;
use crate::shared::{Fingerprint, Shared, fingerprint};
use crate::state_dir::{StateDir, fsync_dir};
use snapshots::{Snapshot, SnapshotError};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Pushed generations kept in the state directory: the one served and the
/// one before it.
pub const KEEP_GENERATIONS: usize = 2;
/// Name prefix of an upload being received (removed at start if a crash
/// left one).
pub const UPLOAD_PREFIX: &str = ".upload-";

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
    /// Further past the newest sequence the engine knows than the allowed
    /// lead (409), and the push did not say `force=true`.
    #[error(
        "snapshot sequence {offered} is more than {lead} past the newest sequence this engine knows ({known}); \
         push with ?force=true if it is right, or raise --snapshot-sequence-max-lead"
    )]
    Implausible { offered: u64, known: u64, lead: u64 },
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
    let snapshot = open(&shared.config, path)?;
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

/// Opens `path`: by its signature when a key of `links_verify_keys` signed
/// it (control signs what it builds with the links signing key), completely
/// otherwise (`snapshots::signed` says what each guarantees). Blocking.
fn open(config: &Config, path: &Path) -> Result<Snapshot, SnapshotError> {
    // Checked at start (`Config::validate`); a key file gone since only
    // means the complete check.
    let verifier = config.links_verifier().ok().flatten();
    let started = std::time::Instant::now();
    let snapshot = Snapshot::open_trusting(path, verifier.as_ref())?;
    tracing::info!(
        path = %path.display(),
        sequence = snapshot.sequence(),
        links = snapshot.len(),
        checked = ?snapshot.checked_by(),
        took_ms = started.elapsed().as_millis() as u64,
        "snapshot opened"
    );
    Ok(snapshot)
}

/// Re-reads the configured snapshot path and installs it (SIGHUP, watcher).
/// `only_if_changed` skips a file already looked at in this form.
pub fn reload(shared: &Shared, only_if_changed: bool) -> Option<Result<u64, LoadError>> {
    let path = shared.snapshot_path()?;
    let _guard = shared.install_lock.lock().ok()?;
    let before: Option<Fingerprint> = fingerprint(&path);
    {
        let mut watched = shared.watched.lock().ok()?;
        if only_if_changed && (before.is_none() || *watched == before) {
            return None;
        }
        // Remembered whatever the outcome, so a refused file (or one older
        // than a pushed generation) is not retried every tick.
        *watched = before;
    }
    let result = open_checked(shared, &path).map(|snapshot| {
        let sequence = snapshot.sequence();
        shared.install(snapshot, path.display().to_string());
        sequence
    });
    if let Err(e) = &result {
        shared
            .snapshot_refusals
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::error!(path = %path.display(), error = %e, "snapshot refused; still serving the previous one");
    }
    Some(result)
}

/// Installs a pushed file (already written to `temp`, in the state
/// directory): check it, keep it as a generation, install it. Unless
/// `force`, a sequence more than the configured lead past
/// [`Shared::newest_known_seq`] is refused. A refused file is removed (by
/// `temp`'s drop).
pub fn install_pushed(
    shared: &Shared,
    temp: tempfile::NamedTempFile,
    force: bool,
) -> Result<(u64, u64), LoadError> {
    let _guard = shared.install_lock.lock().expect("install lock");
    let refused = |e: LoadError| {
        shared
            .snapshot_refusals
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        e
    };
    let snapshot = open_checked(shared, temp.path()).map_err(refused)?;
    let known = shared.newest_known_seq();
    let lead = shared.config.snapshot_sequence_max_lead;
    if !force && snapshot.sequence().saturating_sub(known) > lead {
        return Err(refused(LoadError::Implausible {
            offered: snapshot.sequence(),
            known,
            lead,
        }));
    }
    if force {
        tracing::warn!(
            sequence = snapshot.sequence(),
            known,
            "snapshot pushed with force=true: sequence lead not checked"
        );
    }
    // The mapping survives the rename: it holds the inode, not the name.
    let dir = shared.state.snapshots();
    let destination = dir.join(generation_name(snapshot.sequence()));
    let store = |source| LoadError::Store {
        path: destination.clone(),
        source,
    };
    temp.persist(&destination).map_err(|e| store(e.error))?;
    fsync_dir(&dir).map_err(store)?;
    let (sequence, links) = (snapshot.sequence(), snapshot.len() as u64);
    shared.install(snapshot, format!("push ({})", destination.display()));
    prune(&dir);
    Ok((sequence, links))
}

fn generation_name(sequence: u64) -> String {
    format!("pushed-{sequence:020}.snap")
}

/// Pushed generations in `dir`, newest first.
fn generations(dir: &Path) -> Vec<(u64, PathBuf)> {
    let mut found: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name();
            let sequence = name
                .to_str()?
                .strip_prefix("pushed-")?
                .strip_suffix(".snap")?
                .parse()
                .ok()?;
            Some((sequence, entry.path()))
        })
        .collect();
    found.sort_unstable_by(|a, b| b.cmp(a));
    found
}

/// Removes all but the newest [`KEEP_GENERATIONS`] generations.
fn prune(dir: &Path) {
    let old = generations(dir).into_iter().skip(KEEP_GENERATIONS);
    let mut removed = false;
    for (_, path) in old {
        match std::fs::remove_file(&path) {
            Ok(()) => removed = true,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot remove an old snapshot generation")
            }
        }
    }
    if removed && let Err(e) = fsync_dir(dir) {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot fsync the snapshot directory");
    }
}

/// What the engine serves from start.
#[derive(Debug)]
pub struct Initial {
    pub snapshot: Arc<Snapshot>,
    /// The path it was read from, as `/readyz` shows it.
    pub source: String,
}

/// The snapshot to serve at start: the newest of the `--snapshot` file
/// (which must be valid: the operator named it) and the pushed generations
/// in the state directory (an invalid one is logged and skipped). Also
/// removes uploads a crash left behind.
pub fn at_start(config: &Config, state: &StateDir) -> Result<Option<Initial>, LoadError> {
    let dir = state.snapshots();
    remove_leftover_uploads(&dir);
    let mut best = match &config.snapshot {
        Some(path) => Some(Initial {
            snapshot: Arc::new(open(config, path)?),
            source: path.display().to_string(),
        }),
        None => None,
    };
    let floor = best.as_ref().map(|b| b.snapshot.sequence());
    for (sequence, path) in generations(&dir) {
        if floor.is_some_and(|floor| sequence <= floor) {
            break;
        }
        match open(config, &path) {
            Ok(snapshot) => {
                tracing::info!(path = %path.display(), sequence, "serving the newest pushed snapshot");
                best = Some(Initial {
                    snapshot: Arc::new(snapshot),
                    source: format!("push ({})", path.display()),
                });
                break;
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "skipping an invalid pushed snapshot")
            }
        }
    }
    if let Some(best) = &best {
        best.snapshot.prefault();
    }
    Ok(best)
}

fn remove_leftover_uploads(dir: &Path) {
    let leftovers: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(UPLOAD_PREFIX))
        .map(|e| e.path())
        .collect();
    for path in &leftovers {
        let _ = std::fs::remove_file(path);
    }
    if !leftovers.is_empty() {
        let _ = fsync_dir(dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use snapshots::{Link, SnapshotBuilder};

    fn write(path: &Path, sequence: u64) {
        let mut builder = SnapshotBuilder::new(sequence);
        builder.push(Link::new("a", "https://a/1")).unwrap();
        builder.write_to(path).unwrap();
    }

    #[test]
    fn start_serves_the_newest_valid_of_the_file_and_the_generations() {
        let base = tempfile::tempdir().unwrap();
        let state = StateDir::open(&base.path().join("state")).unwrap();
        let operator = base.path().join("links.snap");
        write(&operator, 5);
        let config = Config {
            snapshot: Some(operator.clone()),
            ..Config::default()
        };
        let sequence = |config: &Config| {
            at_start(config, &state)
                .unwrap()
                .map(|i| i.snapshot.sequence())
        };
        assert_eq!(sequence(&config), Some(5));
        write(&state.snapshots().join(generation_name(7)), 7);
        write(&state.snapshots().join(generation_name(4)), 4);
        assert_eq!(sequence(&config), Some(7));
        // The newest generation damaged: the next one that is valid and
        // newer than the file.
        std::fs::write(state.snapshots().join(generation_name(9)), b"junk").unwrap();
        assert_eq!(sequence(&config), Some(7));
        write(&operator, 8);
        assert_eq!(sequence(&config), Some(8));
        assert_eq!(sequence(&Config::default()), Some(7));
        // A crash mid-upload left a file: gone at start.
        let leftover = state.snapshots().join(format!("{UPLOAD_PREFIX}x.tmp"));
        std::fs::write(&leftover, b"half").unwrap();
        sequence(&config);
        assert!(!leftover.exists());
        prune(&state.snapshots());
        let kept: Vec<u64> = generations(&state.snapshots())
            .iter()
            .map(|g| g.0)
            .collect();
        assert_eq!(kept, vec![9, 7]);
    }
}
