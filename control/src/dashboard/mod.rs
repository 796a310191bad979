//! The web dashboard, served by control at `/`, on the same origin as the API.
//!
//! # The model
//!
//! **Server-rendered pages, plain forms.** Every page is HTML made here with
//! [`maud`] (compiled templates: a typo is a build error, and rendering is
//! string pushes, no template files read at run time). Every write is an
//! ordinary `<form method=post>`: it works without JavaScript, and an
//! error re-renders the same form with the message beside its field and
//! everything typed still in it. The one script is htmx, vendored from npm
//! (`control/assets/vendor/fetch.sh`), used where it saves a round trip of
//! the whole page: the links list's search as you type.
//!
//! **One way to do a thing.** Handlers here parse a form, build the same
//! [`crate::auth::Auth`] a session's API request gets
//! ([`crate::auth::verify::session_auth`]: the user's role in the
//! organization the URL names, mapped to scopes) and call the same
//! functions the API handlers call (`links::api::create_link`,
//! `update_link`, `delete_link`, `list_links`, `domains::actions::*`,
//! `acme::api::request_certificate`, `keys::create_key`, `revoke_key`,
//! `stats::link_report`, `qr::qr_image`, the members and invitations
//! functions, `audit_log::read`). So the scope and role checks are the
//! API's, and a viewer's forged write is refused by the same `auth.org`
//! that refuses a viewer's API write; the pages merely leave out the
//! controls a role cannot use.
//!
//! **Sessions and CSRF** are the API's: sign-in goes through
//! `accounts::sessions::sign_in` (rate limits, argon2, rotation, audit) and
//! sets the same cookie. A form cannot send `X-CSRF-Token`, so each form
//! carries the session's token in a hidden `csrf` field, checked by
//! [`crate::auth::csrf::check_sent`] with the same origin check.
//!
//! **Headers** ([`headers`]): a Content-Security-Policy with no inline
//! script or style (`script-src 'self'`, `frame-ancestors 'none'`, forms
//! only to this origin), `X-Content-Type-Options: nosniff`, and
//! `Cache-Control: no-store` on pages (they carry a CSRF token). Assets
//! ([`assets`]) are compiled in and served under a content hash with a
//! year's `immutable` caching.
//!
//! **Charts** ([`chart`]) are SVG drawn here from the stats queries: no
//! chart library to vendor and keep patched, nothing to run in the browser
//! (so the strict CSP costs nothing), and a chart is in the page's HTML the
//! moment it arrives (browser tests read its numbers from the DOM).
//!
//! URLs: `/signin`, `/signout`, the one-time-token pages the mails link to
//! (`/accept-invitation`, `/reset-password`, and `/forgot-password` that
//! asks for the latter; [`tokens`]), and per organization (by id)
//! `/o/{org}` (overview), `/o/{org}/links[/new|/{code}[/edit|/qr.svg|/qr.png]]`,
//! `/o/{org}/domains[/{name}[/verify|/certificate|/delete]]`,
//! `/o/{org}/keys`, `/o/{org}/members`, `/o/{org}/audit`.
//!
//! Custom domains: the link form's domain choice and the list's domain
//! filter ([`form::LinkForm`], [`links::list_page`]), and the domains pages
//! ([`domains`]: list and claim; [`domain_page`]: what to publish, verify,
//! settings, certificate, delete), over `domains::actions`.

pub mod assets;
pub mod audit;
pub mod chart;
pub mod domain_page;
pub mod domains;
pub mod error;
pub mod form;
pub mod headers;
pub mod keys;
pub mod layout;
pub mod link_page;
pub mod links;
pub mod members;
pub mod overview;
pub mod routes;
pub mod session;
pub mod signin;
pub mod tokens;
pub mod top_cache;
