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
//! **The API** ([`router`]) is axum under `/v1`, JSON, with one error shape
//! built from [`error::ApiError`]; no input a client sends gives a 5xx (text
//! is checked before it reaches SQL, see [`text`]). API keys ([`auth`]) are
//! random 190-bit secrets of which only a SHA-256 is stored. A key stands for
//! a [`auth::Principal`]: a member of one organization with scopes
//! `links:read`, `links:write`, `stats:read`, `admin` (its own links, keys
//! and stats, nothing else), or the service's **operator** (the global
//! routes under `/v1/admin`: blocklist, any organization's links, snapshots,
//! organizations), made only with `control keys create --operator`. Rate
//! limits are token buckets per client IP and per verified key
//! ([`ratelimit`]).
//!
//! **People** ([`accounts`]) sign in with an e-mail and a password (argon2id,
//! m = 19 MiB, t = 2, p = 1, on the blocking pool) and get a session
//! cookie: 256 random bits of which only a SHA-256 is stored, `HttpOnly`,
//! `SameSite=Lax`, `Secure` whenever `public_url` is https (plain http is
//! accepted only on loopback). A session is a second source of the same
//! [`auth::Principal`]: a user's role in an organization (`owner`, `admin`,
//! `editor`, `viewer`) maps to the keys' scopes, so every handler's
//! `auth.org(scope)` serves both; a user with several organizations names one
//! with `X-Org`. Every cookie-authenticated write carries the session's own
//! CSRF token (stored with it server-side) and, when the browser says where
//! it comes from, an allowed `Origin`. Sign-in answers a wrong e-mail and a
//! wrong password alike, after the same argon2 work, behind token buckets
//! per IP and per address that refill. Invitations and password resets are
//! one-time tokens (hashed at rest) sent by a [`accounts::mailer::Mailer`];
//! the operator is a user flag set only on the command line. Every act,
//! sign-ins included, is in the audit log with the client's address, and
//! [`audit_log`] reads it back.
//!
//! # Layout
//! - [`config`]: settings (servicekit: defaults, TOML, flags), validation.
//! - [`server`]: connecting, migrating, starting the tasks and HTTP.
//! - [`state`]: what handlers share; [`router`]: every route and layer;
//!   [`middleware`]: metrics, rate limits, key verification.
//! - [`health`]: liveness, readiness, metrics, OpenAPI endpoints.
//! - [`error`], [`extract`], [`text`]: the error type, extractors that use
//!   it, and checks of free text.
//! - [`auth`], [`keys`]: principals, API keys, sessions, roles, CSRF, the
//!   `Auth` and `SignedIn` extractors, key management; [`audit`]: the audit
//!   log.
//! - [`links`]: link rows, input checks, transactional writes, handlers.
//! - [`codes`], [`target`]: short codes and target URL policy.
//! - [`cursor`]: the opaque page cursors of the listings.
//! - [`idempotency`]: `Idempotency-Key` replays.
//! - [`relay`]: outbox → JetStream, and the stream's settings.
//! - [`leases`]: visit leases for links with `max_visits`: the NATS
//!   responder every instance runs, each grant one transaction.
//! - [`leader`]: which of several instances on one database runs the
//!   relay, snapshot, reconcile, purge and renewal tasks (an advisory lock).
//! - [`snapshot`]: build, keep, push, reconcile; [`snapshot_builds`]:
//!   operator-requested builds, coalesced.
//! - [`stats`]: ClickHouse queries and CSV/JSON export; [`exports`]: click
//!   data exported as jobs (workers on every instance, files on disk).
//! - [`qr`]: QR codes (SVG, PNG).
//! - [`admin`]: the operator's routes.
//! - [`metrics`], [`openapi`], [`ratelimit`].
//! - [`accounts`]: users, sessions, members, invitations, password resets,
//!   mail; [`audit_log`]: `GET /v1/audit`; [`cors`]: allowed origins.
//! - [`acme`]: certificates by ACME for custom domains: the deployment's
//!   account, HTTP-01 answers through the outbox and the engines, the
//!   renewal task, pushes to the engines' `PUT /certs/NAME`, keys sealed at
//!   rest.
//! - [`import`]: `control import` from other shorteners' exports (batched,
//!   resumable) and `control export`.
//! - [`dashboard`]: the web dashboard at `/` (server-rendered pages over
//!   the same functions the API handlers call).
//! - [`webhooks`]: an organization's endpoints for link events: events and
//!   deliveries written with the link write, signed (HMAC-SHA256), retried
//!   with backoff and jitter, a circuit breaker per endpoint, dead letters.
//!
//! Modules depend one way: handlers on [`state`] and below, [`router`] on
//! handlers, [`server`] on [`router`]; no cycle.

pub mod acme;
pub mod admin;
pub mod audit;
pub mod auth;
pub mod codes;
pub mod config;
pub mod cursor;
pub mod domains;
pub mod error;
pub mod exports;
pub mod extract;
pub mod health;
pub mod idempotency;
pub mod import;
pub mod keys;
pub mod leader;
pub mod leases;
pub mod links;
pub mod metrics;
pub mod middleware;
pub mod openapi;
pub mod purge;
pub mod qr;
pub mod ratelimit;
pub mod relay;
pub mod router;
pub mod server;
pub mod snapshot;
pub mod snapshot_backoff;
pub mod snapshot_builds;
pub mod snapshot_pull;
pub mod state;
pub mod stats;
pub mod target;
pub mod text;
pub mod webhooks;

// accounts: users, sessions, members, the audit log's reader, CORS.
pub mod accounts;
pub mod audit_log;
pub mod cors;

// The web dashboard.
pub mod dashboard;
