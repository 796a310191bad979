//! Starting the service: database, migrations, background tasks, HTTP.

use crate::app::{AppState, router};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::relay::{self, RelayTarget};
use anyhow::Context as _;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::task::JoinHandle;

/// Connects to PostgreSQL and applies the migrations in `control/migrations`.
pub async fn connect_db(url: &str) -> anyhow::Result<PgPool> {
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(std::time::Duration::from_secs(5))
        .connect(url)
        .await
        .context("connecting to PostgreSQL")?;
    sqlx::migrate!("./migrations")
        .run(&pool)
        .await
        .context("applying migrations")?;
    Ok(pool)
}

/// A running service.
#[derive(Debug)]
pub struct Running {
    pub addr: SocketAddr,
    pub state: AppState,
    /// The HTTP server and the background tasks; aborted on drop.
    pub tasks: Vec<JoinHandle<()>>,
}

impl Running {
    /// Stops the HTTP server and every background task.
    pub fn abort(&self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.abort();
    }
}

/// Starts everything `config` asks for and returns once the listener is bound.
pub async fn start(config: Config) -> anyhow::Result<Running> {
    config.validate()?;
    let db = connect_db(&config.database_url).await?;
    let metrics = Arc::new(Metrics::default());
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let addr = listener.local_addr()?;
    let state = AppState::new(db.clone(), config.clone(), metrics.clone());
    let mut tasks = Vec::new();

    if let Some(nats) = &config.nats {
        let target = RelayTarget {
            nats_url: nats.clone(),
            stream: config.links_stream.clone(),
            subject: config.links_subject.clone(),
        };
        tasks.push(tokio::spawn(relay::run(
            db.clone(),
            target,
            metrics.clone(),
        )));
    }
    tasks.push(tokio::spawn(
        state
            .snapshots
            .clone()
            .run_schedule(config.snapshot_interval()),
    ));
    if !config.engine_admin.is_empty() {
        tasks.push(tokio::spawn(
            state
                .snapshots
                .clone()
                .run_reconcile(config.reconcile_interval()),
        ));
    }
    let app = router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    tasks.push(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "HTTP server stopped");
        }
    }));
    Ok(Running { addr, state, tasks })
}
