//! Custom domains: an organization's own host names for its short links.
//!
//! The model, end to end:
//! - A domain row belongs to one organization (or, id 0, to the deployment:
//!   its default domain, named by `--default-domain`). Every link lives on
//!   one domain, and codes are unique per domain.
//! - `POST /v1/domains` claims a name: a pending row and a verification
//!   token, published to every engine as a well-known answer
//!   (`http://<name>/.well-known/links-domain-verification/<token>` answers
//!   the token). The organization points the name at the engines.
//! - `POST /v1/domains/{name}/verify` checks the proof the deployment asks
//!   for (`--domain-verification`): by default the token in a TXT record at
//!   `_links-verification.<name>` ([`dns`]: control of the zone), else or
//!   also the well-known URL answering the token ([`verify`]: the name routes
//!   here). Once proven, the domain is verified, and a domain change tells
//!   every engine to serve it. Until then its links exist but are not served.
//! - Settings (root and not-found redirects, plain-HTTP mode, HSTS) travel
//!   to engines as domain changes too, and every snapshot holds the domain
//!   table and the well-known answers, so an engine that restarts has them.
//!
//! Names are normalised once, here: IDNA to punycode, ASCII lowercase, no
//! trailing dot ([`input::normalize_name`]). A name another organization has
//! verified, or the deployment's own (the default domain and the short
//! base's host, and their subdomains), cannot be claimed.
//!
//! Layout: [`model`] (the row and its JSON), [`input`] (request bodies and
//! checks), [`store`] (writes with their outbox rows), [`verify`] (the
//! token fetch), [`dns`] (the TXT lookup), [`actions`] (who may do what,
//! and doing it: the one implementation the API and the dashboard call),
//! [`api`] (the JSON handlers around it).

pub mod actions;
pub mod api;
pub mod dns;
pub mod input;
pub mod model;
pub mod store;
pub mod verify;

/// The path prefix of verification tokens.
pub const VERIFICATION_PREFIX: &str = "/.well-known/links-domain-verification/";
