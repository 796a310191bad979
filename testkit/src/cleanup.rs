//! Running async cleanup from `Drop`.

use std::future::Future;
use std::time::Duration;

/// How long a guard's `Drop` waits for its cleanup before giving up with a warning.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(20);

/// Runs `task` to completion on a fresh thread with its own current-thread tokio runtime
/// and waits for it. The task builds its own connections: the runtime of the test (if
/// any) may be the very thread that is blocked here, or already shutting down.
///
/// Never panics; failures are printed to stderr as warnings naming `what`.
pub(crate) fn run_blocking<F, Fut>(what: &str, task: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let spawned = std::thread::Builder::new()
        .name("testkit-cleanup".into())
        .spawn(move || -> anyhow::Result<()> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                match tokio::time::timeout(CLEANUP_TIMEOUT, task()).await {
                    Ok(result) => result,
                    Err(_) => anyhow::bail!("timed out after {CLEANUP_TIMEOUT:?}"),
                }
            })
        });
    let outcome = match spawned {
        Ok(handle) => match handle.join() {
            Ok(result) => result,
            Err(_) => Err(anyhow::anyhow!("the cleanup thread panicked")),
        },
        Err(e) => Err(anyhow::anyhow!("could not spawn a cleanup thread: {e}")),
    };
    if let Err(e) = outcome {
        eprintln!("testkit: warning: could not clean up {what}: {e:#}");
    }
}
