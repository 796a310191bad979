//! The page shell: head (styles, htmx and its settings), the top bar with
//! the organization's sections, the user and sign-out.

use crate::dashboard::assets;
use crate::dashboard::session::{OrgPage, Visitor};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

/// The sections of an organization, for the top bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Overview,
    Links,
    Domains,
    Keys,
    Members,
    Audit,
}

/// htmx's settings: no inline indicator style (the CSP refuses inline
/// style), no `eval` and no script tags in swapped content.
const HTMX_CONFIG: &str =
    r#"{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false}"#;

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            meta name="htmx-config" content=(HTMX_CONFIG);
            title { (title) " · Shortener" }
            link rel="stylesheet" href=(assets::url("dashboard.css"));
            script src=(assets::url("htmx-2.0.4.min.js")) defer {}
            script src=(assets::url("dashboard.js")) defer {}
        }
    }
}

/// The sign-out button: a form, so it carries the CSRF token.
pub fn sign_out(visitor: &Visitor) -> Markup {
    html! {
        form.inline method="post" action="/signout" {
            input type="hidden" name="csrf" value=(visitor.user.csrf_token);
            button type="submit" id="sign-out" { "Sign out" }
        }
    }
}

/// A page of an organization.
pub fn org_page(page: &OrgPage, section: Section, title: &str, body: Markup) -> Markup {
    let base = page.base();
    let item = |s: Section, href: String, label: &str| {
        html! { a.current[s == section] href=(href) { (label) } }
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                header.top {
                    a.brand href=(base) { (page.org_name) }
                    nav {
                        (item(Section::Overview, base.clone(), "Overview"))
                        (item(Section::Links, format!("{base}/links"), "Links"))
                        (item(Section::Domains, format!("{base}/domains"), "Domains"))
                        @if page.is_admin() {
                            (item(Section::Keys, format!("{base}/keys"), "API keys"))
                        }
                        (item(Section::Members, format!("{base}/members"), "Members"))
                        @if page.is_admin() {
                            (item(Section::Audit, format!("{base}/audit"), "Audit log"))
                        }
                    }
                    div.who {
                        @for m in page.visitor.user.memberships.iter().filter(|m| m.org_id != page.org_id) {
                            a href=(format!("/o/{}", m.org_id)) title="Switch organization" { "↪ " (m.org) }
                        }
                        span #who { (page.visitor.user.email) " (" (page.role) ")" }
                        (sign_out(&page.visitor))
                    }
                }
                main { (body) }
            }
        }
    }
}

/// A page outside any organization (sign-in, no membership).
pub fn bare_page(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body { main { (body) } }
        }
    }
}

/// A rendered page with a status.
pub fn respond(status: StatusCode, markup: Markup) -> Response {
    (status, Html(markup.into_string())).into_response()
}
