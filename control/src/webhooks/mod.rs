//! Webhooks: an organization's HTTPS endpoints get its link events, signed,
//! retried, with a circuit breaker per endpoint and a dead-letter list.
//!
//! # The model
//!
//! **Endpoints** ([`store`], [`api`]) belong to an organization and are
//! managed by whoever manages its settings (the `admin` scope: owners,
//! admins, `admin` keys). Each has a URL ([`url`]: https to public hosts,
//! refused on loopback, private and link-local addresses and checked again
//! at every connection), the events it wants and an `active` switch. Its
//! signing secret is made by the server, shown once (on create and on
//! rotation) and kept sealed in PostgreSQL with AES-256-GCM under
//! `webhook_key_file`, the way [`crate::acme::seal`] keeps certificate keys:
//! the server must recover it to sign, so a hash would not do, and a dump of
//! the database alone signs nothing.
//!
//! **Events and deliveries are rows written with the link write**
//! ([`events`]): every path that changes a link (API, bulk, import,
//! dashboard, purge of expired links) records its outbox entry through
//! `links::store`, and the same function inserts one `webhook_events` row
//! per changed link whose organization has a matching active endpoint, and
//! one `webhook_deliveries` row per such endpoint, in the same transaction.
//! A committed write always has its deliveries, a rolled-back one never
//! does, and a restart loses nothing. The event id (`evt_…`) is stable
//! across retries.
//!
//! **Sending** ([`dispatch`]) runs on every instance (`webhook_concurrency`
//! at once). A sender claims due deliveries with `FOR UPDATE SKIP LOCKED`
//! and moves each one's `next_attempt_at` a lease ahead in the same
//! statement, so two instances never send the same attempt at once and an
//! instance that dies mid-attempt leaves it to be retried after the lease.
//! A 2xx answer is success; any other answer, a timeout
//! (`webhook_timeout_ms`), a refused connection or a redirect (never
//! followed) is a failure, retried after an exponential backoff with full
//! jitter ([`backoff`]); after `webhook_max_attempts` the delivery is a dead
//! letter, listed by `GET /v1/webhooks/{id}/dead-letters` and sent again on
//! request.
//!
//! **The circuit breaker** is two columns of the endpoint: failures in a
//! row, and `open_until`. `webhook_breaker_failures` failures in a row open
//! it for `webhook_breaker_cooldown_ms`: no delivery to the endpoint is
//! claimed, so its deliveries wait instead of spending attempts. Then one
//! probe is let through (half-open: claiming it pushes `open_until` a lease
//! ahead, which no other sender can then win); a success closes the breaker,
//! a failure opens it again.
//!
//! **`link.clicked`** ([`clicks`]): the analytics sidecar's enriched clicks,
//! read from a JetStream stream control keeps on its subjects through one
//! durable consumer all instances share, batched per organization (up to
//! `webhook_click_batch` clicks or `webhook_click_wait_ms`) into events
//! written the same way, acknowledged once committed.
//!
//! **Pruning** ([`prune`]): delivered deliveries, and events no delivery
//! needs, leave once older than `webhook_retention_secs` (7 days), in
//! short batches, on the leader.
//!
//! The body, headers and signature a receiver sees are in
//! `docs/webhooks.md` and [`sign`].

pub mod api;
pub mod backoff;
pub mod clicks;
pub mod dispatch;
pub mod events;
pub mod input;
pub mod prune;
pub mod sign;
pub mod store;
pub mod url;

use crate::acme::seal::Sealer;
use crate::config::Config;
use anyhow::Context as _;
use std::sync::Arc;
use std::time::Duration;

/// Every event type, in the order documented.
pub const EVENT_TYPES: [&str; 4] = [
    "link.created",
    "link.updated",
    "link.deleted",
    "link.clicked",
];

/// How the sender retries and when the breaker opens.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub timeout: Duration,
    pub retry: backoff::Backoff,
    pub max_attempts: u32,
    pub breaker_failures: u32,
    pub breaker_cooldown: Duration,
    pub concurrency: usize,
    pub poll: Duration,
}

impl Settings {
    pub fn from_config(c: &Config) -> Settings {
        Settings {
            timeout: c.webhook_timeout(),
            retry: backoff::Backoff {
                base: Duration::from_millis(c.webhook_retry_base_ms),
                cap: Duration::from_millis(c.webhook_retry_cap_ms),
            },
            max_attempts: c.webhook_max_attempts,
            breaker_failures: c.webhook_breaker_failures,
            breaker_cooldown: Duration::from_millis(c.webhook_breaker_cooldown_ms),
            concurrency: c.webhook_concurrency,
            poll: c.webhook_poll(),
        }
    }

    /// How long a claimed attempt is this sender's: the timeout and a
    /// margin for recording the result. Another sender may take the
    /// delivery after that (this one died).
    pub fn lease(&self) -> Duration {
        self.timeout + Duration::from_secs(30)
    }
}

/// The webhook client: hyper on rustls (ring, the platform's roots) over
/// a connector whose resolver drops non-public addresses. It follows no
/// redirect (hyper never does) and reads no proxy from the environment.
pub type HttpClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<
        hyper_util::client::legacy::connect::HttpConnector<url::PublicResolver>,
    >,
    http_body_util::Full<bytes::Bytes>,
>;

/// The webhook service: the sealing key, the URL rules, the HTTP client.
pub struct Webhooks {
    pub sealer: Sealer,
    pub urls: url::UrlPolicy,
    pub settings: Settings,
    pub http: HttpClient,
    /// Wakes this instance's sender (a redelivery asked for here).
    pub wake: tokio::sync::Notify,
}

impl std::fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhooks")
            .field("urls", &self.urls)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Webhooks {
    /// `None` without `webhook_key_file` (webhooks off).
    pub fn from_config(config: &Config) -> anyhow::Result<Option<Arc<Webhooks>>> {
        let Some(key_file) = &config.webhook_key_file else {
            return Ok(None);
        };
        let sealer = Sealer::from_file(key_file).context("webhook_key_file")?;
        let settings = Settings::from_config(config);
        let urls = url::UrlPolicy {
            allow_private: config.allow_private_webhooks,
        };
        let mut connector = hyper_util::client::legacy::connect::HttpConnector::new_with_resolver(
            url::PublicResolver {
                allow_private: config.allow_private_webhooks,
            },
        );
        connector.enforce_http(false);
        connector.set_connect_timeout(Some(settings.timeout));
        let tls = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_platform_verifier(rustls::crypto::ring::default_provider())
            .context("the platform's TLS roots for webhooks")?;
        // Plain http only where the URL rules let it through (development).
        let tls = if urls.allow_private {
            tls.https_or_http()
        } else {
            tls.https_only()
        };
        let http =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .pool_timer(hyper_util::rt::TokioTimer::new())
                .pool_idle_timeout(Duration::from_secs(30))
                .build(tls.enable_http1().wrap_connector(connector));
        Ok(Some(Arc::new(Webhooks {
            sealer,
            urls,
            settings,
            http,
            wake: tokio::sync::Notify::new(),
        })))
    }
}
