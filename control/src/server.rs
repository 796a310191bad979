//! Starting the service: database, migrations, background tasks, HTTP.

use crate::config::Config;
use crate::metrics::Metrics;
use crate::relay::{self, RelayTarget};
use crate::router::router;
use crate::state::AppState;
use anyhow::Context as _;
use servicekit::ServiceConfig as _;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::task::{JoinHandle, JoinSet};

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
    /// Background tasks (leadership, and under it relay, snapshot schedule,
    /// reconcile...); aborted on drop.
    pub tasks: Vec<JoinHandle<()>>,
    server: Option<JoinHandle<()>>,
    stop: tokio::sync::watch::Sender<bool>,
}

impl Running {
    /// Stops the HTTP server and every background task at once.
    pub fn abort(&self) {
        for t in &self.tasks {
            t.abort();
        }
        if let Some(s) = &self.server {
            s.abort();
        }
    }

    /// Stops accepting connections, lets requests in flight finish (up to
    /// `grace`), and stops the background tasks. Aborting the relay mid-batch
    /// is safe: it resumes from the stream's last message on the next start.
    pub async fn shutdown(mut self, grace: std::time::Duration) {
        let _ = self.stop.send(true);
        for t in &self.tasks {
            t.abort();
        }
        if let Some(server) = self.server.take()
            && tokio::time::timeout(grace, server).await.is_err()
        {
            tracing::warn!(
                ?grace,
                "requests still running after the grace period; dropping them"
            );
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
    let mailer = crate::accounts::mailer::from_config(&config)?;
    start_with_mailer(config, mailer).await
}

/// [`start`] with mails going to `mailer` instead of the configured one
/// (tests read invitation and reset links from a
/// [`crate::accounts::mailer::MemoryMailer`]).
pub async fn start_with_mailer(
    config: Config,
    mailer: Arc<dyn crate::accounts::mailer::Mailer>,
) -> anyhow::Result<Running> {
    config.validate()?;
    let db = connect_db(&config.database_url).await?;
    // The default domain's name is the configuration's; engines learn a
    // change through the change stream like any other.
    crate::domains::store::name_default_domain(&db, config.default_domain.as_deref().unwrap_or(""))
        .await
        .map_err(|e| anyhow::anyhow!("naming the default domain: {e}"))?;
    let metrics = Arc::new(Metrics::default());
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let addr = listener.local_addr()?;
    let acme = crate::acme::Acme::from_config(db.clone(), &config)?;
    let webhooks = crate::webhooks::Webhooks::from_config(&config)?;
    let state = AppState::new(
        db.clone(),
        config.clone(),
        metrics.clone(),
        mailer,
        acme,
        webhooks.clone(),
    );
    // Every instance serves the API; the one holding the leadership lock
    // runs the deployment-wide tasks (crate::leader).
    let (leader, is_leader) = tokio::sync::watch::channel(false);
    let mut tasks = vec![tokio::spawn(crate::leader::supervise(is_leader, {
        let state = state.clone();
        let relay = RelayTarget::from_config(&config)?;
        move |tasks| spawn_leader_tasks(tasks, &state, relay.clone())
    }))];
    // An API-only instance never contends (its supervisor ends at once).
    if !config.api_only {
        tasks.push(tokio::spawn(crate::leader::run(
            config.database_url.clone(),
            config.leader_retry(),
            metrics.clone(),
            leader,
        )));
    }
    // Export workers run on every instance (crate::exports), given ClickHouse.
    if state.clickhouse.is_some() {
        for n in 0..config.export_workers {
            tasks.push(tokio::spawn(crate::exports::worker::run(state.clone(), n)));
        }
    }
    // link.clicked events are read on every instance with webhooks, through
    // one durable consumer they share (each click to one of them).
    if webhooks.is_some()
        && let Some(source) = crate::webhooks::clicks::ClickSource::from_config(&config)
    {
        tasks.push(tokio::spawn(crate::webhooks::clicks::run(
            db.clone(),
            source,
            metrics.clone(),
        )));
    }
    // Visit leases are answered by every instance (one queue group; the
    // budget's rule is a row lock in PostgreSQL, crate::leases).
    if let Some(nats) = config.nats_settings() {
        tasks.push(tokio::spawn(crate::leases::run(crate::leases::Responder {
            db: db.clone(),
            nats,
            signer: config.links_signer()?.map(Arc::new),
            metrics: metrics.clone(),
            ttl: crate::leases::LEASE_TTL,
            subject: config.lease_subject.clone(),
        })));
    }
    // Webhook senders run on every instance (claims never overlap).
    if let Some(w) = webhooks
        && w.settings.concurrency > 0
    {
        tasks.push(tokio::spawn(crate::webhooks::dispatch::run(
            db.clone(),
            w,
            metrics.clone(),
            state.short_base().to_owned(),
        )));
    }
    let app = router(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(error = %e, "HTTP server stopped");
        }
    });
    Ok(Running {
        addr,
        state,
        tasks,
        server: Some(server),
        stop,
    })
}

/// The tasks only the leader runs: the outbox relay, scheduled snapshot
/// builds, the engine reconcile loop, purges, ACME renewals, the pruning of
/// old webhook rows.
fn spawn_leader_tasks(tasks: &mut JoinSet<()>, state: &AppState, relay: Option<RelayTarget>) {
    let config = &state.config;
    if let Some(target) = relay {
        tasks.spawn(relay::run(state.db.clone(), target, state.metrics.clone()));
    }
    tasks.spawn(
        state
            .snapshots
            .clone()
            .run_schedule(config.snapshot_interval()),
    );
    if !config.engine_admin.is_empty() {
        tasks.spawn(
            state
                .snapshots
                .clone()
                .run_reconcile(config.reconcile_interval()),
        );
    }
    tasks.spawn(crate::purge::run(
        state.db.clone(),
        config.purge_after(),
        config.purge_interval(),
    ));
    tasks.spawn(crate::webhooks::prune::run(
        state.db.clone(),
        config.webhook_retention(),
        config.webhook_prune_interval(),
        state.metrics.clone(),
    ));
    if let Some(acme) = state.acme.clone() {
        tasks.spawn(crate::acme::renewal::run(acme, config.reconcile_interval()));
    }
}
