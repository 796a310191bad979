//! The dashboard's routes and the layer of security headers around them.
//! The service's router merges these beside `/v1`.

use crate::dashboard::{
    assets, audit, domain_page, domains, headers, keys, link_page, links, members, overview,
    signin, tokens,
};
use crate::state::AppState;
use axum::Router;
use axum::middleware::from_fn;
use axum::routing::{get, post};

/// Every path template below, for the request metrics' route label.
pub const PATHS: &[&str] = &[
    "/",
    "/signin",
    "/signout",
    "/accept-invitation",
    "/forgot-password",
    "/reset-password",
    "/assets/{hash}/{name}",
    "/o/{org}",
    "/o/{org}/links",
    "/o/{org}/new-link",
    "/o/{org}/links/{code}",
    "/o/{org}/links/{code}/edit",
    "/o/{org}/links/{code}/delete",
    "/o/{org}/links/{code}/qr.svg",
    "/o/{org}/links/{code}/qr.png",
    "/o/{org}/domains",
    "/o/{org}/domains/{name}",
    "/o/{org}/domains/{name}/verify",
    "/o/{org}/domains/{name}/certificate",
    "/o/{org}/domains/{name}/delete",
    "/o/{org}/keys",
    "/o/{org}/keys/{id}/revoke",
    "/o/{org}/members",
    "/o/{org}/members/invite",
    "/o/{org}/members/{user_id}/role",
    "/o/{org}/members/{user_id}/remove",
    "/o/{org}/audit",
];

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(signin::root))
        .route("/signin", get(signin::page).post(signin::submit))
        .route("/signout", post(signin::sign_out_submit))
        .route(
            "/accept-invitation",
            get(tokens::invitation_page).post(tokens::accept),
        )
        .route(
            "/forgot-password",
            get(tokens::forgot_page).post(tokens::forgot),
        )
        .route(
            "/reset-password",
            get(tokens::reset_page).post(tokens::reset),
        )
        .route("/assets/{hash}/{name}", get(assets::serve))
        .route("/o/{org}", get(overview::page))
        .route("/o/{org}/links", get(links::list_page).post(links::create))
        .route("/o/{org}/new-link", get(links::new_page))
        .route(
            "/o/{org}/links/{code}",
            get(link_page::page).post(links::update),
        )
        .route("/o/{org}/links/{code}/edit", get(links::edit_page))
        .route("/o/{org}/links/{code}/delete", post(links::delete))
        .route("/o/{org}/links/{code}/qr.svg", get(link_page::qr_svg))
        .route("/o/{org}/links/{code}/qr.png", get(link_page::qr_png))
        .route("/o/{org}/domains", get(domains::page).post(domains::claim))
        .route(
            "/o/{org}/domains/{name}",
            get(domain_page::page).post(domain_page::save_settings),
        )
        .route("/o/{org}/domains/{name}/verify", post(domain_page::verify))
        .route(
            "/o/{org}/domains/{name}/certificate",
            post(domain_page::order_certificate),
        )
        .route(
            "/o/{org}/domains/{name}/delete",
            get(domain_page::confirm_delete).post(domain_page::delete),
        )
        .route("/o/{org}/keys", get(keys::page).post(keys::create))
        .route("/o/{org}/keys/{id}/revoke", post(keys::revoke))
        .route("/o/{org}/members", get(members::page))
        .route("/o/{org}/members/invite", post(members::invite))
        .route(
            "/o/{org}/members/{user_id}/role",
            post(members::change_role),
        )
        .route("/o/{org}/members/{user_id}/remove", post(members::remove))
        .route("/o/{org}/audit", get(audit::page))
        .layer(from_fn(headers::secure))
}
