//! Who is calling, and what they may do.
//!
//! Three layers, one file each:
//! - [`credential`]: API keys. A key reads `sk_<8 base62>_<32 base62>`; the
//!   first part (`sk_XXXXXXXX`) is the visible prefix shown in listings, the
//!   whole key is hashed with SHA-256 and only the hash is stored. The 32
//!   secret characters carry ~190 bits of entropy, so a fast hash is safe:
//!   brute force is out of reach whatever the hash speed, while a slow
//!   password hash (argon2) would cost milliseconds of CPU on every request
//!   for no gain. Also the one parser of `Authorization` / `X-API-Key`, used
//!   by the extractor and the rate limiter alike.
//! - [`principal`]: what a verified credential stands for. A
//!   [`Principal`] is either the service's **operator** (the global routes
//!   under `/v1/admin`: blocklist, any organization's links, snapshots,
//!   organizations) or a member of **one organization** with [`Scope`]s (its
//!   own links, keys and stats). Neither can act as the other: tenant routes
//!   need an organization, global routes need the operator. An API key is
//!   the only source today; a user session with a role (owner, editor,
//!   viewer) becomes one more [`Credential`] mapping to an
//!   `Org { org_id, scopes }`, and nothing downstream changes.
//! - [`verify`]: looking a presented key up, and the [`Auth`] extractor.

pub mod credential;
pub mod principal;
pub mod verify;

pub use credential::{Presented, generate_key, hash_key, presented};
pub use principal::{Auth, Credential, Principal, Scope};
