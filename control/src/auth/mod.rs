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
//! - [`session`]: browser sessions as a credential: the cookie (a random
//!   256-bit token, only its SHA-256 stored), looking one up, the user's
//!   memberships and which organization a request acts in; [`csrf`]: the
//!   checks every cookie-authenticated write passes; [`role`]: a member's
//!   role and the scopes it stands for.
//! - [`principal`]: what a verified credential stands for. A
//!   [`Principal`] is either the service's **operator** (the global routes
//!   under `/v1/admin`: blocklist, any organization's links, snapshots,
//!   organizations) or a member of **one organization** with [`Scope`]s (its
//!   own links, keys and stats). Neither can act as the other: tenant routes
//!   need an organization, global routes need the operator. Two credentials
//!   lead there: an API key, and a user's session, whose role in the chosen
//!   organization maps to scopes ([`Role::scopes`]), so every handler's
//!   `auth.org(scope)` works for both unchanged. A signed-in user who has
//!   chosen no organization is [`Principal::User`].
//! - [`verify`]: looking a presented key or session up, and the [`Auth`]
//!   and [`SignedIn`] extractors.

pub mod credential;
pub mod csrf;
pub mod principal;
pub mod role;
pub mod session;
pub mod verify;

pub use credential::{Presented, generate_key, hash_key, presented};
pub use principal::{Auth, Credential, Principal, Scope};
pub use role::Role;
pub use session::{Membership, SessionUser};
pub use verify::SignedIn;
