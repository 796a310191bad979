//! Members and roles: the list, inviting, changing a role, removing.
//! Controls appear only where the visitor's role may use them
//! ([`Role::may_manage`]); the functions behind them check again.

use crate::accounts::invitations::{Invite, invite as send_invite};
use crate::accounts::members::{Member, list_members, remove_member, set_role};
use crate::auth::Role;
use crate::dashboard::error::PageResult;
use crate::dashboard::form::{FormError, PageForm, form_level, text_field};
use crate::dashboard::layout::{Section, org_page, respond};
use crate::dashboard::links::date;
use crate::dashboard::session::{OrgPage, Visitor};
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct InviteForm {
    pub csrf: String,
    pub email: String,
    pub role: String,
}

fn role_select(name: &str, id: &str, current: &str, may_give: impl Fn(Role) -> bool) -> Markup {
    html! {
        select id=(id) name=(name) {
            @for r in Role::ALL.into_iter().rev().filter(|r| may_give(*r)) {
                option value=(r.as_str()) selected[current == r.as_str()] { (r.as_str()) }
            }
        }
    }
}

fn body(
    page: &OrgPage,
    members: &[Member],
    form: &InviteForm,
    error: Option<&FormError>,
    notice: Option<&str>,
) -> Markup {
    let base = page.base();
    let me = page.visitor.user.user_id;
    let csrf = &page.visitor.user.csrf_token;
    html! {
        h1 { "Members" }
        @if let Some(n) = notice { div.notice #notice role="status" { (n) } }
        (form_level(error, &["email", "role"]))
        table #members {
            thead { tr { th { "E-mail" } th { "Role" } th { "Joined" } th {} } }
            tbody {
                @for m in members {
                    tr data-email=(m.email) {
                        td { (m.email) @if m.user_id == me { " (you)" } }
                        td {
                            @if page.role.may_manage(m.role) && m.user_id != me {
                                form.inline method="post" action=(format!("{base}/members/{}/role", m.user_id)) {
                                    input type="hidden" name="csrf" value=(csrf);
                                    (role_select("role", &format!("role-{}", m.user_id), m.role.as_str(), |r| page.role.may_manage(r)))
                                    " "
                                    button.secondary type="submit" { "Change" }
                                }
                            } @else {
                                (m.role)
                            }
                        }
                        td.muted { (date(m.joined_at)) }
                        td {
                            @if m.user_id == me || page.role.may_manage(m.role) {
                                form.inline method="post" action=(format!("{base}/members/{}/remove", m.user_id)) {
                                    input type="hidden" name="csrf" value=(csrf);
                                    button.danger type="submit" { @if m.user_id == me { "Leave" } @else { "Remove" } }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if page.is_admin() {
            h2 { "Invite someone" }
            div.card {
                form #invite-form method="post" action=(format!("{base}/members/invite")) {
                    input type="hidden" name="csrf" value=(csrf);
                    (text_field("email", "E-mail", "email", &form.email, Some("They get a link by mail, valid for 7 days."), error))
                    div.field {
                        label for="invite-role" { "Role" }
                        (role_select("role", "invite-role", &form.role, |r| page.role.may_manage(r)))
                    }
                    button type="submit" { "Send invitation" }
                }
            }
        }
    }
}

async fn render(
    state: &AppState,
    page: &OrgPage,
    status: StatusCode,
    form: &InviteForm,
    error: Option<&FormError>,
    notice: Option<&str>,
) -> PageResult<Response> {
    let members = list_members(state, &page.auth).await?;
    Ok(respond(
        status,
        org_page(
            page,
            Section::Members,
            "Members",
            body(page, &members, form, error, notice),
        ),
    ))
}

/// `GET /o/{org}/members`.
pub async fn page(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(org): Path<String>,
) -> PageResult<Response> {
    let page = visitor.in_org(&org)?;
    let form = InviteForm {
        role: "viewer".into(),
        ..InviteForm::default()
    };
    render(&state, &page, StatusCode::OK, &form, None, None).await
}

/// `POST /o/{org}/members/invite`.
pub async fn invite(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(org): Path<String>,
    PageForm(f): PageForm<InviteForm>,
) -> PageResult<Response> {
    visitor.check_csrf(&state, &f.csrf)?;
    let page = visitor.in_org(&org)?;
    let Some(role) = Role::parse(&f.role) else {
        let e = FormError::field("role", "choose a role");
        return render(&state, &page, StatusCode::BAD_REQUEST, &f, Some(&e), None).await;
    };
    let req = Invite {
        email: f.email.trim().to_owned(),
        role,
    };
    match send_invite(&state, &page.auth, &req).await {
        Ok(info) => {
            let notice = format!("Invited {} as {}.", info.email, info.role);
            let blank = InviteForm {
                role: "viewer".into(),
                ..InviteForm::default()
            };
            render(&state, &page, StatusCode::OK, &blank, None, Some(&notice)).await
        }
        Err(e) if FormError::shows_in_form(&e) => {
            let fe = FormError::from_api(&e);
            render(&state, &page, e.status_and_code().0, &f, Some(&fe), None).await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RoleForm {
    pub csrf: String,
    pub role: String,
}

/// `POST /o/{org}/members/{user_id}/role`.
pub async fn change_role(
    State(state): State<AppState>,
    visitor: Visitor,
    Path((org, user_id)): Path<(String, i64)>,
    PageForm(f): PageForm<RoleForm>,
) -> PageResult<Response> {
    visitor.check_csrf(&state, &f.csrf)?;
    let page = visitor.in_org(&org)?;
    let role = Role::parse(&f.role)
        .ok_or_else(|| ApiError::invalid_field("role", "is not owner, admin, editor or viewer"))?;
    after(
        &state,
        &page,
        set_role(&state, &page.auth, user_id, role)
            .await
            .map(|_| ()),
    )
    .await
}

/// `POST /o/{org}/members/{user_id}/remove`.
pub async fn remove(
    State(state): State<AppState>,
    visitor: Visitor,
    Path((org, user_id)): Path<(String, i64)>,
    PageForm(f): PageForm<crate::dashboard::signin::CsrfForm>,
) -> PageResult<Response> {
    visitor.check_csrf(&state, &f.csrf)?;
    let page = visitor.in_org(&org)?;
    let left = page.visitor.user.user_id == user_id;
    let result = remove_member(&state, &page.auth, user_id).await;
    if left && result.is_ok() {
        return Ok(Redirect::to("/").into_response());
    }
    after(&state, &page, result).await
}

/// Back to the list, or the list with why not (the last owner, a role
/// one may not give).
async fn after(
    state: &AppState,
    page: &OrgPage,
    result: Result<(), ApiError>,
) -> PageResult<Response> {
    match result {
        Ok(()) => Ok(Redirect::to(&format!("{}/members", page.base())).into_response()),
        Err(e) if FormError::shows_in_form(&e) || matches!(e, ApiError::RoleRequired { .. }) => {
            let fe = FormError {
                field: None,
                message: e.to_string(),
            };
            let form = InviteForm {
                role: "viewer".into(),
                ..InviteForm::default()
            };
            render(state, page, e.status_and_code().0, &form, Some(&fe), None).await
        }
        Err(e) => Err(e.into()),
    }
}
