//! `control`: the control plane service and its bootstrap commands.

use clap::{Args, Parser, Subcommand};
use control::config::Config;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(name = "control", about = "The link shortener's control plane")]
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
}

#[derive(Subcommand, Debug)]
enum KeysCommand {
    /// Create an organization (if needed) and a key in it; prints the key once.
    Create {
        #[arg(long)]
        org: String,
        /// Comma-separated: links:read, links:write, stats:read, admin.
        #[arg(long, value_delimiter = ',', default_value = "admin")]
        scopes: Vec<String>,
        #[arg(long, default_value = "bootstrap")]
        name: String,
        #[arg(long, env = "DATABASE_URL")]
        database_url: String,
    },
}

/// Flags override the TOML file; both are optional.
#[derive(Args, Debug)]
struct ServeArgs {
    /// TOML config file (see control::config::Config for the fields).
    #[arg(long)]
    config: Option<PathBuf>,
    #[arg(long)]
    listen: Option<SocketAddr>,
    #[arg(long, env = "DATABASE_URL")]
    database_url: Option<String>,
    #[arg(long)]
    nats: Option<String>,
    #[arg(long)]
    links_stream: Option<String>,
    #[arg(long)]
    links_subject: Option<String>,
    #[arg(long)]
    clickhouse: Option<String>,
    #[arg(long)]
    clickhouse_database: Option<String>,
    #[arg(long)]
    short_base: Option<String>,
    /// Engine admin address (host:port); repeatable.
    #[arg(long = "engine-admin")]
    engine_admin: Vec<String>,
    /// Bearer token for the engines' PUT /snapshot.
    #[arg(long, env = "ENGINE_ADMIN_TOKEN")]
    engine_admin_token: Option<String>,
    #[arg(long)]
    snapshot_dir: Option<PathBuf>,
    #[arg(long)]
    snapshot_interval_secs: Option<u64>,
    #[arg(long)]
    reconcile_interval_secs: Option<u64>,
    #[arg(long)]
    code_length: Option<usize>,
    #[arg(long)]
    rate_per_key: Option<f64>,
    #[arg(long)]
    burst_per_key: Option<u32>,
    #[arg(long)]
    rate_per_ip: Option<f64>,
    #[arg(long)]
    burst_per_ip: Option<u32>,
}

impl ServeArgs {
    fn into_config(self) -> anyhow::Result<Config> {
        let mut c = match &self.config {
            Some(path) => Config::from_toml_file(path)?,
            None => Config::default(),
        };
        macro_rules! set {
            ($($field:ident),*) => { $( if let Some(v) = self.$field { c.$field = v; } )* };
        }
        set!(
            listen,
            database_url,
            links_stream,
            links_subject,
            clickhouse_database,
            short_base,
            snapshot_dir,
            snapshot_interval_secs,
            reconcile_interval_secs,
            code_length,
            rate_per_key,
            burst_per_key,
            rate_per_ip,
            burst_per_ip
        );
        if self.nats.is_some() {
            c.nats = self.nats;
        }
        if self.engine_admin_token.is_some() {
            c.engine_admin_token = self.engine_admin_token;
        }
        if self.clickhouse.is_some() {
            c.clickhouse = self.clickhouse;
        }
        if !self.engine_admin.is_empty() {
            c.engine_admin = self.engine_admin;
        }
        c.validate()?;
        Ok(c)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .init();
    match Cli::parse().command {
        Command::Serve(args) => {
            let config = args.into_config()?;
            let running = control::server::start(config).await?;
            let line = serde_json::json!({ "event": "ready", "listen": running.addr.to_string() });
            let mut out = std::io::stdout().lock();
            writeln!(out, "{line}")?;
            out.flush()?;
            drop(out);
            tracing::info!(listen = %running.addr, "control serving");
            wait_for_stop_signal().await?;
            tracing::info!("shutting down");
            running.shutdown(std::time::Duration::from_secs(10)).await;
            Ok(())
        }
        Command::Keys {
            command:
                KeysCommand::Create {
                    org,
                    scopes,
                    name,
                    database_url,
                },
        } => {
            let db = control::server::connect_db(&database_url).await?;
            let (org_id, secret) = control::keys::bootstrap_key(&db, &org, &scopes, &name).await?;
            tracing::info!(org, org_id, "key created");
            println!("{secret}");
            Ok(())
        }
    }
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

    #[test]
    fn flags_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("control.toml");
        std::fs::write(
            &file,
            "code_length = 9\nshort_base = \"https://file.example\"\nengine_admin = [\"a:1\"]\n",
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
        ]);
        let Command::Serve(args) = cli.command else {
            panic!("serve")
        };
        let c = args.into_config().unwrap();
        assert_eq!(c.code_length, 9, "from the file");
        assert_eq!(c.short_base, "https://flag.example", "the flag wins");
        assert_eq!(c.engine_admin, vec!["b:2".to_string(), "c:3".into()]);
        assert_eq!(c.listen.to_string(), "127.0.0.1:8000", "the default");
    }

    #[test]
    fn invalid_settings_are_refused_before_start() {
        let cli = Cli::parse_from(["control", "serve", "--code-length", "2"]);
        let Command::Serve(args) = cli.command else {
            panic!("serve")
        };
        let err = args.into_config().unwrap_err().to_string();
        assert!(err.contains("code_length 2"), "{err}");
    }
}
