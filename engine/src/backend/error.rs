//! Why a core could not start, with the numbers that explain it.
//!
//! Each variant is one cause the operator can act on, matched from what
//! glommio, the kernel or the socket reported rather than from its text, and
//! its message says what to do.

use glommio::{GlommioError, ReactorErrorKind};
use std::io;
use std::net::SocketAddr;

/// What a core reports when it is listening (its id), or why it could not start.
pub type Started = Result<usize, StartError>;

/// The smallest `RLIMIT_MEMLOCK` glommio 0.9 starts an executor under
/// (`MIN_MEMLOCK_LIMIT` in its `sys/uring.rs`, not exported).
pub const GLOMMIO_MIN_MEMLOCK: u64 = 512 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// `--io uring` was asked for and this kernel cannot run it.
    #[error("--io uring is not available here: {reason} (use --io glommio)")]
    UringUnsupported { reason: String },
    /// The locked-memory limit is below what glommio's executor needs.
    #[error(
        "core {core} (cpu {cpu}) could not start its executor: RLIMIT_MEMLOCK is {limit} bytes, \
         glommio needs {needed} (MemLockLimit({limit}/{needed})); each core registers \
         {io_memory} bytes of I/O memory with io_uring, which counts against RLIMIT_MEMLOCK: \
         raise the limit (systemd LimitMEMLOCK=, see engine/README.md), grant CAP_IPC_LOCK, \
         or lower io_memory_kib"
    )]
    MemLock {
        core: usize,
        cpu: usize,
        /// Bytes of I/O memory each executor registers (`io_memory_kib`).
        io_memory: usize,
        /// The process's `RLIMIT_MEMLOCK`, bytes.
        limit: u64,
        /// The least glommio accepts, bytes.
        needed: u64,
    },
    /// The kernel refused io_uring itself.
    #[error(
        "core {core} (cpu {cpu}) could not start its executor: {source}; io_uring is \
         unavailable (old kernel, or disabled by seccomp / kernel.io_uring_disabled)"
    )]
    UringUnavailable {
        core: usize,
        cpu: usize,
        source: io::Error,
    },
    /// Any other executor failure, as glommio words it (its error type is
    /// not `Sync`, so its text is kept).
    #[error("core {core} (cpu {cpu}) could not start its executor: {glommio}")]
    Executor {
        core: usize,
        cpu: usize,
        glommio: String,
    },
    #[error("core {core}: cannot listen on {addr}: {source}")]
    Listen {
        core: usize,
        addr: SocketAddr,
        source: io::Error,
    },
    /// The uring backend's own ring or buffers could not be set up.
    #[error("core {core} (cpu {cpu}) could not set up its io_uring: {source} (try --io glommio)")]
    Ring {
        core: usize,
        cpu: usize,
        source: io::Error,
    },
}

impl StartError {
    /// Names why glommio could not build core `core`'s executor.
    /// `memlock_limit` is the process's `RLIMIT_MEMLOCK` ([`memlock_limit`]).
    ///
    /// glommio raises `ReactorError(MemLockLimit(limit, needed))`, but 0.9
    /// passes it through an `io::Result` on its way out of
    /// `LocalExecutorBuilder::make`, which leaves an `IoError` of kind
    /// `Other`; so an `IoError` under a limit below [`GLOMMIO_MIN_MEMLOCK`]
    /// is that same refusal, told by the limit rather than by the text.
    pub fn executor(
        core: usize,
        cpu: usize,
        io_memory: usize,
        error: GlommioError<()>,
        memlock_limit: Option<u64>,
    ) -> StartError {
        let memlock = |limit, needed| StartError::MemLock {
            core,
            cpu,
            io_memory,
            limit,
            needed,
        };
        match error {
            GlommioError::ReactorError(ReactorErrorKind::MemLockLimit(limit, needed)) => {
                memlock(limit, needed)
            }
            GlommioError::IoError(_)
                if memlock_limit.is_some_and(|limit| limit < GLOMMIO_MIN_MEMLOCK) =>
            {
                memlock(memlock_limit.unwrap_or(0), GLOMMIO_MIN_MEMLOCK)
            }
            GlommioError::IoError(source)
                if matches!(source.raw_os_error(), Some(libc::ENOSYS | libc::EPERM)) =>
            {
                StartError::UringUnavailable { core, cpu, source }
            }
            other => StartError::Executor {
                core,
                cpu,
                glommio: other.to_string(),
            },
        }
    }
}

/// The process's soft `RLIMIT_MEMLOCK` in bytes; `None` if it cannot be read.
pub fn memlock_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct it is given and nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut limit) } != 0 {
        return None;
    }
    Some(limit.rlim_cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flattened() -> GlommioError<()> {
        // What glommio 0.9's make() returns for the memlock refusal.
        GlommioError::IoError(io::Error::other("MemLockLimit(65536/524288)"))
    }

    #[test]
    fn memlock_is_named_with_its_numbers_and_the_advice() {
        let typed = GlommioError::ReactorError(ReactorErrorKind::MemLockLimit(65536, 524288));
        for error in [
            StartError::executor(1, 3, 524288, typed, None),
            StartError::executor(1, 3, 524288, flattened(), Some(65536)),
        ] {
            assert!(
                matches!(
                    error,
                    StartError::MemLock {
                        core: 1,
                        cpu: 3,
                        io_memory: 524288,
                        limit: 65536,
                        needed: 524288
                    }
                ),
                "{error:?}"
            );
            let text = error.to_string();
            assert!(text.contains("MemLockLimit(65536/524288)"), "{text}");
            assert!(text.contains("RLIMIT_MEMLOCK"), "{text}");
            assert!(text.contains("LimitMEMLOCK="), "{text}");
            assert!(text.contains("CAP_IPC_LOCK"), "{text}");
        }
    }

    #[test]
    fn other_failures_keep_their_own_kind() {
        let enosys = GlommioError::IoError(io::Error::from_raw_os_error(libc::ENOSYS));
        assert!(matches!(
            StartError::executor(0, 0, 524288, enosys, Some(8 << 20)),
            StartError::UringUnavailable { .. }
        ));
        // A big enough limit: the same flattened error is not blamed on it.
        assert!(matches!(
            StartError::executor(0, 0, 524288, flattened(), Some(8 << 20)),
            StartError::Executor { .. }
        ));
    }

    #[test]
    fn the_limit_is_read() {
        assert!(memlock_limit().is_some());
    }
}
