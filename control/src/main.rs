//! `control`: the control plane service and its bootstrap commands.

use clap::{Args, Parser, Subcommand};
use control::config::Config;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "control",
    version,
    about = "The link shortener's control plane"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the REST API, the change relay and the snapshot tasks.
    Serve(Box<ServeArgs>),
    /// API key bootstrap.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// User accounts: the first user, operators, passwords.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// Import links from another shortener's export (docs/IMPORT.md); run it again to resume.
    Import(ImportArgs),
    /// Write an organization's live links to standard output.
    Export(ExportArgs),
}

#[derive(Args, Debug)]
struct ImportArgs {
    /// The export's format (required): bitly, yourls, shlink, kutt or csv.
    #[arg(long = "from", value_enum)]
    format: control::import::formats::Format,
    /// The export file (required).
    file: PathBuf,
    /// The organization the links go to (required; it must exist).
    #[arg(long)]
    org: String,
    /// One of the organization's domains the links go on. Default: the default domain.
    #[arg(long)]
    domain: Option<String>,
    /// Public base of short links; targets on its host are refused. Default http://127.0.0.1:8080.
    #[arg(long)]
    short_base: Option<String>,
    /// Accept targets on loopback, private and link-local addresses. Default off.
    #[arg(long)]
    allow_private_targets: bool,
    /// Length of the random codes drawn for links without one. Default 7.
    #[arg(long)]
    code_length: Option<usize>,
    /// Lines per transaction. Default 5000.
    #[arg(long)]
    batch_size: Option<usize>,
    /// PostgreSQL URL (required; or the DATABASE_URL environment variable).
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
}

#[derive(Args, Debug)]
struct ExportArgs {
    /// The organization whose links to write (required).
    #[arg(long)]
    org: String,
    /// csv (the columns `import --from csv` reads) or jsonl (the API's link objects). Default csv.
    #[arg(long, value_enum, default_value = "csv")]
    format: control::import::export::ExportFormat,
    /// Public base of short links, for jsonl's short_url. Default http://127.0.0.1:8080.
    #[arg(long)]
    short_base: Option<String>,
    /// PostgreSQL URL (required; or the DATABASE_URL environment variable).
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
}

#[derive(Subcommand, Debug)]
enum UsersCommand {
    /// Create a user (the password is read from standard input or --password-file).
    Create(CreateUserArgs),
    /// Set a user's password and end all their sessions.
    SetPassword(SetPasswordArgs),
}

#[derive(Args, Debug)]
struct CreateUserArgs {
    /// The user's e-mail address (required).
    #[arg(long)]
    email: String,
    /// The user may act as the service's operator (/v1/admin/*). Default off.
    #[arg(long)]
    operator: bool,
    /// An organization to make the user a member of (created if missing). Default: none.
    #[arg(long, requires = "role")]
    org: Option<String>,
    /// The user's role in --org: owner, admin, editor or viewer. Default: none; required with --org.
    #[arg(long, requires = "org", value_parser = parse_role)]
    role: Option<control::auth::Role>,
    /// File holding the password (one line). Default: none, read standard input.
    #[arg(long)]
    password_file: Option<PathBuf>,
    /// PostgreSQL URL (required; or the DATABASE_URL environment variable).
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
}

#[derive(Args, Debug)]
struct SetPasswordArgs {
    /// The user's e-mail address (required).
    #[arg(long)]
    email: String,
    /// File holding the new password (one line). Default: none, read standard input.
    #[arg(long)]
    password_file: Option<PathBuf>,
    /// PostgreSQL URL (required; or the DATABASE_URL environment variable).
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
}

fn parse_role(s: &str) -> Result<control::auth::Role, String> {
    control::auth::Role::parse(s)
        .ok_or_else(|| format!("{s:?} is not a role: owner, admin, editor or viewer"))
}

#[derive(Subcommand, Debug)]
enum KeysCommand {
    /// Create a key and print it once: an organization's key (the
    /// organization is created if needed) or, with --operator, an operator key.
    Create(CreateKeyArgs),
    /// Revoke a key (an operator key, or any other) by its visible prefix.
    Revoke {
        /// The key's visible prefix, `sk_` and 8 characters (required).
        #[arg(long)]
        prefix: String,
        /// PostgreSQL URL (required; or the DATABASE_URL environment variable).
        #[arg(long, env = "DATABASE_URL")]
        database_url: String,
    },
}

#[derive(Args, Debug)]
#[group(required = true, multiple = false, id = "principal")]
struct Principal {
    /// The organization the key belongs to (created if missing). Default: none; this or --operator is required.
    #[arg(long)]
    org: Option<String>,
    /// Make an operator key: the global routes (/v1/admin/*), no organization. Default off.
    #[arg(long)]
    operator: bool,
}

#[derive(Args, Debug)]
struct CreateKeyArgs {
    #[command(flatten)]
    principal: Principal,
    /// Comma-separated scopes of an organization key: links:read,
    /// links:write, stats:read, admin. Default `admin`. Ignored with --operator.
    #[arg(long, value_delimiter = ',', default_value = "admin")]
    scopes: Vec<String>,
    /// A name for the key, shown in listings. Default `bootstrap`.
    #[arg(long, default_value = "bootstrap")]
    name: String,
    /// PostgreSQL URL (required; or the DATABASE_URL environment variable).
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
}

/// Flags override the TOML file, which overrides the defaults; every flag
/// is the TOML key of the same name with `-` for `_`.
#[derive(Args, Debug)]
struct ServeArgs {
    /// TOML config file with any of the settings below (control::config::Config). Default: none.
    #[arg(long)]
    config: Option<PathBuf>,
    /// REST API address; port 0 picks a free one. Default 127.0.0.1:8000.
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// PostgreSQL URL. Default postgres://postgres@127.0.0.1:5432/shortener.
    #[arg(long, env = "DATABASE_URL")]
    database_url: Option<String>,
    /// NATS URL for the change relay, or several comma-separated. Default: none (no relay; the outbox keeps every change).
    #[arg(long)]
    nats: Option<String>,
    /// NATS user of this role (the deploy's is `control`). Default: none (anonymous).
    #[arg(long)]
    nats_user: Option<String>,
    /// File holding the NATS user's password; NATS_PASSWORD is read without it. Default: none.
    #[arg(long)]
    nats_password_file: Option<PathBuf>,
    /// Ed25519 private key (PKCS#8 PEM) signing every published link change; required with --nats. Default: none.
    #[arg(long)]
    links_signing_key: Option<PathBuf>,
    /// Publish link changes unsigned (development only; engines must allow it too). Default off.
    #[arg(long)]
    allow_unsigned_links: bool,
    /// JetStream stream of link changes. Default LINKS.
    #[arg(long)]
    links_stream: Option<String>,
    /// Subject of that stream. Default links.changes.
    #[arg(long)]
    links_subject: Option<String>,
    /// Subject prefix engines ask for visit leases on. Default links.lease.
    #[arg(long)]
    lease_subject: Option<String>,
    /// Oldest change the stream keeps, seconds (at least 10 snapshot intervals). Default 604800 (7 days).
    #[arg(long)]
    links_stream_max_age_secs: Option<u64>,
    /// Most bytes the stream keeps. Default 1073741824 (1 GiB).
    #[arg(long)]
    links_stream_max_bytes: Option<i64>,
    /// Update an existing stream whose settings differ, instead of refusing it. Default off.
    #[arg(long)]
    links_stream_adopt: bool,
    /// Copies of the links stream a JetStream cluster keeps, 1 to 5 (3 on a three-node cluster). Default 1.
    #[arg(long)]
    links_stream_replicas: Option<usize>,
    /// ClickHouse HTTP URL for stats. Default: none (stats answer 503).
    #[arg(long)]
    clickhouse: Option<String>,
    /// ClickHouse database holding clicks. Default analytics.
    #[arg(long)]
    clickhouse_database: Option<String>,
    /// Public base of short links; targets on its host are refused. Default http://127.0.0.1:8080.
    #[arg(long)]
    short_base: Option<String>,
    /// Accept targets on loopback, private and link-local addresses. Default off.
    #[arg(long)]
    allow_private_targets: bool,
    /// The deployment's default domain (e.g. sho.rt; lowercase, punycode): where links without a domain live; nobody may claim it or its subdomains. Default: none (unnamed: engines answer any host name as the default domain).
    #[arg(long)]
    default_domain: Option<String>,
    /// What proves an organization may have a domain: dns-txt (a TXT record _links-verification.NAME holding the token), http (the token served through the engines) or both. Default dns-txt.
    #[arg(long, value_enum)]
    domain_verification: Option<control::config::DomainVerification>,
    /// DNS server (ADDR:PORT) for the TXT lookups. Default: none, the system's resolvers.
    #[arg(long)]
    dns_server: Option<std::net::SocketAddr>,
    /// Test/ops only: NAME=ADDR:PORT makes the domain verification fetch for NAME connect to ADDR:PORT (like curl's --connect-to); repeatable. Default: none (DNS).
    #[arg(long = "verify-resolve")]
    verify_resolve: Vec<control::config::ResolveOverride>,
    /// Engine admin address (host:port) snapshots are pushed to; repeatable. Default: none.
    #[arg(long = "engine-admin")]
    engine_admin: Vec<String>,
    /// Bearer token for the engines' PUT /snapshot. Default: none.
    #[arg(long, env = "ENGINE_ADMIN_TOKEN")]
    engine_admin_token: Option<String>,
    /// Directory of snapshot generations. Default ./snapshots.
    #[arg(long)]
    snapshot_dir: Option<PathBuf>,
    /// Seconds between scheduled snapshot builds (only when links changed). Default 300.
    #[arg(long)]
    snapshot_interval_secs: Option<u64>,
    /// Snapshot generations kept on disk. Default 5.
    #[arg(long)]
    snapshot_keep: Option<usize>,
    /// Seconds between checks of the engines' /readyz. Default 2.
    #[arg(long)]
    reconcile_interval_secs: Option<u64>,
    /// Milliseconds between a non-leader's tries to take the leadership (relay, snapshots, reconcile, purge, renewals), and between the leader's checks that it still holds it. Default 1000.
    #[arg(long)]
    leader_retry_ms: Option<u64>,
    /// Serve the API only, never take the leadership (instances beside ones that run the relay and snapshots). Default off.
    #[arg(long)]
    api_only: bool,
    /// Seconds after deletion (or expiry, for links without an expired URL) that a link is purged everywhere. Default 2592000 (30 days).
    #[arg(long)]
    purge_after_secs: Option<u64>,
    /// Seconds between purge rounds. Default 3600.
    #[arg(long)]
    purge_interval_secs: Option<u64>,
    /// Seconds a link's click total read from ClickHouse is cached (how stale `clicks` may be). Default 60.
    #[arg(long)]
    click_totals_ttl_secs: Option<u64>,
    /// Directory of export files (shared storage when several instances serve downloads). Default ./exports.
    #[arg(long)]
    export_dir: Option<PathBuf>,
    /// Seconds an export's file is kept once done. Default 86400 (a day).
    #[arg(long)]
    export_ttl_secs: Option<u64>,
    /// Exports an organization may have queued or running at once. Default 2.
    #[arg(long)]
    export_max_active: Option<u32>,
    /// Longest range of one export, days. Default 366.
    #[arg(long)]
    export_max_range_days: Option<u64>,
    /// Export jobs this instance runs at once (0: none here). Default 1.
    #[arg(long)]
    export_workers: Option<usize>,
    /// Length of random short codes, 5 to 32. Default 7.
    #[arg(long)]
    code_length: Option<usize>,
    /// Largest request body in bytes (413 beyond). Default 1048576 (1 MiB).
    #[arg(long)]
    max_body_bytes: Option<usize>,
    /// Sustained requests per second per API key. Default 50.
    #[arg(long)]
    rate_per_key: Option<f64>,
    /// Burst per API key. Default 100.
    #[arg(long)]
    burst_per_key: Option<u32>,
    /// Sustained requests per second per client IP. Default 100.
    #[arg(long)]
    rate_per_ip: Option<f64>,
    /// Burst per client IP. Default 200.
    #[arg(long)]
    burst_per_ip: Option<u32>,
    // accounts
    /// Public URL of this API as browsers reach it: mail links, the origin writes must come from, Secure cookies when https (http only on loopback). Default http://127.0.0.1:8000.
    #[arg(long)]
    public_url: Option<String>,
    /// Seconds without a request after which a session ends. Default 43200 (12 h).
    #[arg(long)]
    session_idle_secs: Option<u64>,
    /// Seconds after sign-in after which a session ends. Default 604800 (7 days).
    #[arg(long)]
    session_absolute_secs: Option<u64>,
    /// Sign-in attempts per second per client IP. Default 0.2.
    #[arg(long)]
    login_rate_per_ip: Option<f64>,
    /// Sign-in attempts per client IP, burst. Default 20.
    #[arg(long)]
    login_burst_per_ip: Option<u32>,
    /// Sign-in attempts per second per e-mail address. Default 0.0167 (one a minute).
    #[arg(long)]
    login_rate_per_email: Option<f64>,
    /// Sign-in attempts per e-mail address, burst. Default 10.
    #[arg(long)]
    login_burst_per_email: Option<u32>,
    /// Origin allowed to call with credentials from a browser (CORS); repeatable. Default: none.
    #[arg(long = "cors-origin")]
    cors_origins: Vec<String>,
    /// SMTP server for invitation and reset mails (smtps://user@host:465, smtp://user@host:587?tls=required). Default: none, mails go to the log.
    #[arg(long)]
    smtp_url: Option<String>,
    /// File holding the SMTP password; SMTP_PASSWORD is read without it. Default: none.
    #[arg(long)]
    smtp_password_file: Option<PathBuf>,
    /// Sender of those mails. Default "shortener <no-reply@localhost>".
    #[arg(long)]
    mail_from: Option<String>,
    /// ACME directory URL to order domains' certificates from (HTTP-01). Default: none, ACME off.
    #[arg(long)]
    acme_directory: Option<String>,
    /// Contact of the ACME account (mailto:ops@example.com); repeatable. Default: none.
    #[arg(long = "acme-contact")]
    acme_contact: Vec<String>,
    /// PEM root the ACME directory's https is checked against instead of the system's (a test CA such as pebble). Default: none.
    #[arg(long)]
    acme_ca_root: Option<PathBuf>,
    /// File with 64 hex digits (mode 0600; openssl rand -hex 32) sealing the ACME account and certificate keys in PostgreSQL; required with --acme-directory. Default: none.
    #[arg(long)]
    acme_key_file: Option<PathBuf>,
    /// Seconds between looks for certificates due. Default 60.
    #[arg(long)]
    acme_check_interval_secs: Option<u64>,
    /// Seconds before the first retry of a failed order, doubling per failure up to a day. Default 300.
    #[arg(long)]
    acme_retry_base_secs: Option<u64>,
    /// Seconds to wait for every engine to serve a challenge answer. Default 60.
    #[arg(long)]
    acme_publish_timeout_secs: Option<u64>,
    /// File with 64 hex digits (mode 0600; openssl rand -hex 32) sealing webhook signing secrets in PostgreSQL. Default: none, webhooks off (their routes answer 503).
    #[arg(long)]
    webhook_key_file: Option<PathBuf>,
    /// Accept webhook URLs over plain http and on loopback/private addresses (development, tests). Default off.
    #[arg(long)]
    allow_private_webhooks: bool,
    /// Milliseconds a webhook delivery may take. Default 10000.
    #[arg(long)]
    webhook_timeout_ms: Option<u64>,
    /// Backoff before a delivery's second attempt, ms, doubling per retry (full jitter). Default 30000.
    #[arg(long)]
    webhook_retry_base_ms: Option<u64>,
    /// Longest backoff between webhook attempts, ms. Default 1800000.
    #[arg(long)]
    webhook_retry_cap_ms: Option<u64>,
    /// Attempts before a webhook delivery becomes a dead letter. Default 8.
    #[arg(long)]
    webhook_max_attempts: Option<u32>,
    /// Failures in a row that open an endpoint's circuit breaker. Default 5.
    #[arg(long)]
    webhook_breaker_failures: Option<u32>,
    /// Milliseconds an open breaker waits before a probe delivery. Default 60000.
    #[arg(long)]
    webhook_breaker_cooldown_ms: Option<u64>,
    /// Webhook deliveries this instance sends at once (0: none here). Default 8.
    #[arg(long)]
    webhook_concurrency: Option<usize>,
    /// Milliseconds between looks for due webhook deliveries. Default 1000.
    #[arg(long)]
    webhook_poll_ms: Option<u64>,
    /// The analytics sidecar's --enriched-subject (e.g. enriched.clicks): control keeps a JetStream stream on <prefix>.> and sends link.clicked webhooks from it; needs --nats and --webhook-key-file. Default: none, link.clicked not sent.
    #[arg(long)]
    enriched_subject: Option<String>,
    /// The stream control keeps the enriched clicks in. Default ENRICHED.
    #[arg(long)]
    enriched_stream: Option<String>,
    /// Oldest click that stream keeps, seconds. Default 86400 (a day).
    #[arg(long)]
    enriched_stream_max_age_secs: Option<u64>,
    /// Most bytes that stream keeps. Default 1073741824 (1 GiB).
    #[arg(long)]
    enriched_stream_max_bytes: Option<i64>,
    /// Most clicks in one link.clicked event. Default 100.
    #[arg(long)]
    webhook_click_batch: Option<usize>,
    /// Longest a click waits for its link.clicked event to fill, ms. Default 1000.
    #[arg(long)]
    webhook_click_wait_ms: Option<u64>,
    /// Seconds delivered webhook deliveries and finished events are kept (pending ones and dead letters stay). Default 604800 (7 days).
    #[arg(long)]
    webhook_retention_secs: Option<u64>,
    /// Seconds between pruning rounds of old webhook rows (the leader's). Default 3600.
    #[arg(long)]
    webhook_prune_interval_secs: Option<u64>,
}

impl ServeArgs {
    fn into_config(self) -> Result<Config, servicekit::ConfigError> {
        servicekit::config::load(self.config.as_deref(), |c: &mut Config| {
            servicekit::override_fields!(self => c;
                listen, database_url, links_stream, links_subject, lease_subject,
                links_stream_max_age_secs, links_stream_max_bytes, links_stream_replicas,
                clickhouse_database,
                short_base, snapshot_dir, snapshot_interval_secs, snapshot_keep,
                reconcile_interval_secs, leader_retry_ms, code_length, purge_after_secs, purge_interval_secs,
                click_totals_ttl_secs, export_dir, export_ttl_secs, export_max_active,
                export_max_range_days, export_workers, max_body_bytes, rate_per_key,
                burst_per_key, rate_per_ip, burst_per_ip,
                public_url, domain_verification, session_idle_secs, session_absolute_secs, login_rate_per_ip,
                login_burst_per_ip, login_rate_per_email, login_burst_per_email, mail_from,
                acme_check_interval_secs, acme_retry_base_secs, acme_publish_timeout_secs,
                webhook_timeout_ms, webhook_retry_base_ms, webhook_retry_cap_ms,
                webhook_max_attempts, webhook_breaker_failures, webhook_breaker_cooldown_ms,
                webhook_concurrency, webhook_poll_ms, enriched_stream,
                enriched_stream_max_age_secs, enriched_stream_max_bytes, webhook_click_batch,
                webhook_click_wait_ms, webhook_retention_secs, webhook_prune_interval_secs;
                optional: nats, nats_user, nats_password_file, links_signing_key, clickhouse,
                engine_admin_token, smtp_url, smtp_password_file, default_domain, acme_directory,
                dns_server,
                acme_ca_root, acme_key_file, webhook_key_file, enriched_subject);
            // Switches only switch on: the file's `true` stays without the flag.
            c.links_stream_adopt |= self.links_stream_adopt;
            c.api_only |= self.api_only;
            c.allow_private_targets |= self.allow_private_targets;
            c.allow_unsigned_links |= self.allow_unsigned_links;
            c.allow_private_webhooks |= self.allow_private_webhooks;
            if !self.engine_admin.is_empty() {
                c.engine_admin = self.engine_admin.clone();
            }
            if !self.cors_origins.is_empty() {
                c.cors_origins = self.cors_origins.clone();
            }
            if !self.verify_resolve.is_empty() {
                c.verify_resolve = self.verify_resolve.clone();
            }
            if !self.acme_contact.is_empty() {
                c.acme_contact = self.acme_contact.clone();
            }
        })
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    servicekit::logging::init();
    match Cli::parse().command {
        Command::Serve(args) => {
            let config = args.into_config()?;
            let running = control::server::start(config).await?;
            let mut fields = serde_json::Map::new();
            fields.insert("listen".into(), running.addr.to_string().into());
            servicekit::ready::announce(fields);
            tracing::info!(listen = %running.addr, "control serving");
            wait_for_stop_signal().await?;
            tracing::info!("shutting down");
            running.shutdown(std::time::Duration::from_secs(10)).await;
            Ok(())
        }
        Command::Keys {
            command: KeysCommand::Create(args),
        } => {
            let db = control::server::connect_db(&args.database_url).await?;
            let (org, secret) = match &args.principal.org {
                Some(org) => {
                    let (org_id, secret) =
                        control::keys::bootstrap_key(&db, org, &args.scopes, &args.name).await?;
                    tracing::info!(org, org_id, "key created");
                    (Some(org_id), secret)
                }
                None => (
                    None,
                    control::keys::bootstrap_operator_key(&db, &args.name).await?,
                ),
            };
            if org.is_none() {
                tracing::info!("operator key created");
            }
            println!("{secret}");
            Ok(())
        }
        Command::Keys {
            command:
                KeysCommand::Revoke {
                    prefix,
                    database_url,
                },
        } => {
            let db = control::server::connect_db(&database_url).await?;
            control::keys::revoke_by_prefix(&db, &prefix).await?;
            tracing::info!(prefix, "key revoked");
            Ok(())
        }
        Command::Users { command } => users(command).await,
        Command::Import(args) => import(args).await,
        Command::Export(args) => {
            let db = control::server::connect_db(&args.database_url).await?;
            let org_id = control::import::org_id(&db, &args.org).await?;
            let short_base = args
                .short_base
                .unwrap_or_else(|| Config::default().short_base);
            let n = control::import::export::export(
                &db,
                org_id,
                args.format,
                &short_base,
                std::io::stdout().lock(),
            )
            .await?;
            tracing::info!(org = args.org, links = n, "exported");
            Ok(())
        }
    }
}

/// `control import ...`: the report on standard output; exits non-zero when
/// the file stopped being readable.
async fn import(args: ImportArgs) -> anyhow::Result<()> {
    let db = control::server::connect_db(&args.database_url).await?;
    let mut opts = control::import::ImportOptions::new(args.format, args.file, &args.org);
    opts.domain = args.domain;
    opts.allow_private_targets = args.allow_private_targets;
    if let Some(b) = args.short_base {
        opts.short_base = b;
    }
    if let Some(n) = args.code_length {
        anyhow::ensure!((5..=32).contains(&n), "--code-length must be 5 to 32");
        opts.code_length = n;
    }
    if let Some(n) = args.batch_size {
        anyhow::ensure!(n > 0, "--batch-size must be at least 1");
        opts.batch_size = n;
    }
    let report = control::import::run(&db, &opts).await?;
    report.write_to(&mut std::io::stdout().lock())?;
    if let Some(e) = report.stopped {
        anyhow::bail!("the file is not a {} export from {e}", opts.format.name());
    }
    Ok(())
}

/// `control users ...`.
async fn users(command: UsersCommand) -> anyhow::Result<()> {
    use control::accounts::password::Passwords;
    use control::accounts::users;
    let passwords = Passwords::new(Default::default());
    match command {
        UsersCommand::Create(args) => {
            let password = users::read_password(args.password_file.as_deref())?;
            let db = control::server::connect_db(&args.database_url).await?;
            let org = args.org.as_deref().zip(args.role);
            let id = users::create_user(
                &db,
                &passwords,
                users::NewUser {
                    email: &args.email,
                    password: &password,
                    operator: args.operator,
                    org,
                },
            )
            .await?;
            tracing::info!(user_id = id, operator = args.operator, "user created");
            println!("{id}");
        }
        UsersCommand::SetPassword(args) => {
            let password = users::read_password(args.password_file.as_deref())?;
            let db = control::server::connect_db(&args.database_url).await?;
            users::set_password(&db, &passwords, &args.email, &password).await?;
            tracing::info!(
                email = args.email,
                "password set; the user's sessions ended"
            );
        }
    }
    Ok(())
}

/// SIGINT or SIGTERM (what systemd sends).
async fn wait_for_stop_signal() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn flags_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("control.toml");
        std::fs::write(
            &file,
            "code_length = 9\nshort_base = \"https://file.example\"\nengine_admin = [\"a:1\"]\n\
             allow_private_targets = true\n",
        )
        .unwrap();
        let cli = Cli::parse_from([
            "control",
            "serve",
            "--config",
            file.to_str().unwrap(),
            "--short-base",
            "https://flag.example",
            "--engine-admin",
            "b:2",
            "--engine-admin",
            "c:3",
            "--max-body-bytes",
            "4096",
        ]);
        let Command::Serve(args) = cli.command else {
            panic!("serve")
        };
        let c = args.into_config().unwrap();
        assert_eq!(c.code_length, 9, "from the file");
        assert_eq!(c.short_base, "https://flag.example", "the flag wins");
        assert_eq!(c.engine_admin, vec!["b:2".to_string(), "c:3".into()]);
        assert_eq!(c.max_body_bytes, 4096);
        assert!(c.allow_private_targets, "the file's switch stays on");
        assert_eq!(c.listen.to_string(), "127.0.0.1:8000", "the default");
    }

    #[test]
    fn invalid_settings_are_refused_before_start() {
        let cli = Cli::parse_from(["control", "serve", "--code-length", "2"]);
        let Command::Serve(args) = cli.command else {
            panic!("serve")
        };
        let err = args.into_config().unwrap_err();
        assert_eq!(err.field(), Some("code_length"), "{err}");
    }

    /// Every flag of every subcommand says its default (or that it is required).
    #[test]
    fn every_flag_names_its_default() {
        let mut cli = Cli::command();
        cli.build();
        let mut checked = 0;
        for sub in cli.get_subcommands() {
            let mut commands: Vec<&clap::Command> = vec![sub];
            commands.extend(sub.get_subcommands());
            for command in commands {
                for arg in command.get_arguments() {
                    if matches!(arg.get_id().as_str(), "help" | "version") {
                        continue;
                    }
                    let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
                    assert!(
                        help.contains("Default") || help.contains("required"),
                        "{} --{}: {help:?}",
                        command.get_name(),
                        arg.get_id()
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked > 25, "{checked}");
    }

    #[test]
    fn users_create_takes_an_org_with_a_role() {
        let url = ["--database-url", "postgres://x"];
        let parse = |args: &[&str]| {
            let mut all = vec!["control", "users", "create", "--email", "a@b.example"];
            all.extend_from_slice(args);
            all.extend_from_slice(&url);
            Cli::try_parse_from(all)
        };
        assert!(parse(&[]).is_ok());
        assert!(parse(&["--operator"]).is_ok());
        assert!(parse(&["--org", "acme", "--role", "owner"]).is_ok());
        assert!(parse(&["--org", "acme"]).is_err(), "a role is required");
        assert!(parse(&["--role", "owner"]).is_err(), "an org is required");
        assert!(parse(&["--org", "acme", "--role", "root"]).is_err());
    }

    #[test]
    fn a_key_is_for_an_org_or_the_operator() {
        let url = ["--database-url", "postgres://x"];
        assert!(Cli::try_parse_from(["control", "keys", "create", url[0], url[1]]).is_err());
        assert!(
            Cli::try_parse_from([
                "control",
                "keys",
                "create",
                "--org",
                "a",
                "--operator",
                url[0],
                url[1]
            ])
            .is_err()
        );
        assert!(
            Cli::try_parse_from(["control", "keys", "create", "--operator", url[0], url[1]])
                .is_ok()
        );
    }
}
