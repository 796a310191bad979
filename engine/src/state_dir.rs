//! The engine's own directory: pushed snapshot generations and the click
//! spool, nothing else.
//!
//! What is kept at rest here is private: the directory and everything the
//! engine makes in it are mode 0700 (directories) and 0600 (files), whatever
//! the umask, and an existing directory with wider modes is narrowed at
//! start. A rename or a removal is only durable once the directory itself is
//! fsynced, so every create, rename and delete the engine does here is
//! followed by [`fsync_dir`]. One engine per directory: an exclusive `flock`
//! on `.lock`, held for the process's life, makes a second engine pointed at
//! the same place fail at start, naming the flag.
//!
//! ```text
//! <state_dir>/            0700, locked
//!   snapshots/            pushed generations, newest kept (loader)
//!   certs/                TLS pairs pushed by control (PUT /certs/NAME)
//!   spool/                click batches NATS could not take (clicks::spool)
//!     quarantine/         spool files that could not be read, set aside
//! ```

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Why the state directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StateDirError {
    #[error("state directory {dir}: {step}: {source}")]
    Io {
        dir: PathBuf,
        step: &'static str,
        #[source]
        source: io::Error,
    },
    #[error(
        "state directory {0} is in use by another engine (give each engine its own --state-dir)"
    )]
    InUse(PathBuf),
}

/// The open, locked state directory.
#[derive(Debug)]
pub struct StateDir {
    root: PathBuf,
    /// Held with an exclusive `flock` for as long as the engine runs.
    _lock: File,
}

impl StateDir {
    /// Creates (0700) or narrows `root` and its subdirectories, and locks it.
    pub fn open(root: &Path) -> Result<StateDir, StateDirError> {
        let io = |step| {
            let dir = root.to_path_buf();
            move |source| StateDirError::Io { dir, step, source }
        };
        private_dir(root).map_err(io("create"))?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(root.join(".lock"))
            .map_err(io("open .lock"))?;
        // SAFETY: flock on a descriptor we own; no memory is involved.
        let locked = unsafe {
            libc::flock(
                std::os::fd::AsRawFd::as_raw_fd(&lock),
                libc::LOCK_EX | libc::LOCK_NB,
            )
        };
        if locked != 0 {
            return Err(StateDirError::InUse(root.to_path_buf()));
        }
        let dir = StateDir {
            root: root.to_path_buf(),
            _lock: lock,
        };
        private_dir(&dir.snapshots()).map_err(io("create snapshots/"))?;
        private_dir(&dir.spool()).map_err(io("create spool/"))?;
        private_dir(&dir.certs()).map_err(io("create certs/"))?;
        Ok(dir)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Pushed snapshot generations.
    pub fn snapshots(&self) -> PathBuf {
        self.root.join("snapshots")
    }

    /// The click spool.
    pub fn spool(&self) -> PathBuf {
        self.root.join("spool")
    }

    /// TLS certificate pairs pushed to the admin port, served beside the
    /// operator's `--tls-certs` directory.
    pub fn certs(&self) -> PathBuf {
        self.root.join("certs")
    }
}

/// Makes `dir` (and missing parents) with mode 0700, or narrows an existing
/// one to 0700; fsyncs its parent when it was created.
pub fn private_dir(dir: &Path) -> io::Result<()> {
    match DirBuilder::new().recursive(false).mode(0o700).create(dir) {
        Ok(()) => {
            // The mode asked for is filtered by the umask; say it again.
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
            fsync_dir(parent(dir))
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            if !fs::metadata(dir)?.is_dir() {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "exists and is not a directory",
                ));
            }
            if fs::metadata(dir)?.permissions().mode() & 0o777 != 0o700 {
                fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
            }
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent(dir))?;
            private_dir(dir)
        }
        Err(e) => Err(e),
    }
}

/// Creates `path` for writing, mode 0600, failing if it exists.
pub fn private_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

/// Makes the directory's entries (creates, renames, removals) durable.
pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn private_locked_and_narrowed() {
        let base = tempfile::tempdir().unwrap();
        let root = base.path().join("a/b/state");
        let dir = StateDir::open(&root).unwrap();
        for path in [&root, &dir.snapshots(), &dir.spool(), &dir.certs()] {
            assert_eq!(mode(path), 0o700, "{}", path.display());
        }
        assert_eq!(mode(&root.join(".lock")), 0o600);
        let err = StateDir::open(&root).unwrap_err();
        assert!(
            err.to_string().contains("in use by another engine")
                && err.to_string().contains("--state-dir"),
            "{err}"
        );
        drop(dir);
        // An existing directory open to others is narrowed.
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).unwrap();
        let _dir = StateDir::open(&root).unwrap();
        assert_eq!(mode(&root), 0o700);
        let file = root.join("f");
        drop(private_file(&file).unwrap());
        assert_eq!(mode(&file), 0o600);
        assert!(private_file(&file).is_err(), "never over an existing file");
    }
}
