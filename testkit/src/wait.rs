//! "Eventually" assertions: poll a condition until a deadline instead of sleeping.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use tokio::time::{Instant, sleep_until, timeout_at};

/// Polls `condition` every `poll` until it returns `true`; fails once `timeout` has
/// passed. The condition runs at least once, and once more at the deadline; a single
/// call still pending at the deadline is abandoned.
///
/// ```no_run
/// # async fn example(counter: std::sync::Arc<std::sync::atomic::AtomicU64>) -> anyhow::Result<()> {
/// use std::{sync::atomic::Ordering, time::Duration};
/// testkit::wait_for(Duration::from_secs(5), Duration::from_millis(10), || async {
///     counter.load(Ordering::Relaxed) == 3
/// })
/// .await?;
/// # Ok(())
/// # }
/// ```
pub async fn wait_for<F, Fut>(
    timeout: Duration,
    poll: Duration,
    mut condition: F,
) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    poll_until(timeout, poll, || {
        let fut = condition();
        async move { if fut.await { Ok(()) } else { Err(None) } }
    })
    .await
}

/// Polls `probe` every `poll` until it returns `Some(value)` and returns the value;
/// fails once `timeout` has passed.
pub async fn wait_for_some<T, F, Fut>(
    timeout: Duration,
    poll: Duration,
    mut probe: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    poll_until(timeout, poll, || {
        let fut = probe();
        async move { fut.await.ok_or(None) }
    })
    .await
}

/// Polls `probe` every `poll` until it returns `Ok(value)` and returns the value; once
/// `timeout` has passed, fails with the last error, e.g. "expected 3 rows, got 2".
pub async fn wait_for_ok<T, E, F, Fut>(
    timeout: Duration,
    poll: Duration,
    mut probe: F,
) -> anyhow::Result<T>
where
    E: Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    poll_until(timeout, poll, || {
        let fut = probe();
        async move { fut.await.map_err(|e| Some(e.to_string())) }
    })
    .await
}

/// The loop behind the `wait_for*` functions: `Err(Some(why))` is a failed check with a
/// reason, `Err(None)` one without.
async fn poll_until<T, F, Fut>(timeout: Duration, poll: Duration, mut probe: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Option<String>>>,
{
    let deadline = Instant::now() + timeout;
    let mut checks = 0u32;
    loop {
        checks += 1;
        let last = match timeout_at(deadline, probe()).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(why)) => why,
            Err(_) => Some("the last check was still running at the deadline".to_owned()),
        };
        let now = Instant::now();
        if now >= deadline {
            match last {
                Some(why) => {
                    anyhow::bail!("condition not met within {timeout:?} ({checks} checks): {why}")
                }
                None => anyhow::bail!("condition not met within {timeout:?} ({checks} checks)"),
            }
        }
        // Never sleep past the deadline: the last check runs right at it.
        sleep_until((now + poll).min(deadline)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn succeeds_once_the_condition_holds() {
        let calls = AtomicU32::new(0);
        let started = std::time::Instant::now();
        wait_for(Duration::from_secs(5), Duration::from_millis(5), || async {
            calls.fetch_add(1, Ordering::Relaxed) >= 3
        })
        .await
        .unwrap();
        assert_eq!(calls.load(Ordering::Relaxed), 4);
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[tokio::test]
    async fn returns_the_value() {
        let calls = AtomicU32::new(0);
        let v = wait_for_some(Duration::from_secs(5), Duration::from_millis(1), || async {
            let n = calls.fetch_add(1, Ordering::Relaxed);
            (n == 2).then_some(n * 10)
        })
        .await
        .unwrap();
        assert_eq!(v, 20);
    }

    #[tokio::test]
    async fn times_out_with_the_last_error() {
        let started = std::time::Instant::now();
        let err = wait_for_ok(
            Duration::from_millis(100),
            Duration::from_millis(10),
            || async { Err::<(), _>("expected 3 rows, got 2") },
        )
        .await
        .unwrap_err()
        .to_string();
        let took = started.elapsed();
        assert!(err.contains("expected 3 rows, got 2"), "{err}");
        assert!(
            took >= Duration::from_millis(100) && took < Duration::from_secs(2),
            "{took:?}"
        );

        let err = wait_for(
            Duration::from_millis(50),
            Duration::from_millis(10),
            || async { false },
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("condition not met within 50ms"), "{err}");
    }

    #[tokio::test]
    async fn a_hanging_check_is_cut_at_the_deadline() {
        let err = wait_for(
            Duration::from_millis(50),
            Duration::from_millis(10),
            || async { std::future::pending::<bool>().await },
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(err.contains("still running at the deadline"), "{err}");
    }
}
