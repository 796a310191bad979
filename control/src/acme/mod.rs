//! Certificates by ACME: control orders, renews and ships the TLS
//! certificates of the domains that want https.
//!
//! The model, end to end:
//! - **One ACME account per deployment** (per CA directory), made on first
//!   use and kept in `acme_accounts`, its key sealed ([`account`], [`seal`]).
//! - **A domain wants https** once its organization's admin (or the
//!   operator) asks: `POST /v1/domains/{name}/certificate` ([`api`]) makes
//!   its `certificates` row due now. Only verified, live domains are ever
//!   ordered for.
//! - **One renewal task** ([`renewal`]) takes due rows in order: a request,
//!   a certificate 2/3 into its lifetime, a retry after a failure (backoff
//!   doubling from `acme_retry_base_secs` to a day). Each order ([`issue`])
//!   answers the CA's **HTTP-01** challenge through the engines: the key
//!   authorization becomes a well-known answer
//!   (`http://NAME/.well-known/acme-challenge/TOKEN`), written to the outbox
//!   as a signed change like any link change ([`publish`]); control waits
//!   until every engine's `/readyz` shows that sequence applied, tells the CA
//!   to validate, finalizes with a fresh ECDSA P-256 key, stores chain and
//!   sealed key ([`store`]), and removes the answer again, success or not.
//!   A failure is recorded on the row (`last_error`, shown by the API) and
//!   retried later; it never stops the task.
//! - **Shipping** ([`push`]): every engine gets `PUT /certs/NAME` (chain,
//!   then key; the engines' admin token) on issue and renewal, and again
//!   whenever a reconcile round sees an engine new, back after being
//!   unreachable, or restarted (its snapshot's load time changed).
//!
//! The renewal task runs on the leader only (`crate::leader`), so several
//! control instances do not order for the same domain at once. Private keys are never logged and never in an API answer.

pub mod account;
pub mod api;
pub mod issue;
pub mod publish;
pub mod push;
pub mod renewal;
pub mod seal;
pub mod store;

use crate::config::Config;
use anyhow::Context as _;
use seal::Sealer;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;

/// The ACME settings and shared parts, present when `acme_directory` is set.
pub struct Acme {
    pub db: PgPool,
    pub directory: String,
    pub contact: Vec<String>,
    pub ca_root: Option<std::path::PathBuf>,
    pub sealer: Sealer,
    pub engines: push::Engines,
    pub check_interval: Duration,
    pub retry_base: Duration,
    pub publish_timeout: Duration,
    /// Wakes the renewal task (a request over the API).
    pub wake: tokio::sync::Notify,
    /// The account, once loaded or created.
    account: tokio::sync::OnceCell<instant_acme::Account>,
}

impl std::fmt::Debug for Acme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acme")
            .field("directory", &self.directory)
            .field("engines", &self.engines.addrs())
            .field("account_loaded", &self.account.initialized())
            .finish_non_exhaustive()
    }
}

impl Acme {
    /// `None` when ACME is off; an error when the key file cannot be used.
    pub fn from_config(db: PgPool, config: &Config) -> anyhow::Result<Option<Arc<Acme>>> {
        let Some(directory) = &config.acme_directory else {
            return Ok(None);
        };
        let key_file = config
            .acme_key_file
            .as_deref()
            .context("acme_key_file is required with acme_directory")?;
        let sealer = Sealer::from_file(key_file)?;
        // instant-acme builds its rustls client with the process's provider;
        // a workspace build enables both of rustls's, so name control's.
        let _ = rustls::crypto::ring::default_provider().install_default();
        Ok(Some(Arc::new(Acme {
            db,
            directory: directory.clone(),
            contact: config.acme_contact.clone(),
            ca_root: config.acme_ca_root.clone(),
            sealer,
            engines: push::Engines::new(
                config.engine_admin.clone(),
                config.engine_admin_token.clone(),
            ),
            check_interval: Duration::from_secs(config.acme_check_interval_secs),
            retry_base: Duration::from_secs(config.acme_retry_base_secs),
            publish_timeout: Duration::from_secs(config.acme_publish_timeout_secs),
            wake: tokio::sync::Notify::new(),
            account: tokio::sync::OnceCell::new(),
        })))
    }

    /// The deployment's account, loaded from PostgreSQL or created once.
    pub async fn account(&self) -> anyhow::Result<&instant_acme::Account> {
        self.account
            .get_or_try_init(|| account::load_or_create(self))
            .await
    }
}
