//! What every handler can reach: the database, the settings, the clients and
//! the shared services. Handlers import this module; this module imports no
//! handler, so the router can import every handler without a cycle.

use crate::accounts::mailer::Mailer;
use crate::accounts::password::Passwords;
use crate::acme::Acme;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::ratelimit::RateLimits;
use crate::snapshot::SnapshotService;
use crate::snapshot_builds::SnapshotBuilds;
use crate::target::TargetPolicy;
use sqlx::PgPool;
use std::sync::Arc;

/// The shared state. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    pub db: PgPool,
    pub config: Arc<Config>,
    /// What a link may point at (our own short host, loopback, private).
    pub targets: Arc<TargetPolicy>,
    pub clickhouse: Option<clickhouse::Client>,
    /// Links' click totals read from ClickHouse, cached.
    pub click_totals: Arc<crate::links::clicks::ClickTotals>,
    /// The dashboard overview's top links, cached per organization.
    pub top_links: Arc<crate::dashboard::top_cache::TopLinksCache>,
    pub limits: Arc<RateLimits>,
    pub metrics: Arc<Metrics>,
    pub snapshots: Arc<SnapshotService>,
    /// Operator-requested builds, coalesced.
    pub builds: Arc<SnapshotBuilds>,
    // accounts
    /// argon2id hashing, bounded to one job per CPU.
    pub passwords: Arc<Passwords>,
    /// Where invitation and reset mails go.
    pub mailer: Arc<dyn Mailer>,
    /// Certificates by ACME; `None` when `acme_directory` is not set.
    pub acme: Option<Arc<Acme>>,
    /// Wakes this instance's export workers when a job is queued here.
    pub export_wake: Arc<tokio::sync::Notify>,
    /// Webhooks; `None` when `webhook_key_file` is not set.
    pub webhooks: Option<Arc<crate::webhooks::Webhooks>>,
}

impl AppState {
    pub fn new(
        db: PgPool,
        config: Config,
        metrics: Arc<Metrics>,
        mailer: Arc<dyn Mailer>,
        acme: Option<Arc<Acme>>,
        webhooks: Option<Arc<crate::webhooks::Webhooks>>,
    ) -> Self {
        let clickhouse = config
            .clickhouse
            .as_deref()
            .map(|url| clickhouse_client(url, &config.clickhouse_database));
        // Validated at start (`Config::validate` reads the key); a key file
        // unreadable since then only costs engines the complete check.
        let signer = config.links_signer().unwrap_or_else(|error| {
            tracing::warn!(%error, "snapshots will be unsigned");
            None
        });
        let snapshots = Arc::new(
            SnapshotService::new(
                db.clone(),
                config.snapshot_dir.clone(),
                config.snapshot_keep,
                config.engine_admin.clone(),
                config.engine_admin_token.clone(),
                metrics.clone(),
            )
            .signed_by(signer.map(Arc::new)),
        );
        AppState {
            targets: Arc::new(TargetPolicy::new(
                &config.short_base,
                config.allow_private_targets,
            )),
            limits: Arc::new(RateLimits::new(&config)),
            builds: Arc::new(SnapshotBuilds::new(snapshots.clone())),
            passwords: Arc::new(Passwords::new(metrics.clone())),
            mailer,
            acme,
            webhooks,
            export_wake: Arc::new(tokio::sync::Notify::new()),
            click_totals: Arc::new(crate::links::clicks::ClickTotals::new(
                config.click_totals_ttl(),
            )),
            top_links: Arc::new(crate::dashboard::top_cache::TopLinksCache::new(
                config.click_totals_ttl(),
            )),
            config: Arc::new(config),
            db,
            clickhouse,
            metrics,
            snapshots,
        }
    }

    pub fn short_base(&self) -> &str {
        self.config.short_base_trimmed()
    }
}

/// A ClickHouse client for the stats database. ClickHouse 18.16 cannot answer
/// the crate's schema validation queries, so validation is off.
pub fn clickhouse_client(url: &str, database: &str) -> clickhouse::Client {
    clickhouse::Client::default()
        .with_url(url)
        .with_database(database)
        .with_validation(false)
}
