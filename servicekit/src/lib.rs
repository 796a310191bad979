//! What the three service processes (`engine`, `control`, `analytics`) do the
//! same way, written once.
//!
//! # The model
//!
//! Each service is one binary with one settings struct. The struct is a serde
//! type with `#[serde(default, deny_unknown_fields)]`, every field documented
//! with its default, and a `Default` impl that *is* those defaults. A service
//! gets its settings in exactly one order, by [`config::load`]:
//!
//! 1. the defaults;
//! 2. an optional TOML file, where any key may be set and an unknown key is an
//!    error that names the file (a typo never becomes a silently ignored
//!    setting);
//! 3. command-line flags, each an `Option` that overrides the file when given
//!    (the [`override_fields!`] macro writes the assignments);
//! 4. [`config::ServiceConfig::validate`], once, before anything connects or
//!    binds, with errors that name the field ([`config::ConfigError`]).
//!
//! Beside it: one wall clock ([`clock`]) for every timestamp that crosses a
//! process, one logging set-up ([`logging`]), one way to reach NATS as the
//! process's role ([`nats`]), and one readiness line ([`ready`]), the JSON
//! line on stdout that scripts and tests wait for.
//!
//! Why a crate and not a copy in each service: the three services must agree
//! on these (a test harness starts all three the same way, an operator
//! configures all three the same way), and the design keeps the services
//! independent of each other, so what they share lives below them, like
//! `snapshots` does for the records they exchange.
//!
//! # Layout
//! - [`config`]: the loader, the service trait, the error type.
//! - [`clock`]: Unix time in milliseconds and seconds.
//! - [`logging`]: `tracing` to stderr, filtered by `RUST_LOG`.
//! - [`nats`]: the NATS servers and this process's role credentials.
//! - [`ready`]: the `{"event":"ready",...}` line.

pub mod clock;
pub mod config;
pub mod logging;
pub mod nats;
pub mod ready;

pub use config::{ConfigError, ServiceConfig};
