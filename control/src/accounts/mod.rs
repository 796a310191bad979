//! People: users, sessions, memberships, invitations, password resets.
//!
//! A user signs in with an e-mail and a password ([`email`], [`password`]:
//! argon2id) and gets a session cookie ([`sessions`]; the cookie and its
//! lookup are [`crate::auth::session`], the CSRF checks [`crate::auth::csrf`]).
//! A user belongs to organizations with a role ([`crate::auth::Role`]) that
//! maps to the API keys' scopes, so every existing route serves a session as
//! it serves a key. People join by invitation ([`invitations`]), manage each
//! other by role ([`members`]), recover with one-time reset tokens
//! ([`reset`]) delivered by a [`mailer`]. The first user (and any operator)
//! is made on the command line ([`users`]). Every act is in the audit log.

pub mod email;
pub mod invitations;
pub mod mailer;
pub mod members;
pub mod password;
pub mod reset;
pub mod sessions;
pub mod users;
