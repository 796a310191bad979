//! The control thread: one small tokio runtime beside the cores that runs
//! the admin server, the change-stream consumer, the snapshot file watcher
//! or puller, the visit lease task,
//! the TLS certificate watcher and the signal handlers (SIGTERM/SIGINT: shut down; SIGHUP: reload).

use crate::loader;
use crate::shared::Shared;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};

/// Starts the thread; returns once the admin listener is bound (its address)
/// or could not be. `stop` fires when the process should shut down.
pub fn spawn(shared: Arc<Shared>, stop: mpsc::Sender<()>) -> anyhow::Result<SocketAddr> {
    let (bound_tx, bound_rx) = mpsc::channel::<Result<SocketAddr, String>>();
    std::thread::Builder::new()
        .name("engine-control".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    let _ = bound_tx.send(Err(format!("cannot start the control runtime: {e}")));
                    return;
                }
            };
            runtime.block_on(run(shared, bound_tx, stop));
        })?;
    bound_rx
        .recv()
        .map_err(|_| anyhow::anyhow!("the control thread exited during start-up"))?
        .map_err(anyhow::Error::msg)
}

async fn run(
    shared: Arc<Shared>,
    bound: mpsc::Sender<Result<SocketAddr, String>>,
    stop: mpsc::Sender<()>,
) {
    let admin = shared.config.admin;
    let listener = match tokio::net::TcpListener::bind(admin).await {
        Ok(listener) => listener,
        Err(e) => {
            let _ = bound.send(Err(format!("cannot listen on admin address {admin}: {e}")));
            return;
        }
    };
    let (mut term, mut int, mut hup) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) {
        (Ok(t), Ok(i), Ok(h)) => (t, i, h),
        _ => {
            let _ = bound.send(Err("cannot install signal handlers".into()));
            return;
        }
    };
    let _ = bound.send(listener.local_addr().map_err(|e| e.to_string()));

    let router = crate::admin::router(shared.clone());
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(error = %e, "admin server stopped");
        }
    });
    if let Some(nats) = shared.config.nats_settings() {
        // Checked by Config::validate before start.
        let verifier = shared.config.links_verifier().ok().flatten();
        tokio::spawn(crate::leases::run(
            shared.clone(),
            nats.clone(),
            verifier.clone(),
        ));
        tokio::spawn(crate::links::run(shared.clone(), nats, verifier));
    }
    if let Some(url) = shared.config.pull_snapshot.clone() {
        tokio::spawn(crate::snapshot_pull::run(shared.clone(), url));
    }
    if shared.config.snapshot.is_some() && shared.config.watch_interval_ms > 0 {
        let shared = shared.clone();
        let every = Duration::from_millis(shared.config.watch_interval_ms);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let worker = shared.clone();
                let _ = tokio::task::spawn_blocking(move || loader::reload(&worker, true)).await;
            }
        });
    }
    if shared.tls.is_some() && shared.config.watch_interval_ms > 0 {
        let shared = shared.clone();
        let every = Duration::from_millis(shared.config.watch_interval_ms);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let worker = shared.clone();
                let _ = tokio::task::spawn_blocking(move || worker.poll_tls()).await;
            }
        });
    }
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                tracing::info!("SIGHUP: reloading the snapshot (and TLS certificates if changed)");
                let worker = shared.clone();
                let _ = tokio::task::spawn_blocking(move || {
                    loader::reload(&worker, false);
                    worker.poll_tls();
                })
                .await;
            }
        }
    }
    tracing::info!("shutting down: no new connections, finishing requests in flight");
    shared.shutdown();
    let _ = stop.send(());
    // Keep serving the admin port (readyz, metrics) while the cores drain.
    std::future::pending::<()>().await;
}
