//! Who is looking at a page, and as what.
//!
//! [`Visitor`] is a signed-in user (anyone else is sent to `/signin`);
//! [`Visitor::in_org`] makes the [`Auth`] that user's session has in the
//! organization the URL names — the same one an API request with `X-Org`
//! gets — and remembers the role, so pages can leave out the controls the
//! role cannot use (the write functions refuse them anyway).

use crate::auth::verify::{Verified, session_auth, verify_headers};
use crate::auth::{Auth, Role, SessionUser, csrf};
use crate::dashboard::error::{PageError, PageResult};
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// A signed-in user on a page.
#[derive(Debug, Clone)]
pub struct Visitor {
    pub user: Arc<SessionUser>,
    pub ip: Option<IpAddr>,
    /// The request's headers, for the origin check of a form's write.
    pub headers: HeaderMap,
}

impl FromRequestParts<AppState> for Visitor {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> PageResult<Self> {
        // The rate-limit middleware has verified the cookie already.
        let verified = match parts.extensions.get::<Verified>() {
            Some(v) => Ok(v.clone()),
            None => verify_headers(state, &parts.headers).await,
        };
        let user = match verified {
            Ok(Verified::Session(user)) => user,
            // A key is not a way into the dashboard; nothing is.
            Ok(_) | Err(ApiError::Unauthorized { .. }) => return Err(PageError::SignIn),
            Err(e) => return Err(e.into()),
        };
        Ok(Visitor {
            user,
            ip: parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
            headers: parts.headers.clone(),
        })
    }
}

/// A visitor acting in one organization.
#[derive(Debug, Clone)]
pub struct OrgPage {
    pub visitor: Visitor,
    pub auth: Auth,
    pub org_id: i64,
    pub org_name: String,
    pub role: Role,
}

impl Visitor {
    /// Acting in the organization `org` (its id, as the URLs have it).
    pub fn in_org(self, org: &str) -> PageResult<OrgPage> {
        let auth = session_auth(&self.user, Some(org), self.ip)?;
        let m = self
            .user
            .choose(Some(org))?
            .ok_or_else(|| ApiError::NotMember { org: org.into() })?;
        Ok(OrgPage {
            org_id: m.org_id,
            org_name: m.org.clone(),
            role: m.role,
            auth,
            visitor: self,
        })
    }

    /// The checks of a form's write: its `csrf` field is this session's
    /// token, and the request comes from this origin.
    pub fn check_csrf(&self, state: &AppState, sent: &str) -> PageResult<()> {
        csrf::check_sent(
            &self.headers,
            &state.config,
            &self.user.csrf_token,
            sent.as_bytes(),
        )?;
        Ok(())
    }
}

impl OrgPage {
    /// Whether the role may write links (editor and up).
    pub fn can_write(&self) -> bool {
        self.role >= Role::Editor
    }

    /// Whether the role administers the organization (keys, members, audit).
    pub fn is_admin(&self) -> bool {
        self.role >= Role::Admin
    }

    /// The organization's URL prefix.
    pub fn base(&self) -> String {
        format!("/o/{}", self.org_id)
    }
}
