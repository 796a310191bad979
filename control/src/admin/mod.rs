//! The operator's routes, `/v1/admin/*`: what is service-wide or crosses
//! organizations. Every handler here starts with
//! [`Auth::operator`](crate::auth::Auth::operator), so an organization's key,
//! even with the `admin` scope, gets 403 on all of them.
//!
//! - [`blocklist`]: hosts nobody may link to.
//! - [`links`]: disabling (and re-enabling) any organization's link, e.g. a
//!   phishing link reported to the operator.
//! - [`snapshots`]: building one now (coalesced) and listing generations.
//! - [`orgs`]: the organizations.

pub mod blocklist;
pub mod links;
pub mod orgs;
pub mod snapshots;
