//! The control plane of the link shortener: the REST API on PostgreSQL, the
//! change stream to the engines, snapshot builds and pushes, and click stats.
//!
//! # The model
//!
//! **PostgreSQL is the truth.** Every link write (create, update, disable,
//! delete) happens in one transaction with an audit entry and a row in
//! `link_outbox` carrying the `snapshots::delta::LinkDelta` to publish. The
//! outbox sequence comes from a one-row counter
//! (`UPDATE outbox_counter SET seq = seq + 1 RETURNING seq`) taken last in the
//! transaction; its row lock is held until commit, so **sequence order is
//! commit order** with no gaps. A PostgreSQL `SEQUENCE` would not do: its
//! numbers are handed out at `nextval`, and a reader that sees seq 8 committed
//! could still later see seq 7 commit, which a relay or a snapshot would skip
//! forever. The price is that link writes commit one at a time, which a
//! control plane's write rate affords; the cost shows up as
//! head-of-line waiting when one commit's WAL flush is slow (README, "Measured").
//!
//! **Engines converge through two paths.** The [`relay`] publishes outbox rows
//! in order to JetStream (`LINKS` / `links.changes`); engines apply every
//! delta above their snapshot's sequence. The [`snapshot`] service builds a
//! full snapshot in one `REPEATABLE READ` transaction that reads the counter
//! and the live links together, so the file is exactly the state at its
//! sequence; it pushes the file to each engine's admin port and a reconcile
//! loop re-pushes to engines that report an older one (or none) on `/readyz`.
//!
//! **The API** ([`app`]) is axum under `/v1`, JSON, with one error shape built
//! from [`error::ApiError`]. API keys ([`auth`]) are random 190-bit secrets of
//! which only a SHA-256 is stored; scopes `links:read`, `links:write`,
//! `stats:read`, `admin`; a key sees only its organization. Rate limits are
//! token buckets per key and per client IP ([`ratelimit`]).
//!
//! # Layout
//! - [`config`]: settings (TOML + flags), defaults, validation.
//! - [`server`]: connecting, migrating, starting the tasks and HTTP.
//! - [`app`]: state and router; health, readiness, metrics, OpenAPI.
//! - [`error`], [`extract`]: the error type and extractors that use it.
//! - [`auth`], [`keys`]: API keys, the `Auth` extractor, key management.
//! - [`links`]: link rows, input checks, transactional writes, handlers.
//! - [`codes`], [`target`]: short codes and target URL policy.
//! - [`idempotency`]: `Idempotency-Key` replays.
//! - [`relay`]: outbox → JetStream.
//! - [`snapshot`]: build, keep, push, reconcile.
//! - [`stats`]: ClickHouse queries and CSV/JSON export.
//! - [`qr`]: QR codes (SVG, PNG).
//! - [`admin`]: blocklist, disable, snapshots.
//! - [`metrics`], [`openapi`], [`ratelimit`].

pub mod admin;
pub mod app;
pub mod auth;
pub mod codes;
pub mod config;
pub mod error;
pub mod extract;
pub mod idempotency;
pub mod keys;
pub mod links;
pub mod metrics;
pub mod openapi;
pub mod qr;
pub mod ratelimit;
pub mod relay;
pub mod server;
pub mod snapshot;
pub mod stats;
pub mod target;
