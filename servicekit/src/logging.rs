//! Logging: `tracing` to stderr, level from `RUST_LOG` (default `info`).
//!
//! Stdout is reserved for the readiness line ([`crate::ready`]) and, in CLI
//! subcommands, for the command's own output, so logs never mix with either.

/// Installs the subscriber. Call once, first thing in `main`.
pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .init();
}
